//! The fault suite: each test breaks something, then asserts the final state in the cluster AND on
//! the emulator (no duplicates, nothing lost).

mod common;

use std::time::Duration;

use common::TestEnv;
use identity_emulator::Faults;
use serde_json::json;

const T: Duration = Duration::from_secs(90);

fn idp_yaml(name: &str, display: &str) -> String {
    format!(
        r#"
apiVersion: identity-operator.io/v1alpha1
kind: IdentityProvider
metadata: {{name: {name}}}
spec:
  backendRef: {{name: asgardeo}}
  displayName: {display}
  github: {{clientID: "gh-{name}", clientSecretRef: {{name: gh-oauth, key: client-secret}}}}
  jit: {{enabled: true}}
"#
    )
}

fn app_yaml(name: &str, display: &str, idp: &str) -> String {
    format!(
        r#"
apiVersion: identity-operator.io/v1alpha1
kind: Application
metadata: {{name: {name}}}
spec:
  backendRef: {{name: asgardeo}}
  displayName: {display}
  oidc: {{grantTypes: [authorization_code], callbackURLs: ["https://{name}.example/cb"]}}
  credentialsSecret: {{name: {name}-oidc}}
  loginFlow:
    steps:
      - options: [{{identityProviderRef: {{name: {idp}}}}}]
      - options: [{{authenticator: totp}}]
"#
    )
}

const GH_SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: gh-oauth, labels: {identity-operator.io/use: identity-provider-client-secret}}\nstringData: {client-secret: gh-secret-value}\n";

fn counts(env: &TestEnv) -> (usize, usize) {
    env.emulator
        .with_tenant(common::TENANT, |t| (t.idps.len(), t.apps.len()))
}

#[tokio::test]
async fn server_errors_and_429_storm_then_recovery() {
    let mut env = TestEnv::new("5xx").await;
    env.create_backend("asgardeo").await;
    env.apply(GH_SECRET).await.expect("secret");
    // The server fails every request for a while, then rate-limits a burst.
    env.emulator.set_faults(Faults {
        error_rate: 1.0,
        error_status: 503,
        ..Default::default()
    });
    env.start_operator(&[]);
    env.apply(&idp_yaml("gh", "GitHub")).await.expect("idp");
    env.apply(&app_yaml("wiki", "Wiki", "gh"))
        .await
        .expect("app");
    env.not_ready("IdentityBackend", "asgardeo", T).await;
    assert!(env.emulator.stats().faults_injected > 0);
    env.emulator.set_faults(Faults {
        rate_limit_next: 20,
        retry_after_secs: 1,
        ..Default::default()
    });
    env.ready("IdentityProvider", "gh", T).await;
    env.ready("Application", "wiki", T).await;
    env.ready("IdentityBackend", "asgardeo", T).await;
    assert_eq!(
        counts(&env),
        (1, 1),
        "exactly one IdP and one application on the server"
    );
    assert!(
        env.emulator
            .stats()
            .statuses
            .get(&429)
            .copied()
            .unwrap_or(0)
            > 0,
        "the 429 burst was hit"
    );
}

#[tokio::test]
async fn revoked_token_is_renewed() {
    let mut env = TestEnv::new("revoke").await;
    env.create_backend("asgardeo").await;
    env.apply(GH_SECRET).await.expect("secret");
    env.start_operator(&[]);
    env.apply(&idp_yaml("gh", "GitHub")).await.expect("idp");
    env.ready("IdentityProvider", "gh", T).await;
    let before = env.emulator.stats().token_requests;
    env.emulator.revoke_all_tokens();
    // A spec change forces calls with the revoked token.
    env.set_spec(
        "IdentityProvider",
        "gh",
        json!({"jit": {"enabled": true, "scheme": "PromptConsent"}}),
    )
    .await;
    let pushed = common::wait_until(T, || async {
        let server = env.server();
        let idp = server.find_idp_by_name("GitHub").await.ok()??;
        let jit = server.get_jit(&idp.id).await.ok()?;
        (jit.scheme == identity_operator::backend::JitScheme::PromptConsent).then_some(())
    })
    .await;
    assert!(
        pushed.is_some(),
        "the change went through after re-authentication"
    );
    assert!(
        env.emulator.stats().token_requests > before,
        "a new token was requested"
    );
    assert_eq!(counts(&env).0, 1);
}

