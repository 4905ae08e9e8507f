//! Prometheus metrics of outbound identity-server requests. Labels are bounded: the operation label
//! comes from [`super::operation::Operation::label`] and the status is an HTTP code or a fixed word,
//! never a URL or an object id.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

/// Labels of the per-backend budget metrics: the IdentityBackend as `namespace/name` (bounded by
/// the number of backends, a handful per cluster).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabel {
    /// The IdentityBackend, `namespace/name`.
    pub backend: String,
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
    /// Each backend's budget in requests per minute (0: none, only a 429 pauses it).
    pub budget_per_minute: Family<BackendLabel, Gauge>,
    /// Requests that took a token of their backend's budget (`rate(...[1m]) * 60` over
    /// `budget_per_minute` is the share in use).
    pub budget_used: Family<BackendLabel, Counter>,
    /// Requests waiting for their backend's budget (a token, or the end of a 429 pause) now.
    pub budget_queued: Family<BackendLabel, Gauge>,
    /// 429 answers that paused every request of their backend for the server's `Retry-After`.
    pub rate_limit_pauses: Family<BackendLabel, Counter>,
}

impl Default for BackendMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(duration_histogram),
            token_refreshes: Counter::default(),
            budget_per_minute: Family::default(),
            budget_used: Family::default(),
            budget_queued: Family::default(),
            rate_limit_pauses: Family::default(),
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
        sub.register(
            "budget_requests_per_minute",
            "Request budget of each backend per minute (0: none)",
            self.budget_per_minute.clone(),
        );
        sub.register(
            "budget_requests",
            "Requests that took a token of their backend's budget",
            self.budget_used.clone(),
        );
        sub.register(
            "budget_queued_requests",
            "Requests waiting for their backend's budget or for a 429 pause to end",
            self.budget_queued.clone(),
        );
        sub.register(
            "rate_limit_pauses",
            "429 answers that paused every request of their backend",
            self.rate_limit_pauses.clone(),
        );
    }

    /// The budget metrics of `backend` (`namespace/name`), its budget gauge set to `per_minute`.
    /// A client rebuilt for the same backend gets the same series.
    pub fn budget(
        &self,
        backend: &str,
        per_minute: Option<u32>,
    ) -> super::ratelimit::BudgetMetrics {
        let label = BackendLabel {
            backend: backend.to_owned(),
        };
        self.budget_per_minute
            .get_or_create(&label)
            .set(i64::from(per_minute.unwrap_or(0)));
        super::ratelimit::BudgetMetrics {
            used: self.budget_used.get_or_create(&label).clone(),
            queued: self.budget_queued.get_or_create(&label).clone(),
            pauses: self.rate_limit_pauses.get_or_create(&label).clone(),
        }
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
        let budget = m.budget("ns/acme", Some(150));
        budget.used.inc();
        budget.queued.inc();
        budget.pauses.inc();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).expect("encode");
        for line in [
            r#"identity_backend_budget_requests_per_minute{backend="ns/acme"} 150"#,
            r#"identity_backend_budget_requests_total{backend="ns/acme"} 1"#,
            r#"identity_backend_budget_queued_requests{backend="ns/acme"} 1"#,
            r#"identity_backend_rate_limit_pauses_total{backend="ns/acme"} 1"#,
        ] {
            assert!(out.contains(line), "{line} in {out}");
        }
    }
}
