//! Republishing end to end: feeds fetched by the real binary from a loopback server into a
//! real SQLite file, selected and rendered, and served over real HTTP by `serve::run` on
//! 127.0.0.1:0. Output is parsed back with feed-rs.

#[path = "common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::io::Read;
use std::sync::atomic::Ordering;

use common::rss;
use support::{entries, get, http, Served, World, BASE, LAVROV_DAWN};

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[test]
fn every_format_lists_the_same_stories_in_coverage_order() {
    let w = World::new("formats", &[]);
    let s = Served::start(&w.desk);
    let rss_body = get(&s.url("/topics/top-news.rss"));
    let atom_body = get(&s.url("/topics/top-news.atom"));
    let json_body = get(&s.url("/topics/top-news.json"));
    let (r, a, j) = (entries(&rss_body), entries(&atom_body), entries(&json_body));
    // Two stories have at least two outlets; the one with three ranks first.
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0].1, LAVROV_DAWN, "lead from the heaviest outlet (Dawn, weight 2)");
    assert_eq!(r[0].2, "https://www.dawn.example/news/1");
    assert!(r[1].1.contains("Sao Paulo"), "{r:?}");
    assert!(r.iter().all(|e| e.0.starts_with(&format!("{BASE}stories/"))), "{r:?}");
    assert_eq!(r, a, "RSS and Atom agree");
    assert_eq!(r, j, "RSS and JSON Feed agree");

    let rss_text = String::from_utf8(rss_body).unwrap();
    assert!(rss_text.contains(&format!("<atom:link href=\"{BASE}topics/top-news.rss\" rel=\"self\"")));
    assert!(rss_text.contains("<source url=\""), "RSS <source> names the outlet");
    assert!(rss_text.contains("Also reported by"), "{rss_text}");
    for other in ["https://www.bbc.example/news/world-1", "https://reuters.example/world/lavrov"] {
        assert!(rss_text.contains(other), "link to {other} in {rss_text}");
    }
    let v: serde_json::Value = serde_json::from_slice(&json_body).unwrap();
    assert_eq!(v["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(v["feed_url"], format!("{BASE}topics/top-news.json"));
    let item = &v["items"][0];
    for key in ["id", "url", "title", "content_html", "date_published", "date_modified", "authors"] {
        assert!(!item[key].is_null(), "{key} missing from {item}");
    }
    assert_eq!(item["_newsdesk"]["outlets"].as_array().unwrap().len(), 3);

    // Keywords: Pakistan/Islamabad minus cricket.
    let p = entries(&get(&s.url("/topics/pakistan.rss")));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, r[0].0, "same story, same GUID in every topic");
    // Latest: every story once, including the unrelated items.
    let latest = get(&s.url("/topics/latest.json"));
    let l = entries(&latest);
    assert_eq!(l.len(), 5, "{l:?}");
    // The window is selected without article text; the published leads' is read back whole.
    let latest = String::from_utf8(latest).unwrap();
    assert!(latest.contains("Babar Azam scored a century at the National Stadium."), "{latest}");
    let mut ids: Vec<&str> = l.iter().map(|e| e.0.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "each story once");
}

