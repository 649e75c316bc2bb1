//! Render: a topic's stories to bytes, in RSS 2.0 ([`rss`]), Atom 1.0 ([`atom`]) and JSON
//! Feed 1.1 ([`jsonfeed`]), plus the HTML index page ([`html`]). Pure functions: the same
//! stories give the same bytes, so a rebuilt feed that did not change keeps its ETag.
//!
//! One entry per story. Its id is the story's stable id as a URI under `base_url`
//! (`{base_url}stories/{id}`), which never changes as the story grows or its lead title
//! changes. Title and link come from the lead item; the content is the lead item's summary
//! (else its content), sanitised again on the way out, then "Also reported by" with a link
//! to each other outlet's article. Everything that reaches the output passes
//! [`strip_xml_forbidden`] and only absolute http(s) URLs are emitted.

pub mod atom;
pub mod digest;
pub mod html;
pub mod jsonfeed;
pub mod rss;

use chrono::{DateTime, Utc};
use url::Url;

use crate::config::TopicConfig;
use crate::normalize::html::{strip_xml_forbidden, Sanitizer};
use crate::normalize::text::MAX_TITLE_CHARS;
use crate::select::StoryView;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// RSS 2.0.
    Rss,
    /// Atom 1.0.
    Atom,
    /// JSON Feed 1.1.
    Json,
}

impl Format {
    /// Every format, in the order the index page lists them.
    pub const ALL: [Format; 3] = [Format::Rss, Format::Atom, Format::Json];

    /// File extension (and URL suffix) without the dot.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Rss => "rss",
            Format::Atom => "atom",
            Format::Json => "json",
        }
    }

    /// The format for an extension or `--format` value.
    pub fn from_ext(s: &str) -> Option<Format> {
        match s {
            "rss" | "xml" => Some(Format::Rss),
            "atom" => Some(Format::Atom),
            "json" | "jsonfeed" => Some(Format::Json),
            _ => None,
        }
    }

    /// `Content-Type` header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Json => "application/feed+json; charset=utf-8",
        }
    }

    /// Human name for links.
    pub fn label(self) -> &'static str {
        match self {
            Format::Rss => "RSS",
            Format::Atom => "Atom",
            Format::Json => "JSON Feed",
        }
    }

    /// Index in [`Format::ALL`].
    pub fn index(self) -> usize {
        match self {
            Format::Rss => 0,
            Format::Atom => 1,
            Format::Json => 2,
        }
    }
}

/// Renders `stories` of `topic` in `format`, naming `hubs` as its WebSub hubs (none: the
/// document has no hub links at all).
pub fn render(format: Format, topic: &TopicConfig, stories: &[StoryView], base_url: &Url, hubs: &[String]) -> Vec<u8> {
    let mut feed = FeedView::new(topic, stories, base_url, format);
    feed.hubs = hubs.to_vec();
    match format {
        Format::Rss => rss::render(&feed),
        Format::Atom => atom::render(&feed),
        Format::Json => jsonfeed::render(&feed),
    }
}

/// Renders the results of a search for `query` (as typed) in `format`: a feed whose own URL
/// is the search's, so a reader can subscribe to it.
pub fn render_search(format: Format, query: &str, stories: &[StoryView], base_url: &Url, hubs: &[String]) -> Vec<u8> {
    let mut feed = FeedView::search(query, stories, base_url, format);
    feed.hubs = hubs.to_vec();
    match format {
        Format::Rss => rss::render(&feed),
        Format::Atom => atom::render(&feed),
        Format::Json => jsonfeed::render(&feed),
    }
}

/// The sources' health events (newest first) as a feed, for sysadmins: one entry per event,
/// its GUID the event's own URI, linking to the sources page.
pub fn render_health(format: Format, events: &[crate::store::sources::SourceEvent], base_url: &Url) -> Vec<u8> {
    let page = under(base_url, "sources");
    let entries: Vec<EntryView> = events
        .iter()
        .map(|e| {
            let name = clean_text(&e.name, 200);
            let detail = clean_text(&e.detail, 2000);
            let what = match e.kind.as_str() {
                "failing" => "is failing",
                "recovered" => "recovered",
                "retired" => "was retired (it will not be polled again)",
                "moved" => "moved",
                other => other,
            };
            let at = time(e.at);
            EntryView {
                id: under(base_url, &format!("sources/health/{}", e.id)),
                title: if e.name == e.source_id {
                    format!("{name} {what}")
                } else {
                    format!("{name} ({}) {what}", clean_text(&e.source_id, 200))
                },
                link: page.clone(),
                content_html: format!(
                    "<p>Source <code>{}</code> ({}) {what}: {}</p>",
                    escape_html(&clean_text(&e.source_id, 200)),
                    escape_html(&name),
                    escape_html(&detail)
                ),
                published: at,
                updated: at,
                authors: Vec::new(),
                tags: vec![e.kind.clone()],
                outlet: String::new(),
                outlet_feed: None,
                others: Vec::new(),
                content_text: Some(format!("Source {} ({name}) {what}: {detail}", e.source_id)),
            }
        })
        .collect();
    let feed = FeedView {
        title: "Source health".to_string(),
        description: "Sources that started failing, recovered, were retired or moved: from newsdesk".to_string(),
        home_page_url: page.clone(),
        feed_url: under(base_url, &format!("sources/health.{}", format.ext())),
        id: under(base_url, "sources/health"),
        updated: entries.iter().map(|e| e.updated).max().unwrap_or_default(),
        entries,
        hubs: Vec::new(),
    };
    match format {
        Format::Rss => rss::render(&feed),
        Format::Atom => atom::render(&feed),
        Format::Json => jsonfeed::render(&feed),
    }
}

