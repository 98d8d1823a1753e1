//! The web explorer over a 10^5-node tree in headless Chromium: how long the
//! first outline takes to render, and how long each navigation key takes until
//! the node view shows the new node.
//!
//! ```text
//! cargo bench --features web --bench web_scale                         # 10^5 nodes
//! RESPTREE_BENCH_QUICK=1 cargo bench --features web --bench web_scale  # 10^4 nodes
//! RESPTREE_BENCH_SIZES=1000000 cargo bench --features web --bench web_scale
//! ```
//!
//! It needs Chromium and chromedriver (`apt-get install chromium
//! chromium-driver`; `bash scripts/test` installs them): it uses the driver
//! at `RESPTREE_TEST_WEBDRIVER_URL` when that is set, else starts `chromedriver`
//! from `PATH` on a free loopback port and stops it at the end.
//!
//! The store has three roots: *wide* (one node with n/10 children), *deep* (a
//! chain n/10 long) and *bushy* (the rest, up to 8 children per node). Every
//! node holds a question and a Markdown answer of about 600 bytes. The server is
//! the library's `WebServer::read_only` on loopback, in this process.
//!
//! The times are read **in the page** (`performance.now()`), not around the
//! WebDriver commands, so the driver's own round trips are not counted:
//!
//! - `first_render`: from the start of the navigation to the explorer's URL
//!   until the app has started (`body[data-ready]`) and the outline shows the
//!   roots: HTML, scripts, the API calls, the DOM;
//! - `open_at_depth`: the same for a URL naming the deep chain's middle node,
//!   until its node view (a transcript page of its path) is in the DOM;
//! - `key/…`: from the `keydown` until the node view of the node the key leads
//!   to is in the DOM: `↓`/`↑` among the wide node's siblings (the pager's
//!   middle), `←`/`→` in the middle of the deep chain, `r`/`→` from the bushy
//!   tree's deepest leaf, and `←` walking up the deep chain from its middle
//!   (each key to a node not shown before: `parent_walk_deep`).
//!
//! The store is built once per size and kept under `target/web_scale/`
//! (delete it to rebuild).
//!
//! Results and the machine they were measured on: `docs/benchmarks.md`
//! ("Web explorer at scale").

// A benchmark's setup failing is a bug to see at once, not to handle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group};
use resptree::store::{Batch, Durability, Op, SledStore, Store as _};
use resptree::web::WebServer;
use resptree::{Node, NodeId, ResponseTree, Timestamp};
use serde_json::json;

#[path = "../tests/integration/support/webdriver.rs"]
mod webdriver;
use webdriver::{Browser, keys};

fn sizes() -> Vec<usize> {
    if let Ok(list) = std::env::var("RESPTREE_BENCH_SIZES") {
        return list.split(',').map(|n| n.trim().parse().unwrap()).collect();
    }
    if std::env::var("RESPTREE_BENCH_QUICK").is_ok_and(|v| v == "1") {
        vec![10_000]
    } else {
        vec![100_000]
    }
}

/// Which nodes the store holds: positions `0..n`, three roots.
struct Shape {
    n: usize,
}

impl Shape {
    fn wide_root(&self) -> usize {
        0
    }
    /// The wide root's children: `1..=n/10`.
    fn wide_children(&self) -> std::ops::RangeInclusive<usize> {
        1..=self.n / 10
    }
    fn deep_root(&self) -> usize {
        self.n / 10 + 1
    }
    /// The chain under the deep root: `deep_root..deep_end`.
    fn deep_end(&self) -> usize {
        self.deep_root() + self.n / 10
    }
    fn bushy_root(&self) -> usize {
        self.deep_end()
    }

    fn parent(&self, i: usize) -> Option<usize> {
        if i == self.wide_root() || i == self.deep_root() || i == self.bushy_root() {
            None
        } else if self.wide_children().contains(&i) {
            Some(self.wide_root())
        } else if i < self.deep_end() {
            Some(i - 1)
        } else {
            let k = i - self.bushy_root();
            Some(self.bushy_root() + (k - 1) / 8)
        }
    }
}

