//! The reconcilers. One module per kind, each written as steps (see its `//!` header); this module
//! holds what they share: the [`Context`], the error type, status and event helpers. `crate::run` wires them together.

/// Runs one step of an apply: a step returns `Result<Result<T, Outcome>, Error>`, where
/// `Ok(Err(outcome))` ends the pass with that outcome (a missing reference, an invalid spec) and
/// `Err` is a failure the report step turns into `Ready=False`.
/// Inside a step (a function that itself returns a `Step`), `step!(inner: ...)` passes the outcome on.
macro_rules! step {
    (inner: $e:expr) => {
        match $e? {
            Ok(v) => v,
            Err(outcome) => return Ok(Err(outcome)),
        }
    };
    ($e:expr) => {
        match $e? {
            Ok(v) => v,
            Err(outcome) => return Ok(outcome),
        }
    };
}

pub mod application;
pub mod cleanup;
pub mod conditions;
pub mod facts;
#[cfg(test)]
mod fake;
pub mod gate;
pub mod identity_backend;
pub mod identity_provider;
pub mod kind;
pub mod managed;
pub mod marker;
pub mod memo;
pub mod proofs;
pub mod registry;
pub mod secret_hold;
pub mod translate;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::{Application, IdentityBackend, IdentityProvider};
use crate::backend::BackendError;
use crate::flow::DependencyIndex;
use crate::telemetry::Metrics;

pub use registry::BackendRegistry;

pub use managed::{FINALIZER, MANAGER};

/// What every reconcile needs.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Cached IdentityBackends.
    pub backends: Store<IdentityBackend>,
    /// Cached IdentityProviders.
    pub idps: Store<IdentityProvider>,
    /// Cached Applications.
    pub apps: Store<Application>,
    /// One identity-server client per backend (one token, one connection pool).
    pub registry: BackendRegistry,
    /// Application → IdentityProvider edges, both ways, so a JIT change reaches exactly its dependents.
    pub index: Mutex<DependencyIndex<ObjectRef<Application>, ObjectRef<IdentityProvider>>>,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// How often the server is checked for drift when nothing changes in the cluster.
    pub resync: Duration,
    /// Held around every change that Block guards (an IdP's JIT disable, an Application's flow
    /// push), each checked against the server's live state inside it: an IdP and an Application
    /// changed in one commit cannot both pass Block by each reading the other's old state. One lock
    /// per IdP (see [`gate`]), so unrelated objects never wait for each other.
    pub block_gate: gate::BlockGate,
    /// What this process remembers about each object: its last successful pass (so that a
    /// reconcile with no new input skips the server until the resync), what it wrote that the
    /// cache may not show yet, and the facts the other kind's watch last reacted to.
    pub memo: memo::Memo,
    /// Reconciles at once per kind (`--concurrency`): what each backend's share of the slots is
    /// taken from (see [`registry::slot_share`]).
    pub concurrency: usize,
}

/// Why a reconcile failed. Messages name the object and never contain secret values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The identity server call failed.
    #[error("{context}: {source}")]
    Backend {
        /// What the operator was doing.
        context: String,
        /// The backend error (server code and traceId included, no secrets).
        source: BackendError,
    },
    /// The finalizer helper failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// An invariant of the operator broke (a cache changed under a reconcile); retried.
    #[error("internal: {0}")]
    Internal(String),
    /// A decision needs caches this process has not filled yet (it just started): retried soon.
    #[error("waiting for the {0} cache to fill")]
    CacheNotReady(&'static str),
    /// The object is missing a namespace (the kinds are namespaced; this is a bug or bad input).
    #[error("object has no namespace")]
    NoNamespace,
    /// The reconcile cannot go on until a user acts (a refused delete, an unusable backend during
    /// deletion). Returned as an error so that the finalizer stays; the message says how to unblock.
    #[error("{message}")]
    Blocked {
        /// Condition reason.
        reason: &'static str,
        /// What happened and how to unblock (may carry the server's code, never secrets).
        message: String,
    },
}

impl Error {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Backend { source, .. } => source.metric_label(),
            Error::Finalizer(_) => "finalizer",
            Error::Internal(_) => "internal",
            Error::CacheNotReady(_) => "cache_not_ready",
            Error::NoNamespace => "no_namespace",
            Error::Blocked { .. } => "blocked",
        }
    }
}

/// Wraps a backend error with what the operator was doing.
pub fn backend_err(context: impl Into<String>) -> impl FnOnce(BackendError) -> Error {
    move |source| Error::Backend {
        context: context.into(),
        source,
    }
}

/// The drift-check interval of the objects on backend `backend` in namespace `ns`: the operator's
/// resync, or longer when one round of them does not fit in the backend's budget share.
pub fn resync_of(ctx: &Context, ns: &str, backend: &str) -> Duration {
    ctx.registry
        .drift_interval(&ObjectRef::new(backend).within(ns), ctx.resync)
}

