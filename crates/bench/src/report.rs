//! What a bench run measured: the JSON document and the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use identity_emulator::Stats;

/// Requests the emulator served in one phase.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct BackendRequests {
    /// All requests, token endpoint included.
    pub total: u64,
    /// API requests that only read.
    pub reads: u64,
    /// API requests that write.
    pub writes: u64,
    /// Token endpoint requests (logins).
    pub token_requests: u64,
    /// Requests per operation label.
    pub by_operation: BTreeMap<String, u64>,
    /// Responses per HTTP status.
    pub statuses: BTreeMap<u16, u64>,
}

impl From<&Stats> for BackendRequests {
    fn from(s: &Stats) -> Self {
        Self {
            total: s.operations.values().sum(),
            reads: s.reads,
            writes: s.writes,
            token_requests: s.token_requests,
            by_operation: s.operations.clone(),
            statuses: s.statuses.clone(),
        }
    }
}

/// The quiet period after convergence.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SteadyState {
    /// How long it was watched.
    pub seconds: f64,
    /// Resync interval of the operator, seconds.
    pub resync_interval_seconds: f64,
    /// Backend API reads in that time.
    pub reads: u64,
    /// Backend API writes in that time (should be 0).
    pub writes: u64,
    /// Backend token requests in that time.
    pub token_requests: u64,
    /// Backend requests per operation.
    pub by_operation: BTreeMap<String, u64>,
    /// Requests the operator made to the apiserver in that time.
    pub apiserver_requests: u64,
    /// Requests of every client (the bench sends none then) by `VERB resource`, in that time.
    pub apiserver_requests_by_verb: BTreeMap<String, u64>,
}

/// Turning JIT off (conflictPolicy Warn) on the IdP with the most dependents.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct JitToggle {
    /// The IdentityProvider.
    pub identity_provider: String,
    /// Applications offering it.
    pub dependents: usize,
    /// Of them, those with a TOTP step after it (K: the ones that must show the conflict).
    pub conflicting_dependents: usize,
    /// Backend requests from the patch until the last dependent showed the conflict.
    pub backend_requests: BackendRequests,
}

/// Drift checks in the steady state, per round of the operator's drift-check interval.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DriftRound {
    /// The drift-check interval of the objects (the resync, or longer under a budget), seconds.
    pub interval_seconds: f64,
    /// Backend reads of one round divided by the objects.
    pub reads_per_object: f64,
    /// Backend reads of one round.
    pub reads: f64,
    /// Minutes of Asgardeo's quota (200 requests per minute per IP) one round takes.
    pub quota_minutes: f64,
}

/// The drift round from the steady state: `reads` in `seconds` scaled to one `interval` (pure).
pub fn drift_round(
    objects: usize,
    reads: u64,
    seconds: f64,
    interval: std::time::Duration,
) -> DriftRound {
    let interval = interval.as_secs_f64();
    let rounds = seconds / interval.max(f64::EPSILON);
    let per_round = reads as f64 / rounds.max(f64::EPSILON);
    DriftRound {
        interval_seconds: interval,
        reads_per_object: per_round / objects.max(1) as f64,
        reads: per_round,
        quota_minutes: per_round / f64::from(identity_client::ratelimit::ASGARDEO_QUOTA_PER_MINUTE),
    }
}

