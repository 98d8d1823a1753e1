//! The store under abuse: a second process opening it, and damaged files
//! (truncated, flipped bytes, a future schema version) — typed errors, never a
//! panic, and every node that survives reads back exactly as written.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use resptree::node::Timestamp;
use resptree::store::{SledOptions, SledStore};
use resptree::{Error, Node, NodeId, ResponseTree};

use crate::reliability_support::{Rng, check_invariants, crash_worker};

/// A store with `n` nodes in a few chains; returns the nodes as written.
fn build_store(path: &Path, n: usize) -> HashMap<NodeId, Node> {
    let tree = ResponseTree::open(path).unwrap();
    let mut written = HashMap::new();
    let mut ids: Vec<NodeId> = Vec::new();
    for i in 0..n {
        // Roots every ten nodes; otherwise the previous node or the one before.
        let parent = (i % 10 != 0).then(|| ids[(i - 1).saturating_sub(i % 2)].clone());
        let id = NodeId::new(&format!("resp_{i:05}")).unwrap();
        let node = Node::new(id.clone(), parent)
            .with_created_at(Timestamp(1_700_000_000_000 + i as i64))
            .with_user_text(format!("question {i} {}", "x".repeat(i % 300)))
            .with_output_text(format!("answer {i}"));
        tree.insert(node.clone()).unwrap();
        written.insert(id.clone(), node);
        ids.push(id);
    }
    written
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every file of a sled directory, biggest first.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(files(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).unwrap().len()));
    out
}

/// What opening a damaged store led to.
#[derive(Debug, Default)]
struct Damage {
    opened: usize,
    /// Copies that opened with every written node, each reading back intact.
    whole: usize,
    refused: usize,
    nodes_read: usize,
    nodes_lost: usize,
    corrupt_records: usize,
}

/// Opens a damaged copy: a panic fails the test; an error must be typed; an
/// opened tree must hold only nodes identical to what was written, and obey the
/// tree invariants among the nodes that survived.
fn open_damaged(path: &Path, written: &HashMap<NodeId, Node>, what: &str, damage: &mut Damage) {
    let opened = std::panic::catch_unwind(|| ResponseTree::open(path));
    let opened = opened.unwrap_or_else(|_| panic!("{what}: opening panicked"));
    match opened {
        Err(err @ (Error::Storage { .. } | Error::CorruptRecord { .. })) => {
            // Typed, and says what it was doing.
            assert!(!err.to_string().is_empty());
            damage.refused += 1;
            eprintln!("  {what}: refused: {err}");
        }
        Err(other) => panic!("{what}: unexpected error {other:?}"),
        Ok(tree) => {
            damage.opened += 1;
            for problem in tree.load_problems() {
                assert!(
                    matches!(problem, Error::CorruptRecord { .. } | Error::InvalidTree(_)),
                    "{what}: {problem:?}"
                );
            }
            for id in tree.all_ids() {
                match tree.get(&id) {
                    Ok(node) => {
                        assert_eq!(
                            Some(&node),
                            written.get(&id),
                            "{what}: {id} reads back different"
                        );
                        damage.nodes_read += 1;
                    }
                    Err(Error::CorruptRecord { .. }) => damage.corrupt_records += 1,
                    Err(other) => panic!("{what}: reading {id}: {other:?}"),
                }
            }
            damage.nodes_lost += written.len() - tree.len();
            if tree.len() == written.len()
                && tree
                    .all_ids()
                    .iter()
                    .all(|id| tree.get(id).ok().as_ref() == written.get(id))
            {
                damage.whole += 1;
            }
            // Lost nodes are never lost silently: the commit watermark (or a
            // corrupt-record report) says so.
            assert!(
                tree.len() == written.len() || !tree.load_problems().is_empty(),
                "{what}: {} nodes lost without a reported problem",
                written.len() - tree.len()
            );
            eprintln!(
                "  {what}: opened, {} of {} nodes",
                tree.len(),
                written.len()
            );
            for id in tree.all_ids() {
                if let Some(p) = tree.parent(&id).unwrap() {
                    assert!(tree.contains(&p), "{what}: {id} kept a missing parent");
                }
            }
        }
    }
}

