//! HTML sanitising for republishing: what an outlet sends is untrusted markup.
//!
//! Allowed: ammonia's conservative default tag set, links and images with http(s)/mailto URLs
//! made absolute against the item's link. Removed: script, style, iframe, object, forms, event
//! handler attributes, `style`, `javascript:` and `data:` URLs.

use ammonia::{Builder, UrlRelative};
use std::collections::HashSet;
use url::Url;

/// A sanitiser bound to one base URL (relative links are resolved against it).
pub struct Sanitizer {
    builder: Builder<'static>,
}

impl Sanitizer {
    /// A sanitiser that resolves relative URLs against `base`.
    pub fn new(base: Option<&Url>) -> Sanitizer {
        let mut builder = Builder::default();
        builder
            .url_schemes(HashSet::from(["http", "https", "mailto"]))
            .link_rel(Some("noopener noreferrer"))
            .strip_comments(true);
        let mut s = Sanitizer { builder };
        s.rebase(base);
        s
    }

    /// Resolves relative URLs against `base` from now on (one sanitiser serves a whole feed,
    /// item by item: building ammonia's rule sets cost as much as cleaning a short item).
    pub fn rebase(&mut self, base: Option<&Url>) {
        match base {
            Some(b) if matches!(b.scheme(), "http" | "https") => {
                self.builder.url_relative(UrlRelative::RewriteWithBase(b.clone()));
            }
            _ => {
                self.builder.url_relative(UrlRelative::Deny);
            }
        }
    }

    /// Sanitises one fragment; returns `None` when nothing visible is left.
    pub fn clean(&self, html: &str) -> Option<String> {
        if html.trim().is_empty() {
            return None;
        }
        let out = self.builder.clean(html).to_string();
        let out = strip_xml_forbidden(out.trim());
        if out.is_empty() {
            None
        } else {
            Some(out)
        }
    }
}

/// Removes characters XML 1.0 forbids (C0 controls other than tab/CR/LF, U+FFFE/U+FFFF),
/// so stored text can always be republished as well-formed XML.
pub fn strip_xml_forbidden(s: &str) -> String {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r') || !(c < '\u{20}' || c == '\u{FFFE}' || c == '\u{FFFF}');
    // Nearly all text has none: one scan and one copy instead of a char-by-char rebuild.
    // (U+FFFE/U+FFFF are EF BF BE/BF in UTF-8, so a text without byte 0xEF has neither.)
    if s.bytes().all(|b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r')) && !s.as_bytes().contains(&0xEF) {
        return s.to_string();
    }
    s.chars().filter(|&c| allowed(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_markup_is_removed() {
        let base = Url::parse("https://example.com/news/a.html").unwrap();
        let s = Sanitizer::new(Some(&base));
        let dirty = r#"<p onclick="x()">Hi <script>alert(1)</script><style>p{}</style>
            <a href="javascript:alert(1)">j</a> <a href="/b.html">rel</a>
            <img src="data:image/png;base64,AAAA" onerror="x()"><iframe src="https://evil"></iframe>
            <img src="pic.jpg"></p>"#;
        let clean = s.clean(dirty).unwrap();
        for bad in ["script", "style", "onclick", "onerror", "javascript:", "data:", "iframe", "alert"] {
            assert!(!clean.contains(bad), "{bad} survived in {clean}");
        }
        assert!(clean.contains(r#"href="https://example.com/b.html""#), "{clean}");
        assert!(clean.contains(r#"src="https://example.com/news/pic.jpg""#), "{clean}");
        assert_eq!(s.clean("  "), None);
        assert_eq!(strip_xml_forbidden("a\u{0}b\u{1b}c\td"), "abc\td");
        assert_eq!(strip_xml_forbidden("ok\u{FFFF}\u{FFFE}…\r\n"), "ok…\r\n");
        assert_eq!(strip_xml_forbidden("plain text\n"), "plain text\n");
    }
}
