//! Record encodings shared by the byte-oriented backends.
//!
//! Every value starts with a version byte ([`RECORD_VERSION`]) so a later build
//! can change an encoding and still read old records, and an older build refuses
//! newer records with a clear error instead of misreading them.
//!
//! Topology records are compact binary, not JSON: reopening a million-node store
//! decodes a million of them, and this is what keeps reopen under a few seconds.
//! Layout (integers little-endian):
//!
//! ```text
//! u8  version (1)
//! i64 created_at (ms)
//! u16 parent length (0 = root), parent id bytes
//! u16 extra-context count, then for each: u16 length, id bytes
//! ```
//!
//! Bodies, refs and attempts are `version byte + JSON` (bodies) or `version byte +
//! id bytes` (refs): they are read one at a time, so clarity wins over size.

#![cfg_attr(not(feature = "sled"), allow(dead_code))]

use crate::ids::NodeId;
use crate::node::{Node, Preview, StoredPreview, Timestamp};

use super::{Attempt, Topology};

/// The version byte every record written by this build starts with.
pub(crate) const RECORD_VERSION: u8 = 1;

/// The schema version of a whole store, kept in its metadata.
///
/// 2: adds the topology log (and the snapshot beside the database).
/// 3: drops the child index; new stores compress sled's pages.
/// 4: new nodes are written packed into segment records (`store::segment`).
/// 5: the attempt journal moves out of sled into `attempts.log`
/// (`store::sled::attempt_log`).
/// 6: segments may be compressed by the store (`store::segment`, version 2);
/// new stores leave sled's pages uncompressed.
/// Older stores are upgraded when they are opened.
pub(crate) const SCHEMA_VERSION: u32 = 6;

/// Encodes a topology record.
pub(crate) fn encode_topology(t: &Topology) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        1 + 8
            + 2
            + t.parent.as_ref().map_or(0, |p| p.as_str().len())
            + 2
            + t.extra_context.len() * 40,
    );
    out.push(RECORD_VERSION);
    out.extend_from_slice(&t.created_at.as_millis().to_le_bytes());
    push_str(&mut out, t.parent.as_ref().map_or("", NodeId::as_str));
    // Ids are at most 256 bytes and a node cannot sensibly have 65 535 context
    // nodes; saturating keeps the encoder total, and the decoder will flag a
    // truncated list rather than misread it.
    let count = u16::try_from(t.extra_context.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    for id in t.extra_context.iter().take(usize::from(count)) {
        push_str(&mut out, id.as_str());
    }
    out
}

/// Decodes a topology record stored under `id`.
pub(crate) fn decode_topology(id: NodeId, bytes: &[u8]) -> Result<Topology, String> {
    let mut r = Reader { bytes, pos: 0 };
    check_version(r.u8()?)?;
    let created_at = Timestamp(i64::from_le_bytes(r.array()?));
    let parent = match r.str()? {
        "" => None,
        p => Some(NodeId::new(p).map_err(|e| format!("bad parent id: {e}"))?),
    };
    let count = u16::from_le_bytes(r.array()?);
    let mut extra_context = Vec::with_capacity(usize::from(count).min(64));
    for _ in 0..count {
        let s = r.str()?;
        extra_context.push(NodeId::new(s).map_err(|e| format!("bad context id: {e}"))?);
    }
    if r.pos != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - r.pos));
    }
    Ok(Topology {
        id,
        parent,
        extra_context,
        created_at,
    })
}

/// Encodes a node body: version byte + JSON.
pub(crate) fn encode_body(node: &Node) -> Vec<u8> {
    versioned_json(node)
}

/// Decodes a node body.
pub(crate) fn decode_body(bytes: &[u8]) -> Result<Node, String> {
    from_versioned_json(bytes)
}

/// Decodes what a one-line view shows of a node body, skipping the rest
/// (`node::Preview`): the texts it holds borrow from `bytes` where the JSON
/// has no escape in them.
pub(crate) fn decode_preview(bytes: &[u8]) -> Result<Preview<'_>, String> {
    from_versioned_json::<StoredPreview<'_>>(bytes).map(|stored| stored.0)
}

