//! Store: the SQLite file. One writer thread owns the only write connection (every write is a
//! job sent to it, so there is never lock contention between writers); readers open their own
//! WAL connections. Schema migrations run by `PRAGMA user_version` ([`schema`]). The
//! full-text index over items ([`search`]) is written by the same writer, in the transaction
//! that changes what it indexes.
//!
//! Group commit: polls store through [`Store::write_grouped`]. When such jobs queue up (a cold
//! poll of many feeds), the writer runs up to [`MAX_GROUP`] of them in one SQLite transaction,
//! each inside its own savepoint, so every fetched feed is still all-or-nothing (a feed that
//! fails rolls back alone) while the index pages a commit rewrites are written once per group
//! instead of once per feed. Results, and the "content changed" signal readers cache by, are
//! delivered only after the group commits. With no queue, a group is one job: the same
//! latency as a transaction per job. The search index writes of a group's feeds are made
//! once, just before it commits (see [`search::Batch`]).
//!
//! Checkpoints: by default SQLite copies the WAL back into the database inside the commit that
//! pushes the WAL past 1,000 pages, fsync included, so now and then a poll's commit waited for
//! a checkpoint (the long tail of per-poll latency in the daemon). The daemon moves them to a
//! thread of their own ([`Store::checkpoint_in_background`]): at most one PASSIVE checkpoint a
//! second while there are writes, on its own connection, beside the writer's appends; the
//! writer checkpoints itself only past [`WAL_CAP_PAGES`], when continuous writes never let
//! the background checkpoints catch up. `newsdesk fetch` does the same (its writer is its
//! critical path too) and ends with one full checkpoint ([`Store::checkpoint_now`]).

pub mod copy;
pub mod db;
pub mod items;
pub mod pg;
pub mod pg_tls;
pub mod queries;
pub mod retention;
pub mod schema;
pub mod search;
pub mod sources;
pub mod stories;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use anyhow::Context;
use rusqlite::OpenFlags;

use db::Connection;

use crate::dedup::story::{StoryIndex, StoryParams};

/// Called once the group a job ran in has committed (`None`) or failed to (`Some`).
type Finish = Box<dyn FnOnce(Option<&crate::store::db::Error>) + Send>;

enum Job {
    /// Runs alone, with its own transactions if any.
    Solo(Box<dyn FnOnce(&mut Writer) + Send>),
    /// Runs inside a group transaction (see the module doc).
    Grouped(Box<dyn FnOnce(&mut Writer) -> Finish + Send>),
}

/// With a background checkpointer, the WAL size (in pages) past which the writer checkpoints
/// inside its own commits again (SQLite's `wal_autocheckpoint`): 64 MiB of 4 KiB pages.
pub const WAL_CAP_PAGES: i64 = 16_384;

/// How long the background checkpointer lets writes accumulate before a checkpoint (each one
/// ends with an fsync of the database file).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Least time between two settles of the stories in the daemon (see [`stories`]): items keep
/// their provisional story at most this long after the poll that stored them.
pub const SETTLE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// A settle waits at least this many times as long as the last one took, so settling a large
/// window never takes more than a twentieth of the writer's time.
const SETTLE_COST_FACTOR: u32 = 20;

/// Most jobs committed in one group transaction (bounds the WAL growth and the delay before
/// readers see the first feed of a group).
pub const MAX_GROUP: usize = 64;

/// What the writer thread owns: the write connection and the in-memory story clustering
/// state, which only ever changes together with the rows it describes.
pub struct Writer {
    /// The only write connection.
    pub conn: Connection,
    stories: Option<StoryIndex>,
    last_expire: i64,
    generation: Arc<AtomicU64>,
    /// Content changed inside a transaction that has not committed yet.
    dirty: bool,
    /// Tells the background checkpointer that the WAL grew (see the module doc).
    checkpointer: Option<mpsc::SyncSender<()>>,
    /// Items were clustered out of time order since the last settle (see [`stories`]).
    settle_due: bool,
    /// PostgreSQL: the write turn in which the last late items were stored; a settle by any
    /// instance in a later turn has them (see [`Writer::settle_if_due`]).
    settle_due_turn: Option<i64>,
    /// When the last settle ran, and how long it took (the next waits [`SETTLE_EVERY`] or
    /// [`SETTLE_COST_FACTOR`] times as long, whichever is longer).
    last_settle: Option<(std::time::Instant, std::time::Duration)>,
    /// Consecutive failures after which a source counts as failing (`failing_after`).
    pub(crate) failing_after: i64,
    /// PostgreSQL: commits by other connections, counted by [`pg::listen`].
    foreign: Option<Arc<AtomicU64>>,
    /// Search index writes of the jobs of the open group transaction, made before it commits
    /// (see [`search::Batch`]; a poll in a transaction of its own makes them itself).
    search: search::Batch,
}

