//! When to retry a failed request, and how long to wait first.
//!
//! The rules copy the official SDKs (openai-python `_base_client.py`): retry
//! connection errors, timeouts and HTTP 408, 409, 429 and ≥ 500; let an
//! `x-should-retry: true|false` header override the status; wait what the server
//! asks (`retry-after-ms`, else `retry-after` in seconds or as an HTTP-date) when
//! that is in (0, 60] s, else back off exponentially with 75–100 % jitter.
//! A 429 saying `insufficient_quota` is not retried (as in async-openai): no
//! wait refills an account, unless the server says `x-should-retry: true`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

/// The longest server hint we honour; a longer one falls back to our own backoff.
const MAX_HINT: Duration = Duration::from_secs(60);

/// How a client retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts in all).
    pub(crate) max_retries: u32,
    /// The first backoff delay; it doubles with each retry.
    pub(crate) base_delay: Duration,
    /// The backoff never exceeds this (before jitter).
    pub(crate) max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (0 for the first retry), given the
    /// server's hint if it sent one.
    pub(crate) fn delay(&self, retry: u32, hint: Option<Duration>) -> Duration {
        if let Some(hint) = hint.filter(|h| !h.is_zero() && *h <= MAX_HINT) {
            return hint;
        }
        let factor = 2u32.saturating_pow(retry.min(30));
        let backoff = self.base_delay.saturating_mul(factor).min(self.max_delay);
        backoff.mul_f64(1.0 - 0.25 * unit_random())
    }
}

/// Whether a reply with this status and headers is worth retrying.
pub(crate) fn should_retry_status(status: u16, headers: &HeaderMap) -> bool {
    should_retry_header(headers).unwrap_or(matches!(status, 408 | 409 | 429) || status >= 500)
}

/// The server's own verdict, `x-should-retry: true|false`, if it gave one.
pub(crate) fn should_retry_header(headers: &HeaderMap) -> Option<bool> {
    match headers.get("x-should-retry").and_then(|v| v.to_str().ok()) {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    }
}

/// The server's retry hint: `retry-after-ms`, else `retry-after` as seconds
/// (fractions allowed) or as an HTTP-date (IMF-fixdate, the only form servers
/// send today; the obsolete RFC 850 and asctime forms are treated as absent).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let value = header("retry-after")?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = parse_http_date(value)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Parses an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT` into Unix seconds.
fn parse_http_date(s: &str) -> Option<u64> {
    let (_weekday, rest) = s.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || parts.next().is_some() || !(1..=31).contains(&day) {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|&name| name == month)? as i64 + 1;
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = u64::try_from(crate::node::days_from_civil(year, month, day as i64)).ok()?;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// A number in [0, 1) from a shared xorshift generator. Jitter only has to spread
/// retries of concurrent requests apart, so a cheap local PRNG is enough and saves
/// a `rand` dependency.
fn unit_random() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        x = nanos | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn retryable_statuses_and_override() {
        let none = HeaderMap::new();
        for status in [408, 409, 429, 500, 502, 503, 599] {
            assert!(should_retry_status(status, &none), "{status}");
        }
        for status in [400, 401, 403, 404, 422] {
            assert!(!should_retry_status(status, &none), "{status}");
        }
        assert!(!should_retry_status(
            503,
            &headers(&[("x-should-retry", "false")])
        ));
        assert!(should_retry_status(
            400,
            &headers(&[("x-should-retry", "true")])
        ));
    }

    #[test]
    fn retry_after_forms() {
        let ms = headers(&[("retry-after-ms", "250"), ("retry-after", "9")]);
        assert_eq!(retry_after(&ms), Some(Duration::from_millis(250)));
        let secs = headers(&[("retry-after", "1.5")]);
        assert_eq!(retry_after(&secs), Some(Duration::from_millis(1500)));
        let past = headers(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        assert_eq!(retry_after(&past), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")])), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn http_date_parses_to_unix_seconds() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 12:00:00 GMT"),
            Some(1_709_208_000)
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
    }

    #[test]
    fn hint_used_only_within_bounds() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        // Zero and over-long hints fall back to backoff: 0.5 s × 75–100 %.
        for hint in [Some(Duration::ZERO), Some(Duration::from_secs(61)), None] {
            let d = policy.delay(0, hint);
            assert!(
                d >= Duration::from_millis(375) && d <= Duration::from_millis(500),
                "{d:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped_with_jitter() {
        let policy = RetryPolicy::default();
        for retry in 0..40 {
            let full = Duration::from_millis(500)
                .saturating_mul(2u32.saturating_pow(retry.min(30)))
                .min(Duration::from_secs(8));
            let d = policy.delay(retry, None);
            assert!(d <= full && d >= full.mul_f64(0.75), "retry {retry}: {d:?}");
        }
    }

    #[test]
    fn jitter_stays_in_unit_interval_and_varies() {
        let samples: Vec<f64> = (0..100).map(|_| unit_random()).collect();
        assert!(samples.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(samples.windows(2).any(|w| w[0] != w[1]));
    }
}
