//! HTTP plumbing of the emulator: routing of `/t/{tenant}/...`, the token endpoint, bearer-token and
//! scope checks, fault injection, request counters, and the emulator-only admin endpoints under
//! `/_emulator/` (outside any tenant, so they can never clash with the real API).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;

use super::ctx::Ctx;
use super::reply::{EmuError, Reply};
use super::shared::{
    lock, quota_family, quota_wait, Faults, IssuedToken, Shared, SpoiledCreate, Stats,
};
use super::state::{TenantState, Tenants};
use identity_client::operation::Operation;
use identity_client::wire::{OAuthError, TokenResponse};
use identity_client::Secret;

/// The body of an [`SpoiledCreate::Oversized`] answer: twice the client's default cap.
const OVERSIZED_BODY: usize = 2 * identity_client::asgardeo::DEFAULT_MAX_BODY_BYTES;

/// Takes one spoiled create off the faults, if any is left.
fn take_spoiled_create(shared: &Shared) -> Option<SpoiledCreate> {
    let mut f = lock(&shared.faults);
    if f.spoil_next_creates == 0 {
        return None;
    }
    f.spoil_next_creates -= 1;
    Some(f.spoiled_create)
}

/// The answer of a create that committed, spoiled as `how` says.
async fn spoiled(how: SpoiledCreate, reply: Reply) -> Response {
    match how {
        SpoiledCreate::NoLocation => StatusCode::CREATED.into_response(),
        SpoiledCreate::Oversized => {
            let mut resp = reply.into_response();
            *resp.body_mut() = axum::body::Body::from(vec![b' '; OVERSIZED_BODY]);
            resp
        }
        SpoiledCreate::Hang => {
            // Far beyond any client timeout; the client closing the connection ends it sooner.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            reply.into_response()
        }
    }
}

/// Builds the router: the API under `/t/{tenant}/` plus the admin endpoints.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_emulator/stats", get(get_stats))
        .route("/_emulator/reset-stats", post(reset_stats))
        .route("/_emulator/faults", get(get_faults).post(set_faults))
        .route("/_emulator/revoke-tokens", post(revoke_tokens))
        .route("/_emulator/state", get(get_state))
        .route(
            "/_emulator/simulate-login",
            post(super::simulate::simulate_login),
        )
        .fallback(api)
        .with_state(shared)
}

async fn get_stats(State(s): State<Arc<Shared>>) -> axum::Json<Stats> {
    axum::Json(lock(&s.stats).clone())
}

async fn reset_stats(State(s): State<Arc<Shared>>) -> StatusCode {
    *lock(&s.stats) = Stats::default();
    StatusCode::NO_CONTENT
}

async fn get_faults(State(s): State<Arc<Shared>>) -> axum::Json<Faults> {
    axum::Json(lock(&s.faults).clone())
}

async fn set_faults(State(s): State<Arc<Shared>>, axum::Json(f): axum::Json<Faults>) -> StatusCode {
    *lock(&s.faults) = f;
    StatusCode::NO_CONTENT
}

async fn revoke_tokens(State(s): State<Arc<Shared>>) -> StatusCode {
    s.revoke_all_tokens();
    StatusCode::NO_CONTENT
}

/// The state of every tenant with its secrets masked: the confidential authenticator properties
/// (what the server declares confidential, [`identity_client::Confidential`]) and the applications'
/// OIDC client secrets. The endpoint has no authentication, so it must not hand out what the
/// management API itself never shows back. Tests that need a stored secret read the state in process.
async fn get_state(State(s): State<Arc<Shared>>) -> axum::Json<Tenants> {
    axum::Json(masked(lock(&s.tenants).clone()))
}

/// What replaces a secret in the state dump.
pub const MASK: &str = "******";

fn masked(mut tenants: Tenants) -> Tenants {
    for st in tenants.values_mut() {
        for idp in &mut st.idps {
            for a in &mut idp.authenticators {
                let secret = identity_client::Confidential::fallback(&a.authenticator_id);
                for p in a.properties.iter_mut().flatten() {
                    if secret.contains(&p.key) && p.value.is_some() {
                        p.value = Some(MASK.into());
                    }
                }
            }
        }
        for app in &mut st.apps {
            if let Some(o) = app.oidc.as_mut() {
                if o.client_secret.is_some() {
                    o.client_secret = Some(identity_client::Secret::new(MASK));
                }
            }
        }
    }
    tenants
}

