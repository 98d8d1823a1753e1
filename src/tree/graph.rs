//! [`Graph`]: the pure in-memory topology of a response tree.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};

use super::id_index::IdIndex;

use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableGraph};
use petgraph::visit::EdgeRef;

use crate::error::{Error, Result, TreeViolation};
use crate::ids::NodeId;
use crate::node::Timestamp;
use crate::store::Topology;

/// The kind of an edge in a [`Graph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// `parent → child`: the child continues the parent (`previous_response_id`).
    /// A node has at most one incoming `Continues` edge.
    Continues,
    /// `source → node`: the source's content was given to the node as extra input
    /// (a merge of branches). These edges make the tree a DAG.
    Context,
}

/// What [`Graph::insert_all`] does with an extra-context id that names no node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MissingContext {
    /// Drop the context edge and keep the node. Used when loading a store: a
    /// context node may have been removed since (removing a subtree does not
    /// rewrite the nodes that used it as context).
    Drop,
    /// Refuse the node with [`TreeViolation::DanglingParent`]. Used for imports.
    Refuse,
}

/// Where two nodes' paths part: their nearest common ancestor and the two paths
/// below it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BranchDiff {
    /// The nearest node both paths go through (a node is its own ancestor here);
    /// `None` when the nodes are in different trees of the forest.
    pub common: Option<NodeId>,
    /// The path from just below `common` down to the left node, inclusive; empty
    /// when the left node *is* the common ancestor.
    pub left: Vec<NodeId>,
    /// The path from just below `common` down to the right node, inclusive.
    pub right: Vec<NodeId>,
}

/// The topology of a forest of responses: ids, parent and context edges, and
/// creation times. No bodies and no IO.
///
/// Every walk is deterministic: children, siblings, roots and leaves are ordered by
/// creation time, then id. Descendant walks follow `Continues` edges only; use
/// [`Graph::context_of`] for the extra-context edges.
///
/// ```
/// use resptree::tree::Graph;
/// use resptree::store::Topology;
/// use resptree::{NodeId, Timestamp};
/// let id = |s: &str| NodeId::new(s).unwrap();
/// let node = |n: &str, p: Option<&str>, t| Topology {
///     id: id(n), parent: p.map(id), extra_context: Vec::new(), created_at: Timestamp(t),
/// };
/// let mut g = Graph::new();
/// g.insert(&node("a", None, 1))?;
/// g.insert(&node("b", Some("a"), 2))?;
/// g.insert(&node("c", Some("a"), 3))?;
/// assert_eq!(g.children(&id("a"))?, vec![id("b"), id("c")]);
/// assert_eq!(g.path(&id("c"))?, vec![id("a"), id("c")]);
/// # Ok::<(), resptree::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Graph {
    graph: StableGraph<Vertex, EdgeKind>,
    /// id → vertex; holds vertex numbers only, the ids are in the vertices.
    index: IdIndex,
}

/// A node's weight: only what ordering needs (and the one copy of its id
/// handle the graph keeps).
#[derive(Debug, Clone)]
pub(super) struct Vertex {
    pub(super) id: NodeId,
    pub(super) created_at: Timestamp,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a graph from records in any order (as a store returns them).
    /// Returns the graph and the records it refused, as with
    /// [`Graph::insert_all`]: duplicates, nodes whose parent is missing or on a
    /// cycle, and (with [`MissingContext::Refuse`]) nodes whose context is.
    ///
    /// With [`MissingContext::Drop`] this takes the bulk path used to reopen a
    /// store: two hash lookups per node and no per-node bookkeeping, because a
    /// million-node reopen has a budget of a few seconds.
    pub fn build(records: &[Topology], missing_context: MissingContext) -> (Self, Vec<Error>) {
        match missing_context {
            MissingContext::Drop => Self::bulk(records, &[]),
            MissingContext::Refuse => {
                let mut graph = Self::new();
                let problems = graph.insert_all(records, missing_context);
                (graph, problems)
            }
        }
    }

    /// [`Graph::build`] with [`MissingContext::Drop`], given where the store
    /// knows them the parents' positions in `records` ([`Loaded`]'s
    /// `parent_positions`): a parent found there is linked without a lookup by
    /// id. A position is only trusted if the record there has the parent's very
    /// id allocation, so a wrong one costs a lookup, never a wrong edge.
    ///
    /// [`Loaded`]: crate::store::Loaded
    pub(crate) fn build_positioned(records: &[Topology], positions: &[u32]) -> (Self, Vec<Error>) {
        Self::bulk(records, positions)
    }

    /// The bulk build: every vertex, then every parent edge, then a walk from
    /// the roots; whatever the walk does not reach hangs from a missing parent or
    /// a cycle and is removed again. Context edges are added last, where both
    /// ends survived and no cycle results.
    fn bulk(records: &[Topology], positions: &[u32]) -> (Self, Vec<Error>) {
        if records.len() >= PARALLEL_MIN {
            if let Some(built) = Self::bulk_parallel(records, positions) {
                return built;
            }
        }
        Self::bulk_sequential(records, positions)
    }

