//! `newsdesk fetch` end to end: a real HTTP server on loopback, the real binary, a real
//! SQLite file. Every item is stored once; every upstream failure is recorded on its source
//! and loses nothing stored before.

#[path = "common/mod.rs"]
mod common;

use std::io::Write;
use std::time::Duration;

use common::{rss, simple_feed, Desk, Reply, TestServer};

fn items(d: &Desk) -> i64 {
    d.count("SELECT COUNT(*) FROM items")
}

#[test]
fn fetch_stores_each_item_once_and_revalidates() {
    let srv = TestServer::start();
    srv.set(
        "/a.xml",
        Reply::rss(simple_feed("a", 5))
            .with_header("ETag", "\"v1\"")
            .with_header("Last-Modified", "Sun, 10 Mar 2024 17:32:50 GMT"),
    );
    let d = Desk::new("once").source("a", &srv.url("/a.xml")).write();
    let out = d.fetch(&[]);
    assert!(out.contains("a: 5 new, 0 updated, 0 unchanged"), "{out}");
    // fetch ends with a full checkpoint: the database file is complete, the WAL empty.
    let wal = std::fs::metadata(format!("{}-wal", d.db().display())).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal, 0, "WAL left behind by fetch");
    assert_eq!(items(&d), 5);
    let out = d.fetch(&[]);
    assert!(out.contains("a: unchanged (304 Not Modified)"), "{out}");
    let second = &srv.seen("/a.xml")[1];
    assert_eq!(second.headers.get("if-none-match").map(String::as_str), Some("\"v1\""));
    assert_eq!(second.headers.get("if-modified-since").map(String::as_str), Some("Sun, 10 Mar 2024 17:32:50 GMT"));
    let ua = second.headers.get("user-agent").cloned().unwrap_or_default();
    assert!(ua.starts_with("newsdesk/") && ua.contains("(+http"), "{ua}");
    assert!(second.headers.get("accept-encoding").is_some_and(|e| e.contains("gzip") && e.contains("br")));
    assert_eq!(items(&d), 5);
    // The server ignores validators and sends the same document again: nothing new.
    srv.set("/a.xml", Reply::rss(simple_feed("a", 5)));
    let out = d.fetch(&[]);
    assert!(out.contains("a: 0 new, 0 updated, 5 unchanged"), "{out}");
    assert_eq!(items(&d), 5);
}

#[test]
fn same_second_change_is_still_read() {
    // Same Last-Modified, new content: a 200 is always new content.
    let srv = TestServer::start();
    let lm = "Sun, 10 Mar 2024 17:32:50 GMT";
    srv.set("/a.xml", Reply::rss(simple_feed("a", 2)).with_header("Last-Modified", lm));
    let d = Desk::new("samesec").source("a", &srv.url("/a.xml")).write();
    d.fetch(&[]);
    srv.set("/a.xml", Reply::rss(simple_feed("a", 4)).with_header("Last-Modified", lm));
    let out = d.fetch(&[]);
    assert!(out.contains("a: 2 new"), "{out}");
    assert_eq!(items(&d), 4);
}

#[test]
fn edited_item_is_updated_in_place() {
    let srv = TestServer::start();
    let link = "https://outlet.example/x/1";
    srv.set("/a.xml", Reply::rss(rss(&[(Some("g1"), Some(link), "Lavrov to visit Pakistan", "first")])));
    let d = Desk::new("edit").source("a", &srv.url("/a.xml")).write();
    d.fetch(&[]);
    srv.set("/a.xml", Reply::rss(rss(&[(Some("g1"), Some(link), "Lavrov arrives in Islamabad", "second")])));
    let out = d.fetch(&[]);
    assert!(out.contains("a: 0 new, 1 updated, 0 unchanged"), "{out}");
    assert_eq!(items(&d), 1);
    let title: String = d.conn().query_row("SELECT title FROM items", [], |r| r.get(0)).unwrap();
    assert_eq!(title, "Lavrov arrives in Islamabad");
}

#[test]
fn items_without_guid_use_link_then_content() {
    let srv = TestServer::start();
    let doc = rss(&[
        (None, Some("https://outlet.example/1"), "One", "a"),
        (None, None, "Two", "b"),
        (None, None, "Three", "c"),
    ]);
    srv.set("/a.xml", Reply::rss(doc.clone()));
    let d = Desk::new("noguid").source("a", &srv.url("/a.xml")).write();
    d.fetch(&[]);
    d.fetch(&[]);
    assert_eq!(items(&d), 3);
    let keys: Vec<String> = {
        let c = d.conn();
        let mut st = c.prepare("SELECT key FROM appearances ORDER BY key").unwrap();
        let v = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        v
    };
    assert_eq!(keys.iter().filter(|k| k.starts_with("h:")).count(), 2, "{keys:?}");
    assert!(keys.contains(&"u:outlet.example/1".to_string()), "{keys:?}");
}

