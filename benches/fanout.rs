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
//! 3. `durable/rounds/N`: `Engine::fan_out` of N = 64, 256, 1024 children at
//!    L = 50 ms into an in-memory tree and into two sled trees with the
//!    default `Durability::Flush` — one as the library makes it (`sled`: the
//!    group commit never waits for more writers) and one with a 2 ms
//!    gathering window (`sled-gather`, `ResponseTree::set_group_window`) —,
//!    and, to tell the store's CPU from its flushes' latency, a sled tree
//!    with `Durability::Buffered` (`sled-buffered`: the same writes, no
//!    flush awaited; not a durable variant, not a target). A
//!    round is one fan-out of each variant, back to back, in an order rotated
//!    from round to round; printed: each variant's median wall time, the
//!    median and quartiles of the per-round ratios to memory, the process CPU
//!    per fan-out of each variant and its ratio to memory, the nodes committed
//!    per fsync, and the distribution of the sled trees' `Store::sync` times
//!    (one per commit group).
//!
//! The printed ratios of 1 and 2 use medians over the iterations of this run.

// A benchmark's setup failing is a bug to see at once, not to handle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

#[path = "../tests/integration/support/shared_store.rs"]
mod shared_store;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
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
/// The variants of the durable comparison, in their printed order.
const VARIANTS: [&str; 4] = ["memory", "sled", "sled-gather", "sled-buffered"];

/// How long the measured rounds of size `n` should take in all (flat
/// sampling: criterion runs at least 10 rounds, more if they fit): about 30
/// rounds of 64 children, 20 of 256 and 10 of 1 024 in quick mode (each round
/// is one fan-out of every variant), twice that in full mode.
fn durable_measurement(n: usize) -> Duration {
    let quick = match n {
        0..=64 => Duration::from_secs(6),
        65..=256 => Duration::from_secs(10),
        _ => Duration::from_secs(1),
    };
    pick(quick * 2, quick)
}

/// One durable variant of the comparison: a sled tree and its store handle.
struct Durable {
    engine: Engine,
    root: resptree::NodeId,
    /// A second handle on the store, to read its flush counter.
    store: Arc<resptree::store::SledStore>,
    /// How long each `Store::sync` of this tree took (a group's flush).
    syncs: Arc<Mutex<Vec<Duration>>>,
}

/// A sled tree in `dir` whose group commit gathers for `window` (`None`: the
/// default), with a root.
fn durable_variant(
    rt: &tokio::runtime::Runtime,
    emulator: &Emulator,
    dir: &std::path::Path,
    window: Option<Duration>,
    durability: resptree::store::Durability,
) -> Durable {
    let store = Arc::new(
        resptree::store::SledStore::open(dir)
            .unwrap()
            .with_durability(durability),
    );
    let syncs = Arc::new(Mutex::new(Vec::new()));
    let timed = TimedSync {
        inner: shared_store::Shared(Arc::clone(&store)),
        syncs: Arc::clone(&syncs),
    };
    let tree = ResponseTree::with_store(timed).unwrap();
    if let Some(window) = window {
        tree.set_group_window(window);
    }
    let engine = support::engine(emulator, tree, 1024);
    let root = rt.block_on(engine.respond(None, "root")).unwrap().id;
    Durable {
        engine,
        root,
        store,
        syncs,
    }
}

/// A store that records how long each `sync` (a group commit's flush: sled's
/// flush, the journal file's fsync and the commit watermark) takes, and
/// otherwise is the store it wraps.
#[derive(Debug)]
struct TimedSync<S: ?Sized> {
    inner: shared_store::Shared<S>,
    syncs: Arc<Mutex<Vec<Duration>>>,
}

impl<S: resptree::store::Store + ?Sized> resptree::store::Store for TimedSync<S> {
    fn load(&self) -> resptree::Result<resptree::store::Loaded> {
        self.inner.load()
    }
    fn node(&self, id: &resptree::NodeId) -> resptree::Result<Option<resptree::Node>> {
        self.inner.node(id)
    }
    fn apply(&self, batch: resptree::store::Batch) -> resptree::Result<()> {
        self.inner.apply(batch)
    }
    fn apply_deferred(&self, batch: resptree::store::Batch) -> resptree::Result<()> {
        self.inner.apply_deferred(batch)
    }
    fn sync(&self) -> resptree::Result<()> {
        let started = Instant::now();
        let synced = self.inner.sync();
        self.syncs.lock().unwrap().push(started.elapsed());
        synced
    }
    fn attempts(&self) -> resptree::Result<Vec<resptree::store::Attempt>> {
        self.inner.attempts()
    }
    fn refs(&self) -> resptree::Result<Vec<(resptree::RefName, resptree::NodeId)>> {
        self.inner.refs()
    }
    fn flush(&self) -> resptree::Result<()> {
        self.inner.flush()
    }
    fn is_blocking(&self) -> bool {
        self.inner.is_blocking()
    }
    fn search(
        &self,
        query: &resptree::search::IndexQuery,
    ) -> resptree::Result<Option<Vec<resptree::search::Candidate>>> {
        self.inner.search(query)
    }
}

