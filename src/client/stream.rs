//! [`ResponseStream`]: the typed events of a streamed response.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tracing::Instrument as _;

use super::sse::{SseEvent, SseParser};
use super::trace::{self, StreamTrace};
use super::transport::StreamReply;
use super::wire::{ErrorBody, OutputItem, Response};
use crate::{ApiError, Error, Result};

/// One event of a streamed response.
///
/// The common events are typed; every other event (reasoning summaries, refusals,
/// function-call arguments, tool progress, events added later) arrives as
/// [`StreamEvent::Other`] with its raw JSON.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// `response.created`: the response id is known from here on.
    Created(Response),
    /// `response.queued` (background mode).
    Queued(Response),
    /// `response.in_progress`.
    InProgress(Response),
    /// `response.output_item.added`.
    OutputItemAdded {
        /// Position in `output`.
        output_index: u64,
        /// The item so far (usually with empty content).
        item: OutputItem,
    },
    /// `response.output_text.delta`: a piece of text.
    OutputTextDelta {
        /// The message item it belongs to.
        item_id: String,
        /// Position of the item in `output`.
        output_index: u64,
        /// Position of the part in the item's `content`.
        content_index: u64,
        /// The new text.
        delta: String,
    },
    /// `response.output_text.done`: the part's full text.
    OutputTextDone {
        /// The message item it belongs to.
        item_id: String,
        /// Position of the item in `output`.
        output_index: u64,
        /// Position of the part in the item's `content`.
        content_index: u64,
        /// The whole text of the part.
        text: String,
    },
    /// `response.output_item.done`: the finished item.
    OutputItemDone {
        /// Position in `output`.
        output_index: u64,
        /// The finished item, lossless.
        item: OutputItem,
    },
    /// `response.completed` (terminal).
    Completed(Response),
    /// `response.incomplete` (terminal): `incomplete_details` says why.
    Incomplete(Response),
    /// `response.failed` (terminal): `error` says why.
    Failed(Response),
    /// Any other event.
    Other {
        /// The event's `type`.
        kind: String,
        /// The whole event payload.
        data: Value,
    },
}

impl StreamEvent {
    /// Whether this event ends the stream (`completed`, `incomplete` or `failed`).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Completed(_) | Self::Incomplete(_) | Self::Failed(_)
        )
    }
}

/// The events of a streamed response, as a [`Stream`] of `Result<StreamEvent>`.
///
/// The stream ends right after a terminal event. It yields an error (and then
/// ends) when:
/// - the connection drops or the body ends before a terminal event, or the
///   server sends `data: [DONE]` before one → [`Error::Stream`];
/// - no bytes arrive within the stream idle timeout → [`Error::Timeout`];
/// - the server sends an `error` event (or any payload with a truthy top-level
///   `error`) → [`Error::Api`] with the event's code, message and param, and
///   `status: None` (the reply's `200` was not the error's status; see
///   [`ApiError`](crate::ApiError#errors-inside-a-stream)), or
///   [`Error::RateLimited`] if its code is `rate_limit_exceeded`;
/// - an event is not valid JSON, or not the shape its type promises → [`Error::Decode`].
///
/// `response.failed` is an *event* ([`StreamEvent::Failed`]) so that callers see
/// the partial output; [`ResponseStream::final_response`] turns it into an error.
/// Nothing is retried once the stream exists.
pub struct ResponseStream {
    inner: Pin<Box<dyn Stream<Item = Result<Numbered>> + Send>>,
    request_id: Option<String>,
    response_id: Option<String>,
    last_sequence_number: Option<u64>,
}

/// An event with its `sequence_number`, when it had one.
type Numbered = (StreamEvent, Option<u64>);

impl fmt::Debug for ResponseStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseStream")
            .field("request_id", &self.request_id)
            .field("response_id", &self.response_id)
            .field("last_sequence_number", &self.last_sequence_number)
            .finish_non_exhaustive()
    }
}

impl ResponseStream {
    pub(crate) fn new(reply: StreamReply, idle: Duration) -> Self {
        let request_id = reply.request_id.clone();
        let traced = StreamTrace::new("responses", reply.request_id.as_deref());
        let source = SseSource::new(reply, idle);
        let state = EventState {
            source,
            finished: false,
            traced,
        };
        let inner = futures_util::stream::unfold(state, |mut state| async move {
            let item = state.next_event().await?;
            Some((item, state))
        });
        Self {
            inner: Box::pin(inner),
            request_id,
            response_id: None,
            last_sequence_number: None,
        }
    }

    /// The `sequence_number` of the last event read, if events carry them. After
    /// a dropped connection, a background response's stream resumes after it:
    /// [`Client::retrieve_stream`](super::Client::retrieve_stream)`(id, Some(n))`.
    pub fn last_sequence_number(&self) -> Option<u64> {
        self.last_sequence_number
    }

    /// The `x-request-id` of the stream's reply.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The response id, once `response.created` (or any event carrying the
    /// response) has been read.
    pub fn response_id(&self) -> Option<&str> {
        self.response_id.as_deref()
    }

