//! Chat Completions (`POST /chat/completions`) as an engine backend: the path
//! replayed as `messages`, native `n` for fan-out.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::{Backend, BackendEvent, BackendReply, BackendRequest, BoxFuture, Context};
use crate::client::{ChatChunk, ChatCompletion, ChatRequest, ChatUsage, Client};
use crate::error::{Error, Result};
use crate::node::{NodeStatus, Timestamp, Usage, item_text};
use crate::settings::{RequestSettings, TextFormat, ToolChoice};

/// The largest `n` the Chat Completions API accepts.
pub const MAX_CHOICES: usize = 128;

/// Drives an OpenAI-compatible Chat Completions server (`POST /chat/completions`).
///
/// Chat Completions keeps no conversation state, so this backend is stateless:
/// the engine always sends it [`Context::Replay`], and every request carries the
/// whole path as `messages`. It has native fan-out: [`Engine::fan_out`] makes
/// *one* request with `n`, and each choice becomes its own sibling node.
///
/// # From transcript to `messages`
///
/// - The request's instructions (the branch's, by default) become the first
///   `system` message.
/// - Input messages keep their role; their content (a string or text parts) is
///   flattened to text. Non-text parts (images, files) are dropped.
/// - Assistant `message` output items become `assistant` messages with their
///   joined `output_text` (or their refusal, if that is all they hold).
/// - `reasoning` items are skipped: Chat Completions has no way to send them back,
///   and their content is a summary at best.
/// - When the request carries function tools (inherited from the branch by
///   default), `function_call` items become `tool_calls` of an `assistant`
///   message (consecutive calls, and the assistant text just before them, share
///   one message) and `function_call_output` items become `tool` messages with
///   their `tool_call_id`. Without tools they are rendered as text (`assistant`
///   and `user` messages respectively), because a real `tool_calls` message is
///   only valid together with matching `tools` in the request.
/// - Any other item with text keeps its role (default `user`); items without
///   text are skipped.
///
/// # What a node records
///
/// Nodes made by this backend have a local id (`response_id` is `None`),
/// `stored: false`, the model the server reported, and an output of one
/// Responses-style `message` item (plus `function_call` items for tool calls), so
/// a path can later be replayed on either backend.
///
/// `finish_reason` maps to [`NodeStatus`]: `stop`, `tool_calls`,
/// `function_call` (or none) → `Completed`; `length`, `content_filter` →
/// `Incomplete`; `error` → `Failed`; `abort`/`cancelled` → `Cancelled`; any
/// other value from a compatible server → `Completed`, since a message came back.
///
/// # Usage of an `n`-choice request
///
/// The server reports one usage for all choices. Every node of the group records
/// the whole `prompt_tokens` (the engine marks them with
/// [`Usage::shared_input_group`], so totals count the prompt once). The server
/// gives no per-choice completion counts, so `completion_tokens` (and
/// `reasoning_tokens`) are split across the choices in proportion to the length
/// of each choice's text, rounding by largest remainder so that the parts add up
/// exactly to the server's count.
///
/// Metadata is recorded on the node but not sent: the real API only accepts
/// `metadata` on stored completions.
///
/// # Settings
///
/// Function tools become chat `tools` (`{"type": "function", "function": {…}}`),
/// `tool_choice` and `parallel_tool_calls` keep their meaning (a forced function
/// becomes `{"type": "function", "function": {"name": …}}`), `text.format`
/// becomes `response_format`, `reasoning.effort` becomes `reasoning_effort`, and
/// `top_p`, `service_tier`, `prompt_cache_key` and `safety_identifier` are sent
/// as they are. Chat Completions has no equivalent for non-function tools,
/// `max_tool_calls`, `include`, `truncation` or a reasoning summary: those are
/// not sent. `extra` is sent as given.
///
/// # Fewer choices than `n`
///
/// Some compatible servers ignore `n` (or cap it) and answer fewer choices
/// without saying so. A fan-out then fails with [`Error::FanOutShort`], naming
/// how many choices were asked for and received and holding the replies that
/// did arrive ([`Error::take_partial_replies`]), so the caller can still record
/// them; it never returns fewer replies as if nothing were wrong.
///
/// [`Engine::fan_out`]: crate::Engine::fan_out
///
/// ```
/// # #[cfg(feature = "emulator")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let emu = resptree::emulator::Emulator::spawn().await?;
/// use resptree::backend::ChatBackend;
/// use resptree::client::Client;
/// use resptree::engine::UsageScope;
/// use resptree::{Engine, ResponseTree};
///
/// // Client::from_env()? for the real API or any compatible server.
/// let client = Client::builder().base_url(emu.base_url()).api_key("sk-local").build()?;
/// let engine = Engine::builder(ResponseTree::in_memory(), ChatBackend::new(client)).build()?;
/// let question = engine.respond(None, "One free evening in Paris").await?;
/// // Three alternatives from ONE request (`n = 3`), recorded as three siblings.
/// let answers = engine.fan_out(Some(&question.id), "Suggest a plan", 3).await?;
/// assert_eq!(answers.len(), 3);
/// assert_eq!(engine.requests_made(), 2);
/// let first = answers[0].as_ref().map_err(|e| e.to_string())?;
/// // The shared prompt is counted once when adding up the siblings.
/// let totals = engine.usage(&question.id, UsageScope::Subtree).await?;
/// assert_eq!(totals.input_tokens, question.usage.input_tokens + first.usage.input_tokens);
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "emulator"))]
/// # fn main() {}
/// ```
#[derive(Debug, Clone)]
pub struct ChatBackend {
    client: Client,
}

