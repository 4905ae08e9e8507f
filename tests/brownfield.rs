//! Bringing an existing tenant under Git, end to end: seed the emulator over its REST API as a console
//! user would have, `export` it, create the Secrets the export's README lists, apply the files to a
//! real kube-apiserver with the operator running, and prove from the emulator's request counters and
//! its state that adoption created, deleted and changed nothing. Then `lint` of the exported folder
//! and `audit` of the live tenant must report the same conflicts.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use common::{wait_until, TestEnv, CLIENT_ID, TENANT};
use identity_emulator::TenantState;
use identity_operator::backend::asgardeo::{AsgardeoClient, AsgardeoConfig, Target};
use identity_operator::backend::operation::{Operation, SCRIPT_SCOPE};
use identity_operator::backend::{
    wire, AttributeSyncMethod, ClaimMap, DefaultClaim, FederatedAuthenticator, FlowOption,
    FlowStep, FlowUpdate, IdentityServer, Jit, JitScheme, MappingsChange, NewApplication, NewIdp,
    OidcChange, Property, RoleMap, Secret,
};
use identity_operator::controller::managed::{marker, strip_markers};
use serde_json::Value;

const T: Duration = Duration::from_secs(90);

/// Secret values the seed puts on the server; none may appear in any output.
const GOOGLE_SECRET: &str = "seeded-google-client-secret-value";
const GITHUB_SECRET: &str = "seeded-github-client-secret-value";
const FACEBOOK_SECRET: &str = "seeded-facebook-client-secret-value";
const CORP_OIDC_SECRET: &str = "seeded-corp-oidc-client-secret-value";
const APPLE_PRIVATE_KEY: &str = "seeded-apple-private-key-value";
/// The client secret the server signed from Apple's private key at a login (a JWT).
const APPLE_SIGNED_SECRET: &str = "seeded-apple-signed-client-secret";
/// The signing certificate of Corp SAML (self-signed, test only): the server returns it
/// base64-encoded, export must write it back as this PEM.
const CORP_SAML_CERT: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBizCCATGgAwIBAgIUWBUWqI8lAbcSWNCiLN/5Fy6O6zQwCgYIKoZIzj0EAwIw\n\
GzEZMBcGA1UEAwwQc3NvLmNvcnAuZXhhbXBsZTAeFw0yNjEyMDMxNDA3MjZaFw0z\n\
NjExMzAxNDA3MjZaMBsxGTAXBgNVBAMMEHNzby5jb3JwLmV4YW1wbGUwWTATBgcq\n\
hkjOPQIBBggqhkjOPQMBBwNCAASkGpe46J9CEcusgdSQxKpUbIAZoKnVm8Z3peWx\n\
hOWRMb9YH6MgJ9HDkb4Ri/kaYL1EKlkdwxfPH7hpIgoL4iq6o1MwUTAdBgNVHQ4E\n\
FgQUCA6JYczE2qOjHo1siXRIelT45e0wHwYDVR0jBBgwFoAUCA6JYczE2qOjHo1s\n\
iXRIelT45e0wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiBLZLZW\n\
rRTvXMHm4ISj/CZmMV3aNxpCQ28HqkjDM28dCAIhAKGEo06gnYr7jIvQNwkLMSnD\n\
jp2CN28CGy9Nf+OOBin/\n\
-----END CERTIFICATE-----";

fn jit(enabled: bool) -> Jit {
    Jit {
        enabled,
        scheme: JitScheme::ProvisionSilently,
        userstore: "DEFAULT".into(),
        associate_local_user: false,
        attribute_sync_method: AttributeSyncMethod::OverrideAll,
        skip_jit_for_lookup_failure: None,
        idp_group_sync_method: None,
        account_lookup: vec![],
    }
}

fn authenticator(name: &str, props: &[(&str, &str)]) -> FederatedAuthenticator {
    FederatedAuthenticator {
        authenticator_id: wire::authenticator_id(name),
        name: None,
        is_enabled: true,
        is_default: true,
        properties: props.iter().map(|(k, v)| Property::new(*k, *v)).collect(),
    }
}

fn step(options: &[(&str, &str)]) -> FlowStep {
    FlowStep {
        options: options
            .iter()
            .map(|(idp, a)| FlowOption {
                idp: (*idp).into(),
                authenticator: (*a).into(),
            })
            .collect(),
    }
}

