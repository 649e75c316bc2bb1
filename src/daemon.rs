//! Daemon: the long-running wiring. A scheduler task polls each source when it is due
//! (within the global and per-host limits), the HTTP server answers subscribers, a watchdog
//! task pings systemd only after the database answers, retention prunes old items, the
//! digest task stores each ended digest period ([`crate::digest::run`]), SIGHUP
//! reloads `feeds.toml`, SIGTERM/SIGINT stop cleanly. With `[websub]`, a push task
//! (`crate::push::websub`) follows the served topics' changes; webhooks POST new stories
//! (`crate::push::webhook`).
//!
//! Next-due times live in the `sources` table, so a restart neither forgets a source nor
//! polls them all at once: sources that fell due while the daemon was down are spread over
//! the next minutes by their deterministic jitter.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sd_notify::NotifyState;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Config, SourceConfig};
use crate::ingest::{Outcome, PollReport, Poller};
use crate::normalize::url::host_key;
use crate::schedule::jitter;
use crate::store::{sources, Store};

/// How long in-flight polls may run after SIGTERM before they are abandoned.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// PostgreSQL: most claims asked and not answered yet. While the cluster's slots are in use
/// every claim says so; an instance that asked for every due source at once had sent ~1,200
/// claims a second in a cold pass (371,231 claims for 6,000 polls, most of the server's time).
const CLAIMS_IN_FLIGHT: usize = 4;

/// PostgreSQL: after a claim found the cluster's `concurrency` in use, how long the instance
/// waits before it asks again, unless one of its own polls ends first (which frees a slot).
const CLUSTER_FULL_WAIT: chrono::Duration = chrono::Duration::milliseconds(250);

/// PostgreSQL: after a claim found a host's `per_host` in use, how long that host's sources
/// wait (unless one of this instance's polls of the host ends first); other hosts go on.
const HOST_FULL_WAIT: chrono::Duration = chrono::Duration::seconds(1);

/// State shared by the scheduler, the HTTP server and the watchdog.
#[derive(Clone)]
pub struct Shared {
    /// The database.
    pub store: Store,
    /// The running configuration (swapped on reload).
    pub config: Arc<RwLock<Arc<Config>>>,
    /// Unix seconds of the scheduler's last loop: liveness for `/healthz` and the watchdog.
    pub heartbeat: Arc<AtomicI64>,
    /// Sources currently failing (for STATUS= and `/metrics`).
    pub failing: Arc<AtomicUsize>,
}

impl Shared {
    /// The running configuration.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(config_path: PathBuf, config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let store = Store::open_configured(&config.daemon)?;
    // The last process may have stopped between a poll and its settle.
    store.request_settle();
    if let Err(e) = store.checkpoint_in_background().await {
        // Checkpoints then stay inside the writer's commits: slower polls now and then, no harm.
        tracing::warn!("{e:#}");
    }
    set_max_size(&store, config.daemon.max_db_size).await?;
    set_failing_after(&store, config.daemon.failing_after).await?;
    sync_sources(&store, &config).await?;
    let shared = Shared {
        store: store.clone(),
        config: Arc::new(RwLock::new(config.clone())),
        heartbeat: Arc::new(AtomicI64::new(0)),
        failing: Arc::new(AtomicUsize::new(0)),
    };
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut state = crate::serve::AppState::new(shared.store.clone(), shared.config.clone(), shared.heartbeat.clone());
    if let Some(w) = config.websub.as_ref().filter(|w| w.serve_hub || !w.hubs.is_empty()) {
        let websub = crate::push::websub::WebSub::new(shared.store.clone(), shared.config.clone(), w.clone())
            .context("starting WebSub")?;
        let websub = Arc::new(websub);
        state.websub = Some(websub.clone());
        // Subscribed before serving starts, so no change goes unseen.
        tokio::spawn(websub.run(state.topic_changes(), stop_rx.clone()));
        tracing::info!(hubs = w.hubs.len(), serve_hub = w.serve_hub, "WebSub on");
    }
    // Subscribed before the server starts, so the first build of every topic is seen (the
    // webhooks' baseline). Only with webhooks configured: a subscriber keeps every topic built.
    let webhooks = (!config.webhooks.is_empty()).then(|| {
        tokio::spawn(crate::push::webhook::run(
            store.clone(),
            shared.config.clone(),
            state.topic_changes(),
            stop_rx.clone(),
        ))
    });
    let server = start_server(state, &config, stop_rx.clone()).await?;

