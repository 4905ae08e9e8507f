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
                let resync = super::resync_of(&ctx, &ns, &app.spec.backend_ref.name);
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

/// The flow change to push, and the conflicts Block holds it back for. Pure.
///
/// `jit` is each IdP's JIT as the rule must see it (off when declared off **or** off on the
/// server), `blocking` the server names of IdPs with `conflictPolicy: Block`. A conflict the live
/// flow already has (made elsewhere) is not a reason to hold back: it is reported, not repaired.
pub fn plan_flow(
    app_name: &str,
    desired: Option<&FlowUpdate>,
    live: Option<&LoginFlow>,
    jit: &HashMap<String, Jit>,
    blocking: &BTreeSet<String>,
    needs_local: &LocalAccountAuthenticators,
) -> (Option<FlowUpdate>, Vec<flow::Conflict>) {
    let Some(desired) = desired else {
        return (None, Vec::new());
    };
    if live.is_some_and(|l| !flow_differs(desired, l)) {
        return (None, Vec::new());
    }
    let rule = |steps: &[crate::backend::FlowStep], script: Option<&str>| {
        flow::check_flow(
            app_name,
            &translate::flow_for_rule(steps, script, needs_local),
            jit,
            needs_local,
        )
        .conflicts
    };
    let existing: Vec<(String, String)> = live
        .filter(|l| l.kind == FlowKind::UserDefined)
        .map(|l| rule(&l.steps, l.script.as_deref()))
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.identity_provider, c.authenticator))
        .collect();
    let new: Vec<flow::Conflict> = rule(&desired.steps, desired.script.as_deref())
        .into_iter()
        .filter(|c| blocking.contains(&c.identity_provider))
        .filter(|c| !existing.contains(&(c.identity_provider.clone(), c.authenticator.clone())))
        .collect();
    if new.is_empty() {
        (Some(desired.clone()), Vec::new())
    } else {
        (None, new)
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

/// The Block gates of the flow's IdentityProviders, shared with other Applications.
async fn lock_gate(
    ctx: &Context,
    idps: &HashMap<String, Arc<IdentityProvider>>,
) -> super::gate::Held {
    let keys = idps
        .values()
        .map(|i| super::gate::key(i.namespace().as_deref(), &i.name_any()));
    ctx.block_gate.lock_shared(keys).await
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

/// The IdPs' live JIT, read only where a flow is about to be pushed: here for a first create (no
/// id recorded). A pass that pushes nothing needs no live check, and the status rule reads the
/// IdPs' JIT as their own reconciles last saw it on the server.
async fn first_create_jit(pass: &Pass<'_>) -> Result<Option<LiveJit>, Error> {
    match pass.app.status.as_ref().and_then(|s| s.id.as_ref()) {
        None => Ok(Some(live_jit(pass.ctx, pass.client, pass.idps).await?)),
        Some(_) => Ok(None),
    }
}

/// The flow to send with a create, and the conflicts Block holds it back for. A recreate after a
/// server-side delete (`live` unknown) is created without the flow, which [`sync_app`] then pushes
/// after a live check.
fn plan_create_flow(
    pass: &Pass<'_>,
    live: Option<&LiveJit>,
) -> (Option<FlowUpdate>, Vec<flow::Conflict>) {
    match live {
        Some((jit, blocking)) => plan_flow(
            &pass.app.spec.display_name,
            pass.want.flow.as_ref(),
            None,
            jit,
            blocking,
            &pass.want.needs_local,
        ),
        None => (None, Vec::new()),
    }
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

/// The conflict rule for the status, against each IdP's JIT as declared and as on the server,
/// named by the IdentityProvider objects. Pure.
fn status_conflicts(
    app: &Application,
    idps: &HashMap<String, Arc<IdentityProvider>>,
    needs_local: &LocalAccountAuthenticators,
    f: &FlowUpdate,
    script: Option<&str>,
    jit: &HashMap<String, Jit>,
) -> Vec<AppConflictEntry> {
    let by_server_name: BTreeMap<&str, &str> = idps
        .iter()
        .map(|(k, i)| (i.server_name(), k.as_str()))
        .collect();
    let analysis = flow::check_flow(
        &app.spec.display_name,
        &translate::flow_for_rule(&f.steps, script, needs_local),
        jit,
        needs_local,
    );
    analysis
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
            lookup_skip: c.lookup_skip,
        })
        .collect()
}

/// A pass for a change only the status rule sees (a referenced IdP's JIT or conflict policy): the
/// conflicts are recomputed from the cache and the status written; nothing is asked of the server
/// (the application's own server state cannot have changed with it, and a held-back flow is never
/// memoised). `None` when the cache cannot tell (an IdP or the backend missing): a full pass then.
async fn status_only(
    ctx: &Context,
    api: &Api<Application>,
    app: &Application,
    flow: Option<memo::RuleFlow>,
) -> Option<Result<Action, Error>> {
    let ns = app.namespace()?;
    let backend_ref = ObjectRef::new(&app.spec.backend_ref.name).within(&ns);
    let backend = ctx.backends.get(&backend_ref)?;
    let mut idps = HashMap::new();
    for r in referenced_idps(app) {
        let idp = ctx.idps.get(&r).filter(|i| idp_ready(i))?;
        idps.insert(r.name.clone(), idp);
    }
    let mut seen = Observed::from(app);
    let id = seen.id.clone()?;
    if let Some((f, script)) = &flow {
        let (jit, _) = cached_jit(&idps);
        let needs_local = registry::local_account_authenticators(&backend);
        let question = translate::proof_question(&f.steps, script.as_deref(), &needs_local);
        super::proofs::prove_ahead(question, super::proofs::BUDGET).await;
        seen.conflicts = status_conflicts(app, &idps, &needs_local, f, script.as_deref(), &jit);
    }
    let ready = Outcome::Ready(ready_message(&id, &app.spec));
    Some(finish(ctx, api, app, seen, ready).await)
}

/// The outcome of a pass that reached the server: a held-back flow, then a foreign credentials
/// Secret, else Ready. Pure.
fn outcome(
    id: &str,
    spec: &ApplicationSpec,
    held: &[flow::Conflict],
    credentials: Option<String>,
) -> Outcome {
    if !held.is_empty() {
        let what: Vec<String> = held
            .iter()
            .map(|c| format!("IdentityProvider {} (step {}) has {} and conflictPolicy: Block, but step {} requires {}", c.identity_provider, c.identity_provider_step, held_why(c.lookup_skip), c.authenticator_step, c.authenticator))
            .collect();
        let fix = if held.iter().any(|c| c.lookup_skip) {
            "Enable JIT on that provider (with skipForLookupFailure off)"
        } else {
            "Enable JIT on that provider"
        };
        return Outcome::stalled(
            "LoginFlowBlocked",
            format!("the login flow change was not pushed: {}. {fix}, drop or move the step, or set its conflictPolicy: Warn. The rest of the spec is applied.", what.join("; ")),
        );
    }
    match credentials {
        Some(foreign) => Outcome::stalled("CredentialsSecretNotOwned", foreign),
        None => Outcome::Ready(ready_message(id, spec)),
    }
}

/// Why an IdP's users can lack a local account, as the Application's messages say it.
fn held_why(lookup_skip: bool) -> &'static str {
    if lookup_skip {
        "JIT provisioning skipped on lookup failure (skipForLookupFailure with accountLookup: users that no local account matches get none)"
    } else {
        "JIT provisioning off"
    }
}

