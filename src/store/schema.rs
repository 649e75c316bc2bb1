//! Schema and migrations, versioned by `PRAGMA user_version`: migration N brings a database
//! from version N-1 to N inside one transaction, so a crash mid-migration changes nothing.
//! A migration is SQL, optionally followed by Rust in the same transaction (a backfill that
//! needs code SQL does not have, such as the plain text of HTML), so an upgraded database is
//! complete the moment its version says so.

use anyhow::Context;
use rusqlite::Connection;

/// One migration: its SQL, then an optional backfill in the same transaction.
struct Migration {
    sql: &'static str,
    then: Option<fn(&Connection) -> rusqlite::Result<()>>,
}

const MIGRATIONS: &[Migration] = &[
    // 1: sources, items, appearances, tombstones.
    Migration {
        sql: r#"
    CREATE TABLE sources (
        id             TEXT PRIMARY KEY,
        url            TEXT NOT NULL,      -- current URL: follows permanent redirects
        config_url     TEXT NOT NULL,      -- as configured: a config edit resets `url`
        feed_title     TEXT,
        home_page      TEXT,
        etag           TEXT,
        last_modified  TEXT,
        status         TEXT NOT NULL DEFAULT 'new',  -- new | ok | error | retired
        http_status    INTEGER,
        last_error     TEXT,
        last_poll      INTEGER,
        last_success   INTEGER,
        next_due       INTEGER,
        failures       INTEGER NOT NULL DEFAULT 0,
        retry_after    INTEGER,            -- unix time before which we must not poll
        retired_reason TEXT,
        ttl_secs       INTEGER
    );
    -- One row per distinct article, whichever sources and URLs it was seen under.
    CREATE TABLE items (
        id             INTEGER PRIMARY KEY,
        canonical_url  TEXT,
        link           TEXT,
        title          TEXT NOT NULL,
        summary        TEXT,
        content        TEXT,
        published      INTEGER NOT NULL,   -- the feed's date, else first seen
        updated        INTEGER NOT NULL,
        first_seen     INTEGER NOT NULL,
        authors        TEXT NOT NULL DEFAULT '[]',
        categories     TEXT NOT NULL DEFAULT '[]',
        content_hash   INTEGER NOT NULL,
        story_id       INTEGER
    );
    CREATE UNIQUE INDEX items_canonical ON items(canonical_url) WHERE canonical_url IS NOT NULL;
    CREATE INDEX items_published ON items(published);
    -- Each place an item was seen: per source, under that source's identity key.
    CREATE TABLE appearances (
        source_id   TEXT NOT NULL,
        key         TEXT NOT NULL,         -- g:GUID | u:canonical URL | h:content hash
        item_id     INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        content_hash INTEGER NOT NULL,     -- this source's version: edits are per source
        first_seen  INTEGER NOT NULL,
        PRIMARY KEY (source_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX appearances_item ON appearances(item_id, source_id);
    -- Identity keys of pruned items, so an item still in its upstream feed is not re-ingested.
    CREATE TABLE tombstones (
        source_id   TEXT NOT NULL,
        key         TEXT NOT NULL,
        deleted_at  INTEGER NOT NULL,
        PRIMARY KEY (source_id, key)
    ) WITHOUT ROWID;
    "#,
        then: None,
    },
    // 2: stories. Every item belongs to one story; a merged story keeps its row and points
    // at the survivor, so an id once published always resolves.
    Migration {
        sql: r#"
    CREATE TABLE stories (
        id           INTEGER PRIMARY KEY,
        first_seen   INTEGER NOT NULL,
        last_seen    INTEGER NOT NULL,
        merged_into  INTEGER REFERENCES stories(id)
    );
    ALTER TABLE items ADD COLUMN copy_of INTEGER;   -- a near-duplicate of this item
    ALTER TABLE items ADD COLUMN story_time INTEGER; -- the time clustering used for it
    CREATE INDEX items_story ON items(story_id);
    CREATE INDEX items_story_time ON items(story_time);
    ALTER TABLE sources ADD COLUMN title TEXT;       -- configured display title (the outlet name)
    "#,
        then: None,
    },
    // 3: RSS skipHours/skipDays, remembered for polls answered 304.
    Migration {
        sql: r#"
    ALTER TABLE sources ADD COLUMN skip_hours INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sources ADD COLUMN skip_days INTEGER NOT NULL DEFAULT 0;
    "#,
        then: None,
    },
    // 4: full-text search over items (see `super::search`): contentless (the text stays in
    // `items` only; the index holds tokens, rowid = items.id), deletable row by row, accents
    // folded both ways. A group transaction's tokens (a few MB) are written as one segment
    // (hashsize, default 1 MB), and segments are merged 8 at a time (automerge, default 4):
    // together a quarter less CPU per indexed item, for a few more segments per query. Every
    // stored item is indexed here, so an upgraded database is searchable at once.
    Migration {
        sql: r#"
    CREATE VIRTUAL TABLE item_search USING fts5(
        title, body, outlets,
        content='', contentless_delete=1,
        tokenize='unicode61 remove_diacritics 2'
    );
    INSERT INTO item_search (item_search, rank) VALUES ('hashsize', 8388608);
    INSERT INTO item_search (item_search, rank) VALUES ('automerge', 8);
    "#,
        then: Some(backfill_search),
    },
    // 5: source health events (the health feed): a source started failing, recovered, was
    // retired or moved. Appended by the poll that caused them, in its transaction.
    Migration {
        sql: r#"
    CREATE TABLE source_events (
        id        INTEGER PRIMARY KEY,
        source_id TEXT NOT NULL,
        at        INTEGER NOT NULL,
        kind      TEXT NOT NULL,      -- failing | recovered | retired | moved
        detail    TEXT NOT NULL
    );
    CREATE INDEX source_events_at ON source_events(at);
    "#,
        then: None,
    },
    // 6: items of the last fetched document left out as older than `retention`.
    Migration { sql: "ALTER TABLE sources ADD COLUMN past_retention INTEGER NOT NULL DEFAULT 0;", then: None },
    // 7: digests (see `crate::digest`): one row per topic and ended period that had stories,
    // written once and never rewritten, so a newsletter tool sees each period exactly once.
    Migration {
        sql: r#"
    CREATE TABLE digests (
        topic         TEXT NOT NULL,
        period_start  INTEGER NOT NULL,   -- unix seconds, inclusive
        period_end    INTEGER NOT NULL,   -- unix seconds, exclusive
        guid          TEXT NOT NULL,
        title         TEXT NOT NULL,
        html          TEXT NOT NULL,      -- email-ready: inline styles only
        text          TEXT NOT NULL,      -- the plain-text part
        story_ids     TEXT NOT NULL,      -- JSON array, best first
        published_at  INTEGER NOT NULL,   -- the period's end
        PRIMARY KEY (topic, period_start)
    ) WITHOUT ROWID;
    "#,
        then: None,
    },
    // 8: our WebSub hub's subscribers (see `crate::push::websub`). The secret is kept as
    // given: every delivery signs with it. Expired leases are deleted by the hub.
    Migration {
        sql: r#"
    CREATE TABLE websub_subscriptions (
        id             INTEGER PRIMARY KEY,
        topic          TEXT NOT NULL,      -- one of our feed URLs
        callback       TEXT NOT NULL,
        secret         TEXT,
        lease_expires  INTEGER NOT NULL,
        created        INTEGER NOT NULL,
        last_delivery  INTEGER,
        failures       INTEGER NOT NULL DEFAULT 0,  -- deliveries given up since the last success
        UNIQUE (topic, callback)
    );
    CREATE INDEX websub_subscriptions_lease ON websub_subscriptions(lease_expires);
    "#,
        then: None,
    },
    // 9: webhook deliveries (see `crate::push::webhook`). One row per (hook, topic, story,
    // event) the hook has seen: `seen` for the baseline and for events another topic already
    // carried, else the state of the POST that carries it (its batch). A batch keeps its body,
    // so a pending one is resent after a restart exactly as first sent (same delivery id).
    Migration {
        sql: r#"
    CREATE TABLE webhook_batches (
        id            TEXT PRIMARY KEY,     -- X-Newsdesk-Delivery
        hook          TEXT NOT NULL,
        status        TEXT NOT NULL,        -- pending | delivered | failed
        attempts      INTEGER NOT NULL DEFAULT 0,
        next_attempt  INTEGER NOT NULL,     -- unix milliseconds
        created       INTEGER NOT NULL,     -- unix milliseconds
        last_error    TEXT,
        content_type  TEXT NOT NULL,
        headers       TEXT NOT NULL,        -- JSON [[name, value], ...], unsigned
        body          BLOB NOT NULL
    );
    CREATE INDEX webhook_batches_status ON webhook_batches(status, next_attempt);
    CREATE TABLE webhook_deliveries (
        hook          TEXT NOT NULL,
        topic         TEXT NOT NULL,
        story_id      INTEGER NOT NULL,
        event         TEXT NOT NULL,        -- new_story | min_outlets:N | baseline (story 0: the topic was seen)
        status        TEXT NOT NULL,        -- seen | pending | delivered | failed
        attempts      INTEGER NOT NULL DEFAULT 0,
        next_attempt  INTEGER,
        batch_id      TEXT,
        created       INTEGER NOT NULL,
        PRIMARY KEY (hook, topic, story_id, event)
    ) WITHOUT ROWID;
    CREATE INDEX webhook_deliveries_batch ON webhook_deliveries(batch_id);
    CREATE INDEX webhook_deliveries_story ON webhook_deliveries(hook, story_id, event);
    "#,
        then: None,
    },
    // 10: the write turn a story was merged in: PostgreSQL's other writers replay the merges
    // of the turns they missed (`super::stories::catch_up`). SQLite has one writer and leaves
    // it NULL; the column is here so that `newsdesk migrate` copies the same columns both ways.
    Migration {
        sql: r#"
    ALTER TABLE stories ADD COLUMN merged_turn INTEGER;
    "#,
        then: None,
    },
];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`VERSION`].
pub fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > VERSION {
        anyhow::bail!(
            "database schema version {current} is newer than this newsdesk supports ({VERSION}); upgrade newsdesk"
        );
    }
    migrate_to(conn, current, VERSION)
}

/// Runs migrations `from + 1 ..= to`, each in its own transaction.
fn migrate_to(conn: &mut Connection, from: i64, to: i64) -> anyhow::Result<()> {
    for (i, m) in MIGRATIONS.iter().enumerate().take(to as usize).skip(from as usize) {
        let version = (i + 1) as i64;
        let tx = conn.transaction()?;
        tx.execute_batch(m.sql)?;
        if let Some(then) = m.then {
            then(&tx).with_context(|| format!("migration {version}"))?;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

fn backfill_search(conn: &Connection) -> rusqlite::Result<()> {
    let n = super::search::backfill(conn)?;
    if n > 0 {
        tracing::info!("search index: {n} stored items indexed");
    }
    Ok(())
}

/// A database at schema version `version` (older than [`VERSION`]), for migration tests.
#[cfg(test)]
pub(crate) fn create_at(conn: &mut Connection, version: i64) -> anyhow::Result<()> {
    migrate_to(conn, 0, version)
}