fn id(i: usize) -> NodeId {
    // Scattered keys of a realistic length, as server ids are.
    let scrambled = (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    NodeId::new(&format!("resp_{scrambled:048x}")).unwrap()
}

fn answer(i: usize) -> String {
    format!(
        "## Day {i}\n\nA plan for **day {i}**, with a few steps and a `code` span.\n\n\
         - Morning: a walk along the river, then coffee near the market.\n\
         - Afternoon: the museum ({i} works on show), lunch at noon.\n\
         - Evening: dinner, then a concert if there are tickets left.\n\n\
         Keep the receipts; the budget for the day is {i} euros, give or take.\n\n\
         ```\nitinerary --day {i} --walk --museum\n```\n"
    )
}

/// The store of `shape`, built once and kept under `target/web_scale/`: the
/// 10^5-node build (the search index's writes) takes minutes in the dev
/// profile on a loaded machine, the bench itself less. A store is reused only
/// when its `complete` marker was written after the build's flush; bump
/// `STORE_FORMAT` when `build` writes something else or the store's layout
/// changes (2: sled schema 6, segments compressed by the store).
fn cached_store(shape: &Shape) -> PathBuf {
    const STORE_FORMAT: u32 = 2;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target
        .join("web_scale")
        .join(format!("tree-{}-v{STORE_FORMAT}", shape.n));
    let marker = dir.join("complete");
    if marker.exists() {
        eprintln!("web_scale: reusing the store at {}", dir.display());
        return dir.join("tree");
    }
    // A build that did not finish left a partial store: start afresh.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    build(&dir.join("tree"), shape);
    std::fs::write(&marker, b"").unwrap();
    dir.join("tree")
}

/// Writes the tree to a fresh sled store at `path`.
fn build(path: &Path, shape: &Shape) {
    let store = SledStore::open(path)
        .unwrap()
        .with_durability(Durability::Buffered);
    let started = Instant::now();
    for chunk in (0..shape.n).collect::<Vec<_>>().chunks(5_000) {
        let batch: Batch = chunk
            .iter()
            .map(|&i| {
                let node = Node::new(id(i), shape.parent(i).map(id))
                    .with_created_at(Timestamp(1_767_225_600_000 + i as i64))
                    .with_user_text(format!("Question {i}: how would you plan day {i}?"))
                    .with_output_text(answer(i));
                Op::PutNode(Box::new(node))
            })
            .collect();
        store.apply(batch).unwrap();
    }
    store.flush().unwrap();
    eprintln!(
        "web_scale: built {} nodes in {:.1?}",
        shape.n,
        started.elapsed()
    );
}

/// chromedriver, started here unless `RESPTREE_TEST_WEBDRIVER_URL` names one.
struct Driver {
    url: String,
    child: Option<Child>,
}

impl Driver {
    fn start() -> Self {
        if let Ok(url) = std::env::var(webdriver::URL_VAR) {
            return Self { url, child: None };
        }
        // A free port: bind, read it, let it go (a race with another process
        // taking it in between only fails the bench's start).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}): install chromium and chromium-driver, \
                     or set {}",
                    webdriver::URL_VAR
                )
            });
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            url: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The condition "the node view shows `id` with its transcript".
fn shows(id: &NodeId) -> String {
    format!(
        "document.querySelector(\"#node-view[data-node-id='{id}'] li.step.current[data-node-id='{id}']\") !== null"
    )
}

/// Opens `url` from a blank page and returns the in-page milliseconds from the
/// navigation's start until `condition` held.
async fn load(browser: &Browser, url: &str, condition: &str) -> f64 {
    browser.goto("about:blank").await;
    browser.goto(url).await;
    let ms = browser
        .wait_for(
            "the explorer",
            &format!("document.body && document.body.dataset.ready === 'true' && {condition}"),
            "performance.now()",
        )
        .await;
    ms.as_f64().unwrap()
}

