//! Streamed bodies: a plan of steps (send an event, sleep, finish, cut the
//! connection) played out as the client reads.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::fault::Fault;
use super::state::{Commit, Shared, unix_now};

/// One step of a streamed reply.
#[derive(Debug)]
pub(crate) enum Step {
    /// Send these bytes (one SSE block).
    Send(Bytes),
    /// Wait before the next step.
    Sleep(Duration),
    /// The fake model's thinking time (the configured latency): where a
    /// [`Fault::Hold`] holds the stream, before any output.
    Think(Duration),
    /// Wait at the gate until the test releases the request ([`Fault::Hold`]).
    Hold,
    /// Stamp `completed_at`, store the response, then send its terminal event
    /// (`event` is `response.completed` or `response.incomplete`).
    Finish {
        commit: Box<Commit>,
        event: &'static str,
        sequence_number: u64,
    },
    /// Keep this (conversation lock, mostly) alive until here, then drop it unstored.
    Release(Box<Commit>),
    /// Cut the connection: the body fails, so no terminal chunk is written.
    Abort,
}

impl Step {
    fn is_event(&self) -> bool {
        matches!(self, Self::Send(_) | Self::Finish { .. })
    }
}

/// One SSE block: `event:` line, `data:` line, blank line.
pub(crate) fn sse(event: &str, data: &Value) -> Step {
    Step::Send(Bytes::from(format!("event: {event}\ndata: {data}\n\n")))
}

/// One `data:`-only SSE block (Chat Completions).
pub(crate) fn data_only(data: &str) -> Step {
    Step::Send(Bytes::from(format!("data: {data}\n\n")))
}

/// Applies a stream fault to a plan.
pub(crate) fn apply_fault(mut steps: Vec<Step>, fault: Option<&Fault>) -> Vec<Step> {
    match fault {
        Some(Fault::DropMidStream { after_events, .. }) => {
            let cut = position_after_events(&steps, *after_events);
            // Anything after the cut is dropped unplayed (a pending commit included).
            steps.truncate(cut);
            // A pause before the cut: hyper writes out what it holds while the
            // body is pending, but discards it when the body fails, and the
            // client must receive every event promised before the cut.
            steps.push(Step::Sleep(Duration::from_millis(1)));
            steps.push(Step::Abort);
            steps
        }
        Some(Fault::Hold { .. }) => {
            let at = steps
                .iter()
                .position(|s| matches!(s, Step::Think(_)))
                .unwrap_or(0);
            steps.insert(at, Step::Hold);
            steps
        }
        Some(Fault::StallMidStream {
            after_events,
            stall,
            ..
        }) => {
            let at = position_after_events(&steps, *after_events);
            steps.insert(at, Step::Sleep(*stall));
            steps
        }
        _ => steps,
    }
}

/// Plays the first `after_events` events of `steps`, then cuts the connection,
/// while the rest of the plan plays on unheard: the response completes (and is
/// stored) on the server as if the client were still there
/// ([`Fault::DropAfterCreate`]).
pub(crate) fn detach_after(
    mut steps: Vec<Step>,
    after_events: usize,
    shared: &Arc<Shared>,
) -> Vec<Step> {
    let cut = position_after_events(&steps, after_events);
    let rest = steps.split_off(cut);
    tokio::spawn(play_unheard(Arc::clone(shared), rest));
    // The same pause before the cut as `DropMidStream`'s, for the same reason.
    steps.push(Step::Sleep(Duration::from_millis(1)));
    steps.push(Step::Abort);
    steps
}

/// Plays a plan with no one listening: waits and stores, sends nothing.
async fn play_unheard(shared: Arc<Shared>, steps: Vec<Step>) {
    for step in steps {
        match step {
            Step::Send(_) | Step::Release(_) => {}
            Step::Sleep(d) | Step::Think(d) if d.is_zero() => {}
            Step::Sleep(d) | Step::Think(d) => tokio::time::sleep(d).await,
            Step::Hold => shared.gate.pass().await,
            Step::Finish { mut commit, .. } => {
                commit.object["completed_at"] = json!(unix_now());
                shared.commit(*commit);
            }
            Step::Abort => break,
        }
    }
}

/// Plays the first `after_events` events of `steps`, then `error` (an error event,
/// built from the number of events sent before it), and ends the stream cleanly.
/// The response is never stored; a conversation lock it holds is kept until the
/// error has been sent.
pub(crate) fn error_after(
    mut steps: Vec<Step>,
    after_events: usize,
    error: impl FnOnce(u64) -> Step,
) -> Vec<Step> {
    let cut = position_after_events(&steps, after_events);
    let rest = steps.split_off(cut);
    let sent = steps.iter().filter(|s| s.is_event()).count() as u64;
    steps.push(error(sent));
    for step in rest {
        if let Step::Finish { commit, .. } | Step::Release(commit) = step {
            steps.push(Step::Release(commit));
        }
    }
    steps
}

