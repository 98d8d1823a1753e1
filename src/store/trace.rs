//! What the stores tell a `tracing` subscriber: opens, loads, commits and
//! flushes, with sizes and durations. Never node content: only ids, counts and
//! times (see "Observability" in `docs/ARCHITECTURE.md`).
//!
//! Events use the target `resptree::store`, with a `store` field naming the
//! backend (`sled`, `memory`, `postgres`).

use std::time::{Duration, Instant};

/// The target of every event of the stores.
const TARGET: &str = "resptree::store";

/// Logs a load (a reopen): how much it found, how many records it could not
/// read and how long it took. INFO even with problems: the caller gets those
/// (`ResponseTree::load_problems`) and decides how loudly to report them.
/// The durable stores only: the memory store has nothing to load.
#[cfg(any(feature = "sled", feature = "postgres"))]
pub(super) fn loaded(store: &'static str, loaded: &super::Loaded, started: Instant) {
    tracing::info!(
        target: TARGET,
        store,
        nodes = loaded.nodes.len(),
        refs = loaded.refs.len(),
        problems = loaded.problems.len(),
        duration_ms = millis(started.elapsed()),
        "store loaded"
    );
}

/// Logs one committed batch: its number of operations, the commit number it
/// got (where the store numbers them) and the time to commit. A flush is logged
/// on its own (`flushed`): with group commit, one flush may serve many commits.
pub(super) fn committed(store: &'static str, ops: usize, seq: Option<u64>, started: Instant) {
    tracing::debug!(
        target: TARGET,
        store,
        ops,
        seq,
        duration_us = micros(started.elapsed()),
        "commit"
    );
}

/// Logs an explicit flush (`Store::flush`) and how long it took. sled only:
/// the memory store has nothing to flush and PostgreSQL commits durably.
#[cfg(feature = "sled")]
pub(super) fn flushed(store: &'static str, seq: Option<u64>, duration: Duration) {
    tracing::debug!(target: TARGET, store, seq, duration_us = micros(duration), "flush");
}

#[cfg(any(feature = "sled", feature = "postgres"))]
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
