//! The seed scenario's third ending, on a real kube-apiserver + etcd against the emulator: JIT off on
//! the partner's IdP with the MFA step skipped for its users (skipFor) is no conflict; the operator
//! pushes JIT off and the generated conditional-auth script, a simulated partner login passes and a
//! local user still gets TOTP. A script the operator did not write proves nothing.

mod common;

use std::time::Duration;

use common::{TestEnv, TENANT};
use identity_operator::flow::script::HEADER;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

/// The partner's Okta (Block) with JIT on or off.
fn partner_okta(jit: bool) -> String {
    common::partner_okta(json!({"enabled": jit}), "Block")
}

/// Payroll through the partner's Okta, `skip` on its TOTP step.
fn payroll(skip: &str) -> String {
    common::payroll_via_partner_okta(skip)
}

async fn server_jit(env: &TestEnv, idp: &str) -> bool {
    let server = env.server();
    let found = server
        .find_idp_by_name(idp)
        .await
        .expect("list")
        .expect("idp on server");
    server.get_jit(&found.id).await.expect("jit").enabled
}

async fn server_script(env: &TestEnv, app: &str) -> Option<String> {
    let server = env.server();
    let found = server
        .find_application_by_name(app)
        .await
        .expect("list")
        .expect("app on server");
    server
        .get_application(&found.id)
        .await
        .expect("app")
        .login_flow
        .script
}

/// Simulates a login on the emulator; `choices` maps step numbers to the option picked.
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

