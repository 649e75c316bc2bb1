//! The reading pages: the front page and topic pages (stories with their lead headline,
//! outlet, time, summary and the other outlets), the full-coverage page of one story, the
//! sources' health, search results and the embeddable rail.
//!
//! Templates are [`maud`] macros, checked at compile time; maud escapes every `(value)` it
//! inserts, and nothing here builds markup from strings. Upstream text is cleaned on top of
//! that ([`page_text`]: control and bidi-override characters dropped, length bounded),
//! summaries are reduced to plain text, and only absolute http(s) URLs become links, so a
//! hostile item renders inert. Pages need no JavaScript, load no remote fonts or images
//! (an upstream image would tell its outlet who reads what) and share one stylesheet
//! ([`STYLE`], served at [`style_path`] with a year-long cache life).
//!
//! Links are absolute paths under `base_url`'s path, so the same bytes work from the daemon
//! and from `newsdesk export` served at `base_url` (story pages as `stories/{id}.html`).

use std::sync::OnceLock;

use maud::{html, Markup, DOCTYPE};
use url::Url;

use super::{absolute_url, clean_text, Format};
use crate::config::{Config, TopicConfig};
use crate::normalize::text::{quick_text, MAX_TITLE_CHARS};
use crate::select::{Coverage, StoryView};
use crate::store::sources::SourceState;

/// The stylesheet every page links.
pub const STYLE: &str = include_str!("style.css");

/// Stories an embed shows by default, and at most.
pub const EMBED_DEFAULT: usize = 5;
/// See [`EMBED_DEFAULT`].
pub const EMBED_MAX: usize = 20;

/// Characters of a summary shown under a headline (cut back to a sentence end).
pub(crate) const SUMMARY_CHARS: usize = 280;

/// The stylesheet's path under the base path: named by a hash of its bytes, so it can be
/// cached for a year and a new release is fetched at once.
pub fn style_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| format!("assets/style-{:08x}.css", fnv32(STYLE.as_bytes())))
}

/// `base_url`'s path, ending in `/`: the prefix of every link on a page.
pub fn base_path(base_url: &Url) -> String {
    let p = base_url.path();
    if p.ends_with('/') {
        p.to_string()
    } else {
        format!("{p}/")
    }
}

