//! Parse: feed bytes -> [`crate::model::Feed`] (RSS 0.9x/1.0/2.0, Atom, JSON Feed via feed-rs).
//!
//! On top of feed-rs: the charset from `Content-Type` is honoured when the document does not
//! declare one; invalid UTF-8 is repaired rather than losing the feed; dates are parsed
//! leniently ([`date`]); an item without GUID keeps `guid = None` (feed-rs would invent a
//! random one); links are made absolute; titles become plain text and HTML is sanitised
//! ([`crate::normalize`]); a per-feed item cap bounds the work one document can cause.

pub mod date;

use std::hash::Hasher;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use siphasher::sip::SipHasher13;
use url::Url;

use crate::model::{Feed, Item};
use crate::normalize::{html::Sanitizer, text, url::canonicalize};

/// Why a document could not be read as a feed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// The body was empty (or only whitespace).
    #[error("empty response body")]
    Empty,
    /// The body is an HTML page, not a feed.
    #[error("not a feed: got an HTML page{}", .alternate.as_ref().map(|a| format!(" (it names a feed at {a})")).unwrap_or_default())]
    NotAFeed {
        /// The `<link rel="alternate">` feed URL the page advertises, if any.
        alternate: Option<String>,
    },
    /// The body is not a readable feed.
    #[error("malformed feed: {0}")]
    Malformed(String),
}

/// Fixed keys: stored content hashes must not change between Rust releases.
const HASH_KEYS: (u64, u64) = (0x6e65_7773_6465_736b, 0x6974_656d_6861_7368);

/// Stable 64-bit hash of some strings (length-prefixed so field boundaries count).
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h = SipHasher13::new_with_keys(HASH_KEYS.0, HASH_KEYS.1);
    for p in parts {
        h.write_u64(p.len() as u64);
        h.write(p.as_bytes());
    }
    h.finish()
}

/// Parses one fetched document. `base` is the URL it was fetched from; `now` is the poll time.
pub fn parse_feed(
    body: &[u8],
    content_type: Option<&str>,
    base: &Url,
    max_items: usize,
    now: DateTime<Utc>,
) -> Result<Feed, ParseError> {
    if trim_ascii_start(body).is_empty() {
        return Err(ParseError::Empty);
    }
    let text = to_utf8(body, content_type);
    let xml = text.trim_start_matches('\u{FEFF}').trim_start().starts_with('<');
    let prepared = if xml { prepare_xml(&text) } else { text.clone() };
    let (prepared, cut) = match cut_entries_over_cap(&prepared, xml, max_items) {
        Some((shorter, cut)) => (std::borrow::Cow::Owned(shorter), cut),
        None => (prepared, 0),
    };
    let parsed = match run_feed_rs(prepared.as_bytes(), base) {
        Ok(f) => f,
        Err(first) => {
            if looks_like_html(prepared.as_bytes()) {
                return Err(ParseError::NotAFeed { alternate: alternate_feed_link(prepared.as_bytes(), base) });
            }
            // Publishers' commonest XML errors: bare `&` and HTML entities XML does not
            // know (`&nbsp;`). Repair those and try once more before giving up.
            let repaired = if xml { repair_entities(&prepared) } else { repair_json(&prepared) };
            match repaired {
                Some(r) => run_feed_rs(r.as_bytes(), base).map_err(|_| ParseError::Malformed(first))?,
                None => return Err(ParseError::Malformed(first)),
            }
        }
    };
    let mut feed = convert(parsed, base, max_items, now);
    feed.items_dropped += cut;
    // One scan of the document for both elements.
    if xml
        && memchr::memmem::find_iter(prepared.as_bytes(), b"<skip")
            .any(|i| prepared[i..].starts_with("<skipHours") || prepared[i..].starts_with("<skipDays"))
    {
        feed.skip = skip_rules(&prepared);
    }
    Ok(feed)
}

/// Cuts the entries past `max_items` out of the document before feed-rs reads it, and says
/// how many it cut. feed-rs builds every entry of a document (about 700 bytes each, even
/// empty), so a cap applied afterwards let 10 MB of `<item/>` cost a gigabyte. `None` when
/// there is nothing to cut. The entries kept are the first ones, as feed-rs would list them.
fn cut_entries_over_cap(doc: &str, xml: bool, max_items: usize) -> Option<(String, usize)> {
    if max_items == 0 {
        return None;
    }
    let cuts = if xml { xml_entries_over_cap(doc, max_items) } else { json_items_over_cap(doc, max_items) };
    if cuts.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(doc.len());
    let mut at = 0;
    let mut cut = 0;
    for (range, entries) in cuts {
        out.push_str(doc.get(at..range.start)?);
        at = range.end;
        cut += entries;
    }
    out.push_str(doc.get(at..)?);
    Some((out, cut))
}

