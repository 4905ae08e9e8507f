//! The identity-provider side of [`crate::IdentityServer`]: an IdP, its authenticators, JIT settings
//! and claim / role / group mappings, and the changes the controllers ask for.

use crate::wire;
use crate::{AttributeSyncMethod, IdpGroupSyncMethod, JitScheme, Property};

/// An identity provider as found in a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdpSummary {
    /// Server resource id.
    pub id: String,
    /// Name (unique per tenant; flows reference it).
    pub name: String,
    /// Enabled flag.
    pub is_enabled: bool,
}

/// An authenticator of an IdP as listed with the IdP (no properties).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatorSummary {
    /// Authenticator id (base64url of the name).
    pub id: String,
    /// Authenticator name, e.g. `GoogleOIDCAuthenticator`.
    pub name: String,
    /// Enabled flag.
    pub is_enabled: bool,
}

/// An identity provider.
#[derive(Clone, Debug, PartialEq)]
pub struct Idp {
    /// Server resource id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Logo URL.
    pub image: Option<String>,
    /// Enabled flag.
    pub is_enabled: bool,
    /// Default authenticator id.
    pub default_authenticator_id: Option<String>,
    /// Authenticators.
    pub authenticators: Vec<AuthenticatorSummary>,
    /// JIT settings, when the server included them.
    pub jit: Option<Jit>,
    /// Its `certificate`: how its tokens or assertions are verified. Boxed: every [`Idp`] would
    /// otherwise grow by three fields that most IdPs leave empty.
    pub certificate: Box<IdpCertificate>,
    /// Claim, role and group mappings, as the IdP GET carries them (empty when left out). Boxed:
    /// they would make every [`Idp`] several times larger.
    pub mappings: Box<IdpMappings>,
}

/// The `certificate` of an IdP as the server keeps it: one of a JWKS URI, a SAML metadata URI
/// and PEM certificates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdpCertificate {
    /// The JWKS URI (how ID tokens from it are verified), when set.
    pub jwks_uri: Option<String>,
    /// The SAML metadata URI, when set.
    pub saml_metadata_uri: Option<String>,
    /// The PEM certificates (decoded: the server returns each one base64-encoded), in the
    /// server's order; empty when it keeps a URI or nothing.
    pub certificates: Vec<String>,
}

/// A federated claim and the local claim it is stored as.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClaimMap {
    /// The claim as the identity provider names it.
    pub idp_claim: String,
    /// The local claim URI.
    pub local_claim: String,
}

/// A claim given a default value at provisioning.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct DefaultClaim {
    /// A mapped IdP claim when the IdP has claim mappings, else a local claim URI.
    pub claim: String,
    /// The default value.
    pub default_value: String,
}

/// An IdP role and the local role it maps to.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoleMap {
    /// The role as the identity provider names it.
    pub idp_role: String,
    /// The local role.
    pub local_role: String,
}

/// The claim, role and group configuration of an IdP as the server reports it, normalized so that
/// comparing it with a spec does not depend on the server's list order or on read-only fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdpMappings {
    /// The user id claim URI (`""` when unset).
    pub user_id_claim: String,
    /// The role claim URI (`""` when unset).
    pub role_claim: String,
    /// Claim mappings, sorted.
    pub claim_mappings: Vec<ClaimMap>,
    /// Provisioning claims with their defaults, sorted.
    pub provisioning_claims: Vec<DefaultClaim>,
    /// Role mappings, sorted.
    pub role_mappings: Vec<RoleMap>,
    /// The IdP's groups with their server ids, sorted by name.
    pub groups: Vec<wire::IdpGroup>,
}

