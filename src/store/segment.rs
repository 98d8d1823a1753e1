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
//!
//! Since schema 6 a store whose sled pages are not compressed (every store
//! created since) compresses its segments itself ([`Packing::Compressed`]):
//! such a record is
//!
//! ```text
//! u8   version (2)
//! u32  length of the plain record
//! the plain record (version 1, as above) as one zstd frame
//! ```
//!
//! A segment that would not get smaller, or whose plain record is over
//! [`MAX_COMPRESSED`] bytes, is stored plain. Readers call [`unpack`] first,
//! which hands back the plain record either way.

use std::ops::{Deref, Range};

use super::codec::{Reader, push_str};
use super::compress;

/// The format version of a plain segment record.
const SEGMENT_VERSION: u8 = 1;
/// The format version of a compressed segment record.
const COMPRESSED_VERSION: u8 = 2;
/// The bytes before a compressed record's frame: version and plain length.
const COMPRESSED_HEADER_LEN: usize = 5;

/// The largest plain record a store compresses. A compressed record names the
/// length of its plain record, which a reader allocates before decompressing:
/// the bound keeps a damaged length from asking for gigabytes. A segment over
/// it (one that ends with a node that large) is stored plain.
pub(crate) const MAX_COMPRESSED: usize = 16 * 1024 * 1024;

