//! The LLM judge: what it is asked (a structured-output request), how its
//! replies are read, and how pairwise verdicts become scores.
//!
//! Unparsable replies are **recorded ties**, not errors: a pairwise comparison
//! whose reply is not the schema's JSON counts as a tie, and a rubric reply
//! that is not a score inside the scale scores the middle of the scale. The
//! judge node keeps the raw reply, and the level reports how many verdicts
//! could not be read ([`LevelReport::unparsable`](super::LevelReport::unparsable)),
//! so one malformed reply neither stops a long exploration nor passes
//! silently.

use serde_json::{Value, json};

use crate::engine::RespondOptions;
use crate::node::message_item;
use crate::settings::TextFormat;

/// The default bound on a judge reply's output tokens (a short reason and a
/// verdict).
pub const DEFAULT_JUDGE_MAX_OUTPUT_TOKENS: u32 = 256;

/// How a judge compares the candidates of a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JudgeMode {
    /// Every pair of candidates, twice: once in each order. A pair counts as a
    /// win only when both orders agree; a disagreement (position bias) is a
    /// tie. A candidate's score is `(wins + ties / 2) / (candidates - 1)`, in
    /// `0..=1` (a lone candidate scores 1). Costs `c × (c − 1)` requests for
    /// `c` candidates.
    Pairwise,
    /// One request per candidate: an integer score on the scale `min..=max`.
    Rubric {
        /// The lowest score.
        min: i64,
        /// The highest score.
        max: i64,
    },
}

/// An LLM judge: criteria, mode, and the model and output bound of its
/// requests.
///
/// The judge asks for structured output (`text.format` `json_schema`, strict):
/// `{"reason": string, "winner": "A" | "B" | "tie"}` for a pairwise comparison,
/// `{"reason": string, "score": integer}` for a rubric. So it reads the same
/// from a real model and from the emulator's schema-valid replies.
///
/// ```
/// use resptree::explore::{Judge, JudgeMode};
/// let judge = Judge::pairwise("Which answer is more concrete?").model("gpt-4o-mini");
/// assert_eq!(judge.mode(), JudgeMode::Pairwise);
/// let rubric = Judge::rubric("How concrete is the answer?", 1, 10);
/// assert_eq!(rubric.mode(), JudgeMode::Rubric { min: 1, max: 10 });
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Judge {
    criteria: String,
    mode: JudgeMode,
    model: Option<String>,
    max_output_tokens: u32,
    name: String,
}

impl Judge {
    /// A pairwise judge (see [`JudgeMode::Pairwise`]) applying `criteria`.
    pub fn pairwise(criteria: impl Into<String>) -> Self {
        Self::new(criteria, JudgeMode::Pairwise)
    }

    /// A rubric judge scoring each candidate on `min..=max` by `criteria`.
    pub fn rubric(criteria: impl Into<String>, min: i64, max: i64) -> Self {
        Self::new(criteria, JudgeMode::Rubric { min, max })
    }

    fn new(criteria: impl Into<String>, mode: JudgeMode) -> Self {
        Self {
            criteria: criteria.into(),
            mode,
            model: None,
            max_output_tokens: DEFAULT_JUDGE_MAX_OUTPUT_TOKENS,
            name: "judge".to_owned(),
        }
    }

    /// The model the judge's requests use; default: the engine's.
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// The bound on each judge reply's output tokens. Default:
    /// [`DEFAULT_JUDGE_MAX_OUTPUT_TOKENS`]; the API's minimum is 16.
    #[must_use]
    pub fn max_output_tokens(mut self, limit: u32) -> Self {
        self.max_output_tokens = limit;
        self
    }

    /// The criterion the scores are recorded under (default `judge`).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The judge's mode.
    pub fn mode(&self) -> JudgeMode {
        self.mode
    }

    /// The criteria the judge applies.
    pub fn criteria(&self) -> &str {
        &self.criteria
    }

    /// The criterion name scores are recorded under.
    pub fn criterion(&self) -> &str {
        &self.name
    }

    /// The model the judge uses, when one was set.
    pub fn judge_model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The bound on each judge reply's output tokens.
    pub fn output_bound(&self) -> u32 {
        self.max_output_tokens
    }

