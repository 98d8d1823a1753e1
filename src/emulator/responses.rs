//! `POST /responses`, `GET`/`DELETE /responses/{id}`, `GET /responses/{id}/input_items`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::agent::{self, Agent, Output};
use super::failure::Failure;
use super::fault::Fault;
use super::request::CreateRequest;
use super::state::{Commit, OwnedStart, Shared, Start, unix_now};
use super::stream::{self, Step};
use super::{background, context, ids, model, page};

/// A fault the front middleware picked for this request that the handler plays:
/// a stream fault, or [`Fault::Hold`].
#[derive(Debug, Clone)]
pub(crate) struct PlayedFault(pub(crate) Fault);

impl PlayedFault {
    /// The fault, if any, and whether it is a [`Fault::Hold`].
    pub(crate) fn unpack(fault: Option<Extension<Self>>) -> (Option<Fault>, bool) {
        let fault = fault.map(|Extension(Self(f))| f);
        // A response that is not a background one has no queue to wait in.
        let hold = matches!(fault, Some(Fault::Hold { .. } | Fault::HoldQueued { .. }));
        (fault, hold)
    }
}

/// `POST /v1/responses`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    fault: Option<Extension<PlayedFault>>,
    body: Bytes,
) -> Result<Response, Failure> {
    let req = CreateRequest::parse(&body)?;
    let agent = Agent::parse(&req)?;
    let start = match &req.start {
        OwnedStart::Root => Start::Root,
        OwnedStart::Previous(id) => Start::Previous(id),
        OwnedStart::Conversation(id) => Start::Conversation(id),
    };
    // Checked before `resolve`, so that a refused request reserves no sibling
    // ordinal and takes no conversation lock.
    let peeked = shared.peek(&start)?;
    let peeked_summary = context::summary_of(peeked.as_ref());
    agent.check_input(&shared, &peeked_summary, &req)?;
    let mut fitted = agent.fit(&req, peeked.as_ref(), &peeked_summary)?;
    let resolved = shared.resolve(&start)?;
    // The inherited context is shared and summarised already: the reply reads its
    // summary and this request's own input, never the history (and holds no lock).
    let same = match (&peeked, &resolved.inherited) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    };
    if !same {
        // A conversation grew in between: check again against what is inherited.
        let inherited = context::summary_of(resolved.inherited.as_ref());
        agent.check_input(&shared, &inherited, &req)?;
        fitted = agent.fit(&req, resolved.inherited.as_ref(), &inherited)?;
    }
    let out = agent.output(&shared, &req, &fitted.context, resolved.ordinal);

    let usage = json!({
        "input_tokens": fitted.input_tokens,
        "input_tokens_details": {
            "cached_tokens": fitted.cached_tokens,
            "cache_write_tokens": 0,
            "cache_write_tokens_details": null,
        },
        "output_tokens": out.output_tokens,
        "output_tokens_details": {"reasoning_tokens": out.reasoning_tokens},
        "total_tokens": fitted.input_tokens + out.output_tokens,
    });

    let id = ids::response();
    let created_at = unix_now();
    let status = if out.incomplete {
        "incomplete"
    } else {
        "completed"
    };
    let mut object = response_object(&req, &id, created_at);
    object["status"] = json!(status);
    object["output"] = json!(out.items);
    object["usage"] = usage;
    if out.incomplete {
        object["incomplete_details"] = json!({"reason": "max_output_tokens"});
    }

    let commit = Commit {
        id,
        object,
        start: req.start.clone(),
        inherited: resolved.inherited,
        input: req.input.clone(),
        output: out.items.clone(),
        store: req.store,
        lock: resolved.lock,
    };

    let (fault, hold) = PlayedFault::unpack(fault);
    if req.background {
        let object = commit.object.clone();
        let input = commit.input.clone();
        let plan = match &fault {
            Some(Fault::FailMidStream { after_deltas, .. }) => {
                failed_steps(commit, &out, *after_deltas, &shared)
            }
            Some(Fault::Hold { .. }) => {
                stream::apply_fault(stream_steps(commit, &out, &shared), fault.as_ref())
            }
            _ => stream_steps(commit, &out, &shared),
        };
        return Ok(background::create(
            &shared,
            &object,
            input,
            plan,
            req.stream,
            fault.as_ref(),
        ));
    }
    if !req.stream {
        shared.think(hold).await;
        let mut commit = commit;
        commit.object["completed_at"] = json!(unix_now());
        let object = commit.object.clone();
        shared.commit(commit);
        return Ok(Json(object).into_response());
    }
    let previous = match &req.start {
        OwnedStart::Previous(id) => Some(id.clone()),
        _ => None,
    };
    let steps = match fault {
        Some(Fault::FailMidStream { after_deltas, .. }) => {
            failed_steps(commit, &out, after_deltas, &shared)
        }
        Some(Fault::ErrorEvent {
            after_events, code, ..
        }) => {
            let plan = stream_steps(commit, &out, &shared);
            stream::error_after(plan, after_events, |sequence_number| {
                // The spec's flat form: the error's fields beside `type`.
                let mut event = Failure::stream_error(&code, previous.as_deref());
                event["type"] = json!("error");
                event["sequence_number"] = json!(sequence_number);
                stream::sse("error", &event)
            })
        }
        Some(Fault::DropAfterCreate { .. }) => {
            stream::detach_after(stream_steps(commit, &out, &shared), 1, &shared)
        }
        other => stream::apply_fault(stream_steps(commit, &out, &shared), other.as_ref()),
    };
    Ok(stream::response(shared, steps))
}

