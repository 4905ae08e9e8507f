//! The webhook's HTTPS endpoint, its caches and the ValidatingWebhookConfiguration it registers.
//!
//! Start: watches of IdentityProviders and IdentityBackends (the Application namespaces the operator
//! watches), the certificate from [`certs::Store`], the HTTPS listener, then the configuration
//! (server-side apply, field manager identity-operator) with the certificate's CA. Every
//! [`certs::RELOAD_EVERY`] the certificate is loaded again (renewed when due): a new one is served
//! at once and its CA bundle applied to the configuration. Requests are answered from the caches
//! only; a dry run is answered the same way (the webhook has no side effects).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::certs::{self, Bundle};
use super::{WebhookArgs, PATH, TIMEOUT_SECONDS};
use crate::api::{Application, IdentityBackend, IdentityProvider};
use crate::controller::registry::local_account_authenticators;
use crate::flow::LocalAccountAuthenticators;

/// How the apiserver reaches the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientConfig {
    /// A URL (a local control plane: the apiserver runs outside the cluster network).
    Url(String),
    /// A Service in the cluster.
    Service {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its port.
        port: i32,
    },
}

impl ClientConfig {
    /// The host names the serving certificate must name.
    pub fn hosts(&self) -> Vec<String> {
        match self {
            ClientConfig::Url(url) => url::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
                .into_iter()
                .collect(),
            ClientConfig::Service {
                namespace, name, ..
            } => vec![
                name.clone(),
                format!("{name}.{namespace}"),
                format!("{name}.{namespace}.svc"),
                format!("{name}.{namespace}.svc.cluster.local"),
            ],
        }
    }
}

/// Errors of starting the webhook.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// `--webhook-service` is not NAMESPACE/NAME[:PORT].
    #[error("--webhook-service {0:?}: expected NAMESPACE/NAME or NAMESPACE/NAME:PORT")]
    BadService(String),
    /// The certificate could not be had.
    #[error(transparent)]
    Cert(#[from] certs::CertError),
    /// The TLS configuration was refused.
    #[error("webhook TLS configuration: {0}")]
    Tls(String),
    /// The listener could not be bound.
    #[error("binding the webhook listener on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration could not be applied.
    #[error("applying ValidatingWebhookConfiguration {name}: {source}")]
    Register {
        /// Its name.
        name: String,
        /// What the apiserver said.
        #[source]
        source: kube::Error,
    },
}

/// Parses `NAMESPACE/NAME[:PORT]`. Pure.
pub fn parse_service(s: &str) -> Result<ClientConfig, WebhookError> {
    let bad = || WebhookError::BadService(s.to_string());
    let (namespace, rest) = s.split_once('/').ok_or_else(bad)?;
    let (name, port) = match rest.split_once(':') {
        Some((n, p)) => (n, p.parse::<i32>().map_err(|_| bad())?),
        None => (rest, 443),
    };
    if namespace.is_empty() || name.is_empty() || !(1..=65535).contains(&port) {
        return Err(bad());
    }
    Ok(ClientConfig::Service {
        namespace: namespace.into(),
        name: name.into(),
        port,
    })
}

/// The ValidatingWebhookConfiguration `name`: Application creates and updates, in `namespaces`
/// (all when empty), `failurePolicy: Ignore` (the webhook down is not an outage: the reconciler's
/// Block still holds), a [`TIMEOUT_SECONDS`] timeout, no side effects (dry runs are answered the
/// same). Pure.
pub fn configuration(
    name: &str,
    client: &ClientConfig,
    ca_pem: &str,
    namespaces: &[String],
) -> Value {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let client_config = match client {
        ClientConfig::Url(url) => {
            json!({"url": format!("{}{PATH}", url.trim_end_matches('/')), "caBundle": ca})
        }
        ClientConfig::Service {
            namespace,
            name,
            port,
        } => json!({
            "service": {"namespace": namespace, "name": name, "port": port, "path": PATH},
            "caBundle": ca,
        }),
    };
    let mut webhook = json!({
        "name": "applications.identity-operator.io",
        "clientConfig": client_config,
        "rules": [{
            "apiGroups": ["identity-operator.io"],
            "apiVersions": ["v1alpha1"],
            "resources": ["applications"],
            "operations": ["CREATE", "UPDATE"],
            "scope": "Namespaced",
        }],
        "failurePolicy": "Ignore",
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "timeoutSeconds": TIMEOUT_SECONDS,
        "admissionReviewVersions": ["v1"],
    });
    if !namespaces.is_empty() {
        webhook["namespaceSelector"] = json!({"matchExpressions": [{
            "key": "kubernetes.io/metadata.name",
            "operator": "In",
            "values": namespaces,
        }]});
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "identity-operator"}},
        "webhooks": [webhook],
    })
}

