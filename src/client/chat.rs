//! Chat Completions (`POST /chat/completions`): the one OpenAI API with `n`, i.e.
//! several answers to one prompt in one request.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::Instrument as _;

use super::stream::SseSource;
use super::trace::StreamTrace;
use super::transport::Call;
use super::{Client, request_body};
use crate::{Error, Result};

/// The body of `POST /chat/completions`.
///
/// ```
/// use resptree::client::ChatRequest;
/// use serde_json::json;
/// let req = ChatRequest::new("gpt-4o-mini", vec![json!({"role": "user", "content": "Hi"})]).n(3);
/// assert_eq!(serde_json::to_value(&req)?["n"], 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The model.
    pub model: String,
    /// The messages (`{"role", "content"}` objects), raw.
    pub messages: Vec<Value>,
    /// How many choices to generate (1–128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Sampling temperature, 0–2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Upper bound on generated tokens per choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// Any other parameter, sent as given (flattened into the body).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    /// A request for `model` with `messages`.
    pub fn new(model: impl Into<String>, messages: Vec<Value>) -> Self {
        Self {
            model: model.into(),
            messages,
            n: None,
            temperature: None,
            max_completion_tokens: None,
            extra: Map::new(),
        }
    }

    /// Sets `n`, the number of choices.
    #[must_use]
    pub fn n(mut self, n: u32) -> Self {
        self.n = Some(n);
        self
    }

    /// Sets the temperature.
    #[must_use]
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Sets `max_completion_tokens`.
    #[must_use]
    pub fn max_completion_tokens(mut self, tokens: u64) -> Self {
        self.max_completion_tokens = Some(tokens);
        self
    }

    /// Sets any other body parameter.
    #[must_use]
    pub fn param(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }
}

/// A `chat.completion` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatCompletion {
    /// The completion id, `chatcmpl-…`.
    pub id: String,
    /// Creation time, Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// One choice per `n`, in `index` order as sent.
    #[serde(default)]
    pub choices: Vec<ChatChoice>,
    /// Token usage for all choices together.
    #[serde(default)]
    pub usage: Option<ChatUsage>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    #[serde(skip)]
    request_id: Option<String>,
}

impl ChatCompletion {
    /// The `x-request-id` of the reply.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
}

