//! The exploration loop: price a level, grow it, score it, keep the best.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::future::join_all;
use serde_json::Value;

use super::budget::{DEFAULT_MAX_OUTPUT_TOKENS, LevelPrice, judge_bound, worst_case};
use super::judge::{self, Judge, JudgeMode, JudgeTag, Tally, Verdict};
use super::{
    CANDIDATE_LABEL_PREFIX, Candidate, DEFAULT_FOLLOW_UP, ExploreOutcome, ExplorePhase,
    ExploreProgress, LevelReport, MAX_ID_LEN, Scoring, StopReason, Strategy, state,
};
use crate::annotation::{Annotation, Score, ScoreMethod};
use crate::cost::{PriceTable, Usd};
use crate::engine::{Engine, RespondOptions, UsageTotals};
use crate::error::{Error, Result};
use crate::ids::NodeId;
use crate::node::{Node, message_item};

impl Engine {
    /// Explores under `parent`: best-of-N or beam search as `strategy` says,
    /// scoring each level and keeping its best, within the strategy's budget.
    /// See [`explore`](crate::explore) for the model, and where candidates,
    /// judge requests and scores are recorded.
    ///
    /// Running the same exploration again (same parent, input and strategy,
    /// or the same [`Strategy::id`]) resumes it: what the tree holds is not
    /// paid for again. A finished exploration run again costs nothing and
    /// reports the same outcome.
    ///
    /// Cancel safety: dropping the future cancels the requests in flight;
    /// every candidate and judge node already committed stays, and a rerun
    /// resumes from them.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a strategy that cannot run (width, keep or depth
    /// 0, no scoring, a bad id, an output bound under 16, a score that is not
    /// finite); [`Error::NodeNotFound`] for an unknown parent;
    /// [`Error::Unsupported`] when a budget is set and the backend cannot
    /// count input tokens (Chat Completions). A request or scorer that fails
    /// stops the exploration with its error once the level's other requests
    /// are done (they stay recorded: a rerun resumes).
    pub async fn explore(
        &self,
        parent: &NodeId,
        input: &str,
        strategy: &Strategy,
    ) -> Result<ExploreOutcome> {
        Explorer::new(self, parent, input, strategy)?.run().await
    }
}

/// One exploration run.
struct Explorer<'a> {
    engine: &'a Engine,
    strategy: &'a Strategy,
    parent: NodeId,
    input: String,
    id: String,
    label: String,
    /// The candidates' request options: the strategy's, plus the label, the
    /// cache key and (with a budget) an output bound.
    options: RespondOptions,
    /// Each candidate's output bound, when there is one.
    answer_bound: Option<u32>,
}

/// The scores of a level's candidates, in candidate order.
struct Scores {
    values: Vec<f64>,
    tallies: Option<Vec<Tally>>,
    judge_usage: UsageTotals,
    unparsable: usize,
}

impl<'a> Explorer<'a> {
    fn new(
        engine: &'a Engine,
        parent: &NodeId,
        input: &str,
        strategy: &'a Strategy,
    ) -> Result<Self> {
        check(strategy)?;
        let id = match &strategy.id {
            Some(id) => {
                check_id(id)?;
                id.clone()
            }
            None => derived_id(parent, input, strategy),
        };
        let label = format!("{CANDIDATE_LABEL_PREFIX}{id}");
        let mut options = strategy.options.clone();
        options.labels.insert(label.clone());
        if options.settings.prompt_cache_key.is_none() {
            options.settings.prompt_cache_key = Some(format!("resptree-explore-{id}"));
        }
        let mut answer_bound = options
            .max_output_tokens
            .or(options.settings.max_output_tokens);
        if answer_bound.is_none() && !strategy.budget.is_unlimited() {
            options.max_output_tokens = Some(DEFAULT_MAX_OUTPUT_TOKENS);
            answer_bound = Some(DEFAULT_MAX_OUTPUT_TOKENS);
        }
        Ok(Self {
            engine,
            strategy,
            parent: parent.clone(),
            input: input.to_owned(),
            id,
            label,
            options,
            answer_bound,
        })
    }

