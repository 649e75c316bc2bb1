//! Shared by the republishing tests: a news world (several outlets reporting overlapping
//! stories plus unrelated items, served by a scripted loopback server and fetched by the real
//! binary into a real SQLite file) and the HTTP server (`serve::run`) on 127.0.0.1:0.
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, RwLock};

use super::common::{rss, Desk, Reply, TestServer};
use newsdesk::config::Config;
use newsdesk::serve::{self, AppState};
use newsdesk::store::Store;

/// Base URL in the test configs: GUIDs are `http://newsdesk.test/stories/{id}`.
pub const BASE: &str = "http://newsdesk.test/";

pub const LAVROV_DAWN: &str = "Lavrov arrives in Islamabad for talks with Pakistani leaders";
pub const FLOODS_BBC: &str = "Floods in Sao Paulo leave thousands homeless";

/// Topics every world has.
pub const TOPICS: &str = r#"
[[topic]]
id = "top-news"
title = "Top News"
rank = "coverage"
min_outlets = 2

[[topic]]
id = "pakistan"
title = "Pakistan"
include = ["Pakistan", "Islamabad"]
exclude = ["cricket"]

[[topic]]
id = "latest"
title = "Latest"
"#;

pub struct World {
    pub srv: TestServer,
    pub desk: Desk,
}

fn dawn(lavrov_title: &str) -> String {
    rss(&[
        (
            Some("d1"),
            Some("https://www.dawn.example/news/1"),
            lavrov_title,
            "<p>Russian Foreign Minister Sergei Lavrov arrived in Islamabad for talks.</p>",
        ),
        (
            Some("d2"),
            Some("https://www.dawn.example/news/2"),
            "Pakistan cricket team beats India in Karachi thriller",
            "Babar Azam scored a century at the National Stadium.",
        ),
    ])
}

impl World {
    /// Three outlets with two shared stories and unrelated items; a fourth (aljazeera) starts
    /// empty. `extra_sources` are more `(id, path, body)` feeds.
    pub fn new(name: &str, extra_sources: &[(&str, &str, String)]) -> World {
        let srv = TestServer::start();
        srv.set("/dawn.xml", Reply::rss(dawn(LAVROV_DAWN)));
        srv.set(
            "/bbc.xml",
            Reply::rss(rss(&[
                (
                    Some("b1"),
                    Some("https://www.bbc.example/news/world-1"),
                    "Lavrov in Islamabad for talks with Pakistani leadership",
                    "Sergei Lavrov reached Islamabad on Tuesday for talks with Pakistani leaders.",
                ),
                (
                    Some("b2"),
                    Some("https://www.bbc.example/news/world-2"),
                    FLOODS_BBC,
                    "Floods in Sao Paulo left thousands homeless.",
                ),
                (
                    Some("b3"),
                    Some("https://www.bbc.example/news/ent-3"),
                    "Oscar ratings climb for Hollywood awards show",
                    "The Academy Awards drew more viewers.",
                ),
            ])),
        );
        srv.set(
            "/reuters.xml",
            Reply::rss(rss(&[
                (
                    Some("r1"),
                    Some("https://reuters.example/world/lavrov"),
                    "Russia's Lavrov holds talks in Islamabad with Pakistani leaders",
                    "Lavrov met Pakistani leaders in Islamabad.",
                ),
                (
                    Some("r2"),
                    Some("https://reuters.example/world/floods"),
                    "Sao Paulo floods leave thousands homeless",
                    "Thousands were left homeless by floods in Sao Paulo.",
                ),
                (
                    Some("r3"),
                    Some("https://reuters.example/business/tesla"),
                    "Tesla recalls cars over faulty brake software",
                    "The carmaker recalled vehicles.",
                ),
            ])),
        );
        srv.set("/aljazeera.xml", Reply::rss(rss(&[])));
        let mut desk = Desk::new(name)
            .daemon(&format!("base_url = \"{BASE}\""))
            .source_with("dawn", &srv.url("/dawn.xml"), "title = \"Dawn\"\nweight = 2.0")
            .source_with("bbc", &srv.url("/bbc.xml"), "title = \"BBC News\"")
            .source_with("reuters", &srv.url("/reuters.xml"), "title = \"Reuters\"")
            .source_with("aljazeera", &srv.url("/aljazeera.xml"), "title = \"Al Jazeera\"");
        for (id, path, body) in extra_sources {
            srv.set(path, Reply::rss(body.clone()));
            desk = desk.source_with(id, &srv.url(path), "");
        }
        let desk = desk.write();
        let mut f = std::fs::OpenOptions::new().append(true).open(&desk.config).unwrap();
        f.write_all(TOPICS.as_bytes()).unwrap();
        drop(f);
        let out = desk.fetch(&[]);
        assert!(out.contains("0 failed"), "{out}");
        World { srv, desk }
    }

    /// The Lavrov story grows: a fourth outlet reports it, and the lead outlet (Dawn, the
    /// heaviest) edits its headline. Then fetch again.
    pub fn grow(&self, new_lead_title: &str) {
        self.srv.set("/dawn.xml", Reply::rss(dawn(new_lead_title)));
        self.srv.set(
            "/aljazeera.xml",
            Reply::rss(rss(&[(
                Some("aj1"),
                Some("https://aljazeera.example/news/lavrov-islamabad"),
                "Lavrov arrives in Islamabad for talks with Pakistani leaders",
                "Russia's top diplomat Lavrov is in Islamabad for talks with Pakistani leaders.",
            )])),
        );
        let out = self.desk.fetch(&[]);
        assert!(out.contains("dawn: 0 new, 1 updated") && out.contains("aljazeera: 1 new"), "{out}");
    }
}

/// `serve::run` on 127.0.0.1:0 in its own thread and runtime, over the world's database.
pub struct Served {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    pub fn start(desk: &Desk) -> Served {
        let config = Config::load(&desk.config).unwrap();
        let store = Store::open_configured(&config.daemon).unwrap();
        let state = AppState::new(
            store,
            Arc::new(RwLock::new(Arc::new(config))),
            Arc::new(AtomicI64::new(chrono::Utc::now().timestamp())),
        );
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                serve::run(listener, st, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        Served { addr, state, stop: Some(stop_tx), thread: Some(thread) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A blocking GET/HEAD with headers; returns (status, headers, body). Never decompresses.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        // reqwest is built without a default TLS provider; plain HTTP still needs one installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .no_gzip()
            .no_brotli()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut req = client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        let body = resp.bytes().await.unwrap().to_vec();
        (status, h, body)
    })
}

pub fn get(url: &str) -> Vec<u8> {
    let (status, _, body) = http("GET", url, &[]);
    assert_eq!(status, 200, "GET {url}: {}", String::from_utf8_lossy(&body));
    body
}

/// (id, title, link) of every entry, parsed with feed-rs.
pub fn entries(body: &[u8]) -> Vec<(String, String, String)> {
    let feed = feed_rs::parser::parse(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)));
    feed.entries
        .iter()
        .map(|e| {
            (
                e.id.clone(),
                e.title.as_ref().map(|t| t.content.clone()).unwrap_or_default(),
                e.links.first().map(|l| l.href.clone()).unwrap_or_default(),
            )
        })
        .collect()
}