/// Encodes an attempt: version byte + JSON.
pub(crate) fn encode_attempt(attempt: &Attempt) -> Vec<u8> {
    versioned_json(attempt)
}

/// Decodes an attempt.
pub(crate) fn decode_attempt(bytes: &[u8]) -> Result<Attempt, String> {
    from_versioned_json(bytes)
}

/// Encodes a ref target: version byte + id bytes.
pub(crate) fn encode_ref(target: &NodeId) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + target.as_str().len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(target.as_str().as_bytes());
    out
}

/// Decodes a ref target.
pub(crate) fn decode_ref(bytes: &[u8]) -> Result<NodeId, String> {
    let (&version, rest) = bytes.split_first().ok_or("empty record")?;
    check_version(version)?;
    let s = std::str::from_utf8(rest).map_err(|e| format!("target is not UTF-8: {e}"))?;
    NodeId::new(s).map_err(|e| e.to_string())
}

fn versioned_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![RECORD_VERSION];
    // Serialising our own types to a Vec cannot fail: they hold no maps with
    // non-string keys and no failing Serialize impls.
    if serde_json::to_writer(&mut out, value).is_err() {
        out.truncate(1);
    }
    out
}

fn from_versioned_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    let (&version, rest) = bytes.split_first().ok_or("empty record")?;
    check_version(version)?;
    serde_json::from_slice(rest).map_err(|e| format!("bad JSON: {e}"))
}

pub(super) fn check_version(version: u8) -> Result<(), String> {
    if version == RECORD_VERSION {
        Ok(())
    } else {
        Err(format!(
            "record version {version}, this build reads version {RECORD_VERSION}"
        ))
    }
}

pub(super) fn push_str(out: &mut Vec<u8>, s: &str) {
    // NodeId guarantees at most 256 bytes, well within u16.
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

/// A bounds-checked cursor over a record.
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Bytes not read yet.
    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(super) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(super) fn str(&mut self) -> Result<&'a str, String> {
        let len = u16::from_le_bytes(self.array()?);
        let bytes = self.take(usize::from(len))?;
        std::str::from_utf8(bytes).map_err(|e| format!("id is not UTF-8: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    #[test]
    fn topology_round_trips() {
        for t in [
            Topology {
                id: id("a"),
                parent: None,
                extra_context: Vec::new(),
                created_at: Timestamp(-5),
            },
            Topology {
                id: id("b"),
                parent: Some(id("resp_parent")),
                extra_context: vec![id("x"), id("ünï")],
                created_at: Timestamp(1_700_000_000_000),
            },
        ] {
            let bytes = encode_topology(&t);
            assert_eq!(decode_topology(t.id.clone(), &bytes).unwrap(), t);
        }
    }

    #[test]
    fn topology_rejects_bad_bytes() {
        let good = encode_topology(&Topology {
            id: id("a"),
            parent: Some(id("p")),
            extra_context: vec![id("c")],
            created_at: Timestamp(1),
        });
        for cut in 0..good.len() {
            assert!(decode_topology(id("a"), &good[..cut]).is_err(), "cut {cut}");
        }
        let mut newer = good.clone();
        newer[0] = 2;
        assert!(
            decode_topology(id("a"), &newer)
                .unwrap_err()
                .contains("version 2")
        );
        let mut trailing = good;
        trailing.push(0);
        assert!(decode_topology(id("a"), &trailing).is_err());
    }

    #[test]
    fn refs_and_bodies_are_versioned() {
        let target = id("resp_1");
        assert_eq!(decode_ref(&encode_ref(&target)).unwrap(), target);
        assert!(decode_ref(b"").is_err());
        assert!(decode_ref(b"\x09resp_1").is_err());
        let node = Node::new(id("n"), None).with_user_text("hi");
        assert_eq!(decode_body(&encode_body(&node)).unwrap(), node);
        assert!(decode_body(b"\x01{not json").is_err());
    }
}
