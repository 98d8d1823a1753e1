//! What an agent's request adds to a create: the settings that change the output
//! (tools, reasoning, `text.format`, `truncation`), the checks on its input
//! (duplicate ids, unanswered calls, replayed reasoning), the context window, and
//! the output the fake model makes from them. `responses.rs` calls in here and
//! plays the result, whole or streamed.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::context::Segment;
use super::failure::Failure;
use super::model::{self, Summary};
use super::reasoning::{self, Reasoning};
use super::request::CreateRequest;
use super::responses::{Seq, message_item};
use super::schema::{self, Hints};
use super::state::Shared;
use super::stream::{self, Step};
use super::tools::Tools;
use super::{ids, items};

/// The agent settings of one create request, validated.
#[derive(Debug)]
pub(crate) struct Agent {
    tools: Tools,
    reasoning: Option<Reasoning>,
    format: Format,
    truncate: bool,
    /// Tokens `tools` add to the input.
    tool_tokens: u64,
}

/// `text.format`.
#[derive(Debug)]
enum Format {
    Text,
    JsonSchema(Value),
    JsonObject,
}

/// The context the fake model reads, after the context window was applied.
#[derive(Debug)]
pub(crate) struct Fitted {
    /// The summary of what the model reads.
    pub(crate) context: Summary,
    /// `usage.input_tokens`.
    pub(crate) input_tokens: u64,
    /// `usage.input_tokens_details.cached_tokens`: the inherited part, or 0 when
    /// truncation changed the prefix.
    pub(crate) cached_tokens: u64,
}

/// What the fake model produced for one request.
#[derive(Debug)]
pub(crate) struct Output {
    /// The output items, completed (or `incomplete`), in order.
    pub(crate) items: Vec<Value>,
    /// The message's id and text, when the output has a message.
    pub(crate) message: Option<(String, String)>,
    /// Whether `max_output_tokens` cut the output.
    pub(crate) incomplete: bool,
    /// `usage.output_tokens` (reasoning included).
    pub(crate) output_tokens: u64,
    /// `usage.output_tokens_details.reasoning_tokens`.
    pub(crate) reasoning_tokens: u64,
}

impl Agent {
    /// Validates the agent settings of `req`, and its input's item ids.
    pub(crate) fn parse(req: &CreateRequest) -> Result<Self, Failure> {
        let tools = Tools::parse(&req.raw)?;
        let reasoning = reasoning::parse(&req.raw, &req.model)?;
        let format = parse_format(&req.raw)?;
        let truncate = match req.raw.get("truncation") {
            None | Some(Value::Null) => false,
            Some(Value::String(t)) if t == "auto" => true,
            Some(Value::String(t)) if t == "disabled" => false,
            Some(Value::String(t)) => {
                return Err(Failure::invalid_value(
                    "truncation",
                    format!("Invalid value: '{t}'. Supported values are: 'auto' and 'disabled'."),
                    "invalid_value",
                ));
            }
            Some(other) => return Err(Failure::wrong_type("truncation", "a string", other)),
        };
        check_duplicate_ids(&req.input)?;
        let tool_tokens = match req.raw.get("tools") {
            Some(Value::Array(list)) if !list.is_empty() => {
                (Value::Array(list.clone()).to_string().chars().count() as u64).div_ceil(4)
            }
            _ => 0,
        };
        if matches!(format, Format::JsonObject) && !mentions_json(req) {
            return Err(Failure::bad_request(
                "Response input messages must contain the word 'json' in some form to use 'text.format' of type 'json_object'.",
                Some("input"),
                None,
            ));
        }
        Ok(Self {
            tools,
            reasoning,
            format,
            truncate,
            tool_tokens,
        })
    }

    /// Checks the request's input against the context before it: every open call
    /// answered, every replayed reasoning item the emulator's own for this model.
    /// A reasoning item replayed without `encrypted_content` must be stored in `shared`.
    pub(crate) fn check_input(
        &self,
        shared: &Shared,
        inherited: &Summary,
        req: &CreateRequest,
    ) -> Result<(), Failure> {
        super::tools::check_answers(inherited.pending_calls(), &req.input)?;
        reasoning::check_replayed(&req.input, &req.model, |id| shared.knows_reasoning_item(id))
    }

