//! `identity-operator run`: wires the three controllers, their watches, the caches, the admission
//! webhook, leader election and the HTTP endpoints (/metrics, /healthz, /readyz) together. The
//! composition root: it depends on every part, and no part depends on it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::Controller;
use kube::{Client, Resource, ResourceExt};

use crate::api::{Application, IdentityBackend, IdentityProvider};
use crate::controller::managed::Managed;
use crate::controller::registry::SlotKind;
use crate::controller::{
    application, identity_backend, identity_provider, recorder, BackendRegistry, Context, Error,
};
use crate::flow::DependencyIndex;
use crate::telemetry::{self, Metrics};

mod resync;
mod watch;

use resync::{choose_resync, watch_resync_load};
pub use resync::{plan_resync, ResyncPlan, ASSUMED_REQUEST_LATENCY, RESYNC_CEILING, RESYNC_FLOOR};
use watch::{api, primary, select, shared_watch, FanOut, QuickBackoff};

/// Options of `identity-operator run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Watch only these namespaces (repeat the flag or separate with commas; default: all
    /// namespaces). Each namespace gets its own caches and watches, so RBAC can be limited to them.
    #[arg(long = "namespace", env = "WATCH_NAMESPACE", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// How often each object is compared with the server when nothing changes (jittered ±10 %),
    /// e.g. 300s, 5m, 1h. Default: derived at start from the number of objects (at least 5m, more
    /// above a few thousand objects); a warning is logged when the interval cannot keep up.
    #[arg(long, value_parser = parse_duration)]
    pub resync_interval: Option<Duration>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Reconciles running at once per kind. With several IdentityBackends one backend holds at
    /// most half of them (one while its server times out or sends oversized answers), so a
    /// broken server cannot stall the others.
    #[arg(long, default_value_t = 8)]
    pub concurrency: u16,
    /// Timeout of one request attempt to an identity server (connect, headers and body). A
    /// timeout is retried at most once per call, and not while that server keeps timing out.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub backend_request_timeout: Duration,
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
    /// The Application admission webhook (served by every replica, leader or not).
    #[command(flatten)]
    pub webhook: crate::webhook::WebhookArgs,
}

