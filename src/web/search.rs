//! `GET /api/search`: [`ResponseTree::search`](crate::ResponseTree::search)
//! for the page, with each snippet cut into plain and matched parts (the
//! library's byte ranges mean nothing to JavaScript's UTF-16 strings).

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::resolve_id;
use super::failure::Failure;
use super::state::WebState;

use crate::search::{SearchOptions, Snippet};

/// The most hits one search returns.
const MAX_HITS: usize = 200;

/// `q`, and the optional filters.
#[derive(Debug, Deserialize)]
pub(crate) struct SearchQuery {
    q: String,
    /// Only this node and below (id, short id or ref).
    under: Option<String>,
    /// Only nodes answered by this model.
    model: Option<String>,
    limit: Option<usize>,
}

pub(crate) async fn search(
    State(state): State<WebState>,
    Query(query): Query<SearchQuery>,
) -> Result<Json<Value>, Failure> {
    state
        .blocking(move |tree| {
            let mut options =
                SearchOptions::new().with_limit(query.limit.unwrap_or(50).clamp(1, MAX_HITS));
            if let Some(under) = &query.under {
                options = options.with_under(resolve_id(tree, under)?);
            }
            if let Some(model) = query.model.filter(|m| !m.is_empty()) {
                options = options.with_model(model);
            }
            let hits = tree.search(&query.q, &options)?;
            let hits: Vec<Value> = hits
                .iter()
                .map(|hit| {
                    json!({
                        "id": hit.id,
                        "short": hit.id.short(),
                        "score": hit.score,
                        "created_at": hit.created_at.as_millis(),
                        "model": hit.model,
                        "snippets": hit.snippets.iter().map(parts).collect::<Vec<_>>(),
                    })
                })
                .collect();
            Ok(Json(json!({"total": hits.len(), "hits": hits})))
        })
        .await
}

/// A snippet as `{field, cut_before, cut_after, parts: [{text, hit}]}`.
fn parts(snippet: &Snippet) -> Value {
    let text = &snippet.text;
    let mut out = Vec::new();
    let mut at = 0;
    for m in &snippet.matches {
        // The library promises ordered, disjoint ranges on character
        // boundaries; `get` keeps a broken promise from panicking.
        let (Some(before), Some(hit)) = (text.get(at..m.start), text.get(m.clone())) else {
            continue;
        };
        if !before.is_empty() {
            out.push(json!({"text": before, "hit": false}));
        }
        out.push(json!({"text": hit, "hit": true}));
        at = m.end;
    }
    if let Some(rest) = text.get(at..).filter(|r| !r.is_empty()) {
        out.push(json!({"text": rest, "hit": false}));
    }
    json!({
        "field": snippet.field,
        "cut_before": snippet.cut_before,
        "cut_after": snippet.cut_after,
        "parts": out,
    })
}
