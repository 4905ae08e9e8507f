//! Issue 24, items 2 and 3, on a real kube-apiserver + etcd against the emulator over HTTP:
//! a Secret is sent to an identity server only with its consent label (confused deputy), and
//! ownership of server objects is per tenant, across namespaces and operator releases.

mod common;

use std::time::Duration;

use common::TestEnv;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

/// Waits until Ready=False with `reason`; returns the condition.
async fn wait_reason(env: &TestEnv, kind: &str, name: &str, reason: &str) -> Value {
    let found = common::wait_until(T, || async {
        let obj = env.get(kind, name).await?;
        obj["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready" && c["status"] == "False" && c["reason"] == reason)
            .cloned()
    })
    .await;
    match found {
        Some(c) => c,
        None => {
            let obj = env.get(kind, name).await;
            panic!(
                "{kind} {name}: Ready=False/{reason} not reached; status: {}\noperator log tail:\n{}",
                obj.map(|o| o["status"].to_string()).unwrap_or_default(),
                common::tail(&env.operator_log(), 30)
            )
        }
    }
}

fn message(c: &Value) -> String {
    c["message"].as_str().unwrap_or_default().to_string()
}

/// An Application with OIDC callbacks and a credentials Secret.
fn payroll(name: &str, adopt: bool, callback: &str, secret: &str) -> String {
    format!(
        r#"
apiVersion: identity-operator.io/v1alpha1
kind: Application
metadata: {{name: {name}}}
spec:
  backendRef: {{name: asgardeo}}
  displayName: Payroll
  adopt: {adopt}
  oidc: {{grantTypes: [authorization_code], callbackURLs: ["{callback}"]}}
  credentialsSecret: {{name: {secret}}}
"#
    )
}

/// The server's Payroll: its id, callbacks and description.
async fn server_payroll(env: &TestEnv) -> (String, Vec<String>, String) {
    let server = env.server();
    let found = server
        .find_application_by_name("Payroll")
        .await
        .expect("list")
        .expect("Payroll on the server");
    let app = server.get_application(&found.id).await.expect("app");
    let oidc = server.get_oidc(&found.id).await.expect("oidc");
    (
        found.id,
        oidc.callback_urls,
        app.description.unwrap_or_default(),
    )
}

fn app_count(env: &TestEnv) -> usize {
    env.emulator.with_tenant(common::TENANT, |t| t.apps.len())
}

