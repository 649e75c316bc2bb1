//! `newsdesk check`: exit 0 for a good config; exit 78 with `file:line:column: message` for
//! each kind of mistake.

mod common;

use common::{newsdesk, temp_dir};

fn check(name: &str, toml: &str) -> (i32, String) {
    let dir = temp_dir(name);
    let path = dir.join("feeds.toml");
    std::fs::write(&path, toml).unwrap();
    let out = newsdesk(&path, &["check"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text.replace(&path.display().to_string(), "feeds.toml"))
}

const SOURCE: &str = "[[source]]\nid = \"a\"\nurl = \"https://a.example/feed\"\ntags = [\"x\"]\n";

fn expect_error(name: &str, toml: &str, location: &str, message: &str) {
    let (code, text) = check(name, toml);
    assert_eq!(code, 78, "{name}: {text}");
    let want = format!("feeds.toml:{location}: ");
    let line = text.lines().find(|l| l.starts_with(&want)).unwrap_or_else(|| panic!("{name}: no {want:?} in:\n{text}"));
    assert!(line.contains(message), "{name}: {line:?} lacks {message:?}");
}

#[test]
fn shipped_config_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds.toml");
    let out = newsdesk(&path, &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok ("));
}

#[test]
fn unknown_key() {
    expect_error("unknown", &format!("{SOURCE}colour = \"red\"\n"), "5:1", "unknown field `colour`");
    expect_error(
        "unknown-daemon",
        "[daemon]\nlisten = \"127.0.0.1:1\"\nworkers = 3\n",
        "3:1",
        "unknown field `workers`",
    );
}

#[test]
fn wrong_type() {
    expect_error("type", "[daemon]\nconcurrency = \"many\"\n", "2:15", "invalid type");
}

#[test]
fn bad_cron_expression() {
    expect_error("cron", &format!("{SOURCE}schedule = \"*/15 * * *\"\n"), "5:12", "schedule");
    expect_error("cron2", "[daemon]\nschedule = \"61 * * * *\"\n", "2:12", "not a valid crontab expression");
}

#[test]
fn bad_duration_and_size() {
    expect_error("duration", "[daemon]\ntimeout = \"30 parsecs\"\n", "2:11", "timeout: \"30 parsecs\": unknown unit");
    expect_error("size", "[daemon]\nmax_body = \"ten megs\"\n", "2:12", "max_body:");
    expect_error("nounit", "[daemon]\nretention = \"30\"\n", "2:13", "number without a unit");
}

#[test]
fn duplicate_ids() {
    expect_error(
        "dupsrc",
        &format!("{SOURCE}\n{SOURCE}"),
        "7:6",
        "duplicate source id \"a\" (first defined on line 2)",
    );
    expect_error(
        "duptopic",
        &format!("{SOURCE}[[topic]]\nid = \"t\"\n[[topic]]\nid = \"t\"\n"),
        "8:6",
        "duplicate topic id \"t\"",
    );
}

#[test]
fn invalid_url() {
    expect_error("url", "[[source]]\nid = \"a\"\nurl = \"not a url\"\n", "3:7", "is not a valid URL");
    expect_error("scheme", "[[source]]\nid = \"a\"\nurl = \"ftp://x.example/feed\"\n", "3:7", "scheme \"ftp\"");
}

#[test]
fn topic_names_unknown_source_or_tag() {
    expect_error(
        "topicsrc",
        &format!("{SOURCE}[[topic]]\nid = \"t\"\nsources = [\"a\", \"zz\"]\n"),
        "7:17",
        "unknown source \"zz\"",
    );
    expect_error(
        "topictag",
        &format!("{SOURCE}[[topic]]\nid = \"t\"\ntags = [\"nope\"]\n"),
        "7:9",
        "tag \"nope\", which no source has",
    );
}

#[test]
fn invalid_regex_and_rank() {
    expect_error(
        "regex",
        &format!("{SOURCE}[[topic]]\nid = \"t\"\ninclude = [\"ok\", \"/(unclosed/\"]\n"),
        "7:18",
        "invalid regular expression",
    );
    expect_error("rank", &format!("{SOURCE}[[topic]]\nid = \"t\"\nrank = \"best\"\n"), "7:8", "rank: expected");
}

#[test]
fn toml_syntax_error_and_every_problem_listed() {
    expect_error("syntax", "[daemon\nlisten = 1\n", "1:8", "");
    let (code, text) = check("many", "[daemon]\ntimeout = \"x\"\nmax_body = \"y\"\n");
    assert_eq!(code, 78);
    assert_eq!(text.lines().filter(|l| l.starts_with("feeds.toml:")).count(), 2, "{text}");
}

#[test]
fn missing_file() {
    let dir = temp_dir("missing");
    let out = newsdesk(&dir.join("nope.toml"), &["check"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config"));
}
