//! Segment records: the nodes one sled batch stores, packed into a few records.
//!
//! sled 0.34 spends most of a bulk insert's CPU per *record* (about 85 µs per
//! record at 10^5 records, whatever the size; `docs/benchmarks.md`, section 4),
//! so a store that kept two records per node (topology and body, schema 3)
//! could not insert more than 5–6 k nodes per CPU second. Since schema 4 a batch
//! writes its nodes as **segments**: each holds up to [`MAX_NODES`] nodes or
//! about [`MAX_BYTES`] bytes, every node's id, topology record and body. A group
//! commit of a few children or a bulk insert of thousands thus costs one record
//! per segment, not two per node.
//!
//! A segment is found by its number, which the topology snapshot and log carry
//! for every node, and which [`super::segment_index`] maps ids to in memory.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! u8   version (1)
//! u32  number of nodes
//! per node:
//!   u16 id length, id bytes
//!   u32 topology length, the topology record (codec::encode_topology)
//!   u32 body length, the body record (codec::encode_body)
//! ```
//!
//! A segment must be consumed exactly; trailing bytes are corruption.

use std::ops::Range;

use super::codec::{Reader, push_str};

/// The format version of a segment record.
const SEGMENT_VERSION: u8 = 1;

/// A segment holds at most this many nodes. Larger segments cost a read of
/// more bytes for one body; smaller ones more records per insert. Measured
/// with raw sled 0.34 (10^5 small nodes in batches of 5 000, compression on,
/// CPU seconds of the process): one record per node and topology 5.8 k nodes
/// per CPU second; segments of 16 nodes 35.6 k, 32 nodes 48 k, 64 nodes
/// 44.6 k, 256 nodes 46 k. Past 32 the record count no longer matters. sled
/// splits a leaf past 16 entries and writes a page over 128 KiB as a separate
/// blob file, so segments stay well below that.
pub(crate) const MAX_NODES: usize = 64;

/// A segment is closed once it holds this many bytes (a node larger than that
/// gets a segment of its own).
pub(crate) const MAX_BYTES: usize = 32 * 1024;

/// One node as a segment holds it, borrowed from the record's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    pub(crate) id: &'a str,
    pub(crate) topology: &'a [u8],
    pub(crate) body: &'a [u8],
}

/// Packs `entries` into segments of at most [`MAX_NODES`] nodes and about
/// [`MAX_BYTES`] bytes each, in order: each segment's record and how many of
/// the entries it holds.
pub(crate) fn pack<'a>(entries: impl IntoIterator<Item = Entry<'a>>) -> Vec<(Vec<u8>, usize)> {
    let mut segments = Vec::new();
    let mut current = Vec::new();
    let mut count: u32 = 0;
    for entry in entries {
        if count > 0 && (count as usize >= MAX_NODES || current.len() >= MAX_BYTES) {
            segments.push((finish(std::mem::take(&mut current), count), count as usize));
            count = 0;
        }
        if count == 0 {
            current = Vec::with_capacity(MAX_BYTES + 1024);
            current.push(SEGMENT_VERSION);
            current.extend_from_slice(&0_u32.to_le_bytes());
        }
        push_str(&mut current, entry.id);
        push_bytes(&mut current, entry.topology);
        push_bytes(&mut current, entry.body);
        count += 1;
    }
    if count > 0 {
        segments.push((finish(current, count), count as usize));
    }
    segments
}

/// Re-encodes a decoded segment (used when a node is removed from one).
pub(crate) fn encode(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        5 + entries
            .iter()
            .map(|e| 10 + e.id.len() + e.topology.len() + e.body.len())
            .sum::<usize>(),
    );
    out.push(SEGMENT_VERSION);
    // A segment never holds more than MAX_NODES, well within u32.
    let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    for entry in entries.iter().take(count as usize) {
        push_str(&mut out, entry.id);
        push_bytes(&mut out, entry.topology);
        push_bytes(&mut out, entry.body);
    }
    out
}

