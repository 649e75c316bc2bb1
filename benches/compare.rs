//! Side by side: newsdesk, newsboat, sfeed and Python feedparser, measured in the same run on
//! the same work, printed as one table.
//!
//! One farm ([`common::farm`]: 1,000 feeds x 30 items of RSS 2.0 and Atom, ~76 MB, with
//! `ETag`/`Last-Modified` and 304s) is generated once and served from one local server
//! (127.0.0.1). Each tool gets its own empty state and the same feed list, at the same
//! concurrency, and is measured phase by phase (every tool's cold poll, then every tool's
//! warm poll, ...) so that one tool does not get a quiet machine and another a busy one:
//!
//! - **cold**: empty state, every feed new (every request should be a 200);
//! - **warm**: nothing changed since the cold poll: a reader that keeps the validators sends
//!   conditional requests and gets 304s; the farm's counters show what each tool sent;
//! - **warm again**: a second unchanged poll (newsboat 2.21 stores a feed's validators only
//!   from its second download on, so it needs this one to reach 304s);
//! - **parse**: the same 1,000 documents parsed from local files on one core, by CPU time:
//!   newsdesk's `parse_feed` (parse, normalise, sanitise; in this process), `sfeed` (the C
//!   parser, every document through one process), `feedparser.parse` (in a Python loop);
//!   newsboat has no parse-only entry point, so its figure is a `reload` of `file://` URLs
//!   with one thread, which includes storing into its cache.
//!
//! For every poll: wall time, CPU time (user + sys of the whole process tree), peak RSS (of
//! the largest process, from GNU time), requests by status from the farm, and items stored.
//!
//! ```sh
//! bench/compare.sh                                   # installs the tools, then runs this
//! cargo build --release && cargo bench --bench compare
//! NEWSDESK_BENCH_FEEDS=100 cargo bench --bench compare               # smaller farm
//! NEWSDESK_COMPARE_TOOLS=newsdesk,sfeed cargo bench --bench compare  # some tools only
//! ```
//!
//! Environment: `NEWSDESK_BENCH_FEEDS` (1000), `NEWSDESK_BENCH_ITEMS` (30),
//! `NEWSDESK_BENCH_SEED` (1), `NEWSDESK_BIN`, `NEWSDESK_BENCH_KEEP=1` (as in the ingest
//! bench), `NEWSDESK_BENCH_METER=proc` (sample /proc instead of using GNU time);
//! `NEWSDESK_COMPARE_CONCURRENCY` (32: polls in flight, for every tool),
//! `NEWSDESK_COMPARE_TOOLS` (comma-separated subset of `newsdesk,newsboat,sfeed,sfeed-ims,
//! feedparser`), `NEWSDESK_COMPARE_PYTHON` (`python3`). A tool that is not installed gets a
//! "not installed" row; the bench fails only when newsdesk itself cannot run.

mod common;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::farm::{Counts, Farm};
use common::proc::{children_cpu_secs, thread_self_cpu_secs};
use common::util::{env_num, newsdesk_bin, tail, TempDir};

/// A poll still going after this is killed (and its row says so).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Parse passes are repeated until they add up to this much CPU time, so that fast parsers
/// are not measured on one 10 ms clock tick.
const PARSE_MIN_CPU_S: f64 = 2.0;
/// The feedparser side, written into the work directory.
const FEEDPARSER_PY: &str = include_str!("../bench/feedparser_poll.py");
/// How often a process tree is sampled for its summed RSS. Each sample scans /proc, which
/// costs a few ms of CPU on the same 2 cores: sampling is kept coarse so it does not slow
/// the tool it measures.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Newsdesk,
    Newsboat,
    /// `sfeed_update` as shipped: its `fetch()` is a plain `curl`, no validators.
    Sfeed,
    /// `sfeed_update` with the `fetch()` override an sfeed user would write to get 304s:
    /// `curl -z FEEDFILE` sends `If-Modified-Since` from the feed file's mtime.
    SfeedIms,
    Feedparser,
}

impl Kind {
    const ALL: [Kind; 5] = [Kind::Newsdesk, Kind::Newsboat, Kind::Sfeed, Kind::SfeedIms, Kind::Feedparser];

    fn key(self) -> &'static str {
        match self {
            Kind::Newsdesk => "newsdesk",
            Kind::Newsboat => "newsboat",
            Kind::Sfeed => "sfeed",
            Kind::SfeedIms => "sfeed-ims",
            Kind::Feedparser => "feedparser",
        }
    }
}

/// One contestant: how to run it, or why it cannot run.
struct Tool {
    kind: Kind,
    /// Name and version for the table.
    label: String,
    /// Why it is not run ("not installed: ...").
    missing: Option<String>,
    /// Its own state directory.
    dir: PathBuf,
}

/// One measured poll.
struct Poll {
    m: Measured,
    requests: Counts,
    items: Option<u64>,
    /// What went wrong, if anything (exit status, timeout); the numbers are still shown.
    problem: Option<String>,
}

