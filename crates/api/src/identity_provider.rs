//! `IdentityProvider`: a federated connection (Google, GitHub, Facebook, Apple, OIDC, SAML) with its JIT
//! provisioning and its claim, role and group mappings.

// kube's printcolumn(...) lists repeat `type_ = "string"`, which clippy reads as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{
    BackendRef, Conditions, DeletionPolicy, SecretKeyRef, DISPLAY_NAME_CHARACTERS_MESSAGE,
    DISPLAY_NAME_CHARACTERS_RULE, DISPLAY_NAME_TRIMMED_MESSAGE, DISPLAY_NAME_TRIMMED_RULE,
};

/// A federated identity provider on the identity server and its Just-in-Time provisioning settings.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "identity-operator.io",
    version = "v1alpha1",
    kind = "IdentityProvider",
    namespaced,
    status = "IdentityProviderStatus",
    shortname = "idp",
    shortname = "idps",
    category = "identity",
    doc = "A federated identity provider (connection) on the identity server, with its Just-in-Time provisioning settings.",
    printcolumn(
        name = "Backend",
        type_ = "string",
        json_path = ".spec.backendRef.name"
    ),
    printcolumn(
        name = "JIT",
        type_ = "string",
        json_path = ".status.jit",
        description = "JIT provisioning as observed on the server"
    ),
    printcolumn(
        name = "Conflict",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"InterconnectionConflict\")].status"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("(has(self.google) ? 1 : 0) + (has(self.github) ? 1 : 0) + (has(self.facebook) ? 1 : 0) + (has(self.apple) ? 1 : 0) + (has(self.oidc) ? 1 : 0) + (has(self.saml) ? 1 : 0) == 1").message("set exactly one identity provider type: google, github, facebook, apple, oidc or saml"))]
// With claim mappings the federated user's attributes arrive as the mapped local claims only, so
// a lookup by a claim nothing maps to never matches (every user is then a lookup failure).
#[x_kube(validation = Rule::new("!has(self.jit) || !has(self.jit.accountLookup) || !has(self.claims) || !has(self.claims.mappings) || size(self.claims.mappings) == 0 || self.jit.accountLookup.all(l, self.claims.mappings.exists(m, m.localClaim == l.localAttribute))").message("jit.accountLookup: each localAttribute must be a local claim that claims.mappings maps to (without such a mapping the lookup never matches)"))]
#[x_kube(validation = Rule::new("oldSelf.backendRef == self.backendRef").message("backendRef is immutable: create a new IdentityProvider to move it to another backend"))]
#[serde(rename_all = "camelCase")]
pub struct IdentityProviderSpec {
    /// The IdentityBackend (same namespace) this identity provider lives on. Immutable.
    pub backend_ref: BackendRef,
    /// The identity provider's name on the server. Login flows on the server reference IdPs by this
    /// name; it must be unique on the server.
    #[schemars(length(max = 120))]
    #[x_kube(validation = Rule::new("self.size() > 0").message("displayName must not be empty"))]
    // The name reaches the server's login flows and the generated conditional-auth script (issue 24):
    // no control characters or line breaks. The server trims names, so surrounding whitespace would
    // differ from the server's copy on every resync.
    #[x_kube(validation = Rule::new(DISPLAY_NAME_CHARACTERS_RULE).message(DISPLAY_NAME_CHARACTERS_MESSAGE))]
    #[x_kube(validation = Rule::new(DISPLAY_NAME_TRIMMED_RULE).message(DISPLAY_NAME_TRIMMED_MESSAGE))]
    pub display_name: String,
    /// A description shown in the server's console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Google as an OpenID Connect provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google: Option<OAuthProvider>,
    /// GitHub as an OAuth provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<OAuthProvider>,
    /// Facebook (the server's FacebookAuthenticator). `scopes` are Facebook permissions (server
    /// default `email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facebook: Option<FacebookProvider>,
    /// Sign in with Apple (the server's AppleOIDCAuthenticator). The server signs the client secret
    /// Apple wants from the private key itself, so no client secret is declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apple: Option<AppleProvider>,
    /// Any OpenID Connect provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcProvider>,
    /// A SAML 2.0 identity provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml: Option<SamlProvider>,
    /// Just-in-Time provisioning. Without this block JIT counts as disabled for the conflict check and
    /// the server's JIT settings are left as they are. Fields left out are not managed: the operator
    /// keeps what the server has for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jit: Option<JitSpec>,
    /// How the provider's claims become local claims (the server's claim config). Fields left out
    /// are not managed: the operator keeps what the server has for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<ClaimsSpec>,
    /// How the provider's roles become local roles (the server's role config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<RolesSpec>,
    /// The groups the provider can return (the server's IdP groups, to which local roles can be
    /// assigned). Leaving the field out keeps the server's; an empty list removes them. A group
    /// the server has keeps its server id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    #[x_kube(validation = Rule::new("self.all(g, self.exists_one(h, h.name == g.name))").message("groups: each name at most once"))]
    pub groups: Option<Vec<IdpGroupSpec>>,
    /// What to do when a change would disable JIT (or start skipping it on lookup failure) while
    /// applications with MFA after this IdP depend on it: Block (default) holds the JIT change back
    /// and reports it; Warn pushes it and reports it.
    #[serde(default)]
    pub conflict_policy: ConflictPolicy,
    /// What happens on the server when this object is deleted: Delete (default) or Orphan.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Take over an identity provider that already exists on the server with the same displayName.
    /// Without it, an existing one is reported as AlreadyExists and left untouched.
    #[serde(default)]
    pub adopt: bool,
}