#[test]
fn rotating_guids_and_shared_guid_do_not_duplicate() {
    let srv = TestServer::start();
    let d = Desk::new("rotate").source("rot", &srv.url("/rot.xml")).source("same", &srv.url("/same.xml")).write();
    for poll in 0..3 {
        let g: Vec<String> = (0..3).map(|i| format!("random-{poll}-{i}")).collect();
        srv.set(
            "/rot.xml",
            Reply::rss(rss(&[
                (Some(&g[0]), Some("https://rot.example/1"), "R1", "a"),
                (Some(&g[1]), Some("https://rot.example/2"), "R2", "b"),
                (Some(&g[2]), Some("https://rot.example/3"), "R3", "c"),
            ])),
        );
        srv.set(
            "/same.xml",
            Reply::rss(rss(&[
                (Some("constant"), Some("https://same.example/1"), "S1", "a"),
                (Some("constant"), Some("https://same.example/2"), "S2", "b"),
            ])),
        );
        d.fetch(&[]);
    }
    assert_eq!(d.count("SELECT COUNT(*) FROM appearances WHERE source_id = 'rot'"), 3);
    assert_eq!(d.count("SELECT COUNT(*) FROM appearances WHERE source_id = 'same'"), 2);
    assert_eq!(items(&d), 5);
}

#[test]
fn one_article_through_two_sources_and_url_variants_is_one_item() {
    let srv = TestServer::start();
    srv.set(
        "/one.xml",
        Reply::rss(rss(&[(
            Some("x-1"),
            Some("https://www.agency.example/world/lavrov-pakistan"),
            "Lavrov visits Pakistan",
            "a",
        )])),
    );
    srv.set(
        "/two.xml",
        Reply::rss(rss(&[(
            Some("y-9"),
            Some("http://agency.example/world/lavrov-pakistan/?utm_source=rss&amp;utm_medium=feed#top"),
            "Lavrov visits Pakistan",
            "a",
        )])),
    );
    srv.set(
        "/three.xml",
        Reply::rss(rss(&[(
            Some("z-1"),
            Some("https://amp.agency.example/world/lavrov-pakistan/amp"),
            "Lavrov visits Pakistan (AMP)",
            "a",
        )])),
    );
    let d = Desk::new("syndicated")
        .source("one", &srv.url("/one.xml"))
        .source("two", &srv.url("/two.xml"))
        .source("three", &srv.url("/three.xml"))
        .write();
    d.fetch(&["one"]);
    let out = d.fetch(&["two", "three"]);
    assert!(out.contains("two: 1 new, 0 updated, 0 unchanged (1 already known from other sources)"), "{out}");
    assert_eq!(items(&d), 1, "{out}");
    assert_eq!(d.count("SELECT COUNT(*) FROM appearances"), 3, "one appearance per source");
    // Polling again changes nothing.
    d.fetch(&[]);
    assert_eq!((items(&d), d.count("SELECT COUNT(*) FROM appearances")), (1, 3));
}