/// The claim, role and group mappings the console gave some IdPs (issue 21): Google maps claims
/// (with a user id claim and a provisioning default), GitHub uses the local claim dialect (a role
/// claim and a local provisioning default), Corp SAML maps roles and lists groups.
fn console_mappings(idp: &str) -> Option<MappingsChange> {
    let claim = |i: &str, l: &str| ClaimMap {
        idp_claim: i.into(),
        local_claim: l.into(),
    };
    let default = |c: &str, v: &str| DefaultClaim {
        claim: c.into(),
        default_value: v.into(),
    };
    let role = |i: &str, l: &str| RoleMap {
        idp_role: i.into(),
        local_role: l.into(),
    };
    Some(match idp {
        "Google" => MappingsChange {
            user_id_claim: Some("email".into()),
            claim_mappings: Some(vec![
                claim("email", "http://wso2.org/claims/emailaddress"),
                claim("given_name", "http://wso2.org/claims/givenname"),
            ]),
            provisioning_claims: Some(vec![default("given_name", "Staff")]),
            role_mappings: Some(vec![role("google-admins", "admin")]),
            groups: Some(vec!["google-admins".into(), "google-staff".into()]),
            ..Default::default()
        },
        "GitHub" => MappingsChange {
            role_claim: Some("http://wso2.org/claims/role".into()),
            claim_mappings: Some(vec![]),
            provisioning_claims: Some(vec![default("http://wso2.org/claims/country", "LK")]),
            ..Default::default()
        },
        "Facebook" => MappingsChange {
            claim_mappings: Some(vec![claim("email", "http://wso2.org/claims/emailaddress")]),
            ..Default::default()
        },
        "Corp SAML" => MappingsChange {
            role_mappings: Some(vec![role("corp-hr", "hr"), role("corp-it", "PRIMARY/it")]),
            groups: Some(vec!["corp-all".into()]),
            ..Default::default()
        },
        _ => return None,
    })
}

