//! Leader election on a coordination.k8s.io Lease, so that with several replicas only one reconciles.
//!
//! Hand-written on purpose, following client-go's `leaderelection` package. The maintained crates
//! were compared (November 2026): `kube-leader-election` 0.44 needs kube 4, kubert 0.25 needs kube
//! 1.1, and `kube-lease-manager` 0.13 (kube 5) judges expiry by the holder's `renewTime` against the
//! local clock (clock skew lets a follower take a live lease) and keeps reporting "leader" while
//! its renewals fail (no renew deadline, so no fencing). The rules here:
//!
//! - Expiry is judged by the local monotonic clock: a follower notes *when it saw the Lease record
//!   change* and treats the lease as expired only `leaseDurationSeconds` after that. The holder's
//!   clock never enters the decision.
//! - The leader renews every `retry_period`. If no renewal succeeded within `renew_deadline` of the
//!   last successful one's start, it stops leading (the caller drops its controllers: fencing). Since
//!   `renew_deadline < lease_duration`, the old leader has stopped before any follower can judge the
//!   lease expired.
//! - Every write carries the Lease's resourceVersion (optimistic concurrency): of two replicas that
//!   try at once, one gets 409 Conflict.
//! - On graceful shutdown the leader, after its controllers have stopped, releases the Lease (empty
//!   holder), so a follower takes over at its next retry instead of waiting for expiry.
//! - Errors talking to the apiserver are retried, never fatal: a leader keeps leading until the
//!   renew deadline, a follower keeps trying.

use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::telemetry::{LeadershipChange, Metrics, Readiness};

/// Timing and naming of the election.
#[derive(Clone, Debug)]
pub struct ElectionConfig {
    /// Name of the Lease.
    pub lease_name: String,
    /// Namespace of the Lease.
    pub lease_namespace: String,
    /// This replica's identity (the Lease's holderIdentity).
    pub identity: String,
    /// How long followers wait, after they last saw the Lease change, before taking it.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often the leader renews and followers look at the Lease.
    pub retry_period: Duration,
}

impl ElectionConfig {
    /// Checks the ordering that makes fencing work (as client-go does).
    pub fn validate(&self) -> Result<(), String> {
        if self.lease_duration.as_secs() < 1 || self.lease_duration.subsec_nanos() != 0 {
            return Err("--lease-duration must be whole seconds, at least 1s".into());
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(format!(
                "--renew-deadline ({:?}) must be shorter than --lease-duration ({:?}), or a follower may take over while the old leader still reconciles",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return Err(format!(
                "--retry-period ({:?}) must be above zero and shorter than --renew-deadline ({:?})",
                self.retry_period, self.renew_deadline
            ));
        }
        Ok(())
    }
}

/// This replica's identity: the pod name (stable across container restarts, so a restarted
/// container resumes its own lease), else the host name, plus a random suffix.
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME") {
        if !pod.is_empty() {
            return pod;
        }
    }
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "identity-operator".into());
    format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// What this replica last saw of the Lease, and when by its own clock (client-go's
/// observedRecord / observedTime).
#[derive(Clone, Debug, Default)]
pub struct Observation {
    record: Option<LeaseSpec>,
    at: Option<Instant>,
}

impl Observation {
    /// Notes a read of the Lease. The local time moves only when the record changed: a holder that
    /// stopped renewing leaves the record as it was, and its lease runs out on our clock.
    pub fn observe(&mut self, record: Option<&LeaseSpec>, now: Instant) {
        if self.at.is_none() || self.record.as_ref() != record {
            self.record = record.cloned();
            self.at = Some(now);
        }
    }

    /// The holder in the last record seen (None when free).
    pub fn holder(&self) -> Option<&str> {
        self.record
            .as_ref()
            .and_then(|r| r.holder_identity.as_deref())
            .filter(|h| !h.is_empty())
    }
}

/// What a replica that does not hold the Lease does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FollowerStep {
    /// Write the Lease with ourselves as holder (free, expired, or already ours).
    Acquire,
    /// Someone else holds a live lease: look again after this long.
    Wait(Duration),
}

