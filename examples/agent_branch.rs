//! An agent's tool loop as a tree: branch at a tool call with two different
//! tool outputs, and continue each branch.
//!
//! The agent has one function, `get_weather`. Asked about the weekend in
//! Paris, the model calls it; the node holding that call has a *pending* tool
//! call. Instead of answering it once, the example answers it twice, in
//! parallel — "sunny, 24°C" and "rain, 12°C" — so the same call gets two
//! children, and each branch continues with the model's advice for that
//! weather. The tree printed at the end shows the call and both outputs.
//! The tools are sent once, at the root: every child re-sends its parent's
//! settings, since the server never carries tools over `previous_response_id`.
//!
//! Run it offline, on the embedded emulator and a temporary sled store:
//!
//! ```text
//! cargo run --example agent_branch
//! cargo run --example agent_branch -- ./agent.db   # keep the tree in ./agent.db
//! ```
//!
//! With `OPENAI_API_KEY` set it talks to the real API (`RESPTREE_MODEL` picks
//! the model, default `gpt-4o-mini`); `RESPTREE_BACKEND=chat` uses Chat
//! Completions, where the calls travel as `tool_calls` and `tool` messages.
//! `RESPTREE_BACKEND=chat` works offline too.

mod common;

use resptree::engine::RespondOptions;
use resptree::node::message_item;
use resptree::render::{self, AsciiOptions};
use resptree::settings::{FunctionTool, ToolChoice};
use resptree::{Engine, ResponseTree, ToolOutput};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (backend, _emulator) = common::backend().await?;
    let (path, _tmp) = common::store_path("agent.db")?;
    let engine = Engine::builder(ResponseTree::open(&path)?, backend)
        .model(common::model())
        .build()?;

    let get_weather = FunctionTool::new("get_weather")
        .description("The weather forecast for a city")
        .parameters(json!({
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city"}},
            "required": ["city"],
            "additionalProperties": false
        }))
        .strict(true);
    let options = RespondOptions::default()
        .instructions("You are a travel assistant. Check the weather before advising.")
        .tool(get_weather)
        .tool_choice(ToolChoice::Auto);
    let question = engine
        .respond_with(
            None,
            vec![message_item(
                "user",
                "What should I do in Paris this weekend? Use get_weather for \"Paris\" first.",
            )],
            &options,
        )
        .await?;

    let calls = question.pending_tool_calls();
    let Some(call) = calls.first() else {
        return Err(format!(
            "the model answered without calling get_weather: {:?}",
            question.output_text
        )
        .into());
    };
    println!(
        "The model called {} ({}).\n",
        call.display_compact(),
        question.id.short()
    );

    // Two answers to the same call(s), sent concurrently: two branches.
    let forecasts = [
        json!({"forecast": "sunny", "temp_c": 24}),
        json!({"forecast": "rain", "temp_c": 12}),
    ];
    let alternatives = forecasts.iter().map(|forecast| {
        calls
            .iter()
            .map(|c| ToolOutput::json(c.call_id.clone(), forecast))
            .collect::<Vec<_>>()
    });
    let branches = engine
        .branch_tool_outputs(&question.id, alternatives)
        .await?;
    for (forecast, branch) in forecasts.iter().zip(branches) {
        let node = branch?;
        println!(
            "If {} ({}):\n{}\n",
            forecast["forecast"],
            node.id.short(),
            node.output_text
        );
        // Each branch goes on on its own; the tools are still there.
        let next = engine
            .respond(Some(&node.id), "And what should I pack?")
            .await?;
        println!("  packing ({}): {}\n", next.id.short(), next.output_text);
    }

    println!(
        "{}",
        render::ascii(engine.tree(), None, &AsciiOptions::default())?
    );
    println!("requests made: {}", engine.requests_made());
    println!("tree stored at {}", path.display());
    Ok(())
}
