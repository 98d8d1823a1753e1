//! How candidates are scored: a user function, or an LLM judge.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::judge::Judge;
use crate::backend::BoxFuture;
use crate::error::Result;
use crate::node::Node;

/// A user-supplied, async scoring function: higher is better.
///
/// Any `Fn(Node) -> impl Future<Output = Result<f64>>` that is `Send + Sync`
/// is a `Scorer`, so a closure will do:
///
/// ```
/// use resptree::explore::Strategy;
/// use resptree::Node;
/// // Shorter answers win.
/// let strategy = Strategy::best_of(4).scorer(|node: Node| async move {
///     Ok(-(node.output_text.len() as f64))
/// });
/// assert_eq!(strategy.width(), 4);
/// ```
///
/// On a resumed exploration the function is asked again for the candidates it
/// already scored (it costs no tokens), so it should be deterministic for the
/// resumed run to keep the same branches.
pub trait Scorer: Send + Sync {
    /// The score of `candidate`. A score that is not finite is refused with
    /// [`Error::Config`](crate::Error::Config) (it cannot be ranked).
    ///
    /// # Errors
    ///
    /// Whatever the function reports: the exploration stops with it (the
    /// candidates already made stay in the tree, and a rerun resumes).
    fn score(&self, candidate: Node) -> BoxFuture<'_, Result<f64>>;
}

impl<F, Fut> Scorer for F
where
    F: Fn(Node) -> Fut + Send + Sync,
    Fut: Future<Output = Result<f64>> + Send + 'static,
{
    fn score(&self, candidate: Node) -> BoxFuture<'_, Result<f64>> {
        Box::pin(self(candidate))
    }
}

/// How the candidates of a level are ranked.
#[derive(Clone)]
#[non_exhaustive]
pub enum Scoring {
    /// A user-supplied function, one call per candidate.
    Function(Arc<dyn Scorer>),
    /// An LLM judge (pairwise comparisons or a rubric score).
    Judge(Judge),
}

impl fmt::Debug for Scoring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Function(_) => f.write_str("Function(..)"),
            Self::Judge(judge) => f.debug_tuple("Judge").field(judge).finish(),
        }
    }
}
