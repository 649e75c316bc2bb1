//! Digests against a real `newsdesk run`: items dated in past days become one stored entry per
//! period (stable GUIDs, newest first, none for an empty period), stored entries never change
//! (late items, restarts), rss2email mails each period once, the HTML is mail-safe, and
//! `newsdesk digest` prints a period or says why it cannot.

mod common;
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use chrono_tz::Tz;
use common::{Daemon, Desk, Reply, TestServer};
use newsdesk::digest::{DigestSchedule, Period};
use support::{entries, http};

fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// (guid, title, link, description, unix time) of each item.
type Item = (String, String, String, String, i64);

fn feed(items: &[Item]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel><title>Wire</title>\
         <link>https://wire.example/</link>\n",
    );
    for (guid, title, link, desc, t) in items {
        let date = chrono::DateTime::from_timestamp(*t, 0).unwrap().to_rfc2822();
        s.push_str(&format!(
            "<item><guid isPermaLink=\"false\">{guid}</guid><link>{link}</link><title>{title}</title>\
             <description>{desc}</description><pubDate>{date}</pubDate></item>\n"
        ));
    }
    s.push_str("</channel></rss>\n");
    s
}

fn item(n: usize, title: &str, at: i64) -> Item {
    (
        format!("wire-{n}"),
        title.to_string(),
        format!("https://wire.example/news/{n}"),
        format!("&lt;p&gt;{title}. The second sentence says more.&lt;/p&gt;"),
        at,
    )
}

