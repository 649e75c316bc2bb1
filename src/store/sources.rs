//! Sources: per-source state (current URL, validators, health, next due time) and the one
//! transaction that records a poll together with the items it brought.

use crate::store::db::{params, Connection, OptionalExtension, Row};
use chrono::{DateTime, Utc};

use super::items::{self, IngestCounts};
use super::search;
use super::Writer;
use crate::config::SourceConfig;
use crate::fetch::Validators;
use crate::model::Feed;

/// Stored state of one source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceState {
    /// Source id.
    pub id: String,
    /// Current URL (after permanent redirects).
    pub url: String,
    /// URL as configured.
    pub config_url: String,
    /// The feed's own title.
    pub feed_title: Option<String>,
    /// Cache validators.
    pub validators: Validators,
    /// `new`, `ok`, `error` or `retired`.
    pub status: String,
    /// Last HTTP status.
    pub http_status: Option<u16>,
    /// Last error message.
    pub last_error: Option<String>,
    /// Last poll (unix seconds).
    pub last_poll: Option<i64>,
    /// Last successful poll (unix seconds).
    pub last_success: Option<i64>,
    /// Next due time (unix seconds).
    pub next_due: Option<i64>,
    /// Consecutive failures.
    pub failures: u32,
    /// Not before this time (unix seconds), from `Retry-After`.
    pub retry_after: Option<i64>,
    /// Why the source was retired (410).
    pub retired_reason: Option<String>,
    /// Items this source has given us.
    pub items: i64,
    /// The publisher's skipHours/skipDays.
    pub skip: crate::schedule::Skip,
    /// Items of the last fetched document left out as older than `retention`.
    pub past_retention: i64,
}

const STATE_COLUMNS: &str = "s.id, s.url, s.config_url, s.feed_title, s.etag, s.last_modified, s.status, s.http_status,
    s.last_error, s.last_poll, s.last_success, s.next_due, s.failures, s.retry_after, s.retired_reason,
    (SELECT COUNT(*) FROM appearances a WHERE a.source_id = s.id), s.skip_hours, s.skip_days, s.past_retention";

fn state_from_row(r: &Row) -> crate::store::db::Result<SourceState> {
    Ok(SourceState {
        id: r.get(0)?,
        url: r.get(1)?,
        config_url: r.get(2)?,
        feed_title: r.get(3)?,
        validators: Validators { etag: r.get(4)?, last_modified: r.get(5)? },
        status: r.get(6)?,
        http_status: r.get(7)?,
        last_error: r.get(8)?,
        last_poll: r.get(9)?,
        last_success: r.get(10)?,
        next_due: r.get(11)?,
        failures: r.get(12)?,
        retry_after: r.get(13)?,
        retired_reason: r.get(14)?,
        items: r.get(15)?,
        skip: crate::schedule::Skip { hours: r.get(16)?, days: r.get(17)? },
        past_retention: r.get(18)?,
    })
}

/// Makes the `sources` table agree with the config: new sources are added; a source whose
/// configured URL changed starts over at the new URL (validators cleared, un-retired).
/// Sources no longer configured keep their rows and items. A source whose configured title
/// changed has its items indexed again for search (they are found by the new name).
pub fn sync(conn: &mut Connection, sources: &[SourceConfig]) -> crate::store::db::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert =
            tx.prepare_cached("INSERT OR IGNORE INTO sources (id, url, config_url) VALUES (?1, ?2, ?2)")?;
        let mut reset = tx.prepare_cached(
            "UPDATE sources SET url = ?2, config_url = ?2, etag = NULL, last_modified = NULL, status = 'new',
                    retired_reason = NULL, failures = 0, retry_after = NULL, next_due = NULL
             WHERE id = ?1 AND config_url <> ?2",
        )?;
        let mut title = tx.prepare_cached("UPDATE sources SET title = ?2 WHERE id = ?1 AND title IS NOT ?2")?;
        for s in sources {
            insert.execute(params![s.id, s.url.as_str()])?;
            reset.execute(params![s.id, s.url.as_str()])?;
            if title.execute(params![s.id, s.title])? > 0 {
                search::reindex_source(&tx, &s.id)?;
            }
        }
    }
    tx.commit()
}

/// State of one source.
pub fn state(conn: &Connection, id: &str) -> crate::store::db::Result<Option<SourceState>> {
    conn.prepare_cached(&format!("SELECT {STATE_COLUMNS} FROM sources s WHERE s.id = ?1"))?
        .query_row([id], state_from_row)
        .optional()
}

