//! Five alternative answers to one question, keep the best, continue it.
//!
//! "Regenerate" as a tree: one question fans out into five sibling answers (five
//! concurrent requests reusing the same parent). A simple rule picks the best one
//! (here: the answer that mentions the most of the user's interests, shortest on
//! ties), the conversation continues from it, and a ref named `best` marks it like
//! a git branch. Prints the tree and the token totals of every branch.
//!
//! ```text
//! cargo run --example fan_out
//! cargo run --example fan_out -- ./fan_out.db
//! ```
//!
//! Offline on the embedded emulator by default; the real API when `OPENAI_API_KEY`
//! is set (`RESPTREE_MODEL` picks the model). With `RESPTREE_BACKEND=chat` the
//! five alternatives come from *one* Chat Completions request with `n = 5`, and
//! the prompt is billed once instead of five times:
//!
//! ```text
//! RESPTREE_BACKEND=chat cargo run --example fan_out
//! ```

mod common;

use resptree::engine::UsageScope;
use resptree::render::{self, AsciiOptions};
use resptree::{Engine, Node, RefName, ResponseTree};

const INTERESTS: [&str; 4] = ["museum", "food", "walk", "river"];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (backend, _emulator) = common::backend().await?;
    let (path, _tmp) = common::store_path("fan_out.db")?;
    let engine = Engine::builder(ResponseTree::open(&path)?, backend)
        .model(common::model())
        .build()?;

    let question = engine
        .respond(
            None,
            "We have one free evening in Paris. We like museums, food, walking and the river.",
        )
        .await?;
    let alternatives = engine
        .fan_out(
            Some(&question.id),
            "Suggest one plan for the evening, in two sentences.",
            5,
        )
        .await?;

    let mut answers: Vec<Node> = Vec::new();
    for result in alternatives {
        match result {
            Ok(node) => answers.push(node),
            Err(err) => eprintln!("one alternative failed: {err}"),
        }
    }
    let best = answers
        .iter()
        .max_by_key(|node| {
            (
                score(&node.output_text),
                std::cmp::Reverse(node.output_text.len()),
            )
        })
        .ok_or("every alternative failed")?;
    println!(
        "picked {} (score {}):\n{}\n",
        best.id.short(),
        score(&best.output_text),
        best.output_text
    );

    let next = engine
        .respond(
            Some(&best.id),
            "Great, where should we have dinner afterwards?",
        )
        .await?;
    let best_ref: RefName = "best".parse()?;
    engine.tree().set_ref(best_ref, &next.id)?;

    println!(
        "{}",
        render::ascii(engine.tree(), None, &AsciiOptions::default())?
    );
    println!("tokens per branch (path from the root to each leaf):");
    for leaf in engine.tree().leaves(None)? {
        let totals = engine.usage(&leaf, UsageScope::Path).await?;
        println!(
            "  {:<10} {:>6} in {:>6} out {:>6} total",
            leaf.short(),
            totals.input_tokens,
            totals.output_tokens,
            totals.total_tokens
        );
    }
    println!("requests made: {}", engine.requests_made());
    Ok(())
}

/// How many of the user's interests an answer mentions.
fn score(text: &str) -> usize {
    let lower = text.to_lowercase();
    INTERESTS
        .iter()
        .filter(|word| lower.contains(*word))
        .count()
}
