//! Identity providers on the wire (`idp.yaml`): the IdP itself, its certificate, JIT provisioning,
//! claims, roles, groups, PATCH operations and connected apps.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Extra, FederatedAuthenticatorListResponse, FederatedAuthenticatorRequest, Link};

/// `Certificate` of an IdP: PEM certificates, a JWKS URI or a SAML metadata URI. The server keeps
/// one of the three (adding one removes the others: `ServerIdpManagementService` patch handling).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// Base64 PEM certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<String>>,
    /// Where the IdP publishes its signing keys (verifies its ID tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Where a SAML IdP publishes its metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml_metadata_uri: Option<String>,
}

impl Certificate {
    /// The certificate object of a POST: the first declared of JWKS URI, metadata URI and PEM
    /// certificates (the order in which ServerIdpManagementService.createIDP looks for them; it
    /// stores only that one), `None` when nothing is declared.
    pub fn of(jwks_uri: Option<&str>, metadata_uri: Option<&str>, pems: &[String]) -> Option<Self> {
        if let Some(u) = jwks_uri {
            return Some(Self {
                jwks_uri: Some(u.to_string()),
                ..Default::default()
            });
        }
        if let Some(u) = metadata_uri {
            return Some(Self {
                saml_metadata_uri: Some(u.to_string()),
                ..Default::default()
            });
        }
        (!pems.is_empty()).then(|| Self {
            certificates: Some(pems.iter().map(|p| p.trim().to_string()).collect()),
            ..Default::default()
        })
    }
}

impl From<Certificate> for crate::IdpCertificate {
    fn from(c: Certificate) -> Self {
        Self {
            jwks_uri: c.jwks_uri,
            saml_metadata_uri: c.saml_metadata_uri,
            certificates: c
                .certificates
                .unwrap_or_default()
                .iter()
                .map(|c| decode_certificate(c))
                .collect(),
        }
    }
}

/// A certificate as a GET returns it, back to PEM. The server answers with each stored
/// `CertificateInfo.certValue`, which is the base64 of the PEM (its PATCH handling base64-decodes
/// them before comparing: identity-api-server ServerIdpManagementService.processPatchRequest); a
/// value that is already PEM, or not base64 of text, is kept as it is.
pub fn decode_certificate(value: &str) -> String {
    use base64::Engine as _;
    let v = value.trim();
    if v.starts_with("-----BEGIN") {
        return v.to_string();
    }
    base64::engine::general_purpose::STANDARD
        .decode(v.split_whitespace().collect::<String>())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(|p| p.trim().to_string())
        .unwrap_or_else(|| v.to_string())
}

/// JIT provisioning `scheme`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JitScheme {
    /// Ask the user for username, password and consent.
    PromptUsernamePasswordConsent,
    /// Ask for password and consent.
    PromptPasswordConsent,
    /// Ask for consent only.
    PromptConsent,
    /// Provision without asking (model default).
    ProvisionSilently,
}

/// JIT `attributeSyncMethod`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttributeSyncMethod {
    /// Overwrite all local attributes (model default).
    OverrideAll,
    /// Never sync.
    None,
    /// Keep local values.
    PreserveLocal,
}

/// JIT `idpGroupSyncMethod` (IS 2026+; absent on older servers and Asgardeo's published spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdpGroupSyncMethod {
    /// Replace groups.
    OverrideAll,
    /// Merge with existing groups (model default).
    MergeWithExisting,
}

/// `AccountLookupAttributeMapping`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountLookupAttributeMapping {
    /// Local claim URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_attribute: Option<String>,
    /// Federated attribute name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_attribute: Option<String>,
}

/// `JustInTimeProvisioning`. Every field is optional on the wire so that the emulator can tell "absent"
/// from "false" (the server requires `isEnabled`) and the client can round-trip fields it does not know.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JustInTimeProvisioning {
    /// Whether JIT is on (required by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_enabled: Option<bool>,
    /// Provisioning scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<JitScheme>,
    /// User store domain, e.g. `PRIMARY` or `DEFAULT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userstore: Option<String>,
    /// Associate to an existing local user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associate_local_user: Option<bool>,
    /// Skip JIT when account lookup fails.
    #[serde(
        default,
        rename = "skipJITForLookupFailure",
        skip_serializing_if = "Option::is_none"
    )]
    pub skip_jit_for_lookup_failure: Option<bool>,
    /// Account lookup mappings (max 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_lookup_attribute_mappings: Option<Vec<AccountLookupAttributeMapping>>,
    /// Attribute sync method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_sync_method: Option<AttributeSyncMethod>,
    /// IdP group sync method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_group_sync_method: Option<IdpGroupSyncMethod>,
    /// Fields this model does not know (newer servers).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Claim`: a claim URI; `id` and `displayName` are read-only (the server fills them for local
/// claims only, `ServerIdpManagementService.createClaimResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    /// Base64url of the URI (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The claim URI (required on requests; the server answers `{}` for an unset user id or role claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Console name of a local claim (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl Claim {
    /// A claim as requests carry it: the URI alone.
    pub fn uri(uri: impl Into<String>) -> Self {
        Self {
            uri: Some(uri.into()),
            ..Default::default()
        }
    }

    /// The URI, `""` when unset (how the server's blank checks see it).
    pub fn uri_str(&self) -> &str {
        self.uri.as_deref().unwrap_or_default()
    }
}

/// `ClaimMapping`: a federated claim and the local claim it is stored as.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimMapping {
    /// The claim as the identity provider names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_claim: Option<String>,
    /// The local claim it maps to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_claim: Option<Claim>,
}

/// `ProvisioningClaim`: a claim given a default value when the federated user has none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningClaim {
    /// With claim mappings, a mapped IdP claim; without, a local claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    /// The default value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
}

