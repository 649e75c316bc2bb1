//! One connection type over both backends: SQLite (rusqlite) and PostgreSQL (tokio-postgres,
//! driven synchronously on the connection's own runtime). The store's SQL is written once, in
//! the SQLite dialect it always had, with the API shape of rusqlite (`prepare_cached`,
//! `query_row`, `params!`…); on PostgreSQL each statement is rewritten once ([`pg_sql`]: `?N`
//! to `$N`, `INSERT OR IGNORE` to `ON CONFLICT DO NOTHING`, a few function names) and
//! prepared once per connection. So the semantics (identity keys, appearances, tombstones,
//! stories, retention) are the same code on both, and the writer-thread design stays: one
//! writer connection, pooled readers.
//!
//! Values cross as five SQLite storage classes ([`Value`]); on PostgreSQL a parameter is
//! converted to the type the server inferred for it, and a result column from its type.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::pg::{describe_error, PgTarget};

/// A database error of either backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From SQLite.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// From PostgreSQL (the server's message; see [`describe_error`]).
    #[error("{0}")]
    Postgres(String),
    /// A query that had to return a row returned none.
    #[error("query returned no rows")]
    NoRows,
    /// A column did not hold the type asked for.
    #[error("column {0}: {1}")]
    Type(usize, String),
    /// Anything else (context given).
    #[error("{0}")]
    Other(String),
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Postgres(describe_error(&e))
    }
}

impl Error {
    /// The same error again (errors are not `Clone`; a failed group reports its commit error
    /// to each of its jobs).
    pub fn copy(&self) -> Error {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(code, msg)) => {
                Error::Sqlite(rusqlite::Error::SqliteFailure(*code, msg.clone()))
            }
            Error::NoRows => Error::NoRows,
            Error::Type(i, m) => Error::Type(*i, m.clone()),
            other => Error::Other(other.to_string()),
        }
    }
}

/// A database result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An owned value: SQLite's storage classes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// A 64-bit integer (and booleans, as 0 and 1).
    Integer(i64),
    /// A double.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A borrowed value.
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    /// NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// Text (SQLite may hand back bytes that are not UTF-8).
    Text(&'a [u8]),
    /// Bytes.
    Blob(&'a [u8]),
}

impl ValueRef<'_> {
    fn to_owned(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

impl Value {
    fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }
}

impl<'a> From<rusqlite::types::ValueRef<'a>> for ValueRef<'a> {
    fn from(v: rusqlite::types::ValueRef<'a>) -> Self {
        use rusqlite::types::ValueRef as R;
        match v {
            R::Null => ValueRef::Null,
            R::Integer(i) => ValueRef::Integer(i),
            R::Real(f) => ValueRef::Real(f),
            R::Text(t) => ValueRef::Text(t),
            R::Blob(b) => ValueRef::Blob(b),
        }
    }
}

/// A Rust value that can be a statement parameter.
pub trait ToSql {
    /// The value as SQL.
    fn to_sql(&self) -> ValueRef<'_>;
}

macro_rules! int_to_sql {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> ValueRef<'_> {
                ValueRef::Integer(*self as i64)
            }
        }
    )*};
}
int_to_sql!(i64, i32, u32, u16, u8, usize, u64);

impl ToSql for bool {
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Integer(i64::from(*self))
    }
}
impl ToSql for f64 {
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Real(*self)
    }
}
impl ToSql for str {
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Text(self.as_bytes())
    }
}
impl ToSql for String {
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Text(self.as_bytes())
    }
}
impl ToSql for [u8] {
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}
impl ToSql for Vec<u8> {
    fn to_sql(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}
impl ToSql for Value {
    fn to_sql(&self) -> ValueRef<'_> {
        self.as_ref()
    }
}
impl<T: ToSql> ToSql for Option<T> {
    fn to_sql(&self) -> ValueRef<'_> {
        match self {
            Some(v) => v.to_sql(),
            None => ValueRef::Null,
        }
    }
}
impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_sql(&self) -> ValueRef<'_> {
        (**self).to_sql()
    }
}
impl<T: ToSql + ?Sized> ToSql for Box<T> {
    fn to_sql(&self) -> ValueRef<'_> {
        (**self).to_sql()
    }
}
impl<T: ToSql + ?Sized> ToSql for Arc<T> {
    fn to_sql(&self) -> ValueRef<'_> {
        (**self).to_sql()
    }
}

/// Wraps a value for rusqlite without copying it.
struct Lite<'a>(ValueRef<'a>);

impl rusqlite::ToSql for Lite<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as R};
        Ok(ToSqlOutput::Borrowed(match self.0 {
            ValueRef::Null => R::Null,
            ValueRef::Integer(i) => R::Integer(i),
            ValueRef::Real(f) => R::Real(f),
            ValueRef::Text(t) => R::Text(t),
            ValueRef::Blob(b) => R::Blob(b),
        }))
    }
}

/// The parameters of a statement: `params![…]`, an array, or [`params_from_iter`].
pub trait Params {
    /// The values, in order.
    fn values(&self) -> Vec<ValueRef<'_>>;
}

