//! Ownership, Block from both sides, deletion and error reporting (issue 9), on a real
//! kube-apiserver + etcd (with kube-controller-manager for namespace deletion) against the
//! emulator over HTTP. Each test is one defect of the issue, driven as a user would.

mod common;

use std::time::Duration;

use common::TestEnv;
use identity_emulator::Faults;
use identity_operator::backend::{FlowOption, FlowStep, FlowUpdate, NewApplication, NewIdp};
use identity_operator::controller::managed::owner_marker;
use identity_operator::controller::translate::desired_authenticator;
use k8s_openapi::api::core::v1::{Namespace, Secret as KubeSecret};
use kube::api::DeleteParams;
use kube::Api;
use serde_json::json;

const T: Duration = Duration::from_secs(60);

fn idp(name: &str, display: &str, jit: bool, extra: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: {name}-oauth, labels: {{identity-operator.io/use: identity-provider-client-secret}}}}
stringData: {{client-secret: very-secret-{name}}}
---
apiVersion: identity-operator.io/v1alpha1
kind: IdentityProvider
metadata: {{name: {name}}}
spec:
  backendRef: {{name: asgardeo}}
  displayName: "{display}"
  google: {{clientID: "{name}.apps.example", clientSecretRef: {{name: {name}-oauth, key: client-secret}}}}
  jit: {{enabled: {jit}}}
{extra}"#
    )
}

fn app(name: &str, display: &str, secret: Option<&str>, flow: &str) -> String {
    let secret = secret
        .map(|s| format!("  credentialsSecret: {{name: {s}}}\n"))
        .unwrap_or_default();
    format!(
        r#"
apiVersion: identity-operator.io/v1alpha1
kind: Application
metadata: {{name: {name}}}
spec:
  backendRef: {{name: asgardeo}}
  displayName: "{display}"
  oidc: {{grantTypes: [client_credentials]}}
{secret}{flow}"#
    )
}

const GOOGLE_THEN_TOTP: &str = r#"  loginFlow:
    steps:
      - options: [{authenticator: BasicAuthenticator}, {identityProviderRef: {name: google}}]
      - options: [{authenticator: totp}]
"#;

const GOOGLE_ONLY: &str = r#"  loginFlow:
    steps:
      - options: [{authenticator: BasicAuthenticator}, {identityProviderRef: {name: google}}]
"#;

fn counts(env: &TestEnv) -> (usize, usize) {
    env.emulator
        .with_tenant(common::TENANT, |t| (t.idps.len(), t.apps.len()))
}

fn google_authenticator() -> identity_operator::backend::FederatedAuthenticator {
    desired_authenticator(
        &serde_json::from_value(
            json!({"backendRef": {"name": "asgardeo"}, "displayName": "x",
            "google": {"clientID": "someone-else", "clientSecretRef": {"name": "s", "key": "k"}}}),
        )
        .expect("spec"),
        None,
    )
    .expect("authenticator")
}

async fn server_jit(env: &TestEnv, name: &str) -> bool {
    let server = env.server();
    let found = server
        .find_idp_by_name(name)
        .await
        .expect("list")
        .expect("on server");
    server.get_jit(&found.id).await.expect("jit").enabled
}

async fn server_steps(env: &TestEnv, name: &str) -> usize {
    let server = env.server();
    let found = server
        .find_application_by_name(name)
        .await
        .expect("list")
        .expect("on server");
    server
        .get_application(&found.id)
        .await
        .expect("app")
        .login_flow
        .steps
        .len()
}

fn message(c: &serde_json::Value) -> String {
    c["message"].as_str().unwrap_or_default().to_string()
}

