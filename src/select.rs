//! Select: which stories a topic publishes, and in what order.
//!
//! A story is in a topic when **any** of its items passes the topic's item filter:
//! - its source is selected (`sources` / `tags`; both empty = every source);
//! - any `include` keyword matches (none configured = everything matches);
//! - no `exclude` keyword matches.
//!
//! Keywords match over the title, the summary text and the categories. A word or phrase
//! matches on word boundaries, case- and accent-insensitively ("sao paulo" finds "São
//! Paulo"; "pak" does not find "Pakistan"); punctuation between words is ignored. A `/regex/`
//! runs as written (case-insensitive) over the same text.
//!
//! Then the story must have at least `min_outlets` **outlets**: the distinct hosts of its
//! items' links (without `www.`), falling back to the source id for an item without an
//! http(s) link. Two feeds of one publisher are one outlet; a syndicated near-duplicate copy
//! adds its own host and nothing more. Stories are ranked `latest` (newest activity first) or
//! `coverage` ([`coverage_score`] of outlets, copies and age), and cut to `limit`.
//!
//! The lead item (title and link of the entry) is chosen among the matching items: the one
//! from the source with the highest configured `weight`, the earliest among equals.

use std::collections::{HashMap, HashSet};

use regex::Regex;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use crate::config::{Config, Keyword, Rank, TopicConfig};
use crate::dedup::story::{coverage_score, StoryParams};
use crate::normalize::text::quick_text;
use crate::store::queries::{self, SourceInfo, StoryItem};

/// How much summary text keyword matching reads per item.
const MATCH_TEXT_CHARS: usize = 4000;

/// How much of an item's summary HTML is read to find its first [`MATCH_TEXT_CHARS`] of text:
/// markup rarely doubles the length of news text, so four times as much leaves room, and the
/// window's articles are not read whole on every rebuild.
const MATCH_HTML_CHARS: usize = 4 * MATCH_TEXT_CHARS;

/// One outlet that reported a story: its earliest item there.
#[derive(Debug, Clone, PartialEq)]
pub struct Outlet {
    /// What makes outlets distinct: the link's host, else `source:{id}`.
    pub key: String,
    /// Display name (the source's title).
    pub name: String,
    /// The source the item came from.
    pub source_id: String,
    /// The source's feed URL (for RSS `<source url>`).
    pub feed_url: Option<String>,
    /// This outlet's article.
    pub link: Option<String>,
}

/// One story as a topic publishes it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryView {
    /// Stable story id (the GUID is built from it).
    pub id: i64,
    /// When the story was first seen (its earliest item's time).
    pub first_seen: i64,
    /// Its latest item's time: what `window` and `latest` look at.
    pub last_seen: i64,
    /// Last change of anything in it (a new item or an edit).
    pub updated: i64,
    /// Ranking score (coverage score, or `last_seen` for `latest`).
    pub score: f64,
    /// The item whose title and link the entry shows.
    pub lead: StoryItem,
    /// Every outlet, the lead item's first, then in order of first report.
    pub outlets: Vec<Outlet>,
    /// Near-duplicate copies among the items.
    pub copies: usize,
    /// Items in the story.
    pub items: usize,
}

impl StoryView {
    /// The outlets other than the lead's ("Also reported by").
    pub fn others(&self) -> &[Outlet] {
        self.outlets.get(1..).unwrap_or(&[])
    }
}

/// The stories `topic` publishes at `now`, best first.
pub fn select(
    conn: &crate::store::db::Connection,
    config: &Config,
    topic: &TopicConfig,
    now: i64,
) -> crate::store::db::Result<Vec<StoryView>> {
    let since = now.saturating_sub(i64::try_from(topic.window.as_secs()).unwrap_or(i64::MAX));
    // Keyword filters read every item's text; otherwise only the published leads need theirs.
    let filter_text = !topic.include.is_empty() || !topic.exclude.is_empty();
    let items = queries::story_items_since(conn, since, filter_text.then_some(MATCH_HTML_CHARS))?;
    let sources = queries::source_info(conn)?;
    let mut stories = select_from(items, &sources, config, topic, now);
    // The window's items came without their (whole) text: read it for the few published.
    for s in &mut stories {
        s.lead.summary = queries::item_text(conn, s.lead.id)?;
    }
    Ok(stories)
}

