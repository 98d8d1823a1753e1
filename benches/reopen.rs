//! How long `ResponseTree::open` takes to rebuild the graph of a large store, and
//! how much memory the rebuilt graph holds per node.
//!
//! ```text
//! cargo bench --bench reopen                          # 10^4, 10^5 and 10^6 nodes
//! RESPTREE_BENCH_QUICK=1 cargo bench --bench reopen   # 10^3 and 10^4 nodes
//! RESPTREE_BENCH_SIZES=100000 cargo bench --bench reopen   # the sizes listed
//! ```
//!
//! Two shapes: *bushy* (every node has up to 8 children) and *deep* (chains of
//! 10 000 nodes). Ids are 53 bytes, like real `resp_…` ids, and each node holds one
//! short question and answer. Each store is built with `Store::apply` in batches of
//! 5 000 (`Durability::Buffered`, one flush at the end), which prints the bulk
//! insert rate and the bytes on disk per node, and is kept under
//! `target/bench-reopen/` for later runs (delete it to rebuild). Each run opens
//! a copy of it twice in fresh child processes: the first open recovers sled's
//! log of the build, replays the whole topology log (the store is new, so its
//! log is complete) and writes the topology snapshot; the second reads the
//! snapshot. Each child
//! reads its resident memory from `/proc/self/statm` before and after; the growth
//! divided by the node count is printed as bytes per node (it includes sled's page
//! cache, capped at 64 MiB, and heap the allocator kept after the load's temporary
//! buffers were freed).
//!
//! Criterion then times, on the same store and in the same run, `snapshot`
//! (every reopen after the first) and `scan` (the snapshot file deleted before
//! each open: a full scan plus writing a new snapshot, as after an upgrade or
//! with a lost snapshot).

// A benchmark's setup failing is a bug to see at once, not to handle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "support/probe.rs"]
mod probe;
use probe::{copy_dir, cpu_time, dir_size, rss};

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group};
use resptree::store::{Batch, Durability, Op, SledStore, Store as _};
use resptree::{Node, NodeId, ResponseTree, Timestamp};

#[derive(Clone, Copy, Debug)]
enum Shape {
    Bushy,
    Deep,
}

fn sizes() -> Vec<usize> {
    if let Ok(list) = std::env::var("RESPTREE_BENCH_SIZES") {
        return list.split(',').map(|n| n.trim().parse().unwrap()).collect();
    }
    if std::env::var("RESPTREE_BENCH_QUICK").is_ok_and(|v| v == "1") {
        vec![1_000, 10_000]
    } else {
        vec![10_000, 100_000, 1_000_000]
    }
}

fn id(i: usize) -> NodeId {
    // Scatter the keys (as server ids are) and give them a realistic length.
    let scrambled = (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    NodeId::new(&format!("resp_{scrambled:048x}")).unwrap()
}

fn parent(shape: Shape, i: usize) -> Option<usize> {
    match shape {
        Shape::Bushy => (i > 0).then(|| (i - 1) / 8),
        Shape::Deep => (i % 10_000 != 0).then(|| i - 1),
    }
}

/// Writes `n` small nodes of `shape` to a fresh store at `path`.
fn build(path: &Path, shape: Shape, n: usize) {
    let store = SledStore::open(path)
        .unwrap()
        .with_durability(Durability::Buffered);
    let started = Instant::now();
    let cpu_before = cpu_time();
    for chunk in (0..n).collect::<Vec<_>>().chunks(5_000) {
        let batch: Batch = chunk
            .iter()
            .map(|&i| {
                let node = Node::new(id(i), parent(shape, i).map(id))
                    .with_created_at(Timestamp(1_767_225_600_000 + i as i64))
                    .with_user_text(format!("question {i}"))
                    .with_output_text(format!("answer {i}"));
                Op::PutNode(Box::new(node))
            })
            .collect();
        store.apply(batch).unwrap();
    }
    store.flush().unwrap();
    let took = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    drop(store);
    eprintln!(
        "built {shape:?} n={n} in {took:.1?}: {:.0} nodes/s, {:.1?} CPU ({:.0} nodes per CPU second), \
         {} bytes on disk/node",
        n as f64 / took.as_secs_f64(),
        cpu,
        n as f64 / cpu.as_secs_f64(),
        dir_size(path) / n as u64
    );
}

fn reopen(c: &mut Criterion) {
    let mut group = c.benchmark_group("reopen");
    group.sample_size(10);
    for shape in [Shape::Bushy, Shape::Deep] {
        for n in sizes() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("tree");
            // Build (once, cached) and measure memory in fresh processes, so
            // that neither the build's freed heap nor earlier iterations
            // flatter the numbers. Each run opens a copy of the store as the
            // build left it, so the first open is always a first open.
            copy_dir(&built(shape, n), &path);
            child(&["measure", &path.to_string_lossy(), &n.to_string()]);
            child(&["measure", &path.to_string_lossy(), &n.to_string()]);

            group.measurement_time(Duration::from_secs(if n >= 1_000_000 { 30 } else { 5 }));
            group.bench_with_input(
                BenchmarkId::new(format!("{shape:?}/snapshot"), n),
                &path,
                |b, path| {
                    b.iter(|| {
                        let tree = ResponseTree::open(path).unwrap();
                        black_box(tree.len());
                    });
                },
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{shape:?}/scan"), n),
                &path,
                |b, path| {
                    b.iter_batched(
                        || remove_snapshots(path),
                        |()| {
                            let tree = ResponseTree::open(path).unwrap();
                            black_box(tree.len());
                        },
                        BatchSize::PerIteration,
                    );
                },
            );
        }
    }
    group.finish();
}

