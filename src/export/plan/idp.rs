//! The IdentityProvider half of the plan: an IdP of the snapshot as a spec (provider block, JIT,
//! claim / role / group mappings, certificates), checked with the controller's own diff.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::api::{IdentityProvider, IdentityProviderSpec};
use crate::backend::inventory::IdpDetail;
use crate::backend::{self, Confidential, FederatedAuthenticator, Secret};
use crate::controller::translate;

use super::{policy, Ctx, NoteKind, SecretToCreate, APPLE_PRIVATE_KEY_KEY, CLIENT_SECRET_KEY};

fn prop<'a>(a: &'a FederatedAuthenticator, key: &str) -> Option<&'a str> {
    a.properties
        .iter()
        .find(|p| p.key == key)
        .and_then(|p| p.value.as_deref())
        .filter(|v| !v.is_empty())
}

/// A comma-separated property as a list (blank entries dropped).
fn comma_list(v: Option<&str>) -> Vec<String> {
    v.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn words(v: Option<&str>) -> Vec<String> {
    v.map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The IdP's PEM certificates as a spec list; `None` when it has none (or keeps a URI instead),
/// or when the CRD could not hold them (see [`certificates_expressible`]).
fn certificates(idp: &backend::Idp) -> Option<Value> {
    let c = &idp.certificate.certificates;
    (!c.is_empty() && certificates_expressible(c)).then(|| json!(c))
}

/// Whether the CRD's rules accept these certificates: at most 10, unique, each one PEM block of at
/// most 8192 characters (the server may hold more, or chains it did not split). Checked here so an
/// export never writes a file the apiserver refuses.
pub(crate) fn certificates_expressible(pems: &[String]) -> bool {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let one = |p: &str| {
        let body = p
            .trim_end()
            .strip_prefix(BEGIN)
            .and_then(|b| b.strip_suffix(END));
        p.len() <= 8192
            && body.is_some_and(|b| {
                !b.trim().is_empty()
                    && b.chars().all(|c| {
                        c.is_ascii_alphanumeric() || "+/=".contains(c) || c.is_whitespace()
                    })
            })
    };
    let unique: BTreeSet<&str> = pems.iter().map(String::as_str).collect();
    pems.len() <= 10 && unique.len() == pems.len() && pems.iter().all(|p| one(p))
}

fn is_http_url(v: &str) -> bool {
    v.starts_with("https://") || v.starts_with("http://")
}

/// The provider block of an IdP spec (`("google", {...})`), or why the type cannot be expressed.
fn provider_block(
    a: &FederatedAuthenticator,
    idp: &backend::Idp,
    secret_name: &str,
) -> Result<(&'static str, Value), String> {
    let name = a
        .name
        .clone()
        .or_else(|| backend::wire::authenticator_name(&a.authenticator_id));
    let name = name.unwrap_or_default();
    let secret_ref = json!({"name": secret_name, "key": CLIENT_SECRET_KEY});
    let need = |key: &str| {
        prop(a, key).map(str::to_string).ok_or_else(|| {
            format!("its {name} authenticator has no {key} property, which the resource requires")
        })
    };
    let mut block = serde_json::Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            block.insert(k.to_string(), v);
        }
    };
    let field = match name.as_str() {
        "GoogleOIDCAuthenticator" | "GithubAuthenticator" => {
            let google = name == "GoogleOIDCAuthenticator";
            put("clientID", Some(need("ClientId")?.into()));
            put("clientSecretRef", Some(secret_ref));
            put("callbackURL", prop(a, "callbackUrl").map(Into::into));
            let scopes = if google {
                // The operator writes the scopes as `scope=...` in AdditionalQueryParameters and
                // defaults to "openid email profile"; any other query parameter is not expressible
                // and shows up in the adoption check below.
                let q = prop(a, "AdditionalQueryParameters").unwrap_or_default();
                let s = words(q.strip_prefix("scope=").filter(|s| !s.contains('&')));
                if s == ["openid", "email", "profile"] {
                    vec![]
                } else {
                    s
                }
            } else {
                words(prop(a, "scope"))
            };
            if !scopes.is_empty() {
                put("scopes", Some(json!(scopes)));
            }
            if google {
                "google"
            } else {
                "github"
            }
        }
        "FacebookAuthenticator" => {
            put("clientID", Some(need("ClientId")?.into()));
            put("clientSecretRef", Some(secret_ref));
            put("callbackURL", prop(a, "callBackUrl").map(Into::into));
            let scopes = comma_list(prop(a, "Scope"));
            if !scopes.is_empty() {
                put("scopes", Some(json!(scopes)));
            }
            let fields = comma_list(prop(a, "UserInfoFields"));
            if !fields.is_empty() {
                put("userInfoFields", Some(json!(fields)));
            }
            "facebook"
        }
        // The client secret, its expiry and RegenerateClientSecret are the server's own (it
        // signs the secret from the private key at login, see translate::desired_authenticator):
        // not exported, and not compared on adoption.
        "AppleOIDCAuthenticator" => {
            put("clientID", Some(need("ClientId")?.into()));
            put("teamID", Some(need("TeamId")?.into()));
            put("keyID", Some(need("KeyId")?.into()));
            put(
                "privateKeySecretRef",
                Some(json!({"name": secret_name, "key": APPLE_PRIVATE_KEY_KEY})),
            );
            // A period the resource cannot hold (not a number, or outside what it accepts) is
            // left out: the operator then keeps the server's.
            let period = prop(a, "SecretValidityPeriod")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|v| (3601..=15_777_000).contains(v));
            put("secretValidityPeriodSeconds", period.map(Into::into));
            put("callbackURL", prop(a, "callbackUrl").map(Into::into));
            // The server splits Apple's scopes on spaces, commas and `+` (getScope).
            let scopes: Vec<String> = prop(a, "Scopes")
                .unwrap_or_default()
                .split([' ', ',', '+'])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if !scopes.is_empty() && scopes != ["name", "email"] {
                put("scopes", Some(json!(scopes)));
            }
            put(
                "additionalQueryParameters",
                prop(a, "AdditionalQueryParameters")
                    .filter(|q| !q.is_empty())
                    .map(Into::into),
            );
            "apple"
        }
        "OpenIDConnectAuthenticator" => {
            put("clientID", Some(need("ClientId")?.into()));
            put("clientSecretRef", Some(secret_ref));
            for (key, field) in [
                ("OAuth2AuthzEPUrl", "authorizationEndpoint"),
                ("OAuth2TokenEPUrl", "tokenEndpoint"),
            ] {
                let v = need(key)?;
                if !is_http_url(&v) {
                    return Err(format!("its {key} {v:?} is not an http(s) URL"));
                }
                put(field, Some(v.into()));
            }
            put("userinfoEndpoint", prop(a, "UserInfoUrl").map(Into::into));
            put("logoutEndpoint", prop(a, "OIDCLogoutEPUrl").map(Into::into));
            put("jwksURI", idp.certificate.jwks_uri.clone().map(Into::into));
            put("certificates", certificates(idp));
            put("callbackURL", prop(a, "callbackUrl").map(Into::into));
            let scopes = words(prop(a, "Scopes"));
            if !scopes.is_empty() && scopes != ["openid"] {
                put("scopes", Some(json!(scopes)));
            }
            "oidc"
        }
        "SAMLSSOAuthenticator" => {
            put("idpEntityID", Some(need("IdPEntityId")?.into()));
            let sso = need("SSOUrl")?;
            if !is_http_url(&sso) {
                return Err(format!("its SSOUrl {sso:?} is not an http(s) URL"));
            }
            put("ssoURL", Some(sso.into()));
            put("spEntityID", Some(need("SPEntityId")?.into()));
            put("nameIDFormat", prop(a, "NameIDType").map(Into::into));
            put(
                "signAuthnRequests",
                Some((prop(a, "ISAuthnReqSigned") == Some("true")).into()),
            );
            put("certificates", certificates(idp));
            put("metadataURI", idp.certificate.saml_metadata_uri.clone().map(Into::into));
            "saml"
        }
        other => {
            return Err(format!(
                "its authenticator {other:?} is not a type the IdentityProvider resource supports (google, github, facebook, apple, oidc, saml)"
            ))
        }
    };
    Ok((field, Value::Object(block)))
}

