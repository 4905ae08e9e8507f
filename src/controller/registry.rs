//! One identity-server client per IdentityBackend, rebuilt only when the backend's spec or its
//! credentials Secret changes. This is what keeps the operator at one token per backend instead of a
//! login per reconcile.
//!
//! It also keeps, per backend, what makes backends independent of each other (issue 24 item 4):
//! the backend's [`Health`] (timeouts and exceeded caps its client saw) and its share of the
//! reconcile slots ([`BackendRegistry::enter`]). The controllers' slots are shared by every
//! backend, so without a share a tarpit server would hold all of them while its requests time out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use tokio::sync::Mutex;

use super::{read_secret, secret_value};
use crate::api::IdentityBackend;
use crate::backend::asgardeo::{AsgardeoClient, AsgardeoConfig, Target};
use crate::backend::health::Health;
use crate::backend::ratelimit::{Budget, Limit};
use crate::backend::{BackendMetrics, IdentityServer, Secret};
use crate::flow::LocalAccountAuthenticators;

/// Why no client could be built for a backend. Each variant names what the user must fix.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The credentials Secret does not exist.
    #[error("Secret {0} (credentialsSecretRef) not found")]
    SecretNotFound(String),
    /// A key is missing in the Secret.
    #[error("Secret {secret} has no key {key}")]
    SecretKeyMissing {
        /// The Secret.
        secret: String,
        /// The key.
        key: String,
    },
    /// The credentials Secret lacks the consent label ([`super::USE_LABEL`]): nothing was sent.
    #[error("{}", super::consent_message(.0, "credentialsSecretRef", super::USE_BACKEND_CREDENTIALS))]
    NotConsented(String),
    /// The client could not be configured (bad URL, unreadable CA bundle).
    #[error("{0}")]
    Config(String),
    /// Reading from Kubernetes failed.
    #[error("kubernetes API: {0}")]
    Kube(String),
}

impl ResolveError {
    /// The condition reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            ResolveError::SecretNotFound(_) | ResolveError::SecretKeyMissing { .. } => {
                "CredentialsSecretNotFound"
            }
            ResolveError::NotConsented(_) => "SecretNotConsented",
            ResolveError::Config(_) => "InvalidBackendConfig",
            ResolveError::Kube(_) => "KubernetesError",
        }
    }
}

/// A client with the fingerprint of the spec and Secrets it was built from.
/// A built client and what it was built from: the fingerprint of the inputs as the caches show them
/// (backend uid and generation, the Secrets' resourceVersions) and a hash of the values it took
/// from the Secrets. A Secret whose metadata alone changed (a label, the operator's own finalizer,
/// see [`super::secret_hold`]) has a new resourceVersion but the same values: the client is kept,
/// so no new login is made.
struct Cached {
    fingerprint: String,
    spec: String,
    values: u64,
    client: Arc<dyn IdentityServer>,
}

/// Which controller a reconcile slot belongs to: each has its own `--concurrency` slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotKind {
    /// The IdentityProvider controller.
    IdentityProvider,
    /// The Application controller.
    Application,
}

/// Reconciles running per (controller, backend).
type InFlight = HashMap<(SlotKind, ObjectRef<IdentityBackend>), usize>;