async fn register(
    client: &Client,
    name: &str,
    cc: &ClientConfig,
    ca_pem: &str,
    namespaces: &[String],
) -> Result<(), WebhookError> {
    let gvk = GroupVersionKind::gvk(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk));
    let body = configuration(name, cc, ca_pem, namespaces);
    api.patch(
        name,
        &PatchParams::apply(crate::controller::MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| WebhookError::Register {
        name: name.to_string(),
        source,
    })?;
    Ok(())
}

/// What the handler reads: the webhook's own caches, one per watched namespace (or one for all).
struct Caches {
    idps: Vec<Store<IdentityProvider>>,
    backends: Vec<Store<IdentityBackend>>,
}

impl Caches {
    fn idp(&self, ns: &str, name: &str) -> Option<Arc<IdentityProvider>> {
        let r = ObjectRef::new(name).within(ns);
        self.idps.iter().find_map(|s| s.get(&r))
    }

    fn needs_local(&self, ns: &str, backend: &str) -> LocalAccountAuthenticators {
        let r = ObjectRef::new(backend).within(ns);
        self.backends
            .iter()
            .find_map(|s| s.get(&r))
            .map(|b| local_account_authenticators(&b))
            .unwrap_or_default()
    }

    /// Whether every cache has had its first list (an empty cache would allow everything).
    async fn ready(&self) -> bool {
        let all = self
            .idps
            .iter()
            .map(|s| s.wait_until_ready().boxed())
            .chain(self.backends.iter().map(|s| s.wait_until_ready().boxed()));
        tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(all))
            .await
            .is_ok_and(|r| r.iter().all(Result::is_ok))
    }
}

/// The answer to one review. Pure but for the caches.
fn review(caches: &Caches, req: &AdmissionRequest<Application>) -> AdmissionResponse {
    let resp = AdmissionResponse::from(req);
    let (Some(new), Operation::Create | Operation::Update) = (&req.object, &req.operation) else {
        return resp;
    };
    let ns = req
        .namespace
        .clone()
        .or_else(|| new.meta().namespace.clone())
        .unwrap_or_default();
    let needs_local = caches.needs_local(&ns, &new.spec.backend_ref.name);
    let d = super::decide(
        new,
        req.old_object.as_ref(),
        |name| caches.idp(&ns, name),
        &needs_local,
    );
    tracing::debug!(namespace = %ns, application = req.name, dry_run = req.dry_run, denied = d.denied.len(), warned = d.warned.len(), "admission review");
    let mut resp = if d.allowed() {
        resp
    } else {
        resp.deny(d.message())
    };
    let warnings = d.warnings();
    if !warnings.is_empty() {
        resp.warnings = Some(warnings);
    }
    resp
}

async fn handle(
    State(caches): State<Arc<Caches>>,
    Json(body): Json<AdmissionReview<Application>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let req: AdmissionRequest<Application> = match body.try_into() {
        Ok(r) => r,
        Err(e) => return Json(AdmissionResponse::invalid(e.to_string()).into_review()),
    };
    if !caches.ready().await {
        let mut resp = AdmissionResponse::from(&req);
        resp.warnings = Some(vec![
            "identity-operator's webhook is still loading its cache: the login flow was not checked (the reconciler's conflictPolicy: Block still holds)".into(),
        ]);
        return Json(resp.into_review());
    }
    Json(review(&caches, &req).into_review())
}

/// A cache of `K` in each scope, filled by a task that runs until the process ends.
fn cache<K>(client: &Client, scopes: &[Option<String>]) -> Vec<Store<K>>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    scopes
        .iter()
        .map(|ns| {
            let api: Api<K> = match ns {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            let (store, writer) = reflector::store();
            let stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .modify(|o: &mut K| o.meta_mut().managed_fields = None)
                .reflect(writer)
                .touched_objects();
            tokio::spawn(async move {
                futures::pin_mut!(stream);
                while let Some(e) = stream.next().await {
                    if let Err(e) = e {
                        tracing::warn!(error = %e, "webhook cache watch failed (retrying)");
                    }
                }
            });
            store
        })
        .collect()
}

