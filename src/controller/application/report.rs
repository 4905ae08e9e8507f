//! Step 6 of the Application pass: its status (conflicts, conditions, the outcome's message),
//! Events and metrics; and the status-only pass that recomputes it from the cache.

use super::block::held_why;
use super::*;

/// The conflict rule for the status, against each IdP's JIT as declared and as on the server,
/// named by the IdentityProvider objects. Pure.
pub(super) fn status_conflicts(
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
pub(super) async fn status_only(
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
        crate::controller::proofs::prove_ahead(question, crate::controller::proofs::BUDGET).await;
        seen.conflicts = status_conflicts(app, &idps, &needs_local, f, script.as_deref(), &jit);
    }
    let ready = Outcome::Ready(ready_message(&id, &app.spec));
    Some(finish(ctx, api, app, seen, ready).await)
}

/// The outcome of a pass that reached the server: a held-back flow, then a foreign credentials
/// Secret, else Ready. Pure.
pub(super) fn outcome(
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

/// Ready's message: the application matches, and which `skipFor` entries skip nobody (the spec is
/// applied, but a typo there would otherwise go unnoticed while users still get the step).
pub(super) fn ready_message(id: &str, spec: &ApplicationSpec) -> String {
    let mut message = format!("application {id} matches the spec");
    for unused in translate::unused_skips(spec) {
        message.push_str("; ");
        message.push_str(&unused);
    }
    message
}

pub(super) async fn finish(
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
        jittered(crate::controller::resync_of(
            ctx,
            &app.namespace().unwrap_or_default(),
            &app.spec.backend_ref.name,
        ))
    } else {
        std::time::Duration::from_secs(30)
    };
    Ok(Action::requeue(requeue))
}
