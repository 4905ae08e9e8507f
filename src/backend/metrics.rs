//! Prometheus metrics of outbound identity-server requests. Labels are bounded: the operation label
//! comes from [`super::operation::Operation::label`] and the status is an HTTP code or a fixed word,
//! never a URL or an object id.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Operation, e.g. `get_idp`.
    pub operation: &'static str,
    /// HTTP status code, or `error` when no response arrived.
    pub status: String,
}

/// Labels of the duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// Operation, e.g. `get_idp`.
    pub operation: &'static str,
}

fn duration_histogram() -> Histogram {
    // 5 ms .. ~20 s: covers a local emulator and a slow SaaS tenant.
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

/// Metrics of one or more identity-server clients (share one `Arc` between clients).
#[derive(Debug)]
pub struct BackendMetrics {
    /// Requests by operation and status (every attempt, retries included).
    pub requests: Family<RequestLabels, Counter>,
    /// Duration of each attempt by operation, seconds.
    pub request_duration: Family<OperationLabels, Histogram, fn() -> Histogram>,
    /// Access tokens fetched.
    pub token_refreshes: Counter,
}

impl Default for BackendMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(duration_histogram),
            token_refreshes: Counter::default(),
        }
    }
}

impl BackendMetrics {
    /// New, unregistered metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the metrics under the `identity_backend` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("identity_backend");
        sub.register(
            "requests",
            "Requests to the identity server by operation and status",
            self.requests.clone(),
        );
        sub.register(
            "request_duration_seconds",
            "Duration of identity server requests by operation",
            self.request_duration.clone(),
        );
        sub.register(
            "token_refreshes",
            "Access tokens fetched from the identity server",
            self.token_refreshes.clone(),
        );
    }

    /// Records one attempt.
    pub fn observe(&self, operation: &'static str, status: Option<u16>, seconds: f64) {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        self.requests
            .get_or_create(&RequestLabels { operation, status })
            .inc();
        self.request_duration
            .get_or_create(&OperationLabels { operation })
            .observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_bounded_labels() {
        let m = BackendMetrics::new();
        let mut reg = Registry::default();
        m.register(&mut reg);
        m.observe("get_idp", Some(200), 0.01);
        m.observe("get_idp", None, 0.5);
        m.token_refreshes.inc();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).expect("encode");
        assert!(
            out.contains(r#"identity_backend_requests_total{operation="get_idp",status="200"} 1"#),
            "{out}"
        );
        assert!(out.contains(r#"status="error""#));
        assert!(out.contains("identity_backend_token_refreshes_total 1"));
    }
}
