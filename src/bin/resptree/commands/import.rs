//! `resptree import` (our export format) and `resptree import-chatgpt`.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use resptree::import;

use crate::args::FileArgs;
use crate::context::Context;

/// Imports a file written by `resptree export`.
pub(crate) fn run(ctx: &Context, args: &FileArgs) -> anyhow::Result<ExitCode> {
    let text = read(&args.file)?;
    let tree = ctx.open_tree()?;
    let report = import::import_json(&tree, &text)?;
    super::print(&format!(
        "imported {} node(s) and {} ref(s)",
        report.nodes, report.refs
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Imports a ChatGPT data export (`conversations.json`).
pub(crate) fn run_chatgpt(ctx: &Context, args: &FileArgs) -> anyhow::Result<ExitCode> {
    let text = read(&args.file)?;
    let tree = ctx.open_tree()?;
    let report = import::import_chatgpt(&tree, &text)?;
    super::print(&format!(
        "imported {} node(s) from {}",
        report.nodes,
        args.file.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// The file's text (`-`: stdin).
fn read(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
