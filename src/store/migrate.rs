//! [`migrate`]: copy a whole tree from one store to another, and check the copy.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result, TreeViolation};
use crate::ids::NodeId;

use super::{Batch, Op, Store, Topology};

/// How many nodes go into one batch: large enough to amortise a round trip to
/// PostgreSQL, small enough that a batch stays a modest transaction.
const CHUNK: usize = 500;

/// What [`migrate`] copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MigrateReport {
    /// Nodes copied.
    pub nodes: usize,
    /// Refs copied.
    pub refs: usize,
    /// In-flight attempts copied.
    pub attempts: usize,
    /// Annotations copied.
    pub annotations: usize,
}

/// Copies every node (parents before children), ref, attempt and annotation of
/// `from` into `to`, which must hold no node yet, then checks that `to` holds
/// exactly as many nodes, the same refs, attempts and annotations. A source
/// store that keeps no annotations ([`Error::Unsupported`]) has none to copy.
///
/// The copy is lossless: node bodies are copied record for record. It is made
/// in batches, so if it fails half-way `to` holds a partial copy (whole nodes
/// only, each with its parent): empty it before trying again.
///
/// ```
/// use resptree::store::{migrate, Batch, MemoryStore, Op, Store};
/// use resptree::{Node, NodeId};
/// let from = MemoryStore::new();
/// from.apply(Batch::from(vec![Op::PutNode(Box::new(Node::new(NodeId::local(), None)))]))?;
/// let to = MemoryStore::new();
/// let report = migrate(&from, &to)?;
/// assert_eq!(report.nodes, 1);
/// # Ok::<(), resptree::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Config`] if `to` already holds nodes; the first problem of the
/// source if it has unreadable records ([`Error::CorruptRecord`]) or a node whose
/// parent is missing ([`Error::InvalidTree`]); [`Error::Storage`] if a read or
/// write fails or the copy does not match the source.
pub fn migrate(from: &dyn Store, to: &dyn Store) -> Result<MigrateReport> {
    let source = from.load()?;
    if let Some(problem) = source.problems.into_iter().next() {
        return Err(problem);
    }
    if !to.load()?.nodes.is_empty() {
        return Err(Error::config(
            "the destination store already holds nodes; migrate copies into an empty store",
        ));
    }
    let order = parents_first(&source.nodes)?;
    for chunk in order.chunks(CHUNK) {
        let mut batch = Batch::new();
        for id in chunk {
            let node = from
                .node(id)?
                .ok_or_else(|| Error::corrupt(format!("bodies/{id}"), "topology without a body"))?;
            batch.push(Op::PutNode(Box::new(node)));
        }
        to.apply(batch)?;
    }
    let refs = from.refs()?;
    let attempts = from.attempts()?;
    let mut batch: Batch = refs
        .iter()
        .map(|(name, id)| Op::SetRef(name.clone(), id.clone()))
        .collect();
    for attempt in &attempts {
        batch.push(Op::PutAttempt(Box::new(attempt.clone())));
    }
    let annotations = match from.annotated(None) {
        Err(Error::Unsupported(_)) => Vec::new(),
        other => other?,
    };
    for (node, annotation) in &annotations {
        batch.push(Op::PutAnnotation {
            node: node.clone(),
            annotation: Box::new(annotation.clone()),
        });
    }
    if !batch.is_empty() {
        to.apply(batch)?;
    }
    to.flush()?;

    let copied = to.load()?;
    let mut want: Vec<&NodeId> = source.nodes.iter().map(|t| &t.id).collect();
    let mut got: Vec<&NodeId> = copied.nodes.iter().map(|t| &t.id).collect();
    want.sort();
    got.sort();
    if got != want {
        return Err(mismatch(format!(
            "the destination holds {} nodes, the source {}",
            got.len(),
            want.len()
        )));
    }
    if to.refs()? != refs {
        return Err(mismatch("the destination's refs differ".to_owned()));
    }
    if to.attempts()? != attempts {
        return Err(mismatch("the destination's attempts differ".to_owned()));
    }
    if !annotations.is_empty() && to.annotated(None)? != annotations {
        return Err(mismatch("the destination's annotations differ".to_owned()));
    }
    Ok(MigrateReport {
        nodes: want.len(),
        refs: refs.len(),
        attempts: attempts.len(),
        annotations: annotations.len(),
    })
}

/// The ids of `nodes`, each after its parent (breadth first from the roots).
fn parents_first(nodes: &[Topology]) -> Result<Vec<NodeId>> {
    let ids: HashSet<&NodeId> = nodes.iter().map(|t| &t.id).collect();
    let mut children: HashMap<&NodeId, Vec<&NodeId>> = HashMap::new();
    let mut order: Vec<NodeId> = Vec::with_capacity(nodes.len());
    for t in nodes {
        match &t.parent {
            None => order.push(t.id.clone()),
            Some(parent) if ids.contains(parent) => {
                children.entry(parent).or_default().push(&t.id);
            }
            Some(parent) => {
                return Err(Error::InvalidTree(TreeViolation::DanglingParent {
                    node: t.id.clone(),
                    missing: parent.clone(),
                }));
            }
        }
    }
    let mut next = 0;
    while next < order.len() {
        if let Some(kids) = children.get(&order[next]) {
            order.extend(kids.iter().map(|&k| k.clone()));
        }
        next += 1;
    }
    if order.len() != nodes.len() {
        // Only a cycle of parent links can leave nodes unreached from a root.
        let reached: HashSet<&NodeId> = order.iter().collect();
        if let Some(t) = nodes.iter().find(|t| !reached.contains(&t.id)) {
            return Err(Error::InvalidTree(TreeViolation::Cycle {
                from: t.parent.clone().unwrap_or_else(|| t.id.clone()),
                to: t.id.clone(),
            }));
        }
    }
    Ok(order)
}

fn mismatch(reason: String) -> Error {
    Error::storage("verifying the migrated copy", reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Timestamp;

    fn topo(id: &str, parent: Option<&str>) -> Topology {
        Topology {
            id: NodeId::new(id).unwrap(),
            parent: parent.map(|p| NodeId::new(p).unwrap()),
            extra_context: Vec::new(),
            created_at: Timestamp(0),
        }
    }

    #[test]
    fn parents_come_first_and_dangling_parents_are_refused() {
        let nodes = [topo("c", Some("b")), topo("b", Some("a")), topo("a", None)];
        let order = parents_first(&nodes).unwrap();
        let names: Vec<&str> = order.iter().map(NodeId::as_str).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let err = parents_first(&[topo("c", Some("gone"))]).unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidTree(TreeViolation::DanglingParent { .. })
        ));
        let err = parents_first(&[topo("x", Some("y")), topo("y", Some("x"))]).unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidTree(TreeViolation::Cycle { .. })
        ));
    }
}