impl Params for &[&dyn ToSql] {
    fn values(&self) -> Vec<ValueRef<'_>> {
        self.iter().map(|v| v.to_sql()).collect()
    }
}
impl Params for [&dyn ToSql; 0] {
    fn values(&self) -> Vec<ValueRef<'_>> {
        Vec::new()
    }
}
macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn values(&self) -> Vec<ValueRef<'_>> {
                self.iter().map(|v| v.to_sql()).collect()
            }
        }
    )*};
}
array_params!(1, 2, 3, 4, 5, 6, 7, 8);

/// Parameters from a list of values.
pub struct ParamsFromIter(Vec<Value>);

/// Parameters from any iterator of values (statements built at run time).
pub fn params_from_iter<I: IntoIterator<Item = Value>>(iter: I) -> ParamsFromIter {
    ParamsFromIter(iter.into_iter().collect())
}

impl Params for ParamsFromIter {
    fn values(&self) -> Vec<ValueRef<'_>> {
        self.0.iter().map(|v| v.as_ref()).collect()
    }
}

/// Statement parameters as a slice (rusqlite's macro of the same name).
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::store::db::ToSql] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::db::ToSql),+] as &[&dyn $crate::store::db::ToSql] };
}
pub use crate::params;

/// A Rust value a column can be read as.
pub trait FromSql: Sized {
    /// Converts, or says why not.
    fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String>;
}

fn wrong(v: ValueRef<'_>, want: &str) -> String {
    let got = match v {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "a blob",
    };
    format!("{got} where {want} was expected")
}

macro_rules! int_from_sql {
    ($($t:ty),*) => {$(
        impl FromSql for $t {
            fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String> {
                match v {
                    ValueRef::Integer(i) => <$t>::try_from(i).map_err(|_| format!("{i} is out of range")),
                    other => Err(wrong(other, "an integer")),
                }
            }
        }
    )*};
}
int_from_sql!(i64, i32, u32, u16, u8, usize, u64);

impl FromSql for bool {
    fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Integer(i) => Ok(i != 0),
            other => Err(wrong(other, "a boolean")),
        }
    }
}
impl FromSql for f64 {
    fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Real(f) => Ok(f),
            ValueRef::Integer(i) => Ok(i as f64),
            other => Err(wrong(other, "a number")),
        }
    }
}
impl FromSql for String {
    fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Text(t) => String::from_utf8(t.to_vec()).map_err(|e| e.to_string()),
            other => Err(wrong(other, "text")),
        }
    }
}
impl FromSql for Vec<u8> {
    fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Blob(b) | ValueRef::Text(b) => Ok(b.to_vec()),
            other => Err(wrong(other, "a blob")),
        }
    }
}
impl FromSql for Value {
    fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        Ok(v.to_owned())
    }
}
impl<T: FromSql> FromSql for Option<T> {
    fn from_sql(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Null => Ok(None),
            other => T::from_sql(other).map(Some),
        }
    }
}

/// A column index (rusqlite lets `get` take names too; this store never does).
pub trait ColIndex {
    /// The zero-based index.
    fn index(self) -> usize;
}
impl ColIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One result row.
pub enum Row<'a> {
    /// A row of an SQLite statement, read in place.
    Lite(&'a rusqlite::Row<'a>),
    /// A row from PostgreSQL.
    Owned(&'a [Value]),
}

impl Row<'_> {
    /// Column `idx` as `T`.
    pub fn get<I: ColIndex, T: FromSql>(&self, idx: I) -> Result<T> {
        let i = idx.index();
        let v = self.get_ref(i)?;
        T::from_sql(v).map_err(|m| Error::Type(i, m))
    }

    /// Column `idx` as it is.
    pub fn get_ref(&self, i: usize) -> Result<ValueRef<'_>> {
        match self {
            Row::Lite(r) => Ok(r.get_ref(i)?.into()),
            Row::Owned(vals) => vals.get(i).map(Value::as_ref).ok_or_else(|| Error::Type(i, "no such column".into())),
        }
    }
}

/// `.optional()` on a single-row result, as in rusqlite.
pub trait OptionalExtension<T> {
    /// `Ok(None)` for no row.
    fn optional(self) -> Result<Option<T>>;
}
impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) | Err(Error::Sqlite(rusqlite::Error::QueryReturnedNoRows)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A connection to either backend.
pub enum Connection {
    /// An SQLite file.
    Lite(rusqlite::Connection),
    /// A PostgreSQL database.
    Pg(Box<PgConn>),
}

/// How a transaction begins (SQLite: `IMMEDIATE` takes the write lock at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// `BEGIN`.
    Deferred,
    /// `BEGIN IMMEDIATE` (PostgreSQL: `BEGIN`).
    Immediate,
}

impl Connection {
    /// Opens an SQLite file as it is (no pragmas, no migrations: see [`super::Store::open`]).
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Connection> {
        Ok(Connection::Lite(rusqlite::Connection::open(path)?))
    }

    /// A new in-memory SQLite database.
    pub fn open_in_memory() -> Result<Connection> {
        Ok(Connection::Lite(rusqlite::Connection::open_in_memory()?))
    }

