//! `newsdesk eval stories`: replays labelled headlines through story clustering, exactly as
//! ingest would cluster them (same engine, same default parameters, same title cleanup, rows
//! in time order, nothing learned ahead), and scores the result when true labels are given.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::story::{bcubed_prf, pairwise_prf, read_csv, Article, StoryIndex, StoryParams};
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
}

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
pub fn replay_csv(text_in: &str, params: StoryParams, repeat: usize) -> Result<Replay, String> {
    let mut rows = read_csv(text_in)?;
    if rows.is_empty() {
        return Err("empty CSV: no header row".into());
    }
    let header = rows.remove(0);
    let body = if repeat > 1 { repeated(&header, rows, repeat)? } else { rows };
    replay_rows(&header, &body, params)
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

fn replay_rows(header: &[String], body: &[Vec<String>], params: StoryParams) -> Result<Replay, String> {
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
            time: ts / 1000,
        };
        story_of[*n] = engine.assign_as(&art, seq as u64).story;
    }
    let elapsed = started.elapsed();
    let used: HashSet<usize> = order.iter().map(|x| x.1).collect();
    let mut out = Vec::with_capacity(order.len());
    let mut pred = Vec::new();
    let mut truth = Vec::new();
    for (n, r) in body.iter().enumerate().filter(|(n, _)| used.contains(n)) {
        let story = engine.resolve(story_of[n]);
        out.push((r.get(id_c).cloned().unwrap_or_default(), story));
        if let Some(sc) = story_c {
            pred.push(story);
            truth.push(r.get(sc).cloned().unwrap_or_default());
        }
    }
    let quality = story_c.map(|_| {
        let predicted = pred.iter().collect::<HashSet<_>>().len();
        let mut t: HashMap<&str, ()> = HashMap::new();
        for s in &truth {
            t.insert(s, ());
        }
        Quality { pairwise: pairwise_prf(&pred, &truth), bcubed: bcubed_prf(&pred, &truth), predicted, truth: t.len() }
    });
    Ok(Replay { rows: out, quality, elapsed })
}
