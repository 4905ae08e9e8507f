//! `identity-bench converge`: the operator at scale on a real control plane against the emulator.
//!
//! One run: start kube-apiserver + etcd (`scripts/dev-env up --no-emulator`, own state dir), an
//! in-process emulator adding `--latency-ms` to every request, apply the CRDs, a namespace, a backend;
//! start the operator binary as a child process under a ServiceAccount of its own (so that a
//! FlowSchema of its own counts exactly its requests to the apiserver); server-side apply N
//! IdentityProviders and M Applications with bounded concurrency; then measure
//!
//! 1. convergence: time until every object has Ready=True (polled with list calls);
//! 2. backend requests until then, by operation (the emulator's counters);
//! 3. a steady state of a few resync intervals: backend reads and writes (writes should be 0);
//! 4. the JIT toggle: JIT off (conflictPolicy Warn) on the IdP with the most dependents (or on the
//!    hub of `--hub-dependents K`), time until every dependent with a TOTP step shows
//!    InterconnectionConflict=True, and the backend requests it caused;
//! 5. the operator's peak RSS and CPU time (/proc) and its apiserver requests
//!    (`apiserver_flowcontrol_dispatched_requests_total` of its FlowSchema).
//!
//! Nothing here asserts a limit: the numbers are reported (table and JSON) for BENCHMARKS.md.

pub mod admission;
mod probe;
mod report;
mod workload;

pub use report::{BackendRequests, JitToggle, Report, SteadyState};
pub use workload::Workload;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};

use identity_client::ratelimit::{drift_plan, Limit, DEFAULT_DRIFT_PERCENT};
use identity_client::Secret;
use identity_emulator::{Emulator, EmulatorConfig, EmulatorHandle, Faults, Quota};
use identity_testkit::{ControlPlane, Output};
use workload::{app_name, idp_name, BACKEND, IDP_SECRET};

/// Field manager of everything the bench applies.
const MANAGER: &str = "identity-operator-bench";
/// Tenant on the emulator.
const TENANT: &str = "bench";
/// M2M client id on the emulator.
const CLIENT_ID: &str = "bench-m2m";

/// Options of `identity-bench converge`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// IdentityProviders to create (JIT on).
    #[arg(long, default_value_t = 20)]
    pub idps: usize,
    /// Applications to create, each offering 1–3 of the IdPs; ~80 % with a TOTP step after them.
    #[arg(long, default_value_t = 100)]
    pub apps: usize,
    /// Latency the emulator adds to every request, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The operator's --resync-interval (e.g. 10s, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub resync_interval: Duration,
    /// Length of the steady-state window after convergence, seconds (default: 3 resync intervals).
    #[arg(long)]
    pub steady_seconds: Option<u64>,
    /// Use the control plane KUBECONFIG points at instead of starting one (it is not stopped; the
    /// bench namespace is left behind).
    #[arg(long)]
    pub kubeconfig_from_env: bool,
    /// The dev-env script that starts the control plane. Default: scripts/dev-env of the checkout
    /// the binary was run from (the current directory or above, else above the binary), never a
    /// path of the machine it was built on.
    #[arg(long, env = "IDENTITY_OPERATOR_DEV_ENV")]
    pub dev_env: Option<PathBuf>,
    /// Server-side applies in flight at once while creating the objects.
    #[arg(long, default_value_t = 16)]
    pub apply_concurrency: usize,
    /// The operator's --concurrency (reconciles at once per kind).
    #[arg(long, default_value_t = 8)]
    pub operator_concurrency: u16,
    /// Give up waiting for convergence (or for the JIT toggle) after this long.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Seed of the generated graph (which application offers which IdPs).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Add one hub IdP offered by the first K applications (each with a TOTP step after it); the
    /// JIT toggle then turns JIT off on the hub and waits until all K are flagged.
    #[arg(long, value_name = "K")]
    pub hub_dependents: Option<usize>,
    /// The IdentityBackend's spec.maxRequestsPerSecond (default: no limit).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "max_requests_per_minute")]
    pub max_requests_per_second: Option<u32>,
    /// The IdentityBackend's spec.maxRequestsPerMinute, its request budget (default: none, as for
    /// a self-hosted server; the bench's backend is a loopback URL).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_requests_per_minute: Option<u32>,
    /// Make the emulator enforce a quota like Asgardeo's: this many requests per minute (sliding
    /// window); the 429s it sends are reported.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub quota_per_minute: Option<u32>,
    /// RUST_LOG of the operator child process.
    #[arg(long, default_value = "info")]
    pub operator_log_level: String,
    /// The operator binary to measure. Default: `identity-operator` beside this binary (both are
    /// built into the same target folder: `cargo build --release -p identity-operator -p identity-bench`).
    #[arg(long, env = "IDENTITY_OPERATOR_BIN")]
    pub operator_bin: Option<PathBuf>,
}

