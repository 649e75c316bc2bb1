//! Real feed clients against a running server: Python feedparser (RSS and Atom; its releases
//! do not read JSON Feed), jq (JSON Feed, as newsletter scripts use it), newsboat (RSS and
//! Atom subscriptions) and rss2email (the newsletter case).
//!
//! A test whose client is not installed prints why and passes, but only outside CI: with
//! `CI` set (as `.ci/run` runs), a missing client is a failure. `.ci/run` installs them.

mod common;
mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::{entries, get, Served, World, LAVROV_DAWN};

/// Whether `program args...` runs; otherwise skip (outside CI) or fail (in CI).
fn have(what: &str, program: &str, args: &[&str]) -> bool {
    let ok = Command::new(program).args(args).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is not installed, and CI is set: .ci/run must install it (apt-get install newsboat jq; pip install feedparser rss2email)"
        );
        println!("SKIPPED: {what} is not installed (apt-get install newsboat jq; pip install feedparser rss2email)");
    }
    ok
}

fn check(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs a client with a private HOME and no proxy, so nothing of this machine leaks in.
fn client(program: &str, home: &Path) -> Command {
    let mut c = Command::new(program);
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("NO_PROXY", "*")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY");
    c
}

/// How soon the daemon serves what another process stored: the writer notices a foreign
/// commit within a second, and the refresher rebuilds a topic at most every two seconds.
const FRESH_WITHIN: Duration = Duration::from_millis(4500);

const FEEDPARSER: &str = r#"
import json, sys, feedparser
d = feedparser.parse(sys.argv[1])
print(json.dumps({
    "bozo": int(d.bozo),
    "error": str(d.get("bozo_exception", "")),
    "version": d.version,
    "status": d.get("status"),
    "entries": [[e.get("id"), e.get("title"), e.get("link")] for e in d.entries],
}))
"#;

fn feedparser(home: &Path, url: &str) -> serde_json::Value {
    let out = client("python3", home).args(["-c", FEEDPARSER, url]).output().unwrap();
    serde_json::from_str(&check(&out, "feedparser")).unwrap()
}

/// (id, title, link) triples from a client's JSON answer.
fn triples(v: &serde_json::Value) -> Vec<(String, String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_str().unwrap().into(), e[1].as_str().unwrap().into(), e[2].as_str().unwrap().into()))
        .collect()
}

#[test]
fn feedparser_reads_rss_and_atom_in_order_with_stable_guids() {
    // feedparser's releases (6.0.x) read RSS and Atom but not JSON Feed; the JSON Feed
    // client test is jq, below.
    if !have("Python feedparser", "python3", &["-c", "import feedparser"]) {
        return;
    }
    let w = World::new("feedparser", &[]);
    let s = Served::start(&w.desk);
    let home = w.desk.dir.join("home");
    let mut first = Vec::new();
    for ext in ["rss", "atom"] {
        let url = s.url(&format!("/topics/top-news.{ext}"));
        let d = feedparser(&home, &url);
        assert_eq!(d["bozo"], 0, "{ext}: {d}");
        assert_eq!(d["status"], 200, "{ext}: {d}");
        let theirs = triples(&d["entries"]);
        assert_eq!(
            theirs,
            entries(&get(&url)),
            "{ext}: feedparser and feed-rs read the same stories in the same order"
        );
        assert_eq!(theirs.len(), 2);
        assert_eq!(theirs[0].1, LAVROV_DAWN, "{ext}: most covered first");
        assert!(theirs[1].1.contains("Sao Paulo"), "{ext}: {theirs:?}");
        first.push(theirs);
    }
    assert_eq!(first[0], first[1], "RSS and Atom agree");

    w.grow("Lavrov, Sharif agree on energy deal in Islamabad");
    std::thread::sleep(FRESH_WITHIN);
    for (i, ext) in ["rss", "atom"].iter().enumerate() {
        let d = feedparser(&home, &s.url(&format!("/topics/top-news.{ext}")));
        assert_eq!(d["bozo"], 0, "{ext}: {d}");
        let ids = |v: &[(String, String, String)]| v.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
        let now = triples(&d["entries"]);
        assert_eq!(ids(&now), ids(&first[i]), "{ext}: same GUIDs after the story grew");
        assert_eq!(now[0].1, "Lavrov, Sharif agree on energy deal in Islamabad");
    }
}

