//! Set-up shared by the benches: quick mode, the runtime, an emulator with a
//! client and engine pointed at it, traffic counting, the Conversations cloning
//! workaround, synthetic trees and memory/disk probes.

// Each bench binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use resptree::backend::ResponsesBackend;
use resptree::client::Client;
use resptree::emulator::Emulator;
use resptree::{Engine, Node, NodeId, ResponseTree, Timestamp};
use serde_json::{Value, json};

mod probe;
#[allow(unused_imports)] // each bench uses a different part
pub(crate) use probe::{cpu_time, dir_size, peak_rss, rss};

/// The model every bench asks the emulator for.
pub(crate) const MODEL: &str = "gpt-4o-mini";

/// `RESPTREE_BENCH_QUICK=1`: small sizes and short measurements.
pub(crate) fn quick() -> bool {
    std::env::var("RESPTREE_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// `full` normally, `brief` in quick mode.
pub(crate) fn pick<T>(full: T, brief: T) -> T {
    if quick() { brief } else { full }
}

/// A multi-threaded runtime like an application's (one worker per core).
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A client for `emulator` with retries off, so a failure shows at once instead
/// of being hidden in the timings.
pub(crate) fn client(emulator: &Emulator) -> Client {
    Client::builder()
        .base_url(emulator.base_url())
        .api_key("sk-emulator")
        .max_retries(0)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// An engine recording into `tree`, asking `emulator`, with `concurrency` permits.
pub(crate) fn engine(emulator: &Emulator, tree: ResponseTree, concurrency: usize) -> Engine {
    Engine::builder(tree, ResponsesBackend::new(client(emulator)))
        .concurrency(concurrency)
        .build()
        .unwrap()
}

/// A chain of `turns` responses recorded by `engine`; returns the last one.
pub(crate) async fn chain(engine: &Engine, turns: usize) -> NodeId {
    let mut tip: Option<NodeId> = None;
    for turn in 0..turns {
        let node = engine
            .respond(tip.as_ref(), &format!("turn {turn}"))
            .await
            .unwrap();
        tip = Some(node.id);
    }
    tip.unwrap()
}

/// What the emulator saw since its log was last cleared.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Traffic {
    pub(crate) requests: usize,
    /// Request bodies, client to server.
    pub(crate) bytes_in: u64,
    /// Response bodies, server to client.
    pub(crate) bytes_out: u64,
}

/// Reads and clears the emulator's request log.
pub(crate) fn take_traffic(emulator: &Emulator) -> Traffic {
    let log = emulator.requests();
    emulator.clear_requests();
    assert!(
        log.iter().all(|r| (200..300).contains(&r.status)),
        "a bench request failed: {:?}",
        log.iter().find(|r| !(200..300).contains(&r.status))
    );
    Traffic {
        requests: log.len(),
        bytes_in: log.iter().map(|r| r.bytes_in).sum(),
        bytes_out: log.iter().map(|r| r.bytes_out).sum(),
    }
}

/// The Conversations API half of the comparison: a source conversation and the
/// clone-then-respond workaround, done the way the real service forces it
/// (list 100 items per page, create with at most 20 items, append 20 per call).
pub(crate) mod conversation {
    use super::{MODEL, Value, json};

    /// A conversation holding `turns` user/assistant exchanges (2 items each).
    pub(crate) async fn seeded(http: &reqwest::Client, base: &str, turns: usize) -> String {
        let items: Vec<Value> = (0..turns)
            .flat_map(|t| {
                [
                    json!({"type": "message", "role": "user", "content": format!("turn {t}")}),
                    json!({"type": "message", "role": "assistant",
                           "content": [{"type": "output_text", "text": format!("answer {t}")}]}),
                ]
            })
            .collect();
        let id = create(http, base, &[]).await;
        for chunk in items.chunks(20) {
            post(
                http,
                &format!("{base}/conversations/{id}/items"),
                &json!({ "items": chunk }),
            )
            .await;
        }
        id
    }

    /// Copies every item of `source` into a new conversation, then asks `text` in it.
    pub(crate) async fn clone_and_respond(
        http: &reqwest::Client,
        base: &str,
        source: &str,
        text: &str,
    ) {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!("{base}/conversations/{source}/items?limit=100&order=asc");
            if let Some(cursor) = &after {
                url.push_str(&format!("&after={cursor}"));
            }
            let page: Value = http
                .get(url)
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .json()
                .await
                .unwrap();
            let data = page["data"].as_array().cloned().unwrap_or_default();
            items.extend(data.into_iter().map(as_input_item));
            if page["has_more"] != json!(true) {
                break;
            }
            after = page["last_id"].as_str().map(str::to_owned);
        }
        let (first, rest) = items.split_at(items.len().min(20));
        let copy = create(http, base, first).await;
        for chunk in rest.chunks(20) {
            post(
                http,
                &format!("{base}/conversations/{copy}/items"),
                &json!({ "items": chunk }),
            )
            .await;
        }
        post(
            http,
            &format!("{base}/responses"),
            &json!({"model": MODEL, "conversation": copy, "input": text}),
        )
        .await;
    }

    async fn create(http: &reqwest::Client, base: &str, items: &[Value]) -> String {
        let created = post(
            http,
            &format!("{base}/conversations"),
            &json!({ "items": items }),
        )
        .await;
        created["id"].as_str().unwrap().to_owned()
    }

    async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Value {
        http.post(url)
            .json(body)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A listed item as an input item: drop the server-assigned fields.
    fn as_input_item(mut item: Value) -> Value {
        if let Some(map) = item.as_object_mut() {
            map.remove("id");
            map.remove("status");
        }
        item
    }
}

/// The two synthetic tree shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Every node has up to 8 children: depth grows as log8(n).
    Bushy,
    /// One chain: depth n.
    Deep,
}

/// A realistic-length id (53 bytes, like `resp_…`), scattered as server ids are.
pub(crate) fn id(i: usize) -> NodeId {
    let scrambled = (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    NodeId::new(&format!("resp_{scrambled:048x}")).unwrap()
}

/// Node `i`'s parent in `shape`.
pub(crate) fn parent(shape: Shape, i: usize) -> Option<usize> {
    match shape {
        Shape::Bushy => (i > 0).then(|| (i - 1) / 8),
        Shape::Deep => i.checked_sub(1),
    }
}

/// Node `i` of `shape`: one short user message and one short answer.
pub(crate) fn node(shape: Shape, i: usize) -> Node {
    Node::new(id(i), parent(shape, i).map(id))
        .with_created_at(Timestamp(1_767_225_600_000 + i as i64))
        .with_user_text(format!("question {i}"))
        .with_output_text(format!("answer {i}"))
}

/// Runs `one` `iters` times, recording each duration; returns the total.
pub(crate) async fn timed<F, Fut>(iters: u64, times: &Mutex<Vec<Duration>>, mut one: F) -> Duration
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

/// The median of `times` (zero for none).
pub(crate) fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}
