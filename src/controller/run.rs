//! `identity-operator run`: wires the three controllers, their watches, the caches and the HTTP
//! endpoints (/metrics, /healthz, /readyz) together.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::Predicate;
use kube::runtime::{predicates, watcher, Controller, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::{
    application, identity_backend, identity_provider, recorder, BackendRegistry, Context, Error,
};
use crate::api::{Application, IdentityBackend, IdentityProvider};
use crate::flow::DependencyIndex;
use crate::telemetry::{self, Metrics};

/// Options of `identity-operator run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Watch only these namespaces (repeat the flag or separate with commas; default: all
    /// namespaces). Each namespace gets its own caches and watches, so RBAC can be limited to them.
    #[arg(long = "namespace", env = "WATCH_NAMESPACE", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// How often each object is compared with the server when nothing changes (jittered ±10 %),
    /// e.g. 300s, 5m, 1h.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub resync_interval: Duration,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Reconciles running at once per kind.
    #[arg(long, default_value_t = 8)]
    pub concurrency: u16,
    /// Take a Lease before reconciling, so that several replicas are safe (one is active).
    #[arg(long)]
    pub leader_elect: bool,
    /// Name of the leader-election Lease (one per installation).
    #[arg(long, default_value = "identity-operator")]
    pub lease_name: String,
    /// Namespace of the leader-election Lease (default: the watched namespace, else POD_NAMESPACE,
    /// else "default").
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Leader election: how long followers wait after they last saw the Lease renewed before taking
    /// it (whole seconds).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// Leader election: the leader stops reconciling when no renewal succeeded for this long
    /// (shorter than --lease-duration).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: Duration,
    /// Leader election: how often the leader renews and followers look at the Lease.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub retry_period: Duration,
}

/// Parses `30s`, `5m`, `1h` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: use e.g. 30s, 5m, 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "ms" => return Ok(Duration::from_millis(n)),
        _ => return Err(format!("invalid duration unit in {s:?}: use s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}

fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Watch reconnection backoff: 250 ms doubling to at most 5 s, with jitter, reset after a success.
/// kube's default goes up to 30 s, which after an apiserver restart left the operator blind for up
/// to a minute; a watch retry is cheap for the apiserver.
#[derive(Clone)]
struct QuickBackoff {
    next: Duration,
}

impl Default for QuickBackoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(250),
        }
    }
}

impl Iterator for QuickBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        use rand::Rng;
        let base = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        let jitter = rand::rng().random_range(0..=base.as_millis() as u64 / 2);
        Some(base + Duration::from_millis(jitter))
    }
}

impl kube::runtime::utils::Backoff for QuickBackoff {
    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// A secondary watch (a trigger of another controller), with the same backoff as the primaries.
fn trigger<K>(api: Api<K>) -> impl Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, watcher::Config::default())
        .backoff(QuickBackoff::default())
        .touched_objects()
}

