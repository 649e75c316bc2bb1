//! A feed farm: N synthetic news feeds x M items, generated deterministically, served over
//! HTTP/1.1 on 127.0.0.1 with `ETag` / `Last-Modified` and 304 answers, for benchmarks.
//!
//! ```ignore
//! let farm = Farm::new(1000, 30, 7);          // ~75 MB of RSS 2.0 and Atom
//! let (addr, server) = farm.serve()?;          // background thread, stops on drop
//! farm.write_config(&cfg, &db, "concurrency = 32\nper_host = 32\n")?;
//! // ... run `newsdesk --config cfg fetch` ...
//! let before = farm.counts();
//! farm.advance(0.10);                          // 10% of the feeds gain 3 items
//! let delta = farm.counts() - before;          // requests by status since `before`
//! ```
//!
//! For a daemon bench, [`Farm::record_requests`] turns on a log of every answered request
//! (when, which URL, which status; off by default so the ingest bench pays nothing), and
//! [`Farm::config_toml_mirrored`] configures each feed under several URLs
//! (`/feed/N.xml?via=K`: the farm ignores the query string), so many sources carry the same
//! articles.
//!
//! What a feed looks like: even-numbered feeds are RSS 2.0 (half with the HTML in CDATA,
//! half entity-escaped, some with a teaser in `<description>` and the article in
//! `<content:encoded>`), odd-numbered ones Atom 1.0 (`type="html"` content, some with a
//! `<summary>`). Each item carries ~1.8 KB of article HTML (~2.5 KB of XML with its envelope):
//! paragraphs, a figure with a relative `<img>`, links with relative and absolute hrefs,
//! entities (`&amp;`, `&#8217;`, `&nbsp;`, `&mdash;`), non-ASCII names, and now and then a
//! `<script>`, an `<iframe>`, `style` and `on*` attributes for the sanitiser to remove. Every
//! item has a unique GUID and a unique link, so each one is a distinct article.
//!
//! What the items say: each reports an *event*. 45% are events only their outlet covers; the
//! rest pick one of [`EVENTS_PER_CYCLE`] shared events of their 3-hour news cycle with
//! Zipf-distributed popularity (a few stories carried by hundreds of outlets, most by two or
//! three), and 5% of those are wire copies (the same text as other outlets carrying it).
//! Names are partly real (word lists of people and places) and partly made up from syllables,
//! and the prose mixes English skeletons with a 20,000-word made-up lexicon drawn with Zipf
//! frequencies, so the vocabulary grows with the farm as real news does. Story clustering
//! cost depends on all this: treat numbers measured on this corpus as indicative of real news,
//! not equal to it.
//!
//! Everything derives from `(seed, feed, item serial)`; only the dates are anchored on the
//! time the farm was created (items must be recent, or the reader's retention drops them).
//! The server is hermetic: it binds `127.0.0.1:0` and its connections close after an idle
//! minute; dropping the [`FarmServer`] stops it.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::ops::Sub;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Items a feed gains on each [`Farm::advance`] (capped at the items per feed).
pub const NEW_ITEMS_PER_ADVANCE: usize = 3;

/// A connection idle this long is closed by the server.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------------------- PRNG

/// SplitMix64: small, fast, good enough for test data, and the same everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator for one `(a, b, c)` coordinate under `seed` (independent streams).
    pub fn at(seed: u64, a: u64, b: u64, c: u64) -> Rng {
        let mut r = Rng(seed ^ 0x6e65_7773_6465_736b);
        let x = r.next_u64() ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut r = Rng(x);
        let y = r.next_u64() ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        let mut r = Rng(y);
        let z = r.next_u64() ^ c.wrapping_mul(0x1656_67B1_9E37_79F9);
        Rng(z)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

// ------------------------------------------------------------------------------- word lists

const PEOPLE: &[&str] = &[
    "Shehbaz Sharif",
    "Ishaq Dar",
    "Maryam Nawaz",
    "Asim Munir",
    "Sergei Lavrov",
    "Vladimir Putin",
    "António Guterres",
    "Ursula von der Leyen",
    "Narendra Modi",
    "Xi Jinping",
    "Wang Yi",
    "Emmanuel Macron",
    "Recep Tayyip Erdoğan",
    "Fatih Birol",
    "Kristalina Georgieva",
    "Christine Lagarde",
    "Luiz Inácio Lula da Silva",
    "Cyril Ramaphosa",
    "Anwar Ibrahim",
    "Prabowo Subianto",
    "Mohammed bin Salman",
    "Abdel Fattah el-Sisi",
    "Volodymyr Zelensky",
    "Keir Starmer",
    "Giorgia Meloni",
    "Pedro Sánchez",
    "Masoud Pezeshkian",
    "Haitham bin Tariq",
    "Muhammad Yunus",
    "Ranil Wickremesinghe",
    "Abdulaziz bin Salman",
    "Haitham al-Ghais",
];

const PLACES: &[&str] = &[
    "Islamabad",
    "Karachi",
    "Lahore",
    "Peshawar",
    "Quetta",
    "Kabul",
    "Kandahar",
    "Moscow",
    "Beijing",
    "New Delhi",
    "Dhaka",
    "Tehran",
    "Riyadh",
    "Doha",
    "Dubai",
    "Ankara",
    "Brussels",
    "Geneva",
    "Vienna",
    "Berlin",
    "Paris",
    "London",
    "Washington",
    "Tokyo",
    "Jakarta",
    "Nairobi",
    "Cairo",
    "São Paulo",
    "Kyiv",
    "Baku",
    "Tashkent",
    "Colombo",
    "Kathmandu",
    "Gwadar",
];

const ORGS: &[&str] = &[
    "the IMF",
    "OPEC+",
    "the World Bank",
    "the UN Security Council",
    "the European Commission",
    "the State Bank",
    "the finance ministry",
    "the election commission",
    "the Supreme Court",
    "the Asian Development Bank",
    "the WHO",
    "the energy regulator",
    "parliament",
    "the opposition alliance",
    "the power distribution companies",
    "the Oil and Gas Regulatory Authority",
];

const VERBS: &[&str] = &[
    "says",
    "warns of",
    "pledges",
    "rejects",
    "backs",
    "signs",
    "announces",
    "calls for",
    "criticises",
    "welcomes",
    "urges",
    "unveils",
    "defends",
    "questions",
    "delays",
    "approves",
];

const SUBJECTS: &[&str] = &[
    "new gas pipeline deal",
    "power tariff increase",
    "trade talks",
    "fuel price cut",
    "LNG import plan",
    "budget deficit target",
    "solar expansion",
    "refinery upgrade",
    "interest rate decision",
    "security operation",
    "flood relief package",
    "wheat import ban",
    "climate finance pledge",
    "ceasefire proposal",
    "debt restructuring",
    "visa rules",
    "port expansion",
    "nuclear power project",
    "grid modernisation plan",
    "crude output cut",
    "tax reform",
    "privatisation drive",
    "border reopening",
    "election timetable",
    "inflation outlook",
    "currency reserves",
    "railway link",
    "water-sharing treaty",
    "cricket series",
    "polio vaccination drive",
    "circular debt plan",
    "mining concession",
];

const SECTIONS: &[&str] = &["world", "business", "energy", "politics", "asia", "economy", "opinion", "sport"];

const SOURCES: &[&str] = &["officials", "diplomats", "analysts", "traders", "economists", "residents", "lawmakers"];

const OUTLET_WORDS: &[&str] = &[
    "Times",
    "Herald",
    "Daily",
    "Tribune",
    "Observer",
    "Post",
    "Chronicle",
    "Express",
    "Gazette",
    "Dispatch",
    "Ledger",
    "News",
    "Mirror",
    "Star",
    "Courier",
    "Monitor",
];

const FILLER: &[&str] = &[
    "The move comes after weeks of negotiations that at times appeared close to collapse",
    "Officials said the details would be finalised by the end of the month",
    "Markets reacted cautiously, with the benchmark index closing 0.8% higher",
    "Critics argue the plan does little to address the underlying shortfall",
    "The government has repeatedly said it will not revisit the agreement",
    "Independent estimates put the cost at more than $1.2 billion over five years",
    "Talks are expected to resume next week, according to people familiar with the matter",
    "The decision follows a sharp rise in demand during the summer months",
    "Opposition leaders called the announcement “a step in the wrong direction”",
    "Analysts expect the measure to add roughly 3,400 megawatts to the grid by 2027",
    "It was not immediately clear how the shortfall would be financed",
    "The ministry did not respond to a request for comment",
    "Similar proposals have stalled twice since 2019 amid disputes over pricing",
    "Prices of staple goods have risen by 12.5% since January, official data show",
    "Residents complained of power outages lasting up to ten hours a day",
];

// ------------------------------------------------------------------------------- model

/// Feed document format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// RSS 2.0.
    Rss,
    /// Atom 1.0.
    Atom,
}

