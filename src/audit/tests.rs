use super::*;
use crate::export::tests::{app, google, idp, tenant};

const API: &str = "https://api.asgardeo.io/t/acme/api/server/v1/";

fn conflicts(snapshot: &TenantSnapshot, needs_local: &LocalAccountAuthenticators) -> Vec<String> {
    audit_snapshot(snapshot, API, "identity", needs_local)
        .findings
        .iter()
        .map(|f| format!("{} {}", f.location, f.problem))
        .collect()
}

#[test]
fn every_application_and_every_idp_on_the_server_counts() {
    let found = conflicts(&tenant(), &LocalAccountAuthenticators::default());
    // Payroll (Google, JIT off, then totp) and Legacy (Okta, which export cannot express, then totp).
    assert_eq!(found.len(), 2, "{found:#?}");
    // Named as the console names them, with their ids; the Kubernetes names only as what export writes.
    assert!(found[0].starts_with(&format!("{API}applications/id-Legacy InterconnectionConflict: Application \"Legacy\" (id id-Legacy; export writes it as identity/legacy) step 1 offers IdentityProvider \"Okta\" (id id-Okta; export writes it as identity/okta), which has JIT provisioning disabled")), "{}", found[0]);
    assert!(
        found[1].contains(
            "Application \"Payroll\" (id id-Payroll; export writes it as identity/payroll) step 1 offers IdentityProvider \"Google\""
        ),
        "{}",
        found[1]
    );
    assert!(
        found[1].contains("step 2 offers totp, which needs a local account"),
        "{}",
        found[1]
    );
}

#[test]
fn table() {
    let local = LocalAccountAuthenticators::default();
    let duo_only = LocalAccountAuthenticators::from_names(["DuoAuthenticator"]);
    let cases: Vec<(&str, TenantSnapshot, &LocalAccountAuthenticators, usize)> = vec![
        (
            "jit on: clean",
            TenantSnapshot {
                idps: vec![google("Google", true)],
                applications: vec![app(
                    "A",
                    &[
                        &[("Google", "GoogleOIDCAuthenticator")],
                        &[("LOCAL", "totp")],
                    ],
                    None,
                )],
            },
            &local,
            0,
        ),
        (
            "alternatives in one step: clean",
            TenantSnapshot {
                idps: vec![google("Google", false)],
                applications: vec![app(
                    "A",
                    &[&[("Google", "GoogleOIDCAuthenticator"), ("LOCAL", "totp")]],
                    None,
                )],
            },
            &local,
            0,
        ),
        (
            "mfa before the idp: clean",
            TenantSnapshot {
                idps: vec![google("Google", false)],
                applications: vec![app(
                    "A",
                    &[
                        &[("LOCAL", "totp")],
                        &[("Google", "GoogleOIDCAuthenticator")],
                    ],
                    None,
                )],
            },
            &local,
            0,
        ),
        (
            "default flow: not the application's own",
            TenantSnapshot {
                idps: vec![google("Google", false)],
                applications: vec![app("A", &[], None)],
            },
            &local,
            0,
        ),
        (
            "a connector second factor counts when listed",
            TenantSnapshot {
                idps: vec![
                    google("Google", false),
                    idp("Duo", "DuoAuthenticator", &[], false),
                ],
                applications: vec![app(
                    "A",
                    &[
                        &[("Google", "GoogleOIDCAuthenticator")],
                        &[("Duo", "DuoAuthenticator")],
                    ],
                    None,
                )],
            },
            &duo_only,
            1,
        ),
        (
            "the list replaces the default",
            TenantSnapshot {
                idps: vec![google("Google", false)],
                applications: vec![app(
                    "A",
                    &[
                        &[("Google", "GoogleOIDCAuthenticator")],
                        &[("LOCAL", "totp")],
                    ],
                    None,
                )],
            },
            &duo_only,
            0,
        ),
        (
            "a script does not hide a conflict",
            TenantSnapshot {
                idps: vec![google("Google", false)],
                applications: vec![app(
                    "A",
                    &[
                        &[("Google", "GoogleOIDCAuthenticator")],
                        &[("LOCAL", "FIDOAuthenticator")],
                    ],
                    Some("executeStep(1);"),
                )],
            },
            &local,
            1,
        ),
    ];
    for (what, snap, needs, want) in cases {
        let found = conflicts(&snap, needs);
        assert_eq!(found.len(), want, "{what}: {found:#?}");
    }
}