    /// The bulk build with the id index built on a second thread, from the
    /// records, while this one adds the vertices and the parent edges known
    /// by position. It assumes every id is distinct (vertex k is record k);
    /// `None` if they are not, and the caller builds sequentially instead.
    fn bulk_parallel(records: &[Topology], positions: &[u32]) -> Option<(Self, Vec<Error>)> {
        let n = records.len();
        std::thread::scope(|scope| {
            let index = std::thread::Builder::new()
                .name("resptree-id-index".into())
                .spawn_scoped(scope, || IdIndex::of_records(records))
                // No thread to be had: build it here, after the vertices.
                .ok();
            let mut g = Self {
                graph: StableGraph::with_capacity(n, n),
                index: IdIndex::default(),
            };
            for r in records {
                g.graph.add_node(Vertex {
                    id: r.id.clone(),
                    created_at: r.created_at,
                });
            }
            // Vertex k is record k: a parent's vertex is its position.
            let vertex_at = |at: usize| Some(NodeIndex::new(at));
            let mut linked = Linked::new(n);
            let unresolved = linked.by_position(&mut g, records, positions, vertex_at, |k| k);
            let index = match index {
                Some(handle) => handle.join().ok()??,
                None => IdIndex::of_records(records)?,
            };
            g.index = index;
            linked.by_id(&mut g, records, &unresolved, |k| k);
            Some(g.finish(records, |k| k, linked, Vec::new()))
        })
    }

    /// The bulk build on one thread, dropping duplicate ids as it goes.
    fn bulk_sequential(records: &[Topology], positions: &[u32]) -> (Self, Vec<Error>) {
        let n = records.len();
        let mut problems = Vec::new();
        let mut g = Self {
            graph: StableGraph::with_capacity(n, n),
            index: IdIndex::with_capacity(n),
        };
        // Phase 1: vertices. In a fresh graph, vertex k is the k-th added.
        let mut record_of: Vec<usize> = Vec::with_capacity(n);
        // The vertex of each record, where parent positions will be looked up.
        let mut vertex_of: Vec<Option<NodeIndex>> = Vec::new();
        if !positions.is_empty() {
            vertex_of.reserve_exact(n);
        }
        for (i, r) in records.iter().enumerate() {
            // Added first and taken back if the id is a duplicate: one hash
            // and probe per node instead of a lookup and then an insert. A
            // vertex taken back leaves a free slot that the next one reuses,
            // so vertex k stays the k-th kept.
            let vertex = g.graph.add_node(Vertex {
                id: r.id.clone(),
                created_at: r.created_at,
            });
            let vertex = match g.index.insert(&g.graph, &r.id, vertex) {
                Ok(()) => {
                    record_of.push(i);
                    Some(vertex)
                }
                Err(_) => {
                    g.graph.remove_node(vertex);
                    problems.push(violation(TreeViolation::DuplicateNode(r.id.clone())));
                    None
                }
            };
            if !positions.is_empty() {
                vertex_of.push(vertex);
            }
        }
        let vertex_at = |at: usize| vertex_of.get(at).copied().flatten();
        let record = |k: usize| record_of[k];
        let mut linked = Linked::new(record_of.len());
        let unresolved = linked.by_position(&mut g, records, positions, vertex_at, record);
        linked.by_id(&mut g, records, &unresolved, record);
        g.finish(records, record, linked, problems)
    }

    /// Phases 3 and 4 of the bulk build, once every parent edge is in:
    /// removes what no root reaches, then adds the context edges.
    /// `record(k)` is the record of vertex `k`.
    fn finish(
        mut self,
        records: &[Topology],
        record: impl Fn(usize) -> usize,
        linked: Linked,
        mut problems: Vec<Error>,
    ) -> (Self, Vec<Error>) {
        let g = &mut self;
        let Linked { mut state, roots } = linked;
        // Phase 3: everything reachable from a root is sound.
        let mut stack = roots;
        while let Some(ix) = stack.pop() {
            state[ix.index()] = REACHED;
            stack.extend(g.graph.neighbors_directed(ix, Direction::Outgoing));
        }
        // The rest: follow parents up to a dangling or self-looped node, or
        // back onto the chain itself (a cycle); everything on the way shares
        // that fate.
        let mut chain = Vec::new();
        for k in 0..state.len() {
            let mut cur = k;
            let fate = loop {
                match state[cur] {
                    UNKNOWN => {
                        state[cur] = VISITING;
                        chain.push(cur);
                        match g.parent_idx(NodeIndex::new(cur)) {
                            Some(p) => cur = p.index(),
                            // Unreached without a parent edge: cannot happen
                            // for a root, which phase 3 reached.
                            None => break DANGLING,
                        }
                    }
                    VISITING => break CYCLIC,
                    REACHED if chain.is_empty() => break REACHED,
                    other => break other,
                }
            };
            for c in chain.drain(..) {
                state[c] = fate;
            }
        }
        for k in 0..state.len() {
            let r = &records[record(k)];
            let missing = r.parent.clone().unwrap_or_else(|| r.id.clone());
            let v = match state[k] {
                DANGLING => TreeViolation::DanglingParent {
                    node: r.id.clone(),
                    missing,
                },
                CYCLIC => TreeViolation::Cycle {
                    from: missing,
                    to: r.id.clone(),
                },
                _ => continue,
            };
            problems.push(violation(v));
            // The index compares ids through the vertex: remove it first.
            g.index.remove(&g.graph, &r.id);
            g.graph.remove_node(NodeIndex::new(k));
        }
        // Phase 4: context edges, in id order: when context links form a cycle,
        // which one is dropped must not depend on the order the store returned
        // the records in.
        let mut with_context: Vec<usize> = (0..state.len())
            .filter(|&k| state[k] == REACHED)
            .map(record)
            .filter(|&i| !records[i].extra_context.is_empty())
            .collect();
        with_context.sort_unstable_by(|&a, &b| records[a].id.cmp(&records[b].id));
        for i in with_context {
            for source in &records[i].extra_context {
                if g.contains(source) {
                    if let Err(e) = g.add_context_edge(source, &records[i].id) {
                        problems.push(e);
                    }
                }
            }
        }
        (self, problems)
    }

