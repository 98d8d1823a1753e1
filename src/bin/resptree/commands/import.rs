//! `resptree import` (our export format) and `resptree import-chatgpt`.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use resptree::import::{self, ImportPhase, ImportProgress};

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

/// Imports a ChatGPT data export (`conversations.json`), streamed from the file
/// (exports run to hundreds of megabytes), with a progress bar on a terminal.
pub(crate) fn run_chatgpt(ctx: &Context, args: &FileArgs) -> anyhow::Result<ExitCode> {
    let (reader, len): (Box<dyn Read>, Option<u64>) = if args.file == Path::new("-") {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?;
        let len = file.metadata().ok().map(|m| m.len());
        (Box::new(file), len)
    };
    let tree = ctx.open_tree()?;
    let bar = progress(len);
    let result = import::import_chatgpt_reader(&tree, reader, |p| show(&bar, p));
    bar.finish_and_clear();
    let report = result?;
    super::print(&format!(
        "imported {} node(s) from {}",
        report.nodes,
        args.file.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// A bar over the file's bytes (a spinner for standard input) when stderr is a
/// terminal; a hidden one otherwise, so pipes, logs and tests see no progress.
fn progress(len: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(len) => (
            ProgressBar::new(len),
            "{bar:30} {bytes}/{total_bytes} {msg} {elapsed}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {bytes} {msg} {elapsed}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Moves the bar to where the import is.
fn show(bar: &ProgressBar, progress: &ImportProgress) {
    bar.set_position(progress.bytes);
    bar.set_message(match progress.phase {
        ImportPhase::Writing => format!("publishing {} nodes", progress.nodes),
        _ => format!(
            "{} conversations, {} nodes",
            progress.conversations, progress.nodes
        ),
    });
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
