//! The sled store's search index: postings grouped per write batch, written in
//! the same transaction as the nodes they index (see `docs/store-format.md`,
//! *Search index*).
//!
//! | tree           | key                              | value                         |
//! |----------------|----------------------------------|-------------------------------|
//! | `search_lists` | term `0x00` group (`u64` BE)     | a postings list ([`posting`]) |
//! | `search_lists` | `0x02` level bucket (`u16` BE) group (`u64` BE) | a bucket: the lists of its terms |
//! | `search_lists` | `0x03` group (`u64` BE)          | the group's time bounds: each chunk's newest node ([`posting`]) |
//! | `search_docs`  | chunk (`u64` BE)                 | a document chunk ([`posting`]) |
//! | `meta`         | `search_format`                  | `u32` LE: [`FORMAT`]          |
//! | `meta`         | `search_index_seq`               | `u64` LE: the commit the index is current with |
//! | `meta`         | `search_damaged`                 | present once a search met a record it could not read |
//! | `meta`         | `search_own_chunks`              | `u64` LE: how many chunks hold nodes with own records |
//!
//! sled 0.34 costs tens of microseconds of CPU per record written, whatever
//! its size, so the index writes a **group** of nodes at once: one postings
//! list per distinct term of a batch, not one record per (term, node) as the
//! first layout (format 1) did. A batch's group number is the number of its
//! first new segment, and a node in a list is named by its **chunk** (for a
//! node in a segment, the segment's number) and its **slot** (its position in
//! that segment when it was written), three bytes or so. `search_docs` maps a
//! chunk's slots to node ids and records the chunk's group, so a search turns
//! postings into ids, and replacing or removing a node finds its group, then
//! (from its old body) its terms, and deletes exactly its postings. The slot
//! of a node that is gone is emptied, never reused, so a posting left behind
//! (by a body that no longer decodes) names no node.
//!
//! A group of many distinct terms (a bulk batch, a staged import chunk, a
//! re-index) would still write a record per term: with a real vocabulary, a
//! 5 000-node batch uses about as many words, so about a record per node.
//! Such a group (format 3: from [`BUCKET_MIN_TERMS`] terms on) packs its
//! lists into 2^ℓ **buckets** by a stable hash of the term, about
//! [`BUCKET_TERMS`] terms a bucket, a record each; its document chunks record
//! ℓ. A search reads a term's bucket of every such group with one prefix scan
//! per level and picks the term's list out of each (a directory of the
//! bucket's terms leads to it). Smaller groups, such as a single commit's,
//! keep a record per term, so the lists of a rare word stay few.
//!
//! Nodes that still have their own records (a store upgraded from schema 3)
//! have no segment: a re-index puts them in chunks numbered from
//! [`OWN_BASE`], by a stable hash of their id, so a removal finds the chunk
//! without a lookup.
//!
//! Each slot of a document chunk also records its node's `created_at`, and
//! each group a **time bounds** record: the newest `created_at` of each of
//! its chunks (format 4). A search ranks by score, then time, then id, and a
//! common word's nodes all tie on score: with the bounds it reads chunks
//! newest first and stops once `limit` candidates are certain, instead of
//! naming every node the word is in. A bound stays valid when nodes leave
//! (it may only be higher than needed), so only a group's own write sets it.
//!
//! Everything here is derived data: a store whose index is of another format,
//! behind `commit_seq`, or marked damaged is re-indexed when it is opened.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use sled::transaction::{TransactionalTree, UnabortableTransactionError};

use crate::error::{Error, Result};
use crate::ids::NodeId;
use crate::node::{Node, Timestamp};
use crate::search::document::index_terms;
use crate::search::index::score;
use crate::search::{Candidate, IndexQuery, RankedCandidate, best_first};

use super::posting::{self, DocChunk, Posting};
use super::{codec, segment};

/// What sled's transactional operations return (sled keeps its alias private).
type TxResult<T> = std::result::Result<T, UnabortableTransactionError>;

/// The sled tree of postings lists.
pub(super) const LISTS_TREE: &str = "search_lists";
/// The sled tree of document chunks.
pub(super) const DOCS_TREE: &str = "search_docs";
/// The trees of format 1 (a record per term and node, and each node's terms),
/// dropped when a store is re-indexed.
pub(super) const FORMAT_1_TREES: [&str; 2] = ["search_postings", "search_terms"];
/// Format 1's `meta` key; removed by a re-index, so that a format 1 build
/// that opens the store re-indexes it its own way.
pub(super) const FORMAT_1_SEQ_KEY: &[u8] = b"search_seq";
/// The `meta` key of the index format.
pub(super) const FORMAT_KEY: &[u8] = b"search_format";
/// The `meta` key naming the commit the index is current with.
pub(super) const INDEX_SEQ_KEY: &[u8] = b"search_index_seq";
/// The `meta` key that marks the index as needing a rebuild.
pub(super) const DAMAGED_KEY: &[u8] = b"search_damaged";
/// The `meta` key of the number of own-record chunks.
const OWN_CHUNKS_KEY: &[u8] = b"search_own_chunks";

/// The index format this build writes and reads. A store whose `meta` says
/// otherwise is re-indexed on open (no schema bump: the index is derived).
/// Format 3 packs a large group's lists into hash buckets; format 4 records
/// each slot's time and each group's time bounds.
pub(super) const FORMAT: u32 = 4;

/// A group with at least this many distinct terms packs its lists into
/// buckets; a smaller one (a single commit, a small batch) keeps a record per
/// term, which a search finds by the term alone.
const BUCKET_MIN_TERMS: usize = 128;
/// About how many terms a bucket holds (between this and twice as many).
const BUCKET_TERMS: usize = 64;
/// The largest bucket level: at most 2^12 buckets a group.
const MAX_LEVEL: u8 = 12;
/// The first byte of a bucket's key: no term starts with it (terms are
/// alphanumeric, or `0x01` and a model name).
const BUCKET_TAG: u8 = 0x02;
/// The first byte of a group's time bounds key (no term starts with it).
const BOUNDS_TAG: u8 = 0x03;

