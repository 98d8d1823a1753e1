//! Entry points for the fuzz targets in `fuzz/` (and the byte-mutation tests of
//! the integration suite). Not part of the public API: hidden, unstable, and
//! only here because the decoders they reach are private.
//!
//! Each function feeds arbitrary bytes to one decoder and must never panic; a
//! panic (or an abort) is a bug the fuzzer reports.

use crate::client::sse::SseParser;
use crate::client::{ChatChunk, ChatCompletion, Response};
use crate::ids::NodeId;
use crate::store::codec;

/// The SSE parser: `data[0]` picks the chunk size, the rest is the stream.
/// Every event's data is also decoded as the JSON the client expects.
/// Returns the number of events parsed.
pub fn sse(data: &[u8]) -> usize {
    let Some((&size, body)) = data.split_first() else {
        return 0;
    };
    let size = usize::from(size).max(1);
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for chunk in body.chunks(size) {
        if parser.feed(chunk, &mut events).is_err() {
            return events.len();
        }
    }
    events.extend(parser.finish());
    for event in &events {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&event.data) {
            if let Some(response) = value.get("response") {
                let _ =
                    serde_json::from_value::<Response>(response.clone()).map(|r| r.output_text());
            }
        }
        let _ = serde_json::from_str::<ChatChunk>(&event.data);
    }
    events.len()
}

/// The wire decoders: a Responses API `Response` and its accessors, a Chat
/// Completions reply and chunk, and an error envelope.
pub fn wire(data: &[u8]) {
    if let Ok(response) = serde_json::from_slice::<Response>(data) {
        let _ = response.output_text();
        let _ = response.output_json();
        let _ = response.is_completed();
    }
    let _ = serde_json::from_slice::<ChatCompletion>(data);
    let _ = serde_json::from_slice::<ChatChunk>(data);
    if let Ok(envelope) = serde_json::from_slice::<crate::client::wire::ErrorEnvelope>(data) {
        let _ = envelope.error.into_api_error(Some(400)).to_string();
    }
}

/// The store's record decoders. Returns `false` when a record that decodes does
/// not survive a round trip, which is a bug (the fuzz target asserts on it): a
/// topology record must encode back to the same bytes (the format has exactly
/// one encoding per record), a body must decode back to the same [`Node`](crate::Node),
/// and a topology snapshot to the same records.
pub fn store_record(data: &[u8]) -> bool {
    // The id is only carried along; any valid one will do.
    let Ok(id) = NodeId::new("resp_fuzz") else {
        return true;
    };
    let round_trips = match codec::decode_topology(id, data) {
        Ok(topology) => codec::encode_topology(&topology) == data,
        Err(_) => true,
    };
    // A body is JSON, so it has many encodings of one value; what must hold is
    // that a decoded node survives being stored and read back unchanged.
    let body_round_trips = match codec::decode_body(data) {
        Ok(node) => codec::decode_body(&codec::encode_body(&node)).is_ok_and(|again| again == node),
        Err(_) => true,
    };
    let _ = codec::decode_attempt(data);
    let _ = codec::decode_ref(data);
    round_trips && body_round_trips && snapshot_round_trips(data)
}

/// The sled store's snapshot, log, segment and attempt-journal decoders: a
/// snapshot that decodes must encode to one that decodes to the same records
/// (not to the same bytes: a parent may be written by id where a position
/// would do), and a journal file that reads must keep its live attempts
/// through a compaction.
#[cfg(feature = "sled")]
fn snapshot_round_trips(data: &[u8]) -> bool {
    use crate::store::{segment, snapshot};
    let _ = snapshot::decode_log(data);
    if !crate::store::sled::attempt_journal_round_trips(data) {
        return false;
    }
    // A segment that decodes is in its one plain encoding (a compressed
    // record unpacks to it), and compressing its entries unpacks to it too.
    let plain = segment::unpack(data);
    if let Ok(entries) = segment::decode_unpacked(&plain) {
        let plain = plain.as_deref().unwrap_or_default();
        if segment::encode(&entries, segment::Packing::Plain) != plain {
            return false;
        }
        let sealed = segment::encode(&entries, segment::Packing::Compressed);
        if segment::unpack(sealed.as_slice()).map(|again| *again == *plain) != Ok(true) {
            return false;
        }
    }
    match snapshot::decode(data) {
        Ok(found) => snapshot::encode(&found)
            .and_then(|bytes| snapshot::decode(&bytes).ok())
            .is_some_and(|again| again.nodes == found.nodes),
        Err(_) => true,
    }
}

#[cfg(not(feature = "sled"))]
fn snapshot_round_trips(_: &[u8]) -> bool {
    true
}

/// `import::import_json` into an empty in-memory tree.
pub fn import_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tree = crate::ResponseTree::in_memory();
    let _ = crate::import::import_json(&tree, text);
}

/// `import::import_chatgpt` into an empty in-memory tree. Returns `false` when
/// an import that succeeded did not leave exactly the nodes it reported (the
/// fuzz target asserts on it).
pub fn import_chatgpt(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return true;
    };
    let tree = crate::ResponseTree::in_memory();
    match crate::import::import_chatgpt(&tree, text) {
        Ok(report) => report.nodes == tree.len(),
        // An import is atomic: a refused one adds nothing.
        Err(_) => tree.is_empty(),
    }
}
