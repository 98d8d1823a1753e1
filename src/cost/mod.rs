//! The cost ledger: what requests cost in money.
//!
//! - [`PriceTable`]: per-model prices (input, cached input, cache write,
//!   output, reasoning; US dollars per million tokens). The default table is
//!   shipped with resptree (`data/prices.json`, OpenAI list prices at its
//!   `as_of` date); a user file merges over it ([`PriceTable::load`]).
//! - [`Usd`]: exact money (integer picodollars), so sums over many nodes do not
//!   drift.
//! - [`Cost`]: a cost by kind of token, with what could not be priced (an
//!   unknown model is *unknown*, never free).
//! - [`ResponseTree::cost`](crate::ResponseTree::cost) and
//!   [`ResponseTree::tree_cost`](crate::ResponseTree::tree_cost): the cost of
//!   any set of nodes (a node, a path, a subtree) and of a whole tree and its
//!   branches, judges' usage in score annotations included; no network needed.
//!   [`Engine::cost`](crate::Engine::cost) picks the set as
//!   [`Engine::usage`](crate::Engine::usage) does.
//!
//! ```
//! use resptree::cost::PriceTable;
//! use resptree::{Node, NodeId, ResponseTree, Usage};
//! let tree = ResponseTree::in_memory();
//! let mut node = Node::new(NodeId::local(), None);
//! node.model = Some("gpt-4o-mini-2024-07-18".into());
//! node.usage = Usage::new(12_000, 800);
//! tree.insert(node.clone())?;
//! let cost = tree.cost(&[node.id], &PriceTable::builtin())?;
//! assert_eq!(cost.to_string(), "$0.002280");
//! # Ok::<(), resptree::Error>(())
//! ```

mod ledger;
mod money;
mod prices;

pub use ledger::{BranchCost, Cost, TreeCost};
pub use money::Usd;
pub use prices::{ModelPrice, PRICES_ENV, PriceTable};
