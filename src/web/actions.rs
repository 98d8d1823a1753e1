//! The write routes: continue, branch and fan out (answers streamed as
//! server-sent events), prune, refs. Each needs an engine (a read-only
//! explorer answers `403`) and passed the CSRF check in `security.rs`.
//!
//! Streams follow the engine's rule: dropping one cancels its request, so a
//! page closed mid-answer records no node for that answer.

use std::convert::Infallible;
use std::pin::Pin;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::resolve_id;
use super::failure::{Failure, error_chain};
use super::state::WebState;
use super::view::{RefIndex, summary_of};
use crate::engine::{Engine, FanOutUpdate, RespondOptions, StreamUpdate};
use crate::error::Error;
use crate::ids::{NodeId, RefName};
use crate::node::Node;

/// The most answers one request may ask for (branch texts, fan-out `n`).
const MAX_ANSWERS: usize = 16;

type ApiResult<T> = Result<T, Failure>;
type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>>;
/// A streamed reply: the events, with keep-alive comments while the model thinks.
type Answers = Sse<KeepAliveStream<EventStream>>;

/// `POST /api/respond`: one answer continuing `parent` (a new root without).
#[derive(Debug, Deserialize)]
pub(crate) struct RespondBody {
    parent: Option<String>,
    text: String,
}

/// `POST /api/branch`: one child of `parent` per text.
#[derive(Debug, Deserialize)]
pub(crate) struct BranchBody {
    parent: String,
    texts: Vec<String>,
}

/// `POST /api/fanout`: `n` answers to `text` under `parent`.
#[derive(Debug, Deserialize)]
pub(crate) struct FanOutBody {
    parent: Option<String>,
    text: String,
    n: usize,
}

/// `POST /api/prune`: remove `id` and its subtree; `confirm` must repeat the
/// node's full id, so a mistyped ref cannot remove the wrong branch.
#[derive(Debug, Deserialize)]
pub(crate) struct PruneBody {
    id: String,
    confirm: String,
}

/// `PUT /api/refs/{name}`.
#[derive(Debug, Deserialize)]
pub(crate) struct RefBody {
    target: String,
}

pub(crate) async fn respond(
    State(state): State<WebState>,
    Json(body): Json<RespondBody>,
) -> ApiResult<Answers> {
    let engine = state.engine()?.clone();
    check_text(&body.text)?;
    let parent = resolve_parent(&state, body.parent).await?;
    let streams = vec![answer(&engine, parent.as_ref(), &body.text)];
    Ok(sse(streams))
}

pub(crate) async fn branch(
    State(state): State<WebState>,
    Json(body): Json<BranchBody>,
) -> ApiResult<Answers> {
    let engine = state.engine()?.clone();
    check_count(body.texts.len())?;
    for text in &body.texts {
        check_text(text)?;
    }
    let parent = resolve_parent(&state, Some(body.parent)).await?;
    let streams = body
        .texts
        .iter()
        .map(|text| answer(&engine, parent.as_ref(), text))
        .collect();
    Ok(sse(streams))
}

pub(crate) async fn fan_out(
    State(state): State<WebState>,
    Json(body): Json<FanOutBody>,
) -> ApiResult<Answers> {
    let engine = state.engine()?.clone();
    check_count(body.n)?;
    check_text(&body.text)?;
    let parent = resolve_parent(&state, body.parent).await?;
    if engine.backend().has_native_fan_out() {
        // One request with `n` choices (Chat Completions), as `resptree fanout`.
        let updates = engine
            .fan_out_stream(
                parent.as_ref(),
                &body.text,
                body.n,
                &RespondOptions::default(),
            )
            .map(|update| match update {
                Ok(FanOutUpdate::Delta { index, text }) => vec![delta(index, &text)],
                Ok(FanOutUpdate::Committed(nodes)) => nodes
                    .iter()
                    .enumerate()
                    .map(|(index, node)| committed(index, node))
                    .collect(),
                Err(err) => vec![failed(None, &err)],
            })
            .flat_map(stream::iter);
        return Ok(finish(body.n, updates.boxed()));
    }
    // Otherwise `n` requests, each streamed (what `Engine::fan_out` sends).
    let streams = (0..body.n)
        .map(|_| answer(&engine, parent.as_ref(), &body.text))
        .collect();
    Ok(sse(streams))
}

