//! The integration test suite: one binary, one module per area.

mod support;

#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "cli")]
mod cli_errors;
#[cfg(feature = "cli")]
mod cli_support;
mod client;
mod client_emulator;
mod client_stream;
mod emulator;
mod emulator_chat;
#[cfg(feature = "cli")]
mod emulator_cli;
mod emulator_conversations;
mod emulator_stream;
mod emulator_support;
mod engine;
mod examples;
mod props;
mod render;
mod store;
mod tree;