/// Secrets as metadata only: no secret value is held in the operator's caches.
fn meta_api(client: &Client, ns: &Option<String>) -> Api<PartialObjectMeta<KubeSecret>> {
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The objects of kind `K` in `ns` that `pick` selects, from a cache (no API call).
fn select<K>(store: &Store<K>, ns: Option<String>, pick: impl Fn(&K) -> bool) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .state()
        .into_iter()
        .filter(|o| o.namespace() == ns && pick(o))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

fn primary<K>(
    api: Api<K>,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .backoff(QuickBackoff::default())
        .reflect(writer)
        .applied_objects()
        // Status writes do not change the generation: they must not trigger a reconcile of their own
        // object (that is how operators loop). Deletion bumps the generation; finalizer edits count.
        .predicate_filter(
            predicates::generation.combine(predicates::finalizers),
            Default::default(),
        );
    (store, stream)
}

fn secret_meta(
    client: &Client,
    ns: &Option<String>,
) -> impl Stream<Item = Result<PartialObjectMeta<KubeSecret>, watcher::Error>> + Send {
    watcher(meta_api(client, ns), watcher::Config::default())
        .backoff(QuickBackoff::default())
        .touched_objects()
}

/// Runs the operator until SIGTERM / Ctrl-C.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = Client::try_default().await?;
    let metrics = Arc::new(Metrics::new());
    let ready = telemetry::Readiness::default();
    let server = tokio::spawn(telemetry::serve(
        args.metrics_addr,
        metrics.clone(),
        ready.clone(),
    ));

    let scopes: Vec<Option<String>> = if args.namespaces.is_empty() {
        vec![None]
    } else {
        args.namespaces.iter().cloned().map(Some).collect()
    };
    // One signal for everything: the controllers drain on it, then the Lease is released.
    let shutdown = crate::leader::shutdown_signal()?;
    let all = || {
        futures::future::join_all(scopes.iter().cloned().map(|ns| {
            controllers(
                client.clone(),
                ns,
                metrics.clone(),
                args.clone(),
                shutdown.clone(),
            )
        }))
        .map(|_| ())
    };
    if args.leader_elect {
        let config = crate::leader::ElectionConfig {
            lease_name: args.lease_name.clone(),
            lease_namespace: args
                .lease_namespace
                .clone()
                .or(args.namespaces.first().cloned())
                .unwrap_or_else(|| "default".into()),
            identity: crate::leader::default_identity(),
            lease_duration: args.lease_duration,
            renew_deadline: args.renew_deadline,
            retry_period: args.retry_period,
        };
        crate::leader::run_while_leading(
            client.clone(),
            config,
            metrics.clone(),
            ready.clone(),
            shutdown.clone(),
            all,
        )
        .await?;
    } else {
        ready.set(true);
        all().await;
        ready.set(false);
    }
    server.abort();
    tracing::info!("controllers stopped");
    Ok(())
}