    /// The SQLite connection, if this is one (pragmas and checkpoints).
    pub fn as_lite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Connection::Lite(c) => Some(c),
            Connection::Pg(_) => None,
        }
    }

    /// Whether this is PostgreSQL.
    pub fn is_pg(&self) -> bool {
        matches!(self, Connection::Pg(_))
    }

    /// Runs statements without parameters (several, separated by `;`).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Connection::Lite(c) => Ok(c.execute_batch(sql)?),
            Connection::Pg(p) => p.batch(sql),
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// The first row of a query, mapped (an error when there is none).
    pub fn query_row<T, P: Params, F: FnOnce(&Row<'_>) -> Result<T>>(&self, sql: &str, params: P, f: F) -> Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// [`Connection::execute_later`] of one statement.
    pub fn execute_later<P: Params>(&self, sql: &str, params: P) -> Result<()> {
        self.prepare_cached(sql)?.execute_later(params)
    }

    /// A statement kept prepared for the next use of the same SQL.
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        match self {
            Connection::Lite(c) => Ok(Statement::Lite(LiteStmt::Cached(c.prepare_cached(sql)?))),
            Connection::Pg(p) => Ok(Statement::Pg { conn: p, sql: p.translate(sql), cache: true }),
        }
    }

    /// A statement for SQL built at run time (not kept).
    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        match self {
            Connection::Lite(c) => Ok(Statement::Lite(LiteStmt::Plain(c.prepare(sql)?))),
            Connection::Pg(p) => Ok(Statement::Pg { conn: p, sql: p.translate(sql), cache: false }),
        }
    }

    /// Whether no transaction is open.
    pub fn is_autocommit(&self) -> bool {
        match self {
            Connection::Lite(c) => c.is_autocommit(),
            Connection::Pg(p) => p.depth.get() == 0,
        }
    }

    /// Begins a transaction: committed by [`Transaction::commit`], rolled back when dropped.
    pub fn transaction(&self) -> Result<Transaction<'_>> {
        self.transaction_with_behavior(Behavior::Deferred)
    }

    /// Begins a transaction of the given kind.
    pub fn transaction_with_behavior(&self, b: Behavior) -> Result<Transaction<'_>> {
        self.begin(b)?;
        Ok(Transaction { conn: self, savepoint: false, done: false })
    }

    /// A savepoint: a nested transaction inside the open one (or a transaction of its own).
    /// Both engines let a name repeat (a rollback goes to the innermost), so one name serves.
    pub fn savepoint(&self) -> Result<Transaction<'_>> {
        self.execute_batch("SAVEPOINT nd_sp")?;
        self.set_depth(1);
        Ok(Transaction { conn: self, savepoint: true, done: false })
    }

    /// `BEGIN` without a guard (the writer's group transactions end with [`Connection::commit`]
    /// or [`Connection::rollback`]).
    ///
    /// On PostgreSQL every transaction of the store's writers begins by taking the one row
    /// of `newsdesk_writes` (schema migration 4): the writers of all instances take turns as
    /// SQLite's one writer does, so ids read as `MAX(id) + 1` and the story engine's view stay
    /// exact; the counter it returns tells whether another writer committed since this one's
    /// last turn ([`Connection::take_foreign_write`]).
    pub fn begin(&self, b: Behavior) -> Result<()> {
        self.execute_batch(if b == Behavior::Immediate { "BEGIN IMMEDIATE" } else { "BEGIN" })?;
        self.set_depth(1);
        if let Connection::Pg(p) = self {
            let turn =
                self.query_row("UPDATE newsdesk_writes SET n = n + 1 WHERE id = 1 RETURNING n, epoch", [], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                });
            let (n, epoch) = match turn {
                Ok(t) => t,
                Err(e) => {
                    let _ = self.rollback();
                    return Err(e);
                }
            };
            if p.last_write.get() != Some(n - 1) {
                p.foreign_write.set(true);
            }
            if p.last_epoch.get() != Some(epoch) {
                p.reshaped.set(true);
            }
            p.last_write.set(Some(n));
            p.last_epoch.set(Some(epoch));
        }
        Ok(())
    }

    /// What other writers did since this connection's previous transaction began
    /// (PostgreSQL; SQLite's writer learns of other processes from `PRAGMA data_version`).
    /// Reading clears it.
    pub fn take_foreign_write(&self) -> Foreign {
        match self {
            Connection::Pg(p) => {
                let added = p.foreign_write.replace(false);
                // Turns in between that took nothing (source state only) still count: the
                // merges to follow are those since the last turn that took this.
                let now = p.last_write.get();
                p.missed.set(p.followed.replace(now).zip(now));
                match p.reshaped.replace(false) {
                    true => Foreign::Reshaped,
                    false if added => Foreign::Added,
                    false => Foreign::Nothing,
                }
            }
            Connection::Lite(_) => Foreign::Nothing,
        }
    }

    /// Says, inside a write transaction, that it changes stories in a way other writers'
    /// engines cannot follow by reading the new items and merges (a settle): they rebuild
    /// theirs from the rows (PostgreSQL; nothing to do on SQLite, which has one writer).
    pub fn reshape_stories(&self) -> Result<()> {
        if let Connection::Pg(p) = self {
            let epoch: i64 =
                self.query_row("UPDATE newsdesk_writes SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch", [], |r| {
                    r.get(0)
                })?;
            p.last_epoch.set(Some(epoch));
        }
        Ok(())
    }

    /// What the last [`Connection::take_foreign_write`] covered, as `(turn, current)`: from
    /// the turn of the take before it to the current one. Other writers' merges since are
    /// those with a `merged_turn` strictly between (PostgreSQL; see [`super::stories::catch_up`]).
    pub fn missed_turns(&self) -> Option<(i64, i64)> {
        match self {
            Connection::Pg(p) => p.missed.get(),
            Connection::Lite(_) => None,
        }
    }

    /// The write turn this connection's open (or last) transaction took (PostgreSQL).
    pub fn write_turn(&self) -> Option<i64> {
        match self {
            Connection::Pg(p) => p.last_write.get(),
            Connection::Lite(_) => None,
        }
    }

    /// `COMMIT` of a transaction opened by [`Connection::begin`].
    pub fn commit(&self) -> Result<()> {
        let r = self.execute_batch("COMMIT");
        if r.is_ok() {
            self.set_depth(-1);
        }
        r
    }

    /// `ROLLBACK` of a transaction opened by [`Connection::begin`].
    pub fn rollback(&self) -> Result<()> {
        self.set_depth(-1);
        self.forget_turn();
        self.execute_batch("ROLLBACK")
    }

    /// A rolled-back transaction took back its increment of the write counter (and any of
    /// the story epoch, so the next turn rebuilds to be sure).
    fn forget_turn(&self) {
        if let Connection::Pg(p) = self {
            p.last_write.set(p.last_write.get().map(|n| n - 1));
            p.last_epoch.set(None);
        }
    }

    fn set_depth(&self, by: i32) {
        if let Connection::Pg(p) = self {
            p.depth.set(p.depth.get().saturating_add_signed(by));
        }
    }

    /// Sets how long SQLite waits for another process's lock (PostgreSQL: nothing to do).
    pub fn busy_timeout(&self, d: std::time::Duration) -> Result<()> {
        if let Connection::Lite(c) = self {
            c.busy_timeout(d)?;
        }
        Ok(())
    }
}