    /// Inserts records given in any order, parents before children.
    ///
    /// A record that cannot be inserted — a duplicate, a missing parent, a cycle
    /// of parent or context links — is returned as an error and the rest are
    /// inserted; records that depend on a refused one are refused too, since they
    /// would dangle. Nodes already in the graph satisfy dependencies.
    pub fn insert_all(
        &mut self,
        records: &[Topology],
        missing_context: MissingContext,
    ) -> Vec<Error> {
        let mut problems = Vec::new();
        let mut position: HashMap<&NodeId, usize> = HashMap::with_capacity(records.len());
        let mut refused = vec![false; records.len()];
        for (i, record) in records.iter().enumerate() {
            // The first record with an id wins; later ones are duplicates.
            let first = !self.contains(&record.id)
                && match position.entry(&record.id) {
                    Entry::Occupied(_) => false,
                    Entry::Vacant(slot) => {
                        slot.insert(i);
                        true
                    }
                };
            if !first {
                refused[i] = true;
                problems.push(violation(TreeViolation::DuplicateNode(record.id.clone())));
            }
        }
        // With `Refuse`, context sources are ordering dependencies like parents.
        // With `Drop`, nodes are inserted along parent links only and context
        // edges are added afterwards, where their source made it in: a context
        // source that is missing or was refused costs the edge, not the node.
        let refuse = missing_context == MissingContext::Refuse;
        // Kahn's algorithm over "must be inserted after" links. Dependents are
        // kept as (dependency, dependent) pairs sorted by dependency: one
        // allocation instead of a Vec per record, which matters at a million nodes.
        let mut waiting = vec![0_u32; records.len()];
        let mut links: Vec<(usize, usize)> = Vec::new();
        let mut ready = VecDeque::new();
        for (i, record) in records.iter().enumerate() {
            if refused[i] {
                continue;
            }
            let deps = record
                .parent
                .iter()
                .chain(record.extra_context.iter().filter(|_| refuse));
            for dep in deps {
                if let Some(&j) = position.get(dep) {
                    waiting[i] += 1;
                    links.push((j, i));
                } else if !self.contains(dep) {
                    refused[i] = true;
                    problems.push(violation(TreeViolation::DanglingParent {
                        node: record.id.clone(),
                        missing: dep.clone(),
                    }));
                    break;
                }
            }
            if waiting[i] == 0 && !refused[i] {
                ready.push_back(i);
            }
        }
        links.sort_unstable();
        let mut inserted = vec![false; records.len()];
        while let Some(i) = ready.pop_front() {
            let record = &records[i];
            let result = if refuse || record.extra_context.is_empty() {
                self.insert(record)
            } else {
                let mut trimmed = record.clone();
                trimmed.extra_context.clear();
                self.insert(&trimmed)
            };
            if let Err(e) = result {
                problems.push(e);
                continue;
            }
            inserted[i] = true;
            let start = links.partition_point(|&(j, _)| j < i);
            for &(_, d) in links[start..].iter().take_while(|&&(j, _)| j == i) {
                waiting[d] -= 1;
                if waiting[d] == 0 && !refused[d] {
                    ready.push_back(d);
                }
            }
        }
        if !refuse {
            for (_, record) in records.iter().enumerate().filter(|(i, _)| inserted[*i]) {
                for source in &record.extra_context {
                    if !self.contains(source) {
                        continue;
                    }
                    if let Err(e) = self.add_context_edge(source, &record.id) {
                        problems.push(e);
                    }
                }
            }
        }
        // Whatever never became ready depends on a refused record or sits on a cycle.
        for (i, record) in records.iter().enumerate() {
            if inserted[i] || refused[i] {
                continue;
            }
            let missing = record
                .parent
                .iter()
                .chain(&record.extra_context)
                .find(|d| !self.contains(d))
                .cloned();
            let v = match missing {
                Some(m) if depends_on(records, &position, &m, &record.id) => TreeViolation::Cycle {
                    from: m,
                    to: record.id.clone(),
                },
                Some(m) => TreeViolation::DanglingParent {
                    node: record.id.clone(),
                    missing: m,
                },
                None => TreeViolation::DuplicateNode(record.id.clone()),
            };
            problems.push(violation(v));
        }
        problems
    }

    /// Inserts a node with its `Continues` edge from its parent and its `Context`
    /// edges from its extra-context nodes.
    ///
    /// A new node has no descendants, so inserting it cannot close a cycle unless
    /// it names itself.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTree`] with [`TreeViolation::DuplicateNode`] if the id is
    /// present, [`TreeViolation::Cycle`] if the node names itself, and
    /// [`TreeViolation::DanglingParent`] if its parent or a context node is missing.
    /// The graph is unchanged on error.
    pub fn insert(&mut self, node: &Topology) -> Result<()> {
        self.check_insert(node)?;
        let index = self.graph.add_node(Vertex {
            id: node.id.clone(),
            created_at: node.created_at,
        });
        // `check_insert` found the id new and every parent and source present.
        let _ = self.index.insert(&self.graph, &node.id, index);
        if let Some(p) = node.parent.as_ref().and_then(|p| self.find(p)) {
            self.graph.add_edge(p, index, EdgeKind::Continues);
        }
        let mut seen = HashSet::new();
        for source in &node.extra_context {
            if seen.insert(source) {
                if let Some(s) = self.find(source) {
                    self.graph.add_edge(s, index, EdgeKind::Context);
                }
            }
        }
        Ok(())
    }

