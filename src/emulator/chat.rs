//! `POST /v1/chat/completions` with `n` choices, streamed or not.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::failure::Failure;
use super::fault::Fault;
use super::request::{json_object, optional_bool, required_string};
use super::responses::PlayedFault;
use super::state::{Shared, unix_now};
use super::stream::{self, Step};
use super::{ids, items, model, tools};

/// `POST /v1/chat/completions`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    fault: Option<Extension<PlayedFault>>,
    body: Bytes,
) -> Result<Response, Failure> {
    let raw = json_object(&body)?;
    let model_name = required_string(&raw, "model")?;
    let context = messages(&raw)?;
    let asked = choice_count(&raw)?;
    // A server that ignores or caps `n` answers fewer choices, without saying so.
    let n = shared
        .config
        .max_chat_choices
        .map_or(asked, |max| asked.min(max));
    let stream = optional_bool(&raw, "stream")?.unwrap_or(false);
    let include_usage = raw
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let tools = tools::parse_chat(&raw)?;
    let tool_items = tool_items(&raw)?;

    let summary = model::Summary::of(&context);
    // Each choice calls tools (fresh call ids per choice) or writes a text.
    let replies: Vec<Reply> = (0..n)
        .map(|i| {
            let calls = tools.calls(summary.latest_user(), &tool_items);
            if calls.is_empty() {
                Reply::Text(shared.reply(&summary, i))
            } else {
                Reply::Calls(calls)
            }
        })
        .collect();
    let prompt_tokens = summary.tokens;
    let completion_tokens: u64 = replies.iter().map(Reply::tokens).sum();
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"audio_tokens": 0, "cache_write_tokens": 0, "cached_tokens": 0, "image_tokens": 0, "text_tokens": prompt_tokens},
        "completion_tokens_details": {"accepted_prediction_tokens": 0, "audio_tokens": 0, "reasoning_tokens": 0, "rejected_prediction_tokens": 0, "text_tokens": completion_tokens},
    });
    let head = Head {
        id: ids::chat_completion(),
        created: unix_now(),
        model: model_name,
    };

    let (fault, hold) = PlayedFault::unpack(fault);
    if !stream {
        shared.think(hold).await;
        let choices: Vec<Value> = replies
            .iter()
            .enumerate()
            .map(|(i, reply)| {
                json!({
                    "index": i,
                    "message": reply.message(),
                    "logprobs": null,
                    "finish_reason": reply.finish_reason(),
                })
            })
            .collect();
        return Ok(Json(json!({
            "id": head.id,
            "object": "chat.completion",
            "created": head.created,
            "model": head.model,
            "choices": choices,
            "usage": usage,
            "metadata": raw.get("metadata").cloned().unwrap_or(Value::Null),
            "moderation": null,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }))
        .into_response());
    }

    let mut plan: Vec<Step> = Vec::new();
    let mut salt = 0;
    let mut push = |plan: &mut Vec<Step>, choices: Value, usage: Value| {
        chunk_into(plan, &head, include_usage, choices, usage, salt);
        salt += 1;
    };
    // Role chunks for every choice, then content chunks round-robin, then a finish
    // chunk per choice, then usage: the order of `chat-n3-stream.sse`.
    for i in 0..replies.len() {
        push(
            &mut plan,
            json!([{"index": i, "delta": {"role": "assistant", "content": "", "refusal": null, "audio": null}, "logprobs": null, "finish_reason": null}]),
            Value::Null,
        );
    }
    plan.push(Step::Think(shared.latency()));
    let deltas: Vec<Vec<Value>> = replies.iter().map(Reply::deltas).collect();
    let rounds = deltas.iter().map(Vec::len).max().unwrap_or(0);
    for round in 0..rounds {
        if round > 0 {
            plan.push(Step::Sleep(shared.config.token_delay));
        }
        for (i, parts) in deltas.iter().enumerate() {
            if let Some(delta) = parts.get(round) {
                push(
                    &mut plan,
                    json!([{"index": i, "delta": delta, "logprobs": null, "finish_reason": null}]),
                    Value::Null,
                );
            }
        }
    }
    for (i, reply) in replies.iter().enumerate() {
        push(
            &mut plan,
            json!([{"index": i, "delta": {"content": null, "refusal": null, "audio": null}, "logprobs": null, "finish_reason": reply.finish_reason()}]),
            Value::Null,
        );
    }
    if include_usage {
        push(&mut plan, json!([]), usage);
    }
    plan.push(stream::data_only("[DONE]"));
    if let Some(Fault::ErrorEvent {
        after_events, code, ..
    }) = &fault
    {
        let plan = stream::error_after(plan, *after_events, |_| {
            let error = json!({"error": Failure::stream_error(code, None)});
            stream::data_only(&error.to_string())
        });
        return Ok(stream::response(shared, plan));
    }
    let fault = fault.map(|f| match f {
        // Chat streams have no `response.failed`; a failure is a cut connection.
        Fault::FailMidStream {
            after_deltas,
            count,
        } => Fault::DropMidStream {
            after_events: replies.len() + after_deltas,
            count,
        },
        other => other,
    });
    Ok(stream::response(
        shared,
        stream::apply_fault(plan, fault.as_ref()),
    ))
}

