//! `resptree stats`: nodes, roots, leaves, depth, tokens by branch.

use std::process::ExitCode;

use crate::args::JsonArgs;
use crate::context::Context;

/// Prints the tree's statistics; `--json`: the `TreeStats` record.
pub(crate) fn run(ctx: &Context, args: &JsonArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let stats = tree.stats()?;
    if args.json {
        super::print_json(&stats)?;
        return Ok(ExitCode::SUCCESS);
    }
    let t = &stats.tokens;
    let mut text = format!(
        "nodes {}, roots {}, leaves {}, max depth {}\ntokens {} (input {}, output {})\n",
        stats.nodes,
        stats.roots,
        stats.leaves,
        stats.max_depth,
        t.total_tokens,
        t.input_tokens,
        t.output_tokens
    );
    if !stats.branches.is_empty() {
        text.push_str("branches (leaf, depth, tokens along the path):\n");
    }
    for branch in &stats.branches {
        text.push_str(&format!(
            "  {}  depth {}  {} tokens\n",
            ctx.style.id(branch.leaf.as_str()),
            branch.depth,
            branch.tokens.total_tokens
        ));
    }
    super::print(&text)?;
    Ok(ExitCode::SUCCESS)
}
