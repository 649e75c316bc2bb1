//! The PostgreSQL store against a real server: the distribution's PostgreSQL, started here
//! as an unprivileged user in a temp dir on a free port (password auth over TCP), and
//! removed afterwards. `.ci/run` installs it; with `CI` set a missing server fails the test.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{free_port, simple_feed, temp_dir, Desk, Pg, Reply, TestServer, PASSWORD};

fn newsdesk(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_newsdesk"));
    cmd.args(args).env_remove("PGPASSWORD").env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Every row of every copied table, in key order, as text.
fn dump(db: &Path) -> Vec<(String, Vec<String>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    newsdesk::store::copy::TABLES
        .iter()
        .map(|(table, keys)| {
            let sql = format!("SELECT * FROM {table} ORDER BY {}", keys.join(", "));
            let mut stmt = conn.prepare(&sql).unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let mut cells = Vec::new();
                    for i in 0..n {
                        cells.push(format!("{:?}", r.get_ref(i)?));
                    }
                    Ok(cells.join("|"))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (table.to_string(), rows)
        })
        .collect()
}

#[test]
fn migrate_copies_sqlite_to_postgres_and_back_keeping_every_row_story_id_and_feed_byte() {
    let Some(pg) = Pg::start("pg-migrate") else { return };
    pg.createdb("desk");
    let farm = TestServer::start();
    let mut desk = Desk::new("pg-migrate-desk");
    for i in 0..4 {
        farm.set(&format!("/f{i}.xml"), Reply::rss(simple_feed(&format!("Outlet {i} story"), 25)));
        desk = desk.source(&format!("s{i}"), &farm.url(&format!("/f{i}.xml")));
    }
    let desk = desk.write();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&desk.config).unwrap();
        writeln!(f, "[[topic]]\nid = \"all\"\ntitle = \"All\"\n").unwrap();
    }
    desk.fetch(&[]);
    assert_eq!(desk.count("SELECT COUNT(*) FROM items"), 100);
    let render = |d: &Desk| {
        let out = d.run(&["render", "all", "--format", "atom"]);
        assert!(out.status.success(), "{}", text(&out));
        out.stdout
    };
    let before = render(&desk);
    let original = dump(&desk.db());

    let env = [("PGPASSWORD", PASSWORD)];
    let db = desk.db();
    let out = newsdesk(&["migrate", "--from", db.to_str().unwrap(), "--to", &pg.url("desk")], &env);
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    assert!(log.contains("items") && log.contains("100 rows"), "{log}");
    assert!(!log.contains(PASSWORD));
    assert_eq!(pg.psql("desk", "SELECT COUNT(*) FROM items"), "100");
    assert_eq!(pg.psql("desk", "SELECT MAX(version) FROM newsdesk_schema"), newsdesk::store::pg::VERSION.to_string());
    // New ids continue after the copied ones.
    let max: i64 = pg.psql("desk", "SELECT MAX(id) FROM stories").parse().unwrap();
    let next = pg.psql("desk", "INSERT INTO stories (first_seen, last_seen) VALUES (0, 0) RETURNING id; ");
    assert!(next.starts_with(&(max + 1).to_string()), "{next} after {max}");
    pg.psql("desk", "DELETE FROM stories WHERE first_seen = 0 AND last_seen = 0");

    // Run again: a finished copy is a no-op, not a second set of rows.
    let out = newsdesk(&["migrate", "--from", db.to_str().unwrap(), "--to", &pg.url("desk")], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(pg.psql("desk", "SELECT COUNT(*) FROM items"), "100");

    // A non-empty target that is no copy in progress is refused.
    let other = temp_dir("pg-migrate-other").join("other.db");
    let out = newsdesk(&["migrate", "--from", &pg.url("desk"), "--to", db.to_str().unwrap()], &env);
    assert!(!out.status.success());
    assert!(text(&out).contains("is not empty"), "{}", text(&out));

    // And back into a new SQLite file: the same rows, the same feed bytes, searchable.
    let out = newsdesk(&["migrate", "--from", &pg.url("desk"), "--to", other.to_str().unwrap()], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("search index: 100 items"), "{}", text(&out));
    assert_eq!(dump(&other), original);
    let back = Desk::new("pg-migrate-back");
    let config = std::fs::read_to_string(&desk.config)
        .unwrap()
        .replace("database = \"test.db\"", &format!("database = {:?}", other.to_str().unwrap()));
    std::fs::write(&back.config, config).unwrap();
    assert_eq!(render(&back), before, "story ids and GUIDs kept: the feed is byte for byte the same");
    let out = back.run(&["stories"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn unreachable_database_and_wrong_password_are_clear_errors_naming_user_and_host_not_the_password() {
    let Some(pg) = Pg::start("pg-faults") else { return };
    pg.createdb("desk");
    let closed = free_port();
    let farm = TestServer::start();
    farm.set("/a.xml", Reply::rss(simple_feed("Outlet story", 20)));
    let desk = Desk::new("pg-faults-desk")
        .daemon(&format!("database = \"postgres://newsdesk@127.0.0.1:{closed}/desk\""))
        .source("a", &farm.url("/a.xml"))
        .write();
    // `database` appears twice now; put the URL in place of the file instead.
    let fix = |url: &str, extra: &str| {
        let c = std::fs::read_to_string(&desk.config).unwrap();
        let c: String = c
            .lines()
            .filter(|l| !l.starts_with("database"))
            .map(|l| if l == "[daemon]" { format!("[daemon]\ndatabase = \"{url}\"\n{extra}") } else { l.to_string() })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&desk.config, c).unwrap();
    };
    fix(&format!("postgres://newsdesk@127.0.0.1:{closed}/desk"), "");
    for cmd in [vec!["fetch"], vec!["run"], vec!["sources"]] {
        let started = Instant::now();
        let out = newsdesk(
            &[&["--config", desk.config.to_str().unwrap()][..], &cmd[..]].concat(),
            &[("PGPASSWORD", PASSWORD)],
        );
        assert!(!out.status.success(), "{cmd:?}");
        assert!(started.elapsed() < Duration::from_secs(12), "no busy loop, no long wait: {:?}", started.elapsed());
        let t = text(&out);
        assert!(
            t.contains(&format!("newsdesk@127.0.0.1:{closed}/desk")) && t.contains("connecting to PostgreSQL"),
            "{t}"
        );
    }

    // A wrong password: the error names the user and host, never the password given.
    fix(&pg.url("desk"), "");
    let out = newsdesk(&["--config", desk.config.to_str().unwrap(), "fetch"], &[("PGPASSWORD", "wrong-pw-4711")]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("password authentication failed for user \"newsdesk\""), "{t}");
    assert!(t.contains(&format!("127.0.0.1:{}", pg.port)), "{t}");
    assert!(!t.contains("wrong-pw-4711"), "{t}");

    // The password from a file; two instances at the same moment on an empty database: the
    // schema is migrated once, both store, and every item is there once.
    let pwfile = desk.dir.join("pgpass");
    std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
    fix(&pg.url("desk"), &format!("database_password_file = {:?}", pwfile.to_str().unwrap()));
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_newsdesk"))
            .args(["--config", desk.config.to_str().unwrap(), "fetch"])
            .env_remove("PGPASSWORD")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let t = text(&out);
        assert!(out.status.success(), "{t}");
        assert!(!t.contains(PASSWORD), "{t}");
    }
    let version = newsdesk::store::pg::VERSION.to_string();
    assert_eq!(pg.psql("desk", "SELECT COUNT(*) FROM newsdesk_schema"), version, "each migration ran once");
    assert_eq!(pg.psql("desk", "SELECT COUNT(DISTINCT version) FROM newsdesk_schema"), version);
    assert_eq!(pg.psql("desk", "SELECT COUNT(*) FROM items"), "20", "every item once");
    assert_eq!(pg.psql("desk", "SELECT COUNT(*) FROM appearances"), "20");

    // A bad URL is a config error at its line.
    fix("postgres://127.0.0.1/desk", "");
    let out = newsdesk(&["--config", desk.config.to_str().unwrap(), "check"], &[]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(text(&out).contains("names no user"), "{}", text(&out));
}

#[test]
fn a_migrate_killed_mid_copy_resumes_and_ends_with_every_row_once() {
    let Some(pg) = Pg::start("pg-resume") else { return };
    pg.createdb("desk");
    let farm = TestServer::start();
    let mut desk = Desk::new("pg-resume-desk");
    for i in 0..4 {
        farm.set(&format!("/f{i}.xml"), Reply::rss(simple_feed(&format!("Outlet {i} story"), 100)));
        desk = desk.source(&format!("s{i}"), &farm.url(&format!("/f{i}.xml")));
    }
    let desk = desk.write();
    desk.fetch(&[]);
    let original = dump(&desk.db());
    let db = desk.db();
    let args = ["migrate", "--from", db.to_str().unwrap(), "--to", &pg.url("desk")];
    // One row per transaction, so the copy is long enough to be killed in the middle of it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_newsdesk"))
        .args(args)
        .env("PGPASSWORD", PASSWORD)
        .env("NEWSDESK_MIGRATE_BATCH", "1")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    let mut partial = None;
    while Instant::now() < end {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let n: i64 = pg.try_psql("desk", "SELECT COUNT(*) FROM items").ok().and_then(|c| c.parse().ok()).unwrap_or(0);
        if n > 0 {
            partial = Some(n);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    let partial = partial.expect("the copy was seen part-way through the items");
    assert!(partial < 400, "killed before the items were all copied ({partial})");

    let out = newsdesk(&args, &[("PGPASSWORD", PASSWORD)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("resuming the copy"), "{}", text(&out));
    assert_eq!(pg.psql("desk", "SELECT COUNT(*) FROM items"), "400");
    assert_eq!(pg.psql("desk", "SELECT COUNT(DISTINCT id) FROM items"), "400");
    let back = temp_dir("pg-resume-back").join("back.db");
    let out =
        newsdesk(&["migrate", "--from", &pg.url("desk"), "--to", back.to_str().unwrap()], &[("PGPASSWORD", PASSWORD)]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(dump(&back), original, "every row once, as it was");
}

#[test]
fn tls_follows_sslmode_require_verify_ca_and_verify_full_with_clear_errors() {
    let Some(pg) = Pg::start("pg-tls") else { return };
    pg.createdb("desk");
    let farm = TestServer::start();
    farm.set("/a.xml", Reply::rss(simple_feed("Outlet story", 5)));
    let desk = Desk::new("pg-tls-desk").source("a", &farm.url("/a.xml")).write();
    let config = std::fs::read_to_string(&desk.config).unwrap();
    let fetch = |url: &str| {
        std::fs::write(&desk.config, common::with_database(&config, url)).unwrap();
        let out = newsdesk(&["--config", desk.config.to_str().unwrap(), "fetch"], &[("PGPASSWORD", PASSWORD)]);
        (out.status.success(), text(&out))
    };
    let at = |host: &str, query: &str| format!("postgres://newsdesk@{host}:{}/desk?{query}", pg.port);

    // A server without TLS: `require` refuses to go on in the clear; `prefer` goes on.
    let (ok, t) = fetch(&at("127.0.0.1", "sslmode=require"));
    assert!(!ok && t.contains("server does not support TLS") && t.contains("newsdesk@127.0.0.1"), "{t}");
    let (ok, t) = fetch(&at("127.0.0.1", "sslmode=prefer"));
    assert!(ok, "{t}");
    // `$PGSSLMODE` where the URL says nothing, as for libpq.
    std::fs::write(&desk.config, common::with_database(&config, &at("127.0.0.1", "connect_timeout=5"))).unwrap();
    let out = newsdesk(
        &["--config", desk.config.to_str().unwrap(), "fetch"],
        &[("PGPASSWORD", PASSWORD), ("PGSSLMODE", "require")],
    );
    assert!(!out.status.success() && text(&out).contains("server does not support TLS"), "{}", text(&out));

    let ca = pg.enable_tls();
    let ca = ca.to_str().unwrap();
    // `require`: encrypted, the certificate not checked (libpq's meaning).
    let (ok, t) = fetch(&at("127.0.0.1", "sslmode=require"));
    assert!(ok, "{t}");
    let target = newsdesk::store::pg::PgTarget::parse(&(pg.password_url("desk") + "?sslmode=require"), None).unwrap();
    let conn = newsdesk::store::db::PgConn::connect(&target).unwrap();
    let conn = newsdesk::store::db::Connection::Pg(Box::new(conn));
    let ssl: bool =
        conn.query_row("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", [], |r| r.get(0)).unwrap();
    assert!(ssl, "the session is encrypted");
    // `verify-ca`: the chain must lead to the given root; the certificate names only
    // `localhost`, which verify-ca does not check.
    let (ok, t) = fetch(&at("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")));
    assert!(ok, "{t}");
    // `verify-full`: the name too. 127.0.0.1 is not in the certificate; localhost is.
    let (ok, t) = fetch(&at("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}")));
    assert!(!ok && t.contains("not valid for name") && t.contains("newsdesk@127.0.0.1"), "{t}");
    let (ok, t) = fetch(&at("localhost", &format!("sslmode=verify-full&sslrootcert={ca}")));
    assert!(ok, "{t}");
    // Against the system's roots the throwaway CA is unknown.
    let (ok, t) = fetch(&at("localhost", "sslmode=verify-full"));
    assert!(!ok && t.contains("UnknownIssuer"), "{t}");
    // A root file that is not there is an error naming it, before any connection.
    let (ok, t) = fetch(&at("localhost", "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"));
    assert!(!ok && t.contains("/nonexistent/ca.pem"), "{t}");
    assert!(!t.contains(PASSWORD), "{t}");
    assert_eq!(pg.psql("desk", "SELECT COUNT(*) FROM items"), "5", "every item once over all the connections");
}

/// Claims between two instances (two stores on one database): a source is leased by one,
/// `per_host` and `concurrency` are counted over both, a source another instance is deciding
/// on (its row locked) is skipped, an expired lease is taken over, and instances claiming at
/// the same moment never exceed a host's slots.
#[test]
fn claims_hold_slots_across_instances_skip_a_locked_source_and_take_over_an_expired_lease() {
    use newsdesk::store::sources::{claim, release, Claim};
    let Some(pg) = Pg::start("pg-claims") else { return };
    pg.createdb("desk");
    let target = newsdesk::store::pg::PgTarget::parse(&pg.password_url("desk"), None).unwrap();
    let files = temp_dir("pg-claims-files");
    let a = newsdesk::store::Store::open_pg(&target, &files).unwrap();
    let b = newsdesk::store::Store::open_pg(&target, &files).unwrap();
    let mut rows: Vec<String> = ["s1", "s2", "s3"].iter().map(|s| format!("('{s}', 'h1')")).collect();
    rows.extend(["('s4', 'h2')".to_string(), "('s5', 'h3')".to_string()]);
    rows.extend((0..8).map(|i| format!("('r{i}', 'race')")));
    pg.psql(
        "desk",
        &format!(
            "INSERT INTO sources (id, url, config_url) SELECT id, 'http://' || h || '/' || id, 'http://' || h || '/' || id
             FROM (VALUES {}) v(id, h)",
            rows.join(", ")
        ),
    );
    let now = chrono::Utc::now().timestamp();
    let (until, per_host, concurrency) = (now + 10, 2, 3);
    let take = |s: &newsdesk::store::Store, owner: &str, id: &str, host: &str, at: i64| {
        s.read(|c| claim(c, id, host, owner, at, at + 10, per_host, concurrency)).unwrap()
    };

    // s5 is being decided on by A (its row locked in A's open transaction): B asks again in a second.
    let skipped = a
        .read(|c| {
            c.execute_batch("BEGIN")?;
            c.query_row("SELECT id FROM sources WHERE id = 's5' FOR UPDATE", [], |r| r.get::<_, String>(0))?;
            let r = take(&b, "B", "s5", "h3", now);
            c.execute_batch("ROLLBACK")?;
            Ok(r)
        })
        .unwrap();
    assert_eq!(skipped, Claim::Elsewhere(now + 1));

    assert_eq!(take(&a, "A", "s1", "h1", now), Claim::Mine);
    assert_eq!(take(&b, "B", "s1", "h1", now), Claim::Elsewhere(until), "s1 is A's until its lease ends");
    assert_eq!(take(&b, "B", "s2", "h1", now), Claim::Mine);
    assert_eq!(take(&a, "A", "s3", "h1", now), Claim::HostFull, "h1 has per_host = 2 leases, one of each");
    assert_eq!(take(&a, "A", "s4", "h2", now), Claim::Mine);
    assert_eq!(take(&b, "B", "s5", "h3", now), Claim::Full, "concurrency = 3 over both instances");
    a.read(|c| release(c, "s1", "A")).unwrap();
    assert_eq!(take(&b, "B", "s3", "h1", now), Claim::Mine, "A's release freed a slot of h1 and of the cluster");
    // A is killed holding s4: past its lease B takes it over.
    assert_eq!(take(&b, "B", "s4", "h2", now + 5), Claim::Elsewhere(until));
    assert_eq!(take(&b, "B", "s4", "h2", now + 11), Claim::Mine);
    // (B's own leases from `now` expired with A's; only the new one is left.)
    let leases = "SELECT string_agg(source_id || ':' || owner, ' ' ORDER BY source_id) FROM source_leases";
    assert_eq!(pg.psql("desk", leases), "s4:B");

    // Eight claims at once on one host from both instances: never more than per_host leases.
    pg.psql("desk", "DELETE FROM source_leases");
    let won: usize = std::thread::scope(|scope| {
        let (a, b, take) = (&a, &b, &take);
        let runs: Vec<_> = (0..8)
            .map(|i| {
                scope.spawn(move || {
                    let (s, owner) = if i % 2 == 0 { (a, "A") } else { (b, "B") };
                    take(s, owner, &format!("r{i}"), "race", now) == Claim::Mine
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap() as usize).sum()
    });
    let leased: usize = pg.psql("desk", "SELECT COUNT(*) FROM source_leases WHERE host = 'race'").parse().unwrap();
    assert!((1..=per_host).contains(&won) && leased == won, "{won} claims won, {leased} leases, per_host = {per_host}");
}

/// Statements queued to be sent with the next one (`execute_later`, the writer's inserts on
/// PostgreSQL): they run in order before it; one that fails is the error of the statement
/// that sent it, naming itself, and fails the transaction; a rollback drops the queue and a
/// commit sends it.
#[test]
fn queued_statements_run_in_order_fail_their_transaction_and_are_dropped_by_a_rollback() {
    use newsdesk::store::db::{Connection, PgConn};
    let Some(pg) = Pg::start("pg-pipeline") else { return };
    pg.createdb("desk");
    let target = newsdesk::store::pg::PgTarget::parse(&pg.password_url("desk"), None).unwrap();
    let conn = Connection::Pg(Box::new(PgConn::connect(&target).unwrap()));
    conn.execute_batch("CREATE TABLE t (id BIGINT PRIMARY KEY, after BIGINT)").unwrap();
    let count = |c: &Connection| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0));

    conn.execute_batch("BEGIN").unwrap();
    conn.execute_later("INSERT INTO t VALUES (?1, NULL)", [1]).unwrap();
    conn.execute_later("UPDATE t SET after = ?1 WHERE id = 1", [2]).unwrap();
    assert_eq!(pg.psql("desk", "SELECT COUNT(*) FROM t"), "0", "nothing sent yet");
    assert_eq!(count(&conn).unwrap(), 1);
    let after: i64 = conn.query_row("SELECT after FROM t WHERE id = 1", [], |r| r.get(0)).unwrap();
    assert_eq!(after, 2, "the update ran after the insert");
    conn.execute_later("INSERT INTO t VALUES (?1, NULL)", [1]).unwrap();
    conn.execute_later("INSERT INTO t VALUES (?1, NULL)", [3]).unwrap();
    let err = count(&conn).unwrap_err().to_string();
    assert!(err.contains("duplicate key") && err.contains("INSERT INTO t"), "{err}");
    conn.execute_batch("ROLLBACK").unwrap();
    assert_eq!(count(&conn).unwrap(), 0, "the failed transaction stored nothing");

    conn.execute_batch("BEGIN").unwrap();
    conn.execute_later("INSERT INTO t VALUES (?1, NULL)", [5]).unwrap();
    conn.execute_batch("ROLLBACK").unwrap();
    conn.execute_batch("BEGIN").unwrap();
    conn.execute_later("INSERT INTO t VALUES (?1, NULL)", [7]).unwrap();
    conn.execute_batch("COMMIT").unwrap();
    assert_eq!(
        pg.psql("desk", "SELECT string_agg(id::text, ',') FROM t"),
        "7",
        "the rollback dropped 5, the commit sent 7"
    );
}

/// Reads beyond the pool wait for a pooled connection instead of each connecting (and then
/// dropping) one of its own: 24 threads reading at once open at most 8 server sessions (24 without the bound).
#[test]
fn reads_beyond_the_pool_wait_for_a_pooled_connection_instead_of_opening_their_own() {
    let Some(pg) = Pg::start("pg-pool") else { return };
    pg.createdb("desk");
    let target = newsdesk::store::pg::PgTarget::parse(&pg.password_url("desk"), None).unwrap();
    let store = newsdesk::store::Store::open_pg(&target, &temp_dir("pg-pool-files")).unwrap();
    let sessions =
        || -> i64 { pg.psql("desk", "SELECT sessions FROM pg_stat_database WHERE datname = 'desk'").parse().unwrap() };
    let before = sessions();
    std::thread::scope(|s| {
        for _ in 0..24 {
            s.spawn(|| {
                for _ in 0..4 {
                    store.read(|c| c.query_row("SELECT pg_sleep(0.02)::text", [], |r| r.get::<_, String>(0))).unwrap();
                }
            });
        }
    });
    // (Each psql call above and below is a session too.)
    let opened = sessions() - before - 1;
    assert!(opened <= 8, "{opened} sessions opened for 96 reads by 24 threads");
}

/// An item seen in one more source is found by that source's name on PostgreSQL, with one
/// index row (its headline and summary still found), whether the sources sharing it are
/// polled one at a time or at once.
#[test]
fn an_item_in_more_sources_is_found_by_each_name_with_one_index_row() {
    let Some(pg) = Pg::start("pg-relink") else { return };
    pg.createdb("desk");
    let srv = TestServer::start();
    let budget = |guid: &str| {
        Reply::rss(common::rss(&[(
            Some(guid),
            Some("https://news.test/budget"),
            "Parliament passes budget",
            "The vote in the assembly was close.",
        )]))
    };
    for (path, guid) in [("/alpha.xml", "a1"), ("/bravo.xml", "b1"), ("/charlie.xml", "c1"), ("/delta.xml", "d1")] {
        srv.set(path, budget(guid));
    }
    let desk = Desk::new("pg-relink-desk")
        .source_with("alpha", &srv.url("/alpha.xml"), "title = \"Alpha Times\"")
        .source_with("bravo", &srv.url("/bravo.xml"), "title = \"Bravo Post\"")
        .source_with("charlie", &srv.url("/charlie.xml"), "title = \"Charlie Herald\"")
        .source_with("delta", &srv.url("/delta.xml"), "title = \"Delta Ledger\"")
        .write();
    let config = common::with_database(&std::fs::read_to_string(&desk.config).unwrap(), &pg.password_url("desk"));
    std::fs::write(&desk.config, &config).unwrap();
    let fetch = |ids: &[&str]| {
        let mut args = vec!["fetch"];
        args.extend(ids);
        let out = common::newsdesk(&desk.config, &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let found = |word: &str| {
        pg.psql("desk", &format!("SELECT COUNT(*) FROM item_search WHERE doc @@ to_tsquery('simple', '{word}')"))
    };
    fetch(&["alpha"]);
    assert_eq!(found("bravo"), "0");
    fetch(&["bravo"]);
    assert_eq!(found("bravo"), "1");
    fetch(&["charlie", "delta"]);
    for word in ["alpha", "bravo", "charlie", "delta", "parliament", "assembly", "news.test"] {
        assert_eq!(found(word), "1", "{word}");
    }
    assert_eq!(pg.psql("desk", "SELECT COUNT(*) || ' ' || COUNT(DISTINCT rowid) FROM item_search"), "1 1");
    assert_eq!(pg.psql("desk", "SELECT COUNT(*) FROM appearances"), "4");
}

/// The turns whose merges a writer follows run from the last turn it followed others in, not
/// from its previous turn: a turn in between that stored no items (only source state, which
/// does not look at the story engine) must not hide another writer's merge before it.
#[test]
fn merges_to_follow_span_turns_that_took_no_items() {
    use newsdesk::store::db::{Behavior, Foreign};
    let Some(pg) = Pg::start("pg-turns") else { return };
    pg.createdb("desk");
    let target = newsdesk::store::pg::PgTarget::parse(&pg.password_url("desk"), None).unwrap();
    let files = temp_dir("pg-turns-files");
    let (a, b) = (
        newsdesk::store::Store::open_pg(&target, &files).unwrap(),
        newsdesk::store::Store::open_pg(&target, &files).unwrap(),
    );
    // One write turn; `follow` reads what other writers did, as the story engine's first use does.
    let turn = |s: &newsdesk::store::Store, follow: bool| {
        s.write_blocking(move |w| {
            w.conn.begin(Behavior::Immediate)?;
            let seen = follow.then(|| (w.conn.take_foreign_write(), w.conn.missed_turns()));
            w.conn.commit()?;
            Ok::<_, newsdesk::store::db::Error>((seen, w.conn.write_turn()))
        })
        .unwrap()
        .unwrap()
    };
    let (_, first) = turn(&a, true);
    let (_, merged_in) = turn(&b, false);
    let (_, _) = turn(&a, false);
    let (seen, current) = turn(&a, true);
    let (foreign, missed) = seen.unwrap();
    assert_eq!(foreign, Foreign::Added);
    let (from, to) = missed.unwrap();
    assert_eq!((Some(from), Some(to)), (first, current));
    assert!(from < merged_in.unwrap() && merged_in.unwrap() < to, "{from} < {merged_in:?} < {to}");
}
