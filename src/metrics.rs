//! Process-wide counters, exported in the Prometheus text format at `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the fetch latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// All counters; one static instance, [`METRICS`].
pub struct Metrics {
    /// Polls that stored a document.
    pub polls_ok: AtomicU64,
    /// Polls answered 304.
    pub polls_not_modified: AtomicU64,
    /// Polls that failed.
    pub polls_failed: AtomicU64,
    /// Items stored new.
    pub items_new: AtomicU64,
    /// Items updated in place.
    pub items_updated: AtomicU64,
    /// HTTP requests served.
    pub http_requests: AtomicU64,
    /// HTTP responses that were 304.
    pub http_not_modified: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

/// The process's counters.
pub static METRICS: Metrics = Metrics {
    polls_ok: AtomicU64::new(0),
    polls_not_modified: AtomicU64::new(0),
    polls_failed: AtomicU64::new(0),
    items_new: AtomicU64::new(0),
    items_updated: AtomicU64::new(0),
    http_requests: AtomicU64::new(0),
    http_not_modified: AtomicU64::new(0),
    latency_buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64::new(0),
    latency_sum_micros: AtomicU64::new(0),
};

impl Metrics {
    /// Records one fetch's wall time.
    pub fn observe_fetch(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.latency_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_micros.fetch_add(d.as_micros() as u64, Relaxed);
    }

    /// Prometheus text exposition; `gauges` are extra `(name, help, value)` lines computed by
    /// the caller (sources, stories, ...).
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut s = String::new();
        let _ =
            writeln!(s, "# HELP newsdesk_polls_total Source polls by outcome.\n# TYPE newsdesk_polls_total counter");
        for (outcome, v) in
            [("stored", &self.polls_ok), ("not_modified", &self.polls_not_modified), ("failed", &self.polls_failed)]
        {
            let _ = writeln!(s, "newsdesk_polls_total{{outcome=\"{outcome}\"}} {}", v.load(Relaxed));
        }
        let _ = writeln!(s, "# HELP newsdesk_items_total Items stored, by kind.\n# TYPE newsdesk_items_total counter");
        let _ = writeln!(s, "newsdesk_items_total{{kind=\"new\"}} {}", self.items_new.load(Relaxed));
        let _ = writeln!(s, "newsdesk_items_total{{kind=\"updated\"}} {}", self.items_updated.load(Relaxed));
        let _ = writeln!(
            s,
            "# HELP newsdesk_http_requests_total HTTP requests served.\n# TYPE newsdesk_http_requests_total counter"
        );
        let _ = writeln!(s, "newsdesk_http_requests_total {}", self.http_requests.load(Relaxed));
        let _ = writeln!(s, "# HELP newsdesk_http_not_modified_total HTTP 304 answers.\n# TYPE newsdesk_http_not_modified_total counter");
        let _ = writeln!(s, "newsdesk_http_not_modified_total {}", self.http_not_modified.load(Relaxed));
        let _ = writeln!(
            s,
            "# HELP newsdesk_fetch_seconds Upstream fetch latency.\n# TYPE newsdesk_fetch_seconds histogram"
        );
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            let _ =
                writeln!(s, "newsdesk_fetch_seconds_bucket{{le=\"{le}\"}} {}", self.latency_buckets[i].load(Relaxed));
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(s, "newsdesk_fetch_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(s, "newsdesk_fetch_seconds_sum {}", self.latency_sum_micros.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(s, "newsdesk_fetch_seconds_count {count}");
        for (name, help, v) in gauges {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        s
    }
}
