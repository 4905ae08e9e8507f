//! IdentityProvider reconciler, on the managed flow of [`super::managed`]:
//!
//! 1. **dereference** the backend, its client and the client Secret; validate;
//! 2. **observe** the server object (by id, else by name) — [`managed::observe`];
//! 3. **plan** which object is ours — [`managed::plan_identity`] (adopt, crash recovery proven by
//!    the uid marker, recreate after a server-side delete, rename in place, name clash);
//! 4. **act**: create / rename / update the root attributes and the authenticator (the client
//!    secret is pushed whenever its Secret version was never pushed, adoption included);
//! 5. under the Block gate: the dependents from the server's **live** flows of every connected app
//!    (with JIT declared on, a declared dependent's flow from its own last pass: `jitRequiredBy`),
//!    the conflict rule, and JIT — [`plan_jit`] holds back under Block a JIT disable and a change
//!    that would start skipping JIT on lookup failure;
//! 6. **report** — status, conditions, Events; an error ends as `Ready=False` with its reason.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::conditions::{self, Cond, Outcome};
use super::identity_backend::now;
use super::managed::{self, description_change, Identified, Managed, CREATE_PENDING};
use super::translate::{self, authenticator_differs, desired_authenticator, jit_change, jit_diff};
use super::{
    annotate_all, apply_status, backend_err, cleanup, consent_message, consented, facts, jittered,
    memo, publish, read_secret, registry, secret_value, Context, Error, FINALIZER,
    USE_IDP_CLIENT_SECRET,
};
use crate::api::conditions::{INTERCONNECTION_CONFLICT, READY};
use crate::api::identity_provider::{ConflictEntry, ConflictPolicy, Dependent, JitRequirement};
use crate::api::{Application, IdentityProvider, IdentityProviderStatus};
use crate::backend::{IdentityServer, IdpPatch, JitChange, NewIdp, Secret};
use crate::flow::{self, Jit, LocalAccountAuthenticators};

pub use super::managed::SECRET_VERSION;

impl Managed for IdentityProvider {
    type Server = crate::backend::Idp;
    type Status = IdentityProviderStatus;
    const NOUN: &'static str = "identity provider";
    const DELETE_REFUSED_HINT: &'static str =
        "remove it from the login flows of the applications that use it";
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
    fn status_with_id(&self, id: &str) -> IdentityProviderStatus {
        IdentityProviderStatus {
            id: Some(id.to_string()),
            ..self.status.clone().unwrap_or_default()
        }
    }
    fn cache(ctx: &Context) -> &kube::runtime::reflector::Store<Self> {
        &ctx.idps
    }
    fn description(&self) -> Option<&str> {
        self.spec.description.as_deref()
    }
    fn found(server: &crate::backend::Idp) -> managed::Found {
        managed::Found {
            id: server.id.clone(),
            name: server.name.clone(),
            description: server.description.clone(),
        }
    }
    async fn get_server(
        client: &dyn IdentityServer,
        id: &str,
    ) -> Result<crate::backend::Idp, crate::backend::BackendError> {
        client.get_idp(id).await
    }
    async fn find_server_id(
        client: &dyn IdentityServer,
        name: &str,
    ) -> Result<Option<String>, crate::backend::BackendError> {
        Ok(client.find_idp_by_name(name).await?.map(|s| s.id))
    }
    async fn set_server_description(
        client: &dyn IdentityServer,
        id: &str,
        description: String,
    ) -> Result<(), crate::backend::BackendError> {
        let patch = [crate::backend::IdpPatch::Description(description)];
        client.patch_idp(id, &patch).await
    }
    async fn delete_server(
        client: &dyn IdentityServer,
        id: &str,
    ) -> Result<bool, crate::backend::BackendError> {
        client.delete_idp(id).await
    }
}

/// How long an IdP's pass waits after its last one when only its dependents changed: a burst of
/// new Applications (each a trigger) costs one pass with its server reads, not one per
/// Application. Only the dependents list in status waits; Block reads live flows when it decides.
const COALESCE: std::time::Duration = std::time::Duration::from_secs(5);

/// The Secret holding the IdP's OAuth client secret, if its type has one.
fn client_secret_ref(idp: &IdentityProvider) -> Option<&crate::api::common::SecretKeyRef> {
    idp.spec.client_secret_ref()
}

/// The IdP's client secret and the Secret's resourceVersion, or the outcome that reports it missing.
async fn read_client_secret(
    ctx: &Context,
    ns: &str,
    r: &crate::api::common::SecretKeyRef,
) -> Result<Result<(Secret, Option<String>), Outcome>, Error> {
    let found = read_secret(&ctx.client, ns, &r.name).await?;
    // Consent before the value is used: it is pushed to the server the backend points at.
    if found
        .as_ref()
        .is_some_and(|s| !consented(s, USE_IDP_CLIENT_SECRET))
    {
        let msg = consent_message(&r.name, "clientSecretRef", USE_IDP_CLIENT_SECRET);
        return Ok(Err(Outcome::stalled("SecretNotConsented", msg)));
    }
    match found.as_ref().and_then(|s| secret_value(s, &r.key)) {
        Some(v) => Ok(Ok((
            Secret::new(v),
            found.and_then(|s| s.resource_version()),
        ))),
        None => {
            let what = if found.is_some() {
                format!("has no key {}", r.key)
            } else {
                "not found".into()
            };
            let msg = format!("Secret {} (clientSecretRef) {what}: create it", r.name);
            Ok(Err(Outcome::stalled("SecretNotFound", msg)))
        }
    }
}

