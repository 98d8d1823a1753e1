//! The integration test suite: one binary, one module per area.

mod props;
mod render;
mod store;
mod tree;