/// The requeue delay for the next drift check: the resync interval with ±10 % jitter, so thousands
/// of objects created together do not poll the server together forever.
pub fn jittered(resync: Duration) -> Duration {
    use rand::Rng;
    let spread = resync.as_millis() as u64 / 10;
    let offset = rand::rng().random_range(0..=spread.saturating_mul(2).max(1));
    Duration::from_millis((resync.as_millis() as u64).saturating_sub(spread) + offset)
}

/// Writes `status` to the status subresource with server-side apply, unless it equals `current`.
/// Returns whether a write happened.
pub async fn apply_status<K, S>(
    api: &Api<K>,
    obj: &K,
    current: Option<&S>,
    status: &S,
) -> Result<bool, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(false);
    }
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(true)
}

/// Sets (or, with `None`, removes) one annotation of `obj` with a merge patch: bookkeeping such as
/// the create-pending mark, never the spec.
pub async fn annotate<K>(api: &Api<K>, obj: &K, key: &str, value: Option<&str>) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    annotate_all(api, obj, &[(key, value)]).await
}

/// Sets or removes several annotations of `obj` in one merge patch (none: no request).
pub async fn annotate_all<K>(
    api: &Api<K>,
    obj: &K,
    changes: &[(&str, Option<&str>)],
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    if changes.is_empty() {
        return Ok(());
    }
    let annotations: serde_json::Map<String, serde_json::Value> = changes
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
        .collect();
    let patch = serde_json::json!({"metadata": {"annotations": annotations}});
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

impl From<kube::runtime::finalizer::Error<Error>> for Error {
    /// Apply and cleanup errors are ours; the finalizer's own (patch) failures are wrapped.
    fn from(e: kube::runtime::finalizer::Error<Error>) -> Self {
        match e {
            kube::runtime::finalizer::Error::ApplyFailed(e)
            | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
            other => Error::Finalizer(other.to_string()),
        }
    }
}

/// Publishes an Event on `obj`; a failure to publish is logged, never fatal.
pub async fn publish<K>(
    ctx: &Context,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}

/// Reads a Secret in `ns`; `Ok(None)` when it does not exist.
pub async fn read_secret(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<Option<KubeSecret>, Error> {
    Ok(Api::<KubeSecret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?)
}

/// One key of a Secret as text (`data`, or `stringData` on objects not yet stored).
pub fn secret_value(secret: &KubeSecret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key).cloned())
        })
}

/// The label a Secret must carry before the operator sends any of its values to an identity
/// server (issue 24: confused deputy). Whoever sets it consents, for everyone who can create
/// IdentityBackends or IdentityProviders in the namespace, to that use of the Secret. Setting a
/// label needs `patch` on the Secret, and a patch response returns the whole Secret, so the label
/// can only be set by someone who could read the Secret anyway: a user who cannot read a Secret
/// cannot make the operator send it to a host of their choosing.
pub const USE_LABEL: &str = "identity-operator.io/use";
/// [`USE_LABEL`] value: the Secret holds an IdentityBackend's M2M credentials.
pub const USE_BACKEND_CREDENTIALS: &str = "backend-credentials";
/// [`USE_LABEL`] value: the Secret holds an IdentityProvider's OAuth client secret.
pub const USE_IDP_CLIENT_SECRET: &str = "identity-provider-client-secret";

/// Whether `secret` is labelled for `use_` ([`USE_LABEL`]). Pure.
pub fn consented(secret: &KubeSecret, use_: &str) -> bool {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(USE_LABEL))
        .is_some_and(|v| v == use_)
}

/// The message when a referenced Secret lacks the consent label: what was (not) done and the exact
/// command that fixes it. Names only, never values.
pub fn consent_message(secret: &str, field: &str, use_: &str) -> String {
    format!(
        "Secret {secret} ({field}) is not labelled {USE_LABEL}={use_}, so none of its values was sent to the identity server. If it is meant for this, label it: kubectl label secret {secret} {USE_LABEL}={use_}"
    )
}

/// Builds the event recorder with this operator's identity.
pub fn recorder(client: Client) -> Recorder {
    let instance = std::env::var("POD_NAME").ok();
    Recorder::new(
        client,
        Reporter {
            controller: MANAGER.into(),
            instance,
        },
    )
}

/// The IdentityProviders an application's flow references: the facts the Application controller,
/// its memo, the dependency index and the webhook all key on.
pub fn referenced_idps(app: &Application) -> Vec<ObjectRef<IdentityProvider>> {
    let ns = app.namespace().unwrap_or_default();
    let mut out: Vec<ObjectRef<IdentityProvider>> = app
        .spec
        .login_flow
        .iter()
        .flat_map(|f| &f.steps)
        .flat_map(|s| &s.options)
        .filter_map(|o| o.identity_provider_ref.as_ref())
        .map(|r| ObjectRef::new(&r.name).within(&ns))
        .collect();
    out.sort_by_key(|r| r.name.clone());
    out.dedup();
    out
}

/// Identity-server requests one resync pass of one object costs. Measured (BENCHMARKS.md, steady
/// state): an Application 3 (itself twice, its OIDC settings), an IdentityProvider ~4, 2.0–3.3 per
/// object on average.
pub const RESYNC_READS_PER_OBJECT: u32 = 3;
