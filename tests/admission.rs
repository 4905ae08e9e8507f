//! Issue 20, the IdentityProvider side: the ValidatingAdmissionPolicies of
//! `identity-operator admission-policy` on the real kube-apiserver. The operator keeps
//! `status.jitRequiredBy`; a spec update turning JIT off while it is not empty is refused under
//! Block (also as a server-side dry run) and warned about under Warn, from the stored status alone
//! (the operator stopped changes nothing); the reconciler's Block still holds when admission is
//! bypassed. Each test binds its own policies to its own namespace only, so tests in parallel (and
//! the other test binaries) never see them.

mod common;

use std::process::Command;
use std::time::Duration;

use common::TestEnv;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Api;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

/// An IdentityProvider of type `kind` (google or github), with its client Secret.
fn idp(name: &str, kind: &str, jit: bool, policy: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: {name}-oauth, labels: {{identity-operator.io/use: identity-provider-client-secret}}}}
stringData: {{client-secret: very-secret-value}}
---
apiVersion: identity-operator.io/v1alpha1
kind: IdentityProvider
metadata: {{name: {name}}}
spec:
  backendRef: {{name: asgardeo}}
  displayName: {name}
  {kind}: {{clientID: "123.apps.example", clientSecretRef: {{name: {name}-oauth, key: client-secret}}}}
  jit: {{enabled: {jit}}}
  conflictPolicy: {policy}
"#
    )
}

/// Only the IdentityProvider document of [`idp`] (what a GitOps repo changes).
fn idp_only(name: &str, kind: &str, jit: bool, policy: &str) -> String {
    idp(name, kind, jit, policy)
        .split("\n---\n")
        .nth(1)
        .expect("two documents")
        .to_string()
}

/// An Application: step 1 password or `idp`, step 2 TOTP (with `skip` on that step).
fn app(name: &str, idp: &str, skip: &str) -> String {
    format!(
        r#"
apiVersion: identity-operator.io/v1alpha1
kind: Application
metadata: {{name: {name}}}
spec:
  backendRef: {{name: asgardeo}}
  displayName: {name}-app
  oidc: {{grantTypes: [authorization_code], callbackURLs: ["https://{name}.example/callback"]}}
  loginFlow:
    steps:
      - options: [{{authenticator: BasicAuthenticator}}, {{identityProviderRef: {{name: {idp}}}}}]
      - options: [{{authenticator: totp}}]
        {skip}
"#
    )
}

fn cluster_api(kind: &str, client: &kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind);
    Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk))
}

