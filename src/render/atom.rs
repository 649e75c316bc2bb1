//! Atom 1.0 through `atom_syndication`: entry id = the story GUID, `published` = first seen,
//! `updated` = last change, HTML content, the lead outlet as `<source>`.

use atom_syndication::{Category, Content, Entry, Feed, Generator, Link, Person, Source, Text};

use super::FeedView;

/// The feed as an Atom 1.0 document.
pub fn render(feed: &FeedView) -> Vec<u8> {
    let utc = |d: chrono::DateTime<chrono::Utc>| d.fixed_offset();
    let entries: Vec<Entry> = feed
        .entries
        .iter()
        .map(|e| Entry {
            title: Text::plain(e.title.clone()),
            id: e.id.clone(),
            updated: utc(e.updated),
            published: Some(utc(e.published)),
            authors: e.authors.iter().map(|a| Person { name: a.clone(), ..Default::default() }).collect(),
            categories: e.tags.iter().map(|t| Category { term: t.clone(), ..Default::default() }).collect(),
            links: vec![Link { href: e.link.clone(), rel: "alternate".into(), ..Default::default() }],
            content: Some(Content {
                value: Some(e.content_html.clone()),
                content_type: Some("html".into()),
                ..Default::default()
            }),
            source: e.outlet_feed.as_ref().map(|url| Source {
                title: Text::plain(e.outlet.clone()),
                id: url.clone(),
                updated: utc(e.updated),
                links: vec![Link { href: url.clone(), rel: "self".into(), ..Default::default() }],
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let doc = Feed {
        title: Text::plain(feed.title.clone()),
        id: feed.id.clone(),
        updated: utc(feed.updated),
        subtitle: Some(Text::plain(feed.description.clone())),
        generator: Some(Generator { value: "newsdesk".into(), version: Some(crate::VERSION.into()), uri: None }),
        links: [
            Link {
                href: feed.feed_url.clone(),
                rel: "self".into(),
                mime_type: Some("application/atom+xml".into()),
                ..Default::default()
            },
            Link {
                href: feed.home_page_url.clone(),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                ..Default::default()
            },
        ]
        .into_iter()
        .chain(feed.hubs.iter().map(|h| Link { href: h.clone(), rel: "hub".into(), ..Default::default() }))
        .collect(),
        entries,
        ..Default::default()
    };
    // See rss.rs: a writer error would be a bug; never serve half a document.
    match doc.write_to(Vec::new()) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            bytes
        }
        Err(e) => {
            tracing::error!("rendering Atom for {}: {e}", feed.feed_url);
            Feed { entries: Vec::new(), ..doc }.write_to(Vec::new()).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{base, hostile, story, topic};
    use super::super::{render as render_any, Format};

    #[test]
    fn atom_is_well_formed_and_parses_back() {
        let stories = vec![story(1, "Talks in Islamabad", "<p>Body</p>"), hostile()];
        let bytes = render_any(Format::Atom, &topic(), &stories, &base(), &[]);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("<id>https://news.example/desk/stories/1</id>"), "{}", &text[..600]);
        assert!(text.contains("rel=\"self\""));
        assert!(text.contains("<published>2025-06-15T15:06:40+00:00</published>"), "{}", &text[..1200]);
        let feed = feed_rs::parser::parse(&bytes[..]).unwrap();
        assert_eq!(feed.entries.len(), 2);
        assert_eq!(feed.entries[0].id, "https://news.example/desk/stories/1");
        assert_eq!(feed.entries[0].links[0].href, "https://dawn.example/news/1");
        let body = feed.entries[1].content.as_ref().and_then(|c| c.body.clone()).unwrap();
        assert!(!body.contains("<script") && !body.contains("onerror") && !body.contains("javascript:"), "{body}");
    }
}
