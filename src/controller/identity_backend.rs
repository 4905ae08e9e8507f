//! IdentityBackend reconciler.
//!
//! Steps: build (or reuse) the client from the credentials Secret → check access (a token and one
//! read) → status: type, API URL, granted and missing scopes, Ready. A finalizer holds the backend
//! while IdentityProviders or Applications reference it: their cleanup needs it (and the client the
//! registry cached for it) even when everything is deleted at once.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::conditions::{self, Cond, Outcome};
use super::managed::BACKEND_FINALIZER;
use super::RESYNC_READS_PER_OBJECT;
use super::{apply_status, jittered, publish, registry, secret_hold, Context, Error};
use crate::api::conditions::DEGRADED;
use crate::api::{IdentityBackend, IdentityBackendStatus};
use crate::backend::health::Degraded;
use crate::backend::operation::SCRIPT_SCOPE;
use crate::backend::ratelimit::{drift_plan, DriftPlan, Limit, DEFAULT_DRIFT_PERCENT};
use crate::backend::BackendError;

/// Reconciles one IdentityBackend (apply, or release once nothing references it).
pub async fn reconcile(backend: Arc<IdentityBackend>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = backend.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<IdentityBackend> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, BACKEND_FINALIZER, backend, |event| async {
        match event {
            FinalizerEvent::Apply(b) => apply(b, &api, &ctx).await,
            FinalizerEvent::Cleanup(b) => release(b, &api, &ctx).await,
        }
    })
    .await
    .map_err(Error::from)
}

/// The IdentityProviders and Applications (still holding their finalizer) that use `backend`.
pub fn users(ctx: &Context, backend: &IdentityBackend) -> Vec<String> {
    let (idps, apps) = declared_on(ctx, backend);
    let holds = |f: &[String]| f.iter().any(|f| f == super::FINALIZER);
    idps.into_iter()
        .filter(|i| holds(i.finalizers()))
        .map(|i| format!("IdentityProvider {}", i.name_any()))
        .chain(
            apps.into_iter()
                .filter(|a| holds(a.finalizers()))
                .map(|a| format!("Application {}", a.name_any())),
        )
        .collect()
}

/// The IdentityProviders and Applications declared on `backend` (same namespace and backendRef),
/// whatever their state, from the caches.
fn declared_on(
    ctx: &Context,
    backend: &IdentityBackend,
) -> (
    Vec<Arc<crate::api::IdentityProvider>>,
    Vec<Arc<crate::api::Application>>,
) {
    let ns = backend.namespace();
    let name = backend.name_any();
    let idps = ctx
        .idps
        .state()
        .into_iter()
        .filter(|i| i.namespace() == ns && i.spec.backend_ref.name == name)
        .collect();
    let apps = ctx
        .apps
        .state()
        .into_iter()
        .filter(|a| a.namespace() == ns && a.spec.backend_ref.name == name)
        .collect();
    (idps, apps)
}

/// Why a backend being deleted must wait: the objects that still use it and how to unblock, or
/// `None` when nothing does. Pure.
pub fn deletion_blocked(backend: &str, users: &[String]) -> Option<Outcome> {
    if users.is_empty() {
        return None;
    }
    Some(Outcome::progressing(
        "InUse",
        format!(
            "IdentityBackend {backend} is being deleted but is still used by {}: it stays until they are gone, because their cleanup deletes their server objects through it. \
             To unblock, delete them (set deletionPolicy: Orphan on them first to leave their server objects in place)",
            users.join(", ")
        ),
    ))
}

/// Keeps the backend while anything uses it, and says so on its status; then forgets its client
/// and lets it go.
async fn release(
    backend: Arc<IdentityBackend>,
    api: &Api<IdentityBackend>,
    ctx: &Context,
) -> Result<Action, Error> {
    // "Nothing uses it" is known only once this process has listed them: a process that starts
    // during a namespace delete reconciles the backend before its other caches are filled, and
    // releasing it (and its Secrets) then would leave their cleanup nothing to log in with.
    // Polled once, never awaited (see `run::fair` on parked waiters).
    use futures::FutureExt;
    for (kind, ready) in [
        (
            "IdentityProvider",
            ctx.idps.wait_until_ready().now_or_never(),
        ),
        ("Application", ctx.apps.wait_until_ready().now_or_never()),
    ] {
        if !matches!(ready, Some(Ok(()))) {
            return Err(Error::CacheNotReady(kind));
        }
    }
    let users = users(ctx, &backend);
    if let Some(outcome) = deletion_blocked(&backend.name_any(), &users) {
        let old = backend.status.clone().unwrap_or_default();
        let status = IdentityBackendStatus {
            conditions: conditions::merge(
                &old.conditions,
                &outcome.conditions(),
                conditions::MANAGED,
                backend.metadata.generation,
                &now(),
            ),
            ..old.clone()
        };
        apply_status(api, backend.as_ref(), Some(&old), &status).await?;
        let message = outcome.conditions()[0].message.clone();
        return Err(Error::Blocked {
            reason: "InUse",
            message,
        });
    }
    // Nothing uses it any more: its Secrets may go (unless another backend still needs them).
    hold_secrets(ctx, &backend, false, Some(&backend.name_any())).await?;
    ctx.registry
        .forget(&ObjectRef::from_obj(backend.as_ref()))
        .await;
    Ok(Action::await_change())
}

