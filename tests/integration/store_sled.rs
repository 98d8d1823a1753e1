//! sled-only store tests: the child index, corruption, locking, schema version,
//! the topology snapshot and log.
//! The tests every store must pass are in `store.rs`.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use resptree::store::{Batch, Op, SledOptions, SledStore, Store};
use resptree::{Error, NodeId, RefName, ResponseTree, TreeViolation};

use crate::support::stores::Shared;
use crate::support::{forget_snapshot, open_raw};
use crate::tree::{fill, id, node};

#[test]
fn child_index_matches_topology() {
    let store = Arc::new(SledStore::temporary().unwrap());
    let t = ResponseTree::with_store(Shared(store.clone())).unwrap();
    fill(&t);
    t.remove_subtree(&id("resp_a1")).unwrap();
    let mut expected: Vec<(NodeId, NodeId)> = t
        .all_ids()
        .into_iter()
        .filter_map(|c| t.parent(&c).unwrap().map(|p| (p, c)))
        .collect();
    expected.sort();
    assert_eq!(store.child_index().unwrap(), expected);
}

#[test]
fn replacing_a_node_moves_its_child_index_entry() {
    let store = SledStore::temporary().unwrap();
    let put = |n| Batch::from(vec![Op::PutNode(Box::new(n))]);
    store.apply(put(node("p1", None, 1, "q", "a"))).unwrap();
    store.apply(put(node("p2", None, 2, "q", "a"))).unwrap();
    store
        .apply(put(node("c", Some("p1"), 3, "q", "a")))
        .unwrap();
    store
        .apply(put(node("c", Some("p2"), 3, "q", "a")))
        .unwrap();
    assert_eq!(store.child_index().unwrap(), vec![(id("p2"), id("c"))]);
}

#[test]
fn corrupt_records_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    {
        let t = ResponseTree::open(&path).unwrap();
        fill(&t);
        t.set_ref(RefName::new("good").unwrap(), &id("resp_root"))
            .unwrap();
    }
    {
        // Damage the store behind resptree's back, with sled itself.
        // Nodes live in segment records (schema 4); a node's own records
        // (schema 3 and older) are still read, so damage there counts too.
        let db = open_raw(&path);
        crate::support::edit_segment_entry(&db, "resp_a1", |e| {
            e.topology = b"\x01garbage".to_vec()
        });
        crate::support::edit_segment_entry(&db, "resp_b", |e| e.body = b"\x01{not json".to_vec());
        let topology = db.open_tree("topology").unwrap();
        topology
            .insert("resp_future", &b"\x07whatever"[..])
            .unwrap();
        topology.insert(&b"\xff\xfe"[..], &b"\x01"[..]).unwrap();
        let refs = db.open_tree("refs").unwrap();
        refs.insert("broken", &b""[..]).unwrap();
        db.flush().unwrap();
    }
    forget_snapshot(&path);
    let t = ResponseTree::open(&path).unwrap();
    let keys: Vec<String> = t
        .load_problems()
        .iter()
        .map(|e| match e {
            Error::CorruptRecord { key, .. } => key.clone(),
            other => panic!("unexpected problem {other:?}"),
        })
        .collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    // A bad topology inside a segment names the segment and the node.
    let a1 = t
        .load_problems()
        .iter()
        .find(|e| e.to_string().contains("resp_a1"))
        .unwrap();
    assert!(
        matches!(a1, Error::CorruptRecord { key, .. } if key.starts_with("segments/")),
        "{a1}"
    );
    assert!(keys.contains(&"topology/resp_future".to_owned()));
    assert!(keys.contains(&"refs/broken".to_owned()));
    assert!(keys.iter().any(|k| k.starts_with("topology/\u{fffd}")));
    let future = t
        .load_problems()
        .iter()
        .find(|e| e.to_string().contains("resp_future"))
        .unwrap();
    assert!(future.to_string().contains("version 7"), "{future}");
    // Everything else loaded.
    assert_eq!(t.len(), 6);
    assert!(!t.contains(&id("resp_a1")));
    assert_eq!(t.get_ref("good").unwrap(), id("resp_root"));
    // A corrupt body is an error naming its key when it is read, not a panic.
    match t.get(&id("resp_b")) {
        Err(Error::CorruptRecord { key, .. }) => assert_eq!(key, "bodies/resp_b"),
        other => panic!("expected CorruptRecord, got {other:?}"),
    }
    // So is drawing it, which decodes bodies another way (previews).
    let options = resptree::render::AsciiOptions::default();
    match resptree::render::ascii(&t, Some(&id("resp_b")), &options) {
        Err(Error::CorruptRecord { key, .. }) => assert_eq!(key, "bodies/resp_b"),
        other => panic!("expected CorruptRecord, got {other:?}"),
    }
}

