//! Deliveries: the POSTs (and intent-verification GETs) newsdesk sends to other servers for
//! WebSub and webhooks. One request at a time per call, with a total timeout; redirects are
//! never followed (a delivery goes where it was configured or subscribed, not where the
//! target sends it); an address that is loopback, private or link-local is refused unless
//! the admin allowed its network ([`Networks`]), checked on the address actually connected to
//! (a resolver that drops refused addresses), so DNS rebinding cannot get around it. Failures
//! say whether a retry can help ([`Outcome`]); [`backoff`] spaces the retries, and callers
//! give up after [`MAX_ATTEMPTS`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::fetch::is_private_ip;

/// Attempts per delivery before it is given up (with the reason logged).
pub const MAX_ATTEMPTS: u32 = 8;

/// Bytes of a response body read (an intent verification's echo; anything else is dropped).
pub const MAX_RESPONSE: usize = 64 * 1024;

/// The wait before attempt `attempt + 1` (attempt 1 failed: 10 s, then ×3 each time, at most
/// an hour): a hook that is down for a deploy gets its deliveries minutes later, one that is
/// gone stops being tried within a day.
pub fn backoff(attempt: u32) -> Duration {
    backoff_from(Duration::from_secs(10), attempt)
}

/// [`backoff`] with another first wait (`[push] retry`): `first`, then ×3 each time, at most
/// an hour.
pub fn backoff_from(first: Duration, attempt: u32) -> Duration {
    let factor = 3u32.saturating_pow(attempt.saturating_sub(1));
    first.saturating_mul(factor).min(Duration::from_secs(3600))
}

/// Networks (CIDR) whose private addresses deliveries may reach (`allow_networks`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<(IpAddr, u8)>);

impl Networks {
    /// Parses `10.0.0.0/8`, `127.0.0.1`, `::1/128`...; the error names the bad entry.
    pub fn parse(list: &[String]) -> Result<Networks, String> {
        let mut out = Vec::with_capacity(list.len());
        for s in list {
            let (addr, len) = match s.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (s.as_str(), None),
            };
            let ip: IpAddr =
                addr.trim().parse().map_err(|_| format!("{s:?} is not an IP network (as in 10.0.0.0/8)"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                None => max,
                Some(l) => match l.trim().parse::<u8>() {
                    Ok(n) if n <= max => n,
                    _ => return Err(format!("{s:?}: the prefix length must be 0 to {max}")),
                },
            };
            out.push((ip, len));
        }
        Ok(Networks(out))
    }

    /// Whether `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.iter().any(|&(net, len)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), len),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), len),
            _ => false,
        })
    }

    /// Whether a delivery may connect to `ip`: public, or in an allowed network.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !is_private_ip(ip) || self.contains(ip)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], len: u8) -> bool {
    let full = usize::from(len / 8);
    let rest = len % 8;
    a[..full] == b[..full] && (rest == 0 || (a[full] ^ b[full]) & (0xffu8 << (8 - rest)) == 0)
}

/// How a delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer (its status and up to [`MAX_RESPONSE`] bytes of its body).
    Delivered {
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// Not delivered: why, and whether trying again later can help (a timeout, a refused
    /// connection, a 5xx, 408 or 429 can; a 4xx, a redirect or a refused address cannot).
    Failed {
        /// What happened, for the log.
        reason: String,
        /// Whether to retry.
        retry: bool,
    },
}

impl Outcome {
    /// Whether it arrived.
    pub fn delivered(&self) -> bool {
        matches!(self, Outcome::Delivered { .. })
    }
}

/// The client deliveries go through.
#[derive(Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    allow: Arc<Networks>,
}

