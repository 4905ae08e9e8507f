//! Pure translation between the custom resources and the backend's types, and the "is it up to
//! date?" comparisons. No I/O here: every function is unit tested.

use crate::api::identity_provider::{
    AttributeSyncMethod, GroupSyncMethod, JitScheme, ProviderType,
};
use crate::api::{ApplicationSpec, IdentityProviderSpec};
use crate::backend::{
    self, wire, Confidential, FederatedAuthenticator, FlowOption, FlowStep, FlowUpdate,
    IdpCertificate, IdpPatch, Jit, JitChange, OidcChange, OidcSettings, Property, Secret,
};
use crate::flow::{self, script, ScriptOrigin, Skip};
use std::collections::BTreeSet;

mod mappings;
pub use mappings::{mappings_change, mappings_diff, unmapped_lookup_claims};

/// The JIT change the spec asks for: only declared fields are `Some`.
pub fn jit_change(spec: &IdentityProviderSpec) -> Option<JitChange> {
    let jit = spec.jit.as_ref()?;
    Some(JitChange {
        enabled: Some(jit.enabled),
        scheme: jit.scheme.map(scheme_to_wire),
        userstore: jit.userstore.clone(),
        associate_local_user: jit.associate_local_user,
        attribute_sync_method: jit.attribute_sync_method.map(sync_to_wire),
        account_lookup: jit.account_lookup.as_ref().map(|list| {
            list.iter()
                .map(|m| wire::AccountLookupAttributeMapping {
                    local_attribute: Some(m.local_attribute.clone()),
                    federated_attribute: Some(m.federated_attribute.clone()),
                })
                .collect()
        }),
        skip_jit_for_lookup_failure: jit.skip_for_lookup_failure,
        idp_group_sync_method: jit.group_sync_method.map(|g| match g {
            GroupSyncMethod::OverrideAll => backend::IdpGroupSyncMethod::OverrideAll,
            GroupSyncMethod::MergeWithExisting => backend::IdpGroupSyncMethod::MergeWithExisting,
        }),
    })
}

/// The JIT state the conflict rule sees for the spec: a missing block is [`flow::Jit::Missing`];
/// lookup fields the spec leaves out are the server's (`server`, when known), since the operator
/// keeps the server's value for them.
pub fn declared_jit(spec: &IdentityProviderSpec, server: Option<&Jit>) -> flow::Jit {
    let Some(jit) = spec.jit.as_ref() else {
        return flow::Jit::Missing;
    };
    let lookup = match &jit.account_lookup {
        Some(list) => !list.is_empty(),
        None => server.is_some_and(|s| !s.account_lookup.is_empty()),
    };
    let skip = match jit.skip_for_lookup_failure {
        Some(v) => v,
        None => server.is_some_and(|s| s.skip_jit_for_lookup_failure == Some(true)),
    };
    flow::Jit::from_settings(jit.enabled, lookup, skip)
}

fn scheme_to_wire(s: JitScheme) -> backend::JitScheme {
    match s {
        JitScheme::ProvisionSilently => backend::JitScheme::ProvisionSilently,
        JitScheme::PromptUsernamePasswordConsent => {
            backend::JitScheme::PromptUsernamePasswordConsent
        }
        JitScheme::PromptPasswordConsent => backend::JitScheme::PromptPasswordConsent,
        JitScheme::PromptConsent => backend::JitScheme::PromptConsent,
    }
}

fn sync_to_wire(s: AttributeSyncMethod) -> backend::AttributeSyncMethod {
    match s {
        AttributeSyncMethod::OverrideAll => backend::AttributeSyncMethod::OverrideAll,
        AttributeSyncMethod::PreserveLocal => backend::AttributeSyncMethod::PreserveLocal,
        AttributeSyncMethod::None => backend::AttributeSyncMethod::None,
    }
}

