//! Full-text search over the nodes of a tree: [`ResponseTree::search`].
//!
//! # What is searched
//!
//! The text of every input and output item of a node: message text, function
//! call names and arguments, function call outputs, refusals and reasoning
//! summaries — not ids, roles, types or `encrypted_content`. Not the
//! instructions either (they repeat along a branch), nor metadata or labels.
//!
//! # Query syntax
//!
//! - **Words**, separated by anything that is not a letter or digit: a node
//!   matches when it holds *every* word (AND). `paris louvre` finds nodes
//!   mentioning both.
//! - **`"Quoted phrases"`**: the words in order, next to each other, within
//!   one item (punctuation between them does not matter: `"eiffel tower"`
//!   finds `Eiffel-Tower`).
//! - Case-insensitive, Unicode-aware: words are maximal runs of alphanumeric
//!   characters, lowercased (see the tokeniser's rules below). No stemming, no
//!   wildcards, no `OR`/`NOT`: `-`, `*` and `OR` are punctuation or words.
//! - A query with no word (empty, or only punctuation) matches nothing, without
//!   an error. An unclosed `"`, a query over [`MAX_QUERY_BYTES`] or one with more
//!   than [`MAX_QUERY_TERMS`] distinct words is an [`Error::InvalidQuery`].
//!
//! Tokens: a maximal run of characters for which [`char::is_alphanumeric`]
//! holds, lowercased with [`str::to_lowercase`]; no Unicode normalisation.
//!
//! # Ranking
//!
//! Every hit holds every clause; a hit's [`SearchHit::score`] is
//! `Σ ln(1 + occurrences)` over the query's clauses (words and phrases), so a
//! node that says the words more often ranks higher, with diminishing returns.
//! Ties go to the newer node, then the smaller id.
//!
//! Which nodes are the best [`SearchOptions::limit`] is decided by the same
//! formula over the query's *words* (what the index holds), then the hits
//! are ordered by their score over the clauses: for a query of words the two
//! are the same; with a phrase, a node holding the phrase's words more often
//! wins a place over one holding the phrase itself more often.
//!
//! # How stores answer
//!
//! [`Store::search`](crate::Store::search) finds the candidate nodes that hold
//! every word (and the model, if filtered): the sled store from an inverted
//! index in its own sled trees, written in the same transaction as the node;
//! the memory store from an in-memory index; PostgreSQL from a `tsvector`
//! column with a GIN index. Each candidate comes with its score from the
//! index alone (the sled store's postings record each term's occurrences), so
//! no body is read to rank it. The sled store also hands its candidates out
//! best first ([`Store::search_ranked`](crate::Store::search_ranked)): its
//! index records each node's time and each chunk's newest, so it reads only
//! the chunks that can hold the best and names only what it hands out; the
//! others' candidates are ranked by the tree, which selects the next best few
//! in linear time and sorts only those. The tree applies the structural
//! filters (under a node, under a ref, dates) from its graph, reads the
//! bodies in that order and checks each against the query (phrases, exact
//! model), cutting the snippets, until it has [`SearchOptions::limit`] hits.
//! So a common word (10^5 candidates) costs its postings on sled and a
//! look-up per candidate elsewhere, not a body read or a full sort. A store with no index (one that does not implement `Store::search`)
//! is searched by reading every node: correct, but O(n).
//!
//! There is no count of all matching nodes: a search stops at `limit` hits.
//!
//! [`ResponseTree::search`]: crate::ResponseTree::search
//! [`Error::InvalidQuery`]: crate::Error::InvalidQuery

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;
use crate::node::Timestamp;

pub(crate) mod document;
pub(crate) mod index;
pub(crate) mod matcher;
pub(crate) mod query;
pub(crate) mod tokens;

/// The longest query accepted, in bytes (4 KiB): far more than anyone types,
/// small enough that a pasted document cannot make one search read the index
/// thousands of times.
pub const MAX_QUERY_BYTES: usize = 4096;

/// The most distinct words a query may hold. Each word is one more postings
/// list to intersect.
pub const MAX_QUERY_TERMS: usize = 32;

/// At most this many snippets per hit.
pub const MAX_SNIPPETS: usize = 3;

/// About how long a snippet is, in bytes (it ends at a word boundary when one
/// is near, and always holds its first match whole).
pub const SNIPPET_BYTES: usize = 160;

/// The default [`SearchOptions::limit`].
pub const DEFAULT_LIMIT: usize = 20;

/// What to search and how many hits to return; see
/// [`ResponseTree::search`](crate::ResponseTree::search).
///
/// Filters combine with AND.
///
/// ```
/// use resptree::search::SearchOptions;
/// use resptree::{NodeId, Timestamp};
/// let root = NodeId::local();
/// let options = SearchOptions::new()
///     .with_limit(5)
///     .with_under(root)
///     .with_model("gpt-4o")
///     .with_created_after(Timestamp(1_700_000_000_000));
/// assert_eq!(options.limit, 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SearchOptions {
    /// The most hits to return, best first (default [`DEFAULT_LIMIT`]).
    pub limit: usize,
    /// Only this node and the nodes below it.
    pub under: Option<NodeId>,
    /// Only the node a ref points at and the nodes below it (the ref's name;
    /// checked when the search runs).
    pub under_ref: Option<String>,
    /// Only nodes answered by exactly this model (as the server reported it).
    pub model: Option<String>,
    /// Only nodes created strictly after this time.
    pub created_after: Option<Timestamp>,
    /// Only nodes created strictly before this time.
    pub created_before: Option<Timestamp>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            under: None,
            under_ref: None,
            model: None,
            created_after: None,
            created_before: None,
        }
    }
}

