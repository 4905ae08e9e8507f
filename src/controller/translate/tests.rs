use super::*;
use crate::api::application::{LoginFlow as ApiFlow, LoginOption, LoginStep, SkipFor};
use crate::api::identity_provider::{AppleProvider, JitSpec, OAuthProvider};
use crate::api::{BackendRef, DeletionPolicy, LocalObjectRef, SecretKeyRef};
use crate::backend::{FlowKind, LoginFlow};

fn google_spec(jit: Option<JitSpec>) -> IdentityProviderSpec {
    IdentityProviderSpec {
        backend_ref: BackendRef { name: "b".into() },
        display_name: "Google".into(),
        description: None,
        google: Some(OAuthProvider {
            client_id: "cid".into(),
            client_secret_ref: SecretKeyRef {
                name: "s".into(),
                key: "k".into(),
            },
            scopes: vec![],
            callback_url: None,
        }),
        github: None,
        facebook: None,
        apple: None,
        oidc: None,
        saml: None,
        jit,
        claims: None,
        roles: None,
        groups: None,
        conflict_policy: Default::default(),
        deletion_policy: DeletionPolicy::Delete,
        adopt: false,
    }
}

fn server_jit() -> Jit {
    Jit {
        enabled: true,
        scheme: backend::JitScheme::ProvisionSilently,
        userstore: "PRIMARY".into(),
        associate_local_user: true,
        attribute_sync_method: backend::AttributeSyncMethod::OverrideAll,
        skip_jit_for_lookup_failure: Some(true),
        idp_group_sync_method: None,
        account_lookup: vec![],
    }
}

#[test]
fn jit_change_holds_only_declared_fields() {
    assert_eq!(
        jit_change(&google_spec(None)),
        None,
        "no block: JIT is not managed"
    );
    let spec = google_spec(Some(JitSpec {
        enabled: false,
        scheme: None,
        userstore: Some("DEFAULT".into()),
        ..Default::default()
    }));
    let change = jit_change(&spec).expect("declared");
    assert_eq!(change.enabled, Some(false));
    assert_eq!(change.userstore.as_deref(), Some("DEFAULT"));
    assert_eq!(change.scheme, None);
    assert_eq!(change.associate_local_user, None);
}

#[test]
fn jit_diff_is_empty_when_the_server_matches() {
    let same = JitChange {
        enabled: Some(true),
        userstore: Some("PRIMARY".into()),
        ..Default::default()
    };
    assert_eq!(jit_diff(&same, &server_jit()), None);
    let off = JitChange {
        enabled: Some(false),
        userstore: Some("PRIMARY".into()),
        ..Default::default()
    };
    assert_eq!(
        jit_diff(&off, &server_jit()),
        Some(JitChange {
            enabled: Some(false),
            ..Default::default()
        })
    );
}

#[test]
fn google_authenticator_properties_and_secret_not_compared() {
    let secret = Secret::new("s3cret");
    let desired = desired_authenticator(&google_spec(None), Some(&secret)).expect("google");
    assert_eq!(desired.authenticator_id, "R29vZ2xlT0lEQ0F1dGhlbnRpY2F0b3I");
    let keys: Vec<&str> = desired.properties.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["ClientId", "ClientSecret", "AdditionalQueryParameters"]
    );
    // The server masks the secret: no diff from that alone.
    let mut server = desired.clone();
    for p in &mut server.properties {
        if p.key == "ClientSecret" {
            p.value = Some("******".into());
        }
    }
    let confidential = Confidential::fallback(&desired.authenticator_id);
    assert!(!authenticator_differs(&desired, &server, &confidential));
    server.properties[0].value = Some("other".into());
    assert!(authenticator_differs(&desired, &server, &confidential));
}

fn apple_spec(change: impl FnOnce(&mut AppleProvider)) -> IdentityProviderSpec {
    let mut apple = AppleProvider {
        client_id: "com.example.web".into(),
        team_id: "TEAM123456".into(),
        key_id: "KEY1234567".into(),
        private_key_secret_ref: SecretKeyRef {
            name: "s".into(),
            key: "private-key".into(),
        },
        secret_validity_period_seconds: None,
        scopes: vec![],
        additional_query_parameters: None,
        callback_url: None,
    };
    change(&mut apple);
    IdentityProviderSpec {
        google: None,
        apple: Some(apple),
        ..google_spec(None)
    }
}

