//! WebSub against a real `newsdesk run`: a loopback farm serves the source feed, a small
//! recording server in the test plays the subscriber or the external hub, and the store is
//! read from the real SQLite file.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{rss, Daemon, Desk, Reply, TestServer};

/// One request the recording server got.
#[derive(Clone, Debug)]
struct Got {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Got {
    fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
    }
}

/// How the recording server answers.
#[derive(Clone, Copy)]
enum Answer {
    /// GETs get their `hub.challenge` back, POSTs a 204.
    Echo,
    /// GETs get something else than the challenge.
    WrongChallenge,
    /// Every request gets this status.
    Status(u16),
    /// A redirect to a private address.
    RedirectPrivate,
    /// Read the request, never answer.
    Hang,
}

struct Sink {
    addr: std::net::SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Sink {
    fn start(answer: Answer) -> Sink {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let g = got.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                let g = g.clone();
                std::thread::spawn(move || serve_one(s, answer, g));
            }
        });
        Sink { addr, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn got(&self, method: &str) -> Vec<Got> {
        self.got.lock().unwrap().iter().filter(|g| g.method == method).cloned().collect()
    }

    fn wait(&self, method: &str, n: usize, within: Duration) -> Vec<Got> {
        let end = Instant::now() + within;
        while Instant::now() < end && self.got(method).len() < n {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.got(method)
    }
}

fn serve_one(s: std::net::TcpStream, answer: Answer, got: Arc<Mutex<Vec<Got>>>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = r.read_exact(&mut body);
    let req = Got { method: method.clone(), target, headers, body };
    let challenge = req.query("hub.challenge").unwrap_or_default();
    got.lock().unwrap().push(req);
    let mut s = s;
    let reply = match answer {
        Answer::Hang => {
            std::thread::sleep(Duration::from_secs(30));
            return;
        }
        Answer::Echo if method == "GET" => ok(&challenge),
        Answer::Echo => "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_string(),
        Answer::WrongChallenge if method == "GET" => ok("not-the-challenge"),
        Answer::WrongChallenge => "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_string(),
        Answer::Status(code) => format!("HTTP/1.1 {code} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        Answer::RedirectPrivate => {
            "HTTP/1.1 302 Found\r\nLocation: http://10.0.0.1/hub\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_string()
        }
    };
    let _ = s.write_all(reply.as_bytes());
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A blocking request: (status, headers, body).
fn http(method: &str, url: &str, body: Option<String>) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    try_http(method, url, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

fn try_http(
    method: &str,
    url: &str,
    body: Option<String>,
) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().no_gzip().no_brotli().timeout(Duration::from_secs(10)).build().unwrap();
        let mut req = client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
        if let Some(b) = body {
            req = req.header("Content-Type", "application/x-www-form-urlencoded").body(b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        Ok((status, h, resp.bytes().await.map_err(|e| e.to_string())?.to_vec()))
    })
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The farm's feed with items `1..=n`.
fn feed(n: usize) -> String {
    let items: Vec<(String, String, String)> = (1..=n)
        .map(|i| {
            (format!("g{i}"), format!("http://farm.test/{i}"), format!("Harbour report number {i} from the coast"))
        })
        .collect();
    let refs: Vec<(Option<&str>, Option<&str>, &str, &str)> =
        items.iter().map(|(g, l, t)| (Some(g.as_str()), Some(l.as_str()), t.as_str(), "<p>Body</p>")).collect();
    rss(&refs)
}

/// A desk polling the farm every second, serving `base`, with `websub` as its `[websub]`.
struct World {
    farm: TestServer,
    desk: Desk,
    base: String,
}

fn world(name: &str, websub: Option<&str>) -> World {
    let farm = TestServer::start();
    farm.set("/a.xml", Reply::rss(feed(1)));
    let p = port();
    let base = format!("http://127.0.0.1:{p}/");
    let desk = Desk::new(name)
        .daemon(&format!("listen = \"127.0.0.1:{p}\"\nbase_url = \"{base}\""))
        .source_with("a", &farm.url("/a.xml"), "schedule = \"every 1s\"")
        .write();
    let mut f = std::fs::OpenOptions::new().append(true).open(&desk.config).unwrap();
    writeln!(f, "[[topic]]\nid = \"all\"\ntitle = \"All\"\n").unwrap();
    if let Some(w) = websub {
        writeln!(f, "[websub]\n{w}").unwrap();
    }
    World { farm, desk, base }
}

impl World {
    fn feed_url(&self, ext: &str) -> String {
        format!("{}topics/all.{ext}", self.base)
    }

    /// Waits until the served RSS feed lists item `n`.
    fn wait_served(&self, n: usize) -> Vec<u8> {
        let needle = format!("Harbour report number {n} from");
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, _, body)) = try_http("GET", &self.feed_url("rss"), None) {
                if String::from_utf8_lossy(&body).contains(&needle) {
                    return body;
                }
            }
            assert!(Instant::now() < end, "item {n} never served");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn subscriptions(&self) -> i64 {
        self.desk.count("SELECT COUNT(*) FROM websub_subscriptions")
    }
}

const HUB: &str =
    "serve_hub = true\nallow_networks = [\"127.0.0.0/8\"]\nretry = \"1s\"\nattempts = 3\ntimeout = \"1s\"";

fn subscribe(w: &World, callback: &str, secret: &str) -> (u16, String) {
    let topic = w.feed_url("rss");
    let body = form(&[
        ("hub.mode", "subscribe"),
        ("hub.topic", &topic),
        ("hub.callback", callback),
        ("hub.secret", secret),
        ("hub.lease_seconds", "7200"),
    ]);
    let (status, _, text) = http("POST", &format!("{}websub", w.base), Some(body));
    (status, String::from_utf8_lossy(&text).into_owned())
}

#[test]
fn a_verified_subscriber_gets_signed_bytes_identical_to_the_feed_and_keeps_its_subscription_over_a_restart() {
    let w = world("websub-deliver", Some(HUB));
    let sub = Sink::start(Answer::Echo);
    let daemon = Daemon::start(&w.desk, &[]);
    w.wait_served(1);

    let (status, text) = subscribe(&w, &sub.url("/cb?user=7"), "s3cret");
    assert_eq!(status, 202, "{text}");
    let gets = sub.wait("GET", 1, Duration::from_secs(10));
    assert_eq!(gets.len(), 1, "{}", daemon.log());
    let v = &gets[0];
    assert_eq!(v.query("hub.mode").as_deref(), Some("subscribe"));
    assert_eq!(v.query("hub.topic"), Some(w.feed_url("rss")));
    assert_eq!(v.query("hub.lease_seconds").as_deref(), Some("7200"));
    assert_eq!(v.query("user").as_deref(), Some("7"), "the callback's own query is kept");
    assert!(v.query("hub.challenge").is_some_and(|c| c.len() >= 32));
    assert!(daemon.wait_log("subscribed to", Duration::from_secs(5)), "{}", daemon.log());
    let (secret, expires, created): (String, i64, i64) = w
        .desk
        .conn()
        .query_row("SELECT secret, lease_expires, created FROM websub_subscriptions", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((secret.as_str(), expires - created), ("s3cret", 7200));

    w.farm.set("/a.xml", Reply::rss(feed(2)));
    let started = Instant::now();
    let posts = sub.wait("POST", 1, Duration::from_secs(15));
    assert!(!posts.is_empty(), "no delivery:\n{}", daemon.log());
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let p = &posts[0];
    assert!(String::from_utf8_lossy(&p.body).contains("Harbour report number 2 from"));
    assert_eq!(p.headers.get("content-type").map(String::as_str), Some("application/rss+xml; charset=utf-8"));
    let sig = p.headers.get("x-hub-signature").expect("signed").strip_prefix("sha256=").unwrap().to_string();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"s3cret");
    let sig: Vec<u8> = (0..sig.len()).step_by(2).map(|i| u8::from_str_radix(&sig[i..i + 2], 16).unwrap()).collect();
    ring::hmac::verify(&key, &p.body, &sig).expect("X-Hub-Signature verifies with the secret");
    let link = p.headers.get("link").unwrap();
    assert!(
        link.contains(&format!("<{}websub>; rel=\"hub\"", w.base))
            && link.contains(&format!("<{}>; rel=\"self\"", w.feed_url("rss"))),
        "{link}"
    );
    let served = w.wait_served(2);
    assert_eq!(p.body, served, "the delivery is the feed's bytes");
    assert!(!sub.got("POST").iter().any(|g| g.target.contains("hub.")), "deliveries go to the callback as given");

    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(w.subscriptions(), 1);

    // Restarted: the stored subscription still gets the next change.
    let daemon = Daemon::start(&w.desk, &[]);
    w.wait_served(2);
    w.farm.set("/a.xml", Reply::rss(feed(3)));
    let posts = sub.wait("POST", 2, Duration::from_secs(15));
    assert!(posts.len() >= 2, "no delivery after the restart:\n{}", daemon.log());
    assert!(String::from_utf8_lossy(&posts.last().unwrap().body).contains("Harbour report number 3 from"));
    assert_eq!(sub.got("GET").len(), 1, "no new verification needed");
    let last: Option<i64> =
        w.desk.conn().query_row("SELECT last_delivery FROM websub_subscriptions", [], |r| r.get(0)).unwrap();
    assert!(last.is_some());
    daemon.stop();
}

#[test]
fn bad_subscription_requests_get_a_4xx_with_the_reason_and_a_wrong_challenge_stores_nothing() {
    let w = world("websub-refuse", Some("serve_hub = true\nallow_networks = [\"127.0.0.0/8\"]"));
    let daemon = Daemon::start(&w.desk, &[]);
    w.wait_served(1);
    let hub = format!("{}websub", w.base);
    let topic = w.feed_url("atom");
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("hub.mode", "subscribe"), ("hub.topic", &topic), ("hub.callback", "http://10.0.0.1/cb")],
            "private address",
        ),
        (
            vec![("hub.mode", "subscribe"), ("hub.topic", &topic), ("hub.callback", "ftp://example.com/cb")],
            "only http and https",
        ),
        (vec![("hub.mode", "subscribe"), ("hub.callback", "http://127.0.0.1:9/cb")], "hub.topic is missing"),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "http://elsewhere.test/feed"),
                ("hub.callback", "http://127.0.0.1:9/"),
            ],
            "is not one of this hub's feeds",
        ),
        (vec![("hub.mode", "publish"), ("hub.topic", &topic), ("hub.callback", "http://127.0.0.1:9/")], "hub.mode"),
        (vec![("hub.mode", "subscribe"), ("hub.topic", &topic)], "hub.callback is missing"),
    ];
    let secret = "x".repeat(200);
    let mut cases = cases;
    cases.push((
        vec![
            ("hub.mode", "subscribe"),
            ("hub.topic", &topic),
            ("hub.callback", "http://127.0.0.1:9/"),
            ("hub.secret", &secret),
        ],
        "hub.secret is longer",
    ));
    for (pairs, want) in &cases {
        let (status, _, body) = http("POST", &hub, Some(form(pairs)));
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{pairs:?}: {body}");
        assert!(body.contains(want), "{pairs:?}: {body}");
    }
    let (status, _, _) = http("POST", &hub, Some("x".repeat(20_000)));
    assert_eq!(status, 413, "bodies are bounded");

    let liar = Sink::start(Answer::WrongChallenge);
    let (status, text) = subscribe(&w, &liar.url("/cb"), "s");
    assert_eq!(status, 202, "{text}");
    assert_eq!(liar.wait("GET", 1, Duration::from_secs(10)).len(), 1);
    assert!(daemon.wait_log("refused: answered 200 without the challenge", Duration::from_secs(5)), "{}", daemon.log());
    assert_eq!(w.subscriptions(), 0, "nothing stored");
    w.farm.set("/a.xml", Reply::rss(feed(2)));
    w.wait_served(2);
    std::thread::sleep(Duration::from_secs(3));
    assert!(liar.got("POST").is_empty(), "no deliveries");
    daemon.stop();
}

