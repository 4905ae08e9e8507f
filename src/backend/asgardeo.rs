//! [`IdentityServer`] over the Asgardeo / WSO2 Identity Server management REST API.
//!
//! - Base URL `https://api.asgardeo.io/t/{org}` (Asgardeo) or `{url}/t/{tenant}` (WSO2 IS, or the
//!   emulator over `http://`); API under `/api/server/v1`, token at `/oauth2/token`.
//! - TLS through rustls with the ring provider (the one kube uses); certificate verification is always
//!   on; an extra CA bundle can be added for self-hosted servers.
//! - OAuth2 client_credentials with HTTP Basic client authentication and exactly the configured scopes;
//!   one cached token per client ([`super::token`]); a 401 triggers one re-authentication and retry.
//! - Retries with exponential backoff and jitter on 5xx, timeouts and connection errors; 429 waits for
//!   `Retry-After`. POSTs that create objects are retried only when the request cannot have reached
//!   the server (connection refused) or on 429: a blind retry after a 5xx or timeout could create a
//!   duplicate, and the controllers recover from that case by looking the object up by name.
//! - At most `max_concurrency` requests in flight per client; lists are followed through every page.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use super::metrics::BackendMetrics;
use super::operation::{Operation, SCRIPT_SCOPE};
use super::ratelimit::{self, RateLimiter};
use super::token::{CachedToken, TokenCache};
use super::wire::{self, ErrorBody, Link};
use super::{
    Application, ApplicationPatch, ApplicationSummary, BackendError, FederatedAuthenticator,
    FlowKind, FlowOption, FlowStep, FlowUpdate, IdentityServer, Idp, IdpPatch, IdpSummary, Jit,
    JitChange, LoginFlow, NewApplication, NewIdp, OidcChange, OidcSettings, Secret, ServerInfo,
};

/// Which server and tenant to talk to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Asgardeo SaaS: `https://api.asgardeo.io/t/{organization}`.
    Asgardeo {
        /// Organization (tenant) name.
        organization: String,
    },
    /// WSO2 Identity Server (or the emulator): `{url}/t/{tenant}`.
    Wso2IdentityServer {
        /// Server URL, e.g. `https://is.example:9443` (http is allowed for local emulators).
        url: String,
        /// Tenant domain, e.g. `carbon.super`.
        tenant: String,
    },
}

impl Target {
    /// The tenant base URL, ending in `/`.
    pub fn tenant_url(&self) -> Result<Url, BackendError> {
        let (base, tenant) = match self {
            Self::Asgardeo { organization } => ("https://api.asgardeo.io", organization.as_str()),
            Self::Wso2IdentityServer { url, tenant } => (url.as_str(), tenant.as_str()),
        };
        if tenant.is_empty() {
            return Err(BackendError::Config(
                "tenant / organization must not be empty".into(),
            ));
        }
        let mut url = Url::parse(base)
            .map_err(|e| BackendError::Config(format!("invalid server URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") || url.cannot_be_a_base() {
            return Err(BackendError::Config(
                "server URL must be http:// or https://".into(),
            ));
        }
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| BackendError::Config("server URL cannot carry a path".into()))?
            .pop_if_empty()
            .push("t")
            .push(tenant)
            .push("");
        Ok(url)
    }
}

/// Retry behaviour (tests shorten it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, first one included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub initial_backoff: Duration,
    /// Backoff cap.
    pub max_backoff: Duration,
    /// Longest `Retry-After` the client waits in-line; beyond it the call fails with `RateLimited`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with "equal jitter": half fixed, half random, so synchronized clients spread.
    fn backoff(&self, attempt: u32) -> Duration {
        use rand::Rng;
        let exp = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let capped = exp.min(self.max_backoff);
        let half = capped / 2;
        let jitter_ms = rand::rng().random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter_ms)
    }
}

/// Configuration of an [`AsgardeoClient`].
#[derive(Clone, Debug)]
pub struct AsgardeoConfig {
    /// Server and tenant.
    pub target: Target,
    /// OAuth client id of the M2M application.
    pub client_id: String,
    /// OAuth client secret (redacted in Debug).
    pub client_secret: Secret,
    /// Extra trusted CA certificates (PEM bundle), added to the built-in roots.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// Scopes requested with the token. Default: exactly the eight IdP/application scopes the
    /// operator uses; add [`SCRIPT_SCOPE`] only when scripts are managed.
    pub scopes: Vec<String>,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// Requests per second, token endpoint included (None: no limit).
    pub max_requests_per_second: Option<u32>,
    /// Timeout of one attempt.
    pub request_timeout: Duration,
    /// Page size asked of list endpoints.
    pub page_size: u32,
}