    /// The options of a judge request: its own instructions and output format,
    /// no inherited settings, a bounded reply, and the metadata and label that
    /// say which comparison it is.
    pub(super) fn options(&self, tag: &JudgeTag) -> RespondOptions {
        let mut options = RespondOptions::default()
            .instructions(self.instructions())
            .fresh_settings()
            .text_format(self.format())
            .max_output_tokens(self.max_output_tokens)
            .label(super::JUDGE_LABEL);
        if let Some(model) = &self.model {
            options = options.model(model.clone());
        }
        for (key, value) in tag.metadata() {
            options = options.metadata(key, value);
        }
        options
    }

    fn instructions(&self) -> String {
        match self.mode {
            JudgeMode::Pairwise => format!(
                "You are an impartial judge. Compare two answers to the same request by these criteria: {}\n\
                 Reply with a short reason, then the winner: \"A\", \"B\", or \"tie\". \
                 The order of the answers says nothing about their quality.",
                self.criteria
            ),
            JudgeMode::Rubric { min, max } => format!(
                "You are an impartial judge. Score one answer to a request by these criteria: {}\n\
                 Reply with a short reason, then an integer score from {min} (worst) to {max} (best).",
                self.criteria
            ),
        }
    }

    fn format(&self) -> TextFormat {
        match self.mode {
            JudgeMode::Pairwise => TextFormat::json_schema(
                "pairwise_verdict",
                json!({
                    "type": "object",
                    "properties": {
                        "reason": {"type": "string"},
                        "winner": {"type": "string", "enum": ["A", "B", "tie"]},
                    },
                    "required": ["reason", "winner"],
                    "additionalProperties": false,
                }),
            ),
            JudgeMode::Rubric { min, max } => TextFormat::json_schema(
                "rubric_score",
                json!({
                    "type": "object",
                    "properties": {
                        "reason": {"type": "string"},
                        "score": {"type": "integer", "minimum": min, "maximum": max},
                    },
                    "required": ["reason", "score"],
                    "additionalProperties": false,
                }),
            ),
        }
    }

    /// The judge's user message: the answers (first, so that what they say is
    /// read before the request they answer), then the request.
    pub(super) fn input(&self, request: &str, answers: &[&str]) -> Vec<Value> {
        let text = match answers {
            [one] => format!("Answer:\n{one}\n\nRequest:\n{request}"),
            [a, b] => format!("Answer A:\n{a}\n\nAnswer B:\n{b}\n\nRequest:\n{request}"),
            _ => request.to_owned(),
        };
        vec![message_item("user", &text)]
    }

    /// The middle of a rubric's scale: what an unreadable rubric reply scores.
    pub(super) fn neutral(&self) -> f64 {
        match self.mode {
            JudgeMode::Pairwise => 0.5,
            JudgeMode::Rubric { min, max } => (min as f64 + max as f64) / 2.0,
        }
    }
}

/// Which comparison a judge node made, recorded in its metadata so that a
/// resumed exploration reads the verdict back instead of paying for it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct JudgeTag {
    pub(super) exploration: String,
    /// The candidate shown first (as "A", or the only one).
    pub(super) first: String,
    /// The candidate shown second ("B"), for a pairwise comparison.
    pub(super) second: Option<String>,
}

/// Metadata keys of judge nodes.
pub(super) const META_EXPLORATION: &str = "resptree_explore";
const META_FIRST: &str = "resptree_judge_first";
const META_SECOND: &str = "resptree_judge_second";

impl JudgeTag {
    fn metadata(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            (META_EXPLORATION, self.exploration.clone()),
            (META_FIRST, self.first.clone()),
        ];
        if let Some(second) = &self.second {
            pairs.push((META_SECOND, second.clone()));
        }
        pairs
    }

    /// The tag a judge node carries, if it is one.
    pub(super) fn of(node: &crate::node::Node) -> Option<Self> {
        Some(Self {
            exploration: node.metadata.get(META_EXPLORATION)?.clone(),
            first: node.metadata.get(META_FIRST)?.clone(),
            second: node.metadata.get(META_SECOND).cloned(),
        })
    }
}

/// A pairwise verdict, as the judge said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The answer shown first ("A") is better.
    First,
    /// The answer shown second ("B") is better.
    Second,
    /// Neither; or the reply could not be read.
    Tie,
}