/// Where the search feed for `query` (as typed) is served in `format`: its self link, and
/// the only form of it our WebSub hub takes as `hub.topic`.
pub fn search_feed_url(base_url: &Url, query: &str, format: Format) -> String {
    under(base_url, &format!("search.{}?{}", format.ext(), search_query(query)))
}

/// The format and query of `url` when it is one of our search feeds, as [`search_feed_url`]
/// writes it (so one search has one URL per format).
pub fn search_feed_of(base_url: &Url, url: &str) -> Option<(Format, String)> {
    let rest = url.strip_prefix(under(base_url, "search.").as_str())?;
    let (ext, query) = rest.split_once('?')?;
    let format = Format::from_ext(ext)?;
    let q = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "q").map(|(_, v)| v.into_owned())?;
    (search_feed_url(base_url, &q, format) == url).then_some((format, q))
}

/// The query string of a search for `query`.
pub fn search_query(query: &str) -> String {
    let enc: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
    format!("q={enc}")
}

/// `base_url` as a directory, so joining keeps any path prefix it has.
pub fn base_dir(base_url: &Url) -> Url {
    let mut u = base_url.clone();
    u.set_query(None);
    u.set_fragment(None);
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

/// A path under `base_url` as an absolute URL.
pub fn under(base_url: &Url, path: &str) -> String {
    let base = base_dir(base_url);
    base.join(path).map(String::from).unwrap_or_else(|_| format!("{base}{path}"))
}

/// The GUID of a story: a URI under `base_url` that only depends on the story id.
pub fn story_guid(base_url: &Url, id: i64) -> String {
    under(base_url, &format!("stories/{id}"))
}

/// Where a topic is served in `format`.
pub fn feed_url(base_url: &Url, topic_id: &str, format: Format) -> String {
    under(base_url, &format!("topics/{topic_id}.{}", format.ext()))
}

/// `s` as an absolute http(s) URL, or `None` (relative, `javascript:`, garbage...).
pub fn absolute_url(s: &str) -> Option<String> {
    let u = Url::parse(s.trim()).ok()?;
    (matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())).then(|| u.to_string())
}

/// Text safe for XML and bounded: forbidden characters removed, whitespace folded, at most
/// `max` characters.
pub fn clean_text(s: &str, max: usize) -> String {
    let s = strip_xml_forbidden(s);
    let mut out = String::with_capacity(s.len().min(max * 4));
    for (n, w) in s.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(w);
    }
    if let Some((cut, _)) = out.char_indices().nth(max) {
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Unix seconds as a UTC time (the epoch when out of range).
pub fn time(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).unwrap_or_default()
}

/// What every format shows of one topic, computed once and already cleaned.
pub struct FeedView {
    /// Feed title.
    pub title: String,
    /// Short description.
    pub description: String,
    /// The site (index page) URL.
    pub home_page_url: String,
    /// This document's own URL.
    pub feed_url: String,
    /// WebSub hubs to name (`rel="hub"`); empty for none.
    pub hubs: Vec<String>,
    /// Feed id for Atom (the topic's URL without a format).
    pub id: String,
    /// Latest change of any entry (the epoch for an empty feed, so bytes stay deterministic).
    pub updated: DateTime<Utc>,
    /// Entries, best first.
    pub entries: Vec<EntryView>,
}

/// One story, cleaned for output.
pub struct EntryView {
    /// Stable GUID / id URI.
    pub id: String,
    /// Plain-text title.
    pub title: String,
    /// Absolute link to the lead article (the GUID URI when it has none).
    pub link: String,
    /// Sanitised HTML: the lead's summary, then "Also reported by".
    pub content_html: String,
    /// A plain-text part, where the entry has one (digests).
    pub content_text: Option<String>,
    /// Story first seen.
    pub published: DateTime<Utc>,
    /// Story last changed.
    pub updated: DateTime<Utc>,
    /// Authors of the lead item, else its outlet.
    pub authors: Vec<String>,
    /// Categories of the lead item.
    pub tags: Vec<String>,
    /// The lead item's outlet name.
    pub outlet: String,
    /// The lead item's source feed URL.
    pub outlet_feed: Option<String>,
    /// Other outlets: (name, absolute link).
    pub others: Vec<(String, Option<String>)>,
}

