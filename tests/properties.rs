//! Properties that must hold for any input: canonical URLs are idempotent and tracking
//! parameters never change identity; date parsing and feed parsing never panic.

use chrono::Utc;
use newsdesk::normalize::url::canonicalize;
use newsdesk::parse::{date::parse_date, parse_feed};
use proptest::prelude::*;

fn url_strategy() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        "example.com",
        "www.example.com",
        "m.news.example.org",
        "amp.dawn.com",
        "127.0.0.1",
        "xn--bcher-kva.example"
    ];
    let scheme = prop_oneof!["http", "https", "HTTPS"];
    let port =
        prop_oneof![Just(String::new()), Just(":80".to_string()), Just(":443".to_string()), Just(":8080".to_string())];
    let seg = "[a-zA-Z0-9._~%-]{0,12}";
    let path = prop::collection::vec(seg, 0..5).prop_map(|v| v.join("/"));
    let key = "[a-z_]{1,8}";
    let query = prop::collection::vec((key, "[a-zA-Z0-9%+-]{0,8}"), 0..4);
    let slash = prop::bool::ANY;
    (scheme, host, port, path, query, slash, "[a-z]{0,6}").prop_map(|(s, h, p, path, q, slash, frag)| {
        let mut u = format!("{s}://{h}{p}/{path}");
        if slash {
            u.push('/');
        }
        if !q.is_empty() {
            u.push('?');
            u.push_str(&q.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"));
        }
        if !frag.is_empty() {
            u.push('#');
            u.push_str(&frag);
        }
        u
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn canonical_url_is_idempotent(u in url_strategy()) {
        if let Some(c) = canonicalize(&u) {
            let again = canonicalize(&format!("https://{c}")).expect("a canonical URL parses again");
            prop_assert_eq!(again, c);
        }
    }

    #[test]
    fn tracking_parameters_never_change_identity(
        u in url_strategy(),
        tracker in prop_oneof!["utm_source", "utm_medium", "utm_campaign", "fbclid", "gclid", "mc_eid", "_ga", "ocid"],
        value in "[a-zA-Z0-9]{1,10}",
    ) {
        let base = u.split('#').next().unwrap_or(&u).to_string();
        let sep = if base.contains('?') { '&' } else { '?' };
        let tracked = format!("{base}{sep}{tracker}={value}");
        prop_assert_eq!(canonicalize(&base), canonicalize(&tracked));
    }

    #[test]
    fn scheme_and_www_never_change_identity(path in "[a-z0-9/-]{0,30}") {
        let a = canonicalize(&format!("http://www.example.com/{path}"));
        let b = canonicalize(&format!("https://example.com/{path}"));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn date_parsing_never_panics(s in "\\PC{0,60}") {
        let _ = parse_date(&s);
    }

    #[test]
    fn date_like_junk_never_panics(
        d in 0u32..40, m in prop_oneof![Just("Jan"), Just("Feb"), Just("Sept"), Just("Foo"), Just("")], y in 0i32..100000,
        h in 0u32..30, mi in 0u32..70, z in prop_oneof![Just("GMT"), Just("+0530"), Just("-99:99"), Just("EST"), Just("XYZ"), Just("")],
    ) {
        let _ = parse_date(&format!("Mon, {d} {m} {y} {h}:{mi}:00 {z}"));
        let _ = parse_date(&format!("{y}-{m}-{d}T{h}:{mi}:00{z}"));
    }

    #[test]
    fn feed_parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let base = url::Url::parse("http://example.com/").unwrap();
        let _ = parse_feed(&bytes, Some("text/xml; charset=utf-16"), &base, 100, Utc::now());
        let mut doc = b"<rss version=\"2.0\"><channel><item><title>".to_vec();
        doc.extend_from_slice(&bytes);
        let _ = parse_feed(&doc, None, &base, 100, Utc::now());
    }
}