impl AsgardeoConfig {
    /// A configuration with defaults for everything but target and credentials.
    pub fn new(target: Target, client_id: impl Into<String>, client_secret: Secret) -> Self {
        Self {
            target,
            client_id: client_id.into(),
            client_secret,
            ca_bundle_pem: None,
            scopes: Operation::all_scopes()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            retry: RetryPolicy::default(),
            max_concurrency: 8,
            max_requests_per_second: None,
            request_timeout: Duration::from_secs(30),
            page_size: 50,
        }
    }
}

/// The Asgardeo / WSO2 IS client. Cheap to share behind an `Arc`.
pub struct AsgardeoClient {
    http: reqwest::Client,
    tenant_url: Url,
    api_base: Url,
    token_url: Url,
    client_id: String,
    client_secret: Secret,
    scopes: Vec<String>,
    retry: RetryPolicy,
    page_size: u32,
    permits: tokio::sync::Semaphore,
    rate: Option<RateLimiter>,
    tokens: TokenCache,
    metrics: Option<Arc<BackendMetrics>>,
}

impl std::fmt::Debug for AsgardeoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsgardeoClient")
            .field("tenant_url", &self.tenant_url.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A response read to the end.
struct Resp {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// The root cause of a transport error, without the URL (short, and free of ids).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut root = None;
    while let Some(s) = source {
        root = Some(s.to_string());
        source = s.source();
    }
    match root {
        Some(r) => format!("{kind}: {r}"),
        None => kind.to_owned(),
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn resource(op: Operation) -> &'static str {
    use Operation as O;
    match op {
        O::GetFederatedAuthenticator
        | O::UpdateFederatedAuthenticator
        | O::ListFederatedAuthenticators => "federated authenticator",
        O::GetOidc | O::UpdateOidc => "application or its OIDC configuration",
        O::Token => "token endpoint",
        o if o.is_idp() => "identity provider",
        _ => "application",
    }
}

/// Server codes that mean "duplicate" when they come with a 400 (older servers, other paths).
const DUPLICATE_CODES: &[&str] = &["IDP-60001", "APP-60007", "OAUTH-60008"];

/// Offset and limit of a `next` link, resolved against the API base.
fn next_page(links: &[Link], base: &Url) -> Option<(u64, u64)> {
    let link = links.iter().find(|l| l.rel == "next")?;
    let url = base.join(&link.href).ok()?;
    let get = |k: &str| {
        url.query_pairs()
            .find(|(key, _)| key == k)
            .and_then(|(_, v)| v.parse::<u64>().ok())
    };
    Some((get("offset")?, get("limit")?))
}

fn flow_to_wire(flow: &FlowUpdate) -> wire::AuthenticationSequence {
    wire::AuthenticationSequence {
        kind: Some(wire::SequenceType::UserDefined),
        steps: Some(
            flow.steps
                .iter()
                .enumerate()
                .map(|(i, s)| wire::AuthenticationStep {
                    id: i as i64 + 1,
                    options: s
                        .options
                        .iter()
                        .map(|o| wire::AuthenticatorOption {
                            idp: o.idp.clone(),
                            authenticator: o.authenticator.clone(),
                        })
                        .collect(),
                })
                .collect(),
        ),
        request_path_authenticators: None,
        script: flow.script.clone(),
        subject_step_id: flow.subject_step_id.map(i64::from),
        attribute_step_id: flow.attribute_step_id.map(i64::from),
    }
}

fn flow_from_wire(seq: Option<&wire::AuthenticationSequence>) -> LoginFlow {
    let Some(seq) = seq else {
        return LoginFlow {
            kind: FlowKind::Default,
            steps: vec![],
            script: None,
            subject_step_id: 1,
            attribute_step_id: 1,
        };
    };
    let mut steps = seq.steps.clone().unwrap_or_default();
    steps.sort_by_key(|s| s.id);
    let to_u32 = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(1);
    LoginFlow {
        kind: match seq.kind {
            Some(wire::SequenceType::UserDefined) => FlowKind::UserDefined,
            _ => FlowKind::Default,
        },
        steps: steps
            .into_iter()
            .map(|s| FlowStep {
                options: s
                    .options
                    .into_iter()
                    .map(|o| FlowOption {
                        idp: o.idp,
                        authenticator: o.authenticator,
                    })
                    .collect(),
            })
            .collect(),
        script: seq.script.clone().filter(|s| !s.trim().is_empty()),
        subject_step_id: to_u32(seq.subject_step_id),
        attribute_step_id: to_u32(seq.attribute_step_id),
    }
}

fn authenticator_from_wire(a: wire::FederatedAuthenticator) -> FederatedAuthenticator {
    FederatedAuthenticator {
        authenticator_id: a.authenticator_id,
        name: a.name,
        is_enabled: a.is_enabled.unwrap_or(false),
        is_default: a.is_default.unwrap_or(false),
        properties: a.properties.unwrap_or_default(),
    }
}

fn authenticator_to_wire(a: &FederatedAuthenticator) -> wire::FederatedAuthenticator {
    wire::FederatedAuthenticator {
        authenticator_id: a.authenticator_id.clone(),
        is_enabled: Some(a.is_enabled),
        is_default: Some(a.is_default),
        properties: Some(a.properties.clone()),
        ..Default::default()
    }
}

fn oidc_from_wire(o: wire::OpenIdConnectConfiguration) -> OidcSettings {
    OidcSettings {
        client_id: o.client_id,
        client_secret: o.client_secret.filter(|s| !s.is_empty()),
        grant_types: o.grant_types,
        callback_urls: o.callback_urls.unwrap_or_default(),
        allowed_origins: o.allowed_origins.unwrap_or_default(),
        public_client: o.public_client.unwrap_or(false),
        state: o.state,
    }
}

fn apply_oidc_change(o: &mut wire::OpenIdConnectConfiguration, change: &OidcChange) {
    o.grant_types = change.grant_types.clone();
    o.callback_urls = Some(change.callback_urls.clone());
    o.allowed_origins = Some(change.allowed_origins.clone());
    if let Some(p) = change.public_client {
        o.public_client = Some(p);
    }
    // Read-only on the server; sending it back is at best ignored.
    o.state = None;
}

impl AsgardeoClient {
    /// Builds a client. No network traffic happens until the first call.
    pub fn new(
        config: AsgardeoConfig,
        metrics: Option<Arc<BackendMetrics>>,
    ) -> Result<Self, BackendError> {
        let tenant_url = config.target.tenant_url()?;
        let api_base = tenant_url
            .join("api/server/v1/")
            .map_err(|e| BackendError::Config(format!("invalid server URL: {e}")))?;
        let token_url = tenant_url
            .join("oauth2/token")
            .map_err(|e| BackendError::Config(format!("invalid server URL: {e}")))?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("identity-operator/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.ca_bundle_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| BackendError::Config(format!("CA bundle is not valid PEM: {e}")))?;
            if certs.is_empty() {
                return Err(BackendError::Config(
                    "CA bundle holds no certificate".into(),
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| BackendError::Config(format!("HTTP client: {}", describe(&e))))?;
        Ok(Self {
            http,
            tenant_url,
            api_base,
            token_url,
            client_id: config.client_id,
            client_secret: config.client_secret,
            scopes: config.scopes,
            retry: config.retry,
            page_size: config.page_size.max(1),
            permits: tokio::sync::Semaphore::new(config.max_concurrency.max(1)),
            rate: config.max_requests_per_second.map(RateLimiter::new),
            tokens: TokenCache::default(),
            metrics,
        })
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api_base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn observe(&self, op: Operation, status: Option<StatusCode>, started: Instant) {
        if let Some(m) = &self.metrics {
            m.observe(
                op.label(),
                status.map(|s| s.as_u16()),
                started.elapsed().as_secs_f64(),
            );
        }
    }

    async fn token(&self, stale: Option<&Secret>) -> Result<CachedToken, BackendError> {
        self.tokens.get(stale, || self.fetch_token()).await
    }

    /// `POST /oauth2/token` with retries on transient failures.
    async fn fetch_token(&self) -> Result<CachedToken, BackendError> {
        let op = Operation::Token;
        let form = [
            ("grant_type", "client_credentials".to_owned()),
            ("scope", self.scopes.join(" ")),
        ];
        let mut attempt = 0;
        loop {
            attempt += 1;
            ratelimit::acquire(self.rate.as_ref()).await;
            let started = Instant::now();
            let sent = self
                .http
                .post(self.token_url.clone())
                .basic_auth(&self.client_id, Some(self.client_secret.expose()))
                .header(ACCEPT, "application/json")
                .form(&form)
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    self.observe(op, None, started);
                    if attempt < self.retry.max_attempts {
                        tokio::time::sleep(self.retry.backoff(attempt)).await;
                        continue;
                    }
                    return Err(BackendError::Transient {
                        status: None,
                        message: format!("token endpoint {}", describe(&e)),
                        attempts: attempt,
                        code: None,
                        trace_id: None,
                    });
                }
            };
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            self.observe(op, Some(status), started);
            if status.is_success() {
                let t: wire::TokenResponse =
                    serde_json::from_slice(&body).map_err(|e| BackendError::Protocol {
                        operation: op.label(),
                        message: format!("token response is not valid JSON: {e}"),
                    })?;
                if let Some(m) = &self.metrics {
                    m.token_refreshes.inc();
                }
                let scopes = t
                    .scope
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                return Ok(CachedToken::new(
                    t.access_token,
                    Duration::from_secs(t.expires_in),
                    scopes,
                ));
            }
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                let wait = if status == StatusCode::TOO_MANY_REQUESTS {
                    retry_after(&headers)
                } else {
                    None
                };
                if attempt < self.retry.max_attempts
                    && wait.is_none_or(|w| w <= self.retry.max_retry_after)
                {
                    tokio::time::sleep(wait.unwrap_or_else(|| self.retry.backoff(attempt))).await;
                    continue;
                }
                if status == StatusCode::TOO_MANY_REQUESTS {
                    return Err(BackendError::RateLimited { retry_after: wait });
                }
                return Err(BackendError::Transient {
                    status: Some(status.as_u16()),
                    message: format!("token endpoint answered HTTP {}", status.as_u16()),
                    attempts: attempt,
                    code: None,
                    trace_id: None,
                });
            }
            // 400/401: the OAuth error body names the problem (never echoes the secret).
            let err: Option<wire::OAuthError> = serde_json::from_slice(&body).ok();
            let message = match err {
                Some(e) => format!(
                    "token endpoint answered HTTP {}: {}{}",
                    status.as_u16(),
                    e.error,
                    e.error_description
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ),
                None => format!("token endpoint answered HTTP {}", status.as_u16()),
            };
            return Err(BackendError::Unauthorized { message });
        }
    }

    /// Sends one API request with token handling, retries, rate limiting and concurrency bound.
    async fn send(
        &self,
        op: Operation,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<Resp, BackendError> {
        // Creating twice is worse than failing once: see the module comment.
        let may_retry_after_send = method != Method::POST;
        let mut attempt = 0;
        let mut reauthenticated = false;
        let mut stale: Option<Secret> = None;
        loop {
            attempt += 1;
            let token = self.token(stale.take().as_ref()).await?;
            ratelimit::acquire(self.rate.as_ref()).await;
            let permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| BackendError::Config("client is shutting down".into()))?;
            let started = Instant::now();
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.token.expose())
                .header(ACCEPT, "application/json");
            if let Some(b) = &body {
                req = req.header(CONTENT_TYPE, "application/json").body(b.clone());
            }
            let sent = match req.send().await {
                Ok(r) => {
                    let status = r.status();
                    let headers = r.headers().clone();
                    r.bytes().await.map(|b| (status, headers, b.to_vec()))
                }
                Err(e) => Err(e),
            };
            drop(permit);
            let (status, headers, bytes) = match sent {
                Ok(ok) => ok,
                Err(e) => {
                    self.observe(op, None, started);
                    let safe = e.is_connect() || may_retry_after_send;
                    if safe && attempt < self.retry.max_attempts {
                        tokio::time::sleep(self.retry.backoff(attempt)).await;
                        continue;
                    }
                    return Err(BackendError::Transient {
                        status: None,
                        message: describe(&e),
                        attempts: attempt,
                        code: None,
                        trace_id: None,
                    });
                }
            };
            self.observe(op, Some(status), started);
            if status.is_success() {
                return Ok(Resp {
                    headers,
                    body: bytes,
                });
            }
            if status == StatusCode::UNAUTHORIZED && !reauthenticated {
                // Expired or revoked early: fetch a new token once and try again (not counted).
                reauthenticated = true;
                stale = Some(token.token);
                attempt -= 1;
                continue;
            }
            let err_body: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after(&headers);
                if attempt < self.retry.max_attempts
                    && wait.is_none_or(|w| w <= self.retry.max_retry_after)
                {
                    tokio::time::sleep(wait.unwrap_or_else(|| self.retry.backoff(attempt))).await;
                    continue;
                }
                return Err(BackendError::RateLimited { retry_after: wait });
            }
            if status.is_server_error() {
                if may_retry_after_send && attempt < self.retry.max_attempts {
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    continue;
                }
                return Err(BackendError::Transient {
                    status: Some(status.as_u16()),
                    message: format!("HTTP {}", status.as_u16()),
                    attempts: attempt,
                    code: err_body.code,
                    trace_id: err_body.trace_id,
                });
            }
            return Err(self.client_error(op, status, err_body, &token));
        }
    }

    fn client_error(
        &self,
        op: Operation,
        status: StatusCode,
        body: ErrorBody,
        token: &CachedToken,
    ) -> BackendError {
        let ErrorBody {
            code,
            message,
            description,
            trace_id,
        } = body;
        let duplicate = code
            .as_deref()
            .is_some_and(|c| DUPLICATE_CODES.contains(&c));
        match status {
            StatusCode::NOT_FOUND => BackendError::NotFound {
                resource: resource(op),
                code,
                trace_id,
            },
            StatusCode::CONFLICT => BackendError::AlreadyExists {
                resource: resource(op),
                code,
                description,
                trace_id,
            },
            StatusCode::BAD_REQUEST if duplicate => BackendError::AlreadyExists {
                resource: resource(op),
                code,
                description,
                trace_id,
            },
            StatusCode::UNAUTHORIZED => BackendError::Unauthorized {
                message: "the API rejected a freshly issued token".to_owned(),
            },
            StatusCode::FORBIDDEN => {
                let has = |s: &str| token.scopes.iter().any(|g| g == s);
                let missing_scope = op
                    .scope()
                    .filter(|s| !has(s))
                    .or_else(|| {
                        matches!(
                            op,
                            Operation::CreateApplication | Operation::PatchApplication
                        )
                        .then_some(SCRIPT_SCOPE)
                        .filter(|s| !has(s))
                    })
                    .map(str::to_owned);
                BackendError::Forbidden {
                    missing_scope,
                    code,
                    trace_id,
                }
            }
            _ => BackendError::Invalid {
                status: status.as_u16(),
                code,
                message,
                description,
                trace_id,
            },
        }
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        op: Operation,
        url: Url,
    ) -> Result<T, BackendError> {
        let resp = self.send(op, Method::GET, url, None).await?;
        Self::decode(op, &resp.body)
    }

    fn decode<T: DeserializeOwned>(op: Operation, body: &[u8]) -> Result<T, BackendError> {
        serde_json::from_slice(body).map_err(|e| BackendError::Protocol {
            operation: op.label(),
            message: format!("response body does not match the API model: {e}"),
        })
    }

    fn encode(op: Operation, value: &impl serde::Serialize) -> Result<Vec<u8>, BackendError> {
        serde_json::to_vec(value).map_err(|e| BackendError::Protocol {
            operation: op.label(),
            message: format!("cannot encode request: {e}"),
        })
    }

    /// POSTs and returns the new id: the last path segment of `Location`.
    async fn create(&self, op: Operation, url: Url, body: Vec<u8>) -> Result<String, BackendError> {
        let resp = self.send(op, Method::POST, url, Some(body)).await?;
        let location = resp
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| BackendError::Protocol {
                operation: op.label(),
                message: "no Location header".into(),
            })?;
        location
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| BackendError::Protocol {
                operation: op.label(),
                message: "empty Location header".into(),
            })
    }

    async fn delete(&self, op: Operation, url: Url) -> Result<bool, BackendError> {
        match self.send(op, Method::DELETE, url, None).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Follows `next` links until the last page. `items` extracts a page's items and links.
    async fn list_all<P: DeserializeOwned, I>(
        &self,
        op: Operation,
        segments: &[&str],
        filter: Option<&str>,
        items: impl Fn(P) -> (Vec<I>, Vec<Link>),
    ) -> Result<Vec<I>, BackendError> {
        let mut out = Vec::new();
        let (mut offset, mut limit) = (0u64, u64::from(self.page_size));
        // A misbehaving server must not keep us paging forever.
        for _ in 0..10_000 {
            let mut url = self.url(segments);
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("offset", &offset.to_string())
                    .append_pair("limit", &limit.to_string());
                if let Some(f) = filter {
                    q.append_pair("filter", f);
                }
            }
            let page: P = self.get_json(op, url).await?;
            let (page_items, links) = items(page);
            out.extend(page_items);
            match next_page(&links, &self.api_base) {
                Some((next_offset, next_limit)) if next_offset > offset && next_limit > 0 => {
                    offset = next_offset;
                    limit = next_limit;
                }
                _ => return Ok(out),
            }
        }
        Err(BackendError::Protocol {
            operation: op.label(),
            message: "pagination did not end".into(),
        })
    }

    /// `name eq "..."`, or no filter when the name cannot be quoted (then every page is read and the
    /// match is done here; it is always re-checked here because the server's match may be looser).
    fn name_filter(name: &str) -> Option<String> {
        (!name.contains('"')).then(|| format!("name eq \"{name}\""))
    }

    async fn raw_jit(&self, idp_id: &str) -> Result<wire::JustInTimeProvisioning, BackendError> {
        self.get_json(
            Operation::GetJit,
            self.url(&["identity-providers", idp_id, "provisioning", "jit"]),
        )
        .await
    }
}

