//! `resptree path`: the nodes from the root down to a node.

use std::process::ExitCode;

use resptree::render;

use crate::args::IdArgs;
use crate::context::Context;

/// One line per node, root first: `id  user text → answer`; `--json`: the ids.
pub(crate) fn run(ctx: &Context, args: &IdArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let id = Context::resolve(&tree, &args.id)?;
    let path = tree.path(&id)?;
    if args.json {
        super::print_json(&path)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = String::new();
    for step in &path {
        let node = tree.get(step)?;
        text.push_str(&format!(
            "{}  {}\n",
            ctx.style.id(step.as_str()),
            render::summary(&node)
        ));
    }
    super::print(&text)?;
    Ok(ExitCode::SUCCESS)
}
