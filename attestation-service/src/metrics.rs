//! Prometheus metrics (feature `server`): request counts by operation and outcome, and
//! latency histograms by operation, rendered in the text exposition format at
//! `GET /metrics`. Counters are plain atomics behind one lock-free map per operation; a
//! dependency-free renderer keeps the service's dependency tree small.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket upper bounds, seconds.
pub const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The service's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    outcomes: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
}

impl Metrics {
    /// Records one request of `op` that ended with `outcome` (`ok` or an error code).
    pub fn observe(&self, op: &'static str, outcome: &'static str, elapsed: Duration) {
        if let Ok(mut m) = self.outcomes.lock() {
            *m.entry((op, outcome)).or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(op).or_default();
            let secs = elapsed.as_secs_f64();
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
                if secs <= *bound {
                    *count += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        }
    }

    /// How many requests of `op` ended with `outcome`.
    pub fn count(&self, op: &str, outcome: &str) -> u64 {
        self.outcomes
            .lock()
            .ok()
            .and_then(|m| {
                m.iter()
                    .find(|((o, out), _)| *o == op && *out == outcome)
                    .map(|(_, n)| *n)
            })
            .unwrap_or(0)
    }

    /// The text exposition format, with `gauges` (name, help, value) appended.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        out.push_str("# HELP phalanx_as_requests_total Requests by operation and outcome.\n");
        out.push_str("# TYPE phalanx_as_requests_total counter\n");
        if let Ok(m) = self.outcomes.lock() {
            for ((op, outcome), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "phalanx_as_requests_total{{op=\"{op}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP phalanx_as_request_duration_seconds Request latency by operation.\n");
        out.push_str("# TYPE phalanx_as_request_duration_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for (op, h) in m.iter() {
                for (bound, c) in BUCKETS.iter().zip(h.counts.iter()) {
                    let _ = writeln!(
                        out,
                        "phalanx_as_request_duration_seconds_bucket{{op=\"{op}\",le=\"{bound}\"}} {c}"
                    );
                }
                let _ = writeln!(
                    out,
                    "phalanx_as_request_duration_seconds_bucket{{op=\"{op}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "phalanx_as_request_duration_seconds_sum{{op=\"{op}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "phalanx_as_request_duration_seconds_count{{op=\"{op}\"}} {}",
                    h.count
                );
            }
        }
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("attest", "ok", Duration::from_micros(700));
        m.observe("attest", "ok", Duration::from_millis(20));
        m.observe("attest", "bad_nonce", Duration::from_millis(2));
        assert_eq!(m.count("attest", "ok"), 2);
        let text = m.render(&[("phalanx_as_policies", "Active policies.", 3.0)]);
        assert!(text.contains("phalanx_as_requests_total{op=\"attest\",outcome=\"ok\"} 2"));
        assert!(text.contains("bucket{op=\"attest\",le=\"0.001\"} 1"));
        assert!(text.contains("bucket{op=\"attest\",le=\"0.0025\"} 2"));
        assert!(text.contains("bucket{op=\"attest\",le=\"+Inf\"} 3"));
        assert!(text.contains("phalanx_as_policies 3"));
    }
}
