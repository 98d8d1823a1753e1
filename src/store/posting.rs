//! The records of the sled search index ([`super::sled_search`]): grouped
//! postings lists and document chunks, and their binary encodings.
//!
//! Integers are LEB128 varints (7 bits a byte, low first, at most 10 bytes),
//! so the small numbers a list is made of (a chunk delta of 0 or 1, a slot
//! under 64, a count of 1) take one byte each.
//!
//! A **postings list** (one term in one group):
//!
//! ```text
//! u8  version (2)
//! varint number of postings
//! per posting, in increasing (chunk, slot) order:
//!   varint chunk − the previous posting's chunk (the first: − 0)
//!   varint slot
//!   varint occurrences of the term in the node
//! ```
//!
//! A **bucket** (the lists of every term of one hash bucket in one group; a
//! large group's lists are packed this way, see [`super::sled_search`]):
//!
//! ```text
//! u8  version (3)
//! varint number of terms
//! per term, in increasing byte order: varint term length, term bytes,
//!   varint length of its postings list
//! the terms' postings lists (as above), in the same order, back to back
//! ```
//!
//! A **document chunk** (the nodes one chunk number stands for):
//!
//! ```text
//! u8  version (3)
//! varint group (whose postings lists name this chunk)
//! u8  layout of the group's lists: 0 = one record per term, ℓ ≥ 1 = in 2^ℓ buckets
//! varint number of slots
//! per slot: varint id length (0 = the node was removed or replaced), id bytes,
//!   zigzag varint created_at (ms) − the previous slot's (the first: − 0)
//! ```
//!
//! A group's **time bounds** (the newest node of each of its chunks, so a
//! search can rank by time without reading every chunk):
//!
//! ```text
//! u8  version (1)
//! varint number of chunks
//! per chunk, in increasing order:
//!   varint chunk − the previous entry's chunk (the first: − 0)
//!   zigzag varint newest created_at (ms) − the previous entry's (the first: − 0)
//! ```
//!
//! A record must be consumed exactly; trailing bytes are corruption. Decoders
//! return a reason instead of panicking on any input.

/// The version byte of a postings list (1 was the per-node layout).
const LIST_VERSION: u8 = 2;
/// The version byte of a bucket.
const BUCKET_VERSION: u8 = 3;
/// The version byte of a document chunk (1 had no layout byte, 2 no times).
const DOCS_VERSION: u8 = 3;
/// The version byte of a group's time bounds.
const BOUNDS_VERSION: u8 = 1;

/// One node in one postings list: where the node is (its chunk and slot) and
/// how often the term occurs in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Posting {
    pub(crate) chunk: u64,
    pub(crate) slot: u32,
    pub(crate) tf: u32,
}

impl Posting {
    /// The node this posting names: `(chunk, slot)`.
    pub(crate) fn doc(self) -> (u64, u32) {
        (self.chunk, self.slot)
    }
}

/// Encodes `postings`, which must be in increasing `(chunk, slot)` order (they
/// are sorted here if they are not).
pub(crate) fn encode_list(postings: &mut [Posting]) -> Vec<u8> {
    if !postings.is_sorted() {
        postings.sort_unstable();
    }
    let mut out = Vec::with_capacity(1 + postings.len() * 3);
    out.push(LIST_VERSION);
    push_varint(&mut out, postings.len() as u64);
    let mut previous = 0;
    for p in postings.iter() {
        push_varint(&mut out, p.chunk - previous);
        push_varint(&mut out, u64::from(p.slot));
        push_varint(&mut out, u64::from(p.tf));
        previous = p.chunk;
    }
    out
}

