//! What one response is to us: the [`Node`] record and its parts.
//!
//! Pure data: no IO, no async, nothing that knows about HTTP or storage. Input and
//! output items are kept as the raw JSON the API uses, so nothing the server sent
//! is lost and a path can be replayed verbatim; [`Node::output_text`] is the
//! convenient text view.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{NodeId, ResponseId};
use crate::settings::RequestSettings;

mod preview;
pub use preview::Preview;
pub(crate) use preview::StoredPreview;

/// One response in a tree: what was sent, what came back, and how it was made.
///
/// A node's *parent* is the response it continues (the `previous_response_id` link
/// for nodes made by the Responses API). `extra_context` lists nodes whose content
/// was given to this node as explicit input (a merge of branches); these edges
/// make the tree a DAG without giving any node a second parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Node {
    /// The node's id (the server's response id, or a local id).
    pub id: NodeId,
    /// The node this one continues; `None` for a root.
    pub parent: Option<NodeId>,
    /// Nodes whose content was given to this one as extra input (merges).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_context: Vec<NodeId>,
    /// When the node was created.
    pub created_at: Timestamp,
    /// The input items sent with this request (not the inherited context), as raw
    /// API JSON: messages (`{"role","content"}`), function call outputs, ….
    #[serde(default)]
    pub input: Vec<Value>,
    /// The output items that came back, as raw API JSON.
    #[serde(default)]
    pub output: Vec<Value>,
    /// The text of every `output_text` part of every `message` output item, joined.
    #[serde(default)]
    pub output_text: String,
    /// The model that answered, as the server reported it.
    #[serde(default)]
    pub model: Option<String>,
    /// The instructions (system/developer text) this request was sent with.
    #[serde(default)]
    pub instructions: Option<String>,
    /// How the response ended.
    pub status: NodeStatus,
    /// Token usage the server reported for this request.
    #[serde(default)]
    pub usage: Usage,
    /// Key/value metadata (sent to the server with the request, or set locally).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// User labels, for finding and filtering nodes.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub labels: BTreeSet<String>,
    /// Which backend made the node, and what the server holds of it.
    pub origin: Origin,
    /// The request settings (tools, tool choice, reasoning, text format,
    /// sampling, …) the request was sent with; what its children inherit.
    /// Empty for nodes recorded before settings were (older stores load so).
    #[serde(default, skip_serializing_if = "RequestSettings::is_empty")]
    pub settings: RequestSettings,
}

impl Node {
    /// A completed node with the given id, parent and input, and everything else empty.
    ///
    /// Handy for building trees by hand (tests, imports, examples); the engine fills
    /// in the rest from the server's reply.
    ///
    /// ```
    /// use resptree::{Node, NodeId};
    /// let root = Node::new(NodeId::local(), None)
    ///     .with_user_text("Plan a weekend in Paris")
    ///     .with_output_text("Louvre on Saturday, Montmartre on Sunday.");
    /// assert_eq!(root.user_text().as_deref(), Some("Plan a weekend in Paris"));
    /// ```
    pub fn new(id: NodeId, parent: Option<NodeId>) -> Self {
        Self {
            id,
            parent,
            extra_context: Vec::new(),
            created_at: Timestamp::now(),
            input: Vec::new(),
            output: Vec::new(),
            output_text: String::new(),
            model: None,
            instructions: None,
            status: NodeStatus::Completed,
            usage: Usage::default(),
            metadata: BTreeMap::new(),
            labels: BTreeSet::new(),
            origin: Origin::local(),
            settings: RequestSettings::default(),
        }
    }

    /// Appends a user message with `text` to the input.
    #[must_use]
    pub fn with_user_text(mut self, text: impl Into<String>) -> Self {
        self.input.push(message_item("user", &text.into()));
        self
    }

    /// Replaces the output with one assistant message holding `text`.
    #[must_use]
    pub fn with_output_text(mut self, text: impl Into<String>) -> Self {
        let text = text.into();
        self.output = vec![serde_json::json!({
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        })];
        self.output_text = text;
        self
    }

    /// Sets the creation time.
    #[must_use]
    pub fn with_created_at(mut self, at: Timestamp) -> Self {
        self.created_at = at;
        self
    }

    /// The `function_call` items of the output, in order: what the model asked
    /// the caller to run.
    pub fn tool_calls(&self) -> Vec<ToolCall> {
        self.output.iter().filter_map(ToolCall::from_item).collect()
    }

