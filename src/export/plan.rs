//! The pure half of `export`: a tenant snapshot in, the custom resources that describe it out, with
//! the Secrets to create and a report of what the resources cannot express.
//!
//! Specs are built as JSON and parsed with the operator's own types, so a field added to a kind later
//! (with a default) does not break this code, and an invalid spec is caught here, not by the apiserver.
//! Every exported object is then checked with the controller's own diff functions
//! (`controller::translate`): whatever the operator would still write on adoption is reported.

use std::collections::{BTreeSet, HashMap};

use serde_json::{json, Value};

use crate::api::{Application, ApplicationSpec, IdentityProvider, IdentityProviderSpec};
use crate::api::{DeletionPolicy, IdentityBackend, IdentityBackendSpec};
use crate::backend::asgardeo::Target;
use crate::backend::inventory::{AppDetail, IdpDetail, TenantSnapshot};
use crate::backend::{self, Confidential, FederatedAuthenticator, FlowKind, Secret};
use crate::controller::translate;

/// The key every exported client-secret Secret uses.
pub const CLIENT_SECRET_KEY: &str = "client-secret";
/// The key export uses in the Secret it asks for an Apple IdP: the private key's PEM text.
pub const APPLE_PRIVATE_KEY_KEY: &str = "private-key";

/// The longest Kubernetes object name export produces (a DNS-1123 label, so it also fits everywhere a
/// label is needed).
const MAX_NAME: usize = 63;

/// What to export into.
#[derive(Clone, Debug)]
pub struct Options {
    /// Namespace of every object.
    pub namespace: String,
    /// Name of the IdentityBackend.
    pub backend_name: String,
    /// Where the tenant is.
    pub target: Target,
    /// Name of the Secret with the M2M credentials.
    pub credentials_secret: String,
    /// Deletion policy of every exported object.
    pub deletion_policy: DeletionPolicy,
}

/// A Secret the user must create before applying (export never knows or writes its value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretToCreate {
    /// Secret name.
    pub name: String,
    /// Keys it must hold.
    pub keys: Vec<String>,
    /// What goes in it.
    pub purpose: String,
    /// The value of the consent label (`identity-operator.io/use`) it must carry.
    pub usage: &'static str,
}

/// How serious a report entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoteKind {
    /// The object was not exported at all.
    Skipped,
    /// Exported, but a part of it stays on the server unmanaged.
    NotManaged,
    /// Exported, and the operator will change this on the server when it adopts the object.
    WillChange,
}

impl NoteKind {
    /// A short label for the report.
    pub fn label(self) -> &'static str {
        match self {
            NoteKind::Skipped => "not exported",
            NoteKind::NotManaged => "left unmanaged",
            NoteKind::WillChange => "will change on adoption",
        }
    }
}

/// One report entry: something the resources cannot express, or a change adoption would make.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Note {
    /// What kind of problem.
    pub kind: NoteKind,
    /// `IdentityProvider` or `Application`.
    pub object_kind: &'static str,
    /// The server name.
    pub server_name: String,
    /// What it was exported as, when it was.
    pub exported_as: Option<String>,
    /// What and why.
    pub message: String,
}

/// The exported objects, in server list order.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The IdentityBackend.
    pub backend: IdentityBackend,
    /// (server name, server id, object).
    pub idps: Vec<(String, String, IdentityProvider)>,
    /// (server name, server id, object).
    pub applications: Vec<(String, String, Application)>,
    /// Secrets to create first.
    pub secrets: Vec<SecretToCreate>,
    /// The report, sorted.
    pub notes: Vec<Note>,
}

/// Kubernetes names for server names: DNS-1123 labels, unique per kind, stable for a given tenant
/// (assigned in server list order). `audit` uses the same names, so its messages match `lint`'s on
/// the exported files.
#[derive(Clone, Debug, Default)]
pub struct Names {
    idps: HashMap<String, String>,
    apps: HashMap<String, String>,
}

impl Names {
    /// Names every IdP and application of the snapshot, exportable or not.
    pub fn new(snapshot: &TenantSnapshot) -> Self {
        Self {
            idps: assign(snapshot.idps.iter().map(|d| d.idp.name.as_str()), "idp"),
            apps: assign(
                snapshot.applications.iter().map(|d| d.app.name.as_str()),
                "app",
            ),
        }
    }

    /// The Kubernetes name of an IdP, by server name.
    pub fn idp(&self, server_name: &str) -> String {
        self.idps
            .get(server_name)
            .cloned()
            .unwrap_or_else(|| dns_label(server_name, "idp"))
    }

