//! Group commit: concurrent writers share one store write and one flush.
//!
//! A fan-out of 256 children finishes 256 responses within a few milliseconds.
//! Committed one by one, each would be its own store transaction and fsync,
//! taken in turn under the tree's edit lock — a queue that turned a parallel
//! fan-out back into a serial one. Instead, writers queue their [`Write`]s; the
//! first to find no leader becomes it, takes every write queued at that moment,
//! validates each against the graph, writes the accepted ones as **one** batch
//! ([`Store::apply_deferred`](crate::store::Store::apply_deferred)) under the edit
//! lock, applies them to the graph, releases the lock, and only then makes the
//! batch durable with **one** [`Store::sync`](crate::store::Store::sync). Every
//! writer of the group returns after that sync, so the durability promise is
//! unchanged: a write acknowledged to its caller is on disk.
//!
//! Writers that arrive while a group is being flushed form the next group.
//!
//! A writer that is an async task (the engine's) does not block a thread while
//! it waits: it queues its write, and if nobody leads it starts a leader on
//! the blocking pool, which commits groups until the queue is empty
//! ([`Queue::lead`]); the task itself just awaits its slot. Without this a
//! fan-out of 1 024 children parked up to 512 blocking-pool threads on one
//! condition variable, and every finished group woke them all.
//!
//! **The gathering window.** Every group costs the store a fixed amount of
//! work on top of its writers' records (on sled: the commit counter, the
//! topology log entry, the segment, and one search-index list per distinct
//! term of the group, whose words siblings share), so fewer, larger groups
//! cost less CPU per node. The engine tells the queue how many of its
//! requests are under way and may still write ([`Queue::writer_started`]);
//! while fewer writes are queued than that, the async leader waits up to the
//! window set with `ResponseTree::set_group_window` (per group; none by
//! default, [`DEFAULT_GATHER_WINDOW`]) for more before it commits. A lone
//! request never waits: it is the only writer and its write is queued.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Error, Result, TreeViolation};
use crate::ids::NodeId;
use crate::node::Node;
use crate::store::{Attempt, AttemptId, Batch, Op, Store, Topology};

use super::graph::Graph;

/// One writer's share of a group: attempts to journal, nodes to record and
/// attempts to settle, all or nothing.
#[derive(Debug, Default)]
pub(super) struct Write {
    pub(super) journal: Vec<Attempt>,
    pub(super) nodes: Vec<Node>,
    pub(super) settled: Vec<AttemptId>,
}

/// How long, by default, an async group leader waits for more writes while
/// requests that will write are under way (see the module doc): not at all.
/// `benches/fanout.rs` (`durable`, docs/benchmarks.md section 2b) compares a
/// 2 ms window with none: it made groups larger, but lowered the CPU per node
/// only at N = 256 on an idle machine (not at 1 024, not under load), so it is
/// not on unless a caller sets it.
pub(crate) const DEFAULT_GATHER_WINDOW: Duration = Duration::ZERO;

/// No group waits to grow beyond this many writes: the fixed cost of a group
/// is then spread thin already.
const GATHER_ENOUGH: usize = 256;

/// The queue of writers waiting for a group.
#[derive(Debug)]
pub(super) struct Queue {
    state: Mutex<State>,
    /// Signalled whenever a group finishes.
    finished: Condvar,
    /// Signalled, while a leader gathers, when a write arrives or a writer
    /// leaves.
    arrived: Condvar,
}

impl Default for Queue {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                pending: Vec::new(),
                leading: false,
                writers: 0,
                gathering: false,
                window: DEFAULT_GATHER_WINDOW,
            }),
            finished: Condvar::new(),
            arrived: Condvar::new(),
        }
    }
}

#[derive(Debug)]
struct State {
    pending: Vec<Arc<Slot>>,
    /// Whether a leader is committing a group right now.
    leading: bool,
    /// Requests under way that may still write (see `Queue::writer_started`).
    writers: usize,
    /// Whether a leader is waiting for more writes (so arrivals signal it).
    gathering: bool,
    /// How long a leader may wait for more writes, per group.
    window: Duration,
}

