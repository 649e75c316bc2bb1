//! Digest: a topic's top stories per calendar period (`digest = "daily 07:00"` or
//! `"weekly mon 07:00"` in the topic's zone), for newsletter tooling.
//!
//! A period is `[previous boundary, next boundary)` in local time: a day that is 23 or 25
//! hours long (DST) is still one period; a boundary in a skipped hour is the first valid
//! instant after it, one in a repeated hour the first of the two. A period's digest is built
//! once the period has ended ([`pending`]: at daemon start, for at most [`CATCH_UP`] ended
//! periods and none before the oldest stored item, then at each period end by [`run`]) and
//! stored in `digests`, never to be rewritten: an item for an old period arriving later does
//! not change what subscribers already mailed. A period without stories gets no row, so
//! "send only when new" tools send nothing.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::store::db::{params, Connection, OptionalExtension};
use anyhow::Context;
use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;
use url::Url;

use crate::config::{Config, TopicConfig};
use crate::render;
use crate::store::Store;

/// Ended periods built at daemon start, at most.
pub const CATCH_UP: usize = 14;

/// Digest entries a feed lists, newest first.
pub const FEED_ENTRIES: usize = 30;

/// How the syntax is explained in config errors.
pub const SYNTAX: &str =
    "expected \"daily HH:MM\" or \"weekly DAY HH:MM\" on a 24-hour clock, e.g. \"daily 07:00\" or \"weekly mon 07:00\"";

/// How often periods repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// Every day at the boundary time.
    Daily,
    /// Every week on this day at the boundary time.
    Weekly(Weekday),
}

/// A topic's digest schedule: cadence, local boundary time and zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DigestSchedule {
    /// Daily or weekly.
    pub cadence: Cadence,
    /// Local time of each boundary.
    pub at: NaiveTime,
    /// The zone local times are in.
    pub zone: Tz,
}

/// One period: `[start, end)` in unix seconds, named by the local date it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// First second in the period.
    pub start: i64,
    /// First second after it.
    pub end: i64,
    /// The local date of its start boundary (weekly: the period's start date).
    pub date: NaiveDate,
    /// Daily or weekly (for its label).
    pub cadence: Cadence,
}

impl Period {
    /// "6 December 2026", or "week of 30 November 2026".
    pub fn label(&self) -> String {
        let d = self.date.format("%-d %B %Y");
        match self.cadence {
            Cadence::Daily => d.to_string(),
            Cadence::Weekly(_) => format!("week of {d}"),
        }
    }
}

impl DigestSchedule {
    /// Parses `daily 07:00` / `weekly mon 07:00` (case-insensitive words, 24-hour clock).
    pub fn parse(s: &str, zone: Tz) -> Result<DigestSchedule, String> {
        let words: Vec<String> = s.split_whitespace().map(str::to_lowercase).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let (cadence, time) = match words.as_slice() {
            ["daily", t] => (Cadence::Daily, *t),
            ["weekly", day, t] => {
                let wd = day.parse::<Weekday>().map_err(|_| format!("{s:?}: {day:?} is not a weekday; {SYNTAX}"))?;
                (Cadence::Weekly(wd), *t)
            }
            _ => return Err(format!("{s:?}: {SYNTAX}")),
        };
        let at =
            parse_hhmm(time).ok_or_else(|| format!("{s:?}: {time:?} is not a time on a 24-hour clock; {SYNTAX}"))?;
        Ok(DigestSchedule { cadence, at, zone })
    }

    /// The boundary on local date `date` as a unix time.
    pub fn boundary(&self, date: NaiveDate) -> i64 {
        let local = date.and_time(self.at);
        if let Some(t) = self.instant(local) {
            return t;
        }
        // Skipped by a forward jump: the first valid local minute after it is the instant of
        // the jump. Gaps are an hour or two (Samoa once skipped a whole day).
        let mut m = local;
        for _ in 0..26 * 60 {
            m += chrono::Duration::minutes(1);
            if let Some(t) = self.instant(m) {
                return t;
            }
        }
        local.and_utc().timestamp()
    }

    /// A local time as an instant, the first of two in a repeated hour; `None` when skipped.
    fn instant(&self, local: NaiveDateTime) -> Option<i64> {
        match self.zone.from_local_datetime(&local) {
            LocalResult::Single(t) => Some(t.timestamp()),
            LocalResult::Ambiguous(first, second) => Some(first.timestamp().min(second.timestamp())),
            LocalResult::None => None,
        }
    }