impl Format {
    /// The `Content-Type` the server sends.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Atom => "application/atom+xml; charset=utf-8",
        }
    }
}

/// The fixed traits of one outlet.
#[derive(Clone, Debug)]
struct Outlet {
    name: String,
    host: String,
    format: Format,
    /// RSS: HTML in CDATA rather than entity-escaped.
    cdata: bool,
    /// A teaser in description/summary and the article in content:encoded/content.
    teaser: bool,
    /// Minutes between items.
    step_min: i64,
    /// The outlet's favourite place (its "home city").
    home: &'static str,
}

#[derive(Clone, Copy, Debug)]
struct ItemRef {
    serial: u64,
    published: i64,
}

/// One served version of a feed.
struct Doc {
    body: Arc<Vec<u8>>,
    etag: String,
    last_modified: i64,
    last_modified_http: String,
}

struct FeedState {
    /// Newest first.
    items: VecDeque<ItemRef>,
    next_serial: u64,
    doc: Arc<Doc>,
}

/// Requests answered, by status, and body bytes sent. Subtract two snapshots for one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// 200 OK.
    pub ok: u64,
    /// 304 Not Modified.
    pub not_modified: u64,
    /// 404 Not Found.
    pub not_found: u64,
    /// Anything else (405, 400).
    pub other: u64,
    /// Body bytes of 200 answers.
    pub body_bytes: u64,
    /// TCP connections accepted.
    pub connections: u64,
}

impl Counts {
    /// All requests answered.
    pub fn requests(&self) -> u64 {
        self.ok + self.not_modified + self.not_found + self.other
    }

    /// `"100 x 200, 900 x 304"`: the non-zero statuses.
    pub fn summary(&self) -> String {
        let parts: Vec<String> =
            [(self.ok, "200"), (self.not_modified, "304"), (self.not_found, "404"), (self.other, "other")]
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, s)| format!("{n} x {s}"))
                .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

impl Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts {
            ok: self.ok - o.ok,
            not_modified: self.not_modified - o.not_modified,
            not_found: self.not_found - o.not_found,
            other: self.other - o.other,
            body_bytes: self.body_bytes - o.body_bytes,
            connections: self.connections - o.connections,
        }
    }
}

/// One answered request, logged while [`Farm::record_requests`] is on.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    /// When the answer was ready to be written.
    pub at: Instant,
    /// The request target as sent: path and query (`/feed/7.xml?via=3`).
    pub target: String,
    /// The status answered: 200, 304, 404, 405.
    pub status: u16,
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    not_modified: AtomicU64,
    not_found: AtomicU64,
    other: AtomicU64,
    body_bytes: AtomicU64,
    connections: AtomicU64,
}

struct Inner {
    seed: u64,
    items_per_feed: usize,
    outlets: Vec<Outlet>,
    feeds: Vec<RwLock<FeedState>>,
    counters: Counters,
    addr: OnceLock<SocketAddr>,
    advance_rng: Mutex<Rng>,
    /// Distinct items that have appeared in some served document.
    distinct_items: AtomicU64,
    /// Whether answered requests are appended to `log`.
    recording: AtomicBool,
    log: Mutex<Vec<LoggedRequest>>,
}

/// The farm. Cheap to clone; clones share the feeds, the counters and the server address.
#[derive(Clone)]
pub struct Farm {
    inner: Arc<Inner>,
}

impl Farm {
    /// `feeds` feeds of `items` items each, deterministic for a `seed` (dates are anchored on
    /// now: the newest item of each feed is minutes to an hour old).
    pub fn new(feeds: usize, items: usize, seed: u64) -> Farm {
        let now = unix_now();
        Farm::with_epoch(feeds, items, seed, now - now % 60)
    }