/// Byte ranges of the RSS `<item>`s / Atom `<entry>`s past the first `max_items` (one entry
/// each). Entries are the outermost `item`/`entry` elements with the name and depth of the
/// first one. A document quick-xml cannot read is cut only up to the error: feed-rs, which
/// reads with the same quick-xml, will fail there anyway.
fn xml_entries_over_cap(doc: &str, max_items: usize) -> Vec<(std::ops::Range<usize>, usize)> {
    use quick_xml::events::Event;
    // Cheap test first: no more tags that could be entries than the cap, nothing to do.
    let count = |needle: &[u8]| memchr::memmem::find_iter(doc.as_bytes(), needle).count();
    let candidates = count(b"item") + count(b"entry");
    if candidates <= max_items {
        return Vec::new();
    }
    let is_entry = |local: &str| local == "item" || local == "entry";
    let mut reader = quick_xml::Reader::from_str(doc);
    let mut cuts: Vec<(std::ops::Range<usize>, usize)> = Vec::new();
    // Consecutive entries (only whitespace between) make one cut: a few ranges, not millions.
    let mut push = |range: std::ops::Range<usize>| match cuts.last_mut() {
        Some((last, n)) if doc.get(last.end..range.start).is_some_and(|gap| gap.trim().is_empty()) => {
            last.end = range.end;
            *n += 1;
        }
        _ => cuts.push((range, 1)),
    };
    let mut depth = 0usize;
    let mut kind: Option<(String, usize)> = None;
    let mut open: Option<(usize, usize)> = None; // (depth, start) of the entry being read
    let mut seen = 0usize;
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = match reader.read_event() {
            Ok(Event::Eof) | Err(_) => break,
            Ok(e) => e,
        };
        let after = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(e) | Event::Empty(e) if open.is_none() && is_entry(e.local_name().as_ref()) => {
                let name = e.name().as_ref().to_string();
                let first = kind.get_or_insert_with(|| (name.clone(), depth));
                if first.0 == name && first.1 == depth {
                    seen += 1;
                    if empty {
                        if seen > max_items {
                            push(before..after);
                        }
                    } else {
                        open = Some((depth, before));
                    }
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if let Some((d, start)) = open {
                    if d == depth {
                        open = None;
                        if seen > max_items {
                            push(start..after);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    cuts
}

/// The byte range of the JSON Feed `items` past the first `max_items` (from the comma before
/// the first excess item to the closing `]`), with how many items it holds. A light scan of
/// the top-level object: strings (with escapes) and nesting are tracked, nothing is built.
fn json_items_over_cap(doc: &str, max_items: usize) -> Vec<(std::ops::Range<usize>, usize)> {
    if doc.matches('{').count() <= max_items {
        return Vec::new();
    }
    let b = doc.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    let mut last_key: (usize, usize) = (0, 0); // the last string closed at depth 1
    let mut items_depth: Option<usize> = None; // depth inside the `items` array
    let (mut commas, mut cut_from) = (0usize, None);
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if depth == 1 {
                    last_key = (start, i.min(b.len()));
                }
            }
            b'[' if depth == 1 && items_depth.is_none() && b.get(last_key.0..last_key.1) == Some(b"items") => {
                depth += 1;
                items_depth = Some(depth);
            }
            b'{' | b'[' => depth += 1,
            b']' if items_depth == Some(depth) => {
                return match cut_from {
                    Some(from) => vec![(from..i, commas + 1 - max_items)],
                    None => Vec::new(),
                };
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if items_depth == Some(depth) => {
                commas += 1;
                if commas == max_items {
                    cut_from = Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Vec::new()
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    &b[start..]
}

fn run_feed_rs(bytes: &[u8], base: &Url) -> Result<feed_rs::model::Feed, String> {
    feed_rs::parser::Builder::new()
        .base_uri(Some(base.as_str()))
        .sanitize_content(false)
        .timestamp_parser(date::parse_date)
        // An empty id marks "no GUID": feed-rs would otherwise invent one, random when the
        // item has no link, which would make the item new on every poll.
        .id_generator(|_, _, _| String::new())
        .build()
        .parse(bytes)
        .map_err(|e| match e {
            feed_rs::parser::ParseFeedError::ParseError(feed_rs::parser::ParseErrorKind::NoFeedRoot) => {
                "no RSS, Atom, RDF or JSON Feed root element".to_string()
            }
            e => e.to_string(),
        })
}

/// Decodes the document to UTF-8 ourselves: a BOM wins, then UTF-16 detected from the first
/// bytes, then the XML prolog's `encoding`, then the HTTP charset, then UTF-8. Invalid bytes
/// become U+FFFD rather than costing the whole feed. (Handing non-UTF-8 input to quick-xml
/// can panic it, e.g. on UTF-16 documents, so it only ever sees UTF-8.)
fn to_utf8<'a>(body: &'a [u8], content_type: Option<&str>) -> std::borrow::Cow<'a, str> {
    use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};
    let encoding = if let Some((enc, _)) = Encoding::for_bom(body) {
        enc
    } else if body.starts_with(&[0, b'<', 0]) {
        UTF_16BE
    } else if body.starts_with(&[b'<', 0, b'?', 0])
        || body.starts_with(&[b'<', 0, b'r', 0])
        || body.starts_with(&[b'<', 0, b'f', 0])
    {
        UTF_16LE
    } else {
        prolog_encoding(body)
            .or_else(|| http_charset(content_type))
            .map(|e| if e == UTF_16LE || e == UTF_16BE { UTF_8 } else { e }) // ASCII-compatible bytes, so not UTF-16
            .unwrap_or(UTF_8)
    };
    let (text, _, _) = encoding.decode(body);
    text
}

fn prolog_encoding(body: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let head = &body[..body.len().min(256)];
    let head =
        std::str::from_utf8(head).unwrap_or_else(|e| std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""));
    let prolog = head.trim_start().strip_prefix("<?xml")?;
    let prolog = &prolog[..prolog.find("?>")?];
    let c = PROLOG_ENCODING.captures(prolog)?;
    encoding_rs::Encoding::for_label(c.get(1)?.as_str().as_bytes())
}

fn http_charset(content_type: Option<&str>) -> Option<&'static encoding_rs::Encoding> {
    let charset = content_type?
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())?;
    encoding_rs::Encoding::for_label(charset.as_bytes())
}

static PROLOG_ENCODING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\sencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']"#).unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});
/// How far into a document the root element is looked for.
const ROOT_SEARCH: usize = 16 * 1024;
static ROOT_RSS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?s)^(?:\s|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)*<rss(?-u:\b)([^>]*)>"#)
        .unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});