/// An OAuth 2.0 / OIDC social login (Google, GitHub).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuthProvider {
    /// The OAuth client id registered at the provider.
    #[serde(rename = "clientID")]
    #[x_kube(validation = Rule::new("self != ''").message("clientID must not be empty"))]
    pub client_id: String,
    /// The Secret key holding the OAuth client secret.
    pub client_secret_ref: SecretKeyRef,
    /// Scopes to request (default: the provider's usual set).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The redirect URL registered at the provider (default: the server's commonauth endpoint).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "callbackURL"
    )]
    pub callback_url: Option<String>,
}

/// Facebook login: the OAuth fields plus the user-information fields to read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct FacebookProvider {
    /// The Facebook app id.
    #[serde(rename = "clientID")]
    #[x_kube(validation = Rule::new("self != ''").message("clientID must not be empty"))]
    pub client_id: String,
    /// The Secret key holding the Facebook app secret.
    pub client_secret_ref: SecretKeyRef,
    /// Permissions to request (server default `email`); sent comma-separated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The Graph API user fields to read (`UserInfoFields`, e.g. `id`, `name`, `email`); sent
    /// comma-separated. Left out, the server reads Facebook's default fields; it always adds
    /// `id` when reading (FacebookAuthenticator.processAuthenticationResponse), which need not be
    /// listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(length(max = 128)))]
    #[x_kube(validation = Rule::new("self.all(f, f.matches('^[A-Za-z0-9_.{}()]+$'))").message("userInfoFields: each must be one Graph API field name (letters, digits, _ . {} ()), without commas or spaces"))]
    pub user_info_fields: Vec<String>,
    /// The redirect URL registered at Facebook (default: the server's commonauth endpoint).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "callbackURL"
    )]
    pub callback_url: Option<String>,
}