/// A reconcile slot of one backend, held for the whole reconcile; given back on drop.
pub struct Slot {
    in_flight: Arc<std::sync::Mutex<InFlight>>,
    key: (SlotKind, ObjectRef<IdentityBackend>),
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

/// How many of a controller's `concurrency` slots one backend may hold at once. Pure.
/// A degraded backend (timeouts, oversized answers) gets one; with several backends a healthy one
/// gets half (so a backend that turns into a tarpit can take at most half before it is seen to
/// be degraded, and then one); a backend alone in its scope gets them all, as before. `backends`
/// is 0 while the backends' cache is not filled yet: then the count is unknown, and half it is.
pub fn slot_share(concurrency: usize, backends: usize, degraded: bool) -> usize {
    let concurrency = concurrency.max(1);
    if degraded {
        1
    } else if backends == 1 {
        concurrency
    } else {
        (concurrency / 2).max(1)
    }
}

/// Each backend's budget with the limit it was made for.
type Budgets = HashMap<ObjectRef<IdentityBackend>, (Limit, Arc<Budget>)>;

/// The cache of clients, keyed by backend.
pub struct BackendRegistry {
    clients: Mutex<HashMap<ObjectRef<IdentityBackend>, Cached>>,
    secrets: Store<PartialObjectMeta<KubeSecret>>,
    metrics: Arc<BackendMetrics>,
    /// Per backend, kept when its client is rebuilt (a new Secret does not make a tarpit healthy).
    health: std::sync::Mutex<HashMap<ObjectRef<IdentityBackend>, Arc<Health>>>,
    /// Reconciles in flight per controller and backend (see [`BackendRegistry::enter`]).
    in_flight: Arc<std::sync::Mutex<InFlight>>,
    /// Timeout of one request attempt of every client built here (`--backend-request-timeout`).
    request_timeout: Duration,
    /// The drift-check interval of each backend's objects, as its last reconcile fitted it in the
    /// backend's budget (see [`BackendRegistry::drift_interval`]).
    drift: std::sync::Mutex<HashMap<ObjectRef<IdentityBackend>, Duration>>,
    /// Each backend's request budget with the limit it was made for, kept across client rebuilds
    /// while the limit stays the same.
    budgets: std::sync::Mutex<Budgets>,
}

impl BackendRegistry {
    /// A registry that reads Secret versions from `secrets` (a metadata-only cache); every client
    /// it builds gives one request attempt `request_timeout`.
    pub fn new(
        secrets: Store<PartialObjectMeta<KubeSecret>>,
        metrics: Arc<BackendMetrics>,
        request_timeout: Duration,
    ) -> Self {
        Self {
            clients: Mutex::default(),
            secrets,
            metrics,
            health: Default::default(),
            in_flight: Default::default(),
            request_timeout,
            drift: Default::default(),
            budgets: Default::default(),
        }
    }

    /// The budget of `backend` for `limit`: the one it had when the limit is unchanged, else a new
    /// one (a changed limit starts afresh).
    fn budget(&self, backend: &ObjectRef<IdentityBackend>, limit: Limit) -> Arc<Budget> {
        let mut budgets = self
            .budgets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((l, b)) = budgets.get(backend) {
            if *l == limit {
                return b.clone();
            }
        }
        let metrics = self
            .metrics
            .budget(&backend.to_string(), limit.per_minute());
        let budget = Arc::new(Budget::new(limit, metrics));
        budgets.insert(backend.clone(), (limit, budget.clone()));
        budget
    }

    /// How often the objects of `backend` are checked for drift: the operator's `resync`, or the
    /// longer interval the backend's budget needs for one round (set by the IdentityBackend
    /// reconcile with [`BackendRegistry::set_drift_interval`]).
    pub fn drift_interval(
        &self,
        backend: &ObjectRef<IdentityBackend>,
        resync: Duration,
    ) -> Duration {
        self.drift
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(backend)
            .map_or(resync, |d| (*d).max(resync))
    }

    /// Records the drift-check interval of `backend`'s objects; returns the previous one.
    pub fn set_drift_interval(
        &self,
        backend: &ObjectRef<IdentityBackend>,
        interval: Duration,
    ) -> Option<Duration> {
        self.drift
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(backend.clone(), interval)
    }

    /// The health of `backend`'s server, as its clients saw it.
    pub fn health(&self, backend: &ObjectRef<IdentityBackend>) -> Arc<Health> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(backend.clone())
            .or_default()
            .clone()
    }

    /// A reconcile slot of `backend` for controller `kind`, or `None` when the backend already
    /// holds its share ([`slot_share`]) of the controller's `concurrency`: the caller then
    /// requeues instead of waiting, so that it frees the controller's slot for other backends.
    pub fn enter(
        &self,
        kind: SlotKind,
        backend: &ObjectRef<IdentityBackend>,
        concurrency: usize,
        backends: usize,
    ) -> Option<Slot> {
        let share = slot_share(concurrency, backends, self.health(backend).is_degraded());
        let key = (kind, backend.clone());
        let mut m = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(key.clone()).or_default();
        if *n >= share {
            return None;
        }
        *n += 1;
        Some(Slot {
            in_flight: self.in_flight.clone(),
            key,
        })
    }

    /// The resourceVersion of a Secret in the metadata cache (`None` when it does not exist).
    pub fn secret_version(&self, ns: &str, name: &str) -> Option<String> {
        self.secrets
            .get(&ObjectRef::new(name).within(ns))
            .and_then(|s| s.resource_version())
    }