/// State of every source, in id order.
pub fn all(conn: &Connection) -> crate::store::db::Result<Vec<SourceState>> {
    let mut stmt = conn.prepare(&format!("SELECT {STATE_COLUMNS} FROM sources s ORDER BY s.id"))?;
    let rows = stmt.query_map([], state_from_row)?;
    rows.collect()
}

/// What one poll produced.
#[derive(Debug)]
pub enum PollResult {
    /// A document was fetched and parsed.
    Content {
        /// The parsed feed.
        feed: Feed,
        /// Clustering features of `feed.items`, in order.
        features: Vec<crate::dedup::story::Features>,
        /// Validators to keep.
        validators: Validators,
        /// HTTP status (200 for files).
        http_status: u16,
    },
    /// 304 Not Modified.
    NotModified {
        /// Validators to keep.
        validators: Validators,
    },
    /// The poll failed; the source keeps its items and its validators.
    Failed {
        /// The message shown in `newsdesk sources`.
        message: String,
        /// HTTP status, when there was one.
        http_status: Option<u16>,
        /// 410: stop polling this source.
        retire: bool,
        /// Do not poll before this time.
        retry_after: Option<DateTime<Utc>>,
    },
}

/// One poll of one source, recorded atomically.
#[derive(Debug)]
pub struct PollRecord {
    /// Source id.
    pub source_id: String,
    /// When the poll ran.
    pub now: DateTime<Utc>,
    /// When to poll next.
    pub next_due: DateTime<Utc>,
    /// A permanent redirect's target: becomes the source's URL.
    pub moved_to: Option<String>,
    /// The outcome.
    pub result: PollResult,
}

/// Records a poll and stores its items in one transaction: a feed is committed whole or not
/// at all.
pub fn record_poll(w: &mut Writer, rec: &PollRecord) -> crate::store::db::Result<IngestCounts> {
    let mut index = search::Batch::default();
    let result = record_poll_tx(w, rec, &mut index);
    match &result {
        // The transaction rolled back; the story engine may hold items that are not stored.
        // (Its index writes are dropped with `index`.)
        Err(_) => w.reset_stories(),
        Ok(c) => {
            // In a group transaction, the index writes wait for its end (see `search::Batch`).
            w.search.append(&mut index);
            if c.late > 0 {
                w.settle_due();
            }
            if c.new + c.updated > 0 {
                w.changed();
            }
        }
    }
    result
}

