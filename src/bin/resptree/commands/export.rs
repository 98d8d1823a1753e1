//! `resptree export`: the whole tree as lossless JSON.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use resptree::render;

use crate::args::FileArgs;
use crate::context::Context;

/// Writes the export document to FILE (`-`: stdout).
pub(crate) fn run(ctx: &Context, args: &FileArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let doc = render::export_json(&tree)?;
    if args.file == Path::new("-") {
        super::print(&doc)?;
    } else {
        std::fs::write(&args.file, format!("{doc}\n"))
            .with_context(|| format!("writing {}", args.file.display()))?;
        super::print(&format!(
            "exported {} node(s) to {}",
            tree.len(),
            args.file.display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
