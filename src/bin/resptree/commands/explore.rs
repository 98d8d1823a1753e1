//! `resptree explore`: best-of-N or beam search under a node
//! ([`Engine::explore`](resptree::Engine::explore)), judged by the model, with
//! a progress bar per level on a terminal. Prints the explored subtree, each
//! level's candidates with their scores, and names the winner with a ref.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use resptree::explore::{
    Budget, ExploreOutcome, ExplorePhase, ExploreProgress, Judge, LevelReport, Strategy,
};
use resptree::render::{self, AsciiOptions};
use resptree::{ResponseTree, engine::UsageTotals};
use serde_json::{Value, json};

use crate::args::ExploreArgs;
use crate::context::Context;
use crate::output::first_line;

/// What the judge applies when `--judge` gives no criteria.
const DEFAULT_CRITERIA: &str = "Which answer is more helpful, correct and concrete?";

/// Explores under PARENT, then prints and names the result.
pub(crate) async fn run(ctx: &Context, args: ExploreArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let parent = Context::resolve(&tree, &args.parent)?;
    let session = ctx.session(tree).await?;
    let bar = progress_bar();
    let mut strategy = strategy(&args, bar.clone());
    if let Some(dollars) = args.budget_usd {
        let prices = resptree::cost::PriceTable::load()?;
        let mut budget = Budget::usd(usd(dollars), prices);
        if let Some(limit) = args.budget_tokens {
            budget = budget.and_tokens(limit);
        }
        strategy = strategy.budget(budget);
    }
    let result = session.engine.explore(&parent, &args.text, &strategy).await;
    bar.finish_and_clear();
    let outcome = result?;
    let tree = session.engine.tree();
    if let Some(best) = &outcome.best {
        tree.set_ref(&args.ref_name, best)?;
    }
    if args.json {
        super::print_json(&to_json(&outcome, &args, tree)?)?;
    } else {
        super::print(&report(ctx, &outcome, &args, tree)?)?;
    }
    if let Some(reason) = &outcome.stopped {
        eprintln!("resptree: {reason}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The library's strategy for the arguments.
fn strategy(args: &ExploreArgs, bar: ProgressBar) -> Strategy {
    let criteria = args.judge.as_deref().unwrap_or(DEFAULT_CRITERIA);
    let mut judge = if args.rubric {
        Judge::rubric(criteria, 1, 10)
    } else {
        Judge::pairwise(criteria)
    };
    if let Some(model) = &args.judge_model {
        judge = judge.model(model.clone());
    }
    let mut strategy = Strategy::beam(
        usize::from(args.width),
        usize::from(args.keep),
        usize::from(args.depth),
    )
    .judge(judge)
    .on_progress(move |p| show(&bar, p));
    for text in &args.follow_up {
        strategy = strategy.follow_up(text.clone());
    }
    if let Some(limit) = args.budget_tokens {
        strategy = strategy.budget(Budget::tokens(limit));
    }
    if let Some(limit) = args.max_output_tokens {
        strategy = strategy.max_output_tokens(limit);
    }
    if let Some(id) = &args.id {
        strategy = strategy.id(id.clone());
    }
    strategy
}

/// Dollars (checked finite, 0 to 1e9, by the argument parser) as exact
/// microdollars.
fn usd(dollars: f64) -> resptree::cost::Usd {
    // In range by the check in `args`: at most 10^15 microdollars, not negative.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let micros = (dollars * 1e6).round() as u64;
    resptree::cost::Usd::from_micros(micros)
}

/// A bar on stderr when it is a terminal; hidden otherwise, so pipes, logs and
/// tests see no progress.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{msg:24} {bar:30} {pos}/{len} {elapsed}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Moves the bar: one run of it per level and phase.
fn show(bar: &ProgressBar, p: &ExploreProgress) {
    let what = match p.phase {
        ExplorePhase::Growing => "growing",
        ExplorePhase::Scoring => "judging",
        ExplorePhase::Done => "done",
        _ => "working",
    };
    bar.set_message(format!("level {}/{} {what}", p.level, p.depth));
    bar.set_length(p.total as u64);
    bar.set_position(p.done as u64);
}

/// The explored subtree, the levels with their scores, the winner and the spend.
fn report(
    ctx: &Context,
    outcome: &ExploreOutcome,
    args: &ExploreArgs,
    tree: &ResponseTree,
) -> anyhow::Result<String> {
    let mut out = ctx.style.tree(&render::ascii(
        tree,
        Some(&outcome.parent),
        &AsciiOptions::default(),
    )?);
    out.push('\n');
    for level in &outcome.levels {
        out.push_str(&level_line(level));
        out.push('\n');
        for c in &level.candidates {
            let kept = if level.kept.contains(&c.node) {
                "*"
            } else {
                " "
            };
            let text = tree.get(&c.node).map(|n| n.output_text).unwrap_or_default();
            out.push_str(&format!(
                "  {kept} {:>7.3}  {}  {}\n",
                c.score,
                ctx.style.id(c.node.as_str()),
                first_line(&text)
            ));
        }
    }
    match &outcome.best {
        Some(best) => out.push_str(&format!(
            "best: {} (ref {})\n",
            ctx.style.id(best.as_str()),
            args.ref_name
        )),
        None => out.push_str("best: none (no level was explored)\n"),
    }
    out.push_str(&format!(
        "spent: {}{}\n",
        tokens(&outcome.spent),
        args.budget_tokens
            .map(|b| format!(" of a budget of {b}"))
            .unwrap_or_default()
    ));
    if let Some(usd) = outcome.spent_usd {
        out.push_str(&format!(
            "spent in money: {usd}{}\n",
            args.budget_usd
                .map(|b| format!(" of a budget of ${b}"))
                .unwrap_or_default()
        ));
    }
    out.push_str(&format!("exploration: {}\n", outcome.id));
    Ok(out)
}

fn level_line(level: &LevelReport) -> String {
    let mut line = format!(
        "level {}: {} candidates ({} from an earlier run), {}",
        level.level,
        level.candidates.len(),
        level.resumed,
        tokens(&level.usage)
    );
    if level.judge_usage.nodes > 0 {
        line.push_str(&format!(
            "; judge: {} requests, {}",
            level.judge_usage.nodes,
            tokens(&level.judge_usage)
        ));
    }
    if level.unparsable > 0 {
        line.push_str(&format!(
            "; {} unreadable verdicts counted as ties",
            level.unparsable
        ));
    }
    line
}

fn tokens(u: &UsageTotals) -> String {
    format!(
        "{} tokens ({} in, {} cached, {} cache writes, {} out)",
        u.total_tokens, u.input_tokens, u.cached_tokens, u.cache_write_tokens, u.output_tokens
    )
}

fn to_json(
    outcome: &ExploreOutcome,
    args: &ExploreArgs,
    tree: &ResponseTree,
) -> anyhow::Result<Value> {
    let levels: Vec<Value> = outcome
        .levels
        .iter()
        .map(|l| {
            json!({
                "level": l.level,
                "resumed": l.resumed,
                "priced_tokens": l.priced_tokens,
                "unparsable": l.unparsable,
                "usage": l.usage,
                "judge_usage": l.judge_usage,
                "kept": l.kept.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                "candidates": l.candidates.iter().map(|c| json!({
                    "id": c.node.as_str(),
                    "parent": c.parent.as_str(),
                    "score": c.score,
                    "tally": c.tally.map(|t| json!({"wins": t.wins, "losses": t.losses, "ties": t.ties})),
                    "usage": c.usage,
                    "text": tree.get(&c.node).map(|n| n.output_text).unwrap_or_default(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({
        "id": outcome.id,
        "parent": outcome.parent.as_str(),
        "best": outcome.best.as_ref().map(|b| b.as_str()),
        "ref": outcome.best.as_ref().map(|_| args.ref_name.as_str()),
        "stopped": outcome.stopped.as_ref().map(ToString::to_string),
        "spent": outcome.spent,
        "spent_usd": outcome.spent_usd.map(|u| u.to_decimal()),
        "budget_usd": args.budget_usd,
        "budget_tokens": args.budget_tokens,
        "judges": outcome.judges.as_ref().map(|j| j.as_str()),
        "levels": levels,
    }))
}
