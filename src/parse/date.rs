//! Lenient date parsing: RFC 822/1123 and their common variants, ISO 8601 / RFC 3339 with or
//! without separators, seconds or zone, US-style "January 2, 2024 10:00 AM", and zone names.
//! A date with no zone is taken as UTC. Anything hopeless gives `None`, never a panic.

use std::sync::LazyLock;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use regex::Regex;

static ISO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^(\d{4})-?(\d{1,2})-?(\d{1,2})
        (?:[T\s]+(\d{1,2}):?(\d{2})(?::?(\d{2})(?:[.,]\d+)?)?)?
        \s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?$",
    )
    .unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});

static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)|([+-]\d{2}:?\d{2})|([a-z]+)|(\d+)")
        .unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});

/// Parses a feed date leniently.
pub fn parse_date(input: &str) -> Option<DateTime<Utc>> {
    let s = input.trim();
    if s.is_empty() || s.len() > 100 {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return Some(d.with_timezone(&Utc));
    }
    if let Some(c) = ISO.captures(s) {
        let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
        let y = c.get(1)?.as_str().parse::<i32>().ok()?;
        let offset = c.get(7).map(|m| zone_offset(m.as_str())).unwrap_or(Some(0))?;
        return build(y, num(2)?, num(3)?, num(4).unwrap_or(0), num(5).unwrap_or(0), num(6).unwrap_or(0), offset);
    }
    tokens(s)
}

fn build(y: i32, mo: u32, d: u32, h: u32, mi: u32, se: u32, offset_secs: i32) -> Option<DateTime<Utc>> {
    let date = NaiveDate::from_ymd_opt(y, mo, d)?;
    let se = se.min(59); // leap seconds
    let naive = date.and_hms_opt(h, mi, se)?;
    let tz = FixedOffset::east_opt(offset_secs)?;
    tz.from_local_datetime(&naive).single().map(|d| d.with_timezone(&Utc))
}

fn month(word: &str) -> Option<u32> {
    let w = word.to_ascii_lowercase();
    let names = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    if w.len() < 3 {
        return None;
    }
    names.iter().position(|m| w.starts_with(m)).map(|i| i as u32 + 1)
}

/// Offset in seconds east of UTC for a zone name or `+hh[:]mm`.
fn zone_offset(z: &str) -> Option<i32> {
    let z = z.trim();
    if let Some(rest) = z.strip_prefix('+').map(|r| (1, r)).or_else(|| z.strip_prefix('-').map(|r| (-1, r))) {
        let (sign, digits) = rest;
        let digits: String = digits.chars().filter(|c| c.is_ascii_digit()).collect();
        let (h, m) = match digits.len() {
            2 => (digits.parse::<i32>().ok()?, 0),
            4 => (digits[..2].parse::<i32>().ok()?, digits[2..].parse::<i32>().ok()?),
            _ => return None,
        };
        if h > 14 || m > 59 {
            return None;
        }
        return Some(sign * (h * 3600 + m * 60));
    }
    let hours: f64 = match z.to_ascii_uppercase().as_str() {
        "Z" | "UT" | "UTC" | "GMT" | "WET" => 0.0,
        "EST" => -5.0,
        "EDT" => -4.0,
        "CST" => -6.0,
        "CDT" => -5.0,
        "MST" => -7.0,
        "MDT" => -6.0,
        "PST" => -8.0,
        "PDT" => -7.0,
        "AKST" => -9.0,
        "HST" => -10.0,
        "BST" | "CET" | "WEST" => 1.0,
        "CEST" | "EET" | "SAST" => 2.0,
        "EEST" | "MSK" | "AST" => 3.0,
        "GST" => 4.0,
        "PKT" => 5.0,
        "IST" => 5.5,
        "NPT" => 5.75,
        "ICT" | "WIB" => 7.0,
        "HKT" | "SGT" | "AWST" => 8.0,
        "JST" | "KST" => 9.0,
        "AEST" => 10.0,
        "AEDT" => 11.0,
        "NZST" => 12.0,
        "NZDT" => 13.0,
        _ => return None,
    };
    Some((hours * 3600.0) as i32)
}

