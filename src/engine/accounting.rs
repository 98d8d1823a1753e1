//! Which nodes [`Engine::usage`](super::Engine::usage) adds up and
//! [`Engine::cost`](super::Engine::cost) prices; the adding up is
//! [`ResponseTree::usage`], the one implementation of token accounting, and
//! the pricing [`ResponseTree::cost`].

use super::UsageScope;
use crate::cost::{Cost, PriceTable};
use crate::error::Result;
use crate::ids::NodeId;
use crate::tree::ResponseTree;
pub use crate::tree::UsageTotals;

/// Adds up the usage of the nodes `scope` selects around `id`.
pub(super) fn totals(tree: &ResponseTree, id: &NodeId, scope: UsageScope) -> Result<UsageTotals> {
    tree.usage(&selected(tree, id, scope)?)
}

/// Prices the nodes `scope` selects around `id` (see [`ResponseTree::cost`]).
pub(super) fn cost(
    tree: &ResponseTree,
    id: &NodeId,
    scope: UsageScope,
    prices: &PriceTable,
) -> Result<Cost> {
    tree.cost(&selected(tree, id, scope)?, prices)
}

/// The nodes `scope` selects around `id`.
fn selected(tree: &ResponseTree, id: &NodeId, scope: UsageScope) -> Result<Vec<NodeId>> {
    Ok(match scope {
        UsageScope::Node => vec![id.clone()],
        UsageScope::Path => tree.path(id)?,
        UsageScope::Subtree => tree.descendants(id)?,
    })
}
