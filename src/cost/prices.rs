//! [`PriceTable`]: what a million tokens of each kind cost, per model; the
//! dated default table shipped in `data/prices.json` and the user's overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::node::Usage;

use super::ledger::Cost;

/// The default table: OpenAI list prices at the date in its `as_of` field.
const DEFAULT_PRICES: &str = include_str!("../../data/prices.json");

/// The environment variable that names a user price file.
pub const PRICES_ENV: &str = "RESPTREE_PRICES";

/// The highest price accepted, per million tokens: far above any real price,
/// low enough that a typo (a price per token entered as per million, times a
/// million) is caught.
const MAX_PRICE_USD: f64 = 100_000.0;

/// What one model's tokens cost, in microdollars per million tokens.
///
/// In the price file each field is dollars per million tokens (`0.15`); kept
/// here as whole microdollars (`150_000`), so costs add up exactly. The
/// optional kinds fall back to another price when a model does not set them:
/// cached input and cache writes to the input price, reasoning to the output
/// price (as OpenAI bills them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ModelPrice {
    /// Uncached input tokens.
    pub input: u64,
    /// Input tokens served from the prompt cache (default: `input`).
    pub cached_input: Option<u64>,
    /// Input tokens written to the prompt cache (default: `input`).
    pub cache_write: Option<u64>,
    /// Output tokens other than reasoning.
    pub output: u64,
    /// Reasoning tokens (default: `output`).
    pub reasoning: Option<u64>,
}

impl ModelPrice {
    /// A price with only input and output set, in microdollars per million
    /// tokens.
    pub fn new(input: u64, output: u64) -> Self {
        Self {
            input,
            output,
            ..Self::default()
        }
    }

    /// Sets [`ModelPrice::cached_input`].
    #[must_use]
    pub fn with_cached_input(mut self, price: u64) -> Self {
        self.cached_input = Some(price);
        self
    }

    /// Sets [`ModelPrice::cache_write`].
    #[must_use]
    pub fn with_cache_write(mut self, price: u64) -> Self {
        self.cache_write = Some(price);
        self
    }

    /// Sets [`ModelPrice::reasoning`].
    #[must_use]
    pub fn with_reasoning(mut self, price: u64) -> Self {
        self.reasoning = Some(price);
        self
    }
}

/// Prices per model, and where they came from.
///
/// [`PriceTable::load`] is what the CLI uses: the default table shipped with
/// resptree (`data/prices.json`, OpenAI list prices at its
/// [`as_of`](PriceTable::as_of) date) with the user's file merged over it,
/// model by model. The user file is the one `$RESPTREE_PRICES` names, else
/// `$XDG_CONFIG_HOME/resptree/prices.json`, else
/// `~/.config/resptree/prices.json`; it has the default file's shape:
///
/// ```json
/// { "models": { "gpt-4o-mini": { "input": 0.15, "cached_input": 0.075, "output": 0.6 },
///               "my-finetune": { "input": 0.3, "output": 1.2, "reasoning": 1.2 } } }
/// ```
///
/// Prices are US dollars per million tokens; `cached_input`, `cache_write`
/// and `reasoning` are optional (see [`ModelPrice`]).
///
/// ```
/// use resptree::Usage;
/// use resptree::cost::PriceTable;
/// let table = PriceTable::builtin();
/// // 1 000 input and 500 output tokens of gpt-4o-mini: $0.00015 + $0.0003.
/// let cost = table.price(Some("gpt-4o-mini"), &Usage::new(1_000, 500));
/// assert_eq!(cost.total.to_decimal(), "0.00045");
/// // A dated snapshot name is priced as its model.
/// assert!(table.get("gpt-4o-mini-2024-07-18").is_some());
/// assert!(!table.price(Some("unheard-of"), &Usage::new(1, 1)).is_known());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    models: BTreeMap<String, ModelPrice>,
    as_of: Option<String>,
    sources: Vec<String>,
}

/// A price file, as written.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    #[serde(default)]
    as_of: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    note: Option<String>,
    models: BTreeMap<String, FilePrice>,
}

/// One model's prices in a price file: dollars per million tokens.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FilePrice {
    input: f64,
    #[serde(default)]
    cached_input: Option<f64>,
    #[serde(default)]
    cache_write: Option<f64>,
    output: f64,
    #[serde(default)]
    reasoning: Option<f64>,
}

