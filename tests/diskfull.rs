//! A full disk (simulated with `max_db_size`, i.e. SQLite's max_page_count): writes fail
//! with a logged error, nothing stored before is lost, the server keeps answering, and
//! polling resumes by itself once there is room.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{rss, simple_feed, Desk, Reply, TestServer};

fn big_feed(prefix: &str, n: usize) -> String {
    let body = format!("&lt;p&gt;{}&lt;/p&gt;", "a long paragraph of text ".repeat(200));
    let items: Vec<(String, String, String)> = (0..n)
        .map(|i| (format!("{prefix}-{i}"), format!("https://big.example/{prefix}/{i}"), format!("Big story {i}")))
        .collect();
    let refs: Vec<(Option<&str>, Option<&str>, &str, &str)> =
        items.iter().map(|(g, l, t)| (Some(g.as_str()), Some(l.as_str()), t.as_str(), body.as_str())).collect();
    rss(&refs)
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn full_database_fails_writes_keeps_serving_and_recovers() {
    let srv = TestServer::start();
    srv.set("/small.xml", Reply::rss(simple_feed("small", 3)));
    srv.set("/big.xml", Reply::rss(big_feed("big", 300)));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("listen = \"127.0.0.1:{port}\"");
    let small_cap = Desk::new("full")
        .daemon(&listen)
        .daemon("max_db_size = \"400KiB\"")
        .source_with("small", &srv.url("/small.xml"), "schedule = \"every 1s\"")
        .source_with("big", &srv.url("/big.xml"), "schedule = \"every 1s\"")
        .write();
    // The small feed fits.
    small_cap.fetch(&["small"]);
    assert_eq!(small_cap.count("SELECT COUNT(*) FROM items"), 3);

    let mut child = Command::new(env!("CARGO_BIN_EXE_newsdesk"))
        .arg("--config")
        .arg(&small_cap.config)
        .arg("run")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let l2 = log.clone();
    std::thread::spawn(move || {
        let mut r = std::io::BufReader::new(stderr);
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut r, &mut line).unwrap_or(0) > 0 {
            l2.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    let wait_for = |needle: &str, secs: u64| {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if log.lock().unwrap().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    assert!(wait_for("database or disk is full", 10), "{}", log.lock().unwrap());
    // Serving goes on while writes fail.
    let health = http_get(port, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert_eq!(small_cap.count("SELECT COUNT(*) FROM items"), 3, "nothing stored earlier is lost");
    // Make room: a larger cap, reloaded. Polling resumes by itself.
    let text = std::fs::read_to_string(&small_cap.config).unwrap().replace("400KiB", "64MiB");
    std::fs::write(&small_cap.config, text).unwrap();
    assert!(Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap().success());
    let end = Instant::now() + Duration::from_secs(15);
    while small_cap.count("SELECT COUNT(*) FROM items") < 303 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(small_cap.count("SELECT COUNT(*) FROM items"), 303, "{}", log.lock().unwrap());
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let check: String = small_cap.conn().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}
