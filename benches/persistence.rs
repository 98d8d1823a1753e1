//! What durability costs per node.
//!
//! ```text
//! cargo bench --bench persistence
//! RESPTREE_BENCH_QUICK=1 cargo bench --bench persistence
//! ```
//!
//! - `persistence/respond/{memory,buffered,flush}`: `Engine::respond` continuing
//!   one parent, one at a time, against an emulator without latency, recording
//!   into an in-memory tree, a sled store with `Durability::Buffered` (flushed in
//!   the background), and a sled store with `Durability::Flush` (every write is
//!   flushed to disk before `respond` returns; the default).
//! - `persistence/insert/{memory,buffered,flush}`: the store write alone,
//!   `ResponseTree::insert` of one node, without any HTTP.
//!
//! Samples of the three variants alternate, so background load hits them alike.
//! The printed ratios use medians of this run.

// A benchmark's setup failing is a bug to see at once, not to handle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use resptree::emulator::Emulator;
use resptree::store::{Durability, SledStore};
use resptree::{NodeId, ResponseTree};
use support::{Shape, node, pick};

/// The three ways to keep a tree.
const KINDS: [&str; 3] = ["memory", "buffered", "flush"];

fn tree_of(kind: &str, dir: &tempfile::TempDir) -> ResponseTree {
    let durability = match kind {
        "memory" => return ResponseTree::in_memory(),
        "buffered" => Durability::Buffered,
        _ => Durability::Flush,
    };
    let store = SledStore::open(dir.path().join(kind))
        .unwrap()
        .with_durability(durability);
    ResponseTree::with_store(store).unwrap()
}

fn configure<'c>(
    c: &'c mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(pick(30, 10));
    group.warm_up_time(pick(Duration::from_secs(1), Duration::from_millis(200)));
    group.measurement_time(pick(Duration::from_secs(5), Duration::from_secs(1)));
    group
}

fn respond(c: &mut Criterion) {
    let rt = support::runtime();
    let emulator = rt.block_on(Emulator::spawn()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engines: Vec<_> = KINDS
        .iter()
        .map(|kind| {
            let engine = support::engine(&emulator, tree_of(kind, &dir), 4);
            let root = rt.block_on(engine.respond(None, "root")).unwrap().id;
            (engine, root)
        })
        .collect();
    let times: Vec<Mutex<Vec<Duration>>> = KINDS.iter().map(|_| Mutex::new(Vec::new())).collect();

    let mut group = configure(c, "persistence/respond");
    for round in 0..pick(3, 1) {
        for (k, kind) in KINDS.iter().enumerate() {
            let (engine, root) = &engines[k];
            group.bench_function(BenchmarkId::new(*kind, round), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let times = &times[k];
                    async move {
                        let started = Instant::now();
                        for _ in 0..iters {
                            let t = Instant::now();
                            engine.respond(Some(root), "again").await.unwrap();
                            times.lock().unwrap().push(t.elapsed());
                        }
                        started.elapsed()
                    }
                });
            });
            emulator.clear_requests();
        }
    }
    group.finish();
    report("respond", &times);
}

fn insert(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let trees: Vec<(ResponseTree, NodeId)> = KINDS
        .iter()
        .map(|kind| {
            let tree = tree_of(kind, &dir);
            let root = node(Shape::Bushy, 0);
            let id = root.id.clone();
            tree.insert(root).unwrap();
            (tree, id)
        })
        .collect();
    let times: Vec<Mutex<Vec<Duration>>> = KINDS.iter().map(|_| Mutex::new(Vec::new())).collect();
    // Ids past the root, shared by the three trees (each holds its own copy).
    let mut next = vec![1_usize; KINDS.len()];

    let mut group = configure(c, "persistence/insert");
    for round in 0..pick(3, 1) {
        for (k, kind) in KINDS.iter().enumerate() {
            let (tree, root) = &trees[k];
            group.bench_function(BenchmarkId::new(*kind, round), |b| {
                b.iter_custom(|iters| {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let mut child = node(Shape::Bushy, next[k]);
                        child.parent = Some(root.clone());
                        next[k] += 1;
                        let t = Instant::now();
                        tree.insert(child).unwrap();
                        times[k].lock().unwrap().push(t.elapsed());
                    }
                    started.elapsed()
                });
            });
        }
    }
    group.finish();
    report("insert", &times);
}

/// Prints the median of each variant and its ratio to the in-memory one.
fn report(what: &str, times: &[Mutex<Vec<Duration>>]) {
    let medians: Vec<Duration> = times
        .iter()
        .map(|t| {
            let mut t = t.lock().unwrap().clone();
            t.sort();
            t.get(t.len() / 2).copied().unwrap_or_default()
        })
        .collect();
    eprintln!("\n{what} per node (medians)");
    for (kind, median) in KINDS.iter().zip(&medians) {
        eprintln!(
            "{kind:>9}: {median:>10.2?}  x{:.2} of memory",
            median.as_secs_f64() / medians[0].as_secs_f64()
        );
    }
}

criterion_group!(benches, respond, insert);
criterion_main!(benches);