/// Item 3: namespace B, with its own IdentityBackend for the same tenant, cannot take over
/// namespace A's application with `adopt: true`: no callback rewrite, no client secret copied into
/// B's Secret, and deleting B's Application leaves A's on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_from_another_namespace_of_the_tenant_is_refused() {
    let mut env = TestEnv::new("crossns").await;
    let ns_a = env.ns.clone();
    let ns_b = env.extra_namespace("b").await;
    env.start_operator_in(&format!("{ns_a},{ns_b}"), &[]);

    env.create_backend("asgardeo").await;
    env.apply(&payroll(
        "payroll",
        false,
        "https://payroll.a.example/cb",
        "payroll-oidc",
    ))
    .await
    .expect("A applies");
    env.ready("Application", "payroll", T).await;
    let (id, callbacks, description) = server_payroll(&env).await;
    assert_eq!(callbacks, ["https://payroll.a.example/cb"]);
    assert!(
        description.contains(&format!("[identity-operator.io/owner={ns_a}/payroll uid=")),
        "the owner is recorded on the server: {description:?}"
    );

    env.in_namespace(&ns_b);
    env.create_backend("asgardeo").await;
    env.apply(&payroll(
        "stolen",
        true,
        "https://evil.example/cb",
        "stolen-oidc",
    ))
    .await
    .expect("B applies");
    // The operator keeps one cache per watched namespace, so what stops B is the owner marker A's
    // object carries on the server (in all-namespaces mode the shared cache also reports it as a
    // NameClash first).
    let c = wait_reason(&env, "Application", "stolen", "ManagedByAnother").await;
    assert!(
        message(&c).contains(&format!("{ns_a}/payroll")),
        "names the owner: {c}"
    );
    // B's Application went through a whole pass (the condition is written at its end): nothing of
    // A's changed, nothing reached B's Secret, no id was recorded.
    let stolen = env.get("Application", "stolen").await.expect("stolen");
    assert!(stolen["status"]["id"].is_null(), "{}", stolen["status"]);
    assert_eq!(
        env.secret_data("stolen-oidc").await,
        None,
        "no secret copied"
    );
    assert_eq!(
        server_payroll(&env).await.1,
        ["https://payroll.a.example/cb"]
    );

    // A second namespace's object of the same displayName without adopt does not share it either.
    // (`stolen` goes first: while it exists, the two objects of B claiming one name would be a
    // NameClash inside B, which refuses too but is not what this checks.)
    env.delete("Application", "stolen").await;
    env.wait_gone("Application", "stolen", T).await;
    assert_eq!(
        server_payroll(&env).await.0,
        id,
        "deleting B's object spares A's"
    );
    env.apply(&payroll(
        "copycat",
        false,
        "https://evil.example/cb",
        "copycat-oidc",
    ))
    .await
    .expect("B applies");
    // (its create is refused with 409; the lookup then finds A's marker)
    wait_reason(&env, "Application", "copycat", "ManagedByAnother").await;

    env.delete("Application", "copycat").await;
    env.wait_gone("Application", "copycat", T).await;
    assert_eq!(server_payroll(&env).await.0, id, "A's application survives");
    assert_eq!(app_count(&env), 1);
    env.in_namespace(&ns_a);
    env.ready("Application", "payroll", T).await;

    // Moving it on purpose: A lets go (deletionPolicy: Orphan removes its owner marker), then B
    // adopts it.
    env.set_spec(
        "Application",
        "payroll",
        json!({"deletionPolicy": "Orphan"}),
    )
    .await;
    env.delete("Application", "payroll").await;
    env.wait_gone("Application", "payroll", T).await;
    let (_, _, description) = server_payroll(&env).await;
    assert!(
        !description.contains("identity-operator.io/"),
        "released: {description:?}"
    );
    env.in_namespace(&ns_b);
    env.apply(&payroll(
        "moved",
        true,
        "https://payroll.b.example/cb",
        "moved-oidc",
    ))
    .await
    .expect("B adopts");
    env.ready("Application", "moved", T).await;
    let (moved, callbacks, description) = server_payroll(&env).await;
    assert_eq!(moved, id);
    assert_eq!(callbacks, ["https://payroll.b.example/cb"]);
    assert!(description.contains(&format!("owner={ns_b}/moved ")));
}

/// Item 3, durably: the owner is recorded on the server, so an operator that never saw the owner
/// (another release, watching only namespace B, started after A's operator is gone) refuses the
/// adoption too, naming the owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_marker_on_the_server_refuses_adoption_from_another_release() {
    let mut env = TestEnv::new("crossrel").await;
    let ns_a = env.ns.clone();
    let ns_b = env.extra_namespace("b").await;
    env.start_operator_in(&ns_a, &[]);
    env.create_backend("asgardeo").await;
    env.apply(&payroll(
        "payroll",
        false,
        "https://payroll.a.example/cb",
        "payroll-oidc",
    ))
    .await
    .expect("A applies");
    env.ready("Application", "payroll", T).await;
    env.kill_operator();
    let (id, ..) = server_payroll(&env).await;

    env.in_namespace(&ns_b);
    env.start_operator_in(&ns_b, &[]);
    env.create_backend("asgardeo").await;
    env.apply(&payroll(
        "stolen",
        true,
        "https://evil.example/cb",
        "stolen-oidc",
    ))
    .await
    .expect("B applies");
    let c = wait_reason(&env, "Application", "stolen", "ManagedByAnother").await;
    assert!(
        message(&c).contains(&format!("{ns_a}/payroll")),
        "names the owner: {c}"
    );
    let (still, callbacks, description) = server_payroll(&env).await;
    assert_eq!(still, id);
    assert_eq!(callbacks, ["https://payroll.a.example/cb"]);
    assert!(description.contains(&format!("owner={ns_a}/payroll")));
    assert_eq!(env.secret_data("stolen-oidc").await, None);

    env.delete("Application", "stolen").await;
    env.wait_gone("Application", "stolen", T).await;
    assert_eq!(server_payroll(&env).await.0, id, "A's application survives");
}

