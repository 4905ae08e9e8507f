//! How often the operator re-reads the identity server for drift: derived from the object count
//! and the measured backend latency, within a floor and a ceiling, or taken from `--resync-interval`.

use std::sync::Arc;
use std::time::Duration;

use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use crate::api::{Application, IdentityBackend, IdentityProvider};
use crate::controller::RESYNC_READS_PER_OBJECT;
use crate::telemetry::Metrics;

use super::watch::api;
use super::RunArgs;

/// The resync interval when `--resync-interval` is not given and the objects are few: the default
/// before it was derived. A derived default is never shorter.
pub const RESYNC_FLOOR: Duration = Duration::from_secs(5 * 60);
/// A derived default is never longer: drift (someone edits the tenant by hand) should still be
/// corrected the same day.
pub const RESYNC_CEILING: Duration = Duration::from_secs(6 * 3600);
/// Round trip assumed for a request before any was observed: a SaaS tenant seen from a cluster in
/// another region (the emulator at `--latency-ms 20` measures ~22 ms).
pub const ASSUMED_REQUEST_LATENCY: Duration = Duration::from_millis(50);
/// A derived default lets one resync round use at most 1 / HEADROOM of the operator's request
/// capacity toward the server (concurrency / latency), so changes never wait behind drift checks.
pub(super) const DERIVED_HEADROOM: u32 = 4;
/// A configured interval shorter than WARN_FACTOR × one round is reported: the drift checks alone
/// take more than half of the capacity (at 1, they take all of it and new objects starve, which is
/// how 6 000 objects at a 10 s resync never converged).
pub(super) const WARN_FACTOR: u32 = 2;

/// How the resync interval was chosen, and whether it can keep up with the objects.
#[derive(Debug, Clone, PartialEq)]
pub struct ResyncPlan {
    /// The interval to use.
    pub interval: Duration,
    /// Time one resync round of every object takes when the operator does nothing else:
    /// objects × [`RESYNC_READS_PER_OBJECT`] × latency / concurrency.
    pub round: Duration,
    /// The shortest interval that is not reported (WARN_FACTOR × round).
    pub minimum: Duration,
    /// Derived from the object count (no `--resync-interval`).
    pub derived: bool,
    /// The interval is shorter than `minimum`: resyncs crowd out (or, at ≥ 1 round, starve) the work
    /// on changes.
    pub too_short: bool,
}

impl ResyncPlan {
    /// The share of the operator's request capacity toward the server that resyncs use (1.0: all).
    pub fn utilization(&self) -> f64 {
        self.round.as_secs_f64() / self.interval.as_secs_f64().max(f64::EPSILON)
    }
}

/// Chooses the resync interval (pure). `configured`: `--resync-interval`; `objects`: backends,
/// IdentityProviders and Applications in the scope; `concurrency`: reconciles at once per kind;
/// `latency`: mean identity-server round trip (observed, else [`ASSUMED_REQUEST_LATENCY`]).
///
/// Rule: one round of drift checks costs objects × 3 requests; at `concurrency` requests in flight it
/// takes `round` = objects × 3 × latency / concurrency. The derived default is
/// max(5m, 4 × round), rounded up to whole minutes, at most 6h; a configured interval below
/// 2 × round is reported as too short (it is used anyway: the user may know better).
pub fn plan_resync(
    configured: Option<Duration>,
    objects: usize,
    concurrency: u16,
    latency: Duration,
) -> ResyncPlan {
    let round = latency.mul_f64(
        objects as f64 * f64::from(RESYNC_READS_PER_OBJECT) / f64::from(concurrency.max(1)),
    );
    let minimum = round * WARN_FACTOR;
    let (interval, derived) = match configured {
        Some(c) => (c, false),
        None => {
            let wanted = (round * DERIVED_HEADROOM).as_secs().div_ceil(60) * 60;
            let wanted = Duration::from_secs(wanted).clamp(RESYNC_FLOOR, RESYNC_CEILING);
            (wanted, true)
        }
    };
    ResyncPlan {
        interval,
        round,
        minimum,
        derived,
        too_short: interval < minimum,
    }
}

/// Counts the objects of kind `K` in the scope with metadata-only lists: one request when the
/// apiserver reports `remainingItemCount`, else pages of 500.
pub(super) async fn count_objects<K>(api: Api<K>) -> kube::Result<usize>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut params = ListParams::default().limit(500);
    let mut count = 0;
    loop {
        let page = api.list_metadata(&params).await?;
        count += page.items.len();
        if let Some(rest) = page.metadata.remaining_item_count {
            return Ok(count + usize::try_from(rest).unwrap_or(0));
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(count),
        }
    }
}