/// The index just after the `n`-th event (or the end).
fn position_after_events(steps: &[Step], n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let mut seen = 0;
    for (i, step) in steps.iter().enumerate() {
        if step.is_event() {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    steps.len()
}

/// `first` joined with the events that follow it without a wait: the `Send`
/// steps up to the next step that sleeps, holds, finishes or cuts (zero waits
/// are skipped, as the player skips them).
///
/// One chunk per event made every event its own body frame: a write, a read
/// and a wake-up on each side, about a dozen per response. Events due at the
/// same moment now leave as one chunk, as a real server's buffered writes do;
/// SSE framing does not depend on chunk boundaries (the client's parser is
/// tested on every split). Events separated by a real wait (a token delay, a
/// fault's stall or cut) still leave separately, when they are due.
fn with_sends_due_now(first: Bytes, steps: &mut VecDeque<Step>) -> Bytes {
    let mut joined: Option<Vec<u8>> = None;
    loop {
        match steps.front() {
            Some(Step::Sleep(d) | Step::Think(d)) if d.is_zero() => {
                steps.pop_front();
            }
            Some(Step::Send(_)) => {
                if let Some(Step::Send(next)) = steps.pop_front() {
                    joined
                        .get_or_insert_with(|| first.to_vec())
                        .extend_from_slice(&next);
                }
            }
            _ => break,
        }
    }
    joined.map_or(first, Bytes::from)
}

/// The SSE block of an event that carries the response object
/// (`response.created`, `response.completed`, …), written straight from
/// `response`: `json!` would first copy the whole object into a new value.
/// The keys are in the order `serde_json` writes a map's keys, so the bytes
/// are those of [`sse`] with `{"type", "response", "sequence_number"}`.
/// `event` is one of our own event names, which need no escaping.
pub(crate) fn response_block(event: &str, response: &Value, sequence_number: u64) -> Bytes {
    Bytes::from(format!(
        "event: {event}\ndata: {{\"response\":{response},\"sequence_number\":{sequence_number},\"type\":\"{event}\"}}\n\n"
    ))
}

/// A `text/event-stream` response that plays `steps`.
pub(crate) fn response(shared: Arc<Shared>, steps: Vec<Step>) -> Response {
    let state = (shared, VecDeque::from(steps));
    let stream = futures_util::stream::unfold(state, |(shared, mut steps)| async move {
        loop {
            match steps.pop_front()? {
                Step::Send(bytes) => {
                    let bytes = with_sends_due_now(bytes, &mut steps);
                    return Some((Ok(bytes), (shared, steps)));
                }
                // A zero sleep would still wait for the next timer tick (about 1 ms).
                Step::Sleep(d) | Step::Think(d) if d.is_zero() => {}
                Step::Sleep(d) | Step::Think(d) => tokio::time::sleep(d).await,
                Step::Hold => shared.gate.pass().await,
                Step::Finish {
                    mut commit,
                    event,
                    sequence_number,
                } => {
                    commit.object["completed_at"] = json!(unix_now());
                    let bytes = response_block(event, &commit.object, sequence_number);
                    shared.commit(*commit);
                    return Some((Ok(bytes), (shared, steps)));
                }
                Step::Release(commit) => drop(commit),
                Step::Abort => {
                    steps.clear();
                    // Pending for a moment first, so hyper flushes the events already
                    // yielded; failing right away would discard its write buffer.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let err = std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "injected fault: connection dropped mid-stream",
                    );
                    return Some((Err(err), (shared, steps)));
                }
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_block_is_the_sse_block_of_the_same_event() {
        let response = json!({"id": "resp_1", "output": [{"type": "message", "text": "a \"quoted\" é"}], "status": "completed"});
        let event = "response.completed";
        let Step::Send(expected) = sse(
            event,
            &json!({"type": event, "response": response, "sequence_number": 7}),
        ) else {
            panic!("sse() makes a Send step");
        };
        assert_eq!(response_block(event, &response, 7), expected);
    }

    #[test]
    fn events_due_together_leave_as_one_chunk_and_waits_split_them() {
        let send = |text: &str| Step::Send(Bytes::from(text.to_owned()));
        let mut steps = VecDeque::from(vec![
            send("b"),
            Step::Sleep(Duration::ZERO),
            send("c"),
            Step::Think(Duration::ZERO),
            send("d"),
            Step::Sleep(Duration::from_millis(1)),
            send("e"),
        ]);
        let first = with_sends_due_now(Bytes::from_static(b"a"), &mut steps);
        assert_eq!(first, Bytes::from_static(b"abcd"));
        assert!(matches!(steps.pop_front(), Some(Step::Sleep(d)) if d == Duration::from_millis(1)));
        let mut rest = VecDeque::new();
        assert_eq!(
            with_sends_due_now(Bytes::from_static(b"e"), &mut rest),
            Bytes::from_static(b"e")
        );
    }
}