/// One parse measurement.
struct Parse {
    bytes: u64,
    items: u64,
    cpu: f64,
    passes: u32,
}

/// The polls, in this order.
const PHASES: [&str; 3] = ["cold", "warm", "warm again"];

#[derive(Default)]
struct Results {
    /// One per [`PHASES`]; `None` when the poll could not be started.
    polls: [Option<Poll>; 3],
    parse: Option<Result<Parse, String>>,
}

fn main() -> ExitCode {
    let feeds = env_num("NEWSDESK_BENCH_FEEDS", 1000) as usize;
    let items = env_num("NEWSDESK_BENCH_ITEMS", 30) as usize;
    let seed = env_num("NEWSDESK_BENCH_SEED", 1);
    let concurrency = env_num("NEWSDESK_COMPARE_CONCURRENCY", 32).max(1) as usize;
    if feeds == 0 || items == 0 {
        eprintln!("compare bench: NEWSDESK_BENCH_FEEDS and NEWSDESK_BENCH_ITEMS must be positive");
        return ExitCode::FAILURE;
    }
    let tmp = match TempDir::new("compare") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("compare bench: cannot create a temp dir: {e}");
            return ExitCode::FAILURE;
        }
    };
    match bench(feeds, items, seed, concurrency, &tmp.path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ncompare bench FAILED: {e}");
            if !tmp.keep {
                eprintln!("(set NEWSDESK_BENCH_KEEP=1 to keep the configs, states and logs)");
            }
            ExitCode::FAILURE
        }
    }
}

fn bench(feeds: usize, items: usize, seed: u64, concurrency: usize, dir: &Path) -> Result<(), String> {
    let newsdesk = newsdesk_bin()?;
    let time = gnu_time();
    let python = std::env::var_os("NEWSDESK_COMPARE_PYTHON").unwrap_or_else(|| "python3".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let load_before = loadavg();

    let t = Instant::now();
    let farm = Farm::new(feeds, items, seed);
    let generated = t.elapsed();
    let total = farm.total_bytes();
    let (addr, server) = farm.serve().map_err(|e| format!("starting the feed farm: {e}"))?;
    let want_items = (feeds * items) as u64;

    let selected: Vec<Kind> = match std::env::var("NEWSDESK_COMPARE_TOOLS") {
        Ok(list) => {
            let keys: Vec<&str> = list.split(',').map(str::trim).filter(|k| !k.is_empty()).collect();
            if let Some(bad) = keys.iter().find(|k| !Kind::ALL.iter().any(|kind| kind.key() == **k)) {
                return Err(format!("NEWSDESK_COMPARE_TOOLS: unknown tool {bad:?}"));
            }
            Kind::ALL.into_iter().filter(|k| keys.contains(&k.key())).collect()
        }
        Err(_) => Kind::ALL.to_vec(),
    };
    let mut tools: Vec<Tool> = selected.iter().map(|&k| discover(k, &newsdesk, &python, dir)).collect();
    for tool in tools.iter_mut().filter(|t| t.missing.is_none()) {
        if let Err(e) = setup(tool, &farm, &newsdesk, concurrency) {
            tool.missing = Some(format!("setup failed: {e}"));
        }
    }
    if let Some(why) = tools.iter().find(|t| t.kind == Kind::Newsdesk).and_then(|t| t.missing.as_ref()) {
        return Err(format!("newsdesk itself cannot run: {why}"));
    }

    // The documents as files, for the parse phase (the bytes the server sends).
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).map_err(|e| format!("{}: {e}", docs.display()))?;
    let mut all = Vec::with_capacity(total as usize);
    for i in 0..feeds {
        let body = farm.body(i);
        std::fs::write(docs.join(format!("{i:04}.xml")), &*body).map_err(|e| format!("writing docs: {e}"))?;
        all.extend_from_slice(&body);
    }
    let all_path = dir.join("all-docs.xml");
    std::fs::write(&all_path, &all).map_err(|e| format!("writing {}: {e}", all_path.display()))?;
    drop(all);

    eprintln!(
        "farm: {feeds} feeds x {items} items, {} in {:.2} s, serving http://{addr}/feed/N.xml\n\
         meter: {}\nconcurrency: {concurrency} for every tool\nload average before: {load_before}\n",
        mb(total),
        generated.as_secs_f64(),
        match &time {
            Some(p) => format!("GNU time ({}) for CPU and peak RSS; wall from the bench", p.display()),
            None => "no GNU time: /proc sampling for peak RSS, reaped children's CPU from /proc/self/stat".into(),
        }
    );
    for t in &tools {
        match &t.missing {
            None => eprintln!("{:<11} {}", t.kind.key(), t.label),
            Some(why) => eprintln!("{:<11} {why}", t.kind.key()),
        }
    }
    eprintln!();

    let mut results: HashMap<Kind, Results> = HashMap::new();
    for (n, phase) in PHASES.into_iter().enumerate() {
        for tool in tools.iter().filter(|t| t.missing.is_none()) {
            let poll = run_poll(tool, phase, &farm, time.as_deref(), &newsdesk, &python, concurrency);
            match &poll {
                Ok(p) => eprintln!(
                    "{phase:<10} {:<11} {:>7.2} s wall {:>7.2} s cpu {:>7.1} MB peak   {:<24} items {}{}",
                    tool.kind.key(),
                    p.m.wall.as_secs_f64(),
                    p.m.user + p.m.sys,
                    p.m.peak_rss_kb as f64 * 1024.0 / 1e6,
                    statuses(&p.requests),
                    p.items.map_or("?".into(), |n| n.to_string()),
                    p.problem.as_ref().map(|w| format!("  ({w})")).unwrap_or_default()
                ),
                Err(e) => eprintln!("{phase:<10} {:<11} FAILED: {e}", tool.kind.key()),
            }
            results.entry(tool.kind).or_default().polls[n] = poll.ok();
        }
    }

    // Parse, one core each, from local files.
    for tool in tools.iter().filter(|t| t.missing.is_none()) {
        let parse = match tool.kind {
            Kind::Newsdesk => Ok(parse_newsdesk(&farm)),
            Kind::Newsboat => parse_newsboat(tool, &docs, dir, time.as_deref()),
            // The same parser as the sfeed row: not measured twice.
            Kind::SfeedIms if tools.iter().any(|t| t.kind == Kind::Sfeed && t.missing.is_none()) => continue,
            Kind::Sfeed | Kind::SfeedIms => parse_sfeed(&all_path, dir, time.as_deref(), want_items),
            Kind::Feedparser => parse_feedparser(tool, &python, &docs, time.as_deref()),
        };
        match &parse {
            Ok(p) => eprintln!(
                "parse      {:<11} {:>7.2} s cpu for {} pass(es) of {}: {:.1} MB/s, {} items per pass",
                tool.kind.key(),
                p.cpu,
                p.passes,
                mb(p.bytes / u64::from(p.passes)),
                p.bytes as f64 / 1e6 / p.cpu,
                p.items / u64::from(p.passes)
            ),
            Err(e) => eprintln!("parse      {:<11} FAILED: {e}", tool.kind.key()),
        }
        results.entry(tool.kind).or_default().parse = Some(parse);
    }
    drop(server);
    let load_after = loadavg();

    print_table(&tools, &results, feeds, items, total, cores, concurrency, &load_before, &load_after);
    Ok(())
}

