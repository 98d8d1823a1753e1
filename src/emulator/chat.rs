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
use super::{ids, items, model};

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

    let summary = model::Summary::of(&context);
    let texts: Vec<String> = (0..n).map(|i| shared.reply(&summary, i)).collect();
    let prompt_tokens = summary.tokens;
    let completion_tokens: u64 = texts.iter().map(|t| model::text_tokens(t)).sum();
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
        let choices: Vec<Value> = texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                json!({
                    "index": i,
                    "message": {"role": "assistant", "content": text, "refusal": null, "annotations": [], "audio": null},
                    "logprobs": null,
                    "finish_reason": "stop",
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
    for i in 0..texts.len() {
        push(
            &mut plan,
            json!([{"index": i, "delta": {"role": "assistant", "content": "", "refusal": null, "audio": null}, "logprobs": null, "finish_reason": null}]),
            Value::Null,
        );
    }
    plan.push(Step::Think(shared.latency()));
    let deltas: Vec<Vec<String>> = texts.iter().map(|t| model::deltas(t)).collect();
    let rounds = deltas.iter().map(Vec::len).max().unwrap_or(0);
    for round in 0..rounds {
        if round > 0 {
            plan.push(Step::Sleep(shared.config.token_delay));
        }
        for (i, parts) in deltas.iter().enumerate() {
            if let Some(delta) = parts.get(round) {
                push(
                    &mut plan,
                    json!([{"index": i, "delta": {"content": delta, "refusal": null, "audio": null}, "logprobs": null, "finish_reason": null}]),
                    Value::Null,
                );
            }
        }
    }
    for i in 0..texts.len() {
        push(
            &mut plan,
            json!([{"index": i, "delta": {"content": null, "refusal": null, "audio": null}, "logprobs": null, "finish_reason": "stop"}]),
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
            after_events: texts.len() + after_deltas,
            count,
        },
        other => other,
    });
    Ok(stream::response(
        shared,
        stream::apply_fault(plan, fault.as_ref()),
    ))
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
