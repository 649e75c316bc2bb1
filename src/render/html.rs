//! The HTML index page: every topic with subscribe links in every format (plus feed
//! autodiscovery `<link>`s), and every source with its health. Served at `/` and written as
//! `index.html` by `newsdesk export`; links are relative, so both work under any prefix.

use crate::config::Config;
use crate::store::sources::SourceState;

use super::{clean_text, escape_html, Format};

/// The index page. `sources` is the stored state of each source (`None`: health unknown);
/// `now` is unix seconds, for "5m ago".
pub fn index(config: &Config, sources: Option<&[SourceState]>, now: i64) -> String {
    let e = |s: &str| escape_html(&clean_text(s, 300));
    let mut h = String::with_capacity(4096);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>newsdesk</title>\n");
    for t in &config.topics {
        for f in Format::ALL {
            let mime = match f {
                Format::Rss => "application/rss+xml",
                Format::Atom => "application/atom+xml",
                Format::Json => "application/feed+json",
            };
            h.push_str(&format!(
                "<link rel=\"alternate\" type=\"{mime}\" title=\"{} ({})\" href=\"topics/{}.{}\">\n",
                e(&t.title),
                f.label(),
                e(&t.id),
                f.ext()
            ));
        }
    }
    h.push_str(
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}\
         table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:left;border-bottom:1px solid #ddd}\
         .ok{color:#070}.error,.retired{color:#a00}</style>\n</head>\n<body>\n<h1>newsdesk</h1>\n<h2>Topics</h2>\n",
    );
    if config.topics.is_empty() {
        h.push_str("<p>No topics configured: add a <code>[[topic]]</code> to feeds.toml.</p>\n");
    } else {
        h.push_str("<ul>\n");
        for t in &config.topics {
            let links: Vec<String> = Format::ALL
                .iter()
                .map(|f| format!("<a href=\"topics/{}.{}\">{}</a>", e(&t.id), f.ext(), f.label()))
                .collect();
            h.push_str(&format!("<li><strong>{}</strong> ({}): {}</li>\n", e(&t.title), e(&t.id), links.join(" · ")));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<p><a href=\"sources.opml\">All sources as OPML</a></p>\n<h2>Sources</h2>\n");
    h.push_str("<table>\n<tr><th>Source</th><th>Status</th><th>Items</th><th>Last poll</th><th>Error</th></tr>\n");
    for s in &config.sources {
        let st = sources.and_then(|all| all.iter().find(|x| x.id == s.id));
        let name = s.title.clone().or_else(|| st.and_then(|x| x.feed_title.clone())).unwrap_or_else(|| s.id.clone());
        let status = st.map(|x| x.status.as_str()).unwrap_or("unknown");
        let status = if status.is_empty() { "new" } else { status };
        h.push_str(&format!(
            "<tr><td><a href=\"{}\">{}</a></td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            e(st.map(|x| x.url.as_str()).unwrap_or(s.url.as_str())),
            e(&name),
            e(status),
            e(status),
            st.map(|x| x.items.to_string()).unwrap_or_default(),
            st.and_then(|x| x.last_poll).map(|t| ago(now - t)).unwrap_or_else(|| "never".into()),
            e(&st.and_then(|x| x.last_error.clone().or(x.retired_reason.clone())).unwrap_or_default()),
        ));
    }
    h.push_str("</table>\n</body>\n</html>\n");
    h
}

fn ago(secs: i64) -> String {
    match secs.max(0) {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_escapes_and_links_every_format() {
        let c = Config::parse(
            std::path::Path::new("f.toml"),
            "[[source]]\nid = \"a\"\nurl = \"https://a.example/feed\"\ntitle = \"A <b>&</b>\"\n\
             [[topic]]\nid = \"top\"\ntitle = \"Top <News>\"",
        )
        .unwrap();
        let st = SourceState {
            id: "a".into(),
            url: "https://a.example/feed".into(),
            status: "error".into(),
            last_error: Some("<script>x</script>".into()),
            last_poll: Some(100),
            items: 3,
            ..SourceState::default()
        };
        let h = index(&c, Some(&[st]), 400);
        for f in ["topics/top.rss", "topics/top.atom", "topics/top.json"] {
            assert!(h.contains(&format!("href=\"{f}\"")), "{f} missing");
        }
        assert!(h.contains("Top &lt;News&gt;"));
        assert!(!h.contains("<script>"));
        assert!(h.contains("class=\"error\">error</td><td>3</td><td>5m ago</td>"), "{h}");
    }
}