    /// Adds a `Context` edge `source → node` between two present nodes, unless it
    /// exists already.
    fn add_context_edge(&mut self, source: &NodeId, node: &NodeId) -> Result<()> {
        let (s, n) = (self.idx(source)?, self.idx(node)?);
        if self
            .graph
            .edges_connecting(s, n)
            .any(|e| *e.weight() == EdgeKind::Context)
        {
            return Ok(());
        }
        if self.reaches(n, s) {
            return Err(violation(TreeViolation::Cycle {
                from: source.clone(),
                to: node.clone(),
            }));
        }
        self.graph.add_edge(s, n, EdgeKind::Context);
        Ok(())
    }

    /// Whether `to` can be reached from `from` along edges of either kind.
    fn reaches(&self, from: NodeIndex, to: NodeIndex) -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![from];
        while let Some(i) = stack.pop() {
            if i == to {
                return true;
            }
            if seen.insert(i) {
                stack.extend(self.graph.neighbors_directed(i, Direction::Outgoing));
            }
        }
        false
    }

    /// Checks that [`Graph::insert`] would accept `node`, without changing anything.
    ///
    /// # Errors
    ///
    /// As [`Graph::insert`].
    pub fn check_insert(&self, node: &Topology) -> Result<()> {
        self.check_insert_with(node, |_| false)
    }

    /// Like [`Graph::check_insert`], counting the ids for which `pending` is
    /// true as present too (nodes about to be inserted with this one).
    pub(crate) fn check_insert_with(
        &self,
        node: &Topology,
        pending: impl Fn(&NodeId) -> bool,
    ) -> Result<()> {
        if self.contains(&node.id) || pending(&node.id) {
            return Err(violation(TreeViolation::DuplicateNode(node.id.clone())));
        }
        for target in node.parent.iter().chain(&node.extra_context) {
            if *target == node.id {
                return Err(violation(TreeViolation::Cycle {
                    from: node.id.clone(),
                    to: node.id.clone(),
                }));
            }
            if !self.contains(target) && !pending(target) {
                return Err(violation(TreeViolation::DanglingParent {
                    node: node.id.clone(),
                    missing: target.clone(),
                }));
            }
        }
        Ok(())
    }

    /// Removes `id` and every node below it (through `Continues` edges), returning
    /// the removed ids in pre-order (depth first, `id` first). Context edges
    /// from removed nodes to surviving nodes are dropped with them.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the graph.
    pub fn remove_subtree(&mut self, id: &NodeId) -> Result<Vec<NodeId>> {
        let removed: Vec<NodeId> = self.descendants_dfs(id)?.collect();
        for r in &removed {
            if let Some(index) = self.index.remove(&self.graph, r) {
                self.graph.remove_node(index);
            }
        }
        Ok(removed)
    }

    /// Whether `id` is in the graph.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.find(id).is_some()
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.index.len() == 0
    }

    /// Every node id, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = &NodeId> + '_ {
        self.graph.node_weights().map(|v| &v.id)
    }

    /// When `id` was created.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the graph.
    pub fn created_at(&self, id: &NodeId) -> Result<Timestamp> {
        let i = self.idx(id)?;
        Ok(self.graph[i].created_at)
    }

    /// The node `id` continues, or `None` for a root.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the graph.
    pub fn parent(&self, id: &NodeId) -> Result<Option<NodeId>> {
        let i = self.idx(id)?;
        Ok(self.parent_idx(i).map(|p| self.graph[p].id.clone()))
    }

    /// The nodes that continue `id`, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the graph.
    pub fn children(&self, id: &NodeId) -> Result<Vec<NodeId>> {
        let i = self.idx(id)?;
        Ok(self.ids_of(self.child_idx(i)))
    }

    /// The other children of `id`'s parent (for a root: the other roots), oldest
    /// first; `id` itself is not included.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the graph.
    pub fn siblings(&self, id: &NodeId) -> Result<Vec<NodeId>> {
        let i = self.idx(id)?;
        let mut all = match self.parent_idx(i) {
            Some(p) => self.ids_of(self.child_idx(p)),
            None => self.roots(),
        };
        all.retain(|s| s != id);
        Ok(all)
    }

    /// The ancestors of `id`, nearest first (parent, grandparent, …, root);
    /// `id` itself is not included.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the graph.
    pub fn ancestors(&self, id: &NodeId) -> Result<Ancestors<'_>> {
        let i = self.idx(id)?;
        Ok(Ancestors {
            graph: self,
            next: self.parent_idx(i),
        })
    }

    /// The path from the root down to `id`, both included.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the graph.
    pub fn path(&self, id: &NodeId) -> Result<Vec<NodeId>> {
        let mut path: Vec<NodeId> = self.ancestors(id)?.collect();
        path.reverse();
        path.push(id.clone());
        Ok(path)
    }

    /// The number of `Continues` edges between `id` and its root (a root has depth 0).
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the graph.
    pub fn depth(&self, id: &NodeId) -> Result<usize> {
        Ok(self.ancestors(id)?.count())
    }

    /// The nodes with no parent, oldest first.
    pub fn roots(&self) -> Vec<NodeId> {
        let roots = self
            .graph
            .node_indices()
            .filter(|&i| self.parent_idx(i).is_none());
        self.ids_of(roots.collect())
    }

    /// The nodes with no children in the whole forest, oldest first.
    pub fn leaves(&self) -> Vec<NodeId> {
        let leaves = self
            .graph
            .node_indices()
            .filter(|&i| self.child_idx(i).is_empty());
        self.ids_of(leaves.collect())
    }

    /// The leaves at or below `id`, in depth-first order (a leaf `id` is its own
    /// only leaf).
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the graph.
    pub fn leaves_under(&self, id: &NodeId) -> Result<Vec<NodeId>> {
        Ok(self
            .descendants_dfs(id)?
            .filter(|d| self.find(d).is_some_and(|i| self.child_idx(i).is_empty()))
            .collect())
    }

    /// `id` and every node below it, depth first, pre-order: `id` first, then each
    /// child's subtree in child order.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the graph.
    pub fn descendants_dfs(&self, id: &NodeId) -> Result<Dfs<'_>> {
        let i = self.idx(id)?;
        Ok(Dfs {
            graph: self,
            stack: vec![i],
        })
    }

    /// The subtree under `start` (or the whole forest: every root's, oldest
    /// root first), depth first, pre-order, children oldest first, each node
    /// with its depth below its start. What the renderers draw.
    ///
    /// One pass over vertex indices: no id lookup per node, unlike walking
    /// with [`Graph::children`] (which cost a hash lookup and two vectors per
    /// node of a 10^5-node render).
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `start` is not in the graph.
    pub(crate) fn preorder(&self, start: Option<&NodeId>) -> Result<Vec<(NodeId, usize)>> {
        let mut stack: Vec<(NodeIndex, usize)> = match start {
            Some(id) => vec![(self.idx(id)?, 0)],
            None => {
                let mut roots: Vec<NodeIndex> = self
                    .graph
                    .node_indices()
                    .filter(|&i| self.parent_idx(i).is_none())
                    .collect();
                self.sort(&mut roots);
                roots.into_iter().rev().map(|i| (i, 0)).collect()
            }
        };
        let mut out = Vec::with_capacity(if start.is_some() { 1 } else { self.len() });
        let mut children = Vec::new();
        while let Some((i, depth)) = stack.pop() {
            out.push((self.graph[i].id.clone(), depth));
            children.clear();
            children.extend(
                self.graph
                    .edges_directed(i, Direction::Outgoing)
                    .filter(|e| *e.weight() == EdgeKind::Continues)
                    .map(|e| e.target()),
            );
            if children.len() > 1 {
                self.sort(&mut children);
            }
            // Pushed in reverse, so the oldest child is drawn first.
            stack.extend(children.iter().rev().map(|&c| (c, depth + 1)));
        }
        Ok(out)
    }

    /// The ids of [`Graph::preorder`] over the whole forest, without depths:
    /// an order in which every parent comes before its children.
    pub(crate) fn preorder_ids(&self) -> Result<Vec<NodeId>> {
        Ok(self.preorder(None)?.into_iter().map(|(id, _)| id).collect())
    }

    /// `id` and every node below it, breadth first: `id` first, then its children,
    /// then its grandchildren, each level in child order.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the graph.
    pub fn descendants_bfs(&self, id: &NodeId) -> Result<Bfs<'_>> {
        let i = self.idx(id)?;
        Ok(Bfs {
            graph: self,
            queue: VecDeque::from([i]),
        })
    }

    /// The nearest node that is `a` or an ancestor of `a` and also `b` or an
    /// ancestor of `b`; `None` if they are in different trees.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if either node is not in the graph.
    pub fn common_ancestor(&self, a: &NodeId, b: &NodeId) -> Result<Option<NodeId>> {
        let on_a: HashSet<NodeId> = self.path(a)?.into_iter().collect();
        let mut b_up = std::iter::once(b.clone()).chain(self.ancestors(b)?);
        Ok(b_up.find(|n| on_a.contains(n)))
    }

    /// The common ancestor of `left` and `right` and the two paths below it.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if either node is not in the graph.
    pub fn diff(&self, left: &NodeId, right: &NodeId) -> Result<BranchDiff> {
        let common = self.common_ancestor(left, right)?;
        let below = |id: &NodeId| -> Result<Vec<NodeId>> {
            let path = self.path(id)?;
            let start = match &common {
                Some(c) => path.iter().position(|n| n == c).map_or(0, |p| p + 1),
                None => 0,
            };
            Ok(path[start..].to_vec())
        };
        Ok(BranchDiff {
            left: below(left)?,
            right: below(right)?,
            common,
        })
    }

    /// The nodes given to `id` as extra context, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the graph.
    pub fn context_of(&self, id: &NodeId) -> Result<Vec<NodeId>> {
        let i = self.idx(id)?;
        let sources = self
            .graph
            .edges_directed(i, Direction::Incoming)
            .filter(|e| *e.weight() == EdgeKind::Context)
            .map(|e| e.source())
            .collect();
        Ok(self.ids_of(sources))
    }

    /// Every edge as `(from, to, kind)`, ordered by target (creation time, id),
    /// then kind, then source.
    pub fn edges(&self) -> Vec<(NodeId, NodeId, EdgeKind)> {
        let mut out: Vec<_> = self
            .graph
            .edge_indices()
            .filter_map(|e| {
                let (s, t) = self.graph.edge_endpoints(e)?;
                Some((self.key(t), self.graph[e], self.key(s), s, t))
            })
            .collect();
        out.sort_by(|a, b| (&a.0, a.1, &a.2).cmp(&(&b.0, b.1, &b.2)));
        out.into_iter()
            .map(|(_, kind, _, s, t)| (self.graph[s].id.clone(), self.graph[t].id.clone(), kind))
            .collect()
    }

    fn idx(&self, id: &NodeId) -> Result<NodeIndex> {
        self.find(id).ok_or_else(|| Error::NodeNotFound(id.clone()))
    }

    fn find(&self, id: &NodeId) -> Option<NodeIndex> {
        self.index.get(&self.graph, id)
    }

    fn key(&self, i: NodeIndex) -> (Timestamp, NodeId) {
        (self.graph[i].created_at, self.graph[i].id.clone())
    }

    fn parent_idx(&self, i: NodeIndex) -> Option<NodeIndex> {
        self.graph
            .edges_directed(i, Direction::Incoming)
            .find(|e| *e.weight() == EdgeKind::Continues)
            .map(|e| e.source())
    }

    /// Children of `i`, sorted by creation time then id.
    fn child_idx(&self, i: NodeIndex) -> Vec<NodeIndex> {
        let mut children: Vec<NodeIndex> = self
            .graph
            .edges_directed(i, Direction::Outgoing)
            .filter(|e| *e.weight() == EdgeKind::Continues)
            .map(|e| e.target())
            .collect();
        self.sort(&mut children);
        children
    }

    fn sort(&self, v: &mut [NodeIndex]) {
        v.sort_by(|&a, &b| {
            let (va, vb) = (&self.graph[a], &self.graph[b]);
            (va.created_at, &va.id).cmp(&(vb.created_at, &vb.id))
        });
    }

    fn ids_of(&self, mut v: Vec<NodeIndex>) -> Vec<NodeId> {
        self.sort(&mut v);
        v.into_iter().map(|i| self.graph[i].id.clone()).collect()
    }
}

