//! PostgreSQL as the store: where it is (`[daemon] database = "postgres://…"`), how to
//! reach it (the password from the URL, `database_password_file` or `$PGPASSWORD`, never
//! logged), and its schema, versioned like SQLite's but in a `newsdesk_schema` table and
//! migrated under an advisory lock, so instances started at the same moment on an empty
//! database run each migration once.
//!
//! The PostgreSQL schema holds the same tables, columns and keys as SQLite's (integers are
//! `BIGINT`, blobs `BYTEA`); full-text search is a generated `tsvector` with a GIN index
//! where SQLite has FTS5. TLS is [`super::pg_tls`]. `crate::store::copy` moves a whole
//! store between the two.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use tokio_postgres::config::Host;

/// How long a connection attempt may take before it is an error.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The advisory lock key migrations run under (any constant; "newsdesk" in ASCII).
const MIGRATION_LOCK: i64 = 0x6e65_7773_6465_736b;

/// A PostgreSQL database to connect to.
#[derive(Clone)]
pub struct PgTarget {
    config: tokio_postgres::Config,
    /// Where the password is read from when the URL has none.
    password_file: Option<PathBuf>,
    /// `sslmode` and `sslrootcert` as libpq reads them.
    tls_params: super::pg_tls::TlsParams,
    /// The TLS connector those make (roots read once, at parse).
    tls: super::pg_tls::Tls,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgTarget({})", self.describe())
    }
}

impl PartialEq for PgTarget {
    fn eq(&self, other: &Self) -> bool {
        self.describe() == other.describe()
            && self.password_file == other.password_file
            && self.tls_params == other.tls_params
    }
}

/// Whether `s` names a PostgreSQL database rather than an SQLite file.
pub fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

impl PgTarget {
    /// Parses a `postgres://user[:password]@host[:port]/db[?sslmode=…&sslrootcert=…]` URL.
    pub fn parse(url: &str, password_file: Option<PathBuf>) -> Result<PgTarget, String> {
        let (url, tls_params) = super::pg_tls::split_url(url)?;
        let mut config = tokio_postgres::Config::from_str(&url).map_err(|e| {
            // The parser's message never holds the URL, so nothing secret is repeated.
            format!("not a PostgreSQL URL (postgres://user@host[:port]/database): {e}")
        })?;
        if config.get_user().is_none() {
            return Err("the PostgreSQL URL names no user (postgres://user@host/database)".into());
        }
        if config.get_hosts().is_empty() {
            return Err("the PostgreSQL URL names no host (postgres://user@host/database)".into());
        }
        if config.get_dbname().is_none() {
            return Err("the PostgreSQL URL names no database (postgres://user@host/database)".into());
        }
        let tls = super::pg_tls::connector(&tls_params).map_err(|e| format!("{e:#}"))?;
        config.ssl_mode(tls_params.mode);
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("newsdesk");
        Ok(PgTarget { config, password_file, tls_params, tls })
    }

    /// `user@host:port/database`: what logs and errors name (never the password).
    pub fn describe(&self) -> String {
        let user = self.config.get_user().unwrap_or("?");
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "?".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{user}@{host}:{port}/{}", self.config.get_dbname().unwrap_or("?"))
    }

    /// Connects; the caller drives the connection (to read its notifications).
    pub async fn connect_raw(
        &self,
    ) -> anyhow::Result<(
        tokio_postgres::Client,
        tokio_postgres::Connection<tokio_postgres::Socket, super::pg_tls::Stream>,
    )> {
        let mut config = self.config.clone();
        if config.get_password().is_none() {
            if let Some(file) = &self.password_file {
                let pw = std::fs::read_to_string(file)
                    .with_context(|| format!("reading the PostgreSQL password from {}", file.display()))?;
                config.password(pw.trim_end_matches(['\n', '\r']));
            } else if let Ok(pw) = std::env::var("PGPASSWORD") {
                config.password(pw);
            }
        }
        let what = self.describe();
        config
            .connect(self.tls.clone())
            .await
            .map_err(|e| anyhow::anyhow!("connecting to PostgreSQL as {what}: {}", describe_error(&e)))
    }

