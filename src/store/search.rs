//! Search: full-text search over the stored items (title, summary, outlets), kept in step
//! with the rows by the writer, and a small query language for what people type.
//!
//! The index is the FTS5 table `item_search` (schema migration 4), rowid = `items.id`. It is
//! contentless: the text already lives in `items`, so the index holds only tokens and
//! positions, and nothing can be read back out of it. An item's document is its title, the
//! plain text of its summary (else content) cut at [`BODY_CHARS`] (a story's lead says what
//! it is about, and the cost per item stays bounded), and its outlets: the display name of
//! every source it appeared in and its link's host without `www.` (`dawn.com`). Accents fold
//! both ways (`Sao Paulo` finds `São Paulo`).
//!
//! The writer re-indexes an item inside the transaction that changed one of those, so the
//! index never disagrees with a committed row: a new item, an edit and a new appearance
//! ([`super::items::ingest`]), a source's configured title ([`super::sources::sync`]) or its
//! feed's own title ([`super::sources::record_poll`]) changing; retention deletes the rows of
//! the items it deletes ([`super::retention::prune`]). A poll's index writes are made at the
//! end of its transaction, or of the group transaction it runs in ([`Batch`]).
//!
//! Queries: nobody types FTS5. [`parse`] reads words (all must match), `"quoted phrases"`,
//! `a OR b`, `-word` / `-"phrase"` exclusions and `prefix*`, and [`Query::fts5`] writes the
//! FTS5 expression itself with every token inside a double-quoted string, so nothing typed
//! can be FTS5 syntax. [`stories`] walks the matches newest first (rowid descending, which
//! FTS5 does natively: item ids grow with ingest time), reads at most [`MAX_SCAN`] of them,
//! and gives up after a time budget.

use std::fmt;
use std::sync::{mpsc, LazyLock};
use std::time::Duration;

use crate::store::db::{params, Connection, OptionalExtension, Row};
use regex::Regex;
use rusqlite::ErrorCode;
use unicode_normalization::UnicodeNormalization;

use crate::normalize::text::quick_text;

/// Characters of an item's summary (else content) text that are indexed.
pub const BODY_CHARS: usize = 1000;

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// Most terms (words and phrases, excluded ones included) in a query.
pub const MAX_TERMS: usize = 12;

/// Fewest letters or digits before a `*`.
pub const MIN_PREFIX_CHARS: usize = 2;

/// Most stories one search returns.
pub const MAX_STORIES: usize = 100;

/// Most matching items one search reads ([`SCAN_PER_STORY`] per story asked for, at most this).
pub const MAX_SCAN: usize = 2000;

/// Matching items read per story asked for: several items of one story often match.
pub const SCAN_PER_STORY: usize = 10;

/// The syntax, in one line, for error messages.
pub const SYNTAX: &str =
    "search syntax: words (all must match), \"exact phrase\", word OR word, -word or -\"phrase\" to exclude, prefix*";

// ------------------------------------------------------------------------------- the index

/// An item's row as indexed ([`DocRow`]). Of the summary and content only the first
/// [`HTML_CHARS`] are read: a long article is not copied whole to index its lead.
macro_rules! doc_sql {
    ($tail:literal) => {
        concat!(
            "SELECT i.id, i.title, substr(i.summary, 1, 16000), substr(i.content, 1, 16000), i.link,
                    (SELECT group_concat(COALESCE(s.title, s.feed_title, s.id), char(31))
                     FROM appearances a JOIN sources s ON s.id = a.source_id WHERE a.item_id = i.id)
             FROM items i ",
            $tail
        )
    };
}

/// Characters of summary and content HTML read per item (markup included, enough for
/// [`BODY_CHARS`] of text), as `doc_sql!` reads them.
const HTML_CHARS: usize = 16_000;

/// An item's row as indexed: id, title, summary, content, link, and its outlets' display
/// names (separated by U+001F).
type DocRow = (i64, String, Option<String>, Option<String>, Option<String>, Option<String>);

fn doc_row(r: &Row) -> crate::store::db::Result<DocRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

/// The indexed text: the plain text of the summary, else of the content.
fn body_text(summary: Option<&str>, content: Option<&str>) -> String {
    summary
        .map(|h| quick_text(h, BODY_CHARS))
        .filter(|t| !t.is_empty())
        .or_else(|| content.map(|h| quick_text(h, BODY_CHARS)))
        .unwrap_or_default()
}

