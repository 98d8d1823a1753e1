//! `resptree`: the command-line tool. It parses arguments and calls the library; see
//! `resptree --help`.
//!
//! Exit codes: 0 success, 1 runtime error, 2 usage error. Errors are printed as one
//! line on stderr, `resptree: ` followed by the error and its causes.

mod args;
mod commands;
mod context;
mod logging;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Command, Options};
use crate::context::Context;

/// The exit code of a usage error, as clap uses for its own.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    // `exit` prints clap's message and exits 2 for a usage error, 0 for --help.
    let args = args::Args::try_parse().unwrap_or_else(|err| err.exit());
    let options = match args.into_options(|name| std::env::var(name).ok()) {
        Ok(options) => options,
        Err(err) => {
            eprintln!("resptree: {err}");
            return ExitCode::from(USAGE);
        }
    };
    logging::init(options.verbose, std::env::var("RUST_LOG").ok().as_deref());
    match run(options) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("resptree: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

fn run(options: Options) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (ctx, command) = Context::new(options);
    runtime.block_on(async {
        match command {
            Command::Ask(a) => commands::ask::run(&ctx, a).await,
            Command::Branch(a) => commands::branch::run(&ctx, a).await,
            Command::Fanout(a) => commands::branch::run_fanout(&ctx, a).await,
            Command::Show(a) => commands::show::run(&ctx, &a),
            Command::Path(a) => commands::path::run(&ctx, &a),
            Command::Diff(a) => commands::diff::run(&ctx, &a),
            Command::Log(a) => commands::log::run(&ctx, &a),
            Command::Ref(a) => commands::refs::run(&ctx, a),
            Command::Prune(a) => commands::prune::run(&ctx, &a).await,
            Command::Adopt(a) => commands::adopt::run(&ctx, &a).await,
            Command::Search(a) => commands::search::run(&ctx, &a),
            Command::Stats(a) => commands::stats::run(&ctx, &a),
            Command::Export(a) => commands::export::run(&ctx, &a),
            Command::Import(a) => commands::import::run(&ctx, &a),
            Command::ImportChatgpt(a) => commands::import::run_chatgpt(&ctx, &a),
            Command::Migrate(a) => commands::migrate::run(&a),
            Command::Emulate(a) => commands::emulate::run(a).await,
            Command::Serve(a) => commands::serve::run(&ctx, &a).await,
            Command::Recover => commands::recover::run(&ctx).await,
        }
    })
}

/// The error and its causes on one line, with the server's request id when the
/// error carries one that the message does not already show.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = format!("{err:#}");
    let request_id = err
        .chain()
        .find_map(|e| e.downcast_ref::<resptree::Error>())
        .and_then(resptree::Error::request_id);
    if let Some(id) = request_id {
        if !line.contains(id) {
            line.push_str(&format!(" [request id {id}]"));
        }
    }
    line.replace(['\r', '\n'], " ")
}
