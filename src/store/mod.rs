//! Persistence: the [`Store`] trait and its backends.
//!
//! A store keeps three things: every node's *topology* (id, parent, extra-context
//! ids, creation time — what the in-memory graph is rebuilt from), every node's
//! *body* (the full [`Node`], read on demand), and the named refs. It also keeps the
//! engine's journal of in-flight requests ([`Attempt`]s) and the nodes'
//! [annotations](crate::annotation) (removed with their node). Writes go through
//! [`Store::apply`] as one atomic [`Batch`].
//!
//! Backends:
//! - [`MemoryStore`]: `HashMap`s behind a `Mutex`; nothing survives the process.
//! - [`SledStore`] (feature `sled`): the embedded, durable default. Its on-disk
//!   layout is described in `docs/store-format.md`.
//! - `PostgresStore` (feature `postgres`): one tree shared by many processes and
//!   hosts, with compare-and-swap refs and a change feed for [`Store::changes_since`].
//!
//! [`open_location`] picks a backend from a path or URL, and [`migrate`] copies a
//! tree from one store to another.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::annotation::{AnnotationKey, AnnotationKind, Stamped};
use crate::error::{Error, Result};
use crate::ids::{NodeId, RefName, ResponseId};
use crate::node::{Node, Preview, Timestamp};

pub(crate) mod codec;
#[cfg(feature = "sled")]
mod compress;
mod location;
mod memory;
mod migrate;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sled")]
mod posting;
#[cfg(feature = "sled")]
pub(crate) mod segment;
#[cfg(feature = "sled")]
mod segment_index;
mod signal;
#[cfg(feature = "sled")]
pub(crate) mod sled;
#[cfg(feature = "sled")]
mod sled_search;
#[cfg(feature = "sled")]
pub(crate) mod snapshot;
mod trace;

#[cfg(feature = "sled")]
pub use self::sled::{SledOptions, SledStore};
pub use location::open_location;
pub use memory::MemoryStore;
pub use migrate::{MigrateReport, migrate};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore};
pub use signal::{ChangeNotifier, ChangeSignal, Wake};

/// Where a tree's nodes, refs and in-flight attempts are kept.
///
/// The trait is **synchronous** and object-safe, used as `Arc<dyn Store>`. This is
/// deliberate: sled, the default backend, does blocking IO, and the PostgreSQL
/// store implements it with a blocking client, so an async trait would only hide
/// blocking calls inside futures. Async callers (the engine) call a store through
/// `tokio::task::spawn_blocking`, or in place if [`Store::is_blocking`] says it
/// never blocks.
///
/// Every implementation must give the same semantics as [`MemoryStore`]: `apply`
/// is all-or-nothing, a corrupt record is reported by [`Store::load`] and skipped,
/// and nothing panics on bad bytes.
pub trait Store: Send + Sync + fmt::Debug {
    /// Reads every node's topology and every ref, to rebuild the in-memory graph.
    ///
    /// Records that cannot be decoded are reported in [`Loaded::problems`] (as
    /// [`Error::CorruptRecord`] naming the key) and skipped; the rest still load.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the store cannot be read at all.
    fn load(&self) -> Result<Loaded>;

    /// The full record of node `id`, or `None` if the store does not hold it.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] on IO failure, [`Error::CorruptRecord`] if the record
    /// cannot be decoded.
    fn node(&self, id: &NodeId) -> Result<Option<Node>>;

    /// Applies every operation of `batch` atomically: either all of them are
    /// stored or none is. Then flushes according to the store's [`Durability`].
    ///
    /// Removing a node or ref that is not there is not an error.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the write (or the flush) fails; nothing of the batch
    /// is then visible.
    fn apply(&self, batch: Batch) -> Result<()>;

    /// Applies `batch` atomically, as [`Store::apply`] does, but may return
    /// before it is durable: the next [`Store::sync`] makes it as durable as
    /// `apply` would have. Writes are visible to reads at once.
    ///
    /// This is what lets [`ResponseTree`](crate::ResponseTree) commit
    /// concurrent writers as one group: one write, then one flush outside its
    /// locks. The default calls `apply` (already durable).
    ///
    /// # Errors
    ///
    /// As [`Store::apply`]; nothing of the batch is then visible.
    fn apply_deferred(&self, batch: Batch) -> Result<()> {
        self.apply(batch)
    }

