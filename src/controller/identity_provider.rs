//! IdentityProvider reconciler.
//!
//! Steps: dereference (backend, client, Secret) → validate → observe the server (by id, else by name
//! with explicit adoption or crash recovery) → create or diff and update the root attributes, the
//! federated authenticator and JIT → find the dependents (cluster index + the server's connected-apps)
//! → apply the conflict rule and the conflict policy (a JIT disable is held back under Block) →
//! status, Events. Cleanup honours `deletionPolicy` and never wedges on a missing backend or Secret.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};

use super::conditions::{self, Cond, Outcome};
use super::identity_backend::now;
use super::translate::{self, authenticator_differs, desired_authenticator, jit_change, jit_diff};
use super::{
    annotate, apply_status, backend_err, cleanup, jittered, publish, read_secret, registry,
    secret_value, Context, Error, FINALIZER,
};
use crate::api::conditions::{INTERCONNECTION_CONFLICT, READY};
use crate::api::identity_provider::{ConflictEntry, ConflictPolicy, Dependent};
use crate::api::{Application, IdentityProvider, IdentityProviderStatus};
use crate::backend::{IdentityServer, IdpPatch, NewIdp, Secret};
use crate::flow::{self, Jit, LocalAccountAuthenticators};

/// Marks a create in flight: set before the POST, removed once the id is in status. After a crash in
/// between, the object found by name is ours, not someone else's (no duplicate, no silent takeover).
pub const CREATE_PENDING: &str = "identity-operator.io/create-pending";

/// Reconciles one IdentityProvider (apply or cleanup through the finalizer).
pub async fn reconcile(idp: Arc<IdentityProvider>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = idp.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<IdentityProvider> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, idp, |event| async {
        match event {
            FinalizerEvent::Apply(idp) => apply(idp, &api, &ctx).await,
            FinalizerEvent::Cleanup(idp) => cleanup(idp, &ctx).await,
        }
    })
    .await
    .map_err(Error::from)
}

/// What the reconcile learned, for the status.
#[derive(Default)]
struct Observed {
    id: Option<String>,
    jit_on_server: Option<bool>,
    dependents: Vec<Dependent>,
    conflicts: Vec<ConflictEntry>,
    secret_version: Option<String>,
}

