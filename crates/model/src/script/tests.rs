use std::collections::BTreeSet;

use proptest::prelude::*;
use rquickjs::CatchResultExt;

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
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    assert!(
        readme.contains(&format!("```js\n{script}```")),
        "README.md should show the generated script:\n```js\n{script}```"
    );
}

/// The names the script defines at top level: its global properties after evaluating it in a fresh
/// QuickJS context, minus those of an empty context. `Err` when it does not evaluate.
fn top_level_definitions(script: &str) -> Result<BTreeSet<String>, String> {
    let rt = rquickjs::Runtime::new().map_err(|e| e.to_string())?;
    let ctx = rquickjs::Context::full(&rt).map_err(|e| e.to_string())?;
    ctx.with(|ctx| {
        let names = |ctx: &rquickjs::Ctx<'_>| -> Result<BTreeSet<String>, String> {
            ctx.eval::<Vec<String>, _>("Object.getOwnPropertyNames(globalThis)")
                .catch(ctx)
                .map(|v| v.into_iter().collect())
                .map_err(|e| e.to_string())
        };
        let builtin = names(&ctx)?;
        // executeStep is the server's; a script that defines it is not the generated one.
        ctx.eval::<(), _>(script)
            .catch(&ctx)
            .map_err(|e| e.to_string())?;
        Ok(names(&ctx)?.difference(&builtin).cloned().collect())
    })
}

/// What the generator defines for a flow of `n` steps.
fn generated_definitions(n: usize) -> BTreeSet<String> {
    let mut want: BTreeSet<String> = (1..=n).map(|k| format!("step{k}")).collect();
    want.insert("onLoginRequest".to_owned());
    want.insert("skipFor".to_owned());
    want
}

/// The steps a login runs through `script`: `choices[i]` is picked at step `i + 1`, each federated
/// option with JIT on (so nothing fails for want of an account and only the skips decide).
fn steps_run(script: &str, choices: &[(&str, &str)]) -> Vec<u32> {
    use crate::proof::{run_login, Choice};
    let choices: Vec<Choice> = choices
        .iter()
        .map(|(idp, authenticator)| Choice {
            idp: (*idp).to_owned(),
            authenticator: (*authenticator).to_owned(),
            federated: *idp != "LOCAL",
            needs_local: false,
            jit_on: true,
        })
        .collect();
    let o = run_login(Some(script), &choices).expect("the engine runs");
    assert!(o.success, "{o:?}\n{script}");
    o.steps.iter().map(|r| r.step).collect()
}

/// Issue 24: a newline (or U+2028) in an IdP's displayName was written into a `//` comment, so the
/// rest of the name became code, here an onLoginRequest that skips TOTP for everyone.
#[test]
fn a_line_break_in_a_name_cannot_add_code() {
    for brk in ["\n", "\r", "\u{2028}", "\u{2029}"] {
        let evil = format!(
            "Partner{brk}var onLoginRequest = function (context) {{ executeStep(1); }};{brk}//"
        );
        let steps = vec![
            vec![auth("BasicAuthenticator"), idp(&evil)],
            vec![auth("totp")],
        ];
        let flow = Flow {
            steps: steps.clone(),
            skips: vec![Skip::Never, skip_for(&[evil.as_str()])],
            script: ScriptOrigin::Generated,
        };
        let s = generate(&flow);
        assert_eq!(
            steps_run(&s, &[("LOCAL", "BasicAuthenticator"), ("LOCAL", "totp")]),
            vec![1, 2],
            "{brk:?}: a local user still gets TOTP:\n{s}"
        );
        assert_eq!(
            steps_run(
                &s,
                &[
                    (evil.as_str(), "OpenIDConnectAuthenticator"),
                    ("LOCAL", "totp")
                ]
            ),
            vec![1],
            "{brk:?}: the partner's users skip it:\n{s}"
        );
        assert_eq!(
            top_level_definitions(&s),
            Ok(generated_definitions(2)),
            "{brk:?}:\n{s}"
        );
        assert!(
            !s.contains(evil.as_str()) && !s.contains('\u{2028}') && !s.contains('\u{2029}'),
            "{brk:?}: the name appears only escaped:\n{s}"
        );
        assert_eq!(recognize(&s, &steps), Some(flow.skips.clone()));
    }
}