/// The fields of `change` that differ from what the server has; `None` when nothing differs.
pub fn jit_diff(change: &JitChange, server: &Jit) -> Option<JitChange> {
    let differs = |d: bool| d;
    let out = JitChange {
        enabled: change.enabled.filter(|v| differs(*v != server.enabled)),
        scheme: change.scheme.filter(|v| *v != server.scheme),
        userstore: change.userstore.clone().filter(|v| *v != server.userstore),
        associate_local_user: change
            .associate_local_user
            .filter(|v| *v != server.associate_local_user),
        attribute_sync_method: change
            .attribute_sync_method
            .filter(|v| *v != server.attribute_sync_method),
        account_lookup: change
            .account_lookup
            .clone()
            .filter(|v| *v != server.account_lookup),
        // A server that leaves a field out (`None`) has the model default for it: declaring the
        // default there is no change, so it causes no write on every resync.
        skip_jit_for_lookup_failure: change
            .skip_jit_for_lookup_failure
            .filter(|v| server.skip_jit_for_lookup_failure.unwrap_or(false) != *v),
        idp_group_sync_method: change.idp_group_sync_method.filter(|v| {
            server
                .idp_group_sync_method
                .unwrap_or(backend::IdpGroupSyncMethod::MergeWithExisting)
                != *v
        }),
    };
    (out != JitChange::default()).then_some(out)
}

