//! Webhooks against a real `newsdesk run`: sources on a loopback farm, a receiver on
//! 127.0.0.1:0 recording every request (headers and body), faults scripted per request.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{rss, Daemon, Desk, Reply, TestServer};

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Got {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    at: Instant,
}

impl Got {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How the receiver answers its n-th request (0-based).
#[derive(Clone)]
enum Answer {
    Status(u16, Vec<(&'static str, &'static str)>),
    Hang,
}

type Script = Arc<dyn Fn(usize) -> Answer + Send + Sync>;

/// A small HTTP server recording every request.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    fn start(script: Script) -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let g = got.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                let (g, script) = (g.clone(), script.clone());
                std::thread::spawn(move || serve_one(s, g, script));
            }
        });
        Receiver { addr, got }
    }

    fn ok() -> Receiver {
        Receiver::start(Arc::new(|_| Answer::Status(200, vec![])))
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn got(&self, path: &str) -> Vec<Got> {
        self.got.lock().unwrap().iter().filter(|g| g.path == path).cloned().collect()
    }

    /// Waits until `path` got `n` requests (or `within` passed); returns them.
    fn wait(&self, path: &str, n: usize, within: Duration) -> Vec<Got> {
        let end = Instant::now() + within;
        while Instant::now() < end && self.got(path).len() < n {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.got(path)
    }
}

fn serve_one(mut s: TcpStream, got: Arc<Mutex<Vec<Got>>>, script: Script) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("").to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf[head_end..].to_vec();
    let n = {
        let mut g = got.lock().unwrap();
        g.push(Got { path, headers, body, at: Instant::now() });
        g.len() - 1
    };
    match script(n) {
        Answer::Status(code, extra) => {
            let mut r = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n");
            for (k, v) in extra {
                r.push_str(&format!("{k}: {v}\r\n"));
            }
            r.push_str("\r\n");
            let _ = s.write_all(r.as_bytes());
        }
        Answer::Hang => std::thread::sleep(Duration::from_secs(20)),
    }
}

fn port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A desk whose sources poll every second, one topic `all`, and `extra` config after them.
fn desk(name: &str, port: u16, sources: &[(&str, String)], extra: &str) -> Desk {
    let mut d = Desk::new(name).daemon(&format!("listen = \"127.0.0.1:{port}\""));
    for (id, url) in sources {
        d = d.source_with(id, url, "schedule = \"every 1s\"");
    }
    let d = d.write();
    let mut f = std::fs::OpenOptions::new().append(true).open(&d.config).unwrap();
    writeln!(f, "[[topic]]\nid = \"all\"\ntitle = \"All news\"\n\n{extra}").unwrap();
    d
}

/// Distinct, unrelated headlines (each its own story) from `host`.
fn items(host: &str, titles: &[&str]) -> String {
    let rows: Vec<(String, String, String)> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("{host}-{i}"), format!("https://{host}/{i}"), t.to_string()))
        .collect();
    let refs: Vec<(Option<&str>, Option<&str>, &str, &str)> =
        rows.iter().map(|(g, l, t)| (Some(g.as_str()), Some(l.as_str()), t.as_str(), "<p>Body.</p>")).collect();
    rss(&refs)
}

const HEADLINES: &[&str] = &[
    "Typhoon Haikui makes landfall in Fujian province",
    "Oscar ratings climb for Hollywood awards show",
    "Central bank raises interest rates by half a point",
    "Volcano erupts near Grindavik after weeks of tremors",
    "Chess prodigy wins national championship at twelve",
    "Drought forces water rationing across Catalonia",
];