    /// The function calls of this node that no `function_call_output` in its own
    /// output answers: all of them, for function tools, since the caller answers
    /// in a child's input ([`Engine::submit_tool_outputs`]). A child continuing
    /// this node must answer every one.
    ///
    /// [`Engine::submit_tool_outputs`]: crate::Engine::submit_tool_outputs
    pub fn pending_tool_calls(&self) -> Vec<ToolCall> {
        let answered: BTreeSet<&str> = self
            .output
            .iter()
            .filter(|item| item.get("type").and_then(Value::as_str) == Some("function_call_output"))
            .filter_map(|item| item.get("call_id").and_then(Value::as_str))
            .collect();
        self.tool_calls()
            .into_iter()
            .filter(|call| !answered.contains(call.call_id.as_str()))
            .collect()
    }

    /// The text of the last user message in this node's input, if any.
    pub fn user_text(&self) -> Option<String> {
        self.input
            .iter()
            .rev()
            .find(|item| item.get("role").and_then(Value::as_str) == Some("user"))
            .map(item_text)
    }
}

/// A `function_call` output item: the model asks the caller to run `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToolCall {
    /// The id to answer with (`call_id`).
    pub call_id: String,
    /// The function's name.
    pub name: String,
    /// The arguments: a JSON document, as a string (the model may produce
    /// invalid JSON; see [`ToolCall::arguments_json`]).
    pub arguments: String,
}

impl ToolCall {
    /// The call in a `function_call` item; `None` for any other item or one
    /// without a `call_id`.
    pub fn from_item(item: &Value) -> Option<Self> {
        if item.get("type").and_then(Value::as_str) != Some("function_call") {
            return None;
        }
        let text = |key| item.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            call_id: text("call_id")?,
            name: text("name").unwrap_or_default(),
            arguments: text("arguments").unwrap_or_default(),
        })
    }

    /// The arguments parsed as JSON; `None` if they are not valid JSON.
    pub fn arguments_json(&self) -> Option<Value> {
        serde_json::from_str(&self.arguments).ok()
    }

    /// A compact one-line form, `name(key="value", n=1)`: the arguments' keys and
    /// values when they are a JSON object, else the raw arguments.
    pub fn display_compact(&self) -> String {
        let args = match self.arguments_json() {
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => self.arguments.clone(),
        };
        format!("{}({args})", self.name)
    }
}

/// The caller's answer to one [`ToolCall`]: a `function_call_output` input item.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToolOutput {
    /// The `call_id` of the call it answers.
    pub call_id: String,
    /// The output, as text (often a JSON document).
    pub output: String,
}

impl ToolOutput {
    /// The answer `output` to the call `call_id`.
    pub fn new(call_id: impl Into<String>, output: impl Into<String>) -> Self {
        Self {
            call_id: call_id.into(),
            output: output.into(),
        }
    }

    /// The answer to the call `call_id` as a JSON document.
    pub fn json(call_id: impl Into<String>, output: &Value) -> Self {
        Self::new(call_id, output.to_string())
    }

    /// The `function_call_output` input item.
    pub fn to_item(&self) -> Value {
        serde_json::json!({
            "type": "function_call_output",
            "call_id": self.call_id,
            "output": self.output,
        })
    }
}

/// The `function_call_output` item of `item`: its `call_id` and output text.
pub fn tool_output_of(item: &Value) -> Option<ToolOutput> {
    if item.get("type").and_then(Value::as_str) != Some("function_call_output") {
        return None;
    }
    let call_id = item.get("call_id").and_then(Value::as_str)?;
    let output = match item.get("output") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => item_text(&serde_json::json!({"content": other})),
        None => String::new(),
    };
    Some(ToolOutput::new(call_id, output))
}

/// Builds an input message item `{"role": role, "content": text}`.
pub fn message_item(role: &str, text: &str) -> Value {
    serde_json::json!({"role": role, "content": text})
}

/// The text of one input or output item: a string `content`, or the `text` of
/// every text part (`input_text`, `output_text`, `text`) joined; empty otherwise.
pub fn item_text(item: &Value) -> String {
    match item.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// The joined text of every `output_text` part of every `message` item, the way
/// the official SDKs compute `output_text`.
pub fn output_text_of(output: &[Value]) -> String {
    output
        .iter()
        .filter(|item| item.get("type").and_then(Value::as_str) == Some("message"))
        .filter_map(|item| item.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|part| part.get("type").and_then(Value::as_str) == Some("output_text"))
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect()
}

/// How a response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeStatus {
    /// The model finished.
    Completed,
    /// The model stopped early (`max_output_tokens`, content filter).
    Incomplete,
    /// The response failed on the server.
    Failed,
    /// The response was cancelled.
    Cancelled,
}

