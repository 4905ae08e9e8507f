//! The wire model of the Asgardeo / WSO2 Identity Server management REST API (`/api/server/v1`).
//!
//! Both the HTTP client ([`crate::asgardeo`]) and the emulator (crate `identity-emulator`) speak these types,
//! so the two cannot drift apart. Field names follow the official OpenAPI files (`idp.yaml`,
//! `applications.yaml`, camelCase as on the wire); only the fields the operator reads or writes are
//! typed. Objects the client reads and writes back whole (JIT, OIDC, IdP, application) keep unknown
//! fields in a flattened `extra` map, so a read-merge-write never drops what a newer server added.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secret::Secret;

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

mod application;
mod authenticator;
mod idp;

pub use application::*;
pub use authenticator::*;
pub use idp::*;

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
}