/// A queued write and, once its group is done, its outcome.
#[derive(Debug)]
pub(super) struct Slot {
    write: Mutex<Option<Write>>,
    outcome: Mutex<Option<Result<()>>>,
    /// Wakes the async writer waiting for this slot: when its outcome is set,
    /// and when leadership is free while the slot is first in the queue.
    wake: tokio::sync::Notify,
}

impl Slot {
    fn new(write: Write) -> Arc<Self> {
        Arc::new(Self {
            write: Mutex::new(Some(write)),
            outcome: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
        })
    }

    fn take_outcome(&self) -> Option<Result<()>> {
        lock(&self.outcome).take()
    }

    /// Records the outcome and wakes an async waiter. (Sync waiters are woken
    /// through the queue's condition variable; see `Queue::finished_group`.)
    fn finish(&self, outcome: Result<()>) {
        *lock(&self.outcome) = Some(outcome);
        self.wake.notify_one();
    }
}

/// What the queue needs from the tree to commit a group.
pub(super) trait Committer {
    /// Locks out other edits for the validation and the write.
    fn lock_edits(&self) -> MutexGuard<'_, ()>;
    /// Reads the graph (for validation).
    fn with_graph<T>(&self, f: impl FnOnce(&Graph) -> T) -> T;
    /// Inserts validated records into the graph.
    fn insert_records(&self, records: &[Topology]);
    /// The store.
    fn store(&self) -> &dyn Store;
}

impl Queue {
    /// Commits `write` as part of a group, returning once it is durable (or
    /// refused). Blocks the calling thread.
    pub(super) fn submit(&self, tree: &impl Committer, write: Write) -> Result<()> {
        let slot = Slot::new(write);
        let mut state = self.lock();
        state.pending.push(Arc::clone(&slot));
        loop {
            if let Some(outcome) = slot.take_outcome() {
                return outcome;
            }
            if state.leading {
                state = self
                    .finished
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Lead one group (our own slot is in it), then hand leadership on:
            // a caller of a blocking method should not be kept committing
            // other writers' groups.
            state.leading = true;
            let group = std::mem::take(&mut state.pending);
            drop(state);
            {
                let _leadership = Leadership { queue: self };
                commit_group(tree, &group);
                self.finished_group();
            }
            state = self.lock();
        }
    }

    /// Queues `write` for an async writer, which then awaits [`Queue::wait`].
    pub(super) fn enqueue(&self, write: Write) -> Arc<Slot> {
        let slot = Slot::new(write);
        let mut state = self.lock();
        state.pending.push(Arc::clone(&slot));
        if state.gathering {
            self.arrived.notify_one();
        }
        slot
    }

    /// Counts one more request under way that will write through this queue
    /// (its response id, its commit), until [`Queue::writer_finished`]: while
    /// such requests have nothing queued, a leader waits for them a little.
    pub(super) fn writer_started(&self) {
        self.lock().writers += 1;
    }

    /// The request counted by [`Queue::writer_started`] will not write again.
    pub(super) fn writer_finished(&self) {
        let mut state = self.lock();
        state.writers = state.writers.saturating_sub(1);
        if state.gathering {
            self.arrived.notify_one();
        }
    }

    /// Sets how long a leader may wait for more writes per group
    /// (`Duration::ZERO`: never).
    pub(super) fn set_window(&self, window: Duration) {
        self.lock().window = window;
    }

    /// Waits for `slot`'s outcome without holding a thread. Whenever nobody
    /// leads, takes leadership and calls `start_leader`, which must run
    /// [`Queue::lead`] on a thread that may block.
    ///
    /// Cancel-safe: dropping the future before a leader took the write
    /// withdraws it (nothing is written); after that, the write completes
    /// without a caller to tell.
    pub(super) async fn wait(&self, slot: &Arc<Slot>, start_leader: impl Fn()) -> Result<()> {
        let mut waiting = Waiting {
            queue: self,
            slot,
            done: false,
        };
        loop {
            // Registered before the checks, so a wake-up between a check and
            // the await is not lost.
            let woken = slot.wake.notified();
            let lead = {
                let mut state = self.lock();
                if let Some(outcome) = slot.take_outcome() {
                    waiting.done = true;
                    return outcome;
                }
                let lead = !state.leading;
                state.leading = true;
                lead
            };
            if lead {
                start_leader();
            }
            woken.await;
        }
    }

    /// Commits groups until the queue is empty, then hands leadership back.
    /// The caller must have taken leadership (as [`Queue::wait`] does).
    pub(super) fn lead(&self, tree: &impl Committer) {
        let _leadership = Leadership { queue: self };
        loop {
            let group = std::mem::take(&mut self.gather(self.lock()).pending);
            if group.is_empty() {
                return;
            }
            commit_group(tree, &group);
            self.finished_group();
        }
    }

    /// Waits, up to the window, while requests under way have fewer writes
    /// queued than there are such requests: their writes would otherwise
    /// each make a group of their own. Returns at once if nothing is queued
    /// (there is no group to grow) or nobody else is under way.
    fn gather<'a>(&'a self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        if state.pending.is_empty() || state.window.is_zero() {
            return state;
        }
        let deadline = Instant::now() + state.window;
        while state.pending.len() < state.writers.min(GATHER_ENOUGH) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state.gathering = true;
            state = self
                .arrived
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.gathering = false;
        state
    }