use identity_operator::duration::parse_duration;

/// Runs the bench, prints the table, writes the JSON if asked, and returns the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    if args.idps == 0 {
        bail!("--idps must be at least 1");
    }
    if args.apply_concurrency == 0 {
        bail!("--apply-concurrency must be at least 1");
    }
    let mut plane = if args.kubeconfig_from_env {
        ControlPlane::from_env().context("--kubeconfig-from-env")?
    } else {
        let script = locate_dev_env(
            args.dev_env.as_deref(),
            std::env::current_dir().ok().as_deref(),
            std::env::current_exe().ok().as_deref(),
        )?;
        let dir = std::env::temp_dir().join(format!("identity-operator-bench-{}", suffix()));
        tokio::task::spawn_blocking(move || {
            ControlPlane::start(&script, &dir, "bench", Output::Inherit)
        })
        .await??
    };
    let result = tokio::select! {
        r = measure(&args, &plane.kubeconfig) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    tokio::task::spawn_blocking(move || plane.stop()).await?;
    let report = result?;
    println!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("bench: wrote {}", path.display());
    }
    Ok(report)
}

/// Where scripts/dev-env is: the explicit path, else the first `scripts/dev-env` found in the
/// working directory or its parents, then in the binary's parents (target/<profile>/ of a checkout).
fn locate_dev_env(
    explicit: Option<&Path>,
    cwd: Option<&Path>,
    exe: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let starts = cwd.into_iter().chain(exe.and_then(Path::parent));
    for start in starts {
        for dir in start.ancestors() {
            let candidate = dir.join("scripts/dev-env");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "scripts/dev-env not found from the working directory or the binary's location: run from a checkout, or pass --dev-env PATH (or --kubeconfig-from-env)"
    )
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// The operator child process; killed when dropped.
struct Operator {
    child: Child,
    metrics_port: u16,
}

impl Operator {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything after the control plane is up.
async fn measure(args: &BenchArgs, kubeconfig: &Path) -> anyhow::Result<Report> {
    let admin_kubeconfig = Kubeconfig::read_from(kubeconfig)?;
    let config =
        kube::Config::from_custom_kubeconfig(admin_kubeconfig, &KubeConfigOptions::default())
            .await?;
    let client = Client::try_from(config)?;
    let all_clients_before = apiserver_total(&client).await?;

    install_crds(&client).await?;
    let ns = format!("bench-{}", suffix());
    let workdir = std::env::temp_dir().join(format!("identity-operator-{ns}"));
    std::fs::create_dir_all(&workdir)?;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
    )
    .await
    .context("creating the namespace")?;
    eprintln!(
        "bench: namespace {ns}; operator log and kubeconfig in {}",
        workdir.display()
    );

    // The operator's own identity and FlowSchema: its apiserver requests, counted apart.
    let flow_schema = format!("identity-operator-{ns}");
    let op_kubeconfig = operator_identity(&client, &ns, &flow_schema, kubeconfig, &workdir).await?;

    // The emulator and the backend pointing at it.
    let client_secret = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let emulator = Emulator::start(EmulatorConfig {
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(client_secret.clone()),
        faults: Faults {
            latency_ms: args.latency_ms,
            quota: args.quota_per_minute.map(|requests| Quota {
                requests,
                window_secs: 60,
            }),
            ..Faults::default()
        },
        ..EmulatorConfig::default()
    })
    .await?;
    for obj in backend_objects(
        &client_secret,
        &emulator,
        args.max_requests_per_second,
        args.max_requests_per_minute,
    ) {
        apply(&client, &ns, &obj).await?;
    }

    let mut operator = start_operator(args, &ns, &op_kubeconfig, &workdir)?;
    let operator_log = workdir.join("operator.log");

    // Create everything, then wait for Ready everywhere.
    let workload = match args.hub_dependents {
        Some(k) => Workload::with_hub(args.idps, args.apps, k, args.seed),
        None => Workload::generate(args.idps, args.apps, args.seed),
    };
    let objects: Vec<Value> = (0..workload.idps)
        .map(|i| workload.idp_object(i))
        .chain((0..args.apps).map(|i| workload.app_object(i)))
        .collect();
    eprintln!(
        "bench: applying {} IdentityProviders and {} Applications ({} at once)",
        workload.idps, args.apps, args.apply_concurrency
    );
    let verbs_t0 = apiserver_by_verb(&client).await?;
    let t0 = Instant::now();
    futures::stream::iter(objects.iter().map(|o| apply(&client, &ns, o)))
        .buffer_unordered(args.apply_concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    let create_seconds = t0.elapsed().as_secs_f64();
    eprintln!("bench: applied in {create_seconds:.1}s; waiting for Ready");
    let total = workload.idps + args.apps + 1;
    wait_converged(&client, &ns, args, total, &mut operator, t0, &operator_log).await?;
    let converge_seconds = t0.elapsed().as_secs_f64();
    eprintln!("bench: converged in {converge_seconds:.1}s");
    let converge_stats = emulator.stats();
    let cpu_converge = probe::cpu_seconds(operator.pid()).unwrap_or(0.0);
    let api_converge = operator_requests(&client, &flow_schema).await?;
    let verbs_converge = probe::delta(&verbs_t0, &apiserver_by_verb(&client).await?);

    // Steady state.
    let steady = Duration::from_secs(
        args.steady_seconds
            .unwrap_or(3 * args.resync_interval.as_secs().max(1)),
    );
    eprintln!("bench: steady state for {}s", steady.as_secs());
    emulator.reset_stats();
    let api_before = operator_requests(&client, &flow_schema).await?;
    let verbs_before = apiserver_by_verb(&client).await?;
    tokio::time::sleep(steady).await;
    let steady_stats = emulator.stats();
    let api_after = operator_requests(&client, &flow_schema).await?;
    let verbs_after = apiserver_by_verb(&client).await?;
    let steady_state = SteadyState {
        seconds: steady.as_secs_f64(),
        resync_interval_seconds: args.resync_interval.as_secs_f64(),
        reads: steady_stats.reads,
        writes: steady_stats.writes,
        token_requests: steady_stats.token_requests,
        by_operation: steady_stats.operations.clone(),
        apiserver_requests: api_after.saturating_sub(api_before),
        apiserver_requests_by_verb: probe::delta(&verbs_before, &verbs_after),
    };

    // JIT off on the most depended-on IdP.
    let (idp, deps, conflicting) = workload.most_depended_on();
    eprintln!(
        "bench: JIT off on {} ({} dependents, {} with TOTP after it)",
        idp_name(idp),
        deps.len(),
        conflicting.len()
    );
    emulator.reset_stats();
    let mut off = workload.idp_object(idp);
    off["spec"]["jit"]["enabled"] = false.into();
    off["spec"]["conflictPolicy"] = "Warn".into();
    let t1 = Instant::now();
    apply(&client, &ns, &off).await?;
    wait_conflicts(&client, &ns, args, &conflicting, &mut operator).await?;
    let jit_toggle_seconds = t1.elapsed().as_secs_f64();
    let toggle_stats = emulator.stats();
    eprintln!("bench: conflicts shown after {jit_toggle_seconds:.2}s");

    // The operator's totals.
    let pid = operator.pid();
    let operator_peak_rss_mib = probe::peak_rss_mib(pid).unwrap_or(0.0);
    let operator_cpu_seconds = probe::cpu_seconds(pid).unwrap_or(0.0);
    let apiserver_requests = operator_requests(&client, &flow_schema).await?;
    let (operator_reconciles, operator_reconcile_mean_seconds) =
        operator_metrics(operator.metrics_port).await;
    drop(operator);
    let all_clients_after = apiserver_total(&client).await?;

    if args.kubeconfig_from_env {
        cleanup_cluster_scoped(&client, &flow_schema).await;
        eprintln!(
            "bench: namespace {ns} left behind (its objects carry the operator's finalizers)"
        );
    }

    let backend_requests = BackendRequests::from(&converge_stats);
    let budget = budget_per_minute(args);
    let drift = report::drift_round(
        total,
        steady_state.reads,
        steady_state.seconds,
        drift_interval(args, total),
    );
    Ok(Report {
        max_requests_per_minute: budget,
        quota_per_minute: args.quota_per_minute,
        over_quota_converge: converge_stats.over_quota,
        over_quota_total: converge_stats.over_quota
            + steady_stats.over_quota
            + toggle_stats.over_quota,
        drift,
        idps: workload.idps,
        apps: args.apps,
        latency_ms: args.latency_ms,
        hub_dependents: workload.hub.map(|h| workload.dependents(h).len()),
        max_requests_per_second: args.max_requests_per_second,
        resync_interval_seconds: args.resync_interval.as_secs_f64(),
        operator_concurrency: args.operator_concurrency,
        apply_concurrency: args.apply_concurrency,
        machine: probe::machine(),
        create_seconds,
        converge_seconds,
        backend_requests_per_object: backend_requests.total as f64 / total as f64,
        backend_bound_seconds: report::backend_bound_seconds(
            backend_requests.total,
            args.latency_ms,
            args.operator_concurrency,
            budget,
        ),
        apiserver_requests_per_object: api_converge as f64 / total as f64,
        backend_requests,
        steady_state,
        jit_toggle: JitToggle {
            identity_provider: idp_name(idp),
            dependents: deps.len(),
            conflicting_dependents: conflicting.len(),
            backend_requests: BackendRequests::from(&toggle_stats),
        },
        jit_toggle_seconds,
        operator_peak_rss_mib,
        operator_cpu_seconds,
        operator_cpu_seconds_converge: cpu_converge,
        apiserver_requests,
        apiserver_requests_converge: api_converge,
        apiserver_requests_by_verb_converge: verbs_converge,
        apiserver_requests_all_clients: all_clients_after.saturating_sub(all_clients_before),
        operator_reconciles,
        operator_reconcile_mean_seconds,
        operator_log: operator_log.display().to_string(),
    })
}

fn ar(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

fn crd_resource(kind: &str) -> ApiResource {
    ar("identity-operator.io/v1alpha1", kind)
}

/// Server-side applies one object in `ns`; retries a few times (a CRD just Established may still
/// answer 404 for a moment, and the apiserver may be briefly busy).
async fn apply(client: &Client, ns: &str, obj: &Value) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &ar(
            obj["apiVersion"].as_str().unwrap_or("v1"),
            obj["kind"].as_str().unwrap_or_default(),
        ),
    );
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let mut attempt = 0;
    loop {
        match api
            .patch(
                name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(obj),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if attempt < 10 && retryable(&e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(anyhow!("applying {} {name}: {e}", obj["kind"])),
        }
    }
}

fn retryable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 404 || s.code == 429 || s.code >= 500,
        _ => true,
    }
}

/// Applies the generated CRDs and waits until they are Established.
async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in identity_api::crds() {
        let name = crd.name_any();
        let mut body = serde_json::to_value(&crd)?;
        body["apiVersion"] = "apiextensions.k8s.io/v1".into();
        body["kind"] = "CustomResourceDefinition".into();
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .with_context(|| format!("applying CRD {name}"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let crd = api.get(&name).await?;
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            if Instant::now() > deadline {
                bail!("CRD {name} not Established after 60s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// A ServiceAccount bound to cluster-admin, a FlowSchema matching only it (exempt priority level,
/// like the admin user: no throttling), a token, and a kubeconfig with that token. Returns the
/// kubeconfig's path.
async fn operator_identity(
    client: &Client,
    ns: &str,
    flow_schema: &str,
    admin_kubeconfig: &Path,
    workdir: &Path,
) -> anyhow::Result<PathBuf> {
    let sa_name = "identity-operator";
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": sa_name}}))?,
    )
    .await
    .context("creating the operator's ServiceAccount")?;
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": flow_schema},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}]
    });
    let schema = json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": flow_schema},
        "spec": {
            "priorityLevelConfiguration": {"name": "exempt"},
            "matchingPrecedence": 10,
            "rules": [{
                "subjects": [{"kind": "ServiceAccount", "serviceAccount": {"name": sa_name, "namespace": ns}}],
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"], "clusterScope": true}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
            }]
        }
    });
    for obj in [&binding, &schema] {
        let api: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &ar(
                obj["apiVersion"].as_str().unwrap_or_default(),
                obj["kind"].as_str().unwrap_or_default(),
            ),
        );
        api.patch(
            obj["metadata"]["name"].as_str().unwrap_or_default(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await
        .with_context(|| format!("applying {}", obj["kind"]))?;
    }
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 6 * 3600}}))?;
    let token = sas
        .create_token_request(sa_name, &PostParams::default(), &request)
        .await
        .context("requesting a token for the operator")?
        .status
        .map(|s| s.token)
        .context("TokenRequest without a token")?;
    // The admin kubeconfig with every user replaced by the token (a client certificate would win
    // over the token and make the operator an admin again).
    let mut kc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(admin_kubeconfig)?)?;
    if let Some(users) = kc.get_mut("users").and_then(|u| u.as_sequence_mut()) {
        for user in users {
            user["user"] = serde_yaml::to_value(json!({ "token": token }))?;
        }
    }
    kc["contexts"][0]["context"]["namespace"] = ns.into();
    let path = workdir.join("operator.kubeconfig");
    write_private(&path, &serde_yaml::to_string(&kc)?)?;
    Ok(path)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