impl ChatBackend {
    /// A backend that sends its requests with `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The client this backend uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn complete(&self, request: &BackendRequest, n: usize) -> Result<Vec<BackendReply>> {
        let completion = self.client.chat(&to_wire(request, n)?).await?;
        replies_from(Assembled::from_completion(completion), n)
    }

    /// Streams a request, sending each choice's events tagged with its index.
    async fn complete_stream(
        &self,
        request: &BackendRequest,
        n: usize,
        events: &mpsc::UnboundedSender<(usize, BackendEvent)>,
    ) -> Result<Vec<BackendReply>> {
        // Usage comes only in a last chunk, and only when asked for.
        let wire = to_wire(request, n)?.param("stream_options", json!({"include_usage": true}));
        let mut stream = self.client.chat_stream(&wire).await?;
        let mut assembled = Assembled::default();
        while let Some(chunk) = stream.next().await {
            for (index, text) in assembled.push(chunk?) {
                let _ = events.send((index, BackendEvent::Delta(text)));
            }
        }
        if assembled.choices.is_empty() && n == 1 {
            return Err(Error::stream(
                "chat stream had no choices",
                stream.request_id().map(str::to_owned),
            ));
        }
        replies_from(assembled, n)
    }
}

impl Backend for ChatBackend {
    fn name(&self) -> &str {
        "chat"
    }

    fn is_stateful(&self) -> bool {
        false
    }

    fn respond(&self, request: BackendRequest) -> BoxFuture<'_, Result<BackendReply>> {
        Box::pin(async move {
            let replies = self.complete(&request, 1).await?;
            first(replies)
        })
    }

    fn respond_stream(
        &self,
        request: BackendRequest,
        events: mpsc::UnboundedSender<BackendEvent>,
    ) -> BoxFuture<'_, Result<BackendReply>> {
        Box::pin(async move {
            let (tagged, mut received) = mpsc::unbounded_channel();
            let forward = async {
                // One choice only: drop the index.
                while let Some((_, event)) = received.recv().await {
                    let _ = events.send(event);
                }
            };
            let request = async move {
                let result = self.complete_stream(&request, 1, &tagged).await;
                drop(tagged);
                result
            };
            let (replies, ()) = tokio::join!(request, forward);
            first(replies?)
        })
    }

    fn has_native_fan_out(&self) -> bool {
        true
    }

    fn respond_n(
        &self,
        request: BackendRequest,
        n: usize,
    ) -> BoxFuture<'_, Result<Vec<BackendReply>>> {
        Box::pin(async move { self.complete(&request, n).await })
    }

    fn respond_n_stream(
        &self,
        request: BackendRequest,
        n: usize,
        events: mpsc::UnboundedSender<(usize, BackendEvent)>,
    ) -> BoxFuture<'_, Result<Vec<BackendReply>>> {
        Box::pin(async move { self.complete_stream(&request, n, &events).await })
    }
}

