//! The integration test suite: one binary, one module per area.

mod emulator;
mod emulator_chat;
#[cfg(feature = "cli")]
mod emulator_cli;
mod emulator_conversations;
mod emulator_stream;
mod emulator_support;
