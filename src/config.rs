//! Config: `feeds.toml` as parsed ([`RawConfig`]) -> validated and ready ([`Config`]).
//!
//! Every error carries `file:line:column`, so `newsdesk check` and a SIGHUP reload can point
//! the admin at the exact spot. Parsing stops at the first syntax error (TOML gives no more);
//! validation reports every problem it finds.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use url::Url;

use crate::schedule::Schedule;

/// One config problem with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)
    }
}

/// All the problems found in one config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

// ---------------------------------------------------------------- stage 1: as parsed

/// `feeds.toml` exactly as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    daemon: Option<Spanned<RawDaemon>>,
    #[serde(default)]
    source: Vec<Spanned<RawSource>>,
    #[serde(default)]
    topic: Vec<Spanned<RawTopic>>,
    #[serde(default)]
    web: Option<Spanned<RawWeb>>,
    #[serde(default)]
    websub: Option<Spanned<RawWebsub>>,
    push: Option<Spanned<RawPush>>,
    #[serde(default)]
    webhook: Vec<Spanned<RawWebhook>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWebsub {
    #[serde(default)]
    hubs: Vec<Spanned<String>>,
    serve_hub: Option<bool>,
    #[serde(default)]
    allow_networks: Vec<Spanned<String>>,
    lease_min: Option<Spanned<String>>,
    lease_max: Option<Spanned<String>>,
    max_subscriptions: Option<Spanned<i64>>,
    timeout: Option<Spanned<String>>,
    retry: Option<Spanned<String>>,
    attempts: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPush {
    #[serde(default)]
    allow_networks: Vec<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    retry: Option<Spanned<String>>,
    max_attempts: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    id: Spanned<String>,
    url: Spanned<String>,
    #[serde(default)]
    topics: Vec<Spanned<String>>,
    on: Option<Spanned<Vec<Spanned<String>>>>,
    batch: Option<Spanned<String>>,
    secret: Option<Spanned<String>>,
    secret_file: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    front: Option<Spanned<String>>,
    title: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    database: Option<Spanned<String>>,
    database_password_file: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
    base_url: Option<Spanned<String>>,
    schedule: Option<Spanned<String>>,
    concurrency: Option<Spanned<i64>>,
    per_host: Option<Spanned<i64>>,
    timeout: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<String>>,
    max_body: Option<Spanned<String>>,
    max_items: Option<Spanned<i64>>,
    max_db_size: Option<Spanned<String>>,
    max_interval: Option<Spanned<String>>,
    retention: Option<Spanned<String>>,
    log_level: Option<Spanned<String>>,
    failing_after: Option<Spanned<i64>>,
    timezone: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    id: Spanned<String>,
    url: Spanned<String>,
    title: Option<String>,
    schedule: Option<Spanned<String>>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    weight: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    id: Spanned<String>,
    title: Option<String>,
    rank: Option<Spanned<String>>,
    min_outlets: Option<Spanned<i64>>,
    window: Option<Spanned<String>>,
    limit: Option<Spanned<i64>>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    #[serde(default)]
    sources: Vec<Spanned<String>>,
    #[serde(default)]
    include: Vec<Spanned<String>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    digest: Option<Spanned<String>>,
    digest_limit: Option<Spanned<i64>>,
    timezone: Option<Spanned<String>>,
}

// ---------------------------------------------------------------- stage 2: validated

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (relative paths in it are relative to its folder).
    pub path: PathBuf,
    /// `[daemon]` settings.
    pub daemon: DaemonConfig,
    /// `[[source]]` entries in file order.
    pub sources: Vec<SourceConfig>,
    /// `[[topic]]` entries in file order.
    pub topics: Vec<TopicConfig>,
    /// `[web]`: the reading pages.
    pub web: WebConfig,
    /// `[websub]`: hubs to ping and our own hub (`None`: no section, feeds name no hub).
    pub websub: Option<WebsubConfig>,
    /// `[push]`: what every outbound delivery shares.
    pub push: PushConfig,
    /// `[[webhook]]` entries in file order.
    pub webhooks: Vec<WebhookConfig>,
}

/// `[push]` settings with defaults applied.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Private networks deliveries may reach (`allow_networks`).
    pub allow_networks: crate::push::deliver::Networks,
    /// Total time budget of one delivery.
    pub timeout: Duration,
    /// The wait after a first failed attempt (later waits triple, see `deliver::backoff_from`).
    pub retry: Duration,
    /// Attempts before a delivery is given up.
    pub max_attempts: u32,
}

/// What a webhook fires on (`on = [...]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookEvent {
    /// A story enters a topic's published list.
    NewStory,
    /// A story in the topic first reaches this many outlets.
    MinOutlets(usize),
    /// A digest was built (accepted and stored; digests fire nothing yet).
    Digest,
}

impl HookEvent {
    /// The name stored with a delivery (`new_story`, `min_outlets:3`, `digest`).
    pub fn key(&self) -> String {
        match self {
            HookEvent::NewStory => "new_story".into(),
            HookEvent::MinOutlets(n) => format!("min_outlets:{n}"),
            HookEvent::Digest => "digest".into(),
        }
    }

    /// The `event` field of a payload (`new_story`, `min_outlets`, `digest`).
    pub fn name(&self) -> &'static str {
        match self {
            HookEvent::NewStory => "new_story",
            HookEvent::MinOutlets(_) => "min_outlets",
            HookEvent::Digest => "digest",
        }
    }
}

/// The body a webhook is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookFormat {
    /// Our JSON: hook, event, topic and JSON Feed items.
    Json,
    /// ntfy: text/plain with `Title`, `Click`, `Tags` headers.
    Ntfy,
    /// `{"text": ...}` with `<url|title>` links (Slack, Mattermost, Discord's Slack endpoint).
    Slack,
}

/// A webhook secret; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One `[[webhook]]`.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Stable slug (delivery state is kept under it).
    pub id: String,
    /// Where to POST.
    pub url: Url,
    /// Topic ids it follows (empty: all).
    pub topics: Vec<String>,
    /// What it fires on.
    pub on: Vec<HookEvent>,
    /// One POST per window with every story of it (`None`: one per story, coalesced ~1 s).
    pub batch: Option<Duration>,
    /// Signs the body (`X-Newsdesk-Signature`), from `secret` or `secret_file`.
    pub secret: Option<Secret>,
    /// Body format.
    pub format: HookFormat,
}

