//! The claim, role and group configuration of an IdP (`/identity-providers/{id}/claims`, `/roles`,
//! `/groups`), with the server's semantics as wso2/identity-api-server has them
//! (`components/org.wso2.carbon.identity.api.server.idp/.../idp/v1/core/ServerIdpManagementService.java`,
//! read at c2446d9c76):
//!
//! - **Every PUT replaces its whole object.** `updateClaimConfig` builds a new `ClaimConfig` from
//!   the body (`updateClaims`); `updateRoleConfig` a new `PermissionsAndRoleConfig`, and sets the
//!   provisioning roles from `outboundProvisioningRoles` — left out, they are cleared
//!   (`StringUtils.join(null, ",")` is null) (`updateRoles`); `updateGroupConfig` replaces the list,
//!   an empty one clears it, groups with a blank name are dropped (`updateGroups`).
//! - **Claims are validated on PUT only** (`validateClaims`, called by `updateClaimConfig`, not by
//!   `createIDP`): without mappings (local claim dialect) a user id / role claim must be a local
//!   claim of the tenant (`IDP-60033` / `IDP-60034`); with mappings they must be one of the mapped
//!   IdP claims (`IDP-60030` / `IDP-60031`, `validateUserAndRoleClaims`) and every mapping's local
//!   claim must exist (`IDP-60032` "One or more local claim URIs do not exist"). Client exceptions
//!   are 400 (`handleIdPException`).
//! - **Provisioning claims are default values on mappings.** With mappings, a provisioning claim
//!   names a mapped IdP claim and sets that mapping's default; one that matches no mapping is
//!   dropped without an error. Without mappings, each becomes a mapping with only a local claim.
//!   The GET lists as provisioning claims the mappings with a non-blank default
//!   (`createClaimResponse`), so a blank default is lost.
//! - **Role mappings**: the GET answers `localRole` through `IdentityUtil.addDomainToName`, which
//!   leaves a name without a domain as it was sent (`createRoleResponse`).
//! - **Group ids** are kept when the PUT carries them; a group sent without one gets a new id (the
//!   framework's DAO assigns a UUID; inferred, not read: a client that keeps ids must send them).

use super::ctx::Ctx;
use super::reply::{EmuError, Reply};
pub use super::state::{StoredClaimConfig, StoredClaimMapping, DEFAULT_LOCAL_CLAIMS};
use super::state::{StoredIdp, TenantState};
use identity_client::operation::Operation;
use identity_client::wire::{self, Claim, Claims, IdpGroup, Roles};

fn not_found(id: &str) -> EmuError {
    EmuError::not_found(
        "IDP-60002",
        "Resource not found.",
        format!("Identity Provider with resource ID: {id} does not exists."),
    )
}