#[async_trait]
impl IdentityServer for AsgardeoClient {
    async fn check_access(&self) -> Result<ServerInfo, BackendError> {
        let token = self.token(None).await?;
        let mut url = self.url(&["identity-providers"]);
        url.query_pairs_mut().append_pair("limit", "1");
        let _: wire::IdentityProviderListResponse = self.get_json(Operation::ListIdps, url).await?;
        Ok(ServerInfo {
            tenant_url: self.tenant_url.as_str().trim_end_matches('/').to_owned(),
            granted_scopes: token.scopes,
        })
    }

    async fn find_idp_by_name(&self, name: &str) -> Result<Option<IdpSummary>, BackendError> {
        let filter = Self::name_filter(name);
        let all = self
            .list_all(
                Operation::ListIdps,
                &["identity-providers"],
                filter.as_deref(),
                |p: wire::IdentityProviderListResponse| (p.identity_providers, p.links),
            )
            .await?;
        Ok(all
            .into_iter()
            .find(|i| i.name == name)
            .map(|i| IdpSummary {
                id: i.id,
                name: i.name,
                is_enabled: i.is_enabled,
            }))
    }

    async fn get_idp(&self, id: &str) -> Result<Idp, BackendError> {
        let r: wire::IdentityProviderResponse = self
            .get_json(Operation::GetIdp, self.url(&["identity-providers", id]))
            .await?;
        let fa = r.federated_authenticators.unwrap_or_default();
        Ok(Idp {
            id: r.id,
            name: r.name,
            description: r.description,
            image: r.image,
            is_enabled: r.is_enabled,
            default_authenticator_id: fa.default_authenticator_id,
            authenticators: fa
                .authenticators
                .into_iter()
                .map(|a| super::AuthenticatorSummary {
                    id: a.authenticator_id,
                    name: a.name,
                    is_enabled: a.is_enabled,
                })
                .collect(),
            jit: r.provisioning.and_then(|p| p.jit).map(|j| Jit::from(&j)),
        })
    }

