//! Read queries for publishing: the items of the stories active in a time window, source
//! names and health, and the counts `/metrics` reports. Only reads; every function takes a
//! reader connection ([`super::Store::reader`]).

use std::collections::HashMap;

use crate::store::db::{Connection, OptionalExtension};

/// One stored item, as the topic selection and the renderers need it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoryItem {
    /// Item row id.
    pub id: i64,
    /// The (live) story the item belongs to.
    pub story_id: i64,
    /// Link as published (absolute when the feed gave one).
    pub link: Option<String>,
    /// Plain-text title.
    pub title: String,
    /// Sanitised summary HTML.
    pub summary: Option<String>,
    /// Sanitised full-content HTML.
    pub content: Option<String>,
    /// The feed's date, else first seen (unix seconds).
    pub published: i64,
    /// Last edit (unix seconds).
    pub updated: i64,
    /// When newsdesk first stored it (unix seconds).
    pub first_seen: i64,
    /// The time story clustering used: publication time, never later than first seen.
    pub story_time: i64,
    /// Author names.
    pub authors: Vec<String>,
    /// Category terms.
    pub categories: Vec<String>,
    /// A near-duplicate (syndicated copy) of another item.
    pub copy: bool,
    /// The item it nearly copies.
    pub copy_of: Option<i64>,
    /// Sources it appeared in, earliest first (at least one for ingested items).
    pub sources: Vec<String>,
}