fn jit_block(j: &backend::Jit) -> Value {
    let scheme = match j.scheme {
        backend::JitScheme::ProvisionSilently => "ProvisionSilently",
        backend::JitScheme::PromptUsernamePasswordConsent => "PromptUsernamePasswordConsent",
        backend::JitScheme::PromptPasswordConsent => "PromptPasswordConsent",
        backend::JitScheme::PromptConsent => "PromptConsent",
    };
    let sync = match j.attribute_sync_method {
        backend::AttributeSyncMethod::OverrideAll => "OverrideAll",
        backend::AttributeSyncMethod::PreserveLocal => "PreserveLocal",
        backend::AttributeSyncMethod::None => "None",
    };
    let mut block = json!({
        "enabled": j.enabled,
        "scheme": scheme,
        "userstore": j.userstore,
        "associateLocalUser": j.associate_local_user,
        "attributeSyncMethod": sync,
    });
    // Mappings the CRD can hold: both attributes set (the server requires both anyway).
    let lookup: Vec<Value> = j
        .account_lookup
        .iter()
        .filter_map(|m| match (&m.local_attribute, &m.federated_attribute) {
            (Some(local), Some(federated)) => Some(json!({
                "localAttribute": local,
                "federatedAttribute": federated,
            })),
            _ => None,
        })
        .collect();
    let skip = j.skip_jit_for_lookup_failure;
    if !lookup.is_empty() {
        block["accountLookup"] = Value::Array(lookup.clone());
    }
    // The skip is written only where the CRD accepts it (true needs mappings); a skip without
    // mappings means nothing and is left to the server (undeclared fields keep its value).
    match skip {
        Some(true) if !lookup.is_empty() => block["skipForLookupFailure"] = json!(true),
        Some(false) => block["skipForLookupFailure"] = json!(false),
        _ => {}
    }
    if let Some(g) = j.idp_group_sync_method {
        block["groupSyncMethod"] = json!(match g {
            backend::IdpGroupSyncMethod::OverrideAll => "OverrideAll",
            backend::IdpGroupSyncMethod::MergeWithExisting => "MergeWithExisting",
        });
    }
    block
}