    /// Applies the model's context window to the context `inherited` (whose summary
    /// is `inherited_summary`) followed by the request's input: over the window,
    /// `context_length_exceeded`, or with `truncation: "auto"` the oldest items are
    /// dropped until the rest fits.
    pub(crate) fn fit(
        &self,
        req: &CreateRequest,
        inherited: Option<&Arc<Segment>>,
        inherited_summary: &Summary,
    ) -> Result<Fitted, Failure> {
        let fixed = model::instruction_tokens(req.instructions.as_deref()) + self.tool_tokens;
        let context = inherited_summary.extended(&req.input);
        let window = model::context_window(&req.model);
        if fixed + context.tokens <= window {
            return Ok(Fitted {
                input_tokens: fixed + context.tokens,
                cached_tokens: inherited_summary.tokens,
                context,
            });
        }
        if !self.truncate {
            return Err(context_length_exceeded());
        }
        // Over the window only: walking the whole history is acceptable here.
        let mut all: Vec<&Value> = inherited.map(|s| s.items()).unwrap_or_default();
        all.extend(req.input.iter());
        let mut kept = 0u64;
        let mut start = all.len();
        while start > 0 {
            let cost = model::item_tokens(all[start - 1]);
            if fixed + kept + cost > window {
                break;
            }
            kept += cost;
            start -= 1;
        }
        if start == all.len() {
            return Err(context_length_exceeded());
        }
        let kept_items: Vec<Value> = all[start..].iter().map(|v| (*v).clone()).collect();
        let context = Summary::of(&kept_items);
        Ok(Fitted {
            input_tokens: fixed + context.tokens,
            cached_tokens: 0,
            context,
        })
    }

    /// The fake model's output for `context` (see the emulator's module docs):
    /// a reasoning item first for reasoning models, then function calls or a message.
    pub(crate) fn output(
        &self,
        shared: &Shared,
        req: &CreateRequest,
        context: &Summary,
        ordinal: u64,
    ) -> Output {
        let mut items = Vec::new();
        let mut reasoning_tokens = 0;
        let mut budget = req.max_output_tokens;
        if let Some(reasoning) = &self.reasoning {
            items.push(reasoning.item(&req.model, context.latest_user()));
            reasoning_tokens = budget.map_or(reasoning.tokens, |b| b.min(reasoning.tokens));
            budget = budget.map(|b| b - reasoning_tokens);
        }
        if budget == Some(0) {
            // The reasoning used the whole budget: no visible output, as on the real API.
            return Output {
                items,
                message: None,
                incomplete: true,
                output_tokens: reasoning_tokens,
                reasoning_tokens,
            };
        }
        let calls = self.tools.calls(context.latest_user(), &req.input);
        if !calls.is_empty() {
            let call_tokens: u64 = calls
                .iter()
                .map(|c| {
                    let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                    model::text_tokens(&text("name")) + model::text_tokens(&text("arguments"))
                })
                .sum();
            items.extend(calls);
            return Output {
                items,
                message: None,
                incomplete: false,
                output_tokens: reasoning_tokens + call_tokens,
                reasoning_tokens,
            };
        }
        let mut text = match &self.format {
            Format::Text => shared.reply(context, ordinal),
            Format::JsonSchema(schema) => shared.next_scripted().unwrap_or_else(|| {
                schema::instance(
                    schema,
                    &Hints::from_text(context.latest_user().unwrap_or("")),
                )
                .to_string()
            }),
            Format::JsonObject => shared
                .next_scripted()
                .unwrap_or_else(|| json!({"reply": shared.reply(context, ordinal)}).to_string()),
        };
        let mut incomplete = false;
        if let Some(max) = budget
            && model::text_tokens(&text) > max
        {
            // Same estimate as usage: four characters per token.
            text = text.chars().take((max * 4) as usize).collect();
            incomplete = true;
        }
        let msg_id = ids::message();
        let status = if incomplete {
            "incomplete"
        } else {
            "completed"
        };
        items.push(message_item(&msg_id, status, &text));
        Output {
            items,
            output_tokens: reasoning_tokens + model::text_tokens(&text),
            message: Some((msg_id, text)),
            incomplete,
            reasoning_tokens,
        }
    }
}

/// The stream events of a non-message output item at `index` (a reasoning item or
/// a function call), in the real order: `output_item.added`, the item's own
/// events, `output_item.done`.
pub(crate) fn item_events(steps: &mut Vec<Step>, seq: &mut Seq, index: usize, item: &Value) {
    let id = item["id"].as_str().unwrap_or_default();
    let kind = item["type"].as_str().unwrap_or_default();
    let mut added = item.clone();
    if kind == "function_call" {
        added["arguments"] = json!("");
        added["status"] = json!("in_progress");
    } else {
        added["summary"] = json!([]);
    }
    push(
        steps,
        "response.output_item.added",
        json!({"output_index": index, "item": added, "sequence_number": seq.next()}),
    );
    if kind == "function_call" {
        let arguments = item["arguments"].as_str().unwrap_or_default();
        for delta in model::deltas_of_chars(arguments, 16) {
            push(
                steps,
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": index, "delta": delta, "sequence_number": seq.next()}),
            );
        }
        push(
            steps,
            "response.function_call_arguments.done",
            json!({"item_id": id, "output_index": index, "arguments": arguments, "sequence_number": seq.next()}),
        );
    } else if let Some(Value::Array(parts)) = item.get("summary") {
        for (s, part) in parts.iter().enumerate() {
            let text = part["text"].as_str().unwrap_or_default();
            let base = json!({"item_id": id, "output_index": index, "summary_index": s});
            let with = |extra: Value| -> Value {
                let mut event = base.clone();
                if let (Value::Object(e), Value::Object(x)) = (&mut event, extra) {
                    e.extend(x);
                }
                event
            };
            push(
                steps,
                "response.reasoning_summary_part.added",
                with(
                    json!({"part": {"type": "summary_text", "text": ""}, "sequence_number": seq.next()}),
                ),
            );
            for delta in model::deltas(text) {
                push(
                    steps,
                    "response.reasoning_summary_text.delta",
                    with(json!({"delta": delta, "sequence_number": seq.next()})),
                );
            }
            push(
                steps,
                "response.reasoning_summary_text.done",
                with(json!({"text": text, "sequence_number": seq.next()})),
            );
            push(
                steps,
                "response.reasoning_summary_part.done",
                with(
                    json!({"part": {"type": "summary_text", "text": text}, "sequence_number": seq.next()}),
                ),
            );
        }
    }
    push(
        steps,
        "response.output_item.done",
        json!({"output_index": index, "item": item, "sequence_number": seq.next()}),
    );
}