/// Defect 1: a Secret the operator did not create is never written; two Applications naming one
/// Secret: the second says so.
#[tokio::test]
async fn foreign_credentials_secret_is_never_written() {
    let mut env = TestEnv::new("foreignsecret").await;
    env.create_backend("asgardeo").await;
    env.apply(
        r#"
apiVersion: v1
kind: Secret
metadata: {name: users-own}
stringData: {client-id: the-users-value, other: keep-me}
"#,
    )
    .await
    .expect("user's secret");
    env.start_operator(&[]);
    env.apply(&app("payroll", "Payroll", Some("users-own"), ""))
        .await
        .expect("app");
    let c = env.not_ready("Application", "payroll", T).await;
    assert_eq!(c["reason"], "CredentialsSecretNotOwned", "{c}");
    assert!(message(&c).contains("users-own"), "{c}");
    let data = env.secret_data("users-own").await.expect("secret");
    assert_eq!(
        data.get("client-id").map(String::as_str),
        Some("the-users-value")
    );
    assert_eq!(data.get("client-secret"), None, "nothing written");
    let api: Api<KubeSecret> = Api::namespaced(env.client.clone(), &env.ns);
    let s = api.get("users-own").await.expect("secret");
    assert!(s.metadata.owner_references.unwrap_or_default().is_empty());
    // The rest of the spec still went to the server.
    assert_eq!(counts(&env).1, 1);

    // Two Applications, one Secret: the first creates and owns it, the second says so.
    env.apply(&app("first", "First", Some("shared-oidc"), ""))
        .await
        .expect("first");
    env.ready("Application", "first", T).await;
    let first_id = env.secret_data("shared-oidc").await.expect("created")["client-id"].clone();
    env.apply(&app("second", "Second", Some("shared-oidc"), ""))
        .await
        .expect("second");
    let c = env.not_ready("Application", "second", T).await;
    assert_eq!(c["reason"], "CredentialsSecretNotOwned");
    assert!(message(&c).contains("Application first"), "{c}");
    // A few resyncs later the Secret still holds the first Application's credentials.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        env.secret_data("shared-oidc").await.expect("secret")["client-id"],
        first_id
    );
}

/// Defect 2: two objects, one server name (case-insensitively): exactly one wins, the other says
/// so, and deleting the loser never touches the winner's object. A stale create-pending mark
/// does not "recover" someone else's object.
#[tokio::test]
async fn name_clash_one_wins_and_the_loser_never_touches_it() {
    let mut env = TestEnv::started("clash").await;
    env.apply(&idp("google", "Google", true, ""))
        .await
        .expect("winner");
    env.ready("IdentityProvider", "google", T).await;
    let id = env.get("IdentityProvider", "google").await.expect("idp")["status"]["id"].clone();
    env.apply(&idp("google2", "GOOGLE", true, ""))
        .await
        .expect("loser");
    let c = env.not_ready("IdentityProvider", "google2", T).await;
    assert_eq!(c["reason"], "NameClash", "{c}");
    assert!(message(&c).contains("google"), "{c}");
    assert_eq!(counts(&env).0, 1, "one server object");
    let loser = env.get("IdentityProvider", "google2").await.expect("loser");
    assert!(loser["status"]["id"].is_null(), "the loser records no id");

    env.delete("IdentityProvider", "google2").await;
    env.wait_gone("IdentityProvider", "google2", T).await;
    assert_eq!(
        counts(&env).0,
        1,
        "deleting the loser left the winner's object"
    );
    env.ready("IdentityProvider", "google", T).await;
    assert_eq!(
        env.get("IdentityProvider", "google").await.expect("idp")["status"]["id"],
        id
    );

    // A pending mark left by a refused POST: the object with that name is someone else's.
    let server = env.server();
    let foreign = server
        .create_idp(&NewIdp {
            name: "Foreign".into(),
            description: Some("made in the console".into()),
            image: None,
            authenticator: google_authenticator(),
            jit: None,
            jwks_uri: None,
            certificates: Vec::new(),
            saml_metadata_uri: None,
        })
        .await
        .expect("foreign");
    env.kill_operator();
    env.apply(&idp("stale", "Foreign", true, ""))
        .await
        .expect("stale");
    let uid = env.get("IdentityProvider", "stale").await.expect("obj")["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    env.patch(
        "IdentityProvider",
        "stale",
        json!({"metadata": {"annotations": {"identity-operator.io/create-pending": uid}}}),
    )
    .await
    .expect("mark");
    env.start_operator(&[]);
    let c = env.not_ready("IdentityProvider", "stale", T).await;
    assert_eq!(c["reason"], "AlreadyExists", "{c}");
    let cleared = common::wait_until(T, || async {
        let o = env.get("IdentityProvider", "stale").await?;
        o["metadata"]["annotations"]["identity-operator.io/create-pending"]
            .is_null()
            .then_some(())
    })
    .await;
    assert!(cleared.is_some(), "the stale mark is cleared");
    let still = server.get_idp(&foreign).await.expect("foreign");
    assert_eq!(still.description.as_deref(), Some("made in the console"));
    env.delete("IdentityProvider", "stale").await;
    env.wait_gone("IdentityProvider", "stale", T).await;
    assert!(
        server.get_idp(&foreign).await.is_ok(),
        "never deleted by the loser"
    );
}

