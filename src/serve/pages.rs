//! The reading pages over HTTP: `/` (the front topic), `/topics/{id}` (see `topic` in the
//! parent), `/stories/{id}` (full coverage), `/sources`, `/embed/{topic}`, `/search` and its
//! feeds, and the stylesheet under `/assets/`.
//!
//! Topic and front pages are rendered with the topic's feeds (same selection, same cache and
//! rebuilds). Story pages are cached per story id like the feeds (rebuilt when the store
//! changed or after [`super::MAX_AGE`]), at most [`STORY_PAGES`] of them. Every page goes out
//! through [`super::respond`]: ETag, 304, gzip, HEAD, and the security headers of its kind.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use super::{count, feeds, hub_links, internal, respond, unix_now, AppState, Kind, Rendered, TopicFeeds};
use crate::config::{Config, TopicConfig};
use crate::push;
use crate::render::{html, Format};
use crate::store::search::{self, SearchError};

/// Story pages kept rendered; past this the stale ones are dropped, then all.
pub(super) const STORY_PAGES: usize = 1024;

/// Search answers (by query as typed and format) kept rendered, as [`STORY_PAGES`].
pub(super) const SEARCH_PAGES: usize = 256;

/// Stories one search shows, on the page and in its feeds.
pub(super) const SEARCH_RESULTS: usize = 30;

/// How long one search may read the index before it is answered 503.
pub(super) const SEARCH_BUDGET: Duration = Duration::from_millis(500);

/// One rendered story page or search answer.
pub(super) struct StoryPage {
    version: u64,
    config: Arc<Config>,
    built: Instant,
    page: Rendered,
}

impl StoryPage {
    fn fresh(&self, version: u64, config: &Arc<Config>) -> bool {
        self.version == version && Arc::ptr_eq(&self.config, config) && self.built.elapsed() < super::MAX_AGE
    }
}

/// A page-shaped answer that is not a cached document (a 404, a 400), with the page headers.
fn page(status: StatusCode, body: String) -> Response {
    super::text(status, "text/html; charset=utf-8", body)
}

fn not_found(config: &Config, what: &str) -> Response {
    page(StatusCode::NOT_FOUND, html::message_page(config, "Not here", what, unix_now()))
}

/// `/`: the front topic's page.
pub(super) async fn front(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    count();
    let config = state.config();
    let Some(topic) = config.web.front.as_deref().and_then(|id| config.topics.iter().find(|t| t.id == id)) else {
        let body = html::message_page(
            &config,
            "No topics yet",
            "Add a [[topic]] to feeds.toml (see README.md) and reload the daemon.",
            unix_now(),
        );
        return page(StatusCode::OK, body);
    };
    match feeds(&state, &config, topic).await {
        Ok(f) => respond(f.front.as_ref().unwrap_or(&f.page), &headers),
        Err(e) => internal(e),
    }
}

/// The cached front page, when fresh (the connection's fast path).
pub(super) fn fast_front(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let config = state.config();
    let id = config.web.front.as_deref()?;
    let f = super::fresh_feeds(state, &config, id)?;
    Some(respond(f.front.as_ref()?, headers))
}

/// The cached page of story `id`, when fresh (the connection's fast path).
pub(super) fn fast_story(state: &AppState, id: &str, headers: &HeaderMap) -> Option<Response> {
    let id: i64 = id.parse().ok()?;
    let config = state.config();
    let version = state.content_version();
    let pages = state.cache.story_pages.read().unwrap_or_else(|p| p.into_inner());
    let p = pages.get(&id).filter(|p| p.fresh(version, &config))?;
    Some(respond(&p.page, headers))
}

enum Lookup {
    Page(String),
    Moved(i64),
    Gone,
}

