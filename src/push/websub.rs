//! WebSub (W3C, <https://www.w3.org/TR/websub/>): newsdesk as a publisher and as its own hub.
//!
//! - **Publishing**: when a topic feed's bytes change, every `[websub] hubs` URL gets
//!   `hub.mode=publish` with the changed feed URLs (`hub.url`, repeated). A topic's changes are
//!   coalesced: the ping goes out once the topic was quiet for [`PUBLISH_QUIET`] (at most
//!   [`PUBLISH_MAX_DELAY`] after its first change), since a hub fetches the feed itself and
//!   ten pings in a burst would only make it fetch ten times.
//! - **Searches**: the serving side re-runs the watched searches (those our subscribers follow,
//!   see [`subscribed_searches`], and those fetched lately; at most [`WATCHED_SEARCHES`]) when
//!   the store changes, and announces their changes like a topic's.
//! - **Our hub** (`serve_hub = true`): `POST /websub` takes subscribe/unsubscribe requests for
//!   our topic, digest and search feeds ([`WebSub::request`]), answers 202 and verifies the intent in the
//!   background (a GET to the callback that must echo a random challenge); verified
//!   subscriptions live in `websub_subscriptions`. Each change of a feed is POSTed, as its new
//!   bytes, to every live subscriber of that feed, signed with `X-Hub-Signature` when the
//!   subscriber gave a secret.
//!
//! Everything runs off the change events of the serving side, in tasks of its own: a slow or
//! dead hub or subscriber never holds up polls or serving. Each target (a hub, a subscription)
//! has at most one delivery in progress; a newer change replaces (content) or joins (pings)
//! the one waiting, so a target that is down for hours gets the latest state once, not every
//! change it missed. Retries are spaced by [`deliver::backoff`] (scaled by `[websub] retry`)
//! and given up after `[websub] attempts`, with the reason logged. Deliveries in flight at
//! once are bounded ([`IN_FLIGHT`]), and so are intent verifications ([`VERIFYING`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use tokio::sync::{broadcast, watch, Semaphore};
use tokio::time::Instant;
use url::Url;

use super::deliver::{self, Deliverer, Outcome};
use super::{FeedKind, TopicChange};
use crate::config::{Config, WebsubConfig, DEFAULT_LEASE};
use crate::render::{self, Format};
use crate::store::Store;

/// A topic's ping waits until the topic had no change for this long.
pub const PUBLISH_QUIET: Duration = Duration::from_secs(5);

/// ... but no longer than this after its first change.
pub const PUBLISH_MAX_DELAY: Duration = Duration::from_secs(60);

/// Deliveries and pings in flight at once.
pub const IN_FLIGHT: usize = 16;

/// Intent verifications in progress at once; more requests get a 503.
pub const VERIFYING: usize = 64;

/// Largest `POST /websub` body read.
pub const MAX_REQUEST: usize = 8 * 1024;

/// Search feeds watched for changes at once (each is re-run when the store changes): those
/// our hub's subscribers follow, then those fetched lately while hubs are named.
pub const WATCHED_SEARCHES: usize = 64;

/// Longest `hub.secret` accepted (the spec's bound).
pub const MAX_SECRET: usize = 199;

/// How often expired leases are deleted.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

/// Deliveries given up in a row after which a subscriber is reported as failing.
const FAILING_AFTER: i64 = 3;

/// Pushes for one daemon: the publisher and, with `serve_hub`, the hub.
pub struct WebSub {
    store: Store,
    deliverer: Deliverer,
    config: Arc<RwLock<Arc<Config>>>,
    /// `[websub]` as the daemon started (the network guard is built from it).
    settings: WebsubConfig,
    in_flight: Semaphore,
    verifying: Arc<Semaphore>,
    /// Per target: present while a worker runs; `Some` holds the job waiting after its current.
    slots: Mutex<HashMap<String, Option<Job>>>,
    /// Set when a search feed got a subscription: the watcher takes a baseline of it at once.
    new_search: std::sync::atomic::AtomicBool,
}

