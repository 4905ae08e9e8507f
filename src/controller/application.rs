//! Application reconciler.
//!
//! Steps: dereference (backend, client, the IdentityProviders of the flow: waits with a clear reason
//! while one is missing or not Ready) → observe the server (by id, else by name with explicit adoption
//! or crash recovery) → create, or diff and update the login flow and OIDC settings → write the OIDC
//! client credentials to the Secret named by `credentialsSecret` (owned, never in status) → apply the
//! conflict rule against the IdPs' JIT → status, Events. Cleanup honours `deletionPolicy`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::conditions::{self, Cond, Outcome};
use super::identity_backend::now;
use super::identity_provider::CREATE_PENDING;
use super::translate::{self, desired_flow, desired_oidc, flow_differs, oidc_differs};
use super::{
    annotate, apply_status, backend_err, cleanup, jittered, publish, registry, Context, Error,
    FINALIZER, MANAGER,
};
use crate::api::application::AppConflictEntry;
use crate::api::conditions::{INTERCONNECTION_CONFLICT, READY};
use crate::api::{Application, ApplicationStatus, IdentityProvider};
use crate::backend::{ApplicationPatch, NewApplication};
use crate::flow::{self, Jit};

/// Reconciles one Application (apply or cleanup through the finalizer).
pub async fn reconcile(app: Arc<Application>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = app.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<Application> = Api::namespaced(ctx.client.clone(), &ns);
    // Keep the IdP → application index current before anything can return early.
    index_app(&ctx, &app);
    finalizer(&api, FINALIZER, app, |event| async {
        match event {
            FinalizerEvent::Apply(app) => apply(app, &api, &ctx).await,
            FinalizerEvent::Cleanup(app) => cleanup(app, &ctx).await,
        }
    })
    .await
    .map_err(Error::from)
}

/// The IdentityProviders an application's flow references.
pub fn referenced_idps(app: &Application) -> Vec<ObjectRef<IdentityProvider>> {
    let ns = app.namespace().unwrap_or_default();
    let mut out: Vec<ObjectRef<IdentityProvider>> = app
        .spec
        .login_flow
        .iter()
        .flat_map(|f| &f.steps)
        .flat_map(|s| &s.options)
        .filter_map(|o| o.identity_provider_ref.as_ref())
        .map(|r| ObjectRef::new(&r.name).within(&ns))
        .collect();
    out.sort_by_key(|r| r.name.clone());
    out.dedup();
    out
}

/// Records the application's edges; returns the IdPs it referenced before and after (both need a
/// fresh look at their dependents).
pub fn index_app(ctx: &Context, app: &Application) -> Vec<ObjectRef<IdentityProvider>> {
    let me = ObjectRef::from_obj(app);
    let new = if app.meta().deletion_timestamp.is_some() {
        Vec::new()
    } else {
        referenced_idps(app)
    };
    let Ok(mut index) = ctx.index.lock() else {
        return new;
    };
    let mut touched: Vec<_> = index.identity_providers(&me).cloned().collect();
    index.set_app(me, new.iter().cloned());
    // While being deleted the app has no edges, but its IdPs must still hear about it.
    touched.extend(referenced_idps(app));
    touched.sort_by_key(|r| r.name.clone());
    touched.dedup();
    touched
}

/// The IdentityProviders to reconcile after an Application event: those it referenced before and
/// after, but only when something they use changed (its flow's generation, its server id, its
/// deletion, its finalizer). A status-only write of the Application changes none of these.
pub fn idps_to_refresh(ctx: &Context, app: &Application) -> Vec<ObjectRef<IdentityProvider>> {
    let touched = index_app(ctx, app);
    let fingerprint = (
        app.metadata.generation,
        app.status.as_ref().and_then(|s| s.id.clone()),
        app.meta().deletion_timestamp.is_some(),
        app.finalizers().iter().any(|f| f == FINALIZER),
    );
    let Ok(mut seen) = ctx.app_seen.lock() else {
        return touched;
    };
    let me = ObjectRef::from_obj(app);
    if seen.get(&me) == Some(&fingerprint) {
        return Vec::new();
    }
    if fingerprint.2 && !fingerprint.3 {
        seen.remove(&me); // Gone for good: forget it.
    } else {
        seen.insert(me, fingerprint);
    }
    touched
}