/// Sign in with Apple. The server makes the client secret Apple requires (a JWT signed with the
/// private key, for `secretValidityPeriodSeconds`) at a login when it has none or it expires, and
/// stores it itself (AppleAuthenticator.evaluateClientSecret, wso2-extensions/
/// identity-outbound-auth-apple 9275ea9), so the spec names the key, never a client secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppleProvider {
    /// The Services ID registered at Apple (the OAuth client id, e.g. `com.example.web`).
    #[serde(rename = "clientID")]
    #[x_kube(validation = Rule::new("self != ''").message("clientID must not be empty"))]
    pub client_id: String,
    /// The team identifier Apple gave the developer account (10 characters). Required by the
    /// server to sign the client secret.
    #[serde(rename = "teamID")]
    #[x_kube(validation = Rule::new("self != ''").message("teamID must not be empty"))]
    pub team_id: String,
    /// The identifier of the Sign in with Apple key (10 characters). Required by the server to
    /// sign the client secret.
    #[serde(rename = "keyID")]
    #[x_kube(validation = Rule::new("self != ''").message("keyID must not be empty"))]
    pub key_id: String,
    /// The Secret key holding the private key downloaded from Apple (the `.p8` file's PEM text),
    /// pushed as the authenticator's confidential `PrivateKey`.
    pub private_key_secret_ref: SecretKeyRef,
    /// How long each client secret the server signs is valid, in seconds (server default
    /// 15777000, six months, the most Apple accepts). The server renews a secret an hour before it
    /// expires, so a period of an hour or less would renew it at every login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 3601, max = 15777000))]
    pub secret_validity_period_seconds: Option<i64>,
    /// Scopes to request (server default `name email`, the only ones Apple has); sent
    /// space-separated, and the server splits on commas and `+` too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(length(max = 64)))]
    #[x_kube(validation = Rule::new(r"self.all(s, s.matches('^[^\\s,+]+$'))").message("scopes: each must be one word, without spaces, commas or +"))]
    pub scopes: Vec<String>,
    /// More query parameters for Apple's authorization request, as `key=value` pairs joined by
    /// `&` (the server adds `scope` and `response_mode=form_post` itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new(r"self.matches('^[^&=\\s]+=[^&\\s]*(&[^&=\\s]+=[^&\\s]*)*$')").message("additionalQueryParameters must be key=value pairs joined by &"))]
    pub additional_query_parameters: Option<String>,
    /// The return URL registered at Apple for the Services ID (default: the server's commonauth
    /// endpoint).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "callbackURL"
    )]
    pub callback_url: Option<String>,
}

/// A generic OpenID Connect provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
// The server stores one of a JWKS URI and certificates (a POST with both keeps only the JWKS URI:
// identity-api-server ServerIdpManagementService.createIDP), so declaring both would never converge.
#[x_kube(validation = Rule::new("!has(self.jwksURI) || !has(self.certificates) || size(self.certificates) == 0").message("set jwksURI or certificates, not both: the server keeps one of them"))]
#[serde(rename_all = "camelCase")]
pub struct OidcProvider {
    /// The client id registered at the provider.
    #[serde(rename = "clientID")]
    #[x_kube(validation = Rule::new("self != ''").message("clientID must not be empty"))]
    pub client_id: String,
    /// The Secret key holding the client secret.
    pub client_secret_ref: SecretKeyRef,
    /// The provider's authorization endpoint.
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("authorizationEndpoint must be an http(s) URL"))]
    pub authorization_endpoint: String,
    /// The provider's token endpoint.
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("tokenEndpoint must be an http(s) URL"))]
    pub token_endpoint: String,
    /// The provider's userinfo endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("userinfoEndpoint must be an http(s) URL"))]
    pub userinfo_endpoint: Option<String>,
    /// The provider's logout endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("logoutEndpoint must be an http(s) URL"))]
    pub logout_endpoint: Option<String>,
    /// The provider's JWKS URI, used to verify its ID tokens; stored as the identity provider's
    /// `certificate.jwksUri` on the server (which then keeps no PEM certificate for it).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "jwksURI")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("jwksURI must be an http(s) URL"))]
    pub jwks_uri: Option<String>,
    /// The certificates (PEM, one `-----BEGIN CERTIFICATE-----` block each) that verify the
    /// provider's ID tokens, instead of a JWKS URI; stored as the identity provider's
    /// `certificate.certificates`. The server keeps one kind of certificate per IdP, hence not
    /// together with jwksURI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(length(max = 8192)))]
    #[x_kube(validation = Rule::new(r"self.all(c, c.matches('^-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\\s]+-----END CERTIFICATE-----\\s*$'))").message("certificates: each must be one PEM block, -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----"))]
    #[x_kube(validation = Rule::new("self.all(c, self.exists_one(d, d == c))").message("certificates: each at most once (the server refuses duplicates)"))]
    pub certificates: Vec<String>,
    /// Scopes to request (default openid).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The redirect URL registered at the provider.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "callbackURL"
    )]
    pub callback_url: Option<String>,
}

