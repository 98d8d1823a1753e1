//! [`MemoryStore`]: a [`Store`] in `HashMap`s, for tests and throwaway trees,
//! with an in-memory search index ([`crate::search`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::annotation::{AnnotationKey, AnnotationKind, Stamped};
use crate::error::{Error, Result};
use crate::ids::{NodeId, RefName};
use crate::node::Node;

use crate::search::index::MemoryIndex;
use crate::search::{Candidate, IndexQuery};

use super::{Attempt, AttemptId, Batch, Loaded, Op, Store, Topology, trace};

/// How many records [`Store::for_each_node`] lends under one lock.
const LEND_CHUNK: usize = 1024;

/// A [`Store`] that keeps everything in memory; nothing survives the process.
///
/// It has the same semantics as the durable stores (atomic batches, removal of
/// missing records is not an error), so it is a faithful stand-in in tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    nodes: HashMap<NodeId, Node>,
    refs: BTreeMap<RefName, NodeId>,
    attempts: BTreeMap<AttemptId, Attempt>,
    /// Ordered by node then key, as [`Store::annotated`] lists them.
    annotations: BTreeMap<(NodeId, AnnotationKey), Stamped>,
    /// Kept in step with `nodes` under the same lock, so a search never sees
    /// half a batch.
    index: MemoryIndex,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation below completes without panicking, so a poisoned lock
        // still guards consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    /// Every call is a short, in-memory critical section.
    fn is_blocking(&self) -> bool {
        false
    }

    fn load(&self) -> Result<Loaded> {
        let inner = self.lock();
        Ok(Loaded {
            nodes: inner.nodes.values().map(Topology::of).collect(),
            refs: inner
                .refs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            problems: Vec::new(),
            cursor: None,
            parent_positions: Vec::new(),
        })
    }

    fn node(&self, id: &NodeId) -> Result<Option<Node>> {
        Ok(self.lock().nodes.get(id).cloned())
    }

    /// Lends the records instead of cloning them (a clone was most of a
    /// render's time per node), taking the lock once per chunk of ids so
    /// that writers wait at most one chunk's worth of `f`.
    fn for_each_node(
        &self,
        ids: &[NodeId],
        f: &mut dyn FnMut(&NodeId, Option<&Node>) -> Result<()>,
    ) -> Result<()> {
        for chunk in ids.chunks(LEND_CHUNK) {
            let inner = self.lock();
            for id in chunk {
                f(id, inner.nodes.get(id))?;
            }
        }
        Ok(())
    }

    fn apply(&self, batch: Batch) -> Result<()> {
        let (started, ops) = (Instant::now(), batch.len());
        // One lock for the whole batch: no reader sees half of it.
        let mut inner = self.lock();
        // Compare-and-swap checks may depend on earlier ops of the same batch, so
        // they are checked on a copy of the refs before anything is changed.
        check_ref_swaps(&inner.refs, batch.ops())?;
        for op in batch.into_ops() {
            match op {
                Op::PutNode(node) => {
                    inner.index.put(&node);
                    inner.nodes.insert(node.id.clone(), *node);
                }
                Op::RemoveNode(id) => {
                    inner.index.remove(&id);
                    inner.nodes.remove(&id);
                    inner.annotations.retain(|(node, _), _| *node != id);
                }
                Op::SetRef(name, id) | Op::SetRefIf { name, new: id, .. } => {
                    inner.refs.insert(name, id);
                }
                Op::DeleteRef(name) => {
                    inner.refs.remove(&name);
                }
                Op::PutAttempt(attempt) => {
                    inner.attempts.insert(attempt.id, *attempt);
                }
                Op::RemoveAttempt(id) => {
                    inner.attempts.remove(&id);
                }
                Op::PutAnnotation { node, annotation } => {
                    inner
                        .annotations
                        .insert((node, annotation.key()), *annotation);
                }
                Op::RemoveAnnotation { node, key } => {
                    inner.annotations.remove(&(node, key));
                }
            }
        }
        trace::committed("memory", ops, None, started);
        Ok(())
    }

    fn attempts(&self) -> Result<Vec<Attempt>> {
        Ok(self.lock().attempts.values().cloned().collect())
    }

    fn refs(&self) -> Result<Vec<(RefName, NodeId)>> {
        Ok(self
            .lock()
            .refs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn annotations(&self, node: &NodeId) -> Result<Vec<Stamped>> {
        Ok(self
            .lock()
            .annotations
            .range((node.clone(), AnnotationKey::min())..)
            .take_while(|((n, _), _)| n == node)
            .map(|(_, a)| a.clone())
            .collect())
    }

    fn annotated(&self, kind: Option<AnnotationKind>) -> Result<Vec<(NodeId, Stamped)>> {
        Ok(self
            .lock()
            .annotations
            .iter()
            .filter(|((_, key), _)| kind.is_none_or(|k| key.kind() == k))
            .map(|((n, _), a)| (n.clone(), a.clone()))
            .collect())
    }

    /// From an in-memory inverted index, updated with every batch.
    fn search(&self, query: &IndexQuery) -> Result<Option<Vec<Candidate>>> {
        Ok(Some(self.lock().index.query(query)))
    }
}

/// Replays the ref operations of `ops` on a copy of `refs` and reports the first
/// [`Op::SetRefIf`] whose expectation does not hold.
fn check_ref_swaps(refs: &BTreeMap<RefName, NodeId>, ops: &[Op]) -> Result<()> {
    if !ops.iter().any(|op| matches!(op, Op::SetRefIf { .. })) {
        return Ok(());
    }
    let mut refs = refs.clone();
    for op in ops {
        match op {
            Op::SetRef(name, id) => {
                refs.insert(name.clone(), id.clone());
            }
            Op::DeleteRef(name) => {
                refs.remove(name);
            }
            Op::SetRefIf {
                name,
                expected,
                new,
            } => {
                let actual = refs.get(name);
                if actual != expected.as_ref() {
                    return Err(Error::Conflict {
                        name: name.clone(),
                        expected: expected.clone(),
                        actual: actual.cloned(),
                    });
                }
                refs.insert(name.clone(), new.clone());
            }
            _ => {}
        }
    }
    Ok(())
}
