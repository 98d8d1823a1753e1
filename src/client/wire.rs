//! Serde types for the Responses API wire format.
//!
//! Two rules hold throughout. Unknown fields are kept (every object has a flattened
//! `extra` map) and unknown item types become raw JSON, so a growing API never
//! breaks deserialisation. And output items are *lossless*: serialising an
//! [`OutputItem`] gives back exactly the JSON the server sent, because callers
//! replay output items verbatim as the input of a later request.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The body of `POST /responses`.
///
/// Build it with [`CreateResponse::new`] and the setters; put any parameter this
/// type has no field for (`tools`, `reasoning`, `text`, `include`, …) into
/// [`CreateResponse::extra`] with [`CreateResponse::param`]. The `stream` flag is
/// set by [`Client::create`](super::Client::create) and
/// [`Client::create_stream`](super::Client::create_stream), not here.
///
/// ```
/// use resptree::client::{CreateResponse, Input};
/// let req = CreateResponse::new("gpt-4o-mini", Input::text("Plan a weekend in Paris"))
///     .instructions("Answer in two sentences.")
///     .max_output_tokens(300)
///     .param("include", serde_json::json!(["reasoning.encrypted_content"]));
/// let body = serde_json::to_value(&req)?;
/// assert_eq!(body["input"], "Plan a weekend in Paris");
/// assert_eq!(body["include"][0], "reasoning.encrypted_content");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CreateResponse {
    /// The model, e.g. `gpt-4o-mini`.
    pub model: String,
    /// The new input (a string or a list of items).
    pub input: Input,
    /// System/developer text for this request only; it is not inherited by children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// The stored response this one continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    /// Whether the server keeps the response (default `true` on the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// Up to 16 key/value pairs stored with the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Upper bound on output plus reasoning tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Sampling temperature, 0–2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Background mode: the server answers at once with a `queued` response and
    /// runs it on its own; poll it ([`Client::wait_until_done`](super::Client::wait_until_done)),
    /// cancel it, or stream it ([`Client::retrieve_stream`](super::Client::retrieve_stream)).
    /// Needs `store` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<bool>,
    /// Any other parameter, sent as given (flattened into the body).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CreateResponse {
    /// A request for `model` with `input` and nothing else set.
    pub fn new(model: impl Into<String>, input: Input) -> Self {
        Self {
            model: model.into(),
            input,
            instructions: None,
            previous_response_id: None,
            store: None,
            metadata: None,
            max_output_tokens: None,
            temperature: None,
            background: None,
            extra: Map::new(),
        }
    }

    /// Continues the stored response `id`.
    #[must_use]
    pub fn previous_response_id(mut self, id: impl Into<String>) -> Self {
        self.previous_response_id = Some(id.into());
        self
    }

    /// Sets the instructions for this request.
    #[must_use]
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.instructions = Some(text.into());
        self
    }

    /// Sets whether the server stores the response.
    #[must_use]
    pub fn store(mut self, store: bool) -> Self {
        self.store = Some(store);
        self
    }

    /// Sets the metadata map.
    #[must_use]
    pub fn metadata(mut self, metadata: BTreeMap<String, String>) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Sets `max_output_tokens`.
    #[must_use]
    pub fn max_output_tokens(mut self, tokens: u64) -> Self {
        self.max_output_tokens = Some(tokens);
        self
    }

    /// Sets the sampling temperature.
    #[must_use]
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Sets background mode (see [`CreateResponse::background`](CreateResponse#structfield.background)).
    #[must_use]
    pub fn background(mut self, background: bool) -> Self {
        self.background = Some(background);
        self
    }

    /// Sets any other body parameter, e.g. `tools` or `reasoning`.
    #[must_use]
    pub fn param(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }
}

/// The `input` of a request: one user text, or a list of input items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Input {
    /// A string: one user message.
    Text(String),
    /// Input items (messages, function call outputs, replayed output items) as raw JSON.
    Items(Vec<Value>),
}

impl Input {
    /// One user message with `text`.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// A list of raw input items.
    pub fn items(items: Vec<Value>) -> Self {
        Self::Items(items)
    }
}

