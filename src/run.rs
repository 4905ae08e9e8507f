//! `identity-operator run`: wires the three controllers, their watches, the caches, the admission
//! webhook, leader election and the HTTP endpoints (/metrics, /healthz, /readyz) together. The
//! composition root: it depends on every part, and no part depends on it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::Predicate;
use kube::runtime::{predicates, watcher, Controller, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::api::{Application, IdentityBackend, IdentityProvider};
use crate::controller::managed::Managed;
use crate::controller::registry::SlotKind;
use crate::controller::{
    application, identity_backend, identity_provider, recorder, BackendRegistry, Context, Error,
    RESYNC_READS_PER_OBJECT,
};
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

/// The resync interval when `--resync-interval` is not given and the objects are few: the default
/// before it was derived. A derived default is never shorter.
pub const RESYNC_FLOOR: Duration = Duration::from_secs(5 * 60);
/// A derived default is never longer: drift (someone edits the tenant by hand) should still be
/// corrected the same day.
pub const RESYNC_CEILING: Duration = Duration::from_secs(6 * 3600);
/// Round trip assumed for a request before any was observed: a SaaS tenant seen from a cluster in
/// another region (the emulator at `--latency-ms 20` measures ~22 ms).
pub const ASSUMED_REQUEST_LATENCY: Duration = Duration::from_millis(50);
/// A derived default lets one resync round use at most 1 / HEADROOM of the operator's request
/// capacity toward the server (concurrency / latency), so changes never wait behind drift checks.
const DERIVED_HEADROOM: u32 = 4;
/// A configured interval shorter than WARN_FACTOR × one round is reported: the drift checks alone
/// take more than half of the capacity (at 1, they take all of it and new objects starve, which is
/// how 6 000 objects at a 10 s resync never converged).
const WARN_FACTOR: u32 = 2;

/// How the resync interval was chosen, and whether it can keep up with the objects.
#[derive(Debug, Clone, PartialEq)]
pub struct ResyncPlan {
    /// The interval to use.
    pub interval: Duration,
    /// Time one resync round of every object takes when the operator does nothing else:
    /// objects × [`RESYNC_READS_PER_OBJECT`] × latency / concurrency.
    pub round: Duration,
    /// The shortest interval that is not reported (WARN_FACTOR × round).
    pub minimum: Duration,
    /// Derived from the object count (no `--resync-interval`).
    pub derived: bool,
    /// The interval is shorter than `minimum`: resyncs crowd out (or, at ≥ 1 round, starve) the work
    /// on changes.
    pub too_short: bool,
}

impl ResyncPlan {
    /// The share of the operator's request capacity toward the server that resyncs use (1.0: all).
    pub fn utilization(&self) -> f64 {
        self.round.as_secs_f64() / self.interval.as_secs_f64().max(f64::EPSILON)
    }
}

/// Chooses the resync interval (pure). `configured`: `--resync-interval`; `objects`: backends,
/// IdentityProviders and Applications in the scope; `concurrency`: reconciles at once per kind;
/// `latency`: mean identity-server round trip (observed, else [`ASSUMED_REQUEST_LATENCY`]).
///
/// Rule: one round of drift checks costs objects × 3 requests; at `concurrency` requests in flight it
/// takes `round` = objects × 3 × latency / concurrency. The derived default is
/// max(5m, 4 × round), rounded up to whole minutes, at most 6h; a configured interval below
/// 2 × round is reported as too short (it is used anyway: the user may know better).
pub fn plan_resync(
    configured: Option<Duration>,
    objects: usize,
    concurrency: u16,
    latency: Duration,
) -> ResyncPlan {
    let round = latency.mul_f64(
        objects as f64 * f64::from(RESYNC_READS_PER_OBJECT) / f64::from(concurrency.max(1)),
    );
    let minimum = round * WARN_FACTOR;
    let (interval, derived) = match configured {
        Some(c) => (c, false),
        None => {
            let wanted = (round * DERIVED_HEADROOM).as_secs().div_ceil(60) * 60;
            let wanted = Duration::from_secs(wanted).clamp(RESYNC_FLOOR, RESYNC_CEILING);
            (wanted, true)
        }
    };
    ResyncPlan {
        interval,
        round,
        minimum,
        derived,
        too_short: interval < minimum,
    }
}

/// Counts the objects of kind `K` in the scope with metadata-only lists: one request when the
/// apiserver reports `remainingItemCount`, else pages of 500.
async fn count_objects<K>(api: Api<K>) -> kube::Result<usize>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut params = ListParams::default().limit(500);
    let mut count = 0;
    loop {
        let page = api.list_metadata(&params).await?;
        count += page.items.len();
        if let Some(rest) = page.metadata.remaining_item_count {
            return Ok(count + usize::try_from(rest).unwrap_or(0));
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(count),
        }
    }
}