async fn apply(
    backend: Arc<IdentityBackend>,
    api: &Api<IdentityBackend>,
    ctx: &Context,
) -> Result<Action, Error> {
    let mut status = IdentityBackendStatus {
        observed_generation: backend.metadata.generation,
        backend_type: Some(
            if backend.spec.asgardeo.is_some() {
                "Asgardeo"
            } else {
                "WSO2IdentityServer"
            }
            .into(),
        ),
        api_url: registry::base_url(&backend).ok(),
        ..Default::default()
    };
    let built = ctx.registry.client_for(&ctx.client, backend.as_ref()).await;
    // Before the server is asked anything: from here on, cleanup may need these Secrets.
    hold_secrets(ctx, &backend, built.is_ok(), None).await?;
    let (outcome, requeue) = match built {
        Err(e) => (
            Outcome::Stalled {
                reason: e.reason().into(),
                message: format!("{e}: create it or fix credentialsSecretRef (keys client-id and client-secret by default)"),
            },
            ctx.resync,
        ),
        Ok(client) => match client.check_access().await {
            Ok(info) => {
                status.granted_scopes = info.granted_scopes.clone();
                // The client compares what it asked for (backend::operation::Operation::needed_scopes)
                // with the token response's granted `scope`.
                status.missing_scopes = info.missing_scopes.clone();
                // The script scope is asked for but only Applications with skipFor need it: its
                // absence is listed, not a reason to stop the whole backend.
                let (optional, required): (Vec<&String>, Vec<&String>) = status
                    .missing_scopes
                    .iter()
                    .partition(|s| s.as_str() == SCRIPT_SCOPE);
                let outcome = if required.is_empty() {
                    let note = if optional.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (not granted: {SCRIPT_SCOPE}; Applications with skipFor fail until it is authorized)"
                        )
                    };
                    Outcome::Ready(format!("logged in to {}{note}", info.tenant_url))
                } else {
                    let names: Vec<&str> = required.iter().map(|s| s.as_str()).collect();
                    Outcome::Stalled {
                        reason: "MissingScopes".into(),
                        message: format!(
                            "the server did not grant {}: authorize them for the M2M application on the server",
                            names.join(", ")
                        ),
                    }
                };
                (outcome, jittered(ctx.resync))
            }
            Err(e) => {
                let (reason, retry) = match &e {
                    BackendError::Unauthorized { .. } => ("CredentialsRejected", false),
                    BackendError::Forbidden { .. } => ("MissingScopes", false),
                    e if e.is_retryable() => ("ServerUnavailable", true),
                    _ => ("ServerError", false),
                };
                let message = format!("checking access failed: {e}");
                if retry {
                    (Outcome::Progressing { reason: reason.into(), message }, Duration::from_secs(15))
                } else {
                    (Outcome::Stalled { reason: reason.into(), message }, ctx.resync)
                }
            }
        },
    };
    // Read after check_access, which may have been the call that timed out.
    let degraded = ctx
        .registry
        .health(&ObjectRef::from_obj(backend.as_ref()))
        .degraded();
    let mut wanted = outcome.conditions();
    wanted.extend(degraded_condition(degraded.as_ref()));
    let requeue = match &degraded {
        Some(d) => requeue.max(d.backoff),
        None => requeue,
    };
    let old = backend.status.clone().unwrap_or_default();
    status.conditions = conditions::merge(
        &old.conditions,
        &wanted,
        conditions::MANAGED,
        backend.metadata.generation,
        &now(),
    );
    let was_ready = conditions::is_true(&old.conditions, crate::api::conditions::READY);
    if was_ready != outcome.is_ready() || old.conditions.is_empty() {
        let (t, reason) = if outcome.is_ready() {
            (EventType::Normal, "Ready")
        } else {
            (EventType::Warning, "NotReady")
        };
        let note = outcome.conditions()[0].message.clone();
        publish(ctx, backend.as_ref(), t, reason, "CheckAccess", note).await;
    }
    fit_drift_checks(ctx, backend.as_ref()).await;
    apply_status(api, backend.as_ref(), backend.status.as_ref(), &status).await?;
    Ok(Action::requeue(requeue))
}

