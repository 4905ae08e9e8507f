//! Application reconciler, on the managed flow of [`super::managed`]:
//!
//! 1. **dereference** the backend, its client and the IdentityProviders of the flow (waits with a
//!    clear reason while one is missing or not Ready);
//! 2. **observe** the server object — [`managed::observe`];
//! 3. **plan** which object is ours — [`managed::plan_identity`];
//! 4. **act**: create / rename / update, where under the Block gate [`plan_flow`] holds back a flow
//!    change that would put a local-account step after a Block IdP whose JIT is off or skipped on
//!    lookup failure (declared or on the server), while the rest of the spec still goes;
//! 5. the credentials Secret, only if this Application created it — [`managed::plan_credentials`];
//! 6. **report** — status, conditions, Events; an error ends as `Ready=False` with its reason.

mod block;
mod credentials;
mod report;

use block::{cached_jit, first_create_jit, live_jit, lock_gate, plan_create_flow, LiveJit};
pub use block::{known_jit, plan_flow};
pub use credentials::invalid_secret_name;
use credentials::write_credentials;
use report::{finish, outcome, status_conflicts, status_only};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
use super::managed::{
    self, description_change, Identified, Managed, SecretPlan, CREATE_PENDING, MANAGED_BY,
};
use super::translate::{self, desired_flow, desired_oidc, flow_differs, oidc_differs};
use super::{
    annotate, apply_status, backend_err, cleanup, facts, jittered, memo, publish, referenced_idps,
    registry, Context, Error, FINALIZER, MANAGER,
};
use crate::api::application::AppConflictEntry;
use crate::api::conditions::{INTERCONNECTION_CONFLICT, READY};
use crate::api::identity_provider::ConflictPolicy;
use crate::api::{Application, ApplicationSpec, ApplicationStatus, IdentityProvider};
use crate::backend::{
    ApplicationPatch, FlowKind, FlowUpdate, IdentityServer, LoginFlow, NewApplication,
};
use crate::flow::{self, Jit, LocalAccountAuthenticators};

/// Reconciles one Application (apply or cleanup through the finalizer).
pub async fn reconcile(app: Arc<Application>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = app.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<Application> = Api::namespaced(ctx.client.clone(), &ns);
    // Keep the IdP → application index current before anything can return early.
    index_app(&ctx, &app);
    let app = managed::claim(&ctx, &api, app).await?;
    finalizer(&api, FINALIZER, app, |event| async {
        match event {
            FinalizerEvent::Apply(app) => {
                let uid = app.uid().unwrap_or_default();
                let resync = crate::controller::resync_of(&ctx, &ns, &app.spec.backend_ref.name);
                let read = facts::AppInputs::of(&ctx, &app);
                let inputs = read.hash();
                let now = Instant::now();
                match ctx
                    .memo
                    .decide(&uid, &read.for_decision(), now, Duration::ZERO)
                {
                    memo::Pass::Skip(wait) => {
                        return Ok(Action::requeue(wait + jittered(resync) / 10));
                    }
                    memo::Pass::StatusOnly(flow) => {
                        if let Some(action) = status_only(&ctx, &api, &app, flow).await {
                            match &action {
                                Ok(_) => ctx.memo.passed_cheaply(&uid, inputs, Instant::now()),
                                Err(_) => ctx.memo.forget_pass(&uid),
                            }
                            return action;
                        }
                    }
                    _ => {}
                }
                let mut seen = Observed::from(app.as_ref());
                let result = apply(&app, &api, &ctx, &mut seen).await;
                let rule_flow = seen.rule_flow.take();
                let ready = matches!(&result, Ok(o) if o.is_ready());
                // Before the status write that shows this generation's pass finished: an IdP's
                // dependents-only pass, triggered by that write, takes the flow from here (the flow
                // is on the server whatever the write's fate; a failed one forgets it below).
                if ready {
                    ctx.memo
                        .record_flow(&uid, app.metadata.generation, rule_flow.clone());
                }
                let action =
                    managed::report(result, async |o| finish(&ctx, &api, &app, seen, o).await)
                        .await;
                if ready && action.is_ok() {
                    let secret = match (&read.secret, ctx.memo.credentials_version(&uid)) {
                        (Some(_), Some(written)) => Some(Some(written)),
                        _ => read.secret.clone(),
                    };
                    let kind = memo::KindPass::Application {
                        server: read.server_with(secret.clone()),
                        rule_flow,
                    };
                    ctx.memo
                        .passed(&uid, read.with(secret), kind, Instant::now(), resync);
                } else {
                    ctx.memo.forget_pass(&uid);
                }
                action
            }
            FinalizerEvent::Cleanup(app) => match cleanup(app.clone(), &ctx).await {
                Ok(action) => Ok(action),
                Err(e) => {
                    let seen = Observed::from(app.as_ref());
                    managed::report(Err(e), async |o| finish(&ctx, &api, &app, seen, o).await).await
                }
            },
        }
    })
    .await
    .map_err(Error::from)
}