    async fn create_idp(&self, idp: &NewIdp) -> Result<String, BackendError> {
        let op = Operation::CreateIdp;
        let mut auth = authenticator_to_wire(&idp.authenticator);
        auth.is_default = Some(true);
        let req = wire::IdentityProviderPostRequest {
            name: idp.name.clone(),
            description: idp.description.clone(),
            image: idp.image.clone(),
            federated_authenticators: Some(wire::FederatedAuthenticatorRequest {
                default_authenticator_id: idp.authenticator.authenticator_id.clone(),
                authenticators: vec![auth],
            }),
            provisioning: idp.jit.as_ref().map(|j| wire::Provisioning {
                jit: Some(j.into()),
                outbound_connectors: None,
            }),
            ..Default::default()
        };
        self.create(
            op,
            self.url(&["identity-providers"]),
            Self::encode(op, &req)?,
        )
        .await
    }

    async fn patch_idp(&self, id: &str, ops: &[IdpPatch]) -> Result<(), BackendError> {
        let op = Operation::PatchIdp;
        if ops.is_empty() {
            return Ok(());
        }
        let body: Vec<wire::Patch> = ops
            .iter()
            .map(|p| {
                // The spec types `value` as a string; the server parses booleans from it.
                let (path, value) = match p {
                    IdpPatch::Name(v) => ("/name", v.clone()),
                    IdpPatch::Description(v) => ("/description", v.clone()),
                    IdpPatch::Image(v) => ("/image", v.clone()),
                    IdpPatch::Enabled(v) => ("/isEnabled", v.to_string()),
                };
                wire::Patch {
                    operation: wire::PatchOperation::Replace,
                    path: path.to_owned(),
                    value: Some(serde_json::Value::String(value)),
                }
            })
            .collect();
        self.send(
            op,
            Method::PATCH,
            self.url(&["identity-providers", id]),
            Some(Self::encode(op, &body)?),
        )
        .await?;
        Ok(())
    }

