//! [`ResponseTree::search`]: the store's index finds candidates, the graph
//! filters them, the bodies confirm them (see [`crate::search`]).

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::ids::{NodeId, RefName};
use crate::node::Timestamp;
use crate::search::document::segments;
use crate::search::matcher;
use crate::search::query::Query;
use crate::search::{IndexQuery, RankedCandidates, SearchHit, SearchOptions, best_first};

use super::graph::Graph;
use super::handle::ResponseTree;

impl ResponseTree {
    /// The nodes whose input or output text matches `query`, best first, at
    /// most [`SearchOptions::limit`], each with snippets that mark the matches.
    ///
    /// `query` is words (all must occur) and `"quoted phrases"`,
    /// case-insensitive; see [`crate::search`] for the syntax and the ranking.
    /// A query without any word matches nothing. Every store answers from an
    /// index kept current with each write (sled, memory, PostgreSQL), so the
    /// cost grows with the number of nodes holding the rarest word, not with
    /// the tree.
    ///
    /// ```
    /// use resptree::search::SearchOptions;
    /// use resptree::{Node, NodeId, ResponseTree};
    /// let tree = ResponseTree::in_memory();
    /// let root = Node::new(NodeId::local(), None)
    ///     .with_user_text("Plan a weekend in Paris")
    ///     .with_output_text("Visit the Eiffel Tower on Saturday.");
    /// let id = root.id.clone();
    /// tree.insert(root)?;
    ///
    /// let hits = tree.search(r#"paris "eiffel tower""#, &SearchOptions::new())?;
    /// assert_eq!(hits.len(), 1);
    /// assert_eq!(hits[0].id, id);
    /// let snippet = &hits[0].snippets[1];
    /// assert_eq!(&snippet.text[snippet.matches[0].clone()], "Eiffel Tower");
    /// assert!(tree.search("rome", &SearchOptions::new())?.is_empty());
    /// # Ok::<(), resptree::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQuery`] for a malformed query (an unclosed `"`, too
    /// long, too many words); [`Error::NodeNotFound`] if
    /// [`SearchOptions::under`] is not in the tree; [`Error::InvalidId`] or
    /// [`Error::RefNotFound`] for a bad [`SearchOptions::under_ref`];
    /// [`Error::Storage`] if the store cannot be read. A node whose body
    /// cannot be decoded is skipped, not an error.
    pub fn search(&self, query: &str, options: &SearchOptions) -> Result<Vec<SearchHit>> {
        let parsed = Query::parse(query)?;
        let scopes = self.search_scopes(options)?;
        if parsed.is_empty() || options.limit == 0 {
            return Ok(Vec::new());
        }
        let index_query = IndexQuery::new(parsed.terms(), options.model.clone());
        let mut ranked = match self.store.search_ranked(&index_query)? {
            Some(walk) => Candidates::Ranked {
                walk,
                memos: vec![HashMap::new(); scopes.len()],
            },
            None => {
                let indexed = self.store.search(&index_query)?;
                // Without an index every node is a candidate of score 0, so
                // the order says nothing yet: every one must be checked
                // before the best are known.
                let exhaustive = indexed.is_none();
                let graph = self.graph();
                let candidates: Vec<(f32, NodeId)> = match indexed {
                    Some(found) => found.into_iter().map(|c| (c.score, c.id)).collect(),
                    None => graph.ids().map(|id| (0.0, id.clone())).collect(),
                };
                Candidates::Pool {
                    pool: BestFirst::new(filter(&graph, candidates, options, &scopes)),
                    exhaustive,
                }
            }
        };
        let exhaustive = matches!(
            ranked,
            Candidates::Pool {
                exhaustive: true,
                ..
            }
        );
        let mut hits = Vec::new();
        // A damaged index might name a node twice: it is one hit.
        let mut seen = HashSet::new();
        while let Some((_, created_at, id)) = self.next_candidate(&mut ranked, options, &scopes)? {
            if !seen.insert(id.clone()) {
                continue;
            }
            let node = match self.store.node(&id) {
                Ok(Some(node)) => node,
                // Removed since, or unreadable: neither is a hit, and one bad
                // record must not make every search fail.
                Ok(None) | Err(Error::CorruptRecord { .. }) => continue,
                Err(e) => return Err(e),
            };
            if options.model.is_some() && node.model != options.model {
                continue;
            }
            let Some(matched) = matcher::matches(&parsed, &segments(&node)) else {
                continue;
            };
            hits.push(SearchHit {
                id,
                score: matched.score,
                created_at,
                model: node.model,
                snippets: matched.snippets,
            });
            if !exhaustive && hits.len() == options.limit {
                break;
            }
        }
        hits.sort_by(|a, b| {
            best_first(
                (a.score, a.created_at, &a.id),
                (b.score, b.created_at, &b.id),
            )
        });
        hits.truncate(options.limit);
        Ok(hits)
    }

    /// The next candidate that passes the graph's filters, best first.
    fn next_candidate(
        &self,
        candidates: &mut Candidates<'_>,
        options: &SearchOptions,
        scopes: &[NodeId],
    ) -> Result<Option<(f32, Timestamp, NodeId)>> {
        match candidates {
            Candidates::Pool { pool, .. } => Ok(pool.next(options.limit)),
            Candidates::Ranked { walk, memos } => {
                for found in walk.by_ref() {
                    let found = found?;
                    let graph = self.graph();
                    if let Some(kept) = admit(&graph, found.score, found.id, options, scopes, memos)
                    {
                        return Ok(Some(kept));
                    }
                }
                Ok(None)
            }
        }
    }