/// The whole result of one run.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Report {
    /// The backend's request budget per minute (`--max-requests-per-minute`, or the deprecated
    /// per-second flag × 60), when set.
    pub max_requests_per_minute: Option<u32>,
    /// The emulator's quota per minute (`--quota-per-minute`), when set.
    pub quota_per_minute: Option<u32>,
    /// Requests the emulator refused as over its quota until convergence (429).
    pub over_quota_converge: u64,
    /// The same, over the whole run.
    pub over_quota_total: u64,
    /// Drift checks per round in the steady state.
    pub drift: DriftRound,
    /// IdentityProviders created.
    pub idps: usize,
    /// Applications created.
    pub apps: usize,
    /// Latency the emulator added to every request, ms.
    pub latency_ms: u64,
    /// Dependents of the hub IdP (`--hub-dependents`), when the graph has one.
    pub hub_dependents: Option<usize>,
    /// The backend's `spec.maxRequestsPerSecond` (`--max-requests-per-second`), when set.
    pub max_requests_per_second: Option<u32>,
    /// The operator's `--resync-interval`, seconds.
    pub resync_interval_seconds: f64,
    /// The operator's `--concurrency` (reconciles at once per kind).
    pub operator_concurrency: u16,
    /// Applies in flight at once while creating the objects.
    pub apply_concurrency: usize,
    /// CPUs, memory, CPU model.
    pub machine: BTreeMap<String, serde_json::Value>,
    /// Time to server-side apply every object.
    pub create_seconds: f64,
    /// From the first apply until every object (backend, IdPs, applications) has Ready=True.
    pub converge_seconds: f64,
    /// Backend requests until convergence.
    pub backend_requests: BackendRequests,
    /// `backend_requests.total` divided by the number of objects (IdPs + applications + 1 backend).
    pub backend_requests_per_object: f64,
    /// The least time those requests can take: requests × latency / the operator's concurrency
    /// per kind (Applications dominate, so one kind's concurrency is the honest divisor), or
    /// requests / the rate limit when that is slower. Convergence cannot beat
    /// max(create_seconds, this).
    pub backend_bound_seconds: f64,
    /// `apiserver_requests_converge` divided by the number of objects.
    pub apiserver_requests_per_object: f64,
    /// The quiet period after convergence.
    pub steady_state: SteadyState,
    /// The JIT toggle.
    pub jit_toggle: JitToggle,
    /// From the JIT patch until every conflicting dependent has InterconnectionConflict=True.
    pub jit_toggle_seconds: f64,
    /// Peak resident memory of the operator process (VmHWM), MiB.
    pub operator_peak_rss_mib: f64,
    /// User + system CPU time of the operator process over the whole run, seconds.
    pub operator_cpu_seconds: f64,
    /// The same, until convergence.
    pub operator_cpu_seconds_converge: f64,
    /// Requests the operator made to the apiserver over the whole run (its own flow schema).
    pub apiserver_requests: u64,
    /// The same, until convergence.
    pub apiserver_requests_converge: u64,
    /// Requests every client (bench, operator, kube-controller-manager) made to the apiserver over
    /// the whole run, for comparison.
    pub apiserver_requests_all_clients: u64,
    /// Requests of every client by `VERB resource` from the first apply until convergence (the
    /// bench's applies and list polls included).
    pub apiserver_requests_by_verb_converge: BTreeMap<String, u64>,
    /// The operator's reconciles by `kind/result`, from its /metrics.
    pub operator_reconciles: BTreeMap<String, u64>,
    /// Mean reconcile duration by kind, seconds, from its /metrics.
    pub operator_reconcile_mean_seconds: BTreeMap<String, f64>,
    /// Where the operator's log was written.
    pub operator_log: String,
}

/// The backend bound of [`Report::backend_bound_seconds`] (`per_minute`: the budget).
pub fn backend_bound_seconds(
    requests: u64,
    latency_ms: u64,
    concurrency: u16,
    per_minute: Option<u32>,
) -> f64 {
    let by_latency = requests as f64 * latency_ms as f64 / 1000.0 / f64::from(concurrency.max(1));
    let by_rate = per_minute.map_or(0.0, |r| requests as f64 * 60.0 / f64::from(r.max(1)));
    by_latency.max(by_rate)
}

