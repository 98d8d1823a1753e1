//! What the emulator is doing right now, for tests that must not guess: how many
//! requests are in flight (and the most there ever were at once), and the gate that
//! [`Fault::Hold`](super::Fault::Hold) holds requests at until a test releases them.

use std::sync::Arc;

use tokio::sync::{Semaphore, watch};

/// Requests in flight: now, and the high-water mark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct InFlight {
    pub(crate) now: usize,
    pub(crate) peak: usize,
}

/// Counts the requests in flight. A `watch` channel, so a test can wait for a
/// count instead of polling it.
#[derive(Debug)]
pub(crate) struct Activity {
    in_flight: watch::Sender<InFlight>,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            in_flight: watch::Sender::new(InFlight::default()),
        }
    }
}

impl Activity {
    /// Counts a request in until the returned guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.in_flight.send_modify(|n| {
            n.now += 1;
            n.peak = n.peak.max(n.now);
        });
        InFlightGuard(Arc::clone(self))
    }

    pub(crate) fn in_flight(&self) -> InFlight {
        *self.in_flight.borrow()
    }

    /// Restarts the high-water mark from the requests in flight now.
    pub(crate) fn reset_peak(&self) {
        self.in_flight.send_modify(|n| n.peak = n.now);
    }

    /// Resolves once no request is in flight.
    pub(crate) async fn idle(&self) {
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = self.in_flight.subscribe().wait_for(|n| n.now == 0).await;
    }
}

/// One request in flight; dropping it counts the request out.
#[derive(Debug)]
pub(crate) struct InFlightGuard(Arc<Activity>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0
            .in_flight
            .send_modify(|n| n.now = n.now.saturating_sub(1));
    }
}

/// Where [`Fault::Hold`](super::Fault::Hold) requests wait: a semaphore with no
/// permits until a test releases some (tokio's semaphore is fair, so the oldest
/// held request goes first), and a count of the requests waiting.
#[derive(Debug)]
pub(crate) struct Gate {
    permits: Semaphore,
    held: watch::Sender<usize>,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            permits: Semaphore::new(0),
            held: watch::Sender::new(0),
        }
    }
}

impl Gate {
    /// Waits until released (or the gate is opened for good). Cancel safe: a
    /// request dropped while it waits is no longer counted as held.
    pub(crate) async fn pass(&self) {
        self.held.send_modify(|n| *n += 1);
        let _held = Held(&self.held);
        // One release lets one request through. An error means the gate was
        // opened for good (the emulator is shutting down): go on then too.
        if let Ok(permit) = self.permits.acquire().await {
            permit.forget();
        }
    }

    /// Lets `n` more requests through, held now or arriving later.
    pub(crate) fn release(&self, n: usize) {
        self.permits.add_permits(n);
    }

    /// Lets every request through from now on, so a shutdown never waits for a
    /// request no one will release.
    pub(crate) fn open(&self) {
        self.permits.close();
    }

    /// Resolves once at least `n` requests are held.
    pub(crate) async fn held(&self, n: usize) {
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = self.held.subscribe().wait_for(|&h| h >= n).await;
    }
}

/// Counts a held request out when it passes or is dropped.
struct Held<'a>(&'a watch::Sender<usize>);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}