/// (case, spec change, the properties sent as key=value; PrivateKey is the Secret's value).
type AppleCase = (
    &'static str,
    fn(&mut AppleProvider),
    &'static [&'static str],
);

#[test]
fn apple_sends_the_key_and_never_a_client_secret() {
    let cases: &[AppleCase] = &[
        (
            "minimal: the server's default scopes, no validity period",
            |_| {},
            &[
                "ClientId=com.example.web",
                "TeamId=TEAM123456",
                "KeyId=KEY1234567",
                "PrivateKey=pem",
                "Scopes=name email",
            ],
        ),
        (
            "every field",
            |a| {
                a.secret_validity_period_seconds = Some(86400);
                a.scopes = vec!["email".into()];
                a.additional_query_parameters = Some("prompt=consent".into());
                a.callback_url = Some("https://is.example/commonauth".into());
            },
            &[
                "ClientId=com.example.web",
                "SecretValidityPeriod=86400",
                "TeamId=TEAM123456",
                "KeyId=KEY1234567",
                "PrivateKey=pem",
                "callbackUrl=https://is.example/commonauth",
                "Scopes=email",
                "AdditionalQueryParameters=prompt=consent",
            ],
        ),
    ];
    for (case, change, want) in cases {
        let spec = apple_spec(change);
        assert_eq!(spec.provider_type(), Some(ProviderType::Apple), "{case}");
        assert_eq!(
            spec.client_secret_ref().map(|r| r.key.as_str()),
            Some("private-key"),
            "{case}"
        );
        let desired = desired_authenticator(&spec, Some(&Secret::new("pem"))).expect("apple");
        assert_eq!(desired.name.as_deref(), Some("AppleOIDCAuthenticator"));
        let got: Vec<String> = desired
            .properties
            .iter()
            .map(|p| format!("{}={}", p.key, p.value.as_deref().unwrap_or_default()))
            .collect();
        assert_eq!(got, *want, "{case}");
        // What the server keeps for itself after a login (a signed client secret, its expiry,
        // the regeneration flag reset) is no difference; the private key is never compared.
        let mut server = desired.clone();
        for p in &mut server.properties {
            if p.key == "PrivateKey" {
                p.value = Some("******".into());
            }
        }
        for (k, v) in [
            ("ClientSecret", "eyJraWQ.signed"),
            ("SecretExpiryEpochTime", "1796000000"),
            ("RegenerateClientSecret", "false"),
        ] {
            server.properties.push(Property::new(k, v));
        }
        let confidential = Confidential::fallback(&desired.authenticator_id);
        assert!(
            !authenticator_differs(&desired, &server, &confidential),
            "{case}"
        );
        // A console edit of a declared field is.
        server.properties[2].value = Some("OTHER".into());
        assert!(
            authenticator_differs(&desired, &server, &confidential),
            "{case}"
        );
    }
}