    /// Makes every [`Store::apply_deferred`] write so far as durable as
    /// [`Store::apply`] makes its writes under the store's [`Durability`]: a
    /// flush for [`Durability::Flush`], nothing for [`Durability::Buffered`].
    /// Concurrent callers may share one flush.
    ///
    /// The default does nothing, right for stores whose `apply_deferred` is
    /// already durable.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the flush fails.
    fn sync(&self) -> Result<()> {
        Ok(())
    }

    /// Every stored in-flight attempt, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] on IO failure, [`Error::CorruptRecord`] for a record
    /// that cannot be decoded.
    fn attempts(&self) -> Result<Vec<Attempt>>;

    /// Every ref and the node it points to, ordered by name.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] on IO failure, [`Error::CorruptRecord`] for a record
    /// that cannot be decoded.
    fn refs(&self) -> Result<Vec<(RefName, NodeId)>>;

    /// Makes every applied batch durable.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the flush fails.
    fn flush(&self) -> Result<()>;

    /// What other writers changed since `cursor` (a [`Loaded::cursor`] or a
    /// previous [`Changes::cursor`]): the nodes stored and removed after it, and
    /// every ref as it is now. This is what [`ResponseTree::refresh`] reads.
    ///
    /// Only stores shared between processes keep a change feed; the default
    /// implementation says so.
    ///
    /// [`ResponseTree::refresh`]: crate::ResponseTree::refresh
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] if the store keeps no change feed (memory, sled);
    /// [`Error::Storage`] on IO failure.
    fn changes_since(&self, cursor: u64) -> Result<Changes> {
        let _ = cursor;
        Err(Error::Unsupported(
            "this store keeps no change feed; only a shared store (PostgreSQL) can be refreshed",
        ))
    }

    /// A wake-up for every commit to the store, by any process: when it fires,
    /// [`Store::changes_since`] has something new (or may have, see
    /// [`ChangeSignal`]). `Ok(None)` (the default) means the store sends none:
    /// a reader of a shared store then polls.
    ///
    /// The PostgreSQL store opens one listening connection on the first call
    /// and shares it between every signal it hands out.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the store cannot start listening.
    fn change_signal(&self) -> Result<Option<ChangeSignal>> {
        Ok(None)
    }

    /// The annotations of node `node`, ordered by key; empty if it has none
    /// (or is not stored).
    ///
    /// Stores written before annotations existed need not implement it: the
    /// default says they are unsupported.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] (the default); [`Error::Storage`] on IO
    /// failure, [`Error::CorruptRecord`] for a record that cannot be decoded.
    fn annotations(&self, node: &NodeId) -> Result<Vec<Stamped>> {
        let _ = node;
        Err(Error::Unsupported("this store keeps no annotations"))
    }

    /// Every stored annotation (of `kind`, or of every kind), ordered by node
    /// id, then key.
    ///
    /// # Errors
    ///
    /// As [`Store::annotations`].
    fn annotated(&self, kind: Option<AnnotationKind>) -> Result<Vec<(NodeId, Stamped)>> {
        let _ = kind;
        Err(Error::Unsupported("this store keeps no annotations"))
    }

    /// Whether calls may block on IO (disk, network). The engine runs a
    /// blocking store's calls on tokio's blocking pool and a non-blocking one's
    /// in place, which saves a thread hop per call. The default, `true`, is
    /// always safe; only a store that never waits on anything (like
    /// [`MemoryStore`]) should say `false`.
    fn is_blocking(&self) -> bool {
        true
    }

    /// Whether several processes may write this store at once (PostgreSQL).
    /// The engine's recovery then leaves alone the attempts of another process
    /// whose lease has not expired ([`AttemptOwner`]); on a single-process
    /// store (sled, memory) every attempt no request of this process is
    /// working on is stale. The default, `false`, suits embedded stores.
    fn is_shared(&self) -> bool {
        false
    }

    /// The nodes whose indexed text holds every term of `query` (and, if it
    /// names one, answered by its model), each with an index score: what
    /// [`ResponseTree::search`](crate::ResponseTree::search) starts from. The
    /// tree filters, ranks and checks the candidates itself (phrases, the
    /// exact model), so a store may return more than match, never fewer, and
    /// in any order. See [`crate::search`].
    ///
    /// `Ok(None)` means the store keeps no search index; the tree then reads
    /// every node, which is correct but O(n). That is the default, so a store
    /// written outside this crate keeps working; a wrapper around another
    /// store should delegate.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] on IO failure.
    fn search(
        &self,
        query: &crate::search::IndexQuery,
    ) -> Result<Option<Vec<crate::search::Candidate>>> {
        let _ = query;
        Ok(None)
    }

    /// The same candidates as [`Store::search`], handed out best first
    /// (higher index score, then newer, then smaller id) and found lazily,
    /// so a search that wants the best 20 of 10^5 candidates does not name
    /// them all. The tree takes them in this order and stops once it has
    /// enough hits.
    ///
    /// `Ok(None)` (the default) means the store does not rank: the tree then
    /// calls [`Store::search`] and ranks the candidates itself. A wrapper
    /// around another store should delegate.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] on IO failure, here or from the iterator.
    fn search_ranked<'a>(
        &'a self,
        query: &crate::search::IndexQuery,
    ) -> Result<Option<crate::search::RankedCandidates<'a>>> {
        let _ = query;
        Ok(None)
    }

    /// Starts a staged write: nodes handed to [`Store::stage_nodes`] under the
    /// returned id are written ahead, in chunks of bounded memory, but are no
    /// part of the store — no load, scan, read or search sees them — until
    /// [`Store::publish_stage`] makes all of them part of it in one small
    /// atomic write. This is how a large import stays all or nothing without
    /// holding every node in one batch (`docs/store-format.md`, *Staged
    /// writes*).
    ///
    /// A stage that is neither published nor abandoned (the process died) is
    /// deleted by the next open of the store.
    ///
    /// `Ok(None)` means the store does not stage (the default): the caller
    /// then keeps the nodes and writes them in one [`Store::apply`].
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the stage cannot be recorded.
    fn begin_stage(&self) -> Result<Option<StageId>> {
        Ok(None)
    }

    /// Writes `nodes` into stage `stage` (see [`Store::begin_stage`]). They
    /// stay invisible until the stage is published. Nodes must be new (their
    /// ids in neither the store nor the stage), which the caller
    /// ([`ResponseTree`](crate::ResponseTree)) checks at publication.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for a store that does not stage (the default) or
    /// a stage it does not know; [`Error::Storage`] if the write fails (the
    /// stage should then be abandoned).
    fn stage_nodes(&self, stage: StageId, nodes: &[Node]) -> Result<()> {
        let _ = (stage, nodes);
        Err(Error::Unsupported("this store does not stage writes"))
    }

    /// Makes every node staged under `stage` part of the store, with `refs`
    /// set, in one atomic write that is durable as [`Store::apply`] is: after
    /// it the nodes load, read and search like any other; if it fails
    /// nothing of the stage is visible and the stage can still be abandoned.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for a store that does not stage (the default) or
    /// a stage it does not know; [`Error::Storage`] if the write fails.
    fn publish_stage(&self, stage: StageId, refs: &[(RefName, NodeId)]) -> Result<()> {
        let _ = (stage, refs);
        Err(Error::Unsupported("this store does not stage writes"))
    }

    /// Deletes what was staged under `stage` without publishing it. Not an
    /// error for a stage the store does not know.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the staged records cannot be deleted (the next
    /// open of the store deletes them).
    fn abandon_stage(&self, stage: StageId) -> Result<()> {
        let _ = stage;
        Ok(())
    }

    /// Calls `f` once for each of `ids`, in order, with the node's full record
    /// or `None` if the store does not hold it: [`Store::node`] for many
    /// nodes at once. This is how the renderers read a subtree's bodies.
    ///
    /// The default calls [`Store::node`] for each id. Stores override it to
    /// read faster in bulk: the memory store lends its records instead of
    /// cloning them, and sled decodes each segment once for the nodes it
    /// holds. A store may hold a lock while `f` runs, so `f` must not call
    /// back into the store.
    ///
    /// # Errors
    ///
    /// What [`Store::node`] returns, or the first error `f` returns (which
    /// stops the walk).
    fn for_each_node(
        &self,
        ids: &[NodeId],
        f: &mut dyn FnMut(&NodeId, Option<&Node>) -> Result<()>,
    ) -> Result<()> {
        for id in ids {
            f(id, self.node(id)?.as_ref())?;
        }
        Ok(())
    }

    /// Calls `f` once for each of `ids`, in order, with the node's
    /// [`Preview`] (what a one-line view of it shows) or `None` if the store
    /// does not hold it: [`Store::for_each_node`] for readers that draw a
    /// line per node, as the renderers do.
    ///
    /// The default takes each preview from the record
    /// [`Store::for_each_node`] lends. A store that decodes its records
    /// overrides it to decode only what a preview holds: sled reads the
    /// preview straight from the stored JSON, skipping the items' raw
    /// values. The same rules as for [`Store::for_each_node`] apply: `f` must
    /// not call back into the store.
    ///
    /// # Errors
    ///
    /// What [`Store::for_each_node`] returns (a store that decodes previews
    /// itself may not see damage in the parts of a record a preview skips),
    /// or the first error `f` returns (which stops the walk).
    fn for_each_preview(
        &self,
        ids: &[NodeId],
        f: &mut dyn FnMut(&NodeId, Option<&Preview<'_>>) -> Result<()>,
    ) -> Result<()> {
        self.for_each_node(ids, &mut |id, node| f(id, node.map(Preview::of).as_ref()))
    }
}

