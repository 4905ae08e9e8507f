//! Issue 20, the Application side: the operator's validating webhook on the real kube-apiserver.
//! A flow change that puts TOTP after a JIT-off Google IdP is refused under Block (dry run too)
//! and warned about under Warn; a flow with no conflict is never refused; with the webhook down
//! applies go through (failurePolicy Ignore) and the reconciler's Block still holds; two replicas
//! share one CA (one Secret) and both answer, leader or not. Each test registers its own
//! ValidatingWebhookConfiguration, named after and scoped to its namespace, so tests in parallel
//! never see each other's.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::TestEnv;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Api;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

/// A Google IdentityProvider with JIT `jit` and `policy`, and its client Secret.
fn idp(name: &str, jit: bool, policy: &str) -> String {
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
  google: {{clientID: "123.apps.example", clientSecretRef: {{name: {name}-oauth, key: client-secret}}}}
  jit: {{enabled: {jit}}}
  conflictPolicy: {policy}
"#
    )
}

/// An Application whose step 1 is password or `idp`, followed by `later` steps (YAML list items).
fn app(name: &str, idp: &str, later: &str) -> String {
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
{later}
"#
    )
}

const TOTP: &str = "      - options: [{authenticator: totp}]";

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The operator flags that serve the webhook on `port` and register this test's configuration.
fn webhook_flags(env: &TestEnv, port: u16) -> Vec<String> {
    vec![
        "--webhook-listen".into(),
        format!("127.0.0.1:{port}"),
        "--webhook-configuration".into(),
        env.ns.clone(),
    ]
}

fn configurations(env: &TestEnv) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
    );
    Api::all_with(env.client.clone(), &ApiResource::from_gvk(&gvk))
}

async fn remove_configuration(env: &TestEnv) {
    let _ = configurations(env)
        .delete(&env.ns, &DeleteParams::default())
        .await;
}

/// The webhook is live once the apiserver refuses a dry run that must be refused.
async fn wait_refused(env: &TestEnv, yaml: &str) -> String {
    common::wait_until(T, || async { env.apply_one(yaml, true).await.err() })
        .await
        .unwrap_or_else(|| {
            panic!(
                "never refused within {T:?}:\n{yaml}\nlog:\n{}",
                common::tail(&env.operator_log(), 30)
            )
        })
}

fn steps(obj: &Value) -> usize {
    obj["spec"]["loginFlow"]["steps"]
        .as_array()
        .map_or(0, Vec::len)
}

async fn setup(env: &mut TestEnv, policy: &str, extra: &[String]) {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    env.start_operator(&extra);
    env.create_backend("asgardeo").await;
    env.apply(&idp("google", false, policy)).await.expect("idp");
    env.ready("IdentityProvider", "google", T).await;
}

