//! What makes reopening a large sled store fast: a **topology snapshot** (every
//! node's topology in one file, parents as positions instead of ids) plus a
//! **topology log** (per batch, the topology records it wrote or removed).
//!
//! A reopen reads the snapshot and replays the log written after it, instead of
//! visiting a million sled records, and it gets each node's parent as a position,
//! so the graph is built without looking parents up by id. Both are *derived*
//! data: the per-node `topology` records stay the source of truth, and whenever
//! the snapshot is missing, stale or damaged the store falls back to scanning
//! them. See `docs/store-format.md` for the layout and the rules that keep the
//! two consistent.
//!
//! This module only encodes and decodes; [`super::sled`] decides when to read and
//! write.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use foldhash::HashMapExt as _;

use crate::ids::NodeId;
use crate::node::Timestamp;

use super::Topology;
use super::codec::{self, Reader, push_str};
use super::segment_index::SegmentIndex;

/// "No position": a root, a parent outside the snapshot, or one not known.
pub(crate) const NO_PARENT: u32 = u32::MAX;
/// In a snapshot file: the parent is not in the snapshot; its id follows.
const NAMED_PARENT: u32 = u32::MAX - 1;

/// The first bytes of a snapshot file.
const MAGIC: &[u8; 8] = b"RTTOPO\r\n";
/// The format version of a snapshot file. Version 2 (schema 4) adds each
/// node's segment; version 3 adds the segment index after the records (its
/// entries sorted, so a reopen reads it instead of hashing and sorting every
/// id). Versions 1 (every node in its own records) and 2 still read.
const SNAPSHOT_VERSION: u8 = 3;
/// The format version of a snapshot pointer.
const POINTER_VERSION: u8 = 1;
/// The format version of a topology log entry. Version 2 (schema 4) adds each
/// stored node's segment; version 1 entries still read.
const LOG_VERSION: u8 = 2;

/// The segment number of a node kept in its own records (`topology` and
/// `bodies`, as schema 3 and older wrote every node), not in a segment.
pub(crate) const OWN_RECORDS: u32 = 0;

/// Topology records with each parent's position among them, as a snapshot
/// decodes. `parents[i]` is the index in `nodes` of `nodes[i]`'s parent, or
/// [`NO_PARENT`]; `segments[i]` is the segment holding `nodes[i]`
/// ([`OWN_RECORDS`] if none). `index`, when a version 3 snapshot carried it,
/// is the segment index of `nodes` as the snapshot holds them.
#[derive(Debug, Default)]
pub(crate) struct Positioned {
    pub(crate) nodes: Vec<Topology>,
    pub(crate) parents: Vec<u32>,
    pub(crate) segments: Vec<u32>,
    pub(crate) index: Option<SegmentIndex>,
}

impl Positioned {
    /// The segment index of the nodes in segments.
    pub(crate) fn segment_index(&self) -> SegmentIndex {
        SegmentIndex::new(
            self.nodes
                .iter()
                .zip(&self.segments)
                .filter(|&(_, &number)| number != OWN_RECORDS)
                .map(|(t, &number)| (t.id.as_str(), number)),
        )
    }
}

/// Finds each record's parent among `nodes`: returns every parent's position
/// ([`NO_PARENT`] for roots and parents not among them), and makes each parent
/// found share its record's id allocation, which the graph build checks
/// positions against (and which frees the scan's copies of parent ids).
pub(crate) fn position_parents(nodes: &mut [Topology]) -> Vec<u32> {
    let Some(count) = u32::try_from(nodes.len())
        .ok()
        .filter(|&n| n < NAMED_PARENT)
    else {
        return vec![NO_PARENT; nodes.len()];
    };
    let mut position = foldhash::HashMap::with_capacity(nodes.len());
    position.extend(nodes.iter().zip(0..count).map(|(t, i)| (t.id.as_str(), i)));
    let parents: Vec<u32> = nodes
        .iter()
        .map(|t| {
            t.parent
                .as_ref()
                .and_then(|p| position.get(p.as_str()).copied())
                .unwrap_or(NO_PARENT)
        })
        .collect();
    drop(position);
    for (i, &at) in parents.iter().enumerate() {
        if at != NO_PARENT {
            nodes[i].parent = Some(nodes[at as usize].id.clone());
        }
    }
    parents
}

