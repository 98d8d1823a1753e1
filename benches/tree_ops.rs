//! Tree operations at scale: insert throughput, memory and disk per node, and
//! `path`, `children`, `common_ancestor` and ASCII `render` at 10^3 … 10^6 nodes.
//!
//! ```text
//! cargo bench --bench tree_ops                          # 10^3, 10^4, 10^5, 10^6
//! RESPTREE_BENCH_QUICK=1 cargo bench --bench tree_ops   # 10^3, 10^4
//! RESPTREE_BENCH_MAX_NODES=100000 cargo bench --bench tree_ops  # full, up to 10^5
//! RESPTREE_BENCH_SHAPES=deep cargo bench --bench tree_ops       # one shape
//! ```
//!
//! Two shapes: *bushy* (up to 8 children per node, depth log8 n) and *deep* (one
//! chain, depth n). For each size the bench first prints, measured once:
//!
//! - in-memory insert: `ResponseTree::insert` one node at a time into
//!   `ResponseTree::in_memory()`, nodes per second, and the growth of resident
//!   memory per node (graph + in-memory store holding the bodies);
//! - sled insert: `ResponseTree::insert_all` in batches of 5 000 into a
//!   `SledStore` with `Durability::Buffered`, then one flush; nodes per second and
//!   bytes on disk per node; then the store is reopened step by step (sled
//!   open, topology load + snapshot write, graph build) to show where a first
//!   reopen spends its time.
//!
//! Then criterion times, on the in-memory tree: `path` of the deepest node,
//! `children` of the root, `common_ancestor` of two far-apart nodes, rendering
//! the whole tree as ASCII (`render`; and `render_sled`, the same render of the
//! sled tree reopened, bodies read from disk), and (last, since it grows the
//! tree) inserting one more leaf. A deep chain renders in linear size (a lone child is drawn in its
//! parent's column), so it is rendered at every size; the bench prints the
//! rendered bytes per node once for each shape and size.

// A benchmark's setup failing is a bug to see at once, not to handle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use resptree::render::{AsciiOptions, ascii};
use resptree::store::{Durability, SledStore, Store as _};
use resptree::tree::{Graph, MissingContext};
use resptree::{NodeId, ResponseTree};
use support::{Shape, id, node, parent, pick};

const BATCH: usize = 5_000;

