//! The wire model of the Asgardeo / WSO2 Identity Server management REST API (`/api/server/v1`).
//!
//! Both the HTTP client ([`super::asgardeo`]) and the emulator (crate `identity-emulator`) speak these types,
//! so the two cannot drift apart. Field names follow the official OpenAPI files (`idp.yaml`,
//! `applications.yaml`, camelCase as on the wire); only the fields the operator reads or writes are
//! typed. Objects the client reads and writes back whole (JIT, OIDC, IdP, application) keep unknown
//! fields in a flattened `extra` map, so a read-merge-write never drops what a newer server added.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::secret::Secret;

/// Unknown fields kept as they came, for round-tripping.
pub type Extra = BTreeMap<String, Value>;

pub use identity_model::LOCAL_IDP;

/// Error body of every management API (`Error` in both specs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Server error code, e.g. `IDP-60002`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Short message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Longer description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Correlation id of the request in the server's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// A pagination link (`rel` is `next` or `previous`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Target of the link (a path with `offset` and `limit` query parameters).
    #[serde(default)]
    pub href: String,
    /// Relation: `next` or `previous`.
    #[serde(default)]
    pub rel: String,
}

/// OAuth2 token endpoint response (client_credentials).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: Secret,
    /// Always `Bearer`.
    #[serde(default)]
    pub token_type: String,
    /// Lifetime in seconds.
    #[serde(default)]
    pub expires_in: u64,
    /// Space separated scopes granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// OAuth2 token endpoint error (RFC 6749 §5.2).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OAuthError {
    /// Error code, e.g. `invalid_client`.
    pub error: String,
    /// Human readable text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Identity providers
// ---------------------------------------------------------------------------------------------

/// `Property` of a federated authenticator. `Debug` hides values whose key looks secret
/// (`ClientSecret`, passwords, API keys), because these structs end up in logs and errors.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    /// Property key, e.g. `ClientId`.
    pub key: String,
    /// Property value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Property {
    /// A key/value property.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// True when the key looks like it names a secret. For redaction in `Debug` only: what is
    /// confidential for comparison, drift and export comes from the server ([`super::secrecy`]),
    /// because spelling misleads (`OAuth2TokenEPUrl` is a URL).
    pub fn looks_secret(&self) -> bool {
        let k = self.key.to_ascii_lowercase();
        [
            "secret",
            "password",
            "token",
            "apikey",
            "api_key",
            "privatekey",
        ]
        .iter()
        .any(|needle| k.contains(needle))
    }
}

impl std::fmt::Debug for Property {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value: &dyn std::fmt::Debug = if self.looks_secret() {
            &"***"
        } else {
            &self.value
        };
        f.debug_struct("Property")
            .field("key", &self.key)
            .field("value", value)
            .finish()
    }
}

/// `definedBy` of an authenticator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DefinedBy {
    /// Built into the server.
    System,
    /// A custom (user defined) authenticator.
    User,
}

/// `MetaProperty`: one configuration property an authenticator declares (metadata API).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaProperty {
    /// Property key, e.g. `ClientSecret`.
    #[serde(default)]
    pub key: String,
    /// Label in the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// STRING, BOOLEAN or INTEGER.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub kind: Option<String>,
    /// Whether the property must be set.
    #[serde(default)]
    pub is_mandatory: bool,
    /// Whether the value is a secret (masked, never shown back).
    #[serde(default)]
    pub is_confidential: bool,
    /// Default value (the server sends "" when there is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
    /// Nested properties.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_properties: Vec<MetaProperty>,
    /// Fields this model does not type (description, displayOrder, regex, options).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `MetaFederatedAuthenticator`: what `GET /identity-providers/meta/federated-authenticators/{id}`
/// returns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaFederatedAuthenticator {
    /// Unpadded base64url of the name.
    #[serde(default)]
    pub authenticator_id: String,
    /// Authenticator name.
    #[serde(default)]
    pub name: String,
    /// Console name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// SYSTEM or USER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defined_by: Option<DefinedBy>,
    /// The properties it declares.
    #[serde(default)]
    pub properties: Vec<MetaProperty>,
}

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