#[test]
fn names_appear_in_no_comment() {
    let flow = Flow {
        steps: seed_steps(),
        skips: vec![Skip::Never, skip_for(&["Partner Okta"])],
        script: ScriptOrigin::Generated,
    };
    let s = generate(&flow);
    for line in s.lines().filter(|l| l.trim_start().starts_with("//")) {
        assert!(!line.contains("Partner Okta"), "{line}");
    }
    assert!(!s.contains("/*"), "no block comments: {s}");
}

#[test]
fn escapes_keep_the_literal_valid_json_and_javascript() {
    let name = "a\\b\"c'd\u{7}e\u{7f}f\u{85}g\u{2028}h\u{2029}i\u{202e}j\u{feff}k</script>l*/m";
    let lit = js_string(name);
    assert!(lit.is_ascii(), "{lit}");
    assert!(!lit.contains("</"), "{lit}");
    assert_eq!(
        serde_json::from_str::<String>(&lit).ok().as_deref(),
        Some(name)
    );
    let rt = rquickjs::Runtime::new().expect("runtime");
    let ctx = rquickjs::Context::full(&rt).expect("context");
    let back: String = ctx.with(|ctx| ctx.eval(lit.as_str()).expect("evaluates"));
    assert_eq!(back, name);
    assert_eq!(
        js_string("Müller SSO"),
        "\"Müller SSO\"",
        "readable names stay readable"
    );
}

/// A fragment of a hostile name.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<char>().prop_map(String::from),
        "[A-Za-z ]{0,6}",
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\u{2028}".to_owned()),
        Just("\u{2029}".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("\\".to_owned()),
        Just("*/".to_owned()),
        Just("/*".to_owned()),
        Just("//".to_owned()),
        Just("</script>".to_owned()),
        Just("${".to_owned()),
        Just("var onLoginRequest = function (c) {};".to_owned()),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..6).prop_map(|f| f.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For any names, the script defines exactly the generated functions, is recognized with its
    /// skips, and each user runs the steps the skips give them: step 2 is skipped for `a`'s users,
    /// step 3 for every federated user.
    #[test]
    fn any_names_give_exactly_the_generated_script(a in name(), b in name()) {
        prop_assume!(a != b && a != "LOCAL" && b != "LOCAL");
        let steps = vec![
            vec![auth("BasicAuthenticator"), idp(&a), idp(&b)],
            vec![auth("totp")],
            vec![auth("email-otp-authenticator")],
        ];
        let flow = Flow {
            steps: steps.clone(),
            skips: vec![Skip::Never, skip_for(&[a.as_str()]), Skip::FederatedUsers],
            script: ScriptOrigin::Generated,
        };
        let s = generate(&flow);
        prop_assert_eq!(top_level_definitions(&s), Ok(generated_definitions(3)), "{}", s);
        prop_assert_eq!(recognize(&s, &steps), Some(flow.skips.clone()));
        let oidc = "OpenIDConnectAuthenticator";
        prop_assert_eq!(steps_run(&s, &[(a.as_str(), oidc), ("LOCAL", "totp"), ("LOCAL", "x")]), vec![1]);
        prop_assert_eq!(steps_run(&s, &[(b.as_str(), oidc), ("LOCAL", "totp"), ("LOCAL", "x")]), vec![1, 2]);
        prop_assert_eq!(
            steps_run(&s, &[("LOCAL", "BasicAuthenticator"), ("LOCAL", "totp"), ("LOCAL", "x")]),
            vec![1, 2, 3]
        );
    }
}