#[test]
fn permanent_redirect_updates_url_temporary_does_not() {
    let srv = TestServer::start();
    srv.set("/old.xml", Reply::status(301, &[("Location", "/new.xml")]));
    srv.set("/new.xml", Reply::rss(simple_feed("n", 1)));
    srv.set("/tmp.xml", Reply::status(302, &[("Location", "/elsewhere.xml")]));
    srv.set("/elsewhere.xml", Reply::rss(simple_feed("e", 1)));
    let d = Desk::new("redirect").source("p", &srv.url("/old.xml")).source("t", &srv.url("/tmp.xml")).write();
    let out = d.run(&["fetch"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permanent redirect"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d.source_field("p", "url").as_deref(), Some(srv.url("/new.xml").as_str()));
    assert_eq!(d.source_field("t", "url").as_deref(), Some(srv.url("/tmp.xml").as_str()));
    d.fetch(&[]);
    assert_eq!(srv.hits("/old.xml"), 1, "the next poll goes straight to the new URL");
    assert_eq!(srv.hits("/tmp.xml"), 2);
}

#[test]
fn gone_retires_and_retry_after_is_recorded() {
    let srv = TestServer::start();
    srv.set("/gone.xml", Reply::status(410, &[]));
    srv.set("/busy.xml", Reply::status(429, &[("Retry-After", "3600")]));
    srv.set("/down.xml", Reply::status(503, &[("Retry-After", "Wed, 21 Oct 2037 07:28:00 GMT")]));
    srv.set("/err.xml", Reply::status(500, &[]));
    let d = Desk::new("status")
        .source("gone", &srv.url("/gone.xml"))
        .source("busy", &srv.url("/busy.xml"))
        .source("down", &srv.url("/down.xml"))
        .source("err", &srv.url("/err.xml"))
        .write();
    let out = d.run(&["fetch"]);
    assert_eq!(out.status.code(), Some(1), "every source failed");
    assert_eq!(d.source_field("gone", "status").as_deref(), Some("retired"));
    assert!(d.source_field("gone", "retired_reason").unwrap().contains("410"));
    let now = chrono::Utc::now().timestamp();
    let busy: i64 = d.source_field("busy", "retry_after").unwrap().parse().unwrap();
    assert!((now + 3500..=now + 3700).contains(&busy), "{busy} vs {now}");
    let next: i64 = d.source_field("busy", "next_due").unwrap().parse().unwrap();
    assert!(next >= busy);
    // An HTTP date far ahead is capped at 24 h.
    let down: i64 = d.source_field("down", "next_due").unwrap().parse().unwrap();
    assert!(down <= now + 24 * 3600 + 60, "capped: {down}");
    assert_eq!(d.source_field("err", "last_error").as_deref(), Some("HTTP 500"));
    assert_eq!(d.source_field("err", "failures").as_deref(), Some("1"));
    // A retired source is skipped by a plain `fetch`.
    let out = d.fetch(&[]);
    assert!(out.contains("gone: retired, not polled"), "{out}");
    assert_eq!(srv.hits("/gone.xml"), 1);
    let table = String::from_utf8_lossy(&d.run(&["sources"]).stdout).to_string();
    assert!(table.contains("retired (410)") && table.contains("HTTP 429"), "{table}");
}

#[test]
fn charset_from_content_type_header() {
    let srv = TestServer::start();
    let doc = "<rss version=\"2.0\"><channel><title>Новости</title><item><guid>1</guid><title>Лавров посетит Пакистан</title></item></channel></rss>";
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(doc);
    srv.set("/ru.xml", Reply::ok("application/rss+xml; charset=windows-1251", bytes.into_owned()));
    let d = Desk::new("charset").source("ru", &srv.url("/ru.xml")).write();
    d.fetch(&[]);
    let title: String = d.conn().query_row("SELECT title FROM items", [], |r| r.get(0)).unwrap();
    assert_eq!(title, "Лавров посетит Пакистан");
}

#[test]
fn file_sources() {
    let d = Desk::new("file");
    let path = d.dir.join("local.xml");
    std::fs::write(&path, simple_feed("f", 3)).unwrap();
    let url = url::Url::from_file_path(&path).unwrap();
    let d = d.source("local", url.as_str()).write();
    let out = d.fetch(&[]);
    assert!(out.contains("local: 3 new"), "{out}");
}

#[test]
fn fetch_named_sources_and_unknown_ids() {
    let srv = TestServer::start();
    srv.set("/a.xml", Reply::rss(simple_feed("a", 1)));
    srv.set("/b.xml", Reply::rss(simple_feed("b", 1)));
    let d = Desk::new("named").source("a", &srv.url("/a.xml")).source("b", &srv.url("/b.xml")).write();
    let out = d.fetch(&["b"]);
    assert!(out.contains("b: 1 new") && !out.contains("a:"), "{out}");
    assert_eq!(srv.hits("/a.xml"), 0);
    let out = d.run(&["fetch", "nope"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown source \"nope\""));
    // One failing source among working ones: exit 0.
    srv.set("/a.xml", Reply::status(500, &[]));
    let out = d.run(&["fetch"]);
    assert_eq!(out.status.code(), Some(0));
}

// ------------------------------------------------------------------ bad input
//
// Each case: a first good poll stores items; then the upstream turns bad. The poll is
// recorded as an error with a clear message, and every item stored before is still there.

fn bad_case(name: &str, bad: Reply, expect: &str, extra_daemon: &str) -> Desk {
    let srv = TestServer::start();
    srv.set("/f.xml", Reply::rss(simple_feed("good", 3)));
    srv.set("/other.xml", Reply::rss(simple_feed("other", 2)));
    let d = Desk::new(name)
        .daemon(extra_daemon)
        .source("f", &srv.url("/f.xml"))
        .source("other", &srv.url("/other.xml"))
        .write();
    d.fetch(&[]);
    assert_eq!(items(&d), 5);
    srv.set("/f.xml", bad);
    srv.set("/other.xml", Reply::rss(simple_feed("other", 4)));
    let out = d.run(&["fetch"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let err = d.source_field("f", "last_error").unwrap_or_default();
    assert!(err.contains(expect), "{name}: expected {expect:?} in {err:?}\n{stdout}");
    assert!(stdout.contains(&format!("f: error: {err}")), "{stdout}");
    assert_eq!(d.source_field("f", "status").as_deref(), Some("error"));
    assert!(d.count("SELECT COUNT(*) FROM items") >= 7, "{name}: items lost");
    assert!(stdout.contains("other: 2 new"), "other sources go on: {stdout}");
    d
}

#[test]
fn bad_truncated_xml() {
    let doc = simple_feed("t", 3);
    bad_case("truncated", Reply::rss(doc[..doc.len() / 2].to_string()), "malformed feed", "");
}

#[test]
fn bad_invalid_utf8_is_repaired_not_fatal() {
    let srv = TestServer::start();
    let mut doc = simple_feed("u", 2).into_bytes();
    let at = doc.windows(7).position(|w| w == b"Story 1").unwrap();
    doc[at] = 0xFF;
    doc[at + 1] = 0xFE;
    srv.set("/u.xml", Reply::rss(doc));
    let d = Desk::new("utf8").source("u", &srv.url("/u.xml")).write();
    let out = d.fetch(&[]);
    assert!(out.contains("u: 2 new"), "{out}");
    let t: String =
        d.conn().query_row("SELECT title FROM items WHERE title LIKE '%ory 1 from u'", [], |r| r.get(0)).unwrap();
    assert!(t.contains('\u{FFFD}'), "{t}");
}

#[test]
fn bad_html_page_names_its_feed() {
    let page = r#"<!DOCTYPE html><html><head><title>Outlet</title>
        <link rel="alternate" type="application/rss+xml" title="RSS" href="/rss/all.xml"></head><body>Hello</body></html>"#;
    let d = bad_case("html", Reply::ok("text/html; charset=utf-8", page), "not a feed: got an HTML page", "");
    let err = d.source_field("f", "last_error").unwrap();
    assert!(err.contains("/rss/all.xml"), "{err}");
}

#[test]
fn bad_empty_200() {
    bad_case("empty", Reply::rss(""), "empty response body", "");
}

#[test]
fn bad_body_over_cap() {
    let big = simple_feed("big", 2000);
    bad_case("cap", Reply::rss(big), "exceeds the 65536-byte limit", "max_body = \"64KiB\"");
}

#[test]
fn bad_gzip_bomb() {
    // 64 MiB of zeros compress to ~64 KB; the cap applies to the inflated bytes.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    let body = gz.finish().unwrap();
    assert!(body.len() < 200_000);
    let reply = Reply::Full {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "application/rss+xml".into()),
            ("Content-Encoding".into(), "gzip".into()),
        ],
        body,
    };
    bad_case("gzbomb", reply, "exceeds the 1048576-byte limit", "max_body = \"1MiB\"");
}

#[test]
fn bad_entity_expansion_bomb() {
    let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title><item><guid>b1</guid><title>&lol9;</title></item></channel></rss>"#;
    let srv = TestServer::start();
    srv.set("/bomb.xml", Reply::rss(bomb));
    let d = Desk::new("xmlbomb").source("bomb", &srv.url("/bomb.xml")).write();
    let started = std::time::Instant::now();
    let out = d.run(&["fetch"]);
    assert!(out.status.code().is_some(), "crashed");
    assert!(started.elapsed() < Duration::from_secs(20));
    // Either refused, or the entity is kept as inert text: never expanded.
    let longest: i64 = d.count("SELECT COALESCE(MAX(LENGTH(title)), 0) FROM items");
    assert!(longest < 1000, "entity expanded to {longest} chars");
}

#[test]
fn bad_never_finishing_body() {
    let body = simple_feed("slow", 3).into_bytes();
    bad_case("drip", Reply::Drip { body, every: Duration::from_millis(200) }, "timed out after 2s", "timeout = \"2s\"");
}

#[test]
fn bad_endless_body() {
    bad_case("endless", Reply::Endless, "exceeds the 1048576-byte limit", "max_body = \"1MiB\"");
}

#[test]
fn bad_hanging_server() {
    bad_case("hang", Reply::Hang, "timed out after 2s", "timeout = \"2s\"");
}

#[test]
fn bad_redirect_loop_and_chain() {
    let srv = TestServer::start();
    srv.set("/f.xml", Reply::rss(simple_feed("good", 3)));
    let d = Desk::new("loop").source("f", &srv.url("/f.xml")).source("chain", &srv.url("/r0")).write();
    for i in 0..7 {
        srv.set(&format!("/r{i}"), Reply::status(302, &[("Location", &format!("/r{}", i + 1))]));
    }
    d.fetch(&[]);
    srv.set("/f.xml", Reply::status(301, &[("Location", "/g.xml")]));
    srv.set("/g.xml", Reply::status(308, &[("Location", "/f.xml")]));
    d.fetch(&[]);
    let err = d.source_field("f", "last_error").unwrap();
    assert!(err.contains("redirect loop"), "{err}");
    assert_eq!(
        d.source_field("f", "url").as_deref(),
        Some(srv.url("/f.xml").as_str()),
        "a loop does not move the source"
    );
    assert_eq!(items(&d), 3);
    let err = d.source_field("chain", "last_error").unwrap();
    assert!(err.contains("too many redirects"), "{err}");
}

#[test]
fn bad_hundred_thousand_items_are_capped() {
    let mut doc = String::from("<rss version=\"2.0\"><channel><title>huge</title>");
    for i in 0..100_000 {
        doc.push_str(&format!("<item><guid>{i}</guid><title>t{i}</title></item>"));
    }
    doc.push_str("</channel></rss>");
    let srv = TestServer::start();
    srv.set("/huge.xml", Reply::rss(doc));
    let d = Desk::new("huge").daemon("max_body = \"20MiB\"").source("huge", &srv.url("/huge.xml")).write();
    let out = d.run(&["fetch"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("huge: 1000 new") && stdout.contains("99000 items over the per-feed cap dropped"),
        "{stdout}"
    );
    assert!(stderr.contains("per-feed item cap"), "{stderr}");
    assert_eq!(items(&d), 1000);
}

#[test]
fn bad_dates_in_year_9999_get_first_seen_time() {
    let srv = TestServer::start();
    let doc = common::simple_feed_dated("d", 2, "Fri, 31 Dec 9999 23:59:59 GMT");
    srv.set("/d.xml", Reply::rss(doc));
    let d = Desk::new("y9999").source("d", &srv.url("/d.xml")).write();
    let before = chrono::Utc::now().timestamp();
    d.fetch(&[]);
    d.fetch(&[]);
    let (min, max): (i64, i64) = d
        .conn()
        .query_row("SELECT MIN(published), MAX(published) FROM items", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert!(min >= before - 1 && max <= chrono::Utc::now().timestamp(), "{min} {max}");
    // And a date-less item keeps its first-seen time on later polls.
    let first: i64 = d.count("SELECT first_seen FROM items LIMIT 1");
    std::thread::sleep(Duration::from_millis(1100));
    d.fetch(&[]);
    assert_eq!(d.count("SELECT first_seen FROM items LIMIT 1"), first);
}

#[test]
fn upstream_hints_only_delay_the_next_poll() {
    let srv = TestServer::start();
    let with_ttl = simple_feed("t", 1).replace("<title>Test feed</title>", "<title>Test feed</title><ttl>120</ttl>");
    srv.set("/ttl.xml", Reply::rss(with_ttl));
    srv.set("/maxage.xml", Reply::rss(simple_feed("m", 1)).with_header("Cache-Control", "public, max-age=999999"));
    srv.set("/short.xml", Reply::rss(simple_feed("s", 1)).with_header("Cache-Control", "max-age=1"));
    let d = Desk::new("hints")
        .daemon("max_interval = \"3h\"")
        .source_with("ttl", &srv.url("/ttl.xml"), "schedule = \"every 5m\"")
        .source_with("maxage", &srv.url("/maxage.xml"), "schedule = \"every 5m\"")
        .source_with("short", &srv.url("/short.xml"), "schedule = \"every 5m\"")
        .write();
    let now = chrono::Utc::now().timestamp();
    d.fetch(&[]);
    let due = |id: &str| d.source_field(id, "next_due").unwrap().parse::<i64>().unwrap() - now;
    assert!((7200..7300).contains(&due("ttl")), "ttl 120 min delays to 2 h: {}", due("ttl"));
    assert!((10800..10900).contains(&due("maxage")), "max-age capped by max_interval 3 h: {}", due("maxage"));
    // `every 5m` polls at the source's own slot, 2.5 to 7.5 minutes after an off-slot poll
    // such as this first one (exactly 5 minutes apart after that), not after one second.
    assert!((150..460).contains(&due("short")), "a short max-age never hastens the schedule: {}", due("short"));
}