/// The identity-server requests observed so far: (seconds summed, count), from the operator's own
/// `identity_backend_request_duration_seconds` histograms (all operations).
pub(super) fn backend_latency_totals(metrics: &Metrics) -> (f64, u64) {
    parse_latency_totals(&metrics.encode())
}

pub(super) fn parse_latency_totals(text: &str) -> (f64, u64) {
    const NAME: &str = "identity_backend_request_duration_seconds";
    let (mut sum, mut count) = (0.0, 0);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        if !name.contains(NAME) {
            continue;
        }
        if name.ends_with("_sum") {
            sum += value.parse::<f64>().unwrap_or(0.0);
        } else if name.ends_with("_count") {
            count += value.parse::<u64>().unwrap_or(0);
        }
    }
    (sum, count)
}

/// Mean request latency between two [`backend_latency_totals`] readings, when requests were made.
pub(super) fn mean_latency(before: (f64, u64), after: (f64, u64)) -> Option<Duration> {
    let n = after.1.checked_sub(before.1).filter(|n| *n > 0)?;
    let secs = (after.0 - before.0) / n as f64;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// Every minute: are the objects in the caches more than the resync interval can keep up with, at
/// the latency observed in the last minute? Logs a warning when it becomes too short (again at most
/// every 10 minutes while it stays so) and when it recovers.
pub(super) async fn watch_resync_load(
    interval: Duration,
    concurrency: u16,
    count: impl Fn() -> usize,
    metrics: Arc<Metrics>,
    scope: String,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut last = backend_latency_totals(&metrics);
    let mut latency = ASSUMED_REQUEST_LATENCY;
    let mut warned: Option<std::time::Instant> = None;
    loop {
        tick.tick().await;
        let now = backend_latency_totals(&metrics);
        if let Some(l) = mean_latency(last, now) {
            latency = l;
        }
        last = now;
        let objects = count();
        let plan = plan_resync(Some(interval), objects, concurrency, latency);
        if plan.too_short {
            if warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(600)) {
                warned = Some(std::time::Instant::now());
                tracing::warn!(
                    namespace = %scope,
                    objects,
                    resync = ?interval,
                    round = ?plan.round,
                    minimum = ?plan.minimum,
                    latency = ?latency,
                    concurrency,
                    utilization = format!("{:.0}%", plan.utilization() * 100.0),
                    "resync interval too short for the objects: one round of drift checks \
                     ({objects} × {RESYNC_READS_PER_OBJECT} requests × {latency:?} / {concurrency}) \
                     takes {:?}, more than half of {interval:?}; changes wait behind resyncs. Set \
                     --resync-interval of at least {:?} (or leave it unset: a restart derives it)",
                    plan.round,
                    plan_resync(None, objects, concurrency, latency).interval,
                );
            }
        } else if warned.take().is_some() {
            tracing::info!(namespace = %scope, objects, resync = ?interval, round = ?plan.round, "resync interval keeps up with the objects again");
        }
    }
}