impl Report {
    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![
            (
                "objects".into(),
                format!(
                    "{} IdPs × {} apps, {} ms latency, resync {}s",
                    self.idps, self.apps, self.latency_ms, self.resync_interval_seconds
                ),
            ),
            (
                "create_seconds".into(),
                format!("{:.1}", self.create_seconds),
            ),
            (
                "converge_seconds".into(),
                format!("{:.1}", self.converge_seconds),
            ),
            (
                "backend_requests (total)".into(),
                format!(
                    "{} ({} reads, {} writes, {} token)",
                    self.backend_requests.total,
                    self.backend_requests.reads,
                    self.backend_requests.writes,
                    self.backend_requests.token_requests
                ),
            ),
            (
                "backend_requests_per_object".into(),
                format!("{:.2}", self.backend_requests_per_object),
            ),
            (
                "backend_bound_seconds".into(),
                format!("{:.1}", self.backend_bound_seconds),
            ),
        ];
        if let Some(rate) = self.max_requests_per_second {
            rows.push(("max_requests_per_second".into(), rate.to_string()));
        }
        if let Some(rate) = self.max_requests_per_minute {
            rows.push(("max_requests_per_minute".into(), rate.to_string()));
        }
        if let Some(quota) = self.quota_per_minute {
            rows.push((
                "429s over the emulator's quota".into(),
                format!(
                    "{} until converged, {} in all (quota {quota}/min)",
                    self.over_quota_converge, self.over_quota_total
                ),
            ));
        }
        // A window shorter than a round right after convergence sees fewer checks than a round
        // has (the objects' first drift checks are not due yet): the figure is then a low bound.
        let partial = if self.steady_state.seconds < self.drift.interval_seconds {
            " (steady window shorter than a round: a low estimate)"
        } else {
            ""
        };
        rows.push((
            "drift round".into(),
            format!(
                "every {:.0}s: {:.2} reads per object, {:.0} reads, {:.2} quota minutes at 200/min{partial}",
                self.drift.interval_seconds,
                self.drift.reads_per_object,
                self.drift.reads,
                self.drift.quota_minutes
            ),
        ));
        for (op, n) in &self.backend_requests.by_operation {
            rows.push((format!("  {op}"), n.to_string()));
        }
        rows.extend([
            (
                format!("steady_state ({:.0}s)", self.steady_state.seconds),
                format!(
                    "{} reads, {} writes, {} token; {} apiserver requests",
                    self.steady_state.reads,
                    self.steady_state.writes,
                    self.steady_state.token_requests,
                    self.steady_state.apiserver_requests
                ),
            ),
            (
                "jit_toggle_seconds".into(),
                format!(
                    "{:.2} ({} of {} dependents of {} conflict; {} backend requests)",
                    self.jit_toggle_seconds,
                    self.jit_toggle.conflicting_dependents,
                    self.jit_toggle.dependents,
                    self.jit_toggle.identity_provider,
                    self.jit_toggle.backend_requests.total
                ),
            ),
            (
                "operator_peak_rss_mib".into(),
                format!("{:.1}", self.operator_peak_rss_mib),
            ),
            (
                "operator_cpu_seconds".into(),
                format!(
                    "{:.2} ({:.2} until converged)",
                    self.operator_cpu_seconds, self.operator_cpu_seconds_converge
                ),
            ),
            (
                "apiserver_requests (operator)".into(),
                format!(
                    "{} ({} until converged; all clients {})",
                    self.apiserver_requests,
                    self.apiserver_requests_converge,
                    self.apiserver_requests_all_clients
                ),
            ),
            (
                "apiserver_requests_per_object".into(),
                format!("{:.2} until converged", self.apiserver_requests_per_object),
            ),
        ]);
        // WATCH restarts come from kube-controller-manager's informers; they stay in the JSON.
        for (k, n) in &self.steady_state.apiserver_requests_by_verb {
            if k.starts_with("WATCH ") {
                continue;
            }
            rows.push((format!("  steady apiserver {k}"), n.to_string()));
        }
        for (k, n) in &self.operator_reconciles {
            rows.push((format!("  reconciles {k}"), n.to_string()));
        }
        for (k, s) in &self.operator_reconcile_mean_seconds {
            rows.push((format!("  mean reconcile {k}"), format!("{:.3}s", s)));
        }
        let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<width$}  {v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_promised_keys() {
        let report = Report::default();
        let v = serde_json::to_value(&report).expect("json");
        for key in [
            "converge_seconds",
            "backend_requests_per_object",
            "jit_toggle_seconds",
            "operator_peak_rss_mib",
            "operator_cpu_seconds",
            "apiserver_requests",
        ] {
            assert!(v.get(key).is_some_and(|x| x.is_number()), "{key}");
        }
        assert!(v["steady_state"]["writes"].is_number());
        assert!(v["steady_state"]["reads"].is_number());
        assert!(report.table().contains("converge_seconds"));
        assert!(!report.table().contains("max_requests_per_second"));
        let limited = Report {
            max_requests_per_second: Some(50),
            ..Report::default()
        };
        assert!(limited.table().contains("max_requests_per_second"));
    }

    #[test]
    fn a_drift_round_is_the_steady_reads_scaled_to_one_interval() {
        let s = std::time::Duration::from_secs;
        let cases = [
            // (objects, reads, seconds watched, interval) -> (reads per object, reads, quota minutes)
            (100, 600, 30.0, s(10), (2.0, 200.0, 1.0)),
            // Watched for half a (stretched) round: half the objects were checked.
            (100, 150, 120.0, s(240), (3.0, 300.0, 1.5)),
            (0, 0, 30.0, s(10), (0.0, 0.0, 0.0)),
        ];
        for (objects, reads, seconds, interval, (per_object, per_round, minutes)) in cases {
            let r = drift_round(objects, reads, seconds, interval);
            assert!((r.reads_per_object - per_object).abs() < 1e-9, "{r:?}");
            assert!((r.reads - per_round).abs() < 1e-9, "{r:?}");
            assert!((r.quota_minutes - minutes).abs() < 1e-9, "{r:?}");
        }
    }

    #[test]
    fn backend_bound_is_the_slower_of_latency_and_rate() {
        // 1 200 requests × 20 ms / 8 = 3 s.
        assert_eq!(backend_bound_seconds(1200, 20, 8, None), 3.0);
        // 1 200 requests at 6 000/min = 12 s, slower than the latency bound.
        assert_eq!(backend_bound_seconds(1200, 20, 8, Some(6000)), 12.0);
        // At 150/min: 8 minutes.
        assert_eq!(backend_bound_seconds(1200, 20, 8, Some(150)), 480.0);
        assert_eq!(backend_bound_seconds(1200, 0, 8, None), 0.0);
    }
}