/// One thing to send to one target.
#[derive(Debug, Clone)]
enum Job {
    /// `hub.mode=publish` for these feed URLs.
    Ping { hub: Url, urls: BTreeSet<String> },
    /// A feed's new bytes to a subscriber.
    Content { topic: String, callback: Url, secret: Option<String>, content_type: &'static str, body: Bytes },
}

impl Job {
    /// Folds a newer job for the same target into this one.
    fn absorb(&mut self, newer: Job) {
        match (self, newer) {
            (Job::Ping { urls, .. }, Job::Ping { urls: more, .. }) => urls.extend(more),
            (this, newer) => *this = newer,
        }
    }

    fn describe(&self) -> String {
        match self {
            Job::Ping { hub, urls } => {
                format!("publishing {} to hub {hub}", urls.iter().cloned().collect::<Vec<_>>().join(" "))
            }
            Job::Content { topic, callback, .. } => format!("delivering {topic} to {callback}"),
        }
    }
}

/// A subscription request that passed the checks, waiting for its intent verification.
#[derive(Debug, Clone)]
struct Intent {
    subscribe: bool,
    topic: String,
    callback: Url,
    lease: u64,
    secret: Option<String>,
}

/// Every feed URL a subscriber may subscribe to, as our feeds name themselves.
fn our_topics(config: &Config) -> Vec<String> {
    config
        .topics
        .iter()
        .flat_map(|t| {
            let digest = t
                .digest
                .is_some()
                .then(|| Format::ALL.map(|f| render::digest::feed_url(&config.daemon.base_url, &t.id, f)));
            Format::ALL
                .map(|f| render::feed_url(&config.daemon.base_url, &t.id, f))
                .into_iter()
                .chain(digest.into_iter().flatten())
        })
        .collect()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A random challenge for an intent verification.
fn challenge() -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| "no random numbers from the system".to_string())?;
    Ok(deliver::hex(&bytes))
}

impl WebSub {
    /// Pushes for `settings`, with the daemon's store and (live) configuration.
    pub fn new(store: Store, config: Arc<RwLock<Arc<Config>>>, settings: WebsubConfig) -> anyhow::Result<WebSub> {
        let deliverer = Deliverer::new(settings.timeout, settings.allow_networks.clone())?;
        Ok(WebSub {
            store,
            deliverer,
            config,
            settings,
            in_flight: Semaphore::new(IN_FLIGHT),
            verifying: Arc::new(Semaphore::new(VERIFYING)),
            slots: Mutex::default(),
            new_search: Default::default(),
        })
    }

    fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether a search feed got a subscription since the last call.
    pub fn take_new_search(&self) -> bool {
        self.new_search.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `POST /websub` is served.
    pub fn serves_hub(&self) -> bool {
        self.settings.serve_hub
    }

    /// The wait after failed attempt `attempt`: [`deliver::backoff`] with its 10 s first wait
    /// scaled to `[websub] retry`.
    fn wait(&self, attempt: u32) -> Duration {
        deliver::backoff(attempt).mul_f64(self.settings.retry.as_secs_f64() / 10.0)
    }

    /// Handles one `POST /websub` body: the status and the reason (202: the intent is being
    /// verified). Checks what can be checked now; the rest is the verification's job.
    pub async fn request(self: &Arc<Self>, body: &[u8]) -> (StatusCode, String) {
        let intent = match self.check(body).await {
            Ok(i) => i,
            Err(e) => return e,
        };
        let Ok(permit) = self.verifying.clone().try_acquire_owned() else {
            return (StatusCode::SERVICE_UNAVAILABLE, "too many intent verifications in progress; retry later".into());
        };
        let msg = format!(
            "accepted: {} {} for {}; verifying the intent at the callback",
            if intent.subscribe { "subscribe to" } else { "unsubscribe from" },
            intent.topic,
            intent.callback
        );
        let me = self.clone();
        tokio::spawn(async move {
            me.verify(intent).await;
            drop(permit);
        });
        (StatusCode::ACCEPTED, msg)
    }

    async fn check(&self, body: &[u8]) -> Result<Intent, (StatusCode, String)> {
        let bad = |m: String| (StatusCode::BAD_REQUEST, m);
        let config = self.config();
        let w = config.websub.as_ref().unwrap_or(&self.settings);
        let mut fields: HashMap<String, String> = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            // The first of a repeated field counts.
            fields.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        let subscribe = match fields.get("hub.mode").map(String::as_str) {
            Some("subscribe") => true,
            Some("unsubscribe") => false,
            Some(m) => return Err(bad(format!("hub.mode {m:?}: this hub takes subscribe and unsubscribe"))),
            None => return Err(bad("hub.mode is missing (subscribe or unsubscribe)".into())),
        };
        let Some(topic) = fields.get("hub.topic").cloned() else {
            return Err(bad("hub.topic is missing".into()));
        };
        let search = render::search_feed_of(&config.daemon.base_url, &topic).map(|(_, q)| q);
        if let Some(q) = &search {
            if let Err(e) = crate::store::search::parse(q) {
                return Err(bad(format!("hub.topic {topic:?}: the search does not parse: {e}")));
            }
        } else if !our_topics(&config).contains(&topic) {
            let pattern = render::under(
                &config.daemon.base_url,
                "topics/{id}.{rss,atom,json}, topics/{id}/digest.{rss,atom,json} or search.{rss,atom,json}?q=",
            );
            return Err(bad(format!(
                "hub.topic {topic:?} is not one of this hub's feeds ({pattern}; a search as its feed's self link names it)"
            )));
        }
        let Some(callback) = fields.get("hub.callback") else {
            return Err(bad("hub.callback is missing".into()));
        };
        let callback = Url::parse(callback).map_err(|e| bad(format!("hub.callback {callback:?}: {e}")))?;
        if let Some(why) = self.deliverer.refuse(&callback) {
            return Err(bad(format!("hub.callback refused: {why}")));
        }
        let lease = match fields.get("hub.lease_seconds") {
            None => DEFAULT_LEASE.as_secs(),
            Some(s) => s.trim().parse::<u64>().map_err(|_| bad(format!("hub.lease_seconds {s:?} is not a number")))?,
        };
        let lease = lease.clamp(w.lease_min.as_secs(), w.lease_max.as_secs());
        let secret = fields.get("hub.secret").filter(|s| !s.is_empty()).cloned();
        if secret.as_ref().is_some_and(|s| s.len() > MAX_SECRET) {
            return Err(bad(format!("hub.secret is longer than {MAX_SECRET} bytes")));
        }
        if subscribe && search.is_some() {
            let (t, prefix) = (topic.clone(), format!("{}%", render::under(&config.daemon.base_url, "search.")));
            let watched = self.read(move |conn| searches_besides(conn, &prefix, &t, now())).await;
            match watched {
                Ok(n) if n < WATCHED_SEARCHES => {}
                Ok(_) => {
                    return Err((
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "this hub watches at most {WATCHED_SEARCHES} search feeds; subscribe to a topic instead"
                        ),
                    ))
                }
                Err(e) => {
                    tracing::error!("websub: counting search subscriptions: {e:#}");
                    return Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the daemon's log".into()));
                }
            }
        }
        if subscribe {
            let (t, c, max) = (topic.clone(), callback.to_string(), w.max_subscriptions);
            let full = self.read(move |conn| full(conn, &t, &c, max, now())).await;
            match full {
                Ok(false) => {}
                Ok(true) => {
                    return Err((
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("this hub holds its maximum of {max} subscriptions (max_subscriptions)"),
                    ))
                }
                Err(e) => {
                    tracing::error!("websub: counting subscriptions: {e:#}");
                    return Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the daemon's log".into()));
                }
            }
        }
        Ok(Intent { subscribe, topic, callback, lease, secret })
    }

    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::store::db::Connection) -> crate::store::db::Result<R> + Send + 'static,
    ) -> anyhow::Result<R> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.read(f)).await?
    }

    /// Asks the callback whether it meant it; stores (or deletes) the subscription only when
    /// it echoes the challenge.
    async fn verify(&self, intent: Intent) {
        let mode = if intent.subscribe { "subscribe" } else { "unsubscribe" };
        let what = format!("{mode} {} by {}", intent.topic, intent.callback);
        let challenge = match challenge() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("websub: intent verification of {what}: {e}");
                return;
            }
        };
        let mut url = intent.callback.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("hub.mode", mode)
                .append_pair("hub.topic", &intent.topic)
                .append_pair("hub.challenge", &challenge);
            if intent.subscribe {
                q.append_pair("hub.lease_seconds", &intent.lease.to_string());
            }
        }
        match self.deliverer.get(&url).await {
            Outcome::Delivered { body, .. } if body == challenge => {}
            Outcome::Delivered { status, .. } => {
                tracing::warn!(
                    "websub: intent verification of {what} refused: answered {status} without the challenge"
                );
                return;
            }
            Outcome::Failed { reason, .. } => {
                tracing::warn!("websub: intent verification of {what} refused: {reason}");
                return;
            }
        }
        let max = self.config().websub.as_ref().unwrap_or(&self.settings).max_subscriptions;
        let i = intent.clone();
        let stored = self.store.write(move |w| store_intent(&w.conn, &i, max, now())).await;
        match stored {
            Ok(Ok(true)) if intent.subscribe => {
                if render::search_feed_of(&self.config().daemon.base_url, &intent.topic).is_some() {
                    self.new_search.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                tracing::info!("websub: {} subscribed to {} (lease {}s)", intent.callback, intent.topic, intent.lease)
            }
            Ok(Ok(true)) => tracing::info!("websub: {} unsubscribed from {}", intent.callback, intent.topic),
            Ok(Ok(false)) => tracing::warn!("websub: {what} verified, but the hub is full (max_subscriptions {max})"),
            Ok(Err(e)) => tracing::error!("websub: storing {what}: {e}"),
            Err(e) => tracing::error!("websub: storing {what}: {e}"),
        }
    }

    /// Runs until `stop`: takes the serving side's changes and sends what they call for.
    pub async fn run(self: Arc<Self>, mut changes: broadcast::Receiver<TopicChange>, mut stop: watch::Receiver<bool>) {
        // (Topic id or query, kind of feed) -> (first change, last change, changed formats) of
        // pings not sent yet.
        let mut pings: HashMap<(String, FeedKind), (Instant, Instant, [bool; 3])> = HashMap::new();
        let mut expire = tokio::time::interval(EXPIRE_EVERY);
        loop {
            let due =
                pings.values().map(|&(first, last, _)| (last + PUBLISH_QUIET).min(first + PUBLISH_MAX_DELAY)).min();
            let sleep = tokio::time::sleep_until(due.unwrap_or_else(|| Instant::now() + EXPIRE_EVERY));
            tokio::select! {
                _ = stop.changed() => return,
                got = changes.recv() => match got {
                    Ok(change) if change.first => {}
                    Ok(change) => {
                        let at = Instant::now();
                        let entry = pings.entry((change.topic.clone(), change.feed)).or_insert((at, at, [false; 3]));
                        entry.1 = at;
                        for (c, new) in entry.2.iter_mut().zip(change.changed) {
                            *c |= new;
                        }
                        if self.settings.serve_hub {
                            self.fan_out(&change).await;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("websub: {n} topic changes missed (too many at once); the next change of each topic carries its current state");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = sleep, if due.is_some() => {
                    let at = Instant::now();
                    let ready: Vec<(String, FeedKind)> = pings
                        .iter()
                        .filter(|(_, &(first, last, _))| at >= (last + PUBLISH_QUIET).min(first + PUBLISH_MAX_DELAY))
                        .map(|(t, _)| t.clone())
                        .collect();
                    for topic in ready {
                        if let Some((_, _, changed)) = pings.remove(&topic) {
                            self.publish(&topic.0, topic.1, changed);
                        }
                    }
                }
                _ = expire.tick(), if self.settings.serve_hub => self.expire().await,
            }
        }
    }

    /// Pings every configured hub about the changed formats of `topic`'s `feed`.
    fn publish(self: &Arc<Self>, topic: &str, feed: FeedKind, changed: [bool; 3]) {
        let config = self.config();
        let Some(w) = &config.websub else { return };
        let urls: BTreeSet<String> = Format::ALL
            .into_iter()
            .filter(|f| changed[f.index()])
            .map(|f| feed.url(&config.daemon.base_url, topic, f))
            .collect();
        for hub in &w.hubs {
            self.offer(format!("hub {hub}"), Job::Ping { hub: hub.clone(), urls: urls.clone() });
        }
    }

    /// Queues the changed feeds' bytes for their live subscribers.
    async fn fan_out(self: &Arc<Self>, change: &TopicChange) {
        let config = self.config();
        let feeds: Vec<(Format, String)> = Format::ALL
            .into_iter()
            .filter(|f| change.changed[f.index()])
            .map(|f| (f, change.feed_url(&config.daemon.base_url, f)))
            .collect();
        let urls: Vec<String> = feeds.iter().map(|(_, u)| u.clone()).collect();
        let subs = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT topic, callback, secret FROM websub_subscriptions WHERE topic = ?1 AND lease_expires > ?2",
                )?;
                let mut out = Vec::new();
                let t = now();
                for u in &urls {
                    let rows = stmt.query_map(crate::params![u, t], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
                    })?;
                    for row in rows {
                        out.push(row?);
                    }
                }
                Ok(out)
            })
            .await;
        let subs = match subs {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(topic = %change.topic, "websub: reading the subscribers: {e:#}");
                return;
            }
        };
        for (topic, callback, secret) in subs {
            let Some(&(format, _)) = feeds.iter().find(|(_, u)| *u == topic) else { continue };
            let Ok(callback) = Url::parse(&callback) else {
                tracing::warn!("websub: stored callback {callback:?} of {topic} is not a URL; skipped");
                continue;
            };
            let key = format!("sub {topic} {callback}");
            let body = change.bytes(format).clone();
            self.offer(key, Job::Content { topic, callback, secret, content_type: format.content_type(), body });
        }
    }

    /// Hands `job` to its target's worker, starting one when none runs.
    fn offer(self: &Arc<Self>, key: String, job: Job) {
        {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            match slots.get_mut(&key) {
                Some(waiting) => {
                    match waiting {
                        Some(w) => w.absorb(job),
                        None => *waiting = Some(job),
                    }
                    return;
                }
                None => {
                    slots.insert(key.clone(), None);
                }
            }
        }
        let me = self.clone();
        tokio::spawn(async move { me.worker(key, job).await });
    }

    /// The job waiting for `key`, if any; with `last`, the worker ends when there is none.
    fn waiting(&self, key: &str, last: bool) -> Option<Job> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let next = slots.get_mut(key).and_then(Option::take);
        if next.is_none() && last {
            slots.remove(key);
        }
        next
    }

    /// Sends `job`, and whatever comes for the same target meanwhile, until nothing waits.
    async fn worker(self: Arc<Self>, key: String, mut job: Job) {
        let mut attempt = 1;
        loop {
            let outcome = {
                let _slot = self.in_flight.acquire().await;
                self.send(&job).await
            };
            let finished = match outcome {
                Outcome::Delivered { status, .. } => {
                    self.delivered(&job, status).await;
                    true
                }
                Outcome::Failed { reason, retry } if !retry || attempt >= self.settings.attempts => {
                    self.gave_up(&job, attempt, &reason).await;
                    true
                }
                Outcome::Failed { reason, .. } => {
                    let wait = self.wait(attempt);
                    tracing::info!(
                        "websub: {} failed (attempt {attempt} of {}), retrying in {}s: {reason}",
                        job.describe(),
                        self.settings.attempts,
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    if let Some(newer) = self.waiting(&key, false) {
                        // Newer content is worth a full set of attempts of its own.
                        job.absorb(newer);
                        attempt = 1;
                    }
                    false
                }
            };
            if finished {
                match self.waiting(&key, true) {
                    Some(next) => {
                        job = next;
                        attempt = 1;
                    }
                    None => return,
                }
            }
        }
    }

    async fn send(&self, job: &Job) -> Outcome {
        match job {
            Job::Ping { hub, urls } => {
                let body = {
                    let mut form = url::form_urlencoded::Serializer::new(String::new());
                    form.append_pair("hub.mode", "publish");
                    for u in urls {
                        form.append_pair("hub.url", u);
                    }
                    form.finish().into_bytes()
                };
                self.deliverer.post(hub, "application/x-www-form-urlencoded", body, &[]).await
            }
            Job::Content { topic, callback, secret, content_type, body } => {
                let hub = render::under(&self.config().daemon.base_url, "websub");
                let mut headers = vec![("Link", format!("<{hub}>; rel=\"hub\", <{topic}>; rel=\"self\""))];
                if let Some(s) = secret {
                    headers
                        .push(("X-Hub-Signature", format!("sha256={}", deliver::hmac_sha256_hex(s.as_bytes(), body))));
                }
                self.deliverer.post(callback, content_type, body.to_vec(), &headers).await
            }
        }
    }

    async fn delivered(&self, job: &Job, status: u16) {
        match job {
            Job::Ping { .. } => tracing::info!("websub: {} done (HTTP {status})", job.describe()),
            Job::Content { topic, callback, .. } => {
                tracing::info!("websub: {} done (HTTP {status})", job.describe());
                let (t, c) = (topic.clone(), callback.to_string());
                let r = self
                    .store
                    .write(move |w| {
                        w.conn.execute(
                            "UPDATE websub_subscriptions SET last_delivery = ?3, failures = 0 WHERE topic = ?1 AND callback = ?2",
                            crate::params![t, c, now()],
                        )
                    })
                    .await;
                match r {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!("websub: recording the delivery to {callback}: {e}"),
                    Err(e) => tracing::warn!("websub: recording the delivery to {callback}: {e}"),
                }
            }
        }
    }

    async fn gave_up(&self, job: &Job, attempts: u32, reason: &str) {
        tracing::warn!("websub: gave up {} after {attempts} attempt(s): {reason}", job.describe());
        let Job::Content { topic, callback, .. } = job else { return };
        let (t, c) = (topic.clone(), callback.to_string());
        let failures = self
            .store
            .write(move |w| {
                w.conn.query_row(
                    "UPDATE websub_subscriptions SET failures = failures + 1 WHERE topic = ?1 AND callback = ?2 RETURNING failures",
                    crate::params![t, c],
                    |r| r.get::<_, i64>(0),
                )
            })
            .await;
        match failures {
            Ok(Ok(n)) if n >= FAILING_AFTER => tracing::warn!(
                "websub: subscriber {callback} of {topic} keeps failing ({n} deliveries given up in a row); kept until its lease ends"
            ),
            Ok(Ok(_)) | Ok(Err(crate::store::db::Error::NoRows)) => {}
            Ok(Err(e)) => tracing::warn!("websub: recording the failure of {callback}: {e}"),
            Err(e) => tracing::warn!("websub: recording the failure of {callback}: {e}"),
        }
    }

    /// Deletes the subscriptions whose lease ended.
    async fn expire(&self) {
        let r = self
            .store
            .write(|w| w.conn.execute("DELETE FROM websub_subscriptions WHERE lease_expires <= ?1", [now()]))
            .await;
        match r {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!("websub: {n} subscription(s) expired"),
            Ok(Err(e)) => tracing::warn!("websub: deleting expired subscriptions: {e}"),
            Err(e) => tracing::warn!("websub: deleting expired subscriptions: {e}"),
        }
    }
}

