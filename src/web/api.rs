//! The router and the read-only JSON routes. Writes are in `actions.rs`.
//!
//! Every list is paged (`offset`, `limit`), so a node with 10^5 children costs
//! one page of store reads, not 10^5.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::actions;
use super::assets;
use super::failure::Failure;
use super::notes;
use super::search;
use super::security;
use super::state::{Source, WebState};
use super::view::{self, Page, RefIndex, Summary};
use crate::ids::NodeId;
use crate::node::Node;
use crate::tree::ResponseTree;

/// The largest page a list returns.
const MAX_PAGE: usize = 1000;
/// The page size when none is asked.
const DEFAULT_PAGE: usize = 100;
/// How many path steps a transcript returns when no limit is asked.
const DEFAULT_STEPS: usize = 200;
/// How many ancestor ids a node view carries when no number is asked: more
/// than the page unfolds in the outline (80), far fewer than a deep chain
/// holds (the whole path was 265 KB of ids at depth 5 000).
const DEFAULT_ANCESTORS: usize = 100;
/// The most ancestor ids one answer carries.
const MAX_ANCESTORS: usize = 100_000;
/// The most bodies one token total reads: a path longer than this or a
/// subtree larger than this gets `null`. Each body is a store read (≈ 1 ms on
/// a 10^5-node sled store in the dev profile, `docs/benchmarks.md` section 9),
/// and the tallies must not turn one request on a deep chain into seconds of
/// work; the counts above the cap are still returned (from the graph, cheap).
const MAX_TALLY: usize = 2_000;
/// The most nodes the graph view lays out.
const MAX_GRAPH: usize = 2000;

type ApiResult<T> = Result<T, Failure>;

/// The whole app: pages, assets, API; every route behind the security guard.
pub(crate) fn router(state: WebState) -> Router {
    let security = Arc::clone(&state.security);
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::app_js))
        .route("/markdown.js", get(assets::markdown_js))
        .route("/app.css", get(assets::app_css))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/info", get(info))
        .route("/api/changes", get(changes))
        .route("/api/roots", get(roots))
        .route("/api/refs", get(refs))
        .route("/api/resolve", get(resolve))
        .route("/api/compare", get(compare))
        .route("/api/graph", get(graph))
        .route("/api/favourite", get(favourite))
        .route("/api/nodes/{id}", get(node))
        .route("/api/nodes/{id}/children", get(children))
        .route("/api/nodes/{id}/path", get(path))
        .route("/api/nodes/{id}/usage", get(usage))
        .route("/api/search", get(search::search))
        .route("/api/bookmarks", get(notes::bookmarks))
        .route(
            "/api/nodes/{id}/annotations",
            get(notes::list).put(notes::put),
        )
        .route(
            "/api/nodes/{id}/annotations/{*key}",
            axum::routing::delete(notes::remove),
        )
        .route("/api/respond", post(actions::respond))
        .route("/api/branch", post(actions::branch))
        .route("/api/fanout", post(actions::fan_out))
        .route("/api/prune", post(actions::prune))
        .route(
            "/api/refs/{*name}",
            put(actions::set_ref).delete(actions::delete_ref),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(security, security::guard))
        .with_state(state)
}

async fn not_found() -> Response {
    Failure::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such page or endpoint",
    )
    .into_response()
}

/// `offset` and `limit` of a list.
#[derive(Debug, Deserialize)]
pub(crate) struct Paging {
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

impl Paging {
    fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
    }
}

/// Resolves what the page sent (id, short id, ref) to a node.
pub(crate) fn resolve_id(tree: &ResponseTree, input: &str) -> ApiResult<NodeId> {
    Ok(tree.resolve(input)?)
}

/// `GET /api/info`: what the page needs to set itself up.
async fn info(State(state): State<WebState>) -> ApiResult<Json<Value>> {
    let writable = matches!(state.source, Source::Engine(_));
    let changes = Arc::clone(&state.changes);
    state
        .blocking(move |tree| {
            Ok(Json(json!({
                "nodes": tree.len(),
                "roots": tree.graph().roots().len(),
                "refs": tree.list_refs().len(),
                "writable": writable,
                "search": true,
                "annotations": true,
                "version": changes.current(tree),
                "resptree": env!("CARGO_PKG_VERSION"),
            })))
        })
        .await
}