impl From<Certificate> for super::IdpCertificate {
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

/// `FederatedAuthenticator`: one authenticator of an IdP, with properties (single GET, POST, PUT).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedAuthenticator {
    /// Unpadded base64url of the authenticator name.
    #[serde(default)]
    pub authenticator_id: String,
    /// Authenticator name, e.g. `GoogleOIDCAuthenticator` (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the authenticator is enabled (model default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_enabled: Option<bool>,
    /// Whether it is the IdP's default authenticator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
    /// SYSTEM or USER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defined_by: Option<DefinedBy>,
    /// Tags (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Configuration properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Vec<Property>>,
    /// Endpoint of a custom authenticator (kept opaque).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Value>,
}

/// `FederatedAuthenticatorRequest` inside an IdP POST.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedAuthenticatorRequest {
    /// Id of the default authenticator; must be one of `authenticators`.
    #[serde(default)]
    pub default_authenticator_id: String,
    /// The authenticators.
    #[serde(default)]
    pub authenticators: Vec<FederatedAuthenticator>,
}

/// `FederatedAuthenticatorListItem`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedAuthenticatorListItem {
    /// Authenticator id.
    #[serde(default)]
    pub authenticator_id: String,
    /// Authenticator name.
    #[serde(default)]
    pub name: String,
    /// Enabled flag.
    #[serde(default)]
    pub is_enabled: bool,
    /// SYSTEM or USER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defined_by: Option<DefinedBy>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Path of the authenticator resource.
    #[serde(default, rename = "self")]
    pub self_link: String,
}

/// `FederatedAuthenticatorListResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedAuthenticatorListResponse {
    /// Default authenticator id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_authenticator_id: Option<String>,
    /// The authenticators (without properties).
    #[serde(default)]
    pub authenticators: Vec<FederatedAuthenticatorListItem>,
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

// ---------------------------------------------------------------------------------------------
// Applications
// ---------------------------------------------------------------------------------------------

/// `AuthenticationSequence.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SequenceType {
    /// The tenant default flow; steps sent with it are ignored by the server.
    Default,
    /// The flow in `steps`.
    UserDefined,
}

/// `Authenticator`: one option of a step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuthenticatorOption {
    /// `LOCAL` or the IdP **name**.
    #[serde(default)]
    pub idp: String,
    /// Authenticator **name**, e.g. `totp` or `GoogleOIDCAuthenticator`.
    #[serde(default)]
    pub authenticator: String,
}

/// `AuthenticationStepModel`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticationStep {
    /// Step id, 1..n.
    #[serde(default)]
    pub id: i64,
    /// Alternatives of the step.
    #[serde(default)]
    pub options: Vec<AuthenticatorOption>,
}

/// `AuthenticationSequence`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationSequence {
    /// DEFAULT or USER_DEFINED; absent means DEFAULT.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<SequenceType>,
    /// Steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<AuthenticationStep>>,
    /// Request path authenticators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_path_authenticators: Option<Vec<String>>,
    /// Conditional authentication script; omitted unless managed (sending it needs an extra scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Step whose user is the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_step_id: Option<i64>,
    /// Step whose attributes are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_step_id: Option<i64>,
}

