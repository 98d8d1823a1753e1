//! resptree turns LLM conversations into trees you can branch, walk and keep.
//!
//! With the OpenAI Responses API every stored response has an id, and
//! `previous_response_id` may name the same parent any number of times: each use
//! makes a new child that sees the parent's whole context. A conversation is really
//! a tree, and branching costs one request. resptree records every response as a
//! [`Node`] in a durable tree keyed by its id, so you can branch a response into many
//! children at once, walk and compare branches offline, and continue any of them
//! later — even after the server has forgotten it.
//!
//! # Layout
//!
//! - [`ids`]: typed ids ([`NodeId`], [`ResponseId`], [`RefName`]); validation, no IO.
//! - [`node`]: the [`Node`] record — what was sent, what came back, usage, origin.
//! - [`tree`]: [`ResponseTree`], the in-memory graph (petgraph) and the walking API.
//! - [`store`]: the [`Store`] trait and its backends (sled, memory).
//! - [`render`]: ASCII, Graphviz DOT, Mermaid and JSON output of a tree.
//! - [`client`]: a typed Responses API client (reqwest): create, stream, retrieve, retry.
//! - `emulator` (feature `emulator`): an in-process Responses-API-compatible server.
//! - `error`: the one [`Error`] type and [`Result`] alias.

mod error;
pub use error::{ApiError, Error, Result, TreeViolation};

pub mod ids;
pub use ids::{NodeId, RefName, ResponseId};

pub mod node;
pub use node::{Node, NodeStatus, Origin, Timestamp, Usage};

pub mod tree;
pub use tree::ResponseTree;

pub mod store;
pub use store::Store;

pub mod render;

pub mod client;
pub use client::Client;

#[cfg(feature = "emulator")]
pub mod emulator;
#[cfg(feature = "emulator")]
pub use emulator::{Emulator, EmulatorConfig};

pub mod backend;

pub mod engine;
pub use engine::Engine;

#[doc(hidden)]
pub mod fuzzing;