    async fn run(self) -> Result<ExploreOutcome> {
        let parent = self.parent.clone();
        self.engine
            .with_tree(move |tree| tree.get(&parent).map(drop))
            .await?;
        self.settle_interrupted().await?;
        let mut outcome = ExploreOutcome {
            id: self.id.clone(),
            parent: self.parent.clone(),
            levels: Vec::new(),
            best: None,
            stopped: None,
            spent: UsageTotals::default(),
            spent_usd: None,
            judges: None,
        };
        let mut frontier = vec![self.parent.clone()];
        for level in 1..=self.strategy.depth {
            let existing = self.existing(&frontier).await?;
            let items = vec![message_item("user", &self.level_text(level))];
            let mut priced = 0;
            let budget = &self.strategy.budget;
            if !budget.is_unlimited() {
                let price = self.price(level, &frontier, &existing, &items).await?;
                priced = price.total();
                if let Some(limit) = budget.max_tokens() {
                    let spent = self.spent().await?.total_tokens;
                    if spent.saturating_add(priced) > limit {
                        outcome.stopped = Some(StopReason::Budget {
                            level,
                            limit,
                            spent,
                            needed: priced,
                        });
                        break;
                    }
                }
                if let (Some(limit), Some(prices)) = (budget.max_usd(), budget.prices()) {
                    let spent = self.spent_usd(prices).await?;
                    if spent + price.usd > limit {
                        outcome.stopped = Some(StopReason::MoneyBudget {
                            level,
                            limit,
                            spent,
                            needed: price.usd,
                        });
                        break;
                    }
                }
            }
            let resumed = existing.iter().map(Vec::len).sum();
            self.grow(level, &frontier, &existing, &items).await?;
            let candidates: Vec<Node> = self
                .existing(&frontier)
                .await?
                .into_iter()
                .flatten()
                .collect();
            let scores = self.score(level, &candidates).await?;
            let report = self
                .rank(level, candidates, scores, resumed, priced)
                .await?;
            self.progress(level, ExplorePhase::Done, 1, 1);
            frontier.clone_from(&report.kept);
            outcome.levels.push(report);
        }
        outcome.best = outcome
            .levels
            .last()
            .and_then(|l| l.candidates.first())
            .map(|c| c.node.clone());
        outcome.spent = self.spent().await?;
        if let Some(prices) = self.strategy.budget.prices() {
            outcome.spent_usd = Some(self.spent_usd(prices).await?);
        }
        let id = self.id.clone();
        outcome.judges = self
            .engine
            .with_tree(move |tree| state::anchor(tree, &id))
            .await?;
        Ok(outcome)
    }

    /// Settles what an interrupted run of this exploration left in the
    /// journal, so that a response the server finished is recorded (once)
    /// instead of being asked for again.
    async fn settle_interrupted(&self) -> Result<()> {
        let attempts = self.engine.with_tree(|tree| tree.attempts()).await?;
        let ours = attempts.iter().any(|a| {
            a.params.labels.contains(&self.label)
                || a.params.metadata.get(judge::META_EXPLORATION) == Some(&self.id)
        });
        if ours {
            let report = self
                .engine
                .recover_within(self.engine.config().settle_wait)
                .await?;
            tracing::info!(
                exploration = %self.id,
                recovered = report.recovered.len(),
                unresolved = report.unresolved.len(),
                deferred = report.deferred.len(),
                "settled an interrupted exploration's attempts"
            );
        }
        Ok(())
    }

    /// The prompt of `level`.
    fn level_text(&self, level: usize) -> String {
        if level <= 1 {
            return self.input.clone();
        }
        let follow_ups = &self.strategy.follow_ups;
        follow_ups
            .get(level - 2)
            .or(follow_ups.last())
            .cloned()
            .unwrap_or_else(|| DEFAULT_FOLLOW_UP.to_owned())
    }

