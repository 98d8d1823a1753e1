//! The Conversations API: create, retrieve, update, delete, add and list items.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde_json::{Map, Value, json};

use super::context::Segment;
use super::failure::Failure;
use super::items;
use super::page;
use super::request::{json_object, metadata};
use super::state::{Shared, conversation_not_found};

/// The real service's cap on items per create or add call.
const MAX_ITEMS_PER_CALL: usize = 20;

/// `POST /v1/conversations`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Value>, Failure> {
    let raw = if body.is_empty() {
        Map::new()
    } else {
        json_object(&body)?
    };
    let metadata = metadata(&raw)?;
    let items = match raw.get("items") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => parse_items(v)?,
    };
    Ok(Json(
        shared.create_conversation(Value::Object(metadata), items),
    ))
}

/// `GET /v1/conversations/{id}`.
pub(crate) async fn retrieve(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Failure> {
    shared.with_conversation(&id, |c| c.object()).map(Json)
}

/// `POST /v1/conversations/{id}`: replaces the metadata.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Failure> {
    let raw = json_object(&body)?;
    if !raw.contains_key("metadata") {
        return Err(Failure::missing("metadata"));
    }
    let metadata = Value::Object(metadata(&raw)?);
    shared
        .with_conversation(&id, |c| {
            c.metadata = metadata;
            c.object()
        })
        .map(Json)
}

/// `DELETE /v1/conversations/{id}`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Failure> {
    if shared.delete_conversation(&id) {
        Ok(Json(
            json!({"id": id, "object": "conversation.deleted", "deleted": true}),
        ))
    } else {
        Err(conversation_not_found(&id, None))
    }
}

/// `POST /v1/conversations/{id}/items`: appends up to 20 items, returns them as a list.
pub(crate) async fn add_items(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Failure> {
    let raw = json_object(&body)?;
    let added = match raw.get("items") {
        None | Some(Value::Null) => return Err(Failure::missing("items")),
        Some(v) => parse_items(v)?,
    };
    shared.with_conversation(&id, |c| c.append(added.clone()))?;
    Ok(Json(page::list(
        added.iter().map(with_phase).collect(),
        false,
    )))
}

/// `GET /v1/conversations/{id}/items`.
pub(crate) async fn list_items(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Failure> {
    // Only the list's head is taken under the lock; it is walked after.
    let items = shared.with_conversation(&id, |c| c.items())?;
    let items = items.as_deref().map(Segment::items).unwrap_or_default();
    page::page(items, &query, with_phase).map(Json)
}

fn parse_items(value: &Value) -> Result<Vec<Value>, Failure> {
    let Value::Array(list) = value else {
        return Err(Failure::wrong_type("items", "an array", value));
    };
    if list.len() > MAX_ITEMS_PER_CALL {
        return Err(Failure::invalid_value(
            "items",
            format!(
                "Invalid 'items': array too long. Expected an array with maximum length {MAX_ITEMS_PER_CALL}, but got an array with length {} instead.",
                list.len()
            ),
            "array_above_max_length",
        ));
    }
    items::normalize_input(value, "items")
}

/// Conversation items carry `phase` on messages (see `conversation-items-page.json`).
fn with_phase(item: &Value) -> Value {
    let mut item = item.clone();
    if item.get("type").and_then(Value::as_str) == Some("message")
        && let Some(obj) = item.as_object_mut()
    {
        obj.entry("phase").or_insert(Value::Null);
    }
    item
}
