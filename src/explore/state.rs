//! What the tree already holds of an exploration: its candidates, its judge
//! nodes and what they cost. Read at the start of every level, so that an
//! interrupted run's work counts (toward the level, and toward the budget).

use std::collections::HashMap;

use super::judge::JudgeTag;
use super::{JUDGE_LABEL, JUDGES_ANCHOR_LABEL};
use crate::engine::UsageTotals;
use crate::error::{Error, Result};
use crate::ids::{NodeId, RefName};
use crate::node::{Node, Origin};
use crate::tree::ResponseTree;

/// The ref naming the local node an exploration's judge requests hang under.
pub(super) fn anchor_ref(id: &str) -> Result<RefName> {
    RefName::new(&format!("explore/{id}/judges"))
}

/// The children of `parent` that carry `label`, oldest first.
pub(super) fn labeled_children(
    tree: &ResponseTree,
    parent: &NodeId,
    label: &str,
) -> Result<Vec<Node>> {
    let mut out = Vec::new();
    for child in tree.children(parent)? {
        let node = tree.get(&child)?;
        if node.labels.contains(label) {
            out.push(node);
        }
    }
    Ok(out)
}

/// Every node the exploration recorded: its candidates (the labelled nodes
/// under `parent`, whatever branch they are on) and its judge nodes.
pub(super) fn recorded(
    tree: &ResponseTree,
    parent: &NodeId,
    label: &str,
    id: &str,
) -> Result<Vec<NodeId>> {
    let mut out = Vec::new();
    let mut frontier = vec![parent.clone()];
    while let Some(next) = frontier.pop() {
        for node in labeled_children(tree, &next, label)? {
            frontier.push(node.id.clone());
            out.push(node.id);
        }
    }
    if let Some(anchor) = anchor(tree, id)? {
        out.extend(tree.children(&anchor)?);
    }
    Ok(out)
}

/// What the exploration spent so far (see [`recorded`]).
pub(super) fn spent(
    tree: &ResponseTree,
    parent: &NodeId,
    label: &str,
    id: &str,
) -> Result<UsageTotals> {
    let ids = recorded(tree, parent, label, id)?;
    tree.usage(&ids)
}

/// The local node judge requests hang under, if the exploration has one.
pub(super) fn anchor(tree: &ResponseTree, id: &str) -> Result<Option<NodeId>> {
    match tree.get_ref(anchor_ref(id)?) {
        Ok(node) => Ok(Some(node)),
        Err(Error::RefNotFound(_)) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The anchor, made (with its ref, in one write) if missing. It is a local
/// root with no input or output, so a judge request continuing it sends
/// nothing but its own input.
pub(super) fn ensure_anchor(tree: &ResponseTree, id: &str) -> Result<NodeId> {
    if let Some(anchor) = anchor(tree, id)? {
        return Ok(anchor);
    }
    let mut node = Node::new(NodeId::local(), None);
    node.origin = Origin::local();
    node.labels.insert(JUDGES_ANCHOR_LABEL.to_owned());
    node.output_text = format!("judge requests of exploration {id}");
    let anchor = node.id.clone();
    tree.insert_all(vec![node], vec![(anchor_ref(id)?, anchor.clone())])?;
    Ok(anchor)
}

/// The judge nodes of the exploration, by the comparison they made.
pub(super) fn judge_nodes(tree: &ResponseTree, id: &str) -> Result<HashMap<JudgeTag, Node>> {
    let mut out = HashMap::new();
    let Some(anchor) = anchor(tree, id)? else {
        return Ok(out);
    };
    for node in labeled_children(tree, &anchor, JUDGE_LABEL)? {
        if let Some(tag) = JudgeTag::of(&node).filter(|t| t.exploration == id) {
            // The oldest verdict of a comparison wins, should there be two.
            out.entry(tag).or_insert(node);
        }
    }
    Ok(out)
}