/// `/stories/{id}`: the full-coverage page; a merged story's id redirects to the survivor.
pub(super) async fn story(State(state): State<Arc<AppState>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    count();
    let config = state.config();
    let Ok(id) = id.parse::<i64>() else {
        return not_found(&config, "There is no story with that id.");
    };
    let version = state.content_version();
    // Which topics publish it: their cached selections (built first if need be).
    let mut published: Vec<(TopicConfig, Arc<TopicFeeds>)> = Vec::new();
    for t in &config.topics {
        match feeds(&state, &config, t).await {
            Ok(f) => published.push((t.clone(), f)),
            Err(e) => return internal(e),
        }
    }
    let cfg = config.clone();
    let looked = state
        .read(move |conn| {
            let Some(live) = crate::store::stories::resolve(conn, id)? else { return Ok(Lookup::Gone) };
            if live != id {
                return Ok(Lookup::Moved(live));
            }
            let now = unix_now();
            let Some(coverage) = crate::select::coverage(conn, &cfg, id, now)? else { return Ok(Lookup::Gone) };
            let topics: Vec<&TopicConfig> =
                published.iter().filter(|(_, f)| f.stories.iter().any(|s| s.id == id)).map(|(t, _)| t).collect();
            Ok(Lookup::Page(html::story_page(&cfg, &coverage, &topics, now)))
        })
        .await;
    match looked {
        Ok(Lookup::Page(body)) => {
            let mut pages = state.cache.story_pages.write().unwrap_or_else(|p| p.into_inner());
            let previous = pages.get(&id).map(|p| &p.page);
            let rendered = Rendered::new(body.into_bytes(), Kind::Page, previous, unix_now(), None);
            let resp = respond(&rendered, &headers);
            if pages.len() >= STORY_PAGES {
                pages.retain(|_, p| p.fresh(version, &config));
                if pages.len() >= STORY_PAGES {
                    pages.clear();
                }
            }
            pages.insert(id, Arc::new(StoryPage { version, config, built: Instant::now(), page: rendered }));
            resp
        }
        Ok(Lookup::Moved(live)) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
            let to = format!("{}stories/{live}", html::base_path(&config.daemon.base_url));
            r.headers_mut().insert(header::LOCATION, super::header_value(&to));
            super::secure(r.headers_mut(), None);
            r
        }
        Ok(Lookup::Gone) => not_found(
            &config,
            "This story is not here: its items may have expired (see retention in feeds.toml), or the id is wrong.",
        ),
        Err(e) => internal(e),
    }
}

/// `/sources`: every source's health.
pub(super) async fn sources(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    count();
    let config = state.config();
    let built =
        state.read(move |conn| Ok(html::sources_page(&config, &crate::store::sources::all(conn)?, unix_now()))).await;
    match built {
        Ok(body) => respond(&Rendered::new(body.into_bytes(), Kind::Page, None, unix_now(), None), &headers),
        Err(e) => internal(e),
    }
}

/// Health events the health feed shows.
pub const HEALTH_ENTRIES: usize = 50;

/// `/sources/health.{rss,atom,json}`: the sources' health events as a feed.
pub(super) async fn health(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    count();
    let config = state.config();
    let Some(format) = file.strip_prefix("health.").and_then(Format::from_ext) else {
        return not_found(&config, "The health feed is /sources/health.rss, .atom or .json.");
    };
    let base = config.daemon.base_url.clone();
    let built = state
        .read(move |conn| {
            let events = crate::store::sources::events(conn, HEALTH_ENTRIES)?;
            Ok(crate::render::render_health(format, &events, &base))
        })
        .await;
    match built {
        Ok(body) => respond(&Rendered::new(body, Kind::Feed(format), None, unix_now(), None), &headers),
        Err(e) => internal(e),
    }
}