/// Decides from the observation alone (pure: the clock is a parameter).
pub fn follower_step(
    obs: &Observation,
    me: &str,
    now: Instant,
    retry_period: Duration,
) -> FollowerStep {
    let (Some(record), Some(seen)) = (&obs.record, obs.at) else {
        return FollowerStep::Acquire;
    };
    match obs.holder() {
        None => FollowerStep::Acquire,
        Some(h) if h == me => FollowerStep::Acquire,
        Some(_) => {
            let secs = record.lease_duration_seconds.unwrap_or(0).max(0) as u64;
            let expires = seen + Duration::from_secs(secs);
            if now >= expires {
                FollowerStep::Acquire
            } else {
                // Look again right at expiry when that comes before the next retry: a takeover
                // then takes at most lease duration + retry period after the holder's last renewal.
                FollowerStep::Wait(retry_period.min(expires - now))
            }
        }
    }
}

/// Whether a leader whose last successful renewal started at `last_renew` must stop leading.
pub fn past_renew_deadline(last_renew: Instant, now: Instant, renew_deadline: Duration) -> bool {
    now >= last_renew + renew_deadline
}

/// The record a replica writes to take or renew the Lease. Taking over starts a new term (new
/// acquireTime, transitions + 1); renewing keeps them.
pub fn next_record(
    current: Option<&LeaseSpec>,
    me: &str,
    lease_duration: Duration,
    now: jiff::Timestamp,
) -> LeaseSpec {
    let current = current.cloned().unwrap_or_default();
    let ours = current.holder_identity.as_deref() == Some(me);
    let mut next = current;
    if !ours {
        next.acquire_time = Some(MicroTime(now));
        next.lease_transitions = Some(
            next.lease_transitions.unwrap_or(0)
                + i32::from(
                    next.holder_identity
                        .as_deref()
                        .is_some_and(|h| !h.is_empty()),
                ),
        );
    }
    next.holder_identity = Some(me.into());
    next.lease_duration_seconds = Some(lease_duration.as_secs().max(1) as i32);
    next.renew_time = Some(MicroTime(now));
    next
}

/// Result of one acquire-or-renew attempt that reached the apiserver.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// We hold the Lease now; the write was sent at this instant. The renew deadline counts from
    /// there: a follower sees the new record only after the write, so counting from the send is
    /// on the safe side, and a slow read before it does not eat into the deadline.
    Held(Instant),
    /// Someone else holds a live lease, or won the race for it.
    Other,
}

struct Elector {
    api: Api<Lease>,
    config: ElectionConfig,
    obs: Observation,
}

impl Elector {
    /// One read-and-maybe-write, like client-go's tryAcquireOrRenew.
    async fn try_acquire_or_renew(&mut self, leading: bool) -> Result<Attempt, kube::Error> {
        let me = self.config.identity.clone();
        let name = self.config.lease_name.clone();
        let Some(mut lease) = self.api.get_opt(&name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..Default::default()
                },
                spec: Some(next_record(
                    None,
                    &me,
                    self.config.lease_duration,
                    jiff::Timestamp::now(),
                )),
            };
            let sent = Instant::now();
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.obs.observe(created.spec.as_ref(), Instant::now());
                    Ok(Attempt::Held(sent))
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::Other),
                Err(e) => Err(e),
            };
        };
        let now = Instant::now();
        self.obs.observe(lease.spec.as_ref(), now);
        // A leader that sees another holder has lost the lease (someone judged it expired);
        // a follower waits for the lease to run out on its own clock.
        let ours = self.obs.holder() == Some(me.as_str());
        if leading && !ours {
            return Ok(Attempt::Other);
        }
        if !leading
            && follower_step(&self.obs, &me, now, self.config.retry_period) != FollowerStep::Acquire
        {
            return Ok(Attempt::Other);
        }
        lease.spec = Some(next_record(
            lease.spec.as_ref(),
            &me,
            self.config.lease_duration,
            jiff::Timestamp::now(),
        ));
        let sent = Instant::now();
        match self
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.obs.observe(written.spec.as_ref(), Instant::now());
                Ok(Attempt::Held(sent))
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::Other),
            Err(e) => Err(e),
        }
    }

    /// Empties the holder if it is still us, so a follower need not wait for expiry.
    async fn release(&mut self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.lease_name).await? else {
            return Ok(false);
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(false);
        }
        let now = MicroTime(jiff::Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now.clone());
        spec.acquire_time = Some(now);
        lease.spec = Some(spec);
        self.api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await?;
        Ok(true)
    }
}

