//! [`IdentityServer`] over the Asgardeo / WSO2 Identity Server management REST API.
//!
//! - Base URL `https://api.asgardeo.io/t/{org}` (Asgardeo) or `{url}/t/{tenant}` (WSO2 IS, or the
//!   emulator over `http://`); API under `/api/server/v1`, token at `/oauth2/token`.
//! - TLS through rustls with the ring provider (the one kube uses); certificate verification is always
//!   on; an extra CA bundle can be added for self-hosted servers.
//! - OAuth2 client_credentials with HTTP Basic client authentication and exactly the configured scopes;
//!   one cached token per client ([`super::token`]); a 401 triggers one re-authentication and retry.
//! - Retries with exponential backoff and jitter on 5xx, timeouts and connection errors; a 429
//!   pauses every request of the client for `Retry-After` ([`super::ratelimit::Budget`]), and every
//!   request takes a token of the backend's request budget first. POSTs that create objects are retried only when the request cannot have reached
//!   the server (connection refused) or on 429: a blind retry after a 5xx or timeout could create a
//!   duplicate, and the controllers recover from that case by looking the object up by name.
//! - At most `max_concurrency` requests in flight per client; lists are followed through every page,
//!   up to [`MAX_LIST_PAGES`] pages and [`MAX_LIST_BYTES`] bytes in all.
//! - Limits against a hostile or broken server: every attempt has a timeout (connect, headers and
//!   body), and a timeout is retried at most once per call and not at all while the server is
//!   degraded ([`super::health`]), so a tarpit costs one timeout per call, not four; response
//!   bodies are capped while streaming ([`AsgardeoConfig::max_body_bytes`]), `expires_in` and
//!   `Retry-After` are clamped ([`TOKEN_LIFETIME_RANGE`], [`MAX_RETRY_AFTER`]) so that no value
//!   overflows an `Instant`, panics, or parks an object for months. Timeouts and exceeded caps are
//!   recorded in the client's [`Health`], which the controllers use to slow that backend alone.
//! - Redirects are never followed ([`reqwest::redirect::Policy::none`]): a 3xx is an error. A
//!   followed redirect would send the bearer token (or, from the token endpoint, the client
//!   credentials of a re-POST) to wherever the server points.
//! - The target URL never carries credentials (`user:pass@` is refused) and plain `http://` is only
//!   accepted for loopback hosts unless [`AsgardeoConfig::allow_insecure_http`] is set.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use super::health::{Health, Misbehaviour};
use super::metrics::BackendMetrics;
use super::operation::{Operation, SCRIPT_SCOPE, SECRET_VIEW_SCOPE};
use super::ratelimit::{Budget, Limit};
use super::token::{CachedToken, TokenCache};
use super::wire::{self, ErrorBody, Link};
use super::{
    Application, ApplicationPatch, ApplicationSummary, BackendError, FederatedAuthenticator,
    FlowKind, FlowOption, FlowStep, FlowUpdate, IdentityServer, Idp, IdpMappings, IdpPatch,
    IdpSummary, Jit, JitChange, LoginFlow, MappingsChange, NewApplication, NewIdp, OidcChange,
    OidcSettings, Secret, ServerInfo,
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
        // The URL is never echoed in an error: it may hold credentials.
        let mut url = Url::parse(base)
            .map_err(|e| BackendError::Config(format!("invalid server URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") || url.cannot_be_a_base() {
            return Err(BackendError::Config(
                "server URL must be http:// or https://".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(BackendError::Config(
                "server URL must not carry credentials (user:pass@): put them in the credentials Secret"
                    .into(),
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

/// True for `localhost` and loopback IP addresses: the only hosts plain `http://` is accepted for
/// without an explicit opt-in (a token and client secret must not cross a network in clear text).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The range an access token's `expires_in` is clamped to: at least a second (a zero lifetime would
/// fetch a token per request), at most a day (beyond that `Instant` arithmetic could overflow, and no
/// real server issues such tokens).
pub const TOKEN_LIFETIME_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(24 * 3600));

/// The longest `Retry-After` the client believes: a server asking for more (or for a date months
/// away) gets this, so a requeue never parks an object for longer.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// Default cap on a response body. The largest real answers (a page of 50 applications) are tens of
/// kilobytes; a server sending more is broken or hostile and must not exhaust memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Most pages one list call follows. At the default page size of 50 that is 20 000 objects, more
/// than any tenant the operator manages; a server whose `next` links go on is broken or hostile.
pub const MAX_LIST_PAGES: usize = 400;

/// Most bytes of response bodies one list call reads, all pages together (each page is refused
/// while streaming once it would exceed what is left). 8 MiB is ~40 000 list entries; with
/// several lists in flight per backend it stays well under the chart's 256 MiB memory limit.
pub const MAX_LIST_BYTES: usize = 8 * 1024 * 1024;

/// Server codes that are a final "no" whatever HTTP status carries them: retrying cannot help.
/// `IDP-65004` (`ERROR_CODE_DELETE_IDP`) is thrown by carbon-identity-framework
/// `IdPManagementDAO`/`CacheBackedIdPMgtDAO.deleteIdPByResourceId` as a client exception when the
/// IdP "cannot be deleted as it is referred by Service Providers"; identity-api-server's
/// `handleIdPException` makes it a 400, but an error-mapping layer in front may turn it into 409 or
/// 500, and a 500 must not be retried forever.
pub const DEFINITE_REFUSAL_CODES: &[&str] = &["IDP-65004"];

/// Text of carbon-identity-framework's `ApplicationIdentityProviderMgtListener` refusals ("Error in
/// disabling identity provider as it is referred by service providers.", "{authenticator} is
/// referred by service providers."). They are plain exceptions, served as 500 with a generic update
/// code, so the description is the only sign that retrying cannot help.
const REFERRED_BY_APPS: &str = "referred by service providers";

/// True when an error body is a final refusal whatever its status (see [`DEFINITE_REFUSAL_CODES`]).
fn definite_refusal(code: Option<&str>, description: Option<&str>) -> bool {
    code.is_some_and(|c| DEFINITE_REFUSAL_CODES.contains(&c))
        || description.is_some_and(|d| d.to_lowercase().contains(REFERRED_BY_APPS))
}

/// `APP-60502`: the application has no OIDC inbound configuration. identity-api-server builds it
/// as a 400 in the handler; a 404 is accepted as well (see [`BackendError::NotFound`]).
const OIDC_NOT_CONFIGURED: &str = "APP-60502";

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
    /// Scopes requested with the token. Default: [`Operation::needed_scopes`] (the eight
    /// IdP/application scopes plus the client-secret view scope); add [`SCRIPT_SCOPE`] only when
    /// scripts are managed.
    pub scopes: Vec<String>,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// The request budget, token endpoint included (see [`super::ratelimit`]).
    pub limit: Limit,
    /// The IdentityBackend as `namespace/name`: the label of its budget metrics.
    pub name: String,
    /// A budget to share instead of a new one for `limit`: the registry keeps one per backend, so
    /// a client rebuilt (new Secret, new spec) neither forgets a 429 pause nor starts a new burst.
    pub budget: Option<Arc<Budget>>,
    /// Timeout of one attempt.
    pub request_timeout: Duration,
    /// Page size asked of list endpoints.
    pub page_size: u32,
    /// Accept plain `http://` for a host that is not loopback (an emulator inside the cluster).
    pub allow_insecure_http: bool,
    /// Largest response body read; a larger one fails the call as a protocol error.
    pub max_body_bytes: usize,
    /// Where timeouts and exceeded caps are recorded (shared with the controllers, which slow a
    /// degraded backend down; kept across client rebuilds by the registry).
    pub health: Arc<Health>,
}

impl AsgardeoConfig {
    /// A configuration with defaults for everything but target and credentials.
    pub fn new(target: Target, client_id: impl Into<String>, client_secret: Secret) -> Self {
        Self {
            target,
            client_id: client_id.into(),
            client_secret,
            ca_bundle_pem: None,
            scopes: Operation::needed_scopes()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            retry: RetryPolicy::default(),
            max_concurrency: 8,
            limit: Limit::Unlimited,
            name: String::new(),
            budget: None,
            request_timeout: Duration::from_secs(30),
            page_size: 50,
            allow_insecure_http: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            health: Arc::default(),
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
    max_body_bytes: usize,
    health: Arc<Health>,
    request_timeout: Duration,
    permits: tokio::sync::Semaphore,
    budget: Arc<Budget>,
    tokens: TokenCache,
    metrics: Option<Arc<BackendMetrics>>,
    /// What the server said of each authenticator's confidential properties (authenticator id →
    /// keys): asked once per client, since it changes only with a server upgrade.
    confidential: std::sync::Mutex<std::collections::HashMap<String, super::Confidential>>,
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

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), clamped to
/// [`MAX_RETRY_AFTER`]; a date in the past means "now".
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs.min(MAX_RETRY_AFTER.as_secs())),
        Err(_) => {
            let at = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
            let secs = at
                .as_second()
                .saturating_sub(jiff::Timestamp::now().as_second());
            Duration::from_secs(u64::try_from(secs).unwrap_or(0))
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Token lifetime from `expires_in`, clamped to [`TOKEN_LIFETIME_RANGE`].
fn token_lifetime(expires_in: u64) -> Duration {
    let (min, max) = TOKEN_LIFETIME_RANGE;
    Duration::from_secs(expires_in.clamp(min.as_secs(), max.as_secs()))
}

/// Why a body could not be read.
enum BodyError {
    Transport(reqwest::Error),
    TooLarge,
}

/// Reads a body to the end, refusing more than `cap` bytes (checked against Content-Length first,
/// then while streaming, since a hostile server may lie or send none).
async fn read_body(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(cap).unwrap_or(u64::MAX))
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large(op: Operation, cap: usize, server: &Url) -> BackendError {
    BackendError::Protocol {
        operation: op.label(),
        message: format!(
            "response body from {} larger than {cap} bytes; refused while reading",
            server.as_str().trim_end_matches('/')
        ),
    }
}

/// A 3xx answer: never followed (see the module comment), reported so the user can fix the URL.
fn redirected(op: Operation, status: StatusCode, server: &Url) -> BackendError {
    BackendError::Protocol {
        operation: op.label(),
        message: format!(
            "{} answered HTTP {} (a redirect); redirects are not followed, so that a token or client secret never goes to another host: point the IdentityBackend at the server's final URL",
            server.as_str().trim_end_matches('/'),
            status.as_u16()
        ),
    }
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

/// The item named `name`: an exact match first, else one that differs only in case. Servers whose
/// database collation is case-insensitive (uncertain for Asgardeo, see asgardeo-api.md) treat
/// "Google" and "google" as the same name, so such an item is the one a create would clash with.
fn pick_by_name<T>(items: Vec<T>, name: &str, name_of: impl Fn(&T) -> &String) -> Option<T> {
    let exact = items.iter().position(|i| name_of(i) == name);
    let pos = exact.or_else(|| {
        items
            .iter()
            .position(|i| name_of(i).to_lowercase() == name.to_lowercase())
    })?;
    items.into_iter().nth(pos)
}

/// `APP-60502` (OIDC not configured) comes as 400 from the handler that builds it; some paths or
/// versions may send 404. Both become [`BackendError::NotFound`] with the code kept.
fn not_configured_as_not_found(e: BackendError) -> BackendError {
    match e {
        BackendError::Invalid { code, trace_id, .. }
            if code.as_deref() == Some(OIDC_NOT_CONFIGURED) =>
        {
            BackendError::NotFound {
                resource: resource(Operation::GetOidc),
                code,
                trace_id,
            }
        }
        e => e,
    }
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
        if tenant_url.scheme() == "http" && !config.allow_insecure_http && !is_loopback(&tenant_url)
        {
            return Err(BackendError::Config(
                "plain http:// is only accepted for loopback hosts; use https://, or set allowInsecureHTTP for a server inside the cluster"
                    .into(),
            ));
        }
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
            .redirect(reqwest::redirect::Policy::none())
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
            max_body_bytes: config.max_body_bytes.max(1),
            health: config.health,
            request_timeout: config.request_timeout,
            permits: tokio::sync::Semaphore::new(config.max_concurrency.max(1)),
            budget: config.budget.unwrap_or_else(|| {
                Arc::new(Budget::new(
                    config.limit,
                    metrics
                        .as_ref()
                        .map(|m| m.budget(&config.name, config.limit.per_minute()))
                        .unwrap_or_default(),
                ))
            }),
            tokens: TokenCache::default(),
            metrics,
            confidential: Default::default(),
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
        let was_degraded = self.health.is_degraded();
        let mut timeouts = 0;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.take_budget().await?;
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
                    let again = self.note_timeout(op, &e, &mut timeouts, was_degraded);
                    if again && attempt < self.retry.max_attempts {
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
            let body = match read_body(resp, self.max_body_bytes).await {
                Ok(b) => b,
                Err(BodyError::TooLarge) => {
                    self.observe(op, Some(status), started);
                    let e = too_large(op, self.max_body_bytes, &self.tenant_url);
                    self.health.record(Misbehaviour::Oversized, e.to_string());
                    return Err(e);
                }
                // A cut-off error body still tells the status; a cut-off success is retried below.
                Err(BodyError::Transport(_)) if !status.is_success() => Vec::new(),
                Err(BodyError::Transport(e)) => {
                    self.observe(op, None, started);
                    let again = self.note_timeout(op, &e, &mut timeouts, was_degraded);
                    if again && attempt < self.retry.max_attempts {
                        tokio::time::sleep(self.retry.backoff(attempt)).await;
                        continue;
                    }
                    return Err(BackendError::Transient {
                        status: Some(status.as_u16()),
                        message: format!("token endpoint {}", describe(&e)),
                        attempts: attempt,
                        code: None,
                        trace_id: None,
                    });
                }
            };
            self.observe(op, Some(status), started);
            if status.is_redirection() {
                return Err(redirected(op, status, &self.tenant_url));
            }
            if status.is_success() {
                self.health.record_ok();
                let t: wire::TokenResponse =
                    serde_json::from_slice(&body).map_err(|e| BackendError::Protocol {
                        operation: op.label(),
                        message: format!("token response is not valid JSON: {e}"),
                    })?;
                if let Some(m) = &self.metrics {
                    m.token_refreshes.inc();
                }
                // RFC 6749 §5.1: `scope` may be left out when it equals the request. Asgardeo sends
                // it, and drops requested scopes the M2M app is not authorized for.
                let scopes = match t.scope {
                    Some(granted) => granted.split_whitespace().map(str::to_owned).collect(),
                    None => self.scopes.clone(),
                };
                return Ok(CachedToken::new(
                    t.access_token,
                    token_lifetime(t.expires_in),
                    scopes,
                ));
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = self.rate_limited(&headers, attempt);
                if attempt < self.retry.max_attempts && wait <= self.retry.max_retry_after {
                    continue;
                }
                return Err(BackendError::RateLimited {
                    retry_after: Some(wait),
                });
            }
            if status.is_server_error() {
                if attempt < self.retry.max_attempts {
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    continue;
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

    /// Waits for a token of the backend's budget; fails without sending while a 429 pauses the
    /// backend for longer than the client waits in-line (the caller requeues after it).
    async fn take_budget(&self) -> Result<(), BackendError> {
        self.budget
            .acquire(self.retry.max_retry_after)
            .await
            .map_err(|left| BackendError::RateLimited {
                retry_after: Some(left),
            })
    }

    /// A 429: pauses every request of this backend (not only this one) for the server's
    /// `Retry-After`, or the retry backoff when it sent none, and returns that wait. The retry
    /// then goes through the budget like any request, behind the pause.
    fn rate_limited(&self, headers: &HeaderMap, attempt: u32) -> Duration {
        let wait = retry_after(headers).unwrap_or_else(|| self.retry.backoff(attempt));
        self.budget.pause(wait);
        wait
    }

    /// Sends one API request with token handling, retries, rate limiting and concurrency bound.
    async fn send(
        &self,
        op: Operation,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<Resp, BackendError> {
        self.send_capped(op, method, url, body, None).await
    }

    /// Records a timeout in [`Health`] and says whether the attempt may be repeated: a timeout is
    /// retried once per call, and not at all when the server was already degraded when the call
    /// began (a tarpit then costs one timeout per call, and slots are freed for other backends).
    fn note_timeout(
        &self,
        op: Operation,
        e: &reqwest::Error,
        timeouts: &mut u32,
        was_degraded: bool,
    ) -> bool {
        if !e.is_timeout() {
            return true;
        }
        *timeouts += 1;
        self.health.record(
            Misbehaviour::Timeout,
            format!(
                "{} at {} got no answer within {:?}",
                op.label(),
                self.tenant_url.as_str().trim_end_matches('/'),
                self.request_timeout
            ),
        );
        !was_degraded && *timeouts < 2
    }

    /// [`Self::send`]; `list_left`: a page of a list, which may read only what is left of the
    /// list's [`MAX_LIST_BYTES`] (refused while streaming, as any body over the cap).
    async fn send_capped(
        &self,
        op: Operation,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        list_left: Option<usize>,
    ) -> Result<Resp, BackendError> {
        let cap = list_left.map_or(self.max_body_bytes, |l| l.min(self.max_body_bytes));
        // Creating twice is worse than failing once: see the module comment.
        let may_retry_after_send = method != Method::POST;
        let was_degraded = self.health.is_degraded();
        let mut timeouts = 0;
        let mut attempt = 0;
        let mut reauthenticated = false;
        let mut stale: Option<Secret> = None;
        loop {
            attempt += 1;
            let token = self.token(stale.take().as_ref()).await?;
            self.take_budget().await?;
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
                    match read_body(r, cap).await {
                        Ok(b) => Ok((status, headers, b)),
                        Err(BodyError::Transport(e)) => Err(e),
                        Err(BodyError::TooLarge) => {
                            drop(permit);
                            self.observe(op, Some(status), started);
                            // Said as the list's cap when it is the whole list that grew too big.
                            if cap < self.max_body_bytes {
                                return Err(self.list_too_large(op));
                            }
                            let e = too_large(op, cap, &self.tenant_url);
                            self.health.record(Misbehaviour::Oversized, e.to_string());
                            return Err(e);
                        }
                    }
                }
                Err(e) => Err(e),
            };
            drop(permit);
            let (status, headers, bytes) = match sent {
                Ok(ok) => ok,
                Err(e) => {
                    self.observe(op, None, started);
                    let safe = e.is_connect() || may_retry_after_send;
                    let again = self.note_timeout(op, &e, &mut timeouts, was_degraded);
                    if safe && again && attempt < self.retry.max_attempts {
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
            if status.is_redirection() {
                return Err(redirected(op, status, &self.tenant_url));
            }
            self.health.record_ok();
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
                let wait = self.rate_limited(&headers, attempt);
                if attempt < self.retry.max_attempts && wait <= self.retry.max_retry_after {
                    continue;
                }
                return Err(BackendError::RateLimited {
                    retry_after: Some(wait),
                });
            }
            let refused =
                definite_refusal(err_body.code.as_deref(), err_body.description.as_deref());
            if status.is_server_error() && !refused {
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
        let refused = definite_refusal(code.as_deref(), description.as_deref());
        match status {
            // Whatever status a proxy or mapping layer chose (409 would otherwise read as a
            // duplicate, 5xx as transient), this code is a final refusal.
            _ if refused => BackendError::Invalid {
                status: status.as_u16(),
                code,
                message,
                description,
                trace_id,
            },
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

    /// `Ok(true)` on 2xx (the real server also answers 204 for an id it does not know:
    /// carbon-identity-framework `deleteIdPByResourceId` only logs "not found" and returns), `Ok(false)`
    /// on 404.
    async fn delete(&self, op: Operation, url: Url) -> Result<bool, BackendError> {
        match self.send(op, Method::DELETE, url, None).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Follows `next` links until the last page. `items` extracts a page's items and links.
    pub(super) async fn list_all<P: DeserializeOwned, I>(
        &self,
        op: Operation,
        segments: &[&str],
        filter: Option<&str>,
        items: impl Fn(P) -> (Vec<I>, Vec<Link>),
    ) -> Result<Vec<I>, BackendError> {
        let mut out = Vec::new();
        let (mut offset, mut limit) = (0u64, u64::from(self.page_size));
        let mut left = MAX_LIST_BYTES;
        // A misbehaving server must not keep us paging forever, nor fill memory page by page.
        for _ in 0..MAX_LIST_PAGES {
            let mut url = self.url(segments);
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("offset", &offset.to_string())
                    .append_pair("limit", &limit.to_string());
                if let Some(f) = filter {
                    q.append_pair("filter", f);
                }
            }
            let resp = self
                .send_capped(op, Method::GET, url, None, Some(left))
                .await?;
            left = left.saturating_sub(resp.body.len());
            let page: P = Self::decode(op, &resp.body)?;
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
        let message = format!(
            "the list from {} did not end within {MAX_LIST_PAGES} pages (MAX_LIST_PAGES); refusing to read further",
            self.tenant_url.as_str().trim_end_matches('/')
        );
        self.health
            .record(Misbehaviour::TooManyPages, message.clone());
        Err(BackendError::Protocol {
            operation: op.label(),
            message,
        })
    }

    fn list_too_large(&self, op: Operation) -> BackendError {
        let message = format!(
            "the list from {} is larger than {MAX_LIST_BYTES} bytes over all pages (MAX_LIST_BYTES); refused while reading",
            self.tenant_url.as_str().trim_end_matches('/')
        );
        self.health.record(Misbehaviour::Oversized, message.clone());
        BackendError::Protocol {
            operation: op.label(),
            message,
        }
    }

    /// `name eq "..."`, or no filter when the name cannot be quoted (then every page is read and the
    /// match is done here; it is always re-checked here because the server's match may be looser).
    fn name_filter(name: &str) -> Option<String> {
        (!name.contains('"')).then(|| format!("name eq \"{name}\""))
    }

    /// PUTs `body` and returns the server's answer (what was sent when the answer has no body).
    async fn put_json<T>(&self, op: Operation, path: &[&str], body: T) -> Result<T, BackendError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let resp = self
            .send(
                op,
                Method::PUT,
                self.url(path),
                Some(Self::encode(op, &body)?),
            )
            .await?;
        if resp.body.is_empty() {
            return Ok(body);
        }
        Self::decode(op, &resp.body)
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
        let mut url = self.url(&["identity-providers"]);
        url.query_pairs_mut().append_pair("limit", "1");
        let _: wire::IdentityProviderListResponse = self.get_json(Operation::ListIdps, url).await?;
        // The token the read went through (a 401 on the way replaces it): its scopes are current.
        let token = self.token(None).await?;
        let missing_scopes = self
            .scopes
            .iter()
            .filter(|s| !token.scopes.contains(s))
            .cloned()
            .collect();
        Ok(ServerInfo {
            tenant_url: self.tenant_url.as_str().trim_end_matches('/').to_owned(),
            granted_scopes: token.scopes,
            missing_scopes,
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
        Ok(pick_by_name(all, name, |i| &i.name).map(|i| IdpSummary {
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
            certificate: Box::new(
                r.certificate
                    .map(super::IdpCertificate::from)
                    .unwrap_or_default(),
            ),
            mappings: Box::new(IdpMappings::from_wire(
                r.claims.as_ref(),
                r.roles.as_ref(),
                r.groups.as_deref(),
            )),
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
            certificate: wire::Certificate::of(
                idp.jwks_uri.as_deref(),
                idp.saml_metadata_uri.as_deref(),
                &idp.certificates,
            ),
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
                let replace = wire::PatchOperation::Replace;
                let (operation, path, value) = match p {
                    IdpPatch::Name(v) => (replace, "/name", v.clone()),
                    IdpPatch::Description(v) => (replace, "/description", v.clone()),
                    IdpPatch::Image(v) => (replace, "/image", v.clone()),
                    IdpPatch::Enabled(v) => (replace, "/isEnabled", v.to_string()),
                    IdpPatch::AddJwksUri(v) => {
                        (wire::PatchOperation::Add, "/certificate/jwksUri", v.clone())
                    }
                    IdpPatch::JwksUri(v) => (replace, "/certificate/jwksUri", v.clone()),
                    IdpPatch::AddSamlMetadataUri(v) => (
                        wire::PatchOperation::Add,
                        "/certificate/samlMetadataUri",
                        v.clone(),
                    ),
                    IdpPatch::SamlMetadataUri(v) => {
                        (replace, "/certificate/samlMetadataUri", v.clone())
                    }
                    IdpPatch::AddCertificate(i, pem) => {
                        return wire::Patch {
                            operation: wire::PatchOperation::Add,
                            path: format!("/certificate/certificates/{i}"),
                            value: Some(serde_json::Value::String(pem.clone())),
                        }
                    }
                    IdpPatch::RemoveCertificate(i) => {
                        return wire::Patch {
                            operation: wire::PatchOperation::Remove,
                            path: format!("/certificate/certificates/{i}"),
                            value: None,
                        }
                    }
                };
                wire::Patch {
                    operation,
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

    async fn confidential_properties(
        &self,
        authenticator_id: &str,
    ) -> Result<super::Confidential, BackendError> {
        let cached = self
            .confidential
            .lock()
            .map_err(|_| BackendError::Config("confidential-properties cache poisoned".into()))?
            .get(authenticator_id)
            .cloned();
        if let Some(c) = cached {
            return Ok(c);
        }
        let op = Operation::GetAuthenticatorMeta;
        let url = self.url(&[
            "identity-providers",
            "meta",
            "federated-authenticators",
            authenticator_id,
        ]);
        // identity-api-server's getMetaFederatedAuthenticator answers 200 with no entity for an
        // authenticator it does not know, and 400 for an id that is not base64url: both, and a
        // server without the endpoint or the scope, mean "use the explicit table". A transient
        // failure is not cached: the next pass asks again.
        let answer = match self.send(op, Method::GET, url, None).await {
            Ok(resp) if resp.body.iter().all(u8::is_ascii_whitespace) => {
                super::Confidential::fallback(authenticator_id)
            }
            Ok(resp) => match Self::decode::<wire::MetaFederatedAuthenticator>(op, &resp.body) {
                Ok(meta) if !meta.properties.is_empty() => super::Confidential::from_meta(&meta),
                _ => super::Confidential::fallback(authenticator_id),
            },
            Err(
                BackendError::NotFound { .. }
                | BackendError::Invalid { .. }
                | BackendError::Forbidden { .. },
            ) => super::Confidential::fallback(authenticator_id),
            Err(e) => return Err(e),
        };
        if let Ok(mut cache) = self.confidential.lock() {
            cache.insert(authenticator_id.to_string(), answer.clone());
        }
        Ok(answer)
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

    async fn update_mappings(
        &self,
        idp_id: &str,
        change: &MappingsChange,
    ) -> Result<IdpMappings, BackendError> {
        // Each PUT replaces its whole object: read it, replace the declared fields, write it. The
        // three are independent: one the server refuses does not hold back the others, and the
        // first refusal is returned after all were tried.
        let mut first_error = None;
        let mut keep = |r: Result<(), BackendError>| {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        };
        let (mut claims, mut roles, mut groups) = (None, None, None);
        if change.touches_claims() {
            keep(
                async {
                    let path = ["identity-providers", idp_id, "claims"];
                    let server: wire::Claims =
                        self.get_json(Operation::GetClaims, self.url(&path)).await?;
                    if let Some(body) = change.claims_body(&server) {
                        claims = Some(self.put_json(Operation::UpdateClaims, &path, body).await?);
                    }
                    Ok(())
                }
                .await,
            );
        }
        if change.role_mappings.is_some() {
            keep(
                async {
                    let path = ["identity-providers", idp_id, "roles"];
                    let server: wire::Roles =
                        self.get_json(Operation::GetRoles, self.url(&path)).await?;
                    if let Some(body) = change.roles_body(&server) {
                        roles = Some(self.put_json(Operation::UpdateRoles, &path, body).await?);
                    }
                    Ok(())
                }
                .await,
            );
        }
        if change.groups.is_some() {
            keep(
                async {
                    let path = ["identity-providers", idp_id, "groups"];
                    let server: Vec<wire::IdpGroup> =
                        self.get_json(Operation::GetGroups, self.url(&path)).await?;
                    if let Some(body) = change.groups_body(&server) {
                        groups = Some(self.put_json(Operation::UpdateGroups, &path, body).await?);
                    }
                    Ok(())
                }
                .await,
            );
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        // The parts not written are not read again: the result carries only what was written.
        Ok(IdpMappings::from_wire(
            claims.as_ref(),
            roles.as_ref(),
            groups.as_deref(),
        ))
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
        Ok(
            pick_by_name(all, name, |a| &a.name).map(|a| ApplicationSummary {
                id: a.id,
                name: a.name,
                client_id: a.client_id,
            }),
        )
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
        let o: wire::OpenIdConnectConfiguration = self
            .get_json(Operation::GetOidc, url)
            .await
            .map_err(not_configured_as_not_found)?;
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
        let (mut current, configured): (wire::OpenIdConnectConfiguration, bool) = match self
            .get_json(Operation::GetOidc, url.clone())
            .await
            .map_err(not_configured_as_not_found)
        {
            Ok(c) => (c, true),
            Err(e) if e.server_code() == Some(OIDC_NOT_CONFIGURED) => (Default::default(), false),
            Err(e) => return Err(e),
        };
        // The server refuses an update whose clientId / clientSecret differ from the stored ones
        // (identity-api-server `OAuthInboundFunctions.putOAuthInbound`: 400 "Invalid ClientSecret
        // provided for update."), and newer servers hide the secret from tokens without the
        // secret-view scope. Without it the PUT cannot succeed: say which scope is missing rather
        // than send a request that is bound to fail (or, on a lenient server, blank the secret).
        if configured
            && !current.public_client.unwrap_or(false)
            && current.client_secret.as_ref().is_none_or(|s| s.is_empty())
        {
            let token = self.token(None).await?;
            if !token.scopes.iter().any(|s| s == SECRET_VIEW_SCOPE) {
                return Err(BackendError::Forbidden {
                    missing_scope: Some(SECRET_VIEW_SCOPE.to_owned()),
                    code: None,
                    trace_id: None,
                });
            }
        }
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
    fn not_configured_maps_400_and_404_alike() {
        let as_400 = BackendError::Invalid {
            status: 400,
            code: Some(OIDC_NOT_CONFIGURED.into()),
            message: None,
            description: None,
            trace_id: Some("t".into()),
        };
        let as_404 = BackendError::NotFound {
            resource: "application",
            code: Some(OIDC_NOT_CONFIGURED.into()),
            trace_id: None,
        };
        for e in [as_400, as_404] {
            let e = not_configured_as_not_found(e);
            assert!(e.is_not_found(), "{e:?}");
            assert_eq!(e.server_code(), Some(OIDC_NOT_CONFIGURED));
        }
        let other = not_configured_as_not_found(BackendError::Invalid {
            status: 400,
            code: Some("APP-60001".into()),
            message: None,
            description: None,
            trace_id: None,
        });
        assert!(!other.is_not_found());
    }

    #[test]
    fn refusals_are_recognised_whatever_the_status() {
        let cases = [
            (Some("IDP-65004"), None, true),
            (
                Some("IDP-65005"),
                Some(
                    "Error in disabling identity provider as it is referred by service providers.",
                ),
                true,
            ),
            (
                Some("IDP-65005"),
                Some("GoogleOIDCAuthenticator is referred by service providers."),
                true,
            ),
            (Some("IDP-65001"), Some("database down"), false),
            (None, None, false),
        ];
        for (code, description, want) in cases {
            assert_eq!(
                definite_refusal(code, description),
                want,
                "{code:?} {description:?}"
            );
        }
    }

    #[test]
    fn hostile_numbers_are_clamped() {
        let (min, max) = TOKEN_LIFETIME_RANGE;
        for (expires_in, want) in [
            (0, min),
            (1, min),
            (3600, Duration::from_secs(3600)),
            (u64::MAX, max),
        ] {
            assert_eq!(token_lifetime(expires_in), want, "{expires_in}");
        }
        let header = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, v.parse().expect("header"));
            retry_after(&h)
        };
        assert_eq!(header("7"), Some(Duration::from_secs(7)));
        assert_eq!(header("18446744073709551615"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            header("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(
            header("Fri, 01 Jan 2100 00:00:00 GMT"),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(header("soon"), None);
    }

    #[test]
    fn loopback_hosts() {
        for (url, want) in [
            ("http://localhost:1/", true),
            ("http://127.0.0.1:1/", true),
            ("http://127.8.9.1/", true),
            ("http://[::1]:80/", true),
            ("http://10.0.0.1/", false),
            ("http://emulator.identity.svc:8080/", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(url).expect("url")), want, "{url}");
        }
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
