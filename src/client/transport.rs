//! Sending one request with retries, and turning replies into results.

use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use serde::de::DeserializeOwned;
use tokio::time::{Instant, timeout_at};

use super::retry::{retry_after, should_retry_header, should_retry_status};
use super::trace;
use super::{Client, Response};
use crate::error::snippet;
use crate::{ApiError, Error, Result};

/// What to send: method, path under the base URL, query and JSON body.
#[derive(Debug)]
pub(crate) struct Call {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    /// The serialised body, built once and resent as-is on each attempt.
    body: Option<Bytes>,
    streaming: bool,
    /// Whether the call creates something the server bills for (`POST
    /// /responses`): such a call is retried only when the failure shows the
    /// server did not process it.
    creates: bool,
}

impl Call {
    pub(crate) fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            streaming: false,
            creates: false,
        }
    }

    pub(crate) fn json(mut self, body: &serde_json::Value) -> Self {
        // Serialising a `Value` cannot fail.
        self.body = Some(Bytes::from(body.to_string()));
        self
    }

    pub(crate) fn query(mut self, pairs: Vec<(&'static str, String)>) -> Self {
        self.query = pairs;
        self
    }

    pub(crate) fn streaming(mut self) -> Self {
        self.streaming = true;
        self
    }

    /// Marks the call as a create: not retried once it may have been processed.
    pub(crate) fn creates(mut self) -> Self {
        self.creates = true;
        self
    }

    /// Whether `failure` may be retried for this call. A create that may have
    /// reached the server (a timeout after sending, a connection lost after
    /// connecting, a success reply whose body broke off) is never retried:
    /// the server may already have made, and billed, the response, and a
    /// second request would make a duplicate.
    fn may_retry(&self, failure: &Failure) -> bool {
        failure.retryable && !(self.creates && failure.error.may_have_reached_server())
    }
}

/// A successful, fully read reply.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) request_id: Option<String>,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn decode<T: DeserializeOwned>(&self, what: &'static str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::decode(what, &self.body, e))
    }

    pub(crate) fn decode_response(self) -> Result<Response> {
        let mut response: Response = self.decode("response body")?;
        response.request_id = self.request_id;
        Ok(response)
    }
}

/// A 2xx reply whose body is a stream still to be read.
#[derive(Debug)]
pub(crate) struct StreamReply {
    pub(crate) response: reqwest::Response,
    pub(crate) request_id: Option<String>,
}

/// A failed attempt: the error, and whether and when to try again.
struct Failure {
    error: Error,
    retryable: bool,
    hint: Option<Duration>,
}

impl Failure {
    fn retryable(error: Error) -> Self {
        Self {
            error,
            retryable: true,
            hint: None,
        }
    }
}

enum Outcome {
    Body(Reply),
    Stream(StreamReply),
}

impl Client {
    /// Sends `call` and reads the whole body, retrying per the policy.
    pub(crate) async fn execute(&self, call: &Call) -> Result<Reply> {
        match self.with_retries(call).await? {
            Outcome::Body(reply) => Ok(reply),
            // `with_retries` reads the body whenever `call.streaming` is false.
            Outcome::Stream(_) => Err(Error::Internal("a stream reply for a plain call")),
        }
    }

    /// Sends `call` and returns as soon as a 2xx reply's headers arrived.
    pub(crate) async fn execute_stream(&self, call: &Call) -> Result<StreamReply> {
        match self.with_retries(call).await? {
            Outcome::Stream(reply) => Ok(reply),
            Outcome::Body(_) => Err(Error::Internal("a plain reply for a stream call")),
        }
    }