/// The first value of query parameter `name` (form-decoded).
pub(super) fn param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// `/embed/{topic}`: the rail other sites frame.
pub(super) async fn embed(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    count();
    let config = state.config();
    let id = id.strip_suffix(".html").unwrap_or(&id);
    let Some(topic) = config.topics.iter().find(|t| t.id == id) else {
        return not_found(&config, "There is no topic with that id.");
    };
    let limit = match param(query.as_deref(), "limit").map(|l| l.trim().parse::<usize>()) {
        None => html::EMBED_DEFAULT,
        Some(Ok(n)) if (1..=html::EMBED_MAX).contains(&n) => n,
        Some(_) => {
            let body = format!(
                "limit must be a number from 1 to {}; the default is {}\n",
                html::EMBED_MAX,
                html::EMBED_DEFAULT
            );
            return super::text(StatusCode::BAD_REQUEST, "text/plain; charset=utf-8", body);
        }
    };
    let f = match feeds(&state, &config, topic).await {
        Ok(f) => f,
        Err(e) => return internal(e),
    };
    let rendered = {
        let mut embeds = f.embeds.lock().unwrap_or_else(|p| p.into_inner());
        embeds
            .entry(limit)
            .or_insert_with(|| {
                let body = html::embed(&config, topic, &f.stories, limit, unix_now());
                Arc::new(Rendered::new(body.into_bytes(), Kind::Embed, None, unix_now(), None))
            })
            .clone()
    };
    respond(&rendered, &headers)
}

/// `/assets/{file}`: the stylesheet, under the name of its bytes.
pub(super) async fn asset(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    count();
    match style_for(&state, &file) {
        Some(r) => respond(r, &headers),
        None => super::text(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "no such file\n"),
    }
}

/// The stylesheet when `file` is its current name.
pub(super) fn style_for<'a>(state: &'a AppState, file: &str) -> Option<&'a Rendered> {
    let name = html::style_path().strip_prefix("assets/")?;
    (file == name).then(|| {
        state
            .cache
            .style
            .get_or_init(|| Rendered::new(html::STYLE.as_bytes().to_vec(), Kind::Style, None, unix_now(), None))
    })
}

/// A search answer: the page (`format` none) or one of its feeds.
pub(super) type SearchKey = (String, Option<Format>);

/// `/search?q=`: the stories matching a query, as a page.
pub(super) async fn search_page(state: State<Arc<AppState>>, query: RawQuery, headers: HeaderMap) -> Response {
    search_answer(state, query, headers, None).await
}

/// `/search.{rss,atom,json}?q=`: the same search as a feed (`F` = [`Format::index`]).
pub(super) async fn search_feed<const F: usize>(
    state: State<Arc<AppState>>,
    query: RawQuery,
    headers: HeaderMap,
) -> Response {
    search_answer(state, query, headers, Some(Format::ALL[F])).await
}

/// Runs a search (bounded in length, terms, results and time: see [`search`]) and answers
/// it as a page or feed; a query that does not parse is a 400 that says why and shows the
/// syntax, one that runs out of time a 503.
async fn search_answer(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    format: Option<Format>,
) -> Response {
    count();
    let config = state.config();
    let typed = param(raw.as_deref(), "q").unwrap_or_default();
    let now = unix_now();
    if format.is_none() && typed.trim().is_empty() {
        // The search form alone.
        let body = html::search_page(&config, "", Ok(&[]), now);
        return respond(&Rendered::new(body.into_bytes(), Kind::Page, None, now, None), &headers);
    }
    let query = match search::parse(&typed) {
        Ok(q) => q,
        Err(e) => {
            return match format {
                None => page(StatusCode::BAD_REQUEST, html::search_page(&config, &typed, Err(&e.reason()), now)),
                Some(_) => super::text(StatusCode::BAD_REQUEST, "text/plain; charset=utf-8", format!("{e}\n")),
            };
        }
    };
    let version = state.content_version();
    let key: SearchKey = (typed, format);
    {
        let pages = state.cache.search_pages.read().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pages.get(&key).filter(|p| p.fresh(version, &config)) {
            return search_response(&state, &p.page, &config, &key, &headers);
        }
    }
    let cfg = config.clone();
    let found = state
        .read(move |conn| match search::stories(conn, &query, SEARCH_RESULTS, SEARCH_BUDGET) {
            Ok(ids) => Ok(Some(crate::select::stories_by_id(conn, &cfg, &ids, unix_now())?)),
            Err(SearchError::TooSlow) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e)),
        })
        .await;
    let stories = match found {
        Ok(Some(s)) => s,
        Ok(None) => {
            let why = SearchError::TooSlow.to_string();
            let mut r = match format {
                None => page(StatusCode::SERVICE_UNAVAILABLE, html::search_page(&config, &key.0, Err(&why), now)),
                Some(_) => {
                    super::text(StatusCode::SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", format!("{why}\n"))
                }
            };
            r.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("10"));
            return r;
        }
        Err(e) => return internal(e),
    };
    let hubs = config.hub_urls();
    let (body, kind) = match format {
        None => (html::search_page(&config, &key.0, Ok(&stories), now).into_bytes(), Kind::Page),
        Some(f) => (crate::render::render_search(f, &key.0, &stories, &config.daemon.base_url, &hubs), Kind::Feed(f)),
    };
    let mut pages = state.cache.search_pages.write().unwrap_or_else(|p| p.into_inner());
    let previous = pages.get(&key).map(|p| &p.page);
    let rendered = Rendered::new(body, kind, previous, now, None);
    let resp = search_response(&state, &rendered, &config, &key, &headers);
    keep_search(&mut pages, key, Arc::new(StoryPage { version, config, built: Instant::now(), page: rendered }));
    resp
}

