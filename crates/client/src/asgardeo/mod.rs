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
mod convert;
mod server;
mod transport;

use convert::*;
use transport::*;

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
