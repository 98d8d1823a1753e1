//! The integration test suite: one binary, one module per area.
