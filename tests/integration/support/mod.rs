//! Shared helpers for the integration tests.

pub(crate) mod raw_http;
pub(crate) mod stores;
