//! Retention: items older than the retention period are deleted; each of their identity keys
//! leaves a tombstone so an item still listed upstream is not ingested again, and freed pages
//! go back to the filesystem (incremental vacuum) so the file does not grow without bound.
//! Their rows in the search index go in the same transaction.

use crate::store::db::params;
use chrono::{DateTime, Utc};

use super::Writer;

/// Tombstones outlive their items by this factor of the retention period; by then the
/// upstream feed has long dropped the item (and ingest also skips items already too old).
const TOMBSTONE_FACTOR: i64 = 2;

/// Deletes items published before `cutoff` (in one transaction); returns how many.
pub fn prune(w: &mut Writer, cutoff: DateTime<Utc>) -> crate::store::db::Result<usize> {
    let cut = cutoff.timestamp();
    let now = Utc::now().timestamp();
    let tx = w.conn.transaction_with_behavior(crate::store::db::Behavior::Immediate)?;
    tx.execute(
        "INSERT OR IGNORE INTO tombstones (source_id, key, deleted_at)
         SELECT a.source_id, a.key, ?2 FROM appearances a JOIN items i ON i.id = a.item_id WHERE i.published < ?1",
        params![cut, now],
    )?;
    super::search::remove_published_before(&tx, cut)?;
    // Health events as old as the items go with them.
    tx.execute("DELETE FROM source_events WHERE at < ?1", [cut])?;
    tx.execute("DELETE FROM appearances WHERE item_id IN (SELECT id FROM items WHERE published < ?1)", [cut])?;
    let n = tx.execute("DELETE FROM items WHERE published < ?1", [cut])?;
    // Stories left without items go; redirects into them go too.
    tx.execute("DELETE FROM stories WHERE merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM items WHERE story_id = stories.id)", [])?;
    tx.execute(
        "DELETE FROM stories WHERE merged_into IS NOT NULL AND merged_into NOT IN (SELECT id FROM stories)",
        [],
    )?;
    let span = (now - cut).max(0);
    tx.execute("DELETE FROM tombstones WHERE deleted_at < ?1", [now - TOMBSTONE_FACTOR * span])?;
    tx.commit()?;
    if n > 0 {
        w.changed();
        // Each step of this pragma frees one page: run it to the end.
        let mut stmt = w.conn.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
    }
    Ok(n)
}