    let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel::<Arc<Config>>();
    let scheduler = tokio::spawn(scheduler(
        shared.clone(),
        Poller::new(config.clone(), store.clone())?,
        config.clone(),
        reload_rx,
        stop_rx.clone(),
    ));
    let retention = tokio::spawn(retention_loop(shared.clone(), stop_rx.clone()));
    let digests = tokio::spawn(crate::digest::run(store.clone(), shared.config.clone(), stop_rx.clone()));

    // READY=1 only once the database is migrated, the scheduler loop has run and the
    // listener is bound.
    wait_for_heartbeat(&shared).await;
    notify(&[NotifyState::Ready]);
    let watchdog = tokio::spawn(watchdog_loop(shared.clone(), stop_rx.clone()));
    tracing::info!(sources = config.sources.len(), topics = config.topics.len(), database = %config.daemon.database.display(), "newsdesk running");

    signals(&config_path, &shared, &reload_tx).await?;

    notify(&[NotifyState::Stopping]);
    tracing::info!("stopping: no new polls; waiting up to {}s for polls in flight", SHUTDOWN_GRACE.as_secs());
    let _ = stop_tx.send(true);
    if let Err(e) = scheduler.await {
        tracing::error!("scheduler task failed: {e}");
    }
    watchdog.abort();
    retention.abort();
    digests.abort();
    if let Some(w) = webhooks {
        match tokio::time::timeout(Duration::from_secs(5), w).await {
            Ok(Ok(Err(e))) => tracing::error!("webhooks: {e:#}"),
            Err(_) => tracing::warn!("webhooks did not stop within 5s"),
            _ => {}
        }
    }
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Err(e))) => tracing::warn!("HTTP server: {e:#}"),
        Err(_) => tracing::warn!("HTTP server did not stop within 5s"),
        _ => {}
    }
    // Let the writer finish what it was given: each feed commits whole or not at all.
    let _ = store.write(|_| ()).await;
    tracing::info!("stopped");
    Ok(())
}

/// Binds `listen` and starts the HTTP server on it.
async fn start_server(
    state: crate::serve::AppState,
    config: &Config,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(&config.daemon.listen)
        .await
        .with_context(|| format!("binding the HTTP listener on {}", config.daemon.listen))?;
    tracing::info!(listen = %config.daemon.listen, "serving HTTP");
    Ok(tokio::spawn(crate::serve::run(listener, state, stopped(stop))))
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn sync_sources(store: &Store, config: &Config) -> anyhow::Result<()> {
    let srcs = config.sources.clone();
    store
        .write(move |w| sources::sync(&mut w.conn, &srcs))
        .await?
        .with_context(|| format!("recording sources in {}", store.describe()))
}

async fn set_max_size(store: &Store, bytes: Option<u64>) -> anyhow::Result<()> {
    store.write(move |w| w.set_max_size(bytes)).await?.context("setting the database size cap (max_db_size)")
}

async fn set_failing_after(store: &Store, n: u32) -> anyhow::Result<()> {
    store.write(move |w| w.set_failing_after(n)).await.context("setting failing_after")
}

async fn wait_for_heartbeat(shared: &Shared) {
    for _ in 0..200 {
        if shared.heartbeat.load(Ordering::Acquire) > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn notify(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!("sd_notify: {e}");
    }
}

/// Waits for SIGTERM/SIGINT; handles SIGHUP reloads meanwhile.
async fn signals(
    path: &Path,
    shared: &Shared,
    reload_tx: &tokio::sync::mpsc::UnboundedSender<Arc<Config>>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                notify(&[NotifyState::Reloading]);
                match Config::load(path) {
                    Ok(new) => {
                        let new = Arc::new(new);
                        if new.daemon.database != shared.config().daemon.database || new.daemon.listen != shared.config().daemon.listen {
                            tracing::warn!("reload: `database` and `listen` changes take effect after a restart");
                        }
                        if let Err(e) = set_max_size(&shared.store, new.daemon.max_db_size).await {
                            tracing::error!("reload: applying max_db_size: {e:#}");
                        }
                        if let Err(e) = set_failing_after(&shared.store, new.daemon.failing_after).await {
                            tracing::error!("reload: applying failing_after: {e:#}");
                        }
                        match sync_sources(&shared.store, &new).await {
                            Ok(()) => {
                                *shared.config.write().unwrap_or_else(|p| p.into_inner()) = new.clone();
                                let _ = reload_tx.send(new);
                            }
                            Err(e) => tracing::error!("reload failed, keeping the running configuration: {e:#}"),
                        }
                    }
                    Err(errors) => {
                        for e in &errors.0 {
                            tracing::error!("reload rejected, keeping the running configuration: {e}");
                        }
                    }
                }
                notify(&[NotifyState::Ready]);
            }
        }
    }
}

