//! JSON export: a flat, lossless document of nodes, edges and refs (read back by
//! [`import::import_json`](crate::import::import_json)).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::annotation::Stamped;
use crate::error::{Error, Result};
use crate::ids::{NodeId, RefName};
use crate::node::Node;
use crate::tree::{EdgeKind, ResponseTree};

use super::walk;

/// The `format` field of an export document.
pub const EXPORT_FORMAT: &str = "resptree";

/// The `version` field of documents this build writes (and the only one it reads).
pub const EXPORT_VERSION: u32 = 1;

/// Exports the whole tree as one JSON document:
///
/// ```json
/// { "format": "resptree", "version": 1,
///   "nodes": [ {full node}, ... ],
///   "edges": [ {"from": "resp_a", "to": "resp_b", "kind": "continues"}, ... ],
///   "refs": { "formal": "resp_b" },
///   "annotations": [ {"node": "resp_b", "kind": "bookmark", "at": 1764547200000}, ... ] }
/// ```
///
/// Nodes are ordered by creation time, then id; edges by target, then kind, then
/// source. The edges repeat what the nodes' `parent` and `extra_context` say, so
/// other tools can read the shape without knowing the node format.
/// Annotations ([`Stamped`](crate::Stamped), with the node they are on) are
/// ordered by node id, then key; the field is left out when there are none, and
/// a document without it (as older builds wrote) imports with none.
///
/// # Errors
///
/// Store errors while reading bodies.
pub fn export_json(tree: &ResponseTree) -> Result<String> {
    let ids = tree.all_ids();
    let mut nodes = Vec::with_capacity(ids.len());
    tree.for_each_node(&ids, &mut |node| {
        nodes.push(node.clone());
        Ok(())
    })?;
    let edges = tree
        .graph()
        .edges()
        .into_iter()
        .map(|(from, to, kind)| Edge {
            from,
            to,
            kind: kind.into(),
        })
        .collect();
    let annotations = tree
        .annotated(None)?
        .into_iter()
        .map(|(node, annotation)| NodeAnnotation { node, annotation })
        .collect();
    let doc = Document {
        format: EXPORT_FORMAT.to_owned(),
        version: EXPORT_VERSION,
        nodes,
        edges,
        refs: tree.list_refs().into_iter().collect(),
        annotations,
    };
    serde_json::to_string_pretty(&doc).map_err(|e| Error::storage("exporting the tree", e))
}

/// The full records of the subtree under `root` (or of the whole forest) as a
/// pretty-printed JSON array of [`Node`]s, depth first with children oldest
/// first (parents before children), down to `max_depth` levels below the start
/// (`None`: every level). What `resptree show --json` prints.
///
/// Unlike [`export_json`] this is not a document to import: it carries no edges
/// or refs, and a subtree's top node names a parent that is not in it.
///
/// ```
/// use resptree::{Node, NodeId, ResponseTree, render};
/// let tree = ResponseTree::in_memory();
/// let root = NodeId::new("resp_a")?;
/// tree.insert(Node::new(root.clone(), None))?;
/// tree.insert(Node::new(NodeId::new("resp_b")?, Some(root.clone())))?;
/// let all: Vec<Node> = serde_json::from_str(&render::nodes_json(&tree, None, None)?)?;
/// assert_eq!(all.len(), 2);
/// let top: Vec<Node> = serde_json::from_str(&render::nodes_json(&tree, Some(&root), Some(0))?)?;
/// assert_eq!(top[0].id, root);
/// assert_eq!(top.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`Error::NodeNotFound`] if `root` is not in the tree; store errors while
/// reading bodies.
pub fn nodes_json(
    tree: &ResponseTree,
    root: Option<&NodeId>,
    max_depth: Option<usize>,
) -> Result<String> {
    let ids: Vec<NodeId> = walk(tree, root, max_depth)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut nodes = Vec::with_capacity(ids.len());
    tree.for_each_node(&ids, &mut |node| {
        nodes.push(node.clone());
        Ok(())
    })?;
    serde_json::to_string_pretty(&nodes).map_err(|e| Error::storage("writing nodes as JSON", e))
}

/// The export document: what [`export_json`] writes and
/// [`import_json`](crate::import::import_json) reads. A stable export format
/// (see `EXPORT_VERSION`): changing a field breaks files users keep.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Document {
    pub(crate) format: String,
    pub(crate) version: u32,
    pub(crate) nodes: Vec<Node>,
    #[serde(default)]
    pub(crate) edges: Vec<Edge>,
    #[serde(default)]
    pub(crate) refs: BTreeMap<RefName, NodeId>,
    /// Added after version 1 was first written, so optional: older documents
    /// have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) annotations: Vec<NodeAnnotation>,
}

/// One annotation of a [`Document`]: the node it is on, and the annotation's
/// fields flattened beside it.
#[derive(Serialize, Deserialize)]
pub(crate) struct NodeAnnotation {
    pub(crate) node: NodeId,
    #[serde(flatten)]
    pub(crate) annotation: Stamped,
}

/// One edge of a [`Document`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Edge {
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
    pub(crate) kind: Kind,
}

/// The kind of an [`Edge`], as the document spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    Continues,
    Context,
}

impl From<EdgeKind> for Kind {
    fn from(kind: EdgeKind) -> Self {
        match kind {
            EdgeKind::Continues => Self::Continues,
            EdgeKind::Context => Self::Context,
        }
    }
}