impl WebhookConfig {
    /// Whether it follows `topic`.
    pub fn follows(&self, topic: &str) -> bool {
        self.topics.is_empty() || self.topics.iter().any(|t| t == topic)
    }
}

/// `[websub]` settings with defaults applied.
#[derive(Debug, Clone)]
pub struct WebsubConfig {
    /// External hubs pinged (`hub.mode=publish`) when a topic feed changes.
    pub hubs: Vec<Url>,
    /// Whether `POST /websub` is our own hub.
    pub serve_hub: bool,
    /// Private networks callbacks and hubs may be in (everything else private is refused).
    pub allow_networks: crate::push::deliver::Networks,
    /// Shortest lease granted.
    pub lease_min: Duration,
    /// Longest lease granted.
    pub lease_max: Duration,
    /// Most subscriptions our hub holds.
    pub max_subscriptions: usize,
    /// Time budget of one delivery, ping or intent verification.
    pub timeout: Duration,
    /// The wait after a first failed attempt (then three times longer each time, at most 1 h).
    pub retry: Duration,
    /// Attempts per delivery or ping before it is given up.
    pub attempts: u32,
}

/// The lease a subscriber gets when it asks for none.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(86400);

/// `[web]` settings with defaults applied.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The topic the front page shows: `front`, else the first `coverage` topic, else the
    /// first topic (`None` only when no topic is configured).
    pub front: Option<String>,
    /// The site's name in page titles and headers.
    pub title: String,
}

/// `[daemon]` settings with defaults applied.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// SQLite file, resolved against the config file's folder (unused with `postgres`).
    pub database: PathBuf,
    /// The PostgreSQL database, when `database` is a `postgres://` URL.
    pub postgres: Option<crate::store::pg::PgTarget>,
    /// HTTP listen address.
    pub listen: String,
    /// Public base URL, used in self links and story GUIDs.
    pub base_url: Url,
    /// Default schedule for sources.
    pub schedule: Schedule,
    /// Fetches in flight, in total.
    pub concurrency: usize,
    /// Fetches in flight per host.
    pub per_host: usize,
    /// Total time budget of one fetch.
    pub timeout: Duration,
    /// Time budget for connecting.
    pub connect_timeout: Duration,
    /// Cap on a feed body after decompression.
    pub max_body: u64,
    /// Cap on items taken from one feed document.
    pub max_items: usize,
    /// Cap on the database file size (`None`: only the disk limits it).
    pub max_db_size: Option<u64>,
    /// Upstream hints (ttl, max-age) may delay a poll at most this long.
    pub max_interval: Duration,
    /// Items older than this are pruned.
    pub retention: Duration,
    /// Log filter when `RUST_LOG` is not set.
    pub log_level: String,
    /// Consecutive failures after which a source counts as failing (the health feed's
    /// "failing" entry, and its "recovered" one when it next succeeds).
    pub failing_after: u32,
    /// The zone digest periods are counted in, unless a topic names its own.
    pub timezone: chrono_tz::Tz,
}

/// One `[[source]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    /// Stable slug.
    pub id: String,
    /// Configured URL (the store may hold a newer one after a permanent redirect).
    pub url: Url,
    /// Display title, else the feed's own.
    pub title: Option<String>,
    /// Polling schedule (the daemon default when absent).
    pub schedule: Schedule,
    /// Tags topics can select on.
    pub tags: Vec<String>,
    /// Preference for lead items of stories.
    pub weight: f64,
}

/// Ranking of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rank {
    /// Newest first.
    Latest,
    /// Distinct outlets with a recency decay ("Top News").
    Coverage,
}

/// A keyword filter entry: a word/phrase, or a `/regex/`.
#[derive(Debug, Clone)]
pub enum Keyword {
    /// A word or phrase, matched on word boundaries, case- and accent-insensitively.
    Phrase(String),
    /// A regular expression (written `/.../`).
    Regex(regex::Regex),
}

/// One `[[topic]]`.
#[derive(Debug, Clone)]
pub struct TopicConfig {
    /// Slug used in URLs.
    pub id: String,
    /// Display title.
    pub title: String,
    /// Ranking.
    pub rank: Rank,
    /// Minimum distinct outlets for a story to be listed.
    pub min_outlets: usize,
    /// Only stories active within this window.
    pub window: Duration,
    /// At most this many stories.
    pub limit: usize,
    /// Select sources with any of these tags (empty: no tag filter).
    pub tags: Vec<String>,
    /// Select these sources (empty: no source filter).
    pub sources: Vec<String>,
    /// Any of these must match (empty: everything matches).
    pub include: Vec<Keyword>,
    /// None of these may match.
    pub exclude: Vec<Keyword>,
    /// When this topic's digest periods end (`None`: no digest).
    pub digest: Option<crate::digest::DigestSchedule>,
    /// At most this many stories per digest period.
    pub digest_limit: usize,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: 1,
                column: 1,
                message: format!("cannot read config: {e}"),
            }])
        })?;
        Config::parse(path, &text)
    }

    /// Parses and validates config text; `path` is used for messages and relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let (line, column) = line_col(text, offset);
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line,
                column,
                message: e.message().trim().to_string(),
            }])
        })?;
        let mut v = Validator { file: path, text, errors: Vec::new() };
        let config = v.config(raw);
        if v.errors.is_empty() {
            Ok(config)
        } else {
            v.errors.sort_by_key(|e| (e.line, e.column));
            Err(ConfigErrors(v.errors))
        }
    }

    /// The source with this id.
    pub fn source(&self, id: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.id == id)
    }

    /// The hubs topic feeds name (`rel="hub"`): every `[websub] hubs` URL, then our own
    /// (`{base_url}websub`) when `serve_hub` is on; empty without `[websub]`.
    pub fn hub_urls(&self) -> Vec<String> {
        let Some(w) = &self.websub else { return Vec::new() };
        let mut out: Vec<String> = w.hubs.iter().map(Url::to_string).collect();
        if w.serve_hub {
            out.push(crate::render::under(&self.daemon.base_url, "websub"));
        }
        out
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before.get(line_start..).map(|s| s.chars().count()).unwrap_or(0) + 1;
    (line, column)
}

struct Validator<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<ConfigError>,
}

const SLUG_HELP: &str = "ids are lowercase letters, digits, '-' and '_'";