// ------------------------------------------------------------------------------- the tools

/// Finds a tool and its version; `missing` says why it cannot run.
fn discover(kind: Kind, newsdesk: &Path, python: &OsString, dir: &Path) -> Tool {
    let tool_dir = dir.join(kind.key());
    let mut tool = Tool { kind, label: kind.key().into(), missing: None, dir: tool_dir };
    let first_line = |out: std::process::Output| {
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().next().unwrap_or("").trim().to_string()
    };
    match kind {
        Kind::Newsdesk => match Command::new(newsdesk).arg("--version").output() {
            Ok(o) if o.status.success() => tool.label = first_line(o),
            _ => tool.missing = Some(format!("cannot run {}", newsdesk.display())),
        },
        Kind::Newsboat => match Command::new("newsboat").arg("-v").output() {
            // "newsboat 2.21.0 - https://newsboat.org/"
            Ok(o) if o.status.success() => {
                tool.label = first_line(o).split(" - ").next().unwrap_or("newsboat").to_string();
            }
            _ => tool.missing = Some("not installed (apt-get install newsboat)".into()),
        },
        Kind::Sfeed | Kind::SfeedIms => {
            let absent: Vec<&str> =
                ["sfeed_update", "sfeed", "curl"].into_iter().filter(|p| which(p).is_none()).collect();
            if absent.is_empty() {
                // sfeed has no --version; ask the package manager, if there is one.
                let version = Command::new("dpkg-query")
                    .args(["-W", "-f", "${Version}", "sfeed"])
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                    .unwrap_or_default();
                tool.label = format!("sfeed {version}").trim().to_string();
                if kind == Kind::SfeedIms {
                    tool.label.push_str(" + curl -z");
                }
            } else {
                tool.missing =
                    Some(format!("not installed ({} missing: apt-get install sfeed curl)", absent.join(", ")));
            }
        }
        Kind::Feedparser => {
            let out = Command::new(python)
                .args(["-c", "import feedparser, sys; print(feedparser.__version__, sys.version.split()[0])"])
                .output();
            match out {
                Ok(o) if o.status.success() => {
                    let line = first_line(o);
                    let mut parts = line.split_whitespace();
                    let (fp, py) = (parts.next().unwrap_or("?"), parts.next().unwrap_or("?"));
                    tool.label = format!("feedparser {fp} (Python {py})");
                }
                Ok(_) => tool.missing = Some("not installed (pip install feedparser)".into()),
                Err(_) => tool.missing = Some(format!("not installed ({} not found)", python.to_string_lossy())),
            }
        }
    }
    tool
}

