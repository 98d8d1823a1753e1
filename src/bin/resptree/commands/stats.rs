//! `resptree stats`: nodes, roots, leaves, depth, tokens by branch, the
//! scores on each branch's leaf (from `explore` or `annotate --score`); with
//! `--cost`, money by branch.

use std::collections::HashMap;
use std::process::ExitCode;

use resptree::cost::{Cost, PriceTable, TreeCost};
use resptree::tree::UsageTotals;
use resptree::{Annotation, AnnotationKind, NodeId};

use crate::args::StatsArgs;
use crate::context::Context;

/// Prints the tree's statistics; `--json`: the `TreeStats` record, plus
/// `scores` (every scored node's scores, by node id) and with `--cost`, `cost`,
/// a `TreeCost`, and `prices`: their date and sources.
pub(crate) fn run(ctx: &Context, args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let stats = tree.stats()?;
    let mut scores: HashMap<NodeId, Vec<resptree::Score>> = HashMap::new();
    for (id, stamped) in tree.annotated(Some(AnnotationKind::Score))? {
        if let Annotation::Score(score) = stamped.annotation {
            scores.entry(id).or_default().push(score);
        }
    }
    let priced = if args.cost {
        let prices = PriceTable::load()?;
        let cost = tree.tree_cost(&prices)?;
        Some((prices, cost))
    } else {
        None
    };
    if args.json {
        let mut value = serde_json::to_value(&stats)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("scores".to_owned(), serde_json::to_value(&scores)?);
        }
        if let (Some((prices, cost)), Some(object)) = (&priced, value.as_object_mut()) {
            object.insert("cost".to_owned(), serde_json::to_value(cost)?);
            object.insert(
                "prices".to_owned(),
                serde_json::json!({"as_of": prices.as_of(), "sources": prices.sources()}),
            );
        }
        super::print_json(&value)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = format!(
        "nodes {}, roots {}, leaves {}, max depth {}\ntokens {}\n",
        stats.nodes,
        stats.roots,
        stats.leaves,
        stats.max_depth,
        tokens(&stats.tokens)
    );
    if !scores.is_empty() {
        text.push_str(&format!("scored nodes {}\n", scores.len()));
    }
    if let Some((prices, cost)) = &priced {
        text.push_str(&format!("cost {}\n", breakdown(&cost.total)));
        text.push_str(&format!(
            "prices: {} (as of {})\n",
            prices.sources().join(" + "),
            prices.as_of().unwrap_or("an unknown date")
        ));
    }
    if !stats.branches.is_empty() {
        text.push_str(if priced.is_some() {
            "branches (leaf, depth, tokens and cost along the path):\n"
        } else {
            "branches (leaf, depth, tokens along the path):\n"
        });
    }
    let branch_costs: HashMap<_, _> = priced
        .as_ref()
        .map(|(_, cost): &(PriceTable, TreeCost)| {
            cost.branches
                .iter()
                .map(|b| (b.leaf.clone(), &b.cost))
                .collect()
        })
        .unwrap_or_default();
    for branch in &stats.branches {
        text.push_str(&format!(
            "  {}  depth {}  {} tokens",
            ctx.style.id(branch.leaf.as_str()),
            branch.depth,
            branch.tokens.total_tokens
        ));
        if let Some(cost) = branch_costs.get(&branch.leaf) {
            text.push_str(&format!("  {cost}"));
        }
        for score in scores.get(&branch.leaf).into_iter().flatten() {
            text.push_str(&format!("  {} {}", score.criterion, score.value));
        }
        text.push('\n');
    }
    super::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `N (input I, output O)`, with the cached and cache-write parts of the input
/// when there are any.
pub(crate) fn tokens(t: &UsageTotals) -> String {
    let mut out = format!(
        "{} (input {}, output {}",
        t.total_tokens, t.input_tokens, t.output_tokens
    );
    if t.cached_tokens > 0 || t.cache_write_tokens > 0 {
        out.push_str(&format!(
            "; cached {}, cache writes {}",
            t.cached_tokens, t.cache_write_tokens
        ));
    }
    if t.reasoning_tokens > 0 {
        out.push_str(&format!("; reasoning {}", t.reasoning_tokens));
    }
    out.push(')');
    out
}

/// A cost with its parts: `$0.001 (input $…, cached input $…, …)`.
pub(crate) fn breakdown(cost: &Cost) -> String {
    let mut parts = vec![
        format!("input {}", cost.input),
        format!("cached input {}", cost.cached_input),
        format!("cache writes {}", cost.cache_write),
        format!("output {}", cost.output),
        format!("reasoning {}", cost.reasoning),
    ];
    if !cost.judge.is_zero() {
        parts.push(format!("judges {}", cost.judge));
    }
    format!("{cost} ({})", parts.join(", "))
}
