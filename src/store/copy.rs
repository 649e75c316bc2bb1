//! `newsdesk migrate --from A --to B`: copies a whole store from SQLite to PostgreSQL or back,
//! keeping every id (story ids, so GUIDs and story URLs stay what subscribers have).
//!
//! Tables are copied in key order, in batches; each batch is written in one transaction with
//! the copy's progress (`newsdesk_migrate` in the target: per table the last key copied and
//! the rows so far), so a copy that was killed resumes where it stopped and never writes a
//! row twice. The target must be empty or a copy of the same source in progress. At the end
//! the row counts are compared table by table, PostgreSQL's id sequences are moved past the
//! copied ids, and an SQLite target gets its search index built from the copied items.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Context};
use rusqlite::types::ValueRef;

use super::pg::{self, PgTarget};

/// Each table copied, with its key columns, in an order that writes a row after the rows it
/// points at.
pub const TABLES: &[(&str, &[&str])] = &[
    ("sources", &["id"]),
    ("stories", &["id"]),
    ("items", &["id"]),
    ("appearances", &["source_id", "key"]),
    ("tombstones", &["source_id", "key"]),
    ("source_events", &["id"]),
    ("digests", &["topic", "period_start"]),
    ("websub_subscriptions", &["id"]),
    ("webhook_batches", &["id"]),
    ("webhook_deliveries", &["hook", "topic", "story_id", "event"]),
];

/// Tables whose `id` PostgreSQL generates for new rows.
const GENERATED_IDS: &[&str] = &["items", "stories", "source_events", "websub_subscriptions"];

/// Rows read and written per batch (and per transaction), unless `$NEWSDESK_MIGRATE_BATCH`
/// says otherwise (fewer for rows too large for memory at 2,000 at a time).
pub const BATCH: usize = 2_000;

fn batch() -> usize {
    std::env::var("NEWSDESK_MIGRATE_BATCH").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(BATCH)
}

/// One end of a copy.
pub enum Side {
    /// An SQLite file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database.
    Postgres(Box<PgTarget>),
}

impl Side {
    /// `s` as a PostgreSQL URL or an SQLite path.
    pub fn parse(s: &str, password_file: Option<std::path::PathBuf>) -> anyhow::Result<Side> {
        if pg::is_url(s) {
            Ok(Side::Postgres(Box::new(PgTarget::parse(s, password_file).map_err(|e| anyhow::anyhow!("{e}"))?)))
        } else {
            Ok(Side::Sqlite(s.into()))
        }
    }

    fn describe(&self) -> String {
        match self {
            Side::Sqlite(p) => p.display().to_string(),
            Side::Postgres(t) => format!("postgres://{}", t.describe()),
        }
    }
}

/// A column value in flight.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// The column types the schemas use.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Type {
    Int,
    Real,
    Text,
    Blob,
}

/// An open end of a copy.
enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

fn pgerr(e: tokio_postgres::Error) -> anyhow::Error {
    anyhow::anyhow!("{}", pg::describe_error(&e))
}

impl Conn {
    /// Opens `side`, bringing its schema to this build's version.
    async fn open(side: &Side, create: bool) -> anyhow::Result<Conn> {
        match side {
            Side::Sqlite(path) => {
                if !create && !path.exists() {
                    bail!("{}: no such database", path.display());
                }
                let mut conn =
                    rusqlite::Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
                super::configure(&conn).with_context(|| format!("configuring {}", path.display()))?;
                super::schema::migrate(&mut conn).with_context(|| format!("migrating {}", path.display()))?;
                // Stories point at survivors a copy in id order may not have written yet.
                conn.pragma_update(None, "foreign_keys", "OFF")?;
                Ok(Conn::Sqlite(conn))
            }
            Side::Postgres(t) => {
                let mut client = t.connect().await?;
                pg::migrate(&mut client).await.with_context(|| format!("migrating {}", t.describe()))?;
                Ok(Conn::Postgres(client))
            }
        }
    }

    /// The columns of `table` with their types, in table order.
    async fn columns(&self, table: &str) -> anyhow::Result<Vec<(String, Type)>> {
        match self {
            Conn::Sqlite(c) => {
                let mut stmt =
                    c.prepare(&format!("SELECT name, type FROM pragma_table_info('{table}') ORDER BY cid"))?;
                let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
                let mut out = Vec::new();
                for r in rows {
                    let (name, ty) = r?;
                    let ty = match ty.to_ascii_uppercase().as_str() {
                        t if t.contains("INT") => Type::Int,
                        t if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") => Type::Real,
                        "BLOB" => Type::Blob,
                        _ => Type::Text,
                    };
                    out.push((name, ty));
                }
                Ok(out)
            }
            Conn::Postgres(c) => {
                let rows = c
                    .query(
                        "SELECT column_name::text, data_type::text FROM information_schema.columns
                         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                        &[&table],
                    )
                    .await
                    .map_err(pgerr)?;
                rows.iter()
                    .map(|r| {
                        let (name, ty): (String, String) = (r.get(0), r.get(1));
                        let ty = match ty.as_str() {
                            "bigint" | "integer" | "smallint" => Type::Int,
                            "double precision" | "real" => Type::Real,
                            "bytea" => Type::Blob,
                            "text" | "character varying" => Type::Text,
                            other => bail!("{table}.{name}: column type {other} is not one newsdesk writes"),
                        };
                        Ok((name, ty))
                    })
                    .collect()
            }
        }
    }