impl Writer {
    /// The connection and the story engine (rebuilt from the database on first use, or after
    /// a failed transaction left it out of step with the rows).
    pub fn parts(&mut self, now: i64) -> crate::store::db::Result<(&mut Connection, &mut StoryIndex)> {
        // Another instance wrote since our last transaction (PostgreSQL): its items and merges
        // are not in this engine yet; after a settle there, nothing of it can be trusted.
        match self.conn.take_foreign_write() {
            db::Foreign::Nothing => {}
            db::Foreign::Reshaped => {
                if self.stories.take().is_some() {
                    tracing::debug!("another writer reshaped stories: the story engine is rebuilt");
                }
            }
            db::Foreign::Added => {
                if let Some(engine) = &mut self.stories {
                    match stories::catch_up(&self.conn, engine, now) {
                        Ok(c) => tracing::debug!(
                            "story engine caught up with {} item{} and {} merge{} of other writers",
                            c.items,
                            if c.items == 1 { "" } else { "s" },
                            c.merges,
                            if c.merges == 1 { "" } else { "s" }
                        ),
                        Err(e) => {
                            self.stories = None;
                            return Err(e);
                        }
                    }
                }
            }
        }
        if self.stories.is_none() {
            self.stories = Some(stories::restore(&self.conn, StoryParams::default(), now)?);
            self.last_expire = now;
        }
        let engine = self.stories.get_or_insert_with(|| StoryIndex::new(StoryParams::default()));
        // Expiry walks every live story: once a minute keeps the per-item cost flat.
        if now - self.last_expire >= 60 {
            engine.expire(now);
            self.last_expire = now;
        }
        Ok((&mut self.conn, engine))
    }

    /// Marks the published content as changed (readers rebuild cached output feeds). Inside
    /// an open transaction the signal waits for the commit, so no reader caches a feed built
    /// from rows about to change under the new generation.
    pub fn changed(&mut self) {
        if self.conn.is_autocommit() {
            self.notify_others();
            self.generation.fetch_add(1, Ordering::Release);
        } else {
            if !self.dirty {
                // Queued in the transaction: delivered at its commit, dropped with a rollback.
                self.notify_others();
            }
            self.dirty = true;
        }
    }

    /// PostgreSQL: tells the other instances (their [`pg::listen`]) that what is published
    /// changed. Only here, so they rebuild exactly when this instance does.
    fn notify_others(&self) {
        if self.conn.is_pg() {
            let sql = format!("SELECT pg_notify('{}', pg_backend_pid()::text)", pg::CHANGES_CHANNEL);
            if let Err(e) = self.conn.execute_batch(&sql) {
                tracing::warn!("notifying the other instances of a change: {e}");
            }
        }
    }

    /// `PRAGMA data_version` of the write connection: it moves only when *another*
    /// connection commits (e.g. `newsdesk fetch` next to the daemon), never for our own.
    /// On PostgreSQL: the count of other connections' notified commits ([`pg::listen`]).
    fn data_version(&self) -> Option<i64> {
        if let Some(n) = &self.foreign {
            return Some(n.load(Ordering::Acquire) as i64);
        }
        self.conn.query_row("PRAGMA data_version", [], |r| r.get(0)).ok()
    }