/// Item 2: a Secret without the consent label is never sent. The backend's credentials: no token
/// request reaches the server until the label is set; an IdP's client secret: no IdP is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_is_sent_only_with_its_consent_label() {
    let mut env = TestEnv::new("consent").await;
    env.start_operator(&[]);
    env.apply(&format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: asgardeo-m2m}}
stringData: {{client-id: {}, client-secret: {}}}
---
apiVersion: identity-operator.io/v1alpha1
kind: IdentityBackend
metadata: {{name: asgardeo}}
spec:
  wso2IdentityServer: {{url: "{}", tenant: {}}}
  credentialsSecretRef: {{name: asgardeo-m2m}}
"#,
        common::CLIENT_ID,
        env.client_secret,
        env.emulator.url(),
        common::TENANT
    ))
    .await
    .expect("backend applies");
    let c = wait_reason(&env, "IdentityBackend", "asgardeo", "SecretNotConsented").await;
    assert!(
        message(&c).contains(
            "kubectl label secret asgardeo-m2m identity-operator.io/use=backend-credentials"
        ),
        "says which label to add: {c}"
    );
    assert_eq!(env.emulator.stats().token_requests, 0, "nothing was sent");
    assert!(!message(&c).contains(&env.client_secret));

    env.patch(
        "Secret",
        "asgardeo-m2m",
        json!({"metadata": {"labels": {"identity-operator.io/use": "backend-credentials"}}}),
    )
    .await
    .expect("label");
    env.ready("IdentityBackend", "asgardeo", T).await;

    // An IdP naming a Secret labelled for another use (the backend's, the kind a user who cannot
    // read it would pick) or for none: nothing is created on the server.
    env.apply(
        r#"
apiVersion: v1
kind: Secret
metadata: {name: db-password}
stringData: {password: hunter2-very-secret}
---
apiVersion: identity-operator.io/v1alpha1
kind: IdentityProvider
metadata: {name: google}
spec:
  backendRef: {name: asgardeo}
  displayName: Google
  google: {clientID: "123.apps.example", clientSecretRef: {name: db-password, key: password}}
  jit: {enabled: true}
---
apiVersion: identity-operator.io/v1alpha1
kind: IdentityProvider
metadata: {name: github}
spec:
  backendRef: {name: asgardeo}
  displayName: GitHub
  github: {clientID: "gh", clientSecretRef: {name: asgardeo-m2m, key: client-secret}}
  jit: {enabled: true}
"#,
    )
    .await
    .expect("idps apply");
    let c = wait_reason(&env, "IdentityProvider", "google", "SecretNotConsented").await;
    assert!(
        message(&c).contains(
            "kubectl label secret db-password identity-operator.io/use=identity-provider-client-secret"
        ),
        "{c}"
    );
    wait_reason(&env, "IdentityProvider", "github", "SecretNotConsented").await;
    assert_eq!(
        env.emulator.with_tenant(common::TENANT, |t| t.idps.len()),
        0,
        "no IdP, so no secret, reached the server"
    );

    env.patch(
        "Secret",
        "db-password",
        json!({"metadata": {"labels": {"identity-operator.io/use": "identity-provider-client-secret"}}}),
    )
    .await
    .expect("label");
    env.ready("IdentityProvider", "google", T).await;
    let log = env.operator_log();
    assert!(!log.contains("hunter2-very-secret") && !log.contains(&env.client_secret));
}