#[test]
fn orphans_of_a_corrupt_parent_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    {
        let t = ResponseTree::open(&path).unwrap();
        fill(&t);
    }
    put_raw_topology(&path, "resp_a", b"\x01");
    forget_snapshot(&path);
    let t = ResponseTree::open(&path).unwrap();
    // resp_a is corrupt; its children cannot attach and are reported, not guessed at.
    assert_eq!(t.len(), 4);
    let dangling = t
        .load_problems()
        .iter()
        .filter(|e| matches!(e, Error::InvalidTree(TreeViolation::DanglingParent { .. })))
        .count();
    assert_eq!(dangling, 2, "{:?}", t.load_problems());
    // resp_b1's context node resp_a2 is gone, so only the edge is dropped.
    assert!(t.contains(&id("resp_b1")));
}

#[test]
fn second_open_is_store_in_use_once_the_lock_wait_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let _first = ResponseTree::open(&path).unwrap();
    let wait = Duration::from_millis(200);
    let started = Instant::now();
    match SledStore::open_with(&path, SledOptions::default().with_lock_wait(wait)) {
        Err(Error::StoreInUse { path: p }) => assert!(p.ends_with("tree"), "{p}"),
        other => panic!("expected StoreInUse, got {other:?}"),
    }
    // It did wait for the lock before giving up.
    assert!(started.elapsed() >= wait, "{:?}", started.elapsed());
}

#[test]
fn default_lock_wait_is_seconds_not_milliseconds() {
    // Shorter than this and a reopen right after a drop can lose the race with
    // sled's background threads on a loaded machine (see `SledOptions::lock_wait`).
    assert!(SledOptions::default().lock_wait >= Duration::from_secs(2));
}

/// Drop-then-reopen, many times over, from this thread and from another one that
/// saw the store held a moment before: every reopen waits out sled's lazily
/// released lock instead of failing with `StoreInUse`.
#[test]
fn reopen_after_drop_waits_for_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let mut expected = 0;
    for round in 0..10 {
        let tree = ResponseTree::open(&path).unwrap();
        assert_eq!(tree.len(), expected, "round {round}");
        tree.insert(node(&format!("resp_{round}"), None, round, "u", "o"))
            .unwrap();
        expected += 1;
        // Another thread finds the store held (this tree is open), then reopens
        // it the moment the tree is dropped.
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (dropped_tx, dropped_rx) = std::sync::mpsc::channel();
        let other = std::thread::spawn({
            let path = path.clone();
            move || {
                let probe = SledStore::open_with(
                    &path,
                    SledOptions::default().with_lock_wait(Duration::ZERO),
                );
                held_tx
                    .send(matches!(probe, Err(Error::StoreInUse { .. })))
                    .unwrap();
                dropped_rx.recv().unwrap();
                ResponseTree::open(&path).map(|t| t.len())
            }
        });
        assert!(
            held_rx.recv().unwrap(),
            "round {round}: the store was not held"
        );
        drop(tree);
        dropped_tx.send(()).unwrap();
        assert_eq!(other.join().unwrap().unwrap(), expected, "round {round}");
    }
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    {
        let db = open_raw(&path);
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &99_u32.to_le_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    match SledStore::open(&path) {
        Err(Error::CorruptRecord { key, reason }) => {
            assert_eq!(key, "meta/schema_version");
            assert!(reason.contains("99"), "{reason}");
        }
        other => panic!("expected CorruptRecord, got {other:?}"),
    }
}

/// Writes a `topology` record with sled itself, behind the store's back.
/// Overwrites node `id`'s topology record inside its segment, with sled itself.
fn put_raw_topology(path: &std::path::Path, id: &str, value: &[u8]) {
    let db = open_raw(path);
    crate::support::edit_segment_entry(&db, id, |e| e.topology = value.to_vec());
    db.flush().unwrap();
}