/// How a store writes its segment records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packing {
    /// As plain records: sled compresses its pages (stores created by schemas 3–5).
    Plain,
    /// Compressed with zstd here (stores whose sled pages are not compressed).
    Compressed,
}

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
/// Each record is as `packing` says.
pub(crate) fn pack<'a>(
    entries: impl IntoIterator<Item = Entry<'a>>,
    packing: Packing,
) -> Vec<(Vec<u8>, usize)> {
    let mut segments = Vec::new();
    let mut current = Vec::new();
    let mut count: u32 = 0;
    for entry in entries {
        if count > 0 && (count as usize >= MAX_NODES || current.len() >= MAX_BYTES) {
            let plain = finish(std::mem::take(&mut current), count);
            segments.push((seal(plain, packing), count as usize));
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
        segments.push((seal(finish(current, count), packing), count as usize));
    }
    segments
}

/// Re-encodes a decoded segment as `packing` says (used when a node is
/// removed from one).
pub(crate) fn encode(entries: &[Entry<'_>], packing: Packing) -> Vec<u8> {
    seal(encode_plain(entries), packing)
}

/// A decoded segment as a plain record.
fn encode_plain(entries: &[Entry<'_>]) -> Vec<u8> {
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

/// The record to store for the plain record `plain`: compressed if `packing`
/// says so and that makes it smaller, else `plain` itself.
fn seal(plain: Vec<u8>, packing: Packing) -> Vec<u8> {
    if packing == Packing::Plain || plain.len() > MAX_COMPRESSED {
        return plain;
    }
    let Ok(frame) = compress::compress(&plain) else {
        // zstd refusing is a resource problem, not bad data: plain is correct.
        return plain;
    };
    if frame.len() + COMPRESSED_HEADER_LEN >= plain.len() {
        return plain;
    }
    let mut record = Vec::with_capacity(COMPRESSED_HEADER_LEN + frame.len());
    record.push(COMPRESSED_VERSION);
    // Below MAX_COMPRESSED, so within u32.
    record.extend_from_slice(&u32::try_from(plain.len()).unwrap_or(u32::MAX).to_le_bytes());
    record.extend_from_slice(&frame);
    record
}

/// A stored segment record as its plain record: the stored bytes themselves,
/// or what a compressed record decompressed to.
#[derive(Debug)]
pub(crate) enum Unpacked<B> {
    /// The record was plain.
    Plain(B),
    /// The record was compressed.
    Decompressed(Vec<u8>),
}

impl<B: AsRef<[u8]>> Deref for Unpacked<B> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Unpacked::Plain(bytes) => bytes.as_ref(),
            Unpacked::Decompressed(bytes) => bytes,
        }
    }
}

/// The plain record of the stored segment record `stored`, for [`decode`] and
/// [`find_range`]. A plain record is handed back as it is (those check its
/// version); a compressed one is decompressed, and an error says what is
/// wrong with it.
pub(crate) fn unpack<B: AsRef<[u8]>>(stored: B) -> Result<Unpacked<B>, String> {
    let bytes = stored.as_ref();
    if bytes.first() != Some(&COMPRESSED_VERSION) {
        return Ok(Unpacked::Plain(stored));
    }
    let mut r = Reader::new(bytes);
    r.u8()?;
    let len = u32::from_le_bytes(r.array()?) as usize;
    if len > MAX_COMPRESSED {
        return Err(format!(
            "a compressed segment of {len} bytes (at most {MAX_COMPRESSED} are compressed)"
        ));
    }
    let frame = bytes.get(COMPRESSED_HEADER_LEN..).unwrap_or_default();
    let plain = compress::decompress(frame, len)
        .map_err(|e| format!("a compressed segment that does not decompress: {e}"))?;
    if plain.first() != Some(&SEGMENT_VERSION) {
        return Err("a compressed segment whose record is not a plain segment".to_owned());
    }
    Ok(Unpacked::Decompressed(plain))
}

/// [`decode`] of what [`unpack`] gave: the entries, or the error of either.
pub(crate) fn decode_unpacked<B: AsRef<[u8]>>(
    unpacked: &Result<Unpacked<B>, String>,
) -> Result<Vec<Entry<'_>>, String> {
    match unpacked {
        Ok(plain) => decode(plain),
        Err(reason) => Err(reason.clone()),
    }
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
        let packed = pack(entries.iter().copied(), Packing::Plain);
        assert_eq!(packed.len(), 2);
        assert_eq!((packed[0].1, packed[1].1), (MAX_NODES, 3));
        let first = decode(&packed[0].0).unwrap();
        let second = decode(&packed[1].0).unwrap();
        assert_eq!(first.len(), MAX_NODES);
        assert_eq!([first, second].concat(), entries);
        assert_eq!(
            encode(&entries[..2], Packing::Plain),
            pack(entries[..2].iter().copied(), Packing::Plain)[0].0
        );

        // A large body closes its segment: the next node starts a new one.
        let big = vec![7_u8; MAX_BYTES];
        let packed = pack(
            [entry("a", b"", &big), entry("b", b"", b"x")],
            Packing::Plain,
        );
        assert_eq!(packed.len(), 2);
        assert_eq!(find(&packed[0].0, "a").unwrap(), Some(&big[..]));
        assert_eq!(find(&packed[1].0, "b").unwrap(), Some(&b"x"[..]));
        assert_eq!(find(&packed[1].0, "a").unwrap(), None);
        assert!(pack(std::iter::empty(), Packing::Plain).is_empty());
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
        let bytes = encode(&entries, Packing::Plain);
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
        let good = encode(
            &[entry("a", b"topo", b"body"), entry("b", b"", b"x")],
            Packing::Plain,
        );
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

    /// Entries whose bodies repeat, as a segment of similar nodes does.
    fn similar(ids: &[String]) -> Vec<Entry<'_>> {
        ids.iter()
            .map(|id| {
                entry(
                    id,
                    b"topology",
                    b"{\"role\":\"assistant\",\"text\":\"an answer\"}",
                )
            })
            .collect()
    }

    #[test]
    fn compressed_segments_unpack_to_their_plain_records() {
        let ids: Vec<String> = (0..40).map(|i| format!("resp_{i:04}")).collect();
        let entries = similar(&ids);
        let plain = pack(entries.iter().copied(), Packing::Plain);
        let compressed = pack(entries.iter().copied(), Packing::Compressed);
        assert_eq!(plain.len(), compressed.len());
        for ((plain, n), (stored, m)) in plain.iter().zip(&compressed) {
            assert_eq!(n, m);
            assert_eq!(stored[0], COMPRESSED_VERSION);
            assert!(
                stored.len() * 4 < plain.len(),
                "{} of {}",
                stored.len(),
                plain.len()
            );
            // Unpacking gives the plain record back, byte for byte.
            assert_eq!(&*unpack(stored.as_slice()).unwrap(), plain.as_slice());
            assert!(matches!(
                unpack(stored.as_slice()).unwrap(),
                Unpacked::Decompressed(_)
            ));
            // A plain record unpacks to itself, without a copy.
            assert!(matches!(
                unpack(plain.as_slice()).unwrap(),
                Unpacked::Plain(_)
            ));
        }
        assert_eq!(
            encode(&entries, Packing::Compressed),
            compressed[0].0,
            "one segment: encode and pack agree"
        );
        // A segment that compression would not shrink is stored plain.
        let tiny = encode(&[entry("a", b"", b"x")], Packing::Compressed);
        assert_eq!(tiny, encode(&[entry("a", b"", b"x")], Packing::Plain));
    }

    #[test]
    fn damaged_compressed_segments_are_refused() {
        let ids: Vec<String> = (0..40).map(|i| format!("resp_{i:04}")).collect();
        let good = encode(&similar(&ids), Packing::Compressed);
        assert_eq!(good[0], COMPRESSED_VERSION);
        // (Cut to nothing, it is no longer a compressed record: `decode` refuses it.)
        for cut in 1..good.len() {
            let unpacked = unpack(&good[..cut]);
            assert!(unpacked.is_err(), "cut at {cut}");
        }
        // A recorded length that is off, or beyond what is ever compressed.
        let len = u32::from_le_bytes(good[1..5].try_into().unwrap());
        let mut off = good.clone();
        off[1..5].copy_from_slice(&(len - 1).to_le_bytes());
        assert!(unpack(&off).unwrap_err().contains("does not decompress"));
        let mut huge = good.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(unpack(&huge).unwrap_err().contains("at most"));
        // A frame that decompresses to something that is not a plain segment.
        let not_a_segment = b"\x02not a segment";
        let frame = compress::compress(not_a_segment).unwrap();
        let mut other = vec![COMPRESSED_VERSION];
        other.extend_from_slice(&(not_a_segment.len() as u32).to_le_bytes());
        other.extend_from_slice(&frame);
        assert!(unpack(&other).unwrap_err().contains("not a plain segment"));
    }
}
