use super::*;
use crate::backend::inventory::{AppDetail, IdpDetail, TenantSnapshot};
use crate::backend::{
    wire, Application, AttributeSyncMethod, AuthenticatorSummary, FederatedAuthenticator, FlowKind,
    FlowOption, FlowStep, Idp, Jit, JitScheme, LoginFlow, OidcSettings, Property,
};

pub(crate) fn idp(name: &str, authenticator: &str, props: &[(&str, &str)], jit: bool) -> IdpDetail {
    let aid = wire::authenticator_id(authenticator);
    IdpDetail {
        idp: Idp {
            id: format!("id-{name}"),
            name: name.into(),
            description: None,
            image: None,
            is_enabled: true,
            default_authenticator_id: Some(aid.clone()),
            authenticators: vec![AuthenticatorSummary {
                id: aid.clone(),
                name: authenticator.into(),
                is_enabled: true,
            }],
            jit: None,
            certificate: Default::default(),
            mappings: Default::default(),
        },
        authenticators: vec![FederatedAuthenticator {
            authenticator_id: aid,
            name: Some(authenticator.into()),
            is_enabled: true,
            is_default: true,
            properties: props.iter().map(|(k, v)| Property::new(*k, *v)).collect(),
        }],
        jit: Jit {
            enabled: jit,
            scheme: JitScheme::ProvisionSilently,
            userstore: "DEFAULT".into(),
            associate_local_user: false,
            attribute_sync_method: AttributeSyncMethod::OverrideAll,
            skip_jit_for_lookup_failure: Some(false),
            idp_group_sync_method: None,
            account_lookup: vec![],
        },
        confidential: Default::default(),
    }
}

pub(crate) fn google(name: &str, jit: bool) -> IdpDetail {
    idp(
        name,
        "GoogleOIDCAuthenticator",
        &[
            ("ClientId", "123.apps.example"),
            ("ClientSecret", "s3cr3t-google"),
            ("AdditionalQueryParameters", "scope=openid email profile"),
        ],
        jit,
    )
}

/// Steps as (idp, authenticator) pairs; `LOCAL` for local authenticators.
pub(crate) fn app(name: &str, steps: &[&[(&str, &str)]], script: Option<&str>) -> AppDetail {
    AppDetail {
        app: Application {
            id: format!("id-{name}"),
            name: name.into(),
            description: None,
            client_id: None,
            login_flow: LoginFlow {
                kind: if steps.is_empty() {
                    FlowKind::Default
                } else {
                    FlowKind::UserDefined
                },
                steps: steps
                    .iter()
                    .map(|s| FlowStep {
                        options: s
                            .iter()
                            .map(|(i, a)| FlowOption {
                                idp: (*i).into(),
                                authenticator: (*a).into(),
                            })
                            .collect(),
                    })
                    .collect(),
                script: script.map(str::to_string),
                subject_step_id: 1,
                attribute_step_id: 1,
            },
        },
        oidc: None,
    }
}

pub(crate) fn options() -> Options {
    Options {
        namespace: "identity".into(),
        backend_name: "asgardeo".into(),
        target: Target::Asgardeo {
            organization: "acme".into(),
        },
        credentials_secret: "asgardeo-credentials".into(),
        deletion_policy: DeletionPolicy::Orphan,
    }
}

/// A tenant with a live conflict, an unsupported IdP, a connector second factor and a script.
pub(crate) fn tenant() -> TenantSnapshot {
    let mut payroll = app(
        "Payroll",
        &[
            &[
                ("LOCAL", "BasicAuthenticator"),
                ("Google", "GoogleOIDCAuthenticator"),
            ],
            &[("LOCAL", "totp")],
        ],
        None,
    );
    payroll.oidc = Some(OidcSettings {
        client_id: Some("payroll-client".into()),
        client_secret: None,
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        callback_urls: vec!["https://payroll.example/cb".into()],
        allowed_origins: vec![],
        public_client: false,
        state: Some("ACTIVE".into()),
    });
    payroll.app.client_id = Some("payroll-client".into());
    TenantSnapshot {
        idps: vec![
            google("Google", false),
            idp(
                "GitHub Enterprise",
                "GithubAuthenticator",
                &[("ClientId", "gh"), ("scope", "read:user")],
                true,
            ),
            idp("Okta", "OktaAuthenticator", &[("ClientId", "okta")], false),
            idp(
                "Corp SAML",
                "SAMLSSOAuthenticator",
                &[
                    ("IdPEntityId", "corp"),
                    ("SSOUrl", "https://sso.corp.example/saml"),
                    ("SPEntityId", "acme"),
                    ("ISAuthnReqSigned", "false"),
                ],
                false,
            ),
        ],
        applications: vec![
            payroll,
            app("Wiki", &[], None),
            app(
                "Legacy",
                &[&[("Okta", "OktaAuthenticator")], &[("LOCAL", "totp")]],
                None,
            ),
            app(
                "Scripted",
                &[
                    &[("GitHub Enterprise", "GithubAuthenticator")],
                    &[("LOCAL", "email-otp-authenticator")],
                ],
                Some("var onLoginRequest = function(context) { executeStep(1); };"),
            ),
        ],
    }
}