/// The snapshot files in a store's directory, by name.
fn snapshot_files(path: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("topology-"))
        .collect();
    names.sort();
    names
}

/// How many batches the topology log holds.
fn log_entries(path: &std::path::Path) -> usize {
    open_raw(path).open_tree("topology_log").unwrap().len()
}

/// A store with `fill`'s nodes whose snapshot holds them all (written by a load
/// with a threshold of one change); returns the graph.
fn filled_and_snapshotted(path: &std::path::Path) -> resptree::tree::Graph {
    let live = {
        let t = ResponseTree::open(path).unwrap();
        fill(&t);
        t.graph().clone()
    };
    // A new store's log is complete: the first reopen replays it, and with a
    // threshold of one change folds it into a snapshot.
    assert_eq!(log_entries(path), 7);
    let store = SledStore::open(path).unwrap().with_snapshot_every(1);
    drop(ResponseTree::with_store(store).unwrap());
    assert_eq!(snapshot_files(path), ["topology-1.snapshot"]);
    assert_eq!(log_entries(path), 0, "the snapshot covers the whole log");
    live
}

#[test]
fn reopen_reads_the_snapshot_and_replaces_a_damaged_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let live = filled_and_snapshotted(&path);
    let t = ResponseTree::open(&path).unwrap();
    assert_eq!(*t.graph(), live);
    assert!(t.load_problems().is_empty());
    drop(t);

    // A damaged snapshot is not trusted: the records are scanned, and a new
    // snapshot replaces the damaged one.
    let file = path.join("topology-1.snapshot");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[30] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let t = ResponseTree::open(&path).unwrap();
    assert_eq!(*t.graph(), live);
    assert!(t.load_problems().is_empty(), "{:?}", t.load_problems());
    drop(t);
    assert_eq!(snapshot_files(&path), ["topology-2.snapshot"]);

    // So is a missing one.
    std::fs::remove_file(path.join("topology-2.snapshot")).unwrap();
    assert_eq!(*ResponseTree::open(&path).unwrap().graph(), live);
    assert_eq!(snapshot_files(&path), ["topology-3.snapshot"]);
}

#[test]
fn writes_after_the_snapshot_are_replayed_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    filled_and_snapshotted(&path);
    let live = {
        let t = ResponseTree::open(&path).unwrap();
        t.remove_subtree(&id("resp_a1")).unwrap();
        t.insert(node("resp_new", Some("resp_b"), 9, "q", "a"))
            .unwrap();
        t.graph().clone()
    };
    // Two batches logged, far below the default threshold: replayed, kept.
    assert_eq!(log_entries(&path), 2);
    assert_eq!(*ResponseTree::open(&path).unwrap().graph(), live);
    assert_eq!(snapshot_files(&path), ["topology-1.snapshot"]);
    assert_eq!(log_entries(&path), 2);

    // With a threshold of one change, the load folds the log into a new
    // snapshot and empties it.
    let store = SledStore::open(&path).unwrap().with_snapshot_every(1);
    let t = ResponseTree::with_store(store).unwrap();
    assert_eq!(*t.graph(), live);
    drop(t);
    assert_eq!(snapshot_files(&path), ["topology-2.snapshot"]);
    assert_eq!(log_entries(&path), 0);
    assert_eq!(*ResponseTree::open(&path).unwrap().graph(), live);
}

#[test]
fn a_version_1_store_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let live = {
        let t = ResponseTree::open(&path).unwrap();
        fill(&t);
        t.graph().clone()
    };
    {
        // What version 1 wrote: no log, no snapshot.
        let db = open_raw(&path);
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema_version", &1_u32.to_le_bytes()).unwrap();
        meta.remove("snapshot").unwrap();
        db.drop_tree("topology_log").unwrap();
        db.flush().unwrap();
    }
    let t = ResponseTree::open(&path).unwrap();
    assert_eq!(*t.graph(), live);
    t.insert(node("resp_new", Some("resp_b"), 9, "q", "a"))
        .unwrap();
    let live = t.graph().clone();
    drop(t);
    let version = open_raw(&path)
        .open_tree("meta")
        .unwrap()
        .get("schema_version")
        .unwrap()
        .unwrap();
    assert_eq!(version.as_ref(), 6_u32.to_le_bytes());
    assert_eq!(*ResponseTree::open(&path).unwrap().graph(), live);
}