/// Reconciles one IdentityProvider (apply or cleanup through the finalizer).
pub async fn reconcile(idp: Arc<IdentityProvider>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = idp.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<IdentityProvider> = Api::namespaced(ctx.client.clone(), &ns);
    let idp = managed::claim(&ctx, &api, idp).await?;
    finalizer(&api, FINALIZER, idp, |event| async {
        match event {
            FinalizerEvent::Apply(idp) => {
                let uid = idp.uid().unwrap_or_default();
                let resync = super::resync_of(&ctx, &ns, &idp.spec.backend_ref.name);
                let secret = client_secret_ref(&idp).map(|r| r.name.as_str());
                let inputs = facts::idp_inputs(&ctx, &idp, secret);
                let decision = inputs.for_decision();
                match ctx.memo.decide(&uid, &decision, Instant::now(), COALESCE) {
                    memo::Pass::Skip(wait) => {
                        return Ok(Action::requeue(wait + jittered(resync) / 10));
                    }
                    memo::Pass::Coalesce(wait) => return Ok(Action::requeue(wait)),
                    memo::Pass::DependentsOnly => {
                        if let Some(action) = dependents_only(&ctx, &api, &idp).await {
                            match &action {
                                Ok(_) => ctx.memo.passed_cheaply(&uid, inputs.all, Instant::now()),
                                Err(_) => ctx.memo.forget_pass(&uid),
                            }
                            return action;
                        }
                    }
                    _ => {}
                }
                let mut seen = Observed::from(idp.as_ref());
                let result = apply(&idp, &api, &ctx, &mut seen).await;
                let ready = matches!(&result, Ok(o) if o.is_ready());
                let jit_on = seen.declared_jit == Some(Jit::Enabled)
                    && seen.jit_on_server == Some(Jit::Enabled);
                let action =
                    managed::report(result, async |o| finish(&ctx, &api, &idp, seen, o).await)
                        .await;
                if ready && action.is_ok() {
                    let now = Instant::now();
                    let kind = memo::KindPass::IdentityProvider {
                        own: inputs.own,
                        window_from: now,
                        jit_on,
                    };
                    ctx.memo.passed(&uid, inputs.all, kind, now, resync);
                } else {
                    ctx.memo.forget_pass(&uid);
                }
                action
            }
            FinalizerEvent::Cleanup(idp) => match cleanup(idp.clone(), &ctx).await {
                Ok(action) => Ok(action),
                Err(e) => {
                    let seen = Observed::from(idp.as_ref());
                    managed::report(Err(e), async |o| finish(&ctx, &api, &idp, seen, o).await).await
                }
            },
        }
    })
    .await
    .map_err(Error::from)
}

/// What the reconcile learned, for the status.
#[derive(Default)]
struct Observed {
    id: Option<String>,
    /// This pass created the server object (its create-pending mark is set).
    created: bool,
    /// JIT on the server as the conflict rule sees it.
    jit_on_server: Option<Jit>,
    /// JIT as declared (the spec over the server's settings), as this pass's rule checked it.
    declared_jit: Option<Jit>,
    /// The server object's name after this pass (`status.serverName`).
    server_name: Option<String>,
    dependents: Vec<Dependent>,
    conflicts: Vec<ConflictEntry>,
    /// The conflicts there would be with this IdP's JIT off (`status.jitRequiredBy`).
    jit_required_by: Vec<JitRequirement>,
    secret_version: Option<String>,
    /// The pass got past the authenticator sync: the server has the client secret of
    /// `secret_version`, whatever the pass ends in (a Block of the JIT disable comes later).
    authenticator_synced: bool,
}

impl From<&IdentityProvider> for Observed {
    /// What the last status said: kept when a reconcile ends early.
    fn from(idp: &IdentityProvider) -> Self {
        let old = idp.status.clone().unwrap_or_default();
        Self {
            id: old.id,
            created: false,
            jit_on_server: old.jit.as_deref().and_then(Jit::from_status_value),
            declared_jit: None,
            server_name: old.server_name,
            dependents: old.dependents,
            conflicts: old.conflicts,
            jit_required_by: old.jit_required_by,
            secret_version: None,
            authenticator_synced: false,
        }
    }
}

/// The JIT change to push, and whether Block held part of it back. Pure. Under Block with conflicts,
/// what would leave unmatched users without a local account is held back: a JIT disable, and a
/// change that would start skipping JIT on lookup failure on the server (`server`: its JIT now,
/// `None` right after the create). The rest of the change goes.
pub fn plan_jit(
    diff: Option<JitChange>,
    server: Option<&crate::backend::Jit>,
    conflicts: bool,
    policy: ConflictPolicy,
) -> (Option<JitChange>, bool) {
    let Some(mut diff) = diff else {
        return (None, false);
    };
    let mut blocked = false;
    if conflicts && policy == ConflictPolicy::Block {
        if diff.enabled == Some(false) {
            diff.enabled = None;
            blocked = true;
        }
        let skips_now = server.is_some_and(|s| s.skip_jit_for_lookup_failure == Some(true));
        let looks_up_now = server.is_some_and(|s| !s.account_lookup.is_empty());
        let skips = diff.skip_jit_for_lookup_failure.unwrap_or(skips_now);
        let looks_up = diff
            .account_lookup
            .as_ref()
            .map_or(looks_up_now, |l| !l.is_empty());
        if skips && looks_up && !(skips_now && looks_up_now) {
            // Hold back the half that starts the skip; the other half alone changes nothing.
            if diff.skip_jit_for_lookup_failure == Some(true) {
                diff.skip_jit_for_lookup_failure = None;
            } else {
                diff.account_lookup = None;
            }
            blocked = true;
        }
    }
    ((diff != JitChange::default()).then_some(diff), blocked)
}

/// Whether the authenticator (with the client secret) must be written. Pure: the server never shows
/// the secret back, so a Secret version that was never pushed — a new Secret, or an object that
/// adopted or recovered its IdP — means a push.
pub fn authenticator_push(
    created: bool,
    differs: bool,
    pushed_version: Option<&str>,
    current_version: Option<&str>,
) -> bool {
    !created && (differs || current_version.is_some_and(|v| pushed_version != Some(v)))
}

