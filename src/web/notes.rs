//! Annotations from the page: bookmarks and labels (any [`Annotation`] the
//! library accepts), and the bookmark list.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::api::resolve_id;
use super::failure::Failure;
use super::state::WebState;
use super::view::{self, RefIndex};
use crate::annotation::{Annotation, AnnotationKey, AnnotationKind};

type ApiResult<T> = Result<T, Failure>;

/// `GET /api/nodes/{id}/annotations`: every annotation of the node, with the
/// time it was written.
pub(crate) async fn list(
    State(state): State<WebState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state
        .blocking(move |tree| {
            let id = resolve_id(tree, &id)?;
            Ok(Json(json!(tree.annotations(&id)?)))
        })
        .await
}

/// `PUT /api/nodes/{id}/annotations` with an annotation
/// (`{"kind": "bookmark"}`, `{"kind": "label", "text": …}`, …): writes it
/// into its slot, replacing what was there.
pub(crate) async fn put(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Json(annotation): Json<Annotation>,
) -> ApiResult<Json<Value>> {
    state.engine()?;
    let stamped = state
        .blocking(move |tree| {
            let id = resolve_id(tree, &id)?;
            Ok(tree.annotate(&id, annotation)?)
        })
        .await?;
    state.changes.bump();
    Ok(Json(json!(stamped)))
}

/// `DELETE /api/nodes/{id}/annotations/{key}` (`bookmark`, `label/TEXT`, …):
/// `{"removed": annotation or null}`.
pub(crate) async fn remove(
    State(state): State<WebState>,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    state.engine()?;
    let key = AnnotationKey::new(&key)?;
    let removed = state
        .blocking(move |tree| {
            let id = resolve_id(tree, &id)?;
            Ok(tree.remove_annotation(&id, &key)?)
        })
        .await?;
    state.changes.bump();
    Ok(Json(json!({"removed": removed})))
}

/// `GET /api/bookmarks`: the bookmarked nodes' summaries, newest bookmark
/// first (at most 1 000).
pub(crate) async fn bookmarks(State(state): State<WebState>) -> ApiResult<Json<Value>> {
    state
        .blocking(move |tree| {
            let mut marked = tree.annotated(Some(AnnotationKind::Bookmark))?;
            marked.sort_by_key(|m| std::cmp::Reverse(m.1.at));
            let refs = RefIndex::of(tree)?;
            let items = marked
                .iter()
                .take(1000)
                .filter(|(id, _)| tree.contains(id))
                .map(|(id, _)| view::summary(tree, id, &refs))
                .collect::<crate::Result<Vec<_>>>()?;
            Ok(Json(json!({"total": marked.len(), "items": items})))
        })
        .await
}
