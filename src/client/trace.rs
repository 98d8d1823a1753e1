//! What the client tells a `tracing` subscriber, kept in one place so that its
//! two rules hold everywhere (see "Observability" in `docs/ARCHITECTURE.md`):
//!
//! - never the API key: it lives only in the request headers, and no header is
//!   ever logged;
//! - no prompt or reply text above DEBUG: request bodies and stream payloads are
//!   TRACE, and error messages (a server's message or a decode snippet may quote
//!   the input or the output) are DEBUG. INFO events carry only numbers, ids,
//!   paths and text-free descriptions built by [`summary`].
//!
//! Spans and events use the target `resptree::client`.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tracing::Span;

use crate::Error;

/// The target of every span and event of the client.
const TARGET: &str = "resptree::client";

/// Logs a request body about to be sent (TRACE: it holds the prompt).
///
/// A field's value is computed only when some subscriber wants the event, so
/// the lossy copies below cost nothing otherwise. (Not `tracing::enabled!`
/// first: with per-layer filters it hid the next event from a layer that did
/// not want TRACE, which made a test of this very rule pass vacuously.)
pub(super) fn sending(attempt: u32, body: Option<&Bytes>) {
    tracing::trace!(
        target: TARGET,
        attempt,
        body = body.map(|b| String::from_utf8_lossy(b)).as_deref(),
        "sending request"
    );
}

/// Logs a successful reply's body (TRACE: it holds the reply text).
pub(super) fn received(body: &Bytes) {
    tracing::trace!(target: TARGET, body = &*String::from_utf8_lossy(body), "received response body");
}

/// Logs a reply whose headers arrived (any status). A 2xx ends the call, so its
/// status and request id are recorded on the enclosing `http_request` span, once
/// (a formatter prints every value recorded, so only final ones are).
pub(super) fn response(attempt: u32, status: u16, request_id: Option<&str>, started: Instant) {
    if (200..300).contains(&status) {
        record(attempt, Some(status), request_id);
    }
    tracing::info!(target: TARGET,
        attempt,
        status,
        request_id,
        latency_ms = millis(started.elapsed()),
        "response"
    );
}

/// Logs an attempt that failed and is about to be retried after `wait`.
pub(super) fn retrying(attempt: u32, error: &Error, wait: Duration) {
    tracing::debug!(target: TARGET, attempt, %error, "attempt failed");
    tracing::info!(target: TARGET,
        attempt,
        reason = %summary(error),
        wait_ms = millis(wait),
        "retrying"
    );
}

/// Logs the attempt whose failure is returned to the caller (no retry left, or
/// not retryable). DEBUG: the caller has the error and decides what to report.
pub(super) fn giving_up(attempt: u32, error: &Error) {
    record(attempt, error.status(), error.request_id());
    tracing::debug!(target: TARGET, attempt, reason = %summary(error), %error, "request failed");
}

/// Records how a call ended on its `http_request` span.
fn record(attempts: u32, status: Option<u16>, request_id: Option<&str>) {
    let span = Span::current();
    span.record("attempts", attempts);
    span.record("status", status);
    span.record("request_id", request_id);
}

/// The log of one streamed reply: a span that every read of the stream runs
/// in, and an event when it ends. Created with the stream, so its span is a
/// child of the caller's span at that point (the request's own span has closed
/// by the time the caller reads the events).
pub(super) struct StreamTrace {
    span: Span,
    started: Instant,
    /// Reads so far: events, the last (terminal or failing) one included.
    events: u64,
    ended: bool,
}

impl StreamTrace {
    pub(super) fn new(api: &'static str, request_id: Option<&str>) -> Self {
        let span = tracing::info_span!(target: TARGET, "sse_stream", api, request_id);
        span.in_scope(|| tracing::debug!(target: TARGET, "stream started"));
        Self {
            span,
            started: Instant::now(),
            events: 0,
            ended: false,
        }
    }

    /// Counts one read of the stream and returns the span to run it in.
    pub(super) fn read(&mut self) -> Span {
        self.events += 1;
        self.span.clone()
    }

    /// Logs how the stream ended: at its terminal event (`response.completed`,
    /// `[DONE]`, ...), or with an error.
    pub(super) fn end(&mut self, how: Result<&str, &Error>) {
        self.ended = true;
        let _entered = self.span.enter();
        let (events, duration_ms) = (self.events, millis(self.started.elapsed()));
        match how {
            Ok(terminal) => {
                tracing::info!(target: TARGET, terminal, events, duration_ms, "stream finished");
            }
            Err(error) => {
                tracing::debug!(target: TARGET, %error, "stream error");
                let reason = summary(error);
                tracing::info!(target: TARGET, %reason, events, duration_ms, "stream failed");
            }
        }
    }
}

impl Drop for StreamTrace {
    fn drop(&mut self) {
        // A caller may stop reading early; that is not an error, but worth a line
        // when following what happened to a request.
        if !self.ended {
            let _entered = self.span.enter();
            tracing::debug!(target: TARGET, events = self.events, "stream dropped before its end");
        }
    }
}
/// Logs one server-sent event (TRACE: the payload holds reply text).
pub(super) fn stream_event(data: &str) {
    tracing::trace!(target: TARGET, data, "stream event");
}

/// A description of `error` without any text from the server or the model: the
/// variant, the HTTP status and the server's error code (an identifier such as
/// `rate_limit_exceeded`), never its message.
pub(super) fn summary(error: &Error) -> String {
    if let Some(api) = error.api_error() {
        let what = if error.is_rate_limited() {
            "rate limited"
        } else {
            "api error"
        };
        // No status: the error arrived inside a 200 stream.
        let status = api
            .status
            .map_or_else(|| "in stream".to_owned(), |s| s.to_string());
        return match &api.code {
            Some(code) => format!("{what} {status} ({code})"),
            None => format!("{what} {status}"),
        };
    }
    match error {
        Error::Timeout { what, .. } => format!("timed out {what}"),
        Error::Connection { .. } => "connection error".to_owned(),
        // Our own wording (never a payload): "connection lost while streaming", ...
        Error::Stream { reason, .. } => format!("stream error: {reason}"),
        Error::Decode { what, .. } => format!("error decoding {what}"),
        _ => "other error".to_owned(),
    }
}

/// Whole milliseconds, saturating (a field wants an integer).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