/// A SAML 2.0 identity provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
// One of metadata URI and certificates, as the server stores them (a POST with both keeps the
// metadata URI only: ServerIdpManagementService.createIDP).
#[x_kube(validation = Rule::new("!has(self.metadataURI) || !has(self.certificates) || size(self.certificates) == 0").message("set metadataURI or certificates, not both: the server keeps one of them"))]
#[serde(rename_all = "camelCase")]
pub struct SamlProvider {
    /// The IdP's entity id (issuer).
    #[serde(rename = "idpEntityID")]
    #[x_kube(validation = Rule::new("self != ''").message("idpEntityID must not be empty"))]
    pub idp_entity_id: String,
    /// The IdP's single sign-on URL.
    #[serde(rename = "ssoURL")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("ssoURL must be an http(s) URL"))]
    pub sso_url: String,
    /// The entity id this server presents to the IdP (service provider entity id).
    #[serde(rename = "spEntityID")]
    #[x_kube(validation = Rule::new("self != ''").message("spEntityID must not be empty"))]
    pub sp_entity_id: String,
    /// The NameID format to request.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "nameIDFormat"
    )]
    pub name_id_format: Option<String>,
    /// Sign authentication requests.
    #[serde(default)]
    pub sign_authn_requests: bool,
    /// The certificates (PEM, one `-----BEGIN CERTIFICATE-----` block each) that verify the IdP's
    /// signed responses and assertions; stored as the identity provider's
    /// `certificate.certificates`. The server keeps one kind of certificate per IdP, hence not
    /// together with metadataURI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(length(max = 8192)))]
    #[x_kube(validation = Rule::new(r"self.all(c, c.matches('^-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\\s]+-----END CERTIFICATE-----\\s*$'))").message("certificates: each must be one PEM block, -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----"))]
    #[x_kube(validation = Rule::new("self.all(c, self.exists_one(d, d == c))").message("certificates: each at most once (the server refuses duplicates)"))]
    pub certificates: Vec<String>,
    /// Where the IdP publishes its SAML metadata (signing certificates included); stored as the
    /// identity provider's `certificate.samlMetadataUri`. Excludes certificates.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "metadataURI"
    )]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("metadataURI must be an http(s) URL"))]
    pub metadata_uri: Option<String>,
}

/// How the server provisions a local account for a federated user.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
// Without lookup mappings there is no lookup to fail, so the skip would mean nothing; requiring them in
// the same spec also lets the conflict rule decide from the spec alone.
#[x_kube(validation = Rule::new("!has(self.skipForLookupFailure) || !self.skipForLookupFailure || (has(self.accountLookup) && size(self.accountLookup) > 0)").message("skipForLookupFailure: true needs a non-empty accountLookup (without lookup mappings there is no lookup to fail)"))]
#[serde(rename_all = "camelCase")]
pub struct JitSpec {
    /// Create (or link) a local account when a federated user signs in. Second factors such as TOTP
    /// and passkeys keep their secret on that account.
    pub enabled: bool,
    /// What the user is asked during provisioning (server default ProvisionSilently).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<JitScheme>,
    /// The user store domain for provisioned users (server default PRIMARY; Asgardeo calls it DEFAULT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self != ''").message("userstore must not be empty"))]
    pub userstore: Option<String>,
    /// Link the federated user to an existing local account with the same identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associate_local_user: Option<bool>,
    /// How federated attributes update the local account (server default OverrideAll).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_sync_method: Option<AttributeSyncMethod>,
    /// Look a federated user up among the local accounts by these attributes before provisioning
    /// (`accountLookupAttributeMappings`; the server allows at most 2). An empty list removes the
    /// server's mappings; leaving the field out keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2))]
    pub account_lookup: Option<Vec<AccountLookup>>,
    /// Provision nobody whom the account lookup does not match (`skipJITForLookupFailure`, server
    /// default false). Such users get no local account, so an MFA step after this provider that
    /// needs one is a conflict, as with JIT off. Needs a non-empty accountLookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_for_lookup_failure: Option<bool>,
    /// How the federated user's groups update the local account's (`idpGroupSyncMethod`, server
    /// default MergeWithExisting; servers before 2026 do not know it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_sync_method: Option<GroupSyncMethod>,
}

/// The CEL rule of a local claim URI.
const LOCAL_CLAIM_RULE: &str = "self.startsWith('http://wso2.org/claims/') && self.size() > 23";

