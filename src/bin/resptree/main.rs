//! `resptree`: the command-line tool. It parses arguments and calls the library; see
//! `resptree --help`.

mod args;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("resptree: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: args::Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match args.command {
            args::Command::Emulate(opts) => commands::emulate::run(opts).await,
        }
    })
}