/// Maps method + path (after `/t/{tenant}/`) to an operation and its path ids.
fn route(method: &Method, segs: &[&str]) -> Result<(Operation, Vec<String>), EmuError> {
    use Operation as O;
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let m = method.clone();
    let found = match segs {
        ["oauth2", "token"] => (m == Method::POST).then(|| (O::Token, vec![])),
        ["api", "server", "v1", rest @ ..] => match rest {
            ["identity-providers"] => match m {
                Method::GET => Some((O::ListIdps, vec![])),
                Method::POST => Some((O::CreateIdp, vec![])),
                _ => None,
            },
            // Before the `{id}/federated-authenticators/{aid}` arm, which `meta` would match too.
            ["identity-providers", "meta", "federated-authenticators", aid] => {
                (m == Method::GET).then(|| (O::GetAuthenticatorMeta, ids(&[aid])))
            }
            ["identity-providers", id] => match m {
                Method::GET => Some((O::GetIdp, ids(&[id]))),
                Method::PATCH => Some((O::PatchIdp, ids(&[id]))),
                Method::DELETE => Some((O::DeleteIdp, ids(&[id]))),
                _ => None,
            },
            ["identity-providers", id, "federated-authenticators"] => {
                (m == Method::GET).then(|| (O::ListFederatedAuthenticators, ids(&[id])))
            }
            ["identity-providers", id, "federated-authenticators", aid] => match m {
                Method::GET => Some((O::GetFederatedAuthenticator, ids(&[id, aid]))),
                Method::PUT => Some((O::UpdateFederatedAuthenticator, ids(&[id, aid]))),
                _ => None,
            },
            ["identity-providers", id, "provisioning"] => {
                (m == Method::GET).then(|| (O::GetProvisioning, ids(&[id])))
            }
            ["identity-providers", id, "provisioning", "jit"] => match m {
                Method::GET => Some((O::GetJit, ids(&[id]))),
                Method::PUT => Some((O::UpdateJit, ids(&[id]))),
                _ => None,
            },
            ["identity-providers", id, "claims"] => match m {
                Method::GET => Some((O::GetClaims, ids(&[id]))),
                Method::PUT => Some((O::UpdateClaims, ids(&[id]))),
                _ => None,
            },
            ["identity-providers", id, "roles"] => match m {
                Method::GET => Some((O::GetRoles, ids(&[id]))),
                Method::PUT => Some((O::UpdateRoles, ids(&[id]))),
                _ => None,
            },
            ["identity-providers", id, "groups"] => match m {
                Method::GET => Some((O::GetGroups, ids(&[id]))),
                Method::PUT => Some((O::UpdateGroups, ids(&[id]))),
                _ => None,
            },
            ["identity-providers", id, "connected-apps"] => {
                (m == Method::GET).then(|| (O::ConnectedApps, ids(&[id])))
            }
            ["applications"] => match m {
                Method::GET => Some((O::ListApplications, vec![])),
                Method::POST => Some((O::CreateApplication, vec![])),
                _ => None,
            },
            ["applications", id] => match m {
                Method::GET => Some((O::GetApplication, ids(&[id]))),
                Method::PATCH => Some((O::PatchApplication, ids(&[id]))),
                Method::DELETE => Some((O::DeleteApplication, ids(&[id]))),
                _ => None,
            },
            ["applications", id, "inbound-protocols", "oidc"] => match m {
                Method::GET => Some((O::GetOidc, ids(&[id]))),
                Method::PUT => Some((O::UpdateOidc, ids(&[id]))),
                _ => None,
            },
            _ => {
                return Err(EmuError::not_found(
                    "",
                    "Not Found",
                    "The emulator does not implement this resource.",
                ))
            }
        },
        _ => {
            return Err(EmuError::not_found(
                "",
                "Not Found",
                "The emulator does not implement this resource.",
            ))
        }
    };
    found.ok_or_else(|| {
        EmuError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "",
            "Method Not Allowed",
            format!("{method} is not allowed here."),
        )
    })
}

async fn api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resp = match api_inner(&shared, &method, &uri, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    *lock(&shared.stats)
        .statuses
        .entry(resp.status().as_u16())
        .or_default() += 1;
    resp
}