/// The federated authenticator the spec describes, with the client secret (when the type has one;
/// for Apple `client_secret` is the private key).
pub fn desired_authenticator(
    spec: &IdentityProviderSpec,
    client_secret: Option<&Secret>,
) -> Option<FederatedAuthenticator> {
    let kind = spec.provider_type()?;
    let mut props: Vec<Property> = Vec::new();
    let secret = || client_secret.map(|s| Property::new("ClientSecret", s.expose()));
    match kind {
        ProviderType::Google | ProviderType::Github => {
            let p = spec.google.as_ref().or(spec.github.as_ref())?;
            props.push(Property::new("ClientId", &p.client_id));
            props.extend(secret());
            if let Some(cb) = &p.callback_url {
                props.push(Property::new("callbackUrl", cb));
            }
            if kind == ProviderType::Google {
                let scopes = if p.scopes.is_empty() {
                    "openid email profile".to_string()
                } else {
                    p.scopes.join(" ")
                };
                props.push(Property::new(
                    "AdditionalQueryParameters",
                    format!("scope={scopes}"),
                ));
            } else if !p.scopes.is_empty() {
                props.push(Property::new("scope", p.scopes.join(" ")));
            }
        }
        // FacebookAuthenticator.getConfigurationProperties (wso2-extensions/
        // identity-outbound-auth-facebook, 4c23f11): ClientId, ClientSecret (confidential), Scope
        // ("a comma separated list of permissions", default email), UserInfoFields, and the
        // callback as `callBackUrl` (IdentityApplicationConstants.Authenticator.Facebook.CALLBACK_URL).
        ProviderType::Facebook => {
            let p = spec.facebook.as_ref()?;
            // In the authenticator's display order, as the console writes them.
            props.push(Property::new("ClientId", &p.client_id));
            props.extend(secret());
            if !p.scopes.is_empty() {
                props.push(Property::new("Scope", p.scopes.join(",")));
            }
            if !p.user_info_fields.is_empty() {
                props.push(Property::new(
                    "UserInfoFields",
                    p.user_info_fields.join(","),
                ));
            }
            if let Some(cb) = &p.callback_url {
                props.push(Property::new("callBackUrl", cb));
            }
        }
        // AppleAuthenticator.getConfigurationProperties (wso2-extensions/
        // identity-outbound-auth-apple 9275ea9, with AppleAuthenticatorConstants): ClientId,
        // ClientSecret (confidential), SecretValidityPeriod, TeamId, KeyId, PrivateKey
        // (confidential), callbackUrl, Scopes (space separated, default "name email"),
        // AdditionalQueryParameters, RegenerateClientSecret, SecretExpiryEpochTime (confidential).
        // ClientSecret, its expiry and RegenerateClientSecret are the server's own: it signs a
        // client secret from the key at a login when it has none, it expired or regeneration was
        // asked for, and stores the three itself (AppleAuthenticator.evaluateClientSecret). So they
        // are never sent and never compared. An authenticator PUT that leaves them out drops them
        // (carbon-identity-framework 8d6f7cf IdPManagementDAO.updateFederatedAuthenticatorConfig
        // deletes the properties an update does not carry), and the next login signs a fresh secret
        // with what was just written, which is what a new key, team or client id needs anyway.
        ProviderType::Apple => {
            let p = spec.apple.as_ref()?;
            props.push(Property::new("ClientId", &p.client_id));
            if let Some(v) = p.secret_validity_period_seconds {
                props.push(Property::new("SecretValidityPeriod", v.to_string()));
            }
            props.push(Property::new("TeamId", &p.team_id));
            props.push(Property::new("KeyId", &p.key_id));
            props.extend(client_secret.map(|s| Property::new("PrivateKey", s.expose())));
            if let Some(cb) = &p.callback_url {
                props.push(Property::new("callbackUrl", cb));
            }
            let scopes = if p.scopes.is_empty() {
                "name email".to_string()
            } else {
                p.scopes.join(" ")
            };
            props.push(Property::new("Scopes", scopes));
            if let Some(q) = &p.additional_query_parameters {
                props.push(Property::new("AdditionalQueryParameters", q));
            }
        }
        ProviderType::Oidc => {
            let p = spec.oidc.as_ref()?;
            props.push(Property::new("ClientId", &p.client_id));
            props.extend(secret());
            props.push(Property::new("OAuth2AuthzEPUrl", &p.authorization_endpoint));
            props.push(Property::new("OAuth2TokenEPUrl", &p.token_endpoint));
            if let Some(v) = &p.userinfo_endpoint {
                props.push(Property::new("UserInfoUrl", v));
            }
            if let Some(v) = &p.logout_endpoint {
                props.push(Property::new("OIDCLogoutEPUrl", v));
            }
            if let Some(v) = &p.callback_url {
                props.push(Property::new("callbackUrl", v));
            }
            let scopes = if p.scopes.is_empty() {
                "openid".to_string()
            } else {
                p.scopes.join(" ")
            };
            props.push(Property::new("Scopes", scopes));
        }
        ProviderType::Saml => {
            let p = spec.saml.as_ref()?;
            props.push(Property::new("IdPEntityId", &p.idp_entity_id));
            props.push(Property::new("SSOUrl", &p.sso_url));
            props.push(Property::new("SPEntityId", &p.sp_entity_id));
            if let Some(v) = &p.name_id_format {
                props.push(Property::new("NameIDType", v));
            }
            props.push(Property::new(
                "ISAuthnReqSigned",
                p.sign_authn_requests.to_string(),
            ));
        }
    }
    Some(FederatedAuthenticator {
        authenticator_id: wire::authenticator_id(kind.authenticator_name()),
        name: Some(kind.authenticator_name().to_string()),
        is_enabled: true,
        is_default: true,
        properties: props,
    })
}

/// Whether the server's authenticator differs from the desired one in what the spec manages.
/// Confidential values (as the server declares them: [`Confidential`]) are not compared, since
/// servers may mask them: a Secret change is detected by the caller through the Secret's
/// resourceVersion instead.
pub fn authenticator_differs(
    desired: &FederatedAuthenticator,
    server: &FederatedAuthenticator,
    confidential: &Confidential,
) -> bool {
    desired.is_enabled != server.is_enabled
        || !differing_properties(desired, server, confidential).is_empty()
}

/// The keys of the desired authenticator's non-confidential properties whose server value differs.
pub fn differing_properties<'a>(
    desired: &'a FederatedAuthenticator,
    server: &FederatedAuthenticator,
    confidential: &Confidential,
) -> Vec<&'a str> {
    desired
        .properties
        .iter()
        .filter(|p| !confidential.contains(&p.key))
        .filter(|p| {
            server
                .properties
                .iter()
                .find(|s| s.key == p.key)
                .map(|s| s.value.as_deref())
                != Some(p.value.as_deref())
        })
        .map(|p| p.key.as_str())
        .collect()
}

