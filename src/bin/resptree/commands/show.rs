//! `resptree show`: the tree or a subtree as text (with its annotations
//! listed below it), JSON, DOT or Mermaid.

use std::process::ExitCode;

use resptree::render::{self, AsciiOptions, DiagramOptions};

use crate::args::{Format, ShowArgs};
use crate::context::Context;

/// Prints the tree (or the subtree under the given node) in the chosen format.
pub(crate) fn run(ctx: &Context, args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let root = args
        .id
        .as_deref()
        .map(|id| Context::resolve(&tree, id))
        .transpose()?;
    let format = if args.json { Format::Json } else { args.format };
    match format {
        Format::Ascii => {
            let options = AsciiOptions::default().with_max_depth(args.depth);
            let text = render::ascii(&tree, root.as_ref(), &options)?;
            super::print(&ctx.style.tree(&text))?;
            let notes = render::annotations_text(&tree, root.as_ref())?;
            if !notes.is_empty() {
                super::print(&format!("\nannotations:\n{notes}"))?;
            }
        }
        Format::Dot => super::print(&render::dot(
            &tree,
            root.as_ref(),
            &DiagramOptions::default(),
        )?)?,
        Format::Mermaid => {
            super::print(&render::mermaid(
                &tree,
                root.as_ref(),
                &DiagramOptions::default(),
            )?)?;
        }
        Format::Json => super::print(&render::nodes_json(&tree, root.as_ref(), args.depth)?)?,
    }
    Ok(ExitCode::SUCCESS)
}