async fn cleanup_cluster_scoped(client: &Client, name: &str) {
    for (api_version, kind) in [
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"),
    ] {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar(api_version, kind));
        let _ = api.delete(name, &Default::default()).await;
    }
}

/// The backend's budget per minute, as the operator derives it from the bench's flags (the bench
/// backend is a loopback URL: no Asgardeo default).
fn budget_per_minute(args: &BenchArgs) -> Option<u32> {
    Limit::choose(
        args.max_requests_per_minute,
        args.max_requests_per_second,
        false,
    )
    .per_minute()
}

/// The drift-check interval the operator uses for `objects` objects on the bench backend: the
/// resync, or longer when a round does not fit in half the budget (as the operator computes it).
fn drift_interval(args: &BenchArgs, objects: usize) -> Duration {
    drift_plan(
        objects,
        identity_operator::controller::RESYNC_READS_PER_OBJECT,
        budget_per_minute(args),
        DEFAULT_DRIFT_PERCENT,
        args.resync_interval,
    )
    .interval
}

/// The backend Secret and IdentityBackend pointing at the emulator, and the Secret every IdP's
/// OAuth client secret comes from.
fn backend_objects(
    client_secret: &str,
    emulator: &EmulatorHandle,
    max_requests_per_second: Option<u32>,
    max_requests_per_minute: Option<u32>,
) -> Vec<Value> {
    let mut backend = json!({
        "apiVersion": "identity-operator.io/v1alpha1", "kind": "IdentityBackend",
        "metadata": {"name": BACKEND},
        "spec": {
            "wso2IdentityServer": {"url": emulator.url(), "tenant": TENANT},
            "credentialsSecretRef": {"name": format!("{BACKEND}-m2m")}
        }
    });
    if let Some(rate) = max_requests_per_second {
        backend["spec"]["maxRequestsPerSecond"] = rate.into();
    }
    if let Some(rate) = max_requests_per_minute {
        backend["spec"]["maxRequestsPerMinute"] = rate.into();
    }
    vec![
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("{BACKEND}-m2m"),
                "labels": {identity_operator::controller::USE_LABEL: identity_operator::controller::USE_BACKEND_CREDENTIALS}},
            "stringData": {"client-id": CLIENT_ID, "client-secret": client_secret}
        }),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": IDP_SECRET,
                "labels": {identity_operator::controller::USE_LABEL: identity_operator::controller::USE_IDP_CLIENT_SECRET}},
            "stringData": {"client-secret": "bench-google-client-secret"}
        }),
        backend,
    ]
}