/// The three controllers for one namespace (or all), with their caches and watches. They drain on
/// `stop`; dropping the future (leadership lost) stops them at once.
async fn controllers(
    client: Client,
    ns: Option<String>,
    metrics: Arc<Metrics>,
    args: RunArgs,
    stop: crate::leader::Shutdown,
) {
    let backend_metrics = metrics.backend.clone();
    let (backends, backend_stream) = primary(api::<IdentityBackend>(&client, &ns));
    let (idps, idp_stream) = primary(api::<IdentityProvider>(&client, &ns));
    let (apps, app_stream) = primary(api::<Application>(&client, &ns));

    // A metadata-only cache of Secrets: their resourceVersions tell when a backend's client must be
    // rebuilt, without keeping secret values in memory.
    let (secrets, secrets_writer) = reflector::store();
    let _secrets_task = AbortOnDrop(tokio::spawn(
        watcher(meta_api(&client, &ns), watcher::Config::default())
            .backoff(QuickBackoff::default())
            .reflect(secrets_writer)
            .for_each(|_| futures::future::ready(())),
    ));

    let ctx = Arc::new(Context {
        client: client.clone(),
        backends: backends.clone(),
        idps: idps.clone(),
        apps: apps.clone(),
        registry: BackendRegistry::new(secrets, backend_metrics),
        index: Mutex::new(DependencyIndex::default()),
        app_seen: Mutex::default(),
        idp_seen: Mutex::default(),
        recorder: recorder(client.clone()),
        metrics,
        resync: args.resync_interval,
        block_gate: tokio::sync::Mutex::new(()),
    });
    tracing::info!(namespace = ns.as_deref().unwrap_or("*"), resync = ?args.resync_interval, "starting controllers");

    let config = ControllerConfig::default().concurrency(args.concurrency);

    let c = ctx.clone();
    let backend_ctrl = Controller::for_stream(backend_stream, backends.clone())
        .with_config(config.clone())
        .trigger_backoff(QuickBackoff::default())
        // A backend being deleted waits for its users; their deletion is what lets it go.
        .watches_stream(trigger(api::<IdentityProvider>(&client, &ns)), |i| {
            leaving(&i, &i.spec.backend_ref.name)
        })
        .watches_stream(trigger(api::<Application>(&client, &ns)), |a| {
            leaving(&a, &a.spec.backend_ref.name)
        })
        .watches_stream(secret_meta(&client, &ns), move |s| {
            select(&c.backends, s.namespace(), |b: &IdentityBackend| {
                b.spec.credentials_secret_ref.name == s.name_any()
                    || b.spec
                        .ca_bundle_secret_ref
                        .as_ref()
                        .is_some_and(|r| r.name == s.name_any())
            })
        })
        .graceful_shutdown_on(stop.clone())
        .run(
            timed("IdentityBackend", identity_backend::reconcile),
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    let (c1, c2, c3) = (ctx.clone(), ctx.clone(), ctx.clone());
    let idp_ctrl = Controller::for_stream(idp_stream, idps.clone())
        .with_config(config.clone())
        .trigger_backoff(QuickBackoff::default())
        .watches_stream(trigger(api::<Application>(&client, &ns)), move |app| {
            application::idps_to_refresh(&c1, &app)
        })
        .watches_stream(trigger(api::<IdentityBackend>(&client, &ns)), move |b| {
            select(&c2.idps, b.namespace(), |i: &IdentityProvider| {
                i.spec.backend_ref.name == b.name_any()
            })
        })
        .watches_stream(secret_meta(&client, &ns), move |s| {
            select(&c3.idps, s.namespace(), |i: &IdentityProvider| {
                let r = i
                    .spec
                    .google
                    .as_ref()
                    .or(i.spec.github.as_ref())
                    .map(|p| &p.client_secret_ref)
                    .or(i.spec.oidc.as_ref().map(|p| &p.client_secret_ref));
                r.is_some_and(|r| r.name == s.name_any())
            })
        })
        .graceful_shutdown_on(stop.clone())
        .run(
            timed("IdentityProvider", identity_provider::reconcile),
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    let (c4, c5) = (ctx.clone(), ctx.clone());
    let app_ctrl = Controller::for_stream(app_stream, apps.clone())
        .with_config(config)
        .trigger_backoff(QuickBackoff::default())
        .owns_stream(secret_meta(&client, &ns))
        .watches_stream(trigger(api::<IdentityProvider>(&client, &ns)), move |idp| {
            identity_provider::apps_to_refresh(&c4, &idp)
        })
        .watches_stream(trigger(api::<IdentityBackend>(&client, &ns)), move |b| {
            select(&c5.apps, b.namespace(), |a: &Application| {
                a.spec.backend_ref.name == b.name_any()
            })
        })
        .graceful_shutdown_on(stop.clone())
        .run(
            timed("Application", application::reconcile),
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));

    tokio::join!(backend_ctrl, idp_ctrl, app_ctrl);
}

/// Aborts a spawned task when dropped, so a fenced (dropped) set of controllers leaves no watch
/// behind.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The backend of an object that is being deleted (its finalizer release may free the backend).
fn leaving<K: Resource>(obj: &K, backend: &str) -> Option<ObjectRef<IdentityBackend>> {
    let ns = obj.meta().namespace.clone()?;
    obj.meta()
        .deletion_timestamp
        .is_some()
        .then(|| ObjectRef::new(backend).within(&ns))
}

/// A boxed reconcile future.
type ReconcileFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Action, Error>> + Send>>;

/// Wraps a reconciler with its duration and result metrics.
fn timed<K, F, Fut>(kind: &'static str, f: F) -> impl Fn(Arc<K>, Arc<Context>) -> ReconcileFuture
where
    K: Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<Action, Error>> + Send + 'static,
{
    move |obj, ctx| {
        let f = f.clone();
        Box::pin(async move {
            let start = std::time::Instant::now();
            let result = f(obj, ctx.clone()).await;
            let label = match &result {
                Ok(_) => "success",
                Err(e) => e.metric_label(),
            };
            ctx.metrics.reconciled(kind, label, start.elapsed());
            result
        })
    }
}

/// Transient failures back off briefly; everything else waits longer (a spec or Secret change
/// triggers a reconcile sooner anyway).
fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    error: &Error,
    _ctx: Arc<Context>,
) -> Action {
    tracing::warn!(object = %ObjectRef::from_obj(obj.as_ref()), error = %error, "reconcile failed");
    let retry = match error {
        Error::Backend { source, .. } => match source {
            crate::backend::BackendError::RateLimited {
                retry_after: Some(d),
            } => *d,
            s if s.is_retryable() => Duration::from_secs(5),
            _ => Duration::from_secs(30),
        },
        Error::Kube(_) => Duration::from_secs(5),
        _ => Duration::from_secs(30),
    };
    Action::requeue(retry)
}
