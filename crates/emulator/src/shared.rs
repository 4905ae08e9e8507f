//! What every request of one emulator shares: the tenants, the issued tokens, the injected faults
//! and the request quota, and the counters. Plain data and locks, no HTTP: the handlers
//! (`app.rs`, `idp.rs`, `simulate.rs`) and the routing (`http.rs`) all build on it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::state::{self, Tenants};
use identity_client::operation::{Operation, SCRIPT_SCOPE};
use identity_client::Secret;

/// Faults to inject into `/t/...` requests (token endpoint included). Set with `POST /_emulator/faults`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Added latency per request, milliseconds.
    pub latency_ms: u64,
    /// Probability (0..=1) that a request fails with `error_status`.
    pub error_rate: f64,
    /// Status for injected errors (default 500 when 0).
    pub error_status: u16,
    /// The next N requests fail with `error_status` (deterministic, for tests).
    pub fail_next: u32,
    /// The next N requests get 429 with `Retry-After: retry_after_secs` (a burst).
    pub rate_limit_next: u32,
    /// Retry-After seconds sent with injected 429s.
    pub retry_after_secs: u64,
    /// Overrides the configured token lifetime for tokens issued from now on, seconds.
    pub token_lifetime_secs: Option<u64>,
    /// The next N creates (IdP or application POSTs that succeed) are committed, then answered
    /// as `spoiled_create` says: a create whose answer is lost or unusable.
    pub spoil_next_creates: u32,
    /// How the answer of a spoiled create goes wrong.
    pub spoiled_create: SpoiledCreate,
    /// A request quota enforced like the server's rate limit (none: unlimited).
    pub quota: Option<Quota>,
}

/// A request quota like Asgardeo's (<https://wso2.com/asgardeo/docs/references/rate-limits/>: 200
/// requests per minute per client IP for `/api/server/*`, and as many for `/oauth2/*`, each
/// counted on its own). Counted in a sliding window, the strictest reading of "per minute", so a
/// client that stays under it here stays under it on a fixed-window server too. Every client of
/// an emulator is one client: tests and the bench all connect from the loopback address. Refused
/// requests do not count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window, seconds (60 on the server; tests may shorten it).
    pub window_secs: u64,
}

/// Which of the server's separately limited path families a request belongs to.
pub(crate) fn quota_family(op: Operation) -> &'static str {
    if op == Operation::Token {
        "/oauth2/*"
    } else {
        "/api/server/*"
    }
}

/// The quota's decision for a request at `now` (pure but for the log it updates): `None` to serve
/// it (and count it), else how long until the oldest counted request leaves the window.
pub(crate) fn quota_wait(
    log: &mut VecDeque<Instant>,
    quota: Quota,
    now: Instant,
) -> Option<Duration> {
    let window = Duration::from_secs(quota.window_secs.max(1));
    while log
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        log.pop_front();
    }
    if log.len() < quota.requests as usize {
        log.push_back(now);
        return None;
    }
    let oldest = log.front().copied().unwrap_or(now);
    Some(window.saturating_sub(now.saturating_duration_since(oldest)))
}

/// How [`Faults::spoil_next_creates`] spoils the answer of a committed create.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SpoiledCreate {
    /// 201 without a `Location` header (the id is unknown to the client).
    #[default]
    NoLocation,
    /// 201 with `Location` and a body larger than the client's cap (8 MiB).
    Oversized,
    /// No answer at all: the request hangs until the client gives up (a lost response).
    Hang,
}

/// Request counters. Readable with `GET /_emulator/stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Requests per operation label (see [`Operation::label`]), token endpoint included.
    pub operations: BTreeMap<String, u64>,
    /// API requests that only read.
    pub reads: u64,
    /// API requests that write.
    pub writes: u64,
    /// Token endpoint requests.
    pub token_requests: u64,
    /// Responses per HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests answered by an injected fault (5xx or 429).
    pub faults_injected: u64,
    /// Requests refused with 429 because they were over the [`Quota`].
    pub over_quota: u64,
}