/// The identity-server requests observed so far: (seconds summed, count), from the operator's own
/// `identity_backend_request_duration_seconds` histograms (all operations).
fn backend_latency_totals(metrics: &Metrics) -> (f64, u64) {
    parse_latency_totals(&metrics.encode())
}

fn parse_latency_totals(text: &str) -> (f64, u64) {
    const NAME: &str = "identity_backend_request_duration_seconds";
    let (mut sum, mut count) = (0.0, 0);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        if !name.contains(NAME) {
            continue;
        }
        if name.ends_with("_sum") {
            sum += value.parse::<f64>().unwrap_or(0.0);
        } else if name.ends_with("_count") {
            count += value.parse::<u64>().unwrap_or(0);
        }
    }
    (sum, count)
}

/// Mean request latency between two [`backend_latency_totals`] readings, when requests were made.
fn mean_latency(before: (f64, u64), after: (f64, u64)) -> Option<Duration> {
    let n = after.1.checked_sub(before.1).filter(|n| *n > 0)?;
    let secs = (after.0 - before.0) / n as f64;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// Every minute: are the objects in the caches more than the resync interval can keep up with, at
/// the latency observed in the last minute? Logs a warning when it becomes too short (again at most
/// every 10 minutes while it stays so) and when it recovers.
async fn watch_resync_load(
    interval: Duration,
    concurrency: u16,
    count: impl Fn() -> usize,
    metrics: Arc<Metrics>,
    scope: String,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut last = backend_latency_totals(&metrics);
    let mut latency = ASSUMED_REQUEST_LATENCY;
    let mut warned: Option<std::time::Instant> = None;
    loop {
        tick.tick().await;
        let now = backend_latency_totals(&metrics);
        if let Some(l) = mean_latency(last, now) {
            latency = l;
        }
        last = now;
        let objects = count();
        let plan = plan_resync(Some(interval), objects, concurrency, latency);
        if plan.too_short {
            if warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(600)) {
                warned = Some(std::time::Instant::now());
                tracing::warn!(
                    namespace = %scope,
                    objects,
                    resync = ?interval,
                    round = ?plan.round,
                    minimum = ?plan.minimum,
                    latency = ?latency,
                    concurrency,
                    utilization = format!("{:.0}%", plan.utilization() * 100.0),
                    "resync interval too short for the objects: one round of drift checks \
                     ({objects} × {RESYNC_READS_PER_OBJECT} requests × {latency:?} / {concurrency}) \
                     takes {:?}, more than half of {interval:?}; changes wait behind resyncs. Set \
                     --resync-interval of at least {:?} (or leave it unset: a restart derives it)",
                    plan.round,
                    plan_resync(None, objects, concurrency, latency).interval,
                );
            }
        } else if warned.take().is_some() {
            tracing::info!(namespace = %scope, objects, resync = ?interval, round = ?plan.round, "resync interval keeps up with the objects again");
        }
    }
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

/// The resync interval of one scope: `--resync-interval`, or derived from the objects there now
/// (see [`plan_resync`]; the latency is assumed, no request was made yet). Logs how it was chosen,
/// or a warning when the configured one is too short for the objects.
async fn choose_resync(
    client: &Client,
    ns: &Option<String>,
    args: &RunArgs,
    scope: &str,
) -> Duration {
    let counted = futures::try_join!(
        count_objects(api::<IdentityBackend>(client, ns)),
        count_objects(api::<IdentityProvider>(client, ns)),
        count_objects(api::<Application>(client, ns)),
    );
    let objects = match counted {
        Ok((b, i, a)) => b + i + a,
        Err(e) => {
            tracing::warn!(namespace = %scope, error = %e, "could not count the objects; resync as for none");
            0
        }
    };
    let latency = ASSUMED_REQUEST_LATENCY;
    let plan = plan_resync(args.resync_interval, objects, args.concurrency, latency);
    if plan.derived {
        tracing::info!(
            namespace = %scope,
            objects,
            resync = ?plan.interval,
            round = ?plan.round,
            "resync interval {:?} derived from {objects} objects: one round of drift checks takes \
             ~{objects} × {RESYNC_READS_PER_OBJECT} requests × {latency:?} (assumed) / concurrency \
             {} = {:?}; interval = max({RESYNC_FLOOR:?}, {DERIVED_HEADROOM} × round) in whole minutes \
             (set --resync-interval to choose it)",
            plan.interval,
            args.concurrency,
            plan.round,
        );
    }
    if plan.too_short {
        tracing::warn!(
            namespace = %scope,
            objects,
            resync = ?plan.interval,
            round = ?plan.round,
            minimum = ?plan.minimum,
            "resync interval {:?} is too short for {objects} objects: one round of drift checks \
             takes ~{:?} at {latency:?} per request (assumed), concurrency {}; keep it above {:?} \
             (or raise --concurrency)",
            plan.interval,
            plan.round,
            args.concurrency,
            plan.minimum,
        );
    }
    plan.interval
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
    fn resync_plan_by_object_count() {
        const MIN: u64 = 60;
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        // (configured, objects, concurrency, latency) -> (interval, derived, too_short)
        type Case = (Option<Duration>, usize, u16, Duration, Duration, bool, bool);
        let table: &[Case] = &[
            // Few objects: the old default.
            (None, 0, 8, ms(50), s(5 * MIN), true, false),
            (None, 121, 8, ms(50), s(5 * MIN), true, false),
            (None, 1_201, 8, ms(50), s(5 * MIN), true, false),
            // 6 001 objects at 50 ms: round 112.5 s, 4 × = 450 s -> 8 min.
            (None, 6_001, 8, ms(50), s(8 * MIN), true, false),
            // ... at 20 ms: round 45 s, 4 × = 180 s -> the floor.
            (None, 6_001, 8, ms(20), s(5 * MIN), true, false),
            // More concurrency, shorter round.
            (None, 6_001, 32, ms(50), s(5 * MIN), true, false),
            // 100 000 objects at 50 ms: round 1 875 s, 4 × = 2 h 5 min.
            (None, 100_000, 8, ms(50), s(125 * MIN), true, false),
            // Never above the ceiling, reported when even that is too short.
            (None, 10_000_000, 8, ms(50), s(6 * 3600), true, true),
            // Concurrency 0 is treated as 1 (no division by zero).
            (None, 1_000, 0, ms(50), s(10 * MIN), true, false),
            // Configured: kept as given, reported when below 2 rounds.
            // BENCHMARKS.md's stall: 6 001 objects at 10 s (round at 20 ms: 45 s).
            (Some(s(10)), 6_001, 8, ms(20), s(10), false, true),
            (Some(s(89)), 6_001, 8, ms(20), s(89), false, true),
            (Some(s(91)), 6_001, 8, ms(20), s(91), false, false),
            (Some(s(5 * MIN)), 6_001, 8, ms(20), s(5 * MIN), false, false),
            // The small benches at 10 s: 121 objects (round 0.9 s), 1 201 (9 s: too short).
            (Some(s(10)), 121, 8, ms(20), s(10), false, false),
            (Some(s(10)), 1_201, 8, ms(20), s(10), false, true),
            // A configured interval is never changed, even when very long or the scope empty.
            (Some(s(24 * 3600)), 0, 8, ms(50), s(24 * 3600), false, false),
        ];
        for &(configured, objects, concurrency, latency, interval, derived, too_short) in table {
            let plan = plan_resync(configured, objects, concurrency, latency);
            let case =
                format!("{configured:?} {objects} objects, concurrency {concurrency}, {latency:?}");
            assert_eq!(plan.interval, interval, "{case}: {plan:?}");
            assert_eq!(plan.derived, derived, "{case}: {plan:?}");
            assert_eq!(plan.too_short, too_short, "{case}: {plan:?}");
            // Below the ceiling, a derived interval leaves 3/4 of the capacity to changes.
            if plan.derived && plan.interval < RESYNC_CEILING {
                assert!(
                    plan.utilization() <= 1.0 / f64::from(DERIVED_HEADROOM) + 1e-9,
                    "{case}"
                );
            }
        }
    }

    #[test]
    fn latency_from_the_backend_histograms() {
        let m = Metrics::new();
        assert_eq!(backend_latency_totals(&m), (0.0, 0));
        m.backend.observe("get_idp", Some(200), 0.020);
        m.backend.observe("get_application", Some(200), 0.030);
        m.backend.observe("get_application", None, 0.040);
        let (sum, count) = backend_latency_totals(&m);
        assert_eq!(count, 3);
        assert!((sum - 0.090).abs() < 1e-9, "{sum}");
        assert_eq!(
            mean_latency((0.0, 0), (sum, count)).map(|d| d.as_millis()),
            Some(30)
        );
        assert_eq!(mean_latency((sum, count), (sum, count)), None);
        // Reconcile durations are not request latencies.
        m.reconciled("Application", "success", Duration::from_secs(9));
        assert_eq!(backend_latency_totals(&m).1, 3);
    }

    #[test]
    fn the_secret_watch_asks_for_metadata_only() {
        // What keeps secret values out of the list/watch responses (and the operator's memory): kube
        // sends `Accept: application/json;as=PartialObjectMetadata...` for this type. A kube upgrade
        // that changed it would need `metadata_watcher` back.
        assert!(PartialObjectMeta::<KubeSecret>::metadata_api());
        assert!(!Application::metadata_api());
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
