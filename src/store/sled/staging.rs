//! Staged writes in the sled store ([`Store::begin_stage`](crate::store::Store::begin_stage)):
//! a large import's nodes written in chunks ahead of one small publishing
//! transaction, so the import is all or nothing without one huge transaction.
//!
//! A staged chunk is written as ordinary segment records (the bodies are never
//! copied again), under segment numbers listed in the `staged_segments` tree
//! (segment number → stage number) in the same transaction. Nothing that makes
//! nodes of segments reads a listed one: a load reads the topology snapshot and
//! log, which do not name staged nodes before publication; the full scan
//! (`scan_topology`) and the segment-index scan (`scan_index`) skip listed
//! segments; reads find segments through the segment index only. The staged
//! nodes' search records are written after their segments, one index group
//! per chunk (its document chunks first, then its lists); a search drops
//! candidates the graph does not hold, so they never become hits before
//! publication.
//!
//! Publication is one transaction: it deletes the stage's `staged_segments`
//! entries, writes the stage's topology-log entry (every node's topology and
//! segment, grown chunk by chunk in memory: about 80 bytes per node), the
//! refs, and the commit number. A stage that is abandoned, or left behind by a
//! process that died, is deleted — search records, segments, then entries — by
//! `remove_stage`, at the abandon or at the next open.
//!
//! Why in `segments` and not a tree of its own: moving 100 MB of bodies into
//! place at publication would be the single huge write again.

use std::collections::HashSet;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{SledStore, segment_number};
use crate::error::{Error, Result};
use crate::ids::{NodeId, RefName};
use crate::node::Node;
use crate::store::codec;
use crate::store::segment;
use crate::store::segment_index::SegmentIndex;
use crate::store::sled_search;
use crate::store::snapshot::{self, LogChange};
use crate::store::{StageId, Topology, trace};

/// The sled tree listing staged segments: segment number (u32 BE) → stage
/// number (u64 LE).
pub(super) const STAGED_TREE: &str = "staged_segments";

/// What writing a staged chunk's segments gives back.
struct Written {
    /// Every node's encoded topology, in the nodes' order.
    topologies: Vec<Vec<u8>>,
    /// Every node's segment number, in the nodes' order.
    numbers: Vec<u32>,
    /// The segments written.
    segments: std::ops::Range<u32>,
}

/// What the store remembers of a stage until it is published or abandoned.
#[derive(Debug, Default)]
pub(super) struct Stage {
    /// The stage's segments, in order.
    segments: Vec<u32>,
    /// Every staged node with its segment, for the segment index at publication.
    placed: Vec<(NodeId, u32)>,
    /// The body of the topology-log entry publication writes (log changes
    /// without the version byte); empty for a temporary store, which keeps no log.
    log: Vec<u8>,
}

impl SledStore {
    pub(super) fn begin_staging(&self) -> StageId {
        let number = self
            .next_stage
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.stages_mut().insert(number, Stage::default());
        StageId::new(number)
    }

    pub(super) fn stage_chunk(&self, stage: StageId, nodes: &[Node]) -> Result<()> {
        if !self.stages_mut().contains_key(&stage.get()) {
            return Err(Error::Unsupported("no such stage in this store"));
        }
        let started = std::time::Instant::now();
        // The index terms (tokenising every text: about as much CPU as the
        // segment write) are extracted on a second thread while this one
        // encodes and writes the segments; the two need nothing of each other.
        let (entries, written) = super::beside(
            "resptree-index-terms",
            || {
                nodes
                    .iter()
                    .map(sled_search::entry)
                    .collect::<Vec<sled_search::Entry>>()
            },
            || self.write_staged_segments(stage, nodes),
        );
        let Written {
            topologies,
            numbers,
            segments: written,
        } = written?;
        let placed: Vec<(u32, &str, &sled_search::Entry)> = numbers
            .iter()
            .zip(nodes)
            .zip(&entries)
            .map(|((&number, node), entry)| (number, node.id.as_str(), entry))
            .collect();
        sled_search::stage(&self.search_lists, &self.search_docs, &placed)?;
        drop(placed);
        drop(entries);
        let mut stages = self.stages_mut();
        let Some(state) = stages.get_mut(&stage.get()) else {
            return Err(Error::Unsupported("no such stage in this store"));
        };
        state.segments.extend(written);
        state.placed.extend(
            nodes
                .iter()
                .zip(&numbers)
                .map(|(n, &number)| (n.id.clone(), number)),
        );
        if self.path.is_some() {
            let entry = snapshot::encode_log(
                nodes
                    .iter()
                    .zip(&topologies)
                    .zip(&numbers)
                    .map(|((n, t), &number)| LogChange::Put(n.id.as_str(), t, number)),
            );
            // Entries are a version byte and then changes, one after another.
            state
                .log
                .extend_from_slice(entry.get(1..).unwrap_or_default());
        }
        drop(stages);
        trace::committed("sled-staged", nodes.len(), None, started);
        Ok(())
    }