impl IdpMappings {
    /// Normalizes the server's three objects (an absent one counts as empty).
    pub fn from_wire(
        claims: Option<&wire::Claims>,
        roles: Option<&wire::Roles>,
        groups: Option<&[wire::IdpGroup]>,
    ) -> Self {
        let claims = claims.cloned().unwrap_or_default();
        let uri = |c: &Option<wire::Claim>| {
            c.as_ref()
                .map(|c| c.uri_str().to_owned())
                .unwrap_or_default()
        };
        let mut claim_mappings: Vec<ClaimMap> = claims
            .mappings
            .iter()
            .flatten()
            .map(|m| ClaimMap {
                idp_claim: m.idp_claim.clone().unwrap_or_default(),
                local_claim: uri(&m.local_claim),
            })
            .collect();
        claim_mappings.sort();
        let mut provisioning_claims: Vec<DefaultClaim> = claims
            .provisioning_claims
            .iter()
            .flatten()
            .map(|p| DefaultClaim {
                claim: uri(&p.claim),
                default_value: p.default_value.clone().unwrap_or_default(),
            })
            .collect();
        provisioning_claims.sort();
        let mut role_mappings: Vec<RoleMap> = roles
            .and_then(|r| r.mappings.as_ref())
            .into_iter()
            .flatten()
            .map(|m| RoleMap {
                idp_role: m.idp_role.clone().unwrap_or_default(),
                local_role: m.local_role.clone().unwrap_or_default(),
            })
            .collect();
        role_mappings.sort();
        let mut groups: Vec<wire::IdpGroup> = groups.unwrap_or_default().to_vec();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            user_id_claim: uri(&claims.user_id_claim),
            role_claim: uri(&claims.role_claim),
            claim_mappings,
            provisioning_claims,
            role_mappings,
            groups,
        }
    }

    /// The group names, sorted.
    pub fn group_names(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.name.clone()).collect()
    }
}

/// A change of the claim, role and group configuration: only `Some` fields change. Each of the
/// server's three PUTs replaces its whole object, so the client reads, merges and writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MappingsChange {
    /// New user id claim (`""` removes it).
    pub user_id_claim: Option<String>,
    /// New role claim (`""` removes it).
    pub role_claim: Option<String>,
    /// New claim mappings (empty: the local claim dialect).
    pub claim_mappings: Option<Vec<ClaimMap>>,
    /// New provisioning claims.
    pub provisioning_claims: Option<Vec<DefaultClaim>>,
    /// New role mappings.
    pub role_mappings: Option<Vec<RoleMap>>,
    /// New group names.
    pub groups: Option<Vec<String>>,
}

impl MappingsChange {
    /// Whether the change touches the claim config.
    pub fn touches_claims(&self) -> bool {
        self.user_id_claim.is_some()
            || self.role_claim.is_some()
            || self.claim_mappings.is_some()
            || self.provisioning_claims.is_some()
    }

    /// The whole claim config to PUT: the server's (`server`, as its GET answered) with the
    /// declared fields replaced; `None` when the change touches no claim field. Unknown fields of
    /// a newer server are kept.
    pub fn claims_body(&self, server: &wire::Claims) -> Option<wire::Claims> {
        if !self.touches_claims() {
            return None;
        }
        let cur = IdpMappings::from_wire(Some(server), None, None);
        let user = self.user_id_claim.clone().unwrap_or(cur.user_id_claim);
        let role = self.role_claim.clone().unwrap_or(cur.role_claim);
        let maps = self.claim_mappings.clone().unwrap_or(cur.claim_mappings);
        let prov = self
            .provisioning_claims
            .clone()
            .unwrap_or(cur.provisioning_claims);
        let claim = |u: String| (!u.is_empty()).then(|| wire::Claim::uri(u));
        Some(wire::Claims {
            user_id_claim: claim(user),
            role_claim: claim(role),
            mappings: Some(
                maps.into_iter()
                    .map(|m| wire::ClaimMapping {
                        idp_claim: Some(m.idp_claim),
                        local_claim: Some(wire::Claim::uri(m.local_claim)),
                    })
                    .collect(),
            ),
            provisioning_claims: Some(
                prov.into_iter()
                    .map(|p| wire::ProvisioningClaim {
                        claim: Some(wire::Claim::uri(p.claim)),
                        default_value: Some(p.default_value),
                    })
                    .collect(),
            ),
            extra: server.extra.clone(),
        })
    }