/// The sizes to run, capped by `RESPTREE_BENCH_MAX_NODES` when it is set (sled
/// needs minutes to load 10^6 nodes on a small machine).
fn sizes() -> Vec<usize> {
    let max = std::env::var("RESPTREE_BENCH_MAX_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    pick(vec![1_000, 10_000, 100_000, 1_000_000], vec![1_000, 10_000])
        .into_iter()
        .filter(|&n| n <= max)
        .collect()
}

/// The shapes to run: both, or those `RESPTREE_BENCH_SHAPES` names
/// (`deep`, `bushy`, comma-separated), since every size builds a sled store.
fn shapes() -> Vec<Shape> {
    let wanted = std::env::var("RESPTREE_BENCH_SHAPES").unwrap_or_default();
    [Shape::Bushy, Shape::Deep]
        .into_iter()
        .filter(|shape| {
            wanted.is_empty()
                || wanted
                    .split(',')
                    .any(|w| w.trim().eq_ignore_ascii_case(&format!("{shape:?}")))
        })
        .collect()
}

fn tree_ops(c: &mut Criterion) {
    let mut group = c.benchmark_group("tree");
    group.sample_size(10);
    group.warm_up_time(pick(Duration::from_millis(500), Duration::from_millis(100)));
    group.measurement_time(pick(Duration::from_secs(3), Duration::from_millis(500)));
    for shape in shapes() {
        for n in sizes() {
            let (_dir, on_disk) = sled_insert(shape, n);
            let tree = memory_insert(shape, n);
            let cell = format!("{shape:?}/{n}");

            let deepest = id(n - 1);
            group.bench_function(BenchmarkId::new("path", &cell), |b| {
                b.iter(|| black_box(tree.path(&deepest).unwrap().len()));
            });
            let root = id(0);
            group.bench_function(BenchmarkId::new("children", &cell), |b| {
                b.iter(|| black_box(tree.children(&root).unwrap().len()));
            });
            let (a, z) = far_apart(shape, n);
            assert!(tree.common_ancestor(&a, &z).unwrap().is_some());
            group.bench_function(BenchmarkId::new("common_ancestor", &cell), |b| {
                b.iter(|| black_box(tree.common_ancestor(&a, &z).unwrap()));
            });
            let options = AsciiOptions::default();
            let rendered = ascii(&tree, None, &options).unwrap().len();
            eprintln!(
                "render {shape:?} n={n}: {rendered} bytes, {} bytes/node",
                rendered / n
            );
            // CPU time per render, beside criterion's wall time: on a loaded
            // machine the wall time is mostly the queue.
            for (name, t) in [("memory", &tree), ("sled", &on_disk)] {
                let reps = (1_000_000 / n).clamp(3, 100);
                let (started, cpu) = (Instant::now(), support::cpu_time());
                for _ in 0..reps {
                    black_box(ascii(t, None, &options).unwrap().len());
                }
                eprintln!(
                    "render {shape:?} n={n} ({name} store): {:.2?} wall, {:.2?} CPU per render \
                     ({reps} renders)",
                    started.elapsed() / reps as u32,
                    (support::cpu_time() - cpu) / reps as u32
                );
            }
            group.bench_function(BenchmarkId::new("render", &cell), |b| {
                b.iter(|| black_box(ascii(&tree, None, &options).unwrap().len()));
            });
            // The same render over the sled store, reopened: bodies are read
            // from segments and decoded, as `resptree show` reads them.
            assert_eq!(ascii(&on_disk, None, &options).unwrap().len(), rendered);
            group.bench_function(BenchmarkId::new("render_sled", &cell), |b| {
                b.iter(|| black_box(ascii(&on_disk, None, &options).unwrap().len()));
            });
            drop(on_disk);
            // Last, because it grows the tree: fresh ids past the synthetic ones,
            // attached under the deepest node.
            let mut next = n;
            group.bench_function(BenchmarkId::new("insert", &cell), |b| {
                b.iter(|| {
                    let mut leaf = node(shape, next);
                    leaf.parent = Some(deepest.clone());
                    next += 1;
                    tree.insert(leaf).unwrap();
                });
            });
        }
    }
    group.finish();
    eprintln!(
        "peak RSS of this process: {} MiB",
        support::peak_rss() >> 20
    );
}

/// Builds the in-memory tree one insert at a time, printing throughput and memory.
fn memory_insert(shape: Shape, n: usize) -> ResponseTree {
    let nodes: Vec<_> = (0..n).map(|i| node(shape, i)).collect();
    let before = support::rss();
    let tree = ResponseTree::in_memory();
    let started = Instant::now();
    for node in nodes {
        tree.insert(node).unwrap();
    }
    let took = started.elapsed();
    let grown = support::rss().saturating_sub(before);
    eprintln!(
        "memory insert {shape:?} n={n}: {took:.2?}, {:.0} nodes/s, RSS +{} bytes/node",
        n as f64 / took.as_secs_f64(),
        grown / n as u64
    );
    tree
}

/// Builds a sled-backed tree in batches, printing throughput and bytes on disk;
/// returns it reopened (and the directory that holds it).
fn sled_insert(shape: Shape, n: usize) -> (tempfile::TempDir, ResponseTree) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let store = SledStore::open(&path)
        .unwrap()
        .with_durability(Durability::Buffered);
    let tree = ResponseTree::with_store(store).unwrap();
    let started = Instant::now();
    for start in (0..n).step_by(BATCH) {
        let batch = (start..n.min(start + BATCH))
            .map(|i| node(shape, i))
            .collect();
        tree.insert_all(batch, Vec::new()).unwrap();
    }
    tree.flush().unwrap();
    let took = started.elapsed();
    drop(tree);
    let bytes = support::dir_size(&path);
    eprintln!(
        "sled insert {shape:?} n={n}: {took:.2?}, {:.0} nodes/s, {} bytes on disk/node",
        n as f64 / took.as_secs_f64(),
        bytes / n as u64
    );

    // Where a first reopen spends its time: opening sled, loading the topology
    // (a new store replays its topology log) and writing the topology snapshot
    // that later reopens read, building the graph with every parent looked up
    // by id. `benches/reopen.rs` times reopens through the snapshot.
    let before = support::rss();
    let started = Instant::now();
    let store = SledStore::open(&path).unwrap();
    let opened = started.elapsed();
    let started = Instant::now();
    let loaded = store.load().unwrap();
    let read = started.elapsed();
    let started = Instant::now();
    let (graph, problems) = Graph::build(&loaded.nodes, MissingContext::Drop);
    let built = started.elapsed();
    assert!(problems.is_empty());
    assert_eq!(graph.len(), n);
    drop(loaded);
    let grown = support::rss().saturating_sub(before);
    eprintln!(
        "reopen breakdown {shape:?} n={n}: sled open {opened:.2?}, \
         load topology + write snapshot {read:.2?}, build graph {built:.2?}; \
         RSS +{} bytes/node with the graph held",
        grown / n as u64
    );
    drop(graph);
    let tree = ResponseTree::with_store(store).unwrap();
    (dir, tree)
}

/// Two nodes whose common ancestor is far above both: for a chain, the tip and
/// the middle; for a bushy tree, the last node and the deepest node of the
/// first subtree (their common ancestor is one level below the root).
fn far_apart(shape: Shape, n: usize) -> (NodeId, NodeId) {
    match shape {
        Shape::Deep => (id(n - 1), id(n / 2)),
        Shape::Bushy => {
            let mut left = 1;
            while 8 * left + 1 < n {
                left = 8 * left + 1;
            }
            debug_assert!(parent(shape, left).is_some());
            (id(n - 1), id(left))
        }
    }
}

criterion_group!(benches, tree_ops);
criterion_main!(benches);
