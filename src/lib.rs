//! newsdesk: a self-hosted news desk in one binary and one SQLite file.
//!
//! Data flow, one module per stage:
//!
//! ```text
//! feeds.toml ──> config ──> schedule ──> fetch ──> parse ──> normalize ──> dedup ──> store (SQLite | PostgreSQL)
//!                                                                                      │
//!  subscribers <── serve (HTTP) <── render (rss/atom/json) <── select (topic filter + rank)
//! ```
//!
//! - [`config`]: raw TOML -> validated [`config::Config`], errors with `file:line:column`.
//! - [`schedule`]: when each source is next due (crontab or `every 15m`).
//! - [`fetch`]: one polite conditional GET per source, with limits, redirect rules and error kinds.
//! - [`parse`]: bytes -> [`model::Item`]s (feed-rs underneath, lenient dates, charset).
//! - [`normalize`]: canonical URLs, plain-text titles, sanitised HTML.
//! - [`dedup`]: identity keys (the same item again, the same article under another URL).
//! - [`store`]: the store on SQLite or PostgreSQL through one connection type
//!   (`store::db`): schema, migrations, the single writer (on PostgreSQL: writers of all
//!   instances in turn), WAL checkpoints, read queries, full-text search (`store::search`);
//!   the PostgreSQL schema, change notifications and leases (`store::pg`,
//!   `store::sources::claim`), TLS to it (`store::pg_tls`) and copies between the two (`store::copy`, `newsdesk migrate`).
//! - [`daemon`]: the long-running wiring: scheduler, signals, systemd notify, watchdog, retention.
//! - [`ingest`]: the refresh pipeline for one or many sources (fetch -> parse -> store).
//! - [`model`]: the project's own item model.
//! - [`metrics`]: process-wide counters for `/metrics`.
//! - [`select`]: topic filters (sources, tags, keywords, outlets, window) and ranking.
//! - [`render`]: stories -> RSS 2.0 / Atom 1.0 / JSON Feed 1.1 bytes, and the HTML index;
//!   digests as email-ready HTML and feeds (`render::digest`).
//! - [`digest`]: per-period digests of a topic (periods in a time zone, building once a
//!   period ended, storing each once), and the daemon task that builds them.
//! - [`serve`]: HTTP routes, the rendered-bytes cache (ETag, 304, gzip) and its feed builder
//!   thread, and `sendfile` for large bodies (`serve/sendfile.rs`).
//! - [`push`]: outbound deliveries (`push::deliver`) and webhooks for new and breaking
//!   stories (`push::webhook`), fed by the serving side's topic rebuilds.
//! - [`priority`]: thread priorities: the writer first, parsing next, serving last.
//! - [`export`]: every topic as static files for nginx; [`opml`]: sources to and from OPML.
#![forbid(unsafe_code)]

pub mod config;
pub mod daemon;
pub mod dedup;
pub mod digest;
pub mod export;
pub mod fetch;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod opml;
pub mod parse;
pub mod priority;
pub mod push;
pub mod render;
pub mod schedule;
pub mod select;
pub mod serve;
pub mod store;

/// The version string sent in `User-Agent` and printed by `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `User-Agent` for every upstream request.
pub fn user_agent() -> String {
    format!("newsdesk/{VERSION} (+{})", env!("CARGO_PKG_REPOSITORY"))
}