/// One choice of a completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatChoice {
    /// The choice's index, 0..n.
    pub index: u32,
    /// The generated message.
    pub message: ChatMessage,
    /// `stop`, `length`, `tool_calls`, `content_filter`, …
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A generated message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatMessage {
    /// Usually `assistant`.
    #[serde(default)]
    pub role: String,
    /// The text, if any.
    #[serde(default)]
    pub content: Option<String>,
    /// A refusal, if the model refused.
    #[serde(default)]
    pub refusal: Option<String>,
    /// Every other field the server sent (`tool_calls`, `annotations`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Chat Completions usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatUsage {
    /// Prompt tokens (counted once for all choices).
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Generated tokens across all choices.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Prompt plus completion tokens.
    #[serde(default)]
    pub total_tokens: u64,
    /// Every other field the server sent (`prompt_tokens_details`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A `chat.completion.chunk` of a streamed completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatChunk {
    /// The completion id (the same in every chunk).
    pub id: String,
    /// Creation time, Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// The model.
    #[serde(default)]
    pub model: String,
    /// Deltas; with `n > 1` chunks of different choices interleave, so route by `index`.
    #[serde(default)]
    pub choices: Vec<ChatChunkChoice>,
    /// Usage, only in the last chunk when `stream_options.include_usage` is set.
    #[serde(default)]
    pub usage: Option<ChatUsage>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One choice's delta in a chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatChunkChoice {
    /// Which choice this delta extends.
    pub index: u32,
    /// The new content.
    #[serde(default)]
    pub delta: ChatDelta,
    /// Set in the choice's last chunk.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The delta of one chunk choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatDelta {
    /// Set in a choice's first chunk.
    #[serde(default)]
    pub role: Option<String>,
    /// A piece of text.
    #[serde(default)]
    pub content: Option<String>,
    /// A piece of a refusal.
    #[serde(default)]
    pub refusal: Option<String>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Client {
    /// Creates a chat completion (`POST /chat/completions`), retrying per the policy.
    ///
    /// # Errors
    ///
    /// As [`Client::create`].
    pub async fn chat(&self, request: &ChatRequest) -> Result<ChatCompletion> {
        let body = request_body(request, false)?;
        let reply = self
            .execute(&Call::new(Method::POST, "chat/completions").json(&body))
            .await?;
        let mut completion: ChatCompletion = reply.decode("chat completion")?;
        completion.request_id = reply.request_id;
        Ok(completion)
    }

    /// Streams a chat completion. As with [`Client::create_stream`], nothing is
    /// retried once the reply arrived.
    ///
    /// # Errors
    ///
    /// As [`Client::create`], for the request itself.
    pub async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream> {
        let body = request_body(request, true)?;
        let call = Call::new(Method::POST, "chat/completions")
            .json(&body)
            .streaming();
        let reply = self.execute_stream(&call).await?;
        let traced = StreamTrace::new("chat", reply.request_id.as_deref());
        let source = SseSource::new(reply, self.inner.stream_idle_timeout);
        let request_id = source.request_id.clone();
        let state = ChunkState {
            source,
            finished: false,
            traced,
        };
        let inner = futures_util::stream::unfold(state, |mut state| async move {
            let item = state.next_chunk().await?;
            Some((item, state))
        });
        Ok(ChatStream {
            inner: Box::pin(inner),
            request_id,
        })
    }
}

/// The chunks of a streamed chat completion, as a [`Stream`] of `Result<ChatChunk>`.
///
/// Ends quietly at `data: [DONE]`. A body that ends without `[DONE]` yields
/// [`Error::Stream`]; an error payload yields [`Error::Api`] with `status: None`
/// (see [`ApiError`](crate::ApiError#errors-inside-a-stream)); silence longer than
/// the idle timeout yields [`Error::Timeout`].
pub struct ChatStream {
    inner: Pin<Box<dyn Stream<Item = Result<ChatChunk>> + Send>>,
    request_id: Option<String>,
}

impl fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatStream")
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl ChatStream {
    /// The `x-request-id` of the stream's reply.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// Reads the rest of the stream and reassembles it into the completion a
    /// non-streamed request would have returned: one choice per `index` (in index
    /// order) with its role, joined content and refusal, and finish reason, plus the
    /// usage chunk if `stream_options.include_usage` asked for one.
    ///
    /// # Errors
    ///
    /// Any error of the stream (see [`ChatStream`]).
    pub async fn final_completion(mut self) -> Result<ChatCompletion> {
        use futures_util::StreamExt as _;

        let mut completion: Option<ChatCompletion> = None;
        let mut choices: std::collections::BTreeMap<u32, ChatChoice> = Default::default();
        while let Some(chunk) = self.next().await {
            let chunk = chunk?;
            let target = completion.get_or_insert_with(|| ChatCompletion {
                id: chunk.id.clone(),
                created: chunk.created,
                model: chunk.model.clone(),
                choices: Vec::new(),
                usage: None,
                extra: Map::new(),
                request_id: self.request_id.clone(),
            });
            if chunk.usage.is_some() {
                target.usage = chunk.usage;
            }
            for part in chunk.choices {
                let choice = choices.entry(part.index).or_insert_with(|| ChatChoice {
                    index: part.index,
                    message: ChatMessage {
                        role: String::new(),
                        content: None,
                        refusal: None,
                        extra: Map::new(),
                    },
                    finish_reason: None,
                    extra: Map::new(),
                });
                let message = &mut choice.message;
                if let Some(role) = part.delta.role {
                    message.role = role;
                }
                if let Some(text) = part.delta.content {
                    message
                        .content
                        .get_or_insert_with(String::new)
                        .push_str(&text);
                }
                if let Some(text) = part.delta.refusal {
                    message
                        .refusal
                        .get_or_insert_with(String::new)
                        .push_str(&text);
                }
                if part.finish_reason.is_some() {
                    choice.finish_reason = part.finish_reason;
                }
            }
        }
        let mut completion = completion
            .ok_or_else(|| Error::stream("stream had no chunks", self.request_id.clone()))?;
        completion.choices = choices.into_values().collect();
        Ok(completion)
    }
}

impl Stream for ChatStream {
    type Item = Result<ChatChunk>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct ChunkState {
    source: SseSource,
    finished: bool,
    traced: StreamTrace,
}

impl ChunkState {
    async fn next_chunk(&mut self) -> Option<Result<ChatChunk>> {
        if self.finished {
            return None;
        }
        let span = self.traced.read();
        let result = self.read_chunk().instrument(span).await.transpose();
        if !matches!(result, Some(Ok(_))) {
            self.finished = true;
            self.traced.end(match &result {
                Some(Err(e)) => Err(e),
                _ => Ok("[DONE]"),
            });
        }
        result
    }

    async fn read_chunk(&mut self) -> Result<Option<ChatChunk>> {
        loop {
            let event = match self.source.next().await {
                None => {
                    return Err(self
                        .source
                        .stream_error("stream ended before [DONE]".into()));
                }
                Some(event) => event?,
            };
            let data = event.data.trim();
            if data.is_empty() {
                continue;
            }
            if data == "[DONE]" {
                return Ok(None);
            }
            let value: Value = serde_json::from_str(data)
                .map_err(|e| Error::decode("stream chunk", data.as_bytes(), e))?;
            if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
                let body: super::wire::ErrorBody =
                    serde_json::from_value(error.clone()).unwrap_or_default();
                // Inside a 200 stream: the error has no status of its own.
                let mut api = body.into_api_error(None);
                api.request_id = self.source.request_id.clone();
                return Err(Error::from(api));
            }
            return serde_json::from_value(value)
                .map(Some)
                .map_err(|e| Error::decode("stream chunk", data.as_bytes(), e));
        }
    }
}