fn titles(g: &Got) -> Vec<String> {
    let mut t: Vec<String> =
        g.json()["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap().to_string()).collect();
    t.sort();
    t
}

fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::sign(&key, body).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A GET on the daemon: its status line and how long it took.
fn timed_get(port: u16, path: &str) -> (String, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    (text.lines().next().unwrap_or("").to_string(), started.elapsed())
}

#[test]
fn batches_are_signed_sent_once_across_restarts_and_skip_the_baseline() {
    let srv = TestServer::start();
    srv.set("/a.xml", Reply::rss(items("a.example", &HEADLINES[..2])));
    let rx = Receiver::ok();
    let port = port();
    let hook = format!(
        "[push]\nallow_networks = [\"127.0.0.0/8\"]\n\n[[webhook]]\nid = \"desk\"\nurl = \"{}\"\nbatch = \"2s\"\nsecret = \"s3cret\"\n",
        rx.url("/hook")
    );
    let d = desk("webhook-batch", port, &[("a", srv.url("/a.xml"))], &hook);
    // Two stories are already stored when the hook first sees the topic: its baseline.
    d.fetch(&["a"]);
    let daemon = Daemon::start(&d, &[]);
    assert!(daemon.wait_log("first sight of the topic", Duration::from_secs(10)), "{}", daemon.log());
    srv.set("/a.xml", Reply::rss(items("a.example", &HEADLINES[..4])));
    let got = rx.wait("/hook", 1, Duration::from_secs(10));
    // The window is 2 s: anything else of it would have come with it; wait one more window.
    std::thread::sleep(Duration::from_secs(3));
    let got_after = rx.got("/hook");
    assert_eq!(got_after.len(), 1, "one POST for the window: {got_after:?}\n{}", daemon.log());
    let post = &got[0];
    assert_eq!(titles(post), vec![HEADLINES[2].to_string(), HEADLINES[3].to_string()], "the baseline is not sent");
    let v = post.json();
    assert_eq!((v["hook"].as_str(), v["event"].as_str()), (Some("desk"), Some("new_story")));
    assert_eq!(v["topic"]["id"], "all");
    assert_eq!(v["topic"]["title"], "All news");
    assert!(v["topic"]["feed_url"].as_str().unwrap().ends_with("/topics/all.json"), "{v}");
    let item = &v["items"][0];
    assert!(item["id"].as_str().unwrap().contains("/stories/"), "{item}");
    assert!(item["url"].as_str().unwrap().starts_with("https://a.example/"), "{item}");
    assert_eq!(item["_newsdesk"]["outlets"].as_array().unwrap().len(), 1, "{item}");
    // The items are the topic's own JSON Feed items.
    let feed = common_get_json(port, "/topics/all.json");
    let same = feed["items"].as_array().unwrap().iter().find(|i| i["id"] == item["id"]).unwrap();
    assert_eq!(same, item, "a webhook item is the JSON Feed item");
    assert_eq!(post.headers.get("content-type").map(String::as_str), Some("application/json"));
    assert_eq!(
        post.headers.get("x-newsdesk-signature").cloned(),
        Some(format!("sha256={}", hmac_hex(b"s3cret", &post.body))),
        "the signature is the HMAC-SHA256 of the body"
    );
    assert!(post.headers.get("x-newsdesk-delivery").is_some_and(|v| v.len() > 8));
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("s3cret"), "the secret is never logged");
    assert_eq!(
        d.count("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'delivered'"),
        2,
        "both stories are recorded delivered"
    );

    // Restarted: nothing again, while new stories still come.
    let daemon = Daemon::start(&d, &[]);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(rx.got("/hook").len(), 1, "nothing again after a restart\n{}", daemon.log());
    srv.set("/a.xml", Reply::rss(items("a.example", &HEADLINES[..5])));
    let got = rx.wait("/hook", 2, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    let (_, _, log) = daemon.stop();
    assert_eq!(rx.got("/hook").len(), 2, "{log}");
    assert_eq!(titles(&got[1]), vec![HEADLINES[4].to_string()], "only the new story: {log}");
    assert_ne!(got[0].headers.get("x-newsdesk-delivery"), got[1].headers.get("x-newsdesk-delivery"));
}

fn common_get_json(port: u16, path: &str) -> serde_json::Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let i = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    serde_json::from_slice(&out[i..]).unwrap()
}

const LAVROV: [(&str, &str); 3] = [
    ("xinhua.example", "Lavrov arrives in Islamabad for talks with Pakistani leaders"),
    ("dawn.example", "Lavrov in Islamabad for talks with Pakistani leadership"),
    ("asianlite.example", "Russia's Lavrov holds talks in Islamabad with Pakistani leaders"),
];

