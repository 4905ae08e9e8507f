//! Claim, role and group mappings of an IdentityProvider (issue 21 item 2) on a real
//! kube-apiserver and etcd against the emulator, beyond the field matrix's round trips: what the
//! apiserver refuses (CEL), what the server refuses (reported with its answer, the rest still
//! written), and what a read-merge-write must keep (group ids, outbound-provisioning roles, the
//! server's mappings seen by the lookup check).

mod common;

use std::time::Duration;

use common::{wait_until, TestEnv, TENANT};
use identity_emulator::idp_mappings as emu;
use identity_operator::backend::wire;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

fn google(extra: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: staff-google, labels: {{identity-operator.io/use: identity-provider-client-secret}}}}
stringData: {{client-secret: google-very-secret-value}}
---
apiVersion: identity-operator.io/v1alpha1
kind: IdentityProvider
metadata: {{name: staff-google}}
spec:
  backendRef: {{name: asgardeo}}
  displayName: Staff Google
  google:
    clientID: staff.apps.example
    clientSecretRef: {{name: staff-google, key: client-secret}}
{extra}
"#
    )
}

/// The emulator's stored IdP by name, through a closure.
fn with_idp<R>(
    env: &TestEnv,
    name: &str,
    f: impl FnOnce(&mut identity_emulator::StoredIdp, &[String]) -> R,
) -> Option<R> {
    env.emulator.with_tenant(TENANT, |t| {
        let local = emu::local_claims(t);
        t.idps
            .iter_mut()
            .find(|i| i.name == name)
            .map(|i| f(i, &local))
    })
}