async fn api_inner(
    shared: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, EmuError> {
    let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let (tenant, rest) = match segs.as_slice() {
        ["t", tenant, rest @ ..] => (*tenant, rest),
        _ => {
            return Err(EmuError::not_found(
                "",
                "Not Found",
                "Paths start with /t/{tenant}/.",
            ))
        }
    };
    let (op, ids) = route(method, rest)?;
    {
        let mut stats = lock(&shared.stats);
        *stats.operations.entry(op.label().to_owned()).or_default() += 1;
        if op == Operation::Token {
            stats.token_requests += 1;
        } else if op.is_write() {
            stats.writes += 1;
        } else {
            stats.reads += 1;
        }
    }
    enforce_quota(shared, op)?;
    inject_faults(shared, op).await?;
    if op == Operation::Token {
        return Ok(token(shared, tenant, headers, body));
    }
    let scopes = authorize(shared, tenant, headers)?;
    if let Some(needed) = op.scope() {
        if !scopes.contains(needed) {
            return Err(EmuError::new(
                StatusCode::FORBIDDEN,
                "",
                "Forbidden",
                "Operation is not permitted. You do not have permissions to make this request.",
            ));
        }
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let ctx = Ctx {
        tenant,
        origin: format!("{}://{host}", shared.scheme),
        query: url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect(),
        body,
        scopes: &scopes,
        ignore_name_case: shared.ignore_name_case,
    };
    let reply = {
        let mut tenants = lock(&shared.tenants);
        let st: &mut TenantState = tenants.entry(tenant.to_owned()).or_default();
        let reply: Reply = if op.is_idp() {
            super::idp::handle(op, &ids, &ctx, st)?
        } else {
            super::app::handle(op, &ids, &ctx, st)?
        };
        if op.is_write() {
            shared.persist(&tenants);
        }
        reply
    };
    // The object is stored by now (the lock is released): only the answer goes wrong.
    if matches!(op, Operation::CreateIdp | Operation::CreateApplication) {
        if let Some(how) = take_spoiled_create(shared) {
            lock(&shared.stats).faults_injected += 1;
            return Ok(spoiled(how, reply).await);
        }
    }
    Ok(reply.into_response())
}

/// Refuses a request over the [`Quota`] with 429 and `Retry-After` (whole seconds, rounded up, as
/// the header carries no fraction). The body is the API's usual error body: the server's rate
/// limiter sits in front of the API and its body is not documented, and the operator reads only
/// the status and `Retry-After`.
fn enforce_quota(shared: &Shared, op: Operation) -> Result<(), EmuError> {
    let Some(quota) = lock(&shared.faults).quota else {
        return Ok(());
    };
    let wait = {
        let mut logs = lock(&shared.quota_log);
        quota_wait(
            logs.entry(quota_family(op)).or_default(),
            quota,
            Instant::now(),
        )
    };
    let Some(wait) = wait else {
        return Ok(());
    };
    lock(&shared.stats).over_quota += 1;
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Err(EmuError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "",
        "Too Many Requests",
        format!(
            "More than {} requests in {} seconds.",
            quota.requests, quota.window_secs
        ),
    )
    .with_header(header::RETRY_AFTER, secs.max(1).to_string()))
}

async fn inject_faults(shared: &Shared, op: Operation) -> Result<(), EmuError> {
    let (latency, outcome) = {
        let mut f = lock(&shared.faults);
        let latency = Duration::from_millis(f.latency_ms);
        let outcome = if f.rate_limit_next > 0 {
            f.rate_limit_next -= 1;
            Some(
                EmuError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "",
                    "Too Many Requests",
                    "Rate limit exceeded.",
                )
                .with_header(header::RETRY_AFTER, f.retry_after_secs.to_string()),
            )
        } else if f.fail_next > 0 || (f.error_rate > 0.0 && rand::random::<f64>() < f.error_rate) {
            f.fail_next = f.fail_next.saturating_sub(1);
            let status = StatusCode::from_u16(f.error_status)
                .ok()
                .filter(|s| s.is_server_error());
            let mut e =
                EmuError::internal(if op.is_idp() { "IDP" } else { "APP" }, "Injected fault.");
            e.status = status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some(e)
        } else {
            None
        };
        (latency, outcome)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match outcome {
        Some(e) => {
            lock(&shared.stats).faults_injected += 1;
            Err(e)
        }
        None => Ok(()),
    }
}

fn unauthorized(description: &str) -> EmuError {
    EmuError::new(StatusCode::UNAUTHORIZED, "", "Unauthorized", description)
        .with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"emulator\"")
}

fn authorize(
    shared: &Shared,
    tenant: &str,
    headers: &HeaderMap,
) -> Result<HashSet<String>, EmuError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("Authorization information is missing."))?;
    let tokens = lock(&shared.tokens);
    let issued = tokens
        .get(token)
        .ok_or_else(|| unauthorized("Access token is invalid or revoked."))?;
    if issued.expires_at <= Instant::now() {
        return Err(unauthorized("Access token has expired."));
    }
    if issued.tenant != tenant {
        return Err(unauthorized("Access token was issued for another tenant."));
    }
    Ok(issued.scopes.clone())
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = OAuthError {
        error: error.to_owned(),
        error_description: Some(description.to_owned()),
    };
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic"),
        );
    }
    resp
}

