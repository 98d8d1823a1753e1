//! Beam search over a conversation, judged by the model, within a token budget.
//!
//! One question; three answers; a judge compares every pair twice (in both
//! orders, a disagreement counting as a tie) and the best two carry on; each
//! gets three answers to a follow-up; the judge picks again. The winning leaf
//! is named `best`, like a git branch. Every candidate is a node of the tree,
//! every score an annotation on it, and every judge request a node under the
//! exploration's judge anchor, so the whole search can be walked, shown and
//! resumed later.
//!
//! ```text
//! cargo run --example explore
//! cargo run --example explore -- ./explore.db
//! ```
//!
//! Offline on the embedded emulator by default; the real API when
//! `OPENAI_API_KEY` is set (`RESPTREE_MODEL` picks the model). With a store
//! path, running it again resumes the same exploration and pays for nothing
//! it already has.

mod common;

use resptree::explore::{Budget, Judge, Strategy};
use resptree::render::{self, AsciiOptions};
use resptree::{Engine, ResponseTree};

/// What the exploration may spend, in tokens (candidates and judges).
const BUDGET: u64 = 60_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (backend, _emulator) = common::backend().await?;
    let (path, _tmp) = common::store_path("explore.db")?;
    let engine = Engine::builder(ResponseTree::open(&path)?, backend)
        .model(common::model())
        .build()?;

    // The question is the root; reuse it when the store already has it.
    let question = match engine.tree().get_ref("question") {
        Ok(id) => id,
        Err(_) => {
            let node = engine
                .respond(
                    None,
                    "We have one free day in Paris in spring. We like art and food.",
                )
                .await?;
            engine.tree().set_ref("question", &node.id)?;
            node.id
        }
    };

    let strategy = Strategy::beam(3, 2, 2)
        .follow_up("Now make the plan cheaper, in two sentences.")
        .judge(Judge::pairwise(
            "Which plan is more concrete and better suited to people who like art and food?",
        ))
        .max_output_tokens(120)
        .on_progress(|p| {
            if p.done == p.total {
                eprintln!(
                    "level {}/{}: {:?} {}/{}",
                    p.level, p.depth, p.phase, p.done, p.total
                );
            }
        });
    // A budget is priced with the server's input-token count, which Chat
    // Completions (`RESPTREE_BACKEND=chat`) does not offer: no budget there.
    let budgeted = engine.backend().name() != "chat";
    let strategy = if budgeted {
        strategy.budget(Budget::tokens(BUDGET))
    } else {
        strategy
    };
    let outcome = engine
        .explore(
            &question,
            "Suggest a plan for the day, in two sentences.",
            &strategy,
        )
        .await?;

    println!(
        "{}",
        render::ascii(engine.tree(), Some(&question), &AsciiOptions::default())?
    );
    for level in &outcome.levels {
        println!(
            "level {}: {} candidates ({} resumed), {} tokens, judge {} requests / {} tokens",
            level.level,
            level.candidates.len(),
            level.resumed,
            level.usage.total_tokens,
            level.judge_usage.nodes,
            level.judge_usage.total_tokens
        );
        for c in &level.candidates {
            let kept = if level.kept.contains(&c.node) {
                "kept"
            } else {
                "    "
            };
            println!("  {kept} {:.2}  {}", c.score, c.node);
        }
    }
    if let Some(reason) = &outcome.stopped {
        println!("{reason}");
    }
    if let Some(best) = &outcome.best {
        engine.tree().set_ref("best", best)?;
        println!("best: {best}");
        println!("{}", engine.tree().get(best)?.output_text);
    }
    let budget = if budgeted {
        format!(" of a budget of {BUDGET}")
    } else {
        String::new()
    };
    println!("spent: {} tokens{budget}", outcome.spent.total_tokens);
    Ok(())
}