impl Validator<'_> {
    fn err(&mut self, offset: usize, message: impl Into<String>) {
        let (line, column) = line_col(self.text, offset);
        self.errors.push(ConfigError { file: self.file.to_path_buf(), line, column, message: message.into() });
    }

    fn duration(&mut self, key: &str, v: &Option<Spanned<String>>, default: Duration) -> Duration {
        match v {
            None => default,
            Some(s) => match parse_duration(s.get_ref()) {
                Ok(d) => d,
                Err(e) => {
                    self.err(s.span().start, format!("{key}: {e}"));
                    default
                }
            },
        }
    }

    fn positive(&mut self, key: &str, v: &Option<Spanned<i64>>, default: usize) -> usize {
        match v {
            None => default,
            Some(n) if *n.get_ref() >= 1 => usize::try_from(*n.get_ref()).unwrap_or(usize::MAX),
            Some(n) => {
                self.err(n.span().start, format!("{key}: must be at least 1, got {}", n.get_ref()));
                default
            }
        }
    }

    fn schedule(&mut self, v: &Spanned<String>) -> Option<Schedule> {
        match Schedule::parse(v.get_ref()) {
            Ok(s) => Some(s),
            Err(e) => {
                self.err(v.span().start, format!("schedule: {e}"));
                None
            }
        }
    }

    fn slug(&mut self, what: &str, v: &Spanned<String>) {
        let s = v.get_ref();
        let ok =
            !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok {
            self.err(v.span().start, format!("{what} id {s:?} is not a valid id: {SLUG_HELP}"));
        }
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let daemon = self.daemon(raw.daemon.as_ref().map(|d| d.get_ref()));
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut tags: HashSet<String> = HashSet::new();
        let mut sources = Vec::new();
        for s in &raw.source {
            let s = s.get_ref();
            self.slug("source", &s.id);
            if let Some(first) = ids.get(s.id.get_ref()) {
                let (line, _) = line_col(self.text, *first);
                self.err(
                    s.id.span().start,
                    format!("duplicate source id {:?} (first defined on line {line})", s.id.get_ref()),
                );
            } else {
                ids.insert(s.id.get_ref().clone(), s.id.span().start);
            }
            let url = match parse_source_url(s.url.get_ref()) {
                Ok(u) => Some(u),
                Err(e) => {
                    self.err(s.url.span().start, format!("url: {e}"));
                    None
                }
            };
            let schedule = match &s.schedule {
                Some(v) => self.schedule(v),
                None => Some(daemon.schedule.clone()),
            };
            let weight = match &s.weight {
                Some(w) if !(w.get_ref().is_finite() && *w.get_ref() > 0.0) => {
                    self.err(w.span().start, "weight: must be a positive number");
                    1.0
                }
                Some(w) => *w.get_ref(),
                None => 1.0,
            };
            for t in &s.tags {
                tags.insert(t.get_ref().clone());
            }
            if let (Some(url), Some(schedule)) = (url, schedule) {
                sources.push(SourceConfig {
                    id: s.id.get_ref().clone(),
                    url,
                    title: s.title.clone(),
                    schedule,
                    tags: s.tags.iter().map(|t| t.get_ref().clone()).collect(),
                    weight,
                });
            }
        }
        let mut topic_ids: HashMap<String, usize> = HashMap::new();
        let mut topics = Vec::new();
        for t in &raw.topic {
            let t = t.get_ref();
            self.slug("topic", &t.id);
            if let Some(first) = topic_ids.get(t.id.get_ref()) {
                let (line, _) = line_col(self.text, *first);
                self.err(
                    t.id.span().start,
                    format!("duplicate topic id {:?} (first defined on line {line})", t.id.get_ref()),
                );
            } else {
                topic_ids.insert(t.id.get_ref().clone(), t.id.span().start);
            }
            for s in &t.sources {
                if !ids.contains_key(s.get_ref()) {
                    self.err(
                        s.span().start,
                        format!("topic {:?} names unknown source {:?}", t.id.get_ref(), s.get_ref()),
                    );
                }
            }
            for tag in &t.tags {
                if !tags.contains(tag.get_ref()) {
                    self.err(
                        tag.span().start,
                        format!("topic {:?} names tag {:?}, which no source has", t.id.get_ref(), tag.get_ref()),
                    );
                }
            }
            let rank = match t.rank.as_ref().map(|r| (r.get_ref().as_str(), r.span().start)) {
                None | Some(("latest", _)) => Rank::Latest,
                Some(("coverage", _)) => Rank::Coverage,
                Some((other, at)) => {
                    self.err(at, format!("rank: expected \"latest\" or \"coverage\", got {other:?}"));
                    Rank::Latest
                }
            };
            let include = t.include.iter().filter_map(|k| self.keyword(k)).collect();
            let exclude = t.exclude.iter().filter_map(|k| self.keyword(k)).collect();
            let zone = match &t.timezone {
                Some(z) => self.timezone(z).unwrap_or(daemon.timezone),
                None => daemon.timezone,
            };
            let digest =
                t.digest.as_ref().and_then(|d| match crate::digest::DigestSchedule::parse(d.get_ref(), zone) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        self.err(d.span().start, format!("digest: {e}"));
                        None
                    }
                });
            let digest_limit = match &t.digest_limit {
                None => 10,
                Some(n) if (1..=100).contains(n.get_ref()) => *n.get_ref() as usize,
                Some(n) => {
                    self.err(n.span().start, format!("digest_limit: must be between 1 and 100, got {}", n.get_ref()));
                    10
                }
            };
            topics.push(TopicConfig {
                id: t.id.get_ref().clone(),
                title: t.title.clone().unwrap_or_else(|| t.id.get_ref().clone()),
                rank,
                min_outlets: self.positive("min_outlets", &t.min_outlets, 1),
                window: self.duration("window", &t.window, Duration::from_secs(48 * 3600)),
                limit: self.positive("limit", &t.limit, 50),
                tags: t.tags.iter().map(|s| s.get_ref().clone()).collect(),
                sources: t.sources.iter().map(|s| s.get_ref().clone()).collect(),
                include,
                exclude,
                digest,
                digest_limit,
            });
        }
        let web = self.web(raw.web.as_ref().map(|w| w.get_ref()), &topics);
        let websub = raw.websub.as_ref().map(|w| self.websub(w.get_ref()));
        let push = self.push(raw.push.as_ref().map(|p| p.get_ref()));
        let webhooks = self.webhooks(&raw.webhook, &topics);
        Config { path: self.file.to_path_buf(), daemon, sources, topics, web, websub, push, webhooks }
    }

    fn websub(&mut self, w: &RawWebsub) -> WebsubConfig {
        let mut hubs = Vec::new();
        for h in &w.hubs {
            match Url::parse(h.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => hubs.push(u),
                Ok(_) => self.err(h.span().start, format!("hubs: {:?} is not an http(s) URL", h.get_ref())),
                Err(e) => self.err(h.span().start, format!("hubs: {:?} is not a valid URL: {e}", h.get_ref())),
            }
        }
        let mut allow = Vec::new();
        for n in &w.allow_networks {
            match crate::push::deliver::Networks::parse(std::slice::from_ref(n.get_ref())) {
                Ok(_) => allow.push(n.get_ref().clone()),
                Err(e) => self.err(n.span().start, format!("allow_networks: {e}")),
            }
        }
        let allow_networks = crate::push::deliver::Networks::parse(&allow).unwrap_or_default();
        let lease_min = self.duration("lease_min", &w.lease_min, Duration::from_secs(3600));
        let lease_max = self.duration("lease_max", &w.lease_max, Duration::from_secs(10 * 86400));
        if lease_min > lease_max {
            let at = w.lease_min.as_ref().or(w.lease_max.as_ref()).map(|s| s.span().start).unwrap_or(0);
            self.err(
                at,
                format!("lease_min ({}s) is longer than lease_max ({}s)", lease_min.as_secs(), lease_max.as_secs()),
            );
        }
        let attempts = self.positive("attempts", &w.attempts, crate::push::deliver::MAX_ATTEMPTS as usize);
        WebsubConfig {
            hubs,
            serve_hub: w.serve_hub.unwrap_or(false),
            allow_networks,
            lease_min,
            lease_max: lease_max.max(lease_min),
            max_subscriptions: self.positive("max_subscriptions", &w.max_subscriptions, 10_000),
            timeout: self.duration("timeout", &w.timeout, Duration::from_secs(10)),
            retry: self.duration("retry", &w.retry, Duration::from_secs(10)),
            attempts: u32::try_from(attempts.min(100)).unwrap_or(100),
        }
    }

    fn push(&mut self, p: Option<&RawPush>) -> PushConfig {
        let empty = RawPush::default();
        let p = p.unwrap_or(&empty);
        let mut nets = Vec::new();
        for n in &p.allow_networks {
            match crate::push::deliver::Networks::parse(std::slice::from_ref(n.get_ref())) {
                Ok(_) => nets.push(n.get_ref().clone()),
                Err(e) => self.err(n.span().start, format!("allow_networks: {e}")),
            }
        }
        let max_attempts = self.positive("max_attempts", &p.max_attempts, crate::push::deliver::MAX_ATTEMPTS as usize);
        PushConfig {
            allow_networks: crate::push::deliver::Networks::parse(&nets).unwrap_or_default(),
            timeout: self.duration("timeout", &p.timeout, Duration::from_secs(10)),
            retry: self.duration("retry", &p.retry, Duration::from_secs(10)),
            max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
        }
    }

    fn webhooks(&mut self, raw: &[Spanned<RawWebhook>], topics: &[TopicConfig]) -> Vec<WebhookConfig> {
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        for h in raw {
            let h = h.get_ref();
            self.slug("webhook", &h.id);
            if let Some(first) = ids.get(h.id.get_ref()) {
                let (line, _) = line_col(self.text, *first);
                self.err(
                    h.id.span().start,
                    format!("duplicate webhook id {:?} (first defined on line {line})", h.id.get_ref()),
                );
            } else {
                ids.insert(h.id.get_ref().clone(), h.id.span().start);
            }
            let url = match Url::parse(h.url.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()) => {
                    Some(u)
                }
                Ok(_) => {
                    self.err(
                        h.url.span().start,
                        format!("url: {:?} is not an http(s) URL with a host", h.url.get_ref()),
                    );
                    None
                }
                Err(e) => {
                    self.err(h.url.span().start, format!("url: {:?} is not a valid URL: {e}", h.url.get_ref()));
                    None
                }
            };
            for t in &h.topics {
                if !topics.iter().any(|k| &k.id == t.get_ref()) {
                    self.err(
                        t.span().start,
                        format!("webhook {:?} names unknown topic {:?}", h.id.get_ref(), t.get_ref()),
                    );
                }
            }
            let on = match &h.on {
                None => vec![HookEvent::NewStory],
                Some(list) if list.get_ref().is_empty() => {
                    self.err(list.span().start, "on: empty (use any of \"new_story\", \"min_outlets:N\", \"digest\")");
                    Vec::new()
                }
                Some(list) => list.get_ref().iter().filter_map(|e| self.hook_event(e)).collect(),
            };
            let batch = h.batch.as_ref().map(|b| self.duration("batch", &Some(b.clone()), Duration::from_secs(300)));
            let secret = match (&h.secret, &h.secret_file) {
                (Some(_), Some(f)) => {
                    self.err(f.span().start, "secret_file: set either secret or secret_file, not both");
                    None
                }
                (Some(s), None) if s.get_ref().is_empty() => {
                    self.err(s.span().start, "secret: empty");
                    None
                }
                (Some(s), None) => Some(Secret(s.get_ref().as_bytes().to_vec())),
                (None, Some(f)) => self.secret_file(f),
                (None, None) => None,
            };
            let format = match h.format.as_ref().map(|f| (f.get_ref().as_str(), f.span().start)) {
                None | Some(("json", _)) => HookFormat::Json,
                Some(("ntfy", _)) => HookFormat::Ntfy,
                Some(("slack", _)) => HookFormat::Slack,
                Some((other, at)) => {
                    self.err(at, format!("format: expected \"json\", \"ntfy\" or \"slack\", got {other:?}"));
                    HookFormat::Json
                }
            };
            if let Some(url) = url {
                out.push(WebhookConfig {
                    id: h.id.get_ref().clone(),
                    url,
                    topics: h.topics.iter().map(|t| t.get_ref().clone()).collect(),
                    on,
                    batch,
                    secret,
                    format,
                });
            }
        }
        out
    }

    fn hook_event(&mut self, e: &Spanned<String>) -> Option<HookEvent> {
        let s = e.get_ref().trim();
        match s {
            "new_story" => return Some(HookEvent::NewStory),
            "digest" => return Some(HookEvent::Digest),
            _ => {}
        }
        if let Some(n) = s.strip_prefix("min_outlets:") {
            return match n.trim().parse::<usize>() {
                Ok(n) if n >= 2 => Some(HookEvent::MinOutlets(n)),
                _ => {
                    self.err(e.span().start, format!("on: {s:?}: min_outlets:N needs a whole number N of at least 2"));
                    None
                }
            };
        }
        self.err(e.span().start, format!("on: {s:?} is not one of \"new_story\", \"min_outlets:N\", \"digest\""));
        None
    }

    fn secret_file(&mut self, f: &Spanned<String>) -> Option<Secret> {
        let dir = self.file.parent().map(Path::to_path_buf).unwrap_or_default();
        let path = dir.join(f.get_ref());
        match std::fs::read(&path) {
            Ok(mut bytes) => {
                // Files written by `echo` or an editor end in a newline that is not part of the secret.
                while bytes.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                    bytes.pop();
                }
                if bytes.is_empty() {
                    self.err(f.span().start, format!("secret_file: {} is empty", path.display()));
                    None
                } else {
                    Some(Secret(bytes))
                }
            }
            Err(e) => {
                self.err(f.span().start, format!("secret_file: cannot read {}: {e}", path.display()));
                None
            }
        }
    }

    fn web(&mut self, w: Option<&RawWeb>, topics: &[TopicConfig]) -> WebConfig {
        let empty = RawWeb::default();
        let w = w.unwrap_or(&empty);
        let fallback = topics.iter().find(|t| t.rank == Rank::Coverage).or(topics.first()).map(|t| t.id.clone());
        let front = match &w.front {
            Some(f) if topics.iter().any(|t| &t.id == f.get_ref()) => Some(f.get_ref().clone()),
            Some(f) => {
                let known: Vec<&str> = topics.iter().map(|t| t.id.as_str()).collect();
                self.err(f.span().start, format!("front: no topic {:?} (topics: {})", f.get_ref(), known.join(", ")));
                fallback
            }
            None => fallback,
        };
        let title = w.title.as_deref().map(str::trim).filter(|t| !t.is_empty()).unwrap_or("newsdesk").to_string();
        WebConfig { front, title }
    }

    fn timezone(&mut self, z: &Spanned<String>) -> Option<chrono_tz::Tz> {
        match z.get_ref().parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                self.err(
                    z.span().start,
                    format!(
                        "timezone: {:?} is not an IANA time zone name (e.g. \"Europe/Berlin\", \"America/New_York\", \"UTC\")",
                        z.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn keyword(&mut self, k: &Spanned<String>) -> Option<Keyword> {
        let s = k.get_ref();
        if s.len() >= 2 && s.starts_with('/') && s.ends_with('/') {
            let pattern = &s[1..s.len() - 1];
            match regex::RegexBuilder::new(pattern).case_insensitive(true).size_limit(1 << 20).build() {
                Ok(r) => Some(Keyword::Regex(r)),
                Err(e) => {
                    let first = e.to_string().lines().last().unwrap_or("invalid").trim().to_string();
                    self.err(k.span().start, format!("invalid regular expression {s}: {first}"));
                    None
                }
            }
        } else if s.trim().is_empty() {
            self.err(k.span().start, "empty keyword");
            None
        } else {
            Some(Keyword::Phrase(s.trim().to_string()))
        }
    }

    fn daemon(&mut self, d: Option<&RawDaemon>) -> DaemonConfig {
        let empty = RawDaemon::default();
        let d = d.unwrap_or(&empty);
        let dir = self.file.parent().map(Path::to_path_buf).unwrap_or_default();
        // Under systemd (StateDirectory=), a relative database path lives in the state
        // directory, so the shipped config works unchanged from /etc/newsdesk.
        let db_dir = std::env::var_os("STATE_DIRECTORY").map(PathBuf::from).unwrap_or_else(|| dir.clone());
        let mut postgres = None;
        let database = match &d.database {
            Some(p) if crate::store::pg::is_url(p.get_ref()) => {
                let password_file = d.database_password_file.as_ref().map(|f| dir.join(f.get_ref()));
                match crate::store::pg::PgTarget::parse(p.get_ref(), password_file) {
                    Ok(t) => postgres = Some(t),
                    Err(e) => self.err(p.span().start, format!("database: {e}")),
                }
                db_dir.join("newsdesk.db")
            }
            Some(p) => db_dir.join(p.get_ref()),
            None => db_dir.join("newsdesk.db"),
        };
        if let (Some(f), None) = (&d.database_password_file, &postgres) {
            self.err(f.span().start, "database_password_file is for a postgres:// database".to_string());
        }
        let listen = match &d.listen {
            Some(l) => {
                if l.get_ref().parse::<std::net::SocketAddr>().is_err() {
                    self.err(
                        l.span().start,
                        format!("listen: {:?} is not an address like 127.0.0.1:8080", l.get_ref()),
                    );
                }
                l.get_ref().clone()
            }
            None => "127.0.0.1:8080".to_string(),
        };
        let default_base = Url::parse(&format!("http://{listen}/")).unwrap_or_else(|_| fallback_base());
        let base_url = match &d.base_url {
            Some(b) => match Url::parse(b.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => u,
                Ok(u) => {
                    self.err(b.span().start, format!("base_url: scheme {:?} is not http or https", u.scheme()));
                    default_base
                }
                Err(e) => {
                    self.err(b.span().start, format!("base_url: {e}"));
                    default_base
                }
            },
            None => default_base,
        };
        let schedule = match &d.schedule {
            Some(s) => self.schedule(s).unwrap_or_default(),
            None => Schedule::default(),
        };
        let max_body = match &d.max_body {
            None => 10 << 20,
            Some(s) => match parse_size(s.get_ref()) {
                Ok(n) => n,
                Err(e) => {
                    self.err(s.span().start, format!("max_body: {e}"));
                    10 << 20
                }
            },
        };
        let log_level = match &d.log_level {
            Some(l) => {
                if tracing_subscriber_filter_ok(l.get_ref()) {
                    l.get_ref().clone()
                } else {
                    self.err(
                        l.span().start,
                        format!("log_level: {:?} is not one of error, warn, info, debug, trace", l.get_ref()),
                    );
                    "info".to_string()
                }
            }
            None => "info".to_string(),
        };
        DaemonConfig {
            database,
            postgres,
            listen,
            base_url,
            schedule,
            concurrency: self.positive("concurrency", &d.concurrency, 32),
            per_host: self.positive("per_host", &d.per_host, 2),
            timeout: self.duration("timeout", &d.timeout, Duration::from_secs(30)),
            connect_timeout: self.duration("connect_timeout", &d.connect_timeout, Duration::from_secs(10)),
            max_body,
            max_items: self.positive("max_items", &d.max_items, 1000),
            max_db_size: d.max_db_size.as_ref().and_then(|s| match parse_size(s.get_ref()) {
                Ok(n) => Some(n),
                Err(e) => {
                    self.err(s.span().start, format!("max_db_size: {e}"));
                    None
                }
            }),
            max_interval: self.duration("max_interval", &d.max_interval, Duration::from_secs(6 * 3600)),
            retention: self.duration("retention", &d.retention, Duration::from_secs(30 * 86400)),
            log_level,
            failing_after: self.positive("failing_after", &d.failing_after, 3).min(1000) as u32,
            timezone: d.timezone.as_ref().and_then(|z| self.timezone(z)).unwrap_or(chrono_tz::Tz::UTC),
        }
    }
}

fn fallback_base() -> Url {
    // A constant that always parses; kept out of line so the intent is plain.
    Url::parse("http://127.0.0.1:8080/").unwrap_or_else(|_| unreachable!("constant URL parses"))
}

fn tracing_subscriber_filter_ok(level: &str) -> bool {
    matches!(level, "error" | "warn" | "info" | "debug" | "trace" | "off")
}

/// A duration the way feeds.toml writes it: `30d`, `6h`, `15m`, `45s` (the largest unit that
/// divides it).
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".to_string(),
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Parses a source URL: http(s) with a host, or `file://`.
pub fn parse_source_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s).map_err(|e| format!("{s:?} is not a valid URL: {e}"))?;
    match u.scheme() {
        "http" | "https" if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(u),
        "http" | "https" => Err(format!("{s:?} has no host")),
        "file" => Ok(u),
        other => Err(format!("{s:?}: scheme {other:?} is not http, https or file")),
    }
}