    /// The cached metadata of the Secrets of namespace `ns` (no values).
    pub fn secrets_in(&self, ns: &str) -> Vec<Arc<PartialObjectMeta<KubeSecret>>> {
        self.secrets
            .state()
            .into_iter()
            .filter(|s| s.namespace().as_deref() == Some(ns))
            .collect()
    }

    /// The client for `backend`, built on first use and whenever its spec or Secrets change.
    pub async fn client_for(
        &self,
        kube: &Client,
        backend: &IdentityBackend,
    ) -> Result<Arc<dyn IdentityServer>, ResolveError> {
        let ns = backend.namespace().unwrap_or_default();
        let spec = &backend.spec;
        let secret_name = &spec.credentials_secret_ref.name;
        let spec_fp = format!(
            "{}/{:?}",
            backend.uid().unwrap_or_default(),
            backend.metadata.generation
        );
        let fingerprint = format!(
            "{spec_fp}/{:?}/{:?}",
            self.secret_version(&ns, secret_name),
            spec.ca_bundle_secret_ref
                .as_ref()
                .map(|r| self.secret_version(&ns, &r.name)),
        );
        let key = ObjectRef::from_obj(backend);
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(&key) {
            if c.fingerprint == fingerprint {
                return Ok(c.client.clone());
            }
        }
        let secret = read_secret(kube, &ns, secret_name)
            .await
            .map_err(|e| ResolveError::Kube(e.to_string()))?
            .ok_or_else(|| ResolveError::SecretNotFound(secret_name.clone()))?;
        // Consent before any value is used: the client id and secret go to the backend's host,
        // which the author of the IdentityBackend chose.
        if !super::consented(&secret, super::USE_BACKEND_CREDENTIALS) {
            return Err(ResolveError::NotConsented(secret_name.clone()));
        }
        let value = |key: &str| {
            secret_value(&secret, key).ok_or_else(|| ResolveError::SecretKeyMissing {
                secret: secret_name.clone(),
                key: key.to_string(),
            })
        };
        let client_id = value(&spec.credentials_secret_ref.client_id_key)?;
        let client_secret = value(&spec.credentials_secret_ref.client_secret_key)?;
        let ca_pem = match &spec.ca_bundle_secret_ref {
            Some(r) => {
                let ca = read_secret(kube, &ns, &r.name)
                    .await
                    .map_err(|e| ResolveError::Kube(e.to_string()))?
                    .ok_or_else(|| ResolveError::SecretNotFound(r.name.clone()))?;
                Some(
                    secret_value(&ca, &r.key).ok_or_else(|| ResolveError::SecretKeyMissing {
                        secret: r.name.clone(),
                        key: r.key.clone(),
                    })?,
                )
            }
            None => None,
        };
        let values = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (&client_id, &client_secret, &ca_pem).hash(&mut h);
            h.finish()
        };
        if let Some(c) = clients.get_mut(&key) {
            if c.spec == spec_fp && c.values == values {
                c.fingerprint = fingerprint;
                return Ok(c.client.clone());
            }
        }
        let mut config =
            AsgardeoConfig::new(target(backend)?, client_id, Secret::new(client_secret));
        config.request_timeout = self.request_timeout;
        config.health = self.health(&key);
        config.ca_bundle_pem = ca_pem.map(String::into_bytes);
        config.allow_insecure_http = spec
            .wso2_identity_server
            .as_ref()
            .and_then(|w| w.allow_insecure_http)
            .unwrap_or(false);
        // skipFor writes a conditional-auth script, which needs this scope; a server that does not
        // grant it drops it silently and only script writes fail, naming the scope (403).
        config
            .scopes
            .push(crate::backend::operation::SCRIPT_SCOPE.to_owned());
        if let Some(n) = spec.max_concurrent_requests {
            config.max_concurrency = n.clamp(1, 64) as usize;
        }
        config.limit = limit(backend);
        config.name = format!("{ns}/{}", backend.name_any());
        config.budget = Some(self.budget(&key, config.limit));
        let client = AsgardeoClient::new(config, Some(self.metrics.clone()))
            .map_err(|e| ResolveError::Config(e.to_string()))?;
        let client: Arc<dyn IdentityServer> = Arc::new(client);
        clients.insert(
            key,
            Cached {
                fingerprint,
                spec: spec_fp,
                values,
                client: client.clone(),
            },
        );
        Ok(client)
    }

    /// The last client built for `backend`, whatever changed since. Cleanup uses it when the
    /// backend's Secret (or the backend) went first, as a namespace delete or a GitOps prune does:
    /// the token it holds still deletes what the operator created.
    pub async fn cached(
        &self,
        backend: &ObjectRef<IdentityBackend>,
    ) -> Option<Arc<dyn IdentityServer>> {
        self.clients
            .lock()
            .await
            .get(backend)
            .map(|c| c.client.clone())
    }

    /// Forgets the client of a deleted backend.
    pub async fn forget(&self, backend: &ObjectRef<IdentityBackend>) {
        self.drift
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(backend);
        self.budgets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(backend);
        self.clients.lock().await.remove(backend);
    }
}

