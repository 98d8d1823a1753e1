//! The main example: plan a weekend in Paris, then branch the answer two ways at once.
//!
//! A user asks for a three-bullet itinerary. From that one response, two follow-ups
//! go out **in parallel**, both continuing the same `previous_response_id`: "reply
//! as a very formal travel agent" and "reply as a funny travel buddy". With a
//! Conversation object the second request would fail ("Another process is
//! currently operating on this conversation"); with a response tree each branch is
//! one request. The example prints both answers, the tree, and the request count.
//!
//! Run it offline, on the embedded emulator and a temporary sled store:
//!
//! ```text
//! cargo run --example paris
//! cargo run --example paris -- ./paris.db     # keep the tree in ./paris.db
//! ```
//!
//! With `OPENAI_API_KEY` set it talks to the real API (`RESPTREE_MODEL` picks the
//! model, default `gpt-4o-mini`). `RESPTREE_BACKEND=chat` uses Chat Completions
//! instead: each branch then replays the itinerary as `messages` (Chat
//! Completions keeps no server-side state), still one request per branch.
//!
//! ```text
//! RESPTREE_BACKEND=chat cargo run --example paris
//! ```

mod common;

use resptree::engine::RespondOptions;
use resptree::render::{self, AsciiOptions};
use resptree::{Engine, ResponseTree};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (backend, _emulator) = common::backend().await?;
    let (path, _tmp) = common::store_path("paris.db")?;
    let tree = ResponseTree::open(&path)?;
    let engine = Engine::builder(tree, backend)
        .model(common::model())
        .build()?;

    let itinerary = engine
        .respond_with(
            None,
            vec![resptree::node::message_item(
                "user",
                "I'm spending a weekend in Paris and love museums, food and walking. \
                 Give me a 3-bullet itinerary.",
            )],
            &RespondOptions::default().instructions("You are a helpful travel planner."),
        )
        .await?;
    println!(
        "Itinerary ({}):\n{}\n",
        itinerary.id.short(),
        itinerary.output_text
    );

    // Two follow-ups from the same response, sent concurrently.
    let styles = [
        "Reply as a very formal travel agent.",
        "Reply as a funny travel buddy.",
    ];
    let branches = engine.branch(&itinerary.id, styles).await?;
    for (style, branch) in styles.iter().zip(branches) {
        let node = branch?;
        println!("{style} ({})\n{}\n", node.id.short(), node.output_text);
    }

    println!(
        "{}",
        render::ascii(engine.tree(), None, &AsciiOptions::default())?
    );
    println!("requests made: {}", engine.requests_made());
    println!("tree stored at {}", path.display());
    Ok(())
}