    /// The Kubernetes name of an application, by server name.
    pub fn app(&self, server_name: &str) -> String {
        self.apps
            .get(server_name)
            .cloned()
            .unwrap_or_else(|| dns_label(server_name, "app"))
    }
}

/// A DNS-1123 label made from any text: lower case, runs of other characters become one dash, no
/// dash at either end, at most 63 characters; `fallback` when nothing is left.
pub fn dns_label(text: &str, fallback: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.trim_matches('-').chars().take(MAX_NAME).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        fallback.to_string()
    } else {
        out
    }
}

fn assign<'a>(
    server_names: impl Iterator<Item = &'a str>,
    fallback: &str,
) -> HashMap<String, String> {
    let mut taken = BTreeSet::new();
    let mut out = HashMap::new();
    for name in server_names {
        if out.contains_key(name) {
            continue;
        }
        let base = dns_label(name, fallback);
        let mut candidate = base.clone();
        let mut n = 2;
        while taken.contains(&candidate) {
            let suffix = format!("-{n}");
            let keep = MAX_NAME - suffix.len();
            candidate = format!(
                "{}{suffix}",
                base.chars()
                    .take(keep)
                    .collect::<String>()
                    .trim_end_matches('-')
            );
            n += 1;
        }
        taken.insert(candidate.clone());
        out.insert(name.to_string(), candidate);
    }
    out
}

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

fn policy(p: DeletionPolicy) -> &'static str {
    match p {
        DeletionPolicy::Delete => "Delete",
        DeletionPolicy::Orphan => "Orphan",
    }
}

struct Ctx<'a> {
    opts: &'a Options,
    names: &'a Names,
    notes: Vec<Note>,
}

impl Ctx<'_> {
    fn note(
        &mut self,
        kind: NoteKind,
        object_kind: &'static str,
        server_name: &str,
        exported_as: Option<&str>,
        message: impl Into<String>,
    ) {
        self.notes.push(Note {
            kind,
            object_kind,
            server_name: server_name.to_string(),
            exported_as: exported_as.map(str::to_string),
            message: message.into(),
        });
    }

    /// Whether a server name can be a `displayName` (the CRDs allow 120 characters); a name that
    /// cannot is noted as skipped, since renaming it on export would rename it on the server.
    /// The same holds for the characters the CRDs' CEL rules refuse (controls, line separators,
    /// surrounding whitespace): the exported object would not apply.
    fn display_name_fits(&mut self, object_kind: &'static str, server_name: &str) -> bool {
        let problem = if server_name.chars().count() > DISPLAY_NAME_MAX {
            Some(format!(
                "its name is longer than the {DISPLAY_NAME_MAX} characters displayName allows"
            ))
        } else {
            crate::api::common::display_name_problem(server_name)
                .map(|p| format!("its name cannot be a displayName: {p}"))
        };
        let Some(message) = problem else {
            return true;
        };
        self.note(NoteKind::Skipped, object_kind, server_name, None, message);
        false
    }
}

/// The longest `displayName` the CRDs accept (`#[schemars(length(max = 120))]` on both kinds).
const DISPLAY_NAME_MAX: usize = 120;

/// Builds the plan. Pure: same snapshot and options, same output.
pub fn plan(snapshot: &TenantSnapshot, opts: &Options) -> Plan {
    let names = Names::new(snapshot);
    let mut ctx = Ctx {
        opts,
        names: &names,
        notes: Vec::new(),
    };
    let backend = backend_object(opts);
    let mut secrets = vec![SecretToCreate {
        name: opts.credentials_secret.clone(),
        keys: vec!["client-id".into(), "client-secret".into()],
        purpose: "the M2M application the operator logs in with (client_credentials); client-id is the one given to export".into(),
        usage: crate::controller::USE_BACKEND_CREDENTIALS,
    }];

    // IdP server name -> (Kubernetes name, authenticator name its flows use) for exported IdPs.
    let mut exported_idps: HashMap<String, (String, String)> = HashMap::new();
    let mut idps = Vec::new();
    for d in &snapshot.idps {
        if let Some((obj, secret)) = idp_object(&mut ctx, d) {
            let kind = obj
                .spec
                .provider_type()
                .map(|t| t.authenticator_name().to_string());
            exported_idps.insert(
                d.idp.name.clone(),
                (
                    obj.metadata.name.clone().unwrap_or_default(),
                    kind.unwrap_or_default(),
                ),
            );
            secrets.extend(secret);
            idps.push((d.idp.name.clone(), d.idp.id.clone(), obj));
        }
    }
    let mut applications = Vec::new();
    for d in &snapshot.applications {
        if let Some(obj) = app_object(&mut ctx, d, &exported_idps) {
            applications.push((d.app.name.clone(), d.app.id.clone(), obj));
        }
    }
    let mut notes = ctx.notes;
    notes.sort();
    Plan {
        backend,
        idps,
        applications,
        secrets,
        notes,
    }
}

