//! [`Cost`]: money spent, by kind of token, and what could not be priced; and
//! the costs of a tree's nodes, paths, subtrees and branches.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::Serialize;

use crate::annotation::{Annotation, AnnotationKind};
use crate::error::Result;
use crate::ids::NodeId;
use crate::node::{Node, Usage};
use crate::tree::ResponseTree;
#[cfg(feature = "web")]
use crate::tree::{Tally, UsageTotals};

use super::money::Usd;
use super::prices::{ModelPrice, PriceTable};

/// What a set of requests cost: the priced part by kind of token, and what
/// could not be priced (a model the [`PriceTable`] does not know).
///
/// An unpriced request is never counted as free: [`Cost::is_known`] is false
/// and [`Display`](fmt::Display) says how much is missing.
///
/// ```
/// use resptree::Usage;
/// use resptree::cost::PriceTable;
/// let table = PriceTable::builtin();
/// let mut cost = table.price(Some("gpt-4o-mini"), &Usage::new(2_000_000, 0));
/// assert_eq!(cost.to_string(), "$0.300000");
/// cost += table.price(Some("mystery-model"), &Usage::new(10, 5));
/// assert!(!cost.is_known());
/// assert_eq!(cost.to_string(), "$0.300000 + unknown (15 tokens of 1 request unpriced: mystery-model)");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Cost {
    /// Everything priced: the sum of the parts below.
    pub total: Usd,
    /// Uncached input tokens.
    pub input: Usd,
    /// Input tokens served from the prompt cache.
    pub cached_input: Usd,
    /// Input tokens written to the prompt cache.
    pub cache_write: Usd,
    /// Output tokens other than reasoning.
    pub output: Usd,
    /// Reasoning tokens.
    pub reasoning: Usd,
    /// Of `total`, what judges' requests cost (their usage recorded in
    /// [`Score`](crate::Score) annotations of the nodes).
    pub judge: Usd,
    /// How many requests (nodes, and judges' scores) were priced.
    pub priced: u64,
    /// How many requests could not be priced.
    pub unpriced: u64,
    /// Their tokens (input and output).
    pub unpriced_tokens: u64,
    /// The models that had no price (`"(no model)"` for a node that does not
    /// name one).
    pub unknown_models: BTreeSet<String>,
}

impl Cost {
    /// How a request without a model is listed in [`Cost::unknown_models`].
    pub const NO_MODEL: &'static str = "(no model)";

    /// Whether every request was priced: `false` means [`Cost::total`] is
    /// only part of the cost.
    pub fn is_known(&self) -> bool {
        self.unpriced == 0
    }

    /// `usage` at `price`.
    pub(crate) fn priced(price: &ModelPrice, usage: &Usage) -> Self {
        // Microdollars per million tokens times tokens: picodollars, exactly.
        let at = |tokens: u64, per_million: u64| {
            Usd::from_picos(u128::from(tokens) * u128::from(per_million))
        };
        let cached = usage.cached_tokens.min(usage.input_tokens);
        let cache_write = usage
            .cache_write_tokens
            .min(usage.input_tokens.saturating_sub(cached));
        let uncached = usage
            .input_tokens
            .saturating_sub(cached)
            .saturating_sub(cache_write);
        let reasoning = usage.reasoning_tokens.min(usage.output_tokens);
        let mut cost = Self {
            input: at(uncached, price.input),
            cached_input: at(cached, price.cached_input.unwrap_or(price.input)),
            cache_write: at(cache_write, price.cache_write.unwrap_or(price.input)),
            output: at(usage.output_tokens - reasoning, price.output),
            reasoning: at(reasoning, price.reasoning.unwrap_or(price.output)),
            priced: 1,
            ..Self::default()
        };
        cost.total =
            cost.input + cost.cached_input + cost.cache_write + cost.output + cost.reasoning;
        cost
    }

    /// A request of `model` that has no price.
    pub(crate) fn unpriced(model: &str, usage: &Usage) -> Self {
        Self {
            unpriced: 1,
            unpriced_tokens: usage.input_tokens.saturating_add(usage.output_tokens),
            unknown_models: BTreeSet::from([model.to_owned()]),
            ..Self::default()
        }
    }

