//! Canonical URLs: one string per article, whatever variant of its address a feed links to.
//!
//! The canonical form drops the scheme (http and https are the same article), `www.`/`m.`/`amp.`
//! host prefixes, default ports, the fragment, tracking parameters (`utm_*`, `fbclid`, ...),
//! AMP variants (`/amp`, `?amp=1`, `outputType=amp`, the Google AMP cache), and a trailing
//! slash; the remaining query parameters are sorted. It is an identity key, not a link to
//! publish: we always publish the link as the outlet gave it.

use url::Url;

/// Query parameters that only track the reader and never select content.
pub fn is_tracking_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("utm_")
        || n.starts_with("mc_")
        || n.starts_with("_hs")
        || n.starts_with("ns_")
        || n.starts_with("at_")
        || n.starts_with("pk_")
        || matches!(
            n.as_str(),
            "fbclid"
                | "gclid"
                | "gclsrc"
                | "dclid"
                | "gbraid"
                | "wbraid"
                | "msclkid"
                | "yclid"
                | "twclid"
                | "igshid"
                | "mkt_tok"
                | "_ga"
                | "_gl"
                | "ocid"
                | "cmpid"
                | "cmp"
                | "icid"
                | "smid"
                | "soc_src"
                | "soc_trk"
                | "ref_src"
                | "ref_url"
                | "wt.mc_id"
                | "spm"
                | "ito"
                | "xtor"
                | "sr_share"
                | "rss"
                | "feature"
                | "amp"
                | "outputtype"
        )
}

/// Canonical identity string for an absolute http(s) URL, or `None` for anything else.
pub fn canonicalize(link: &str) -> Option<String> {
    let mut url = Url::parse(link.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    // Google AMP cache: https://www-example-com.cdn.ampproject.org/c/s/www.example.com/path
    if url.host_str().is_some_and(|h| h.ends_with(".cdn.ampproject.org")) {
        let path = url.path().to_string();
        let rest = path
            .strip_prefix("/c/s/")
            .or_else(|| path.strip_prefix("/v/s/"))
            .or_else(|| path.strip_prefix("/c/"))
            .or_else(|| path.strip_prefix("/v/"))?;
        url = Url::parse(&format!("https://{rest}")).ok()?;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    let mut host = host;
    for prefix in ["www.", "m.", "amp.", "mobile."] {
        if let Some(rest) = host.strip_prefix(prefix) {
            if rest.contains('.') {
                host = rest;
            }
        }
    }
    let mut out = String::with_capacity(link.len());
    out.push_str(host);
    // Url already omits the scheme's default port; an explicit other port is identity.
    if let Some(port) = url.port() {
        if !(port == 80 || port == 443) {
            out.push(':');
            out.push_str(&port.to_string());
        }
    }
    let mut path = url.path().to_string();
    for suffix in ["/amp/", "/amp", ".amp", "/amp.html"] {
        if path.len() > suffix.len() && path.ends_with(suffix) {
            path.truncate(path.len() - suffix.len());
            if suffix == "/amp.html" {
                path.push_str(".html");
            }
            break;
        }
    }
    if let Some(rest) = path.strip_prefix("/amp/") {
        path = format!("/{rest}");
    }
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    if path == "/" {
        path.clear();
    }
    out.push_str(&path);
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_tracking_param(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !params.is_empty() {
        params.sort();
        let q = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        out.push('?');
        out.push_str(&q);
    }
    Some(out)
}

/// The host of a URL without `www.`, used to tell outlets apart and for per-host politeness.
pub fn host_key(url: &Url) -> String {
    let h = url.host_str().unwrap_or("").to_ascii_lowercase();
    match h.strip_prefix("www.") {
        Some(rest) => rest.to_string(),
        None => h,
    }
}

#[cfg(test)]
mod tests {
    use super::canonicalize;

    #[test]
    fn variants_of_one_article_agree() {
        let want = canonicalize("https://www.dawn.com/news/1850000/lavrov-visits-pakistan").unwrap();
        assert_eq!(want, "dawn.com/news/1850000/lavrov-visits-pakistan");
        for v in [
            "http://dawn.com/news/1850000/lavrov-visits-pakistan",
            "https://dawn.com/news/1850000/lavrov-visits-pakistan/",
            "https://www.dawn.com:443/news/1850000/lavrov-visits-pakistan#comments",
            "https://www.dawn.com/news/1850000/lavrov-visits-pakistan?utm_source=rss&utm_medium=feed",
            "https://www.dawn.com/news/1850000/lavrov-visits-pakistan?fbclid=abc&gclid=x",
            "https://www.dawn.com/news/1850000/lavrov-visits-pakistan/amp",
            "https://www.dawn.com/news/1850000/lavrov-visits-pakistan?amp=1",
            "https://amp.dawn.com/news/1850000/lavrov-visits-pakistan",
            "https://m.dawn.com/news/1850000/lavrov-visits-pakistan",
            "https://www-dawn-com.cdn.ampproject.org/c/s/www.dawn.com/news/1850000/lavrov-visits-pakistan",
            "HTTPS://WWW.DAWN.COM/news/1850000/lavrov-visits-pakistan",
        ] {
            assert_eq!(canonicalize(v).as_deref(), Some(want.as_str()), "{v}");
        }
    }

    #[test]
    fn content_selecting_parameters_stay() {
        let a = canonicalize("https://example.com/article.php?id=1&utm_campaign=x").unwrap();
        let b = canonicalize("https://example.com/article.php?id=2").unwrap();
        assert_ne!(a, b);
        assert_eq!(a, "example.com/article.php?id=1");
        assert_eq!(canonicalize("https://example.com/a?b=2&a=1"), canonicalize("https://example.com/a?a=1&b=2"));
        assert_eq!(canonicalize("https://example.com:8443/a").unwrap(), "example.com:8443/a");
        assert_eq!(canonicalize("mailto:x@example.com"), None);
        assert_eq!(canonicalize("not a url"), None);
    }
}