async fn apply(
    idp: &IdentityProvider,
    api: &Api<IdentityProvider>,
    ctx: &Context,
    seen: &mut Observed,
) -> Result<Outcome, Error> {
    let ns = idp.namespace().ok_or(Error::NoNamespace)?;
    // 1. Dereference and validate: backend, client, the client secret.
    let (backend, client) = step!(managed::backend_client(ctx, &ns, &idp.spec.backend_ref).await);
    let mut creds = step!(credentials(ctx, idp, &ns, seen).await);
    // 2-4. Observe, plan and act on which server object is ours (create if none).
    let (id, created, read) = step!(identify(ctx, api, idp, client.as_ref(), &creds, seen).await);
    let server = server_idp(idp, client.as_ref(), &id, created, read, &creds).await?;
    // 4. Act: root attributes, the authenticator (only what differs is written).
    let mut changed = sync_root(idp, client.as_ref(), &server).await?;
    // The server now has the declared name (renamed, created or already so).
    seen.server_name = Some(idp.spec.display_name.clone());
    let pass = Pass {
        ctx,
        idp,
        ns: &ns,
        client: client.as_ref(),
        id: &id,
        created,
    };
    changed.extend(step!(sync_authenticator(&pass, &mut creds, seen).await));
    seen.authenticator_synced = true;
    // 5. Under the Block gate: dependents from the server's live flows, the rule, JIT.
    let _gate = ctx
        .block_gate
        .lock(super::gate::key(Some(&ns), &idp.name_any()))
        .await;
    let blocked = sync_jit(&pass, &backend, &server, seen, &mut changed).await?;
    // After JIT, so that a refused mapping holds back neither the rule nor the JIT push.
    let refused = sync_mappings(&pass, &server, &mut changed).await?;
    // 6. Report.
    let old_generation = idp.status.as_ref().and_then(|s| s.observed_generation);
    managed::report_drift(ctx, idp, old_generation, created, &changed).await;
    Ok(refused.unwrap_or_else(|| outcome(&id, blocked, &seen.conflicts)))
}

/// Observe, plan and act on which server object is ours ([`managed::identify`]), creating it
/// with the authenticator when there is none. Returns its id and whether this pass created it.
async fn identify(
    ctx: &Context,
    api: &Api<IdentityProvider>,
    idp: &IdentityProvider,
    client: &dyn IdentityServer,
    creds: &Credentials<'_>,
    seen: &mut Observed,
) -> managed::Step<(String, bool, Option<crate::backend::Idp>)> {
    let create = async |description: String| {
        let new = NewIdp {
            name: idp.spec.display_name.clone(),
            description: Some(description),
            image: None,
            authenticator: creds.desired.clone(),
            jit: None,
            jwks_uri: translate::desired_jwks_uri(&idp.spec).map(str::to_string),
            certificates: translate::desired_certificates(&idp.spec),
            saml_metadata_uri: translate::desired_saml_metadata_uri(&idp.spec).map(str::to_string),
        };
        client.create_idp(&new).await
    };
    Ok(
        match managed::identify(ctx, api, idp, client, create).await? {
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

/// The server object as the diff needs it: as observe read it, or as this pass just created it
/// (what was sent: no read back), else read now.
async fn server_idp(
    idp: &IdentityProvider,
    client: &dyn IdentityServer,
    id: &str,
    created: bool,
    read: Option<crate::backend::Idp>,
    creds: &Credentials<'_>,
) -> Result<crate::backend::Idp, Error> {
    if let Some(server) = read {
        return Ok(server);
    }
    if created {
        return Ok(crate::backend::Idp {
            id: id.to_string(),
            name: idp.spec.display_name.clone(),
            description: Some(idp.server_description()),
            image: None,
            is_enabled: true,
            default_authenticator_id: Some(creds.desired.authenticator_id.clone()),
            authenticators: Vec::new(),
            jit: None,
            certificate: Box::new(crate::backend::IdpCertificate {
                jwks_uri: translate::desired_jwks_uri(&idp.spec).map(str::to_string),
                certificates: translate::desired_certificates(&idp.spec),
                saml_metadata_uri: translate::desired_saml_metadata_uri(&idp.spec)
                    .map(str::to_string),
            }),
            mappings: Default::default(),
        });
    }
    client
        .get_idp(id)
        .await
        .map_err(backend_err(format!("reading identity provider {id}")))
}

/// What the steps of one IdP pass share.
struct Pass<'a> {
    ctx: &'a Context,
    idp: &'a IdentityProvider,
    ns: &'a str,
    client: &'a dyn IdentityServer,
    id: &'a str,
    created: bool,
}

/// The authenticator the spec wants and what is known of its client secret.
struct Credentials<'a> {
    /// The Secret holding the client secret, if the type has one.
    secret_ref: Option<&'a crate::api::common::SecretKeyRef>,
    /// The Secret version last pushed (annotation, or this process's memory of its last push).
    pushed: Option<String>,
    /// The server has the Secret's current version (per the metadata cache): its value was not read.
    known: bool,
    /// The authenticator to send (with the secret when it was read).
    desired: crate::backend::FederatedAuthenticator,
}

/// Validate and resolve credentials. The Secret's value is needed only to send it: when the server
/// already has the version in the metadata cache (same resourceVersion, same content), the
/// authenticator is diffed without it and the Secret is read only if something must be written
/// after all.
async fn credentials<'a>(
    ctx: &Context,
    idp: &'a IdentityProvider,
    ns: &str,
    seen: &mut Observed,
) -> managed::Step<Credentials<'a>> {
    let spec = &idp.spec;
    // What CEL cannot have checked on an object stored before its rules (see display_name_problem).
    if let Some(problem) = crate::api::common::display_name_problem(&spec.display_name) {
        return Ok(Err(Outcome::stalled("InvalidSpec", problem)));
    }
    if spec.provider_type().is_none() {
        let msg = "set exactly one of google, github, facebook, apple, oidc or saml";
        return Ok(Err(Outcome::stalled("InvalidSpec", msg)));
    }
    let secret_ref = client_secret_ref(idp);
    // This process's own last writes count even when the cache still shows an older object.
    let uid = idp.uid().unwrap_or_default();
    let annotated = idp.annotations().get(SECRET_VERSION).cloned();
    let pushed = ctx.memo.pushed_version(&uid, annotated);
    let cached_version = secret_ref.and_then(|r| ctx.registry.secret_version(ns, &r.name));
    let known = ctx.memo.owned_id(&uid, idp.recorded_id()).is_some()
        && cached_version.is_some()
        && cached_version == pushed;
    let mut client_secret = None;
    match secret_ref {
        Some(r) if !known => {
            let (value, version) = step!(inner: read_client_secret(ctx, ns, r).await);
            client_secret = Some(value);
            seen.secret_version = version;
        }
        Some(_) => seen.secret_version = cached_version,
        None => {}
    }
    let Some(desired) = desired_authenticator(spec, client_secret.as_ref()) else {
        let msg = "the identity provider type is incomplete";
        return Ok(Err(Outcome::stalled("InvalidSpec", msg)));
    };
    Ok(Ok(Credentials {
        secret_ref,
        pushed,
        known,
        desired,
    }))
}