impl PriceTable {
    /// An empty table: every model is unknown.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The default table shipped with resptree (`data/prices.json`).
    pub fn builtin() -> Self {
        // The embedded file is checked by a test; should it ever not parse,
        // every model is unknown, which the cost reports say plainly.
        Self::parse(DEFAULT_PRICES, "the built-in price table").unwrap_or_default()
    }

    /// The default table with the user's price file merged over it, if there
    /// is one (see [`PriceTable`] for where it is looked for).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the file and the problem if the file named by
    /// `$RESPTREE_PRICES` does not exist, or a price file cannot be read or is
    /// not a valid price table.
    pub fn load() -> Result<Self> {
        let mut table = Self::builtin();
        if let Some(path) = user_file()? {
            table.merge(Self::from_file(&path)?);
        }
        Ok(table)
    }

    /// The table in the price file at `path` (alone, not merged).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the file and the problem if it cannot be read
    /// or is not a valid price table.
    pub fn from_file(path: &Path) -> Result<Self> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config_with(format!("price file {origin}: cannot be read"), e))?;
        Self::parse(&text, &origin)
    }

    /// The table in `text`, a price file's contents; `origin` names it in
    /// errors.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `origin` and the problem: malformed JSON, an
    /// unknown field, a price that is negative, not a number, above 100 000
    /// dollars per million tokens, or finer than a microdollar.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let file: PriceFile = serde_json::from_str(text)
            .map_err(|e| Error::config_with(format!("price file {origin}: {e}"), e))?;
        if let Some(currency) = file.currency.as_deref().filter(|c| *c != "USD") {
            return Err(Error::config(format!(
                "price file {origin}: currency {currency:?} is not USD, the only one supported"
            )));
        }
        let mut models = BTreeMap::new();
        for (model, price) in file.models {
            let field = |name: &str, value: f64| {
                to_micros(value).map_err(|problem| {
                    Error::config(format!(
                        "price file {origin}: models.{model}.{name}: {problem}"
                    ))
                })
            };
            let optional =
                |name: &str, value: Option<f64>| value.map(|v| field(name, v)).transpose();
            let parsed = ModelPrice {
                input: field("input", price.input)?,
                cached_input: optional("cached_input", price.cached_input)?,
                cache_write: optional("cache_write", price.cache_write)?,
                output: field("output", price.output)?,
                reasoning: optional("reasoning", price.reasoning)?,
            };
            models.insert(model, parsed);
        }
        Ok(Self {
            models,
            as_of: file.as_of,
            sources: vec![origin.to_owned()],
        })
    }

    /// Merges `other` over this table: its models replace this table's
    /// entries of the same name (whole entries, not field by field) and its
    /// other models are added. The `as_of` date stays this table's.
    pub fn merge(&mut self, other: Self) {
        self.models.extend(other.models);
        self.sources.extend(other.sources);
    }

    /// Sets (or replaces) one model's price.
    pub fn insert(&mut self, model: impl Into<String>, price: ModelPrice) {
        self.models.insert(model.into(), price);
    }

    /// The price of `model`: its own entry, or for a dated snapshot name
    /// (`gpt-4o-mini-2024-07-18`, as servers report the model) the entry of
    /// the name without the date.
    pub fn get(&self, model: &str) -> Option<&ModelPrice> {
        self.models
            .get(model)
            .or_else(|| self.models.get(undated(model)?))
    }

    /// The date the default prices were taken (`"2026-03-21"`), if the table
    /// says.
    pub fn as_of(&self) -> Option<&str> {
        self.as_of.as_deref()
    }

    /// Where the table's prices came from, oldest first: the built-in table,
    /// then any file merged over it.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// Every model with a price, by name.
    pub fn models(&self) -> impl Iterator<Item = (&str, &ModelPrice)> {
        self.models.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// What `usage` cost at `model`'s prices. An unknown model (or `None`, a
    /// node that does not say) gives a [`Cost`] that is not
    /// [known](Cost::is_known): its tokens are counted as unpriced, never as
    /// free.
    ///
    /// `usage.input_tokens` includes the cached and cache-write tokens, and
    /// `output_tokens` the reasoning tokens; each part is priced at its own
    /// rate.
    pub fn price(&self, model: Option<&str>, usage: &Usage) -> Cost {
        match model.and_then(|m| self.get(m)) {
            Some(price) => Cost::priced(price, usage),
            None => Cost::unpriced(model.unwrap_or(Cost::NO_MODEL), usage),
        }
    }
}