/// Parses durations like `30s`, `15m`, `6h`, `30d`, `1w`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration (expected e.g. \"30s\", \"15m\", \"6h\", \"30d\")".into());
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut chars = t.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        let mut unit = String::from(c);
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a duration (expected e.g. \"30s\", \"15m\", \"6h\", \"30d\")"))?;
        num.clear();
        let mult = match unit.as_str() {
            "ms" => 0, // handled below
            "s" | "sec" | "secs" => 1,
            "m" | "min" | "mins" => 60,
            "h" | "hr" | "hrs" => 3600,
            "d" | "day" | "days" => 86400,
            "w" | "week" | "weeks" => 7 * 86400,
            _ => return Err(format!("{s:?}: unknown unit {unit:?} (use s, m, h, d or w)")),
        };
        let add = if unit == "ms" { n.div_ceil(1000) } else { n.saturating_mul(mult) };
        total = total.saturating_add(add);
        any = true;
    }
    if !num.is_empty() {
        return Err(format!("{s:?}: number without a unit (write e.g. \"{num}s\")"));
    }
    if !any {
        return Err(format!("{s:?} is not a duration"));
    }
    if total == 0 {
        return Err(format!("{s:?}: duration must be positive"));
    }
    Ok(Duration::from_secs(total))
}