static RSS_VERSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\sversion\s*=\s*["']([^"']*)["']"#).unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});
static DEFAULT_XMLNS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\sxmlns\s*=\s*["'][^"']*["']"#).unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});
const NETSCAPE_RSS_090: &str = "http://my.netscape.com/rdf/simple/0.9/";
static ENTITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"&(?:([A-Za-z][A-Za-z0-9]{0,31});|#[0-9]{1,8};|#[xX][0-9A-Fa-f]{1,8};)?")
        .unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});

/// Makes UTF-8 text palatable to feed-rs: drops the BOM and the prolog's `encoding` (the text
/// is UTF-8 now), and gives `<rss>` without a version feed-rs knows (0.93, 0.94, 2.01,
/// missing) the RSS 2.0 reading, which is a superset of them all.
fn prepare_xml(text: &str) -> std::borrow::Cow<'_, str> {
    let mut s = text.trim_start_matches('\u{FEFF}').trim_start().to_string();
    // RSS 0.90 (Netscape's RDF namespace) is RSS 1.0 for every field we read. The namespace
    // is declared on the root element, so only the head is searched.
    let mut n = s.len().min(ROOT_SEARCH);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    if s[..n].contains(NETSCAPE_RSS_090) {
        s = s.replacen(NETSCAPE_RSS_090, "http://purl.org/rss/1.0/", 1);
    }
    if s.starts_with("<?xml") {
        if let Some(end) = s.find("?>") {
            let prolog = PROLOG_ENCODING.replace(&s[..end], "").into_owned();
            s.replace_range(..end, &prolog);
        }
    }
    // The root element is near the start: never scan a whole document for it.
    let head = |s: &str| {
        let mut n = s.len().min(ROOT_SEARCH);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        n
    };
    let h = head(&s);
    if let Some(c) = ROOT_RSS.captures(&s[..h]) {
        if let Some(attrs) = c.get(1) {
            // RSS has no namespace; a default xmlns on <rss> (userland, harvard) hides every
            // element from feed-rs.
            if let Some(ns) = DEFAULT_XMLNS.find(attrs.as_str()) {
                let range = attrs.start() + ns.start()..attrs.start() + ns.end();
                s.replace_range(range, "");
            }
        }
    }
    let h = head(&s);
    if let Some(c) = ROOT_RSS.captures(&s[..h]) {
        if let Some(attrs) = c.get(1) {
            let version = RSS_VERSION.captures(attrs.as_str()).and_then(|v| v.get(1)).map(|v| v.as_str().to_string());
            if !matches!(version.as_deref(), Some("2.0" | "0.91" | "0.92" | "")) {
                let fixed = format!(" version=\"2.0\"{}", RSS_VERSION.replace(attrs.as_str(), ""));
                let range = attrs.range();
                s.replace_range(range, &fixed);
            }
        }
        // `<rss>` with items but no `<channel>` (seen in old feeds): feed-rs needs the channel.
        if !s.contains("<channel") {
            let h = head(&s);
            if let (Some(open_end), Some(close)) = (ROOT_RSS.find(&s[..h]).map(|m| m.end()), s.rfind("</rss")) {
                if close >= open_end {
                    s.insert_str(close, "</channel>");
                    s.insert_str(open_end, "<channel>");
                }
            }
        }
    }
    std::borrow::Cow::Owned(s)
}

