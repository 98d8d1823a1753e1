//! Budgets: what an exploration may spend, and the price of its next level.
//!
//! A level is priced before anything of it is sent, as an upper bound:
//!
//! - each missing child: the server's count of its input tokens
//!   (`POST /responses/input_tokens`, [`Engine::count_input_tokens`](crate::Engine::count_input_tokens))
//!   plus its `max_output_tokens` (which bounds reasoning and text together);
//! - each judge request still to make: the counted judge prompt without the
//!   answers, plus each answer shown at its output bound and
//!   [`ANSWER_MARGIN`] tokens (the same text read back as input may split into
//!   a few more tokens), plus the judge's `max_output_tokens`.
//!
//! When what the exploration already spent (every candidate and judge node
//! it recorded, read from the tree, so a resumed run counts the interrupted
//! one's spending too) plus that bound would pass the budget, the exploration
//! stops before the level, with [`StopReason::Budget`](super::StopReason::Budget).
//! The bound holds whatever the model answers, so the budget is never
//! exceeded.

use crate::cost::{PriceTable, Usd};
use crate::error::{Error, Result};

/// The output bound of a candidate when a budget is set and the strategy's
/// options give none: a budget cannot be kept without one.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 1024;

/// Extra input tokens allowed per answer shown to a judge, over the answer's
/// output bound.
pub const ANSWER_MARGIN: u64 = 16;

/// What an exploration may spend: tokens (input plus output, of candidates
/// and judges together), money at a [`PriceTable`]'s prices, or both.
///
/// In money, each request of a level is priced at its worst case: every
/// input token at the highest of the model's input rates (uncached, cached,
/// cache write) and every output token at the higher of its output and
/// reasoning rates. A model the table does not price cannot be budgeted in
/// money: the exploration refuses it ([`Error::Config`](crate::Error::Config)).
///
/// ```
/// use resptree::cost::{PriceTable, Usd};
/// use resptree::explore::Budget;
/// let budget = Budget::tokens(20_000);
/// assert_eq!(budget.max_tokens(), Some(20_000));
/// assert!(Budget::unlimited().is_unlimited());
/// let money = Budget::usd(Usd::from_micros(50_000), PriceTable::builtin()); // $0.05
/// assert_eq!(money.max_usd(), Some(Usd::from_micros(50_000)));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Budget {
    tokens: Option<u64>,
    usd: Option<(Usd, PriceTable)>,
}

impl Budget {
    /// No limit: levels are not priced.
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// At most `limit` tokens (input plus output, candidates and judges).
    pub fn tokens(limit: u64) -> Self {
        Self {
            tokens: Some(limit),
            usd: None,
        }
    }

    /// At most `limit` in US dollars at `prices`.
    pub fn usd(limit: Usd, prices: PriceTable) -> Self {
        Self {
            tokens: None,
            usd: Some((limit, prices)),
        }
    }

    /// Also limits tokens.
    #[must_use]
    pub fn and_tokens(mut self, limit: u64) -> Self {
        self.tokens = Some(limit);
        self
    }

    /// Also limits money, at `prices`.
    #[must_use]
    pub fn and_usd(mut self, limit: Usd, prices: PriceTable) -> Self {
        self.usd = Some((limit, prices));
        self
    }

    /// The token limit, if any.
    pub fn max_tokens(&self) -> Option<u64> {
        self.tokens
    }

    /// The money limit, if any.
    pub fn max_usd(&self) -> Option<Usd> {
        self.usd.as_ref().map(|(limit, _)| *limit)
    }

    /// The prices money is counted at, with a money limit.
    pub fn prices(&self) -> Option<&PriceTable> {
        self.usd.as_ref().map(|(_, prices)| prices)
    }

    /// Whether nothing is limited.
    pub fn is_unlimited(&self) -> bool {
        self.tokens.is_none() && self.usd.is_none()
    }
}

/// The upper bound of one level's spending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct LevelPrice {
    /// Missing children: counted input plus output bound, each, in tokens.
    pub(super) children: u64,
    /// Judge requests still to make, in tokens.
    pub(super) judges: u64,
    /// The same requests' worst-case money (with a money budget).
    pub(super) usd: Usd,
}

impl LevelPrice {
    pub(super) fn total(&self) -> u64 {
        self.children.saturating_add(self.judges)
    }
}

/// The most `requests` requests of `model`, each reading `input` tokens and
/// writing at most `output`, can cost at `prices` (see [`Budget`]).
///
/// # Errors
///
/// [`Error::Config`] when the table has no price for `model`.
pub(super) fn worst_case(
    prices: &PriceTable,
    model: &str,
    requests: u64,
    input: u64,
    output: u64,
) -> Result<Usd> {
    let price = prices.get(model).ok_or_else(|| {
        Error::config(format!(
            "a money budget needs a price for model {model}; the price table has none (add it to your price file)"
        ))
    })?;
    let in_rate = price
        .input
        .max(price.cached_input.unwrap_or(price.input))
        .max(price.cache_write.unwrap_or(price.input));
    let out_rate = price.output.max(price.reasoning.unwrap_or(price.output));
    // Microdollars per million tokens times tokens: picodollars, exactly.
    let one = u128::from(input) * u128::from(in_rate) + u128::from(output) * u128::from(out_rate);
    Ok(Usd::from_picos(one.saturating_mul(u128::from(requests))))
}

/// The bound of `requests` judge requests, each showing `answers` answers of at
/// most `answer_bound` output tokens, over a prompt of `template` counted
/// tokens, with replies of at most `reply_bound` tokens.
pub(super) fn judge_bound(
    requests: u64,
    template: u64,
    answers: u64,
    answer_bound: u64,
    reply_bound: u64,
) -> u64 {
    let input =
        template.saturating_add(answers.saturating_mul(answer_bound.saturating_add(ANSWER_MARGIN)));
    requests.saturating_mul(input.saturating_add(reply_bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_judge_bound_counts_every_answer_at_its_bound_and_margin() {
        // 6 pairwise requests, a 40-token prompt, two answers of ≤ 100 tokens,
        // replies of ≤ 20: 6 × (40 + 2 × 116 + 20).
        assert_eq!(judge_bound(6, 40, 2, 100, 20), 6 * (40 + 232 + 20));
        assert_eq!(judge_bound(0, 40, 2, 100, 20), 0);
        assert_eq!(judge_bound(u64::MAX, 1, 1, 1, 1), u64::MAX);
    }
}
