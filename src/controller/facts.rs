//! What each kind reacts to in the other, defined once. An Application's pass reads these facts of
//! its IdentityProviders, so its memo hashes them and the IdentityProvider watch wakes the
//! Application only when they change; an IdentityProvider's pass reads [`AppFacts`] of its
//! dependents, and the Application watch wakes it on the same. One definition for both uses: a fact
//! the memo hashed but the watch ignored (or the reverse) was a pass that never ran or one that
//! always ran for nothing.
//!
//! The input hashes below are everything a pass reads from the cluster; the server's own state is
//! re-read at the resync (or when an input changes).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::{Context, FINALIZER};
use crate::api::{Application, IdentityProvider};

/// What an IdentityProvider's pass reads of one dependent Application: its generation (the flow it
/// declares), its server id, whether the pass of that generation finished (its flow is on the
/// server), its deletion and its finalizer (whose removal means the server object is gone). A
/// status write that changes only the Application's conditions changes none of these.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppFacts {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `status.id`: the server object it owns.
    pub id: Option<String>,
    /// `status.observedGeneration`: a finished pass of a new generation has pushed its flow.
    pub observed_generation: Option<i64>,
    /// Being deleted.
    pub deleting: bool,
    /// This operator's finalizer is still on it.
    pub finalizer: bool,
}

impl AppFacts {
    /// The facts of `app`. Pure.
    pub fn of(app: &Application) -> Self {
        let status = app.status.as_ref();
        Self {
            generation: app.metadata.generation,
            id: status.and_then(|s| s.id.clone()),
            observed_generation: status.and_then(|s| s.observed_generation),
            deleting: app.meta().deletion_timestamp.is_some(),
            finalizer: app.finalizers().iter().any(|f| f == FINALIZER),
        }
    }

    /// Deleted for good: the watch forgets it.
    pub fn gone(&self) -> bool {
        self.deleting && !self.finalizer
    }
}

/// What an Application's pass reads of one IdentityProvider it references.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdpFacts {
    /// What its server work (the flow it pushes) reads.
    pub server: IdpServerFacts,
    /// What only its status rule (and Block check) reads: a change here alone needs no server
    /// request ([`super::memo::Pass::StatusOnly`]).
    pub rule: IdpRuleFacts,
    /// This operator's finalizer is still on it (its removal means the server object is gone).
    pub finalizer: bool,
}

/// What an Application's server work reads of an IdP: which object it is, the name and
/// authenticator its flow uses, its backend, whether it exists on the server and was reconciled,
/// whether a rename of it is refused (the flow waits), its deletion. Not its generation: a JIT
/// toggle changes only [`IdpRuleFacts`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdpServerFacts {
    /// `metadata.uid`: a recreated IdP is another one.
    pub uid: Option<String>,
    /// The name flows on the server use for it ([`IdentityProvider::server_name`]).
    pub server_name: String,
    /// Its authenticator's name (from its provider type).
    pub authenticator: Option<&'static str>,
    /// `spec.backendRef.name`.
    pub backend: String,
    /// `status.id`.
    pub id: Option<String>,
    /// It has been reconciled once (`status.observedGeneration` set).
    pub reconciled: bool,
    /// Its last pass was refused a rename onto another IdP's name (`Ready=False`, `RenameClash`).
    pub rename_refused: bool,
    /// Being deleted.
    pub deleting: bool,
}

/// What an Application's status rule reads of an IdP: JIT as its spec declares it (enabled, the
/// account lookup and its failure handling: what `translate::declared_jit` reads), JIT as the
/// server has it, and the conflict policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdpRuleFacts {
    /// JIT as declared, before the server's values fill what the spec leaves out.
    pub declared: crate::flow::Jit,
    /// `spec.conflictPolicy`.
    pub policy: crate::api::identity_provider::ConflictPolicy,
    /// `status.jit`: JIT on the server as the IdP's last pass found it.
    pub on_server: Option<String>,
}

impl IdpFacts {
    /// The facts of `idp`. Pure.
    pub fn of(idp: &IdentityProvider) -> Self {
        let s = idp.status.as_ref();
        let rename_refused = s
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "False" && c.reason == "RenameClash");
        Self {
            server: IdpServerFacts {
                uid: idp.uid(),
                server_name: idp.server_name().to_string(),
                authenticator: idp.spec.provider_type().map(|p| p.authenticator_name()),
                backend: idp.spec.backend_ref.name.clone(),
                id: s.and_then(|s| s.id.clone()),
                reconciled: s.is_some_and(|s| s.observed_generation.is_some()),
                rename_refused,
                deleting: idp.meta().deletion_timestamp.is_some(),
            },
            rule: IdpRuleFacts {
                declared: super::translate::declared_jit(&idp.spec, None),
                policy: idp.spec.conflict_policy,
                on_server: s.and_then(|s| s.jit.clone()),
            },
            finalizer: idp.finalizers().iter().any(|f| f == FINALIZER),
        }
    }

    /// Deleted for good: the watch forgets it.
    pub fn gone(&self) -> bool {
        self.server.deleting && !self.finalizer
    }
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

/// Everything an Application's pass reads from the cluster: its generation, its backend, its IdPs'
/// [`IdpFacts`], and (see [`AppInputs::with`]) its credentials Secret.
pub struct AppInputs {
    base: DefaultHasher,
    /// The IdPs' [`IdpRuleFacts`]: a change here alone needs no server request.
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
            let facts = ctx.idps.get(&r).map(|idp| IdpFacts::of(&idp));
            facts.as_ref().map(|f| &f.server).hash(&mut h);
            facts.as_ref().map(|f| &f.rule).hash(&mut rule);
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

