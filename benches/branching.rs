//! Branching a response with resptree versus cloning a Conversation, as the
//! history grows.
//!
//! ```text
//! cargo bench --bench branching                         # timings for every cell
//! RESPTREE_BENCH_QUICK=1 cargo bench --bench branching  # timings for 10/100 turns, 2/8 branches
//! ```
//!
//! Both sides run against the same in-process emulator (no latency) and hold the
//! same history: `turns` user/assistant exchanges, as a chain of stored responses
//! and as a Conversation. Making `b` branches then costs:
//!
//! - resptree: `Engine::branch`, one `POST /responses` per branch naming the tip as
//!   `previous_response_id` (the tree is in memory, so this is request cost only);
//! - the workaround, per branch: list the source conversation 100 items per page,
//!   create a conversation with the first 20 items, append the rest 20 per call,
//!   then respond in the copy. The branches run concurrently, as resptree's do.
//!
//! Before timing, each cell is run once with the emulator's request log cleared,
//! and a table of requests, bytes and wall time is printed (always for the whole
//! grid, quick mode included): those counts are exact, the timings are one run.
//! The `raw ms` column sends resptree's requests again with the bare client: the
//! part of resptree's time that the server spends, not the engine.

// A benchmark's setup failing is a bug to see at once, not to handle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use resptree::client::{Client, CreateResponse, Input};
use resptree::emulator::Emulator;
use resptree::node::message_item;
use resptree::{Engine, NodeId, ResponseId, ResponseTree};
use support::{MODEL, Traffic, conversation, pick, take_traffic};

const TURNS: [usize; 3] = [10, 100, 1_000];
const BRANCHES: [usize; 3] = [2, 8, 32];

fn branching(c: &mut Criterion) {
    let rt = support::runtime();
    let emulator = rt.block_on(Emulator::spawn()).unwrap();
    let base = emulator.base_url();
    let http = reqwest::Client::new();
    let engine = support::engine(&emulator, ResponseTree::in_memory(), 64);
    let client = support::client(&emulator);

    let mut group = c.benchmark_group("branching");
    group.sample_size(10);
    group.warm_up_time(pick(Duration::from_secs(1), Duration::from_millis(200)));
    group.measurement_time(pick(Duration::from_secs(5), Duration::from_secs(1)));

    eprintln!(
        "\n{:>6} {:>4} | {:>6} {:>10} {:>10} {:>9} | {:>5} {:>8} {:>8} {:>8} {:>7} | {:>9} {:>7}",
        "turns",
        "br",
        "clone",
        "sent B",
        "recv B",
        "ms",
        "tree",
        "sent B",
        "recv B",
        "ms",
        "raw ms",
        "req ratio",
        "t ratio"
    );
    for turns in TURNS {
        let source = rt.block_on(conversation::seeded(&http, &base, turns));
        let tip = rt.block_on(support::chain(&engine, turns));
        let tip_response = engine.tree().get(&tip).unwrap().origin.response_id.unwrap();
        for branches in BRANCHES {
            let texts: Vec<String> = (0..branches).map(|b| format!("branch {b}")).collect();

            // One counted run of each side.
            take_traffic(&emulator);
            let started = Instant::now();
            rt.block_on(clone_branches(&http, &base, &source, &texts));
            let clone_time = started.elapsed();
            let clone = take_traffic(&emulator);
            let started = Instant::now();
            rt.block_on(tree_branches(&engine, &tip, &texts));
            let tree_time = started.elapsed();
            let tree = take_traffic(&emulator);
            // The same requests without the engine: what the server side costs.
            let started = Instant::now();
            rt.block_on(raw_branches(&client, &tip_response, &texts));
            let raw_time = started.elapsed();
            take_traffic(&emulator);
            print_row(
                turns,
                branches,
                (clone, clone_time),
                (tree, tree_time),
                raw_time,
            );

            let timed = pick(true, turns <= 100 && branches <= 8);
            if !timed {
                continue;
            }
            let cell = format!("turns={turns}/branches={branches}");
            group.bench_function(BenchmarkId::new("clone", &cell), |b| {
                b.to_async(&rt).iter(|| async {
                    emulator.clear_requests();
                    clone_branches(&http, &base, &source, &texts).await;
                });
            });
            group.bench_function(BenchmarkId::new("resptree", &cell), |b| {
                b.to_async(&rt).iter(|| async {
                    emulator.clear_requests();
                    tree_branches(&engine, &tip, &texts).await;
                });
            });
        }
    }
    group.finish();
}

/// The workaround: one cloned conversation per text, all concurrently.
async fn clone_branches(http: &reqwest::Client, base: &str, source: &str, texts: &[String]) {
    let clones = texts
        .iter()
        .map(|text| conversation::clone_and_respond(http, base, source, text));
    futures_util::future::join_all(clones).await;
}

/// The requests `tree_branches` sends, made with the bare client.
async fn raw_branches(client: &Client, tip: &ResponseId, texts: &[String]) {
    let calls = texts.iter().map(|text| async move {
        let request = CreateResponse::new(MODEL, Input::items(vec![message_item("user", text)]))
            .previous_response_id(tip.to_string())
            .store(true);
        client.create(&request).await.unwrap()
    });
    futures_util::future::join_all(calls).await;
}

/// resptree: one child of `tip` per text.
async fn tree_branches(engine: &Engine, tip: &NodeId, texts: &[String]) {
    for child in engine.branch(tip, texts).await.unwrap() {
        child.unwrap();
    }
}

fn print_row(
    turns: usize,
    branches: usize,
    (clone, clone_time): (Traffic, Duration),
    (tree, tree_time): (Traffic, Duration),
    raw_time: Duration,
) {
    eprintln!(
        "{turns:>6} {branches:>4} | {:>6} {:>10} {:>10} {:>9.1} | {:>5} {:>8} {:>8} {:>8.1} {:>7.1} | {:>9.1} {:>7.1}",
        clone.requests,
        clone.bytes_in,
        clone.bytes_out,
        clone_time.as_secs_f64() * 1e3,
        tree.requests,
        tree.bytes_in,
        tree.bytes_out,
        tree_time.as_secs_f64() * 1e3,
        raw_time.as_secs_f64() * 1e3,
        clone.requests as f64 / tree.requests as f64,
        clone_time.as_secs_f64() / tree_time.as_secs_f64(),
    );
}

criterion_group!(benches, branching);
criterion_main!(benches);