impl SearchOptions {
    /// No filter, [`DEFAULT_LIMIT`] hits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`SearchOptions::limit`].
    #[must_use]
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Sets [`SearchOptions::under`].
    #[must_use]
    pub fn with_under(mut self, id: NodeId) -> Self {
        self.under = Some(id);
        self
    }

    /// Sets [`SearchOptions::under_ref`].
    #[must_use]
    pub fn with_ref(mut self, name: impl Into<String>) -> Self {
        self.under_ref = Some(name.into());
        self
    }

    /// Sets [`SearchOptions::model`].
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets [`SearchOptions::created_after`].
    #[must_use]
    pub fn with_created_after(mut self, at: Timestamp) -> Self {
        self.created_after = Some(at);
        self
    }

    /// Sets [`SearchOptions::created_before`].
    #[must_use]
    pub fn with_created_before(mut self, at: Timestamp) -> Self {
        self.created_before = Some(at);
        self
    }
}

/// One node that matched a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SearchHit {
    /// The node.
    pub id: NodeId,
    /// How well it matched (see *Ranking* in the [module docs](self)); higher
    /// is better.
    pub score: f32,
    /// When the node was created.
    pub created_at: Timestamp,
    /// The model that answered, as the server reported it.
    pub model: Option<String>,
    /// Where the query matched, in item order: at most [`MAX_SNIPPETS`].
    pub snippets: Vec<Snippet>,
}

/// Which part of a node a [`Snippet`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Field {
    /// An item of [`Node::input`](crate::Node::input).
    Input,
    /// An item of [`Node::output`](crate::Node::output) (or its `output_text`).
    Output,
}

/// A piece of a node's text around matches, with the matches marked, so a
/// caller can highlight them without tokenising anything.
///
/// ```
/// # use resptree::search::Snippet;
/// fn highlight(s: &Snippet) -> String {
///     let mut out = String::new();
///     let mut at = 0;
///     for m in &s.matches {
///         out.push_str(&s.text[at..m.start]);
///         out.push_str(&format!("[{}]", &s.text[m.clone()]));
///         at = m.end;
///     }
///     out.push_str(&s.text[at..]);
///     out
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Snippet {
    /// Input or output.
    pub field: Field,
    /// The item's position in the node's input or output.
    pub item: usize,
    /// The text: a window of the item's text (at most about
    /// [`SNIPPET_BYTES`], plus a match that runs past it).
    pub text: String,
    /// The matches, as byte ranges into `text`, in order and disjoint; each
    /// starts and ends at a character boundary.
    pub matches: Vec<Range<usize>>,
    /// Whether the item's text goes on before `text` (show an ellipsis).
    pub cut_before: bool,
    /// Whether the item's text goes on after `text`.
    pub cut_after: bool,
}

/// What [`Store::search`](crate::Store::search) is asked: the nodes holding
/// every one of `terms` (and answered by `model`, if set).
///
/// `terms` are already tokenised index terms (lowercase, at most 64 bytes);
/// a store compares them exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexQuery {
    /// The distinct terms a node must hold, each scored.
    pub terms: Vec<String>,
    /// The model a node must have been answered by, if any.
    pub model: Option<String>,
}

impl IndexQuery {
    /// A query for `terms`, optionally only nodes of `model`.
    pub fn new(terms: Vec<String>, model: Option<String>) -> Self {
        Self { terms, model }
    }

    /// The terms to look up in an index that marks models with
    /// [`document::model_term`]: the words, then the model's term.
    pub(crate) fn index_terms(&self) -> Vec<String> {
        let mut out = self.terms.clone();
        out.extend(self.model.as_deref().map(document::model_term));
        out
    }
}

/// A node an index found for an [`IndexQuery`], and its index score (higher
/// first; the tree reads candidates' bodies in this order).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Candidate {
    /// The node.
    pub id: NodeId,
    /// Its score by the index.
    pub score: f32,
}

impl Candidate {
    /// A candidate.
    pub fn new(id: NodeId, score: f32) -> Self {
        Self { id, score }
    }
}

/// A node a ranking index hands out (see
/// [`Store::search_ranked`](crate::Store::search_ranked)): its index score
/// and its `created_at`, which together with the id put it in order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RankedCandidate {
    /// The node.
    pub id: NodeId,
    /// Its score by the index.
    pub score: f32,
    /// When the node was created, as the index recorded it.
    pub created_at: Timestamp,
}

impl RankedCandidate {
    /// A ranked candidate.
    pub fn new(id: NodeId, score: f32, created_at: Timestamp) -> Self {
        Self {
            id,
            score,
            created_at,
        }
    }
}

/// Candidates best first — higher score, then newer, then smaller id — as
/// [`Store::search_ranked`](crate::Store::search_ranked) hands them out; an
/// error ends the walk.
pub type RankedCandidates<'a> = Box<dyn Iterator<Item = crate::Result<RankedCandidate>> + 'a>;

/// The order of search results, best first: higher score, then newer, then
/// smaller id. The tree sorts hits by it and a store that ranks
/// ([`Store::search_ranked`](crate::store::Store::search_ranked)) hands
/// candidates out by it, so the two must share this one definition.
pub(crate) fn best_first(
    a: (f32, Timestamp, &NodeId),
    b: (f32, Timestamp, &NodeId),
) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0)
        .then(b.1.cmp(&a.1))
        .then_with(|| a.2.cmp(b.2))
}
