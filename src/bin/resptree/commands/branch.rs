//! `resptree branch` and `resptree fanout`: several children of one node, in
//! parallel, with a progress bar on a terminal.

use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressStyle};
use resptree::engine::RespondOptions;
use resptree::node::message_item;
use resptree::{Engine, Node, NodeId};

use crate::args::{BranchArgs, FanoutArgs};
use crate::context::Context;
use crate::output::{Style, first_line};

/// One child of PARENT per TEXT.
pub(crate) async fn run(ctx: &Context, args: BranchArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let parent = Context::resolve(&tree, &args.parent)?;
    let session = ctx.session(tree).await?;
    let results = children(&session.engine, &parent, &args.texts).await;
    report(ctx, &results)
}

/// N alternative answers to TEXT under PARENT.
pub(crate) async fn run_fanout(ctx: &Context, args: FanoutArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let parent = Context::resolve(&tree, &args.parent)?;
    let session = ctx.session(tree).await?;
    // The CLI's backend (the Responses API) has no native fan-out: N requests go
    // out in parallel, each advancing the progress bar, as `Engine::fan_out` would
    // send them.
    let texts = vec![args.text; usize::from(args.n)];
    let results = children(&session.engine, &parent, &texts).await;
    report(ctx, &results)
}

/// Sends one request per text under `parent`, concurrently (the engine bounds
/// how many are in flight), advancing the progress bar as each completes.
/// Results come back in input order.
async fn children(
    engine: &Engine,
    parent: &NodeId,
    texts: &[String],
) -> Vec<resptree::Result<Node>> {
    let bar = progress(texts.len(), "children");
    let options = RespondOptions::default();
    let mut pending: FuturesUnordered<_> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let input = vec![message_item("user", text)];
            let options = &options;
            async move { (i, engine.respond_with(Some(parent), input, options).await) }
        })
        .collect();
    let mut results: Vec<Option<resptree::Result<Node>>> = texts.iter().map(|_| None).collect();
    while let Some((i, result)) = pending.next().await {
        bar.inc(1);
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(result);
        }
    }
    bar.finish_and_clear();
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(resptree::Error::Internal("a child that never ran"))))
        .collect()
}

/// A progress bar on a terminal; a hidden one otherwise, so piped output stays a
/// plain summary.
fn progress(len: usize, what: &str) -> ProgressBar {
    if !Style::is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::try_from(len).unwrap_or(u64::MAX));
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// One line per child (`id  first line of the answer`), failures on stderr; exit
/// 1 if any child failed.
fn report(ctx: &Context, results: &[resptree::Result<Node>]) -> anyhow::Result<ExitCode> {
    let mut lines = String::new();
    let mut failed = 0;
    for (i, result) in results.iter().enumerate() {
        match result {
            Ok(node) => {
                lines.push_str(&format!(
                    "{}  {}\n",
                    ctx.style.id(node.id.as_str()),
                    first_line(&node.output_text)
                ));
            }
            Err(err) => {
                failed += 1;
                let mut msg = format!("{err:#}");
                if let Some(id) = err.request_id().filter(|id| !msg.contains(id)) {
                    msg.push_str(&format!(" [request id {id}]"));
                }
                eprintln!("resptree: child {} failed: {msg}", i + 1);
            }
        }
    }
    super::print(&lines)?;
    if failed > 0 {
        eprintln!("resptree: {failed} of {} children failed", results.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