#[test]
fn jq_reads_the_json_feed_in_order_with_stable_guids() {
    if !have("jq", "jq", &["--version"]) {
        return;
    }
    let w = World::new("jq", &[]);
    let s = Served::start(&w.desk);
    let url = s.url("/topics/top-news.json");
    let jq = |body: &[u8]| -> serde_json::Value {
        use std::io::Write;
        let mut child = Command::new("jq")
            .args(["-c", "if .version == \"https://jsonfeed.org/version/1.1\" then [.items[] | [.id, .title, .url]] else error(\"not JSON Feed 1.1\") end"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(body).unwrap();
        let out = child.wait_with_output().unwrap();
        serde_json::from_str(&check(&out, "jq")).unwrap()
    };
    let body = get(&url);
    let first = triples(&jq(&body));
    assert_eq!(first, entries(&body), "jq and feed-rs read the same stories in the same order");
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].1, LAVROV_DAWN);
    w.grow("Lavrov, Sharif agree on energy deal in Islamabad");
    std::thread::sleep(FRESH_WITHIN);
    let now = triples(&jq(&get(&url)));
    assert_eq!(now.iter().map(|e| &e.0).collect::<Vec<_>>(), first.iter().map(|e| &e.0).collect::<Vec<_>>());
    assert_eq!(now[0].1, "Lavrov, Sharif agree on energy deal in Islamabad");
}

/// A newsboat with its own urls file, config and cache in `dir`.
struct Newsboat {
    dir: std::path::PathBuf,
}

impl Newsboat {
    fn new(dir: std::path::PathBuf, urls: &[String]) -> Newsboat {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("urls"), urls.join("\n") + "\n").unwrap();
        std::fs::write(dir.join("config"), "reload-threads 2\n").unwrap();
        Newsboat { dir }
    }

    fn run(&self, cmd: &str) -> String {
        let out = client("newsboat", &self.dir)
            .arg("-u")
            .arg(self.dir.join("urls"))
            .arg("-c")
            .arg(self.dir.join("cache.db"))
            .arg("-C")
            .arg(self.dir.join("config"))
            .args(["-x", cmd])
            .output()
            .unwrap();
        let stdout = check(&out, &format!("newsboat -x {cmd}"));
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !stdout.to_lowercase().contains("error") && !stderr.to_lowercase().contains("error"),
            "{stdout}\n{stderr}"
        );
        stdout
    }

    /// (feed URL, guid, title) of every article in the cache.
    fn articles(&self) -> Vec<(String, String, String)> {
        let c = rusqlite::Connection::open(self.dir.join("cache.db")).unwrap();
        let mut st = c.prepare("SELECT feedurl, guid, title FROM rss_item ORDER BY guid").unwrap();
        let v = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
        v
    }
}

