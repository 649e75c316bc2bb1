//! Cluster benchmark: the daemon bench's farm (feeds × mirrors sources, `every Ns`) polled by
//! 1, 2 and 3 `newsdesk run` on one PostgreSQL database, beside one instance on SQLite.
//!
//! For each setup: the cold pass (time until every source was polled once), then one steady
//! period: polls per second (from the farm's log), CPU per poll of the instances together and
//! of PostgreSQL (every `postgres` process of the bench's own cluster), and each instance's
//! peak RSS. Checked: every source polled in the cold pass, and 30 items per feed stored once.
//!
//! ```sh
//! cargo build --release && cargo bench --bench cluster
//! NEWSDESK_BENCH_FEEDS=100 NEWSDESK_BENCH_PERIOD=20 cargo bench --bench cluster   # smaller
//! ```
//!
//! Environment: `NEWSDESK_BENCH_FEEDS` (1000), `NEWSDESK_BENCH_MIRRORS` (10),
//! `NEWSDESK_BENCH_PERIOD` (60), `NEWSDESK_BENCH_INSTANCES` (`1,2,3`), `NEWSDESK_BIN`,
//! `NEWSDESK_BENCH_STATEMENTS` (0: with N > 0, the server loads `pg_stat_statements` and the
//! N statements that took most server time in each cold pass are printed). Needs
//! the distribution's PostgreSQL (`/usr/lib/postgresql/*/bin`); started here in a temp dir, as
//! `nobody` when run as root, on a free port, and stopped at the end.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use common::farm::Farm;
use common::proc::{cpu_at, stat_times, Daemon, Sampler};
use common::util::{env_num, free_port, newsdesk_bin, TempDir};

const PASSWORD: &str = "bench-secret";

struct Pg {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

fn as_nobody(bin: &Path, prog: &str, args: &[&str]) -> Result<(), String> {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(bin.join(prog));
        c
    } else {
        Command::new(bin.join(prog))
    };
    let out = cmd.args(args).output().map_err(|e| format!("{prog}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{prog}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

impl Pg {
    fn start(dir: &Path, statements: bool) -> Result<Pg, String> {
        let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|_| "PostgreSQL is not installed (apt-get install postgresql)".to_string())?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .collect();
        bins.sort();
        let bin = bins.pop().ok_or("PostgreSQL is not installed (apt-get install postgresql)")?;
        let dir = dir.join("pg");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("pw"), PASSWORD).map_err(|e| e.to_string())?;
        let _ = Command::new("chown").args(["-R", "nobody"]).arg(&dir).status();
        let data = dir.join("data");
        let (d, pw) = (data.to_string_lossy().to_string(), dir.join("pw").to_string_lossy().to_string());
        as_nobody(
            &bin,
            "initdb",
            &["-D", &d, "-U", "newsdesk", "--pwfile", &pw, "--auth-host=scram-sha-256", "--auth-local=trust"],
        )?;
        let port = free_port()?.port();
        // The defaults of a small server (shared_buffers 128 MB), fsync off: the bench measures
        // newsdesk and the server's CPU, not this VM's disk.
        let mut opts =
            format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", dir.display());
        if statements {
            opts.push_str(" -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on");
        }
        let log = dir.join("log").to_string_lossy().to_string();
        as_nobody(&bin, "pg_ctl", &["-D", &d, "-l", &log, "-o", &opts, "-w", "start"])?;
        Ok(Pg { bin, dir, port })
    }

    fn createdb(&self, name: &str) -> Result<String, String> {
        let (host, port) = (self.dir.to_string_lossy().to_string(), self.port.to_string());
        as_nobody(&self.bin, "createdb", &["-h", &host, "-p", &port, "-U", "newsdesk", name])?;
        Ok(format!("postgres://newsdesk:{PASSWORD}@127.0.0.1:{}/{name}", self.port))
    }

    fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "newsdesk", "-d", db, "-At", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
    }