async fn apply(
    idp: Arc<IdentityProvider>,
    api: &Api<IdentityProvider>,
    ctx: &Context,
) -> Result<Action, Error> {
    let ns = idp.namespace().ok_or(Error::NoNamespace)?;
    let spec = &idp.spec;
    let old = idp.status.clone().unwrap_or_default();
    let mut observed = Observed {
        id: old.id.clone(),
        ..Default::default()
    };

    // 1. Dereference: the backend and its client.
    let backend_ref = ObjectRef::new(&spec.backend_ref.name).within(&ns);
    let Some(backend) = ctx.backends.get(&backend_ref) else {
        let msg = format!(
            "IdentityBackend {} not found in namespace {ns}: create it",
            spec.backend_ref.name
        );
        return finish(
            ctx,
            api,
            &idp,
            observed,
            Outcome::stalled("BackendNotFound", msg),
        )
        .await;
    };
    let client = match ctx.registry.client_for(&ctx.client, &backend).await {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("IdentityBackend {}: {e}", spec.backend_ref.name);
            return finish(
                ctx,
                api,
                &idp,
                observed,
                Outcome::Stalled {
                    reason: e.reason().into(),
                    message: msg,
                },
            )
            .await;
        }
    };
    // 2. Validate what the schema could not.
    if spec.provider_type().is_none() {
        let msg = "set exactly one of google, github, oidc or saml".to_string();
        return finish(
            ctx,
            api,
            &idp,
            observed,
            Outcome::stalled("InvalidSpec", msg),
        )
        .await;
    }
    let secret_ref = spec
        .google
        .as_ref()
        .or(spec.github.as_ref())
        .map(|p| &p.client_secret_ref)
        .or(spec.oidc.as_ref().map(|p| &p.client_secret_ref));
    let secret_version = match secret_ref {
        Some(r) => match read_secret(&ctx.client, &ns, &r.name).await? {
            Some(s) if secret_value(&s, &r.key).is_some() => {
                Some((s.resource_version().unwrap_or_default(), s, r.key.clone()))
            }
            found => {
                let what = if found.is_some() {
                    format!("has no key {}", r.key)
                } else {
                    "not found".into()
                };
                let msg = format!("Secret {} (clientSecretRef) {what}: create it", r.name);
                return finish(
                    ctx,
                    api,
                    &idp,
                    observed,
                    Outcome::stalled("SecretNotFound", msg),
                )
                .await;
            }
        },
        None => None,
    };
    let client_secret = secret_version
        .as_ref()
        .and_then(|(_, s, k)| secret_value(s, k))
        .map(Secret::new);
    observed.secret_version = secret_version.as_ref().map(|(v, _, _)| v.clone());
    let Some(desired_auth) = desired_authenticator(spec, client_secret.as_ref()) else {
        let msg = "the identity provider type is incomplete".to_string();
        return finish(
            ctx,
            api,
            &idp,
            observed,
            Outcome::stalled("InvalidSpec", msg),
        )
        .await;
    };

    // 3. Observe: by id, else by name (adopt or recover a crashed create).
    let mut server = None;
    if let Some(id) = &old.id {
        match client.get_idp(id).await {
            Ok(found) => server = Some(found),
            Err(e) if e.is_not_found() => {
                publish(ctx, idp.as_ref(), EventType::Warning, "DeletedOnServer", "Observe",
                    format!("identity provider {id} was deleted on the server behind the operator's back; recreating it")).await;
                observed.id = None;
            }
            Err(e) => return Err(backend_err(format!("reading identity provider {id}"))(e)),
        }
    }
    let mut created = false;
    if server.is_none() {
        let pending = idp.annotations().get(CREATE_PENDING) == Some(&spec.display_name);
        match client
            .find_idp_by_name(&spec.display_name)
            .await
            .map_err(backend_err("looking up the identity provider by name"))?
        {
            Some(found) if spec.adopt || pending => {
                let (reason, note) = if pending {
                    (
                        "Recovered",
                        format!(
                            "found identity provider {} created before a restart; taking it over",
                            found.id
                        ),
                    )
                } else {
                    (
                        "Adopted",
                        format!(
                            "adopted the existing identity provider {} ({})",
                            spec.display_name, found.id
                        ),
                    )
                };
                publish(ctx, idp.as_ref(), EventType::Normal, reason, "Adopt", note).await;
                server = Some(
                    client
                        .get_idp(&found.id)
                        .await
                        .map_err(backend_err("reading the adopted identity provider"))?,
                );
            }
            Some(found) => {
                let msg = format!(
                    "an identity provider named {:?} already exists on the server ({}); set spec.adopt: true to manage it, or choose another displayName",
                    spec.display_name, found.id
                );
                return finish(
                    ctx,
                    api,
                    &idp,
                    observed,
                    Outcome::stalled("AlreadyExists", msg),
                )
                .await;
            }
            None => {
                annotate(api, idp.as_ref(), CREATE_PENDING, Some(&spec.display_name)).await?;
                let new = NewIdp {
                    name: spec.display_name.clone(),
                    description: spec.description.clone(),
                    image: None,
                    authenticator: desired_auth.clone(),
                    jit: None,
                };
                let id = client
                    .create_idp(&new)
                    .await
                    .map_err(backend_err("creating the identity provider"))?;
                // Persist the id before anything else can fail.
                let early = IdentityProviderStatus {
                    id: Some(id.clone()),
                    ..old.clone()
                };
                apply_status(api, idp.as_ref(), None, &early).await?;
                annotate(api, idp.as_ref(), CREATE_PENDING, None).await?;
                publish(
                    ctx,
                    idp.as_ref(),
                    EventType::Normal,
                    "Created",
                    "Create",
                    format!("created identity provider {} ({id})", spec.display_name),
                )
                .await;
                server = Some(
                    client
                        .get_idp(&id)
                        .await
                        .map_err(backend_err("reading the created identity provider"))?,
                );
                created = true;
            }
        }
    }
    let Some(server) = server else {
        return Err(Error::Finalizer(
            "identity provider vanished during reconcile".into(),
        ));
    };
    let id = server.id.clone();
    observed.id = Some(id.clone());

    // 4. Diff and update root attributes and the authenticator. Only what differs is written.
    let mut changed: Vec<&str> = Vec::new();
    let mut ops = Vec::new();
    if server.name != spec.display_name {
        ops.push(IdpPatch::Name(spec.display_name.clone()));
    }
    if let Some(d) = &spec.description {
        if server.description.as_ref() != Some(d) {
            ops.push(IdpPatch::Description(d.clone()));
        }
    }
    if !ops.is_empty() {
        client
            .patch_idp(&id, &ops)
            .await
            .map_err(backend_err("updating the identity provider"))?;
        changed.push("name/description");
    }
    if !created {
        let server_auth = match client
            .get_federated_authenticator(&id, &desired_auth.authenticator_id)
            .await
        {
            Ok(a) => Some(a),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(backend_err("reading the federated authenticator")(e)),
        };
        let secret_changed =
            old.id.is_some() && observed.secret_version != old_secret_version(&idp);
        if server_auth
            .as_ref()
            .is_none_or(|s| authenticator_differs(&desired_auth, s))
            || secret_changed
        {
            client
                .update_federated_authenticator(&id, &desired_auth)
                .await
                .map_err(backend_err("updating the federated authenticator"))?;
            changed.push("authenticator");
        }
    }

    // 5. Dependents and the conflict rule, with JIT as the spec declares it.
    let needs_local = registry::local_account_authenticators(&backend);
    let (dependents, flows) = dependents(ctx, &idp, client.as_ref(), &id, &needs_local).await?;
    let declared = Jit::from(spec.jit.as_ref().map(|j| j.enabled));
    let idps = HashMap::from([(spec.display_name.clone(), declared)]);
    let analysis = flow::check_all(
        flows.iter().map(|(n, f)| (n.as_str(), f)),
        &idps,
        &needs_local,
    );
    observed.conflicts = analysis
        .conflicts
        .iter()
        .filter(|c| c.identity_provider == spec.display_name)
        .map(|c| ConflictEntry {
            application: c.application.clone(),
            identity_provider_step: c.identity_provider_step as i32,
            authenticator: c.authenticator.clone(),
            authenticator_step: c.authenticator_step as i32,
            unverified_script: c.unverified_script,
        })
        .collect();
    observed.dependents = dependents;

    // 6. JIT with the conflict policy: read-merge-write only the declared fields that differ.
    // The IdP's GET carries its JIT settings; ask separately only when a server leaves them out.
    let server_jit = match server.jit.clone() {
        Some(jit) => jit,
        None => client
            .get_jit(&id)
            .await
            .map_err(backend_err("reading JIT provisioning"))?,
    };
    let mut jit_on = server_jit.enabled;
    let mut blocked = false;
    if let Some(mut diff) = jit_change(spec).and_then(|c| jit_diff(&c, &server_jit)) {
        if diff.enabled == Some(false)
            && !observed.conflicts.is_empty()
            && spec.conflict_policy == ConflictPolicy::Block
        {
            diff.enabled = None;
            blocked = true;
        }
        if diff != Default::default() {
            let result = client
                .update_jit(&id, &diff)
                .await
                .map_err(backend_err("updating JIT provisioning"))?;
            jit_on = result.enabled;
            changed.push("JIT");
        }
    }
    observed.jit_on_server = Some(jit_on);
    if !created && !changed.is_empty() && old.observed_generation == idp.metadata.generation {
        publish(
            ctx,
            idp.as_ref(),
            EventType::Normal,
            "DriftCorrected",
            "Update",
            format!(
                "the server differed from the spec in: {}; it was corrected",
                changed.join(", ")
            ),
        )
        .await;
    }

    // 7. Status.
    let outcome = if blocked {
        Outcome::stalled(
            "JITDisableBlocked",
            format!(
                "JIT provisioning was not disabled on the server because {} need a local account after this provider (conflictPolicy: Block). \
                 Enable jit again, skip the MFA step for this provider's users (skipFor on that step), remove the MFA step from those applications, or set conflictPolicy: Warn to push it anyway. The rest of the spec is applied.",
                names(&observed.conflicts)
            ),
        )
    } else {
        Outcome::Ready(format!("identity provider {id} matches the spec"))
    };
    finish(ctx, api, &idp, observed, outcome).await
}