#[test]
fn newsboat_subscribes_reloads_and_lists_the_stories() {
    if !have("newsboat", "newsboat", &["--version"]) {
        return;
    }
    let w = World::new("newsboat", &[]);
    let s = Served::start(&w.desk);
    let (rss_url, atom_url) = (s.url("/topics/top-news.rss"), s.url("/topics/top-news.atom"));
    let rss = Newsboat::new(w.desk.dir.join("nb-rss"), std::slice::from_ref(&rss_url));
    let atom = Newsboat::new(w.desk.dir.join("nb-atom"), std::slice::from_ref(&atom_url));
    // Subscribed to both formats, newsboat still shows each story once: the GUIDs agree.
    let both = Newsboat::new(w.desk.dir.join("nb-both"), &[rss_url.clone(), atom_url.clone()]);
    let mut before = Vec::new();
    for (nb, url) in [(&rss, &rss_url), (&atom, &atom_url)] {
        nb.run("reload");
        let unread = nb.run("print-unread");
        assert!(unread.starts_with("2 unread"), "{url}: {unread}");
        let arts = nb.articles();
        assert_eq!(arts.len(), 2, "{arts:?}");
        assert!(arts.iter().all(|a| &a.0 == url), "{arts:?}");
        assert!(arts.iter().any(|a| a.2 == LAVROV_DAWN) && arts.iter().any(|a| a.2.contains("Sao Paulo")), "{arts:?}");
        before.push(arts);
    }
    let guids = |v: &[(String, String, String)]| v.iter().map(|a| a.1.clone()).collect::<Vec<_>>();
    assert_eq!(guids(&before[0]), guids(&before[1]), "RSS and Atom GUIDs agree");
    both.run("reload");
    assert!(both.run("print-unread").starts_with("2 unread"));

    // New items for an existing story and a new headline: a reload finds no new article.
    w.grow("Lavrov, Sharif agree on energy deal in Islamabad");
    std::thread::sleep(FRESH_WITHIN);
    for (i, nb) in [&rss, &atom].into_iter().enumerate() {
        nb.run("reload");
        let after = nb.articles();
        assert_eq!(guids(&after), guids(&before[i]), "no new articles, no lost ones");
        assert!(after.iter().any(|a| a.2 == "Lavrov, Sharif agree on energy deal in Islamabad"), "{after:?}");
        assert!(nb.run("print-unread").starts_with("2 unread"));
    }
}

#[test]
fn rss2email_sends_one_message_per_story_and_none_again() {
    if !have("rss2email", "r2e", &["--version"]) {
        return;
    }
    let w = World::new("rss2email", &[]);
    let s = Served::start(&w.desk);
    let dir = w.desk.dir.join("r2e");
    let mail = dir.join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    // A sendmail stand-in: each message becomes one file.
    let sendmail = dir.join("sendmail");
    std::fs::write(&sendmail, format!("#!/bin/sh\ncat > \"$(mktemp -p '{}' msg.XXXXXX)\"\n", mail.display())).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sendmail, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cfg = dir.join("r2e.cfg");
    std::fs::write(
        &cfg,
        format!(
            "[DEFAULT]\nto = reader@example.com\nfrom = newsdesk@example.com\nemail-protocol = sendmail\n\
             sendmail = {}\nhtml-mail = True\n",
            sendmail.display()
        ),
    )
    .unwrap();
    let data = dir.join("r2e.json");
    let r2e = |args: &[&str]| {
        let out = client("r2e", &dir).arg("-c").arg(&cfg).arg("-d").arg(&data).args(args).output().unwrap();
        check(&out, &format!("r2e {args:?}"))
    };
    r2e(&["add", "top", &s.url("/topics/top-news.rss")]);
    r2e(&["run"]);
    let messages = || -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(&mail).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
        v.sort();
        v
    };
    let first = messages();
    assert_eq!(first.len(), 2, "one message per story");
    assert_eq!(first.iter().filter(|m| m.contains("Lavrov")).count(), 1);
    assert_eq!(first.iter().filter(|m| m.contains("Sao Paulo")).count(), 1);
    assert!(first.iter().all(|m| m.contains("https://")), "absolute links in the mail");
    r2e(&["run"]);
    assert_eq!(messages().len(), 2, "nothing new on a second run");
    // The story grows and its headline changes: still the same story, no new mail.
    w.grow("Lavrov, Sharif agree on energy deal in Islamabad");
    std::thread::sleep(FRESH_WITHIN);
    r2e(&["run"]);
    assert_eq!(messages().len(), 2, "a grown story is not a new message");
}
