//! The admission decision for an Application: pure, from the cached IdentityProviders.
//!
//! It is the reconciler's own Block decision ([`plan_flow`]) taken one step earlier: the new spec's
//! flow (its script planned by [`plan_script`], as `sync_app` does) is the flow to push, and the old
//! spec's flow stands in for the server's (an admission webhook must not call the identity server).
//! A conflict the old flow already had is not new, exactly as plan_flow does not hold back a
//! conflict the live flow already has. A conflict with an IdP under `conflictPolicy: Block` denies;
//! one under Warn only warns. No second implementation of the rule: [`crate::flow::check_flow`]
//! decides inside plan_flow.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::api::identity_provider::ConflictPolicy;
use crate::api::{Application, IdentityProvider};
use crate::backend::{FlowKind, LoginFlow};
use crate::controller::application::plan_flow;
use crate::controller::referenced_idps;
use crate::controller::translate::{declared_jit, desired_flow, plan_script};
use crate::flow::{self, Jit, LocalAccountAuthenticators};

/// What admission answers for one Application create or update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// New conflicts with IdPs under `conflictPolicy: Block`: the request is denied.
    pub denied: Vec<flow::Conflict>,
    /// New conflicts with IdPs under `conflictPolicy: Warn`: allowed with a warning each.
    pub warned: Vec<flow::Conflict>,
}

impl Decision {
    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        self.denied.is_empty()
    }

    /// The denial message (empty when allowed): every blocked conflict and what to do.
    pub fn message(&self) -> String {
        if self.denied.is_empty() {
            return String::new();
        }
        let what: Vec<String> = self.denied.iter().map(describe).collect();
        format!(
            "the login flow change is refused (conflictPolicy: Block): {}. {} Or drop or move the step, or set the identity provider's conflictPolicy: Warn. Without this check the operator would hold the flow change back (LoginFlowBlocked).",
            what.join("; "),
            remedy(&self.denied)
        )
    }

    /// One warning per Warn conflict (kubectl prints each as `Warning: ...`).
    pub fn warnings(&self) -> Vec<String> {
        self.warned
            .iter()
            .map(|c| {
                format!(
                    "{} (conflictPolicy: Warn, so the flow is pushed anyway). {}",
                    describe(c),
                    c.remedy()
                )
            })
            .collect()
    }
}

/// One conflict as admission says it; `identity_provider` is already the Kubernetes name.
fn describe(c: &flow::Conflict) -> String {
    format!(
        "IdentityProvider {} (step {}): {}, and step {} offers {}, which needs a local account: users who sign in with it would fail at step {}",
        c.identity_provider,
        c.identity_provider_step,
        c.why_no_account(),
        c.authenticator_step,
        c.authenticator,
        c.authenticator_step
    )
}

/// The remedies of the denied conflicts, each once.
fn remedy(conflicts: &[flow::Conflict]) -> String {
    let set: BTreeSet<&str> = conflicts.iter().map(|c| c.remedy()).collect();
    set.into_iter().collect::<Vec<_>>().join(" ")
}

/// An IdP's JIT as admission takes it: the weaker of the declared and the server's as its status
/// last recorded (the reconciler's rule, `cached_jit`), or the declared one alone while the IdP is
/// not on the server yet (it will be created with the declared JIT, and the application waits for
/// it). Pure.
pub fn admission_jit(idp: &IdentityProvider) -> Jit {
    let declared = declared_jit(&idp.spec, None);
    let on_server = idp
        .status
        .as_ref()
        .filter(|s| s.id.is_some())
        .and_then(|s| s.jit.as_deref())
        .and_then(Jit::from_status_value);
    match on_server {
        Some(on) => declared.weaker(on),
        None => declared,
    }
}

/// Decides a create (`old` None) or an update of `new`. `idp` finds an IdentityProvider of the
/// application's namespace in the cache by name; `needs_local` is the application's backend's set
/// of local-account authenticators. Pure.
///
/// Nothing is decided when the flow did not change (a metadata or finalizer edit, a deletion), and
/// an IdP that is missing or on another backend is not a conflict here: the reconciler reports it
/// (IdentityProviderNotFound, InvalidReference).
pub fn decide(
    new: &Application,
    old: Option<&Application>,
    idp: impl Fn(&str) -> Option<Arc<IdentityProvider>>,
    needs_local: &LocalAccountAuthenticators,
) -> Decision {
    if new.metadata.deletion_timestamp.is_some()
        || old.is_some_and(|o| o.spec.login_flow == new.spec.login_flow)
    {
        return Decision::default();
    }
    let mut usable: HashMap<String, Arc<IdentityProvider>> = HashMap::new();
    for r in referenced_idps(new)
        .into_iter()
        .chain(old.map(referenced_idps).unwrap_or_default())
    {
        if let Some(i) = idp(&r.name).filter(|i| i.spec.backend_ref == new.spec.backend_ref) {
            usable.insert(r.name, i);
        }
    }
    // An IdP the cache cannot vouch for gets a key no server name can have (a NUL): the rule sees
    // an unknown reference, never a conflict.
    let resolve = |name: &str| {
        Some(match usable.get(name) {
            Some(i) => (
                i.server_name().to_string(),
                i.spec
                    .provider_type()
                    .map_or("unknown", |t| t.authenticator_name())
                    .to_string(),
            ),
            None => (format!("\0{name}"), "unknown".to_string()),
        })
    };
    let Ok(Some(desired)) = desired_flow(&new.spec, resolve) else {
        return Decision::default();
    };
    let live = old
        .and_then(|o| desired_flow(&o.spec, resolve).ok().flatten())
        .map(|f| LoginFlow {
            kind: FlowKind::UserDefined,
            steps: f.steps,
            script: f.script,
            subject_step_id: 1,
            attribute_step_id: 1,
        });
    // As sync_app does before plan_flow: the generated script goes with the flow, and dropping
    // every skipFor replaces the operator's earlier script with the plain one.
    let desired = match &live {
        Some(l) => plan_script(Some(desired.clone()), l, new.spec.adopt, needs_local)
            .0
            .unwrap_or(desired),
        None => desired,
    };
    let mut jit = HashMap::new();
    let (mut block, mut warn) = (BTreeSet::new(), BTreeSet::new());
    let mut k8s_name: BTreeMap<String, String> = BTreeMap::new();
    for (name, i) in &usable {
        let server = i.server_name().to_string();
        jit.insert(server.clone(), admission_jit(i));
        match i.spec.conflict_policy {
            ConflictPolicy::Block => block.insert(server.clone()),
            ConflictPolicy::Warn => warn.insert(server.clone()),
        };
        k8s_name.insert(server, name.clone());
    }
    let app = &new.spec.display_name;
    let named = |conflicts: Vec<flow::Conflict>| -> Vec<flow::Conflict> {
        conflicts
            .into_iter()
            .map(|mut c| {
                if let Some(n) = k8s_name.get(&c.identity_provider) {
                    c.identity_provider = n.clone();
                }
                c
            })
            .collect()
    };
    let (_, denied) = plan_flow(
        app,
        Some(&desired),
        live.as_ref(),
        &jit,
        &block,
        needs_local,
    );
    let (_, warned) = plan_flow(app, Some(&desired), live.as_ref(), &jit, &warn, needs_local);
    Decision {
        denied: named(denied),
        warned: named(warned),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