/// Chunk (and group) numbers of nodes with their own records start here,
/// above every segment number (`u32`).
pub(super) const OWN_BASE: u64 = 1 << 32;
/// About how many nodes with own records share a chunk.
const OWN_CHUNK_NODES: u64 = 64;
/// How many own-record chunks share a group.
const OWN_GROUP_CHUNKS: u64 = 64;
/// A re-index closes a group of segments once it holds this many nodes: the
/// size of a bulk insert's batch, so a rebuilt index looks like a written one.
const REINDEX_GROUP: usize = 5_000;

/// A node's index terms, computed before the writer's turn (and outside the
/// transaction, which sled may run more than once).
#[derive(Debug, Default)]
pub(super) struct Entry {
    /// Each distinct term and its occurrences, sorted by term.
    terms: Vec<(String, u32)>,
    /// The node's `created_at` (ms), which breaks score ties in a search.
    created_at: i64,
}

/// The index terms of `node`.
pub(super) fn entry(node: &Node) -> Entry {
    Entry {
        terms: index_terms(node),
        created_at: node.created_at.0,
    }
}

/// The trees a batch's index writes are planned from (read before the
/// transaction, under the store's writer turn, so nothing changes them in
/// between).
pub(super) struct Trees<'a> {
    pub(super) lists: &'a sled::Tree,
    pub(super) docs: &'a sled::Tree,
    pub(super) segments: &'a sled::Tree,
    pub(super) bodies: &'a sled::Tree,
    pub(super) meta: &'a sled::Tree,
}

/// One batch's index writes, encoded: whole records to put or remove.
#[derive(Debug, Default)]
pub(super) struct Writes {
    lists: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    docs: Vec<([u8; 8], Option<Vec<u8>>)>,
    /// A record the plan needed did not decode: the index is marked for a
    /// rebuild (what it could not clean up stays harmless: see the module doc).
    damaged: bool,
}

