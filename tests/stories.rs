//! Story clustering: quality on the labelled UCI development set (through the real
//! `newsdesk eval stories` command), and stories at ingest: several outlets, one story,
//! stable across restarts.

mod common;

use common::{rss, Desk, Reply, TestServer};

/// UCI News Aggregator dev split (CC BY 4.0, see tests/fixtures/uci-README.md).
const DEV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/uci-dev.csv");

fn figure(stderr: &str, line: &str, name: &str) -> f64 {
    let l = stderr.lines().find(|l| l.starts_with(line)).unwrap_or_else(|| panic!("no {line} in {stderr}"));
    let after = l.split(name).nth(1).unwrap_or_else(|| panic!("no {name} in {l}"));
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn dev_set_quality_does_not_regress() {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_newsdesk")).args(["eval", "stories", DEV]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stderr}");
    assert_eq!(stdout.lines().next(), Some("ID,story"));
    assert_eq!(stdout.lines().count(), 2414, "one line per row plus the header");
    let b3_f1 = figure(&stderr, "B-cubed:", "F1");
    let pw_p = figure(&stderr, "pairwise:", "precision");
    assert!(b3_f1 >= 0.87, "B-cubed F1 {b3_f1} < 0.87");
    assert!(pw_p >= 0.95, "pairwise precision {pw_p} < 0.95");
}

/// Unrelated headlines from 86 real feeds, placed in the dev set's time span (see the fixtures README).
const DISTRACTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/distractors-dev.csv");

/// The dev set as a real stream: most items belong to no other outlet's story. The labelled
/// stories must still come out whole and clean, and the unrelated items must stay alone.
#[test]
fn dev_set_with_unrelated_headlines_keeps_them_apart() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_newsdesk"))
        .args(["eval", "stories", DEV, DISTRACTORS])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2413 + 564 + 1);
    let b3_f1 = figure(&stderr, "B-cubed:", "F1");
    let pw_p = figure(&stderr, "pairwise:", "precision");
    assert!(b3_f1 >= 0.87, "B-cubed F1 {b3_f1} < 0.87");
    assert!(pw_p >= 0.95, "pairwise precision {pw_p} < 0.95");
    let line = stderr.lines().find(|l| l.starts_with("singletons:")).expect("a singletons line");
    assert!(line.starts_with("singletons: 564 rows"), "{line}");
    let rate: f64 = line.split('(').nth(1).and_then(|r| r.split_whitespace().next()).unwrap().parse().unwrap();
    assert!(rate <= 3.0, "false merges {rate} % > 3 %: {line}");
}

#[test]
fn eval_without_labels_and_in_any_column_order() {
    let dir = common::temp_dir("eval");
    let csv = dir.join("x.csv");
    std::fs::write(
        &csv,
        "TIMESTAMP,PUBLISHER,URL,TITLE,ID\n\
         1394470370698,Reuters,http://r.example/a,\"Lavrov visits Pakistan, meets Sharif\",a1\n\
         1394470380000,Dawn,http://d.example/b,Lavrov visits Pakistan to meet Sharif,b2\n\
         1394470390000,Variety,http://v.example/c,Oscar ratings climb for Hollywood awards show,c3\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_newsdesk"))
        .args(["eval", "stories"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let rows: Vec<(&str, &str)> = stdout.lines().skip(1).filter_map(|l| l.split_once(',')).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].1, rows[1].1, "same story: {stdout}");
    assert_ne!(rows[0].1, rows[2].1, "different story: {stdout}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("B-cubed"), "no labels, no quality figures");
    std::fs::write(&csv, "ID,TITLE\n1,x\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_newsdesk"))
        .args(["eval", "stories"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no URL column"));
}

fn story_of(d: &Desk, source: &str) -> Vec<i64> {
    let c = d.conn();
    let mut st = c
        .prepare("SELECT i.story_id FROM items i JOIN appearances a ON a.item_id = i.id WHERE a.source_id = ?1 ORDER BY i.id")
        .unwrap();
    let v = st.query_map([source], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    v
}

#[test]
fn outlets_reporting_one_event_share_one_story_across_restarts() {
    let srv = TestServer::start();
    srv.set(
        "/xinhua.xml",
        Reply::rss(rss(&[
            (
                Some("x1"),
                Some("https://xinhua.example/1"),
                "Lavrov arrives in Islamabad for talks with Pakistani leaders",
                "Russian Foreign Minister Sergei Lavrov arrived in Islamabad.",
            ),
            (
                Some("x2"),
                Some("https://xinhua.example/2"),
                "Typhoon Haikui makes landfall in Fujian province",
                "Typhoon Haikui made landfall in Fujian.",
            ),
        ])),
    );
    srv.set(
        "/dawn.xml",
        Reply::rss(rss(&[(
            Some("d1"),
            Some("https://dawn.example/1"),
            "Lavrov in Islamabad for talks with Pakistani leadership",
            "Sergei Lavrov reached Islamabad on Tuesday.",
        )])),
    );
    srv.set(
        "/asianlite.xml",
        Reply::rss(rss(&[(
            Some("a1"),
            Some("https://asianlite.example/1"),
            "Russia's Lavrov holds talks in Islamabad with Pakistani leaders",
            "Lavrov met Pakistani leaders in Islamabad.",
        )])),
    );
    let d = Desk::new("stories")
        .source("xinhua", &srv.url("/xinhua.xml"))
        .source("dawn", &srv.url("/dawn.xml"))
        .source("asianlite", &srv.url("/asianlite.xml"))
        .write();
    d.fetch(&["xinhua"]);
    d.fetch(&["dawn"]); // a new process: the engine is rebuilt from the database
    d.fetch(&["asianlite"]);
    let x = story_of(&d, "xinhua");
    assert_eq!(x.len(), 2);
    assert_ne!(x[0], x[1], "unrelated items are separate stories");
    assert_eq!(story_of(&d, "dawn"), vec![x[0]]);
    assert_eq!(story_of(&d, "asianlite"), vec![x[0]]);
    assert_eq!(d.count("SELECT COUNT(*) FROM stories"), 2);
    assert_eq!(d.count("SELECT COUNT(*) FROM items WHERE story_id IS NULL"), 0, "every item belongs to a story");
}