#[test]
fn http_caching_head_gzip_errors_health_and_metrics() {
    let w = World::new("http", &[]);
    let s = Served::start(&w.desk);
    let url = s.url("/topics/top-news.rss");
    let (status, h, body) = http("GET", &url, &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "application/rss+xml; charset=utf-8");
    assert_eq!(header(&h, "vary"), "Accept-Encoding");
    assert!(header(&h, "cache-control").contains("max-age="));
    let etag = header(&h, "etag").to_string();
    let last_modified = header(&h, "last-modified").to_string();
    assert!(etag.starts_with('"') && !last_modified.is_empty(), "{h:?}");
    assert_eq!(header(&h, "content-length"), body.len().to_string());

    let before = newsdesk::metrics::METRICS.http_not_modified.load(Ordering::Relaxed);
    let (status, h2, body2) = http("GET", &url, &[("If-None-Match", &etag)]);
    assert_eq!((status, body2.len()), (304, 0));
    assert_eq!(header(&h2, "etag"), etag);
    let (status, _, _) = http("GET", &url, &[("If-Modified-Since", &last_modified)]);
    assert_eq!(status, 304);
    let (status, _, _) = http("GET", &url, &[("If-None-Match", "\"something-else\"")]);
    assert_eq!(status, 200);
    let (status, _, _) = http("GET", &url, &[("If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT")]);
    assert_eq!(status, 200);
    assert!(newsdesk::metrics::METRICS.http_not_modified.load(Ordering::Relaxed) >= before + 2);

    // HEAD: the headers of a GET, no body.
    let (status, hh, hb) = http("HEAD", &url, &[]);
    assert_eq!((status, hb.len()), (200, 0));
    assert_eq!(header(&hh, "etag"), etag);
    assert_eq!(header(&hh, "content-length"), body.len().to_string());

    // gzip: precompressed bytes that decompress to the plain document.
    let (status, hg, gz) = http("GET", &url, &[("Accept-Encoding", "gzip, br")]);
    assert_eq!(status, 200);
    assert_eq!(header(&hg, "content-encoding"), "gzip");
    assert!(gz.len() < body.len());
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut plain).unwrap();
    assert_eq!(plain, body);
    let gz_etag = header(&hg, "etag").to_string();
    assert_ne!(gz_etag, etag, "each encoding has its own tag");
    let (status, _, _) = http("GET", &url, &[("Accept-Encoding", "gzip"), ("If-None-Match", &gz_etag)]);
    assert_eq!(status, 304);

    // Unknown topic: 404 that names the topics there are.
    let (status, _, nf) = http("GET", &s.url("/topics/nope.rss"), &[]);
    let nf = String::from_utf8(nf).unwrap();
    assert_eq!(status, 404);
    assert!(nf.contains("/topics/top-news.rss") && nf.contains("/topics/pakistan.atom"), "{nf}");
    assert_eq!(http("GET", &s.url("/topics/top-news.html"), &[]).0, 404);
    assert_eq!(http("GET", &s.url("/nowhere"), &[]).0, 404);

    // Front page, sources, OPML, story pages.
    let index = String::from_utf8(get(&s.url("/"))).unwrap();
    for f in
        ["topics/top-news.rss", "topics/top-news.atom", "topics/top-news.json", "sources.opml", "topics/pakistan\""]
    {
        assert!(index.contains(f), "{f} in {index}");
    }
    let sources = String::from_utf8(get(&s.url("/sources"))).unwrap();
    assert!(sources.contains("Reuters") && sources.contains(">ok<"), "{sources}");
    let opml = String::from_utf8(get(&s.url("/sources.opml"))).unwrap();
    assert_eq!(newsdesk::opml::parse(&opml).unwrap().len(), 4);
    let top = entries(&body);
    let story_path = top[0].0.trim_start_matches(BASE.trim_end_matches('/'));
    let (status, _, page) = http("GET", &s.url(story_path), &[]);
    assert_eq!(status, 200);
    assert!(String::from_utf8(page).unwrap().contains(top[0].2.as_str()), "the story page links the lead article");

    // Health: the database answers and the scheduler ticks.
    let (status, _, hz) = http("GET", &s.url("/healthz"), &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&hz));
    let v: serde_json::Value = serde_json::from_slice(&hz).unwrap();
    assert_eq!(v["status"], "ok");
    s.state.heartbeat.store(0, Ordering::Release);
    let (status, _, hz) = http("GET", &s.url("/healthz"), &[]);
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&hz).contains("not started"));
    s.state.heartbeat.store(chrono::Utc::now().timestamp() - 600, Ordering::Release);
    assert_eq!(http("GET", &s.url("/healthz"), &[]).0, 503);

    let m = String::from_utf8(get(&s.url("/metrics"))).unwrap();
    for line in ["newsdesk_http_requests_total ", "newsdesk_sources 4", "newsdesk_items 8", "newsdesk_stories 5"] {
        assert!(m.contains(line), "{line} in {m}");
    }
    assert!(m.contains("newsdesk_polls_total{outcome=\"stored\"}"));

    // Shutdown does not wait on an idle keep-alive connection or a client that never speaks.
    let idle = std::net::TcpStream::connect(s.addr).unwrap();
    let started = std::time::Instant::now();
    drop(s);
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "shutdown took {:?}", started.elapsed());
    drop(idle);
}