/// Ready's message: the application matches, and which `skipFor` entries skip nobody (the spec is
/// applied, but a typo there would otherwise go unnoticed while users still get the step).
fn ready_message(id: &str, spec: &ApplicationSpec) -> String {
    let mut message = format!("application {id} matches the spec");
    for unused in translate::unused_skips(spec) {
        message.push_str("; ");
        message.push_str(&unused);
    }
    message
}

/// Each referenced IdP's JIT as the rule sees it, and the server names of those under Block.
type LiveJit = (HashMap<String, Jit>, BTreeSet<String>);

/// Each referenced IdP's JIT as the cache shows it (declared in its spec, and on the server as its
/// status last recorded), for the status rule of a pass that pushes no flow.
fn cached_jit(idps: &HashMap<String, Arc<IdentityProvider>>) -> LiveJit {
    let mut jit = HashMap::new();
    let mut blocking = BTreeSet::new();
    for idp in idps.values() {
        let on_server = idp
            .status
            .as_ref()
            .filter(|s| s.id.is_some())
            .and_then(|s| s.jit.as_deref())
            .and_then(Jit::from_status_value)
            .unwrap_or(Jit::Disabled);
        jit.insert(
            idp.server_name().to_string(),
            effective_jit(translate::declared_jit(&idp.spec, None), on_server),
        );
        if idp.spec.conflict_policy == ConflictPolicy::Block {
            blocking.insert(idp.server_name().to_string());
        }
    }
    (jit, blocking)
}

