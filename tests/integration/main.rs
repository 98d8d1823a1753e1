//! The integration test suite: one binary, one module per area.

#[cfg(feature = "sled")]
mod props;
mod render;
#[cfg(feature = "sled")]
mod store;
mod tree;
