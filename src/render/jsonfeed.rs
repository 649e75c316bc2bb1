//! JSON Feed 1.1 as our own serde structs (the crates for it are unmaintained). Adds a
//! `_newsdesk` extension per item with the story id and every outlet, for `jq` users.

use serde::Serialize;

use super::{EntryView, FeedView};

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: &'a str,
    feed_url: &'a str,
    description: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub<'a>>,
    items: Vec<JsonItem<'a>>,
}

/// A WebSub hub (JSON Feed 1.1 `hubs`).
#[derive(Serialize)]
struct Hub<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    url: &'a str,
}

/// One JSON Feed item (also what webhook payloads carry, see `crate::push::webhook`).
#[derive(Serialize)]
pub(crate) struct JsonItem<'a> {
    id: &'a str,
    url: &'a str,
    title: &'a str,
    content_html: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_text: Option<&'a str>,
    date_published: String,
    date_modified: String,
    authors: Vec<Author<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
    #[serde(rename = "_newsdesk", skip_serializing_if = "Option::is_none")]
    newsdesk: Option<Extension<'a>>,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Extension<'a> {
    about: &'static str,
    outlets: Vec<OutletRef<'a>>,
}

#[derive(Serialize)]
struct OutletRef<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
}

/// The feed as a JSON Feed 1.1 document.
pub fn render(feed: &FeedView) -> Vec<u8> {
    let items = feed.entries.iter().map(item).collect();
    let doc = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: &feed.title,
        home_page_url: &feed.home_page_url,
        feed_url: &feed.feed_url,
        description: &feed.description,
        hubs: feed.hubs.iter().map(|h| Hub { kind: "WebSub", url: h }).collect(),
        items,
    };
    // Serialising plain strings into a Vec cannot fail.
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    bytes
}

/// The item for one entry, exactly as a topic's JSON Feed shows it.
pub(crate) fn item(e: &EntryView) -> JsonItem<'_> {
    JsonItem {
        id: &e.id,
        url: &e.link,
        title: &e.title,
        content_html: &e.content_html,
        content_text: e.content_text.as_deref(),
        date_published: e.published.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        date_modified: e.updated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        authors: e.authors.iter().map(|a| Author { name: a }).collect(),
        tags: e.tags.iter().map(String::as_str).collect(),
        // Digest and health entries (the ones with a text part) have no lead outlet of their own.
        newsdesk: e.content_text.is_none().then(|| Extension {
            about: "https://github.com/newsdesk/newsdesk#json-feed",
            outlets: std::iter::once(OutletRef { name: &e.outlet, url: Some(&e.link) })
                .chain(e.others.iter().map(|(name, url)| OutletRef { name, url: url.as_deref() }))
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{base, hostile, story, topic};
    use super::super::{render as render_any, Format};

    #[test]
    fn json_feed_has_the_required_fields() {
        let stories = vec![story(1, "Talks", "<p>Body</p>"), hostile()];
        let bytes = render_any(Format::Json, &topic(), &stories, &base(), &[]);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["version"], "https://jsonfeed.org/version/1.1");
        assert_eq!(v["feed_url"], "https://news.example/desk/topics/top.json");
        assert_eq!(v["home_page_url"], "https://news.example/desk/");
        let it = &v["items"][0];
        assert_eq!(it["id"], "https://news.example/desk/stories/1");
        assert_eq!(it["url"], "https://dawn.example/news/1");
        assert_eq!(it["date_published"], "2025-06-15T15:06:40Z");
        assert_eq!(it["date_modified"], "2025-06-15T15:21:40Z");
        assert_eq!(it["authors"][0]["name"], "Dawn");
        assert_eq!(it["tags"][0], "Politics");
        assert_eq!(it["_newsdesk"]["outlets"][1]["name"], "BBC");
        let feed = feed_rs::parser::parse(&bytes[..]).unwrap();
        assert_eq!(feed.entries[1].id, "https://news.example/desk/stories/7");
        assert!(!v["items"][1]["content_html"].as_str().unwrap().contains("<script"));
    }
}