fn names(conflicts: &[ConflictEntry]) -> String {
    let mut apps: Vec<&str> = conflicts.iter().map(|c| c.application.as_str()).collect();
    apps.dedup();
    format!("application(s) {}", apps.join(", "))
}

fn old_secret_version(idp: &IdentityProvider) -> Option<String> {
    idp.annotations().get(SECRET_VERSION).cloned()
}

/// The resourceVersion of the client Secret last pushed, so a Secret edit is pushed even though the
/// server never shows the secret back. Kept as an annotation: it is bookkeeping, not status a user reads.
pub const SECRET_VERSION: &str = "identity-operator.io/client-secret-version";

/// The applications that must look again after an IdentityProvider event: its dependents, but only
/// when something they use changed (generation, server id, JIT on the server, deletion, finalizer). Status
/// writes that only change the IdP's dependents list or conditions do not re-run every dependent.
pub fn apps_to_refresh(ctx: &Context, idp: &IdentityProvider) -> Vec<ObjectRef<Application>> {
    let me = ObjectRef::from_obj(idp);
    let status = idp.status.as_ref();
    let fingerprint = (
        idp.metadata.generation,
        status.and_then(|s| s.id.clone()),
        status.and_then(|s| s.jit.clone()),
        status.and_then(|s| s.observed_generation),
        idp.meta().deletion_timestamp.is_some(),
        idp.finalizers().iter().any(|f| f == FINALIZER),
    );
    if let Ok(mut seen) = ctx.idp_seen.lock() {
        if seen.get(&me) == Some(&fingerprint) {
            return Vec::new();
        }
        if fingerprint.4 && !fingerprint.5 {
            seen.remove(&me); // Gone for good: forget it.
        } else {
            seen.insert(me.clone(), fingerprint);
        }
    }
    ctx.index
        .lock()
        .map(|i| i.dependents(&me).cloned().collect())
        .unwrap_or_default()
}