/// The `messages` a request sends: the instructions as a `system` message, then
/// the replayed transcript and the new input, converted as documented on
/// [`ChatBackend`].
pub fn chat_messages(request: &BackendRequest) -> Vec<Value> {
    let mut messages = Vec::new();
    if let Some(text) = &request.instructions {
        messages.push(json!({"role": "system", "content": text}));
    }
    let with_tools = request.settings.function_tools().next().is_some();
    for item in &request.full_input() {
        if with_tools {
            if let Some(call) = tool_call_of(item) {
                push_tool_call(&mut messages, call);
                continue;
            }
            if let Some(output) = crate::node::tool_output_of(item) {
                messages.push(json!({
                    "role": "tool",
                    "tool_call_id": output.call_id,
                    "content": output.output,
                }));
                continue;
            }
        }
        messages.extend(to_message(item));
    }
    messages
}

/// A `function_call` item as a chat `tool_calls` entry.
fn tool_call_of(item: &Value) -> Option<Value> {
    let call = crate::node::ToolCall::from_item(item)?;
    Some(json!({
        "id": call.call_id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }))
}

/// Adds a tool call to the assistant message just before it, or to a new one:
/// one Responses output (text, then calls) is one chat assistant turn.
fn push_tool_call(messages: &mut Vec<Value>, call: Value) {
    if let Some(last) = messages.last_mut() {
        if last["role"] == "assistant" {
            if let Some(map) = last.as_object_mut() {
                let calls = map
                    .entry("tool_calls")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(calls) = calls {
                    calls.push(call);
                    return;
                }
            }
        }
    }
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
}

/// The request fields the settings map to (see "Settings" on [`ChatBackend`]).
fn settings_params(settings: &RequestSettings) -> Vec<(&'static str, Value)> {
    let mut params = Vec::new();
    let tools: Vec<Value> = settings
        .function_tools()
        .map(|tool| {
            let mut function = Map::new();
            function.insert("name".to_owned(), json!(tool.name));
            if let Some(text) = &tool.description {
                function.insert("description".to_owned(), json!(text));
            }
            if let Some(schema) = &tool.parameters {
                function.insert("parameters".to_owned(), schema.clone());
            }
            if let Some(strict) = tool.strict {
                function.insert("strict".to_owned(), json!(strict));
            }
            json!({"type": "function", "function": function})
        })
        .collect();
    if !tools.is_empty() {
        params.push(("tools", Value::Array(tools)));
        if let Some(choice) = &settings.tool_choice {
            let choice = match choice {
                ToolChoice::Function(name) => {
                    json!({"type": "function", "function": {"name": name}})
                }
                other => other.to_json(),
            };
            params.push(("tool_choice", choice));
        }
        if let Some(on) = settings.parallel_tool_calls {
            params.push(("parallel_tool_calls", json!(on)));
        }
    }
    if let Some(format) = &settings.text_format {
        let format = match format {
            TextFormat::JsonSchema {
                name,
                schema,
                description,
                strict,
            } => {
                let mut inner = Map::new();
                inner.insert("name".to_owned(), json!(name));
                inner.insert("schema".to_owned(), schema.clone());
                if let Some(text) = description {
                    inner.insert("description".to_owned(), json!(text));
                }
                if let Some(strict) = strict {
                    inner.insert("strict".to_owned(), json!(strict));
                }
                json!({"type": "json_schema", "json_schema": inner})
            }
            other => other.to_json(),
        };
        params.push(("response_format", format));
    }
    if let Some(effort) = settings.reasoning.as_ref().and_then(|r| r.effort.as_ref()) {
        params.push(("reasoning_effort", json!(effort)));
    }
    if let Some(p) = settings.top_p {
        params.push(("top_p", json!(p)));
    }
    for (key, value) in [
        ("service_tier", &settings.service_tier),
        ("prompt_cache_key", &settings.prompt_cache_key),
        ("safety_identifier", &settings.safety_identifier),
    ] {
        if let Some(value) = value {
            params.push((key, json!(value)));
        }
    }
    params
}

