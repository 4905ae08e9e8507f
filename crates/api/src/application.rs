//! `Application`: an application on the identity server, its OIDC settings and its login flow.

// kube's printcolumn(...) lists repeat `type_ = "string"`, which clippy reads as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{
    BackendRef, Conditions, DeletionPolicy, LocalObjectRef, DISPLAY_NAME_CHARACTERS_MESSAGE,
    DISPLAY_NAME_CHARACTERS_RULE, DISPLAY_NAME_TRIMMED_MESSAGE, DISPLAY_NAME_TRIMMED_RULE,
};

/// An application on the identity server with its OpenID Connect settings and its (multi-factor)
/// login flow.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "identity-operator.io",
    version = "v1alpha1",
    kind = "Application",
    namespaced,
    status = "ApplicationStatus",
    // Not `app`/`apps`: Argo CD's Application owns those. The full name is
    // applications.identity-operator.io.
    shortname = "idapp",
    shortname = "idapps",
    category = "identity",
    doc = "An application on the identity server with its OpenID Connect settings and its multi-factor login flow.",
    printcolumn(name = "Backend", type_ = "string", json_path = ".spec.backendRef.name"),
    printcolumn(name = "Steps", type_ = "integer", json_path = ".status.steps"),
    printcolumn(name = "Conditional", type_ = "string", json_path = ".status.conditionalSteps"),
    printcolumn(name = "Conflict", type_ = "string", json_path = ".status.conditions[?(@.type==\"InterconnectionConflict\")].status"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("oldSelf.backendRef == self.backendRef").message("backendRef is immutable: create a new Application to move it to another backend"))]
#[x_kube(validation = Rule::new("!has(self.credentialsSecret) || has(self.oidc)").message("credentialsSecret needs oidc: only OIDC applications have client credentials"))]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// The IdentityBackend (same namespace) this application lives on. Immutable.
    pub backend_ref: BackendRef,
    /// The application's name on the server; unique on the server.
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
    /// OpenID Connect inbound settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcSettings>,
    /// A Secret (same namespace) the operator creates and keeps with keys client-id and client-secret
    /// of the OIDC client. The Secret is owned by this Application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<LocalObjectRef>,
    /// The login flow: steps run in order, and within a step the user picks one option. Without it
    /// the server's default flow (username and password) is used and left as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_flow: Option<LoginFlow>,
    /// What happens on the server when this object is deleted: Delete (default) or Orphan.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Take over an application that already exists on the server with the same displayName.
    /// Without it, an existing one is reported as AlreadyExists and left untouched.
    #[serde(default)]
    pub adopt: bool,
}

/// OpenID Connect inbound settings of an application.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!('authorization_code' in self.grantTypes || 'implicit' in self.grantTypes) || (has(self.callbackURLs) && size(self.callbackURLs) > 0)").message("authorization_code and implicit grants need at least one callbackURL"))]
pub struct OidcSettings {
    /// Allowed grant types, e.g. authorization_code, refresh_token, client_credentials.
    #[x_kube(validation = Rule::new("size(self) > 0").message("oidc.grantTypes needs at least one grant type"))]
    #[schemars(length(max = 10))]
    pub grant_types: Vec<GrantType>,
    /// Redirect URLs the application may use (a single `regexp=(...)` entry is allowed).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        rename = "callbackURLs"
    )]
    pub callback_urls: Vec<String>,
    /// Origins allowed to call the token endpoint from a browser (CORS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub allowed_origins: Vec<String>,
    /// A public client (no client secret; use PKCE).
    #[serde(default)]
    pub public_client: bool,
}

/// An OAuth 2.0 grant type the server supports.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum GrantType {
    /// Authorization code (browser sign-in).
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// Implicit (legacy browser flow).
    #[serde(rename = "implicit")]
    Implicit,
    /// Resource owner password.
    #[serde(rename = "password")]
    Password,
    /// Client credentials (machine to machine).
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// Refresh token.
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// Switching into a sub-organization.
    #[serde(rename = "organization_switch")]
    OrganizationSwitch,
    /// SAML 2.0 bearer assertion.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:saml2-bearer")]
    Saml2Bearer,
    /// JWT bearer assertion.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:jwt-bearer")]
    JwtBearer,
    /// Device authorization.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    /// Token exchange.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