/// The JWKS URI the spec declares (generic OIDC only: Google's keys are built into its
/// authenticator, and the server keeps one JWKS URI per IdP, in its `certificate`).
pub fn desired_jwks_uri(spec: &IdentityProviderSpec) -> Option<&str> {
    spec.oidc.as_ref()?.jwks_uri.as_deref()
}

/// The SAML metadata URI the spec declares (SAML only).
pub fn desired_saml_metadata_uri(spec: &IdentityProviderSpec) -> Option<&str> {
    spec.saml.as_ref()?.metadata_uri.as_deref()
}

/// The PEM certificates the spec declares (generic OIDC or SAML), trimmed as they are sent and
/// as they come back from the server.
pub fn desired_certificates(spec: &IdentityProviderSpec) -> Vec<String> {
    let pems = match (&spec.oidc, &spec.saml) {
        (Some(o), _) => &o.certificates,
        (_, Some(s)) => &s.certificates,
        _ => return Vec::new(),
    };
    pems.iter().map(|p| p.trim().to_string()).collect()
}

/// The certificate patches that make the server's `certificate` the declared one; empty when it
/// is already, or when the spec declares none (the server's is then not managed). The server
/// keeps one of JWKS URI, metadata URI and certificates, and its `ADD` of one drops the others
/// while its `REPLACE` of a missing URI is a 404 (ServerIdpManagementService.processPatchRequest),
/// hence ADD when the kind changes. Certificates are kept up to the first difference and
/// rewritten from there: removed from the last down, then added at the next index, which is the
/// only one the server's ADD accepts (and never a duplicate, which it refuses with 409).
pub fn certificate_patches(spec: &IdentityProviderSpec, server: &IdpCertificate) -> Vec<IdpPatch> {
    if let Some(want) = desired_jwks_uri(spec) {
        return match server.jwks_uri.as_deref() {
            Some(have) if have == want => vec![],
            Some(_) => vec![IdpPatch::JwksUri(want.to_string())],
            None => vec![IdpPatch::AddJwksUri(want.to_string())],
        };
    }
    if let Some(want) = desired_saml_metadata_uri(spec) {
        return match server.saml_metadata_uri.as_deref() {
            Some(have) if have == want => vec![],
            Some(_) => vec![IdpPatch::SamlMetadataUri(want.to_string())],
            None => vec![IdpPatch::AddSamlMetadataUri(want.to_string())],
        };
    }
    let want = desired_certificates(spec);
    if want.is_empty() {
        return vec![];
    }
    let have: Vec<String> = server
        .certificates
        .iter()
        .map(|c| c.trim().to_string())
        .collect();
    let uri_on_server = server.jwks_uri.is_some() || server.saml_metadata_uri.is_some();
    if have == want && !uri_on_server {
        return vec![];
    }
    let keep = have.iter().zip(&want).take_while(|(h, w)| h == w).count();
    let mut ops: Vec<IdpPatch> = (keep..have.len())
        .rev()
        .map(IdpPatch::RemoveCertificate)
        .collect();
    ops.extend(
        want.iter()
            .enumerate()
            .skip(keep)
            .map(|(i, pem)| IdpPatch::AddCertificate(i, pem.clone())),
    );
    ops
}

