//! What each object's last successful pass saw, so that a reconcile with nothing new to act on skips
//! the server and the apiserver; the periodic resync (the drift check) always does the full pass.
//!
//! Most reconciles of a converging namespace are triggered by other objects (an IdP's status, a
//! dependent's server id, a Secret) and find nothing to do, yet each one read the object, its OIDC
//! settings, its IdPs' JIT and a Secret again. The inputs below are everything a pass reads from
//! the cluster; the server's own state is re-read at the resync (or when an input changes).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::{Context, FINALIZER};
use crate::api::{Application, IdentityProvider};

/// The last successful full pass of each object (by uid): a hash of its inputs and when the next
/// full pass is due.
#[derive(Default)]
pub struct Memo {
    passes: Mutex<HashMap<String, (u64, Instant)>>,
    /// Per IdentityProvider (uid): a hash of its own inputs (its dependents left out) at its last
    /// successful full pass, and when that pass was.
    own: Mutex<HashMap<String, (u64, Instant)>>,
    /// IdentityProviders (uid) whose last successful full pass had JIT on, declared and on the
    /// server: no conflict is possible, so a change of their dependents alone needs no server
    /// read ([`Memo::dependents_only`]).
    jit_on: Mutex<std::collections::HashSet<String>>,
    /// Per Application (uid): the resourceVersion of its credentials Secret when it last held
    /// exactly these credentials (a hash of them, never the values).
    credentials: Mutex<HashMap<String, (String, u64)>>,
    /// Per object (uid): the server id this process last knew it owns. The cache can show an
    /// object older than this process's own last status write (the next pass may start before the
    /// watch delivers it); the id must not be lost to such a stale view.
    ids: Mutex<HashMap<String, String>>,
    /// Per IdentityProvider (uid): the client Secret version this process last pushed (the
    /// annotation may not have reached the cache yet).
    pushed: Mutex<HashMap<String, String>>,
    /// Per Application (uid): at its last successful full pass, the hash of its server inputs
    /// ([`AppInputs::server_with`]), when its next full pass is due, and the flow the status rule
    /// checks (with the script on the server), so that a change of the IdPs' JIT alone is a
    /// status-only pass.
    rules: Mutex<HashMap<String, RulePass>>,
    /// Objects (uid) whose create-pending mark `managed::claim` just set with their finalizer,
    /// before any create.
    fresh: Mutex<std::collections::HashSet<String>>,
    /// Per Application (uid): the generation of its last successful full pass and the flow that
    /// pass left on the server, so that an IdP's pass with JIT on computes `jitRequiredBy`
    /// without reading every declared dependent's application again.
    flows: Mutex<HashMap<String, FlowPass>>,
}

/// The flow the status rule checks: the steps and the script on the server.
pub type RuleFlow = (crate::backend::FlowUpdate, Option<String>);

/// An Application's last full pass as [`Memo::status_only`] needs it: server inputs, due, flow.
type RulePass = (u64, Instant, Option<RuleFlow>);

/// An Application's last full pass as an IdP's `jitRequiredBy` needs it: generation, flow.
type FlowPass = (Option<i64>, Option<RuleFlow>);

impl Memo {
    /// When `inputs` equal those of the last successful pass and its resync is not due yet, how
    /// long until it is: the pass can be skipped and the object requeued for then.
    pub fn skip(&self, uid: &str, inputs: u64, now: Instant) -> Option<Duration> {
        let passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        let (seen, due) = passes.get(uid)?;
        (*seen == inputs && now < *due).then(|| *due - now)
    }

    /// Records a successful full pass. `resync` is the drift-check interval: the next full pass is
    /// due at 90 % of it, the earliest a jittered resync requeue fires, so a resync is never skipped.
    pub fn record(&self, uid: &str, inputs: u64, now: Instant, resync: Duration) {
        let mut passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        passes.insert(uid.to_string(), (inputs, now + resync.mul_f64(0.9)));
    }

    /// Forgets an object (a failed or unfinished pass, a deletion): its next pass is a full one.
    pub fn forget(&self, uid: &str) {
        let mut passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        passes.remove(uid);
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        rules.remove(uid);
        let mut flows = self.flows.lock().unwrap_or_else(|e| e.into_inner());
        flows.remove(uid);
    }

    /// Records the flow an Application's successful full pass of `generation` left on the server.
    pub fn record_flow(&self, uid: &str, generation: Option<i64>, flow: Option<RuleFlow>) {
        let mut flows = self.flows.lock().unwrap_or_else(|e| e.into_inner());
        flows.insert(uid.to_string(), (generation, flow));
    }

