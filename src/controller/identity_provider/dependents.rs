//! Step 5 of the IdentityProvider pass: its dependents (the applications whose flows offer it,
//! live from the server or from the dependents' own last passes), `jitRequiredBy`, and the
//! conflicts the rule finds; and the dependents-only pass that rebuilds them from the caches.

use super::*;

/// The conflict rule over the dependents' live flows, for this IdP only. Pure.
pub(super) fn conflicts(
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
pub(super) fn jit_required_by(
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

/// The applications whose flows offer this IdP, for the status (declared in the cluster, from the
/// index, or existing only on the server) and the flows of every connected application for the
/// conflict rule: **live** ones with `live` (Block decides on what the server runs, not on flows
/// that resolve in the cluster: an Application whose other IdP was deleted still has its flow on
/// the server); else those a declared dependent's last pass left there, when known.
pub(super) async fn dependents(
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
pub(super) fn merge_dependents(
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
pub(super) async fn dependents_only(
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
pub(super) async fn connected(
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
                let flow = match &flow {
                    Some((f, script)) => {
                        let read =
                            translate::ScriptedFlow::read(&f.steps, script.as_deref(), needs_local);
                        let q = read.question.clone();
                        crate::controller::proofs::prove_ahead(
                            q,
                            crate::controller::proofs::BUDGET,
                        )
                        .await;
                        Some(read.rule(needs_local))
                    }
                    None => None,
                };
                (name, flow)
            }
            None => match client.get_application(&app_id).await {
                Ok(app) => {
                    let q = translate::proof_question(
                        &app.login_flow.steps,
                        app.login_flow.script.as_deref(),
                        needs_local,
                    );
                    crate::controller::proofs::prove_ahead(q, crate::controller::proofs::BUDGET)
                        .await;
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
pub(super) fn rule_flow(
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