#[test]
fn dns_labels() {
    for (input, fallback, want) in [
        ("Google", "idp", "google"),
        ("My  App!", "app", "my-app"),
        ("--x--", "idp", "x"),
        ("Ünïcode", "idp", "n-code"),
        ("", "idp", "idp"),
        ("!!!", "app", "app"),
        ("GitHub Enterprise", "idp", "github-enterprise"),
    ] {
        assert_eq!(dns_label(input, fallback), want, "{input:?}");
    }
    let long = dns_label(&format!("{}-{}", "a".repeat(62), "b".repeat(10)), "x");
    assert_eq!(long.len(), 62, "cut at 63 and no trailing dash: {long}");
}

#[test]
fn names_are_unique_per_kind_and_stable() {
    let snap = TenantSnapshot {
        idps: vec![
            google("Google", true),
            google("google", true),
            google("GOOGLE!", true),
        ],
        applications: vec![app("google", &[], None)],
    };
    let names = Names::new(&snap);
    assert_eq!(names.idp("Google"), "google");
    assert_eq!(names.idp("google"), "google-2");
    assert_eq!(names.idp("GOOGLE!"), "google-3");
    assert_eq!(names.app("google"), "google", "kinds do not share names");
}

#[test]
fn plan_maps_what_the_resources_can_hold_and_reports_the_rest() {
    let plan = plan(&tenant(), &options());
    let idps: Vec<&str> = plan.idps.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(idps, ["Google", "GitHub Enterprise", "Corp SAML"]);
    let (_, _, g) = &plan.idps[0];
    assert_eq!(g.metadata.name.as_deref(), Some("google"));
    assert_eq!(g.metadata.namespace.as_deref(), Some("identity"));
    assert!(g.spec.adopt);
    assert_eq!(g.spec.deletion_policy, DeletionPolicy::Orphan);
    let gs = g.spec.google.as_ref().expect("google block");
    assert_eq!(gs.client_id, "123.apps.example");
    assert_eq!(gs.client_secret_ref.name, "google-client-secret");
    assert!(gs.scopes.is_empty(), "the default scopes stay implicit");
    assert_eq!(g.spec.jit.as_ref().map(|j| j.enabled), Some(false));
    let gh = &plan.idps[1].2;
    assert_eq!(gh.metadata.name.as_deref(), Some("github-enterprise"));
    assert_eq!(
        gh.spec.github.as_ref().map(|g| g.scopes.clone()),
        Some(vec!["read:user".to_string()])
    );
    assert!(plan.idps[2].2.spec.saml.is_some());

    let secrets: Vec<&str> = plan.secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        secrets,
        [
            "asgardeo-credentials",
            "google-client-secret",
            "github-enterprise-client-secret"
        ],
        "SAML has no client secret"
    );

    let apps: Vec<&str> = plan
        .applications
        .iter()
        .map(|(s, _, _)| s.as_str())
        .collect();
    assert_eq!(apps, ["Payroll", "Wiki", "Legacy", "Scripted"]);
    let payroll = &plan.applications[0].2.spec;
    let steps = &payroll.login_flow.as_ref().expect("flow").steps;
    assert_eq!(steps.len(), 2);
    assert_eq!(
        steps[0].options[1]
            .identity_provider_ref
            .as_ref()
            .map(|r| r.name.as_str()),
        Some("google")
    );
    assert_eq!(steps[1].options[0].authenticator.as_deref(), Some("totp"));
    assert_eq!(
        payroll.oidc.as_ref().map(|o| o.callback_urls.clone()),
        Some(vec!["https://payroll.example/cb".to_string()])
    );
    assert!(
        plan.applications[1].2.spec.login_flow.is_none(),
        "default flow: left alone"
    );
    assert!(
        plan.applications[2].2.spec.login_flow.is_none(),
        "Okta is not exported"
    );

    let notes: Vec<(NoteKind, &str)> = plan
        .notes
        .iter()
        .map(|n| (n.kind, n.server_name.as_str()))
        .collect();
    assert_eq!(
        notes,
        [
            (NoteKind::Skipped, "Okta"),
            (NoteKind::NotManaged, "Legacy"),
            (NoteKind::NotManaged, "Scripted"),
        ],
        "{:#?}",
        plan.notes
    );
    assert!(plan.notes[0].message.contains("OktaAuthenticator"));
    assert!(plan.notes[1].message.contains("\"Okta\""));
    assert!(plan.notes[2].message.contains("conditional-auth script"));
}

