//! The operator on a real kube-apiserver + etcd against the emulator, driven as a user would: apply
//! YAML, wait for conditions, read the server.

mod common;

use std::time::Duration;

use common::TestEnv;
use identity_operator::backend::{FlowOption, FlowStep, FlowUpdate, JitChange, NewApplication};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

fn google(jit: bool, policy: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: google-oauth, labels: {{identity-operator.io/use: identity-provider-client-secret}}}}
stringData: {{client-secret: google-very-secret-value}}
---
apiVersion: identity-operator.io/v1alpha1
kind: IdentityProvider
metadata: {{name: google}}
spec:
  backendRef: {{name: asgardeo}}
  displayName: Google
  google: {{clientID: "123.apps.example", clientSecretRef: {{name: google-oauth, key: client-secret}}}}
  jit: {{enabled: {jit}, scheme: ProvisionSilently}}
  conflictPolicy: {policy}
"#
    )
}

const PAYROLL: &str = r#"
apiVersion: identity-operator.io/v1alpha1
kind: Application
metadata: {name: payroll}
spec:
  backendRef: {name: asgardeo}
  displayName: Payroll
  oidc: {grantTypes: [authorization_code, refresh_token], callbackURLs: ["https://payroll.example/callback"]}
  credentialsSecret: {name: payroll-oidc}
  loginFlow:
    steps:
      - options: [{authenticator: BasicAuthenticator}, {identityProviderRef: {name: google}}]
      - options: [{authenticator: totp}]
"#;

async fn server_jit(env: &TestEnv, idp: &str) -> bool {
    let server = env.server();
    let found = server
        .find_idp_by_name(idp)
        .await
        .expect("list")
        .expect("idp on server");
    server.get_jit(&found.id).await.expect("jit").enabled
}

#[tokio::test]
async fn seed_scenario_block_warn_and_clear() {
    let mut env = TestEnv::new("seed").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    env.apply(&google(true, "Block")).await.expect("idp");
    env.apply(PAYROLL).await.expect("app");
    env.ready("IdentityBackend", "asgardeo", T).await;
    env.ready("IdentityProvider", "google", T).await;
    env.ready("Application", "payroll", T).await;

    // The server has what the YAML says, once.
    let server = env.server();
    let app = server
        .find_application_by_name("Payroll")
        .await
        .expect("list")
        .expect("app on server");
    let app = server.get_application(&app.id).await.expect("app");
    assert_eq!(app.login_flow.steps.len(), 2);
    assert!(app.login_flow.steps[0]
        .options
        .contains(&FlowOption::federated("Google", "GoogleOIDCAuthenticator")));
    assert!(server_jit(&env, "Google").await);
    let creds = env
        .secret_data("payroll-oidc")
        .await
        .expect("credentials Secret written");
    assert_eq!(
        creds.get("client-id"),
        app.client_id.as_ref(),
        "client-id matches the server"
    );
    assert!(creds.get("client-secret").is_some_and(|s| !s.is_empty()));
    let idp = env.get("IdentityProvider", "google").await.expect("idp");
    assert_eq!(idp["status"]["jit"], "Enabled");
    assert_eq!(idp["status"]["dependents"][0]["name"], "Payroll");
    assert_eq!(idp["status"]["dependents"][0]["applicationRef"], "payroll");

    // JIT off under Block: held back, reported on both sides.
    env.set_spec(
        "IdentityProvider",
        "google",
        json!({"jit": {"enabled": false}}),
    )
    .await;
    let c = env.conflict("IdentityProvider", "google", T).await;
    let msg = c["message"].as_str().unwrap_or_default();
    assert!(msg.contains("Payroll") && msg.contains("totp"), "{msg}");
    let ready = env.not_ready("IdentityProvider", "google", T).await;
    assert_eq!(ready["reason"], "JITDisableBlocked");
    let c = env.conflict("Application", "payroll", T).await;
    let msg = c["message"].as_str().unwrap_or_default();
    assert!(msg.contains("google") && msg.contains("totp"), "{msg}");
    assert!(
        server_jit(&env, "Google").await,
        "Block keeps JIT on on the server"
    );
    env.wait_event("google", "InterconnectionConflict", T).await;

    // Warn: pushed, still reported.
    env.set_spec(
        "IdentityProvider",
        "google",
        json!({"conflictPolicy": "Warn"}),
    )
    .await;
    env.ready("IdentityProvider", "google", T).await;
    let off = common::wait_until(T, || async {
        (!server_jit(&env, "Google").await).then_some(())
    })
    .await;
    assert!(off.is_some(), "Warn pushes JIT off");
    env.conflict("IdentityProvider", "google", T).await;
    let idp = env.get("IdentityProvider", "google").await.expect("idp");
    assert_eq!(idp["status"]["jit"], "Disabled");

    // JIT back on: cleared on both sides.
    env.set_spec(
        "IdentityProvider",
        "google",
        json!({"jit": {"enabled": true}}),
    )
    .await;
    env.wait_condition(
        "IdentityProvider",
        "google",
        "InterconnectionConflict",
        "False",
        T,
    )
    .await;
    env.wait_condition(
        "Application",
        "payroll",
        "InterconnectionConflict",
        "False",
        T,
    )
    .await;
    assert!(server_jit(&env, "Google").await);
    env.wait_event("google", "ConflictCleared", T).await;

    // Secrets never reach the log.
    let log = env.operator_log();
    for secret in [
        env.client_secret.as_str(),
        "google-very-secret-value",
        creds["client-secret"].as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "a secret value appears in the operator log"
        );
    }
    assert!(log.contains("starting controllers"), "the log was captured");
}

