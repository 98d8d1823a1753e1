//! [`ChangeSignal`]: a shared store's "something was committed" wake-up.
//!
//! A signal carries no data: it only says *when* to ask the store what
//! changed ([`Store::changes_since`](super::Store::changes_since), which
//! [`ResponseTree::refresh`](crate::ResponseTree::refresh) reads). That keeps
//! it correct when wake-ups are merged or lost: the change feed, not the
//! signal, is the record. The PostgreSQL store raises it from `LISTEN/NOTIFY`.

use tokio::sync::watch;

/// The receiving end: a handle that wakes when the store reports a commit.
///
/// Clone it to wait in several places; every clone sees every later wake-up
/// (merged, if several come before it looks).
#[derive(Debug, Clone)]
pub struct ChangeSignal {
    state: watch::Receiver<SignalState>,
}

/// The sending end, kept by the store (or by its listener task).
#[derive(Debug)]
pub struct ChangeNotifier {
    state: watch::Sender<SignalState>,
}

/// What the channel holds: a wake-up count and whether the store's listener is
/// connected (a signal from a disconnected listener may miss commits, so
/// waiters poll more often meanwhile).
#[derive(Debug, Clone, Copy, Default)]
struct SignalState {
    wakes: u64,
    listening: bool,
}

/// How a wait on a [`ChangeSignal`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Wake {
    /// The store reported a commit (or its listener reconnected, after which
    /// commits made meanwhile may be waiting).
    Changed,
    /// The notifier is gone (the store was dropped or its listener stopped):
    /// no wake-up will come any more.
    Closed,
}

impl ChangeSignal {
    /// A new, connected pair. The notifier starts out *not listening*: a store
    /// calls [`ChangeNotifier::listening`] once its feed is live.
    #[must_use]
    pub fn pair() -> (ChangeNotifier, ChangeSignal) {
        let (state, receiver) = watch::channel(SignalState::default());
        (ChangeNotifier { state }, ChangeSignal { state: receiver })
    }

    /// Waits for the next wake-up after the last one this handle saw.
    ///
    /// Cancel-safe: dropping the future loses nothing (a wake-up that came
    /// meanwhile is seen by the next call).
    pub async fn changed(&mut self) -> Wake {
        match self.state.changed().await {
            Ok(()) => {
                self.state.borrow_and_update();
                Wake::Changed
            }
            Err(_) => Wake::Closed,
        }
    }

    /// Whether the store's listener is connected now. While it is not,
    /// commits may come without a wake-up, so a waiter should poll.
    pub fn is_listening(&self) -> bool {
        self.state.borrow().listening
    }
}

impl ChangeNotifier {
    /// Wakes every waiting [`ChangeSignal`].
    pub fn notify(&self) {
        self.state
            .send_modify(|s| s.wakes = s.wakes.wrapping_add(1));
    }

    /// Records whether the listener is connected. Going live also wakes the
    /// waiters: commits made while it was not may have had no wake-up.
    pub fn listening(&self, live: bool) {
        self.state.send_modify(|s| {
            s.listening = live;
            if live {
                s.wakes = s.wakes.wrapping_add(1);
            }
        });
    }

    /// Whether no [`ChangeSignal`] is left to wake.
    pub fn is_closed(&self) -> bool {
        self.state.is_closed()
    }

    /// A new signal on this notifier, which sees wake-ups from now on.
    #[must_use]
    pub fn subscribe(&self) -> ChangeSignal {
        ChangeSignal {
            state: self.state.subscribe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_before_the_wait_is_not_lost_and_several_merge() {
        let (notifier, mut signal) = ChangeSignal::pair();
        notifier.notify();
        notifier.notify();
        assert_eq!(signal.changed().await, Wake::Changed);
        // Both wake-ups were seen by that one wait: nothing is pending now.
        let pending = tokio::time::timeout(std::time::Duration::ZERO, signal.changed()).await;
        assert!(pending.is_err(), "{pending:?}");
    }

    #[tokio::test]
    async fn going_live_wakes_and_is_reported() {
        let (notifier, mut signal) = ChangeSignal::pair();
        assert!(!signal.is_listening());
        notifier.listening(true);
        assert_eq!(signal.changed().await, Wake::Changed);
        assert!(signal.is_listening());
        drop(notifier);
        assert_eq!(signal.changed().await, Wake::Closed);
    }
}