    /// What a judge is told the candidates of `level` answer.
    fn judged_request(&self, level: usize) -> String {
        if level <= 1 {
            self.input.clone()
        } else {
            format!("{}\n\nThen: {}", self.input, self.level_text(level))
        }
    }

    /// The candidates each frontier node already has (at most `width`, oldest
    /// first).
    async fn existing(&self, frontier: &[NodeId]) -> Result<Vec<Vec<Node>>> {
        let frontier = frontier.to_vec();
        let label = self.label.clone();
        let width = self.strategy.width;
        self.engine
            .with_tree(move |tree| {
                frontier
                    .iter()
                    .map(|k| {
                        let mut children = state::labeled_children(tree, k, &label)?;
                        children.truncate(width);
                        Ok(children)
                    })
                    .collect()
            })
            .await
    }

    /// Everything the exploration recorded so far, added up.
    async fn spent(&self) -> Result<UsageTotals> {
        let (parent, label, id) = (self.parent.clone(), self.label.clone(), self.id.clone());
        self.engine
            .with_tree(move |tree| state::spent(tree, &parent, &label, &id))
            .await
    }

    /// Everything the exploration recorded so far, in money at `prices`.
    async fn spent_usd(&self, prices: &PriceTable) -> Result<Usd> {
        let (parent, label, id) = (self.parent.clone(), self.label.clone(), self.id.clone());
        let prices = prices.clone();
        let cost = self
            .engine
            .with_tree(move |tree| {
                let ids = state::recorded(tree, &parent, &label, &id)?;
                tree.cost(&ids, &prices)
            })
            .await?;
        if !cost.is_known() {
            return Err(Error::config(format!(
                "a money budget needs prices for every model the exploration used; none for: {}",
                cost.unknown_models
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(cost.total)
    }

    /// The upper bound of what `level` can still cost.
    async fn price(
        &self,
        level: usize,
        frontier: &[NodeId],
        existing: &[Vec<Node>],
        items: &[Value],
    ) -> Result<LevelPrice> {
        let answer_bound = u64::from(self.answer_bound.unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS));
        let mut price = LevelPrice::default();
        for (k, have) in frontier.iter().zip(existing) {
            let missing = self.strategy.width.saturating_sub(have.len()) as u64;
            if missing == 0 {
                continue;
            }
            let input = self
                .engine
                .count_input_tokens(Some(k), items.to_vec(), &self.options)
                .await?;
            price.children = price
                .children
                .saturating_add(missing.saturating_mul(input.saturating_add(answer_bound)));
            if let Some(prices) = self.strategy.budget.prices() {
                let model = self
                    .options
                    .model
                    .as_deref()
                    .unwrap_or(&self.engine.config().model);
                price.usd += worst_case(prices, model, missing, input, answer_bound)?;
            }
        }
        if let Some(Scoring::Judge(judge)) = &self.strategy.scoring {
            let requests = self.judge_requests_missing(judge, existing).await? as u64;
            if requests > 0 {
                let answers: u64 = match judge.mode() {
                    JudgeMode::Pairwise => 2,
                    JudgeMode::Rubric { .. } => 1,
                };
                let blanks = vec![""; answers as usize];
                let tag = self.tag(&NodeId::local(), None);
                let template = self
                    .engine
                    .count_input_tokens(
                        None,
                        judge.input(&self.judged_request(level), &blanks),
                        &judge.options(&tag),
                    )
                    .await?;
                let reply = u64::from(judge.output_bound());
                price.judges = judge_bound(requests, template, answers, answer_bound, reply);
                if let Some(prices) = self.strategy.budget.prices() {
                    let model = judge.judge_model().unwrap_or(&self.engine.config().model);
                    let input = judge_bound(1, template, answers, answer_bound, 0);
                    price.usd += worst_case(prices, model, requests, input, reply)?;
                }
            }
        }
        Ok(price)
    }

    /// How many judge requests the level still needs, once every frontier
    /// node has `width` candidates: all of them, less the verdicts already
    /// recorded between candidates that exist.
    async fn judge_requests_missing(&self, judge: &Judge, existing: &[Vec<Node>]) -> Result<usize> {
        let candidates = existing.len() * self.strategy.width;
        let all = match judge.mode() {
            JudgeMode::Pairwise => candidates * candidates.saturating_sub(1),
            JudgeMode::Rubric { .. } => candidates,
        };
        let have: Vec<NodeId> = existing.iter().flatten().map(|n| n.id.clone()).collect();
        let id = self.id.clone();
        let verdicts = self
            .engine
            .with_tree(move |tree| state::judge_nodes(tree, &id))
            .await?;
        let done = self
            .judge_tags(judge, &have)
            .iter()
            .filter(|tag| verdicts.contains_key(tag))
            .count();
        Ok(all.saturating_sub(done))
    }

    /// Makes the children each frontier node is missing: concurrently (under
    /// the engine's limit), each through the request pipeline.
    async fn grow(
        &self,
        level: usize,
        frontier: &[NodeId],
        existing: &[Vec<Node>],
        items: &[Value],
    ) -> Result<()> {
        let width = self.strategy.width;
        let total = frontier.len() * width;
        let done = AtomicUsize::new(existing.iter().map(Vec::len).sum());
        self.progress(
            level,
            ExplorePhase::Growing,
            done.load(Ordering::Relaxed),
            total,
        );
        let tick = || {
            let now = done.fetch_add(1, Ordering::Relaxed) + 1;
            self.progress(level, ExplorePhase::Growing, now, total);
        };
        let results = join_all(frontier.iter().zip(existing).map(|(k, have)| {
            let missing = width.saturating_sub(have.len());
            self.grow_one(k, missing, have.is_empty(), items, &tick)
        }))
        .await;
        results.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(())
    }

    /// `missing` children of `k`. Warming: when `k` has none yet and the level
    /// is wide, the first child goes alone, so that it writes the prompt
    /// cache before its siblings read it.
    async fn grow_one(
        &self,
        k: &NodeId,
        missing: usize,
        fresh: bool,
        items: &[Value],
        tick: &(dyn Fn() + Sync),
    ) -> Result<()> {
        if missing == 0 {
            return Ok(());
        }
        let engine = self.engine;
        if engine.backend().has_native_fan_out() {
            let results = engine
                .fan_out_with(Some(k), items.to_vec(), missing, &self.options)
                .await?;
            for _ in 0..results.len() {
                tick();
            }
            return results.into_iter().try_for_each(|r| r.map(drop));
        }
        let warm = fresh
            && missing > 1
            && self
                .strategy
                .warm_from
                .is_some_and(|from| self.strategy.width >= from);
        let mut rest = missing;
        if warm {
            engine
                .respond_with(Some(k), items.to_vec(), &self.options)
                .await?;
            tick();
            rest -= 1;
        }
        let results = join_all((0..rest).map(|_| async {
            let result = engine
                .respond_with(Some(k), items.to_vec(), &self.options)
                .await;
            tick();
            result
        }))
        .await;
        results.into_iter().try_for_each(|r| r.map(drop))
    }

    /// Scores the level's candidates.
    async fn score(&self, level: usize, candidates: &[Node]) -> Result<Scores> {
        match &self.strategy.scoring {
            Some(Scoring::Function(scorer)) => {
                let total = candidates.len();
                self.progress(level, ExplorePhase::Scoring, 0, total);
                let done = AtomicUsize::new(0);
                let values = join_all(candidates.iter().map(|c| async {
                    let score = scorer.score(c.clone()).await;
                    let now = done.fetch_add(1, Ordering::Relaxed) + 1;
                    self.progress(level, ExplorePhase::Scoring, now, total);
                    match score {
                        Ok(s) if s.is_finite() => Ok(s),
                        Ok(s) => Err(Error::config(format!(
                            "the scorer gave candidate {} a score that is not finite ({s})",
                            c.id
                        ))),
                        Err(err) => Err(err),
                    }
                }))
                .await
                .into_iter()
                .collect::<Result<Vec<f64>>>()?;
                Ok(Scores {
                    values,
                    tallies: None,
                    judge_usage: UsageTotals::default(),
                    unparsable: 0,
                })
            }
            Some(Scoring::Judge(judge)) => self.judge(level, judge, candidates).await,
            None => Err(Error::config("an exploration needs a scorer or a judge")),
        }
    }

    /// The comparisons a judge makes among `candidates`: every ordered pair
    /// (pairwise), or each candidate (rubric).
    fn judge_tags(&self, judge: &Judge, candidates: &[NodeId]) -> Vec<JudgeTag> {
        match judge.mode() {
            JudgeMode::Pairwise => candidates
                .iter()
                .flat_map(|a| {
                    candidates
                        .iter()
                        .filter(move |b| *b != a)
                        .map(move |b| self.tag(a, Some(b)))
                })
                .collect(),
            JudgeMode::Rubric { .. } => candidates.iter().map(|a| self.tag(a, None)).collect(),
        }
    }

    fn tag(&self, first: &NodeId, second: Option<&NodeId>) -> JudgeTag {
        JudgeTag {
            exploration: self.id.clone(),
            first: first.to_string(),
            second: second.map(ToString::to_string),
        }
    }

    /// Asks the judge for every verdict the level still lacks (concurrently,
    /// as children of the exploration's judge anchor), then reads them all.
    async fn judge(&self, level: usize, judge: &Judge, candidates: &[Node]) -> Result<Scores> {
        let id = self.id.clone();
        let anchor = self
            .engine
            .with_tree(move |tree| state::ensure_anchor(tree, &id))
            .await?;
        let id = self.id.clone();
        let recorded = self
            .engine
            .with_tree(move |tree| state::judge_nodes(tree, &id))
            .await?;
        let ids: Vec<NodeId> = candidates.iter().map(|c| c.id.clone()).collect();
        let tags = self.judge_tags(judge, &ids);
        let text_of = |id: &str| {
            candidates
                .iter()
                .find(|c| c.id.as_str() == id)
                .map_or("", |c| c.output_text.as_str())
        };
        let request = self.judged_request(level);
        let total = tags.len();
        let done = AtomicUsize::new(tags.iter().filter(|t| recorded.contains_key(t)).count());
        self.progress(
            level,
            ExplorePhase::Scoring,
            done.load(Ordering::Relaxed),
            total,
        );
        let asked = join_all(
            tags.iter()
                .filter(|t| !recorded.contains_key(t))
                .map(|tag| {
                    let answers: Vec<&str> = std::iter::once(tag.first.as_str())
                        .chain(tag.second.as_deref())
                        .map(text_of)
                        .collect();
                    let input = judge.input(&request, &answers);
                    let options = judge.options(tag);
                    let anchor = &anchor;
                    let done = &done;
                    async move {
                        let node = self
                            .engine
                            .respond_with(Some(anchor), input, &options)
                            .await;
                        let now = done.fetch_add(1, Ordering::Relaxed) + 1;
                        self.progress(level, ExplorePhase::Scoring, now, total);
                        node.map(|node| (tag.clone(), node))
                    }
                }),
        )
        .await;
        let mut verdicts = recorded;
        for result in asked {
            let (tag, node) = result?;
            verdicts.insert(tag, node);
        }
        let judge_nodes: Vec<NodeId> = tags
            .iter()
            .filter_map(|t| verdicts.get(t).map(|n| n.id.clone()))
            .collect();
        let judge_usage = self
            .engine
            .with_tree(move |tree| tree.usage(&judge_nodes))
            .await?;
        let reply = |tag: &JudgeTag| verdicts.get(tag).map_or("", |n| n.output_text.as_str());
        let mut unparsable = 0;
        match judge.mode() {
            JudgeMode::Pairwise => {
                let n = ids.len();
                let mut table = vec![Verdict::Tie; n * n];
                for i in 0..n {
                    for j in 0..n {
                        if i == j {
                            continue;
                        }
                        let tag = self.tag(&ids[i], Some(&ids[j]));
                        table[i * n + j] =
                            judge::parse_pairwise(reply(&tag)).unwrap_or_else(|| {
                                unparsable += 1;
                                Verdict::Tie
                            });
                    }
                }
                let tallies = judge::tally(n, |i, j| table[i * n + j]);
                Ok(Scores {
                    values: tallies.iter().map(Tally::score).collect(),
                    tallies: Some(tallies),
                    judge_usage,
                    unparsable,
                })
            }
            JudgeMode::Rubric { min, max } => {
                let values = ids
                    .iter()
                    .map(|c| {
                        let tag = self.tag(c, None);
                        judge::parse_rubric(reply(&tag), min, max).map_or_else(
                            || {
                                unparsable += 1;
                                judge.neutral()
                            },
                            |s| s as f64,
                        )
                    })
                    .collect();
                Ok(Scores {
                    values,
                    tallies: None,
                    judge_usage,
                    unparsable,
                })
            }
        }
    }

    /// Orders the level's candidates best first (ties: the older first) and
    /// keeps the best `keep`.
    async fn rank(
        &self,
        level: usize,
        candidates: Vec<Node>,
        scores: Scores,
        resumed: usize,
        priced_tokens: u64,
    ) -> Result<LevelReport> {
        let ids: Vec<NodeId> = candidates.iter().map(|c| c.id.clone()).collect();
        let usage = self.engine.with_tree(move |tree| tree.usage(&ids)).await?;
        let mut ranked: Vec<Candidate> = candidates
            .into_iter()
            .enumerate()
            .map(|(i, node)| Candidate {
                parent: node.parent.clone().unwrap_or_else(|| self.parent.clone()),
                node: node.id,
                score: scores.values.get(i).copied().unwrap_or(f64::NEG_INFINITY),
                tally: scores.tallies.as_ref().and_then(|t| t.get(i).copied()),
                usage: node.usage,
            })
            .collect();
        // A stable sort: equal scores keep the candidates' order (oldest first).
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        self.record_scores(&ranked).await?;
        let kept = ranked
            .iter()
            .take(self.strategy.keep)
            .map(|c| c.node.clone())
            .collect();
        Ok(LevelReport {
            level,
            candidates: ranked,
            kept,
            resumed,
            usage,
            judge_usage: scores.judge_usage,
            priced_tokens,
            unparsable: scores.unparsable,
        })
    }

    /// Stores each candidate's score as an annotation (`score/<criterion>`),
    /// in one write. A judge's scores name its model; the judge's usage stays
    /// on the judge nodes (it is not copied here, so no total counts it
    /// twice).
    async fn record_scores(&self, ranked: &[Candidate]) -> Result<()> {
        let (criterion, judge_model) = match &self.strategy.scoring {
            Some(Scoring::Judge(judge)) => (
                judge.criterion().to_owned(),
                Some(
                    judge
                        .judge_model()
                        .unwrap_or(&self.engine.config().model)
                        .to_owned(),
                ),
            ),
            _ => (self.strategy.criterion.clone(), None),
        };
        let annotations: Vec<(NodeId, Annotation)> = ranked
            .iter()
            .map(|c| {
                let method = match (&self.strategy.scoring, c.tally) {
                    (Some(Scoring::Judge(_)), Some(t)) => ScoreMethod::Pairwise {
                        wins: t.wins,
                        losses: t.losses,
                        ties: t.ties,
                    },
                    (Some(Scoring::Judge(_)), None) => ScoreMethod::Rubric,
                    _ => ScoreMethod::Function,
                };
                let mut score = Score::new(criterion.clone(), c.score, method);
                score.judge_model.clone_from(&judge_model);
                (c.node.clone(), Annotation::Score(score))
            })
            .collect();
        self.engine
            .with_tree(move |tree| tree.annotate_all(annotations))
            .await
    }

    fn progress(&self, level: usize, phase: ExplorePhase, done: usize, total: usize) {
        if let Some(f) = &self.strategy.progress {
            f(&ExploreProgress {
                level,
                depth: self.strategy.depth,
                phase,
                done,
                total,
            });
        }
    }
}

/// What makes a strategy impossible to run.
fn check(strategy: &Strategy) -> Result<()> {
    if strategy.width == 0 || strategy.keep == 0 || strategy.depth == 0 {
        return Err(Error::config(format!(
            "an exploration needs width, keep and depth of at least 1 (got {}, {}, {})",
            strategy.width, strategy.keep, strategy.depth
        )));
    }
    if strategy.scoring.is_none() {
        return Err(Error::config(
            "an exploration needs a scorer or a judge (Strategy::scorer, Strategy::judge)",
        ));
    }
    let criterion = match &strategy.scoring {
        Some(Scoring::Judge(judge)) => judge.criterion(),
        _ => strategy.criterion.as_str(),
    };
    Annotation::Score(Score::new(criterion, 0.0, ScoreMethod::Function))
        .validate()
        .map_err(|e| Error::config(format!("the score criterion cannot be recorded: {e}")))?;
    let bound = strategy
        .options
        .max_output_tokens
        .or(strategy.options.settings.max_output_tokens);
    if bound.is_some_and(|b| b < 16) {
        return Err(Error::config(
            "max_output_tokens must be at least 16 (the API's minimum)",
        ));
    }
    if let Some(Scoring::Judge(judge)) = &strategy.scoring {
        if judge.output_bound() < 16 {
            return Err(Error::config(
                "the judge's max_output_tokens must be at least 16 (the API's minimum)",
            ));
        }
        if let JudgeMode::Rubric { min, max } = judge.mode() {
            if min >= max {
                return Err(Error::config(format!(
                    "a rubric's scale must run from low to high (got {min}..={max})"
                )));
            }
        }
    }
    Ok(())
}

fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with(['.', '-'])
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "an exploration id is 1 to {MAX_ID_LEN} of A-Z a-z 0-9 . _ - (not first . or -): {}",
            crate::text::truncate(id, 64)
        )))
    }
}