    /// This cost, counted as a judge's.
    fn into_judge(mut self) -> Self {
        self.judge = self.total;
        self
    }
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, other: Self) {
        *self += &other;
    }
}

impl std::ops::AddAssign<&Cost> for Cost {
    fn add_assign(&mut self, other: &Cost) {
        self.total += other.total;
        self.input += other.input;
        self.cached_input += other.cached_input;
        self.cache_write += other.cache_write;
        self.output += other.output;
        self.reasoning += other.reasoning;
        self.judge += other.judge;
        self.priced = self.priced.saturating_add(other.priced);
        self.unpriced = self.unpriced.saturating_add(other.unpriced);
        self.unpriced_tokens = self.unpriced_tokens.saturating_add(other.unpriced_tokens);
        self.unknown_models
            .extend(other.unknown_models.iter().cloned());
    }
}

impl fmt::Display for Cost {
    /// `$0.001234`; with unpriced requests, `$0.001234 + unknown (N tokens of
    /// M requests unpriced: model, …)`; with nothing priced at all,
    /// `unknown (…)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() {
            return write!(f, "{}", self.total);
        }
        if self.priced > 0 {
            write!(f, "{} + ", self.total)?;
        }
        let models: Vec<&str> = self.unknown_models.iter().map(String::as_str).collect();
        write!(
            f,
            "unknown ({} tokens of {} request{} unpriced: {})",
            self.unpriced_tokens,
            self.unpriced,
            if self.unpriced == 1 { "" } else { "s" },
            models.join(", ")
        )
    }
}

/// What a tree cost, as [`ResponseTree::tree_cost`] reports it: the whole
/// tree, and each branch (root-to-leaf path) as producing it cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TreeCost {
    /// Every node once (a shared-input group's prompt once), and every judge.
    pub total: Cost,
    /// One entry per branch, in the order of [`ResponseTree::leaves`].
    pub branches: Vec<BranchCost>,
}

/// The cost of one branch: every node from a root to `leaf` (nodes shared by
/// several branches count in each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BranchCost {
    /// The leaf that ends the branch.
    pub leaf: NodeId,
    /// What the path cost.
    pub cost: Cost,
}

/// Judges' costs per node: the priced usage of every score annotation that
/// records one.
fn judge_costs(tree: &ResponseTree, prices: &PriceTable) -> Result<HashMap<NodeId, Cost>> {
    let mut out: HashMap<NodeId, Cost> = HashMap::new();
    for (id, stamped) in tree.annotated(Some(AnnotationKind::Score))? {
        if let Annotation::Score(score) = &stamped.annotation {
            if let Some(usage) = &score.judge_usage {
                let cost = prices
                    .price(score.judge_model.as_deref(), usage)
                    .into_judge();
                *out.entry(id).or_default() += cost;
            }
        }
    }
    Ok(out)
}

/// Adds up costs over nodes, pricing each shared-input group's prompt once
/// (the first member seen pays for it), as the tokens are counted.
struct Ledger<'a> {
    prices: &'a PriceTable,
    judges: HashMap<NodeId, Cost>,
    groups_seen: HashSet<NodeId>,
}

impl<'a> Ledger<'a> {
    /// A ledger at `prices`, with the judges' costs of `tree`'s scores.
    fn new(tree: &ResponseTree, prices: &'a PriceTable) -> Result<Self> {
        Ok(Ledger {
            prices,
            judges: judge_costs(tree, prices)?,
            groups_seen: HashSet::new(),
        })
    }

    /// The cost of `node` (its request and its judges'); `with_input` false
    /// prices its output only (a later member of a shared-input group).
    fn node_cost(&self, node: &Node, with_input: bool) -> Cost {
        let mut usage = node.usage.clone();
        if !with_input {
            usage.input_tokens = 0;
            usage.cached_tokens = 0;
            usage.cache_write_tokens = 0;
        }
        let mut cost = self.prices.price(node.model.as_deref(), &usage);
        if let Some(judge) = self.judges.get(&node.id) {
            cost += judge;
        }
        cost
    }

    /// Whether `node` pays its request's prompt: it is in no shared-input
    /// group, or the first of its group seen.
    fn first_of_group(&mut self, node: &Node) -> bool {
        match &node.usage.shared_input_group {
            Some(group) => self.groups_seen.insert(group.clone()),
            None => true,
        }
    }