/// A boxed store is a store, so one chosen at run time (as [`open_location`]
/// returns it) can be handed to
/// [`ResponseTree::with_store`](crate::ResponseTree::with_store).
impl<S: Store + ?Sized> Store for Box<S> {
    fn load(&self) -> Result<Loaded> {
        (**self).load()
    }

    fn node(&self, id: &NodeId) -> Result<Option<Node>> {
        (**self).node(id)
    }

    fn apply(&self, batch: Batch) -> Result<()> {
        (**self).apply(batch)
    }

    fn apply_deferred(&self, batch: Batch) -> Result<()> {
        (**self).apply_deferred(batch)
    }

    fn sync(&self) -> Result<()> {
        (**self).sync()
    }

    fn attempts(&self) -> Result<Vec<Attempt>> {
        (**self).attempts()
    }

    fn refs(&self) -> Result<Vec<(RefName, NodeId)>> {
        (**self).refs()
    }

    fn flush(&self) -> Result<()> {
        (**self).flush()
    }

    fn changes_since(&self, cursor: u64) -> Result<Changes> {
        (**self).changes_since(cursor)
    }

    fn change_signal(&self) -> Result<Option<ChangeSignal>> {
        (**self).change_signal()
    }

    fn annotations(&self, node: &NodeId) -> Result<Vec<Stamped>> {
        (**self).annotations(node)
    }

