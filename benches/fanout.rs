//! Fan-out efficiency and the engine's overhead over raw client calls.
//!
//! ```text
//! cargo bench --bench fanout
//! RESPTREE_BENCH_QUICK=1 cargo bench --bench fanout
//! ```
//!
//! 1. `fanout/{engine,raw}/N`: N = 1, 8, 64, 256 children of one response against
//!    an emulator that takes L = 200 ms per response. `engine` is
//!    `Engine::fan_out` (concurrency 256, tree in memory); `raw` sends the same N
//!    requests with the bare [`resptree::client::Client`], all at once. Ideal wall
//!    time is L for any N, so the printed figure is median wall / L.
//! 2. `overhead/{engine,raw}`: one response at a time against an emulator without
//!    latency, so the engine's own work (planning, journaling, committing to the
//!    in-memory tree) is compared with a whole in-process round trip.
//! 3. `durable/{memory,sled,sled-gather}/N`: `Engine::fan_out` of N = 64, 256,
//!    1024 children at L = 50 ms into an in-memory tree and into two sled trees
//!    with the default `Durability::Flush` — one as the library makes it
//!    (`sled`: the group commit never waits for more writers) and one with a
//!    2 ms gathering window (`sled-gather`, `ResponseTree::set_group_window`)
//!    — in alternating rounds. Printed: the medians,
//!    their ratios to memory, the process CPU per fan-out of each variant and
//!    its ratio to memory (the figure to trust on a loaded machine), and the
//!    nodes committed per sled fsync.
//!
//! The printed ratios use medians over the iterations of this run.

// A benchmark's setup failing is a bug to see at once, not to handle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

#[path = "../tests/integration/support/shared_store.rs"]
mod shared_store;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use resptree::client::{Client, CreateResponse, Input};
use resptree::emulator::Emulator;
use resptree::node::message_item;
use resptree::{Engine, ResponseTree};
use support::{MODEL, cpu_time, median, pick, timed};

const LATENCY: Duration = Duration::from_millis(200);
const FAN: [usize; 4] = [1, 8, 64, 256];

fn fanout(c: &mut Criterion) {
    let rt = support::runtime();
    let emulator = rt
        .block_on(Emulator::builder().latency(LATENCY).spawn())
        .unwrap();
    let engine = support::engine(&emulator, ResponseTree::in_memory(), 256);
    let client = support::client(&emulator);
    let root = rt.block_on(engine.respond(None, "root")).unwrap();
    let root_id = root.origin.response_id.clone().unwrap().to_string();

    let mut group = c.benchmark_group("fanout");
    group.sample_size(10);
    group.warm_up_time(pick(Duration::from_secs(1), Duration::from_millis(300)));
    group.measurement_time(pick(Duration::from_secs(5), Duration::from_secs(2)));
    let mut rows = Vec::new();
    for n in FAN {
        let engine_times = Mutex::new(Vec::new());
        group.bench_with_input(BenchmarkId::new("engine", n), &n, |b, &n| {
            b.to_async(&rt).iter_custom(|iters| {
                let (engine, times) = (&engine, &engine_times);
                let root = root.id.clone();
                async move {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let one = Instant::now();
                        let children = engine.fan_out(Some(&root), "again", n).await.unwrap();
                        times.lock().unwrap().push(one.elapsed());
                        assert!(children.iter().all(Result::is_ok));
                    }
                    started.elapsed()
                }
            });
        });
        let raw_times = Mutex::new(Vec::new());
        group.bench_with_input(BenchmarkId::new("raw", n), &n, |b, &n| {
            b.to_async(&rt).iter_custom(|iters| {
                let (client, times, root_id) = (&client, &raw_times, &root_id);
                async move {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let one = Instant::now();
                        raw_fan_out(client, root_id, n).await;
                        times.lock().unwrap().push(one.elapsed());
                    }
                    started.elapsed()
                }
            });
        });
        emulator.clear_requests();
        rows.push((
            n,
            median(engine_times.into_inner().unwrap()),
            median(raw_times.into_inner().unwrap()),
        ));
    }
    group.finish();

    eprintln!("\nfan-out, L = {LATENCY:?} (medians)");
    eprintln!(
        "{:>5} | {:>10} {:>8} | {:>10} {:>8} | {:>16}",
        "N", "engine ms", "/ L", "raw ms", "/ L", "engine-raw / N"
    );
    for (n, engine, raw) in rows {
        let l = LATENCY.as_secs_f64();
        eprintln!(
            "{n:>5} | {:>10.1} {:>8.3} | {:>10.1} {:>8.3} | {:>13.3} ms",
            engine.as_secs_f64() * 1e3,
            engine.as_secs_f64() / l,
            raw.as_secs_f64() * 1e3,
            raw.as_secs_f64() / l,
            (engine.as_secs_f64() - raw.as_secs_f64()) * 1e3 / n as f64,
        );
    }
}

