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
mod cluster;
mod operator;
mod probe;
mod report;
mod wait;
mod workload;

pub use report::{BackendRequests, JitToggle, Report, SteadyState};
pub use workload::Workload;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::{json, Value};

use cluster::{
    apiserver_by_verb, apiserver_total, apply, cleanup_cluster_scoped, install_crds,
    operator_identity, operator_requests,
};
use identity_client::ratelimit::{drift_plan, Limit, DEFAULT_DRIFT_PERCENT};
use identity_client::Secret;
use identity_emulator::{Emulator, EmulatorConfig, EmulatorHandle, Faults, Quota};
use identity_testkit::{ControlPlane, Output};
use operator::{operator_metrics, start_operator};
use wait::{wait_conflicts, wait_converged};
use workload::{idp_name, BACKEND, IDP_SECRET};

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