impl Writes {
    /// Plans the index writes of a batch: `added` are the nodes it stores, in
    /// the order they fill its new segments (`(segment, id, entry)`);
    /// `replaced` the segments that may hold older copies of nodes it
    /// replaces or removes, with those ids; `own` the ids of such nodes that
    /// have their own records.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the index cannot be read.
    pub(super) fn plan<'a>(
        trees: &Trees<'_>,
        added: impl IntoIterator<Item = (u32, &'a str, &'a Entry)>,
        replaced: &BTreeMap<u32, Vec<String>>,
        own: &[String],
    ) -> Result<Self> {
        let mut writes = Self::default();
        let removed = writes.empty_slots(trees, replaced, own)?;
        writes.delete_postings(trees.lists, removed)?;
        let mut group = Group::default();
        for (segment, id, entry) in added {
            group.add(u64::from(segment), id, entry);
        }
        let (lists, docs) = group.encode();
        writes
            .lists
            .extend(lists.into_iter().map(|(k, v)| (k, Some(v))));
        writes
            .docs
            .extend(docs.into_iter().map(|(k, v)| (k, Some(v))));
        Ok(writes)
    }

    /// Writes the planned records inside the batch's transaction.
    pub(super) fn write(
        &self,
        lists: &TransactionalTree,
        docs: &TransactionalTree,
        meta: &TransactionalTree,
    ) -> TxResult<()> {
        for (key, value) in &self.lists {
            match value {
                Some(value) => lists.insert(key.as_slice(), value.as_slice())?,
                None => lists.remove(key.as_slice())?,
            };
        }
        for (key, value) in &self.docs {
            match value {
                Some(value) => docs.insert(&key[..], value.as_slice())?,
                None => docs.remove(&key[..])?,
            };
        }
        if self.damaged {
            meta.insert(DAMAGED_KEY, &[1])?;
        }
        Ok(())
    }

    /// Empties the slots of the nodes the batch replaces or removes and
    /// returns, for each, its group, chunk, slot and old terms (unknown when
    /// its old body does not decode: its postings then stay, naming nothing).
    fn empty_slots(
        &mut self,
        trees: &Trees<'_>,
        replaced: &BTreeMap<u32, Vec<String>>,
        own: &[String],
    ) -> Result<Vec<Removed>> {
        let read = |e| Error::storage("reading the search index", e);
        let mut removed = Vec::new();
        for (&segment, ids) in replaced {
            let chunk = u64::from(segment);
            let Some(found) = self.chunk(trees.docs, chunk)? else {
                continue;
            };
            let body = trees.segments.get(segment.to_be_bytes()).map_err(read)?;
            let plain = body.as_ref().and_then(|body| segment::unpack(body).ok());
            let old_terms = |id: &str| {
                let entries = segment::decode(plain.as_deref()?).ok()?;
                let entry = entries.into_iter().find(|e| e.id == id)?;
                Some(body_terms(entry.body))
            };
            self.empty(
                chunk,
                found,
                ids.iter().map(String::as_str),
                old_terms,
                &mut removed,
            );
        }
        let own_chunks = own_chunks(trees.meta)?;
        if own_chunks > 0 {
            let mut by_chunk: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
            for id in own {
                by_chunk
                    .entry(own_chunk(id, own_chunks))
                    .or_default()
                    .push(id);
            }
            for (chunk, ids) in by_chunk {
                let Some(found) = self.chunk(trees.docs, chunk)? else {
                    continue;
                };
                let old_terms = |id: &str| {
                    let body = trees.bodies.get(id.as_bytes()).ok()??;
                    Some(body_terms(&body))
                };
                self.empty(chunk, found, ids.into_iter(), old_terms, &mut removed);
            }
        }
        Ok(removed)
    }

    /// The document chunk `chunk`, if it exists and decodes (if it does not,
    /// the index is marked damaged).
    fn chunk(&mut self, docs: &sled::Tree, chunk: u64) -> Result<Option<DocChunk>> {
        let bytes = docs
            .get(chunk.to_be_bytes())
            .map_err(|e| Error::storage("reading the search index", e))?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        match posting::decode_docs(&bytes) {
            Ok(found) => Ok(Some(found)),
            Err(reason) => {
                tracing::warn!(target: "resptree::store", store = "sled", chunk, %reason, "unreadable search index record; the index is rebuilt at the next open");
                self.damaged = true;
                Ok(None)
            }
        }
    }

    /// Empties the slots of `ids` in `found` (chunk `chunk`), planning its
    /// rewrite, and lists them in `removed`.
    fn empty<'a>(
        &mut self,
        chunk: u64,
        mut found: DocChunk,
        ids: impl Iterator<Item = &'a str>,
        old_terms: impl Fn(&str) -> Option<Vec<String>>,
        removed: &mut Vec<Removed>,
    ) {
        let mut changed = false;
        for id in ids {
            let Some(slot) = found.slot_of(id) else {
                continue;
            };
            found.ids[slot as usize] = None;
            changed = true;
            removed.push(Removed {
                group: found.group,
                layout: found.layout,
                doc: (chunk, slot),
                terms: old_terms(id).unwrap_or_default(),
            });
        }
        if changed {
            let value = (!found.is_empty()).then(|| {
                posting::encode_docs(
                    found.group,
                    found.layout,
                    found
                        .ids
                        .iter()
                        .map(Option::as_deref)
                        .zip(found.times.iter().copied()),
                )
            });
            self.docs.push((chunk.to_be_bytes(), value));
        }
    }

    /// Plans the rewrite of every postings list that names a removed node,
    /// without it (or its removal, once it names nobody): a record per term
    /// of a small group, the term's bucket of a large one.
    fn delete_postings(&mut self, lists: &sled::Tree, removed: Vec<Removed>) -> Result<()> {
        // Record key → (term → the removed nodes it names).
        let mut by_key: BTreeMap<Vec<u8>, TermDocs> = BTreeMap::new();
        for gone in removed {
            for term in &gone.terms {
                let term = term.as_bytes();
                let key = match gone.layout {
                    0 => list_key(term, gone.group),
                    level => bucket_key(level, bucket_of(term, level), gone.group),
                };
                by_key
                    .entry(key)
                    .or_default()
                    .entry(term.to_vec())
                    .or_default()
                    .push(gone.doc);
            }
        }
        for (key, terms) in by_key {
            let Some(bytes) = lists
                .get(&key)
                .map_err(|e| Error::storage("reading the search index", e))?
            else {
                continue;
            };
            let value = if key.first() == Some(&BUCKET_TAG) {
                let Ok(mut bucket) = posting::decode_bucket(&bytes) else {
                    // Left as it is: its postings name emptied slots.
                    self.damaged = true;
                    continue;
                };
                let mut changed = false;
                for (term, list) in &mut bucket {
                    if let Some(docs) = terms.get(term.as_slice()) {
                        let before = list.len();
                        list.retain(|p| !docs.contains(&p.doc()));
                        changed |= list.len() != before;
                    }
                }
                if !changed {
                    continue;
                }
                bucket.retain(|(_, list)| !list.is_empty());
                (!bucket.is_empty()).then(|| encode_bucket_lists(&mut bucket))
            } else {
                let Ok(mut list) = posting::decode_list(&bytes) else {
                    self.damaged = true;
                    continue;
                };
                let before = list.len();
                let docs: Vec<(u64, u32)> = terms.into_values().flatten().collect();
                list.retain(|p| !docs.contains(&p.doc()));
                if list.len() == before {
                    continue;
                }
                (!list.is_empty()).then(|| posting::encode_list(&mut list))
            };
            self.lists.push((key, value));
        }
        Ok(())
    }
}

/// Terms and the removed nodes `(chunk, slot)` each names.
type TermDocs = BTreeMap<Vec<u8>, Vec<(u64, u32)>>;

/// A node the batch takes out of the index.
struct Removed {
    group: u64,
    /// The group's layout (see [`DocChunk::layout`]).
    layout: u8,
    doc: (u64, u32),
    terms: Vec<String>,
}

/// The terms of an encoded body (none if it does not decode).
fn body_terms(body: &[u8]) -> Vec<String> {
    codec::decode_body(body)
        .map(|node| index_terms(&node).into_iter().map(|(t, _)| t).collect())
        .unwrap_or_default()
}

/// The postings and document chunks of one group being built.
#[derive(Default)]
struct Group {
    /// The group's number: its first chunk.
    number: Option<u64>,
    /// Each term's postings. Hashed, not ordered: a bulk batch looks a term
    /// up for every token it indexes (≈ 15 a node, among ≈ 5 000 terms), and
    /// [`Group::encode`] sorts the terms once.
    lists: foldhash::HashMap<String, Vec<Posting>>,
    /// Each chunk's slots: id and `created_at` (ms).
    docs: BTreeMap<u64, Vec<(String, i64)>>,
    nodes: usize,
}

impl Group {
    /// Adds node `id`, indexed as `entry`, to `chunk`, in the chunk's next
    /// slot.
    fn add(&mut self, chunk: u64, id: &str, entry: &Entry) {
        self.number.get_or_insert(chunk);
        let ids = self.docs.entry(chunk).or_default();
        let slot = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        ids.push((id.to_owned(), entry.created_at));
        for (term, tf) in &entry.terms {
            let posting = Posting {
                chunk,
                slot,
                tf: *tf,
            };
            match self.lists.get_mut(term) {
                Some(list) => list.push(posting),
                None => {
                    self.lists.insert(term.clone(), vec![posting]);
                }
            }
        }
        self.nodes += 1;
    }