#[test]
fn records_changed_behind_the_stores_back_show_once_the_snapshot_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    filled_and_snapshotted(&path);
    put_raw_topology(&path, "resp_a1", b"\x01garbage");
    // The snapshot was written through the store and still holds the node...
    let t = ResponseTree::open(&path).unwrap();
    assert!(t.load_problems().is_empty());
    assert!(t.contains(&id("resp_a1")));
    drop(t);
    // ...and the scan that forgetting it forces reports the record.
    forget_snapshot(&path);
    let t = ResponseTree::open(&path).unwrap();
    assert!(
        t.load_problems()
            .iter()
            .any(|e| matches!(e, Error::CorruptRecord { key, reason } if key.starts_with("segments/") && reason.contains("resp_a1"))),
        "{:?}",
        t.load_problems()
    );
    assert!(!t.contains(&id("resp_a1")));
}

#[test]
fn concurrent_batches_leave_a_readable_watermark_at_the_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let store = Arc::new(SledStore::open(&path).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..20 {
                    let n = node(&format!("resp_{t}_{i}"), None, i, "q", "a");
                    store
                        .apply(Batch::from(vec![Op::PutNode(Box::new(n))]))
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    drop(store);
    // Every batch wrote the watermark after its flush; the file names the last.
    let marker = std::fs::read_to_string(path.join("resptree-commit")).unwrap();
    assert_eq!(marker.trim(), "160");
    let t = ResponseTree::open(&path).unwrap();
    assert!(t.load_problems().is_empty(), "{:?}", t.load_problems());
    assert_eq!(t.len(), 160);
}

#[test]
fn the_watermark_is_rewritten_in_place_after_replacing_an_older_builds_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let put = |store: &SledStore, name: &str| {
        let n = node(name, None, 0, "q", "a");
        store
            .apply(Batch::from(vec![Op::PutNode(Box::new(n))]))
            .unwrap();
    };
    let marker = path.join("resptree-commit");
    {
        let store = SledStore::open(&path).unwrap();
        put(&store, "resp_1");
    }
    // An older build wrote it unpadded, and behind the database: no claim is
    // broken by a marker that lags.
    std::fs::write(&marker, "1").unwrap();
    let store = SledStore::open(&path).unwrap();
    for i in 2..=5 {
        put(&store, &format!("resp_{i}"));
        // Each flush leaves the whole number, at the same width, nothing of
        // the shorter file before it.
        let text = std::fs::read_to_string(&marker).unwrap();
        assert_eq!(text.len(), 20, "{text:?}");
        assert_eq!(text.trim(), store.commits().to_string());
    }
    drop(store);
    let t = ResponseTree::open(&path).unwrap();
    assert!(t.load_problems().is_empty(), "{:?}", t.load_problems());
    assert_eq!(t.len(), 5);
}

#[test]
fn temporary_tree_works_and_in_memory_tree_starts_empty() {
    let t = ResponseTree::temporary().unwrap();
    fill(&t);
    assert_eq!(t.len(), 7);
    assert!(ResponseTree::in_memory().is_empty());
}

/// Writes, with sled itself, a store as schema version 2 left it: sled pages
/// without compression, topology records, bodies as version-1 JSON, the child
/// index (`parent 0x00 child`), a ref, and no topology snapshot pointer (so the
/// first load scans the records, the source of truth).
fn write_schema_2_store(path: &std::path::Path, nodes: &[resptree::Node]) {
    let db = sled::Config::new().path(path).open().unwrap();
    let tree = |name: &str| db.open_tree(name).unwrap();
    let (topology, bodies, children) = (tree("topology"), tree("bodies"), tree("children"));
    for n in nodes {
        // Topology record version 1: created_at, parent, context ids.
        let mut record = vec![1_u8];
        record.extend_from_slice(&n.created_at.as_millis().to_le_bytes());
        let parent = n.parent.as_ref().map_or("", NodeId::as_str);
        for s in std::iter::once(parent) {
            record.extend_from_slice(&(s.len() as u16).to_le_bytes());
            record.extend_from_slice(s.as_bytes());
        }
        record.extend_from_slice(&(n.extra_context.len() as u16).to_le_bytes());
        for c in &n.extra_context {
            record.extend_from_slice(&(c.as_str().len() as u16).to_le_bytes());
            record.extend_from_slice(c.as_str().as_bytes());
        }
        topology.insert(n.id.as_str(), record).unwrap();
        let mut body = vec![1_u8];
        serde_json::to_writer(&mut body, n).unwrap();
        bodies.insert(n.id.as_str(), body).unwrap();
        if let Some(p) = &n.parent {
            children.insert(format!("{p}\0{}", n.id), &[][..]).unwrap();
        }
    }
    tree("refs").insert("best", &b"\x01resp_b1"[..]).unwrap();
    tree("meta")
        .insert("schema_version", &2_u32.to_le_bytes())
        .unwrap();
    db.flush().unwrap();
}