    /// Reads the rest of the stream and returns the final response.
    ///
    /// If the terminal event's response has an empty `output` (some compatible
    /// servers send a sparse final object), it is filled from the
    /// `response.output_item.done` events seen.
    ///
    /// # Errors
    ///
    /// Any error of the stream (see [`ResponseStream`]), and for
    /// `response.failed` the response's `error` (its code, message, param and
    /// type, and the reply's request id) as an error inside a stream:
    /// [`Error::Api`] with `status: None`, or [`Error::RateLimited`] for
    /// `rate_limit_exceeded`. A `response.incomplete` is *not* an error: the
    /// response is returned with status `incomplete`.
    pub async fn final_response(mut self) -> Result<Response> {
        let mut items: BTreeMap<u64, OutputItem> = BTreeMap::new();
        while let Some(event) = self.next().await {
            match event? {
                StreamEvent::OutputItemDone { output_index, item } => {
                    items.insert(output_index, item);
                }
                StreamEvent::Completed(mut response) | StreamEvent::Incomplete(mut response) => {
                    if response.output.is_empty() {
                        response.output = items.into_values().collect();
                    }
                    return Ok(response);
                }
                StreamEvent::Failed(response) => return Err(self.failed_error(&response)),
                _ => {}
            }
        }
        Err(Error::stream(
            "stream ended before a terminal event",
            self.request_id.clone(),
        ))
    }

    pub(crate) fn failed_error(&self, response: &Response) -> Error {
        let mut api = match &response.error {
            Some(e) => {
                let text = |key: &str| e.extra.get(key).and_then(Value::as_str).map(str::to_owned);
                let mut api = ApiError::in_stream(e.message.clone());
                api.code = e.code.clone();
                api.param = text("param");
                api.kind = text("type");
                api
            }
            None => ApiError::in_stream("response failed without an error object"),
        };
        api.request_id = self.request_id.clone();
        Error::from(api)
    }
}

impl Stream for ResponseStream {
    type Item = Result<StreamEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok((event, sequence_number)))) => {
                if sequence_number.is_some() {
                    self.last_sequence_number = sequence_number;
                }
                Poll::Ready(Some(Ok(event)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        };
        if let Poll::Ready(Some(Ok(event))) = &polled {
            let response = match event {
                StreamEvent::Created(r)
                | StreamEvent::Queued(r)
                | StreamEvent::InProgress(r)
                | StreamEvent::Completed(r)
                | StreamEvent::Incomplete(r)
                | StreamEvent::Failed(r) => Some(r),
                _ => None,
            };
            if let Some(r) = response.filter(|_| self.response_id.is_none()) {
                self.response_id = Some(r.id.clone());
            }
        }
        polled
    }
}

/// Reads SSE events from a reply body, with the idle timeout between chunks.
/// Shared by the Responses and Chat Completions streams.
pub(crate) struct SseSource {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    parser: SseParser,
    pending: VecDeque<SseEvent>,
    idle: Duration,
    eof: bool,
    pub(crate) request_id: Option<String>,
}

impl SseSource {
    pub(crate) fn new(reply: StreamReply, idle: Duration) -> Self {
        Self {
            body: Box::pin(reply.response.bytes_stream()),
            parser: SseParser::new(),
            pending: VecDeque::new(),
            idle,
            eof: false,
            request_id: reply.request_id,
        }
    }

    /// The next event; `None` at the end of the body. After an error the caller
    /// must stop reading.
    pub(crate) async fn next(&mut self) -> Option<Result<SseEvent>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                trace::stream_event(&event.data);
                return Some(Ok(event));
            }
            if self.eof {
                return None;
            }
            match tokio::time::timeout(self.idle, self.body.next()).await {
                Err(_) => {
                    return Some(Err(Error::Timeout {
                        what: "waiting for the next stream event",
                        after: self.idle,
                    }));
                }
                Ok(Some(Ok(chunk))) => {
                    let mut out = Vec::new();
                    if let Err(reason) = self.parser.feed(&chunk, &mut out) {
                        return Some(Err(
                            self.stream_error(format!("malformed event stream: {reason}"))
                        ));
                    }
                    self.pending.extend(out);
                }
                Ok(Some(Err(e))) => {
                    return Some(Err(Error::Stream {
                        reason: "connection lost while streaming".to_owned(),
                        request_id: self.request_id.clone(),
                        source: Some(Box::new(e.without_url())),
                    }));
                }
                Ok(None) => {
                    self.eof = true;
                    self.pending.extend(self.parser.finish());
                }
            }
        }
    }

    pub(crate) fn stream_error(&self, reason: String) -> Error {
        Error::stream(reason, self.request_id.clone())
    }
}

/// The state behind a [`ResponseStream`].
struct EventState {
    source: SseSource,
    finished: bool,
    traced: StreamTrace,
}