    /// The group's records, encoded: lists (a record per term, or per
    /// bucket once the group has [`BUCKET_MIN_TERMS`] terms) and its time
    /// bounds, then document chunks.
    #[allow(clippy::type_complexity)]
    fn encode(self) -> (Vec<(Vec<u8>, Vec<u8>)>, Vec<([u8; 8], Vec<u8>)>) {
        let Some(number) = self.number else {
            return (Vec::new(), Vec::new());
        };
        let layout = layout_for(self.lists.len());
        let mut sorted: Vec<(String, Vec<Posting>)> = self.lists.into_iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut lists: Vec<(Vec<u8>, Vec<u8>)> = if layout == 0 {
            sorted
                .into_iter()
                .map(|(term, mut list)| {
                    (
                        list_key(term.as_bytes(), number),
                        posting::encode_list(&mut list),
                    )
                })
                .collect()
        } else {
            let mut buckets: BTreeMap<u16, Vec<(Vec<u8>, Vec<u8>)>> = BTreeMap::new();
            // Terms come in order, so each bucket's terms do too.
            for (term, mut list) in sorted {
                let term = term.into_bytes();
                buckets
                    .entry(bucket_of(&term, layout))
                    .or_default()
                    .push((term, posting::encode_list(&mut list)));
            }
            buckets
                .into_iter()
                .map(|(bucket, terms)| {
                    let value = posting::encode_bucket(
                        terms.iter().map(|(t, l)| (t.as_slice(), l.as_slice())),
                    );
                    (bucket_key(layout, bucket, number), value)
                })
                .collect()
        };
        let bounds: Vec<(u64, i64)> = self
            .docs
            .iter()
            .map(|(&chunk, slots)| {
                let newest = slots.iter().map(|&(_, t)| t).max().unwrap_or(i64::MIN);
                (chunk, newest)
            })
            .collect();
        lists.push((bounds_key(number).to_vec(), posting::encode_bounds(&bounds)));
        let docs = self
            .docs
            .into_iter()
            .map(|(chunk, slots)| {
                (
                    chunk.to_be_bytes(),
                    posting::encode_docs(
                        number,
                        layout,
                        slots.iter().map(|(id, t)| (Some(id.as_str()), *t)),
                    ),
                )
            })
            .collect();
        (lists, docs)
    }
}

/// The layout of a group with `terms` distinct terms: 0 (a record per term)
/// below [`BUCKET_MIN_TERMS`], else the bucket level `ℓ` that puts
/// [`BUCKET_TERMS`] to twice as many terms in each of 2^ℓ buckets.
fn layout_for(terms: usize) -> u8 {
    if terms < BUCKET_MIN_TERMS {
        return 0;
    }
    let level = (terms / BUCKET_TERMS).max(2).ilog2();
    u8::try_from(level).unwrap_or(MAX_LEVEL).clamp(1, MAX_LEVEL)
}

/// Encodes a decoded bucket again (its terms are still in order).
fn encode_bucket_lists(bucket: &mut posting::Bucket) -> Vec<u8> {
    let lists: Vec<Vec<u8>> = bucket
        .iter_mut()
        .map(|(_, list)| posting::encode_list(list))
        .collect();
    posting::encode_bucket(
        bucket
            .iter()
            .zip(&lists)
            .map(|((term, _), list)| (term.as_slice(), list.as_slice())),
    )
}

/// What a search found in the index.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// The nodes holding every term.
    pub(super) candidates: Vec<Candidate>,
    /// Whether a record did not decode (its nodes were not found): the
    /// caller marks the index for a rebuild.
    pub(super) damaged: bool,
}

/// Indexes the nodes of a staged chunk (see `sled/staging.rs`) as one group,
/// numbered by the chunk's first segment, outside any transaction: the
/// document chunks first, then the lists, so a crash never leaves a list that
/// `unstage` cannot find. The nodes are new, so there are no old postings to
/// delete. Until the stage is published the graph does not hold the nodes,
/// and a search drops them.
pub(super) fn stage(
    lists: &sled::Tree,
    docs: &sled::Tree,
    placed: &[(u32, &str, &Entry)],
) -> Result<()> {
    let write = |e| Error::storage("indexing staged nodes for search", e);
    let mut group = Group::default();
    for (segment, id, entry) in placed {
        group.add(u64::from(*segment), id, entry);
    }
    let (list_records, doc_records) = group.encode();
    let mut batch = sled::Batch::default();
    for (key, value) in doc_records {
        batch.insert(&key[..], value);
    }
    docs.apply_batch(batch).map_err(write)?;
    let mut batch = sled::Batch::default();
    for (key, value) in list_records {
        batch.insert(key, value);
    }
    lists.apply_batch(batch).map_err(write)
}

/// Deletes the index records of staged segment `segment` (an abandoned
/// stage) whose nodes are `bodies`, outside any transaction: its group's
/// lists of their terms first, then its document chunk. A staged group holds
/// only staged nodes, so its lists go whole.
pub(super) fn unstage<'a>(
    lists: &sled::Tree,
    docs: &sled::Tree,
    segment: u32,
    bodies: impl IntoIterator<Item = &'a [u8]>,
) -> Result<()> {
    let write = |e| Error::storage("removing staged nodes from the search index", e);
    let chunk = u64::from(segment);
    let Some(bytes) = docs.get(chunk.to_be_bytes()).map_err(write)? else {
        return Ok(());
    };
    // A chunk that does not decode names no group: its lists (if any) name
    // slots of a chunk that is about to be gone, so they can never be hits.
    if let Ok(found) = posting::decode_docs(&bytes) {
        let mut batch = sled::Batch::default();
        if found.layout == 0 {
            for body in bodies {
                for term in body_terms(body) {
                    batch.remove(list_key(term.as_bytes(), found.group));
                }
            }
        } else {
            // Every bucket of the group, whatever its terms (a key that is
            // already gone costs nothing).
            for bucket in 0..=u16::MAX >> (16 - u32::from(found.layout.min(16))) {
                batch.remove(bucket_key(found.layout, bucket, found.group));
            }
        }
        batch.remove(&bounds_key(found.group)[..]);
        lists.apply_batch(batch).map_err(write)?;
    }
    docs.remove(chunk.to_be_bytes()).map_err(write)?;
    Ok(())
}