/// The stories `topic` publishes over the fixed range `[start, end)` instead of its sliding
/// window: its own filter, `min_outlets` and rank (coverage decays as at `end`), at most
/// `limit`, built only from the items whose story time (the published time, never later
/// than ingest) falls in the range, so an item dated in a past period counts there.
pub fn select_range(
    conn: &crate::store::db::Connection,
    config: &Config,
    topic: &TopicConfig,
    start: i64,
    end: i64,
    limit: usize,
) -> crate::store::db::Result<Vec<StoryView>> {
    let filter_text = !topic.include.is_empty() || !topic.exclude.is_empty();
    let items = queries::story_items_between(conn, start, end, filter_text.then_some(MATCH_HTML_CHARS))?;
    let sources = queries::source_info(conn)?;
    let mut stories = assemble(items, &sources, config, topic, i64::MIN, end);
    stories.truncate(limit);
    for s in &mut stories {
        s.lead.summary = queries::item_text(conn, s.lead.id)?;
    }
    Ok(stories)
}

/// One story with every item it has, for its full-coverage page.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// The story as topics publish it (lead, outlets, times).
    pub story: StoryView,
    /// Every item, in time order (earliest first).
    pub items: Vec<StoryItem>,
    /// Display name of each source, by id.
    pub sources: HashMap<String, SourceInfo>,
}

impl Coverage {
    /// The outlet an item counts for (its first source, its link's host).
    pub fn outlet(&self, it: &StoryItem) -> Outlet {
        outlet_of(it, &self.sources)
    }
}

/// Story `id` with all its items, or `None` when no live story has that id (pass the id a
/// merged story resolves to: see [`crate::store::stories::resolve`]).
pub fn coverage(
    conn: &crate::store::db::Connection,
    config: &Config,
    id: i64,
    now: i64,
) -> crate::store::db::Result<Option<Coverage>> {
    let mut items = queries::items_of_story(conn, id, None)?;
    if items.is_empty() {
        return Ok(None);
    }
    items.sort_by_key(|i| (i.story_time, i.id));
    let sources = queries::source_info(conn)?;
    let everything = everything();
    let filter = TopicFilter::new(config, &everything);
    let weights: HashMap<&str, f64> = config.sources.iter().map(|s| (s.id.as_str(), s.weight)).collect();
    let Some(mut story) =
        build_story(items.clone(), &filter, &sources, &weights, i64::MIN, now, &StoryParams::default())
    else {
        return Ok(None);
    };
    story.lead.summary = queries::item_text(conn, story.lead.id)?;
    Ok(Some(Coverage { story, items, sources }))
}

/// The stories with these (live) ids as topics publish them, in the order given (search
/// results come newest match first); ids with no items are left out.
pub fn stories_by_id(
    conn: &crate::store::db::Connection,
    config: &Config,
    ids: &[i64],
    now: i64,
) -> crate::store::db::Result<Vec<StoryView>> {
    let sources = queries::source_info(conn)?;
    let everything = everything();
    let filter = TopicFilter::new(config, &everything);
    let weights: HashMap<&str, f64> = config.sources.iter().map(|s| (s.id.as_str(), s.weight)).collect();
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        let items = queries::items_of_story(conn, id, None)?;
        if let Some(mut s) = build_story(items, &filter, &sources, &weights, i64::MIN, now, &StoryParams::default()) {
            s.lead.summary = queries::item_text(conn, s.lead.id)?;
            out.push(s);
        }
    }
    Ok(out)
}

/// A topic that takes every story, newest first: what a story page and search results use
/// to choose leads and outlets the way topics do.
fn everything() -> TopicConfig {
    TopicConfig {
        id: String::new(),
        title: String::new(),
        rank: Rank::Latest,
        min_outlets: 1,
        window: std::time::Duration::from_secs(u32::MAX.into()),
        limit: usize::MAX,
        tags: Vec::new(),
        sources: Vec::new(),
        include: Vec::new(),
        exclude: Vec::new(),
        digest: None,
        digest_limit: 10,
    }
}