fn finish(mut segment: Vec<u8>, count: u32) -> Vec<u8> {
    segment[1..5].copy_from_slice(&count.to_le_bytes());
    segment
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Records are a node's JSON: far below 4 GiB. Saturating keeps the encoder
    // total; the decoder then reports the segment as truncated.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&bytes[..len as usize]);
}

/// Decodes every entry of a segment.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<Entry<'_>>, String> {
    let mut r = Reader::new(bytes);
    let version = r.u8()?;
    if version != SEGMENT_VERSION {
        return Err(format!(
            "segment version {version}, this build reads version {SEGMENT_VERSION}"
        ));
    }
    let count = u32::from_le_bytes(r.array()?) as usize;
    // Every entry takes at least 10 bytes: refuse a count the bytes cannot hold
    // before reserving memory for it.
    if count > r.remaining() / 10 {
        return Err(format!("{count} nodes cannot fit in {} bytes", bytes.len()));
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let id = r.str()?;
        let topology = take_bytes(&mut r)?;
        let body = take_bytes(&mut r)?;
        entries.push(Entry { id, topology, body });
    }
    if r.remaining() != 0 {
        return Err(format!("{} trailing bytes", r.remaining()));
    }
    Ok(entries)
}

/// Where the body of node `id` is in a segment (a range of `bytes`), without
/// decoding the other bodies; `Ok(None)` if the segment does not hold it. The
/// reader keeps the segment and decodes the body from it.
///
/// Reads only as far as the entry it looks for, skipping the others by their
/// lengths: no allocation and no UTF-8 check of the ids it passes. A render
/// of a deep chain read from sled looks up every node this way, and decoding
/// the whole segment (up to 64 entries, every id validated) for each of them
/// was a quarter of its time. Damage past the entry found is not seen here;
/// a load, which decodes every segment, reports it.
pub(crate) fn find_range(bytes: &[u8], id: &str) -> Result<Option<Range<usize>>, String> {
    let mut r = Reader::new(bytes);
    let version = r.u8()?;
    if version != SEGMENT_VERSION {
        return Err(format!(
            "segment version {version}, this build reads version {SEGMENT_VERSION}"
        ));
    }
    let count = u32::from_le_bytes(r.array()?);
    for _ in 0..count {
        let (this, body) = next_entry(&mut r)?;
        if this == id.as_bytes() {
            return Ok(Some(body));
        }
    }
    if r.remaining() != 0 {
        return Err(format!("{} trailing bytes", r.remaining()));
    }
    Ok(None)
}

