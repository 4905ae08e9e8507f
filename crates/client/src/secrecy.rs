//! Which properties of a federated authenticator are confidential.
//!
//! The server says so itself: `GET /identity-providers/meta/federated-authenticators/{id}` lists an
//! authenticator's properties with `isConfidential` (identity-api-server `ServerIdpManagementService`
//! `propertyToExternalMeta`, which copies `Property.isConfidential()` as the authenticator declares it
//! in `getConfigurationProperties()`). That answer, cached per client, is what comparison, drift and
//! export go by: a confidential value is never compared (servers may mask it) and never exported.
//!
//! When a server does not answer the metadata call (an older server, a missing scope, a custom
//! authenticator it does not list), the explicit table [`FALLBACK`] is used: the confidential keys of
//! each authenticator the operator writes, as their sources declare them. Guessing from a key's
//! spelling is not an option: `OAuth2TokenEPUrl` contains "token" and is a URL the user manages.
//!
//! `Property`'s `Debug` stays broad on purpose (it redacts anything that looks secret in logs); that
//! redaction is for printing only and decides nothing.

use std::collections::BTreeSet;

use super::wire;

/// The confidential keys of each known authenticator (by authenticator name), from the sources:
/// - `OpenIDConnectAuthenticator`: only `ClientSecret` is `setConfidential(true)` in
///   wso2-extensions/identity-outbound-auth-oidc `OpenIDConnectAuthenticator.getConfigurationProperties`
///   (9a6d18e, 2026-03-13, ~L1627-1646); `OAuth2AuthzEPUrl`, `OAuth2TokenEPUrl`, `callbackUrl`,
///   `UserInfoUrl`, `OIDCLogoutEPUrl`, `Scopes` are not.
/// - `GoogleOIDCAuthenticator`, `GithubAuthenticator`, `FacebookAuthenticator`: `ClientSecret`
///   (their `getConfigurationProperties`, same pattern: client secret `setConfidential(true)`).
/// - `AppleOIDCAuthenticator`: `ClientSecret`, `PrivateKey` and `SecretExpiryEpochTime`
///   (wso2-extensions/identity-outbound-auth-apple 9275ea9,
///   `AppleAuthenticator.getConfigurationProperties`).
/// - `SAMLSSOAuthenticator`: none of the keys the operator writes (`IdPEntityId`, `SSOUrl`,
///   `SPEntityId`, `NameIDType`, `ISAuthnReqSigned`) is a secret.
pub const FALLBACK: &[(&str, &[&str])] = &[
    ("OpenIDConnectAuthenticator", &["ClientSecret"]),
    ("GoogleOIDCAuthenticator", &["ClientSecret"]),
    ("GithubAuthenticator", &["ClientSecret"]),
    ("FacebookAuthenticator", &["ClientSecret"]),
    (
        "AppleOIDCAuthenticator",
        &["ClientSecret", "PrivateKey", "SecretExpiryEpochTime"],
    ),
    ("SAMLSSOAuthenticator", &[]),
];

/// The keys whose values an authenticator treats as secrets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Confidential {
    keys: BTreeSet<String>,
    /// Where the answer came from, for messages: the server's metadata or the fallback table.
    pub from_server: bool,
}

impl Confidential {
    /// From the server's metadata of the authenticator (sub-properties included).
    pub fn from_meta(meta: &wire::MetaFederatedAuthenticator) -> Self {
        fn walk(props: &[wire::MetaProperty], out: &mut BTreeSet<String>) {
            for p in props {
                if p.is_confidential {
                    out.insert(p.key.clone());
                }
                walk(&p.sub_properties, out);
            }
        }
        let mut keys = BTreeSet::new();
        walk(&meta.properties, &mut keys);
        Self {
            keys,
            from_server: true,
        }
    }

    /// The explicit table's answer for an authenticator id. An authenticator the table does not know
    /// gets `ClientSecret` only: the one secret every OAuth-style connector has. Its other values are
    /// compared, which at worst reports a masked value as a difference (a write, never a leak).
    pub fn fallback(authenticator_id: &str) -> Self {
        let name = wire::authenticator_name(authenticator_id).unwrap_or_default();
        let keys = FALLBACK
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, keys)| keys.iter().map(|k| (*k).to_string()).collect())
            .unwrap_or_else(|| BTreeSet::from(["ClientSecret".to_string()]));
        Self {
            keys,
            from_server: false,
        }
    }

    /// Explicit keys (tests, fakes).
    pub fn of(keys: &[&str]) -> Self {
        Self {
            keys: keys.iter().map(|k| (*k).to_string()).collect(),
            from_server: false,
        }
    }

    /// Whether the property with this key is confidential.
    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(props: &[(&str, bool)]) -> wire::MetaFederatedAuthenticator {
        wire::MetaFederatedAuthenticator {
            properties: props
                .iter()
                .map(|(k, c)| wire::MetaProperty {
                    key: (*k).to_string(),
                    is_confidential: *c,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn urls_with_token_in_their_key_are_not_secrets() {
        let oidc = Confidential::fallback(&wire::authenticator_id("OpenIDConnectAuthenticator"));
        for key in [
            "OAuth2TokenEPUrl",
            "OAuth2AuthzEPUrl",
            "UserInfoUrl",
            "OIDCLogoutEPUrl",
            "callbackUrl",
            "Scopes",
            "ClientId",
        ] {
            assert!(!oidc.contains(key), "{key} is not confidential");
        }
        assert!(oidc.contains("ClientSecret"));
    }

    #[test]
    fn the_server_metadata_decides_when_present() {
        let c = Confidential::from_meta(&meta(&[
            ("ClientId", false),
            ("ClientSecret", true),
            ("OAuth2TokenEPUrl", false),
            ("PrivateKey", true),
        ]));
        assert!(c.from_server);
        assert!(c.contains("ClientSecret") && c.contains("PrivateKey"));
        assert!(!c.contains("OAuth2TokenEPUrl") && !c.contains("ClientId"));
    }

    #[test]
    fn fallback_table_per_authenticator() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "GoogleOIDCAuthenticator",
                &["ClientSecret"],
                &["ClientId", "callbackUrl", "AdditionalQueryParameters"],
            ),
            (
                "GithubAuthenticator",
                &["ClientSecret"],
                &["ClientId", "scope"],
            ),
            (
                "SAMLSSOAuthenticator",
                &[],
                &[
                    "IdPEntityId",
                    "SSOUrl",
                    "SPEntityId",
                    "NameIDType",
                    "ISAuthnReqSigned",
                ],
            ),
            ("SomeCustomAuthenticator", &["ClientSecret"], &["Anything"]),
        ];
        for (name, secret, plain) in cases {
            let c = Confidential::fallback(&wire::authenticator_id(name));
            assert!(!c.from_server);
            for k in *secret {
                assert!(c.contains(k), "{name}: {k} confidential");
            }
            for k in *plain {
                assert!(!c.contains(k), "{name}: {k} not confidential");
            }
        }
    }
}