    fn annotated(&self, kind: Option<AnnotationKind>) -> Result<Vec<(NodeId, Stamped)>> {
        (**self).annotated(kind)
    }

    fn is_blocking(&self) -> bool {
        (**self).is_blocking()
    }

    fn is_shared(&self) -> bool {
        (**self).is_shared()
    }

    fn search(
        &self,
        query: &crate::search::IndexQuery,
    ) -> Result<Option<Vec<crate::search::Candidate>>> {
        (**self).search(query)
    }

    fn search_ranked<'a>(
        &'a self,
        query: &crate::search::IndexQuery,
    ) -> Result<Option<crate::search::RankedCandidates<'a>>> {
        (**self).search_ranked(query)
    }

    fn for_each_node(
        &self,
        ids: &[NodeId],
        f: &mut dyn FnMut(&NodeId, Option<&Node>) -> Result<()>,
    ) -> Result<()> {
        (**self).for_each_node(ids, f)
    }

    fn for_each_preview(
        &self,
        ids: &[NodeId],
        f: &mut dyn FnMut(&NodeId, Option<&Preview<'_>>) -> Result<()>,
    ) -> Result<()> {
        (**self).for_each_preview(ids, f)
    }

    fn begin_stage(&self) -> Result<Option<StageId>> {
        (**self).begin_stage()
    }

    fn stage_nodes(&self, stage: StageId, nodes: &[Node]) -> Result<()> {
        (**self).stage_nodes(stage, nodes)
    }

    fn publish_stage(&self, stage: StageId, refs: &[(RefName, NodeId)]) -> Result<()> {
        (**self).publish_stage(stage, refs)
    }

    fn abandon_stage(&self, stage: StageId) -> Result<()> {
        (**self).abandon_stage(stage)
    }
}

