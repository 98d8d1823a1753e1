//! Live updates: a change counter the page polls (`GET /api/changes`), and
//! for shared stores a task that pulls what other processes wrote.
//!
//! A sled store is locked by the process that opened it, so every write the
//! explorer can see is its own (or its engine's): the counter moves when the
//! server writes, and when the tree's size or refs differ from the last look
//! (writes that bypassed the web routes, e.g. a library caller sharing the
//! tree). PostgreSQL has no LISTEN/NOTIFY feed in resptree yet, so the
//! explorer polls its change feed ([`ResponseTree::refresh`]).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::state::WebState;
use crate::error::Error;
use crate::tree::ResponseTree;

/// How often a shared store is polled, by default.
pub(crate) const DEFAULT_POLL: Duration = Duration::from_secs(2);

/// The change counter.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    version: AtomicU64,
    /// The tree's size and a hash of its refs at the last look.
    seen: Mutex<(usize, u64)>,
}

impl Changes {
    /// Records that something changed.
    pub(crate) fn bump(&self) {
        self.version.fetch_add(1, Ordering::Relaxed);
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
            self.bump();
        }
        self.version.load(Ordering::Relaxed)
    }
}

/// The change-feed poller of a shared store (absent for other stores).
#[derive(Debug)]
pub(crate) struct Poller(Option<JoinHandle<()>>);

impl Poller {
    /// Starts polling `state`'s store every `every`, if it keeps a change feed.
    pub(crate) fn start(state: WebState, every: Duration) -> Self {
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let source = state.source.clone();
                let refreshed = tokio::task::spawn_blocking(move || source.tree().refresh()).await;
                match refreshed {
                    Ok(Ok(r)) if r.added.is_empty() && r.removed.is_empty() => {}
                    // Refs may have moved too: the counter's own look sees them.
                    Ok(Ok(_)) => state.changes.bump(),
                    // No change feed (sled, memory): nothing to poll.
                    Ok(Err(Error::Unsupported(_))) => return,
                    Ok(Err(err)) => {
                        tracing::warn!(target: "resptree::web", error = %err, "refreshing from the shared store failed");
                    }
                    Err(_) => return,
                }
            }
        });
        Self(Some(task))
    }

    pub(crate) fn stop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}
