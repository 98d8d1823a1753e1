//! The response tree: the in-memory [`Graph`] and the durable [`ResponseTree`].
//!
//! [`Graph`] is the pure topology (ids, edges, creation times) and owns the walking
//! API. [`ResponseTree`] pairs a graph with a [`Store`](crate::store::Store): it
//! validates every edit against the graph, writes it to the store atomically, and
//! only then updates the graph, so the two never disagree.

mod annotate;
mod graph;
mod group_commit;
mod handle;
mod id_index;
mod search;
mod staged;
mod stats;
mod watch;

pub use graph::{Ancestors, Bfs, BranchDiff, Dfs, EdgeKind, Graph, MissingContext};
pub use handle::{Refreshed, ResponseTree};
#[cfg(test)]
pub(crate) use staged::CHUNK as STAGE_CHUNK;
pub(crate) use staged::StagedInsert;
#[cfg(feature = "web")]
pub(crate) use stats::Tally;
pub use stats::{BranchStats, TreeStats, UsageTotals};
pub use watch::{Watch, WatchWake};