fn start_operator(
    args: &BenchArgs,
    ns: &str,
    kubeconfig: &Path,
    workdir: &Path,
) -> anyhow::Result<Operator> {
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = std::fs::File::create(workdir.join("operator.log"))?;
    let exe = operator_binary(args.operator_bin.as_deref())?;
    let child = Command::new(&exe)
        .args([
            "run",
            "--namespace",
            ns,
            "--resync-interval",
            &format!("{}ms", args.resync_interval.as_millis()),
            "--metrics-addr",
            &format!("127.0.0.1:{metrics_port}"),
            "--concurrency",
            &args.operator_concurrency.to_string(),
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", &args.operator_log_level)
        .env_remove("WATCH_NAMESPACE")
        .env_remove("POD_NAMESPACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting the operator")?;
    Ok(Operator {
        child,
        metrics_port,
    })
}

/// The operator binary: the one given, else `identity-operator` in this binary's folder.
fn operator_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe().context("finding the bench's own binary")?;
    let beside = exe.with_file_name("identity-operator");
    if beside.is_file() {
        Ok(beside)
    } else {
        bail!(
            "no identity-operator binary beside {}: build it with `cargo build -p identity-operator` (same profile) or pass --operator-bin",
            exe.display()
        )
    }
}

/// Every object of `kind` in `ns`, listed in pages of 500.
async fn list_all(client: &Client, ns: &str, kind: &str) -> anyhow::Result<Vec<DynamicObject>> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &crd_resource(kind));
    let mut out = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        out.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// Status of condition `type_` of an object.
