//! Exploration: best-of-N and beam search over the tree, scored by a function
//! or an LLM judge, within a token or money budget, resumable.
//!
//! [`Engine::explore`](crate::Engine::explore) grows a subtree under a parent
//! level by level. Level 1 is `width` children of the parent answering the
//! input; each later level is `width` children of every node kept from the
//! level before, answering that level's follow-up prompt. After each level the
//! candidates are scored ([`Scoring`]) and the `keep` best, across the whole
//! level, carry on. Best-of-N is width N, keep 1, depth 1.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> resptree::Result<()> {
//! use resptree::backend::ResponsesBackend;
//! use resptree::client::Client;
//! use resptree::emulator::Emulator;
//! use resptree::explore::{Budget, Strategy};
//! use resptree::{Engine, Node, ResponseTree};
//!
//! let emulator = Emulator::spawn().await?;
//! let client = Client::builder().base_url(emulator.base_url()).api_key("sk-demo").build()?;
//! let engine = Engine::builder(ResponseTree::in_memory(), ResponsesBackend::new(client)).build()?;
//! let root = engine.respond(None, "Plan a weekend in Paris").await?;
//!
//! // Beam search: 3 children per kept node, keep 2, 2 levels; shortest answer wins.
//! let strategy = Strategy::beam(3, 2, 2)
//!     .follow_up("Make it more concrete.")
//!     .scorer(|node: Node| async move { Ok(-(node.output_text.len() as f64)) })
//!     .budget(Budget::tokens(50_000))
//!     .max_output_tokens(200);
//! let outcome = engine.explore(&root.id, "Suggest a first stop.", &strategy).await?;
//! assert_eq!(outcome.levels.len(), 2);
//! assert_eq!(outcome.levels[1].candidates.len(), 6);
//! assert!(outcome.stopped.is_none());
//! let best = outcome.best.expect("a winner");
//! assert_eq!(engine.tree().depth(&best)?, 2);
//! assert!(outcome.spent.total_tokens <= 50_000);
//! # emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Where things are recorded
//!
//! - **Scores** are annotations on the candidates
//!   ([`Annotation::Score`](crate::annotation::Annotation::Score), slot
//!   `score/<criterion>`: [`Strategy::criterion`] for a function, [`Judge::name`]
//!   for a judge, with the judge's model), written once per level; `resptree show`
//!   and the JSON export show them.
//! - **Candidates** are ordinary nodes under the parent, labelled
//!   `explore:<id>` ([`ExploreOutcome::id`]); they go through the engine's
//!   request pipeline (journal, retries, exactly-once, recovery).
//! - **Judge requests** are nodes too, outside the explored branches: the
//!   children of one local anchor node per exploration (ref
//!   `explore/<id>/judges`, label `explore-judges`), each labelled
//!   `explore-judge` and naming the candidates it compared in its metadata.
//!   Their usage is theirs ([`LevelReport::judge_usage`]); it is not copied
//!   into the candidates' score annotations (`judge_usage` stays `None`), so
//!   no total counts it twice.
//!
//! # Resuming
//!
//! An exploration's id is derived from the parent, the input, the shape, the
//! follow-ups and the scoring (or set with [`Strategy::id`]), so running the
//! same exploration again continues it: journal entries it left are settled
//! first ([`Engine::recover`](crate::Engine::recover): what the server
//! finished is recorded, once), children already in the tree count toward
//! their level, and judge verdicts already recorded are read back. Only what
//! is missing is paid for. A function scorer is asked again (it costs no
//! tokens).
//!
//! # Prompt caching
//!
//! Every candidate request carries a `prompt_cache_key` for the exploration
//! (`resptree-explore-<id>`, unless the options set one), so its siblings,
//! which share the parent's whole context as a prefix, are routed to the same
//! cache. Before a wide level (width at least [`Strategy::warm_from`], default
//! [`DEFAULT_WARM_FROM`]) each kept node's first child is sent alone and the
//! rest only after it completed: requests fired together before the first
//! one wrote the cache mostly miss it, and this warming costs no extra
//! request, only one round-trip of latency. Cached and cache-write tokens are
//! reported per candidate ([`Candidate::usage`]) and per level
//! ([`LevelReport::usage`]).

use std::fmt;
use std::sync::Arc;

use crate::cost::Usd;
use crate::engine::{RespondOptions, UsageTotals};
use crate::ids::NodeId;
use crate::node::Usage;

mod budget;
mod judge;
mod run;
mod scoring;
mod state;

pub use budget::{ANSWER_MARGIN, Budget, DEFAULT_MAX_OUTPUT_TOKENS};
pub use judge::{DEFAULT_JUDGE_MAX_OUTPUT_TOKENS, Judge, JudgeMode, Tally};
pub use scoring::{Scorer, Scoring};