/// Whether an IdentityProvider exists on the server and has been reconciled once.
fn idp_ready(idp: &IdentityProvider) -> bool {
    idp.status
        .as_ref()
        .is_some_and(|s| s.id.is_some() && s.observed_generation.is_some())
}

/// A referenced IdentityProvider from the cache; when the cache has it missing or not ready yet, read
/// it from the apiserver. The trigger that started this reconcile came on another watch than the
/// cache's, so the cache may lag behind it by a moment; without the read the application would wait
/// for its next resync.
async fn referenced_idp(
    ctx: &Context,
    r: &ObjectRef<IdentityProvider>,
) -> Result<Option<Arc<IdentityProvider>>, Error> {
    if let Some(idp) = ctx.idps.get(r).filter(|i| idp_ready(i)) {
        return Ok(Some(idp));
    }
    let api: Api<IdentityProvider> = Api::namespaced(
        ctx.client.clone(),
        r.namespace.as_deref().unwrap_or_default(),
    );
    Ok(api.get_opt(&r.name).await?.map(Arc::new))
}

#[derive(Default)]
struct Observed {
    id: Option<String>,
    steps: Option<i32>,
    conflicts: Vec<AppConflictEntry>,
    conditional_steps: Option<String>,
    script: Option<String>,
}

async fn apply(
    app: Arc<Application>,
    api: &Api<Application>,
    ctx: &Context,
) -> Result<Action, Error> {
    let ns = app.namespace().ok_or(Error::NoNamespace)?;
    let spec = &app.spec;
    let old = app.status.clone().unwrap_or_default();
    let mut observed = Observed {
        id: old.id.clone(),
        steps: old.steps,
        ..Default::default()
    };

    // 1. Dereference: backend, client, and the IdentityProviders of the flow.
    let Some(backend) = ctx
        .backends
        .get(&ObjectRef::new(&spec.backend_ref.name).within(&ns))
    else {
        let msg = format!(
            "IdentityBackend {} not found in namespace {ns}: create it",
            spec.backend_ref.name
        );
        return finish(
            ctx,
            api,
            &app,
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
                &app,
                observed,
                Outcome::Stalled {
                    reason: e.reason().into(),
                    message: msg,
                },
            )
            .await;
        }
    };
    let mut idps: HashMap<String, Arc<IdentityProvider>> = HashMap::new();
    for r in referenced_idps(&app) {
        let Some(idp) = referenced_idp(ctx, &r).await? else {
            let msg = format!("waiting for IdentityProvider {} (referenced by loginFlow): it does not exist in namespace {ns}", r.name);
            return finish(
                ctx,
                api,
                &app,
                observed,
                Outcome::progressing("IdentityProviderNotFound", msg),
            )
            .await;
        };
        if !idp_ready(&idp) {
            let msg = format!(
                "waiting for IdentityProvider {} to exist on the server",
                r.name
            );
            return finish(
                ctx,
                api,
                &app,
                observed,
                Outcome::progressing("IdentityProviderNotReady", msg),
            )
            .await;
        }
        if idp.spec.backend_ref != spec.backend_ref {
            let msg = format!("IdentityProvider {} is on backend {}, this application on {}: a login flow can only use providers of its own backend",
                r.name, idp.spec.backend_ref.name, spec.backend_ref.name);
            return finish(
                ctx,
                api,
                &app,
                observed,
                Outcome::stalled("InvalidReference", msg),
            )
            .await;
        }
        idps.insert(r.name.clone(), idp);
    }
    let resolve = |name: &str| {
        let idp = idps.get(name)?;
        Some((
            idp.spec.display_name.clone(),
            idp.spec.provider_type()?.authenticator_name().to_string(),
        ))
    };
    let flow = desired_flow(spec, resolve)
        .map_err(|n| Error::Internal(format!("IdentityProvider {n} vanished")))?;
    let oidc = desired_oidc(spec);

    // 2. Observe: by id, else by name (adopt or recover a crashed create).
    let mut server = None;
    if let Some(id) = &old.id {
        match client.get_application(id).await {
            Ok(a) => server = Some(a),
            Err(e) if e.is_not_found() => {
                publish(ctx, app.as_ref(), EventType::Warning, "DeletedOnServer", "Observe",
                    format!("application {id} was deleted on the server behind the operator's back; recreating it")).await;
                observed.id = None;
            }
            Err(e) => return Err(backend_err(format!("reading application {id}"))(e)),
        }
    }
    let mut created = false;
    if server.is_none() {
        let pending = app.annotations().get(CREATE_PENDING) == Some(&spec.display_name);
        match client
            .find_application_by_name(&spec.display_name)
            .await
            .map_err(backend_err("looking up the application by name"))?
        {
            Some(found) if spec.adopt || pending => {
                let reason = if pending { "Recovered" } else { "Adopted" };
                publish(
                    ctx,
                    app.as_ref(),
                    EventType::Normal,
                    reason,
                    "Adopt",
                    format!("took over application {} ({})", spec.display_name, found.id),
                )
                .await;
                server = Some(
                    client
                        .get_application(&found.id)
                        .await
                        .map_err(backend_err("reading the adopted application"))?,
                );
            }
            Some(found) => {
                let msg = format!(
                    "an application named {:?} already exists on the server ({}); set spec.adopt: true to manage it, or choose another displayName",
                    spec.display_name, found.id
                );
                return finish(
                    ctx,
                    api,
                    &app,
                    observed,
                    Outcome::stalled("AlreadyExists", msg),
                )
                .await;
            }
            None => {
                annotate(api, app.as_ref(), CREATE_PENDING, Some(&spec.display_name)).await?;
                let new = NewApplication {
                    name: spec.display_name.clone(),
                    description: spec.description.clone(),
                    template_id: None,
                    oidc: oidc.clone(),
                    login_flow: flow.clone(),
                };
                let id = client
                    .create_application(&new)
                    .await
                    .map_err(backend_err("creating the application"))?;
                let early = ApplicationStatus {
                    id: Some(id.clone()),
                    ..old.clone()
                };
                apply_status(api, app.as_ref(), None, &early).await?;
                annotate(api, app.as_ref(), CREATE_PENDING, None).await?;
                publish(
                    ctx,
                    app.as_ref(),
                    EventType::Normal,
                    "Created",
                    "Create",
                    format!("created application {} ({id})", spec.display_name),
                )
                .await;
                server = Some(
                    client
                        .get_application(&id)
                        .await
                        .map_err(backend_err("reading the created application"))?,
                );
                created = true;
            }
        }
    }
    let Some(server) = server else {
        return Err(Error::Finalizer(
            "application vanished during reconcile".into(),
        ));
    };
    let id = server.id.clone();
    observed.id = Some(id.clone());
    // skipFor's generated script goes with the flow; a script the operator did not write stays.
    let (flow, script) = translate::plan_script(
        flow,
        &server.login_flow,
        spec.adopt,
        &registry::local_account_authenticators(&backend),
    );
    observed.script = script.status();
    observed.conditional_steps = translate::conditional_steps(spec);

    // 3. Diff and update: name, description, login flow, OIDC. Only what differs is written.
    let mut changed: Vec<&str> = Vec::new();
    let mut patch = ApplicationPatch::default();
    if server.name != spec.display_name {
        patch.name = Some(spec.display_name.clone());
    }
    if spec.description.is_some() && server.description != spec.description {
        patch.description = spec.description.clone();
    }
    if let Some(f) = &flow {
        if flow_differs(f, &server.login_flow) {
            patch.login_flow = Some(f.clone());
        }
    }
    if patch != ApplicationPatch::default() {
        client
            .patch_application(&id, &patch)
            .await
            .map_err(backend_err("updating the application"))?;
        changed.push(if patch.login_flow.is_some() {
            "login flow"
        } else {
            "name/description"
        });
    }
    observed.steps = Some(
        flow.as_ref()
            .map(|f| f.steps.len())
            .unwrap_or(server.login_flow.steps.len()) as i32,
    );
    if let Some(o) = &oidc {
        let mut current = client
            .get_oidc(&id)
            .await
            .map_err(backend_err("reading OIDC settings"))?;
        if oidc_differs(o, &current) {
            current = client
                .update_oidc(&id, o)
                .await
                .map_err(backend_err("updating OIDC settings"))?;
            changed.push("OIDC settings");
        }
        if let Some(secret) = &spec.credentials_secret {
            write_credentials(
                ctx,
                &app,
                &secret.name,
                current.client_id.as_deref(),
                current.client_secret.as_ref().map(|s| s.expose()),
            )
            .await?;
        }
    }
    if !created && !changed.is_empty() && old.observed_generation == app.metadata.generation {
        publish(
            ctx,
            app.as_ref(),
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

    // 4. The conflict rule, against each IdP's JIT as declared and as on the server.
    if let Some(f) = &flow {
        let needs_local = registry::local_account_authenticators(&backend);
        let jit: HashMap<String, Jit> = idps
            .values()
            .map(|i| {
                let on_server =
                    i.status.as_ref().and_then(|s| s.jit.as_deref()) != Some("Disabled");
                let on = i.spec.jit_enabled() && on_server;
                (
                    i.spec.display_name.clone(),
                    if on {
                        Jit::Enabled
                    } else {
                        Jit::from(i.spec.jit.as_ref().map(|_| false))
                    },
                )
            })
            .collect();
        let by_server_name: BTreeMap<&str, &str> = idps
            .iter()
            .map(|(k, i)| (i.spec.display_name.as_str(), k.as_str()))
            .collect();
        let analysis = flow::check_flow(
            &spec.display_name,
            &translate::flow_for_rule(&f.steps, script.effective.as_deref(), &needs_local),
            &jit,
            &needs_local,
        );
        observed.conflicts = analysis
            .conflicts
            .into_iter()
            .map(|c| AppConflictEntry {
                identity_provider: by_server_name
                    .get(c.identity_provider.as_str())
                    .map(|s| s.to_string())
                    .unwrap_or(c.identity_provider),
                identity_provider_step: c.identity_provider_step as i32,
                authenticator: c.authenticator,
                authenticator_step: c.authenticator_step as i32,
            })
            .collect();
    }
    finish(
        ctx,
        api,
        &app,
        observed,
        Outcome::Ready(format!("application {id} matches the spec")),
    )
    .await
}

async fn write_credentials(
    ctx: &Context,
    app: &Application,
    name: &str,
    client_id: Option<&str>,
    client_secret: Option<&str>,
) -> Result<(), Error> {
    let ns = app.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<KubeSecret> = Api::namespaced(ctx.client.clone(), &ns);
    let mut data = BTreeMap::new();
    if let Some(v) = client_id {
        data.insert("client-id".to_string(), ByteString(v.as_bytes().to_vec()));
    }
    if let Some(v) = client_secret {
        data.insert(
            "client-secret".to_string(),
            ByteString(v.as_bytes().to_vec()),
        );
    }
    let owner = app
        .controller_owner_ref(&())
        .into_iter()
        .collect::<Vec<_>>();
    if let Some(existing) = api.get_opt(name).await? {
        let same_data = existing.data.as_ref() == Some(&data);
        let owned = existing
            .metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| o.iter().any(|r| Some(&r.uid) == app.uid().as_ref()));
        if same_data && owned {
            return Ok(());
        }
    }
    let secret = KubeSecret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            owner_references: Some(owner),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Default::default()
    };
    let mut body = serde_json::to_value(&secret).map_err(|e| Error::Internal(e.to_string()))?;
    body["apiVersion"] = json!("v1");
    body["kind"] = json!("Secret");
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    publish(
        ctx,
        app,
        EventType::Normal,
        "CredentialsWritten",
        "WriteSecret",
        format!("wrote client-id and client-secret to Secret {name}"),
    )
    .await;
    Ok(())
}