/// One choice's reply: a text, or tool calls (as Responses `function_call` items).
enum Reply {
    Text(String),
    Calls(Vec<Value>),
}

impl Reply {
    fn tokens(&self) -> u64 {
        match self {
            Self::Text(text) => model::text_tokens(text),
            Self::Calls(calls) => calls
                .iter()
                .map(|c| {
                    let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                    model::text_tokens(&text("name")) + model::text_tokens(&text("arguments"))
                })
                .sum(),
        }
    }

    fn finish_reason(&self) -> &'static str {
        match self {
            Self::Text(_) => "stop",
            Self::Calls(_) => "tool_calls",
        }
    }

    /// The choice's `message`.
    fn message(&self) -> Value {
        match self {
            Self::Text(text) => {
                json!({"role": "assistant", "content": text, "refusal": null, "annotations": [], "audio": null})
            }
            Self::Calls(calls) => {
                let tool_calls: Vec<Value> = calls
                    .iter()
                    .map(|c| {
                        json!({"id": c["call_id"], "type": "function",
                                    "function": {"name": c["name"], "arguments": c["arguments"]}})
                    })
                    .collect();
                json!({"role": "assistant", "content": null, "refusal": null, "annotations": [],
                       "audio": null, "tool_calls": tool_calls})
            }
        }
    }

    /// The stream deltas after the role chunk: text pieces, or for each call a chunk
    /// with its id and name, then its arguments in pieces.
    fn deltas(&self) -> Vec<Value> {
        match self {
            Self::Text(text) => model::deltas(text)
                .into_iter()
                .map(|d| json!({"content": d, "refusal": null, "audio": null}))
                .collect(),
            Self::Calls(calls) => {
                let mut out = Vec::new();
                for (k, c) in calls.iter().enumerate() {
                    out.push(
                        json!({"tool_calls": [{"index": k, "id": c["call_id"], "type": "function",
                        "function": {"name": c["name"], "arguments": ""}}]}),
                    );
                    let arguments = c["arguments"].as_str().unwrap_or_default();
                    for piece in model::deltas_of_chars(arguments, 16) {
                        out.push(
                            json!({"tool_calls": [{"index": k, "function": {"arguments": piece}}]}),
                        );
                    }
                }
                out
            }
        }
    }
}