/// Writes a tool's config for the farm: the same feed list and concurrency for all.
fn setup(tool: &Tool, farm: &Farm, newsdesk: &Path, concurrency: usize) -> Result<(), String> {
    let d = &tool.dir;
    std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    let write = |name: &str, text: &str| {
        std::fs::write(d.join(name), text).map_err(|e| format!("writing {}: {e}", d.join(name).display()))
    };
    let urls: String = (0..farm.feeds()).map(|i| farm.url(i).unwrap_or_default() + "\n").collect();
    match tool.kind {
        Kind::Newsdesk => {
            // All farm feeds share one host, so per_host is raised to the global limit (as
            // the ingest bench does); otherwise the politeness limit of 2 would be measured.
            let keys = format!("concurrency = {concurrency}\nper_host = {concurrency}\n");
            farm.write_config(&d.join("feeds.toml"), &d.join("newsdesk.db"), &keys).map_err(|e| e.to_string())?;
            let check = Command::new(newsdesk)
                .arg("--config")
                .arg(d.join("feeds.toml"))
                .arg("check")
                .output()
                .map_err(|e| e.to_string())?;
            if !check.status.success() {
                return Err(format!("`newsdesk check`: {}", String::from_utf8_lossy(&check.stdout)));
            }
        }
        Kind::Newsboat => {
            write("urls", &urls)?;
            write("config", &format!("reload-threads {concurrency}\n"))?;
        }
        Kind::Sfeed | Kind::SfeedIms => {
            let mut rc = String::new();
            let _ = writeln!(rc, "# sfeedrc for the compare bench: {} farm feeds", farm.feeds());
            let _ = writeln!(rc, "sfeedpath=\"{}\"", d.join("feeds").display());
            // sfeed 1.7 runs the feeds in batches of maxjobs (it waits for a whole batch
            // before starting the next), not a rolling pool.
            let _ = writeln!(rc, "maxjobs={concurrency}");
            if tool.kind == Kind::SfeedIms {
                // The shipped fetch() plus `-z FEEDFILE` (If-Modified-Since from its mtime)
                // once the feed file holds items: sfeed_update touches an empty file before
                // the first fetch, and its mtime would make the cold poll a 304.
                rc.push_str(concat!(
                    "fetch() {\n",
                    "\tif [ -s \"$3\" ]; then\n",
                    "\t\tcurl -L --max-redirs 0 -H \"User-Agent:\" -f -s -m 15 -z \"$3\" \"$2\" 2>/dev/null\n",
                    "\telse\n",
                    "\t\tcurl -L --max-redirs 0 -H \"User-Agent:\" -f -s -m 15 \"$2\" 2>/dev/null\n",
                    "\tfi\n",
                    "}\n",
                ));
            }
            rc.push_str("feeds() {\n");
            for i in 0..farm.feeds() {
                let _ = writeln!(rc, "\tfeed \"farm-{i:04}\" \"{}\"", farm.url(i).unwrap_or_default());
            }
            rc.push_str("}\n");
            write("sfeedrc", &rc)?;
        }
        Kind::Feedparser => {
            write("urls", &urls)?;
            write("feedparser_poll.py", FEEDPARSER_PY)?;
        }
    }
    Ok(())
}

/// The program and arguments of one poll (`run_measured` adds `HOME` and the directory).
fn poll_command(tool: &Tool, newsdesk: &Path, python: &OsString, concurrency: usize) -> (OsString, Vec<OsString>) {
    let d = &tool.dir;
    let p = |name: &str| d.join(name).into_os_string();
    match tool.kind {
        Kind::Newsdesk => (newsdesk.into(), vec!["--config".into(), p("feeds.toml"), "fetch".into()]),
        Kind::Newsboat => (
            "newsboat".into(),
            vec![
                "-u".into(),
                p("urls"),
                "-c".into(),
                p("cache.db"),
                "-C".into(),
                p("config"),
                "-x".into(),
                "reload".into(),
            ],
        ),
        Kind::Sfeed | Kind::SfeedIms => ("sfeed_update".into(), vec![p("sfeedrc")]),
        Kind::Feedparser => (
            python.clone(),
            vec![p("feedparser_poll.py"), "poll".into(), p("state.db"), p("urls"), concurrency.to_string().into()],
        ),
    }
}

