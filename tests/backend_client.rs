//! The Asgardeo client against the in-process emulator, over real HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use identity_emulator::{Emulator, EmulatorConfig, EmulatorHandle, Faults};
use identity_operator::backend::asgardeo::{AsgardeoClient, AsgardeoConfig, RetryPolicy, Target};
use identity_operator::backend::operation::Operation;
use identity_operator::backend::wire::{self, authenticator_id, IdpGroupSyncMethod, JitScheme};
use identity_operator::backend::{
    ApplicationPatch, AttributeSyncMethod, BackendError, BackendMetrics, ClaimMap,
    FederatedAuthenticator, FlowKind, FlowOption, FlowStep, FlowUpdate, IdentityServer, IdpPatch,
    Jit, JitChange, MappingsChange, NewApplication, NewIdp, OidcChange, Property, RoleMap, Secret,
};

const TENANT: &str = "acme";
const CLIENT_SECRET: &str = "very-secret-client-secret";
const GOOGLE: &str = "GoogleOIDCAuthenticator";

fn emulator_config() -> EmulatorConfig {
    EmulatorConfig {
        client_id: "operator".into(),
        client_secret: Secret::new(CLIENT_SECRET),
        ..Default::default()
    }
}

fn client_config(url: &str) -> AsgardeoConfig {
    let mut c = AsgardeoConfig::new(
        Target::Wso2IdentityServer {
            url: url.to_owned(),
            tenant: TENANT.to_owned(),
        },
        "operator",
        Secret::new(CLIENT_SECRET),
    );
    c.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
    };
    c.request_timeout = Duration::from_secs(5);
    c
}

async fn setup() -> (EmulatorHandle, AsgardeoClient) {
    let emu = Emulator::start(emulator_config()).await.expect("emulator");
    let client = AsgardeoClient::new(client_config(&emu.url()), None).expect("client");
    (emu, client)
}

fn google_idp(name: &str) -> NewIdp {
    NewIdp {
        name: name.to_owned(),
        description: Some("Google login".into()),
        image: None,
        authenticator: FederatedAuthenticator {
            authenticator_id: authenticator_id(GOOGLE),
            name: None,
            is_enabled: true,
            is_default: true,
            properties: vec![
                Property::new("ClientId", "123.apps.example"),
                Property::new("ClientSecret", "google-secret"),
            ],
        },
        jit: None,
        jwks_uri: None,
        certificates: Vec::new(),
        saml_metadata_uri: None,
    }
}

fn mfa_flow(idp: &str) -> FlowUpdate {
    FlowUpdate {
        steps: vec![
            FlowStep {
                options: vec![
                    FlowOption::local("BasicAuthenticator"),
                    FlowOption::federated(idp, GOOGLE),
                ],
            },
            FlowStep {
                options: vec![FlowOption::local("totp")],
            },
        ],
        ..Default::default()
    }
}