#[test]
fn damaged_store_files_give_typed_errors_and_intact_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine");
    let written = build_store(&pristine, 400);
    let mut rng = Rng(0xD15C);
    let mut damage = Damage::default();
    let mut cases = 0;
    for (f, file) in files(&pristine).iter().enumerate() {
        let rel = file.strip_prefix(&pristine).unwrap().to_owned();
        let len = std::fs::metadata(file).unwrap().len();
        // Truncations: to nothing, to half, and by one byte.
        for cut in [0, len / 2, len.saturating_sub(1)] {
            let copy = dir.path().join(format!("trunc-{f}-{cut}"));
            copy_dir(&pristine, &copy);
            std::fs::OpenOptions::new()
                .write(true)
                .open(copy.join(&rel))
                .unwrap()
                .set_len(cut)
                .unwrap();
            open_damaged(
                &copy,
                &written,
                &format!("{} truncated to {cut}", rel.display()),
                &mut damage,
            );
            cases += 1;
        }
        // Flipped bytes at seeded random offsets.
        for trial in 0..8 {
            if len == 0 {
                break;
            }
            let copy = dir.path().join(format!("flip-{f}-{trial}"));
            copy_dir(&pristine, &copy);
            let target = copy.join(&rel);
            let mut bytes = std::fs::read(&target).unwrap();
            let flips = 1 + rng.range(0, 4);
            for _ in 0..flips {
                let at = rng.range(0, len) as usize;
                bytes[at] ^= 1 << rng.range(0, 8);
            }
            std::fs::write(&target, bytes).unwrap();
            open_damaged(
                &copy,
                &written,
                &format!("{} with {flips} flipped bits", rel.display()),
                &mut damage,
            );
            cases += 1;
        }
    }
    // The undamaged original is still whole.
    let tree = ResponseTree::open(&pristine).unwrap();
    assert_eq!(tree.len(), written.len());
    check_invariants(&tree, None);
    eprintln!("reliability figures (corrupt files): {cases} damaged copies, {damage:?}");
    assert!(cases >= 20);
    // Not everything may be refused: damage to derived data (the snapshot) or to
    // unused space must leave a store that opens with its nodes intact, and the
    // copies that open must give back what was written.
    assert!(damage.whole > 0, "no damaged copy opened whole: {damage:?}");
    assert!(damage.nodes_read > 0, "{damage:?}");
}

#[test]
fn records_from_a_future_schema_are_typed_errors_and_the_rest_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let written = build_store(&path, 50);
    {
        // A newer build wrote some records in a format this one does not know.
        let db = crate::support::open_raw(&path);
        crate::support::edit_segment_entry(&db, "resp_00049", |e| e.topology[0] = 2);
        crate::support::edit_segment_entry(&db, "resp_00048", |e| e.body[0] = 2);
        db.flush().unwrap();
    }
    // Edited behind the store's back, so its snapshot and log cannot know.
    crate::support::forget_snapshot(&path);
    let tree = ResponseTree::open(&path).unwrap();
    assert!(
        tree.load_problems().iter().any(|e| matches!(e, Error::CorruptRecord { key, reason } if key.starts_with("segments/") && reason.contains("resp_00049") && reason.contains("version 2"))),
        "{:?}",
        tree.load_problems()
    );
    match tree.get(&NodeId::new("resp_00048").unwrap()) {
        Err(Error::CorruptRecord { key, reason }) => {
            assert_eq!(key, "bodies/resp_00048");
            assert!(reason.contains("version 2"), "{reason}");
        }
        other => panic!("expected CorruptRecord, got {other:?}"),
    }
    let mut intact = 0;
    for (id, node) in &written {
        if id.as_str() == "resp_00048" || !tree.contains(id) {
            continue;
        }
        assert_eq!(&tree.get(id).unwrap(), node);
        intact += 1;
    }
    assert!(intact >= 48, "only {intact} intact nodes read back");
}

/// Reads one line from a `crash_worker hold` child.
fn first_line(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim().to_owned()
}

fn hold(path: &Path) -> std::process::Child {
    Command::new(crash_worker())
        .args(["hold", path.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn two_processes_on_one_store_get_store_in_use_not_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let written = build_store(&path, 30);

    // Another process holds the store: we are refused, clearly.
    let mut other = hold(&path);
    assert_eq!(first_line(&mut other), "open 30");
    match ResponseTree::open(&path) {
        Err(Error::StoreInUse { path: p }) => assert!(p.ends_with("tree"), "{p}"),
        other => panic!("expected StoreInUse, got {other:?}"),
    }
    // (The tree waited the default lock wait; the store need not wait again.)
    let no_wait = SledOptions::default().with_lock_wait(Duration::ZERO);
    assert!(matches!(
        SledStore::open_with(&path, no_wait),
        Err(Error::StoreInUse { .. })
    ));
    // Closing its stdin lets it exit normally.
    other.stdin.take().unwrap().write_all(b"").unwrap();
    assert!(other.wait().unwrap().success());

    // We hold it: the other process is refused, and says so.
    let tree = ResponseTree::open(&path).unwrap();
    let mut other = hold(&path);
    let line = first_line(&mut other);
    assert!(line.starts_with("error store-in-use:"), "{line}");
    assert!(other.wait().unwrap().success());

    // Nothing was damaged by the contention.
    assert!(tree.load_problems().is_empty());
    assert_eq!(tree.len(), written.len());
    for (id, node) in &written {
        assert_eq!(&tree.get(id).unwrap(), node);
    }
    check_invariants(&tree, None);
}
