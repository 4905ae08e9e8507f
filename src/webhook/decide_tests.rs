use std::sync::Arc;

use super::*;

/// An IdentityProvider `name` (Google) on backend `backend`, with its JIT block (`None`: none),
/// its policy and, when `on_server` is set, a status saying it is on the server with that JIT.
fn idp(
    name: &str,
    backend: &str,
    jit: Option<&str>,
    policy: &str,
    on_server: Option<&str>,
) -> Arc<IdentityProvider> {
    let jit = jit.map(|j| format!("jit: {j}")).unwrap_or_default();
    let mut obj: IdentityProvider = serde_saphyr::from_str(&format!(
        r#"
apiVersion: identity-operator.io/v1alpha1
kind: IdentityProvider
metadata: {{name: {name}, namespace: ns, generation: 1}}
spec:
  backendRef: {{name: {backend}}}
  displayName: {name}-server
  google: {{clientID: c, clientSecretRef: {{name: s, key: k}}}}
  conflictPolicy: {policy}
  {jit}
"#
    ))
    .expect("idp yaml");
    if let Some(j) = on_server {
        obj.status = Some(crate::api::IdentityProviderStatus {
            id: Some("id-1".into()),
            jit: Some(j.into()),
            observed_generation: Some(1),
            ..Default::default()
        });
    }
    Arc::new(obj)
}

/// An Application on backend `asgardeo` with `steps` (YAML flow list of steps), or no flow.
fn app(steps: Option<&str>) -> Application {
    let flow = steps
        .map(|s| format!("loginFlow: {{steps: {s}}}"))
        .unwrap_or_default();
    serde_saphyr::from_str(&format!(
        r#"
apiVersion: identity-operator.io/v1alpha1
kind: Application
metadata: {{name: payroll, namespace: ns}}
spec:
  backendRef: {{name: asgardeo}}
  displayName: Payroll
  {flow}
"#
    ))
    .expect("app yaml")
}

const PASSWORD: &str = "[{options: [{authenticator: BasicAuthenticator}]}]";
const GOOGLE_TOTP: &str = "[{options: [{authenticator: BasicAuthenticator}, {identityProviderRef: {name: google}}]}, {options: [{authenticator: totp}]}]";
const GOOGLE_ONLY: &str =
    "[{options: [{authenticator: BasicAuthenticator}, {identityProviderRef: {name: google}}]}]";
const GOOGLE_TOTP_SKIPPED: &str = "[{options: [{authenticator: BasicAuthenticator}, {identityProviderRef: {name: google}}]}, {options: [{authenticator: totp}], skipFor: {identityProviders: [{name: google}]}}]";
const TOTP_THEN_GOOGLE: &str =
    "[{options: [{authenticator: totp}]}, {options: [{identityProviderRef: {name: google}}]}]";
const GOOGLE_AND_TOTP_ONE_STEP: &str =
    "[{options: [{identityProviderRef: {name: google}}, {authenticator: totp}]}]";
const GOOGLE_EMAIL_OTP: &str = "[{options: [{identityProviderRef: {name: google}}]}, {options: [{authenticator: email-otp-authenticator}]}]";
const GOOGLE_TOTP_PASSKEY: &str = "[{options: [{identityProviderRef: {name: google}}]}, {options: [{authenticator: totp}, {authenticator: FIDOAuthenticator}]}]";

#[derive(Debug, PartialEq)]
enum Want {
    Allow,
    Warn(usize),
    Deny(usize),
}

/// (case, IdP's JIT block, policy, JIT on the server, IdP's backend, old flow, new flow, expected)
type Row = (
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Want,
);