    /// Connects (the password from the URL, else `database_password_file`, else
    /// `$PGPASSWORD`), and runs the connection on the current tokio runtime.
    pub async fn connect(&self) -> anyhow::Result<tokio_postgres::Client> {
        let what = self.describe();
        let (client, connection) = self.connect_raw().await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("PostgreSQL connection to {what}: {}", describe_error(&e));
            }
        });
        Ok(client)
    }
}

/// A PostgreSQL error with the server's message when there is one (tokio-postgres'
/// `Display` says only "db error"), and never a password (neither puts one in).
pub fn describe_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The PostgreSQL schema: migration N brings version N-1 to N in one transaction. The first
/// is SQLite's schema version 9 (but search); later ones follow SQLite's as they come.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE sources (
        id             TEXT PRIMARY KEY,
        url            TEXT NOT NULL,
        config_url     TEXT NOT NULL,
        feed_title     TEXT,
        home_page      TEXT,
        etag           TEXT,
        last_modified  TEXT,
        status         TEXT NOT NULL DEFAULT 'new',
        http_status    BIGINT,
        last_error     TEXT,
        last_poll      BIGINT,
        last_success   BIGINT,
        next_due       BIGINT,
        failures       BIGINT NOT NULL DEFAULT 0,
        retry_after    BIGINT,
        retired_reason TEXT,
        ttl_secs       BIGINT,
        title          TEXT,
        skip_hours     BIGINT NOT NULL DEFAULT 0,
        skip_days      BIGINT NOT NULL DEFAULT 0,
        past_retention BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE items (
        id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        canonical_url  TEXT,
        link           TEXT,
        title          TEXT NOT NULL,
        summary        TEXT,
        content        TEXT,
        published      BIGINT NOT NULL,
        updated        BIGINT NOT NULL,
        first_seen     BIGINT NOT NULL,
        authors        TEXT NOT NULL DEFAULT '[]',
        categories     TEXT NOT NULL DEFAULT '[]',
        content_hash   BIGINT NOT NULL,
        story_id       BIGINT,
        copy_of        BIGINT,
        story_time     BIGINT
    );
    CREATE UNIQUE INDEX items_canonical ON items(canonical_url) WHERE canonical_url IS NOT NULL;
    CREATE INDEX items_published ON items(published);
    CREATE INDEX items_story ON items(story_id);
    CREATE INDEX items_story_time ON items(story_time);
    CREATE TABLE appearances (
        source_id    TEXT NOT NULL,
        key          TEXT NOT NULL,
        item_id      BIGINT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        content_hash BIGINT NOT NULL,
        first_seen   BIGINT NOT NULL,
        PRIMARY KEY (source_id, key)
    );
    CREATE INDEX appearances_item ON appearances(item_id, source_id);
    CREATE TABLE tombstones (
        source_id   TEXT NOT NULL,
        key         TEXT NOT NULL,
        deleted_at  BIGINT NOT NULL,
        PRIMARY KEY (source_id, key)
    );
    -- merged_into names the surviving story; no foreign key: a survivor may be a newer row,
    -- which a copy in id order has not written yet (SQLite's is not checked at copy either).
    CREATE TABLE stories (
        id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        first_seen   BIGINT NOT NULL,
        last_seen    BIGINT NOT NULL,
        merged_into  BIGINT
    );
    CREATE TABLE source_events (
        id        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        source_id TEXT NOT NULL,
        at        BIGINT NOT NULL,
        kind      TEXT NOT NULL,
        detail    TEXT NOT NULL
    );
    CREATE INDEX source_events_at ON source_events(at);
    CREATE TABLE digests (
        topic         TEXT NOT NULL,
        period_start  BIGINT NOT NULL,
        period_end    BIGINT NOT NULL,
        guid          TEXT NOT NULL,
        title         TEXT NOT NULL,
        html          TEXT NOT NULL,
        text          TEXT NOT NULL,
        story_ids     TEXT NOT NULL,
        published_at  BIGINT NOT NULL,
        PRIMARY KEY (topic, period_start)
    );
    CREATE TABLE websub_subscriptions (
        id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        topic          TEXT NOT NULL,
        callback       TEXT NOT NULL,
        secret         TEXT,
        lease_expires  BIGINT NOT NULL,
        created        BIGINT NOT NULL,
        last_delivery  BIGINT,
        failures       BIGINT NOT NULL DEFAULT 0,
        UNIQUE (topic, callback)
    );
    CREATE INDEX websub_subscriptions_lease ON websub_subscriptions(lease_expires);
    CREATE TABLE webhook_batches (
        id            TEXT PRIMARY KEY,
        hook          TEXT NOT NULL,
        status        TEXT NOT NULL,
        attempts      BIGINT NOT NULL DEFAULT 0,
        next_attempt  BIGINT NOT NULL,
        created       BIGINT NOT NULL,
        last_error    TEXT,
        content_type  TEXT NOT NULL,
        headers       TEXT NOT NULL,
        body          BYTEA NOT NULL
    );
    CREATE INDEX webhook_batches_status ON webhook_batches(status, next_attempt);
    CREATE TABLE webhook_deliveries (
        hook          TEXT NOT NULL,
        topic         TEXT NOT NULL,
        story_id      BIGINT NOT NULL,
        event         TEXT NOT NULL,
        status        TEXT NOT NULL,
        attempts      BIGINT NOT NULL DEFAULT 0,
        next_attempt  BIGINT,
        batch_id      TEXT,
        created       BIGINT NOT NULL,
        PRIMARY KEY (hook, topic, story_id, event)
    );
    CREATE INDEX webhook_deliveries_batch ON webhook_deliveries(batch_id);
    CREATE INDEX webhook_deliveries_story ON webhook_deliveries(hook, story_id, event);
"#,
    r#"
    -- Search (SQLite's FTS5 table item_search): the same columns, written by the same
    -- statements, matched through a generated tsvector.
    CREATE TABLE item_search (
        rowid    BIGINT PRIMARY KEY,
        title    TEXT NOT NULL,
        body     TEXT NOT NULL,
        outlets  TEXT NOT NULL,
        doc      tsvector GENERATED ALWAYS AS
                 (to_tsvector('simple', title || ' ' || body || ' ' || outlets)) STORED
    );
    CREATE INDEX item_search_doc ON item_search USING GIN (doc);
"#,
    r#"
    -- Every statement that changes what is published notifies, at commit, with the writer's
    -- backend pid, so every other instance rebuilds its feeds and a writer skips its own
    -- (SQLite's PRAGMA data_version, for PostgreSQL). Replaced by migration 6.
    CREATE FUNCTION newsdesk_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('newsdesk_changes', pg_backend_pid()::text);
        RETURN NULL;
    END $$;
    CREATE TRIGGER items_changed AFTER INSERT OR UPDATE OR DELETE ON items
        FOR EACH STATEMENT EXECUTE FUNCTION newsdesk_notify();
    CREATE TRIGGER appearances_changed AFTER INSERT OR UPDATE OR DELETE ON appearances
        FOR EACH STATEMENT EXECUTE FUNCTION newsdesk_notify();
    CREATE TRIGGER stories_changed AFTER INSERT OR UPDATE OR DELETE ON stories
        FOR EACH STATEMENT EXECUTE FUNCTION newsdesk_notify();
    CREATE TRIGGER sources_changed AFTER INSERT OR UPDATE OR DELETE ON sources
        FOR EACH STATEMENT EXECUTE FUNCTION newsdesk_notify();
    CREATE TRIGGER digests_changed AFTER INSERT OR UPDATE OR DELETE ON digests
        FOR EACH STATEMENT EXECUTE FUNCTION newsdesk_notify();
"#,
    r#"
    -- The writers' turn (see store::db::Connection::begin): every write transaction of every
    -- instance updates this row first, so they commit one at a time, and the count tells a
    -- writer whether another wrote since its last turn.
    CREATE TABLE newsdesk_writes (id BIGINT PRIMARY KEY, n BIGINT NOT NULL);
    INSERT INTO newsdesk_writes VALUES (1, 0);
"#,
    r#"
    -- Polls in flight across instances (see store::sources::claim): one row per source being
    -- polled, with its host for per-host politeness; a killed instance's row expires.
    CREATE TABLE source_leases (
        source_id  TEXT PRIMARY KEY,
        host       TEXT NOT NULL,
        owner      TEXT NOT NULL,
        until      BIGINT NOT NULL
    );
    CREATE INDEX source_leases_host ON source_leases(host);
"#,
    r#"
    -- Writers notify what they publish themselves (store::Writer::changed), as one instance
    -- rebuilds its feeds only then: a trigger per statement also fired for every poll's
    -- source state, and made every other instance rebuild all its feeds every interval.
    DROP TRIGGER items_changed ON items;
    DROP TRIGGER appearances_changed ON appearances;
    DROP TRIGGER stories_changed ON stories;
    DROP TRIGGER sources_changed ON sources;
    DROP TRIGGER digests_changed ON digests;
    DROP FUNCTION newsdesk_notify();
    -- epoch: moved by a write that reshapes stories (a merge, a settle), after which other
    -- writers rebuild their story engines; otherwise they read only the new items
    -- (store::db::Connection::reshape_stories). settled_turn, settled_at_ms, settle_ms: the
    -- last settle of any instance, so one settle serves them all (store::Writer::settle_if_due).
    ALTER TABLE newsdesk_writes
        ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN settled_turn BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN settled_at_ms BIGINT NOT NULL DEFAULT 0,
        ADD COLUMN settle_ms BIGINT NOT NULL DEFAULT 0;
"#,
    r#"
    -- Claims without a cluster-wide lock (store::sources::claim): a lease holds one of its
    -- host's per_host slots and one of the cluster's concurrency slots, and the unique
    -- indexes make two instances that pick the same free slot at once collide (one insert
    -- waits for the other's commit, then does nothing) instead of both polling. Leases in
    -- flight during the upgrade are dropped: at worst a source is polled once more.
    DELETE FROM source_leases;
    ALTER TABLE source_leases
        ADD COLUMN host_slot INT NOT NULL DEFAULT 0,
        ADD COLUMN slot INT NOT NULL DEFAULT 0;
    DROP INDEX source_leases_host;
    CREATE UNIQUE INDEX source_leases_host_slot ON source_leases(host, host_slot);
    CREATE UNIQUE INDEX source_leases_slot ON source_leases(slot);
"#,
    r#"
    -- A story's span (the settle's MIN/MAX(story_time) WHERE story_id = ?) read off one index:
    -- with story_id and story_time indexed apart, the planner walked items_story_time from
    -- one end filtering on story_id (~9 ms a call at 30,000 items, most of a cold load).
    CREATE INDEX items_story_span ON items(story_id, story_time);
    DROP INDEX items_story;
"#,
    r#"
    -- The write turn (newsdesk_writes.n) a story was merged in: another writer replays the
    -- merges of the turns it missed in its story engine (store::stories::catch_up) instead of
    -- rebuilding it from the whole window; only a settle still moves the epoch. With two
    -- instances in a cold pass nearly every turn followed a merge by the other, and each
    -- rebuilt inside its turn while the other waited for it.
    ALTER TABLE stories ADD COLUMN merged_turn BIGINT;
    CREATE INDEX stories_merged_turn ON stories(merged_turn) WHERE merged_turn IS NOT NULL;
"#,
];

/// This process as other instances and `/metrics` name it: `hostname:pid`.
pub fn instance_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".into());
        format!("{}:{}", host.trim(), std::process::id())
    })
}

