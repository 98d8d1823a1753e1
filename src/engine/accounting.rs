//! Token accounting over nodes, paths and subtrees.

use std::collections::HashSet;

use super::UsageScope;
use crate::error::Result;
use crate::ids::NodeId;
use crate::node::Usage;
use crate::tree::ResponseTree;

/// Token totals over a set of nodes.
///
/// Input tokens of a group of siblings made by one request (Chat Completions `n`,
/// marked by [`Usage::shared_input_group`]) are counted once for the group, as
/// they were billed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsageTotals {
    /// How many nodes were added up.
    pub nodes: u64,
    /// Input tokens billed.
    pub input_tokens: u64,
    /// Cached input tokens.
    pub cached_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Reasoning tokens (part of output).
    pub reasoning_tokens: u64,
    /// Input plus output tokens.
    pub total_tokens: u64,
}

impl UsageTotals {
    fn add(&mut self, usage: &Usage, groups: &mut HashSet<NodeId>) {
        self.nodes += 1;
        let first_of_group = usage
            .shared_input_group
            .as_ref()
            .is_none_or(|g| groups.insert(g.clone()));
        let input = if first_of_group {
            usage.input_tokens
        } else {
            0
        };
        let cached = if first_of_group {
            usage.cached_tokens
        } else {
            0
        };
        self.input_tokens += input;
        self.cached_tokens += cached;
        self.output_tokens += usage.output_tokens;
        self.reasoning_tokens += usage.reasoning_tokens;
        self.total_tokens += input + usage.output_tokens;
    }
}

/// Adds up the usage of the nodes `scope` selects around `id`.
pub(super) fn totals(tree: &ResponseTree, id: &NodeId, scope: UsageScope) -> Result<UsageTotals> {
    let ids = match scope {
        UsageScope::Node => vec![id.clone()],
        UsageScope::Path => tree.path(id)?,
        UsageScope::Subtree => tree.descendants(id)?,
    };
    let mut totals = UsageTotals::default();
    let mut groups = HashSet::new();
    for id in ids {
        totals.add(&tree.get(&id)?.usage, &mut groups);
    }
    Ok(totals)
}
