//! Three `newsdesk run` on one PostgreSQL database (a throwaway cluster, see tests/postgres.rs)
//! against one loopback farm: every item stored once, every source polled once per period,
//! `per_host` held across the instances, the same topic bytes and ETag from all three, and an
//! instance SIGKILLed mid-poll without loss.

mod common;

use std::time::{Duration, Instant};

use common::{simple_feed, Daemon, Desk, Pg, Reply, TestServer};

const FEEDS: usize = 12;
/// Each response takes this long: polls overlap, so politeness is put to the test.
const SLOW: Duration = Duration::from_millis(300);

/// GET over plain HTTP/1.0: status, ETag and body.
fn get(url: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let Ok(mut sock) = std::net::TcpStream::connect(host) else { return (0, String::new(), Vec::new()) };
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(sock, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = sock.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(0);
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let etag = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().starts_with("etag:").then(|| l[5..].trim().to_string()))
        .unwrap_or_default();
    (status, etag, raw[split..].to_vec())
}

/// Most requests in flight at once, from arrival times and the fixed response time.
fn max_overlap(starts: &[Instant]) -> usize {
    let mut best = 0;
    for a in starts {
        let n = starts.iter().filter(|b| **b >= *a && **b < *a + SLOW).count();
        best = best.max(n);
    }
    best
}