fn client_error(code: &str, message: &str, description: impl Into<String>) -> EmuError {
    EmuError::bad_request(code, message, description)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, EmuError> {
    serde_json::from_slice(body).map_err(|e| {
        EmuError::bad_request(
            "IDP-60025",
            "Invalid input.",
            format!("Invalid request body: {e}"),
        )
    })
}

/// Handles the six claim / role / group operations.
pub fn handle(
    op: Operation,
    id: &str,
    ctx: &Ctx<'_>,
    st: &mut TenantState,
) -> Result<Reply, EmuError> {
    let local = local_claims(st);
    let idp = st.idp_mut(id).ok_or_else(|| not_found(id))?;
    match op {
        Operation::GetClaims => Reply::json(&claims_response(idp, &local)),
        Operation::UpdateClaims => {
            let req: Claims = parse(ctx.body)?;
            validate_claims(&req, &local, ctx.tenant)?;
            set_claims(idp, &req);
            Reply::json(&claims_response(idp, &local))
        }
        Operation::GetRoles => Reply::json(&roles_response(idp)),
        Operation::UpdateRoles => {
            let req: Roles = parse(ctx.body)?;
            set_roles(idp, &req);
            Reply::json(&roles_response(idp))
        }
        Operation::GetGroups => Reply::json(&idp.groups),
        Operation::UpdateGroups => {
            let req: Vec<IdpGroup> = parse(ctx.body)?;
            set_groups(idp, &req);
            Reply::json(&idp.groups)
        }
        _ => Err(EmuError::internal(
            "IDP",
            "operation routed to the wrong handler",
        )),
    }
}

/// The tenant's local claim URIs.
pub fn local_claims(st: &TenantState) -> Vec<String> {
    match &st.local_claims {
        Some(list) => list.clone(),
        None => DEFAULT_LOCAL_CLAIMS.iter().map(|s| s.to_string()).collect(),
    }
}

/// `validateClaims` / `validateUserAndRoleClaims`.
pub fn validate_claims(req: &Claims, local: &[String], tenant: &str) -> Result<(), EmuError> {
    let user = req.user_id_claim.as_ref().map(Claim::uri_str).unwrap_or("");
    let role = req.role_claim.as_ref().map(Claim::uri_str).unwrap_or("");
    let is_local = |u: &str| local.iter().any(|l| l == u);
    let mappings = req.mappings.clone().unwrap_or_default();
    if mappings.is_empty() {
        if !user.trim().is_empty() && !is_local(user) {
            return Err(client_error(
                "IDP-60033",
                "Invalid user ID claim URI",
                format!("User ID claim URI is not a local claim for tenant: {tenant}"),
            ));
        }
        if !role.trim().is_empty() && !is_local(role) {
            return Err(client_error(
                "IDP-60034",
                "Invalid role claim URI",
                format!("Role claim URI is not a local claim for tenant: {tenant}"),
            ));
        }
        return Ok(());
    }
    let mapped = |u: &str| mappings.iter().any(|m| m.idp_claim.as_deref() == Some(u));
    if !user.trim().is_empty() && !mapped(user) {
        return Err(client_error(
            "IDP-60030",
            "Invalid user ID claim URI",
            format!("User ID claim URI: {user} does not match with the claim mappings"),
        ));
    }
    if !role.trim().is_empty() && !mapped(role) {
        return Err(client_error(
            "IDP-60031",
            "Invalid role claim URI",
            format!("Role claim URI: {role} does not match with the claim mappings"),
        ));
    }
    for m in &mappings {
        let uri = m.local_claim.as_ref().map(Claim::uri_str).unwrap_or("");
        if !is_local(uri) {
            return Err(client_error(
                "IDP-60032",
                "Invalid claim URI",
                "One or more local claim URIs do not exist",
            ));
        }
    }
    Ok(())
}

/// `updateClaims`: a new claim config from the body (no validation: `createIDP` calls it too).
pub fn set_claims(idp: &mut StoredIdp, req: &Claims) {
    let mut mappings: Vec<StoredClaimMapping> = req
        .mappings
        .iter()
        .flatten()
        .map(|m| StoredClaimMapping {
            remote_claim: m.idp_claim.clone().unwrap_or_default(),
            local_claim: m
                .local_claim
                .as_ref()
                .map(|c| c.uri_str().to_owned())
                .unwrap_or_default(),
            default_value: None,
            requested: false,
        })
        .collect();
    let has_mappings = !mappings.is_empty();
    for p in req.provisioning_claims.iter().flatten() {
        let uri = p
            .claim
            .as_ref()
            .map(|c| c.uri_str().to_owned())
            .unwrap_or_default();
        if has_mappings {
            // A provisioning claim that matches no mapping is dropped without an error.
            for m in mappings.iter_mut().filter(|m| m.remote_claim == uri) {
                m.default_value = p.default_value.clone();
                m.requested = true;
            }
        } else {
            mappings.push(StoredClaimMapping {
                remote_claim: String::new(),
                local_claim: uri,
                default_value: p.default_value.clone(),
                requested: true,
            });
        }
    }
    idp.claims = StoredClaimConfig {
        user_claim_uri: req.user_id_claim.as_ref().and_then(|c| c.uri.clone()),
        role_claim_uri: req.role_claim.as_ref().and_then(|c| c.uri.clone()),
        claim_mappings: mappings,
    };
}

/// `createClaimResponse`.
pub fn claims_response(idp: &StoredIdp, local: &[String]) -> Claims {
    let c = &idp.claims;
    let local_claim = |uri: &str| {
        let known = local.iter().any(|l| l == uri);
        Claim {
            id: known.then(|| identity_client::wire::authenticator_id(uri)),
            uri: Some(uri.to_owned()),
            display_name: known.then(|| uri.rsplit('/').next().unwrap_or(uri).to_owned()),
        }
    };
    let mut mappings = Vec::new();
    let mut provisioning = Vec::new();
    for m in &c.claim_mappings {
        if !m.remote_claim.trim().is_empty() {
            mappings.push(wire::ClaimMapping {
                idp_claim: Some(m.remote_claim.clone()),
                local_claim: Some(local_claim(&m.local_claim)),
            });
        }
        let default = m.default_value.as_deref().unwrap_or("");
        if m.requested && !default.trim().is_empty() {
            let claim = if m.remote_claim.trim().is_empty() {
                local_claim(&m.local_claim)
            } else {
                Claim::uri(m.remote_claim.clone())
            };
            provisioning.push(wire::ProvisioningClaim {
                claim: Some(claim),
                default_value: Some(default.to_owned()),
            });
        }
    }
    // The server builds an empty `Claim` for an unset URI; the spec requires `uri` in a `Claim`,
    // so the emulator leaves the object out (the client reads both as unset).
    let top = |u: &Option<String>| u.as_deref().map(local_claim);
    Claims {
        user_id_claim: top(&c.user_claim_uri),
        role_claim: top(&c.role_claim_uri),
        mappings: Some(mappings),
        provisioning_claims: Some(provisioning),
        extra: Default::default(),
    }
}

/// `updateRoles`.
pub fn set_roles(idp: &mut StoredIdp, req: &Roles) {
    idp.roles = Roles {
        mappings: Some(req.mappings.clone().unwrap_or_default()),
        outbound_provisioning_roles: req
            .outbound_provisioning_roles
            .clone()
            .filter(|r| !r.is_empty()),
        extra: Default::default(),
    };
}

/// `createRoleResponse`.
pub fn roles_response(idp: &StoredIdp) -> Roles {
    Roles {
        mappings: Some(idp.roles.mappings.clone().unwrap_or_default()),
        outbound_provisioning_roles: idp.roles.outbound_provisioning_roles.clone(),
        extra: Default::default(),
    }
}

/// `updateGroups`.
pub fn set_groups(idp: &mut StoredIdp, req: &[IdpGroup]) {
    idp.groups = req
        .iter()
        .filter(|g| !g.name.trim().is_empty())
        .map(|g| IdpGroup {
            name: g.name.clone(),
            id: Some(
                g.id.clone()
                    .filter(|i| !i.trim().is_empty())
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            ),
        })
        .collect();
}

/// Applies the claims, roles and groups of an IdP POST (`createIDP` calls the same update
/// functions as the PUTs, without `validateClaims`), taking them out of the unknown fields.
pub fn from_post(idp: &mut StoredIdp) -> Result<(), EmuError> {
    if let Some(v) = idp.extra.remove("claims") {
        set_claims(idp, &parse_value(v)?);
    }
    if let Some(v) = idp.extra.remove("roles") {
        set_roles(idp, &parse_value(v)?);
    }
    if let Some(v) = idp.extra.remove("groups") {
        let groups: Vec<IdpGroup> = parse_value(v)?;
        set_groups(idp, &groups);
    }
    Ok(())
}

fn parse_value<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, EmuError> {
    serde_json::from_value(v).map_err(|e| {
        EmuError::bad_request(
            "IDP-60025",
            "Invalid input.",
            format!("Invalid request body: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Vec<String> {
        DEFAULT_LOCAL_CLAIMS.iter().map(|s| s.to_string()).collect()
    }

    fn mapping(idp: &str, local: &str) -> wire::ClaimMapping {
        wire::ClaimMapping {
            idp_claim: Some(idp.into()),
            local_claim: Some(Claim::uri(local)),
        }
    }

    fn prov(claim: &str, default: &str) -> wire::ProvisioningClaim {
        wire::ProvisioningClaim {
            claim: Some(Claim::uri(claim)),
            default_value: Some(default.into()),
        }
    }

    #[test]
    fn the_claims_put_validates_as_the_server_does() {
        let email = "http://wso2.org/claims/emailaddress";
        let code = |c: Claims| {
            validate_claims(&c, &local(), "acme")
                .err()
                .and_then(|e| e.body.code)
        };
        let cases: Vec<(Claims, Option<&str>)> = vec![
            (Claims::default(), None),
            (
                Claims {
                    user_id_claim: Some(Claim::uri("http://wso2.org/claims/nope")),
                    ..Default::default()
                },
                Some("IDP-60033"),
            ),
            (
                Claims {
                    role_claim: Some(Claim::uri("groups")),
                    mappings: Some(vec![mapping("email", email)]),
                    ..Default::default()
                },
                Some("IDP-60031"),
            ),
            (
                Claims {
                    user_id_claim: Some(Claim::uri("email")),
                    mappings: Some(vec![mapping("email", email)]),
                    ..Default::default()
                },
                None,
            ),
            (
                Claims {
                    mappings: Some(vec![mapping("x", "http://wso2.org/claims/unknown")]),
                    ..Default::default()
                },
                Some("IDP-60032"),
            ),
        ];
        for (i, (claims, want)) in cases.into_iter().enumerate() {
            assert_eq!(code(claims).as_deref(), want, "case {i}");
        }
    }

    #[test]
    fn provisioning_claims_ride_on_mappings_and_unmatched_ones_are_dropped() {
        let email = "http://wso2.org/claims/emailaddress";
        let mut idp = StoredIdp::default();
        set_claims(
            &mut idp,
            &Claims {
                mappings: Some(vec![mapping("email", email)]),
                provisioning_claims: Some(vec![prov("email", "a@b"), prov("country", "LK")]),
                ..Default::default()
            },
        );
        let got = claims_response(&idp, &local());
        assert_eq!(got.provisioning_claims, Some(vec![prov("email", "a@b")]));
        assert_eq!(got.mappings.as_ref().map(Vec::len), Some(1));
        // Without mappings a provisioning claim is a local claim and is not listed as a mapping.
        let country = "http://wso2.org/claims/country";
        set_claims(
            &mut idp,
            &Claims {
                provisioning_claims: Some(vec![prov(country, "LK"), prov(email, "")]),
                ..Default::default()
            },
        );
        let got = claims_response(&idp, &local());
        assert_eq!(got.mappings, Some(vec![]));
        let listed: Vec<_> = got
            .provisioning_claims
            .iter()
            .flatten()
            .map(|p| p.claim.as_ref().map(|c| c.uri_str().to_owned()))
            .collect();
        assert_eq!(
            listed,
            vec![Some(country.to_owned())],
            "a blank default is lost"
        );
    }

    #[test]
    fn the_roles_put_clears_provisioning_roles_it_leaves_out_and_groups_keep_sent_ids() {
        let mut idp = StoredIdp::default();
        set_roles(
            &mut idp,
            &Roles {
                outbound_provisioning_roles: Some(vec!["hr".into()]),
                ..Default::default()
            },
        );
        assert_eq!(
            roles_response(&idp).outbound_provisioning_roles,
            Some(vec!["hr".into()])
        );
        set_roles(&mut idp, &Roles::default());
        assert_eq!(roles_response(&idp).outbound_provisioning_roles, None);

        let g = |name: &str, id: Option<&str>| IdpGroup {
            name: name.into(),
            id: id.map(Into::into),
        };
        set_groups(
            &mut idp,
            &[g("admins", Some("id-1")), g("devs", None), g(" ", None)],
        );
        assert_eq!(idp.groups.len(), 2, "a blank name is dropped");
        assert_eq!(idp.groups[0].id.as_deref(), Some("id-1"));
        assert!(idp.groups[1].id.is_some(), "the server assigns an id");
        set_groups(&mut idp, &[]);
        assert!(idp.groups.is_empty());
    }
}
