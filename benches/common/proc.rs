//! The daemon as a child process, for the benches that run `newsdesk run` for real: start it
//! with its logs in files, wait for `/healthz`, stop it with SIGTERM (and kill it if a bench
//! fails on the way), and watch its CPU time and memory through `/proc`.
//!
//! Errors are `String`s: a bench prints them and exits nonzero.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::util::tail;

/// SIGTERM to exit: the daemon's 10 s grace for polls in flight, plus margin.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// The daemon must answer `/healthz` this soon after it starts.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// One `/healthz` request slower than this counts as not answered.
pub const HEALTHZ_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the daemon's CPU time and memory are read from /proc.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

// ------------------------------------------------------------------------------- the daemon

/// The running daemon; killed (SIGKILL) if still running when dropped, so a failed bench
/// leaves nothing behind.
pub struct Daemon {
    child: Option<Child>,
    /// The file its stderr (the log) goes to.
    pub stderr: PathBuf,
}

impl Daemon {
    /// Starts `bin --config CONFIG run` with stdout and stderr in `{logs}.stdout` and
    /// `{logs}.stderr`, outside any systemd notification (so it neither notifies nor expects
    /// a watchdog). `RUST_LOG` is passed through. With `own_session` it runs under `setsid`
    /// (which execs it: the child's pid is the daemon's).
    pub fn start(bin: &Path, config: &Path, logs: &Path, own_session: bool) -> Result<Daemon, String> {
        let err_path = logs.with_extension("stderr");
        let out_path = logs.with_extension("stdout");
        let io = |e: std::io::Error| format!("daemon log files: {e}");
        // In a session of its own the daemon is its own scheduling group (the kernel's
        // autogroup): with other processes it shares the CPU as one group, as a systemd
        // service's cgroup does, whatever number of threads each side runs.
        let own_session = own_session && Path::new("/usr/bin/setsid").is_file();
        let mut cmd = if own_session {
            let mut c = Command::new("/usr/bin/setsid");
            c.arg(bin);
            c
        } else {
            Command::new(bin)
        };
        let child = cmd
            .arg("--config")
            .arg(config)
            .arg("run")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).map_err(io)?)
            .stderr(File::create(&err_path).map_err(io)?)
            .spawn()
            .map_err(|e| format!("starting {} run: {e}", bin.display()))?;
        Ok(Daemon { child: Some(child), stderr: err_path })
    }

    /// Its process id (0 once it has been reaped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// An error (with the log's tail) if the daemon has exited.
    pub fn still_running(&mut self) -> Result<(), String> {
        let Some(child) = self.child.as_mut() else { return Err("the daemon is gone".into()) };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.child = None;
                Err(format!(
                    "newsdesk run exited early ({status})\n--- daemon stderr (tail) ---\n{}",
                    self.stderr_tail(30)
                ))
            }
            Err(e) => Err(format!("waiting for the daemon: {e}")),
        }
    }

    /// Sends SIGTERM and waits up to [`STOP_TIMEOUT`] for the exit.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus, String> {
        let pid = self.pid();
        let sent = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        if !sent.is_ok_and(|s| s.success()) {
            return Err(format!("could not send SIGTERM to the daemon (pid {pid})"));
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            let Some(child) = self.child.as_mut() else { return Err("the daemon is gone".into()) };
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Ok(status);
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("waiting for the daemon: {e}")),
            }
        }
        Err(format!(
            "the daemon did not exit within {STOP_TIMEOUT:?} of SIGTERM: killed\n--- daemon stderr (tail) ---\n{}",
            self.stderr_tail(30)
        ))
    }

    /// The last `n` lines of its log.
    pub fn stderr_tail(&self, n: usize) -> String {
        tail(&std::fs::read_to_string(&self.stderr).unwrap_or_default(), n)
    }

    /// Lines of its log at WARN or ERROR.
    pub fn warnings(&self) -> usize {
        std::fs::read_to_string(&self.stderr)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .count()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until `/healthz` answers 200; returns the time since `start`.
pub fn wait_healthy(listen: SocketAddr, start: Instant, daemon: &mut Daemon) -> Result<Duration, String> {
    loop {
        daemon.still_running()?;
        if probe(listen).status == Some(200) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > STARTUP_TIMEOUT {
            return Err(format!(
                "the daemon did not answer /healthz within {STARTUP_TIMEOUT:?}\n--- daemon stderr (tail) ---\n{}",
                daemon.stderr_tail(20)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------------------- /healthz

/// One `/healthz` request.
pub struct Probe {
    pub at: Instant,
    pub latency: Duration,
    pub status: Option<u16>,
    pub error: String,
}

/// One `GET /healthz` on a fresh connection, as a monitoring system would send it.
pub fn probe(addr: SocketAddr) -> Probe {
    let at = Instant::now();
    let result = get(addr, "/healthz").map(|(status, _)| status);
    let latency = at.elapsed();
    match result {
        Ok(status) => Probe { at, latency, status: Some(status), error: format!("HTTP {status}") },
        Err(e) => Probe { at, latency, status: None, error: e.to_string() },
    }
}

/// One `GET path` on a fresh connection (`Connection: close`): the status and the raw
/// answer (head and body). Each step times out after [`HEALTHZ_TIMEOUT`].
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut sock = TcpStream::connect_timeout(&addr, HEALTHZ_TIMEOUT)?;
    sock.set_read_timeout(Some(HEALTHZ_TIMEOUT))?;
    sock.set_write_timeout(Some(HEALTHZ_TIMEOUT))?;
    write!(sock, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    sock.read_to_end(&mut answer)?;
    let head = String::from_utf8_lossy(&answer[..answer.len().min(64)]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {head:?}")))?;
    Ok((status, answer))
}

/// Asks `/healthz` once a second (on the second, not one second after the last answer) from
/// a thread of its own.
pub struct Prober {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Probe>>,
}

impl Prober {
    pub fn start(addr: SocketAddr) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut probes = Vec::new();
            let mut next = Instant::now();
            while !flag.load(Ordering::Acquire) {
                let now = Instant::now();
                if now < next {
                    std::thread::sleep((next - now).min(Duration::from_millis(50)));
                    continue;
                }
                probes.push(probe(addr));
                next += Duration::from_secs(1);
            }
            probes
        });
        Prober { stop, thread }
    }

    pub fn stop(self) -> Vec<Probe> {
        self.stop.store(true, Ordering::Release);
        self.thread.join().unwrap_or_default()
    }
}

// ------------------------------------------------------------------------------- /proc

#[derive(Clone, Copy, Default)]
pub struct Sample {
    pub at: Option<Instant>,
    /// user + sys seconds so far.
    pub cpu: f64,
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

/// Reads the daemon's CPU time and memory every [`SAMPLE_EVERY`] from a thread of its own.
/// (VmHWM is the kernel's own high-water mark, so the peak is exact, not sampled.)
pub struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (flag, out) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Acquire) {
                if let Some(s) = sample(pid) {
                    out.lock().unwrap_or_else(|p| p.into_inner()).push(s);
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        Sampler { stop, samples, thread }
    }

    pub fn last(&self) -> Sample {
        self.samples.lock().unwrap_or_else(|p| p.into_inner()).last().copied().unwrap_or_default()
    }

    pub fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

pub fn sample(pid: u32) -> Option<Sample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (utime, stime, _, _) = stat_times(&stat);
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|x| x.parse().ok())
            .unwrap_or(0)
    };
    Some(Sample { at: Some(at), cpu: utime + stime, rss_kb: kb("VmRSS:"), hwm_kb: kb("VmHWM:") })
}

/// The daemon's CPU seconds at `t`, interpolated between the samples around it.
pub fn cpu_at(samples: &[Sample], t: Instant) -> f64 {
    let before = samples.iter().rev().find(|s| s.at.is_some_and(|a| a <= t));
    let after = samples.iter().find(|s| s.at.is_some_and(|a| a >= t));
    match (before, after) {
        (Some(b), Some(a)) => match (b.at, a.at) {
            (Some(tb), Some(ta)) if ta > tb => {
                b.cpu + (a.cpu - b.cpu) * (t - tb).as_secs_f64() / (ta - tb).as_secs_f64()
            }
            _ => b.cpu,
        },
        (Some(b), None) => b.cpu,
        (None, Some(a)) => a.cpu,
        (None, None) => 0.0,
    }
}

/// CPU seconds (user + sys) of each live thread of process `pid`, by thread name (`comm`,
/// at most 15 characters), summed over threads of the same name, largest first. Threads
/// that have exited are not listed (their time is in the process total).
pub fn thread_cpu(pid: u32) -> Vec<(String, f64)> {
    let mut by_name: Vec<(String, f64)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return by_name };
    for task in tasks.flatten() {
        let path = task.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else { continue };
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default().trim().to_string();
        let (u, s, _, _) = stat_times(&stat);
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some((_, cpu)) => *cpu += u + s,
            None => by_name.push((name, u + s)),
        }
    }
    by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    by_name
}

/// (utime, stime, cutime, cstime) in seconds from a `/proc/PID/stat` line.
pub fn stat_times(stat: &str) -> (f64, f64, f64, f64) {
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    let tick = clock_ticks();
    // After ")": state is field 3, so field N is at index N - 3.
    let get = |i: usize| f.get(i).copied().unwrap_or(0.0) / tick;
    (get(11), get(12), get(13), get(14))
}

/// CPU seconds (user + sys) of this process so far.
pub fn self_cpu_secs() -> f64 {
    let (u, s, _, _) = stat_times(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default());
    u + s
}

/// CPU seconds (user + sys) of the calling thread so far.
pub fn thread_self_cpu_secs() -> f64 {
    let (u, s, _, _) = stat_times(&std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default());
    u + s
}

/// CPU time of this process's reaped children (the daemon once it has exited).
pub fn children_cpu_secs() -> (f64, f64) {
    let (_, _, cu, cs) = stat_times(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default());
    (cu, cs)
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}