#[test]
fn a_version_2_store_is_upgraded_with_every_node_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let nodes = crate::tree::sample_nodes();
    write_schema_2_store(&path, &nodes);

    let t = ResponseTree::open(&path).unwrap();
    assert!(t.load_problems().is_empty(), "{:?}", t.load_problems());
    assert_eq!(t.len(), nodes.len());
    for n in &nodes {
        assert_eq!(&t.get(&n.id).unwrap(), n, "{}", n.id);
    }
    assert_eq!(t.get_ref("best").unwrap(), id("resp_b1"));
    // New writes go on in the upgraded store (still without sled compression,
    // which sled fixes when a database is created), so it compresses its
    // new segments itself (schema 6).
    t.insert(node("resp_new", Some("resp_b"), 9, "q", "a"))
        .unwrap();
    t.insert_group(similar_nodes(200)).unwrap();
    let live = t.graph().clone();
    drop(t);
    assert!(
        segment_versions(&path).contains(&2),
        "{:?}",
        segment_versions(&path)
    );

    let db = open_raw(&path);
    let version = db.open_tree("meta").unwrap().get("schema_version").unwrap();
    assert_eq!(version.unwrap().as_ref(), 6_u32.to_le_bytes());
    assert!(
        !db.tree_names().iter().any(|n| n.as_ref() == b"children"),
        "the child index is dropped"
    );
    drop(db);
    let t = ResponseTree::open(&path).unwrap();
    assert_eq!(*t.graph(), live);
    let b1 = nodes.iter().find(|n| n.id.as_str() == "resp_b1").unwrap();
    assert_eq!(&t.get(&b1.id).unwrap(), b1);
}

/// Writes, with sled itself, a store as schema version 3 left it: compressed
/// sled pages, one topology and one body record per node, a version 1
/// topology-log entry per node under its commit number, the empty snapshot
/// pointer (so a load replays that log), and a ref.
fn write_schema_3_store(path: &std::path::Path, nodes: &[resptree::Node]) {
    let db = sled::Config::new()
        .path(path)
        .use_compression(true)
        .open()
        .unwrap();
    let tree = |name: &str| db.open_tree(name).unwrap();
    let (topology, bodies, log) = (tree("topology"), tree("bodies"), tree("topology_log"));
    let with_len = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    for (seq, n) in (1_u64..).zip(nodes) {
        let mut record = vec![1_u8];
        record.extend_from_slice(&n.created_at.as_millis().to_le_bytes());
        with_len(&mut record, n.parent.as_ref().map_or("", NodeId::as_str));
        record.extend_from_slice(&(n.extra_context.len() as u16).to_le_bytes());
        for c in &n.extra_context {
            with_len(&mut record, c.as_str());
        }
        let mut entry = vec![1_u8, 0];
        with_len(&mut entry, n.id.as_str());
        entry.extend_from_slice(&(record.len() as u32).to_le_bytes());
        entry.extend_from_slice(&record);
        log.insert(seq.to_be_bytes(), entry).unwrap();
        topology.insert(n.id.as_str(), record).unwrap();
        let mut body = vec![1_u8];
        serde_json::to_writer(&mut body, n).unwrap();
        bodies.insert(n.id.as_str(), body).unwrap();
    }
    tree("refs").insert("best", &b"\x01resp_b1"[..]).unwrap();
    let meta = tree("meta");
    meta.insert("schema_version", &3_u32.to_le_bytes()).unwrap();
    meta.insert("commit_seq", &(nodes.len() as u64).to_le_bytes())
        .unwrap();
    let mut empty_pointer = vec![1_u8];
    empty_pointer.extend_from_slice(&[0; 32]);
    meta.insert("snapshot", empty_pointer).unwrap();
    db.flush().unwrap();
}

