//! Which nodes [`Engine::usage`](super::Engine::usage) adds up; the adding up is
//! [`ResponseTree::usage`], the one implementation of token accounting.

use super::UsageScope;
use crate::error::Result;
use crate::ids::NodeId;
use crate::tree::ResponseTree;
pub use crate::tree::UsageTotals;

/// Adds up the usage of the nodes `scope` selects around `id`.
pub(super) fn totals(tree: &ResponseTree, id: &NodeId, scope: UsageScope) -> Result<UsageTotals> {
    let ids = match scope {
        UsageScope::Node => vec![id.clone()],
        UsageScope::Path => tree.path(id)?,
        UsageScope::Subtree => tree.descendants(id)?,
    };
    tree.usage(&ids)
}