#[test]
fn a_new_local_account_step_after_an_idp_without_jit_is_denied_under_block_and_warned_under_warn() {
    let off = Some("{enabled: false}");
    let on = Some("{enabled: true}");
    let lookup_skip = Some("{enabled: true, skipForLookupFailure: true, accountLookup: [{localAttribute: 'http://wso2.org/claims/emailaddress', federatedAttribute: email}]}");
    let table: Vec<Row> = vec![
        ("create: totp after JIT-off google, Block", off, "Block", None, "asgardeo", None, Some(GOOGLE_TOTP), Want::Deny(1)),
        ("create: totp after JIT-off google, Warn", off, "Warn", None, "asgardeo", None, Some(GOOGLE_TOTP), Want::Warn(1)),
        ("create: no JIT block counts as off", None, "Block", None, "asgardeo", None, Some(GOOGLE_TOTP), Want::Deny(1)),
        ("create: JIT on", on, "Block", Some("Enabled"), "asgardeo", None, Some(GOOGLE_TOTP), Want::Allow),
        ("create: JIT on, not on the server yet", on, "Block", None, "asgardeo", None, Some(GOOGLE_TOTP), Want::Allow),
        ("create: declared on, server off (weaker wins)", on, "Block", Some("Disabled"), "asgardeo", None, Some(GOOGLE_TOTP), Want::Deny(1)),
        ("create: declared off, server still on (Block held it)", off, "Block", Some("Enabled"), "asgardeo", None, Some(GOOGLE_TOTP), Want::Deny(1)),
        ("create: JIT skipped on lookup failure", lookup_skip, "Block", None, "asgardeo", None, Some(GOOGLE_TOTP), Want::Deny(1)),
        ("create: server skips on lookup failure", on, "Block", Some("SkippedOnLookupFailure"), "asgardeo", None, Some(GOOGLE_TOTP), Want::Deny(1)),
        ("create: skipFor the IdP's users", off, "Block", None, "asgardeo", None, Some(GOOGLE_TOTP_SKIPPED), Want::Allow),
        ("create: local step before the IdP", off, "Block", None, "asgardeo", None, Some(TOTP_THEN_GOOGLE), Want::Allow),
        ("create: alternatives in one step", off, "Block", None, "asgardeo", None, Some(GOOGLE_AND_TOTP_ONE_STEP), Want::Allow),
        ("create: email OTP needs a local account", off, "Block", None, "asgardeo", None, Some(GOOGLE_EMAIL_OTP), Want::Deny(1)),
        ("create: two local-account options, two conflicts", off, "Block", None, "asgardeo", None, Some(GOOGLE_TOTP_PASSKEY), Want::Deny(2)),
        ("create: no IdP at all", off, "Block", None, "asgardeo", None, Some(PASSWORD), Want::Allow),
        ("create: no flow", off, "Block", None, "asgardeo", None, None, Want::Allow),
        ("create: IdP on another backend (the reconciler reports it)", off, "Block", None, "other", None, Some(GOOGLE_TOTP), Want::Allow),
        ("update: adds totp after google", off, "Block", None, "asgardeo", Some(GOOGLE_ONLY), Some(GOOGLE_TOTP), Want::Deny(1)),
        ("update: adds google before totp", off, "Block", None, "asgardeo", Some(PASSWORD), Some(GOOGLE_TOTP), Want::Deny(1)),
        ("update: the flow did not change (an existing conflict is not new)", off, "Block", None, "asgardeo", Some(GOOGLE_TOTP), Some(GOOGLE_TOTP), Want::Allow),
        ("update: removes the skip", off, "Block", None, "asgardeo", Some(GOOGLE_TOTP_SKIPPED), Some(GOOGLE_TOTP), Want::Deny(1)),
        ("update: adds the skip", off, "Block", None, "asgardeo", Some(GOOGLE_TOTP), Some(GOOGLE_TOTP_SKIPPED), Want::Allow),
        ("update: keeps an existing conflict, adds a second", off, "Block", None, "asgardeo", Some("[{options: [{identityProviderRef: {name: google}}]}, {options: [{authenticator: totp}]}]"), Some(GOOGLE_TOTP_PASSKEY), Want::Deny(1)),
        ("update: drops the conflicting step", off, "Block", None, "asgardeo", Some(GOOGLE_TOTP), Some(GOOGLE_ONLY), Want::Allow),
    ];
    let needs_local = LocalAccountAuthenticators::default();
    for (case, jit, policy, on_server, backend, old, new, want) in table {
        let google = idp("google", backend, jit, policy, on_server);
        let lookup = |name: &str| (name == "google").then(|| google.clone());
        let old_app = old.map(|o| app(Some(o)));
        let d = decide(&app(new), old_app.as_ref(), lookup, &needs_local);
        let got = match (d.denied.len(), d.warned.len()) {
            (0, 0) => Want::Allow,
            (0, n) => Want::Warn(n),
            (n, _) => Want::Deny(n),
        };
        assert_eq!(got, want, "{case}: {d:?}");
        assert_eq!(d.allowed(), !matches!(want, Want::Deny(_)), "{case}");
    }
}

