//! Error replies: the real API's `{"error": {...}}` envelope with its HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error reply. Handlers return `Result<_, Failure>` and `?` does the rest.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) kind: &'static str,
    pub(crate) param: Option<String>,
    pub(crate) code: Option<&'static str>,
}

impl Failure {
    /// A `400 invalid_request_error`.
    pub(crate) fn bad_request(
        message: impl Into<String>,
        param: Option<&str>,
        code: Option<&'static str>,
    ) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_owned),
            code,
        }
    }

    /// `400` for a missing required parameter, worded like the real API.
    pub(crate) fn missing(param: &str) -> Self {
        Self::bad_request(
            format!("Missing required parameter: '{param}'."),
            Some(param),
            Some("missing_required_parameter"),
        )
    }

    /// `400` for a parameter of the wrong JSON type, worded like the real API.
    pub(crate) fn wrong_type(param: &str, expected: &str, got: &Value) -> Self {
        Self::bad_request(
            format!(
                "Invalid type for '{param}': expected {expected}, but got {} instead.",
                describe(got)
            ),
            Some(param),
            Some("invalid_type"),
        )
    }

    /// `400` for a parameter with a value out of range.
    pub(crate) fn invalid_value(
        param: &str,
        message: impl Into<String>,
        code: &'static str,
    ) -> Self {
        Self::bad_request(message, Some(param), Some(code))
    }

    /// `400` for an integer below `min` or above `max`, worded like the real API.
    pub(crate) fn out_of_range(param: &str, got: i64, min: i64, max: Option<i64>) -> Self {
        if got < min {
            Self::invalid_value(
                param,
                format!(
                    "Invalid '{param}': integer below minimum value. Expected a value >= {min}, but got {got} instead."
                ),
                "integer_below_min_value",
            )
        } else {
            let max = max.unwrap_or(i64::MAX);
            Self::invalid_value(
                param,
                format!(
                    "Invalid '{param}': integer above maximum value. Expected a value <= {max}, but got {got} instead."
                ),
                "integer_above_max_value",
            )
        }
    }

    /// `404` with the real "not found" wording.
    pub(crate) fn not_found(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_owned),
            code: None,
        }
    }

    /// The exact `previous_response_not_found` error (HTTP 400) naming `id`.
    pub(crate) fn previous_not_found(id: &str) -> Self {
        Self::bad_request(
            format!("Previous response with id '{id}' not found."),
            Some("previous_response_id"),
            Some("previous_response_not_found"),
        )
    }

    /// The exact `conversation_locked` error (HTTP 400).
    pub(crate) fn conversation_locked() -> Self {
        Self::bad_request(
            "Another process is currently operating on this conversation. Please retry in a few seconds.",
            Some("conversation"),
            Some("conversation_locked"),
        )
    }

    /// The reply to a body that is not JSON.
    pub(crate) fn malformed_json() -> Self {
        Self::bad_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
            None,
            None,
        )
    }

    /// The reply to a body declared as something other than JSON.
    pub(crate) fn unsupported_content_type(content_type: &str) -> Self {
        Self::bad_request(
            format!(
                "Unsupported content type: '{content_type}'. This API method only accepts 'application/json' requests, but you specified the header 'Content-Type: {content_type}'. Please try again with a supported content type."
            ),
            None,
            None,
        )
    }

    /// `413` for a body over the configured limit.
    pub(crate) fn too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("Request body too large. The maximum allowed size is {limit} bytes."),
            kind: "invalid_request_error",
            param: None,
            code: Some("request_too_large"),
        }
    }

    /// The envelope the real API sends with a bare 5xx (or any other injected status).
    pub(crate) fn for_status(status: u16) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (message, kind) = match status.as_u16() {
            503 => (
                "The engine is currently overloaded, please try again later.",
                "server_error",
            ),
            s if s >= 500 => (
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
            ),
            _ => (
                "The request could not be processed.",
                "invalid_request_error",
            ),
        };
        Self {
            status,
            message: message.to_owned(),
            kind,
            param: None,
            code: None,
        }
    }

    /// The real tokens-per-minute rate-limit error (HTTP 429).
    pub(crate) fn rate_limited(retry_after_ms: u128) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "Rate limit reached for gpt-4o-mini in organization org-emulator on tokens per min (TPM): Limit 200000, Used 199420, Requested 1184. Please try again in {retry_after_ms}ms. Visit https://platform.openai.com/account/rate-limits to learn more."
            ),
            kind: "tokens",
            param: None,
            code: Some("rate_limit_exceeded"),
        }
    }

    /// The error object (`message`, `type`, `param`, `code`) the real API reports
    /// for `code` inside a stream (see [`Fault::ErrorEvent`](super::Fault::ErrorEvent));
    /// `previous` is the request's `previous_response_id`, if it had one.
    pub(crate) fn stream_error(code: &str, previous: Option<&str>) -> Value {
        let known = match code {
            "previous_response_not_found" => {
                Some(Self::previous_not_found(previous.unwrap_or("resp_unknown")))
            }
            "context_length_exceeded" => Some(Self::invalid_value(
                "input",
                "Your input exceeds the context window of this model. Please adjust your input and try again.",
                "context_length_exceeded",
            )),
            "insufficient_quota" => Some(Self {
                status: StatusCode::TOO_MANY_REQUESTS,
                message:
                    "You exceeded your current quota, please check your plan and billing details."
                        .to_owned(),
                kind: "insufficient_quota",
                param: None,
                code: Some("insufficient_quota"),
            }),
            "rate_limit_exceeded" => Some(Self::rate_limited(20)),
            "invalid_api_key" => Some(Self {
                status: StatusCode::UNAUTHORIZED,
                message: "Incorrect API key provided.".to_owned(),
                kind: "invalid_request_error",
                param: None,
                code: Some("invalid_api_key"),
            }),
            _ => None,
        };
        let failure = known.unwrap_or_else(|| Self::for_status(500));
        json!({
            "message": failure.message,
            "type": failure.kind,
            "param": failure.param,
            "code": code,
        })
    }

    /// The `{"error": {...}}` body.
    pub(crate) fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// How the real API names a JSON value's type in its error messages.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