    /// Encodes a chunk's nodes into segment records and writes them, listed
    /// as staged, in one transaction.
    fn write_staged_segments(&self, stage: StageId, nodes: &[Node]) -> Result<Written> {
        let topologies: Vec<Vec<u8>> = nodes
            .iter()
            .map(|n| codec::encode_topology(&Topology::of(n)))
            .collect();
        let bodies: Vec<Vec<u8>> = nodes.iter().map(codec::encode_body).collect();
        let packed = segment::pack(
            nodes
                .iter()
                .zip(&topologies)
                .zip(&bodies)
                .map(|((node, topology), body)| segment::Entry {
                    id: node.id.as_str(),
                    topology,
                    body,
                }),
            self.packing,
        );
        // The segments hold copies: free the bodies before the write, while
        // the other thread's terms are alive too.
        drop(bodies);
        let first = self.segment_numbers(packed.len())?;
        let marker = stage.get().to_le_bytes();
        // In turn with other writers, so a full scan (which takes the turn)
        // sees a chunk's segments and entries together.
        let turn = self
            .writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let result: std::result::Result<(), TransactionError<Error>> =
            (&self.segments, &self.staged).transaction(|(segments, staged)| {
                for (number, (bytes, _)) in (first..).zip(&packed) {
                    // The entry first: whatever of a stage is on disk is listed.
                    staged.insert(&number.to_be_bytes(), &marker)?;
                    segments.insert(&number.to_be_bytes(), bytes.as_slice())?;
                }
                Ok::<(), ConflictableTransactionError<Error>>(())
            });
        match result {
            Ok(()) => {}
            Err(TransactionError::Storage(e)) => {
                return Err(Error::storage("writing staged nodes", e));
            }
            Err(TransactionError::Abort(e)) => return Err(e),
        }
        drop(turn);
        // Segments hold consecutive runs of the nodes, in order.
        let mut numbers = Vec::with_capacity(nodes.len());
        for (number, (_, count)) in (first..).zip(&packed) {
            numbers.extend(std::iter::repeat_n(number, *count));
        }
        let segments = first..first.saturating_add(u32::try_from(packed.len()).unwrap_or(u32::MAX));
        Ok(Written {
            topologies,
            numbers,
            segments,
        })
    }

    pub(super) fn publish(&self, stage: StageId, refs: &[(RefName, NodeId)]) -> Result<()> {
        let Some(state) = self.stages_mut().remove(&stage.get()) else {
            return Err(Error::Unsupported("no such stage in this store"));
        };
        match self.publish_state(&state, refs) {
            // Published: from here a failure is the flush's, reported as such.
            Ok(seq) => match self.durability {
                crate::store::Durability::Flush => self.sync_to(seq),
                crate::store::Durability::Buffered => Ok(()),
            },
            Err(e) => {
                // Not published: the caller may still abandon it.
                self.stages_mut().insert(stage.get(), state);
                Err(e)
            }
        }
    }

    /// The publishing transaction; returns its commit number.
    fn publish_state(&self, state: &Stage, refs: &[(RefName, NodeId)]) -> Result<u64> {
        let started = std::time::Instant::now();
        let _turn = self
            .writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let log_entry = (self.path.is_some() && !state.log.is_empty()).then(|| {
            let mut entry = snapshot::encode_log(std::iter::empty());
            entry.extend_from_slice(&state.log);
            entry
        });
        let encoded_refs: Vec<(&str, Vec<u8>)> = refs
            .iter()
            .map(|(name, target)| (name.as_str(), codec::encode_ref(target)))
            .collect();
        let committed = std::cell::Cell::new(0);
        let result: std::result::Result<(), TransactionError<Error>> =
            (&self.staged, &self.meta, &self.topology_log, &self.refs).transaction(
                |(staged, meta, log, refs)| {
                    for number in &state.segments {
                        staged.remove(&number.to_be_bytes())?;
                    }
                    for (name, target) in &encoded_refs {
                        refs.insert(name.as_bytes(), target.as_slice())?;
                    }
                    // The staged nodes' postings are already written.
                    committed.set(super::stamp_commit(meta, log, log_entry.as_deref())?);
                    Ok::<(), ConflictableTransactionError<Error>>(())
                },
            );
        match result {
            Ok(()) => {}
            Err(TransactionError::Storage(e)) => {
                return Err(Error::storage("publishing staged nodes", e));
            }
            Err(TransactionError::Abort(e)) => return Err(e),
        }
        self.index_mut()
            .get_or_insert_with(SegmentIndex::default)
            .extend(state.placed.iter().map(|(id, n)| (id.as_str(), *n)));
        trace::committed(
            "sled",
            state.placed.len() + refs.len(),
            Some(committed.get()),
            started,
        );
        Ok(committed.get())
    }

