//! Recovery: settling the attempts a crash, a lost connection or a dropped
//! future left in the journal, and adopting the responses the server made for
//! them — each exactly once.
//!
//! Life of an attempt (see `pipeline.rs`): it is journaled, with its owner
//! (this process, and a lease), before its request is sent; on a backend that
//! reports ids early the server's response id is journaled as soon as the
//! stream's `response.created` arrives (one more durable write); the node and
//! the attempt's removal are committed in one atomic write. What a crash leaves
//! at each point:
//!
//! | crash …                               | journal holds            | `recover` |
//! |---------------------------------------|--------------------------|-----------|
//! | before the journal write              | nothing (nothing sent)   | — |
//! | after it, before the id was journaled | the attempt, no id       | reported unresolved: the server may or may not have made a response, and has no way to find it |
//! | after the id was journaled            | the attempt and its id   | retrieves it: completed (or incomplete) → the node, once; still working → polled, then left for later; failed, cancelled or unknown → reported |
//! | after the commit                      | nothing (the node is in) | — |
//!
//! Attempts a request of this process is working on are never touched (an
//! in-process registry, [`InFlight`]); on a shared store, neither are another
//! live process's (its [`AttemptOwner`](crate::store::AttemptOwner) lease has
//! not expired).

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use tokio::time::Instant;

use super::Engine;
use crate::backend::RetrievedResponse;
use crate::error::{Error, Result};
use crate::ids::{NodeId, ResponseId};
use crate::node::Timestamp;
use crate::store::{Attempt, AttemptId, AttemptOwner};

/// What [`Engine::recover`] found in the journal.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Nodes fetched from the server and recorded.
    pub recovered: Vec<NodeId>,
    /// Attempts that could not be settled, with the reason; they have been
    /// removed from the journal (nothing could ever settle them: no response
    /// id was journaled, or the server says the response failed, was
    /// cancelled or does not exist).
    pub unresolved: Vec<(Attempt, Error)>,
    /// Attempts left in the journal for a later `recover`, with the reason:
    /// the server was still working on the response when the wait
    /// ([`EngineConfig::settle_wait`](super::EngineConfig::settle_wait)) ran
    /// out, or could not be asked.
    pub deferred: Vec<(Attempt, Error)>,
    /// Attempts left alone because a live request owns them: one of this
    /// process, or (on a shared store) another process's whose lease has not
    /// expired.
    pub live: Vec<AttemptId>,
    /// Attempts whose node was already in the tree; they were only removed.
    pub already_recorded: usize,
}

impl RecoveryReport {
    /// Whether every attempt found was settled: nothing deferred or unresolved
    /// (live attempts of others do not count).
    pub fn is_clean(&self) -> bool {
        self.unresolved.is_empty() && self.deferred.is_empty()
    }
}

/// How one attempt was settled.
enum Recovered {
    Adopted(NodeId),
    AlreadyRecorded,
    Unresolved(Error),
    Deferred(Error),
}

/// What the server says about a response the engine lost track of.
pub(super) enum Lookup {
    /// Completed (or incomplete): an answer to record.
    Found(Box<RetrievedResponse>),
    /// The server has no answer and never will: failed, cancelled, or unknown
    /// (404).
    Gone(Error),
    /// Not known yet: still queued or in progress when the wait ran out, or the
    /// server could not be asked.
    Pending(Error),
}

