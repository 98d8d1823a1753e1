//! [`Usd`]: an exact amount of US dollars, for adding up many small costs.

use std::fmt;
use std::ops::{Add, AddAssign};

use serde::{Serialize, Serializer};

/// Picodollars (10^-12 USD) per dollar.
const PICO_PER_USD: u128 = 1_000_000_000_000;

/// An amount of US dollars, kept exactly as an integer number of picodollars
/// (10^-12 USD).
///
/// Prices are whole microdollars per million tokens, so a token count times a
/// price is a whole number of picodollars: costs add up without rounding,
/// however many nodes a sum covers. Sums saturate instead of overflowing.
///
/// Displayed rounded to the microdollar (`$0.000015`); serialized exactly, as a
/// decimal string of dollars (`"0.000015"`), so no float rounding creeps into
/// JSON output.
///
/// ```
/// use resptree::cost::Usd;
/// let price = Usd::from_micros(150_000); // $0.15
/// assert_eq!(price.to_string(), "$0.150000");
/// assert_eq!((price + price).micros(), 300_000);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Usd(u128);

impl Usd {
    /// Nothing.
    pub const ZERO: Self = Self(0);

    /// `micros` microdollars (10^-6 USD).
    pub fn from_micros(micros: u64) -> Self {
        Self(u128::from(micros) * 1_000_000)
    }

    /// `pico` picodollars (10^-12 USD).
    pub fn from_picos(pico: u128) -> Self {
        Self(pico)
    }

    /// The exact amount in picodollars.
    pub fn picos(self) -> u128 {
        self.0
    }

    /// The amount in microdollars, rounded to the nearest (saturating).
    pub fn micros(self) -> u64 {
        u64::try_from(self.0.saturating_add(500_000) / 1_000_000).unwrap_or(u64::MAX)
    }

    /// The amount in dollars as a float: for display and rough comparisons
    /// only; sums are exact in `Usd`.
    pub fn as_f64(self) -> f64 {
        // Exact enough: the float is only shown, never added up.
        #[allow(clippy::cast_precision_loss)]
        let dollars = self.0 as f64 / PICO_PER_USD as f64;
        dollars
    }

    /// Whether the amount is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The exact amount in dollars as a decimal string, without trailing
    /// zeros past the cents (`"0.000015"`, `"1.50"`).
    pub fn to_decimal(self) -> String {
        let whole = self.0 / PICO_PER_USD;
        let frac = format!("{:012}", self.0 % PICO_PER_USD);
        let frac = frac.trim_end_matches('0');
        let frac = if frac.len() < 2 {
            format!("{frac:0<2}")
        } else {
            frac.to_owned()
        };
        format!("{whole}.{frac}")
    }
}

impl Add for Usd {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}

impl AddAssign for Usd {
    fn add_assign(&mut self, other: Self) {
        *self = *self + other;
    }
}

impl std::iter::Sum for Usd {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Add::add)
    }
}

impl fmt::Display for Usd {
    /// Dollars rounded to the microdollar: `$0.000015`, `$12.345678`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0.saturating_add(500_000) / 1_000_000;
        write!(f, "${}.{:06}", micros / 1_000_000, micros % 1_000_000)
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_decimal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_print_exactly_and_round_for_people() {
        assert_eq!(Usd::ZERO.to_string(), "$0.000000");
        assert_eq!(Usd::ZERO.to_decimal(), "0.00");
        assert_eq!(Usd::from_micros(1_500_000).to_decimal(), "1.50");
        // 15 tokens at $0.075 per 1M tokens: 1.125 microdollars, exactly.
        let tiny = Usd::from_picos(15 * 75_000);
        assert_eq!(tiny.to_decimal(), "0.000001125");
        assert_eq!(tiny.to_string(), "$0.000001");
        assert_eq!(tiny.micros(), 1);
        assert_eq!(Usd::from_picos(1_500_000).micros(), 2);
        assert_eq!(
            serde_json::to_string(&Usd::from_micros(12_345_678)).unwrap(),
            "\"12.345678\""
        );
        assert_eq!(
            Usd::from_picos(u128::MAX) + tiny,
            Usd::from_picos(u128::MAX)
        );
        assert!((Usd::from_micros(250_000).as_f64() - 0.25).abs() < 1e-12);
    }
}