fn raw_tree_len(path: &std::path::Path, name: &str) -> usize {
    open_raw(path).open_tree(name).unwrap().len()
}

#[test]
fn a_version_3_store_is_upgraded_and_its_nodes_move_to_segments_as_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let nodes = crate::tree::sample_nodes();
    write_schema_3_store(&path, &nodes);

    let t = ResponseTree::open(&path).unwrap();
    assert!(t.load_problems().is_empty(), "{:?}", t.load_problems());
    assert_eq!(t.len(), nodes.len());
    for n in &nodes {
        assert_eq!(&t.get(&n.id).unwrap(), n, "{}", n.id);
    }
    assert_eq!(t.get_ref("best").unwrap(), id("resp_b1"));
    // New nodes go into a segment; removing old ones removes their records.
    let b1 = nodes.iter().find(|n| n.id.as_str() == "resp_b1").unwrap();
    t.insert(node("resp_new", Some(b1.id.as_str()), 99, "q", "a"))
        .unwrap();
    let removed = t.remove_subtree(&id("resp_a1")).unwrap();
    assert!(!removed.is_empty());
    let live = t.graph().clone();
    drop(t);

    let db = open_raw(&path);
    let version = db.open_tree("meta").unwrap().get("schema_version").unwrap();
    assert_eq!(version.unwrap().as_ref(), 6_u32.to_le_bytes());
    drop(db);
    let own = nodes.len() - removed.len();
    assert_eq!(raw_tree_len(&path, "topology"), own);
    assert_eq!(raw_tree_len(&path, "bodies"), own);
    assert_eq!(raw_tree_len(&path, "segments"), 1);

    // Through the log (version 1 entries, then version 2), and by a scan.
    for scan in [false, true] {
        if scan {
            forget_snapshot(&path);
        }
        let t = ResponseTree::open(&path).unwrap();
        assert!(t.load_problems().is_empty(), "{:?}", t.load_problems());
        assert_eq!(*t.graph(), live, "scan: {scan}");
        assert_eq!(&t.get(&b1.id).unwrap(), b1);
        assert_eq!(t.get(&id("resp_new")).unwrap().parent, Some(b1.id.clone()));
        assert!(matches!(t.get(&id("resp_a1")), Err(Error::NodeNotFound(_))));
    }

    // A node replaced through the store leaves its own records for a segment.
    let store = SledStore::open(&path).unwrap();
    store.load().unwrap();
    let mut changed = b1.clone();
    changed.model = Some("replaced".into());
    store
        .apply(Batch::from(vec![Op::PutNode(Box::new(changed.clone()))]))
        .unwrap();
    assert_eq!(store.node(&b1.id).unwrap(), Some(changed));
    drop(store);
    assert_eq!(raw_tree_len(&path, "bodies"), own - 1);
    assert_eq!(raw_tree_len(&path, "segments"), 2);
}

/// Twenty nodes alike (one batch, so one segment), numbered from `from`.
fn similar_nodes(from: i64) -> Vec<resptree::Node> {
    (from..from + 20)
        .map(|i| {
            node(
                &format!("resp_similar_{i:03}"),
                None,
                i,
                "what is the capital of France?",
                "The capital of France is Paris, on the Seine.",
            )
        })
        .collect()
}

/// The first byte (the segment version) of every segment record, with sled itself.
fn segment_versions(path: &std::path::Path) -> Vec<u8> {
    open_raw(path)
        .open_tree("segments")
        .unwrap()
        .iter()
        .map(|item| item.unwrap().1[0])
        .collect()
}

fn put_all(nodes: &[resptree::Node]) -> Batch {
    nodes
        .iter()
        .map(|n| Op::PutNode(Box::new(n.clone())))
        .collect()
}

