//! The hardened IdentityBackend on a real kube-apiserver: an immutable target, plain http only for
//! loopback (or by explicit opt-in), no credentials in the URL, and missing scopes reported by name.

mod common;

use std::time::Duration;

use common::TestEnv;
use identity_operator::backend::operation::Operation;
use serde_json::json;

const T: Duration = Duration::from_secs(60);

fn backend(name: &str, target: &str) -> String {
    format!(
        "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityBackend\nmetadata: {{name: {name}}}\nspec: {{{target}, credentialsSecretRef: {{name: s}}}}"
    )
}

#[tokio::test]
async fn the_target_is_immutable() {
    let env = TestEnv::new("target").await;
    env.apply(&backend("asg", "asgardeo: {organization: acme}"))
        .await
        .expect("valid");
    env.apply(&backend(
        "wso2",
        "wso2IdentityServer: {url: \"https://is.example:9443\", tenant: carbon.super}",
    ))
    .await
    .expect("valid");
    let changes = [
        (
            "asg",
            json!({"spec": {"asgardeo": {"organization": "other"}}}),
        ),
        (
            "asg",
            json!({"spec": {"asgardeo": null, "wso2IdentityServer": {"url": "https://is.example", "tenant": "t"}}}),
        ),
        (
            "wso2",
            json!({"spec": {"wso2IdentityServer": {"url": "https://other.example:9443"}}}),
        ),
        (
            "wso2",
            json!({"spec": {"wso2IdentityServer": {"tenant": "acme.com"}}}),
        ),
    ];
    for (name, patch) in changes {
        let err = env
            .patch("IdentityBackend", name, patch.clone())
            .await
            .expect_err("immutable");
        assert!(err.contains("the target"), "{patch}: {err}");
        assert!(err.contains("is immutable"), "{patch}: {err}");
    }
    // Everything else may change.
    env.set_spec(
        "IdentityBackend",
        "wso2",
        json!({"maxConcurrentRequests": 4, "credentialsSecretRef": {"name": "t"}}),
    )
    .await;
}

#[tokio::test]
async fn plain_http_is_loopback_only_and_urls_carry_no_credentials() {
    let env = TestEnv::new("insecure").await;
    let wso2 = |url: &str, extra: &str| format!("wso2IdentityServer: {{url: \"{url}\"{extra}}}");
    for (i, url) in [
        "http://127.0.0.1:8080",
        "http://localhost:9443/",
        "http://[::1]:1",
        "https://is.example:9443",
    ]
    .iter()
    .enumerate()
    {
        env.apply(&backend(&format!("ok-{i}"), &wso2(url, "")))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    let err = env
        .apply(&backend(
            "clear",
            &wso2("http://emulator.identity.svc:8080", ""),
        ))
        .await
        .expect_err("clear text off-host");
    assert!(err.contains("allowInsecureHTTP"), "{err}");
    env.apply(&backend(
        "opt-in",
        &wso2(
            "http://emulator.identity.svc:8080",
            ", allowInsecureHTTP: true",
        ),
    ))
    .await
    .expect("explicit opt-in");
    for url in [
        "https://admin:hunter2@is.example:9443",
        "http://admin:hunter2@127.0.0.1:1",
    ] {
        let err = env
            .apply(&backend("creds", &wso2(url, ", allowInsecureHTTP: true")))
            .await
            .expect_err("credentials in the URL");
        assert!(err.contains("must not carry credentials"), "{err}");
        assert!(
            !err.contains("hunter2"),
            "the apiserver echoed the password: {err}"
        );
    }
}

#[tokio::test]
async fn missing_scopes_are_named_on_the_backend() {
    let mut env = TestEnv::new("scopes").await;
    // The M2M app lacks the secret-view scope: Asgardeo drops it from the token without an error.
    env.emulator.set_authorized_scopes(Operation::all_scopes());
    env.create_backend("asgardeo").await;
    env.start_operator(&[]);
    env.not_ready("IdentityBackend", "asgardeo", T).await;
    let backend = env
        .get("IdentityBackend", "asgardeo")
        .await
        .expect("backend");
    let status = &backend["status"];
    assert_eq!(
        status["missingScopes"],
        json!([
            "internal_application_mgt_client_secret_view",
            "internal_application_script_update"
        ]),
        "{status}"
    );
    let ready = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .expect("Ready condition");
    assert_eq!(ready["reason"], "MissingScopes");
    assert!(ready["message"]
        .as_str()
        .is_some_and(|m| m.contains("internal_application_mgt_client_secret_view")));
    // The script scope is listed but only skipFor needs it: it does not stop the backend.
    assert!(ready["message"]
        .as_str()
        .is_some_and(|m| !m.contains("internal_application_script_update")));
    // Authorizing it on the server and revoking the old token (its scopes are fixed) clears the report.
    let mut all = Operation::needed_scopes();
    all.push(identity_operator::backend::operation::SCRIPT_SCOPE);
    env.emulator.set_authorized_scopes(all);
    env.emulator.revoke_all_tokens();
    env.ready("IdentityBackend", "asgardeo", T).await;
    let backend = env
        .get("IdentityBackend", "asgardeo")
        .await
        .expect("backend");
    assert!(
        backend["status"]["missingScopes"].is_null(),
        "{}",
        backend["status"]
    );
}