/// Act: rename in place, fix the description and the certificate (JWKS URI, SAML metadata URI
/// or PEM certificates); returns what was written.
async fn sync_root(
    idp: &IdentityProvider,
    client: &dyn IdentityServer,
    server: &crate::backend::Idp,
) -> Result<Vec<&'static str>, Error> {
    let spec = &idp.spec;
    let mut ops = Vec::new();
    if server.name != spec.display_name {
        ops.push(IdpPatch::Name(spec.display_name.clone()));
    }
    if let Some(d) = description_change(
        spec.description.as_deref(),
        server.description.as_deref(),
        &managed::marker_for(idp),
    ) {
        ops.push(IdpPatch::Description(d));
    }
    let mut changed = Vec::new();
    if !ops.is_empty() {
        changed.push("name/description");
    }
    let cert = translate::certificate_patches(spec, &server.certificate);
    if !cert.is_empty() {
        ops.extend(cert);
        changed.push("certificate");
    }
    if ops.is_empty() {
        return Ok(changed);
    }
    client
        .patch_idp(&server.id, &ops)
        .await
        .map_err(backend_err(format!(
            "updating identity provider {}",
            server.id
        )))?;
    Ok(changed)
}

/// Act: write the authenticator (with the client secret) when it differs or the Secret's version
/// was never pushed; returns what was written.
async fn sync_authenticator(
    pass: &Pass<'_>,
    creds: &mut Credentials<'_>,
    seen: &mut Observed,
) -> managed::Step<Option<&'static str>> {
    let (client, id, created) = (pass.client, pass.id, pass.created);
    let differs = if created {
        false
    } else {
        let aid = &creds.desired.authenticator_id;
        let confidential = client
            .confidential_properties(aid)
            .await
            .map_err(backend_err("reading the authenticator's metadata"))?;
        match client.get_federated_authenticator(id, aid).await {
            Ok(a) => authenticator_differs(&creds.desired, &a, &confidential),
            Err(e) if e.is_not_found() => true,
            Err(e) => return Err(backend_err("reading the federated authenticator")(e)),
        }
    };
    // A recreate with the value left unread sent no secret: push it now.
    let unsent = created && creds.known;
    let push = |seen: &Observed| {
        unsent
            || authenticator_push(
                created,
                differs,
                creds.pushed.as_deref(),
                seen.secret_version.as_deref(),
            )
    };
    if let (Some(r), true) = (creds.secret_ref.filter(|_| creds.known), push(seen)) {
        let (value, version) = step!(inner: read_client_secret(pass.ctx, pass.ns, r).await);
        let spec = &pass.idp.spec;
        creds.desired = desired_authenticator(spec, Some(&value)).unwrap_or(creds.desired.clone());
        seen.secret_version = version;
    }
    if !push(seen) {
        return Ok(Ok(None));
    }
    client
        .update_federated_authenticator(id, &creds.desired)
        .await
        .map_err(backend_err("updating the federated authenticator"))?;
    Ok(Ok(Some("authenticator")))
}

/// Under the Block gate: the dependents from the server's live flows, the conflict rule, and JIT
/// ([`plan_jit`] holds a disable back under Block). Returns whether it was held back.
async fn sync_jit(
    pass: &Pass<'_>,
    backend: &crate::api::IdentityBackend,
    server: &crate::backend::Idp,
    seen: &mut Observed,
    changed: &mut Vec<&'static str>,
) -> Result<bool, Error> {
    let (idp, client, id) = (pass.idp, pass.client, pass.id);
    let spec = &idp.spec;
    let needs_local = registry::local_account_authenticators(backend);
    // The IdP's GET carries its JIT settings; ask separately only when a server leaves them out,
    // or, right after the create, not at all when the spec declares JIT: all of it is pushed.
    // Read before the rule: lookup fields the spec leaves out keep the server's value.
    let change = jit_change(spec);
    let server_jit = match (server.jit.clone(), pass.created, &change) {
        (None, true, Some(_)) => None,
        (Some(jit), _, _) => Some(jit),
        (None, _, _) => Some(
            client
                .get_jit(id)
                .await
                .map_err(backend_err("reading JIT provisioning"))?,
        ),
    };
    let declared = translate::declared_jit(spec, server_jit.as_ref());
    seen.declared_jit = Some(declared);
    // With JIT declared on, this IdP can be in no conflict and Block has nothing to hold back:
    // the flows are needed only for jitRequiredBy, and those of declared dependents come from
    // their own last pass when this process has it. With JIT off, Block decides on live flows.
    let live = declared != Jit::Enabled;
    // A server object this pass created has no connected application yet.
    let on_server = !pass.created;
    let (dependents, flows) =
        dependents(pass.ctx, idp, client, id, &needs_local, live, on_server).await?;
    seen.conflicts = conflicts(spec, declared, &flows, &needs_local);
    seen.jit_required_by = jit_required_by(spec, &flows, &needs_local, &dependents);
    seen.dependents = dependents;
    let diff = match (&server_jit, change) {
        (None, change) => change,
        (Some(server_jit), change) => {
            seen.jit_on_server = Some(server_jit.rule_state());
            change.and_then(|c| jit_diff(&c, server_jit))
        }
    };
    let (push, blocked) = plan_jit(
        diff,
        server_jit.as_ref(),
        !seen.conflicts.is_empty(),
        spec.conflict_policy,
    );
    if let Some(change) = push {
        let result = client
            .update_jit(id, &change)
            .await
            .map_err(backend_err("updating JIT provisioning"))?;
        seen.jit_on_server = Some(result.rule_state());
        changed.push("JIT");
    }
    if let Some(on) = seen.jit_on_server {
        let key = super::gate::key(Some(pass.ns), &idp.name_any());
        pass.ctx.block_gate.record_jit(&key, id, on);
    }
    Ok(blocked)
}