    async fn delete_idp(&self, id: &str) -> Result<bool, BackendError> {
        self.delete(Operation::DeleteIdp, self.url(&["identity-providers", id]))
            .await
    }

    async fn get_federated_authenticator(
        &self,
        idp_id: &str,
        authenticator_id: &str,
    ) -> Result<FederatedAuthenticator, BackendError> {
        let url = self.url(&[
            "identity-providers",
            idp_id,
            "federated-authenticators",
            authenticator_id,
        ]);
        let a: wire::FederatedAuthenticator = self
            .get_json(Operation::GetFederatedAuthenticator, url)
            .await?;
        Ok(authenticator_from_wire(a))
    }

    async fn update_federated_authenticator(
        &self,
        idp_id: &str,
        authenticator: &FederatedAuthenticator,
    ) -> Result<(), BackendError> {
        let op = Operation::UpdateFederatedAuthenticator;
        let url = self.url(&[
            "identity-providers",
            idp_id,
            "federated-authenticators",
            &authenticator.authenticator_id,
        ]);
        let body = Self::encode(op, &authenticator_to_wire(authenticator))?;
        self.send(op, Method::PUT, url, Some(body)).await?;
        Ok(())
    }

    async fn get_jit(&self, idp_id: &str) -> Result<Jit, BackendError> {
        Ok(Jit::from(&self.raw_jit(idp_id).await?))
    }