/// Encodes records as a snapshot file: a parent at a known position is written
/// as that position, any other by id. `None` if there are too many nodes for
/// 32-bit positions (4 billion), in which case the store simply keeps scanning.
pub(crate) fn encode(found: &Positioned) -> Option<Vec<u8>> {
    let count = u32::try_from(found.nodes.len())
        .ok()
        .filter(|&n| n < NAMED_PARENT)?;
    // ~ id + timestamp + parent position + context count.
    let mut out = Vec::with_capacity(17 + found.nodes.len() * 72);
    out.extend_from_slice(MAGIC);
    out.push(SNAPSHOT_VERSION);
    out.extend_from_slice(&u64::from(count).to_le_bytes());
    for (i, t) in found.nodes.iter().enumerate() {
        push_str(&mut out, t.id.as_str());
        out.extend_from_slice(&t.created_at.as_millis().to_le_bytes());
        // A position is written only if it names this very parent.
        let at = found
            .parents
            .get(i)
            .copied()
            .filter(|&at| at < count)
            .filter(|&at| {
                let named = &found.nodes[at as usize].id;
                t.parent
                    .as_ref()
                    .is_some_and(|p| p.ptr_eq(named) || p == named)
            });
        match (&t.parent, at) {
            (None, _) => out.extend_from_slice(&NO_PARENT.to_le_bytes()),
            (Some(_), Some(at)) => out.extend_from_slice(&at.to_le_bytes()),
            (Some(p), None) => {
                out.extend_from_slice(&NAMED_PARENT.to_le_bytes());
                push_str(&mut out, p.as_str());
            }
        }
        let contexts = u16::try_from(t.extra_context.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&contexts.to_le_bytes());
        for c in t.extra_context.iter().take(usize::from(contexts)) {
            push_str(&mut out, c.as_str());
        }
        let segment = found.segments.get(i).copied().unwrap_or(OWN_RECORDS);
        out.extend_from_slice(&segment.to_le_bytes());
    }
    // Built fresh from the records rather than taken from `found.index`: an
    // index kept in memory also holds entries of removed nodes.
    found.segment_index().encode_sorted(&mut out);
    Some(out)
}

/// Decodes a snapshot file. Parents found by position share their id's
/// allocation with the parent record.
pub(crate) fn decode(bytes: &[u8]) -> Result<Positioned, String> {
    let mut r = Reader::new(bytes);
    if r.take(MAGIC.len())? != MAGIC {
        return Err("not a topology snapshot".into());
    }
    let version = r.u8()?;
    if !(1..=SNAPSHOT_VERSION).contains(&version) {
        return Err(format!(
            "snapshot version {version}, this build reads up to {SNAPSHOT_VERSION}"
        ));
    }
    let count = u64::from_le_bytes(r.array()?);
    // Every record takes at least 16 bytes: refuse a count the bytes cannot hold
    // before reserving memory for it.
    let count = usize::try_from(count)
        .ok()
        .filter(|&n| n <= r.remaining() / 16)
        .ok_or_else(|| format!("{count} nodes cannot fit in {} bytes", bytes.len()))?;
    let mut out = Positioned {
        nodes: Vec::with_capacity(count),
        parents: Vec::with_capacity(count),
        segments: Vec::with_capacity(count),
        index: None,
    };
    for _ in 0..count {
        let id = node_id(r.str()?)?;
        let created_at = Timestamp(i64::from_le_bytes(r.array()?));
        let mut parent = None;
        let position = match u32::from_le_bytes(r.array()?) {
            NAMED_PARENT => {
                parent = Some(node_id(r.str()?)?);
                NO_PARENT
            }
            NO_PARENT => NO_PARENT,
            i if (i as usize) < count => i,
            i => return Err(format!("parent position {i} out of range")),
        };
        let contexts = u16::from_le_bytes(r.array()?);
        let mut extra_context = Vec::with_capacity(usize::from(contexts));
        for _ in 0..contexts {
            extra_context.push(node_id(r.str()?)?);
        }
        let segment = if version == 1 {
            OWN_RECORDS
        } else {
            u32::from_le_bytes(r.array()?)
        };
        out.segments.push(segment);
        out.nodes.push(Topology {
            id,
            parent,
            extra_context,
            created_at,
        });
        out.parents.push(position);
    }
    if version >= 3 {
        out.index = Some(SegmentIndex::decode_sorted(&mut r)?);
    }
    if r.remaining() != 0 {
        return Err(format!("{} trailing bytes", r.remaining()));
    }
    for i in 0..count {
        let position = out.parents[i];
        if position != NO_PARENT {
            out.nodes[i].parent = Some(out.nodes[position as usize].id.clone());
        }
    }
    Ok(out)
}