/// [`select`] over already loaded items (pure: the unit tests drive this).
pub fn select_from(
    items: Vec<StoryItem>,
    sources: &HashMap<String, SourceInfo>,
    config: &Config,
    topic: &TopicConfig,
    now: i64,
) -> Vec<StoryView> {
    let since = now.saturating_sub(i64::try_from(topic.window.as_secs()).unwrap_or(i64::MAX));
    let mut stories = assemble(items, sources, config, topic, since, now);
    stories.truncate(topic.limit);
    stories
}

/// Groups items into stories that pass `topic`'s filter and `min_outlets` with activity
/// since `since`, ranked best first (not cut to a limit).
fn assemble(
    items: Vec<StoryItem>,
    sources: &HashMap<String, SourceInfo>,
    config: &Config,
    topic: &TopicConfig,
    since: i64,
    now: i64,
) -> Vec<StoryView> {
    let filter = TopicFilter::new(config, topic);
    let weights: HashMap<&str, f64> = config.sources.iter().map(|s| (s.id.as_str(), s.weight)).collect();
    let mut by_story: HashMap<i64, Vec<StoryItem>> = HashMap::new();
    for it in items {
        by_story.entry(it.story_id).or_default().push(it);
    }
    let params = StoryParams::default();
    let mut stories: Vec<StoryView> = by_story
        .into_values()
        .filter_map(|items| build_story(items, &filter, sources, &weights, since, now, &params))
        .filter(|s| s.outlets.len() >= topic.min_outlets)
        .collect();
    rank(&mut stories);
    stories
}

/// Sorts best first: by score (which already follows the topic's [`Rank`]), then newest
/// activity, then highest id, so the order is total and stable from one render to the next.
pub fn rank(stories: &mut [StoryView]) {
    stories.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then_with(|| b.last_seen.cmp(&a.last_seen)).then_with(|| b.id.cmp(&a.id))
    });
}

/// Assembles one story from its items, or `None` when no item passes the filter or the
/// story had no activity since `since`.
fn build_story(
    mut items: Vec<StoryItem>,
    filter: &TopicFilter,
    sources: &HashMap<String, SourceInfo>,
    weights: &HashMap<&str, f64>,
    since: i64,
    now: i64,
    params: &StoryParams,
) -> Option<StoryView> {
    items.sort_by_key(|i| (i.story_time, i.id));
    let last_seen = items.iter().map(|i| i.story_time).max()?;
    if last_seen < since {
        return None;
    }
    let weight =
        |it: &StoryItem| it.sources.iter().filter_map(|s| weights.get(s.as_str())).copied().fold(f64::NAN, f64::max);
    // Earliest wins among equal weights: items are in time order and `max_by` keeps the last
    // of equals, so compare with the order reversed.
    let lead = items
        .iter()
        .filter(|it| filter.item_matches(it))
        .rev()
        .max_by(|a, b| {
            let (wa, wb) = (weight(a), weight(b));
            let (wa, wb) = (if wa.is_nan() { 1.0 } else { wa }, if wb.is_nan() { 1.0 } else { wb });
            wa.total_cmp(&wb)
        })?
        .clone();
    let mut outlets: Vec<Outlet> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let lead_outlet = outlet_of(&lead, sources);
    seen.insert(lead_outlet.key.clone());
    outlets.push(lead_outlet);
    for it in &items {
        let o = outlet_of(it, sources);
        if seen.insert(o.key.clone()) {
            outlets.push(o);
        }
    }
    let copies = items.iter().filter(|i| i.copy).count();
    let first_seen = items.iter().map(|i| i.story_time).min().unwrap_or(last_seen);
    // Edits count as changes, but a publisher's clock in the future must not pin a story.
    let updated = items.iter().map(|i| i.updated.min(now).max(i.story_time)).max().unwrap_or(last_seen);
    let score = match filter.topic.rank {
        Rank::Latest => last_seen as f64,
        Rank::Coverage => {
            let age_hours = (now - last_seen).max(0) as f64 / 3600.0;
            coverage_score(outlets.len(), copies, age_hours, params)
        }
    };
    Some(StoryView {
        id: lead.story_id,
        first_seen,
        last_seen,
        updated,
        score,
        lead,
        outlets,
        copies,
        items: items.len(),
    })
}

