//! IdentityBackend reconciler.
//!
//! Steps: build (or reuse) the client from the credentials Secret → check access (a token and one
//! read) → status: type, API URL, granted and missing scopes, Ready. No finalizer: nothing outside
//! Kubernetes belongs to a backend.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::conditions::{self, Outcome};
use super::{apply_status, jittered, publish, registry, Context, Error};
use crate::api::{IdentityBackend, IdentityBackendStatus};
use crate::backend::BackendError;

/// Reconciles one IdentityBackend.
pub async fn reconcile(backend: Arc<IdentityBackend>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = backend.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<IdentityBackend> = Api::namespaced(ctx.client.clone(), &ns);
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
    let (outcome, requeue) = match ctx.registry.client_for(&ctx.client, &backend).await {
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
                let outcome = if status.missing_scopes.is_empty() {
                    Outcome::Ready(format!("logged in to {}", info.tenant_url))
                } else {
                    Outcome::Stalled {
                        reason: "MissingScopes".into(),
                        message: format!(
                            "the server did not grant {}: authorize them for the M2M application on the server",
                            status.missing_scopes.join(", ")
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
    let old = backend.status.clone().unwrap_or_default();
    status.conditions = conditions::merge(
        &old.conditions,
        &outcome.conditions(),
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
        publish(&ctx, backend.as_ref(), t, reason, "CheckAccess", note).await;
    }
    apply_status(&api, backend.as_ref(), backend.status.as_ref(), &status).await?;
    Ok(Action::requeue(requeue))
}

/// The current time for condition transitions.
pub fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now())
}
