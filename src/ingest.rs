//! Ingest: the whole refresh pipeline for one source, read top to bottom
//! (fetch -> parse -> normalize -> dedup -> store), and polling many sources at once within
//! the global and per-host limits.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use url::Url;

use crate::config::{Config, SourceConfig};
use crate::fetch::{FetchError, FetchLimits, Fetcher};
use crate::normalize::url::host_key;
use crate::store::items::IngestCounts;
use crate::store::sources::{self, PollRecord, PollResult, SourceState};
use crate::store::Store;

/// The outcome of polling one source, for the per-source summary.
#[derive(Debug, Clone)]
pub struct PollReport {
    /// Source id.
    pub source_id: String,
    /// The URL polled.
    pub url: String,
    /// What happened.
    pub outcome: Outcome,
    /// Wall time of the poll.
    pub elapsed: Duration,
    /// When the source is due next (`None` when it was not polled: retired).
    pub next_due: Option<DateTime<Utc>>,
}

/// Summary outcome of one poll.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A document was stored.
    Stored {
        /// Item counts.
        counts: IngestCounts,
        /// Items dropped by the per-feed cap.
        dropped: usize,
        /// Items left out as older than `retention`, and that retention.
        past_retention: (usize, Duration),
    },
    /// 304 Not Modified.
    NotModified,
    /// The source is retired (410) and was not polled.
    Retired(String),
    /// The poll failed.
    Failed(String),
    /// Not polled here: another instance on the same database polled it or is polling it
    /// (see [`crate::store::sources::claim`]).
    Elsewhere,
    /// Not polled yet: the cluster's `per_host` for its host (`host`) or its `concurrency`
    /// is used up by the polls of all instances.
    Busy {
        /// The host's limit, not the cluster's.
        host: bool,
    },
}

impl std::fmt::Display for PollReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.elapsed.as_millis();
        match &self.outcome {
            Outcome::Stored { counts, dropped, past_retention: (old, retention) } => {
                write!(
                    f,
                    "{}: {} new, {} updated, {} unchanged",
                    self.source_id, counts.new, counts.updated, counts.unchanged
                )?;
                if *old > 0 {
                    write!(f, ", {old} past retention ({})", crate::config::format_duration(*retention))?;
                }
                if counts.linked > 0 {
                    write!(f, " ({} already known from other sources)", counts.linked)?;
                }
                if *dropped > 0 {
                    write!(f, "; {dropped} items over the per-feed cap dropped")?;
                }
                write!(f, " [{ms} ms]")
            }
            Outcome::NotModified => write!(f, "{}: unchanged (304 Not Modified) [{ms} ms]", self.source_id),
            Outcome::Retired(why) => write!(f, "{}: retired, not polled: {why}", self.source_id),
            Outcome::Elsewhere => write!(f, "{}: polled by another instance", self.source_id),
            Outcome::Busy { host: true } => {
                write!(f, "{}: its host's per_host is in use by the cluster", self.source_id)
            }
            Outcome::Busy { host: false } => write!(f, "{}: the cluster's concurrency is in use", self.source_id),
            Outcome::Failed(e) => write!(f, "{}: error: {e} ({}) [{ms} ms]", self.source_id, self.url),
        }
    }
}

/// Polls sources with a shared HTTP client and the configured limits.
#[derive(Clone)]
pub struct Poller {
    fetcher: Fetcher,
    store: Store,
    config: Arc<Config>,
    global: Arc<Semaphore>,
    hosts: Arc<std::sync::Mutex<HashMap<String, Arc<Semaphore>>>>,
    /// CPU-bound parse jobs running at once: one per core. More only queue for the same
    /// cores and starve the single writer thread, the stage every poll ends in.
    parsers: Arc<Semaphore>,
}

