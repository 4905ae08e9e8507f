use super::*;

fn entry(app: &str) -> ConflictEntry {
    ConflictEntry {
        application: app.into(),
        identity_provider_step: 1,
        authenticator: "totp".into(),
        authenticator_step: 2,
        unverified_script: false,
        lookup_skip: false,
    }
}

#[test]
fn jit_required_by_lists_what_jit_off_would_break_whatever_the_spec_says() {
    use crate::flow::{Flow, FlowOption, Skip};
    let spec: crate::api::IdentityProviderSpec = serde_json::from_value(serde_json::json!({
        "backendRef": {"name": "b"}, "displayName": "Google",
        "google": {"clientID": "c", "clientSecretRef": {"name": "s", "key": "k"}},
        "jit": {"enabled": true},
    }))
    .expect("spec");
    let idp = |n: &str| FlowOption::IdentityProvider(n.into());
    let auth = |n: &str| FlowOption::Authenticator(n.into());
    let mfa = Flow::new(vec![
        vec![auth("BasicAuthenticator"), idp("Google")],
        vec![auth("totp")],
    ]);
    let mut skipped = mfa.clone();
    skipped.skips = vec![Skip::Never, Skip::For(["Google".to_string()].into())];
    let other = Flow::new(vec![vec![idp("Okta")], vec![auth("totp")]]);
    let flows = vec![
        ("Payroll".to_string(), mfa),
        ("Wiki".to_string(), skipped),
        ("Legacy".to_string(), other.clone()),
        (
            "Server only".to_string(),
            Flow::new(vec![vec![idp("Google")], vec![auth("FIDOAuthenticator")]]),
        ),
    ];
    let deps = vec![Dependent {
        name: "Payroll".into(),
        application_ref: Some("payroll".into()),
        id: Some("app-1".into()),
    }];
    let needs = LocalAccountAuthenticators::default();
    // JIT is on in the spec: no conflict, yet Payroll and the server-only app need it; Wiki
    // skips its TOTP step for Google users and Legacy does not offer Google.
    assert!(conflicts(&spec, Jit::Enabled, &flows, &needs).is_empty());
    let got = jit_required_by(&spec, &flows, &needs, &deps);
    let summary: Vec<_> = got
        .iter()
        .map(|r| {
            (
                r.application.as_str(),
                r.application_ref.as_deref(),
                r.identity_provider_step,
                r.authenticator.as_str(),
                r.authenticator_step,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("Payroll", Some("payroll"), 1, "totp", 2),
            ("Server only", None, 1, "FIDOAuthenticator", 2),
        ]
    );
}

#[test]
fn a_held_lookup_skip_says_so_and_names_its_remedy() {
    let mut e = entry("Payroll");
    e.lookup_skip = true;
    let held = outcome("idp-1", true, &[e]);
    let c = &held.conditions()[0];
    assert_eq!(c.reason, "JITLookupSkipBlocked");
    assert!(
        c.message.contains("Turn skipForLookupFailure off"),
        "{}",
        c.message
    );
    assert!(c.message.contains("Payroll"), "{}", c.message);
    let off = outcome("idp-1", true, &[entry("Payroll")]);
    assert_eq!(off.conditions()[0].reason, "JITDisableBlocked");
}

#[test]
fn a_pass_is_ready_unless_block_held_the_jit_disable_back() {
    assert!(outcome("idp-1", false, &[entry("Payroll")]).is_ready());
    let held = outcome("idp-1", true, &[entry("Payroll"), entry("Payroll")]);
    let c = &held.conditions()[0];
    assert_eq!(c.reason, "JITDisableBlocked");
    assert!(c.message.contains("application(s) Payroll need"), "{c:?}");
}
