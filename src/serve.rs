//! Serve: the HTTP side of the daemon. Read-only; answers topic feeds from rendered bytes
//! cached per topic and format (plain and gzip), with `ETag` / `Last-Modified` / 304, HEAD,
//! and `Vary: Accept-Encoding`; plus the HTML index, OPML, `/healthz` and `/metrics`.
//!
//! A cached topic is rebuilt (select + render all formats + gzip, off the async threads) when
//! the store's generation moved (our own commits, or another process's, which the writer
//! notices within a second through `PRAGMA data_version` on its own connection, so
//! `newsdesk fetch` next to a running daemon shows up), the config was swapped, or
//! [`MAX_AGE`] passed: windows slide and coverage decays with time alone. Rebuilds run in a
//! background refresher, one at a time and at most every `REBUILD_EVERY` (2 s) per topic; readers
//! get the previous bytes meanwhile and wait only for a topic's very first build. Rebuilt
//! bytes that did not change keep their ETag and Last-Modified, so clients keep getting 304s.
//!
//! Serving yields to polling: the HTTP workers and the feed builder thread (where rebuilds
//! run) are at [`SERVE_NICE`]. Bodies of 16 KB and more go out with `sendfile(2)` from an
//! unnamed file next to the database (`serve/sendfile.rs`), not copied into the socket per
//! request; a rebuild that renders the same bytes keeps them, their gzip form and that file.
//!
//! `run(listener, state, shutdown)` takes its listener and shutdown signal from the caller
//! (mini-redis style), so tests bind `127.0.0.1:0`; it runs its own accept loop over hyper.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::store::db::Connection;
use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::config::{Config, TopicConfig};
use crate::metrics::METRICS;
use crate::render::{self, Format};
use crate::select::StoryView;
use crate::store::{queries, Store};

mod pages;
mod sendfile;

/// A cached feed older than this is rebuilt even when nothing was stored: topic windows
/// slide and coverage scores decay with time.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// The scheduler is considered dead when its last tick is older than this.
pub const HEARTBEAT_LIMIT: i64 = 120;

/// A stale topic is rebuilt at most this often (its previous bytes are served meanwhile).
pub(crate) const REBUILD_EVERY: Duration = Duration::from_secs(2);

/// What clients may cache: a minute, then revalidate (cheap: 304).
const CACHE_CONTROL: &str = "public, max-age=60";

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long requests in flight may run after shutdown was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Idle reader connections kept for reuse.
const READER_POOL: usize = 4;

pub use crate::priority::SERVE_NICE;

/// Everything the HTTP handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database (only its readers are used here).
    pub store: Store,
    /// The running configuration; the daemon swaps the inner `Arc` on reload.
    pub config: Arc<RwLock<Arc<Config>>>,
    /// Unix seconds of the scheduler's last tick (0: not started yet).
    pub heartbeat: Arc<AtomicI64>,
    /// WebSub pushes, when `[websub]` is configured (`POST /websub` needs `serve_hub`).
    pub websub: Option<Arc<crate::push::websub::WebSub>>,
    cache: Arc<Cache>,
}

impl AppState {
    /// State over a store, the shared config and the scheduler's heartbeat.
    pub fn new(store: Store, config: Arc<RwLock<Arc<Config>>>, heartbeat: Arc<AtomicI64>) -> AppState {
        let cache = Cache {
            topics: RwLock::default(),
            readers: Mutex::default(),
            rebuilds: tokio::sync::Semaphore::new(1),
            builder: Mutex::default(),
            story_pages: RwLock::default(),
            search_pages: RwLock::default(),
            searches: Mutex::default(),
            digests: RwLock::default(),
            changes: tokio::sync::broadcast::channel(CHANGES_QUEUE).0,
            style: std::sync::OnceLock::new(),
            files: match store.path().parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                _ => PathBuf::from("."),
            },
        };
        AppState { store, config, heartbeat, websub: None, cache: Arc::new(cache) }
    }

    /// The running configuration.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every later topic rebuild whose bytes changed (and each topic's first build). While
    /// anyone listens, every configured topic is kept built (not only those requested), so
    /// a change is seen within a few seconds of the commit that made it. A listener that
    /// falls more than [`CHANGES_QUEUE`] changes behind misses the oldest (it is told so by
    /// `RecvError::Lagged`, and takes the next change of each topic as the current state).
    pub fn topic_changes(&self) -> tokio::sync::broadcast::Receiver<crate::push::TopicChange> {
        self.cache.changes.subscribe()
    }

    /// Runs `f` on a pooled reader connection, off the async threads.
    async fn read<R, F>(&self, f: F) -> anyhow::Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> anyhow::Result<R> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || state.read_now(f)).await.context("database read task")?
    }

    /// Runs `f` on a pooled reader connection on the feed builder thread, which runs at
    /// [`SERVE_NICE`]: topic builds (select, render, gzip of a whole window) are the heaviest
    /// thing serving does, and must not take the cores a poll is waiting for.
    async fn build<R, F>(&self, f: F) -> anyhow::Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> anyhow::Result<R> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let state = self.clone();
        let job: BuildJob = Box::new(move || {
            let _ = tx.send(state.read_now(f));
        });
        let job = match self.builder_queue() {
            Some(queue) => match queue.send(job) {
                Ok(()) => None,
                Err(std::sync::mpsc::SendError(job)) => Some(job),
            },
            None => Some(job),
        };
        if let Some(job) = job {
            // No builder thread: build on the blocking pool rather than not at all.
            tokio::task::spawn_blocking(job).await.context("feed build task")?;
        }
        rx.await.context("the feed builder stopped")?
    }

    /// The builder thread's queue; starts the thread the first time.
    fn builder_queue(&self) -> Option<std::sync::mpsc::Sender<BuildJob>> {
        let mut slot = self.cache.builder.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            let (tx, rx) = std::sync::mpsc::channel::<BuildJob>();
            let spawned = std::thread::Builder::new().name("feed-build".into()).spawn(move || {
                crate::priority::at_least(SERVE_NICE);
                // Ends when the cache, which holds the sender, is gone.
                while let Ok(job) = rx.recv() {
                    job();
                }
            });
            match spawned {
                Ok(_) => *slot = Some(tx),
                Err(e) => tracing::warn!("starting the feed builder thread: {e}"),
            }
        }
        slot.clone()
    }

    fn read_now<R>(&self, f: impl FnOnce(&Connection) -> anyhow::Result<R>) -> anyhow::Result<R> {
        let conn = match self.cache.readers.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            Some(c) => c,
            None => self.store.reader()?,
        };
        let out = f(&conn);
        let mut pool = self.cache.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < READER_POOL {
            pool.push(conn);
        }
        out
    }

    /// A number that changes whenever stored content may have changed, from this process or
    /// another one (the writer watches for other processes' commits).
    fn content_version(&self) -> u64 {
        self.store.generation()
    }
}

