//! Prometheus text metrics: requests by route and status, redemptions by status, malformed
//! and refused requests by reason, a latency histogram, pool size and waiters. Labels are fixed route names and statuses, never paths.

use std::collections::BTreeMap;
use std::fmt::{Display, Write};
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    redemptions: BTreeMap<String, u64>,
    malformed: BTreeMap<&'static str, u64>,
    refused: BTreeMap<&'static str, u64>,
    latency_buckets: [u64; BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Pool figures read at scrape time.
pub struct PoolStatus {
    pub max_size: usize,
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

impl Metrics {
    pub fn request(&self, route: &'static str, status: u16, took: Duration) {
        let mut m = self.inner.lock().unwrap();
        *m.requests.entry((route, status)).or_default() += 1;
        let secs = took.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                m.latency_buckets[i] += 1;
            }
        }
        m.latency_count += 1;
        m.latency_sum += secs;
    }

    /// `status` is one of the fixed statuses the database returns.
    pub fn redemption(&self, status: &str) {
        let mut m = self.inner.lock().unwrap();
        *m.redemptions.entry(status.to_owned()).or_default() += 1;
    }

    /// A connection the request screen closed; `reason` is a fixed name.
    pub fn malformed(&self, reason: &'static str) {
        let mut m = self.inner.lock().unwrap();
        *m.malformed.entry(reason).or_default() += 1;
    }

    /// A request refused before any database work (cross-site POST, in-flight cap); `reason`
    /// is a fixed name.
    pub fn refused(&self, reason: &'static str) {
        let mut m = self.inner.lock().unwrap();
        *m.refused.entry(reason).or_default() += 1;
    }

    pub fn render(&self, pool: &PoolStatus) -> String {
        let m = self.inner.lock().unwrap();
        let mut out = String::new();
        out.push_str(
            "# HELP linktoken_gateway_requests_total HTTP requests by route and status.\n",
        );
        out.push_str("# TYPE linktoken_gateway_requests_total counter\n");
        for ((route, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "linktoken_gateway_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        counter(
            &mut out,
            "redemptions_total",
            "Redemption attempts by outcome.",
            "status",
            &m.redemptions,
        );
        counter(
            &mut out,
            "malformed_requests_total",
            "Connections closed by the request screen, by reason.",
            "reason",
            &m.malformed,
        );
        counter(
            &mut out,
            "refused_requests_total",
            "Requests refused before any database work, by reason.",
            "reason",
            &m.refused,
        );
        out.push_str("# HELP linktoken_gateway_request_duration_seconds Request latency.\n");
        out.push_str("# TYPE linktoken_gateway_request_duration_seconds histogram\n");
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "linktoken_gateway_request_duration_seconds_bucket{{le=\"{le}\"}} {}",
                m.latency_buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "linktoken_gateway_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            m.latency_count
        );
        let _ = writeln!(
            out,
            "linktoken_gateway_request_duration_seconds_sum {}",
            m.latency_sum
        );
        let _ = writeln!(
            out,
            "linktoken_gateway_request_duration_seconds_count {}",
            m.latency_count
        );
        for (name, help, value) in [
            ("pool_max_size", "Most database connections.", pool.max_size),
            ("pool_size", "Open database connections.", pool.size),
            (
                "pool_available",
                "Idle database connections.",
                pool.available,
            ),
            (
                "pool_waiting",
                "Requests waiting for a database connection.",
                pool.waiting,
            ),
        ] {
            let _ = writeln!(out, "# HELP linktoken_gateway_{name} {help}");
            let _ = writeln!(out, "# TYPE linktoken_gateway_{name} gauge");
            let _ = writeln!(out, "linktoken_gateway_{name} {value}");
        }
        out
    }
}

/// A counter with one label, `linktoken_gateway_{name}{{label="key"}} n`.
fn counter<K: Display>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: &BTreeMap<K, u64>,
) {
    let _ = writeln!(out, "# HELP linktoken_gateway_{name} {help}");
    let _ = writeln!(out, "# TYPE linktoken_gateway_{name} counter");
    for (key, n) in values {
        let _ = writeln!(out, "linktoken_gateway_{name}{{{label}=\"{key}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.request("link", 200, Duration::from_millis(3));
        m.request("link", 200, Duration::from_millis(30));
        m.request("link", 404, Duration::from_millis(1));
        m.redemption("ok");
        m.malformed("bare_lf");
        m.malformed("bare_lf");
        m.refused("foreign_origin");
        let text = m.render(&PoolStatus {
            max_size: 16,
            size: 2,
            available: 1,
            waiting: 0,
        });
        assert!(text.contains("linktoken_gateway_requests_total{route=\"link\",status=\"200\"} 2"));
        assert!(text.contains("linktoken_gateway_requests_total{route=\"link\",status=\"404\"} 1"));
        assert!(text.contains("linktoken_gateway_redemptions_total{status=\"ok\"} 1"));
        assert!(text.contains("linktoken_gateway_malformed_requests_total{reason=\"bare_lf\"} 2"));
        assert!(
            text.contains("linktoken_gateway_refused_requests_total{reason=\"foreign_origin\"} 1")
        );
        assert!(text.contains("linktoken_gateway_request_duration_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("linktoken_gateway_request_duration_seconds_count 3"));
        assert!(text.contains("linktoken_gateway_pool_max_size 16"));
    }
}