/// The candidates for `query`: the nodes holding every term, scored from
/// the postings alone (their occurrences), in `(chunk, slot)` order.
///
/// The terms' lists are read group by group in lockstep until one term's run
/// out: that term is in the fewest groups. For each of its groups, the other
/// terms' lists of the same group are read by key and intersected with it
/// (galloping through the longer list). A search thus reads about as many
/// records as the rarest term has groups, times the number of terms, however
/// common the other terms are. Then each surviving node's chunk is read once
/// and only the surviving slots' ids are checked and named (a chunk holds
/// dozens of ids: copying them all cost more than the rest of a common
/// word's search).
///
/// # Errors
///
/// [`Error::Storage`] if sled cannot be read. A record that does not decode is
/// skipped and reported in [`Found::damaged`]; a posting whose slot is empty
/// (its node is gone) is not a candidate.
pub(super) fn query(lists: &sled::Tree, docs: &sled::Tree, query: &IndexQuery) -> Result<Found> {
    let terms = query.index_terms();
    let mut found = Found::default();
    if terms.is_empty() {
        return Ok(found);
    }
    let hits = hits(lists, &terms, &mut found)?;
    name(docs, &hits.scored(query.terms.len()), &mut found)?;
    Ok(found)
}

/// The candidates for `query` best first — higher score, then newer, then
/// smaller id, as the tree ranks them — named only as they are handed out.
///
/// Every node holding the terms is found and scored from the postings (as
/// [`query`] does), but not named: each chunk with hits is ranked by its best
/// score and its group's time bound for it (the newest node written into
/// it), and chunks are read in that order. A named candidate is handed out
/// once no unread chunk can hold a better one (a higher score, or the same
/// score and a time not older). A common word's nodes all tie on score, so a
/// search that wants 20 reads the newest few chunks, not every chunk the word
/// is in. A chunk without a bound (a damaged record) is read before any of
/// its score, which keeps the order right.
///
/// # Errors
///
/// [`Error::Storage`] if sled cannot be read, here or as the walk goes on. A
/// record that does not decode is skipped (its nodes are not found, never
/// wrongly found) and the index is marked for a rebuild.
pub(super) fn ranked<'a>(
    lists: &sled::Tree,
    docs: &'a sled::Tree,
    meta: &'a sled::Tree,
    query: &IndexQuery,
) -> Result<Ranked<'a>> {
    let terms = query.index_terms();
    let mut found = Found::default();
    let mut ranked = Ranked {
        docs,
        meta,
        hits: Vec::new(),
        pending: BinaryHeap::new(),
        ready: BinaryHeap::new(),
        damaged: false,
    };
    if terms.is_empty() {
        return Ok(ranked);
    }
    let mut hits = hits(lists, &terms, &mut found)?;
    let mut groups = std::mem::take(&mut hits.groups);
    groups.sort_unstable();
    groups.dedup();
    let mut bounds = Vec::new();
    for group in groups {
        let record = lists
            .get(bounds_key(group))
            .map_err(|e| Error::storage("reading the search index", e))?;
        let Some(record) = record else {
            // Not written (a damaged index): its chunks have no bound.
            continue;
        };
        let before = bounds.len();
        if posting::decode_bounds(&record, &mut bounds).is_err() {
            bounds.truncate(before);
            found.damaged = true;
        }
    }
    bounds.sort_unstable();
    let scored = hits.scored(query.terms.len());
    let mut pending = Vec::new();
    let mut at = 0;
    while let Some(&((chunk, _), _)) = scored.get(at) {
        let end = at + scored[at..].partition_point(|((c, _), _)| *c == chunk);
        let best = scored[at..end]
            .iter()
            .map(|&(_, score)| score)
            .fold(f32::NEG_INFINITY, f32::max);
        let bound = bounds
            .binary_search_by_key(&chunk, |&(c, _)| c)
            .map_or(i64::MAX, |i| bounds[i].1);
        pending.push(Pending {
            score: best,
            bound,
            chunk,
            hits: at..end,
        });
        at = end;
    }
    ranked.hits = scored;
    ranked.pending = BinaryHeap::from(pending);
    if found.damaged {
        ranked.report_damage();
    }
    Ok(ranked)
}

/// The walk of [`ranked`]: an iterator of candidates, best first.
#[derive(Debug)]
pub(super) struct Ranked<'a> {
    docs: &'a sled::Tree,
    meta: &'a sled::Tree,
    /// Every node found, `(chunk, slot)` and score, in `(chunk, slot)` order.
    hits: Vec<((u64, u32), f32)>,
    /// The chunks not read yet, the most promising on top.
    pending: BinaryHeap<Pending>,
    /// Named candidates not handed out yet, the best on top.
    ready: BinaryHeap<Ready>,
    damaged: bool,
}

impl Ranked<'_> {
    /// Names the hits of chunk `chunk` into `ready`.
    fn read(&mut self, chunk: &Pending) -> Result<()> {
        let record = self
            .docs
            .get(chunk.chunk.to_be_bytes())
            .map_err(|e| Error::storage("reading the search index", e))?;
        // Gone: its nodes were removed since the lists were read.
        let Some(record) = record else {
            return Ok(());
        };
        let Ok(slots) = posting::doc_slots(&record) else {
            self.report_damage();
            return Ok(());
        };
        for &((_, slot), score) in &self.hits[chunk.hits.clone()] {
            let (Some(id), Some(time)) = (slots.id(slot), slots.time(slot)) else {
                continue;
            };
            if let Ok(id) = NodeId::new(id) {
                self.ready.push(Ready { score, time, id });
            }
        }
        Ok(())
    }

    /// Marks the index for a rebuild at the next open (once a walk).
    fn report_damage(&mut self) {
        if std::mem::replace(&mut self.damaged, true) {
            return;
        }
        mark_damaged(self.meta);
    }
}

