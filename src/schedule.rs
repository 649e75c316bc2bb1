//! Schedule: when each source is next due.
//!
//! A schedule is a crontab expression (5 fields, or 6 with leading seconds; Sunday as 0 or 7;
//! names such as `MON-FRI`), evaluated in UTC, or `every <duration>`. Each source gets a
//! deterministic jitter derived from its id, so a thousand sources sharing `*/15 * * * *` do
//! not all hit the network in the same second, and the spread is the same after a restart.
//! Under `every D` the jitter is a phase anywhere in the period: each source has its own slot
//! in every period, so sources sharing an interval spread evenly over all of it, and each one
//! is polled exactly every D (see [`Schedule::next_due`]).

use std::fmt;
use std::hash::Hasher;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use siphasher::sip::SipHasher13;

/// When a source is polled.
#[derive(Clone)]
pub enum Schedule {
    /// A crontab expression (the original text kept for display).
    Cron(Box<Cron>, String),
    /// A fixed interval.
    Every(Duration),
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Every(Duration::from_secs(15 * 60))
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Cron(_, text) => f.write_str(text),
            Schedule::Every(d) => write!(f, "every {}s", d.as_secs()),
        }
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Schedule::Cron(_, a), Schedule::Cron(_, b)) => a == b,
            (Schedule::Every(a), Schedule::Every(b)) => a == b,
            _ => false,
        }
    }
}

impl Schedule {
    /// Parses `every 15m` or a crontab expression.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let t = text.trim();
        if let Some(rest) = t.strip_prefix("every ") {
            let d = crate::config::parse_duration(rest)?;
            return Ok(Schedule::Every(d));
        }
        let fields = t.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(format!(
                "{text:?} is not a schedule: expected a crontab expression with 5 fields (or 6 with leading seconds), or \"every 15m\""
            ));
        }
        let parser = CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build();
        let cron = parser.parse(t).map_err(|e| format!("{text:?} is not a valid crontab expression: {e}"))?;
        // A pattern that never fires (e.g. 30 February) would silently stop polling.
        if cron.find_next_occurrence(&Utc::now(), false).is_err() {
            return Err(format!("{text:?} never fires"));
        }
        Ok(Schedule::Cron(Box::new(cron), t.to_string()))
    }

    /// The first time strictly after `after` at which the schedule fires (without jitter).
    pub fn next_after(&self, after: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Schedule::Every(d) => after + chrono::Duration::from_std(*d).unwrap_or(chrono::Duration::minutes(15)),
            Schedule::Cron(cron, _) => {
                cron.find_next_occurrence(&after, false).unwrap_or_else(|_| after + chrono::Duration::hours(24))
            }
        }
    }

    /// The typical gap between two firings.
    pub fn period(&self, around: DateTime<Utc>) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron(..) => {
                let a = self.next_after(around);
                let b = self.next_after(a);
                (b - a).to_std().unwrap_or(Duration::from_secs(60))
            }
        }
    }

    /// Under `every D`: the first of the source's slots at or after `at` (so within D of it);
    /// `None` for a crontab schedule. The daemon's start-up catch-up uses it to put each
    /// source on its slot from the first poll on.
    pub fn slot_at_or_after(&self, source_id: &str, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let Schedule::Every(period) = self else { return None };
        let (d, phase) = every_phase(source_id, *period);
        let k = (at.timestamp_millis() - phase).saturating_add(d - 1).div_euclid(d);
        DateTime::from_timestamp_millis(k.saturating_mul(d).saturating_add(phase))
    }

    /// Next due time for `source_id` after a poll at `after`.
    ///
    /// Crontab: the next firing plus the source's jitter. `every D`: the source's own slot
    /// (its phase past a multiple of D since the Unix epoch) nearest to `after + D`. While
    /// polls run on time that is exactly D after the previous slot, whatever each poll took;
    /// after an off-slot poll (the first one, a manual fetch, a delayed retry) the source
    /// returns to its slot, between D/2 and 3D/2 later. (Adding the jitter to `after + D` on
    /// every poll, as for crontab, made `every 60s` poll each source every 60 to 90 s, and
    /// spread sources over at most 5 minutes of a longer period.)
    pub fn next_due(&self, source_id: &str, after: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Schedule::Every(d) => every_slot(source_id, *d, after),
            Schedule::Cron(..) => {
                let base = self.next_after(after);
                base + chrono::Duration::from_std(jitter(source_id, self.period(after))).unwrap_or_default()
            }
        }
    }
}