/// An open transaction or savepoint; rolled back when dropped uncommitted.
pub struct Transaction<'c> {
    conn: &'c Connection,
    savepoint: bool,
    done: bool,
}

impl Transaction<'_> {
    /// Commits (a savepoint: releases it into the enclosing transaction).
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        let r = self.conn.execute_batch(if self.savepoint { "RELEASE nd_sp" } else { "COMMIT" });
        match r {
            Ok(()) => self.conn.set_depth(-1),
            Err(_) => self.undo(),
        }
        r
    }

    /// Rolls back.
    pub fn rollback(mut self) -> Result<()> {
        self.done = true;
        self.undo();
        Ok(())
    }

    fn undo(&self) {
        let _ = self.conn.execute_batch(if self.savepoint { "ROLLBACK TO nd_sp; RELEASE nd_sp" } else { "ROLLBACK" });
        self.conn.set_depth(-1);
        if !self.savepoint {
            self.conn.forget_turn();
        }
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.undo();
        }
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// An SQLite statement, kept in rusqlite's cache or not.
pub enum LiteStmt<'c> {
    /// From `prepare_cached`.
    Cached(rusqlite::CachedStatement<'c>),
    /// From `prepare`.
    Plain(rusqlite::Statement<'c>),
}

impl<'c> std::ops::Deref for LiteStmt<'c> {
    type Target = rusqlite::Statement<'c>;
    fn deref(&self) -> &rusqlite::Statement<'c> {
        match self {
            LiteStmt::Cached(s) => s,
            LiteStmt::Plain(s) => s,
        }
    }
}
impl std::ops::DerefMut for LiteStmt<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            LiteStmt::Cached(s) => s,
            LiteStmt::Plain(s) => s,
        }
    }
}

/// A prepared statement.
pub enum Statement<'c> {
    /// SQLite.
    Lite(LiteStmt<'c>),
    /// PostgreSQL: the translated SQL, prepared on first use by the connection.
    Pg {
        /// The connection.
        conn: &'c PgConn,
        /// The statement in PostgreSQL's dialect.
        sql: Arc<str>,
        /// Whether the connection keeps it prepared.
        cache: bool,
    },
}