/// From this many records on, [`Graph::build_positioned`] builds the id index on
/// a second thread; below it, a thread costs more than it saves.
const PARALLEL_MIN: usize = 16 * 1024;

// A vertex's state in the bulk build.
const UNKNOWN: u8 = 0;
const VISITING: u8 = 1;
const REACHED: u8 = 2;
const DANGLING: u8 = 3;
const CYCLIC: u8 = 4;

/// Phase 2 of the bulk build: the parent edge of every vertex, why a vertex
/// got none, and the roots.
struct Linked {
    state: Vec<u8>,
    roots: Vec<NodeIndex>,
}

impl Linked {
    fn new(vertices: usize) -> Self {
        Self {
            state: vec![UNKNOWN; vertices],
            roots: Vec::new(),
        }
    }

    /// Links every vertex whose parent is found at its known position (the
    /// record there has the parent's very id allocation: a wrong position
    /// costs a lookup, never a wrong edge). Returns the vertices whose
    /// parents must be looked up by id. `vertex_at(i)` is the vertex of
    /// `records[i]`, `record(k)` the record of vertex `k`.
    fn by_position(
        &mut self,
        g: &mut Graph,
        records: &[Topology],
        positions: &[u32],
        vertex_at: impl Fn(usize) -> Option<NodeIndex>,
        record: impl Fn(usize) -> usize,
    ) -> Vec<usize> {
        let mut unresolved = Vec::new();
        for k in 0..self.state.len() {
            let i = record(k);
            let ix = NodeIndex::new(k);
            let Some(parent) = &records[i].parent else {
                self.roots.push(ix);
                continue;
            };
            let found = positions.get(i).and_then(|&at| {
                let at = at as usize;
                let vertex = vertex_at(at)?;
                records.get(at)?.id.ptr_eq(parent).then_some(vertex)
            });
            match found {
                Some(pix) => self.link(g, pix, ix),
                None => unresolved.push(k),
            }
        }
        unresolved
    }