/// Act: the claim, role and group mappings, written only where they differ (each of the server's
/// three PUTs replaces its object: the client reads, merges and writes). Returns the outcome that
/// replaces Ready when the user must act: the server refused the mappings (its answer, e.g. a
/// local claim the tenant does not have), or a lookup claim is not mapped. Neither is retried
/// before the next resync or spec change: the same write would be refused again.
async fn sync_mappings(
    pass: &Pass<'_>,
    server: &crate::backend::Idp,
    changed: &mut Vec<&'static str>,
) -> Result<Option<Outcome>, Error> {
    let spec = &pass.idp.spec;
    let diff = translate::mappings_change(spec)
        .and_then(|change| translate::mappings_diff(&change, &server.mappings));
    if let Some(diff) = diff {
        match pass.client.update_mappings(pass.id, &diff).await {
            Ok(_) => changed.push("mappings"),
            Err(e @ crate::backend::BackendError::Invalid { .. }) => {
                return Ok(Some(Outcome::stalled(
                    MAPPINGS_REJECTED,
                    mappings_rejected(&e),
                )));
            }
            Err(e) => {
                return Err(backend_err("updating the claim, role and group mappings")(
                    e,
                ))
            }
        }
    }
    let unmapped = translate::unmapped_lookup_claims(spec, &server.mappings);
    if unmapped.is_empty() {
        return Ok(None);
    }
    Ok(Some(Outcome::stalled(
        LOOKUP_CLAIM_NOT_MAPPED,
        format!(
            "jit.accountLookup compares {} but the identity provider's claim mappings map no claim to it, so the lookup never matches. Add a claims.mappings entry with that localClaim, or look up by a mapped claim.",
            unmapped.join(", ")
        ),
    )))
}

/// Reason: the server refused the declared claim, role or group mappings.
pub const MAPPINGS_REJECTED: &str = "MappingsRejected";
/// Reason: a JIT lookup claim is not a mapped local claim.
pub const LOOKUP_CLAIM_NOT_MAPPED: &str = "LookupClaimNotMapped";

/// The message of a refused mapping write: the server's answer and what to do.
fn mappings_rejected(e: &crate::backend::BackendError) -> String {
    format!(
        "the server refused the claim, role or group mappings: {e}. Fix spec.claims, spec.roles or spec.groups (a mapped local claim must exist on the tenant: add it to the tenant's local attributes or map another one; with mappings, userIdClaim and roleClaim must be mapped IdP claims). The rest of the spec is applied."
    )
}

/// The conflict rule over the dependents' live flows, for this IdP only. Pure.
fn conflicts(
    spec: &crate::api::IdentityProviderSpec,
    declared: Jit,
    flows: &[(String, flow::Flow)],
    needs_local: &LocalAccountAuthenticators,
) -> Vec<ConflictEntry> {
    let idps = HashMap::from([(spec.display_name.clone(), declared)]);
    let analysis = flow::check_all(
        flows.iter().map(|(n, f)| (n.as_str(), f)),
        &idps,
        needs_local,
    );
    analysis
        .conflicts
        .iter()
        .filter(|c| c.identity_provider == spec.display_name)
        .map(|c| ConflictEntry {
            application: c.application.clone(),
            identity_provider_step: c.identity_provider_step as i32,
            authenticator: c.authenticator.clone(),
            authenticator_step: c.authenticator_step as i32,
            unverified_script: c.unverified_script,
            lookup_skip: c.lookup_skip,
        })
        .collect()
}

/// The conflicts the rule would report with this IdP's JIT off, for `status.jitRequiredBy`:
/// what the admission policy refuses (Block) or warns about (Warn). Pure.
fn jit_required_by(
    spec: &crate::api::IdentityProviderSpec,
    flows: &[(String, flow::Flow)],
    needs_local: &LocalAccountAuthenticators,
    dependents: &[Dependent],
) -> Vec<JitRequirement> {
    conflicts(spec, Jit::Disabled, flows, needs_local)
        .into_iter()
        .map(|c| JitRequirement {
            application_ref: dependents
                .iter()
                .find(|d| d.name == c.application)
                .and_then(|d| d.application_ref.clone()),
            application: c.application,
            identity_provider_step: c.identity_provider_step,
            authenticator: c.authenticator,
            authenticator_step: c.authenticator_step,
        })
        .collect()
}

/// The outcome of a pass that reached the server. Pure.
fn outcome(id: &str, blocked: bool, conflicts: &[ConflictEntry]) -> Outcome {
    if !blocked {
        return Outcome::Ready(format!("identity provider {id} matches the spec"));
    }
    if !conflicts.is_empty() && conflicts.iter().all(|c| c.lookup_skip) {
        return Outcome::stalled(
            "JITLookupSkipBlocked",
            format!(
                "skipping JIT provisioning on lookup failure was not pushed to the server because {} need a local account after this provider, and users that no local account matches would get none (conflictPolicy: Block). \
                 Turn skipForLookupFailure off again, skip the MFA step for this provider's users (skipFor on that step), remove the MFA step from those applications, or set conflictPolicy: Warn to push it anyway. The rest of the spec is applied.",
                names(conflicts)
            ),
        );
    }
    Outcome::stalled(
        "JITDisableBlocked",
        format!(
            "JIT provisioning was not disabled on the server because {} need a local account after this provider (conflictPolicy: Block). \
             Enable jit again, skip the MFA step for this provider's users (skipFor on that step), remove the MFA step from those applications, or set conflictPolicy: Warn to push it anyway. The rest of the spec is applied.",
            names(conflicts)
        ),
    )
}

fn names(conflicts: &[ConflictEntry]) -> String {
    let mut apps: Vec<&str> = conflicts.iter().map(|c| c.application.as_str()).collect();
    apps.dedup();
    format!("application(s) {}", apps.join(", "))
}