/// The resync interval of one scope: `--resync-interval`, or derived from the objects there now
/// (see [`plan_resync`]; the latency is assumed, no request was made yet). Logs how it was chosen,
/// or a warning when the configured one is too short for the objects.
pub(super) async fn choose_resync(
    client: &Client,
    ns: &Option<String>,
    args: &RunArgs,
    scope: &str,
) -> Duration {
    let counted = futures::try_join!(
        count_objects(api::<IdentityBackend>(client, ns)),
        count_objects(api::<IdentityProvider>(client, ns)),
        count_objects(api::<Application>(client, ns)),
    );
    let objects = match counted {
        Ok((b, i, a)) => b + i + a,
        Err(e) => {
            tracing::warn!(namespace = %scope, error = %e, "could not count the objects; resync as for none");
            0
        }
    };
    let latency = ASSUMED_REQUEST_LATENCY;
    let plan = plan_resync(args.resync_interval, objects, args.concurrency, latency);
    if plan.derived {
        tracing::info!(
            namespace = %scope,
            objects,
            resync = ?plan.interval,
            round = ?plan.round,
            "resync interval {:?} derived from {objects} objects: one round of drift checks takes \
             ~{objects} × {RESYNC_READS_PER_OBJECT} requests × {latency:?} (assumed) / concurrency \
             {} = {:?}; interval = max({RESYNC_FLOOR:?}, {DERIVED_HEADROOM} × round) in whole minutes \
             (set --resync-interval to choose it)",
            plan.interval,
            args.concurrency,
            plan.round,
        );
    }
    if plan.too_short {
        tracing::warn!(
            namespace = %scope,
            objects,
            resync = ?plan.interval,
            round = ?plan.round,
            minimum = ?plan.minimum,
            "resync interval {:?} is too short for {objects} objects: one round of drift checks \
             takes ~{:?} at {latency:?} per request (assumed), concurrency {}; keep it above {:?} \
             (or raise --concurrency)",
            plan.interval,
            plan.round,
            args.concurrency,
            plan.minimum,
        );
    }
    plan.interval
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_plan_by_object_count() {
        const MIN: u64 = 60;
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        // (configured, objects, concurrency, latency) -> (interval, derived, too_short)
        type Case = (Option<Duration>, usize, u16, Duration, Duration, bool, bool);
        let table: &[Case] = &[
            // Few objects: the old default.
            (None, 0, 8, ms(50), s(5 * MIN), true, false),
            (None, 121, 8, ms(50), s(5 * MIN), true, false),
            (None, 1_201, 8, ms(50), s(5 * MIN), true, false),
            // 6 001 objects at 50 ms: round 112.5 s, 4 × = 450 s -> 8 min.
            (None, 6_001, 8, ms(50), s(8 * MIN), true, false),
            // ... at 20 ms: round 45 s, 4 × = 180 s -> the floor.
            (None, 6_001, 8, ms(20), s(5 * MIN), true, false),
            // More concurrency, shorter round.
            (None, 6_001, 32, ms(50), s(5 * MIN), true, false),
            // 100 000 objects at 50 ms: round 1 875 s, 4 × = 2 h 5 min.
            (None, 100_000, 8, ms(50), s(125 * MIN), true, false),
            // Never above the ceiling, reported when even that is too short.
            (None, 10_000_000, 8, ms(50), s(6 * 3600), true, true),
            // Concurrency 0 is treated as 1 (no division by zero).
            (None, 1_000, 0, ms(50), s(10 * MIN), true, false),
            // Configured: kept as given, reported when below 2 rounds.
            // BENCHMARKS.md's stall: 6 001 objects at 10 s (round at 20 ms: 45 s).
            (Some(s(10)), 6_001, 8, ms(20), s(10), false, true),
            (Some(s(89)), 6_001, 8, ms(20), s(89), false, true),
            (Some(s(91)), 6_001, 8, ms(20), s(91), false, false),
            (Some(s(5 * MIN)), 6_001, 8, ms(20), s(5 * MIN), false, false),
            // The small benches at 10 s: 121 objects (round 0.9 s), 1 201 (9 s: too short).
            (Some(s(10)), 121, 8, ms(20), s(10), false, false),
            (Some(s(10)), 1_201, 8, ms(20), s(10), false, true),
            // A configured interval is never changed, even when very long or the scope empty.
            (Some(s(24 * 3600)), 0, 8, ms(50), s(24 * 3600), false, false),
        ];
        for &(configured, objects, concurrency, latency, interval, derived, too_short) in table {
            let plan = plan_resync(configured, objects, concurrency, latency);
            let case =
                format!("{configured:?} {objects} objects, concurrency {concurrency}, {latency:?}");
            assert_eq!(plan.interval, interval, "{case}: {plan:?}");
            assert_eq!(plan.derived, derived, "{case}: {plan:?}");
            assert_eq!(plan.too_short, too_short, "{case}: {plan:?}");
            // Below the ceiling, a derived interval leaves 3/4 of the capacity to changes.
            if plan.derived && plan.interval < RESYNC_CEILING {
                assert!(
                    plan.utilization() <= 1.0 / f64::from(DERIVED_HEADROOM) + 1e-9,
                    "{case}"
                );
            }
        }
    }

    #[test]
    fn latency_from_the_backend_histograms() {
        let m = Metrics::new();
        assert_eq!(backend_latency_totals(&m), (0.0, 0));
        m.backend.observe("get_idp", Some(200), 0.020);
        m.backend.observe("get_application", Some(200), 0.030);
        m.backend.observe("get_application", None, 0.040);
        let (sum, count) = backend_latency_totals(&m);
        assert_eq!(count, 3);
        assert!((sum - 0.090).abs() < 1e-9, "{sum}");
        assert_eq!(
            mean_latency((0.0, 0), (sum, count)).map(|d| d.as_millis()),
            Some(30)
        );
        assert_eq!(mean_latency((sum, count), (sum, count)), None);
        // Reconcile durations are not request latencies.
        m.reconciled("Application", "success", Duration::from_secs(9));
        assert_eq!(backend_latency_totals(&m).1, 3);
    }
}