/// The claim config of an identity provider. The server checks it on write: with `mappings`, the
/// user id and role claims must be mapped IdP claims; without, they must be local claims; every
/// mapped local claim must exist on the tenant (else the server refuses the write and the
/// operator reports its answer).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
// The server drops, without an error, a provisioning claim that no mapping has; its meaning
// (an IdP claim or a local claim) depends on the mappings, so they are declared together.
#[x_kube(validation = Rule::new("!has(self.provisioningClaims) || has(self.mappings)").message("provisioningClaims needs mappings in the same spec (an empty list means the local claim dialect): which claims they name depends on it"))]
#[x_kube(validation = Rule::new("!has(self.provisioningClaims) || !has(self.mappings) || (size(self.mappings) > 0 ? self.provisioningClaims.all(p, self.mappings.exists(m, m.idpClaim == p.claim)) : self.provisioningClaims.all(p, p.claim.startsWith('http://wso2.org/claims/')))").message("provisioningClaims: with mappings each claim must be a mapped idpClaim (the server drops others); without, a local claim URI http://wso2.org/claims/<name>"))]
#[x_kube(validation = Rule::new("!has(self.userIdClaim) || self.userIdClaim == '' || !has(self.mappings) || (size(self.mappings) > 0 ? self.mappings.exists(m, m.idpClaim == self.userIdClaim) : self.userIdClaim.startsWith('http://wso2.org/claims/'))").message("userIdClaim: with mappings it must be a mapped idpClaim; without, a local claim URI (the server refuses anything else)"))]
#[x_kube(validation = Rule::new("!has(self.roleClaim) || self.roleClaim == '' || !has(self.mappings) || (size(self.mappings) > 0 ? self.mappings.exists(m, m.idpClaim == self.roleClaim) : self.roleClaim.startsWith('http://wso2.org/claims/'))").message("roleClaim: with mappings it must be a mapped idpClaim; without, a local claim URI (the server refuses anything else)"))]
#[serde(rename_all = "camelCase")]
pub struct ClaimsSpec {
    /// The claim that identifies the user: a mapped IdP claim when there are mappings, else a
    /// local claim URI. `""` removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub user_id_claim: Option<String>,
    /// The claim that carries the user's roles (same form as userIdClaim). `""` removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub role_claim: Option<String>,
    /// The provider's claims and the local claims they are stored as. An empty list means the
    /// provider sends local claims itself (the local claim dialect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.idpClaim == m.idpClaim))").message("mappings: each idpClaim at most once"))]
    pub mappings: Option<Vec<ClaimMappingSpec>>,
    /// Claims given a default value when the federated user has none (provisioning claims).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q.claim == p.claim))").message("provisioningClaims: each claim at most once"))]
    pub provisioning_claims: Option<Vec<ProvisioningClaimSpec>>,
}

/// A federated claim and the local claim it is stored as.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimMappingSpec {
    /// The claim as the provider names it (e.g. `email`).
    #[schemars(length(max = 255))]
    #[x_kube(validation = Rule::new("self != ''").message("idpClaim must not be empty"))]
    pub idp_claim: String,
    /// The local claim URI, in the `http://wso2.org/claims/` dialect; it must exist on the tenant.
    #[schemars(length(max = 255))]
    #[x_kube(validation = Rule::new(LOCAL_CLAIM_RULE).message("localClaim must be a local claim URI of the form http://wso2.org/claims/<name>"))]
    pub local_claim: String,
}

/// A claim with a default value for provisioning.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningClaimSpec {
    /// A mapped idpClaim when there are mappings, else a local claim URI.
    #[schemars(length(max = 255))]
    #[x_kube(validation = Rule::new("self != ''").message("claim must not be empty"))]
    pub claim: String,
    /// The value given when the federated user has none. Not empty: the server forgets a claim
    /// with an empty default.
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("self != ''").message("defaultValue must not be empty (the server forgets a provisioning claim without one)"))]
    pub default_value: String,
}

/// The role config of an identity provider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolesSpec {
    /// The provider's roles and the local roles they map to. Leaving it out keeps the server's;
    /// an empty list removes them. The server's outbound-provisioning roles are kept as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.idpRole == m.idpRole))").message("roles.mappings: each idpRole at most once"))]
    pub mappings: Option<Vec<RoleMappingSpec>>,
}