use crate::duration::parse_duration;

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
    // Before the election: every replica answers admission reviews, not only the leader.
    let webhook = crate::webhook::start(
        client.clone(),
        &args.webhook,
        &args.namespaces,
        shutdown.clone(),
    )
    .await?;
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
    if let Some(w) = webhook {
        w.abort();
    }
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
    let scope = ns.as_deref().unwrap_or("*").to_string();
    let resync = choose_resync(&client, &ns, &args, &scope).await;

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
    // Secrets as metadata only: `Api<PartialObjectMeta<_>>` lists and watches with the
    // PartialObjectMetadata Accept header (kube ≥ 5), so no secret value crosses the wire or sits
    // in a cache; their resourceVersions tell when a backend's client must be rebuilt.
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
        registry: BackendRegistry::new(secrets, backend_metrics, args.backend_request_timeout),
        index: Mutex::new(DependencyIndex::default()),
        recorder: recorder(client.clone()),
        metrics,
        resync,
        block_gate: Default::default(),
        memo: Default::default(),
        concurrency: usize::from(args.concurrency.max(1)),
    });
    tracing::info!(namespace = %scope, resync = ?resync, "starting controllers");
    let (b, i, a) = (backends.clone(), idps.clone(), apps.clone());
    let _resync_load = AbortOnDrop(tokio::spawn(watch_resync_load(
        resync,
        args.concurrency,
        move || b.state().len() + i.state().len() + a.state().len(),
        ctx.metrics.clone(),
        scope,
    )));

    let config = ControllerConfig::default().concurrency(args.concurrency);

    let c = ctx.clone();
    let backend_ctrl = Controller::for_stream(primary(backend_events), backends.clone())
        .with_config(config.clone())
        .trigger_backoff(QuickBackoff::default())
        .watches_shared_stream(secrets_for_backends, move |s| {
            select(&c.backends, s.namespace(), |b: &IdentityBackend| {
                crate::controller::secret_hold::secrets_of(b).contains(&s.name_any())
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
                let r = i.spec.client_secret_ref();
                r.is_some_and(|r| r.name == s.name_any())
            })
        })
        .graceful_shutdown_on(stop.clone())
        .run(
            timed(
                "IdentityProvider",
                fair(SlotKind::IdentityProvider, identity_provider::reconcile),
            ),
            managed_error_policy,
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
            timed(
                "Application",
                fair(SlotKind::Application, application::reconcile),
            ),
            managed_error_policy,
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

/// How soon an object retries when its backend already holds its share of the reconcile slots
/// (and is not degraded, else the backend's backoff applies): long enough not to spin, short
/// enough that a healthy backend's queue drains at the speed of its slots.
const SLOT_BUSY_REQUEUE: Duration = Duration::from_secs(1);

/// The object's backend, as the registry keys it.
fn backend_key<K: Managed>(obj: &K) -> ObjectRef<IdentityBackend> {
    ObjectRef::new(&obj.backend().name).within(&obj.namespace().unwrap_or_default())
}

/// Runs a reconciler inside a reconcile slot of the object's backend
/// ([`BackendRegistry::enter`]). When the backend holds its share already, the reconcile is
/// requeued at once (after the backend's backoff when it is degraded) instead of waiting: a
/// waiting reconcile would hold one of the controller's slots, which is what let one tarpit
/// server stall every backend.
fn fair<K, F, Fut>(
    kind: SlotKind,
    f: F,
) -> impl Fn(Arc<K>, Arc<Context>) -> ReconcileFuture + Send + Sync + Clone + 'static
where
    K: Managed,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<Action, Error>> + Send + 'static,
{
    move |obj, ctx| {
        let f = f.clone();
        Box::pin(async move {
            let backend = backend_key(obj.as_ref());
            // Zero before the backends' cache is filled (it is swapped in whole): slot_share
            // then gives the half share. Not Store::wait_until_ready: its one-shot wakes only the
            // last of several waiters, which left concurrent reconciles parked for good.
            let backends = ctx.backends.state().len();
            let Some(slot) = ctx
                .registry
                .enter(kind, &backend, ctx.concurrency, backends)
            else {
                let wait = ctx
                    .registry
                    .health(&backend)
                    .degraded()
                    .map_or(SLOT_BUSY_REQUEUE, |d| d.backoff);
                return Ok(Action::requeue(
                    wait + crate::controller::jittered(wait) / 10,
                ));
            };
            let result = f(obj, ctx).await;
            drop(slot);
            result
        })
    }
}

/// [`error_policy`], but never sooner than the backoff of the object's backend while that
/// backend is degraded: its objects slow down, the others keep their pace.
fn managed_error_policy<K: Managed>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let backoff = ctx
        .registry
        .health(&backend_key(obj.as_ref()))
        .degraded()
        .map(|d| d.backoff);
    tracing::warn!(object = %ObjectRef::from_obj(obj.as_ref()), error = %error, "reconcile failed");
    Action::requeue(retry_delay(error).max(backoff.unwrap_or_default()))
}

/// Transient failures back off briefly; everything else waits longer (a spec or Secret change
/// triggers a reconcile sooner anyway).
fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    error: &Error,
    _ctx: Arc<Context>,
) -> Action {
    tracing::warn!(object = %ObjectRef::from_obj(obj.as_ref()), error = %error, "reconcile failed");
    Action::requeue(retry_delay(error))
}

/// The requeue delay after `error` (see [`error_policy`]). Pure.
fn retry_delay(error: &Error) -> Duration {
    match error {
        Error::Backend { source, .. } => match source {
            crate::backend::BackendError::RateLimited {
                retry_after: Some(d),
            } => *d,
            s if s.is_retryable() => Duration::from_secs(5),
            _ => Duration::from_secs(30),
        },
        Error::Kube(_) => Duration::from_secs(5),
        Error::CacheNotReady(_) => Duration::from_secs(1),
        _ => Duration::from_secs(30),
    }
}