/// The applications that must look again after an IdentityProvider event: its dependents, but only
/// when a fact they read of it changed ([`facts::IdpFacts`]). Status writes that only change the
/// IdP's dependents list or conditions, and spec edits no flow reads, do not re-run every dependent.
pub fn apps_to_refresh(ctx: &Context, idp: &IdentityProvider) -> Vec<ObjectRef<Application>> {
    let me = ObjectRef::from_obj(idp);
    let facts = facts::IdpFacts::of(idp);
    let uid = idp.uid().unwrap_or_default();
    if !ctx.memo.facts_changed(&uid, &facts, facts.gone()) {
        return Vec::new();
    }
    ctx.index
        .lock()
        .map(|i| i.dependents(&me).cloned().collect())
        .unwrap_or_default()
}

/// The applications whose flows offer this IdP, for the status (declared in the cluster, from the
/// index, or existing only on the server) and the flows of every connected application for the
/// conflict rule: **live** ones with `live` (Block decides on what the server runs, not on flows
/// that resolve in the cluster: an Application whose other IdP was deleted still has its flow on
/// the server); else those a declared dependent's last pass left there, when known.
async fn dependents(
    ctx: &Context,
    idp: &IdentityProvider,
    client: &dyn IdentityServer,
    id: &str,
    needs_local: &LocalAccountAuthenticators,
    live: bool,
    on_server: bool,
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
    let live = if !on_server {
        Vec::new()
    } else if live {
        live_flows(client, id, needs_local).await?
    } else {
        connected(ctx, client, id, &cluster_apps, needs_local).await?
    };
    Ok(merge_dependents(&cluster_apps, live))
}

/// The dependents for the status, from the declared ones and the applications connected on the
/// server (name, id, flow), and the flows the rule checks. Pure.
fn merge_dependents(
    cluster_apps: &[Arc<Application>],
    live: Vec<(String, String, Option<flow::Flow>)>,
) -> (Vec<Dependent>, Vec<(String, flow::Flow)>) {
    let mut deps: BTreeMap<String, Dependent> = BTreeMap::new();
    for app in cluster_apps {
        let app_id = app.status.as_ref().and_then(|s| s.id.clone());
        let name = live
            .iter()
            .find(|l| Some(&l.1) == app_id.as_ref())
            .map(|l| l.0.clone())
            .unwrap_or_else(|| app.spec.display_name.clone());
        deps.insert(
            name.clone(),
            Dependent {
                name,
                application_ref: Some(app.name_any()),
                id: app_id,
            },
        );
    }
    let mut flows = Vec::new();
    for (name, app_id, flow) in live {
        flows.extend(flow.map(|f| (name.clone(), f)));
        if !deps.values().any(|d| d.id.as_ref() == Some(&app_id)) {
            deps.entry(name.clone()).or_insert(Dependent {
                name,
                application_ref: None,
                id: Some(app_id),
            });
        }
    }
    (deps.into_values().collect(), flows)
}

/// A pass for a change of the IdP's dependents alone (a new Application, its server id, its
/// finished pass) after a full pass that found JIT on, declared and on the server
/// ([`memo::Pass::DependentsOnly`]): the dependents and `jitRequiredBy` are recomputed from the
/// caches and the dependents' own last passes and the status written; nothing is asked of the
/// server. While dependents arrive this was a full pass per coalescing window (`get_idp`,
/// `get_federated_authenticator`, `connected_apps`: ~13 × 3 reads per IdP at 1000 × 5000, most of
/// the requests to converge) for a status that only the cluster had changed.
///
/// It finds what the full pass would: with JIT on there is no conflict and Block holds nothing
/// back (no live flow is needed); a declared dependent on the server is known from its own last
/// pass of its current generation, which left that flow (this IdP in it) on the server, or else
/// this returns `None`; the applications that exist only on the server change only by an edit
/// there, which the next full pass (the resync) reads like any other drift, so they are kept as
/// the last full pass listed them. `None`: a full pass is needed.
async fn dependents_only(
    ctx: &Context,
    api: &Api<IdentityProvider>,
    idp: &IdentityProvider,
) -> Option<Result<Action, Error>> {
    let ns = idp.namespace()?;
    let old = idp.status.as_ref()?;
    let id = old.id.clone()?;
    let jit_on = old.jit.as_deref().and_then(Jit::from_status_value) == Some(Jit::Enabled);
    if !jit_on || !old.conflicts.is_empty() {
        return None;
    }
    let backend = ctx
        .backends
        .get(&ObjectRef::new(&idp.spec.backend_ref.name).within(&ns))?;
    let needs_local = registry::local_account_authenticators(&backend);
    let me = ObjectRef::from_obj(idp);
    let cluster_apps: Vec<Arc<Application>> = {
        let index = ctx.index.lock().ok()?;
        index
            .dependents(&me)
            .filter_map(|r| ctx.apps.get(r))
            .collect()
    };
    let mut live = Vec::new();
    // Declared dependents whose pass of their current generation is still running: their flow on
    // the server is the old one or the new one; what the last full pass found is kept until that
    // pass ends (its status write triggers this IdP again).
    let mut pending = Vec::new();
    for app in &cluster_apps {
        let status = app.status.as_ref();
        // Not on the server yet: not connected there either.
        let Some(app_id) = status.and_then(|s| s.id.clone()) else {
            continue;
        };
        if status.and_then(|s| s.observed_generation) != app.metadata.generation {
            pending.push(app.name_any());
            continue;
        }
        // Finished, but not by a pass of this process (a restart): only the server knows.
        let flow = ctx
            .memo
            .flow_at(&app.uid().unwrap_or_default(), app.metadata.generation)?;
        let flow = flow
            .map(|(f, script)| translate::flow_for_rule(&f.steps, script.as_deref(), &needs_local));
        live.push((app.spec.display_name.clone(), app_id, flow));
    }
    let server_only: Vec<&Dependent> = old
        .dependents
        .iter()
        .filter(|d| d.application_ref.is_none())
        .filter(|d| !live.iter().any(|l| d.id.as_ref() == Some(&l.1)))
        .collect();
    for d in &server_only {
        live.push((d.name.clone(), d.id.clone()?, None));
    }
    let (dependents, flows) = merge_dependents(&cluster_apps, live);
    let mut required = jit_required_by(&idp.spec, &flows, &needs_local, &dependents);
    // The server-only ones' flows were read by the last full pass, and the pending ones' are not
    // known yet: what the last pass found, kept.
    required.extend(
        old.jit_required_by
            .iter()
            .filter(|r| match &r.application_ref {
                None => server_only.iter().any(|d| d.name == r.application),
                Some(name) => pending.contains(name),
            })
            .cloned(),
    );
    let mut seen = Observed::from(idp);
    seen.dependents = dependents;
    seen.jit_required_by = required;
    let ready = outcome(&id, false, &seen.conflicts);
    Some(finish(ctx, api, idp, seen, ready).await)
}