/// `Claims`: the claim config of an IdP (`GET`/`PUT /identity-providers/{id}/claims`; also in the
/// IdP GET). The PUT replaces all of it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    /// The claim that identifies the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id_claim: Option<Claim>,
    /// The claim that carries the user's roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_claim: Option<Claim>,
    /// IdP claim → local claim mappings (none: the IdP uses the local claim dialect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mappings: Option<Vec<ClaimMapping>>,
    /// Claims with default values for provisioning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_claims: Option<Vec<ProvisioningClaim>>,
    /// Fields this model does not know (newer servers).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `RoleMapping`: an IdP role and the local role it maps to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleMapping {
    /// The role as the identity provider names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_role: Option<String>,
    /// The local role (`DOMAIN/name` outside the primary user store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_role: Option<String>,
}

/// `Roles`: the role config of an IdP (`GET`/`PUT /identity-providers/{id}/roles`). The PUT replaces
/// all of it, `outboundProvisioningRoles` included.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Roles {
    /// IdP role → local role mappings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mappings: Option<Vec<RoleMapping>>,
    /// Roles whose users are outbound-provisioned (not managed; carried through a merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_provisioning_roles: Option<Vec<String>>,
    /// Fields this model does not know (newer servers).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `IdPGroup`: a group the IdP can return (`IdPGroupsConfig` is a list of them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdpGroup {
    /// The group's name at the IdP.
    #[serde(default)]
    pub name: String,
    /// Its id on the server (assigned by the server when a PUT leaves it out; local role
    /// assignments refer to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `ProvisioningRequest` / `ProvisioningResponse` (only `jit` is typed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provisioning {
    /// JIT settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jit: Option<JustInTimeProvisioning>,
    /// Outbound connectors (opaque).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_connectors: Option<Value>,
}

/// `IdentityProviderPOSTRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProviderPostRequest {
    /// Unique IdP name (flows reference the IdP by it).
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Logo URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Console template id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    /// Primary IdP flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_primary: Option<bool>,
    /// Authenticators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_authenticators: Option<FederatedAuthenticatorRequest>,
    /// Provisioning (JIT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<Provisioning>,
    /// Certificate, JWKS URI or SAML metadata URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
    /// Other fields (claims, roles, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `IdentityProviderResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProviderResponse {
    /// Resource id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Template id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    /// Enabled flag (model default true).
    #[serde(default = "default_true")]
    pub is_enabled: bool,
    /// Primary flag.
    #[serde(default)]
    pub is_primary: bool,
    /// Logo URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Federation hub flag.
    #[serde(default)]
    pub is_federation_hub: bool,
    /// Home realm identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_realm_identifier: Option<String>,
    /// Alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Issuer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_issuer_name: Option<String>,
    /// Authenticators (list form, no properties).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_authenticators: Option<FederatedAuthenticatorListResponse>,
    /// Provisioning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<Provisioning>,
    /// Certificate, JWKS URI or SAML metadata URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
    /// Claim config (`createIDPResponse` includes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Claims>,
    /// Role config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Roles>,
    /// Groups the IdP can return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<IdpGroup>>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

fn default_true() -> bool {
    true
}

/// `IdentityProviderListItem`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProviderListItem {
    /// Resource id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Enabled flag.
    #[serde(default = "default_true")]
    pub is_enabled: bool,
    /// Logo URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Authenticators, when asked for with `requiredAttributes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_authenticators: Option<FederatedAuthenticatorListResponse>,
    /// Provisioning, when asked for with `requiredAttributes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<Provisioning>,
    /// Path of the resource.
    #[serde(default, rename = "self")]
    pub self_link: String,
}

/// `IdentityProviderListResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProviderListResponse {
    /// Number of matches over all pages.
    #[serde(default)]
    pub total_results: u64,
    /// offset + 1.
    #[serde(default)]
    pub start_index: u64,
    /// Items in this page.
    #[serde(default)]
    pub count: u64,
    /// next / previous links.
    #[serde(default)]
    pub links: Vec<Link>,
    /// The page.
    #[serde(default)]
    pub identity_providers: Vec<IdentityProviderListItem>,
}

/// Operation of an IdP `Patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PatchOperation {
    /// Add.
    Add,
    /// Remove.
    Remove,
    /// Replace.
    Replace,
}

/// One element of the IdP PATCH body (a JSON array of these).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Patch {
    /// ADD / REMOVE / REPLACE.
    pub operation: PatchOperation,
    /// Root attribute path, e.g. `/description`.
    pub path: String,
    /// The value (a string in the spec; booleans are sent as JSON booleans or strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// `ConnectedApp`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectedApp {
    /// Application resource id.
    #[serde(default)]
    pub app_id: String,
    /// Path of the application.
    #[serde(default, rename = "self")]
    pub self_link: String,
}

/// `ConnectedApps`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectedApps {
    /// Matches over all pages.
    #[serde(default)]
    pub total_results: u64,
    /// offset + 1.
    #[serde(default)]
    pub start_index: u64,
    /// Items in this page.
    #[serde(default)]
    pub count: u64,
    /// next / previous links.
    #[serde(default)]
    pub links: Vec<Link>,
    /// The page.
    #[serde(default)]
    pub connected_apps: Vec<ConnectedApp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jit_round_trips_unknown_fields() {
        let json = r#"{"isEnabled":true,"scheme":"PROMPT_CONSENT","futureField":{"a":1}}"#;
        let jit: JustInTimeProvisioning = serde_json::from_str(json).expect("parse");
        assert_eq!(jit.scheme, Some(JitScheme::PromptConsent));
        let back = serde_json::to_value(&jit).expect("serialize");
        assert_eq!(back["futureField"]["a"], 1);
    }
}