    /// The whole role config to PUT, or `None` when role mappings are not declared. The server's
    /// `outboundProvisioningRoles` are carried: its PUT clears them when left out
    /// (`ServerIdpManagementService.updateRoles` joins a null list into a null value).
    pub fn roles_body(&self, server: &wire::Roles) -> Option<wire::Roles> {
        let maps = self.role_mappings.as_ref()?;
        Some(wire::Roles {
            mappings: Some(
                maps.iter()
                    .map(|m| wire::RoleMapping {
                        idp_role: Some(m.idp_role.clone()),
                        local_role: Some(m.local_role.clone()),
                    })
                    .collect(),
            ),
            outbound_provisioning_roles: server.outbound_provisioning_roles.clone(),
            extra: server.extra.clone(),
        })
    }

    /// The group list to PUT, or `None` when groups are not declared. A group the server has keeps
    /// its id: without one the server makes a new group, and what referred to the old id (local
    /// role assignments of the IdP group) would lose it.
    pub fn groups_body(&self, server: &[wire::IdpGroup]) -> Option<Vec<wire::IdpGroup>> {
        let names = self.groups.as_ref()?;
        Some(
            names
                .iter()
                .map(|n| wire::IdpGroup {
                    name: n.clone(),
                    id: server
                        .iter()
                        .find(|g| g.name == *n)
                        .and_then(|g| g.id.clone()),
                })
                .collect(),
        )
    }
}

/// An IdP to create.
#[derive(Clone, Debug, PartialEq)]
pub struct NewIdp {
    /// Name (unique).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Logo URL.
    pub image: Option<String>,
    /// The (default) authenticator with its properties.
    pub authenticator: FederatedAuthenticator,
    /// JIT settings; `None` leaves the server's defaults.
    pub jit: Option<Jit>,
    /// The JWKS URI to store as its `certificate`.
    pub jwks_uri: Option<String>,
    /// PEM certificates to store as its `certificate` (the server keeps only one of the three,
    /// preferring the JWKS URI, then the metadata URI).
    pub certificates: Vec<String>,
    /// The SAML metadata URI to store as its `certificate`; with all three unset no certificate is
    /// sent.
    pub saml_metadata_uri: Option<String>,
}

/// A root attribute change of an IdP (sent as a `REPLACE` patch operation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdpPatch {
    /// `/name`.
    Name(String),
    /// `/description`.
    Description(String),
    /// `/image`.
    Image(String),
    /// `/isEnabled`.
    Enabled(bool),
    /// `/certificate/jwksUri` with `ADD`: the server has none yet (its `REPLACE` of a missing one
    /// is a 404, and `ADD` drops stored certificates and a SAML metadata URI).
    AddJwksUri(String),
    /// `/certificate/jwksUri` with `REPLACE`: change the one the server has.
    JwksUri(String),
    /// `/certificate/samlMetadataUri` with `ADD`: the server has none (drops its certificates and
    /// JWKS URI, as with [`IdpPatch::AddJwksUri`]).
    AddSamlMetadataUri(String),
    /// `/certificate/samlMetadataUri` with `REPLACE`: change the one the server has.
    SamlMetadataUri(String),
    /// `/certificate/certificates/N` with `ADD` of a PEM: N must be the current count (the server
    /// refuses any other index and a duplicate), and the first one drops a JWKS / metadata URI.
    AddCertificate(usize, String),
    /// `/certificate/certificates/N` with `REMOVE`.
    RemoveCertificate(usize),
}

/// A federated authenticator with its properties.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FederatedAuthenticator {
    /// Authenticator id (base64url of the name, see [`wire::authenticator_id`]).
    pub authenticator_id: String,
    /// Authenticator name (read-only on the server; filled in on reads).
    pub name: Option<String>,
    /// Enabled flag.
    pub is_enabled: bool,
    /// Default authenticator of the IdP.
    pub is_default: bool,
    /// Properties (`ClientId`, `ClientSecret`, ...); `Debug` hides confidential values.
    pub properties: Vec<Property>,
}