#[tokio::test]
async fn every_operation_round_trips() {
    let metrics = Arc::new(BackendMetrics::new());
    let emu = Emulator::start(emulator_config()).await.expect("emulator");
    let client: Arc<dyn IdentityServer> = Arc::new(
        AsgardeoClient::new(client_config(&emu.url()), Some(metrics.clone())).expect("client"),
    );

    let info = client.check_access().await.expect("check_access");
    assert!(info.tenant_url.ends_with("/t/acme"));
    assert!(info.granted_scopes.iter().any(|s| s == "internal_idp_view"));

    // Identity providers.
    let mut new = google_idp("Google");
    new.jit = Some(Jit {
        enabled: true,
        scheme: JitScheme::PromptConsent,
        userstore: "DEFAULT".into(),
        associate_local_user: true,
        attribute_sync_method: AttributeSyncMethod::PreserveLocal,
        skip_jit_for_lookup_failure: None,
        idp_group_sync_method: None,
        account_lookup: vec![],
    });
    let idp_id = client.create_idp(&new).await.expect("create_idp");
    let found = client
        .find_idp_by_name("Google")
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found.id, idp_id);
    assert!(
        client
            .find_idp_by_name("Goog")
            .await
            .expect("find")
            .is_none(),
        "exact match only"
    );

    let idp = client.get_idp(&idp_id).await.expect("get_idp");
    assert_eq!(idp.name, "Google");
    assert_eq!(
        idp.default_authenticator_id.as_deref(),
        Some(authenticator_id(GOOGLE).as_str())
    );
    assert_eq!(idp.authenticators[0].name, GOOGLE);
    let jit = idp.jit.expect("jit in response");
    assert!(jit.enabled);
    assert_eq!(jit.scheme, JitScheme::PromptConsent);

    client
        .patch_idp(
            &idp_id,
            &[
                IdpPatch::Description("changed".into()),
                IdpPatch::Enabled(false),
            ],
        )
        .await
        .expect("patch_idp");
    let idp = client.get_idp(&idp_id).await.expect("get_idp");
    assert_eq!(idp.description.as_deref(), Some("changed"));
    assert!(!idp.is_enabled);

    let mut auth = client
        .get_federated_authenticator(&idp_id, &authenticator_id(GOOGLE))
        .await
        .expect("get auth");
    assert_eq!(auth.name.as_deref(), Some(GOOGLE));
    assert!(auth
        .properties
        .iter()
        .any(|p| p.key == "ClientId" && p.value.as_deref() == Some("123.apps.example")));
    auth.properties = vec![
        Property::new("ClientId", "456.apps.example"),
        Property::new("ClientSecret", "rotated"),
    ];
    client
        .update_federated_authenticator(&idp_id, &auth)
        .await
        .expect("update auth");
    let auth = client
        .get_federated_authenticator(&idp_id, &authenticator_id(GOOGLE))
        .await
        .expect("get auth");
    assert!(auth
        .properties
        .iter()
        .any(|p| p.value.as_deref() == Some("456.apps.example")));

    let jit = client
        .update_jit(
            &idp_id,
            &JitChange {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("jit");
    assert!(!jit.enabled);
    assert_eq!(client.get_jit(&idp_id).await.expect("get_jit"), jit);

    // Applications.
    let app_id = client
        .create_application(&NewApplication {
            name: "Payroll".into(),
            description: Some("payroll".into()),
            template_id: None,
            oidc: Some(OidcChange {
                grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                callback_urls: vec!["https://payroll.example/callback".into()],
                allowed_origins: vec![],
                public_client: None,
            }),
            login_flow: Some(mfa_flow("Google")),
        })
        .await
        .expect("create_application");
    let summary = client
        .find_application_by_name("Payroll")
        .await
        .expect("find app")
        .expect("found");
    assert_eq!(summary.id, app_id);
    assert!(summary.client_id.is_some());

    let app = client
        .get_application(&app_id)
        .await
        .expect("get_application");
    assert_eq!(app.login_flow.kind, FlowKind::UserDefined);
    assert_eq!(app.login_flow.steps, mfa_flow("Google").steps);
    assert_eq!(app.login_flow.script, None);

    assert_eq!(
        client.connected_apps(&idp_id).await.expect("connected"),
        vec![app_id.clone()]
    );

    let oidc = client.get_oidc(&app_id).await.expect("get_oidc");
    let secret = oidc.client_secret.clone().expect("generated secret");
    assert!(!secret.is_empty());
    assert_eq!(oidc.client_id, app.client_id);
    let updated = client
        .update_oidc(
            &app_id,
            &OidcChange {
                grant_types: vec!["authorization_code".into()],
                callback_urls: vec!["https://payroll.example/cb2".into()],
                allowed_origins: vec!["https://payroll.example".into()],
                public_client: None,
            },
        )
        .await
        .expect("update_oidc");
    assert_eq!(
        updated.client_id, oidc.client_id,
        "credentials survive an update"
    );
    assert_eq!(updated.client_secret, Some(secret));
    assert_eq!(
        updated.callback_urls,
        vec!["https://payroll.example/cb2".to_owned()]
    );

    client
        .patch_application(
            &app_id,
            &ApplicationPatch {
                description: Some("new".into()),
                ..Default::default()
            },
        )
        .await
        .expect("patch description");
    assert_eq!(
        client
            .get_application(&app_id)
            .await
            .expect("get")
            .login_flow
            .kind,
        FlowKind::UserDefined,
        "flow kept"
    );
    let single = FlowUpdate {
        steps: vec![FlowStep {
            options: vec![FlowOption::local("BasicAuthenticator")],
        }],
        ..Default::default()
    };
    client
        .patch_application(
            &app_id,
            &ApplicationPatch {
                login_flow: Some(single.clone()),
                ..Default::default()
            },
        )
        .await
        .expect("patch flow");
    assert_eq!(
        client
            .get_application(&app_id)
            .await
            .expect("get")
            .login_flow
            .steps,
        single.steps
    );
    assert!(client
        .connected_apps(&idp_id)
        .await
        .expect("connected")
        .is_empty());

    // Duplicates.
    let dup = client
        .create_idp(&google_idp("Google"))
        .await
        .expect_err("duplicate idp");
    assert!(matches!(dup, BackendError::AlreadyExists { .. }), "{dup:?}");
    assert_eq!(dup.server_code(), Some("IDP-60001"));
    let dup = client
        .create_application(&NewApplication {
            name: "Payroll".into(),
            ..Default::default()
        })
        .await
        .expect_err("duplicate app");
    assert!(matches!(dup, BackendError::AlreadyExists { .. }), "{dup:?}");

    // Deletes: gone is success; a second application delete says it was already gone (404), while
    // the IdP API answers 204 for an id it does not know, which is "deleted" as well.
    assert!(client
        .delete_application(&app_id)
        .await
        .expect("delete app"));
    assert!(!client
        .delete_application(&app_id)
        .await
        .expect("delete app again"));
    assert!(client.delete_idp(&idp_id).await.expect("delete idp"));
    assert!(client
        .delete_idp(&idp_id)
        .await
        .expect("delete idp again: 204"));
    let missing = client.get_idp(&idp_id).await.expect_err("gone");
    assert!(missing.is_not_found());
    assert_eq!(missing.server_code(), Some("IDP-60002"));

    // Metrics saw requests with bounded labels.
    let mut reg = prometheus_client::registry::Registry::default();
    metrics.register(&mut reg);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).expect("encode");
    assert!(
        text.contains(r#"operation="create_idp",status="201""#),
        "{text}"
    );
    assert!(text.contains(r#"operation="delete_idp",status="204""#));
    assert!(text.contains(r#"operation="delete_application",status="404""#));
    assert!(text.contains("identity_backend_token_refreshes_total 1"));
    assert!(!text.contains(&idp_id), "no ids in labels");
}

#[tokio::test]
async fn delete_of_idp_in_use_is_refused_with_the_servers_code() {
    let (emu, client) = setup().await;
    let idp_id = client.create_idp(&google_idp("Google")).await.expect("idp");
    emu.with_tenant(TENANT, |t| {
        t.insert_app("ServerOnly", vec![vec![("Google".into(), GOOGLE.into())]])
    });
    emu.reset_stats();
    let err = client.delete_idp(&idp_id).await.expect_err("in use");
    assert_eq!(err.server_code(), Some("IDP-65004"));
    assert!(
        matches!(err, BackendError::Invalid { status: 400, .. }),
        "{err:?}"
    );
    assert!(err.is_in_use());
    assert!(!err.is_retryable());
    assert_eq!(emu.stats().count(Operation::DeleteIdp), 1, "asked once");
    assert!(client.get_idp(&idp_id).await.is_ok(), "still there");
}

#[tokio::test]
async fn a_400_surfaces_code_and_trace_id() {
    let (_emu, client) = setup().await;
    let err = client
        .create_application(&NewApplication {
            name: "Broken".into(),
            login_flow: Some(mfa_flow("NoSuchIdp")),
            ..Default::default()
        })
        .await
        .expect_err("unknown idp in flow");
    match &err {
        BackendError::Invalid {
            status,
            code,
            description,
            trace_id,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(code.as_deref(), Some("APP-60001"));
            assert!(description
                .as_deref()
                .is_some_and(|d| d.contains("NoSuchIdp")));
            assert!(trace_id.as_deref().is_some_and(|t| !t.is_empty()));
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("APP-60001") && text.contains("traceId"),
        "{text}"
    );
    assert_eq!(err.metric_label(), "invalid");
}

#[tokio::test]
async fn mappings_update_merges_each_object_and_the_idp_read_carries_them() {
    let (emu, client) = setup().await;
    let idp_id = client.create_idp(&google_idp("Google")).await.expect("idp");
    let email = "http://wso2.org/claims/emailaddress";
    let first = MappingsChange {
        user_id_claim: Some("email".into()),
        claim_mappings: Some(vec![ClaimMap {
            idp_claim: "email".into(),
            local_claim: email.into(),
        }]),
        role_mappings: Some(vec![RoleMap {
            idp_role: "admins".into(),
            local_role: "admin".into(),
        }]),
        groups: Some(vec!["admins".into()]),
        ..Default::default()
    };
    client
        .update_mappings(&idp_id, &first)
        .await
        .expect("first write");
    // What a console adds and the next change does not declare.
    emu.with_tenant(TENANT, |t| {
        let idp = t.idp_mut(&idp_id).expect("stored");
        idp.roles.outbound_provisioning_roles = Some(vec!["hr".into()]);
    });
    let group_id = emu
        .with_tenant(TENANT, |t| t.idp(&idp_id).map(|i| i.groups[0].id.clone()))
        .flatten();
    let before = emu.stats();
    client
        .update_mappings(
            &idp_id,
            &MappingsChange {
                role_claim: Some("email".into()),
                groups: Some(vec!["admins".into(), "devs".into()]),
                ..Default::default()
            },
        )
        .await
        .expect("second write");
    let stats = emu.stats();
    // Claims and groups read and written once each; roles not touched.
    for (op, n) in [
        (Operation::GetClaims, 1),
        (Operation::UpdateClaims, 1),
        (Operation::GetGroups, 1),
        (Operation::UpdateGroups, 1),
        (Operation::GetRoles, 0),
        (Operation::UpdateRoles, 0),
    ] {
        assert_eq!(stats.count(op) - before.count(op), n, "{op:?}");
    }
    let idp = client.get_idp(&idp_id).await.expect("read");
    let m = &idp.mappings;
    assert_eq!(m.user_id_claim, "email", "kept");
    assert_eq!(m.role_claim, "email");
    assert_eq!(m.claim_mappings.len(), 1, "kept");
    assert_eq!(m.role_mappings.len(), 1, "kept");
    assert_eq!(m.group_names(), vec!["admins", "devs"]);
    assert_eq!(
        m.groups
            .iter()
            .find(|g| g.name == "admins")
            .and_then(|g| g.id.clone()),
        group_id,
        "the kept group keeps its id"
    );
    // A refused claims write is the server's answer, and the other objects are still written.
    let err = client
        .update_mappings(
            &idp_id,
            &MappingsChange {
                // email stays mapped: the kept userIdClaim and roleClaim name it.
                claim_mappings: Some(vec![
                    ClaimMap {
                        idp_claim: "cc".into(),
                        local_claim: "http://wso2.org/claims/costcenter".into(),
                    },
                    ClaimMap {
                        idp_claim: "email".into(),
                        local_claim: email.into(),
                    },
                ]),
                groups: Some(vec!["ops".into()]),
                ..Default::default()
            },
        )
        .await
        .expect_err("unknown local claim");
    assert_eq!(err.server_code(), Some("IDP-60032"), "{err}");
    assert!(
        err.to_string()
            .contains("One or more local claim URIs do not exist"),
        "{err}"
    );
    let idp = client.get_idp(&idp_id).await.expect("read");
    assert_eq!(idp.mappings.group_names(), vec!["ops"]);
    assert_eq!(
        idp.mappings.claim_mappings.len(),
        1,
        "the refused claims changed nothing"
    );
    let outbound = emu
        .with_tenant(TENANT, |t| {
            t.idp(&idp_id)
                .map(|i| i.roles.outbound_provisioning_roles.clone())
        })
        .flatten();
    assert_eq!(outbound, Some(vec!["hr".to_string()]));
}

#[tokio::test]
async fn jit_update_keeps_fields_it_does_not_declare() {
    let (emu, client) = setup().await;
    let idp_id = client.create_idp(&google_idp("Google")).await.expect("idp");
    emu.with_tenant(TENANT, |t| {
        let idp = t.idp_mut(&idp_id).expect("stored");
        idp.jit = wire::JustInTimeProvisioning {
            is_enabled: Some(true),
            scheme: Some(JitScheme::PromptUsernamePasswordConsent),
            userstore: Some("SECONDARY".into()),
            associate_local_user: Some(true),
            skip_jit_for_lookup_failure: Some(true),
            account_lookup_attribute_mappings: Some(vec![wire::AccountLookupAttributeMapping {
                local_attribute: Some("http://wso2.org/claims/emailaddress".into()),
                federated_attribute: Some("email".into()),
            }]),
            attribute_sync_method: Some(AttributeSyncMethod::PreserveLocal),
            idp_group_sync_method: Some(IdpGroupSyncMethod::OverrideAll),
            extra: Default::default(),
        };
    });
    let jit = client
        .update_jit(
            &idp_id,
            &JitChange {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("put");
    assert!(!jit.enabled);
    let stored = emu
        .with_tenant(TENANT, |t| t.idp(&idp_id).map(|i| i.jit.clone()))
        .expect("stored");
    assert_eq!(stored.is_enabled, Some(false));
    assert_eq!(
        stored.scheme,
        Some(JitScheme::PromptUsernamePasswordConsent)
    );
    assert_eq!(stored.userstore.as_deref(), Some("SECONDARY"));
    assert_eq!(stored.associate_local_user, Some(true));
    assert_eq!(stored.skip_jit_for_lookup_failure, Some(true));
    assert_eq!(
        stored
            .account_lookup_attribute_mappings
            .as_ref()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        stored.attribute_sync_method,
        Some(AttributeSyncMethod::PreserveLocal)
    );
    assert_eq!(
        stored.idp_group_sync_method,
        Some(IdpGroupSyncMethod::OverrideAll)
    );
}

#[tokio::test]
async fn jit_update_sets_the_lookup_fields_and_keeps_the_rest() {
    let (emu, client) = setup().await;
    let idp_id = client.create_idp(&google_idp("Google")).await.expect("idp");
    emu.with_tenant(TENANT, |t| {
        let idp = t.idp_mut(&idp_id).expect("stored");
        idp.jit.is_enabled = Some(true);
        idp.jit.userstore = Some("SECONDARY".into());
    });
    let mapping = wire::AccountLookupAttributeMapping {
        local_attribute: Some("http://wso2.org/claims/emailaddress".into()),
        federated_attribute: Some("email".into()),
    };
    let jit = client
        .update_jit(
            &idp_id,
            &JitChange {
                account_lookup: Some(vec![mapping.clone()]),
                skip_jit_for_lookup_failure: Some(true),
                idp_group_sync_method: Some(IdpGroupSyncMethod::OverrideAll),
                ..Default::default()
            },
        )
        .await
        .expect("put");
    // The answer is read back as the rule sees it.
    assert_eq!(
        jit.rule_state(),
        identity_operator::flow::Jit::SkippedOnLookupFailure
    );
    assert_eq!(jit.account_lookup, vec![mapping]);
    let stored = emu
        .with_tenant(TENANT, |t| t.idp(&idp_id).map(|i| i.jit.clone()))
        .expect("stored");
    assert_eq!(stored.is_enabled, Some(true), "undeclared: kept");
    assert_eq!(stored.userstore.as_deref(), Some("SECONDARY"), "kept");
    assert_eq!(stored.skip_jit_for_lookup_failure, Some(true));
    assert_eq!(
        stored.idp_group_sync_method,
        Some(IdpGroupSyncMethod::OverrideAll)
    );
    // An empty list removes the mappings on the server.
    let cleared = client
        .update_jit(
            &idp_id,
            &JitChange {
                account_lookup: Some(vec![]),
                ..Default::default()
            },
        )
        .await
        .expect("put");
    assert!(cleared.account_lookup.is_empty());
    assert_eq!(cleared.rule_state(), identity_operator::flow::Jit::Enabled);
}

#[tokio::test]
async fn expired_and_revoked_tokens_are_renewed_transparently() {
    let emu = Emulator::start(EmulatorConfig {
        token_lifetime: Duration::from_secs(1),
        ..emulator_config()
    })
    .await
    .expect("emulator");
    let client = AsgardeoClient::new(client_config(&emu.url()), None).expect("client");
    client.find_idp_by_name("x").await.expect("first call");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.find_idp_by_name("x").await.expect("after expiry");
    let stats = emu.stats();
    assert_eq!(
        stats.token_requests, 2,
        "expired token replaced before use: {stats:?}"
    );
    assert_eq!(
        stats.statuses.get(&401),
        None,
        "no request went out with the expired token"
    );

    // A token revoked on the server: one 401, one re-authentication, then success.
    emu.set_faults(Faults {
        token_lifetime_secs: Some(3600),
        ..Default::default()
    });
    client
        .find_idp_by_name("x")
        .await
        .expect("fresh long token");
    emu.revoke_all_tokens();
    emu.reset_stats();
    client.find_idp_by_name("x").await.expect("after revoke");
    let stats = emu.stats();
    assert_eq!(stats.token_requests, 1);
    assert_eq!(stats.statuses.get(&401), Some(&1));
    assert_eq!(stats.count(Operation::ListIdps), 2);
}

#[tokio::test]
async fn wrong_credentials_are_unauthorized_and_never_printed() {
    let emu = Emulator::start(emulator_config()).await.expect("emulator");
    let mut cfg = client_config(&emu.url());
    cfg.client_secret = Secret::new("wrong-secret-value");
    let client = AsgardeoClient::new(cfg.clone(), None).expect("client");
    let err = client.check_access().await.expect_err("bad secret");
    assert!(matches!(err, BackendError::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("invalid_client"));
    for text in [
        err.to_string(),
        format!("{err:?}"),
        format!("{cfg:?}"),
        format!("{client:?}"),
    ] {
        assert!(!text.contains("wrong-secret-value"), "{text}");
    }
}

#[tokio::test]
async fn no_secret_appears_in_any_error() {
    let (emu, client) = setup().await;
    let idp_id = client.create_idp(&google_idp("Google")).await.expect("idp");
    let app_id = client
        .create_application(&NewApplication {
            name: "App".into(),
            oidc: Some(OidcChange {
                grant_types: vec!["client_credentials".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("app");
    let app_secret = client
        .get_oidc(&app_id)
        .await
        .expect("oidc")
        .client_secret
        .expect("secret");
    let mut errors: Vec<BackendError> = Vec::new();
    errors.push(client.get_idp("missing").await.expect_err("404"));
    errors.push(
        client
            .create_idp(&google_idp("Google"))
            .await
            .expect_err("409"),
    );
    errors.push(
        client
            .create_application(&NewApplication {
                name: "X".into(),
                login_flow: Some(mfa_flow("Nope")),
                ..Default::default()
            })
            .await
            .expect_err("400"),
    );
    emu.set_faults(Faults {
        fail_next: 10,
        ..Default::default()
    });
    errors.push(client.get_idp(&idp_id).await.expect_err("5xx"));
    emu.set_faults(Faults {
        rate_limit_next: 10,
        ..Default::default()
    });
    errors.push(client.get_idp(&idp_id).await.expect_err("429"));
    emu.set_faults(Faults::default());
    let restricted = Emulator::start(EmulatorConfig {
        grant_scopes: Some(vec!["internal_idp_view".into()]),
        ..emulator_config()
    })
    .await
    .expect("emulator");
    let limited = AsgardeoClient::new(client_config(&restricted.url()), None).expect("client");
    errors.push(limited.create_idp(&google_idp("G")).await.expect_err("403"));
    let unreachable =
        AsgardeoClient::new(client_config("http://127.0.0.1:9"), None).expect("client");
    errors.push(
        unreachable
            .get_idp("x")
            .await
            .expect_err("connection refused"),
    );

    let forbidden: Vec<&str> = vec![
        CLIENT_SECRET,
        "google-secret",
        app_secret.expose(),
        "Bearer",
        "Basic ",
    ];
    for err in &errors {
        for text in [err.to_string(), format!("{err:?}")] {
            for secret in &forbidden {
                assert!(!text.contains(secret), "{secret} leaked in {text}");
            }
        }
    }
    // Debug of domain values holding secrets redacts them too.
    let debug = format!(
        "{:?} {:?}",
        google_idp("G"),
        client.get_oidc(&app_id).await.expect("oidc")
    );
    assert!(
        !debug.contains("google-secret") && !debug.contains(app_secret.expose()),
        "{debug}"
    );
}

#[tokio::test]
async fn forbidden_names_the_missing_scope() {
    let emu = Emulator::start(EmulatorConfig {
        grant_scopes: Some(vec!["internal_idp_view".into()]),
        ..emulator_config()
    })
    .await
    .expect("emulator");
    let client = AsgardeoClient::new(client_config(&emu.url()), None).expect("client");
    client.check_access().await.expect("view is granted");
    let err = client.create_idp(&google_idp("G")).await.expect_err("403");
    match &err {
        BackendError::Forbidden { missing_scope, .. } => {
            assert_eq!(missing_scope.as_deref(), Some("internal_idp_create"))
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert!(err.to_string().contains("internal_idp_create"));
}

#[tokio::test]
async fn rate_limit_retry_after_is_honoured() {
    let (emu, client) = setup().await;
    client.check_access().await.expect("warm token");
    emu.reset_stats();
    emu.set_faults(Faults {
        rate_limit_next: 1,
        retry_after_secs: 1,
        ..Default::default()
    });
    let started = Instant::now();
    client
        .find_idp_by_name("x")
        .await
        .expect("succeeds after waiting");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(emu.stats().statuses.get(&429), Some(&1));

    // A burst longer than the retry budget surfaces RateLimited with the server's Retry-After.
    emu.set_faults(Faults {
        rate_limit_next: 5,
        retry_after_secs: 0,
        ..Default::default()
    });
    let err = client.find_idp_by_name("x").await.expect_err("burst");
    assert!(
        matches!(err, BackendError::RateLimited { retry_after: Some(d) } if d == Duration::ZERO),
        "{err:?}"
    );
    assert!(err.is_retryable());

    // Retry-After beyond what the client waits in-line is surfaced at once.
    emu.set_faults(Faults {
        rate_limit_next: 1,
        retry_after_secs: 120,
        ..Default::default()
    });
    let started = Instant::now();
    let err = client.find_idp_by_name("x").await.expect_err("long wait");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(err, BackendError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(120))
    );
}

#[tokio::test]
async fn server_errors_are_retried_then_surfaced() {
    let (emu, client) = setup().await;
    let idp_id = client.create_idp(&google_idp("Google")).await.expect("idp");
    emu.reset_stats();
    emu.set_faults(Faults {
        fail_next: 2,
        ..Default::default()
    });
    client
        .get_idp(&idp_id)
        .await
        .expect("third attempt succeeds");
    assert_eq!(emu.stats().count(Operation::GetIdp), 3);

    emu.reset_stats();
    emu.set_faults(Faults {
        fail_next: 100,
        error_status: 503,
        ..Default::default()
    });
    let err = client.get_idp(&idp_id).await.expect_err("persisting 503");
    match &err {
        BackendError::Transient {
            status,
            attempts,
            code,
            trace_id,
            ..
        } => {
            assert_eq!(*status, Some(503));
            assert_eq!(*attempts, 3);
            assert_eq!(code.as_deref(), Some("IDP-65001"));
            assert!(trace_id.is_some());
        }
        other => panic!("expected Transient, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(emu.stats().count(Operation::GetIdp), 3);

    // A create is not blindly repeated after a 5xx: it might have happened.
    emu.reset_stats();
    emu.set_faults(Faults {
        fail_next: 1,
        ..Default::default()
    });
    let err = client
        .create_idp(&google_idp("Other"))
        .await
        .expect_err("not retried");
    assert!(
        matches!(err, BackendError::Transient { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(emu.stats().count(Operation::CreateIdp), 1);
}

#[tokio::test]
async fn connection_errors_are_retried_then_surfaced() {
    let client = AsgardeoClient::new(client_config("http://127.0.0.1:9"), None).expect("client");
    let err = client
        .check_access()
        .await
        .expect_err("nothing listens on port 9");
    match &err {
        BackendError::Transient {
            status: None,
            attempts: 3,
            message,
            ..
        } => {
            assert!(message.contains("connection"), "{message}")
        }
        other => panic!("expected Transient, got {other:?}"),
    }
}

#[tokio::test]
async fn lists_are_followed_through_every_page() {
    let emu = Emulator::start(emulator_config()).await.expect("emulator");
    let mut cfg = client_config(&emu.url());
    cfg.page_size = 2;
    let client = AsgardeoClient::new(cfg, None).expect("client");
    let idp_id = client.create_idp(&google_idp("Google")).await.expect("idp");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(emu.with_tenant(TENANT, |t| {
            t.insert_app(
                &format!("app-{i}"),
                vec![
                    vec![("Google".into(), GOOGLE.into())],
                    vec![("LOCAL".into(), "totp".into())],
                ],
            )
        }));
    }
    emu.with_tenant(TENANT, |t| t.insert_app("unrelated", vec![]));
    emu.reset_stats();
    assert_eq!(
        client.connected_apps(&idp_id).await.expect("connected"),
        ids
    );
    assert_eq!(
        emu.stats().count(Operation::ConnectedApps),
        3,
        "pages of 2, 2, 1"
    );

    for i in 0..4 {
        client
            .create_idp(&google_idp(&format!("Other {i}")))
            .await
            .expect("idp");
    }
    // `"` cannot be quoted in a filter: every page is read and matched locally.
    emu.with_tenant(TENANT, |t| {
        let mut idp = t.idp(&idp_id).cloned().expect("idp");
        idp.id = "quoted-id".into();
        idp.name = "Say \"hi\"".into();
        t.idps.push(idp);
    });
    emu.reset_stats();
    let found = client
        .find_idp_by_name("Say \"hi\"")
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found.id, "quoted-id");
    assert_eq!(
        emu.stats().count(Operation::ListIdps),
        3,
        "6 IdPs in pages of 2"
    );
}

#[tokio::test]
async fn concurrent_callers_share_one_token_refresh() {
    let (emu, client) = setup().await;
    let client = Arc::new(client);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            c.find_application_by_name(&format!("app-{i}")).await
        }));
    }
    for t in tasks {
        assert!(t.await.expect("join").expect("call").is_none());
    }
    let stats = emu.stats();
    assert_eq!(stats.token_requests, 1, "{stats:?}");
    assert_eq!(stats.count(Operation::ListApplications), 20);
}

#[tokio::test]
async fn script_is_never_sent_unless_managed() {
    let emu = Emulator::start(EmulatorConfig {
        // The operator's default scopes, without the script scope.
        grant_scopes: Some(
            Operation::all_scopes()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ),
        ..emulator_config()
    })
    .await
    .expect("emulator");
    let client = AsgardeoClient::new(client_config(&emu.url()), None).expect("client");
    client.create_idp(&google_idp("Google")).await.expect("idp");
    let app_id = client
        .create_application(&NewApplication {
            name: "A".into(),
            login_flow: Some(mfa_flow("Google")),
            ..Default::default()
        })
        .await
        .expect("flow without script needs no script scope");
    let mut managed = mfa_flow("Google");
    managed.script = Some("var onLoginRequest = function(context) { executeStep(1); };".into());
    let err = client
        .patch_application(
            &app_id,
            &ApplicationPatch {
                login_flow: Some(managed),
                ..Default::default()
            },
        )
        .await
        .expect_err("script needs its scope");
    match err {
        BackendError::Forbidden {
            missing_scope,
            code,
            ..
        } => {
            assert_eq!(
                missing_scope.as_deref(),
                Some("internal_application_script_update")
            );
            assert_eq!(code.as_deref(), Some("APP-60008"));
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn tls_with_a_custom_ca_bundle() {
    let (emu, ca_pem) = Emulator::start_tls(emulator_config())
        .await
        .expect("tls emulator");
    assert!(emu.url().starts_with("https://localhost:"));
    let mut cfg = client_config(&emu.url());
    cfg.ca_bundle_pem = Some(ca_pem.into_bytes());
    let client = AsgardeoClient::new(cfg, None).expect("client");
    client
        .check_access()
        .await
        .expect("trusted through the CA bundle");

    // Without the CA the certificate is refused: verification is always on.
    let mut cfg = client_config(&emu.url());
    cfg.retry.max_attempts = 1;
    let untrusted = AsgardeoClient::new(cfg, None).expect("client");
    let err = untrusted.check_access().await.expect_err("unknown issuer");
    assert!(matches!(err, BackendError::Transient { .. }), "{err:?}");

    let mut cfg = client_config(&emu.url());
    cfg.ca_bundle_pem = Some(b"not pem".to_vec());
    assert!(matches!(
        AsgardeoClient::new(cfg, None),
        Err(BackendError::Config(_))
    ));
}

#[tokio::test]
async fn tenants_are_isolated_and_state_persists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    let emu = Emulator::start(EmulatorConfig {
        state_file: Some(path.clone()),
        ..emulator_config()
    })
    .await
    .expect("emulator");
    let client = AsgardeoClient::new(client_config(&emu.url()), None).expect("client");
    client.create_idp(&google_idp("Google")).await.expect("idp");
    let mut other = client_config(&emu.url());
    other.target = Target::Wso2IdentityServer {
        url: emu.url(),
        tenant: "other".into(),
    };
    let other = AsgardeoClient::new(other, None).expect("client");
    assert!(other
        .find_idp_by_name("Google")
        .await
        .expect("find")
        .is_none());
    drop(emu);

    let emu = Emulator::start(EmulatorConfig {
        state_file: Some(path),
        ..emulator_config()
    })
    .await
    .expect("restart");
    let client = AsgardeoClient::new(client_config(&emu.url()), None).expect("client");
    assert!(
        client
            .find_idp_by_name("Google")
            .await
            .expect("find")
            .is_some(),
        "state reloaded from file"
    );
}

#[tokio::test]
async fn admin_endpoints_work_over_http() {
    let (emu, client) = setup().await;
    // Faults hit the token endpoint too: take the token first so the fault lands on the API call.
    client.check_access().await.expect("warm token");
    emu.reset_stats();
    let http = reqwest::Client::new();
    let faults = Faults {
        fail_next: 1,
        error_status: 502,
        ..Default::default()
    };
    let resp = http
        .post(format!("{}/_emulator/faults", emu.url()))
        .json(&faults)
        .send()
        .await
        .expect("post faults");
    assert_eq!(resp.status(), 204);
    let read: Faults = http
        .get(format!("{}/_emulator/faults", emu.url()))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(read, faults);
    client
        .find_idp_by_name("x")
        .await
        .expect("retried past the 502");
    let stats: identity_emulator::Stats = http
        .get(format!("{}/_emulator/stats", emu.url()))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats.faults_injected, 1);
    assert_eq!(stats.count(Operation::ListIdps), 2);
    assert_eq!(stats.reads, 2);
    assert_eq!(stats.statuses.get(&502), Some(&1));
    let resp = http
        .post(format!("{}/_emulator/revoke-tokens", emu.url()))
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), 204);
    let resp = http
        .post(format!("{}/_emulator/reset-stats", emu.url()))
        .send()
        .await
        .expect("reset");
    assert_eq!(resp.status(), 204);
    assert_eq!(emu.stats(), Default::default());
}

// ---------------------------------------------------------------------------------------------
// Behaviour confirmed in the real server's code (issue #10): the client against the emulator.

/// A token straight from the emulator's token endpoint, for requests the client would never send.
async fn raw_token(emu: &EmulatorHandle, scopes: &str) -> (String, Option<String>) {
    let resp: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/t/{TENANT}/oauth2/token", emu.url()))
        .basic_auth("operator", Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", scopes)])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token json");
    (
        resp["access_token"].as_str().expect("token").to_owned(),
        resp["scope"].as_str().map(str::to_owned),
    )
}

/// One API request over HTTP; returns status and JSON body (Null when empty).
async fn raw(
    emu: &EmulatorHandle,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .request(
            method,
            format!("{}/t/{TENANT}/api/server/v1/{path}", emu.url()),
        )
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

fn oidc_app(name: &str) -> NewApplication {
    NewApplication {
        name: name.into(),
        oidc: Some(OidcChange {
            grant_types: vec!["authorization_code".into()],
            callback_urls: vec!["https://app.example/cb".into()],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn oidc_update_carries_the_stored_client_id_and_secret() {
    let (emu, client) = setup().await;
    let app_id = client
        .create_application(&oidc_app("Wiki"))
        .await
        .expect("app");
    let before = client.get_oidc(&app_id).await.expect("oidc");
    let secret = before
        .client_secret
        .clone()
        .expect("secret visible with the view scope");
    let after = client
        .update_oidc(
            &app_id,
            &OidcChange {
                grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                callback_urls: vec!["https://wiki.example/new".into()],
                ..Default::default()
            },
        )
        .await
        .expect("update accepted");
    assert_eq!(
        after.callback_urls,
        vec!["https://wiki.example/new".to_owned()]
    );
    assert_eq!(after.client_id, before.client_id);
    assert_eq!(after.client_secret.as_ref(), Some(&secret), "secret kept");

    // The emulator refuses what the real server refuses: a PUT without the stored secret.
    let (token, _) = raw_token(&emu, &Operation::needed_scopes().join(" ")).await;
    let path = format!("applications/{app_id}/inbound-protocols/oidc");
    let body = |id: &str, secret: Option<&str>| {
        let mut b = serde_json::json!({
            "clientId": id,
            "grantTypes": ["authorization_code"],
            "callbackURLs": ["https://wiki.example/evil"],
        });
        if let Some(s) = secret {
            b["clientSecret"] = serde_json::json!(s);
        }
        b
    };
    let id = before.client_id.clone().expect("client id");
    for (b, want) in [
        (body(&id, None), "Invalid ClientSecret provided for update."),
        (
            body(&id, Some("guess")),
            "Invalid ClientSecret provided for update.",
        ),
        (
            body("other", Some(secret.expose())),
            "Invalid ClientID provided for update.",
        ),
    ] {
        let (status, err) = raw(&emu, &token, reqwest::Method::PUT, &path, Some(b)).await;
        assert_eq!(status, 400);
        assert_eq!(err["description"], want);
    }
    let unchanged = client.get_oidc(&app_id).await.expect("oidc");
    assert_eq!(
        unchanged.callback_urls,
        vec!["https://wiki.example/new".to_owned()]
    );
}

#[tokio::test]
async fn secret_view_scope_is_requested_and_its_absence_is_reported() {
    // Asked for by default, granted by the default emulator: nothing missing, secret visible.
    let (_emu, client) = setup().await;
    let info = client.check_access().await.expect("access");
    assert!(info
        .granted_scopes
        .iter()
        .any(|s| s == "internal_application_mgt_client_secret_view"));
    assert!(info.missing_scopes.is_empty(), "{:?}", info.missing_scopes);

    // An M2M app not authorized for it: the server drops it silently, the client says so.
    let emu = Emulator::start(EmulatorConfig {
        grant_scopes: Some(
            Operation::all_scopes()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ),
        ..emulator_config()
    })
    .await
    .expect("emulator");
    let client = AsgardeoClient::new(client_config(&emu.url()), None).expect("client");
    let info = client.check_access().await.expect("access still works");
    assert_eq!(
        info.missing_scopes,
        vec!["internal_application_mgt_client_secret_view".to_owned()]
    );
    let app_id = client
        .create_application(&oidc_app("Wiki"))
        .await
        .expect("app");
    let oidc = client.get_oidc(&app_id).await.expect("oidc");
    assert!(oidc.client_id.is_some());
    assert_eq!(oidc.client_secret, None, "hidden without the view scope");
    emu.reset_stats();
    let err = client
        .update_oidc(
            &app_id,
            &OidcChange {
                grant_types: vec!["authorization_code".into()],
                callback_urls: vec!["https://wiki.example/x".into()],
                ..Default::default()
            },
        )
        .await
        .expect_err("cannot echo a secret it cannot see");
    match &err {
        BackendError::Forbidden { missing_scope, .. } => assert_eq!(
            missing_scope.as_deref(),
            Some("internal_application_mgt_client_secret_view")
        ),
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert_eq!(emu.stats().count(Operation::UpdateOidc), 0, "no doomed PUT");
    // The secret itself is still there on the server.
    let stored = emu.with_tenant(TENANT, |t| {
        t.app(&app_id)
            .and_then(|a| a.oidc.as_ref()?.client_secret.clone())
    });
    assert!(stored.is_some_and(|s| !s.is_empty()));
}

#[tokio::test]
async fn requested_scopes_outside_the_authorization_are_dropped_and_reported() {
    let emu = Emulator::start(EmulatorConfig {
        grant_scopes: Some(vec!["internal_idp_view".into()]),
        ..emulator_config()
    })
    .await
    .expect("emulator");
    let (_, granted) = raw_token(&emu, "internal_idp_view internal_idp_create made_up").await;
    assert_eq!(granted.as_deref(), Some("internal_idp_view"));
    let client = AsgardeoClient::new(client_config(&emu.url()), None).expect("client");
    let info = client.check_access().await.expect("access");
    assert_eq!(info.granted_scopes, vec!["internal_idp_view".to_owned()]);
    let mut want: Vec<String> = Operation::needed_scopes()
        .into_iter()
        .filter(|s| *s != "internal_idp_view")
        .map(str::to_owned)
        .collect();
    want.sort();
    let mut missing = info.missing_scopes.clone();
    missing.sort();
    assert_eq!(missing, want);
    // An admin authorizes the rest: the next token has everything.
    emu.set_authorized_scopes(Operation::needed_scopes());
    let client = AsgardeoClient::new(client_config(&emu.url()), None).expect("client");
    assert!(client
        .check_access()
        .await
        .expect("access")
        .missing_scopes
        .is_empty());
}

#[tokio::test]
async fn disabling_an_idp_or_its_authenticator_in_use_is_a_final_refusal() {
    let (emu, client) = setup().await;
    let idp_id = client.create_idp(&google_idp("Google")).await.expect("idp");
    client
        .create_application(&NewApplication {
            name: "Payroll".into(),
            login_flow: Some(mfa_flow("Google")),
            ..Default::default()
        })
        .await
        .expect("app");
    emu.reset_stats();
    let err = client
        .patch_idp(&idp_id, &[IdpPatch::Enabled(false)])
        .await
        .expect_err("disable refused");
    assert!(!err.is_retryable(), "{err:?}");
    assert!(
        err.to_string().contains("referred by service providers"),
        "{err}"
    );
    assert_eq!(emu.stats().count(Operation::PatchIdp), 1, "not retried");
    let mut auth = client
        .get_federated_authenticator(&idp_id, &authenticator_id(GOOGLE))
        .await
        .expect("authenticator");
    auth.is_enabled = false;
    let err = client
        .update_federated_authenticator(&idp_id, &auth)
        .await
        .expect_err("disabling the authenticator refused");
    assert!(!err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains(GOOGLE), "{err}");
    let idp = client.get_idp(&idp_id).await.expect("idp");
    assert!(idp.is_enabled && idp.authenticators[0].is_enabled);
    // Without users both go through.
    let lone = client.create_idp(&google_idp("Lonely")).await.expect("idp");
    client
        .patch_idp(&lone, &[IdpPatch::Enabled(false)])
        .await
        .expect("unused IdP can be disabled");
}

#[tokio::test]
async fn oidc_not_configured_is_not_found_for_400_and_404() {
    let (emu, client) = setup().await;
    let app_id = client
        .create_application(&NewApplication {
            name: "NoOidc".into(),
            ..Default::default()
        })
        .await
        .expect("app");
    // The emulator answers like the server's handler: 400 APP-60502.
    let (token, _) = raw_token(&emu, "internal_application_mgt_view").await;
    let path = format!("applications/{app_id}/inbound-protocols/oidc");
    let (status, body) = raw(&emu, &token, reqwest::Method::GET, &path, None).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("APP-60502")));
    let err = client.get_oidc(&app_id).await.expect_err("not configured");
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(err.server_code(), Some("APP-60502"));
    // An update creates it.
    let created = client
        .update_oidc(
            &app_id,
            &OidcChange {
                grant_types: vec!["client_credentials".into()],
                ..Default::default()
            },
        )
        .await
        .expect("created by PUT");
    assert!(created.client_id.is_some() && created.client_secret.is_some());
    // An unknown application (404 APP-60006) is not found as well; a 404 carrying APP-60502 is
    // covered by the unit test `not_configured_maps_400_and_404_alike`.
    let unknown = client.get_oidc("no-such-app").await.expect_err("404");
    assert!(unknown.is_not_found());
    assert_eq!(unknown.server_code(), Some("APP-60006"));
}

#[tokio::test]
async fn hostile_server_values_are_clamped_not_trusted() {
    use identity_operator::backend::asgardeo::MAX_RETRY_AFTER;
    let (emu, client) = setup().await;
    // expires_in = u64::MAX would overflow Instant arithmetic: the client clamps it and works.
    emu.set_faults(Faults {
        token_lifetime_secs: Some(u64::MAX),
        ..Default::default()
    });
    client.check_access().await.expect("no panic, no overflow");
    // A six-month Retry-After is cut to the cap instead of parking the object.
    emu.set_faults(Faults {
        rate_limit_next: 1,
        retry_after_secs: 180 * 24 * 3600,
        ..Default::default()
    });
    let started = Instant::now();
    let err = client.get_idp("x").await.expect_err("429");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "did not wait it out"
    );
    match err {
        BackendError::RateLimited { retry_after } => {
            assert_eq!(retry_after, Some(MAX_RETRY_AFTER))
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn response_bodies_are_capped() {
    let emu = Emulator::start(emulator_config()).await.expect("emulator");
    let full = AsgardeoClient::new(client_config(&emu.url()), None).expect("client");
    for i in 0..5 {
        full.create_idp(&google_idp(&format!("Google-{i}")))
            .await
            .expect("idp");
    }
    let mut small = client_config(&emu.url());
    small.max_body_bytes = 300;
    let small = AsgardeoClient::new(small, None).expect("client");
    let err = small
        .find_idp_by_name("Google-4")
        .await
        .expect_err("page too big");
    assert!(matches!(err, BackendError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("larger than 300 bytes"), "{err}");
    assert!(full
        .find_idp_by_name("Google-4")
        .await
        .expect("ok")
        .is_some());
}

#[tokio::test]
async fn every_request_times_out() {
    let emu = Emulator::start(emulator_config()).await.expect("emulator");
    let mut cfg = client_config(&emu.url());
    cfg.request_timeout = Duration::from_millis(300);
    cfg.retry.max_attempts = 2;
    let client = AsgardeoClient::new(cfg, None).expect("client");
    client.check_access().await.expect("fast server");
    emu.set_faults(Faults {
        latency_ms: 5_000,
        ..Default::default()
    });
    let started = Instant::now();
    let err = client.get_idp("x").await.expect_err("slow server");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn names_clash_case_insensitively_unless_the_server_is_case_sensitive() {
    let (emu, client) = setup().await;
    client.create_idp(&google_idp("Google")).await.expect("idp");
    let dup = client
        .create_idp(&google_idp("google"))
        .await
        .expect_err("same name in another case");
    assert!(matches!(dup, BackendError::AlreadyExists { .. }), "{dup:?}");
    let found = client
        .find_idp_by_name("GOOGLE")
        .await
        .expect("find")
        .expect("the clashing IdP is found");
    assert_eq!(found.name, "Google");
    client
        .create_application(&oidc_app("Payroll"))
        .await
        .expect("app");
    let dup = client
        .create_application(&oidc_app("PAYROLL"))
        .await
        .expect_err("same app name in another case");
    assert!(matches!(dup, BackendError::AlreadyExists { .. }), "{dup:?}");
    assert_eq!(
        client
            .find_application_by_name("payroll")
            .await
            .expect("find")
            .map(|a| a.name),
        Some("Payroll".to_owned())
    );
    // `name eq` on the wire matches across case.
    let (token, _) = raw_token(&emu, "internal_idp_view").await;
    let (status, body) = raw(
        &emu,
        &token,
        reqwest::Method::GET,
        "identity-providers?filter=name%20eq%20%22gOoGlE%22",
        None,
    )
    .await;
    assert_eq!((status, body["totalResults"].as_u64()), (200, Some(1)));

    // A case-sensitive server keeps both, and the client prefers the exact match.
    let emu = Emulator::start(EmulatorConfig {
        case_sensitive_names: true,
        ..emulator_config()
    })
    .await
    .expect("emulator");
    let client = AsgardeoClient::new(client_config(&emu.url()), None).expect("client");
    let upper = client.create_idp(&google_idp("Google")).await.expect("idp");
    let lower = client.create_idp(&google_idp("google")).await.expect("idp");
    assert_ne!(upper, lower);
    let found = client
        .find_idp_by_name("google")
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found.id, lower);
}

#[tokio::test]
async fn idp_patch_accepts_replace_only_on_root_fields() {
    let (emu, client) = setup().await;
    let idp_id = client.create_idp(&google_idp("Google")).await.expect("idp");
    let (token, _) = raw_token(&emu, "internal_idp_update internal_idp_view").await;
    let path = format!("identity-providers/{idp_id}");
    for op in ["ADD", "REMOVE"] {
        let (status, body) = raw(
            &emu,
            &token,
            reqwest::Method::PATCH,
            &path,
            Some(serde_json::json!([{"operation": op, "path": "/description", "value": "x"}])),
        )
        .await;
        assert_eq!(status, 400, "{op}: {body}");
        assert_eq!(body["code"], "IDP-60025");
    }
    let (status, body) = raw(
        &emu,
        &token,
        reqwest::Method::PATCH,
        &path,
        Some(serde_json::json!([{"operation": "REPLACE", "path": "/description", "value": "x"}])),
    )
    .await;
    assert_eq!((status, body["description"].as_str()), (200, Some("x")));
    // The client only ever sends REPLACE.
    client
        .patch_idp(&idp_id, &[IdpPatch::Description("via client".into())])
        .await
        .expect("replace");
    assert_eq!(
        client
            .get_idp(&idp_id)
            .await
            .expect("idp")
            .description
            .as_deref(),
        Some("via client")
    );
}

#[tokio::test]
async fn target_urls_never_carry_credentials_and_http_is_loopback_only() {
    let make = |url: &str, insecure: bool| {
        let mut c = client_config(url);
        c.allow_insecure_http = insecure;
        AsgardeoClient::new(c, None)
    };
    let err = make("https://admin:hunter2@is.example:9443", false).expect_err("credentials");
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("credentials") && !text.contains("hunter2"),
        "{text}"
    );
    let err = make("http://is.example:9763", false).expect_err("clear text off-host");
    assert!(err.to_string().contains("allowInsecureHTTP"), "{err}");
    make("http://is.example:9763", true).expect("explicit opt-in");
    for ok in [
        "http://127.0.0.1:8080",
        "http://localhost:1",
        "http://[::1]:2",
        "https://is.example",
    ] {
        make(ok, false).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

/// A tiny HTTP server on a free loopback port answering every request with `handler`; returns
/// its base URL. It lives until the test's runtime ends.
async fn tiny_server<H, Fut>(handler: H) -> String
where
    H: Fn(axum::http::Method, axum::http::Uri) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = axum::response::Response> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(handler);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A token answer any test server can give.
fn token_response() -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::Json(serde_json::json!({
        "access_token": "t", "token_type": "Bearer", "expires_in": 3600,
        "scope": Operation::needed_scopes().join(" "),
    }))
    .into_response()
}

fn redirect_to(target: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::FOUND,
        [(axum::http::header::LOCATION, target)],
    )
        .into_response()
}

#[tokio::test]
async fn redirects_are_not_followed() {
    use std::sync::atomic::{AtomicU32, Ordering};
    // Where a hostile server would send the token (or the client credentials): it counts hits.
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let elsewhere = tiny_server(move |_, _| {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            token_response()
        }
    })
    .await;
    // One server redirects the token request itself, the other only the API calls.
    let e1 = elsewhere.clone();
    let token_redirects = tiny_server(move |_, uri: axum::http::Uri| {
        let to = format!("{e1}{}", uri.path());
        async move { redirect_to(to) }
    })
    .await;
    let e2 = elsewhere.clone();
    let api_redirects = tiny_server(move |_, uri: axum::http::Uri| {
        let to = format!("{e2}{}", uri.path());
        async move {
            if uri.path().ends_with("/oauth2/token") {
                token_response()
            } else {
                redirect_to(to)
            }
        }
    })
    .await;
    for (url, what) in [(token_redirects, "token"), (api_redirects, "API")] {
        let client = AsgardeoClient::new(client_config(&url), None).expect("client");
        let err = client
            .check_access()
            .await
            .expect_err("a redirect is an error");
        assert!(
            matches!(err, BackendError::Protocol { .. }),
            "{what}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("HTTP 302") && text.contains("redirects are not followed"),
            "{what}: {text}"
        );
        assert!(text.contains(&url), "{what}: names the server: {text}");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the redirect target was never contacted"
    );
}

#[tokio::test]
async fn a_list_without_end_is_cut_at_the_page_cap() {
    use identity_operator::backend::asgardeo::MAX_LIST_PAGES;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let pages = Arc::new(AtomicUsize::new(0));
    let p = pages.clone();
    let url = tiny_server(move |_, uri: axum::http::Uri| {
        let p = p.clone();
        async move {
            use axum::response::IntoResponse;
            if uri.path().ends_with("/oauth2/token") {
                return token_response();
            }
            // Every page links to one more, forever.
            let n = p.fetch_add(1, Ordering::SeqCst) + 1;
            axum::Json(serde_json::json!({
                "totalResults": n + 1,
                "identityProviders": [{"id": format!("id-{n}"), "name": format!("n-{n}")}],
                "links": [{"rel": "next", "href": format!("/t/acme/api/server/v1/identity-providers?offset={n}&limit=1")}],
            }))
            .into_response()
        }
    })
    .await;
    let client = AsgardeoClient::new(client_config(&url), None).expect("client");
    let err = client
        .find_idp_by_name("never")
        .await
        .expect_err("endless list");
    let text = err.to_string();
    assert!(matches!(err, BackendError::Protocol { .. }), "{err:?}");
    assert!(
        text.contains(&format!("{MAX_LIST_PAGES} pages")) && text.contains(&url),
        "{text}"
    );
    assert_eq!(pages.load(Ordering::SeqCst), MAX_LIST_PAGES);
}

#[tokio::test]
async fn a_list_over_the_byte_cap_is_refused_while_streaming() {
    use identity_operator::backend::asgardeo::{DEFAULT_MAX_BODY_BYTES, MAX_LIST_BYTES};
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Pages just under the per-response cap: only their sum is too much.
    let page_bytes = DEFAULT_MAX_BODY_BYTES - 1024;
    let pages = Arc::new(AtomicUsize::new(0));
    let p = pages.clone();
    let url = tiny_server(move |_, uri: axum::http::Uri| {
        let p = p.clone();
        async move {
            use axum::response::IntoResponse;
            if uri.path().ends_with("/oauth2/token") {
                return token_response();
            }
            let n = p.fetch_add(1, Ordering::SeqCst) + 1;
            let mut body = serde_json::to_vec(&serde_json::json!({
                "identityProviders": [],
                "links": [{"rel": "next", "href": format!("/t/acme/api/server/v1/identity-providers?offset={n}&limit=1")}],
            }))
            .expect("json");
            body.resize(page_bytes, b' ');
            // Streamed without Content-Length: the cap must hold while reading.
            let chunks = body
                .chunks(64 * 1024)
                .map(|c| Ok::<_, std::io::Error>(axum::body::Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>();
            axum::body::Body::from_stream(futures::stream::iter(chunks)).into_response()
        }
    })
    .await;
    let client = AsgardeoClient::new(client_config(&url), None).expect("client");
    let err = client
        .find_idp_by_name("big")
        .await
        .expect_err("list too large");
    let text = err.to_string();
    assert!(
        text.contains(&format!("larger than {MAX_LIST_BYTES} bytes")) && text.contains(&url),
        "{text}"
    );
    assert_eq!(
        pages.load(Ordering::SeqCst),
        MAX_LIST_BYTES / page_bytes + 1,
        "stopped at the page that crossed the cap"
    );

    // One endless body: refused once past the per-response cap, not read to its (absent) end.
    let endless = tiny_server(|_, uri: axum::http::Uri| async move {
        use axum::response::IntoResponse;
        if uri.path().ends_with("/oauth2/token") {
            return token_response();
        }
        let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
        axum::body::Body::from_stream(futures::stream::repeat_with(move || {
            Ok::<_, std::io::Error>(chunk.clone())
        }))
        .into_response()
    })
    .await;
    let client = AsgardeoClient::new(client_config(&endless), None).expect("client");
    let err = client
        .find_idp_by_name("big")
        .await
        .expect_err("endless body");
    assert!(
        err.to_string()
            .contains(&format!("larger than {DEFAULT_MAX_BODY_BYTES} bytes")),
        "{err}"
    );
}

#[tokio::test]
async fn a_tarpit_costs_one_timeout_per_call_and_is_reported_degraded() {
    use identity_operator::backend::health::{Health, Misbehaviour};
    let emu = Emulator::start(emulator_config()).await.expect("emulator");
    let mut cfg = client_config(&emu.url());
    cfg.request_timeout = Duration::from_millis(300);
    cfg.retry.max_attempts = 4;
    let health = Arc::new(Health::default());
    cfg.health = health.clone();
    let client = AsgardeoClient::new(cfg, None).expect("client");
    client.check_access().await.expect("fast server");
    assert!(!health.is_degraded());
    emu.set_faults(Faults {
        latency_ms: 60_000,
        ..Default::default()
    });
    // Healthy before: the first timeout is retried once, no more (of 4 attempts allowed).
    let gets = || emu.stats().count(Operation::GetIdp);
    let before = gets();
    client.get_idp("x").await.expect_err("tarpit");
    assert_eq!(gets() - before, 2, "one retry after a timeout");
    let d = health.degraded().expect("degraded");
    assert_eq!(d.what, Misbehaviour::Timeout);
    assert!(d.detail.contains(&emu.url()), "{d:?}");
    // Degraded: not retried at all.
    let before = gets();
    let err = client.get_idp("x").await.expect_err("tarpit");
    assert!(
        err.is_retryable() && err.to_string().contains("timed out"),
        "{err}"
    );
    assert_eq!(gets() - before, 1, "no retry while degraded");
    emu.set_faults(Faults::default());
    client.get_idp("x").await.expect_err("not found");
    assert!(!health.is_degraded(), "a good answer clears it");
}