/// The login flow with IdP references resolved to (server name, authenticator name), and the
/// conditional-auth script generated from the steps' skipFor (only when some step declares one: a
/// script write needs an extra scope, so flows without skips never send one).
pub fn desired_flow(
    spec: &ApplicationSpec,
    resolve: impl Fn(&str) -> Option<(String, String)>,
) -> Result<Option<FlowUpdate>, String> {
    let Some(flow) = &spec.login_flow else {
        return Ok(None);
    };
    let mut steps = Vec::with_capacity(flow.steps.len());
    for step in &flow.steps {
        let mut options = Vec::with_capacity(step.options.len());
        for o in &step.options {
            match (&o.authenticator, &o.identity_provider_ref) {
                (Some(a), _) => options.push(FlowOption::local(a)),
                (None, Some(r)) => {
                    let (name, authenticator) = resolve(&r.name).ok_or_else(|| r.name.clone())?;
                    options.push(FlowOption::federated(name, authenticator));
                }
                (None, None) => {}
            }
        }
        steps.push(FlowStep { options });
    }
    // An IdP named in skipFor but offered by no step cannot have signed anyone in: one that does not
    // resolve is left out rather than failing the whole flow.
    let skips: Vec<Skip> = flow
        .steps
        .iter()
        .map(|s| match &s.skip_for {
            None => Skip::Never,
            Some(k) if k.federated_users => Skip::FederatedUsers,
            Some(k) => {
                let names: BTreeSet<String> = k
                    .identity_providers
                    .iter()
                    .filter_map(|r| resolve(&r.name).map(|(name, _)| name))
                    .collect();
                if names.is_empty() {
                    Skip::Never
                } else {
                    Skip::For(names)
                }
            }
        })
        .collect();
    let script = skips
        .iter()
        .any(|s| *s != Skip::Never)
        .then(|| script::generate(&script_flow(&steps, skips)));
    Ok(Some(FlowUpdate {
        steps,
        script,
        ..FlowUpdate::default()
    }))
}

/// The flow as the script generator sees it: every option of an identity provider other than
/// LOCAL can be what `context.steps[n].idp` names, whatever its authenticator.
fn script_flow(steps: &[FlowStep], skips: Vec<Skip>) -> flow::Flow {
    flow::Flow {
        steps: steps
            .iter()
            .map(|s| {
                s.options
                    .iter()
                    .map(|o| {
                        if o.is_local() {
                            flow::FlowOption::Authenticator(o.authenticator.clone())
                        } else {
                            flow::FlowOption::IdentityProvider(o.idp.clone())
                        }
                    })
                    .collect()
            })
            .collect(),
        skips,
        script: ScriptOrigin::Generated,
    }
}

/// Whether `script` is the operator's own for these steps.
fn is_generated(script: &str, steps: &[FlowStep]) -> bool {
    script::recognize(script, &script_flow(steps, vec![]).steps).is_some()
}

/// What a simulation would have to prove about `script` on `steps`: none when there is no script
/// or it is the operator's own (the rule reads its skips instead). The controller proves these
/// ahead, off the async workers (`controller::proofs`), so that [`flow_for_rule`] finds the answer.
pub fn proof_question(
    steps: &[FlowStep],
    script: Option<&str>,
    needs_local: &flow::LocalAccountAuthenticators,
) -> Option<flow::proof::Question> {
    ScriptedFlow::read(steps, script, needs_local).question
}

/// A flow's steps with its script read once (`flow_with_script`: the operator's own skips, else
/// "not verified"), and the question a proof would have to answer about it. The controller asks
/// [`ScriptedFlow::question`] to prove ahead, then takes [`ScriptedFlow::rule`] from the same read.
pub struct ScriptedFlow<'a> {
    steps: &'a [FlowStep],
    known: flow::Flow,
    /// What a proof must answer; `None`: no script, or the operator's own.
    pub question: Option<flow::proof::Question>,
}

impl<'a> ScriptedFlow<'a> {
    /// Reads the script of `steps` once. Pure.
    pub fn read(
        steps: &'a [FlowStep],
        script: Option<&str>,
        needs_local: &flow::LocalAccountAuthenticators,
    ) -> Self {
        let known = flow::script::flow_with_script(script_flow(steps, vec![]).steps, script);
        let question = proof_question_for(&known, steps, script, needs_local);
        Self {
            steps,
            known,
            question,
        }
    }

