//! Background mode: a request the server keeps working on whatever happens to
//! its connection (`background: true`), for slow reasoning models.
//!
//! It is sent as a stream (so the id and the first events arrive at once) and
//! followed to its end, through three things a plain request does not meet:
//!
//! - **a dropped stream is resumed**, from the last sequence number received
//!   (`GET /responses/{id}?stream=true&starting_after=N`), with backoff, up to
//!   [`EngineConfig::stream_resumes`](super::EngineConfig::stream_resumes)
//!   attempts in a row that bring nothing new; events are never reported twice;
//! - **a response stuck in `queued`** past
//!   [`EngineConfig::queued_timeout`](super::EngineConfig::queued_timeout) is
//!   cancelled and, once the server confirms the cancel, sent again (at most
//!   [`MAX_REISSUES`] times): the cancelled response's id leaves the journal
//!   before the new request goes out, and the new one's id is journaled as it
//!   arrives. If the cancel finds the response already finished, that answer
//!   is used; if the cancel fails, nothing is re-sent (the old response might
//!   still run): the request ends as an interrupted one (looked up by id, or
//!   left for `recover`);
//! - the attempt's **lease is renewed** while the request runs (the pipeline's
//!   heartbeat), since background answers can outlive it.
//!
//! Dropping the future of a background call leaves the response running on
//! the server and its attempt (with the id, once announced) in the journal:
//! [`Engine::recover`] adopts it when it is done. That is what background
//! mode is for; nothing is cancelled on drop.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::journal::Journaled;
use super::pipeline::Call;
use super::{Engine, RespondOptions, StreamUpdate};
use crate::backend::{BackendEvent, BackendReply, BackendRequest};
use crate::error::{Error, Result};
use crate::ids::ResponseId;
use crate::node::NodeStatus;

/// How many times one call re-issues a response that stayed queued, before it
/// gives up with [`Error::Timeout`].
pub const MAX_REISSUES: u32 = 2;

/// The first pause before resuming a dropped stream; it doubles with each
/// resume that brings nothing new, up to [`MAX_RESUME_DELAY`].
const FIRST_RESUME_DELAY: Duration = Duration::from_millis(100);

/// The longest pause between two resumes.
const MAX_RESUME_DELAY: Duration = Duration::from_secs(5);

/// What a background request has learnt so far, shared by the request and the
/// task forwarding its events (a plain mutex: never held across an await).
#[derive(Debug, Default)]
struct Progress {
    /// The server's id for the response.
    id: Option<ResponseId>,
    /// The sequence number of the last event received.
    last: Option<u64>,
    /// Whether the server has started working on it (no longer queued).
    running: bool,
}

/// How one leg of a background request ended, short of its reply.
enum Stop {
    /// The response was still queued when the queued timeout ran out.
    Queued,
    /// The leg failed.
    Failed(Error),
}

/// One leg: the create, or a resume of its stream.
enum Leg<'a> {
    Create(&'a BackendRequest),
    Resume(ResponseId, Option<u64>),
}

impl Engine {
    /// Whether a call with `options` runs in background mode: the call's
    /// choice, else the engine's.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] on a backend without background mode (Chat
    /// Completions); [`Error::Config`] for a response the server would not
    /// store (background responses are stored: the server refuses
    /// `store: false` with them).
    pub(super) fn background_for(&self, options: &RespondOptions, store: bool) -> Result<bool> {
        if !options.background.unwrap_or(self.inner.config.background) {
            return Ok(false);
        }
        if !self.inner.backend.supports_background() {
            return Err(Error::Unsupported("background mode on this backend"));
        }
        if !store {
            return Err(Error::config(
                "background mode needs a stored response: not with store(false) or stateless mode",
            ));
        }
        Ok(true)
    }

    /// Sends a background request and follows it to its end: one response,
    /// reporting to the caller's stream if the call is streamed.
    pub(super) async fn send_background(
        &self,
        request: BackendRequest,
        call: &Call,
        seen: &Journaled,
    ) -> Result<Vec<BackendReply>> {
        let updates = match call {
            Call::One => None,
            Call::Stream(updates) => Some(updates),
            Call::Native(_) | Call::NativeStream(..) => {
                return Err(Error::Unsupported("background mode with native fan-out"));
            }
        };
        let mut reissues = 0;
        loop {
            match self.follow_background(&request, updates, seen).await {
                Ok(reply) => return Ok(vec![reply]),
                Err(Stop::Failed(err)) => return Err(err),
                Err(Stop::Queued) => {}
            }
            // Stuck in the queue: cancel, and re-issue only once the server
            // confirms the cancel (else the old response could still run and
            // make a duplicate).
            let stuck = Error::Timeout {
                what: "waiting for a background response to leave the queue",
                after: self.inner.config.queued_timeout,
            };
            let Some(id) = seen.response_id() else {
                return Err(stuck);
            };
            match self.inner.backend.cancel(&id).await {
                Ok(reply) => match reply.status {
                    NodeStatus::Cancelled => {}
                    // It finished while we were cancelling: that is the answer.
                    NodeStatus::Completed | NodeStatus::Incomplete => return Ok(vec![reply]),
                    _ => {
                        return Err(Error::ResponseEnded {
                            response_id: id,
                            status: "failed",
                        });
                    }
                },
                Err(err) => {
                    tracing::warn!(response = %id, error = %err, "could not cancel a response stuck in the queue");
                    return Err(stuck);
                }
            }
            if reissues == MAX_REISSUES {
                tracing::warn!(response = %id, "cancelled a response stuck in the queue; not re-issuing again");
                return Err(stuck);
            }
            reissues += 1;
            tracing::info!(response = %id, reissues, "cancelled a response stuck in the queue; re-issuing");
            // The cancelled response leaves the journal before the new request
            // goes out: a crash now leaves an attempt without an id (reported),
            // never one naming a response that will not be answered.
            if let Err(err) = seen.update(self, |record| record.response_id = None).await {
                tracing::warn!(error = %err, "could not clear a cancelled response id");
            }
        }
    }