/// A staged write in progress (see [`Store::begin_stage`]): an id the store
/// that handed it out gives meaning to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StageId(u64);

impl StageId {
    /// The stage numbered `n` (a store's own numbering).
    pub fn new(n: u64) -> Self {
        Self(n)
    }

    /// The stage's number.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// What [`Store::changes_since`] returns.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Changes {
    /// Nodes stored (added or replaced) after the cursor, in the order they were
    /// written.
    pub nodes: Vec<Topology>,
    /// Nodes removed after the cursor, in the order they were removed.
    pub removed: Vec<NodeId>,
    /// Every ref as it is now, ordered by name.
    pub refs: Vec<(RefName, NodeId)>,
    /// The cursor to pass next time.
    pub cursor: u64,
}

/// When a store makes a write durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// Every [`Store::apply`] is flushed to disk before it returns (the default).
    #[default]
    Flush,
    /// Writes are buffered and flushed in the background or by [`Store::flush`];
    /// much faster for bulk loads, but the last writes may be lost on a crash.
    Buffered,
}

/// What [`Store::load`] returns: the topology of every node, the refs, and the
/// records that had to be skipped.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Loaded {
    /// The topology of every readable node, in no particular order.
    pub nodes: Vec<Topology>,
    /// Every readable ref.
    pub refs: Vec<(RefName, NodeId)>,
    /// Records that could not be decoded, each an error naming its key.
    pub problems: Vec<Error>,
    /// The position of the store's change feed when it was read, for
    /// [`Store::changes_since`]; `None` for stores without one.
    pub cursor: Option<u64>,
    /// Where a store knows them: `parent_positions[i]` is the index in `nodes`
    /// of `nodes[i]`'s parent (`u32::MAX` if unknown), so the graph can link
    /// them without looking the parent up by id. Empty when not known.
    pub(crate) parent_positions: Vec<u32>,
}

/// The part of a node the in-memory graph needs: its id, its edges and its time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Topology {
    /// The node's id.
    pub id: NodeId,
    /// The node it continues; `None` for a root.
    pub parent: Option<NodeId>,
    /// Nodes given to this one as extra context.
    pub extra_context: Vec<NodeId>,
    /// When the node was created; orders siblings.
    pub created_at: Timestamp,
}

impl Topology {
    /// The topology of `node`.
    pub fn of(node: &Node) -> Self {
        Self {
            id: node.id.clone(),
            parent: node.parent.clone(),
            extra_context: node.extra_context.clone(),
            created_at: node.created_at,
        }
    }
}