/// The indexed outlets: each display name once, then the link's host without `www.`.
fn outlets<'a>(names: impl Iterator<Item = &'a str>, link: Option<&str>) -> String {
    let mut out: Vec<&str> = Vec::new();
    for name in names {
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    }
    let host = link.and_then(link_host);
    if let Some(h) = host.as_deref() {
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out.join(" ")
}

/// The host of an http(s) link, lowercased, without `www.` and port: what people call the
/// outlet (`dawn.com`). Read off the text rather than parsed as a URL, which costs more and
/// would turn an international name into its `xn--` form, which nobody types.
fn link_host(link: &str) -> Option<String> {
    let scheme = link.find("://")?;
    if !(link[..scheme].eq_ignore_ascii_case("http") || link[..scheme].eq_ignore_ascii_case("https")) {
        return None;
    }
    let authority = link[scheme + 3..].split(['/', '\\', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    if host.starts_with('[') {
        return None; // an IPv6 address names no outlet
    }
    let host = host.split(':').next()?.to_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    (!host.is_empty()).then(|| host.to_string())
}

/// The first [`HTML_CHARS`] characters of `s` (what `substr` gives `doc_sql!`).
fn head(s: &str) -> &str {
    if s.len() <= HTML_CHARS {
        return s; // no more characters than bytes
    }
    s.char_indices().nth(HTML_CHARS).map_or(s, |(cut, _)| &s[..cut])
}

fn insert_row(conn: &Connection, row: &DocRow) -> crate::store::db::Result<()> {
    let (id, title, summary, content, link, names) = row;
    let names = names.as_deref().unwrap_or("").split('\u{1f}');
    insert(conn, *id, title, &body_text(summary.as_deref(), content.as_deref()), &outlets(names, link.as_deref()))
}

/// On PostgreSQL `item_search` is a table of the same columns with a generated `tsvector`
/// (schema migration 2 there), so the same statements write both.
const INSERT_SQL: &str = "INSERT INTO item_search (rowid, title, body, outlets) VALUES (?1, ?2, ?3, ?4)";

fn insert(conn: &Connection, id: i64, title: &str, body: &str, outlets: &str) -> crate::store::db::Result<()> {
    conn.prepare_cached(INSERT_SQL)?.execute_later(params![id, title, body, outlets])?;
    Ok(())
}

fn delete(conn: &Connection, id: i64) -> crate::store::db::Result<()> {
    conn.prepare_cached("DELETE FROM item_search WHERE rowid = ?1")?.execute_later([id])?;
    Ok(())
}

/// (Re-)indexes one item from its current `items`, `appearances` and `sources` rows: its
/// index row (if any) is deleted and written again; an item that no longer exists is only
/// deleted. Runs in the caller's transaction.
pub fn index_item(conn: &Connection, item_id: i64) -> crate::store::db::Result<()> {
    delete(conn, item_id)?;
    let row = conn.prepare_cached(doc_sql!("WHERE i.id = ?1"))?.query_row([item_id], doc_row).optional()?;
    match row {
        Some(r) => insert_row(conn, &r),
        None => Ok(()),
    }
}

/// The index writes of one poll, or of the polls of a group transaction, made just before
/// it commits ([`Batch::apply`]).
///
/// Why not at once: FTS5 writes its pending tokens to disk as a new segment at every
/// savepoint, and a group transaction gives each feed a savepoint (see [`super::Store`]), so
/// indexing inside them wrote a segment per feed and merged them again, which cost half as
/// much again as the indexing itself. Written at the end of the transaction, a group's items
/// make one segment. A feed that rolls back drops its batch with it.
#[derive(Debug, Default)]
pub struct Batch {
    writes: Vec<Write>,
}

#[derive(Debug, PartialEq)]
enum Write {
    /// A new item's document, made from the values ingest inserted.
    New { id: i64, title: String, body: String, outlets: String },
    /// An item to index again from its rows ([`index_item`]).
    Again(i64),
}

impl Write {
    fn id(&self) -> i64 {
        match self {
            Write::New { id, .. } | Write::Again(id) => *id,
        }
    }
}

/// The writes of a batch with each item written once, as what its last write would leave
/// (in the order items first appear): an item a group's polls of several sources share was
/// indexed again for each of them. Two writes of an item combine into a read of its rows,
/// unless both were new documents (the later is kept).
fn coalesce(writes: Vec<Write>) -> Vec<Write> {
    let mut at: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    let mut out: Vec<Write> = Vec::with_capacity(writes.len());
    for w in writes {
        let Some(&i) = at.get(&w.id()) else {
            at.insert(w.id(), out.len());
            out.push(w);
            continue;
        };
        out[i] = match (&out[i], w) {
            (Write::New { .. }, w @ Write::New { .. }) => w,
            (_, w) => Write::Again(w.id()),
        };
    }
    out
}

impl Batch {
    /// Queues the document of an item ingest has just inserted, made from the values it
    /// inserted rather than read back (the same document [`index_item`] makes: a new item has
    /// one appearance, and `outlet` is its source's display name).
    pub fn new_item(
        &mut self,
        id: i64,
        title: &str,
        summary: Option<&str>,
        content: Option<&str>,
        link: Option<&str>,
        outlet: &str,
    ) {
        let body = body_text(summary.map(head), content.map(head));
        let outlets = outlets(std::iter::once(outlet), link);
        self.writes.push(Write::New { id, title: title.to_string(), body, outlets });
    }

    /// Queues an item to index again from its rows (edited, or seen in one more source).
    pub fn item(&mut self, id: i64) {
        self.writes.push(Write::Again(id));
    }

    /// Moves the writes of `other` to the end of this batch.
    pub fn append(&mut self, other: &mut Batch) {
        self.writes.append(&mut other.writes);
    }

    /// Makes the writes, each item's once (see [`coalesce`]).
    pub fn apply(&mut self, conn: &Connection) -> crate::store::db::Result<()> {
        for w in coalesce(std::mem::take(&mut self.writes)) {
            match w {
                Write::New { id, title, body, outlets } => {
                    delete(conn, id)?;
                    insert(conn, id, &title, &body, &outlets)?;
                }
                Write::Again(id) => index_item(conn, id)?,
            }
        }
        Ok(())
    }
}

/// The items `source_id` gave us.
pub fn source_items(conn: &Connection, source_id: &str) -> crate::store::db::Result<Vec<i64>> {
    conn.prepare_cached("SELECT DISTINCT item_id FROM appearances WHERE source_id = ?1")?
        .query_map([source_id], |r| r.get(0))?
        .collect()
}

/// Re-indexes every item `source_id` gave us (its display name changed); returns how many.
pub fn reindex_source(conn: &Connection, source_id: &str) -> crate::store::db::Result<usize> {
    let ids = source_items(conn, source_id)?;
    for &id in &ids {
        index_item(conn, id)?;
    }
    Ok(ids.len())
}

/// Deletes the index rows of the items published before `cut` (unix seconds): what
/// retention is about to delete, in its transaction. Returns how many.
pub fn remove_published_before(conn: &Connection, cut: i64) -> crate::store::db::Result<usize> {
    conn.prepare_cached("DELETE FROM item_search WHERE rowid IN (SELECT id FROM items WHERE published < ?1)")?
        .execute([cut])
}

/// Indexes every stored item, in one transaction, when the index is empty (a copy into
/// PostgreSQL); returns how many (0: it was not empty).
pub fn backfill_db(conn: &Connection) -> crate::store::db::Result<usize> {
    let indexed: i64 = conn.query_row("SELECT COUNT(*) FROM item_search", [], |r| r.get(0))?;
    if indexed > 0 {
        return Ok(0);
    }
    let tx = conn.transaction()?;
    let ids: Vec<i64> =
        tx.prepare("SELECT id FROM items ORDER BY id")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    for &id in &ids {
        index_item(&tx, id)?;
    }
    tx.commit()?;
    Ok(ids.len())
}

/// Indexes every stored item into the (empty) SQLite index: schema migration 4, and a copy
/// into SQLite (`newsdesk migrate`). Returns how many.
pub fn backfill(conn: &rusqlite::Connection) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare(doc_sql!("ORDER BY i.id"))?;
    let mut insert = conn.prepare_cached(INSERT_SQL)?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let (id, title, summary, content, link, names): DocRow =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
        let names = names.as_deref().unwrap_or("").split('\u{1f}');
        let body = body_text(summary.as_deref(), content.as_deref());
        insert.execute(rusqlite::params![id, title, body, outlets(names, link.as_deref())])?;
        n += 1;
    }
    Ok(n)
}

// ------------------------------------------------------------------------------- queries

/// One word or phrase of a query: its words in order (letters and digits, lowercased), and
/// whether the last one is a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    words: Vec<String>,
    prefix: bool,
}

impl Term {
    /// The term as an FTS5 string: `"w1 w2"`, `"w1" *` for a prefix. Words hold letters,
    /// digits and marks only; a `"` would be doubled all the same.
    fn write_fts5(&self, out: &mut String) {
        out.push('"');
        for (n, w) in self.words.iter().enumerate() {
            if n > 0 {
                out.push(' ');
            }
            out.push_str(&w.replace('"', "\"\""));
        }
        out.push('"');
        if self.prefix {
            out.push_str(" *");
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = self.words.join(" ");
        let star = if self.prefix { "*" } else { "" };
        if self.words.len() == 1 {
            write!(f, "{words}{star}")
        } else {
            write!(f, "\"{words}\"{star}")
        }
    }
}

/// A parsed search (see [`parse`]): every group must match (a group is one term, or terms
/// joined by `OR`), no excluded term may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    all: Vec<Vec<Term>>,
    none: Vec<Term>,
}

impl Query {
    /// The FTS5 `MATCH` expression: every token a quoted string, joined by AND, OR and NOT.
    pub fn fts5(&self) -> String {
        let mut out = String::from("(");
        for (g, group) in self.all.iter().enumerate() {
            if g > 0 {
                out.push_str(" AND ");
            }
            if group.len() > 1 {
                out.push('(');
            }
            for (t, term) in group.iter().enumerate() {
                if t > 0 {
                    out.push_str(" OR ");
                }
                term.write_fts5(&mut out);
            }
            if group.len() > 1 {
                out.push(')');
            }
        }
        out.push(')');
        for term in &self.none {
            out.push_str(" NOT ");
            term.write_fts5(&mut out);
        }
        out
    }
}

