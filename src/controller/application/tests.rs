use super::*;

fn held() -> flow::Conflict {
    flow::Conflict {
        application: "Payroll".into(),
        identity_provider: "Google".into(),
        identity_provider_step: 1,
        authenticator: "totp".into(),
        authenticator_step: 2,
        unverified_script: false,
        lookup_skip: false,
    }
}

fn idp(generation: i64, observed: Option<i64>, jit: Option<&str>) -> IdentityProvider {
    serde_json::from_value(json!({
        "apiVersion": "identity-operator.io/v1alpha1",
        "kind": "IdentityProvider",
        "metadata": {"name": "google", "namespace": "ns", "generation": generation},
        "spec": {
            "backendRef": {"name": "asgardeo"},
            "displayName": "Google",
            "google": {"clientID": "x", "clientSecretRef": {"name": "s", "key": "k"}}
        },
        "status": {"id": "i1", "observedGeneration": observed, "jit": jit}
    }))
    .expect("idp")
}

#[test]
fn the_block_check_takes_jit_from_the_gate_record_or_a_current_status_else_reads_live() {
    // (case, gate record, generation, observed generation, status jit, want)
    let cases = [
        (
            "recorded in the gate wins",
            Some(Jit::Disabled),
            2,
            Some(1),
            Some("Enabled"),
            Some(Jit::Disabled),
        ),
        (
            "current status",
            None,
            2,
            Some(2),
            Some("Enabled"),
            Some(Jit::Enabled),
        ),
        (
            "current status, off",
            None,
            2,
            Some(2),
            Some("Disabled"),
            Some(Jit::Disabled),
        ),
        (
            "status of an older spec: live",
            None,
            3,
            Some(2),
            Some("Enabled"),
            None,
        ),
        (
            "current status, skipped on lookup failure",
            None,
            2,
            Some(2),
            Some("SkippedOnLookupFailure"),
            Some(Jit::SkippedOnLookupFailure),
        ),
        ("no jit in status: live", None, 2, Some(2), None, None),
    ];
    for (name, recorded, generation, observed, jit, want) in cases {
        assert_eq!(
            known_jit(recorded, &idp(generation, observed, jit)),
            want,
            "case {name:?}"
        );
    }
}

#[test]
fn a_held_flow_outranks_a_foreign_secret_which_outranks_ready() {
    let spec = spec_with_flow(vec![]);
    assert!(outcome("app-1", &spec, &[], None).is_ready());
    let foreign = outcome(
        "app-1",
        &spec,
        &[],
        Some("Secret s belongs to someone".into()),
    );
    assert_eq!(foreign.conditions()[0].reason, "CredentialsSecretNotOwned");
    let blocked = outcome("app-1", &spec, &[held()], Some("ignored".into()));
    let c = &blocked.conditions()[0];
    assert_eq!(c.reason, "LoginFlowBlocked");
    assert!(
        c.message.contains("IdentityProvider Google (step 1)"),
        "{c:?}"
    );
}

fn spec_with_flow(steps: Vec<crate::api::application::LoginStep>) -> ApplicationSpec {
    ApplicationSpec {
        backend_ref: crate::api::common::BackendRef { name: "b".into() },
        display_name: "Payroll".into(),
        description: None,
        oidc: None,
        credentials_secret: None,
        login_flow: (!steps.is_empty()).then_some(crate::api::application::LoginFlow { steps }),
        deletion_policy: crate::api::common::DeletionPolicy::Delete,
        adopt: false,
    }
}

/// Issue 24: a skipFor that skips nobody is said on Ready (it stays True: the spec is applied).
#[test]
fn ready_names_a_skip_for_that_skips_nobody() {
    use crate::api::application::{LoginOption, LoginStep, SkipFor};
    use crate::api::common::LocalObjectRef;
    let step = |options: Vec<LoginOption>, skip: Option<&str>| LoginStep {
        options,
        skip_for: skip.map(|n| SkipFor {
            identity_providers: vec![LocalObjectRef { name: n.into() }],
            federated_users: false,
        }),
    };
    let basic = LoginOption {
        authenticator: Some("BasicAuthenticator".into()),
        identity_provider_ref: None,
    };
    let okta = LoginOption {
        authenticator: None,
        identity_provider_ref: Some(LocalObjectRef {
            name: "partner-okta".into(),
        }),
    };
    let totp = LoginOption {
        authenticator: Some("totp".into()),
        identity_provider_ref: None,
    };
    let typo = spec_with_flow(vec![
        step(vec![basic.clone(), okta.clone()], None),
        step(vec![totp.clone()], Some("partner-otka")),
    ]);
    let ready = outcome("app-1", &typo, &[], None);
    let c = &ready.conditions()[0];
    assert!(ready.is_ready(), "{c:?}");
    assert!(
        c.message
            .contains("IdentityProvider partner-otka, which no earlier step offers"),
        "{c:?}"
    );
    let fine = spec_with_flow(vec![
        step(vec![basic, okta], None),
        step(vec![totp], Some("partner-okta")),
    ]);
    assert_eq!(
        outcome("app-1", &fine, &[], None).conditions()[0].message,
        "application app-1 matches the spec"
    );
}

/// Issue 24: an IdP whose rename clashed is not resolved by its new (foreign) name.
#[test]
fn a_rename_clash_is_not_resolved_by_the_foreign_name() {
    let idp = |reason: &str, status: &str| -> IdentityProvider {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "identity-operator.io/v1alpha1", "kind": "IdentityProvider",
            "metadata": {"name": "google", "namespace": "n"},
            "spec": {"backendRef": {"name": "b"}, "displayName": "Beta",
                     "google": {"clientID": "c", "clientSecretRef": {"name": "s", "key": "k"}}},
            "status": {"id": "i1", "observedGeneration": 2, "conditions": [{
                "type": "Ready", "status": status, "reason": reason, "message": "m",
                "lastTransitionTime": "2026-12-03T00:00:00Z"}]}
        }))
        .expect("idp")
    };
    let m = rename_pending(&idp("RenameClash", "False")).expect("waits");
    assert!(m.contains("\"Beta\"") && m.contains("RenameClash"), "{m}");
    for (reason, status) in [
        ("Ready", "True"),
        ("ServerUnavailable", "False"),
        ("JITDisableBlocked", "False"),
    ] {
        assert_eq!(rename_pending(&idp(reason, status)), None, "{reason}");
    }
}

#[test]
fn secret_names_the_apiserver_refuses_are_caught_before_any_write() {
    for ok in ["wiki-oidc", "a", "a.b-c", "0abc", &"a".repeat(253)] {
        assert_eq!(invalid_secret_name(ok), None, "{ok}");
    }
    for bad in [
        "",
        "Wiki",
        "wiki_oidc",
        "-wiki",
        "wiki-",
        "a..b",
        ".a",
        "a b",
        &"a".repeat(254),
    ] {
        let why = invalid_secret_name(bad).unwrap_or_else(|| panic!("{bad:?} accepted"));
        assert!(why.contains("not a valid Secret name"), "{why}");
    }
}