struct Cache {
    topics: RwLock<HashMap<String, Arc<TopicFeeds>>>,
    readers: Mutex<Vec<Connection>>,
    /// At most one topic rebuild at a time: each one reads and renders a whole window, and
    /// running them side by side only takes the cores the polls need.
    rebuilds: tokio::sync::Semaphore,
    /// The feed builder thread's queue, started on first use (see [`AppState::build`]).
    builder: Mutex<Option<std::sync::mpsc::Sender<BuildJob>>>,
    /// Rendered story pages by id (see `pages`).
    story_pages: RwLock<HashMap<i64, Arc<pages::StoryPage>>>,
    /// Topic rebuilds that changed bytes, for push consumers (see [`AppState::topic_changes`]).
    changes: tokio::sync::broadcast::Sender<crate::push::TopicChange>,
    /// Rendered search answers (see `pages`).
    search_pages: RwLock<HashMap<pages::SearchKey, Arc<pages::StoryPage>>>,
    /// Search feeds watched for push consumers (see `pages::watch_searches`).
    searches: Mutex<pages::Watched>,
    /// Rendered digest feeds by topic id.
    digests: RwLock<HashMap<String, Arc<DigestFeeds>>>,
    /// The stylesheet, prepared on first request.
    style: std::sync::OnceLock<Rendered>,
    /// Where rendered bodies get their sendable copies: the database's directory, which the
    /// daemon can always write to (see `sendfile`).
    files: PathBuf,
}

pub use pages::HEALTH_ENTRIES;

type BuildJob = Box<dyn FnOnce() + Send>;

/// Topic changes a slow push consumer may be behind by before it misses some.
pub const CHANGES_QUEUE: usize = 256;

/// One topic rendered in every format, and as its HTML page.
struct TopicFeeds {
    version: u64,
    config: Arc<Config>,
    built: Instant,
    formats: [Rendered; 3],
    /// `Link: <hub>; rel="hub", <self>; rel="self"` per format (`None` without hubs).
    links: [Option<HeaderValue>; 3],
    /// The topic's page (`/topics/{id}`).
    page: Rendered,
    /// The front page (`/`), when this is the front topic.
    front: Option<Rendered>,
    /// What was published, for story pages ("in these topics") and embeds.
    stories: Arc<Vec<StoryView>>,
    /// Embeds rendered so far, by `limit` (at most [`render::html::EMBED_MAX`] of them).
    embeds: Mutex<HashMap<usize, Arc<Rendered>>>,
}

/// One topic's digest feed in every format. Digest rows are only ever added, so the bytes
/// are rebuilt only when the topic's (row count, latest period) moves; a content change
/// without a new row costs one small query.
struct DigestFeeds {
    version: u64,
    config: Arc<Config>,
    signature: (i64, i64),
    formats: Arc<[Rendered; 3]>,
}

/// What a cached document is, for its content type and the headers it goes out with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A topic or search feed.
    Feed(Format),
    /// A reading page: strict CSP, never framed.
    Page,
    /// The embeddable rail: the one page other sites may frame.
    Embed,
    /// The stylesheet: cached for a year (its URL changes with its bytes).
    Style,
}

impl Kind {
    fn content_type(self) -> &'static str {
        match self {
            Kind::Feed(f) => f.content_type(),
            Kind::Page | Kind::Embed => "text/html; charset=utf-8",
            Kind::Style => "text/css; charset=utf-8",
        }
    }
}

/// The policy of every reading page: our own stylesheet and nothing else; no scripts, no
/// remote fonts or images, forms only to ourselves, never inside another site's frame.
pub const PAGE_CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The embed's policy: as [`PAGE_CSP`], but any site may frame it.
pub const EMBED_CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors *";