    /// Signals a change when another process committed since `seen`.
    fn check_external(&mut self, seen: &mut Option<i64>) {
        let now = self.data_version();
        if now.is_some() && now != *seen {
            if seen.is_some() {
                // Another process wrote rows the story engine has not seen either. (On
                // PostgreSQL the write turn tells exactly, at the next write: see
                // `db::Connection::begin`; a notification only means feeds to rebuild.)
                if self.foreign.is_none() {
                    self.reset_stories();
                }
                self.generation.fetch_add(1, Ordering::Release);
            }
            *seen = now;
        }
    }

    /// Sends a change signal held back by [`Writer::changed`] (after a commit).
    fn flush_changed(&mut self) {
        if std::mem::take(&mut self.dirty) {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Runs a group of jobs: `first`, then grouped jobs already queued (up to [`MAX_GROUP`]),
    /// in one transaction. Returns a solo job met on the way, to run next.
    fn run_group(
        &mut self,
        first: Box<dyn FnOnce(&mut Writer) -> Finish + Send>,
        rx: &mpsc::Receiver<Job>,
    ) -> Option<Job> {
        // If the group cannot begin (another process holds the write lock past the busy
        // timeout), the job runs alone and opens its own transaction.
        if self.conn.begin(db::Behavior::Immediate).is_err() {
            let finish = first(self);
            self.flush_changed();
            finish(None);
            return None;
        }
        let mut done = vec![first(self)];
        let mut next = None;
        while done.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(Job::Grouped(g)) => done.push(g(self)),
                Ok(solo) => {
                    next = Some(solo);
                    break;
                }
                Err(_) => break,
            }
        }
        // The search index writes of the jobs that stored (see `search::Batch`): a failure
        // fails the group as a failed commit does.
        let index = std::mem::take(&mut self.search).apply(&self.conn);
        let commit = index.and_then(|()| self.conn.commit());
        if commit.is_err() {
            // Nothing of the group is stored: the story engine must forget it too.
            let _ = self.conn.rollback();
            self.reset_stories();
            self.dirty = false;
        }
        self.flush_changed();
        for finish in done {
            finish(commit.as_ref().err());
        }
        next
    }

    /// Caps the database size (`None`: no cap beyond the disk). Writes past the cap fail with
    /// "database or disk is full" exactly as a full disk does, and succeed again once there
    /// is room (retention, or a larger cap).
    pub fn set_max_size(&mut self, bytes: Option<u64>) -> crate::store::db::Result<()> {
        // PostgreSQL's size is the server's to manage.
        let Some(conn) = self.conn.as_lite() else { return Ok(()) };
        let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let pages = bytes.map_or(i64::from(u32::MAX) * 4, |b| (b as i64 / page.max(512)).max(1));
        conn.pragma_update(None, "max_page_count", pages)?;
        Ok(())
    }

    /// Sets after how many consecutive failures a source counts as failing (see
    /// [`sources::SourceEvent`]).
    pub fn set_failing_after(&mut self, n: u32) {
        self.failing_after = i64::from(n.max(1));
    }

    /// Drops the in-memory story state; the next [`Writer::parts`] rebuilds it from the rows.
    pub fn reset_stories(&mut self) {
        self.stories = None;
    }

    /// Asks for a settle of the stories (see [`stories`]): the writer runs it between jobs,
    /// at most every [`SETTLE_EVERY`].
    pub fn settle_due(&mut self) {
        self.settle_due = true;
        self.settle_due_turn = self.conn.write_turn();
    }

    /// Settles the stories now (see [`stories`]), in a transaction of its own: the live window
    /// is replayed in time order and the result stored; the engine continues from the replay.
    pub fn settle(&mut self, now: i64) -> crate::store::db::Result<stories::Settled> {
        let started = std::time::Instant::now();
        let result = self.settle_tx(now);
        self.last_settle = Some((std::time::Instant::now(), started.elapsed()));
        match &result {
            Ok(s) => {
                self.settle_due = false;
                if s.moved > 0 {
                    self.changed();
                }
                tracing::debug!(
                    "stories settled: {} items replayed, {} moved, {} stories opened, {} redirected, in {:.0?}",
                    s.items,
                    s.moved,
                    s.opened,
                    s.retired,
                    started.elapsed()
                );
            }
            Err(_) => self.reset_stories(),
        }
        result
    }