#[tokio::test]
async fn sigkill_mid_reconcile_leaves_no_duplicates() {
    let mut env = TestEnv::new("sigkill").await;
    env.create_backend("asgardeo").await;
    env.apply(GH_SECRET).await.expect("secret");
    // Slow server, so the kill lands while creates are in flight.
    env.emulator.set_faults(Faults {
        latency_ms: 150,
        ..Default::default()
    });
    for i in 0..6 {
        env.apply(&idp_yaml(&format!("gh{i}"), &format!("GitHub {i}")))
            .await
            .expect("idp");
        env.apply(&app_yaml(
            &format!("app{i}"),
            &format!("App {i}"),
            &format!("gh{i}"),
        ))
        .await
        .expect("app");
    }
    env.start_operator(&[]);
    let some_created =
        common::wait_until(T, || async { (counts(&env).0 >= 1).then_some(()) }).await;
    assert!(some_created.is_some());
    env.kill_operator();
    env.start_operator(&[]);
    env.emulator.set_faults(Faults::default());
    for i in 0..6 {
        env.wait_condition("IdentityProvider", &format!("gh{i}"), "Ready", "True", T)
            .await;
        env.wait_condition("Application", &format!("app{i}"), "Ready", "True", T)
            .await;
    }
    assert_eq!(
        counts(&env),
        (6, 6),
        "every object exactly once on the server"
    );
    for i in 0..6 {
        let obj = env
            .get("Application", &format!("app{i}"))
            .await
            .expect("app");
        let id = obj["status"]["id"]
            .as_str()
            .expect("id in status")
            .to_string();
        let on_server = env
            .emulator
            .with_tenant(common::TENANT, |t| t.app(&id).is_some());
        assert!(on_server, "status id points at the server object");
    }
}