/// What a team made in the console: a live conflict (Google without JIT before TOTP), an IdP type the
/// resources cannot express (Okta, JIT on, so no conflict), a SAML IdP, a hand-written script, and an
/// application on the tenant's default flow. All over the emulator's management API.
async fn seed(env: &TestEnv) {
    let target = Target::Wso2IdentityServer {
        url: env.emulator.url(),
        tenant: TENANT.into(),
    };
    let mut config = AsgardeoConfig::new(target, CLIENT_ID, Secret::new(env.client_secret.clone()));
    config.scopes.push(SCRIPT_SCOPE.into());
    let console = AsgardeoClient::new(config, None).expect("client");
    let idps = [
        (
            "Google",
            authenticator(
                "GoogleOIDCAuthenticator",
                &[
                    ("ClientId", "123.apps.example"),
                    ("ClientSecret", GOOGLE_SECRET),
                    ("AdditionalQueryParameters", "scope=openid email profile"),
                ],
            ),
            false,
        ),
        (
            "GitHub",
            authenticator(
                "GithubAuthenticator",
                &[
                    ("ClientId", "gh-client"),
                    ("ClientSecret", GITHUB_SECRET),
                    ("scope", "read:user user:email"),
                ],
            ),
            true,
        ),
        (
            "Corp SAML",
            authenticator(
                "SAMLSSOAuthenticator",
                &[
                    ("IdPEntityId", "corp-idp"),
                    ("SSOUrl", "https://sso.corp.example/saml"),
                    ("SPEntityId", "acme"),
                    ("ISAuthnReqSigned", "true"),
                ],
            ),
            false,
        ),
        (
            "Okta",
            authenticator("OktaAuthenticator", &[("ClientId", "okta-client")]),
            true,
        ),
        // A standard OIDC IdP with every endpoint the resource can hold (export dropped these when
        // it took OAuth2TokenEPUrl for a secret).
        (
            "Corp OIDC",
            authenticator(
                "OpenIDConnectAuthenticator",
                &[
                    ("ClientId", "corp-oidc-client"),
                    ("ClientSecret", CORP_OIDC_SECRET),
                    ("OAuth2AuthzEPUrl", "https://login.corp.example/authorize"),
                    ("OAuth2TokenEPUrl", "https://login.corp.example/token"),
                    ("UserInfoUrl", "https://login.corp.example/userinfo"),
                    ("OIDCLogoutEPUrl", "https://login.corp.example/logout"),
                    ("callbackUrl", "https://is.corp.example/commonauth"),
                    ("Scopes", "openid profile email"),
                ],
            ),
            true,
        ),
        // Facebook as the console writes it: comma-separated permissions, `callBackUrl`.
        (
            "Facebook",
            authenticator(
                "FacebookAuthenticator",
                &[
                    ("ClientId", "fb-client"),
                    ("ClientSecret", FACEBOOK_SECRET),
                    ("Scope", "email,public_profile"),
                    ("callBackUrl", "https://is.corp.example/commonauth"),
                ],
            ),
            true,
        ),
        // Apple after a first login: the server signed a client secret from the private key and
        // stored it with its expiry and the regeneration flag reset
        // (AppleAuthenticator.evaluateClientSecret, identity-outbound-auth-apple 9275ea9).
        (
            "Apple",
            authenticator(
                "AppleOIDCAuthenticator",
                &[
                    ("ClientId", "com.corp.web"),
                    ("ClientSecret", APPLE_SIGNED_SECRET),
                    ("SecretValidityPeriod", "86400"),
                    ("TeamId", "CORPTEAM01"),
                    ("KeyId", "CORPKEY001"),
                    ("PrivateKey", APPLE_PRIVATE_KEY),
                    ("callbackUrl", "https://is.corp.example/commonauth"),
                    ("Scopes", "name email"),
                    ("AdditionalQueryParameters", "prompt=consent"),
                    ("RegenerateClientSecret", "false"),
                    ("SecretExpiryEpochTime", "1796000000"),
                ],
            ),
            true,
        ),
    ];
    for (name, auth, on) in idps {
        let jwks_uri = (name == "Corp OIDC").then(|| "https://login.corp.example/jwks".to_string());
        let certificates = match name {
            "Corp SAML" => vec![CORP_SAML_CERT.to_string()],
            _ => vec![],
        };
        let id = console
            .create_idp(&NewIdp {
                name: name.into(),
                description: Some(format!("{name} made in the console")),
                image: None,
                authenticator: auth,
                jit: Some(jit(on)),
                jwks_uri,
                certificates,
                saml_metadata_uri: None,
            })
            .await
            .expect("seed idp");
        if let Some(mappings) = console_mappings(name) {
            console
                .update_mappings(&id, &mappings)
                .await
                .expect("seed mappings");
        }
    }
    let apps = [
        NewApplication {
            name: "Payroll".into(),
            oidc: Some(OidcChange {
                grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                callback_urls: vec!["https://payroll.example/callback".into()],
                allowed_origins: vec![],
                public_client: Some(false),
            }),
            login_flow: Some(FlowUpdate {
                steps: vec![
                    step(&[
                        ("LOCAL", "BasicAuthenticator"),
                        ("Google", "GoogleOIDCAuthenticator"),
                    ]),
                    step(&[("LOCAL", "totp")]),
                ],
                ..Default::default()
            }),
            ..Default::default()
        },
        NewApplication {
            name: "Docs Portal".into(),
            description: Some("docs".into()),
            login_flow: Some(FlowUpdate {
                steps: vec![
                    step(&[("GitHub", "GithubAuthenticator")]),
                    step(&[("LOCAL", "email-otp-authenticator")]),
                ],
                script: Some(
                    "var onLoginRequest = function(context) { executeStep(1); executeStep(2); };"
                        .into(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        },
        NewApplication {
            name: "Legacy".into(),
            login_flow: Some(FlowUpdate {
                steps: vec![
                    step(&[("Okta", "OktaAuthenticator")]),
                    step(&[("LOCAL", "totp")]),
                ],
                ..Default::default()
            }),
            ..Default::default()
        },
        NewApplication {
            name: "Wiki".into(),
            ..Default::default()
        },
        NewApplication {
            name: "Intranet".into(),
            login_flow: Some(FlowUpdate {
                steps: vec![
                    step(&[
                        ("LOCAL", "BasicAuthenticator"),
                        ("Corp OIDC", "OpenIDConnectAuthenticator"),
                        ("Apple", "AppleOIDCAuthenticator"),
                    ]),
                    step(&[("LOCAL", "totp")]),
                ],
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    for a in &apps {
        console.create_application(a).await.expect("seed app");
    }
}

fn cli(env: &TestEnv, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_identity-operator"))
        .args(args)
        .env("IDENTITY_CLIENT_SECRET", &env.client_secret)
        .output()
        .expect("runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The server id of the application named `name` on the emulator.
fn server_app_id(env: &TestEnv, name: &str) -> String {
    env.emulator.with_tenant(TENANT, |t| {
        t.apps
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.id.clone())
            .unwrap_or_default()
    })
}

/// The Apple authenticator's properties that the server makes itself at login.
const APPLE_SERVER_MADE: [&str; 3] = [
    "ClientSecret",
    "SecretExpiryEpochTime",
    "RegenerateClientSecret",
];

/// The tenant's state with confidential property values blanked: the one thing adoption may write.
fn state_without_secrets(env: &TestEnv) -> TenantState {
    let mut st = env.emulator.with_tenant(TENANT, |t| t.clone());
    // Adoption records the owner in the description (issue 24): the user's text must be unchanged.
    let text = |d: &mut Option<String>| {
        *d = d.as_deref().map(strip_markers).filter(|t| !t.is_empty());
    };
    for app in &mut st.apps {
        text(&mut app.description);
    }
    for idp in &mut st.idps {
        text(&mut idp.description);
        for a in &mut idp.authenticators {
            // What the emulated server declares confidential (its metadata equals the table).
            let secret = identity_operator::backend::Confidential::fallback(&a.authenticator_id);
            for p in a.properties.iter_mut().flatten() {
                if secret.contains(&p.key) {
                    p.value = None;
                }
            }
            // The client secret Apple's authenticator signs at login, its expiry and the flag
            // are the server's own: a push of the private key drops them (the server's PUT
            // deletes properties it does not carry, IdPManagementDAO
            // .updateFederatedAuthenticatorConfig) and the next login signs a new one.
            if a.authenticator_id == wire::authenticator_id("AppleOIDCAuthenticator") {
                if let Some(props) = a.properties.as_mut() {
                    props.retain(|p| !APPLE_SERVER_MADE.contains(&p.key.as_str()));
                }
            }
        }
    }
    st
}

/// Conflict findings of a `--format json` run as both commands state them from the steps on: the
/// objects' names and places differ by design (a file names its objects by their Kubernetes names,
/// an audit by the server's names and ids), the steps, authenticators and remedy do not.
fn conflicts(json_out: &Output) -> Vec<String> {
    let v: Value = serde_json::from_slice(&json_out.stdout).expect("json output");
    let mut out: Vec<String> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule"] == "InterconnectionConflict")
        .map(|f| {
            identity_operator::lint::from_the_steps_on(f["message"].as_str().unwrap_or_default())
        })
        .collect();
    out.sort();
    out
}

/// The `kubectl -n NS label secret NAME KEY=VALUE` lines of the README: the consent labels, by
/// Secret name.
fn labels_to_add(readme: &str) -> std::collections::HashMap<String, (String, String)> {
    readme
        .lines()
        .filter(|l| l.starts_with("kubectl -n ") && l.contains(" label secret "))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let (k, v) = words.get(6)?.split_once('=')?;
            Some((words[5].to_string(), (k.to_string(), v.to_string())))
        })
        .collect()
}

/// `kubectl -n NS create secret generic NAME --from-literal=KEY=VALUE ...` lines of the README.
fn secrets_to_create(readme: &str) -> Vec<(String, Vec<String>)> {
    readme
        .lines()
        .filter(|l| l.starts_with("kubectl -n ") && l.contains(" create secret generic "))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let name = words[6].to_string();
            let keys = words[7..]
                .iter()
                .filter_map(|w| w.strip_prefix("--from-literal="))
                .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_string()))
                .collect();
            (name, keys)
        })
        .collect()
}

// Multi-threaded: the CLI runs as a blocking child process while the in-process emulator serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_apply_adopts_everything_without_changing_the_server() {
    let mut env = TestEnv::new("brownfield").await;
    seed(&env).await;
    let url = env.emulator.url();
    let conn = [
        "--url",
        url.as_str(),
        "--tenant",
        TENANT,
        "--client-id",
        CLIENT_ID,
    ];

    // Audit the live tenant: the one conflict, exit 1.
    let audit = cli(
        &env,
        &[
            &["audit", "--namespace", &env.ns, "--format", "json"][..],
            &conn,
        ]
        .concat(),
    );
    assert_eq!(audit.status.code(), Some(1), "{}", text(&audit));
    let audited = conflicts(&audit);
    assert_eq!(audited.len(), 1, "{audited:#?}");
    assert!(
        audited[0].starts_with(" step 1; step 2 offers totp, which needs a local account"),
        "{audited:#?}"
    );
    // The audit names what the console shows: the server's names and ids.
    let raw = String::from_utf8_lossy(&audit.stdout);
    assert!(
        raw.contains(&format!(
            "Application \\\"Payroll\\\" (id {}; export writes it as {}/payroll) step 1 offers IdentityProvider \\\"Google\\\"",
            server_app_id(&env, "Payroll"),
            env.ns
        )),
        "{raw}"
    );
    // Legacy's flow goes through Okta with JIT on: no conflict, though export cannot express it.

    // Export.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("tenant");
    let export = cli(
        &env,
        &[
            &[
                "export",
                "--namespace",
                &env.ns,
                "--backend-name",
                "asgardeo",
                "--out",
                out.to_str().expect("utf-8 path"),
            ][..],
            &conn,
        ]
        .concat(),
    );
    let export_text = text(&export);
    assert_eq!(export.status.code(), Some(0), "{export_text}");
    assert!(
        export_text.contains("reading identity providers: 7/7"),
        "{export_text}"
    );
    assert!(
        export_text.contains("reading applications: 5/5"),
        "{export_text}"
    );
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for e in std::fs::read_dir(&out).expect("out dir") {
        let path = e.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        files.insert(name, std::fs::read_to_string(&path).expect("read"));
    }
    assert_eq!(
        files.keys().cloned().collect::<Vec<_>>(),
        [
            "README.md",
            "application-docs-portal.yaml",
            "application-intranet.yaml",
            "application-legacy.yaml",
            "application-payroll.yaml",
            "application-wiki.yaml",
            "identitybackend-asgardeo.yaml",
            "identityprovider-apple.yaml",
            "identityprovider-corp-oidc.yaml",
            "identityprovider-corp-saml.yaml",
            "identityprovider-facebook.yaml",
            "identityprovider-github.yaml",
            "identityprovider-google.yaml",
        ]
    );
    for (name, body) in files.iter().chain([(&"stderr".to_string(), &export_text)]) {
        for secret in [
            GOOGLE_SECRET,
            GITHUB_SECRET,
            FACEBOOK_SECRET,
            CORP_OIDC_SECRET,
            APPLE_PRIVATE_KEY,
            APPLE_SIGNED_SECRET,
            env.client_secret.as_str(),
        ] {
            assert!(!body.contains(secret), "{name} holds a secret value");
        }
    }
    let readme = &files["README.md"];
    assert!(
        readme.contains("| not exported | IdentityProvider \"Okta\""),
        "{readme}"
    );
    assert!(readme.contains("Application \"Legacy\""), "{readme}");
    assert!(readme.contains("conditional-auth script"), "{readme}");
    assert!(!readme.contains("will change on adoption"), "{readme}");
    // Every supported type is exported: only Okta (no resource for its authenticator) is left out.
    assert_eq!(readme.matches("| not exported |").count(), 1, "{readme}");
    let oidc = &files["identityprovider-corp-oidc.yaml"];
    for v in [
        "https://login.corp.example/token",
        "https://login.corp.example/userinfo",
        "https://login.corp.example/logout",
        "https://login.corp.example/jwks",
    ] {
        assert!(oidc.contains(v), "{v} not exported: {oidc}");
    }

    // The console's claim, role and group mappings are in the export (issue 21).
    let google = &files["identityprovider-google.yaml"];
    for v in [
        "userIdClaim: email",
        "idpClaim: given_name",
        "localClaim: http://wso2.org/claims/givenname",
        "defaultValue: Staff",
        "idpRole: google-admins",
        "name: google-staff",
    ] {
        assert!(google.contains(v), "{v} not exported: {google}");
    }
    let github = &files["identityprovider-github.yaml"];
    for v in [
        "roleClaim: http://wso2.org/claims/role",
        "mappings: []",
        "claim: http://wso2.org/claims/country",
    ] {
        assert!(github.contains(v), "{v} not exported: {github}");
    }
    let facebook = &files["identityprovider-facebook.yaml"];
    for v in [
        "facebook:",
        "clientID: fb-client",
        "- public_profile",
        "callbackURL: https://is.corp.example/commonauth",
        "idpClaim: email",
    ] {
        assert!(facebook.contains(v), "{v} not exported: {facebook}");
    }
    // Apple: the key's identifiers and a reference to the private key; the client secret the
    // server signed is its own and not exported.
    let apple = &files["identityprovider-apple.yaml"];
    for v in [
        "apple:",
        "clientID: com.corp.web",
        "teamID: CORPTEAM01",
        "keyID: CORPKEY001",
        "key: private-key",
        "secretValidityPeriodSeconds: 86400",
        "additionalQueryParameters: prompt=consent",
        "callbackURL: https://is.corp.example/commonauth",
    ] {
        assert!(apple.contains(v), "{v} not exported: {apple}");
    }
    assert!(
        !apple.contains("scopes:"),
        "the default scopes are left out: {apple}"
    );
    assert!(!apple.contains("clientSecret"), "{apple}");
    let saml = &files["identityprovider-corp-saml.yaml"];
    for v in ["localRole: PRIMARY/it", "name: corp-all"] {
        assert!(saml.contains(v), "{v} not exported: {saml}");
    }
    // Its signing certificate, stored base64-encoded on the server, is exported as the PEM.
    let exported: serde_yaml::Value = serde_yaml::from_str(saml).expect("export parses");
    assert_eq!(
        exported["spec"]["saml"]["certificates"][0].as_str(),
        Some(CORP_SAML_CERT),
        "{saml}"
    );

    // Lint of the export: the same conflict as the audit, same message.
    let lint = Command::new(env!("CARGO_BIN_EXE_identity-operator"))
        .args(["lint", "--format", "json"])
        .arg(&out)
        .output()
        .expect("lint runs");
    assert_eq!(lint.status.code(), Some(1), "{}", text(&lint));
    assert_eq!(conflicts(&lint), audited);

    // audit --declared of the export: its certificates are the server's, so no drift; a declared
    // JWKS URI the server does not have is reported as the operator would rewrite it.
    let drift = |dir: &std::path::Path| {
        let o = cli(
            &env,
            &[
                &[
                    "audit",
                    "--namespace",
                    &env.ns,
                    "--format",
                    "json",
                    "--declared",
                ][..],
                &[dir.to_str().expect("utf-8 path")],
                &conn,
            ]
            .concat(),
        );
        let v: Value = serde_json::from_slice(&o.stdout).expect("json output");
        let found: Vec<String> = v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["rule"] == "Drift")
            .map(|f| f["message"].as_str().unwrap_or_default().to_string())
            .collect();
        found
    };
    assert_eq!(drift(&out), Vec::<String>::new());
    let edited = dir.path().join("edited");
    std::fs::create_dir(&edited).expect("mkdir");
    std::fs::write(
        edited.join("corp-oidc.yaml"),
        files["identityprovider-corp-oidc.yaml"].replace(
            "https://login.corp.example/jwks",
            "https://login.corp.example/new-jwks",
        ),
    )
    .expect("write");
    let found = drift(&edited);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains(
            "declares JWKS URI https://login.corp.example/new-jwks, but the server's \"Corp OIDC\""
        ) && found[0].contains("has JWKS URI https://login.corp.example/jwks"),
        "{}",
        found[0]
    );

    // Create the Secrets the README lists (values from "the vault"; the backend's is the real one).
    let secrets = secrets_to_create(readme);
    assert_eq!(
        secrets.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        [
            "asgardeo-credentials",
            "google-client-secret",
            "github-client-secret",
            "corp-oidc-client-secret",
            "facebook-client-secret",
            "apple-private-key"
        ]
    );
    // Each Secret comes with its consent label, or the operator would send nothing.
    let labels = labels_to_add(readme);
    for (name, keys) in &secrets {
        let (label, usage) = labels.get(name).expect("a label line for every Secret");
        let data: Vec<String> = keys
            .iter()
            .map(|k| {
                let v = match (name.as_str(), k.as_str()) {
                    ("asgardeo-credentials", "client-id") => CLIENT_ID.to_string(),
                    ("asgardeo-credentials", _) => env.client_secret.clone(),
                    (_, _) => format!("{name}-from-the-vault"),
                };
                format!("{k}: {v}")
            })
            .collect();
        env.apply(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, labels: {{{label}: {usage}}}}}\nstringData: {{{}}}\n",
            data.join(", ")
        ))
        .await
        .expect("secret applies");
    }

    // Apply with the operator running, from a clean count.
    let before = state_without_secrets(&env);
    env.emulator.reset_stats();
    env.start_operator(&[]);
    for (name, body) in files.iter().filter(|(n, _)| n.ends_with(".yaml")) {
        env.apply(body)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    env.wait_condition("IdentityBackend", "asgardeo", "Ready", "True", T)
        .await;
    for name in [
        "google",
        "github",
        "corp-saml",
        "corp-oidc",
        "facebook",
        "apple",
    ] {
        env.wait_condition("IdentityProvider", name, "Ready", "True", T)
            .await;
        env.wait_event(name, "Adopted", T).await;
    }
    for name in ["payroll", "docs-portal", "legacy", "wiki", "intranet"] {
        env.wait_condition("Application", name, "Ready", "True", T)
            .await;
        env.wait_event(name, "Adopted", T).await;
    }
    env.wait_condition(
        "IdentityProvider",
        "google",
        "InterconnectionConflict",
        "True",
        T,
    )
    .await;
    env.wait_condition(
        "Application",
        "payroll",
        "InterconnectionConflict",
        "True",
        T,
    )
    .await;

    // Let at least one full drift check run after Ready (the operator resyncs every 3s): wait until
    // every adopted IdP has been read again since all were Ready.
    let reads = env.emulator.stats().count(Operation::GetIdp);
    wait_until(T, || async {
        (env.emulator.stats().count(Operation::GetIdp) >= reads + 6).then_some(())
    })
    .await
    .expect("a drift check ran");

    let stats = env.emulator.stats();
    eprintln!("emulator counters from apply to the end: {stats:?}");
    for op in [
        Operation::CreateIdp,
        Operation::DeleteIdp,
        Operation::UpdateJit,
        Operation::UpdateClaims,
        Operation::UpdateRoles,
        Operation::UpdateGroups,
        Operation::CreateApplication,
        Operation::DeleteApplication,
        Operation::UpdateOidc,
    ] {
        assert_eq!(stats.count(op), 0, "{op:?}: {stats:?}");
    }
    // One description write per adopted object, recording its owner on the server, and no other.
    let (patch_idps, patch_apps) = (
        stats.count(Operation::PatchIdp),
        stats.count(Operation::PatchApplication),
    );
    assert_eq!((patch_idps, patch_apps), (6, 5), "{stats:?}");
    env.emulator.with_tenant(TENANT, |t| {
        let owners: Vec<_> = t
            .idps
            .iter()
            .map(|i| i.description.clone())
            .chain(t.apps.iter().map(|a| a.description.clone()))
            .filter_map(|d| marker(d.as_deref()).and_then(|m| m.owner))
            .collect();
        assert_eq!(
            owners.len(),
            11,
            "every adopted object carries its owner: {owners:?}"
        );
        assert!(owners
            .iter()
            .all(|o| o.starts_with(&format!("{}/", env.ns))));
    });
    let pushes = stats.count(Operation::UpdateFederatedAuthenticator);
    assert!(
        pushes <= 5,
        "at most one client-secret push per adopted IdP with a secret: {stats:?}"
    );
    assert_eq!(
        stats.writes,
        pushes + patch_idps + patch_apps,
        "no other write: {stats:?}"
    );
    assert_eq!(
        state_without_secrets(&env),
        before,
        "the server is as the console left it"
    );
    // Apple's authenticator carries the private key from the vault (its Secret was never pushed, so
    // adoption pushes it), and no client secret until the server signs one at the next login.
    env.emulator.with_tenant(TENANT, |t| {
        let apple = t.idps.iter().find(|i| i.name == "Apple").expect("apple");
        let props: Vec<_> = apple.authenticators[0]
            .properties
            .iter()
            .flatten()
            .collect();
        let value = |k: &str| {
            props
                .iter()
                .find(|p| p.key == k)
                .and_then(|p| p.value.clone())
        };
        assert_eq!(
            value("PrivateKey").as_deref(),
            Some("apple-private-key-from-the-vault")
        );
        assert_eq!(value("ClientSecret"), None, "{props:?}");
        assert_eq!(value("TeamId").as_deref(), Some("CORPTEAM01"));
    });
    assert!(
        !env.operator_log().contains("-from-the-vault"),
        "a Secret value reached the log"
    );
}