    // One span per call, around all its attempts; the attempts fill in its
    // last status and request id.
    #[tracing::instrument(
        name = "http_request",
        target = "resptree::client",
        level = "info",
        skip_all,
        fields(
            method = %call.method,
            path = %call.path,
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
        ),
    )]
    async fn with_retries(&self, call: &Call) -> Result<Outcome> {
        let policy = self.inner.retry;
        let mut retry = 0;
        loop {
            match self.attempt(call, retry).await {
                Ok(outcome) => return Ok(outcome),
                Err(failure) if call.may_retry(&failure) && retry < policy.max_retries => {
                    let wait = policy.delay(retry, failure.hint);
                    trace::retrying(retry + 1, &failure.error, wait);
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                Err(failure) => {
                    trace::giving_up(retry + 1, &failure.error);
                    return Err(failure.error);
                }
            }
        }
    }

    async fn attempt(&self, call: &Call, retry: u32) -> Result<Outcome, Failure> {
        let inner = &self.inner;
        let mut url =
            reqwest::Url::parse(&format!("{}/{}", inner.base_url, call.path)).map_err(|e| {
                Failure {
                    error: Error::config_with("request URL is invalid", e),
                    retryable: false,
                    hint: None,
                }
            })?;
        if !call.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&call.query);
        }
        let mut request = inner
            .http
            .request(call.method.clone(), url)
            .headers(inner.headers.clone())
            .header("x-stainless-retry-count", retry.to_string());
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        if call.streaming {
            request = request.header(ACCEPT, "text/event-stream");
        }

        let started = Instant::now();
        trace::sending(retry + 1, call.body.as_ref());
        let deadline = Instant::now() + inner.timeout;
        let response = match timeout_at(deadline, request.send()).await {
            Err(_) => return Err(Failure::retryable(self.response_timeout())),
            Ok(Err(e)) => return Err(Failure::retryable(self.transport_error(e))),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let request_id = request_id(&headers);
        trace::response(retry + 1, status, request_id.as_deref(), started);

        if !response.status().is_success() {
            // The body of an error reply is best effort: if it cannot be read, the
            // status alone still makes a useful error.
            let body = match timeout_at(deadline, response.bytes()).await {
                Ok(Ok(body)) => body,
                _ => Bytes::new(),
            };
            let mut api = api_error(status, &body);
            api.request_id = request_id;
            api.retry_after = retry_after(&headers);
            let hint = api.retry_after;
            // Out of credit comes as a 429 too, but no wait cures it (as in
            // async-openai); the server's explicit `x-should-retry` still wins.
            let retryable = should_retry_status(status, &headers)
                && (!api.is_insufficient_quota() || should_retry_header(&headers) == Some(true));
            return Err(Failure {
                error: Error::from(api),
                retryable,
                hint,
            });
        }

        if call.streaming {
            return Ok(Outcome::Stream(StreamReply {
                response,
                request_id,
            }));
        }
        match timeout_at(deadline, response.bytes()).await {
            Err(_) => Err(Failure::retryable(self.response_timeout())),
            Ok(Err(e)) => Err(Failure::retryable(self.transport_error(e))),
            Ok(Ok(body)) => {
                trace::received(&body);
                Ok(Outcome::Body(Reply { request_id, body }))
            }
        }
    }

    fn response_timeout(&self) -> Error {
        Error::Timeout {
            what: "waiting for the response",
            after: self.inner.timeout,
        }
    }

    /// Maps a reqwest error, stripped of its URL, to our error.
    fn transport_error(&self, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            if e.is_connect() {
                Error::Timeout {
                    what: "connecting",
                    after: self.inner.connect_timeout,
                }
            } else {
                self.response_timeout()
            }
        } else {
            Error::Connection {
                source: Box::new(e.without_url()),
            }
        }
    }
}

/// The `x-request-id` header.
pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Builds the [`ApiError`] of an error reply from its `{"error": {...}}` body, or
/// from a snippet of the body when it is not that envelope.
fn api_error(status: u16, body: &[u8]) -> ApiError {
    match serde_json::from_slice::<super::wire::ErrorEnvelope>(body) {
        Ok(envelope) => envelope.error.into_api_error(Some(status)),
        Err(_) if body.is_empty() => ApiError::new(status, "(empty body)"),
        Err(_) => ApiError::new(status, snippet(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_from_envelope_or_snippet() {
        let body = br#"{"error":{"message":"Previous response with id 'resp_zzz' not found.","type":"invalid_request_error","param":"previous_response_id","code":"previous_response_not_found"}}"#;
        let e = api_error(400, body);
        assert!(e.is_previous_response_not_found());
        assert_eq!(e.kind.as_deref(), Some("invalid_request_error"));
        let e = api_error(502, b"<html>Bad Gateway</html>");
        assert_eq!(e.message, "<html>Bad Gateway</html>");
        assert_eq!(api_error(500, b"").message, "(empty body)");
    }
}
