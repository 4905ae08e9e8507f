//! The operator under test as a child process: how it is started, where its binary is, and the
//! reconcile numbers read from its /metrics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context as _};

use crate::{probe, BenchArgs};

/// The operator child process; killed when dropped.
pub(crate) struct Operator {
    child: Child,
    pub(crate) metrics_port: u16,
}

impl Operator {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_operator(
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
pub(crate) fn operator_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
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

pub(crate) type ReconcileNumbers = (
    std::collections::BTreeMap<String, u64>,
    std::collections::BTreeMap<String, f64>,
);

/// Reconciles by kind/result and mean reconcile time by kind, from the operator's /metrics.
pub(crate) async fn operator_metrics(port: u16) -> ReconcileNumbers {
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