    fn step(&self, date: NaiveDate, forward: bool) -> NaiveDate {
        let days = match self.cadence {
            Cadence::Daily => 1,
            Cadence::Weekly(_) => 7,
        };
        let d = chrono::Days::new(days);
        let next = if forward { date.checked_add_days(d) } else { date.checked_sub_days(d) };
        next.unwrap_or(date)
    }

    /// The period that contains instant `t`.
    pub fn period_containing(&self, t: i64) -> Period {
        let local = DateTime::from_timestamp(t, 0).unwrap_or_default().with_timezone(&self.zone).date_naive();
        let mut d = match self.cadence {
            Cadence::Daily => local,
            Cadence::Weekly(wd) => {
                let back = (local.weekday().num_days_from_monday() + 7 - wd.num_days_from_monday()) % 7;
                local.checked_sub_days(chrono::Days::new(back.into())).unwrap_or(local)
            }
        };
        // The local date's boundary may still lie ahead (before 07:00), or, around a skipped
        // day, behind by more than one step; a few steps settle it.
        for _ in 0..4 {
            if self.boundary(d) <= t {
                break;
            }
            d = self.step(d, false);
        }
        for _ in 0..4 {
            let next = self.step(d, true);
            if self.boundary(next) > t {
                break;
            }
            d = next;
        }
        let next = self.step(d, true);
        Period { start: self.boundary(d), end: self.boundary(next), date: d, cadence: self.cadence }
    }

    /// The period starting at local date `date`'s boundary (for a weekly schedule and another
    /// weekday: the week that boundary falls in).
    pub fn period_of_date(&self, date: NaiveDate) -> Period {
        self.period_containing(self.boundary(date))
    }

    /// The period before `p`.
    pub fn previous(&self, p: &Period) -> Period {
        self.period_containing(p.start - 1)
    }

    /// The latest period that has ended by `now`.
    pub fn last_ended(&self, now: i64) -> Period {
        self.previous(&self.period_containing(now))
    }

    /// Ended periods to build at `now`, newest first: the last [`CATCH_UP`], none that ended
    /// before `oldest` (the oldest stored item's time; `None`: nothing stored, nothing to build).
    pub fn ended_periods(&self, now: i64, oldest: Option<i64>) -> Vec<Period> {
        let Some(oldest) = oldest else { return Vec::new() };
        let mut out = Vec::new();
        let mut p = self.last_ended(now);
        while out.len() < CATCH_UP && p.end > oldest {
            out.push(p);
            p = self.previous(&p);
        }
        out
    }
}

fn parse_hhmm(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.split_once(':')?;
    let ok = |x: &str, max: usize| !x.is_empty() && x.len() <= max && x.bytes().all(|b| b.is_ascii_digit());
    if !ok(h, 2) || !ok(m, 2) || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

/// One period's digest, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// Topic id.
    pub topic: String,
    /// Period start (unix seconds).
    pub start: i64,
    /// Period end (unix seconds).
    pub end: i64,
    /// `{base_url}topics/{id}/digest/{YYYY-MM-DD}`: unique per topic and period.
    pub guid: String,
    /// "Top News: 6 December 2026".
    pub title: String,
    /// Email-ready HTML (inline styles only).
    pub html: String,
    /// The plain-text part.
    pub text: String,
    /// The stories in it, best first.
    pub story_ids: Vec<i64>,
    /// When it was published: the period's end.
    pub published_at: i64,
}

/// The GUID of `topic`'s digest for `period`.
pub fn guid(base_url: &Url, topic_id: &str, period: &Period) -> String {
    render::under(base_url, &format!("topics/{topic_id}/digest/{}", period.date.format("%Y-%m-%d")))
}

