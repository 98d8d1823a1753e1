//! Token accounting ([`UsageTotals`], [`ResponseTree::usage`]) and
//! [`TreeStats`]: counts and token totals over a whole [`ResponseTree`].

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::ResponseTree;
use crate::error::Result;
use crate::ids::NodeId;
use crate::node::Usage;

/// The shape of a tree and what it cost, as [`ResponseTree::stats`] reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TreeStats {
    /// How many nodes the tree holds.
    pub nodes: usize,
    /// How many nodes have no parent.
    pub roots: usize,
    /// How many nodes have no children.
    pub leaves: usize,
    /// The largest number of parent edges between a node and its root (a lone root
    /// has depth 0; an empty tree reports 0).
    pub max_depth: usize,
    /// Tokens over every node, each node counted once (input shared by a group of
    /// siblings made by one request is counted once for the group).
    pub tokens: UsageTotals,
    /// One entry per branch (root-to-leaf path), in leaf order (oldest leaf first).
    pub branches: Vec<BranchStats>,
}

/// One branch of a tree: the path from a root down to `leaf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BranchStats {
    /// The leaf that ends the branch.
    pub leaf: NodeId,
    /// The leaf's depth (parent edges up to its root).
    pub depth: usize,
    /// Tokens of every node on the path, root and leaf included. Nodes shared by
    /// several branches count in each of them: this is what producing the branch
    /// cost, not a share of the tree's total.
    pub tokens: UsageTotals,
}

/// Token totals over a set of nodes: what [`ResponseTree::stats`] reports for the
/// tree and each branch, and what [`ResponseTree::usage`] (and so
/// [`Engine::usage`](crate::Engine::usage)) adds up.
///
/// Input (and cached input) tokens of a group of siblings made by one request
/// (Chat Completions `n`, marked by [`Usage::shared_input_group`]) are counted
/// once for the group, as they were billed. Sums saturate at `u64::MAX` instead
/// of overflowing: the counts come from servers and stores, not from us.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UsageTotals {
    /// How many nodes were added up.
    pub nodes: u64,
    /// Input tokens billed (each request's whole context).
    pub input_tokens: u64,
    /// Cached input tokens (part of input).
    pub cached_tokens: u64,
    /// Input tokens written to the prompt cache (part of input).
    pub cache_write_tokens: u64,
    /// Output tokens, reasoning included.
    pub output_tokens: u64,
    /// Reasoning tokens (part of output).
    pub reasoning_tokens: u64,
    /// Input plus output tokens.
    pub total_tokens: u64,
}

impl UsageTotals {
    /// These totals plus one node's `usage`; its input counts only when
    /// `with_input` (false for a later member of a shared-input group).
    fn plus(self, usage: &Usage, with_input: bool) -> Self {
        let (input, cached, cache_write) = if with_input {
            (
                usage.input_tokens,
                usage.cached_tokens,
                usage.cache_write_tokens,
            )
        } else {
            (0, 0, 0)
        };
        Self {
            nodes: self.nodes.saturating_add(1),
            input_tokens: self.input_tokens.saturating_add(input),
            cached_tokens: self.cached_tokens.saturating_add(cached),
            cache_write_tokens: self.cache_write_tokens.saturating_add(cache_write),
            output_tokens: self.output_tokens.saturating_add(usage.output_tokens),
            reasoning_tokens: self.reasoning_tokens.saturating_add(usage.reasoning_tokens),
            total_tokens: self
                .total_tokens
                .saturating_add(input.saturating_add(usage.output_tokens)),
        }
    }
}

/// Adds up usage over a set of nodes, counting each shared-input group's input
/// once (the first member seen pays for it).
#[derive(Default)]
pub(crate) struct Tally {
    totals: UsageTotals,
    groups_seen: HashSet<NodeId>,
}

impl Tally {
    pub(crate) fn add(&mut self, usage: &Usage) {
        let first_of_group = usage
            .shared_input_group
            .as_ref()
            .is_none_or(|group| self.groups_seen.insert(group.clone()));
        self.totals = self.totals.plus(usage, first_of_group);
    }

    /// The totals so far.
    #[cfg(feature = "web")]
    pub(crate) fn totals(&self) -> UsageTotals {
        self.totals
    }
}