#[test]
fn three_instances_poll_each_source_once_keep_politeness_serve_the_same_bytes_and_survive_a_kill() {
    let Some(pg) = Pg::start("cluster") else { return };
    pg.createdb("desk");
    let farm = TestServer::start();
    for i in 0..FEEDS {
        farm.set(
            &format!("/f{i}.xml"),
            Reply::Delayed(SLOW, Box::new(Reply::rss(simple_feed(&format!("Outlet {i} story"), 5)))),
        );
    }
    let url = pg.password_url("desk");
    let mut desk = Desk::new("cluster-desk").daemon(
        "schedule = \"every 10s\"\nper_host = 2\nconcurrency = 16\ntimeout = \"4s\"\nbase_url = \"http://newsdesk.test/\"",
    );
    for i in 0..FEEDS {
        desk = desk.source(&format!("f{i}"), &farm.url(&format!("/f{i}.xml")));
    }
    let desk = desk.write();
    let base = std::fs::read_to_string(&desk.config).unwrap();
    let base = common::with_database(&base, &url) + "\n[[topic]]\nid = \"all\"\ntitle = \"All\"\n";
    let mut ports = Vec::new();
    let mut daemons = Vec::new();
    for n in 0..3 {
        let port = common::free_port();
        let cfg = desk.dir.join(format!("node{n}.toml"));
        std::fs::write(&cfg, base.replace("[daemon]", &format!("[daemon]\nlisten = \"127.0.0.1:{port}\""))).unwrap();
        daemons.push(Daemon::start_with(&cfg, &[]));
        ports.push(port);
    }
    // Two full periods.
    std::thread::sleep(Duration::from_secs(24));
    let count = |sql: &str| pg.psql("desk", sql);
    assert_eq!(count("SELECT COUNT(*) FROM items"), (FEEDS * 5).to_string(), "every item once");
    assert_eq!(count("SELECT COUNT(*) FROM appearances"), (FEEDS * 5).to_string());
    for i in 0..FEEDS {
        // The first poll is at start; the next at the source's slot of the period (sooner
        // than a period), then one a period: no instance polls what another just did.
        let seen = farm.seen(&format!("/f{i}.xml"));
        assert!((2..=4).contains(&seen.len()), "f{i} polled {} times in 24 s of `every 10s`", seen.len());
        for w in seen.windows(2).skip(1) {
            let gap = w[1].at - w[0].at;
            assert!(gap > Duration::from_secs(8), "f{i} polled twice within {gap:?}: once per period");
        }
        assert!(seen[1].at - seen[0].at > Duration::from_millis(500), "f{i} polled by two instances at start");
    }
    let mut all: Vec<Instant> = (0..FEEDS).flat_map(|i| farm.seen(&format!("/f{i}.xml"))).map(|s| s.at).collect();
    all.sort();
    assert!(max_overlap(&all) <= 2, "per_host = 2 across three instances, saw {} at once", max_overlap(&all));

    // The same bytes and ETag from every instance (each rebuilds on the others' commits).
    let topic = |p: u16| get(&format!("http://127.0.0.1:{p}/topics/all.rss"));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got: Vec<_> = ports.iter().map(|&p| topic(p)).collect();
        assert!(got.iter().all(|g| g.0 == 200), "{:?}", got.iter().map(|g| g.0).collect::<Vec<_>>());
        if got.iter().all(|g| g.1 == got[0].1 && g.2 == got[0].2) {
            let text = String::from_utf8_lossy(&got[0].2).to_string();
            // A topic's default limit is 50 stories.
            assert_eq!(text.matches("<item>").count(), 50, "the newest 50 of {} stories", FEEDS * 5);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "instances serve different bytes: {:?}",
            got.iter().map(|g| &g.1).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (status, _, body) = get(&format!("http://127.0.0.1:{}/healthz", ports[0]));
    let body = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"role\":\"member\""), "{body}");
    let (_, _, metrics) = get(&format!("http://127.0.0.1:{}/metrics", ports[1]));
    assert!(String::from_utf8_lossy(&metrics).contains("newsdesk_instance_info{instance="));

    // A slow feed with new items, and an instance killed while it polls: whichever instance
    // held the lease, the feed is stored by another once the lease (10 s) ends.
    farm.set("/f0.xml", Reply::Delayed(Duration::from_secs(3), Box::new(Reply::rss(simple_feed("Outlet 0 story", 8)))));
    let before = farm.hits("/f0.xml");
    let deadline = Instant::now() + Duration::from_secs(15);
    while farm.hits("/f0.xml") == before {
        assert!(Instant::now() < deadline, "f0 not polled again");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The poller is one of the three: kill the one holding the lease.
    let owner = count("SELECT owner FROM source_leases WHERE source_id = 'f0'");
    let pid: u32 =
        owner.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("lease owner {owner:?}"));
    let victim = daemons.iter().position(|d| d.child.id() == pid).expect("the lease names one of ours");
    let mut killed = daemons.remove(victim);
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count("SELECT COUNT(*) FROM items") != (FEEDS * 5 + 3).to_string() {
        assert!(
            Instant::now() < deadline,
            "the killed instance's source was not taken over: {} items",
            count("SELECT COUNT(*) FROM items")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(count("SELECT COUNT(*) FROM appearances"), (FEEDS * 5 + 3).to_string(), "nothing twice");
    assert_eq!(count("SELECT COUNT(DISTINCT canonical_url) FROM items"), (FEEDS * 5 + 3).to_string());
}

#[test]
fn a_database_outage_pauses_polls_answers_503_loses_nothing_and_resumes() {
    let Some(pg) = Pg::start("outage") else { return };
    pg.createdb("desk");
    let farm = TestServer::start();
    farm.set("/a.xml", Reply::rss(simple_feed("Outage story", 5)));
    let url = pg.password_url("desk");
    let port = common::free_port();
    let desk = Desk::new("outage-desk")
        .daemon(&format!("schedule = \"every 2s\"\ntimeout = \"2s\"\nlisten = \"127.0.0.1:{port}\""))
        .source("a", &farm.url("/a.xml"))
        .write();
    let cfg = std::fs::read_to_string(&desk.config).unwrap();
    let cfg = common::with_database(&cfg, &url);
    std::fs::write(&desk.config, cfg).unwrap();
    let mut daemon = Daemon::start(&desk, &[]);
    let health = || get(&format!("http://127.0.0.1:{port}/healthz")).0;
    let wait = |what: &str, secs: u64, f: &dyn Fn() -> bool| {
        let end = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < end, "{what} within {secs} s");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait("the first poll stored", 15, &|| pg.try_psql("desk", "SELECT COUNT(*) FROM items").as_deref() == Ok("5"));
    wait("healthy", 10, &|| health() == 200);

    pg.stop();
    wait("/healthz 503 while the database is down", 10, &|| health() == 503);
    farm.set("/a.xml", Reply::rss(simple_feed("Outage story", 8)));
    std::thread::sleep(Duration::from_secs(4));
    assert!(daemon.child.try_wait().unwrap().is_none(), "the daemon keeps running through the outage");

    pg.restart();
    wait("healthy again", 20, &|| health() == 200);
    wait("the new items stored after the outage", 20, &|| {
        pg.try_psql("desk", "SELECT COUNT(*) FROM items").as_deref() == Ok("8")
    });
    assert_eq!(pg.psql("desk", "SELECT COUNT(*) FROM appearances"), "8", "nothing lost or twice");
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");
    let _ = daemon.child.kill();
}

#[test]
fn items_and_merges_of_another_writer_are_in_the_running_engine_without_a_rebuild() {
    // A running instance's story engine learns the items another writer stored (here a
    // `newsdesk fetch` on the same database) by reading only those, and clusters the next
    // item with them.
    let Some(pg) = Pg::start("cluster-catchup") else { return };
    pg.createdb("desk");
    let srv = TestServer::start();
    let one = |guid: &str, link: &str, title: &str, desc: &str| {
        Reply::rss(common::rss(&[(Some(guid), Some(link), title, desc)]))
    };
    srv.set(
        "/xinhua.xml",
        one(
            "x2",
            "https://xinhua.example/2",
            "Typhoon Haikui makes landfall in Fujian province",
            "Typhoon Haikui made landfall in Fujian.",
        ),
    );
    srv.set("/dawn.xml", Reply::rss(common::rss(&[])));
    srv.set("/asianlite.xml", Reply::rss(common::rss(&[])));
    let port = common::free_port();
    let desk = Desk::new("cluster-catchup-desk")
        .daemon(&format!("schedule = \"every 2s\"\nlisten = \"127.0.0.1:{port}\""))
        .source("xinhua", &srv.url("/xinhua.xml"))
        // Polled by the daemon only at start: later only by the other writer.
        .source_with("dawn", &srv.url("/dawn.xml"), "schedule = \"every 1h\"")
        .source("asianlite", &srv.url("/asianlite.xml"))
        .write();
    let config = common::with_database(&std::fs::read_to_string(&desk.config).unwrap(), &pg.password_url("desk"));
    std::fs::write(&desk.config, &config).unwrap();
    let daemon = Daemon::start_with(&desk.config, &[("RUST_LOG", "newsdesk=debug")]);
    let count = |sql: &str| pg.try_psql("desk", sql).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while count("SELECT COUNT(*) FROM items") != "1" || farm_hits(&srv, &["/dawn.xml", "/asianlite.xml"]) == 0 {
        assert!(Instant::now() < deadline, "the daemon did not poll: {}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Another writer stores the first report of a new story, after unrelated ones (so an
    // engine that missed them would also reuse their story ids).
    srv.set(
        "/dawn.xml",
        Reply::rss(common::rss(&[
            (
                Some("d2"),
                Some("https://dawn.example/2"),
                "Wildfire forces evacuations near Athens",
                "Firefighters battle a wildfire.",
            ),
            (
                Some("d3"),
                Some("https://dawn.example/3"),
                "Central bank holds interest rates steady",
                "The bank kept rates unchanged.",
            ),
            (
                Some("d1"),
                Some("https://dawn.example/1"),
                "Lavrov arrives in Islamabad for talks with Pakistani leaders",
                "Russian Foreign Minister Sergei Lavrov arrived in Islamabad.",
            ),
        ])),
    );
    let out = common::newsdesk(&desk.config, &["fetch", "dawn"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The daemon stores the second: it must join the story the daemon never stored itself.
    srv.set(
        "/asianlite.xml",
        one(
            "a1",
            "https://asianlite.example/1",
            "Lavrov in Islamabad for talks with Pakistani leadership",
            "Sergei Lavrov reached Islamabad on Tuesday.",
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while count("SELECT COUNT(*) FROM items") != "5" {
        assert!(
            Instant::now() < deadline,
            "asianlite not stored: {} {}",
            count("SELECT string_agg(link, ' ') FROM items"),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let story = |link: &str| {
        count(&format!(
            "SELECT COALESCE(s.merged_into, i.story_id) FROM items i JOIN stories s ON s.id = i.story_id WHERE i.link = '{link}'"
        ))
    };
    assert_eq!(story("https://asianlite.example/1"), story("https://dawn.example/1"), "one story across writers");
    assert_ne!(story("https://dawn.example/1"), story("https://xinhua.example/2"));
    assert_eq!(count("SELECT COUNT(*) FROM stories WHERE merged_into IS NULL"), "4", "x2, d1 + a1, d2, d3");
    let log = daemon.log();
    assert!(log.contains("story engine caught up with 3 items and 0 merges of other writers"), "{log}");

    // A merge by the other writer is made in the running engine too, without a rebuild: the
    // daemon stores two stories (a report and its follow-up, one second apart)...
    let before = daemon.log().len();
    srv.set(
        "/xinhua.xml",
        dated(&[
            ("m1", "https://patch.example/mta-worker", "MTA Worker Killed by Hudson Line Train", 1800),
            (
                "m2",
                "https://pix11.example/metro-north-death",
                "Death of Metro-North worker on tracks renews safety concerns",
                1799,
            ),
            ("m3", "https://nj.example/metro-north-worker", "Metro-North worker killed by train", 1798),
        ]),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while count("SELECT COUNT(*) FROM items") != "8" {
        assert!(Instant::now() < deadline, "the three reports not stored: {}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let raw = |link: &str| count(&format!("SELECT story_id FROM items WHERE link = '{link}'"));
    let (first, second) = (raw("https://patch.example/mta-worker"), raw("https://pix11.example/metro-north-death"));
    assert_ne!(first, second, "two stories before the bridge");
    assert_eq!(raw("https://nj.example/metro-north-worker"), first);
    // ...the other writer stores the report that bridges them, and merges them...
    srv.set(
        "/dawn.xml",
        dated(&[(
            "m4",
            "https://dailyvoice.example/yonkers-worker",
            "Metro-North Worker From Yonkers Killed After Being Struck By Train",
            1797,
        )]),
    );
    let out = common::newsdesk(&desk.config, &["fetch", "dawn"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(raw("https://pix11.example/metro-north-death"), first, "the bridge merged the two stories");
    let merge = || count(&format!("SELECT merged_into || ' in turn ' || merged_turn FROM stories WHERE id = {second}"));
    let merged = merge();
    assert!(merged.starts_with(&format!("{first} in turn ")), "{merged}");
    // ...and a copy of the absorbed story's report, stored by the daemon, goes to the survivor
    // (an engine that missed the merge still holds the absorbed story, and merges it again).
    srv.set(
        "/asianlite.xml",
        dated(&[(
            "m5",
            "https://syndicated.example/metro-north-death",
            "Death of Metro-North worker on tracks renews safety concerns",
            1796,
        )]),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while count("SELECT COUNT(*) FROM items") != "10" {
        assert!(Instant::now() < deadline, "the copy not stored: {}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(raw("https://syndicated.example/metro-north-death"), first);
    assert_eq!(merge(), merged, "the daemon did not merge the two again: its engine had");
    let log = daemon.log();
    let phase = log.get(before..).unwrap_or_default();
    assert!(phase.contains("story engine caught up with 1 item and 1 merge of other writers"), "{log}");
    assert!(!phase.contains("the story engine is rebuilt"), "{log}");
    let (code, _, _) = daemon.stop();
    assert_eq!(code, Some(0));
}

/// An RSS feed of `(guid, link, title, seconds ago)` items, each dated on its own.
fn dated(items: &[(&str, &str, &str, i64)]) -> Reply {
    let mut s = String::from("<?xml version=\"1.0\"?>\n<rss version=\"2.0\"><channel><title>Dated</title>\n");
    for (guid, link, title, ago) in items {
        let date = (chrono::Utc::now() - chrono::Duration::seconds(*ago)).to_rfc2822();
        s.push_str(&format!(
            "<item><guid isPermaLink=\"false\">{guid}</guid><link>{link}</link><title>{title}</title><pubDate>{date}</pubDate></item>\n"
        ));
    }
    s.push_str("</channel></rss>\n");
    Reply::rss(s)
}

fn farm_hits(srv: &TestServer, paths: &[&str]) -> usize {
    paths.iter().map(|p| srv.hits(p)).min().unwrap_or(0)
}