    pub(super) fn abandon(&self, stage: StageId) -> Result<()> {
        let Some(state) = self.stages_mut().remove(&stage.get()) else {
            return Ok(());
        };
        self.remove_staged(&state.segments)
    }

    /// Deletes every stage the `staged_segments` tree lists: at open, these
    /// are stages a process left behind (abandoned or interrupted).
    pub(super) fn remove_abandoned_stages(&self) -> Result<()> {
        let mut numbers = Vec::new();
        for key in self.staged.iter().keys() {
            let key = key.map_err(|e| Error::storage("reading staged segments", e))?;
            match segment_number(&key) {
                Some(number) => numbers.push(number),
                // Not a segment number: nothing to delete but the entry.
                None => {
                    self.staged
                        .remove(&key)
                        .map_err(|e| Error::storage("removing staged segments", e))?;
                }
            }
        }
        if numbers.is_empty() {
            return Ok(());
        }
        self.remove_staged(&numbers)?;
        self.flush_db()?;
        tracing::info!(target: "resptree::store", store = "sled", segments = numbers.len(), "removed the segments of an unpublished import");
        Ok(())
    }

    /// Deletes staged segments: their nodes' postings, the segments, then
    /// their entries (last, so a crash half way leaves them listed).
    fn remove_staged(&self, numbers: &[u32]) -> Result<()> {
        let fail = |e| Error::storage("removing staged segments", e);
        let _turn = self
            .writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut segments = sled::Batch::default();
        let mut entries = sled::Batch::default();
        for &number in numbers {
            let key = number.to_be_bytes();
            if let Some(bytes) = self.segments.get(key).map_err(fail)? {
                // A segment that does not decode has no postings we can name;
                // a search would drop them anyway (the graph never has them).
                let plain = segment::unpack(&bytes);
                if let Ok(decoded) = segment::decode_unpacked(&plain) {
                    sled_search::unstage(
                        &self.search_lists,
                        &self.search_docs,
                        number,
                        decoded.iter().map(|e| e.body),
                    )?;
                }
                segments.remove(&key);
            }
            entries.remove(&key);
        }
        self.segments.apply_batch(segments).map_err(fail)?;
        self.staged.apply_batch(entries).map_err(fail)
    }

    /// Reserves `count` consecutive segment numbers for a batch's or a stage's
    /// new segments.
    pub(super) fn segment_numbers(&self, count: usize) -> Result<u32> {
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        let first = self
            .next_segment
            .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
        if first.checked_add(count).is_none() {
            return Err(Error::Unsupported(
                "this store has used up its 4 billion segment numbers; copy it into a new store with store::migrate",
            ));
        }
        Ok(first)
    }

    /// The segment numbers listed as staged, which no scan may read as nodes.
    pub(super) fn staged_numbers(&self) -> Result<HashSet<u32>> {
        let mut out = HashSet::new();
        for key in self.staged.iter().keys() {
            let key = key.map_err(|e| Error::storage("reading staged segments", e))?;
            out.extend(segment_number(&key));
        }
        Ok(out)
    }

    fn stages_mut(&self) -> std::sync::MutexGuard<'_, foldhash::HashMap<u64, Stage>> {
        // A poisoned lock still guards whole stages: each is inserted or
        // removed in one step.
        self.stages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::IndexQuery;
    use crate::store::Store;

    /// `n` nodes, a chain under `parent`, each saying `word`.
    fn chain(parent: Option<&NodeId>, n: usize, word: &str) -> Vec<Node> {
        let mut out: Vec<Node> = Vec::new();
        for i in 0..n {
            let up = out.last().map(|p| p.id.clone()).or(parent.cloned());
            out.push(
                Node::new(NodeId::local(), up)
                    .with_user_text(format!("{word} question {i}"))
                    .with_output_text(format!("{word} answer {i}")),
            );
        }
        out
    }

    fn hits(store: &SledStore, word: &str) -> usize {
        let query = IndexQuery::new(vec![word.to_owned()], None);
        store.search(&query).unwrap().unwrap().len()
    }