    /// The flow an Application's last successful full pass left on the server, if that pass was
    /// of `generation` (an older pass's flow may since have been replaced): `Some(None)` when it
    /// has no flow the rule checks, `None` when this process does not know.
    pub fn flow_at(&self, uid: &str, generation: Option<i64>) -> Option<Option<RuleFlow>> {
        let flows = self.flows.lock().unwrap_or_else(|e| e.into_inner());
        flows
            .get(uid)
            .filter(|(g, _)| *g == generation)
            .map(|(_, f)| f.clone())
    }

    /// Records an Application's full pass for [`Memo::status_only`].
    pub fn record_rule(
        &self,
        uid: &str,
        server: u64,
        now: Instant,
        resync: Duration,
        flow: Option<RuleFlow>,
    ) {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        rules.insert(uid.to_string(), (server, now + resync.mul_f64(0.9), flow));
    }

    /// When only the status rule's inputs changed since the last full pass (same server inputs,
    /// resync not due): the flow to check, for a pass that recomputes the status from the cache
    /// and asks the server nothing. `Some(None)`: the application has no flow to check.
    pub fn status_only(&self, uid: &str, server: u64, now: Instant) -> Option<Option<RuleFlow>> {
        let rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let (seen, due, flow) = rules.get(uid)?;
        (*seen == server && now < *due).then(|| flow.clone())
    }

    /// Records new inputs of an object after a status-only pass, keeping when its full pass is due.
    pub fn rehash(&self, uid: &str, inputs: u64) {
        let mut passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = passes.get_mut(uid) {
            entry.0 = inputs;
        }
    }

    /// Coalesces an IdP's passes for a burst of dependent changes: when only its dependents
    /// changed since its last successful full pass and that pass is less than `window` old, how
    /// long until the window ends (the pass runs then, once, for the whole burst). Its own changes
    /// (spec, Secret, backend, a JIT toggle) never wait.
    pub fn coalesce(
        &self,
        uid: &str,
        own: u64,
        now: Instant,
        window: Duration,
    ) -> Option<Duration> {
        let last = self.own.lock().unwrap_or_else(|e| e.into_inner());
        let (seen, at) = last.get(uid)?;
        let end = *at + window;
        (*seen == own && now < end).then(|| end - now)
    }

    /// Records an IdP's own inputs at a successful full pass (see [`Memo::coalesce`]).
    pub fn record_own(&self, uid: &str, own: u64, now: Instant) {
        let mut last = self.own.lock().unwrap_or_else(|e| e.into_inner());
        last.insert(uid.to_string(), (own, now));
    }

    /// Forgets an IdP's own inputs (a failed pass, a deletion).
    pub fn forget_own(&self, uid: &str) {
        let mut last = self.own.lock().unwrap_or_else(|e| e.into_inner());
        last.remove(uid);
        let mut jit_on = self.jit_on.lock().unwrap_or_else(|e| e.into_inner());
        jit_on.remove(uid);
    }

    /// Records whether an IdP's successful full pass found JIT on, declared and on the server.
    pub fn record_jit_on(&self, uid: &str, on: bool) {
        let mut jit_on = self.jit_on.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            jit_on.insert(uid.to_string());
        } else {
            jit_on.remove(uid);
        }
    }

    /// Whether an IdP's pass may be a dependents-only one: its own inputs equal those of its last
    /// successful full pass, that pass found JIT on (declared and on the server), and its resync
    /// (the full pass that re-reads the server) is not due yet.
    pub fn dependents_only(&self, uid: &str, own: u64, now: Instant) -> bool {
        let same_own = {
            let last = self.own.lock().unwrap_or_else(|e| e.into_inner());
            last.get(uid).is_some_and(|(seen, _)| *seen == own)
        };
        let jit_on = {
            let jit_on = self.jit_on.lock().unwrap_or_else(|e| e.into_inner());
            jit_on.contains(uid)
        };
        let not_due = {
            let passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
            passes.get(uid).is_some_and(|(_, due)| now < *due)
        };
        same_own && jit_on && not_due
    }

    /// Whether the credentials Secret at `version` (from the metadata cache) is known to hold
    /// `data`, so it need not be read. Any edit of the Secret changes its version.
    pub fn credentials_current(&self, uid: &str, version: &str, data: &impl Hash) -> bool {
        let known = self.credentials.lock().unwrap_or_else(|e| e.into_inner());
        known
            .get(uid)
            .is_some_and(|(v, h)| v == version && *h == digest(data))
    }

    /// Records that the credentials Secret at `version` holds `data` (read or just written).
    pub fn credentials_written(&self, uid: &str, version: Option<String>, data: &impl Hash) {
        let mut known = self.credentials.lock().unwrap_or_else(|e| e.into_inner());
        match version {
            Some(v) => known.insert(uid.to_string(), (v, digest(data))),
            None => known.remove(uid),
        };
    }

    /// The version of an Application's credentials Secret it last wrote or read.
    pub fn credentials_version(&self, uid: &str) -> Option<String> {
        let known = self.credentials.lock().unwrap_or_else(|e| e.into_inner());
        known.get(uid).map(|(v, _)| v.clone())
    }

    /// Forgets what an Application's credentials Secret held (deleted, or someone else's).
    pub fn credentials_forget(&self, uid: &str) {
        let mut known = self.credentials.lock().unwrap_or_else(|e| e.into_inner());
        known.remove(uid);
    }
}

