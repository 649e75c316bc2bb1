//! Fetch: one polite conditional GET per source, and what its outcome means.
//!
//! Sends the stored `ETag` and `Last-Modified` together; accepts gzip and brotli; enforces a
//! connect timeout, a total timeout, and a body cap counted on the *decompressed* bytes while
//! streaming (a gzip bomb stops at the cap). Redirects are followed by hand (at most
//! [`MAX_REDIRECTS`]) so we can tell permanent from temporary ones and refuse a hop from a
//! public address to a loopback, private or link-local one; after such a redirect, names
//! resolve to public addresses only, so DNS rebinding between check and connect cannot help.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{self, HeaderMap};
use reqwest::StatusCode;
use url::Url;

/// Redirect hops followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// Retry-After and similar hints are capped at this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// HTTP cache validators remembered per source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The last `ETag`.
    pub etag: Option<String>,
    /// The last `Last-Modified`.
    pub last_modified: Option<String>,
}

/// A successful fetch.
#[derive(Debug)]
pub struct Fetched {
    /// `None` for 304 Not Modified.
    pub body: Option<Vec<u8>>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// Validators to store for the next poll.
    pub validators: Validators,
    /// The URL the body came from (after redirects).
    pub final_url: Url,
    /// Set when every hop was permanent (301/308): the source's stored URL should change.
    pub moved_to: Option<Url>,
    /// `Cache-Control: max-age`, a hint that may delay the next poll.
    pub max_age: Option<Duration>,
    /// HTTP status.
    pub status: u16,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The whole request took longer than the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// DNS, TCP, TLS or protocol failure.
    #[error("network error: {0}")]
    Network(String),
    /// The decompressed body exceeded the cap.
    #[error("response body exceeds the {0}-byte limit")]
    TooLarge(u64),
    /// More than [`MAX_REDIRECTS`] hops.
    #[error("too many redirects (more than {MAX_REDIRECTS})")]
    TooManyRedirects,
    /// A redirect came back to a URL already visited.
    #[error("redirect loop at {0}")]
    RedirectLoop(String),
    /// A redirect without a usable `Location`.
    #[error("redirect ({0}) without a valid Location header")]
    BadRedirect(u16),
    /// A public URL redirected to a loopback/private/link-local address.
    #[error("refused redirect from a public address to a private one: {0}")]
    PrivateRedirect(String),
    /// 410 Gone: the source should be retired.
    #[error("gone (HTTP 410): the publisher removed this feed")]
    Gone,
    /// 429 or 503: try again later.
    #[error("HTTP {status}: server asks to retry later{}", .retry_after.map(|d| format!(" (Retry-After {}s)", d.as_secs())).unwrap_or_default())]
    RetryLater {
        /// 429 or 503.
        status: u16,
        /// The parsed and capped `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Any other non-success status.
    #[error("HTTP {0}")]
    Status(u16),
    /// Reading a `file://` source failed.
    #[error("cannot read {path}: {error}")]
    File {
        /// The path.
        path: String,
        /// The I/O error.
        error: String,
    },
}

/// Settings for the fetcher.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    /// Total time budget per fetch.
    pub timeout: Duration,
    /// Time budget for connecting.
    pub connect_timeout: Duration,
    /// Body cap after decompression.
    pub max_body: u64,
}

/// A reusable HTTP client with our limits.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    /// The same client, but names resolve to public addresses only ([`PublicOnly`]): every hop
    /// after a public source redirected goes through it.
    public_client: reqwest::Client,
    limits: FetchLimits,
}