/// A shutdown trigger; clones share one signal.
pub type Shutdown = Shared<BoxFuture<'static, ()>>;

/// Resolves on SIGTERM or Ctrl-C. Create it early (the handlers are installed at once).
pub fn shutdown_signal() -> std::io::Result<Shutdown> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    .boxed()
    .shared())
}

/// What the elector reports to the process: leading or not, and readiness.
struct Reporter {
    leading: watch::Sender<bool>,
    ready: Readiness,
    metrics: Arc<Metrics>,
    config: ElectionConfig,
}

impl Reporter {
    fn set(&self, leading: bool, change: LeadershipChange, why: &str) {
        self.metrics.leadership(change);
        // One info line per change, whatever the log filter for debug output says; written
        // before the controllers are told, so the log reads in order.
        tracing::info!(
            change = change.as_str(),
            identity = %self.config.identity,
            lease = %self.config.lease_name,
            namespace = %self.config.lease_namespace,
            "leadership {}: {why}",
            change.as_str()
        );
        self.leading.send_replace(leading);
    }
}

/// The election loop; returns after `stop` fires (releasing the Lease when held).
async fn elect(
    mut elector: Elector,
    report: Reporter,
    mut stop: watch::Receiver<bool>,
) -> Result<(), kube::Error> {
    let cfg = elector.config.clone();
    let mut leading = false;
    let mut last_renew = Instant::now();
    let mut last_contact: Option<Instant> = None;
    let mut last_error_logged: Option<Instant> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let start = Instant::now();
        // Every call is bounded: a hung request must not outlive the renew deadline.
        let budget = if leading {
            (last_renew + cfg.renew_deadline).saturating_duration_since(start)
        } else {
            cfg.renew_deadline
        };
        let outcome = tokio::select! {
            r = tokio::time::timeout(budget, elector.try_acquire_or_renew(leading)) => r,
            _ = stop.changed() => break,
        };
        let now = Instant::now();
        match outcome {
            Ok(Ok(attempt)) => {
                last_contact = Some(now);
                report.ready.set(true);
                match (leading, attempt) {
                    (false, Attempt::Held(sent)) => {
                        leading = true;
                        last_renew = sent;
                        report.set(true, LeadershipChange::Acquired, "this replica reconciles");
                    }
                    (true, Attempt::Held(sent)) => last_renew = sent,
                    (true, Attempt::Other) => {
                        leading = false;
                        report.set(
                            false,
                            LeadershipChange::Lost,
                            "another replica holds the lease; stopping the controllers",
                        );
                    }
                    (false, Attempt::Other) => {}
                }
            }
            Ok(Err(e)) => {
                // Logged at most once per retry period's worth of failures, so a long outage
                // does not flood the log.
                if last_error_logged.is_none_or(|t| now >= t + cfg.renew_deadline) {
                    tracing::warn!(error = %e, lease = %cfg.lease_name, leading, "lease read/write failed; retrying");
                    last_error_logged = Some(now);
                }
            }
            Err(_) => {
                tracing::warn!(lease = %cfg.lease_name, leading, "lease request timed out; retrying");
            }
        }
        if leading && past_renew_deadline(last_renew, Instant::now(), cfg.renew_deadline) {
            leading = false;
            report.set(
                false,
                LeadershipChange::Lost,
                "no successful renewal within the renew deadline; stopping the controllers",
            );
        }
        if last_contact.is_none_or(|t| Instant::now() >= t + cfg.renew_deadline) {
            report.ready.set(false);
        }
        let wait = if leading {
            // Wake up at the deadline at the latest, so fencing is on time even between retries.
            cfg.retry_period
                .min((last_renew + cfg.renew_deadline).saturating_duration_since(Instant::now()))
        } else {
            match follower_step(
                &elector.obs,
                &cfg.identity,
                Instant::now(),
                cfg.retry_period,
            ) {
                FollowerStep::Wait(d) => d,
                FollowerStep::Acquire => cfg.retry_period,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
    }
    report.ready.set(false);
    if leading {
        report.leading.send_replace(false);
        match tokio::time::timeout(
            cfg.retry_period.max(Duration::from_secs(2)),
            elector.release(),
        )
        .await
        {
            Ok(Ok(true)) => report.set(
                false,
                LeadershipChange::Released,
                "lease released on shutdown",
            ),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "releasing the lease failed; followers take over after it expires")
            }
            Err(_) => tracing::warn!(
                "releasing the lease timed out; followers take over after it expires"
            ),
        }
    }
    Ok(())
}