/// An IdP role and the local role it maps to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleMappingSpec {
    /// The role as the provider names it.
    #[schemars(length(max = 255))]
    #[x_kube(validation = Rule::new("self != ''").message("idpRole must not be empty"))]
    pub idp_role: String,
    /// The local role (`DOMAIN/name` for a role outside the primary user store).
    #[schemars(length(max = 255))]
    #[x_kube(validation = Rule::new("self != ''").message("localRole must not be empty"))]
    pub local_role: String,
}

/// A group the provider can return.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdpGroupSpec {
    /// The group's name at the provider.
    #[schemars(length(max = 255))]
    #[x_kube(validation = Rule::new("self.trim() != ''").message("group name must not be blank (the server drops it)"))]
    pub name: String,
}

/// One account-lookup mapping: a local claim and the federated attribute compared with it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountLookup {
    /// The local claim URI, in the `http://wso2.org/claims/` dialect (e.g.
    /// `http://wso2.org/claims/emailaddress`).
    #[schemars(length(max = 255))]
    #[x_kube(validation = Rule::new(LOCAL_CLAIM_RULE).message("localAttribute must be a local claim URI of the form http://wso2.org/claims/<name>"))]
    pub local_attribute: String,
    /// The federated user's attribute (e.g. `email`).
    #[schemars(length(max = 255))]
    #[x_kube(validation = Rule::new("self != ''").message("federatedAttribute must not be empty"))]
    pub federated_attribute: String,
}

/// How a federated user's groups are synced into the local account.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum GroupSyncMethod {
    /// The federated groups replace the local ones.
    OverrideAll,
    /// The federated groups are added to the local ones.
    MergeWithExisting,
}

/// JIT provisioning scheme (the API's PROVISION_SILENTLY, PROMPT_* values).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum JitScheme {
    /// Create the account without asking the user.
    ProvisionSilently,
    /// Ask for a username, a password and consent.
    PromptUsernamePasswordConsent,
    /// Ask for a password and consent.
    PromptPasswordConsent,
    /// Ask for consent only.
    PromptConsent,
}

/// How federated attributes are synced into the local account.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum AttributeSyncMethod {
    /// Federated attributes replace all local ones.
    OverrideAll,
    /// Local values win over federated ones.
    PreserveLocal,
    /// Attributes are not synced.
    None,
}

/// What to do with a change that would disable JIT while applications depend on it.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, schemars::JsonSchema,
)]
pub enum ConflictPolicy {
    /// Hold the JIT change back (the rest of the spec is still applied) and report it.
    #[default]
    Block,
    /// Apply the change anyway; report the conflict with a condition and a Warning Event.
    Warn,
}

/// The kind of federated connection, which decides the authenticator name used in login flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderType {
    /// Google (GoogleOIDCAuthenticator).
    Google,
    /// GitHub (GithubAuthenticator).
    Github,
    /// Facebook (FacebookAuthenticator).
    Facebook,
    /// Sign in with Apple (AppleOIDCAuthenticator).
    Apple,
    /// Generic OIDC (OpenIDConnectAuthenticator).
    Oidc,
    /// SAML 2.0 (SAMLSSOAuthenticator).
    Saml,
}

impl ProviderType {
    /// The federated authenticator name the server uses in login-flow steps.
    pub fn authenticator_name(self) -> &'static str {
        match self {
            ProviderType::Google => "GoogleOIDCAuthenticator",
            ProviderType::Github => "GithubAuthenticator",
            ProviderType::Facebook => "FacebookAuthenticator",
            ProviderType::Apple => "AppleOIDCAuthenticator",
            ProviderType::Oidc => "OpenIDConnectAuthenticator",
            ProviderType::Saml => "SAMLSSOAuthenticator",
        }
    }
}

impl IdentityProvider {
    /// The name login flows on the server use for this identity provider: `status.serverName`
    /// when recorded, else `spec.displayName` (an object from before the field, or not yet on the
    /// server).
    pub fn server_name(&self) -> &str {
        self.status
            .as_ref()
            .and_then(|s| s.server_name.as_deref())
            .unwrap_or(&self.spec.display_name)
    }
}

