//! Stories in the database: assigning each new item to a story inside the item's own
//! transaction, merges that redirect the younger id to the older, and rebuilding the
//! in-memory [`StoryIndex`] from the items of the live window after a restart.

use rusqlite::{params, Connection};

use crate::dedup::story::{Article, Features, StoryIndex, StoryParams};
use crate::normalize::text::quick_text;

/// The clustering features of a stored item: the same text preparation at ingest, in the
/// parallel parse step, and when the engine is rebuilt after a restart. `outlet` is the
/// source's name; the outlet an item counts for is its link's host (as topics count outlets:
/// an aggregator's items are their publishers'), else its source.
pub fn features(title: &str, summary_html: Option<&str>, url: Option<&str>, outlet: &str, source_id: &str) -> Features {
    let summary = summary_html.map(|h| quick_text(h, SUMMARY_CHARS)).unwrap_or_default();
    let key = outlet_key(url, source_id);
    let art = Article { title, summary: &summary, url: url.unwrap_or(""), outlet, outlet_key: &key, time: 0 };
    Features::extract(&art, &StoryParams::default())
}

/// The outlet an item counts for: its link's host (see [`crate::select::outlet_of`]), else `source:{id}`.
pub fn outlet_key(link: Option<&str>, source_id: &str) -> String {
    link.and_then(|l| url::Url::parse(l).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| crate::normalize::url::host_key(&u))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("source:{source_id}"))
}

/// Characters of an item's summary text that clustering reads.
const SUMMARY_CHARS: usize = 400;

/// Where [`assign`] put an item: the columns its row is inserted with.
pub struct Placed {
    /// The story (after merges).
    pub story: i64,
    /// The earlier item this one nearly copies.
    pub copy_of: Option<i64>,
}

/// Assigns the item about to be inserted as `item_id` (with its [`features`]) to a story at
/// `time` and records the story side (story row, merges); the caller inserts the item row
/// with the returned columns, so the row is written once.
pub fn assign(
    tx: &Connection,
    engine: &mut StoryIndex,
    item_id: i64,
    features: Features,
    time: i64,
) -> rusqlite::Result<Placed> {
    let a = engine.assign_features_as(features, time, item_id as u64);
    let story = a.story as i64;
    tx.prepare_cached(
        "INSERT INTO stories (id, first_seen, last_seen) VALUES (?1, ?2, ?2)
         ON CONFLICT(id) DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen)",
    )?
    .execute(params![story, time])?;
    for gone in &a.merged {
        let gone = *gone as i64;
        // Older id survives: the younger story's items move, its row stays as a redirect.
        tx.prepare_cached(
            "INSERT INTO stories (id, first_seen, last_seen) VALUES (?1, ?2, ?2) ON CONFLICT(id) DO NOTHING",
        )?
        .execute(params![gone, time])?;
        tx.prepare_cached("UPDATE stories SET merged_into = ?1 WHERE id = ?2 OR merged_into = ?2")?
            .execute(params![story, gone])?;
        tx.prepare_cached("UPDATE items SET story_id = ?1 WHERE story_id = ?2")?.execute(params![story, gone])?;
        tx.prepare_cached(
            "UPDATE stories SET first_seen = MIN(first_seen, (SELECT first_seen FROM stories WHERE id = ?2)) WHERE id = ?1",
        )?
        .execute(params![story, gone])?;
    }
    Ok(Placed { story, copy_of: a.near_duplicate_of.map(|i| i as i64) })
}

/// The story a (possibly merged) story id now lives in.
pub fn resolve(conn: &Connection, id: i64) -> rusqlite::Result<Option<i64>> {
    use rusqlite::OptionalExtension;
    conn.query_row("SELECT COALESCE(merged_into, id) FROM stories WHERE id = ?1", [id], |r| r.get(0)).optional()
}

/// Rebuilds the clustering state from the items of the last `quiet_period` (what the engine
/// would still hold had the process never stopped), in the order they were clustered.
pub fn restore(conn: &Connection, params: StoryParams, now: i64) -> rusqlite::Result<StoryIndex> {
    let since = now - params.quiet_period;
    let mut engine = StoryIndex::new(params);
    let next: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM stories", [], |r| r.get(0))?;
    engine.next_story = next.max(1) as u64;
    let mut stmt = conn.prepare(
        "SELECT i.id, i.title, COALESCE(i.summary, ''), COALESCE(i.link, ''), i.story_id, i.story_time,
                i.copy_of IS NOT NULL,
                COALESCE((SELECT COALESCE(s.title, s.feed_title, s.id) || char(10) || s.id FROM appearances a
                          JOIN sources s ON s.id = a.source_id
                          WHERE a.item_id = i.id ORDER BY a.first_seen LIMIT 1), '')
         FROM items i
         WHERE i.story_time >= ?1 AND i.story_id IS NOT NULL
         ORDER BY i.story_time, i.id",
    )?;
    let rows = stmt.query_map([since], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, bool>(6)?,
            r.get::<_, String>(7)?,
        ))
    })?;
    for row in rows {
        let (id, title, summary, url, story, time, copy, outlet) = row?;
        let story = resolve(conn, story)?.unwrap_or(story);
        // Exactly what ingest clustered on.
        // "name\nsource id" of the source that first had it.
        let (name, source) = outlet.rsplit_once('\n').unwrap_or((outlet.as_str(), ""));
        let url = Some(url.as_str()).filter(|u| !u.is_empty());
        let f = features(&title, Some(summary.as_str()).filter(|s| !s.is_empty()), url, name, source);
        engine.restore_features(f, time, id as u64, story as u64, copy);
    }
    engine.expire(now);
    Ok(engine)
}