#[tokio::test]
async fn block_refuses_totp_after_a_jit_off_idp_also_in_dry_run_and_the_reconciler_holds_when_it_is_down(
) {
    let mut env = TestEnv::new("hook-block").await;
    let port = free_port();
    let flags = webhook_flags(&env, port);
    setup(&mut env, "Block", &flags).await;
    // No local-account step after Google: never refused.
    env.apply(&app("payroll", "google", ""))
        .await
        .expect("no conflict");
    env.ready("Application", "payroll", T).await;

    let conflicting = app("payroll", "google", TOTP);
    let msg = wait_refused(&env, &conflicting).await;
    for part in [
        "applications.identity-operator.io",
        "conflictPolicy: Block",
        "IdentityProvider google (step 1)",
        "JIT provisioning is disabled",
        "step 2 offers totp",
        "skipFor",
        "conflictPolicy: Warn",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    // For real: the same answer; nothing stored. A new Application with the conflict too.
    assert_eq!(env.apply_one(&conflicting, false).await, Err(msg.clone()));
    let obj = env.get("Application", "payroll").await.expect("payroll");
    assert_eq!(steps(&obj), 1, "{obj}");
    let created = env.apply_one(&app("hr", "google", TOTP), false).await;
    assert!(
        created
            .as_ref()
            .is_err_and(|e| e.contains("step 2 offers totp")),
        "{created:?}"
    );
    // The remedy goes through: TOTP skipped for Google's users. So does a change that is not a flow.
    let skipped = format!("{TOTP}\n        skipFor: {{identityProviders: [{{name: google}}]}}");
    env.apply_one(&app("payroll", "google", &skipped), true)
        .await
        .expect("skipFor is not refused");
    env.set_spec("Application", "payroll", json!({"description": "edited"}))
        .await;

    // The webhook down (the operator stopped): failurePolicy Ignore lets the apply through...
    env.kill_operator();
    common::wait_until(T, || async {
        env.apply_one(&conflicting, false).await.ok()
    })
    .await
    .expect("stored while the webhook is down");
    // ...and the reconciler's Block holds the flow back from the server.
    env.start_operator(&[]);
    let c = env.not_ready("Application", "payroll", T).await;
    assert_eq!(c["reason"], "LoginFlowBlocked", "{c}");
    let server = env.server();
    let on_server = server
        .find_application_by_name("payroll-app")
        .await
        .expect("list")
        .expect("on server");
    let flow = server
        .get_application(&on_server.id)
        .await
        .expect("read")
        .login_flow;
    assert_eq!(
        flow.steps.len(),
        1,
        "Block kept TOTP off the server: {flow:?}"
    );
    remove_configuration(&env).await;
}

#[tokio::test]
async fn warn_lets_the_flow_through_with_a_warning_on_kubectl_also_in_dry_run() {
    let mut env = TestEnv::new("hook-warn").await;
    let port = free_port();
    let flags = webhook_flags(&env, port);
    setup(&mut env, "Warn", &flags).await;
    let conflicting = app("payroll", "google", TOTP);
    let warning = common::wait_until(T, || async {
        let (ok, stderr) = env.kubectl_apply(&conflicting, true);
        assert!(ok, "Warn never refuses: {stderr}");
        stderr.contains("Warning:").then_some(stderr)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no warning; log:\n{}",
            common::tail(&env.operator_log(), 30)
        )
    });
    for part in [
        "IdentityProvider google (step 1)",
        "step 2 offers totp",
        "conflictPolicy: Warn",
        "skipFor",
    ] {
        assert!(warning.contains(part), "{part:?} not in {warning}");
    }
    assert!(
        env.get("Application", "payroll").await.is_none(),
        "dry run stored nothing"
    );
    let (ok, stderr) = env.kubectl_apply(&conflicting, false);
    assert!(
        ok && stderr.contains("Warning:") && stderr.contains("step 2 offers totp"),
        "{stderr}"
    );
    env.conflict("Application", "payroll", T).await;
    // No conflict: no warning.
    let (ok, stderr) = env.kubectl_apply(&app("wiki", "google", ""), false);
    assert!(ok && !stderr.contains("Warning:"), "{stderr}");
    remove_configuration(&env).await;
}

/// An AdmissionReview creating `payroll` with TOTP after Google, as the apiserver sends it.
fn review(ns: &str) -> Value {
    let object: Value = serde_yaml::from_str(&app("payroll", "google", TOTP)).expect("yaml");
    let mut object = object;
    object["metadata"]["namespace"] = ns.into();
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "6e3a5c4e-0000-4000-8000-000000000001",
            "kind": {"group": "identity-operator.io", "version": "v1alpha1", "kind": "Application"},
            "resource": {"group": "identity-operator.io", "version": "v1alpha1", "resource": "applications"},
            "name": "payroll",
            "namespace": ns,
            "operation": "CREATE",
            "userInfo": {"username": "tests"},
            "object": object,
            "oldObject": null,
            "dryRun": true,
        }
    })
}