fn overhead(c: &mut Criterion) {
    let rt = support::runtime();
    let emulator = rt.block_on(Emulator::spawn()).unwrap();
    let engine = support::engine(&emulator, ResponseTree::in_memory(), 4);
    let client = support::client(&emulator);
    let root = rt.block_on(engine.respond(None, "root")).unwrap();
    let root_id = root.origin.response_id.clone().unwrap().to_string();

    let mut group = c.benchmark_group("overhead");
    group.sample_size(pick(50, 20));
    group.warm_up_time(pick(Duration::from_secs(2), Duration::from_millis(500)));
    group.measurement_time(pick(Duration::from_secs(10), Duration::from_secs(2)));
    let engine_times = Mutex::new(Vec::new());
    let raw_times = Mutex::new(Vec::new());
    // Alternate engine and raw samples so that background load on this shared
    // machine hits both sides alike.
    for round in 0..pick(3, 1) {
        group.bench_function(BenchmarkId::new("engine", round), |b| {
            b.to_async(&rt)
                .iter_custom(|iters| timed(iters, &engine_times, || respond(&engine, &root.id)));
        });
        group.bench_function(BenchmarkId::new("raw", round), |b| {
            b.to_async(&rt)
                .iter_custom(|iters| timed(iters, &raw_times, || raw_one(&client, &root_id)));
        });
        emulator.clear_requests();
    }
    // One hop to the blocking pool and back: the engine makes three per respond
    // (read the parent, journal the attempt, commit the node).
    let hop_times = Mutex::new(Vec::new());
    group.bench_function("spawn_blocking", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            timed(iters, &hop_times, || async {
                tokio::task::spawn_blocking(|| ()).await.unwrap();
            })
        });
    });
    group.finish();
    let hop = median(hop_times.into_inner().unwrap());
    let engine = median(engine_times.into_inner().unwrap());
    let raw = median(raw_times.into_inner().unwrap());
    eprintln!(
        "\nengine overhead (no latency, medians): engine {engine:.2?}, raw {raw:.2?}, \
         overhead {:.1?} = {:.1}% of a raw round trip",
        engine.saturating_sub(raw),
        (engine.as_secs_f64() / raw.as_secs_f64() - 1.0) * 100.0
    );
    eprintln!("one spawn_blocking round trip (median): {hop:.1?}");
}

async fn respond(engine: &Engine, parent: &resptree::NodeId) {
    engine.respond(Some(parent), "again").await.unwrap();
}

/// The request the engine sends for a child, without the engine.
fn request(root_id: &str) -> CreateResponse {
    CreateResponse::new(MODEL, Input::items(vec![message_item("user", "again")]))
        .previous_response_id(root_id)
        .store(true)
}

async fn raw_one(client: &Client, root_id: &str) {
    let reply = client.create(&request(root_id)).await.unwrap();
    assert!(reply.is_completed());
}

async fn raw_fan_out(client: &Client, root_id: &str, n: usize) {
    let calls = (0..n).map(|_| raw_one(client, root_id));
    futures_util::future::join_all(calls).await;
}

const DURABLE_LATENCY: Duration = Duration::from_millis(50);
const DURABLE_FAN: [usize; 3] = [64, 256, 1024];
/// The gathering window the `sled-gather` variant sets.
const GATHER_WINDOW: Duration = Duration::from_millis(2);

/// One durable variant of the comparison: a sled tree and its store handle.
struct Durable {
    engine: Engine,
    root: resptree::NodeId,
    /// A second handle on the store, to read its flush counter.
    store: Arc<resptree::store::SledStore>,
}

/// A sled tree in `dir` whose group commit gathers for `window` (`None`: the
/// default), with a root.
fn durable_variant(
    rt: &tokio::runtime::Runtime,
    emulator: &Emulator,
    dir: &std::path::Path,
    window: Option<Duration>,
) -> Durable {
    let store = Arc::new(resptree::store::SledStore::open(dir).unwrap());
    let tree = ResponseTree::with_store(shared_store::Shared(Arc::clone(&store))).unwrap();
    if let Some(window) = window {
        tree.set_group_window(window);
    }
    let engine = support::engine(emulator, tree, 1024);
    let root = rt.block_on(engine.respond(None, "root")).unwrap().id;
    Durable {
        engine,
        root,
        store,
    }
}

/// Every fsync a sled store made: its sled flushes and its attempt journal's.
fn fsyncs_of(store: &resptree::store::SledStore) -> u64 {
    store.flushes() + store.journal_syncs()
}

