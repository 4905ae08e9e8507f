use super::*;
use crate::api::application::{LoginFlow as ApiFlow, LoginOption, LoginStep};
use crate::api::identity_provider::{JitSpec, OAuthProvider};
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
        oidc: None,
        saml: None,
        jit,
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
        associate_local_user: None,
        attribute_sync_method: None,
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
    assert!(!authenticator_differs(&desired, &server));
    server.properties[0].value = Some("other".into());
    assert!(authenticator_differs(&desired, &server));
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
                .map(|options| LoginStep { options })
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
    let flow = flow_for_rule(&steps, &Default::default());
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
