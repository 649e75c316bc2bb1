//! Digests: one period's stories as email-ready HTML and a plain-text part ([`email`]), and a
//! topic's stored digests as a feed ([`render`], one entry per period, newest first).
//!
//! Mail clients drop `<style>` blocks and classes and block remote content, so the HTML is
//! one table of simple blocks with every element styled inline, no `src=` of any kind (no
//! images, fonts or scripts) and only absolute http(s) links. Upstream text is cleaned with
//! [`page_text`] (controls and bidi overrides dropped, length bounded) and escaped; summaries
//! are plain text cut at a sentence ([`summary_text`], as the pages show them).

use url::Url;

use super::html::{page_text, summary_text, SUMMARY_CHARS};
use super::{absolute_url, clean_text, escape_html, story_guid, time, under, EntryView, FeedView, Format};
use crate::config::TopicConfig;
use crate::digest::Digest;
use crate::normalize::text::MAX_TITLE_CHARS;
use crate::select::StoryView;

const FONT: &str = "font-family:Arial,Helvetica,sans-serif";
const LINK: &str = "color:#1a56b0;text-decoration:underline";
const MUTED: &str = "color:#5f6368;font-size:13px;line-height:1.4";

/// The HTML and plain-text parts of a digest titled `title` (already clean text).
pub fn email(title: &str, stories: &[StoryView], base_url: &Url) -> (String, String) {
    let mut h = String::new();
    let mut t = String::new();
    h.push_str(&format!(
        "<div style=\"{FONT};font-size:15px;line-height:1.5;color:#202124;max-width:640px;margin:0 auto;padding:0\">"
    ));
    h.push_str(&format!(
        "<h1 style=\"{FONT};font-size:22px;line-height:1.3;font-weight:bold;color:#202124;margin:0 0 16px 0\">{}</h1>",
        escape_html(title)
    ));
    t.push_str(title);
    t.push_str("\n\n");
    h.push_str(
        "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" \
         style=\"width:100%;border-collapse:collapse;border-spacing:0\">",
    );
    for (n, s) in stories.iter().enumerate() {
        let full = story_guid(base_url, s.id);
        let lead = s.lead.link.as_deref().and_then(absolute_url).unwrap_or_else(|| full.clone());
        let mut headline = page_text(&s.lead.title, MAX_TITLE_CHARS);
        if headline.is_empty() {
            headline = "(untitled)".into();
        }
        let outlet = s.outlets.first().map(|o| page_text(&o.name, 100)).unwrap_or_default();
        let summary = s
            .lead
            .summary
            .as_deref()
            .or(s.lead.content.as_deref())
            .map(|x| summary_text(x, SUMMARY_CHARS))
            .filter(|x| !x.is_empty());
        let others: Vec<(String, Option<String>)> =
            s.others().iter().map(|o| (page_text(&o.name, 100), o.link.as_deref().and_then(absolute_url))).collect();

        h.push_str("<tr style=\"vertical-align:top\">");
        h.push_str(&format!("<td style=\"{FONT};padding:14px 0;border-top:1px solid #dadce0;vertical-align:top\">"));
        h.push_str(&format!(
            "<p dir=\"auto\" style=\"{FONT};font-size:18px;line-height:1.3;font-weight:bold;margin:0 0 4px 0\">\
             <a href=\"{}\" style=\"{LINK};color:#1a56b0\">{}</a></p>",
            escape_html(&lead),
            escape_html(&headline)
        ));
        if !outlet.is_empty() {
            h.push_str(&format!(
                "<p dir=\"auto\" style=\"{FONT};{MUTED};margin:0 0 6px 0\">{}</p>",
                escape_html(&outlet)
            ));
        }
        if let Some(sum) = &summary {
            h.push_str(&format!(
                "<p dir=\"auto\" style=\"{FONT};font-size:15px;line-height:1.5;color:#202124;margin:0 0 6px 0\">{}</p>",
                escape_html(sum)
            ));
        }
        h.push_str(&format!("<p style=\"{FONT};{MUTED};margin:0\">"));
        if !others.is_empty() {
            h.push_str("Also: ");
            for (i, (name, link)) in others.iter().enumerate() {
                if i > 0 {
                    h.push_str(", ");
                }
                match link {
                    Some(l) => h.push_str(&format!(
                        "<a dir=\"auto\" href=\"{}\" style=\"{LINK}\">{}</a>",
                        escape_html(l),
                        escape_html(name)
                    )),
                    None => h.push_str(&format!("<span dir=\"auto\" style=\"{MUTED}\">{}</span>", escape_html(name))),
                }
            }
            h.push_str(" · ");
        }
        h.push_str(&format!(
            "<a href=\"{}\" style=\"{LINK};font-weight:bold\">Full coverage</a></p>",
            escape_html(&full)
        ));
        h.push_str("</td></tr>");

        t.push_str(&format!("{}. {headline}\n", n + 1));
        if outlet.is_empty() {
            t.push_str(&format!("   {lead}\n"));
        } else {
            t.push_str(&format!("   {outlet}: {lead}\n"));
        }
        if let Some(sum) = &summary {
            t.push_str(&format!("   {sum}\n"));
        }
        if !others.is_empty() {
            let list: Vec<String> = others
                .iter()
                .map(|(name, link)| match link {
                    Some(l) => format!("{name} <{l}>"),
                    None => name.clone(),
                })
                .collect();
            t.push_str(&format!("   Also: {}\n", list.join(", ")));
        }
        t.push_str(&format!("   Full coverage: {full}\n\n"));
    }
    h.push_str("</table></div>");
    (h, t)
}

