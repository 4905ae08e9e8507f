//! The Argo CD health check (charts/identity-operator/argocd/health.lua) against sample objects, run
//! by a real Lua interpreter. Argo CD embeds gopher-lua (Lua 5.1), so `lua5.1` is preferred; set
//! LUA to use another one. CI installs lua5.1 (.ci/run).

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("charts/identity-operator/argocd/health.lua")
}

fn interpreter() -> String {
    if let Ok(lua) = std::env::var("LUA") {
        return lua;
    }
    for candidate in ["lua5.1", "lua"] {
        if Command::new(candidate).arg("-v").output().is_ok() {
            return candidate.to_string();
        }
    }
    panic!("no Lua interpreter: install lua5.1 (apt-get install -y lua5.1) or set LUA");
}

/// A JSON value as a Lua expression (what Argo CD hands the script as `obj`).
fn lua(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("[{k:?}] = {}", lua(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Runs the check on `obj`; returns (status, message).
fn health(obj: &Value) -> (String, String) {
    let program = format!(
        "obj = {}\nlocal hs = dofile({:?})\nio.write(hs.status, '\\n', hs.message or '')",
        lua(obj),
        script().display().to_string()
    );
    let out = Command::new(interpreter())
        .args(["-e", &program])
        .output()
        .expect("lua runs");
    assert!(
        out.status.success(),
        "lua failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (status, message) = text.split_once('\n').unwrap_or((&text, ""));
    (status.to_string(), message.to_string())
}

fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "observedGeneration": 2, "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

fn obj(kind: &str, generation: i64, status: Value) -> Value {
    let mut o = json!({
        "apiVersion": "identity-operator.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "team-a", "generation": generation},
        "spec": {"displayName": "X"},
    });
    if !status.is_null() {
        o["status"] = status;
    }
    o
}

const KINDS: [&str; 3] = ["IdentityBackend", "IdentityProvider", "Application"];

#[test]
fn new_object_without_status_is_progressing() {
    for kind in KINDS {
        let (s, m) = health(&obj(kind, 1, Value::Null));
        assert_eq!(s, "Progressing", "{kind}");
        assert!(m.contains("Waiting"), "{m}");
    }
}

#[test]
fn ready_but_for_an_older_generation_is_progressing() {
    for kind in KINDS {
        let status = json!({"observedGeneration": 1,
            "conditions": [cond("Ready", "True", "Reconciled", "in sync")]});
        let (s, m) = health(&obj(kind, 2, status));
        assert_eq!(
            (s.as_str(), m.as_str()),
            (
                "Progressing",
                "Waiting for the operator to observe generation 2 (observed 1)"
            ),
            "{kind}"
        );
    }
}

#[test]
fn ready_true_for_the_current_generation_is_healthy() {
    for kind in KINDS {
        let status = json!({"observedGeneration": 2,
            "conditions": [cond("Ready", "True", "Reconciled", "in sync with the server")]});
        assert_eq!(
            health(&obj(kind, 2, status)),
            ("Healthy".into(), "in sync with the server".into()),
            "{kind}"
        );
    }
}

#[test]
fn stalled_is_degraded_with_what_to_do() {
    for kind in KINDS {
        let msg = "Secret google-oauth not found: create it in team-a";
        let status = json!({"observedGeneration": 2, "conditions": [
            cond("Ready", "False", "SecretNotFound", msg),
            cond("Stalled", "True", "SecretNotFound", msg)]});
        assert_eq!(
            health(&obj(kind, 2, status)),
            ("Degraded".into(), msg.into()),
            "{kind}"
        );
    }
}

#[test]
fn reconciling_is_progressing() {
    let status = json!({"observedGeneration": 2, "conditions": [
        cond("Ready", "False", "BackendUnavailable", "server answered 503; retrying"),
        cond("Reconciling", "True", "BackendUnavailable", "server answered 503; retrying")]});
    assert_eq!(
        health(&obj("Application", 2, status)),
        ("Progressing".into(), "server answered 503; retrying".into())
    );
}

#[test]
fn ready_false_without_stalled_is_not_degraded() {
    let status = json!({"observedGeneration": 2, "conditions": [
        cond("Ready", "False", "Waiting", "")]});
    assert_eq!(health(&obj("IdentityProvider", 2, status)).0, "Progressing");
    let status = json!({"observedGeneration": 2, "conditions": [
        cond("Ready", "Unknown", "Waiting", "")]});
    assert_eq!(health(&obj("IdentityProvider", 2, status)).0, "Progressing");
    let status = json!({"observedGeneration": 2, "conditions": []});
    assert_eq!(
        health(&obj("IdentityProvider", 2, status)),
        (
            "Progressing".into(),
            "Waiting for the Ready condition".into()
        )
    );
}

#[test]
fn a_warned_conflict_stays_healthy_and_is_shown() {
    let status = json!({"observedGeneration": 2, "conditions": [
        cond("InterconnectionConflict", "True", "JitDisabledWithMfa", "payroll needs JIT"),
        cond("Ready", "True", "Reconciled", "in sync")]});
    assert_eq!(
        health(&obj("IdentityProvider", 2, status)),
        (
            "Healthy".into(),
            "in sync; InterconnectionConflict: payroll needs JIT".into()
        )
    );
}

#[test]
fn being_deleted_is_progressing() {
    let mut o = obj(
        "Application",
        2,
        json!({"observedGeneration": 2,
        "conditions": [cond("Ready", "True", "Reconciled", "in sync")]}),
    );
    o["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    assert_eq!(health(&o).0, "Progressing");
}