/// The store of `n` nodes of `shape` as its build left it (never opened
/// since), built if missing. Kept under `target/bench-reopen/` between runs:
/// building 10^6 nodes takes minutes, opening them a second. Delete the
/// directory to rebuild (its name carries the schema the store was built
/// with, so a new schema builds anew).
fn built(shape: Shape, n: usize) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-reopen");
    let path = dir.join(format!("schema{SCHEMA}-{shape:?}-{n}"));
    let done = path.join("bench-complete");
    if done.exists() {
        eprintln!("reusing the store of {n} nodes at {}", path.display());
        return path;
    }
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&dir).unwrap();
    child(&[
        "build",
        &path.to_string_lossy(),
        &format!("{shape:?}"),
        &n.to_string(),
    ]);
    std::fs::write(&done, b"").unwrap();
    path
}

/// The sled schema version the cached stores were built with
/// (`store::codec::SCHEMA_VERSION`, which is private).
const SCHEMA: u32 = 6;

/// The topology snapshot files in the store at `path`.
fn snapshots(path: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "snapshot"))
        .collect()
}

fn remove_snapshots(path: &Path) {
    for file in snapshots(path) {
        std::fs::remove_file(file).unwrap();
    }
}

/// Runs this bench binary again in a child mode and waits for it.
fn child(args: &[&str]) {
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new(exe)
        .arg(CHILD_FLAG)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "child {args:?} failed: {status}");
}

const CHILD_FLAG: &str = "--resptree-child";

/// Child modes: `build PATH SHAPE N` writes a store; `measure PATH N` opens it
/// once and prints the time, how it loaded and the resident-memory growth per
/// node; `profile PATH` splits one open into its steps. Run them by hand with
/// `target/release/deps/reopen-* --resptree-child MODE ARGS…`.
fn run_child(args: &[String]) {
    match args {
        [mode, path, shape, n] if mode == "build" => {
            let shape = if shape == "Deep" {
                Shape::Deep
            } else {
                Shape::Bushy
            };
            build(Path::new(path), shape, n.parse().unwrap());
        }
        [mode, path, n] if mode == "measure" => {
            let n: usize = n.parse().unwrap();
            let how = if snapshots(Path::new(path)).is_empty() {
                "first open: log replay + snapshot write"
            } else {
                "snapshot"
            };
            let before = rss();
            let cpu_before = cpu_time();
            let started = Instant::now();
            let tree = ResponseTree::open(path).unwrap();
            let took = started.elapsed();
            let cpu = cpu_time() - cpu_before;
            let after = rss();
            assert_eq!(tree.len(), n);
            assert!(tree.load_problems().is_empty());
            let grown = after.saturating_sub(before);
            eprintln!(
                "reopen n={n} ({how}): {took:.2?} wall, {cpu:.2?} CPU, RSS +{} MiB = {} bytes/node",
                grown >> 20,
                grown / n as u64
            );
        }
        [mode, path] if mode == "profile" => {
            // Where the time and memory of one open go: sled's own open, the
            // load (snapshot or scan), the graph (the difference between the
            // last two). Memory is the resident growth after each step.
            // CPU time beside wall time: on a loaded machine the wall
            // time is mostly the queue.
            let step = |f: &mut dyn FnMut()| {
                let (t, cpu) = (Instant::now(), cpu_time());
                f();
                (t.elapsed(), cpu_time() - cpu, rss())
            };
            let base = rss();
            let mut store = None;
            let (opened, opened_cpu, after_open) =
                step(&mut || store = Some(SledStore::open(path).unwrap()));
            let store = store.unwrap();
            let mut n = 0;
            let (loaded, loaded_cpu, after_load) =
                step(&mut || n = store.load().unwrap().nodes.len());
            let (mut store, mut tree) = (Some(store), None);
            let (built, built_cpu, after_build) = step(&mut || {
                tree = Some(ResponseTree::with_store(store.take().unwrap()).unwrap());
            });
            assert_eq!(tree.unwrap().len(), n);
            let per_node = |bytes: u64| bytes.saturating_sub(base) / n.max(1) as u64;
            eprintln!(
                "profile n={n}: sled open {opened:.2?} wall / {opened_cpu:.2?} CPU (+{} B/node), \
                 load {loaded:.2?} / {loaded_cpu:.2?} (+{} B/node after it was dropped), \
                 load + graph {built:.2?} / {built_cpu:.2?} (+{} B/node in all)",
                per_node(after_open),
                per_node(after_load),
                per_node(after_build),
            );
        }
        other => panic!("unknown child mode {other:?}"),
    }
}

criterion_group!(benches, reopen);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(CHILD_FLAG) {
        run_child(&args[1..]);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