impl GrantType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::Implicit => "implicit",
            GrantType::Password => "password",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::RefreshToken => "refresh_token",
            GrantType::OrganizationSwitch => "organization_switch",
            GrantType::Saml2Bearer => "urn:ietf:params:oauth:grant-type:saml2-bearer",
            GrantType::JwtBearer => "urn:ietf:params:oauth:grant-type:jwt-bearer",
            GrantType::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            GrantType::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }
}

/// A login flow: ordered steps of alternatives.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct LoginFlow {
    /// The steps, in order. The user completes every step that is not skipped for them (see
    /// skipFor); within a step they pick one option.
    #[x_kube(validation = Rule::new("size(self) >= 1").message("loginFlow needs at least one step"))]
    // A skip is decided by the identity providers of earlier steps: the first step has none.
    #[x_kube(validation = Rule::new("size(self) == 0 || !has(self[0].skipFor)").message("the first login step cannot have skipFor: a step is skipped according to the identity providers of earlier steps"))]
    #[schemars(length(max = 10))]
    pub steps: Vec<LoginStep>,
}

/// One step of a login flow.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginStep {
    /// The alternatives of this step; the user picks one.
    #[x_kube(validation = Rule::new("size(self) >= 1").message("every login step needs at least one option"))]
    #[schemars(length(max = 20))]
    pub options: Vec<LoginOption>,
    /// Skip this step for users who signed in through the given identity providers (or through any
    /// federated identity provider) in an earlier step. The operator generates the application's
    /// conditional-authentication script from it (onLoginRequest, executeStep with onSuccess
    /// callbacks testing context.steps[n].idp), pushes it with the flow and keeps it in sync. A
    /// step skipped for an identity provider's users does not need them to have a local account, so
    /// JIT provisioning may stay off on it without an InterconnectionConflict. Writing a script needs
    /// the scope internal_application_script_update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_for: Option<SkipFor>,
}

/// Who skips a login step: users of the listed identity providers, or every federated user.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.identityProviders) != (has(self.federatedUsers) && self.federatedUsers)").message("skipFor sets exactly one of identityProviders or federatedUsers: true"))]
pub struct SkipFor {
    /// IdentityProviders (this namespace) whose users skip this step when they signed in through
    /// one of them in an earlier step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("size(self) >= 1").message("skipFor.identityProviders needs at least one identity provider"))]
    #[schemars(length(max = 20))]
    pub identity_providers: Vec<LocalObjectRef>,
    /// Skip this step for every user who signed in through any identity provider of an earlier
    /// step (federated users); local users still complete it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub federated_users: bool,
}

/// One option of a login step: a local authenticator or an identity provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.authenticator) != has(self.identityProviderRef)").message("a login option sets exactly one of authenticator or identityProviderRef"))]
pub struct LoginOption {
    /// A local authenticator by its server name, e.g. BasicAuthenticator, totp, FIDOAuthenticator,
    /// email-otp-authenticator, backup-code-authenticator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9_.-]+$"))]
    pub authenticator: Option<String>,
    /// An IdentityProvider in this namespace; the flow uses its displayName and authenticator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_provider_ref: Option<LocalObjectRef>,
}

/// What the operator observed about the application.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled and InterconnectionConflict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Conditions,
    /// The application's id on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The number of steps of the login flow on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<i32>,
    /// Conflicts between the login flow and the JIT settings of its identity providers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<AppConflictEntry>,
    /// The steps that are skipped for some users (skipFor), e.g. "2 (partner-okta)"; empty when
    /// every step runs for everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditional_steps: Option<String>,
    /// The application's conditional-auth script on the server: Generated (by the operator from
    /// skipFor), Proved (written by someone else, and every simulated login through it with JIT off
    /// ends without a local-account failure), NotVerified (written by someone else and not proved:
    /// the conflict rule ignores it), or absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

/// One conflict seen from the application: an IdP without JIT before a step that needs a local account.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppConflictEntry {
    /// The IdentityProvider object (this namespace).
    pub identity_provider: String,
    /// The step (1-based) that offers it.
    pub identity_provider_step: i32,
    /// The authenticator that needs a local account.
    pub authenticator: String,
    /// The step (1-based) of that authenticator.
    pub authenticator_step: i32,
    /// The identity provider has JIT on but skipped on lookup failure: its users that no local
    /// account matches get none (false: JIT is off).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lookup_skip: bool,
}