/// The applications whose flows offer this IdP: those declared in the cluster (from the index, no
/// scan) and those that exist only on the server (from connected-apps). Returns them for the status
/// and their flows keyed by application name for the conflict rule.
async fn dependents(
    ctx: &Context,
    idp: &IdentityProvider,
    client: &dyn IdentityServer,
    id: &str,
    needs_local: &LocalAccountAuthenticators,
) -> Result<(Vec<Dependent>, Vec<(String, flow::Flow)>), Error> {
    let me = ObjectRef::from_obj(idp);
    let cluster_apps: Vec<Arc<Application>> = {
        let index = ctx
            .index
            .lock()
            .map_err(|_| Error::Internal("dependency index poisoned".into()))?;
        index
            .dependents(&me)
            .filter_map(|r| ctx.apps.get(r))
            .collect()
    };
    let mut deps: BTreeMap<String, Dependent> = BTreeMap::new();
    let mut flows = Vec::new();
    let mut known_ids = Vec::new();
    for app in &cluster_apps {
        let name = app.spec.display_name.clone();
        let resolved = translate::desired_flow(&app.spec, |r| {
            ctx.idps
                .get(&ObjectRef::new(r).within(&idp.namespace().unwrap_or_default()))
                .and_then(|i| {
                    Some((
                        i.spec.display_name.clone(),
                        i.spec.provider_type()?.authenticator_name().to_string(),
                    ))
                })
        });
        if let Ok(Some(f)) = resolved {
            flows.push((
                name.clone(),
                translate::flow_for_rule(&f.steps, f.script.as_deref(), needs_local),
            ));
        }
        let app_id = app.status.as_ref().and_then(|s| s.id.clone());
        known_ids.extend(app_id.clone());
        deps.insert(
            name.clone(),
            Dependent {
                name,
                application_ref: Some(app.name_any()),
                id: app_id,
            },
        );
    }
    for app_id in client
        .connected_apps(id)
        .await
        .map_err(backend_err("listing connected applications"))?
    {
        if known_ids.contains(&app_id) {
            continue;
        }
        let app = match client.get_application(&app_id).await {
            Ok(a) => a,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(backend_err("reading a connected application")(e)),
        };
        if app.login_flow.kind == crate::backend::FlowKind::UserDefined {
            flows.push((
                app.name.clone(),
                translate::flow_for_rule(
                    &app.login_flow.steps,
                    app.login_flow.script.as_deref(),
                    needs_local,
                ),
            ));
        }
        deps.entry(app.name.clone()).or_insert(Dependent {
            name: app.name,
            application_ref: None,
            id: Some(app_id),
        });
    }
    Ok((deps.into_values().collect(), flows))
}