/// Reads a pairwise reply; `None` when it is not the schema's JSON.
pub(super) fn parse_pairwise(text: &str) -> Option<Verdict> {
    let value: Value = serde_json::from_str(text.trim()).ok()?;
    match value.get("winner")?.as_str()? {
        "A" => Some(Verdict::First),
        "B" => Some(Verdict::Second),
        "tie" => Some(Verdict::Tie),
        _ => None,
    }
}

/// Reads a rubric reply; `None` when it is not the schema's JSON or the score
/// is off the scale.
pub(super) fn parse_rubric(text: &str, min: i64, max: i64) -> Option<i64> {
    let value: Value = serde_json::from_str(text.trim()).ok()?;
    let score = value.get("score")?.as_i64()?;
    (min..=max).contains(&score).then_some(score)
}

/// Wins, losses and ties of one candidate over its pairwise comparisons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Pairs both orders gave to this candidate.
    pub wins: u32,
    /// Pairs both orders gave to the other candidate.
    pub losses: u32,
    /// Pairs the orders disagreed on, or called a tie.
    pub ties: u32,
}

impl Tally {
    /// `(wins + ties / 2) / pairs`, or 1 with no pairs.
    pub fn score(&self) -> f64 {
        let pairs = self.wins + self.losses + self.ties;
        if pairs == 0 {
            return 1.0;
        }
        (f64::from(self.wins) + f64::from(self.ties) / 2.0) / f64::from(pairs)
    }
}

/// The tallies of `n` candidates from the verdicts of every ordered pair:
/// `verdict(i, j)` is the judge's verdict with `i` shown first and `j` second.
/// A pair is a win only when both orders name the same candidate.
pub(super) fn tally(n: usize, verdict: impl Fn(usize, usize) -> Verdict) -> Vec<Tally> {
    let mut tallies = vec![Tally::default(); n];
    for i in 0..n {
        for j in (i + 1)..n {
            // Who each order says won: `Some(i)`, `Some(j)` or `None` (tie).
            let forward = match verdict(i, j) {
                Verdict::First => Some(i),
                Verdict::Second => Some(j),
                Verdict::Tie => None,
            };
            let backward = match verdict(j, i) {
                Verdict::First => Some(j),
                Verdict::Second => Some(i),
                Verdict::Tie => None,
            };
            match (forward, backward) {
                (Some(a), Some(b)) if a == b => {
                    let loser = if a == i { j } else { i };
                    tallies[a].wins += 1;
                    tallies[loser].losses += 1;
                }
                _ => {
                    tallies[i].ties += 1;
                    tallies[j].ties += 1;
                }
            }
        }
    }
    tallies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_or_refused() {
        assert_eq!(
            parse_pairwise(r#"{"reason":"x","winner":"B"}"#),
            Some(Verdict::Second)
        );
        assert_eq!(parse_pairwise(r#"{"winner":"tie"}"#), Some(Verdict::Tie));
        assert_eq!(parse_pairwise(r#"{"winner":"C"}"#), None);
        assert_eq!(parse_pairwise("A is better"), None);
        assert_eq!(parse_rubric(r#"{"reason":"ok","score":7}"#, 1, 10), Some(7));
        assert_eq!(parse_rubric(r#"{"score":11}"#, 1, 10), None);
        assert_eq!(parse_rubric(r#"{"score":"7"}"#, 1, 10), None);
    }

    #[test]
    fn a_pair_is_won_only_when_both_orders_agree() {
        // 0 beats 1 in both orders; 0 vs 2: each order picks whoever is shown
        // first (position bias), so a tie; 1 vs 2: 2 wins both.
        let verdict = |i: usize, j: usize| match (i, j) {
            (0, 1) => Verdict::First,
            (1, 0) => Verdict::Second,
            (0, 2) | (2, 0) => Verdict::First,
            (1, 2) => Verdict::Second,
            (2, 1) => Verdict::First,
            _ => unreachable!(),
        };
        let t = tally(3, verdict);
        assert_eq!(
            t[0],
            Tally {
                wins: 1,
                losses: 0,
                ties: 1
            }
        );
        assert_eq!(
            t[1],
            Tally {
                wins: 0,
                losses: 2,
                ties: 0
            }
        );
        assert_eq!(
            t[2],
            Tally {
                wins: 1,
                losses: 0,
                ties: 1
            }
        );
        assert!((t[0].score() - 0.75).abs() < 1e-9);
        assert!((t[1].score() - 0.0).abs() < 1e-9);
        assert!((Tally::default().score() - 1.0).abs() < 1e-9);
    }
}
