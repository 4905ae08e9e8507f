//! JIT on, but skipped on lookup failure (issue 21), on a real kube-apiserver + etcd against the
//! emulator: an identity provider that provisions only users whom its account lookup matches is a
//! conflict for a flow with TOTP after it, exactly like JIT off, and its messages say why; under
//! Block, turning the skip on while such a flow depends on the provider is held back.

mod common;

use std::time::Duration;

use common::{TestEnv, TENANT};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

/// The partner's Okta with JIT on, an account lookup, `skip` as skipForLookupFailure.
fn partner_okta(skip: bool, policy: &str) -> String {
    let lookup: Value = serde_yaml::from_str(LOOKUP).expect("lookup is YAML");
    common::partner_okta(
        json!({"enabled": true, "accountLookup": lookup, "skipForLookupFailure": skip}),
        policy,
    )
}

const LOOKUP: &str =
    r#"[{localAttribute: "http://wso2.org/claims/emailaddress", federatedAttribute: email}]"#;

/// The server's JIT of an IdP: (enabled, skip on lookup failure, number of lookup mappings).
async fn server_jit(env: &TestEnv, idp: &str) -> (bool, Option<bool>, usize) {
    let server = env.server();
    let found = server
        .find_idp_by_name(idp)
        .await
        .expect("list")
        .expect("idp on server");
    let j = server.get_jit(&found.id).await.expect("jit");
    (
        j.enabled,
        j.skip_jit_for_lookup_failure,
        j.account_lookup.len(),
    )
}

async fn simulate(env: &TestEnv, app: &str, choices: Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}/_emulator/simulate-login", env.emulator.url()))
        .json(&json!({"tenant": TENANT, "application": app, "choices": choices}))
        .send()
        .await
        .expect("simulate");
    assert!(resp.status().is_success(), "simulate: {}", resp.status());
    resp.json().await.expect("json")
}

