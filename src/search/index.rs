//! The in-memory inverted index of [`MemoryStore`](crate::store::MemoryStore),
//! and the ranking the index-backed stores share.

use std::collections::HashMap;

use crate::ids::NodeId;
use crate::node::Node;

use super::document::index_terms;
use super::{Candidate, IndexQuery};

/// The index score of a node holding each query term `tf` times:
/// `Σ ln(1 + tf)`, computed exactly as [`super::matcher`] computes a hit's
/// score (in `f32`, in query order), so for a query of words the index ranks
/// exactly as the final hits are ranked, to the last bit: scores that are
/// equal in theory (occurrences 1 and 5, or 2 and 3) must not fall either
/// way by rounding, or the best `limit` by the index would not be the best
/// hits.
// As in the matcher: counts beyond f32's exact integers do not matter.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn score(tfs: impl IntoIterator<Item = u32>) -> f32 {
    tfs.into_iter().map(|tf| (1.0 + tf as f32).ln()).sum()
}

/// Postings (term → node → occurrences) and, per node, the terms it was
/// indexed under, so replacing or removing a node removes exactly its postings.
#[derive(Debug, Default)]
pub(crate) struct MemoryIndex {
    postings: HashMap<String, HashMap<NodeId, u32>>,
    terms: HashMap<NodeId, Vec<String>>,
}

impl MemoryIndex {
    /// Indexes `node`, replacing what an earlier node with its id left.
    pub(crate) fn put(&mut self, node: &Node) {
        self.remove(&node.id);
        let entries = index_terms(node);
        let mut terms = Vec::with_capacity(entries.len());
        for (term, tf) in entries {
            self.postings
                .entry(term.clone())
                .or_default()
                .insert(node.id.clone(), tf);
            terms.push(term);
        }
        self.terms.insert(node.id.clone(), terms);
    }

    /// Forgets node `id`'s postings (nothing if it was not indexed).
    pub(crate) fn remove(&mut self, id: &NodeId) {
        let Some(terms) = self.terms.remove(id) else {
            return;
        };
        for term in terms {
            if let Some(list) = self.postings.get_mut(&term) {
                list.remove(id);
                if list.is_empty() {
                    self.postings.remove(&term);
                }
            }
        }
    }

    /// The nodes holding every term of `query` (and its model), scored.
    pub(crate) fn query(&self, query: &IndexQuery) -> Vec<Candidate> {
        let mut lists = Vec::new();
        for term in query.index_terms() {
            match self.postings.get(&term) {
                Some(list) => lists.push(list),
                None => return Vec::new(),
            }
        }
        let scored = query.terms.len();
        // Walk the shortest list; look the node up in the others.
        let Some((shortest, _)) = lists.iter().enumerate().min_by_key(|(_, l)| l.len()) else {
            return Vec::new();
        };
        lists[shortest]
            .keys()
            .filter_map(|id| {
                let tfs: Option<Vec<u32>> = lists.iter().map(|l| l.get(id).copied()).collect();
                let tfs = tfs?;
                Some(Candidate::new(
                    id.clone(),
                    score(tfs.into_iter().take(scored)),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> Node {
        Node::new(NodeId::local(), None).with_user_text(text)
    }

    fn ids(index: &MemoryIndex, terms: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = index
            .query(&IndexQuery::new(
                terms.iter().map(|t| (*t).to_owned()).collect(),
                None,
            ))
            .into_iter()
            .map(|c| c.id.to_string())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn replacing_and_removing_a_node_updates_its_postings() {
        let mut index = MemoryIndex::default();
        let a = node("red apple");
        let b = node("green apple");
        index.put(&a);
        index.put(&b);
        let mut both = vec![a.id.to_string(), b.id.to_string()];
        both.sort();
        assert_eq!(ids(&index, &["apple"]), both);
        assert_eq!(ids(&index, &["red", "apple"]), [a.id.to_string()]);
        let mut changed = a.clone();
        changed.input.clear();
        index.put(&changed.with_user_text("blue pear"));
        assert_eq!(ids(&index, &["apple"]), [b.id.to_string()]);
        assert_eq!(ids(&index, &["pear"]), [a.id.to_string()]);
        index.remove(&b.id);
        assert!(ids(&index, &["apple"]).is_empty());
        assert!(ids(&index, &["nothing"]).is_empty());
    }
}