    async fn update_jit(&self, idp_id: &str, change: &JitChange) -> Result<Jit, BackendError> {
        let op = Operation::UpdateJit;
        // The PUT replaces the whole object: start from what the server has, change only what is declared.
        let mut jit = self.raw_jit(idp_id).await?;
        change.apply_to(&mut jit);
        if jit.is_enabled.is_none() {
            jit.is_enabled = Some(false);
        }
        let url = self.url(&["identity-providers", idp_id, "provisioning", "jit"]);
        let resp = self
            .send(op, Method::PUT, url, Some(Self::encode(op, &jit)?))
            .await?;
        let written: wire::JustInTimeProvisioning = if resp.body.is_empty() {
            jit
        } else {
            Self::decode(op, &resp.body)?
        };
        Ok(Jit::from(&written))
    }

    async fn connected_apps(&self, idp_id: &str) -> Result<Vec<String>, BackendError> {
        let apps = self
            .list_all(
                Operation::ConnectedApps,
                &["identity-providers", idp_id, "connected-apps"],
                None,
                |p: wire::ConnectedApps| (p.connected_apps, p.links),
            )
            .await?;
        Ok(apps.into_iter().map(|a| a.app_id).collect())
    }

    async fn find_application_by_name(
        &self,
        name: &str,
    ) -> Result<Option<ApplicationSummary>, BackendError> {
        let filter = Self::name_filter(name);
        let all = self
            .list_all(
                Operation::ListApplications,
                &["applications"],
                filter.as_deref(),
                |p: wire::ApplicationListResponse| (p.applications, p.links),
            )
            .await?;
        Ok(all
            .into_iter()
            .find(|a| a.name == name)
            .map(|a| ApplicationSummary {
                id: a.id,
                name: a.name,
                client_id: a.client_id,
            }))
    }