/// The claims, roles and groups blocks of an IdP, only those the server has something in (an
/// IdP with none of them exports as before). A claims block always carries `mappings`, `[]` for
/// the local claim dialect: what its other fields mean depends on it.
fn add_mappings(spec: &mut Value, m: &backend::IdpMappings) {
    let has_claims = !m.user_id_claim.is_empty()
        || !m.role_claim.is_empty()
        || !m.claim_mappings.is_empty()
        || !m.provisioning_claims.is_empty();
    if has_claims {
        let mut claims = json!({
            "mappings": m.claim_mappings.iter().map(|c| json!({"idpClaim": c.idp_claim, "localClaim": c.local_claim})).collect::<Vec<_>>(),
        });
        if !m.user_id_claim.is_empty() {
            claims["userIdClaim"] = m.user_id_claim.clone().into();
        }
        if !m.role_claim.is_empty() {
            claims["roleClaim"] = m.role_claim.clone().into();
        }
        if !m.provisioning_claims.is_empty() {
            claims["provisioningClaims"] = m
                .provisioning_claims
                .iter()
                .map(|p| json!({"claim": p.claim, "defaultValue": p.default_value}))
                .collect();
        }
        spec["claims"] = claims;
    }
    if !m.role_mappings.is_empty() {
        spec["roles"] = json!({
            "mappings": m.role_mappings.iter().map(|r| json!({"idpRole": r.idp_role, "localRole": r.local_role})).collect::<Vec<_>>(),
        });
    }
    if !m.groups.is_empty() {
        spec["groups"] = m.groups.iter().map(|g| json!({"name": g.name})).collect();
    }
}