async fn finish(
    ctx: &Context,
    api: &Api<IdentityProvider>,
    idp: &IdentityProvider,
    observed: Observed,
    outcome: Outcome,
) -> Result<Action, Error> {
    let old = idp.status.clone().unwrap_or_default();
    let mut wanted = outcome.conditions();
    let had_conflict = conditions::is_true(&old.conditions, INTERCONNECTION_CONFLICT);
    let conflict = if observed.conflicts.is_empty() {
        Cond::new(
            INTERCONNECTION_CONFLICT,
            false,
            "NoConflict",
            "no application needs a local account after this provider without JIT provisioning",
        )
    } else {
        let detail: Vec<String> = observed
            .conflicts
            .iter()
            .map(|c| {
                format!(
                    "{} (step {} offers this provider, step {} requires {})",
                    c.application, c.identity_provider_step, c.authenticator_step, c.authenticator
                )
            })
            .collect();
        let on_server = if observed.jit_on_server == Some(true) {
            " The server still has JIT on (change held back)."
        } else {
            " The server has JIT off: these logins fail now."
        };
        let unverified = if observed.conflicts.iter().any(|c| c.unverified_script) {
            format!(" An application {}.", flow::UNVERIFIED_SCRIPT)
        } else {
            String::new()
        };
        Cond::new(
            INTERCONNECTION_CONFLICT,
            true,
            "JITDisabledWithMFADependents",
            format!("JIT provisioning is disabled in the spec, but these applications need a local account after this provider: {}.{on_server}{unverified} {}", detail.join("; "), flow::REMEDY),
        )
    };
    let conflict_now = conflict.status;
    let conflict_msg = conflict.message.clone();
    wanted.push(conflict);
    let status = IdentityProviderStatus {
        observed_generation: idp.metadata.generation,
        conditions: conditions::merge(
            &old.conditions,
            &wanted,
            conditions::MANAGED,
            idp.metadata.generation,
            &now(),
        ),
        id: observed.id.clone(),
        jit: observed
            .jit_on_server
            .map(|on| if on { "Enabled" } else { "Disabled" }.to_string())
            .or(old.jit.clone()),
        dependents: observed.dependents,
        conflicts: observed.conflicts,
    };
    if conflict_now != had_conflict {
        if conflict_now {
            publish(
                ctx,
                idp,
                EventType::Warning,
                "InterconnectionConflict",
                "CheckConflicts",
                conflict_msg,
            )
            .await;
        } else if !old.conditions.is_empty() {
            publish(
                ctx,
                idp,
                EventType::Normal,
                "ConflictCleared",
                "CheckConflicts",
                "no application depends on JIT being disabled here any more".into(),
            )
            .await;
        }
    }
    let was_ready = conditions::is_true(&old.conditions, READY);
    if was_ready != outcome.is_ready() && !outcome.is_ready() {
        let c = &outcome.conditions()[0];
        publish(
            ctx,
            idp,
            EventType::Warning,
            &c.reason,
            "Reconcile",
            c.message.clone(),
        )
        .await;
    }
    if let Some(v) = &observed.secret_version {
        if idp.annotations().get(SECRET_VERSION) != Some(v)
            && observed.id.is_some()
            && outcome.is_ready()
        {
            annotate(api, idp, SECRET_VERSION, Some(v)).await?;
        }
    }
    apply_status(api, idp, idp.status.as_ref(), &status).await?;
    ctx.metrics.set_conflicts(
        "IdentityProvider",
        &ObjectRef::from_obj(idp).to_string(),
        status.conflicts.len(),
    );
    Ok(Action::requeue(jittered(ctx.resync)))
}

async fn cleanup(idp: Arc<IdentityProvider>, ctx: &Context) -> Result<Action, Error> {
    ctx.metrics.set_conflicts(
        "IdentityProvider",
        &ObjectRef::from_obj(idp.as_ref()).to_string(),
        0,
    );
    let owned = cleanup::Owned {
        kind: cleanup::ServerKind::IdentityProvider,
        policy: idp.spec.deletion_policy,
        backend_ref: &idp.spec.backend_ref,
        display_name: &idp.spec.display_name,
        id: idp.status.as_ref().and_then(|s| s.id.clone()),
    };
    cleanup::release(ctx, idp.as_ref(), owned).await
}