impl Deliverer {
    /// A client with `timeout` per request that may reach private addresses only in `allow`.
    pub fn new(timeout: Duration, allow: Networks) -> anyhow::Result<Deliverer> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let allow = Arc::new(allow);
        let client = reqwest::Client::builder()
            .user_agent(crate::user_agent())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .dns_resolver(Guarded(allow.clone()))
            .build()?;
        Ok(Deliverer { client, allow })
    }

    /// Why `url` may not be delivered to, if it may not: not http(s), or a literal address
    /// that is private and not allowed (names are checked when they resolve).
    pub fn refuse(&self, url: &Url) -> Option<String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Some(format!("{url}: only http and https URLs are delivered to"));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(d)) => {
                let d = d.to_ascii_lowercase();
                if (d == "localhost" || d.ends_with(".localhost")) && !self.allow.contains(IpAddr::from([127, 0, 0, 1]))
                {
                    return Some(format!("{url}: localhost is not an allowed network (allow_networks)"));
                }
                return None;
            }
            None => return Some(format!("{url}: no host")),
        };
        (!self.allow.permits(ip)).then(|| format!("{url}: {ip} is a private address and not in allow_networks"))
    }

    /// POSTs `body` to `url` with `headers`.
    pub async fn post(&self, url: &Url, content_type: &str, body: Vec<u8>, headers: &[(&str, String)]) -> Outcome {
        if let Some(why) = self.refuse(url) {
            return Outcome::Failed { reason: why, retry: false };
        }
        let mut req = self.client.post(url.clone()).header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        self.send(url, req).await
    }

    /// GETs `url` (an intent verification): its status and the start of its body.
    pub async fn get(&self, url: &Url) -> Outcome {
        if let Some(why) = self.refuse(url) {
            return Outcome::Failed { reason: why, retry: false };
        }
        self.send(url, self.client.get(url.clone())).await
    }

    async fn send(&self, url: &Url, req: reqwest::RequestBuilder) -> Outcome {
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() { "timed out" } else { "failed" };
                return Outcome::Failed { reason: format!("{url}: {what}: {}", error_chain(&e)), retry: true };
            }
        };
        let status = resp.status();
        let mut body = Vec::new();
        while body.len() < MAX_RESPONSE {
            match resp.chunk().await {
                Ok(Some(c)) => body.extend_from_slice(&c[..c.len().min(MAX_RESPONSE - body.len())]),
                Ok(None) => break,
                Err(e) if status.is_success() => {
                    return Outcome::Failed {
                        reason: format!("{url}: reading the answer: {}", error_chain(&e)),
                        retry: true,
                    }
                }
                Err(_) => break,
            }
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        let code = status.as_u16();
        if status.is_success() {
            return Outcome::Delivered { status: code, body };
        }
        if status.is_redirection() {
            let to = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("?");
            return Outcome::Failed {
                reason: format!("{url}: answered {code}, redirect to {to} not followed"),
                retry: false,
            };
        }
        let retry = status.is_server_error() || code == 408 || code == 429;
        Outcome::Failed { reason: format!("{url}: answered {code}"), retry }
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Resolves names to the addresses a delivery may reach only (see [`Networks::permits`]).
struct Guarded(Arc<Networks>);

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allow = self.0.clone();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let ok: Vec<std::net::SocketAddr> = found.filter(|a| allow.permits(a.ip())).collect();
            if ok.is_empty() {
                return Err(format!("{host} resolves only to private addresses, none in allow_networks").into());
            }
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// HMAC-SHA256 of `body` with `secret`, lowercase hex (`X-Hub-Signature: sha256=…`).
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    hex(ring::hmac::sign(&key, body).as_ref())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let waits: Vec<u64> = (1..=MAX_ATTEMPTS).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(&waits[..4], &[10, 30, 90, 270]);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]) && *waits.last().unwrap() == 3600, "{waits:?}");
    }

    #[test]
    fn networks_parse_and_match() {
        let n = Networks::parse(&["127.0.0.0/8".into(), "10.1.2.3".into(), "fd00::/8".into()]).unwrap();
        assert!(n.contains("127.9.9.9".parse().unwrap()));
        assert!(n.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(n.contains("10.1.2.3".parse().unwrap()) && !n.contains("10.1.2.4".parse().unwrap()));
        assert!(n.contains("fd12::1".parse().unwrap()) && !n.contains("fe80::1".parse().unwrap()));
        assert!(n.permits("93.184.216.34".parse().unwrap()), "public addresses are always fine");
        assert!(!Networks::default().permits("192.168.1.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x"] {
            assert!(Networks::parse(&[bad.into()]).unwrap_err().contains(bad), "{bad}");
        }
    }

    /// A one-shot HTTP server on loopback answering `reply` (or never answering).
    fn server(reply: Option<&'static str>) -> (Url, std::thread::JoinHandle<String>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/hook", l.local_addr().unwrap())).unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = vec![0u8; 65536];
            let n = s.read(&mut buf).unwrap_or(0);
            let got = String::from_utf8_lossy(&buf[..n]).into_owned();
            match reply {
                Some(r) => {
                    let _ = s.write_all(r.as_bytes());
                }
                None => std::thread::sleep(Duration::from_secs(3)),
            }
            got
        });
        (url, h)
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed_and_redirects_are_not_followed() {
        let closed = Deliverer::new(Duration::from_secs(2), Networks::default()).unwrap();
        let url = Url::parse("http://127.0.0.1:9/hook").unwrap();
        match closed.post(&url, "application/json", b"{}".to_vec(), &[]).await {
            Outcome::Failed { reason, retry: false } => assert!(reason.contains("allow_networks"), "{reason}"),
            o => panic!("{o:?}"),
        }
        assert!(closed.refuse(&Url::parse("http://localhost:9/").unwrap()).is_some());
        assert!(closed.refuse(&Url::parse("ftp://example.com/").unwrap()).is_some());

        let open = Deliverer::new(Duration::from_secs(2), Networks::parse(&["127.0.0.0/8".into()]).unwrap()).unwrap();
        let (url, h) = server(Some("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"));
        let o = open.post(&url, "application/json", b"{\"a\":1}".to_vec(), &[("X-Test", "yes".into())]).await;
        assert!(o.delivered(), "{o:?}");
        let got = h.join().unwrap();
        assert!(got.starts_with("POST /hook") && got.contains("x-test: yes") && got.ends_with("{\"a\":1}"), "{got}");

        let (url, h) = server(Some(
            "HTTP/1.1 302 Found\r\nLocation: http://10.0.0.1/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ));
        match open.post(&url, "application/json", b"{}".to_vec(), &[]).await {
            Outcome::Failed { reason, retry: false } => assert!(reason.contains("not followed"), "{reason}"),
            o => panic!("{o:?}"),
        }
        h.join().unwrap();

        let (url, h) = server(Some("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
        assert!(matches!(open.post(&url, "text/plain", vec![], &[]).await, Outcome::Failed { retry: true, .. }));
        h.join().unwrap();
    }

    #[tokio::test]
    async fn a_target_that_never_answers_times_out_and_may_be_retried() {
        let open =
            Deliverer::new(Duration::from_millis(500), Networks::parse(&["127.0.0.0/8".into()]).unwrap()).unwrap();
        let (url, h) = server(None);
        let started = std::time::Instant::now();
        match open.post(&url, "text/plain", b"x".to_vec(), &[]).await {
            Outcome::Failed { reason, retry: true } => assert!(reason.contains("timed out"), "{reason}"),
            o => panic!("{o:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        h.join().unwrap();
    }
}
