//! Test harness: a real HTTP server on 127.0.0.1:0 whose replies each test scripts, a temp
//! directory with a config, and a runner for the real `newsdesk` binary.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server answers on one path.
#[derive(Clone)]
pub enum Reply {
    /// A complete response.
    Full { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// Headers, then the body one byte per `every`.
    Drip { body: Vec<u8>, every: Duration },
    /// Headers, then an endless body.
    Endless,
    /// Accept and never answer.
    Hang,
    /// Wait, then send the inner reply: a slow upstream.
    Delayed(Duration, Box<Reply>),
    /// Decided per request: called with the 0-based number of this request to the path and
    /// the request headers (lower-case names), returns the reply to send.
    Script(Script),
}

/// The function behind [`Reply::Script`].
pub type Script = Arc<dyn Fn(usize, &HashMap<String, String>) -> Reply + Send + Sync>;

impl Reply {
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full { status: 200, headers: vec![("Content-Type".into(), content_type.into())], body: body.into() }
    }
    pub fn rss(body: impl Into<Vec<u8>>) -> Reply {
        Reply::ok("application/rss+xml", body)
    }
    pub fn status(status: u16, headers: &[(&str, &str)]) -> Reply {
        Reply::Full {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: Vec::new(),
        }
    }
    /// `first` for the first request to the path, `then` for every later one.
    pub fn then(first: Reply, then: Reply) -> Reply {
        Reply::Script(Arc::new(move |n, _| if n == 0 { first.clone() } else { then.clone() }))
    }
    pub fn with_header(mut self, k: &str, v: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((k.into(), v.into()));
        }
        self
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HashMap<String, String>,
    /// When the request arrived.
    pub at: std::time::Instant,
}

/// A scripted HTTP/1.1 server. Replies marked `etag` honour `If-None-Match` with a 304.
pub struct TestServer {
    pub addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    _rt: std::thread::JoinHandle<()>,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_on("127.0.0.1")
    }

    /// A server on another loopback address (e.g. `127.0.0.2`): another host for per-host limits.
    pub fn start_on(ip: &str) -> TestServer {
        let ip = ip.to_string();
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let (r2, s2) = (routes.clone(), seen.clone());
        let rt = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind((ip.as_str(), 0)).await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((sock, _)) = listener.accept().await else { continue };
                    let (r, s) = (r2.clone(), s2.clone());
                    tokio::spawn(async move {
                        let _ = handle(sock, r, s).await;
                    });
                }
            });
        });
        let addr = rx.recv().unwrap();
        TestServer { addr, routes, seen, _rt: rt }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }

    pub fn seen(&self, path: &str) -> Vec<Seen> {
        self.seen.lock().unwrap().iter().filter(|s| s.path == path).cloned().collect()
    }

    pub fn hits(&self, path: &str) -> usize {
        self.seen(path).len()
    }
}

async fn handle(
    mut sock: TcpStream,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let headers: HashMap<String, String> = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let nth = {
        let mut seen = seen.lock().unwrap();
        seen.push(Seen { path: path.clone(), headers: headers.clone(), at: std::time::Instant::now() });
        seen.iter().filter(|s| s.path == path).count() - 1
    };
    let mut reply = routes.lock().unwrap().get(&path).cloned();
    loop {
        match reply {
            Some(Reply::Script(script)) => reply = Some(script(nth, &headers)),
            Some(Reply::Delayed(wait, inner)) => {
                tokio::time::sleep(wait).await;
                reply = Some(*inner);
            }
            _ => break,
        }
    }
    match reply {
        None => write_full(&mut sock, 404, &[], b"no such path").await,
        Some(Reply::Full { status, headers: h, body }) => {
            let etag = h.iter().find(|(k, _)| k.eq_ignore_ascii_case("etag")).map(|(_, v)| v.clone());
            if status == 200 && etag.is_some() && headers.get("if-none-match") == etag.as_ref() {
                return write_full(&mut sock, 304, &h, b"").await;
            }
            write_full(&mut sock, status, &h, &body).await
        }
        Some(Reply::Drip { body, every }) => {
            sock.write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).as_bytes()).await?;
            for b in body {
                sock.write_all(&[b]).await?;
                tokio::time::sleep(every).await;
            }
            Ok(())
        }
        Some(Reply::Endless) => {
            sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nConnection: close\r\n\r\n<rss version=\"2.0\"><channel><title>").await?;
            let block = vec![b'a'; 64 * 1024];
            loop {
                sock.write_all(&block).await?;
            }
        }
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
        Some(Reply::Script(_) | Reply::Delayed(..)) => unreachable!("resolved above"),
    }
}