/// Builds `topic`'s digest for `period` from the store (not storing it); `None` when the
/// topic has no digest or the period no story.
pub fn build(
    conn: &Connection,
    config: &Config,
    topic: &TopicConfig,
    period: &Period,
) -> crate::store::db::Result<Option<Digest>> {
    if topic.digest.is_none() {
        return Ok(None);
    }
    let stories = crate::select::select_range(conn, config, topic, period.start, period.end, topic.digest_limit)?;
    if stories.is_empty() {
        return Ok(None);
    }
    let title = format!("{}: {}", render::clean_text(&topic.title, 200), period.label());
    let (html, text) = render::digest::email(&title, &stories, &config.daemon.base_url);
    Ok(Some(Digest {
        topic: topic.id.clone(),
        start: period.start,
        end: period.end,
        guid: guid(&config.daemon.base_url, &topic.id, period),
        title,
        html,
        text,
        story_ids: stories.iter().map(|s| s.id).collect(),
        published_at: period.end,
    }))
}

/// Stores `d` unless its period is stored already (then the stored row stays as it is).
/// Returns whether it was stored.
pub fn insert(conn: &Connection, d: &Digest) -> crate::store::db::Result<bool> {
    let ids = serde_json::to_string(&d.story_ids).unwrap_or_else(|_| "[]".into());
    let n = conn.execute(
        "INSERT OR IGNORE INTO digests (topic, period_start, period_end, guid, title, html, text, story_ids, published_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![d.topic, d.start, d.end, d.guid, d.title, d.html, d.text, ids, d.published_at],
    )?;
    Ok(n > 0)
}

const COLUMNS: &str = "topic, period_start, period_end, guid, title, html, text, story_ids, published_at";

fn row(r: &crate::store::db::Row) -> crate::store::db::Result<Digest> {
    let ids: String = r.get(7)?;
    Ok(Digest {
        topic: r.get(0)?,
        start: r.get(1)?,
        end: r.get(2)?,
        guid: r.get(3)?,
        title: r.get(4)?,
        html: r.get(5)?,
        text: r.get(6)?,
        // Written by us as a JSON array; a damaged cell costs the list, not the entry.
        story_ids: serde_json::from_str(&ids).unwrap_or_default(),
        published_at: r.get(8)?,
    })
}

/// `topic`'s stored digests, newest period first, at most `limit`.
pub fn stored(conn: &Connection, topic: &str, limit: usize) -> crate::store::db::Result<Vec<Digest>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM digests WHERE topic = ?1 ORDER BY period_start DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![topic, i64::try_from(limit).unwrap_or(i64::MAX)], row)?;
    rows.collect()
}

/// The stored digest of `topic` starting at `start`, if any.
pub fn stored_at(conn: &Connection, topic: &str, start: i64) -> crate::store::db::Result<Option<Digest>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM digests WHERE topic = ?1 AND period_start = ?2"))?
        .query_row(params![topic, start], row)
        .optional()
}