/// The weaker of the declared and the server's JIT: off when declared off **or** off on the
/// server, skipped on lookup failure when either skips (a missing block stays missing).
fn effective_jit(declared: Jit, on_server: Jit) -> Jit {
    declared.weaker(on_server)
}

/// An IdP's JIT on the server as the Block check may take it without asking the server: as its
/// last pass in this process recorded it inside the gate (`recorded`), else as its status says
/// when that describes its current spec. `None`: read it live. Pure.
pub fn known_jit(recorded: Option<Jit>, idp: &IdentityProvider) -> Option<Jit> {
    if recorded.is_some() {
        return recorded;
    }
    let status = idp.status.as_ref()?;
    let current = status.id.is_some() && status.observed_generation == idp.metadata.generation;
    match status.jit.as_deref() {
        Some(jit) if current => Jit::from_status_value(jit),
        _ => None,
    }
}

/// Each referenced IdP's JIT as the rule must see it, decided inside the Block gate: off when its
/// spec declares it off **or** the server has it off (see [`known_jit`]; read live from the
/// apiserver and the server only when neither the gate's record nor a current status knows it).
/// And the server names of those under `conflictPolicy: Block`.
async fn live_jit(
    ctx: &Context,
    client: &dyn IdentityServer,
    idps: &HashMap<String, Arc<IdentityProvider>>,
) -> Result<LiveJit, Error> {
    let mut jit = HashMap::new();
    let mut blocking = BTreeSet::new();
    for (name, cached) in idps {
        let ns = cached.namespace().unwrap_or_default();
        let recorded = cached
            .status
            .as_ref()
            .and_then(|s| s.id.as_deref())
            .and_then(|id| {
                ctx.block_gate
                    .recorded_jit(&super::gate::key(Some(&ns), name), id)
            });
        let (idp, on_server) = match known_jit(recorded, cached) {
            Some(on) => (cached.clone(), on),
            None => {
                let key = ObjectRef::new(name).within(&ns);
                let fresh = managed::cached_or_read(&ctx.client, &ctx.idps, &key, |_| false)
                    .await?
                    .unwrap_or_else(|| cached.clone());
                let on = match fresh.status.as_ref().and_then(|s| s.id.as_deref()) {
                    Some(id) => client
                        .get_jit(id)
                        .await
                        .map_err(backend_err(format!(
                            "reading JIT provisioning of identity provider {id}"
                        )))?
                        .rule_state(),
                    None => Jit::Disabled,
                };
                (fresh, on)
            }
        };
        jit.insert(
            idp.server_name().to_string(),
            effective_jit(translate::declared_jit(&idp.spec, None), on_server),
        );
        if idp.spec.conflict_policy == ConflictPolicy::Block {
            blocking.insert(idp.server_name().to_string());
        }
    }
    Ok((jit, blocking))
}

/// Why `name` cannot be a Secret's name (a DNS-1123 subdomain: at most 253 characters of
/// lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a
/// letter or digit), or `None` when it can. Pure.
pub fn invalid_secret_name(name: &str) -> Option<String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok)).then(|| {
        format!(
            "credentialsSecret name {name:?} is not a valid Secret name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters): choose another"
        )
    })
}