/// Runs `work` (the controllers) only while this replica holds the Lease, until `shutdown`.
///
/// `work` is started on each acquisition and dropped the moment leadership is lost (fencing: an
/// in-flight reconcile is cancelled at its next await). On shutdown it is given the same signal and
/// may drain, still under the renew deadline; then the Lease is released.
pub async fn run_while_leading<F, Fut>(
    client: Client,
    config: ElectionConfig,
    metrics: Arc<Metrics>,
    ready: Readiness,
    shutdown: Shutdown,
    mut work: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    config.validate().map_err(anyhow::Error::msg)?;
    let (leading_tx, mut leading) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    tracing::info!(
        identity = %config.identity,
        lease = %config.lease_name,
        namespace = %config.lease_namespace,
        lease_duration = ?config.lease_duration,
        renew_deadline = ?config.renew_deadline,
        retry_period = ?config.retry_period,
        "leader election: waiting for the lease"
    );
    let elector = Elector {
        api: Api::namespaced(client, &config.lease_namespace),
        config: config.clone(),
        obs: Observation::default(),
    };
    let report = Reporter {
        leading: leading_tx,
        ready,
        metrics,
        config: config.clone(),
    };
    let election = tokio::spawn(elect(elector, report, stop_rx));
    loop {
        tokio::select! {
            // A clone: polling one Shared handle again after it completed would panic.
            _ = shutdown.clone() => break,
            r = leading.wait_for(|l| *l) => if r.is_err() { break },
        }
        tracing::info!(identity = %config.identity, "started leading: starting controllers");
        let lost = {
            let run = work();
            tokio::pin!(run);
            tokio::select! {
                _ = &mut run => false,
                // An ended election (Err) counts as lost too: never run unfenced.
                _ = leading.wait_for(|l| !*l) => true,
            }
        };
        // `run` is dropped here: nothing of the controllers runs past this line.
        if lost {
            tracing::info!(identity = %config.identity, "stopped leading: controllers stopped (lost the lease)");
            continue;
        }
        tracing::info!(identity = %config.identity, "stopped leading: controllers stopped (shutdown)");
        break;
    }
    stop_tx.send_replace(true);
    match election.await {
        Ok(r) => r.map_err(anyhow::Error::from),
        Err(e) => Err(anyhow::anyhow!("leader election task failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, secs: i32, renew: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(String::from),
            lease_duration_seconds: Some(secs),
            renew_time: Some(MicroTime(
                jiff::Timestamp::from_second(renew).expect("timestamp"),
            )),
            ..Default::default()
        }
    }

    const RETRY: Duration = Duration::from_secs(2);

    #[test]
    fn follower_steps() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // (record, seen at, now, expected)
        let cases: Vec<(&str, Option<LeaseSpec>, Duration, Duration, FollowerStep)> = vec![
            ("no lease", None, s(0), s(0), FollowerStep::Acquire),
            (
                "released (empty holder)",
                Some(spec(None, 1, 0)),
                s(0),
                s(0),
                FollowerStep::Acquire,
            ),
            (
                "empty-string holder",
                Some(spec(Some(""), 15, 0)),
                s(0),
                s(0),
                FollowerStep::Acquire,
            ),
            (
                "ours (restarted with the same pod name)",
                Some(spec(Some("me"), 15, 0)),
                s(0),
                s(1),
                FollowerStep::Acquire,
            ),
            (
                "other, just seen",
                Some(spec(Some("other"), 15, 0)),
                s(0),
                s(1),
                FollowerStep::Wait(RETRY),
            ),
            (
                "other, close to expiry: wake at expiry",
                Some(spec(Some("other"), 15, 0)),
                s(0),
                Duration::from_millis(14_500),
                FollowerStep::Wait(Duration::from_millis(500)),
            ),
            (
                "other, expired on our clock",
                Some(spec(Some("other"), 15, 0)),
                s(0),
                s(15),
                FollowerStep::Acquire,
            ),
        ];
        for (name, record, seen, now, want) in cases {
            let mut obs = Observation::default();
            obs.observe(record.as_ref(), t0 + seen);
            assert_eq!(
                follower_step(&obs, "me", t0 + now, RETRY),
                want,
                "case: {name}"
            );
        }
    }

    #[test]
    fn expiry_counts_from_when_the_record_changed_not_from_its_renew_time() {
        let t0 = Instant::now();
        let mut obs = Observation::default();
        // The holder's clock is far in the past (skew): a follower comparing renewTime with its
        // own wall clock would take this live lease at once.
        obs.observe(Some(&spec(Some("other"), 15, 0)), t0);
        assert_eq!(
            follower_step(&obs, "me", t0 + Duration::from_secs(10), RETRY),
            FollowerStep::Wait(RETRY)
        );
        // Reading the same record again does not extend it...
        obs.observe(
            Some(&spec(Some("other"), 15, 0)),
            t0 + Duration::from_secs(10),
        );
        assert_eq!(
            follower_step(&obs, "me", t0 + Duration::from_secs(15), RETRY),
            FollowerStep::Acquire
        );
        // ...a renewal (changed record) does.
        obs.observe(
            Some(&spec(Some("other"), 15, 1)),
            t0 + Duration::from_secs(14),
        );
        assert_eq!(
            follower_step(&obs, "me", t0 + Duration::from_secs(15), RETRY),
            FollowerStep::Wait(RETRY)
        );
        assert_eq!(
            follower_step(&obs, "me", t0 + Duration::from_secs(29), RETRY),
            FollowerStep::Acquire
        );
    }

    #[test]
    fn renew_deadline() {
        let t0 = Instant::now();
        let d = Duration::from_secs(10);
        for (now, want) in [(0, false), (9, false), (10, true), (30, true)] {
            assert_eq!(
                past_renew_deadline(t0, t0 + Duration::from_secs(now), d),
                want,
                "{now}s after the last renewal"
            );
        }
    }

    #[test]
    fn next_record_keeps_the_term_on_renewal_and_starts_one_on_takeover() {
        let t = |s| jiff::Timestamp::from_second(s).expect("timestamp");
        let mut current = spec(Some("me"), 15, 100);
        current.acquire_time = Some(MicroTime(t(50)));
        current.lease_transitions = Some(3);
        let renewed = next_record(Some(&current), "me", Duration::from_secs(15), t(110));
        assert_eq!(renewed.acquire_time, Some(MicroTime(t(50))));
        assert_eq!(renewed.lease_transitions, Some(3));
        assert_eq!(renewed.renew_time, Some(MicroTime(t(110))));

        let taken = next_record(Some(&current), "other", Duration::from_secs(15), t(120));
        assert_eq!(taken.holder_identity.as_deref(), Some("other"));
        assert_eq!(taken.acquire_time, Some(MicroTime(t(120))));
        assert_eq!(taken.lease_transitions, Some(4));

        // Taking a released (holderless) lease is not a transition between holders; a fresh one
        // starts at zero.
        let released = spec(None, 1, 130);
        let after = next_record(Some(&released), "x", Duration::from_secs(15), t(131));
        assert_eq!(after.lease_transitions, Some(0));
        let fresh = next_record(None, "x", Duration::from_secs(15), t(131));
        assert_eq!(fresh.lease_transitions, Some(0));
        assert_eq!(fresh.lease_duration_seconds, Some(15));
    }

    #[test]
    fn config_validation() {
        let ok = ElectionConfig {
            lease_name: "l".into(),
            lease_namespace: "n".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        };
        assert!(ok.validate().is_ok());
        let bad = [
            ElectionConfig {
                renew_deadline: Duration::from_secs(15),
                ..ok.clone()
            },
            ElectionConfig {
                retry_period: Duration::from_secs(10),
                ..ok.clone()
            },
            ElectionConfig {
                retry_period: Duration::ZERO,
                ..ok.clone()
            },
            ElectionConfig {
                lease_duration: Duration::from_millis(1500),
                renew_deadline: Duration::from_secs(1),
                retry_period: Duration::from_millis(500),
                ..ok.clone()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?} should be rejected");
        }
    }
}
