//! Persistence: the `Store` trait and its backends.