    async fn count(&self, table: &str) -> anyhow::Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self {
            Conn::Sqlite(c) => Ok(c.query_row(&sql, [], |r| r.get(0))?),
            Conn::Postgres(c) => Ok(c.query_one(&sql, &[]).await.map_err(pgerr)?.get(0)),
        }
    }

    /// Up to [`BATCH`] rows of `table` after key `after` (all from the start for `None`), in
    /// key order.
    async fn read(
        &self,
        table: &str,
        cols: &[(String, Type)],
        keys: &[&str],
        after: Option<&[Value]>,
    ) -> anyhow::Result<Vec<Vec<Value>>> {
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        let list = quoted(&names);
        let key_list = quoted(keys);
        let mut sql = format!("SELECT {list} FROM {table}");
        if let Some(a) = after {
            let marks: Vec<String> = (1..=a.len()).map(|i| self.mark(i)).collect();
            sql.push_str(&format!(" WHERE ({key_list}) > ({})", marks.join(", ")));
        }
        sql.push_str(&format!(" ORDER BY {key_list} LIMIT {}", batch()));
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(&sql)?;
                let params: Vec<rusqlite::types::Value> = after.unwrap_or(&[]).iter().map(to_sqlite).collect();
                let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut row = Vec::with_capacity(cols.len());
                    for i in 0..cols.len() {
                        row.push(match r.get_ref(i)? {
                            ValueRef::Null => Value::Null,
                            ValueRef::Integer(n) => Value::Int(n),
                            ValueRef::Real(f) => Value::Real(f),
                            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                        });
                    }
                    out.push(row);
                }
                Ok(out)
            }
            Conn::Postgres(c) => {
                let key_types: Vec<Type> =
                    keys.iter().map(|k| cols.iter().find(|(n, _)| n == k).map_or(Type::Text, |c| c.1)).collect();
                let params = pg_params(after.unwrap_or(&[]), &key_types, table)?;
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    params.iter().map(|p| &**p as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
                let rows = c.query(&sql, &refs).await.map_err(pgerr)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let mut row = Vec::with_capacity(cols.len());
                    for (i, (_, ty)) in cols.iter().enumerate() {
                        row.push(match ty {
                            Type::Int => r.get::<_, Option<i64>>(i).map_or(Value::Null, Value::Int),
                            Type::Real => r.get::<_, Option<f64>>(i).map_or(Value::Null, Value::Real),
                            Type::Text => r.get::<_, Option<String>>(i).map_or(Value::Null, Value::Text),
                            Type::Blob => r.get::<_, Option<Vec<u8>>>(i).map_or(Value::Null, Value::Blob),
                        });
                    }
                    out.push(row);
                }
                Ok(out)
            }
        }
    }

    fn mark(&self, i: usize) -> String {
        match self {
            Conn::Sqlite(_) => format!("?{i}"),
            Conn::Postgres(_) => format!("${i}"),
        }
    }

    /// Writes `rows` into `table` and the copy's progress, in one transaction.
    async fn write(
        &mut self,
        table: &str,
        cols: &[(String, Type)],
        rows: &[Vec<Value>],
        progress: &Progress,
    ) -> anyhow::Result<()> {
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        let list = quoted(&names);
        let last = serde_json::to_string(&progress.last_key)?;
        match self {
            Conn::Sqlite(c) => {
                let tx = c.transaction()?;
                {
                    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
                    let mut stmt = tx.prepare_cached(&format!(
                        "INSERT OR IGNORE INTO {table} ({list}) VALUES ({})",
                        marks.join(", ")
                    ))?;
                    for row in rows {
                        stmt.execute(rusqlite::params_from_iter(row.iter().map(to_sqlite)))?;
                    }
                    tx.execute(
                        "INSERT INTO newsdesk_migrate (tbl, last_key, copied, done) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (tbl) DO UPDATE SET last_key = ?2, copied = ?3, done = ?4",
                        rusqlite::params![table, last, progress.copied, progress.done as i64],
                    )?;
                }
                tx.commit()?;
            }
            Conn::Postgres(c) => {
                let types: Vec<Type> = cols.iter().map(|c| c.1).collect();
                let tx = c.transaction().await.map_err(pgerr)?;
                // PostgreSQL takes at most 65,535 parameters per statement.
                let per = (60_000 / cols.len().max(1)).clamp(1, BATCH);
                for chunk in rows.chunks(per) {
                    let mut sql = format!("INSERT INTO {table} ({list}) VALUES ");
                    let mut params = Vec::with_capacity(chunk.len() * cols.len());
                    for (r, row) in chunk.iter().enumerate() {
                        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("${}", r * cols.len() + i)).collect();
                        if r > 0 {
                            sql.push_str(", ");
                        }
                        sql.push_str(&format!("({})", marks.join(", ")));
                        params.extend(pg_params(row, &types, table)?);
                    }
                    sql.push_str(" ON CONFLICT DO NOTHING");
                    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                        params.iter().map(|p| &**p as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
                    tx.execute(&sql, &refs).await.map_err(pgerr).with_context(|| format!("writing {table}"))?;
                }
                tx.execute(
                    "INSERT INTO newsdesk_migrate (tbl, last_key, copied, done) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (tbl) DO UPDATE SET last_key = $2, copied = $3, done = $4",
                    &[&table, &last, &progress.copied, &(progress.done as i64)],
                )
                .await
                .map_err(pgerr)?;
                tx.commit().await.map_err(pgerr)?;
            }
        }
        Ok(())
    }

    async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        match self {
            Conn::Sqlite(c) => c.execute_batch(sql)?,
            Conn::Postgres(c) => c.batch_execute(sql).await.map_err(pgerr)?,
        }
        Ok(())
    }

    /// The progress of a copy into this store, per table.
    async fn progress(&self) -> anyhow::Result<Vec<(String, Progress)>> {
        let sql = "SELECT tbl, last_key, copied, done FROM newsdesk_migrate";
        let rows: Vec<(String, String, i64, i64)> = match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare(sql)?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                rows.collect::<Result<_, _>>()?
            }
            Conn::Postgres(c) => c
                .query(sql, &[])
                .await
                .map_err(pgerr)?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect(),
        };
        rows.into_iter()
            .map(|(t, k, copied, done)| {
                let last_key = serde_json::from_str(&k).with_context(|| format!("newsdesk_migrate row of {t}"))?;
                Ok((t, Progress { last_key, copied, done: done != 0 }))
            })
            .collect()
    }
}

