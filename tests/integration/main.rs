//! The integration test suite: one binary, one module per area.

mod support;

mod backend_chat;
mod client;
mod client_emulator;
mod client_stream;
mod emulator;
mod emulator_support;
mod engine;
mod examples;
mod props;
mod render;
mod store;
mod tree;