impl Poller {
    /// A poller for `config` writing to `store`.
    pub fn new(config: Arc<Config>, store: Store) -> anyhow::Result<Poller> {
        let d = &config.daemon;
        let fetcher =
            Fetcher::new(FetchLimits { timeout: d.timeout, connect_timeout: d.connect_timeout, max_body: d.max_body })?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Poller {
            fetcher,
            store,
            global: Arc::new(Semaphore::new(d.concurrency)),
            hosts: Arc::default(),
            parsers: Arc::new(Semaphore::new(cores)),
            config,
        })
    }

    fn host_semaphore(&self, url: &Url) -> Arc<Semaphore> {
        let key = host_key(url);
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.entry(key).or_insert_with(|| Arc::new(Semaphore::new(self.config.daemon.per_host))).clone()
    }

    /// Polls one source now: fetch, parse, store, schedule the next poll.
    pub async fn poll(&self, source: &SourceConfig, force: bool) -> PollReport {
        let started = Instant::now();
        let id = source.id.clone();
        let state = {
            let id = id.clone();
            self.store.read(|c| sources::state(c, &id)).ok().flatten()
        };
        let state =
            state.unwrap_or_else(|| SourceState { id: id.clone(), url: source.url.to_string(), ..Default::default() });
        let url = Url::parse(&state.url).unwrap_or_else(|_| source.url.clone());
        let report = |outcome| PollReport {
            source_id: id.clone(),
            url: url.to_string(),
            outcome,
            elapsed: started.elapsed(),
            next_due: None,
        };
        if state.status == "retired" && !force {
            return report(Outcome::Retired(state.retired_reason.clone().unwrap_or_default()));
        }
        // The global permit is held through parse and store, so at most `concurrency` bodies
        // are in memory at once; the per-host permit only covers the network exchange.
        let Ok(_global) = self.global.acquire().await else { return report(Outcome::Failed("shutting down".into())) };
        let fetched = {
            let host = self.host_semaphore(&url);
            let Ok(_host) = host.acquire().await else { return report(Outcome::Failed("shutting down".into())) };
            self.fetcher.fetch(&url, &state.validators).await
        };
        let now = Utc::now();
        let (result, moved_to, hint) = match fetched {
            Ok(f) => {
                let moved_to = f.moved_to.as_ref().map(|u| u.to_string());
                if let Some(to) = &moved_to {
                    tracing::info!(source = %id, from = %url, to = %to, "permanent redirect: updating the source URL");
                }
                match f.body {
                    None => (PollResult::NotModified { validators: f.validators }, moved_to, f.max_age),
                    Some(body) => {
                        let max_items = self.config.daemon.max_items;
                        let base = f.final_url.clone();
                        let ct = f.content_type.clone();
                        // Items already past retention would be pruned at once (and come
                        // back on every poll once their tombstones expire).
                        let cutoff = now
                            - chrono::Duration::from_std(self.config.daemon.retention)
                                .unwrap_or(chrono::Duration::days(30));
                        let configured_title = source.title.clone();
                        let source_id = id.clone();
                        // Parsing, sanitising and clustering features run here, in parallel;
                        // the single writer then only scores and stores.
                        let Ok(_parser) = self.parsers.acquire().await else {
                            return report(Outcome::Failed("shutting down".into()));
                        };
                        let parsed = tokio::task::spawn_blocking(move || {
                            // Yield to the writer every poll ends in (see `priority`).
                            crate::priority::at_least(crate::priority::PARSE_NICE);
                            let mut feed = crate::parse::parse_feed(&body, ct.as_deref(), &base, max_items, now)?;
                            let listed = feed.items.len();
                            feed.items.retain(|i| i.published.is_none_or(|p| p >= cutoff));
                            feed.past_retention = listed - feed.items.len();
                            let outlet =
                                configured_title.or_else(|| feed.title.clone()).unwrap_or_else(|| source_id.clone());
                            let features = feed
                                .items
                                .iter()
                                .map(|it| {
                                    crate::store::stories::features(
                                        &it.title,
                                        it.summary_html.as_deref().or(it.content_html.as_deref()),
                                        it.link.as_deref(),
                                        &outlet,
                                        &source_id,
                                    )
                                })
                                .collect::<Vec<_>>();
                            Ok::<_, crate::parse::ParseError>((feed, features))
                        })
                        .await;
                        match parsed {
                            Ok(Ok((feed, features))) => {
                                if feed.items_dropped > 0 {
                                    tracing::warn!(source = %id, url = %url, kept = feed.items.len(), dropped = feed.items_dropped, "feed exceeds the per-feed item cap (max_items); extra items dropped");
                                }
                                let ttl = feed.ttl_minutes.map(|m| Duration::from_secs(u64::from(m) * 60));
                                let hint = f.max_age.max(ttl);
                                (
                                    PollResult::Content {
                                        feed,
                                        features,
                                        validators: f.validators,
                                        http_status: f.status,
                                    },
                                    moved_to,
                                    hint,
                                )
                            }
                            // A document we could not read must be fetched again in full next
                            // time, so its validators are not kept.
                            Ok(Err(e)) => (failed(e.to_string(), Some(f.status), false, None), moved_to, None),
                            Err(e) => {
                                (failed(format!("parser crashed: {e}"), Some(f.status), false, None), moved_to, None)
                            }
                        }
                    }
                }
            }
            Err(e) => {
                let (status, retire, retry) = match &e {
                    FetchError::Gone => (Some(410), true, None),
                    FetchError::RetryLater { status, retry_after } => (
                        Some(*status),
                        false,
                        retry_after.and_then(|d| chrono::Duration::from_std(d).ok()).map(|d| now + d),
                    ),
                    FetchError::Status(s) => (Some(*s), false, None),
                    _ => (None, false, None),
                };
                (failed(e.to_string(), status, retire, retry), None, None)
            }
        };
        let failures = if matches!(result, PollResult::Failed { .. }) { state.failures + 1 } else { 0 };
        let retry_at = match &result {
            PollResult::Failed { retry_after, .. } => *retry_after,
            _ => None,
        };
        let skip = match &result {
            PollResult::Content { feed, .. } => feed.skip,
            _ => state.skip,
        };
        let next_due = crate::schedule::plan_next(
            &source.schedule,
            &id,
            now,
            failures,
            retry_at,
            hint.map(|h| h.min(self.config.daemon.max_interval)),
            skip,
        );
        let retention = self.config.daemon.retention;
        let outcome_of = move |r: &PollResult, counts: IngestCounts| match r {
            PollResult::Content { feed, .. } => Outcome::Stored {
                counts,
                dropped: feed.items_dropped,
                past_retention: (feed.past_retention, retention),
            },
            PollResult::NotModified { .. } => Outcome::NotModified,
            PollResult::Failed { message, .. } => Outcome::Failed(message.clone()),
        };
        let rec = PollRecord { source_id: id.clone(), now, next_due, moved_to, result };
        let written = self
            .store
            .write_grouped(move |c| sources::record_poll(c, &rec).map(|counts| outcome_of(&rec.result, counts)))
            .await;
        let outcome = match written {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => Outcome::Failed(format!("storing failed: {e}")),
            Err(e) => Outcome::Failed(e.to_string()),
        };
        let m = &crate::metrics::METRICS;
        m.observe_fetch(started.elapsed());
        match &outcome {
            Outcome::Failed(_) => m.polls_failed.fetch_add(1, Relaxed),
            Outcome::NotModified => m.polls_not_modified.fetch_add(1, Relaxed),
            Outcome::Stored { counts, .. } => {
                m.items_new.fetch_add(counts.new as u64, Relaxed);
                m.items_updated.fetch_add(counts.updated as u64, Relaxed);
                m.polls_ok.fetch_add(1, Relaxed)
            }
            Outcome::Retired(_) | Outcome::Elsewhere | Outcome::Busy { .. } => 0,
        };
        match &outcome {
            Outcome::Failed(e) => tracing::warn!(source = %id, url = %url, error = %e, "poll failed"),
            Outcome::Stored { counts, past_retention: (old, retention), .. }
                if counts.new + counts.updated > 0 || *old > 0 =>
            {
                tracing::info!(source = %id, new = counts.new, updated = counts.updated, past_retention = old, retention = %crate::config::format_duration(*retention), "stored")
            }
            _ => tracing::debug!(source = %id, "unchanged"),
        }
        PollReport { next_due: Some(next_due), ..report(outcome) }
    }

    /// Polls the given sources concurrently (within the limits); calls `progress` after each.
    pub async fn poll_many(
        &self,
        sources: Vec<SourceConfig>,
        force: bool,
        progress: impl Fn(&PollReport) + Send + Sync + 'static,
    ) -> Vec<PollReport> {
        let progress = Arc::new(progress);
        let mut set = tokio::task::JoinSet::new();
        for (i, s) in sources.into_iter().enumerate() {
            let p = self.clone();
            let progress = progress.clone();
            set.spawn(async move {
                let r = p.poll(&s, force).await;
                progress(&r);
                (i, r)
            });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            match r {
                Ok(r) => out.push(r),
                Err(e) => tracing::error!("poll task failed: {e}"),
            }
        }
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, r)| r).collect()
    }

    /// The config this poller runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The same poller (HTTP client, limits) with a reloaded config. Per-host and global
    /// limits take the new values for polls started from now on.
    pub fn with_config(&self, config: Arc<Config>) -> Poller {
        let limits_changed = config.daemon.concurrency != self.config.daemon.concurrency
            || config.daemon.per_host != self.config.daemon.per_host;
        Poller {
            fetcher: self.fetcher.clone(),
            store: self.store.clone(),
            global: if limits_changed {
                Arc::new(Semaphore::new(config.daemon.concurrency))
            } else {
                self.global.clone()
            },
            hosts: if limits_changed { Arc::default() } else { self.hosts.clone() },
            parsers: self.parsers.clone(),
            config,
        }
    }
}

fn failed(message: String, http_status: Option<u16>, retire: bool, retry_after: Option<DateTime<Utc>>) -> PollResult {
    PollResult::Failed { message, http_status, retire, retry_after }
}