static SKIP_HOURS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<skipHours>(.*?)</skipHours>").unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});
static SKIP_DAYS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<skipDays>(.*?)</skipDays>").unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});
static SKIP_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<(?:hour|day)>\s*([^<]*?)\s*</(?:hour|day)>")
        .unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});

/// RSS `<skipHours>` / `<skipDays>` (feed-rs does not read them). Hours are GMT per the
/// spec; 24 is read as 0, as some publishers write it.
fn skip_rules(doc: &str) -> crate::schedule::Skip {
    let mut skip = crate::schedule::Skip::default();
    if let Some(c) = SKIP_HOURS.captures(doc).and_then(|c| c.get(1)) {
        for v in SKIP_VALUE.captures_iter(c.as_str()).filter_map(|v| v.get(1)?.as_str().parse::<u32>().ok()) {
            if v <= 24 {
                skip.hours |= 1 << (v % 24);
            }
        }
    }
    if let Some(c) = SKIP_DAYS.captures(doc).and_then(|c| c.get(1)) {
        for v in SKIP_VALUE.captures_iter(c.as_str()).filter_map(|v| v.get(1)) {
            let day = match v.as_str().to_ascii_lowercase().get(..3) {
                Some("mon") => 0,
                Some("tue") => 1,
                Some("wed") => 2,
                Some("thu") => 3,
                Some("fri") => 4,
                Some("sat") => 5,
                Some("sun") => 6,
                _ => continue,
            };
            skip.days |= 1 << day;
        }
    }
    skip
}

/// JSON Feed as found in the wild: `http://` version URLs, a missing `version`, `tags` as one
/// comma-separated string. Returns `None` when there was nothing to repair.
fn repair_json(text: &str) -> Option<String> {
    let mut v: serde_json::Value = serde_json::from_str(text).ok()?;
    let obj = v.as_object_mut()?;
    obj.get("items")?;
    let version = obj.get("version").and_then(|v| v.as_str()).unwrap_or("").replace("http://", "https://");
    let version = if version.starts_with("https://jsonfeed.org/version/") {
        version
    } else {
        "https://jsonfeed.org/version/1.1".into()
    };
    obj.insert("version".into(), serde_json::Value::String(version));
    if let Some(items) = obj.get_mut("items").and_then(|i| i.as_array_mut()) {
        for item in items.iter_mut().filter_map(|i| i.as_object_mut()) {
            if let Some(tags) = item.get("tags").and_then(|t| t.as_str()).map(str::to_string) {
                let list = tags.split(',').map(|t| serde_json::Value::String(t.trim().to_string())).collect();
                item.insert("tags".into(), serde_json::Value::Array(list));
            }
        }
    }
    serde_json::to_string(&v).ok()
}