#[test]
fn differences_the_operator_would_write_are_reported() {
    let mut snap = TenantSnapshot {
        idps: vec![idp(
            "Google",
            "GoogleOIDCAuthenticator",
            &[
                ("ClientId", "x"),
                ("AdditionalQueryParameters", "scope=openid&prompt=login"),
            ],
            true,
        )],
        applications: vec![],
    };
    snap.idps[0].authenticators[0].is_enabled = false;
    let plan = plan(&snap, &options());
    assert_eq!(plan.notes.len(), 1, "{:#?}", plan.notes);
    assert_eq!(plan.notes[0].kind, NoteKind::WillChange);
    assert!(
        plan.notes[0].message.contains("AdditionalQueryParameters"),
        "{}",
        plan.notes[0].message
    );
    assert!(
        plan.notes[0].message.contains("enabled"),
        "{}",
        plan.notes[0].message
    );
}

#[test]
fn a_flow_through_a_non_default_authenticator_is_not_expressible() {
    let mut snap = TenantSnapshot {
        idps: vec![google("Google", true)],
        applications: vec![app(
            "A",
            &[&[("Google", "OpenIDConnectAuthenticator")]],
            None,
        )],
    };
    snap.applications[0].app.login_flow.subject_step_id = 1;
    let plan = plan(&snap, &options());
    assert!(plan.applications[0].2.spec.login_flow.is_none());
    assert_eq!(plan.notes.len(), 1);
    assert!(plan.notes[0]
        .message
        .contains("can only use its GoogleOIDCAuthenticator"));
}

#[test]
fn written_files_hold_no_secret_and_lint_back_to_the_same_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = plan(&tenant(), &options());
    write(
        dir.path(),
        &plan,
        "https://api.asgardeo.io/t/acme/",
        "identity",
        "m2m-id",
    )
    .expect("writes");
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "README.md",
            "application-legacy.yaml",
            "application-payroll.yaml",
            "application-scripted.yaml",
            "application-wiki.yaml",
            "identitybackend-asgardeo.yaml",
            "identityprovider-corp-saml.yaml",
            "identityprovider-github-enterprise.yaml",
            "identityprovider-google.yaml",
        ]
    );
    for f in &files {
        let text = std::fs::read_to_string(dir.path().join(f)).expect("read");
        assert!(!text.contains("s3cr3t"), "{f} holds a secret value");
    }
    let readme = std::fs::read_to_string(dir.path().join("README.md")).expect("readme");
    assert!(readme.contains("kubectl -n identity create secret generic google-client-secret --from-literal=client-secret=\"$VALUE\""));
    assert!(readme.contains(
        "kubectl -n identity label secret google-client-secret identity-operator.io/use=identity-provider-client-secret"
    ));
    assert!(readme.contains("--from-literal=client-id=m2m-id"));
    assert!(readme.contains("| not exported | IdentityProvider \"Okta\""));

    let docs = crate::lint::load_paths(&[dir.path().to_path_buf()]).expect("loads");
    let report = crate::lint::lint_documents(&docs);
    assert_eq!(report.objects, 8);
    let conflicts: Vec<String> = report
        .findings
        .iter()
        .map(|f| f.problem.to_string())
        .collect();
    assert_eq!(conflicts.len(), 1, "{conflicts:#?}");
    assert!(conflicts[0].starts_with("InterconnectionConflict: Application identity/payroll step 1 offers IdentityProvider identity/google ("));
}

#[test]
fn names_longer_than_a_display_name_are_skipped_at_the_limit() {
    let at_limit = "a".repeat(120);
    let over = "b".repeat(121);
    let snap = TenantSnapshot {
        idps: vec![google(&at_limit, true), google(&over, true)],
        applications: vec![app(&at_limit, &[], None), app(&over, &[], None)],
    };
    let plan = plan(&snap, &options());
    let idps: Vec<&str> = plan.idps.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(idps, [at_limit.as_str()]);
    let apps: Vec<&str> = plan
        .applications
        .iter()
        .map(|(s, _, _)| s.as_str())
        .collect();
    assert_eq!(apps, [at_limit.as_str()]);
    let skipped: Vec<(&str, bool)> = plan
        .notes
        .iter()
        .filter(|n| n.kind == NoteKind::Skipped)
        .map(|n| (n.object_kind, n.server_name == over))
        .collect();
    assert_eq!(
        skipped,
        [("Application", true), ("IdentityProvider", true)],
        "the notes are sorted by kind"
    );
    assert!(plan
        .notes
        .iter()
        .all(|n| n.message.contains("120 characters")));
}