/// `POST /v1/responses/input_tokens`: what `usage.input_tokens` of a create with
/// this body would be. `input` may be left out (the inherited context alone).
pub(crate) async fn input_tokens(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Value>, Failure> {
    let mut raw = super::request::json_object(&body)?;
    raw.entry("input").or_insert_with(|| json!([]));
    let req = CreateRequest::from_map(raw)?;
    let start = match &req.start {
        OwnedStart::Root => Start::Root,
        OwnedStart::Previous(id) => Start::Previous(id),
        OwnedStart::Conversation(id) => Start::Conversation(id),
    };
    let inherited = shared.peek(&start)?;
    agent::input_tokens(&shared, &req, inherited.as_ref()).map(Json)
}

/// `GET /v1/responses/{id}`; with `?stream=true` a background response's events
/// (see [`background::stream`]).
pub(crate) async fn retrieve(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    fault: Option<Extension<PlayedFault>>,
) -> Result<Response, Failure> {
    if query.get("stream").map(String::as_str) == Some("true") {
        let (fault, _) = PlayedFault::unpack(fault);
        let after = query.get("starting_after").map(String::as_str);
        return background::stream(&shared, &id, after, fault.as_ref());
    }
    shared
        .response(&id)
        .map(|object| Json(object).into_response())
        .ok_or_else(|| not_found(&id))
}

/// `DELETE /v1/responses/{id}`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Failure> {
    if shared.delete_response(&id) {
        Ok(Json(
            json!({"id": id, "object": "response", "deleted": true}),
        ))
    } else {
        Err(not_found(&id))
    }
}