/// Presses `key` and returns the in-page milliseconds from its `keydown` until
/// the node view shows `expect`.
async fn key(browser: &Browser, key: &str, expect: &NodeId) -> f64 {
    browser
        .exec(
            "window.benchT0 = undefined;
             document.addEventListener('keydown', () => { window.benchT0 = performance.now(); },
               { capture: true, once: true });",
            json!([]),
        )
        .await;
    browser.press(key).await;
    let ms = browser
        .wait_for(
            "the key's node",
            &format!("window.benchT0 !== undefined && {}", shows(expect)),
            "performance.now() - window.benchT0",
        )
        .await;
    ms.as_f64().unwrap()
}

/// The median time of 5 GETs of each of `urls` (each must succeed), asked
/// in alternating rounds so that a change in the machine's load falls on all
/// of them alike, and each answer's size.
async fn api_times(urls: &[String]) -> Vec<(Duration, usize)> {
    let http = reqwest::Client::new();
    let mut times = vec![Vec::new(); urls.len()];
    let mut sizes = vec![0; urls.len()];
    for _ in 0..5 {
        for (i, url) in urls.iter().enumerate() {
            let started = Instant::now();
            let reply = http.get(url).send().await.unwrap();
            assert!(reply.status().is_success(), "{url}: {}", reply.status());
            sizes[i] = reply.bytes().await.unwrap().len();
            times[i].push(started.elapsed());
        }
    }
    times
        .into_iter()
        .zip(sizes)
        .map(|(mut t, size)| {
            t.sort();
            (t[2], size)
        })
        .collect()
}

/// This process's CPU time (user + system) so far: the explorer's server side,
/// since the server runs in this process (Chromium's own CPU is not in it).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 (11 and 12 after the name), in
    // clock ticks of 1/100 s on Linux.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The 1-minute load average, for the record next to each figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// Runs `bench` and prints the server process's CPU time it took next to the
/// wall time and the load average.
fn with_cpu(name: &str, bench: impl FnOnce()) {
    let (cpu, wall) = (cpu_time(), Instant::now());
    bench();
    eprintln!(
        "web_scale: {name}: {:.1?} wall, {:.1?} server CPU, load {}",
        wall.elapsed(),
        cpu_time().saturating_sub(cpu),
        load_average()
    );
}

fn ms(total: f64) -> Duration {
    Duration::from_secs_f64(total / 1_000.0)
}