/// Search feeds other than `topic` (URLs starting with `prefix`) with a live subscription.
fn searches_besides(
    conn: &crate::store::db::Connection,
    prefix: &str,
    topic: &str,
    now: i64,
) -> crate::store::db::Result<usize> {
    conn.query_row(
        "SELECT COUNT(DISTINCT topic) FROM websub_subscriptions WHERE lease_expires > ?3 AND topic LIKE ?1 AND topic != ?2",
        crate::params![prefix, topic, now],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n.max(0) as usize)
}

/// The queries of the search feeds our hub's live subscribers follow (`prefix`: where search
/// feeds are served), at most [`WATCHED_SEARCHES`].
pub fn subscribed_searches(
    conn: &crate::store::db::Connection,
    base_url: &Url,
    now: i64,
) -> crate::store::db::Result<Vec<String>> {
    let prefix = format!("{}%", render::under(base_url, "search."));
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT topic FROM websub_subscriptions WHERE lease_expires > ?2 AND topic LIKE ?1 ORDER BY topic",
    )?;
    let topics = stmt.query_map(crate::params![prefix, now], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for t in topics {
        if let Some((_, q)) = render::search_feed_of(base_url, &t?) {
            if !out.contains(&q) {
                out.push(q);
            }
        }
    }
    out.truncate(WATCHED_SEARCHES);
    Ok(out)
}