    /// Links the `unresolved` vertices by looking their parents up by id.
    fn by_id(
        &mut self,
        g: &mut Graph,
        records: &[Topology],
        unresolved: &[usize],
        record: impl Fn(usize) -> usize,
    ) {
        for &k in unresolved {
            let parent = records[record(k)].parent.as_ref();
            match parent.and_then(|p| g.index.get(&g.graph, p)) {
                Some(pix) => self.link(g, pix, NodeIndex::new(k)),
                None => self.state[k] = DANGLING,
            }
        }
    }

    fn link(&mut self, g: &mut Graph, parent: NodeIndex, child: NodeIndex) {
        if parent == child {
            self.state[child.index()] = CYCLIC;
        } else {
            g.graph.add_edge(parent, child, EdgeKind::Continues);
        }
    }
}

/// Two graphs are equal when they hold the same nodes (id and creation time) and
/// the same edges, whatever order they were built in.
impl PartialEq for Graph {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.index.vertices().all(|i| {
                let id = &self.graph[i].id;
                other.find(id).is_some_and(|j| {
                    self.graph[i].created_at == other.graph[j].created_at
                        && self.parent(id).ok() == other.parent(id).ok()
                        && self.context_of(id).ok() == other.context_of(id).ok()
                })
            })
    }
}