impl Fetcher {
    /// Builds the client (TLS via rustls with the ring provider).
    pub fn new(limits: FetchLimits) -> anyhow::Result<Fetcher> {
        // Installing twice is harmless (the second call just reports the first is in place).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = || {
            reqwest::Client::builder()
                .user_agent(crate::user_agent())
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(limits.connect_timeout)
                .timeout(limits.timeout)
                .pool_idle_timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(8)
        };
        let client = builder().build()?;
        let public_client = builder().dns_resolver(PublicOnly).build()?;
        Ok(Fetcher { client, public_client, limits })
    }

    /// Fetches `url`, conditionally on `validators`.
    pub async fn fetch(&self, url: &Url, validators: &Validators) -> Result<Fetched, FetchError> {
        if url.scheme() == "file" {
            return self.fetch_file(url).await;
        }
        match tokio::time::timeout(self.limits.timeout, self.fetch_http(url, validators)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(self.limits.timeout)),
        }
    }

    async fn fetch_file(&self, url: &Url) -> Result<Fetched, FetchError> {
        let path = url
            .to_file_path()
            .map_err(|_| FetchError::File { path: url.to_string(), error: "not a local path".into() })?;
        let err = |e: std::io::Error| FetchError::File { path: path.display().to_string(), error: e.to_string() };
        let meta = tokio::fs::metadata(&path).await.map_err(err)?;
        if meta.len() > self.limits.max_body {
            return Err(FetchError::TooLarge(self.limits.max_body));
        }
        let body = tokio::fs::read(&path).await.map_err(err)?;
        Ok(Fetched {
            body: Some(body),
            content_type: None,
            validators: Validators::default(),
            final_url: url.clone(),
            moved_to: None,
            max_age: None,
            status: 200,
        })
    }

    async fn fetch_http(&self, start: &Url, validators: &Validators) -> Result<Fetched, FetchError> {
        let mut url = start.clone();
        let mut visited = HashSet::from([url.to_string()]);
        let mut all_permanent = true;
        let origin_private = is_private_host(start).await;
        let mut client = &self.client;
        for hop in 0..=MAX_REDIRECTS {
            let mut req = client.get(url.clone()).header(header::ACCEPT, ACCEPT);
            if let Some(etag) = &validators.etag {
                req = req.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &validators.last_modified {
                req = req.header(header::IF_MODIFIED_SINCE, lm);
            }
            let resp = req.send().await.map_err(|e| network_error(&e, self.limits.timeout))?;
            let status = resp.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                if hop == MAX_REDIRECTS {
                    return Err(FetchError::TooManyRedirects);
                }
                let next = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l.trim()).ok())
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or(FetchError::BadRedirect(status.as_u16()))?;
                if !visited.insert(next.to_string()) {
                    return Err(FetchError::RedirectLoop(next.to_string()));
                }
                if !origin_private {
                    if is_private_host(&next).await {
                        return Err(FetchError::PrivateRedirect(next.to_string()));
                    }
                    // The check above resolved the name once; a DNS answer that changes before
                    // the connection (rebinding) must not reach a private address either.
                    client = &self.public_client;
                }
                all_permanent &= matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT);
                url = next;
                continue;
            }
            let moved_to = (all_permanent && url != *start).then(|| url.clone());
            return self.finish(resp, url, moved_to, validators).await;
        }
        Err(FetchError::TooManyRedirects)
    }

    async fn finish(
        &self,
        mut resp: reqwest::Response,
        final_url: Url,
        moved_to: Option<Url>,
        old: &Validators,
    ) -> Result<Fetched, FetchError> {
        let status = resp.status();
        let headers = resp.headers().clone();
        let new_validators = Validators {
            etag: header_str(&headers, header::ETAG).or_else(|| old.etag.clone()),
            last_modified: header_str(&headers, header::LAST_MODIFIED).or_else(|| old.last_modified.clone()),
        };
        let max_age = cache_max_age(&headers);
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched {
                body: None,
                content_type: None,
                validators: new_validators,
                final_url,
                moved_to,
                max_age,
                status: 304,
            });
        }
        match status.as_u16() {
            200..=299 => {}
            410 => return Err(FetchError::Gone),
            429 | 503 => {
                return Err(FetchError::RetryLater {
                    status: status.as_u16(),
                    retry_after: headers
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, Utc::now())),
                })
            }
            s => return Err(FetchError::Status(s)),
        }
        if resp.content_length().is_some_and(|n| n > self.limits.max_body)
            && !headers.contains_key(header::CONTENT_ENCODING)
        {
            return Err(FetchError::TooLarge(self.limits.max_body));
        }
        let mut body =
            Vec::with_capacity(resp.content_length().unwrap_or(64 * 1024).min(self.limits.max_body) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(|e| network_error(&e, self.limits.timeout))? {
            if body.len() as u64 + chunk.len() as u64 > self.limits.max_body {
                return Err(FetchError::TooLarge(self.limits.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        // A body that arrived is new content even when validators match: some servers reuse
        // Last-Modified within one second; identity dedup makes the repeat harmless.
        Ok(Fetched {
            body: Some(body),
            content_type: header_str(&headers, header::CONTENT_TYPE),
            validators: new_validators,
            final_url,
            moved_to,
            max_age,
            status: status.as_u16(),
        })
    }
}

const ACCEPT: &str =
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5";

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn network_error(e: &reqwest::Error, timeout: Duration) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout(timeout);
    }
    // The full chain: reqwest's top-level message alone ("error sending request") says little.
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    FetchError::Network(msg)
}

/// `Cache-Control: max-age=N` (ignoring `no-cache`, which means "revalidate", not "never").
pub fn cache_max_age(h: &HeaderMap) -> Option<Duration> {
    let cc = h.get(header::CACHE_CONTROL)?.to_str().ok()?;
    cc.split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .filter_map(|v| v.trim_matches('"').parse::<u64>().ok())
        .map(Duration::from_secs)
        .next()
}

/// `Retry-After` as seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(v: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = v.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let when = DateTime::parse_from_rfc2822(v)
            .ok()
            .map(|d| d.with_timezone(&Utc))
            .or_else(|| crate::parse::date::parse_date(v))?;
        (when - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// Whether an address is loopback, private, link-local, unique-local or unspecified.
pub fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xC0) == 64) // CGNAT 100.64/10
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_ip(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// A resolver that keeps only public addresses (see [`is_private_ip`]), and fails for a name
/// that has none: the address checked is then the address connected to.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<std::net::SocketAddr> = found.filter(|a| !is_private_ip(a.ip())).collect();
            if public.is_empty() {
                return Err(
                    format!("{host} resolves only to private addresses (after a redirect from a public one)").into()
                );
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether a URL's host is, or resolves to, a private address (see [`is_private_ip`]).
/// A name that does not resolve counts as public: the request will fail on its own.
pub async fn is_private_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_private_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_private_ip(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") {
                return true;
            }
            let port = url.port_or_known_default().unwrap_or(80);
            let found = tokio::net::lookup_host((d.as_str(), port))
                .await
                .map(|addrs| addrs.into_iter().any(|a| is_private_ip(a.ip())));
            found.unwrap_or(false)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_public_only_resolver_refuses_names_with_only_private_addresses() {
        use reqwest::dns::Resolve;
        // `localhost` resolves from /etc/hosts, without the network.
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let e = PublicOnly.resolve(name).await.err().expect("localhost is private");
        assert!(e.to_string().contains("only to private addresses"), "{e}");
        // And a client using it cannot reach a loopback server by name.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let limits =
            FetchLimits { timeout: Duration::from_secs(5), connect_timeout: Duration::from_secs(2), max_body: 1 << 20 };
        let fetcher = Fetcher::new(limits).unwrap();
        let r = fetcher.public_client.get(format!("http://localhost:{port}/feed.xml")).send().await;
        let e = r.expect_err("connected to a private address through the public-only resolver");
        let why = network_error(&e, Duration::from_secs(5)).to_string();
        assert!(why.contains("localhost resolves only to private addresses"), "{why}");
    }

    #[tokio::test]
    async fn private_targets() {
        for u in [
            "http://127.0.0.1/",
            "http://10.1.2.3/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest",
            "http://[::1]/",
            "http://localhost:8080/",
            "http://[fd00::1]/",
        ] {
            assert!(is_private_host(&Url::parse(u).unwrap()).await, "{u}");
        }
        for u in ["http://93.184.216.34/", "http://[2606:4700::1]/", "http://8.8.8.8/"] {
            assert!(!is_private_host(&Url::parse(u).unwrap()).await, "{u}");
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = DateTime::parse_from_rfc2822("Wed, 21 Oct 2026 07:28:00 GMT").unwrap().with_timezone(&Utc);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:30:00 GMT", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
