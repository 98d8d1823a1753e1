//! Importing a large ChatGPT data export (issue 16, item 6): messages per second,
//! CPU time, peak memory against the export's size, and the store's size
//! against it — the staged import against the one-shot write it replaced, in
//! alternating rounds of one run.
//!
//! ```text
//! cargo bench --bench import                          # 1 000 conversations × 100 messages (≈ 100 MB)
//! RESPTREE_BENCH_QUICK=1 cargo bench --bench import   # 200 × 100
//! RESPTREE_BENCH_IMPORT=300x100 cargo bench --bench import   # any size
//! RESPTREE_BENCH_IMPORT_MODES=staged cargo bench --bench import   # one mode only
//! RESPTREE_BENCH_IMPORT_FILE=/tmp/export.json cargo bench --bench import  # keep (and reuse) the export
//! ```
//!
//! The export comes from the generator in `benches/support/chatgpt.rs` (nothing
//! is read from outside the repository). Every import runs in a fresh child
//! process, as `resptree import-chatgpt` does: open a new sled store, stream the
//! file through `import::import_chatgpt_reader`, close. Two modes, alternating:
//!
//! - `staged`: the sled store as it is: chunks of nodes are staged as they are
//!   parsed and published in one small transaction at the end;
//! - `one-shot`: the same store behind a wrapper that does not offer staging,
//!   so the importer keeps every node and writes them in one `Store::apply`
//!   (what every import did before staging).
//!
//! The child reports the import's wall time, CPU time (the whole process, all
//! threads), the CPU time spent inside the store's write calls (stage, publish
//! or the one apply), and its peak resident memory (`VmHWM`, the whole
//! process, at the end and when parsing finished); the parent measures the
//! store directory after the child exited. Criterion times the staged imports
//! (the children's reported times, via `iter_custom`); the bench prints one
//! line per import and a summary with the ratios the targets are stated in.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group};
use resptree::store::{Batch, Loaded, SledStore, StageId, Store};
use resptree::{Node, NodeId, RefName, ResponseTree, import};

#[path = "support/probe.rs"]
mod probe;
use probe::{cpu_time, dir_size, peak_rss};

#[path = "support/chatgpt.rs"]
mod chatgpt;

const CHILD_FLAG: &str = "--resptree-child";

/// How an import writes (see the module docs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Staged,
    OneShot,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Staged => "staged",
            Mode::OneShot => "one-shot",
        }
    }

    fn parse(name: &str) -> Self {
        match name {
            "staged" => Mode::Staged,
            "one-shot" => Mode::OneShot,
            other => panic!("unknown import mode {other:?}"),
        }
    }
}

