//! Step 6 of the IdentityProvider pass: status, conditions, Events and metrics.

use super::*;

/// The outcome of a pass that reached the server. Pure.
pub(super) fn outcome(id: &str, blocked: bool, conflicts: &[ConflictEntry]) -> Outcome {
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

pub(super) fn names(conflicts: &[ConflictEntry]) -> String {
    let mut apps: Vec<&str> = conflicts.iter().map(|c| c.application.as_str()).collect();
    apps.dedup();
    format!("application(s) {}", apps.join(", "))
}

pub(super) async fn finish(
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
    Ok(Action::requeue(jittered(crate::controller::resync_of(
        ctx,
        &idp.namespace().unwrap_or_default(),
        &idp.spec.backend_ref.name,
    ))))
}
