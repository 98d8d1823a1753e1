//! `resptree prune`: remove a node and its subtree (and, with `--remote`, the
//! server's copies).

use std::process::ExitCode;

use crate::args::PruneArgs;
use crate::context::Context;

/// Removes the subtree; with `--remote` also deletes the responses on the server
/// (failures there are listed and make the exit code 1; the local removal stands).
pub(crate) async fn run(ctx: &Context, args: &PruneArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let id = Context::resolve(&tree, &args.id)?;
    if !args.remote {
        let removed = tree.remove_subtree(&id)?;
        super::print(&format!("removed {} node(s)", removed.len()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let session = ctx.session(tree).await?;
    let report = session.engine.prune(&id, true).await?;
    super::print(&format!(
        "removed {} node(s); deleted {} response(s) on the server",
        report.removed.len(),
        report.remote_deleted.len()
    ))?;
    for (response, err) in &report.remote_errors {
        eprintln!("resptree: could not delete {response} on the server: {err:#}");
    }
    if report.remote_errors.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}