    fn settle_tx(&mut self, now: i64) -> crate::store::db::Result<stories::Settled> {
        // The replay builds a whole new engine and never reads this one, which is replaced on
        // success and reset on failure either way: freeing it first means two engines of the
        // whole window are never in memory at once (the peak RSS of a cold `fetch`).
        self.stories = None;
        // The plan is read inside the transaction, so no row changes before it is applied.
        let tx = self.conn.transaction_with_behavior(crate::store::db::Behavior::Immediate)?;
        // What other writers did before this turn is in the plan: the engine it gives needs
        // neither a catch-up nor a rebuild for it.
        let _ = tx.take_foreign_write();
        let started = std::time::Instant::now();
        let plan = stories::plan(&tx, StoryParams::default(), now, false)?;
        let settled = stories::apply(&tx, &plan)?;
        if tx.is_pg() {
            // The other instances rebuild their engines, and skip a settle of their own when
            // this one came after their late items.
            tx.reshape_stories()?;
            tx.execute(
                "UPDATE newsdesk_writes SET settled_turn = n, settled_at_ms = ?1, settle_ms = ?2 WHERE id = 1",
                crate::store::db::params![chrono::Utc::now().timestamp_millis(), started.elapsed().as_millis() as i64],
            )?;
        }
        tx.commit()?;
        self.stories = Some(plan.engine);
        self.last_expire = 0;
        Ok(settled)
    }

    /// PostgreSQL: whether this instance should settle now. Not when another instance
    /// settled in a later turn than our late items (that settle replayed them), nor before the
    /// interval since the cluster's last settle has passed (one settle serves every instance).
    fn cluster_settle_due(&mut self) -> bool {
        let last = self.conn.query_row(
            "SELECT settled_turn, settled_at_ms, settle_ms FROM newsdesk_writes WHERE id = 1",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
        );
        let Ok((turn, at_ms, took_ms)) = last else { return true };
        if self.settle_due_turn.is_some_and(|due| turn > due) {
            self.settle_due = false;
            return false;
        }
        let since = chrono::Utc::now().timestamp_millis() - at_ms;
        let wait = SETTLE_EVERY.max(std::time::Duration::from_millis(took_ms.max(0) as u64) * SETTLE_COST_FACTOR);
        since < 0 || since as u128 >= wait.as_millis()
    }

    /// Runs a due settle once the interval since the last one has passed.
    fn settle_if_due(&mut self) {
        if !self.settle_due || !self.conn.is_autocommit() {
            return;
        }
        if let Some((at, took)) = self.last_settle {
            if at.elapsed() < SETTLE_EVERY.max(took * SETTLE_COST_FACTOR) {
                return;
            }
        }
        if self.conn.is_pg() && !self.cluster_settle_due() {
            return;
        }
        if let Err(e) = self.settle(chrono::Utc::now().timestamp()) {
            tracing::warn!("settling stories in the database: {e} (kept as clustered; retried later)");
        }
    }
}

/// Handle to the database: cheap to clone, all clones share the one writer thread.
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    /// The PostgreSQL database, when the store is one (`path` is then unused but for the
    /// folder of served files).
    pg: Option<Arc<pg::PgTarget>>,
    /// The database as errors name it: the file, or `user@host:port/db`.
    what: Arc<str>,
    jobs: mpsc::Sender<Job>,
    generation: Arc<AtomicU64>,
    /// Idle read connections for short lookups ([`Store::read`]): opening one parses the
    /// schema, which cost more than the lookup it served once per poll.
    readers: Arc<std::sync::Mutex<Vec<Connection>>>,
    /// Pooled PostgreSQL readers open (idle or in use) and the signal that one went back:
    /// at most [`READER_POOL`] exist ([`Store::reader`]'s own connections aside), as a read beyond them waits for one instead of
    /// connecting (and then dropping) a connection of its own: 32 polls in flight each
    /// claiming and releasing had opened ~75 server connections a second.
    pg_open: Arc<(std::sync::Mutex<usize>, std::sync::Condvar)>,
}

