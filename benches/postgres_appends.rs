//! PostgreSQL: multi-process append throughput through `ResponseTree::commit`,
//! with and without group commit.
//!
//! ```text
//! RESPTREE_TEST_POSTGRES_URL=postgres://user@127.0.0.1:5432/db cargo bench --all-features --bench postgres_appends
//! RESPTREE_BENCH_APPENDS=1600 ...   # appends per configuration (default 1 600)
//! ```
//!
//! P "processes" — each its own `PostgresStore` (own connection pool) and its
//! own `ResponseTree` over one shared schema — append children of one root.
//! Within a process, W writer threads call `commit` concurrently: with W = 1
//! every commit is its own transaction; with W > 1 the tree's group commit
//! coalesces the commits waiting at the same moment into one transaction. The
//! harness counts the store writes each tree makes, so it prints the mean
//! group size (commits per transaction) next to appends/s.
//!
//! Threads stand in for processes: nothing is shared between the P trees but
//! the database, which is what a second process shares. Without
//! `RESPTREE_TEST_POSTGRES_URL` the bench prints a note and does nothing
//! (benchmarks are not tests). Each configuration uses a fresh schema
//! `bench_appends_<uuid>` in that database. Results are in `docs/benchmarks.md`.

// A benchmark's setup failing is a bug to see at once, not to handle.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use resptree::store::{Attempt, Batch, Changes, Loaded, PostgresOptions, PostgresStore, Store};
use resptree::{Node, NodeId, RefName, ResponseTree};

fn main() {
    let Ok(url) = std::env::var("RESPTREE_TEST_POSTGRES_URL") else {
        println!("postgres_appends: RESPTREE_TEST_POSTGRES_URL is not set; skipped");
        return;
    };
    let appends: usize = std::env::var("RESPTREE_BENCH_APPENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1600);
    println!("| P | W | appends/s | transactions | commits / transaction |");
    println!("|---:|---:|---:|---:|---:|");
    for writers in [1, 8] {
        for processes in [1, 2, 4, 8] {
            let run = measure(&url, processes, writers, appends);
            println!(
                "| {processes} | {writers} | {:.0} | {} | {:.2} |",
                run.appends as f64 / run.elapsed.as_secs_f64(),
                run.writes,
                run.appends as f64 / run.writes as f64,
            );
        }
    }
}

struct Run {
    appends: u64,
    writes: u64,
    elapsed: Duration,
}

/// `processes` trees over one fresh schema, `writers` threads each, about
/// `total` appends in all.
fn measure(url: &str, processes: usize, writers: usize, total: usize) -> Run {
    let schema = format!("bench_appends_{}", uuid::Uuid::now_v7().simple());
    let open = || {
        let store =
            PostgresStore::connect_with(url, PostgresOptions::default().with_schema(&schema))
                .unwrap();
        Counted {
            inner: store,
            writes: Arc::new(AtomicU64::new(0)),
        }
    };
    let root = Node::new(NodeId::local(), None);
    let root_id = root.id.clone();
    let first = open();
    let first_writes = Arc::clone(&first.writes);
    let first = ResponseTree::with_store(first).unwrap();
    first.commit(vec![root], &[]).unwrap();
    first_writes.store(0, Ordering::SeqCst);
    let mut trees = vec![(Arc::new(first), first_writes)];
    for _ in 1..processes {
        let store = open();
        let writes = Arc::clone(&store.writes);
        trees.push((Arc::new(ResponseTree::with_store(store).unwrap()), writes));
    }
    let per_writer = total.div_ceil(processes * writers);
    let start = Arc::new(Barrier::new(processes * writers + 1));
    let threads: Vec<_> = trees
        .iter()
        .flat_map(|(tree, _)| (0..writers).map(move |_| Arc::clone(tree)))
        .map(|tree| {
            let start = Arc::clone(&start);
            let root = root_id.clone();
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..per_writer {
                    let child = Node::new(NodeId::local(), Some(root.clone()));
                    tree.commit(vec![child], &[]).unwrap();
                }
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    for thread in threads {
        thread.join().unwrap();
    }
    let elapsed = began.elapsed();
    let writes = trees.iter().map(|(_, w)| w.load(Ordering::SeqCst)).sum();
    Run {
        appends: (per_writer * processes * writers) as u64,
        writes,
        elapsed,
    }
}

/// A store that counts its writes (transactions), so the bench can report the
/// group sizes that commits achieved.
#[derive(Debug)]
struct Counted {
    inner: PostgresStore,
    writes: Arc<AtomicU64>,
}

impl Store for Counted {
    fn load(&self) -> resptree::Result<Loaded> {
        self.inner.load()
    }
    fn node(&self, id: &NodeId) -> resptree::Result<Option<Node>> {
        self.inner.node(id)
    }
    fn apply(&self, batch: Batch) -> resptree::Result<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.apply(batch)
    }
    fn apply_deferred(&self, batch: Batch) -> resptree::Result<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.apply_deferred(batch)
    }
    fn sync(&self) -> resptree::Result<()> {
        self.inner.sync()
    }
    fn attempts(&self) -> resptree::Result<Vec<Attempt>> {
        self.inner.attempts()
    }
    fn refs(&self) -> resptree::Result<Vec<(RefName, NodeId)>> {
        self.inner.refs()
    }
    fn flush(&self) -> resptree::Result<()> {
        self.inner.flush()
    }
    fn changes_since(&self, cursor: u64) -> resptree::Result<Changes> {
        self.inner.changes_since(cursor)
    }
    fn change_signal(&self) -> resptree::Result<Option<resptree::store::ChangeSignal>> {
        self.inner.change_signal()
    }
    fn annotations(&self, node: &NodeId) -> resptree::Result<Vec<resptree::Stamped>> {
        self.inner.annotations(node)
    }
    fn annotated(
        &self,
        kind: Option<resptree::AnnotationKind>,
    ) -> resptree::Result<Vec<(NodeId, resptree::Stamped)>> {
        self.inner.annotated(kind)
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
