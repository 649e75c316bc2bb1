//! RSS 2.0 through the `rss` crate (which declares the namespaces it uses and escapes text):
//! `atom:link rel="self"`, a permanent-looking but non-permalink GUID per story, and
//! `<source url>` naming the lead item's outlet.

use rss::extension::atom::{AtomExtension, Link};
use rss::{Category, Channel, Guid, Item, Source};

use super::FeedView;

/// The feed as an RSS 2.0 document.
pub fn render(feed: &FeedView) -> Vec<u8> {
    let items: Vec<Item> = feed
        .entries
        .iter()
        .map(|e| Item {
            title: Some(e.title.clone()),
            link: Some(e.link.clone()),
            description: Some(e.content_html.clone()),
            // RSS `author` must be an e-mail address; names go in dc:creator instead.
            dublin_core_ext: Some(rss::extension::dublincore::DublinCoreExtension {
                creators: e.authors.clone(),
                ..Default::default()
            }),
            categories: e.tags.iter().map(|t| Category { name: t.clone(), domain: None }).collect(),
            // Not a permalink: the URI identifies the story, readers should link to `link`.
            guid: Some(Guid { value: e.id.clone(), permalink: false }),
            pub_date: Some(e.published.to_rfc2822()),
            source: e.outlet_feed.as_ref().map(|url| Source { url: url.clone(), title: Some(e.outlet.clone()) }),
            ..Default::default()
        })
        .collect();
    let channel = Channel {
        title: feed.title.clone(),
        link: feed.home_page_url.clone(),
        description: feed.description.clone(),
        generator: Some(format!("newsdesk {}", crate::VERSION)),
        last_build_date: Some(feed.updated.to_rfc2822()),
        ttl: Some("15".into()),
        atom_ext: Some(AtomExtension {
            links: std::iter::once(Link {
                href: feed.feed_url.clone(),
                rel: "self".into(),
                mime_type: Some("application/rss+xml".into()),
                ..Default::default()
            })
            .chain(feed.hubs.iter().map(|h| Link { href: h.clone(), rel: "hub".into(), ..Default::default() }))
            .collect(),
        }),
        items,
        ..Default::default()
    };
    // Writing to a Vec cannot fail for I/O reasons, and every string was cleaned of characters
    // XML cannot hold; an error here would be a bug in the writer, so fall back to a valid
    // empty channel rather than serve a broken document.
    match channel.write_to(Vec::new()) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            bytes
        }
        Err(e) => {
            tracing::error!("rendering RSS for {}: {e}", feed.feed_url);
            let empty = Channel { items: Vec::new(), ..channel };
            empty.write_to(Vec::new()).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{base, hostile, story, topic};
    use super::super::{render as render_any, Format};

    #[test]
    fn rss_is_well_formed_and_parses_back() {
        let stories = vec![story(1, "Talks in Islamabad", "<p>Body</p>"), story(2, "Second", "<p>x</p>"), hostile()];
        let bytes = render_any(Format::Rss, &topic(), &stories, &base(), &[]);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("xmlns:atom=\"http://www.w3.org/2005/Atom\""), "{}", &text[..400]);
        assert!(text.contains("<atom:link href=\"https://news.example/desk/topics/top.rss\" rel=\"self\""));
        assert!(text.contains("<guid isPermaLink=\"false\">https://news.example/desk/stories/1</guid>"));
        assert!(text.contains("<source url=\"https://dawn.example/feed\">Dawn</source>"));
        assert!(text.contains("<title>Top &lt;News&gt; &amp; more</title>"));
        let feed = feed_rs::parser::parse(&bytes[..]).unwrap();
        assert_eq!(feed.entries.len(), 3);
        assert_eq!(feed.entries[0].title.as_ref().unwrap().content, "Talks in Islamabad");
        assert_eq!(feed.entries[0].id, "https://news.example/desk/stories/1");
        assert_eq!(feed.entries[0].links[0].href, "https://dawn.example/news/1");
        let evil = feed.entries[2].summary.as_ref().unwrap().content.clone();
        assert!(!evil.contains("<script") && !evil.contains("onerror"), "{evil}");
        // Deterministic: the same stories give the same bytes (stable ETags).
        assert_eq!(bytes, render_any(Format::Rss, &topic(), &stories, &base(), &[]));
        assert!(!text.contains("rel=\"hub\""));
    }

    #[test]
    fn every_format_names_its_hubs_and_self() {
        let hubs = ["https://hub.example/".to_string(), "https://news.example/desk/websub".to_string()];
        let stories = vec![story(1, "Talks", "<p>Body</p>")];
        for f in Format::ALL {
            let bytes = render_any(f, &topic(), &stories, &base(), &hubs);
            let text = String::from_utf8(bytes.clone()).unwrap();
            let own = format!("https://news.example/desk/topics/top.{}", f.ext());
            if f == Format::Json {
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(v["hubs"][0]["type"], "WebSub");
                assert_eq!(v["hubs"][1]["url"], hubs[1].as_str());
                assert_eq!(v["feed_url"], own.as_str());
            } else {
                let tag = if f == Format::Rss { "atom:link" } else { "link" };
                for h in &hubs {
                    assert!(text.contains(&format!("<{tag} href=\"{h}\" rel=\"hub\"/>")), "{text}");
                }
                assert!(text.contains(&format!("<{tag} href=\"{own}\" rel=\"self\"")), "{text}");
            }
            assert_eq!(feed_rs::parser::parse(&bytes[..]).unwrap().entries.len(), 1);
        }
    }
}
