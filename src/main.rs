//! The `newsdesk` command: CLI parsing, logging, exit codes.
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use newsdesk::config::{Config, ConfigErrors};
use newsdesk::ingest::{Outcome, Poller};
use newsdesk::store::{sources, Store};

/// Exit status for a bad config (sysexits EX_CONFIG), as systemd and ntpd-rs use it.
const EX_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(
    name = "newsdesk",
    version,
    about = "Polls news feeds, stores each item once, republishes merged topic feeds"
)]
struct Cli {
    /// Config file [default: $NEWSDESK_CONFIG, else ./feeds.toml]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The daemon: poll on schedule, serve topic feeds, reload on SIGHUP, stop on SIGTERM
    Run,
    /// Validate the config: exit 0, or 78 with file:line:column: message
    Check,
    /// Poll now (all sources, or the named ones), print a summary per source, then exit
    Fetch {
        /// Source ids (default: all configured sources)
        sources: Vec<String>,
        /// Poll retired sources too
        #[arg(long)]
        force: bool,
    },
    /// Table of sources with their health
    Sources,
    /// The stories a topic would publish, best first, with their outlets
    Stories {
        /// Topic id [default: every story of the last 48h, newest first]
        #[arg(long)]
        topic: Option<String>,
        /// At most this many stories [default: the topic's `limit`]
        #[arg(long)]
        limit: Option<usize>,
        /// Instead of a list: why the items of this story are together (each item with the
        /// rule it joined on, its similarity and threshold, the shared terms and their weights)
        #[arg(long, value_name = "STORY_ID", conflicts_with_all = ["topic", "limit"])]
        explain: Option<i64>,
    },
    /// Render one topic feed to stdout
    Render {
        /// Topic id
        topic: String,
        /// Output format
        #[arg(long, default_value = "rss", value_parser = ["rss", "atom", "json"])]
        format: String,
    },
    /// Print one digest of a topic (its HTML, then its text part) for the period starting on
    /// DATE's boundary, default the last ended period; computed from the store when not
    /// stored yet (never written)
    Digest {
        /// Topic id (the topic needs `digest = ...`)
        topic: String,
        /// A date like 2026-12-06: the period containing that date's boundary
        #[arg(long, value_name = "DATE")]
        period: Option<String>,
    },
    /// Write the whole site into DIR (every topic feed, the reading pages, the stylesheet and
    /// sources.opml, each with a .gz copy), ready for nginx (`gzip_static on`) or a CDN
    Export {
        /// Output directory (created if needed; files are replaced atomically)
        dir: PathBuf,
    },
    /// Copy a whole store from SQLite to PostgreSQL or back (ids, story ids and GUIDs kept;
    /// resumable: run it again after an interruption), with progress on stderr
    Migrate {
        /// The source: an SQLite file or a postgres://user@host/db URL
        #[arg(long, value_name = "DB")]
        from: String,
        /// The target (empty, or a copy of the same source in progress)
        #[arg(long, value_name = "DB")]
        to: String,
        /// Read the PostgreSQL password from this file [default: $PGPASSWORD]
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Sources from / to OPML
    #[command(subcommand)]
    Opml(Opml),
    /// Offline evaluation tools
    #[command(subcommand)]
    Eval(Eval),
}

#[derive(Subcommand)]
enum Opml {
    /// Print `[[source]]` blocks for the feeds in an OPML file, to append to feeds.toml
    /// (e.g. `newsdesk opml import subs.opml >> feeds.toml`); the config itself is never
    /// rewritten. Feeds already configured are skipped.
    Import {
        /// The OPML file (as exported by a feed reader)
        file: PathBuf,
    },
    /// Print the configured sources as OPML (the same document as `/sources.opml`)
    Export,
}

#[derive(Subcommand)]
enum Eval {
    /// Replay labeled headlines (CSV: ID, TITLE, URL, PUBLISHER, TIMESTAMP[, STORY]) through
    /// story clustering; print `ID,story` per row, and quality figures on stderr
    Stories {
        /// The CSV file; more files are read as one stream with it (e.g. a labelled set, then
        /// unrelated headlines labelled `singleton-...`)
        #[arg(required = true)]
        file: Vec<PathBuf>,
        /// Replay the file this many times (shifted ids and times) to measure throughput
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Override a story parameter for this replay (`--set join_threshold=0.2`; repeatable;
        /// names as in `StoryParams`), to tune without rebuilding
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Write a line per row (replay order) to this file: what it joined on, or how close
        /// it came to the nearest story (tab-separated)
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // A panic anywhere ends the process (systemd restarts it), so no half-dead daemon lingers
    // with a task gone. A hook, not `panic = "abort"` in the release profile: that one made
    // `cargo test --release` build every dependency twice (tests always unwind).
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
    let cli = Cli::parse();
    if let Command::Eval(Eval::Stories { file, repeat, set, trace }) = &cli.command {
        return match eval_stories(file, *repeat, set, trace.as_deref()) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("newsdesk: error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Migrate { from, to, password_file } = &cli.command {
        // Needs no config: both ends are named.
        init_logging("warn");
        let copy = || -> anyhow::Result<()> {
            let from = newsdesk::store::copy::Side::parse(from, password_file.clone())?;
            let to = newsdesk::store::copy::Side::parse(to, password_file.clone())?;
            runtime()?.block_on(newsdesk::store::copy::run(&from, &to))
        };
        return match copy() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("newsdesk: error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let path = cli
        .config
        .clone()
        .or_else(|| std::env::var_os("NEWSDESK_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("feeds.toml"));
    if let Command::Opml(Opml::Import { file }) = &cli.command {
        // Works without a config (a new user's first step); with one, known feeds are skipped.
        return match opml_import(file, Config::load(&path).ok().as_ref()) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("newsdesk: error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    if let Command::Check = cli.command {
        println!("{}: ok ({} sources, {} topics)", path.display(), config.sources.len(), config.topics.len());
        return ExitCode::SUCCESS;
    }
    init_logging(&config.daemon.log_level);
    let result = match cli.command {
        Command::Check => Ok(ExitCode::SUCCESS),
        Command::Run => runtime()
            .and_then(|rt| rt.block_on(newsdesk::daemon::run(path.clone(), config)))
            .map(|()| ExitCode::SUCCESS),
        Command::Fetch { sources, force } => fetch(config, sources, force),
        Command::Sources => list_sources(&config),
        Command::Stories { explain: Some(id), .. } => explain_story(&config, id),
        Command::Stories { topic, limit, explain: None } => list_stories(&config, topic.as_deref(), limit),
        Command::Render { topic, format } => render_topic(&config, &topic, &format),
        Command::Digest { topic, period } => print_digest(&config, &topic, period.as_deref()),
        Command::Export { dir } => export(&config, &dir),
        Command::Opml(Opml::Export) => opml_export(&config),
        Command::Opml(Opml::Import { .. }) | Command::Migrate { .. } => Ok(ExitCode::SUCCESS),
        Command::Eval(_) => Ok(ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("newsdesk: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_failure(e: &ConfigErrors) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(EX_CONFIG)
}

fn init_logging(level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    // journald stamps every line itself.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().with_ansi(false).init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::open_configured(&config.daemon)?;
    let cap = config.daemon.max_db_size;
    store.write_blocking(move |w| w.set_max_size(cap))?.context("setting the database size cap (max_db_size)")?;
    let failing_after = config.daemon.failing_after;
    store.write_blocking(move |w| w.set_failing_after(failing_after))?;
    let srcs = config.sources.clone();
    store
        .write_blocking(move |w| sources::sync(&mut w.conn, &srcs))?
        .with_context(|| format!("recording sources in {}", store.describe()))?;
    Ok(store)
}

fn fetch(config: Config, ids: Vec<String>, force: bool) -> anyhow::Result<ExitCode> {
    let selected = if ids.is_empty() {
        config.sources.clone()
    } else {
        let mut out = Vec::new();
        for id in &ids {
            match config.source(id) {
                Some(s) => out.push(s.clone()),
                None => anyhow::bail!(
                    "unknown source {id:?} (configured: {})",
                    config.sources.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
                ),
            }
        }
        out
    };
    if selected.is_empty() {
        anyhow::bail!("no sources configured in {}", config.path.display());
    }
    let store = open_store(&config)?;
    let rt = runtime()?;
    // Checkpoints off the writer's commits, as in the daemon: the writer is what every poll
    // waits for. Not fatal: they then stay inside the commits.
    if let Err(e) = rt.block_on(store.checkpoint_in_background()) {
        tracing::warn!("{e:#}");
    }
    let finish = store.clone();
    let total = selected.len();
    let tty = std::io::stderr().is_terminal();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let retention = config.daemon.retention;
    let poller = Poller::new(Arc::new(config), store)?;
    let reports = rt.block_on(poller.poll_many(selected, force || !ids.is_empty(), move |r| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K[{n}/{total}] {}", r.source_id);
            if n == total {
                let _ = write!(err, "\r\x1b[K");
            }
            let _ = err.flush();
        }
    }));
    // One replay of the live window in time order: what the stories are, whatever order the
    // polls finished in.
    match finish.settle_now() {
        Ok(Some(s)) => tracing::info!(
            "stories settled: {} items replayed in time order, {} moved, {} redirected",
            s.items,
            s.moved,
            s.retired
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!("{e:#} (kept as clustered during the polls)"),
    }
    finish.checkpoint_now();
    let mut stdout = std::io::stdout().lock();
    let (mut new, mut updated, mut failed, mut old) = (0, 0, 0, 0);
    for r in &reports {
        writeln!(stdout, "{r}")?;
        match &r.outcome {
            Outcome::Stored { counts, past_retention, .. } => {
                new += counts.new;
                updated += counts.updated;
                old += past_retention.0;
            }
            Outcome::Failed(_) => failed += 1,
            _ => {}
        }
    }
    let past = if old > 0 {
        format!(", {old} past retention ({})", newsdesk::config::format_duration(retention))
    } else {
        String::new()
    };
    writeln!(stdout, "{} sources polled: {new} new, {updated} updated, {failed} failed{past}", reports.len())?;
    // Some failures are normal on the internet; only "nothing worked at all" is an error.
    Ok(if failed > 0 && failed == reports.len() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn list_sources(config: &Config) -> anyhow::Result<ExitCode> {
    let store = open_store(config)?;
    let conn = store.reader()?;
    let states = sources::all(&conn)?;
    let now = chrono::Utc::now().timestamp();
    let mut rows =
        vec![["ID", "STATUS", "ITEMS", "LAST POLL", "NEXT DUE", "FAILS", "LAST ERROR"].map(String::from).to_vec()];
    for s in &config.sources {
        let st = states.iter().find(|x| x.id == s.id).cloned().unwrap_or_default();
        let status = match (st.status.as_str(), st.http_status) {
            ("", _) => "new".to_string(),
            (s, Some(code)) => format!("{s} ({code})"),
            (s, None) => s.to_string(),
        };
        let err = st.last_error.clone().or(st.retired_reason.clone()).unwrap_or_default();
        rows.push(vec![
            s.id.clone(),
            status,
            if st.past_retention > 0 {
                format!("{} (+{} past retention)", st.items, st.past_retention)
            } else {
                st.items.to_string()
            },
            st.last_poll.map(|t| ago(now - t)).unwrap_or_else(|| "never".into()),
            st.next_due
                .map(|t| if t <= now { "now".into() } else { format!("in {}", span(t - now)) })
                .unwrap_or_else(|| "now".into()),
            st.failures.to_string(),
            err.chars().take(100).collect(),
        ]);
    }
    for st in states.iter().filter(|st| config.source(&st.id).is_none()) {
        rows.push(vec![
            st.id.clone(),
            "removed".into(),
            st.items.to_string(),
            st.last_poll.map(|t| ago(now - t)).unwrap_or_default(),
            "-".into(),
            "-".into(),
            "no longer in the config; items kept".into(),
        ]);
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = std::io::stdout().lock();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn topic<'a>(config: &'a Config, id: &str) -> anyhow::Result<&'a newsdesk::config::TopicConfig> {
    config.topics.iter().find(|t| t.id == id).ok_or_else(|| {
        let known: Vec<&str> = config.topics.iter().map(|t| t.id.as_str()).collect();
        anyhow::anyhow!(
            "unknown topic {id:?} (configured: {})",
            if known.is_empty() { "none; add a [[topic]] to the config".to_string() } else { known.join(", ") }
        )
    })
}

fn list_stories(config: &Config, topic_id: Option<&str>, limit: Option<usize>) -> anyhow::Result<ExitCode> {
    use newsdesk::config::{Rank, TopicConfig};
    let all = TopicConfig {
        id: "all".into(),
        title: "All stories".into(),
        rank: Rank::Latest,
        min_outlets: 1,
        window: std::time::Duration::from_secs(48 * 3600),
        limit: 50,
        tags: Vec::new(),
        sources: Vec::new(),
        include: Vec::new(),
        exclude: Vec::new(),
        digest: None,
        digest_limit: 10,
    };
    let mut t = match topic_id {
        Some(id) => topic(config, id)?.clone(),
        None => all,
    };
    if let Some(n) = limit {
        t.limit = n;
    }
    let store = open_store(config)?;
    let stories = newsdesk::select::select(&store.reader()?, config, &t, chrono::Utc::now().timestamp())
        .with_context(|| format!("selecting the stories of topic {:?}", t.id))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:>4}  {:>8}  {:>7}  TITLE / OUTLETS", "RANK", "STORY", "OUTLETS")?;
    for (i, s) in stories.iter().enumerate() {
        let title: String = s.lead.title.chars().take(100).collect();
        writeln!(out, "{:>4}  {:>8}  {:>7}  {title}", i + 1, s.id, s.outlets.len())?;
        let names: Vec<&str> = s.outlets.iter().map(|o| o.name.as_str()).collect();
        writeln!(out, "{:>23}  {}", "", names.join(", "))?;
    }
    writeln!(out, "{} stories in {:?}", stories.len(), t.id)?;
    Ok(ExitCode::SUCCESS)
}

fn explain_story(config: &Config, id: i64) -> anyhow::Result<ExitCode> {
    let store = open_store(config)?;
    let text = newsdesk::store::stories::explain(&store.reader()?, id, chrono::Utc::now().timestamp())
        .with_context(|| format!("explaining story {id}"))?;
    match text {
        Some(t) => {
            std::io::stdout().lock().write_all(t.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("newsdesk: error: no story {id} (ids are in `newsdesk stories` and in the published GUIDs)");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn render_topic(config: &Config, topic_id: &str, format: &str) -> anyhow::Result<ExitCode> {
    let t = topic(config, topic_id)?;
    let format = newsdesk::render::Format::from_ext(format).context("format must be rss, atom or json")?;
    let store = open_store(config)?;
    let stories = newsdesk::select::select(&store.reader()?, config, t, chrono::Utc::now().timestamp())
        .with_context(|| format!("selecting the stories of topic {:?}", t.id))?;
    let bytes = newsdesk::render::render(format, t, &stories, &config.daemon.base_url, &config.hub_urls());
    std::io::stdout().lock().write_all(&bytes)?;
    Ok(ExitCode::SUCCESS)
}

fn print_digest(config: &Config, topic_id: &str, period: Option<&str>) -> anyhow::Result<ExitCode> {
    let t = topic(config, topic_id)?;
    let Some(schedule) = t.digest else {
        anyhow::bail!(
            "topic {:?} has no digest: set e.g. digest = \"daily 07:00\" in its [[topic]] in {}",
            t.id,
            config.path.display()
        );
    };
    let period = match period {
        Some(s) => {
            let date = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .with_context(|| format!("--period {s:?} is not a date like 2026-12-06"))?;
            schedule.period_of_date(date)
        }
        None => schedule.last_ended(chrono::Utc::now().timestamp()),
    };
    let local = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap_or_default()
            .with_timezone(&schedule.zone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    };
    let store = open_store(config)?;
    let conn = store.reader()?;
    let stored = newsdesk::digest::stored_at(&conn, &t.id, period.start)
        .with_context(|| format!("reading the digests of topic {:?}", t.id))?;
    let (digest, how) = match stored {
        Some(d) => (Some(d), "stored"),
        None => (
            newsdesk::digest::build(&conn, config, t, &period)
                .with_context(|| format!("building the digest of topic {:?}", t.id))?,
            "computed from the store, not stored",
        ),
    };
    let span = format!("{}: {} to {}", t.id, local(period.start), local(period.end));
    match digest {
        Some(d) => {
            eprintln!("{span} ({}, {how}): {} stories", period.label(), d.story_ids.len());
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}\n\n{}", d.html, d.text.trim_end())?;
        }
        None => eprintln!("{span} ({}): no stories in this period, so no digest", period.label()),
    }
    Ok(ExitCode::SUCCESS)
}

fn export(config: &Config, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let store = open_store(config)?;
    let done = newsdesk::export::export(&store.reader()?, config, dir, chrono::Utc::now().timestamp())
        .with_context(|| format!("exporting to {}", dir.display()))?;
    for (id, n) in &done.stories {
        println!("{id}: {n} stories");
    }
    println!("{} story pages; {} files (and .gz copies) in {}", done.story_pages, done.files.len(), dir.display());
    Ok(ExitCode::SUCCESS)
}

fn opml_export(config: &Config) -> anyhow::Result<ExitCode> {
    let store = open_store(config)?;
    let infos = newsdesk::store::queries::source_info(&store.reader()?).context("reading sources")?;
    std::io::stdout().lock().write_all(newsdesk::opml::export(config, &infos).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn opml_import(file: &std::path::Path, existing: Option<&Config>) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let feeds = newsdesk::opml::parse(&text).with_context(|| format!("reading {}", file.display()))?;
    let (toml, skipped) = newsdesk::opml::to_toml(&feeds, existing);
    std::io::stdout().lock().write_all(toml.as_bytes())?;
    eprintln!(
        "{} feeds in {}, {skipped} skipped (already configured or not http/https); append the blocks above to feeds.toml",
        feeds.len(),
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn eval_stories(
    files: &[PathBuf],
    repeat: usize,
    set: &[String],
    trace: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let mut params = newsdesk::dedup::story::StoryParams::default();
    for kv in set {
        let (k, v) = kv.split_once('=').ok_or_else(|| anyhow::anyhow!("--set {kv:?}: expected NAME=VALUE"))?;
        params.set(k.trim(), v).map_err(|e| anyhow::anyhow!("--set {kv:?}: {e}"))?;
    }
    let mut texts = Vec::with_capacity(files.len());
    for file in files {
        texts.push(std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?);
    }
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let names = files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" + ");
    let replay = newsdesk::dedup::eval::replay_csvs(&texts, params, repeat.max(1), trace.is_some())
        .map_err(|e| anyhow::anyhow!("{names}: {e}"))?;
    if let Some(path) = trace {
        let mut t = replay.trace.join("\n");
        t.push('\n');
        std::fs::write(path, t).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "ID,story")?;
    for (id, story) in &replay.rows {
        let quoted =
            if id.contains([',', '"', '\n']) { format!("\"{}\"", id.replace('"', "\"\"")) } else { id.clone() };
        writeln!(out, "{quoted},{story}")?;
    }
    out.flush()?;
    if let Some(q) = &replay.quality {
        eprintln!("items:      {}", replay.rows.len());
        eprintln!("pairwise:   precision {:.3}  recall {:.3}  F1 {:.3}", q.pairwise.0, q.pairwise.1, q.pairwise.2);
        eprintln!("B-cubed:    precision {:.3}  recall {:.3}  F1 {:.3}", q.bcubed.0, q.bcubed.1, q.bcubed.2);
        eprintln!("clusters:   {} predicted, {} true", q.predicted, q.truth);
        if q.singletons > 0 {
            eprintln!(
                "singletons: {} rows of no shared story, {} falsely merged ({:.1} %), {} of them into labelled stories",
                q.singletons,
                q.false_merges,
                100.0 * q.false_merge_rate(),
                q.into_labelled
            );
        }
    }
    eprintln!(
        "throughput: {:.0} items/s ({} items in {:.3} s, one core)",
        replay.items_per_sec(),
        replay.rows.len(),
        replay.elapsed.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn span(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

fn ago(secs: i64) -> String {
    format!("{} ago", span(secs.max(0)))
}