fn run_poll(
    tool: &Tool,
    phase: &str,
    farm: &Farm,
    time: Option<&Path>,
    newsdesk: &Path,
    python: &OsString,
    concurrency: usize,
) -> Result<Poll, String> {
    let (program, args) = poll_command(tool, newsdesk, python, concurrency);
    let label = format!("{}-{}", tool.kind.key(), phase.replace(' ', "-"));
    let before = farm.counts();
    let m = run_measured(time, &program, &args, &tool.dir, &tool.dir, &label, None)?;
    let requests = farm.counts() - before;
    let items = stored_items(tool).ok();
    let problem = if m.timed_out {
        Some(format!("killed after {RUN_TIMEOUT:?}"))
    } else if !m.status.success() {
        Some(format!("exit {}: {}", m.status, tail(&m.stderr, 3).replace('\n', " | ")))
    } else if requests.ok + requests.not_modified != farm.feeds() as u64 {
        Some(format!("{} requests answered 200 or 304 for {} feeds", requests.ok + requests.not_modified, farm.feeds()))
    } else {
        None
    };
    Ok(Poll { m, requests, items, problem })
}

/// Items in a tool's store after a poll.
fn stored_items(tool: &Tool) -> Result<u64, String> {
    let d = &tool.dir;
    match tool.kind {
        Kind::Newsdesk => count(&d.join("newsdesk.db"), "SELECT COUNT(*) FROM items"),
        Kind::Newsboat => count(&d.join("cache.db"), "SELECT COUNT(*) FROM rss_item"),
        Kind::Feedparser => count(&d.join("state.db"), "SELECT COUNT(*) FROM entries"),
        // One TSV line per item, one file per feed.
        Kind::Sfeed | Kind::SfeedIms => {
            let mut n = 0;
            for entry in std::fs::read_dir(d.join("feeds")).map_err(|e| e.to_string())? {
                let path = entry.map_err(|e| e.to_string())?.path();
                n += std::fs::read(&path).map_err(|e| e.to_string())?.iter().filter(|&&b| b == b'\n').count() as u64;
            }
            Ok(n)
        }
    }
}

fn count(db: &Path, sql: &str) -> Result<u64, String> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("opening {} read-only: {e}", db.display()))?;
    conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map(|n| n as u64).map_err(|e| format!("{sql}: {e}"))
}

// ------------------------------------------------------------------------------- parse

/// newsdesk's parse step (`parse_feed`: feed-rs, dates, absolute links, plain-text titles,
/// sanitised HTML) on this thread, over the documents in memory.
fn parse_newsdesk(farm: &Farm) -> Parse {
    let bodies: Vec<_> = (0..farm.feeds()).map(|i| farm.body(i)).collect();
    let bases: Vec<url::Url> = (0..farm.feeds())
        .map(|i| url::Url::parse(&farm.url(i).unwrap_or_default()).expect("farm URLs are valid"))
        .collect();
    let cpu0 = thread_self_cpu_secs();
    let mut p = Parse { bytes: 0, items: 0, cpu: 0.0, passes: 0 };
    while p.passes == 0 || p.cpu < PARSE_MIN_CPU_S {
        let now = chrono::Utc::now();
        for (i, body) in bodies.iter().enumerate() {
            let ct = farm.format(i).content_type();
            // A document that does not parse counts its bytes but no items: it shows.
            if let Ok(feed) = newsdesk::parse::parse_feed(body, Some(ct), &bases[i], 1000, now) {
                p.items += feed.items.len() as u64;
            }
            p.bytes += body.len() as u64;
        }
        p.passes += 1;
        p.cpu = thread_self_cpu_secs() - cpu0;
    }
    p
}

/// `sfeed` reads every document from one stream: it emits an item at each closing
/// `</item>`/`</entry>` whatever surrounds it, so the concatenation gives the same lines as
/// one process per file (checked by the item count) without timing 1,000 process starts.
fn parse_sfeed(all: &Path, dir: &Path, time: Option<&Path>, want_items: u64) -> Result<Parse, String> {
    let bytes = std::fs::metadata(all).map_err(|e| e.to_string())?.len();
    let out = dir.join("sfeed-parse.tsv");
    let mut p = Parse { bytes: 0, items: 0, cpu: 0.0, passes: 0 };
    while p.passes == 0 || p.cpu < PARSE_MIN_CPU_S {
        let m = run_measured(
            time,
            &"sfeed".into(),
            &["http://127.0.0.1/".into()],
            dir,
            dir,
            "sfeed-parse",
            Some((all, &out)),
        )?;
        if !m.status.success() {
            return Err(format!("sfeed exited with {}", m.status));
        }
        let lines = std::fs::read(&out).map_err(|e| e.to_string())?.iter().filter(|&&b| b == b'\n').count() as u64;
        if lines != want_items {
            return Err(format!("sfeed gave {lines} items for {want_items}"));
        }
        p.items += lines;
        p.bytes += bytes;
        p.cpu += m.user + m.sys;
        p.passes += 1;
    }
    Ok(p)
}

