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
    /// Offline evaluation tools
    #[command(subcommand)]
    Eval(Eval),
}

#[derive(Subcommand)]
enum Eval {
    /// Replay labeled headlines (CSV: ID, TITLE, URL, PUBLISHER, TIMESTAMP[, STORY]) through
    /// story clustering; print `ID,story` per row, and quality figures on stderr
    Stories {
        /// The CSV file
        file: PathBuf,
        /// Replay the file this many times (shifted ids and times) to measure throughput
        #[arg(long, default_value_t = 1)]
        repeat: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Eval(Eval::Stories { file, repeat }) = &cli.command {
        return match eval_stories(file, *repeat) {
            Ok(code) => code,
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
    let store = Store::open(&config.daemon.database)?;
    let srcs = config.sources.clone();
    store
        .write_blocking(move |w| sources::sync(&mut w.conn, &srcs))?
        .with_context(|| format!("recording sources in {}", config.daemon.database.display()))?;
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
    let total = selected.len();
    let tty = std::io::stderr().is_terminal();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
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
    let mut stdout = std::io::stdout().lock();
    let (mut new, mut updated, mut failed) = (0, 0, 0);
    for r in &reports {
        writeln!(stdout, "{r}")?;
        match &r.outcome {
            Outcome::Stored { counts, .. } => {
                new += counts.new;
                updated += counts.updated;
            }
            Outcome::Failed(_) => failed += 1,
            _ => {}
        }
    }
    writeln!(stdout, "{} sources polled: {new} new, {updated} updated, {failed} failed", reports.len())?;
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
            st.items.to_string(),
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

fn eval_stories(file: &std::path::Path, repeat: usize) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let replay =
        newsdesk::dedup::eval::replay_csv(&text, newsdesk::dedup::story::StoryParams::default(), repeat.max(1))
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
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
