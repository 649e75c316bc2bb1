//! Crash safety: `newsdesk fetch` on a farm of feeds is killed with SIGKILL at several
//! moments and restarted each time; at the end the database is intact and holds every item
//! exactly once.

mod common;

use std::time::{Duration, Instant};

use common::{simple_feed, Desk, Reply, TestServer};

const FEEDS: usize = 150;
const ITEMS: usize = 30;

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let srv = TestServer::start();
    let mut d = Desk::new("crash").daemon("concurrency = 8\nper_host = 8");
    for f in 0..FEEDS {
        // Each reply is slowed so a whole poll lasts longer than the latest kill time on any
        // machine (>= 150 / 8 * 40 ms = 750 ms), whatever the CPU speed.
        let reply = Reply::rss(simple_feed(&format!("feed{f}"), ITEMS));
        srv.set(&format!("/f{f}.xml"), Reply::Delayed(Duration::from_millis(40), Box::new(reply)));
        d = d.source(&format!("f{f}"), &srv.url(&format!("/f{f}.xml")));
    }
    let d = d.write();
    // Deterministic "random" kill times (a small LCG), spread over a cold poll's duration.
    let mut seed: u64 = 0x5eed;
    let mut kills = 0;
    for _ in 0..6 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let after = Duration::from_millis(20 + (seed >> 33) % 400);
        let mut child = d.spawn(&["fetch"]);
        let started = Instant::now();
        while started.elapsed() < after {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let _ = child.wait();
    }
    // A last, uninterrupted run completes the poll.
    let out = d.run(&["fetch"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let check: String = d.conn().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    assert_eq!(d.count("SELECT COUNT(*) FROM items"), (FEEDS * ITEMS) as i64);
    assert_eq!(d.count("SELECT COUNT(*) FROM appearances"), (FEEDS * ITEMS) as i64);
    assert_eq!(
        d.count("SELECT COUNT(*) FROM (SELECT canonical_url FROM items GROUP BY canonical_url HAVING COUNT(*) > 1)"),
        0
    );
    assert_eq!(d.count("SELECT COUNT(*) FROM items WHERE story_id IS NULL"), 0);
    assert_eq!(d.count("SELECT COUNT(*) FROM sources WHERE status = 'ok'"), FEEDS as i64);
    println!("killed {kills} of 6 runs mid-poll");
    assert!(kills >= 3, "most runs were killed mid-poll ({kills})");
}