/// newsboat has no parse-only mode: `reload` of `file://` URLs with one thread into a fresh
/// cache (parse and store, no network).
fn parse_newsboat(tool: &Tool, docs: &Path, dir: &Path, time: Option<&Path>) -> Result<Parse, String> {
    let d = dir.join("newsboat-files");
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    let mut urls = String::new();
    let mut bytes = 0;
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(docs).map_err(|e| e.to_string())?.flatten().map(|e| e.path()).collect();
    names.sort();
    for path in &names {
        bytes += std::fs::metadata(path).map_err(|e| e.to_string())?.len();
        let _ = writeln!(urls, "file://{}", path.display());
    }
    std::fs::write(d.join("urls"), urls).map_err(|e| e.to_string())?;
    std::fs::write(d.join("config"), "reload-threads 1\n").map_err(|e| e.to_string())?;
    let args: Vec<OsString> = vec![
        "-u".into(),
        d.join("urls").into(),
        "-c".into(),
        d.join("cache.db").into(),
        "-C".into(),
        d.join("config").into(),
        "-x".into(),
        "reload".into(),
    ];
    let m = run_measured(time, &"newsboat".into(), &args, &d, &tool.dir, "newsboat-parse", None)?;
    if !m.status.success() || m.timed_out {
        return Err(format!("newsboat exited with {}", m.status));
    }
    let items = count(&d.join("cache.db"), "SELECT COUNT(*) FROM rss_item")?;
    Ok(Parse { bytes, items, cpu: m.user + m.sys, passes: 1 })
}

/// `feedparser.parse` over every document, timed inside Python (parsing only).
fn parse_feedparser(tool: &Tool, python: &OsString, docs: &Path, time: Option<&Path>) -> Result<Parse, String> {
    let args: Vec<OsString> = vec![tool.dir.join("feedparser_poll.py").into(), "parse".into(), docs.into()];
    let m = run_measured(time, python, &args, &tool.dir, &tool.dir, "feedparser-parse", None)?;
    if !m.status.success() || m.timed_out {
        return Err(format!("exit {}: {}", m.status, tail(&m.stderr, 3)));
    }
    let v: serde_json::Value = serde_json::from_str(m.stdout.trim()).map_err(|e| format!("{e}: {:?}", m.stdout))?;
    let num = |k: &str| v.get(k).and_then(serde_json::Value::as_f64).ok_or_else(|| format!("no {k} in {v}"));
    Ok(Parse { bytes: num("bytes")? as u64, items: num("entries")? as u64, cpu: num("cpu_s")?, passes: 1 })
}

// ------------------------------------------------------------------------------- the table

