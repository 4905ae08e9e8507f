//! [`BackendError`]: what can go wrong talking to the identity server, with its metric label and
//! whether a retry can help.

use std::time::Duration;

/// What can go wrong talking to the identity server. Messages never contain secrets or tokens: they
/// carry the server's code, description and traceId, which are safe to show in conditions and events.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The object does not exist (HTTP 404).
    #[error(
        "{resource} not found on the identity server{}",
        fmt_code(code, trace_id)
    )]
    NotFound {
        /// What was looked for, e.g. `identity provider`.
        resource: &'static str,
        /// Server error code, e.g. `IDP-60002`.
        code: Option<String>,
        /// Server trace id.
        trace_id: Option<String>,
    },
    /// An object with the same name exists (HTTP 409, or 400 with a duplicate code).
    #[error("{resource} already exists on the identity server: {}{}", description.as_deref().unwrap_or("duplicate name"), fmt_code(code, trace_id))]
    AlreadyExists {
        /// What was created, e.g. `application`.
        resource: &'static str,
        /// Server error code, e.g. `IDP-60001`.
        code: Option<String>,
        /// Server description.
        description: Option<String>,
        /// Server trace id.
        trace_id: Option<String>,
    },
    /// The server rejected the request as invalid (HTTP 400 and other 4xx). Retrying will not help.
    #[error(
        "identity server rejected the request (HTTP {status}): {}{}",
        message_of(message, description),
        fmt_code(code, trace_id)
    )]
    Invalid {
        /// HTTP status.
        status: u16,
        /// Server error code, e.g. `APP-60001`.
        code: Option<String>,
        /// Server message.
        message: Option<String>,
        /// Server description.
        description: Option<String>,
        /// Server trace id.
        trace_id: Option<String>,
    },
    /// The credentials were refused (token endpoint 401, or an API 401 after one re-authentication).
    #[error("identity server refused the credentials: {message}")]
    Unauthorized {
        /// What the server said (never the credentials).
        message: String,
    },
    /// The token lacks a permission (HTTP 403).
    #[error("identity server denied access{}{}", missing_scope.as_deref().map(|s| format!(" (missing scope {s})")).unwrap_or_default(), fmt_code(code, trace_id))]
    Forbidden {
        /// The scope the operation needs and the token was not granted, when known.
        missing_scope: Option<String>,
        /// Server error code.
        code: Option<String>,
        /// Server trace id.
        trace_id: Option<String>,
    },
    /// The server kept answering 429; retry after the given time.
    #[error("identity server rate limit hit{}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The server's Retry-After, when given.
        retry_after: Option<Duration>,
    },
    /// 5xx, timeout or connection failure that persisted through all retries. Worth retrying later.
    #[error(
        "identity server unavailable after {attempts} attempt(s): {message}{}",
        fmt_code(code, trace_id)
    )]
    Transient {
        /// HTTP status of the last attempt, if there was a response.
        status: Option<u16>,
        /// What happened (no URLs with secrets, no bodies).
        message: String,
        /// Attempts made.
        attempts: u32,
        /// Server error code, if the body had one.
        code: Option<String>,
        /// Server trace id, if the body had one.
        trace_id: Option<String>,
    },
    /// The server answered something this client cannot read (bad JSON, missing Location header).
    #[error("unexpected response from identity server during {operation}: {message}")]
    Protocol {
        /// Operation label.
        operation: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The client is misconfigured (bad URL, unreadable CA bundle).
    #[error("identity server client configuration: {0}")]
    Config(String),
}

fn fmt_code(code: &Option<String>, trace_id: &Option<String>) -> String {
    match (code, trace_id) {
        (Some(c), Some(t)) => format!(" [code {c}, traceId {t}]"),
        (Some(c), None) => format!(" [code {c}]"),
        (None, Some(t)) => format!(" [traceId {t}]"),
        (None, None) => String::new(),
    }
}

fn message_of<'a>(message: &'a Option<String>, description: &'a Option<String>) -> &'a str {
    description
        .as_deref()
        .or(message.as_deref())
        .unwrap_or("no description")
}

impl BackendError {
    /// A short, bounded label for metrics and condition reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::AlreadyExists { .. } => "already_exists",
            Self::Invalid { .. } => "invalid",
            Self::Unauthorized { .. } => "unauthorized",
            Self::Forbidden { .. } => "forbidden",
            Self::RateLimited { .. } => "rate_limited",
            Self::Transient { .. } => "transient",
            Self::Protocol { .. } => "protocol",
            Self::Config(_) => "config",
        }
    }

    /// True when trying again later may succeed without a change of input or credentials.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::RateLimited { .. })
    }

    /// True when the server refused to delete an object that is still in use (`IDP-65004`): a
    /// final answer until the user removes the references, never a transient error.
    pub fn is_in_use(&self) -> bool {
        self.server_code()
            .is_some_and(|c| crate::asgardeo::DEFINITE_REFUSAL_CODES.contains(&c))
    }

    /// True for [`BackendError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// The server's error code, when the server sent one.
    pub fn server_code(&self) -> Option<&str> {
        match self {
            Self::NotFound { code, .. }
            | Self::AlreadyExists { code, .. }
            | Self::Invalid { code, .. }
            | Self::Forbidden { code, .. }
            | Self::Transient { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The server's trace id, when the server sent one.
    pub fn trace_id(&self) -> Option<&str> {
        match self {
            Self::NotFound { trace_id, .. }
            | Self::AlreadyExists { trace_id, .. }
            | Self::Invalid { trace_id, .. }
            | Self::Forbidden { trace_id, .. }
            | Self::Transient { trace_id, .. } => trace_id.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_labels_and_retryability() {
        let e = BackendError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(e.is_retryable());
        assert_eq!(e.metric_label(), "rate_limited");
        let e = BackendError::Invalid {
            status: 400,
            code: Some("IDP-60025".into()),
            message: None,
            description: Some("bad".into()),
            trace_id: Some("t-1".into()),
        };
        assert!(!e.is_retryable());
        let s = e.to_string();
        assert!(s.contains("IDP-60025") && s.contains("t-1"), "{s}");
    }
}