/// Parses sizes like `10MiB`, `512KiB`, `1MB`, `1000`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{s:?} is not a size (expected e.g. \"10MiB\")"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        u => return Err(format!("{s:?}: unknown size unit {u:?} (use B, KiB, MiB, GiB, KB, MB, GB)")),
    };
    let v = n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too large"))?;
    if v == 0 {
        return Err(format!("{s:?}: size must be positive"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("15 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn web_front_defaults_to_the_first_coverage_topic_and_must_name_a_topic() {
        let topics = "[[topic]]\nid = \"latest\"\n[[topic]]\nid = \"top\"\nrank = \"coverage\"\n";
        let c = Config::parse(Path::new("f.toml"), topics).unwrap();
        assert_eq!((c.web.front.as_deref(), c.web.title.as_str()), (Some("top"), "newsdesk"));
        let c = Config::parse(Path::new("f.toml"), &format!("[web]\nfront = \"latest\"\ntitle = \"Desk\"\n{topics}"))
            .unwrap();
        assert_eq!((c.web.front.as_deref(), c.web.title.as_str()), (Some("latest"), "Desk"));
        let e = Config::parse(Path::new("f.toml"), &format!("[web]\nfront = \"nope\"\n{topics}")).unwrap_err();
        assert_eq!(e.to_string(), "f.toml:2:9: front: no topic \"nope\" (topics: latest, top)");
        assert_eq!(Config::parse(Path::new("f.toml"), "").unwrap().web.front, None);
    }

    const HOOK_TOPICS: &str = "[[topic]]\nid = \"top\"\n[[topic]]\nid = \"energy\"\n";

    fn hooks(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(Path::new("f.toml"), &format!("{HOOK_TOPICS}{text}"))
    }

    #[test]
    fn webhooks_and_push_keys() {
        let dir = std::env::temp_dir().join(format!("newsdesk-config-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hook.secret"), "from-file\n").unwrap();
        let text = format!(
            "{HOOK_TOPICS}[push]\nallow_networks = [\"127.0.0.0/8\", \"10.1.2.3\"]\ntimeout = \"5s\"\nretry = \"2s\"\nmax_attempts = 4\n\
             [[webhook]]\nid = \"desk\"\nurl = \"https://hooks.example/in?k=1\"\ntopics = [\"energy\"]\n\
             on = [\"new_story\", \"min_outlets:3\", \"digest\"]\nbatch = \"5m\"\nsecret = \"abc\"\nformat = \"slack\"\n\
             [[webhook]]\nid = \"phone\"\nurl = \"http://127.0.0.1:8090/news\"\nformat = \"ntfy\"\nsecret_file = \"hook.secret\"\n"
        );
        let c = Config::parse(&dir.join("feeds.toml"), &text).unwrap();
        assert!(c.push.allow_networks.contains("127.3.2.1".parse().unwrap()));
        assert!(c.push.allow_networks.contains("10.1.2.3".parse().unwrap()));
        assert_eq!(
            (c.push.timeout, c.push.retry, c.push.max_attempts),
            (Duration::from_secs(5), Duration::from_secs(2), 4)
        );
        let h = &c.webhooks[0];
        assert_eq!((h.id.as_str(), h.url.as_str()), ("desk", "https://hooks.example/in?k=1"));
        assert_eq!(h.topics, vec!["energy".to_string()]);
        assert!(h.follows("energy") && !h.follows("top"));
        assert_eq!(h.on, vec![HookEvent::NewStory, HookEvent::MinOutlets(3), HookEvent::Digest]);
        assert_eq!(h.on.iter().map(HookEvent::key).collect::<Vec<_>>(), ["new_story", "min_outlets:3", "digest"]);
        assert_eq!((h.batch, h.format), (Some(Duration::from_secs(300)), HookFormat::Slack));
        assert_eq!(h.secret, Some(Secret(b"abc".to_vec())));
        assert!(!format!("{c:?}").contains("abc\""), "secrets are not in Debug output");
        let p = &c.webhooks[1];
        assert_eq!((p.format, p.batch, p.on.as_slice()), (HookFormat::Ntfy, None, &[HookEvent::NewStory][..]));
        assert_eq!(p.secret, Some(Secret(b"from-file".to_vec())), "read at load, newline dropped");
        assert!(p.topics.is_empty() && p.follows("top"), "default: every topic");
        // Defaults.
        let c = hooks("").unwrap();
        assert!(c.webhooks.is_empty());
        assert_eq!((c.push.timeout, c.push.retry), (Duration::from_secs(10), Duration::from_secs(10)));
        assert_eq!(c.push.max_attempts, crate::push::deliver::MAX_ATTEMPTS);
        assert!(!c.push.allow_networks.contains("127.0.0.1".parse().unwrap()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_webhook_and_push_values_point_at_the_spot() {
        let hook = "[[webhook]]\nid = \"h\"\nurl = \"https://h.example/\"\n";
        let cases: &[(&str, &str)] = &[
            ("[push]\nallow_networks = [\"10.0.0.0/33\"]\n", "f.toml:6:19: allow_networks: \"10.0.0.0/33\": the prefix length must be 0 to 32"),
            ("[push]\ntimeout = \"soon\"\n", "f.toml:6:11: timeout: \"soon\" is not a duration (expected e.g. \"30s\", \"15m\", \"6h\", \"30d\")"),
            ("[push]\nretry = \"5\"\n", "f.toml:6:9: retry: \"5\": number without a unit (write e.g. \"5s\")"),
            ("[push]\nmax_attempts = 0\n", "f.toml:6:16: max_attempts: must be at least 1, got 0"),
            ("[push]\nallow = []\n", "f.toml:6:1: unknown field `allow`, expected one of `allow_networks`, `timeout`, `retry`, `max_attempts`"),
            ("[[webhook]]\nid = \"Bad Id\"\nurl = \"https://h.example/\"\n", "f.toml:6:6: webhook id \"Bad Id\" is not a valid id: ids are lowercase letters, digits, '-' and '_'"),
            ("[[webhook]]\nid = \"h\"\nurl = \"ftp://h.example/\"\n", "f.toml:7:7: url: \"ftp://h.example/\" is not an http(s) URL with a host"),
            ("[[webhook]]\nid = \"h\"\nurl = \"not a url\"\n", "f.toml:7:7: url: \"not a url\" is not a valid URL: relative URL without a base"),
            (&format!("{hook}topics = [\"sport\"]\n"), "f.toml:8:11: webhook \"h\" names unknown topic \"sport\""),
            (&format!("{hook}on = []\n"), "f.toml:8:6: on: empty (use any of \"new_story\", \"min_outlets:N\", \"digest\")"),
            (&format!("{hook}on = [\"min_outlets:1\"]\n"), "f.toml:8:7: on: \"min_outlets:1\": min_outlets:N needs a whole number N of at least 2"),
            (&format!("{hook}on = [\"min_outlets:x\"]\n"), "f.toml:8:7: on: \"min_outlets:x\": min_outlets:N needs a whole number N of at least 2"),
            (&format!("{hook}on = [\"new_story\", \"breaking\"]\n"), "f.toml:8:20: on: \"breaking\" is not one of \"new_story\", \"min_outlets:N\", \"digest\""),
            (&format!("{hook}batch = \"5\"\n"), "f.toml:8:9: batch: \"5\": number without a unit (write e.g. \"5s\")"),
            (&format!("{hook}secret = \"\"\n"), "f.toml:8:10: secret: empty"),
            (&format!("{hook}secret = \"a\"\nsecret_file = \"s\"\n"), "f.toml:9:15: secret_file: set either secret or secret_file, not both"),
            (&format!("{hook}format = \"xml\"\n"), "f.toml:8:10: format: expected \"json\", \"ntfy\" or \"slack\", got \"xml\""),
            (&format!("{hook}events = []\n"), "f.toml:8:1: unknown field `events`, expected one of `id`, `url`, `topics`, `on`, `batch`, `secret`, `secret_file`, `format`"),
            (&format!("{hook}{hook}"), "f.toml:9:6: duplicate webhook id \"h\" (first defined on line 6)"),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(text, want)| {
                let got = hooks(text).map(|_| ()).err().map(|e| e.to_string()).unwrap_or_default();
                (&got != want).then(|| format!("{text:?}\n  got  {got}\n  want {want}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        let missing =
            hooks(&format!("{hook}secret_file = \"/nonexistent/newsdesk.secret\"\n")).unwrap_err().to_string();
        assert!(
            missing.starts_with("f.toml:8:15: secret_file: cannot read /nonexistent/newsdesk.secret: "),
            "{missing}"
        );
    }

    #[test]
    fn digest_keys_and_their_bad_values() {
        let c = Config::parse(
            Path::new("f.toml"),
            "[daemon]\ntimezone = \"Europe/Berlin\"\n[[topic]]\nid = \"a\"\ndigest = \"daily 07:00\"\n\
             [[topic]]\nid = \"b\"\ndigest = \"weekly mon 06:30\"\ndigest_limit = 5\ntimezone = \"America/New_York\"\n\
             [[topic]]\nid = \"c\"\n",
        )
        .unwrap();
        assert_eq!(c.daemon.timezone, chrono_tz::Tz::Europe__Berlin);
        let (a, b) = (c.topics[0].digest.unwrap(), c.topics[1].digest.unwrap());
        assert_eq!((a.zone, c.topics[0].digest_limit), (chrono_tz::Tz::Europe__Berlin, 10));
        assert_eq!((b.zone, c.topics[1].digest_limit), (chrono_tz::Tz::America__New_York, 5));
        assert_eq!(b.cadence, crate::digest::Cadence::Weekly(chrono::Weekday::Mon));
        assert!(c.topics[2].digest.is_none());
        assert_eq!(Config::parse(Path::new("f.toml"), "").unwrap().daemon.timezone, chrono_tz::Tz::UTC);

        let err = |text: &str| Config::parse(Path::new("f.toml"), text).unwrap_err().to_string();
        let e = err("[[topic]]\nid = \"a\"\ndigest = \"daily 7am\"\n");
        assert!(e.starts_with("f.toml:3:10: digest: \"daily 7am\""), "{e}");
        assert!(e.contains("e.g. \"daily 07:00\" or \"weekly mon 07:00\""), "{e}");
        let e = err("[[topic]]\nid = \"a\"\ndigest = \"weekly funday 07:00\"\n");
        assert!(e.starts_with("f.toml:3:10: digest:") && e.contains("not a weekday"), "{e}");
        let e = err("[[topic]]\nid = \"a\"\ndigest = \"daily 25:00\"\n");
        assert!(e.starts_with("f.toml:3:10: digest:") && e.contains("24-hour clock"), "{e}");
        for n in ["0", "101", "-1"] {
            let e = err(&format!("[[topic]]\nid = \"a\"\ndigest = \"daily 07:00\"\ndigest_limit = {n}\n"));
            assert_eq!(e, format!("f.toml:4:16: digest_limit: must be between 1 and 100, got {n}"));
        }
        let e = err("[daemon]\ntimezone = \"Europe/Berln\"\n");
        assert!(e.starts_with("f.toml:2:12: timezone: \"Europe/Berln\" is not an IANA time zone name"), "{e}");
        let e = err("[[topic]]\nid = \"a\"\ntimezone = \"Mars/Olympus\"\n");
        assert!(e.starts_with("f.toml:3:12: timezone: \"Mars/Olympus\""), "{e}");
        let e = err("[[topic]]\nid = \"a\"\ndigest = 7\n");
        assert!(e.starts_with("f.toml:3:10:"), "{e}");
    }

    #[test]
    fn websub_keys_have_defaults_and_bad_values_point_at_their_place() {
        let c = Config::parse(Path::new("f.toml"), "").unwrap();
        assert!(c.websub.is_none() && c.hub_urls().is_empty());
        let c =
            Config::parse(Path::new("f.toml"), "[daemon]\nbase_url = \"https://n.example/desk/\"\n[websub]\n").unwrap();
        let w = c.websub.as_ref().unwrap();
        assert!(w.hubs.is_empty() && !w.serve_hub && w.max_subscriptions == 10_000 && w.attempts == 8);
        assert_eq!((w.lease_min.as_secs(), w.lease_max.as_secs()), (3600, 10 * 86400));
        assert_eq!((w.timeout.as_secs(), w.retry.as_secs()), (10, 10));
        assert!(c.hub_urls().is_empty());
        let text = "[daemon]\nbase_url = \"https://n.example/desk/\"\n[websub]\nhubs = [\"https://hub.example/\"]\nserve_hub = true\nallow_networks = [\"127.0.0.0/8\"]\nlease_min = \"1m\"\nlease_max = \"1d\"\nmax_subscriptions = 5\ntimeout = \"2s\"\nretry = \"1s\"\nattempts = 3\n";
        let c = Config::parse(Path::new("f.toml"), text).unwrap();
        let w = c.websub.as_ref().unwrap();
        assert!(w.serve_hub && w.allow_networks.contains("127.0.0.1".parse().unwrap()));
        assert_eq!((w.lease_min.as_secs(), w.lease_max.as_secs(), w.max_subscriptions), (60, 86400, 5));
        assert_eq!((w.timeout.as_secs(), w.retry.as_secs(), w.attempts), (2, 1, 3));
        assert_eq!(c.hub_urls(), ["https://hub.example/", "https://n.example/desk/websub"]);
        for (bad, want) in [
            ("hubs = [\"ftp://hub.example/\"]", "f.toml:2:9: hubs: \"ftp://hub.example/\" is not an http(s) URL"),
            ("hubs = [\"nope\"]", "f.toml:2:9: hubs: \"nope\" is not a valid URL"),
            ("allow_networks = [\"10.0.0.0/40\"]", "f.toml:2:19: allow_networks: \"10.0.0.0/40\": the prefix length"),
            ("allow_networks = [\"lan\"]", "f.toml:2:19: allow_networks: \"lan\" is not an IP network"),
            ("lease_min = \"11d\"", "f.toml:2:13: lease_min (950400s) is longer than lease_max (864000s)"),
            ("lease_min = \"soon\"", "f.toml:2:13: lease_min: "),
            ("lease_max = \"0s\"", "f.toml:2:13: lease_max: "),
            ("max_subscriptions = 0", "f.toml:2:21: max_subscriptions: must be at least 1"),
            ("timeout = \"x\"", "f.toml:2:11: timeout: "),
            ("retry = \"5\"", "f.toml:2:9: retry: "),
            ("attempts = -1", "f.toml:2:12: attempts: must be at least 1"),
            ("serve_hub = \"yes\"", "f.toml:2:13: invalid type"),
            ("hub = []", "f.toml:2:1: unknown field `hub`"),
        ] {
            let e = Config::parse(Path::new("f.toml"), &format!("[websub]\n{bad}\n")).unwrap_err().to_string();
            assert!(e.starts_with(want), "{bad}: {e}");
        }
        let e = Config::parse(Path::new("f.toml"), "[websub]\nlease_max = \"30m\"\n").unwrap_err().to_string();
        assert!(e.contains("lease_min (3600s) is longer than lease_max (1800s)"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("10 furlongs").is_err());
    }

    #[test]
    fn line_columns() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 0), (1, 1));
    }
}