    async fn get_application(&self, id: &str) -> Result<Application, BackendError> {
        let r: wire::ApplicationResponseModel = self
            .get_json(Operation::GetApplication, self.url(&["applications", id]))
            .await?;
        Ok(Application {
            login_flow: flow_from_wire(r.authentication_sequence.as_ref()),
            id: r.id,
            name: r.name,
            description: r.description,
            client_id: r.client_id,
        })
    }

    async fn create_application(&self, app: &NewApplication) -> Result<String, BackendError> {
        let op = Operation::CreateApplication;
        let oidc = app.oidc.as_ref().map(|c| {
            let mut o = wire::OpenIdConnectConfiguration::default();
            apply_oidc_change(&mut o, c);
            wire::InboundProtocols {
                oidc: Some(o),
                extra: Default::default(),
            }
        });
        let req = wire::ApplicationModel {
            name: app.name.clone(),
            description: app.description.clone(),
            template_id: app.template_id.clone(),
            inbound_protocol_configuration: oidc,
            authentication_sequence: app.login_flow.as_ref().map(flow_to_wire),
            ..Default::default()
        };
        self.create(op, self.url(&["applications"]), Self::encode(op, &req)?)
            .await
    }

    async fn patch_application(
        &self,
        id: &str,
        patch: &ApplicationPatch,
    ) -> Result<(), BackendError> {
        let op = Operation::PatchApplication;
        let req = wire::ApplicationPatchModel {
            name: patch.name.clone(),
            description: patch.description.clone(),
            authentication_sequence: patch.login_flow.as_ref().map(flow_to_wire),
            ..Default::default()
        };
        if req == wire::ApplicationPatchModel::default() {
            return Ok(());
        }
        self.send(
            op,
            Method::PATCH,
            self.url(&["applications", id]),
            Some(Self::encode(op, &req)?),
        )
        .await?;
        Ok(())
    }

