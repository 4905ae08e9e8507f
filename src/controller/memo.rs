//! What this process remembers about each object between passes: one [`Record`] per object (by
//! uid), one pure decision of what the next pass must do ([`decide`]), and one forget.
//!
//! Most reconciles of a converging namespace are triggered by other objects (an IdP's status, a
//! dependent's server id, a Secret) and find nothing to do, yet each one read the object, its OIDC
//! settings, its IdPs' JIT and a Secret again. The record holds the last successful full pass's
//! inputs ([`super::facts`]), so such a reconcile skips the server and the apiserver; the periodic
//! resync (the drift check) always does the full pass. Beside it, [`Written`]: what this process
//! wrote and the cache may not show yet.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One [`Record`] per object this process has passed (by uid), IdentityProviders and Applications
/// alike (uids are unique across kinds).
#[derive(Default)]
pub struct Memo {
    records: Mutex<HashMap<String, Record>>,
}

/// Everything this process remembers about one object.
#[derive(Default, Clone, Debug)]
pub struct Record {
    /// Its last successful full pass; `None`: the next pass is a full one.
    pub last: Option<LastPass>,
    /// An Application's: the generation of its last successful full pass and the flow that pass
    /// left on the server, so that an IdP's pass with JIT on computes `jitRequiredBy` without
    /// reading every declared dependent's application again. Recorded before the pass's status
    /// write (which triggers that IdP pass), forgotten with [`Record::last`].
    pub flow: Option<FlowPass>,
    /// What this process wrote that the cache may not show yet.
    pub written: Written,
    /// A digest of the facts the other kind's watch last reacted to ([`super::facts`]).
    pub seen: Option<u64>,
}

/// A successful full pass.
#[derive(Clone, Debug)]
pub struct LastPass {
    /// A hash of all its inputs.
    pub inputs: u64,
    /// When the next full pass is due: at 90 % of the drift-check interval, the earliest a
    /// jittered resync requeue fires, so a resync is never skipped.
    pub due: Instant,
    /// What the kind's cheaper passes need of it.
    pub kind: KindPass,
}

/// What the cheaper passes of each kind need of the last full one.
#[derive(Clone, Debug)]
pub enum KindPass {
    /// An Application's pass.
    Application {
        /// The hash of its server inputs (all but the status rule's: see
        /// [`super::facts::AppInputs::server_with`]).
        server: u64,
        /// The flow the status rule checks, with the script on the server.
        rule_flow: Option<RuleFlow>,
    },
    /// An IdentityProvider's pass.
    IdentityProvider {
        /// A hash of its own inputs (its dependents left out).
        own: u64,
        /// When the coalescing window of its dependents' changes started (its last full or
        /// dependents-only pass).
        window_from: Instant,
        /// The pass found JIT on, declared and on the server: no conflict is possible, so a change
        /// of its dependents alone needs no server read.
        jit_on: bool,
    },
}

/// What this process wrote and the cache may not show yet (the next pass may start before the
/// watch delivers this process's own write).
#[derive(Default, Clone, Debug)]
pub struct Written {
    /// The server id the object owns: it must not be lost to a stale view of its status.
    pub id: Option<String>,
    /// An IdentityProvider's client Secret version last pushed (the annotation may lag).
    pub pushed: Option<String>,
    /// An Application's credentials Secret: the version it had when it last held exactly these
    /// credentials, and a hash of them (never the values).
    pub credentials: Option<(String, u64)>,
    /// `managed::claim` set the create-pending mark with the finalizer, before any create.
    pub fresh: bool,
}

impl Record {
    fn is_empty(&self) -> bool {
        self.last.is_none()
            && self.flow.is_none()
            && self.seen.is_none()
            && self.written.id.is_none()
            && self.written.pushed.is_none()
            && self.written.credentials.is_none()
            && !self.written.fresh
    }
}

/// The flow the status rule checks: the steps and the script on the server.
pub type RuleFlow = (crate::backend::FlowUpdate, Option<String>);

/// An Application's last full pass as an IdP's `jitRequiredBy` needs it: generation, flow.
pub type FlowPass = (Option<i64>, Option<RuleFlow>);