    /// The inputs as the memo's decision takes them (the Secret as read before the pass).
    pub fn for_decision(&self) -> super::memo::Inputs {
        super::memo::Inputs::Application {
            all: self.hash(),
            server: self.server_with(self.secret.clone()),
        }
    }
}

/// Everything an IdentityProvider's pass reads from the cluster: its generation, its backend, its
/// client Secret (its own inputs), and the [`AppFacts`] of the Applications that reference it.
pub fn idp_inputs(ctx: &Context, idp: &IdentityProvider, client_secret: Option<&str>) -> IdpInputs {
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
            .map(|a| (a.uid(), AppFacts::of(&a)))
            .hash(&mut h);
    }
    IdpInputs {
        all: h.finish(),
        own,
    }
}

/// An IdentityProvider's inputs ([`idp_inputs`]).
#[derive(Clone, Copy, Debug)]
pub struct IdpInputs {
    /// All inputs.
    pub all: u64,
    /// Its own inputs (its dependents left out).
    pub own: u64,
}

impl IdpInputs {
    /// The inputs as the memo's decision takes them.
    pub fn for_decision(&self) -> super::memo::Inputs {
        super::memo::Inputs::IdentityProvider {
            all: self.all,
            own: self.own,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::identity_provider::{AccountLookup, ConflictPolicy};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    fn idp() -> IdentityProvider {
        let mut idp: IdentityProvider = serde_json::from_value(serde_json::json!({
            "apiVersion": "identity.asgardeo.io/v1alpha1",
            "kind": "IdentityProvider",
            "metadata": {"name": "google", "namespace": "ns", "uid": "u1", "generation": 1},
            "spec": {
                "backendRef": {"name": "b"},
                "displayName": "Google",
                "google": {"clientID": "c", "clientSecretRef": {"name": "s", "key": "k"}},
                "jit": {"enabled": true},
            },
            "status": {"id": "i1", "observedGeneration": 1, "jit": "Enabled"},
        }))
        .expect("an IdentityProvider");
        idp.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
        idp
    }

    fn ready(reason: &str) -> Condition {
        Condition {
            type_: "Ready".into(),
            status: if reason == "Ready" { "True" } else { "False" }.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Default::default(),
            ),
            observed_generation: None,
        }
    }

    fn status(idp: &mut IdentityProvider) -> &mut crate::api::IdentityProviderStatus {
        idp.status.get_or_insert_with(Default::default)
    }

    fn jit(idp: &mut IdentityProvider) -> &mut crate::api::identity_provider::JitSpec {
        idp.spec.jit.get_or_insert_with(Default::default)
    }

    /// Which edits of an IdP are facts its Applications react to, and which part (server work or
    /// the rule alone). The IdP watch and the Application's memo both take them from here.
    #[test]
    fn which_idp_changes_wake_its_applications_and_which_part_they_touch() {
        let before = IdpFacts::of(&idp());
        let deleted = || {
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Default::default(),
            ))
        };
        type Edit = fn(&mut IdentityProvider);
        // (case, edit, server part changes, rule part changes)
        let table: &[(&str, Edit, bool, bool)] = &[
            (
                "a description only",
                |i| i.spec.description = Some("d".into()),
                false,
                false,
            ),
            (
                "a Ready condition",
                |i| status(i).conditions = vec![ready("Ready")],
                false,
                false,
            ),
            (
                "the pass of a new generation",
                |i| status(i).observed_generation = Some(2),
                false,
                false,
            ),
            (
                "its server name",
                |i| status(i).server_name = Some("Google 2".into()),
                true,
                false,
            ),
            (
                "its server id",
                |i| status(i).id = Some("i2".into()),
                true,
                false,
            ),
            (
                "another backend",
                |i| i.spec.backend_ref.name = "other".into(),
                true,
                false,
            ),
            (
                "a refused rename",
                |i| status(i).conditions = vec![ready("RenameClash")],
                true,
                false,
            ),
            ("JIT declared off", |i| jit(i).enabled = false, false, true),
            ("JIT no longer declared", |i| i.spec.jit = None, false, true),
            (
                "JIT off on the server",
                |i| status(i).jit = Some("Disabled".into()),
                false,
                true,
            ),
            (
                "conflictPolicy Warn",
                |i| i.spec.conflict_policy = ConflictPolicy::Warn,
                false,
                true,
            ),
            (
                "an account lookup whose failure skips JIT",
                |i| {
                    jit(i).account_lookup = Some(vec![AccountLookup {
                        local_attribute: "http://wso2.org/claims/emailaddress".into(),
                        federated_attribute: "email".into(),
                    }]);
                    jit(i).skip_for_lookup_failure = Some(true);
                },
                false,
                true,
            ),
        ];
        for &(case, edit, server, rule) in table {
            let mut changed = idp();
            edit(&mut changed);
            let after = IdpFacts::of(&changed);
            assert_eq!(after.server != before.server, server, "{case}: server part");
            assert_eq!(after.rule != before.rule, rule, "{case}: rule part");
            assert_eq!(after != before, server || rule, "{case}: the watch");
        }
        let mut gone = idp();
        gone.metadata.deletion_timestamp = deleted();
        assert!(!IdpFacts::of(&gone).gone(), "still cleaning up");
        assert_ne!(IdpFacts::of(&gone).server, before.server, "its deletion");
        gone.metadata.finalizers = None;
        assert!(IdpFacts::of(&gone).gone());
        assert!(!before.gone());
    }
}
