//! `identity-operator run`: wires the three controllers, their watches, the caches and the HTTP
//! endpoints (/metrics, /healthz, /readyz) together.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
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

/// The annotation `kubectl apply` (client-side) keeps the whole last applied object in: a second copy
/// of the spec that nothing here reads.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what the controllers never read from an object before it is cached or handed on:
/// managedFields (often larger than the spec, one entry per field manager) and the last-applied
/// annotation. This is most of an object's size in the caches.
fn strip<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
    if let Some(a) = obj.meta_mut().annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

/// Subscribers of one watch: each gets every object the watch touches (applied or deleted), as one
/// shared `Arc`. Unbounded because every receiver is a controller's trigger input, which the
/// controller drains eagerly into its scheduler (deduplicated there); a bounded channel would only
/// add a way for two controllers to wait on each other.
struct FanOut<K> {
    senders: Vec<mpsc::UnboundedSender<Arc<K>>>,
}

impl<K> FanOut<K> {
    fn new() -> Self {
        Self {
            senders: Vec::new(),
        }
    }

    /// A new trigger stream fed by this watch.
    fn subscribe(&mut self) -> mpsc::UnboundedReceiver<Arc<K>> {
        let (tx, rx) = mpsc::unbounded();
        self.senders.push(tx);
        rx
    }

    fn send(&self, event: &watcher::Event<K>)
    where
        K: Clone,
    {
        let obj = match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) | watcher::Event::Delete(o) => {
                o
            }
            watcher::Event::Init | watcher::Event::InitDone => return,
        };
        if self.senders.is_empty() {
            return;
        }
        let obj = Arc::new(obj.clone());
        for tx in &self.senders {
            // A closed receiver is a controller that stopped (shutdown): nothing to tell it.
            let _ = tx.unbounded_send(obj.clone());
        }
    }
}