fn node_id(s: &str) -> Result<NodeId, String> {
    NodeId::new(s).map_err(|e| e.to_string())
}

/// Where the current snapshot is and what it covers: kept in the sled
/// database, so it changes atomically with the records it summarises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pointer {
    /// Names the file: `topology-<generation>.snapshot`.
    pub(crate) generation: u64,
    /// The snapshot holds every batch up to this commit, and maybe some later
    /// ones (replaying those again is harmless).
    pub(crate) seq: u64,
    /// The file's length in bytes.
    pub(crate) len: u64,
    /// [`checksum`] of the file.
    pub(crate) checksum: u64,
}

impl Pointer {
    /// The snapshot of a new store: no nodes and no file (generation 0). Its
    /// log is complete from the first commit, so a load replays it all.
    pub(crate) const EMPTY: Self = Self {
        generation: 0,
        seq: 0,
        len: 0,
        checksum: 0,
    };

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(33);
        out.push(POINTER_VERSION);
        for n in [self.generation, self.seq, self.len, self.checksum] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != POINTER_VERSION {
            return Err(format!("snapshot pointer version {version}"));
        }
        let mut field = || r.array().map(u64::from_le_bytes);
        let pointer = Self {
            generation: field()?,
            seq: field()?,
            len: field()?,
            checksum: field()?,
        };
        if r.remaining() != 0 {
            return Err("trailing bytes".into());
        }
        Ok(pointer)
    }

    /// The snapshot file in the store's directory `dir`.
    pub(crate) fn file(&self, dir: &Path) -> PathBuf {
        dir.join(format!("topology-{}.snapshot", self.generation))
    }
}

/// Reads the snapshot `pointer` names, checking its length and checksum.
pub(crate) fn read(dir: &Path, pointer: &Pointer) -> Result<Positioned, String> {
    if *pointer == Pointer::EMPTY {
        return Ok(Positioned::default());
    }
    let file = pointer.file(dir);
    let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    if bytes.len() as u64 != pointer.len || checksum(&bytes) != pointer.checksum {
        return Err(format!("{} is damaged", file.display()));
    }
    decode(&bytes)
}

/// A snapshot file read and decoded before the store's pointer could be read
/// (see [`read_ahead`]): usable only if it is the file the pointer names.
#[derive(Debug)]
pub(crate) struct ReadAhead {
    generation: u64,
    len: u64,
    checksum: u64,
    found: Positioned,
}

impl ReadAhead {
    /// The decoded snapshot, if it is the file `pointer` names, whole.
    pub(crate) fn into_found(self, pointer: &Pointer) -> Option<Positioned> {
        (pointer.generation == self.generation
            && pointer.len == self.len
            && pointer.checksum == self.checksum)
            .then_some(self.found)
    }
}