/// Defect 2 (crash recovery still works): the POST reached the server, the operator died before
/// the status write; the object carrying this object's uid marker is recovered, not duplicated.
#[tokio::test]
async fn interrupted_create_is_recovered_by_its_uid_marker() {
    let mut env = TestEnv::new("recover").await;
    env.create_backend("asgardeo").await;
    env.apply(&idp("google", "Google", true, ""))
        .await
        .expect("idp");
    let uid = env.get("IdentityProvider", "google").await.expect("obj")["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    env.patch(
        "IdentityProvider",
        "google",
        json!({"metadata": {"annotations": {"identity-operator.io/create-pending": uid}}}),
    )
    .await
    .expect("mark");
    let made = env
        .server()
        .create_idp(&NewIdp {
            name: "Google".into(),
            description: Some(owner_marker(&uid)),
            image: None,
            authenticator: google_authenticator(),
            jit: None,
            jwks_uri: None,
            certificates: Vec::new(),
            saml_metadata_uri: None,
        })
        .await
        .expect("pre-existing");
    env.start_operator(&[]);
    env.ready("IdentityProvider", "google", T).await;
    env.wait_event("google", "Recovered", T).await;
    let obj = env.get("IdentityProvider", "google").await.expect("idp");
    assert_eq!(obj["status"]["id"], made.as_str());
    assert_eq!(counts(&env).0, 1);
    let on_server = env.server().get_idp(&made).await.expect("idp");
    assert!(
        !on_server
            .description
            .unwrap_or_default()
            .contains("identity-operator.io/uid"),
        "the marker is replaced once the id is recorded"
    );
}

/// Defect 3a: the dependents come from the server's live flows. Payroll's flow no longer
/// resolves in the cluster (its other IdP object was removed with Orphan), yet the live flow
/// still needs a local account after Google: the JIT disable is held back.
#[tokio::test]
async fn block_holds_with_an_unresolvable_flow() {
    let env = TestEnv::started("unresolvable").await;
    env.apply(&idp("google", "Google", true, ""))
        .await
        .expect("google");
    env.apply(&idp("github", "GitHub", true, "  deletionPolicy: Orphan\n"))
        .await
        .expect("github");
    let flow = r#"  loginFlow:
    steps:
      - options: [{identityProviderRef: {name: google}}, {identityProviderRef: {name: github}}]
      - options: [{authenticator: totp}]
"#;
    env.apply(&app("payroll", "Payroll", None, flow))
        .await
        .expect("app");
    env.ready("Application", "payroll", T).await;
    env.delete("IdentityProvider", "github").await;
    env.wait_gone("IdentityProvider", "github", T).await;
    env.not_ready("Application", "payroll", T).await;

    env.set_spec(
        "IdentityProvider",
        "google",
        json!({"jit": {"enabled": false}}),
    )
    .await;
    let c = env.not_ready("IdentityProvider", "google", T).await;
    assert_eq!(c["reason"], "JITDisableBlocked", "{c}");
    assert!(message(&c).contains("Payroll"), "{c}");
    assert!(
        server_jit(&env, "Google").await,
        "JIT stays on on the server"
    );
}

/// Defect 3b: the Application side blocks too. A flow change that puts totp after a Block IdP
/// whose JIT is off is held back (the rest of the spec still goes); an IdP and an Application
/// changed in one apply never end with both on the server.
#[tokio::test]
async fn block_from_the_application_side() {
    let env = TestEnv::started("appblock").await;
    env.apply(&idp("google", "Google", false, ""))
        .await
        .expect("google");
    env.apply(&app("payroll", "Payroll", None, GOOGLE_ONLY))
        .await
        .expect("app");
    env.ready("Application", "payroll", T).await;
    env.apply(
        &app("payroll", "Payroll", None, GOOGLE_THEN_TOTP)
            .replace("  oidc:", "  description: new text\n  oidc:"),
    )
    .await
    .expect("flow change");
    let c = env.not_ready("Application", "payroll", T).await;
    assert_eq!(c["reason"], "LoginFlowBlocked", "{c}");
    assert!(
        message(&c).contains("google") || message(&c).contains("Google"),
        "{c}"
    );
    assert_eq!(server_steps(&env, "Payroll").await, 1, "flow held back");
    let server = env.server();
    let found = server
        .find_application_by_name("Payroll")
        .await
        .expect("list")
        .expect("app");
    let on_server = server.get_application(&found.id).await.expect("app");
    assert_eq!(
        on_server
            .description
            .as_deref()
            .map(identity_operator::controller::managed::strip_markers)
            .as_deref(),
        Some("new text"),
        "the rest went (with the owner marker after the text)"
    );

    // Enabling JIT releases it.
    env.set_spec(
        "IdentityProvider",
        "google",
        json!({"jit": {"enabled": true}}),
    )
    .await;
    env.ready("Application", "payroll", T).await;
    assert_eq!(server_steps(&env, "Payroll").await, 2);

    // One commit: JIT off and a new MFA app together. Whatever order the operator takes them in,
    // the server never ends with JIT off and the MFA flow live.
    env.apply(&format!(
        "{}\n---\n{}",
        idp("google", "Google", false, ""),
        app("billing", "Billing", None, GOOGLE_THEN_TOTP)
    ))
    .await
    .expect("one commit");
    let settled = common::wait_until(T, || async {
        let i = env.get("IdentityProvider", "google").await?;
        let a = env.get("Application", "billing").await?;
        let done = |o: &serde_json::Value| {
            o["status"]["observedGeneration"] == o["metadata"]["generation"]
        };
        (done(&i) && done(&a) && !a["status"]["id"].is_null()).then_some(())
    })
    .await;
    assert!(
        settled.is_some(),
        "{}",
        common::tail(&env.operator_log(), 30)
    );
    let jit_on = server_jit(&env, "Google").await;
    let billing_steps = server_steps(&env, "Billing").await;
    assert!(
        jit_on || billing_steps < 2,
        "Block was raced past: JIT off and Billing's MFA flow both on the server"
    );
}

