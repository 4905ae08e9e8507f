//! `GET /identity-providers/meta/federated-authenticators/{id}`: the properties each federated
//! authenticator declares, with `isConfidential`.
//!
//! identity-api-server `ServerIdpManagementService.getMetaFederatedAuthenticator` (c2446d9) decodes
//! the id (base64url of the name; a bad id is a client error, 400), looks the name up among the
//! server's federated authenticators and maps each `Property` with `propertyToExternalMeta`
//! (`isConfidential` = the authenticator's own `setConfidential`). An id of an authenticator the
//! server does not have is not an error there: the service returns null and
//! `IdentityProvidersApiServiceImpl` answers `Response.ok().entity(null)`, a 200 with no body.
//!
//! The keys and their secrecy come from the authenticators' `getConfigurationProperties`: only the
//! client secret is confidential in the OIDC (wso2-extensions/identity-outbound-auth-oidc
//! `OpenIDConnectAuthenticator`, 9a6d18e, ~L1627-1646), Google, GitHub and Facebook connectors;
//! the Apple one also keeps its private key and the generated secret's expiry confidential; the
//! SAML one has none among the keys the operator writes.

use super::reply::{EmuError, Reply};
use identity_client::wire::{self, MetaFederatedAuthenticator, MetaProperty};

/// (authenticator name, console name, [(key, confidential)]).
type Declared = (&'static str, &'static str, &'static [(&'static str, bool)]);

const AUTHENTICATORS: &[Declared] = &[
    (
        "OpenIDConnectAuthenticator",
        "OAuth2/OpenID Connect",
        &[
            ("ClientId", false),
            ("ClientSecret", true),
            ("OAuth2AuthzEPUrl", false),
            ("OAuth2TokenEPUrl", false),
            ("callbackUrl", false),
            ("UserInfoUrl", false),
            ("OIDCLogoutEPUrl", false),
            ("IsUserIdInClaims", false),
            ("Scopes", false),
            ("commonAuthQueryParams", false),
            ("IsBasicAuthEnabled", false),
            ("IsPKCEEnabled", false),
        ],
    ),
    (
        "GoogleOIDCAuthenticator",
        "Google",
        &[
            ("ClientId", false),
            ("ClientSecret", true),
            ("callbackUrl", false),
            ("AdditionalQueryParameters", false),
            ("IsGoogleOneTapEnabled", false),
        ],
    ),
    (
        "GithubAuthenticator",
        "GitHub",
        &[
            ("ClientId", false),
            ("ClientSecret", true),
            ("callbackUrl", false),
            ("scope", false),
        ],
    ),
    (
        "FacebookAuthenticator",
        "Facebook",
        &[
            ("ClientId", false),
            ("ClientSecret", true),
            ("Scope", false),
            ("UserInfoFields", false),
            // `callBackUrl`, not `callbackUrl`: IdentityApplicationConstants.Authenticator.
            // Facebook.CALLBACK_URL, used by FacebookAuthenticator.getConfigurationProperties
            // (wso2-extensions/identity-outbound-auth-facebook 4c23f11, ~L925).
            ("callBackUrl", false),
        ],
    ),
    (
        "AppleOIDCAuthenticator",
        "Apple",
        // AppleAuthenticator.getConfigurationProperties (wso2-extensions/
        // identity-outbound-auth-apple 9275ea9), in its display order.
        &[
            ("ClientId", false),
            ("ClientSecret", true),
            ("SecretValidityPeriod", false),
            ("TeamId", false),
            ("KeyId", false),
            ("PrivateKey", true),
            ("callbackUrl", false),
            ("Scopes", false),
            ("AdditionalQueryParameters", false),
            ("RegenerateClientSecret", false),
            ("SecretExpiryEpochTime", true),
        ],
    ),
    (
        "SAMLSSOAuthenticator",
        "SAML SSO",
        &[
            ("IdPEntityId", false),
            ("SPEntityId", false),
            ("SSOUrl", false),
            ("NameIDType", false),
            ("ISAuthnReqSigned", false),
            ("IsLogoutEnabled", false),
            ("LogoutReqUrl", false),
        ],
    ),
];

/// The metadata of one authenticator, as `getMetaFederatedAuthenticator` answers it.
pub fn get(id: &str) -> Result<Reply, EmuError> {
    let name = wire::authenticator_name(id)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            EmuError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "IDP-60025",
                "Invalid input.",
                format!(
                    "One of the given inputs is invalid. Invalid federated authenticator id: {id}"
                ),
            )
        })?;
    let Some((name, display, props)) = AUTHENTICATORS.iter().find(|(n, _, _)| *n == name) else {
        return Ok(Reply::Empty);
    };
    Reply::json(&MetaFederatedAuthenticator {
        authenticator_id: id.to_string(),
        name: (*name).to_string(),
        display_name: Some((*display).to_string()),
        defined_by: Some(wire::DefinedBy::System),
        properties: props
            .iter()
            .map(|(key, confidential)| MetaProperty {
                key: (*key).to_string(),
                display_name: Some((*key).to_string()),
                kind: Some("STRING".into()),
                is_mandatory: false,
                is_confidential: *confidential,
                default_value: Some(String::new()),
                sub_properties: Vec::new(),
                extra: Default::default(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_client::Confidential;

    /// The client's explicit fallback table and what the emulated server declares agree, so a
    /// server without the metadata endpoint is compared the same way as one with it.
    #[test]
    fn the_fallback_table_matches_the_declared_metadata() {
        for (name, _, props) in AUTHENTICATORS {
            let id = wire::authenticator_id(name);
            let fallback = Confidential::fallback(&id);
            for (key, confidential) in *props {
                assert_eq!(fallback.contains(key), *confidential, "{name}.{key}");
            }
        }
    }

    #[test]
    fn unknown_authenticators_are_a_200_without_a_body_and_bad_ids_a_400() {
        let unknown = wire::authenticator_id("NoSuchAuthenticator");
        assert!(matches!(get(&unknown), Ok(Reply::Empty)));
        assert!(get("***").is_err());
    }
}