/// Due queue: (due time, source id), earliest first.
type Queue = BTreeSet<(DateTime<Utc>, String)>;

/// Polls every source when it is due, at most `concurrency` in flight and `per_host` per host,
/// never the same source twice at once. Returns after a stop, once in-flight polls finished
/// or were abandoned after [`SHUTDOWN_GRACE`].
async fn scheduler(
    shared: Shared,
    mut poller: Poller,
    mut config: Arc<Config>,
    mut reloads: tokio::sync::mpsc::UnboundedReceiver<Arc<Config>>,
    mut stop: watch::Receiver<bool>,
) {
    // `config` is the poller's own (shared, not a deep copy: with 10,000 sources a copy of
    // the configuration is megabytes).
    let mut sources: HashMap<String, SourceConfig> = config.sources.iter().map(|s| (s.id.clone(), s.clone())).collect();
    let mut queue = Queue::new();
    let mut due_at: HashMap<String, DateTime<Utc>> = HashMap::new();
    initial_queue(&shared.store, &sources, &mut queue, &mut due_at).await;
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut per_host: HashMap<String, usize> = HashMap::new();
    let mut tasks: JoinSet<PollReport> = JoinSet::new();
    let mut failing: HashSet<String> = HashSet::new();
    let mut last_status = Utc::now() - chrono::Duration::hours(1);
    // PostgreSQL: claims asked but not answered, and until when the cluster (or a host) was
    // found full (see [`CLAIMS_IN_FLIGHT`]).
    let pg = shared.store.is_pg();
    let (claimed_tx, mut claimed_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut claims_pending = 0usize;
    let mut cluster_full_until: Option<DateTime<Utc>> = None;
    let mut host_full_until: HashMap<String, DateTime<Utc>> = HashMap::new();
    loop {
        let now = Utc::now();
        host_full_until.retain(|_, t| *t > now);
        if cluster_full_until.is_some_and(|t| t <= now) {
            cluster_full_until = None;
        }
        shared.heartbeat.store(now.timestamp(), Ordering::Release);
        // Start what is due, within the limits; a saturated host leaves its sources queued
        // without blocking other hosts.
        let mut deferred = Vec::new();
        while let Some((due, id)) = queue.first().cloned() {
            if due > now || in_flight.len() >= config.daemon.concurrency {
                break;
            }
            if pg && (claims_pending >= CLAIMS_IN_FLIGHT || cluster_full_until.is_some()) {
                break;
            }
            queue.pop_first();
            let Some(src) = sources.get(&id).cloned() else {
                due_at.remove(&id);
                continue;
            };
            let host = host_key(&src.url);
            if per_host.get(&host).copied().unwrap_or(0) >= config.daemon.per_host
                || host_full_until.contains_key(&host)
            {
                deferred.push((due, id));
                continue;
            }
            due_at.remove(&id);
            *per_host.entry(host).or_default() += 1;
            in_flight.insert(id.clone());
            let p = poller.clone();
            if pg {
                let (store, d, claimed) = (shared.store.clone(), config.daemon.clone(), claimed_tx.clone());
                claims_pending += 1;
                tasks.spawn(async move { poll_claimed(&p, &store, &src, &d, claimed).await });
            } else {
                tasks.spawn(async move { p.poll(&src, false).await });
            }
        }
        queue.extend(deferred);
        if (now - last_status).num_seconds() >= 10 {
            status_line(&shared, sources.len(), failing.len(), queue.first().map(|(d, _)| *d), now);
            last_status = now;
        }
        let mut wake = next_wake(&queue, now);
        // Due sources held back by a full cluster or host are started when that ends.
        for t in cluster_full_until.iter().chain(host_full_until.values()) {
            wake = wake.min(*t);
        }
        let sleep =
            (wake - now).to_std().unwrap_or(Duration::ZERO).clamp(Duration::from_millis(1), Duration::from_secs(1));
        tokio::select! {
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                let Ok(report) = done else { continue };
                let id = report.source_id.clone();
                in_flight.remove(&id);
                if let Some(src) = sources.get(&id) {
                    if let Some(n) = per_host.get_mut(&host_key(&src.url)) {
                        *n = n.saturating_sub(1);
                    }
                    match &report.outcome {
                        Outcome::Elsewhere => claims_pending = claims_pending.saturating_sub(1),
                        Outcome::Busy { host } => {
                            claims_pending = claims_pending.saturating_sub(1);
                            let now = Utc::now();
                            if *host {
                                host_full_until.insert(host_key(&src.url), now + HOST_FULL_WAIT);
                            } else {
                                cluster_full_until = Some(now + CLUSTER_FULL_WAIT);
                            }
                        }
                        outcome => {
                            // One of our polls ended: a slot of the cluster and of its host is free.
                            cluster_full_until = None;
                            host_full_until.remove(&host_key(&src.url));
                            match outcome {
                                Outcome::Failed(_) => { failing.insert(id.clone()); }
                                _ => { failing.remove(&id); }
                            }
                        }
                    }
                    if let Some(next) = report.next_due {
                        enqueue(&mut queue, &mut due_at, &id, next);
                    }
                } else {
                    // Removed by a reload while in flight: its per-host slot was under the old URL.
                    per_host.retain(|_, n| *n > 0);
                }
                shared.failing.store(failing.len(), Ordering::Relaxed);
            }
            Some(new) = reloads.recv() => {
                let (added, removed, changed) = apply_reload(&new, &mut sources, &mut queue, &mut due_at, &mut failing);
                tracing::info!(added, removed, changed, sources = sources.len(), "configuration reloaded");
                poller = poller.with_config(new.clone());
                config = new;
                // Sources added by the reload need their stored state (next due) looked up.
                let fresh: HashMap<String, SourceConfig> = sources.iter().filter(|(id, _)| !due_at.contains_key(*id) && !in_flight.contains(*id)).map(|(k, v)| (k.clone(), v.clone())).collect();
                initial_queue(&shared.store, &fresh, &mut queue, &mut due_at).await;
            }
            Some(()) = claimed_rx.recv() => {
                // A claim was won: its poll goes on, and there was a free slot.
                claims_pending = claims_pending.saturating_sub(1);
                cluster_full_until = None;
            }
            _ = tokio::time::sleep(sleep) => {}
            _ = stop.changed() => break,
        }
    }
    // Stopping: no new polls. In-flight polls get the grace period; a poll abandoned after it
    // either had its transaction sent to the writer (then it commits whole) or not (nothing).
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while !tasks.is_empty() {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(abandoned = tasks.len(), "polls still running after the grace period: abandoned");
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
}

/// How long a claim on a source lasts: past it another instance takes the source (this one
/// was killed mid-poll). Twice the poll timeout, and at least 10 s.
pub fn lease_secs(d: &crate::config::DaemonConfig) -> i64 {
    (d.timeout.as_secs() as i64 * 2).max(10)
}

/// Polls `src` if this instance wins its claim (PostgreSQL with several instances), and says
/// so on `claimed` before it polls; else reports [`Outcome::Elsewhere`] or [`Outcome::Busy`]
/// with when to ask again. A database that cannot be reached pauses the source for a few
/// seconds (nothing is fetched that could not be stored).
async fn poll_claimed(
    p: &Poller,
    store: &Store,
    src: &SourceConfig,
    d: &crate::config::DaemonConfig,
    claimed: tokio::sync::mpsc::UnboundedSender<()>,
) -> PollReport {
    let now = Utc::now().timestamp();
    let (id, host, me) = (src.id.clone(), host_key(&src.url), crate::store::pg::instance_id());
    let (per_host, concurrency, until) = (d.per_host, d.concurrency, now + lease_secs(d));
    let s = store.clone();
    let claim = tokio::task::spawn_blocking(move || {
        s.read(|c| sources::claim(c, &id, &host, me, now, until, per_host, concurrency))
    })
    .await;
    let report = |outcome: Outcome, next_due: Option<DateTime<Utc>>| PollReport {
        source_id: src.id.clone(),
        url: src.url.to_string(),
        outcome,
        elapsed: Duration::ZERO,
        next_due,
    };
    let again = |at: i64| report(Outcome::Elsewhere, DateTime::from_timestamp(at, 0));
    match claim {
        Ok(Ok(sources::Claim::Mine)) => {
            let _ = claimed.send(());
        }
        Ok(Ok(sources::Claim::Elsewhere(at))) => return again(at.max(now + 1)),
        // Due again at once: the scheduler holds it back until the cluster may have a slot.
        Ok(Ok(sources::Claim::Full)) => return report(Outcome::Busy { host: false }, Some(Utc::now())),
        Ok(Ok(sources::Claim::HostFull)) => {
            return report(Outcome::Busy { host: true }, Some(Utc::now() + HOST_FULL_WAIT))
        }
        Ok(Err(e)) => {
            tracing::warn!(source = %src.id, "claiming the source in the database: {e:#} (retried in 5 s)");
            return again(now + 5);
        }
        Err(e) => {
            tracing::warn!(source = %src.id, "claiming the source: {e}");
            return again(now + 5);
        }
    }
    let report = p.poll(src, false).await;
    let (s, id) = (store.clone(), src.id.clone());
    let released = tokio::task::spawn_blocking(move || s.read(|c| sources::release(c, &id, me))).await;
    if !matches!(released, Ok(Ok(()))) {
        tracing::debug!(source = %src.id, "releasing the claim failed; it expires by itself");
    }
    report
}

/// When the scheduler's timer should fire: at the first queued source not yet due, at most a
/// second away (heartbeat, status line). Sources already due but still queued are waiting for
/// a concurrency or per-host slot, which only a finishing poll frees (and that wakes the loop
/// on its own), so they do not shorten the sleep: waking for them would only spin.
fn next_wake(queue: &Queue, now: DateTime<Utc>) -> DateTime<Utc> {
    let not_yet_due = (now + chrono::Duration::nanoseconds(1), String::new());
    let cap = now + chrono::Duration::seconds(1);
    queue.range(not_yet_due..).next().map_or(cap, |(due, _)| (*due).min(cap))
}

fn enqueue(queue: &mut Queue, due_at: &mut HashMap<String, DateTime<Utc>>, id: &str, due: DateTime<Utc>) {
    if let Some(old) = due_at.insert(id.to_string(), due) {
        queue.remove(&(old, id.to_string()));
    }
    queue.insert((due, id.to_string()));
}

/// Reads stored next-due times. Overdue and never-polled sources are spread over the next
/// minutes by their jitter instead of firing together.
async fn initial_queue(
    store: &Store,
    sources: &HashMap<String, SourceConfig>,
    queue: &mut Queue,
    due_at: &mut HashMap<String, DateTime<Utc>>,
) {
    let states = match store.reader().and_then(|c| Ok(sources::all(&c)?)) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("reading source state: {e:#}");
            Vec::new()
        }
    };
    let states: HashMap<String, sources::SourceState> = states.into_iter().map(|s| (s.id.clone(), s)).collect();
    let now = Utc::now();
    let stored_due = |id: &str| states.get(id).and_then(|s| s.next_due).and_then(|t| DateTime::from_timestamp(t, 0));
    // The catch-up window grows with the backlog (a quarter second per overdue source, at
    // most 10 minutes or one period), so one new source is polled at once and ten thousand
    // are not polled in the same second.
    let overdue = sources.keys().filter(|id| stored_due(id).is_none_or(|t| t <= now)).count() as u32;
    let backlog = Duration::from_millis(250) * overdue;
    for (id, src) in sources {
        let st = states.get(id);
        if st.is_some_and(|s| s.status == "retired") {
            continue;
        }
        let not_before = st.and_then(|s| s.retry_after).and_then(|t| DateTime::from_timestamp(t, 0));
        let due = match stored_due(id) {
            Some(t) if t > now => t,
            _ => {
                let period = src.schedule.period(now);
                let window = backlog.min(period).min(Duration::from_secs(600));
                match src.schedule.slot_at_or_after(id, now) {
                    // A catch-up as long as the period: an `every` source goes straight to its
                    // own slot (an even spread too), so its second poll comes one period after
                    // the first instead of moving up to half a period to reach the slot, which
                    // made the second pass overlap the first (twice the rate for a while).
                    Some(slot) if window >= period => slot,
                    // jitter() spreads over half the span it is given.
                    _ => now + chrono::Duration::from_std(jitter(id, window * 2)).unwrap_or_default(),
                }
            }
        };
        let due = not_before.map_or(due, |nb| due.max(nb));
        enqueue(queue, due_at, id, due);
    }
}