impl Managed for Application {
    type Server = crate::backend::Application;
    type Status = ApplicationStatus;
    const NOUN: &'static str = "application";
    const DELETE_REFUSED_HINT: &'static str = "fix the operator's access to the server";
    fn display_name(&self) -> &str {
        &self.spec.display_name
    }
    fn adopt(&self) -> bool {
        self.spec.adopt
    }
    fn backend(&self) -> &crate::api::BackendRef {
        &self.spec.backend_ref
    }
    fn recorded_id(&self) -> Option<String> {
        self.status.as_ref().and_then(|s| s.id.clone())
    }
    fn status_with_id(&self, id: &str) -> ApplicationStatus {
        ApplicationStatus {
            id: Some(id.to_string()),
            ..self.status.clone().unwrap_or_default()
        }
    }
    fn cache(ctx: &Context) -> &kube::runtime::reflector::Store<Self> {
        &ctx.apps
    }
    fn description(&self) -> Option<&str> {
        self.spec.description.as_deref()
    }
    fn found(server: &crate::backend::Application) -> managed::Found {
        managed::Found {
            id: server.id.clone(),
            name: server.name.clone(),
            description: server.description.clone(),
        }
    }
    async fn get_server(
        client: &dyn IdentityServer,
        id: &str,
    ) -> Result<crate::backend::Application, crate::backend::BackendError> {
        client.get_application(id).await
    }
    async fn find_server_id(
        client: &dyn IdentityServer,
        name: &str,
    ) -> Result<Option<String>, crate::backend::BackendError> {
        Ok(client.find_application_by_name(name).await?.map(|s| s.id))
    }
    async fn set_server_description(
        client: &dyn IdentityServer,
        id: &str,
        description: String,
    ) -> Result<(), crate::backend::BackendError> {
        let patch = ApplicationPatch {
            description: Some(description),
            ..Default::default()
        };
        client.patch_application(id, &patch).await
    }
    async fn delete_server(
        client: &dyn IdentityServer,
        id: &str,
    ) -> Result<bool, crate::backend::BackendError> {
        client.delete_application(id).await
    }
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
    let facts = facts::AppFacts::of(app);
    let uid = app.uid().unwrap_or_default();
    if !ctx.memo.facts_changed(&uid, &facts, facts.gone()) {
        return Vec::new();
    }
    touched
}

/// Whether an IdentityProvider exists on the server and has been reconciled once.
fn idp_ready(idp: &IdentityProvider) -> bool {
    idp.status
        .as_ref()
        .is_some_and(|s| s.id.is_some() && s.observed_generation.is_some())
}

/// Why an IdentityProvider's `displayName` cannot stand for it in a flow yet: its rename onto a name
/// the server already gives another identity provider was refused (`RenameClash`), so the server
/// object still has its old name and the new one is somebody else's. Resolving the reference by the
/// spec's name would push this application's flow through that foreign IdP. Pure.
fn rename_pending(idp: &IdentityProvider) -> Option<String> {
    let ready = idp
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (ready.status == "False" && ready.reason == "RenameClash").then(|| {
        format!(
            "waiting for IdentityProvider {}: its displayName {:?} is another identity provider's on the server (RenameClash), so the flow is not pointed at it",
            idp.metadata.name.as_deref().unwrap_or_default(),
            idp.spec.display_name
        )
    })
}

/// A referenced IdentityProvider from the cache; when the cache has it missing or not ready yet, read
/// it from the apiserver. The trigger that started this reconcile came on another watch than the
/// cache's, so the cache may lag behind it by a moment; without the read the application would wait
/// for its next resync.
async fn referenced_idp(
    ctx: &Context,
    r: &ObjectRef<IdentityProvider>,
) -> Result<Option<Arc<IdentityProvider>>, Error> {
    managed::cached_or_read(&ctx.client, &ctx.idps, r, idp_ready).await
}

#[derive(Default)]
struct Observed {
    id: Option<String>,
    /// This pass created the server object (its create-pending mark is set).
    created: bool,
    /// The flow the status rule checked, for a later status-only pass.
    rule_flow: Option<memo::RuleFlow>,
    steps: Option<i32>,
    conflicts: Vec<AppConflictEntry>,
    conditional_steps: Option<String>,
    script: Option<String>,
}