/// The outlet an item counts for.
pub fn outlet_of(it: &StoryItem, sources: &HashMap<String, SourceInfo>) -> Outlet {
    let source_id = it.sources.first().cloned().unwrap_or_default();
    let info = sources.get(&source_id);
    Outlet {
        key: crate::store::stories::outlet_key(it.link.as_deref(), &source_id),
        name: info.map(|s| s.name.clone()).unwrap_or_else(|| source_id.clone()),
        feed_url: info.map(|s| s.url.clone()).filter(|u| u.starts_with("http://") || u.starts_with("https://")),
        source_id,
        link: it.link.clone(),
    }
}

// ---------------------------------------------------------------- the item filter

/// A topic's item filter, compiled once per selection.
pub struct TopicFilter<'a> {
    topic: &'a TopicConfig,
    /// `None`: every source.
    sources: Option<HashSet<&'a str>>,
    include: Vec<Matcher<'a>>,
    exclude: Vec<Matcher<'a>>,
}

enum Matcher<'a> {
    /// Folded words that must appear consecutively.
    Words(Vec<String>),
    /// Folded text searched as a substring (scripts written without spaces between words).
    Substring(String),
    Regex(&'a Regex),
}

impl<'a> TopicFilter<'a> {
    /// Compiles `topic`'s filter; `config` resolves its tags to sources.
    pub fn new(config: &'a Config, topic: &'a TopicConfig) -> TopicFilter<'a> {
        let sources = if topic.sources.is_empty() && topic.tags.is_empty() {
            None
        } else {
            let mut set: HashSet<&str> = topic.sources.iter().map(String::as_str).collect();
            for s in &config.sources {
                if s.tags.iter().any(|t| topic.tags.contains(t)) {
                    set.insert(&s.id);
                }
            }
            Some(set)
        };
        TopicFilter {
            topic,
            sources,
            include: topic.include.iter().filter_map(Matcher::new).collect(),
            exclude: topic.exclude.iter().filter_map(Matcher::new).collect(),
        }
    }

    /// Whether one item passes: selected source, an include match, no exclude match.
    pub fn item_matches(&self, it: &StoryItem) -> bool {
        if let Some(set) = &self.sources {
            if !it.sources.iter().any(|s| set.contains(s.as_str())) {
                return false;
            }
        }
        if self.include.is_empty() && self.exclude.is_empty() {
            return true;
        }
        let text = ItemText::new(it);
        (self.include.is_empty() || self.include.iter().any(|m| m.matches(&text)))
            && !self.exclude.iter().any(|m| m.matches(&text))
    }
}

impl<'a> Matcher<'a> {
    fn new(k: &'a Keyword) -> Option<Matcher<'a>> {
        match k {
            Keyword::Regex(r) => Some(Matcher::Regex(r)),
            Keyword::Phrase(p) => {
                let folded = fold(p);
                if folded.chars().any(unspaced_script) {
                    let s: String = folded.split_whitespace().collect::<Vec<_>>().join(" ");
                    return (!s.is_empty()).then_some(Matcher::Substring(s));
                }
                let words: Vec<String> = words(&folded).map(str::to_string).collect();
                (!words.is_empty()).then_some(Matcher::Words(words))
            }
        }
    }

    fn matches(&self, t: &ItemText) -> bool {
        match self {
            Matcher::Regex(r) => t.raw.iter().any(|f| r.is_match(f)),
            Matcher::Substring(s) => t.folded.iter().any(|f| f.contains(s.as_str())),
            Matcher::Words(w) => t.folded.iter().zip(&t.words).any(|(f, tokens)| {
                tokens.windows(w.len()).any(|win| win.iter().zip(w).all(|(r, b)| &f[r.clone()] == b))
            }),
        }
    }
}

/// The text fields of one item that keywords look at, raw and folded. Fields stay separate
/// so a phrase never matches across the end of the title into the summary.
struct ItemText {
    raw: Vec<String>,
    folded: Vec<String>,
    /// Where the words of each folded field are, found once for every phrase.
    words: Vec<Vec<std::ops::Range<usize>>>,
}

impl ItemText {
    fn new(it: &StoryItem) -> ItemText {
        let mut raw = vec![it.title.clone()];
        if let Some(html) = it.summary.as_deref().or(it.content.as_deref()) {
            raw.push(quick_text(html, MATCH_TEXT_CHARS));
        }
        raw.extend(it.categories.iter().cloned());
        let folded: Vec<String> = raw.iter().map(|s| fold(s)).collect();
        let words = folded.iter().map(|f| word_ranges(f).collect()).collect();
        ItemText { raw, folded, words }
    }
}

/// Case- and accent-folds text: NFKD, combining marks dropped, lowercase.
///
/// Every ASCII character is a starter that nothing composes or reorders across, so ASCII
/// runs are only lowercased and just the runs between them go through NFKD: same result,
/// without decomposing the mostly-ASCII text of most news.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        let ascii = rest.bytes().position(|b| !b.is_ascii()).unwrap_or(rest.len());
        out.extend(rest[..ascii].chars().map(|c| c.to_ascii_lowercase()));
        rest = &rest[ascii..];
        let other = rest.find(|c: char| c.is_ascii()).unwrap_or(rest.len());
        out.extend(rest[..other].nfkd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase));
        rest = &rest[other..];
    }
    out
}

