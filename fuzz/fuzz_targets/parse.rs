//! Fuzz target: parse + normalize on arbitrary bytes, with and without an HTTP charset.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(base) = url::Url::parse("https://news.example.com/feed/") else { return };
    let now = chrono::Utc::now();
    let _ = newsdesk::parse::parse_feed(data, None, &base, 1000, now);
    let _ = newsdesk::parse::parse_feed(data, Some("application/rss+xml; charset=windows-1251"), &base, 1000, now);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = newsdesk::normalize::url::canonicalize(s);
        let _ = newsdesk::parse::date::parse_date(s);
    }
});
