//! `resptree log`: the conversation along the path to a node.

use std::process::ExitCode;

use resptree::node::item_text;
use serde_json::Value;

use crate::args::IdArgs;
use crate::context::Context;

/// Prints each item of the transcript as `## role` and its text; `--json`: the
/// transcript items as the API would receive them on replay.
pub(crate) fn run(ctx: &Context, args: &IdArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let id = Context::resolve(&tree, &args.id)?;
    let items = tree.transcript(&id)?;
    if args.json {
        super::print_json(&items)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = String::new();
    for item in &items {
        let who = item
            .get("role")
            .or_else(|| item.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("item");
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&ctx.style.dim(&format!("## {who}")));
        text.push('\n');
        text.push_str(item_text(item).trim_end());
        text.push('\n');
    }
    super::print(&text)?;
    Ok(ExitCode::SUCCESS)
}