impl FeedView {
    /// Prepares `stories` for output as `format`.
    pub fn new(topic: &TopicConfig, stories: &[StoryView], base_url: &Url, format: Format) -> FeedView {
        let entries: Vec<EntryView> = stories.iter().map(|s| EntryView::new(s, base_url)).collect();
        let updated = entries.iter().map(|e| e.updated).max().unwrap_or_default();
        let title = clean_text(&topic.title, 200);
        FeedView {
            description: format!("{title}: merged news from newsdesk"),
            title,
            home_page_url: base_dir(base_url).to_string(),
            feed_url: feed_url(base_url, &topic.id, format),
            hubs: Vec::new(),
            id: under(base_url, &format!("topics/{}", topic.id)),
            updated,
            entries,
        }
    }
}

impl FeedView {
    /// Prepares the results of a search for `query` for output as `format`.
    pub fn search(query: &str, stories: &[StoryView], base_url: &Url, format: Format) -> FeedView {
        let entries: Vec<EntryView> = stories.iter().map(|s| EntryView::new(s, base_url)).collect();
        let updated = entries.iter().map(|e| e.updated).max().unwrap_or_default();
        let q = clean_text(query, 200);
        let params = search_query(query);
        FeedView {
            title: format!("Search: {q}"),
            description: format!("Stories matching \u{201c}{q}\u{201d}: merged news from newsdesk"),
            home_page_url: under(base_url, &format!("search?{params}")),
            feed_url: search_feed_url(base_url, query, format),
            hubs: Vec::new(),
            id: under(base_url, &format!("search?{params}")),
            updated,
            entries,
        }
    }
}