/// Issue 24: ids come from the server and were written raw into the files' header comments: a line
/// break in one put its own YAML after the comment. Names a displayName cannot hold are skipped.
#[test]
fn server_ids_cannot_add_yaml_and_unusable_names_are_skipped() {
    let evil = "id\nspec:\n  adopt: false\n  deletionPolicy: Delete\u{2028}x\u{85}y\r#";
    let mut snap = TenantSnapshot {
        idps: vec![google("Google", true), google("Line\nBreak", true)],
        applications: vec![app("Wiki", &[], None), app("Trailing ", &[], None)],
    };
    snap.idps[0].idp.id = evil.into();
    snap.applications[0].app.id = evil.into();
    let plan = plan(&snap, &options());
    let names = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        names(plan.idps.iter().map(|(s, _, _)| s.as_str()).collect()),
        ["Google"]
    );
    assert_eq!(
        names(
            plan.applications
                .iter()
                .map(|(s, _, _)| s.as_str())
                .collect()
        ),
        ["Wiki"]
    );
    let skipped: Vec<&str> = plan
        .notes
        .iter()
        .filter(|n| n.kind == NoteKind::Skipped)
        .map(|n| n.message.as_str())
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped
            .iter()
            .all(|m| m.contains("cannot be a displayName")),
        "{skipped:?}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &plan,
        "https://api.asgardeo.io/t/acme/",
        "identity",
        "m2m-id",
    )
    .expect("writes");
    let check = |file: &str, want: serde_json::Value| {
        let text = std::fs::read_to_string(dir.path().join(file)).expect("read");
        let mut lines = text.lines();
        let header = lines.next().expect("a header");
        assert!(
            header.starts_with("# ") && header.contains("(id id\\u{a}spec:"),
            "{text}"
        );
        assert!(
            lines.all(|l| !l.starts_with('#')),
            "one comment line only:\n{text}"
        );
        for sep in ['\u{2028}', '\u{2029}', '\u{85}', '\r'] {
            assert!(!text.contains(sep), "{sep:?} in\n{text}");
        }
        let got: serde_json::Value = serde_saphyr::from_str(&text).expect("parses");
        assert_eq!(got, want, "the file is exactly the object:\n{text}");
    };
    let idp = serde_json::to_value(&plan.idps[0].2).expect("json");
    let app = serde_json::to_value(&plan.applications[0].2).expect("json");
    check("identityprovider-google.yaml", idp);
    check("application-wiki.yaml", app);
}

#[test]
fn only_certificates_the_crd_accepts_are_exported() {
    let a = "-----BEGIN CERTIFICATE-----\nQQ==\n-----END CERTIFICATE-----".to_string();
    let b = "-----BEGIN CERTIFICATE-----\nQg==\n-----END CERTIFICATE-----\n".to_string();
    let chain = format!("{a}\n{b}");
    let cases: Vec<(&str, Vec<String>, bool)> = vec![
        ("two PEMs", vec![a.clone(), b.clone()], true),
        ("a chain in one entry", vec![chain], false),
        ("a duplicate", vec![a.clone(), a.clone()], false),
        ("not PEM", vec!["QQ==".into()], false),
        (
            "an empty block",
            vec!["-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----".into()],
            false,
        ),
        (
            "eleven",
            (0..11)
                .map(|i| a.replace("QQ==", &format!("Q{i}==")))
                .collect(),
            false,
        ),
        (
            "too long",
            vec![a.replace("QQ==", &"Q".repeat(8200))],
            false,
        ),
    ];
    for (case, pems, want) in cases {
        assert_eq!(super::plan::certificates_expressible(&pems), want, "{case}");
    }
}

/// The YAML export writes stays what kubectl reads back (YAML 1.1, like sigs.k8s.io/yaml): strings
/// that look like booleans, numbers or null are quoted, a script keeps its lines as a block scalar.
#[test]
fn exported_yaml_quotes_what_a_yaml_1_1_reader_would_retype() {
    let script = "var onLoginRequest = function (context) {\n    executeStep(1);\n};\n";
    let cases = [
        "yes", "on", "off", "no", "y", "1.0", "0755", "~", "null", "", "true", "12:30", script,
    ];
    for text in cases {
        let doc = serde_json::json!({ "spec": { "value": text } });
        let out = super::yaml_of("", &doc);
        let line = out.lines().nth(1).unwrap_or_default().trim();
        if text == script {
            assert!(line.starts_with("value: |"), "{text:?} as {out}");
        } else {
            assert!(
                line.starts_with("value: \"") || line.starts_with("value: '"),
                "{text:?} is quoted: {out}"
            );
        }
        let back: serde_json::Value = serde_saphyr::from_str(&out).expect("parses");
        assert_eq!(back, doc, "{text:?} round-trips");
    }
}
