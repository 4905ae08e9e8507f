//! One identity-server client per IdentityBackend, rebuilt only when the backend's spec or its
//! credentials Secret changes. This is what keeps the operator at one token per backend instead of a
//! login per reconcile.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use tokio::sync::Mutex;

use super::{read_secret, secret_value};
use crate::api::IdentityBackend;
use crate::backend::asgardeo::{AsgardeoClient, AsgardeoConfig, Target};
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
type Cached = (String, Arc<dyn IdentityServer>);

/// The cache of clients, keyed by backend.
pub struct BackendRegistry {
    clients: Mutex<HashMap<ObjectRef<IdentityBackend>, Cached>>,
    secrets: Store<PartialObjectMeta<KubeSecret>>,
    metrics: Arc<BackendMetrics>,
}

impl BackendRegistry {
    /// A registry that reads Secret versions from `secrets` (a metadata-only cache).
    pub fn new(
        secrets: Store<PartialObjectMeta<KubeSecret>>,
        metrics: Arc<BackendMetrics>,
    ) -> Self {
        Self {
            clients: Mutex::default(),
            secrets,
            metrics,
        }
    }

    /// The resourceVersion of a Secret in the metadata cache (`None` when it does not exist).
    pub fn secret_version(&self, ns: &str, name: &str) -> Option<String> {
        self.secrets
            .get(&ObjectRef::new(name).within(ns))
            .and_then(|s| s.resource_version())
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
        let fingerprint = format!(
            "{}/{:?}/{:?}/{:?}",
            backend.uid().unwrap_or_default(),
            backend.metadata.generation,
            self.secret_version(&ns, secret_name),
            spec.ca_bundle_secret_ref
                .as_ref()
                .map(|r| self.secret_version(&ns, &r.name)),
        );
        let key = ObjectRef::from_obj(backend);
        let mut clients = self.clients.lock().await;
        if let Some((fp, client)) = clients.get(&key) {
            if *fp == fingerprint {
                return Ok(client.clone());
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
        let mut config =
            AsgardeoConfig::new(target(backend)?, client_id, Secret::new(client_secret));
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
        config.max_requests_per_second = spec
            .max_requests_per_second
            .and_then(|n| u32::try_from(n.max(1)).ok());
        let client = AsgardeoClient::new(config, Some(self.metrics.clone()))
            .map_err(|e| ResolveError::Config(e.to_string()))?;
        let client: Arc<dyn IdentityServer> = Arc::new(client);
        clients.insert(key, (fingerprint, client.clone()));
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
            .map(|(_, c)| c.clone())
    }

    /// Forgets the client of a deleted backend.
    pub async fn forget(&self, backend: &ObjectRef<IdentityBackend>) {
        self.clients.lock().await.remove(backend);
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
