//! [`ResponseTree`]: a [`Graph`] kept in step with a [`Store`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::ids::{IntoRefName, NodeId, RefName};
use crate::node::{Node, Preview};
use crate::store::{Attempt, AttemptId, Batch, MemoryStore, Op, Store, Topology};

use super::graph::{BranchDiff, Graph, MissingContext};
use super::group_commit::{Committer, Queue, Write};

/// A durable tree of responses: the in-memory topology plus the store that holds
/// the node bodies, refs and in-flight attempts.
///
/// The tree is the only door to its store: it owns the store, hands out no
/// handle to it and takes no raw store operations, so the graph and the store
/// cannot disagree. Everything a writer needs is a typed method: [`insert`],
/// [`insert_all`], [`remove_subtree`], the ref methods, and for request
/// bookkeeping [`journal`], [`commit`], [`settle`] and [`attempts`].
///
/// [`insert`]: ResponseTree::insert
/// [`insert_all`]: ResponseTree::insert_all
/// [`remove_subtree`]: ResponseTree::remove_subtree
/// [`journal`]: ResponseTree::journal
/// [`commit`]: ResponseTree::commit
/// [`settle`]: ResponseTree::settle
/// [`attempts`]: ResponseTree::attempts
///
/// Open one with [`ResponseTree::open`] (sled on disk), [`ResponseTree::temporary`],
/// [`ResponseTree::in_memory`] or [`ResponseTree::with_store`]. Every method takes
/// `&self` and the tree is `Send + Sync`: share it with an `Arc`.
///
/// Edits are validated against the graph, written to the store in one atomic
/// batch, and only then applied to the graph; if the store write fails the tree
/// is unchanged. Edits are serialised with each other; readers are only blocked
/// while the graph itself changes, never during store IO.
///
/// ```
/// use resptree::{Node, NodeId, ResponseTree};
/// let tree = ResponseTree::in_memory();
/// let root = Node::new(NodeId::local(), None).with_user_text("Plan a trip").with_output_text("Where to?");
/// let child = Node::new(NodeId::local(), Some(root.id.clone())).with_user_text("Paris");
/// let (root_id, child_id) = (root.id.clone(), child.id.clone());
/// tree.insert(root)?;
/// tree.insert(child)?;
/// assert_eq!(tree.path(&child_id)?, vec![root_id.clone(), child_id.clone()]);
/// assert_eq!(tree.transcript(&child_id)?.len(), 3); // user, assistant, user
/// tree.set_ref("trip", &child_id)?;
/// assert_eq!(tree.resolve("trip")?, child_id);
/// # Ok::<(), resptree::Error>(())
/// ```
pub struct ResponseTree {
    graph: RwLock<Graph>,
    refs: RwLock<BTreeMap<RefName, NodeId>>,
    /// Serialises edits, so that validation, the store write and the graph update
    /// of one edit are never interleaved with another's.
    write: Mutex<()>,
    /// Owned, never lent out: every write goes through the validated methods.
    pub(super) store: Box<dyn Store>,
    /// Writers waiting to be committed together (see `group_commit`).
    pub(super) writes: Queue,
    problems: Vec<Error>,
    /// Where the store's change feed stood when the graph last caught up with
    /// it; `None` for stores without a feed.
    cursor: Mutex<Option<u64>>,
}

/// What [`ResponseTree::refresh`] changed.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Refreshed {
    /// Nodes other processes added, in the order they were stored.
    pub added: Vec<NodeId>,
    /// Nodes other processes removed (with the nodes below them).
    pub removed: Vec<NodeId>,
    /// Stored nodes that could not join the graph (their parent is gone), as for
    /// [`ResponseTree::load_problems`].
    pub problems: Vec<Error>,
}

impl fmt::Debug for ResponseTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseTree")
            .field("nodes", &self.read().len())
            .field("store", &self.store)
            .field("problems", &self.problems.len())
            .finish_non_exhaustive()
    }
}