fn condition<'a>(obj: &'a DynamicObject, type_: &str) -> Option<&'a Value> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn has_condition(obj: &DynamicObject, type_: &str, status: &str) -> bool {
    condition(obj, type_).is_some_and(|c| c["status"] == status)
}

/// How often to list while waiting: often for small runs; for large ones rarely enough that the
/// bench's own lists (thousands of objects with status) do not load the apiserver much. `fine`: a
/// short wait measured in fractions of a second (the JIT toggle).
fn poll_interval(objects: usize, fine: bool) -> Duration {
    match (objects > 2000, fine) {
        (false, true) => Duration::from_millis(250),
        (false, false) | (true, true) => Duration::from_secs(1),
        (true, false) => Duration::from_secs(5),
    }
}

async fn wait_converged(
    client: &Client,
    ns: &str,
    args: &BenchArgs,
    total: usize,
    operator: &mut Operator,
    t0: Instant,
    log: &Path,
) -> anyhow::Result<()> {
    let mut last_report = Instant::now();
    loop {
        if let Some(status) = operator.exited() {
            bail!("the operator exited ({status}); see {}", log.display());
        }
        let mut not_ready = Vec::new();
        let mut listed = 0;
        for kind in ["IdentityBackend", "IdentityProvider", "Application"] {
            for obj in list_all(client, ns, kind).await? {
                listed += 1;
                if !has_condition(&obj, "Ready", "True") {
                    not_ready.push((kind, obj));
                }
            }
        }
        let ready = listed - not_ready.len();
        if ready == total && listed == total {
            return Ok(());
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!(
                "bench: {ready}/{total} Ready after {:.0}s",
                t0.elapsed().as_secs_f64()
            );
        }
        if t0.elapsed() > args.timeout {
            let sample: Vec<String> = not_ready
                .iter()
                .take(5)
                .map(|(kind, o)| {
                    format!(
                        "{kind} {}: {}",
                        o.name_any(),
                        condition(o, "Ready").cloned().unwrap_or(Value::Null)
                    )
                })
                .collect();
            bail!(
                "not converged after {:?}: {} not Ready, e.g. {sample:?}; see {}",
                args.timeout,
                not_ready.len(),
                log.display()
            );
        }
        tokio::time::sleep(poll_interval(total, false)).await;
    }
}