/// Escapes bare `&` and turns HTML named entities XML does not define into character
/// references. Returns `None` when there was nothing to repair.
fn repair_entities(text: &str) -> Option<String> {
    let mut changed = false;
    let decoder = ammonia::Builder::empty();
    let out = ENTITY.replace_all(text, |c: &regex::Captures| {
        let whole = c.get(0).map(|m| m.as_str()).unwrap_or("&");
        match c.get(1).map(|m| m.as_str()) {
            _ if whole == "&" => {
                changed = true;
                "&amp;".to_string()
            }
            Some("amp" | "lt" | "gt" | "quot" | "apos") | None => whole.to_string(),
            Some(name) => {
                let decoded = decoder.clean(whole).to_string();
                let decoded = if decoded == "&nbsp;" { "\u{a0}".to_string() } else { decoded };
                if decoded == whole || decoded.starts_with('&') {
                    // Unknown entity: keep it visible as text instead of failing the feed.
                    changed = true;
                    format!("&amp;{name};")
                } else {
                    changed = true;
                    decoded.chars().map(|ch| format!("&#{};", ch as u32)).collect()
                }
            }
        }
    });
    changed.then(|| out.into_owned())
}

fn looks_like_html(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]).to_ascii_lowercase();
    head.contains("<html") || head.contains("<!doctype html") || head.contains("<head") || head.contains("<body")
}

static LINK_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<link\b[^>]*>").unwrap_or_else(|e| unreachable!("constant regex: {e}")));
static ATTR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?is)([a-z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))"#)
        .unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});

/// The feed an HTML page advertises with `<link rel="alternate" type="application/rss+xml">`.
pub fn alternate_feed_link(html: &[u8], base: &Url) -> Option<String> {
    let text = String::from_utf8_lossy(&html[..html.len().min(256 * 1024)]);
    for tag in LINK_TAG.find_iter(&text) {
        let mut rel = String::new();
        let mut kind = String::new();
        let mut href = None;
        for a in ATTR.captures_iter(tag.as_str()) {
            let v = a.get(2).or(a.get(3)).or(a.get(4)).map(|m| m.as_str()).unwrap_or("");
            match a.get(1).map(|m| m.as_str().to_ascii_lowercase()).as_deref() {
                Some("rel") => rel = v.to_ascii_lowercase(),
                Some("type") => kind = v.to_ascii_lowercase(),
                Some("href") => href = Some(v.to_string()),
                _ => {}
            }
        }
        let is_feed = kind.contains("rss") || kind.contains("atom") || kind.contains("feed+json");
        if rel.split_whitespace().any(|r| r == "alternate") && is_feed {
            if let Some(h) = href {
                return base.join(h.trim()).ok().map(String::from);
            }
        }
    }
    None
}

