//! Application Management API v1 handlers.
//!
//! Codes from `ApplicationManagementConstants.Error` (identity-api-server): `APP-60001` invalid request
//! → 400, `APP-60002`/`APP-60003` invalid offset/limit → 400, `APP-60004` invalid filter → 400,
//! `APP-60006` not found → 404, `APP-60007` already exists → 409, `APP-60008` operation forbidden
//! (script scope gate) → 403, `APP-60009` inbound key (client id) already exists → 409, `APP-60502`
//! inbound protocol not configured → 400 (the handler builds it as a bad request; whether a mapping
//! layer turns it into 404 is uncertain, so the client accepts both). Which HTTP status the real
//! server pairs with 60007/60009 was not confirmed; 409 follows the spec's advertised responses.

use std::collections::HashSet;

use super::ctx::Ctx;
use super::reply::{EmuError, Reply};
use super::state::{default_sequence, StoredApp, TenantState};
use identity_client::operation::{Operation, SCRIPT_SCOPE, SECRET_VIEW_SCOPE};
use identity_client::wire::{
    ApplicationListItem, ApplicationListResponse, ApplicationModel, ApplicationPatchModel,
    ApplicationResponseModel, AuthenticationSequence, InboundProtocolListItem,
    OpenIdConnectConfiguration, SequenceType, LOCAL_IDP,
};
use identity_client::Secret;

/// Page size when `limit` is absent (spec default 30).
pub const DEFAULT_APP_LIMIT: usize = 30;

/// Local authenticator names the emulator accepts in flows (asgardeo-api.md §2 table).
pub const LOCAL_AUTHENTICATORS: &[&str] = &[
    "BasicAuthenticator",
    "IdentifierExecutor",
    "totp",
    "email-otp-authenticator",
    "sms-otp-authenticator",
    "FIDOAuthenticator",
    "MagicLinkAuthenticator",
    "backup-code-authenticator",
    "SessionExecutor",
    "push-notification-authenticator",
    "x509CertificateAuthenticator",
    "JWTBasicAuthenticator",
    "PassiveSTSAuthenticator",
];

fn not_found(id: &str, tenant: &str) -> EmuError {
    EmuError::not_found(
        "APP-60006",
        "Application not found.",
        format!(
            "Application cannot be found for the provided id: {id} in the tenantDomain: {tenant}."
        ),
    )
}

fn invalid(description: impl Into<String>) -> EmuError {
    EmuError::bad_request("APP-60001", "Invalid request.", description)
}

fn duplicate(name: &str) -> EmuError {
    EmuError::conflict(
        "APP-60007",
        "Application already exists.",
        format!("Application with name: {name} already exists in the tenant."),
    )
}

