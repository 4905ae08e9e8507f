//! `identity-bench admission`: the latency of the Application webhook's decision with
//! 1000 IdentityProviders in its cache and 5000 Applications under review (the issue-20 sizes).
//! Pure and in-process: no control plane, no HTTP; the IdPs sit in a real kube-runtime reflector
//! Store, as in the webhook.
//!
//! Each of the M applications of the bench graph ([`Workload`]) is reviewed as an UPDATE that adds
//! a TOTP step after its IdP step; one IdP in five has JIT off (half of those Block, half Warn), so
//! part of the reviews deny or warn. Two timings per review: the decision alone
//! ([`identity_operator::webhook::decide`], lookups in the Store included) and the whole answer (the
//! AdmissionReview JSON parsed, decided, the response serialized). Nothing asserts a limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use serde_json::{json, Value};

use super::workload::Workload;
use identity_api::{Application, IdentityProvider};
use identity_model::LocalAccountAuthenticators;

/// Options of `identity-bench admission`.
#[derive(clap::Args, Debug, Clone)]
pub struct AdmissionBenchArgs {
    /// IdentityProviders in the cache.
    #[arg(long, default_value_t = 1000)]
    pub idps: usize,
    /// Applications reviewed (each once per round).
    #[arg(long, default_value_t = 5000)]
    pub apps: usize,
    /// Rounds over all applications (the first is a warm-up and not counted).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seed of the generated graph.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// Percentiles of one timing, microseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Maximum.
    pub max_us: f64,
}

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdmissionReport {
    /// IdPs in the cache.
    pub idps: usize,
    /// Applications reviewed per round.
    pub apps: usize,
    /// Reviews timed (rounds after the warm-up × apps).
    pub samples: usize,
    /// Reviews of one round that were denied (Block).
    pub denied: usize,
    /// Reviews of one round that were allowed with warnings (Warn).
    pub warned: usize,
    /// The decision alone.
    pub decide: Percentiles,
    /// JSON in, decision, JSON out.
    pub review: Percentiles,
}

fn percentiles(mut v: Vec<Duration>) -> Percentiles {
    v.sort_unstable();
    let at = |q: f64| {
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len().max(1)) - 1;
        v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    Percentiles {
        p50_us: at(0.50),
        p99_us: at(0.99),
        max_us: v.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
    }
}

/// IdP `i` as it sits in the cache: on the server, JIT off for one in five (Block, then Warn).
fn cached_idp(w: &Workload, i: usize) -> anyhow::Result<IdentityProvider> {
    let mut v = w.idp_object(i);
    v["metadata"]["namespace"] = "bench".into();
    let off = i.is_multiple_of(5);
    v["spec"]["jit"]["enabled"] = (!off).into();
    v["spec"]["conflictPolicy"] = if i.is_multiple_of(10) {
        "Block"
    } else {
        "Warn"
    }
    .into();
    v["status"] = json!({"id": format!("idp-id-{i}"), "jit": if off { "Disabled" } else { "Enabled" },
                         "serverName": format!("Bench IdP {i}"), "observedGeneration": 1});
    Ok(serde_json::from_value(v)?)
}

/// The UPDATE review of application `i`: old flow the IdP step only, new flow with TOTP after it.
fn review_body(w: &Workload, i: usize) -> Value {
    let mut new = w.app_object(i);
    new["metadata"]["namespace"] = "bench".into();
    let first = new["spec"]["loginFlow"]["steps"][0].clone();
    new["spec"]["loginFlow"]["steps"] = json!([first, {"options": [{"authenticator": "totp"}]}]);
    let mut old = new.clone();
    old["spec"]["loginFlow"]["steps"] = json!([first]);
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("00000000-0000-4000-8000-{i:012}"),
            "kind": {"group": "identity-operator.io", "version": "v1alpha1", "kind": "Application"},
            "resource": {"group": "identity-operator.io", "version": "v1alpha1", "resource": "applications"},
            "name": new["metadata"]["name"],
            "namespace": "bench",
            "operation": "UPDATE",
            "userInfo": {"username": "bench"},
            "object": new,
            "oldObject": old,
            "dryRun": false,
        }
    })
}

