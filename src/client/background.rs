//! Background mode on the client side: waiting for a background response to
//! finish (polling with backoff, bounded) and streaming its events again, from
//! the start or after a sequence number.

use std::time::Duration;

use reqwest::Method;
use tokio::time::Instant;

use super::transport::Call;
use super::{Client, Response, ResponseStream, path_id};
use crate::{Error, Result};

/// How [`Client::wait_until_done`] polls: the first pause, how it grows, and the
/// bound on the whole wait.
///
/// The defaults poll after 250 ms, doubling up to 5 s between polls, for at
/// most 10 minutes (about how long the API keeps a background response for
/// polling).
///
/// ```
/// use std::time::Duration;
/// use resptree::client::Polling;
///
/// let polling = Polling::default().timeout(Duration::from_secs(30));
/// assert_eq!(polling.timeout_after(), Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Polling {
    interval: Duration,
    max_interval: Duration,
    timeout: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(250),
            max_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(600),
        }
    }
}

impl Polling {
    /// The pause before the second poll (the first is immediate); doubled after
    /// each poll up to [`Polling::max_interval`].
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The longest pause between two polls.
    pub fn max_interval(mut self, max: Duration) -> Self {
        self.max_interval = max;
        self
    }

    /// The bound on the whole wait.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bound on the whole wait.
    pub fn timeout_after(&self) -> Duration {
        self.timeout
    }

    /// The pause after `pause`: doubled, at most the maximum, at least 1 ms so
    /// a zero interval cannot spin.
    fn next(&self, pause: Duration) -> Duration {
        pause
            .saturating_mul(2)
            .min(self.max_interval)
            .max(Duration::from_millis(1))
    }
}

impl Client {
    /// Polls a response (`GET /responses/{id}`) until it is no longer `queued`
    /// or `in_progress`, and returns it in its final status: `completed`,
    /// `incomplete`, `failed` or `cancelled` (check [`Response::status`]; a
    /// failed or cancelled response is not an error here).
    ///
    /// Each poll is retried per the client's retry policy like any request.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the response is still running after
    /// [`Polling::timeout`]; otherwise as [`Client::retrieve`] (a 404 when the
    /// server does not know the id).
    pub async fn wait_until_done(&self, id: &str, polling: Polling) -> Result<Response> {
        // A huge wait ("forever") must not overflow the clock: wait a century.
        let deadline = Instant::now()
            .checked_add(polling.timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600));
        let mut pause = polling.interval;
        loop {
            let response = self.retrieve(id).await?;
            if !response.is_pending() {
                return Ok(response);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    what: "waiting for a background response to finish",
                    after: polling.timeout,
                });
            }
            // The last pause is cut short so the final poll lands on the deadline.
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = polling.next(pause);
        }
    }

    /// Streams a background response's events (`GET /responses/{id}?stream=true`):
    /// those after `starting_after` (a sequence number, e.g.
    /// [`ResponseStream::last_sequence_number`] of a stream that broke off), or
    /// all of them with `None`, then live ones up to the terminal event. The
    /// events are the same typed [`StreamEvent`](super::StreamEvent)s as
    /// [`Client::create_stream`]'s, including `response.queued`.
    ///
    /// A response that was cancelled ends its stream without a terminal event,
    /// which the stream reports as [`Error::Stream`]: retrieve the response to
    /// see its status.
    ///
    /// # Errors
    ///
    /// As [`Client::retrieve`]; the server refuses a response that was not
    /// created in background mode with a 400 naming the `stream` parameter.
    /// Errors during the stream come from the [`ResponseStream`].
    pub async fn retrieve_stream(
        &self,
        id: &str,
        starting_after: Option<u64>,
    ) -> Result<ResponseStream> {
        let path = format!("responses/{}", path_id(id)?);
        let mut query = vec![("stream", "true".to_owned())];
        if let Some(n) = starting_after {
            query.push(("starting_after", n.to_string()));
        }
        let call = Call::new(Method::GET, path).query(query).streaming();
        let reply = self.execute_stream(&call).await?;
        Ok(ResponseStream::new(reply, self.inner.stream_idle_timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_backs_off_to_its_maximum_and_never_spins() {
        let polling = Polling::default()
            .interval(Duration::from_millis(300))
            .max_interval(Duration::from_secs(1));
        let mut pause = polling.interval;
        let mut seen = Vec::new();
        for _ in 0..4 {
            pause = polling.next(pause);
            seen.push(pause.as_millis());
        }
        assert_eq!(seen, [600, 1000, 1000, 1000]);
        let zero = Polling::default().interval(Duration::ZERO);
        assert_eq!(zero.next(Duration::ZERO), Duration::from_millis(1));
    }
}
