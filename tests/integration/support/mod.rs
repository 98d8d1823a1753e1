//! Shared helpers for the integration tests.

pub(crate) mod raw_http;
pub(crate) mod shared_store;
pub(crate) mod stores;
pub(crate) mod webdriver;

use std::path::PathBuf;

/// The protocol fixtures: hand-written examples of what the OpenAI API sends.
///
/// This is the repository's own copy of the team's protocol reference; the tests
/// read only this copy, never anything outside the repository. How to refresh it
/// is in `tests/fixtures/protocol/README.md`. The emulator tests, the client tests
/// and the fuzz seeds all read this one directory.
pub(crate) fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protocol")
}

/// A protocol fixture file's text.
pub(crate) fn fixture_text(name: &str) -> String {
    let path = fixtures_dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// The number of property-test cases to run: `PROPTEST_CASES` when it is set,
/// else `default`.
///
/// proptest's `ProptestConfig::default()` reads `PROPTEST_CASES`, but a test that
/// sets `cases` itself would override it; going through here keeps the
/// environment in charge (a quick local run, or a long soak in CI).
pub(crate) fn proptest_cases(default: u32) -> u32 {
    cases_from(std::env::var("PROPTEST_CASES").ok().as_deref(), default)
}

fn cases_from(env: Option<&str>, default: u32) -> u32 {
    env.and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

#[test]
fn proptest_cases_prefers_the_environment() {
    assert_eq!(cases_from(None, 48), 48);
    assert_eq!(cases_from(Some("2000"), 48), 2000);
    // proptest warns and keeps its default on a bad value; so do we.
    assert_eq!(cases_from(Some("lots"), 48), 48);
}

/// Opens the sled database under a store directly, to read or damage records
/// behind the store's back.
///
/// Raw sled does not wait for a lock the way `SledStore::open` does (sled drops
/// its file lock from background threads after the last handle closes), so this
/// waits here, as long as the library would by default.
///
/// sled only opens a database with the compression setting it was created with
/// (stores created by schemas 3–5 compress sled's pages; older and newer ones
/// do not): its `conf` file says which, and a new database gets none, as the
/// library's new stores.
pub(crate) fn open_raw(path: &std::path::Path) -> sled::Db {
    // Not UTF-8 throughout: sled ends the file with a binary checksum.
    let conf = std::fs::read(path.join("conf")).unwrap_or_default();
    let conf = String::from_utf8_lossy(&conf);
    let config = sled::Config::new()
        .path(path)
        .use_compression(conf.contains("use_compression: true"));
    let wait = resptree::store::SledOptions::default().lock_wait;
    let started = std::time::Instant::now();
    loop {
        match config.open() {
            Ok(db) => return db,
            Err(_) if started.elapsed() < wait => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("opening {} with sled: {e}", path.display()),
        }
    }
}

/// Makes the next load of the store at `path` scan its records, as it must
/// after they were edited behind the store's back (see
/// `SledStore::forget_snapshot`).
pub(crate) fn forget_snapshot(path: &std::path::Path) {
    resptree::store::SledStore::open(path)
        .unwrap()
        .forget_snapshot()
        .unwrap();
}

/// One node of a segment record, as `docs/store-format.md` lays it out.
#[derive(Debug, Clone)]
pub(crate) struct SegmentEntry {
    pub(crate) id: String,
    pub(crate) topology: Vec<u8>,
    pub(crate) body: Vec<u8>,
}

/// Decodes a segment record (schema 4): version 1, `u32` count, then per node
/// `u16` id length + id, `u32` length + topology record, `u32` length + body.
/// A compressed record (version 2, schema 6: `u32` plain length, then the
/// plain record as a zstd frame) is decompressed first.
pub(crate) fn decode_segment(bytes: &[u8]) -> Vec<SegmentEntry> {
    if bytes[0] == 2 {
        let len = u32::from_le_bytes(bytes[1..5].try_into().unwrap()) as usize;
        let plain = zstd::block::decompress(&bytes[5..], len).unwrap();
        assert_eq!(plain.len(), len, "the recorded plain length");
        return decode_segment(&plain);
    }
    assert_eq!(bytes[0], 1, "segment version");
    let count = u32::from_le_bytes(bytes[1..5].try_into().unwrap());
    let mut at = 5;
    let mut take = |n: usize| {
        let out = bytes[at..at + n].to_vec();
        at += n;
        out
    };
    let entries = (0..count)
        .map(|_| {
            let id_len = u16::from_le_bytes(take(2).try_into().unwrap());
            let id = String::from_utf8(take(usize::from(id_len))).unwrap();
            let len = u32::from_le_bytes(take(4).try_into().unwrap());
            let topology = take(len as usize);
            let len = u32::from_le_bytes(take(4).try_into().unwrap());
            let body = take(len as usize);
            SegmentEntry { id, topology, body }
        })
        .collect();
    assert_eq!(at, bytes.len(), "a segment is consumed exactly");
    entries
}

/// Encodes a plain segment record (the inverse of [`decode_segment`]), which
/// every store reads, whether it compresses its own segments or not.
pub(crate) fn encode_segment(entries: &[SegmentEntry]) -> Vec<u8> {
    let mut out = vec![1_u8];
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&(e.id.len() as u16).to_le_bytes());
        out.extend_from_slice(e.id.as_bytes());
        out.extend_from_slice(&(e.topology.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.topology);
        out.extend_from_slice(&(e.body.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.body);
    }
    out
}

/// Edits, with sled itself, the segment entry of node `id` in the database
/// `db` (behind the store's back, as damage would): `edit` gets the entry.
pub(crate) fn edit_segment_entry(db: &sled::Db, id: &str, edit: impl FnOnce(&mut SegmentEntry)) {
    let segments = db.open_tree("segments").unwrap();
    for item in segments.iter() {
        let (key, value) = item.unwrap();
        let mut entries = decode_segment(&value);
        if let Some(entry) = entries.iter_mut().find(|e| e.id == id) {
            edit(entry);
            segments.insert(key, encode_segment(&entries)).unwrap();
            return;
        }
    }
    panic!("no segment holds {id}");
}
