//! Which segment holds a node: the sled store's in-memory id → segment map.
//!
//! A body is read by id, but since schema 4 bodies live in segment records
//! keyed by number ([`super::segment`]), so the store must know each node's
//! segment. Keeping that on disk would be a record per node again, which is
//! what segments exist to avoid; the topology snapshot and log carry each
//! node's segment instead, and a load builds this map from them.
//!
//! It holds no ids, only a 64-bit hash of each id and the segment number: 12
//! bytes per node (a `HashMap<NodeId, u64>` would take about 50 at a million
//! nodes). A lookup returns every segment whose entry has the id's hash,
//! newest first, and the caller checks the segment for the very id, so a hash
//! collision or an entry left behind by a removal costs a read, never a wrong
//! answer.
//!
//! Since snapshot version 3 the snapshot file carries the sorted entries
//! ([`SegmentIndex::encode_sorted`]), so a reopen reads them instead of
//! hashing and sorting a million ids. The hash is therefore part of the file
//! format: [`hash`] is defined here, not borrowed from a hashing crate whose
//! output may change between versions.

use super::codec::Reader;

/// One node's entry: its id's hash (as two halves, so an entry is 12 bytes
/// with 4-byte alignment) and its segment's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    hi: u32,
    lo: u32,
    segment: u32,
}

impl Slot {
    fn new(hash: u64, segment: u32) -> Self {
        Self {
            hi: (hash >> 32) as u32,
            lo: hash as u32,
            segment,
        }
    }

    fn hash(self) -> u64 {
        (u64::from(self.hi) << 32) | u64::from(self.lo)
    }
}

/// Ids' hashes → segment numbers (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct SegmentIndex {
    /// Sorted by hash.
    sorted: Vec<Slot>,
    /// Entries added since `sorted` was built, sorted by hash too; merged into
    /// `sorted` once they are half as many, so adding stays linear overall.
    recent: Vec<Slot>,
}

/// The hash an id is filed under: stable across builds and platforms,
/// because snapshot files store it (see the module doc). A multiply-xorshift
/// over 8-byte little-endian words of the id, then its length; a collision
/// only costs a segment read, so speed matters more than strength.
pub(crate) fn hash(id: &str) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes = id.as_bytes();
    let mut h: u64 = 0x2545_F491_4F6C_DD1D;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0; 8];
        w.copy_from_slice(word);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K);
        h ^= h >> 32;
    }
    let mut tail = [0; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^= h >> 29;
    h = (h ^ bytes.len() as u64).wrapping_mul(K);
    h ^ (h >> 32)
}

impl SegmentIndex {
    /// An index of `entries`: `(id, segment)`.
    pub(crate) fn new<'a>(entries: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        let mut sorted: Vec<Slot> = entries
            .into_iter()
            .map(|(id, segment)| Slot::new(hash(id), segment))
            .collect();
        sorted.sort_unstable_by_key(|slot| slot.hash());
        Self {
            sorted,
            recent: Vec::new(),
        }
    }

    /// Adds `entries`: `(id, segment)`.
    pub(crate) fn extend<'a>(&mut self, entries: impl IntoIterator<Item = (&'a str, u32)>) {
        let mut added: Vec<Slot> = entries
            .into_iter()
            .map(|(id, segment)| Slot::new(hash(id), segment))
            .collect();
        if added.is_empty() {
            return;
        }
        added.sort_unstable_by_key(|slot| slot.hash());
        self.recent = merge(std::mem::take(&mut self.recent), added);
        if self.recent.len() * 2 > self.sorted.len() {
            self.sorted = merge(
                std::mem::take(&mut self.sorted),
                std::mem::take(&mut self.recent),
            );
        }
    }

    /// Every segment that may hold `id`, newest (highest number) first.
    pub(crate) fn candidates(&self, id: &str) -> Vec<u32> {
        let hash = hash(id);
        let mut out: Vec<u32> = [&self.sorted, &self.recent]
            .into_iter()
            .flat_map(|slots| {
                let start = slots.partition_point(|slot| slot.hash() < hash);
                slots[start..]
                    .iter()
                    .take_while(move |slot| slot.hash() == hash)
                    .map(|slot| slot.segment)
            })
            .collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out.dedup();
        out
    }

    /// How many entries the index holds (removed nodes' entries included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    /// Appends the entries, sorted by hash, as a snapshot file stores them:
    /// a `u64` count, then per entry the hash (`u64`) and the segment
    /// (`u32`), little-endian.
    pub(crate) fn encode_sorted(&self, out: &mut Vec<u8>) {
        let merged;
        let sorted = if self.recent.is_empty() {
            &self.sorted
        } else {
            merged = merge(self.sorted.clone(), self.recent.clone());
            &merged
        };
        out.reserve(8 + sorted.len() * 12);
        out.extend_from_slice(&(sorted.len() as u64).to_le_bytes());
        for slot in sorted {
            out.extend_from_slice(&slot.hash().to_le_bytes());
            out.extend_from_slice(&slot.segment.to_le_bytes());
        }
    }

    /// Reads what [`SegmentIndex::encode_sorted`] wrote, checking the order
    /// (a lookup by binary search would silently miss entries out of it).
    pub(super) fn decode_sorted(r: &mut Reader<'_>) -> Result<Self, String> {
        let count = u64::from_le_bytes(r.array()?);
        let count = usize::try_from(count)
            .ok()
            .filter(|&n| n <= r.remaining() / 12)
            .ok_or_else(|| format!("{count} index entries cannot fit in the file"))?;
        let bytes = r.take(count * 12)?;
        let mut sorted = Vec::with_capacity(count);
        let mut previous = 0;
        for entry in bytes.chunks_exact(12) {
            let mut hash = [0; 8];
            hash.copy_from_slice(&entry[..8]);
            let mut segment = [0; 4];
            segment.copy_from_slice(&entry[8..]);
            let slot = Slot::new(u64::from_le_bytes(hash), u32::from_le_bytes(segment));
            if slot.hash() < previous {
                return Err("segment index entries out of order".into());
            }
            previous = slot.hash();
            sorted.push(slot);
        }
        Ok(Self {
            sorted,
            recent: Vec::new(),
        })
    }
}

/// Merges two runs sorted by hash into one.
fn merge(a: Vec<Slot>, b: Vec<Slot>) -> Vec<Slot> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.hash() <= y.hash() => a.next(),
            (Some(_), Some(_)) | (None, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_every_segment_newest_first() {
        let mut index = SegmentIndex::new([("a", 1), ("b", 1), ("c", 2)]);
        assert_eq!(index.candidates("a"), vec![1]);
        assert_eq!(index.candidates("c"), vec![2]);
        assert!(index.candidates("zz").is_empty());
        // A node stored again (replaced) has two entries: the newer comes first.
        index.extend([("a", 7), ("d", 7)]);
        assert_eq!(index.candidates("a"), vec![7, 1]);
        assert_eq!(index.candidates("d"), vec![7]);
        // Many additions are merged into the sorted part and stay findable.
        let ids: Vec<String> = (0..1000).map(|i| format!("id{i}")).collect();
        for (i, chunk) in ids.chunks(100).enumerate() {
            index.extend(chunk.iter().map(|id| (id.as_str(), 10 + i as u32)));
        }
        assert_eq!(index.len(), 1005);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(index.candidates(id), vec![10 + (i / 100) as u32], "{id}");
        }
        assert_eq!(index.candidates("a"), vec![7, 1]);
        assert!(index.sorted.windows(2).all(|w| w[0].hash() <= w[1].hash()));
    }
}
