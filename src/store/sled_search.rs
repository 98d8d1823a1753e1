//! The sled store's search index: two sled trees written in the same
//! transaction as the nodes they index (see `docs/store-format.md`).
//!
//! | tree              | key                   | value                                |
//! |-------------------|-----------------------|--------------------------------------|
//! | `search_postings` | term `0x00` node id   | occurrences in the node (`u32` LE)   |
//! | `search_terms`    | node id               | version, then its terms, NUL-separated |
//! | `meta`            | `search_seq`          | the commit the index is current with (`u64` LE) |
//!
//! Terms are the tokeniser's lowercase words ([`crate::search`]), which never
//! hold a NUL byte, plus one term per node for its model (`0x01` + model name).
//! A search scans one postings prefix per term. `search_terms` is what a
//! replacement or a removal reads to delete exactly the node's old postings.
//!
//! `search_seq` is written with every batch. A store where it is missing (made
//! before the index existed) or differs from `commit_seq` (written by a build
//! that did not keep the index) is re-indexed when it is opened.

use sled::transaction::{TransactionalTree, UnabortableTransactionError};

/// What sled's transactional operations return (sled keeps its alias private).
type TxResult<T> = std::result::Result<T, UnabortableTransactionError>;

use crate::error::{Error, Result};
use crate::ids::NodeId;
use crate::node::Node;
use crate::search::document::index_terms;
use crate::search::index::score;
use crate::search::{Candidate, IndexQuery};

use super::{codec, segment};

/// The sled tree of postings.
pub(super) const POSTINGS_TREE: &str = "search_postings";
/// The sled tree of each node's terms.
pub(super) const TERMS_TREE: &str = "search_terms";
/// The `meta` key naming the commit the index is current with.
pub(super) const SEARCH_SEQ_KEY: &[u8] = b"search_seq";

/// The version byte of a `search_terms` value.
const TERMS_VERSION: u8 = 1;
/// How many nodes a re-index writes per sled batch: big enough to amortise a
/// batch, small enough to keep its memory modest.
const REINDEX_CHUNK: usize = 10_000;

/// A node's index records, encoded outside the transaction (which sled may
/// run more than once).
#[derive(Debug)]
pub(super) struct Entry {
    /// `(posting key, occurrences)` per term.
    postings: Vec<(Vec<u8>, [u8; 4])>,
    /// The `search_terms` value.
    terms: Vec<u8>,
}

/// The index records of `node`.
pub(super) fn entry(node: &Node) -> Entry {
    let id = node.id.as_str().as_bytes();
    let found = index_terms(node);
    let mut terms = vec![TERMS_VERSION];
    let mut postings = Vec::with_capacity(found.len());
    for (i, (term, tf)) in found.iter().enumerate() {
        if i > 0 {
            terms.push(0);
        }
        terms.extend_from_slice(term.as_bytes());
        postings.push((posting_key(term.as_bytes(), id), tf.to_le_bytes()));
    }
    Entry { postings, terms }
}

/// Indexes node `id` inside a transaction, first deleting the postings of an
/// earlier node with its id.
pub(super) fn put(
    postings: &TransactionalTree,
    terms: &TransactionalTree,
    id: &str,
    entry: &Entry,
) -> TxResult<()> {
    remove(postings, terms, id)?;
    for (key, tf) in &entry.postings {
        postings.insert(key.as_slice(), &tf[..])?;
    }
    terms.insert(id.as_bytes(), entry.terms.as_slice())?;
    Ok(())
}

/// Deletes node `id`'s postings inside a transaction (nothing if it has none).
pub(super) fn remove(
    postings: &TransactionalTree,
    terms: &TransactionalTree,
    id: &str,
) -> TxResult<()> {
    let Some(old) = terms.remove(id.as_bytes())? else {
        return Ok(());
    };
    // An unreadable record only leaves postings behind; a search checks every
    // candidate's body, so a stale posting can never become a hit.
    for term in decode_terms(&old) {
        postings.remove(posting_key(term, id.as_bytes()))?;
    }
    Ok(())
}

/// Indexes the nodes of a staged chunk (see `sled/staging.rs`), outside any
/// transaction: their terms records first, then their postings, so a crash
/// never leaves a posting that `unstage` cannot find. The nodes are new, so
/// there are no old postings to delete. Until the stage is published the
/// graph does not hold the nodes, and a search drops them.
pub(super) fn stage(
    postings: &sled::Tree,
    terms: &sled::Tree,
    entries: &[(&str, Entry)],
) -> Result<()> {
    let write = |e| Error::storage("indexing staged nodes for search", e);
    let mut term_batch = sled::Batch::default();
    let mut posting_batch = sled::Batch::default();
    for (id, entry) in entries {
        term_batch.insert(id.as_bytes(), entry.terms.as_slice());
        for (key, tf) in &entry.postings {
            posting_batch.insert(key.as_slice(), &tf[..]);
        }
    }
    terms.apply_batch(term_batch).map_err(write)?;
    postings.apply_batch(posting_batch).map_err(write)
}

/// Deletes the postings and terms records of the staged nodes `ids` (an
/// abandoned stage), outside any transaction: postings first, then terms.
pub(super) fn unstage(postings: &sled::Tree, terms: &sled::Tree, ids: &[&str]) -> Result<()> {
    let write = |e| Error::storage("removing staged nodes from the search index", e);
    let mut posting_batch = sled::Batch::default();
    let mut term_batch = sled::Batch::default();
    for id in ids {
        if let Some(old) = terms.get(id.as_bytes()).map_err(write)? {
            for term in decode_terms(&old) {
                posting_batch.remove(posting_key(term, id.as_bytes()));
            }
        }
        term_batch.remove(id.as_bytes());
    }
    postings.apply_batch(posting_batch).map_err(write)?;
    terms.apply_batch(term_batch).map_err(write)
}