/// JIT provisioning settings as the server reports them (defaults filled in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jit {
    /// Whether JIT provisioning is on.
    pub enabled: bool,
    /// Scheme.
    pub scheme: JitScheme,
    /// User store domain.
    pub userstore: String,
    /// Associate to an existing local user.
    pub associate_local_user: bool,
    /// Attribute sync method.
    pub attribute_sync_method: AttributeSyncMethod,
    /// Skip JIT on lookup failure (`None` on servers that do not know the field).
    pub skip_jit_for_lookup_failure: Option<bool>,
    /// IdP group sync method (`None` on servers that do not know the field).
    pub idp_group_sync_method: Option<IdpGroupSyncMethod>,
    /// Account-lookup mappings (empty when the server has none or does not know the field).
    pub account_lookup: Vec<wire::AccountLookupAttributeMapping>,
}

impl Jit {
    /// The state the conflict rule sees for these settings.
    pub fn rule_state(&self) -> identity_model::Jit {
        identity_model::Jit::from_settings(
            self.enabled,
            !self.account_lookup.is_empty(),
            self.skip_jit_for_lookup_failure == Some(true),
        )
    }
}

/// A change to JIT settings: only fields that are `Some` change; the rest keep the server's value
/// (the server's PUT replaces the whole object, so the client reads, merges and writes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JitChange {
    /// New enabled flag.
    pub enabled: Option<bool>,
    /// New scheme.
    pub scheme: Option<JitScheme>,
    /// New user store.
    pub userstore: Option<String>,
    /// New associate-local-user flag.
    pub associate_local_user: Option<bool>,
    /// New attribute sync method.
    pub attribute_sync_method: Option<AttributeSyncMethod>,
    /// New account-lookup mappings (an empty list removes them).
    pub account_lookup: Option<Vec<wire::AccountLookupAttributeMapping>>,
    /// New skip-on-lookup-failure flag.
    pub skip_jit_for_lookup_failure: Option<bool>,
    /// New IdP group sync method.
    pub idp_group_sync_method: Option<IdpGroupSyncMethod>,
}

impl JitChange {
    /// Applies the change to a wire JIT object in place, leaving undeclared (and unknown) fields alone.
    pub fn apply_to(&self, jit: &mut wire::JustInTimeProvisioning) {
        if let Some(v) = self.enabled {
            jit.is_enabled = Some(v);
        }
        if let Some(v) = self.scheme {
            jit.scheme = Some(v);
        }
        if let Some(v) = &self.userstore {
            jit.userstore = Some(v.clone());
        }
        if let Some(v) = self.associate_local_user {
            jit.associate_local_user = Some(v);
        }
        if let Some(v) = self.attribute_sync_method {
            jit.attribute_sync_method = Some(v);
        }
        if let Some(v) = &self.account_lookup {
            jit.account_lookup_attribute_mappings = Some(v.clone());
        }
        if let Some(v) = self.skip_jit_for_lookup_failure {
            jit.skip_jit_for_lookup_failure = Some(v);
        }
        if let Some(v) = self.idp_group_sync_method {
            jit.idp_group_sync_method = Some(v);
        }
    }
}

impl From<&wire::JustInTimeProvisioning> for Jit {
    /// Fills absent fields with the server's model defaults (`JustInTimeProvisioning.java`).
    fn from(w: &wire::JustInTimeProvisioning) -> Self {
        Self {
            enabled: w.is_enabled.unwrap_or(false),
            scheme: w.scheme.unwrap_or(JitScheme::ProvisionSilently),
            userstore: w.userstore.clone().unwrap_or_else(|| "PRIMARY".to_owned()),
            associate_local_user: w.associate_local_user.unwrap_or(false),
            attribute_sync_method: w
                .attribute_sync_method
                .unwrap_or(AttributeSyncMethod::OverrideAll),
            skip_jit_for_lookup_failure: w.skip_jit_for_lookup_failure,
            idp_group_sync_method: w.idp_group_sync_method,
            account_lookup: w
                .account_lookup_attribute_mappings
                .clone()
                .unwrap_or_default(),
        }
    }
}