/// The wire request for `request` with `n` choices.
fn to_wire(request: &BackendRequest, n: usize) -> Result<ChatRequest> {
    if !(1..=MAX_CHOICES).contains(&n) {
        return Err(Error::config(format!(
            "chat completions accept 1 to {MAX_CHOICES} choices, not {n}"
        )));
    }
    if let Context::Previous(_) = request.context {
        // The engine never does this (the backend is stateless); a caller driving
        // the backend by hand gets a clear error instead of a silently lost context.
        return Err(Error::Unsupported(
            "previous_response_id on Chat Completions (replay the path instead)",
        ));
    }
    super::trace_request("chat", request, n);
    let mut wire = ChatRequest::new(request.model.clone(), chat_messages(request));
    if n > 1 {
        // `n` is at most 128 here, so the conversion cannot fail.
        wire = wire.n(u32::try_from(n).unwrap_or(1));
    }
    if let Some(t) = request.temperature.or(request.settings.temperature) {
        wire = wire.temperature(t);
    }
    if let Some(max) = request
        .max_output_tokens
        .or(request.settings.max_output_tokens)
    {
        wire = wire.max_completion_tokens(u64::from(max));
    }
    for (key, value) in settings_params(&request.settings) {
        wire = wire.param(key, value);
    }
    for (key, value) in &request.settings.extra {
        wire = wire.param(key.clone(), value.clone());
    }
    Ok(wire)
}

/// One transcript item as a chat message, or `None` if it has no chat equivalent.
fn to_message(item: &Value) -> Option<Value> {
    let kind = item.get("type").and_then(Value::as_str);
    let role = item.get("role").and_then(Value::as_str);
    match kind {
        Some("reasoning") => None,
        Some("function_call") => {
            let name = str_field(item, "name");
            let arguments = str_field(item, "arguments");
            let call_id = str_field(item, "call_id");
            Some(json!({
                "role": "assistant",
                "content": format!("[function call {call_id}: {name}({arguments})]"),
            }))
        }
        Some("function_call_output") => {
            let call_id = str_field(item, "call_id");
            let output = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => item_text(&json!({"content": other})),
                None => String::new(),
            };
            Some(json!({
                "role": "user",
                "content": format!("[function output {call_id}]: {output}"),
            }))
        }
        _ => {
            let mut text = item_text(item);
            if text.is_empty() {
                text = refusal_text(item);
            }
            if text.is_empty() && role.is_none() {
                return None;
            }
            Some(json!({"role": role.unwrap_or("user"), "content": text}))
        }
    }
}

fn str_field(item: &Value, key: &str) -> String {
    item.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The refusal parts of a message item, joined.
fn refusal_text(item: &Value) -> String {
    item.get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("refusal").and_then(Value::as_str))
        .collect()
}

/// A completion reduced to what a node needs, from a whole reply or a stream.
#[derive(Debug, Default)]
struct Assembled {
    model: String,
    created: i64,
    choices: BTreeMap<u32, Choice>,
    usage: Option<ChatUsage>,
}

#[derive(Debug, Default)]
struct Choice {
    text: String,
    refusal: Option<String>,
    finish_reason: Option<String>,
    /// Tool calls, merged from stream fragments by their `index`.
    tool_calls: BTreeMap<u64, Value>,
}

impl Assembled {
    fn from_completion(completion: ChatCompletion) -> Self {
        let mut out = Self {
            model: completion.model,
            created: completion.created,
            usage: completion.usage,
            ..Self::default()
        };
        for choice in completion.choices {
            let mut calls = BTreeMap::new();
            if let Some(Value::Array(list)) = choice.message.extra.get("tool_calls") {
                for (i, call) in (0u64..).zip(list) {
                    calls.insert(i, call.clone());
                }
            }
            out.choices.insert(
                choice.index,
                Choice {
                    text: choice.message.content.unwrap_or_default(),
                    refusal: choice.message.refusal,
                    finish_reason: choice.finish_reason,
                    tool_calls: calls,
                },
            );
        }
        out
    }