/// Defect 4: deleting a whole namespace (Secrets go first) leaves nothing on the server: the
/// cached client deletes, and the IdentityBackend's finalizer holds it until its users are gone.
#[tokio::test]
async fn namespace_deletion_leaves_nothing_on_the_server() {
    let env = TestEnv::started("nsdelete").await;
    env.apply(&idp("google", "Google", true, ""))
        .await
        .expect("idp");
    env.apply(&app(
        "payroll",
        "Payroll",
        Some("payroll-oidc"),
        GOOGLE_THEN_TOTP,
    ))
    .await
    .expect("app");
    env.ready("Application", "payroll", T).await;
    let b = env
        .get("IdentityBackend", "asgardeo")
        .await
        .expect("backend");
    assert!(
        b["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "identity-operator.io/backend-in-use")),
        "{b}"
    );
    assert_eq!(counts(&env), (1, 1));

    let nss: Api<Namespace> = Api::all(env.client.clone());
    nss.delete(&env.ns, &DeleteParams::default())
        .await
        .expect("delete namespace");
    let empty = common::wait_until(Duration::from_secs(90), || async {
        (counts(&env) == (0, 0)).then_some(())
    })
    .await;
    assert!(
        empty.is_some(),
        "left on the server: {:?}\n{}",
        counts(&env),
        common::tail(&env.operator_log(), 40)
    );
    let gone = common::wait_until(Duration::from_secs(90), || async {
        nss.get_opt(&env.ns).await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(gone.is_some(), "the namespace finishes deleting");
}

/// Defect 4: a refused delete is reported on the object (condition and Warning Event with the
/// server's code, and how to unblock), the finalizer stays; Orphan releases it.
#[tokio::test]
async fn refused_delete_is_reported_and_orphan_unblocks() {
    let env = TestEnv::started("refused").await;
    env.apply(&idp("google", "Google", true, ""))
        .await
        .expect("idp");
    env.ready("IdentityProvider", "google", T).await;
    // A server-only application uses Google: the server refuses to delete it.
    env.server()
        .create_application(&NewApplication {
            name: "Console App".into(),
            login_flow: Some(FlowUpdate {
                steps: vec![FlowStep {
                    options: vec![FlowOption::federated("Google", "GoogleOIDCAuthenticator")],
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("server-only app");
    env.delete("IdentityProvider", "google").await;
    let c = env.not_ready("IdentityProvider", "google", T).await;
    assert_eq!(c["reason"], "DeleteRefused", "{c}");
    assert!(message(&c).contains("IDP-6"), "server code: {c}");
    assert!(message(&c).contains("deletionPolicy: Orphan"), "{c}");
    let e = env.wait_event("google", "DeleteRefused", T).await;
    assert_eq!(e.1, "Warning");
    assert!(
        env.get("IdentityProvider", "google").await.is_some(),
        "finalizer held"
    );
    assert_eq!(counts(&env).0, 1);
    // The backend cannot go while the IdP still needs it: its status says who uses it and how to
    // unblock, not only a log line.
    env.delete("IdentityBackend", "asgardeo").await;
    let c = env.not_ready("IdentityBackend", "asgardeo", T).await;
    assert_eq!(c["reason"], "InUse", "{c}");
    assert!(message(&c).contains("IdentityProvider google"), "{c}");
    assert!(message(&c).contains("To unblock"), "{c}");

    env.set_spec(
        "IdentityProvider",
        "google",
        json!({"deletionPolicy": "Orphan"}),
    )
    .await;
    env.wait_gone("IdentityProvider", "google", T).await;
    assert_eq!(counts(&env).0, 1, "Orphan leaves it on the server");
}

/// Defects 5 and 7: a rename happens in place; a rename onto a taken name is reported, never a
/// second object; a server failure ends as Ready=False with the server's code, not "progressing"
/// forever.
#[tokio::test]
async fn rename_in_place_clash_and_server_errors_reach_the_object() {
    let env = TestEnv::started("rename").await;
    env.apply(&idp("alpha", "Alpha", true, ""))
        .await
        .expect("idp");
    env.ready("IdentityProvider", "alpha", T).await;
    let id = env.get("IdentityProvider", "alpha").await.expect("idp")["status"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    env.server()
        .create_idp(&NewIdp {
            name: "Beta".into(),
            description: None,
            image: None,
            authenticator: google_authenticator(),
            jit: None,
            jwks_uri: None,
            certificates: Vec::new(),
            saml_metadata_uri: None,
        })
        .await
        .expect("beta");

    env.set_spec("IdentityProvider", "alpha", json!({"displayName": "Beta"}))
        .await;
    let c = env.not_ready("IdentityProvider", "alpha", T).await;
    assert_eq!(c["reason"], "RenameClash", "{c}");
    assert_eq!(counts(&env).0, 2, "no second object");
    assert_eq!(
        env.server().get_idp(&id).await.expect("alpha").name,
        "Alpha"
    );

    env.set_spec("IdentityProvider", "alpha", json!({"displayName": "Gamma"}))
        .await;
    env.ready("IdentityProvider", "alpha", T).await;
    assert_eq!(
        env.server().get_idp(&id).await.expect("renamed").name,
        "Gamma"
    );
    assert_eq!(counts(&env).0, 2, "renamed in place");

    env.emulator.set_faults(Faults {
        error_rate: 1.0,
        error_status: 503,
        ..Default::default()
    });
    env.set_spec("IdentityProvider", "alpha", json!({"description": "x"}))
        .await;
    let c = env.not_ready("IdentityProvider", "alpha", T).await;
    assert_eq!(c["reason"], "ServerUnavailable", "{c}");
    assert!(message(&c).contains("IDP-65001"), "server code: {c}");
    env.emulator.set_faults(Faults::default());
    env.ready("IdentityProvider", "alpha", T).await;
}

/// Issue 24 item 6: after a RenameClash the IdP's new displayName is another identity provider's on
/// the server; an Application that uses the IdP must not point its flow at that foreign IdP.
#[tokio::test]
async fn a_rename_clash_never_sends_a_flow_through_the_foreign_idp() {
    let env = TestEnv::started("renameflow").await;
    env.apply(&idp("google", "Google", true, ""))
        .await
        .expect("idp");
    env.apply(&app("payroll", "Payroll", None, GOOGLE_ONLY))
        .await
        .expect("app");
    env.ready("Application", "payroll", T).await;
    env.server()
        .create_idp(&NewIdp {
            name: "Beta".into(),
            description: None,
            image: None,
            authenticator: google_authenticator(),
            jit: None,
            jwks_uri: None,
            certificates: Vec::new(),
            saml_metadata_uri: None,
        })
        .await
        .expect("a foreign IdP");
    env.set_spec("IdentityProvider", "google", json!({"displayName": "Beta"}))
        .await;
    let c = env.not_ready("IdentityProvider", "google", T).await;
    assert_eq!(c["reason"], "RenameClash", "{c}");
    // A change of the application makes it run a full pass with the clashing name in its cache.
    env.set_spec("Application", "payroll", json!({"description": "touched"}))
        .await;
    let c = env.not_ready("Application", "payroll", T).await;
    assert_eq!(c["reason"], "IdentityProviderNotReady", "{c}");
    assert!(
        c["message"]
            .as_str()
            .unwrap_or_default()
            .contains("RenameClash"),
        "{c}"
    );
    let idps_in_flow: Vec<String> = env.emulator.with_tenant(common::TENANT, |t| {
        t.apps
            .iter()
            .find(|a| a.name == "Payroll")
            .map(|a| {
                a.sequence
                    .steps
                    .iter()
                    .flatten()
                    .flat_map(|s| s.options.iter().map(|o| o.idp.clone()))
                    .collect()
            })
            .unwrap_or_default()
    });
    assert!(
        idps_in_flow.contains(&"Google".to_string()) && !idps_in_flow.contains(&"Beta".to_string()),
        "the flow still goes through Google, never through the foreign Beta: {idps_in_flow:?}"
    );
}
