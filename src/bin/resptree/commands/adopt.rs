//! `resptree adopt`: record an existing server response in the tree.

use std::process::ExitCode;

use crate::args::AdoptArgs;
use crate::context::Context;

/// Adopts the response and its ancestors; prints the recorded ids, oldest first.
pub(crate) async fn run(ctx: &Context, args: &AdoptArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let session = ctx.session(tree).await?;
    let report = session.engine.adopt(&args.id).await?;
    let mut text: String = report
        .adopted
        .iter()
        .map(|id| format!("{}\n", ctx.style.id(id.as_str())))
        .collect();
    text.push_str(&format!("adopted {} node(s)", report.adopted.len()));
    if let Some(parent) = &report.attached_to {
        text.push_str(&format!(" under {parent}"));
    }
    if let Some(gone) = &report.truncated_at {
        text.push_str(&format!(" as a new root (the server no longer has {gone})"));
    }
    super::print(&text)?;
    Ok(ExitCode::SUCCESS)
}