/// A reconcile's inputs as read from the caches before its pass ([`super::facts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inputs {
    /// An Application's.
    Application {
        /// All inputs.
        all: u64,
        /// Its server inputs (all but the status rule's).
        server: u64,
    },
    /// An IdentityProvider's.
    IdentityProvider {
        /// All inputs.
        all: u64,
        /// Its own inputs (its dependents left out).
        own: u64,
    },
}

impl Inputs {
    /// The hash of all inputs.
    pub fn all(&self) -> u64 {
        match self {
            Inputs::Application { all, .. } | Inputs::IdentityProvider { all, .. } => *all,
        }
    }
}

/// What the next pass of an object must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Pass {
    /// Nothing changed and the resync is not due: requeue after this long.
    Skip(Duration),
    /// An IdentityProvider whose dependents alone changed within the coalescing window: run once
    /// for the whole burst, after this long. Its own changes never wait.
    Coalesce(Duration),
    /// An Application whose IdPs' rule facts alone changed: recompute the status from the cache
    /// with this flow (`None`: it has no flow to check), asking the server nothing.
    StatusOnly(Option<RuleFlow>),
    /// An IdentityProvider whose dependents alone changed after a pass that found JIT on:
    /// rebuild its dependents from the caches, asking the server nothing.
    DependentsOnly,
    /// Read the server and converge.
    Full,
}

/// What the next pass must do, given the last successful full pass (`last`), the inputs now, and
/// the coalescing window of an IdentityProvider's dependents' changes. Pure.
pub fn decide(last: Option<&LastPass>, inputs: &Inputs, now: Instant, window: Duration) -> Pass {
    let Some(last) = last else {
        return Pass::Full;
    };
    let not_due = now < last.due;
    if last.inputs == inputs.all() && not_due {
        return Pass::Skip(last.due - now);
    }
    match (&last.kind, inputs) {
        (
            KindPass::IdentityProvider {
                own,
                window_from,
                jit_on,
            },
            Inputs::IdentityProvider { own: own_now, .. },
        ) if own == own_now => {
            let end = *window_from + window;
            if now < end {
                Pass::Coalesce(end - now)
            } else if *jit_on && not_due {
                Pass::DependentsOnly
            } else {
                Pass::Full
            }
        }
        (
            KindPass::Application { server, rule_flow },
            Inputs::Application {
                server: server_now, ..
            },
        ) if server == server_now && not_due => Pass::StatusOnly(rule_flow.clone()),
        _ => Pass::Full,
    }
}

impl Memo {
    fn read<R>(&self, uid: &str, f: impl FnOnce(Option<&Record>) -> R) -> R {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        f(records.get(uid))
    }

    /// Changes one record; one that holds nothing any more is dropped.
    fn change<R>(&self, uid: &str, f: impl FnOnce(&mut Record) -> R) -> R {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let record = records.entry(uid.to_string()).or_default();
        let out = f(record);
        if record.is_empty() {
            records.remove(uid);
        }
        out
    }

    /// What the next pass of `uid` must do ([`decide`]).
    pub fn decide(&self, uid: &str, inputs: &Inputs, now: Instant, window: Duration) -> Pass {
        self.read(uid, |r| {
            decide(r.and_then(|r| r.last.as_ref()), inputs, now, window)
        })
    }

    /// Records a successful full pass. `resync` is the drift-check interval.
    pub fn passed(&self, uid: &str, inputs: u64, kind: KindPass, now: Instant, resync: Duration) {
        let due = now + resync.mul_f64(0.9);
        self.change(uid, |r| r.last = Some(LastPass { inputs, due, kind }));
    }

    /// Records the inputs of a successful cheaper pass (status-only, dependents-only), keeping
    /// when the full pass is due. An IdentityProvider's coalescing window starts again at `now`:
    /// one such pass per window.
    pub fn passed_cheaply(&self, uid: &str, inputs: u64, now: Instant) {
        self.change(uid, |r| {
            if let Some(last) = r.last.as_mut() {
                last.inputs = inputs;
                if let KindPass::IdentityProvider { window_from, .. } = &mut last.kind {
                    *window_from = now;
                }
            }
        });
    }

    /// Forgets the last pass (it failed or did not finish; the object is being deleted): the next
    /// pass is a full one.
    pub fn forget_pass(&self, uid: &str) {
        self.change(uid, |r| {
            r.last = None;
            r.flow = None;
        });
    }

