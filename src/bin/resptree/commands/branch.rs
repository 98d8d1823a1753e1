//! `resptree branch` and `resptree fanout`: several children of one node, made
//! by [`Engine::branch`](resptree::Engine::branch) and
//! [`Engine::fan_out`](resptree::Engine::fan_out), with a spinner on a terminal.

use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use resptree::Node;
use resptree::engine::RespondOptions;
use resptree::node::message_item;

use crate::args::{BranchArgs, FanoutArgs};
use crate::context::Context;
use crate::output::{Style, first_line};

/// One child of PARENT per TEXT.
pub(crate) async fn run(ctx: &Context, args: BranchArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let parent = Context::resolve(&tree, &args.parent)?;
    let session = ctx.session(tree).await?;
    let bar = progress(args.texts.len());
    let inputs = args
        .texts
        .iter()
        .map(|text| vec![message_item("user", text)])
        .collect();
    let results = session
        .engine
        .branch_with(Some(&parent), inputs, &options(args.background))
        .await;
    bar.finish_and_clear();
    report(ctx, &results?)
}

/// N alternative answers to TEXT under PARENT: one request on a backend with
/// native fan-out (Chat Completions `n`), else N in parallel.
pub(crate) async fn run_fanout(ctx: &Context, args: FanoutArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let parent = Context::resolve(&tree, &args.parent)?;
    let session = ctx.session(tree).await?;
    let n = usize::from(args.n);
    let bar = progress(n);
    let input = vec![message_item("user", &args.text)];
    let results = session
        .engine
        .fan_out_with(Some(&parent), input, n, &options(args.background))
        .await;
    bar.finish_and_clear();
    report(ctx, &results?)
}

/// The options of `--background` (or none).
fn options(background: bool) -> RespondOptions {
    RespondOptions::default().background(background)
}

/// A spinner while `n` children are on their way, on a terminal; a hidden one
/// otherwise, so piped output stays a plain summary. (The engine hands back the
/// children together, and a native fan-out is one request: there is no count to
/// advance.)
fn progress(n: usize) -> ProgressBar {
    if !Style::is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        bar.set_style(style);
    }
    bar.set_message(format!("{n} children"));
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