    /// CPU seconds of every process of this cluster (the postmaster and its backends).
    fn cpu(&self) -> f64 {
        let mut total = 0.0;
        let Ok(procs) = std::fs::read_dir("/proc") else { return 0.0 };
        let needle = self.dir.to_string_lossy().to_string();
        let mut postmaster = None;
        for p in procs.flatten() {
            let pid = p.file_name().to_string_lossy().to_string();
            if pid.parse::<u32>().is_err() {
                continue;
            }
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmd).contains(&needle) && String::from_utf8_lossy(&cmd).contains("postgres") {
                postmaster = Some(pid);
            }
        }
        let Some(pm) = postmaster else { return 0.0 };
        for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let pid = p.file_name().to_string_lossy().to_string();
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).unwrap_or("");
            if pid == pm || ppid == pm {
                let (u, s, cu, cs) = stat_times(&stat);
                total += u + s + cu + cs;
            }
        }
        total
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let d = self.dir.join("data").to_string_lossy().to_string();
        let _ = as_nobody(&self.bin, "pg_ctl", &["-D", &d, "-m", "immediate", "stop"]);
    }
}

struct Row {
    setup: String,
    cold: Duration,
    polls_per_sec: f64,
    cpu_per_poll_ms: f64,
    pg_cpu_per_poll_ms: f64,
    rss_mb: Vec<f64>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cluster bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let feeds = env_num("NEWSDESK_BENCH_FEEDS", 1000) as usize;
    let mirrors = env_num("NEWSDESK_BENCH_MIRRORS", 10) as usize;
    let period = env_num("NEWSDESK_BENCH_PERIOD", 60);
    let instances: Vec<usize> = std::env::var("NEWSDESK_BENCH_INSTANCES")
        .unwrap_or_else(|_| "1,2,3".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let bin = newsdesk_bin()?;
    let tmp = TempDir::new("cluster").map_err(|e| e.to_string())?;
    let statements = env_num("NEWSDESK_BENCH_STATEMENTS", 0) as usize;
    let pg = Pg::start(&tmp.path, statements > 0)?;
    if statements > 0 {
        pg.psql("postgres", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    }
    let farm = Farm::new(feeds, 30, 1);
    let (_addr, _server) = farm.serve().map_err(|e| format!("starting the farm: {e}"))?;
    farm.record_requests(true);
    let sources = feeds * mirrors;
    eprintln!("farm: {feeds} feeds x 30 items under {mirrors} URLs each: {sources} sources, every {period}s");
    let mut rows = Vec::new();
    let mut setups: Vec<(String, usize)> = vec![("sqlite".into(), 1)];
    setups.extend(instances.iter().map(|&n| (format!("postgres x{n}"), n)));
    for (k, (name, n)) in setups.into_iter().enumerate() {
        let dir = tmp.path.join(format!("run{k}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let db_name = format!("b{k}");
        let database = if name == "sqlite" { None } else { Some(pg.createdb(&db_name)?) };
        let mut daemons = Vec::new();
        let log_start = farm.request_log_from(0).len();
        let start = Instant::now();
        for i in 0..n {
            let listen = free_port()?;
            let keys =
                format!("listen = \"{listen}\"\nschedule = \"every {period}s\"\nconcurrency = 32\nper_host = 32\n");
            let mut text =
                farm.config_toml_mirrored(&dir.join("bench.db"), &keys, mirrors).map_err(|e| e.to_string())?;
            if let Some(url) = &database {
                text = text
                    .lines()
                    .map(|l| if l.starts_with("database") { format!("database = \"{url}\"") } else { l.to_string() })
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            let cfg = dir.join(format!("node{i}.toml"));
            std::fs::write(&cfg, text).map_err(|e| e.to_string())?;
            let d = Daemon::start(&bin, &cfg, &dir.join(format!("node{i}")), false)?;
            let sampler = Sampler::start(d.pid());
            daemons.push((d, sampler));
        }
        // Cold pass: every source polled once.
        let mut seen = std::collections::HashSet::new();
        let mut cold = None;
        let deadline = start + Duration::from_secs(900);
        while cold.is_none() {
            std::thread::sleep(Duration::from_millis(200));
            for r in farm.request_log_from(log_start) {
                if r.target.starts_with("/feed/") {
                    seen.insert(r.target.clone());
                }
            }
            if seen.len() >= sources {
                cold = Some(start.elapsed());
            }
            if Instant::now() > deadline {
                return Err(format!("{name}: the cold pass did not end within 900 s ({} of {sources})", seen.len()));
            }
        }
        let cold = cold.unwrap_or_default();
        if statements > 0 && database.is_some() {
            eprintln!("{name}: the {statements} statements with most server time in the cold pass (ms total, calls, ms each):");
            let top = pg.psql(
                "postgres",
                &format!(
                    "SELECT round((s.total_exec_time + s.total_plan_time)::numeric) || ' | ' || s.calls || ' | ' ||
                            round(((s.total_exec_time + s.total_plan_time) / s.calls)::numeric, 3) || ' | ' ||
                            left(regexp_replace(s.query, '\\s+', ' ', 'g'), 140)
                     FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
                     WHERE d.datname = '{db_name}' ORDER BY s.total_exec_time + s.total_plan_time DESC LIMIT {statements}"
                ),
            );
            for line in top.lines() {
                eprintln!("  {line}");
            }
        }
        // One steady period after the second pass has settled each source into its slot.
        std::thread::sleep(Duration::from_secs(period));
        let (t0, log0, pg0) = (Instant::now(), farm.request_log_from(0).len(), pg.cpu());
        std::thread::sleep(Duration::from_secs(period));
        let (t1, log1, pg1) = (Instant::now(), farm.request_log_from(0).len(), pg.cpu());
        let polls = (log1 - log0) as f64;
        let mut cpu = 0.0;
        let mut rss = Vec::new();
        for (mut d, s) in daemons {
            let samples = s.stop();
            cpu += cpu_at(&samples, t1) - cpu_at(&samples, t0);
            rss.push(samples.iter().map(|s| s.hwm_kb).max().unwrap_or(0) as f64 / 1024.0);
            let _ = d.terminate();
        }
        let items: i64 = match &database {
            Some(_) => pg.psql(&db_name, "SELECT COUNT(*) FROM items").parse().unwrap_or(-1),
            None => common::util::count(&dir.join("bench.db"), "SELECT COUNT(*) FROM items")?,
        };
        if items != (feeds * 30) as i64 {
            return Err(format!("{name}: {items} items stored, expected {}", feeds * 30));
        }
        let row = Row {
            setup: name,
            cold,
            polls_per_sec: polls / (t1 - t0).as_secs_f64(),
            cpu_per_poll_ms: cpu * 1000.0 / polls.max(1.0),
            pg_cpu_per_poll_ms: if database.is_some() { (pg1 - pg0) * 1000.0 / polls.max(1.0) } else { 0.0 },
            rss_mb: rss,
        };
        eprintln!(
            "{}: cold {:.1}s, {:.1} polls/s, {:.2} ms CPU/poll (+{:.2} PostgreSQL), peak RSS {:?} MB",
            row.setup,
            row.cold.as_secs_f64(),
            row.polls_per_sec,
            row.cpu_per_poll_ms,
            row.pg_cpu_per_poll_ms,
            row.rss_mb
        );
        rows.push(row);
    }
    println!(
        "\n| setup | cold pass | steady polls/s | CPU/poll, instances | CPU/poll, PostgreSQL | peak RSS per instance |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let rss: Vec<String> = r.rss_mb.iter().map(|m| format!("{m:.0} MB")).collect();
        println!(
            "| {} | {:.1} s | {:.1} | {:.2} ms | {:.2} ms | {} |",
            r.setup,
            r.cold.as_secs_f64(),
            r.polls_per_sec,
            r.cpu_per_poll_ms,
            r.pg_cpu_per_poll_ms,
            rss.join(", ")
        );
    }
    Ok(())
}