/// Words: maximal runs of letters and digits.
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

/// [`words`], as byte ranges of `s`.
fn word_ranges(s: &str) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let base = s.as_ptr() as usize;
    words(s).map(move |w| {
        let start = w.as_ptr() as usize - base;
        start..start + w.len()
    })
}

/// Scripts written without spaces between words, where word boundaries cannot be seen.
fn unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF      // Thai, Lao
        | 0x1000..=0x109F    // Myanmar
        | 0x1780..=0x17FF    // Khmer
        | 0x3040..=0x30FF    // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified
        | 0xF900..=0xFAFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    proptest::proptest! {
        #[test]
        fn run_wise_fold_matches_whole_text_fold(s in "([a-zA-Z ,.]|é|É|e\u{301}|\u{301}|\u{327}|ﬁ|Ⅻ|ß|İ|Σ|한|\u{1100}\u{1161}|日|\u{a0}){0,40}") {
            let whole: String = s.nfkd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect();
            proptest::prop_assert_eq!(fold(&s), whole);
        }
    }

    fn config(extra: &str) -> Config {
        let text = format!(
            "[[source]]\nid = \"dawn\"\nurl = \"https://dawn.example/feed\"\ntags = [\"south-asia\"]\nweight = 2.0\n\
             [[source]]\nid = \"bbc\"\nurl = \"https://bbc.example/feed\"\n\
             [[source]]\nid = \"bbc-asia\"\nurl = \"https://bbc.example/asia\"\ntags = [\"south-asia\"]\n\
             [[source]]\nid = \"agg\"\nurl = \"https://agg.example/feed\"\n{extra}"
        );
        Config::parse(Path::new("feeds.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn item(id: i64, story: i64, source: &str, link: &str, title: &str, t: i64) -> StoryItem {
        StoryItem {
            id,
            story_id: story,
            link: Some(link.into()),
            title: title.into(),
            summary: Some(format!("<p>{title} summary</p>")),
            published: t,
            updated: t,
            first_seen: t,
            story_time: t,
            sources: vec![source.into()],
            ..StoryItem::default()
        }
    }

    fn infos() -> HashMap<String, SourceInfo> {
        ["dawn", "bbc", "bbc-asia", "agg"]
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    SourceInfo {
                        id: id.to_string(),
                        name: id.to_uppercase(),
                        url: format!("https://{id}.example/feed"),
                        home_page: None,
                    },
                )
            })
            .collect()
    }

    const NOW: i64 = 1_750_000_000;

    fn ids(v: &[StoryView]) -> Vec<i64> {
        v.iter().map(|s| s.id).collect()
    }

    #[test]
    fn folding_and_word_boundaries() {
        assert_eq!(fold("São PAULO e\u{301} ﬁ Ⅻ"), "sao paulo e fi xii");
        assert_eq!(fold("São Paulo ÉCOLE ﬁne"), "sao paulo ecole fine");
        let c = config("[[topic]]\nid = \"t\"\ninclude = [\"sao paulo\", \"Imran Khan\"]\nexclude = [\"cricket\"]");
        let f = TopicFilter::new(&c, &c.topics[0]);
        let m = |title: &str| f.item_matches(&item(1, 1, "bbc", "https://bbc.example/1", title, NOW));
        assert!(m("Floods in São Paulo"));
        assert!(m("SAO-PAULO: floods"));
        assert!(!m("Saopaulo floods"), "not on word boundaries");
        assert!(m("Imran Khan's party rallies"));
        assert!(!m("Imran Khan at the cricket final"), "exclude wins");
        assert!(!m("Khan Imran"), "phrase order matters");
        // Categories count as text.
        let mut it = item(1, 1, "bbc", "https://bbc.example/1", "Floods", NOW);
        it.categories = vec!["São Paulo".into()];
        assert!(f.item_matches(&it));
    }

    #[test]
    fn keywords_match_the_first_4000_characters_of_summary_text() {
        let c = config("[[topic]]\nid = \"t\"\ninclude = [\"zanzibar\"]");
        let f = TopicFilter::new(&c, &c.topics[0]);
        let with_word_after = |chars: usize| {
            let mut it = item(1, 1, "bbc", "https://bbc.example/1", "Floods", NOW);
            // Markup around the text does not count towards the limit.
            let filler = "<b>word</b> ".repeat(chars / 5);
            it.summary = Some(format!("<p>{filler}Zanzibar</p>"));
            f.item_matches(&it)
        };
        assert!(with_word_after(3_000), "inside the first 4,000 characters of text");
        assert!(!with_word_after(5_000), "past them: long articles are not read whole on every rebuild");
    }

    #[test]
    fn regex_and_unspaced_scripts() {
        let c = config("[[topic]]\nid = \"t\"\ninclude = [\"/\\\\bpak(istan)?i?\\\\b/\", \"北京\"]");
        let f = TopicFilter::new(&c, &c.topics[0]);
        let m = |title: &str| f.item_matches(&item(1, 1, "bbc", "https://bbc.example/1", title, NOW));
        assert!(m("Pakistani markets rally"));
        assert!(m("PAK v IND"));
        assert!(!m("Pakora recipes"));
        assert!(m("北京大学发布新报告"));
    }

    #[test]
    fn source_and_tag_filters() {
        let c = config("[[topic]]\nid = \"t\"\ntags = [\"south-asia\"]\n[[topic]]\nid = \"u\"\nsources = [\"agg\"]");
        let f = TopicFilter::new(&c, &c.topics[0]);
        assert!(f.item_matches(&item(1, 1, "dawn", "https://dawn.example/1", "x", NOW)));
        assert!(f.item_matches(&item(1, 1, "bbc-asia", "https://bbc.example/1", "x", NOW)));
        assert!(!f.item_matches(&item(1, 1, "bbc", "https://bbc.example/1", "x", NOW)));
        let g = TopicFilter::new(&c, &c.topics[1]);
        assert!(g.item_matches(&item(1, 1, "agg", "https://x.example/1", "x", NOW)));
        assert!(!g.item_matches(&item(1, 1, "dawn", "https://dawn.example/1", "x", NOW)));
    }

    #[test]
    fn outlets_are_hosts_and_min_outlets_counts_them() {
        let c = config("[[topic]]\nid = \"t\"\nmin_outlets = 2");
        let items = vec![
            // Story 1: two BBC feeds, one host: one outlet.
            item(1, 1, "bbc", "https://www.bbc.example/a", "Quake hits", NOW - 100),
            item(2, 1, "bbc-asia", "https://bbc.example/b", "Quake hits region", NOW - 50),
            // Story 2: an aggregator linking to two publishers: two outlets.
            item(3, 2, "agg", "https://one.example/a", "Vote counted", NOW - 100),
            item(4, 2, "agg", "https://two.example/b", "Vote is counted", NOW - 90),
        ];
        let out = select_from(items, &infos(), &c, &c.topics[0], NOW);
        assert_eq!(ids(&out), vec![2]);
        assert_eq!(out[0].outlets.len(), 2);
        assert_eq!(out[0].others()[0].link.as_deref(), Some("https://two.example/b"));
    }

    #[test]
    fn lead_prefers_weight_then_earliest() {
        let c = config("[[topic]]\nid = \"t\"");
        let items = vec![
            item(1, 1, "bbc", "https://bbc.example/a", "First report", NOW - 300),
            item(2, 1, "agg", "https://agg.example/a", "Second report", NOW - 200),
            item(3, 1, "dawn", "https://dawn.example/a", "Heavier outlet", NOW - 100),
            item(4, 2, "bbc", "https://bbc.example/b", "Early", NOW - 300),
            item(5, 2, "agg", "https://agg.example/b", "Later", NOW - 200),
        ];
        let out = select_from(items, &infos(), &c, &c.topics[0], NOW);
        let s1 = out.iter().find(|s| s.id == 1).unwrap();
        assert_eq!(s1.lead.title, "Heavier outlet");
        assert_eq!(s1.outlets[0].source_id, "dawn", "lead outlet first");
        assert_eq!(s1.outlets.len(), 3);
        assert_eq!(s1.first_seen, NOW - 300);
        assert_eq!(s1.last_seen, NOW - 100);
        let s2 = out.iter().find(|s| s.id == 2).unwrap();
        assert_eq!(s2.lead.title, "Early");
    }

    #[test]
    fn lead_comes_from_a_matching_item() {
        let c = config("[[topic]]\nid = \"t\"\ninclude = [\"Islamabad\"]");
        let items = vec![
            item(1, 1, "dawn", "https://dawn.example/a", "Talks open", NOW - 300),
            item(2, 1, "bbc", "https://bbc.example/a", "Talks open in Islamabad", NOW - 200),
            item(3, 2, "bbc", "https://bbc.example/b", "Unrelated", NOW - 100),
        ];
        let out = select_from(items, &infos(), &c, &c.topics[0], NOW);
        assert_eq!(ids(&out), vec![1]);
        assert_eq!(out[0].lead.id, 2);
        assert_eq!(out[0].outlets.len(), 2, "outlets count the whole story");
    }

    #[test]
    fn latest_and_coverage_rankings_window_and_limit() {
        let latest = config("[[topic]]\nid = \"t\"\nwindow = \"6h\"\nlimit = 2");
        let items = || {
            vec![
                // Story 1: three outlets, two hours old.
                item(1, 1, "bbc", "https://bbc.example/a", "Big", NOW - 7200),
                item(2, 1, "dawn", "https://dawn.example/a", "Big", NOW - 7200),
                item(3, 1, "agg", "https://agg.example/a", "Big", NOW - 7200),
                // Story 2: one outlet, fresh.
                item(4, 2, "bbc", "https://bbc.example/b", "Fresh", NOW - 60),
                // Story 3: one outlet, an hour old.
                item(5, 3, "bbc", "https://bbc.example/c", "Hour", NOW - 3600),
                // Story 4: outside the window.
                item(6, 4, "bbc", "https://bbc.example/d", "Old", NOW - 8 * 3600),
            ]
        };
        let out = select_from(items(), &infos(), &latest, &latest.topics[0], NOW);
        assert_eq!(ids(&out), vec![2, 3], "newest first, cut to the limit");
        let cov = config("[[topic]]\nid = \"t\"\nrank = \"coverage\"\nwindow = \"6h\"");
        let out = select_from(items(), &infos(), &cov, &cov.topics[0], NOW);
        assert_eq!(ids(&out), vec![1, 2, 3], "breadth beats freshness here");
        assert!(out[0].score > out[1].score);
    }

    #[test]
    fn story_active_in_window_keeps_older_items() {
        let c = config("[[topic]]\nid = \"t\"\nwindow = \"1h\"");
        let items = vec![
            item(1, 1, "bbc", "https://bbc.example/a", "Start", NOW - 5 * 3600),
            item(2, 1, "dawn", "https://dawn.example/a", "Follow-up", NOW - 600),
        ];
        let out = select_from(items, &infos(), &c, &c.topics[0], NOW);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].first_seen, NOW - 5 * 3600);
        assert_eq!(out[0].lead.id, 2, "dawn is heavier");
        assert_eq!(out[0].items, 2);
    }
}
