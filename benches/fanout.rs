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
//!
//! The printed ratios use medians over the iterations of this run.

// A benchmark's setup failing is a bug to see at once, not to handle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use resptree::client::{Client, CreateResponse, Input};
use resptree::emulator::Emulator;
use resptree::node::message_item;
use resptree::{Engine, ResponseTree};
use support::{MODEL, pick};

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

/// Runs `one` `iters` times, recording each duration; returns the total.
async fn timed<F, Fut>(iters: u64, times: &Mutex<Vec<Duration>>, mut one: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let started = Instant::now();
    for _ in 0..iters {
        let t = Instant::now();
        one().await;
        times.lock().unwrap().push(t.elapsed());
    }
    started.elapsed()
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

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

criterion_group!(benches, fanout, overhead);
criterion_main!(benches);
