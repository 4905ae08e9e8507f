//! What an emulator handler returns: a success reply or an error with the server's error body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use identity_client::wire::ErrorBody;

/// A successful answer.
#[derive(Debug)]
pub enum Reply {
    /// 200 with a JSON body.
    Json(serde_json::Value),
    /// 200 without a body (application PATCH).
    Empty,
    /// 201 with a Location header and an optional body (IdP create has one, application create not).
    Created {
        /// Absolute URL of the new resource.
        location: String,
        /// Body, if the server sends one.
        body: Option<serde_json::Value>,
    },
    /// 204.
    NoContent,
}

impl Reply {
    /// 200 with `value` serialized.
    pub fn json(value: &impl Serialize) -> Result<Self, EmuError> {
        serde_json::to_value(value)
            .map(Self::Json)
            .map_err(|e| EmuError::internal("EMU", &e.to_string()))
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Json(v) => (StatusCode::OK, axum::Json(v)).into_response(),
            Reply::Empty => StatusCode::OK.into_response(),
            Reply::Created { location, body } => {
                let mut resp = match body {
                    Some(b) => (StatusCode::CREATED, axum::Json(b)).into_response(),
                    None => StatusCode::CREATED.into_response(),
                };
                if let Ok(v) = HeaderValue::from_str(&location) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                resp
            }
            Reply::NoContent => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

/// An error answer: status plus `{code, message, description, traceId}`.
#[derive(Debug, Clone)]
pub struct EmuError {
    /// HTTP status.
    pub status: StatusCode,
    /// Body (boxed to keep `Result<_, EmuError>` small).
    pub body: Box<ErrorBody>,
    /// Extra headers (Retry-After, WWW-Authenticate).
    pub headers: Vec<(header::HeaderName, String)>,
}

impl EmuError {
    /// An error with a server code.
    pub fn new(
        status: StatusCode,
        code: &str,
        message: &str,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody {
                code: (!code.is_empty()).then(|| code.to_owned()),
                message: Some(message.to_owned()),
                description: Some(description.into()),
                trace_id: Some(uuid::Uuid::new_v4().to_string()),
            }),
            headers: Vec::new(),
        }
    }

    /// 400.
    pub fn bad_request(code: &str, message: &str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message, description)
    }

    /// 404.
    pub fn not_found(code: &str, message: &str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message, description)
    }

    /// 409.
    pub fn conflict(code: &str, message: &str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message, description)
    }

    /// 500 with the area's unexpected-error code (`IDP-65001`, `APP-65001`).
    pub fn internal(prefix: &str, description: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("{prefix}-65001"),
            "Unexpected Error",
            description,
        )
    }

    /// Replaces the server code and message (keeps status and description).
    pub fn with_code(mut self, code: &str, message: &str) -> Self {
        self.body.code = Some(code.to_owned());
        self.body.message = Some(message.to_owned());
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl IntoResponse for EmuError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(*self.body)).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}