impl ResponseTree {
    /// Token totals over the nodes `ids` (see [`UsageTotals`]; an id listed twice
    /// counts twice). Reads the bodies from the store in one pass.
    ///
    /// ```
    /// use resptree::{Node, NodeId, ResponseTree, Usage};
    /// let tree = ResponseTree::in_memory();
    /// let mut root = Node::new(NodeId::new("a")?, None);
    /// root.usage = Usage::new(10, 5);
    /// let mut child = Node::new(NodeId::new("b")?, Some(root.id.clone()));
    /// child.usage = Usage::new(20, 7);
    /// tree.insert(root)?;
    /// tree.insert(child)?;
    /// let path = tree.path(&NodeId::new("b")?)?;
    /// let totals = tree.usage(&path)?;
    /// assert_eq!((totals.nodes, totals.input_tokens, totals.total_tokens), (2, 30, 42));
    /// # Ok::<(), resptree::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`](crate::Error::NodeNotFound) for an id not in the
    /// tree; store errors while reading bodies, as for [`ResponseTree::get`].
    pub fn usage<'a>(&self, ids: impl IntoIterator<Item = &'a NodeId>) -> Result<UsageTotals> {
        let ids: Vec<NodeId> = ids.into_iter().cloned().collect();
        let mut tally = Tally::default();
        self.for_each_node(&ids, &mut |node| {
            tally.add(&node.usage);
            Ok(())
        })?;
        Ok(tally.totals)
    }

    /// Counts nodes, roots and leaves, finds the deepest node, and adds up tokens
    /// for the whole tree and for every branch. Reads every body: O(n) store reads.
    ///
    /// ```
    /// use resptree::{Node, NodeId, ResponseTree, Usage};
    /// let tree = ResponseTree::in_memory();
    /// let mut root = Node::new(NodeId::new("a")?, None);
    /// root.usage = Usage::new(10, 5);
    /// let mut child = Node::new(NodeId::new("b")?, Some(root.id.clone()));
    /// child.usage = Usage::new(20, 7);
    /// tree.insert(root)?;
    /// tree.insert(child)?;
    /// let stats = tree.stats()?;
    /// assert_eq!((stats.nodes, stats.roots, stats.leaves, stats.max_depth), (2, 1, 1, 1));
    /// assert_eq!(stats.tokens.total_tokens, 42);
    /// assert_eq!(stats.branches[0].tokens.output_tokens, 12);
    /// # Ok::<(), resptree::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Store errors while reading bodies, as for [`ResponseTree::get`].
    pub fn stats(&self) -> Result<TreeStats> {
        // Parents come before their children in a pre-order walk, so each node's
        // path total is its parent's plus its own.
        let order = self.graph().preorder_ids()?;
        let mut path_tokens: HashMap<NodeId, UsageTotals> = HashMap::with_capacity(order.len());
        let mut depths: HashMap<NodeId, usize> = HashMap::with_capacity(order.len());
        let mut whole = Tally::default();
        let mut stats = TreeStats {
            nodes: order.len(),
            ..TreeStats::default()
        };
        for id in &order {
            let node = self.get(id)?;
            let (above, depth) = match &node.parent {
                Some(p) => (
                    path_tokens.get(p).copied().unwrap_or_default(),
                    depths.get(p).map_or(0, |d| d + 1),
                ),
                None => {
                    stats.roots += 1;
                    (UsageTotals::default(), 0)
                }
            };
            whole.add(&node.usage);
            stats.max_depth = stats.max_depth.max(depth);
            // A path holds one member of a shared-input group at most, and that
            // branch paid for the group's prompt: its input always counts here.
            path_tokens.insert(id.clone(), above.plus(&node.usage, true));
            depths.insert(id.clone(), depth);
        }
        stats.tokens = whole.totals;
        let leaves = self.leaves(None)?;
        stats.leaves = leaves.len();
        stats.branches = leaves
            .into_iter()
            .map(|leaf| BranchStats {
                depth: depths.get(&leaf).copied().unwrap_or_default(),
                tokens: path_tokens.get(&leaf).copied().unwrap_or_default(),
                leaf,
            })
            .collect();
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Node;

    fn node(id: &str, parent: Option<&str>, t: i64, input: u64, output: u64) -> Node {
        let mut n = Node::new(
            NodeId::new(id).unwrap(),
            parent.map(|p| NodeId::new(p).unwrap()),
        )
        .with_created_at(crate::node::Timestamp(t));
        n.usage = Usage::new(input, output);
        n
    }

    #[test]
    fn empty_tree_has_zero_stats() {
        let stats = ResponseTree::in_memory().stats().unwrap();
        assert_eq!(stats, TreeStats::default());
    }

    #[test]
    fn counts_shape_and_tokens_per_branch() {
        let tree = ResponseTree::in_memory();
        tree.insert(node("r", None, 1, 10, 1)).unwrap();
        tree.insert(node("a", Some("r"), 2, 20, 2)).unwrap();
        tree.insert(node("b", Some("r"), 3, 30, 3)).unwrap();
        tree.insert(node("c", Some("b"), 4, 40, 4)).unwrap();
        tree.insert(node("lone", None, 5, 1, 1)).unwrap();
        let stats = tree.stats().unwrap();
        assert_eq!(stats.nodes, 5);
        assert_eq!(stats.roots, 2);
        assert_eq!(stats.leaves, 3);
        assert_eq!(stats.max_depth, 2);
        assert_eq!(stats.tokens.input_tokens, 101);
        assert_eq!(stats.tokens.output_tokens, 11);
        assert_eq!(stats.tokens.total_tokens, 112);
        let by_leaf: Vec<(&str, usize, u64)> = stats
            .branches
            .iter()
            .map(|b| (b.leaf.as_str(), b.depth, b.tokens.total_tokens))
            .collect();
        assert_eq!(by_leaf, vec![("a", 1, 33), ("c", 2, 88), ("lone", 0, 2)]);
    }

    #[test]
    fn shared_input_groups_count_once_in_the_total() {
        let tree = ResponseTree::in_memory();
        tree.insert(node("r", None, 1, 0, 0)).unwrap();
        let group = NodeId::new("g").unwrap();
        for (i, id) in ["x", "y", "z"].into_iter().enumerate() {
            let mut n = node(id, Some("r"), 2 + i as i64, 50, 5);
            n.usage.shared_input_group = Some(group.clone());
            tree.insert(n).unwrap();
        }
        let stats = tree.stats().unwrap();
        assert_eq!(stats.tokens.input_tokens, 50);
        assert_eq!(stats.tokens.output_tokens, 15);
        // Each branch paid for the prompt it was answered from.
        assert!(stats.branches.iter().all(|b| b.tokens.input_tokens == 50));
    }

    #[test]
    fn usage_counts_shared_input_once_and_saturates() {
        let tree = ResponseTree::in_memory();
        let group = NodeId::new("g").unwrap();
        let mut ids = Vec::new();
        for (i, id) in ["x", "y"].into_iter().enumerate() {
            let mut n = node(id, None, i as i64, 50, 5);
            n.usage.cached_tokens = 40;
            n.usage.cache_write_tokens = 8;
            n.usage.reasoning_tokens = 2;
            n.usage.shared_input_group = Some(group.clone());
            ids.push(n.id.clone());
            tree.insert(n).unwrap();
        }
        let huge = node("huge", None, 9, u64::MAX - 1, u64::MAX);
        ids.push(huge.id.clone());
        tree.insert(huge).unwrap();

        let pair = tree.usage(&ids[..2]).unwrap();
        assert_eq!(
            (
                pair.nodes,
                pair.input_tokens,
                pair.cached_tokens,
                pair.cache_write_tokens
            ),
            (2, 50, 40, 8)
        );
        assert_eq!(
            (pair.output_tokens, pair.reasoning_tokens, pair.total_tokens),
            (10, 4, 60)
        );
        let all = tree.usage(&ids).unwrap();
        assert_eq!(all.nodes, 3);
        assert_eq!(all.input_tokens, u64::MAX);
        assert_eq!(all.output_tokens, u64::MAX);
        assert_eq!(all.total_tokens, u64::MAX);
        assert_eq!(tree.stats().unwrap().tokens.total_tokens, u64::MAX);
        assert!(tree.usage([&NodeId::new("nope").unwrap()]).is_err());
    }
}
