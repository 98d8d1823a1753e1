//! Import of resptree's own lossless JSON export
//! ([`render::export_json`](crate::render::export_json)).

use std::collections::{BTreeMap, BTreeSet};

use super::ImportReport;
use crate::error::{Error, Result, TreeViolation};
use crate::ids::NodeId;
use crate::render::json::{Document, Kind};
use crate::render::{EXPORT_FORMAT, EXPORT_VERSION};
use crate::tree::ResponseTree;

/// Imports a document written by [`export_json`](crate::render::export_json)
/// into `tree`, atomically: either every node, ref and annotation is added or
/// nothing is.
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
/// node or an annotation of an unknown node; [`Error::InvalidAnnotation`] for
/// an annotation that cannot be stored; [`Error::Storage`] if the store write
/// fails.
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
    let annotations = doc
        .annotations
        .into_iter()
        .map(|a| (a.node, a.annotation))
        .collect();
    tree.insert_all_annotated(doc.nodes, doc.refs.into_iter().collect(), annotations)?;
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