/// The policies and bindings as `identity-operator admission-policy` prints them, named after and
/// bound to this test's namespace; applied with server-side apply. Returns the object names.
async fn install_policies(env: &TestEnv) -> Vec<(String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_identity-operator"))
        .args([
            "admission-policy",
            "--name",
            &env.ns,
            "--namespace",
            &env.ns,
        ])
        .output()
        .expect("admission-policy runs");
    assert!(out.status.success(), "{out:?}");
    let yaml = String::from_utf8(out.stdout).expect("utf-8");
    let mut names = Vec::new();
    for doc in yaml.split("\n---\n").skip(1) {
        let value: Value = serde_yaml::from_str(doc).expect("yaml");
        let kind = value["kind"].as_str().expect("kind").to_string();
        let name = value["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string();
        cluster_api(&kind, &env.client)
            .patch(
                &name,
                &PatchParams::apply("tests").force(),
                &Patch::Apply(&value),
            )
            .await
            .unwrap_or_else(|e| panic!("{kind} {name}: {e}"));
        names.push((kind, name));
    }
    assert_eq!(names.len(), 4, "{yaml}");
    names
}

async fn remove_policies(env: &TestEnv, names: &[(String, String)]) {
    for (kind, name) in names {
        let _ = cluster_api(kind, &env.client)
            .delete(name, &DeleteParams::default())
            .await;
    }
}

/// Waits until the IdP's `status.jitRequiredBy` names `application` (its server name).
async fn wait_required_by(env: &TestEnv, idp: &str, application: &str) -> Value {
    let found = common::wait_until(T, || async {
        let obj = env.get("IdentityProvider", idp).await?;
        let list = obj["status"]["jitRequiredBy"].as_array()?.clone();
        list.iter()
            .any(|r| r["application"] == application)
            .then_some(Value::Array(list))
    })
    .await;
    found.unwrap_or_else(|| {
        panic!(
            "{idp}: jitRequiredBy never named {application}; log:\n{}",
            common::tail(&env.operator_log(), 30)
        )
    })
}

/// The policies take effect once the apiserver's informer has them: wait for the first refusal
/// of a dry run that must be refused (proof the policy is live before asserting anything else).
async fn wait_refused(env: &TestEnv, yaml: &str) -> String {
    common::wait_until(T, || async { env.apply_one(yaml, true).await.err() })
        .await
        .unwrap_or_else(|| panic!("never refused within {T:?}:\n{yaml}"))
}

async fn server_jit(env: &TestEnv, name: &str) -> bool {
    let server = env.server();
    let found = server
        .find_idp_by_name(name)
        .await
        .expect("list")
        .expect("idp on server");
    server.get_jit(&found.id).await.expect("jit").enabled
}

fn spec_jit(obj: &Value) -> Value {
    obj["spec"]["jit"]["enabled"].clone()
}

#[tokio::test]
async fn block_refuses_jit_off_with_the_message_also_in_dry_run_and_without_the_operator() {
    let mut env = TestEnv::new("admit-block").await;
    let policies = install_policies(&env).await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    env.apply(&idp("google", "google", true, "Block"))
        .await
        .expect("idp");
    env.apply(&app("payroll", "google", "")).await.expect("app");
    env.ready("Application", "payroll", T).await;
    let required = wait_required_by(&env, "google", "payroll-app").await;
    assert_eq!(
        required,
        json!([{"application": "payroll-app", "applicationRef": "payroll",
                "identityProviderStep": 1, "authenticator": "totp", "authenticatorStep": 2}])
    );

    // The dry run a PR pipeline would run is refused with the applications, steps and remedies.
    let off = idp_only("google", "google", false, "Block");
    let msg = wait_refused(&env, &off).await;
    for part in [
        "conflictPolicy: Block",
        "payroll-app (Application payroll): step 1 offers this provider, step 2 requires totp",
        "spec.jit.enabled: true",
        "skipFor",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    // The real apply gets the same answer, and so does a patch that removes the jit block.
    assert_eq!(env.apply_one(&off, false).await, Err(msg.clone()));
    let removed = env
        .patch("IdentityProvider", "google", json!({"spec": {"jit": null}}))
        .await;
    assert!(
        removed
            .as_ref()
            .is_err_and(|e| e.contains("step 2 requires totp")),
        "{removed:?}"
    );
    let obj = env.get("IdentityProvider", "google").await.expect("idp");
    assert_eq!(spec_jit(&obj), json!(true));

    // The operator stopped: the policy reads only the stored status. Other changes go through,
    // the JIT disable is still refused.
    env.kill_operator();
    env.set_spec(
        "IdentityProvider",
        "google",
        json!({"description": "edited while the operator is down"}),
    )
    .await;
    assert_eq!(env.apply_one(&off, true).await, Err(msg.clone()));

    // Admission bypassed (the bindings removed): the change is stored, and the reconciler's Block
    // holds it back from the server.
    remove_policies(&env, &policies).await;
    common::wait_until(T, || async { env.apply_one(&off, true).await.ok() })
        .await
        .expect("accepted once the policies are gone");
    env.apply_one(&off, false).await.expect("stored");
    env.start_operator(&[]);
    let c = env.not_ready("IdentityProvider", "google", T).await;
    assert_eq!(c["reason"], "JITDisableBlocked", "{c}");
    assert!(server_jit(&env, "google").await, "Block kept JIT on");
}

#[tokio::test]
async fn warn_lets_jit_off_through_with_a_warning_on_kubectl() {
    let mut env = TestEnv::new("admit-warn").await;
    let policies = install_policies(&env).await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    env.apply(&idp("google", "google", true, "Warn"))
        .await
        .expect("idp");
    env.apply(&app("payroll", "google", "")).await.expect("app");
    wait_required_by(&env, "google", "payroll-app").await;

    let off = idp_only("google", "google", false, "Warn");
    // A dry run first: it succeeds, warns once the policy is live, and changes nothing.
    let warning = common::wait_until(T, || async {
        let (ok, stderr) = env.kubectl_apply(&off, true);
        assert!(ok, "a dry run under Warn is never refused: {stderr}");
        stderr.contains("Warning:").then_some(stderr)
    })
    .await
    .expect("a warning within the timeout");
    for part in [
        "conflictPolicy: Warn",
        "payroll-app (Application payroll): step 1 offers this provider, step 2 requires totp",
        "skipFor",
    ] {
        assert!(warning.contains(part), "{part:?} not in {warning}");
    }
    let obj = env.get("IdentityProvider", "google").await.expect("idp");
    assert_eq!(spec_jit(&obj), json!(true), "the dry run stored nothing");

    // For real: stored with the same warning, and the operator pushes it (Warn).
    let (ok, stderr) = env.kubectl_apply(&off, false);
    assert!(
        ok && stderr.contains("Warning:") && stderr.contains("step 2 requires totp"),
        "{stderr}"
    );
    env.conflict("IdentityProvider", "google", T).await;
    let pushed = common::wait_until(T, || async {
        (!server_jit(&env, "google").await).then_some(())
    })
    .await;
    assert!(pushed.is_some(), "Warn pushed JIT off to the server");
    remove_policies(&env, &policies).await;
}

#[tokio::test]
async fn an_idp_nobody_needs_jit_from_is_never_refused() {
    let mut env = TestEnv::new("admit-free").await;
    let policies = install_policies(&env).await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    // google: Payroll needs it (the proof the policy is live); github: no dependent at all; a
    // second Application skips its TOTP step for github users (a dependent that needs no JIT).
    env.apply(&idp("google", "google", true, "Block"))
        .await
        .expect("google");
    env.apply(&idp("github", "github", true, "Block"))
        .await
        .expect("github");
    env.apply(&app("payroll", "google", ""))
        .await
        .expect("payroll");
    wait_required_by(&env, "google", "payroll-app").await;
    wait_refused(&env, &idp_only("google", "google", false, "Block")).await;
    env.ready("IdentityProvider", "github", T).await;
    let obj = env.get("IdentityProvider", "github").await.expect("github");
    assert!(obj["status"].get("jitRequiredBy").is_none(), "{obj}");
    env.apply_one(&idp_only("github", "github", false, "Block"), true)
        .await
        .expect("no dependents: the dry run goes through");

    env.apply(&app(
        "wiki",
        "github",
        "skipFor: {identityProviders: [{name: github}]}",
    ))
    .await
    .expect("wiki");
    env.ready("Application", "wiki", T).await;
    // The wiki is a dependent of github, yet needs no local account after it.
    let named = common::wait_until(T, || async {
        let obj = env.get("IdentityProvider", "github").await?;
        let deps = obj["status"]["dependents"].as_array()?.clone();
        deps.iter()
            .any(|d| d["applicationRef"] == "wiki")
            .then_some(obj)
    })
    .await
    .expect("github lists wiki as a dependent");
    assert!(named["status"].get("jitRequiredBy").is_none(), "{named}");
    env.apply_one(&idp_only("github", "github", false, "Block"), false)
        .await
        .expect("skipFor respected: not refused");
    let pushed = common::wait_until(T, || async {
        (!server_jit(&env, "github").await).then_some(())
    })
    .await;
    assert!(pushed.is_some(), "JIT off reached the server");
    remove_policies(&env, &policies).await;
}

/// `jitRequiredBy` follows the flows with no resync to help (an hour): a dependent's flow change
/// reaches it once that Application's pass has pushed it (its `skipFor` added or removed).
#[tokio::test]
async fn jit_required_by_follows_a_dependents_flow_changes() {
    let mut env = TestEnv::new("admit-follow").await;
    env.start_operator(&["--resync-interval", "1h"]);
    env.create_backend("asgardeo").await;
    env.apply(&idp("google", "google", true, "Block"))
        .await
        .expect("idp");
    let skip = "skipFor: {identityProviders: [{name: google}]}";
    env.apply(&app("payroll", "google", skip))
        .await
        .expect("app");
    let listed_without = common::wait_until(T, || async {
        let obj = env.get("IdentityProvider", "google").await?;
        let deps = obj["status"]["dependents"].as_array()?.clone();
        deps.iter()
            .any(|d| d["applicationRef"] == "payroll")
            .then_some(obj)
    })
    .await
    .expect("payroll listed as a dependent");
    assert!(
        listed_without["status"].get("jitRequiredBy").is_none(),
        "skipFor: no requirement: {listed_without}"
    );

    // The skip removed: Payroll needs JIT now.
    env.apply(&app("payroll", "google", ""))
        .await
        .expect("no skip");
    wait_required_by(&env, "google", "payroll-app").await;

    // And added back: nobody does.
    env.apply(&app("payroll", "google", skip))
        .await
        .expect("skip");
    let cleared = common::wait_until(T, || async {
        let obj = env.get("IdentityProvider", "google").await?;
        obj["status"].get("jitRequiredBy").is_none().then_some(())
    })
    .await;
    assert!(
        cleared.is_some(),
        "jitRequiredBy kept payroll after its skipFor came back; log:\n{}",
        common::tail(&env.operator_log(), 30)
    );
}

/// An application that exists only on the server (made in the console) counts, with no
/// applicationRef.
#[tokio::test]
async fn a_server_only_application_is_in_jit_required_by() {
    use identity_operator::backend::{FlowOption, FlowStep, FlowUpdate, NewApplication};
    let mut env = TestEnv::new("admit-console").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    env.apply(&idp("google", "google", true, "Block"))
        .await
        .expect("idp");
    env.ready("IdentityProvider", "google", T).await;
    env.server()
        .create_application(&NewApplication {
            name: "Console App".into(),
            login_flow: Some(FlowUpdate {
                steps: vec![
                    FlowStep {
                        options: vec![FlowOption::federated("google", "GoogleOIDCAuthenticator")],
                    },
                    FlowStep {
                        options: vec![FlowOption::local("FIDOAuthenticator")],
                    },
                ],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("create on server");
    // Found at the IdP's next resync (3 s here).
    let required = wait_required_by(&env, "google", "Console App").await;
    assert_eq!(
        required,
        json!([{"application": "Console App", "identityProviderStep": 1,
                "authenticator": "FIDOAuthenticator", "authenticatorStep": 2}])
    );
}