/// One import as a child process saw it.
#[derive(Clone, Copy)]
struct Run {
    mode: Mode,
    took: Duration,
    cpu: Duration,
    /// CPU time inside the store's write calls.
    write_cpu: Duration,
    /// Of which the publication (staged) — zero for one-shot.
    publish_cpu: Duration,
    /// Peak memory: the whole import, after opening the store, when parsing
    /// finished.
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

fn modes() -> Vec<Mode> {
    match std::env::var("RESPTREE_BENCH_IMPORT_MODES") {
        Ok(list) => list.split(',').map(Mode::parse).collect(),
        Err(_) => vec![Mode::OneShot, Mode::Staged],
    }
}

fn imports(c: &mut Criterion) {
    let (conversations, messages) = size();
    let dir = tempfile::tempdir().unwrap();
    // A kept export (for profiling a child by hand) is written once and reused.
    let export = match std::env::var_os("RESPTREE_BENCH_IMPORT_FILE") {
        Some(path) => std::path::PathBuf::from(path),
        None => dir.path().join("conversations.json"),
    };
    let started = Instant::now();
    let file = match std::fs::metadata(&export) {
        Ok(meta) if meta.len() > 0 => meta.len(),
        _ => chatgpt::write_export(&export, conversations, messages),
    };
    let total = (conversations * messages) as f64;
    eprintln!(
        "export: {conversations} conversations × {messages} messages, {:.1} MB, generated in {:.1?}",
        file as f64 / 1e6,
        started.elapsed()
    );
    let modes = modes();
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
                // One round: every mode once, so load drifts alike on each.
                for &mode in &modes {
                    let run = import_in_child(mode, &export, &dir.path().join("store"));
                    eprintln!(
                        "  {:>8}: {:.2?} ({:.0} messages/s, {:.2?} CPU = {:.0} messages per CPU s; \
                         store writes {:.2?} CPU, publish {:.2?}), peak {:.0} MB ({:.2}× the file; \
                         {:.0} MB after opening the store, {:.0} MB when parsed), \
                         store {:.1} MB ({:.2}× the file), load {}",
                        mode.name(),
                        run.took,
                        total / run.took.as_secs_f64(),
                        run.cpu,
                        total / run.cpu.as_secs_f64(),
                        run.write_cpu,
                        run.publish_cpu,
                        run.peak as f64 / 1e6,
                        run.peak as f64 / file as f64,
                        run.opened as f64 / 1e6,
                        run.parsed as f64 / 1e6,
                        run.store as f64 / 1e6,
                        run.store as f64 / file as f64,
                        load_average(),
                    );
                    if mode == Mode::Staged || modes.len() == 1 {
                        took += run.took;
                    }
                    runs.lock().unwrap().push(run);
                }
            }
            took
        });
    });
    group.finish();
    let runs = runs.into_inner().unwrap();
    let median = |mode: Mode, f: &dyn Fn(&Run) -> f64| {
        let mut v: Vec<f64> = runs.iter().filter(|r| r.mode == mode).map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    for &mode in &modes {
        let took = median(mode, &|r| r.took.as_secs_f64());
        let cpu = median(mode, &|r| r.cpu.as_secs_f64());
        eprintln!(
            "summary {:>8}, {} imports of {:.1} MB ({total} messages): median {took:.2} s = {:.0} messages/s; \
             CPU {cpu:.2} s = {:.0} messages per CPU s (store writes {:.2} s, publish {:.3} s); \
             peak memory {:.0} MB = {:.2}× the file; store {:.1} MB = {:.2}× the file",
            mode.name(),
            runs.iter().filter(|r| r.mode == mode).count(),
            file as f64 / 1e6,
            total / took,
            total / cpu,
            median(mode, &|r| r.write_cpu.as_secs_f64()),
            median(mode, &|r| r.publish_cpu.as_secs_f64()),
            median(mode, &|r| r.peak as f64) / 1e6,
            median(mode, &|r| r.peak as f64) / file as f64,
            median(mode, &|r| r.store as f64) / 1e6,
            median(mode, &|r| r.store as f64) / file as f64,
        );
    }
    if modes.len() == 2 {
        let ratio = |f: &dyn Fn(&Run) -> f64| median(Mode::Staged, f) / median(Mode::OneShot, f);
        eprintln!(
            "staged ÷ one-shot (medians): wall {:.2}, CPU {:.2}, peak memory {:.2}, store {:.2}",
            ratio(&|r| r.took.as_secs_f64()),
            ratio(&|r| r.cpu.as_secs_f64()),
            ratio(&|r| r.peak as f64),
            ratio(&|r| r.store as f64),
        );
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned()
}

/// Imports `export` into a new store at `store` in a fresh process.
fn import_in_child(mode: Mode, export: &Path, store: &Path) -> Run {
    if store.exists() {
        std::fs::remove_dir_all(store).unwrap();
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .arg(CHILD_FLAG)
        .arg(mode.name())
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
    let [took, cpu, write_cpu, publish_cpu, peak, opened, parsed] = fields[..] else {
        panic!("unexpected child output {text:?}")
    };
    Run {
        mode,
        took: Duration::from_nanos(took),
        cpu: Duration::from_nanos(cpu),
        write_cpu: Duration::from_nanos(write_cpu),
        publish_cpu: Duration::from_nanos(publish_cpu),
        peak,
        opened,
        parsed,
        store: dir_size(store),
    }
}

/// The child: one import, then its figures on stdout (see `import_in_child`).
fn run_child(mode: Mode, export: &Path, store: &Path) {
    let timed = Timed {
        inner: SledStore::open(store).unwrap(),
        staging: mode == Mode::Staged,
    };
    let tree = ResponseTree::with_store(timed).unwrap();
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
    assert_eq!(tree.len(), report.nodes);
    drop(tree);
    println!(
        "{} {} {} {} {} {opened} {parsed}",
        took.as_nanos(),
        cpu.as_nanos(),
        WRITE_CPU.load(Ordering::Relaxed),
        PUBLISH_CPU.load(Ordering::Relaxed),
        peak_rss()
    );
}

/// CPU nanoseconds inside the store's write calls, and in the publication.
static WRITE_CPU: AtomicU64 = AtomicU64::new(0);
static PUBLISH_CPU: AtomicU64 = AtomicU64::new(0);

/// The sled store, timing its write calls; with `staging` off it offers no
/// staging (the trait's default), so an import writes in one `apply`.
#[derive(Debug)]
struct Timed {
    inner: SledStore,
    staging: bool,
}

impl Timed {
    fn timed<T>(&self, publish: bool, f: impl FnOnce() -> T) -> T {
        let before = cpu_time();
        let out = f();
        let spent = (cpu_time() - before).as_nanos() as u64;
        WRITE_CPU.fetch_add(spent, Ordering::Relaxed);
        if publish {
            PUBLISH_CPU.fetch_add(spent, Ordering::Relaxed);
        }
        out
    }
}

impl Store for Timed {
    fn load(&self) -> resptree::Result<Loaded> {
        self.inner.load()
    }

    fn node(&self, id: &NodeId) -> resptree::Result<Option<Node>> {
        self.inner.node(id)
    }

    fn apply(&self, batch: Batch) -> resptree::Result<()> {
        self.timed(false, || self.inner.apply(batch))
    }

    fn attempts(&self) -> resptree::Result<Vec<resptree::store::Attempt>> {
        self.inner.attempts()
    }

    fn refs(&self) -> resptree::Result<Vec<(RefName, NodeId)>> {
        self.inner.refs()
    }

    fn flush(&self) -> resptree::Result<()> {
        self.inner.flush()
    }

    fn begin_stage(&self) -> resptree::Result<Option<StageId>> {
        if self.staging {
            self.inner.begin_stage()
        } else {
            Ok(None)
        }
    }

    fn stage_nodes(&self, stage: StageId, nodes: &[Node]) -> resptree::Result<()> {
        self.timed(false, || self.inner.stage_nodes(stage, nodes))
    }

    fn publish_stage(&self, stage: StageId, refs: &[(RefName, NodeId)]) -> resptree::Result<()> {
        self.timed(true, || self.inner.publish_stage(stage, refs))
    }

    fn abandon_stage(&self, stage: StageId) -> resptree::Result<()> {
        self.inner.abandon_stage(stage)
    }
}

criterion_group!(benches, imports);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, mode, export, store] = args.as_slice() {
        if flag == CHILD_FLAG {
            run_child(Mode::parse(mode), Path::new(export), Path::new(store));
            return;
        }
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