    /// The roots of the subtrees a search is limited to, checked.
    fn search_scopes(&self, options: &SearchOptions) -> Result<Vec<NodeId>> {
        let mut scopes = Vec::new();
        if let Some(id) = &options.under {
            if !self.contains(id) {
                return Err(Error::NodeNotFound(id.clone()));
            }
            scopes.push(id.clone());
        }
        if let Some(name) = &options.under_ref {
            let name = RefName::new(name)?;
            scopes.push(self.get_ref(name)?);
        }
        Ok(scopes)
    }
}

/// Where a search's candidates come from, best first.
enum Candidates<'a> {
    /// A store that ranks hands them out in order; the graph filters each
    /// (`memos`: [`is_under`]'s answers per scope).
    Ranked {
        walk: RankedCandidates<'a>,
        memos: Vec<HashMap<NodeId, bool>>,
    },
    /// Every candidate, filtered, ranked here.
    Pool {
        pool: BestFirst,
        /// Whether every node is a candidate (no index).
        exhaustive: bool,
    },
}

/// Keeps the candidates the graph holds that pass the date and subtree
/// filters: `(index score, created_at, id)`, in no order.
fn filter(
    graph: &Graph,
    candidates: Vec<(f32, NodeId)>,
    options: &SearchOptions,
    scopes: &[NodeId],
) -> Vec<(f32, Timestamp, NodeId)> {
    let mut memos: Vec<HashMap<NodeId, bool>> = vec![HashMap::new(); scopes.len()];
    candidates
        .into_iter()
        .filter_map(|(score, id)| admit(graph, score, id, options, scopes, &mut memos))
        .collect()
}

/// `(score, created_at, id)` if the graph holds `id` and it passes the date
/// and subtree filters.
fn admit(
    graph: &Graph,
    score: f32,
    id: NodeId,
    options: &SearchOptions,
    scopes: &[NodeId],
    memos: &mut [HashMap<NodeId, bool>],
) -> Option<(f32, Timestamp, NodeId)> {
    // A node the store holds but the graph does not (skipped at load, or
    // staged and not published) is not part of the tree.
    let created_at = graph.created_at(&id).ok()?;
    let in_time = options.created_after.is_none_or(|t| created_at > t)
        && options.created_before.is_none_or(|t| created_at < t);
    let in_scope = in_time
        && scopes
            .iter()
            .zip(memos.iter_mut())
            .all(|(root, memo)| is_under(graph, root, &id, memo));
    in_scope.then_some((score, created_at, id))
}

/// Candidates handed out best first without sorting them all: a common word
/// has 10^5 candidates of which a search reads about `limit` (fewer fail
/// the body check unless a phrase or an exact model rules many out), so each
/// round selects the next best few in linear time and sorts only those,
/// twice as many as the round before.
struct BestFirst {
    /// `pool[..next]` has been handed out; `pool[next..ready]` is the
    /// current round, sorted; the rest is unsorted and no better than it.
    pool: Vec<(f32, Timestamp, NodeId)>,
    next: usize,
    ready: usize,
    /// How many the next round selects.
    round: usize,
}

impl BestFirst {
    fn new(pool: Vec<(f32, Timestamp, NodeId)>) -> Self {
        Self {
            pool,
            next: 0,
            ready: 0,
            round: 0,
        }
    }

    /// The best candidate not handed out yet; the first round selects
    /// `limit` of them (at least 16).
    fn next(&mut self, limit: usize) -> Option<(f32, Timestamp, NodeId)> {
        if self.next == self.ready {
            self.select(limit);
        }
        // Ids are shared handles: cloning one is a reference count.
        let out = self.pool.get(self.next).cloned()?;
        self.next += 1;
        Some(out)
    }

    fn select(&mut self, limit: usize) {
        self.round = if self.round == 0 {
            limit.max(16)
        } else {
            self.round.saturating_mul(2)
        };
        let rest = &mut self.pool[self.next..];
        let take = self.round.min(rest.len());
        if take == 0 {
            return;
        }
        let by = |a: &(f32, Timestamp, NodeId), b: &(f32, Timestamp, NodeId)| {
            best_first((a.0, a.1, &a.2), (b.0, b.1, &b.2))
        };
        if take < rest.len() {
            rest.select_nth_unstable_by(take - 1, by);
        }
        rest[..take].sort_unstable_by(by);
        self.ready = self.next + take;
    }
}

/// Whether `id` is `root` or below it. Walks up the parents, remembering the
/// answer for every node passed, so a search visits each node of the tree at
/// most once per scope however many candidates share its ancestors.
fn is_under(graph: &Graph, root: &NodeId, id: &NodeId, memo: &mut HashMap<NodeId, bool>) -> bool {
    let mut passed = Vec::new();
    let mut current = Some(id.clone());
    let answer = loop {
        let Some(node) = current else {
            break false;
        };
        if node == *root {
            break true;
        }
        if let Some(&known) = memo.get(&node) {
            break known;
        }
        current = graph.parent(&node).ok().flatten();
        passed.push(node);
    };
    for node in passed {
        memo.insert(node, answer);
    }
    answer
}
