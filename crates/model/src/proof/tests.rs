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
    let needs = crate::LocalAccountAuthenticators::default();
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

/// Issue 24: a script that replaces the simulation's own functions (or writes its record) must not
/// be proved. The seed flow through Okta with JIT off fails at TOTP whatever such a script claims.
#[test]
fn a_script_cannot_replace_the_simulation_to_fake_a_proof() {
    let needs = crate::LocalAccountAuthenticators::default();
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
    // Every step on the way, as the honest script would run them.
    let both_steps = "var onLoginRequest = function (context) {\n    executeStep(1, { onSuccess: function (c) { executeStep(2); } });\n};\n";
    // Records a success in the old prelude's record (where there is one) and runs on.
    let fake_step = "function (n, o) { if (typeof __out !== 'undefined') { __out.ran.push({ step: n, idp: 'LOCAL', authenticator: 'BasicAuthenticator', success: true }); } if (o && o.onSuccess) { o.onSuccess({ steps: {} }); } }";
    let cases = [
        (
            "var redefinition",
            format!("var executeStep = {fake_step};\n{both_steps}"),
        ),
        (
            "function declaration",
            format!("function executeStep(n, o) {{ if (o && o.onSuccess) {{ o.onSuccess({{}}); }} }}\n{both_steps}"),
        ),
        (
            "assignment to the global object",
            format!("globalThis.executeStep = {fake_step};\n{both_steps}"),
        ),
        (
            "defineProperty",
            format!("Object.defineProperty(globalThis, 'executeStep', {{ value: {fake_step} }});\n{both_steps}"),
        ),
        (
            "redefinition inside onLoginRequest",
            format!("var onLoginRequest = function (context) {{\n    executeStep = {fake_step};\n    executeStep(1, {{ onSuccess: function (c) {{ executeStep(2); }} }});\n}};\n"),
        ),
        (
            "the old prelude's record",
            format!("{both_steps}\nvar __out = {{ ran: [{{ step: 1, idp: 'LOCAL', authenticator: 'BasicAuthenticator', success: true }}], failure: null, noAccountStep: false }};\nJSON.stringify = function () {{ return '{{\"ran\":[{{\"step\":1,\"idp\":\"LOCAL\",\"authenticator\":\"BasicAuthenticator\",\"success\":true}}],\"failure\":null,\"noAccountStep\":false}}'; }};\nObject.prototype.toJSON = function () {{ return {{ ran: [], failure: null, noAccountStep: false }}; }};"),
        ),
        (
            "steps run at load time",
            "executeStep(1);\nvar onLoginRequest = function (context) {};\n".to_owned(),
        ),
    ];
    for (name, script) in cases {
        assert!(
            !proves_no_local_account_failure(&script, &seed, &needs),
            "{name}: not proved\n{script}"
        );
    }
    // The same flow with the step really skipped for Okta is proved: the check is not "never".
    assert!(proves_no_local_account_failure(
        SKIP_FOR_OKTA,
        &seed,
        &needs
    ));
    // The Okta user's login fails (the engine refuses the redefinition, or TOTP fails): never a
    // success for want of the real executeStep.
    let o = run_login(
        Some(&format!("var executeStep = {fake_step};\n{both_steps}")),
        &[fed("Partner Okta", false), local("totp", true)],
    )
    .expect("runs");
    assert!(!o.success, "{o:?}");
}

#[test]
fn answers_are_kept_per_question_and_bounded() {
    let answers = Answers::default();
    let q = |i: usize| Question::new(&format!("// {i}"), vec![], &Default::default());
    assert_eq!(answers.get(&q(0)), None);
    // A question with no way through it proves nothing, and the answer is kept.
    assert!(!answers.get_or_prove(&q(0)));
    assert_eq!(answers.get(&q(0)), Some(false));
    // A later answer replaces a provisional one.
    answers.record(q(0), true);
    assert!(answers.get_or_prove(&q(0)));
    // Past the bound the oldest half goes; the newest stay.
    for i in 1..=MAX_ANSWERS {
        answers.record(q(i), true);
    }
    assert_eq!(answers.get(&q(0)), None, "the oldest answer was forgotten");
    assert_eq!(answers.get(&q(MAX_ANSWERS)), Some(true));
}