/// The tool calls and tool results of `messages` as Responses items
/// (`function_call`, `function_call_output`), checked like the real API: every
/// `tool` message answers an earlier call, and every call is answered.
fn tool_items(raw: &Map<String, Value>) -> Result<Vec<Value>, Failure> {
    let Some(Value::Array(list)) = raw.get("messages") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    // Open calls: (call id, index of the assistant message that made it).
    let mut open: Vec<(String, usize)> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        match m.get("role").and_then(Value::as_str) {
            Some("assistant") => {
                if let Some(Value::Array(calls)) = m.get("tool_calls") {
                    for call in calls {
                        let id = call["id"].as_str().unwrap_or_default().to_owned();
                        out.push(json!({"type": "function_call", "call_id": id,
                            "name": call["function"]["name"], "arguments": call["function"]["arguments"]}));
                        open.push((id, i));
                    }
                }
            }
            Some("tool") => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match open.iter().position(|(c, _)| c == id) {
                    Some(at) => {
                        open.remove(at);
                    }
                    None => {
                        return Err(Failure::bad_request(
                            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                            Some(&format!("messages.[{i}].role")),
                            None,
                        ));
                    }
                }
                let output = items::text_of(
                    &json!({"content": m.get("content").cloned().unwrap_or(Value::Null)}),
                );
                out.push(json!({"type": "function_call_output", "call_id": id, "output": output}));
            }
            _ => {}
        }
    }
    if let Some((_, at)) = open.first() {
        let ids: Vec<&str> = open.iter().map(|(c, _)| c.as_str()).collect();
        return Err(Failure::bad_request(
            format!(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                ids.join(", ")
            ),
            Some(&format!("messages.[{at}].role")),
            None,
        ));
    }
    Ok(out)
}

const SYSTEM_FINGERPRINT: &str = "fp_emulator";

struct Head {
    id: String,
    created: i64,
    model: String,
}

fn chunk_into(
    steps: &mut Vec<Step>,
    head: &Head,
    include_usage: bool,
    choices: Value,
    usage: Value,
    salt: usize,
) {
    let mut data = json!({
        "id": head.id,
        "object": "chat.completion.chunk",
        "created": head.created,
        "model": head.model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [],
        "moderation": null,
        "obfuscation": &"Xk3pQ9zLw2"[..3 + salt % 7],
    });
    data["choices"] = choices;
    if include_usage {
        data["usage"] = usage;
    }
    steps.push(stream::data_only(&data.to_string()));
}

/// The `messages` as context items (role + content), validated.
fn messages(raw: &Map<String, Value>) -> Result<Vec<Value>, Failure> {
    let list = match raw.get("messages") {
        None | Some(Value::Null) => return Err(Failure::missing("messages")),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(Failure::wrong_type("messages", "an array", other)),
    };
    if list.is_empty() {
        return Err(Failure::invalid_value(
            "messages",
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "empty_array",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            let param = format!("messages[{i}]");
            let role = match m.get("role") {
                Some(Value::String(r))
                    if matches!(
                        r.as_str(),
                        "system" | "developer" | "user" | "assistant" | "tool" | "function"
                    ) =>
                {
                    r.clone()
                }
                Some(Value::String(r)) => {
                    return Err(Failure::invalid_value(
                        &format!("{param}.role"),
                        format!("Invalid value: '{r}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."),
                        "invalid_value",
                    ));
                }
                Some(other) => {
                    return Err(Failure::wrong_type(&format!("{param}.role"), "a string", other));
                }
                None => return Err(Failure::missing(&format!("{param}.role"))),
            };
            let content = m.get("content").cloned().unwrap_or(Value::Null);
            let text = items::text_of(&json!({"content": content}));
            Ok(json!({"role": role, "content": text}))
        })
        .collect()
}

/// `n`: 1..=128, default 1.
fn choice_count(raw: &Map<String, Value>) -> Result<u64, Failure> {
    match raw.get("n") {
        None | Some(Value::Null) => Ok(1),
        Some(v) => match v.as_i64() {
            Some(n) if (1..=128).contains(&n) => Ok(n as u64),
            Some(n) => Err(Failure::out_of_range("n", n, 1, Some(128))),
            None => Err(Failure::wrong_type("n", "an integer", v)),
        },
    }
}