fn convert(f: feed_rs::model::Feed, base: &Url, max_items: usize, now: DateTime<Utc>) -> Feed {
    let home_page = f
        .links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .and_then(|l| base.join(&l.href).ok())
        .map(String::from);
    let total = f.entries.len();
    let mut sanitizer = Sanitizer::new(Some(base));
    // Dates this far ahead are junk (year 9999); the item gets its first-seen time instead.
    let horizon = now + chrono::Duration::days(2);
    let sane = |d: Option<DateTime<Utc>>| d.filter(|d| *d <= horizon);
    let items = f
        .entries
        .into_iter()
        .take(max_items)
        .map(|e| {
            let link = pick_link(&e.links).and_then(|href| base.join(href.trim()).ok());
            let raw_title = e.title.as_ref().map(|t| t.content.as_str()).unwrap_or("");
            let raw_summary = e.summary.as_ref().map(|t| t.content.as_str()).unwrap_or("");
            let raw_content = e.content.as_ref().and_then(|c| c.body.as_deref()).unwrap_or("");
            let link_str = link.as_ref().map(|u| u.as_str()).unwrap_or("");
            let content_hash = stable_hash(&[raw_title, link_str, raw_summary, raw_content]);
            match &link {
                Some(l) if l.scheme().starts_with("http") => sanitizer.rebase(Some(l)),
                _ => sanitizer.rebase(Some(base)),
            }
            let mut title = text::title(raw_title);
            if title.is_empty() {
                // A title-less item (allowed in RSS) gets the start of its text.
                title = text::title(&truncate_chars(&text::plain_text(raw_summary), 120));
            }
            let guid = Some(e.id.trim()).filter(|g| !g.is_empty()).map(text::plain_text);
            Item {
                guid: guid.filter(|g| !g.is_empty()),
                canonical_url: link.as_ref().and_then(|l| canonicalize(l.as_str())),
                link: link.map(String::from),
                title,
                summary_html: sanitizer.clean(raw_summary),
                content_html: sanitizer.clean(raw_content),
                published: sane(e.published.or(e.updated)),
                updated: sane(e.updated),
                authors: e
                    .authors
                    .iter()
                    .map(|p| text::plain_text(p.name.as_deref().unwrap_or_default()))
                    .filter(|n| !n.is_empty())
                    .collect(),
                categories: e
                    .categories
                    .iter()
                    .map(|c| text::plain_text(c.label.as_deref().unwrap_or(&c.term)))
                    .filter(|c| !c.is_empty())
                    .collect(),
                content_hash,
            }
        })
        .collect();
    Feed {
        title: f.title.map(|t| text::title(&t.content)).filter(|t| !t.is_empty()),
        home_page,
        ttl_minutes: f.ttl,
        skip: Default::default(),
        items,
        items_dropped: total.saturating_sub(max_items),
        past_retention: 0,
    }
}