/// Sends `event` with its `type` first among the fields the SDK reads.
fn push(steps: &mut Vec<Step>, event: &str, mut data: Value) {
    data["type"] = json!(event);
    steps.push(stream::sse(event, &data));
}

/// `POST /responses/input_tokens`: the count a create with this body would report as
/// `usage.input_tokens`, context window and truncation applied.
pub(crate) fn input_tokens(
    shared: &Shared,
    req: &CreateRequest,
    inherited: Option<&Arc<Segment>>,
) -> Result<Value, Failure> {
    let agent = Agent::parse(req)?;
    let summary = super::context::summary_of(inherited);
    agent.check_input(shared, &summary, req)?;
    let fitted = agent.fit(req, inherited, &summary)?;
    Ok(json!({"object": "response.input_tokens", "input_tokens": fitted.input_tokens}))
}

fn context_length_exceeded() -> Failure {
    Failure::invalid_value(
        "input",
        "Your input exceeds the context window of this model. Please adjust your input and try again.",
        "context_length_exceeded",
    )
}

/// 400 when two input items share an id, worded like the real API.
fn check_duplicate_ids(input: &[Value]) -> Result<(), Failure> {
    let mut seen = std::collections::HashSet::new();
    for item in input {
        if let Some(id) = item.get("id").and_then(Value::as_str)
            && !seen.insert(id)
        {
            return Err(Failure::bad_request(
                format!(
                    "Duplicate item found with id {id}. Remove duplicate items from your input and try again."
                ),
                Some("input"),
                None,
            ));
        }
    }
    Ok(())
}

/// `text.format`, validated with the real API's params.
fn parse_format(raw: &Map<String, Value>) -> Result<Format, Failure> {
    let text = match raw.get("text") {
        None | Some(Value::Null) => return Ok(Format::Text),
        Some(Value::Object(text)) => text,
        Some(other) => return Err(Failure::wrong_type("text", "an object", other)),
    };
    let format = match text.get("format") {
        None | Some(Value::Null) => return Ok(Format::Text),
        Some(Value::Object(format)) => format,
        Some(other) => return Err(Failure::wrong_type("text.format", "an object", other)),
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(Format::Text),
        Some("json_object") => Ok(Format::JsonObject),
        Some("json_schema") => {
            match format.get("name") {
                Some(Value::String(name))
                    if !name.is_empty()
                        && name.len() <= 64
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') => {}
                Some(Value::String(_)) => {
                    return Err(Failure::invalid_value(
                        "text.format.name",
                        "Invalid 'text.format.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.",
                        "invalid_value",
                    ));
                }
                None | Some(Value::Null) => return Err(Failure::missing("text.format.name")),
                Some(other) => {
                    return Err(Failure::wrong_type("text.format.name", "a string", other));
                }
            }
            match format.get("schema") {
                Some(schema @ Value::Object(_)) => Ok(Format::JsonSchema(schema.clone())),
                None | Some(Value::Null) => Err(Failure::missing("text.format.schema")),
                Some(other) => Err(Failure::wrong_type(
                    "text.format.schema",
                    "an object",
                    other,
                )),
            }
        }
        Some(other) => Err(Failure::invalid_value(
            "text.format.type",
            format!(
                "Invalid value: '{other}'. Supported values are: 'text', 'json_object', and 'json_schema'."
            ),
            "invalid_value",
        )),
        None => Err(Failure::missing("text.format.type")),
    }
}

/// Whether the instructions or the request's input mention JSON (any case), as
/// `json_object` requires.
fn mentions_json(req: &CreateRequest) -> bool {
    let has = |text: &str| text.to_ascii_lowercase().contains("json");
    req.instructions.as_deref().is_some_and(has)
        || req.input.iter().any(|item| has(&items::text_of(item)))
}