    /// Wakes the blocking writers after a group's outcomes were set. Taking
    /// the lock first means a writer is either before its check of the
    /// outcome (and will see it) or already waiting (and is woken).
    fn finished_group(&self) {
        drop(self.lock());
        self.finished.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Hands leadership back, even if the leader unwinds, and wakes whoever may
/// take it: the blocking writers, and the first queued async writer.
struct Leadership<'a> {
    queue: &'a Queue,
}

impl Drop for Leadership<'_> {
    fn drop(&mut self) {
        let next = {
            let mut state = self.queue.lock();
            state.leading = false;
            state.pending.first().cloned()
        };
        self.queue.finished.notify_all();
        if let Some(next) = next {
            next.wake.notify_one();
        }
    }
}

/// An async writer's wait; if the future is dropped, withdraws the write if
/// no leader took it yet, and passes on a wake-up it may have been given.
struct Waiting<'a> {
    queue: &'a Queue,
    slot: &'a Arc<Slot>,
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let next = {
            let mut state = self.queue.lock();
            state
                .pending
                .retain(|queued| !Arc::ptr_eq(queued, self.slot));
            if state.leading {
                None
            } else {
                state.pending.first().cloned()
            }
        };
        if let Some(next) = next {
            self.queue.finished.notify_all();
            next.wake.notify_one();
        }
    }
}

/// Gives every slot of a group an outcome if its leader unwinds before it
/// could: the slots have left the queue, so nobody else ever will, and their
/// writers would wait forever.
struct Unfinished<'a> {
    group: &'a [Arc<Slot>],
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        for slot in self.group {
            if lock(&slot.outcome).is_none() {
                // Only an unwinding leader leaves an outcome unset. Its write
                // may or may not have reached the store.
                slot.finish(Err(Error::Internal(
                    "the writer committing this group panicked",
                )));
            }
        }
    }
}

/// Validates, writes, applies and syncs one group, then records each slot's
/// outcome.
fn commit_group(tree: &impl Committer, group: &[Arc<Slot>]) {
    let _unfinished = Unfinished { group };
    let writes: Vec<Write> = group
        .iter()
        .map(|slot| lock(&slot.write).take().unwrap_or_default())
        .collect();
    let mut outcomes: Vec<Option<Result<()>>> = (0..group.len()).map(|_| None).collect();
    let written = {
        let _edit = tree.lock_edits();
        let accepted = tree.with_graph(|graph| validate_group(graph, writes, &mut outcomes));
        let mut written = Vec::new();
        let mut records = Vec::new();
        for (i, result, topology) in write_group(tree, accepted) {
            match result {
                Ok(()) => {
                    records.extend(topology);
                    written.push(i);
                }
                Err(err) => outcomes[i] = Some(Err(err)),
            }
        }
        if !records.is_empty() {
            tree.insert_records(&records);
        }
        written
    };
    // The flush runs outside the edit lock, so other edits (refs, removals)
    // and readers never wait on the disk. The next group does wait: this
    // thread leads until the flush is done, and writers arriving meanwhile
    // queue up to form that group.
    let durable = if written.is_empty() {
        Ok(())
    } else {
        tree.store().sync()
    };
    if let Err(err) = &durable {
        tracing::warn!(error = %err, writers = written.len(), "group commit failed");
    } else if !written.is_empty() {
        tracing::debug!(writers = written.len(), "group committed");
    }
    share(durable, &written, &mut outcomes);
    for (slot, outcome) in group.iter().zip(outcomes) {
        slot.finish(outcome.unwrap_or(Err(Error::Internal(
            "a group commit left a writer without an outcome",
        ))));
    }
}