impl Query {
    /// The PostgreSQL `tsquery` of the same search: a phrase's words joined by `<->`, a
    /// prefix as `:*`, groups by `&`, alternatives by `|`, exclusions as `& !`.
    pub fn tsquery(&self) -> String {
        fn term(t: &Term, out: &mut String) {
            out.push('(');
            for (n, w) in t.words.iter().enumerate() {
                if n > 0 {
                    out.push_str(" <-> ");
                }
                out.push('\'');
                out.push_str(&w.replace('\'', "''"));
                out.push('\'');
                if t.prefix && n + 1 == t.words.len() {
                    out.push_str(":*");
                }
            }
            out.push(')');
        }
        let mut out = String::new();
        for (g, group) in self.all.iter().enumerate() {
            if g > 0 {
                out.push_str(" & ");
            }
            out.push('(');
            for (n, t) in group.iter().enumerate() {
                if n > 0 {
                    out.push_str(" | ");
                }
                term(t, &mut out);
            }
            out.push(')');
        }
        for t in &self.none {
            out.push_str(" & !");
            term(t, &mut out);
        }
        out
    }
}

/// The query as understood, in the query language (`a "b c" d OR e -f g*`).
impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| if std::mem::take(&mut first) { Ok(()) } else { f.write_str(" ") };
        for group in &self.all {
            sep(f)?;
            for (t, term) in group.iter().enumerate() {
                if t > 0 {
                    f.write_str(" OR ")?;
                }
                write!(f, "{term}")?;
            }
        }
        for term in &self.none {
            sep(f)?;
            write!(f, "-{term}")?;
        }
        Ok(())
    }
}

/// What is wrong with a query; the message says so and shows the syntax ([`SYNTAX`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// Nothing but blanks.
    Empty,
    /// Longer than [`MAX_QUERY_CHARS`].
    TooLong,
    /// More than [`MAX_TERMS`] terms (this many).
    TooManyTerms(usize),
    /// A `"` without its closing `"`.
    UnbalancedQuote,
    /// Every term is excluded: nothing to find.
    OnlyExclusions,
    /// `OR` first, last, or twice in a row.
    MisplacedOr,
    /// `OR` next to an excluded term (this one).
    OrWithExclusion(String),
    /// Fewer than [`MIN_PREFIX_CHARS`] letters before a `*` (this term).
    PrefixTooShort(String),
    /// A term with no letter or digit (this one).
    NoLetters(String),
}

impl QueryError {
    /// What is wrong, without the syntax line (a page shows the syntax its own way).
    pub fn reason(&self) -> String {
        match self {
            QueryError::Empty => "the search is empty: type a word to look for".to_string(),
            QueryError::TooLong => format!("the search is longer than {MAX_QUERY_CHARS} characters"),
            QueryError::TooManyTerms(n) => {
                format!("the search has {n} terms; at most {MAX_TERMS} (a \"quoted phrase\" counts as one)")
            }
            QueryError::UnbalancedQuote => "a quote is not closed: a phrase goes between two \" marks".to_string(),
            QueryError::OnlyExclusions => {
                "the search only excludes (-word): add a word the stories must contain".to_string()
            }
            QueryError::MisplacedOr => "OR must stand between two terms, as in: pakistan OR india".to_string(),
            QueryError::OrWithExclusion(t) => format!("OR cannot join the excluded term {t}"),
            QueryError::PrefixTooShort(t) => {
                format!("{t} is too short a prefix: at least {MIN_PREFIX_CHARS} letters before *")
            }
            QueryError::NoLetters(t) => format!("{t} has no letters or digits to look for"),
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({SYNTAX})", self.reason())
    }
}

impl std::error::Error for QueryError {}

/// A lexed piece of a query.
enum Lex {
    Or,
    Term { shown: String, text: String, excluded: bool, prefix: bool },
}

/// Separates terms: whitespace, and control characters (which never reach the index).
fn is_blank(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

/// A word of a query: letters, digits, private use (what FTS5's `unicode61` indexes) and
/// marks (FTS5 keeps accents in words and splits at other marks as it did when indexing: the
/// quoted words are tokenized by the same tokenizer).
static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\p{L}\p{N}\p{Co}\p{M}]+").unwrap_or_else(|e| unreachable!("constant regex: {e}")));

/// A character FTS5 indexes: a word without one is no token at all.
static TOKEN_CHAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\p{L}\p{N}\p{Co}]").unwrap_or_else(|e| unreachable!("constant regex: {e}")));

/// A term as shown in an error message: as typed, at most 40 characters.
fn shown(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((cut, _)) => format!("`{}…`", &s[..cut]),
        None => format!("`{s}`"),
    }
}

/// Parses what someone typed into a [`Query`] (see the module doc and [`SYNTAX`]). A word with
/// inner punctuation (`al-Qaeda`, `U.S.`) is the phrase of its parts; `OR` (capitals) joins the
/// terms on either side; the text is NFKC-normalised, as titles are.
pub fn parse(q: &str) -> Result<Query, QueryError> {
    let q = q.trim_matches(is_blank);
    if q.is_empty() {
        return Err(QueryError::Empty);
    }
    if q.chars().nth(MAX_QUERY_CHARS).is_some() {
        return Err(QueryError::TooLong);
    }
    let chars: Vec<char> = q.nfkc().collect();
    let mut lexed = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if is_blank(chars[i]) {
            i += 1;
            continue;
        }
        let excluded = chars[i] == '-' && chars.get(i + 1).is_some_and(|&c| !is_blank(c));
        let start = i;
        if excluded {
            i += 1;
        }
        if chars[i] == '"' {
            let open = i + 1;
            let Some(len) = chars[open..].iter().position(|&c| c == '"') else {
                return Err(QueryError::UnbalancedQuote);
            };
            i = open + len + 1;
            let mut prefix = false;
            while chars.get(i) == Some(&'*') {
                prefix = true;
                i += 1;
            }
            let text = chars[open..open + len].iter().collect();
            lexed.push(Lex::Term { shown: chars[start..i].iter().collect(), text, excluded, prefix });
        } else {
            let from = i;
            while i < chars.len() && !is_blank(chars[i]) && chars[i] != '"' {
                i += 1;
            }
            let word: String = chars[from..i].iter().collect();
            if !excluded && word == "OR" {
                lexed.push(Lex::Or);
                continue;
            }
            let stem = word.trim_end_matches('*');
            let prefix = stem.len() < word.len();
            lexed.push(Lex::Term { shown: chars[start..i].iter().collect(), text: stem.to_string(), excluded, prefix });
        }
    }
    let terms = lexed.iter().filter(|l| matches!(l, Lex::Term { .. })).count();
    if terms > MAX_TERMS {
        return Err(QueryError::TooManyTerms(terms));
    }
    // OR stands between two terms that are not excluded.
    for (k, l) in lexed.iter().enumerate() {
        if !matches!(l, Lex::Or) {
            continue;
        }
        let (before, after) = match (k.checked_sub(1).and_then(|b| lexed.get(b)), lexed.get(k + 1)) {
            (Some(b @ Lex::Term { .. }), Some(a @ Lex::Term { .. })) => (b, a),
            _ => return Err(QueryError::MisplacedOr),
        };
        for side in [before, after] {
            if let Lex::Term { shown: s, excluded: true, .. } = side {
                return Err(QueryError::OrWithExclusion(shown(s)));
            }
        }
    }
    let mut all: Vec<Vec<Term>> = Vec::new();
    let mut none = Vec::new();
    let mut joined = false;
    for l in lexed {
        let (s, text, excluded, prefix) = match l {
            Lex::Or => {
                joined = true;
                continue;
            }
            Lex::Term { shown, text, excluded, prefix } => (shown, text, excluded, prefix),
        };
        let words: Vec<String> = WORD
            .find_iter(&text)
            .map(|m| m.as_str())
            .filter(|w| TOKEN_CHAR.is_match(w))
            .map(str::to_lowercase)
            .collect();
        let Some(last) = words.last() else { return Err(QueryError::NoLetters(shown(&s))) };
        let letters = TOKEN_CHAR.find_iter(last).count();
        if prefix && letters < MIN_PREFIX_CHARS {
            return Err(QueryError::PrefixTooShort(shown(&s)));
        }
        let term = Term { words, prefix };
        match all.last_mut() {
            _ if excluded => none.push(term),
            Some(group) if std::mem::take(&mut joined) => group.push(term),
            _ => all.push(vec![term]),
        }
    }
    if all.is_empty() {
        return Err(if none.is_empty() { QueryError::Empty } else { QueryError::OnlyExclusions });
    }
    Ok(Query { all, none })
}