/// [`find_range`], trying first the entries from byte `from` to the end, where
/// `from` is where an entry of `bytes` begins (the end of a range
/// [`find_range`] returned for them): a walk down a chain reads a segment's
/// entries in order, so the next node is usually the next entry, not one
/// found by skipping all those before it.
pub(crate) fn find_range_from(
    bytes: &[u8],
    id: &str,
    from: usize,
) -> Result<Option<Range<usize>>, String> {
    if from > HEADER_LEN {
        let mut r = Reader { bytes, pos: from };
        // Damage here ends the shortcut; the scan from the start reports it.
        while r.remaining() > 0 {
            match next_entry(&mut r) {
                Ok((this, body)) if this == id.as_bytes() => return Ok(Some(body)),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    find_range(bytes, id)
}

/// The bytes before the first entry: version and count.
const HEADER_LEN: usize = 5;

/// Reads the entry at `r`: its id's bytes and where its body is.
fn next_entry<'a>(r: &mut Reader<'a>) -> Result<(&'a [u8], Range<usize>), String> {
    let len = u16::from_le_bytes(r.array()?);
    let this = r.take(usize::from(len))?;
    let topology_len = u32::from_le_bytes(r.array()?);
    r.take(topology_len as usize)?;
    let body = take_bytes(r)?;
    Ok((this, r.pos - body.len()..r.pos))
}

fn take_bytes<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], String> {
    let len = u32::from_le_bytes(r.array()?);
    r.take(len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body [`find_range`] finds.
    fn find<'a>(bytes: &'a [u8], id: &str) -> Result<Option<&'a [u8]>, String> {
        Ok(find_range(bytes, id)?.and_then(|range| bytes.get(range)))
    }

    fn entry<'a>(id: &'a str, topology: &'a [u8], body: &'a [u8]) -> Entry<'a> {
        Entry { id, topology, body }
    }

    #[test]
    fn segments_round_trip_and_split_by_count_and_size() {
        let ids: Vec<String> = (0..(MAX_NODES + 3)).map(|i| format!("n{i}")).collect();
        let entries: Vec<Entry<'_>> = ids.iter().map(|id| entry(id, b"t", b"b")).collect();
        let packed = pack(entries.iter().copied());
        assert_eq!(packed.len(), 2);
        assert_eq!((packed[0].1, packed[1].1), (MAX_NODES, 3));
        let first = decode(&packed[0].0).unwrap();
        let second = decode(&packed[1].0).unwrap();
        assert_eq!(first.len(), MAX_NODES);
        assert_eq!([first, second].concat(), entries);
        assert_eq!(
            encode(&entries[..2]),
            pack(entries[..2].iter().copied())[0].0
        );

        // A large body closes its segment: the next node starts a new one.
        let big = vec![7_u8; MAX_BYTES];
        let packed = pack([entry("a", b"", &big), entry("b", b"", b"x")]);
        assert_eq!(packed.len(), 2);
        assert_eq!(find(&packed[0].0, "a").unwrap(), Some(&big[..]));
        assert_eq!(find(&packed[1].0, "b").unwrap(), Some(&b"x"[..]));
        assert_eq!(find(&packed[1].0, "a").unwrap(), None);
        assert!(pack(std::iter::empty()).is_empty());
    }

    #[test]
    fn a_search_from_a_found_entry_finds_every_entry() {
        let ids: Vec<String> = (0..5).map(|i| format!("n{i}")).collect();
        let bodies: Vec<Vec<u8>> = (0..5_u8).map(|i| vec![i; usize::from(i) + 1]).collect();
        let entries: Vec<Entry<'_>> = ids
            .iter()
            .zip(&bodies)
            .map(|(id, body)| entry(id, b"t", body))
            .collect();
        let bytes = encode(&entries);
        // From the start (0), and from where each entry ends: every id is
        // found where a search from the start finds it, before or after.
        let mut starts = vec![0];
        starts.extend(
            ids.iter()
                .map(|id| find_range(&bytes, id).unwrap().unwrap().end),
        );
        for from in starts {
            for (id, body) in ids.iter().zip(&bodies) {
                let range = find_range_from(&bytes, id, from).unwrap().unwrap();
                assert_eq!(&bytes[range], &body[..], "{id} from {from}");
            }
            assert_eq!(find_range_from(&bytes, "zz", from).unwrap(), None);
        }
    }

    #[test]
    fn damaged_segments_are_refused() {
        let good = encode(&[entry("a", b"topo", b"body"), entry("b", b"", b"x")]);
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode(&trailing).unwrap_err().contains("trailing"));
        let mut newer = good.clone();
        newer[0] = 9;
        assert!(decode(&newer).unwrap_err().contains("version 9"));
        let mut huge = good.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).unwrap_err().contains("cannot fit"));
        // `find` reads up to the entry it looks for: a cut before it, a newer
        // version or trailing bytes after the last entry are errors, never a
        // wrong body.
        for cut in 0..good.len() {
            let found = find(&good[..cut], "b");
            assert!(found.is_err(), "cut at {cut}: {found:?}");
        }
        assert!(find(&huge, "zz").is_err());
        assert!(find(&newer, "a").unwrap_err().contains("version 9"));
        assert!(find(&trailing, "zz").unwrap_err().contains("trailing"));
        assert_eq!(find(&trailing, "b").unwrap(), Some(&b"x"[..]));
    }
}