/// `durable/{memory,sled,sled-gather}/N`: see the module doc. `sled` is a
/// sled tree as the library makes it (its group commit never waits for more
/// writers); `sled-gather` sets a gathering window of [`GATHER_WINDOW`].
/// Run one size at a time with a filter, e.g. `-- durable/.*/256`.
fn durable(c: &mut Criterion) {
    let rt = support::runtime();
    let emulator = rt
        .block_on(Emulator::builder().latency(DURABLE_LATENCY).spawn())
        .unwrap();
    let memory = support::engine(&emulator, ResponseTree::in_memory(), 1024);
    let memory_root = rt.block_on(memory.respond(None, "root")).unwrap().id;
    let dir = tempfile::tempdir().unwrap();
    let plain = durable_variant(&rt, &emulator, &dir.path().join("plain"), None);
    let gather = durable_variant(
        &rt,
        &emulator,
        &dir.path().join("gather"),
        Some(GATHER_WINDOW),
    );

    let mut group = c.benchmark_group("durable");
    group.sample_size(10);
    group.warm_up_time(pick(Duration::from_millis(500), Duration::from_millis(200)));
    group.measurement_time(pick(Duration::from_secs(3), Duration::from_secs(1)));
    let mut rows = Vec::new();
    let load_before = load_average();
    for n in DURABLE_FAN {
        let variants: [(&str, &Engine, &resptree::NodeId, Option<&Durable>); 3] = [
            ("memory", &memory, &memory_root, None),
            ("sled", &plain.engine, &plain.root, Some(&plain)),
            ("sled-gather", &gather.engine, &gather.root, Some(&gather)),
        ];
        let times: [Mutex<Vec<Duration>>; 3] = Default::default();
        // Process CPU time (every thread: engine, client and emulator) spent
        // in each variant's fan-outs, with how many fan-outs it covers.
        let mut cpu = [(Duration::ZERO, 0usize); 3];
        // Nodes and flushes of each sled variant over this size's rounds.
        let mut fsyncs = [(0usize, 0u64); 3];
        // Alternate the variants so background load on this shared machine
        // hits them alike.
        for round in 0..pick(3, 1) {
            for (k, (name, engine, root, durable)) in variants.iter().enumerate() {
                let times = &times[k];
                let (cpu_before, runs_before) = (cpu_time(), times.lock().unwrap().len());
                let before = durable.map(|d| (d.engine.tree().len(), fsyncs_of(&d.store)));
                group.bench_function(BenchmarkId::new(*name, format!("{n}/{round}")), |b| {
                    b.to_async(&rt).iter_custom(|iters| {
                        timed(iters, times, || async {
                            let children = engine.fan_out(Some(root), "again", n).await.unwrap();
                            assert!(children.iter().all(Result::is_ok));
                        })
                    });
                });
                cpu[k].0 += cpu_time().saturating_sub(cpu_before);
                cpu[k].1 += times.lock().unwrap().len() - runs_before;
                if let (Some(d), Some((nodes, flushes))) = (durable, before) {
                    fsyncs[k].0 += d.engine.tree().len() - nodes;
                    fsyncs[k].1 += fsyncs_of(&d.store) - flushes;
                }
            }
            emulator.clear_requests();
        }
        let per_run =
            |(total, runs): (Duration, usize)| total / u32::try_from(runs.max(1)).unwrap();
        let medians: Vec<Duration> = times
            .into_iter()
            .map(|t| median(t.into_inner().unwrap()))
            .collect();
        rows.push((
            n,
            medians,
            cpu.map(per_run),
            fsyncs.map(|(nodes, flushes)| nodes as f64 / flushes.max(1) as f64),
        ));
    }
    group.finish();

    eprintln!(
        "
durable fan-out, L = {DURABLE_LATENCY:?} (medians, alternating rounds; load average {load_before} before, {} after)
wall ms and CPU ms per fan-out (CPU: the whole process, from /proc/self/stat); ratios to memory",
        load_average()
    );
    eprintln!(
        "{:>5} | {:>9} {:>9} {:>9} | {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>9} {:>9} | {:>12} {:>12}",
        "N",
        "memory",
        "sled",
        "gather",
        "sled/m",
        "gather/m",
        "CPU mem",
        "CPU sled",
        "CPU gather",
        "CPU sled/m",
        "CPU gath/m",
        "nodes/fsync sled",
        "gather"
    );
    for (n, wall, cpu, per_fsync) in rows {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        eprintln!(
            "{n:>5} | {:>9.1} {:>9.1} {:>9.1} | {:>9.2} {:>9.2} | {:>9.1} {:>9.1} {:>9.1} | {:>9.2} {:>9.2} | {:>12.1} {:>12.1}",
            ms(wall[0]),
            ms(wall[1]),
            ms(wall[2]),
            ratio(wall[1], wall[0]),
            ratio(wall[2], wall[0]),
            ms(cpu[0]),
            ms(cpu[1]),
            ms(cpu[2]),
            ratio(cpu[1], cpu[0]),
            ratio(cpu[2], cpu[0]),
            per_fsync[1],
            per_fsync[2],
        );
    }
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

criterion_group!(benches, fanout, overhead, durable);
criterion_main!(benches);
