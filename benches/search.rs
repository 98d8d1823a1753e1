//! How long `ResponseTree::search` takes over a large sled store, and what the
//! index costs to write and keep on disk.
//!
//! ```text
//! cargo bench --bench search                            # 10^5 and 10^6 nodes
//! RESPTREE_BENCH_QUICK=1 cargo bench --bench search     # 10^4 and 10^5 nodes
//! RESPTREE_BENCH_SIZES=1000000 cargo bench --bench search
//! ```
//!
//! The corpus: small nodes in a bushy tree (up to 8 children each), each a
//! question and an answer of about a dozen words drawn from a 5 000-word
//! vocabulary with a skewed (Zipf-like) frequency, plus marker words in a known
//! share of the nodes: `zebra` in 1 of 10 000, `crossing` right after it, `sparrow`
//! in 1 %, `falcon` in 10 % (nested: every `zebra` node also has the other two,
//! so every query below has hits). Nodes alternate between two models.
//!
//! A store is built once per size with `Store::apply` in batches of 5 000
//! (`Durability::Buffered`, one flush at the end: the bulk insert path), the
//! index written in the same transactions; it is kept under
//! `target/bench-search/` and reused by later runs (delete it to rebuild).
//! Build rate (wall and per CPU second), bytes on disk per node and the load
//! average are printed; then the time of a full re-index on open of a copy
//! (the index's format marker removed behind the store's back, as an upgrade
//! from an older index format finds it; on a copy, so the store the queries
//! run on is the one the bulk path wrote and its open is not sled recovering
//! a re-index). The open of the store is timed (wall and CPU; after a build
//! it is the first open after writing). Criterion then times queries (limit
//! 20) on the opened tree:
//!
//! - `rare`: `zebra` (n/10 000 hits)
//! - `rare_and_common`: `zebra falcon` (the rare list is walked, the common one
//!   probed)
//! - `phrase`: `"zebra crossing"`
//! - `uncommon_pair`: `sparrow falcon` (1 % walked)
//! - `common`: `falcon` (10 %: every posting is read and ranked)
//! - `rare_in_model`: `zebra` answered by one model
//! - `rare_under`: `zebra` under the root's child 7 (an eighth of the tree,
//!   which holds node 7, the first `zebra`, so every size has a hit; the
//!   first child held none below 10^5 nodes and the quick run stopped there)

// A benchmark's setup failing is a bug to see at once, not to handle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "support/probe.rs"]
mod probe;
use probe::{copy_dir, cpu_time, dir_size};

use criterion::{BenchmarkId, Criterion, criterion_group};
use resptree::search::SearchOptions;
use resptree::store::{Batch, Durability, Op, SledStore, Store as _};
use resptree::{Node, NodeId, ResponseTree, Timestamp};

/// Bump when the corpus changes, so a stale cached store is rebuilt.
const CORPUS_VERSION: &str = "2";
/// Bump when the store's layout changes, so a cached store is rebuilt (and the
/// build measured) rather than converted on open: `s6` the sled schema, `i4`
/// the search index format.
const STORE_VERSION: &str = "s6i4";
const VOCABULARY: usize = 5_000;
const MODELS: [&str; 2] = ["gpt-4o", "o3"];

fn quick() -> bool {
    std::env::var("RESPTREE_BENCH_QUICK").is_ok_and(|v| v == "1")
}

fn sizes() -> Vec<usize> {
    if let Ok(list) = std::env::var("RESPTREE_BENCH_SIZES") {
        return list.split(',').map(|n| n.trim().parse().unwrap()).collect();
    }
    if quick() {
        vec![10_000, 100_000]
    } else {
        vec![100_000, 1_000_000]
    }
}

fn id(i: usize) -> NodeId {
    // Scatter the keys (as server ids are) and give them a realistic length.
    let scrambled = (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    NodeId::new(&format!("resp_{scrambled:048x}")).unwrap()
}

/// A deterministic generator (splitmix64), so every build is the same corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A word of the vocabulary, skewed: the square of a uniform draw favours
    /// small ranks, so `w0`… are common and `w4999` rare.
    fn word(&mut self) -> String {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        format!("w{}", (u * u * VOCABULARY as f64) as usize)
    }

    fn words(&mut self, n: usize) -> String {
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }
}

fn node(i: usize, rng: &mut Rng) -> Node {
    let mut question = format!("question {}", rng.words(5));
    let mut answer = format!("Answer: {}.", rng.words(7));
    if i % 10_000 == 7 {
        answer.push_str(" A zebra crossing.");
    }
    if i % 100 == 7 {
        question.push_str(" sparrow");
    }
    if i % 10 == 7 {
        answer.push_str(" falcon");
    }
    let mut node = Node::new(id(i), (i > 0).then(|| id((i - 1) / 8)))
        .with_created_at(Timestamp(1_767_225_600_000 + i as i64))
        .with_user_text(question)
        .with_output_text(answer);
    node.model = Some(MODELS[i % 2].to_owned());
    node
}