/// After a search skipped a record it could not read: says so, and marks the
/// index for a rebuild at the next open.
pub(super) fn mark_damaged(meta: &sled::Tree) {
    tracing::warn!(target: "resptree::store", store = "sled", "unreadable search index record skipped; the index is rebuilt at the next open");
    // Best effort: the search's answer stands either way.
    let _ = meta.insert(DAMAGED_KEY, &[1]);
}

impl Iterator for Ranked<'_> {
    type Item = Result<RankedCandidate>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(top) = self.ready.peek() {
                let certain = self.pending.peek().is_none_or(|next| {
                    match top.score.total_cmp(&next.score) {
                        Ordering::Greater => true,
                        // A node of the same time might have a smaller id.
                        Ordering::Equal => top.time > next.bound,
                        Ordering::Less => false,
                    }
                });
                if certain {
                    let best = self.ready.pop()?;
                    return Some(Ok(RankedCandidate::new(
                        best.id,
                        best.score,
                        Timestamp(best.time),
                    )));
                }
            }
            let chunk = self.pending.pop()?;
            if let Err(e) = self.read(&chunk) {
                return Some(Err(e));
            }
        }
    }
}

/// A chunk not read yet: the best score of its hits, the newest time its
/// nodes can have, and where its hits are in [`Ranked::hits`].
#[derive(Debug)]
struct Pending {
    score: f32,
    bound: i64,
    chunk: u64,
    hits: std::ops::Range<usize>,
}

impl Ord for Pending {
    /// Higher score, then newer bound, on top.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(self.bound.cmp(&other.bound))
            .then(other.chunk.cmp(&self.chunk))
    }
}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pending {}

/// A named candidate.
#[derive(Debug)]
struct Ready {
    score: f32,
    time: i64,
    id: NodeId,
}

impl Ord for Ready {
    /// The best (as [`best_first`] ranks) on top of the max-heap.
    fn cmp(&self, other: &Self) -> Ordering {
        best_first(
            (other.score, Timestamp(other.time), &other.id),
            (self.score, Timestamp(self.time), &self.id),
        )
    }
}

impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ready {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ready {}

/// The nodes holding every term, in every group: those that keep a record
/// per term and those that keep buckets.
fn hits(lists: &sled::Tree, terms: &[String], found: &mut Found) -> Result<Hits> {
    let mut hits = list_hits(lists, terms, found)?;
    hits.append(bucket_hits(lists, terms, found)?);
    Ok(hits)
}

/// The nodes holding every term in the groups that keep a record per term.
fn list_hits(lists: &sled::Tree, terms: &[String], found: &mut Found) -> Result<Hits> {
    let read = |e| Error::storage("reading the search index", e);
    let prefixes: Vec<Vec<u8>> = terms
        .iter()
        .map(|t| {
            let mut p = t.as_bytes().to_vec();
            p.push(0);
            p
        })
        .collect();
    let mut iters: Vec<sled::Iter> = prefixes.iter().map(|p| lists.scan_prefix(p)).collect();
    let mut seen: Vec<Vec<(u64, sled::IVec)>> = vec![Vec::new(); iters.len()];
    let shortest = 'probe: loop {
        for (i, iter) in iters.iter_mut().enumerate() {
            match iter.next() {
                None => break 'probe i,
                Some(record) => {
                    let (key, value) = record.map_err(read)?;
                    match group_of(&key, prefixes[i].len()) {
                        Some(group) => seen[i].push((group, value)),
                        None => found.damaged = true,
                    }
                }
            }
        }
    };
    drop(iters);
    let base = std::mem::take(&mut seen[shortest]);
    let seen: Vec<HashMap<u64, sled::IVec>> = seen
        .into_iter()
        .map(|records| records.into_iter().collect())
        .collect();
    let mut hits = Hits::empty(terms.len());
    'groups: for (group, value) in base {
        let Ok(list) = posting::decode_list(&value) else {
            found.damaged = true;
            continue;
        };
        let mut survivors = Hits::new(&list, terms.len(), shortest);
        for (j, prefix) in prefixes.iter().enumerate() {
            if j == shortest || survivors.is_empty() {
                continue;
            }
            let other = match seen[j].get(&group) {
                Some(value) => Some(value.clone()),
                None => lists
                    .get(list_key(&prefix[..prefix.len() - 1], group))
                    .map_err(read)?,
            };
            let Some(other) = other else {
                continue 'groups;
            };
            let Ok(other) = posting::decode_list(&other) else {
                found.damaged = true;
                continue 'groups;
            };
            survivors.intersect(&other, j);
        }
        hits.append_group(group, survivors);
    }
    Ok(hits)
}

/// Names the scored nodes `hits` (in `(chunk, slot)` order): one read of
/// each chunk, and only the named slots' ids checked and copied.
fn name(docs: &sled::Tree, hits: &[((u64, u32), f32)], found: &mut Found) -> Result<()> {
    let read = |e| Error::storage("reading the search index", e);
    let mut at = 0;
    while let Some(&((chunk, _), _)) = hits.get(at) {
        let end = at + hits[at..].partition_point(|((c, _), _)| *c == chunk);
        let record = docs.get(chunk.to_be_bytes()).map_err(read)?;
        let slots = match record.as_deref().map(posting::doc_slots) {
            Some(Ok(slots)) => Some(slots),
            Some(Err(_)) => {
                found.damaged = true;
                None
            }
            None => None,
        };
        if let Some(slots) = slots {
            for &((_, slot), score) in &hits[at..end] {
                if let Some(id) = slots.id(slot).and_then(|id| NodeId::new(id).ok()) {
                    found.candidates.push(Candidate::new(id, score));
                }
            }
        }
        at = end;
    }
    Ok(())
}