/// The slot of `source_id` under `every period` nearest to `after + period` (see
/// [`Schedule::next_due`]).
fn every_slot(source_id: &str, period: Duration, after: DateTime<Utc>) -> DateTime<Utc> {
    let (d, phase) = every_phase(source_id, period);
    let target = after.timestamp_millis().saturating_add(d);
    let k = (target - phase + d / 2).div_euclid(d);
    let slot = k.saturating_mul(d).saturating_add(phase);
    DateTime::from_timestamp_millis(slot).unwrap_or(after + chrono::Duration::milliseconds(d))
}

/// `every period` in milliseconds (capped at ~100 years so the arithmetic cannot overflow)
/// and the source's phase in it.
fn every_phase(source_id: &str, period: Duration) -> (i64, i64) {
    let d = i64::try_from(period.as_millis()).unwrap_or(i64::MAX).clamp(1, 100 * 365 * 86_400_000);
    (d, (id_hash(source_id) % d as u64) as i64)
}

/// Deterministic jitter for a source: up to half the period, at most 5 minutes.
pub fn jitter(source_id: &str, period: Duration) -> Duration {
    let span = (period / 2).min(Duration::from_secs(300)).as_millis() as u64;
    if span == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(id_hash(source_id) % span)
}

/// A stable hash of a source id (fixed keys: the same across builds and restarts).
fn id_hash(source_id: &str) -> u64 {
    let mut h = SipHasher13::new_with_keys(0x6e65_7773, 0x6465_736b);
    h.write(source_id.as_bytes());
    h.finish()
}

/// RSS `<skipHours>` (UTC hours 0-23) and `<skipDays>` (Monday..Sunday) as bit masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skip {
    /// Bit `h` set: do not poll during UTC hour `h`.
    pub hours: u32,
    /// Bit `d` set (0 = Monday): do not poll on that day (UTC).
    pub days: u8,
}

impl Skip {
    /// Whether anything is skipped.
    pub fn is_empty(&self) -> bool {
        self.hours & 0xFF_FFFF == 0 && self.days & 0x7F == 0
    }

    /// The first time at or after `t` outside the skipped hours and days. A publisher that
    /// skips everything is ignored rather than never polled again.
    pub fn next_allowed(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        use chrono::{Datelike, DurationRound, Timelike};
        if self.is_empty() || (self.hours & 0xFF_FFFF == 0xFF_FFFF) || (self.days & 0x7F == 0x7F) {
            return t;
        }
        let mut cur = t;
        for _ in 0..(24 * 8) {
            let hour_skipped = self.hours & (1 << cur.hour()) != 0;
            let day_skipped = self.days & (1 << cur.weekday().num_days_from_monday()) != 0;
            if !hour_skipped && !day_skipped {
                return cur;
            }
            cur = cur.duration_trunc(chrono::Duration::hours(1)).unwrap_or(cur) + chrono::Duration::hours(1);
        }
        t
    }
}

/// Longest backoff after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);

/// Backoff after `failures` consecutive failures: 1 min, 2, 4, ... capped at 24 h.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs(60u64.saturating_mul(1u64 << (failures - 1).min(20))).min(MAX_BACKOFF)
}