    /// Creates the response and follows its stream to the end, resuming it
    /// when the connection drops. `Stop::Queued` when it stayed queued past the
    /// queued timeout.
    async fn follow_background(
        &self,
        request: &BackendRequest,
        updates: Option<&mpsc::UnboundedSender<Result<StreamUpdate>>>,
        seen: &Journaled,
    ) -> std::result::Result<BackendReply, Stop> {
        let config = &self.inner.config;
        let progress = Mutex::new(Progress::default());
        let queued_until = Instant::now()
            .checked_add(config.queued_timeout)
            .unwrap_or_else(far_future);
        let mut leg = Leg::Create(request);
        let mut idle = 0;
        let mut delay = FIRST_RESUME_DELAY;
        loop {
            let before = lock(&progress).last;
            let err = match self
                .run_leg(leg, &progress, queued_until, updates, seen)
                .await
            {
                Ok(reply) => return Ok(reply),
                Err(Stop::Queued) => return Err(Stop::Queued),
                Err(Stop::Failed(err)) => err,
            };
            let (id, last) = {
                let p = lock(&progress);
                (p.id.clone(), p.last)
            };
            // Without an id there is nothing to resume; an error the server
            // sent (a failed response, a refusal) is the answer; and a server
            // that numbers no events cannot say where to resume without
            // repeating them (the request ends as an interrupted one and is
            // looked up by id).
            let (Some(id), Some(_)) = (id.filter(|_| is_cut(&err)), last) else {
                return Err(Stop::Failed(err));
            };
            if last == before {
                idle += 1;
                // Nothing new since the last leg: the response may have ended
                // without a terminal event (cancelled) or its events may be
                // gone; ask for it before trying again.
                if let Some(done) = self.finished(&id).await {
                    return done.map_err(Stop::Failed);
                }
                if idle > config.stream_resumes {
                    return Err(Stop::Failed(err));
                }
            } else {
                idle = 0;
                delay = FIRST_RESUME_DELAY;
            }
            tracing::info!(response = %id, after = last, error = %err, "background stream dropped; resuming");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RESUME_DELAY);
            leg = Leg::Resume(id, last);
        }
    }

    /// Runs one leg, forwarding its events (the id is journaled once, deltas
    /// go to the caller) and stopping it if the response is still queued at
    /// `queued_until`.
    async fn run_leg(
        &self,
        leg: Leg<'_>,
        progress: &Mutex<Progress>,
        queued_until: Instant,
        updates: Option<&mpsc::UnboundedSender<Result<StreamUpdate>>>,
        seen: &Journaled,
    ) -> std::result::Result<BackendReply, Stop> {
        let backend = &*self.inner.backend;
        let (events, mut received) = mpsc::unbounded_channel();
        let sent = async {
            match leg {
                Leg::Create(request) => backend.respond_stream(request.clone(), events).await,
                Leg::Resume(id, after) => backend.resume_stream(&id, after, events).await,
            }
        };
        let forward = async {
            while let Some(event) = received.recv().await {
                match event {
                    BackendEvent::Started { response_id } => {
                        let new = lock(progress).id.as_ref() != Some(&response_id);
                        if new {
                            lock(progress).id = Some(response_id.clone());
                            self.note_response_id(seen, response_id.clone()).await;
                            if let Some(updates) = updates {
                                let _ = updates.send(Ok(StreamUpdate::Started(response_id)));
                            }
                        }
                    }
                    BackendEvent::Delta(text) => {
                        lock(progress).running = true;
                        if let Some(updates) = updates {
                            let _ = updates.send(Ok(StreamUpdate::Delta(text)));
                        }
                    }
                    BackendEvent::Running => lock(progress).running = true,
                    BackendEvent::Sequence(n) => lock(progress).last = Some(n),
                }
            }
        };
        let watchdog = async {
            tokio::time::sleep_until(queued_until).await;
            if !lock(progress).running {
                return;
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            (reply, ()) = async { tokio::join!(sent, forward) } => reply.map_err(Stop::Failed),
            () = watchdog => Err(Stop::Queued),
        }
    }

    /// The response's final answer if the server has finished with it:
    /// `Ok` with the reply when completed or incomplete, the reason when it
    /// failed or was cancelled; `None` while it runs or if it cannot be asked.
    async fn finished(&self, id: &ResponseId) -> Option<Result<BackendReply>> {
        let fetched = self.inner.backend.retrieve(id).await.ok()?;
        if fetched.pending {
            return None;
        }
        Some(match fetched.reply.status {
            NodeStatus::Completed | NodeStatus::Incomplete => Ok(fetched.reply),
            NodeStatus::Cancelled => Err(Error::ResponseEnded {
                response_id: id.clone(),
                status: "cancelled",
            }),
            _ => Err(Error::ResponseEnded {
                response_id: id.clone(),
                status: "failed",
            }),
        })
    }
}

/// Whether `err` cut a background stream off (the response runs on, so the
/// stream can be resumed) rather than reporting the response's own fate.
fn is_cut(err: &Error) -> bool {
    matches!(
        err,
        Error::Stream { .. } | Error::Connection { .. } | Error::Timeout { .. }
    )
}

fn lock(progress: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    // A poisoned lock still guards consistent data: each update is one field.
    progress.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A century from now: "no bound" without overflowing the clock.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}