#[test]
fn facebook_user_info_fields_are_sent_comma_separated() {
    use crate::api::identity_provider::FacebookProvider;
    let spec = IdentityProviderSpec {
        google: None,
        facebook: Some(FacebookProvider {
            client_id: "fb".into(),
            client_secret_ref: SecretKeyRef {
                name: "s".into(),
                key: "k".into(),
            },
            scopes: vec!["email".into(), "public_profile".into()],
            user_info_fields: vec!["id".into(), "name".into(), "email".into()],
            callback_url: None,
        }),
        ..google_spec(None)
    };
    let desired = desired_authenticator(&spec, Some(&Secret::new("x"))).expect("facebook");
    let got: Vec<(&str, &str)> = desired
        .properties
        .iter()
        .filter(|p| p.key != "ClientSecret")
        .map(|p| (p.key.as_str(), p.value.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(
        got,
        [
            ("ClientId", "fb"),
            ("Scope", "email,public_profile"),
            ("UserInfoFields", "id,name,email")
        ]
    );
}

fn app_spec(steps: Vec<Vec<LoginOption>>) -> ApplicationSpec {
    ApplicationSpec {
        backend_ref: BackendRef { name: "b".into() },
        display_name: "Payroll".into(),
        description: None,
        oidc: None,
        credentials_secret: None,
        login_flow: Some(ApiFlow {
            steps: steps
                .into_iter()
                .map(|options| LoginStep {
                    options,
                    skip_for: None,
                })
                .collect(),
        }),
        deletion_policy: DeletionPolicy::Delete,
        adopt: false,
    }
}

fn a(name: &str) -> LoginOption {
    LoginOption {
        authenticator: Some(name.into()),
        identity_provider_ref: None,
    }
}
fn r(name: &str) -> LoginOption {
    LoginOption {
        authenticator: None,
        identity_provider_ref: Some(LocalObjectRef { name: name.into() }),
    }
}

#[test]
fn flow_resolves_idp_refs_to_server_names() {
    let spec = app_spec(vec![
        vec![a("BasicAuthenticator"), r("google")],
        vec![a("totp")],
    ]);
    let flow = desired_flow(&spec, |n| {
        (n == "google").then(|| ("Google".into(), "GoogleOIDCAuthenticator".into()))
    })
    .expect("resolves")
    .expect("has a flow");
    assert_eq!(
        flow.steps[0].options[1],
        FlowOption::federated("Google", "GoogleOIDCAuthenticator")
    );
    assert_eq!(flow.steps[1].options[0], FlowOption::local("totp"));
    let missing = desired_flow(&spec, |_| None);
    assert_eq!(missing, Err("google".to_string()));
}

#[test]
fn flow_comparison_ignores_option_order_within_a_step() {
    let desired = FlowUpdate {
        steps: vec![
            FlowStep {
                options: vec![
                    FlowOption::local("BasicAuthenticator"),
                    FlowOption::federated("Google", "GoogleOIDCAuthenticator"),
                ],
            },
            FlowStep {
                options: vec![FlowOption::local("totp")],
            },
        ],
        ..Default::default()
    };
    let mut server = LoginFlow {
        kind: FlowKind::UserDefined,
        steps: vec![
            FlowStep {
                options: vec![
                    FlowOption::federated("Google", "GoogleOIDCAuthenticator"),
                    FlowOption::local("BasicAuthenticator"),
                ],
            },
            FlowStep {
                options: vec![FlowOption::local("totp")],
            },
        ],
        script: None,
        subject_step_id: 1,
        attribute_step_id: 1,
    };
    assert!(!flow_differs(&desired, &server));
    server.steps[1].options[0] = FlowOption::local("email-otp-authenticator");
    assert!(flow_differs(&desired, &server));
    server.steps[1].options[0] = FlowOption::local("totp");
    server.kind = FlowKind::Default;
    assert!(
        flow_differs(&desired, &server),
        "a DEFAULT flow on the server is drift"
    );
}

#[test]
fn oidc_comparison_uses_sets() {
    let desired = OidcChange {
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        callback_urls: vec!["https://a/cb".into()],
        allowed_origins: vec![],
        public_client: Some(false),
    };
    let mut server = OidcSettings {
        client_id: Some("id".into()),
        client_secret: Some(Secret::new("x")),
        grant_types: vec!["refresh_token".into(), "authorization_code".into()],
        callback_urls: vec!["https://a/cb".into()],
        allowed_origins: vec![],
        public_client: false,
        state: None,
    };
    assert!(!oidc_differs(&desired, &server));
    server.callback_urls.push("https://evil/cb".into());
    assert!(oidc_differs(&desired, &server));
}

#[test]
fn connector_second_factors_count_as_authenticators() {
    let steps = vec![
        FlowStep {
            options: vec![FlowOption::federated("Google", "GoogleOIDCAuthenticator")],
        },
        FlowStep {
            options: vec![FlowOption::federated("Duo", "DuoAuthenticator")],
        },
    ];
    let flow = flow_for_rule(&steps, None, &Default::default());
    assert_eq!(
        flow.steps[1],
        vec![crate::flow::FlowOption::Authenticator(
            "DuoAuthenticator".into()
        )]
    );
    assert_eq!(
        flow.steps[0],
        vec![crate::flow::FlowOption::IdentityProvider("Google".into())]
    );
}

fn resolve_okta(n: &str) -> Option<(String, String)> {
    (n == "partner-okta").then(|| ("Partner Okta".into(), "OpenIDConnectAuthenticator".into()))
}

fn seed_with_skip(skip: Option<SkipFor>) -> ApplicationSpec {
    let mut spec = app_spec(vec![
        vec![a("BasicAuthenticator"), r("partner-okta")],
        vec![a("totp")],
    ]);
    if let Some(f) = spec.login_flow.as_mut() {
        f.steps[1].skip_for = skip;
    }
    spec
}

fn okta_skip() -> Option<SkipFor> {
    Some(SkipFor {
        identity_providers: vec![LocalObjectRef {
            name: "partner-okta".into(),
        }],
        federated_users: false,
    })
}

fn server_flow(f: &FlowUpdate, script: Option<&str>) -> LoginFlow {
    LoginFlow {
        kind: FlowKind::UserDefined,
        steps: f.steps.clone(),
        script: script.map(str::to_owned),
        subject_step_id: 1,
        attribute_step_id: 1,
    }
}

#[test]
fn skip_for_generates_the_script_with_server_names_and_only_then() {
    let plain = desired_flow(&seed_with_skip(None), resolve_okta)
        .expect("resolves")
        .expect("flow");
    assert_eq!(
        plain.script, None,
        "no skipFor: no script, no script scope needed"
    );
    let f = desired_flow(&seed_with_skip(okta_skip()), resolve_okta)
        .expect("resolves")
        .expect("flow");
    let script = f.script.clone().expect("a generated script");
    assert!(script.contains("\"Partner Okta\""), "{script}");
    assert!(
        !script.contains("partner-okta"),
        "server names, not Kubernetes names: {script}"
    );
    let federated = desired_flow(
        &seed_with_skip(Some(SkipFor {
            identity_providers: vec![],
            federated_users: true,
        })),
        resolve_okta,
    )
    .expect("resolves")
    .expect("flow");
    assert!(federated
        .script
        .is_some_and(|s| s.contains("\"Partner Okta\"")));

    // The rule sees the skip through the script: no conflict for Partner Okta without JIT.
    let rule = flow_for_rule(&f.steps, f.script.as_deref(), &Default::default());
    let jit =
        std::collections::HashMap::from([("Partner Okta".to_string(), crate::flow::Jit::Disabled)]);
    let analysis = crate::flow::check_flow("Payroll", &rule, &jit, &Default::default());
    assert!(analysis.conflicts.is_empty(), "{:?}", analysis.conflicts);
    let without = flow_for_rule(&plain.steps, None, &Default::default());
    assert_eq!(
        crate::flow::check_flow("Payroll", &without, &jit, &Default::default())
            .conflicts
            .len(),
        1
    );
    assert_eq!(
        conditional_steps(&seed_with_skip(okta_skip())).as_deref(),
        Some("2 (skipped for partner-okta)")
    );
    assert_eq!(conditional_steps(&seed_with_skip(None)), None);
}

#[test]
fn the_script_is_part_of_the_drift_comparison() {
    let f = desired_flow(&seed_with_skip(okta_skip()), resolve_okta)
        .expect("resolves")
        .expect("flow");
    let script = f.script.clone().expect("script");
    assert!(!flow_differs(&f, &server_flow(&f, Some(&script))));
    assert!(flow_differs(&f, &server_flow(&f, None)), "script missing");
    assert!(
        flow_differs(
            &f,
            &server_flow(&f, Some("var onLoginRequest = function (c) {};"))
        ),
        "script changed behind the operator's back"
    );
    let plain = desired_flow(&seed_with_skip(None), resolve_okta)
        .expect("resolves")
        .expect("flow");
    assert!(
        !flow_differs(&plain, &server_flow(&plain, Some("anything"))),
        "without skipFor the script is not compared (plan_script decides about it)"
    );
}

/// (name, desired, server script, adopt, script sent, origin, held back)
type PlanCase = (
    &'static str,
    FlowUpdate,
    Option<String>,
    bool,
    Option<bool>,
    ScriptOrigin,
    bool,
);

#[test]
fn plan_script_table() {
    let with_skip = || {
        desired_flow(&seed_with_skip(okta_skip()), resolve_okta)
            .expect("resolves")
            .expect("flow")
    };
    let without = || {
        desired_flow(&seed_with_skip(None), resolve_okta)
            .expect("resolves")
            .expect("flow")
    };
    let ours = with_skip().script.expect("script");
    // Log is not part of the modelled API: the script cannot be proved, so it is not verified.
    let foreign =
        "var onLoginRequest = function (context) { Log.info('hi'); executeStep(1); executeStep(2); };"
            .to_string();
    // (name, desired, server script, adopt) -> (script sent, origin, held back)
    let cases: Vec<PlanCase> = vec![
        // Some(true): the generated skip script is sent; Some(false): the plain one; None: nothing.
        (
            "new skip, no script on the server",
            with_skip(),
            None,
            false,
            Some(true),
            ScriptOrigin::Generated,
            false,
        ),
        (
            "skip, our script already there",
            with_skip(),
            Some(ours.clone()),
            false,
            Some(true),
            ScriptOrigin::Generated,
            false,
        ),
        (
            "skip over a foreign script without adopt",
            with_skip(),
            Some(foreign.clone()),
            false,
            None,
            ScriptOrigin::NotVerified,
            true,
        ),
        (
            "skip over a foreign script with adopt",
            with_skip(),
            Some(foreign.clone()),
            true,
            Some(true),
            ScriptOrigin::Generated,
            false,
        ),
        (
            "our script edited on the server is drift: corrected",
            with_skip(),
            Some(ours.replace("executeStep(2);", "executeStep(2); executeStep(2);")),
            false,
            Some(true),
            ScriptOrigin::Generated,
            false,
        ),
        (
            "no skip, no script",
            without(),
            None,
            false,
            None,
            ScriptOrigin::None,
            false,
        ),
        (
            "skip removed: our script becomes the plain one",
            without(),
            Some(ours.clone()),
            false,
            Some(false),
            ScriptOrigin::Generated,
            false,
        ),
        (
            "no skip, foreign script stays",
            without(),
            Some(foreign.clone()),
            true,
            None,
            ScriptOrigin::NotVerified,
            false,
        ),
    ];
    for (name, desired, on_server, adopt, sent, origin, held_back) in cases {
        let server = server_flow(&desired, on_server.as_deref());
        let (f, plan) = plan_script(Some(desired), &server, adopt, &Default::default());
        let f = f.expect("flow kept");
        match sent {
            None => assert_eq!(f.script, None, "{name}"),
            Some(true) => assert_eq!(f.script.as_deref(), Some(ours.as_str()), "{name}"),
            Some(false) => {
                let s = f.script.clone().expect(name);
                assert_ne!(s, ours, "{name}");
                assert!(s.contains("executeStep(2)"), "{name}: {s}");
            }
        }
        assert_eq!(plan.origin, origin, "{name}");
        assert_eq!(plan.held_back, held_back, "{name}");
        if origin == ScriptOrigin::NotVerified {
            assert_eq!(plan.effective.as_deref(), Some(foreign.as_str()), "{name}");
            assert_eq!(plan.status().as_deref(), Some("NotVerified"), "{name}");
        }
    }
    // No loginFlow in the spec: the server's script is only described.
    let server = server_flow(&with_skip(), Some(&foreign));
    let (f, plan) = plan_script(None, &server, false, &Default::default());
    assert_eq!(f, None);
    assert_eq!(plan.origin, ScriptOrigin::NotVerified);
}

#[test]
fn hand_written_scripts_are_proved_by_simulation_or_not_verified() {
    let f = desired_flow(&seed_with_skip(None), resolve_okta)
        .expect("resolves")
        .expect("flow");
    let jit =
        std::collections::HashMap::from([("Partner Okta".to_string(), crate::flow::Jit::Disabled)]);
    let cases = [
        (
            "the docs' remedy: step 2 only for local users",
            "var onLoginRequest = function (context) {\n  executeStep(1, { onSuccess: function (context) {\n    if (context.steps[1].idp === 'LOCAL') { executeStep(2); }\n  } });\n};",
            ScriptOrigin::Proved,
            0,
        ),
        (
            "runs step 2 for everybody",
            "var onLoginRequest = function (context) { executeStep(1); executeStep(2); };",
            ScriptOrigin::NotVerified,
            1,
        ),
        (
            "uses an API outside the model",
            "var onLoginRequest = function (context) { executeStep(1, { onSuccess: function (c) { if (c.request.params.x) { executeStep(2); } } }); };",
            ScriptOrigin::NotVerified,
            1,
        ),
        (
            "does not parse",
            "var onLoginRequest = function (context) {",
            ScriptOrigin::NotVerified,
            1,
        ),
    ];
    for (name, script, origin, conflicts) in cases {
        let rule = flow_for_rule(&f.steps, Some(script), &Default::default());
        assert_eq!(rule.script, origin, "{name}");
        let found = crate::flow::check_flow("Payroll", &rule, &jit, &Default::default()).conflicts;
        assert_eq!(found.len(), conflicts, "{name}: {found:?}");
        assert!(found.iter().all(|c| c.unverified_script), "{name}");
        let (_, plan) = plan_script(
            Some(f.clone()),
            &server_flow(&f, Some(script)),
            false,
            &Default::default(),
        );
        assert_eq!(plan.origin, origin, "{name}: the status says the same");
    }
}

/// Issue 24: a skipFor naming an IdP that no earlier step offers skips nobody; it was dropped from
/// the script without a word. It is named (for the Ready message); one offered earlier is not.
#[test]
fn skips_for_providers_no_earlier_step_offers_are_reported() {
    let refs = |names: &[&str]| {
        Some(SkipFor {
            identity_providers: names
                .iter()
                .map(|n| LocalObjectRef { name: (*n).into() })
                .collect(),
            federated_users: false,
        })
    };
    assert!(unused_skips(&seed_with_skip(okta_skip())).is_empty());
    assert!(unused_skips(&seed_with_skip(None)).is_empty());
    let typo = unused_skips(&seed_with_skip(refs(&["partner-okta", "partner-otka"])));
    assert_eq!(
        typo,
        vec!["skipFor of step 2 names IdentityProvider partner-otka, which no earlier step offers: it skips nobody".to_owned()]
    );
    // Offered only from the skipped step on: it cannot have signed anyone in before it.
    let mut later = app_spec(vec![
        vec![a("BasicAuthenticator")],
        vec![a("totp"), r("partner-okta")],
    ]);
    if let Some(f) = later.login_flow.as_mut() {
        f.steps[1].skip_for = okta_skip();
    }
    assert_eq!(unused_skips(&later).len(), 1);
    let federated = seed_with_skip(Some(SkipFor {
        identity_providers: vec![],
        federated_users: true,
    }));
    assert!(unused_skips(&federated).is_empty());
}

#[test]
fn lookup_fields_are_pushed_diffed_and_seen_by_the_rule() {
    use crate::api::identity_provider::{AccountLookup, GroupSyncMethod};
    let lookup = AccountLookup {
        local_attribute: "http://wso2.org/claims/emailaddress".into(),
        federated_attribute: "email".into(),
    };
    let spec = google_spec(Some(JitSpec {
        enabled: true,
        account_lookup: Some(vec![lookup]),
        skip_for_lookup_failure: Some(true),
        group_sync_method: Some(GroupSyncMethod::OverrideAll),
        ..Default::default()
    }));
    let change = jit_change(&spec).expect("declared");
    let wire_lookup = vec![wire::AccountLookupAttributeMapping {
        local_attribute: Some("http://wso2.org/claims/emailaddress".into()),
        federated_attribute: Some("email".into()),
    }];
    assert_eq!(change.account_lookup, Some(wire_lookup.clone()));
    assert_eq!(change.skip_jit_for_lookup_failure, Some(true));
    assert_eq!(
        change.idp_group_sync_method,
        Some(backend::IdpGroupSyncMethod::OverrideAll)
    );
    // The server has the skip but no mappings and merges groups: lookup and group method differ.
    let diff = jit_diff(&change, &server_jit()).expect("differs");
    assert_eq!(diff.account_lookup, Some(wire_lookup.clone()));
    assert_eq!(diff.skip_jit_for_lookup_failure, None, "already true");
    assert_eq!(
        diff.idp_group_sync_method,
        Some(backend::IdpGroupSyncMethod::OverrideAll)
    );
    let mut same = server_jit();
    same.account_lookup = wire_lookup;
    same.idp_group_sync_method = Some(backend::IdpGroupSyncMethod::OverrideAll);
    assert_eq!(jit_diff(&change, &same), None);
    // A server that leaves the newer fields out has their defaults: declaring those is no change.
    let defaults = JitChange {
        skip_jit_for_lookup_failure: Some(false),
        idp_group_sync_method: Some(backend::IdpGroupSyncMethod::MergeWithExisting),
        ..Default::default()
    };
    let mut old = server_jit();
    old.skip_jit_for_lookup_failure = None;
    assert_eq!(jit_diff(&defaults, &old), None);

    // The rule: declared, with undeclared lookup fields taken from the server.
    assert_eq!(
        declared_jit(&spec, None),
        crate::flow::Jit::SkippedOnLookupFailure
    );
    assert_eq!(
        declared_jit(&google_spec(None), None),
        crate::flow::Jit::Missing
    );
    let only_lookup = google_spec(Some(JitSpec {
        enabled: true,
        account_lookup: Some(vec![AccountLookup {
            local_attribute: "http://wso2.org/claims/username".into(),
            federated_attribute: "sub".into(),
        }]),
        ..Default::default()
    }));
    assert_eq!(declared_jit(&only_lookup, None), crate::flow::Jit::Enabled);
    assert_eq!(
        declared_jit(&only_lookup, Some(&server_jit())),
        crate::flow::Jit::SkippedOnLookupFailure,
        "the server's skip is kept, so it counts"
    );
}

fn saml_spec(metadata: Option<&str>, certificates: &[&str]) -> IdentityProviderSpec {
    IdentityProviderSpec {
        google: None,
        saml: Some(crate::api::identity_provider::SamlProvider {
            idp_entity_id: "https://saml.example/idp".into(),
            sso_url: "https://saml.example/sso".into(),
            sp_entity_id: "sp".into(),
            name_id_format: None,
            sign_authn_requests: false,
            certificates: certificates.iter().map(|c| c.to_string()).collect(),
            metadata_uri: metadata.map(Into::into),
        }),
        ..google_spec(None)
    }
}

fn oidc_spec(jwks: Option<&str>, certificates: &[&str]) -> IdentityProviderSpec {
    IdentityProviderSpec {
        google: None,
        oidc: Some(crate::api::identity_provider::OidcProvider {
            client_id: "cid".into(),
            client_secret_ref: SecretKeyRef {
                name: "s".into(),
                key: "k".into(),
            },
            authorization_endpoint: "https://o.example/authorize".into(),
            token_endpoint: "https://o.example/token".into(),
            userinfo_endpoint: None,
            logout_endpoint: None,
            jwks_uri: jwks.map(Into::into),
            certificates: certificates.iter().map(|c| c.to_string()).collect(),
            scopes: vec![],
            callback_url: None,
        }),
        ..google_spec(None)
    }
}

#[test]
fn certificate_patches_turn_the_server_certificate_into_the_declared_one() {
    use IdpPatch::*;
    let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let a = "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----";
    let b = "-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----";
    let c = "-----BEGIN CERTIFICATE-----\nC\n-----END CERTIFICATE-----";
    let a_nl = format!("{a}\n");
    let m1 = "https://saml.example/m1";
    let m2 = "https://saml.example/m2";
    let j1 = "https://o.example/jwks";
    // (case, spec, server jwks, server metadata, server certificates, expected patches)
    #[allow(clippy::type_complexity)]
    let cases: Vec<(
        &str,
        IdentityProviderSpec,
        Option<&str>,
        Option<&str>,
        Vec<String>,
        Vec<IdpPatch>,
    )> = vec![
        (
            "nothing declared: the server's is not managed",
            saml_spec(None, &[]),
            Some(j1),
            None,
            s(&[a]),
            vec![],
        ),
        (
            "metadata already there",
            saml_spec(Some(m1), &[]),
            None,
            Some(m1),
            vec![],
            vec![],
        ),
        (
            "metadata differs: replaced",
            saml_spec(Some(m1), &[]),
            None,
            Some(m2),
            vec![],
            vec![SamlMetadataUri(m1.into())],
        ),
        (
            "metadata over certificates: added (drops them)",
            saml_spec(Some(m1), &[]),
            None,
            None,
            s(&[a]),
            vec![AddSamlMetadataUri(m1.into())],
        ),
        (
            "metadata over a JWKS URI: added",
            saml_spec(Some(m1), &[]),
            Some(j1),
            None,
            vec![],
            vec![AddSamlMetadataUri(m1.into())],
        ),
        (
            "certificates equal",
            saml_spec(None, &[a, b]),
            None,
            None,
            s(&[a, b]),
            vec![],
        ),
        (
            "trailing newline is no difference",
            saml_spec(None, &[&a_nl]),
            None,
            None,
            s(&[a]),
            vec![],
        ),
        (
            "certificates onto nothing: added in order",
            saml_spec(None, &[a, b]),
            None,
            None,
            vec![],
            vec![AddCertificate(0, a.into()), AddCertificate(1, b.into())],
        ),
        (
            "certificates over metadata: added (drops it)",
            saml_spec(None, &[a]),
            None,
            Some(m1),
            vec![],
            vec![AddCertificate(0, a.into())],
        ),
        (
            "one more at the end",
            saml_spec(None, &[a, b]),
            None,
            None,
            s(&[a]),
            vec![AddCertificate(1, b.into())],
        ),
        (
            "one fewer at the end",
            saml_spec(None, &[a]),
            None,
            None,
            s(&[a, b]),
            vec![RemoveCertificate(1)],
        ),
        (
            "changed in the middle: rewritten from there, last first",
            saml_spec(None, &[a, c, b]),
            None,
            None,
            s(&[a, b, c]),
            vec![
                RemoveCertificate(2),
                RemoveCertificate(1),
                AddCertificate(1, c.into()),
                AddCertificate(2, b.into()),
            ],
        ),
        (
            "reordered: no ADD of one still stored (409)",
            saml_spec(None, &[b]),
            None,
            None,
            s(&[a, b]),
            vec![
                RemoveCertificate(1),
                RemoveCertificate(0),
                AddCertificate(0, b.into()),
            ],
        ),
        (
            "oidc certificates over a JWKS URI",
            oidc_spec(None, &[a]),
            Some(j1),
            None,
            vec![],
            vec![AddCertificate(0, a.into())],
        ),
        (
            "oidc JWKS URI over certificates",
            oidc_spec(Some(j1), &[]),
            None,
            None,
            s(&[a]),
            vec![AddJwksUri(j1.into())],
        ),
        (
            "oidc JWKS URI equal",
            oidc_spec(Some(j1), &[]),
            Some(j1),
            None,
            vec![],
            vec![],
        ),
    ];
    for (case, spec, jwks, metadata, certs, want) in cases {
        let got = certificate_patches(
            &spec,
            &IdpCertificate {
                jwks_uri: jwks.map(Into::into),
                saml_metadata_uri: metadata.map(Into::into),
                certificates: certs,
            },
        );
        assert_eq!(got, want, "{case}");
    }
}