impl From<&Application> for Observed {
    /// What the last status said: kept when a reconcile ends early.
    fn from(app: &Application) -> Self {
        let old = app.status.clone().unwrap_or_default();
        Self {
            id: old.id,
            created: false,
            rule_flow: None,
            steps: old.steps,
            conflicts: old.conflicts,
            conditional_steps: old.conditional_steps,
            script: old.script,
        }
    }
}

async fn apply(
    app: &Application,
    api: &Api<Application>,
    ctx: &Context,
    seen: &mut Observed,
) -> Result<Outcome, Error> {
    let ns = app.namespace().ok_or(Error::NoNamespace)?;
    // 0. Validate what CEL cannot have checked on an object stored before its rules.
    if let Some(problem) = crate::api::common::display_name_problem(&app.spec.display_name) {
        return Ok(Outcome::stalled("InvalidSpec", problem));
    }
    // 0. Validate: a credentials Secret name the apiserver refuses (422) failed the write on every
    // pass, retried every 5 s as a Kubernetes error; it needs a spec change, so say so once.
    if let Some(why) = app
        .spec
        .credentials_secret
        .as_ref()
        .and_then(|s| invalid_secret_name(&s.name))
    {
        return Ok(Outcome::stalled("InvalidCredentialsSecretName", why));
    }
    // 1. Dereference: backend, client, and the IdentityProviders of the flow.
    let (backend, client) = step!(managed::backend_client(ctx, &ns, &app.spec.backend_ref).await);
    let idps = step!(flow_idps(ctx, app, &ns).await);
    let want = desired(app, &idps, &backend)
        .map_err(|n| Error::Internal(format!("IdentityProvider {n} vanished")))?;
    // 2-4. Under the Block gate (flow changes are checked against the IdPs' live JIT): observe,
    // plan and act on which server object is ours, creating it (flow held back if it conflicts).
    let gate = lock_gate(ctx, &idps).await;
    let pass = Pass {
        ctx,
        app,
        client: client.as_ref(),
        idps: &idps,
        want: &want,
    };
    let mut live = first_create_jit(&pass).await?;
    let (create_flow, create_held) = plan_create_flow(&pass, live.as_ref());
    let flow_at_create = live.is_some();
    let sent = create_flow.clone().filter(|_| flow_at_create);
    let (id, created, read) = step!(identify(&pass, api, create_flow, seen).await);
    let known = known_app(app, &id, created, read, sent);
    let held_at_create = if created { create_held } else { Vec::new() };
    let flow_pushed = created && flow_at_create;
    let synced = sync_app(
        &pass,
        &id,
        known,
        flow_pushed,
        held_at_create,
        &mut live,
        seen,
    )
    .await?;
    drop(gate);
    // 5. OIDC settings and the credentials Secret (only if this Application created it).
    let mut changed = synced.changed.clone();
    let credentials = sync_oidc(&pass, &id, created, &mut changed).await?;
    // 6. Report.
    let old_generation = app.status.as_ref().and_then(|s| s.observed_generation);
    managed::report_drift(ctx, app, old_generation, created, &changed).await;
    let (jit, _) = live.unwrap_or_else(|| cached_jit(&idps));
    if let Some(f) = &synced.flow {
        let script = synced.script.as_deref();
        seen.conflicts = status_conflicts(app, &idps, &want.needs_local, f, script, &jit);
    }
    seen.rule_flow = synced.flow.map(|f| (f, synced.script));
    Ok(outcome(&id, &app.spec, &synced.held, credentials))
}

/// Observe, plan and act on which server object is ours ([`managed::identify`]), creating it with
/// `flow` when there is none. Returns its id and whether this pass created it.
async fn identify(
    pass: &Pass<'_>,
    api: &Api<Application>,
    flow: Option<FlowUpdate>,
    seen: &mut Observed,
) -> managed::Step<(String, bool, Option<crate::backend::Application>)> {
    let (app, client) = (pass.app, pass.client);
    let create = async |description: String| {
        let new = NewApplication {
            name: app.spec.display_name.clone(),
            description: Some(description),
            template_id: None,
            oidc: pass.want.oidc.clone(),
            login_flow: flow,
        };
        client.create_application(&new).await
    };
    Ok(
        match managed::identify(pass.ctx, api, app, client, create).await? {
            Identified::Ours { id, created, read } => {
                seen.id = Some(id.clone());
                seen.created = created;
                Ok((id, created, read))
            }
            Identified::Stop { outcome, id } => {
                seen.id = id;
                Err(outcome)
            }
        },
    )
}