    /// What a store holds of staged nodes, record by record.
    fn staged_records(store: &SledStore) -> (usize, usize, usize) {
        (
            store.staged.len(),
            store.segments.len(),
            store.search_docs.len(),
        )
    }

    /// A process that staged nodes and died before publishing: the nodes are
    /// on disk but never loaded, read, or scanned as nodes, and the next open
    /// deletes them with their postings.
    #[test]
    fn an_unpublished_stage_is_invisible_and_deleted_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        let kept = chain(None, 1, "kept");
        let staged = chain(Some(&kept[0].id), 200, "zebra");
        {
            let store = SledStore::open(&path).unwrap();
            store
                .apply(
                    kept.iter()
                        .cloned()
                        .map(|n| crate::store::Op::PutNode(Box::new(n)))
                        .collect(),
                )
                .unwrap();
            let stage = store.begin_stage().unwrap().unwrap();
            store.stage_nodes(stage, &staged[..120]).unwrap();
            store.stage_nodes(stage, &staged[120..]).unwrap();
            assert!(store.staged.len() >= 2);
            // Staged segments are on disk, their nodes nowhere to be seen.
            assert_eq!(store.load().unwrap().nodes.len(), 1);
            store.forget_snapshot().unwrap();
            assert_eq!(store.load().unwrap().nodes.len(), 1, "the full scan");
            assert_eq!(store.child_index().unwrap().len(), 0);
            assert_eq!(store.node(&staged[5].id).unwrap(), None);
            // The store's index has their postings (the graph drops them).
            assert_eq!(hits(&store, "zebra"), 200);
            store.flush_db().unwrap();
            // Dropped without publishing or abandoning: as if the process died.
        }
        let store = SledStore::open(&path).unwrap();
        assert_eq!(staged_records(&store), (0, 1, 1));
        assert_eq!(hits(&store, "zebra"), 0);
        assert_eq!(hits(&store, "kept"), 1);
        let loaded = store.load().unwrap();
        assert_eq!(loaded.nodes.len(), 1);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(store.node(&kept[0].id).unwrap().as_ref(), Some(&kept[0]));
    }

    #[test]
    fn an_abandoned_stage_is_deleted_at_once() {
        let store = SledStore::temporary().unwrap();
        let stage = store.begin_stage().unwrap().unwrap();
        store
            .stage_nodes(stage, &chain(None, 100, "zebra"))
            .unwrap();
        assert!(staged_records(&store).0 > 0);
        store.abandon_stage(stage).unwrap();
        assert_eq!(staged_records(&store), (0, 0, 0));
        assert_eq!(store.search_lists.len(), 0);
        // The stage is gone: abandoning again is no error, publishing is.
        store.abandon_stage(stage).unwrap();
        assert!(matches!(
            store.publish_stage(stage, &[]),
            Err(Error::Unsupported(_))
        ));
    }

    /// Published, the nodes load (through the log, the snapshot and the full
    /// scan), read and search like nodes of any batch, with the refs set in
    /// the same write.
    #[test]
    fn a_published_stage_is_stored_like_a_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        let nodes = chain(None, 300, "zebra");
        let name = RefName::new("imported").unwrap();
        {
            let store = SledStore::open(&path).unwrap();
            let stage = store.begin_stage().unwrap().unwrap();
            for part in nodes.chunks(70) {
                store.stage_nodes(stage, part).unwrap();
            }
            let before = store.commits();
            store
                .publish_stage(stage, &[(name.clone(), nodes[299].id.clone())])
                .unwrap();
            assert_eq!(store.commits(), before + 1, "one commit");
            assert_eq!(store.staged.len(), 0);
            assert_eq!(
                store.node(&nodes[42].id).unwrap().as_ref(),
                Some(&nodes[42])
            );
            assert_eq!(hits(&store, "zebra"), 300);
        }
        for full_scan in [false, true] {
            let store = SledStore::open(&path).unwrap();
            if full_scan {
                store.forget_snapshot().unwrap();
            }
            let loaded = store.load().unwrap();
            assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
            let mut ids: Vec<NodeId> = loaded.nodes.into_iter().map(|t| t.id).collect();
            ids.sort();
            let mut expected: Vec<NodeId> = nodes.iter().map(|n| n.id.clone()).collect();
            expected.sort();
            assert_eq!(ids, expected);
            assert_eq!(loaded.refs, [(name.clone(), nodes[299].id.clone())]);
            assert_eq!(
                store.node(&nodes[250].id).unwrap().as_ref(),
                Some(&nodes[250])
            );
            assert_eq!(hits(&store, "zebra"), 300);
        }
    }
}
