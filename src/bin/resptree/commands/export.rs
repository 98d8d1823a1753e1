//! `resptree export`: the whole tree as lossless JSON, or as one
//! self-contained HTML file to browse offline.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use resptree::render;

use crate::args::{ExportArgs, ExportFormat};
use crate::context::Context;

/// Writes the export document to FILE (`-`: stdout).
pub(crate) fn run(ctx: &Context, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let doc = match args.format {
        ExportFormat::Json => render::export_json(&tree)?,
        ExportFormat::Html => resptree::web::export_html(&tree)?,
    };
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