/// Everything else (feeds, the stylesheet, text answers) loads nothing and is never framed.
const OTHER_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// How long the stylesheet may be cached: its URL names its bytes.
const STYLE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// The security headers every response carries, by what it is.
pub(crate) fn secure(h: &mut HeaderMap, kind: Option<Kind>) {
    let csp = match kind {
        Some(Kind::Page) => PAGE_CSP,
        Some(Kind::Embed) => EMBED_CSP,
        _ => OTHER_CSP,
    };
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Outlets learn nothing about who reads them through us.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if kind != Some(Kind::Embed) {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
}

/// One rendered document with everything its responses need, prepared once.
struct Rendered {
    // Declared before the bytes they copy: fields drop in order, so a copy is unregistered
    // before its bytes can be freed (see `sendfile`). Shared with the next build when the
    // bytes did not change.
    _body_file: Option<Arc<sendfile::FileCopy>>,
    _gzip_file: Option<Arc<sendfile::FileCopy>>,
    body: Bytes,
    gzip: Bytes,
    /// Hash of `body`, hex; the ETag is `"{tag}"`, and `"{tag}-gz"` for the gzip form.
    tag: String,
    etag: HeaderValue,
    etag_gz: HeaderValue,
    /// Unix seconds when these bytes first appeared.
    modified: i64,
    last_modified: HeaderValue,
    content_type: HeaderValue,
    kind: Kind,
}

impl Rendered {
    /// `body` as a `kind` document; `files` is where sendable copies go (see `sendfile`).
    pub(crate) fn new(
        body: Vec<u8>,
        kind: Kind,
        previous: Option<&Rendered>,
        now: i64,
        files: Option<&std::path::Path>,
    ) -> Rendered {
        let tag = format!("{:016x}", hash(&body));
        if let Some(p) = previous.filter(|p| p.tag == tag && p.body[..] == body[..]) {
            // Unchanged bytes keep their date, their gzip form and their sendable copies:
            // most rebuilds (every minute per topic) change nothing.
            return Rendered {
                _body_file: p._body_file.clone(),
                _gzip_file: p._gzip_file.clone(),
                body: p.body.clone(),
                gzip: p.gzip.clone(),
                tag,
                etag: p.etag.clone(),
                etag_gz: p.etag_gz.clone(),
                modified: p.modified,
                last_modified: p.last_modified.clone(),
                content_type: p.content_type.clone(),
                kind,
            };
        }
        // Changed bytes never reuse an old second, or an If-Modified-Since client could miss
        // a change made in the same second.
        let modified = match previous {
            Some(p) => now.max(p.modified + 1),
            None => now,
        };
        let gzip = Bytes::from(gzip(&body));
        let body = Bytes::from(body);
        Rendered {
            _body_file: sendfile::FileCopy::new(&body, files).map(Arc::new),
            _gzip_file: sendfile::FileCopy::new(&gzip, files).map(Arc::new),
            etag: header_value(&format!("\"{tag}\"")),
            etag_gz: header_value(&format!("\"{tag}-gz\"")),
            last_modified: header_value(&http_date(modified)),
            content_type: HeaderValue::from_static(kind.content_type()),
            kind,
            body,
            gzip,
            tag,
            modified,
        }
    }
}

/// A fixed-key hash of the bytes (stable across runs and Rust releases).
fn hash(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x6e65_7773_6465_736b, 0x6574_6167_7631);
    h.write(bytes);
    h.finish()
}

/// Gzip at level 6: compressed once per change, but a change can come every few seconds
/// during a big poll, where the best level cost several times the CPU for ~2% smaller bodies.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::new(6));
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// An HTTP date (IMF-fixdate).
pub fn http_date(unix: i64) -> String {
    render::time(unix).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The routes.
pub fn router(state: AppState) -> Router {
    // One Arc for the whole state: extracting it per request is then one reference count, not
    // a clone of every field.
    routes(Arc::new(state))
}

fn routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(pages::front))
        .route("/index.html", get(pages::front))
        .route("/topics/{file}", get(topic))
        .route("/topics/{id}/{file}", get(digest))
        .route("/stories/{id}", get(pages::story))
        .route("/sources", get(pages::sources))
        .route("/sources/{file}", get(pages::health))
        .route("/embed/{topic}", get(pages::embed))
        .route("/search", get(pages::search_page))
        .route("/search.rss", get(pages::search_feed::<0>))
        .route("/search.atom", get(pages::search_feed::<1>))
        .route("/search.json", get(pages::search_feed::<2>))
        .route("/assets/{file}", get(pages::asset))
        .route("/sources.opml", get(opml))
        .route("/websub", post(websub))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

/// Serves HTTP/1.1 on `listener` until `shutdown` completes, then lets the requests in
/// flight finish (at most [`SHUTDOWN_GRACE`]).
///
/// Connections are accepted and served on the server's own threads, one per core, each with
/// a single-threaded runtime and its own handle on the listening socket (as nginx's workers
/// do): a connection stays on the thread that accepted it, so there is no work stealing or
/// cross-thread wake-up per request, and neither accepting nor serving runs on the daemon's
/// runtime, where every poll starts (subscribers that reconnect often would otherwise wake it
/// hundreds of times a second). Our own loop over hyper rather than `axum::serve` also bounds
/// how long a client may take to send its headers (a slow-loris client cannot hold
/// connections) and skips HTTP/2 and upgrades.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("reading the listener's address")?;
    let listener = listener.into_std().context("taking over the listener")?;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8);
    let state = Arc::new(state);
    let (stop_tx, _) = tokio::sync::watch::channel(false);
    tokio::spawn(refresher((*state).clone(), stop_tx.subscribe()));
    let balance = Arc::new(Balance::new(threads));
    let mut workers = Vec::with_capacity(threads);
    for i in 0..threads {
        let listener = listener.try_clone().with_context(|| format!("sharing the listener on {addr}"))?;
        let (state, stop, balance) = (state.clone(), stop_tx.subscribe(), balance.clone());
        let worker = std::thread::Builder::new()
            .name(format!("http-{i}"))
            .spawn(move || -> anyhow::Result<()> {
                crate::priority::at_least(SERVE_NICE);
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting an HTTP worker runtime")?;
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .with_context(|| format!("registering the listener on {addr}"))?;
                    worker(listener, addr, state, stop, Seat { balance, index: i }).await;
                    Ok(())
                })
            })
            .context("starting an HTTP worker thread")?;
        workers.push(worker);
    }
    drop(listener);
    shutdown.await;
    let _ = stop_tx.send(true);
    tokio::task::spawn_blocking(move || {
        for w in workers {
            match w.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("HTTP worker on {addr}: {e:#}"),
                Err(_) => tracing::error!("HTTP worker on {addr} panicked"),
            }
        }
    })
    .await
    .context("waiting for the HTTP workers")
}

