//! Plain text: titles and other short fields with markup stripped, entities decoded, Unicode
//! NFKC-normalised, control characters removed and whitespace folded.

use unicode_normalization::UnicodeNormalization;

/// Titles longer than this (in characters) are cut, so a hostile 1 MB title cannot bloat
/// every output feed.
pub const MAX_TITLE_CHARS: usize = 500;

/// Converts a possibly-HTML fragment into clean plain text.
pub fn plain_text(input: &str) -> String {
    let decoded;
    let s = if input.contains('<') || input.contains('&') {
        decoded = strip_markup(input);
        decoded.as_str()
    } else {
        input
    };
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.nfkc() {
        if c.is_whitespace() || c.is_control() {
            // Controls become separators rather than vanishing, so words never glue together.
            space = !out.is_empty();
            continue;
        }
        if is_invisible(c) {
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    out
}

/// A title: plain text, capped at [`MAX_TITLE_CHARS`].
pub fn title(input: &str) -> String {
    let mut t = plain_text(input);
    if let Some((cut, _)) = t.char_indices().nth(MAX_TITLE_CHARS) {
        t.truncate(cut);
        t.push('…');
    }
    t
}

/// Fast, approximate text of already-sanitised HTML, at most `max_chars` characters: tags
/// dropped, the common entities decoded. For clustering, where a full HTML parse per item
/// would cost more than the whole rest of ingest.
pub fn quick_text(html: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(max_chars.min(html.len()));
    // Whitespace runs collapse to one space as they come (no second pass over the text).
    let push = |out: &mut String, c: char| {
        if !c.is_whitespace() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    };
    let mut in_tag = false;
    let mut count = 0;
    let mut chars = html.chars();
    while let Some(c) = chars.next() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                push(&mut out, ' ');
            }
            _ if in_tag => {}
            '&' => {
                let rest = chars.as_str();
                let (rep, skip) =
                    [("amp;", '&'), ("lt;", '<'), ("gt;", '>'), ("quot;", '"'), ("#39;", '\''), ("nbsp;", ' ')]
                        .iter()
                        .find(|(e, _)| rest.starts_with(e))
                        .map(|(e, ch)| (*ch, e.len()))
                        .unwrap_or(('&', 0));
                push(&mut out, rep);
                chars = rest[skip..].chars();
                count += 1;
            }
            c => {
                push(&mut out, c);
                count += 1;
            }
        }
        if count >= max_chars {
            break;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}')
}

/// Removes tags (and the contents of script/style) and decodes every HTML entity, using the
/// same HTML5 parser that sanitises content, so `&amp;eacute;`-style double escaping and
/// named entities behave exactly as in a browser.
fn strip_markup(input: &str) -> String {
    let escaped = ammonia::Builder::empty().clean(input).to_string();
    // ammonia re-serialises text, escaping only these.
    escaped
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    /// The two-pass version `quick_text` replaced (collapse whitespace afterwards).
    fn quick_text_two_pass(html: &str, max_chars: usize) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        let mut count = 0;
        let mut chars = html.chars();
        while let Some(c) = chars.next() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => {
                    in_tag = false;
                    if !out.ends_with(' ') {
                        out.push(' ');
                    }
                }
                _ if in_tag => {}
                '&' => {
                    let rest = chars.as_str();
                    let (rep, skip) =
                        [("amp;", '&'), ("lt;", '<'), ("gt;", '>'), ("quot;", '"'), ("#39;", '\''), ("nbsp;", ' ')]
                            .iter()
                            .find(|(e, _)| rest.starts_with(e))
                            .map(|(e, ch)| (*ch, e.len()))
                            .unwrap_or(('&', 0));
                    out.push(rep);
                    chars = rest[skip..].chars();
                    count += 1;
                }
                c => {
                    out.push(c);
                    count += 1;
                }
            }
            if count >= max_chars {
                break;
            }
        }
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    proptest::proptest! {
        #[test]
        fn quick_text_matches_two_pass(
            html in "([ \t\n\u{a0}\u{2003}]|<p>|</a>|<b class=\"x\">|&amp;|&nbsp;|&lt;|&#39;|&|a|é|Z|>){0,60}",
            max in 0usize..80,
        ) {
            proptest::prop_assert_eq!(quick_text(&html, max), quick_text_two_pass(&html, max));
        }
    }

    use super::*;

    #[test]
    fn cleans_titles() {
        assert_eq!(plain_text("  Lavrov\n visits\tPakistan "), "Lavrov visits Pakistan");
        assert_eq!(plain_text("Tom &amp; Jerry &eacute;t&#233; &lt;b&gt;"), "Tom & Jerry été <b>");
        assert_eq!(plain_text("<b>Bold</b> <script>alert(1)</script>claim"), "Bold claim");
        assert_eq!(plain_text("ﬁrst\u{0007}bell\u{200B}"), "first bell");
        assert_eq!(plain_text("A < B"), "A < B");
        assert_eq!(quick_text("<p>Tom &amp; <b>Jerry</b></p><p>next</p>", 100), "Tom & Jerry next");
        let long = "x".repeat(2_000_000);
        assert_eq!(title(&long).chars().count(), MAX_TITLE_CHARS + 1);
    }
}