/// Observe: every application connected to IdP `id` on the server with its flow. A declared
/// dependent (known by server id) whose last full pass in this process was of its current
/// generation is not read: that pass left its flow on the server. The others are read (the
/// server-only ones were read for their names anyway).
async fn connected(
    ctx: &Context,
    client: &dyn IdentityServer,
    id: &str,
    cluster_apps: &[Arc<Application>],
    needs_local: &LocalAccountAuthenticators,
) -> Result<Vec<(String, String, Option<flow::Flow>)>, Error> {
    let mut out = Vec::new();
    for app_id in client
        .connected_apps(id)
        .await
        .map_err(backend_err("listing connected applications"))?
    {
        let known = cluster_apps
            .iter()
            .find(|a| a.status.as_ref().and_then(|s| s.id.as_ref()) == Some(&app_id))
            .and_then(|a| {
                let flow = ctx
                    .memo
                    .flow_at(&a.uid().unwrap_or_default(), a.metadata.generation)?;
                Some((a.spec.display_name.clone(), flow))
            });
        let (name, flow) = match known {
            Some((name, flow)) => {
                if let Some((f, script)) = &flow {
                    let q = translate::proof_question(&f.steps, script.as_deref(), needs_local);
                    super::proofs::prove_ahead(q, super::proofs::BUDGET).await;
                }
                let flow = flow.map(|(f, script)| {
                    translate::flow_for_rule(&f.steps, script.as_deref(), needs_local)
                });
                (name, flow)
            }
            None => match client.get_application(&app_id).await {
                Ok(app) => {
                    let q = translate::proof_question(
                        &app.login_flow.steps,
                        app.login_flow.script.as_deref(),
                        needs_local,
                    );
                    super::proofs::prove_ahead(q, super::proofs::BUDGET).await;
                    let flow = rule_flow(&app, needs_local);
                    (app.name, flow)
                }
                Err(e) if e.is_not_found() => continue,
                Err(e) => {
                    return Err(backend_err(format!(
                        "reading connected application {app_id}"
                    ))(e))
                }
            },
        };
        out.push((name, app_id, flow));
    }
    Ok(out)
}

/// An application's live user-defined flow as the conflict rule sees it (none for a default flow).
fn rule_flow(
    app: &crate::backend::Application,
    needs_local: &LocalAccountAuthenticators,
) -> Option<flow::Flow> {
    (app.login_flow.kind == crate::backend::FlowKind::UserDefined).then(|| {
        translate::flow_for_rule(
            &app.login_flow.steps,
            app.login_flow.script.as_deref(),
            needs_local,
        )
    })
}

/// Observe: every application connected to IdP `id` on the server, with its live user-defined flow
/// as the conflict rule sees it: (name, id, flow).
pub async fn live_flows(
    client: &dyn IdentityServer,
    id: &str,
    needs_local: &LocalAccountAuthenticators,
) -> Result<Vec<(String, String, Option<flow::Flow>)>, Error> {
    let mut out = Vec::new();
    for app_id in client
        .connected_apps(id)
        .await
        .map_err(backend_err("listing connected applications"))?
    {
        let app = match client.get_application(&app_id).await {
            Ok(a) => a,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                return Err(backend_err(format!(
                    "reading connected application {app_id}"
                ))(e))
            }
        };
        let flow = rule_flow(&app, needs_local);
        out.push((app.name, app_id, flow));
    }
    Ok(out)
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
        let lookup_skip = observed.conflicts.iter().all(|c| c.lookup_skip);
        let on_server = match (observed.jit_on_server, lookup_skip) {
            (Some(Jit::Enabled), true) => {
                " The server still provisions these users (change held back)."
            }
            (Some(Jit::Enabled), false) => " The server still has JIT on (change held back).",
            (Some(Jit::SkippedOnLookupFailure), _) => {
                " The server skips JIT on lookup failure: these logins fail now for users that no local account matches."
            }
            _ => " The server has JIT off: these logins fail now.",
        };
        let unverified = if observed.conflicts.iter().any(|c| c.unverified_script) {
            format!(" An application {}.", flow::UNVERIFIED_SCRIPT)
        } else {
            String::new()
        };
        if lookup_skip {
            Cond::new(
                INTERCONNECTION_CONFLICT,
                true,
                "JITSkippedOnLookupFailureWithMFADependents",
                format!("JIT provisioning is on but skipped on lookup failure in the spec (skipForLookupFailure with accountLookup), so users that no local account matches get none, and these applications need a local account after this provider: {}.{on_server}{unverified} {}", detail.join("; "), flow::LOOKUP_SKIP_REMEDY),
            )
        } else {
            Cond::new(
                INTERCONNECTION_CONFLICT,
                true,
                "JITDisabledWithMFADependents",
                format!("JIT provisioning is disabled in the spec, but these applications need a local account after this provider: {}.{on_server}{unverified} {}", detail.join("; "), flow::REMEDY),
            )
        }
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
        server_name: observed.server_name.clone().or(old.server_name.clone()),
        jit: observed
            .jit_on_server
            .map(|jit| jit.status_value().to_string())
            .or(old.jit.clone()),
        dependents: observed.dependents,
        conflicts: observed.conflicts,
        jit_required_by: observed.jit_required_by,
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
    apply_status(api, idp, idp.status.as_ref(), &status).await?;
    // Bookkeeping in one patch, after the status holds the id: the Secret version pushed, and the
    // create-pending mark of a create this pass made.
    let mut marks = Vec::new();
    if let Some(v) = &observed.secret_version {
        // Not only when Ready: a pass Block ended (JITDisableBlocked) pushed the secret too, and
        // without the mark every resync of a blocked IdP read and pushed it again.
        if idp.annotations().get(SECRET_VERSION) != Some(v)
            && observed.id.is_some()
            && observed.authenticator_synced
        {
            marks.push((SECRET_VERSION, Some(v.as_str())));
        }
    }
    let pending = idp.annotations().get(CREATE_PENDING).map(String::as_str);
    if managed::pending_done(pending, observed.created, status.id.as_deref()) {
        marks.push((CREATE_PENDING, None));
    }
    annotate_all(api, idp, &marks).await?;
    if let Some((_, Some(v))) = marks.iter().find(|(k, _)| *k == SECRET_VERSION) {
        ctx.memo
            .remember_pushed(&idp.uid().unwrap_or_default(), v.to_string());
    }
    ctx.metrics.set_conflicts(
        "IdentityProvider",
        &ObjectRef::from_obj(idp).to_string(),
        status.conflicts.len(),
    );
    Ok(Action::requeue(jittered(super::resync_of(
        ctx,
        &idp.namespace().unwrap_or_default(),
        &idp.spec.backend_ref.name,
    ))))
}

