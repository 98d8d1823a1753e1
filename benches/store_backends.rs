//! sled vs PostgreSQL: append throughput, reopen time, path query.
//!
//! ```text
//! RESPTREE_TEST_POSTGRES_URL=postgres://user@127.0.0.1:5432/db cargo bench --all-features --bench store_backends
//! RESPTREE_BENCH_QUICK=1 ...                       # a 2 000-node tree instead of 20 000
//! ```
//!
//! Without `RESPTREE_TEST_POSTGRES_URL` the PostgreSQL half is skipped with a
//! note (benchmarks are not tests). Each PostgreSQL run uses a fresh schema
//! `bench_<uuid>` in that database. Results are in `docs/benchmarks.md`.
//!
//! - `append`: one `ResponseTree::insert` (one atomic write: a sled transaction
//!   plus flush, or one PostgreSQL transaction) under a fixed parent.
//! - `reopen`: `ResponseTree::with_store` on an already populated store (a
//!   bushy tree, 8 children per node): load every topology, rebuild the graph.
//! - `path`: the root-to-node path of a node 200 deep. For sled the tree is
//!   already in memory, so it is a graph walk; for PostgreSQL it is the
//!   recursive-CTE `PostgresStore::path_to_root`, i.e. what a process pays to
//!   work on one branch without loading the forest.

// A benchmark's setup failing is a bug to see at once, not to handle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use resptree::store::{Batch, Op, PostgresOptions, PostgresStore, SledStore, Store};
use resptree::{Node, NodeId, ResponseTree, Timestamp};

#[path = "../tests/integration/support/shared_store.rs"]
mod shared_store;
use shared_store::Shared;

const URL_VAR: &str = "RESPTREE_TEST_POSTGRES_URL";
const DEPTH: usize = 200;

fn size() -> usize {
    if std::env::var("RESPTREE_BENCH_QUICK").is_ok_and(|v| v == "1") {
        2_000
    } else {
        20_000
    }
}

fn id(i: usize) -> NodeId {
    // Realistic length and scattered order, like server ids.
    let scrambled = (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    NodeId::new(&format!("resp_{scrambled:048x}")).unwrap()
}

fn small_node(i: usize, parent: Option<usize>) -> Node {
    Node::new(id(i), parent.map(id))
        .with_created_at(Timestamp(1_767_225_600_000 + i as i64))
        .with_user_text("What should we see on Sunday?")
        .with_output_text("Montmartre in the morning, then the Musée d'Orsay.")
}

/// `n` nodes: a bushy tree (8 children each) over nodes `0..n-DEPTH`, and a
/// chain of `DEPTH` nodes hanging under node 0 (its last node is `n - 1`).
fn populate(store: &dyn Store, n: usize) {
    let bushy = n - DEPTH;
    let parents = (0..n).map(|i| {
        if i == 0 {
            None
        } else if i < bushy {
            Some((i - 1) / 8)
        } else if i == bushy {
            Some(0)
        } else {
            Some(i - 1)
        }
    });
    let ops: Vec<Op> = parents
        .enumerate()
        .map(|(i, p)| Op::PutNode(Box::new(small_node(i, p))))
        .collect();
    for chunk in ops.chunks(2_000) {
        store.apply(Batch::from(chunk.to_vec())).unwrap();
    }
    store.flush().unwrap();
}

fn postgres(url: &str) -> PostgresStore {
    let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
    PostgresStore::connect_with(url, PostgresOptions::default().with_schema(schema)).unwrap()
}

fn backends(c: &mut Criterion) {
    let url = std::env::var(URL_VAR).ok().filter(|u| !u.trim().is_empty());
    if url.is_none() {
        eprintln!(
            "note: {URL_VAR} is not set, so only the sled half runs; \
             `bash scripts/test` shows how to start a throwaway PostgreSQL"
        );
    }
    let n = size();
    let dir = tempfile::tempdir().unwrap();

    // Append throughput.
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(1));
    let counter = AtomicUsize::new(1_000_000);
    let mut append = |name: &str, store: Box<dyn Store>| {
        let tree = ResponseTree::with_store(store).unwrap();
        tree.insert(small_node(0, None)).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                tree.insert(small_node(i, Some(0))).unwrap();
            });
        });
    };
    append(
        "sled",
        Box::new(SledStore::open(dir.path().join("append")).unwrap()),
    );
    if let Some(url) = &url {
        append("postgres", Box::new(postgres(url)));
    }
    group.finish();

    // Reopen and path, on one populated store per backend.
    let sled_path = dir.path().join("tree");
    {
        let store = SledStore::open(&sled_path)
            .unwrap()
            .with_durability(resptree::store::Durability::Buffered);
        populate(&store, n);
    }
    let pg = url.as_deref().map(|url| {
        let store = postgres(url);
        populate(&store, n);
        Arc::new(store)
    });

    let mut group = c.benchmark_group("reopen");
    group.sample_size(10);
    group.bench_with_input(BenchmarkId::new("sled", n), &sled_path, |b, path| {
        b.iter(|| black_box(ResponseTree::open(path).unwrap().len()));
    });
    if let Some(pg) = &pg {
        group.bench_with_input(BenchmarkId::new("postgres", n), pg, |b, pg| {
            b.iter(|| {
                // The tree owns its store; `Shared` lends it the one pool, so
                // the figure is the load, not a reconnect.
                let store = Shared(Arc::clone(pg));
                black_box(ResponseTree::with_store(store).unwrap().len())
            });
        });
    }
    group.finish();

    let leaf = id(n - 1);
    let mut group = c.benchmark_group("path");
    let tree = ResponseTree::open(&sled_path).unwrap();
    group.bench_function(BenchmarkId::new("sled_graph", DEPTH), |b| {
        b.iter(|| black_box(tree.path(&leaf).unwrap().len()));
    });
    if let Some(pg) = &pg {
        assert_eq!(pg.path_to_root(&leaf).unwrap().len(), DEPTH + 1);
        group.bench_function(BenchmarkId::new("postgres_cte", DEPTH), |b| {
            b.iter(|| black_box(pg.path_to_root(&leaf).unwrap().len()));
        });
    }
    group.finish();
}

criterion_group!(benches, backends);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