pub(super) fn idp_object(
    ctx: &mut Ctx<'_>,
    d: &IdpDetail,
) -> Option<(IdentityProvider, Option<SecretToCreate>)> {
    const KIND: &str = "IdentityProvider";
    let server = &d.idp.name;
    let name = ctx.names.idp(server);
    if !ctx.display_name_fits(KIND, server) {
        return None;
    }
    let Some(auth) = d.default_authenticator() else {
        ctx.note(
            NoteKind::Skipped,
            KIND,
            server,
            None,
            "it has no federated authenticator to describe",
        );
        return None;
    };
    // Apple's Secret holds the private key the server signs client secrets with, not a secret.
    let apple = auth.authenticator_id == backend::wire::authenticator_id("AppleOIDCAuthenticator");
    let secret_name = if apple {
        format!("{name}-private-key")
    } else {
        format!("{name}-client-secret")
    };
    let (field, block) = match provider_block(auth, &d.idp, &secret_name) {
        Ok(b) => b,
        Err(why) => {
            ctx.note(NoteKind::Skipped, KIND, server, None, format!("{why}; it stays on the server unmanaged, and applications that use it are exported without loginFlow"));
            return None;
        }
    };
    let mut spec = json!({
        "backendRef": {"name": ctx.opts.backend_name},
        "displayName": server,
        "jit": jit_block(&d.jit),
        "conflictPolicy": "Block",
        "deletionPolicy": policy(ctx.opts.deletion_policy),
        "adopt": true,
    });
    spec[field] = block;
    add_mappings(&mut spec, &d.idp.mappings);
    // An operator's owner marker is the server's record of who manages the object, not the
    // description the user wrote.
    let desc = d
        .idp
        .description
        .as_deref()
        .map(crate::controller::managed::strip_markers);
    if let Some(desc) = desc.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        spec["description"] = desc.into();
    }
    let spec: IdentityProviderSpec = match serde_json::from_value(spec) {
        Ok(s) => s,
        Err(e) => {
            ctx.note(
                NoteKind::Skipped,
                KIND,
                server,
                None,
                format!("the resource cannot hold it: {e}"),
            );
            return None;
        }
    };
    for other in d
        .authenticators
        .iter()
        .filter(|a| a.authenticator_id != auth.authenticator_id)
    {
        let n = other
            .name
            .clone()
            .unwrap_or_else(|| other.authenticator_id.clone());
        ctx.note(
            NoteKind::NotManaged,
            KIND,
            server,
            Some(&name),
            format!(
                "its extra authenticator {n} is not expressible; the operator leaves it as it is"
            ),
        );
    }
    // The adoption check: what the operator would write, compared as the controller compares it.
    let placeholder = Secret::new("");
    if let Some(desired) = translate::desired_authenticator(&spec, Some(&placeholder)) {
        let confidential = d.confidential_of(&desired.authenticator_id);
        let server_auth = d
            .authenticators
            .iter()
            .find(|a| a.authenticator_id == desired.authenticator_id);
        match server_auth {
            Some(s) if translate::authenticator_differs(&desired, s, &confidential) => {
                let keys = differing_keys(&desired, s, &confidential);
                ctx.note(NoteKind::WillChange, KIND, server, Some(&name), format!("the operator will rewrite its authenticator ({keys}) to what the resource can express"));
            }
            Some(_) => {}
            None => ctx.note(
                NoteKind::WillChange,
                KIND,
                server,
                Some(&name),
                "the operator will add its authenticator",
            ),
        }
    }
    if !d.idp.certificate.certificates.is_empty()
        && !certificates_expressible(&d.idp.certificate.certificates)
    {
        ctx.note(
            NoteKind::NotManaged,
            KIND,
            server,
            Some(&name),
            "its certificates are not expressible (more than 10, duplicates, or not one PEM block each); the operator leaves them as they are",
        );
    }
    let cert = translate::certificate_patches(&spec, &d.idp.certificate);
    if !cert.is_empty() {
        ctx.note(
            NoteKind::WillChange,
            KIND,
            server,
            Some(&name),
            format!("the operator will change its certificate: {cert:?}"),
        );
    }
    if let Some(diff) = translate::jit_change(&spec).and_then(|c| translate::jit_diff(&c, &d.jit)) {
        ctx.note(
            NoteKind::WillChange,
            KIND,
            server,
            Some(&name),
            format!("the operator will change JIT provisioning: {diff:?}"),
        );
    }
    if let Some(diff) = translate::mappings_change(&spec)
        .and_then(|c| translate::mappings_diff(&c, &d.idp.mappings))
    {
        ctx.note(
            NoteKind::WillChange,
            KIND,
            server,
            Some(&name),
            format!("the operator will change its claim, role or group mappings: {diff:?}"),
        );
    }
    let secret = (field != "saml").then(|| {
        let (key, what) = if field == "apple" {
            (APPLE_PRIVATE_KEY_KEY, "the Sign in with Apple private key (the .p8 file's PEM text)")
        } else {
            (CLIENT_SECRET_KEY, "the client secret")
        };
        SecretToCreate {
            name: secret_name,
            keys: vec![key.into()],
            purpose: format!(
                "{what} of identity provider {server:?} as registered at the provider (the server never shows it back; the operator writes it when this Secret changes or when it rewrites the authenticator)"
            ),
            usage: crate::controller::USE_IDP_CLIENT_SECRET,
        }
    });
    let mut obj = IdentityProvider::new(&name, spec);
    obj.metadata.namespace = Some(ctx.opts.namespace.clone());
    Some((obj, secret))
}

fn differing_keys(
    desired: &FederatedAuthenticator,
    server: &FederatedAuthenticator,
    confidential: &Confidential,
) -> String {
    let mut keys = translate::differing_properties(desired, server, confidential);
    if desired.is_enabled != server.is_enabled {
        keys.push("enabled");
    }
    keys.join(", ")
}