    /// The flow as the conflict rule sees it ([`flow_for_rule`]). A script the operator did not
    /// write counts as proved when a proof of its question says so (an IdP sign-in is then as good
    /// as skipFor); anything else stays not verified.
    pub fn rule(self, needs_local: &flow::LocalAccountAuthenticators) -> flow::Flow {
        let mut known = self.known;
        if let Some(q) = &self.question {
            if flow::proof::Answers::global().get_or_prove(q) {
                known.script = ScriptOrigin::Proved;
            }
        }
        flow::Flow {
            steps: self
                .steps
                .iter()
                .map(|s| {
                    s.options
                        .iter()
                        .map(|o| {
                            if o.is_local() || needs_local.contains(&o.authenticator) {
                                flow::FlowOption::Authenticator(o.authenticator.clone())
                            } else {
                                flow::FlowOption::IdentityProvider(o.idp.clone())
                            }
                        })
                        .collect()
                })
                .collect(),
            skips: known.skips,
            script: known.script,
        }
    }
}

fn proof_question_for(
    known: &flow::Flow,
    steps: &[FlowStep],
    script: Option<&str>,
    needs_local: &flow::LocalAccountAuthenticators,
) -> Option<flow::proof::Question> {
    if known.script != ScriptOrigin::NotVerified {
        return None;
    }
    let options: Vec<Vec<(String, String)>> = steps
        .iter()
        .map(|s| {
            s.options
                .iter()
                .map(|o| (o.idp.clone(), o.authenticator.clone()))
                .collect()
        })
        .collect();
    Some(flow::proof::Question::new(script?, options, needs_local))
}

/// The application's script after a plan: what the rule and the status see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptPlan {
    /// The script the server will have once the flow is written (the pushed one, or the one left
    /// in place).
    pub effective: Option<String>,
    /// Whether the operator generated it.
    pub origin: ScriptOrigin,
    /// Set when a generated script was held back because the server has a script the operator did
    /// not write and adopt is off.
    pub held_back: bool,
}

impl ScriptPlan {
    /// The status value: Generated, NotVerified, or none.
    pub fn status(&self) -> Option<String> {
        match self.origin {
            ScriptOrigin::None => None,
            ScriptOrigin::Generated => Some("Generated".into()),
            ScriptOrigin::NotVerified => Some("NotVerified".into()),
            ScriptOrigin::Proved => Some("Proved".into()),
        }
    }
}

/// Decides the script to send with the desired flow, knowing the server's: the operator writes a
/// script only over no script or its own (recognized against the server's steps, so a flow change
/// still counts as its own); a script somebody else wrote is replaced only with `adopt`. When the
/// spec drops every skipFor, its own earlier script is replaced by the plain one (every step for
/// everyone), because a blank script does not clear a script on the server (asgardeo-api.md §2).
pub fn plan_script(
    desired: Option<FlowUpdate>,
    server: &backend::LoginFlow,
    adopt: bool,
    needs_local: &flow::LocalAccountAuthenticators,
) -> (Option<FlowUpdate>, ScriptPlan) {
    let on_server = server.script.clone().filter(|s| !s.trim().is_empty());
    // The header marks the operator's own scripts: an edited one is drift to correct.
    let ours = on_server
        .as_deref()
        .is_none_or(|s| is_generated(s, &server.steps) || script::is_marked(s));
    let Some(mut f) = desired else {
        let origin = ScriptedFlow::read(&server.steps, on_server.as_deref(), needs_local)
            .rule(needs_local)
            .script;
        let plan = ScriptPlan {
            effective: on_server,
            origin,
            held_back: false,
        };
        return (None, plan);
    };
    let mut held_back = false;
    match (&f.script, &on_server) {
        (Some(_), _) if ours || adopt => {}
        (Some(_), Some(_)) => {
            f.script = None;
            held_back = true;
        }
        (None, Some(_)) if ours => {
            f.script = Some(script::generate(&script_flow(&f.steps, vec![])));
        }
        (None, _) => {}
        (Some(_), None) => {}
    }
    let effective = f.script.clone().or(on_server);
    let origin = ScriptedFlow::read(&f.steps, effective.as_deref(), needs_local)
        .rule(needs_local)
        .script;
    (
        Some(f),
        ScriptPlan {
            effective,
            origin,
            held_back,
        },
    )
}

