//! The integration test suite: one binary, one module per area.

mod emulator;
mod emulator_support;