#[tokio::test]
async fn server_only_application_counts_as_dependent() {
    let mut env = TestEnv::new("serveronly").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    env.apply(&google(true, "Block")).await.expect("idp");
    env.ready("IdentityProvider", "google", T).await;

    // Someone made an application in the console: Google, then passkey.
    let server = env.server();
    server
        .create_application(&NewApplication {
            name: "Console App".into(),
            login_flow: Some(FlowUpdate {
                steps: vec![
                    FlowStep {
                        options: vec![FlowOption::federated("Google", "GoogleOIDCAuthenticator")],
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

    env.set_spec(
        "IdentityProvider",
        "google",
        json!({"jit": {"enabled": false}}),
    )
    .await;
    let c = env.conflict("IdentityProvider", "google", T).await;
    assert!(c["message"]
        .as_str()
        .unwrap_or_default()
        .contains("Console App"));
    assert!(c["message"]
        .as_str()
        .unwrap_or_default()
        .contains("FIDOAuthenticator"));
    let idp = env.get("IdentityProvider", "google").await.expect("idp");
    assert_eq!(idp["status"]["dependents"][0]["name"], "Console App");
    assert!(idp["status"]["dependents"][0]["applicationRef"].is_null());
    assert!(server_jit(&env, "Google").await, "blocked");
}

#[tokio::test]
async fn drift_on_the_server_is_reverted() {
    let mut env = TestEnv::new("drift").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    env.apply(&google(true, "Block")).await.expect("idp");
    env.apply(PAYROLL).await.expect("app");
    env.ready("Application", "payroll", T).await;

    let server = env.server();
    let idp = server
        .find_idp_by_name("Google")
        .await
        .expect("list")
        .expect("idp");
    server
        .update_jit(
            &idp.id,
            &JitChange {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("console edit");
    let app = server
        .find_application_by_name("Payroll")
        .await
        .expect("list")
        .expect("app");
    server
        .patch_application(
            &app.id,
            &identity_operator::backend::ApplicationPatch {
                login_flow: Some(FlowUpdate {
                    steps: vec![FlowStep {
                        options: vec![FlowOption::local("BasicAuthenticator")],
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("console edit");

    let back = common::wait_until(T, || async {
        server_jit(&env, "Google").await.then_some(())
    })
    .await;
    assert!(back.is_some(), "JIT drift reverted");
    let flow_back = common::wait_until(T, || async {
        let a = server.get_application(&app.id).await.ok()?;
        (a.login_flow.steps.len() == 2).then_some(())
    })
    .await;
    assert!(flow_back.is_some(), "flow drift reverted");
    env.wait_event("google", "DriftCorrected", T).await;
    env.wait_event("payroll", "DriftCorrected", T).await;
}

#[tokio::test]
async fn delete_and_orphan() {
    let mut env = TestEnv::new("delete").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    env.apply(&google(true, "Block")).await.expect("idp");
    env.apply(
        &google(true, "Block")
            .replace("name: google}", "name: kept}")
            .replace("displayName: Google", "displayName: Kept")
            .replace(
                "conflictPolicy: Block",
                "conflictPolicy: Block\n  deletionPolicy: Orphan",
            ),
    )
    .await
    .expect("idp2");
    env.ready("IdentityProvider", "google", T).await;
    env.ready("IdentityProvider", "kept", T).await;

    env.delete("IdentityProvider", "google").await;
    env.delete("IdentityProvider", "kept").await;
    env.wait_gone("IdentityProvider", "google", T).await;
    env.wait_gone("IdentityProvider", "kept", T).await;
    let server = env.server();
    assert!(
        server
            .find_idp_by_name("Google")
            .await
            .expect("list")
            .is_none(),
        "Delete removes it on the server"
    );
    assert!(
        server
            .find_idp_by_name("Kept")
            .await
            .expect("list")
            .is_some(),
        "Orphan keeps it"
    );
}

#[tokio::test]
async fn interrupted_create_leaves_no_duplicate_and_existing_needs_adopt() {
    let mut env = TestEnv::new("crash").await;
    env.create_backend("asgardeo").await;
    let server = env.server();
    // The state right after a crash between the POST and the status write: the IdP exists on the
    // server with the object's uid marker, the object carries the create-pending mark (its uid)
    // and no id.
    env.apply(&google(true, "Block")).await.expect("idp");
    let uid = env.get("IdentityProvider", "google").await.expect("idp")["metadata"]["uid"]
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
    server
        .create_idp(&identity_operator::backend::NewIdp {
            name: "Google".into(),
            description: Some(identity_operator::controller::managed::owner_marker(&uid)),
            image: None,
            authenticator: identity_operator::controller::translate::desired_authenticator(
                &serde_json::from_value(json!({"backendRef": {"name": "asgardeo"}, "displayName": "Google",
                    "google": {"clientID": "123.apps.example", "clientSecretRef": {"name": "google-oauth", "key": "client-secret"}}})).expect("spec"),
                None,
            )
            .expect("authenticator"),
            jit: None,
            jwks_uri: None,
            certificates: Vec::new(),
            saml_metadata_uri: None,
        })
        .await
        .expect("pre-existing");
    // And an unrelated IdP with the same name as another object, without adopt.
    server
        .create_idp(&identity_operator::backend::NewIdp {
            name: "Taken".into(),
            description: None,
            image: None,
            authenticator: identity_operator::controller::translate::desired_authenticator(
                &serde_json::from_value(json!({"backendRef": {"name": "asgardeo"}, "displayName": "Taken",
                    "github": {"clientID": "x", "clientSecretRef": {"name": "google-oauth", "key": "client-secret"}}})).expect("spec"),
                None,
            )
            .expect("authenticator"),
            jit: None,
            jwks_uri: None,
            certificates: Vec::new(),
            saml_metadata_uri: None,
        })
        .await
        .expect("taken");
    env.apply(
        &google(true, "Block")
            .replace("name: google}", "name: taken}")
            .replace("displayName: Google", "displayName: Taken"),
    )
    .await
    .expect("idp");

    env.start_operator(&[]);
    env.ready("IdentityProvider", "google", T).await;
    env.wait_event("google", "Recovered", T).await;
    let all = server.find_idp_by_name("Google").await.expect("list");
    assert!(all.is_some());
    let ready = env.not_ready("IdentityProvider", "taken", T).await;
    assert_eq!(ready["reason"], "AlreadyExists");
    assert!(ready["message"]
        .as_str()
        .unwrap_or_default()
        .contains("adopt"));

    env.set_spec("IdentityProvider", "taken", json!({"adopt": true}))
        .await;
    env.ready("IdentityProvider", "taken", T).await;
    env.wait_event("taken", "Adopted", T).await;
    assert_eq!(
        env.emulator.with_tenant(common::TENANT, |t| t.idps.len()),
        2,
        "no duplicates"
    );
}

#[tokio::test]
async fn invalid_specs_are_rejected_by_the_apiserver() {
    let env = TestEnv::new("invalid").await;
    let cases = [
        (
            "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {name: two-types}\nspec: {backendRef: {name: b}, displayName: X, google: {clientID: a, clientSecretRef: {name: s, key: k}}, github: {clientID: a, clientSecretRef: {name: s, key: k}}}",
            "set exactly one identity provider type",
        ),
        (
            "apiVersion: identity-operator.io/v1alpha1\nkind: Application\nmetadata: {name: no-steps}\nspec: {backendRef: {name: b}, displayName: X, loginFlow: {steps: []}}",
            "loginFlow needs at least one step",
        ),
        (
            "apiVersion: identity-operator.io/v1alpha1\nkind: Application\nmetadata: {name: both}\nspec: {backendRef: {name: b}, displayName: X, loginFlow: {steps: [{options: [{authenticator: totp, identityProviderRef: {name: g}}]}]}}",
            "exactly one of authenticator or identityProviderRef",
        ),
        (
            "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {name: bad-scheme}\nspec: {backendRef: {name: b}, displayName: X, github: {clientID: a, clientSecretRef: {name: s, key: k}}, jit: {enabled: true, scheme: Sometimes}}",
            "Unsupported value",
        ),
        (
            "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityBackend\nmetadata: {name: none}\nspec: {credentialsSecretRef: {name: s}}",
            "set exactly one of asgardeo or wso2IdentityServer",
        ),
        (
            "apiVersion: identity-operator.io/v1alpha1\nkind: Application\nmetadata: {name: nocb}\nspec: {backendRef: {name: b}, displayName: X, oidc: {grantTypes: [authorization_code]}}",
            "need at least one callbackURL",
        ),
        // IdP certificates (issue 21): one PEM block each, no duplicates, one kind per IdP.
        (
            "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {name: not-pem}\nspec: {backendRef: {name: b}, displayName: X, saml: {idpEntityID: i, ssoURL: \"https://s.example/sso\", spEntityID: sp, certificates: [\"MIIBhDCC\"]}}",
            "certificates: each must be one PEM block",
        ),
        (
            "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {name: two-pems}\nspec: {backendRef: {name: b}, displayName: X, saml: {idpEntityID: i, ssoURL: \"https://s.example/sso\", spEntityID: sp, certificates: [\"-----BEGIN CERTIFICATE-----\\nQQ==\\n-----END CERTIFICATE-----\\n-----BEGIN CERTIFICATE-----\\nQg==\\n-----END CERTIFICATE-----\"]}}",
            "certificates: each must be one PEM block",
        ),
        (
            "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {name: dup-pems}\nspec: {backendRef: {name: b}, displayName: X, saml: {idpEntityID: i, ssoURL: \"https://s.example/sso\", spEntityID: sp, certificates: [\"-----BEGIN CERTIFICATE-----\\nQQ==\\n-----END CERTIFICATE-----\\n\", \"-----BEGIN CERTIFICATE-----\\nQQ==\\n-----END CERTIFICATE-----\\n\"]}}",
            "certificates: each at most once",
        ),
        (
            "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {name: meta-and-pem}\nspec: {backendRef: {name: b}, displayName: X, saml: {idpEntityID: i, ssoURL: \"https://s.example/sso\", spEntityID: sp, metadataURI: \"https://s.example/metadata\", certificates: [\"-----BEGIN CERTIFICATE-----\\nQQ==\\n-----END CERTIFICATE-----\\n\"]}}",
            "set metadataURI or certificates, not both",
        ),
        (
            "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {name: meta-ftp}\nspec: {backendRef: {name: b}, displayName: X, saml: {idpEntityID: i, ssoURL: \"https://s.example/sso\", spEntityID: sp, metadataURI: \"ftp://s.example/metadata\"}}",
            "metadataURI must be an http(s) URL",
        ),
        (
            "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {name: jwks-and-pem}\nspec: {backendRef: {name: b}, displayName: X, oidc: {clientID: a, clientSecretRef: {name: s, key: k}, authorizationEndpoint: \"https://o.example/a\", tokenEndpoint: \"https://o.example/t\", jwksURI: \"https://o.example/jwks\", certificates: [\"-----BEGIN CERTIFICATE-----\\nQQ==\\n-----END CERTIFICATE-----\\n\"]}}",
            "set jwksURI or certificates, not both",
        ),
    ];
    for (yaml, expected) in cases {
        let err = env.apply(yaml).await.expect_err(expected);
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
    }
    // backendRef is immutable.
    env.apply("apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {name: imm}\nspec: {backendRef: {name: b}, displayName: X, github: {clientID: a, clientSecretRef: {name: s, key: k}}}").await.expect("valid");
    let err = env
        .patch(
            "IdentityProvider",
            "imm",
            json!({"spec": {"backendRef": {"name": "other"}}}),
        )
        .await
        .expect_err("immutable");
    assert!(err.contains("backendRef is immutable"), "{err}");
}

fn stored_client_secret(env: &TestEnv, idp: &str) -> Option<String> {
    env.emulator.with_tenant(common::TENANT, |t| {
        t.idp_by_name(idp)?
            .authenticators
            .iter()
            .flat_map(|a| a.properties.iter().flatten())
            .find(|p| p.key == "ClientSecret")
            .and_then(|p| p.value.clone())
    })
}

#[tokio::test]
async fn secret_rotation_is_pushed_and_credentials_secret_is_restored() {
    let mut env = TestEnv::new("rotate").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    env.apply(&google(true, "Block")).await.expect("idp");
    env.apply(PAYROLL).await.expect("app");
    env.ready("Application", "payroll", T).await;
    assert_eq!(
        stored_client_secret(&env, "Google").as_deref(),
        Some("google-very-secret-value")
    );

    // Rotating the Secret in the cluster reaches the server without a spec change.
    env.apply("apiVersion: v1\nkind: Secret\nmetadata: {name: google-oauth, labels: {identity-operator.io/use: identity-provider-client-secret}}\nstringData: {client-secret: rotated-value}\n").await.expect("rotate");
    let rotated = common::wait_until(T, || async {
        (stored_client_secret(&env, "Google").as_deref() == Some("rotated-value")).then_some(())
    })
    .await;
    assert!(rotated.is_some(), "the rotated secret was pushed");

    // The generated credentials Secret is owned: deleting it brings it back with the same values.
    let before = env.secret_data("payroll-oidc").await.expect("written");
    env.delete("Secret", "payroll-oidc").await;
    let back = common::wait_until(T, || async {
        env.secret_data("payroll-oidc")
            .await
            .filter(|d| d == &before)
    })
    .await;
    assert!(back.is_some(), "credentials Secret restored");
}

#[tokio::test]
async fn one_operator_watches_a_list_of_namespaces() {
    let mut a = TestEnv::new("multi-a").await;
    let b = TestEnv::new("multi-b").await;
    let c = TestEnv::new("multi-c").await;
    // Watches a and b (a repeated flag and a comma-separated one both work), not c.
    a.start_operator(&["--namespace", &format!("{},{}", b.ns, "unused-ns")]);
    for env in [&a, &b, &c] {
        env.create_backend("asgardeo").await;
        env.apply(&google(true, "Block")).await.expect("idp");
    }
    a.ready("IdentityProvider", "google", T).await;
    b.ready("IdentityProvider", "google", T).await;
    assert!(b
        .server()
        .find_idp_by_name("Google")
        .await
        .expect("list")
        .is_some());
    // c is not watched: no status, nothing on its server.
    let untouched = common::wait_until(Duration::from_secs(3), || async {
        c.get("IdentityProvider", "google")
            .await
            .filter(|o| !o["status"].is_null())
    })
    .await;
    assert!(untouched.is_none(), "namespace c is not watched");
    assert!(c
        .server()
        .find_idp_by_name("Google")
        .await
        .expect("list")
        .is_none());
}