impl Eq for Graph {}

/// Iterator over a node's ancestors, nearest first; see [`Graph::ancestors`].
#[derive(Debug, Clone)]
pub struct Ancestors<'g> {
    graph: &'g Graph,
    next: Option<NodeIndex>,
}

impl Iterator for Ancestors<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        let i = self.next?;
        self.next = self.graph.parent_idx(i);
        Some(self.graph.graph[i].id.clone())
    }
}

/// Depth-first pre-order iterator; see [`Graph::descendants_dfs`].
#[derive(Debug, Clone)]
pub struct Dfs<'g> {
    graph: &'g Graph,
    stack: Vec<NodeIndex>,
}

impl Iterator for Dfs<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        let i = self.stack.pop()?;
        // Push in reverse so the oldest child is visited first.
        self.stack.extend(self.graph.child_idx(i).into_iter().rev());
        Some(self.graph.graph[i].id.clone())
    }
}

/// Breadth-first iterator; see [`Graph::descendants_bfs`].
#[derive(Debug, Clone)]
pub struct Bfs<'g> {
    graph: &'g Graph,
    queue: VecDeque<NodeIndex>,
}

impl Iterator for Bfs<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        let i = self.queue.pop_front()?;
        self.queue.extend(self.graph.child_idx(i));
        Some(self.graph.graph[i].id.clone())
    }
}

fn violation(v: TreeViolation) -> Error {
    Error::InvalidTree(v)
}