/// `GET /v1/responses/{id}/input_items`: the response's own input items.
pub(crate) async fn input_items(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Failure> {
    if let Some((context, input_len)) = shared.input_items(&id) {
        let input = context.own_items().get(..input_len).unwrap_or_default();
        return page::page(input, &query, Value::clone).map(Json);
    }
    // A background response still queued or running is not stored yet, but its
    // input is known from its creation on.
    let job = shared.jobs.get(&id).ok_or_else(|| not_found(&id))?;
    page::page(job.input(), &query, Value::clone).map(Json)
}

fn not_found(id: &str) -> Failure {
    Failure::not_found(format!("Response with id '{id}' not found."), None)
}

/// An assistant message output item.
pub(crate) fn message_item(id: &str, status: &str, text: &str) -> Value {
    json!({
        "id": id,
        "type": "message",
        "status": status,
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
        "role": "assistant",
        "phase": null,
    })
}

/// A Response object in progress (empty output, no usage), with every key the real
/// API sends; request settings are echoed back, the rest get the real defaults.
fn response_object(req: &CreateRequest, id: &str, created_at: i64) -> Value {
    let echo = |key: &str, default: Value| -> Value {
        match req.raw.get(key) {
            None | Some(Value::Null) => default,
            Some(v) => v.clone(),
        }
    };
    // The API reports these as decimals even when they were sent as integers.
    let decimal = |key: &str| -> Value {
        match req.raw.get(key).and_then(Value::as_f64) {
            Some(x) => json!(x),
            None => json!(1.0),
        }
    };
    let merged = |key: &str, mut base: Map<String, Value>| -> Value {
        if let Some(Value::Object(sent)) = req.raw.get(key) {
            for (k, v) in sent {
                base.insert(k.clone(), v.clone());
            }
        }
        Value::Object(base)
    };
    let reasoning = ["context", "effort", "generate_summary", "mode", "summary"]
        .into_iter()
        .map(|k| (k.to_owned(), Value::Null))
        .collect();
    let mut text = Map::new();
    text.insert("format".to_owned(), json!({"type": "text"}));
    text.insert("verbosity".to_owned(), json!("medium"));
    let conversation = match &req.start {
        OwnedStart::Conversation(conv) => json!({"id": conv}),
        _ => Value::Null,
    };
    let previous = match &req.start {
        OwnedStart::Previous(p) => json!(p),
        _ => Value::Null,
    };
    let service_tier = match req.raw.get("service_tier").and_then(Value::as_str) {
        Some(tier @ ("flex" | "priority" | "scale")) => tier.to_owned(),
        _ => "default".to_owned(),
    };
    json!({
        "id": id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "access_programs": null,
        "background": echo("background", json!(false)),
        "completed_at": null,
        "conversation": conversation,
        "error": null,
        "incomplete_details": null,
        "image": null,
        "input_transformations": null,
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "max_tool_calls": echo("max_tool_calls", Value::Null),
        "model": req.model,
        "moderation": null,
        "output": [],
        "parallel_tool_calls": echo("parallel_tool_calls", json!(true)),
        "previous_response_id": previous,
        "prompt": echo("prompt", Value::Null),
        "prompt_cache_key": echo("prompt_cache_key", Value::Null),
        "prompt_cache_diagnostics": null,
        "prompt_cache_options": echo("prompt_cache_options", Value::Null),
        "prompt_cache_retention": echo("prompt_cache_retention", Value::Null),
        "reasoning": merged("reasoning", reasoning),
        "safety_identifier": echo("safety_identifier", Value::Null),
        "service_tier": service_tier,
        "store": req.store,
        "temperature": decimal("temperature"),
        "text": merged("text", text),
        "tool_choice": echo("tool_choice", json!("auto")),
        "tools": echo("tools", json!([])),
        "tool_usage": null,
        "top_logprobs": echo("top_logprobs", json!(0)),
        "top_p": decimal("top_p"),
        "truncation": echo("truncation", json!("disabled")),
        "usage": null,
        "user": echo("user", Value::Null),
        "metadata": req.metadata,
    })
}

/// The in-progress snapshot sent in `response.created`/`response.in_progress`.
fn in_progress(final_object: &Value) -> Value {
    let mut object = final_object.clone();
    object["status"] = json!("in_progress");
    object["output"] = json!([]);
    object["usage"] = Value::Null;
    object["completed_at"] = Value::Null;
    object["incomplete_details"] = Value::Null;
    object
}

/// Sequence numbers for one stream.
pub(crate) struct Seq(u64);

impl Seq {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 += 1;
        self.0 - 1
    }
}

/// The opening events, shared by completed and failed streams.
fn opening(steps: &mut Vec<Step>, seq: &mut Seq, object: &Value, shared: &Shared) {
    let snapshot = in_progress(object);
    for event in ["response.created", "response.in_progress"] {
        steps.push(Step::Send(stream::response_block(
            event,
            &snapshot,
            seq.next(),
        )));
    }
    steps.push(Step::Think(shared.latency()));
}

