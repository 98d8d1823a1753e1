//! Beam search against the full tree of the same width and depth, and how
//! close a budgeted exploration's spend comes to its budget.
//!
//! ```text
//! cargo bench --bench explore                         # the tables, then timings
//! RESPTREE_BENCH_QUICK=1 cargo bench --bench explore  # shorter timings
//! ```
//!
//! Everything runs against the in-process emulator (no latency) with an
//! in-memory tree. The tables (requests, tokens, spend/budget) are exact
//! counts from one run each, printed before timing; they do not depend on the
//! machine. "Full tree" is the same exploration with every candidate kept
//! (`keep` = width^(depth−1)), i.e. every node of a `width`-ary tree of that
//! depth. Scoring is a function (free), so the token columns compare the
//! candidates alone; a judge adds its own requests (pairwise: c·(c−1) per
//! level of c candidates, rubric: c), which the budget table includes.
//!
//! Timed: one beam search and one full tree of each shape, end to end
//! (requests, commits, scoring), compared as a ratio in the same run.

// A benchmark's setup failing is a bug to see at once, not to handle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use resptree::emulator::Emulator;
use resptree::explore::{Budget, ExploreOutcome, Judge, Strategy};
use resptree::{Engine, Node, ResponseTree};
use support::pick;

/// (width, keep, depth) of the beams compared.
const SHAPES: [(usize, usize, usize); 4] = [(3, 1, 3), (3, 2, 3), (4, 2, 3), (4, 2, 4)];

/// A deterministic, free score. (A `Scorer` takes the node by value.)
#[allow(clippy::needless_pass_by_value)]
fn score(node: Node) -> std::future::Ready<resptree::Result<f64>> {
    std::future::ready(Ok(
        node.output_text.bytes().map(f64::from).sum::<f64>() % 89.0
    ))
}

fn strategy(width: usize, keep: usize, depth: usize) -> Strategy {
    Strategy::beam(width, keep, depth)
        .follow_up("Improve it.")
        .scorer(score)
        .max_output_tokens(64)
        .no_warming()
}

/// A fresh emulator, tree and root; the exploration; what the emulator made.
async fn run(strategy: &Strategy) -> (ExploreOutcome, u64) {
    let emulator = Emulator::spawn().await.unwrap();
    let engine: Engine = support::engine(&emulator, ResponseTree::in_memory(), 64);
    let root = engine
        .respond(None, "Plan a weekend in Paris")
        .await
        .unwrap();
    let before = emulator.created_count();
    let outcome = engine
        .explore(&root.id, "Suggest a first stop.", strategy)
        .await
        .unwrap();
    let made = emulator.created_count() - before;
    emulator.shutdown().await;
    (outcome, made)
}

fn full(width: usize, depth: usize) -> usize {
    width.pow(u32::try_from(depth).unwrap() - 1)
}

fn tables(rt: &tokio::runtime::Runtime) {
    eprintln!(
        "\n{:>5} {:>4} {:>5} | {:>8} {:>8} | {:>8} {:>8} | {:>6} {:>6}",
        "width", "keep", "depth", "beam req", "full req", "beam tok", "full tok", "req %", "tok %"
    );
    for (width, keep, depth) in SHAPES {
        let (beam, beam_req) = rt.block_on(run(&strategy(width, keep, depth)));
        let (all, full_req) = rt.block_on(run(&strategy(width, full(width, depth), depth)));
        let (bt, ft) = (beam.spent.total_tokens, all.spent.total_tokens);
        eprintln!(
            "{width:>5} {keep:>4} {depth:>5} | {beam_req:>8} {full_req:>8} | {bt:>8} {ft:>8} | {:>5.1}% {:>5.1}%",
            100.0 * beam_req as f64 / full_req as f64,
            100.0 * bt as f64 / ft as f64,
        );
    }

    // Spend against budget: a judged beam (3, 2, 3) under budgets that are
    // fractions of what it costs unbudgeted.
    let judged = |budget: Option<u64>| {
        let s = Strategy::beam(3, 2, 3)
            .follow_up("Improve it.")
            .judge(Judge::rubric("How good is it?", 1, 10).max_output_tokens(32))
            .max_output_tokens(64);
        match budget {
            Some(b) => s.budget(Budget::tokens(b)),
            None => s,
        }
    };
    let (unbudgeted, _) = rt.block_on(run(&judged(None)));
    let whole = unbudgeted.spent.total_tokens;
    eprintln!(
        "\njudged beam (3, 2, 3), rubric judge: {whole} tokens unbudgeted\n{:>8} {:>8} {:>7} {:>6} {:>10}",
        "budget", "spent", "spent %", "levels", "stopped at"
    );
    for percent in [25u64, 50, 75, 100, 150, 200, 300] {
        let budget = whole * percent / 100;
        let (outcome, _) = rt.block_on(run(&judged(Some(budget))));
        let spent = outcome.spent.total_tokens;
        assert!(spent <= budget, "a budget was exceeded");
        let stop = match &outcome.stopped {
            Some(resptree::explore::StopReason::Budget { level, .. }) => format!("level {level}"),
            _ => "-".to_owned(),
        };
        eprintln!(
            "{budget:>8} {spent:>8} {:>6.1}% {:>6} {stop:>10}",
            100.0 * spent as f64 / budget.max(1) as f64,
            outcome.levels.len()
        );
    }
}

fn explore(c: &mut Criterion) {
    let rt = support::runtime();
    tables(&rt);
    let mut group = c.benchmark_group("explore");
    group.sample_size(10);
    group.warm_up_time(pick(Duration::from_secs(1), Duration::from_millis(200)));
    group.measurement_time(pick(Duration::from_secs(5), Duration::from_secs(1)));
    for (width, keep, depth) in [(3, 1, 3), (4, 2, 3)] {
        let shape = format!("{width}x{keep}x{depth}");
        let beam = strategy(width, keep, depth);
        let all = strategy(width, full(width, depth), depth);
        group.bench_function(BenchmarkId::new("beam", &shape), |b| {
            b.to_async(&rt).iter(|| run(&beam));
        });
        group.bench_function(BenchmarkId::new("full_tree", &shape), |b| {
            b.to_async(&rt).iter(|| run(&all));
        });
    }
    group.finish();
}

criterion_group!(benches, explore);
criterion_main!(benches);
