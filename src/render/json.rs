//! JSON export and import: a flat, lossless document of nodes, edges and refs.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, TreeViolation};
use crate::ids::{NodeId, RefName};
use crate::node::Node;
use crate::tree::{EdgeKind, ResponseTree};

/// The `format` field of an export document.
pub const EXPORT_FORMAT: &str = "resptree";

/// The `version` field of documents this build writes (and the only one it reads).
pub const EXPORT_VERSION: u32 = 1;

/// What [`import_json`] added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// The number of nodes inserted.
    pub nodes: usize,
    /// The number of refs set.
    pub refs: usize,
}

/// Exports the whole tree as one JSON document:
///
/// ```json
/// { "format": "resptree", "version": 1,
///   "nodes": [ {full node}, ... ],
///   "edges": [ {"from": "resp_a", "to": "resp_b", "kind": "continues"}, ... ],
///   "refs": { "formal": "resp_b" } }
/// ```
///
/// Nodes are ordered by creation time, then id; edges by target, then kind, then
/// source. The edges repeat what the nodes' `parent` and `extra_context` say, so
/// other tools can read the shape without knowing the node format.
///
/// # Errors
///
/// Store errors while reading bodies.
pub fn export_json(tree: &ResponseTree) -> Result<String> {
    let mut nodes = Vec::with_capacity(tree.len());
    for id in tree.all_ids() {
        nodes.push(tree.get(&id)?);
    }
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
    let doc = Document {
        format: EXPORT_FORMAT.to_owned(),
        version: EXPORT_VERSION,
        nodes,
        edges,
        refs: tree.list_refs().into_iter().collect(),
    };
    serde_json::to_string_pretty(&doc).map_err(|e| Error::storage("exporting the tree", e))
}

/// Imports a document written by [`export_json`] into `tree`, atomically: either
/// every node and ref is added or nothing is.
///
/// The edges must agree exactly with the nodes' `parent` and `extra_context`
/// fields. Imported nodes may point at nodes already in the tree.
///
/// # Errors
///
/// [`Error::Decode`] if the text is not such a document (malformed JSON, another
/// format or version, edges that disagree with the nodes);
/// [`Error::InvalidTree`] for a duplicate id, a second parent, a dangling parent or
/// context node, or a cycle; [`Error::NodeNotFound`] for a ref to an unknown
/// node; [`Error::Storage`] if the store write fails.
pub fn import_json(tree: &ResponseTree, text: &str) -> Result<ImportReport> {
    let doc: Document =
        serde_json::from_str(text).map_err(|e| Error::decode("tree export", text.as_bytes(), e))?;
    if doc.format != EXPORT_FORMAT || doc.version != EXPORT_VERSION {
        return Err(bad(
            text,
            format!(
                "format {:?} version {} is not {EXPORT_FORMAT:?} version {EXPORT_VERSION}",
                doc.format, doc.version
            ),
        ));
    }
    check_edges(&doc, text)?;
    let report = ImportReport {
        nodes: doc.nodes.len(),
        refs: doc.refs.len(),
    };
    tree.insert_all(doc.nodes, doc.refs.into_iter().collect())?;
    Ok(report)
}

/// Checks that the edge list says exactly what the nodes say.
fn check_edges(doc: &Document, text: &str) -> Result<()> {
    let mut parents: BTreeMap<&NodeId, &NodeId> = BTreeMap::new();
    for edge in doc.edges.iter().filter(|e| e.kind == Kind::Continues) {
        if parents
            .insert(&edge.to, &edge.from)
            .is_some_and(|p| p != &edge.from)
        {
            return Err(Error::InvalidTree(TreeViolation::SecondParent {
                node: edge.to.clone(),
            }));
        }
    }
    let stated: BTreeSet<(&NodeId, &NodeId, Kind)> =
        doc.edges.iter().map(|e| (&e.from, &e.to, e.kind)).collect();
    let implied: BTreeSet<(&NodeId, &NodeId, Kind)> = doc
        .nodes
        .iter()
        .flat_map(|n| {
            let parent = n.parent.iter().map(move |p| (p, &n.id, Kind::Continues));
            let context = n
                .extra_context
                .iter()
                .map(move |c| (c, &n.id, Kind::Context));
            parent.chain(context)
        })
        .collect();
    if let Some((from, to, kind)) = stated.symmetric_difference(&implied).next() {
        let side = if stated.contains(&(*from, *to, *kind)) {
            "is not backed by the nodes"
        } else {
            "is missing from the edges"
        };
        return Err(bad(text, format!("edge {from} -> {to} ({kind:?}) {side}")));
    }
    Ok(())
}

/// A [`Error::Decode`] for a document that parsed but says something wrong.
fn bad(text: &str, reason: String) -> Error {
    Error::decode("tree export", text.as_bytes(), reason)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: String,
    version: u32,
    nodes: Vec<Node>,
    #[serde(default)]
    edges: Vec<Edge>,
    #[serde(default)]
    refs: BTreeMap<RefName, NodeId>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Edge {
    from: NodeId,
    to: NodeId,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
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