/// Token-based fallback: finds a month name, day, year, time, AM/PM and zone in any order.
fn tokens(s: &str) -> Option<DateTime<Utc>> {
    let mut mon = None;
    let mut nums: Vec<&str> = Vec::new();
    let mut time: Option<(u32, u32, u32)> = None;
    let mut offset = 0;
    let mut pm = None;
    for c in TOKEN.captures_iter(s) {
        if let Some(t) = c.get(1) {
            let mut parts = t.as_str().split([':', '.', ',']).map(|p| p.parse::<u32>().ok());
            let h = parts.next().flatten()?;
            let m = parts.next().flatten()?;
            let sec = parts.next().flatten().unwrap_or(0);
            time = Some((h, m, sec));
        } else if let Some(o) = c.get(2) {
            offset = zone_offset(o.as_str())?;
        } else if let Some(w) = c.get(3) {
            let w = w.as_str();
            let lower = w.to_ascii_lowercase();
            if lower == "am" || lower == "pm" {
                pm = Some(lower == "pm");
            } else if let Some(z) = zone_offset(w) {
                offset = z;
            } else if mon.is_none() {
                mon = month(w);
            }
        } else if let Some(n) = c.get(4) {
            nums.push(n.as_str());
        }
    }
    let (mut h, mi, se) = time.unwrap_or((0, 0, 0));
    match pm {
        Some(true) if h < 12 => h += 12,
        Some(false) if h == 12 => h = 0,
        _ => {}
    }
    let (y, mo, d) = match mon {
        Some(mo) => {
            let (mut year, mut day) = (None, None);
            for n in &nums {
                let v: i32 = n.parse().ok()?;
                if n.len() == 4 || v > 31 {
                    year.get_or_insert(v);
                } else if day.is_none() {
                    day = Some(v as u32);
                } else {
                    year.get_or_insert(v);
                }
            }
            (year?, mo, day?)
        }
        None => {
            // Numeric dates: 2024/01/31, 31/01/2024, 01/31/2024.
            if nums.len() < 3 {
                return None;
            }
            let a: i32 = nums[0].parse().ok()?;
            let b: u32 = nums[1].parse().ok()?;
            let c: i32 = nums[2].parse().ok()?;
            if nums[0].len() == 4 {
                (a, b, u32::try_from(c).ok()?)
            } else if a > 12 {
                (c, b, u32::try_from(a).ok()?)
            } else {
                (c, u32::try_from(a).ok()?, b)
            }
        }
    };
    let y = match y {
        0..=49 => 2000 + y,
        50..=99 => 1900 + y,
        _ => y,
    };
    build(y, mo, d, h, mi, se, offset)
}

#[cfg(test)]
mod tests {
    use super::parse_date;
    use chrono::{TimeZone, Utc};

    #[test]
    fn lenient_forms() {
        let want = Utc.with_ymd_and_hms(2024, 3, 10, 17, 32, 50).unwrap();
        for s in [
            "Sun, 10 Mar 2024 17:32:50 +0000",
            "Sun, 10 Mar 2024 17:32:50 GMT",
            "10 Mar 2024 17:32:50 Z",
            "Sunday, 10 March 2024 12:32:50 EST",
            "Sun, 10 Mar 24 17:32:50 +0000",
            "Mon, 10 Mar 2024 17:32:50 +0000",
            "2024-03-10T17:32:50Z",
            "2024-03-10T17:32:50+00:00",
            "2024-03-10 17:32:50.000",
            "2024-03-10 17:32:50",
            "2024-03-10T23:02:50+05:30",
            "20240310T173250Z",
            "March 10, 2024 5:32:50 PM",
            "Sun, 10 Mar 2024 18:32:50 CET",
        ] {
            assert_eq!(parse_date(s), Some(want), "{s}");
        }
        assert_eq!(parse_date("2024-03-10"), Some(Utc.with_ymd_and_hms(2024, 3, 10, 0, 0, 0).unwrap()));
        assert!(parse_date("Fri, 31 Dec 9999 23:59:59 GMT").is_some());
        for junk in ["", "yesterday", "32 Foo 2024", "2024-13-45", "99:99", "\u{0}", &"9".repeat(500)] {
            assert_eq!(parse_date(junk), None, "{junk}");
        }
    }
}
