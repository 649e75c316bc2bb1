//! Small helpers shared by the benches: the binary under test, a temp dir, env settings,
//! a free port, read-only counts from the database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A free port on 127.0.0.1 for the daemon's listener (bound and released: another process
/// could take it in between, which on a test machine it practically never does).
pub fn free_port() -> Result<SocketAddr, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    l.local_addr().map_err(|e| format!("finding a free port: {e}"))
}

/// One number from the database, opened read-only (`SELECT COUNT(*) ...`).
pub fn count(db: &Path, sql: &str) -> Result<i64, String> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("opening {} read-only: {e}", db.display()))?;
    conn.query_row(sql, [], |r| r.get(0)).map_err(|e| format!("{sql}: {e}"))
}

/// The `newsdesk` binary: `$NEWSDESK_BIN`, else the one cargo built alongside this bench,
/// else `target/release/newsdesk`.
pub fn newsdesk_bin() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("NEWSDESK_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(format!("NEWSDESK_BIN={} does not exist", p.display())) };
    }
    let candidates = [
        option_env!("CARGO_BIN_EXE_newsdesk").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/newsdesk")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .ok_or_else(|| "no newsdesk binary found: run `cargo build --release` first (or set NEWSDESK_BIN)".to_string())
}

/// A fresh directory under the system temp dir, removed on drop unless
/// `NEWSDESK_BENCH_KEEP=1`.
pub struct TempDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl TempDir {
    /// `$TMPDIR/newsdesk-bench-{name}-{pid}-{nanos}`.
    pub fn new(name: &str) -> std::io::Result<TempDir> {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let path = std::env::temp_dir().join(format!("newsdesk-bench-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path, keep: std::env::var_os("NEWSDESK_BENCH_KEEP").is_some_and(|v| v == "1") })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A number from the environment (`_` separators allowed), else `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.trim().replace('_', "").parse().unwrap_or_else(|_| {
            eprintln!("ignoring {name}={v:?}: not a number");
            default
        }),
        Err(_) => default,
    }
}

/// Whether `NEWSDESK_BENCH_STRICT=1` (a missed target exits 2).
pub fn strict() -> bool {
    std::env::var_os("NEWSDESK_BENCH_STRICT").is_some_and(|v| v == "1")
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