/// Token usage of one request.
///
/// `input_tokens` counts the whole context the server read (every ancestor's input
/// and output plus the new input), as the API bills it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Input tokens, including the inherited context.
    pub input_tokens: u64,
    /// The part of `input_tokens` served from the prompt cache.
    pub cached_tokens: u64,
    /// Output tokens, including reasoning.
    pub output_tokens: u64,
    /// The part of `output_tokens` spent on reasoning.
    pub reasoning_tokens: u64,
    /// The part of `input_tokens` written to the prompt cache
    /// (`input_tokens_details.cache_write_tokens`; billed above the uncached rate
    /// by newer models). 0 in records made before it was kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
    /// `input_tokens + output_tokens`.
    pub total_tokens: u64,
    /// When set, `input_tokens` was billed once for a group of sibling nodes made
    /// by one request (Chat Completions `n`); this node carries the group's whole
    /// prompt count and its siblings share it. Sum such groups once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_input_group: Option<NodeId>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    /// Usage with the given input and output counts; `total_tokens` is their sum
    /// (saturating at `u64::MAX`, like all token accounting).
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
            total_tokens: input_tokens.saturating_add(output_tokens),
            ..Self::default()
        }
    }
}

/// Which backend made a node, and what the server keeps of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Origin {
    /// The backend: `"responses"`, `"chat"`, `"import"`, `"local"`, or a custom name.
    pub backend: String,
    /// The server's id for this response, when the server has (or had) a copy that
    /// can be continued with `previous_response_id`.
    #[serde(default)]
    pub response_id: Option<ResponseId>,
    /// The `previous_response_id` actually sent with the request, if any.
    #[serde(default)]
    pub previous_response_id: Option<ResponseId>,
    /// Whether the request replayed the path as explicit input instead of pointing
    /// at a server-side parent.
    #[serde(default)]
    pub replayed: bool,
    /// Whether the server stored the response (`store: true`).
    #[serde(default)]
    pub stored: bool,
    /// When the server's copy is expected to expire, if it has one.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

impl Origin {
    /// A node made locally, with no server copy.
    pub fn local() -> Self {
        Self {
            backend: "local".to_owned(),
            response_id: None,
            previous_response_id: None,
            replayed: false,
            stored: false,
            expires_at: None,
        }
    }

    /// A node made by `backend`, with no server copy yet.
    pub fn backend(name: impl Into<String>) -> Self {
        Self {
            backend: name.into(),
            ..Self::local()
        }
    }
}

/// A point in time: milliseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self(ms)
    }

    /// From Unix seconds, as the API reports `created_at`.
    pub fn from_unix_seconds(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch.
    pub fn as_unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }
}

/// Reads a time as people and scripts write it, always in UTC: a date
/// (`2026-12-01`, its midnight), a date and time (`2026-12-01T09:30:00Z`, the
/// seconds and the `Z` optional, a space allowed for the `T`, fractions of a
/// second kept to the millisecond), or Unix seconds (`1796117400`).
///
/// ```
/// use resptree::Timestamp;
/// let day: Timestamp = "2026-12-01".parse()?;
/// assert_eq!(day.as_unix_seconds(), 1_796_083_200);
/// let t: Timestamp = "2026-12-01T09:30:00.250Z".parse()?;
/// assert_eq!(t.as_millis() - day.as_millis(), (9 * 3600 + 30 * 60) * 1000 + 250);
/// assert!("2026-02-30".parse::<Timestamp>().is_err());
/// # Ok::<(), resptree::node::ParseTimestampError>(())
/// ```
impl std::str::FromStr for Timestamp {
    type Err = ParseTimestampError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ParseTimestampError(text.to_owned());
        let s = text.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let secs: i64 = s.parse().map_err(|_| bad())?;
            return Ok(Self::from_unix_seconds(secs));
        }
        let (date, time) = match s.split_once(['T', 't', ' ']) {
            Some((date, time)) => (date, Some(time)),
            None => (s, None),
        };
        let mut ymd = date.splitn(3, '-');
        let mut field = |len: usize| -> Option<i64> {
            let part = ymd.next()?;
            (part.len() == len && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().ok())?
        };
        let (year, month, day) = (field(4), field(2), field(2));
        let (Some(year), Some(month), Some(day)) = (year, month, day) else {
            return Err(bad());
        };
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(bad());
        }
        let millis_of_day = match time {
            None => 0,
            Some(time) => parse_time_of_day(time).ok_or_else(bad)?,
        };
        Ok(Self(
            days_from_civil(year, month, day) * 86_400_000 + millis_of_day,
        ))
    }
}