/// Writes the credentials to the Secret if this Application created it (or creates it); returns
/// why not when the Secret is someone else's. `announce`: a `CredentialsWritten` Event (not when
/// the application was created in the same pass).
async fn write_credentials(
    ctx: &Context,
    app: &Application,
    name: &str,
    client_id: Option<&str>,
    client_secret: Option<&str>,
    announce: bool,
) -> Result<Option<String>, Error> {
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
    let uid = app.uid().unwrap_or_default();
    let creds = (client_id, client_secret);
    if ctx
        .registry
        .secret_version(&ns, name)
        .is_some_and(|v| ctx.memo.credentials_current(&uid, &v, &creds))
    {
        return Ok(None);
    }
    // A Secret the metadata cache does not know is created without a read first (a new
    // Application's); a conflict then means it exists after all, and it is read and planned.
    let mut read = ctx.registry.secret_version(&ns, name).is_some();
    loop {
        let existing = if read { api.get_opt(name).await? } else { None };
        let plan = managed::plan_credentials(
            existing
                .as_ref()
                .map(|s| (&s.metadata, s.data.as_ref() == Some(&data))),
            &app.uid().unwrap_or_default(),
            name,
        );
        match plan {
            SecretPlan::Unchanged => {
                let version = existing.and_then(|s| s.resource_version());
                ctx.memo.credentials_written(&uid, version, &creds);
                return Ok(None);
            }
            SecretPlan::Foreign(why) => {
                ctx.memo.credentials_forget(&uid);
                return Ok(Some(why));
            }
            SecretPlan::Create | SecretPlan::Update => {}
        }
        let owner = app
            .controller_owner_ref(&())
            .into_iter()
            .collect::<Vec<_>>();
        let secret = KubeSecret {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                owner_references: Some(owner),
                labels: Some(BTreeMap::from([(
                    MANAGED_BY.0.to_string(),
                    MANAGED_BY.1.to_string(),
                )])),
                ..Default::default()
            },
            type_: Some("Opaque".into()),
            data: Some(data.clone()),
            ..Default::default()
        };
        let mut body = serde_json::to_value(&secret).map_err(|e| Error::Internal(e.to_string()))?;
        body["apiVersion"] = json!("v1");
        body["kind"] = json!("Secret");
        // Create only when absent: a Secret made by someone else between the read and this write must
        // not be taken over by an apply.
        if plan == SecretPlan::Create {
            let created: KubeSecret =
                serde_json::from_value(body).map_err(|e| Error::Internal(e.to_string()))?;
            match api.create(&kube::api::PostParams { field_manager: Some(MANAGER.into()), ..Default::default() }, &created).await {
                Ok(s) => ctx.memo.credentials_written(&uid, s.resource_version(), &creds),
                // Not in the metadata cache, so not read first: it exists after all, read it.
                Err(kube::Error::Api(e)) if e.code == 409 && !read => {
                    read = true;
                    continue;
                }
                Err(kube::Error::Api(e)) if e.code == 409 => return Ok(Some(format!("Secret {name} (credentialsSecret) appeared before the operator could create it; it was not written"))),
                Err(e) => return Err(e.into()),
            }
        } else {
            let written = api
                .patch(
                    name,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(&body),
                )
                .await?;
            ctx.memo
                .credentials_written(&uid, written.resource_version(), &creds);
        }
        // With the application just created, its Created Event says it: no second Event.
        if announce {
            publish(
                ctx,
                app,
                EventType::Normal,
                "CredentialsWritten",
                "WriteSecret",
                format!("wrote client-id and client-secret to Secret {name}"),
            )
            .await;
        }
        return Ok(None);
    }
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
            .map(|c| format!("IdentityProvider {} (step {}) has {}, but step {} requires {}, which needs a local account",
                c.identity_provider, c.identity_provider_step,
                if c.lookup_skip { held_why(true) } else { "JIT provisioning disabled" },
                c.authenticator_step, c.authenticator))
            .collect();
        // Each kind of conflict present names its own remedy.
        let mut remedies = Vec::new();
        if observed.conflicts.iter().any(|c| !c.lookup_skip) {
            remedies.push(flow::REMEDY);
        }
        if observed.conflicts.iter().any(|c| c.lookup_skip) {
            remedies.push(flow::LOOKUP_SKIP_REMEDY);
        }
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
                remedies.join(" ")
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
    // The Events go out beside the status write, not before it: a JIT toggle on a hub IdP is one
    // such pass per dependent (8 at a time), and each waited for its Event's round trip first.
    let mut events = Vec::new();
    if conflict_now != had_conflict {
        if conflict_now {
            events.push((
                EventType::Warning,
                "InterconnectionConflict".to_string(),
                "CheckConflicts",
                conflict_msg,
            ));
        } else if !old.conditions.is_empty() {
            events.push((
                EventType::Normal,
                "ConflictCleared".to_string(),
                "CheckConflicts",
                "the login flow fits the identity providers' JIT settings again".into(),
            ));
        }
    }
    let was_ready = conditions::is_true(&old.conditions, READY);
    if was_ready != outcome.is_ready() && !outcome.is_ready() {
        let c = &outcome.conditions()[0];
        events.push((
            EventType::Warning,
            c.reason.clone(),
            "Reconcile",
            c.message.clone(),
        ));
    }
    let publish_all = async {
        for (type_, reason, action, note) in events {
            publish(ctx, app, type_, &reason, action, note).await;
        }
    };
    let ((), applied) = futures::join!(
        publish_all,
        apply_status(api, app, app.status.as_ref(), &status)
    );
    applied?;
    let pending = app.annotations().get(CREATE_PENDING).map(String::as_str);
    if managed::pending_done(pending, observed.created, status.id.as_deref()) {
        annotate(api, app, CREATE_PENDING, None).await?;
    }
    ctx.metrics.set_conflicts(
        "Application",
        &ObjectRef::from_obj(app).to_string(),
        status.conflicts.len(),
    );
    let requeue = if outcome.is_ready() {
        jittered(super::resync_of(
            ctx,
            &app.namespace().unwrap_or_default(),
            &app.spec.backend_ref.name,
        ))
    } else {
        std::time::Duration::from_secs(30)
    };
    Ok(Action::requeue(requeue))
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
mod tests {
    use super::*;