/// Where `topic`'s digest is served in `format`.
pub fn feed_url(base_url: &Url, topic_id: &str, format: Format) -> String {
    under(base_url, &format!("topics/{topic_id}/digest.{}", format.ext()))
}

/// `topic`'s stored digests (newest first) as a feed in `format`.
pub fn render(format: Format, topic: &TopicConfig, digests: &[Digest], base_url: &Url, hubs: &[String]) -> Vec<u8> {
    let mut feed = view(topic, digests, base_url, format);
    // Our hub and `[websub] hubs` are told when a digest is stored (see `crate::serve`).
    feed.hubs = hubs.to_vec();
    match format {
        Format::Rss => super::rss::render(&feed),
        Format::Atom => super::atom::render(&feed),
        Format::Json => super::jsonfeed::render(&feed),
    }
}

fn view(topic: &TopicConfig, digests: &[Digest], base_url: &Url, format: Format) -> FeedView {
    let page = under(base_url, &format!("topics/{}", topic.id));
    let entries: Vec<EntryView> = digests
        .iter()
        .map(|d| {
            // One link per entry (some readers merge entries by link): the topic's page,
            // marked with the period.
            let day = d.guid.rsplit('/').next().unwrap_or_default();
            EntryView {
                id: d.guid.clone(),
                title: clean_text(&d.title, 300),
                link: format!("{page}#digest-{day}"),
                content_html: d.html.clone(),
                content_text: Some(d.text.clone()),
                published: time(d.published_at),
                updated: time(d.published_at),
                authors: vec!["newsdesk".into()],
                tags: Vec::new(),
                outlet: String::new(),
                outlet_feed: None,
                others: Vec::new(),
            }
        })
        .collect();
    let updated = entries.iter().map(|e| e.updated).max().unwrap_or_default();
    let title = clean_text(&topic.title, 200);
    FeedView {
        description: format!("{title}: the top stories of each period, from newsdesk"),
        title: format!("{title} digest"),
        home_page_url: page,
        feed_url: feed_url(base_url, &topic.id, format),
        id: under(base_url, &format!("topics/{}/digest", topic.id)),
        updated,
        entries,
        hubs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{base, hostile, story};
    use super::*;

    /// Every start tag of `html` with its attribute names.
    fn tags(html: &str) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for part in html.split('<').skip(1) {
            let Some((inner, _)) = part.split_once('>') else { panic!("unclosed tag in {html}") };
            if inner.starts_with('/') {
                continue;
            }
            let mut words = inner.split_whitespace();
            let name = words.next().unwrap_or_default().to_string();
            let attrs = inner
                .match_indices("=\"")
                .map(|(i, _)| inner[..i].rsplit([' ', '"']).next().unwrap_or_default().to_string())
                .collect();
            out.push((name, attrs));
        }
        out
    }

    #[test]
    fn email_html_is_inline_styled_and_loads_nothing() {
        let (html, text) = email(
            "Top News: 6 December 2026",
            &[story(1, "Talks", "<p>Body. More.</p>"), story(2, "Second", "<p>x</p>")],
            &base(),
        );
        for bad in ["<script", "src=", "<link", "<style", "class=", "url(", "<img"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        for (name, attrs) in tags(&html) {
            assert!(attrs.contains(&"style".to_string()), "<{name}> without style in {html}");
            for a in &attrs {
                assert!(
                    ["style", "href", "dir", "role", "width", "cellpadding", "cellspacing", "border"]
                        .contains(&a.as_str()),
                    "{a} on <{name}>"
                );
            }
        }
        assert!(html.contains("<a href=\"https://dawn.example/news/1\""), "{html}");
        assert!(html.contains("href=\"https://news.example/desk/stories/1\""), "full coverage link: {html}");
        assert!(html.contains("href=\"https://bbc.example/1\""), "other outlets: {html}");
        assert!(!html.contains("javascript"), "{html}");
        assert!(
            text.starts_with("Top News: 6 December 2026\n\n1. Talks\n   Dawn: https://dawn.example/news/1\n"),
            "{text}"
        );
        assert!(text.contains("Full coverage: https://news.example/desk/stories/2"), "{text}");
    }

    #[test]
    fn a_hostile_item_renders_inert() {
        let mut h = hostile();
        h.lead.title.push_str(" \u{202E}reversed <img src=x onerror=alert(1)>");
        h.outlets[0].name = "Evil \u{202E}Outlet<script>".into();
        let (html, text) = email("T", &[h], &base());
        for (name, attrs) in tags(&html) {
            assert!(["div", "h1", "table", "tr", "td", "p", "a", "span"].contains(&name.as_str()), "<{name}>");
            for a in &attrs {
                assert!(
                    ["style", "href", "dir", "role", "width", "cellpadding", "cellspacing", "border"]
                        .contains(&a.as_str()),
                    "{a} on <{name}>"
                );
            }
        }
        for bad in ["<script", "<img", "javascript:", "\u{0}", "\u{1b}", "\u{202E}", "\u{8}"] {
            assert!(!html.contains(bad), "{bad:?} in html");
        }
        // The text part is plain text (markup there is only characters), but no controls.
        for bad in ["javascript:", "\u{0}", "\u{1b}", "\u{202E}", "\u{8}"] {
            assert!(!text.contains(bad), "{bad:?} in text");
        }
        assert!(html.len() < 20_000, "the 1 MB title is cut: {}", html.len());
        assert!(
            html.contains("href=\"https://news.example/desk/stories/7\""),
            "a javascript: lead links the story page"
        );
    }
}