/// `OpenIDConnectConfiguration` (GET/PUT `inbound-protocols/oidc`, and inside an application POST).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenIdConnectConfiguration {
    /// OAuth client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// OAuth client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// Grant types (required, at least one).
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Redirect URIs.
    #[serde(
        default,
        rename = "callbackURLs",
        skip_serializing_if = "Option::is_none"
    )]
    pub callback_urls: Option<Vec<String>>,
    /// CORS origins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// Public client (no secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_client: Option<bool>,
    /// ACTIVE or REVOKED (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Everything else (token lifetimes, PKCE, logout, ...), kept for read-merge-write.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `InboundProtocols` inside an application POST (only OIDC is typed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundProtocols {
    /// OIDC settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OpenIdConnectConfiguration>,
    /// Other protocols.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `ApplicationModel` (POST `/applications`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationModel {
    /// Unique name.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Logo URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Access URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_url: Option<String>,
    /// Console template id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    /// Inbound protocols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_protocol_configuration: Option<InboundProtocols>,
    /// Login flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_sequence: Option<AuthenticationSequence>,
    /// Other fields (claims, advanced configurations, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `InboundProtocolListItem`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InboundProtocolListItem {
    /// Protocol type, e.g. `oidc`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Path of the protocol resource.
    #[serde(default, rename = "self")]
    pub self_link: String,
}

/// `ApplicationResponseModel`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationResponseModel {
    /// Resource id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Logo URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Access URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_url: Option<String>,
    /// OAuth client id (when OIDC is configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Template id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    /// Inbound protocols configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_protocols: Option<Vec<InboundProtocolListItem>>,
    /// Login flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_sequence: Option<AuthenticationSequence>,
    /// READ or WRITE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `ApplicationPatchModel`: a partial object (not JSON Patch); absent fields are left alone.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatchModel {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// New logo URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// New access URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_url: Option<String>,
    /// New login flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_sequence: Option<AuthenticationSequence>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `ApplicationListItem`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationListItem {
    /// Resource id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// OAuth client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Path of the resource.
    #[serde(default, rename = "self")]
    pub self_link: String,
}

/// `ApplicationListResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationListResponse {
    /// Matches over all pages.
    #[serde(default)]
    pub total_results: u64,
    /// offset + 1.
    #[serde(default)]
    pub start_index: u64,
    /// Items in this page.
    #[serde(default)]
    pub count: u64,
    /// The page.
    #[serde(default)]
    pub applications: Vec<ApplicationListItem>,
    /// next / previous links.
    #[serde(default)]
    pub links: Vec<Link>,
}

/// Unpadded base64url of an authenticator name: how the server derives authenticator ids.
pub fn authenticator_id(name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name.as_bytes())
}

/// Inverse of [`authenticator_id`]; `None` when the id is not valid base64url UTF-8.
pub fn authenticator_name(id: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id.as_bytes())
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticator_ids_match_the_documented_values() {
        assert_eq!(
            authenticator_id("GoogleOIDCAuthenticator"),
            "R29vZ2xlT0lEQ0F1dGhlbnRpY2F0b3I"
        );
        assert_eq!(authenticator_id("totp"), "dG90cA");
        assert_eq!(
            authenticator_name("U0FNTFNTT0F1dGhlbnRpY2F0b3I").as_deref(),
            Some("SAMLSSOAuthenticator")
        );
    }

    #[test]
    fn property_debug_hides_secrets() {
        let p = Property::new("ClientSecret", "s3cr3t");
        assert!(!format!("{p:?}").contains("s3cr3t"));
        let p = Property::new("ClientId", "abc");
        assert!(format!("{p:?}").contains("abc"));
    }

    #[test]
    fn jit_round_trips_unknown_fields() {
        let json = r#"{"isEnabled":true,"scheme":"PROMPT_CONSENT","futureField":{"a":1}}"#;
        let jit: JustInTimeProvisioning = serde_json::from_str(json).expect("parse");
        assert_eq!(jit.scheme, Some(JitScheme::PromptConsent));
        let back = serde_json::to_value(&jit).expect("serialize");
        assert_eq!(back["futureField"]["a"], 1);
    }

    #[test]
    fn oidc_uses_the_api_spelling_of_callback_urls() {
        let cfg = OpenIdConnectConfiguration {
            grant_types: vec!["authorization_code".into()],
            callback_urls: Some(vec!["https://a/cb".into()]),
            ..Default::default()
        };
        let v = serde_json::to_value(&cfg).expect("serialize");
        assert!(v.get("callbackURLs").is_some());
    }
}
