//! High availability on the real control plane: two operator processes with `--leader-elect` on
//! one Lease. SIGKILL of the leader → the other takes over within lease duration + retry period
//! (and not before the lease can have run out); SIGTERM → the leader releases the Lease and the
//! other takes over at its next retry; an apiserver restart of a few seconds → the leader keeps
//! the lease and nobody exits; the apiserver down past the renew deadline → the leader stops
//! reconciling (fencing), both report not ready, nobody exits, and one leads again once it is
//! back. Every test checks from the JSON logs that the replicas' leadership
//! intervals never overlap, and from /metrics that the follower reconciled nothing.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestEnv;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use serde_json::Value;

const T: Duration = Duration::from_secs(90);
const LEASE: &str = "ha";

/// Election timings passed to both replicas.
#[derive(Clone, Copy)]
struct Timing {
    lease: Duration,
    renew: Duration,
    retry: Duration,
}

impl Timing {
    fn args(&self) -> Vec<String> {
        vec![
            format!("--lease-duration={}s", self.lease.as_secs()),
            format!("--renew-deadline={}ms", self.renew.as_millis()),
            format!("--retry-period={}ms", self.retry.as_millis()),
        ]
    }
}

/// Slack for a loaded 2-core machine: process scheduling, the takeover's GET + PUT, and this
/// test's 50 ms polling.
const SLACK: Duration = Duration::from_millis(1500);

/// One operator process.
struct Replica {
    identity: String,
    child: Option<Child>,
    log: PathBuf,
    /// Wall-clock time of a SIGKILL (its leadership, if any, ends there: no log line follows).
    killed_at: Option<jiff::Timestamp>,
}

