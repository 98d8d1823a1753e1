//! What one request costs the emulator as the history behind it grows, alone and
//! as one of 256 concurrent branches.
//!
//! ```text
//! cargo bench --bench emulator
//! RESPTREE_BENCH_QUICK=1 cargo bench --bench emulator
//! ```
//!
//! Set-up: chains of 10, 100 and 1 000 turns (one stored response per turn, each
//! continuing the previous one), built with the bare [`resptree::client::Client`]
//! against an in-process emulator.
//!
//! 1. `emulator_history/{10,100,1000}/round`: one `POST /responses` continuing the tip of
//!    each chain, one at a time, emulator without latency, so the whole in-process
//!    round trip is timed. Target: 1 000 turns within 1.5× of 10 turns.
//! 2. `emulator_concurrent/{1,256}/round`: the emulator's latency set to L = 200 ms
//!    (as in `benches/fanout.rs`), then one request continuing the 1 000-turn tip
//!    vs 256 such requests at once. Target: 256 within 2× of one.
//!
//! The variants of each part alternate in rounds, so background load on a shared
//! machine hits them alike; every iteration's time is kept and the printed ratios
//! are of medians over this one run.

// A benchmark's setup failing is a bug to see at once, not to handle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use resptree::client::{Client, CreateResponse, Input};
use resptree::emulator::Emulator;
use resptree::node::message_item;
use support::{MODEL, median, pick, timed};

const TURNS: [usize; 3] = [10, 100, 1_000];
const LATENCY: Duration = Duration::from_millis(200);
const CONCURRENT: usize = 256;

fn emulator(c: &mut Criterion) {
    let rt = support::runtime();
    let emulator = rt.block_on(Emulator::spawn()).unwrap();
    let client = support::client(&emulator);
    let started = Instant::now();
    let tips: Vec<String> = TURNS
        .iter()
        .map(|&turns| rt.block_on(chain(&client, turns)))
        .collect();
    eprintln!(
        "\nbuilt chains of {TURNS:?} turns in {:.1?}",
        started.elapsed()
    );
    emulator.clear_requests();

    history(c, &rt, &emulator, &client, &tips);
    let long_tip = tips.last().unwrap();
    concurrent(c, &rt, &emulator, &client, long_tip);
}

/// Part 1: one request at a time on each chain, no latency.
fn history(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    emulator: &Emulator,
    client: &Client,
    tips: &[String],
) {
    let mut group = c.benchmark_group("emulator_history");
    group.sample_size(pick(30, 10));
    group.warm_up_time(pick(Duration::from_secs(1), Duration::from_millis(300)));
    group.measurement_time(pick(Duration::from_secs(3), Duration::from_secs(1)));
    let times: Vec<Mutex<Vec<Duration>>> = TURNS.iter().map(|_| Mutex::default()).collect();
    for round in 0..pick(3, 2) {
        for ((turns, tip), times) in TURNS.iter().zip(tips).zip(&times) {
            group.bench_function(BenchmarkId::new(turns.to_string(), round), |b| {
                b.to_async(rt)
                    .iter_custom(|iters| timed(iters, times, || branch(client, tip)));
            });
            emulator.clear_requests();
        }
    }
    group.finish();

    let medians: Vec<Duration> = times
        .into_iter()
        .map(|t| median(t.into_inner().unwrap()))
        .collect();
    eprintln!("\nemulator: one request continuing a chain, no latency (medians)");
    eprintln!("{:>6} | {:>10} | {:>12}", "turns", "µs", "÷ 10 turns");
    for (turns, m) in TURNS.iter().zip(&medians) {
        eprintln!(
            "{turns:>6} | {:>10.1} | {:>12.2}",
            m.as_secs_f64() * 1e6,
            m.as_secs_f64() / medians[0].as_secs_f64()
        );
    }
}

/// Part 2: one request vs 256 at once, all continuing the longest chain, at L.
fn concurrent(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    emulator: &Emulator,
    client: &Client,
    tip: &str,
) {
    emulator.set_latency(LATENCY);
    let mut group = c.benchmark_group("emulator_concurrent");
    // Each iteration takes at least L: flat sampling keeps the count of them small.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(pick(Duration::from_secs(1), Duration::from_millis(300)));
    group.measurement_time(pick(Duration::from_secs(4), Duration::from_secs(2)));
    let counts = [1, CONCURRENT];
    let times: Vec<Mutex<Vec<Duration>>> = counts.iter().map(|_| Mutex::default()).collect();
    for round in 0..pick(3, 2) {
        for (&n, times) in counts.iter().zip(&times) {
            group.bench_function(BenchmarkId::new(n.to_string(), round), |b| {
                b.to_async(rt).iter_custom(|iters| {
                    timed(iters, times, || async move {
                        let calls = (0..n).map(|_| branch(client, tip));
                        futures_util::future::join_all(calls).await;
                    })
                });
            });
            emulator.clear_requests();
        }
    }
    group.finish();
    emulator.set_latency(Duration::ZERO);

    let [one, many]: [Duration; 2] = times
        .into_iter()
        .map(|t| median(t.into_inner().unwrap()))
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let l = LATENCY.as_secs_f64();
    eprintln!(
        "\nemulator: requests continuing the {}-turn tip at once, L = {LATENCY:?} (medians)",
        TURNS[TURNS.len() - 1]
    );
    eprintln!(
        "{:>5} | {:>10} | {:>8} | {:>8}",
        "N", "ms", "÷ L", "÷ N = 1"
    );
    for (n, m) in [(1, one), (CONCURRENT, many)] {
        eprintln!(
            "{n:>5} | {:>10.1} | {:>8.3} | {:>8.2}",
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() / l,
            m.as_secs_f64() / one.as_secs_f64()
        );
    }
}

/// A chain of `turns` stored responses; returns the id of the last one.
async fn chain(client: &Client, turns: usize) -> String {
    let mut tip: Option<String> = None;
    for turn in 0..turns {
        let mut request = CreateResponse::new(
            MODEL,
            Input::items(vec![message_item("user", &format!("turn {turn}"))]),
        )
        .store(true);
        if let Some(previous) = &tip {
            request = request.previous_response_id(previous.clone());
        }
        let reply = client.create(&request).await.unwrap();
        tip = Some(reply.id);
    }
    tip.unwrap()
}

/// One stored child of `tip`, as `Engine::branch` sends it.
async fn branch(client: &Client, tip: &str) {
    let request = CreateResponse::new(MODEL, Input::items(vec![message_item("user", "branch")]))
        .previous_response_id(tip)
        .store(true);
    let reply = client.create(&request).await.unwrap();
    assert!(reply.is_completed());
}

criterion_group!(benches, emulator);
criterion_main!(benches);
