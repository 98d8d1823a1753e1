//! `resptree ask`: continue a node (or start a root), streaming the answer.

use std::io::Write;
use std::process::ExitCode;

use futures_util::StreamExt;
use resptree::engine::{RespondOptions, StreamUpdate};

use crate::args::AskArgs;
use crate::context::Context;

/// Streams the answer to stdout as it arrives, then prints the new node's id on
/// its own line.
pub(crate) async fn run(ctx: &Context, args: AskArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let parent = args
        .parent
        .as_deref()
        .map(|p| Context::resolve(&tree, p))
        .transpose()?;
    let session = ctx.session(tree).await?;
    let mut options = RespondOptions::default();
    if let Some(text) = args.instructions {
        options = options.instructions(text);
    }
    let mut stream = session
        .engine
        .respond_stream(parent.as_ref(), &args.text, &options);
    let mut out = std::io::stdout().lock();
    let mut committed = None;
    let mut ends_with_newline = true;
    while let Some(update) = stream.next().await {
        match update? {
            StreamUpdate::Delta(text) => {
                out.write_all(text.as_bytes())?;
                out.flush()?;
                if !text.is_empty() {
                    ends_with_newline = text.ends_with('\n');
                }
            }
            StreamUpdate::Committed(node) => committed = Some(node),
            _ => {}
        }
    }
    let node = committed
        .ok_or_else(|| anyhow::anyhow!("the answer stream ended before the node was recorded"))?;
    if !ends_with_newline {
        writeln!(out)?;
    }
    writeln!(out, "{}", ctx.style.id(node.id.as_str()))?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