/// One write in a [`Batch`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Op {
    /// Stores a node: its body, its topology and its parent's child-index entry.
    /// Replaces a node with the same id.
    PutNode(Box<Node>),
    /// Removes a node's body, topology and child-index entry.
    RemoveNode(NodeId),
    /// Points a ref at a node (creating or moving it).
    SetRef(RefName, NodeId),
    /// Points a ref at `new` only if it currently points at `expected`
    /// (`None`: only if the ref does not exist yet) — a compare-and-swap, so two
    /// writers cannot both move a ref from the same old value.
    ///
    /// If the ref holds anything else the whole batch fails with
    /// [`Error::Conflict`] and nothing of it is applied.
    SetRefIf {
        /// The ref.
        name: RefName,
        /// The target the writer last saw; `None` if it saw no ref.
        expected: Option<NodeId>,
        /// The new target.
        new: NodeId,
    },
    /// Deletes a ref.
    DeleteRef(RefName),
    /// Records an in-flight attempt.
    PutAttempt(Box<Attempt>),
    /// Forgets an attempt.
    RemoveAttempt(AttemptId),
    /// Writes an annotation of `node` into its slot ([`Stamped::key`]),
    /// replacing what the slot held. Removing the node removes it.
    PutAnnotation {
        /// The annotated node.
        node: NodeId,
        /// The annotation and when it was written.
        annotation: Box<Stamped>,
    },
    /// Removes the annotation in slot `key` of `node` (not an error if empty).
    RemoveAnnotation {
        /// The annotated node.
        node: NodeId,
        /// The slot.
        key: AnnotationKey,
    },
}

/// A list of [`Op`]s that a store applies atomically.
///
/// ```
/// use resptree::store::{Batch, Op};
/// use resptree::{Node, NodeId};
/// let mut batch = Batch::new();
/// batch.push(Op::PutNode(Box::new(Node::new(NodeId::local(), None))));
/// assert_eq!(batch.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an operation.
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations, by value.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }
}

impl From<Vec<Op>> for Batch {
    fn from(ops: Vec<Op>) -> Self {
        Self { ops }
    }
}

impl FromIterator<Op> for Batch {
    fn from_iter<I: IntoIterator<Item = Op>>(iter: I) -> Self {
        Self {
            ops: iter.into_iter().collect(),
        }
    }
}

/// The id of an [`Attempt`]: a UUID v7, so attempts sort by start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AttemptId(uuid::Uuid);

impl AttemptId {
    /// A fresh id.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// The UUID.
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl Default for AttemptId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<uuid::Uuid> for AttemptId {
    fn from(id: uuid::Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A request the engine has started but not yet committed as a node: its journal
/// entry, so that a crash leaves a record of what was in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Attempt {
    /// The attempt's id.
    pub id: AttemptId,
    /// The node the request continues, if any.
    pub parent: Option<NodeId>,
    /// The input items sent.
    pub input: Vec<Value>,
    /// The other request parameters, as sent.
    pub params: AttemptParams,
    /// The server's response id, once known.
    pub response_id: Option<ResponseId>,
    /// When the attempt started.
    pub started_at: Timestamp,
    /// The process working on the attempt, and until when it holds it. `None`
    /// in journals written before owners were recorded (such attempts are
    /// stale to every process).
    #[serde(default)]
    pub owner: Option<AttemptOwner>,
}

/// Who is working on an [`Attempt`]: a process on a host, with a lease.
///
/// On a store shared between processes (PostgreSQL), recovery settles another
/// process's attempt only once its lease has expired: until then that process
/// may still be waiting for the response and commit it itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AttemptOwner {
    /// The host name (`HOSTNAME`, else the kernel's, else `"unknown"`).
    pub host: String,
    /// The operating-system process id.
    pub pid: u32,
    /// Until when the owner holds the attempt; it is renewed when the response
    /// id is journaled.
    pub lease_until: Timestamp,
}

impl AttemptOwner {
    /// This process, holding an attempt until `lease_until`.
    pub fn this_process(lease_until: Timestamp) -> Self {
        Self {
            host: this_host().to_owned(),
            pid: std::process::id(),
            lease_until,
        }
    }

    /// Whether this owner is the calling process.
    pub fn is_this_process(&self) -> bool {
        self.pid == std::process::id() && self.host == this_host()
    }

    /// Whether the lease still runs at `now`.
    pub fn is_live_at(&self, now: Timestamp) -> bool {
        self.lease_until > now
    }