/// Every item of every story that had an item in `[since, ∞)` (by clustering time), so a
/// story active in the window comes with its older items too.
///
/// Uses the `items(story_time)` index to find the live stories and `items(story_id)` to load
/// their items: the cost follows the window, not the size of the database. Items come without
/// their article text (`summary` and `content` are `None`), or with `text = Some(n)` with the
/// first `n` characters of their summary, else content, in `summary` (for keyword filters):
/// reading every article of the window whole on each rebuild cost more than all the rest.
/// [`item_text`] reads the whole text of the few items that get published.
pub fn story_items_since(
    conn: &Connection,
    since: i64,
    text: Option<usize>,
) -> crate::store::db::Result<Vec<StoryItem>> {
    let sql = item_query(
        text,
        "i.story_id IN (SELECT DISTINCT story_id FROM items WHERE story_time >= ?1 AND story_id IS NOT NULL)",
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([since], story_item)?;
    rows.collect()
}

/// The items whose clustering time falls in `[start, end)`, and only those (not the rest of
/// their stories): a digest period's stories as they were within the period, whatever
/// their stories did later. Text as in [`story_items_since`].
pub fn story_items_between(
    conn: &Connection,
    start: i64,
    end: i64,
    text: Option<usize>,
) -> crate::store::db::Result<Vec<StoryItem>> {
    let sql = item_query(text, "i.story_time >= ?1 AND i.story_time < ?2 AND i.story_id IS NOT NULL");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([start, end], story_item)?;
    rows.collect()
}

/// Every item of the live story `story` (not following merges: pass a resolved id), with
/// the first `text` characters of their summary (else content) when asked.
pub fn items_of_story(conn: &Connection, story: i64, text: Option<usize>) -> crate::store::db::Result<Vec<StoryItem>> {
    let mut stmt = conn.prepare_cached(&item_query(text, "i.story_id = ?1"))?;
    let rows = stmt.query_map([story], story_item)?;
    rows.collect()
}

/// The item columns [`story_item`] reads, for the items `filter` selects.
fn item_query(text: Option<usize>, filter: &str) -> String {
    format!(
        "SELECT i.id, COALESCE(s.merged_into, i.story_id), i.link, i.title, {}, NULL, i.published,
                i.updated, i.first_seen, COALESCE(i.story_time, i.published), i.authors, i.categories,
                i.copy_of,
                (SELECT group_concat(x.source_id, char(31)) FROM
                    (SELECT a.source_id FROM appearances a WHERE a.item_id = i.id
                     ORDER BY a.first_seen, a.source_id) x)
         FROM items i LEFT JOIN stories s ON s.id = i.story_id
         WHERE {filter}
         ORDER BY i.story_id, i.story_time, i.id",
        match text {
            Some(n) => format!("substr(COALESCE(i.summary, i.content), 1, {n})"),
            None => "NULL".to_string(),
        }
    )
}

fn story_item(r: &crate::store::db::Row) -> crate::store::db::Result<StoryItem> {
    let authors: String = r.get(10)?;
    let categories: String = r.get(11)?;
    let sources: Option<String> = r.get(13)?;
    let copy_of: Option<i64> = r.get(12)?;
    Ok(StoryItem {
        id: r.get(0)?,
        story_id: r.get(1)?,
        link: r.get(2)?,
        title: r.get(3)?,
        summary: r.get(4)?,
        content: r.get(5)?,
        published: r.get(6)?,
        updated: r.get(7)?,
        first_seen: r.get(8)?,
        story_time: r.get(9)?,
        // Written by our own ingest as JSON arrays; a damaged cell costs its tags, not the item.
        authors: serde_json::from_str(&authors).unwrap_or_default(),
        categories: serde_json::from_str(&categories).unwrap_or_default(),
        copy: copy_of.is_some(),
        copy_of,
        sources: sources
            .map(|s| s.split('\u{1f}').filter(|x| !x.is_empty()).map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// An item's summary, else its content: the text [`story_items_since`] leaves out.
pub fn item_text(conn: &Connection, id: i64) -> crate::store::db::Result<Option<String>> {
    conn.prepare_cached("SELECT COALESCE(summary, content) FROM items WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()
        .map(Option::flatten)
}

/// What the renderers show about a source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceInfo {
    /// Source id.
    pub id: String,
    /// Display name: configured title, else the feed's own title, else the id.
    pub name: String,
    /// Current feed URL.
    pub url: String,
    /// The feed's home page, when it named one.
    pub home_page: Option<String>,
}

/// Every stored source, by id.
pub fn source_info(conn: &Connection) -> crate::store::db::Result<HashMap<String, SourceInfo>> {
    let mut stmt = conn.prepare_cached("SELECT id, COALESCE(title, feed_title, id), url, home_page FROM sources")?;
    let rows = stmt
        .query_map([], |r| Ok(SourceInfo { id: r.get(0)?, name: r.get(1)?, url: r.get(2)?, home_page: r.get(3)? }))?;
    rows.map(|r| r.map(|s| (s.id.clone(), s))).collect()
}

/// Sizes reported as `/metrics` gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Sources in the database (configured or kept after removal).
    pub sources: i64,
    /// Sources whose last poll failed.
    pub failing: i64,
    /// Live stories (not merged into another).
    pub stories: i64,
    /// Stored items.
    pub items: i64,
}

/// Current sizes.
pub fn counts(conn: &Connection) -> crate::store::db::Result<Counts> {
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM sources),
                (SELECT COUNT(*) FROM sources WHERE status = 'error'),
                (SELECT COUNT(*) FROM stories WHERE merged_into IS NULL),
                (SELECT COUNT(*) FROM items)",
        [],
        |r| Ok(Counts { sources: r.get(0)?, failing: r.get(1)?, stories: r.get(2)?, items: r.get(3)? }),
    )
}

/// The article a story id stands for: the earliest linked item of the story it lives in now
/// (following merges), for the `/stories/{id}` redirect behind every published GUID.
pub fn story_link(conn: &Connection, id: i64) -> crate::store::db::Result<Option<String>> {
    let Some(live) = super::stories::resolve(conn, id)? else { return Ok(None) };
    conn.query_row(
        "SELECT link FROM items WHERE story_id = ?1 AND link IS NOT NULL
         ORDER BY COALESCE(story_time, published), id LIMIT 1",
        [live],
        |r| r.get(0),
    )
    .optional()
}

/// A trivial read: proves the database file opens and answers (for `/healthz`).
pub fn ping(conn: &Connection) -> crate::store::db::Result<i64> {
    conn.query_row("SELECT COUNT(*) FROM sources", [], |r| r.get(0))
}
