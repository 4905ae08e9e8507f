//! Applications on the wire (`applications.yaml`): the login flow (authentication sequence), OIDC
//! configuration, and the create / patch / list forms.

use serde::{Deserialize, Serialize};

use super::{Extra, Link};
use crate::secret::Secret;

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

#[cfg(test)]
mod tests {
    use super::*;

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