/// Posts [`review`] to a replica's endpoint, trusting `ca`: (allowed, message).
async fn ask(port: u16, ca: &str, ns: &str) -> Option<(bool, String)> {
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).ok()?)
        .build()
        .ok()?;
    let answer: Value = client
        .post(format!("https://127.0.0.1:{port}/validate-application"))
        .json(&review(ns))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let resp = &answer["response"];
    assert_eq!(
        resp["uid"], "6e3a5c4e-0000-4000-8000-000000000001",
        "{answer}"
    );
    Some((
        resp["allowed"].as_bool()?,
        resp["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ))
}

struct Replica(Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn two_replicas_share_one_ca_from_one_secret_and_both_answer_leader_or_not() {
    let mut env = TestEnv::new("hook-ha").await;
    let (p1, p2) = (free_port(), free_port());
    let secret = format!("{}-webhook-tls", env.ns);
    let flags = |port: u16| {
        let mut f = webhook_flags(&env, port);
        f.extend([
            "--webhook-secret".into(),
            secret.clone(),
            "--webhook-secret-namespace".into(),
            env.ns.clone(),
            "--leader-elect".into(),
            "--lease-name".into(),
            env.ns.clone(),
        ]);
        f
    };
    let (first_flags, second_flags) = (flags(p1), flags(p2));
    setup(&mut env, "Block", &first_flags).await;
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(&env.operator_log)
        .expect("log");
    let second = Replica(
        Command::new(env!("CARGO_BIN_EXE_identity-operator"))
            .args([
                "run",
                "--namespace",
                &env.ns,
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args(&second_flags)
            .env("RUST_LOG", "info,identity_operator=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("second replica"),
    );

    // One Secret, one CA: the configuration's caBundle is the Secret's, whoever applied it last.
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let ca = common::wait_until(T, || async {
        let s = secrets.get_opt(&secret).await.ok()??;
        let ca = String::from_utf8(s.data?.get("ca.crt")?.0.clone()).ok()?;
        let c = configurations(&env).get_opt(&env.ns).await.ok()??;
        use base64::Engine;
        let bundle = c.data["webhooks"][0]["clientConfig"]["caBundle"]
            .as_str()?
            .to_string();
        let bundle = base64::engine::general_purpose::STANDARD
            .decode(bundle)
            .ok()?;
        (bundle == ca.as_bytes()).then_some(ca)
    })
    .await
    .expect("the Secret and the configuration agree on one CA");

    // Both replicas (one of them is not the leader) deny with the same CA.
    for port in [p1, p2] {
        let (allowed, msg) = common::wait_until(T, || ask(port, &ca, &env.ns))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "replica on {port} never answered; log:\n{}",
                    common::tail(&env.operator_log(), 30)
                )
            });
        assert!(
            !allowed && msg.contains("IdentityProvider google (step 1)"),
            "{port}: {msg}"
        );
    }
    // The first one killed: the second still denies, and the Secret was not regenerated.
    env.kill_operator();
    let (allowed, _) = ask(p2, &ca, &env.ns).await.expect("second replica answers");
    assert!(!allowed);
    assert!(
        ask(p1, &ca, &env.ns).await.is_none(),
        "the killed replica is gone"
    );
    let s = secrets.get(&secret).await.expect("secret");
    assert_eq!(s.data.expect("data")["ca.crt"].0, ca.as_bytes());
    drop(second);
    remove_configuration(&env).await;
    let _ = secrets.delete(&secret, &DeleteParams::default()).await;
}

/// Rotation through the shared Secret: a certificate with less than 30 days left is replaced at
/// start, the bundle keeps the previous CA after the new one, and the apiserver trusts the new
/// certificate (a refusal comes back). A Secret of that name the operator did not create is never
/// overwritten: the operator stops and says why.
#[tokio::test]
async fn a_certificate_near_expiry_is_rotated_keeping_the_previous_ca_and_a_foreign_secret_is_left_alone(
) {
    use identity_operator::webhook::certs;
    let mut env = TestEnv::new("hook-rotate").await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let name = format!("{}-webhook-tls", env.ns);
    // Issued 340 days ago: 25 days left.
    let issued = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(340 * 24))
        .expect("time");
    let old = certs::generate(&["127.0.0.1".into()], issued, None).expect("generate");
    assert!(certs::needs_renewal(old.not_after, jiff::Timestamp::now()));
    secrets
        .create(
            &Default::default(),
            &certs::to_secret(&name, &old, &["127.0.0.1".to_string()]),
        )
        .await
        .expect("old Secret");

    let port = free_port();
    let mut flags = webhook_flags(&env, port);
    flags.extend([
        "--webhook-secret".into(),
        name.clone(),
        "--webhook-secret-namespace".into(),
        env.ns.clone(),
    ]);
    setup(&mut env, "Block", &flags).await;
    let rotated = common::wait_until(T, || async {
        let s = secrets.get(&name).await.ok()?;
        let b = certs::from_secret(&s)?;
        (b.not_after != old.not_after).then_some(b)
    })
    .await
    .expect("rotated");
    assert!(!certs::needs_renewal(
        rotated.not_after,
        jiff::Timestamp::now()
    ));
    assert_eq!(rotated.ca_pem.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(
        rotated.ca_pem.ends_with(&old.ca_pem),
        "the previous CA stays trusted"
    );
    let msg = wait_refused(&env, &app("payroll", "google", TOTP)).await;
    assert!(msg.contains("step 2 offers totp"), "{msg}");

    // Someone else's Secret of the name the operator is told to use.
    let foreign = format!("{}-foreign", env.ns);
    let body: Secret = serde_json::from_value(json!({
        "metadata": {"name": foreign},
        "stringData": {"tls.crt": "not ours"},
    }))
    .expect("secret");
    secrets
        .create(&Default::default(), &body)
        .await
        .expect("foreign Secret");
    let log = env.operator_log.with_extension("foreign.log");
    let mut other = Replica(
        Command::new(env!("CARGO_BIN_EXE_identity-operator"))
            .args([
                "run",
                "--namespace",
                &env.ns,
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args(["--webhook-listen", &format!("127.0.0.1:{}", free_port())])
            .args([
                "--webhook-secret",
                &foreign,
                "--webhook-secret-namespace",
                &env.ns,
            ])
            .args(["--webhook-configuration", &format!("{}-other", env.ns)])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("operator"),
    );
    let status = common::wait_until(T, || {
        let s = other.0.try_wait().ok().flatten();
        async move { s }
    })
    .await
    .expect("the operator stops");
    assert!(!status.success());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("was not created by identity-operator"),
        "{text}"
    );
    let s = secrets.get(&foreign).await.expect("still there");
    assert_eq!(
        s.data.expect("data")["tls.crt"].0,
        b"not ours",
        "never overwritten"
    );
    remove_configuration(&env).await;
    let _ = configurations(&env)
        .delete(&format!("{}-other", env.ns), &DeleteParams::default())
        .await;
}

/// The chart's cert-manager mode: another issuer keeps `tls.crt`, `tls.key` and `ca.crt` in a
/// mounted directory (here the test plays cert-manager and the kubelet); the operator serves them,
/// registers their CA, and follows a renewal without a restart.
#[tokio::test]
async fn certificates_from_an_outside_issuer_are_served_and_a_renewal_is_followed() {
    use base64::Engine;
    use identity_operator::webhook::certs;
    let mut env = TestEnv::new("hook-files").await;
    let dir = tempfile::tempdir().expect("dir");
    let write = |b: &certs::Bundle| {
        for (name, text) in [
            ("ca.crt", &b.ca_pem),
            ("tls.crt", &b.cert_pem),
            ("tls.key", &b.key_pem),
        ] {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
    };
    let hosts = ["127.0.0.1".to_string()];
    let first = certs::generate(&hosts, jiff::Timestamp::now(), None).expect("first");
    write(&first);
    let mut flags = webhook_flags(&env, free_port());
    flags.extend([
        "--webhook-cert-dir".into(),
        dir.path().display().to_string(),
        "--webhook-cert-reload".into(),
        "1s".into(),
    ]);
    setup(&mut env, "Block", &flags).await;
    let ca_bundle = || async {
        let c = configurations(&env).get(&env.ns).await.ok()?;
        let b64 = c.data["webhooks"][0]["clientConfig"]["caBundle"].as_str()?;
        let pem = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        String::from_utf8(pem).ok()
    };
    assert_eq!(ca_bundle().await.as_deref(), Some(first.ca_pem.as_str()));
    let msg = wait_refused(&env, &app("payroll", "google", TOTP)).await;
    assert!(msg.contains("step 2 offers totp"), "{msg}");

    // Renewed by the issuer: the new CA is registered and the apiserver trusts the new leaf.
    let second = certs::generate(&hosts, jiff::Timestamp::now(), None).expect("second");
    write(&second);
    let followed = common::wait_until(T, || async {
        (ca_bundle().await? == second.ca_pem).then_some(())
    })
    .await;
    assert!(
        followed.is_some(),
        "the renewed CA was never registered\n{}",
        common::tail(&env.operator_log(), 30)
    );
    let msg = wait_refused(&env, &app("payroll", "google", TOTP)).await;
    assert!(msg.contains("step 2 offers totp"), "{msg}");
    // The operator never wrote the issuer's files.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ca.crt")).expect("ca"),
        second.ca_pem
    );
    remove_configuration(&env).await;
}
