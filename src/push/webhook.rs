//! Webhooks: a POST to each `[[webhook]]` when a story enters one of its topics
//! (`new_story`) or first reaches N outlets there (`min_outlets:N`), as our JSON, an ntfy
//! notification or a Slack-style message, signed with HMAC-SHA256 when a secret is set.
//!
//! The events come from the serving side's topic rebuilds ([`TopicChange`]). Delivery state
//! lives in the database (`webhook_deliveries`, `webhook_batches`), written through the
//! single writer: every story a hook has seen in a topic has a row, so after a restart a
//! story is news only if it has no row yet, and each event goes out at most once per hook
//! (a story carried for one topic is not sent again for another). On a hook's first sight
//! of a topic (no row for the pair) the stories already there become its baseline, recorded
//! and never sent. An event is recorded (with the POST that carries it, body included)
//! before it is sent and marked delivered after a 2xx, so a pending POST is resent after a
//! restart as it was first built, under the same `X-Newsdesk-Delivery` id.
//!
//! Events are gathered per hook for its `batch` window (else about a second, which keeps a
//! burst of rebuilds from turning into a burst of requests), then sent one POST per story,
//! or one per topic and event for a batch. Sending is its own task, a few POSTs at a time,
//! reading the due ones from the database (the database is the queue, so none is lost when
//! many are due, and a retry waits there for its time); failures are retried with
//! [`backoff_from`] up to `[push] max_attempts`, then given up with the reason logged.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::store::db::{params, Connection, OptionalExtension};
use anyhow::Context;
use serde::Serialize;
use tokio::sync::{broadcast, watch, Notify, Semaphore};
use tokio::time::Instant;
use url::Url;

use super::deliver::{backoff_from, hmac_sha256_hex, Deliverer, Outcome};
use super::TopicChange;
use crate::config::{Config, HookEvent, HookFormat, TopicConfig, WebhookConfig};
use crate::render::{self, FeedView, Format};
use crate::select::StoryView;
use crate::store::Store;

/// Without `batch`, events of one hook are gathered this long before they are sent.
pub const COALESCE: Duration = Duration::from_secs(1);

/// POSTs in flight at once, over all hooks: a slow receiver must not take every socket.
pub const CONCURRENCY: usize = 4;

/// Due POSTs read from the database per pass (the rest wait there for the next pass).
const DUE_PER_PASS: usize = 64;

/// The row that marks a topic as seen by a hook (its baseline taken), even an empty one.
const MARK_EVENT: &str = "baseline";

/// Runs webhooks until `stop`: watches `changes`, records events, sends them.
pub async fn run(
    store: Store,
    config: Arc<RwLock<Arc<Config>>>,
    changes: broadcast::Receiver<TopicChange>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let current = config.read().unwrap_or_else(|p| p.into_inner()).clone();
    let deliverer = Deliverer::new(current.push.timeout, current.push.allow_networks.clone())
        .context("building the webhook delivery client")?;
    let wake = Arc::new(Notify::new());
    let sender = tokio::spawn(send_loop(store.clone(), config.clone(), deliverer, wake.clone(), stop.clone()));
    let mut events = Events { store, config, wake, known: HashMap::new(), windows: HashMap::new() };
    events.run(changes, stop).await;
    let _ = sender.await;
    Ok(())
}

/// Webhooks that take digests (`on = ["digest"]`) and follow `topic` (see [`record_digest`]).
pub fn digest_hooks<'a>(config: &'a Config, topic: &str) -> Vec<&'a WebhookConfig> {
    config.webhooks.iter().filter(|h| h.follows(topic) && h.on.contains(&HookEvent::Digest)).collect()
}

/// One detected event waiting for its hook's window to close.
struct Pending {
    topic: String,
    event: HookEvent,
    story: StoryView,
}

/// A hook's open window: events gathered since `opened`, sent at `due`.
struct Window {
    due: Instant,
    events: Vec<Pending>,
}