/// A reader [`Store::read`] took: back to the pool when dropped.
struct GiveBack<'s> {
    store: &'s Store,
    conn: Option<Connection>,
}

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let mut idle = self.store.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < READER_POOL {
            idle.push(conn);
        }
        drop(idle);
        if self.store.pg.is_some() {
            // Under the count's lock, so a waiter cannot miss it between its look and its wait.
            let _n = self.store.pg_open.0.lock().unwrap_or_else(|p| p.into_inner());
            self.store.pg_open.1.notify_one();
        }
    }
}

/// How often an idle writer looks for commits by other processes.
const EXTERNAL_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Page cache of the write connection, KiB.
const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// Idle connections [`Store::read`] keeps.
const READER_POOL: usize = 8;

/// The writer thread is gone (it panicked or the store was dropped).
#[derive(Debug, thiserror::Error)]
#[error("the database writer has stopped")]
pub struct WriterStopped;

impl Store {
    /// Opens (creating if needed) the database, runs migrations, and starts the writer.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut conn =
            rusqlite::Connection::open(path).with_context(|| format!("opening database {}", path.display()))?;
        configure(&conn).with_context(|| format!("configuring database {}", path.display()))?;
        schema::migrate(&mut conn).with_context(|| format!("migrating database {}", path.display()))?;
        // A group transaction touches a few thousand pages; with SQLite's default 2 MiB cache
        // they spill to the WAL mid-transaction and are written again at commit.
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
            .with_context(|| format!("configuring database {}", path.display()))?;
        let conn = Connection::Lite(conn);
        Store::start(conn, path.to_path_buf(), None, path.display().to_string(), None)
    }

    /// Opens the database `[daemon]` names: the PostgreSQL one when `database` is a
    /// `postgres://` URL, else the SQLite file.
    pub fn open_configured(daemon: &crate::config::DaemonConfig) -> anyhow::Result<Store> {
        match &daemon.postgres {
            Some(target) => Store::open_pg(target, &daemon.database),
            None => Store::open(&daemon.database),
        }
    }

    /// Connects to PostgreSQL, migrates its schema (see [`pg::migrate`]) and starts the
    /// writer on that connection. `files` is where served files live (as beside an SQLite
    /// file).
    pub fn open_pg(target: &pg::PgTarget, files: &Path) -> anyhow::Result<Store> {
        let mut conn = db::PgConn::connect(target)?;
        conn.migrate().with_context(|| format!("migrating PostgreSQL database {}", target.describe()))?;
        let conn = Connection::Pg(Box::new(conn));
        let pid: i64 = conn.query_row("SELECT pg_backend_pid()", [], |r| r.get(0))?;
        let foreign = Arc::new(AtomicU64::new(0));
        pg::listen(target.clone(), pid, foreign.clone()).context("starting the PostgreSQL change listener")?;
        let what = target.describe();
        Store::start(conn, files.to_path_buf(), Some(Arc::new(target.clone())), what, Some(foreign))
    }

    fn start(
        conn: Connection,
        path: PathBuf,
        pg: Option<Arc<pg::PgTarget>>,
        what: String,
        foreign: Option<Arc<AtomicU64>>,
    ) -> anyhow::Result<Store> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let generation = Arc::new(AtomicU64::new(1));
        let mut writer = Writer {
            conn,
            stories: None,
            last_expire: 0,
            generation: generation.clone(),
            dirty: false,
            checkpointer: None,
            settle_due: false,
            settle_due_turn: None,
            last_settle: None,
            search: search::Batch::default(),
            failing_after: 3,
            foreign,
        };
        thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || {
                let mut next: Option<Job> = None;
                let mut seen_version = writer.data_version();
                loop {
                    let job = match next.take() {
                        Some(j) => j,
                        None => match rx.recv_timeout(EXTERNAL_CHECK) {
                            Ok(j) => j,
                            Err(mpsc::RecvTimeoutError::Timeout) => {
                                writer.check_external(&mut seen_version);
                                writer.settle_if_due();
                                continue;
                            }
                            Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        },
                    };
                    match job {
                        Job::Solo(f) => {
                            f(&mut writer);
                            writer.flush_changed();
                        }
                        Job::Grouped(f) => next = writer.run_group(f, &rx),
                    }
                    writer.check_external(&mut seen_version);
                    writer.settle_if_due();
                    if let Some(c) = &writer.checkpointer {
                        // Full: a checkpoint is already due; either way nothing waits.
                        let _ = c.try_send(());
                    }
                }
            })
            .context("starting the database writer thread")?;
        Ok(Store { path, pg, what: what.into(), jobs, generation, readers: Arc::default(), pg_open: Arc::default() })
    }

    /// Moves WAL checkpoints off the writer's commits onto a thread of their own (see the
    /// module doc): every poll waits for the writer, so a commit's latency is a poll's.
    pub async fn checkpoint_in_background(&self) -> anyhow::Result<()> {
        if self.pg.is_some() {
            return Ok(());
        }
        let conn = rusqlite::Connection::open(&self.path)
            .with_context(|| format!("opening database {} for checkpoints", self.path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        let path = self.path.clone();
        thread::Builder::new()
            .name("db-checkpoint".into())
            .spawn(move || {
                // Ends when the writer, which holds the sender, is gone.
                while rx.recv().is_ok() {
                    thread::sleep(CHECKPOINT_EVERY);
                    while rx.try_recv().is_ok() {}
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::warn!("checkpointing database {}: {e}", path.display());
                    }
                }
            })
            .context("starting the checkpoint thread")?;
        self.write(move |w| {
            if let Some(c) = w.conn.as_lite() {
                c.pragma_update(None, "wal_autocheckpoint", WAL_CAP_PAGES)?;
            }
            w.checkpointer = Some(tx);
            Ok::<_, crate::store::db::Error>(())
        })
        .await
        .map_err(|_| anyhow::anyhow!("the database writer stopped"))?
        .context("configuring checkpoints")
    }

    /// Copies the whole WAL into the database file and empties it, unless a reader (a daemon
    /// next door) is in the way for more than a moment: what a one-shot command does last, so
    /// its time includes the checkpoint and the next process has no WAL to replay.
    pub fn checkpoint_now(&self) {
        let done = self.write_blocking(|w| {
            if w.conn.is_pg() {
                return Ok(());
            }
            w.conn.busy_timeout(std::time::Duration::from_millis(200))?;
            let r = w.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            w.conn.busy_timeout(std::time::Duration::from_secs(5))?;
            r
        });
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!("final checkpoint of {}: {e}", self.what),
            Err(WriterStopped) => tracing::debug!("final checkpoint of {}: the writer stopped", self.what),
        }
    }

    /// Settles the stories now if items were clustered out of order (see [`stories`]): what
    /// `newsdesk fetch` does after its polls, so what it stores is the time-ordered replay.
    pub fn settle_now(&self) -> anyhow::Result<Option<stories::Settled>> {
        let now = chrono::Utc::now().timestamp();
        let r = self
            .write_blocking(move |w| if w.settle_due { w.settle(now).map(Some) } else { Ok(None) })
            .map_err(anyhow::Error::from)?;
        r.with_context(|| format!("settling stories in {}", self.what))
    }

    /// Asks the writer to settle the stories at its next chance (the daemon at startup: the
    /// last process may have stopped before it settled).
    pub fn request_settle(&self) {
        let _ = self.jobs.send(Job::Solo(Box::new(|w: &mut Writer| w.settle_due())));
    }

    /// A number that grows whenever stored content changes: cache keys for rendered feeds.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The database as errors and logs name it: the file, or `user@host:port/db`.
    pub fn describe(&self) -> &str {
        &self.what
    }

    /// Whether the store is PostgreSQL.
    pub fn is_pg(&self) -> bool {
        self.pg.is_some()
    }

    /// The database file (with PostgreSQL: the configured path, whose folder holds served
    /// files).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the writer connection and waits for its result.
    pub async fn write<R, F>(&self, f: F) -> Result<R, WriterStopped>
    where
        R: Send + 'static,
        F: FnOnce(&mut Writer) -> R + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job::Solo(Box::new(move |c| {
                let _ = tx.send(f(c));
            })))
            .map_err(|_| WriterStopped)?;
        rx.await.map_err(|_| WriterStopped)
    }

    /// Runs `f` inside a group transaction (see the module doc) and waits until the group
    /// has committed. `f` must open a savepoint for its writes when the connection is inside
    /// a transaction (`!conn.is_autocommit()`), and a transaction of its own otherwise. If the
    /// group fails to commit, a successful result of `f` becomes the commit's error.
    pub async fn write_grouped<T, F>(&self, f: F) -> Result<crate::store::db::Result<T>, WriterStopped>
    where
        T: Send + 'static,
        F: FnOnce(&mut Writer) -> crate::store::db::Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job::Grouped(Box::new(move |w| {
                let result = f(w);
                Box::new(move |commit_error: Option<&crate::store::db::Error>| {
                    let result = match (result, commit_error) {
                        (Ok(_), Some(e)) => Err(e.copy()),
                        (r, _) => r,
                    };
                    let _ = tx.send(result);
                })
            })))
            .map_err(|_| WriterStopped)?;
        rx.await.map_err(|_| WriterStopped)
    }

    /// Like [`Store::write`], for code outside the async runtime.
    pub fn write_blocking<R, F>(&self, f: F) -> Result<R, WriterStopped>
    where
        R: Send + 'static,
        F: FnOnce(&mut Writer) -> R + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .send(Job::Solo(Box::new(move |c| {
                let _ = tx.send(f(c));
            })))
            .map_err(|_| WriterStopped)?;
        rx.recv().map_err(|_| WriterStopped)
    }

    /// Runs a short read on a pooled read-only connection.
    pub fn read<R>(&self, f: impl FnOnce(&Connection) -> crate::store::db::Result<R>) -> anyhow::Result<R> {
        let conn = match self.pg.is_some() {
            true => self.pg_reader()?,
            false => match self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop() {
                Some(c) => c,
                None => self.reader()?,
            },
        };
        // Given back even when `f` panics: a PostgreSQL reader lost would be a slot lost.
        let back = GiveBack { store: self, conn: Some(conn) };
        let conn = back.conn.as_ref().ok_or_else(|| anyhow::anyhow!("no reader"))?;
        f(conn).with_context(|| format!("reading database {}", self.what))
    }

    /// An idle pooled PostgreSQL reader, else a new one while fewer than [`READER_POOL`] are
    /// open, else the next one given back. (Every reader [`Store::read`] takes goes back to
    /// the pool; a connection that failed is revived by its next statement.)
    fn pg_reader(&self) -> anyhow::Result<Connection> {
        let (open, freed) = &*self.pg_open;
        let mut n = open.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(c) = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop() {
                return Ok(c);
            }
            if *n < READER_POOL {
                *n += 1;
                drop(n);
                return self.reader().inspect_err(|_| {
                    *open.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
                    freed.notify_one();
                });
            }
            n = freed.wait(n).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// A new read-only connection.
    pub fn reader(&self) -> anyhow::Result<Connection> {
        if let Some(target) = &self.pg {
            return Ok(Connection::Pg(Box::new(db::PgConn::connect(target)?)));
        }
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening database {} for reading", self.path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Connection::Lite(conn))
    }
}