/// A search answer from the cache: [`respond`], and for a feed while hubs are named, its
/// WebSub `Link` header; the query is then watched (see [`watch_searches`]).
fn search_response(state: &AppState, r: &Rendered, config: &Config, key: &SearchKey, headers: &HeaderMap) -> Response {
    let mut resp = respond(r, headers);
    if let Some(f) = key.1 {
        let hubs = config.hub_urls();
        if let Some(link) = hub_links(&hubs, &crate::render::search_feed_url(&config.daemon.base_url, &key.0, f)) {
            resp.headers_mut().insert(header::LINK, link);
            requested(state, &key.0);
        }
    }
    resp
}

/// Caches a search answer, within [`SEARCH_PAGES`].
fn keep_search(pages: &mut HashMap<SearchKey, Arc<StoryPage>>, key: SearchKey, page: Arc<StoryPage>) {
    if pages.len() >= SEARCH_PAGES {
        pages.retain(|_, p| p.fresh(page.version, &page.config));
        if pages.len() >= SEARCH_PAGES {
            pages.clear();
        }
    }
    pages.insert(key, page);
}

/// The search feeds watched for WebSub: a hub can only be told of a search's change if
/// someone re-runs it, and only the searches someone follows are worth re-running.
#[derive(Default)]
pub(super) struct Watched {
    /// Queries whose feeds were fetched while hubs are named, and when last: a reader or a
    /// hub fetches a feed to find its hub, and an external hub fetches it after each ping.
    requested: HashMap<String, Instant>,
    /// Each watched query's last build, per format.
    built: HashMap<String, [Arc<StoryPage>; 3]>,
    /// The content version and configuration the watched searches were last run at.
    checked: Option<(u64, Arc<Config>, Instant)>,
    /// A search is watched that was not at the last run: it needs its baseline.
    added: bool,
}

/// Notes that the feed of search `typed` was fetched (so its changes are pushed).
fn requested(state: &AppState, typed: &str) {
    let mut w = state.cache.searches.lock().unwrap_or_else(|p| p.into_inner());
    if !w.requested.contains_key(typed) && w.requested.len() >= push::websub::WATCHED_SEARCHES {
        let oldest = w.requested.iter().min_by_key(|(_, at)| **at).map(|(q, _)| q.clone());
        if let Some(q) = oldest {
            w.requested.remove(&q);
        }
    }
    w.added |= w.requested.insert(typed.to_string(), Instant::now()).is_none();
}