/// Decodes a postings list.
pub(crate) fn decode_list(bytes: &[u8]) -> Result<Vec<Posting>, String> {
    let mut r = Cursor::new(bytes);
    r.version(LIST_VERSION, "postings")?;
    // Each posting takes at least 3 bytes.
    let count = r.count(3, "postings")?;
    let mut out = Vec::with_capacity(count as usize);
    let mut chunk: u64 = 0;
    for _ in 0..count {
        chunk = chunk
            .checked_add(r.varint()?)
            .ok_or("chunk number overflows")?;
        let slot = u32::try_from(r.varint()?).map_err(|_| "slot out of range")?;
        let tf = u32::try_from(r.varint()?).map_err(|_| "occurrences out of range")?;
        let posting = Posting { chunk, slot, tf };
        if out
            .last()
            .is_some_and(|last: &Posting| last.doc() >= posting.doc())
        {
            return Err(format!("posting {} is out of order", out.len()));
        }
        out.push(posting);
    }
    if r.remaining() != 0 {
        return Err(format!("{} trailing bytes", r.remaining()));
    }
    Ok(out)
}

/// The nodes of one chunk: slot `i` is `ids[i]`, `None` once that node was
/// removed or replaced (slots never move, since postings name them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DocChunk {
    /// The group whose postings lists name this chunk.
    pub(crate) group: u64,
    /// How the group's lists are kept: 0 = a record per term, `ℓ` ≥ 1 = in
    /// 2^ℓ bucket records.
    pub(crate) layout: u8,
    pub(crate) ids: Vec<Option<String>>,
    /// Each slot's node's `created_at` (ms), kept for an emptied slot too.
    pub(crate) times: Vec<i64>,
}

impl DocChunk {
    /// The slot of node `id`, if the chunk still holds it.
    pub(crate) fn slot_of(&self, id: &str) -> Option<u32> {
        let slot = self.ids.iter().position(|s| s.as_deref() == Some(id))?;
        u32::try_from(slot).ok()
    }

    /// The node in `slot`, if any (a search reads slots with [`doc_slots`]).
    #[cfg(test)]
    pub(crate) fn id(&self, slot: u32) -> Option<&str> {
        self.ids.get(slot as usize)?.as_deref()
    }

    /// Whether every node of the chunk is gone.
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.iter().all(Option::is_none)
    }
}

/// Encodes a document chunk: each slot's id (`None`: emptied) and time.
pub(crate) fn encode_docs<'a>(
    group: u64,
    layout: u8,
    slots: impl ExactSizeIterator<Item = (Option<&'a str>, i64)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + slots.len() * 58);
    out.push(DOCS_VERSION);
    push_varint(&mut out, group);
    out.push(layout);
    push_varint(&mut out, slots.len() as u64);
    let mut previous = 0_i64;
    for (id, time) in slots {
        let id = id.unwrap_or("");
        push_varint(&mut out, id.len() as u64);
        out.extend_from_slice(id.as_bytes());
        push_varint(&mut out, zigzag(time.wrapping_sub(previous)));
        previous = time;
    }
    out
}

