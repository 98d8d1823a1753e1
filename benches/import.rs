//! Importing a large ChatGPT data export (issue 16, item 6): messages per second,
//! peak memory against the export's size, and the store's size against it.
//!
//! ```text
//! cargo bench --bench import                          # 1 000 conversations × 100 messages (≈ 86 MB)
//! RESPTREE_BENCH_QUICK=1 cargo bench --bench import   # 200 × 100
//! RESPTREE_BENCH_IMPORT=300x100 cargo bench --bench import   # any size
//! ```
//!
//! The export comes from the generator in `benches/support/chatgpt.rs` (nothing
//! is read from outside the repository). Every import runs in a fresh child
//! process, as `resptree import-chatgpt` does: open a new sled store, stream the
//! file through `import::import_chatgpt_reader`, close. The child reports the
//! import's wall time, CPU time and its peak resident memory (`VmHWM`, the whole
//! process); the parent measures the store directory after the child exited.
//! Criterion times the imports (the children's reported times, via
//! `iter_custom`); the bench prints one line per import and a summary with the
//! ratios the targets are stated in.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group};
use resptree::{ResponseTree, import};

#[path = "support/probe.rs"]
mod probe;
use probe::{cpu_time, dir_size, peak_rss};

#[path = "support/chatgpt.rs"]
mod chatgpt;

const CHILD_FLAG: &str = "--resptree-child";

/// One import as a child process saw it.
#[derive(Clone, Copy)]
struct Run {
    took: Duration,
    cpu: Duration,
    /// Peak memory: the whole import, after opening the store, after parsing
    /// (before the write).
    peak: u64,
    opened: u64,
    parsed: u64,
    store: u64,
}

fn size() -> (usize, usize) {
    if let Ok(spec) = std::env::var("RESPTREE_BENCH_IMPORT") {
        let (c, m) = spec
            .split_once('x')
            .expect("RESPTREE_BENCH_IMPORT=CONVERSATIONSxMESSAGES");
        return (c.parse().unwrap(), m.parse().unwrap());
    }
    let quick = std::env::var("RESPTREE_BENCH_QUICK").is_ok_and(|v| v == "1");
    if quick { (200, 100) } else { (1_000, 100) }
}

fn imports(c: &mut Criterion) {
    let (conversations, messages) = size();
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("conversations.json");
    let started = Instant::now();
    let file = chatgpt::write_export(&export, conversations, messages);
    let total = (conversations * messages) as f64;
    eprintln!(
        "export: {conversations} conversations × {messages} messages, {:.1} MB, generated in {:.1?}",
        file as f64 / 1e6,
        started.elapsed()
    );
    let runs: Mutex<Vec<Run>> = Mutex::new(Vec::new());
    let mut group = c.benchmark_group("import");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    let id = format!("chatgpt/{conversations}x{messages}");
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            for _ in 0..iters {
                let run = import_in_child(&export, &dir.path().join("store"));
                eprintln!(
                    "  import: {:.2?} ({:.0} messages/s, {:.2?} CPU), peak {:.0} MB ({:.2}× the file; \
                     {:.0} MB after opening the store, {:.0} MB after parsing), \
                     store {:.1} MB ({:.2}× the file)",
                    run.took,
                    total / run.took.as_secs_f64(),
                    run.cpu,
                    run.peak as f64 / 1e6,
                    run.peak as f64 / file as f64,
                    run.opened as f64 / 1e6,
                    run.parsed as f64 / 1e6,
                    run.store as f64 / 1e6,
                    run.store as f64 / file as f64,
                );
                took += run.took;
                runs.lock().unwrap().push(run);
            }
            took
        });
    });
    group.finish();
    let runs = runs.into_inner().unwrap();
    let median = |f: fn(&Run) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let took = median(|r| r.took.as_secs_f64());
    eprintln!(
        "summary over {} imports of {:.1} MB ({} messages): median {took:.2} s = {:.0} messages/s \
         (CPU {:.2} s); peak memory {:.0} MB = {:.2}× the file; store {:.1} MB = {:.2}× the file",
        runs.len(),
        file as f64 / 1e6,
        total,
        total / took,
        median(|r| r.cpu.as_secs_f64()),
        median(|r| r.peak as f64) / 1e6,
        median(|r| r.peak as f64) / file as f64,
        median(|r| r.store as f64) / 1e6,
        median(|r| r.store as f64) / file as f64,
    );
}

/// Imports `export` into a new store at `store` in a fresh process.
fn import_in_child(export: &Path, store: &Path) -> Run {
    if store.exists() {
        std::fs::remove_dir_all(store).unwrap();
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .arg(CHILD_FLAG)
        .arg(export)
        .arg(store)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "import child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let fields: Vec<u64> = text
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    let [took, cpu, peak, opened, parsed] = fields[..] else {
        panic!("unexpected child output {text:?}")
    };
    Run {
        took: Duration::from_nanos(took),
        cpu: Duration::from_nanos(cpu),
        peak,
        opened,
        parsed,
        store: dir_size(store),
    }
}

/// The child: one import, then `nanoseconds cpu-nanoseconds peak-bytes` on stdout.
fn run_child(export: &Path, store: &Path) {
    let tree = ResponseTree::open(store).unwrap();
    let opened = peak_rss();
    let cpu_before = cpu_time();
    let started = Instant::now();
    let file = std::fs::File::open(export).unwrap();
    let mut parsed = 0;
    let report = import::import_chatgpt_reader(&tree, file, |p| {
        if p.phase == import::ImportPhase::Writing {
            parsed = peak_rss();
        }
    })
    .unwrap();
    let took = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    assert!(report.nodes > 0);
    drop(tree);
    println!(
        "{} {} {} {opened} {parsed}",
        took.as_nanos(),
        cpu.as_nanos(),
        peak_rss()
    );
}

criterion_group!(benches, imports);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, export, store] = args.as_slice() {
        if flag == CHILD_FLAG {
            run_child(Path::new(export), Path::new(store));
            return;
        }
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