/// The watching side: detects events in topic changes and records them.
struct Events {
    store: Store,
    config: Arc<RwLock<Arc<Config>>>,
    wake: Arc<Notify>,
    /// (hook, topic) -> (story, event key) already recorded or gathered, by surviving story id.
    known: HashMap<(String, String), HashSet<(i64, String)>>,
    windows: HashMap<String, Window>,
}

impl Events {
    async fn run(&mut self, mut changes: broadcast::Receiver<TopicChange>, mut stop: watch::Receiver<bool>) {
        loop {
            let next = self.windows.values().map(|w| w.due).min();
            let sleep = async {
                match next {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                got = changes.recv() => match got {
                    Ok(change) => self.change(change).await,
                    // Missed changes are not lost news: the next change of each topic is
                    // compared with the recorded state, which still lacks the missed stories.
                    Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(missed = n, "webhooks fell behind the topic changes"),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = sleep => self.flush_due().await,
                _ = stop.changed() => return,
            }
        }
    }

    fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn change(&mut self, change: TopicChange) {
        // Digest feeds' changes: digests are announced when stored (see `record_digest`);
        // searches are no topic's.
        if change.feed != super::FeedKind::Topic {
            return;
        }
        let config = self.config();
        for hook in config.webhooks.iter().filter(|h| h.follows(&change.topic)) {
            let kinds: Vec<HookEvent> = hook.on.iter().copied().filter(|e| *e != HookEvent::Digest).collect();
            if kinds.is_empty() {
                continue;
            }
            if let Err(e) = self.detect(hook, &kinds, &change).await {
                tracing::error!(hook = %hook.id, topic = %change.topic, "webhook: reading or recording delivery state: {e:#}");
            }
        }
    }

    async fn detect(&mut self, hook: &WebhookConfig, kinds: &[HookEvent], change: &TopicChange) -> anyhow::Result<()> {
        let key = (hook.id.clone(), change.topic.clone());
        let baseline = if self.known.contains_key(&key) {
            false
        } else {
            let (h, t) = key.clone();
            let rows = self.store.read(move |c| recorded(c, &h, &t))?;
            let empty = rows.is_empty();
            self.known.insert(key.clone(), rows);
            empty
        };
        let mut fresh: Vec<(HookEvent, &StoryView)> = Vec::new();
        for story in change.stories.iter() {
            for kind in kinds {
                let ev = kind.key();
                let due = match kind {
                    HookEvent::MinOutlets(n) => story.outlets.len() >= *n,
                    _ => true,
                };
                let seen = self.known.get(&key).is_some_and(|k| k.contains(&(story.id, ev.clone())));
                if due && !seen {
                    fresh.push((*kind, story));
                }
            }
        }
        if !baseline && !fresh.is_empty() {
            // A story merged into this one since the state was loaded carries its rows over.
            let (h, t) = key.clone();
            let ids: Vec<i64> = fresh.iter().map(|(_, s)| s.id).collect();
            let merged = self.store.read(move |c| merged_rows(c, &h, &t, &ids))?;
            if let Some(k) = self.known.get_mut(&key) {
                k.extend(merged);
            }
        }
        let known = self.known.entry(key.clone()).or_default();
        let fresh: Vec<(HookEvent, &StoryView)> =
            fresh.into_iter().filter(|(kind, s)| known.insert((s.id, kind.key()))).collect();
        if baseline {
            let rows: Vec<(i64, String)> = fresh.iter().map(|(k, s)| (s.id, k.key())).collect();
            let (h, t) = key;
            tracing::info!(hook = %h, topic = %t, stories = change.stories.len(), "webhook: first sight of the topic; its current stories are the baseline (not sent)");
            self.store.write(move |w| record_seen(&mut w.conn, &h, &t, &rows)).await??;
            return Ok(());
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let window = hook.batch.unwrap_or(COALESCE);
        let w = self
            .windows
            .entry(hook.id.clone())
            .or_insert_with(|| Window { due: Instant::now() + window, events: Vec::new() });
        for (event, story) in fresh {
            w.events.push(Pending { topic: change.topic.clone(), event, story: story.clone() });
        }
        Ok(())
    }

    async fn flush_due(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self.windows.iter().filter(|(_, w)| w.due <= now).map(|(k, _)| k.clone()).collect();
        let config = self.config();
        for id in due {
            let Some(window) = self.windows.remove(&id) else { continue };
            let Some(hook) = config.webhooks.iter().find(|h| h.id == id) else {
                tracing::info!(hook = %id, "webhook removed from the configuration: its gathered events are dropped");
                continue;
            };
            let posts = build_posts(&config, hook, window.events);
            let hook_id = hook.id.clone();
            match self.store.write(move |w| record_posts(&mut w.conn, &hook_id, posts)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    tracing::debug!(hook = %id, posts = n, "webhook: deliveries recorded");
                    self.wake.notify_one();
                }
                Ok(Err(e)) => {
                    // Not recorded, so not known either: the next change finds them again.
                    self.forget(&id);
                    tracing::error!(hook = %id, "webhook: recording deliveries: {e:#}");
                }
                Err(e) => tracing::error!(hook = %id, "webhook: recording deliveries: {e}"),
            }
        }
    }

    fn forget(&mut self, hook: &str) {
        self.known.retain(|(h, _), _| h != hook);
    }
}

/// The (surviving story, event) pairs recorded for `hook` in `topic` (the mark included).
fn recorded(c: &Connection, hook: &str, topic: &str) -> crate::store::db::Result<HashSet<(i64, String)>> {
    let mut st = c.prepare(
        "SELECT COALESCE(s.merged_into, d.story_id), d.event FROM webhook_deliveries d
         LEFT JOIN stories s ON s.id = d.story_id WHERE d.hook = ?1 AND d.topic = ?2",
    )?;
    let rows = st.query_map(params![hook, topic], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Rows of stories since merged into one of `ids`, under the survivor's id.
fn merged_rows(c: &Connection, hook: &str, topic: &str, ids: &[i64]) -> crate::store::db::Result<Vec<(i64, String)>> {
    let mut st = c.prepare_cached(
        "SELECT s.merged_into, d.event FROM webhook_deliveries d JOIN stories s ON s.id = d.story_id
         WHERE d.hook = ?1 AND d.topic = ?2 AND s.merged_into = ?3",
    )?;
    let mut out = Vec::new();
    for id in ids {
        for r in st.query_map(params![hook, topic, id], |r| Ok((r.get(0)?, r.get(1)?)))? {
            out.push(r?);
        }
    }
    Ok(out)
}

fn record_seen(c: &mut Connection, hook: &str, topic: &str, rows: &[(i64, String)]) -> crate::store::db::Result<()> {
    let tx = c.transaction()?;
    let now = now_ms();
    {
        let mut st = tx.prepare_cached(
            "INSERT OR IGNORE INTO webhook_deliveries (hook, topic, story_id, event, status, created)
             VALUES (?1, ?2, ?3, ?4, 'seen', ?5)",
        )?;
        st.execute(params![hook, topic, 0i64, MARK_EVENT, now])?;
        for (story, event) in rows {
            st.execute(params![hook, topic, story, event, now])?;
        }
    }
    tx.commit()
}

/// One POST to be recorded: its body, and the (topic, story, event) rows it carries.
struct Post {
    id: String,
    content_type: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    rows: Vec<(String, i64, String)>,
}

/// Groups a window's events into POSTs: one per event without `batch`, else one per topic
/// and event kind. An event already gathered for another topic is carried once (the other
/// topics' rows ride along in the same POST).
fn build_posts(config: &Config, hook: &WebhookConfig, events: Vec<Pending>) -> Vec<Post> {
    let mut groups: Vec<((String, HookEvent), Vec<StoryView>)> = Vec::new();
    let mut carried: HashMap<(i64, String), usize> = HashMap::new();
    let mut extra: Vec<(usize, (String, i64, String))> = Vec::new();
    for p in events {
        let ev = p.event.key();
        if let Some(&g) = carried.get(&(p.story.id, ev.clone())) {
            extra.push((g, (p.topic, p.story.id, ev)));
            continue;
        }
        let g = match groups.iter().position(|(k, _)| hook.batch.is_some() && k == &(p.topic.clone(), p.event)) {
            Some(g) => g,
            None => {
                groups.push(((p.topic.clone(), p.event), Vec::new()));
                groups.len() - 1
            }
        };
        carried.insert((p.story.id, ev), g);
        groups[g].1.push(p.story);
    }
    let mut posts: Vec<Option<Post>> = groups
        .iter()
        .map(|((topic_id, event), stories)| {
            // A topic removed by a reload since the event was gathered has nothing to say.
            let topic = config.topics.iter().find(|t| &t.id == topic_id)?;
            let (content_type, headers, body) = payload(config, hook, topic, *event, stories);
            let rows = stories.iter().map(|s| (topic_id.clone(), s.id, event.key())).collect();
            Some(Post { id: delivery_id(), content_type, headers, body, rows })
        })
        .collect();
    for (g, row) in extra {
        if let Some(Some(post)) = posts.get_mut(g) {
            post.rows.push(row);
        }
    }
    posts.into_iter().flatten().collect()
}

/// Records `posts` (pending) and their rows in one transaction, skipping an event already
/// carried by an earlier POST of this hook for another topic (that row becomes `seen`).
/// Returns how many POSTs are pending.
fn record_posts(c: &mut Connection, hook: &str, posts: Vec<Post>) -> crate::store::db::Result<usize> {
    let tx = c.transaction()?;
    let n = record_posts_in(&tx, hook, posts)?;
    tx.commit()?;
    Ok(n)
}

/// [`record_posts`] inside the caller's transaction.
fn record_posts_in(tx: &Connection, hook: &str, posts: Vec<Post>) -> crate::store::db::Result<usize> {
    let now = now_ms();
    let mut n = 0;
    {
        let mut sent_before = tx.prepare_cached(
            "SELECT 1 FROM webhook_deliveries WHERE hook = ?1 AND story_id = ?2 AND event = ?3 AND status != 'seen'
             AND batch_id IS NOT ?4",
        )?;
        let mut row = tx.prepare_cached(
            "INSERT OR IGNORE INTO webhook_deliveries (hook, topic, story_id, event, status, batch_id, next_attempt, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut batch = tx.prepare_cached(
            "INSERT INTO webhook_batches (id, hook, status, next_attempt, created, content_type, headers, body)
             VALUES (?1, ?2, 'pending', ?3, ?3, ?4, ?5, ?6)",
        )?;
        for post in posts {
            let mut carried = 0;
            for (topic, story, event) in &post.rows {
                if sent_before.query_row(params![hook, story, event, post.id], |_| Ok(())).optional()?.is_some() {
                    row.execute(params![hook, topic, story, event, "seen", None::<String>, None::<i64>, now])?;
                } else {
                    row.execute(params![hook, topic, story, event, "pending", post.id, now, now])?;
                    carried += 1;
                }
            }
            if carried == 0 {
                continue;
            }
            let headers = serde_json::to_string(&post.headers).unwrap_or_else(|_| "[]".into());
            batch.execute(params![post.id, hook, now, post.content_type, headers, post.body])?;
            n += 1;
        }
    }
    Ok(n)
}

/// Records the POST announcing a newly stored digest to each hook with `on = ["digest"]`
/// that follows its topic, inside the transaction that stores the digest (so a digest is
/// announced exactly when it is stored, once per hook and period; the send loop delivers it
/// as it delivers the others). Returns how many POSTs are pending.
pub fn record_digest(tx: &Connection, config: &Config, d: &crate::digest::Digest) -> crate::store::db::Result<usize> {
    let Some(topic) = config.topics.iter().find(|t| t.id == d.topic) else { return Ok(0) };
    let mut n = 0;
    for hook in digest_hooks(config, &d.topic) {
        let (content_type, headers, body) = digest_payload(config, hook, topic, d);
        // The period start stands in for a story id; the event names the topic, so two topics'
        // digests of the same period are two events.
        let rows = vec![(d.topic.clone(), d.start, format!("digest:{}", d.topic))];
        let post = Post { id: delivery_id(), content_type, headers, body, rows };
        n += record_posts_in(tx, &hook.id, vec![post])?;
    }
    Ok(n)
}

/// The content type, extra headers and body of the POST announcing digest `d`.
fn digest_payload(
    config: &Config,
    hook: &WebhookConfig,
    topic: &TopicConfig,
    d: &crate::digest::Digest,
) -> (&'static str, Vec<(String, String)>, Vec<u8>) {
    let base = &config.daemon.base_url;
    let link = render::under(base, &format!("topics/{}", topic.id));
    let title = render::clean_text(&topic.title, 200);
    match hook.format {
        HookFormat::Json => {
            let published = render::time(d.end).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let doc = serde_json::json!({
                "hook": hook.id,
                "event": "digest",
                "topic": {
                    "id": topic.id,
                    "title": title,
                    "feed_url": render::under(base, &format!("topics/{}/digest.json", topic.id)),
                },
                "items": [{
                    "id": d.guid,
                    "url": link,
                    "title": d.title,
                    "content_html": d.html,
                    "content_text": d.text,
                    "date_published": published,
                }],
            });
            ("application/json", Vec::new(), serde_json::to_vec(&doc).unwrap_or_else(|_| b"{}".to_vec()))
        }
        HookFormat::Ntfy => {
            let headers = vec![
                ("Title".to_string(), header_text(&d.title)),
                ("Click".to_string(), link),
                ("Tags".to_string(), "newspaper".to_string()),
            ];
            ("text/plain; charset=utf-8", headers, d.text.clone().into_bytes())
        }
        HookFormat::Slack => {
            let text = format!("*{}*\n{}", slack_escape(&d.title), slack_escape(&d.text));
            let body = serde_json::to_vec(&serde_json::json!({ "text": text })).unwrap_or_else(|_| b"{}".to_vec());
            ("application/json", Vec::new(), body)
        }
    }
}

/// Forgets delivery state recorded before `cutoff_ms` (the daemon passes twice the
/// retention: by then the story's items are pruned, so it is in no topic to be news again).
/// Pending POSTs and the marks of seen topics stay.
pub fn prune(c: &mut Connection, cutoff_ms: i64) -> crate::store::db::Result<usize> {
    let tx = c.transaction()?;
    let n = tx.execute(
        "DELETE FROM webhook_deliveries WHERE created < ?1 AND status != 'pending' AND event != ?2",
        params![cutoff_ms, MARK_EVENT],
    )?;
    tx.execute("DELETE FROM webhook_batches WHERE created < ?1 AND status != 'pending'", [cutoff_ms])?;
    tx.commit()?;
    Ok(n)
}

// ---------------------------------------------------------------- bodies

#[derive(Serialize)]
struct JsonBody<'a> {
    hook: &'a str,
    event: &'static str,
    topic: TopicRef<'a>,
    items: Vec<render::jsonfeed::JsonItem<'a>>,
}

#[derive(Serialize)]
struct TopicRef<'a> {
    id: &'a str,
    title: &'a str,
    feed_url: &'a str,
}

/// The content type, extra headers and body of one POST about `stories`.
pub fn payload(
    config: &Config,
    hook: &WebhookConfig,
    topic: &TopicConfig,
    event: HookEvent,
    stories: &[StoryView],
) -> (&'static str, Vec<(String, String)>, Vec<u8>) {
    let base = &config.daemon.base_url;
    let feed = FeedView::new(topic, stories, base, Format::Json);
    match hook.format {
        HookFormat::Json => {
            let doc = JsonBody {
                hook: &hook.id,
                event: event.name(),
                topic: TopicRef { id: &topic.id, title: &feed.title, feed_url: &feed.feed_url },
                items: feed.entries.iter().map(render::jsonfeed::item).collect(),
            };
            // Plain strings and numbers always serialise.
            let body = serde_json::to_vec(&doc).unwrap_or_else(|_| b"{}".to_vec());
            ("application/json", Vec::new(), body)
        }
        HookFormat::Ntfy => {
            let mut text = String::new();
            for e in &feed.entries {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&format!("{}\n{}\n{}\n", e.title, outlets(e), e.link));
            }
            let (title, click) = match feed.entries.as_slice() {
                [one] => (one.title.clone(), one.link.clone()),
                many => (
                    format!("{}: {} {}", feed.title, many.len(), what(event, many.len())),
                    render::under(base, &format!("topics/{}", topic.id)),
                ),
            };
            let tags = match event {
                HookEvent::MinOutlets(_) => "newspaper,fire",
                _ => "newspaper",
            };
            let headers = vec![
                ("Title".to_string(), header_text(&title)),
                ("Click".to_string(), click),
                ("Tags".to_string(), tags.to_string()),
            ];
            ("text/plain; charset=utf-8", headers, text.into_bytes())
        }
        HookFormat::Slack => {
            let mut text = format!("*{}*", slack_escape(&feed.title));
            if feed.entries.len() > 1 {
                text.push_str(&format!(": {} {}", feed.entries.len(), what(event, feed.entries.len())));
            }
            for e in &feed.entries {
                let title = slack_escape(&e.title).replace('|', "\u{2758}");
                text.push_str(&format!("\n<{}|{}> ({})", e.link, title, slack_escape(&outlets(e))));
            }
            let body = serde_json::to_vec(&serde_json::json!({ "text": text })).unwrap_or_else(|_| b"{}".to_vec());
            ("application/json", Vec::new(), body)
        }
    }
}

fn what(event: HookEvent, n: usize) -> String {
    let s = if n == 1 { "story" } else { "stories" };
    match event {
        HookEvent::MinOutlets(k) => format!("{s} reported by {k} outlets"),
        _ => format!("new {s}"),
    }
}

fn outlets(e: &render::EntryView) -> String {
    std::iter::once(e.outlet.as_str()).chain(e.others.iter().map(|(n, _)| n.as_str())).collect::<Vec<_>>().join(", ")
}

/// Slack's three escapes (its docs: only `&`, `<` and `>` are control characters).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A header value: ASCII as is, else RFC 2047 (`=?UTF-8?B?...?=`), which ntfy decodes.
fn header_text(s: &str) -> String {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return s.to_string();
    }
    format!("=?UTF-8?B?{}?=", base64(s.as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A unique delivery id: time, then random bits (unique across restarts and processes).
fn delivery_id() -> String {
    use ring::rand::SecureRandom;
    let mut r = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut r).is_err() {
        // Without the OS's randomness the time and a process counter still tell ids apart.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        r = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_be_bytes();
    }
    format!("{:x}-{}", now_ms(), super::deliver::hex(&r))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

// ---------------------------------------------------------------- sending

/// A recorded POST, as read back for sending.
struct Due {
    id: String,
    hook: String,
    attempts: u32,
    content_type: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Sends due POSTs, [`CONCURRENCY`] at a time, until `stop`.
async fn send_loop(
    store: Store,
    config: Arc<RwLock<Arc<Config>>>,
    deliverer: Deliverer,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let in_flight: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let busy: HashSet<String> = in_flight.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let due = store.read(|c| due(c, now_ms(), &busy)).unwrap_or_else(|e| {
            tracing::error!("webhook: reading due deliveries: {e:#}");
            Vec::new()
        });
        let cfg = config.read().unwrap_or_else(|p| p.into_inner()).clone();
        for d in due {
            let Some(hook) = cfg.webhooks.iter().find(|h| h.id == d.hook).cloned() else {
                // Kept pending: a hook taken out of the config by mistake and put back resumes.
                continue;
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else { break };
            in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(d.id.clone());
            let (store, deliverer, in_flight, wake, push) =
                (store.clone(), deliverer.clone(), in_flight.clone(), wake.clone(), cfg.push.clone());
            tasks.spawn(async move {
                let id = d.id.clone();
                send_one(&store, &deliverer, &hook, &push, d).await;
                in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                drop(permit);
                wake.notify_one();
            });
        }
        while tasks.try_join_next().is_some() {}
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => break,
        }
    }
    // Stopping: a POST in flight stays pending and is resent after the restart.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

fn due(c: &Connection, now: i64, busy: &HashSet<String>) -> crate::store::db::Result<Vec<Due>> {
    let mut st = c.prepare_cached(
        "SELECT id, hook, attempts, content_type, headers, body FROM webhook_batches
         WHERE status = 'pending' AND next_attempt <= ?1 ORDER BY next_attempt LIMIT ?2",
    )?;
    let rows = st.query_map(params![now, (DUE_PER_PASS + busy.len()) as i64], |r| {
        let headers: String = r.get(4)?;
        Ok(Due {
            id: r.get(0)?,
            hook: r.get(1)?,
            attempts: r.get(2)?,
            content_type: r.get(3)?,
            headers: serde_json::from_str(&headers).unwrap_or_default(),
            body: r.get(5)?,
        })
    })?;
    let mut out = Vec::new();
    for r in rows {
        let r = r?;
        if !busy.contains(&r.id) {
            out.push(r);
        }
    }
    Ok(out)
}

async fn send_one(
    store: &Store,
    deliverer: &Deliverer,
    hook: &WebhookConfig,
    push: &crate::config::PushConfig,
    d: Due,
) {
    let mut headers: Vec<(&str, String)> = d.headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    headers.push(("X-Newsdesk-Delivery", d.id.clone()));
    if let Some(secret) = &hook.secret {
        headers.push(("X-Newsdesk-Signature", format!("sha256={}", hmac_sha256_hex(&secret.0, &d.body))));
    }
    let outcome = deliverer.post(&hook.url, &d.content_type, d.body, &headers).await;
    let attempts = d.attempts + 1;
    let (status, next, error) = match &outcome {
        Outcome::Delivered { status, .. } => {
            tracing::info!(hook = %hook.id, delivery = %d.id, status, attempts, "webhook delivered");
            ("delivered", None, None)
        }
        Outcome::Failed { reason, retry } if *retry && attempts < push.max_attempts => {
            let wait = backoff_from(push.retry, attempts);
            tracing::warn!(hook = %hook.id, delivery = %d.id, attempts, "webhook delivery failed, retrying in {}s: {reason}", wait.as_secs_f32());
            ("pending", Some(now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2)), Some(reason.clone()))
        }
        Outcome::Failed { reason, retry } => {
            let why = if *retry { format!("after {attempts} attempts") } else { "not retried".to_string() };
            tracing::warn!(hook = %hook.id, delivery = %d.id, attempts, url = %redacted(&hook.url), "webhook delivery given up ({why}): {reason}");
            ("failed", None, Some(reason.clone()))
        }
    };
    let id = d.id.clone();
    let written = store.write(move |w| mark(&mut w.conn, &id, status, attempts, next, error.as_deref())).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(hook = %hook.id, delivery = %d.id, "webhook: recording the outcome: {e}"),
        Err(e) => tracing::error!(hook = %hook.id, delivery = %d.id, "webhook: recording the outcome: {e}"),
    }
}

/// The URL without its query (tokens often ride there: Slack's and ntfy's are in the path,
/// which stays, but many others put them in the query).
fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

fn mark(
    c: &mut Connection,
    id: &str,
    status: &str,
    attempts: u32,
    next: Option<i64>,
    error: Option<&str>,
) -> crate::store::db::Result<()> {
    let tx = c.transaction()?;
    let next = next.unwrap_or(0);
    tx.execute(
        "UPDATE webhook_batches SET status = ?2, attempts = ?3, next_attempt = ?4, last_error = ?5 WHERE id = ?1",
        params![id, status, attempts, next, error],
    )?;
    tx.execute(
        "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, next_attempt = ?4 WHERE batch_id = ?1",
        params![id, status, attempts, next],
    )?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        for (i, o) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")]
        {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(header_text("Plain"), "Plain");
        assert_eq!(header_text("Zürich"), "=?UTF-8?B?WsO8cmljaA==?=");
    }

    #[test]
    fn delivery_ids_are_unique() {
        let ids: HashSet<String> = (0..1000).map(|_| delivery_id()).collect();
        assert_eq!(ids.len(), 1000);
    }

    fn view(id: i64) -> StoryView {
        StoryView {
            id,
            first_seen: 0,
            last_seen: 0,
            updated: 0,
            score: 0.0,
            lead: crate::store::queries::StoryItem::default(),
            outlets: Vec::new(),
            copies: 0,
            items: 1,
        }
    }

    #[test]
    fn an_event_goes_out_once_per_hook_and_merged_stories_count_as_the_survivor() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::schema::migrate(&mut c).unwrap();
        let mut c = Connection::Lite(c);
        let text =
            "[[topic]]\nid = \"a\"\n[[topic]]\nid = \"b\"\n[[webhook]]\nid = \"h\"\nurl = \"https://h.example/\"\n";
        let config = Config::parse(std::path::Path::new("f.toml"), text).unwrap();
        let hook = &config.webhooks[0];
        let ev = |topic: &str, id| Pending { topic: topic.into(), event: HookEvent::NewStory, story: view(id) };
        // Story 1 in both topics in one window: one POST, both rows ride on it.
        let posts = build_posts(&config, hook, vec![ev("a", 1), ev("b", 1)]);
        assert_eq!(posts.len(), 1);
        assert_eq!(record_posts(&mut c, "h", posts).unwrap(), 1);
        // In a later window, for another topic: recorded as seen, not sent again.
        let posts = build_posts(&config, hook, vec![ev("b", 1)]);
        assert_eq!(record_posts(&mut c, "h", posts).unwrap(), 0);
        let pending: i64 =
            c.query_row("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'", [], |r| r.get(0)).unwrap();
        assert_eq!(pending, 2);
        // Story 1 merges into 2: what was recorded for 1 is 2's now.
        c.execute_batch(
            "INSERT INTO stories (id, first_seen, last_seen) VALUES (2, 0, 0);
             INSERT INTO stories (id, first_seen, last_seen, merged_into) VALUES (1, 0, 0, 2);",
        )
        .unwrap();
        assert!(recorded(&c, "h", "a").unwrap().contains(&(2, "new_story".to_string())));
        assert_eq!(merged_rows(&c, "h", "a", &[2]).unwrap(), vec![(2, "new_story".to_string())]);
        // Pruning keeps pending POSTs and the marks.
        record_seen(&mut c, "h", "a", &[(5, "new_story".into())]).unwrap();
        assert_eq!(prune(&mut c, now_ms() + 1).unwrap(), 1);
        assert!(recorded(&c, "h", "a").unwrap().contains(&(0, MARK_EVENT.to_string())));
    }

    #[test]
    fn slack_text_escapes_its_control_characters() {
        assert_eq!(slack_escape("a <b> & c"), "a &lt;b&gt; &amp; c");
    }
}