/// A Response object, as `create`, `retrieve`, `cancel` and stream events return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Response {
    /// The response id, `resp_…`.
    pub id: String,
    /// Always `"response"`.
    #[serde(default = "response_object")]
    pub object: String,
    /// Creation time, Unix seconds.
    #[serde(default, deserialize_with = "unix_seconds")]
    pub created_at: i64,
    /// `completed`, `failed`, `in_progress`, `cancelled`, `queued` or `incomplete`.
    #[serde(default)]
    pub status: Option<String>,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// The instructions echo: a string or an item array.
    #[serde(default)]
    pub instructions: Option<Value>,
    /// The response this one continues.
    #[serde(default)]
    pub previous_response_id: Option<String>,
    /// The output items, in order (a message is not necessarily first).
    #[serde(default)]
    pub output: Vec<OutputItem>,
    /// Token usage; `None` while running or when cancelled.
    #[serde(default)]
    pub usage: Option<ResponseUsage>,
    /// The metadata sent with the request.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Whether the server stored the response.
    #[serde(default)]
    pub store: Option<bool>,
    /// Why the response failed, for `status: failed`.
    #[serde(default)]
    pub error: Option<ResponseError>,
    /// Why the response is incomplete, e.g. `{"reason": "max_output_tokens"}`.
    #[serde(default)]
    pub incomplete_details: Option<Value>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// The `x-request-id` of the reply that carried this object (not part of the JSON).
    #[serde(skip)]
    pub(crate) request_id: Option<String>,
}

fn response_object() -> String {
    "response".to_owned()
}

impl Response {
    /// The text of every `output_text` part of every `message` item, joined (like the
    /// SDKs' `output_text`); empty when there is none.
    pub fn output_text(&self) -> String {
        let mut text = String::new();
        for item in &self.output {
            if let OutputItem::Message(message) = item {
                for part in &message.content {
                    if let OutputContent::OutputText(part) = part {
                        text.push_str(&part.text);
                    }
                }
            }
        }
        text
    }

    /// The output items as raw JSON, exactly as the server sent them (ready to be
    /// replayed as input).
    pub fn output_json(&self) -> Vec<Value> {
        self.output.iter().map(OutputItem::to_json).collect()
    }

    /// The `x-request-id` of the reply that carried this response, when known.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// Whether `status` is `completed`.
    pub fn is_completed(&self) -> bool {
        self.status.as_deref() == Some("completed")
    }

    /// Whether the response is still running: `status` is `queued` or
    /// `in_progress`. Every other status is final.
    pub fn is_pending(&self) -> bool {
        matches!(self.status.as_deref(), Some("queued" | "in_progress"))
    }

    /// Whether it was created in background mode (`background: true`).
    pub fn is_background(&self) -> bool {
        self.extra.get("background") == Some(&Value::Bool(true))
    }
}