#[tokio::test]
async fn deleted_credentials_secret_and_idp_deleted_on_server() {
    let mut env = TestEnv::new("secretgone").await;
    env.create_backend("asgardeo").await;
    env.apply(GH_SECRET).await.expect("secret");
    env.start_operator(&[]);
    env.apply(&idp_yaml("gh", "GitHub")).await.expect("idp");
    env.ready("IdentityProvider", "gh", T).await;

    // The client Secret is deleted under the IdP: a clear reason, and back when it returns.
    env.delete("Secret", "gh-oauth").await;
    let c = env.not_ready("IdentityProvider", "gh", T).await;
    assert_eq!(c["reason"], "SecretNotFound");
    assert!(c["message"]
        .as_str()
        .unwrap_or_default()
        .contains("gh-oauth"));
    env.apply(GH_SECRET).await.expect("secret back");
    env.ready("IdentityProvider", "gh", T).await;

    // The IdP is deleted on the server behind the operator's back: recreated, reported.
    let old_id = env.get("IdentityProvider", "gh").await.expect("idp")["status"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    env.emulator
        .with_tenant(common::TENANT, |t| t.idps.retain(|i| i.id != old_id));
    env.wait_event("gh", "DeletedOnServer", T).await;
    let new_id = common::wait_until(T, || async {
        let obj = env.get("IdentityProvider", "gh").await?;
        let id = obj["status"]["id"].as_str()?.to_string();
        (id != old_id).then_some(id)
    })
    .await
    .expect("a new id in status");
    assert_eq!(counts(&env).0, 1);
    assert!(env
        .emulator
        .with_tenant(common::TENANT, |t| t.idp(&new_id).is_some()));

    // The backend's credentials Secret is deleted while the backend uses it: it is kept
    // (Terminating, like a PVC a Pod uses) and the backend says why; deleting the IdP then deletes
    // its server object with those credentials; once the backend goes, so does the Secret.
    env.delete("Secret", "asgardeo-m2m").await;
    env.wait_event("asgardeo", "SecretKept", T).await;
    let secret = env.get("Secret", "asgardeo-m2m").await.expect("kept");
    assert!(secret["metadata"]["deletionTimestamp"].is_string());
    env.ready("IdentityBackend", "asgardeo", T).await;
    env.delete("IdentityProvider", "gh").await;
    env.wait_gone("IdentityProvider", "gh", T).await;
    assert_eq!(counts(&env).0, 0, "the IdP's server object was deleted");
    env.delete("IdentityBackend", "asgardeo").await;
    env.wait_gone("IdentityBackend", "asgardeo", T).await;
    env.wait_gone("Secret", "asgardeo-m2m", T).await;
}

/// Issue 24 item 6: deleting a namespace deletes its Secrets at once, and the client cached in
/// memory was all the cleanup had. A restart in that window (here: the operator is down when the
/// namespace is deleted, and a new process with an empty cache starts) must neither hang the
/// namespace nor leak the server objects: the backend's Secret is held by a finalizer until the
/// backend is released.
#[tokio::test]
async fn a_restart_during_namespace_deletion_neither_hangs_nor_leaks() {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, DeleteParams};

    let mut env = TestEnv::new("nsdelete").await;
    env.create_backend("asgardeo").await;
    env.apply(GH_SECRET).await.expect("secret");
    env.start_operator(&[]);
    env.apply(&idp_yaml("gh", "GitHub")).await.expect("idp");
    env.apply(&app_yaml("wiki", "Wiki", "gh"))
        .await
        .expect("app");
    env.ready("IdentityProvider", "gh", T).await;
    env.ready("Application", "wiki", T).await;
    assert_eq!(counts(&env), (1, 1));
    let held = common::wait_until(T, || async {
        let s = env.get("Secret", "asgardeo-m2m").await?;
        let finalizers = s["metadata"]["finalizers"].as_array()?.clone();
        finalizers
            .iter()
            .any(|f| f == "identity-operator.io/credentials-in-use")
            .then_some(())
    })
    .await;
    assert!(held.is_some(), "the backend's Secret was never held");

    env.kill_operator();
    let nss: Api<Namespace> = Api::all(env.client.clone());
    nss.delete(&env.ns, &DeleteParams::default())
        .await
        .expect("namespace delete");
    // The namespace controller has reached the Secret (and, before it, the rest): it must still be
    // there to log in with.
    let terminating = common::wait_until(T, || async {
        let s = env.get("Secret", "asgardeo-m2m").await?;
        s["metadata"]["deletionTimestamp"].is_string().then_some(())
    })
    .await;
    assert!(
        terminating.is_some(),
        "the Secret went at once: a new process has nothing to clean up with"
    );

    env.start_operator(&[]);
    let gone = common::wait_until(Duration::from_secs(180), || async {
        nss.get_opt(&env.ns).await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "namespace {} still there: {:?}\n{}",
        env.ns,
        nss.get_opt(&env.ns).await.ok().flatten().map(|n| n.status),
        common::tail(&env.operator_log(), 30)
    );
    assert_eq!(counts(&env), (0, 0), "server objects leaked");
}

#[tokio::test]
async fn a_broken_object_does_not_stop_the_others() {
    let mut env = TestEnv::new("broken").await;
    env.create_backend("asgardeo").await;
    env.apply(GH_SECRET).await.expect("secret");
    env.start_operator(&[]);
    // References that cannot be resolved: a missing backend and a missing IdP.
    env.apply(&idp_yaml("orphan", "Orphan").replace(
        "backendRef: {name: asgardeo}",
        "backendRef: {name: nowhere}",
    ))
    .await
    .expect("idp");
    env.apply(&app_yaml("lost", "Lost", "missing-idp"))
        .await
        .expect("app");
    env.apply(&idp_yaml("gh", "GitHub")).await.expect("idp");
    env.apply(&app_yaml("wiki", "Wiki", "gh"))
        .await
        .expect("app");
    env.ready("Application", "wiki", T).await;
    let c = env.not_ready("IdentityProvider", "orphan", T).await;
    assert_eq!(c["reason"], "BackendNotFound");
    let c = env.not_ready("Application", "lost", T).await;
    assert_eq!(c["reason"], "IdentityProviderNotFound");
    assert!(c["message"]
        .as_str()
        .unwrap_or_default()
        .contains("missing-idp"));
    assert_eq!(counts(&env), (1, 1));
}

#[tokio::test]
async fn apiserver_restart_is_survived() {
    // Its own control plane: restarting the shared apiserver would disturb the other tests.
    let cp = common::OwnControlPlane::start("restart");
    let mut env =
        TestEnv::with_client("restart", cp.client().await, Some(cp.kubeconfig.clone())).await;
    env.create_backend("asgardeo").await;
    env.apply(GH_SECRET).await.expect("secret");
    env.start_operator(&[]);
    env.apply(&idp_yaml("gh", "GitHub")).await.expect("idp");
    env.ready("IdentityProvider", "gh", T).await;
    cp.restart_apiserver();
    // The watches reconnect: a change made after the restart reaches the server.
    env.client = cp.client().await;
    env.apply(&app_yaml("wiki", "Wiki", "gh"))
        .await
        .expect("app after restart");
    env.ready("Application", "wiki", T).await;
    assert_eq!(counts(&env), (1, 1));
}

/// `restart-apiserver --kill` must wait until the killed kube-apiserver has let go of its port: a
/// multi-threaded process shows its leader as a zombie (and loses its command line) while other
/// threads still hold the listening socket, and a restart in that window failed now and then with
/// "address already in use". Back-to-back crashes with open watches make that window likely.
#[tokio::test]
async fn apiserver_restarts_back_to_back_never_find_the_port_taken() {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, ListParams, WatchParams};

    let cp = common::OwnControlPlane::start("rapid");
    for round in 0..4 {
        let client = cp.client().await;
        let api: Api<Namespace> = Api::all(client);
        // An open watch keeps connections (and goroutines) busy while the process is killed.
        let _watch = api
            .watch(&WatchParams::default(), "0")
            .await
            .expect("watch opens");
        cp.restart_apiserver();
        let client = cp.client().await;
        let api: Api<Namespace> = Api::all(client);
        let list = api
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("round {round}: apiserver after restart: {e}"));
        assert!(
            list.items
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some("default")),
            "round {round}"
        );
    }
}