async fn finish(
    ctx: &Context,
    api: &Api<Application>,
    app: &Application,
    observed: Observed,
    outcome: Outcome,
) -> Result<Action, Error> {
    let old = app.status.clone().unwrap_or_default();
    let mut wanted = outcome.conditions();
    let had_conflict = conditions::is_true(&old.conditions, INTERCONNECTION_CONFLICT);
    let conflict = if observed.conflicts.is_empty() {
        Cond::new(INTERCONNECTION_CONFLICT, false, "NoConflict", "every identity provider in the flow provisions local accounts where later steps need them")
    } else {
        let detail: Vec<String> = observed
            .conflicts
            .iter()
            .map(|c| format!("IdentityProvider {} (step {}) has JIT provisioning disabled, but step {} requires {}, which needs a local account",
                c.identity_provider, c.identity_provider_step, c.authenticator_step, c.authenticator))
            .collect();
        Cond::new(
            INTERCONNECTION_CONFLICT,
            true,
            "IdentityProviderWithoutJIT",
            format!(
                "{}. Users of that provider cannot finish this login flow.{} {}",
                detail.join("; "),
                if observed.script.as_deref() == Some("NotVerified") {
                    format!(" The application {}.", flow::UNVERIFIED_SCRIPT)
                } else {
                    String::new()
                },
                flow::REMEDY
            ),
        )
    };
    let conflict_now = conflict.status;
    let conflict_msg = conflict.message.clone();
    wanted.push(conflict);
    let status = ApplicationStatus {
        observed_generation: app.metadata.generation,
        conditions: conditions::merge(
            &old.conditions,
            &wanted,
            conditions::MANAGED,
            app.metadata.generation,
            &now(),
        ),
        id: observed.id,
        steps: observed.steps,
        conflicts: observed.conflicts,
        conditional_steps: observed.conditional_steps,
        script: observed.script,
    };
    if conflict_now != had_conflict {
        if conflict_now {
            publish(
                ctx,
                app,
                EventType::Warning,
                "InterconnectionConflict",
                "CheckConflicts",
                conflict_msg,
            )
            .await;
        } else if !old.conditions.is_empty() {
            publish(
                ctx,
                app,
                EventType::Normal,
                "ConflictCleared",
                "CheckConflicts",
                "the login flow fits the identity providers' JIT settings again".into(),
            )
            .await;
        }
    }
    let was_ready = conditions::is_true(&old.conditions, READY);
    if was_ready != outcome.is_ready() && !outcome.is_ready() {
        let c = &outcome.conditions()[0];
        publish(
            ctx,
            app,
            EventType::Warning,
            &c.reason,
            "Reconcile",
            c.message.clone(),
        )
        .await;
    }
    apply_status(api, app, app.status.as_ref(), &status).await?;
    ctx.metrics.set_conflicts(
        "Application",
        &ObjectRef::from_obj(app).to_string(),
        status.conflicts.len(),
    );
    let requeue = if outcome.is_ready() {
        jittered(ctx.resync)
    } else {
        std::time::Duration::from_secs(30)
    };
    Ok(Action::requeue(requeue))
}

async fn cleanup(app: Arc<Application>, ctx: &Context) -> Result<Action, Error> {
    index_app(ctx, &app);
    ctx.metrics.set_conflicts(
        "Application",
        &ObjectRef::from_obj(app.as_ref()).to_string(),
        0,
    );
    let owned = cleanup::Owned {
        kind: cleanup::ServerKind::Application,
        policy: app.spec.deletion_policy,
        backend_ref: &app.spec.backend_ref,
        display_name: &app.spec.display_name,
        id: app.status.as_ref().and_then(|s| s.id.clone()),
    };
    cleanup::release(ctx, app.as_ref(), owned).await
}
