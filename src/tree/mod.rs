//! The in-memory response tree and its walking API.