/// How far a table's copy got.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// The key of the last row written (`None`: none yet).
    last_key: Option<Vec<Value>>,
    copied: i64,
    done: bool,
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

fn to_sqlite(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Int(n) => V::Integer(*n),
        Value::Real(f) => V::Real(*f),
        Value::Text(t) => V::Text(t.clone()),
        Value::Blob(b) => V::Blob(b.clone()),
    }
}

type PgParam = Box<dyn tokio_postgres::types::ToSql + Sync + Send>;

/// `row` as parameters of the PostgreSQL column types `types`.
fn pg_params(row: &[Value], types: &[Type], table: &str) -> anyhow::Result<Vec<PgParam>> {
    row.iter()
        .zip(types)
        .map(|(v, ty)| -> anyhow::Result<PgParam> {
            Ok(match (ty, v) {
                (Type::Int, Value::Null) => Box::new(None::<i64>),
                (Type::Real, Value::Null) => Box::new(None::<f64>),
                (Type::Text, Value::Null) => Box::new(None::<String>),
                (Type::Blob, Value::Null) => Box::new(None::<Vec<u8>>),
                (Type::Int, Value::Int(n)) => Box::new(*n),
                (Type::Real, Value::Real(f)) => Box::new(*f),
                (Type::Real, Value::Int(n)) => Box::new(*n as f64),
                (Type::Text, Value::Text(t)) => Box::new(t.clone()),
                (Type::Text, Value::Int(n)) => Box::new(n.to_string()),
                (Type::Blob, Value::Blob(b)) => Box::new(b.clone()),
                (Type::Blob, Value::Text(t)) => Box::new(t.clone().into_bytes()),
                (ty, v) => bail!("{table}: a value {v:?} in a {ty:?} column"),
            })
        })
        .collect()
}

