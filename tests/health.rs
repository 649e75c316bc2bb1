//! The health feed (`/sources/health.{rss,atom,json}`): one entry when a source starts
//! failing (after `failing_after` consecutive failures), recovers, is retired (410) or moves
//! (301), recorded by real polls (`newsdesk fetch` against a loopback farm) and served from
//! the same database.

mod common;
mod support;

use common::{rss, Desk, Reply, TestServer};
use support::{http, Served};

fn feed() -> Reply {
    Reply::rss(rss(&[(Some("a1"), Some("https://a.example/1"), "A headline about the port", "Body.")]))
}

/// (title, guid) of each entry, in document order.
fn entries(body: &[u8]) -> Vec<(String, String)> {
    let f = feed_rs::parser::parse(body).unwrap();
    f.entries.iter().map(|e| (e.title.as_ref().map(|t| t.content.clone()).unwrap_or_default(), e.id.clone())).collect()
}

#[test]
fn the_health_feed_says_when_sources_fail_recover_retire_and_move() {
    let srv = TestServer::start();
    srv.set("/flaky.xml", Reply::status(500, &[]));
    srv.set("/gone.xml", Reply::status(410, &[]));
    srv.set("/old.xml", Reply::status(301, &[("Location", &srv.url("/new.xml"))]));
    srv.set("/new.xml", feed());
    let desk = Desk::new("health")
        .source_with("flaky", &srv.url("/flaky.xml"), "title = \"Flaky Times\"")
        .source("gone", &srv.url("/gone.xml"))
        .source("mover", &srv.url("/old.xml"))
        .write();

    // Two failures are not "failing" yet (failing_after defaults to 3); the third is.
    desk.fetch(&["flaky", "gone", "mover"]);
    desk.fetch(&["flaky"]);
    let kinds = |d: &Desk| -> Vec<(String, String)> {
        let conn = d.conn();
        let mut q = conn.prepare("SELECT source_id, kind FROM source_events ORDER BY id").unwrap();
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    };
    let two = kinds(&desk);
    assert!(!two.iter().any(|(s, _)| s == "flaky"), "{two:?}");
    assert!(two.contains(&("gone".into(), "retired".into())) && two.contains(&("mover".into(), "moved".into())));
    desk.fetch(&["flaky"]);
    desk.fetch(&["flaky"]);
    let failing: Vec<_> = kinds(&desk).into_iter().filter(|(s, _)| s == "flaky").collect();
    assert_eq!(failing, [("flaky".to_string(), "failing".to_string())], "one entry, not one per failure");
    // It comes back.
    srv.set("/flaky.xml", feed());
    desk.fetch(&["flaky"]);
    desk.fetch(&["flaky"]);
    let all = kinds(&desk);
    assert_eq!(all.iter().filter(|(s, _)| s == "flaky").count(), 2, "{all:?}");
    assert_eq!(all.last().unwrap(), &("flaky".to_string(), "recovered".to_string()));
    // A second poll of the moved source at its new URL is no new move.
    desk.fetch(&["mover"]);
    assert_eq!(kinds(&desk).iter().filter(|(_, k)| k == "moved").count(), 1);

    let served = Served::start(&desk);
    let (status, h, body) = http("GET", &served.url("/sources/health.rss"), &[]);
    assert_eq!(status, 200);
    assert_eq!(h.get("content-type").unwrap(), "application/rss+xml; charset=utf-8");
    let e = entries(&body);
    let titles: Vec<&str> = e.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(titles[0], "Flaky Times (flaky) recovered", "newest first: {titles:?}");
    assert_eq!(titles[1], "Flaky Times (flaky) is failing");
    assert!(titles.contains(&"gone was retired (it will not be polled again)"), "{titles:?}");
    assert!(titles.contains(&"Test feed (mover) moved"), "{titles:?}");
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(text.contains("HTTP 500") || text.contains("500"), "the error is in the entry: {text}");
    assert!(text.contains(&srv.url("/new.xml")), "where it moved: {text}");
    // GUIDs are stable: the same bytes again (and a 304 for the ETag).
    let etag = h.get("etag").unwrap().to_str().unwrap().to_string();
    let (status, _, _) = http("GET", &served.url("/sources/health.rss"), &[("If-None-Match", &etag)]);
    assert_eq!(status, 304);
    let (_, _, atom) = http("GET", &served.url("/sources/health.atom"), &[]);
    assert_eq!(
        entries(&atom).iter().map(|(_, g)| g.clone()).collect::<Vec<_>>(),
        e.iter().map(|(_, g)| g.clone()).collect::<Vec<_>>()
    );
    assert!(e[0].1.starts_with("http://newsdesk.test/sources/health/") || e[0].1.contains("/sources/health/"), "{e:?}");
    assert_eq!(http("GET", &served.url("/sources/health.txt"), &[]).0, 404);
}

#[test]
fn failing_after_is_configurable() {
    let srv = TestServer::start();
    srv.set("/down.xml", Reply::status(503, &[]));
    let desk = Desk::new("health-after").daemon("failing_after = 1").source("down", &srv.url("/down.xml")).write();
    desk.fetch(&[]);
    assert_eq!(desk.count("SELECT COUNT(*) FROM source_events WHERE kind = 'failing'"), 1);
    let bad = Desk::new("health-bad").daemon("failing_after = 0").source("down", &srv.url("/down.xml")).write();
    let out = bad.run(&["check"]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failing_after: must be at least 1") && err.contains("feeds.toml:"), "{err}");
}