fn backend_object(opts: &Options) -> IdentityBackend {
    let target = match &opts.target {
        Target::Asgardeo { organization } => json!({"asgardeo": {"organization": organization}}),
        Target::Wso2IdentityServer { url, tenant } => {
            json!({"wso2IdentityServer": {"url": url, "tenant": tenant}})
        }
    };
    let mut spec = target;
    spec["credentialsSecretRef"] = json!({"name": opts.credentials_secret});
    let spec: IdentityBackendSpec =
        serde_json::from_value(spec).expect("a backend spec built from known fields parses");
    let mut obj = IdentityBackend::new(&opts.backend_name, spec);
    obj.metadata.namespace = Some(opts.namespace.clone());
    obj
}

fn idp_object(
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

fn app_object(
    ctx: &mut Ctx<'_>,
    d: &AppDetail,
    idps: &HashMap<String, (String, String)>,
) -> Option<Application> {
    const KIND: &str = "Application";
    let server = &d.app.name;
    let name = ctx.names.app(server);
    if !ctx.display_name_fits(KIND, server) {
        return None;
    }
    let mut spec = json!({
        "backendRef": {"name": ctx.opts.backend_name},
        "displayName": server,
        "deletionPolicy": policy(ctx.opts.deletion_policy),
        "adopt": true,
    });
    // An operator's owner marker is the server's record of who manages the object, not the
    // description the user wrote.
    let desc = d
        .app
        .description
        .as_deref()
        .map(crate::controller::managed::strip_markers);
    if let Some(desc) = desc.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        spec["description"] = desc.into();
    }
    if let Some(o) = &d.oidc {
        let oidc = json!({
            "grantTypes": o.grant_types,
            "callbackURLs": o.callback_urls,
            "allowedOrigins": o.allowed_origins,
            "publicClient": o.public_client,
        });
        let redirects = o
            .grant_types
            .iter()
            .any(|g| g == "authorization_code" || g == "implicit");
        match serde_json::from_value::<crate::api::application::OidcSettings>(oidc.clone()) {
            Ok(_) if redirects && o.callback_urls.is_empty() => ctx.note(NoteKind::NotManaged, KIND, server, Some(&name), "its OIDC settings have a browser grant without callback URLs, which the resource rejects; they stay on the server unmanaged"),
            Ok(_) if o.grant_types.is_empty() || o.grant_types.len() > 10 || o.allowed_origins.len() > 50 => ctx.note(NoteKind::NotManaged, KIND, server, Some(&name), "its OIDC settings exceed what the resource allows; they stay on the server unmanaged"),
            Ok(_) => spec["oidc"] = oidc,
            Err(e) => ctx.note(NoteKind::NotManaged, KIND, server, Some(&name), format!("its OIDC settings are not expressible ({e}); they stay on the server unmanaged")),
        }
    }
    let flow = &d.app.login_flow;
    if flow.kind == FlowKind::UserDefined {
        // A script the operator generated is the steps' skipFor, written back as such; any other
        // script stays on the server as it is.
        let skips = generated_skips(flow);
        match flow_block(flow, idps) {
            Ok(mut steps) => {
                if let Some(skips) = &skips {
                    add_skip_for(&mut steps, skips, idps);
                }
                spec["loginFlow"] = json!({"steps": steps})
            }
            Err(why) => ctx.note(NoteKind::NotManaged, KIND, server, Some(&name), format!("its login flow is not expressible ({why}); the flow stays on the server unmanaged, and lint cannot check it (audit does)")),
        }
        if flow.script.is_some() && skips.is_none() {
            ctx.note(NoteKind::NotManaged, KIND, server, Some(&name), "it has a hand-written conditional-auth script; the operator keeps it on the server as it is, it is not in Git, and the conflict check does not analyse it");
        }
        if flow.subject_step_id != 1 || flow.attribute_step_id != 1 {
            ctx.note(NoteKind::NotManaged, KIND, server, Some(&name), format!("its subject step ({}) and attribute step ({}) are not expressible; a later flow change from Git resets them to step 1", flow.subject_step_id, flow.attribute_step_id));
        }
    }
    let spec: ApplicationSpec = match serde_json::from_value(spec) {
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
    // The adoption check, with the controller's own diff functions.
    let by_k8s: HashMap<&str, (&str, &str)> = idps
        .iter()
        .map(|(s, (k, a))| (k.as_str(), (s.as_str(), a.as_str())))
        .collect();
    let resolve = |r: &str| by_k8s.get(r).map(|(s, a)| (s.to_string(), a.to_string()));
    if let Ok(Some(desired)) = translate::desired_flow(&spec, resolve) {
        if translate::flow_differs(&desired, flow) {
            ctx.note(
                NoteKind::WillChange,
                KIND,
                server,
                Some(&name),
                "the operator will rewrite its login flow",
            );
        }
    }
    if let (Some(desired), Some(current)) = (translate::desired_oidc(&spec), d.oidc.as_ref()) {
        if translate::oidc_differs(&desired, current) {
            ctx.note(
                NoteKind::WillChange,
                KIND,
                server,
                Some(&name),
                "the operator will rewrite its OIDC settings",
            );
        }
    }
    let mut obj = Application::new(&name, spec);
    obj.metadata.namespace = Some(ctx.opts.namespace.clone());
    Some(obj)
}

/// The per-step skips of a flow whose script the operator generated; `None` for no script or any
/// other script.
fn generated_skips(flow: &backend::LoginFlow) -> Option<Vec<crate::flow::Skip>> {
    flow.script.as_ref()?;
    let rule = translate::flow_for_rule(
        &flow.steps,
        flow.script.as_deref(),
        &crate::flow::LocalAccountAuthenticators::default(),
    );
    (rule.script == crate::flow::ScriptOrigin::Generated).then_some(rule.skips)
}

/// Writes each step's skip as its `skipFor`, IdPs by their exported Kubernetes names.
fn add_skip_for(
    steps: &mut [Value],
    skips: &[crate::flow::Skip],
    idps: &HashMap<String, (String, String)>,
) {
    use crate::flow::Skip;
    for (step, skip) in steps.iter_mut().zip(skips) {
        match skip {
            Skip::Never => {}
            Skip::FederatedUsers => step["skipFor"] = json!({"federatedUsers": true}),
            Skip::For(names) => {
                let refs: Vec<Value> = names
                    .iter()
                    .filter_map(|n| idps.get(n).map(|(k8s, _)| json!({"name": k8s})))
                    .collect();
                if !refs.is_empty() {
                    step["skipFor"] = json!({"identityProviders": refs});
                }
            }
        }
    }
}

/// The `loginFlow.steps` of a user-defined flow, or why it cannot be expressed.
fn flow_block(
    flow: &backend::LoginFlow,
    idps: &HashMap<String, (String, String)>,
) -> Result<Vec<Value>, String> {
    if flow.steps.is_empty() || flow.steps.len() > 10 {
        return Err(format!(
            "{} steps (the resource allows 1 to 10)",
            flow.steps.len()
        ));
    }
    let mut steps = Vec::new();
    for (i, step) in flow.steps.iter().enumerate() {
        if step.options.is_empty() || step.options.len() > 20 {
            return Err(format!(
                "step {} has {} options (1 to 20 allowed)",
                i + 1,
                step.options.len()
            ));
        }
        let mut options = Vec::new();
        for o in &step.options {
            if o.is_local() {
                let ok = !o.authenticator.is_empty()
                    && o.authenticator.len() <= 128
                    && o.authenticator
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
                if !ok {
                    return Err(format!(
                        "step {} uses local authenticator {:?}",
                        i + 1,
                        o.authenticator
                    ));
                }
                options.push(json!({"authenticator": o.authenticator}));
            } else {
                match idps.get(&o.idp) {
                    Some((k8s, auth)) if *auth == o.authenticator => {
                        options.push(json!({"identityProviderRef": {"name": k8s}}))
                    }
                    Some((_, auth)) => {
                        return Err(format!(
                            "step {} uses identity provider {:?} through authenticator {}, but the resource can only use its {auth}",
                            i + 1, o.idp, o.authenticator
                        ))
                    }
                    None => {
                        return Err(format!(
                            "step {} uses identity provider {:?} ({}), which was not exported",
                            i + 1, o.idp, o.authenticator
                        ))
                    }
                }
            }
        }
        steps.push(json!({"options": options}));
    }
    Ok(steps)
}
