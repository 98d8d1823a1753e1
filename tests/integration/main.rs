//! The integration test suite: one binary, one module per area.
//!
//! It needs the default features (`sled`, `emulator`); the CLI tests also need
//! `cli`. `scripts/test` runs it with `--all-features`, so nothing is skipped.

// Tests and their helpers may panic on unexpected values: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod annotations;
mod backend_chat;
#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "cli")]
mod cli_agents;
#[cfg(feature = "cli")]
mod cli_errors;
#[cfg(feature = "cli")]
mod cli_ledger;
#[cfg(feature = "cli")]
mod cli_logging;
#[cfg(feature = "cli")]
mod cli_search;
#[cfg(feature = "cli")]
mod cli_support;
mod client;
mod client_background;
mod client_emulator;
mod client_stream;
mod emulator;
mod emulator_agents;
mod emulator_background;
mod emulator_chat;
#[cfg(feature = "cli")]
mod emulator_cli;
mod emulator_conversations;
mod emulator_stream;
mod emulator_support;
mod engine;
mod engine_agents;
mod examples;
mod observability;
mod props;
mod reliability_crash;
mod reliability_faults;
mod reliability_fuzz;
mod reliability_recovery;
mod reliability_secrets;
mod reliability_server;
mod reliability_store;
mod reliability_support;
mod render;
mod search;
mod store;
#[cfg(feature = "postgres")]
mod store_postgres;
mod store_sled;
mod tree;