/// The server application as the diff needs it without reading it again: as observe read it, or,
/// right after a create that sent the login flow, as sent (name, the ownership marker, the flow).
/// `None`: read it (a create without the flow leaves the server's default one, unknown here).
fn known_app(
    app: &Application,
    id: &str,
    created: bool,
    read: Option<crate::backend::Application>,
    sent: Option<FlowUpdate>,
) -> Option<crate::backend::Application> {
    if let Some(server) = read {
        return Some(server);
    }
    let flow = sent.filter(|_| created)?;
    Some(crate::backend::Application {
        id: id.to_string(),
        name: app.spec.display_name.clone(),
        description: Some(app.server_description()),
        client_id: None,
        login_flow: LoginFlow {
            kind: FlowKind::UserDefined,
            subject_step_id: flow.subject_step_id.unwrap_or(1),
            attribute_step_id: flow.attribute_step_id.unwrap_or(1),
            script: flow.script.filter(|s| !s.trim().is_empty()),
            steps: flow.steps,
        },
    })
}

/// What the steps of one Application pass share.
struct Pass<'a> {
    ctx: &'a Context,
    app: &'a Application,
    client: &'a dyn IdentityServer,
    idps: &'a HashMap<String, Arc<IdentityProvider>>,
    want: &'a Desired,
}

/// What the spec wants on the server, resolved against the cluster.
struct Desired {
    flow: Option<FlowUpdate>,
    oidc: Option<crate::backend::OidcChange>,
    needs_local: LocalAccountAuthenticators,
}

/// What [`sync_app`] did and learned.
struct Synced {
    /// The flow the status rule checks (the desired one, with its script as planned).
    flow: Option<FlowUpdate>,
    /// The script the rule sees on the server.
    script: Option<String>,
    /// The conflicts Block held the flow back for.
    held: Vec<flow::Conflict>,
    /// What was written.
    changed: Vec<&'static str>,
}

/// Dereference: every IdentityProvider of the flow, existing, reconciled once and on this backend;
/// else the outcome that says which one the application waits for.
async fn flow_idps(
    ctx: &Context,
    app: &Application,
    ns: &str,
) -> managed::Step<HashMap<String, Arc<IdentityProvider>>> {
    let spec = &app.spec;
    let mut idps = HashMap::new();
    for r in referenced_idps(app) {
        let Some(idp) = referenced_idp(ctx, &r).await? else {
            let msg = format!("waiting for IdentityProvider {} (referenced by loginFlow): it does not exist in namespace {ns}", r.name);
            return Ok(Err(Outcome::progressing("IdentityProviderNotFound", msg)));
        };
        if !idp_ready(&idp) {
            let msg = format!(
                "waiting for IdentityProvider {} to exist on the server",
                r.name
            );
            return Ok(Err(Outcome::progressing("IdentityProviderNotReady", msg)));
        }
        if let Some(msg) = rename_pending(&idp) {
            return Ok(Err(Outcome::progressing("IdentityProviderNotReady", msg)));
        }
        if idp.spec.backend_ref != spec.backend_ref {
            let msg = format!("IdentityProvider {} is on backend {}, this application on {}: a login flow can only use providers of its own backend",
                r.name, idp.spec.backend_ref.name, spec.backend_ref.name);
            return Ok(Err(Outcome::stalled("InvalidReference", msg)));
        }
        idps.insert(r.name.clone(), idp);
    }
    Ok(Ok(idps))
}

/// Build: the flow (IdP references resolved to server names), the OIDC settings, and what needs a
/// local account on this backend; `Err` names an IdP that vanished from the cache meanwhile.
fn desired(
    app: &Application,
    idps: &HashMap<String, Arc<IdentityProvider>>,
    backend: &crate::api::IdentityBackend,
) -> Result<Desired, String> {
    let resolve = |name: &str| {
        let idp = idps.get(name)?;
        Some((
            idp.server_name().to_string(),
            idp.spec.provider_type()?.authenticator_name().to_string(),
        ))
    };
    let flow = desired_flow(&app.spec, resolve)?;
    Ok(Desired {
        flow,
        oidc: desired_oidc(&app.spec),
        needs_local: registry::local_account_authenticators(backend),
    })
}