/// The id an exploration gets when the strategy names none: an FNV-1a hash
/// (stable across Rust releases, unlike `std`'s hasher) of what defines it.
fn derived_id(parent: &NodeId, input: &str, strategy: &Strategy) -> String {
    let scoring = match &strategy.scoring {
        Some(Scoring::Function(_)) | None => "function".to_owned(),
        Some(Scoring::Judge(judge)) => format!(
            "judge {:?} {} {:?} {}",
            judge.mode(),
            judge.criteria(),
            judge.judge_model(),
            judge.criterion()
        ),
    };
    let parts = [
        parent.as_str().to_owned(),
        input.to_owned(),
        format!("{} {} {}", strategy.width, strategy.keep, strategy.depth),
        strategy.follow_ups.join("\u{1f}"),
        scoring,
        strategy.options.model.clone().unwrap_or_default(),
    ];
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(check_id("trip-1.v2_a").is_ok());
        for bad in ["", "-x", ".x", "has space", "a/b", &"x".repeat(41)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_derived_id_depends_on_what_defines_the_exploration() {
        let parent = NodeId::new("resp_1").unwrap();
        let s = Strategy::beam(3, 1, 2).scorer(|_n: Node| async { Ok(0.0) });
        let a = derived_id(&parent, "hi", &s);
        assert_eq!(a, derived_id(&parent, "hi", &s.clone()));
        assert_eq!(a.len(), 16);
        assert_ne!(a, derived_id(&parent, "ho", &s));
        assert_ne!(a, derived_id(&parent, "hi", &s.clone().follow_up("more")));
        assert_ne!(
            a,
            derived_id(
                &parent,
                "hi",
                &Strategy::beam(3, 2, 2).scorer(|_n: Node| async { Ok(0.0) })
            )
        );
    }
}
