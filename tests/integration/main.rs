//! The integration test suite: one binary, one module per area.

mod emulator;
mod emulator_chat;
mod emulator_conversations;
mod emulator_stream;
mod emulator_support;