/// `POST /t/{tenant}/oauth2/token`: client_credentials with HTTP Basic (or client_secret_post) client
/// authentication. Requested scopes the app is not authorized for are dropped without an error, and
/// the response's `scope` lists what was granted: Asgardeo's behaviour for an M2M app whose "API
/// Authorization" lacks a scope (asgardeo-api.md §3, "Facts confirmed in the server's own code").
fn token(shared: &Shared, tenant: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())));
    let (id, secret) = match basic {
        Some(pair) => pair,
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    if id != shared.client_id || secret != shared.client_secret.expose() {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client credentials are invalid.",
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only client_credentials is supported.",
        );
    }
    let granted: Vec<String> = {
        let authorized = lock(&shared.grant_scopes);
        form.get("scope")
            .map(|s| s.split_whitespace())
            .into_iter()
            .flatten()
            .filter(|s| authorized.contains(*s))
            .map(str::to_owned)
            .collect()
    };
    let lifetime = lock(&shared.faults)
        .token_lifetime_secs
        .map(Duration::from_secs)
        .unwrap_or(shared.token_lifetime);
    let access_token = uuid::Uuid::new_v4().simple().to_string();
    // A lifetime injected as a fault may be absurd (u64::MAX): never overflow an Instant.
    let now = Instant::now();
    let expires_at = now
        .checked_add(lifetime)
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now);
    lock(&shared.tokens).insert(
        access_token.clone(),
        IssuedToken {
            tenant: tenant.to_owned(),
            scopes: granted.iter().cloned().collect(),
            expires_at,
        },
    );
    let body = TokenResponse {
        access_token: Secret::new(access_token),
        token_type: "Bearer".to_owned(),
        expires_in: lifetime.as_secs(),
        scope: Some(granted.join(" ")),
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_dump_masks_every_stored_secret() {
        use identity_client::wire::{FederatedAuthenticator, OpenIdConnectConfiguration, Property};
        let mut st = TenantState::default();
        st.idps.push(crate::state::StoredIdp {
            authenticators: vec![FederatedAuthenticator {
                authenticator_id: identity_client::wire::authenticator_id(
                    "OpenIDConnectAuthenticator",
                ),
                properties: Some(vec![
                    Property::new("ClientSecret", "idp-secret-value"),
                    Property::new("OAuth2TokenEPUrl", "https://idp.example/token"),
                ]),
                ..Default::default()
            }],
            ..Default::default()
        });
        st.apps.push(crate::state::StoredApp {
            oidc: Some(OpenIdConnectConfiguration {
                client_secret: Some(identity_client::Secret::new("app-secret-value")),
                ..Default::default()
            }),
            ..Default::default()
        });
        let dump = serde_json::to_string(&masked(Tenants::from([("acme".to_string(), st)])))
            .expect("json");
        assert!(
            !dump.contains("idp-secret-value") && !dump.contains("app-secret-value"),
            "{dump}"
        );
        assert!(dump.contains("https://idp.example/token"), "{dump}");
        assert!(dump.contains(MASK), "{dump}");
    }

    #[test]
    fn routes_cover_every_operation() {
        let v1 = |p: &str| -> Vec<String> {
            format!("api/server/v1/{p}")
                .split('/')
                .map(str::to_owned)
                .collect()
        };
        let cases = [
            (Method::GET, v1("identity-providers"), Operation::ListIdps),
            (
                Method::PUT,
                v1("identity-providers/x/provisioning/jit"),
                Operation::UpdateJit,
            ),
            (
                Method::GET,
                v1("identity-providers/x/connected-apps"),
                Operation::ConnectedApps,
            ),
            (
                Method::PUT,
                v1("identity-providers/x/federated-authenticators/y"),
                Operation::UpdateFederatedAuthenticator,
            ),
            (
                Method::GET,
                v1("identity-providers/meta/federated-authenticators/x"),
                Operation::GetAuthenticatorMeta,
            ),
            (
                Method::PATCH,
                v1("applications/x"),
                Operation::PatchApplication,
            ),
            (
                Method::PUT,
                v1("applications/x/inbound-protocols/oidc"),
                Operation::UpdateOidc,
            ),
        ];
        for (m, segs, want) in cases {
            let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
            assert_eq!(route(&m, &segs).map(|r| r.0).ok(), Some(want));
        }
        let err =
            route(&Method::POST, &["api", "server", "v1", "applications", "x"]).expect_err("405");
        assert_eq!(err.status, StatusCode::METHOD_NOT_ALLOWED);
    }
}