fn apply_reload(
    new: &Config,
    sources: &mut HashMap<String, SourceConfig>,
    queue: &mut Queue,
    due_at: &mut HashMap<String, DateTime<Utc>>,
    failing: &mut HashSet<String>,
) -> (usize, usize, usize) {
    let (mut added, mut removed, mut changed) = (0, 0, 0);
    let now = Utc::now();
    let new_ids: HashSet<&str> = new.sources.iter().map(|s| s.id.as_str()).collect();
    let gone: Vec<String> = sources.keys().filter(|id| !new_ids.contains(id.as_str())).cloned().collect();
    for id in gone {
        sources.remove(&id);
        failing.remove(&id);
        if let Some(due) = due_at.remove(&id) {
            queue.remove(&(due, id.clone()));
        }
        removed += 1;
    }
    for s in &new.sources {
        match sources.get(&s.id) {
            None => {
                sources.insert(s.id.clone(), s.clone());
                added += 1;
            }
            Some(old) if old != s => {
                // A new URL or schedule takes effect at once.
                if old.url != s.url || old.schedule != s.schedule {
                    let due = if old.url != s.url { now } else { s.schedule.next_due(&s.id, now) };
                    enqueue(queue, due_at, &s.id, due);
                }
                sources.insert(s.id.clone(), s.clone());
                changed += 1;
            }
            Some(_) => {}
        }
    }
    (added, removed, changed)
}

