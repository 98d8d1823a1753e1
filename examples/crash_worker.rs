//! The process the reliability suite kills: many concurrent branches into a sled
//! store, each node id printed the moment its creation returned.
//!
//! Not a tutorial example: `tests/integration/reliability_crash.rs` runs it
//! against an emulator that lives in the test process, kills it with SIGKILL at
//! a random moment, and checks the store it leaves behind.
//!
//! ```text
//! crash_worker branch <store> <emulator base URL> <seed>
//! crash_worker hold <store>
//! ```
//!
//! `branch` prints `node <id>` for every committed node until it is killed (or
//! after 60 seconds, so a forgotten worker cannot run forever). With
//! `RESPTREE_CRASH_BUFFERED=1` it uses `Durability::Buffered` (no flush per
//! write), which the crash test must catch. `hold` opens the
//! store, prints `open` (or `error <kind>: <message>` if it cannot), and then
//! holds the store until its stdin is closed.

use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use resptree::backend::ResponsesBackend;
use resptree::client::Client;
use resptree::engine::{RespondOptions, StreamUpdate};
use resptree::store::{Durability, SledStore};
use resptree::{Engine, Error, NodeId, ResponseTree};

/// Tasks issuing requests at once.
const WORKERS: u64 = 6;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["branch", store, base_url, seed] => branch(store, base_url, seed.parse()?).await,
        ["hold", store] => {
            hold(store);
            Ok(())
        }
        _ => Err("usage: crash_worker branch <store> <base URL> <seed> | hold <store>".into()),
    }
}

/// Opens the store and keeps it open until stdin closes.
fn hold(store: &str) {
    match ResponseTree::open(store) {
        Ok(tree) => {
            say(&format!("open {}", tree.len()));
            // Block until the parent closes our stdin (or dies).
            let mut line = String::new();
            while std::io::stdin()
                .lock()
                .read_line(&mut line)
                .is_ok_and(|n| n > 0)
            {
                line.clear();
            }
        }
        Err(err @ Error::StoreInUse { .. }) => say(&format!("error store-in-use: {err}")),
        Err(err) => say(&format!("error other: {err}")),
    }
}

async fn branch(store: &str, base_url: &str, seed: u64) -> Result<(), Box<dyn std::error::Error>> {
    // RESPTREE_CRASH_BUFFERED=1 turns the flush off, to show that the crash
    // test notices when durability is missing (it should then fail).
    let durability = if std::env::var_os("RESPTREE_CRASH_BUFFERED").is_some() {
        Durability::Buffered
    } else {
        Durability::Flush
    };
    let tree = ResponseTree::with_store(SledStore::open(store)?.with_durability(durability))?;
    let client = Client::builder()
        .base_url(base_url)
        .api_key("sk-crash-worker")
        .max_retries(2)
        .retry_base_delay(Duration::from_millis(1))
        .build()?;
    let engine = Engine::builder(tree, ResponsesBackend::new(client))
        .concurrency(16)
        .build()?;
    let mut known = engine.tree().all_ids();
    if known.is_empty() {
        let root = engine.respond(None, "crash test root").await?;
        say(&format!("node {}", root.id));
        known.push(root.id);
    }
    let known = Arc::new(Mutex::new(known));
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let engine = engine.clone();
        let known = Arc::clone(&known);
        tasks.push(tokio::spawn(async move {
            let mut rng = seed ^ (worker + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for step in 0u64.. {
                let parent = {
                    let known = known
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let pick = next(&mut rng) as usize % known.len();
                    known[pick].clone()
                };
                let text = format!("worker {worker} step {step}");
                let made = match next(&mut rng) % 3 {
                    0 => engine
                        .respond(Some(&parent), &text)
                        .await
                        .map(|n| vec![n.id]),
                    1 => streamed(&engine, &parent, &text).await.map(|id| vec![id]),
                    _ => match engine
                        .branch(
                            &parent,
                            [
                                format!("{text} a"),
                                format!("{text} b"),
                                format!("{text} c"),
                            ],
                        )
                        .await
                    {
                        Ok(results) => Ok(results
                            .into_iter()
                            .filter_map(|r| r.ok().map(|n| n.id))
                            .collect()),
                        Err(e) => Err(e),
                    },
                };
                match made {
                    Ok(ids) => {
                        for id in &ids {
                            say(&format!("node {id}"));
                        }
                        known
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .extend(ids);
                    }
                    Err(err) => say(&format!("failed {err}")),
                }
            }
        }));
    }
    // The test kills us long before this; the limit only stops a worker whose
    // test died first.
    tokio::time::sleep(Duration::from_secs(60)).await;
    for task in tasks {
        task.abort();
    }
    Ok(())
}

/// One streamed response; returns its id once committed.
async fn streamed(engine: &Engine, parent: &NodeId, text: &str) -> resptree::Result<NodeId> {
    let mut stream = engine.respond_stream(Some(parent), text, &RespondOptions::default());
    while let Some(update) = stream.next().await {
        if let StreamUpdate::Committed(node) = update? {
            return Ok(node.id);
        }
    }
    // The engine's stream ends with the committed node or an error, never without.
    Err(Error::Internal("a stream that ended without committing"))
}

/// Prints one line and flushes it at once: the test reads it as it happens.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe means the test is gone; there is no one left to tell.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// splitmix64: a seeded choice without a `rand` dependency.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