impl EntryView {
    fn new(s: &StoryView, base_url: &Url) -> EntryView {
        let id = story_guid(base_url, s.id);
        let lead_link = s.lead.link.as_deref().and_then(absolute_url);
        let link = lead_link.clone().unwrap_or_else(|| id.clone());
        let mut title = clean_text(&s.lead.title, MAX_TITLE_CHARS);
        if title.is_empty() {
            title = "(untitled)".to_string();
        }
        let outlet = s.outlets.first().map(|o| clean_text(&o.name, 200)).unwrap_or_default();
        let others: Vec<(String, Option<String>)> =
            s.others().iter().map(|o| (clean_text(&o.name, 200), o.link.as_deref().and_then(absolute_url))).collect();
        // Sanitised again on the way out: the store is trusted to hold clean HTML, but this is
        // the last line before subscribers' readers, and a rule change must apply to old rows.
        let base = lead_link.as_deref().and_then(|l| Url::parse(l).ok());
        let sanitizer = Sanitizer::new(base.as_ref());
        let mut html = s
            .lead
            .summary
            .as_deref()
            .or(s.lead.content.as_deref())
            .and_then(|h| sanitizer.clean(h))
            .unwrap_or_default();
        if !others.is_empty() {
            let links: Vec<String> = others
                .iter()
                .map(|(name, link)| match link {
                    Some(l) => format!("<a href=\"{}\">{}</a>", escape_html(l), escape_html(name)),
                    None => escape_html(name),
                })
                .collect();
            html.push_str(&format!("<p>Also reported by: {}</p>", links.join(", ")));
            html = sanitizer.clean(&html).unwrap_or_default();
        }
        let mut authors: Vec<String> =
            s.lead.authors.iter().map(|a| clean_text(a, 200)).filter(|a| !a.is_empty()).collect();
        if authors.is_empty() && !outlet.is_empty() {
            authors.push(outlet.clone());
        }
        let mut tags: Vec<String> = Vec::new();
        for c in &s.lead.categories {
            let c = clean_text(c, 100);
            if !c.is_empty() && !tags.contains(&c) {
                tags.push(c);
            }
        }
        EntryView {
            id,
            title,
            link,
            content_html: html,
            content_text: None,
            published: time(s.first_seen),
            updated: time(s.updated.max(s.first_seen)),
            authors,
            tags,
            outlet,
            outlet_feed: s.outlets.first().and_then(|o| o.feed_url.as_deref()).and_then(absolute_url),
            others,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::select::Outlet;
    use crate::store::queries::StoryItem;

    pub(crate) fn base() -> Url {
        Url::parse("https://news.example/desk").unwrap()
    }

    #[test]
    fn a_search_feed_has_one_url_per_format_and_only_that_one_is_recognised() {
        let b = base();
        let url = search_feed_url(&b, "São \"Paulo floods\" -x&y", Format::Atom);
        assert!(url.starts_with("https://news.example/desk/search.atom?q=S%C3%A3o"), "{url}");
        assert_eq!(search_feed_of(&b, &url), Some((Format::Atom, "São \"Paulo floods\" -x&y".to_string())));
        for other in [
            format!("{url}&x=1"),
            url.replace("search.atom", "search.xml"),
            "https://news.example/desk/search.rss?q=a%20b".to_string(),
            "https://elsewhere.example/search.rss?q=a".to_string(),
            "https://news.example/desk/search.rss".to_string(),
        ] {
            assert_eq!(search_feed_of(&b, &other), None, "{other}");
        }
        assert!(search_feed_of(&b, "https://news.example/desk/search.rss?q=a+b").is_some());
    }

    pub(crate) fn topic() -> TopicConfig {
        let c = crate::config::Config::parse(
            std::path::Path::new("f.toml"),
            "[[topic]]\nid = \"top\"\ntitle = \"Top <News> & more\"",
        )
        .unwrap();
        c.topics[0].clone()
    }

    pub(crate) fn outlet(name: &str, link: &str) -> Outlet {
        Outlet {
            key: link.into(),
            name: name.into(),
            source_id: name.to_lowercase(),
            feed_url: Some(format!("https://{}.example/feed", name.to_lowercase())),
            link: Some(link.into()),
        }
    }

    pub(crate) fn story(id: i64, title: &str, summary: &str) -> StoryView {
        StoryView {
            id,
            first_seen: 1_750_000_000,
            last_seen: 1_750_000_600,
            updated: 1_750_000_900,
            score: 1.0,
            lead: StoryItem {
                id: id * 10,
                story_id: id,
                link: Some(format!("https://dawn.example/news/{id}")),
                title: title.into(),
                summary: Some(summary.into()),
                categories: vec!["Politics".into(), "Politics".into()],
                sources: vec!["dawn".into()],
                ..StoryItem::default()
            },
            outlets: vec![
                outlet("Dawn", &format!("https://dawn.example/news/{id}")),
                outlet("BBC", &format!("https://bbc.example/{id}")),
                outlet("Bad", "javascript:alert(1)"),
            ],
            copies: 0,
            items: 3,
        }
    }

    /// The hostile item of the issue: script, handlers, javascript: links, controls, 1 MB.
    pub(crate) fn hostile() -> StoryView {
        let mut s = story(
            7,
            &format!("Evil\u{0}\u{1b} <script>alert(1)</script> {}", "A".repeat(1 << 20)),
            "<p onclick=\"x()\">Hi<script>alert(1)</script><img src=x onerror=alert(1)>\
             <a href=\"javascript:alert(1)\">j</a>\u{0}\u{8}</p>]]><![CDATA[",
        );
        s.lead.link = Some("javascript:alert(1)".into());
        s.lead.authors = vec!["Mallory\u{1}".into()];
        s
    }

    #[test]
    fn urls_under_base_keep_its_path() {
        assert_eq!(story_guid(&base(), 42), "https://news.example/desk/stories/42");
        assert_eq!(feed_url(&base(), "top", Format::Atom), "https://news.example/desk/topics/top.atom");
        let root = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(story_guid(&root, 1), "http://127.0.0.1:8080/stories/1");
        assert_eq!(absolute_url("/relative"), None);
        assert_eq!(absolute_url("javascript:alert(1)"), None);
        assert_eq!(absolute_url("https://a.example/x").as_deref(), Some("https://a.example/x"));
    }

    #[test]
    fn entry_content_lists_other_outlets_and_is_clean() {
        let v = FeedView::new(&topic(), &[story(1, "Title", "<p>Body</p>"), hostile()], &base(), Format::Rss);
        let e = &v.entries[0];
        assert_eq!(e.id, "https://news.example/desk/stories/1");
        assert!(e.content_html.starts_with("<p>Body</p>"), "{}", e.content_html);
        assert!(e.content_html.contains("Also reported by: <a href=\"https://bbc.example/1\""), "{}", e.content_html);
        assert!(!e.content_html.contains("javascript"), "{}", e.content_html);
        assert_eq!(e.tags, vec!["Politics"]);
        assert_eq!(e.authors, vec!["Dawn"]);
        let h = &v.entries[1];
        assert!(h.title.chars().count() <= MAX_TITLE_CHARS + 1);
        assert!(!h.title.contains('\u{0}') && !h.title.contains('\u{1b}'));
        assert_eq!(h.link, "https://news.example/desk/stories/7", "no javascript: link");
        for bad in ["<script", "onclick", "onerror", "javascript:", "\u{0}", "\u{8}"] {
            assert!(!h.content_html.contains(bad), "{bad:?} in {}", h.content_html);
        }
        assert_eq!(h.authors, vec!["Mallory"]);
    }
}