fn lite_params<'a>(vals: &'a [ValueRef<'a>]) -> Vec<Lite<'a>> {
    vals.iter().map(|v| Lite(*v)).collect()
}

impl Statement<'_> {
    /// Runs it; the number of rows changed.
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        let vals = params.values();
        match self {
            Statement::Lite(s) => {
                let p = lite_params(&vals);
                Ok(s.execute(rusqlite::params_from_iter(p.iter()))?)
            }
            Statement::Pg { conn, sql, cache } => conn.execute(sql, &vals, *cache).map(|n| n as usize),
        }
    }

    /// Runs it when its row count is not needed: SQLite at once; PostgreSQL with the
    /// connection's next statement, the statements queued so far sent together (pipelined),
    /// so a transaction's inserts cost one round trip instead of one each. An error of a
    /// queued statement is the error of the statement that sent it (or of the commit), so
    /// use it inside a transaction, where either fails the whole.
    pub fn execute_later<P: Params>(&mut self, params: P) -> Result<()> {
        match self {
            Statement::Lite(_) => self.execute(params).map(drop),
            Statement::Pg { conn, sql, .. } => {
                conn.defer(sql.clone(), params.values().into_iter().map(ValueRef::to_owned).collect())
            }
        }
    }

    /// Runs it and walks the rows.
    pub fn query<P: Params>(&mut self, params: P) -> Result<Rows<'_>> {
        let vals = params.values();
        match self {
            Statement::Lite(s) => {
                let p = lite_params(&vals);
                Ok(Rows::Lite(s.query(rusqlite::params_from_iter(p.iter()))?))
            }
            Statement::Pg { conn, sql, cache } => {
                Ok(Rows::Owned { rows: conn.query(sql, &vals, *cache)?.into_iter(), current: Vec::new() })
            }
        }
    }

    /// Runs it and maps each row.
    pub fn query_map<T, P: Params, F: FnMut(&Row<'_>) -> Result<T>>(
        &mut self,
        params: P,
        f: F,
    ) -> Result<MappedRows<'_, F>> {
        Ok(MappedRows { rows: self.query(params)?, f })
    }

    /// The first row, mapped ([`Error::NoRows`] when there is none).
    pub fn query_row<T, P: Params, F: FnOnce(&Row<'_>) -> Result<T>>(&mut self, params: P, f: F) -> Result<T> {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(r) => f(&r),
            None => Err(Error::NoRows),
        }
    }

    /// Whether it returns a row.
    pub fn exists<P: Params>(&mut self, params: P) -> Result<bool> {
        let mut rows = self.query(params)?;
        Ok(rows.next()?.is_some())
    }
}

/// The rows of a query.
pub enum Rows<'s> {
    /// SQLite, stepped in place.
    Lite(rusqlite::Rows<'s>),
    /// PostgreSQL, fetched whole.
    Owned {
        /// Rows not yet handed out.
        rows: std::vec::IntoIter<Vec<Value>>,
        /// The row handed out last.
        current: Vec<Value>,
    },
}

impl Rows<'_> {
    /// The next row.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        match self {
            Rows::Lite(r) => Ok(r.next()?.map(Row::Lite)),
            Rows::Owned { rows, current } => match rows.next() {
                Some(r) => {
                    *current = r;
                    Ok(Some(Row::Owned(current)))
                }
                None => Ok(None),
            },
        }
    }
}

/// Rows mapped by a function, as an iterator.
pub struct MappedRows<'s, F> {
    rows: Rows<'s>,
    f: F,
}