/// Act under the Block gate: read the server application, then patch its name, description and
/// login flow where they differ (the flow unless Block holds it back).
async fn sync_app(
    pass: &Pass<'_>,
    id: &str,
    known: Option<crate::backend::Application>,
    flow_pushed: bool,
    mut held: Vec<flow::Conflict>,
    live: &mut Option<LiveJit>,
    seen: &mut Observed,
) -> Result<Synced, Error> {
    let (app, client, want) = (pass.app, pass.client, pass.want);
    let spec = &app.spec;
    let server = match known {
        Some(server) => server,
        None => client
            .get_application(id)
            .await
            .map_err(backend_err(format!("reading application {id}")))?,
    };
    // skipFor's generated script goes with the flow; a script the operator did not write stays.
    let (flow, script) = translate::plan_script(
        want.flow.clone(),
        &server.login_flow,
        spec.adopt,
        &want.needs_local,
    );
    seen.script = script.status();
    seen.conditional_steps = translate::conditional_steps(spec);
    // A hand-written script the rule will see (the server's, kept) is proved here, off the async
    // workers, before the pure planning below asks for the answer.
    let needs = &want.needs_local;
    let questions = [
        flow.as_ref()
            .and_then(|f| translate::proof_question(&f.steps, script.effective.as_deref(), needs)),
        flow.as_ref()
            .and_then(|f| translate::proof_question(&f.steps, f.script.as_deref(), needs)),
        translate::proof_question(
            &server.login_flow.steps,
            server.login_flow.script.as_deref(),
            needs,
        ),
    ];
    super::proofs::prove_ahead(questions.into_iter().flatten(), super::proofs::BUDGET).await;
    let mut patch = ApplicationPatch::default();
    if server.name != spec.display_name {
        patch.name = Some(spec.display_name.clone());
    }
    patch.description = description_change(
        spec.description.as_deref(),
        server.description.as_deref(),
        &managed::marker_for(app),
    );
    let flow_to_push = flow
        .as_ref()
        .is_some_and(|f| translate::flow_differs(f, &server.login_flow));
    if !flow_pushed && flow_to_push {
        if live.is_none() {
            *live = Some(live_jit(pass.ctx, client, pass.idps).await?);
        }
        if let Some((jit, blocking)) = live.as_ref() {
            let (push, blocked) = plan_flow(
                &spec.display_name,
                flow.as_ref(),
                Some(&server.login_flow),
                jit,
                blocking,
                &want.needs_local,
            );
            patch.login_flow = push;
            held = blocked;
        }
    }
    let mut changed = Vec::new();
    if patch != ApplicationPatch::default() {
        client
            .patch_application(id, &patch)
            .await
            .map_err(backend_err(format!("updating application {id}")))?;
        changed.push(if patch.login_flow.is_some() {
            "login flow"
        } else {
            "name/description"
        });
    }
    let on_server = if held.is_empty() {
        flow.as_ref().map(|f| f.steps.len())
    } else {
        None
    };
    seen.steps = Some(on_server.unwrap_or(server.login_flow.steps.len()) as i32);
    Ok(Synced {
        flow,
        script: script.effective,
        held,
        changed,
    })
}

/// Act: the OIDC settings where they differ, then the credentials Secret; returns why the Secret
/// was not written when it is someone else's.
async fn sync_oidc(
    pass: &Pass<'_>,
    id: &str,
    created: bool,
    changed: &mut Vec<&'static str>,
) -> Result<Option<String>, Error> {
    let Some(o) = &pass.want.oidc else {
        return Ok(None);
    };
    let client = pass.client;
    let mut current = client
        .get_oidc(id)
        .await
        .map_err(backend_err("reading OIDC settings"))?;
    if oidc_differs(o, &current) {
        current = client
            .update_oidc(id, o)
            .await
            .map_err(backend_err("updating OIDC settings"))?;
        changed.push("OIDC settings");
    }
    let Some(secret) = &pass.app.spec.credentials_secret else {
        return Ok(None);
    };
    write_credentials(
        pass.ctx,
        pass.app,
        &secret.name,
        current.client_id.as_deref(),
        current.client_secret.as_ref().map(|s| s.expose()),
        !created,
    )
    .await
}

async fn cleanup(app: Arc<Application>, ctx: &Context) -> Result<Action, Error> {
    let uid = app.uid().unwrap_or_default();
    index_app(ctx, &app);
    ctx.memo.forget_pass(&uid);
    ctx.memo.credentials_forget(&uid);
    ctx.metrics.set_conflicts(
        "Application",
        &ObjectRef::from_obj(app.as_ref()).to_string(),
        0,
    );
    let owned = cleanup::Owned {
        policy: app.spec.deletion_policy,
        backend_ref: &app.spec.backend_ref,
        display_name: &app.spec.display_name,
        id: ctx
            .memo
            .owned_id(&uid, app.status.as_ref().and_then(|s| s.id.clone())),
    };
    let released = cleanup::release(ctx, app.as_ref(), owned).await;
    if released.is_ok() {
        ctx.memo.forget(&uid);
    }
    released
}

#[cfg(test)]
mod tests;