fn rustls_config(b: &Bundle) -> Result<rustls::ServerConfig, WebhookError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let tls = |e: &dyn std::fmt::Display| WebhookError::Tls(e.to_string());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(b.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| tls(&e))?;
    let key = PrivateKeyDer::from_pem_slice(b.key_pem.as_bytes()).map_err(|e| tls(&e))?;
    // The ring provider explicitly, as the emulator does: kube links ring, one provider per process.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls(&e))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Starts the webhook when `--webhook-listen` is given: binds, loads the certificate, registers
/// the configuration, and keeps serving (and renewing) until `stop`. Returns the task, or `None`
/// without `--webhook-listen`. Errors here (a bad flag, a port in use, a foreign Secret, no right to
/// register) stop the operator: a webhook asked for and silently absent would be worse.
pub async fn start(
    client: Client,
    args: &WebhookArgs,
    namespaces: &[String],
    stop: crate::leader::Shutdown,
) -> Result<Option<tokio::task::JoinHandle<()>>, WebhookError> {
    let Some(addr) = args.webhook_listen else {
        return Ok(None);
    };
    let cc = match &args.webhook_service {
        Some(s) => parse_service(s)?,
        None => ClientConfig::Url(format!("https://{addr}")),
    };
    let store = match (&args.webhook_cert_dir, &args.webhook_secret) {
        (Some(dir), _) => certs::Store::Files(dir.clone()),
        (None, Some(name)) => certs::Store::Secret {
            api: Box::new(Api::<Secret>::namespaced(
                client.clone(),
                &args
                    .webhook_secret_namespace
                    .clone()
                    .or_else(|| std::env::var("POD_NAMESPACE").ok())
                    .unwrap_or_else(|| "default".into()),
            )),
            name: name.clone(),
        },
        (None, None) => certs::Store::Memory,
    };
    // At least a second: a zero period (a default-built WebhookArgs) would make the timer panic.
    let reload_every = args.webhook_cert_reload.max(Duration::from_secs(1));
    let hosts = cc.hosts();
    let mut bundle = store.load(None, &hosts).await?;
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(rustls_config(&bundle)?));
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| WebhookError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| WebhookError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| WebhookError::Bind { addr, source })?;
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().cloned().map(Some).collect()
    };
    let caches = Arc::new(Caches {
        idps: cache(&client, &scopes),
        backends: cache(&client, &scopes),
    });
    let app = Router::new().route(PATH, post(handle)).with_state(caches);
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, tls.clone())
        .handle(handle.clone())
        .serve(app.into_make_service());
    let name = args.webhook_configuration.clone();
    register(&client, &name, &cc, &bundle.ca_pem, namespaces).await?;
    tracing::info!(addr = %bound, configuration = %name, not_after = %bundle.not_after, "admission webhook serving");
    let namespaces = namespaces.to_vec();
    let task = tokio::spawn(async move {
        let renew = async {
            let mut tick = tokio::time::interval(reload_every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match store.load(Some(&bundle), &hosts).await {
                    Ok(next) if next != bundle => {
                        let applied = match rustls_config(&next) {
                            Ok(cfg) => {
                                tls.reload_from_config(Arc::new(cfg));
                                register(&client, &name, &cc, &next.ca_pem, &namespaces).await
                            }
                            Err(e) => Err(e),
                        };
                        match applied {
                            Ok(()) => {
                                tracing::info!(not_after = %next.not_after, "webhook certificate renewed");
                                bundle = next;
                            }
                            Err(e) => tracing::error!(error = %e, "webhook certificate renewal"),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "webhook certificate reload"),
                }
            }
        };
        tokio::select! {
            r = server => if let Err(e) = r { tracing::error!(error = %e, "admission webhook stopped") },
            _ = renew => {}
            _ = stop => handle.graceful_shutdown(Some(Duration::from_secs(2))),
        }
    });
    Ok(Some(task))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Caches holding one JIT-off Google IdP (`policy`) in namespace `ns`.
    fn caches(policy: &str) -> Caches {
        let idp: IdentityProvider = serde_json::from_value(json!({
            "apiVersion": "identity-operator.io/v1alpha1", "kind": "IdentityProvider",
            "metadata": {"name": "google", "namespace": "ns"},
            "spec": {"backendRef": {"name": "asgardeo"}, "displayName": "Google",
                     "google": {"clientID": "c", "clientSecretRef": {"name": "s", "key": "k"}},
                     "jit": {"enabled": false}, "conflictPolicy": policy}
        }))
        .expect("idp");
        let (idps, mut w) = reflector::store();
        w.apply_watcher_event(&watcher::Event::Apply(idp));
        let (backends, _) = reflector::store::<IdentityBackend>();
        Caches {
            idps: vec![idps],
            backends: vec![backends],
        }
    }

    /// A CREATE review of an Application with TOTP after Google, as a dry run or not.
    fn request(dry_run: bool) -> AdmissionRequest<Application> {
        let review: AdmissionReview<Application> = serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "identity-operator.io", "version": "v1alpha1", "kind": "Application"},
                "resource": {"group": "identity-operator.io", "version": "v1alpha1", "resource": "applications"},
                "name": "payroll", "namespace": "ns", "operation": "CREATE",
                "userInfo": {"username": "u"}, "dryRun": dry_run, "oldObject": null,
                "object": {
                    "apiVersion": "identity-operator.io/v1alpha1", "kind": "Application",
                    "metadata": {"name": "payroll", "namespace": "ns"},
                    "spec": {"backendRef": {"name": "asgardeo"}, "displayName": "Payroll",
                             "loginFlow": {"steps": [
                                 {"options": [{"identityProviderRef": {"name": "google"}}]},
                                 {"options": [{"authenticator": "totp"}]}]}}
                }
            }
        }))
        .expect("review");
        review.try_into().expect("request")
    }

    #[test]
    fn block_denies_warn_warns_and_a_dry_run_gets_the_same_answer() {
        for dry_run in [false, true] {
            let block = review(&caches("Block"), &request(dry_run));
            assert_eq!(block.uid, "u-1");
            assert!(!block.allowed, "dry run {dry_run}");
            assert!(block
                .result
                .message
                .contains("IdentityProvider google (step 1)"));
            assert_eq!(block.warnings, None);
            let warn = review(&caches("Warn"), &request(dry_run));
            assert!(warn.allowed, "dry run {dry_run}");
            let w = warn.warnings.expect("warnings");
            assert_eq!(w.len(), 1);
            assert!(w[0].contains("conflictPolicy: Warn"), "{w:?}");
        }
        let mut delete = request(false);
        delete.operation = Operation::Delete;
        assert!(
            review(&caches("Block"), &delete).allowed,
            "only CREATE and UPDATE are decided"
        );
    }

    #[test]
    fn service_flags_parse_or_say_what_is_expected() {
        let table = [
            ("ops/identity-operator-webhook", Some(443)),
            ("ops/wh:9443", Some(9443)),
            ("ops/wh:0", None),
            ("ops/wh:x", None),
            ("wh", None),
            ("/wh", None),
            ("ops/", None),
        ];
        for (flag, port) in table {
            match (parse_service(flag), port) {
                (Ok(ClientConfig::Service { port: p, .. }), Some(want)) => assert_eq!(p, want),
                (Err(e), None) => assert!(e.to_string().contains("NAMESPACE/NAME"), "{e}"),
                (got, want) => panic!("{flag}: {got:?}, wanted port {want:?}"),
            }
        }
    }

    #[test]
    fn the_configuration_is_fail_open_five_seconds_side_effect_free_and_scoped() {
        let cc = ClientConfig::Url("https://127.0.0.1:9443".into());
        let c = configuration("identity-operator", &cc, "CA", &["team-a".into()]);
        let w = &c["webhooks"][0];
        assert_eq!(w["failurePolicy"], "Ignore");
        assert_eq!(w["timeoutSeconds"], 5);
        assert_eq!(w["sideEffects"], "None");
        assert_eq!(w["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(w["rules"][0]["resources"], json!(["applications"]));
        assert_eq!(w["rules"][0]["operations"], json!(["CREATE", "UPDATE"]));
        assert_eq!(
            w["clientConfig"]["url"],
            "https://127.0.0.1:9443/validate-application"
        );
        assert_eq!(w["clientConfig"]["caBundle"], "Q0E=");
        assert_eq!(
            w["namespaceSelector"]["matchExpressions"][0]["values"],
            json!(["team-a"])
        );
        let all = configuration("x", &cc, "CA", &[]);
        assert!(all["webhooks"][0].get("namespaceSelector").is_none());
        let svc = parse_service("ops/wh").expect("service");
        let s = configuration("x", &svc, "CA", &[]);
        assert_eq!(s["webhooks"][0]["clientConfig"]["service"]["path"], PATH);
        assert_eq!(
            svc.hosts(),
            ["wh", "wh.ops", "wh.ops.svc", "wh.ops.svc.cluster.local"]
        );
        assert_eq!(cc.hosts(), ["127.0.0.1"]);
    }
}