impl<T, F: FnMut(&Row<'_>) -> Result<T>> Iterator for MappedRows<'_, F> {
    type Item = Result<T>;
    fn next(&mut self) -> Option<Result<T>> {
        match self.rows.next() {
            Ok(Some(r)) => Some((self.f)(&r)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// What other writers did since a connection's last write turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    /// Nothing.
    Nothing,
    /// Stored items, each assigned as an engine that had seen them all would have, and
    /// merged stories (recorded with their turn: `stories.merged_turn`).
    Added,
    /// Changed stories in a way only a rebuild from the rows follows.
    Reshaped,
}

/// How many statements [`Statement::execute_later`] queues before it sends them.
const PIPELINE: usize = 512;

/// A PostgreSQL connection used synchronously: its client runs on a runtime of its own, so
/// the store's threads (the writer, the readers in `spawn_blocking`) call it as they call
/// SQLite.
pub struct PgConn {
    /// Always `Some` but in `drop`.
    rt: Option<tokio::runtime::Runtime>,
    client: std::cell::RefCell<tokio_postgres::Client>,
    target: PgTarget,
    statements: Mutex<HashMap<Arc<str>, tokio_postgres::Statement>>,
    translated: Mutex<HashMap<String, Arc<str>>>,
    depth: Cell<u32>,
    /// The write counter this connection's last transaction set (see [`Connection::begin`]).
    last_write: Cell<Option<i64>>,
    /// The turn of the last [`Connection::take_foreign_write`], and the span the last one
    /// covered (see [`Connection::missed_turns`]).
    followed: Cell<Option<i64>>,
    missed: Cell<Option<(i64, i64)>>,
    /// Another writer committed in between.
    foreign_write: Cell<bool>,
    /// The story epoch (see [`Connection::reshape_stories`]) as of this connection's last turn.
    last_epoch: Cell<Option<i64>>,
    /// Another writer reshaped stories in between.
    reshaped: Cell<bool>,
    /// Statements of [`Statement::execute_later`] not sent yet.
    pending: std::cell::RefCell<Vec<(Arc<str>, Vec<Value>)>>,
    /// `user@host:port/db`, for errors.
    pub what: String,
}

impl PgConn {
    /// Connects (see [`PgTarget::connect`]).
    pub fn connect(target: &PgTarget) -> anyhow::Result<PgConn> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("starting a runtime for PostgreSQL: {e}"))?;
        let client = match run_on(&rt, target.connect()) {
            Ok(c) => c,
            Err(e) => {
                // Dropping it would wait, which an async caller (the daemon) may not.
                rt.shutdown_background();
                return Err(e);
            }
        };
        Ok(PgConn {
            rt: Some(rt),
            client: std::cell::RefCell::new(client),
            target: target.clone(),
            statements: Mutex::default(),
            translated: Mutex::default(),
            depth: Cell::new(0),
            last_write: Cell::new(None),
            followed: Cell::new(None),
            missed: Cell::new(None),
            foreign_write: Cell::new(false),
            last_epoch: Cell::new(None),
            reshaped: Cell::new(false),
            pending: std::cell::RefCell::default(),
            what: target.describe(),
        })
    }

    /// Brings the schema to [`super::pg::VERSION`] (see [`super::pg::migrate`]).
    pub fn migrate(&mut self) -> anyhow::Result<()> {
        match &self.rt {
            Some(rt) => run_on(rt, super::pg::migrate(self.client.get_mut())),
            None => anyhow::bail!("the PostgreSQL connection is closed"),
        }
    }

    /// Runs a future to completion on this connection's runtime.
    fn run<F: std::future::Future + Send>(&self, f: F) -> F::Output
    where
        F::Output: Send,
    {
        match &self.rt {
            Some(rt) => run_on(rt, f),
            // Only `drop` takes it, and nothing runs after that.
            None => unreachable!("PostgreSQL connection used after drop"),
        }
    }

    /// A new client when the server closed this one (it restarted, or the network broke):
    /// the store's connections outlive an outage. Not inside a transaction, which died with
    /// the old connection (its statements fail, and the caller's rollback resets the depth).
    fn revive(&self) -> Result<()> {
        if !self.client.borrow().is_closed() {
            return Ok(());
        }
        let client = self.run(self.target.connect()).map_err(|e| Error::Postgres(format!("{e:#}")))?;
        *self.client.borrow_mut() = client;
        self.statements.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.depth.set(0);
        self.last_write.set(None);
        tracing::info!("PostgreSQL connection to {} re-established", self.what);
        Ok(())
    }

    fn translate(&self, sql: &str) -> Arc<str> {
        let mut t = self.translated.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = t.get(sql) {
            return s.clone();
        }
        let s: Arc<str> = pg_sql(sql).into();
        if t.len() < 1024 {
            t.insert(sql.to_string(), s.clone());
        }
        s
    }

    /// Queues a statement for [`PgConn::flush`] (at most [`PIPELINE`] wait).
    fn defer(&self, sql: Arc<str>, vals: Vec<Value>) -> Result<()> {
        let full = {
            let mut p = self.pending.borrow_mut();
            p.push((sql, vals));
            p.len() >= PIPELINE
        };
        if full {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends the queued statements at once and waits for all their answers: the server runs
    /// them in order, and the first error is returned (with its statement).
    fn flush(&self) -> Result<()> {
        self.flush_then(None).map(drop)
    }

    /// [`PgConn::flush`], with a query sent after the queued statements in the same
    /// pipeline (one round trip for both): its rows.
    fn flush_then(&self, last: Option<(&Arc<str>, &[ValueRef<'_>], bool)>) -> Result<Option<Vec<tokio_postgres::Row>>> {
        use futures_util::future::Either;
        let queued = std::mem::take(&mut *self.pending.borrow_mut());
        if queued.is_empty() && last.is_none() {
            return Ok(None);
        }
        let mut prepared = Vec::with_capacity(queued.len());
        for (sql, vals) in &queued {
            let stmt = self.statement(sql, true)?;
            if stmt.params().len() != vals.len() {
                return Err(Error::Other(format!(
                    "statement takes {} parameters, {} given: {sql}",
                    stmt.params().len(),
                    vals.len()
                )));
            }
            prepared.push(stmt);
        }
        let last = match last {
            Some((sql, vals, cache)) => {
                let stmt = self.statement(sql, cache)?;
                let params = Self::bind(&stmt, vals)?;
                Some((sql, stmt, params))
            }
            None => None,
        };
        let params: Vec<Vec<PgParam<'_>>> =
            queued.iter().map(|(_, vals)| vals.iter().map(|v| PgParam(v.as_ref())).collect()).collect();
        let client = self.client.borrow();
        let client = &*client;
        let failed = |e: tokio_postgres::Error, sql: &str| Error::Postgres(format!("{}: {sql}", describe_error(&e)));
        let runs = prepared.iter().zip(&params).zip(&queued).map(|((stmt, ps), (sql, _))| {
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = ps.iter().map(|p| p as _).collect();
            Either::Left(async move { client.execute(stmt, &refs).await.map(|_| None).map_err(|e| failed(e, sql)) })
        });
        let query = last.as_ref().map(|(sql, stmt, ps)| {
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = ps.iter().map(|p| p as _).collect();
            Either::Right(async move { client.query(stmt, &refs).await.map(Some).map_err(|e| failed(e, sql)) })
        });
        // Each future sends its request when first polled: joined, all go out before the
        // first answer is awaited.
        let mut rows = None;
        for r in self.run(futures_util::future::join_all(runs.chain(query))) {
            if let Some(r) = r? {
                rows = Some(r);
            }
        }
        Ok(rows)
    }

    fn batch(&self, sql: &str) -> Result<()> {
        if sql.starts_with("ROLLBACK") {
            // What was queued belongs to the scope being rolled back (a BEGIN or SAVEPOINT
            // sent everything before it).
            self.pending.borrow_mut().clear();
        } else {
            self.flush()?;
        }
        let sql = self.translate(sql);
        self.revive()?;
        Ok(self.run(self.client.borrow().batch_execute(&sql))?)
    }

    fn statement(&self, sql: &Arc<str>, cache: bool) -> Result<tokio_postgres::Statement> {
        self.revive()?;
        if let Some(s) = self.statements.lock().unwrap_or_else(|p| p.into_inner()).get(sql) {
            return Ok(s.clone());
        }
        let s = self
            .run(self.client.borrow().prepare(sql))
            .map_err(|e| Error::Postgres(format!("{}: {sql}", describe_error(&e))))?;
        if cache {
            self.statements.lock().unwrap_or_else(|p| p.into_inner()).insert(sql.clone(), s.clone());
        }
        Ok(s)
    }

    fn bind<'v>(stmt: &tokio_postgres::Statement, vals: &'v [ValueRef<'v>]) -> Result<Vec<PgParam<'v>>> {
        if stmt.params().len() != vals.len() {
            return Err(Error::Other(format!(
                "statement takes {} parameters, {} given",
                stmt.params().len(),
                vals.len()
            )));
        }
        Ok(vals.iter().map(|v| PgParam(*v)).collect())
    }

    fn execute(&self, sql: &Arc<str>, vals: &[ValueRef<'_>], cache: bool) -> Result<u64> {
        self.flush()?;
        let stmt = self.statement(sql, cache)?;
        let params = Self::bind(&stmt, vals)?;
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        self.run(self.client.borrow().execute(&stmt, &refs))
            .map_err(|e| Error::Postgres(format!("{}: {sql}", describe_error(&e))))
    }

    fn query(&self, sql: &Arc<str>, vals: &[ValueRef<'_>], cache: bool) -> Result<Vec<Vec<Value>>> {
        let rows = self.flush_then(Some((sql, vals, cache)))?.unwrap_or_default();
        rows.iter().map(pg_row).collect()
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        // A runtime may not be dropped (it waits) inside an async context, where a pooled
        // reader can be dropped: let it go without waiting.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs `f` on `rt`. Inside another runtime blocking on a second one is refused: on a
/// multi-threaded one (the daemon's: its `spawn_blocking` threads, where the store's reads
/// and claims run, and its workers) `block_in_place` leaves that runtime's context for the
/// call, which costs nothing on a blocking thread; on a current-thread one (tests) the call
/// runs on a short-lived thread of its own. A thread per statement had been the price of
/// every claim and read in the daemon (~15 % of an instance's CPU in a cold pass).
fn run_on<F: std::future::Future + Send>(rt: &tokio::runtime::Runtime, f: F) -> F::Output
where
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => rt.block_on(f),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(|| rt.block_on(f)),
        Ok(_) => std::thread::scope(|s| match s.spawn(|| rt.block_on(f)).join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        }),
    }
}

/// A parameter, converted to the type PostgreSQL inferred for it.
#[derive(Debug)]
struct PgParam<'a>(ValueRef<'a>);

impl tokio_postgres::types::ToSql for PgParam<'_> {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use tokio_postgres::types::{IsNull, Type};
        let bad = || -> Box<dyn std::error::Error + Sync + Send> {
            format!("cannot pass {:?} as a PostgreSQL {ty}", self.0).into()
        };
        match self.0 {
            ValueRef::Null => Ok(IsNull::Yes),
            ValueRef::Integer(i) => match *ty {
                Type::INT8 => put(&i, ty, out),
                Type::INT4 => put(&i32::try_from(i).map_err(|_| bad())?, ty, out),
                Type::INT2 => put(&i16::try_from(i).map_err(|_| bad())?, ty, out),
                Type::FLOAT8 => put(&(i as f64), ty, out),
                Type::FLOAT4 => put(&(i as f32), ty, out),
                Type::BOOL => put(&(i != 0), ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => put(&i.to_string(), &Type::TEXT, out),
                _ => Err(bad()),
            },
            ValueRef::Real(f) => match *ty {
                Type::FLOAT8 => put(&f, ty, out),
                Type::FLOAT4 => put(&(f as f32), ty, out),
                Type::TEXT | Type::VARCHAR => put(&f.to_string(), ty, out),
                _ => Err(bad()),
            },
            ValueRef::Text(t) => {
                let s = std::str::from_utf8(t).map_err(|_| bad())?;
                match *ty {
                    Type::BYTEA => put(&t, ty, out),
                    Type::INT8 => put(&s.parse::<i64>().map_err(|_| bad())?, ty, out),
                    Type::INT4 => put(&s.parse::<i32>().map_err(|_| bad())?, ty, out),
                    _ => put(&s, &Type::TEXT, out),
                }
            }
            ValueRef::Blob(b) => match *ty {
                Type::TEXT | Type::VARCHAR => put(&std::str::from_utf8(b).map_err(|_| bad())?, ty, out),
                _ => put(&b, &Type::BYTEA, out),
            },
        }
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

fn put<T: tokio_postgres::types::ToSql>(
    v: &T,
    ty: &tokio_postgres::types::Type,
    out: &mut bytes::BytesMut,
) -> std::result::Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
    v.to_sql(ty, out)
}

/// A PostgreSQL row as SQLite values.
fn pg_row(r: &tokio_postgres::Row) -> Result<Vec<Value>> {
    use tokio_postgres::types::Type;
    let mut out = Vec::with_capacity(r.len());
    for (i, c) in r.columns().iter().enumerate() {
        let e = |e: tokio_postgres::Error| Error::Type(i, describe_error(&e));
        let v = match *c.type_() {
            Type::INT8 => r.try_get::<_, Option<i64>>(i).map_err(e)?.map(Value::Integer),
            Type::INT4 => r.try_get::<_, Option<i32>>(i).map_err(e)?.map(|v| Value::Integer(v.into())),
            Type::INT2 => r.try_get::<_, Option<i16>>(i).map_err(e)?.map(|v| Value::Integer(v.into())),
            Type::OID => r.try_get::<_, Option<u32>>(i).map_err(e)?.map(|v| Value::Integer(v.into())),
            Type::BOOL => r.try_get::<_, Option<bool>>(i).map_err(e)?.map(|v| Value::Integer(v.into())),
            Type::FLOAT8 => r.try_get::<_, Option<f64>>(i).map_err(e)?.map(Value::Real),
            Type::FLOAT4 => r.try_get::<_, Option<f32>>(i).map_err(e)?.map(|v| Value::Real(v.into())),
            Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i).map_err(e)?.map(Value::Blob),
            Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR | Type::UNKNOWN => {
                r.try_get::<_, Option<String>>(i).map_err(e)?.map(Value::Text)
            }
            ref other => {
                return Err(Error::Type(i, format!("PostgreSQL type {other} is not read by newsdesk (cast it)")))
            }
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(out)
}

/// The store's SQL (SQLite dialect) in PostgreSQL's: `?N` → `$N` (a bare `?` numbered in
/// order), `INSERT OR IGNORE` → `ON CONFLICT DO NOTHING`, `BEGIN IMMEDIATE` → `BEGIN`,
/// `group_concat` → `string_agg`, `char(` → `chr(`, `IS NOT ?` → `IS DISTINCT FROM`. Quoted
/// strings are left alone.
pub fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 32);
    let b = sql.as_bytes();
    let mut i = 0;
    let mut next_param = 1;
    let mut ignore = false;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' {
            // A string literal, copied as is ('' inside is an escaped quote).
            let start = i;
            i += 1;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            out.push_str(&sql[start..i]);
            continue;
        }
        if c == b'?' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > start {
                out.push('$');
                out.push_str(&sql[start..j]);
            } else {
                out.push('$');
                out.push_str(&next_param.to_string());
                next_param += 1;
            }
            i = j;
            continue;
        }
        let rest = &sql[i..];
        let word_start = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if word_start {
            let mut replaced = false;
            for (from, to) in [
                ("INSERT OR IGNORE INTO", "INSERT INTO"),
                ("BEGIN IMMEDIATE", "BEGIN"),
                ("group_concat(", "string_agg("),
                ("char(", "chr("),
                ("IS NOT ?", "IS DISTINCT FROM "),
            ] {
                if rest.len() >= from.len() && rest[..from.len()].eq_ignore_ascii_case(from) {
                    out.push_str(to);
                    i += from.len() - usize::from(from.ends_with('?'));
                    if from.starts_with("INSERT OR IGNORE") {
                        ignore = true;
                    }
                    replaced = true;
                    break;
                }
            }
            if replaced {
                continue;
            }
        }
        let ch = rest.chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    if ignore {
        let trimmed = out.trim_end().trim_end_matches(';').len();
        out.truncate(trimmed);
        out.push_str(" ON CONFLICT DO NOTHING");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_sql_becomes_postgres_sql() {
        assert_eq!(pg_sql("SELECT a FROM t WHERE b = ?1 AND c = ?2"), "SELECT a FROM t WHERE b = $1 AND c = $2");
        assert_eq!(pg_sql("SELECT '?1', x FROM t WHERE y = ?"), "SELECT '?1', x FROM t WHERE y = $1");
        assert_eq!(
            pg_sql("INSERT OR IGNORE INTO t (a) VALUES (?1);"),
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING"
        );
        assert_eq!(pg_sql("SELECT group_concat(x, char(31)) FROM t"), "SELECT string_agg(x, chr(31)) FROM t");
        assert_eq!(pg_sql("WHERE a IS NOT ?2"), "WHERE a IS DISTINCT FROM $2");
        assert_eq!(pg_sql("SELECT varchar(1), 'it''s ?'"), "SELECT varchar(1), 'it''s ?'");
        assert_eq!(pg_sql("BEGIN IMMEDIATE"), "BEGIN");
    }
}