#[test]
fn guids_stay_stable_as_stories_grow_and_lead_titles_change() {
    let w = World::new("stable", &[]);
    let s = Served::start(&w.desk);
    let before_rss = get(&s.url("/topics/top-news.rss"));
    let before = entries(&before_rss);
    let before_json = entries(&get(&s.url("/topics/top-news.json")));
    let (_, h, _) = http("GET", &s.url("/topics/top-news.rss"), &[]);
    let etag = header(&h, "etag").to_string();

    w.grow("Lavrov, Sharif agree on energy deal in Islamabad");
    // Another process wrote the database: the writer notices within a second, and a topic
    // is rebuilt at most every two seconds.
    std::thread::sleep(std::time::Duration::from_millis(4500));
    let after_rss = get(&s.url("/topics/top-news.rss"));
    let after = entries(&after_rss);
    assert_eq!(after.len(), before.len());
    assert_eq!(after[0].0, before[0].0, "same GUID after the story grew and its title changed");
    assert_eq!(after[1].0, before[1].0);
    assert_eq!(after[0].1, "Lavrov, Sharif agree on energy deal in Islamabad", "the lead's edit shows");
    let text = String::from_utf8(after_rss).unwrap();
    assert!(text.contains("https://aljazeera.example/news/lavrov-islamabad"), "the new outlet is listed");
    let after_json = entries(&get(&s.url("/topics/top-news.json")));
    assert_eq!(
        after_json.iter().map(|e| &e.0).collect::<Vec<_>>(),
        before_json.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    // The bytes changed, so the old validator no longer matches.
    let (status, h2, _) = http("GET", &s.url("/topics/top-news.rss"), &[("If-None-Match", &etag)]);
    assert_eq!(status, 200);
    assert_ne!(header(&h2, "etag"), etag);
    let v: serde_json::Value = serde_json::from_slice(&get(&s.url("/topics/top-news.json"))).unwrap();
    let item = &v["items"][0];
    assert!(item["date_modified"].as_str().unwrap() >= item["date_published"].as_str().unwrap());
}

#[test]
fn hostile_upstream_item_comes_out_clean_and_the_feeds_still_parse() {
    let huge = "A".repeat(1 << 20);
    let evil = rss(&[(
        Some("evil-1"),
        Some("javascript:alert(1)"),
        &format!("Evil \u{1}\u{8}\u{1b} &lt;script&gt;alert(1)&lt;/script&gt; {huge}"),
        "&lt;p onclick=\"steal()\"&gt;Hello &lt;script&gt;alert(document.cookie)&lt;/script&gt;\
         &lt;img src=\"x\" onerror=\"alert(1)\"&gt;&lt;a href=\"javascript:alert(2)\"&gt;click&lt;/a&gt;\
         &lt;iframe src=\"https://evil.example/\"&gt;&lt;/iframe&gt; ]]&gt; &amp;#0; bye&lt;/p&gt;",
    )]);
    let w = World::new("hostile", &[("evil", "/evil.xml", evil)]);
    let s = Served::start(&w.desk);
    for ext in ["rss", "atom", "json"] {
        let body = get(&s.url(&format!("/topics/latest.{ext}")));
        assert!(body.len() < 200_000, "a 1 MB title must not reach the output ({} bytes)", body.len());
        let text = String::from_utf8(body.clone()).unwrap();
        for bad in ["<script", "&lt;script", "onerror", "onclick", "javascript:", "<iframe", "&lt;iframe"] {
            assert!(!text.contains(bad), "{bad} in the {ext} output");
        }
        assert!(!text.chars().any(|c| c < ' ' && !matches!(c, '\t' | '\n' | '\r')), "control character in {ext}");
        let es = entries(&body);
        assert_eq!(es.len(), 6, "{ext}: {es:?}");
        let e = es.iter().find(|e| e.1.starts_with("Evil")).unwrap_or_else(|| panic!("{es:?}"));
        assert!(e.1.chars().count() <= 501, "title capped");
        assert!(e.2.starts_with(BASE), "no javascript: link; falls back to the story URI: {}", e.2);
    }
    // And the well-behaved stories are untouched.
    let top = entries(&get(&s.url("/topics/top-news.atom")));
    assert_eq!(top[0].1, LAVROV_DAWN);
    assert!(entries(&get(&s.url("/topics/latest.rss"))).iter().any(|e| e.1.contains("Sao Paulo")));
}

#[test]
fn commands_stories_render_export_and_opml() {
    let w = World::new("commands", &[]);
    let run = |args: &[&str]| {
        let out = w.desk.run(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let stories = String::from_utf8(run(&["stories", "--topic", "top-news"])).unwrap();
    let lines: Vec<&str> = stories.lines().collect();
    assert!(lines[1].contains(LAVROV_DAWN) && lines[1].contains(" 3 "), "{stories}");
    assert!(lines[2].contains("Dawn") && lines[2].contains("Reuters"), "{stories}");
    assert!(stories.contains("2 stories in \"top-news\""), "{stories}");
    let all = String::from_utf8(run(&["stories", "--limit", "3"])).unwrap();
    assert!(all.contains("3 stories in \"all\""), "{all}");

    for f in ["rss", "atom", "json"] {
        let body = run(&["render", "pakistan", "--format", f]);
        let es = entries(&body);
        assert_eq!(es.len(), 1, "{f}");
        assert_eq!(es[0].1, LAVROV_DAWN);
    }
    let out = w.desk.run(&["render", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("configured: top-news, pakistan, latest"));

    let dir = w.desk.dir.join("site");
    run(&["export", dir.to_str().unwrap()]);
    for t in ["top-news", "pakistan", "latest"] {
        for f in ["rss", "atom", "json"] {
            let p = dir.join(format!("topics/{t}.{f}"));
            let body = std::fs::read(&p).unwrap();
            entries(&body);
            let gz = std::fs::read(format!("{}.gz", p.display())).unwrap();
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut plain).unwrap();
            assert_eq!(plain, body);
        }
    }
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(index.contains("href=\"/topics/top-news.atom\""), "{index}");
    assert!(index.contains("href=\"/topics/pakistan\""), "{index}");
    let story = index.split("href=\"/stories/").nth(1).and_then(|s| s.split('"').next()).unwrap();
    let page = std::fs::read_to_string(dir.join(format!("stories/{story}.html"))).unwrap();
    assert!(page.contains("Full coverage"), "{page}");
    for f in ["topics/pakistan.html", "embed/top-news.html", "sources.html", newsdesk::render::html::style_path()] {
        assert!(dir.join(f).is_file() && dir.join(format!("{f}.gz")).is_file(), "{f}");
    }

    let opml = run(&["opml", "export"]);
    let opml_path = w.desk.dir.join("subs.opml");
    std::fs::write(&opml_path, &opml).unwrap();
    let feeds = newsdesk::opml::parse(std::str::from_utf8(&opml).unwrap()).unwrap();
    assert_eq!(feeds.len(), 4);
    // Importing our own export into the same config finds nothing new.
    let out = w.desk.run(&["opml", "import", opml_path.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("4 skipped"));
    // Without a config it still works (a new user's first step) and prints valid TOML.
    let out = common::newsdesk(&w.desk.dir.join("missing.toml"), &["opml", "import", opml_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let toml_text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(toml_text.matches("[[source]]").count(), 4, "{toml_text}");
    newsdesk::config::Config::parse(std::path::Path::new("x.toml"), &toml_text).unwrap();
}