#[allow(clippy::too_many_arguments)]
fn print_table(
    tools: &[Tool],
    results: &HashMap<Kind, Results>,
    feeds: usize,
    items: usize,
    total: u64,
    cores: usize,
    concurrency: usize,
    load_before: &str,
    load_after: &str,
) {
    let want = (feeds * items) as u64;
    println!(
        "Side by side: {feeds} feeds x {items} items ({}, RSS 2.0 + Atom) from one local server, {cores} cores, \
         {concurrency} polls in flight for every tool",
        mb(total)
    );
    println!();
    println!(
        "| tool | cold wall | cold CPU | warm wall | warm requests | warm again | requests | parse, 1 core | \
         peak RSS | items |"
    );
    println!("|---|---:|---:|---:|---|---:|---|---:|---:|---:|");
    let mut notes: Vec<String> = Vec::new();
    for tool in tools {
        let name = tool.label.as_str();
        if let Some(why) = &tool.missing {
            println!("| {name} | {why} | | | | | | | | |");
            continue;
        }
        let r = results.get(&tool.kind);
        let poll = |p: Option<&Poll>| -> (String, String, String) {
            match p {
                None => ("failed".into(), "".into(), "".into()),
                Some(p) => {
                    let mark = if p.problem.is_some() { " !" } else { "" };
                    (
                        format!("{:.2} s{mark}", p.m.wall.as_secs_f64()),
                        format!("{:.2} s", p.m.user + p.m.sys),
                        statuses(&p.requests),
                    )
                }
            }
        };
        let nth = |n: usize| r.and_then(|r| r.polls[n].as_ref());
        let (cold_wall, cold_cpu, _) = poll(nth(0));
        let (warm_wall, _, warm_req) = poll(nth(1));
        let (again_wall, _, again_req) = poll(nth(2));
        let parse = match (tool.kind, r.and_then(|r| r.parse.as_ref())) {
            (Kind::SfeedIms, None) => "(same parser)".to_string(),
            (_, Some(Ok(p))) => {
                let mark = if tool.kind == Kind::Newsboat { " †" } else { "" };
                format!("{:.1} MB/s{mark}", p.bytes as f64 / 1e6 / p.cpu)
            }
            (_, Some(Err(_))) => "failed".into(),
            (_, None) => "".into(),
        };
        let polls: Vec<&Poll> = r.map(|r| r.polls.iter().flatten().collect()).unwrap_or_default();
        let peak = polls.iter().map(|p| p.m.peak_rss_kb).max().unwrap_or(0);
        let tree = polls.iter().filter_map(|p| p.m.tree_rss_kb).max();
        let peak_cell = match tree {
            Some(_) => format!("{:.0} MB ‡", peak as f64 * 1024.0 / 1e6),
            None => format!("{:.0} MB", peak as f64 * 1024.0 / 1e6),
        };
        let stored = polls.last().and_then(|p| p.items).map_or("?".into(), group);
        println!(
            "| {name} | {cold_wall} | {cold_cpu} | {warm_wall} | {warm_req} | {again_wall} | {again_req} | {parse} \
             | {peak_cell} | {stored} |"
        );

        // What the row cannot say by itself.
        for (n, phase) in PHASES.into_iter().enumerate() {
            let p = nth(n);
            if let Some(w) = p.and_then(|p| p.problem.as_ref()) {
                notes.push(format!("{name}, {phase} (!): {w}"));
            }
            if let Some(n) = p.and_then(|p| p.items).filter(|&n| n != want) {
                notes.push(format!("{name}, {phase}: {n} items stored of the farm's {want}"));
            }
        }
        if let Some(Err(e)) = r.and_then(|r| r.parse.as_ref()) {
            notes.push(format!("{name}, parse: {e}"));
        }
        if let Some(Ok(p)) = r.and_then(|r| r.parse.as_ref()) {
            if p.items != want * u64::from(p.passes) {
                notes.push(format!(
                    "{name}, parse: {} items per pass of the farm's {want}",
                    p.items / u64::from(p.passes)
                ));
            }
        }
        if let Some(t) = tree {
            notes.push(format!(
                "{name}: ‡ peak RSS is the largest single process; the whole process tree (sh, curl, sfeed, sort, \
                 ... for up to {concurrency} feeds at once) peaked at {:.0} MB (sum of PSS, sampled every 50 ms)",
                t as f64 * 1024.0 / 1e6
            ));
        }
    }
    println!();
    println!("Notes:");
    println!(
        "- cold: empty state; warm: nothing changed since the cold poll; warm again: a second unchanged poll. \
         requests: what the farm answered (200 = full body, 304 = not modified). CPU = user + sys of the process \
         and its children; peak RSS = largest process over the three polls; items = stored after the last poll."
    );
    println!(
        "- parse, 1 core: MB of feed XML per CPU-second, from local files, no network. newsdesk: `parse_feed` \
         (feed-rs, dates, absolute links, HTML sanitised); sfeed: the C parser to TSV (HTML kept as is); \
         feedparser: `feedparser.parse` (sanitises HTML too); † newsboat has no parse-only mode: a `reload` of \
         file:// URLs with 1 thread into a fresh cache, so it includes storing."
    );
    println!(
        "- newsdesk's cold poll also clusters every item into stories (the others do not); sfeed_update runs \
         about 18 programs per feed (curl, sfeed, sort twice, cp, rm, ...); feedparser is the script in \
         bench/feedparser_poll.py (a thread pool, one SQLite transaction per feed)."
    );
    for n in &notes {
        println!("- {n}");
    }
    println!("- load average (1/5/15 min) before: {load_before}; after: {load_after}.");
}

/// `"1000×304"`, `"100×200 900×304"`: the non-zero statuses of one poll.
fn statuses(c: &Counts) -> String {
    let parts: Vec<String> = [(c.ok, "200"), (c.not_modified, "304"), (c.not_found, "404"), (c.other, "other")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, s)| format!("{n}×{s}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(" ")
    }
}

// ------------------------------------------------------------------------------- measuring