/// Fits one round of drift checks of the backend's objects in its budget share: records the
/// objects' drift-check interval and says so with an Event when it has to be longer than the
/// operator's resync (and when it no longer has to).
async fn fit_drift_checks(ctx: &Context, backend: &IdentityBackend) {
    let objects = {
        let (idps, apps) = declared_on(ctx, backend);
        idps.len() + apps.len()
    };
    let limit = registry::limit(backend);
    let percent = backend
        .spec
        .drift_check_budget_percent
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or(DEFAULT_DRIFT_PERCENT);
    let plan = drift_plan(
        objects,
        RESYNC_READS_PER_OBJECT,
        limit.per_minute(),
        percent,
        ctx.resync,
    );
    let key = ObjectRef::from_obj(backend);
    let before = ctx.registry.set_drift_interval(&key, plan.interval);
    if let Some((t, reason, note)) =
        drift_notice(before, &plan, ctx.resync, objects, limit, percent)
    {
        if t == EventType::Warning {
            tracing::warn!(backend = %key, objects, interval = ?plan.interval, resync = ?ctx.resync, "{note}");
        }
        publish(ctx, backend, t, reason, "FitDriftChecks", note).await;
    }
}

/// The Event to publish when the drift-check interval of a backend's objects changes side of the
/// operator's resync (pure): a Warning when it becomes longer (the declared objects cannot be
/// checked within the resync at the budget share), a Normal one when they fit again; nothing
/// otherwise, so a backend over budget warns once, not on every pass.
pub fn drift_notice(
    before: Option<Duration>,
    plan: &DriftPlan,
    resync: Duration,
    objects: usize,
    limit: Limit,
    percent: u32,
) -> Option<(EventType, &'static str, String)> {
    let was_stretched = before.is_some_and(|b| b > resync);
    let per_minute = limit.per_minute().unwrap_or(0);
    match (was_stretched, plan.stretched) {
        (false, true) => Some((
            EventType::Warning,
            DRIFT_OVER_BUDGET,
            format!(
                "{objects} objects × {RESYNC_READS_PER_OBJECT} reads cannot be drift-checked within the resync interval ({}s) at {percent}% of the budget of {per_minute} requests per minute: one round takes {}s, so they are checked every {}s instead. Raise maxRequestsPerMinute (below the server's quota) or driftCheckBudgetPercent, or spread the objects over more backends",
                resync.as_secs(),
                plan.round.as_secs(),
                plan.interval.as_secs()
            ),
        )),
        (true, false) => Some((
            EventType::Normal,
            DRIFT_WITHIN_BUDGET,
            format!(
                "{objects} objects are drift-checked within the resync interval ({}s) again",
                resync.as_secs()
            ),
        )),
        _ => None,
    }
}

/// Event reason: the declared objects cannot be drift-checked within the resync at the budget share.
pub const DRIFT_OVER_BUDGET: &str = "DriftChecksOverBudget";
/// Event reason: they can again.
pub const DRIFT_WITHIN_BUDGET: &str = "DriftChecksWithinBudget";