pub(crate) async fn prune(
    State(state): State<WebState>,
    Json(body): Json<PruneBody>,
) -> ApiResult<Json<Value>> {
    let engine = state.engine()?.clone();
    let id = state
        .blocking(move |tree| resolve_id(tree, &body.id))
        .await?;
    if body.confirm != id.as_str() {
        return Err(Failure::bad_request(format!(
            "prune needs `confirm` to repeat the node's full id ({id})"
        )));
    }
    let report = engine.prune(&id, false).await?;
    state.changes.bump();
    Ok(Json(json!({"removed": report.removed})))
}

pub(crate) async fn set_ref(
    State(state): State<WebState>,
    Path(name): Path<String>,
    Json(body): Json<RefBody>,
) -> ApiResult<Json<Value>> {
    state.engine()?;
    let name = RefName::new(&name)?;
    let target = state
        .blocking(move |tree| {
            let target = resolve_id(tree, &body.target)?;
            tree.set_ref(&name, &target)?;
            Ok(target)
        })
        .await?;
    state.changes.bump();
    Ok(Json(json!({"target": target})))
}

pub(crate) async fn delete_ref(
    State(state): State<WebState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    state.engine()?;
    let name = RefName::new(&name)?;
    let target = state
        .blocking(move |tree| Ok(tree.delete_ref(&name)?))
        .await?;
    state.changes.bump();
    Ok(Json(json!({"target": target})))
}

fn check_text(text: &str) -> ApiResult<()> {
    if text.trim().is_empty() {
        return Err(Failure::bad_request("the message must not be empty"));
    }
    Ok(())
}

fn check_count(n: usize) -> ApiResult<()> {
    if n == 0 || n > MAX_ANSWERS {
        return Err(Failure::bad_request(format!(
            "ask for 1 to {MAX_ANSWERS} answers at once (got {n})"
        )));
    }
    Ok(())
}

async fn resolve_parent(state: &WebState, parent: Option<String>) -> ApiResult<Option<NodeId>> {
    match parent {
        Some(p) => Ok(Some(
            state.blocking(move |tree| resolve_id(tree, &p)).await?,
        )),
        None => Ok(None),
    }
}

/// One streamed answer, as page events.
fn answer(engine: &Engine, parent: Option<&NodeId>, text: &str) -> crate::engine::NodeStream {
    engine.respond_stream(parent, text, &RespondOptions::default())
}

/// Several answers streamed at once, their events interleaved and tagged with
/// their index.
fn sse(streams: Vec<crate::engine::NodeStream>) -> Answers {
    let count = streams.len();
    let tagged = streams.into_iter().enumerate().map(|(index, s)| {
        s.map(move |update| match update {
            Ok(StreamUpdate::Started(id)) => Some(event(
                "started",
                &json!({"index": index, "response_id": id}),
            )),
            Ok(StreamUpdate::Delta(text)) => Some(delta(index, &text)),
            Ok(StreamUpdate::Committed(node)) => Some(committed(index, &node)),
            Err(err) => Some(failed(Some(index), &err)),
        })
        .filter_map(std::future::ready)
        .boxed()
    });
    finish(count, stream::select_all(tagged).boxed())
}

/// `start`, the answers' events, then `done`. The change counter needs no
/// nudge: it sees the tree grow (`live.rs`).
fn finish(count: usize, events: Pin<Box<dyn Stream<Item = Event> + Send>>) -> Answers {
    let start = stream::once(std::future::ready(event("start", &json!({"count": count}))));
    let done = stream::once(std::future::ready(event("done", &json!({}))));
    let all: EventStream = start.chain(events).chain(done).map(Ok).boxed();
    Sse::new(all).keep_alive(KeepAlive::default())
}

fn event(name: &str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

fn delta(index: usize, text: &str) -> Event {
    event("delta", &json!({"index": index, "text": text}))
}

fn committed(index: usize, node: &Node) -> Event {
    let summary = summary_of(node, 0, &RefIndex::default());
    event("node", &json!({"index": index, "node": summary}))
}

fn failed(index: Option<usize>, err: &Error) -> Event {
    event(
        "error",
        &json!({"index": index, "message": error_chain(err)}),
    )
}