/// The one watch of kind `K` in a scope: it fills the cache (stripped, see [`strip`]) and feeds the
/// subscribers' triggers. The returned stream must be polled (by the primary controller, or a task).
///
/// kube-runtime's own shared reflector (`store_shared` + `reflect_shared` + `subscribe`) would do
/// the fan-out, but as of kube-runtime 5.0 it forwards only applied objects, never deletions, and
/// these triggers need deletions (a deleted credentials Secret is recreated by its Application; a
/// deleted object leaves its IdPs' dependents).
fn shared_watch<K>(
    api: Api<K>,
    fan_out: FanOut<K>,
) -> (
    Store<K>,
    impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
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
        .modify(strip::<K>)
        .reflect(writer)
        .inspect_ok(move |event| fan_out.send(event));
    (store, stream)
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

/// A primary controller's input from its kind's shared watch.
fn primary<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + Send + 'static,
{
    events
        .applied_objects()
        // Status writes do not change the generation: they must not trigger a reconcile of their own
        // object (that is how operators loop). Deletion bumps the generation; finalizer edits count.
        .predicate_filter(
            predicates::generation.combine(predicates::finalizers),
            Default::default(),
        )
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

/// The three controllers for one namespace (or all), with their caches and watches: one watch per
/// kind (four in all), each shared by every controller that needs it. They drain on `stop`;
/// dropping the future (leadership lost) stops them at once.
async fn controllers(
    client: Client,
    ns: Option<String>,
    metrics: Arc<Metrics>,
    args: RunArgs,
    stop: crate::leader::Shutdown,
) {
    let backend_metrics = metrics.backend.clone();

    let (mut backend_fan, mut idp_fan, mut app_fan, mut secret_fan) =
        (FanOut::new(), FanOut::new(), FanOut::new(), FanOut::new());
    let backends_for_idps = backend_fan.subscribe();
    let backends_for_apps = backend_fan.subscribe();
    let idps_for_apps = idp_fan.subscribe();
    let apps_for_idps = app_fan.subscribe();
    let secrets_for_backends = secret_fan.subscribe();
    let secrets_for_idps = secret_fan.subscribe();
    let secrets_for_apps = secret_fan.subscribe();

    let (backends, backend_events) =
        shared_watch(api::<IdentityBackend>(&client, &ns), backend_fan);
    let (idps, idp_events) = shared_watch(api::<IdentityProvider>(&client, &ns), idp_fan);
    let (apps, app_events) = shared_watch(api::<Application>(&client, &ns), app_fan);
    // Secrets as metadata only: no secret value is held in the operator's caches; their
    // resourceVersions tell when a backend's client must be rebuilt.
    let (secrets, secret_events) = shared_watch(
        api::<PartialObjectMeta<KubeSecret>>(&client, &ns),
        secret_fan,
    );
    let _secrets_task = AbortOnDrop(tokio::spawn(
        secret_events.for_each(|_| futures::future::ready(())),
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
        block_gate: Default::default(),
        memo: Default::default(),
    });
    tracing::info!(namespace = ns.as_deref().unwrap_or("*"), resync = ?args.resync_interval, "starting controllers");

    let config = ControllerConfig::default().concurrency(args.concurrency);

    let c = ctx.clone();
    let backend_ctrl = Controller::for_stream(primary(backend_events), backends.clone())
        .with_config(config.clone())
        .trigger_backoff(QuickBackoff::default())
        .watches_shared_stream(secrets_for_backends, move |s| {
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
    let idp_ctrl = Controller::for_stream(primary(idp_events), idps.clone())
        .with_config(config.clone())
        .trigger_backoff(QuickBackoff::default())
        .watches_shared_stream(apps_for_idps, move |app| {
            application::idps_to_refresh(&c1, &app)
        })
        .watches_shared_stream(backends_for_idps, move |b| {
            select(&c2.idps, b.namespace(), |i: &IdentityProvider| {
                i.spec.backend_ref.name == b.name_any()
            })
        })
        .watches_shared_stream(secrets_for_idps, move |s| {
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
    let app_ctrl = Controller::for_stream(primary(app_events), apps.clone())
        .with_config(config)
        .trigger_backoff(QuickBackoff::default())
        .owns_shared_stream(secrets_for_apps)
        .watches_shared_stream(idps_for_apps, move |idp| {
            identity_provider::apps_to_refresh(&c4, &idp)
        })
        .watches_shared_stream(backends_for_apps, move |b| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    use kube::api::ObjectMeta;

    fn secret(name: &str) -> PartialObjectMeta<KubeSecret> {
        PartialObjectMeta::<KubeSecret> {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                annotations: Some(
                    [
                        (LAST_APPLIED.to_string(), "{\"big\":true}".to_string()),
                        ("keep".to_string(), "me".to_string()),
                    ]
                    .into(),
                ),
                managed_fields: Some(vec![ManagedFieldsEntry {
                    manager: Some("kubectl".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn strip_drops_managed_fields_and_last_applied_only() {
        let mut s = secret("a");
        strip(&mut s);
        assert_eq!(s.metadata.managed_fields, None);
        let annotations = s.metadata.annotations.unwrap_or_default();
        assert!(!annotations.contains_key(LAST_APPLIED));
        assert_eq!(annotations.get("keep").map(String::as_str), Some("me"));
        assert_eq!(s.metadata.name.as_deref(), Some("a"));
    }

    #[test]
    fn fan_out_hands_applies_and_deletions_to_every_subscriber() {
        let mut fan = FanOut::new();
        let mut first = fan.subscribe();
        let mut second = fan.subscribe();
        fan.send(&watcher::Event::Init);
        fan.send(&watcher::Event::InitApply(secret("a")));
        fan.send(&watcher::Event::InitDone);
        fan.send(&watcher::Event::Apply(secret("b")));
        fan.send(&watcher::Event::Delete(secret("a")));
        drop(fan);
        for rx in [&mut first, &mut second] {
            let names: Vec<_> = futures::executor::block_on(rx.collect::<Vec<_>>())
                .iter()
                .map(|s| s.name_any())
                .collect();
            assert_eq!(names, ["a", "b", "a"]);
        }
    }

    #[test]
    fn a_stopped_subscriber_does_not_stop_the_others() {
        let mut fan = FanOut::new();
        drop(fan.subscribe());
        let mut alive = fan.subscribe();
        fan.send(&watcher::Event::Apply(secret("b")));
        drop(fan);
        let got = futures::executor::block_on(alive.next());
        assert_eq!(got.map(|s| s.name_any()).as_deref(), Some("b"));
    }
}