/// Runs the binary with exactly this client secret in the environment (or none).
fn cli_with_secret(secret: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_identity-operator"));
    cmd.args(args).env_remove("IDENTITY_CLIENT_SECRET");
    if let Some(s) = secret {
        cmd.env("IDENTITY_CLIENT_SECRET", s);
    }
    cmd.output().expect("runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_tenant_exits_two_without_echoing_the_secret() {
    let emulator = identity_emulator::Emulator::start(identity_emulator::EmulatorConfig {
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new("the-right-secret"),
        ..Default::default()
    })
    .await
    .expect("emulator");
    let url = emulator.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x");
    let export = [
        "export",
        "--url",
        &url,
        "--tenant",
        TENANT,
        "--client-id",
        CLIENT_ID,
        "--namespace",
        "n",
        "--backend-name",
        "b",
        "--out",
        out.to_str().expect("utf-8"),
    ];

    let o = cli_with_secret(None, &export);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("set IDENTITY_CLIENT_SECRET"),
        "{}",
        text(&o)
    );

    let wrong = "wrong-secret-must-not-show";
    let o = cli_with_secret(Some(wrong), &export);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("refused the credentials"), "{}", text(&o));
    assert!(!text(&o).contains(wrong));
    assert!(
        !out.exists(),
        "nothing written when the tenant cannot be read"
    );

    let o = cli_with_secret(
        Some(wrong),
        &[
            "audit",
            "--url",
            "http://127.0.0.1:1",
            "--tenant",
            TENANT,
            "--client-id",
            CLIENT_ID,
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("reading the tenant at http://127.0.0.1:1/t/acme/"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains(wrong));
}

#[tokio::test]
async fn a_large_tenant_is_read_through_every_page_in_server_order() {
    let secret = "large-tenant-secret";
    let emulator = identity_emulator::Emulator::start(identity_emulator::EmulatorConfig {
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(secret),
        ..Default::default()
    })
    .await
    .expect("emulator");
    let target = Target::Wso2IdentityServer {
        url: emulator.url(),
        tenant: TENANT.into(),
    };
    let mut config = AsgardeoConfig::new(target, CLIENT_ID, Secret::new(secret));
    config.page_size = 7;
    let client = AsgardeoClient::new(config, None).expect("client");
    for i in 0..23 {
        client
            .create_idp(&NewIdp {
                name: format!("IdP {i:02}"),
                description: None,
                image: None,
                authenticator: authenticator("GithubAuthenticator", &[("ClientId", "c")]),
                jit: Some(jit(i % 2 == 0)),
                jwks_uri: None,
                certificates: Vec::new(),
                saml_metadata_uri: None,
            })
            .await
            .expect("idp");
        client
            .create_application(&NewApplication {
                name: format!("App {i:02}"),
                ..Default::default()
            })
            .await
            .expect("app");
    }
    let mut seen = Vec::new();
    let snapshot = client
        .read_tenant(|phase, done, total| seen.push((phase, done, total)))
        .await
        .expect("reads");
    let names: Vec<String> = snapshot.idps.iter().map(|d| d.idp.name.clone()).collect();
    assert_eq!(
        names,
        (0..23).map(|i| format!("IdP {i:02}")).collect::<Vec<_>>()
    );
    assert_eq!(snapshot.applications.len(), 23);
    assert_eq!(snapshot.applications[22].app.name, "App 22");
    assert!(snapshot.idps[3].jit.enabled != snapshot.idps[4].jit.enabled);
    assert_eq!(seen.first().map(|s| (s.1, s.2)), Some((0, 23)));
    assert_eq!(seen.last().map(|s| (s.1, s.2)), Some((23, 23)));
    assert_eq!(
        seen.len(),
        2 * 24,
        "one report per object and one per phase start"
    );
    // Pages of 7: 4 list calls per kind.
    let stats = emulator.stats();
    assert_eq!(stats.count(Operation::ListIdps), 4, "{stats:?}");
    assert_eq!(stats.count(Operation::ListApplications), 4, "{stats:?}");
}