/// `since` of `/api/changes`.
#[derive(Debug, Deserialize)]
struct Since {
    since: Option<u64>,
}

/// `GET /api/changes?since=`: the change counter. With `since` (the version
/// the page has) it is a long poll: it answers as soon as the version differs,
/// or after 25 s with the same one.
async fn changes(
    State(state): State<WebState>,
    Query(since): Query<Since>,
) -> ApiResult<Json<Value>> {
    let tree = state.source.tree();
    // `current` reads the in-memory graph and refs only: no store IO, so it
    // runs on the runtime's thread.
    let version = match since.since {
        Some(since) => state.changes.after(tree, since).await,
        None => state.changes.current(tree),
    };
    Ok(Json(json!({"version": version})))
}

/// `GET /api/roots`: a page of the forest's roots, oldest first.
async fn roots(
    State(state): State<WebState>,
    Query(paging): Query<Paging>,
) -> ApiResult<Json<Page<Summary>>> {
    state
        .blocking(move |tree| {
            let ids = tree.roots();
            Ok(Json(view::page(tree, &ids, paging.offset, paging.limit())?))
        })
        .await
}

/// `GET /api/nodes/{id}/children`: a page of a node's children, oldest first.
async fn children(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult<Json<Page<Summary>>> {
    state
        .blocking(move |tree| {
            let id = resolve_id(tree, &id)?;
            let ids = tree.children(&id)?;
            Ok(Json(view::page(tree, &ids, paging.offset, paging.limit())?))
        })
        .await
}

/// Where a node sits among its siblings (itself included), for the pager.
#[derive(Debug, Serialize)]
struct Siblings {
    /// 0-based position.
    index: usize,
    total: usize,
    prev: Option<NodeId>,
    next: Option<NodeId>,
}

/// `ancestors` of a node view.
#[derive(Debug, Deserialize)]
struct Ancestors {
    ancestors: Option<usize>,
}

impl Ancestors {
    fn limit(&self) -> usize {
        self.ancestors
            .unwrap_or(DEFAULT_ANCESTORS)
            .clamp(1, MAX_ANCESTORS)
    }
}

/// The last `limit` ids of `id`'s path (root first, ending with `id`) as
/// `path`, where that tail starts in the whole path (`path_offset`), the
/// node's `depth` and its `root`.
fn path_tail(tree: &ResponseTree, id: &NodeId, limit: usize) -> crate::Result<Value> {
    let path = tree.graph().path(id)?;
    let skip = path.len().saturating_sub(limit);
    Ok(json!({
        "path": &path[skip..],
        "path_offset": skip,
        "depth": path.len().saturating_sub(1),
        "root": path.first(),
    }))
}

/// `GET /api/nodes/{id}?ancestors=`: the full node, its summary, its sibling
/// position, its first child, and the last `ancestors` ids of its path
/// (default [`DEFAULT_ANCESTORS`]; see [`path_tail`]).
async fn node(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Query(ancestors): Query<Ancestors>,
) -> ApiResult<Json<Value>> {
    state
        .blocking(move |tree| {
            let id = resolve_id(tree, &id)?;
            let node = tree.get(&id)?;
            let refs = RefIndex::of(tree)?;
            let (children, siblings) = {
                let graph = tree.graph();
                let children = graph.children(&id)?;
                let all = match graph.parent(&id)? {
                    Some(parent) => graph.children(&parent)?,
                    None => graph.roots(),
                };
                let index = all.iter().position(|s| *s == id).unwrap_or(0);
                let siblings = Siblings {
                    index,
                    total: all.len(),
                    prev: index.checked_sub(1).and_then(|i| all.get(i)).cloned(),
                    next: all.get(index + 1).cloned(),
                };
                (children, siblings)
            };
            let summary = view::summary_of(&node, children.len(), &refs);
            let mut out = path_tail(tree, &id, ancestors.limit())?;
            out["summary"] = json!(summary);
            out["node"] = json!(node);
            out["siblings"] = json!(siblings);
            out["first_child"] = json!(children.first());
            Ok(Json(out))
        })
        .await
}

/// `GET /api/favourite?ancestors=`: `{"favourite": null}` when no ref
/// `favourite` is set, else `{"favourite": {id, path, path_offset, depth,
/// root}}` as a node view's path fields (default [`DEFAULT_ANCESTORS`] ids).
/// Unlike `/api/nodes/favourite`, "none yet" is an answer here, not a 404.
async fn favourite(
    State(state): State<WebState>,
    Query(ancestors): Query<Ancestors>,
) -> ApiResult<Json<Value>> {
    state
        .blocking(move |tree| {
            let id = match tree.get_ref(FAVOURITE) {
                Ok(id) => id,
                Err(crate::Error::RefNotFound(_)) => {
                    return Ok(Json(json!({"favourite": null})));
                }
                Err(err) => return Err(err.into()),
            };
            let mut out = path_tail(tree, &id, ancestors.limit())?;
            out["id"] = json!(id);
            Ok(Json(json!({"favourite": out})))
        })
        .await
}

/// The ref the page's favourite path ends at.
const FAVOURITE: &str = "favourite";

/// `offset` and `limit` of a transcript page.
#[derive(Debug, Deserialize)]
struct Steps {
    /// Where the page starts in the whole path (0: the root). Without it, the
    /// page is the path's last `limit` steps.
    offset: Option<usize>,
    limit: Option<usize>,
}

/// `GET /api/nodes/{id}/path?offset=&limit=`: a page of the transcript, as the
/// nodes of the path (root first): steps `offset..offset + limit`, or the
/// last `limit` of them when no offset is asked (default [`DEFAULT_STEPS`]).
/// The page asks for a short tail first and for single steps as it moves
/// along a chain (it keeps the steps it already holds), so a key press in a
/// deep chain reads one or two bodies, not a whole page.
async fn path(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Query(steps): Query<Steps>,
) -> ApiResult<Json<Value>> {
    state
        .blocking(move |tree| {
            let id = resolve_id(tree, &id)?;
            let path = tree.path(&id)?;
            let limit = steps.limit.unwrap_or(DEFAULT_STEPS).clamp(1, MAX_PAGE);
            let start = match steps.offset {
                Some(offset) => offset.min(path.len()),
                None => path.len().saturating_sub(limit),
            };
            let end = start.saturating_add(limit).min(path.len());
            let nodes = read_nodes(tree, &path[start..end])?;
            Ok(Json(
                json!({"total": path.len(), "offset": start, "steps": nodes}),
            ))
        })
        .await
}

/// The records of `ids`, in order, read in bulk (one pass over the store's
/// segments rather than one lookup per id).
fn read_nodes(tree: &ResponseTree, ids: &[NodeId]) -> ApiResult<Vec<Node>> {
    let mut nodes = Vec::with_capacity(ids.len());
    tree.for_each_node(ids, &mut |node| {
        nodes.push(node.clone());
        Ok(())
    })?;
    Ok(nodes)
}

/// `GET /api/nodes/{id}/usage`: tokens and money of the node, its path and
/// its subtree. `path` is null above [`MAX_TALLY`] steps and `subtree` above
/// [`MAX_TALLY`] nodes (each total reads every body it adds up), and so are
/// their costs; `path_steps` and `subtree_nodes` count them either way.
/// `cost` holds [`Cost`](crate::cost::Cost)s at the server's prices: amounts
/// are decimal strings of dollars, and `unpriced` counts requests of models
/// the price table does not know (never priced as free).
async fn usage(State(state): State<WebState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let prices = Arc::clone(&state.prices);
    state
        .blocking(move |tree| {
            let id = resolve_id(tree, &id)?;
            let path = tree.path(&id)?;
            let descendants = tree.descendants(&id)?;
            let own = std::slice::from_ref(&id);
            let bounded = |ids: &[NodeId]| ids.len() <= MAX_TALLY;
            // One bulk read per list, tokens and money together.
            let mut lists: Vec<&[NodeId]> = vec![own];
            if bounded(&path) {
                lists.push(&path);
            }
            if bounded(&descendants) {
                lists.push(&descendants);
            }
            let mut totals = tree.usage_and_costs(&lists, &prices)?.into_iter();
            let node = tree.get(&id)?.usage;
            let node_cost = totals.next().map(|(_, cost)| cost);
            let (path_total, path_cost) = bounded(&path).then(|| totals.next()).flatten().unzip();
            let (subtree, subtree_cost) = bounded(&descendants)
                .then(|| totals.next())
                .flatten()
                .unzip();
            Ok(Json(json!({
                "node": node,
                "path": path_total,
                "path_steps": path.len(),
                "subtree": subtree,
                "subtree_nodes": descendants.len(),
                "cost": {
                    "node": node_cost,
                    "path": path_cost,
                    "subtree": subtree_cost,
                },
            })))
        })
        .await
}

/// `GET /api/refs`: every ref and its target.
async fn refs(State(state): State<WebState>) -> ApiResult<Json<Value>> {
    state
        .blocking(move |tree| {
            let refs: Vec<Value> = tree
                .list_refs()
                .into_iter()
                .map(|(name, target)| json!({"name": name, "target": target}))
                .collect();
            Ok(Json(Value::Array(refs)))
        })
        .await
}

/// `q` of `/api/resolve`.
#[derive(Debug, Deserialize)]
struct Lookup {
    q: String,
}

/// `GET /api/resolve?q=`: a ref, id, prefix or short id to a node id.
async fn resolve(
    State(state): State<WebState>,
    Query(lookup): Query<Lookup>,
) -> ApiResult<Json<Value>> {
    state
        .blocking(move |tree| Ok(Json(json!({"id": resolve_id(tree, lookup.q.trim())?}))))
        .await
}

/// The two nodes of `/api/compare`.
#[derive(Debug, Deserialize)]
struct Pair {
    left: String,
    right: String,
}

/// `GET /api/compare?left=&right=`: both branches from their common ancestor
/// (its summary, then each side's nodes below it).
async fn compare(
    State(state): State<WebState>,
    Query(pair): Query<Pair>,
) -> ApiResult<Json<Value>> {
    state
        .blocking(move |tree| {
            let left = resolve_id(tree, &pair.left)?;
            let right = resolve_id(tree, &pair.right)?;
            let diff = tree.diff(&left, &right)?;
            let refs = RefIndex::of(tree)?;
            let common = match &diff.common {
                Some(id) => Some(view::summary(tree, id, &refs)?),
                None => None,
            };
            Ok(Json(json!({
                "left_id": left,
                "right_id": right,
                "common": common,
                "left": read_nodes(tree, &diff.left)?,
                "right": read_nodes(tree, &diff.right)?,
            })))
        })
        .await
}

/// `root` and `limit` of the graph view.
#[derive(Debug, Deserialize)]
struct GraphQuery {
    root: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/graph?root=&limit=`: up to `limit` nodes, breadth first from
/// `root` (or from every root), with parents; the page lays them out.
async fn graph(
    State(state): State<WebState>,
    Query(query): Query<GraphQuery>,
) -> ApiResult<Json<Value>> {
    state
        .blocking(move |tree| {
            let limit = query.limit.unwrap_or(500).clamp(1, MAX_GRAPH);
            let start = match &query.root {
                Some(root) => vec![resolve_id(tree, root)?],
                None => tree.roots(),
            };
            let (ids, truncated) = breadth_first(tree, start, limit)?;
            let refs = RefIndex::of(tree)?;
            let nodes = ids
                .iter()
                .map(|id| view::summary(tree, id, &refs))
                .collect::<crate::Result<Vec<_>>>()?;
            Ok(Json(json!({"nodes": nodes, "truncated": truncated})))
        })
        .await
}

/// At most `limit` ids, breadth first from `start`; whether more were left.
fn breadth_first(
    tree: &ResponseTree,
    start: Vec<NodeId>,
    limit: usize,
) -> crate::Result<(Vec<NodeId>, bool)> {
    let graph = tree.graph();
    let mut out = Vec::new();
    let mut queue: std::collections::VecDeque<NodeId> = start.into();
    while let Some(id) = queue.pop_front() {
        if out.len() == limit {
            return Ok((out, true));
        }
        queue.extend(graph.children(&id)?);
        out.push(id);
    }
    Ok((out, false))
}
