use super::*;

fn auth(name: &str) -> FlowOption {
    FlowOption::Authenticator(name.to_string())
}
fn idp(name: &str) -> FlowOption {
    FlowOption::IdentityProvider(name.to_string())
}
fn flow(steps: Vec<Vec<FlowOption>>) -> Flow {
    Flow::new(steps)
}
fn idps(list: &[(&str, Jit)]) -> HashMap<String, Jit> {
    list.iter().map(|(n, j)| (n.to_string(), *j)).collect()
}
/// (idp, idp step, authenticator, authenticator step)
type Expected<'a> = Vec<(&'a str, usize, &'a str, usize)>;

fn found(analysis: &Analysis) -> Vec<(&str, usize, &str, usize)> {
    analysis
        .conflicts
        .iter()
        .map(|c| {
            (
                c.identity_provider.as_str(),
                c.identity_provider_step,
                c.authenticator.as_str(),
                c.authenticator_step,
            )
        })
        .collect()
}

#[test]
fn single_application_table() {
    let google_off = idps(&[("google", Jit::Disabled)]);
    let cases: Vec<(&str, Flow, HashMap<String, Jit>, Expected)> = vec![
        (
            "console case: basic|google then totp, JIT off",
            flow(vec![
                vec![auth("BasicAuthenticator"), idp("google")],
                vec![auth("totp")],
            ]),
            google_off.clone(),
            vec![("google", 1, "totp", 2)],
        ),
        (
            "same flow with JIT on is clear",
            flow(vec![
                vec![auth("BasicAuthenticator"), idp("google")],
                vec![auth("totp")],
            ]),
            idps(&[("google", Jit::Enabled)]),
            vec![],
        ),
        (
            "IdP in a later step (the console misses this)",
            flow(vec![
                vec![auth("BasicAuthenticator")],
                vec![idp("google")],
                vec![auth("FIDOAuthenticator")],
            ]),
            google_off.clone(),
            vec![("google", 2, "FIDOAuthenticator", 3)],
        ),
        (
            "MFA in the same step as the IdP is an alternative, not a conflict",
            flow(vec![vec![idp("google"), auth("totp")]]),
            google_off.clone(),
            vec![],
        ),
        (
            "MFA before the IdP is not a conflict",
            flow(vec![vec![auth("totp")], vec![idp("google")]]),
            google_off.clone(),
            vec![],
        ),
        (
            "a missing JIT block counts as disabled",
            flow(vec![
                vec![idp("google")],
                vec![auth("email-otp-authenticator")],
            ]),
            idps(&[("google", Jit::Missing)]),
            vec![("google", 1, "email-otp-authenticator", 2)],
        ),
        (
            "authenticators that need no local account never conflict",
            flow(vec![
                vec![idp("google")],
                vec![
                    auth("sms-otp-authenticator"),
                    auth("MagicLinkAuthenticator"),
                ],
            ]),
            google_off.clone(),
            vec![],
        ),
        (
            "every later step with a local-account authenticator is named",
            flow(vec![
                vec![idp("google")],
                vec![auth("totp"), auth("BasicAuthenticator")],
                vec![auth("backup-code-authenticator")],
            ]),
            google_off.clone(),
            vec![
                ("google", 1, "backup-code-authenticator", 3),
                ("google", 1, "totp", 2),
            ],
        ),
    ];
    for (name, f, known, expected) in cases {
        let got = check_flow("app", &f, &known, &LocalAccountAuthenticators::default());
        let mut expected = expected;
        expected.sort();
        assert_eq!(found(&got), expected, "case: {name}");
        assert!(got.unknown_references.is_empty(), "case: {name}");
    }
}

