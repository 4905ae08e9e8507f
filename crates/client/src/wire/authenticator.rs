//! The federated authenticators of an IdP on the wire: their properties, the server's metadata of
//! them, and the list / single forms.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Extra;

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
    /// confidential for comparison, drift and export comes from the server ([`crate::secrecy`]),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_debug_hides_secrets() {
        let p = Property::new("ClientSecret", "s3cr3t");
        assert!(!format!("{p:?}").contains("s3cr3t"));
        let p = Property::new("ClientId", "abc");
        assert!(format!("{p:?}").contains("abc"));
    }
}