impl IdentityProviderSpec {
    /// Which type is set. The CRD's CEL rule guarantees exactly one; `None` only for objects that
    /// bypassed validation.
    pub fn provider_type(&self) -> Option<ProviderType> {
        let set = [
            (self.google.is_some(), ProviderType::Google),
            (self.github.is_some(), ProviderType::Github),
            (self.facebook.is_some(), ProviderType::Facebook),
            (self.apple.is_some(), ProviderType::Apple),
            (self.oidc.is_some(), ProviderType::Oidc),
            (self.saml.is_some(), ProviderType::Saml),
        ];
        let mut kinds = set.iter().filter(|(on, _)| *on).map(|(_, k)| *k);
        match (kinds.next(), kinds.next()) {
            (Some(kind), None) => Some(kind),
            _ => None,
        }
    }

    /// The Secret key holding the provider's credential, for the types that have one: the client
    /// secret, or Apple's private key (the one value the operator pushes from a Secret).
    pub fn client_secret_ref(&self) -> Option<&SecretKeyRef> {
        self.google
            .as_ref()
            .or(self.github.as_ref())
            .map(|p| &p.client_secret_ref)
            .or(self.facebook.as_ref().map(|p| &p.client_secret_ref))
            .or(self.apple.as_ref().map(|p| &p.private_key_secret_ref))
            .or(self.oidc.as_ref().map(|p| &p.client_secret_ref))
    }

    /// Whether JIT is declared enabled (a missing block counts as disabled).
    pub fn jit_enabled(&self) -> bool {
        self.jit.as_ref().is_some_and(|j| j.enabled)
    }
}

/// What the operator observed about the identity provider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProviderStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled and InterconnectionConflict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Conditions,
    /// The identity provider's id on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The name the server object has, as this operator last made or saw it: what login flows on
    /// the server reference. It differs from spec.displayName while a rename is not on the server
    /// (not yet pushed, or refused as a RenameClash), and Applications use it, never a name that may
    /// be another identity provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// JIT provisioning as observed on the server: Enabled, Disabled, or SkippedOnLookupFailure (on,
    /// but users that the account lookup does not match are not provisioned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jit: Option<String>,
    /// Applications whose login flow offers this identity provider, declared in the cluster or
    /// existing only on the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependents: Vec<Dependent>,
    /// Conflicts between this provider's JIT setting and its dependents' login flows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<ConflictEntry>,
    /// The conflicts the rule would report if this provider's JIT were off, whatever the spec
    /// says: each application step that needs a local account after this provider (server-only
    /// applications included, skipFor respected). The admission policy
    /// (`identity-operator admission-policy`) reads it from the stored object to refuse (Block) or
    /// warn about (Warn) a spec update that turns JIT off while it is not empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jit_required_by: Vec<JitRequirement>,
}

/// One application step that needs this provider's JIT: a local-account step after it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct JitRequirement {
    /// The application's name on the server.
    pub application: String,
    /// The Application object in this namespace, when it is declared in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_ref: Option<String>,
    /// The step (1-based) that offers this identity provider.
    pub identity_provider_step: i32,
    /// The authenticator that needs a local account.
    pub authenticator: String,
    /// The step (1-based) of that authenticator.
    pub authenticator_step: i32,
}

/// An application that uses the identity provider in its login flow.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dependent {
    /// The application's name on the server.
    pub name: String,
    /// The Application object in this namespace, when it is declared in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_ref: Option<String>,
    /// The application's id on the server, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// One conflict: an application step that needs a local account after this IdP.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConflictEntry {
    /// The application's name on the server.
    pub application: String,
    /// The step (1-based) that offers this identity provider.
    pub identity_provider_step: i32,
    /// The authenticator that needs a local account.
    pub authenticator: String,
    /// The step (1-based) of that authenticator.
    pub authenticator_step: i32,
    /// The application has a conditional-auth script the operator did not generate: it might skip
    /// the step, but that was not verified, so the conflict stands.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unverified_script: bool,
    /// JIT is on but skipped on lookup failure: the users that no local account matches get none.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lookup_skip: bool,
}