/// Decodes a document chunk.
pub(crate) fn decode_docs(bytes: &[u8]) -> Result<DocChunk, String> {
    let (group, layout, slots) = read_docs(bytes)?;
    let ids = slots
        .slots
        .iter()
        .map(|range| {
            // In range: `read_docs` took these bytes.
            let id = std::str::from_utf8(bytes.get(range.clone()).unwrap_or_default())
                .map_err(|e| format!("id is not UTF-8: {e}"))?;
            Ok((!id.is_empty()).then(|| id.to_owned()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(DocChunk {
        group,
        layout,
        ids,
        times: slots.times,
    })
}

/// A document chunk read in place, for a search: its slots' byte ranges,
/// each id checked only when asked for, since a search names a few of a
/// chunk's nodes and a chunk holds dozens of ids.
#[derive(Debug)]
pub(crate) struct DocSlots<'a> {
    bytes: &'a [u8],
    slots: Vec<std::ops::Range<usize>>,
    times: Vec<i64>,
}

impl<'a> DocSlots<'a> {
    /// The id in `slot`: `None` if the slot is empty or out of range, or its
    /// bytes are not UTF-8 (a damaged chunk names nobody there).
    pub(crate) fn id(&self, slot: u32) -> Option<&'a str> {
        let range = self.slots.get(slot as usize)?.clone();
        let id = std::str::from_utf8(self.bytes.get(range)?).ok()?;
        (!id.is_empty()).then_some(id)
    }

    /// The `created_at` (ms) recorded for `slot`, if it is in range.
    pub(crate) fn time(&self, slot: u32) -> Option<i64> {
        self.times.get(slot as usize).copied()
    }
}

/// Reads a document chunk's slots without copying its ids; checked as
/// [`decode_docs`] checks it, except that an id's UTF-8 is checked by
/// [`DocSlots::id`].
pub(crate) fn doc_slots(bytes: &[u8]) -> Result<DocSlots<'_>, String> {
    read_docs(bytes).map(|(_, _, slots)| slots)
}

/// Reads a document chunk: its group, its layout and its slots (ids not
/// checked for UTF-8), the record consumed exactly.
fn read_docs(bytes: &[u8]) -> Result<(u64, u8, DocSlots<'_>), String> {
    let mut r = Cursor::new(bytes);
    r.version(DOCS_VERSION, "document chunk")?;
    let group = r.varint()?;
    let layout = r.u8()?;
    // Every slot takes at least a byte.
    let count = r.count(1, "slots")?;
    let mut slots = Vec::with_capacity(count as usize);
    let mut times = Vec::with_capacity(count as usize);
    let mut time = 0_i64;
    for _ in 0..count {
        let len = usize::try_from(r.varint()?).map_err(|_| "id length out of range")?;
        let start = r.pos;
        r.take(len)?;
        slots.push(start..r.pos);
        time = time.wrapping_add(unzigzag(r.varint()?));
        times.push(time);
    }
    if r.remaining() != 0 {
        return Err(format!("{} trailing bytes", r.remaining()));
    }
    Ok((
        group,
        layout,
        DocSlots {
            bytes,
            slots,
            times,
        },
    ))
}

/// Encodes a group's time bounds: each chunk (in increasing order) and the
/// newest `created_at` (ms) of the nodes written into it.
pub(crate) fn encode_bounds(bounds: &[(u64, i64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + bounds.len() * 4);
    out.push(BOUNDS_VERSION);
    push_varint(&mut out, bounds.len() as u64);
    let (mut chunk, mut time) = (0_u64, 0_i64);
    for &(c, t) in bounds {
        push_varint(&mut out, c.wrapping_sub(chunk));
        push_varint(&mut out, zigzag(t.wrapping_sub(time)));
        (chunk, time) = (c, t);
    }
    out
}

/// Decodes a group's time bounds, appending `(chunk, newest time)` to `out`.
pub(crate) fn decode_bounds(bytes: &[u8], out: &mut Vec<(u64, i64)>) -> Result<(), String> {
    let mut r = Cursor::new(bytes);
    r.version(BOUNDS_VERSION, "time bounds")?;
    // Every entry takes at least 2 bytes.
    let count = r.count(2, "chunks")?;
    let (mut chunk, mut time) = (0_u64, 0_i64);
    for i in 0..count {
        let delta = r.varint()?;
        if i > 0 && delta == 0 {
            return Err(format!("chunk {i} is out of order"));
        }
        chunk = chunk.checked_add(delta).ok_or("chunk number overflows")?;
        time = time.wrapping_add(unzigzag(r.varint()?));
        out.push((chunk, time));
    }
    if r.remaining() != 0 {
        return Err(format!("{} trailing bytes", r.remaining()));
    }
    Ok(())
}

/// A decoded bucket: each term (in byte order) and its postings list.
pub(crate) type Bucket = Vec<(Vec<u8>, Vec<Posting>)>;

/// A bucket's directory: each term and the byte range of its encoded list.
type Directory<'a> = Vec<(&'a [u8], std::ops::Range<usize>)>;

/// Encodes a bucket from its terms' encoded postings lists, which must be in
/// increasing term order (as a `BTreeMap` yields them).
pub(crate) fn encode_bucket<'a>(terms: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let terms: Vec<(&[u8], &[u8])> = terms.into_iter().collect();
    let size: usize = terms.iter().map(|(t, l)| t.len() + l.len() + 4).sum();
    let mut out = Vec::with_capacity(4 + size);
    out.push(BUCKET_VERSION);
    push_varint(&mut out, terms.len() as u64);
    for (term, list) in &terms {
        push_varint(&mut out, term.len() as u64);
        out.extend_from_slice(term);
        push_varint(&mut out, list.len() as u64);
    }
    for (_, list) in &terms {
        out.extend_from_slice(list);
    }
    out
}