    fn held() -> flow::Conflict {
        flow::Conflict {
            application: "Payroll".into(),
            identity_provider: "Google".into(),
            identity_provider_step: 1,
            authenticator: "totp".into(),
            authenticator_step: 2,
            unverified_script: false,
            lookup_skip: false,
        }
    }

    fn idp(generation: i64, observed: Option<i64>, jit: Option<&str>) -> IdentityProvider {
        serde_json::from_value(json!({
            "apiVersion": "identity-operator.io/v1alpha1",
            "kind": "IdentityProvider",
            "metadata": {"name": "google", "namespace": "ns", "generation": generation},
            "spec": {
                "backendRef": {"name": "asgardeo"},
                "displayName": "Google",
                "google": {"clientID": "x", "clientSecretRef": {"name": "s", "key": "k"}}
            },
            "status": {"id": "i1", "observedGeneration": observed, "jit": jit}
        }))
        .expect("idp")
    }

    #[test]
    fn the_block_check_takes_jit_from_the_gate_record_or_a_current_status_else_reads_live() {
        // (case, gate record, generation, observed generation, status jit, want)
        let cases = [
            (
                "recorded in the gate wins",
                Some(Jit::Disabled),
                2,
                Some(1),
                Some("Enabled"),
                Some(Jit::Disabled),
            ),
            (
                "current status",
                None,
                2,
                Some(2),
                Some("Enabled"),
                Some(Jit::Enabled),
            ),
            (
                "current status, off",
                None,
                2,
                Some(2),
                Some("Disabled"),
                Some(Jit::Disabled),
            ),
            (
                "status of an older spec: live",
                None,
                3,
                Some(2),
                Some("Enabled"),
                None,
            ),
            (
                "current status, skipped on lookup failure",
                None,
                2,
                Some(2),
                Some("SkippedOnLookupFailure"),
                Some(Jit::SkippedOnLookupFailure),
            ),
            ("no jit in status: live", None, 2, Some(2), None, None),
        ];
        for (name, recorded, generation, observed, jit, want) in cases {
            assert_eq!(
                known_jit(recorded, &idp(generation, observed, jit)),
                want,
                "case {name:?}"
            );
        }
    }

    #[test]
    fn a_held_flow_outranks_a_foreign_secret_which_outranks_ready() {
        let spec = spec_with_flow(vec![]);
        assert!(outcome("app-1", &spec, &[], None).is_ready());
        let foreign = outcome(
            "app-1",
            &spec,
            &[],
            Some("Secret s belongs to someone".into()),
        );
        assert_eq!(foreign.conditions()[0].reason, "CredentialsSecretNotOwned");
        let blocked = outcome("app-1", &spec, &[held()], Some("ignored".into()));
        let c = &blocked.conditions()[0];
        assert_eq!(c.reason, "LoginFlowBlocked");
        assert!(
            c.message.contains("IdentityProvider Google (step 1)"),
            "{c:?}"
        );
    }