    async fn delete_application(&self, id: &str) -> Result<bool, BackendError> {
        self.delete(
            Operation::DeleteApplication,
            self.url(&["applications", id]),
        )
        .await
    }

    async fn get_oidc(&self, app_id: &str) -> Result<OidcSettings, BackendError> {
        let url = self.url(&["applications", app_id, "inbound-protocols", "oidc"]);
        let o: wire::OpenIdConnectConfiguration = self.get_json(Operation::GetOidc, url).await?;
        Ok(oidc_from_wire(o))
    }

    async fn update_oidc(
        &self,
        app_id: &str,
        change: &OidcChange,
    ) -> Result<OidcSettings, BackendError> {
        let op = Operation::UpdateOidc;
        let url = self.url(&["applications", app_id, "inbound-protocols", "oidc"]);
        // The PUT replaces the OAuth app: keep every field not managed here (token lifetimes, PKCE...).
        let mut current: wire::OpenIdConnectConfiguration =
            match self.get_json(Operation::GetOidc, url.clone()).await {
                Ok(c) => c,
                Err(BackendError::NotFound {
                    code: Some(code), ..
                }) if code == "APP-60502" => Default::default(),
                Err(e) => return Err(e),
            };
        apply_oidc_change(&mut current, change);
        let resp = self
            .send(op, Method::PUT, url, Some(Self::encode(op, &current)?))
            .await?;
        if resp.body.is_empty() {
            return self.get_oidc(app_id).await;
        }
        Ok(oidc_from_wire(Self::decode(op, &resp.body)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let a = Target::Asgardeo {
            organization: "acme".into(),
        }
        .tenant_url()
        .expect("url");
        assert_eq!(a.as_str(), "https://api.asgardeo.io/t/acme/");
        let w = Target::Wso2IdentityServer {
            url: "https://is.example:9443/".into(),
            tenant: "carbon.super".into(),
        }
        .tenant_url()
        .expect("url");
        assert_eq!(w.as_str(), "https://is.example:9443/t/carbon.super/");
        assert!(Target::Wso2IdentityServer {
            url: "ftp://x".into(),
            tenant: "t".into()
        }
        .tenant_url()
        .is_err());
        assert!(Target::Asgardeo {
            organization: String::new()
        }
        .tenant_url()
        .is_err());
    }

    #[test]
    fn next_link_offsets() {
        let base = Url::parse("http://h/t/x/api/server/v1/").expect("url");
        let links = vec![
            Link {
                href: "/t/x/api/server/v1/identity-providers?offset=0&limit=2".into(),
                rel: "previous".into(),
            },
            Link {
                href: "/t/x/api/server/v1/identity-providers?offset=4&limit=2&filter=a".into(),
                rel: "next".into(),
            },
        ];
        assert_eq!(next_page(&links, &base), Some((4, 2)));
        assert_eq!(next_page(&links[..1], &base), None);
    }

    #[test]
    fn flows_go_out_user_defined_with_ids_one_to_n_and_no_script_unless_managed() {
        let flow = FlowUpdate {
            steps: vec![
                FlowStep {
                    options: vec![FlowOption::federated("Google", "GoogleOIDCAuthenticator")],
                },
                FlowStep {
                    options: vec![FlowOption::local("totp")],
                },
            ],
            ..Default::default()
        };
        let v = serde_json::to_value(flow_to_wire(&flow)).expect("json");
        assert_eq!(v["type"], "USER_DEFINED");
        assert_eq!(v["steps"][0]["id"], 1);
        assert_eq!(v["steps"][1]["id"], 2);
        assert_eq!(v["steps"][0]["options"][0]["idp"], "Google");
        assert!(v.get("script").is_none());
        let back = flow_from_wire(Some(&flow_to_wire(&flow)));
        assert_eq!(back.kind, FlowKind::UserDefined);
        assert_eq!(back.steps, flow.steps);
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            ..Default::default()
        };
        for attempt in 1..10 {
            let b = p.backoff(attempt);
            assert!(b <= Duration::from_millis(400), "{b:?}");
        }
        assert!(p.backoff(1) >= Duration::from_millis(50));
        assert!(p.backoff(5) >= Duration::from_millis(200));
    }
}