/// Runs the measurement and prints a table (and JSON with `--json`).
pub fn run(args: &AdmissionBenchArgs) -> anyhow::Result<AdmissionReport> {
    let w = Workload::generate(args.idps.max(1), args.apps, args.seed);
    let (store, mut writer) = reflector::store::<IdentityProvider>();
    writer.apply_watcher_event(&watcher::Event::Init);
    for i in 0..w.idps {
        writer.apply_watcher_event(&watcher::Event::InitApply(cached_idp(&w, i)?));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    let needs_local = LocalAccountAuthenticators::default();
    let lookup = |name: &str| -> Option<Arc<IdentityProvider>> {
        store.get(&ObjectRef::new(name).within("bench"))
    };
    let bodies: Vec<Vec<u8>> = (0..w.apps.len())
        .map(|i| serde_json::to_vec(&review_body(&w, i)))
        .collect::<Result<_, _>>()?;
    let requests: Vec<AdmissionRequest<Application>> = bodies
        .iter()
        .map(|b| {
            let r: AdmissionReview<Application> = serde_json::from_slice(b)?;
            r.try_into().map_err(|e| anyhow::anyhow!("{e}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let (mut decide_t, mut review_t) = (Vec::new(), Vec::new());
    let (mut denied, mut warned) = (0, 0);
    for round in 0..args.rounds.max(2) {
        for (req, body) in requests.iter().zip(&bodies) {
            let Some(new) = req.object.as_ref() else {
                continue;
            };
            let t = Instant::now();
            let d = identity_operator::webhook::decide(
                new,
                req.old_object.as_ref(),
                lookup,
                &needs_local,
            );
            let took = t.elapsed();
            let t = Instant::now();
            let parsed: AdmissionReview<Application> = serde_json::from_slice(body)?;
            let parsed: AdmissionRequest<Application> =
                parsed.try_into().map_err(|e| anyhow::anyhow!("{e}"))?;
            let again = parsed
                .object
                .as_ref()
                .map(|o| {
                    identity_operator::webhook::decide(
                        o,
                        parsed.old_object.as_ref(),
                        lookup,
                        &needs_local,
                    )
                })
                .unwrap_or_default();
            let mut resp = AdmissionResponse::from(&parsed);
            if !again.allowed() {
                resp = resp.deny(again.message());
            }
            let w = again.warnings();
            if !w.is_empty() {
                resp.warnings = Some(w);
            }
            let out = serde_json::to_vec(&resp.into_review())?;
            let whole = t.elapsed();
            std::hint::black_box(out);
            if round == 0 {
                denied += usize::from(!d.allowed());
                warned += usize::from(d.allowed() && !d.warned.is_empty());
                continue;
            }
            decide_t.push(took);
            review_t.push(whole);
        }
    }
    let report = AdmissionReport {
        idps: w.idps,
        apps: w.apps.len(),
        samples: decide_t.len(),
        denied,
        warned,
        decide: percentiles(decide_t),
        review: percentiles(review_t),
    };
    println!(
        "admission decision, {} IdPs in the cache × {} applications reviewed ({} samples; {} denied, {} warned per round)",
        report.idps, report.apps, report.samples, report.denied, report.warned
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "", "p50 µs", "p99 µs", "max µs"
    );
    for (name, p) in [
        ("decide (cache lookups incl.)", &report.decide),
        ("review (JSON in/out)", &report.review),
    ] {
        println!(
            "{name:<28} {:>10.1} {:>10.1} {:>10.1}",
            p.p50_us, p.p99_us, p.max_us
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bench's graph really exercises both answers (a bench of only allows would measure
    /// nothing); no timing is asserted.
    #[test]
    fn a_small_run_denies_some_and_warns_about_some() {
        let r = run(&AdmissionBenchArgs {
            idps: 50,
            apps: 200,
            rounds: 2,
            seed: 1,
            json: None,
        })
        .expect("runs");
        assert_eq!(r.samples, 200);
        assert!(
            r.denied > 0 && r.warned > 0 && r.denied + r.warned < 200,
            "{r:?}"
        );
    }
}
