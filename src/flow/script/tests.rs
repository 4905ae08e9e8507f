use super::*;

fn idp(n: &str) -> FlowOption {
    FlowOption::IdentityProvider(n.to_owned())
}
fn auth(n: &str) -> FlowOption {
    FlowOption::Authenticator(n.to_owned())
}
fn seed_steps() -> Vec<Vec<FlowOption>> {
    vec![
        vec![auth("BasicAuthenticator"), idp("Partner Okta")],
        vec![auth("totp")],
    ]
}
fn skip_for(names: &[&str]) -> Skip {
    Skip::For(names.iter().map(|s| s.to_string()).collect())
}

#[test]
fn the_seed_script_tests_step_one_and_runs_step_two_otherwise() {
    let flow = Flow {
        steps: seed_steps(),
        skips: vec![Skip::Never, skip_for(&["Partner Okta"])],
        script: ScriptOrigin::Generated,
    };
    let s = generate(&flow);
    assert!(s.starts_with(HEADER), "{s}");
    assert!(
        s.contains("var onLoginRequest = function (context) {"),
        "{s}"
    );
    assert!(s.contains("executeStep(1, {"), "{s}");
    assert!(s.contains("onSuccess: function (context) {"), "{s}");
    assert!(
        s.contains(
            "if ((context.steps[1] && [\"Partner Okta\"].indexOf(context.steps[1].idp) >= 0)) {"
        ),
        "{s}"
    );
    assert!(s.contains("    executeStep(2);"), "{s}");
    assert!(
        !s.contains("for ("),
        "Asgardeo refuses loops in scripts: {s}"
    );
    assert!(
        !s.contains("while"),
        "Asgardeo refuses loops in scripts: {s}"
    );
}

#[test]
fn generated_scripts_are_recognized_with_their_skips() {
    let steps = vec![
        vec![auth("BasicAuthenticator"), idp("Okta"), idp("Google")],
        vec![auth("totp")],
        vec![idp("Okta"), auth("email-otp-authenticator")],
        vec![auth("FIDOAuthenticator")],
    ];
    let cases = vec![
        vec![Skip::Never, skip_for(&["Okta"])],
        vec![
            Skip::Never,
            Skip::FederatedUsers,
            Skip::Never,
            skip_for(&["Google", "Okta"]),
        ],
        vec![Skip::Never, Skip::Never, Skip::Never, Skip::FederatedUsers],
        vec![],
    ];
    for skips in cases {
        let flow = Flow {
            steps: steps.clone(),
            skips: skips.clone(),
            script: ScriptOrigin::Generated,
        };
        let script = generate(&flow);
        let mut want = skips.clone();
        while want.last() == Some(&Skip::Never) {
            want.pop();
        }
        assert_eq!(recognize(&script, &steps), Some(want), "{script}");
        let crlf = script.replace('\n', "\r\n");
        assert!(
            recognize(&crlf, &steps).is_some(),
            "line endings do not matter"
        );
    }
}

#[test]
fn other_scripts_are_not_verified() {
    let steps = seed_steps();
    let ours = generate(&Flow {
        steps: steps.clone(),
        skips: vec![Skip::Never, skip_for(&["Partner Okta"])],
        script: ScriptOrigin::Generated,
    });
    let hand_written = "var onLoginRequest = function (context) {\n    executeStep(1, {\n        onSuccess: function (context) {\n            if (context.steps[1].idp === 'LOCAL') { executeStep(2); }\n        }\n    });\n};\n";
    let edited = ours.replace("executeStep(2);", "executeStep(2); sendError('x', {});");
    let other_skips = ours.replace("[\"Partner Okta\"]}", "[\"Someone\"]}");
    let cases: Vec<(&str, String, Vec<Vec<FlowOption>>)> = vec![
        ("hand-written", hand_written.to_owned(), steps.clone()),
        ("edited body", edited, steps.clone()),
        ("header says other skips", other_skips, steps.clone()),
        (
            "generated for other steps",
            ours.clone(),
            vec![
                vec![auth("BasicAuthenticator"), idp("Partner Okta")],
                vec![auth("totp")],
                vec![auth("FIDOAuthenticator")],
            ],
        ),
        ("header only", format!("{HEADER}\n"), steps.clone()),
        (
            "skip on a step that does not exist",
            ours.replace("{\"2\":", "{\"7\":"),
            steps.clone(),
        ),
    ];
    for (name, script, steps) in cases {
        assert_eq!(recognize(&script, &steps), None, "{name}");
        let flow = flow_with_script(steps, Some(&script));
        assert_eq!(flow.script, ScriptOrigin::NotVerified, "{name}");
        assert!(
            !flow.has_skips(),
            "{name}: skips of an unverified script are not used"
        );
    }
    assert_eq!(
        flow_with_script(steps.clone(), Some(&ours)).script,
        ScriptOrigin::Generated
    );
    assert_eq!(
        flow_with_script(steps.clone(), None).script,
        ScriptOrigin::None
    );
    assert_eq!(
        flow_with_script(steps, Some("  \n")).script,
        ScriptOrigin::None,
        "a blank script is no script (the server ignores it)"
    );
}

#[test]
fn names_are_quoted_as_javascript_strings() {
    let steps = vec![vec![idp("Evil\"); sendError(\"")], vec![auth("totp")]];
    let flow = Flow {
        steps: steps.clone(),
        skips: vec![Skip::Never, Skip::FederatedUsers],
        script: ScriptOrigin::Generated,
    };
    let s = generate(&flow);
    assert!(s.contains(r#"["Evil\"); sendError(\""]"#), "{s}");
    assert_eq!(
        recognize(&s, &steps),
        Some(vec![Skip::Never, Skip::FederatedUsers])
    );
}

/// The README shows the script generated for examples/jit-off-skip-mfa: it must be the real one.
#[test]
fn the_readme_shows_the_generated_script() {
    let flow = Flow {
        steps: seed_steps(),
        skips: vec![Skip::Never, skip_for(&["Partner Okta"])],
        script: ScriptOrigin::Generated,
    };
    let script = generate(&flow);
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    assert!(
        readme.contains(&format!("```js\n{script}```")),
        "README.md should show the generated script:\n```js\n{script}```"
    );
}