/// The channel [`listen`] hears other writers' commits on (migration 3).
pub const CHANGES_CHANNEL: &str = "newsdesk_changes";

/// Counts, in `count`, the commits by connections other than `own_pid` that changed the
/// store (their notifications, see migration 3), on a thread of its own, until `count` has
/// no other owner. A lost connection is retried every second and counts as a change (what
/// it missed is unknown).
pub fn listen(
    target: PgTarget,
    own_pid: i64,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("db-listen".into()).spawn(move || {
        rt.block_on(async move {
            let mut first = true;
            while std::sync::Arc::strong_count(&count) > 1 {
                if !first {
                    count.fetch_add(1, Ordering::Release);
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                first = false;
                let Ok((client, mut conn)) = target.connect_raw().await else { continue };
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    while let Some(m) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                        match m {
                            Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                                if tx.send(n.payload().to_string()).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                if client.batch_execute(&format!("LISTEN {CHANGES_CHANNEL}")).await.is_err() {
                    driver.abort();
                    continue;
                }
                let own = own_pid.to_string();
                loop {
                    tokio::select! {
                        m = rx.recv() => match m {
                            Some(pid) if pid != own => { count.fetch_add(1, Ordering::Release); }
                            Some(_) => {}
                            None => break,
                        },
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
                            if std::sync::Arc::strong_count(&count) <= 1 {
                                break;
                            }
                        }
                    }
                }
                driver.abort();
            }
        });
    })?;
    Ok(())
}

/// The PostgreSQL schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`VERSION`]: under a session advisory lock, so of several
/// instances starting at once one migrates and the others then find nothing to do.
pub async fn migrate(client: &mut tokio_postgres::Client) -> anyhow::Result<()> {
    let e = |e: tokio_postgres::Error| anyhow::anyhow!("{}", describe_error(&e));
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await.map_err(e)?;
    let result = migrate_locked(client).await;
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await.map_err(e);
    result?;
    unlocked?;
    Ok(())
}

async fn migrate_locked(client: &mut tokio_postgres::Client) -> anyhow::Result<()> {
    let e = |e: tokio_postgres::Error| anyhow::anyhow!("{}", describe_error(&e));
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS newsdesk_schema (version BIGINT NOT NULL, migrated_at BIGINT NOT NULL)",
        )
        .await
        .map_err(e)?;
    let current: i64 =
        client.query_one("SELECT COALESCE(MAX(version), 0) FROM newsdesk_schema", &[]).await.map_err(e)?.get(0);
    if current > VERSION {
        anyhow::bail!(
            "PostgreSQL schema version {current} is newer than this newsdesk supports ({VERSION}); upgrade newsdesk"
        );
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = (i + 1) as i64;
        let tx = client.transaction().await.map_err(e)?;
        tx.batch_execute(sql).await.map_err(e).with_context(|| format!("PostgreSQL migration {version}"))?;
        tx.execute(
            "INSERT INTO newsdesk_schema (version, migrated_at) VALUES ($1, $2)",
            &[&version, &chrono::Utc::now().timestamp()],
        )
        .await
        .map_err(e)?;
        tx.commit().await.map_err(e)?;
        tracing::info!("PostgreSQL schema migrated to version {version}");
    }
    Ok(())
}

/// The schema version of a PostgreSQL database (0: none yet).
pub async fn version(client: &tokio_postgres::Client) -> anyhow::Result<i64> {
    let e = |e: tokio_postgres::Error| anyhow::anyhow!("{}", describe_error(&e));
    let exists: bool =
        client.query_one("SELECT to_regclass('newsdesk_schema') IS NOT NULL", &[]).await.map_err(e)?.get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client.query_one("SELECT COALESCE(MAX(version), 0) FROM newsdesk_schema", &[]).await.map_err(e)?.get(0))
}
