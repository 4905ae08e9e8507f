//! The application side of [`crate::IdentityServer`]: an application, its login flow and OIDC
//! settings, and the changes the controllers ask for.

use crate::{Secret, LOCAL_IDP};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicationSummary {
    /// Server resource id.
    pub id: String,
    /// Name.
    pub name: String,
    /// OAuth client id, when OIDC is configured.
    pub client_id: Option<String>,
}

/// Whether an application uses the tenant default flow or its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowKind {
    /// The tenant's default login flow.
    Default,
    /// The application's own steps.
    UserDefined,
}

/// One option of a login step: a local authenticator or a federated IdP.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FlowOption {
    /// [`LOCAL_IDP`] or the IdP's **server name**.
    pub idp: String,
    /// Authenticator name, e.g. `totp`, `GoogleOIDCAuthenticator`.
    pub authenticator: String,
}

impl FlowOption {
    /// A local authenticator (`BasicAuthenticator`, `totp`, ...).
    pub fn local(authenticator: impl Into<String>) -> Self {
        Self {
            idp: LOCAL_IDP.to_owned(),
            authenticator: authenticator.into(),
        }
    }

    /// A federated IdP, referenced by its server name, with one of its authenticators.
    pub fn federated(idp_name: impl Into<String>, authenticator: impl Into<String>) -> Self {
        Self {
            idp: idp_name.into(),
            authenticator: authenticator.into(),
        }
    }

    /// True for a local authenticator.
    pub fn is_local(&self) -> bool {
        self.idp == LOCAL_IDP
    }
}

/// One login step: alternatives the user picks from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowStep {
    /// The options.
    pub options: Vec<FlowOption>,
}

/// An application's login flow as read from the server. Step ids are implicit: step `i` has id `i + 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginFlow {
    /// DEFAULT or USER_DEFINED.
    pub kind: FlowKind,
    /// Steps in order.
    pub steps: Vec<FlowStep>,
    /// Conditional-auth script, when one is set (non-blank).
    pub script: Option<String>,
    /// Subject step id (1-based).
    pub subject_step_id: u32,
    /// Attribute step id (1-based).
    pub attribute_step_id: u32,
}

/// A login flow to write. Always sent as `USER_DEFINED` with step ids 1..n.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowUpdate {
    /// Steps in order.
    pub steps: Vec<FlowStep>,
    /// `Some` only when the operator manages the script: sending `script` at all needs an extra scope.
    pub script: Option<String>,
    /// Subject step id (1-based); `None` leaves it to the server (1).
    pub subject_step_id: Option<u32>,
    /// Attribute step id (1-based); `None` leaves it to the server (1).
    pub attribute_step_id: Option<u32>,
}

/// An application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    /// Server resource id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// OAuth client id, when OIDC is configured.
    pub client_id: Option<String>,
    /// Login flow.
    pub login_flow: LoginFlow,
}

/// OIDC inbound settings to write. Only these fields are managed; `update_oidc` keeps the others.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OidcChange {
    /// Grant types (at least one).
    pub grant_types: Vec<String>,
    /// Redirect URIs.
    pub callback_urls: Vec<String>,
    /// CORS origins.
    pub allowed_origins: Vec<String>,
    /// Public client; `None` leaves it alone.
    pub public_client: Option<bool>,
}

/// OIDC inbound settings as read, including the generated credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcSettings {
    /// OAuth client id.
    pub client_id: Option<String>,
    /// OAuth client secret (`None` for public clients or when the server hides it).
    pub client_secret: Option<Secret>,
    /// Grant types.
    pub grant_types: Vec<String>,
    /// Redirect URIs.
    pub callback_urls: Vec<String>,
    /// CORS origins.
    pub allowed_origins: Vec<String>,
    /// Public client.
    pub public_client: bool,
    /// ACTIVE or REVOKED.
    pub state: Option<String>,
}

/// An application to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewApplication {
    /// Name (unique).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Console template id (e.g. `m2m-application`), if any.
    pub template_id: Option<String>,
    /// OIDC settings; the server generates client id and secret.
    pub oidc: Option<OidcChange>,
    /// Login flow; `None` leaves the tenant default.
    pub login_flow: Option<FlowUpdate>,
}

/// A partial change of an application; `None` fields are left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplicationPatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New login flow.
    pub login_flow: Option<FlowUpdate>,
}