    /// Forgets everything about an object: its deletion finished.
    pub fn forget(&self, uid: &str) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.remove(uid);
    }

    /// How many objects have a record (for tests: a deleted object leaves none).
    pub fn len(&self) -> usize {
        self.records.lock().map(|r| r.len()).unwrap_or_default()
    }

    /// Whether no object has a record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records the flow an Application's successful full pass of `generation` left on the server.
    pub fn record_flow(&self, uid: &str, generation: Option<i64>, flow: Option<RuleFlow>) {
        self.change(uid, |r| r.flow = Some((generation, flow)));
    }

    /// The flow an Application's last successful full pass left on the server, if that pass was
    /// of `generation` (an older pass's flow may since have been replaced): `Some(None)` when it
    /// has no flow the rule checks, `None` when this process does not know.
    pub fn flow_at(&self, uid: &str, generation: Option<i64>) -> Option<Option<RuleFlow>> {
        self.read(uid, |r| {
            r.and_then(|r| r.flow.as_ref())
                .filter(|(g, _)| *g == generation)
                .map(|(_, f)| f.clone())
        })
    }

    /// Whether the other kind's watch must react to `facts` of `uid`: they differ from what it
    /// last reacted to. `gone`: the object is deleted for good and is forgotten.
    pub fn facts_changed(&self, uid: &str, facts: &impl Hash, gone: bool) -> bool {
        let now = digest(facts);
        self.change(uid, |r| {
            let changed = r.seen != Some(now);
            r.seen = (!gone).then_some(now);
            changed
        })
    }
}

/// [`Written`]: what this process wrote and the cache may not show yet.
impl Memo {
    /// Remembers the server id an object owns (created, adopted, recovered or found by id).
    pub fn remember_id(&self, uid: &str, id: &str) {
        self.change(uid, |r| r.written.id = Some(id.to_string()));
    }

    /// The server id of `uid` as the status shows it, else as this process last knew it.
    pub fn owned_id(&self, uid: &str, in_status: Option<String>) -> Option<String> {
        in_status.or_else(|| self.read(uid, |r| r.and_then(|r| r.written.id.clone())))
    }

    /// Notes that `managed::claim` set the create-pending mark of a brand-new object.
    pub fn fresh_pending(&self, uid: &str) {
        self.change(uid, |r| r.written.fresh = true);
    }

    /// Whether the object's create-pending mark was set by `managed::claim` with no create since
    /// (consumed: the create follows).
    pub fn take_fresh_pending(&self, uid: &str) -> bool {
        self.change(uid, |r| std::mem::take(&mut r.written.fresh))
    }

    /// Remembers the client Secret version just pushed to an IdP (and annotated).
    pub fn remember_pushed(&self, uid: &str, version: String) {
        self.change(uid, |r| r.written.pushed = Some(version));
    }

    /// The client Secret version last pushed: this process's memory, else the annotation.
    pub fn pushed_version(&self, uid: &str, annotated: Option<String>) -> Option<String> {
        self.read(uid, |r| r.and_then(|r| r.written.pushed.clone()))
            .or(annotated)
    }

    /// Whether the credentials Secret at `version` (from the metadata cache) is known to hold
    /// `data`, so it need not be read. Any edit of the Secret changes its version.
    pub fn credentials_current(&self, uid: &str, version: &str, data: &impl Hash) -> bool {
        let hash = digest(data);
        self.read(uid, |r| {
            r.and_then(|r| r.written.credentials.as_ref())
                .is_some_and(|(v, h)| v == version && *h == hash)
        })
    }

    /// Records that the credentials Secret at `version` holds `data` (read or just written).
    pub fn credentials_written(&self, uid: &str, version: Option<String>, data: &impl Hash) {
        let known = version.map(|v| (v, digest(data)));
        self.change(uid, |r| r.written.credentials = known);
    }

    /// The version of an Application's credentials Secret it last wrote or read.
    pub fn credentials_version(&self, uid: &str) -> Option<String> {
        self.read(uid, |r| {
            r.and_then(|r| r.written.credentials.as_ref())
                .map(|(v, _)| v.clone())
        })
    }

    /// Forgets what an Application's credentials Secret held (deleted, or someone else's).
    pub fn credentials_forget(&self, uid: &str) {
        self.change(uid, |r| r.written.credentials = None);
    }
}

