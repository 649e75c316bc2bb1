//! `newsdesk eval stories`: replays labelled headlines through story clustering, exactly as
//! ingest would cluster them (same engine, same default parameters, same title cleanup, rows
//! in time order, nothing learned ahead), and scores the result when true labels are given.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::story::{bcubed_prf, pairwise_prf, read_csv, Article, Assignment, Features, StoryIndex, StoryParams};
use crate::normalize::text;

/// The result of one replay.
#[derive(Debug, Clone)]
pub struct Replay {
    /// `(ID, story)` for every row, in file order.
    pub rows: Vec<(String, u64)>,
    /// Quality figures, when the file has a `STORY` column.
    pub quality: Option<Quality>,
    /// Time spent clustering (parsing the CSV excluded).
    pub elapsed: Duration,
    /// With tracing on: one line per row in replay order (see [`trace_line`]).
    pub trace: Vec<String>,
}

/// Quality of a replay against true labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Quality {
    /// Pairwise precision, recall, F1.
    pub pairwise: (f64, f64, f64),
    /// B-cubed precision, recall, F1.
    pub bcubed: (f64, f64, f64),
    /// Predicted stories.
    pub predicted: usize,
    /// True stories.
    pub truth: usize,
    /// Rows labelled `singleton-...`: items of no shared story (unrelated headlines mixed into
    /// the stream, as most of real polling is). The figures above leave them out.
    pub singletons: usize,
    /// Of `singletons`: rows whose predicted story holds a row of another `PUBLISHER` (a false
    /// merge: an unrelated headline shown as "also reported by" someone else).
    pub false_merges: usize,
    /// Of `false_merges`: rows that ended up in a story with labelled rows.
    pub into_labelled: usize,
}

impl Quality {
    /// Share of singleton rows that were falsely merged (0 when there are none).
    pub fn false_merge_rate(&self) -> f64 {
        self.false_merges as f64 / self.singletons.max(1) as f64
    }
}

/// Label prefix of rows that belong to no shared story.
pub const SINGLETON_PREFIX: &str = "singleton-";