/// Whether, following parent/context links through `records`, `from` depends
/// (transitively) on `to` — i.e. whether the link `to → from` closes a cycle.
fn depends_on(
    records: &[Topology],
    position: &HashMap<&NodeId, usize>,
    from: &NodeId,
    to: &NodeId,
) -> bool {
    let mut seen = HashSet::new();
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        if n == to {
            return true;
        }
        if !seen.insert(n) {
            continue;
        }
        if let Some(&i) = position.get(n) {
            let r = &records[i];
            stack.extend(r.parent.iter().chain(&r.extra_context));
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn rec(name: &str, parent: Option<&str>, context: &[&str]) -> Topology {
        Topology {
            id: id(name),
            parent: parent.map(id),
            extra_context: context.iter().map(|c| id(c)).collect(),
            created_at: Timestamp(0),
        }
    }

    fn kinds(problems: &[Error]) -> Vec<String> {
        let mut out: Vec<String> = problems
            .iter()
            .map(|e| match e {
                Error::InvalidTree(TreeViolation::DuplicateNode(n)) => format!("dup {n}"),
                Error::InvalidTree(TreeViolation::DanglingParent { node, missing }) => {
                    format!("dangling {node}->{missing}")
                }
                Error::InvalidTree(TreeViolation::Cycle { to, .. }) => format!("cycle {to}"),
                other => format!("other {other}"),
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn both_build_paths_refuse_the_same_records() {
        // r ← a ← b is sound; x ← y hangs from a missing node; p ⇄ q is a cycle
        // with q ← below hanging from it; `a` appears twice.
        let records = vec![
            rec("b", Some("a"), &[]),
            rec("a", Some("r"), &[]),
            rec("r", None, &[]),
            rec("y", Some("x"), &[]),
            rec("x", Some("gone"), &[]),
            rec("p", Some("q"), &[]),
            rec("q", Some("p"), &[]),
            rec("below", Some("q"), &[]),
            rec("a", None, &[]),
            rec("self", Some("self"), &[]),
        ];
        for policy in [MissingContext::Drop, MissingContext::Refuse] {
            let (g, problems) = Graph::build(&records, policy);
            assert_eq!(g.len(), 3, "{policy:?}");
            assert_eq!(g.path(&id("b")).unwrap(), vec![id("r"), id("a"), id("b")]);
            let k = kinds(&problems);
            assert!(k.contains(&"dup a".to_owned()), "{policy:?} {k:?}");
            assert!(
                k.contains(&"dangling x->gone".to_owned()),
                "{policy:?} {k:?}"
            );
            assert!(k.contains(&"dangling y->x".to_owned()), "{policy:?} {k:?}");
            assert!(k.contains(&"cycle p".to_owned()), "{policy:?} {k:?}");
            assert!(k.contains(&"cycle q".to_owned()), "{policy:?} {k:?}");
            assert!(k.contains(&"cycle self".to_owned()), "{policy:?} {k:?}");
            assert_eq!(k.len(), 7, "{policy:?} {k:?}");
            assert!(!g.contains(&id("below")));
        }
    }

    #[test]
    fn parent_positions_are_checked_not_trusted() {
        // r ← a ← b, with parents sharing the parent records' allocations, and
        // a duplicate `a` whose position must not be used.
        let mut records = vec![
            rec("r", None, &[]),
            rec("a", None, &[]),
            rec("b", None, &[]),
            rec("a", None, &[]),
        ];
        records[1].parent = Some(records[0].id.clone());
        records[2].parent = Some(records[1].id.clone());
        records[3].parent = Some(records[2].id.clone());
        let (expected, expected_problems) = Graph::build(&records, MissingContext::Drop);
        let none = u32::MAX;
        for positions in [
            vec![none, 0, 1, 2],     // right
            vec![none, 2, 3, 0],     // wrong records: looked up by id instead
            vec![none, 7, 99, none], // out of range or missing
            vec![none, 0],           // too short
            vec![],                  // none at all
        ] {
            let (g, problems) = Graph::build_positioned(&records, &positions);
            assert_eq!(g, expected, "{positions:?}");
            assert_eq!(kinds(&problems), kinds(&expected_problems), "{positions:?}");
        }
        assert_eq!(
            expected.path(&id("b")).unwrap(),
            vec![id("r"), id("a"), id("b")]
        );
    }

    #[test]
    fn the_two_threaded_build_matches_the_sequential_one() {
        // A forest with everything the bulk build handles: parents by
        // position, parents only by id (a position pointing elsewhere),
        // dangling and cyclic records, context edges and a context cycle.
        let mut records: Vec<Topology> = (0..200)
            .map(|i| {
                let parent = (i % 50 != 0).then(|| format!("n{}", i / 2));
                let context: Vec<String> = if i % 7 == 3 {
                    vec![format!("n{}", i - 1)]
                } else {
                    Vec::new()
                };
                let context: Vec<&str> = context.iter().map(String::as_str).collect();
                rec(&format!("n{i}"), parent.as_deref(), &context)
            })
            .collect();
        records.push(rec("lost", Some("gone"), &[]));
        records.push(rec("p", Some("q"), &[]));
        records.push(rec("q", Some("p"), &[]));
        records.push(rec("x", None, &["y"]));
        records.push(rec("y", None, &["x"]));
        let mut positions = snapshot_positions(&mut records);
        positions[10] = 3; // wrong: n10's parent is n5
        let (sequential, expected) = Graph::bulk_sequential(&records, &positions);
        let (parallel, problems) = Graph::bulk_parallel(&records, &positions).unwrap();
        assert_eq!(parallel, sequential);
        assert_eq!(kinds(&problems), kinds(&expected));
        assert_eq!(kinds(&problems).len(), 4, "{problems:?}");
        assert_eq!(parallel.path(&id("n10")).unwrap().len(), 5); // n10 ← n5 ← n2 ← n1 ← n0
        // Duplicates are left to the sequential build.
        records.push(rec("n7", None, &[]));
        positions.push(u32::MAX);
        assert!(Graph::bulk_parallel(&records, &positions).is_none());
    }

    /// Parent positions as a snapshot gives them: each parent found shares
    /// its record's allocation.
    fn snapshot_positions(records: &mut [Topology]) -> Vec<u32> {
        let at: HashMap<NodeId, usize> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        let mut positions = vec![u32::MAX; records.len()];
        for i in 0..records.len() {
            let parent = records[i].parent.as_ref().and_then(|p| at.get(p).copied());
            if let Some(p) = parent {
                records[i].parent = Some(records[p].id.clone());
                positions[i] = u32::try_from(p).unwrap();
            }
        }
        positions
    }

    #[test]
    fn context_policies_differ_only_on_missing_sources() {
        let records = vec![rec("r", None, &[]), rec("c", Some("r"), &["r", "missing"])];
        let (g, problems) = Graph::build(&records, MissingContext::Drop);
        assert!(problems.is_empty());
        assert_eq!(g.context_of(&id("c")).unwrap(), vec![id("r")]);

        let (g, problems) = Graph::build(&records, MissingContext::Refuse);
        assert_eq!(kinds(&problems), vec!["dangling c->missing".to_owned()]);
        assert!(!g.contains(&id("c")));
    }

    #[test]
    fn context_cycles_are_dropped_on_load_and_refused_on_import() {
        // a uses b as context while b continues a.
        let records = vec![rec("a", None, &["b"]), rec("b", Some("a"), &[])];
        let (g, problems) = Graph::build(&records, MissingContext::Drop);
        assert_eq!(g.len(), 2);
        assert!(g.context_of(&id("a")).unwrap().is_empty());
        assert_eq!(kinds(&problems), vec!["cycle a".to_owned()]);

        let (g, problems) = Graph::build(&records, MissingContext::Refuse);
        assert!(g.is_empty());
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn a_context_cycle_loses_the_same_edge_whatever_the_record_order() {
        // x and y are each other's context: one edge must go, always the same.
        let forward = vec![rec("x", None, &["y"]), rec("y", None, &["x"])];
        let backward: Vec<Topology> = forward.iter().rev().cloned().collect();
        let (g, problems) = Graph::build(&forward, MissingContext::Drop);
        let (h, _) = Graph::build(&backward, MissingContext::Drop);
        assert_eq!(g, h);
        assert_eq!(g.context_of(&id("x")).unwrap(), vec![id("y")]);
        assert!(g.context_of(&id("y")).unwrap().is_empty());
        assert_eq!(kinds(&problems), vec!["cycle y".to_owned()]);
    }

    #[test]
    fn remove_subtree_drops_edges_into_survivors() {
        let (mut g, _) = Graph::build(
            &[
                rec("r", None, &[]),
                rec("a", Some("r"), &[]),
                rec("b", Some("r"), &["a"]),
            ],
            MissingContext::Refuse,
        );
        assert_eq!(g.remove_subtree(&id("a")).unwrap(), vec![id("a")]);
        assert!(g.context_of(&id("b")).unwrap().is_empty());
        assert_eq!(g.edges(), vec![(id("r"), id("b"), EdgeKind::Continues)]);
        assert!(matches!(
            g.remove_subtree(&id("a")),
            Err(Error::NodeNotFound(_))
        ));
    }
}
