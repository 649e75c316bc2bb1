//! Store: the SQLite file. One writer thread owns the only write connection (every write is a
//! job sent to it, so there is never lock contention between writers); readers open their own
//! WAL connections. Schema migrations run by `PRAGMA user_version` ([`schema`]).

pub mod items;
pub mod queries;
pub mod retention;
pub mod schema;
pub mod sources;
pub mod stories;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

use crate::dedup::story::{StoryIndex, StoryParams};

type Job = Box<dyn FnOnce(&mut Writer) + Send>;

/// What the writer thread owns: the write connection and the in-memory story clustering
/// state, which only ever changes together with the rows it describes.
pub struct Writer {
    /// The only write connection.
    pub conn: Connection,
    stories: Option<StoryIndex>,
    last_expire: i64,
    generation: Arc<AtomicU64>,
}

impl Writer {
    /// The connection and the story engine (rebuilt from the database on first use, or after
    /// a failed transaction left it out of step with the rows).
    pub fn parts(&mut self, now: i64) -> rusqlite::Result<(&mut Connection, &mut StoryIndex)> {
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

    /// Marks the published content as changed (readers rebuild cached output feeds).
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Caps the database size (`None`: no cap beyond the disk). Writes past the cap fail with
    /// "database or disk is full" exactly as a full disk does, and succeed again once there
    /// is room (retention, or a larger cap).
    pub fn set_max_size(&mut self, bytes: Option<u64>) -> rusqlite::Result<()> {
        let page: i64 = self.conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let pages = bytes.map_or(i64::from(u32::MAX) * 4, |b| (b as i64 / page.max(512)).max(1));
        self.conn.pragma_update(None, "max_page_count", pages)?;
        Ok(())
    }

    /// Drops the in-memory story state; the next [`Writer::parts`] rebuilds it from the rows.
    pub fn reset_stories(&mut self) {
        self.stories = None;
    }
}

/// Handle to the database: cheap to clone, all clones share the one writer thread.
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
    generation: Arc<AtomicU64>,
}

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
        let mut conn = Connection::open(path).with_context(|| format!("opening database {}", path.display()))?;
        configure(&conn).with_context(|| format!("configuring database {}", path.display()))?;
        schema::migrate(&mut conn).with_context(|| format!("migrating database {}", path.display()))?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let generation = Arc::new(AtomicU64::new(1));
        let mut writer = Writer { conn, stories: None, last_expire: 0, generation: generation.clone() };
        thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || {
                for job in rx {
                    job(&mut writer);
                }
            })
            .context("starting the database writer thread")?;
        Ok(Store { path: path.to_path_buf(), jobs, generation })
    }

    /// A number that grows whenever stored content changes: cache keys for rendered feeds.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The database file.
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
            .send(Box::new(move |c| {
                let _ = tx.send(f(c));
            }))
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
            .send(Box::new(move |c| {
                let _ = tx.send(f(c));
            }))
            .map_err(|_| WriterStopped)?;
        rx.recv().map_err(|_| WriterStopped)
    }

    /// A new read-only connection.
    pub fn reader(&self) -> anyhow::Result<Connection> {
        let conn =
            Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .with_context(|| format!("opening database {} for reading", self.path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
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
