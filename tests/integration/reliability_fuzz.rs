//! The fuzz targets' entry points under byte mutation, without libFuzzer: random
//! bytes and mutated seeds go to every decoder, which must never panic. This is
//! the stable-toolchain stand-in that CI runs; `scripts/fuzz` runs the real
//! coverage-guided fuzzers over the same seeds.
//!
//! The seeds are the committed corpora under `fuzz/seeds/<target>/` plus, for the
//! wire decoders and the SSE parser, the protocol fixtures
//! (`tests/fixtures/protocol/`, read in place rather than copied).
//!
//! The mutations are reproducible: the runner's RNG starts from a fixed seed
//! (`PROPTEST_RNG_SEED` overrides it, `PROPTEST_CASES` the number of cases), and a
//! failure names the seed to rerun with.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestRunner};
use resptree::fuzzing;

/// The RNG seed when `PROPTEST_RNG_SEED` is unset: any fixed value makes every run
/// mutate the same way, so a failure in CI is a failure on every machine.
const DEFAULT_RNG_SEED: u64 = 0x7265_7370_7472_6565; // "resptree"

/// Cases per strategy (mutated seeds, random bytes) unless `PROPTEST_CASES` is set.
const DEFAULT_CASES: u32 = 512;

/// Chunk sizes the SSE target is fed a protocol fixture in (its first input byte):
/// byte by byte, an odd size that splits lines, and two that split events.
const SSE_CHUNK_SIZES: [u8; 4] = [1, 7, 64, 255];

/// Every file directly in `dir`, sorted by path; none when `dir` does not exist.
fn files_in(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

/// The protocol fixtures whose name ends with `extension`.
fn fixtures(extension: &str) -> Vec<Vec<u8>> {
    files_in(&crate::support::fixtures_dir())
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == extension))
        .map(|(_, b)| b)
        .collect()
}

/// A target's seeds: its own corpus, plus the fixtures it decodes.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut out: Vec<Vec<u8>> = files_in(&dir).into_iter().map(|(_, b)| b).collect();
    match target {
        "wire" => out.extend(fixtures("json")),
        "sse" => {
            for stream in fixtures("sse") {
                for size in SSE_CHUNK_SIZES {
                    out.push([&[size][..], &stream].concat());
                }
            }
        }
        _ => {}
    }
    assert!(!out.is_empty(), "no seeds for {target}");
    out
}

/// The seed and case count for this run (see the module doc).
fn runner_config() -> (u64, ProptestConfig) {
    let env = ProptestConfig::default();
    let seed = match env.rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => DEFAULT_RNG_SEED,
    };
    let cases = crate::support::proptest_cases(DEFAULT_CASES);
    let config = ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..env
    };
    (seed, config)
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
    let (rng_seed, config) = runner_config();
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        panic!("{target} ({what}): {e}\nrerun with PROPTEST_RNG_SEED={rng_seed}")
    };
    // One runner per strategy, each from the seed, so either can be rerun alone.
    let n = seeds.len();
    TestRunner::new(config.clone())
        .run(&(0..n, edits()), |(i, edits)| {
            check(&apply(seeds[i].clone(), &edits));
            Ok(())
        })
        .unwrap_or_else(|e| fail("mutated seeds", &e));
    TestRunner::new(config)
        .run(&proptest::collection::vec(any::<u8>(), 0..512), |bytes| {
            check(&bytes);
            Ok(())
        })
        .unwrap_or_else(|e| fail("random bytes", &e));
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
        tree.journal(&[resptree::store::Attempt::new(
            Some(crate::tree::id("resp_b")),
            Vec::new(),
            resptree::store::AttemptParams::default(),
        )])
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
    // A reopen folds the log into a snapshot (here at once, not after 1 024 changes).
    let store = resptree::store::SledStore::open(&path)
        .unwrap()
        .with_snapshot_every(1);
    drop(resptree::ResponseTree::with_store(store).unwrap());
    seed(
        "snapshot-0".to_owned(),
        &std::fs::read(path.join("topology-1.snapshot")).unwrap(),
    );
    // Attempts live in their own journal file since schema 5 (`attempts-0`,
    // one attempt record as a journal put carries it, is from before).
    seed(
        "attempts_log-0".to_owned(),
        &std::fs::read(path.join("attempts.log")).unwrap(),
    );
    let db = crate::support::open_raw(&path);
    for tree_name in ["segments", "refs"] {
        for (i, entry) in db.open_tree(tree_name).unwrap().iter().enumerate() {
            let (_, value) = entry.unwrap();
            seed(format!("{tree_name}-{i}"), &value);
        }
    }
    // A new store compresses its segments (version 2, schema 6); seed each
    // as a plain record (version 1) too, which stores of schemas 4–5 write.
    for (i, entry) in db.open_tree("segments").unwrap().iter().enumerate() {
        let entries = crate::support::decode_segment(&entry.unwrap().1);
        seed(
            format!("segments_plain-{i}"),
            &crate::support::encode_segment(&entries),
        );
    }
    // Schema 4 keeps topology and body records inside segments; seed each on
    // its own too, as the decoders see them.
    let nodes = db
        .open_tree("segments")
        .unwrap()
        .iter()
        .flat_map(|entry| crate::support::decode_segment(&entry.unwrap().1));
    for (i, e) in nodes.enumerate() {
        seed(format!("topology-{i}"), &e.topology);
        seed(format!("bodies-{i}"), &e.body);
    }
}

/// Bodies hold raw API JSON, numbers included: a body record with any finite
/// float in it must read back, store and read back again unchanged (what the
/// body round trip in `fuzzing::store_record` asserts, aimed at numbers).
#[test]
fn body_records_keep_their_numbers() {
    let seed = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/store_record/bodies-0"),
    )
    .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&seed[1..]).unwrap();
    let (rng_seed, config) = runner_config();
    TestRunner::new(config)
        .run(
            &any::<f64>().prop_filter("finite", |x| x.is_finite()),
            |x| {
                let mut body = body.clone();
                body["output"] = serde_json::json!([{"type": "x", "logprob": x}]);
                let mut record = vec![seed[0]];
                record.extend(serde_json::to_vec(&body).unwrap());
                prop_assert!(fuzzing::store_record(&record), "{x:e} does not round-trip");
                Ok(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}\nrerun with PROPTEST_RNG_SEED={rng_seed}"));
}