/// Reads and decodes the snapshot file in `dir` while the database is still
/// being opened, which holds the pointer (sled's open and the decoding are a
/// reopen's two largest steps; this lets them share the two cores). `None`
/// unless `dir` holds exactly one snapshot file and it decodes: a stale or
/// half-written file is caught later by [`ReadAhead::into_found`], which
/// compares it with the pointer.
pub(crate) fn read_ahead(dir: &Path) -> Option<ReadAhead> {
    let mut only = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        let generation = name
            .to_str()
            .and_then(|n| n.strip_prefix("topology-"))
            .and_then(|n| n.strip_suffix(".snapshot"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(generation) = generation {
            if only.replace(generation).is_some() {
                // Several: only the pointer can tell which one is current.
                return None;
            }
        }
    }
    let generation = only?;
    let file = dir.join(format!("topology-{generation}.snapshot"));
    let bytes = std::fs::read(file).ok()?;
    Some(ReadAhead {
        generation,
        len: bytes.len() as u64,
        checksum: checksum(&bytes),
        found: decode(&bytes).ok()?,
    })
}

/// Writes `bytes` as the snapshot file of `generation` in `dir` and makes it
/// durable (temporary file, fsync, rename, fsync of the directory), so a
/// pointer to it is never written before the file can be read back.
pub(crate) fn write(dir: &Path, generation: u64, bytes: &[u8]) -> std::io::Result<Pointer> {
    let pointer = Pointer {
        generation,
        seq: 0,
        len: bytes.len() as u64,
        checksum: checksum(bytes),
    };
    let target = pointer.file(dir);
    let tmp = target.with_extension("snapshot.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &target)?;
    // Make the rename itself durable; not every platform can open a directory.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(pointer)
}

/// Deletes every snapshot file in `dir` but the one of `keep`: files of older
/// generations, and temporary files left by an interrupted write.
pub(crate) fn remove_others(dir: &Path, keep: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let keep = format!("topology-{keep}.snapshot");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("topology-") && name.contains(".snapshot") && name != keep {
            // Best effort: a file left behind only costs disk space.
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A 64-bit checksum that catches damaged or truncated files (not tampering):
/// a multiply-xorshift over 8-byte words, fast enough for 100 MB in tens of
/// milliseconds.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0; 8];
        w.copy_from_slice(word);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K);
        h ^= h >> 29;
    }
    let mut tail = [0; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^ (h >> 32)
}

/// One change in the topology log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LogOp {
    /// The node was stored (added or replaced) with this topology, in this
    /// segment ([`OWN_RECORDS`] for a version 1 entry).
    Put(Topology, u32),
    /// The node was removed.
    Remove(NodeId),
}

const LOG_PUT: u8 = 0;
const LOG_REMOVE: u8 = 1;

/// Encodes one batch's topology changes as a log entry: a version byte, then per
/// change a tag, the id and (for a put) the topology record and the segment.
pub(crate) fn encode_log<'a>(ops: impl IntoIterator<Item = LogChange<'a>>) -> Vec<u8> {
    let mut out = vec![LOG_VERSION];
    for op in ops {
        match op {
            LogChange::Put(id, record, segment) => {
                out.push(LOG_PUT);
                push_str(&mut out, id);
                // Topology records are a few hundred bytes at most.
                let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(record);
                out.extend_from_slice(&segment.to_le_bytes());
            }
            LogChange::Remove(id) => {
                out.push(LOG_REMOVE);
                push_str(&mut out, id);
            }
        }
    }
    out
}

/// A change as the writer has it: ids as strings, topology already encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LogChange<'a> {
    Put(&'a str, &'a [u8], u32),
    Remove(&'a str),
}

