//! Retention: old items are pruned, leave tombstones so an undated item still in its upstream
//! feed is not ingested again, and the file gives its pages back.

mod common;

use common::{rss_dated, simple_feed, simple_feed_dated, Desk, Reply, TestServer};
use newsdesk::store::{retention, Store};

#[test]
fn pruned_items_leave_tombstones_and_space_is_returned() {
    let srv = TestServer::start();
    let body = "&lt;p&gt;".to_string() + &"long article text ".repeat(500) + "&lt;/p&gt;";
    let items: Vec<(String, String)> =
        (0..200).map(|i| (format!("g{i}"), format!("Undated story number {i}"))).collect();
    let refs: Vec<(Option<&str>, Option<&str>, &str, &str)> =
        items.iter().map(|(g, t)| (Some(g.as_str()), None, t.as_str(), body.as_str())).collect();
    // No usable date: the items get their first-seen time.
    srv.set("/u.xml", Reply::rss(rss_dated(&refs, "not a date")));
    let d = Desk::new("retention").source("u", &srv.url("/u.xml")).write();
    d.fetch(&[]);
    assert_eq!(d.count("SELECT COUNT(*) FROM items"), 200);
    let pages_before = d.count("PRAGMA page_count");
    // Age them past the retention period, then prune as the daemon does.
    d.conn().execute("UPDATE items SET published = published - 40 * 86400", []).unwrap();
    let store = Store::open(&d.db()).unwrap();
    let cutoff = chrono::Utc::now() - chrono::Duration::days(30);
    let pruned = store.write_blocking(move |w| retention::prune(w, cutoff)).unwrap().unwrap();
    assert_eq!(pruned, 200);
    drop(store);
    assert_eq!(d.count("SELECT COUNT(*) FROM items"), 0);
    assert_eq!(d.count("SELECT COUNT(*) FROM tombstones"), 200);
    assert_eq!(d.count("SELECT COUNT(*) FROM stories"), 0, "stories left without items go too");
    let pages_after = d.count("PRAGMA page_count");
    assert!(pages_after * 2 < pages_before, "incremental vacuum returned pages: {pages_before} -> {pages_after}");
    // Still in the upstream feed: not ingested again.
    let out = d.fetch(&[]);
    assert!(out.contains("u: 0 new"), "{out}");
    assert_eq!(d.count("SELECT COUNT(*) FROM items"), 0);
}

#[test]
fn fetch_says_what_it_left_out_as_past_retention() {
    let srv = TestServer::start();
    srv.set("/old.xml", Reply::rss(simple_feed_dated("old", 30, "Mon, 01 Jan 2024 10:00:00 +0000")));
    srv.set("/mixed.xml", {
        let mut items = simple_feed_dated("m", 2, "Mon, 01 Jan 2024 10:00:00 +0000");
        // One recent item beside the two old ones.
        let recent = simple_feed("fresh", 1);
        let start = recent.find("<item>").unwrap();
        let end = recent.rfind("</item>").unwrap() + "</item>".len();
        items = items.replacen("<item>", &format!("{}<item>", &recent[start..end]), 1);
        Reply::rss(items)
    });
    let desk =
        Desk::new("past-retention").source("old", &srv.url("/old.xml")).source("mixed", &srv.url("/mixed.xml")).write();
    let out = desk.run(&["fetch"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("old: 0 new, 0 updated, 0 unchanged, 30 past retention (30d)"), "{stdout}");
    assert!(stdout.contains("mixed: 1 new, 0 updated, 0 unchanged, 2 past retention (30d)"), "{stdout}");
    assert!(stdout.contains("2 sources polled: 1 new, 0 updated, 0 failed, 32 past retention (30d)"), "{stdout}");
    assert!(stderr.contains("past_retention=30") && stderr.contains("retention=30d"), "the log says it: {stderr}");
    let listed = String::from_utf8_lossy(&desk.run(&["sources"]).stdout).to_string();
    assert!(listed.contains("0 (+30 past retention)") && listed.contains("1 (+2 past retention)"), "{listed}");
    // A recent feed says nothing of retention.
    srv.set("/old.xml", Reply::rss(simple_feed("new", 3)));
    let stdout = String::from_utf8_lossy(&desk.run(&["fetch", "old"]).stdout).to_string();
    assert!(stdout.contains("old: 3 new, 0 updated, 0 unchanged [") && !stdout.contains("past retention"), "{stdout}");
}