/// A text that [`Timestamp`]'s `FromStr` could not read; names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a time: expected a UTC date (2026-12-01), date and time (2026-12-01T09:30:00Z) or Unix seconds"
)]
pub struct ParseTimestampError(String);

/// `HH:MM[:SS[.fff…]][Z]` in milliseconds (UTC only: another offset is refused
/// rather than misread).
fn parse_time_of_day(time: &str) -> Option<i64> {
    let time = time
        .strip_suffix(['Z', 'z'])
        .or_else(|| time.strip_suffix("+00:00"))
        .unwrap_or(time);
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, fraction)) => (hms, Some(fraction)),
        None => (time, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let mut numbers = parts.iter().map(|p| {
        (p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<i64>().ok())
            .flatten()
    });
    let (h, m) = (numbers.next()??, numbers.next()??);
    let sec = match numbers.next() {
        Some(sec) => sec?,
        None => 0,
    };
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let millis = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            // Milliseconds: the first three digits, padded.
            let digits: String = f.chars().chain("000".chars()).take(3).collect();
            digits.parse::<i64>().ok()?
        }
        Some(_) => return None,
    };
    Some(((h * 60 + m) * 60 + sec) * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_parse_dates_times_and_unix_seconds_in_utc() {
        let at = |s: &str| s.parse::<Timestamp>().map(Timestamp::as_millis);
        assert_eq!(at("1970-01-01"), Ok(0));
        assert_eq!(at("1970-01-02"), Ok(86_400_000));
        assert_eq!(at("2000-03-01"), Ok(951_868_800_000));
        assert_eq!(at("2024-02-29T23:59:59Z"), Ok(1_709_251_199_000));
        assert_eq!(at("2024-02-29 23:59"), Ok(1_709_251_140_000));
        assert_eq!(at("1970-01-01T00:00:01.5Z"), Ok(1_500));
        assert_eq!(at("1970-01-01T00:00:00.123456+00:00"), Ok(123));
        assert_eq!(at("1796083200"), Ok(1_796_083_200_000));
        assert_eq!(at(" 1969-12-31 "), Ok(-86_400_000));
        for bad in [
            "",
            "2023-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-01",
            "26-01-01",
            "2026-01-01T24:00",
            "2026-01-01T10:60",
            "2026-01-01T10:00:00+02:00",
            "2026-01-01T10",
            "2026-01-01T10:00:00.",
            "yesterday",
            "-5",
            "99999999999999999999",
        ] {
            let err = at(bad).unwrap_err();
            assert!(
                err.to_string().contains(&format!("`{bad}`")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn output_text_joins_message_parts_only() {
        let output = vec![
            json!({"type": "reasoning", "summary": [{"type": "summary_text", "text": "thinking"}]}),
            json!({"type": "message", "content": [
                {"type": "output_text", "text": "Hello, "},
                {"type": "refusal", "refusal": "no"},
                {"type": "output_text", "text": "Paris."}
            ]}),
        ];
        assert_eq!(output_text_of(&output), "Hello, Paris.");
        assert_eq!(output_text_of(&[]), "");
    }

    #[test]
    fn user_text_takes_last_user_message() {
        let mut node = Node::new(NodeId::local(), None).with_user_text("first");
        node.input.push(json!({"role": "user", "content": [
            {"type": "input_text", "text": "sec"}, {"type": "input_text", "text": "ond"}
        ]}));
        node.input
            .push(json!({"type": "function_call_output", "call_id": "c", "output": "x"}));
        assert_eq!(node.user_text().as_deref(), Some("second"));
    }

    #[test]
    fn node_round_trips_through_json() {
        let node = Node::new(NodeId::local(), Some(NodeId::local()))
            .with_user_text("hi")
            .with_output_text("hello");
        let text = serde_json::to_string(&node).unwrap();
        let back: Node = serde_json::from_str(&text).unwrap();
        assert_eq!(back, node);
    }

    #[test]
    fn timestamps_convert() {
        let t = Timestamp::from_unix_seconds(1_767_225_600);
        assert_eq!(t.as_millis(), 1_767_225_600_000);
        assert_eq!(t.as_unix_seconds(), 1_767_225_600);
        assert_eq!(Timestamp(-1).as_unix_seconds(), -1);
    }
}
