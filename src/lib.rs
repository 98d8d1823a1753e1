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
//! - [`annotation`]: typed, mutable notes on nodes — scores, labels, bookmarks, notes.
//! - [`tree`]: [`ResponseTree`], the in-memory graph (petgraph) and the walking API.
//! - [`store`]: the [`Store`] trait and its backends (sled, memory, PostgreSQL).
//! - [`search`]: full-text search ([`ResponseTree::search`]): query syntax,
//!   options, hits with highlighted snippets.
//! - [`render`]: ASCII, Graphviz DOT, Mermaid and JSON output of a tree (read-only).
//! - [`import`]: nodes from documents — resptree's JSON export, ChatGPT data exports.
//! - [`client`]: a typed Responses API client (reqwest): create, stream, retrieve, retry.
//! - [`backend`]: the [`Backend`](backend::Backend) trait the engine drives; the
//!   Responses API and Chat Completions backends.
//! - [`engine`]: [`Engine`] — respond, branch, fan out, stream, replay, merge, adopt,
//!   prune, recover, token accounting.
//! - `emulator` (feature `emulator`): an in-process Responses-API-compatible server.
//! - `error`: the one [`Error`] type and [`Result`] alias.
//!
//! # Example
//!
//! Offline, against the embedded emulator and an in-memory tree — a whole
//! program, as you would write it:
//!
//! ```
//! use resptree::backend::ResponsesBackend;
//! use resptree::client::Client;
//! use resptree::emulator::Emulator;
//! use resptree::{Engine, ResponseTree};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let emulator = Emulator::spawn().await?;
//!     let client = Client::builder()
//!         .base_url(emulator.base_url())
//!         .api_key("sk-demo")
//!         .build()?;
//!     let engine = Engine::builder(ResponseTree::in_memory(), ResponsesBackend::new(client))
//!         .build()?;
//!
//!     let plan = engine.respond(None, "Plan a weekend in Paris").await?;
//!     // Two answers to the same response, in parallel: one request each.
//!     let styles = ["Reply as a formal travel agent", "Reply as a funny travel buddy"];
//!     for child in engine.branch(&plan.id, styles).await? {
//!         let child = child?;
//!         assert_eq!(engine.tree().path(&child.id)?, [plan.id.clone(), child.id.clone()]);
//!     }
//!     assert_eq!(engine.tree().children(&plan.id)?.len(), 2);
//!
//!     engine.tree().set_ref("trip", &plan.id)?;
//!     assert_eq!(engine.tree().resolve("trip")?, plan.id);
//!     Ok(())
//! }
//! ```
//!
//! # Logging
//!
//! resptree reports what it does through [`tracing`](https://docs.rs/tracing):
//! a span per HTTP request (method, path, status, request id, attempts,
//! latency), retries, streams, store loads and commits. Install any
//! subscriber to see them (targets `resptree::client`, `resptree::store`,
//! `resptree::backend`); without one they cost next to nothing. The API key is
//! never logged, and prompt or reply text only at `debug` and `trace`. See
//! "Observability" in `docs/ARCHITECTURE.md`.

// docs.rs builds with `--cfg docsrs` (see Cargo.toml) and shows which feature
// each gated item needs; `doc_cfg` is nightly-only, so it is off everywhere else.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
pub use error::{ApiError, Error, Result, TreeViolation};

pub mod ids;
pub use ids::{IntoRefName, NodeId, RefName, ResponseId};

pub mod node;
pub use node::{Node, NodeStatus, Origin, Timestamp, ToolCall, ToolOutput, Usage};

pub mod annotation;
pub use annotation::{Annotation, AnnotationKey, AnnotationKind, Score, ScoreMethod, Stamped};

pub mod settings;
pub use settings::RequestSettings;

pub mod tree;
pub use tree::ResponseTree;

pub mod store;
pub use store::Store;

pub mod search;
pub use search::{SearchHit, SearchOptions};

pub mod render;

pub mod import;

pub mod client;
pub use client::Client;

#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub mod emulator;
#[cfg(feature = "emulator")]
#[cfg_attr(docsrs, doc(cfg(feature = "emulator")))]
pub use emulator::{Emulator, EmulatorConfig};

pub mod backend;

pub mod engine;
pub use engine::Engine;

/// Small text helpers (truncation) shared across modules.
mod text;

#[doc(hidden)]
pub mod fuzzing;