/// The directory of a bucket: each term and the byte range of its encoded
/// list in `bytes`, checked to be in order and to cover the rest exactly.
fn bucket_directory(bytes: &[u8]) -> Result<Directory<'_>, String> {
    let mut r = Cursor::new(bytes);
    r.version(BUCKET_VERSION, "bucket")?;
    // Every term takes at least 3 bytes.
    let count = r.count(3, "terms")?;
    let mut terms: Vec<(&[u8], usize)> = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = usize::try_from(r.varint()?).map_err(|_| "term length out of range")?;
        let term = r.take(len)?;
        let list = usize::try_from(r.varint()?).map_err(|_| "list length out of range")?;
        if terms.last().is_some_and(|(last, _)| *last >= term) {
            return Err(format!("term {} is out of order", terms.len()));
        }
        terms.push((term, list));
    }
    let mut start = r.pos;
    let mut out = Vec::with_capacity(terms.len());
    for (term, len) in terms {
        let end = start
            .checked_add(len)
            .filter(|&e| e <= bytes.len())
            .ok_or("a list runs past the bucket")?;
        out.push((term, start..end));
        start = end;
    }
    if start != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - start));
    }
    Ok(out)
}

/// The postings list of `term` in a bucket (`None`: the bucket does not hold
/// the term), decoding only that list.
pub(crate) fn bucket_list(bytes: &[u8], term: &[u8]) -> Result<Option<Vec<Posting>>, String> {
    let directory = bucket_directory(bytes)?;
    let Ok(at) = directory.binary_search_by(|(t, _)| (*t).cmp(term)) else {
        return Ok(None);
    };
    decode_list(&bytes[directory[at].1.clone()]).map(Some)
}

/// Decodes a whole bucket: each term and its postings list.
pub(crate) fn decode_bucket(bytes: &[u8]) -> Result<Bucket, String> {
    bucket_directory(bytes)?
        .into_iter()
        .map(|(term, range)| Ok((term.to_vec(), decode_list(&bytes[range])?)))
        .collect()
}