/// What changes when a digest of `topic` is added: (rows, latest period start).
pub fn signature(conn: &Connection, topic: &str) -> crate::store::db::Result<(i64, i64)> {
    conn.query_row("SELECT count(*), COALESCE(max(period_start), 0) FROM digests WHERE topic = ?1", [topic], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
}

fn oldest_item(conn: &Connection) -> crate::store::db::Result<Option<i64>> {
    conn.query_row("SELECT min(COALESCE(story_time, published)) FROM items", [], |r| r.get(0))
}

/// The digests of ended periods not stored yet, for every topic with a digest, at `now`.
pub fn pending(conn: &Connection, config: &Config, now: i64) -> crate::store::db::Result<Vec<Digest>> {
    let oldest = oldest_item(conn)?;
    let mut out = Vec::new();
    for topic in &config.topics {
        let Some(schedule) = topic.digest else { continue };
        let periods = schedule.ended_periods(now, oldest);
        let Some(last) = periods.last() else { continue };
        let have: HashSet<i64> = {
            let mut stmt =
                conn.prepare_cached("SELECT period_start FROM digests WHERE topic = ?1 AND period_start >= ?2")?;
            let rows = stmt.query_map(params![topic.id, last.start], |r| r.get(0))?;
            rows.collect::<crate::store::db::Result<_>>()?
        };
        for p in periods.iter().filter(|p| !have.contains(&p.start)) {
            if let Some(d) = build(conn, config, topic, p)? {
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// Builds and stores every ended period not stored yet; returns how many were stored.
pub async fn build_ended(store: &Store, config: &Arc<Config>, now: i64) -> anyhow::Result<usize> {
    let (s, c) = (store.clone(), config.clone());
    let digests = tokio::task::spawn_blocking(move || s.read(|conn| pending(conn, &c, now)))
        .await
        .context("digest build task")?
        .context("building digests")?;
    if digests.is_empty() {
        return Ok(0);
    }
    let cfg = config.clone();
    let stored = store
        .write(move |w| -> crate::store::db::Result<Vec<(String, String)>> {
            let mut done = Vec::new();
            for d in &digests {
                // Stored and announced to the digest webhooks together, or neither.
                let tx = w.conn.transaction()?;
                if insert(&tx, d)? {
                    crate::push::webhook::record_digest(&tx, &cfg, d)?;
                    done.push((d.topic.clone(), d.guid.clone()));
                }
                tx.commit()?;
            }
            w.changed();
            Ok(done)
        })
        .await?
        .context("storing digests")?;
    for (topic, guid) in &stored {
        tracing::info!(topic = %topic, guid = %guid, "digest stored");
    }
    Ok(stored.len())
}

/// The next period end of any topic's digest after `now`.
pub fn next_end(config: &Config, now: i64) -> Option<i64> {
    config.topics.iter().filter_map(|t| t.digest).map(|s| s.period_containing(now).end).min()
}

/// The daemon's digest task: builds ended periods now (catching up), then at each period end,
/// until `stop`. Reads run on the blocking pool and the one small write goes through the
/// writer like any other job, so polls never wait on it.
pub async fn run(store: Store, config: Arc<RwLock<Arc<Config>>>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let cfg = config.read().unwrap_or_else(|p| p.into_inner()).clone();
        let now = chrono::Utc::now().timestamp();
        if let Err(e) = build_ended(&store, &cfg, now).await {
            tracing::warn!("digests: {e:#}");
        }
        // Wake a second after the next boundary; at least hourly, so a reload that adds a
        // digest or a clock change is picked up.
        let wait = next_end(&cfg, now).map_or(3600, |end| (end - now).clamp(0, 3600) + 1);
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(Duration::from_secs(wait.unsigned_abs())) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    fn sched(s: &str, zone: &str) -> DigestSchedule {
        DigestSchedule::parse(s, zone.parse().unwrap()).unwrap()
    }

    #[test]
    fn parses_the_syntax_and_rejects_the_rest() {
        let s = sched("daily 07:00", "UTC");
        assert_eq!((s.cadence, s.at), (Cadence::Daily, NaiveTime::from_hms_opt(7, 0, 0).unwrap()));
        assert_eq!(sched("Weekly MON 7:30", "UTC").cadence, Cadence::Weekly(Weekday::Mon));
        assert_eq!(sched("weekly sunday 23:59", "UTC").cadence, Cadence::Weekly(Weekday::Sun));
        for bad in [
            "daily",
            "daily 24:00",
            "daily 7am",
            "daily 07:60",
            "daily 07:0",
            "hourly 07:00",
            "weekly 07:00",
            "weekly funday 07:00",
            "daily 07:00 extra",
            "",
        ] {
            let e = DigestSchedule::parse(bad, Tz::UTC).unwrap_err();
            assert!(e.contains("daily 07:00"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn daily_periods_in_utc() {
        let s = sched("daily 07:00", "UTC");
        let p = s.period_containing(at("2026-12-06T12:00:00Z"));
        assert_eq!((p.start, p.end), (at("2026-12-06T07:00:00Z"), at("2026-12-07T07:00:00Z")));
        assert_eq!(p.label(), "6 December 2026");
        // Before the boundary: still yesterday's period; on it: the new one.
        assert_eq!(s.period_containing(at("2026-12-06T06:59:59Z")).date.to_string(), "2026-12-05");
        assert_eq!(s.period_containing(at("2026-12-06T07:00:00Z")).date.to_string(), "2026-12-06");
        let last = s.last_ended(at("2026-12-07T08:00:00Z"));
        assert_eq!(last, p);
        assert_eq!(s.previous(&p).end, p.start);
    }

    #[test]
    fn weekly_periods_start_on_their_weekday() {
        let s = sched("weekly mon 07:00", "UTC");
        // 2026-12-06 is a Sunday: its week began Monday 30 November.
        let p = s.period_containing(at("2026-12-06T12:00:00Z"));
        assert_eq!((p.start, p.end), (at("2026-11-30T07:00:00Z"), at("2026-12-07T07:00:00Z")));
        assert_eq!(p.label(), "week of 30 November 2026");
        assert_eq!(s.period_containing(at("2026-12-07T06:00:00Z")), p);
        assert_eq!(s.period_containing(at("2026-12-07T07:00:00Z")).date.to_string(), "2026-12-07");
        assert_eq!(s.period_of_date(NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()), p);
        let b = sched("weekly mon 07:00", "Europe/Berlin");
        let p = b.period_containing(at("2026-10-28T12:00:00Z"));
        assert_eq!((p.start, p.end), (at("2026-10-26T06:00:00Z"), at("2026-11-02T06:00:00Z")));
        // The week with the October change in it is 169 hours long.
        let p = b.period_containing(at("2026-10-20T12:00:00Z"));
        assert_eq!((p.start, p.end), (at("2026-10-19T05:00:00Z"), at("2026-10-26T06:00:00Z")));
        assert_eq!(p.end - p.start, 7 * 86400 + 3600);
    }

    #[test]
    fn berlin_days_across_the_dst_changes_are_one_period_each() {
        let s = sched("daily 07:00", "Europe/Berlin");
        // 29 March 2026: clocks go 02:00 -> 03:00, a 23-hour day.
        let p = s.period_containing(at("2026-03-29T12:00:00Z"));
        assert_eq!((p.start, p.end), (at("2026-03-29T05:00:00Z"), at("2026-03-30T05:00:00Z")));
        let before = s.previous(&p);
        assert_eq!((before.start, before.end), (at("2026-03-28T06:00:00Z"), at("2026-03-29T05:00:00Z")));
        assert_eq!(before.end - before.start, 23 * 3600);
        // 25 October 2026: 03:00 -> 02:00, a 25-hour day.
        let p = s.period_containing(at("2026-10-25T12:00:00Z"));
        let before = s.previous(&p);
        assert_eq!((before.start, before.end), (at("2026-10-24T05:00:00Z"), at("2026-10-25T06:00:00Z")));
        assert_eq!(before.end - before.start, 25 * 3600);
        // Every local day across both changes is exactly one period.
        let mut p = s.period_containing(at("2026-03-20T12:00:00Z"));
        for _ in 0..230 {
            let next = s.period_containing(p.end);
            assert_eq!(next.start, p.end);
            assert_eq!(next.date, p.date.succ_opt().unwrap());
            assert!([23 * 3600, 24 * 3600, 25 * 3600].contains(&(next.end - next.start)));
            p = next;
        }
    }

    #[test]
    fn a_boundary_in_a_skipped_hour_is_the_first_instant_after_it_and_a_repeated_one_the_first() {
        let s = sched("daily 02:30", "Europe/Berlin");
        // 02:30 does not exist on 29 March 2026: the day starts at 03:00 CEST (01:00 UTC).
        assert_eq!(s.boundary(NaiveDate::from_ymd_opt(2026, 3, 29).unwrap()), at("2026-03-29T01:00:00Z"));
        let p = s.period_containing(at("2026-03-29T12:00:00Z"));
        assert_eq!((p.start, p.end), (at("2026-03-29T01:00:00Z"), at("2026-03-30T00:30:00Z")));
        // 02:30 happens twice on 25 October 2026: the first (CEST, 00:30 UTC).
        assert_eq!(s.boundary(NaiveDate::from_ymd_opt(2026, 10, 25).unwrap()), at("2026-10-25T00:30:00Z"));
        let p = s.period_containing(at("2026-10-25T01:00:00Z"));
        assert_eq!(p.start, at("2026-10-25T00:30:00Z"));
    }

    #[test]
    fn catch_up_is_bounded_by_count_and_the_oldest_item() {
        let s = sched("daily 07:00", "UTC");
        let now = at("2026-12-07T08:00:00Z");
        assert!(s.ended_periods(now, None).is_empty());
        let all = s.ended_periods(now, Some(0));
        assert_eq!(all.len(), CATCH_UP);
        assert_eq!(all[0].date.to_string(), "2026-12-06");
        let some = s.ended_periods(now, Some(at("2026-12-04T12:00:00Z")));
        let dates: Vec<String> = some.iter().map(|p| p.date.to_string()).collect();
        assert_eq!(dates, ["2026-12-06", "2026-12-05", "2026-12-04"]);
    }
}