/// The label every candidate of an exploration carries, followed by `:<id>`.
pub const CANDIDATE_LABEL_PREFIX: &str = "explore:";
/// The label of judge nodes.
pub const JUDGE_LABEL: &str = "explore-judge";
/// The label of the local node judge nodes hang under.
pub const JUDGES_ANCHOR_LABEL: &str = "explore-judges";
/// The follow-up prompt of levels after the first when none was given.
pub const DEFAULT_FOLLOW_UP: &str = "Continue: improve your previous answer.";
/// From this width on, a level is warmed (see the module docs).
pub const DEFAULT_WARM_FROM: usize = 4;
/// The criterion a function scorer's scores are recorded under by default.
pub const DEFAULT_CRITERION: &str = "score";
/// The longest exploration id.
pub const MAX_ID_LEN: usize = 40;

/// Called as an exploration advances (see [`Strategy::on_progress`]).
pub type ProgressFn = Arc<dyn Fn(&ExploreProgress) + Send + Sync>;

/// What to explore: the shape (width, keep, depth), follow-up prompts, how to
/// score, the budget and the candidates' request options.
///
/// ```
/// use resptree::explore::{Budget, Judge, Strategy};
/// let strategy = Strategy::beam(4, 2, 3)
///     .follow_up("Now make it cheaper.")
///     .judge(Judge::pairwise("Which plan is more concrete?"))
///     .budget(Budget::tokens(100_000))
///     .max_output_tokens(300);
/// assert_eq!((strategy.width(), strategy.keep(), strategy.depth()), (4, 2, 3));
/// ```
#[derive(Clone)]
#[must_use]
pub struct Strategy {
    width: usize,
    keep: usize,
    depth: usize,
    follow_ups: Vec<String>,
    scoring: Option<Scoring>,
    budget: Budget,
    options: RespondOptions,
    id: Option<String>,
    warm_from: Option<usize>,
    progress: Option<ProgressFn>,
    criterion: String,
}

impl fmt::Debug for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Strategy")
            .field("width", &self.width)
            .field("keep", &self.keep)
            .field("depth", &self.depth)
            .field("follow_ups", &self.follow_ups)
            .field("scoring", &self.scoring)
            .field("budget", &self.budget)
            .field("options", &self.options)
            .field("id", &self.id)
            .field("warm_from", &self.warm_from)
            .finish_non_exhaustive()
    }
}

impl Strategy {
    /// Best-of-N: `n` children of the parent, the best one kept.
    pub fn best_of(n: usize) -> Self {
        Self::beam(n, 1, 1)
    }

    /// Beam search: `width` children of every kept node per level, the `keep`
    /// best of each level kept, `depth` levels.
    pub fn beam(width: usize, keep: usize, depth: usize) -> Self {
        Self {
            width,
            keep,
            depth,
            follow_ups: Vec::new(),
            scoring: None,
            budget: Budget::unlimited(),
            options: RespondOptions::default(),
            id: None,
            warm_from: Some(DEFAULT_WARM_FROM),
            progress: None,
            criterion: DEFAULT_CRITERION.to_owned(),
        }
    }

    /// Adds the prompt of the next level after the first (level 2 gets the
    /// first follow-up, level 3 the second, …; levels past the last follow-up
    /// repeat it; with none, [`DEFAULT_FOLLOW_UP`]).
    pub fn follow_up(mut self, text: impl Into<String>) -> Self {
        self.follow_ups.push(text.into());
        self
    }

    /// Scores candidates with a function.
    pub fn scorer(mut self, scorer: impl Scorer + 'static) -> Self {
        self.scoring = Some(Scoring::Function(Arc::new(scorer)));
        self
    }

    /// The criterion a function scorer's scores are recorded under (default
    /// [`DEFAULT_CRITERION`]; a judge's scores use [`Judge::name`]).
    pub fn criterion(mut self, name: impl Into<String>) -> Self {
        self.criterion = name.into();
        self
    }

    /// Scores candidates with an LLM judge.
    pub fn judge(mut self, judge: Judge) -> Self {
        self.scoring = Some(Scoring::Judge(judge));
        self
    }

    /// Sets the scoring.
    pub fn scoring(mut self, scoring: Scoring) -> Self {
        self.scoring = Some(scoring);
        self
    }

    /// Limits what the exploration spends (see [`Budget`]).
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// Request options of the candidates (model, instructions, settings, …).
    /// The exploration adds its label and, unless set here, a
    /// `prompt_cache_key`.
    pub fn options(mut self, options: RespondOptions) -> Self {
        self.options = options;
        self
    }

