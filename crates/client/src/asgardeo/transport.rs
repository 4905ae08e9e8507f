//! The transport: tokens, the request budget, retries and backoff, body and list caps, error
//! bodies turned into [`BackendError`]s, and the JSON helpers every operation uses.

use super::*;

/// A response read to the end.
pub(crate) struct Resp {
    /// The response headers.
    pub(crate) headers: HeaderMap,
    /// The body, read to the end (within the cap).
    pub(crate) body: Vec<u8>,
}

/// The root cause of a transport error, without the URL (short, and free of ids).
pub(crate) fn describe(e: &reqwest::Error) -> String {
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
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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
pub(crate) fn token_lifetime(expires_in: u64) -> Duration {
    let (min, max) = TOKEN_LIFETIME_RANGE;
    Duration::from_secs(expires_in.clamp(min.as_secs(), max.as_secs()))
}

/// Why a body could not be read.
pub(crate) enum BodyError {
    Transport(reqwest::Error),
    TooLarge,
}

/// Reads a body to the end, refusing more than `cap` bytes (checked against Content-Length first,
/// then while streaming, since a hostile server may lie or send none).
pub(crate) async fn read_body(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
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

pub(crate) fn too_large(op: Operation, cap: usize, server: &Url) -> BackendError {
    BackendError::Protocol {
        operation: op.label(),
        message: format!(
            "response body from {} larger than {cap} bytes; refused while reading",
            server.as_str().trim_end_matches('/')
        ),
    }
}

/// A 3xx answer: never followed (see the module comment), reported so the user can fix the URL.
pub(crate) fn redirected(op: Operation, status: StatusCode, server: &Url) -> BackendError {
    BackendError::Protocol {
        operation: op.label(),
        message: format!(
            "{} answered HTTP {} (a redirect); redirects are not followed, so that a token or client secret never goes to another host: point the IdentityBackend at the server's final URL",
            server.as_str().trim_end_matches('/'),
            status.as_u16()
        ),
    }
}

pub(crate) fn resource(op: Operation) -> &'static str {
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
pub(crate) const DUPLICATE_CODES: &[&str] = &["IDP-60001", "APP-60007", "OAUTH-60008"];

/// Offset and limit of a `next` link, resolved against the API base.
pub(crate) fn next_page(links: &[Link], base: &Url) -> Option<(u64, u64)> {
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
pub(crate) fn pick_by_name<T>(
    items: Vec<T>,
    name: &str,
    name_of: impl Fn(&T) -> &String,
) -> Option<T> {
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
pub(crate) fn not_configured_as_not_found(e: BackendError) -> BackendError {
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

impl AsgardeoClient {
    pub(crate) async fn token(&self, stale: Option<&Secret>) -> Result<CachedToken, BackendError> {
        self.tokens.get(stale, || self.fetch_token()).await
    }

    /// `POST /oauth2/token` with retries on transient failures.
    pub(crate) async fn fetch_token(&self) -> Result<CachedToken, BackendError> {
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
    pub(crate) async fn take_budget(&self) -> Result<(), BackendError> {
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
    pub(crate) fn rate_limited(&self, headers: &HeaderMap, attempt: u32) -> Duration {
        let wait = retry_after(headers).unwrap_or_else(|| self.retry.backoff(attempt));
        self.budget.pause(wait);
        wait
    }

    /// Sends one API request with token handling, retries, rate limiting and concurrency bound.
    pub(crate) async fn send(
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
    pub(crate) fn note_timeout(
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
    pub(crate) async fn send_capped(
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

    pub(crate) fn client_error(
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

    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        op: Operation,
        url: Url,
    ) -> Result<T, BackendError> {
        let resp = self.send(op, Method::GET, url, None).await?;
        Self::decode(op, &resp.body)
    }

    pub(crate) fn decode<T: DeserializeOwned>(
        op: Operation,
        body: &[u8],
    ) -> Result<T, BackendError> {
        serde_json::from_slice(body).map_err(|e| BackendError::Protocol {
            operation: op.label(),
            message: format!("response body does not match the API model: {e}"),
        })
    }

    pub(crate) fn encode(
        op: Operation,
        value: &impl serde::Serialize,
    ) -> Result<Vec<u8>, BackendError> {
        serde_json::to_vec(value).map_err(|e| BackendError::Protocol {
            operation: op.label(),
            message: format!("cannot encode request: {e}"),
        })
    }

    /// POSTs and returns the new id: the last path segment of `Location`.
    pub(crate) async fn create(
        &self,
        op: Operation,
        url: Url,
        body: Vec<u8>,
    ) -> Result<String, BackendError> {
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
    pub(crate) async fn delete(&self, op: Operation, url: Url) -> Result<bool, BackendError> {
        match self.send(op, Method::DELETE, url, None).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Follows `next` links until the last page. `items` extracts a page's items and links.
    pub(crate) async fn list_all<P: DeserializeOwned, I>(
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

    pub(crate) fn list_too_large(&self, op: Operation) -> BackendError {
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
    pub(crate) fn name_filter(name: &str) -> Option<String> {
        (!name.contains('"')).then(|| format!("name eq \"{name}\""))
    }

    /// PUTs `body` and returns the server's answer (what was sent when the answer has no body).
    pub(crate) async fn put_json<T>(
        &self,
        op: Operation,
        path: &[&str],
        body: T,
    ) -> Result<T, BackendError>
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

    pub(crate) async fn raw_jit(
        &self,
        idp_id: &str,
    ) -> Result<wire::JustInTimeProvisioning, BackendError> {
        self.get_json(
            Operation::GetJit,
            self.url(&["identity-providers", idp_id, "provisioning", "jit"]),
        )
        .await
    }
}
