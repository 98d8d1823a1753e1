//! Command-line arguments (clap derive types).

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

/// Turn LLM conversations into durable trees you can branch, walk and keep.
#[derive(Debug, Parser)]
#[command(name = "resptree", version, about)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the Responses-API emulator until interrupted (Ctrl-C).
    Emulate(EmulateArgs),
}

/// Options of `resptree emulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct EmulateArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) listen: SocketAddr,
    /// Seed of the fake model.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Fixed latency before each generated reply, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub(crate) latency_ms: u64,
    /// Delay between streamed deltas, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub(crate) token_delay_ms: u64,
}