impl Memo {
    /// Remembers the server id an object owns (created, adopted, recovered or found by id).
    pub fn remember_id(&self, uid: &str, id: &str) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if ids.get(uid).map(String::as_str) != Some(id) {
            ids.insert(uid.to_string(), id.to_string());
        }
    }

    /// The server id of `uid` as the status shows it, else as this process last knew it.
    pub fn owned_id(&self, uid: &str, in_status: Option<String>) -> Option<String> {
        in_status.or_else(|| {
            let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
            ids.get(uid).cloned()
        })
    }

    /// Forgets an object's server id and pushed Secret version (its deletion finished).
    pub fn forget_id(&self, uid: &str) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.remove(uid);
        let mut pushed = self.pushed.lock().unwrap_or_else(|e| e.into_inner());
        pushed.remove(uid);
    }

    /// Notes that `managed::claim` set the create-pending mark of a brand-new object.
    pub fn fresh_pending(&self, uid: &str) {
        let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        fresh.insert(uid.to_string());
    }

    /// Whether the object's create-pending mark was set by `managed::claim` with no create since
    /// (consumed: the create follows).
    pub fn take_fresh_pending(&self, uid: &str) -> bool {
        let mut fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        fresh.remove(uid)
    }

    /// Remembers the client Secret version just pushed to an IdP (and annotated).
    pub fn remember_pushed(&self, uid: &str, version: String) {
        let mut pushed = self.pushed.lock().unwrap_or_else(|e| e.into_inner());
        pushed.insert(uid.to_string(), version);
    }

    /// The client Secret version last pushed: this process's memory, else the annotation.
    pub fn pushed_version(&self, uid: &str, annotated: Option<String>) -> Option<String> {
        let pushed = self.pushed.lock().unwrap_or_else(|e| e.into_inner());
        pushed.get(uid).cloned().or(annotated)
    }
}