/// The cached store of `n` nodes, built if missing (then `true`).
fn store(n: usize) -> (PathBuf, bool) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-search");
    let path = dir.join(format!("v{CORPUS_VERSION}{STORE_VERSION}-{n}"));
    let done = path.join("bench-complete");
    if done.exists() {
        eprintln!(
            "search: reusing the store of {n} nodes at {}",
            path.display()
        );
        return (path, false);
    }
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&dir).unwrap();
    let store = SledStore::open(&path)
        .unwrap()
        .with_durability(Durability::Buffered);
    // Only the store's work is timed: each batch's nodes are generated before
    // its `apply` starts (the corpus generator used to be inside the timed
    // loop and took a share of the figure).
    let (mut took, mut cpu) = (Duration::ZERO, Duration::ZERO);
    let (mut generated, mut generated_cpu) = (Duration::ZERO, Duration::ZERO);
    let mut rng = Rng(42);
    for start in (0..n).step_by(5_000) {
        let (started, cpu_before) = (Instant::now(), cpu_time());
        let batch: Batch = (start..(start + 5_000).min(n))
            .map(|i| Op::PutNode(Box::new(node(i, &mut rng))))
            .collect();
        generated += started.elapsed();
        generated_cpu += cpu_time() - cpu_before;
        let (started, cpu_before) = (Instant::now(), cpu_time());
        store.apply(batch).unwrap();
        took += started.elapsed();
        cpu += cpu_time() - cpu_before;
    }
    let (started, cpu_before) = (Instant::now(), cpu_time());
    store.flush().unwrap();
    took += started.elapsed();
    cpu += cpu_time() - cpu_before;
    drop(store);
    eprintln!(
        "search: built n={n} in {took:.1?}: {:.0} nodes/s, {cpu:.1?} CPU ({:.0} nodes per CPU second), \
         {} bytes on disk/node (index included), load {}; corpus generation (not counted) \
         {generated:.1?}, {generated_cpu:.1?} CPU",
        n as f64 / took.as_secs_f64(),
        n as f64 / cpu.as_secs_f64(),
        dir_size(&path) / n as u64,
        load_average()
    );
    reindex(&path, n);
    std::fs::write(&done, b"").unwrap();
    (path, true)
}

/// Times the re-index an open does when the index's format marker is missing,
/// on a copy of the store: re-indexing the store itself rewrote its index
/// right before the timed first open below, whose figure then was sled's
/// recovery of that rewrite (20.6 s at 10^6), not an open.
fn reindex(store: &Path, n: usize) {
    let path = &store.with_extension("reindex");
    let _ = std::fs::remove_dir_all(path);
    copy_dir(store, path);
    {
        // sled opens a database only with the compression setting it was
        // created with (on for stores created by schemas 3–5, off since 6).
        let conf = std::fs::read(path.join("conf")).unwrap_or_default();
        let compressed = String::from_utf8_lossy(&conf).contains("use_compression: true");
        let db = sled::Config::new()
            .path(path)
            .use_compression(compressed)
            .open()
            .unwrap();
        db.open_tree("meta")
            .unwrap()
            .remove("search_format")
            .unwrap();
        db.flush().unwrap();
    }
    let (started, cpu_before) = (Instant::now(), cpu_time());
    // sled lets go of its lock from a background thread: `open` waits for it.
    let store = SledStore::open(path).unwrap();
    let (took, cpu) = (started.elapsed(), cpu_time() - cpu_before);
    drop(store);
    eprintln!(
        "search: re-indexed n={n} on open (a copy) in {took:.1?}, {cpu:.1?} CPU ({:.0} nodes per CPU second), load {}",
        n as f64 / cpu.as_secs_f64(),
        load_average()
    );
    std::fs::remove_dir_all(path).unwrap();
}

/// The 1-minute load average (Linux), to judge wall-clock figures by.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn queries() -> Vec<(&'static str, &'static str, SearchOptions)> {
    let all = SearchOptions::new();
    vec![
        ("rare", "zebra", all.clone()),
        ("rare_and_common", "zebra falcon", all.clone()),
        ("phrase", "\"zebra crossing\"", all.clone()),
        ("uncommon_pair", "sparrow falcon", all.clone()),
        ("common", "falcon", all.clone()),
        ("rare_in_model", "zebra", all.clone().with_model(MODELS[1])),
        ("rare_under", "zebra", all.with_under(id(7))),
    ]
}

fn search(c: &mut Criterion) {
    let mut group = c.benchmark_group("search");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(if quick() { 2 } else { 5 }));
    for n in sizes() {
        let (path, built) = store(n);
        let (started, cpu_before) = (Instant::now(), cpu_time());
        let tree = ResponseTree::open(&path).unwrap();
        eprintln!(
            "search: opened n={n} in {:.1?}, {:.1?} CPU ({}), load {}",
            started.elapsed(),
            cpu_time() - cpu_before,
            if built {
                "the first open after building it: sled recovers the build's log"
            } else {
                "a store built by an earlier run"
            },
            load_average()
        );
        for (name, query, options) in queries() {
            let hits = tree.search(query, &options).unwrap();
            let one = Instant::now();
            tree.search(query, &options).unwrap();
            eprintln!(
                "search: n={n} {name} ({query}): {} hits (limit {}), one run {:.2?}",
                hits.len(),
                options.limit,
                one.elapsed()
            );
            assert!(!hits.is_empty(), "{name} found nothing");
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| black_box(tree.search(query, &options).unwrap()));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, search);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