#[test]
fn audit_says_what_lint_of_the_export_says() {
    // Only exportable objects, so lint sees everything audit sees.
    let snap = TenantSnapshot {
        idps: vec![google("Google", false), google("Second Google", false)],
        applications: vec![
            app(
                "Payroll",
                &[
                    &[("Google", "GoogleOIDCAuthenticator")],
                    &[("LOCAL", "totp"), ("LOCAL", "backup-code-authenticator")],
                ],
                None,
            ),
            app(
                "HR",
                &[
                    &[("LOCAL", "BasicAuthenticator")],
                    &[("Second Google", "GoogleOIDCAuthenticator")],
                    &[("LOCAL", "email-otp-authenticator")],
                ],
                None,
            ),
        ],
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = crate::export::plan(&snap, &crate::export::tests::options());
    crate::export::write(dir.path(), &plan, "https://x/t/acme/", "identity", "id").expect("writes");
    let docs = crate::lint::load_paths(&[dir.path().to_path_buf()]).expect("loads");
    let linted = crate::lint::lint_documents(&docs);
    let audited = audit_snapshot(
        &snap,
        API,
        "identity",
        &LocalAccountAuthenticators::default(),
    );
    assert_eq!(audited.findings.len(), 3);
    assert_eq!(without_places(&linted), without_places(&audited));
}

/// Messages as both commands word them alike: from the steps on ([`crate::lint::from_the_steps_on`]).
pub(crate) fn without_places(r: &Report) -> Vec<String> {
    let mut v: Vec<String> = r
        .findings
        .iter()
        .map(|f| crate::lint::from_the_steps_on(&f.problem.to_string()))
        .collect();
    v.sort();
    v
}

/// Google with JIT on, an account lookup, and the skip on lookup failure as given.
fn google_lookup(name: &str, skip: bool) -> crate::backend::inventory::IdpDetail {
    let mut g = google(name, true);
    g.jit.account_lookup = vec![crate::backend::wire::AccountLookupAttributeMapping {
        local_attribute: Some("http://wso2.org/claims/emailaddress".into()),
        federated_attribute: Some("email".into()),
    }];
    g.jit.skip_jit_for_lookup_failure = Some(skip);
    g
}

#[test]
fn jit_skipped_on_lookup_failure_is_a_conflict_and_lint_of_the_export_agrees() {
    let flow: &[&[(&str, &str)]] = &[
        &[("Google", "GoogleOIDCAuthenticator")],
        &[("LOCAL", "totp")],
    ];
    let snap = |skip: bool| TenantSnapshot {
        idps: vec![google_lookup("Google", skip)],
        applications: vec![app("Payroll", flow, None)],
    };
    let local = LocalAccountAuthenticators::default();
    assert!(
        conflicts(&snap(false), &local).is_empty(),
        "the lookup without the skip provisions everyone"
    );
    let found = conflicts(&snap(true), &local);
    assert_eq!(found.len(), 1, "{found:#?}");
    for needle in [
        "IdentityProvider \"Google\"",
        "has JIT provisioning skipped on lookup failure",
        "step 2 offers totp",
        "Turn skipForLookupFailure off in the jit on google",
    ] {
        assert!(
            found[0].contains(needle),
            "{needle:?} missing in {}",
            found[0]
        );
    }
    // export writes the lookup and the skip; lint of it finds the same conflict.
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = crate::export::plan(&snap(true), &crate::export::tests::options());
    crate::export::write(dir.path(), &plan, "https://x/t/acme/", "identity", "id").expect("writes");
    let docs = crate::lint::load_paths(&[dir.path().to_path_buf()]).expect("loads");
    let linted = crate::lint::lint_documents(&docs);
    let audited = audit_snapshot(&snap(true), API, "identity", &local);
    assert_eq!(audited.findings.len(), 1);
    assert_eq!(without_places(&linted), without_places(&audited));
}

#[test]
fn a_lookup_by_a_claim_the_mappings_do_not_map_is_reported_and_export_keeps_the_mappings() {
    use crate::backend::ClaimMap;
    let email = "http://wso2.org/claims/emailaddress";
    let snap = |local_claim: &str| {
        let mut g = google_lookup("Google", false);
        g.idp.mappings.claim_mappings = vec![ClaimMap {
            idp_claim: "mail".into(),
            local_claim: local_claim.into(),
        }];
        TenantSnapshot {
            idps: vec![g],
            applications: vec![],
        }
    };
    let local = LocalAccountAuthenticators::default();
    assert!(
        conflicts(&snap(email), &local).is_empty(),
        "the lookup claim is mapped"
    );
    let found = conflicts(&snap("http://wso2.org/claims/mobile"), &local);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("identity-providers/id-Google Invalid: IdentityProvider \"Google\""),
        "{}",
        found[0]
    );
    assert!(
        found[0].contains(&format!("looks federated users up by {email}")),
        "{}",
        found[0]
    );
    // The mappings reach the exported spec as the CRD spells them.
    let plan = crate::export::plan(&snap(email), &crate::export::tests::options());
    let spec = serde_json::to_value(&plan.idps[0].2.spec).expect("spec");
    assert_eq!(
        spec["claims"],
        serde_json::json!({"mappings": [{"idpClaim": "mail", "localClaim": email}]})
    );
}