fn forbidden_script() -> EmuError {
    EmuError::new(
        axum::http::StatusCode::FORBIDDEN,
        "APP-60008",
        "Operation is forbidden.",
        format!("Updating the authentication script requires the scope {SCRIPT_SCOPE}."),
    )
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, EmuError> {
    serde_json::from_slice(body).map_err(|e| invalid(format!("Invalid request body: {e}")))
}

/// Handles one application operation; `ids[0]` is the application id.
pub fn handle(
    op: Operation,
    ids: &[String],
    ctx: &Ctx<'_>,
    st: &mut TenantState,
) -> Result<Reply, EmuError> {
    let id = ids.first().map(String::as_str).unwrap_or_default();
    match op {
        Operation::ListApplications => list(ctx, st),
        Operation::CreateApplication => create(ctx, st),
        Operation::GetApplication => Reply::json(&response(
            ctx,
            st.app(id).ok_or_else(|| not_found(id, ctx.tenant))?,
        )),
        Operation::PatchApplication => patch(id, ctx, st),
        Operation::DeleteApplication => {
            st.app(id).ok_or_else(|| not_found(id, ctx.tenant))?;
            st.apps.retain(|a| a.id != id);
            Ok(Reply::NoContent)
        }
        Operation::GetOidc => {
            let app = st.app(id).ok_or_else(|| not_found(id, ctx.tenant))?;
            let oidc = app.oidc.as_ref().ok_or_else(not_configured)?;
            Reply::json(&visible_oidc(oidc, ctx))
        }
        Operation::UpdateOidc => {
            let req: OpenIdConnectConfiguration = parse(ctx.body)?;
            let others: HashSet<String> = st
                .apps
                .iter()
                .filter(|a| a.id != id)
                .filter_map(|a| a.oidc.as_ref()?.client_id.clone())
                .collect();
            let app = st.app_mut(id).ok_or_else(|| not_found(id, ctx.tenant))?;
            if let Some(stored) = &app.oidc {
                check_stored_credentials(stored, &req)?;
            }
            let cfg = new_oidc(req, app.oidc.as_ref(), &others)?;
            app.oidc = Some(cfg);
            // applications.yaml declares the PUT's 200 without a body (found by tests/contract.rs);
            // the client reads the result back with a GET.
            Ok(Reply::Empty)
        }
        _ => Err(EmuError::internal(
            "APP",
            "operation routed to the wrong handler",
        )),
    }
}

/// The OIDC config as the caller may see it: identity-api-server
/// `OAuthInboundFunctions.getOAuthConfiguration` calls `removeClientSecretIfUnauthorized`, which sets
/// `clientSecret` to null unless the token holds the client-secret view scope (product-is
/// `ApplicationClientSecretAuthorizationTestCase` also finds `clientSecretExpiresAt` and
/// `multipleClientSecretsConfigured` absent then).
fn visible_oidc(oidc: &OpenIdConnectConfiguration, ctx: &Ctx<'_>) -> OpenIdConnectConfiguration {
    let mut out = oidc.clone();
    if !ctx.scopes.contains(SECRET_VIEW_SCOPE) {
        out.client_secret = None;
        out.extra.remove("clientSecretExpiresAt");
        out.extra.remove("multipleClientSecretsConfigured");
    }
    out
}

/// The update of an existing OAuth app must carry the stored client id and secret:
/// identity-api-server `OAuthInboundFunctions.putOAuthInbound` (and identity-inbound-auth-oauth
/// `OAuthAdminServiceImpl`) compare them with `StringUtils.equals` and throw a bad request
/// "Invalid ClientID provided for update." / "Invalid ClientSecret provided for update.". The error
/// code of that bad request is the API's generic invalid-request code (assumed `APP-60001`).
fn check_stored_credentials(
    stored: &OpenIdConnectConfiguration,
    req: &OpenIdConnectConfiguration,
) -> Result<(), EmuError> {
    let blank = |s: Option<&str>| s.filter(|v| !v.is_empty()).map(str::to_owned);
    if blank(stored.client_id.as_deref()) != blank(req.client_id.as_deref()) {
        return Err(invalid("Invalid ClientID provided for update."));
    }
    if blank(stored.client_secret.as_ref().map(Secret::expose))
        != blank(req.client_secret.as_ref().map(Secret::expose))
    {
        return Err(invalid("Invalid ClientSecret provided for update."));
    }
    Ok(())
}

fn not_configured() -> EmuError {
    EmuError::bad_request(
        "APP-60502",
        "Inbound protocol not configured.",
        "Inbound protocol oidc is not configured for the application.",
    )
}

fn random_string(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Builds the stored OIDC config from a POST/PUT body: `grantTypes` needs at least one entry; the
/// client id is generated unless given (and must be unique); the secret is kept or generated, except
/// for public clients. PUT is a full replace of everything else.
fn new_oidc(
    mut req: OpenIdConnectConfiguration,
    existing: Option<&OpenIdConnectConfiguration>,
    taken_client_ids: &HashSet<String>,
) -> Result<OpenIdConnectConfiguration, EmuError> {
    if req.grant_types.is_empty() {
        return Err(invalid("grantTypes must contain at least one grant type."));
    }
    let client_id = req
        .client_id
        .take()
        .filter(|c| !c.is_empty())
        .or_else(|| existing.and_then(|e| e.client_id.clone()))
        .unwrap_or_else(|| random_string(28));
    if taken_client_ids.contains(&client_id) {
        return Err(EmuError::conflict(
            "APP-60009",
            "Inbound key already exists.",
            format!("An application with client id {client_id} already exists."),
        ));
    }
    let public = req.public_client.unwrap_or(false);
    let secret = if public {
        None
    } else {
        req.client_secret
            .take()
            .filter(|s| !s.is_empty())
            .or_else(|| existing.and_then(|e| e.client_secret.clone()))
            .or_else(|| Some(Secret::new(random_string(32))))
    };
    Ok(OpenIdConnectConfiguration {
        client_id: Some(client_id),
        client_secret: secret,
        public_client: Some(public),
        state: Some("ACTIVE".to_owned()),
        callback_urls: Some(req.callback_urls.take().unwrap_or_default()),
        allowed_origins: Some(req.allowed_origins.take().unwrap_or_default()),
        ..req
    })
}

/// Applies an `authenticationSequence` from a POST or PATCH the way `UpdateAuthenticationSequence`
/// does: type absent or DEFAULT resets to the default flow and ignores steps; USER_DEFINED needs steps
/// with ids 1..n (after sorting), non-empty options, known local authenticators and existing IdP names
/// with one of their authenticators. Subject/attribute step ids outside 1..n become 1. A blank script
/// does not clear an existing one; any non-null script, or reverting to DEFAULT while a script exists,
/// needs [`SCRIPT_SCOPE`].
pub fn apply_sequence(
    current: &AuthenticationSequence,
    req: AuthenticationSequence,
    scopes: &HashSet<String>,
    st: &TenantState,
) -> Result<AuthenticationSequence, EmuError> {
    let may_script = scopes.contains(SCRIPT_SCOPE);
    if req.script.is_some() && !may_script {
        return Err(forbidden_script());
    }
    let request_path_authenticators = req
        .request_path_authenticators
        .clone()
        .or(current.request_path_authenticators.clone());
    if req.kind != Some(SequenceType::UserDefined) {
        if current.script.is_some() && !may_script {
            return Err(forbidden_script());
        }
        return Ok(AuthenticationSequence {
            request_path_authenticators,
            ..default_sequence()
        });
    }
    let mut steps = req.steps.unwrap_or_default();
    if steps.is_empty() {
        return Err(invalid(
            "A user defined authentication sequence needs at least one step.",
        ));
    }
    steps.sort_by_key(|s| s.id);
    for (i, step) in steps.iter().enumerate() {
        if step.id != i as i64 + 1 {
            return Err(invalid(
                "Authentication step ids must be consecutive, starting from 1.",
            ));
        }
        if step.options.is_empty() {
            return Err(invalid(format!(
                "Authentication step {} has no options.",
                step.id
            )));
        }
        for opt in &step.options {
            if opt.idp.is_empty() || opt.authenticator.is_empty() {
                return Err(invalid("Each option needs an idp and an authenticator."));
            }
            if opt.idp == LOCAL_IDP {
                if !LOCAL_AUTHENTICATORS.contains(&opt.authenticator.as_str()) {
                    return Err(invalid(format!(
                        "Invalid local authenticator: {}.",
                        opt.authenticator
                    )));
                }
            } else {
                let idp = st.idp_by_name(&opt.idp).ok_or_else(|| {
                    invalid(format!(
                        "Identity provider with name {} does not exist.",
                        opt.idp
                    ))
                })?;
                if !idp
                    .authenticators
                    .iter()
                    .any(|a| a.name.as_deref() == Some(opt.authenticator.as_str()))
                {
                    return Err(invalid(format!(
                        "Authenticator {} is not configured for identity provider {}.",
                        opt.authenticator, opt.idp
                    )));
                }
            }
        }
    }
    let n = steps.len() as i64;
    let in_range = |v: Option<i64>| v.filter(|v| (1..=n).contains(v)).unwrap_or(1);
    let script = match req.script {
        Some(s) if !s.trim().is_empty() => Some(s),
        _ => current.script.clone(),
    };
    Ok(AuthenticationSequence {
        kind: Some(SequenceType::UserDefined),
        subject_step_id: Some(in_range(req.subject_step_id)),
        attribute_step_id: Some(in_range(req.attribute_step_id)),
        steps: Some(steps),
        request_path_authenticators,
        script,
    })
}

/// Removes an IdP from a flow (forced IdP delete): options go, empty steps go and the rest are
/// renumbered; a flow left without steps falls back to DEFAULT.
pub fn remove_idp_from_flow(seq: &mut AuthenticationSequence, idp_name: &str) {
    let Some(steps) = seq.steps.as_mut() else {
        return;
    };
    for s in steps.iter_mut() {
        s.options.retain(|o| o.idp != idp_name);
    }
    steps.retain(|s| !s.options.is_empty());
    for (i, s) in steps.iter_mut().enumerate() {
        s.id = i as i64 + 1;
    }
    if steps.is_empty() {
        *seq = default_sequence();
    }
}

fn response(ctx: &Ctx<'_>, app: &StoredApp) -> ApplicationResponseModel {
    ApplicationResponseModel {
        id: app.id.clone(),
        name: app.name.clone(),
        description: app.description.clone(),
        image_url: app.image_url.clone(),
        access_url: app.access_url.clone(),
        client_id: app.oidc.as_ref().and_then(|o| o.client_id.clone()),
        template_id: app.template_id.clone(),
        inbound_protocols: Some(
            app.oidc
                .iter()
                .map(|_| InboundProtocolListItem {
                    kind: "oauth2".to_owned(),
                    name: "oidc".to_owned(),
                    self_link: ctx
                        .api_path(&format!("applications/{}/inbound-protocols/oidc", app.id)),
                })
                .collect(),
        ),
        authentication_sequence: Some(app.sequence.clone()),
        access: Some("WRITE".to_owned()),
        extra: app.extra.clone(),
    }
}

fn list(ctx: &Ctx<'_>, st: &TenantState) -> Result<Reply, EmuError> {
    let filter = match ctx.query("filter") {
        Some(f) if !f.trim().is_empty() => {
            let parsed = super::filter::Filter::parse(f, true).map_err(|e| {
                EmuError::bad_request("APP-60004", "Invalid filter query format.", e)
            })?;
            if let Some(bad) = parsed
                .attributes()
                .find(|a| !matches!(*a, "name" | "clientId" | "issuer"))
            {
                return Err(EmuError::bad_request(
                    "APP-60004",
                    "Invalid filter attribute.",
                    format!("Filtering is only supported with 'name', 'clientId', and 'issuer' attributes, not '{bad}'."),
                ));
            }
            Some(parsed)
        }
        _ => None,
    };
    let (limit, offset) = ctx.page(DEFAULT_APP_LIMIT, "APP-60003")?;
    if limit == 0 {
        return Err(EmuError::bad_request(
            "APP-60003",
            "Invalid limit.",
            "limit must be at least 1.",
        ));
    }
    let matching: Vec<&StoredApp> = st
        .apps
        .iter()
        .filter(|a| {
            filter.as_ref().is_none_or(|f| {
                f.matches_case(
                    |attr| match attr {
                        "name" => Some(a.name.clone()),
                        "clientId" => a.oidc.as_ref().and_then(|o| o.client_id.clone()),
                        _ => None,
                    },
                    ctx.ignore_name_case,
                )
            })
        })
        .collect();
    let page: Vec<ApplicationListItem> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|a| ApplicationListItem {
            id: a.id.clone(),
            name: a.name.clone(),
            description: a.description.clone(),
            client_id: a.oidc.as_ref().and_then(|o| o.client_id.clone()),
            self_link: ctx.api_path(&format!("applications/{}", a.id)),
        })
        .collect();
    Reply::json(&ApplicationListResponse {
        total_results: matching.len() as u64,
        start_index: offset as u64 + 1,
        count: page.len() as u64,
        links: ctx.links("applications", matching.len(), limit, offset),
        applications: page,
    })
}

fn client_ids(st: &TenantState) -> HashSet<String> {
    st.apps
        .iter()
        .filter_map(|a| a.oidc.as_ref()?.client_id.clone())
        .collect()
}

fn create(ctx: &Ctx<'_>, st: &mut TenantState) -> Result<Reply, EmuError> {
    let req: ApplicationModel = parse(ctx.body)?;
    let name = req.name.trim().to_owned();
    if name.is_empty() {
        return Err(invalid("Application name is required."));
    }
    if st.app_name_clash(&name, ctx.ignore_name_case).is_some() {
        return Err(duplicate(&name));
    }
    let sequence = match req.authentication_sequence {
        Some(seq) => apply_sequence(&default_sequence(), seq, ctx.scopes, st)?,
        None => default_sequence(),
    };
    let oidc = match req.inbound_protocol_configuration.and_then(|i| i.oidc) {
        Some(o) => Some(new_oidc(o, None, &client_ids(st))?),
        None => None,
    };
    let app = StoredApp {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        description: req.description,
        image_url: req.image_url,
        access_url: req.access_url,
        template_id: req.template_id,
        sequence,
        oidc,
        extra: req.extra,
    };
    let location = ctx.location(&format!("applications/{}", app.id));
    st.apps.push(app);
    Ok(Reply::Created {
        location,
        body: None,
    })
}

fn patch(id: &str, ctx: &Ctx<'_>, st: &mut TenantState) -> Result<Reply, EmuError> {
    let req: ApplicationPatchModel = parse(ctx.body)?;
    let mut app = st.app(id).ok_or_else(|| not_found(id, ctx.tenant))?.clone();
    if let Some(name) = req.name {
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(invalid("Application name must not be empty."));
        }
        if st
            .app_name_clash(&name, ctx.ignore_name_case)
            .is_some_and(|other| other.id != app.id)
        {
            return Err(duplicate(&name));
        }
        app.name = name;
    }
    if let Some(d) = req.description {
        app.description = Some(d);
    }
    if let Some(v) = req.image_url {
        app.image_url = Some(v);
    }
    if let Some(v) = req.access_url {
        app.access_url = Some(v);
    }
    if let Some(seq) = req.authentication_sequence {
        app.sequence = apply_sequence(&app.sequence, seq, ctx.scopes, st)?;
    }
    app.extra.extend(req.extra);
    if let Some(slot) = st.app_mut(id) {
        *slot = app;
    }
    Ok(Reply::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_client::wire::{AuthenticationStep, AuthenticatorOption};

    fn step(id: i64, opts: &[(&str, &str)]) -> AuthenticationStep {
        AuthenticationStep {
            id,
            options: opts
                .iter()
                .map(|(i, a)| AuthenticatorOption {
                    idp: (*i).into(),
                    authenticator: (*a).into(),
                })
                .collect(),
        }
    }

    fn seq(kind: Option<SequenceType>, steps: Vec<AuthenticationStep>) -> AuthenticationSequence {
        AuthenticationSequence {
            kind,
            steps: Some(steps),
            ..Default::default()
        }
    }

    #[test]
    fn missing_type_means_default_and_steps_are_ignored() {
        let st = TenantState::default();
        let out = apply_sequence(
            &default_sequence(),
            seq(None, vec![step(1, &[("LOCAL", "totp")])]),
            &HashSet::new(),
            &st,
        )
        .expect("ok");
        assert_eq!(out, default_sequence());
    }

    #[test]
    fn step_ids_must_be_consecutive_after_sorting() {
        let st = TenantState::default();
        let none = HashSet::new();
        let ok = apply_sequence(
            &default_sequence(),
            seq(
                Some(SequenceType::UserDefined),
                vec![
                    step(2, &[("LOCAL", "totp")]),
                    step(1, &[("LOCAL", "BasicAuthenticator")]),
                ],
            ),
            &none,
            &st,
        )
        .expect("sorted ids are fine");
        assert_eq!(ok.steps.as_ref().map(|s| s[0].id), Some(1));
        let err = apply_sequence(
            &default_sequence(),
            seq(
                Some(SequenceType::UserDefined),
                vec![step(1, &[("LOCAL", "totp")]), step(3, &[("LOCAL", "totp")])],
            ),
            &none,
            &st,
        )
        .expect_err("gap");
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(err.body.code.as_deref(), Some("APP-60001"));
    }

    #[test]
    fn unknown_idp_is_rejected_and_script_needs_scope() {
        let st = TenantState::default();
        let err = apply_sequence(
            &default_sequence(),
            seq(
                Some(SequenceType::UserDefined),
                vec![step(1, &[("Nope", "GoogleOIDCAuthenticator")])],
            ),
            &HashSet::new(),
            &st,
        )
        .expect_err("unknown idp");
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
        let mut with_script = seq(
            Some(SequenceType::UserDefined),
            vec![step(1, &[("LOCAL", "BasicAuthenticator")])],
        );
        with_script.script = Some(String::new());
        let err = apply_sequence(
            &default_sequence(),
            with_script.clone(),
            &HashSet::new(),
            &st,
        )
        .expect_err("scope");
        assert_eq!(err.status, axum::http::StatusCode::FORBIDDEN);
        let scopes: HashSet<String> = [SCRIPT_SCOPE.to_owned()].into();
        let out = apply_sequence(&default_sequence(), with_script, &scopes, &st)
            .expect("blank script ok");
        assert_eq!(out.script, None, "a blank script does not set one");
    }

    #[test]
    fn out_of_range_subject_step_becomes_one() {
        let st = TenantState::default();
        let mut s = seq(
            Some(SequenceType::UserDefined),
            vec![step(1, &[("LOCAL", "BasicAuthenticator")])],
        );
        s.subject_step_id = Some(5);
        let out = apply_sequence(&default_sequence(), s, &HashSet::new(), &st).expect("ok");
        assert_eq!(out.subject_step_id, Some(1));
    }
}
