//! `newsdesk run` as systemd runs it: the real binary against loopback servers, with
//! second-level schedules; signals sent with kill(1); sd_notify datagrams received on a
//! NOTIFY_SOCKET the test binds.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::{simple_feed, Daemon, Desk, Reply, TestServer};

fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn desk(name: &str) -> Desk {
    Desk::new(name).daemon(&format!("listen = \"127.0.0.1:{}\"", port()))
}

#[test]
fn polls_on_schedule_backs_off_and_honours_retry_after() {
    let srv = TestServer::start();
    srv.set("/ok.xml", Reply::rss(simple_feed("ok", 2)));
    srv.set("/fail.xml", Reply::status(500, &[]));
    srv.set("/busy.xml", Reply::status(429, &[("Retry-After", "3")]));
    srv.set("/hang.xml", Reply::Hang);
    let d = desk("schedule")
        .daemon("timeout = \"30s\"")
        .source_with("hang", &srv.url("/hang.xml"), "schedule = \"every 1s\"")
        .source_with("ok", &srv.url("/ok.xml"), "schedule = \"every 1s\"")
        .source_with("fail", &srv.url("/fail.xml"), "schedule = \"every 1s\"")
        .source_with("busy", &srv.url("/busy.xml"), "schedule = \"every 1s\"")
        .write();
    let daemon = Daemon::start(&d, &[]);
    std::thread::sleep(Duration::from_millis(4500));
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    let ok = srv.hits("/ok.xml");
    assert!((3..=6).contains(&ok), "a 1s schedule polls about every second, beside a hanging source: {ok}\n{log}");
    assert_eq!(srv.hits("/hang.xml"), 1, "a source is never polled twice at once");
    assert_eq!(srv.hits("/fail.xml"), 1, "backoff after a failure (1 min first)");
    let busy = srv.seen("/busy.xml").len();
    assert!((1..=2).contains(&busy), "Retry-After: 3 allows at most one more poll in 4.5 s: {busy}");
    assert!(log.contains("poll failed") && log.contains("source=fail") && log.contains("HTTP 500"), "{log}");
    let table = String::from_utf8_lossy(&d.run(&["sources"]).stdout).to_string();
    let fail_row = table.lines().find(|l| l.starts_with("fail ")).unwrap();
    assert!(fail_row.contains("error (500)") && fail_row.contains("HTTP 500"), "{table}");
}

#[test]
fn restart_keeps_next_due_times() {
    let srv = TestServer::start();
    srv.set("/a.xml", Reply::rss(simple_feed("a", 1)));
    let d = desk("restart").source_with("a", &srv.url("/a.xml"), "schedule = \"every 1h\"").write();
    let daemon = Daemon::start(&d, &[]);
    let start = Instant::now();
    while srv.hits("/a.xml") == 0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon.stop();
    assert_eq!(srv.hits("/a.xml"), 1);
    // Restarted: the source is not due for an hour, so it is not polled again.
    let daemon = Daemon::start(&d, &[]);
    std::thread::sleep(Duration::from_secs(2));
    daemon.stop();
    assert_eq!(srv.hits("/a.xml"), 1);
}