fn truncate_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The article link among an entry's links: `alternate` (or no rel) first, HTML preferred.
fn pick_link(links: &[feed_rs::model::Link]) -> Option<&str> {
    links
        .iter()
        .find(|l| {
            l.rel.as_deref().is_none_or(|r| r == "alternate")
                && l.media_type.as_deref().is_none_or(|t| t.contains("html"))
        })
        .or_else(|| links.iter().find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate")))
        .or_else(|| links.first())
        .map(|l| l.href.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://news.example.com/feed/").unwrap()
    }

    #[test]
    fn rss_basics() {
        let xml = br#"<?xml version="1.0"?><rss version="2.0"><channel><title>T &amp; Co</title><link>https://news.example.com/</link>
          <item><title>One &lt;b&gt;bold&lt;/b&gt;</title><link>/a/1?utm_source=rss</link><description>&lt;p onclick="x"&gt;Hi&lt;/p&gt;</description>
          <pubDate>Sun, 10 Mar 2024 17:32:50 GMT</pubDate></item>
          <item><title>No guid no link</title><description>text</description><pubDate>Fri, 31 Dec 9999 23:59:59 GMT</pubDate></item>
          </channel></rss>"#;
        let f = parse_feed(xml, None, &base(), 100, Utc::now()).unwrap();
        assert_eq!(f.title.as_deref(), Some("T & Co"));
        assert!(f.skip.is_empty());
        assert_eq!(f.items.len(), 2);
        let a = &f.items[0];
        assert_eq!(a.title, "One bold");
        assert_eq!(a.link.as_deref(), Some("https://news.example.com/a/1?utm_source=rss"));
        assert_eq!(a.canonical_url.as_deref(), Some("news.example.com/a/1"));
        assert_eq!(a.summary_html.as_deref(), Some("<p>Hi</p>"));
        assert!(a.published.is_some());
        let b = &f.items[1];
        assert_eq!(b.guid, None);
        assert_eq!(b.published, None, "year 9999 is junk");
    }

    #[test]
    fn skip_hours_and_days() {
        let xml = b"<rss version=\"2.0\"><channel><title>x</title><skipHours><hour>0</hour><hour> 23 </hour><hour>24</hour></skipHours>\n<skipDays><day>Saturday</day><day>Sunday</day></skipDays></channel></rss>";
        let f = parse_feed(xml, None, &base(), 10, Utc::now()).unwrap();
        assert_eq!(f.skip.hours, 1 | (1 << 23));
        assert_eq!(f.skip.days, (1 << 5) | (1 << 6));
    }

    #[test]
    fn item_cap() {
        let mut xml = String::from("<rss version=\"2.0\"><channel><title>x</title>");
        for i in 0..50 {
            xml.push_str(&format!("<item><guid>{i}</guid><title>t{i}</title></item>"));
        }
        xml.push_str("</channel></rss>");
        let f = parse_feed(xml.as_bytes(), None, &base(), 10, Utc::now()).unwrap();
        assert_eq!((f.items.len(), f.items_dropped), (10, 40));
    }

    #[test]
    fn item_cap_applies_before_feed_rs_builds_entries() {
        // Entries past the cap are cut from the text, in every format; the first ones stay.
        let mut rss = String::from("<rss version=\"2.0\"><channel><title>x</title>");
        let mut atom = String::from("<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>x</title>");
        let mut rdf = String::from(
            "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://purl.org/rss/1.0/\"><channel><title>x</title></channel>",
        );
        let mut json = String::from("{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"x\",\"items\":[");
        for i in 0..50 {
            rss.push_str(&format!("<item><guid>{i}</guid><title>t{i}</title><category>item</category></item><item/>"));
            atom.push_str(&format!("<entry><id>{i}</id><title>t{i}</title></entry>"));
            rdf.push_str(&format!("<item rdf:about=\"https://x.example/{i}\"><title>t{i}</title><link>https://x.example/{i}</link></item>"));
            json.push_str(&format!(
                "{}{{\"id\":\"{i}\",\"title\":\"t{i} ]}} \\\" [\",\"tags\":[\"a\",\"b\"]}}",
                if i > 0 { "," } else { "" }
            ));
        }
        rss.push_str("<ttl>60</ttl></channel></rss>");
        atom.push_str("</feed>");
        rdf.push_str("</rdf:RDF>");
        json.push_str("],\"home_page_url\":\"https://x.example/\"}");
        for (name, doc, xml) in
            [("rss", &rss, true), ("atom", &atom, true), ("rdf", &rdf, true), ("json", &json, false)]
        {
            let (_, cut) = cut_entries_over_cap(doc, xml, 10).unwrap();
            assert_eq!(cut, if name == "rss" { 90 } else { 40 }, "{name}");
            let now = Utc::now();
            let f = parse_feed(doc.as_bytes(), None, &base(), 10, now).unwrap();
            // What the cap gave when feed-rs read the whole document.
            let uncut = convert(run_feed_rs(doc.as_bytes(), &base()).unwrap(), &base(), 10, now);
            assert_eq!(f.items, uncut.items, "{name}: the same first items");
            assert_eq!((f.items.len(), f.items_dropped), (10, uncut.items_dropped), "{name}");
            assert_eq!((f.title.as_deref(), f.ttl_minutes), (Some("x"), uncut.ttl_minutes), "{name}");
        }
        assert_eq!(parse_feed(rss.as_bytes(), None, &base(), 100, Utc::now()).unwrap().items.len(), 100);
        // Truncated anywhere (unterminated strings, tags, arrays): no panic, and never a cut
        // that leaves fewer than the cap.
        for doc in [&rss, &atom, &rdf, &json] {
            for end in (0..doc.len()).step_by(7).filter(|e| doc.is_char_boundary(*e)) {
                if let Some((shorter, cut)) = cut_entries_over_cap(&doc[..end], !doc.starts_with('{'), 3) {
                    assert!(cut > 0 && shorter.len() < end);
                }
            }
        }
        assert!(cut_entries_over_cap(&rss, true, 100).is_none());
        assert!(cut_entries_over_cap(&json, false, 50).is_none());
    }

    #[test]
    fn charset_from_header() {
        let (bytes, _, _) =
            encoding_rs::WINDOWS_1251.encode("<rss version=\"2.0\"><channel><title>Новости</title></channel></rss>");
        let f = parse_feed(&bytes, Some("application/rss+xml; charset=windows-1251"), &base(), 10, Utc::now()).unwrap();
        assert_eq!(f.title.as_deref(), Some("Новости"));
    }

    #[test]
    fn html_page_names_its_feed() {
        let page = br#"<!DOCTYPE html><html><head><link rel="alternate" type="application/rss+xml" href="/rss.xml"></head><body>hi</body></html>"#;
        let e = parse_feed(page, Some("text/html"), &base(), 10, Utc::now()).unwrap_err();
        assert_eq!(e, ParseError::NotAFeed { alternate: Some("https://news.example.com/rss.xml".into()) });
        assert!(e.to_string().contains("not a feed"));
        assert_eq!(parse_feed(b"  \n ", None, &base(), 10, Utc::now()).unwrap_err(), ParseError::Empty);
    }
}