impl Engine {
    /// Settles the attempts left in the journal by a crash, a lost connection
    /// or a cancelled call, adopting what the server made.
    ///
    /// For each attempt that no live request owns: one whose response id was
    /// journaled is retrieved — a completed (or incomplete) response is
    /// recorded as the node it would have been, exactly once (if that node is
    /// already in the tree, the attempt is only removed); one the server is
    /// still working on is polled with backoff for up to
    /// [`EngineConfig::settle_wait`](super::EngineConfig::settle_wait), then
    /// left in the journal ([`RecoveryReport::deferred`]); a failed, cancelled
    /// or unknown one is reported ([`RecoveryReport::unresolved`]). One without
    /// an id (the crash came before the server's first event) cannot be matched
    /// to a response and is reported unresolved.
    ///
    /// Safe to call at any time: attempts of requests this process is working
    /// on are skipped, and on a store shared between processes (PostgreSQL) so
    /// are another process's attempts until their lease expires
    /// ([`RecoveryReport::live`]).
    ///
    /// # Errors
    ///
    /// A store error reading the journal or settling an attempt; what was
    /// recovered before it stays recorded.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        self.recover_within(self.inner.config.settle_wait).await
    }

    /// [`Engine::recover`], waiting at most `wait` for each response the server
    /// is still working on (instead of
    /// [`EngineConfig::settle_wait`](super::EngineConfig::settle_wait)).
    /// `Duration::ZERO` asks the server once per attempt and defers whatever is
    /// not finished: what a command does before its own work, so that it never
    /// blocks on an earlier run's slow responses.
    ///
    /// # Errors
    ///
    /// As [`Engine::recover`].
    pub async fn recover_within(&self, wait: Duration) -> Result<RecoveryReport> {
        let attempts = self.with_tree(|tree| tree.attempts()).await?;
        let shared = self.tree().is_shared();
        let now = Timestamp::now();
        let mut report = RecoveryReport::default();
        for attempt in attempts {
            if is_live(&attempt, shared, now) {
                report.live.push(attempt.id);
                continue;
            }
            match self.recover_one(&attempt, wait).await? {
                Recovered::Adopted(id) => {
                    tracing::info!(attempt = %attempt.id, node = %id, "recovered");
                    report.recovered.push(id);
                }
                Recovered::AlreadyRecorded => report.already_recorded += 1,
                Recovered::Unresolved(err) => {
                    tracing::warn!(attempt = %attempt.id, error = %err, "could not recover");
                    let id = attempt.id;
                    self.with_tree(move |tree| tree.settle(&[id])).await?;
                    report.unresolved.push((attempt, err));
                }
                Recovered::Deferred(err) => {
                    tracing::info!(attempt = %attempt.id, error = %err, "left for a later recover");
                    report.deferred.push((attempt, err));
                }
            }
        }
        Ok(report)
    }

    /// Settles one stale attempt. The outer error is a store error.
    async fn recover_one(&self, attempt: &Attempt, wait: Duration) -> Result<Recovered> {
        let Some(response_id) = attempt.response_id.clone() else {
            return Ok(Recovered::Unresolved(Error::Unsupported(
                "recovering an attempt whose response id was never received",
            )));
        };
        let id = NodeId::from(&response_id);
        if self.tree().contains(&id) {
            let attempt = attempt.id;
            self.with_tree(move |tree| tree.settle(&[attempt])).await?;
            return Ok(Recovered::AlreadyRecorded);
        }
        if let Some(parent) = &attempt.parent {
            if !self.tree().contains(parent) {
                return Ok(Recovered::Unresolved(Error::NodeNotFound(parent.clone())));
            }
        }
        let fetched = match self.look_up(&response_id, wait).await {
            Lookup::Found(fetched) => *fetched,
            Lookup::Gone(err) => return Ok(Recovered::Unresolved(err)),
            Lookup::Pending(err) => return Ok(Recovered::Deferred(err)),
        };
        let mut node = self.node_from_server(response_id, attempt.parent.clone(), fetched);
        // What this engine sent, without any replayed transcript the server saw.
        node.input = attempt.input.clone();
        node.origin.replayed = attempt.params.replay;
        node.extra_context = attempt.params.extra_context.clone();
        node.labels = attempt.params.labels.clone();
        node.settings = attempt.params.settings.clone();
        let node_id = node.id.clone();
        match self.commit_once(node, attempt).await? {
            true => Ok(Recovered::Adopted(node_id)),
            false => Ok(Recovered::AlreadyRecorded),
        }
    }

    /// Asks the server about `id` until it has finished with it, polling with
    /// backoff (50 ms doubling to 2 s) for up to `wait`.
    pub(super) async fn look_up(&self, id: &ResponseId, wait: Duration) -> Lookup {
        // A huge wait ("forever") must not overflow the clock: wait a century.
        let deadline = Instant::now()
            .checked_add(wait)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600));
        let mut delay = Duration::from_millis(50);
        loop {
            match self.backend().retrieve(id).await {
                Ok(fetched) if !fetched.pending => {
                    return match fetched.reply.status {
                        crate::NodeStatus::Completed | crate::NodeStatus::Incomplete => {
                            Lookup::Found(Box::new(fetched))
                        }
                        crate::NodeStatus::Cancelled => Lookup::Gone(Error::ResponseEnded {
                            response_id: id.clone(),
                            status: "cancelled",
                        }),
                        _ => Lookup::Gone(Error::ResponseEnded {
                            response_id: id.clone(),
                            status: "failed",
                        }),
                    };
                }
                Ok(_) if Instant::now() + delay > deadline => {
                    return Lookup::Pending(Error::Timeout {
                        what: "waiting for the server to finish an interrupted response",
                        after: wait,
                    });
                }
                Ok(_) => {}
                Err(err) if err.is_not_found() => return Lookup::Gone(err),
                // Anything else (unreachable, rate limited, refused) says
                // nothing about the response: ask again later.
                Err(err) => return Lookup::Pending(err),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// Commits `node` for `attempt`, unless a node with its id is already in
    /// the tree (another process's recovery on a shared store got there first):
    /// then only settles the attempt. `Ok(false)` in that case.
    pub(super) async fn commit_once(&self, node: crate::Node, attempt: &Attempt) -> Result<bool> {
        let id = node.id.clone();
        match self.commit(vec![node], attempt).await {
            Ok(_) => Ok(true),
            Err(Error::InvalidTree(crate::TreeViolation::DuplicateNode(dup))) if dup == id => {
                let attempt = attempt.id;
                self.with_tree(move |tree| tree.settle(&[attempt])).await?;
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    /// The owner to journal with a new attempt: this process, with a fresh lease.
    pub(super) fn owner(&self) -> AttemptOwner {
        let lease = i64::try_from(self.inner.config.attempt_lease.as_millis()).unwrap_or(i64::MAX);
        AttemptOwner::this_process(Timestamp(
            Timestamp::now().as_millis().saturating_add(lease),
        ))
    }
}

/// An attempt as this request last journaled it, and the gate that keeps its
/// journal writes in order.
///
/// Three writers re-journal a running attempt: the response id arriving, the
/// id being forgotten (a refused parent replayed, a stuck response re-issued)
/// and the lease heartbeat. Each write carries the whole record, so two of them
/// racing could put an older record back (a heartbeat written after the id
/// but read before it would drop the id); the gate, held across each write,
/// makes every write start from the one before.
#[derive(Debug)]
pub(super) struct Journaled {
    /// The record as last written (or being written).
    record: Mutex<Attempt>,
    /// Held across each journal write of this attempt.
    writes: tokio::sync::Mutex<()>,
}

impl Journaled {
    pub(super) fn new(attempt: &Attempt) -> Self {
        Self {
            record: Mutex::new(attempt.clone()),
            writes: tokio::sync::Mutex::new(()),
        }
    }

    /// The response id the request learnt last, if any.
    pub(super) fn response_id(&self) -> Option<ResponseId> {
        // A poisoned lock still guards a whole record: updates replace it.
        let record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        record.response_id.clone()
    }

    /// Applies `change` to the record (in memory at once, so a cut-off
    /// request sees it even if the write fails) and journals it with a fresh
    /// lease for this process. The write goes through group commit; the
    /// commit of the node waits for it (the request awaits it first), so it
    /// can never put back an attempt the commit removed.
    pub(super) async fn update(
        &self,
        engine: &Engine,
        change: impl FnOnce(&mut Attempt),
    ) -> Result<()> {
        let _turn = self.writes.lock().await;
        let record = {
            let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
            change(&mut record);
            record.owner = Some(engine.owner());
            record.clone()
        };
        engine
            .inner
            .tree
            .journal_async(std::slice::from_ref(&record))
            .await
    }
}

impl Engine {
    /// Runs `work` (a request) while renewing its attempt's lease every third
    /// of [`EngineConfig::attempt_lease`](super::EngineConfig::attempt_lease),
    /// so that a request that outlives one lease (a long background response)
    /// is never taken for stale by another process's `recover` on a shared
    /// store. The heartbeat stops, finishing any write it started, before
    /// this returns: a renewal can never land after the commit.
    pub(super) async fn with_heartbeat<T>(
        &self,
        journaled: &Journaled,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let period = (self.inner.config.attempt_lease / 3).max(Duration::from_millis(10));
        let (stop, mut stopped) = watch::channel(false);
        let beat = async {
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    () = tokio::time::sleep(period) => {}
                }
                match journaled.update(self, |_| {}).await {
                    Ok(()) => tracing::debug!("renewed the attempt's lease"),
                    Err(err) => tracing::warn!(error = %err, "could not renew an attempt's lease"),
                }
            }
        };
        let work = async {
            let out = work.await;
            let _ = stop.send(true);
            out
        };
        let (out, ()) = tokio::join!(work, beat);
        out
    }
}

/// Whether a live request owns `attempt`: one of this process, or on a shared
/// store another process whose lease runs.
fn is_live(attempt: &Attempt, shared: bool, now: Timestamp) -> bool {
    if InFlight::contains(attempt.id) {
        return true;
    }
    shared
        && attempt.owner.as_ref().is_some_and(|owner| {
            !owner.is_this_process() && owner.is_live_at(now) && !owner.has_exited()
        })
}

/// The attempts requests of this process are working on. Process-wide rather
/// than per engine, so that one engine's `recover` never settles an attempt
/// another engine over the same tree is still sending (attempt ids are UUIDs,
/// unique across engines).
static IN_FLIGHT: Mutex<Option<HashSet<AttemptId>>> = Mutex::new(None);

/// Marks an attempt as in flight for as long as it lives.
#[derive(Debug)]
pub(super) struct InFlight(AttemptId);

impl InFlight {
    /// Registers `id` until the guard is dropped.
    pub(super) fn register(id: AttemptId) -> Self {
        // A poisoned lock still guards a consistent set: every update is one
        // insert or remove.
        let mut set = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        set.get_or_insert_with(HashSet::new).insert(id);
        Self(id)
    }

    fn contains(id: AttemptId) -> bool {
        let set = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        set.as_ref().is_some_and(|s| s.contains(&id))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut set = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(set) = set.as_mut() {
            set.remove(&self.0);
        }
    }
}