#[test]
fn sighup_adds_and_removes_sources_and_rejects_a_bad_file() {
    let srv = TestServer::start();
    srv.set("/a.xml", Reply::rss(simple_feed("a", 1)));
    srv.set("/b.xml", Reply::rss(simple_feed("b", 1)));
    let listen = format!("listen = \"127.0.0.1:{}\"", port());
    let d = Desk::new("reload").daemon(&listen).source_with("a", &srv.url("/a.xml"), "schedule = \"every 1s\"").write();
    let daemon = Daemon::start(&d, &[]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(srv.hits("/a.xml") >= 1);
    assert_eq!(srv.hits("/b.xml"), 0);
    // Replace a with b.
    let d2 = Desk::new("reload-next")
        .daemon(&listen)
        .source_with("b", &srv.url("/b.xml"), "schedule = \"every 1s\"")
        .write();
    let text = std::fs::read_to_string(&d2.config)
        .unwrap()
        .replace("database = \"test.db\"", &format!("database = {:?}", d.db().display().to_string()));
    std::fs::write(&d.config, &text).unwrap();
    daemon.signal("HUP");
    assert!(daemon.wait_log("configuration reloaded", Duration::from_secs(5)), "{}", daemon.log());
    std::thread::sleep(Duration::from_millis(500));
    let a_after = srv.hits("/a.xml");
    std::thread::sleep(Duration::from_millis(2000));
    assert!(srv.hits("/b.xml") >= 1, "added source polled");
    assert!(srv.hits("/a.xml") <= a_after + 1, "removed source no longer polled");
    // An invalid file is rejected with file:line:column, and polling goes on.
    std::fs::write(&d.config, format!("{text}\n[[source]]\nid = \"c\"\nurl = \"not a url\"\n")).unwrap();
    daemon.signal("HUP");
    assert!(daemon.wait_log("reload rejected", Duration::from_secs(5)), "{}", daemon.log());
    let b_before = srv.hits("/b.xml");
    std::thread::sleep(Duration::from_millis(2000));
    assert!(srv.hits("/b.xml") > b_before, "polling goes on after a rejected reload");
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0));
    let line = log.lines().find(|l| l.contains("reload rejected")).unwrap();
    assert!(line.contains(&format!("{}:", d.config.display())) && line.contains("is not a valid URL"), "{line}");
    // The removed source's items stay.
    assert_eq!(d.count("SELECT COUNT(*) FROM appearances WHERE source_id = 'a'"), 1);
}

#[test]
fn sigterm_exits_zero_without_a_partial_feed() {
    let srv = TestServer::start();
    // 200 items dripping slowly: the poll is in flight when SIGTERM arrives.
    let body = simple_feed("slow", 200).into_bytes();
    srv.set("/slow.xml", Reply::Drip { body, every: Duration::from_millis(2) });
    let d = desk("term")
        .daemon("timeout = \"60s\"")
        .source_with("slow", &srv.url("/slow.xml"), "schedule = \"every 1s\"")
        .write();
    let daemon = Daemon::start(&d, &[]);
    let start = Instant::now();
    while srv.hits("/slow.xml") == 0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (code, took, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(took < Duration::from_secs(13), "stops within the 10 s grace: {took:?}");
    let n = d.count("SELECT COUNT(*) FROM items");
    assert!(n == 0 || n == 200, "a feed commits whole or not at all: {n} items");
    let check: String = d.conn().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn systemd_ready_watchdog_and_status() {
    let srv = TestServer::start();
    srv.set("/a.xml", Reply::rss(simple_feed("a", 1)));
    let d = desk("notify").source_with("a", &srv.url("/a.xml"), "schedule = \"every 1s\"").write();
    let sock_path = d.dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let daemon = Daemon::start(&d, &[("NOTIFY_SOCKET", sock_path.to_str().unwrap()), ("WATCHDOG_USEC", "400000")]);
    let mut got = String::new();
    let end = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 4096];
    while Instant::now() < end && !(got.contains("READY=1") && got.contains("WATCHDOG=1") && got.contains("STATUS=")) {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
            got.push('\n');
        }
    }
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0));
    assert!(got.contains("READY=1"), "{got}\n{log}");
    assert!(got.contains("WATCHDOG=1"), "{got}");
    let status = got.lines().find(|l| l.starts_with("STATUS=")).unwrap();
    assert!(status.contains("1 sources, ") && status.contains("failing"), "{status}");
    let ready_at = got.find("READY=1").unwrap();
    assert!(got[..ready_at].lines().all(|l| !l.starts_with("WATCHDOG")), "no watchdog ping before READY");
}

#[test]
fn bad_config_exits_78_and_busy_port_is_a_clear_error() {
    let d = Desk::new("badrun").daemon("listen = \"nonsense\"").write();
    let out = d.run(&["run"]);
    assert_eq!(out.status.code(), Some(78));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let d = Desk::new("busyport").daemon(&format!("listen = \"{}\"", taken.local_addr().unwrap())).write();
    let out = d.run(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("binding the HTTP listener"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