fn message(cond: &Value) -> &str {
    cond["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn jit_skipped_on_lookup_failure_is_a_conflict_on_both_sides() {
    let mut env = TestEnv::new("jit-lookup").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    env.apply(&partner_okta(true, "Warn")).await.expect("idp");
    env.ready("IdentityProvider", "partner-okta", T).await;
    assert_eq!(
        server_jit(&env, "Partner Okta").await,
        (true, Some(true), 1),
        "the lookup and the skip are pushed"
    );
    env.apply(&common::payroll_via_partner_okta(""))
        .await
        .expect("app");

    let idp = env.conflict("IdentityProvider", "partner-okta", T).await;
    assert_eq!(
        idp["reason"], "JITSkippedOnLookupFailureWithMFADependents",
        "{idp}"
    );
    for needle in [
        "skipped on lookup failure",
        "Payroll",
        "totp",
        "Turn skipForLookupFailure off",
        "skipFor",
    ] {
        assert!(message(&idp).contains(needle), "{needle:?}: {idp}");
    }
    assert!(!message(&idp).contains("disabled in the spec"), "{idp}");
    let app = env.conflict("Application", "payroll", T).await;
    for needle in [
        "IdentityProvider partner-okta (step 1)",
        "skipped on lookup failure",
        "totp",
        "Turn skipForLookupFailure off",
    ] {
        assert!(message(&app).contains(needle), "{needle:?}: {app}");
    }
    let status = env
        .get("IdentityProvider", "partner-okta")
        .await
        .expect("idp");
    assert_eq!(status["status"]["jit"], "SkippedOnLookupFailure");
    assert_eq!(status["status"]["conflicts"][0]["lookupSkip"], true);

    // What the conflict predicts: a partner user whom no local account matches fails at TOTP.
    let partner = common::wait_until(T, || async {
        let o = simulate(&env, "Payroll", json!({"1": "Partner Okta"})).await;
        (o["steps"].as_array().map_or(0, |s| s.len()) == 2).then_some(o)
    })
    .await
    .expect("the flow is on the server");
    assert_eq!(partner["success"], false, "{partner}");
    assert_eq!(partner["failedForWantOfLocalAccount"], true, "{partner}");

    // Turning the skip off clears it on both sides.
    env.set_spec(
        "IdentityProvider",
        "partner-okta",
        json!({"jit": {"skipForLookupFailure": false}}),
    )
    .await;
    env.wait_condition(
        "IdentityProvider",
        "partner-okta",
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
    assert_eq!(
        server_jit(&env, "Partner Okta").await,
        (true, Some(false), 1)
    );
}

#[tokio::test]
async fn block_holds_back_turning_the_lookup_skip_on() {
    let mut env = TestEnv::new("jit-lookup-block").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    env.apply(&partner_okta(false, "Block")).await.expect("idp");
    env.apply(&common::payroll_via_partner_okta(""))
        .await
        .expect("app");
    env.ready("Application", "payroll", T).await;
    let idp = env.ready("IdentityProvider", "partner-okta", T).await;
    assert!(message(&idp).contains("matches the spec"), "{idp}");
    common::wait_until(T, || async {
        let idp = env.get("IdentityProvider", "partner-okta").await?;
        (idp["status"]["dependents"][0]["name"] == "Payroll").then_some(())
    })
    .await
    .expect("Payroll is a dependent");

    env.set_spec(
        "IdentityProvider",
        "partner-okta",
        json!({"jit": {"skipForLookupFailure": true}}),
    )
    .await;
    let ready = env.not_ready("IdentityProvider", "partner-okta", T).await;
    assert_eq!(ready["reason"], "JITLookupSkipBlocked", "{ready}");
    assert!(message(&ready).contains("Payroll"), "{ready}");
    let conflict = env.conflict("IdentityProvider", "partner-okta", T).await;
    assert!(
        message(&conflict).contains("skipped on lookup failure"),
        "{conflict}"
    );
    assert!(
        message(&conflict).contains("still provisions these users"),
        "{conflict}"
    );
    // Held back: the server still provisions every partner user, and the login still works.
    assert_eq!(
        server_jit(&env, "Partner Okta").await,
        (true, Some(false), 1)
    );
    let idp = env
        .get("IdentityProvider", "partner-okta")
        .await
        .expect("idp");
    assert_eq!(idp["status"]["jit"], "Enabled");
    let partner = simulate(&env, "Payroll", json!({"1": "Partner Okta"})).await;
    assert_eq!(partner["success"], true, "{partner}");

    // Warn lets it through, and the same login now fails for want of a local account.
    env.set_spec(
        "IdentityProvider",
        "partner-okta",
        json!({"conflictPolicy": "Warn"}),
    )
    .await;
    let pushed = common::wait_until(T, || async {
        (server_jit(&env, "Partner Okta").await.1 == Some(true)).then_some(())
    })
    .await;
    assert!(pushed.is_some(), "Warn pushes the skip");
    let partner = simulate(&env, "Payroll", json!({"1": "Partner Okta"})).await;
    assert_eq!(partner["failedForWantOfLocalAccount"], true, "{partner}");

    let log = env.operator_log();
    assert!(
        !log.contains("okta-very-secret-value") && !log.contains(env.client_secret.as_str()),
        "a secret value appears in the operator log"
    );
}

#[tokio::test]
async fn the_lookup_fields_are_validated_by_the_apiserver() {
    let env = TestEnv::new("jit-lookup-cel").await;
    let idp = |name: &str, jit: &str| {
        format!("apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {{name: {name}}}\nspec: {{backendRef: {{name: b}}, displayName: {name}, github: {{clientID: a, clientSecretRef: {{name: s, key: k}}}}, jit: {jit}}}")
    };
    let m = |local: &str| format!("{{localAttribute: \"{local}\", federatedAttribute: email}}");
    let email = m("http://wso2.org/claims/emailaddress");
    let cases = [
        (
            idp("skip-alone", "{enabled: true, skipForLookupFailure: true}"),
            "skipForLookupFailure: true needs a non-empty accountLookup",
        ),
        (
            idp(
                "skip-empty",
                "{enabled: true, accountLookup: [], skipForLookupFailure: true}",
            ),
            "skipForLookupFailure: true needs a non-empty accountLookup",
        ),
        (
            idp(
                "not-a-claim",
                &format!("{{enabled: true, accountLookup: [{}]}}", m("email")),
            ),
            "localAttribute must be a local claim URI",
        ),
        (
            idp(
                "bare-dialect",
                &format!(
                    "{{enabled: true, accountLookup: [{}]}}",
                    m("http://wso2.org/claims/")
                ),
            ),
            "localAttribute must be a local claim URI",
        ),
        (
            idp(
                "three",
                &format!("{{enabled: true, accountLookup: [{email}, {email}, {email}]}}"),
            ),
            "must have at most 2 items",
        ),
        (
            idp("bad-group", "{enabled: true, groupSyncMethod: Sometimes}"),
            "Unsupported value",
        ),
    ];
    for (yaml, expected) in cases {
        let err = env.apply(&yaml).await.expect_err(expected);
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
    }
    // What is valid: the skip with a lookup, the skip off without one, two mappings.
    for (name, jit) in [
        (
            "skip-with-lookup",
            format!("{{enabled: true, accountLookup: [{email}], skipForLookupFailure: true}}"),
        ),
        (
            "skip-off",
            "{enabled: true, skipForLookupFailure: false}".to_owned(),
        ),
        (
            "two",
            format!(
                "{{enabled: true, accountLookup: [{email}, {}], groupSyncMethod: OverrideAll}}",
                m("http://wso2.org/claims/username")
            ),
        ),
    ] {
        env.apply(&idp(name, &jit)).await.expect(name);
    }
}

/// The Application's side of a held-back lookup skip, between resyncs: declaring
/// `skipForLookupFailure` changes what the conflict rule reads of the IdP, so the dependent
/// Application shows the conflict at once, without waiting for its drift check (a resync of ten
/// minutes here). Failed before the memo took its IdP facts from `facts::IdpFacts`: it hashed only
/// `jit.enabled`, so the Application skipped the pass.
#[tokio::test]
async fn the_application_shows_a_held_back_lookup_skip_without_waiting_for_its_resync() {
    let mut env = TestEnv::new("jit-lookup-app-side").await;
    env.start_operator(&["--resync-interval", "10m"]);
    env.create_backend("asgardeo").await;
    env.apply(&partner_okta(false, "Block")).await.expect("idp");
    env.apply(&common::payroll_via_partner_okta(""))
        .await
        .expect("app");
    env.ready("Application", "payroll", T).await;
    env.ready("IdentityProvider", "partner-okta", T).await;

    env.set_spec(
        "IdentityProvider",
        "partner-okta",
        json!({"jit": {"skipForLookupFailure": true}}),
    )
    .await;
    let ready = env.not_ready("IdentityProvider", "partner-okta", T).await;
    assert_eq!(ready["reason"], "JITLookupSkipBlocked", "{ready}");
    let conflict = env.conflict("Application", "payroll", T).await;
    assert!(
        message(&conflict).contains("skipped on lookup failure"),
        "{conflict}"
    );
}