/// A writer accepted into a group: its index, its batch and its nodes'
/// topology.
type Accepted = (usize, Batch, Vec<Topology>);

/// Validates each write against the graph plus the nodes of the writers
/// accepted before it; records the refused ones' errors in `outcomes`.
fn validate_group(
    graph: &Graph,
    writes: Vec<Write>,
    outcomes: &mut [Option<Result<()>>],
) -> Vec<Accepted> {
    let mut added: HashSet<NodeId> = HashSet::new();
    let mut accepted = Vec::new();
    for (i, write) in writes.into_iter().enumerate() {
        let topology: Vec<Topology> = write.nodes.iter().map(Topology::of).collect();
        match validate(graph, &added, &topology) {
            Err(err) => outcomes[i] = Some(Err(err)),
            Ok(()) => {
                added.extend(topology.iter().map(|t| t.id.clone()));
                let mut batch = Batch::new();
                append(&mut batch, write);
                accepted.push((i, batch, topology));
            }
        }
    }
    accepted
}

/// Writes the accepted writers' batches as one store write. If that write
/// fails and the group has several writers, writes each alone, so that a
/// write the store refuses (a parent another process removed from a shared
/// PostgreSQL store, say) fails only its own writer, as it did before writes
/// were grouped. Writers with empty batches succeed without a write.
fn write_group(
    tree: &impl Committer,
    accepted: Vec<Accepted>,
) -> Vec<(usize, Result<()>, Vec<Topology>)> {
    let nonempty = accepted.iter().filter(|(_, b, _)| !b.is_empty()).count();
    if nonempty > 1 {
        // Copies, because the per-writer retry below needs the batches again.
        let combined: Batch = accepted
            .iter()
            .flat_map(|(_, batch, _)| batch.ops().iter().cloned())
            .collect();
        match tree.store().apply_deferred(combined) {
            Ok(()) => {
                return accepted
                    .into_iter()
                    .map(|(i, _, topology)| (i, Ok(()), topology))
                    .collect();
            }
            Err(err) => {
                tracing::info!(error = %err, "a group write failed; writing its writers one by one");
            }
        }
    }
    write_each(tree, accepted)
}

/// Writes each accepted writer's batch on its own. A writer was validated
/// counting the nodes of the writers before it as present; it is checked
/// again against those actually written, so that a node whose parent's write
/// failed is refused rather than stored dangling.
fn write_each(
    tree: &impl Committer,
    accepted: Vec<Accepted>,
) -> Vec<(usize, Result<()>, Vec<Topology>)> {
    let mut written: HashSet<NodeId> = HashSet::new();
    accepted
        .into_iter()
        .map(|(i, batch, topology)| {
            let result = tree
                .with_graph(|graph| validate(graph, &written, &topology))
                .and_then(|()| {
                    if batch.is_empty() {
                        Ok(())
                    } else {
                        tree.store().apply_deferred(batch)
                    }
                });
            if result.is_ok() {
                written.extend(topology.iter().map(|t| t.id.clone()));
            }
            (i, result, topology)
        })
        .collect()
}

/// Checks that one writer's nodes can join the graph plus the nodes `added`
/// by earlier writers of the group. As for `ResponseTree::insert_group`, a
/// node may not point to another node of the same writer.
fn validate(graph: &Graph, added: &HashSet<NodeId>, nodes: &[Topology]) -> Result<()> {
    let mut seen = HashSet::new();
    for record in nodes {
        graph.check_insert_with(record, |id| added.contains(id))?;
        if !seen.insert(&record.id) {
            return Err(Error::InvalidTree(TreeViolation::DuplicateNode(
                record.id.clone(),
            )));
        }
    }
    Ok(())
}