/// The request budget of a backend: `maxRequestsPerMinute` (or the deprecated
/// `maxRequestsPerSecond`), else the Asgardeo default for an Asgardeo host, else none.
pub fn limit(backend: &IdentityBackend) -> Limit {
    let spec = &backend.spec;
    let positive = |n: Option<i32>| n.and_then(|n| u32::try_from(n.max(1)).ok());
    Limit::choose(
        positive(spec.max_requests_per_minute),
        positive(spec.max_requests_per_second),
        target(backend).is_ok_and(|t| is_asgardeo_host(&t)),
    )
}

/// True for an Asgardeo organization, also when it is declared as a `wso2IdentityServer` URL on
/// an `asgardeo.io` host: the quota is the host's, however the backend is written.
pub fn is_asgardeo_host(target: &Target) -> bool {
    match target {
        Target::Asgardeo { .. } => true,
        Target::Wso2IdentityServer { url, .. } => url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .is_some_and(|h| h == "asgardeo.io" || h.ends_with(".asgardeo.io")),
    }
}

/// Where a backend's server is.
pub fn target(backend: &IdentityBackend) -> Result<Target, ResolveError> {
    match (&backend.spec.asgardeo, &backend.spec.wso2_identity_server) {
        (Some(a), None) => Ok(Target::Asgardeo {
            organization: a.organization.clone(),
        }),
        (None, Some(w)) => Ok(Target::Wso2IdentityServer {
            url: w.url.trim_end_matches('/').to_string(),
            tenant: w.tenant.clone(),
        }),
        _ => Err(ResolveError::Config(
            "set exactly one of asgardeo or wso2IdentityServer".into(),
        )),
    }
}

/// The tenant base URL of a backend (`https://api.asgardeo.io/t/acme`, `{url}/t/{tenant}`).
pub fn base_url(backend: &IdentityBackend) -> Result<String, ResolveError> {
    match (&backend.spec.asgardeo, &backend.spec.wso2_identity_server) {
        (Some(a), None) => Ok(format!("https://api.asgardeo.io/t/{}", a.organization)),
        (None, Some(w)) => Ok(format!("{}/t/{}", w.url.trim_end_matches('/'), w.tenant)),
        _ => Err(ResolveError::Config(
            "set exactly one of asgardeo or wso2IdentityServer".into(),
        )),
    }
}