impl Replay {
    /// Items clustered per second.
    pub fn items_per_sec(&self) -> f64 {
        self.rows.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Replays a CSV with at least `ID`, `TITLE`, `URL`, `PUBLISHER`, `TIMESTAMP` (ms since the
/// epoch) in any order; `STORY` (optional) is only used for scoring; `SUMMARY` is optional.
///
/// `repeat` > 1 replays the file that many times, each copy with ids prefixed `k:` and times
/// shifted past the previous copy, to measure throughput on more items than one file holds.
///
/// `trace` records, per row, what it joined on or how close it came (slower; for tuning).
pub fn replay_csv(text_in: &str, params: StoryParams, repeat: usize, trace: bool) -> Result<Replay, String> {
    replay_csvs(&[text_in], params, repeat, trace)
}

/// [`replay_csv`] over the rows of several files (each with its own header, columns in any
/// order) as one stream, e.g. a labelled set and unrelated headlines mixed into it.
pub fn replay_csvs(texts: &[&str], params: StoryParams, repeat: usize, trace: bool) -> Result<Replay, String> {
    let mut header: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (k, text) in texts.iter().enumerate() {
        let mut file = read_csv(text).map_err(|e| format!("file {}: {e}", k + 1))?;
        if file.is_empty() {
            return Err(format!("file {}: empty CSV: no header row", k + 1));
        }
        let head = file.remove(0);
        if k == 0 {
            header = head;
            rows = file;
            continue;
        }
        // Later files are mapped onto the first one's columns by name.
        let key = |h: &str| h.trim().trim_start_matches('\u{feff}').to_ascii_uppercase();
        let map: Vec<Option<usize>> = header.iter().map(|h| head.iter().position(|x| key(x) == key(h))).collect();
        for r in file {
            rows.push(map.iter().map(|i| i.and_then(|i| r.get(i).cloned()).unwrap_or_default()).collect());
        }
    }
    let body = if repeat > 1 { repeated(&header, rows, repeat)? } else { rows };
    replay_rows(&header, &body, params, trace)
}

fn repeated(header: &[String], rows: Vec<Vec<String>>, repeat: usize) -> Result<Vec<Vec<String>>, String> {
    let find = |name: &str| header.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let story_c = find("STORY");
    let (Some(id_c), Some(ts_c)) = (find("ID"), find("TIMESTAMP")) else {
        return Err("--repeat needs ID and TIMESTAMP columns".into());
    };
    let times: Vec<i64> = rows.iter().filter_map(|r| r.get(ts_c)?.trim().parse().ok()).collect();
    let span = times.iter().max().unwrap_or(&0) - times.iter().min().unwrap_or(&0);
    let shift = span + 7 * 86_400_000; // past the quiet period, as a new week of news
    let mut out = Vec::with_capacity(rows.len() * repeat);
    for k in 0..repeat {
        for r in &rows {
            let mut r = r.clone();
            if k > 0 {
                if let Some(id) = r.get_mut(id_c) {
                    *id = format!("{k}:{id}");
                }
                if let Some(label) = story_c.and_then(|c| r.get_mut(c)) {
                    *label = format!("{k}:{label}");
                }
                if let Some(ts) = r.get_mut(ts_c) {
                    if let Ok(t) = ts.trim().parse::<i64>() {
                        *ts = (t + shift * k as i64).to_string();
                    }
                }
            }
            out.push(r);
        }
    }
    Ok(out)
}

fn replay_rows(header: &[String], body: &[Vec<String>], params: StoryParams, trace: bool) -> Result<Replay, String> {
    let col =
        |name: &str| header.iter().position(|h| h.trim().trim_start_matches('\u{feff}').eq_ignore_ascii_case(name));
    let need = |name: &str| {
        col(name).ok_or(format!("the header has no {name} column (need ID, TITLE, URL, PUBLISHER, TIMESTAMP)"))
    };
    let (id_c, title_c, url_c, pub_c, ts_c) =
        (need("ID")?, need("TITLE")?, need("URL")?, need("PUBLISHER")?, need("TIMESTAMP")?);
    let story_c = col("STORY");
    let summary_c = col("SUMMARY");
    let mut order = Vec::with_capacity(body.len());
    for (n, r) in body.iter().enumerate() {
        if r.len() == 1 && r[0].trim().is_empty() {
            continue;
        }
        let get = |i: usize| r.get(i).map_or("", String::as_str);
        let ts: i64 = get(ts_c)
            .trim()
            .parse()
            .map_err(|_| format!("line {}: TIMESTAMP {:?} is not milliseconds", n + 2, get(ts_c)))?;
        order.push((ts, n));
    }
    // Stable: rows with the same timestamp keep file order.
    order.sort_by_key(|x| x.0);
    let mut engine = StoryIndex::new(params);
    engine.trace = trace;
    let mut lines = Vec::new();
    let mut story_of = vec![0u64; body.len()];
    let titles: Vec<String> = body.iter().map(|r| text::title(r.get(title_c).map_or("", String::as_str))).collect();
    let started = Instant::now();
    for (seq, (ts, n)) in order.iter().enumerate() {
        let r = &body[*n];
        let get = |i: usize| r.get(i).map_or("", String::as_str);
        let art = Article {
            title: &titles[*n],
            summary: summary_c.map_or("", get),
            url: get(url_c),
            outlet: get(pub_c),
            outlet_key: "",
            time: ts / 1000,
        };
        let a = engine.assign_as(&art, seq as u64);
        story_of[*n] = a.story;
        if trace {
            let label = story_c.map_or("", get);
            lines.push(trace_line(get(id_c), label, &art, &a, &engine.params));
        }
    }
    let elapsed = started.elapsed();
    let used: HashSet<usize> = order.iter().map(|x| x.1).collect();
    let mut out = Vec::with_capacity(order.len());
    // (story, label, publisher) of every used row, for scoring.
    let mut scored: Vec<(u64, &str, &str)> = Vec::new();
    for (n, r) in body.iter().enumerate().filter(|(n, _)| used.contains(n)) {
        let story = engine.resolve(story_of[n]);
        out.push((r.get(id_c).cloned().unwrap_or_default(), story));
        if let Some(sc) = story_c {
            let get = |i: usize| r.get(i).map_or("", String::as_str);
            scored.push((story, get(sc), get(pub_c)));
        }
    }
    let quality = story_c.map(|_| score(&scored));
    Ok(Replay { rows: out, quality, elapsed, trace: lines })
}

/// Scores `(predicted story, true label, publisher)` rows: pairwise and B-cubed over the
/// labelled rows, and the false-merge rate of the `singleton-` rows.
fn score(rows: &[(u64, &str, &str)]) -> Quality {
    let is_single = |label: &str| label.starts_with(SINGLETON_PREFIX);
    let (mut pred, mut truth) = (Vec::new(), Vec::new());
    for &(story, label, _) in rows.iter().filter(|r| !is_single(r.1)) {
        pred.push(story);
        truth.push(label.to_string());
    }
    // Per predicted story: its publishers, and whether it holds a labelled row.
    let mut members: HashMap<u64, (HashSet<&str>, bool)> = HashMap::new();
    for &(story, label, publisher) in rows {
        let e = members.entry(story).or_default();
        e.0.insert(publisher);
        e.1 |= !is_single(label);
    }
    let (mut singletons, mut false_merges, mut into_labelled) = (0, 0, 0);
    for &(story, _, publisher) in rows.iter().filter(|r| is_single(r.1)) {
        singletons += 1;
        let (pubs, labelled) = &members[&story];
        if pubs.iter().any(|p| *p != publisher) {
            false_merges += 1;
            into_labelled += usize::from(*labelled);
        }
    }
    Quality {
        pairwise: pairwise_prf(&pred, &truth),
        bcubed: bcubed_prf(&pred, &truth),
        predicted: pred.iter().collect::<HashSet<_>>().len(),
        truth: truth.iter().collect::<HashSet<_>>().len(),
        singletons,
        false_merges,
        into_labelled,
    }
}

/// One tab-separated trace line: id, label, outlet, title, `joined`/`opened`, story (after
/// merges), the story it joined or came closest to (before merges), rule,
/// similarity, threshold, shared terms with their contributions, shared evidence words,
/// stories merged into the story by this row.
pub fn trace_line(id: &str, label: &str, art: &Article, a: &Assignment, params: &StoryParams) -> String {
    let names = Features::names(art, params);
    let name = |t: &u64| names.get(t).cloned().unwrap_or_else(|| format!("#{t:x}"));
    let (rule, sim, thr, shared, ev) = match &a.why {
        Some(w) => (
            format!("{} ({}/{})", w.rule.name(), w.size.0, w.size.1),
            w.similarity,
            w.threshold,
            w.shared.iter().map(|(t, c)| format!("{}:{c:.3}", name(t))).collect::<Vec<_>>().join(" "),
            w.evidence.iter().map(|(t, idf)| format!("{}:{idf:.1}", name(t))).collect::<Vec<_>>().join(" "),
        ),
        None => ("-".to_string(), 0.0, 0.0, String::new(), String::new()),
    };
    let what = if a.opened { "opened" } else { "joined" };
    let near = a.why.as_ref().map_or(0, |w| w.story);
    format!(
        "{id}\t{label}\t{}\t{}\t{what}\t{}\t{near}\t{rule}\t{sim:.3}\t{thr:.3}\t{shared}\t{ev}\t{:?}",
        art.outlet, art.title, a.story, a.merged
    )
}
