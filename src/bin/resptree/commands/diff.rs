//! `resptree diff`: where two nodes' paths part.

use std::process::ExitCode;

use resptree::{NodeId, ResponseTree, render};

use crate::args::DiffArgs;
use crate::context::Context;

/// Prints the common ancestor, then the left path (`<`) and the right path (`>`)
/// below it; `--json`: `{"common", "left", "right"}`.
pub(crate) fn run(ctx: &Context, args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let left = Context::resolve(&tree, &args.left)?;
    let right = Context::resolve(&tree, &args.right)?;
    let diff = tree.diff(&left, &right)?;
    if args.json {
        super::print_json(&serde_json::json!({
            "common": diff.common,
            "left": diff.left,
            "right": diff.right,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = match &diff.common {
        Some(id) => format!("common: {}\n", ctx.style.id(id.as_str())),
        None => "common: none (the nodes are in different trees)\n".to_owned(),
    };
    for (mark, side) in [('<', &diff.left), ('>', &diff.right)] {
        for id in side {
            text.push_str(&format!(
                "{mark} {}  {}\n",
                ctx.style.id(id.as_str()),
                summary(&tree, id)?
            ));
        }
    }
    super::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn summary(tree: &ResponseTree, id: &NodeId) -> anyhow::Result<String> {
    Ok(render::summary(&tree.get(id)?))
}