/// Records the poll; index writes are made before an own transaction commits, and left in
/// `index` inside a group transaction.
fn record_poll_tx(
    w: &mut Writer,
    rec: &PollRecord,
    index: &mut search::Batch,
) -> crate::store::db::Result<IngestCounts> {
    // Only new content needs the story engine (rebuilt from the rows on first use): a 304 or
    // an error must not pay for that.
    let failing_after = w.failing_after;
    let (conn, mut engine) = if matches!(rec.result, PollResult::Content { .. }) {
        let (c, e) = w.parts(rec.now.timestamp())?;
        (c, Some(e))
    } else {
        (&mut w.conn, None)
    };
    // Inside a group transaction (see `Store::write_grouped`) the feed gets a savepoint: it
    // still commits or rolls back as a whole.
    let tx = if conn.is_autocommit() {
        Tx::Own(conn.transaction_with_behavior(crate::store::db::Behavior::Immediate)?)
    } else {
        Tx::Nested(conn.savepoint()?)
    };
    let now = rec.now.timestamp();
    let next_due = rec.next_due.timestamp();
    let mut counts = IngestCounts::default();
    // The state before this poll, for the health events it may cause.
    let before: Option<(i64, String, String)> = tx
        .prepare_cached("SELECT failures, status, url FROM sources WHERE id = ?1")?
        .query_row([&rec.source_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let (failures_before, status_before, url_before) = before.unwrap_or((0, String::new(), String::new()));
    let event = |kind: &str, detail: String| -> crate::store::db::Result<()> {
        tx.prepare_cached("INSERT INTO source_events (source_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![rec.source_id, now, kind, detail])?;
        Ok(())
    };
    if let Some(url) = &rec.moved_to {
        if *url != url_before {
            event("moved", format!("moved permanently from {url_before} to {url}"))?;
        }
        tx.execute("UPDATE sources SET url = ?2 WHERE id = ?1", params![rec.source_id, url])?;
    }
    match &rec.result {
        PollResult::Failed { message, retire, .. } => {
            if *retire && status_before != "retired" {
                event("retired", message.clone())?;
            } else if !*retire && failures_before + 1 == failing_after {
                event("failing", format!("{message} ({failing_after} failures in a row)"))?;
            }
        }
        _ if failures_before >= failing_after => {
            event("recovered", format!("polled fine again after {failures_before} failures in a row"))?;
        }
        _ => {}
    }
    match &rec.result {
        PollResult::Content { feed, features, validators, http_status } => {
            // The feed's own title names the outlet of a source without a configured one: it
            // is stored before the items are indexed, and the older items are indexed again
            // when it changed.
            if let Some(t) = &feed.title {
                let untitled: Option<bool> = tx
                    .prepare_cached(
                        "UPDATE sources SET feed_title = ?2 WHERE id = ?1 AND feed_title IS NOT ?2 RETURNING title IS NULL",
                    )?
                    .query_row(params![rec.source_id, t], |r| r.get(0))
                    .optional()?;
                if untitled == Some(true) {
                    for id in search::source_items(&tx, &rec.source_id)? {
                        index.item(id);
                    }
                }
            }
            if let Some(engine) = engine.take() {
                counts = items::ingest(&tx, engine, &rec.source_id, feed, features, rec.now, index)?;
            }
            tx.execute(
                "UPDATE sources SET status = 'ok', http_status = ?2, last_error = NULL, last_poll = ?3, last_success = ?3,
                        next_due = ?4, failures = 0, retry_after = NULL, etag = ?5, last_modified = ?6,
                        feed_title = COALESCE(?7, feed_title), home_page = COALESCE(?8, home_page), ttl_secs = ?9,
                        skip_hours = ?10, skip_days = ?11, past_retention = ?12
                 WHERE id = ?1",
                params![
                    rec.source_id,
                    http_status,
                    now,
                    next_due,
                    validators.etag,
                    validators.last_modified,
                    feed.title,
                    feed.home_page,
                    feed.ttl_minutes.map(|m| i64::from(m) * 60),
                    feed.skip.hours,
                    feed.skip.days,
                    feed.past_retention as i64
                ],
            )?;
        }
        PollResult::NotModified { validators } => {
            tx.execute(
                "UPDATE sources SET status = 'ok', http_status = 304, last_error = NULL, last_poll = ?2, last_success = ?2,
                        next_due = ?3, failures = 0, retry_after = NULL, etag = ?4, last_modified = ?5
                 WHERE id = ?1",
                params![rec.source_id, now, next_due, validators.etag, validators.last_modified],
            )?;
        }
        PollResult::Failed { message, http_status, retire, retry_after } => {
            tx.execute(
                "UPDATE sources SET status = CASE WHEN ?5 THEN 'retired' ELSE 'error' END, http_status = ?2,
                        last_error = ?3, last_poll = ?4, next_due = ?6, failures = failures + 1, retry_after = ?7,
                        retired_reason = CASE WHEN ?5 THEN ?3 ELSE retired_reason END
                 WHERE id = ?1",
                params![rec.source_id, http_status, message, now, retire, next_due, retry_after.map(|d| d.timestamp())],
            )?;
        }
    }
    tx.commit(index)?;
    Ok(counts)
}

/// The transaction one feed is stored in: its own, or a savepoint in a group transaction.
enum Tx<'c> {
    Own(crate::store::db::Transaction<'c>),
    Nested(crate::store::db::Transaction<'c>),
}

impl Tx<'_> {
    /// Commits; an own transaction makes the index writes first.
    fn commit(self, index: &mut search::Batch) -> crate::store::db::Result<()> {
        match self {
            Tx::Own(t) => {
                index.apply(&t)?;
                t.commit()
            }
            Tx::Nested(s) => s.commit(),
        }
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = crate::store::db::Connection;
    fn deref(&self) -> &crate::store::db::Connection {
        match self {
            Tx::Own(t) => t,
            Tx::Nested(s) => s,
        }
    }
}

/// What happened to a source's health, for the health feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEvent {
    /// Row id: the entry's stable identity.
    pub id: i64,
    /// The source.
    pub source_id: String,
    /// Its display name (configured title, else the feed's, else the id).
    pub name: String,
    /// Unix seconds.
    pub at: i64,
    /// `failing`, `recovered`, `retired` or `moved`.
    pub kind: String,
    /// The error, or where it moved.
    pub detail: String,
}

/// The latest `limit` health events, newest first.
pub fn events(conn: &Connection, limit: usize) -> crate::store::db::Result<Vec<SourceEvent>> {
    let mut q = conn.prepare_cached(
        "SELECT e.id, e.source_id, COALESCE(s.title, s.feed_title, e.source_id), e.at, e.kind, e.detail
         FROM source_events e LEFT JOIN sources s ON s.id = e.source_id
         ORDER BY e.id DESC LIMIT ?1",
    )?;
    let rows = q.query_map([limit as i64], |r| {
        Ok(SourceEvent {
            id: r.get(0)?,
            source_id: r.get(1)?,
            name: r.get(2)?,
            at: r.get(3)?,
            kind: r.get(4)?,
            detail: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// The answer to a [`claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This instance polls the source now (and [`release`]s it after).
    Mine,
    /// Another instance polled it (it is due again then) or is polling it (its lease ends
    /// then): ask again at that time.
    Elsewhere(i64),
    /// The cluster's `concurrency` is used up (or another instance took the slot this one
    /// picked at the same moment): ask again once a poll may have ended.
    Full,
    /// The cluster's `per_host` for the source's host is used up: ask again shortly, and
    /// other hosts meanwhile.
    HostFull,
}

/// Claims a due source for a poll by `owner` until `until` (PostgreSQL, several instances on
/// one database): it must still be due (`next_due` ≤ `now` + 1 s: no other instance polled it
/// since) and not leased by another, and the lease takes a free slot of its host's `per_host`
/// and of the cluster's `concurrency`. Runs on a reader connection in a transaction of its own
/// (not a writer's turn), with no cluster-wide lock: the source's row is taken
/// `FOR UPDATE SKIP LOCKED` (an instance deciding on the same source at this moment makes
/// this one ask again in a second), and the slots are unique indexes, so of two instances that
/// pick the same free slot at once one insert does nothing and that claim is [`Claim::Full`].
/// Expired leases (a killed instance) are dropped first.
#[allow(clippy::too_many_arguments)]
pub fn claim(
    conn: &Connection,
    source_id: &str,
    host: &str,
    owner: &str,
    now: i64,
    until: i64,
    per_host: usize,
    concurrency: usize,
) -> crate::store::db::Result<Claim> {
    conn.execute_batch("BEGIN")?;
    let decide = || -> crate::store::db::Result<Claim> {
        conn.execute("DELETE FROM source_leases WHERE until < ?1", [now])?;
        let row: Option<Option<i64>> = conn
            .query_row("SELECT next_due FROM sources WHERE id = ?1 FOR UPDATE SKIP LOCKED", [source_id], |r| r.get(0))
            .optional()?;
        let due = match row {
            Some(due) => due,
            None => {
                let known: i64 =
                    conn.query_row("SELECT COUNT(*) FROM sources WHERE id = ?1", [source_id], |r| r.get(0))?;
                if known > 0 {
                    tracing::debug!(source = source_id, "another instance is claiming it");
                    return Ok(Claim::Elsewhere(now + 1));
                }
                None
            }
        };
        if let Some(due) = due.filter(|&d| d > now + 1) {
            return Ok(Claim::Elsewhere(due));
        }
        let held: Option<(String, i64)> = conn
            .query_row("SELECT owner, until FROM source_leases WHERE source_id = ?1", [source_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some((other, until)) = held.filter(|(o, _)| o != owner) {
            tracing::debug!(source = source_id, instance = other, "being polled by another instance");
            return Ok(Claim::Elsewhere(until));
        }
        // Our own lease left by a release that failed: this claim replaces it.
        conn.execute("DELETE FROM source_leases WHERE source_id = ?1", [source_id])?;
        // A random free slot, not the lowest: instances claiming at the same moment then
        // seldom pick the same one.
        let slots: (Option<i64>, Option<i64>) = conn.query_row(
            "SELECT
               (SELECT k FROM generate_series(0, ?2 - 1) k
                WHERE NOT EXISTS (SELECT 1 FROM source_leases WHERE host = ?1 AND host_slot = k)
                ORDER BY random() LIMIT 1),
               (SELECT k FROM generate_series(0, ?3 - 1) k
                WHERE NOT EXISTS (SELECT 1 FROM source_leases WHERE slot = k)
                ORDER BY random() LIMIT 1)",
            params![host, per_host as i64, concurrency as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (host_slot, slot) = match slots {
            (Some(h), Some(s)) => (h, s),
            (None, _) => return Ok(Claim::HostFull),
            (_, None) => return Ok(Claim::Full),
        };
        let took = conn.execute(
            "INSERT INTO source_leases (source_id, host, owner, until, host_slot, slot)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            params![source_id, host, owner, until, host_slot, slot],
        )?;
        Ok(if took == 1 { Claim::Mine } else { Claim::Full })
    };
    let r = decide();
    match &r {
        Ok(_) => conn.execute_batch("COMMIT")?,
        Err(_) => {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    r
}

/// Ends `owner`'s lease on a source (its poll is stored).
pub fn release(conn: &Connection, source_id: &str, owner: &str) -> crate::store::db::Result<()> {
    conn.execute("DELETE FROM source_leases WHERE source_id = ?1 AND owner = ?2", params![source_id, owner])?;
    Ok(())
}
