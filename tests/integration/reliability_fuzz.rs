//! The fuzz targets' entry points under byte mutation, without libFuzzer: random
//! bytes and mutated seeds (the committed corpora under `fuzz/seeds/`) go to
//! every decoder, which must never panic. This is the stable-toolchain stand-in
//! that CI runs; `scripts/fuzz` runs the real coverage-guided fuzzers.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use resptree::fuzzing;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds for {target}");
    out.into_iter().map(|(_, b)| b).collect()
}

/// One mutation step: flip a bit, overwrite, insert or delete a byte, or cut.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len();
        match *edit {
            Edit::Flip(at, bit) if len > 0 => bytes[at % len] ^= 1 << (bit % 8),
            Edit::Set(at, b) if len > 0 => bytes[at % len] = b,
            Edit::Insert(at, b) => bytes.insert(at % (len + 1), b),
            Edit::Delete(at) if len > 0 => {
                bytes.remove(at % len);
            }
            Edit::Truncate(at) => bytes.truncate(at % (len + 1)),
            _ => {}
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Flip(a, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Set(a, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Insert(a, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ];
    proptest::collection::vec(edit, 1..8)
}

/// Runs `check` on every seed unchanged, then on mutated seeds and random bytes.
fn fuzz(target: &str, check: impl Fn(&[u8])) {
    let seeds = seeds(target);
    for seed in &seeds {
        check(seed);
    }
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let n = seeds.len();
    runner
        .run(&(0..n, edits()), |(i, edits)| {
            check(&apply(seeds[i].clone(), &edits));
            Ok(())
        })
        .unwrap();
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..512), |bytes| {
            check(&bytes);
            Ok(())
        })
        .unwrap();
}

#[test]
fn sse_parser_survives_mutation() {
    // The seeds are real streams: they must parse into events.
    for seed in seeds("sse") {
        assert!(fuzzing::sse(&seed) > 0, "a seed stream has no events");
    }
    fuzz("sse", |b| {
        fuzzing::sse(b);
    });
}

#[test]
fn wire_decoders_survive_mutation() {
    fuzz("wire", fuzzing::wire);
}

#[test]
fn store_record_decoders_survive_mutation_and_round_trip() {
    fuzz("store_record", |b| {
        assert!(fuzzing::store_record(b), "{b:?} does not round-trip")
    });
}

#[test]
fn json_import_survives_mutation() {
    fuzz("import_json", fuzzing::import_json);
}

#[test]
fn chatgpt_import_survives_mutation_and_is_atomic() {
    // The seeds are valid exports: they must import.
    for seed in seeds("import_chatgpt") {
        let tree = resptree::ResponseTree::in_memory();
        let text = std::str::from_utf8(&seed).unwrap();
        assert!(resptree::import::import_chatgpt(&tree, text).unwrap().nodes > 0);
    }
    fuzz("import_chatgpt", |b| {
        assert!(fuzzing::import_chatgpt(b), "{b:?}");
    });
}

/// Writes the store-record and import seeds from a real store. Run by hand after
/// a format change: `cargo test --all-features --test integration write_seeds -- --ignored`.
#[test]
#[ignore = "writes into fuzz/seeds; run by hand after a format change"]
fn write_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    {
        let tree = resptree::ResponseTree::open(&path).unwrap();
        for n in crate::tree::sample_nodes() {
            tree.insert(n).unwrap();
        }
        tree.set_ref(
            resptree::RefName::new("best").unwrap(),
            &crate::tree::id("resp_b1"),
        )
        .unwrap();
        std::fs::write(
            root.join("import_json/sample-tree.json"),
            resptree::render::export_json(&tree).unwrap(),
        )
        .unwrap();
        let store = tree.store();
        store
            .apply(resptree::store::Batch::from(vec![
                resptree::store::Op::PutAttempt(Box::new(resptree::store::Attempt::new(
                    Some(crate::tree::id("resp_b")),
                    Vec::new(),
                    serde_json::json!({"model": "m"}),
                ))),
            ]))
            .unwrap();
    }
    let seed = |name: String, value: &[u8]| {
        std::fs::write(root.join("store_record").join(name), value).unwrap();
    };
    {
        // The topology log, before the next open folds it into a snapshot.
        let db = crate::support::open_raw(&path);
        for (i, entry) in db.open_tree("topology_log").unwrap().iter().enumerate() {
            seed(format!("topology_log-{i}"), &entry.unwrap().1);
        }
    }
    drop(resptree::ResponseTree::open(&path).unwrap());
    seed(
        "snapshot-0".to_owned(),
        &std::fs::read(path.join("topology-1.snapshot")).unwrap(),
    );
    let db = crate::support::open_raw(&path);
    for tree_name in ["topology", "bodies", "refs", "attempts"] {
        for (i, entry) in db.open_tree(tree_name).unwrap().iter().enumerate() {
            let (_, value) = entry.unwrap();
            seed(format!("{tree_name}-{i}"), &value);
        }
    }
}