    /// Adds a chunk; returns the new text per choice index, in chunk order.
    fn push(&mut self, chunk: ChatChunk) -> Vec<(usize, String)> {
        if self.model.is_empty() {
            self.model = chunk.model;
            self.created = chunk.created;
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let mut deltas = Vec::new();
        for part in chunk.choices {
            let choice = self.choices.entry(part.index).or_default();
            if let Some(text) = part.delta.content.filter(|t| !t.is_empty()) {
                choice.text.push_str(&text);
                deltas.push((part.index as usize, text));
            }
            if let Some(text) = part.delta.refusal {
                choice
                    .refusal
                    .get_or_insert_with(String::new)
                    .push_str(&text);
            }
            if let Some(Value::Array(calls)) = part.delta.extra.get("tool_calls") {
                for call in calls {
                    merge_tool_call(&mut choice.tool_calls, call);
                }
            }
            if part.finish_reason.is_some() {
                choice.finish_reason = part.finish_reason;
            }
        }
        deltas
    }
}

/// Streamed tool calls arrive in fragments: the first carries id and name, later
/// ones pieces of `function.arguments`.
fn merge_tool_call(calls: &mut BTreeMap<u64, Value>, fragment: &Value) {
    let index = fragment.get("index").and_then(Value::as_u64).unwrap_or(0);
    let call = calls.entry(index).or_insert_with(
        || json!({"id": "", "type": "function", "function": {"name": "", "arguments": ""}}),
    );
    for key in ["id", "type"] {
        if let Some(Value::String(s)) = fragment.get(key) {
            call[key] = Value::String(s.clone());
        }
    }
    if let Some(function) = fragment.get("function") {
        for key in ["name", "arguments"] {
            if let Some(piece) = function.get(key).and_then(Value::as_str) {
                let joined = format!("{}{piece}", call["function"][key].as_str().unwrap_or(""));
                call["function"][key] = Value::String(joined);
            }
        }
    }
}

/// One reply per choice, in index order, with the usage split as documented on
/// [`ChatBackend`]; [`Error::FanOutShort`] holding them if there are fewer than
/// the `asked` choices.
fn replies_from(assembled: Assembled, asked: usize) -> Result<Vec<BackendReply>> {
    if assembled.choices.is_empty() && asked == 1 {
        return Err(no_choices());
    }
    let replies = replies_of(assembled);
    if replies.len() < asked {
        return Err(Error::FanOutShort {
            asked,
            received: replies.len(),
            replies,
        });
    }
    Ok(replies)
}

/// One reply per choice, in index order.
fn replies_of(assembled: Assembled) -> Vec<BackendReply> {
    let (prompt, cached, completion, reasoning) =
        assembled.usage.as_ref().map_or((0, 0, 0, 0), |u| {
            (
                u.prompt_tokens,
                detail(u, "prompt_tokens_details", "cached_tokens"),
                u.completion_tokens,
                detail(u, "completion_tokens_details", "reasoning_tokens"),
            )
        });
    let weights: Vec<u64> = assembled
        .choices
        .values()
        .map(|c| {
            let args: usize = c
                .tool_calls
                .values()
                .map(|t| t["function"]["arguments"].as_str().map_or(0, str::len))
                .sum();
            (c.text.chars().count() + c.refusal.as_deref().map_or(0, |r| r.chars().count()) + args)
                as u64
        })
        .collect();
    let outputs = split_proportionally(completion, &weights);
    let reasonings = split_proportionally(reasoning, &weights);
    let created_at = Timestamp::from_unix_seconds(assembled.created);
    let model = (!assembled.model.is_empty()).then_some(assembled.model);
    assembled
        .choices
        .into_values()
        .zip(outputs.into_iter().zip(reasonings))
        .map(|(choice, (output_tokens, reasoning_tokens))| {
            let status = status_of(choice.finish_reason.as_deref());
            let mut usage = Usage::new(prompt, output_tokens);
            usage.cached_tokens = cached;
            usage.reasoning_tokens = reasoning_tokens;
            BackendReply {
                response_id: None,
                output: output_items(&choice, status),
                output_text: choice.text,
                model: model.clone(),
                status,
                usage,
                created_at,
                stored: false,
            }
        })
        .collect()
}

fn detail(usage: &ChatUsage, group: &str, key: &str) -> u64 {
    usage
        .extra
        .get(group)
        .and_then(|d| d.get(key))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn status_of(finish_reason: Option<&str>) -> NodeStatus {
    match finish_reason {
        Some("length" | "content_filter") => NodeStatus::Incomplete,
        Some("error") => NodeStatus::Failed,
        Some("abort" | "cancelled") => NodeStatus::Cancelled,
        _ => NodeStatus::Completed,
    }
}

/// The choice as Responses-style output items, so the path replays on either
/// backend.
fn output_items(choice: &Choice, status: NodeStatus) -> Vec<Value> {
    let mut items = Vec::new();
    // A reply that only calls tools has no message; any other reply has one, even
    // an empty one, so the node's transcript shows the assistant's turn.
    let only_tool_calls =
        choice.text.is_empty() && choice.refusal.is_none() && !choice.tool_calls.is_empty();
    if !only_tool_calls {
        let mut content = Vec::new();
        if !choice.text.is_empty() || choice.refusal.is_none() {
            content.push(json!({"type": "output_text", "text": choice.text, "annotations": []}));
        }
        if let Some(refusal) = &choice.refusal {
            content.push(json!({"type": "refusal", "refusal": refusal}));
        }
        let status = if status == NodeStatus::Incomplete {
            "incomplete"
        } else {
            "completed"
        };
        items.push(
            json!({"type": "message", "role": "assistant", "status": status, "content": content}),
        );
    }
    for call in choice.tool_calls.values() {
        let mut item = Map::new();
        item.insert("type".to_owned(), json!("function_call"));
        item.insert("call_id".to_owned(), call["id"].clone());
        item.insert("name".to_owned(), call["function"]["name"].clone());
        item.insert(
            "arguments".to_owned(),
            call["function"]["arguments"].clone(),
        );
        item.insert("status".to_owned(), json!("completed"));
        items.push(Value::Object(item));
    }
    items
}

/// Splits `total` into parts proportional to `weights` (evenly if all are zero),
/// rounding by largest remainder (ties to the lower index) so the parts sum to
/// `total` exactly.
fn split_proportionally(total: u64, weights: &[u64]) -> Vec<u64> {
    if weights.is_empty() {
        return Vec::new();
    }
    let even;
    let weights = if weights.iter().all(|&w| w == 0) {
        even = vec![1; weights.len()];
        &even
    } else {
        weights
    };
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for (i, &w) in weights.iter().enumerate() {
        let exact = u128::from(total) * u128::from(w);
        // Each part is at most `total`, so it fits in u64.
        parts.push(u64::try_from(exact / sum).unwrap_or(total));
        remainders.push((exact % sum, i));
    }
    let assigned: u64 = parts.iter().sum();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().take((total - assigned) as usize) {
        parts[i] += 1;
    }
    parts
}

fn first(replies: Vec<BackendReply>) -> Result<BackendReply> {
    replies.into_iter().next().ok_or_else(no_choices)
}

/// A completion without a single choice: nothing to record.
fn no_choices() -> Error {
    Error::decode("chat completion", b"", "the completion has no choices")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sums_to_total_and_follows_weights() {
        assert_eq!(
            split_proportionally(118, &[146, 160, 129]),
            vec![40, 43, 35]
        );
        assert_eq!(split_proportionally(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split_proportionally(2, &[0, 0, 0]), vec![1, 1, 0]);
        assert_eq!(split_proportionally(0, &[5, 7]), vec![0, 0]);
        assert_eq!(split_proportionally(7, &[0, 3]), vec![0, 7]);
        assert_eq!(split_proportionally(5, &[]), Vec::<u64>::new());
        for (total, weights) in [
            (1_000_003, vec![1, 2, 3, 4, 5]),
            (u64::MAX, vec![u64::MAX, 1]),
        ] {
            assert_eq!(
                split_proportionally(total, &weights).iter().sum::<u64>(),
                total
            );
        }
    }

    #[test]
    fn finish_reasons_map_to_statuses() {
        assert_eq!(status_of(Some("stop")), NodeStatus::Completed);
        assert_eq!(status_of(Some("tool_calls")), NodeStatus::Completed);
        assert_eq!(status_of(None), NodeStatus::Completed);
        assert_eq!(status_of(Some("length")), NodeStatus::Incomplete);
        assert_eq!(status_of(Some("content_filter")), NodeStatus::Incomplete);
        assert_eq!(status_of(Some("error")), NodeStatus::Failed);
        assert_eq!(status_of(Some("abort")), NodeStatus::Cancelled);
    }

    #[test]
    fn transcript_items_become_messages() {
        let mut request =
            BackendRequest::new("m", vec![json!({"role": "user", "content": "next"})]);
        request.instructions = Some("Be brief.".to_owned());
        request.context = Context::Replay(vec![
            json!({"role": "user", "content": [{"type": "input_text", "text": "Hi "}, {"type": "input_text", "text": "there"}]}),
            json!({"type": "reasoning", "summary": []}),
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]}),
            json!({"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{\"city\":\"Paris\"}"}),
            json!({"type": "function_call_output", "call_id": "c1", "output": "sunny"}),
            json!({"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}),
            json!({"role": "developer", "content": "Use French."}),
        ]);
        let messages = chat_messages(&request);
        let pairs: Vec<(&str, &str)> = messages
            .iter()
            .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("system", "Be brief."),
                ("user", "Hi there"),
                ("assistant", "Hello"),
                (
                    "assistant",
                    "[function call c1: weather({\"city\":\"Paris\"})]"
                ),
                ("user", "[function output c1]: sunny"),
                ("assistant", "No."),
                ("developer", "Use French."),
                ("user", "next"),
            ]
        );
    }