/// Upstream text as a page shows it: [`clean_text`] (controls dropped, whitespace folded,
/// at most `max` characters) without the bidi embedding, override and isolate controls,
/// which could reverse the text around a headline. Right-to-left text itself needs none of
/// them; elements holding upstream text carry `dir="auto"`.
pub fn page_text(s: &str, max: usize) -> String {
    let t = clean_text(s, max);
    if t.chars().any(is_bidi_control) {
        t.chars().filter(|c| !is_bidi_control(*c)).collect()
    } else {
        t
    }
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Plain text of a summary, cut at the end of a sentence within `max` characters (else at a
/// word, with an ellipsis).
pub fn summary_text(html: &str, max: usize) -> String {
    let text = page_text(&quick_text(html, max * 2 + 16), max * 2);
    if text.chars().count() <= max {
        return text;
    }
    let cut = text.char_indices().nth(max).map(|(i, _)| i).unwrap_or(text.len());
    let head = &text[..cut];
    // The last sentence end past a quarter of the budget (a sentence end is followed by a
    // space; "U.S." mid-sentence may still cut early, which costs words, not sense).
    let ends = head.match_indices(['.', '!', '?', '。', '؟']).map(|(i, m)| i + m.len());
    if let Some(end) = ends.rev().find(|&e| e >= head.len() / 4 && head[e..].starts_with(' ')) {
        return head[..end].to_string();
    }
    let word = head.rfind(' ').filter(|&i| i >= head.len() / 2).unwrap_or(head.len());
    format!("{}…", head[..word].trim_end_matches([',', ';', ':', ' ']))
}

/// "5 min ago" for `secs` seconds.
pub fn ago(secs: i64) -> String {
    match secs.max(0) {
        s if s < 60 => "just now".to_string(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86400 => format!("{} h ago", s / 3600),
        s if s < 2 * 86400 => "yesterday".to_string(),
        s => format!("{} days ago", s / 86400),
    }
}

/// What a page needs of the site around it.
struct Site<'a> {
    config: &'a Config,
    base: String,
    now: i64,
}

impl<'a> Site<'a> {
    fn new(config: &'a Config, now: i64) -> Site<'a> {
        Site { config, base: base_path(&config.daemon.base_url), now }
    }

    fn href(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn story_href(&self, id: i64) -> String {
        self.href(&format!("stories/{id}"))
    }

    fn topic_href(&self, id: &str) -> String {
        if self.config.web.front.as_deref() == Some(id) {
            self.base.clone()
        } else {
            self.href(&format!("topics/{id}"))
        }
    }

    /// `<time>` with the machine-readable instant and a relative label.
    fn time(&self, t: i64) -> Markup {
        let at = super::time(t);
        html! {
            time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                title=(at.format("%Y-%m-%d %H:%M UTC").to_string()) { (ago(self.now - t)) }
        }
    }

    /// The whole page: head, header with search and topics, `body`, footer.
    fn page(&self, title: &str, current: Option<&str>, head: Markup, body: Markup) -> String {
        let site = page_text(&self.config.web.title, 100);
        let full_title = if title.is_empty() { site.clone() } else { format!("{title} · {site}") };
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="referrer" content="no-referrer";
                    title { (full_title) }
                    link rel="stylesheet" href=(self.href(style_path()));
                    (head)
                }
                body {
                    a.skip href="#main" { "Skip to the stories" }
                    header.site {
                        div.wrap {
                            div.top {
                                a.brand href=(self.base) { (site) }
                                form.search role="search" action=(self.href("search")) method="get" {
                                    input type="search" name="q" aria-label="Search stories" placeholder="Search stories" maxlength="200";
                                    button type="submit" { "Search" }
                                }
                            }
                            @if !self.config.topics.is_empty() {
                                nav.topics aria-label="Topics" {
                                    ul {
                                        @for t in &self.config.topics {
                                            li { a href=(self.topic_href(&t.id)) aria-current=[(current == Some(t.id.as_str())).then_some("page")] { (page_text(&t.title, 100)) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    main #main.wrap { (body) }
                    footer.site-foot {
                        div.wrap {
                            a href=(self.href("sources")) { "Sources" } " · "
                            a href=(self.href("sources.opml")) { "OPML" } " · "
                            "Served by newsdesk " (crate::VERSION)
                        }
                    }
                }
            }
        };
        markup.into_string()
    }

    /// One story in a list: lead headline, outlet and time, summary, the other outlets.
    fn story(&self, s: &StoryView, level: u8) -> Markup {
        let title = headline(s);
        let link = s.lead.link.as_deref().and_then(absolute_url).unwrap_or_else(|| self.story_href(s.id));
        let outlet = s.outlets.first().map(|o| page_text(&o.name, 100)).unwrap_or_default();
        let summary = s.lead.summary.as_deref().or(s.lead.content.as_deref()).map(|h| summary_text(h, SUMMARY_CHARS));
        let others = s.others();
        let n = s.outlets.len();
        let heading = html! { a href=(link) { (title) } };
        html! {
            article.story {
                @if level == 2 { h2 dir="auto" { (heading) } } @else { h3 dir="auto" { (heading) } }
                p.meta { span.outlet dir="auto" { (outlet) } " · " (self.time(s.lead.story_time.max(s.first_seen))) }
                @if let Some(summary) = summary.filter(|t| !t.is_empty()) { p.summary dir="auto" { (summary) } }
                p.more {
                    a.full href=(self.story_href(s.id)) {
                        @if n == 1 { "Full coverage" } @else { "Full coverage: " (n) " outlets" }
                    }
                    @if !others.is_empty() {
                        " · also "
                        @for (i, o) in others.iter().enumerate() {
                            @if i > 0 { ", " }
                            @if let Some(l) = o.link.as_deref().and_then(absolute_url) {
                                a href=(l) dir="auto" { (page_text(&o.name, 100)) }
                            } @else {
                                span dir="auto" { (page_text(&o.name, 100)) }
                            }
                        }
                    }
                }
            }
        }
    }

    fn story_list(&self, stories: &[StoryView]) -> Markup {
        html! {
            @if stories.is_empty() {
                p.lede { "No stories here right now. They appear as sources are polled." }
            } @else {
                ol.stories { @for s in stories { li { (self.story(s, 2)) } } }
            }
        }
    }

    /// A line of subscribe links, one per format.
    fn subscribe(&self, label: &str, urls: &[(Format, String)]) -> Markup {
        html! {
            p.subscribe {
                (label)
                @for (i, (f, url)) in urls.iter().enumerate() {
                    @if i > 0 { " · " }
                    a href=(url) type=(mime(*f)) { (f.label()) }
                }
            }
        }
    }

    /// Feed autodiscovery for one feed URL per format.
    fn alternates(&self, title: &str, urls: &[(Format, String)]) -> Markup {
        html! {
            @for (f, url) in urls {
                link rel="alternate" type=(mime(*f)) title=(format!("{title} ({})", f.label())) href=(url);
            }
        }
    }
}

fn mime(f: Format) -> &'static str {
    match f {
        Format::Rss => "application/rss+xml",
        Format::Atom => "application/atom+xml",
        Format::Json => "application/feed+json",
    }
}

fn headline(s: &StoryView) -> String {
    let t = page_text(&s.lead.title, MAX_TITLE_CHARS);
    if t.is_empty() {
        "(untitled)".to_string()
    } else {
        t
    }
}

/// The page of one topic (`front`: as the site's front page, at `/`).
pub fn topic_page(config: &Config, topic: &TopicConfig, stories: &[StoryView], now: i64, front: bool) -> String {
    let site = Site::new(config, now);
    let title = page_text(&topic.title, 200);
    let feeds: Vec<(Format, String)> =
        Format::ALL.iter().map(|&f| (f, site.href(&format!("topics/{}.{}", topic.id, f.ext())))).collect();
    let embed = super::under(&config.daemon.base_url, &format!("embed/{}", topic.id));
    let snippet_title = super::escape_html(&title);
    let snippet = format!(
        "<iframe src=\"{embed}\" title=\"Latest from {snippet_title}\" width=\"320\" height=\"420\" style=\"border:0\" loading=\"lazy\"></iframe>"
    );
    let body = html! {
        h1 { (title) }
        (site.subscribe("Subscribe: ", &feeds))
        (site.story_list(stories))
        details.embed-code {
            summary { "Put this topic on your site" }
            p { "Paste this where the rail should appear (" code { "?limit=1" } " to " code { "20" } ", default " (EMBED_DEFAULT) "):" }
            pre { code { (snippet) } }
        }
    };
    let head = site.alternates(&title, &feeds);
    site.page(if front { "" } else { &title }, Some(&topic.id), head, body)
}

/// The full-coverage page of one story: every item in time order, copies marked.
pub fn story_page(config: &Config, c: &Coverage, topics: &[&TopicConfig], now: i64) -> String {
    let site = Site::new(config, now);
    let s = &c.story;
    let title = headline(s);
    let lead_link = s.lead.link.as_deref().and_then(absolute_url);
    let summary = s.lead.summary.as_deref().map(|h| summary_text(h, SUMMARY_CHARS * 2));
    let outlets = s.outlets.len();
    let copies = copy_pairs(&c.items);
    let body = html! {
        article.coverage {
            h1 dir="auto" { (title) }
            p.meta {
                "First seen " (site.time(s.first_seen)) " · last updated " (site.time(s.updated.max(s.first_seen)))
                " · " (plural(c.items.len(), "report")) " from " (plural(outlets, "outlet"))
            }
            @if let Some(summary) = summary.filter(|t| !t.is_empty()) { p.summary dir="auto" { (summary) } }
            @if let Some(l) = &lead_link {
                p { a href=(l) { "Read it at " span dir="auto" { (s.outlets.first().map(|o| page_text(&o.name, 100)).unwrap_or_default()) } } }
            }
            p.meta {
                @if topics.is_empty() { "Not in any topic right now." } @else {
                    "In "
                    @for (i, t) in topics.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href=(site.topic_href(&t.id)) { (page_text(&t.title, 100)) }
                    }
                }
            }
            h2 { "Full coverage" }
            ol.items {
                @for it in &c.items {
                    @let outlet = c.outlet(it);
                    li id=(format!("item-{}", it.id)) {
                        h3 dir="auto" {
                            @if let Some(l) = it.link.as_deref().and_then(absolute_url) { a href=(l) { (item_title(&it.title)) } }
                            @else { (item_title(&it.title)) }
                        }
                        p.meta {
                            span.outlet dir="auto" { (page_text(&outlet.name, 100)) } " · " (site.time(it.story_time))
                            @if let Some(orig) = copies.get(&it.id) {
                                " · "
                                span.copy {
                                    "copy of "
                                    @if let Some(o) = c.items.iter().find(|x| x.id == *orig) {
                                        a href=(format!("#item-{orig}")) { span dir="auto" { (page_text(&c.outlet(o).name, 100)) } "’s article" }
                                    } @else { "an earlier article" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let head = html! { link rel="canonical" href=(super::story_guid(&config.daemon.base_url, s.id)); };
    site.page(&title, None, head, body)
}

/// Which item copies which, by id: of a near-copy pair the later one (by time, then id) is
/// the copy. The stored link may point the other way until a settle (see
/// [`crate::store::stories`]) has replayed items polled out of time order.
fn copy_pairs(items: &[crate::store::queries::StoryItem]) -> std::collections::HashMap<i64, i64> {
    let key = |id: i64| items.iter().find(|x| x.id == id).map(|x| (x.story_time, x.id));
    let mut out = std::collections::HashMap::new();
    for it in items {
        let Some(other) = it.copy_of else { continue };
        match (key(it.id), key(other)) {
            (Some(a), Some(b)) if a < b => out.insert(other, it.id),
            _ => out.insert(it.id, other),
        };
    }
    out
}

fn item_title(t: &str) -> String {
    let t = page_text(t, MAX_TITLE_CHARS);
    if t.is_empty() {
        "(untitled)".to_string()
    } else {
        t
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The sources' health: status, items, last and next poll, last error.
pub fn sources_page(config: &Config, states: &[SourceState], now: i64) -> String {
    let site = Site::new(config, now);
    let rows: Vec<(&crate::config::SourceConfig, Option<&SourceState>)> =
        config.sources.iter().map(|s| (s, states.iter().find(|x| x.id == s.id))).collect();
    let status = |st: Option<&SourceState>| match st.map(|x| x.status.as_str()) {
        Some("ok") => "ok",
        Some("error") => "failing",
        Some("retired") => "retired",
        _ => "new",
    };
    let count = |want: &str| rows.iter().filter(|(_, st)| status(*st) == want).count();
    let health: Vec<(Format, String)> =
        Format::ALL.iter().map(|&f| (f, site.href(&format!("sources/health.{}", f.ext())))).collect();
    let when = |t: Option<i64>| match t {
        Some(t) if t > now => html! { (site.time_until(t)) },
        Some(t) => site.time(t),
        None => html! { "never" },
    };
    let body = html! {
        h1 { "Sources" }
        p.lede {
            (count("ok")) " ok · " (count("failing")) " failing · " (count("retired")) " retired · " (count("new")) " not polled yet · "
            a href=(site.href("sources.opml")) { "all as OPML" }
        }
        (site.subscribe("Follow their health (failing, recovered, retired, moved): ", &health))
        div.scroll {
            table {
                thead { tr { th { "Source" } th { "Status" } th { "Items" } th { "Last poll" } th { "Next poll" } th { "Last error" } } }
                tbody {
                    @for (s, st) in &rows {
                        @let name = s.title.clone().or_else(|| st.and_then(|x| x.feed_title.clone())).unwrap_or_else(|| s.id.clone());
                        @let url = st.map(|x| x.url.as_str()).unwrap_or(s.url.as_str());
                        tr {
                            td dir="auto" {
                                @if let Some(u) = absolute_url(url) { a href=(u) { (page_text(&name, 200)) } } @else { (page_text(&name, 200)) }
                            }
                            td class=(status(*st)) { (status(*st)) }
                            td {
                                (st.map(|x| x.items).unwrap_or(0))
                                @if let Some(old) = st.map(|x| x.past_retention).filter(|&n| n > 0) {
                                    br; small { "+" (old) " past retention" }
                                }
                            }
                            td { (when(st.and_then(|x| x.last_poll))) }
                            td { @if status(*st) == "retired" { "never" } @else { (when(st.and_then(|x| x.next_due))) } }
                            td dir="auto" { (page_text(&st.and_then(|x| x.last_error.clone().or(x.retired_reason.clone())).unwrap_or_default(), 300)) }
                        }
                    }
                }
            }
        }
    };
    site.page("Sources", None, site.alternates("Source health", &health), body)
}

impl Site<'_> {
    fn time_until(&self, t: i64) -> Markup {
        let at = super::time(t);
        let secs = (t - self.now).max(0);
        let label = match secs {
            s if s < 60 => "in under a minute".to_string(),
            s if s < 3600 => format!("in {} min", s / 60),
            s if s < 86400 => format!("in {} h", s / 3600),
            s => format!("in {} days", s / 86400),
        };
        html! { time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) { (label) } }
    }
}

/// Search results for `query` (the text as typed), or the reason it could not run.
pub fn search_page(config: &Config, query: &str, results: Result<&[StoryView], &str>, now: i64) -> String {
    let site = Site::new(config, now);
    let q = page_text(query, 200);
    let enc: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
    let feeds: Vec<(Format, String)> =
        Format::ALL.iter().map(|&f| (f, site.href(&format!("search.{}?q={enc}", f.ext())))).collect();
    let body = html! {
        h1 { "Search" }
        form.search role="search" action=(site.href("search")) method="get" {
            input type="search" name="q" value=(q) aria-label="Search stories" maxlength="200";
            button type="submit" { "Search" }
        }
        @match results {
            Err(why) => {
                div.error-box role="alert" { p { (why) } }
                p.lede {
                    "Words must all match (in headlines, summaries or outlet names); "
                    code { "\"exact phrase\"" } ", " code { "a OR b" } ", " code { "-word" } " to leave out, "
                    code { "prefix*" } "."
                }
            }
            Ok(stories) => {
                @if !q.is_empty() {
                    p.lede { (plural(stories.len(), "story")) " for “" span dir="auto" { (q) } "”, newest first." }
                    (site.subscribe("Follow this search: ", &feeds))
                    (site.story_list(stories))
                }
            }
        }
    };
    let head = if results.is_ok() && !q.is_empty() {
        site.alternates(&format!("Search: {q}"), &feeds)
    } else {
        html! {}
    };
    site.page(&if q.is_empty() { "Search".to_string() } else { format!("{q}: search") }, None, head, body)
}

/// The embeddable rail: the first `limit` stories of `topic`, headline, outlet and time.
/// Links open outside the frame.
pub fn embed(config: &Config, topic: &TopicConfig, stories: &[StoryView], limit: usize, now: i64) -> String {
    let site = Site::new(config, now);
    let title = page_text(&topic.title, 200);
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { "Latest from " (title) }
                link rel="stylesheet" href=(site.href(style_path()));
            }
            body.embed {
                main.rail {
                    h2 { a href=(super::under(&config.daemon.base_url, &format!("topics/{}", topic.id))) target="_blank" rel="noopener" { "Latest from " (title) } }
                    ol {
                        @for s in stories.iter().take(limit) {
                            @let link = s.lead.link.as_deref().and_then(absolute_url).unwrap_or_else(|| super::story_guid(&config.daemon.base_url, s.id));
                            li {
                                a href=(link) target="_blank" rel="noopener" dir="auto" { (headline(s)) }
                                br;
                                span.meta {
                                    span.outlet dir="auto" { (s.outlets.first().map(|o| page_text(&o.name, 100)).unwrap_or_default()) }
                                    " · " (site.time(s.lead.story_time.max(s.first_seen)))
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    markup.into_string()
}

/// A page with one message (what was not found, why a request failed), and the way back.
pub fn message_page(config: &Config, heading: &str, what: &str, now: i64) -> String {
    let site = Site::new(config, now);
    let body = html! {
        h1 { (heading) }
        p { (what) }
        p { a href=(site.base) { "Back to the front page" } " · " a href=(site.href("search")) { "search" } }
    };
    site.page(heading, None, html! {}, body)
}

/// FNV-1a, 32 bits: names the stylesheet by its bytes (not security-relevant).
fn fnv32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::{hostile, story};

    fn config() -> Config {
        Config::parse(
            std::path::Path::new("f.toml"),
            "[daemon]\nbase_url = \"https://news.example/desk\"\n\
             [[source]]\nid = \"dawn\"\nurl = \"https://dawn.example/feed\"\ntitle = \"Dawn <b>&</b>\"\n\
             [[topic]]\nid = \"top\"\ntitle = \"Top <News>\"\nrank = \"coverage\"\n[[topic]]\nid = \"pk\"\ntitle = \"Pakistan\"",
        )
        .unwrap()
    }

    #[test]
    fn summaries_are_cut_at_a_sentence() {
        let first = "Lavrov arrived in Islamabad on Tuesday for two days of talks with Pakistani leaders.";
        let long = format!("<p>{first} Second one is {}. Third.</p>", "very ".repeat(80));
        assert_eq!(summary_text(&long, 280), first);
        assert_eq!(summary_text("<p>Short &amp; sweet.</p>", 280), "Short & sweet.");
        let words = "word ".repeat(100);
        let cut = summary_text(&words, 50);
        assert!(cut.ends_with('…') && cut.chars().count() <= 51, "{cut}");
    }

    #[test]
    fn bidi_overrides_and_controls_are_dropped() {
        assert_eq!(page_text("a\u{202E}b\u{2066}c\u{0}d", 100), "abcd");
        assert_eq!(page_text("پاکستان", 100), "پاکستان");
    }

    #[test]
    fn topic_page_links_lead_story_page_and_feeds() {
        let c = config();
        let h = topic_page(
            &c,
            &c.topics[1],
            &[story(1, "Lavrov <arrives>", "<p>He came. Then left.</p>")],
            1_750_003_600,
            false,
        );
        assert!(h.starts_with("<!DOCTYPE html><html lang=\"en\">"), "{}", &h[..80]);
        assert!(h.contains("href=\"https://dawn.example/news/1\">Lavrov &lt;arrives&gt;</a>"), "{h}");
        assert!(h.contains("href=\"/desk/stories/1\">Full coverage: 3 outlets</a>"), "{h}");
        assert!(h.contains("<a href=\"https://bbc.example/1\" dir=\"auto\">BBC</a>"), "{h}");
        assert!(h.contains("<span dir=\"auto\">Bad</span>"), "javascript: outlet link is not a link: {h}");
        assert!(h.contains("<time datetime=\"2025-06-15T15:06:40Z\""), "{h}");
        assert!(h.contains("<link rel=\"alternate\" type=\"application/atom+xml\""), "{h}");
        assert!(h.contains("href=\"/desk/topics/pk.json\""), "{h}");
        assert!(h.contains("<a href=\"/desk/\">Top &lt;News&gt;</a>"), "front topic links to /: {h}");
        assert!(h.contains("aria-current=\"page\">Pakistan"), "{h}");
        assert!(h.contains("&lt;iframe src=&quot;https://news.example/desk/embed/pk&quot;"), "{h}");
        assert!(h.contains(style_path()));
    }

    #[test]
    fn hostile_items_render_inert_everywhere() {
        let c = config();
        let mut h = hostile();
        h.lead.title = format!("\u{202E}{}", h.lead.title);
        let stories = [h.clone()];
        let cov = Coverage { story: h.clone(), items: vec![h.lead.clone()], sources: Default::default() };
        let pages = [
            topic_page(&c, &c.topics[0], &stories, 1_750_003_600, true),
            embed(&c, &c.topics[0], &stories, 5, 1_750_003_600),
            search_page(&c, "<script>alert(1)</script>", Ok(&stories), 1_750_003_600),
            story_page(&c, &cov, &[], 1_750_003_600),
        ];
        for p in &pages {
            for bad in ["<script", "onclick", "onerror", "javascript:", "\u{0}", "\u{1b}", "\u{202E}", "<img"] {
                assert!(!p.contains(bad), "{bad:?} in {}", &p[..p.len().min(3000)]);
            }
            assert!(p.len() < 20_000, "a 1 MB title is cut: {} bytes", p.len());
        }
    }
}
