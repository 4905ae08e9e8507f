//! Logs, Prometheus metrics and the health endpoints.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::backend::BackendMetrics;

/// Log output format.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global tracing subscriber (RUST_LOG filters, default info).
pub fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_runtime=warn"));
    // Colour codes only for a person at a terminal: in a file, a pipe or a log collector they are
    // noise. NO_COLOR (no-color.org) turns them off on a terminal too.
    let ansi = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Whether log lines get ANSI colour.
pub fn use_colour(stderr_is_terminal: bool, no_color: bool) -> bool {
    stderr_is_terminal && !no_color
}

/// A change of this replica's leadership (the label of the leadership-changes metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeadershipChange {
    /// It took the Lease and starts its controllers.
    Acquired,
    /// It stopped leading without choosing to (renew deadline passed, or another holder).
    Lost,
    /// It gave the Lease up on shutdown.
    Released,
}

impl LeadershipChange {
    /// The metric label and log word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Acquired => "acquired",
            Self::Lost => "lost",
            Self::Released => "released",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabel {
    change: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// The operator's metrics. Labels are bounded: kinds, results, operations, status codes; never
/// object names or ids.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    duration: Family<KindLabel, Histogram>,
    conflicts: Family<KindLabel, Gauge<i64, AtomicI64>>,
    per_object: Mutex<HashMap<(String, String), usize>>,
    leader: Gauge<i64, AtomicI64>,
    leadership_changes: Family<ChangeLabel, Counter>,
    /// Requests to identity servers (shared with the backend clients).
    pub backend: Arc<BackendMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("identity_operator");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by kind and result (success or an error label)",
            reconciles.clone(),
        );
        let duration = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration by kind",
            duration.clone(),
        );
        let conflicts = Family::<KindLabel, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "conflicts",
            "Current interconnection conflicts, counted on each side (kind)",
            conflicts.clone(),
        );
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader-election Lease and reconciles, else 0",
            leader.clone(),
        );
        let leadership_changes = Family::<ChangeLabel, Counter>::default();
        registry.register(
            "leadership_changes",
            "Leadership changes of this replica (acquired, lost, released)",
            leadership_changes.clone(),
        );
        let backend = Arc::new(BackendMetrics::default());
        backend.register(&mut registry);
        Self {
            registry,
            reconciles,
            duration,
            conflicts,
            per_object: Mutex::default(),
            leader,
            leadership_changes,
            backend,
        }
    }

    /// Records one reconcile.
    pub fn reconciled(&self, kind: &str, result: &str, took: Duration) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                kind: kind.into(),
                result: result.into(),
            })
            .inc();
        self.duration
            .get_or_create(&KindLabel { kind: kind.into() })
            .observe(took.as_secs_f64());
    }

    /// Sets the number of conflicts an object has; the gauge shows the sum per kind.
    pub fn set_conflicts(&self, kind: &str, object: &str, n: usize) {
        let Ok(mut per) = self.per_object.lock() else {
            return;
        };
        if n == 0 {
            per.remove(&(kind.to_string(), object.to_string()));
        } else {
            per.insert((kind.to_string(), object.to_string()), n);
        }
        let total: usize = per
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|(_, n)| n)
            .sum();
        self.conflicts
            .get_or_create(&KindLabel { kind: kind.into() })
            .set(total as i64);
    }

    /// Records a leadership change (and the leader gauge).
    pub fn leadership(&self, change: LeadershipChange) {
        self.leader
            .set(i64::from(change == LeadershipChange::Acquired));
        self.leadership_changes
            .get_or_create(&ChangeLabel {
                change: change.as_str().into(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Whether the operator is ready. Without leader election: controllers running. With it: the
/// replica reached the apiserver within the renew deadline (leader or follower alike, so a rolling
/// update is not blocked by the old leader holding the Lease); false while it cannot, and on
/// shutdown.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Sets readiness.
    pub fn set(&self, v: bool) {
        self.0.store(v, Ordering::SeqCst);
    }

    /// The current readiness.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Serves /metrics, /healthz and /readyz.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Readiness,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route(
            "/metrics",
            get(
                |State((m, _)): State<(Arc<Metrics>, Readiness)>| async move {
                    (
                        [(
                            "content-type",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.encode(),
                    )
                },
            ),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(
                |State((_, r)): State<(Arc<Metrics>, Readiness)>| async move {
                    if r.0.load(Ordering::SeqCst) {
                        (StatusCode::OK, "ready").into_response()
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
                    }
                },
            ),
        )
        .with_state((metrics, ready));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The bound address, so that port 0 (tests, local runs) tells where it went.
    let addr = listener.local_addr().unwrap_or(addr);
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        for (tty, no_color, want) in [
            (true, false, true),
            (true, true, false),
            (false, false, false),
            (false, true, false),
        ] {
            assert_eq!(
                use_colour(tty, no_color),
                want,
                "tty={tty} NO_COLOR={no_color}"
            );
        }
    }

    #[test]
    fn leadership_metric_follows_changes() {
        let m = Metrics::new();
        m.leadership(LeadershipChange::Acquired);
        let text = m.encode();
        assert!(text.contains("identity_operator_leader 1"), "{text}");
        assert!(
            text.contains(r#"identity_operator_leadership_changes_total{change="acquired"} 1"#),
            "{text}"
        );
        m.leadership(LeadershipChange::Lost);
        let text = m.encode();
        assert!(text.contains("identity_operator_leader 0"), "{text}");
        assert!(
            text.contains(r#"identity_operator_leadership_changes_total{change="lost"} 1"#),
            "{text}"
        );
    }
}