impl EventState {
    async fn next_event(&mut self) -> Option<Result<Numbered>> {
        if self.finished {
            return None;
        }
        let span = self.traced.read();
        let result = self.read_event().instrument(span).await;
        if !matches!(&result, Ok((event, _)) if !event.is_terminal()) {
            self.finished = true;
            self.traced
                .end(result.as_ref().map(|(event, _)| terminal_name(event)));
        }
        Some(result)
    }

    async fn read_event(&mut self) -> Result<Numbered> {
        loop {
            let event = match self.source.next().await {
                None => {
                    return Err(self
                        .source
                        .stream_error("stream ended before a terminal event".into()));
                }
                Some(event) => event?,
            };
            let data = event.data.trim();
            if data.is_empty() {
                continue; // A keep-alive `data:` line with nothing in it.
            }
            if data == "[DONE]" {
                return Err(self
                    .source
                    .stream_error("stream sent [DONE] before a terminal event".into()));
            }
            let value: Value = serde_json::from_str(data)
                .map_err(|e| Error::decode("stream event", data.as_bytes(), e))?;
            let sequence_number = value.get("sequence_number").and_then(Value::as_u64);
            return Ok((
                self.typed(value, event.event.as_deref(), data)?,
                sequence_number,
            ));
        }
    }

    fn typed(&self, mut value: Value, sse_name: Option<&str>, raw: &str) -> Result<StreamEvent> {
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .or(sse_name)
            .unwrap_or("")
            .to_owned();
        // Like openai-python: an `error` event, or any payload with a truthy
        // top-level `error`, is a failure (the error may be nested or flat).
        let top_error = value.get("error").filter(|e| is_truthy(e));
        if kind == "error" || top_error.is_some() {
            let (body, flat) = match top_error {
                Some(nested @ Value::Object(_)) => (nested.clone(), false),
                _ => (value.clone(), true),
            };
            let mut body: ErrorBody = serde_json::from_value(body).unwrap_or_default();
            if flat {
                // The flat event's `type` is the event's own ("error"), not the
                // error's type.
                body.kind = None;
            }
            let mut api = body.into_api_error(None);
            api.request_id = self.source.request_id.clone();
            return Err(Error::from(api));
        }
        let decode = |e| Error::decode("stream event", raw.as_bytes(), e);
        // The response is taken out of the event, not copied: it is the
        // biggest part of the stream (every output item, twice per response).
        let response = |value: &mut Value| -> Result<Response> {
            let taken = value.get_mut("response").map_or(Value::Null, Value::take);
            let mut response: Response = serde_json::from_value(taken).map_err(decode)?;
            response.request_id = self.source.request_id.clone();
            Ok(response)
        };
        Ok(match kind.as_str() {
            "response.created" => StreamEvent::Created(response(&mut value)?),
            "response.queued" => StreamEvent::Queued(response(&mut value)?),
            "response.in_progress" => StreamEvent::InProgress(response(&mut value)?),
            "response.completed" => StreamEvent::Completed(response(&mut value)?),
            "response.incomplete" => StreamEvent::Incomplete(response(&mut value)?),
            "response.failed" => StreamEvent::Failed(response(&mut value)?),
            "response.output_text.delta" => {
                let d: TextDelta = serde_json::from_value(value).map_err(decode)?;
                StreamEvent::OutputTextDelta {
                    item_id: d.item_id,
                    output_index: d.output_index,
                    content_index: d.content_index,
                    delta: d.delta,
                }
            }
            "response.output_text.done" => {
                let d: TextDone = serde_json::from_value(value).map_err(decode)?;
                StreamEvent::OutputTextDone {
                    item_id: d.item_id,
                    output_index: d.output_index,
                    content_index: d.content_index,
                    text: d.text,
                }
            }
            "response.output_item.added" | "response.output_item.done" => {
                let d: ItemEvent = serde_json::from_value(value).map_err(decode)?;
                if kind == "response.output_item.added" {
                    StreamEvent::OutputItemAdded {
                        output_index: d.output_index,
                        item: d.item,
                    }
                } else {
                    StreamEvent::OutputItemDone {
                        output_index: d.output_index,
                        item: d.item,
                    }
                }
            }
            _ => StreamEvent::Other { kind, data: value },
        })
    }
}

/// The wire name of a terminal event, for the log.
fn terminal_name(event: &StreamEvent) -> &'static str {
    match event {
        StreamEvent::Completed(_) => "response.completed",
        StreamEvent::Incomplete(_) => "response.incomplete",
        StreamEvent::Failed(_) => "response.failed",
        _ => "other",
    }
}

fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

#[derive(Deserialize)]
struct TextDelta {
    item_id: String,
    output_index: u64,
    content_index: u64,
    delta: String,
}

#[derive(Deserialize)]
struct TextDone {
    item_id: String,
    output_index: u64,
    content_index: u64,
    text: String,
}

#[derive(Deserialize)]
struct ItemEvent {
    output_index: u64,
    item: OutputItem,
}