    /// Whether the owner is known to have exited: another process on this
    /// host whose pid is no longer running (Linux, where `/proc` tells).
    /// Its attempts need not wait for the lease: a crashed run's attempts are
    /// recoverable at once by the next process on the same host. `false` when
    /// it cannot tell (another host, no `/proc`), and for a reused pid.
    pub fn has_exited(&self) -> bool {
        let proc_fs = std::path::Path::new("/proc/self").exists();
        proc_fs
            && !self.is_this_process()
            && self.host == this_host()
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// The host name, looked up once: `HOSTNAME`, else the kernel's
/// (`/proc/sys/kernel/hostname`), else `"unknown"`. No dependency is needed
/// for a name that only has to tell hosts apart.
fn this_host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    })
}

impl Attempt {
    /// A new attempt with a fresh id, started now, with no response id yet.
    pub fn new(parent: Option<NodeId>, input: Vec<Value>, params: AttemptParams) -> Self {
        Self {
            id: AttemptId::new(),
            parent,
            input,
            params,
            response_id: None,
            started_at: Timestamp::now(),
            owner: None,
        }
    }
}

/// The parameters of an [`Attempt`]: what a recovered node must record that the
/// server's copy of the response does not say.
///
/// Stored as JSON inside the attempt record; fields added later default when an
/// older record lacks them, so journals written by older builds still load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AttemptParams {
    /// The model asked for.
    pub model: String,
    /// The instructions sent.
    pub instructions: Option<String>,
    /// Whether the server was asked to store the response.
    pub store: bool,
    /// Whether the path was replayed as explicit input (no server-side parent).
    pub replay: bool,
    /// Metadata sent with the request.
    pub metadata: BTreeMap<String, String>,
    /// Labels for the node.
    pub labels: BTreeSet<String>,
    /// Nodes given to the request as extra context.
    pub extra_context: Vec<NodeId>,
    /// How many alternatives one request asked for (native fan-out); `None` for one.
    pub n: Option<usize>,
    /// The request settings sent (tools, reasoning, text format, …).
    #[serde(skip_serializing_if = "crate::settings::RequestSettings::is_empty")]
    pub settings: crate::settings::RequestSettings,
}

/// Turns a decode failure of the record at `key` into [`Error::CorruptRecord`].
#[cfg(feature = "sled")]
fn corrupt(tree: &str, key: &[u8], reason: impl fmt::Display) -> Error {
    Error::corrupt(
        format!("{tree}/{}", String::from_utf8_lossy(key)),
        reason.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_whose_process_exited_is_known_on_this_host() {
        let lease = Timestamp(Timestamp::now().as_millis() + 3_600_000);
        let me = AttemptOwner::this_process(lease);
        assert!(!me.has_exited());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        let mut gone = me.clone();
        gone.pid = child.id();
        // Holds where /proc tells (Linux); elsewhere it cannot tell.
        assert_eq!(
            gone.has_exited(),
            std::path::Path::new("/proc/self").exists()
        );
        let mut elsewhere = gone.clone();
        elsewhere.host = "another-host".to_owned();
        assert!(!elsewhere.has_exited());
    }

    /// A journal written before attempts had owners still loads: the owner is
    /// `None`, which every process treats as stale.
    #[test]
    fn an_attempt_without_an_owner_still_decodes() {
        let old = serde_json::json!({
            "id": "01936b5e-0000-7000-8000-000000000001",
            "parent": null,
            "input": [],
            "params": {"model": "m"},
            "response_id": "resp_1",
            "started_at": 5
        });
        let attempt: Attempt = serde_json::from_value(old).unwrap();
        assert_eq!(attempt.owner, None);
        assert_eq!(
            attempt.response_id.as_ref().map(ResponseId::as_str),
            Some("resp_1")
        );
    }

    #[test]
    fn an_owner_round_trips_and_its_lease_expires() {
        let mut attempt = Attempt::new(None, Vec::new(), AttemptParams::default());
        attempt.owner = Some(AttemptOwner::this_process(Timestamp(1_000)));
        let back: Attempt =
            serde_json::from_value(serde_json::to_value(&attempt).unwrap()).unwrap();
        assert_eq!(back, attempt);
        let owner = back.owner.unwrap();
        assert!(owner.is_this_process());
        assert!(owner.is_live_at(Timestamp(999)));
        assert!(!owner.is_live_at(Timestamp(1_000)));
    }
}