/// The nodes holding every term in the groups whose lists are in buckets:
/// each term's bucket of every such group (one prefix scan per bucket
/// level, a record per group), keeping only the groups every term so far is
/// in, intersected posting by posting. A bucket that does not decode is
/// skipped (its group's nodes are not found) and reported in `found`.
fn bucket_hits(lists: &sled::Tree, terms: &[String], found: &mut Found) -> Result<Hits> {
    let read = |e| Error::storage("reading the search index", e);
    // The surviving nodes of each group, once the first term is read.
    let mut groups: Option<BTreeMap<u64, Hits>> = None;
    for (j, term) in terms.iter().enumerate() {
        let term = term.as_bytes();
        let mut lists_of: HashMap<u64, Vec<Posting>> = HashMap::new();
        for level in 1..=MAX_LEVEL {
            for record in lists.scan_prefix(bucket_prefix(level, bucket_of(term, level))) {
                let (key, value) = record.map_err(read)?;
                let Some(group) = group_of(&key, 4) else {
                    found.damaged = true;
                    continue;
                };
                if groups.as_ref().is_some_and(|g| !g.contains_key(&group)) {
                    continue;
                }
                match posting::bucket_list(&value, term) {
                    Ok(Some(list)) => {
                        lists_of.insert(group, list);
                    }
                    Ok(None) => {}
                    Err(_) => found.damaged = true,
                }
            }
        }
        let next: BTreeMap<u64, Hits> = match groups {
            None => lists_of
                .into_iter()
                .map(|(group, list)| (group, Hits::new(&list, terms.len(), j)))
                .collect(),
            Some(current) => current
                .into_iter()
                .filter_map(|(group, mut survivors)| {
                    survivors.intersect(lists_of.get(&group)?, j);
                    (!survivors.is_empty()).then_some((group, survivors))
                })
                .collect(),
        };
        if next.is_empty() {
            return Ok(Hits::empty(terms.len()));
        }
        groups = Some(next);
    }
    let mut hits = Hits::empty(terms.len());
    for (group, survivors) in groups.unwrap_or_default() {
        hits.append_group(group, survivors);
    }
    Ok(hits)
}

/// Nodes found in the lists, `(chunk, slot)`, and their occurrences of each
/// query term, kept flat (a common word finds 10^5 nodes: a vector each cost
/// as much as decoding their postings).
struct Hits {
    /// Query terms per node: `tfs[i * terms + j]` is node `i`'s count of
    /// term `j`.
    terms: usize,
    docs: Vec<(u64, u32)>,
    tfs: Vec<u32>,
    /// The groups the nodes are in (whose time bounds rank them).
    groups: Vec<u64>,
}