/// Every fsync a sled store made: its sled flushes and its attempt journal's.
fn fsyncs_of(store: &resptree::store::SledStore) -> u64 {
    store.flushes() + store.journal_syncs()
}

/// One round of the durable comparison: one fan-out of each variant.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// Wall time of each variant's fan-out, in [`VARIANTS`] order.
    wall: [Duration; 4],
}

/// What a size's rounds added up to, per variant.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    /// Process CPU time (every thread: engine, client and emulator) over the
    /// variant's fan-outs.
    cpu: Duration,
    fan_outs: u32,
    /// Nodes committed and fsyncs made (sled variants).
    nodes: usize,
    fsyncs: u64,
}

/// The variants as the rounds run them.
struct Variants<'a> {
    engines: [(&'a Engine, &'a resptree::NodeId, Option<&'a Durable>); 4],
}

impl Variants<'_> {
    /// Runs one round: a fan-out of `n` children of each variant, starting
    /// with variant `first` (rotated from round to round, so that no variant
    /// always runs right after the same other one).
    async fn round(&self, n: usize, first: usize, totals: &Mutex<[Totals; 4]>) -> Round {
        let mut wall = [Duration::ZERO; 4];
        for k in (0..4).map(|i| (first + i) % 4) {
            let (engine, root, durable) = self.engines[k];
            let before = durable.map(|d| (d.engine.tree().len(), fsyncs_of(&d.store)));
            let cpu_before = cpu_time();
            let started = Instant::now();
            let children = engine.fan_out(Some(root), "again", n).await.unwrap();
            wall[k] = started.elapsed();
            let cpu = cpu_time().saturating_sub(cpu_before);
            assert!(children.iter().all(Result::is_ok));
            let mut totals = totals.lock().unwrap();
            let t = &mut totals[k];
            t.cpu += cpu;
            t.fan_outs += 1;
            if let (Some(d), Some((nodes, fsyncs))) = (durable, before) {
                t.nodes += d.engine.tree().len() - nodes;
                t.fsyncs += fsyncs_of(&d.store) - fsyncs;
            }
        }
        Round { wall }
    }
}

/// `durable/rounds/N`: see the module doc. `sled` is a sled tree as the
/// library makes it (its group commit never waits for more writers);
/// `sled-gather` sets a gathering window of [`GATHER_WINDOW`].
///
/// Each round runs one fan-out of every variant back to back, in an order
/// rotated from round to round, and the ratios printed are the **median of
/// the per-round ratios** (sled / memory of the same round) with their
/// quartiles: background load that changes over seconds hits the fan-outs
/// of one round alike, where medians taken over separate blocks of
/// iterations (what this bench did before) compared a variant measured
/// under one load with another measured seconds later under another.
/// Run one size with a filter, e.g. `-- durable/rounds/256`.
fn durable(c: &mut Criterion) {
    let rt = support::runtime();
    let emulator = rt
        .block_on(Emulator::builder().latency(DURABLE_LATENCY).spawn())
        .unwrap();
    let memory = support::engine(&emulator, ResponseTree::in_memory(), 1024);
    let memory_root = rt.block_on(memory.respond(None, "root")).unwrap().id;
    let dir = tempfile::tempdir().unwrap();
    let flush = resptree::store::Durability::Flush;
    let plain = durable_variant(&rt, &emulator, &dir.path().join("plain"), None, flush);
    let gather = durable_variant(
        &rt,
        &emulator,
        &dir.path().join("gather"),
        Some(GATHER_WINDOW),
        flush,
    );
    // The same store work without waiting for the disk: what sled costs
    // apart from its flushes' latency.
    let buffered = durable_variant(
        &rt,
        &emulator,
        &dir.path().join("buffered"),
        None,
        resptree::store::Durability::Buffered,
    );
    let variants = Variants {
        engines: [
            (&memory, &memory_root, None),
            (&plain.engine, &plain.root, Some(&plain)),
            (&gather.engine, &gather.root, Some(&gather)),
            (&buffered.engine, &buffered.root, Some(&buffered)),
        ],
    };

    let mut group = c.benchmark_group("durable");
    // One timed call of the routine is one round: its first call (criterion's
    // warm-up, which lasts one call when it is this short) is dropped below.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    let mut rows = Vec::new();
    let load_before = load_average();
    for n in DURABLE_FAN {
        group.measurement_time(durable_measurement(n));
        let rounds: Mutex<Vec<Round>> = Mutex::new(Vec::new());
        let totals: Mutex<[Totals; 4]> = Mutex::new(Default::default());
        let syncs_before = [&plain, &gather].map(|d| d.syncs.lock().unwrap().len());
        let mut ran = false;
        group.bench_with_input(BenchmarkId::new("rounds", n), &n, |b, &n| {
            ran = true;
            b.to_async(&rt).iter_custom(|iters| {
                let (variants, rounds, totals) = (&variants, &rounds, &totals);
                async move {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let first = rounds.lock().unwrap().len() % 4;
                        let round = variants.round(n, first, totals).await;
                        rounds.lock().unwrap().push(round);
                    }
                    started.elapsed()
                }
            });
        });
        emulator.clear_requests();
        if !ran {
            continue;
        }
        let syncs = [(&plain, 0), (&gather, 1)]
            .map(|(d, k)| d.syncs.lock().unwrap()[syncs_before[k]..].to_vec());
        // The first round warmed up (a fresh size: new connections, growth).
        let mut rounds = rounds.into_inner().unwrap();
        if rounds.len() > 1 {
            rounds.remove(0);
        }
        rows.push((n, rounds, totals.into_inner().unwrap(), syncs));
    }
    group.finish();
    if rows.is_empty() {
        return;
    }
    print_durable(&rows, &load_before);
}