    /// Like [`Farm::new`] with the dates anchored on `epoch` (unix seconds).
    pub fn with_epoch(feeds: usize, items: usize, seed: u64, epoch: i64) -> Farm {
        assert!(feeds > 0 && items > 0, "a farm needs at least one feed and one item");
        let outlets: Vec<Outlet> = (0..feeds).map(|i| outlet(seed, i)).collect();
        let items_len = items as u64;
        let states = outlets
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let mut r = Rng::at(seed, i as u64, u64::MAX, 1);
                let newest = epoch - r.range(2, 45) as i64 * 60;
                let items: VecDeque<ItemRef> = (0..items as u64)
                    .rev()
                    .map(|serial| {
                        let age = (items as u64 - 1 - serial) as i64 * o.step_min * 60;
                        let jitter = Rng::at(seed, i as u64, serial, 2).below(o.step_min as usize * 30) as i64;
                        ItemRef { serial, published: newest - age - jitter }
                    })
                    .collect();
                let doc = render(seed, i, o, &items, epoch);
                RwLock::new(FeedState { items, next_serial: items_len, doc })
            })
            .collect::<Vec<_>>();
        Farm {
            inner: Arc::new(Inner {
                seed,
                items_per_feed: items,
                outlets,
                feeds: states,
                counters: Counters::default(),
                addr: OnceLock::new(),
                advance_rng: Mutex::new(Rng::at(seed, u64::MAX, u64::MAX, 3)),
                distinct_items: AtomicU64::new((feeds * items) as u64),
                recording: AtomicBool::new(false),
                log: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Number of feeds.
    pub fn feeds(&self) -> usize {
        self.inner.feeds.len()
    }

    /// Items per feed document.
    pub fn items_per_feed(&self) -> usize {
        self.inner.items_per_feed
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// Format of feed `i`.
    pub fn format(&self, i: usize) -> Format {
        self.inner.outlets[i].format
    }

    /// Display name of feed `i`'s outlet.
    pub fn title(&self, i: usize) -> &str {
        &self.inner.outlets[i].name
    }

    /// Config source id of feed `i` (`farm-0042`).
    pub fn source_id(&self, i: usize) -> String {
        format!("farm-{i:04}")
    }

    /// URL path of feed `i`.
    pub fn path(&self, i: usize) -> String {
        format!("/feed/{i}.xml")
    }

    /// Full URL of feed `i` (once [`Farm::serve`] has run).
    pub fn url(&self, i: usize) -> Option<String> {
        self.inner.addr.get().map(|a| format!("http://{a}{}", self.path(i)))
    }

    /// The served address (once [`Farm::serve`] has run).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.inner.addr.get().copied()
    }

    /// The current document of feed `i`.
    pub fn body(&self, i: usize) -> Arc<Vec<u8>> {
        self.inner.feeds[i].read().unwrap().doc.body.clone()
    }

    /// The current `ETag` of feed `i`.
    pub fn etag(&self, i: usize) -> String {
        self.inner.feeds[i].read().unwrap().doc.etag.clone()
    }

    /// Bytes of all current documents.
    pub fn total_bytes(&self) -> u64 {
        self.inner.feeds.iter().map(|f| f.read().unwrap().doc.body.len() as u64).sum()
    }

    /// Distinct items that have been in some served document (what a reader that saw every
    /// version stores): `feeds x items` plus what [`Farm::advance`] added.
    pub fn distinct_items(&self) -> u64 {
        self.inner.distinct_items.load(Relaxed)
    }

    /// Requests answered so far.
    pub fn counts(&self) -> Counts {
        let c = &self.inner.counters;
        Counts {
            ok: c.ok.load(Relaxed),
            not_modified: c.not_modified.load(Relaxed),
            not_found: c.not_found.load(Relaxed),
            other: c.other.load(Relaxed),
            body_bytes: c.body_bytes.load(Relaxed),
            connections: c.connections.load(Relaxed),
        }
    }

    /// Starts (`true`) or stops logging every answered request with its time, target and
    /// status. Off by default; the log is kept until [`Farm::clear_request_log`].
    pub fn record_requests(&self, on: bool) {
        self.inner.recording.store(on, Relaxed);
    }

    /// The logged requests from index `from` on (pass the length already seen to get only
    /// the new ones), in the order they were answered.
    pub fn request_log_from(&self, from: usize) -> Vec<LoggedRequest> {
        let log = self.inner.log.lock().unwrap_or_else(|p| p.into_inner());
        log.get(from..).map(<[LoggedRequest]>::to_vec).unwrap_or_default()
    }

    /// Empties the request log.
    pub fn clear_request_log(&self) {
        self.inner.log.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Gives `round(fraction x feeds)` feeds (chosen by the farm's seeded generator, different
    /// ones on each call) [`NEW_ITEMS_PER_ADVANCE`] new items at the top, dropping as many
    /// of the oldest; their `ETag` and `Last-Modified` change. Returns the feeds advanced.
    pub fn advance(&self, fraction: f64) -> Vec<usize> {
        let n = self.feeds();
        let k = ((fraction.clamp(0.0, 1.0) * n as f64).round() as usize).min(n);
        let mut chosen: Vec<usize> = (0..n).collect();
        {
            let mut rng = self.inner.advance_rng.lock().unwrap();
            for j in 0..k {
                let pick = j + rng.below(n - j);
                chosen.swap(j, pick);
            }
        }
        chosen.truncate(k);
        chosen.sort_unstable();
        let now = unix_now();
        for &i in &chosen {
            self.advance_feed(i, NEW_ITEMS_PER_ADVANCE, now);
        }
        chosen
    }

    /// Adds `new` items (published in the minutes before `now`) to feed `i`.
    pub fn advance_feed(&self, i: usize, new: usize, now: i64) {
        let o = &self.inner.outlets[i];
        let m = self.inner.items_per_feed;
        let mut st = self.inner.feeds[i].write().unwrap();
        let newest = st.items.front().map(|it| it.published).unwrap_or(0);
        for k in (0..new).rev() {
            let serial = st.next_serial;
            st.next_serial += 1;
            let published = (now - k as i64 * 60 - 30).max(newest + 1);
            st.items.push_front(ItemRef { serial, published });
        }
        st.items.truncate(m);
        self.inner.distinct_items.fetch_add(new.min(m) as u64, Relaxed);
        let last_modified = now.max(st.doc.last_modified + 1);
        st.doc = render(self.inner.seed, i, o, &st.items, last_modified);
    }

    /// The config text: `[daemon]` with `database` and `extra_daemon_keys` (TOML lines), then
    /// one `[[source]]` per feed. Needs [`Farm::serve`] first (the URLs carry the port).
    pub fn config_toml(&self, db_path: &Path, extra_daemon_keys: &str) -> io::Result<String> {
        self.config_toml_tagged(db_path, extra_daemon_keys, |_| Vec::new())
    }

    /// Like [`Farm::config_toml`], with `extra_tags(i)` added to feed `i`'s `tags` (after
    /// `"farm"`), so topics can select sources by tag.
    pub fn config_toml_tagged(
        &self,
        db_path: &Path,
        extra_daemon_keys: &str,
        extra_tags: impl Fn(usize) -> Vec<String>,
    ) -> io::Result<String> {
        let addr =
            self.addr().ok_or_else(|| io::Error::other("the farm is not being served: call Farm::serve first"))?;
        let mut s = String::with_capacity(self.feeds() * 120 + 256);
        let _ = writeln!(
            s,
            "# Generated by benches/common/farm.rs: {} feeds x {} items on http://{addr}/\n\n[daemon]\ndatabase = {}",
            self.feeds(),
            self.items_per_feed(),
            toml_string(&db_path.to_string_lossy())
        );
        for line in extra_daemon_keys.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let _ = writeln!(s, "{line}");
        }
        for i in 0..self.feeds() {
            let tags: String = extra_tags(i).iter().map(|t| format!(", {}", toml_string(t))).collect();
            let _ = writeln!(
                s,
                "\n[[source]]\nid = \"{}\"\nurl = \"http://{addr}{}\"\ntitle = {}\ntags = [\"farm\"{tags}]",
                self.source_id(i),
                self.path(i),
                toml_string(self.title(i))
            );
        }
        Ok(s)
    }

    /// Like [`Farm::config_toml`], but each feed is configured `mirrors` times, as source
    /// [`Farm::mirror_source_id`] at [`Farm::mirror_path`]: `feeds x mirrors` sources, each
    /// article reachable through `mirrors` of them.
    pub fn config_toml_mirrored(&self, db_path: &Path, extra_daemon_keys: &str, mirrors: usize) -> io::Result<String> {
        let addr =
            self.addr().ok_or_else(|| io::Error::other("the farm is not being served: call Farm::serve first"))?;
        let mut s = String::with_capacity(self.feeds() * mirrors * 130 + 256);
        let _ = writeln!(
            s,
            "# Generated by benches/common/farm.rs: {} feeds x {} items on http://{addr}/, each feed under {mirrors} URLs\n\n[daemon]\ndatabase = {}",
            self.feeds(),
            self.items_per_feed(),
            toml_string(&db_path.to_string_lossy())
        );
        for line in extra_daemon_keys.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let _ = writeln!(s, "{line}");
        }
        for i in 0..self.feeds() {
            for k in 0..mirrors {
                let _ = writeln!(
                    s,
                    "\n[[source]]\nid = \"{}\"\nurl = \"http://{addr}{}\"\ntitle = {}\ntags = [\"farm\"]",
                    self.mirror_source_id(i, k),
                    self.mirror_path(i, k),
                    toml_string(self.title(i))
                );
            }
        }
        Ok(s)
    }

    /// Config source id of feed `i` reached through mirror URL `k` (`farm-0042-via3`).
    pub fn mirror_source_id(&self, i: usize, k: usize) -> String {
        format!("{}-via{k}", self.source_id(i))
    }

    /// URL path and query of feed `i` through mirror `k` (`/feed/42.xml?via=3`).
    pub fn mirror_path(&self, i: usize, k: usize) -> String {
        format!("{}?via={k}", self.path(i))
    }

    /// Writes [`Farm::config_toml`] to `path`.
    pub fn write_config(&self, path: &Path, db_path: &Path, extra_daemon_keys: &str) -> io::Result<()> {
        std::fs::write(path, self.config_toml(db_path, extra_daemon_keys)?)
    }

    /// Writes an OPML subscription list of the farm (for other readers), after [`Farm::serve`].
    pub fn write_opml(&self, path: &Path) -> io::Result<()> {
        self.addr().ok_or_else(|| io::Error::other("the farm is not being served: call Farm::serve first"))?;
        let mut s = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\"><head><title>newsdesk feed farm</title></head><body>\n",
        );
        for i in 0..self.feeds() {
            let kind = if self.format(i) == Format::Rss { "rss" } else { "atom" };
            let _ = writeln!(
                s,
                "<outline type=\"{kind}\" text=\"{t}\" title=\"{t}\" xmlUrl=\"{}\"/>",
                self.url(i).unwrap_or_default(),
                t = xml_escape(self.title(i))
            );
        }
        s.push_str("</body></opml>\n");
        std::fs::write(path, s)
    }

    /// Serves the farm on `127.0.0.1:0` from a background thread (its own single-threaded
    /// tokio runtime, so it takes at most one core). The server stops when the returned
    /// handle is dropped. A farm is served at most once.
    pub fn serve(&self) -> io::Result<(SocketAddr, FarmServer)> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        self.inner.addr.set(addr).map_err(|_| io::Error::other("this farm is already being served"))?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let inner = self.inner.clone();
        let thread = std::thread::Builder::new().name("feed-farm".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("feed farm: cannot start a runtime: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("feed farm: {e}");
                        return;
                    }
                };
                let accept = async {
                    loop {
                        match listener.accept().await {
                            Ok((sock, _)) => {
                                inner.counters.connections.fetch_add(1, Relaxed);
                                tokio::spawn(connection(sock, inner.clone()));
                            }
                            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime cancels every open connection.
            rt.shutdown_timeout(Duration::from_secs(1));
        })?;
        Ok((addr, FarmServer { stop: Some(stop_tx), thread: Some(thread) }))
    }
}

/// The running server; dropping it stops the server and closes its connections.
pub struct FarmServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FarmServer {
    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FarmServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ------------------------------------------------------------------------------- HTTP

struct Request {
    method: String,
    path: String,
    keep_alive: bool,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
}

/// Reads one request head; `Ok(None)` on a clean close before it.
async fn read_head<R: tokio::io::AsyncBufRead + Unpin>(rd: &mut R) -> io::Result<Option<Request>> {
    let mut line = String::new();
    let mut total = 0;
    // Request line (tolerating stray empty lines before it, as RFC 9112 allows).
    loop {
        line.clear();
        let n = rd.read_line(&mut line).await?;
        if n == 0 {
            return Ok(None);
        }
        total += n;
        if !line.trim().is_empty() {
            break;
        }
        if total > 1024 {
            return Err(io::Error::other("garbage before the request line"));
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("/").to_string();
    let version = parts.next().unwrap_or("HTTP/1.0").to_string();
    let mut req =
        Request { method, path, keep_alive: version == "HTTP/1.1", if_none_match: None, if_modified_since: None };
    let mut content_length = 0usize;
    loop {
        line.clear();
        let n = rd.read_line(&mut line).await?;
        total += n;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if total > 64 * 1024 {
            return Err(io::Error::other("request head too large"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else { continue };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "connection" => {
                let v = v.to_ascii_lowercase();
                if v.contains("close") {
                    req.keep_alive = false;
                } else if v.contains("keep-alive") {
                    req.keep_alive = true;
                }
            }
            "if-none-match" => req.if_none_match = Some(v.to_string()),
            "if-modified-since" => req.if_modified_since = Some(v.to_string()),
            "content-length" => content_length = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    // A body on a GET is unusual; skip it so the connection stays in step.
    if content_length > 0 {
        let mut left = content_length;
        while left > 0 {
            let buf = rd.fill_buf().await?;
            if buf.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = buf.len().min(left);
            rd.consume(n);
            left -= n;
        }
    }
    Ok(Some(req))
}

async fn connection(sock: TcpStream, inner: Arc<Inner>) {
    let _ = sock.set_nodelay(true);
    let (rd, mut wr) = sock.into_split();
    let mut rd = BufReader::new(rd);
    loop {
        let req = match tokio::time::timeout(IDLE_TIMEOUT, read_head(&mut rd)).await {
            Ok(Ok(Some(r))) => r,
            _ => return,
        };
        let (status, head, body) = respond(&inner, &req);
        if inner.recording.load(Relaxed) {
            let entry = LoggedRequest { at: Instant::now(), target: req.path.clone(), status };
            inner.log.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
        }
        let ok = async {
            wr.write_all(head.as_bytes()).await?;
            if let Some(b) = &body {
                wr.write_all(b).await?;
            }
            wr.flush().await
        };
        if tokio::time::timeout(IDLE_TIMEOUT, ok).await.map_or(true, |r| r.is_err()) || !req.keep_alive {
            let _ = wr.shutdown().await;
            return;
        }
    }
}

fn respond(inner: &Inner, req: &Request) -> (u16, String, Option<Arc<Vec<u8>>>) {
    let c = &inner.counters;
    let conn = if req.keep_alive { "keep-alive" } else { "close" };
    if req.method != "GET" && req.method != "HEAD" {
        c.other.fetch_add(1, Relaxed);
        return (
            405,
            format!("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nConnection: {conn}\r\n\r\n"),
            None,
        );
    }
    let path = req.path.split('?').next().unwrap_or("");
    let index = path.strip_prefix("/feed/").and_then(|s| s.strip_suffix(".xml")).and_then(|s| s.parse::<usize>().ok());
    let Some(feed) = index.and_then(|i| inner.feeds.get(i).map(|f| (i, f))) else {
        c.not_found.fetch_add(1, Relaxed);
        return (
            404,
            format!("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: {conn}\r\n\r\nnot found\n"),
            None,
        );
    };
    let (i, feed) = feed;
    let doc = feed.read().unwrap().doc.clone();
    // If-None-Match wins over If-Modified-Since (RFC 9110, 13.2.2).
    let fresh = match (&req.if_none_match, &req.if_modified_since) {
        (Some(inm), _) => inm.trim() == "*" || inm.split(',').any(|t| weak(t.trim()) == weak(&doc.etag)),
        (None, Some(ims)) => parse_http_date(ims).is_some_and(|t| t >= doc.last_modified),
        (None, None) => false,
    };
    let validators = format!("ETag: {}\r\nLast-Modified: {}\r\n", doc.etag, doc.last_modified_http);
    if fresh {
        c.not_modified.fetch_add(1, Relaxed);
        return (304, format!("HTTP/1.1 304 Not Modified\r\n{validators}Connection: {conn}\r\n\r\n"), None);
    }
    c.ok.fetch_add(1, Relaxed);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n{validators}Connection: {conn}\r\n\r\n",
        inner.outlets[i].format.content_type(),
        doc.body.len()
    );
    if req.method == "HEAD" {
        return (200, head, None);
    }
    c.body_bytes.fetch_add(doc.body.len() as u64, Relaxed);
    (200, head, Some(doc.body.clone()))
}

fn weak(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

fn parse_http_date(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(s.trim()).ok().map(|d| d.timestamp())
}

fn http_date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn rfc2822(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn ymd(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().format("%Y/%m/%d").to_string()
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

// ------------------------------------------------------------------------------- generation

fn outlet(seed: u64, i: usize) -> Outlet {
    let mut r = Rng::at(seed, i as u64, u64::MAX, 0);
    let home = r.pick(PLACES);
    let word = r.pick(OUTLET_WORDS);
    let name = format!("The {home} {word}");
    let slug: String =
        format!("{home}{word}").chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect();
    Outlet {
        name,
        host: format!("www.{slug}{i}.example"),
        format: if i % 2 == 0 { Format::Rss } else { Format::Atom },
        cdata: (i / 2) % 2 == 0,
        teaser: r.chance(0.3),
        step_min: r.range(15, 90) as i64,
        home,
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').chars().take(60).collect()
}

/// One generated article.
struct Article {
    /// Plain-text title (not yet escaped for XML; may contain `&` and `’`).
    title: String,
    link: String,
    guid: String,
    author: String,
    section: &'static str,
    teaser_html: String,
    html: String,
}

/// A news event several outlets may report on. Its names are partly real (the word lists)
/// and partly made up ([`lexeme`], syllables), so the farm's vocabulary grows with its size
/// the way real news does, and unrelated articles share mostly common words.
struct Event {
    person: String,
    place: String,
    org: &'static str,
    /// What it is about: `provincial fertiliser`, `fuel price cut`.
    subject: String,
    /// A made-up proper noun: `Tarvelo Holdings`, `Mirasol Dam`.
    thing: String,
    /// Two words specific to this event.
    keys: [String; 2],
    verb: &'static str,
    amount: usize,
}

/// Shared events per 3-hour news cycle; coverage falls off as 1/rank (Zipf), so a few big
/// stories are carried by hundreds of outlets and most by two or three.
const EVENTS_PER_CYCLE: u64 = 200;
/// Share of items about an event no other outlet covers.
const P_UNIQUE: f64 = 0.45;
/// Share of the other items that are a wire copy (the same text as other outlets carry).
const P_WIRE_COPY: f64 = 0.05;

const SYLLABLES: &[&str] = &[
    "ka", "ro", "mi", "ten", "vas", "lo", "zhi", "dor", "an", "bel", "cu", "dra", "el", "fi", "gor", "ha", "is", "jun",
    "kel", "lum", "mar", "nov", "os", "pel", "quin", "ras", "sol", "tav", "ur", "vel", "wen", "yar", "zo", "bra",
    "che", "dun", "esk", "fal", "gri", "hol", "ith", "jor", "kra", "lin", "mos", "nar", "ost", "pra",
];

const KINDS: &[&str] = &[
    "Holdings",
    "Dam",
    "Bill",
    "Corridor",
    "Fund",
    "Refinery",
    "Accord",
    "Field",
    "Power Plant",
    "Airport",
    "Motorway",
    "Port",
    "Group",
    "Commission",
    "Pipeline",
    "Steel",
    "Bank",
    "Textiles",
    "Solar Park",
    "Barrage",
];

const NOUNS: &[&str] = &[
    "inflation",
    "exports",
    "imports",
    "output",
    "demand",
    "growth",
    "spending",
    "revenue",
    "reserves",
    "prices",
    "wages",
    "rents",
    "tariffs",
    "subsidies",
    "loans",
    "bonds",
    "shares",
    "remittances",
    "harvest",
    "rainfall",
    "turnout",
    "unemployment",
    "investment",
    "production",
    "consumption",
    "capacity",
    "shipments",
    "traffic",
    "enrolment",
    "admissions",
    "arrests",
    "protests",
    "strikes",
    "outages",
    "shortages",
    "deliveries",
    "sales",
    "profits",
    "losses",
    "debt",
    "deficit",
    "surplus",
    "budget",
    "currency",
    "interest",
    "borrowing",
    "lending",
    "construction",
    "tourism",
    "fishing",
    "mining",
    "freight",
    "aviation",
    "shipping",
    "telecoms",
    "healthcare",
    "education",
    "housing",
    "water supply",
    "sanitation",
    "security",
    "policing",
    "irrigation",
    "fertiliser",
];

const ADJS: &[&str] = &[
    "rising",
    "falling",
    "record",
    "modest",
    "sharp",
    "steady",
    "weak",
    "strong",
    "unexpected",
    "seasonal",
    "annual",
    "quarterly",
    "provisional",
    "revised",
    "domestic",
    "foreign",
    "regional",
    "federal",
    "provincial",
    "municipal",
    "private",
    "public",
    "informal",
    "industrial",
    "agricultural",
    "urban",
    "rural",
    "coastal",
    "northern",
    "southern",
    "eastern",
    "western",
    "long-term",
    "short-term",
    "fragile",
    "stubborn",
    "renewed",
    "growing",
];

const VERBS_PAST: &[&str] = &[
    "rose",
    "fell",
    "climbed",
    "dropped",
    "slowed",
    "recovered",
    "doubled",
    "halved",
    "stalled",
    "surged",
    "eased",
    "widened",
    "narrowed",
    "jumped",
    "slipped",
    "held steady",
    "picked up",
    "levelled off",
];

const VERBS_BASE: &[&str] = &[
    "ease",
    "strain",
    "support",
    "undermine",
    "boost",
    "slow",
    "reshape",
    "delay",
    "complicate",
    "lift",
    "squeeze",
    "stabilise",
    "weigh on",
    "test",
    "help",
    "hurt",
];

const ROLES: &[&str] = &[
    "senior economist",
    "spokesperson",
    "director",
    "analyst",
    "former minister",
    "professor",
    "chief executive",
    "union leader",
    "trader",
    "researcher",
    "lawmaker",
    "district official",
];

const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const PERIODS: &[&str] = &["months", "quarters", "weeks", "years", "fiscal year", "winter", "harvest season"];

const QUOTES: &[&str] = &[
    "We are not going to let this drag on for another year",
    "The numbers speak for themselves",
    "Nobody has explained where the money will come from",
    "This is a first step, not the last",
    "We were given no warning at all",
    "It&#8217;s too early to say what the impact will be",
    "Families here simply can&#8217;t afford it any more",
    "The process has been transparent from day one",
    "We need clarity, and we need it quickly",
    "There is no plan B",
];

fn pseudo(r: &mut Rng, syllables: usize) -> String {
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(r.pick(SYLLABLES));
    }
    capitalise(&w)
}

fn event(seed: u64, id: u64) -> Event {
    let mut r = Rng::at(seed, id, u64::MAX - 1, 11);
    let person = if r.chance(0.15) {
        r.pick(PEOPLE).to_string()
    } else {
        let n = r.range(2, 3);
        format!("{} {}", pseudo(&mut r, 2), pseudo(&mut r, n))
    };
    let place = if r.chance(0.3) { r.pick(PLACES).to_string() } else { pseudo(&mut r, 3) };
    let n = r.range(2, 3);
    let thing = format!("{} {}", pseudo(&mut r, n), r.pick(KINDS));
    let keys = [lexeme(r.below(LEXICON)), lexeme(r.below(LEXICON))];
    Event {
        person,
        place,
        org: r.pick(ORGS),
        subject: format!("{} {}", r.pick(ADJS), r.pick(NOUNS)),
        thing,
        keys,
        verb: r.pick(VERBS),
        amount: r.range(2, 950),
    }
}

/// Size of the made-up lexicon.
const LEXICON: usize = 20_000;

/// Word `i` of a made-up lexicon (lowercase, 2 to 4 syllables).
fn lexeme(i: usize) -> String {
    let mut r = Rng::at(0x1e81_c0de, i as u64, 0, 0);
    let mut w = String::new();
    for _ in 0..2 + i % 3 {
        w.push_str(r.pick(SYLLABLES));
    }
    w
}

/// A lexicon word with Zipf-distributed rank: a few are common, most are rare, as in prose.
fn word(r: &mut Rng) -> String {
    let rank = (((LEXICON + 1) as f64).powf(r.unit()) as usize).saturating_sub(1).min(LEXICON - 1);
    lexeme(rank)
}

/// The event item `it` of `feed` reports, and whether it is a wire copy.
fn event_of(seed: u64, feed: usize, it: ItemRef) -> (u64, bool) {
    let mut r = Rng::at(seed, feed as u64, it.serial, 5);
    if r.chance(P_UNIQUE) {
        return ((1 << 62) | ((feed as u64) << 32) | it.serial, false);
    }
    let cycle = it.published.div_euclid(3 * 3600) as u64;
    // 1/rank: rank = floor((K + 1)^u) - 1 is distributed ~ 1/(rank + 1).
    let rank = (((EVENTS_PER_CYCLE + 1) as f64).powf(r.unit()) as u64).saturating_sub(1).min(EVENTS_PER_CYCLE - 1);
    (cycle * 1000 + rank, r.chance(P_WIRE_COPY))
}

fn article(seed: u64, feed: usize, o: &Outlet, it: ItemRef) -> Article {
    let (event_id, wire) = event_of(seed, feed, it);
    let e = event(seed, event_id);
    // A wire copy takes its words from the event alone, so every outlet carrying it prints
    // the same text; otherwise each outlet words the story its own way.
    let mut r = if wire { Rng::at(seed, event_id, 0, 13) } else { Rng::at(seed, feed as u64, it.serial, 7) };
    let (person, place, org, subject, thing, verb) = (&e.person, &e.place, e.org, &e.subject, &e.thing, e.verb);
    let [k1, k2] = &e.keys;
    let w = word(&mut r);
    let title = match r.below(7) {
        0 => format!("{person} {verb} {k1} {subject}"),
        1 => format!("{thing} {verb} {k2} {subject} in {place}"),
        2 => format!("{place}: {k1} {subject} {} {w}", r.pick(VERBS_PAST)),
        3 => format!("{} {verb} {thing} over {k1} {subject}", capitalise(org)),
        4 => format!("{person} {verb} {org} on {k2} {subject}"),
        5 => format!("{}: {person} {verb} ${}m {k1} & {k2}", capitalise(subject), e.amount),
        _ => format!("{person}\u{2019}s {k2} {subject} {} {w}", r.pick(VERBS_PAST)),
    };
    let mut own = Rng::at(seed, feed as u64, it.serial, 8);
    let section = own.pick(SECTIONS);
    let slug = slugify(&title);
    let date = ymd(it.published);
    let mut link = format!("https://{}/{section}/{date}/{slug}-{}-{}", o.host, feed, it.serial);
    if own.chance(0.25) {
        link.push_str("?utm_source=rss&utm_medium=feed");
    }
    let guid = if own.chance(0.5) { link.clone() } else { format!("{}-{}", o.host, it.serial) };
    let author =
        if wire { "Wire staff".to_string() } else { format!("{} {}", pseudo(&mut own, 2), pseudo(&mut own, 2)) };
    let target = r.range(1350, 1850);
    let html = article_html(&mut r, o, &e, section, target);
    let teaser_html = format!(
        "<p>{} {} the {subject} on {}, {}</p>",
        capitalise(person),
        verb,
        weekday(it.published),
        generic(&mut r, place)
    );
    Article { title, link, guid, author, section, teaser_html, html }
}

fn weekday(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().format("%A").to_string()
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// A sentence about the event.
fn about(r: &mut Rng, e: &Event) -> String {
    let (person, place, org, subject, thing) = (&e.person, &e.place, e.org, &e.subject, &e.thing);
    let [k1, k2] = &e.keys;
    let w = word(r);
    match r.below(8) {
        0 => format!(
            "{person} told reporters in {place} that the {k1} {subject} would go ahead &#8220;as planned&#8221;, despite objections from {org} and the {w} lobby."
        ),
        1 => format!(
            "According to {} in {place}, the {thing} {subject} could cost up to ${}.{} billion &mdash; far more than the {k2} estimate.",
            r.pick(SOURCES),
            e.amount / 100 + 1,
            e.amount % 10
        ),
        2 => format!(
            "&#8220;We won&#8217;t accept {k1} terms that hurt {w} families,&#8221; {person} said, adding that {org} had been kept informed about {thing}."
        ),
        3 => format!(
            "The {thing} figures, released by {org} on {}, show {k2} {} {}.{}% compared with the same period last year.",
            r.pick(&["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]),
            r.pick(VERBS_PAST),
            e.amount % 19 + 1,
            e.amount % 7
        ),
        4 => format!(
            "In {place}, {} said the {k1} {subject} was &#8220;long overdue&#8221; but warned that {w} &amp; oversight of {thing} would be key.",
            r.pick(SOURCES)
        ),
        5 => format!(
            "Some {} questioned whether {org} could deliver the {k2} {subject} before the&nbsp;deadline set by {person}.",
            r.pick(SOURCES)
        ),
        6 => format!(
            "{thing} {} {} the {k1} {subject} worth ${} million, {person} said in {place}.",
            e.verb,
            r.pick(&["after it defended", "as it signed off", "having revised", "as it paused"]),
            e.amount
        ),
        _ => format!(
            "The {k2} {subject} is the latest {w} measure announced since {person} took office, and {thing} is expected to be central to it."
        ),
    }
}

/// A sentence of background, unrelated to any one event.
fn generic(r: &mut Rng, place: &str) -> String {
    let (w1, w2) = (word(r), word(r));
    match r.below(8) {
        0 => format!(
            "{} {w1} {} in {place} {} by {}.{}% in {}, according to {w2} {}.",
            capitalise(r.pick(ADJS)),
            r.pick(NOUNS),
            r.pick(VERBS_PAST),
            r.range(1, 30),
            r.below(10),
            r.pick(MONTHS),
            r.pick(SOURCES)
        ),
        1 => format!(
            "{} expect {} {w1} {} to {} {w2} {} over the coming {}.",
            capitalise(r.pick(SOURCES)),
            r.pick(ADJS),
            r.pick(NOUNS),
            r.pick(VERBS_BASE),
            r.pick(NOUNS),
            r.pick(PERIODS)
        ),
        2 => format!(
            "&#8220;{},&#8221; said {} {}, a {} at {} {}.",
            r.pick(QUOTES),
            pseudo(r, 2),
            pseudo(r, 3),
            r.pick(ROLES),
            pseudo(r, 3),
            r.pick(KINDS)
        ),
        3 => format!(
            "Last {}, {} {} {} {w1} {} worth ${} million for {w2}.",
            r.pick(&["week", "month", "year", "quarter"]),
            r.pick(ORGS),
            r.pick(&["announced", "approved", "cancelled", "postponed"]),
            r.pick(&["a", "a new", "a revised", "an emergency"]),
            r.pick(NOUNS),
            r.range(5, 900)
        ),
        4 => format!("{} in {w1}.", r.pick(FILLER)),
        5 => format!(
            "The {} {w1} {} and the {} remain {} &mdash; a gap that {w2} {} say could {} {place}&#8217;s {}.",
            r.pick(ADJS),
            r.pick(NOUNS),
            r.pick(NOUNS),
            r.pick(&["unresolved", "contested", "under review", "in doubt"]),
            r.pick(SOURCES),
            r.pick(VERBS_BASE),
            r.pick(NOUNS)
        ),
        6 => format!(
            "Data from {} showed {w1} {} {} to {}.{} {} in {}.",
            r.pick(ORGS),
            r.pick(NOUNS),
            r.pick(VERBS_PAST),
            r.range(1, 99),
            r.below(10),
            r.pick(&["million tonnes", "billion rupees", "per cent", "gigawatt-hours", "million barrels"]),
            r.pick(MONTHS)
        ),
        _ => format!("{}, {w1} {} said.", r.pick(FILLER), r.pick(SOURCES)),
    }
}

fn sentence(r: &mut Rng, e: &Event) -> String {
    if r.chance(0.4) {
        about(r, e)
    } else {
        generic(r, &e.place)
    }
}

fn article_html(r: &mut Rng, o: &Outlet, e: &Event, section: &str, target: usize) -> String {
    let (person, place) = (&e.person, &e.place);
    let mut h = String::with_capacity(target + 600);
    let _ = writeln!(h, "<p><strong>{}:</strong> {} {}</p>", place.to_uppercase(), about(r, e), about(r, e));
    let mut n = 0;
    while h.len() < target {
        n += 1;
        match r.below(12) {
            0 if n > 1 => {
                let _ = writeln!(
                    h,
                    "<figure><img src=\"/images/{section}/{}.jpg\" alt=\"{person} in {place}\" width=\"800\" height=\"450\" loading=\"lazy\"><figcaption>{person} in {place}. Photo: {}</figcaption></figure>",
                    r.next_u64() % 1_000_000,
                    r.pick(&["Reuters", "AFP", "AP", "file"])
                );
            }
            1 => {
                let _ = writeln!(
                    h,
                    "<blockquote><p>&#8220;{}&#8221;</p><p>&mdash; {person}</p></blockquote>",
                    r.pick(QUOTES)
                );
            }
            2 => {
                let _ = writeln!(
                    h,
                    "<p>Read more: <a href=\"/{section}/{}/{}\">{}</a> &middot; <a href=\"../topics/{}\">More on {}</a></p>",
                    r.range(2023, 2025),
                    slugify(r.pick(SUBJECTS)),
                    capitalise(r.pick(SUBJECTS)),
                    slugify(place),
                    place
                );
            }
            3 => {
                let _ = writeln!(
                    h,
                    "<h2>{}</h2>\n<ul><li>{}</li><li>{}</li><li>{}</li></ul>",
                    r.pick(&["What happens next", "Key points", "Background", "Reaction"]),
                    generic(r, place),
                    about(r, e),
                    generic(r, place)
                );
            }
            4 if r.chance(0.35) => {
                // Embeds and trackers: the sanitiser must remove these.
                match r.below(4) {
                    0 => h.push_str("<blockquote class=\"twitter-tweet\"><p lang=\"en\" dir=\"ltr\">Statement on today&#8217;s decision.</p>&mdash; Ministry (@ministry) <a href=\"https://twitter.com/ministry/status/1\">2024</a></blockquote><script async src=\"https://platform.twitter.com/widgets.js\" charset=\"utf-8\"></script>\n"),
                    1 => h.push_str("<script>window.dataLayer = window.dataLayer || []; dataLayer.push({'event': 'article_view', 'section': 'news'});</script>\n"),
                    2 => h.push_str("<iframe width=\"560\" height=\"315\" src=\"https://www.youtube.com/embed/dQw4w9WgXcQ\" frameborder=\"0\" allowfullscreen></iframe>\n"),
                    _ => {
                        let _ = writeln!(
                            h,
                            "<p style=\"font-weight:bold;color:#c00\" onclick=\"track('promo')\">Subscribe to the {} newsletter <a href=\"javascript:void(0)\">here</a>.</p>",
                            o.name
                        );
                    }
                }
            }
            5 => {
                let _ = writeln!(
                    h,
                    "<p>{} <a href=\"https://www.{}.example/{}/{}\" target=\"_blank\">{}</a> {}</p>",
                    sentence(r, e),
                    slugify(r.pick(PLACES)).replace('-', ""),
                    r.pick(SECTIONS),
                    r.next_u64() % 100_000,
                    r.pick(&["earlier this week", "in a statement", "last month", "on its website"]),
                    sentence(r, e)
                );
            }
            _ => {
                let k = r.range(2, 3);
                h.push_str("<p>");
                for j in 0..k {
                    if j > 0 {
                        h.push(' ');
                    }
                    let s = sentence(r, e);
                    if r.chance(0.15) {
                        let _ = write!(h, "<em>{s}</em>");
                    } else {
                        h.push_str(&s);
                    }
                }
                h.push_str("</p>\n");
            }
        }
    }
    h
}

fn render(seed: u64, feed: usize, o: &Outlet, items: &VecDeque<ItemRef>, last_modified: i64) -> Arc<Doc> {
    let mut s = String::with_capacity(items.len() * 2700 + 1024);
    let site = format!("https://{}/", o.host);
    let name = xml_escape(&o.name);
    match o.format {
        Format::Rss => {
            let _ = writeln!(
                s,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" xmlns:atom=\"http://www.w3.org/2005/Atom\">\n<channel>\n<title>{name}</title>\n<link>{site}</link>\n<description>Latest news from {name}</description>\n<language>en</language>\n<lastBuildDate>{}</lastBuildDate>\n<generator>newsdesk feed farm</generator>",
                rfc2822(last_modified)
            );
            for it in items {
                let a = article(seed, feed, o, *it);
                let wrap = |html: &str| {
                    if o.cdata {
                        format!("<![CDATA[{html}]]>")
                    } else {
                        xml_escape(html)
                    }
                };
                let permalink = a.guid == a.link;
                let _ = writeln!(
                    s,
                    "<item>\n<title>{}</title>\n<link>{}</link>\n<guid isPermaLink=\"{permalink}\">{}</guid>\n<pubDate>{}</pubDate>\n<dc:creator>{}</dc:creator>\n<category>{}</category>",
                    xml_escape(&a.title).replace('\u{2019}', "&#8217;"),
                    xml_escape(&a.link),
                    xml_escape(&a.guid),
                    rfc2822(it.published),
                    xml_escape(&a.author),
                    capitalise(a.section)
                );
                if o.teaser {
                    let _ = writeln!(
                        s,
                        "<description>{}</description>\n<content:encoded>{}</content:encoded>",
                        wrap(&a.teaser_html),
                        wrap(&a.html)
                    );
                } else {
                    let _ = writeln!(s, "<description>{}</description>", wrap(&a.html));
                }
                s.push_str("</item>\n");
            }
            s.push_str("</channel>\n</rss>\n");
        }
        Format::Atom => {
            let _ = writeln!(
                s,
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"en\">\n<title>{name}</title>\n<subtitle>Latest news from {name}</subtitle>\n<link rel=\"alternate\" type=\"text/html\" href=\"{site}\"/>\n<id>{site}</id>\n<updated>{}</updated>\n<generator>newsdesk feed farm</generator>",
                rfc3339(last_modified)
            );
            for it in items {
                let a = article(seed, feed, o, *it);
                let _ = writeln!(
                    s,
                    "<entry>\n<title type=\"html\">{}</title>\n<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n<id>tag:{},2024:{}</id>\n<published>{}</published>\n<updated>{}</updated>\n<author><name>{}</name></author>\n<category term=\"{}\"/>",
                    xml_escape(&xml_escape(&a.title)),
                    xml_escape(&a.link),
                    o.host,
                    it.serial,
                    rfc3339(it.published),
                    rfc3339(it.published),
                    xml_escape(&a.author),
                    a.section
                );
                if o.teaser {
                    let _ = writeln!(s, "<summary type=\"html\">{}</summary>", xml_escape(&a.teaser_html));
                }
                let _ = writeln!(s, "<content type=\"html\">{}</content>\n</entry>", xml_escape(&a.html));
            }
            s.push_str("</feed>\n");
        }
    }
    let body = s.into_bytes();
    let etag = format!("\"{:016x}-{}\"", fnv1a(&body), body.len());
    Arc::new(Doc { etag, last_modified, last_modified_http: http_date(last_modified), body: Arc::new(body) })
}