/// The authenticators that need a local account on this backend.
pub fn local_account_authenticators(backend: &IdentityBackend) -> LocalAccountAuthenticators {
    backend
        .spec
        .local_account_authenticators
        .clone()
        .map(LocalAccountAuthenticators::from_names)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::health::Misbehaviour;

    #[test]
    fn a_backend_s_limit_comes_from_its_spec_or_its_host() {
        let backend = |spec: serde_json::Value| -> IdentityBackend {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "identity-operator.io/v1alpha1", "kind": "IdentityBackend",
                "metadata": {"name": "b", "namespace": "ns"},
                "spec": spec,
            }))
            .expect("backend")
        };
        let creds = serde_json::json!({"name": "s"});
        let cases = [
            (
                serde_json::json!({"asgardeo": {"organization": "acme"}, "credentialsSecretRef": creds}),
                Limit::PerMinute(150),
            ),
            (
                serde_json::json!({"asgardeo": {"organization": "acme"}, "credentialsSecretRef": creds, "maxRequestsPerMinute": 60}),
                Limit::PerMinute(60),
            ),
            (
                serde_json::json!({"wso2IdentityServer": {"url": "https://is.example:9443"}, "credentialsSecretRef": creds}),
                Limit::Unlimited,
            ),
            (
                serde_json::json!({"wso2IdentityServer": {"url": "https://is.example:9443"}, "credentialsSecretRef": creds, "maxRequestsPerSecond": 2}),
                Limit::PerSecond(2),
            ),
            (
                serde_json::json!({"wso2IdentityServer": {"url": "https://api.asgardeo.io"}, "credentialsSecretRef": creds}),
                Limit::PerMinute(150),
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(limit(&backend(spec.clone())), want, "{spec}");
        }
    }

    #[test]
    fn asgardeo_hosts_get_the_default_budget_however_they_are_declared() {
        let is = |url: &str| Target::Wso2IdentityServer {
            url: url.into(),
            tenant: "t".into(),
        };
        let cases = [
            (
                Target::Asgardeo {
                    organization: "acme".into(),
                },
                true,
            ),
            (is("https://api.asgardeo.io"), true),
            (is("https://API.Asgardeo.io:443"), true),
            (is("https://asgardeo.io"), true),
            (is("https://is.example.com:9443"), false),
            (is("https://asgardeo.io.example.com"), false),
            (is("https://notasgardeo.io"), false),
            (is("http://127.0.0.1:9443"), false),
        ];
        for (target, want) in cases {
            assert_eq!(is_asgardeo_host(&target), want, "{target:?}");
        }
    }

    #[test]
    fn a_backend_gets_all_slots_alone_half_with_others_one_when_degraded() {
        // (concurrency, backends, degraded) -> share
        let table = [
            (8, 1, false, 8),
            (8, 0, false, 4),
            (8, 2, false, 4),
            (8, 5, false, 4),
            (1, 2, false, 1),
            (3, 2, false, 1),
            (8, 1, true, 1),
            (8, 3, true, 1),
            (0, 1, false, 1),
        ];
        for (concurrency, backends, degraded, want) in table {
            assert_eq!(
                slot_share(concurrency, backends, degraded),
                want,
                "{concurrency} {backends} {degraded}"
            );
        }
    }

    #[test]
    fn a_backend_keeps_its_budget_across_client_rebuilds_until_its_limit_changes() {
        let (secrets, _writer) = kube::runtime::reflector::store();
        let r = BackendRegistry::new(
            secrets,
            Arc::new(BackendMetrics::default()),
            Duration::from_secs(1),
        );
        let b = ObjectRef::<IdentityBackend>::new("b").within("ns");
        let first = r.budget(&b, Limit::PerMinute(150));
        assert!(
            Arc::ptr_eq(&first, &r.budget(&b, Limit::PerMinute(150))),
            "same limit: same bucket, same pause"
        );
        let changed = r.budget(&b, Limit::PerMinute(60));
        assert!(!Arc::ptr_eq(&first, &changed), "a new limit starts afresh");
        let other = ObjectRef::<IdentityBackend>::new("c").within("ns");
        assert!(
            !Arc::ptr_eq(&changed, &r.budget(&other, Limit::PerMinute(60))),
            "one per backend"
        );
    }

    #[test]
    fn slots_are_counted_per_controller_and_backend_and_given_back() {
        let (secrets, _writer) = kube::runtime::reflector::store();
        let r = BackendRegistry::new(
            secrets,
            Arc::new(BackendMetrics::default()),
            Duration::from_secs(1),
        );
        let slow = ObjectRef::<IdentityBackend>::new("slow").within("a");
        let fast = ObjectRef::<IdentityBackend>::new("fast").within("b");
        let kind = SlotKind::IdentityProvider;
        let held: Vec<Slot> = (0..2)
            .map(|_| r.enter(kind, &slow, 4, 2).expect("within the share"))
            .collect();
        assert!(r.enter(kind, &slow, 4, 2).is_none(), "share of 2 used up");
        assert!(
            r.enter(kind, &fast, 4, 2).is_some(),
            "other backends unaffected"
        );
        assert!(
            r.enter(SlotKind::Application, &slow, 4, 2).is_some(),
            "the other controller has its own slots"
        );
        drop(held);
        r.health(&slow).record(Misbehaviour::Timeout, "timed out");
        let one = r.enter(kind, &slow, 4, 2).expect("one slot while degraded");
        assert!(
            r.enter(kind, &slow, 4, 2).is_none(),
            "only one while degraded"
        );
        drop(one);
        assert!(r.enter(kind, &slow, 4, 2).is_some(), "given back on drop");
    }
}