/// The `Degraded` condition while the backend's server misbehaves, none otherwise. Pure.
/// Holds the Secrets this backend's client was just built from (`built`) and releases those no
/// backend of the namespace needs any more (see [`secret_hold`]); `except` is the backend being
/// released. Reads the Secret cache; writes only what changes.
async fn hold_secrets(
    ctx: &Context,
    backend: &IdentityBackend,
    built: bool,
    except: Option<&str>,
) -> Result<(), Error> {
    let ns = backend.namespace().ok_or(Error::NoNamespace)?;
    let backends: Vec<Arc<IdentityBackend>> = ctx
        .backends
        .state()
        .into_iter()
        .filter(|b| b.namespace().as_deref() == Some(ns.as_str()))
        .collect();
    let mut needed = secret_hold::needed_by(
        backends.iter().map(|b| b.as_ref()),
        |b| !users(ctx, b).is_empty(),
        except,
    );
    let hold = if built {
        secret_hold::secrets_of(backend)
    } else {
        Default::default()
    };
    if except.is_none() {
        // The cache may not show this backend yet (or its new spec).
        needed.extend(secret_hold::secrets_of(backend));
    }
    let secrets = ctx.registry.secrets_in(&ns);
    let states: Vec<_> = secrets.iter().map(|s| secret_hold::state(s)).collect();
    if except.is_none() {
        // Someone deleted a Secret this backend still uses: say why it stays Terminating.
        let mine = secret_hold::secrets_of(backend);
        for s in states.iter().filter(|s| s.held && s.deleting) {
            if mine.contains(s.name) {
                let note = format!(
                    "Secret {} is being deleted but is kept (finalizer {}) while IdentityBackend {} uses it: the cleanup of its IdentityProviders and Applications logs in with it. \
                     To let it go, point credentialsSecretRef (or caBundleSecretRef) at another Secret, or delete the IdentityBackend",
                    s.name,
                    secret_hold::SECRET_FINALIZER,
                    backend.name_any()
                );
                publish(
                    ctx,
                    backend,
                    EventType::Warning,
                    "SecretKept",
                    "HoldSecret",
                    note,
                )
                .await;
            }
        }
    }
    for change in secret_hold::plan(&states, &needed, &hold) {
        let name = match &change {
            secret_hold::HoldChange::Hold(n) | secret_hold::HoldChange::Release(n) => n,
        };
        if let Some(secret) = secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
        {
            secret_hold::apply(&ctx.client, &ns, secret, &change).await?;
        }
    }
    Ok(())
}

pub fn degraded_condition(degraded: Option<&Degraded>) -> Option<Cond> {
    let d = degraded?;
    Some(Cond::new(
        DEGRADED,
        true,
        d.what.reason(),
        // No counter or delay in the text: it would change, and be written, on every pass.
        format!(
            "{}; until it answers well again this backend's objects get one reconcile at a time and retry with a growing backoff (up to {:?}); other backends are not affected",
            d.detail,
            crate::backend::health::DEGRADED_BACKOFF_MAX
        ),
    ))
}

/// The current time for condition transitions.
pub fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_in_use_says_who_uses_it_and_how_to_unblock() {
        let users = vec![
            "IdentityProvider google".to_string(),
            "Application payroll".to_string(),
        ];
        let Some(outcome) = deletion_blocked("asgardeo", &users) else {
            panic!("in use: the deletion waits");
        };
        assert!(!outcome.is_ready());
        let ready = &outcome.conditions()[0];
        assert_eq!(ready.reason, "InUse");
        assert!(
            ready.message.contains("IdentityProvider google"),
            "{ready:?}"
        );
        assert!(ready.message.contains("Application payroll"), "{ready:?}");
        assert!(ready.message.contains("To unblock"), "{ready:?}");
    }

    #[test]
    fn a_drift_interval_past_the_resync_warns_once_and_its_recovery_is_said() {
        let m5 = Duration::from_secs(300);
        let over = drift_plan(6000, 3, Some(150), 50, m5);
        let within = drift_plan(10, 3, Some(150), 50, m5);
        let limit = Limit::PerMinute(150);
        let cases = [
            // (before, plan, event)
            (None, &over, Some((EventType::Warning, DRIFT_OVER_BUDGET))),
            (
                Some(m5),
                &over,
                Some((EventType::Warning, DRIFT_OVER_BUDGET)),
            ),
            (Some(over.interval), &over, None),
            (
                Some(over.interval),
                &within,
                Some((EventType::Normal, DRIFT_WITHIN_BUDGET)),
            ),
            (None, &within, None),
            (Some(m5), &within, None),
        ];
        for (before, plan, want) in cases {
            let got = drift_notice(before, plan, m5, 6000, limit, 50);
            assert_eq!(
                got.as_ref().map(|(t, r, _)| (*t, *r)),
                want,
                "{before:?} {plan:?}"
            );
        }
        let (_, _, note) = drift_notice(None, &over, m5, 6000, limit, 50).expect("warns");
        for part in [
            "6000 objects",
            "14400s",
            "150 requests per minute",
            "maxRequestsPerMinute",
        ] {
            assert!(note.contains(part), "{part} in {note}");
        }
    }

    #[test]
    fn a_backend_nothing_uses_goes() {
        assert_eq!(deletion_blocked("asgardeo", &[]), None);
    }
}