#[test]
fn feeds_name_the_hubs_and_themselves_and_without_websub_their_bytes_do_not_change() {
    let w = world("websub-links", Some("hubs = [\"https://hub.example/\"]\nserve_hub = true"));
    let out = w.desk.run(&["fetch"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let render = |fmt: &str| {
        let out = w.desk.run(&["render", "all", "--format", fmt]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let own = format!("{}websub", w.base);
    let atom = render("atom");
    let parsed = feed_rs::parser::parse(&atom[..]).unwrap();
    let rel = |r: &str| {
        parsed.links.iter().filter(|l| l.rel.as_deref() == Some(r)).map(|l| l.href.clone()).collect::<Vec<_>>()
    };
    assert_eq!(rel("hub"), ["https://hub.example/", own.as_str()]);
    assert_eq!(rel("self"), [w.feed_url("atom")]);
    let json: serde_json::Value = serde_json::from_slice(&render("json")).unwrap();
    assert_eq!(
        json["hubs"],
        serde_json::json!([{"type": "WebSub", "url": "https://hub.example/"}, {"type": "WebSub", "url": own}])
    );
    let rss_doc = String::from_utf8(render("rss")).unwrap();
    let doc = atom_links(&rss_doc);
    assert!(doc.contains(&("hub".into(), own.clone())) && doc.contains(&("self".into(), w.feed_url("rss"))), "{doc:?}");

    // The daemon sends the same as Link headers.
    let daemon = Daemon::start(&w.desk, &[]);
    w.wait_served(1);
    let (_, headers, _) = http("GET", &w.feed_url("json"), None);
    let link = headers.get("link").unwrap().to_str().unwrap().to_string();
    assert_eq!(
        link,
        format!("<https://hub.example/>; rel=\"hub\", <{own}>; rel=\"hub\", <{}>; rel=\"self\"", w.feed_url("json"))
    );
    daemon.stop();

    // No [websub], or one that names no hub: byte for byte what it was, and no Link header.
    let with_links = render("rss");
    let config = std::fs::read_to_string(&w.desk.config).unwrap();
    let bare = config.split("[websub]").next().unwrap().to_string();
    for variant in [bare.clone(), format!("{bare}[websub]\n")] {
        std::fs::write(&w.desk.config, &variant).unwrap();
        let plain = render("rss");
        assert!(!String::from_utf8_lossy(&plain).contains("rel=\"hub\""));
        assert_ne!(plain, with_links);
        assert_eq!(plain, render("rss"));
        for fmt in ["atom", "json"] {
            let b = String::from_utf8(render(fmt)).unwrap();
            assert!(!b.contains("\"hub\"") && !b.contains("\"hubs\""), "{b}");
        }
    }
    std::fs::write(&w.desk.config, &bare).unwrap();
    let plain = render("rss");
    let daemon = Daemon::start(&w.desk, &[]);
    let served = w.wait_served(1);
    assert_eq!(served, plain);
    let (_, headers, _) = http("GET", &w.feed_url("rss"), None);
    assert!(headers.get("link").is_none());
    daemon.stop();
}

/// (rel, href) of every `atom:link` element in an RSS document, whatever its attribute order.
fn atom_links(doc: &str) -> Vec<(String, String)> {
    let tag = regex::Regex::new(r"<atom:link\s([^>]*)/?>").unwrap();
    let attr = |attrs: &str, k: &str| {
        regex::Regex::new(&format!(r#"(?:^|\s){k}="([^"]*)""#)).unwrap().captures(attrs).map(|c| c[1].to_string())
    };
    tag.captures_iter(doc)
        .map(|c| (attr(&c[1], "rel").unwrap_or_default(), attr(&c[1], "href").unwrap_or_default()))
        .collect()
}

#[test]
fn a_burst_of_changes_is_one_publish_ping_with_every_changed_feed_url() {
    let hub = Sink::start(Answer::Status(204));
    let w =
        world("websub-publish", Some(&format!("hubs = [\"{}\"]\nallow_networks = [\"127.0.0.0/8\"]", hub.url("/hub"))));
    let daemon = Daemon::start(&w.desk, &[]);
    w.wait_served(1);
    for n in 2..=4 {
        w.farm.set("/a.xml", Reply::rss(feed(n)));
        w.wait_served(n);
    }
    let pings = hub.wait("POST", 1, Duration::from_secs(20));
    assert_eq!(pings.len(), 1, "{}", daemon.log());
    std::thread::sleep(Duration::from_secs(7));
    let pings = hub.got("POST");
    assert_eq!(pings.len(), 1, "one ping per burst: {pings:?}");
    let p = &pings[0];
    assert_eq!(p.headers.get("content-type").map(String::as_str), Some("application/x-www-form-urlencoded"));
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&p.body).into_owned().collect();
    assert!(fields.contains(&("hub.mode".into(), "publish".into())), "{fields:?}");
    for ext in ["rss", "atom", "json"] {
        assert!(fields.contains(&("hub.url".into(), w.feed_url(ext))), "{fields:?}");
    }
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("websub: publishing") && log.contains("done (HTTP 204)"), "{log}");
}

/// A hub that fails in some way: polls and serving go on, the ping is retried with backoff
/// and given up after `attempts` with the reason in the log.
fn failing_hub(name: &str, hub_url: &str, reason: &str, attempts: u32) -> String {
    let w = world(
        name,
        Some(&format!(
            "hubs = [\"{hub_url}\"]\nallow_networks = [\"127.0.0.0/8\"]\nretry = \"1s\"\nattempts = 3\ntimeout = \"1s\""
        )),
    );
    let daemon = Daemon::start(&w.desk, &[]);
    w.wait_served(1);
    w.farm.set("/a.xml", Reply::rss(feed(2)));
    w.wait_served(2);
    let end = Instant::now() + Duration::from_secs(40);
    let mut slowest = Duration::ZERO;
    let polls = w.farm.hits("/a.xml");
    while !daemon.log().contains("gave up publishing") && Instant::now() < end {
        let t = Instant::now();
        let (status, _, _) = http("GET", &w.feed_url("rss"), None);
        assert_eq!(status, 200);
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = daemon.log();
    assert!(log.contains(&format!("after {attempts} attempt(s)")), "{log}");
    let gave_up = log.lines().find(|l| l.contains("gave up publishing")).unwrap();
    assert!(gave_up.contains(reason) && gave_up.contains(&w.feed_url("rss")), "{gave_up}");
    if attempts > 1 {
        assert!(log.contains("retrying in 1s") && log.contains("retrying in 3s"), "backoff grows:\n{log}");
    }
    assert!(slowest < Duration::from_secs(1), "serving went on: slowest GET {slowest:?}");
    assert!(w.farm.hits("/a.xml") > polls + 2, "polls went on");
    daemon.stop();
    log
}

#[test]
fn a_hub_that_is_down_is_retried_then_given_up() {
    let closed = format!("http://127.0.0.1:{}/hub", port());
    failing_hub("websub-down", &closed, "failed", 3);
}

#[test]
fn a_hub_that_never_answers_is_retried_then_given_up() {
    let hub = Sink::start(Answer::Hang);
    failing_hub("websub-hang", &hub.url("/hub"), "timed out", 3);
    assert_eq!(hub.got("POST").len(), 3);
}

#[test]
fn a_hub_that_answers_500_is_retried_then_given_up() {
    let hub = Sink::start(Answer::Status(500));
    failing_hub("websub-500", &hub.url("/hub"), "answered 500", 3);
    assert_eq!(hub.got("POST").len(), 3);
}

#[test]
fn a_hub_that_redirects_to_a_private_address_is_not_followed() {
    let hub = Sink::start(Answer::RedirectPrivate);
    failing_hub("websub-redirect", &hub.url("/hub"), "redirect to http://10.0.0.1/hub not followed", 1);
    assert_eq!(hub.got("POST").len(), 1, "a redirect is not worth retrying");
}

#[test]
fn a_stored_digest_is_pushed_to_digest_subscribers_and_pinged_to_hubs() {
    let hub = Sink::start(Answer::Status(204));
    let w = world("websub-digest", None);
    {
        // The topic gets a digest; our hub and an external one.
        let text = std::fs::read_to_string(&w.desk.config).unwrap().replace(
            "[[topic]]\nid = \"all\"\ntitle = \"All\"\n",
            "[[topic]]\nid = \"all\"\ntitle = \"All\"\ndigest = \"daily 00:00\"\n",
        );
        std::fs::write(&w.desk.config, format!("{text}\n[websub]\n{HUB}\nhubs = [\"{}\"]\n", hub.url("/hub"))).unwrap();
    }
    let sub = Sink::start(Answer::Echo);
    let daemon = Daemon::start(&w.desk, &[]);
    w.wait_served(1);
    let digest_url = format!("{}topics/all/digest.rss", w.base);
    // Digest feeds name the hubs too.
    let (status, _, atom) = http("GET", &digest_url, None);
    assert_eq!(status, 200);
    let links = atom_links(&String::from_utf8_lossy(&atom));
    assert!(links.contains(&("hub".to_string(), format!("{}websub", w.base))), "{links:?}");
    assert!(links.contains(&("hub".to_string(), hub.url("/hub"))), "{links:?}");
    let body = form(&[("hub.mode", "subscribe"), ("hub.topic", &digest_url), ("hub.callback", &sub.url("/digest"))]);
    let (status, text) = {
        let (s, _, t) = http("POST", &format!("{}websub", w.base), Some(body));
        (s, String::from_utf8_lossy(&t).into_owned())
    };
    assert_eq!(status, 202, "a digest feed is one of this hub's topics: {text}");
    assert!(daemon.wait_log("subscribed to", Duration::from_secs(10)), "{}", daemon.log());

    // A period's digest is stored (as the digest task stores one at a period's end).
    let yesterday = chrono::Utc::now().timestamp() / 86400 * 86400 - 86400;
    w.desk
        .conn()
        .execute(
            "INSERT INTO digests (topic, period_start, period_end, guid, title, html, text, story_ids, published_at)
             VALUES ('all', ?1, ?2, ?3, 'All: yesterday', '<p style=\"margin:0\">Harbour</p>', 'Harbour', '[]', ?2)",
            newsdesk::params![yesterday, yesterday + 86400, format!("{}topics/all/digest/yesterday", w.base)],
        )
        .unwrap();
    let posts = sub.wait("POST", 1, Duration::from_secs(15));
    assert_eq!(posts.len(), 1, "the new digest feed is pushed:\n{}", daemon.log());
    let (_, _, served) = http("GET", &digest_url, None);
    assert_eq!(posts[0].body, served, "the delivery is the digest feed's bytes");
    assert!(String::from_utf8_lossy(&served).contains("All: yesterday"));
    let pinged =
        |g: &[Got]| g.iter().any(|p| String::from_utf8_lossy(&p.body).contains(&form(&[("hub.url", &digest_url)])));
    let end = Instant::now() + Duration::from_secs(20);
    while !pinged(&hub.got("POST")) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    let pings = hub.got("POST");
    assert!(
        pinged(&pings),
        "the external hub hears of the digest feed: {:?}\n{}",
        pings.iter().map(|p| String::from_utf8_lossy(&p.body).into_owned()).collect::<Vec<_>>(),
        daemon.log()
    );
    daemon.stop();
}

#[test]
fn search_feeds_name_the_hubs_and_their_changes_are_pushed_to_subscribers_and_pinged() {
    let hub = Sink::start(Answer::Status(204));
    let w = world("websub-search", Some(&format!("{HUB}\nhubs = [\"{}\"]", hub.url("/hub"))));
    let sub = Sink::start(Answer::Echo);
    let daemon = Daemon::start(&w.desk, &[]);
    w.wait_served(1);
    let own = format!("{}websub", w.base);

    // The search feed names both hubs and itself, in its body and its Link header.
    let search_url = format!("{}search.rss?q=harbour", w.base);
    let (status, headers, body) = http("GET", &search_url, None);
    assert_eq!(status, 200);
    let links = atom_links(&String::from_utf8_lossy(&body));
    assert!(links.contains(&("hub".to_string(), own.clone())), "{links:?}");
    assert!(links.contains(&("hub".to_string(), hub.url("/hub"))), "{links:?}");
    assert!(links.contains(&("self".to_string(), search_url.clone())), "{links:?}");
    let link = headers.get("link").unwrap().to_str().unwrap().to_string();
    assert!(link.contains(&format!("<{own}>; rel=\"hub\"")) && link.contains(&format!("<{search_url}>; rel=\"self\"")));
    // Only fetched, never subscribed here: an external hub's subscribers may follow it.
    let fetched_only = format!("{}search.json?q=coast", w.base);
    assert_eq!(http("GET", &fetched_only, None).0, 200);

    // Our hub takes a search feed's self link as hub.topic; a search that does not parse, or
    // a search URL in another form than the self link, is refused.
    let hub_url = format!("{}websub", w.base);
    for (topic, want) in [
        (format!("{}search.rss?q=%22unclosed", w.base), "the search does not parse"),
        (format!("{}search.rss?q=harbour&x=1", w.base), "is not one of this hub's feeds"),
    ] {
        let body = form(&[("hub.mode", "subscribe"), ("hub.topic", &topic), ("hub.callback", &sub.url("/no"))]);
        let (status, _, text) = http("POST", &hub_url, Some(body));
        let text = String::from_utf8_lossy(&text);
        assert_eq!(status, 400, "{topic}: {text}");
        assert!(text.contains(want), "{topic}: {text}");
    }
    let body = form(&[("hub.mode", "subscribe"), ("hub.topic", &search_url), ("hub.callback", &sub.url("/search"))]);
    let (status, _, text) = http("POST", &hub_url, Some(body));
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&text));
    assert!(daemon.wait_log("subscribed to", Duration::from_secs(10)), "{}", daemon.log());
    assert_eq!(sub.got("GET")[0].query("hub.topic"), Some(search_url.clone()));
    // The subscription is the baseline; give the watcher a pass at it before the news.
    std::thread::sleep(Duration::from_secs(3));
    assert!(sub.got("POST").is_empty(), "nothing pushed before the search changed");

    w.farm.set("/a.xml", Reply::rss(feed(2)));
    let started = Instant::now();
    let posts = sub.wait("POST", 1, Duration::from_secs(20));
    assert!(!posts.is_empty(), "no delivery of the search feed:\n{}", daemon.log());
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    let p = &posts[0];
    assert!(String::from_utf8_lossy(&p.body).contains("Harbour report number 2 from"));
    assert_eq!(p.headers.get("content-type").map(String::as_str), Some("application/rss+xml; charset=utf-8"));
    assert!(p.headers.get("link").is_some_and(|l| l.contains(&format!("<{search_url}>; rel=\"self\""))));
    let (_, _, served) = http("GET", &search_url, None);
    assert_eq!(p.body, served, "the delivery is the search feed's bytes");

    // The external hub is pinged for both searches: the subscribed one and the fetched one.
    let pinged =
        |u: &str| hub.got("POST").iter().any(|p| String::from_utf8_lossy(&p.body).contains(&form(&[("hub.url", u)])));
    let end = Instant::now() + Duration::from_secs(20);
    while !(pinged(&search_url) && pinged(&fetched_only)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        pinged(&search_url) && pinged(&fetched_only),
        "the external hub hears of both searches: {:?}\n{}",
        hub.got("POST").iter().map(|p| String::from_utf8_lossy(&p.body).into_owned()).collect::<Vec<_>>(),
        daemon.log()
    );
    daemon.stop();
}