/// Whether the hub is full for a new `(topic, callback)` (a renewal always fits).
fn full(
    conn: &crate::store::db::Connection,
    topic: &str,
    callback: &str,
    max: usize,
    now: i64,
) -> crate::store::db::Result<bool> {
    let (live, exists): (i64, i64) = conn.query_row(
        "SELECT COUNT(*), COUNT(CASE WHEN topic = ?1 AND callback = ?2 THEN 1 END) FROM websub_subscriptions WHERE lease_expires > ?3",
        crate::params![topic, callback, now],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(exists == 0 && usize::try_from(live).unwrap_or(usize::MAX) >= max)
}

/// Stores a verified subscription (or deletes an unsubscribed one); false when the hub is full.
fn store_intent(
    conn: &crate::store::db::Connection,
    i: &Intent,
    max: usize,
    now: i64,
) -> crate::store::db::Result<bool> {
    let callback = i.callback.to_string();
    if !i.subscribe {
        conn.execute(
            "DELETE FROM websub_subscriptions WHERE topic = ?1 AND callback = ?2",
            crate::params![i.topic, callback],
        )?;
        return Ok(true);
    }
    if full(conn, &i.topic, &callback, max, now)? {
        return Ok(false);
    }
    let expires = now.saturating_add(i64::try_from(i.lease).unwrap_or(i64::MAX));
    conn.execute(
        "INSERT INTO websub_subscriptions (topic, callback, secret, lease_expires, created) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (topic, callback) DO UPDATE SET secret = excluded.secret, lease_expires = excluded.lease_expires, failures = 0",
        crate::params![i.topic, callback, i.secret, expires, now],
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> crate::store::db::Connection {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::schema::migrate(&mut conn).unwrap();
        crate::store::db::Connection::Lite(conn)
    }

    fn intent(callback: &str, subscribe: bool) -> Intent {
        Intent {
            subscribe,
            topic: "http://n.test/topics/top.rss".into(),
            callback: Url::parse(callback).unwrap(),
            lease: 3600,
            secret: Some("s".into()),
        }
    }

    #[test]
    fn subscriptions_are_unique_per_topic_and_callback_and_bounded() {
        let conn = db();
        assert!(store_intent(&conn, &intent("http://a.test/cb", true), 2, 100).unwrap());
        assert!(store_intent(&conn, &intent("http://a.test/cb", true), 2, 200).unwrap(), "a renewal");
        assert!(store_intent(&conn, &intent("http://b.test/cb", true), 2, 200).unwrap());
        assert!(!store_intent(&conn, &intent("http://c.test/cb", true), 2, 200).unwrap(), "full");
        let (n, expires): (i64, i64) = conn
            .query_row("SELECT COUNT(*), MAX(lease_expires) FROM websub_subscriptions", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((n, expires), (2, 3800));
        assert!(store_intent(&conn, &intent("http://a.test/cb", false), 2, 300).unwrap());
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM websub_subscriptions", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_newer_ping_joins_the_waiting_one_and_newer_content_replaces_it() {
        let hub = Url::parse("http://hub.test/").unwrap();
        let mut p = Job::Ping { hub: hub.clone(), urls: ["a".to_string()].into() };
        p.absorb(Job::Ping { hub, urls: ["b".to_string()].into() });
        assert!(matches!(&p, Job::Ping { urls, .. } if urls.len() == 2));
        let content = |b: &'static str| Job::Content {
            topic: "t".into(),
            callback: Url::parse("http://s.test/").unwrap(),
            secret: None,
            content_type: "text/plain",
            body: Bytes::from_static(b.as_bytes()),
        };
        let mut c = content("old");
        c.absorb(content("new"));
        assert!(matches!(&c, Job::Content { body, .. } if &body[..] == b"new"));
    }

    #[test]
    fn challenges_are_random_hex() {
        let (a, b) = (challenge().unwrap(), challenge().unwrap());
        assert!(a != b && a.len() == 48 && a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