    /// Adds `node` to a running total, its group's prompt priced once.
    fn add(&mut self, total: &mut Cost, node: &Node) {
        let with_input = self.first_of_group(node);
        *total += self.node_cost(node, with_input);
    }
}

impl ResponseTree {
    /// What the nodes `ids` cost at `prices`: each node's request, and the
    /// judges' requests recorded in its [`Score`](crate::Score) annotations.
    /// A shared-input group's prompt is priced once, as
    /// [`ResponseTree::usage`] counts it. No network is needed.
    ///
    /// ```
    /// use resptree::cost::PriceTable;
    /// use resptree::{Node, NodeId, ResponseTree, Usage};
    /// let tree = ResponseTree::in_memory();
    /// let mut node = Node::new(NodeId::new("a")?, None);
    /// node.model = Some("gpt-4o".into());
    /// node.usage = Usage::new(1_000, 100);
    /// tree.insert(node)?;
    /// let cost = tree.cost(&[NodeId::new("a")?], &PriceTable::builtin())?;
    /// // 1 000 × $2.50/1M + 100 × $10/1M
    /// assert_eq!(cost.total.to_decimal(), "0.0035");
    /// # Ok::<(), resptree::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`](crate::Error::NodeNotFound) for an id not in
    /// the tree; store errors while reading bodies or annotations.
    pub fn cost<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a NodeId>,
        prices: &PriceTable,
    ) -> Result<Cost> {
        let ids: Vec<NodeId> = ids.into_iter().cloned().collect();
        let mut ledger = Ledger::new(self, prices)?;
        let mut total = Cost::default();
        self.for_each_node(&ids, &mut |node| {
            ledger.add(&mut total, node);
            Ok(())
        })?;
        Ok(total)
    }

    /// The tokens ([`ResponseTree::usage`]) and the cost
    /// ([`ResponseTree::cost`]) of each list of `lists`, reading each body
    /// once and the judges' scores once: the web explorer shows a node's, its
    /// path's and its subtree's on every navigation.
    #[cfg(feature = "web")]
    pub(crate) fn usage_and_costs(
        &self,
        lists: &[&[NodeId]],
        prices: &PriceTable,
    ) -> Result<Vec<(UsageTotals, Cost)>> {
        let mut ledger = Ledger::new(self, prices)?;
        lists
            .iter()
            .map(|ids| {
                ledger.groups_seen.clear();
                let mut tally = Tally::default();
                let mut cost = Cost::default();
                self.for_each_node(ids, &mut |node| {
                    tally.add(&node.usage);
                    ledger.add(&mut cost, node);
                    Ok(())
                })?;
                Ok((tally.totals(), cost))
            })
            .collect()
    }

    /// What the whole tree cost at `prices`, and each branch. Reads every
    /// body once.
    ///
    /// # Errors
    ///
    /// Store errors while reading bodies or annotations.
    pub fn tree_cost(&self, prices: &PriceTable) -> Result<TreeCost> {
        let order = self.graph().preorder_ids()?;
        let mut ledger = Ledger::new(self, prices)?;
        let mut total = Cost::default();
        // Pre-order: a parent's path cost is known before its children's.
        let mut path_costs: HashMap<NodeId, Cost> = HashMap::with_capacity(order.len());
        self.for_each_node(&order, &mut |node| {
            let with_input = ledger.first_of_group(node);
            let own = ledger.node_cost(node, with_input);
            total += &own;
            // A path holds one member of a shared-input group at most, and
            // that branch paid for the group's prompt.
            let full = if with_input {
                own
            } else {
                ledger.node_cost(node, true)
            };
            let mut path = match &node.parent {
                Some(parent) => path_costs.get(parent).cloned().unwrap_or_default(),
                None => Cost::default(),
            };
            path += full;
            path_costs.insert(node.id.clone(), path);
            Ok(())
        })?;
        let branches = self
            .leaves(None)?
            .into_iter()
            .map(|leaf| BranchCost {
                cost: path_costs.get(&leaf).cloned().unwrap_or_default(),
                leaf,
            })
            .collect();
        Ok(TreeCost { total, branches })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::{Score, ScoreMethod};
    use crate::node::Node;

    fn usage(input: u64, cached: u64, cache_write: u64, output: u64, reasoning: u64) -> Usage {
        let mut u = Usage::new(input, output);
        u.cached_tokens = cached;
        u.cache_write_tokens = cache_write;
        u.reasoning_tokens = reasoning;
        u
    }

    /// Every kind of token at its own price, against values worked out by hand.
    #[test]
    fn each_kind_of_token_is_priced_at_its_rate() {
        // $1 input, $0.10 cached, $1.25 cache write, $4 output, $8 reasoning per 1M.
        let price = ModelPrice::new(1_000_000, 4_000_000)
            .with_cached_input(100_000)
            .with_cache_write(1_250_000)
            .with_reasoning(8_000_000);
        // 10 000 input of which 4 000 cached and 2 000 written; 3 000 output of
        // which 1 000 reasoning.
        let cost = Cost::priced(&price, &usage(10_000, 4_000, 2_000, 3_000, 1_000));
        assert_eq!(cost.input.to_decimal(), "0.004"); // 4 000 × $1/1M
        assert_eq!(cost.cached_input.to_decimal(), "0.0004"); // 4 000 × $0.10/1M
        assert_eq!(cost.cache_write.to_decimal(), "0.0025"); // 2 000 × $1.25/1M
        assert_eq!(cost.output.to_decimal(), "0.008"); // 2 000 × $4/1M
        assert_eq!(cost.reasoning.to_decimal(), "0.008"); // 1 000 × $8/1M
        assert_eq!(cost.total.to_decimal(), "0.0229");
        assert!(cost.is_known());

        // Without the optional prices: cached and cache writes at the input
        // price, reasoning at the output price.
        let plain = ModelPrice::new(1_000_000, 4_000_000);
        let cost = Cost::priced(&plain, &usage(10_000, 4_000, 2_000, 3_000, 1_000));
        assert_eq!(cost.total.to_decimal(), "0.022"); // 10 000 × $1 + 3 000 × $4
        assert_eq!(cost.reasoning.to_decimal(), "0.004");
    }

    #[test]
    fn inconsistent_counts_never_price_more_than_the_tokens() {
        let price = ModelPrice::new(1_000_000, 1_000_000);
        // More cached than input, more reasoning than output (a broken server).
        let cost = Cost::priced(&price, &usage(10, 50, 50, 5, 9));
        assert_eq!(cost.total, Usd::from_micros(15));
    }

    #[test]
    fn shared_input_groups_are_priced_once_and_judges_count() {
        let tree = ResponseTree::in_memory();
        let mut table = PriceTable::empty();
        table.insert("m", ModelPrice::new(1_000_000, 2_000_000));
        table.insert("judge", ModelPrice::new(10_000_000, 0));
        let id = |s: &str| NodeId::new(s).unwrap();
        let mut root = Node::new(id("r"), None);
        root.model = Some("m".into());
        root.usage = Usage::new(100, 10);
        tree.insert(root).unwrap();
        let mut siblings = Vec::new();
        for name in ["a", "b"] {
            let mut n = Node::new(id(name), Some(id("r")));
            n.model = Some("m".into());
            n.usage = Usage::new(1_000, 10);
            n.usage.shared_input_group = Some(id("g"));
            siblings.push(n);
        }
        tree.insert_group(siblings).unwrap();
        tree.annotate(
            &id("a"),
            Annotation::Score(
                Score::new("q", 1.0, ScoreMethod::Rubric).with_judge("judge", Usage::new(100, 0)),
            ),
        )
        .unwrap();
        // r: 100×1 + 10×2 = 120 µ$; a: 1 000 + 20 = 1 020; b: 20 (input shared);
        // judge: 100 × 10 = 1 000.
        let all = tree.cost(&[id("r"), id("a"), id("b")], &table).unwrap();
        assert_eq!(all.total, Usd::from_micros(2_160));
        assert_eq!(all.judge, Usd::from_micros(1_000));
        assert_eq!(all.priced, 4);
        let whole = tree.tree_cost(&table).unwrap();
        assert_eq!(whole.total, all);
        // Each branch paid for the group's prompt.
        let branch: Vec<(String, u64)> = whole
            .branches
            .iter()
            .map(|b| (b.leaf.to_string(), b.cost.total.micros()))
            .collect();
        assert_eq!(branch, [("a".to_owned(), 2_140), ("b".to_owned(), 1_140)]);
    }
}