#[test]
fn a_new_store_compresses_its_segments_and_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let nodes = similar_nodes(1);
    let store = SledStore::open(&path).unwrap();
    store.apply(put_all(&nodes)).unwrap();
    drop(store);
    // sled's pages are left alone; the store compressed the segment itself.
    let conf = String::from_utf8_lossy(&std::fs::read(path.join("conf")).unwrap()).into_owned();
    assert!(conf.contains("use_compression: false"), "{conf}");
    assert_eq!(segment_versions(&path), [2]);
    let stored = open_raw(&path)
        .open_tree("segments")
        .unwrap()
        .first()
        .unwrap()
        .unwrap()
        .1;
    let plain_len = u32::from_le_bytes(stored[1..5].try_into().unwrap()) as usize;
    assert!(
        stored.len() * 3 < plain_len,
        "{} bytes for {plain_len}",
        stored.len()
    );

    let t = ResponseTree::open(&path).unwrap();
    assert!(t.load_problems().is_empty(), "{:?}", t.load_problems());
    for n in &nodes {
        assert_eq!(&t.get(&n.id).unwrap(), n, "{}", n.id);
    }
    // Removing a node rewrites its segment, compressed again.
    t.remove_subtree(&nodes[3].id).unwrap();
    drop(t);
    assert_eq!(segment_versions(&path), [2]);
    let t = ResponseTree::open(&path).unwrap();
    assert_eq!(t.len(), nodes.len() - 1);
    assert_eq!(&t.get(&nodes[4].id).unwrap(), &nodes[4]);
}

#[test]
fn a_store_whose_sled_compresses_keeps_writing_plain_segments() {
    // A store created by schema 3 (sled compresses its pages), as schemas 3–5
    // create them: the store must not compress what sled compresses again.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    write_schema_3_store(&path, &crate::tree::sample_nodes());
    let nodes = similar_nodes(100);
    let t = ResponseTree::open(&path).unwrap();
    t.insert_group(nodes.clone()).unwrap();
    drop(t);
    assert_eq!(segment_versions(&path), [1]);
    let t = ResponseTree::open(&path).unwrap();
    for n in &nodes {
        assert_eq!(&t.get(&n.id).unwrap(), n, "{}", n.id);
    }
}

#[test]
fn a_store_whose_sled_settings_file_is_gone_is_refused_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let store = SledStore::open(&path).unwrap();
    store.apply(put_all(&similar_nodes(1))).unwrap();
    drop(store);
    let conf = std::fs::read(path.join("conf")).unwrap();
    for damaged in [None, Some(&b"segment_size: 524288\n"[..])] {
        match damaged {
            None => std::fs::remove_file(path.join("conf")).unwrap(),
            Some(bytes) => std::fs::write(path.join("conf"), bytes).unwrap(),
        }
        match SledStore::open(&path) {
            Err(Error::CorruptRecord { key, reason }) => {
                assert_eq!(key, "conf");
                assert!(reason.contains("compressed"), "{reason}");
            }
            other => panic!("expected CorruptRecord, got {other:?}"),
        }
        // Not rewritten with a guess: put back, the store opens whole.
        std::fs::write(path.join("conf"), &conf).unwrap();
        let t = ResponseTree::open(&path).unwrap();
        assert_eq!(t.len(), 20);
    }
}

#[test]
fn a_damaged_compressed_segment_is_reported_by_name_and_the_others_survive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let (first, second) = (similar_nodes(1), similar_nodes(50));
    let store = SledStore::open(&path).unwrap();
    store.apply(put_all(&first)).unwrap();
    store.apply(put_all(&second)).unwrap();
    drop(store);
    assert_eq!(segment_versions(&path), [2, 2]);
    {
        // The first segment's frame cut short, behind the store's back.
        let db = open_raw(&path);
        let segments = db.open_tree("segments").unwrap();
        let (key, value) = segments.first().unwrap().unwrap();
        segments.insert(&key, &value[..value.len() - 4]).unwrap();
        db.flush().unwrap();
    }
    forget_snapshot(&path);
    let t = ResponseTree::open(&path).unwrap();
    let problems: Vec<String> = t
        .load_problems()
        .iter()
        .map(|p| match p {
            Error::CorruptRecord { key, reason } => format!("{key}: {reason}"),
            other => panic!("expected CorruptRecord, got {other:?}"),
        })
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("segments/") && problems[0].contains("does not decompress"),
        "{problems:?}"
    );
    for n in &second {
        assert_eq!(&t.get(&n.id).unwrap(), n, "{}", n.id);
    }
}