/// When to poll a source next. Upstream hints (`Retry-After`, `ttl`/`max-age`, already capped
/// by the caller) and backoff can only delay the scheduled time, never bring it forward.
pub fn plan_next(
    schedule: &Schedule,
    source_id: &str,
    now: DateTime<Utc>,
    failures: u32,
    retry_at: Option<DateTime<Utc>>,
    hint: Option<Duration>,
    skip: Skip,
) -> DateTime<Utc> {
    let mut due = schedule.next_due(source_id, now);
    let later = |d: Duration| now + chrono::Duration::from_std(d).unwrap_or_default();
    if failures > 0 {
        due = due.max(later(backoff(failures)));
    }
    if let Some(r) = retry_at {
        due = due.max(r.min(later(crate::fetch::MAX_RETRY_AFTER)));
    }
    if let Some(h) = hint {
        due = due.max(later(h));
    }
    skip.next_allowed(due)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn crontab_forms() {
        for ok in ["*/15 * * * *", "0 */2 * * MON-FRI", "0 0 * * 0", "0 0 * * 7", "*/5 * * * * *", "every 15m"] {
            assert!(Schedule::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["*/15 * * *", "61 * * * *", "every", "every 5 parsecs", "hourly-ish"] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_firing_is_utc_and_spread() {
        let s = Schedule::parse("*/15 * * * *").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 10, 7, 0).unwrap();
        assert_eq!(s.next_after(t), Utc.with_ymd_and_hms(2026, 1, 1, 10, 15, 0).unwrap());
        assert_eq!(s.period(t), Duration::from_secs(900));
        let a = s.next_due("dawn", t);
        let b = s.next_due("tass", t);
        assert_ne!(a, b);
        assert!(a >= s.next_after(t) && a < s.next_after(t) + chrono::Duration::minutes(5));
        assert_eq!(a, s.next_due("dawn", t), "jitter is deterministic");
    }

    #[test]
    fn every_keeps_its_period_and_spreads_over_all_of_it() {
        let s = Schedule::parse("every 60s").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 7).unwrap();
        // An off-slot poll: the next one is the source's slot, D/2..3D/2 later.
        let first = s.next_due("dawn", t);
        assert!(first >= t + chrono::Duration::seconds(30) && first <= t + chrono::Duration::seconds(90), "{first}");
        // On slot, whatever each poll took, the polls are exactly one period apart.
        let mut due = first;
        for latency_ms in [3, 250, 2_000, 20_000, 0] {
            let next = s.next_due("dawn", due + chrono::Duration::milliseconds(latency_ms));
            assert_eq!(next - due, chrono::Duration::seconds(60), "after a poll taking {latency_ms} ms");
            due = next;
        }
        // Ten thousand sources spread over the whole minute, not its first half.
        let mut per_10s = [0u32; 6];
        for i in 0..10_000 {
            let due = s.next_due(&format!("farm-{i:04}"), t);
            per_10s[((due.timestamp_millis() % 60_000) / 10_000) as usize] += 1;
        }
        assert!(per_10s.iter().all(|n| (1500..1840).contains(n)), "{per_10s:?}");
        // The start-up catch-up's slot is the one the polls after it keep.
        let slot = s.slot_at_or_after("dawn", t).unwrap();
        assert!(slot >= t && slot < t + chrono::Duration::seconds(60), "{slot}");
        assert_eq!(s.slot_at_or_after("dawn", slot), Some(slot));
        assert_eq!(s.next_due("dawn", slot + chrono::Duration::milliseconds(40)) - slot, chrono::Duration::seconds(60));
        assert_eq!(Schedule::parse("*/15 * * * *").unwrap().slot_at_or_after("dawn", t), None);
        // A long interval spreads over all of it too (the crontab jitter stops at 5 minutes).
        let h = Schedule::parse("every 1h").unwrap();
        let late = (0..1000).filter(|i| h.next_due(&format!("s{i}"), t).timestamp() % 3600 >= 1800).count();
        assert!((400..600).contains(&late), "{late}");
    }

    #[test]
    fn hints_and_backoff_only_delay() {
        let s = Schedule::parse("every 10m").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        let plain = plan_next(&s, "x", t, 0, None, None, Skip::default());
        assert_eq!(plan_next(&s, "x", t, 0, None, Some(Duration::from_secs(60)), Skip::default()), plain);
        assert!(
            plan_next(&s, "x", t, 0, None, Some(Duration::from_secs(3600)), Skip::default())
                >= t + chrono::Duration::hours(1)
        );
        assert!(
            plan_next(&s, "x", t, 12, None, None, Skip::default())
                >= t + chrono::Duration::hours(24) - chrono::Duration::seconds(1)
        );
        assert_eq!(backoff(1), Duration::from_secs(60));
        assert_eq!(backoff(40), MAX_BACKOFF);
        let far = t + chrono::Duration::days(30);
        assert!(
            plan_next(&s, "x", t, 1, Some(far), None, Skip::default())
                <= t + chrono::Duration::hours(24) + chrono::Duration::seconds(1)
        );
    }
}