struct Setup {
    srv: TestServer,
    desk: Desk,
    base: String,
    periods: Vec<Period>,
    items: Vec<Item>,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let srv = TestServer::start();
        let p = port();
        let base = format!("http://127.0.0.1:{p}");
        let desk = Desk::new(name)
            .daemon(&format!(
                "listen = \"127.0.0.1:{p}\"\nbase_url = \"{base}/\"\nschedule = \"every 6h\"\ntimezone = \"UTC\""
            ))
            .source_with("wire", &srv.url("/wire.xml"), "title = \"Wire Service\"")
            .write();
        let mut f = std::fs::OpenOptions::new().append(true).open(&desk.config).unwrap();
        std::io::Write::write_all(
            &mut f,
            b"\n[[topic]]\nid = \"top-news\"\ntitle = \"Top News\"\nrank = \"coverage\"\ndigest = \"daily 07:00\"\n\n\
              [[topic]]\nid = \"plain\"\ntitle = \"Plain\"\n",
        )
        .unwrap();
        let s = DigestSchedule::parse("daily 07:00", Tz::UTC).unwrap();
        let mut periods = vec![s.last_ended(chrono::Utc::now().timestamp())];
        for _ in 0..4 {
            let prev = s.previous(periods.last().unwrap());
            periods.push(prev);
        }
        Setup { srv, desk, base, periods, items: Vec::new() }
    }

    fn add(&mut self, title: &str, period: usize) {
        let n = self.items.len();
        let at = self.periods[period].start + 5 * 3600;
        self.items.push(item(n, title, at));
        self.srv.set("/wire.xml", Reply::rss(feed(&self.items)));
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn guid(&self, period: usize) -> String {
        format!("{}/topics/top-news/digest/{}", self.base, self.periods[period].date.format("%Y-%m-%d"))
    }

    fn fetch(&self) {
        let out = self.desk.run(&["fetch"]);
        assert!(out.status.success(), "fetch: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// The digest feed's bytes once it has `n` entries.
fn wait_entries(url: &str, n: usize) -> Vec<u8> {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = http("GET", url, &[]);
        if status == 200 && entries(&body).len() == n {
            return body;
        }
        assert!(Instant::now() < end, "{url}: wanted {n} entries, got {status}: {}", String::from_utf8_lossy(&body));
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start(desk: &Desk) -> Daemon {
    let d = Daemon::start(desk, &[]);
    assert!(d.wait_log("newsdesk running", Duration::from_secs(20)), "{}", d.log());
    d
}

/// Whether `program args...` runs; otherwise skip (outside CI) or fail (in CI), as in clients.rs.
fn have(what: &str, program: &str, args: &[&str]) -> bool {
    let ok = Command::new(program).args(args).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "{what} is not installed, and CI is set: .ci/run must install it");
        println!("SKIPPED: {what} is not installed (pip install rss2email)");
    }
    ok
}

/// rss2email with a private HOME and a sendmail stand-in that files each message, as in
/// tests/clients.rs.
struct R2e {
    dir: std::path::PathBuf,
    mail: std::path::PathBuf,
}

impl R2e {
    fn new(dir: std::path::PathBuf) -> R2e {
        let mail = dir.join("mail");
        std::fs::create_dir_all(&mail).unwrap();
        let sendmail = dir.join("sendmail");
        std::fs::write(&sendmail, format!("#!/bin/sh\ncat > \"$(mktemp -p '{}' msg.XXXXXX)\"\n", mail.display()))
            .unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&sendmail, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(
            dir.join("r2e.cfg"),
            format!(
                "[DEFAULT]\nto = reader@example.com\nfrom = newsdesk@example.com\nemail-protocol = sendmail\n\
                 sendmail = {}\nhtml-mail = True\n",
                sendmail.display()
            ),
        )
        .unwrap();
        R2e { dir, mail }
    }

    fn run(&self, args: &[&str]) {
        let out = Command::new("r2e")
            .env("HOME", &self.dir)
            .env("XDG_CONFIG_HOME", self.dir.join(".config"))
            .env("XDG_DATA_HOME", self.dir.join(".local/share"))
            .env("NO_PROXY", "*")
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .arg("-c")
            .arg(self.dir.join("r2e.cfg"))
            .arg("-d")
            .arg(self.dir.join("r2e.json"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "r2e {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn messages(&self) -> Vec<String> {
        std::fs::read_dir(&self.mail).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect()
    }
}

/// Every start tag's name and attribute names (the HTML holds no raw `<` in text).
fn tags(html: &str) -> Vec<(String, Vec<String>)> {
    html.split('<')
        .skip(1)
        .filter_map(|part| part.split_once('>').map(|(inner, _)| inner))
        .filter(|inner| !inner.starts_with('/'))
        .map(|inner| {
            let name = inner.split_whitespace().next().unwrap_or_default().to_string();
            let attrs = inner
                .match_indices("=\"")
                .map(|(i, _)| inner[..i].rsplit([' ', '"']).next().unwrap_or_default().to_string())
                .collect();
            (name, attrs)
        })
        .collect()
}

fn check_mail_safe(html: &str) {
    for bad in ["<script", "src=", "<link", "<style", "class=", "url(", "<img", "<iframe", "javascript:", "\u{202E}"] {
        assert!(!html.contains(bad), "{bad:?} in {html}");
    }
    for (name, attrs) in tags(html) {
        assert!(["div", "h1", "table", "tr", "td", "p", "a", "span"].contains(&name.as_str()), "<{name}> in {html}");
        assert!(attrs.iter().any(|a| a == "style"), "<{name}> not styled inline");
        for a in &attrs {
            let ok =
                ["style", "href", "dir", "role", "width", "cellpadding", "cellspacing", "border"].contains(&a.as_str());
            assert!(ok, "attribute {a} on <{name}>");
        }
    }
}

#[test]
fn digests_are_stored_once_per_period_served_and_mailed_once() {
    let mut s = Setup::new("digest");
    // Periods 1, 2 and 4 days back have stories; 3 and the last ended one (0) have none.
    s.add("Parliament passes the budget bill after a long night", 1);
    s.add("Floods hit coastal towns in the north", 2);
    s.add("Central bank holds interest rates steady", 4);
    let hostile = format!("Evil \u{202E}desrever &lt;script&gt;alert(1)&lt;/script&gt; {}", "A".repeat(1 << 20));
    let n = s.items.len();
    s.items.push((
        format!("wire-{n}"),
        hostile,
        "javascript:alert(1)".into(),
        "&lt;p onclick=\"x()\"&gt;Hi&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=\"https://t.example/p.gif\" \
         onerror=\"alert(1)\"&gt;&lt;a href=\"javascript:alert(1)\"&gt;j&lt;/a&gt;&lt;/p&gt;"
            .into(),
        s.periods[1].start + 6 * 3600,
    ));
    s.srv.set("/wire.xml", Reply::rss(feed(&s.items)));
    s.fetch();

    let daemon = start(&s.desk);
    let rss_url = s.url("/topics/top-news/digest.rss");
    let rss = wait_entries(&rss_url, 3);
    let got = entries(&rss);
    let ids: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(ids, [s.guid(1), s.guid(2), s.guid(4)], "one entry per period with stories, newest first");
    assert_eq!(got[0].1, format!("Top News: {}", s.periods[1].label()));
    let text = String::from_utf8_lossy(&rss).to_string();
    assert!(text.contains(&format!("<atom:link href=\"{}\" rel=\"self\"", rss_url)), "{}", &text[..600]);
    assert_eq!(s.desk.count("SELECT count(*) FROM digests"), 3, "no row for the empty periods");

    // JSON Feed: HTML and a text part, mail-safe HTML, the digest URL as feed_url.
    let (_, _, json) = http("GET", &s.url("/topics/top-news/digest.json"), &[]);
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["feed_url"], s.url("/topics/top-news/digest.json"));
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for it in items {
        let html = it["content_html"].as_str().unwrap();
        check_mail_safe(html);
        assert!(it["content_text"].as_str().unwrap().contains("Full coverage: "), "{it}");
        assert_eq!(it["date_published"], it["date_modified"]);
    }
    let first = items[0]["content_html"].as_str().unwrap();
    assert!(first.contains("href=\"https://wire.example/news/0\""), "lead link: {first}");
    assert!(first.contains(&format!("href=\"{}/stories/", s.base)), "full coverage link: {first}");
    assert!(first.contains("Wire Service"), "outlet: {first}");
    assert!(first.len() < 40_000, "the 1 MB title is cut");
    let published = chrono::DateTime::parse_from_rfc3339(items[0]["date_published"].as_str().unwrap()).unwrap();
    assert_eq!(published.timestamp(), s.periods[1].end, "published at the period's end");
    let atom = http("GET", &s.url("/topics/top-news/digest.atom"), &[]).2;
    assert_eq!(entries(&atom).iter().map(|e| e.0.clone()).collect::<Vec<_>>(), ids);

    // The same serving path as topic feeds: ETag, 304, gzip, HEAD; 404s with the reason.
    let (status, headers, _) = http("GET", &rss_url, &[]);
    assert_eq!(status, 200);
    let etag = headers["etag"].to_str().unwrap().to_string();
    assert_eq!(http("GET", &rss_url, &[("If-None-Match", &etag)]).0, 304);
    let (_, gz, _) = http("GET", &rss_url, &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz["content-encoding"], "gzip");
    let (status, _, body) = http("HEAD", &rss_url, &[]);
    assert!(status == 200 && body.is_empty());
    let (status, _, body) = http("GET", &s.url("/topics/plain/digest.rss"), &[]);
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("has no digest"), "{}", String::from_utf8_lossy(&body));
    assert_eq!(http("GET", &s.url("/topics/nope/digest.rss"), &[]).0, 404);
    assert_eq!(http("GET", &s.url("/topics/top-news/digest.html"), &[]).0, 404);

    let r2e = have("rss2email", "r2e", &["--version"]).then(|| {
        let r = R2e::new(s.desk.dir.join("r2e"));
        r.run(&["add", "digest", &rss_url]);
        r.run(&["run"]);
        assert_eq!(r.messages().len(), 3, "one mail per period");
        r.run(&["run"]);
        assert_eq!(r.messages().len(), 3, "no new period, no mail");
        r
    });

    // A late item for an old period is stored, but the stored digests do not change.
    let before: Vec<Vec<u8>> = ["rss", "atom", "json"]
        .iter()
        .map(|f| http("GET", &s.url(&format!("/topics/top-news/digest.{f}")), &[]).2)
        .collect();
    s.add("Late report on the coastal floods", 2);
    s.fetch();
    assert_eq!(s.desk.count("SELECT count(*) FROM items"), 5);
    std::thread::sleep(Duration::from_secs(3));
    for (i, f) in ["rss", "atom", "json"].iter().enumerate() {
        let now = http("GET", &s.url(&format!("/topics/top-news/digest.{f}")), &[]).2;
        assert!(now == before[i], "{f} changed after a late item");
    }
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");

    // ... nor after a restart.
    let daemon = start(&s.desk);
    for (i, f) in ["rss", "atom", "json"].iter().enumerate() {
        let now = http("GET", &s.url(&format!("/topics/top-news/digest.{f}")), &[]).2;
        assert!(now == before[i], "{f} changed after a restart");
    }
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");

    // `newsdesk digest`: a stored period, an empty one, and one computed but not stored.
    let out = s.desk.run(&["digest", "top-news", "--period", &s.periods[2].date.format("%Y-%m-%d").to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("<div style=") && stdout.contains("Floods hit coastal towns"), "{stdout}");
    assert!(!stdout.contains("Late report"), "the stored digest, not a rebuilt one: {stdout}");
    assert!(
        stdout.contains(&format!("Top News: {}\n\n1. Floods hit coastal towns", s.periods[2].label())),
        "text part: {stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("stored"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = s.desk.run(&["digest", "top-news", "--period", &s.periods[3].date.format("%Y-%m-%d").to_string()]);
    assert!(out.status.success() && out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no stories"), "{}", String::from_utf8_lossy(&out.stderr));

    // A new period's entry: one more mail, the old entries unchanged.
    s.add("Scientists map deep ocean vents", 0);
    s.fetch();
    let out = s.desk.run(&["digest", "top-news"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("deep ocean vents"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not stored"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.desk.count("SELECT count(*) FROM digests"), 3, "the command never writes");
    let daemon = start(&s.desk);
    let rss = wait_entries(&rss_url, 4);
    let got = entries(&rss);
    assert_eq!(got[0].0, s.guid(0));
    assert_eq!(got[1..].iter().map(|e| e.0.clone()).collect::<Vec<_>>(), ids);
    let json: serde_json::Value =
        serde_json::from_slice(&http("GET", &s.url("/topics/top-news/digest.json"), &[]).2).unwrap();
    let old: serde_json::Value = serde_json::from_slice(&before[2]).unwrap();
    assert_eq!(
        json["items"].as_array().unwrap()[1..],
        old["items"].as_array().unwrap()[..],
        "old entries byte for byte"
    );
    if let Some(r) = &r2e {
        r.run(&["run"]);
        let mails = r.messages();
        assert_eq!(mails.len(), 4, "exactly one more mail");
        assert_eq!(mails.iter().filter(|m| m.contains("deep ocean vents")).count(), 1);
    }
    let (code, _, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn the_digest_command_names_what_is_wrong() {
    let s = Setup::new("digest-cmd");
    let fails = |args: &[&str], needle: &str| {
        let out = s.desk.run(args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    fails(&["digest", "nope"], "unknown topic \"nope\"");
    fails(&["digest", "plain"], "topic \"plain\" has no digest");
    fails(&["digest", "top-news", "--period", "2026-13-45"], "--period \"2026-13-45\" is not a date like 2026-12-06");
    fails(&["digest", "top-news", "--period", "yesterday"], "is not a date");
    let out = s.desk.run(&["digest", "top-news"]);
    assert!(out.status.success(), "an empty store: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no stories"));
}