/// The segments' contents, with sled itself: `(segment number, ids)`.
fn segment_ids(path: &std::path::Path) -> Vec<(u32, Vec<String>)> {
    open_raw(path)
        .open_tree("segments")
        .unwrap()
        .iter()
        .map(|item| {
            let (key, value) = item.unwrap();
            let number = u32::from_be_bytes(key.as_ref().try_into().unwrap());
            let ids = crate::support::decode_segment(&value)
                .into_iter()
                .map(|e| e.id)
                .collect();
            (number, ids)
        })
        .collect()
}

#[test]
fn a_batch_packs_its_nodes_into_segments_and_rewrites_them_on_replace_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let put = |n: resptree::Node| Op::PutNode(Box::new(n));
    let names = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    {
        let store = SledStore::open(&path).unwrap();
        store.load().unwrap();
        store
            .apply(Batch::from(vec![
                put(node("a", None, 1, "q", "a")),
                put(node("b", Some("a"), 2, "q", "b")),
                put(node("c", Some("a"), 3, "q", "c")),
                // Stored, then removed again in the same batch: never written.
                put(node("gone", Some("a"), 4, "q", "g")),
                Op::RemoveNode(id("gone")),
            ]))
            .unwrap();
        // Replacing b moves it to a new segment; removing c shrinks the first.
        store
            .apply(Batch::from(vec![
                put(node("b", Some("a"), 2, "q", "b2")),
                Op::RemoveNode(id("c")),
                // Removed, then stored again: the put stands.
                Op::RemoveNode(id("d")),
                put(node("d", Some("b"), 5, "q", "d")),
            ]))
            .unwrap();
        assert_eq!(
            store.node(&id("b")).unwrap(),
            Some(node("b", Some("a"), 2, "q", "b2"))
        );
        assert!(store.node(&id("c")).unwrap().is_none());
        assert!(store.node(&id("gone")).unwrap().is_none());
        assert!(store.node(&id("d")).unwrap().is_some());
    }
    assert_eq!(
        segment_ids(&path),
        vec![(1, names(&["a"])), (2, names(&["b", "d"]))]
    );
    {
        let store = SledStore::open(&path).unwrap();
        store.load().unwrap();
        store
            .apply(Batch::from(vec![Op::RemoveNode(id("a"))]))
            .unwrap();
        // A store used without a load finds its segments all the same.
        let fresh = || SledStore::open(&path).unwrap();
        drop(store);
        let store = fresh();
        assert!(store.node(&id("a")).unwrap().is_none());
        assert_eq!(store.node(&id("d")).unwrap().unwrap().id, id("d"));
    }
    assert_eq!(segment_ids(&path), vec![(2, names(&["b", "d"]))]);
    // New segments are numbered after the last one, across reopens.
    let store = SledStore::open(&path).unwrap();
    store
        .apply(Batch::from(vec![put(node("e", None, 6, "q", "e"))]))
        .unwrap();
    drop(store);
    assert_eq!(segment_ids(&path).last().unwrap().0, 3);
    let loaded = SledStore::open(&path).unwrap().load().unwrap();
    let mut ids: Vec<String> = loaded.nodes.iter().map(|t| t.id.to_string()).collect();
    ids.sort();
    assert_eq!(ids, names(&["b", "d", "e"]));
}

#[test]
fn an_attempt_written_and_removed_in_one_batch_is_never_stored() {
    use resptree::store::{Attempt, AttemptParams};
    let store = SledStore::temporary().unwrap();
    let attempt =
        |parent: &str| Attempt::new(Some(id(parent)), Vec::new(), AttemptParams::default());
    let (a, b) = (attempt("p"), attempt("q"));
    store
        .apply(Batch::from(vec![
            // Written, then removed: what a group commit of a journal update
            // and the commit it ends looks like.
            Op::PutAttempt(Box::new(a.clone())),
            Op::RemoveAttempt(a.id),
            // Removed, then written: the write stands.
            Op::RemoveAttempt(b.id),
            Op::PutAttempt(Box::new(b.clone())),
        ]))
        .unwrap();
    assert_eq!(store.attempts().unwrap(), vec![b]);
}
