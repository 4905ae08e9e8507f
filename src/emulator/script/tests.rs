use super::*;

fn local(a: &str, needs_local: bool) -> Choice {
    Choice {
        idp: "LOCAL".into(),
        authenticator: a.into(),
        federated: false,
        needs_local,
        jit_on: false,
    }
}
fn fed(idp: &str, jit_on: bool) -> Choice {
    Choice {
        idp: idp.into(),
        authenticator: "OpenIDConnectAuthenticator".into(),
        federated: true,
        needs_local: false,
        jit_on,
    }
}
fn ran(o: &Outcome) -> Vec<(u32, String, bool)> {
    o.steps
        .iter()
        .map(|r| (r.step, r.idp.clone(), r.success))
        .collect()
}

const SKIP_FOR_OKTA: &str = r#"
var onLoginRequest = function (context) {
    executeStep(1, {
        onSuccess: function (context) {
            if (context.steps[1].idp !== 'Partner Okta') {
                executeStep(2);
            }
        }
    });
};
"#;

#[test]
fn without_a_script_every_step_runs_and_jit_off_breaks_totp() {
    let o = run_login(None, &[fed("Partner Okta", false), local("totp", true)]).expect("runs");
    assert!(!o.success);
    assert!(o.failed_for_want_of_local_account);
    assert_eq!(
        ran(&o),
        vec![(1, "Partner Okta".into(), true), (2, "LOCAL".into(), false)]
    );
    let reason = o.failure.expect("a reason");
    assert!(
        reason.contains("Partner Okta") && reason.contains("totp"),
        "{reason}"
    );

    let with_jit =
        run_login(None, &[fed("Partner Okta", true), local("totp", true)]).expect("runs");
    assert!(with_jit.success, "{with_jit:?}");
}

#[test]
fn a_script_that_skips_the_step_lets_partner_users_in_and_keeps_totp_for_local_users() {
    let partner = run_login(
        Some(SKIP_FOR_OKTA),
        &[fed("Partner Okta", false), local("totp", true)],
    )
    .expect("runs");
    assert!(partner.success, "{partner:?}");
    assert_eq!(ran(&partner), vec![(1, "Partner Okta".into(), true)]);

    let staff = run_login(
        Some(SKIP_FOR_OKTA),
        &[local("BasicAuthenticator", false), local("totp", true)],
    )
    .expect("runs");
    assert!(staff.success, "{staff:?}");
    assert_eq!(
        ran(&staff),
        vec![(1, "LOCAL".into(), true), (2, "LOCAL".into(), true)]
    );
}

#[test]
fn the_three_argument_form_and_on_fail_are_modelled() {
    let script = r#"
        var failed = false;
        var onLoginRequest = function (context) {
            executeStep(1, {}, { onSuccess: function (context) {
                executeStep(2, {}, { onFail: function (context) { failed = true; } });
            } });
        };
    "#;
    let o = run_login(Some(script), &[fed("G", false), local("totp", true)]).expect("runs");
    assert!(!o.success);
    assert_eq!(o.steps.len(), 2);
}

#[test]
fn broken_scripts_fail_the_login_with_the_error() {
    let cases = [
        ("syntax error", "var onLoginRequest = function (context) {"),
        ("no entry point", "var x = 1;"),
        (
            "throws",
            "var onLoginRequest = function (c) { throw new Error('boom'); };",
        ),
        (
            "unknown step",
            "var onLoginRequest = function (c) { executeStep(9); };",
        ),
        ("runs nothing", "var onLoginRequest = function (c) {};"),
    ];
    for (name, script) in cases {
        let o = run_login(Some(script), &[local("BasicAuthenticator", false)]).expect("runs");
        assert!(!o.success, "{name}");
        assert!(o.failure.is_some(), "{name}");
        assert!(!o.failed_for_want_of_local_account, "{name}");
    }
}

#[test]
fn an_endless_loop_is_stopped() {
    let started = std::time::Instant::now();
    let o = run_login(
        Some("var onLoginRequest = function (c) { while (true) {} };"),
        &[local("BasicAuthenticator", false)],
    )
    .expect("runs");
    assert!(!o.success);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn the_subject_is_the_first_step_that_ran() {
    let script = r#"
        var onLoginRequest = function (context) {
            executeStep(1, { onSuccess: function (context) {
                if (context.currentKnownSubject.isFederated) { executeStep(2); }
            } });
        };
    "#;
    let fed_user = run_login(Some(script), &[fed("G", true), local("totp", true)]).expect("runs");
    assert_eq!(fed_user.steps.len(), 2);
    let local_user = run_login(
        Some(script),
        &[local("BasicAuthenticator", false), local("totp", true)],
    )
    .expect("runs");
    assert_eq!(local_user.steps.len(), 1);
}

#[test]
fn proofs_run_every_login_with_jit_off() {
    let needs = crate::flow::LocalAccountAuthenticators::default();
    let seed = vec![
        vec![
            ("LOCAL".to_owned(), "BasicAuthenticator".to_owned()),
            (
                "Partner Okta".to_owned(),
                "OpenIDConnectAuthenticator".to_owned(),
            ),
        ],
        vec![("LOCAL".to_owned(), "totp".to_owned())],
    ];
    assert!(proves_no_local_account_failure(
        SKIP_FOR_OKTA,
        &seed,
        &needs
    ));
    assert!(!proves_no_local_account_failure(
        "var onLoginRequest = function (c) { executeStep(1); executeStep(2); };",
        &seed,
        &needs
    ));
    // Too many ways through the flow: not proved, whatever the script.
    let wide: Vec<Vec<(String, String)>> = (0..4)
        .map(|_| {
            (0..3)
                .map(|i| ("LOCAL".to_owned(), format!("a{i}")))
                .collect()
        })
        .collect();
    assert!(3usize.pow(4) > MAX_PROOF_LOGINS);
    assert!(!proves_no_local_account_failure(
        "var onLoginRequest = function (c) { executeStep(1); };",
        &wide,
        &needs
    ));
}