    /// Bounds each candidate's output tokens (needed to price a level; with a
    /// budget and no bound, [`DEFAULT_MAX_OUTPUT_TOKENS`] applies).
    pub fn max_output_tokens(mut self, limit: u32) -> Self {
        self.options.max_output_tokens = Some(limit);
        self
    }

    /// Names the exploration (1 to [`MAX_ID_LEN`] of `A-Z a-z 0-9 . _ -`);
    /// default: derived from the parent, input, shape, follow-ups and scoring.
    /// Running an exploration with the same id again resumes it.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Warms levels of at least `width` children (see the module docs);
    /// default [`DEFAULT_WARM_FROM`].
    pub fn warm_from(mut self, width: usize) -> Self {
        self.warm_from = Some(width);
        self
    }

    /// Never warms: every child of a level is sent at once.
    pub fn no_warming(mut self) -> Self {
        self.warm_from = None;
        self
    }

    /// Calls `f` as the exploration advances (a level priced, each child and
    /// judge request done, a level finished), e.g. to draw a progress bar.
    pub fn on_progress(mut self, f: impl Fn(&ExploreProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Children per kept node and level.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Nodes kept per level.
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// Levels.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The budget.
    pub fn budget_limit(&self) -> &Budget {
        &self.budget
    }
}

/// What [`Engine::explore`](crate::Engine::explore) did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExploreOutcome {
    /// The exploration's id (its candidates carry the label `explore:<id>`).
    pub id: String,
    /// The node explored from.
    pub parent: NodeId,
    /// The levels completed, in order.
    pub levels: Vec<LevelReport>,
    /// The best candidate of the deepest completed level: the winning leaf.
    pub best: Option<NodeId>,
    /// Why the exploration ended before its depth, if it did.
    pub stopped: Option<StopReason>,
    /// Everything the exploration spent, over all its runs: candidates and
    /// judges.
    pub spent: UsageTotals,
    /// The same in money, with a money budget (at its prices).
    pub spent_usd: Option<Usd>,
    /// The local node the judge requests hang under, if there were any.
    pub judges: Option<NodeId>,
}

/// One level of an exploration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LevelReport {
    /// The level, from 1.
    pub level: usize,
    /// The level's candidates, best first.
    pub candidates: Vec<Candidate>,
    /// The candidates kept for the next level, best first.
    pub kept: Vec<NodeId>,
    /// Candidates found in the tree from an earlier run (not paid again).
    pub resumed: usize,
    /// Token totals of the level's candidates: cached and cache-write tokens
    /// included.
    pub usage: UsageTotals,
    /// Token totals of the level's judge requests (all of them, made now or
    /// read back).
    pub judge_usage: UsageTotals,
    /// The level's price bound before it was sent (0 without a budget).
    pub priced_tokens: u64,
    /// Judge replies that could not be read, recorded as ties (see
    /// [`Judge`]).
    pub unparsable: usize,
}

/// One scored candidate.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Candidate {
    /// The candidate node.
    pub node: NodeId,
    /// The node it continues (the explored parent, or a kept node).
    pub parent: NodeId,
    /// Its score: higher is better.
    pub score: f64,
    /// Its pairwise wins, losses and ties, for a pairwise judge.
    pub tally: Option<Tally>,
    /// Its token usage (cached and cache-write tokens included).
    pub usage: Usage,
}

/// Why an exploration ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The next level could have passed the budget.
    Budget {
        /// The level that was not started.
        level: usize,
        /// The budget, in tokens.
        limit: u64,
        /// What the exploration had spent.
        spent: u64,
        /// The level's price bound.
        needed: u64,
    },
    /// The next level could have passed the money budget.
    MoneyBudget {
        /// The level that was not started.
        level: usize,
        /// The budget.
        limit: Usd,
        /// What the exploration had spent.
        spent: Usd,
        /// The level's worst-case price.
        needed: Usd,
    },
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Budget {
                level,
                limit,
                spent,
                needed,
            } => write!(
                f,
                "stopped before level {level}: it could cost up to {needed} tokens, and {spent} of the budget's {limit} are spent"
            ),
            Self::MoneyBudget {
                level,
                limit,
                spent,
                needed,
            } => write!(
                f,
                "stopped before level {level}: it could cost up to {needed}, and {spent} of the budget's {limit} is spent"
            ),
        }
    }
}

/// Where an exploration is, for [`Strategy::on_progress`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExploreProgress {
    /// The level, from 1.
    pub level: usize,
    /// The exploration's depth.
    pub depth: usize,
    /// What the level is doing.
    pub phase: ExplorePhase,
    /// Requests of this phase done (found in the tree included).
    pub done: usize,
    /// Requests of this phase in all.
    pub total: usize,
}

/// The phases of a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExplorePhase {
    /// Making the level's children.
    Growing,
    /// Scoring them.
    Scoring,
    /// The level is finished.
    Done,
}