/// A certificate (PEM) that is only a test value: the audit compares text, never parses it.
fn pem(body: &str) -> String {
    format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----")
}

#[test]
fn a_declared_certificate_that_differs_from_the_servers_is_drift() {
    use crate::backend::IdpCertificate;
    let (a, b) = (pem("QUFB"), pem("QkJC"));
    let oidc = |cert: &str| {
        format!("oidc: {{clientID: c, clientSecretRef: {{name: s, key: k}}, authorizationEndpoint: https://x/a, tokenEndpoint: https://x/t{cert}}}")
    };
    let saml = |cert: &str| {
        format!("saml: {{idpEntityID: e, ssoURL: https://x/sso, spEntityID: sp{cert}}}")
    };
    let jwks = |u: &str| IdpCertificate {
        jwks_uri: Some(u.into()),
        ..Default::default()
    };
    let pems = |c: &[&String]| IdpCertificate {
        certificates: c.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    };
    let certs = |c: &[&String]| {
        let list: Vec<String> = c.iter().map(|p| format!("{p:?}")).collect();
        format!(", certificates: [{}]", list.join(", "))
    };
    // (case, declared provider block, declared name, server certificate, expected message piece)
    let cases: Vec<(&str, String, &str, IdpCertificate, Option<&str>)> = vec![
        ("same JWKS URI", oidc(", jwksURI: https://x/jwks"), "Corp", jwks("https://x/jwks"), None),
        (
            "another JWKS URI",
            oidc(", jwksURI: https://x/jwks"),
            "Corp",
            jwks("https://x/old-jwks"),
            Some("declares JWKS URI https://x/jwks, but the server's \"Corp\" (https://api.asgardeo.io/t/acme/api/server/v1/identity-providers/id-Corp) has JWKS URI https://x/old-jwks: the operator will rewrite it (1 certificate change(s))"),
        ),
        ("same certificates", oidc(&certs(&[&a, &b])), "Corp", pems(&[&a, &b]), None),
        (
            "certificates in another order",
            oidc(&certs(&[&a, &b])),
            "Corp",
            pems(&[&b, &a]),
            Some("declares 2 certificate(s), but the server's \"Corp\""),
        ),
        (
            "certificates where the server has a JWKS URI",
            oidc(&certs(&[&a])),
            "Corp",
            jwks("https://x/jwks"),
            Some("has JWKS URI https://x/jwks"),
        ),
        (
            "a SAML metadata URI where the server has a certificate",
            saml(", metadataURI: https://x/metadata"),
            "Corp",
            pems(&[&a]),
            Some("declares SAML metadata URI https://x/metadata, but the server's \"Corp\" (https://api.asgardeo.io/t/acme/api/server/v1/identity-providers/id-Corp) has 1 other certificate(s)"),
        ),
        (
            "a SAML certificate where the server has none",
            saml(&certs(&[&a])),
            "Corp",
            IdpCertificate::default(),
            Some("has no certificate"),
        ),
        ("no certificate declared: not managed", saml(""), "Corp", pems(&[&a]), None),
        ("not on the server", oidc(", jwksURI: https://x/jwks"), "Elsewhere", jwks("https://x/old"), None),
    ];
    for (case, block, name, server_cert, want) in cases {
        let yaml = format!(
            "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {{name: corp, namespace: identity}}\nspec:\n  backendRef: {{name: asgardeo}}\n  displayName: {name}\n  {block}\n"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("idps.yaml"), &yaml).expect("write");
        let docs = crate::lint::load_paths(&[dir.path().to_path_buf()]).expect(case);
        let declared = declared_idps(&docs);
        assert_eq!(declared.len(), 1, "{case}: the manifest parses");
        let mut server = idp(
            "Corp",
            "OpenIDConnectAuthenticator",
            &[("ClientId", "c")],
            true,
        );
        server.idp.certificate = Box::new(server_cert);
        let snap = TenantSnapshot {
            idps: vec![server],
            applications: vec![],
        };
        let found: Vec<String> = certificate_drift(&declared, &snap, API)
            .iter()
            .map(|f| format!("{} {}", f.location, f.problem))
            .collect();
        match want {
            None => assert!(found.is_empty(), "{case}: {found:#?}"),
            Some(piece) => {
                assert_eq!(found.len(), 1, "{case}: {found:#?}");
                assert!(
                    found[0].contains("idps.yaml")
                        && found[0].contains("Drift: IdentityProvider identity/corp "),
                    "{case}: {}",
                    found[0]
                );
                assert!(
                    found[0].contains(piece),
                    "{case}: {piece:?} missing in {}",
                    found[0]
                );
            }
        }
    }
}