impl Stats {
    /// Count of one operation.
    pub fn count(&self, op: Operation) -> u64 {
        self.operations.get(op.label()).copied().unwrap_or(0)
    }
}

/// A token the token endpoint issued.
pub(crate) struct IssuedToken {
    /// The tenant it was issued in.
    pub(crate) tenant: String,
    /// Its granted scopes.
    pub(crate) scopes: HashSet<String>,
    /// When it stops being accepted.
    pub(crate) expires_at: Instant,
}

/// State shared by all requests of one emulator.
pub struct Shared {
    pub(crate) client_id: String,
    pub(crate) client_secret: Secret,
    pub(crate) token_lifetime: Duration,
    /// Scopes the M2M app is authorized for; requested scopes outside it are dropped.
    pub(crate) grant_scopes: Mutex<HashSet<String>>,
    /// Names compare case-insensitively (uniqueness and `name eq`), as on a case-insensitive
    /// database collation.
    pub(crate) ignore_name_case: bool,
    pub(crate) state_file: Option<PathBuf>,
    pub(crate) scheme: &'static str,
    pub(crate) tenants: Mutex<Tenants>,
    pub(crate) tokens: Mutex<HashMap<String, IssuedToken>>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) stats: Mutex<Stats>,
    /// The requests counted in each quota family's window.
    pub(crate) quota_log: Mutex<HashMap<&'static str, VecDeque<Instant>>>,
}

/// Locks a mutex, recovering from poisoning: the emulator's data stays usable after a panicking test.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(
        config: &super::EmulatorConfig,
        scheme: &'static str,
        tenants: Tenants,
    ) -> Self {
        let grant_scopes = match &config.grant_scopes {
            Some(v) => v.iter().cloned().collect(),
            None => default_authorized_scopes(),
        };
        Self {
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            token_lifetime: config.token_lifetime,
            grant_scopes: Mutex::new(grant_scopes),
            ignore_name_case: !config.case_sensitive_names,
            state_file: config.state_file.clone(),
            scheme,
            tenants: Mutex::new(tenants),
            tokens: Mutex::new(HashMap::new()),
            faults: Mutex::new(Faults::default()),
            stats: Mutex::new(Stats::default()),
            quota_log: Mutex::default(),
        }
    }

    /// Invalidates every issued token (the next API call gets 401).
    pub(crate) fn revoke_all_tokens(&self) {
        lock(&self.tokens).clear();
    }

    pub(crate) fn persist(&self, tenants: &Tenants) {
        if let Some(path) = &self.state_file {
            if let Err(e) = state::save(path, tenants) {
                tracing::warn!(error = %e, path = %path.display(), "could not save emulator state");
            }
        }
    }
}

/// What an M2M app is authorized for unless configured otherwise: every scope the operator may ask
/// for (the operations' scopes, the client-secret view scope, the script scope).
pub fn default_authorized_scopes() -> HashSet<String> {
    Operation::needed_scopes()
        .into_iter()
        .chain([SCRIPT_SCOPE])
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_counts_a_sliding_window_and_says_when_the_oldest_leaves() {
        let quota = Quota {
            requests: 3,
            window_secs: 60,
        };
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut log = VecDeque::new();
        // (at, refused with this wait)
        let steps = [
            (s(0), None),
            (s(10), None),
            (s(20), None),
            (s(30), Some(s(30))),
            // Refused requests do not count: the oldest still leaves at 60 s.
            (s(59), Some(s(1))),
            (s(60), None),
            (s(61), Some(s(9))),
            (s(70), None),
        ];
        for (at, want) in steps {
            assert_eq!(quota_wait(&mut log, quota, t0 + at), want, "at {at:?}");
        }
        assert_eq!(quota_family(Operation::Token), "/oauth2/*");
        assert_eq!(quota_family(Operation::GetIdp), "/api/server/*");
    }
}