/// Open connections per HTTP worker, so the next connection goes to the least busy one.
///
/// Why: a connection stays on the worker that accepted it, and a shared listening socket wakes
/// every worker for each new connection and lets whichever is first take it; a burst of
/// keep-alive connections (a load test, a reverse proxy's pool) could land mostly on one
/// worker and leave a core unused for as long as they last (one worker took 37 of 50).
struct Balance {
    open: Vec<std::sync::atomic::AtomicUsize>,
    /// Wakes workers that stand aside whenever a count changes.
    changed: tokio::sync::Notify,
}

impl Balance {
    fn new(workers: usize) -> Balance {
        Balance { open: (0..workers).map(|_| Default::default()).collect(), changed: tokio::sync::Notify::new() }
    }

    /// Whether worker `i` has no more open connections than any other (ties all accept).
    fn may_accept(&self, i: usize) -> bool {
        let mine = self.open[i].load(Ordering::Relaxed);
        self.open.iter().all(|o| mine <= o.load(Ordering::Relaxed))
    }

    fn opened(&self, i: usize) {
        self.open[i].fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    fn closed(&self, i: usize) {
        self.open[i].fetch_sub(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }
}

/// A worker's place in the [`Balance`].
struct Seat {
    balance: Arc<Balance>,
    index: usize,
}

/// One worker: accepts and serves connections until `stop`, then gives the open ones
/// [`SHUTDOWN_GRACE`] to finish. It accepts only while no other worker has fewer connections.
async fn worker(
    listener: tokio::net::TcpListener,
    addr: std::net::SocketAddr,
    state: Arc<AppState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    seat: Seat,
) {
    let app = routes(state.clone());
    let mut conns = tokio::task::JoinSet::new();
    loop {
        // Listen for count changes before reading the counts, so none is missed in between
        // (at least one worker always has the fewest connections, and it accepts).
        let changed = seat.balance.changed.notified();
        let mut changed = std::pin::pin!(changed);
        changed.as_mut().enable();
        let accepting = seat.balance.may_accept(seat.index);
        let stream = tokio::select! {
            // A send or a dropped sender: either way, stop.
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {
                seat.balance.closed(seat.index);
                continue;
            }
            () = &mut changed, if !accepting => continue,
            accepted = listener.accept(), if accepting => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning; connections will close.
                    tracing::warn!("HTTP accept on {addr}: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        seat.balance.opened(seat.index);
        // Small responses must not wait for Nagle's algorithm and a delayed ACK (40 ms).
        let _ = stream.set_nodelay(true);
        let service =
            Service { state: state.clone(), router: hyper_util::service::TowerToHyperService::new(app.clone()) };
        let mut conn_stop = stop.clone();
        conns.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(sendfile::Conn::new(stream)), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = conn_stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, async { while conns.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!("HTTP: connections still open after {}s; closing them", SHUTDOWN_GRACE.as_secs());
    }
}

/// The connection-level service: a request for a cached, fresh topic feed (almost every
/// request a feed server sees) is answered right here, without the router's allocations;
/// everything else goes through the axum [`router`].
#[derive(Clone)]
struct Service {
    state: Arc<AppState>,
    router: hyper_util::service::TowerToHyperService<Router>,
}

type BoxedReply = std::pin::Pin<Box<dyn Future<Output = Result<Response, std::convert::Infallible>> + Send>>;

/// The future of [`Service`]: ready at once on the fast path.
enum Reply {
    Ready(Option<Response>),
    Routed(BoxedReply),
}

impl Future for Reply {
    type Output = Result<Response, std::convert::Infallible>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match &mut *self {
            Reply::Ready(r) => std::task::Poll::Ready(Ok(r.take().unwrap_or_else(|| Response::new(Body::empty())))),
            Reply::Routed(f) => f.as_mut().poll(cx),
        }
    }
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Service {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Reply;

    fn call(&self, req: hyper::Request<hyper::body::Incoming>) -> Reply {
        if let Some(resp) = fast_topic(&self.state, &req) {
            return Reply::Ready(Some(resp));
        }
        Reply::Routed(Box::pin(self.router.call(req)))
    }
}

/// A GET/HEAD of a document whose rendered bytes are cached and fresh: a topic feed
/// (`/topics/{id}.{ext}`), a topic page (`/topics/{id}`), the front page, a story page or the
/// stylesheet.
fn fast_topic<B>(state: &AppState, req: &hyper::Request<B>) -> Option<Response> {
    if !matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD) {
        return None;
    }
    let path = req.uri().path();
    let resp = if let Some(file) = path.strip_prefix("/topics/") {
        let config = state.config();
        match file.rsplit_once('.') {
            Some((id, ext)) => {
                let format = Format::from_ext(ext)?;
                let feeds = fresh_feeds(state, &config, id)?;
                feed_response(&feeds, format, req.headers())
            }
            None => respond(&fresh_feeds(state, &config, file)?.page, req.headers()),
        }
    } else if let Some(id) = path.strip_prefix("/stories/") {
        pages::fast_story(state, id, req.headers())?
    } else if pages::is_front(path) {
        pages::fast_front(state, req.headers())?
    } else if let Some(file) = path.strip_prefix("/assets/") {
        respond(pages::style_for(state, file)?, req.headers())
    } else {
        return None;
    };
    count();
    Some(resp)
}

fn count() {
    METRICS.http_requests.fetch_add(1, Ordering::Relaxed);
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let kind = content_type.starts_with("text/html").then_some(Kind::Page);
    secure(r.headers_mut(), kind);
    r
}

fn internal(e: anyhow::Error) -> Response {
    tracing::error!("HTTP: {e:#}");
    text(StatusCode::INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", "internal error; see the daemon's log\n")
}

async fn topic(State(state): State<Arc<AppState>>, req: Request) -> Response {
    count();
    // The whole request, not `Path` and `HeaderMap` extractors: those copy what we only read.
    // Topic ids are slugs, so the raw (undecoded) path segment is the id.
    let file = req.uri().path().rsplit('/').next().unwrap_or("");
    let headers = req.headers();
    let config = state.config();
    let (id, format) = match file.rsplit_once('.') {
        Some((id, ext)) => (id, Format::from_ext(ext)),
        None => (file, None),
    };
    let page = format.is_none() && !file.contains('.');
    let Some(topic) = config.topics.iter().find(|t| t.id == id) else {
        if page {
            let body = render::html::message_page(&config, "Not here", "There is no topic with that id.", unix_now());
            return text(StatusCode::NOT_FOUND, "text/html; charset=utf-8", body);
        }
        return unknown_topic(&config, id);
    };
    if format.is_none() && !page {
        let body =
            format!("topic {:?} is served as /topics/{id}.rss, /topics/{id}.atom and /topics/{id}.json\n", topic.id);
        return text(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", body);
    }
    match feeds(&state, &config, topic).await {
        Ok(feeds) => match format {
            Some(format) => feed_response(&feeds, format, headers),
            None => respond(&feeds.page, headers),
        },
        Err(e) => internal(e),
    }
}

/// `/topics/{id}/digest.{rss,atom,json}`: the topic's stored digests.
async fn digest(State(state): State<Arc<AppState>>, req: Request) -> Response {
    count();
    let mut parts = req.uri().path().trim_start_matches("/topics/").splitn(2, '/');
    let (id, file) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let config = state.config();
    let Some(topic) = config.topics.iter().find(|t| t.id == id) else {
        return unknown_topic(&config, id);
    };
    let format = file.strip_prefix("digest.").and_then(Format::from_ext);
    let Some(format) = format else {
        let body = format!("not found. The digest of topic {id:?} is /topics/{id}/digest.rss, .atom and .json\n");
        return text(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", body);
    };
    if topic.digest.is_none() {
        let body = format!(
            "topic {id:?} has no digest: set e.g. digest = \"daily 07:00\" in its [[topic]] in {}\n",
            config.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
        );
        return text(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", body);
    }
    match digest_feeds(&state, &config, topic).await {
        Ok(feeds) => respond(&feeds.formats[format.index()], req.headers()),
        Err(e) => internal(e),
    }
}

/// The cached digest feeds of `topic`, rebuilt when a digest row was added.
async fn digest_feeds(state: &AppState, config: &Arc<Config>, topic: &TopicConfig) -> anyhow::Result<Arc<DigestFeeds>> {
    let version = state.content_version();
    let current = state.cache.digests.read().unwrap_or_else(|p| p.into_inner()).get(&topic.id).cloned();
    if let Some(c) = current.as_ref().filter(|c| c.version == version && Arc::ptr_eq(&c.config, config)) {
        return Ok(c.clone());
    }
    let (cfg, t, files) = (config.clone(), topic.clone(), state.cache.files.clone());
    let built = state
        .read(move |conn| {
            let signature = crate::digest::signature(conn, &t.id)
                .with_context(|| format!("reading the digests of topic {:?}", t.id))?;
            if let Some(c) = current.as_ref().filter(|c| c.signature == signature && Arc::ptr_eq(&c.config, &cfg)) {
                return Ok(DigestFeeds { version, config: cfg, signature, formats: c.formats.clone() });
            }
            let digests = crate::digest::stored(conn, &t.id, crate::digest::FEED_ENTRIES)
                .with_context(|| format!("reading the digests of topic {:?}", t.id))?;
            let now = unix_now();
            let hubs = cfg.hub_urls();
            let formats = Format::ALL.map(|f| {
                let body = render::digest::render(f, &t, &digests, &cfg.daemon.base_url, &hubs);
                let previous = current.as_ref().map(|c| &c.formats[f.index()]);
                Rendered::new(body, Kind::Feed(f), previous, now, Some(&files))
            });
            Ok(DigestFeeds { version, config: cfg, signature, formats: Arc::new(formats) })
        })
        .await?;
    let built = Arc::new(built);
    let previous =
        state.cache.digests.write().unwrap_or_else(|p| p.into_inner()).insert(topic.id.clone(), built.clone());
    // A stored digest is news for WebSub, as a topic's new bytes are (see `refresher`).
    announce(
        state,
        &topic.id,
        previous.as_ref().map(|p| p.formats.each_ref()),
        built.formats.each_ref(),
        Arc::default(),
        crate::push::FeedKind::Digest,
    );
    Ok(built)
}

fn unknown_topic(config: &Config, id: &str) -> Response {
    let mut body = format!("no topic {id:?} here.\n");
    if config.topics.is_empty() {
        body.push_str("No topics are configured: add a [[topic]] to feeds.toml.\n");
    } else {
        body.push_str("Topics:\n");
        for t in &config.topics {
            body.push_str(&format!("  /topics/{0}.rss  /topics/{0}.atom  /topics/{0}.json  ({1})\n", t.id, t.title));
        }
    }
    text(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", body)
}

/// The cached feeds of `topic`, rebuilt when stale.
/// The cached feeds of `topic` when they are still good to serve as they are.
fn fresh_feeds(state: &AppState, config: &Arc<Config>, topic_id: &str) -> Option<Arc<TopicFeeds>> {
    let version = state.content_version();
    let topics = state.cache.topics.read().unwrap_or_else(|p| p.into_inner());
    let f = topics.get(topic_id)?;
    (f.version == version && Arc::ptr_eq(&f.config, config) && f.built.elapsed() < MAX_AGE).then(|| f.clone())
}

async fn feeds(state: &AppState, config: &Arc<Config>, topic: &TopicConfig) -> anyhow::Result<Arc<TopicFeeds>> {
    let version = state.content_version();
    let current = state.cache.topics.read().unwrap_or_else(|p| p.into_inner()).get(&topic.id).cloned();
    let fresh = |f: &TopicFeeds| f.version == version && Arc::ptr_eq(&f.config, config) && f.built.elapsed() < MAX_AGE;
    match current {
        Some(f) if fresh(&f) => Ok(f),
        // Readers never wait for a rebuild of a topic they can already get: the refresher
        // brings it up to date in the background.
        Some(stale) if Arc::ptr_eq(&stale.config, config) => Ok(stale),
        // Nothing built yet, or the topic's definition changed with a reload.
        _ => rebuild(state, config, topic).await,
    }
}

/// Rebuilds stale cached topics in the background, one at a time, each at most every
/// `REBUILD_EVERY` (2 s), and rests as long as each rebuild took: during a cold poll every commit
/// changes the content, and back-to-back rebuilds took the cores the polls need. Clients
/// cache for a minute anyway.
async fn refresher(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let config = state.config();
        let version = state.content_version();
        if state.cache.changes.receiver_count() > 0 {
            let started = Instant::now();
            if pages::watch_searches(&state, &config).await {
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(started.elapsed()) => {}
                }
            }
        }
        for topic in &config.topics {
            let cached = state.cache.topics.read().unwrap_or_else(|p| p.into_inner()).get(&topic.id).cloned();
            // Push consumers need every digest feed too: a stored digest is a change.
            if topic.digest.is_some() && state.cache.changes.receiver_count() > 0 {
                if let Err(e) = digest_feeds(&state, &config, topic).await {
                    tracing::warn!(topic = %topic.id, "building a digest feed: {e:#}");
                }
            }
            let Some(cached) = cached else {
                // Push consumers need every topic, requested or not.
                if state.cache.changes.receiver_count() > 0 {
                    if let Err(e) = rebuild(&state, &config, topic).await {
                        tracing::warn!(topic = %topic.id, "building a topic feed: {e:#}");
                    }
                }
                continue;
            };
            let stale =
                cached.version != version || !Arc::ptr_eq(&cached.config, &config) || cached.built.elapsed() >= MAX_AGE;
            if !stale || cached.built.elapsed() < REBUILD_EVERY {
                continue;
            }
            let started = Instant::now();
            if let Err(e) = rebuild(&state, &config, topic).await {
                tracing::warn!(topic = %topic.id, "rebuilding a topic feed: {e:#}");
            }
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(started.elapsed()) => {}
            }
        }
    }
}

/// Builds `topic` (one build at a time across all topics) unless a build that finished
/// while this one waited is recent enough.
async fn rebuild(state: &AppState, config: &Arc<Config>, topic: &TopicConfig) -> anyhow::Result<Arc<TopicFeeds>> {
    let _one = state.cache.rebuilds.acquire().await.context("shutting down")?;
    let version = state.content_version();
    // A build that ran while we waited (the refresher's, or a first request's) may do.
    let current = state.cache.topics.read().unwrap_or_else(|p| p.into_inner()).get(&topic.id).cloned();
    let recent = |f: &TopicFeeds| {
        Arc::ptr_eq(&f.config, config)
            && f.built.elapsed() < MAX_AGE
            && (f.version == version || f.built.elapsed() < REBUILD_EVERY)
    };
    if let Some(f) = current.as_ref().filter(|f| recent(f)) {
        return Ok(f.clone());
    }
    let (cfg, t, files) = (config.clone(), topic.clone(), state.cache.files.clone());
    let hubs = config.hub_urls();
    let built = state
        .build(move |conn| {
            let now = unix_now();
            let stories = crate::select::select(conn, &cfg, &t, now)
                .with_context(|| format!("selecting the stories of topic {:?}", t.id))?;
            let formats = Format::ALL.map(|f| {
                let body = render::render(f, &t, &stories, &cfg.daemon.base_url, &hubs);
                let previous = current.as_ref().map(|c| &c.formats[f.index()]);
                Rendered::new(body, Kind::Feed(f), previous, now, Some(&files))
            });
            let html = render::html::topic_page(&cfg, &t, &stories, now, false);
            let page =
                Rendered::new(html.into_bytes(), Kind::Page, current.as_ref().map(|c| &c.page), now, Some(&files));
            let front = (cfg.web.front.as_deref() == Some(t.id.as_str())).then(|| {
                let html = render::html::topic_page(&cfg, &t, &stories, now, true);
                Rendered::new(
                    html.into_bytes(),
                    Kind::Page,
                    current.as_ref().and_then(|c| c.front.as_ref()),
                    now,
                    Some(&files),
                )
            });
            let links = Format::ALL.map(|f| hub_links(&hubs, &render::feed_url(&cfg.daemon.base_url, &t.id, f)));
            Ok(TopicFeeds {
                version,
                config: cfg,
                built: Instant::now(),
                formats,
                links,
                page,
                front,
                stories: Arc::new(stories),
                embeds: Mutex::default(),
            })
        })
        .await?;
    let built = Arc::new(built);
    let previous =
        state.cache.topics.write().unwrap_or_else(|p| p.into_inner()).insert(topic.id.clone(), built.clone());
    announce(
        state,
        &topic.id,
        previous.as_ref().map(|p| p.formats.each_ref()),
        built.formats.each_ref(),
        built.stories.clone(),
        crate::push::FeedKind::Topic,
    );
    Ok(built)
}

/// Tells push consumers (if any listen) that `topic`'s `feed` feeds were rebuilt with other
/// bytes than `previous`, or built for the first time.
fn announce(
    state: &AppState,
    topic: &str,
    previous: Option<[&Rendered; 3]>,
    built: [&Rendered; 3],
    stories: Arc<Vec<StoryView>>,
    feed: crate::push::FeedKind,
) {
    if state.cache.changes.receiver_count() == 0 {
        return;
    }
    let changed = Format::ALL.map(|f| previous.is_none_or(|p| p[f.index()].tag != built[f.index()].tag));
    if changed.iter().any(|&c| c) {
        let _ = state.cache.changes.send(crate::push::TopicChange {
            topic: topic.to_string(),
            stories,
            bytes: Format::ALL.map(|f| built[f.index()].body.clone()),
            changed,
            first: previous.is_none(),
            feed,
        });
    }
}

/// The WebSub `Link` header of a feed served at `self_url` (`None` without hubs).
fn hub_links(hubs: &[String], self_url: &str) -> Option<HeaderValue> {
    (!hubs.is_empty()).then(|| {
        let mut v: Vec<String> = hubs.iter().map(|h| format!("<{h}>; rel=\"hub\"")).collect();
        v.push(format!("<{self_url}>; rel=\"self\""));
        header_value(&v.join(", "))
    })
}

/// A topic feed's answer: [`respond`], with its WebSub `Link` header when hubs are named.
fn feed_response(feeds: &TopicFeeds, format: Format, req: &HeaderMap) -> Response {
    let mut resp = respond(&feeds.formats[format.index()], req);
    if let Some(link) = &feeds.links[format.index()] {
        resp.headers_mut().insert(header::LINK, link.clone());
    }
    resp
}

/// `POST /websub`: our WebSub hub (see `crate::push::websub`); 404 unless `serve_hub`.
async fn websub(State(state): State<Arc<AppState>>, req: Request) -> Response {
    count();
    let Some(hub) = state.websub.clone().filter(|w| w.serves_hub()) else {
        return text(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "no WebSub hub here ([websub] serve_hub)\n");
    };
    let body = match axum::body::to_bytes(req.into_body(), crate::push::websub::MAX_REQUEST).await {
        Ok(b) => b,
        Err(_) => {
            let msg = format!("request body larger than {} bytes\n", crate::push::websub::MAX_REQUEST);
            return text(StatusCode::PAYLOAD_TOO_LARGE, "text/plain; charset=utf-8", msg);
        }
    };
    let (status, mut msg) = hub.request(&body).await;
    msg.push('\n');
    text(status, "text/plain; charset=utf-8", msg)
}

/// A 200 or a 304 for one cached document, honouring the request's validators and encoding.
fn respond(r: &Rendered, req: &HeaderMap) -> Response {
    let gz = accepts_gzip(req);
    let not_modified = match req.get(header::IF_NONE_MATCH) {
        // If-None-Match wins over If-Modified-Since when both are sent (RFC 9110 13.2.2).
        Some(inm) => etag_matches(inm, &r.tag),
        None => req
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v.trim()).ok())
            .is_some_and(|since| r.modified <= since.timestamp()),
    };
    let mut resp = if not_modified {
        METRICS.http_not_modified.fetch_add(1, Ordering::Relaxed);
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        resp
    } else {
        let mut resp = Response::new(Body::from(if gz { r.gzip.clone() } else { r.body.clone() }));
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, r.content_type.clone());
        if gz {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        resp
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, if gz { r.etag_gz.clone() } else { r.etag.clone() });
    h.insert(header::LAST_MODIFIED, r.last_modified.clone());
    let cache = if r.kind == Kind::Style { STYLE_CACHE_CONTROL } else { CACHE_CONTROL };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    secure(h, Some(r.kind));
    resp
}

/// Whether an `If-None-Match` list names `tag` (weak comparison; either encoding's tag).
fn etag_matches(inm: &HeaderValue, tag: &str) -> bool {
    let Ok(s) = inm.to_str() else { return false };
    s.split(',').map(str::trim).any(|t| {
        let t = t.strip_prefix("W/").unwrap_or(t).trim_matches('"');
        t == "*" || t == tag || t.strip_suffix("-gz") == Some(tag)
    })
}

/// Whether `Accept-Encoding` allows gzip (present and not `q=0`).
fn accepts_gzip(req: &HeaderMap) -> bool {
    req.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|part| {
        let mut it = part.split(';');
        let coding = it.next().unwrap_or("").trim();
        let q = it
            .filter_map(|p| p.trim().strip_prefix("q="))
            .next()
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")) && q > 0.0
    })
}

async fn opml(State(state): State<Arc<AppState>>) -> Response {
    count();
    let config = state.config();
    match state.read(move |conn| Ok(crate::opml::export(&config, &queries::source_info(conn)?))).await {
        Ok(xml) => {
            let mut r = text(StatusCode::OK, "text/x-opml; charset=utf-8", xml);
            r.headers_mut()
                .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline; filename=\"newsdesk.opml\""));
            r
        }
        Err(e) => internal(e),
    }
}

/// What this instance does: `single` on SQLite (it alone polls and writes); on PostgreSQL
/// `member`: one of any number of instances that poll the sources each claims and write in
/// turn (see `store::sources::claim` and `store::db::Connection::begin`).
fn role(state: &AppState) -> &'static str {
    if state.store.is_pg() {
        "member"
    } else {
        "single"
    }
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    count();
    let db = state.read(|conn| Ok(queries::ping(conn)?)).await;
    let beat = state.heartbeat.load(Ordering::Acquire);
    let age = unix_now() - beat;
    let scheduler_ok = beat > 0 && age < HEARTBEAT_LIMIT;
    let (status, body) = match (&db, scheduler_ok) {
        (Ok(n), true) => (
            StatusCode::OK,
            serde_json::json!({"status": "ok", "sources": n, "heartbeat_age_seconds": age,
                               "instance": crate::store::pg::instance_id(), "role": role(&state)}),
        ),
        (Ok(_), false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({
                "status": "unavailable",
                "error": if beat == 0 { "scheduler not started".to_string() } else { format!("scheduler silent for {age}s") },
            }),
        ),
        (Err(e), _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unavailable", "error": format!("database: {e:#}"),
                               "instance": crate::store::pg::instance_id(), "role": role(&state)}),
        ),
    };
    let mut r = text(status, "application/json", format!("{body}\n"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    count();
    match state.read(|conn| Ok(queries::counts(conn)?)).await {
        Ok(c) => {
            let gauges = [
                ("newsdesk_sources", "Sources in the database.", c.sources as f64),
                ("newsdesk_sources_failing", "Sources whose last poll failed.", c.failing as f64),
                ("newsdesk_stories", "Live stories.", c.stories as f64),
                ("newsdesk_items", "Stored items.", c.items as f64),
            ];
            let mut body = METRICS.render(&gauges);
            body.push_str(&format!(
                "# HELP newsdesk_instance_info This instance, its role and its store (constant 1).\n\
                 # TYPE newsdesk_instance_info gauge\n\
                 newsdesk_instance_info{{instance=\"{}\",role=\"{}\",backend=\"{}\"}} 1\n",
                crate::store::pg::instance_id(),
                role(&state),
                if state.store.is_pg() { "postgres" } else { "sqlite" }
            ));
            text(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", body)
        }
        Err(e) => internal(e),
    }
}

async fn not_found() -> Response {
    count();
    text(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "not found. Endpoints: / · /topics/{id} · /topics/{id}.rss|.atom|.json · /stories/{id} · /search?q= · \
         /search.rss|.atom|.json?q= · /embed/{topic}?limit= · /sources · /sources.opml · /healthz · /metrics\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_headers() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert!(etag_matches(&v("\"abc\""), "abc"));
        assert!(etag_matches(&v("W/\"abc-gz\", \"x\""), "abc"));
        assert!(etag_matches(&v("*"), "abc"));
        assert!(!etag_matches(&v("\"abd\""), "abc"));
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, v("br, gzip;q=0.5"));
        assert!(accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, v("gzip;q=0, br"));
        assert!(!accepts_gzip(&h));
        assert_eq!(http_date(1_750_000_000), "Sun, 15 Jun 2025 15:06:40 GMT");
        assert!(chrono::DateTime::parse_from_rfc2822(&http_date(1_750_000_000)).is_ok());
    }

    #[tokio::test]
    async fn the_worker_with_fewest_connections_accepts_and_others_hear_of_changes() {
        let b = Arc::new(Balance::new(3));
        assert!((0..3).all(|i| b.may_accept(i)), "ties all accept");
        b.opened(0);
        b.opened(1);
        assert_eq!((0..3).map(|i| b.may_accept(i)).collect::<Vec<_>>(), [false, false, true]);
        // Worker 0 stands aside, listening; a close elsewhere wakes it.
        let listening = b.changed.notified();
        let mut listening = std::pin::pin!(listening);
        listening.as_mut().enable();
        let other = b.clone();
        std::thread::spawn(move || {
            other.opened(2);
            other.closed(1);
        })
        .join()
        .unwrap();
        tokio::time::timeout(Duration::from_secs(5), listening).await.expect("woken by the change");
        assert_eq!((0..3).map(|i| b.may_accept(i)).collect::<Vec<_>>(), [false, true, false]);
    }

    #[test]
    fn unchanged_bytes_keep_their_date_changed_ones_move_forward() {
        let a = Rendered::new(b"one".to_vec(), Kind::Feed(Format::Rss), None, 100, None);
        let same = Rendered::new(b"one".to_vec(), Kind::Feed(Format::Rss), Some(&a), 200, None);
        assert_eq!((same.modified, &same.tag), (100, &a.tag));
        assert_eq!(same.body.as_ptr(), a.body.as_ptr(), "unchanged bytes are kept, not copied");
        assert_eq!(same.gzip.as_ptr(), a.gzip.as_ptr(), "and not compressed again");
        let b = Rendered::new(b"two".to_vec(), Kind::Feed(Format::Rss), Some(&a), 100, None);
        assert_eq!(b.modified, 101);
        assert_ne!(b.tag, a.tag);
        let mut d = flate2::read::GzDecoder::new(&b.gzip[..]);
        let mut out = String::new();
        std::io::Read::read_to_string(&mut d, &mut out).unwrap();
        assert_eq!(out, "two");
    }
}