impl Replica {
    fn start(env: &TestEnv, name: &str, timing: Timing) -> Self {
        let identity = format!("{}-{name}", env.ns);
        let log = std::env::temp_dir().join(format!("identity-operator-{identity}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_identity-operator"))
            .args(["--log-format", "json", "run", "--namespace", &env.ns])
            .args(["--resync-interval", "3s", "--metrics-addr", "127.0.0.1:0"])
            .args([
                "--leader-elect",
                "--lease-name",
                LEASE,
                "--lease-namespace",
                &env.ns,
            ])
            .args(timing.args())
            .envs(env.kubeconfig.iter().map(|k| ("KUBECONFIG", k.clone())))
            .env("POD_NAME", &identity)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("operator starts");
        Self {
            identity,
            child: Some(child),
            log,
            killed_at: None,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.killed_at = Some(jiff::Timestamp::now());
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -TERM {}", self.pid());
    }

    /// Still running (it did not exit on its own).
    fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("try_wait").is_none())
    }

    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn raw_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn messages(&self, starting: &str) -> Vec<jiff::Timestamp> {
        self.lines()
            .iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(starting))
            })
            .filter_map(|l| l["timestamp"].as_str()?.parse().ok())
            .collect()
    }

    /// The periods in which this replica ran its controllers, from its log. An open period ends
    /// at the SIGKILL, or is still running (None).
    fn intervals(&self) -> Vec<(jiff::Timestamp, Option<jiff::Timestamp>)> {
        let starts = self.messages("started leading");
        let stops = self.messages("stopped leading");
        assert!(
            stops.len() <= starts.len(),
            "{}: more stops than starts",
            self.identity
        );
        starts
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, stops.get(i).copied().or(self.killed_at)))
            .collect()
    }

    /// Where its /metrics is (it logs the bound address).
    async fn metrics_url(&self) -> String {
        let addr = common::wait_until(T, || async {
            self.lines().iter().find_map(|l| {
                (l["fields"]["message"] == "serving /metrics, /healthz, /readyz")
                    .then(|| l["fields"]["addr"].as_str().map(String::from))
                    .flatten()
            })
        })
        .await
        .unwrap_or_else(|| panic!("{} never logged its metrics address", self.identity));
        format!("http://{addr}")
    }

    async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.metrics_url().await))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body");
        text.lines()
            .filter(|l| l.split([' ', '{']).next() == Some(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    async fn ready(&self) -> bool {
        reqwest::get(format!("{}/readyz", self.metrics_url().await))
            .await
            .is_ok_and(|r| r.status().is_success())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// No two leadership intervals (of different replicas, or of one) overlap.
fn assert_no_overlap(replicas: &[&Replica]) {
    let mut all: Vec<(jiff::Timestamp, Option<jiff::Timestamp>, &str)> = replicas
        .iter()
        .flat_map(|r| {
            r.intervals()
                .into_iter()
                .map(|(s, e)| (s, e, r.identity.as_str()))
        })
        .collect();
    all.sort_by_key(|(s, _, _)| *s);
    for w in all.windows(2) {
        let (s1, e1, who1) = w[0];
        let (s2, _, who2) = w[1];
        let Some(e1) = e1 else {
            panic!("{who1} leads since {s1} without end, yet {who2} started leading at {s2}");
        };
        assert!(
            e1 <= s2,
            "leadership overlapped: {who1} until {e1}, {who2} from {s2}"
        );
    }
    println!("leadership intervals: {all:?}");
}

async fn holder(api: &Api<Lease>) -> Option<String> {
    api.get_opt(LEASE)
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

/// Waits until `who` holds the Lease; returns when it was first seen.
async fn wait_holder(api: &Api<Lease>, who: &str, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        if holder(api).await.as_deref() == Some(who) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{who} did not get the lease within {timeout:?} (holder: {:?})",
            holder(api).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An IdentityProvider the leader must reconcile to Ready.
async fn idp(env: &TestEnv, name: &str) {
    env.apply(&format!(
        r#"
apiVersion: identity-operator.io/v1alpha1
kind: IdentityProvider
metadata: {{name: {name}}}
spec:
  backendRef: {{name: asgardeo}}
  displayName: {name}
  github: {{clientID: "gh-{name}", clientSecretRef: {{name: gh-oauth, key: client-secret}}}}
  jit: {{enabled: true}}
"#
    ))
    .await
    .expect("idp applies");
    env.ready("IdentityProvider", name, T).await;
}

/// A namespace with a backend, two replicas, and the first one leading and reconciling.
async fn two_replicas(env: &TestEnv, timing: Timing) -> (Replica, Replica, Api<Lease>) {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.ns);
    env.create_backend("asgardeo").await;
    env.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: gh-oauth, labels: {identity-operator.io/use: identity-provider-client-secret}}\nstringData: {client-secret: gh-secret-value}\n",
    )
    .await
    .expect("secret");
    let a = Replica::start(env, "a", timing);
    wait_holder(&leases, &a.identity, T).await;
    let b = Replica::start(env, "b", timing);
    idp(env, "first").await;
    // B is up, has read the Lease (ready), and is a follower that reconciled nothing.
    let b_ready = common::wait_until(T, || async { b.ready().await.then_some(()) }).await;
    assert!(b_ready.is_some(), "follower not ready:\n{}", b.raw_log());
    assert_eq!(a.metric("identity_operator_leader").await, 1.0);
    assert_eq!(b.metric("identity_operator_leader").await, 0.0);
    assert_eq!(
        b.metric("identity_operator_reconciles_total").await,
        0.0,
        "the follower reconciled"
    );
    assert!(a.metric("identity_operator_reconciles_total").await > 0.0);
    (a, b, leases)
}

#[tokio::test]
async fn sigkill_of_the_leader_the_follower_takes_over_within_lease_duration_plus_retry_period() {
    let env = TestEnv::new("ha-kill").await;
    // The defaults of `run` and the chart, so the measured failover is the one users get.
    let timing = Timing {
        lease: Duration::from_secs(15),
        renew: Duration::from_secs(10),
        retry: Duration::from_secs(2),
    };
    let (mut a, mut b, leases) = two_replicas(&env, timing).await;

    let killed = Instant::now();
    a.kill();
    let taken = wait_holder(&leases, &b.identity, T).await;
    let took = taken - killed;
    println!(
        "SIGKILL → takeover: {took:?} (lease {:?}, retry {:?})",
        timing.lease, timing.retry
    );
    assert!(
        took <= timing.lease + timing.retry + SLACK,
        "takeover took {took:?}, more than lease duration + retry period (+{SLACK:?} slack)"
    );
    // The last renewal was at most one retry period (plus a request) before the kill, and the
    // lease counts from when the follower saw it: taking over sooner would mean expiry was
    // misjudged.
    assert!(
        took + timing.retry + Duration::from_millis(250) >= timing.lease,
        "takeover after {took:?}: before the lease of {:?} could have run out",
        timing.lease
    );

    // The new leader reconciles: an object created now becomes Ready.
    idp(&env, "after-kill").await;
    assert_eq!(b.metric("identity_operator_leader").await, 1.0);
    assert!(b.alive());
    assert_no_overlap(&[&a, &b]);
}

#[tokio::test]
async fn sigterm_of_the_leader_releases_the_lease_and_hands_over_at_once() {
    let env = TestEnv::new("ha-term").await;
    // A long lease: a handover that waited for expiry would take 15 s or more.
    let timing = Timing {
        lease: Duration::from_secs(15),
        renew: Duration::from_secs(10),
        retry: Duration::from_secs(1),
    };
    let (mut a, mut b, leases) = two_replicas(&env, timing).await;

    let termed = Instant::now();
    a.sigterm();
    let taken = wait_holder(&leases, &b.identity, T).await;
    let took = taken - termed;
    println!("SIGTERM → takeover: {took:?} (lease {:?})", timing.lease);
    let exited = {
        let deadline = Instant::now() + T;
        let child = a.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the old leader did not exit after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert!(exited.success(), "exit status {exited:?}");
    assert!(
        a.messages("leadership released").len() == 1,
        "no release logged:\n{}",
        a.raw_log()
    );
    assert!(
        took <= timing.retry + SLACK,
        "handover took {took:?}: the lease was not released (lease {:?})",
        timing.lease
    );
    idp(&env, "after-term").await;
    assert!(b.alive());
    assert_no_overlap(&[&a, &b]);
}

#[tokio::test]
async fn apiserver_restart_the_leader_keeps_the_lease_and_nobody_exits() {
    let cp = Arc::new(common::OwnControlPlane::start("ha-restart"));
    let client: Client = cp.client().await;
    let env = TestEnv::with_client("ha-restart", client, Some(cp.kubeconfig.clone())).await;
    // A renew deadline well above a restart on a loaded machine; the test checks the outage was
    // shorter, else it would prove nothing.
    let timing = Timing {
        lease: Duration::from_secs(45),
        renew: Duration::from_secs(30),
        retry: Duration::from_secs(2),
    };
    let (mut a, mut b, leases) = two_replicas(&env, timing).await;
    let before = leases.get(LEASE).await.expect("lease");
    let transitions = before.spec.as_ref().and_then(|s| s.lease_transitions);

    let down = Instant::now();
    // A routine restart (SIGTERM, as an upgrade does), waiting for the port to be free before the
    // start so the old and new process cannot race for it. dev-env blocks: off the runtime.
    let restart = cp.clone();
    tokio::task::spawn_blocking(move || {
        restart.stop_apiserver(false);
        restart.start_apiserver();
    })
    .await
    .expect("restart");
    let outage = down.elapsed();
    println!("apiserver restart: {outage:?} until /readyz again");
    assert!(
        outage < timing.renew,
        "the restart took {outage:?}, longer than the renew deadline {:?}: inconclusive",
        timing.renew
    );

    // The leader renews again (a new renewTime after the restart), still as the same holder.
    let renewed_after = before.spec.as_ref().and_then(|s| s.renew_time.clone());
    let renewed = common::wait_until(T, || async {
        let l = leases.get(LEASE).await.ok()?;
        let s = l.spec?;
        (s.renew_time != renewed_after).then_some(s)
    })
    .await
    .expect("the leader renews after the restart");
    assert_eq!(
        renewed.holder_identity.as_deref(),
        Some(a.identity.as_str())
    );
    assert_eq!(
        renewed.lease_transitions, transitions,
        "no change of holder"
    );
    assert!(a.alive(), "leader exited:\n{}", a.raw_log());
    assert!(b.alive(), "follower exited:\n{}", b.raw_log());
    assert!(a.messages("leadership lost").is_empty(), "{}", a.raw_log());
    // Still reconciling after the restart.
    idp(&env, "after-restart").await;
    assert_eq!(a.metric("identity_operator_leader").await, 1.0);
    assert_eq!(b.metric("identity_operator_reconciles_total").await, 0.0);
    assert!(a.ready().await && b.ready().await);
    assert_no_overlap(&[&a, &b]);
    a.kill();
    b.kill();
}

#[tokio::test]
async fn apiserver_down_past_the_renew_deadline_the_leader_stops_reconciling_and_nobody_exits() {
    let cp = Arc::new(common::OwnControlPlane::start("ha-outage"));
    let client: Client = cp.client().await;
    let env = TestEnv::with_client("ha-outage", client, Some(cp.kubeconfig.clone())).await;
    let timing = Timing {
        lease: Duration::from_secs(6),
        renew: Duration::from_secs(4),
        retry: Duration::from_secs(1),
    };
    let (mut a, mut b, leases) = two_replicas(&env, timing).await;

    let stop = cp.clone();
    tokio::task::spawn_blocking(move || stop.stop_apiserver(false))
        .await
        .expect("stop");
    // Fenced: the leader stops its controllers once the renew deadline has passed...
    let lost = common::wait_until(T, || async {
        (!a.messages("leadership lost").is_empty()).then_some(())
    })
    .await;
    assert!(lost.is_some(), "the leader kept leading:\n{}", a.raw_log());
    assert_eq!(a.metric("identity_operator_leader").await, 0.0);
    // ...and neither replica says it is ready while it cannot reach the apiserver.
    let unready = common::wait_until(T, || async {
        (!a.ready().await && !b.ready().await).then_some(())
    })
    .await;
    assert!(unready.is_some(), "/readyz stayed 200 without an apiserver");
    assert!(a.alive(), "the leader exited:\n{}", a.raw_log());
    assert!(b.alive(), "the follower exited:\n{}", b.raw_log());

    let start = cp.clone();
    tokio::task::spawn_blocking(move || start.start_apiserver())
        .await
        .expect("start");
    // One of them leads again (whoever wins the race for the expired lease) and reconciles.
    let leader = common::wait_until(T, || async {
        let h = holder(&leases).await?;
        let r = if h == a.identity { &a } else { &b };
        (r.metric("identity_operator_leader").await == 1.0).then_some(h)
    })
    .await
    .expect("a replica leads again after the apiserver is back");
    println!("after the outage {leader} leads");
    idp(&env, "after-outage").await;
    let ready = common::wait_until(T, || async {
        (a.ready().await && b.ready().await).then_some(())
    })
    .await;
    assert!(
        ready.is_some(),
        "not ready again after the apiserver came back"
    );
    assert!(a.alive() && b.alive());
    assert_no_overlap(&[&a, &b]);
    a.kill();
    b.kill();
}