impl Hits {
    fn empty(terms: usize) -> Self {
        Self {
            terms,
            docs: Vec::new(),
            tfs: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// The nodes of term `j`'s `list`, with their occurrences of it.
    fn new(list: &[Posting], terms: usize, j: usize) -> Self {
        let mut tfs = vec![0; list.len() * terms];
        for (i, p) in list.iter().enumerate() {
            tfs[i * terms + j] = p.tf;
        }
        Self {
            terms,
            docs: list.iter().map(|p| p.doc()).collect(),
            tfs,
            groups: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Keeps the nodes that `other` (term `j`'s list, sorted, as these are)
    /// also names, recording their occurrences of term `j`. Gallops through
    /// `other`, so a few survivors cost a few probes of a long list.
    fn intersect(&mut self, other: &[Posting], j: usize) {
        let terms = self.terms;
        let (mut from, mut kept) = (0, 0);
        for i in 0..self.docs.len() {
            let doc = self.docs[i];
            from += gallop(&other[from..], doc);
            if let Some(p) = other.get(from).filter(|p| p.doc() == doc) {
                self.docs[kept] = doc;
                self.tfs
                    .copy_within(i * terms..(i + 1) * terms, kept * terms);
                self.tfs[kept * terms + j] = p.tf;
                kept += 1;
            }
        }
        self.docs.truncate(kept);
        self.tfs.truncate(kept * terms);
    }

    fn append(&mut self, mut other: Hits) {
        self.docs.append(&mut other.docs);
        self.tfs.append(&mut other.tfs);
        self.groups.append(&mut other.groups);
    }

    /// Appends the nodes `other` found in `group`.
    fn append_group(&mut self, group: u64, other: Hits) {
        if !other.is_empty() {
            self.groups.push(group);
            self.append(other);
        }
    }

    /// Each node and its score over the first `scored` terms (the words; a
    /// model term is not scored), in `(chunk, slot)` order.
    fn scored(self, scored: usize) -> Vec<((u64, u32), f32)> {
        let mut out: Vec<((u64, u32), f32)> = self
            .docs
            .into_iter()
            .zip(self.tfs.chunks_exact(self.terms.max(1)))
            .map(|(doc, tfs)| (doc, score(tfs.iter().take(scored).copied())))
            .collect();
        out.sort_unstable_by_key(|(doc, _)| *doc);
        out
    }
}

/// How many postings at the start of `list` (sorted) come before `doc`:
/// doubling steps, then a binary search in the last step.
fn gallop(list: &[Posting], doc: (u64, u32)) -> usize {
    let mut step = 1;
    while step <= list.len() && list[step - 1].doc() < doc {
        step *= 2;
    }
    let low = step / 2;
    let high = step.min(list.len());
    low + list[low..high].partition_point(|p| p.doc() < doc)
}

/// Rebuilds the index from the node bodies (schema 4's segments and the own
/// records older nodes may still have), outside any transaction: called at
/// open, before the store is handed to anyone, and redone from scratch if the
/// process dies half way (the caller records the index as current only
/// after it). Returns the number of nodes indexed; bodies that do not decode
/// are skipped (a search never finds them; `ResponseTree::get` reports them).
///
/// Segments are grouped in their order, about [`REINDEX_GROUP`] nodes a group,
/// as a bulk insert groups them; nodes with own records are placed by a hash
/// of their id ([`own_chunk`]) and written at the end.
///
/// # Errors
///
/// [`Error::Storage`] if sled cannot be read or written.
pub(super) fn reindex(trees: &Trees<'_>) -> Result<usize> {
    let write = |e| Error::storage("re-indexing the store for search", e);
    trees.lists.clear().map_err(write)?;
    trees.docs.clear().map_err(write)?;
    let mut indexed = 0;
    let mut group = Group::default();
    for record in trees.segments.iter() {
        let (key, value) = record.map_err(write)?;
        // Unreadable segments are reported by the next load.
        let plain = segment::unpack(&value);
        let (Some(number), Ok(entries)) = (segment_number(&key), segment::decode_unpacked(&plain))
        else {
            continue;
        };
        for entry in entries {
            // A body that does not decode still takes its slot: ids and slots
            // of a chunk follow its segment.
            let indexed_as = codec::decode_body(entry.body)
                .map(|node| self::entry(&node))
                .unwrap_or_default();
            indexed += usize::from(!indexed_as.terms.is_empty());
            group.add(u64::from(number), entry.id, &indexed_as);
        }
        if group.nodes >= REINDEX_GROUP {
            write_group(trees, std::mem::take(&mut group))?;
        }
    }
    write_group(trees, group)?;
    indexed += reindex_own(trees)?;
    Ok(indexed)
}

/// Indexes the nodes with their own records (schema 3 and older).
fn reindex_own(trees: &Trees<'_>) -> Result<usize> {
    let write = |e| Error::storage("re-indexing the store for search", e);
    let count = trees.bodies.len() as u64;
    let chunks = count.div_ceil(OWN_CHUNK_NODES);
    trees
        .meta
        .insert(OWN_CHUNKS_KEY, &chunks.to_le_bytes())
        .map_err(write)?;
    if chunks == 0 {
        return Ok(0);
    }
    // Own-record nodes are few (they only leave), so one pass holds them all.
    let mut groups: BTreeMap<u64, Group> = BTreeMap::new();
    let mut indexed = 0;
    for record in trees.bodies.iter() {
        let (key, value) = record.map_err(write)?;
        let (Ok(id), Ok(node)) = (std::str::from_utf8(&key), codec::decode_body(&value)) else {
            continue;
        };
        let chunk = own_chunk(id, chunks);
        let number = OWN_BASE + (chunk - OWN_BASE) / OWN_GROUP_CHUNKS * OWN_GROUP_CHUNKS;
        let group = groups.entry(number).or_default();
        group.number = Some(number);
        group.add(chunk, id, &entry(&node));
        indexed += 1;
    }
    for group in groups.into_values() {
        write_group(trees, group)?;
    }
    Ok(indexed)
}

fn write_group(trees: &Trees<'_>, group: Group) -> Result<()> {
    let write = |e| Error::storage("re-indexing the store for search", e);
    let (lists, docs) = group.encode();
    let mut batch = sled::Batch::default();
    for (key, value) in lists {
        batch.insert(key, value);
    }
    trees.lists.apply_batch(batch).map_err(write)?;
    let mut batch = sled::Batch::default();
    for (key, value) in docs {
        batch.insert(&key[..], value);
    }
    trees.docs.apply_batch(batch).map_err(write)
}

/// How many own-record chunks the last re-index made (0: none).
fn own_chunks(meta: &sled::Tree) -> Result<u64> {
    let bytes = meta
        .get(OWN_CHUNKS_KEY)
        .map_err(|e| Error::storage("reading the search index state", e))?;
    Ok(bytes
        .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
        .map_or(0, u64::from_le_bytes))
}

/// The chunk of a node with own records: a stable hash of its id.
fn own_chunk(id: &str, chunks: u64) -> u64 {
    OWN_BASE + stable_hash(id.as_bytes()) % chunks.max(1)
}

/// 64-bit FNV-1a, which unlike the process's hashers never changes between
/// builds: what is on disk stays where a later build looks for it.
fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The bucket of `term` at bucket level `level` (1..=[`MAX_LEVEL`]): the top
/// `level` bits of its stable hash.
fn bucket_of(term: &[u8], level: u8) -> u16 {
    let level = u32::from(level.clamp(1, 16));
    u16::try_from(stable_hash(term) >> (64 - level)).unwrap_or(u16::MAX)
}

/// The key of bucket `bucket` of a group of level `level`: the tag, the
/// level, the bucket (big-endian) and the group, so one term's buckets of
/// every group of a level are one prefix scan.
fn bucket_key(level: u8, bucket: u16, group: u64) -> Vec<u8> {
    let mut key = bucket_prefix(level, bucket).to_vec();
    key.extend_from_slice(&group.to_be_bytes());
    key
}

/// The key of a group's time bounds.
fn bounds_key(group: u64) -> [u8; 9] {
    let mut key = [BOUNDS_TAG; 9];
    key[1..].copy_from_slice(&group.to_be_bytes());
    key
}

fn bucket_prefix(level: u8, bucket: u16) -> [u8; 4] {
    let [hi, lo] = bucket.to_be_bytes();
    [BUCKET_TAG, level, hi, lo]
}

/// The key of `term`'s postings list in `group`.
fn list_key(term: &[u8], group: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(term.len() + 9);
    key.extend_from_slice(term);
    key.push(0);
    key.extend_from_slice(&group.to_be_bytes());
    key
}

/// The group of a list's key, after its `prefix_len` bytes of term and NUL.
fn group_of(key: &[u8], prefix_len: usize) -> Option<u64> {
    let bytes = <[u8; 8]>::try_from(key.get(prefix_len..)?).ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// A segment's number from its key (4 bytes, big-endian).
fn segment_number(key: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(key).ok().map(u32::from_be_bytes)
}