/// Adds a writer's operations to the group's batch, in its own order: journal,
/// settle, then nodes.
fn append(batch: &mut Batch, write: Write) {
    for attempt in write.journal {
        batch.push(Op::PutAttempt(Box::new(attempt)));
    }
    for id in write.settled {
        batch.push(Op::RemoveAttempt(id));
    }
    for node in write.nodes {
        batch.push(Op::PutNode(Box::new(node)));
    }
}

/// Gives every accepted writer the group's outcome: the error itself to one,
/// and to the others a storage error whose source is that same error.
fn share(durable: Result<()>, accepted: &[usize], outcomes: &mut [Option<Result<()>>]) {
    match durable {
        Ok(()) => {
            for &i in accepted {
                outcomes[i] = Some(Ok(()));
            }
        }
        Err(err) => {
            let Some((&last, others)) = accepted.split_last() else {
                return;
            };
            let shared = Arc::new(err);
            for &i in others {
                outcomes[i] = Some(Err(Error::storage(
                    "committing a group of writes",
                    Arc::clone(&shared),
                )));
            }
            outcomes[last] = Some(Err(Arc::try_unwrap(shared).unwrap_or_else(|shared| {
                Error::storage("committing a group of writes", shared)
            })));
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::ResponseTree;
    use crate::store::{Loaded, MemoryStore};

    /// A memory store that logs its deferred writes and, as a test asks, holds
    /// its first sync until the gate opens, panics in its second deferred write,
    /// or refuses every batch that writes one node.
    #[derive(Debug, Default)]
    struct TestStore {
        inner: MemoryStore,
        /// The batch sizes of the deferred writes.
        writes: Mutex<Vec<usize>>,
        /// Hold the first sync until the test opens `gate`.
        hold_first_sync: bool,
        /// Panic in the second deferred write (as a buggy store might).
        panic_in_second_write: bool,
        /// Refuse every batch writing this node, as a shared store refuses a
        /// child whose parent another process removed.
        refused: Option<NodeId>,
        syncs: AtomicUsize,
        gate: (Mutex<bool>, Condvar),
    }

    impl TestStore {
        /// A store whose first sync waits for the gate.
        fn gated() -> Self {
            Self {
                hold_first_sync: true,
                ..Self::default()
            }
        }
    }

    impl Store for Arc<TestStore> {
        fn load(&self) -> Result<Loaded> {
            self.inner.load()
        }
        fn node(&self, id: &NodeId) -> Result<Option<Node>> {
            self.inner.node(id)
        }
        fn apply(&self, batch: Batch) -> Result<()> {
            let refused = batch.ops().iter().any(
                |op| matches!(op, Op::PutNode(node) if Some(&node.id) == self.refused.as_ref()),
            );
            if refused {
                return Err(Error::Internal("the store refuses this node"));
            }
            self.inner.apply(batch)
        }
        fn apply_deferred(&self, batch: Batch) -> Result<()> {
            let n = {
                let mut writes = lock(&self.writes);
                writes.push(batch.len());
                writes.len()
            };
            assert!(
                !(self.panic_in_second_write && n == 2),
                "the store panicked"
            );
            self.apply(batch)
        }
        fn sync(&self) -> Result<()> {
            if self.syncs.fetch_add(1, Ordering::SeqCst) == 0 && self.hold_first_sync {
                let (open, cvar) = &self.gate;
                let mut open = lock(open);
                while !*open {
                    open = cvar.wait(open).unwrap_or_else(PoisonError::into_inner);
                }
            }
            Ok(())
        }
        fn attempts(&self) -> Result<Vec<Attempt>> {
            self.inner.attempts()
        }
        fn refs(&self) -> Result<Vec<(crate::RefName, NodeId)>> {
            self.inner.refs()
        }
        fn annotations(&self, node: &NodeId) -> Result<Vec<crate::Stamped>> {
            self.inner.annotations(node)
        }
        fn annotated(
            &self,
            kind: Option<crate::AnnotationKind>,
        ) -> Result<Vec<(NodeId, crate::Stamped)>> {
            self.inner.annotated(kind)
        }
        fn flush(&self) -> Result<()> {
            Ok(())
        }
    }

    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::yield_now();
        }
    }

    /// A tree over `store` whose first writer (committing a root) leads a
    /// group of one and is held in its flush; returns the tree, the root's id
    /// and that writer's thread.
    fn first_writer_held_in_its_flush(
        store: &Arc<TestStore>,
    ) -> (
        Arc<ResponseTree>,
        NodeId,
        std::thread::JoinHandle<Result<()>>,
    ) {
        let tree = Arc::new(ResponseTree::with_store(Arc::clone(store)).unwrap());
        let root = Node::new(NodeId::local(), None);
        let root_id = root.id.clone();
        let first = {
            let tree = Arc::clone(&tree);
            std::thread::spawn(move || tree.commit(vec![root], &[]))
        };
        wait_until("the first flush started", || {
            store.syncs.load(Ordering::SeqCst) == 1
        });
        (tree, root_id, first)
    }

    #[test]
    fn writers_queued_behind_a_flush_share_the_next_write_and_flush() {
        const LATE: usize = 63;
        let store = Arc::new(TestStore::gated());
        let (tree, root_id, first) = first_writer_held_in_its_flush(&store);
        let late: Vec<_> = (0..LATE)
            .map(|_| {
                let tree = Arc::clone(&tree);
                let child = Node::new(NodeId::local(), Some(root_id.clone()));
                std::thread::spawn(move || tree.commit(vec![child], &[]))
            })
            .collect();
        wait_until("every late writer is queued", || {
            tree.writes.lock().pending.len() == LATE
        });
        open_gate(&store);
        first.join().unwrap().unwrap();
        for writer in late {
            writer.join().unwrap().unwrap();
        }
        // One write and one flush for the first writer, one of each for the
        // 63 children queued behind it (they may point at its node).
        assert_eq!(*lock(&store.writes), vec![1, LATE]);
        assert_eq!(store.syncs.load(Ordering::SeqCst), 2);
        assert_eq!(tree.children(&root_id).unwrap().len(), LATE);
    }

    /// Opens the gate that holds the first sync.
    fn open_gate(store: &TestStore) {
        *lock(&store.gate.0) = true;
        store.gate.1.notify_all();
    }

    /// Commits a root through the async path and returns once its flush is
    /// held at the gate: the writer's task, and the root's id.
    async fn root_held_in_its_flush(
        store: &Arc<TestStore>,
        tree: &Arc<ResponseTree>,
    ) -> (tokio::task::JoinHandle<Result<()>>, NodeId) {
        let root = Node::new(NodeId::local(), None);
        let root_id = root.id.clone();
        let first = {
            let tree = Arc::clone(tree);
            tokio::spawn(async move { tree.commit_async(vec![root], &[]).await })
        };
        let syncs = Arc::clone(store);
        tokio::task::spawn_blocking(move || {
            wait_until("the first flush started", || {
                syncs.syncs.load(Ordering::SeqCst) == 1
            });
        })
        .await
        .unwrap();
        (first, root_id)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_writers_queued_behind_a_flush_share_the_next_write_and_flush() {
        const LATE: usize = 63;
        let store = Arc::new(TestStore::gated());
        let tree = Arc::new(ResponseTree::with_store(Arc::clone(&store)).unwrap());
        let (first, root_id) = root_held_in_its_flush(&store, &tree).await;
        let late: Vec<_> = (0..LATE)
            .map(|_| {
                let tree = Arc::clone(&tree);
                let child = Node::new(NodeId::local(), Some(root_id.clone()));
                tokio::spawn(async move { tree.commit_async(vec![child], &[]).await })
            })
            .collect();
        let queued = Arc::clone(&tree);
        tokio::task::spawn_blocking(move || {
            wait_until("every late writer is queued", || {
                queued.writes.lock().pending.len() == LATE
            });
        })
        .await
        .unwrap();
        open_gate(&store);
        first.await.unwrap().unwrap();
        for writer in late {
            writer.await.unwrap().unwrap();
        }
        assert_eq!(*lock(&store.writes), vec![1, LATE]);
        assert_eq!(store.syncs.load(Ordering::SeqCst), 2);
        assert_eq!(tree.children(&root_id).unwrap().len(), LATE);
    }

    /// Waits (off the async workers) until a leader is gathering writes.
    async fn until_gathering(tree: &Arc<ResponseTree>, pending: usize) {
        let tree = Arc::clone(tree);
        tokio::task::spawn_blocking(move || {
            wait_until("the leader gathers", || {
                let state = tree.writes.lock();
                state.gathering && state.pending.len() == pending
            });
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_async_leader_gathers_the_writes_of_requests_under_way() {
        let store = Arc::new(TestStore::default());
        let tree = Arc::new(ResponseTree::with_store(Arc::clone(&store)).unwrap());
        // So long that only the writers themselves can end a wait.
        tree.set_group_window(Duration::from_secs(3600));
        // A lone request does not wait: its write is the only one to come.
        let lone = tree.expect_writer();
        let root = Node::new(NodeId::local(), None);
        let root_id = root.id.clone();
        tree.commit_async(vec![root], &[]).await.unwrap();
        drop(lone);
        // Three requests under way: the first write waits for the others.
        let mut writers: Vec<_> = (0..3).map(|_| tree.expect_writer()).collect();
        let commit = |tree: &Arc<ResponseTree>| {
            let tree = Arc::clone(tree);
            let child = Node::new(NodeId::local(), Some(root_id.clone()));
            tokio::spawn(async move { tree.commit_async(vec![child], &[]).await })
        };
        let first = commit(&tree);
        until_gathering(&tree, 1).await;
        let second = commit(&tree);
        until_gathering(&tree, 2).await;
        assert_eq!(
            *lock(&store.writes),
            vec![1],
            "nothing written while gathering"
        );
        // The third request ends without writing: the two queued go together.
        drop(writers.pop());
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(*lock(&store.writes), vec![1, 2]);
        assert_eq!(store.syncs.load(Ordering::SeqCst), 2);
        assert_eq!(tree.children(&root_id).unwrap().len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_async_writer_withdraws_a_write_no_group_took() {
        let store = Arc::new(TestStore::gated());
        let tree = Arc::new(ResponseTree::with_store(Arc::clone(&store)).unwrap());
        let (first, root_id) = root_held_in_its_flush(&store, &tree).await;
        let dropped = Node::new(NodeId::local(), Some(root_id.clone()));
        let dropped_id = dropped.id.clone();
        {
            let write = tree.commit_async(vec![dropped], &[]);
            tokio::pin!(write);
            // Poll it once (it queues its write), then drop it.
            tokio::select! {
                biased;
                _ = &mut write => panic!("committed while the first flush was held"),
                () = std::future::ready(()) => {}
            }
            assert_eq!(tree.writes.lock().pending.len(), 1);
        }
        assert!(tree.writes.lock().pending.is_empty());
        // A writer queued after it is committed as usual.
        let kept = Node::new(NodeId::local(), Some(root_id.clone()));
        let kept_id = kept.id.clone();
        let late = {
            let tree = Arc::clone(&tree);
            tokio::spawn(async move { tree.commit_async(vec![kept], &[]).await })
        };
        open_gate(&store);
        first.await.unwrap().unwrap();
        late.await.unwrap().unwrap();
        assert!(!tree.contains(&dropped_id));
        assert!(store.inner.node(&dropped_id).unwrap().is_none());
        assert!(tree.contains(&kept_id));
    }

    #[test]
    fn a_panicking_leader_fails_its_group_instead_of_stranding_it() {
        let store = Arc::new(TestStore {
            panic_in_second_write: true,
            ..TestStore::gated()
        });
        let (tree, root_id, first) = first_writer_held_in_its_flush(&store);
        // Two writers queue behind the flush and form the next group, whose
        // write panics in whichever of them leads it.
        let (done, outcomes) = std::sync::mpsc::channel();
        let late: Vec<_> = (0..2)
            .map(|_| {
                let tree = Arc::clone(&tree);
                let done = done.clone();
                let child = Node::new(NodeId::local(), Some(root_id.clone()));
                std::thread::spawn(move || {
                    let outcome = tree.commit(vec![child], &[]);
                    done.send(outcome).unwrap();
                })
            })
            .collect();
        wait_until("both late writers are queued", || {
            tree.writes.lock().pending.len() == 2
        });
        open_gate(&store);
        first.join().unwrap().unwrap();
        // The follower gets an error instead of waiting forever.
        let outcome = outcomes
            .recv_timeout(Duration::from_secs(30))
            .expect("the follower of a panicked leader got no outcome");
        assert!(matches!(outcome, Err(Error::Internal(_))), "{outcome:?}");
        let panicked = late
            .into_iter()
            .map(std::thread::JoinHandle::join)
            .filter(std::result::Result::is_err)
            .count();
        assert_eq!(panicked, 1, "exactly the leader panics");
        // The queue still works after that.
        tree.commit(vec![Node::new(NodeId::local(), Some(root_id))], &[])
            .unwrap();
    }

    fn slots(writes: Vec<Vec<Node>>) -> Vec<Arc<Slot>> {
        writes
            .into_iter()
            .map(|nodes| {
                Slot::new(Write {
                    nodes,
                    ..Write::default()
                })
            })
            .collect()
    }

    #[test]
    fn a_write_the_store_refuses_fails_only_its_writer() {
        let root = Node::new(NodeId::local(), None);
        let root_id = root.id.clone();
        let bad = Node::new(NodeId::local(), Some(root_id.clone()));
        let store = Arc::new(TestStore {
            refused: Some(bad.id.clone()),
            ..TestStore::default()
        });
        let tree = ResponseTree::with_store(Arc::clone(&store)).unwrap();
        tree.commit(vec![root], &[]).unwrap();
        let good = [
            Node::new(NodeId::local(), Some(root_id.clone())),
            Node::new(NodeId::local(), Some(root_id.clone())),
        ];
        // A writer whose parent is the refused node (allowed in a group: it
        // was validated counting the earlier writers' nodes as present).
        let orphan = Node::new(NodeId::local(), Some(bad.id.clone()));
        let orphan_id = orphan.id.clone();
        let group = slots(vec![
            vec![good[0].clone()],
            vec![bad],
            vec![orphan],
            vec![good[1].clone()],
        ]);
        commit_group(&tree, &group);
        let outcomes: Vec<Result<()>> = group
            .iter()
            .map(|slot| lock(&slot.outcome).take().unwrap())
            .collect();
        assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
        assert!(
            matches!(outcomes[1], Err(Error::Internal(_))),
            "{:?}",
            outcomes[1]
        );
        assert!(
            matches!(
                outcomes[2],
                Err(Error::InvalidTree(TreeViolation::DanglingParent { .. }))
            ),
            "{:?}",
            outcomes[2]
        );
        assert!(outcomes[3].is_ok(), "{:?}", outcomes[3]);
        assert!(!tree.contains(&orphan_id));
        assert!(store.inner.node(&orphan_id).unwrap().is_none());
        let mut children = tree.children(&root_id).unwrap();
        children.sort();
        let mut expected: Vec<NodeId> = good.iter().map(|n| n.id.clone()).collect();
        expected.sort();
        assert_eq!(children, expected);
        for node in &good {
            assert!(store.inner.node(&node.id).unwrap().is_some());
        }
    }

    #[test]
    fn a_refused_writer_does_not_sink_its_group() {
        let tree = ResponseTree::in_memory();
        let root = Node::new(NodeId::local(), None);
        let root_id = root.id.clone();
        tree.commit(vec![root.clone()], &[]).unwrap();
        // Same group, driven by hand: a duplicate and a good child.
        let group = slots(vec![
            vec![root],
            vec![Node::new(NodeId::local(), Some(root_id.clone()))],
        ]);
        commit_group(&tree, &group);
        let outcomes: Vec<Result<()>> = group
            .iter()
            .map(|slot| lock(&slot.outcome).take().unwrap())
            .collect();
        assert!(matches!(
            outcomes[0],
            Err(Error::InvalidTree(TreeViolation::DuplicateNode(_)))
        ));
        assert!(outcomes[1].is_ok());
        assert_eq!(tree.children(&root_id).unwrap().len(), 1);
    }
}
