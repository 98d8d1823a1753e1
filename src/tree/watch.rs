//! [`Watch`]: keeping a tree on a shared store current as other processes
//! commit, woken by the store's [`ChangeSignal`] instead of a fixed timer.

use std::time::Duration;

use super::handle::{Refreshed, ResponseTree};
use crate::error::{Error, Result};
use crate::store::{ChangeSignal, Wake};

/// How long a watch waits without a wake-up before it looks anyway, by
/// default: a notification is lost if the listener is reconnecting at the
/// time, so this bounds how stale a tree can get.
const DEFAULT_FALLBACK: Duration = Duration::from_secs(30);

/// How often a watch looks while the store's listener is not connected (or
/// the store sends no wake-ups at all).
const DEFAULT_POLL: Duration = Duration::from_secs(2);

/// Follows what other processes commit to a tree's shared store; made by
/// [`ResponseTree::watch`].
///
/// ```no_run
/// # async fn demo() -> resptree::Result<()> {
/// use resptree::ResponseTree;
/// use resptree::store::PostgresStore;
///
/// let tree = ResponseTree::with_store(PostgresStore::connect("postgres://resptree@127.0.0.1/trees")?)?;
/// let mut watch = tree.watch()?;
/// loop {
///     // Returns as soon as another process commits (PostgreSQL NOTIFY).
///     let news = watch.next().await?;
///     println!("{} new nodes, {} removed", news.added.len(), news.removed.len());
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Watch<'a> {
    tree: &'a ResponseTree,
    /// `None` when the store sends no wake-ups (or stopped sending them).
    signal: Option<ChangeSignal>,
    fallback: Duration,
    poll: Duration,
}

/// Why [`Watch::changed`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchWake {
    /// The store reported a commit: there is news (nodes, refs or
    /// annotations), unless another refresh already took it.
    Notified,
    /// No wake-up came in time; the store may or may not hold news.
    Polled,
}

impl ResponseTree {
    /// A [`Watch`] on this tree: waits for other processes' commits to its
    /// shared store and [refreshes](ResponseTree::refresh) the tree.
    ///
    /// On PostgreSQL the wake-up is the store's `NOTIFY`, sent in the same
    /// transaction as the write, so it arrives milliseconds after the commit;
    /// a slow poll (every 30 s, [`Watch::with_fallback`]) covers notifications
    /// lost while the listener reconnects, and while it is disconnected the
    /// watch polls every 2 s.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] if the store keeps no change feed (sled,
    /// memory: nobody else can write them); [`Error::Storage`] if the store
    /// cannot start listening.
    pub fn watch(&self) -> Result<Watch<'_>> {
        if !self.has_change_feed() {
            return Err(Error::Unsupported(
                "this tree's store keeps no change feed; only a shared store (PostgreSQL) can be watched",
            ));
        }
        Ok(Watch {
            tree: self,
            signal: self.store.change_signal()?,
            fallback: DEFAULT_FALLBACK,
            poll: DEFAULT_POLL,
        })
    }
}

impl Watch<'_> {
    /// Sets how long to wait without a wake-up before looking anyway (default
    /// 30 s). Stores that send no wake-ups are polled at this interval too,
    /// if it is shorter than the 2 s default.
    #[must_use]
    pub fn with_fallback(mut self, every: Duration) -> Self {
        self.fallback = every;
        self.poll = self.poll.min(every);
        self
    }

    /// Whether the store's wake-ups are arriving now (its listener is
    /// connected). While not, the watch polls every 2 s.
    pub fn is_notified(&self) -> bool {
        self.signal.as_ref().is_some_and(ChangeSignal::is_listening)
    }

    /// Waits for the next commit by anyone (or the fallback interval),
    /// without refreshing the tree: for callers that refresh elsewhere, e.g.
    /// on a blocking thread.
    ///
    /// Cancel-safe: dropping the future loses no wake-up.
    pub async fn changed(&mut self) -> WatchWake {
        loop {
            let every = if self.is_notified() {
                self.fallback
            } else {
                self.poll
            };
            let Some(signal) = self.signal.as_mut() else {
                tokio::time::sleep(every).await;
                return WatchWake::Polled;
            };
            tokio::select! {
                wake = signal.changed() => match wake {
                    Wake::Changed => return WatchWake::Notified,
                    // The store stopped listening for good: poll from now on.
                    Wake::Closed => self.signal = None,
                },
                () = tokio::time::sleep(every) => return WatchWake::Polled,
            }
        }
    }

    /// Waits for the next commit by anyone (or the fallback interval), then
    /// refreshes the tree and returns what changed. The result may be empty
    /// (a poll with no news, a commit that only moved refs or annotations).
    ///
    /// The refresh is a blocking store call (one round trip), made on the
    /// calling task's thread, as every `ResponseTree` method is; use
    /// [`Watch::changed`] and refresh on a blocking thread where that
    /// matters.
    ///
    /// Cancel-safe while waiting; once the refresh has started it runs to the
    /// end (it is not async).
    ///
    /// # Errors
    ///
    /// As [`ResponseTree::refresh`]; the watch stays usable.
    pub async fn next(&mut self) -> Result<Refreshed> {
        self.changed().await;
        self.tree.refresh()
    }
}