/// A signed number as an unsigned one small for small magnitudes (0, −1, 1,
/// −2… → 0, 1, 2, 3…), so a time close to the previous one takes a byte.
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A bounds-checked cursor over a record.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    /// Reads the record's version byte: `expected`, or an error naming
    /// `what` the record is.
    fn version(&mut self, expected: u8, what: &str) -> Result<(), String> {
        let version = self.u8()?;
        if version != expected {
            return Err(format!(
                "{what} version {version}, this build reads version {expected}"
            ));
        }
        Ok(())
    }

    /// Reads a count of entries that take at least `min_bytes` each, refused
    /// when the rest of the record cannot hold them, before anyone reserves
    /// memory for it.
    fn count(&mut self, min_bytes: usize, entries: &str) -> Result<u64, String> {
        let count = self.varint()?;
        if count > (self.remaining() / min_bytes) as u64 {
            return Err(format!(
                "{count} {entries} cannot fit in {} bytes",
                self.bytes.len()
            ));
        }
        Ok(count)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(format!("varint overflows at byte {}", self.pos));
            }
            n |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(format!("varint too long at byte {}", self.pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(chunk: u64, slot: u32, tf: u32) -> Posting {
        Posting { chunk, slot, tf }
    }

    #[test]
    fn lists_round_trip_and_are_small() {
        let mut list = vec![p(7, 3, 1), p(7, 0, 2), p(8, 0, 1), p(1 << 40, 63, 300)];
        let bytes = encode_list(&mut list);
        assert_eq!(decode_list(&bytes).unwrap(), list);
        assert!(list.is_sorted());
        // Three bytes a posting for nodes of one segment.
        let mut dense: Vec<Posting> = (0..64).map(|s| p(12, s, 1)).collect();
        assert_eq!(encode_list(&mut dense).len(), 2 + 64 * 3);
        assert_eq!(decode_list(&encode_list(&mut [])).unwrap(), []);
    }

    #[test]
    fn damaged_lists_are_refused_not_misread() {
        let good = encode_list(&mut [p(1, 0, 1), p(1, 1, 2), p(300, 5, 1)]);
        for cut in 0..good.len() {
            assert!(decode_list(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode_list(&trailing).unwrap_err().contains("trailing"));
        assert!(
            decode_list(&[1, 1, 0, 0, 1])
                .unwrap_err()
                .contains("version 1")
        );
        assert!(
            decode_list(&[2, 9, 0, 0, 1])
                .unwrap_err()
                .contains("cannot fit")
        );
        // A repeated posting (delta 0, same slot) is out of order.
        assert!(
            decode_list(&[2, 2, 1, 0, 1, 0, 0, 1])
                .unwrap_err()
                .contains("order")
        );
        // A varint longer than 64 bits.
        let mut long = vec![2, 1];
        long.extend([0xff; 11]);
        assert!(decode_list(&long).is_err());
        let mut overflow = vec![2, 1];
        overflow.extend([0xff; 9]);
        overflow.extend([0x7f, 0, 1]);
        assert!(decode_list(&overflow).unwrap_err().contains("overflow"));
        // A slot past u32.
        assert!(decode_list(&[2, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x7f, 1]).is_err());
    }

    /// Three slots (the middle one emptied), times out of order.
    fn three() -> [(Option<&'static str>, i64); 3] {
        [
            (Some("resp_a"), 1_700_000_000_500),
            (None, 7),
            (Some("resp_c"), 1_700_000_000_000),
        ]
    }

    #[test]
    fn bounds_round_trip_and_refuse_damage() {
        let bounds = [(3, 1_700_000_000_000), (4, -2), (1 << 40, i64::MAX)];
        let bytes = encode_bounds(&bounds);
        let mut out = vec![(0, 0)];
        decode_bounds(&bytes, &mut out).unwrap();
        assert_eq!(out[1..], bounds);
        for cut in 0..bytes.len() {
            assert!(
                decode_bounds(&bytes[..cut], &mut Vec::new()).is_err(),
                "cut at {cut}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        let err = decode_bounds(&trailing, &mut Vec::new()).unwrap_err();
        assert!(err.contains("trailing"), "{err}");
        // A repeated chunk, a count too large, another version.
        let err = decode_bounds(&[1, 2, 5, 0, 0, 0], &mut Vec::new()).unwrap_err();
        assert!(err.contains("order"), "{err}");
        let err = decode_bounds(&[1, 9, 0, 0], &mut Vec::new()).unwrap_err();
        assert!(err.contains("cannot fit"), "{err}");
        let err = decode_bounds(&[2, 0], &mut Vec::new()).unwrap_err();
        assert!(err.contains("version 2"), "{err}");
        let mut empty = Vec::new();
        decode_bounds(&encode_bounds(&[]), &mut empty).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn doc_slots_read_a_chunk_in_place_as_decode_docs_does() {
        let bytes = encode_docs(42, 6, three().into_iter());
        let slots = doc_slots(&bytes).unwrap();
        let decoded = decode_docs(&bytes).unwrap();
        for slot in 0..4 {
            assert_eq!(slots.id(slot), decoded.id(slot), "slot {slot}");
            assert_eq!(
                slots.time(slot),
                decoded.times.get(slot as usize).copied(),
                "slot {slot}"
            );
        }
        assert_eq!(slots.time(2), Some(1_700_000_000_000));
        for cut in 0..bytes.len() {
            assert!(doc_slots(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(doc_slots(&trailing).unwrap_err().contains("trailing"));
        // An id that is not UTF-8 names nobody; its neighbours still read.
        let bad = [3, 0, 0, 2, 2, 0xff, 0xfe, 2, 1, b'a', 2];
        let slots = doc_slots(&bad).unwrap();
        assert_eq!((slots.id(0), slots.id(1)), (None, Some("a")));
        assert_eq!((slots.time(0), slots.time(1)), (Some(1), Some(2)));
    }

    #[test]
    fn doc_chunks_round_trip_and_refuse_damage() {
        let bytes = encode_docs(42, 6, three().into_iter());
        let chunk = decode_docs(&bytes).unwrap();
        assert_eq!((chunk.group, chunk.layout), (42, 6));
        // Times round-trip in any order and at the ends of the range.
        assert_eq!(chunk.times, three().map(|(_, t)| t));
        let extremes = [(Some("a"), i64::MIN), (Some("b"), i64::MAX), (None, -5)];
        assert_eq!(
            decode_docs(&encode_docs(1, 0, extremes.into_iter()))
                .unwrap()
                .times,
            [i64::MIN, i64::MAX, -5]
        );
        assert_eq!(chunk.slot_of("resp_c"), Some(2));
        assert_eq!(chunk.slot_of("resp_b"), None);
        assert_eq!(
            (chunk.id(0), chunk.id(1), chunk.id(9)),
            (Some("resp_a"), None, None)
        );
        assert!(!chunk.is_empty());
        for cut in 0..bytes.len() {
            assert!(decode_docs(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode_docs(&trailing).unwrap_err().contains("trailing"));
        assert!(
            decode_docs(&[3, 0, 0, 0xff, 0xff, 0x7f])
                .unwrap_err()
                .contains("cannot fit")
        );
        assert!(
            decode_docs(&[3, 0, 0, 1, 2, 0xff, 0xfe, 0])
                .unwrap_err()
                .contains("UTF-8")
        );
        // Version 1 (no layout byte) and 2 (no times) are other formats'.
        assert!(
            decode_docs(&[1, 0, 1, 0])
                .unwrap_err()
                .contains("version 1")
        );
        assert!(
            decode_docs(&[2, 0, 0, 1, 0])
                .unwrap_err()
                .contains("version 2")
        );
        let empty = decode_docs(&encode_docs(1, 0, [(None, 0), (None, 0)].into_iter())).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn buckets_round_trip_find_one_term_and_refuse_damage() {
        let apple = encode_list(&mut [p(1, 0, 1), p(1, 5, 2)]);
        let pear = encode_list(&mut [p(2, 3, 1)]);
        let bytes = encode_bucket([
            (b"apple".as_slice(), apple.as_slice()),
            (b"pear".as_slice(), pear.as_slice()),
        ]);
        assert_eq!(
            bucket_list(&bytes, b"pear").unwrap(),
            Some(vec![p(2, 3, 1)])
        );
        assert_eq!(bucket_list(&bytes, b"apple").unwrap().unwrap().len(), 2);
        assert_eq!(bucket_list(&bytes, b"fig").unwrap(), None);
        let all = decode_bucket(&bytes).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, b"apple");
        assert_eq!(all[1].1, [p(2, 3, 1)]);
        assert!(decode_bucket(&encode_bucket([])).unwrap().is_empty());
        for cut in 0..bytes.len() {
            assert!(bucket_list(&bytes[..cut], b"pear").is_err(), "cut at {cut}");
            assert!(decode_bucket(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode_bucket(&trailing).unwrap_err().contains("trailing"));
        // Terms out of order, and a list length past the end.
        let swapped = encode_bucket([
            (b"pear".as_slice(), pear.as_slice()),
            (b"apple".as_slice(), apple.as_slice()),
        ]);
        assert!(decode_bucket(&swapped).unwrap_err().contains("order"));
        assert!(decode_bucket(&[3, 1, 1, b'a', 0x7f]).is_err());
        assert!(
            decode_bucket(&[3, 0xff, 0x7f])
                .unwrap_err()
                .contains("cannot fit")
        );
        // A list inside that does not decode is an error, not a panic.
        let broken = encode_bucket([(b"x".as_slice(), [2_u8, 9].as_slice())]);
        assert!(bucket_list(&broken, b"x").is_err());
        assert_eq!(bucket_list(&broken, b"y").unwrap(), None);
    }
}