// ------------------------------------------------------------------------------- searching

/// Why a search returned no list.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The search ran past its time budget and was interrupted.
    #[error("the search took too long; try more specific words")]
    TooSlow,
    /// The database failed.
    #[error("searching the database: {0}")]
    Sqlite(#[from] crate::store::db::Error),
    /// The timer that bounds the search could not start.
    #[error("starting the search timer: {0}")]
    Timer(std::io::Error),
}

/// The live stories (merges followed) with an item matching `q`, newest matching item first,
/// at most `limit` (at most [`MAX_STORIES`]); items without a story are skipped. Reads at
/// most [`SCAN_PER_STORY`] × `limit` matches ([`MAX_SCAN`] at most), so a common word costs
/// no more than a rare one, and is interrupted after `budget` ([`SearchError::TooSlow`]).
///
/// The interrupt is aimed at this call only: the timer thread has ended before this returns,
/// and an interrupt that landed after the last statement finished is cleared by SQLite when
/// the connection's next statement starts (with no other statement running on it, as on a
/// pooled reader between uses).
pub fn stories(conn: &Connection, q: &Query, limit: usize, budget: Duration) -> Result<Vec<i64>, SearchError> {
    let limit = limit.min(MAX_STORIES);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let scan = (limit * SCAN_PER_STORY).min(MAX_SCAN);
    let Some(lite) = conn.as_lite() else { return pg_stories(conn, q, limit, scan, budget) };
    let expr = q.fts5();
    let handle = lite.get_interrupt_handle();
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let timer = std::thread::Builder::new()
            .name("search-timer".into())
            .spawn_scoped(s, move || {
                let mut fired = false;
                let mut wait = budget;
                // Past the budget, interrupt again every millisecond until told to stop: an
                // interrupt that lands before a statement starts is forgotten by SQLite.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                    handle.interrupt();
                    fired = true;
                    wait = Duration::from_millis(1);
                }
                fired
            })
            .map_err(SearchError::Timer)?;
        let found = matching_stories(conn, &expr, limit, scan);
        drop(stop);
        let fired = timer.join().unwrap_or(true);
        match found {
            Err(crate::store::db::Error::Sqlite(e))
                if fired && e.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) =>
            {
                Err(SearchError::TooSlow)
            }
            r => r.map_err(SearchError::Sqlite),
        }
    })
}

/// [`stories`] on PostgreSQL: the same walk over a `tsvector` match, bounded by the
/// session's `statement_timeout` instead of an interrupt.
fn pg_stories(
    conn: &Connection,
    q: &Query,
    limit: usize,
    scan: usize,
    budget: Duration,
) -> Result<Vec<i64>, SearchError> {
    conn.execute_batch(&format!("SET statement_timeout = {}", budget.as_millis().max(1)))?;
    let found = matching_stories(conn, &q.tsquery(), limit, scan);
    conn.execute_batch("SET statement_timeout = 0")?;
    match found {
        Err(e) if e.to_string().contains("statement timeout") => Err(SearchError::TooSlow),
        r => r.map_err(SearchError::Sqlite),
    }
}