#[test]
fn an_apple_idp_without_jit_before_totp_is_a_conflict_in_audit_and_in_lint_of_the_export() {
    let apple = |jit: bool| {
        idp(
            "Apple",
            "AppleOIDCAuthenticator",
            &[
                ("ClientId", "com.example.web"),
                ("TeamId", "TEAM123456"),
                ("KeyId", "KEY1234567"),
                ("Scopes", "name email"),
            ],
            jit,
        )
    };
    let snap = |jit: bool| TenantSnapshot {
        idps: vec![apple(jit)],
        applications: vec![app(
            "Shop",
            &[
                &[
                    ("LOCAL", "BasicAuthenticator"),
                    ("Apple", "AppleOIDCAuthenticator"),
                ],
                &[("LOCAL", "totp")],
            ],
            None,
        )],
    };
    let local = LocalAccountAuthenticators::default();
    assert!(conflicts(&snap(true), &local).is_empty(), "JIT on: clean");
    let audited = audit_snapshot(&snap(false), API, "identity", &local);
    assert_eq!(audited.findings.len(), 1, "{:#?}", audited.findings);
    assert!(
        audited.findings[0]
            .problem
            .to_string()
            .contains("IdentityProvider \"Apple\""),
        "{}",
        audited.findings[0].problem
    );
    // export writes spec.apple; lint of it finds the same conflict.
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = crate::export::plan(&snap(false), &crate::export::tests::options());
    assert_eq!(plan.idps.len(), 1, "Apple is exported");
    assert!(plan.idps[0].2.spec.apple.is_some());
    crate::export::write(dir.path(), &plan, "https://x/t/acme/", "identity", "id").expect("writes");
    let docs = crate::lint::load_paths(&[dir.path().to_path_buf()]).expect("loads");
    let linted = crate::lint::lint_documents(&docs);
    assert_eq!(without_places(&linted), without_places(&audited));
}
