//! OPML: sources to and from the outline format every feed reader exports.
//!
//! Import never touches the user's config: it turns an OPML file into `[[source]]` blocks to
//! append to `feeds.toml`, skipping feeds and ids the config already has. Export lists every
//! configured source (the current URL after permanent redirects), with tags as `category`.

use std::collections::{HashMap, HashSet};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::config::Config;
use crate::normalize::html::strip_xml_forbidden;
use crate::store::queries::SourceInfo;

/// One feed found in an OPML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpmlFeed {
    /// `xmlUrl`.
    pub url: String,
    /// `title`, else `text`.
    pub title: Option<String>,
    /// Tags: the enclosing folders and the `category` attribute, as slugs.
    pub tags: Vec<String>,
}

/// An OPML file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a readable OPML file at byte {position}: {message}")]
pub struct OpmlError {
    /// Byte offset of the problem.
    pub position: u64,
    /// What the XML reader said.
    pub message: String,
}

/// Every feed outline (one with an `xmlUrl`) in document order.
pub fn parse(text: &str) -> Result<Vec<OpmlFeed>, OpmlError> {
    let mut reader = Reader::from_str(text);
    let mut folders: Vec<Option<String>> = Vec::new();
    let mut feeds = Vec::new();
    loop {
        let event =
            reader.read_event().map_err(|e| OpmlError { position: reader.error_position(), message: e.to_string() })?;
        match event {
            Event::Start(e) if e.local_name().as_ref() == "outline" => {
                let o = outline(&e);
                // An outline with children is a folder, unless it is itself a feed.
                if let Some(f) = feed(&o, &folders) {
                    feeds.push(f);
                    folders.push(None);
                } else {
                    folders.push(o.get("text").or(o.get("title")).cloned());
                }
            }
            Event::Empty(e) if e.local_name().as_ref() == "outline" => {
                if let Some(f) = feed(&outline(&e), &folders) {
                    feeds.push(f);
                }
            }
            Event::End(e) if e.local_name().as_ref() == "outline" => {
                folders.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(feeds)
}

fn outline(e: &BytesStart) -> HashMap<String, String> {
    e.attributes()
        .flatten()
        .filter_map(|a| {
            let key = a.key.local_name().as_ref().to_string();
            let value = a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok()?.trim().to_string();
            Some((key, value))
        })
        .collect()
}

fn feed(o: &HashMap<String, String>, folders: &[Option<String>]) -> Option<OpmlFeed> {
    let url = o.iter().find(|(k, _)| k.eq_ignore_ascii_case("xmlUrl")).map(|(_, v)| v.clone())?;
    if url.is_empty() {
        return None;
    }
    let mut tags: Vec<String> = Vec::new();
    let cats = o.get("category").map(String::as_str).unwrap_or("");
    for t in folders.iter().flatten().map(String::as_str).chain(cats.split([',', '/'])) {
        let t = slug(t);
        if !t.is_empty() && !tags.contains(&t) {
            tags.push(t);
        }
    }
    let title = o.get("title").or(o.get("text")).filter(|t| !t.is_empty()).cloned();
    Some(OpmlFeed { url, title, tags })
}

/// A config id from free text: lowercase ASCII letters and digits, other runs become `-`.
pub fn slug(s: &str) -> String {
    let folded = crate::select::fold(s);
    let mut out = String::new();
    for c in folded.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    out.chars().take(40).collect::<String>().trim_end_matches('-').to_string()
}

/// `[[source]]` TOML blocks for `feeds`, skipping URLs `existing` already has and choosing
/// ids it does not use. Returns the text and how many feeds were skipped.
pub fn to_toml(feeds: &[OpmlFeed], existing: Option<&Config>) -> (String, usize) {
    let mut ids: HashSet<String> =
        existing.map(|c| c.sources.iter().map(|s| s.id.clone()).collect()).unwrap_or_default();
    let mut urls: HashSet<String> =
        existing.map(|c| c.sources.iter().map(|s| s.url.to_string()).collect()).unwrap_or_default();
    let mut out = String::new();
    let mut skipped = 0;
    for f in feeds {
        let url = match crate::config::parse_source_url(&f.url) {
            Ok(u) => u.to_string(),
            Err(e) => {
                out.push_str(&format!("# skipped: {}\n\n", e.replace('\n', " ")));
                skipped += 1;
                continue;
            }
        };
        if !urls.insert(url.clone()) {
            skipped += 1;
            continue;
        }
        let base = f
            .title
            .as_deref()
            .map(slug)
            .filter(|s| !s.is_empty())
            .or_else(|| url::Url::parse(&url).ok().and_then(|u| u.host_str().map(slug)))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "feed".to_string());
        let mut id = base.clone();
        let mut n = 2;
        while ids.contains(&id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        ids.insert(id.clone());
        out.push_str("[[source]]\n");
        out.push_str(&format!("id = {}\n", toml_string(&id)));
        out.push_str(&format!("url = {}\n", toml_string(&url)));
        if let Some(t) = &f.title {
            out.push_str(&format!("title = {}\n", toml_string(&strip_xml_forbidden(t))));
        }
        if !f.tags.is_empty() {
            let tags: Vec<String> = f.tags.iter().map(|t| toml_string(t)).collect();
            out.push_str(&format!("tags = [{}]\n", tags.join(", ")));
        }
        out.push('\n');
    }
    (out, skipped)
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Every configured source as OPML 2.0. `stored` (by id) supplies the current URL, the feed's
/// own title and its home page when known.
pub fn export(config: &Config, stored: &HashMap<String, SourceInfo>) -> String {
    let esc = |s: &str| quick_xml::escape::escape(strip_xml_forbidden(s)).to_string();
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<opml version=\"2.0\">\n<head>\n<title>newsdesk sources</title>\n</head>\n<body>\n",
    );
    for s in &config.sources {
        let info = stored.get(&s.id);
        let url = info.map(|i| i.url.clone()).unwrap_or_else(|| s.url.to_string());
        let title = s.title.clone().or_else(|| info.map(|i| i.name.clone())).unwrap_or_else(|| s.id.clone());
        out.push_str(&format!(
            "<outline type=\"rss\" text=\"{}\" title=\"{}\" xmlUrl=\"{}\"",
            esc(&title),
            esc(&title),
            esc(&url)
        ));
        if let Some(home) = info.and_then(|i| i.home_page.as_deref()).and_then(crate::render::absolute_url) {
            out.push_str(&format!(" htmlUrl=\"{}\"", esc(&home)));
        }
        if !s.tags.is_empty() {
            out.push_str(&format!(" category=\"{}\"", esc(&s.tags.join(","))));
        }
        out.push_str("/>\n");
    }
    out.push_str("</body>\n</opml>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0"?>
<opml version="1.0"><head><title>My feeds</title></head><body>
  <outline text="South Asia">
    <outline type="rss" text="Dawn &amp; Co" xmlUrl="https://dawn.example/feed"/>
    <outline type="rss" text="Asian Lite" title="Asian Lite News" xmlUrl="https://asianlite.example/feed/" category="Politics,/World/Asia"/>
  </outline>
  <outline type="rss" text="Dawn again" xmlUrl="https://dawn.example/feed"/>
  <outline type="rss" text="Bad" xmlUrl="ftp://x.example/feed"/>
  <outline text="no url"/>
</body></opml>"#;

    #[test]
    fn import_folders_become_tags_and_ids_are_unique() {
        let feeds = parse(SAMPLE).unwrap();
        assert_eq!(feeds.len(), 4);
        assert_eq!(feeds[0].title.as_deref(), Some("Dawn & Co"));
        assert_eq!(feeds[0].tags, vec!["south-asia"]);
        assert_eq!(feeds[1].tags, vec!["south-asia", "politics", "world", "asia"]);
        let existing = Config::parse(
            std::path::Path::new("f.toml"),
            "[[source]]\nid = \"asian-lite-news\"\nurl = \"https://other.example/\"",
        )
        .unwrap();
        let (toml_text, skipped) = to_toml(&feeds, Some(&existing));
        assert_eq!(skipped, 2, "the repeated URL and the ftp one:\n{toml_text}");
        assert!(toml_text.contains("id = \"dawn-co\"\nurl = \"https://dawn.example/feed\"\ntitle = \"Dawn & Co\""));
        assert!(toml_text.contains("id = \"asian-lite-news-2\""), "{toml_text}");
        // What import prints is a valid config once appended.
        let full = format!("[[source]]\nid = \"asian-lite-news\"\nurl = \"https://other.example/\"\n{toml_text}");
        let c = Config::parse(std::path::Path::new("f.toml"), &full).unwrap_or_else(|e| panic!("{e}\n{full}"));
        assert_eq!(c.sources.len(), 3);
    }

    #[test]
    fn export_round_trips() {
        let c = Config::parse(
            std::path::Path::new("f.toml"),
            "[[source]]\nid = \"a\"\nurl = \"https://a.example/feed?x=1&y=2\"\ntitle = \"A \\\"quoted\\\" <name>\"\ntags = [\"south-asia\", \"top\"]",
        )
        .unwrap();
        let xml = export(&c, &HashMap::new());
        assert!(xml.contains("xmlUrl=\"https://a.example/feed?x=1&amp;y=2\""), "{xml}");
        let back = parse(&xml).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].url, "https://a.example/feed?x=1&y=2");
        assert_eq!(back[0].title.as_deref(), Some("A \"quoted\" <name>"));
        assert_eq!(back[0].tags, vec!["south-asia", "top"]);
        assert!(parse("<opml><body><outline").is_err() || parse("<opml><body><outline").unwrap().is_empty());
    }
}
