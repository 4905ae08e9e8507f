use std::path::PathBuf;

use super::*;

fn lint(path: &str) -> Report {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let docs = load_paths(&[root.join(path)]).expect("fixtures load");
    lint_documents(&docs)
}

fn messages(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .map(|f| format!("{} {}", f.location, f.problem))
        .collect()
}

#[test]
fn seed_examples_flag_exactly_the_jit_off_conflict() {
    let report = lint("examples");
    let found = messages(&report);
    assert_eq!(found.len(), 1, "{found:#?}");
    let m = &found[0];
    assert!(
        m.contains("examples/jit-off/payroll.yaml:3 (document 1)"),
        "{m}"
    );
    assert!(m.contains("InterconnectionConflict"), "{m}");
    assert!(m.contains("Application identity-jit-off/payroll"), "{m}");
    assert!(
        m.contains("IdentityProvider identity-jit-off/google"),
        "{m}"
    );
    assert!(
        m.contains("totp") && m.contains("step 2") && m.contains("step 1"),
        "{m}"
    );
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn jit_on_variant_is_clean() {
    let report = lint("examples/jit-on");
    assert!(report.findings.is_empty(), "{:#?}", messages(&report));
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.objects, 6);
}

#[test]
fn dangling_references_name_the_missing_object() {
    let found = messages(&lint("tests/fixtures/lint/dangling"));
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found.iter().any(|m| m.contains(
        "IdentityProvider team-a/github references IdentityBackend team-a/missing-backend"
    )));
    assert!(found.iter().any(
        |m| m.contains("Application team-a/wiki references IdentityBackend team-a/missing-backend")
    ));
    assert!(found
        .iter()
        .any(|m| m
            .contains("step 1 references IdentityProvider team-a/azure, which is not declared")));
}

#[test]
fn multi_document_file_with_other_kinds_and_missing_jit_block() {
    let report = lint("tests/fixtures/lint/multi-doc");
    let found = messages(&report);
    assert_eq!(
        report.objects, 3,
        "ConfigMap and Argo CD Application are ignored"
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("everything.yml:30 (document 5)"),
        "{}",
        found[0]
    );
    assert!(found[0].contains("no jit block"), "{}", found[0]);
    assert!(found[0].contains("FIDOAuthenticator"), "{}", found[0]);
}

#[test]
fn invalid_object_is_reported_with_its_place() {
    let found = messages(&lint("tests/fixtures/lint/invalid"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0]
        .contains("bad.yaml:1 (document 1) Invalid: IdentityProvider does not match the schema"));
}

#[test]
fn mfa_before_idp_and_non_local_otp_are_clean() {
    assert!(lint("tests/fixtures/lint/clean-other-kinds")
        .findings
        .is_empty());
}

#[test]
fn backend_authenticator_list_replaces_the_default() {
    let found = messages(&lint("tests/fixtures/lint/custom-authenticators"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains("sms-otp-authenticator") && found[0].contains("step 3"));
}

#[test]
fn same_display_name_twice_on_one_backend_is_invalid() {
    let text = "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityBackend\nmetadata: {name: b}\nspec: {asgardeo: {organization: a}, credentialsSecretRef: {name: s}}\n---\n\
apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {name: one}\nspec: {backendRef: {name: b}, displayName: Same, github: {clientID: x, clientSecretRef: {name: s, key: k}}}\n---\n\
apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {name: two}\nspec: {backendRef: {name: b}, displayName: Same, github: {clientID: x, clientSecretRef: {name: s, key: k}}}\n";
    let docs = load::split_documents("mem.yaml", text).expect("parses");
    let report = lint_documents(&docs);
    let found = messages(&report);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("displayName \"Same\", already used on backend b at mem.yaml:6"),
        "{}",
        found[0]
    );
}

#[test]
fn unreadable_yaml_is_a_load_error() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let err = load_paths(&[root.join("tests/fixtures/lint-unreadable.yaml")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("lint-unreadable.yaml:1 (document 1): not valid YAML"),
        "{err}"
    );
    assert!(load_paths(&[root.join("does/not/exist")]).is_err());
}

#[test]
fn document_positions_count_markers_and_inline_content() {
    let text = "# header comment\n---\na: 1\n---\n\n---\nb: 2\n--- {c: 3}\n";
    let docs = load::split_documents("f.yaml", text).expect("parses");
    let places: Vec<(usize, usize)> = docs
        .iter()
        .map(|d| (d.location.line, d.location.document))
        .collect();
    assert_eq!(places, vec![(3, 1), (7, 2), (8, 3)]);
}

#[test]
fn skip_mfa_variant_is_clean_and_without_skip_it_is_not() {
    let report = lint("examples/jit-off-skip-mfa");
    assert!(report.findings.is_empty(), "{:#?}", messages(&report));
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.objects, 3);

    // The same files without the skip: the conflict, and the remedy named in the message.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut docs = load_paths(&[root.join("examples/jit-off-skip-mfa")]).expect("examples load");
    for d in &mut docs {
        if let Some(steps) = d
            .value
            .pointer_mut("/spec/loginFlow/steps")
            .and_then(|s| s.as_array_mut())
        {
            for s in steps {
                s.as_object_mut().map(|o| o.remove("skipFor"));
            }
        }
    }
    let found = messages(&lint_documents(&docs));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("Enable JIT on partner-okta"),
        "{}",
        found[0]
    );
    assert!(
        found[0].contains("skipFor: {identityProviders: [{name: partner-okta}]} to step 2"),
        "{}",
        found[0]
    );
}

#[test]
fn jit_skipped_on_lookup_failure_is_a_conflict_with_its_own_remedy() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let with_jit = |jit: serde_json::Value| {
        let mut docs = load_paths(&[root.join("examples/jit-on")]).expect("examples load");
        for d in &mut docs {
            if d.value["kind"] == "IdentityProvider" {
                d.value["spec"]["jit"] = jit.clone();
            }
        }
        messages(&lint_documents(&docs))
    };
    let lookup = serde_json::json!([{"localAttribute": "http://wso2.org/claims/emailaddress", "federatedAttribute": "email"}]);
    // (case, jit, conflict)
    let cases = [
        (
            "on with lookup, skip on",
            serde_json::json!({"enabled": true, "accountLookup": lookup, "skipForLookupFailure": true}),
            true,
        ),
        (
            "on with lookup, skip off",
            serde_json::json!({"enabled": true, "accountLookup": lookup, "skipForLookupFailure": false}),
            false,
        ),
        (
            "on with lookup, skip undeclared",
            serde_json::json!({"enabled": true, "accountLookup": lookup}),
            false,
        ),
    ];
    for (name, jit, conflict) in cases {
        let found = with_jit(jit);
        if !conflict {
            assert!(found.is_empty(), "{name}: {found:#?}");
            continue;
        }
        assert_eq!(found.len(), 1, "{name}: {found:#?}");
        let m = &found[0];
        for needle in [
            "InterconnectionConflict",
            "skipForLookupFailure: true with accountLookup",
            "that no local account matches",
            "step 2 offers totp",
            "Turn skipForLookupFailure off in the jit on google",
            "skipFor: {identityProviders: [{name: google}]} to step 2",
        ] {
            assert!(m.contains(needle), "{name}: {needle:?} missing in {m}");
        }
        assert!(!m.contains("Enable JIT"), "{name}: {m}");
    }
}
