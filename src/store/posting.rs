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
//! A **document chunk** (the nodes one chunk number stands for):
//!
//! ```text
//! u8  version (1)
//! varint group (whose postings lists name this chunk)
//! varint number of slots
//! per slot: varint id length (0 = the node was removed or replaced), id bytes
//! ```
//!
//! A record must be consumed exactly; trailing bytes are corruption. Decoders
//! return a reason instead of panicking on any input.

/// The version byte of a postings list (1 was the per-node layout).
const LIST_VERSION: u8 = 2;
/// The version byte of a document chunk.
const DOCS_VERSION: u8 = 1;

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
    let version = r.u8()?;
    if version != LIST_VERSION {
        return Err(format!(
            "postings version {version}, this build reads version {LIST_VERSION}"
        ));
    }
    let count = r.varint()?;
    // Each posting takes at least 3 bytes: refuse a count the bytes cannot
    // hold before reserving memory for it.
    if count > (r.remaining() / 3) as u64 {
        return Err(format!(
            "{count} postings cannot fit in {} bytes",
            bytes.len()
        ));
    }
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
    pub(crate) ids: Vec<Option<String>>,
}

impl DocChunk {
    /// The slot of node `id`, if the chunk still holds it.
    pub(crate) fn slot_of(&self, id: &str) -> Option<u32> {
        let slot = self.ids.iter().position(|s| s.as_deref() == Some(id))?;
        u32::try_from(slot).ok()
    }

    /// The node in `slot`, if any.
    pub(crate) fn id(&self, slot: u32) -> Option<&str> {
        self.ids.get(slot as usize)?.as_deref()
    }

    /// Whether every node of the chunk is gone.
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.iter().all(Option::is_none)
    }
}

/// Encodes a document chunk.
pub(crate) fn encode_docs<'a>(
    group: u64,
    ids: impl ExactSizeIterator<Item = Option<&'a str>>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + ids.len() * 56);
    out.push(DOCS_VERSION);
    push_varint(&mut out, group);
    push_varint(&mut out, ids.len() as u64);
    for id in ids {
        let id = id.unwrap_or("");
        push_varint(&mut out, id.len() as u64);
        out.extend_from_slice(id.as_bytes());
    }
    out
}

/// Decodes a document chunk.
pub(crate) fn decode_docs(bytes: &[u8]) -> Result<DocChunk, String> {
    let mut r = Cursor::new(bytes);
    let version = r.u8()?;
    if version != DOCS_VERSION {
        return Err(format!(
            "document chunk version {version}, this build reads version {DOCS_VERSION}"
        ));
    }
    let group = r.varint()?;
    let count = r.varint()?;
    // Every slot takes at least a byte: refuse a count the bytes cannot hold
    // before reserving memory for it.
    if count > r.remaining() as u64 {
        return Err(format!("{count} slots cannot fit in {} bytes", bytes.len()));
    }
    let mut ids = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = usize::try_from(r.varint()?).map_err(|_| "id length out of range")?;
        let id = std::str::from_utf8(r.take(len)?).map_err(|e| format!("id is not UTF-8: {e}"))?;
        ids.push((!id.is_empty()).then(|| id.to_owned()));
    }
    if r.remaining() != 0 {
        return Err(format!("{} trailing bytes", r.remaining()));
    }
    Ok(DocChunk { group, ids })
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

    #[test]
    fn doc_chunks_round_trip_and_refuse_damage() {
        let bytes = encode_docs(42, [Some("resp_a"), None, Some("resp_c")].into_iter());
        let chunk = decode_docs(&bytes).unwrap();
        assert_eq!(chunk.group, 42);
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
            decode_docs(&[1, 0, 0xff, 0xff, 0x7f])
                .unwrap_err()
                .contains("cannot fit")
        );
        assert!(
            decode_docs(&[1, 0, 1, 2, 0xff, 0xfe])
                .unwrap_err()
                .contains("UTF-8")
        );
        let empty = decode_docs(&encode_docs(1, [None, None].into_iter())).unwrap();
        assert!(empty.is_empty());
    }
}