/// The `error` object of a failed response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResponseError {
    /// The error code, e.g. `server_error`.
    #[serde(default)]
    pub code: Option<String>,
    /// A human-readable message.
    #[serde(default)]
    pub message: String,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Token usage of one response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResponseUsage {
    /// Input tokens, including the whole inherited context.
    #[serde(default)]
    pub input_tokens: u64,
    /// Details of the input tokens (`cached_tokens`).
    #[serde(default)]
    pub input_tokens_details: Option<InputTokensDetails>,
    /// Output tokens, including reasoning tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Details of the output tokens (`reasoning_tokens`).
    #[serde(default)]
    pub output_tokens_details: Option<OutputTokensDetails>,
    /// Input plus output tokens.
    #[serde(default)]
    pub total_tokens: u64,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `usage.input_tokens_details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InputTokensDetails {
    /// Input tokens served from the prompt cache.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutputTokensDetails {
    /// Output tokens spent on reasoning.
    #[serde(default)]
    pub reasoning_tokens: u64,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl From<&ResponseUsage> for crate::Usage {
    fn from(u: &ResponseUsage) -> Self {
        let mut usage = crate::Usage::new(u.input_tokens, u.output_tokens);
        usage.cached_tokens = u
            .input_tokens_details
            .as_ref()
            .map_or(0, |d| d.cached_tokens);
        usage.reasoning_tokens = u
            .output_tokens_details
            .as_ref()
            .map_or(0, |d| d.reasoning_tokens);
        usage.total_tokens = u.total_tokens;
        usage
    }
}

/// One output item. Known types are typed; anything else is kept as raw JSON.
///
/// Lossless: `serde_json::to_value(&item)` equals the JSON the server sent. A known
/// type whose JSON does not fit the typed shape exactly (a missing or `null`
/// required field) is kept as [`OutputItem::Other`] instead of being altered.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OutputItem {
    /// An assistant `message`.
    Message(MessageItem),
    /// A `reasoning` item.
    Reasoning(ReasoningItem),
    /// A `function_call` item.
    FunctionCall(FunctionCallItem),
    /// Any other item, as sent.
    Other(Value),
}

impl OutputItem {
    /// The item's `type`.
    pub fn kind(&self) -> &str {
        match self {
            Self::Message(_) => "message",
            Self::Reasoning(_) => "reasoning",
            Self::FunctionCall(_) => "function_call",
            Self::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The item as raw JSON, exactly as the server sent it.
    pub fn to_json(&self) -> Value {
        // Serialising these types cannot fail: every map key is a string.
        let encoded = match self {
            Self::Message(m) => encode_tagged(m, "message"),
            Self::Reasoning(r) => encode_tagged(r, "reasoning"),
            Self::FunctionCall(f) => encode_tagged(f, "function_call"),
            Self::Other(v) => return v.clone(),
        };
        encoded.unwrap_or(Value::Null)
    }

    /// Classifies raw JSON: a typed variant when it fits losslessly, else `Other`.
    pub fn from_json(value: Value) -> Self {
        match value.get("type").and_then(Value::as_str) {
            Some("message") => decode_tagged(&value, "message").map(Self::Message),
            Some("reasoning") => decode_tagged(&value, "reasoning").map(Self::Reasoning),
            Some("function_call") => decode_tagged(&value, "function_call").map(Self::FunctionCall),
            _ => None,
        }
        .unwrap_or(Self::Other(value))
    }
}

impl Serialize for OutputItem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for OutputItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from_json)
    }
}

/// An assistant `message` output item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageItem {
    /// The item id, `msg_…`.
    pub id: String,
    /// Always `assistant` for output.
    pub role: String,
    /// `in_progress`, `completed` or `incomplete`.
    pub status: String,
    /// The content parts.
    pub content: Vec<OutputContent>,
    /// Every other field the server sent (except `type`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One content part of a message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OutputContent {
    /// An `output_text` part.
    OutputText(OutputText),
    /// A `refusal` part.
    Refusal(Refusal),
    /// Any other part, as sent.
    Other(Value),
}

impl Serialize for OutputContent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::OutputText(t) => encode_tagged(t, "output_text")
                .map_err(serde::ser::Error::custom)?
                .serialize(serializer),
            Self::Refusal(r) => encode_tagged(r, "refusal")
                .map_err(serde::ser::Error::custom)?
                .serialize(serializer),
            Self::Other(v) => v.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for OutputContent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(match value.get("type").and_then(Value::as_str) {
            Some("output_text") => decode_tagged(&value, "output_text").map(Self::OutputText),
            Some("refusal") => decode_tagged(&value, "refusal").map(Self::Refusal),
            _ => None,
        }
        .unwrap_or(Self::Other(value)))
    }
}

/// An `output_text` content part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutputText {
    /// The text.
    pub text: String,
    /// Citations and other annotations, as sent.
    pub annotations: Vec<Value>,
    /// Every other field the server sent (except `type`), e.g. `logprobs`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A `refusal` content part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Refusal {
    /// The refusal text.
    pub refusal: String,
    /// Every other field the server sent (except `type`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A `reasoning` output item. `content`, `encrypted_content` and `status` are
/// optional and nullable on the wire, so they stay in `extra` (see the accessors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReasoningItem {
    /// The item id, `rs_…`.
    pub id: String,
    /// The summary parts (`{"type":"summary_text","text":…}`), as sent.
    pub summary: Vec<Value>,
    /// Every other field the server sent (except `type`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ReasoningItem {
    /// The `text` of every summary part, joined with blank lines.
    pub fn summary_text(&self) -> String {
        let parts: Vec<&str> = self
            .summary
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect();
        parts.join("\n\n")
    }

    /// The `encrypted_content`, when the request asked for it.
    pub fn encrypted_content(&self) -> Option<&str> {
        self.extra.get("encrypted_content").and_then(Value::as_str)
    }
}

/// A `function_call` output item. `id` and `status` stay in `extra` because they
/// are optional on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionCallItem {
    /// The id to answer with a `function_call_output` item.
    pub call_id: String,
    /// The function's name.
    pub name: String,
    /// The arguments, a JSON document as a string.
    pub arguments: String,
    /// Every other field the server sent (except `type`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One page of `GET /responses/{id}/input_items`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InputItemsPage {
    /// Always `"list"`.
    #[serde(default)]
    pub object: String,
    /// The items, raw.
    #[serde(default)]
    pub data: Vec<Value>,
    /// The first item's id.
    #[serde(default)]
    pub first_id: Option<String>,
    /// The last item's id: the cursor for the next page.
    #[serde(default)]
    pub last_id: Option<String>,
    /// Whether another page follows.
    #[serde(default)]
    pub has_more: bool,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Query parameters of `GET /responses/{id}/input_items`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InputItemsQuery {
    /// Items per page, 1–100 (server default 20).
    pub limit: Option<u32>,
    /// `asc` or `desc` (server default `desc`, newest first).
    pub order: Option<Order>,
    /// Start after this item id.
    pub after: Option<String>,
    /// Extra data to include (`include[]`).
    pub include: Vec<String>,
}

impl InputItemsQuery {
    /// Sets the page size.
    #[must_use]
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sets the order.
    #[must_use]
    pub fn order(mut self, order: Order) -> Self {
        self.order = Some(order);
        self
    }

    /// Starts after this item id.
    #[must_use]
    pub fn after(mut self, id: impl Into<String>) -> Self {
        self.after = Some(id.into());
        self
    }

    pub(crate) fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if let Some(order) = self.order {
            pairs.push(("order", order.as_str().to_owned()));
        }
        if let Some(after) = &self.after {
            pairs.push(("after", after.clone()));
        }
        for include in &self.include {
            pairs.push(("include[]", include.clone()));
        }
        pairs
    }
}

/// List order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

impl Order {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        }
    }
}

/// The answer to a delete: which response was deleted, and the reply's request id.
/// The body is not relied on (the spec gives it no schema).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deleted {
    /// The id that was deleted.
    pub id: String,
    /// The `x-request-id` of the reply.
    pub request_id: Option<String>,
}

/// The `{"error": {...}}` envelope of an error reply.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorEnvelope {
    pub(crate) error: ErrorBody,
}

/// The object inside [`ErrorEnvelope`] (and inside a stream `error` event).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) message: Option<Value>,
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<Value>,
    #[serde(default)]
    pub(crate) code: Option<Value>,
    #[serde(default)]
    pub(crate) param: Option<Value>,
}

impl ErrorBody {
    /// Fills an [`ApiError`](crate::ApiError) for `status` (`None`: the error
    /// arrived inside a stream).
    pub(crate) fn into_api_error(self, status: Option<u16>) -> crate::ApiError {
        let message = value_text(self.message).unwrap_or_else(|| "(no message)".to_owned());
        let mut error = match status {
            Some(status) => crate::ApiError::new(status, message),
            None => crate::ApiError::in_stream(message),
        };
        error.kind = value_text(self.kind);
        error.code = value_text(self.code);
        error.param = value_text(self.param);
        error
    }
}

/// A JSON value as text: strings as they are, numbers etc. printed, `null` as `None`.
/// Some compatible servers send numeric error codes.
fn value_text(value: Option<Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// `created_at` is a JSON number; accept a float and truncate it.
fn unix_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let value = Value::deserialize(deserializer)?;
    match &value {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| serde::de::Error::custom("created_at out of range")),
        _ => Err(serde::de::Error::custom("created_at is not a number")),
    }
}

/// Decodes `value` (an object with `"type": tag`) into `T`, but only if encoding `T`
/// again reproduces `value` exactly — that is what keeps output items lossless.
fn decode_tagged<T: DeserializeOwned + Serialize>(value: &Value, tag: &str) -> Option<T> {
    let mut map = value.as_object()?.clone();
    map.remove("type");
    let typed: T = serde_json::from_value(Value::Object(map)).ok()?;
    let again = encode_tagged(&typed, tag).ok()?;
    (again == *value).then_some(typed)
}

fn encode_tagged<T: Serialize>(typed: &T, tag: &str) -> Result<Value, serde_json::Error> {
    let mut value = serde_json::to_value(typed)?;
    if let Value::Object(map) = &mut value {
        map.insert("type".to_owned(), Value::String(tag.to_owned()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn output_items_round_trip_exactly() {
        let items = [
            json!({"id":"msg_1","type":"message","status":"completed","role":"assistant","phase":null,
                   "content":[{"type":"output_text","text":"hi","annotations":[],"logprobs":[]},
                              {"type":"refusal","refusal":"no"},
                              {"type":"future_part","x":1}]}),
            json!({"id":"rs_1","type":"reasoning","summary":[{"type":"summary_text","text":"a"}],
                   "encrypted_content":null,"status":null}),
            json!({"id":"fc_1","type":"function_call","call_id":"call_9","name":"f",
                   "arguments":"{\"a\":1}","status":"completed"}),
            json!({"id":"ws_1","type":"web_search_call","status":"completed","action":{"q":"x"}}),
            // A message whose required field is null stays raw rather than changing shape.
            json!({"id":"msg_2","type":"message","status":null,"role":"assistant","content":[]}),
            json!({"type":"message","role":"assistant","content":"plain string"}),
        ];
        for item in items {
            let typed: OutputItem = serde_json::from_value(item.clone()).unwrap();
            assert_eq!(serde_json::to_value(&typed).unwrap(), item);
            assert_eq!(typed.to_json(), item);
        }
    }

    #[test]
    fn known_items_are_typed() {
        let msg = OutputItem::from_json(json!({"id":"msg_1","type":"message","status":"completed",
            "role":"assistant","content":[{"type":"output_text","text":"hi","annotations":[]}]}));
        assert!(matches!(&msg, OutputItem::Message(m) if m.id == "msg_1"));
        let odd = OutputItem::from_json(json!({"id":"msg_2","type":"message","status":null,
            "role":"assistant","content":[]}));
        assert!(matches!(odd, OutputItem::Other(_)));
        assert_eq!(odd.kind(), "message");
    }

    #[test]
    fn error_body_accepts_numeric_codes_and_nulls() {
        let env: ErrorEnvelope =
            serde_json::from_value(json!({"error":{"message":"m","type":null,"code":42}})).unwrap();
        let e = env.error.into_api_error(Some(500));
        assert_eq!(e.code.as_deref(), Some("42"));
        assert_eq!(e.kind, None);
        assert_eq!(e.message, "m");
    }

    #[test]
    fn created_at_accepts_floats() {
        let r: Response =
            serde_json::from_value(json!({"id":"resp_1","created_at":1767000000.7})).unwrap();
        assert_eq!(r.created_at, 1_767_000_000);
    }

    #[test]
    fn usage_converts_to_the_node_usage() {
        let u: ResponseUsage = serde_json::from_value(json!({
            "input_tokens": 1184, "input_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 0},
            "output_tokens": 41, "output_tokens_details": {"reasoning_tokens": 7}, "total_tokens": 1225}))
        .unwrap();
        let usage = crate::Usage::from(&u);
        assert_eq!(
            (
                usage.input_tokens,
                usage.cached_tokens,
                usage.output_tokens,
                usage.reasoning_tokens,
                usage.total_tokens
            ),
            (1184, 1024, 41, 7, 1225)
        );
        assert_eq!(
            u.input_tokens_details.unwrap().extra["cache_write_tokens"],
            0
        );
    }

    #[test]
    fn query_pairs() {
        let q = InputItemsQuery::default()
            .limit(5)
            .order(Order::Asc)
            .after("msg_1");
        assert_eq!(
            q.to_pairs(),
            vec![
                ("limit", "5".to_owned()),
                ("order", "asc".to_owned()),
                ("after", "msg_1".to_owned())
            ]
        );
    }
}