/// The quartiles (25 %, 50 %, 75 %) of `values`.
fn quartiles(mut values: Vec<f64>) -> [f64; 3] {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((values.len().max(1) - 1) as f64 * q).round() as usize;
        values.get(i).copied().unwrap_or(f64::NAN)
    };
    [at(0.25), at(0.5), at(0.75)]
}

type DurableRow = (usize, Vec<Round>, [Totals; 4], [Vec<Duration>; 2]);

fn print_durable(rows: &[DurableRow], load_before: &str) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    eprintln!(
        "
durable fan-out, L = {DURABLE_LATENCY:?}; rounds of one fan-out per variant, order rotated
(load average {load_before} before, {} after); buffered: sled with Durability::Buffered
wall: median ms over the rounds; x/m: median of the per-round ratios to memory [quartiles]
CPU: the whole process per fan-out (/proc/self/stat), total over the rounds",
        load_average()
    );
    eprintln!(
        "{:>5} {:>6} | {:>7} {:>7} {:>7} {:>7} | {:>17} {:>17} {:>17} | {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7}",
        "N",
        "rounds",
        "memory",
        "sled",
        "gather",
        "buffer",
        "sled/m",
        "gather/m",
        "buffered/m",
        "CPU mem",
        "sled",
        "gather",
        "buffer",
        "n/fsync",
        "gather"
    );
    for (n, rounds, totals, _) in rows {
        let wall = |k: usize| quartiles(rounds.iter().map(|r| ms(r.wall[k])).collect())[1];
        let ratio = |k: usize| {
            let q = quartiles(
                rounds
                    .iter()
                    .map(|r| r.wall[k].as_secs_f64() / r.wall[0].as_secs_f64().max(1e-9))
                    .collect(),
            );
            format!("{:.2} [{:.2}-{:.2}]", q[1], q[0], q[2])
        };
        let cpu = |k: usize| ms(totals[k].cpu) / f64::from(totals[k].fan_outs.max(1));
        let per_fsync = |k: usize| totals[k].nodes as f64 / totals[k].fsyncs.max(1) as f64;
        eprintln!(
            "{n:>5} {:>6} | {:>7.1} {:>7.1} {:>7.1} {:>7.1} | {:>17} {:>17} {:>17} | {:>7.1} {:>7.1} {:>7.1} {:>7.1} | {:>7.1} {:>7.1}",
            rounds.len(),
            wall(0),
            wall(1),
            wall(2),
            wall(3),
            ratio(1),
            ratio(2),
            ratio(3),
            cpu(0),
            cpu(1),
            cpu(2),
            cpu(3),
            per_fsync(1),
            per_fsync(2),
        );
        eprintln!(
            "{:>14} CPU / memory: sled {:.2}, gather {:.2}, buffered {:.2}",
            "",
            cpu(1) / cpu(0).max(1e-9),
            cpu(2) / cpu(0).max(1e-9),
            cpu(3) / cpu(0).max(1e-9),
        );
    }
    eprintln!(
        "\nStore::sync (a group's flush) per sled variant with Flush: count, median, 90th percentile, max (ms)"
    );
    for (n, _, _, syncs) in rows {
        for (name, times) in VARIANTS[1..].iter().zip(syncs) {
            let values: Vec<f64> = times.iter().map(|&d| ms(d)).collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let p90 = sorted
                .get(((sorted.len().max(1) - 1) as f64 * 0.9).round() as usize)
                .copied()
                .unwrap_or(f64::NAN);
            eprintln!(
                "{n:>5} {name:>12}: {:>5} syncs, median {:>6.2}, p90 {:>6.2}, max {:>6.2}",
                values.len(),
                quartiles(values)[1],
                p90,
                sorted.last().copied().unwrap_or(f64::NAN),
            );
        }
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
