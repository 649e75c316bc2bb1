//! Items: storing one fetched document's items, once each.

use crate::store::db::{params, Connection, OptionalExtension};
use chrono::{DateTime, Utc};

use super::{search, stories};
use crate::dedup::identity::identities;
use crate::dedup::story::{Features, StoryIndex};
use crate::model::Feed;

/// What storing one document did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestCounts {
    /// Items new to this source (including articles another source already had).
    pub new: usize,
    /// Items the publisher edited since the last poll.
    pub updated: usize,
    /// Items already stored unchanged.
    pub unchanged: usize,
    /// Of `new`: articles already stored through another source or URL variant.
    pub linked: usize,
    /// Items skipped because they were pruned before (tombstoned).
    pub tombstoned: usize,
    /// Of `new`: articles older than the newest one already clustered, so clustered out of
    /// time order: the stories are settled again (see [`super::stories`]).
    pub late: usize,
}

/// Stores every item of `feed` for `source_id` inside `tx` (see [`crate::dedup::identity`]).
/// `features` are the items' clustering features in the same order (computed in the parallel
/// parse step; missing ones are computed here). The search index writes for the new, edited
/// and newly linked items go to `index`, for the caller to make before it commits.
pub fn ingest(
    tx: &Connection,
    engine: &mut StoryIndex,
    source_id: &str,
    feed: &Feed,
    features: &[Features],
    now: DateTime<Utc>,
    index: &mut search::Batch,
) -> crate::store::db::Result<IngestCounts> {
    let now_s = now.timestamp();
    let outlet: String = tx
        .query_row(
            "SELECT COALESCE(title, ?2, feed_title, id) FROM sources WHERE id = ?1",
            params![source_id, feed.title],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or_else(|| source_id.to_string());
    // The name the search index knows the source by (as `search::index_item` reads it).
    let display: String = tx
        .query_row("SELECT COALESCE(title, feed_title, id) FROM sources WHERE id = ?1", [source_id], |r| r.get(0))
        .optional()?
        .unwrap_or_default();
    let mut counts = IngestCounts::default();
    let ids = identities(&feed.items, feed.home_page.as_deref());
    // What the item is known as, in one statement (one round trip to PostgreSQL): its
    // appearance under this source and key, else a tombstone for it and an item of its
    // canonical URL (looked up only for an item this source does not have: a warm poll's
    // known items cost one index probe, as before).
    let mut find = tx.prepare_cached(
        "SELECT a.item_id, a.content_hash,
                CASE WHEN a.item_id IS NULL
                     THEN EXISTS (SELECT 1 FROM tombstones WHERE source_id = ?1 AND key = ?2) END,
                CASE WHEN a.item_id IS NULL THEN (SELECT id FROM items WHERE canonical_url = ?3) END
         FROM (SELECT 1 AS one) o
         LEFT JOIN appearances a ON a.source_id = ?1 AND a.key = ?2",
    )?;
    let mut own_app =
        tx.prepare_cached("SELECT key, content_hash FROM appearances WHERE item_id = ?1 AND source_id = ?2 LIMIT 1")?;
    let mut rekey = tx.prepare_cached("UPDATE appearances SET key = ?3 WHERE source_id = ?1 AND key = ?2")?;
    let mut add_app = tx.prepare_cached(
        "INSERT INTO appearances (source_id, key, item_id, content_hash, first_seen) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut set_app_hash =
        tx.prepare_cached("UPDATE appearances SET content_hash = ?3 WHERE source_id = ?1 AND key = ?2")?;
    let mut update_item = tx.prepare_cached(
        "UPDATE items SET title = ?2, link = COALESCE(?3, link), summary = ?4, content = ?5, updated = ?6,
                          authors = ?7, categories = ?8, content_hash = ?9
         WHERE id = ?1",
    )?;
    let mut insert_item = tx.prepare_cached(
        "INSERT INTO items (id, canonical_url, link, title, summary, content, published, updated, first_seen,
                            authors, categories, content_hash, story_id, copy_of, story_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    // The id the next inserted row gets (what SQLite would choose): the story engine records
    // the item under it before the row exists. Read once: only this loop inserts items
    // while it runs (on PostgreSQL writers take turns, see `Connection::begin`).
    let mut next_id: Option<i64> = None;
    for (n, (it, id)) in feed.items.iter().zip(&ids).enumerate() {
        let hash = it.content_hash as i64;
        let authors = serde_json::to_string(&it.authors).unwrap_or_else(|_| "[]".into());
        let categories = serde_json::to_string(&it.categories).unwrap_or_else(|_| "[]".into());
        let updated_at =
            it.updated.map(|d| d.timestamp()).unwrap_or(now_s).max(it.published.map(|d| d.timestamp()).unwrap_or(0));
        // An edit changes what the item is found by: it is indexed again.
        let mut apply_edit = |item_id: i64| {
            update_item.execute(params![
                item_id,
                it.title,
                it.link,
                it.summary_html,
                it.content_html,
                updated_at.max(now_s),
                authors,
                categories,
                hash
            ])?;
            index.item(item_id);
            Ok::<_, crate::store::db::Error>(())
        };
        let (app, tombstoned, existing): (Option<(i64, i64)>, bool, Option<i64>) =
            find.query_row(params![source_id, id.key, id.canonical], |r| {
                let app = match (r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?) {
                    (Some(item), Some(hash)) => Some((item, hash)),
                    _ => None,
                };
                Ok((app, r.get::<_, Option<bool>>(2)?.unwrap_or(false), r.get(3)?))
            })?;
        // 1. Known to this source under this key?
        if let Some((item_id, old_hash)) = app {
            if old_hash == hash {
                counts.unchanged += 1;
            } else {
                apply_edit(item_id)?;
                set_app_hash.execute(params![source_id, id.key, hash])?;
                counts.updated += 1;
            }
            continue;
        }
        if tombstoned {
            counts.tombstoned += 1;
            continue;
        }
        // 2. The same article under another key: another source, a URL variant, or a GUID
        //    this source rotated.
        if let Some(item_id) = existing {
            let own: Option<(String, i64)> =
                own_app.query_row(params![item_id, source_id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
            match own {
                Some((old_key, old_hash)) => {
                    // Same source, new key for an article it already gave us: re-key.
                    rekey.execute(params![source_id, old_key, id.key])?;
                    if old_hash == hash {
                        counts.unchanged += 1;
                    } else {
                        apply_edit(item_id)?;
                        set_app_hash.execute(params![source_id, id.key, hash])?;
                        counts.updated += 1;
                    }
                }
                None => {
                    add_app.execute_later(params![source_id, id.key, item_id, hash, now_s])?;
                    // One more outlet it is found by.
                    index.item(item_id);
                    counts.new += 1;
                    counts.linked += 1;
                }
            }
            continue;
        }
        // 3. A new article: clustered first, so its row is written once, story included.
        let published = it.published.map(|d| d.timestamp()).unwrap_or(now_s);
        let item_id = match next_id {
            Some(id) => id,
            None => tx.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM items", [], |r| r.get(0))?,
        };
        next_id = Some(item_id + 1);
        let f = match features.get(n) {
            Some(f) => f.clone(),
            None => stories::features(
                &it.title,
                it.summary_html.as_deref().or(it.content_html.as_deref()),
                it.link.as_deref(),
                &outlet,
                source_id,
            ),
        };
        let story_time = published.min(now_s);
        if story_time < engine.docs.time {
            counts.late += 1;
        }
        let placed = stories::assign(tx, engine, item_id, f, story_time)?;
        insert_item.execute_later(params![
            item_id,
            id.canonical,
            it.link,
            it.title,
            it.summary_html,
            it.content_html,
            published,
            it.updated.map(|d| d.timestamp()).unwrap_or(published).max(published),
            now_s,
            authors,
            categories,
            hash,
            placed.story,
            placed.copy_of,
            story_time
        ])?;
        add_app.execute_later(params![source_id, id.key, item_id, hash, now_s])?;
        index.new_item(
            item_id,
            &it.title,
            it.summary_html.as_deref(),
            it.content_html.as_deref(),
            it.link.as_deref(),
            &display,
        );
        counts.new += 1;
    }
    Ok(counts)
}