/// `model` without a trailing `-YYYY-MM-DD`, if it has one.
fn undated(model: &str) -> Option<&str> {
    let cut = model.len().checked_sub(11)?;
    let (base, date) = model.split_at_checked(cut)?;
    let date = date.as_bytes();
    let shape = date[0] == b'-'
        && date[5] == b'-'
        && date[8] == b'-'
        && [1, 2, 3, 4, 6, 7, 9, 10]
            .iter()
            .all(|&i| date[i].is_ascii_digit());
    (shape && !base.is_empty()).then_some(base)
}

/// Dollars per million tokens as whole microdollars per million tokens.
fn to_micros(dollars: f64) -> std::result::Result<u64, String> {
    if !dollars.is_finite() || dollars < 0.0 {
        return Err(format!("{dollars} is not a non-negative number"));
    }
    if dollars > MAX_PRICE_USD {
        return Err(format!(
            "{dollars} dollars per million tokens is more than {MAX_PRICE_USD}: \
             prices are per million tokens, not per token"
        ));
    }
    let micros = (dollars * 1e6).round();
    if (dollars * 1e6 - micros).abs() > 1e-3 {
        return Err(format!("{dollars} is finer than a microdollar"));
    }
    // In range: at most 10^11, and not negative.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(micros as u64)
}

/// The user's price file, if one is configured or exists at the default place.
fn user_file() -> Result<Option<PathBuf>> {
    if let Some(path) = std::env::var_os(PRICES_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(Error::config(format!(
                "price file {}: named by ${PRICES_ENV}, but there is no such file",
                path.display()
            )));
        }
        return Ok(Some(path));
    }
    let config_dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    Ok(config_dir
        .map(|dir| dir.join("resptree").join("prices.json"))
        .filter(|p| p.is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_table_parses_and_is_dated() {
        // `builtin` falls back to an empty table only if this fails.
        let table = PriceTable::parse(DEFAULT_PRICES, "the built-in price table").unwrap();
        assert_eq!(table, PriceTable::builtin());
        assert!(table.as_of().is_some_and(|d| d.starts_with("20")));
        for model in [
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4.1",
            "gpt-4.1-mini",
            "o3",
            "o4-mini",
            "gpt-5",
            "gpt-5-mini",
        ] {
            assert!(table.get(model).is_some(), "{model}");
        }
        assert_eq!(
            table.get("gpt-4o-mini"),
            Some(&ModelPrice::new(150_000, 600_000).with_cached_input(75_000))
        );
    }

    #[test]
    fn dated_snapshots_fall_back_to_their_model() {
        assert_eq!(undated("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(undated("o3-2025-04-16"), Some("o3"));
        assert_eq!(undated("gpt-4o"), None);
        assert_eq!(undated("-2024-08-06"), None);
        assert_eq!(undated("gpt-4o-2024-8-06x"), None);
        assert_eq!(undated("gpt-ä-2024-08-06"), Some("gpt-ä"));
        assert_eq!(undated("éééééééééé"), None);
    }

    #[test]
    fn bad_prices_are_named() {
        let err = |text: &str| {
            PriceTable::parse(text, "/tmp/p.json")
                .unwrap_err()
                .to_string()
        };
        let e = err(r#"{"models": {"m": {"input": -1, "output": 1}}}"#);
        assert!(
            e.contains("/tmp/p.json") && e.contains("models.m.input"),
            "{e}"
        );
        let e = err(r#"{"models": {"m": {"input": 1, "output": 1, "cached": 1}}}"#);
        assert!(
            e.contains("/tmp/p.json") && e.contains("unknown field `cached`"),
            "{e}"
        );
        let e = err(r#"{"models": {"m": {"input": 0.0000001, "output": 1}}}"#);
        assert!(e.contains("finer than a microdollar"), "{e}");
        let e = err(r#"{"models": {"m": {"input": 150000, "output": 1}}}"#);
        assert!(e.contains("not per token"), "{e}");
        let e = err(r#"{"currency": "EUR", "models": {}}"#);
        assert!(e.contains("not USD"), "{e}");
        let e = err("{");
        assert!(e.contains("/tmp/p.json"), "{e}");
    }
}