/// Which steps are conditional, for the status and the printer column: "2 (partner-okta)".
pub fn conditional_steps(spec: &ApplicationSpec) -> Option<String> {
    let flow = spec.login_flow.as_ref()?;
    let parts: Vec<String> = flow
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let k = s.skip_for.as_ref()?;
            let who = if k.federated_users {
                "federated users".to_string()
            } else {
                k.identity_providers
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            Some(format!("{} (skipped for {who})", i + 1))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The `skipFor` entries that can skip nobody: an IdentityProvider that no earlier step offers
/// cannot have signed the user in before the step (issue 24: such an entry was dropped from the
/// script without a word). One sentence per entry, for the Ready message.
pub fn unused_skips(spec: &ApplicationSpec) -> Vec<String> {
    let Some(flow) = &spec.login_flow else {
        return vec![];
    };
    let mut offered: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    for (i, step) in flow.steps.iter().enumerate() {
        for r in step.skip_for.iter().flat_map(|k| &k.identity_providers) {
            if !offered.contains(r.name.as_str()) {
                out.push(format!(
                    "skipFor of step {} names IdentityProvider {}, which no earlier step offers: it skips nobody",
                    i + 1,
                    r.name
                ));
            }
        }
        offered.extend(
            step.options
                .iter()
                .filter_map(|o| o.identity_provider_ref.as_ref())
                .map(|r| r.name.as_str()),
        );
    }
    out
}

/// Whether the server's flow differs from the desired one. Options inside a step are compared as sets:
/// the server returns federated options first, then local ones, whatever order they were sent in.
pub fn flow_differs(desired: &FlowUpdate, server: &backend::LoginFlow) -> bool {
    if server.kind != backend::FlowKind::UserDefined || desired.steps.len() != server.steps.len() {
        return true;
    }
    // A script is compared only when one is sent (`None` leaves the server's alone).
    if let Some(script) = &desired.script {
        if server.script.as_deref().map(str::trim_end) != Some(script.trim_end()) {
            return true;
        }
    }
    desired.steps.iter().zip(&server.steps).any(|(d, s)| {
        let mut a: Vec<_> = d.options.iter().collect();
        let mut b: Vec<_> = s.options.iter().collect();
        a.sort_by(|x, y| (&x.idp, &x.authenticator).cmp(&(&y.idp, &y.authenticator)));
        b.sort_by(|x, y| (&x.idp, &x.authenticator).cmp(&(&y.idp, &y.authenticator)));
        a.dedup();
        b.dedup();
        a != b
    })
}

/// The OIDC settings the spec asks for.
pub fn desired_oidc(spec: &ApplicationSpec) -> Option<OidcChange> {
    let o = spec.oidc.as_ref()?;
    Some(OidcChange {
        grant_types: o
            .grant_types
            .iter()
            .map(|g| g.as_str().to_string())
            .collect(),
        callback_urls: o.callback_urls.clone(),
        allowed_origins: o.allowed_origins.clone(),
        public_client: Some(o.public_client),
    })
}

/// Whether the server's OIDC settings differ from the desired ones (lists compared as sets).
pub fn oidc_differs(desired: &OidcChange, server: &OidcSettings) -> bool {
    fn set(v: &[String]) -> std::collections::BTreeSet<&str> {
        v.iter().map(String::as_str).collect()
    }
    set(&desired.grant_types) != set(&server.grant_types)
        || set(&desired.callback_urls) != set(&server.callback_urls)
        || set(&desired.allowed_origins) != set(&server.allowed_origins)
        || desired
            .public_client
            .is_some_and(|p| p != server.public_client)
}

/// The login flow as the conflict rule sees it, keyed by IdP server name, with the skips of the
/// application's script when the operator generated it (any other script is marked not verified).
/// Connector-style second factors (Duo, iProov) sit on the server as federated options; they count
/// as authenticators when the set of local-account authenticators names them.
pub fn flow_for_rule(
    steps: &[FlowStep],
    script: Option<&str>,
    needs_local: &crate::flow::LocalAccountAuthenticators,
) -> crate::flow::Flow {
    ScriptedFlow::read(steps, script, needs_local).rule(needs_local)
}

#[cfg(test)]
mod tests;