async fn wait_conflicts(
    client: &Client,
    ns: &str,
    args: &BenchArgs,
    conflicting: &[usize],
    operator: &mut Operator,
) -> anyhow::Result<()> {
    let want: std::collections::BTreeSet<String> =
        conflicting.iter().map(|&a| app_name(a)).collect();
    let t = Instant::now();
    loop {
        if let Some(status) = operator.exited() {
            bail!("the operator exited ({status})");
        }
        let shown = list_all(client, ns, "Application")
            .await?
            .iter()
            .filter(|o| want.contains(&o.name_any()))
            .filter(|o| has_condition(o, "InterconnectionConflict", "True"))
            .count();
        if shown == want.len() {
            return Ok(());
        }
        if t.elapsed() > args.timeout {
            bail!(
                "JIT toggle: only {shown} of {} dependents show the conflict after {:?}",
                want.len(),
                args.timeout
            );
        }
        tokio::time::sleep(poll_interval(args.apps, true)).await;
    }
}

async fn metrics_text(client: &Client) -> anyhow::Result<String> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    Ok(client.request_text(req).await?)
}

/// Requests the operator made so far (its FlowSchema's dispatched requests).
async fn operator_requests(client: &Client, flow_schema: &str) -> anyhow::Result<u64> {
    let text = metrics_text(client).await?;
    Ok(probe::sum(
        &text,
        "apiserver_flowcontrol_dispatched_requests_total",
        &[("flow_schema", flow_schema)],
    ) as u64)
}