    fn spec_with_flow(steps: Vec<crate::api::application::LoginStep>) -> ApplicationSpec {
        ApplicationSpec {
            backend_ref: crate::api::common::BackendRef { name: "b".into() },
            display_name: "Payroll".into(),
            description: None,
            oidc: None,
            credentials_secret: None,
            login_flow: (!steps.is_empty()).then_some(crate::api::application::LoginFlow { steps }),
            deletion_policy: crate::api::common::DeletionPolicy::Delete,
            adopt: false,
        }
    }

    /// Issue 24: a skipFor that skips nobody is said on Ready (it stays True: the spec is applied).
    #[test]
    fn ready_names_a_skip_for_that_skips_nobody() {
        use crate::api::application::{LoginOption, LoginStep, SkipFor};
        use crate::api::common::LocalObjectRef;
        let step = |options: Vec<LoginOption>, skip: Option<&str>| LoginStep {
            options,
            skip_for: skip.map(|n| SkipFor {
                identity_providers: vec![LocalObjectRef { name: n.into() }],
                federated_users: false,
            }),
        };
        let basic = LoginOption {
            authenticator: Some("BasicAuthenticator".into()),
            identity_provider_ref: None,
        };
        let okta = LoginOption {
            authenticator: None,
            identity_provider_ref: Some(LocalObjectRef {
                name: "partner-okta".into(),
            }),
        };
        let totp = LoginOption {
            authenticator: Some("totp".into()),
            identity_provider_ref: None,
        };
        let typo = spec_with_flow(vec![
            step(vec![basic.clone(), okta.clone()], None),
            step(vec![totp.clone()], Some("partner-otka")),
        ]);
        let ready = outcome("app-1", &typo, &[], None);
        let c = &ready.conditions()[0];
        assert!(ready.is_ready(), "{c:?}");
        assert!(
            c.message
                .contains("IdentityProvider partner-otka, which no earlier step offers"),
            "{c:?}"
        );
        let fine = spec_with_flow(vec![
            step(vec![basic, okta], None),
            step(vec![totp], Some("partner-okta")),
        ]);
        assert_eq!(
            outcome("app-1", &fine, &[], None).conditions()[0].message,
            "application app-1 matches the spec"
        );
    }

    /// Issue 24: an IdP whose rename clashed is not resolved by its new (foreign) name.
    #[test]
    fn a_rename_clash_is_not_resolved_by_the_foreign_name() {
        let idp = |reason: &str, status: &str| -> IdentityProvider {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "identity-operator.io/v1alpha1", "kind": "IdentityProvider",
                "metadata": {"name": "google", "namespace": "n"},
                "spec": {"backendRef": {"name": "b"}, "displayName": "Beta",
                         "google": {"clientID": "c", "clientSecretRef": {"name": "s", "key": "k"}}},
                "status": {"id": "i1", "observedGeneration": 2, "conditions": [{
                    "type": "Ready", "status": status, "reason": reason, "message": "m",
                    "lastTransitionTime": "2026-12-03T00:00:00Z"}]}
            }))
            .expect("idp")
        };
        let m = rename_pending(&idp("RenameClash", "False")).expect("waits");
        assert!(m.contains("\"Beta\"") && m.contains("RenameClash"), "{m}");
        for (reason, status) in [
            ("Ready", "True"),
            ("ServerUnavailable", "False"),
            ("JITDisableBlocked", "False"),
        ] {
            assert_eq!(rename_pending(&idp(reason, status)), None, "{reason}");
        }
    }

    #[test]
    fn secret_names_the_apiserver_refuses_are_caught_before_any_write() {
        for ok in ["wiki-oidc", "a", "a.b-c", "0abc", &"a".repeat(253)] {
            assert_eq!(invalid_secret_name(ok), None, "{ok}");
        }
        for bad in [
            "",
            "Wiki",
            "wiki_oidc",
            "-wiki",
            "wiki-",
            "a..b",
            ".a",
            "a b",
            &"a".repeat(254),
        ] {
            let why = invalid_secret_name(bad).unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(why.contains("not a valid Secret name"), "{why}");
        }
    }
}