#[test]
fn an_idp_missing_from_the_cache_is_never_a_reason_to_deny() {
    let d = decide(
        &app(Some(GOOGLE_TOTP)),
        None,
        |_| None,
        &LocalAccountAuthenticators::default(),
    );
    assert_eq!(d, Decision::default());
}

#[test]
fn a_deletion_or_a_metadata_edit_is_never_decided() {
    let google = idp(
        "google",
        "asgardeo",
        Some("{enabled: false}"),
        "Block",
        None,
    );
    let lookup = |_: &str| Some(google.clone());
    let mut deleting = app(Some(GOOGLE_TOTP));
    deleting.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
    );
    let needs = LocalAccountAuthenticators::default();
    assert!(decide(&deleting, None, lookup, &needs).allowed());
    let mut labelled = app(Some(GOOGLE_TOTP));
    labelled.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
    assert!(decide(&labelled, Some(&app(Some(GOOGLE_TOTP))), lookup, &needs).allowed());
}

#[test]
fn the_backends_own_list_of_local_account_authenticators_decides() {
    let google = idp(
        "google",
        "asgardeo",
        Some("{enabled: false}"),
        "Block",
        None,
    );
    let lookup = |_: &str| Some(google.clone());
    let only_passkeys = LocalAccountAuthenticators::from_names(["FIDOAuthenticator"]);
    assert!(decide(&app(Some(GOOGLE_TOTP)), None, lookup, &only_passkeys).allowed());
    assert!(!decide(
        &app(Some(GOOGLE_TOTP_PASSKEY)),
        None,
        lookup,
        &only_passkeys
    )
    .allowed());
}

#[test]
fn messages_name_the_identity_provider_by_its_kubernetes_name_with_step_and_remedy() {
    let needs = LocalAccountAuthenticators::default();
    let google = idp(
        "google",
        "asgardeo",
        Some("{enabled: false}"),
        "Block",
        None,
    );
    let d = decide(
        &app(Some(GOOGLE_TOTP)),
        None,
        |_: &str| Some(google.clone()),
        &needs,
    );
    let m = d.message();
    for part in [
        "refused (conflictPolicy: Block)",
        "IdentityProvider google (step 1)",
        "JIT provisioning is disabled",
        "step 2 offers totp",
        "skipFor",
        "conflictPolicy: Warn",
    ] {
        assert!(m.contains(part), "{part:?} not in {m}");
    }
    assert!(!m.contains("google-server"), "{m}");
    assert!(d.warnings().is_empty());

    let warn = idp("google", "asgardeo", Some("{enabled: false}"), "Warn", None);
    let d = decide(
        &app(Some(GOOGLE_TOTP)),
        None,
        |_: &str| Some(warn.clone()),
        &needs,
    );
    assert_eq!(d.message(), "");
    let w = d.warnings();
    assert_eq!(w.len(), 1);
    assert!(
        w[0].contains("IdentityProvider google (step 1)") && w[0].contains("conflictPolicy: Warn"),
        "{w:?}"
    );
}

#[test]
fn admission_takes_the_weaker_of_declared_and_recorded_jit() {
    let table = [
        (Some("{enabled: true}"), None, Jit::Enabled),
        (Some("{enabled: true}"), Some("Disabled"), Jit::Disabled),
        (Some("{enabled: false}"), Some("Enabled"), Jit::Disabled),
        (None, Some("Enabled"), Jit::Missing),
        (
            Some("{enabled: true}"),
            Some("SkippedOnLookupFailure"),
            Jit::SkippedOnLookupFailure,
        ),
        (Some("{enabled: true}"), Some("SomethingNew"), Jit::Enabled),
    ];
    for (jit, on_server, want) in table {
        assert_eq!(
            admission_jit(&idp("g", "b", jit, "Block", on_server)),
            want,
            "{jit:?} {on_server:?}"
        );
    }
}