    #[test]
    fn with_function_tools_calls_and_outputs_are_chat_tool_messages() {
        use crate::settings::FunctionTool;
        let mut request = BackendRequest::new(
            "m",
            vec![
                json!({"type": "function_call_output", "call_id": "c1", "output": "{\"temp\":18}"}),
                json!({"type": "function_call_output", "call_id": "c2", "output": "rain"}),
            ],
        );
        request.settings = RequestSettings::default()
            .tool(FunctionTool::new("get_weather").parameters(json!({"type": "object"})))
            .tool_choice(ToolChoice::Function("get_weather".to_owned()))
            .parallel_tool_calls(true)
            .text_format(TextFormat::json_schema("w", json!({"type": "object"})))
            .reasoning(crate::settings::Reasoning::effort("low"))
            .include("reasoning.encrypted_content");
        request.context = Context::Replay(vec![
            json!({"role": "user", "content": "Weather in Paris and Oslo?"}),
            json!({"type": "reasoning", "summary": [], "encrypted_content": "e"}),
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]}),
            json!({"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}),
            json!({"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}),
        ]);
        assert_eq!(
            chat_messages(&request),
            vec![
                json!({"role": "user", "content": "Weather in Paris and Oslo?"}),
                json!({"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
                ]}),
                json!({"role": "tool", "tool_call_id": "c1", "content": "{\"temp\":18}"}),
                json!({"role": "tool", "tool_call_id": "c2", "content": "rain"}),
            ]
        );
        let body = serde_json::to_value(to_wire(&request, 1).unwrap()).unwrap();
        assert_eq!(
            body["tools"],
            json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}])
        );
        assert_eq!(
            body["tool_choice"],
            json!({"type": "function", "function": {"name": "get_weather"}})
        );
        assert_eq!(body["parallel_tool_calls"], true);
        assert_eq!(body["response_format"]["type"], "json_schema");
        assert_eq!(body["response_format"]["json_schema"]["name"], "w");
        assert_eq!(body["reasoning_effort"], "low");
        // Responses-only fields are not sent to a chat server.
        assert!(body.get("include").is_none() && body.get("reasoning").is_none());
        // A call without text before it gets its own assistant message.
        request.context = Context::Replay(vec![
            json!({"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"}),
            json!({"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": "{}"}),
        ]);
        let messages = chat_messages(&request);
        assert_eq!(messages[0]["content"], Value::Null);
        assert_eq!(messages[0]["tool_calls"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn bad_n_and_previous_context_are_typed_errors() {
        let request = BackendRequest::new("m", vec![json!({"role": "user", "content": "x"})]);
        assert!(matches!(to_wire(&request, 0), Err(Error::Config { .. })));
        assert!(matches!(to_wire(&request, 129), Err(Error::Config { .. })));
        assert_eq!(to_wire(&request, 128).unwrap().n, Some(128));
        assert_eq!(to_wire(&request, 1).unwrap().n, None);
        let mut previous = request;
        previous.context = Context::Previous(crate::ids::ResponseId::new("resp_1").unwrap());
        assert!(matches!(to_wire(&previous, 1), Err(Error::Unsupported(_))));
    }

    #[test]
    fn fixture_completion_becomes_three_replies() {
        let completion: ChatCompletion =
            serde_json::from_str(include_str!("../../tests/fixtures/protocol/chat-n3.json"))
                .unwrap();
        let replies = replies_from(Assembled::from_completion(completion), 3).unwrap();
        assert_eq!(replies.len(), 3);
        let outputs: Vec<u64> = replies.iter().map(|r| r.usage.output_tokens).collect();
        assert_eq!(outputs.iter().sum::<u64>(), 118);
        for reply in &replies {
            assert_eq!(reply.usage.input_tokens, 24);
            assert_eq!(reply.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
            assert_eq!(reply.response_id, None);
            assert!(!reply.stored);
            assert_eq!(
                crate::node::output_text_of(&reply.output),
                reply.output_text
            );
        }
        // The longest answer gets the largest share.
        let longest = (0..3)
            .max_by_key(|&i| replies[i].output_text.chars().count())
            .unwrap();
        assert_eq!(outputs[longest], *outputs.iter().max().unwrap());
    }

    #[test]
    fn fewer_choices_than_asked_is_an_error_that_keeps_them() {
        let completion = || -> ChatCompletion {
            serde_json::from_str(include_str!("../../tests/fixtures/protocol/chat-n3.json"))
                .unwrap()
        };
        let all = replies_from(Assembled::from_completion(completion()), 3).unwrap();
        let mut err = replies_from(Assembled::from_completion(completion()), 5).unwrap_err();
        assert!(
            matches!(
                err,
                Error::FanOutShort {
                    asked: 5,
                    received: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.partial_replies(), Some(&all[..]));
        assert_eq!(err.take_partial_replies(), all);
        assert_eq!(err.partial_replies(), Some(&[][..]));
        assert!(matches!(err, Error::FanOutShort { received: 3, .. }));

        // No choice at all: short for a fan-out, "no choices" for a single reply.
        let empty = || Assembled {
            model: "m".to_owned(),
            ..Assembled::default()
        };
        assert!(matches!(
            replies_from(empty(), 2),
            Err(Error::FanOutShort {
                asked: 2,
                received: 0,
                ..
            })
        ));
        assert!(matches!(
            replies_from(empty(), 1),
            Err(Error::Decode { .. })
        ));
    }

    #[test]
    fn streamed_tool_call_fragments_merge() {
        let mut assembled = Assembled::default();
        let chunk = |delta: Value, finish: Value| -> ChatChunk {
            serde_json::from_value(json!({"id": "c", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
            .unwrap()
        };
        assembled.push(chunk(json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}]}), Value::Null));
        assembled.push(chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            Value::Null,
        ));
        assembled.push(chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            json!("tool_calls"),
        ));
        let reply = first(replies_from(assembled, 1).unwrap()).unwrap();
        assert_eq!(
            reply.output,
            vec![
                json!({"type": "function_call", "call_id": "call_1", "name": "weather",
                "arguments": "{\"city\":\"Paris\"}", "status": "completed"})
            ]
        );
        assert_eq!(reply.status, NodeStatus::Completed);
    }

    #[test]
    fn truncated_and_refused_choices_keep_their_shape() {
        let completion: ChatCompletion = serde_json::from_value(json!({
            "id": "chatcmpl-1", "created": 1_767_226_500, "model": "m",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Day 1: Lou"}, "finish_reason": "length"},
                {"index": 1, "message": {"role": "assistant", "content": null, "refusal": "I can't help."}, "finish_reason": "stop"},
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
                "prompt_tokens_details": {"cached_tokens": 4}},
        }))
        .unwrap();
        let replies = replies_from(Assembled::from_completion(completion), 2).unwrap();
        assert_eq!(replies[0].status, NodeStatus::Incomplete);
        assert_eq!(replies[0].output[0]["status"], "incomplete");
        assert_eq!(
            replies[0].created_at,
            Timestamp::from_unix_seconds(1_767_226_500)
        );
        assert_eq!(replies[1].output_text, "");
        assert_eq!(
            replies[1].output[0]["content"],
            json!([{"type": "refusal", "refusal": "I can't help."}])
        );
        for reply in &replies {
            assert_eq!(reply.usage.input_tokens, 10);
            assert_eq!(reply.usage.cached_tokens, 4);
        }
        assert_eq!(
            replies[0].usage.output_tokens + replies[1].usage.output_tokens,
            7
        );
        // The refusal replays as the assistant's text.
        assert_eq!(
            to_message(&replies[1].output[0]).unwrap()["content"],
            "I can't help."
        );
    }
}
