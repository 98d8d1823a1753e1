//! The API's error replies: a status and `{"error": {"code", "message"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;

/// An error reply. The message names what was wrong; it comes from
/// [`Error`]'s display, which never holds the API key.
#[derive(Debug)]
pub(crate) struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Failure {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// A request whose input makes no sense (empty text, bad count).
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A write to an explorer that has no engine.
    pub(crate) fn read_only() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "read_only",
            "this explorer is read-only: start `resptree serve` with a server (OPENAI_API_KEY or --emulator) to write",
        )
    }

    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        let (status, code) = match &err {
            Error::NodeNotFound(_) | Error::RefNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::InvalidId { .. } => (StatusCode::BAD_REQUEST, "invalid_id"),
            Error::InvalidQuery { .. } => (StatusCode::BAD_REQUEST, "invalid_query"),
            Error::InvalidAnnotation(_) => (StatusCode::BAD_REQUEST, "invalid_annotation"),
            Error::Conflict { .. } | Error::InvalidTree(_) => (StatusCode::CONFLICT, "conflict"),
            Error::Unsupported(_) => (StatusCode::NOT_IMPLEMENTED, "unsupported"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self::new(status, code, error_chain(&err))
    }
}

/// The error and its causes on one line.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}