fn matching_stories(conn: &Connection, expr: &str, limit: usize, scan: usize) -> crate::store::db::Result<Vec<i64>> {
    let mut matches = conn.prepare_cached(if conn.is_pg() {
        "SELECT rowid FROM item_search WHERE doc @@ to_tsquery('simple', ?1) ORDER BY rowid DESC LIMIT ?2"
    } else {
        "SELECT rowid FROM item_search WHERE item_search MATCH ?1 ORDER BY rowid DESC LIMIT ?2"
    })?;
    let mut story_of = conn.prepare_cached(
        "SELECT COALESCE(s.merged_into, s.id) FROM items i JOIN stories s ON s.id = i.story_id WHERE i.id = ?1",
    )?;
    let mut out = Vec::new();
    let mut rows = matches.query(params![expr, scan as i64])?;
    while let Some(r) = rows.next()? {
        let item: i64 = r.get(0)?;
        let Some(story) = story_of.query_row([item], |r| r.get::<_, i64>(0)).optional()? else { continue };
        if !out.contains(&story) {
            out.push(story);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceConfig;
    use crate::model::{Feed, Item};
    use crate::store::items::IngestCounts;
    use crate::store::sources::{self, PollRecord, PollResult};
    use crate::store::{retention, schema, Store};
    use chrono::Utc;
    use std::path::PathBuf;

    fn temp_db(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("newsdesk-search-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("test.db")
    }

    /// An item as the parse step makes it, published `days_ago`.
    fn item(guid: &str, link: &str, title: &str, summary: &str, days_ago: i64) -> Item {
        Item {
            guid: Some(guid.into()),
            link: Some(link.into()),
            canonical_url: crate::normalize::url::canonicalize(link),
            title: title.into(),
            summary_html: Some(summary.into()),
            published: Some(Utc::now() - chrono::Duration::days(days_ago)),
            content_hash: crate::parse::stable_hash(&[title, summary]),
            ..Default::default()
        }
    }

    /// Configures a source (as `newsdesk` does from feeds.toml).
    fn configure(store: &Store, id: &str, title: Option<&str>) {
        let cfg = SourceConfig {
            id: id.into(),
            url: url::Url::parse(&format!("http://feeds.test/{id}.xml")).unwrap(),
            title: title.map(str::to_string),
            schedule: Default::default(),
            tags: vec![],
            weight: 1.0,
        };
        store.write_blocking(move |w| sources::sync(&mut w.conn, &[cfg])).unwrap().unwrap();
    }

    /// Stores one fetched document of `source`, through the writer's real ingest path.
    fn poll(store: &Store, source: &str, feed_title: Option<&str>, items: Vec<Item>) -> IngestCounts {
        let now = Utc::now();
        let rec = PollRecord {
            source_id: source.into(),
            now,
            next_due: now,
            moved_to: None,
            result: PollResult::Content {
                feed: Feed { title: feed_title.map(str::to_string), items, ..Default::default() },
                features: vec![],
                validators: Default::default(),
                http_status: 200,
            },
        };
        store.write_blocking(move |w| sources::record_poll(w, &rec)).unwrap().unwrap()
    }

    /// The titles of the items of every story found, in the order found.
    fn titles(store: &Store, q: &str) -> Vec<String> {
        let q = parse(q).unwrap();
        store
            .read(move |c| {
                let found = stories(c, &q, 50, Duration::from_secs(10)).unwrap();
                let mut out = Vec::new();
                for story in found {
                    let mut stmt = c.prepare(
                        "SELECT i.title FROM items i JOIN stories s ON s.id = i.story_id
                         WHERE COALESCE(s.merged_into, s.id) = ?1 ORDER BY i.id DESC",
                    )?;
                    out.extend(
                        stmt.query_map([story], |r| r.get::<_, String>(0))?
                            .collect::<crate::store::db::Result<Vec<_>>>()?,
                    );
                }
                Ok(out)
            })
            .unwrap()
    }

    fn story_of(store: &Store, title: &str) -> i64 {
        let title = title.to_string();
        store
            .read(move |c| {
                c.query_row(
                    "SELECT COALESCE(s.merged_into, s.id) FROM items i JOIN stories s ON s.id = i.story_id WHERE i.title = ?1",
                    [title],
                    |r| r.get(0),
                )
            })
            .unwrap()
    }

    fn index_rows(store: &Store) -> i64 {
        store.read(|c| c.query_row("SELECT COUNT(*) FROM item_search", [], |r| r.get(0))).unwrap()
    }

    const LAVROV: &str = "Lavrov visits Pakistan for talks";
    const FLOODS: &str = "Monsoon floods hit Karachi";

    /// Two outlets, one item each.
    fn two_outlets(name: &str) -> Store {
        let store = Store::open(&temp_db(name)).unwrap();
        configure(&store, "dawn", Some("Dawn News"));
        configure(&store, "geo", Some("Geo Television"));
        poll(
            &store,
            "dawn",
            Some("DAWN.COM - Home"),
            vec![item(
                "d1",
                "https://www.dawn.com/news/1850000/lavrov",
                LAVROV,
                "<p>The Russian foreign minister met officials in <b>Islamabad</b> &amp; Rawalpindi.</p>",
                0,
            )],
        );
        poll(
            &store,
            "geo",
            None,
            vec![item("g1", "https://geo.tv/latest/77", FLOODS, "<p>Streets under water after record rain.</p>", 0)],
        );
        store
    }

    #[test]
    fn found_by_headline_summary_outlet_and_host() {
        let store = two_outlets("basic");
        assert_eq!(titles(&store, "lavrov"), [LAVROV], "headline word");
        assert_eq!(titles(&store, "KARACHI"), [FLOODS], "any case");
        assert_eq!(titles(&store, "islamabad"), [LAVROV], "summary word, markup stripped");
        assert_eq!(titles(&store, "rawalpindi"), [LAVROV], "after an entity");
        assert_eq!(titles(&store, "dawn"), [LAVROV], "outlet name");
        assert_eq!(titles(&store, "geo television"), [FLOODS], "outlet name, two words");
        assert_eq!(titles(&store, "dawn.com"), [LAVROV], "link host without www.");
        assert_eq!(titles(&store, "geo.tv"), [FLOODS]);
        assert!(titles(&store, "home").is_empty(), "a configured title wins over the feed's own");
        assert!(titles(&store, "lavrov karachi").is_empty(), "all words must match");
        // Newest matching item first.
        assert_eq!(titles(&store, "pakistan OR karachi"), [FLOODS, LAVROV]);
        let limited = {
            let q = parse("pakistan OR karachi").unwrap();
            store.read(move |c| Ok(stories(c, &q, 1, Duration::from_secs(5)).unwrap().len())).unwrap()
        };
        assert_eq!(limited, 1, "at most `limit` stories");
    }

    /// Every indexed token of every item: (term, item, column, offset).
    fn vocabulary(store: &Store) -> Vec<(String, i64, String, i64)> {
        store
            .write_blocking(|w| {
                w.conn.execute_batch(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, item_search, instance)",
                )?;
                let mut stmt = w.conn.prepare("SELECT term, doc, col, offset FROM temp.vocab ORDER BY 1, 2, 3, 4")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                rows.collect::<crate::store::db::Result<Vec<_>>>()
            })
            .unwrap()
            .unwrap()
    }

    #[test]
    fn ingest_indexes_what_index_item_reads_back() {
        let store = two_outlets("same");
        let markup = format!("<p>{}</p><p>lead</p>", "<i class=\"x\">".repeat(2000));
        let mut content_only = item("g2", "http://geo.tv/2", "Content only", "", 0);
        content_only.summary_html = None;
        content_only.content_html = Some("<div>Full <b>article</b> &amp; more</div>".into());
        poll(&store, "geo", None, vec![item("g3", "https://www.geo.tv/3", "Markup heavy", &markup, 0), content_only]);
        assert!(
            doc_sql!("").contains(&format!("substr(i.content, 1, {HTML_CHARS})")),
            "doc_sql! reads what head() cuts"
        );
        let ingested = vocabulary(&store);
        assert!(ingested.iter().any(|(t, ..)| t == "article"), "content indexed when there is no summary");
        assert!(!ingested.iter().any(|(t, ..)| t == "lead"), "text past 16,000 characters of markup is not read");
        let ids: Vec<i64> =
            store.read(|c| c.prepare("SELECT id FROM items")?.query_map([], |r| r.get(0))?.collect()).unwrap();
        store.write_blocking(move |w| ids.iter().try_for_each(|&id| index_item(&w.conn, id))).unwrap().unwrap();
        assert_eq!(vocabulary(&store), ingested);
    }

    #[test]
    fn a_group_transaction_indexes_its_feeds_once_and_drops_a_failed_one() {
        let store = Store::open(&temp_db("group")).unwrap();
        for id in ["a", "b", "c"] {
            configure(&store, id, None);
        }
        // Any item titled so fails its insert: its feed rolls back alone.
        store
            .write_blocking(|w| {
                w.conn.execute_batch(
                    "CREATE TEMP TRIGGER poison BEFORE INSERT ON items WHEN NEW.title = 'Poison pill'
                     BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
                )
            })
            .unwrap()
            .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        // Hold the writer so that the polls queue up behind it and run as one group.
        let held = store.clone();
        let hold = std::thread::spawn(move || held.write_blocking(|_| std::thread::sleep(Duration::from_millis(300))));
        std::thread::sleep(Duration::from_millis(50));
        let job = |source: &'static str, items: Vec<Item>| {
            let s = store.clone();
            let now = Utc::now();
            let rec = PollRecord {
                source_id: source.into(),
                now,
                next_due: now,
                moved_to: None,
                result: PollResult::Content {
                    feed: Feed { items, ..Default::default() },
                    features: vec![],
                    validators: Default::default(),
                    http_status: 200,
                },
            };
            rt.spawn(async move {
                s.write_grouped(move |w| {
                    let grouped = !w.conn.is_autocommit();
                    sources::record_poll(w, &rec).map(|c| (grouped, c.new))
                })
                .await
            })
        };
        let jobs = [
            job(
                "a",
                vec![
                    item("a1", "https://a.test/1", "Aardvark census", "<p>x</p>", 0),
                    item("a2", "https://a.test/2", "Albatross sighted", "<p>y</p>", 3),
                ],
            ),
            job(
                "b",
                vec![
                    item("b1", "https://b.test/1", "Badger bridge", "<p>z</p>", 0),
                    item("b2", "https://b.test/2", "Beaver dam", "<p>u</p>", 3),
                    item("b3", "https://b.test/3", "Poison pill", "<p>w</p>", 0),
                ],
            ),
            job("c", vec![item("c1", "https://c.test/1", "Caribou crossing", "<p>v</p>", 0)]),
        ];
        let results: Vec<_> = jobs.into_iter().map(|j| rt.block_on(j).unwrap().unwrap()).collect();
        hold.join().unwrap().unwrap();
        assert_eq!(results[0].as_ref().ok(), Some(&(true, 2)), "ran in a group");
        assert!(results[1].as_ref().is_err_and(|e| e.to_string().contains("poisoned")), "{:?}", results[1]);
        assert_eq!(results[2].as_ref().ok(), Some(&(true, 1)));
        assert_eq!(index_rows(&store), 3, "the failed feed's items are not indexed");
        assert_eq!(titles(&store, "aardvark OR albatross OR caribou").len(), 3);
        assert!(titles(&store, "badger OR beaver").is_empty());
        // The caribou took the id the badger had before its feed rolled back.
        assert_eq!(titles(&store, "crossing"), ["Caribou crossing"]);
    }

    #[test]
    fn accents_fold_both_ways() {
        let store = Store::open(&temp_db("accents")).unwrap();
        configure(&store, "folha", Some("Folha"));
        poll(
            &store,
            "folha",
            None,
            vec![
                item("f1", "https://folha.test/1", "São Paulo mayor resigns", "<p>Prefeito renuncia</p>", 0),
                item("f2", "https://folha.test/2", "Zurich airport strike", "<p>Decomposed: Brasi\u{0301}lia</p>", 0),
            ],
        );
        assert_eq!(titles(&store, "Sao Paulo"), ["São Paulo mayor resigns"]);
        assert_eq!(titles(&store, "são paulo"), ["São Paulo mayor resigns"]);
        assert_eq!(titles(&store, "Zürich"), ["Zurich airport strike"]);
        assert_eq!(titles(&store, "brasilia"), ["Zurich airport strike"], "a combining accent folds too");
        assert_eq!(titles(&store, "Brasília"), ["Zurich airport strike"]);
    }

    #[test]
    fn phrases_exclusions_or_prefixes_and_punctuated_words() {
        let store = Store::open(&temp_db("syntax")).unwrap();
        configure(&store, "wire", Some("Wire"));
        let a = "Prime minister visits Lahore";
        let b = "Minister says prime rates will rise";
        let c = "Cricket final in Lahore";
        let d = "Al-Qaeda leader killed, U.S. says";
        // Days apart, so no two of them are one story.
        poll(
            &store,
            "wire",
            None,
            vec![
                item("a", "https://wire.test/a", a, "<p>x</p>", 9),
                item("b", "https://wire.test/b", b, "<p>y</p>", 6),
                item("c", "https://wire.test/c", c, "<p>z</p>", 3),
                item("d", "https://wire.test/d", d, "<p>w</p>", 0),
            ],
        );
        let ids: Vec<i64> = [a, b, c, d].iter().map(|t| story_of(&store, t)).collect();
        assert!(ids.iter().enumerate().all(|(n, s)| !ids[..n].contains(s)), "four stories: {ids:?}");
        assert_eq!(titles(&store, "prime minister"), [b, a]);
        assert_eq!(titles(&store, "\"prime minister\""), [a], "phrase");
        assert_eq!(titles(&store, "minister -\"prime minister\""), [b], "excluded phrase");
        assert_eq!(titles(&store, "lahore -cricket"), [a], "excluded word");
        assert_eq!(titles(&store, "cricket OR rates"), [c, b], "OR");
        assert_eq!(titles(&store, "lahore cricket OR minister"), [c, a], "OR binds the two terms beside it");
        assert_eq!(titles(&store, "minis*"), [b, a], "prefix");
        assert_eq!(titles(&store, "\"prime minis\"*"), [a], "phrase prefix");
        assert_eq!(titles(&store, "al-qaeda"), [d], "inner punctuation: a phrase");
        assert_eq!(titles(&store, "u.s."), [d]);
        assert_eq!(titles(&store, "qaeda al"), [d], "two words");
        assert!(titles(&store, "\"qaeda al\"").is_empty(), "a phrase keeps its order");
        assert!(titles(&store, "qaeda-al").is_empty(), "so does a punctuated word");
    }

    #[test]
    fn non_latin_scripts_are_searchable() {
        let store = Store::open(&temp_db("scripts")).unwrap();
        configure(&store, "jang", Some("روزنامہ جنگ"));
        let urdu = "پاکستان میں سیلاب سے تباہی";
        let chinese = "中国新闻 北京暴雨";
        let hindi = "भारत में चुनाव";
        poll(
            &store,
            "jang",
            None,
            vec![
                item("u", "https://jang.test/u", urdu, "<p>کراچی</p>", 6),
                item("c", "https://jang.test/c", chinese, "<p>新闻</p>", 3),
                item("h", "https://jang.test/h", hindi, "<p>चुनाव आयोग</p>", 0),
            ],
        );
        assert_eq!(titles(&store, "پاکستان"), [urdu]);
        assert_eq!(titles(&store, "جنگ"), [hindi, chinese, urdu], "outlet name in Urdu");
        assert_eq!(titles(&store, "北京暴雨"), [chinese], "a run of Chinese is one word");
        assert_eq!(titles(&store, "中国*"), [chinese], "its start, as a prefix");
        assert!(titles(&store, "北京").is_empty(), "no word segmentation: part of a run is not found");
        assert_eq!(titles(&store, "चुनाव"), [hindi]);
        assert_eq!(titles(&store, "भारत"), [hindi]);
    }

    #[test]
    fn an_edit_updates_the_index() {
        let store = Store::open(&temp_db("edit")).unwrap();
        configure(&store, "wire", None);
        poll(&store, "wire", None, vec![item("e1", "https://wire.test/e1", "Zebra escapes zoo", "<p>old</p>", 0)]);
        assert_eq!(titles(&store, "zebra"), ["Zebra escapes zoo"]);
        let counts = poll(
            &store,
            "wire",
            None,
            vec![item("e1", "https://wire.test/e1", "Giraffe escapes zoo", "<p>keepers search</p>", 0)],
        );
        assert_eq!(counts.updated, 1);
        assert!(titles(&store, "zebra").is_empty(), "the old headline word is gone");
        assert!(titles(&store, "old").is_empty(), "and the old summary");
        assert_eq!(titles(&store, "giraffe keepers"), ["Giraffe escapes zoo"]);
        assert_eq!(index_rows(&store), 1, "one row per item");
    }

    #[test]
    fn a_second_outlet_makes_the_item_findable_by_its_name() {
        let store = Store::open(&temp_db("linked")).unwrap();
        configure(&store, "alpha", Some("Alpha Times"));
        configure(&store, "bravo", Some("Bravo Post"));
        let t = "Parliament passes budget";
        poll(&store, "alpha", None, vec![item("a1", "https://news.test/budget", t, "<p>vote</p>", 0)]);
        assert!(titles(&store, "bravo").is_empty());
        let counts = poll(
            &store,
            "bravo",
            None,
            vec![item("b1", "https://news.test/budget?utm_source=rss", t, "<p>vote</p>", 0)],
        );
        assert_eq!((counts.new, counts.linked), (1, 1), "the same article, linked");
        assert_eq!(titles(&store, "bravo post"), [t]);
        assert_eq!(titles(&store, "alpha"), [t], "the first outlet still finds it");
        assert_eq!(index_rows(&store), 1);
    }

    #[test]
    fn a_batch_writes_each_item_once_as_its_last_write_would_leave_it() {
        let new =
            |id: i64, title: &str| Write::New { id, title: title.into(), body: String::new(), outlets: String::new() };
        let writes = vec![new(1, "a"), Write::Again(2), Write::Again(1), Write::Again(2), new(3, "old"), new(3, "new")];
        assert_eq!(coalesce(writes), vec![Write::Again(1), Write::Again(2), new(3, "new")]);
    }

    #[test]
    fn retention_removes_index_rows() {
        let store = two_outlets("retention");
        assert_eq!(index_rows(&store), 2);
        // Age one item past the retention period, then prune as the daemon does.
        store
            .write_blocking(|w| {
                w.conn.execute("UPDATE items SET published = published - 40 * 86400 WHERE title = ?1", [LAVROV])
            })
            .unwrap()
            .unwrap();
        let cutoff = Utc::now() - chrono::Duration::days(30);
        assert_eq!(store.write_blocking(move |w| retention::prune(w, cutoff)).unwrap().unwrap(), 1);
        assert_eq!(index_rows(&store), 1);
        assert!(titles(&store, "lavrov").is_empty());
        assert_eq!(titles(&store, "karachi"), [FLOODS]);
    }

    #[test]
    fn a_renamed_source_is_reindexed() {
        let store = two_outlets("rename");
        configure(&store, "dawn", Some("Morning Herald"));
        assert_eq!(titles(&store, "morning herald"), [LAVROV]);
        assert!(titles(&store, "\"dawn news\"").is_empty(), "the old name is gone");
        assert_eq!(titles(&store, "dawn.com"), [LAVROV], "the host stays");
        // Without a configured title the feed's own names the outlet.
        configure(&store, "dawn", None);
        assert_eq!(titles(&store, "home"), [LAVROV]);
        assert!(titles(&store, "herald").is_empty());
    }

    #[test]
    fn the_feed_title_names_an_untitled_source() {
        let store = Store::open(&temp_db("feedtitle")).unwrap();
        configure(&store, "ktm", None);
        // The first poll brings the feed's title and the items together.
        poll(
            &store,
            "ktm",
            Some("Kathmandu Post"),
            vec![item("k1", "https://ktm.test/1", "Everest season opens", "<p>a</p>", 0)],
        );
        assert_eq!(titles(&store, "kathmandu"), ["Everest season opens"]);
        poll(&store, "ktm", Some("Himalayan Times"), vec![]);
        assert_eq!(titles(&store, "himalayan"), ["Everest season opens"]);
        assert!(titles(&store, "kathmandu").is_empty());
    }

    #[test]
    fn migration_from_version_3_backfills_the_index() {
        let path = temp_db("migrate");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            schema::create_at(&mut conn, 3).unwrap();
            conn.execute_batch(
                "INSERT INTO sources (id, url, config_url, title, feed_title) VALUES
                     ('dawn', 'u', 'u', 'Dawn News', NULL), ('wire', 'u', 'u', NULL, 'Wire Feed'), ('bare', 'u', 'u', NULL, NULL);
                 INSERT INTO stories (id, first_seen, last_seen, merged_into) VALUES (1, 0, 0, NULL), (2, 0, 0, 1), (3, 0, 0, NULL);
                 INSERT INTO items (id, link, title, summary, content, published, updated, first_seen, content_hash, story_id) VALUES
                     (1, 'https://www.dawn.com/a', 'Lavrov visits Pakistan', '<p>Islamabad talks</p>', NULL, 1, 1, 1, 0, 1),
                     (2, 'https://wire.test/b', 'Floods in Sindh', NULL, '<div>Full <i>content</i> only</div>', 2, 2, 2, 0, 2),
                     (3, NULL, 'Orphan without story', NULL, NULL, 3, 3, 3, 0, NULL),
                     (4, 'https://bare.test/c', 'Budget passes', '', '<p>fallback text</p>', 4, 4, 4, 0, 3);
                 INSERT INTO appearances (source_id, key, item_id, content_hash, first_seen) VALUES
                     ('dawn', 'g:1', 1, 0, 1), ('wire', 'g:1', 1, 0, 1), ('wire', 'g:2', 2, 0, 2), ('bare', 'g:3', 4, 0, 4);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let version: i64 = store.read(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0))).unwrap();
        assert_eq!(version, schema::VERSION);
        assert_eq!(index_rows(&store), 4, "every item indexed");
        let found = |q: &str| {
            let q = parse(q).unwrap();
            store.read(move |c| Ok(stories(c, &q, 10, Duration::from_secs(5)).unwrap())).unwrap()
        };
        assert_eq!(found("lavrov"), [1]);
        assert_eq!(found("islamabad"), [1], "summary");
        assert_eq!(found("dawn"), [1], "configured title, and host");
        assert_eq!(found("\"wire feed\""), [1], "the feed's title (both its items are story 1 now)");
        assert_eq!(found("content"), [1], "content when there is no summary; story 2 merged into 1");
        assert_eq!(found("fallback"), [3], "content when the summary is empty");
        assert_eq!(found("bare"), [3], "the id when there is no title at all");
        assert!(found("orphan").is_empty(), "items without a story are skipped");
        // The writer keeps the backfilled index up to date.
        store.write_blocking(|w| index_item(&w.conn, 1)).unwrap().unwrap();
        assert_eq!(index_rows(&store), 4);
    }

    /// Every malformed query is an error whose message says what is wrong and shows the syntax.
    #[test]
    fn malformed_queries_are_errors_with_a_message() {
        let long = "word ".repeat(41);
        let many = (0..13).map(|n| format!("w{n}")).collect::<Vec<_>>().join(" ");
        let cases: &[(&str, QueryError, &str)] = &[
            ("", QueryError::Empty, "empty"),
            ("   \t\n ", QueryError::Empty, "empty"),
            ("\u{1}\u{7f}", QueryError::Empty, "empty"),
            (&long, QueryError::TooLong, "longer than 200"),
            (&many, QueryError::TooManyTerms(13), "13 terms"),
            ("\"prime minister", QueryError::UnbalancedQuote, "not closed"),
            ("a \"b\" \"c", QueryError::UnbalancedQuote, "not closed"),
            ("-cricket -\"world cup\"", QueryError::OnlyExclusions, "only excludes"),
            ("OR india", QueryError::MisplacedOr, "between two terms"),
            ("india OR", QueryError::MisplacedOr, "between two terms"),
            ("india OR OR china", QueryError::MisplacedOr, "between two terms"),
            ("OR", QueryError::MisplacedOr, "between two terms"),
            ("india OR -china", QueryError::OrWithExclusion("`-china`".into()), "excluded term `-china`"),
            ("a*", QueryError::PrefixTooShort("`a*`".into()), "at least 2 letters"),
            ("al-q*", QueryError::PrefixTooShort("`al-q*`".into()), "too short a prefix"),
            ("india $$$", QueryError::NoLetters("`$$$`".into()), "`$$$` has no letters or digits"),
            ("*", QueryError::NoLetters("`*`".into()), "no letters"),
            ("\"\"", QueryError::NoLetters("`\"\"`".into()), "no letters"),
            ("india - china", QueryError::NoLetters("`-`".into()), "no letters"),
        ];
        for (q, want, says) in cases {
            let got = parse(q);
            assert_eq!(got.as_ref().err(), Some(want), "{q:?}");
            let msg = got.unwrap_err().to_string();
            assert!(msg.contains(says), "{q:?}: {msg}");
            assert!(msg.contains(SYNTAX), "{q:?}: {msg}");
        }
        assert!(parse(&"x".repeat(200)).is_ok(), "200 characters is allowed");
        assert!(parse(&(0..12).map(|n| format!("w{n}")).collect::<Vec<_>>().join(" ")).is_ok(), "12 terms too");
    }

    #[test]
    fn outlet_hosts_are_read_off_links() {
        let cases = [
            ("https://www.dawn.com/news/1850000/lavrov", Some("dawn.com")),
            ("HTTP://WWW.Geo.TV:8080?x=1", Some("geo.tv")),
            ("https://user:pw@www.bbc.co.uk#top", Some("bbc.co.uk")),
            ("https://bücher.de/a", Some("bücher.de")),
            ("https://news.test\\path", Some("news.test")),
            ("https://[::1]/x", None),
            ("ftp://files.test/a", None),
            ("/relative/link", None),
            ("https:///nohost", None),
        ];
        for (link, want) in cases {
            assert_eq!(link_host(link).as_deref(), want, "{link}");
        }
    }

    #[test]
    fn queries_become_quoted_fts5() {
        let cases = [
            ("Lavrov Pakistan", "(\"lavrov\" AND \"pakistan\")", "lavrov pakistan"),
            ("\"Prime Minister\" -cricket", "(\"prime minister\") NOT \"cricket\"", "\"prime minister\" -cricket"),
            (
                "india OR china OR nepal floods",
                "((\"india\" OR \"china\" OR \"nepal\") AND \"floods\")",
                "india OR china OR nepal floods",
            ),
            ("al-Qaeda U.S.", "(\"al qaeda\" AND \"u s\")", "\"al qaeda\" \"u s\""),
            ("minis* -\"world cup\"*", "(\"minis\" *) NOT \"world cup\" *", "minis* -\"world cup\"*"),
            ("ﬁrst", "(\"first\")", "first"),
            (
                "NEAR(a b) title:x ^start",
                "(\"near a\" AND \"b\" AND \"title x\" AND \"start\")",
                "\"near a\" b \"title x\" start",
            ),
            ("or and not", "(\"or\" AND \"and\" AND \"not\")", "or and not"),
        ];
        for (q, fts, shown) in cases {
            let parsed = parse(q).unwrap();
            assert_eq!(parsed.fts5(), fts, "{q:?}");
            assert_eq!(parsed.to_string(), shown, "{q:?}");
            assert_eq!(parse(shown).unwrap(), parsed, "the shown form means the same: {shown:?}");
        }
    }

    /// A database with the schema, in memory, and a few indexed items.
    fn memory_db() -> Connection {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn).unwrap();
        let conn = Connection::Lite(conn);
        conn.execute_batch(
            "INSERT INTO stories (id, first_seen, last_seen) VALUES (1, 0, 0);
             INSERT INTO items (id, title, summary, published, updated, first_seen, content_hash, story_id)
                 VALUES (1, 'near title x', '<p>quote \" star * caret ^ colon :</p>', 0, 0, 0, 0, 1);",
        )
        .unwrap();
        index_item(&conn, 1).unwrap();
        conn
    }

    /// True when `expr` is only quoted strings of words and the operators this module writes.
    fn only_quoted_words(expr: &str) -> bool {
        let mut rest = expr;
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                return true;
            }
            if let Some(r) = ["(", ")", "AND ", "OR ", "NOT ", "*"].iter().find_map(|op| rest.strip_prefix(op)) {
                rest = r;
                continue;
            }
            let Some(body) = rest.strip_prefix('"') else { return false };
            let Some(end) = body.find('"') else { return false };
            if !body[..end].split(' ').all(|w| WORD.find(w).is_some_and(|m| m.len() == w.len())) {
                return false;
            }
            rest = &body[end + 1..];
        }
    }

    fn search_is_clean(conn: &Connection, q: &str) {
        if let Ok(parsed) = parse(q) {
            let expr = parsed.fts5();
            assert!(only_quoted_words(&expr), "{q:?} -> {expr}");
            if let Err(e) = stories(conn, &parsed, 10, Duration::from_secs(10)) {
                panic!("{q:?} -> {expr}: {e}");
            }
        }
    }

    #[test]
    fn hostile_queries_never_reach_fts5_as_syntax() {
        let conn = memory_db();
        let kb10 = "\"NEAR(".repeat(2000);
        let hostile = [
            "\"",
            "\"\"\"",
            "NEAR(",
            "NEAR(a b, 3)",
            "*",
            "**",
            "a**",
            "title:x",
            "{title body}:x",
            "^",
            "^x",
            "x AND",
            "AND x",
            "NOT x",
            "x NOT y",
            "(x",
            "x)",
            "x + y",
            "\u{0}x\u{1b}[2J\u{7}",
            "x\u{0}y",
            "-",
            "--x",
            "-\"\"",
            "\"x\"\"y\"",
            "\"a\" OR \"b\"*",
            "ा",
            "\u{301}",
            &kb10,
            "near title x",
        ];
        for q in hostile {
            search_is_clean(&conn, q);
        }
        assert_eq!(stories(&conn, &parse("title:x").unwrap(), 10, Duration::from_secs(5)).unwrap(), [1]);
        assert_eq!(stories(&conn, &parse("NEAR(title x)").unwrap(), 10, Duration::from_secs(5)).unwrap(), [1]);
        assert_eq!(stories(&conn, &parse("\"x\"\"caret\"").unwrap(), 10, Duration::from_secs(5)).unwrap(), [1]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]
        #[test]
        fn any_text_parses_or_errs_and_searches_cleanly(q in "([\"*():^+\\-. a-zé中ا\u{0}\u{301}]|OR|AND|NOT|NEAR|title:){0,30}") {
            let conn = memory_db();
            search_is_clean(&conn, &q);
        }
    }

    #[test]
    fn slow_searches_are_interrupted_and_the_connection_stays_usable() {
        let conn = memory_db();
        // 60,000 distinct words sharing a prefix: the prefix query merges all their postings.
        conn.execute_batch(
            "WITH RECURSIVE n(x) AS (SELECT 10 UNION ALL SELECT x + 1 FROM n WHERE x < 60010)
             INSERT INTO item_search (rowid, title, body, outlets) SELECT x, 'wo' || x || ' common', 'wo' || (x * 7), '' FROM n;",
        )
        .unwrap();
        let q = parse("wo* common").unwrap();
        let started = std::time::Instant::now();
        assert!(stories(&conn, &q, 100, Duration::from_secs(30)).unwrap().is_empty(), "no stories behind these rows");
        let full = started.elapsed();
        assert!(full > Duration::from_millis(5), "the search must be slow enough to interrupt: {full:?}");
        let interrupted = stories(&conn, &q, 100, Duration::ZERO);
        assert!(matches!(interrupted, Err(SearchError::TooSlow)), "{interrupted:?}");
        // Nothing of the interrupt is left for the next statements on this connection.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(5));
            assert_eq!(conn.query_row("SELECT COUNT(*) FROM items", [], |r| r.get::<_, i64>(0)).unwrap(), 1);
            assert_eq!(stories(&conn, &parse("near").unwrap(), 10, Duration::from_secs(5)).unwrap(), [1]);
        }
        // A search that finishes in time is not interrupted, though its timer may fire late.
        for _ in 0..20 {
            assert_eq!(
                stories(&conn, &parse("caret").unwrap(), 10, Duration::from_micros(50))
                    .ok()
                    .map(|v| v.len())
                    .unwrap_or(1),
                1
            );
            assert_eq!(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).unwrap(), 1);
        }
        assert!(stories(&conn, &q, 0, Duration::ZERO).unwrap().is_empty(), "limit 0 asks for nothing");
    }
}