async fn write_full(
    sock: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    if status != 304 {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await?;
    if status != 304 {
        sock.write_all(body).await?;
    }
    sock.flush().await
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// A fresh temp directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let n = DIRS.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("newsdesk-test-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A test workspace: config file + database in a temp dir.
pub struct Desk {
    pub dir: PathBuf,
    pub config: PathBuf,
    daemon_extra: String,
    sources: Vec<(String, String, String)>,
    /// The test's own PostgreSQL cluster when this test crate runs on PostgreSQL (see
    /// [`on_postgres`]).
    pub pg: Option<Pg>,
}

/// `text` (a config) with its `database = ...` line set to `url`.
pub fn with_database(text: &str, url: &str) -> String {
    text.lines()
        .map(|l| if l.starts_with("database") { format!("database = \"{url}\"") } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether this test crate runs its desks on PostgreSQL: the `*_pg` crates include another
/// test file whole (`tests/ingest_pg.rs` is `tests/ingest.rs`), so the same tests run on both
/// backends.
pub fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME").ends_with("_pg")
}

impl Desk {
    pub fn new(name: &str) -> Desk {
        let dir = temp_dir(name);
        let config = dir.join("feeds.toml");
        let pg = if on_postgres() {
            let pg = Pg::start(&format!("{name}-pg"));
            assert!(pg.is_some(), "PostgreSQL is not installed: the *_pg tests need it (apt-get install postgresql)");
            if let Some(pg) = &pg {
                pg.createdb("desk");
            }
            pg
        } else {
            None
        };
        Desk { dir, config, daemon_extra: String::new(), sources: Vec::new(), pg }
    }

    /// Extra `[daemon]` lines.
    pub fn daemon(mut self, extra: &str) -> Desk {
        self.daemon_extra.push_str(extra);
        self.daemon_extra.push('\n');
        self
    }

    pub fn source(mut self, id: &str, url: &str) -> Desk {
        self.sources.push((id.into(), url.into(), String::new()));
        self
    }

    pub fn source_with(mut self, id: &str, url: &str, extra: &str) -> Desk {
        self.sources.push((id.into(), url.into(), extra.into()));
        self
    }

    pub fn write(self) -> Desk {
        let mut f = std::fs::File::create(&self.config).unwrap();
        let timeout = if self.daemon_extra.contains("timeout") { "" } else { "timeout = \"5s\"" };
        writeln!(f, "[daemon]\ndatabase = \"{}\"\n{timeout}\n{}", self.database(), self.daemon_extra).unwrap();
        for (id, url, extra) in &self.sources {
            writeln!(f, "[[source]]\nid = \"{id}\"\nurl = \"{url}\"\n{extra}\n").unwrap();
        }
        self
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("test.db")
    }

    /// What `[daemon] database` says: the SQLite file, or the PostgreSQL URL (password
    /// included: the test cluster's).
    pub fn database(&self) -> String {
        match &self.pg {
            Some(pg) => pg.password_url("desk"),
            None => "test.db".into(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        newsdesk(&self.config, args)
    }

    /// Runs `fetch` and returns stdout; panics with both streams on a crash.
    pub fn fetch(&self, ids: &[&str]) -> String {
        let mut args = vec!["fetch"];
        args.extend_from_slice(ids);
        let out = self.run(&args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.code().is_some(),
            "newsdesk crashed: {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// A connection to the desk's database, whichever backend it is on.
    pub fn conn(&self) -> newsdesk::store::db::Connection {
        use newsdesk::store::db::{Connection, PgConn};
        match &self.pg {
            Some(_) => {
                let target = newsdesk::store::pg::PgTarget::parse(&self.database(), None).unwrap();
                Connection::Pg(Box::new(PgConn::connect(&target).unwrap()))
            }
            None => Connection::open(self.db()).unwrap(),
        }
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Runs `newsdesk` with `args` in the background.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_newsdesk"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    pub fn source_field(&self, id: &str, column: &str) -> Option<String> {
        self.conn()
            .query_row(&format!("SELECT CAST({column} AS TEXT) FROM sources WHERE id = ?1"), [id], |r| r.get(0))
            .unwrap()
    }
}

impl Drop for Desk {
    fn drop(&mut self) {
        // Kept when a test fails (to look at the database) or on request.
        if !std::thread::panicking() && std::env::var_os("NEWSDESK_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn newsdesk(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_newsdesk"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

/// An RSS 2.0 document with the given (guid, link, title, description) items, dated an hour ago.
pub fn rss(items: &[(Option<&str>, Option<&str>, &str, &str)]) -> String {
    rss_dated(items, &(chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc2822())
}

/// Like [`rss`] with every item's `pubDate` set to `date`.
pub fn rss_dated(items: &[(Option<&str>, Option<&str>, &str, &str)], date: &str) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel><title>Test feed</title><link>https://outlet.example/</link>\n");
    for (guid, link, title, desc) in items {
        s.push_str("<item>");
        if let Some(g) = guid {
            s.push_str(&format!("<guid isPermaLink=\"false\">{g}</guid>"));
        }
        if let Some(l) = link {
            s.push_str(&format!("<link>{l}</link>"));
        }
        s.push_str(&format!(
            "<title>{title}</title><description>{desc}</description><pubDate>{date}</pubDate></item>\n"
        ));
    }
    s.push_str("</channel></rss>\n");
    s
}

/// A simple feed of `n` items with guids `{prefix}-{i}`.
pub fn simple_feed(prefix: &str, n: usize) -> String {
    simple_feed_dated(prefix, n, &(chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc2822())
}

/// Like [`simple_feed`] with every item dated `date`.
pub fn simple_feed_dated(prefix: &str, n: usize, date: &str) -> String {
    let items: Vec<(String, String, String)> = (0..n)
        .map(|i| {
            (
                format!("{prefix}-{i}"),
                format!("https://outlet.example/{prefix}/{i}"),
                format!("Story {i} from {prefix}"),
            )
        })
        .collect();
    let refs: Vec<(Option<&str>, Option<&str>, &str, &str)> =
        items.iter().map(|(g, l, t)| (Some(g.as_str()), Some(l.as_str()), t.as_str(), "<p>Body text</p>")).collect();
    rss_dated(&refs, date)
}

/// `newsdesk run` on a desk's config, its stderr (the log) collected as it comes.
pub struct Daemon {
    pub child: Child,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts the daemon with `RUST_LOG=info` plus `env`.
    pub fn start(d: &Desk, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with(&d.config, env)
    }

    /// Starts the daemon on another config file.
    pub fn start_with(config: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_newsdesk"));
        cmd.arg("--config").arg(config).arg("run").env("RUST_LOG", "info").stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut g = l.lock().unwrap();
                g.push_str(&line);
                g.push('\n');
            }
        });
        Daemon { child, log }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether `needle` shows up in the log within `within`.
    pub fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Sends a signal with kill(1), e.g. `HUP`.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(ok.success());
    }

    /// SIGTERM, then the exit code, how long the exit took and the whole log.
    pub fn stop(mut self) -> (Option<i32>, Duration, String) {
        let started = Instant::now();
        self.signal("TERM");
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), started.elapsed(), self.log());
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("daemon did not stop within 20s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Daemon {
    /// Peak resident set size in KiB, from `/proc/<pid>/status`.
    pub fn vm_hwm_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------ PostgreSQL

pub const PASSWORD: &str = "pg-test-secret-7f3a";

/// A throwaway PostgreSQL cluster.
pub struct Pg {
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub port: u16,
}

/// The newest installed PostgreSQL's programs.
pub fn pg_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// `prog` of `bin`, as the unprivileged `nobody` when we are root (PostgreSQL refuses root).
pub fn run_as(bin: &Path, prog: &str, args: &[&str]) -> Output {
    let exe = bin.join(prog);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args(args).env_remove("PGPASSWORD").output().unwrap_or_else(|e| panic!("{prog}: {e}"))
}

pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Pg {
    /// A running cluster, or `None` (the test is skipped) when PostgreSQL is not installed
    /// and CI is not set.
    pub fn start(name: &str) -> Option<Pg> {
        let Some(bin) = pg_bin() else {
            assert!(std::env::var_os("CI").is_none(), "CI is set but PostgreSQL is not installed");
            eprintln!("skipped: PostgreSQL is not installed (apt-get install postgresql)");
            return None;
        };
        let dir = temp_dir(name);
        std::fs::write(dir.join("pw"), PASSWORD).unwrap();
        if is_root() {
            assert!(Command::new("chown").args(["-R", "nobody"]).arg(&dir).status().unwrap().success());
        }
        let data = dir.join("data");
        let pwfile = dir.join("pw");
        let out = run_as(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "newsdesk",
                "--pwfile",
                pwfile.to_str().unwrap(),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", dir.display());
        let log = dir.join("log");
        let out = run_as(
            &bin,
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-o", &opts, "-w", "start"],
        );
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
        Some(Pg { dir, bin, port })
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://newsdesk@127.0.0.1:{}/{db}", self.port)
    }

    /// [`Pg::url`] with the test password in it (what a config file names).
    pub fn password_url(&self, db: &str) -> String {
        format!("postgres://newsdesk:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the server (an outage); [`Pg::restart`] brings it back on the same port.
    pub fn stop(&self) {
        let data = self.dir.join("data");
        let out = run_as(&self.bin, "pg_ctl", &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"]);
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts the stopped server again.
    pub fn restart(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.display());
        let out = run_as(
            &self.bin,
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-o", &opts, "-w", "start"],
        );
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Turns TLS on (restarting the server) with a server certificate for `localhost` only
    /// (no IP in it), signed by a throwaway CA; returns the CA's PEM file.
    pub fn enable_tls(&self) -> PathBuf {
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(&self.dir).output().expect("openssl");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=newsdesk test CA"],
            ]
            .concat(),
        );
        openssl(
            &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat(),
        );
        std::fs::write(self.dir.join("server.ext"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n")
            .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        let key = self.dir.join("server.key");
        if is_root() {
            assert!(Command::new("chown")
                .arg("nobody")
                .arg(&key)
                .arg(self.dir.join("server.crt"))
                .status()
                .unwrap()
                .success());
        }
        assert!(Command::new("chmod").arg("600").arg(&key).status().unwrap().success());
        let conf = self.dir.join("data/postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str(&format!(
            "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            self.dir.join("server.crt").display(),
            key.display()
        ));
        std::fs::write(&conf, text).unwrap();
        self.stop();
        self.restart();
        self.dir.join("ca.pem")
    }

    pub fn createdb(&self, db: &str) {
        let out = run_as(
            &self.bin,
            "createdb",
            &["-h", self.dir.to_str().unwrap(), "-p", &self.port.to_string(), "-U", "newsdesk", db],
        );
        assert!(out.status.success(), "createdb: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Runs SQL through psql (local socket): its unaligned output, or its error (e.g. the
    /// table does not exist yet).
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let port = self.port.to_string();
        let dir = self.dir.to_str().unwrap();
        let out = run_as(&self.bin, "psql", &["-h", dir, "-p", &port, "-U", "newsdesk", "-d", db, "-At", "-c", sql]);
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    }

    /// [`Pg::try_psql`], which must succeed.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql).unwrap_or_else(|e| panic!("psql {sql}: {e}"))
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = run_as(&self.bin, "pg_ctl", &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