/// Requests of every client so far (`apiserver_request_total`).
async fn apiserver_total(client: &Client) -> anyhow::Result<u64> {
    let text = metrics_text(client).await?;
    Ok(probe::sum(&text, "apiserver_request_total", &[]) as u64)
}

/// Requests of every client so far by `VERB resource`.
async fn apiserver_by_verb(
    client: &Client,
) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
    Ok(probe::requests_by_verb(&metrics_text(client).await?))
}

type ReconcileNumbers = (
    std::collections::BTreeMap<String, u64>,
    std::collections::BTreeMap<String, f64>,
);

/// Reconciles by kind/result and mean reconcile time by kind, from the operator's /metrics.
async fn operator_metrics(port: u16) -> ReconcileNumbers {
    let mut counts = std::collections::BTreeMap::new();
    let mut means = std::collections::BTreeMap::new();
    let Ok(resp) = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await else {
        return (counts, means);
    };
    let Ok(text) = resp.text().await else {
        return (counts, means);
    };
    for s in probe::samples(&text, "identity_operator_reconciles_total") {
        let key = format!(
            "{}/{}",
            s.labels.get("kind").cloned().unwrap_or_default(),
            s.labels.get("result").cloned().unwrap_or_default()
        );
        counts.insert(key, s.value as u64);
    }
    for s in probe::samples(&text, "identity_operator_reconcile_duration_seconds_count") {
        let kind = s.labels.get("kind").cloned().unwrap_or_default();
        let sum = probe::sum(
            &text,
            "identity_operator_reconcile_duration_seconds_sum",
            &[("kind", &kind)],
        );
        if s.value > 0.0 {
            means.insert(kind, sum / s.value);
        }
    }
    (counts, means)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn arguments_parse() {
        let cli = Cli::try_parse_from([
            "bench",
            "--idps",
            "200",
            "--apps",
            "1000",
            "--latency-ms",
            "5",
            "--json",
            "out.json",
            "--resync-interval",
            "15s",
            "--steady-seconds",
            "40",
        ])
        .expect("parses");
        let a = cli.bench;
        assert_eq!((a.idps, a.apps, a.latency_ms), (200, 1000, 5));
        assert_eq!(a.json.as_deref(), Some(Path::new("out.json")));
        assert_eq!(a.resync_interval, Duration::from_secs(15));
        assert_eq!(a.steady_seconds, Some(40));
        assert!(!a.kubeconfig_from_env);
        assert_eq!((a.hub_dependents, a.max_requests_per_second), (None, None));
        let hub = Cli::try_parse_from([
            "bench",
            "--hub-dependents",
            "1000",
            "--max-requests-per-second",
            "50",
        ])
        .expect("parses")
        .bench;
        assert_eq!(hub.hub_dependents, Some(1000));
        assert_eq!(hub.max_requests_per_second, Some(50));
        assert!(Cli::try_parse_from(["bench", "--max-requests-per-second", "0"]).is_err());
        let budget = Cli::try_parse_from([
            "bench",
            "--max-requests-per-minute",
            "150",
            "--quota-per-minute",
            "200",
        ])
        .expect("parses")
        .bench;
        assert_eq!(budget_per_minute(&budget), Some(150));
        assert_eq!(budget.quota_per_minute, Some(200));
        // 100 objects × 3 reads at 75/min: a 4 min round, beyond the 10 s resync.
        assert_eq!(drift_interval(&budget, 100), Duration::from_secs(240));
        assert_eq!(budget_per_minute(&hub), Some(3000));
        assert!(Cli::try_parse_from([
            "bench",
            "--max-requests-per-minute",
            "150",
            "--max-requests-per-second",
            "2"
        ])
        .is_err());
        let d = Cli::try_parse_from(["bench"]).expect("defaults").bench;
        assert_eq!(d.resync_interval, Duration::from_secs(10));
        assert_eq!(
            d.dev_env, None,
            "no build-machine path baked in as a default"
        );
        assert!(Cli::try_parse_from(["bench", "--resync-interval", "5x"]).is_err());
    }

    #[test]
    fn dev_env_is_found_from_the_checkout_not_the_build_machine() {
        let root = tempfile::tempdir().expect("tempdir");
        let scripts = root.path().join("scripts");
        std::fs::create_dir_all(&scripts).expect("mkdir");
        std::fs::write(scripts.join("dev-env"), "#!/bin/sh\n").expect("write");
        let sub = root.path().join("src/bench");
        std::fs::create_dir_all(&sub).expect("mkdir");
        let exe = root.path().join("target/release/identity-operator");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let want = scripts.join("dev-env");
        let explicit = Path::new("/opt/dev-env");
        // (explicit, cwd, exe, expected)
        type Case<'a> = (
            Option<&'a Path>,
            Option<&'a Path>,
            Option<&'a Path>,
            Option<&'a Path>,
        );
        let cases: [Case; 5] = [
            (Some(explicit), None, None, Some(explicit)),
            (None, Some(root.path()), None, Some(&want)),
            (None, Some(&sub), None, Some(&want)),
            (None, Some(elsewhere.path()), Some(&exe), Some(&want)),
            (None, Some(elsewhere.path()), None, None),
        ];
        for (explicit, cwd, exe, expected) in cases {
            let got = locate_dev_env(explicit, cwd, exe).ok();
            assert_eq!(got.as_deref(), expected, "cwd {cwd:?} exe {exe:?}");
        }
    }
}