/// Copies every table of `from` into `to` (see the module doc), reporting progress on
/// stderr: a bar on a terminal, a line per table otherwise.
pub async fn run(from: &Side, to: &Side) -> anyhow::Result<()> {
    let (src_name, dst_name) = (from.describe(), to.describe());
    if src_name == dst_name {
        bail!("--from and --to are the same database ({src_name})");
    }
    let src = Conn::open(from, false).await.with_context(|| format!("the source {src_name}"))?;
    let mut dst = Conn::open(to, true).await.with_context(|| format!("the target {dst_name}"))?;
    dst.execute(
        "CREATE TABLE IF NOT EXISTS newsdesk_migrate (
             tbl TEXT PRIMARY KEY, last_key TEXT NOT NULL, copied BIGINT NOT NULL, done BIGINT NOT NULL)",
    )
    .await?;
    let mut progress: std::collections::HashMap<String, Progress> = dst.progress().await?.into_iter().collect();
    match progress.get("#source") {
        Some(p) if p.last_key != Some(vec![Value::Text(src_name.clone())]) => bail!(
            "{dst_name} holds a copy of another database ({:?}) in progress; migrate into an empty database",
            p.last_key
        ),
        Some(_) => eprintln!("resuming the copy of {src_name} into {dst_name}"),
        None => {
            for (table, _) in TABLES {
                let n = dst.count(table).await?;
                if n > 0 {
                    bail!("{dst_name} is not empty ({n} rows in {table}); migrate into an empty database");
                }
            }
            let me = Progress { last_key: Some(vec![Value::Text(src_name.clone())]), copied: 0, done: false };
            write_marker(&mut dst, "#source", &me).await?;
            progress.insert("#source".into(), me);
        }
    }
    let tty = std::io::stderr().is_terminal();
    for (table, keys) in TABLES {
        let cols = src.columns(table).await?;
        let target_cols = dst.columns(table).await?;
        let names = |c: &[(String, Type)]| c.iter().map(|(n, _)| n.clone()).collect::<std::collections::BTreeSet<_>>();
        if names(&cols) != names(&target_cols) {
            bail!("{table}: the columns of {src_name} and {dst_name} differ; run this newsdesk on both first");
        }
        let total = src.count(table).await?;
        let mut p = progress.get(*table).cloned().unwrap_or_default();
        if !p.done {
            loop {
                let rows = src.read(table, &cols, keys, p.last_key.as_deref()).await?;
                if rows.is_empty() {
                    p.done = true;
                    dst.write(table, &cols, &[], &p).await?;
                    break;
                }
                let key_at: Vec<usize> = keys.iter().filter_map(|k| cols.iter().position(|(n, _)| n == k)).collect();
                let last = rows.last().map(|r| key_at.iter().map(|&i| r[i].clone()).collect::<Vec<_>>());
                p.last_key = last;
                p.copied += rows.len() as i64;
                dst.write(table, &cols, &rows, &p).await?;
                if tty {
                    let pct = if total > 0 { p.copied * 100 / total } else { 100 };
                    eprint!("\r{table:<22} {:>10}/{total:<10} {pct:>3}%", p.copied);
                    let _ = std::io::stderr().flush();
                }
            }
        }
        let copied = dst.count(table).await?;
        if tty {
            eprint!("\r\x1b[2K");
        }
        eprintln!("{table:<22} {copied:>10} rows");
        if copied != total {
            bail!("{table}: {total} rows in {src_name} but {copied} in {dst_name} (did something write to either during the copy?)");
        }
    }
    finish(&dst).await?;
    if let Side::Postgres(target) = to {
        // PostgreSQL's search rows are made in Rust from the copied items (the indexed text
        // is the items' HTML made plain), once.
        let conn = super::db::Connection::Pg(Box::new(super::db::PgConn::connect(target)?));
        let n = super::search::backfill_db(&conn).with_context(|| format!("indexing {dst_name} for search"))?;
        if n > 0 {
            eprintln!("search index: {n} items");
        }
    }
    eprintln!("copied {src_name} into {dst_name}");
    Ok(())
}

async fn write_marker(dst: &mut Conn, name: &str, p: &Progress) -> anyhow::Result<()> {
    let key = serde_json::to_string(&p.last_key)?;
    let sql = format!(
        "INSERT INTO newsdesk_migrate (tbl, last_key, copied, done) VALUES ('{name}', {}, 0, 0) ON CONFLICT (tbl) DO NOTHING",
        sql_literal(&key)
    );
    dst.execute(&sql).await
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// What a store needs after its rows were copied in.
async fn finish(dst: &Conn) -> anyhow::Result<()> {
    match dst {
        Conn::Postgres(c) => {
            for table in GENERATED_IDS {
                c.execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
                    ),
                    &[],
                )
                .await
                .map_err(pgerr)?;
            }
        }
        Conn::Sqlite(c) => {
            let indexed: i64 =
                c.query_row("SELECT COUNT(*) FROM newsdesk_migrate WHERE tbl = '#search'", [], |r| r.get(0))?;
            if indexed == 0 {
                let tx = c.unchecked_transaction()?;
                let n = super::search::backfill(&tx)?;
                tx.execute(
                    "INSERT INTO newsdesk_migrate (tbl, last_key, copied, done) VALUES ('#search', 'null', ?1, 1)",
                    [n as i64],
                )?;
                tx.commit()?;
                eprintln!("search index: {n} items");
            }
        }
    }
    Ok(())
}