/// The candidates for `query`: the nodes holding every term.
///
/// The postings lists are read in lockstep until the shortest one ends; its
/// nodes are then looked up in the other lists one key at a time. A search
/// thus costs about the length of the rarest list, times the number of terms,
/// however common the other terms are.
pub(super) fn query(postings: &sled::Tree, query: &IndexQuery) -> Result<Vec<Candidate>> {
    let read = |e| Error::storage("reading the search index", e);
    let terms = query.index_terms();
    let prefixes: Vec<Vec<u8>> = terms
        .iter()
        .map(|t| posting_key(t.as_bytes(), b""))
        .collect();
    let mut lists: Vec<sled::Iter> = prefixes.iter().map(|p| postings.scan_prefix(p)).collect();
    let mut seen: Vec<Vec<(sled::IVec, sled::IVec)>> = vec![Vec::new(); lists.len()];
    let shortest = 'probe: loop {
        for (i, list) in lists.iter_mut().enumerate() {
            match list.next() {
                None => break 'probe i,
                Some(entry) => seen[i].push(entry.map_err(read)?),
            }
        }
        if lists.is_empty() {
            return Ok(Vec::new());
        }
    };
    drop(lists);
    let base = std::mem::take(&mut seen[shortest]);
    drop(seen);
    let scored = query.terms.len();
    let mut out = Vec::with_capacity(base.len());
    'nodes: for (key, value) in base {
        let id_bytes = &key[prefixes[shortest].len()..];
        let mut tfs = Vec::with_capacity(prefixes.len());
        for (j, prefix) in prefixes.iter().enumerate() {
            if j == shortest {
                tfs.push(decode_tf(&value));
                continue;
            }
            let mut other = prefix.clone();
            other.extend_from_slice(id_bytes);
            match postings.get(&other).map_err(read)? {
                Some(tf) => tfs.push(decode_tf(&tf)),
                None => continue 'nodes,
            }
        }
        let Some(id) = std::str::from_utf8(id_bytes)
            .ok()
            .and_then(|s| NodeId::new(s).ok())
        else {
            continue;
        };
        out.push(Candidate::new(id, score(tfs.into_iter().take(scored))));
    }
    Ok(out)
}

/// Rebuilds the index from the node bodies (schema 4's segments and the own
/// records older nodes may still have), outside any transaction: called at
/// open, before the store is handed to anyone, and redone from scratch if the
/// process dies half way (`search_seq` is written only after it). Returns the
/// number of nodes indexed; bodies that do not decode are skipped (a search
/// never finds them; `ResponseTree::get` reports them).
pub(super) fn reindex(
    bodies: &sled::Tree,
    segments: &sled::Tree,
    postings: &sled::Tree,
    terms: &sled::Tree,
) -> Result<usize> {
    let write = |e| Error::storage("re-indexing the store for search", e);
    postings.clear().map_err(write)?;
    terms.clear().map_err(write)?;
    let mut batches = Reindex::default();
    for record in bodies.iter() {
        let (key, value) = record.map_err(write)?;
        batches.add(&key, &value, postings, terms)?;
    }
    for record in segments.iter() {
        let (_, value) = record.map_err(write)?;
        // An unreadable segment is reported by the next load.
        let Ok(entries) = segment::decode(&value) else {
            continue;
        };
        for entry in entries {
            batches.add(entry.id.as_bytes(), entry.body, postings, terms)?;
        }
    }
    batches.flush(postings, terms)?;
    Ok(batches.indexed)
}

/// The postings and terms of a re-index, written in chunks of [`REINDEX_CHUNK`] nodes.
#[derive(Default)]
struct Reindex {
    postings: sled::Batch,
    terms: sled::Batch,
    indexed: usize,
    pending: usize,
}

impl Reindex {
    fn add(
        &mut self,
        id: &[u8],
        body: &[u8],
        postings: &sled::Tree,
        terms: &sled::Tree,
    ) -> Result<()> {
        let Ok(node) = codec::decode_body(body) else {
            return Ok(());
        };
        let entry = entry(&node);
        for (key, tf) in entry.postings {
            self.postings.insert(key, &tf[..]);
        }
        self.terms.insert(id, entry.terms);
        self.indexed += 1;
        self.pending += 1;
        if self.pending == REINDEX_CHUNK {
            self.flush(postings, terms)?;
        }
        Ok(())
    }

    fn flush(&mut self, postings: &sled::Tree, terms: &sled::Tree) -> Result<()> {
        let write = |e| Error::storage("re-indexing the store for search", e);
        postings
            .apply_batch(std::mem::take(&mut self.postings))
            .map_err(write)?;
        terms
            .apply_batch(std::mem::take(&mut self.terms))
            .map_err(write)?;
        self.pending = 0;
        Ok(())
    }
}

fn posting_key(term: &[u8], id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(term.len() + 1 + id.len());
    key.extend_from_slice(term);
    key.push(0);
    key.extend_from_slice(id);
    key
}

fn decode_terms(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = match value.split_first() {
        Some((&TERMS_VERSION, rest)) if !rest.is_empty() => rest,
        _ => &[],
    };
    body.split(|b| *b == 0).filter(|t| !t.is_empty())
}

/// An occurrence count; anything but 4 bytes reads as 1 (it is only a score).
fn decode_tf(bytes: &[u8]) -> u32 {
    <[u8; 4]>::try_from(bytes).map_or(1, u32::from_le_bytes)
}