struct Measured {
    wall: Duration,
    user: f64,
    sys: f64,
    /// Largest single process (GNU time's %M: wait4's ru_maxrss covers the waited-for tree).
    peak_rss_kb: u64,
    /// Sum of PSS over the process tree, sampled (only where it differs from the above: sfeed).
    tree_rss_kb: Option<u64>,
    status: ExitStatus,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

/// Runs `program args` in `cwd` with `HOME=home` (newsboat and sfeed keep their files under
/// `$HOME` otherwise), stdout and stderr to files; `io` redirects stdin and stdout instead.
fn run_measured(
    time: Option<&Path>,
    program: &OsString,
    args: &[OsString],
    cwd: &Path,
    home: &Path,
    label: &str,
    io: Option<(&Path, &Path)>,
) -> Result<Measured, String> {
    let dir = cwd;
    let out_path = dir.join(format!("{label}.stdout"));
    let err_path = dir.join(format!("{label}.stderr"));
    let time_path = dir.join(format!("{label}.time"));
    let e = |e: std::io::Error| format!("{label}: {e}");
    let mut cmd = match time {
        Some(t) => {
            let mut c = Command::new(t);
            c.arg("-f").arg("%e %U %S %M").arg("-o").arg(&time_path).arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args).current_dir(cwd).env("HOME", home).stderr(File::create(&err_path).map_err(e)?);
    match io {
        Some((stdin, stdout)) => {
            cmd.stdin(File::open(stdin).map_err(e)?).stdout(File::create(stdout).map_err(e)?);
        }
        None => {
            cmd.stdin(Stdio::null()).stdout(File::create(&out_path).map_err(e)?);
        }
    }
    // The tree is sampled where it is more than one process at a time (sfeed_update), or
    // where there is no GNU time to give the peak of the largest one.
    let sample_tree = time.is_none() || Path::new(program).file_name().is_some_and(|n| n == "sfeed_update");
    let children_before = children_cpu_secs();
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|err| format!("{label}: starting {}: {err}", program.to_string_lossy()))?;
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let timed_out = Arc::new(AtomicBool::new(false));
    let tree_peak = Arc::new(AtomicU64::new(0));
    let single_peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, timed_out, tree_peak, single_peak) =
            (done.clone(), timed_out.clone(), tree_peak.clone(), single_peak.clone());
        std::thread::spawn(move || {
            let mut last_sample = None::<Instant>;
            while !done.load(Ordering::Acquire) {
                if sample_tree && last_sample.is_none_or(|t| t.elapsed() >= SAMPLE_EVERY) {
                    last_sample = Some(Instant::now());
                    let tree = descendants(pid);
                    tree_peak.fetch_max(tree.iter().map(|p| p.1).sum(), Ordering::Relaxed);
                    single_peak.fetch_max(tree.iter().map(|p| p.2).max().unwrap_or(0), Ordering::Relaxed);
                }
                if start.elapsed() > RUN_TIMEOUT {
                    timed_out.store(true, Ordering::Release);
                    for (p, _, _) in descendants(pid).into_iter().rev() {
                        let _ = Command::new("kill").arg("-KILL").arg(p.to_string()).status();
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let status = child.wait().map_err(e)?;
    let wall = start.elapsed();
    done.store(true, Ordering::Release);
    let _ = sampler.join();
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let tree_rss_kb = (sample_tree && time.is_some()).then(|| tree_peak.load(Ordering::Relaxed));
    let (user, sys, peak_rss_kb) = match time {
        Some(_) => {
            let text = std::fs::read_to_string(&time_path).map_err(|err| format!("{label}: GNU time output: {err}"))?;
            // A failing command adds a "Command exited with non-zero status" line first.
            let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            let f: Vec<f64> = last.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            if f.len() != 4 {
                return Err(format!("{label}: cannot read GNU time output {text:?}"));
            }
            (f[1], f[2], f[3] as u64)
        }
        None => {
            let (u0, s0) = children_before;
            let (u1, s1) = children_cpu_secs();
            (u1 - u0, s1 - s0, single_peak.load(Ordering::Relaxed))
        }
    };
    let timed_out = timed_out.load(Ordering::Acquire);
    Ok(Measured { wall, user, sys, peak_rss_kb, tree_rss_kb, status, timed_out, stdout, stderr })
}

/// The process `root` and its descendants as `(pid, PSS KiB, peak RSS KiB)`, parents first.
/// (This kernel has no `/proc/PID/task/TID/children`, so it is one scan of `/proc`.)
fn descendants(root: u32) -> Vec<(u32, u64, u64)> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // After the ")" that ends the command name: state, ppid, ...
        let ppid = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)?.parse().ok());
        if let Some(ppid) = ppid {
            parent.insert(pid, ppid);
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent.iter().filter(|(_, &pp)| pp == p).map(|(&c, _)| c));
        i += 1;
    }
    tree.into_iter()
        .map(|pid| {
            let (rss, hwm) = rss_kb(pid);
            (pid, rss, hwm)
        })
        .collect()
}

/// `(PSS, VmHWM)` of a process in KiB, zeros once it is gone. PSS (shared pages divided
/// among the processes sharing them) so that a tree's sum does not count libc 32 times;
/// VmRSS where the kernel has no `smaps_rollup`.
fn rss_kb(pid: u32) -> (u64, u64) {
    let field = |text: &str, name: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let pss = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| field(&t, "Pss:"))
        .or_else(|| field(&status, "VmRSS:"))
        .unwrap_or(0);
    (pss, field(&status, "VmHWM:").unwrap_or(0))
}

/// `/usr/bin/time` when it is GNU time (`apt-get install time`), unless
/// `NEWSDESK_BENCH_METER=proc` asks for /proc sampling (as in the ingest bench).
fn gnu_time() -> Option<PathBuf> {
    if std::env::var("NEWSDESK_BENCH_METER").is_ok_and(|m| m == "proc") {
        return None;
    }
    let p = PathBuf::from("/usr/bin/time");
    let out = Command::new(&p).arg("--version").output().ok()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    text.contains("GNU").then_some(p)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

// ------------------------------------------------------------------------------- helpers

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// `30000` -> `"30,000"`.
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
