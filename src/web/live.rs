//! Live updates: a change counter the page long-polls (`GET
//! /api/changes?since=`), and for shared stores a task that pulls what other
//! processes wrote as soon as the store says they committed.
//!
//! A sled store is locked by the process that opened it, so every write the
//! explorer can see is its own (or its engine's): the counter moves when the
//! server writes, and when the tree's size or refs differ from the last look
//! (writes that bypassed the web routes, e.g. a library caller sharing the
//! tree). On PostgreSQL a [`Watch`](crate::tree::Watch) wakes on the store's
//! `NOTIFY` (sent with each committed write), refreshes the tree at once, and
//! looks anyway every `poll_interval` in case a notification was lost. Every
//! notification moves the counter, since annotations by another process move
//! no node or ref; a fallback look moves it only when nodes or refs moved.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::state::WebState;
use crate::error::Error;
use crate::tree::{ResponseTree, WatchWake};

/// How long a shared store's watch waits for a notification before it looks
/// anyway, by default (it polls every 2 s while its listener is down).
pub(crate) const DEFAULT_POLL: Duration = Duration::from_secs(30);

/// The longest a `GET /api/changes?since=` waits for the counter to move
/// before it answers with the same version: below the idle timeouts of
/// common proxies (60 s), so the page's request is not cut.
const LONG_POLL: Duration = Duration::from_secs(25);

/// How often a waiting `GET /api/changes` looks at the tree itself: writes
/// by a library caller sharing the tree go through no route and bump
/// nothing, so they are seen by looking (O(refs), in memory).
const RECHECK: Duration = Duration::from_secs(1);

/// The change counter.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    version: AtomicU64,
    /// The tree's size and a hash of its refs at the last look.
    seen: Mutex<(usize, u64)>,
    /// Wakes the long polls when the counter moves or the server stops.
    moved: Notify,
    /// Set when the server shuts down: long polls answer at once, so they do
    /// not hold the graceful shutdown up.
    closed: AtomicBool,
}

impl Changes {
    /// Records that something changed.
    pub(crate) fn bump(&self) {
        self.version.fetch_add(1, Ordering::Relaxed);
        self.moved.notify_waiters();
    }

    /// Ends every long poll now and from now on.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.moved.notify_waiters();
    }

    /// The current version, moved on first if the tree no longer looks as it
    /// did at the last look. O(refs): cheap enough to poll.
    pub(crate) fn current(&self, tree: &ResponseTree) -> u64 {
        let mut hasher = DefaultHasher::new();
        tree.list_refs().hash(&mut hasher);
        let now = (tree.len(), hasher.finish());
        // A poisoned lock holds a plain pair: still usable.
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if *seen != now {
            *seen = now;
            drop(seen);
            self.bump();
        }
        self.version.load(Ordering::Relaxed)
    }

    /// The version once it differs from `since` (at once if it already does),
    /// or after [`LONG_POLL`] (or at shutdown) the same version.
    pub(crate) async fn after(&self, tree: &ResponseTree, since: u64) -> u64 {
        let deadline = Instant::now() + LONG_POLL;
        loop {
            // Registered before looking, so a bump between the look and the
            // wait still wakes it.
            let moved = self.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            let version = self.current(tree);
            let now = Instant::now();
            if version != since || self.closed.load(Ordering::Relaxed) || now >= deadline {
                return version;
            }
            let _ = tokio::time::timeout(RECHECK.min(deadline - now), moved).await;
        }
    }
}

/// The change-feed follower of a shared store (absent for other stores).
#[derive(Debug)]
pub(crate) struct Poller {
    task: Option<JoinHandle<()>>,
    changes: Arc<Changes>,
}

impl Poller {
    /// Starts following `state`'s store, if it keeps a change feed: at every
    /// notification from it, and at the latest every `every`.
    pub(crate) fn start(state: WebState, every: Duration) -> Self {
        let changes = Arc::clone(&state.changes);
        let task = tokio::spawn(async move {
            let tree = state.source.tree();
            let mut watch = match tree.watch() {
                Ok(watch) => watch.with_fallback(every),
                // No change feed (sled, memory): nothing to follow.
                Err(Error::Unsupported(_)) => return,
                Err(err) => {
                    tracing::warn!(target: "resptree::web", error = %err, "cannot follow the shared store's changes; the page sees them when the tree is reopened");
                    return;
                }
            };
            loop {
                let wake = watch.changed().await;
                // The refresh is a store round trip: off the runtime's workers.
                let source = state.source.clone();
                let refreshed = tokio::task::spawn_blocking(move || source.tree().refresh()).await;
                match refreshed {
                    // The counter's look sees moved refs too; a bump wakes
                    // the long polls.
                    Ok(Ok(news)) => {
                        // A node removed and another added leave the size as
                        // it was: the refresh's own report says so. A
                        // notification is a committed write even when the
                        // refresh finds no node or ref moved: annotations
                        // (read from the store, not the graph) changed.
                        if wake == WatchWake::Notified
                            || !news.added.is_empty()
                            || !news.removed.is_empty()
                        {
                            state.changes.bump();
                        }
                        state.changes.current(tree);
                    }
                    Ok(Err(err)) => {
                        tracing::warn!(target: "resptree::web", error = %err, "refreshing from the shared store failed");
                    }
                    Err(_) => return,
                }
            }
        });
        Self {
            task: Some(task),
            changes,
        }
    }

    /// Stops following and ends the page's long polls.
    pub(crate) fn stop(&mut self) {
        self.changes.close();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn a_long_poll_waits_for_a_new_version_and_ends_at_shutdown() {
        let tree = ResponseTree::in_memory();
        let changes = Changes::default();
        let v = changes.current(&tree);
        // Behind: answered at once.
        assert_eq!(changes.after(&tree, v + 7).now_or_never(), Some(v));
        // Up to date: it waits...
        assert_eq!(changes.after(&tree, v).now_or_never(), None);
        // ...until the counter moves, whether before or during the wait.
        let (seen, ()) = tokio::join!(changes.after(&tree, v), async {
            tokio::task::yield_now().await;
            changes.bump();
        });
        assert_eq!(seen, v + 1);
        // A write that bypassed the routes is seen by the poll's own look.
        tree.insert(crate::Node::new(
            crate::NodeId::new("resp_1").unwrap(),
            None,
        ))
        .unwrap();
        assert_eq!(changes.after(&tree, v + 1).now_or_never(), Some(v + 2));
        // At shutdown every poll answers at once with what it has.
        changes.close();
        assert_eq!(changes.after(&tree, v + 2).now_or_never(), Some(v + 2));
    }
}