pub(crate) fn configure(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Only takes effect on a new, empty file, and only before WAL is switched on: it lets
    // retention give pages back to the filesystem. (No effect on an existing database.)
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    // WAL: readers never block the writer. NORMAL: a crash can lose the last transactions
    // but never corrupts; fine for a cache of public feeds that the next poll refills.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Unix seconds of a time.
pub fn unix(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp()
}

/// A time from unix seconds (the epoch for out-of-range values).
pub fn from_unix(s: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(s, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn temp_db(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("newsdesk-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("test.db")
    }

    fn add_source(conn: &Connection, id: &str) -> crate::store::db::Result<usize> {
        conn.execute("INSERT INTO sources (id, url, config_url) VALUES (?1, 'u', 'u')", [id])
    }

    fn has_source(store: &Store, id: &str) -> bool {
        let id = id.to_string();
        store
            .read(move |c| c.query_row("SELECT COUNT(*) FROM sources WHERE id = ?1", [id], |r| r.get::<_, i64>(0)))
            .unwrap()
            == 1
    }

    #[test]
    fn queued_jobs_commit_as_one_group_and_a_failing_one_rolls_back_alone() {
        let path = temp_db("group");
        let store = Store::open(&path).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        // Hold the writer so that the next jobs queue up behind it and run as one group.
        let held = store.clone();
        let hold = std::thread::spawn(move || held.write_blocking(|_| std::thread::sleep(Duration::from_millis(300))));
        std::thread::sleep(Duration::from_millis(50));
        let before = store.generation();
        let job = |id: &'static str, fail: bool| {
            let s = store.clone();
            rt.spawn(async move {
                s.write_grouped(move |w| {
                    let grouped = !w.conn.is_autocommit();
                    let sp = w.conn.savepoint()?;
                    add_source(&sp, id)?;
                    if fail {
                        sp.execute("INSERT INTO no_such_table VALUES (1)", [])?;
                    }
                    sp.commit()?;
                    let generation = w.generation.load(Ordering::Acquire);
                    w.changed();
                    // Inside the group the change signal waits for the commit.
                    Ok((grouped, w.generation.load(Ordering::Acquire) == generation))
                })
                .await
            })
        };
        let jobs = [job("a", false), job("b", true), job("c", false)];
        std::thread::sleep(Duration::from_millis(50));
        let results: Vec<_> = jobs.into_iter().map(|j| rt.block_on(j).unwrap().unwrap()).collect();
        hold.join().unwrap().unwrap();
        assert_eq!(results[0].as_ref().ok(), Some(&(true, true)), "ran in a group; signal deferred");
        assert!(results[1].as_ref().is_err_and(|e| e.to_string().contains("no_such_table")), "{:?}", results[1]);
        assert_eq!(results[2].as_ref().ok(), Some(&(true, true)));
        assert!(has_source(&store, "a") && has_source(&store, "c"), "the others committed");
        assert!(!has_source(&store, "b"), "the failing feed rolled back alone");
        assert!(store.generation() > before, "signalled after the commit");
    }

    #[test]
    fn only_commits_by_other_processes_count_as_external_changes() {
        let path = temp_db("external");
        let store = Store::open(&path).unwrap();
        let before = store.generation();
        // Our own commit without a change signal (a poll answered 304) changes nothing.
        store.write_blocking(|w| add_source(&w.conn, "own")).unwrap().unwrap();
        store.write_blocking(|_| ()).unwrap();
        assert_eq!(store.generation(), before);
        // The story engine is built from the rows...
        store.write_blocking(|w| w.parts(0).map(|_| ())).unwrap().unwrap();
        // ...and another process writes rows it has not seen: noticed within a second.
        let other = Connection::open(&path).unwrap();
        other.busy_timeout(Duration::from_secs(5)).unwrap();
        add_source(&other, "other").unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        assert!(store.generation() > before, "a foreign commit is a change");
        assert!(store.write_blocking(|w| w.stories.is_none()).unwrap(), "and the story engine is rebuilt");
    }

    #[test]
    fn background_checkpoints_copy_the_wal_back_without_counting_as_changes() {
        let path = temp_db("checkpoint");
        let store = Store::open(&path).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(store.checkpoint_in_background()).unwrap();
        let cap: i64 =
            store.write_blocking(|w| w.conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))).unwrap().unwrap();
        assert_eq!(cap, WAL_CAP_PAGES);
        let db_len = || std::fs::metadata(&path).unwrap().len();
        let before = (db_len(), store.generation());
        // 2 MB: under SQLite's own 1,000-page threshold, so only our checkpointer copies it.
        store
            .write_blocking(|w| {
                w.conn.execute_batch("CREATE TABLE filler(x BLOB)")?;
                w.conn.execute("INSERT INTO filler VALUES (zeroblob(2000000))", [])
            })
            .unwrap()
            .unwrap();
        assert!(db_len() < before.0 + 1_000_000, "still in the WAL right after the commit");
        std::thread::sleep(CHECKPOINT_EVERY + Duration::from_millis(1500));
        assert!(db_len() >= before.0 + 2_000_000, "copied into the database file: {} bytes", db_len());
        assert_eq!(store.generation(), before.1, "a checkpoint is not a foreign change");
    }
}