fn web_scale(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let driver = Driver::start();
    for n in sizes() {
        let shape = Shape { n };
        let path = cached_store(&shape);
        let started = Instant::now();
        let tree = Arc::new(ResponseTree::open(&path).unwrap());
        eprintln!("web_scale: opened in {:.1?}", started.elapsed());
        let server = rt
            .block_on(WebServer::read_only(Arc::clone(&tree)).spawn())
            .unwrap();
        let browser = rt.block_on(Browser::start_at(&driver.url));
        let url = server.url();

        // What each API call behind a navigation costs on the server (the
        // median of 5, measured around the HTTP request on loopback).
        for (what, node) in [
            ("wide child", shape.n / 20),
            ("deep middle", shape.deep_root() + n / 20),
            ("bushy leaf", n - 1),
            ("bushy root", shape.bushy_root()),
        ] {
            let node = id(node);
            // `?ancestors=100000`: the node view as it was before it carried
            // only the path's last 100 ids (the whole path); `/path?limit=200`
            // the transcript as the page asked it before it asked 20 steps
            // first and then single steps (`offset=0&limit=1`: the one step a
            // ← needs, here the root), for comparison in the same rounds.
            let calls = [
                "",
                "?ancestors=100000",
                "/path?limit=200",
                "/path?limit=20",
                "/path?offset=0&limit=1",
                "/usage",
                "/children?offset=0&limit=100",
            ];
            let urls: Vec<String> = calls
                .iter()
                .map(|call| format!("{url}api/nodes/{node}{call}"))
                .collect();
            let cpu = cpu_time();
            let measured = rt.block_on(api_times(&urls));
            let cpu = cpu_time().saturating_sub(cpu);
            let times: Vec<String> = calls
                .iter()
                .zip(measured)
                .map(|(call, (t, bytes))| {
                    let name = match call.chars().next() {
                        None => "node",
                        Some('?') => "node(whole path)",
                        Some(_) => &call[1..],
                    };
                    format!("{name} {t:.1?} ({bytes} B)")
                })
                .collect();
            eprintln!(
                "web_scale: API at the {what} (server CPU {cpu:.1?} for 5 rounds, load {}): {}",
                load_average(),
                times.join(", ")
            );
        }

        let mut group = c.benchmark_group(format!("web_scale/{n}"));
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));

        let roots = "document.querySelectorAll('#roots > li.row').length === 3";
        with_cpu("first_render", || {
            group.bench_function("first_render", |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = 0.0;
                        for _ in 0..iters {
                            total += load(&browser, &url, roots).await;
                        }
                        ms(total)
                    })
                });
            });
        });
        let rows = rt.block_on(browser.count("#outline li.row"));
        eprintln!("web_scale: the first outline holds {rows} rows for {n} nodes");

        let middle = id(shape.deep_root() + n / 20);
        let at_middle = format!("{url}#node={middle}");
        with_cpu("open_at_depth", || {
            group.bench_function("open_at_depth", |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = 0.0;
                        for _ in 0..iters {
                            total += load(&browser, &at_middle, &shows(&middle)).await;
                        }
                        ms(total)
                    })
                });
            });
        });
        let rows = rt.block_on(browser.count("#outline li.row, #node-view li.step"));
        eprintln!(
            "web_scale: at depth {} the page holds {rows} rows and steps",
            n / 20
        );

        // ↓/↑ between two of the wide node's children (the pager's middle); ←/→
        // in the middle of the chain (→ goes back to the child just left); `r`
        // from the bushy tree's deepest leaf, then → down to the root's first
        // child (the page remembers only the child it was shown coming from).
        let wide = n / 20;
        let leaf = n - 1;
        let below = shape.bushy_root() + 1;
        let walks = [
            (
                "sibling_wide",
                wide,
                (keys::DOWN, wide + 1),
                (keys::UP, wide),
            ),
            (
                "parent_child_deep",
                shape.deep_root() + n / 20 + 1,
                (keys::LEFT, shape.deep_root() + n / 20),
                (keys::RIGHT, shape.deep_root() + n / 20 + 1),
            ),
            (
                "root_and_back",
                leaf,
                ("r", shape.bushy_root()),
                (keys::RIGHT, below),
            ),
        ];
        for (name, start, (there, to), (back, home)) in walks {
            let start = id(start);
            rt.block_on(load(
                &browser,
                &format!("{url}#node={start}"),
                &shows(&start),
            ));
            let (to, home) = (id(to), id(home));
            with_cpu(&format!("key/{name}"), || {
                group.bench_function(format!("key/{name}"), |b| {
                    b.iter_custom(|iters| {
                        rt.block_on(async {
                            let mut total = 0.0;
                            for _ in 0..iters {
                                total += key(&browser, there, &to).await;
                                total += key(&browser, back, &home).await;
                            }
                            // Two keys per iteration.
                            ms(total / 2.0)
                        })
                    });
                });
            });
        }
        // ← up the deep chain, each key to a node not shown before: the
        // transcript then lacks one step (the one 20 above), which the page
        // asks for, where ←/→ back and forth above finds every step kept.
        let start = shape.deep_root() + n / 20;
        rt.block_on(load(
            &browser,
            &format!("{url}#node={}", id(start)),
            &shows(&id(start)),
        ));
        let at = std::cell::Cell::new(start);
        with_cpu("key/parent_walk_deep", || {
            group.bench_function("key/parent_walk_deep", |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = 0.0;
                        for _ in 0..iters {
                            let parent = at.get() - 1;
                            assert!(parent > shape.deep_root(), "walked off the chain");
                            total += key(&browser, keys::LEFT, &id(parent)).await;
                            at.set(parent);
                        }
                        ms(total)
                    })
                });
            });
        });
        eprintln!("web_scale: the walk went up {} steps", start - at.get());
        group.finish();
        drop(browser);
        rt.block_on(server.shutdown());
    }
}

criterion_group!(benches, web_scale);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