/// A digest of hashable data (facts, credentials), never the data itself.
pub fn digest(data: &impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESYNC: Duration = Duration::from_secs(100);
    const WINDOW: Duration = Duration::from_secs(5);

    fn app(all: u64, server: u64) -> Inputs {
        Inputs::Application { all, server }
    }

    fn idp(all: u64, own: u64) -> Inputs {
        Inputs::IdentityProvider { all, own }
    }

    fn app_pass(inputs: Inputs, at: Instant) -> LastPass {
        let Inputs::Application { all, server } = inputs else {
            unreachable!("an Application's inputs")
        };
        LastPass {
            inputs: all,
            due: at + RESYNC.mul_f64(0.9),
            kind: KindPass::Application {
                server,
                rule_flow: None,
            },
        }
    }

    fn idp_pass(inputs: Inputs, at: Instant, jit_on: bool) -> LastPass {
        let Inputs::IdentityProvider { all, own } = inputs else {
            unreachable!("an IdentityProvider's inputs")
        };
        LastPass {
            inputs: all,
            due: at + RESYNC.mul_f64(0.9),
            kind: KindPass::IdentityProvider {
                own,
                window_from: at,
                jit_on,
            },
        }
    }

    /// The one decision of what a pass must do, for both kinds.
    #[test]
    fn what_the_next_pass_must_do() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let due = s(90); // a jittered resync fires at 90 % of the interval at the earliest
        let skip = |n: u64| Pass::Skip(Duration::from_secs(90 - n));
        // (case, last pass, inputs now, now, want)
        let table: Vec<(&str, Option<LastPass>, Inputs, Instant, Pass)> = vec![
            ("never passed", None, app(1, 1), s(1), Pass::Full),
            ("an IdP never passed", None, idp(1, 1), s(1), Pass::Full),
            (
                "App: nothing new",
                Some(app_pass(app(1, 1), t0)),
                app(1, 1),
                s(30),
                skip(30),
            ),
            (
                "App: a server input",
                Some(app_pass(app(1, 1), t0)),
                app(2, 2),
                s(30),
                Pass::Full,
            ),
            (
                "App: its IdPs' rule facts alone",
                Some(app_pass(app(1, 1), t0)),
                app(2, 1),
                s(30),
                Pass::StatusOnly(None),
            ),
            (
                "App: the resync",
                Some(app_pass(app(1, 1), t0)),
                app(1, 1),
                due,
                Pass::Full,
            ),
            (
                "App: rule facts at the resync",
                Some(app_pass(app(1, 1), t0)),
                app(2, 1),
                due,
                Pass::Full,
            ),
            (
                "IdP: nothing new",
                Some(idp_pass(idp(1, 1), t0, true)),
                idp(1, 1),
                s(30),
                skip(30),
            ),
            (
                "IdP: its own change never waits",
                Some(idp_pass(idp(1, 1), t0, true)),
                idp(2, 2),
                s(1),
                Pass::Full,
            ),
            (
                "IdP: a burst of dependents waits for the window",
                Some(idp_pass(idp(1, 1), t0, true)),
                idp(2, 1),
                s(2),
                Pass::Coalesce(Duration::from_secs(3)),
            ),
            (
                "IdP: dependents after the window, JIT on",
                Some(idp_pass(idp(1, 1), t0, true)),
                idp(2, 1),
                s(5),
                Pass::DependentsOnly,
            ),
            (
                "IdP: dependents, JIT off or skipped: live flows",
                Some(idp_pass(idp(1, 1), t0, false)),
                idp(2, 1),
                s(5),
                Pass::Full,
            ),
            (
                "IdP: dependents at the resync",
                Some(idp_pass(idp(1, 1), t0, true)),
                idp(2, 1),
                due,
                Pass::Full,
            ),
            (
                "IdP: the resync",
                Some(idp_pass(idp(1, 1), t0, true)),
                idp(1, 1),
                due,
                Pass::Full,
            ),
        ];
        for (case, last, inputs, now, want) in table {
            assert_eq!(decide(last.as_ref(), &inputs, now, WINDOW), want, "{case}");
        }
    }

    #[test]
    fn a_cheaper_pass_keeps_the_resync_and_restarts_the_window() {
        let memo = Memo::default();
        let t0 = Instant::now();
        let own = KindPass::IdentityProvider {
            own: 1,
            window_from: t0,
            jit_on: true,
        };
        memo.passed("u", 1, own, t0, RESYNC);
        let t6 = t0 + Duration::from_secs(6);
        assert_eq!(
            memo.decide("u", &idp(2, 1), t6, WINDOW),
            Pass::DependentsOnly
        );
        memo.passed_cheaply("u", 2, t6);
        assert_eq!(
            memo.decide("u", &idp(2, 1), t6, WINDOW),
            Pass::Skip(Duration::from_secs(84)),
            "the full pass stays due at 90 s"
        );
        let t7 = t6 + Duration::from_secs(1);
        assert_eq!(
            memo.decide("u", &idp(3, 1), t7, WINDOW),
            Pass::Coalesce(Duration::from_secs(4)),
            "one dependents-only pass per window"
        );
    }

    #[test]
    fn a_failed_pass_forgets_the_pass_and_the_flow_but_not_what_was_written() {
        let memo = Memo::default();
        let t0 = Instant::now();
        let flow = (crate::backend::FlowUpdate::default(), None);
        memo.passed("a", 1, app_pass(app(1, 1), t0).kind, t0, RESYNC);
        memo.record_flow("a", Some(1), Some(flow.clone()));
        memo.remember_id("a", "i1");
        memo.forget_pass("a");
        assert_eq!(memo.decide("a", &app(1, 1), t0, WINDOW), Pass::Full);
        assert_eq!(memo.flow_at("a", Some(1)), None);
        assert_eq!(memo.owned_id("a", None).as_deref(), Some("i1"));
        memo.forget("a");
        assert!(memo.is_empty(), "a finished deletion leaves nothing");
    }

    #[test]
    fn a_flow_is_known_only_for_the_generation_whose_pass_left_it() {
        let memo = Memo::default();
        let flow = (crate::backend::FlowUpdate::default(), None);
        assert_eq!(memo.flow_at("a", Some(1)), None);
        memo.record_flow("a", Some(1), Some(flow.clone()));
        assert_eq!(memo.flow_at("a", Some(1)), Some(Some(flow)));
        // A new generation whose pass has not finished: the server may still have the old flow
        // or already the new one, so the caller reads it.
        assert_eq!(memo.flow_at("a", Some(2)), None);
        memo.record_flow("b", Some(1), None);
        assert_eq!(memo.flow_at("b", Some(1)), Some(None), "no flow to check");
    }

    #[test]
    fn credentials_are_current_only_at_the_same_version_with_the_same_data() {
        let memo = Memo::default();
        assert!(!memo.credentials_current("u", "7", &("id", "s")));
        memo.credentials_written("u", Some("7".into()), &("id", "s"));
        assert!(memo.credentials_current("u", "7", &("id", "s")));
        assert!(!memo.credentials_current("u", "8", &("id", "s")));
        assert!(!memo.credentials_current("u", "7", &("id", "rotated")));
        memo.credentials_forget("u");
        assert!(!memo.credentials_current("u", "7", &("id", "s")));
        assert!(memo.is_empty(), "an empty record is dropped");
    }

    #[test]
    fn an_owned_id_survives_a_stale_status_until_the_object_is_deleted() {
        let memo = Memo::default();
        assert_eq!(memo.owned_id("u", None), None);
        memo.remember_id("u", "i1");
        assert_eq!(
            memo.owned_id("u", None).as_deref(),
            Some("i1"),
            "stale view"
        );
        assert_eq!(memo.owned_id("u", Some("i2".into())).as_deref(), Some("i2"));
        memo.remember_pushed("u", "7".into());
        memo.forget("u");
        assert_eq!(memo.owned_id("u", None), None);
        assert_eq!(memo.pushed_version("u", None), None);
    }

    #[test]
    fn the_fresh_mark_is_taken_once() {
        let memo = Memo::default();
        assert!(!memo.take_fresh_pending("u"));
        memo.fresh_pending("u");
        assert!(memo.take_fresh_pending("u"));
        assert!(!memo.take_fresh_pending("u"));
        assert!(memo.is_empty());
    }

    #[test]
    fn the_watch_reacts_to_changed_facts_once_and_forgets_what_is_gone() {
        let memo = Memo::default();
        assert!(memo.facts_changed("u", &1, false), "first sight");
        assert!(!memo.facts_changed("u", &1, false), "the same facts");
        assert!(memo.facts_changed("u", &2, false));
        assert!(memo.facts_changed("u", &3, true), "gone for good");
        assert!(memo.is_empty());
    }
}
