//! Block on the Application's side: the IdPs' JIT as the rule must see it (declared, on the
//! server, or as recorded inside the gate), taken under their Block gates, and the flow change
//! [`plan_flow`] lets through or holds back.

use super::*;

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

/// The Block gates of the flow's IdentityProviders, shared with other Applications.
pub(super) async fn lock_gate(
    ctx: &Context,
    idps: &HashMap<String, Arc<IdentityProvider>>,
) -> crate::controller::gate::Held {
    let keys = idps
        .values()
        .map(|i| crate::controller::gate::key(i.namespace().as_deref(), &i.name_any()));
    ctx.block_gate.lock_shared(keys).await
}

/// The IdPs' live JIT, read only where a flow is about to be pushed: here for a first create (no
/// id recorded). A pass that pushes nothing needs no live check, and the status rule reads the
/// IdPs' JIT as their own reconciles last saw it on the server.
pub(super) async fn first_create_jit(pass: &Pass<'_>) -> Result<Option<LiveJit>, Error> {
    match pass.app.status.as_ref().and_then(|s| s.id.as_ref()) {
        None => Ok(Some(live_jit(pass.ctx, pass.client, pass.idps).await?)),
        Some(_) => Ok(None),
    }
}

/// The flow to send with a create, and the conflicts Block holds it back for. A recreate after a
/// server-side delete (`live` unknown) is created without the flow, which [`sync_app`] then pushes
/// after a live check.
pub(super) fn plan_create_flow(
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

/// Why an IdP's users can lack a local account, as the Application's messages say it.
pub(super) fn held_why(lookup_skip: bool) -> &'static str {
    if lookup_skip {
        "JIT provisioning skipped on lookup failure (skipForLookupFailure with accountLookup: users that no local account matches get none)"
    } else {
        "JIT provisioning off"
    }
}

/// Each referenced IdP's JIT as the rule sees it, and the server names of those under Block.
pub(super) type LiveJit = (HashMap<String, Jit>, BTreeSet<String>);

/// Each referenced IdP's JIT as the cache shows it (declared in its spec, and on the server as its
/// status last recorded), for the status rule of a pass that pushes no flow.
pub(super) fn cached_jit(idps: &HashMap<String, Arc<IdentityProvider>>) -> LiveJit {
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
pub(super) fn effective_jit(declared: Jit, on_server: Jit) -> Jit {
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
pub(super) async fn live_jit(
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
                    .recorded_jit(&crate::controller::gate::key(Some(&ns), name), id)
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