fn steps_ran(outcome: &Value) -> Vec<(u64, String)> {
    outcome["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            (
                s["step"].as_u64().unwrap_or_default(),
                s["authenticator"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn jit_off_with_skip_for_is_no_conflict_and_the_simulated_logins_prove_it() {
    let mut env = TestEnv::new("remedy").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    env.apply(&partner_okta(true)).await.expect("idp");
    env.apply(&payroll(
        "skipFor: {identityProviders: [{name: partner-okta}]}",
    ))
    .await
    .expect("app");
    env.ready("IdentityProvider", "partner-okta", T).await;
    env.ready("Application", "payroll", T).await;

    // The generated script is on the server with the flow.
    let script = common::wait_until(T, || async { server_script(&env, "Payroll").await })
        .await
        .expect("a script on the server");
    assert!(script.starts_with(HEADER), "{script}");
    assert!(script.contains("\"Partner Okta\""), "{script}");
    let app = env.get("Application", "payroll").await.expect("app");
    assert_eq!(app["status"]["script"], "Generated");
    assert_eq!(
        app["status"]["conditionalSteps"],
        "2 (skipped for partner-okta)"
    );

    // An edit of the generated script on the server is drift: the operator writes its script back.
    env.emulator.with_tenant(TENANT, |st| {
        let id = st.app_by_name("Payroll").map(|a| a.id.clone());
        if let Some(app) = id.and_then(|id| st.app_mut(&id)) {
            app.sequence.script = app
                .sequence
                .script
                .as_ref()
                .map(|s| s.replace("executeStep(2);", "executeStep(2); executeStep(2);"));
        }
    });
    let restored = common::wait_until(T, || async {
        (server_script(&env, "Payroll").await.as_deref() == Some(script.as_str())).then_some(())
    })
    .await;
    assert!(restored.is_some(), "the edited script is corrected");
    env.wait_event("payroll", "DriftCorrected", T).await;

    // JIT off under Block: no conflict, so it is pushed; Ready on both sides.
    env.set_spec(
        "IdentityProvider",
        "partner-okta",
        json!({"jit": {"enabled": false}}),
    )
    .await;
    let off = common::wait_until(T, || async {
        (!server_jit(&env, "Partner Okta").await).then_some(())
    })
    .await;
    assert!(off.is_some(), "JIT off is pushed: the skip makes it safe");
    let idp = common::wait_until(T, || async {
        let idp = env.get("IdentityProvider", "partner-okta").await?;
        (idp["status"]["jit"] == "Disabled").then_some(idp)
    })
    .await
    .expect("status shows JIT off");
    let conds = idp["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let cond = |t: &str| conds.iter().find(|c| c["type"] == t).cloned();
    assert_eq!(
        cond("InterconnectionConflict").expect("condition")["status"],
        "False"
    );
    assert_eq!(cond("Ready").expect("condition")["status"], "True");
    assert_eq!(idp["status"]["dependents"][0]["name"], "Payroll");
    env.wait_condition(
        "Application",
        "payroll",
        "InterconnectionConflict",
        "False",
        T,
    )
    .await;
    env.ready("Application", "payroll", T).await;

    // The emulator runs the script: the partner user skips TOTP, the local user still gets it.
    let partner = simulate(&env, "Payroll", json!({"1": "Partner Okta"})).await;
    assert_eq!(partner["success"], true, "{partner}");
    assert_eq!(partner["script"], true, "{partner}");
    assert_eq!(
        steps_ran(&partner),
        vec![(1, "OpenIDConnectAuthenticator".to_owned())]
    );
    let staff = simulate(&env, "Payroll", json!({"1": "BasicAuthenticator"})).await;
    assert_eq!(staff["success"], true, "{staff}");
    assert_eq!(
        steps_ran(&staff),
        vec![(1, "BasicAuthenticator".to_owned()), (2, "totp".to_owned())]
    );

    // Without the skip the same JIT-off flow is the conflict again. Under Block the Application
    // side holds that flow change back: the script stays, the partner still gets in.
    env.apply(&payroll("")).await.expect("app without skip");
    let ready = env.not_ready("Application", "payroll", T).await;
    assert_eq!(ready["reason"], "LoginFlowBlocked", "{ready}");
    let held = simulate(&env, "Payroll", json!({"1": "Partner Okta"})).await;
    assert_eq!(held["success"], true, "{held}");
    // With Warn it is pushed, and the simulation shows what Block prevented.
    env.set_spec(
        "IdentityProvider",
        "partner-okta",
        json!({"conflictPolicy": "Warn"}),
    )
    .await;
    let c = env.conflict("Application", "payroll", T).await;
    let msg = c["message"].as_str().unwrap_or_default();
    assert!(msg.contains("skipFor") && msg.contains("totp"), "{msg}");
    let broken = common::wait_until(T, || async {
        let o = simulate(&env, "Payroll", json!({"1": "Partner Okta"})).await;
        (o["success"] == false).then_some(o)
    })
    .await
    .expect("the partner login fails once the skip is gone");
    assert_eq!(broken["failedForWantOfLocalAccount"], true, "{broken}");
    let app = env.get("Application", "payroll").await.expect("app");
    assert!(
        app["status"]["conditionalSteps"].is_null(),
        "{}",
        app["status"]
    );

    let log = env.operator_log();
    assert!(
        !log.contains("okta-very-secret-value") && !log.contains(env.client_secret.as_str()),
        "a secret value appears in the operator log"
    );
}

#[tokio::test]
async fn a_script_the_operator_did_not_write_is_not_verified_unless_proved_and_not_overwritten() {
    let mut env = TestEnv::new("foreign-script").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    env.apply(&partner_okta(true)).await.expect("idp");
    env.ready("IdentityProvider", "partner-okta", T).await;
    // A console user wrote a script that does skip TOTP for the partner, but it also logs through
    // an API outside the operator's model, so the operator cannot prove it: not verified.
    let hand_written = "var onLoginRequest = function (context) {\n    executeStep(1, {\n        onSuccess: function (context) {\n            Log.info('signed in through ' + context.steps[1].idp);\n            if (context.steps[1].idp === 'LOCAL') { executeStep(2); }\n        }\n    });\n};\n";
    env.emulator.with_tenant(TENANT, |st| {
        let id = st.insert_app(
            "Payroll",
            vec![
                vec![
                    ("LOCAL".into(), "BasicAuthenticator".into()),
                    ("Partner Okta".into(), "OpenIDConnectAuthenticator".into()),
                ],
                vec![("LOCAL".into(), "totp".into())],
            ],
        );
        if let Some(app) = st.app_mut(&id) {
            app.sequence.script = Some(hand_written.to_owned());
        }
    });

    // The server-only application depends on the IdP; JIT off is held back, and the message says
    // why the script does not count.
    env.set_spec(
        "IdentityProvider",
        "partner-okta",
        json!({"jit": {"enabled": false}}),
    )
    .await;
    let c = env.conflict("IdentityProvider", "partner-okta", T).await;
    let msg = c["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("has a conditional-auth script that was not verified"),
        "{msg}"
    );
    assert!(msg.contains("skipFor"), "{msg}");
    let ready = env.not_ready("IdentityProvider", "partner-okta", T).await;
    assert_eq!(ready["reason"], "JITDisableBlocked");
    assert!(server_jit(&env, "Partner Okta").await, "Block keeps JIT on");
    let idp = env
        .get("IdentityProvider", "partner-okta")
        .await
        .expect("idp");
    assert_eq!(idp["status"]["conflicts"][0]["unverifiedScript"], true);

    // Declaring the application without adopt does not take it over, and the script is untouched.
    env.apply(&payroll(
        "skipFor: {identityProviders: [{name: partner-okta}]}",
    ))
    .await
    .expect("app");
    let stalled = env.not_ready("Application", "payroll", T).await;
    assert_eq!(stalled["reason"], "AlreadyExists");
    assert_eq!(
        server_script(&env, "Payroll").await.as_deref(),
        Some(hand_written)
    );

    // The same script without the log line uses only the modelled API: the operator proves it by
    // simulating every login with JIT off, and JIT off goes through.
    let provable = hand_written.replace(
        "            Log.info('signed in through ' + context.steps[1].idp);\n",
        "",
    );
    env.emulator.with_tenant(TENANT, |st| {
        let id = st.app_by_name("Payroll").map(|a| a.id.clone());
        if let Some(app) = id.and_then(|id| st.app_mut(&id)) {
            app.sequence.script = Some(provable.clone());
        }
    });
    env.wait_condition(
        "IdentityProvider",
        "partner-okta",
        "InterconnectionConflict",
        "False",
        T,
    )
    .await;
    let off = common::wait_until(T, || async {
        (!server_jit(&env, "Partner Okta").await).then_some(())
    })
    .await;
    assert!(off.is_some(), "a proved script makes JIT off safe");
}

#[tokio::test]
async fn skip_for_is_validated_by_the_apiserver() {
    let env = TestEnv::new("skip-cel").await;
    let app = |steps: &str| {
        format!(
            r#"
apiVersion: identity-operator.io/v1alpha1
kind: Application
metadata: {{name: payroll}}
spec:
  backendRef: {{name: asgardeo}}
  displayName: Payroll
  loginFlow:
    steps:
{steps}
"#
        )
    };
    let cases = [
        (
            "skipFor on the first step",
            "      - options: [{authenticator: BasicAuthenticator}]\n        skipFor: {federatedUsers: true}",
            "the first login step cannot have skipFor",
        ),
        (
            "both kinds of skip",
            "      - options: [{identityProviderRef: {name: okta}}]\n      - options: [{authenticator: totp}]\n        skipFor: {federatedUsers: true, identityProviders: [{name: okta}]}",
            "exactly one of identityProviders or federatedUsers",
        ),
        (
            "an empty skip",
            "      - options: [{identityProviderRef: {name: okta}}]\n      - options: [{authenticator: totp}]\n        skipFor: {}",
            "exactly one of identityProviders or federatedUsers",
        ),
        (
            "federatedUsers: false alone",
            "      - options: [{identityProviderRef: {name: okta}}]\n      - options: [{authenticator: totp}]\n        skipFor: {federatedUsers: false}",
            "exactly one of identityProviders or federatedUsers",
        ),
    ];
    for (name, steps, want) in cases {
        let err = env
            .apply(&app(steps))
            .await
            .expect_err(&format!("{name}: rejected"));
        assert!(err.contains(want), "{name}: {err}");
    }
    env.apply(&app(
        "      - options: [{identityProviderRef: {name: okta}}]\n      - options: [{authenticator: totp}]\n        skipFor: {identityProviders: [{name: okta}]}",
    ))
    .await
    .expect("a valid skip is accepted");
}

/// Issue 24: a displayName reaches the server's flows and the generated script, so the apiserver
/// refuses control characters and line separators in it (a newline once added code to the
/// script), and surrounding whitespace (the server trims names: the operator renamed on every
/// resync).
#[tokio::test]
async fn display_names_with_line_breaks_or_surrounding_spaces_are_refused_by_the_apiserver() {
    let env = TestEnv::new("name-cel").await;
    let idp = |name: &str| {
        json!({
            "apiVersion": "identity-operator.io/v1alpha1",
            "kind": "IdentityProvider",
            "metadata": {"name": "partner"},
            "spec": {
                "backendRef": {"name": "asgardeo"},
                "displayName": name,
                "oidc": {
                    "clientID": "c",
                    "clientSecretRef": {"name": "s", "key": "k"},
                    "authorizationEndpoint": "https://idp.example/authorize",
                    "tokenEndpoint": "https://idp.example/token"
                }
            }
        })
        .to_string()
    };
    let app = |name: &str| {
        json!({
            "apiVersion": "identity-operator.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "payroll"},
            "spec": {"backendRef": {"name": "asgardeo"}, "displayName": name}
        })
        .to_string()
    };
    let controls = "must not contain control characters";
    let spaces = "must not start or end with whitespace";
    let cases = [
        ("a newline", "Partner\nvar onLoginRequest = 1;", controls),
        ("a line separator", "Partner\u{2028}x", controls),
        ("a paragraph separator", "Partner\u{2029}x", controls),
        ("a tab", "Partner\tOkta", controls),
        ("a trailing space", "Partner Okta ", spaces),
        ("a leading space", " Partner Okta", spaces),
        ("a trailing no-break space", "Partner Okta\u{a0}", spaces),
    ];
    for (what, name, want) in cases {
        for (kind, yaml) in [("IdentityProvider", idp(name)), ("Application", app(name))] {
            let err = env
                .apply(&yaml)
                .await
                .expect_err(&format!("{kind} with {what}: rejected"));
            assert!(err.contains(want), "{kind} with {what}: {err}");
        }
    }
    assert!(env.get("IdentityProvider", "partner").await.is_none());
    env.apply(&idp("Partner Okta (EU) \"α\""))
        .await
        .expect("an ordinary name with inner spaces, quotes and non-ASCII is accepted");
    env.apply(&app("Payroll"))
        .await
        .expect("an ordinary application name is accepted");
}

/// Issue 24: a skipFor naming an IdentityProvider no earlier step offers skips nobody; it used to
/// vanish from the script without a word. Ready (still True: the rest is applied) names it, and
/// stops once it is fixed.
#[tokio::test]
async fn a_skip_for_that_skips_nobody_is_named_on_ready() {
    let mut env = TestEnv::new("skip-nobody").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    env.apply(&partner_okta(true)).await.expect("idp");
    env.apply(&payroll(
        "skipFor: {identityProviders: [{name: partner-otka}]}",
    ))
    .await
    .expect("app");
    let ready = env.ready("Application", "payroll", T).await;
    let message = ready["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains(
            "skipFor of step 2 names IdentityProvider partner-otka, which no earlier step offers: it skips nobody"
        ),
        "{message}"
    );
    assert_eq!(
        server_script(&env, "Payroll")
            .await
            .filter(|s| !s.trim().is_empty()),
        None,
        "nothing to skip, no script"
    );

    env.apply(&payroll(
        "skipFor: {identityProviders: [{name: partner-okta}]}",
    ))
    .await
    .expect("fixed");
    let fixed = common::wait_until(T, || async {
        let app = env.get("Application", "payroll").await?;
        let conditions = app["status"]["conditions"].as_array()?.clone();
        conditions
            .iter()
            .find(|c| c["type"] == "Ready" && c["status"] == "True")
            .filter(|c| {
                !c["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("skips nobody")
            })
            .cloned()
    })
    .await;
    assert!(fixed.is_some(), "Ready stops naming the fixed skip");
    let script = common::wait_until(T, || async {
        server_script(&env, "Payroll")
            .await
            .filter(|s| s.contains("\"Partner Okta\""))
    })
    .await;
    assert!(script.is_some(), "the skip is in the script now");
}

/// Issue 24: a server-side script that replaces the simulation's executeStep (here with one that
/// records a success and runs on) must not count as proved: TOTP still needs a local account the
/// partner's users do not have with JIT off, so Block keeps JIT on.
#[tokio::test]
async fn a_script_that_replaces_the_simulation_is_not_proved() {
    let mut env = TestEnv::new("fake-proof").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    env.apply(&partner_okta(true)).await.expect("idp");
    env.ready("IdentityProvider", "partner-okta", T).await;
    let faking = "var executeStep = function (n, o) {\n    if (typeof __out !== 'undefined') { __out.ran.push({ step: n, idp: 'LOCAL', authenticator: 'BasicAuthenticator', success: true }); }\n    if (o && o.onSuccess) { o.onSuccess({ steps: {} }); }\n};\nvar onLoginRequest = function (context) {\n    executeStep(1, { onSuccess: function (context) { executeStep(2); } });\n};\n";
    env.emulator.with_tenant(TENANT, |st| {
        let id = st.insert_app(
            "Payroll",
            vec![
                vec![
                    ("LOCAL".into(), "BasicAuthenticator".into()),
                    ("Partner Okta".into(), "OpenIDConnectAuthenticator".into()),
                ],
                vec![("LOCAL".into(), "totp".into())],
            ],
        );
        if let Some(app) = st.app_mut(&id) {
            app.sequence.script = Some(faking.to_owned());
        }
    });
    env.set_spec(
        "IdentityProvider",
        "partner-okta",
        json!({"jit": {"enabled": false}}),
    )
    .await;
    let c = env.conflict("IdentityProvider", "partner-okta", T).await;
    let msg = c["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("has a conditional-auth script that was not verified"),
        "{msg}"
    );
    let ready = env.not_ready("IdentityProvider", "partner-okta", T).await;
    assert_eq!(ready["reason"], "JITDisableBlocked");
    assert!(server_jit(&env, "Partner Okta").await, "Block keeps JIT on");
}
