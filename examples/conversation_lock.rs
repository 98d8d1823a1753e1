//! Why resptree: the Conversation lock, the cloning workaround, and branching.
//!
//! Runs three experiments side by side on the embedded emulator (always offline):
//!
//! 1. **The lock.** Two parallel requests on one Conversation: the second fails
//!    with "Another process is currently operating on this conversation".
//! 2. **The workaround.** To branch a conversation without the lock, clone it:
//!    list every item (100 per page), create a new conversation with the first 20,
//!    append the rest 20 per call, then respond. Its cost grows with the history.
//! 3. **resptree.** Branching a response is one request per branch, whatever the
//!    history: every child reuses the same `previous_response_id`.
//!
//! ```text
//! cargo run --example conversation_lock
//! ```

use resptree::backend::ResponsesBackend;
use resptree::client::Client;
use resptree::emulator::{Emulator, Fault};
use resptree::{Engine, ResponseTree};
use serde_json::{Value, json};

const MODEL: &str = "gpt-4o-mini";
const BRANCHES: usize = 2;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    lock_demo().await?;

    let emulator = Emulator::spawn().await?;
    let http = reqwest::Client::new();
    let base = emulator.base_url();
    println!("\n2 & 3. Cost of {BRANCHES} branches as the history grows");
    println!(
        "{:>7} | {:>16} {:>12} | {:>16} {:>12}",
        "turns", "clone requests", "clone bytes", "resptree reqs", "resptree bytes"
    );
    for turns in [5, 20, 50, 100] {
        // The same history twice: as a Conversation, and as a chain of responses.
        let conversation = seeded_conversation(&http, &base, turns).await?;
        let engine = Engine::builder(
            ResponseTree::in_memory(),
            ResponsesBackend::new(
                Client::builder()
                    .base_url(base.clone())
                    .api_key("sk-emulator")
                    .build()?,
            ),
        )
        .build()?;
        let mut tip = None;
        for turn in 0..turns {
            tip = Some(
                engine
                    .respond(tip.as_ref(), &format!("turn {turn}"))
                    .await?
                    .id,
            );
        }
        let tip = tip.ok_or("no history")?;

        emulator.clear_requests();
        for branch in 0..BRANCHES {
            clone_and_respond(&http, &base, &conversation, &format!("branch {branch}")).await?;
        }
        let (clone_requests, clone_bytes) = traffic(&emulator);

        emulator.clear_requests();
        let texts: Vec<String> = (0..BRANCHES).map(|b| format!("branch {b}")).collect();
        for child in engine.branch(&tip, &texts).await? {
            child?;
        }
        let (tree_requests, tree_bytes) = traffic(&emulator);
        println!(
            "{turns:>7} | {clone_requests:>16} {clone_bytes:>12} | {tree_requests:>16} {tree_bytes:>12}"
        );
    }
    println!(
        "\nCloning costs O(history) requests and bytes per branch; branching a response costs one request."
    );
    Ok(())
}

/// Experiment 1: two parallel requests on one Conversation.
async fn lock_demo() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::spawn().await?;
    let http = reqwest::Client::new();
    let base = emulator.base_url();
    let conversation = create_conversation(&http, &base, &[]).await?;
    println!("1. Two parallel requests on conversation {conversation}");
    let ask = |text: &'static str| {
        let http = http.clone();
        let url = format!("{base}/responses");
        let body = json!({"model": MODEL, "conversation": conversation, "input": text});
        async move {
            let reply = http.post(url).json(&body).send().await?;
            let status = reply.status().as_u16();
            let body: Value = reply.json().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
    };
    // Against the real service, generation time makes two requests overlap. The
    // emulator answers at once, so it holds the first request (lock taken,
    // reply not yet generated) until the second has had its answer.
    emulator.inject(Fault::Hold { count: 1 });
    let formal = tokio::spawn(ask("Reply as a very formal travel agent."));
    emulator.wait_held(1).await;
    let funny = ask("Reply as a funny travel buddy.").await;
    emulator.release(1);
    let formal = formal.await?;
    for (name, outcome) in [("formal", formal?), ("funny", funny?)] {
        match outcome {
            (200, body) => println!("   {name}: 200 OK, {}", body["id"].as_str().unwrap_or("?")),
            (status, body) => println!(
                "   {name}: {status} {}",
                body["error"]["message"].as_str().unwrap_or("(no message)")
            ),
        }
    }
    Ok(())
}

/// A conversation holding `turns` user/assistant exchanges.
async fn seeded_conversation(
    http: &reqwest::Client,
    base: &str,
    turns: usize,
) -> Result<String, Box<dyn std::error::Error>> {
    let items: Vec<Value> = (0..turns)
        .flat_map(|t| {
            [
                json!({"type": "message", "role": "user", "content": format!("turn {t}")}),
                json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": format!("answer {t}")}]}),
            ]
        })
        .collect();
    let id = create_conversation(http, base, &[]).await?;
    for chunk in items.chunks(20) {
        post(
            http,
            &format!("{base}/conversations/{id}/items"),
            &json!({"items": chunk}),
        )
        .await?;
    }
    Ok(id)
}

/// The workaround, done faithfully: copy every item into a new conversation, then respond.
async fn clone_and_respond(
    http: &reqwest::Client,
    base: &str,
    source: &str,
    text: &str,
) -> Result<(), Box<dyn std::error::Error>> {
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
            .await?
            .error_for_status()?
            .json()
            .await?;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        items.extend(data.into_iter().map(as_input_item));
        if page["has_more"] != json!(true) {
            break;
        }
        after = page["last_id"].as_str().map(str::to_owned);
    }
    let (first, rest) = items.split_at(items.len().min(20));
    let copy = create_conversation(http, base, first).await?;
    for chunk in rest.chunks(20) {
        post(
            http,
            &format!("{base}/conversations/{copy}/items"),
            &json!({"items": chunk}),
        )
        .await?;
    }
    post(
        http,
        &format!("{base}/responses"),
        &json!({"model": MODEL, "conversation": copy, "input": text}),
    )
    .await?;
    Ok(())
}

async fn create_conversation(
    http: &reqwest::Client,
    base: &str,
    items: &[Value],
) -> Result<String, Box<dyn std::error::Error>> {
    let created = post(
        http,
        &format!("{base}/conversations"),
        &json!({"items": items}),
    )
    .await?;
    Ok(created["id"]
        .as_str()
        .ok_or("conversation without an id")?
        .to_owned())
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
) -> Result<Value, Box<dyn std::error::Error>> {
    Ok(http
        .post(url)
        .json(body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// A listed item as an input item: drop the server-assigned fields.
fn as_input_item(mut item: Value) -> Value {
    if let Some(map) = item.as_object_mut() {
        map.remove("id");
        map.remove("status");
    }
    item
}

/// Requests and bytes (both directions) the emulator has seen since it was last cleared.
fn traffic(emulator: &Emulator) -> (usize, u64) {
    let log = emulator.requests();
    let bytes = log.iter().map(|r| r.bytes_in + r.bytes_out).sum();
    (log.len(), bytes)
}