impl ResponseTree {
    /// Opens (or creates) a tree stored with sled at `path`, rebuilding the graph
    /// from the stored topology. Bodies stay on disk until asked for.
    ///
    /// Records that cannot be read are skipped and listed by
    /// [`ResponseTree::load_problems`].
    ///
    /// # Errors
    ///
    /// [`Error::StoreInUse`] if another process has the store open, [`Error::Storage`]
    /// if it cannot be opened or read.
    #[cfg(feature = "sled")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sled")))]
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::with_store(crate::store::SledStore::open(path)?)
    }

    /// A tree in a temporary sled database, deleted when the tree is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the database cannot be created.
    #[cfg(feature = "sled")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sled")))]
    pub fn temporary() -> Result<Self> {
        Self::with_store(crate::store::SledStore::temporary()?)
    }

    /// A tree kept only in memory.
    pub fn in_memory() -> Self {
        Self::empty(Box::new(MemoryStore::new()))
    }

    /// A tree over `store`, rebuilt from what the store holds.
    ///
    /// The tree takes the store by value and never lends it out, so nothing can
    /// write to it behind the graph's back. A boxed store chosen at run time
    /// (`Box<dyn Store>`, as [`open_location`](crate::store::open_location)
    /// returns) is a store too.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the store cannot be read.
    pub fn with_store(store: impl Store + 'static) -> Result<Self> {
        let store: Box<dyn Store> = Box::new(store);
        let loaded = store.load()?;
        let mut problems = loaded.problems;
        let (graph, graph_problems) =
            Graph::build_positioned(&loaded.nodes, &loaded.parent_positions);
        problems.extend(graph_problems);
        let mut refs = BTreeMap::new();
        for (name, target) in loaded.refs {
            if graph.contains(&target) {
                refs.insert(name, target);
            } else {
                problems.push(Error::corrupt(
                    format!("refs/{name}"),
                    format!("points to {target}, which is not in the tree"),
                ));
            }
        }
        Ok(Self {
            graph: RwLock::new(graph),
            refs: RwLock::new(refs),
            write: Mutex::new(()),
            store,
            writes: Queue::default(),
            problems,
            cursor: Mutex::new(loaded.cursor),
        })
    }

    fn empty(store: Box<dyn Store>) -> Self {
        Self {
            graph: RwLock::new(Graph::new()),
            refs: RwLock::new(BTreeMap::new()),
            write: Mutex::new(()),
            store,
            writes: Queue::default(),
            problems: Vec::new(),
            cursor: Mutex::new(None),
        }
    }

    /// The records skipped when the tree was opened (corrupt or foreign records,
    /// nodes whose parent was missing), each an error naming its key or node.
    pub fn load_problems(&self) -> &[Error] {
        &self.problems
    }

    /// Whether calls into the store may block on IO; see [`Store::is_blocking`].
    pub(crate) fn is_blocking(&self) -> bool {
        self.store.is_blocking()
    }

    /// Whether several processes may write the store; see [`Store::is_shared`].
    pub(crate) fn is_shared(&self) -> bool {
        self.store.is_shared()
    }

    /// Makes every write so far durable (a no-op for stores that flush each write).
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the flush fails.
    pub fn flush(&self) -> Result<()> {
        self.store.flush()
    }

    /// A read guard on the graph, for iterator walks
    /// ([`Graph::descendants_dfs`], [`Graph::ancestors`], …).
    ///
    /// Edits wait while the guard is alive: keep it short, and never hold it
    /// across an `.await`.
    pub fn graph(&self) -> RwLockReadGuard<'_, Graph> {
        self.read()
    }

    /// Inserts `node`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTree`] if the id exists or the parent or a context node is
    /// missing; [`Error::Storage`] if the store write fails. On error nothing changes.
    pub fn insert(&self, node: Node) -> Result<()> {
        self.commit(vec![node], &[])
    }

    /// Inserts `nodes` that each hang from nodes already in the tree (the siblings
    /// of a fan-out, say), in one atomic store batch.
    ///
    /// Unlike [`ResponseTree::insert_all`], this validates each node against the
    /// live graph without copying it, so its cost does not grow with the tree; in
    /// exchange a node may not point to another node of the same group.
    ///
    /// # Errors
    ///
    /// As [`ResponseTree::insert`]; a node whose parent or context is in the group
    /// itself is [`Error::InvalidTree`] (dangling). On error nothing changes.
    pub fn insert_group(&self, nodes: Vec<Node>) -> Result<()> {
        self.commit(nodes, &[])
    }

    /// Records in-flight request `attempts` in the journal, in one atomic write
    /// (an attempt with the id of one already journaled replaces it, as when the
    /// server's response id becomes known).
    ///
    /// The journal is how a crash loses a request but never a response: see
    /// [`Engine::recover`](crate::Engine::recover).
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the store write fails; then nothing is journaled.
    pub fn journal(&self, attempts: &[Attempt]) -> Result<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        let write = Write {
            journal: attempts.to_vec(),
            ..Write::default()
        };
        self.writes.submit(self, write)
    }

    /// Inserts `nodes` (as [`ResponseTree::insert_group`]) and removes the
    /// `settled` attempts from the journal, in one atomic store batch: a response
    /// is never both recorded and still pending, nor lost between the two.
    ///
    /// Concurrent calls (and [`ResponseTree::journal`]s) are committed as a
    /// group: one store write and one flush for all of them, the flush taken
    /// outside the tree's locks. Each call returns once its write is durable
    /// (as the store's [`Durability`](crate::store::Durability) defines it).
    /// Readers of this tree may see the nodes a moment earlier, while the
    /// flush runs.
    ///
    /// # Errors
    ///
    /// As [`ResponseTree::insert_group`]. On a refused node or a failed write
    /// nothing changes: the nodes are not inserted and the attempts stay
    /// journaled. If only the flush fails, the nodes are in the tree but may not
    /// be on disk; the error says so ([`Error::Storage`]).
    pub fn commit(&self, nodes: Vec<Node>, settled: &[AttemptId]) -> Result<()> {
        if nodes.is_empty() && settled.is_empty() {
            return Ok(());
        }
        let write = Write {
            nodes,
            settled: settled.to_vec(),
            ..Write::default()
        };
        self.writes.submit(self, write)
    }

    /// [`ResponseTree::commit`] for an async caller: the same group commit,
    /// but the caller waits without holding a thread (see `group_commit`).
    /// For a store that never blocks this is the blocking call, made in place.
    ///
    /// Cancel-safe: dropped before a group took the write, nothing is written;
    /// dropped later, the write completes (all of it) without its caller.
    pub(crate) async fn commit_async(
        self: &Arc<Self>,
        nodes: Vec<Node>,
        settled: &[AttemptId],
    ) -> Result<()> {
        if nodes.is_empty() && settled.is_empty() {
            return Ok(());
        }
        let write = Write {
            nodes,
            settled: settled.to_vec(),
            ..Write::default()
        };
        self.submit_async(write).await
    }

    /// [`ResponseTree::journal`] for an async caller, as
    /// [`ResponseTree::commit_async`].
    pub(crate) async fn journal_async(self: &Arc<Self>, attempts: &[Attempt]) -> Result<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        let write = Write {
            journal: attempts.to_vec(),
            ..Write::default()
        };
        self.submit_async(write).await
    }

    async fn submit_async(self: &Arc<Self>, write: Write) -> Result<()> {
        if !self.store.is_blocking() {
            return self.writes.submit(&**self, write);
        }
        let slot = self.writes.enqueue(write);
        let start_leader = || {
            let tree = Arc::clone(self);
            // Detached: the leader reports to every slot it commits, and if it
            // panics, to every slot of its group (see `group_commit`).
            drop(tokio::task::spawn_blocking(move || {
                tree.writes.lead(&*tree);
            }));
        };
        self.writes.wait(&slot, start_leader).await
    }

    /// Sets how long a group commit may wait for more writers before it
    /// writes, while requests of an engine over this tree are under way
    /// (default `Duration::ZERO`: never waits). Each group costs the store a
    /// fixed amount of work besides its nodes, so gathering the children of
    /// a fan-out that finish close together into fewer groups can save CPU;
    /// a request that is alone never waits. Off by default: in the one idle
    /// run so far a 2 ms window doubled the nodes per fsync and cut the CPU of
    /// a 256-child fan-out into sled by a tenth, but changed nothing at 1 024
    /// children and nothing on a loaded machine (docs/benchmarks.md section
    /// 2b). Only async writers (the engine's) on a store that blocks (sled,
    /// PostgreSQL) gather; the blocking methods commit at once.
    pub fn set_group_window(&self, window: std::time::Duration) {
        self.writes.set_window(window);
    }

    /// Counts a request under way that will write through this tree's group
    /// commit, until the returned guard is dropped (see
    /// [`ResponseTree::set_group_window`]).
    pub(crate) fn expect_writer(self: &Arc<Self>) -> ExpectedWriter {
        if !self.store.is_blocking() {
            // Nothing gathers for a store that never blocks.
            return ExpectedWriter(None);
        }
        self.writes.writer_started();
        ExpectedWriter(Some(Arc::clone(self)))
    }

    /// Removes `attempts` from the journal without recording a node: the request
    /// failed (its caller has the error) or recovery gave up on it.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the store write fails; then every attempt stays.
    pub fn settle(&self, attempts: &[AttemptId]) -> Result<()> {
        self.commit(Vec::new(), attempts)
    }

    /// Every journaled attempt, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] on IO failure, [`Error::CorruptRecord`] for a record
    /// that cannot be decoded.
    pub fn attempts(&self) -> Result<Vec<Attempt>> {
        self.store.attempts()
    }

    /// Inserts `nodes`, given in any order, and points `refs` at nodes (new or
    /// existing), all in one atomic store batch: either everything is added or
    /// nothing is. Extra-context ids must name nodes of the tree or of `nodes`.
    ///
    /// The batch is validated on a copy of the graph, so this costs time and
    /// memory in proportion to the whole tree: meant for imports and fan-outs,
    /// not for a loop of single inserts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTree`] for the first node that cannot be inserted (duplicate,
    /// dangling parent or context, cycle); [`Error::NodeNotFound`] for a ref whose
    /// target is neither in the tree nor in `nodes`; [`Error::Storage`] if the
    /// store write fails. On error nothing changes.
    pub fn insert_all(&self, nodes: Vec<Node>, refs: Vec<(RefName, NodeId)>) -> Result<()> {
        self.insert_all_annotated(nodes, refs, Vec::new())
    }

    /// [`ResponseTree::insert_all`], with annotations of new or existing nodes
    /// in the same batch (what an import of an export needs).
    pub(crate) fn insert_all_annotated(
        &self,
        nodes: Vec<Node>,
        refs: Vec<(RefName, NodeId)>,
        annotations: Vec<(NodeId, crate::annotation::Stamped)>,
    ) -> Result<()> {
        let _edit = self.lock_edits();
        let records: Vec<Topology> = nodes.iter().map(Topology::of).collect();
        // Validate on a copy so a refused batch leaves the live graph untouched.
        let mut next = self.read().clone();
        if let Some(first) = next
            .insert_all(&records, MissingContext::Refuse)
            .into_iter()
            .next()
        {
            return Err(first);
        }
        if let Some((_, missing)) = refs.iter().find(|(_, target)| !next.contains(target)) {
            return Err(Error::NodeNotFound(missing.clone()));
        }
        if let Some((missing, _)) = annotations.iter().find(|(node, _)| !next.contains(node)) {
            return Err(Error::NodeNotFound(missing.clone()));
        }
        for (_, stamped) in &annotations {
            stamped.annotation.validate()?;
        }
        let batch: Batch = nodes
            .into_iter()
            .map(|n| Op::PutNode(Box::new(n)))
            .chain(
                refs.iter()
                    .map(|(name, id)| Op::SetRef(name.clone(), id.clone())),
            )
            .chain(
                annotations
                    .into_iter()
                    .map(|(node, annotation)| Op::PutAnnotation {
                        node,
                        annotation: Box::new(annotation),
                    }),
            )
            .collect();
        self.store.apply(batch)?;
        *self.write_graph() = next;
        self.write_refs().extend(refs);
        Ok(())
    }

    /// Publishes the nodes staged under `stage` (their topology `records`)
    /// with `refs`: validated as [`ResponseTree::insert_all`] validates, then
    /// made part of the store in one write (`Store::publish_stage`), then of
    /// the graph. On error nothing changes and the stage can be abandoned.
    pub(super) fn publish_staged(
        &self,
        stage: crate::store::StageId,
        records: &[Topology],
        refs: Vec<(RefName, NodeId)>,
    ) -> Result<()> {
        let _edit = self.lock_edits();
        // Validate on a copy so a refused stage leaves the live graph untouched.
        let mut next = self.read().clone();
        if let Some(first) = next
            .insert_all(records, MissingContext::Refuse)
            .into_iter()
            .next()
        {
            return Err(first);
        }
        if let Some((_, missing)) = refs.iter().find(|(_, target)| !next.contains(target)) {
            return Err(Error::NodeNotFound(missing.clone()));
        }
        self.store.publish_stage(stage, &refs)?;
        *self.write_graph() = next;
        self.write_refs().extend(refs);
        Ok(())
    }

    /// Catches up with what other processes wrote to a shared store since the
    /// tree was opened or last refreshed: adds the nodes they stored, drops the
    /// nodes they removed (with everything below them) and takes every ref as the
    /// store now holds it. Nodes that another process *replaced* in place keep
    /// their old topology until the tree is reopened.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] if the store keeps no change feed (only shared
    /// stores such as `PostgresStore` do); [`Error::Storage`] if it cannot be
    /// read. On error nothing changes.
    pub fn refresh(&self) -> Result<Refreshed> {
        let _edit = self.lock_edits();
        let mut cursor = self.cursor.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(since) = *cursor else {
            return Err(Error::Unsupported(
                "this tree's store keeps no change feed; only a shared store (PostgreSQL) can be refreshed",
            ));
        };
        let changes = self.store.changes_since(since)?;
        let mut out = Refreshed::default();
        let mut graph = self.write_graph();
        // Removals first: a node removed and then stored again is in `nodes`.
        for id in &changes.removed {
            if graph.contains(id) {
                out.removed.extend(graph.remove_subtree(id)?);
            }
        }
        let fresh: Vec<Topology> = changes
            .nodes
            .into_iter()
            .filter(|t| !graph.contains(&t.id))
            .collect();
        out.problems = graph.insert_all(&fresh, MissingContext::Drop);
        out.added = fresh
            .into_iter()
            .map(|t| t.id)
            .filter(|id| graph.contains(id))
            .collect();
        *self.write_refs() = changes
            .refs
            .into_iter()
            .filter(|(_, target)| graph.contains(target))
            .collect();
        *cursor = Some(changes.cursor);
        Ok(out)
    }

    /// The full record of node `id`, read from the store.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if the node is not in the tree; [`Error::Storage`] or
    /// [`Error::CorruptRecord`] if its body cannot be read.
    pub fn get(&self, id: &NodeId) -> Result<Node> {
        if !self.read().contains(id) {
            return Err(Error::NodeNotFound(id.clone()));
        }
        self.store
            .node(id)?
            .ok_or_else(|| Error::NodeNotFound(id.clone()))
    }

    /// Calls `f` with the record of each of `ids`, in order: what
    /// [`ResponseTree::get`] returns for each, read in bulk
    /// ([`Store::for_each_node`]). `f` must not call into this tree: the store
    /// may hold a lock meanwhile.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] for the first id the store does not hold; store
    /// errors; the first error `f` returns.
    pub(crate) fn for_each_node(
        &self,
        ids: &[NodeId],
        f: &mut dyn FnMut(&Node) -> Result<()>,
    ) -> Result<()> {
        self.store.for_each_node(ids, &mut |id, node| match node {
            Some(node) => f(node),
            None => Err(Error::NodeNotFound(id.clone())),
        })
    }

    /// Calls `f` with the [`Preview`] of each of `ids`, in order, read in
    /// bulk ([`Store::for_each_preview`]): what the renderers draw from. `f`
    /// must not call into this tree: the store may hold a lock meanwhile.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] for the first id the store does not hold; store
    /// errors; the first error `f` returns.
    pub(crate) fn for_each_preview(
        &self,
        ids: &[NodeId],
        f: &mut dyn FnMut(&NodeId, &Preview<'_>) -> Result<()>,
    ) -> Result<()> {
        self.store
            .for_each_preview(ids, &mut |id, preview| match preview {
                Some(preview) => f(id, preview),
                None => Err(Error::NodeNotFound(id.clone())),
            })
    }

    /// Whether `id` is in the tree.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.read().contains(id)
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the tree has no node.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// See [`Graph::parent`].
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the tree.
    pub fn parent(&self, id: &NodeId) -> Result<Option<NodeId>> {
        self.read().parent(id)
    }

    /// See [`Graph::children`].
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the tree.
    pub fn children(&self, id: &NodeId) -> Result<Vec<NodeId>> {
        self.read().children(id)
    }

    /// See [`Graph::siblings`].
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the tree.
    pub fn siblings(&self, id: &NodeId) -> Result<Vec<NodeId>> {
        self.read().siblings(id)
    }

    /// The ancestors of `id`, nearest first; see [`Graph::ancestors`].
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the tree.
    pub fn ancestors(&self, id: &NodeId) -> Result<Vec<NodeId>> {
        Ok(self.read().ancestors(id)?.collect())
    }

    /// See [`Graph::path`].
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the tree.
    pub fn path(&self, id: &NodeId) -> Result<Vec<NodeId>> {
        self.read().path(id)
    }

    /// See [`Graph::depth`].
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the tree.
    pub fn depth(&self, id: &NodeId) -> Result<usize> {
        self.read().depth(id)
    }

    /// See [`Graph::roots`].
    pub fn roots(&self) -> Vec<NodeId> {
        self.read().roots()
    }

    /// The leaves of the whole forest (`under = None`) or at or below a node;
    /// see [`Graph::leaves`] and [`Graph::leaves_under`].
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `under` is not in the tree.
    pub fn leaves(&self, under: Option<&NodeId>) -> Result<Vec<NodeId>> {
        let graph = self.read();
        match under {
            None => Ok(graph.leaves()),
            Some(id) => graph.leaves_under(id),
        }
    }

    /// `id` and everything below it, depth first; see [`Graph::descendants_dfs`].
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the tree.
    pub fn descendants(&self, id: &NodeId) -> Result<Vec<NodeId>> {
        Ok(self.read().descendants_dfs(id)?.collect())
    }

    /// See [`Graph::common_ancestor`].
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if either node is not in the tree.
    pub fn common_ancestor(&self, a: &NodeId, b: &NodeId) -> Result<Option<NodeId>> {
        self.read().common_ancestor(a, b)
    }

    /// See [`Graph::diff`].
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if either node is not in the tree.
    pub fn diff(&self, left: &NodeId, right: &NodeId) -> Result<BranchDiff> {
        self.read().diff(left, right)
    }

    /// The conversation along the path from the root to `id`: each node's input
    /// items, then its output items, in order — exactly what a replay must send.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` (or a body on its path) is missing;
    /// store errors as for [`ResponseTree::get`].
    pub fn transcript(&self, id: &NodeId) -> Result<Vec<Value>> {
        let path = self.path(id)?;
        let mut items = Vec::new();
        for step in &path {
            let node = self.get(step)?;
            items.extend(node.input);
            items.extend(node.output);
        }
        Ok(items)
    }

    /// The ids of the nodes for which `pred` is true, oldest first (by creation
    /// time, then id). Reads every body: O(n) store reads.
    ///
    /// ```
    /// # use resptree::{Node, NodeId, ResponseTree};
    /// # let tree = ResponseTree::in_memory();
    /// # tree.insert(Node::new(NodeId::local(), None).with_output_text("Paris"))?;
    /// let about_paris = tree.find(|n| n.output_text.contains("Paris"))?;
    /// assert_eq!(about_paris.len(), 1);
    /// # Ok::<(), resptree::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Store errors as for [`ResponseTree::get`].
    pub fn find(&self, pred: impl Fn(&Node) -> bool) -> Result<Vec<NodeId>> {
        let ids = self.all_ids();
        let mut out = Vec::new();
        for id in ids {
            // A node removed since `all_ids` is simply skipped.
            if let Some(node) = self.store.node(&id)? {
                if pred(&node) {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    /// Every node id, oldest first (by creation time, then id).
    pub fn all_ids(&self) -> Vec<NodeId> {
        let graph = self.read();
        let mut ids: Vec<(crate::node::Timestamp, NodeId)> = graph
            .ids()
            .map(|id| (graph.created_at(id).unwrap_or_default(), id.clone()))
            .collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// Removes `id` and every node below it, their annotations, and the refs
    /// that pointed into the removed subtree, in one atomic store batch. Returns the removed ids,
    /// depth first.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the tree; [`Error::Storage`] if the
    /// store write fails (then nothing is removed).
    pub fn remove_subtree(&self, id: &NodeId) -> Result<Vec<NodeId>> {
        let _edit = self.lock_edits();
        let removed: Vec<NodeId> = self.read().descendants_dfs(id)?.collect();
        let gone: std::collections::HashSet<&NodeId> = removed.iter().collect();
        let dead_refs: Vec<RefName> = self
            .read_refs()
            .iter()
            .filter(|(_, target)| gone.contains(target))
            .map(|(name, _)| name.clone())
            .collect();
        let batch: Batch = removed
            .iter()
            .cloned()
            .map(Op::RemoveNode)
            .chain(dead_refs.iter().cloned().map(Op::DeleteRef))
            .collect();
        self.store.apply(batch)?;
        let mut graph = self.write_graph();
        let mut refs = self.write_refs();
        for name in &dead_refs {
            refs.remove(name);
        }
        graph.remove_subtree(id)
    }

    /// Points ref `name` at `id`, creating or moving it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] if `name` is not a valid ref name;
    /// [`Error::NodeNotFound`] if `id` is not in the tree; [`Error::Storage`] if the
    /// store write fails.
    pub fn set_ref(&self, name: impl IntoRefName, id: &NodeId) -> Result<()> {
        let name = name.into_ref_name()?;
        let _edit = self.lock_edits();
        if !self.read().contains(id) {
            return Err(Error::NodeNotFound(id.clone()));
        }
        self.store
            .apply(Batch::from(vec![Op::SetRef(name.clone(), id.clone())]))?;
        self.write_refs().insert(name, id.clone());
        Ok(())
    }

    /// Points ref `name` at `id` only if the store still has it at `expected`
    /// (`None`: only if the ref does not exist) — a compare-and-swap that makes
    /// moving a ref safe when several processes share a store.
    ///
    /// On a conflict the tree takes the ref's current target from the store, so
    /// a retry can start from [`ResponseTree::get_ref`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] if `name` is not a valid ref name;
    /// [`Error::NodeNotFound`] if `id` is not in the tree; [`Error::Conflict`] if
    /// the ref holds something else; [`Error::Storage`] if the write fails.
    pub fn set_ref_if(
        &self,
        name: impl IntoRefName,
        expected: Option<&NodeId>,
        id: &NodeId,
    ) -> Result<()> {
        let name = name.into_ref_name()?;
        let _edit = self.lock_edits();
        if !self.read().contains(id) {
            return Err(Error::NodeNotFound(id.clone()));
        }
        let swap = Op::SetRefIf {
            name: name.clone(),
            expected: expected.cloned(),
            new: id.clone(),
        };
        match self.store.apply(Batch::from(vec![swap])) {
            Ok(()) => {
                self.write_refs().insert(name, id.clone());
                Ok(())
            }
            Err(Error::Conflict {
                name,
                expected,
                actual,
            }) => {
                let mut refs = self.write_refs();
                match &actual {
                    Some(target) if self.read().contains(target) => {
                        refs.insert(name.clone(), target.clone());
                    }
                    _ => {
                        refs.remove(&name);
                    }
                }
                Err(Error::Conflict {
                    name,
                    expected,
                    actual,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The node ref `name` points to.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] if `name` is not a valid ref name;
    /// [`Error::RefNotFound`] if there is no such ref.
    pub fn get_ref(&self, name: impl IntoRefName) -> Result<NodeId> {
        let name = name.into_ref_name()?;
        self.read_refs()
            .get(&name)
            .cloned()
            .ok_or(Error::RefNotFound(name))
    }

    /// Every ref and its target, ordered by name.
    pub fn list_refs(&self) -> Vec<(RefName, NodeId)> {
        self.read_refs()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Deletes ref `name`, returning the node it pointed to.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] if `name` is not a valid ref name;
    /// [`Error::RefNotFound`] if there is no such ref; [`Error::Storage`] if the
    /// store write fails.
    pub fn delete_ref(&self, name: impl IntoRefName) -> Result<NodeId> {
        let name = name.into_ref_name()?;
        let _edit = self.lock_edits();
        let target = self.get_ref(&name)?;
        self.store
            .apply(Batch::from(vec![Op::DeleteRef(name.clone())]))?;
        self.write_refs().remove(&name);
        Ok(target)
    }

    /// Resolves what a user typed to a node: a ref name, a full node id, a unique
    /// prefix of an id (with or without its `resp_`/`node_` prefix), or a unique
    /// suffix of at least 4 characters — the short ids the renderers print
    /// ([`NodeId::short`]) are suffixes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] if `input` cannot be an id or is an ambiguous prefix;
    /// [`Error::NodeNotFound`] if nothing matches.
    pub fn resolve(&self, input: &str) -> Result<NodeId> {
        let as_id = NodeId::new(input)?;
        if let Ok(name) = RefName::new(input) {
            if let Some(target) = self.read_refs().get(&name) {
                return Ok(target.clone());
            }
        }
        let graph = self.read();
        if graph.contains(&as_id) {
            return Ok(as_id);
        }
        let mut matches = graph.ids().filter(|id| {
            let s = id.as_str();
            let body = s.split_once('_').map_or(s, |(_, rest)| rest);
            s.starts_with(input)
                || body.starts_with(input)
                || (input.len() >= 4 && body.ends_with(input))
        });
        match (matches.next(), matches.next()) {
            (Some(id), None) => Ok(id.clone()),
            (None, _) => Err(Error::NodeNotFound(as_id)),
            (Some(_), Some(_)) => Err(Error::InvalidId {
                kind: "node id",
                input: input.chars().take(128).collect(),
                reason: "matches more than one node id",
            }),
        }
    }

    // Every mutation of the graph and refs completes without panicking once it
    // starts, so a poisoned lock still guards consistent data: recover it.

    pub(super) fn read(&self) -> RwLockReadGuard<'_, Graph> {
        self.graph.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_graph(&self) -> RwLockWriteGuard<'_, Graph> {
        self.graph.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_refs(&self) -> RwLockReadGuard<'_, BTreeMap<RefName, NodeId>> {
        self.refs.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_refs(&self) -> RwLockWriteGuard<'_, BTreeMap<RefName, NodeId>> {
        self.refs.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn lock_edits(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the store keeps a change feed ([`ResponseTree::refresh`] works).
    pub(super) fn has_change_feed(&self) -> bool {
        self.cursor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

impl Committer for ResponseTree {
    fn lock_edits(&self) -> std::sync::MutexGuard<'_, ()> {
        ResponseTree::lock_edits(self)
    }

    fn with_graph<T>(&self, f: impl FnOnce(&Graph) -> T) -> T {
        f(&self.read())
    }

    fn insert_records(&self, records: &[Topology]) {
        let mut graph = self.write_graph();
        for record in records {
            // Validated under the edit lock, which the caller still holds.
            if let Err(err) = graph.insert(record) {
                tracing::error!(error = %err, "a validated node did not join the graph");
            }
        }
    }

    fn store(&self) -> &dyn Store {
        &*self.store
    }
}

/// A request under way that will write through a tree's group commit (see
/// [`ResponseTree::expect_writer`]); dropping it says it will not write again.
#[derive(Debug)]
pub(crate) struct ExpectedWriter(Option<Arc<ResponseTree>>);

impl Drop for ExpectedWriter {
    fn drop(&mut self) {
        if let Some(tree) = &self.0 {
            tree.writes.writer_finished();
        }
    }
}