impl From<&Jit> for wire::JustInTimeProvisioning {
    fn from(j: &Jit) -> Self {
        Self {
            is_enabled: Some(j.enabled),
            scheme: Some(j.scheme),
            userstore: Some(j.userstore.clone()),
            associate_local_user: Some(j.associate_local_user),
            attribute_sync_method: Some(j.attribute_sync_method),
            skip_jit_for_lookup_failure: j.skip_jit_for_lookup_failure,
            idp_group_sync_method: j.idp_group_sync_method,
            // No mappings are sent as none: an empty list is what the server stores for them.
            account_lookup_attribute_mappings: (!j.account_lookup.is_empty())
                .then(|| j.account_lookup.clone()),
            ..Default::default()
        }
    }
}

/// An application as found in a list.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jit_change_keeps_undeclared_fields() {
        let mut w = wire::JustInTimeProvisioning {
            is_enabled: Some(true),
            scheme: Some(JitScheme::PromptConsent),
            userstore: Some("SECONDARY".into()),
            associate_local_user: Some(true),
            idp_group_sync_method: Some(IdpGroupSyncMethod::OverrideAll),
            ..Default::default()
        };
        w.extra.insert("future".into(), serde_json::json!(1));
        JitChange {
            enabled: Some(false),
            ..Default::default()
        }
        .apply_to(&mut w);
        assert_eq!(w.is_enabled, Some(false));
        assert_eq!(
            w.skip_jit_for_lookup_failure, None,
            "undeclared: left alone"
        );
        assert_eq!(w.scheme, Some(JitScheme::PromptConsent));
        assert_eq!(w.userstore.as_deref(), Some("SECONDARY"));
        assert_eq!(w.associate_local_user, Some(true));
        assert_eq!(
            w.idp_group_sync_method,
            Some(IdpGroupSyncMethod::OverrideAll)
        );
        assert_eq!(w.extra.get("future"), Some(&serde_json::json!(1)));
    }

    #[test]
    fn jit_change_sets_the_lookup_fields_and_the_rule_sees_them() {
        let mapping = wire::AccountLookupAttributeMapping {
            local_attribute: Some("http://wso2.org/claims/emailaddress".into()),
            federated_attribute: Some("email".into()),
        };
        let mut w = wire::JustInTimeProvisioning {
            is_enabled: Some(true),
            attribute_sync_method: Some(AttributeSyncMethod::PreserveLocal),
            ..Default::default()
        };
        assert_eq!(Jit::from(&w).rule_state(), identity_model::Jit::Enabled);
        JitChange {
            account_lookup: Some(vec![mapping.clone()]),
            skip_jit_for_lookup_failure: Some(true),
            idp_group_sync_method: Some(IdpGroupSyncMethod::OverrideAll),
            ..Default::default()
        }
        .apply_to(&mut w);
        assert_eq!(w.account_lookup_attribute_mappings, Some(vec![mapping]));
        assert_eq!(w.skip_jit_for_lookup_failure, Some(true));
        assert_eq!(
            w.idp_group_sync_method,
            Some(IdpGroupSyncMethod::OverrideAll)
        );
        assert_eq!(
            w.attribute_sync_method,
            Some(AttributeSyncMethod::PreserveLocal)
        );
        assert_eq!(
            Jit::from(&w).rule_state(),
            identity_model::Jit::SkippedOnLookupFailure
        );
        // An empty list clears the mappings; the skip alone then means nothing.
        JitChange {
            account_lookup: Some(vec![]),
            ..Default::default()
        }
        .apply_to(&mut w);
        assert_eq!(Jit::from(&w).rule_state(), identity_model::Jit::Enabled);
    }

    #[test]
    fn jit_defaults_follow_the_server_model() {
        let j = Jit::from(&wire::JustInTimeProvisioning::default());
        assert!(!j.enabled);
        assert_eq!(j.scheme, JitScheme::ProvisionSilently);
        assert_eq!(j.userstore, "PRIMARY");
        assert_eq!(j.attribute_sync_method, AttributeSyncMethod::OverrideAll);
    }
}