fn claim_mappings(env: &TestEnv) -> Vec<(String, String)> {
    with_idp(env, "Staff Google", |i, local| {
        emu::claims_response(i, local)
            .mappings
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                (
                    m.idp_claim.unwrap_or_default(),
                    m.local_claim
                        .map(|c| c.uri_str().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect()
    })
    .unwrap_or_default()
}

fn groups(env: &TestEnv) -> Vec<(String, Option<String>)> {
    with_idp(env, "Staff Google", |i, _| {
        i.groups
            .iter()
            .map(|g| (g.name.clone(), g.id.clone()))
            .collect()
    })
    .unwrap_or_default()
}

fn message(cond: &Value) -> String {
    cond["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_refused_mapping_is_reported_with_the_servers_answer_and_a_merge_keeps_what_it_must() {
    common::require_dev_env();
    let mut env = TestEnv::new("idp-mappings").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    // costcenter is not a local claim of the tenant: the server refuses the claims PUT.
    let spec = r#"  claims:
    userIdClaim: email
    mappings:
      - {idpClaim: email, localClaim: "http://wso2.org/claims/emailaddress"}
      - {idpClaim: cc, localClaim: "http://wso2.org/claims/costcenter"}
  roles: {mappings: [{idpRole: staff-admin, localRole: admin}]}
  groups: [{name: staff-devs}]"#;
    env.apply(&google(spec)).await.expect("idp");
    let ready = env.not_ready("IdentityProvider", "staff-google", T).await;
    assert_eq!(ready["reason"], "MappingsRejected", "{ready}");
    for needle in [
        "One or more local claim URIs do not exist",
        "IDP-60032",
        "add it to the tenant's local attributes",
    ] {
        assert!(
            message(&ready).contains(needle),
            "{needle:?} missing: {ready}"
        );
    }
    assert!(
        claim_mappings(&env).is_empty(),
        "the refused claims are not stored"
    );
    // The refusal held back neither the roles nor the groups.
    assert_eq!(groups(&env).len(), 1, "the groups are written");
    let roles = with_idp(&env, "Staff Google", |i, _| emu::roles_response(i).mappings);
    assert_eq!(
        roles.flatten().map(|m| m.len()),
        Some(1),
        "the roles are written"
    );

    // The fix goes through, and Ready comes back.
    env.set_spec(
        "IdentityProvider",
        "staff-google",
        json!({"claims": {"mappings": [
            {"idpClaim": "email", "localClaim": "http://wso2.org/claims/emailaddress"},
            {"idpClaim": "cc", "localClaim": "http://wso2.org/claims/department"}]}}),
    )
    .await;
    env.ready("IdentityProvider", "staff-google", T).await;
    let mut stored = claim_mappings(&env);
    stored.sort();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        stored,
        vec![
            pair("cc", "http://wso2.org/claims/department"),
            pair("email", "http://wso2.org/claims/emailaddress"),
        ]
    );

    // A console adds outbound-provisioning roles; a change of the role mappings and of the groups
    // keeps them, and keeps the id of the group that stays.
    let devs_id = groups(&env)[0].1.clone();
    assert!(devs_id.is_some());
    with_idp(&env, "Staff Google", |i, _| {
        i.roles.outbound_provisioning_roles = Some(vec!["hr-admin".into()]);
    });
    env.set_spec(
        "IdentityProvider",
        "staff-google",
        json!({
            "roles": {"mappings": [{"idpRole": "staff-admin", "localRole": "manager"}]},
            "groups": [{"name": "staff-devs"}, {"name": "staff-ops"}]}),
    )
    .await;
    let after = wait_until(T, || async {
        let g = groups(&env);
        (g.len() == 2).then_some(g)
    })
    .await
    .expect("both groups on the server");
    let devs = after.iter().find(|(n, _)| n == "staff-devs").expect("devs");
    assert_eq!(devs.1, devs_id, "the kept group keeps its server id");
    let roles = with_idp(&env, "Staff Google", |i, _| emu::roles_response(i)).expect("idp");
    assert_eq!(
        roles.mappings,
        Some(vec![wire::RoleMapping {
            idp_role: Some("staff-admin".into()),
            local_role: Some("manager".into()),
        }])
    );
    assert_eq!(
        roles.outbound_provisioning_roles,
        Some(vec!["hr-admin".to_string()]),
        "the roles PUT would clear them if the merge left them out"
    );
}

#[tokio::test]
async fn a_lookup_by_a_claim_the_servers_mappings_do_not_map_is_a_condition() {
    common::require_dev_env();
    let mut env = TestEnv::new("idp-lookup-claim").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    // The spec leaves the claim mappings to the server and looks users up by mobile.
    let spec = r#"  jit:
    enabled: true
    accountLookup: [{localAttribute: "http://wso2.org/claims/mobile", federatedAttribute: phone}]"#;
    env.apply(&google(spec)).await.expect("idp");
    env.ready("IdentityProvider", "staff-google", T).await;
    // A console maps claims, none of them to mobile; the next pass (a spec change) sees it.
    with_idp(&env, "Staff Google", |i, _| {
        emu::set_claims(
            i,
            &wire::Claims {
                mappings: Some(vec![wire::ClaimMapping {
                    idp_claim: Some("email".into()),
                    local_claim: Some(wire::Claim::uri("http://wso2.org/claims/emailaddress")),
                }]),
                ..Default::default()
            },
        )
    })
    .expect("idp on the server");
    env.set_spec(
        "IdentityProvider",
        "staff-google",
        json!({"description": "staff sign-in"}),
    )
    .await;
    let ready = env.not_ready("IdentityProvider", "staff-google", T).await;
    assert_eq!(ready["reason"], "LookupClaimNotMapped", "{ready}");
    assert!(
        message(&ready).contains("http://wso2.org/claims/mobile"),
        "{ready}"
    );
    // Mapping a claim to it in the spec clears it.
    env.set_spec(
        "IdentityProvider",
        "staff-google",
        json!({"claims": {"mappings": [
            {"idpClaim": "email", "localClaim": "http://wso2.org/claims/emailaddress"},
            {"idpClaim": "phone", "localClaim": "http://wso2.org/claims/mobile"}]}}),
    )
    .await;
    env.ready("IdentityProvider", "staff-google", T).await;
}

#[tokio::test]
async fn the_apiserver_refuses_mappings_the_server_would_refuse_or_drop() {
    common::require_dev_env();
    let env = TestEnv::new("idp-mappings-cel").await;
    env.create_backend("asgardeo").await;
    let cases = [
        (
            "a local claim outside the wso2 dialect",
            r#"  claims: {mappings: [{idpClaim: email, localClaim: email}]}"#,
            "localClaim must be a local claim URI",
        ),
        (
            "a user id claim that no mapping has",
            r#"  claims: {userIdClaim: sub, mappings: [{idpClaim: email, localClaim: "http://wso2.org/claims/emailaddress"}]}"#,
            "userIdClaim: with mappings it must be a mapped idpClaim",
        ),
        (
            "provisioning claims without mappings in the spec",
            r#"  claims: {provisioningClaims: [{claim: email, defaultValue: x}]}"#,
            "provisioningClaims needs mappings",
        ),
        (
            "a provisioning claim that no mapping has",
            r#"  claims: {mappings: [{idpClaim: email, localClaim: "http://wso2.org/claims/emailaddress"}], provisioningClaims: [{claim: country, defaultValue: LK}]}"#,
            "with mappings each claim must be a mapped idpClaim",
        ),
        (
            "a lookup by a claim the declared mappings do not map",
            "  claims: {mappings: [{idpClaim: email, localClaim: \"http://wso2.org/claims/emailaddress\"}]}\n  jit: {enabled: true, accountLookup: [{localAttribute: \"http://wso2.org/claims/mobile\", federatedAttribute: phone}]}",
            "each localAttribute must be a local claim that claims.mappings maps to",
        ),
        (
            "a group twice",
            r#"  groups: [{name: devs}, {name: devs}]"#,
            "each name at most once",
        ),
    ];
    for (what, extra, needle) in cases {
        let err = env
            .apply(&google(extra))
            .await
            .expect_err(&format!("{what}: accepted"));
        assert!(err.contains(needle), "{what}: {err}");
    }
    // And a consistent spec is accepted.
    env.apply(&google(
        "  claims: {roleClaim: groups, mappings: [{idpClaim: groups, localClaim: \"http://wso2.org/claims/groups\"}], provisioningClaims: [{claim: groups, defaultValue: staff}]}",
    ))
    .await
    .expect("a consistent spec applies");
}

#[tokio::test]
async fn the_mappings_example_converges_as_written() {
    common::require_dev_env();
    let mut env = TestEnv::new("idp-mappings-example").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/jit-on/mappings.yaml");
    let yaml = std::fs::read_to_string(path)
        .expect("example")
        .replace("namespace: identity", &format!("namespace: {}", env.ns));
    env.apply(&yaml).await.expect("the example applies");
    env.ready("IdentityProvider", "staff-google", T).await;
    let m = with_idp(&env, "Staff Google", |i, local| {
        identity_operator::backend::IdpMappings::from_wire(
            Some(&emu::claims_response(i, local)),
            Some(&emu::roles_response(i)),
            Some(&i.groups),
        )
    })
    .expect("idp on the server");
    assert_eq!(m.user_id_claim, "email");
    assert_eq!(m.claim_mappings.len(), 3);
    assert_eq!(m.provisioning_claims.len(), 1);
    assert_eq!(m.role_mappings.len(), 1);
    assert_eq!(m.group_names(), vec!["staff-admins", "staff-engineering"]);

    // The Entra ID example: an oidc IdP with Microsoft's endpoints and claim mappings.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/jit-on/entra.yaml");
    let yaml = std::fs::read_to_string(path)
        .expect("example")
        .replace("namespace: identity", &format!("namespace: {}", env.ns));
    env.apply(&yaml).await.expect("the example applies");
    env.ready("IdentityProvider", "entra", T).await;
    let (authz, maps) = with_idp(&env, "Microsoft", |i, local| {
        let authz = i.authenticators[0]
            .properties
            .iter()
            .flatten()
            .find(|p| p.key == "OAuth2AuthzEPUrl")
            .and_then(|p| p.value.clone());
        let maps = emu::claims_response(i, local).mappings.map(|m| m.len());
        (authz, maps)
    })
    .expect("entra on the server");
    assert_eq!(
        authz.as_deref(),
        Some("https://login.microsoftonline.com/TENANT_ID/oauth2/v2.0/authorize")
    );
    assert_eq!(maps, Some(3));
}

/// The Apple IdP's stored authenticator properties as (key, value).
fn apple_props(env: &TestEnv) -> Vec<(String, Option<String>)> {
    with_idp(env, "Apple", |i, _| {
        i.authenticators[0]
            .properties
            .iter()
            .flatten()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect()
    })
    .unwrap_or_default()
}

fn prop_of(props: &[(String, Option<String>)], key: &str) -> Option<String> {
    props
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.clone())
}

#[tokio::test]
async fn the_apple_example_converges_and_pushes_the_private_key_only() {
    use identity_operator::backend::operation::Operation;
    common::require_dev_env();
    let mut env = TestEnv::new("idp-apple-example").await;
    env.start_operator(&[]);
    env.create_backend("asgardeo").await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/jit-on/apple.yaml");
    let yaml = std::fs::read_to_string(path)
        .expect("example")
        .replace("namespace: identity", &format!("namespace: {}", env.ns));
    env.apply(&yaml).await.expect("the example applies");
    env.wait_condition("IdentityProvider", "apple", "Ready", "True", T)
        .await;
    let props = apple_props(&env);
    let key = prop_of(&props, "PrivateKey").expect("the private key is pushed");
    assert!(
        key.contains("REPLACE_WITH_THE_P8_KEY_FROM_APPLE"),
        "PrivateKey is the Secret's value"
    );
    for (k, want) in [
        ("ClientId", "com.example.web"),
        ("TeamId", "TEAMID1234"),
        ("KeyId", "KEYID12345"),
        ("Scopes", "name email"),
    ] {
        assert_eq!(prop_of(&props, k).as_deref(), Some(want), "{k}");
    }
    // The client secret, its expiry and the regeneration flag are the server's to make.
    for k in [
        "ClientSecret",
        "SecretExpiryEpochTime",
        "RegenerateClientSecret",
    ] {
        assert!(prop_of(&props, k).is_none(), "{k} sent: {props:?}");
    }

    // A login makes the server sign a client secret and store it (AppleAuthenticator
    // .evaluateClientSecret): no drift, so no write over the next drift checks.
    with_idp(&env, "Apple", |i, _| {
        let props = i.authenticators[0].properties.get_or_insert_with(Vec::new);
        for (k, v) in [
            ("ClientSecret", "signed.jwt.value"),
            ("SecretExpiryEpochTime", "1796000000"),
            ("RegenerateClientSecret", "false"),
        ] {
            props.push(wire::Property {
                key: k.into(),
                value: Some(v.into()),
            });
        }
    })
    .expect("apple on the server");
    let (reads, pushes) = {
        let s = env.emulator.stats();
        (
            s.count(Operation::GetIdp),
            s.count(Operation::UpdateFederatedAuthenticator),
        )
    };
    wait_until(T, || async {
        (env.emulator.stats().count(Operation::GetIdp) >= reads + 2).then_some(())
    })
    .await
    .expect("drift checks ran");
    assert_eq!(
        env.emulator
            .stats()
            .count(Operation::UpdateFederatedAuthenticator),
        pushes,
        "the server's own client secret is not drift"
    );
    assert_eq!(
        prop_of(&apple_props(&env), "ClientSecret").as_deref(),
        Some("signed.jwt.value")
    );

    // A new key is pushed; the push drops the secret signed with the old one (the server's PUT
    // keeps only what it carries), so the next login signs one with the new key.
    env.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: apple-private-key, namespace: {}, labels: {{identity-operator.io/use: identity-provider-client-secret}}}}\nstringData: {{private-key: the-rotated-key}}\n",
        env.ns
    ))
    .await
    .expect("rotate the key");
    wait_until(T, || async {
        (prop_of(&apple_props(&env), "PrivateKey").as_deref() == Some("the-rotated-key"))
            .then_some(())
    })
    .await
    .expect("the rotated key is pushed");
    let props = apple_props(&env);
    assert!(prop_of(&props, "ClientSecret").is_none(), "{props:?}");
    assert_eq!(prop_of(&props, "TeamId").as_deref(), Some("TEAMID1234"));
}