fn digest(data: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

fn backend_inputs(ctx: &Context, ns: &str, name: &str, h: &mut DefaultHasher) {
    let backend = ctx.backends.get(&ObjectRef::new(name).within(ns));
    backend
        .as_ref()
        .map(|b| (b.uid(), b.metadata.generation))
        .hash(h);
    if let Some(b) = backend {
        ctx.registry
            .secret_version(ns, &b.spec.credentials_secret_ref.name)
            .hash(h);
    }
}

/// Everything an Application's pass reads from the cluster: its generation and marks, its backend,
/// its IdPs (server id, JIT as on the server, generation, deletion), and (see [`AppInputs::with`])
/// its credentials Secret.
pub struct AppInputs {
    base: DefaultHasher,
    /// What only the status rule reads of the IdPs (JIT declared and on the server, the policy): a
    /// change here alone needs no server request ([`Memo::status_only`]).
    rule: u64,
    /// The credentials Secret's version in the metadata cache (`None`: no credentialsSecret).
    pub secret: Option<Option<String>>,
}

impl AppInputs {
    /// Reads the inputs from the caches, before a pass.
    pub fn of(ctx: &Context, app: &Application) -> Self {
        let mut h = DefaultHasher::new();
        let ns = app.namespace().unwrap_or_default();
        (app.uid(), app.metadata.generation).hash(&mut h);
        // The create-pending mark and the pushed-Secret annotation are this operator's own
        // bookkeeping, written at the end of a pass: not inputs (the next pass may see them late).
        backend_inputs(ctx, &ns, &app.spec.backend_ref.name, &mut h);
        let mut rule = DefaultHasher::new();
        for r in super::referenced_idps(app) {
            let idp = ctx.idps.get(&r);
            idp.as_deref().map(idp_facts).hash(&mut h);
            idp.as_deref().map(idp_rule_facts).hash(&mut rule);
        }
        let secret = app
            .spec
            .credentials_secret
            .as_ref()
            .map(|s| ctx.registry.secret_version(&ns, &s.name));
        Self {
            base: h,
            rule: rule.finish(),
            secret,
        }
    }

    /// The hash of what needs the server (all but the status rule's inputs), with the Secret at
    /// `secret` (see [`AppInputs::with`]).
    pub fn server_with(&self, secret: Option<Option<String>>) -> u64 {
        let mut h = self.base.clone();
        secret.hash(&mut h);
        h.finish()
    }

    /// The hash, with the credentials Secret at `secret`. After a pass that wrote the Secret, its
    /// new version is passed here (the cache may not show it yet): otherwise the watch event of
    /// the pass's own write would look like a change and cost a full pass. The rest stays as read
    /// before the pass, so a change made during the pass is never recorded as seen.
    pub fn with(&self, secret: Option<Option<String>>) -> u64 {
        let mut h = self.base.clone();
        secret.hash(&mut h);
        self.rule.hash(&mut h);
        h.finish()
    }

    /// The hash as read before the pass.
    pub fn hash(&self) -> u64 {
        self.with(self.secret.clone())
    }
}

/// What an Application's server work reads of an IdP: its name and authenticator (the flow), its
/// backend, whether it exists on the server, its deletion. Not its generation: a JIT toggle changes
/// only [`idp_rule_facts`].
fn idp_facts(idp: &IdentityProvider) -> impl Hash {
    let s = idp.status.as_ref();
    (
        idp.uid(),
        idp.server_name().to_string(),
        idp.spec.provider_type().map(|p| p.authenticator_name()),
        idp.spec.backend_ref.name.clone(),
        s.and_then(|s| s.id.clone()),
        s.is_some_and(|s| s.observed_generation.is_some()),
        idp.meta().deletion_timestamp.is_some(),
    )
}

/// What an Application's status rule (and its Block check) reads of an IdP: JIT declared and on
/// the server, and the conflict policy.
fn idp_rule_facts(idp: &IdentityProvider) -> impl Hash {
    (
        idp.spec.jit.as_ref().map(|j| j.enabled),
        format!("{:?}", idp.spec.conflict_policy),
        idp.status.as_ref().and_then(|s| s.jit.clone()),
    )
}

/// Everything an IdentityProvider's pass reads from the cluster: its generation and marks, its
/// backend, its client Secret, and the Applications that reference it (generation, server id,
/// deletion, finalizer).
/// Returns (own inputs, all inputs).
pub fn idp_inputs(
    ctx: &Context,
    idp: &IdentityProvider,
    client_secret: Option<&str>,
) -> (u64, u64) {
    let mut h = DefaultHasher::new();
    let ns = idp.namespace().unwrap_or_default();
    (idp.uid(), idp.metadata.generation).hash(&mut h);
    // Not the create-pending mark nor the pushed-Secret annotation: this operator's own
    // bookkeeping, written at the end of a pass (the Secret's own version is an input).
    backend_inputs(ctx, &ns, &idp.spec.backend_ref.name, &mut h);
    client_secret
        .map(|name| ctx.registry.secret_version(&ns, name))
        .hash(&mut h);
    let own = h.finish();
    let me = ObjectRef::from_obj(idp);
    let mut dependents: Vec<ObjectRef<Application>> = ctx
        .index
        .lock()
        .map(|i| i.dependents(&me).cloned().collect())
        .unwrap_or_default();
    dependents.sort_by(|a, b| a.name.cmp(&b.name));
    for r in dependents {
        ctx.apps
            .get(&r)
            .map(|a| {
                (
                    a.uid(),
                    a.metadata.generation,
                    a.status.as_ref().and_then(|s| s.id.clone()),
                    // A finished pass of a new generation has pushed its flow: jitRequiredBy
                    // must look again (the generation alone may reach the IdP before the push).
                    a.status.as_ref().and_then(|s| s.observed_generation),
                    a.meta().deletion_timestamp.is_some(),
                    a.finalizers().iter().any(|f| f == FINALIZER),
                )
            })
            .hash(&mut h);
    }
    (own, h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESYNC: Duration = Duration::from_secs(100);

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
        memo.forget("a");
        assert_eq!(memo.flow_at("a", Some(1)), None, "a failed pass forgets it");
    }

    #[test]
    fn unknown_objects_get_a_full_pass() {
        let memo = Memo::default();
        assert_eq!(memo.skip("u", 1, Instant::now()), None);
    }

    #[test]
    fn same_inputs_before_the_resync_skip_until_it_is_due() {
        let memo = Memo::default();
        let t0 = Instant::now();
        memo.record("u", 1, t0, RESYNC);
        let later = t0 + Duration::from_secs(30);
        assert_eq!(memo.skip("u", 1, later), Some(Duration::from_secs(60)));
    }

    #[test]
    fn changed_inputs_get_a_full_pass() {
        let memo = Memo::default();
        let t0 = Instant::now();
        memo.record("u", 1, t0, RESYNC);
        assert_eq!(memo.skip("u", 2, t0 + Duration::from_secs(1)), None);
    }

    #[test]
    fn the_resync_is_never_skipped() {
        let memo = Memo::default();
        let t0 = Instant::now();
        memo.record("u", 1, t0, RESYNC);
        // A jittered resync fires at 90 % of the interval at the earliest.
        assert_eq!(memo.skip("u", 1, t0 + Duration::from_secs(90)), None);
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
    }

    #[test]
    fn only_a_dependents_change_after_a_jit_on_pass_skips_the_server_until_the_resync() {
        let t0 = Instant::now();
        let soon = t0 + Duration::from_secs(10);
        // (case, own at the pass, JIT on at the pass, own now, now, forgotten since, want)
        let due = t0 + RESYNC;
        let table: &[(&str, u64, bool, u64, Instant, bool, bool)] = &[
            ("dependents only, JIT on", 1, true, 1, soon, false, true),
            (
                "own change: spec, Secret, backend",
                1,
                true,
                2,
                soon,
                false,
                false,
            ),
            (
                "JIT off or skipped: live flows",
                1,
                false,
                1,
                soon,
                false,
                false,
            ),
            ("resync due: read the server", 1, true, 1, due, false, false),
            ("failed pass since", 1, true, 1, soon, true, false),
        ];
        for &(case, own, jit_on, own_now, now, forgotten, want) in table {
            let memo = Memo::default();
            assert!(!memo.dependents_only("u", own, t0), "{case}: never passed");
            memo.record("u", 7, t0, RESYNC);
            memo.record_own("u", own, t0);
            memo.record_jit_on("u", jit_on);
            if forgotten {
                memo.forget("u");
                memo.forget_own("u");
            }
            assert_eq!(memo.dependents_only("u", own_now, now), want, "{case}");
        }
    }

    #[test]
    fn a_burst_of_dependent_changes_waits_for_the_window_own_changes_do_not() {
        let memo = Memo::default();
        let t0 = Instant::now();
        let window = Duration::from_secs(5);
        assert_eq!(memo.coalesce("u", 1, t0, window), None);
        memo.record_own("u", 1, t0);
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(
            memo.coalesce("u", 1, t1, window),
            Some(Duration::from_secs(3))
        );
        assert_eq!(memo.coalesce("u", 2, t1, window), None, "own change");
        assert_eq!(
            memo.coalesce("u", 1, t0 + window, window),
            None,
            "window over"
        );
        memo.forget_own("u");
        assert_eq!(memo.coalesce("u", 1, t1, window), None);
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
        memo.forget_id("u");
        assert_eq!(memo.owned_id("u", None), None);
    }

    #[test]
    fn a_change_of_the_rule_inputs_alone_is_a_status_only_pass_until_the_resync() {
        let memo = Memo::default();
        let t0 = Instant::now();
        assert_eq!(memo.status_only("u", 1, t0), None, "never passed");
        memo.record("u", 10, t0, RESYNC);
        memo.record_rule("u", 1, t0, RESYNC, None);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(memo.status_only("u", 1, later), Some(None));
        assert_eq!(
            memo.status_only("u", 2, later),
            None,
            "a server input changed"
        );
        let due = t0 + Duration::from_secs(90);
        assert_eq!(
            memo.status_only("u", 1, due),
            None,
            "the resync is a full pass"
        );
        memo.rehash("u", 11);
        assert_eq!(
            memo.skip("u", 11, later),
            Some(Duration::from_secs(80)),
            "due kept"
        );
        memo.forget("u");
        assert_eq!(memo.status_only("u", 1, later), None);
    }

    #[test]
    fn a_forgotten_object_gets_a_full_pass() {
        let memo = Memo::default();
        let t0 = Instant::now();
        memo.record("u", 1, t0, RESYNC);
        memo.forget("u");
        assert_eq!(memo.skip("u", 1, t0), None);
    }
}
