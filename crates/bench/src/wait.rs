//! Waiting for the outcome the bench measures: every object Ready, every dependent conflicted.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use kube::{Client, ResourceExt};
use serde_json::Value;

use crate::cluster::{condition, has_condition, list_all};
use crate::operator::Operator;
use crate::workload::app_name;
use crate::BenchArgs;

/// How often to list while waiting: often for small runs; for large ones rarely enough that the
/// bench's own lists (thousands of objects with status) do not load the apiserver much. `fine`: a
/// short wait measured in fractions of a second (the JIT toggle).
pub(crate) fn poll_interval(objects: usize, fine: bool) -> Duration {
    match (objects > 2000, fine) {
        (false, true) => Duration::from_millis(250),
        (false, false) | (true, true) => Duration::from_secs(1),
        (true, false) => Duration::from_secs(5),
    }
}

pub(crate) async fn wait_converged(
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

pub(crate) async fn wait_conflicts(
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
