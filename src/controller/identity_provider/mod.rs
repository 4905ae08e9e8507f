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

mod dependents;
mod report;
mod secret;

pub use dependents::live_flows;
use dependents::*;
use report::*;
use secret::*;

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
mod tests;
