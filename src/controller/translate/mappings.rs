//! The claim, role and group mappings of an IdentityProvider against the server's: what the spec
//! declares, what of it differs, and the lookup-claim cross-check. Pure.

use crate::api::IdentityProviderSpec;
use crate::backend::{ClaimMap, DefaultClaim, IdpMappings, MappingsChange, RoleMap};

/// The mappings change the spec asks for: only declared fields are `Some`. Lists are sorted, as
/// [`IdpMappings`] keeps the server's, so that order never counts as a difference.
pub fn mappings_change(spec: &IdentityProviderSpec) -> Option<MappingsChange> {
    let claims = spec.claims.as_ref();
    let change = MappingsChange {
        user_id_claim: claims.and_then(|c| c.user_id_claim.clone()),
        role_claim: claims.and_then(|c| c.role_claim.clone()),
        claim_mappings: claims.and_then(|c| c.mappings.as_ref()).map(|list| {
            sorted(
                list.iter()
                    .map(|m| ClaimMap {
                        idp_claim: m.idp_claim.clone(),
                        local_claim: m.local_claim.clone(),
                    })
                    .collect(),
            )
        }),
        provisioning_claims: claims
            .and_then(|c| c.provisioning_claims.as_ref())
            .map(|list| {
                sorted(
                    list.iter()
                        .map(|p| DefaultClaim {
                            claim: p.claim.clone(),
                            default_value: p.default_value.clone(),
                        })
                        .collect(),
                )
            }),
        role_mappings: spec
            .roles
            .as_ref()
            .and_then(|r| r.mappings.as_ref())
            .map(|list| {
                sorted(
                    list.iter()
                        .map(|m| RoleMap {
                            idp_role: m.idp_role.clone(),
                            local_role: m.local_role.clone(),
                        })
                        .collect(),
                )
            }),
        groups: spec
            .groups
            .as_ref()
            .map(|list| sorted(list.iter().map(|g| g.name.clone()).collect())),
    };
    (change != MappingsChange::default()).then_some(change)
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// The fields of `change` that differ from what the server has; `None` when nothing differs.
pub fn mappings_diff(change: &MappingsChange, server: &IdpMappings) -> Option<MappingsChange> {
    let out = MappingsChange {
        user_id_claim: change
            .user_id_claim
            .clone()
            .filter(|v| *v != server.user_id_claim),
        role_claim: change
            .role_claim
            .clone()
            .filter(|v| *v != server.role_claim),
        claim_mappings: change
            .claim_mappings
            .clone()
            .filter(|v| *v != server.claim_mappings),
        provisioning_claims: change
            .provisioning_claims
            .clone()
            .filter(|v| *v != server.provisioning_claims),
        role_mappings: change
            .role_mappings
            .clone()
            .filter(|v| *v != server.role_mappings),
        groups: change.groups.clone().filter(|v| *v != server.group_names()),
    };
    (out != MappingsChange::default()).then_some(out)
}

/// The declared account-lookup claims that no claim mapping maps to, when the IdP has claim
/// mappings: the spec's, or the server's when the spec leaves them out (CEL checks the case where
/// both are in the spec). With the local claim dialect (no mappings) every local claim arrives as
/// itself, so nothing is reported.
pub fn unmapped_lookup_claims(spec: &IdentityProviderSpec, server: &IdpMappings) -> Vec<String> {
    let Some(lookup) = spec.jit.as_ref().and_then(|j| j.account_lookup.as_ref()) else {
        return Vec::new();
    };
    let declared: Option<Vec<&str>> = spec
        .claims
        .as_ref()
        .and_then(|c| c.mappings.as_ref())
        .map(|m| m.iter().map(|m| m.local_claim.as_str()).collect());
    let mapped: Vec<&str> = declared.unwrap_or_else(|| {
        server
            .claim_mappings
            .iter()
            .map(|m| m.local_claim.as_str())
            .collect()
    });
    if mapped.is_empty() {
        return Vec::new();
    }
    lookup
        .iter()
        .map(|l| l.local_attribute.as_str())
        .filter(|a| !mapped.contains(a))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::identity_provider::{
        AccountLookup, ClaimMappingSpec, ClaimsSpec, IdpGroupSpec, JitSpec, RolesSpec,
    };

    const EMAIL: &str = "http://wso2.org/claims/emailaddress";
    const COUNTRY: &str = "http://wso2.org/claims/country";

    fn spec(json: serde_json::Value) -> IdentityProviderSpec {
        let mut base = serde_json::json!({
            "backendRef": {"name": "b"},
            "displayName": "G",
            "google": {"clientID": "c", "clientSecretRef": {"name": "s", "key": "k"}},
        });
        crate::export::matrix_tests::merge(&mut base, &json);
        serde_json::from_value(base).expect("spec")
    }

    fn map(idp: &str, local: &str) -> ClaimMap {
        ClaimMap {
            idp_claim: idp.into(),
            local_claim: local.into(),
        }
    }

    fn server() -> IdpMappings {
        IdpMappings {
            user_id_claim: "email".into(),
            role_claim: String::new(),
            claim_mappings: vec![map("country", COUNTRY), map("email", EMAIL)],
            provisioning_claims: vec![],
            role_mappings: vec![RoleMap {
                idp_role: "admin".into(),
                local_role: "admin".into(),
            }],
            groups: vec![crate::backend::wire::IdpGroup {
                name: "devs".into(),
                id: Some("g1".into()),
            }],
        }
    }

    #[test]
    fn only_declared_fields_that_differ_are_changed_and_order_does_not_count() {
        let cases: Vec<(&str, serde_json::Value, Option<MappingsChange>)> = vec![
            ("nothing declared", serde_json::json!({}), None),
            (
                "same mappings in another order",
                serde_json::json!({"claims": {"userIdClaim": "email", "mappings": [
                    {"idpClaim": "email", "localClaim": EMAIL},
                    {"idpClaim": "country", "localClaim": COUNTRY}]}}),
                None,
            ),
            (
                "a role claim",
                serde_json::json!({"claims": {"roleClaim": "groups"}}),
                Some(MappingsChange {
                    role_claim: Some("groups".into()),
                    ..Default::default()
                }),
            ),
            (
                "an empty role mapping list removes them",
                serde_json::json!({"roles": {"mappings": []}}),
                Some(MappingsChange {
                    role_mappings: Some(vec![]),
                    ..Default::default()
                }),
            ),
            (
                "same groups",
                serde_json::json!({"groups": [{"name": "devs"}]}),
                None,
            ),
            (
                "another group",
                serde_json::json!({"groups": [{"name": "ops"}, {"name": "devs"}]}),
                Some(MappingsChange {
                    groups: Some(vec!["devs".into(), "ops".into()]),
                    ..Default::default()
                }),
            ),
        ];
        for (name, json, want) in cases {
            let got = mappings_change(&spec(json)).and_then(|c| mappings_diff(&c, &server()));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_merge_keeps_what_the_spec_leaves_out_and_group_ids() {
        use crate::backend::wire;
        let server_claims = wire::Claims {
            user_id_claim: Some(wire::Claim::uri("email")),
            mappings: Some(vec![wire::ClaimMapping {
                idp_claim: Some("email".into()),
                local_claim: Some(wire::Claim::uri(EMAIL)),
            }]),
            ..Default::default()
        };
        let change = MappingsChange {
            role_claim: Some("email".into()),
            groups: Some(vec!["devs".into(), "ops".into()]),
            ..Default::default()
        };
        let body = change.claims_body(&server_claims).expect("claims");
        assert_eq!(body.user_id_claim, Some(wire::Claim::uri("email")));
        assert_eq!(body.role_claim, Some(wire::Claim::uri("email")));
        assert_eq!(body.mappings.as_ref().map(Vec::len), Some(1));
        assert!(change.roles_body(&wire::Roles::default()).is_none());
        let groups = change.groups_body(&server().groups).expect("groups");
        assert_eq!(
            groups[0].id.as_deref(),
            Some("g1"),
            "a kept group keeps its id"
        );
        assert_eq!(
            groups[1].id, None,
            "a new group gets its id from the server"
        );
        let roles = MappingsChange {
            role_mappings: Some(vec![]),
            ..Default::default()
        }
        .roles_body(&wire::Roles {
            outbound_provisioning_roles: Some(vec!["hr".into()]),
            ..Default::default()
        })
        .expect("roles");
        assert_eq!(
            roles.outbound_provisioning_roles,
            Some(vec!["hr".into()]),
            "the PUT would clear them if left out"
        );
    }

    #[test]
    fn a_lookup_claim_must_be_mapped_when_the_idp_has_mappings() {
        let with_lookup = |claims: Option<ClaimsSpec>| {
            let mut s = spec(serde_json::json!({}));
            s.jit = Some(JitSpec {
                enabled: true,
                account_lookup: Some(vec![AccountLookup {
                    local_attribute: "http://wso2.org/claims/mobile".into(),
                    federated_attribute: "phone".into(),
                }]),
                ..Default::default()
            });
            s.claims = claims;
            s.roles = Some(RolesSpec::default());
            s.groups = Some(vec![IdpGroupSpec { name: "x".into() }]);
            s
        };
        let declared = |maps: Vec<(&str, &str)>| {
            Some(ClaimsSpec {
                mappings: Some(
                    maps.into_iter()
                        .map(|(i, l)| ClaimMappingSpec {
                            idp_claim: i.into(),
                            local_claim: l.into(),
                        })
                        .collect(),
                ),
                ..Default::default()
            })
        };
        let mobile = "http://wso2.org/claims/mobile".to_string();
        // The server's mappings count when the spec leaves them out.
        assert_eq!(
            unmapped_lookup_claims(&with_lookup(None), &server()),
            vec![mobile.clone()]
        );
        // The local claim dialect (declared or on the server) maps every claim to itself.
        assert!(unmapped_lookup_claims(&with_lookup(declared(vec![])), &server()).is_empty());
        assert!(unmapped_lookup_claims(&with_lookup(None), &IdpMappings::default()).is_empty());
        // Declared mappings win over the server's.
        let mapped = declared(vec![("phone", "http://wso2.org/claims/mobile")]);
        assert!(unmapped_lookup_claims(&with_lookup(mapped), &server()).is_empty());
    }
}