/// Re-runs the watched searches (those our hub's subscribers follow, then those fetched within
/// the longest lease; at most [`push::websub::WATCHED_SEARCHES`]) when the store or the
/// configuration changed, at most every `REBUILD_EVERY`, on the feed builder thread, and
/// announces each whose bytes changed as a [`push::FeedKind::Search`] change. The builds go
/// into the search cache too, so readers get the very bytes that were pushed. Returns whether
/// it ran.
pub(super) async fn watch_searches(state: &AppState, config: &Arc<Config>) -> bool {
    let hubs = config.hub_urls();
    let version = state.content_version();
    let (requested, previous) = {
        let mut w = state.cache.searches.lock().unwrap_or_else(|p| p.into_inner());
        if hubs.is_empty() {
            *w = Watched::default();
            return false;
        }
        w.added |= state.websub.as_ref().is_some_and(|h| h.take_new_search());
        if let Some((v, c, at)) = &w.checked {
            let same = *v == version && Arc::ptr_eq(c, config) && at.elapsed() < super::MAX_AGE;
            // A new search's baseline is taken at once: the next change is news.
            if !w.added && (same || at.elapsed() < super::REBUILD_EVERY) {
                return false;
            }
        }
        w.checked = Some((version, config.clone(), Instant::now()));
        w.added = false;
        let lease = config.websub.as_ref().map_or(crate::config::DEFAULT_LEASE, |w| w.lease_max);
        w.requested.retain(|_, at| at.elapsed() < lease);
        let mut requested: Vec<(String, Instant)> = w.requested.iter().map(|(q, at)| (q.clone(), *at)).collect();
        requested.sort_by_key(|r| std::cmp::Reverse(r.1));
        (requested.into_iter().map(|(q, _)| q).collect::<Vec<_>>(), std::mem::take(&mut w.built))
    };
    let cfg = config.clone();
    let serve_hub = config.websub.as_ref().is_some_and(|w| w.serve_hub);
    let ran = state
        .build(move |conn| {
            let now = unix_now();
            let base = &cfg.daemon.base_url;
            let mut queries = if serve_hub { push::websub::subscribed_searches(conn, base, now)? } else { Vec::new() };
            for q in requested {
                if queries.len() >= push::websub::WATCHED_SEARCHES {
                    break;
                }
                if !queries.contains(&q) {
                    queries.push(q);
                }
            }
            let mut out = Vec::new();
            for q in queries {
                let before = previous.get(&q).cloned();
                let Ok(parsed) = search::parse(&q) else { continue };
                let ids = match search::stories(conn, &parsed, SEARCH_RESULTS, SEARCH_BUDGET) {
                    Ok(ids) => ids,
                    // Kept as it was; tried again at the next change.
                    Err(SearchError::TooSlow) => {
                        out.push((q, before, None));
                        continue;
                    }
                    Err(e) => return Err(anyhow::Error::new(e)),
                };
                let stories = crate::select::stories_by_id(conn, &cfg, &ids, now)?;
                let built = Format::ALL.map(|f| {
                    let body = crate::render::render_search(f, &q, &stories, base, &hubs);
                    let prev = before.as_ref().map(|b| &b[f.index()].page);
                    let page = Rendered::new(body, Kind::Feed(f), prev, now, None);
                    Arc::new(StoryPage { version, config: cfg.clone(), built: Instant::now(), page })
                });
                out.push((q, before, Some((Arc::new(stories), built))));
            }
            Ok(out)
        })
        .await;
    let ran = match ran {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("re-running the watched searches: {e:#}");
            return true;
        }
    };
    let mut kept = HashMap::new();
    for (q, before, new) in ran {
        let Some((stories, built)) = new else {
            if let Some(b) = before {
                kept.insert(q, b);
            }
            continue;
        };
        super::announce(
            state,
            &q,
            before.as_ref().map(|b| [&b[0].page, &b[1].page, &b[2].page]),
            [&built[0].page, &built[1].page, &built[2].page],
            stories,
            push::FeedKind::Search,
        );
        {
            let mut pages = state.cache.search_pages.write().unwrap_or_else(|p| p.into_inner());
            for f in Format::ALL {
                keep_search(&mut pages, (q.clone(), Some(f)), built[f.index()].clone());
            }
        }
        kept.insert(q, built);
    }
    state.cache.searches.lock().unwrap_or_else(|p| p.into_inner()).built = kept;
    true
}

/// The base path's `/` and the front page's topic, for the fast path.
pub(super) fn is_front(path: &str) -> bool {
    path == "/" || path == "/index.html"
}
