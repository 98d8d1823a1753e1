//! `resptree log`: the conversation along the path to a node.

use std::process::ExitCode;

use resptree::node::{ToolCall, item_text, tool_output_of};
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
        // Tool turns: the call compactly, the output with the call it answers.
        let (who, body) = if let Some(call) = ToolCall::from_item(item) {
            (
                format!("tool call {}", call.call_id),
                format!("⚙ {}", call.display_compact()),
            )
        } else if let Some(output) = tool_output_of(item) {
            (format!("tool output {}", output.call_id), output.output)
        } else {
            (who.to_owned(), item_text(item))
        };
        text.push_str(&ctx.style.dim(&format!("## {who}")));
        text.push('\n');
        text.push_str(body.trim_end());
        text.push('\n');
    }
    super::print(&text)?;
    Ok(ExitCode::SUCCESS)
}