/// Decodes a log entry.
pub(crate) fn decode_log(bytes: &[u8]) -> Result<Vec<LogOp>, String> {
    let mut r = Reader::new(bytes);
    let version = r.u8()?;
    if version != 1 && version != LOG_VERSION {
        return Err(format!(
            "log entry version {version}, this build reads up to {LOG_VERSION}"
        ));
    }
    let mut ops = Vec::new();
    while r.remaining() > 0 {
        let tag = r.u8()?;
        let id = node_id(r.str()?)?;
        match tag {
            LOG_PUT => {
                let len = u32::from_le_bytes(r.array()?);
                let record = r.take(len as usize)?;
                let segment = if version == 1 {
                    OWN_RECORDS
                } else {
                    u32::from_le_bytes(r.array()?)
                };
                ops.push(LogOp::Put(codec::decode_topology(id, record)?, segment));
            }
            LOG_REMOVE => ops.push(LogOp::Remove(id)),
            other => return Err(format!("unknown log tag {other}")),
        }
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn rec(name: &str, parent: Option<&str>, context: &[&str], t: i64) -> Topology {
        Topology {
            id: id(name),
            parent: parent.map(id),
            extra_context: context.iter().map(|c| id(c)).collect(),
            created_at: Timestamp(t),
        }
    }

    fn sample() -> Vec<Topology> {
        vec![
            // A child before its parent, a parent outside the snapshot, context.
            rec("c", Some("a"), &["b"], 3),
            rec("a", None, &[], 1),
            rec("b", Some("a"), &[], 2),
            rec("orphan", Some("gone"), &[], 4),
        ]
    }

    /// `nodes` with their parents positioned, ready to encode.
    fn positioned(mut nodes: Vec<Topology>) -> Positioned {
        let parents = position_parents(&mut nodes);
        let segments = (0..nodes.len() as u32).collect();
        Positioned {
            nodes,
            parents,
            segments,
            index: None,
        }
    }

    #[test]
    fn snapshots_round_trip_with_positions() {
        let found = positioned(sample());
        assert_eq!(found.parents, vec![1, NO_PARENT, 1, NO_PARENT]);
        // Positioned parents share the parent record's allocation.
        assert!(
            found.nodes[0]
                .parent
                .as_ref()
                .unwrap()
                .ptr_eq(&found.nodes[1].id)
        );
        let decoded = decode(&encode(&found).unwrap()).unwrap();
        assert_eq!(decoded.nodes, sample());
        assert_eq!(decoded.parents, found.parents);
        assert_eq!(decoded.segments, found.segments);
        let (c, a) = (&decoded.nodes[0], &decoded.nodes[1]);
        assert!(c.parent.as_ref().unwrap().ptr_eq(&a.id));
        // A wrong position is not written: the parent goes by id instead.
        let wrong = Positioned {
            nodes: sample(),
            parents: vec![2, NO_PARENT, 0, 1],
            segments: Vec::new(),
            index: None,
        };
        let decoded = decode(&encode(&wrong).unwrap()).unwrap();
        assert_eq!(decoded.nodes, sample());
        // Without positions, every parent is written by id and still decodes.
        let unpositioned = Positioned {
            nodes: sample(),
            parents: Vec::new(),
            segments: Vec::new(),
            index: None,
        };
        let decoded = decode(&encode(&unpositioned).unwrap()).unwrap();
        assert_eq!(decoded.nodes, sample());
        assert_eq!(decoded.parents, vec![NO_PARENT; 4]);
        assert_eq!(decoded.segments, vec![OWN_RECORDS; 4]);
        assert_eq!(
            decode(&encode(&Positioned::default()).unwrap())
                .unwrap()
                .nodes,
            vec![]
        );
    }

    #[test]
    fn damaged_snapshots_are_refused() {
        let good = encode(&positioned(sample())).unwrap();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode(&trailing).unwrap_err().contains("trailing"));
        let mut newer = good.clone();
        newer[MAGIC.len()] = 9;
        assert!(decode(&newer).unwrap_err().contains("version 9"));
        // A huge count is refused before anything is reserved for it.
        let mut huge = good.clone();
        huge[9..17].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&huge).unwrap_err().contains("cannot fit"));
        // A parent position past the end.
        let mut bad = encode(&positioned(vec![rec("a", None, &[], 1)])).unwrap();
        // The parent position, then the context count (2 bytes), the segment
        // (4) and the segment index (a count of 0: segment 0 is "own records").
        let at = bad.len() - 10 - 8;
        bad[at..at + 4].copy_from_slice(&7_u32.to_le_bytes());
        assert!(decode(&bad).unwrap_err().contains("out of range"));
        assert_ne!(checksum(&good), checksum(&good[..good.len() - 1]));
    }

    #[test]
    fn a_file_read_ahead_is_used_only_if_the_pointer_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = encode(&positioned(sample())).unwrap();
        let pointer = write(dir.path(), 3, &bytes).unwrap();
        let ahead = read_ahead(dir.path()).unwrap();
        assert_eq!(ahead.into_found(&pointer).unwrap().nodes, sample());
        // Another generation, or the same one with other contents: not used.
        let newer = Pointer {
            generation: 4,
            ..pointer
        };
        assert!(read_ahead(dir.path()).unwrap().into_found(&newer).is_none());
        let mut damaged = bytes.clone();
        damaged[20] ^= 1;
        std::fs::write(pointer.file(dir.path()), &damaged).unwrap();
        if let Some(ahead) = read_ahead(dir.path()) {
            assert!(ahead.into_found(&pointer).is_none());
        }
        // Two files: only the pointer can choose, so nothing is read ahead.
        write(dir.path(), 4, &bytes).unwrap();
        assert!(read_ahead(dir.path()).is_none());
    }

    #[test]
    fn files_are_checked_against_their_pointer() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = encode(&positioned(sample())).unwrap();
        let pointer = write(dir.path(), 3, &bytes).unwrap();
        assert_eq!(Pointer::decode(&pointer.encode()).unwrap(), pointer);
        assert_eq!(read(dir.path(), &pointer).unwrap().nodes, sample());
        // Flip one byte: the checksum no longer matches.
        let mut damaged = bytes.clone();
        damaged[20] ^= 1;
        std::fs::write(pointer.file(dir.path()), &damaged).unwrap();
        assert!(read(dir.path(), &pointer).unwrap_err().contains("damaged"));
        // Older generations and leftovers go; the current one stays.
        write(dir.path(), 2, &bytes).unwrap();
        std::fs::write(dir.path().join("topology-4.snapshot.tmp"), b"x").unwrap();
        std::fs::write(dir.path().join("other"), b"x").unwrap();
        remove_others(dir.path(), 3);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["other", "topology-3.snapshot"]);
    }

    #[test]
    fn version_1_snapshots_read_as_nodes_in_their_own_records() {
        // Version 1 (schema 3): the same layout without the segment number.
        let found = positioned(sample());
        let v2 = encode(&found).unwrap();
        let mut v1 = v2[..MAGIC.len() + 9].to_vec();
        v1[MAGIC.len()] = 1;
        let mut r = Reader::new(&v2[v1.len()..]);
        for _ in 0..found.nodes.len() {
            let start = r.pos;
            r.str().unwrap();
            r.take(8).unwrap();
            if u32::from_le_bytes(r.array().unwrap()) == NAMED_PARENT {
                r.str().unwrap();
            }
            for _ in 0..u16::from_le_bytes(r.array().unwrap()) {
                r.str().unwrap();
            }
            v1.extend_from_slice(&r.bytes[start..r.pos]);
            r.take(4).unwrap();
        }
        let decoded = decode(&v1).unwrap();
        assert_eq!(decoded.nodes, sample());
        assert_eq!(decoded.parents, found.parents);
        assert_eq!(decoded.segments, vec![OWN_RECORDS; 4]);
    }

    #[test]
    fn version_3_snapshots_carry_the_segment_index() {
        let found = positioned(sample());
        let bytes = encode(&found).unwrap();
        let decoded = decode(&bytes).unwrap();
        let index = decoded.index.as_ref().unwrap();
        // Segments are 0..4 and segment 0 is "own records": not indexed.
        assert_eq!(index.len(), 3);
        for (i, t) in found.nodes.iter().enumerate().skip(1) {
            assert_eq!(index.candidates(t.id.as_str()), vec![i as u32]);
        }
        assert!(index.candidates(found.nodes[0].id.as_str()).is_empty());
        // The same entries a load would compute by hashing.
        let computed = decoded.segment_index();
        for t in &found.nodes {
            assert_eq!(
                index.candidates(t.id.as_str()),
                computed.candidates(t.id.as_str())
            );
        }
        // Entries out of hash order are refused, not half-found.
        let tail = bytes.len() - 36;
        let mut swapped = bytes.clone();
        swapped[tail..tail + 12].copy_from_slice(&bytes[tail + 12..tail + 24]);
        swapped[tail + 12..tail + 24].copy_from_slice(&bytes[tail..tail + 12]);
        assert!(decode(&swapped).unwrap_err().contains("out of order"));
    }

    #[test]
    fn version_2_snapshots_read_without_an_index() {
        // Version 2 (schema 4 before the index was stored): the same records,
        // no index block.
        let found = positioned(sample());
        let v3 = encode(&found).unwrap();
        let mut v2 = v3[..v3.len() - 8 - 3 * 12].to_vec();
        v2[MAGIC.len()] = 2;
        let decoded = decode(&v2).unwrap();
        assert_eq!(decoded.nodes, sample());
        assert_eq!(decoded.parents, found.parents);
        assert_eq!(decoded.segments, found.segments);
        assert!(decoded.index.is_none());
        // The index a load computes instead finds every node in a segment.
        let index = decoded.segment_index();
        assert_eq!(index.candidates("b"), vec![2]);
    }

    #[test]
    fn log_entries_round_trip() {
        let t = rec("b", Some("a"), &["x"], 7);
        let record = codec::encode_topology(&t);
        let bytes = encode_log([LogChange::Put("b", &record, 9), LogChange::Remove("z")]);
        assert_eq!(
            decode_log(&bytes).unwrap(),
            vec![LogOp::Put(t.clone(), 9), LogOp::Remove(id("z"))]
        );
        for cut in 2..bytes.len() {
            // Cutting between the two changes leaves a valid shorter entry.
            if cut != 1 + 1 + 2 + 1 + 4 + record.len() + 4 {
                assert!(decode_log(&bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
        // A version 1 entry (schema 3) has no segment: its nodes are in their
        // own records.
        let mut v1 = vec![1, LOG_PUT];
        push_str(&mut v1, "b");
        v1.extend_from_slice(&(record.len() as u32).to_le_bytes());
        v1.extend_from_slice(&record);
        assert_eq!(decode_log(&v1).unwrap(), vec![LogOp::Put(t, OWN_RECORDS)]);
        assert!(
            decode_log(b"\x01\x07\x01\x00a")
                .unwrap_err()
                .contains("tag 7")
        );
    }
}