async fn cleanup(idp: Arc<IdentityProvider>, ctx: &Context) -> Result<Action, Error> {
    let uid = idp.uid().unwrap_or_default();
    let key = super::gate::key(idp.namespace().as_deref(), &idp.name_any());
    ctx.block_gate.forget_jit(&key);
    ctx.memo.forget_pass(&uid);
    ctx.metrics.set_conflicts(
        "IdentityProvider",
        &ObjectRef::from_obj(idp.as_ref()).to_string(),
        0,
    );
    let owned = cleanup::Owned {
        policy: idp.spec.deletion_policy,
        backend_ref: &idp.spec.backend_ref,
        display_name: &idp.spec.display_name,
        id: ctx
            .memo
            .owned_id(&uid, idp.status.as_ref().and_then(|s| s.id.clone())),
    };
    let released = cleanup::release(ctx, idp.as_ref(), owned).await;
    if released.is_ok() {
        ctx.memo.forget(&uid);
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(app: &str) -> ConflictEntry {
        ConflictEntry {
            application: app.into(),
            identity_provider_step: 1,
            authenticator: "totp".into(),
            authenticator_step: 2,
            unverified_script: false,
            lookup_skip: false,
        }
    }

    #[test]
    fn jit_required_by_lists_what_jit_off_would_break_whatever_the_spec_says() {
        use crate::flow::{Flow, FlowOption, Skip};
        let spec: crate::api::IdentityProviderSpec = serde_json::from_value(serde_json::json!({
            "backendRef": {"name": "b"}, "displayName": "Google",
            "google": {"clientID": "c", "clientSecretRef": {"name": "s", "key": "k"}},
            "jit": {"enabled": true},
        }))
        .expect("spec");
        let idp = |n: &str| FlowOption::IdentityProvider(n.into());
        let auth = |n: &str| FlowOption::Authenticator(n.into());
        let mfa = Flow::new(vec![
            vec![auth("BasicAuthenticator"), idp("Google")],
            vec![auth("totp")],
        ]);
        let mut skipped = mfa.clone();
        skipped.skips = vec![Skip::Never, Skip::For(["Google".to_string()].into())];
        let other = Flow::new(vec![vec![idp("Okta")], vec![auth("totp")]]);
        let flows = vec![
            ("Payroll".to_string(), mfa),
            ("Wiki".to_string(), skipped),
            ("Legacy".to_string(), other.clone()),
            (
                "Server only".to_string(),
                Flow::new(vec![vec![idp("Google")], vec![auth("FIDOAuthenticator")]]),
            ),
        ];
        let deps = vec![Dependent {
            name: "Payroll".into(),
            application_ref: Some("payroll".into()),
            id: Some("app-1".into()),
        }];
        let needs = LocalAccountAuthenticators::default();
        // JIT is on in the spec: no conflict, yet Payroll and the server-only app need it; Wiki
        // skips its TOTP step for Google users and Legacy does not offer Google.
        assert!(conflicts(&spec, Jit::Enabled, &flows, &needs).is_empty());
        let got = jit_required_by(&spec, &flows, &needs, &deps);
        let summary: Vec<_> = got
            .iter()
            .map(|r| {
                (
                    r.application.as_str(),
                    r.application_ref.as_deref(),
                    r.identity_provider_step,
                    r.authenticator.as_str(),
                    r.authenticator_step,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("Payroll", Some("payroll"), 1, "totp", 2),
                ("Server only", None, 1, "FIDOAuthenticator", 2),
            ]
        );
    }

    #[test]
    fn a_held_lookup_skip_says_so_and_names_its_remedy() {
        let mut e = entry("Payroll");
        e.lookup_skip = true;
        let held = outcome("idp-1", true, &[e]);
        let c = &held.conditions()[0];
        assert_eq!(c.reason, "JITLookupSkipBlocked");
        assert!(
            c.message.contains("Turn skipForLookupFailure off"),
            "{}",
            c.message
        );
        assert!(c.message.contains("Payroll"), "{}", c.message);
        let off = outcome("idp-1", true, &[entry("Payroll")]);
        assert_eq!(off.conditions()[0].reason, "JITDisableBlocked");
    }

    #[test]
    fn a_pass_is_ready_unless_block_held_the_jit_disable_back() {
        assert!(outcome("idp-1", false, &[entry("Payroll")]).is_ready());
        let held = outcome("idp-1", true, &[entry("Payroll"), entry("Payroll")]);
        let c = &held.conditions()[0];
        assert_eq!(c.reason, "JITDisableBlocked");
        assert!(c.message.contains("application(s) Payroll need"), "{c:?}");
    }
}