#[test]
fn several_idps_and_applications() {
    let known = idps(&[
        ("google", Jit::Disabled),
        ("github", Jit::Enabled),
        ("okta", Jit::Missing),
    ]);
    let payroll = flow(vec![vec![idp("google"), idp("github")], vec![auth("totp")]]);
    let wiki = flow(vec![vec![idp("github")], vec![auth("totp")]]);
    let crm = flow(vec![
        vec![idp("okta")],
        vec![idp("google")],
        vec![auth("DuoAuthenticator")],
    ]);
    let analysis = check_all(
        [("payroll", &payroll), ("wiki", &wiki), ("crm", &crm)],
        &known,
        &LocalAccountAuthenticators::default(),
    );
    let got: Vec<(&str, &str, usize)> = analysis
        .conflicts
        .iter()
        .map(|c| {
            (
                c.application.as_str(),
                c.identity_provider.as_str(),
                c.authenticator_step,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("crm", "google", 3),
            ("crm", "okta", 3),
            ("payroll", "google", 2)
        ]
    );
}

#[test]
fn unknown_reference_is_reported_not_a_conflict() {
    let f = flow(vec![vec![idp("azure")], vec![auth("totp")]]);
    let got = check_flow(
        "payroll",
        &f,
        &HashMap::new(),
        &LocalAccountAuthenticators::default(),
    );
    assert!(got.conflicts.is_empty());
    assert_eq!(
        got.unknown_references,
        vec![UnknownReference {
            application: "payroll".into(),
            identity_provider: "azure".into(),
            step: 1
        }]
    );
}

#[test]
fn authenticator_set_is_data() {
    let f = flow(vec![
        vec![idp("google")],
        vec![auth("sms-otp-authenticator")],
    ]);
    let known = idps(&[("google", Jit::Disabled)]);
    let custom = LocalAccountAuthenticators::from_names(["sms-otp-authenticator"]);
    assert_eq!(check_flow("a", &f, &known, &custom).conflicts.len(), 1);
    assert!(
        check_flow("a", &f, &known, &LocalAccountAuthenticators::default())
            .conflicts
            .is_empty()
    );
}

#[test]
fn conflict_message_names_both_sides() {
    let f = flow(vec![vec![idp("google")], vec![auth("totp")]]);
    let got = check_flow(
        "payroll",
        &f,
        &idps(&[("google", Jit::Disabled)]),
        &Default::default(),
    );
    let text = got.conflicts[0].to_string();
    for needle in [
        "payroll", "google", "step 1", "step 2", "totp", "JIT", "skipFor",
    ] {
        assert!(text.contains(needle), "{needle} missing in: {text}");
    }
    assert!(!text.contains("not verified"), "{text}");
}

fn skipped(steps: Vec<Vec<FlowOption>>, skips: Vec<Skip>) -> Flow {
    Flow {
        steps,
        skips,
        script: ScriptOrigin::Generated,
    }
}
fn skip_for(names: &[&str]) -> Skip {
    Skip::For(names.iter().map(|s| s.to_string()).collect())
}

#[test]
fn skipped_steps_table() {
    let off = idps(&[("okta", Jit::Disabled), ("google", Jit::Disabled)]);
    let seed = || {
        vec![
            vec![auth("BasicAuthenticator"), idp("okta")],
            vec![auth("totp")],
        ]
    };
    let cases: Vec<(&str, Flow, Expected)> = vec![
        (
            "the seed's remedy: totp skipped for okta users",
            skipped(seed(), vec![Skip::Never, skip_for(&["okta"])]),
            vec![],
        ),
        (
            "skipped for every federated user",
            skipped(seed(), vec![Skip::Never, Skip::FederatedUsers]),
            vec![],
        ),
        (
            "skipped for another IdP only: okta users still reach totp",
            skipped(seed(), vec![Skip::Never, skip_for(&["google"])]),
            vec![("okta", 1, "totp", 2)],
        ),
        (
            "a skip on an unrelated step does not help",
            skipped(
                vec![
                    vec![auth("BasicAuthenticator"), idp("okta")],
                    vec![auth("totp")],
                    vec![auth("FIDOAuthenticator")],
                ],
                vec![Skip::Never, Skip::Never, skip_for(&["okta"])],
            ),
            vec![("okta", 1, "totp", 2)],
        ),
        (
            "skipped because every path passes a skipping IdP in another step",
            skipped(
                vec![vec![idp("okta")], vec![idp("google")], vec![auth("totp")]],
                vec![Skip::Never, Skip::Never, skip_for(&["google"])],
            ),
            vec![],
        ),
        (
            "google users skip steps 2 and 3; okta users of step 2 still reach totp",
            skipped(
                vec![
                    vec![auth("BasicAuthenticator"), idp("google")],
                    vec![idp("okta"), auth("BasicAuthenticator")],
                    vec![auth("totp")],
                ],
                vec![Skip::Never, skip_for(&["google"]), skip_for(&["google"])],
            ),
            vec![("okta", 2, "totp", 3)],
        ),
        (
            "google skips the MFA step, okta in a later step does not",
            skipped(
                vec![
                    vec![auth("BasicAuthenticator"), idp("google")],
                    vec![idp("okta"), auth("BasicAuthenticator")],
                    vec![auth("totp")],
                ],
                vec![Skip::Never, Skip::Never, skip_for(&["google"])],
            ),
            vec![("okta", 2, "totp", 3)],
        ),
    ];
    for (name, f, want) in cases {
        let got = check_flow("app", &f, &off, &Default::default());
        assert_eq!(found(&got), want, "{name}");
        assert!(got.conflicts.iter().all(|c| !c.unverified_script), "{name}");
    }
}

#[test]
fn an_unverified_script_proves_nothing_and_says_so() {
    let f = Flow {
        steps: vec![vec![idp("okta")], vec![auth("totp")]],
        // Skips that did not come from a generated script are ignored.
        skips: vec![Skip::Never, Skip::FederatedUsers],
        script: ScriptOrigin::NotVerified,
    };
    let got = check_flow(
        "payroll",
        &f,
        &idps(&[("okta", Jit::Disabled)]),
        &Default::default(),
    );
    assert_eq!(found(&got), vec![("okta", 1, "totp", 2)]);
    assert!(got.conflicts[0].unverified_script);
    let text = got.conflicts[0].to_string();
    assert!(
        text.contains("has a conditional-auth script that was not verified"),
        "{text}"
    );
}

#[test]
fn flow_lists_distinct_idps_in_order() {
    let f = flow(vec![vec![idp("b"), auth("x")], vec![idp("a"), idp("b")]]);
    assert_eq!(f.identity_providers(), vec!["b", "a"]);
}

#[test]
fn index_tracks_edges_both_ways() {
    let mut index: DependencyIndex<String, String> = DependencyIndex::default();
    index.set_app(
        "payroll".into(),
        ["google".to_string(), "github".to_string()],
    );
    index.set_app("wiki".into(), ["google".to_string()]);
    let mut deps: Vec<_> = index.dependents(&"google".to_string()).collect();
    deps.sort();
    assert_eq!(deps, ["payroll", "wiki"]);
    assert_eq!(index.edges(), 3);

    // Payroll drops google: only its own edges move.
    index.set_app("payroll".into(), ["github".to_string()]);
    assert_eq!(
        index.dependents(&"google".to_string()).collect::<Vec<_>>(),
        ["wiki"]
    );
    assert_eq!(
        index
            .identity_providers(&"payroll".to_string())
            .collect::<Vec<_>>(),
        ["github"]
    );

    index.remove_app(&"wiki".to_string());
    assert_eq!(index.dependents(&"google".to_string()).count(), 0);
    assert_eq!(index.edges(), 1);
}

#[test]
fn jit_state_from_settings_table() {
    // (enabled, accountLookup set, skipForLookupFailure) → the state the rule sees.
    let cases = [
        (true, false, false, Jit::Enabled),
        (true, true, false, Jit::Enabled),
        (true, false, true, Jit::Enabled), // no lookup, nothing to fail: the skip means nothing
        (true, true, true, Jit::SkippedOnLookupFailure),
        (false, true, true, Jit::Disabled),
        (false, false, false, Jit::Disabled),
    ];
    for (enabled, lookup, skip, want) in cases {
        assert_eq!(
            Jit::from_settings(enabled, lookup, skip),
            want,
            "enabled {enabled}, lookup {lookup}, skip {skip}"
        );
    }
    assert!(!Jit::SkippedOnLookupFailure.provisions_local_accounts());
}

#[test]
fn weaker_view_wins_and_status_values_round_trip() {
    use Jit::*;
    let cases = [
        (Enabled, Enabled, Enabled),
        (Enabled, SkippedOnLookupFailure, SkippedOnLookupFailure),
        (SkippedOnLookupFailure, Enabled, SkippedOnLookupFailure),
        (SkippedOnLookupFailure, Disabled, Disabled),
        (Enabled, Disabled, Disabled),
        (Missing, Enabled, Missing),
        (Missing, Disabled, Missing),
        (Disabled, Missing, Missing),
    ];
    for (a, b, want) in cases {
        assert_eq!(a.weaker(b), want, "{a:?} vs {b:?}");
    }
    for j in [Enabled, SkippedOnLookupFailure, Disabled] {
        assert_eq!(Jit::from_status_value(j.status_value()), Some(j));
    }
    assert_eq!(Jit::from_status_value("Unknown"), None);
}

#[test]
fn lookup_skip_is_a_conflict_like_jit_off_table() {
    let skip = idps(&[("google", Jit::SkippedOnLookupFailure)]);
    let cases: Vec<(&str, Flow, Expected)> = vec![
        (
            "google (lookup skip) then totp",
            flow(vec![
                vec![auth("BasicAuthenticator"), idp("google")],
                vec![auth("totp")],
            ]),
            vec![("google", 1, "totp", 2)],
        ),
        (
            "MFA as an alternative in the same step: no conflict",
            flow(vec![vec![idp("google"), auth("totp")]]),
            vec![],
        ),
        (
            "no local-account step after it: no conflict",
            flow(vec![
                vec![idp("google")],
                vec![auth("sms-otp-authenticator")],
            ]),
            vec![],
        ),
        (
            "the MFA step skipped for google's users: no conflict",
            skipped(
                vec![vec![idp("google")], vec![auth("totp")]],
                vec![Skip::Never, skip_for(&["google"])],
            ),
            vec![],
        ),
        (
            "skipped for federated users: no conflict",
            skipped(
                vec![vec![idp("google")], vec![auth("FIDOAuthenticator")]],
                vec![Skip::Never, Skip::FederatedUsers],
            ),
            vec![],
        ),
    ];
    for (name, f, expected) in cases {
        let got = check_flow("app", &f, &skip, &LocalAccountAuthenticators::default());
        let mut expected = expected;
        expected.sort();
        assert_eq!(found(&got), expected, "case: {name}");
        assert!(
            got.conflicts.iter().all(|c| c.lookup_skip),
            "case: {name}: {:?}",
            got.conflicts
        );
    }
}

#[test]
fn lookup_skip_message_says_why_and_names_its_remedy() {
    let f = flow(vec![vec![idp("google")], vec![auth("totp")]]);
    let got = check_flow(
        "payroll",
        &f,
        &idps(&[("google", Jit::SkippedOnLookupFailure)]),
        &Default::default(),
    );
    let text = got.conflicts[0].to_string();
    for needle in [
        "payroll",
        "google",
        "skipped on lookup failure",
        "no local account matches",
        "Turn skipForLookupFailure off",
        "skipFor",
        "step 2",
    ] {
        assert!(text.contains(needle), "{needle} missing in: {text}");
    }
    assert!(!text.contains("disabled on it"), "{text}");
    // JIT off keeps its own message.
    let off = check_flow(
        "payroll",
        &f,
        &idps(&[("google", Jit::Disabled)]),
        &Default::default(),
    );
    assert!(!off.conflicts[0].lookup_skip);
    assert!(!off.conflicts[0]
        .to_string()
        .contains("skipForLookupFailure"));
}