#[tokio::test]
async fn the_apiserver_refuses_apple_and_facebook_specs_the_server_could_not_use() {
    common::require_dev_env();
    let env = TestEnv::new("idp-apple-cel").await;
    env.create_backend("asgardeo").await;
    let apple = |extra: &str| {
        format!(
            "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {{name: apple}}\nspec:\n  backendRef: {{name: asgardeo}}\n  displayName: Apple\n  apple:\n    clientID: com.example.web\n    teamID: TEAMID1234\n    keyID: KEYID12345\n    privateKeySecretRef: {{name: k, key: private-key}}\n{extra}\n"
        )
    };
    let cases = [
        (
            "a validity the server would renew at every login",
            "    secretValidityPeriodSeconds: 3600",
            "secretValidityPeriodSeconds",
        ),
        (
            "more than Apple accepts",
            "    secretValidityPeriodSeconds: 15777001",
            "secretValidityPeriodSeconds",
        ),
        (
            "a scope the server would split",
            "    scopes: [\"name email\"]",
            "scopes: each must be one word",
        ),
        (
            "query parameters that are not key=value pairs",
            "    additionalQueryParameters: \"&prompt\"",
            "key=value pairs joined by &",
        ),
        (
            "two types",
            "  google: {clientID: g, clientSecretRef: {name: k, key: k}}",
            "set exactly one identity provider type",
        ),
    ];
    for (what, extra, needle) in cases {
        let err = env
            .apply(&apple(extra))
            .await
            .expect_err(&format!("{what}: accepted"));
        assert!(err.contains(needle), "{what}: {err}");
    }
    env.apply(&apple("    secretValidityPeriodSeconds: 86400"))
        .await
        .expect("a valid spec applies");
    // Facebook's user-info fields are sent comma separated: one field name each.
    let facebook = |fields: &str| {
        format!(
            "apiVersion: identity-operator.io/v1alpha1\nkind: IdentityProvider\nmetadata: {{name: facebook}}\nspec:\n  backendRef: {{name: asgardeo}}\n  displayName: Facebook\n  facebook: {{clientID: fb, clientSecretRef: {{name: k, key: k}}, userInfoFields: {fields}}}\n"
        )
    };
    let err = env
        .apply(&facebook("[\"id,name\"]"))
        .await
        .expect_err("a comma inside a field: accepted");
    assert!(
        err.contains("userInfoFields: each must be one Graph API field name"),
        "{err}"
    );
    env.apply(&facebook("[id, name, email, \"picture.type(large)\"]"))
        .await
        .expect("field names apply");
}
