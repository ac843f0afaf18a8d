//! What an operator watches, in Prometheus' text format at `GET /-/metrics`: requests by route
//! template and status with latency histograms, gate decisions by action, outcome and reason,
//! pending approvals, and database pool use.
//!
//! Counters are process-local (each instance is scraped on its own), kept in one registry behind
//! a mutex: a request costs one short lock, no allocation on the hot path beyond first sight of a
//! label set.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Latency buckets, seconds.
const BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Registry {
    /// (method, route, status) → count
    requests: BTreeMap<(String, String, u16), u64>,
    /// (method, route) → latency
    latency: BTreeMap<(String, String), Histogram>,
    /// (action, outcome, reason) → count
    gate: BTreeMap<(String, String, String), u64>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Registry::default()))
}

/// Records one answered request.
pub fn record_request(method: &str, route: &str, status: u16, latency: Duration) {
    let Ok(mut r) = registry().lock() else { return };
    *r.requests.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
    let h = r.latency.entry((method.to_string(), route.to_string())).or_default();
    let secs = latency.as_secs_f64();
    for (i, bound) in BUCKETS.iter().enumerate() {
        if secs <= *bound {
            h.buckets[i] += 1;
        }
    }
    h.count += 1;
    h.sum += secs;
}

/// Records a gate decision: `outcome` is `accepted`, `tap_required` or `refused`; `reason` the
/// evidence (`tap`, `token`) or the refusal's code.
pub fn record_gate(action: &str, outcome: &str, reason: &str) {
    let Ok(mut r) = registry().lock() else { return };
    *r.gate.entry((action.to_string(), outcome.to_string(), reason.to_string())).or_default() += 1;
}

/// Gauges read at scrape time.
#[derive(Debug, Clone, Copy)]
pub struct Gauges {
    pub approvals_pending: i64,
    pub pool_size: u32,
    pub pool_idle: u32,
    pub pool_max: u32,
}

fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The exposition text.
pub fn render(gauges: Gauges) -> String {
    let mut out = String::new();
    let Ok(r) = registry().lock() else { return out };
    out.push_str("# HELP tapgate_http_requests_total Requests answered, by route template and status.\n");
    out.push_str("# TYPE tapgate_http_requests_total counter\n");
    for ((method, route, status), n) in &r.requests {
        let _ = writeln!(
            out,
            "tapgate_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
            label(method),
            label(route)
        );
    }
    out.push_str("# HELP tapgate_http_request_duration_seconds Time to answer, by route template.\n");
    out.push_str("# TYPE tapgate_http_request_duration_seconds histogram\n");
    for ((method, route), h) in &r.latency {
        let labels = format!("method=\"{}\",route=\"{}\"", label(method), label(route));
        for (bound, n) in BUCKETS.iter().zip(h.buckets) {
            let _ =
                writeln!(out, "tapgate_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}");
        }
        let _ =
            writeln!(out, "tapgate_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "tapgate_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
        let _ = writeln!(out, "tapgate_http_request_duration_seconds_count{{{labels}}} {}", h.count);
    }
    out.push_str("# HELP tapgate_gate_decisions_total Gate decisions, by action, outcome and reason.\n");
    out.push_str("# TYPE tapgate_gate_decisions_total counter\n");
    for ((action, outcome, reason), n) in &r.gate {
        let _ = writeln!(
            out,
            "tapgate_gate_decisions_total{{action=\"{}\",outcome=\"{}\",reason=\"{}\"}} {n}",
            label(action),
            label(outcome),
            label(reason)
        );
    }
    let _ = write!(
        out,
        "# HELP tapgate_approvals_pending Approvals waiting for taps.\n# TYPE tapgate_approvals_pending gauge\n\
         tapgate_approvals_pending {}\n\
         # HELP tapgate_db_pool_connections Database connections, open and idle.\n# TYPE tapgate_db_pool_connections gauge\n\
         tapgate_db_pool_connections{{state=\"open\"}} {}\ntapgate_db_pool_connections{{state=\"idle\"}} {}\n\
         # HELP tapgate_db_pool_max_connections The pool's size limit.\n# TYPE tapgate_db_pool_max_connections gauge\n\
         tapgate_db_pool_max_connections {}\n",
        gauges.approvals_pending, gauges.pool_size, gauges.pool_idle, gauges.pool_max
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_counts_and_escapes() {
        record_request("GET", "/{name}", 200, Duration::from_millis(3));
        record_request("GET", "/{name}", 200, Duration::from_millis(30));
        record_gate("publish", "refused", "invalid_ticket");
        let text = render(Gauges { approvals_pending: 2, pool_size: 3, pool_idle: 1, pool_max: 8 });
        assert!(
            text.contains("tapgate_http_requests_total{method=\"GET\",route=\"/{name}\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(text.contains(
            "tapgate_http_request_duration_seconds_bucket{method=\"GET\",route=\"/{name}\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "tapgate_gate_decisions_total{action=\"publish\",outcome=\"refused\",reason=\"invalid_ticket\"} 1"
        ));
        assert!(text.contains("tapgate_approvals_pending 2"));
        assert_eq!(label("a\"b"), "a\\\"b");
    }
}