/// The events opening the message at output `index`.
fn message_opening(steps: &mut Vec<Step>, seq: &mut Seq, index: usize, msg_id: &str) {
    let mut item = message_item(msg_id, "in_progress", "");
    item["content"] = json!([]);
    steps.push(stream::sse(
        "response.output_item.added",
        &json!({"type": "response.output_item.added", "output_index": index, "item": item, "sequence_number": seq.next()}),
    ));
    steps.push(stream::sse(
        "response.content_part.added",
        &json!({"type": "response.content_part.added", "item_id": msg_id, "output_index": index, "content_index": 0,
                "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}, "sequence_number": seq.next()}),
    ));
}

/// Text deltas, then the `.done` events closing the text, part and item.
fn text_events(
    steps: &mut Vec<Step>,
    seq: &mut Seq,
    index: usize,
    msg_id: &str,
    deltas: &[String],
    item_status: &str,
    shared: &Shared,
) {
    for (i, delta) in deltas.iter().enumerate() {
        if i > 0 {
            steps.push(Step::Sleep(shared.config.token_delay));
        }
        steps.push(stream::sse(
            "response.output_text.delta",
            &json!({"type": "response.output_text.delta", "item_id": msg_id, "output_index": index, "content_index": 0,
                    "delta": delta, "logprobs": [], "sequence_number": seq.next()}),
        ));
    }
    let text = deltas.concat();
    steps.push(stream::sse(
        "response.output_text.done",
        &json!({"type": "response.output_text.done", "item_id": msg_id, "output_index": index, "content_index": 0,
                "text": text, "logprobs": [], "sequence_number": seq.next()}),
    ));
    steps.push(stream::sse(
        "response.content_part.done",
        &json!({"type": "response.content_part.done", "item_id": msg_id, "output_index": index, "content_index": 0,
                "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": text}, "sequence_number": seq.next()}),
    ));
    steps.push(stream::sse(
        "response.output_item.done",
        &json!({"type": "response.output_item.done", "output_index": index, "item": message_item(msg_id, item_status, &text),
                "sequence_number": seq.next()}),
    ));
}

/// The full event plan of a successful stream.
fn stream_steps(commit: Commit, out: &Output, shared: &Shared) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut seq = Seq(0);
    opening(&mut steps, &mut seq, &commit.object, shared);
    let status = if out.incomplete {
        "incomplete"
    } else {
        "completed"
    };
    for (index, item) in out.items.iter().enumerate() {
        match &out.message {
            Some((msg_id, text)) if item["id"].as_str() == Some(msg_id) => {
                message_opening(&mut steps, &mut seq, index, msg_id);
                let deltas = model::deltas(text);
                text_events(&mut steps, &mut seq, index, msg_id, &deltas, status, shared);
            }
            _ => agent::item_events(&mut steps, &mut seq, index, item),
        }
    }
    steps.push(Step::Finish {
        commit: Box::new(commit),
        event: if out.incomplete {
            "response.incomplete"
        } else {
            "response.completed"
        },
        sequence_number: seq.next(),
    });
    steps
}

/// A stream that fails after `after_deltas` text deltas, like `stream-failed.sse`:
/// the items before the message are sent whole; an output without a message fails
/// after its first item.
fn failed_steps(commit: Commit, out: &Output, after_deltas: usize, shared: &Shared) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut seq = Seq(0);
    opening(&mut steps, &mut seq, &commit.object, shared);
    let mut sent = Vec::new();
    for (index, item) in out.items.iter().enumerate() {
        match &out.message {
            Some((msg_id, text)) if item["id"].as_str() == Some(msg_id) => {
                message_opening(&mut steps, &mut seq, index, msg_id);
                let deltas: Vec<String> =
                    model::deltas(text).into_iter().take(after_deltas).collect();
                text_events(
                    &mut steps,
                    &mut seq,
                    index,
                    msg_id,
                    &deltas,
                    "incomplete",
                    shared,
                );
                sent.push(message_item(msg_id, "incomplete", &deltas.concat()));
                break;
            }
            _ => {
                agent::item_events(&mut steps, &mut seq, index, item);
                sent.push(item.clone());
                if out.message.is_none() {
                    break;
                }
            }
        }
    }
    let mut failed = in_progress(&commit.object);
    failed["status"] = json!("failed");
    failed["output"] = json!(sent);
    failed["error"] = json!({
        "code": "server_error",
        "message": "The server had an error while processing your request. Sorry about that!",
        "param": null,
        "type": null,
        "misalignment": null,
    });
    steps.push(stream::sse(
        "response.failed",
        &json!({"type": "response.failed", "response": failed, "sequence_number": seq.next()}),
    ));
    steps.push(Step::Release(Box::new(commit)));
    steps
}