#[test]
fn min_outlets_fires_when_the_third_outlet_reports_the_story() {
    let srv = TestServer::start();
    for (host, _) in LAVROV {
        srv.set(&format!("/{host}.xml"), Reply::rss(rss(&[])));
    }
    let rx = Receiver::ok();
    let port = port();
    let hook = format!(
        "[push]\nallow_networks = [\"127.0.0.0/8\"]\n\n[[webhook]]\nid = \"big\"\nurl = \"{}\"\non = [\"min_outlets:3\"]\n",
        rx.url("/big")
    );
    let sources: Vec<(&str, String)> =
        LAVROV.iter().map(|(h, _)| (h.split('.').next().unwrap(), srv.url(&format!("/{h}.xml")))).collect();
    let d = desk("webhook-outlets", port, &sources, &hook);
    let daemon = Daemon::start(&d, &[]);
    assert!(daemon.wait_log("first sight of the topic", Duration::from_secs(10)), "{}", daemon.log());
    for (n, (host, title)) in LAVROV.iter().enumerate() {
        srv.set(
            &format!("/{host}.xml"),
            Reply::rss(rss(&[(
                Some("l1"),
                Some(&format!("https://{host}/lavrov")),
                title,
                "Sergei Lavrov in Islamabad.",
            )])),
        );
        if n < 2 {
            std::thread::sleep(Duration::from_secs(4));
            assert!(rx.got("/big").is_empty(), "no POST at {} outlets\n{}", n + 1, daemon.log());
        }
    }
    let got = rx.wait("/big", 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    let (_, _, log) = daemon.stop();
    assert_eq!(rx.got("/big").len(), 1, "one POST: {log}");
    let v = got[0].json();
    assert_eq!(v["event"], "min_outlets", "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["items"][0]["_newsdesk"]["outlets"].as_array().unwrap().len(), 3, "{v}");
}

#[test]
fn ntfy_and_slack_bodies_and_headers() {
    let srv = TestServer::start();
    srv.set("/a.xml", Reply::rss(rss(&[])));
    let rx = Receiver::ok();
    let port = port();
    let hooks = format!(
        "[push]\nallow_networks = [\"127.0.0.0/8\"]\n\n\
         [[webhook]]\nid = \"phone\"\nurl = \"{}\"\nformat = \"ntfy\"\n\n\
         [[webhook]]\nid = \"chat\"\nurl = \"{}\"\nformat = \"slack\"\ntopics = [\"all\"]\n",
        rx.url("/ntfy/news"),
        rx.url("/slack")
    );
    let d = desk("webhook-formats", port, &[("a", srv.url("/a.xml"))], &hooks);
    let daemon = Daemon::start(&d, &[]);
    assert!(daemon.wait_log("hook=chat topic=all", Duration::from_secs(10)), "{}", daemon.log());
    assert!(daemon.wait_log("hook=phone topic=all", Duration::from_secs(10)), "{}", daemon.log());
    srv.set(
        "/a.xml",
        Reply::rss(rss(&[(
            Some("z"),
            Some("https://a.example/zurich"),
            "Zürich floods: Limmat rises &amp; bursts its banks",
            "",
        )])),
    );
    let ntfy = rx.wait("/ntfy/news", 1, Duration::from_secs(10));
    let slack = rx.wait("/slack", 1, Duration::from_secs(10));
    let (_, _, log) = daemon.stop();
    assert_eq!((ntfy.len(), slack.len()), (1, 1), "{log}");

    let n = &ntfy[0];
    assert!(n.headers["content-type"].starts_with("text/plain"), "{:?}", n.headers);
    assert_eq!(n.headers["click"], "https://a.example/zurich");
    assert!(n.headers["tags"].split(',').any(|t| t == "newspaper"), "{:?}", n.headers);
    // Not ASCII: RFC 2047, which ntfy decodes.
    assert!(n.headers["title"].starts_with("=?UTF-8?B?"), "{:?}", n.headers);
    assert_eq!(n.text(), "Zürich floods: Limmat rises & bursts its banks\nTest feed\nhttps://a.example/zurich\n");

    let s = &slack[0];
    assert_eq!(s.headers["content-type"], "application/json");
    let text = s.json()["text"].as_str().unwrap().to_string();
    assert_eq!(
        text,
        "*All news*\n<https://a.example/zurich|Zürich floods: Limmat rises &amp; bursts its banks> (Test feed)"
    );
    assert!(!s.headers.contains_key("x-newsdesk-signature"), "no secret, no signature");
}

/// A hook whose receiver misbehaves as `target` says: the daemon goes on polling and serving,
/// retries with backoff (1 s, then 3 s) and gives up after 3 attempts with the reason.
fn fault(name: &str, url: &str, extra_push: &str) -> (Daemon, Desk, TestServer, u16) {
    let srv = TestServer::start();
    srv.set("/a.xml", Reply::rss(rss(&[])));
    let port = port();
    let hook = format!(
        "[push]\nallow_networks = [\"127.0.0.0/8\"]\nretry = \"1s\"\nmax_attempts = 3\n{extra_push}\n\n[[webhook]]\nid = \"flaky\"\nurl = \"{url}\"\n"
    );
    let d = desk(name, port, &[("a", srv.url("/a.xml"))], &hook);
    let daemon = Daemon::start(&d, &[]);
    assert!(daemon.wait_log("first sight of the topic", Duration::from_secs(10)), "{}", daemon.log());
    srv.set("/a.xml", Reply::rss(items("a.example", &HEADLINES[..1])));
    (daemon, d, srv, port)
}

/// While deliveries fail: polls go on and a feed GET answers quickly; then the give-up.
fn goes_on_then_gives_up(daemon: &Daemon, srv: &TestServer, port: u16, reason: &str) -> String {
    let polls = srv.hits("/a.xml");
    let end = Instant::now() + Duration::from_secs(4);
    while Instant::now() < end {
        let (status, took) = timed_get(port, "/topics/all.json");
        assert!(status.contains("200"), "{status}");
        assert!(took < Duration::from_secs(1), "a feed GET took {took:?} while deliveries fail");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(srv.hits("/a.xml") >= polls + 2, "polls go on: {} then {}", polls, srv.hits("/a.xml"));
    assert!(daemon.wait_log("webhook delivery given up", Duration::from_secs(20)), "{}", daemon.log());
    let log = daemon.log();
    let line = log.lines().find(|l| l.contains("webhook delivery given up")).unwrap().to_string();
    assert!(line.contains(reason), "{line}");
    assert!(log.contains("retrying in 1s") || !reason.contains("after 3"), "{log}");
    line
}

#[test]
fn a_receiver_that_is_down_is_retried_then_given_up() {
    let closed = format!("http://127.0.0.1:{}/hook", port());
    let (daemon, d, srv, port) = fault("webhook-down", &closed, "");
    let line = goes_on_then_gives_up(&daemon, &srv, port, "after 3 attempts");
    assert!(line.contains("failed"), "{line}");
    let log = daemon.log();
    assert!(log.contains("retrying in 1s") && log.contains("retrying in 3s"), "backoff 1 s, then 3 s:\n{log}");
    daemon.stop();
    assert_eq!(d.count("SELECT COUNT(*) FROM webhook_batches WHERE status = 'failed' AND attempts = 3"), 1);
    assert_eq!(d.count("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'failed'"), 1, "state kept as failed");
}

#[test]
fn a_receiver_that_never_answers_times_out_and_is_given_up() {
    let rx = Receiver::start(Arc::new(|_| Answer::Hang));
    let (daemon, d, srv, port) = fault("webhook-hang", &rx.url("/hook"), "timeout = \"1s\"");
    goes_on_then_gives_up(&daemon, &srv, port, "timed out");
    daemon.stop();
    assert_eq!(rx.got("/hook").len(), 3, "three attempts");
    assert_eq!(d.count("SELECT COUNT(*) FROM webhook_batches WHERE status = 'failed'"), 1);
}

#[test]
fn a_receiver_answering_500_is_retried_with_backoff_then_given_up() {
    let rx = Receiver::start(Arc::new(|_| Answer::Status(500, vec![])));
    let (daemon, _d, srv, port) = fault("webhook-500", &rx.url("/hook"), "");
    goes_on_then_gives_up(&daemon, &srv, port, "answered 500");
    daemon.stop();
    let got = rx.got("/hook");
    assert_eq!(got.len(), 3, "three attempts");
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(900) && gaps[1] >= Duration::from_millis(2900), "{gaps:?}");
    let ids: Vec<&String> = got.iter().map(|g| &g.headers["x-newsdesk-delivery"]).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "a retry is the same delivery: {ids:?}");
    assert!(got.iter().all(|g| g.body == got[0].body));
}

#[test]
fn a_redirect_to_a_private_address_is_not_followed_nor_retried() {
    let rx = Receiver::start(Arc::new(|_| Answer::Status(302, vec![("Location", "http://10.0.0.1/steal")])));
    let (daemon, _d, srv, port) = fault("webhook-redirect", &rx.url("/hook"), "");
    let line = goes_on_then_gives_up(&daemon, &srv, port, "not followed");
    assert!(line.contains("not retried") && line.contains("10.0.0.1"), "{line}");
    daemon.stop();
    assert_eq!(rx.got("/hook").len(), 1, "a redirect is not retried");
}

#[test]
fn a_500_then_a_200_is_delivered_once() {
    let rx = Receiver::start(Arc::new(|n| Answer::Status(if n == 0 { 500 } else { 200 }, vec![])));
    let (daemon, d, _srv, _port) = fault("webhook-500-200", &rx.url("/hook"), "");
    assert!(daemon.wait_log("webhook delivered", Duration::from_secs(15)), "{}", daemon.log());
    std::thread::sleep(Duration::from_secs(4));
    let (_, _, log) = daemon.stop();
    assert_eq!(rx.got("/hook").len(), 2, "{log}");
    assert!(!log.contains("given up"), "{log}");
    assert_eq!(d.count("SELECT COUNT(*) FROM webhook_batches WHERE status = 'delivered' AND attempts = 2"), 1);
    assert_eq!(d.count("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'delivered'"), 1);
}

#[test]
fn a_digest_hook_gets_one_post_per_stored_period_and_nothing_again_after_a_restart() {
    let srv = TestServer::start();
    let now = chrono::Utc::now().timestamp();
    // One story on each of the three days before today: three ended `daily 00:00` periods.
    let mut feed = String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Daily</title>");
    for (k, title) in HEADLINES.iter().enumerate().take(4).skip(1) {
        let date = chrono::DateTime::from_timestamp(now - k as i64 * 86400, 0).unwrap().to_rfc2822();
        feed.push_str(&format!(
            "<item><guid>d{k}</guid><link>https://d.example/{k}</link><title>{title}</title><pubDate>{date}</pubDate></item>"
        ));
    }
    feed.push_str("</channel></rss>");
    srv.set("/d.xml", Reply::rss(feed));
    let rx = Receiver::ok();
    let port = port();
    let extra = format!(
        "digest = \"daily 00:00\"\n\n[push]\nallow_networks = [\"127.0.0.0/8\"]\n\n\
         [[webhook]]\nid = \"mail\"\nurl = \"{}\"\non = [\"digest\"]\nsecret = \"k\"\n",
        rx.url("/digest")
    );
    let d = desk("webhook-digest", port, &[("d", srv.url("/d.xml"))], &extra);
    d.fetch(&["d"]);
    let daemon = Daemon::start(&d, &[]);
    let got = rx.wait("/digest", 3, Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(2));
    let (_, _, log) = daemon.stop();
    assert_eq!(rx.got("/digest").len(), 3, "one POST per stored period: {log}");
    let mut ids: Vec<String> = got
        .iter()
        .map(|g| {
            let v = g.json();
            assert_eq!(
                (v["hook"].as_str(), v["event"].as_str(), v["topic"]["id"].as_str()),
                (Some("mail"), Some("digest"), Some("all"))
            );
            assert!(v["topic"]["feed_url"].as_str().unwrap().ends_with("/topics/all/digest.json"), "{v}");
            let item = &v["items"][0];
            assert!(item["content_html"].as_str().unwrap().contains("style="), "{item}");
            assert!(!item["content_text"].as_str().unwrap().is_empty(), "{item}");
            assert_eq!(
                g.headers.get("x-newsdesk-signature").cloned(),
                Some(format!("sha256={}", hmac_hex(b"k", &g.body)))
            );
            item["id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three periods, three GUIDs: {ids:?}");
    assert!(ids.iter().all(|i| i.contains("/topics/all/digest/")), "{ids:?}");
    assert_eq!(d.count("SELECT COUNT(*) FROM digests"), 3);
    // A restart announces nothing again: the digests are stored, and so are their deliveries.
    let daemon = Daemon::start(&d, &[]);
    std::thread::sleep(Duration::from_secs(4));
    let (_, _, log) = daemon.stop();
    assert_eq!(rx.got("/digest").len(), 3, "nothing again after a restart: {log}");
}