fn status_line(shared: &Shared, sources: usize, failing: usize, next: Option<DateTime<Utc>>, now: DateTime<Utc>) {
    let next = next.map(|n| (n - now).num_seconds().max(0));
    let line = match next {
        Some(s) => format!("{sources} sources, {failing} failing, next poll in {s}s"),
        None => format!("{sources} sources, {failing} failing"),
    };
    shared.failing.store(failing, Ordering::Relaxed);
    notify(&[NotifyState::Status(&line)]);
}

/// Pings the systemd watchdog, but only after the database answered through the writer (the
/// same path every poll takes) and the scheduler loop is alive.
async fn watchdog_loop(shared: Shared, mut stop: watch::Receiver<bool>) {
    let Some(interval) = sd_notify::watchdog_enabled() else { return };
    let every = (interval / 2).max(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let db_ok = matches!(
            tokio::time::timeout(
                every,
                shared.store.write(|w| w.conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
            )
            .await,
            Ok(Ok(Ok(1)))
        );
        let beat = Utc::now().timestamp() - shared.heartbeat.load(Ordering::Acquire);
        if db_ok && beat <= 60 {
            notify(&[NotifyState::Watchdog]);
        } else {
            tracing::warn!(db_ok, scheduler_silent_secs = beat, "health check failed: not pinging the watchdog");
        }
    }
}

/// Prunes items older than `retention` now and every hour.
async fn retention_loop(shared: Shared, mut stop: watch::Receiver<bool>) {
    loop {
        let retention = shared.config().daemon.retention;
        let cutoff = Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(30));
        match shared.store.write(move |w| crate::store::retention::prune(w, cutoff)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(items = n, "retention: pruned items older than the retention period"),
            Ok(Err(e)) => tracing::error!("retention failed: {e}"),
            _ => {}
        }
        if !shared.config().webhooks.is_empty() {
            let keep = chrono::Duration::from_std(retention * 2).unwrap_or(chrono::Duration::days(60));
            let cutoff_ms = (Utc::now() - keep).timestamp_millis();
            if let Ok(Err(e)) = shared.store.write(move |w| crate::push::webhook::prune(&mut w.conn, cutoff_ms)).await {
                tracing::error!("retention of webhook delivery state failed: {e}");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RETENTION_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_fires_at_the_next_source_not_yet_due_and_within_a_second() {
        let now = Utc::now();
        let ms = chrono::Duration::milliseconds;
        let mut queue = Queue::new();
        assert_eq!(next_wake(&queue, now), now + ms(1000), "nothing queued: the heartbeat's second");
        // Due 2 ms from now: wake then, not at a coarser step.
        queue.insert((now + ms(2), "b".into()));
        assert_eq!(next_wake(&queue, now), now + ms(2));
        // Overdue sources waiting for a slot do not make the timer spin.
        queue.insert((now - ms(500), "a".into()));
        queue.insert((now, "c".into()));
        assert_eq!(next_wake(&queue, now), now + ms(2));
        queue.remove(&(now + ms(2), "b".into()));
        assert_eq!(next_wake(&queue, now), now + ms(1000));
        queue.insert((now + ms(5000), "d".into()));
        assert_eq!(next_wake(&queue, now), now + ms(1000), "at most a second away");
    }
}
