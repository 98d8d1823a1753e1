//! Background mode (`background: true`): the response is answered at once with
//! `queued` and runs on its own task, which records every event it produces. Clients
//! poll it (`GET /v1/responses/{id}`), cancel it (`POST /v1/responses/{id}/cancel`),
//! and stream it — from the start or after any sequence number, while it runs or
//! after it ended (`GET /v1/responses/{id}?stream=true&starting_after=N`). A client
//! that goes away does not stop it.
//!
//! A background stream reads:
//! `response.created` (status `queued`), `response.queued`, `response.in_progress`,
//! then the same events as a plain stream, each `sequence_number` being its position.
//! A cancelled response's streams end after the last event it produced (no terminal
//! event, as no cancelled event exists in the protocol).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::failure::Failure;
use super::fault::Fault;
use super::state::{Shared, lock, unix_now};
use super::stream::Step;

/// How many background responses keep their events for replay. Older finished
/// ones are forgotten first (the real API keeps them about ten minutes); a
/// forgotten one that completed is still retrievable as a stored response.
pub(crate) const KEPT: usize = 1024;

/// The background responses the emulator knows, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    inner: Mutex<JobMap>,
}

#[derive(Debug, Default)]
struct JobMap {
    jobs: HashMap<String, Arc<Job>>,
    order: VecDeque<String>,
}

/// One background response: its current object and every event so far.
#[derive(Debug)]
pub(crate) struct Job {
    /// The response's own input items: known from its creation on, as the real
    /// API's `input_items` knows them while the response still runs.
    input: Vec<Value>,
    state: Mutex<JobState>,
    /// Bumped after every change, so followers wait for news instead of polling.
    changed: watch::Sender<u64>,
    /// The task running it, aborted by a cancel.
    task: Mutex<Option<AbortHandle>>,
}

#[derive(Debug)]
struct JobState {
    /// The Response object as `GET` shows it now.
    object: Value,
    /// The SSE blocks so far; the event with sequence number `n` is at index `n`.
    events: Vec<Bytes>,
    /// Whether it reached a final status (`completed`, `incomplete`, `failed`,
    /// `cancelled`): no event follows.
    finished: bool,
}

impl Jobs {
    /// The job for `id`, if it is known.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Job>> {
        lock(&self.inner).jobs.get(id).cloned()
    }

    /// Forgets a job (a deleted or expired response), cancelling it if it still
    /// runs, which also ends the streams following it. `true` when there was one.
    pub(crate) fn remove(&self, id: &str) -> bool {
        let mut map = lock(&self.inner);
        let Some(job) = map.jobs.remove(id) else {
            return false;
        };
        map.order.retain(|kept| kept != id);
        drop(map);
        job.cancel();
        true
    }

    /// Cancels every job still running (the emulator is going away), which also
    /// ends the streams following them.
    pub(crate) fn abort_all(&self) {
        let jobs: Vec<Arc<Job>> = lock(&self.inner).jobs.values().cloned().collect();
        for job in jobs {
            job.cancel();
        }
    }

    fn insert(&self, id: String, job: Arc<Job>) {
        let mut map = lock(&self.inner);
        map.order.push_back(id.clone());
        map.jobs.insert(id, job);
        if map.order.len() > KEPT {
            // The oldest finished job goes; running ones are never forgotten.
            let oldest = map.order.iter().position(|old| {
                map.jobs
                    .get(old)
                    .is_none_or(|job| lock(&job.state).finished)
            });
            if let Some(pos) = oldest
                && let Some(old) = map.order.remove(pos)
            {
                map.jobs.remove(&old);
            }
        }
    }
}

impl Job {
    fn new(object: Value, input: Vec<Value>) -> Self {
        Self {
            input,
            state: Mutex::new(JobState {
                object,
                events: Vec::new(),
                finished: false,
            }),
            changed: watch::Sender::new(0),
            task: Mutex::new(None),
        }
    }

    /// The response's own input items.
    pub(crate) fn input(&self) -> &[Value] {
        &self.input
    }

    /// The Response object now.
    pub(crate) fn object(&self) -> Value {
        lock(&self.state).object.clone()
    }

    /// Records an event (stamping its sequence number) unless the job already
    /// finished (a cancel won the race). An event carrying a response updates the
    /// object; a terminal one finishes the job. `false` when it was not recorded.
    fn push(&self, name: &str, mut data: Value) -> bool {
        let mut state = lock(&self.state);
        if state.finished {
            return false;
        }
        data["sequence_number"] = json!(state.events.len());
        if let Some(response) = data.get("response") {
            state.object = response.clone();
        }
        state.finished = matches!(
            name,
            "response.completed" | "response.incomplete" | "response.failed"
        );
        state
            .events
            .push(Bytes::from(format!("event: {name}\ndata: {data}\n\n")));
        drop(state);
        self.changed.send_modify(|n| *n += 1);
        true
    }

    /// Cancels the job unless it finished, and returns the object either way.
    fn cancel(&self) -> Value {
        let mut state = lock(&self.state);
        if !state.finished {
            state.finished = true;
            state.object["status"] = json!("cancelled");
            state.object["usage"] = Value::Null;
        }
        let object = state.object.clone();
        drop(state);
        self.changed.send_modify(|n| *n += 1);
        self.abort();
        object
    }

    fn abort(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

/// Starts the background response `object` (as it will be when complete) from
/// the event plan a stream of it would play (which owns what gets stored),
/// and answers: the `queued` object, or (for `stream: true`) its stream.
///
/// `fault` is the request's: [`Fault::HoldQueued`] keeps it queued until released;
/// [`Fault::DropMidStream`] cuts the returned stream's connection after that many
/// events, and [`Fault::DropAfterCreate`] after `response.created` (the front
/// middleware cuts a plain reply), while the response runs on.
pub(crate) fn create(
    shared: &Arc<Shared>,
    object: &Value,
    input: Vec<Value>,
    plan: Vec<Step>,
    stream: bool,
    fault: Option<&Fault>,
) -> Response {
    let id = object["id"].as_str().unwrap_or_default().to_owned();
    let queued = snapshot(object, "queued");
    let job = Arc::new(Job::new(queued.clone(), input));
    for name in ["response.created", "response.queued"] {
        job.push(name, json!({"type": name, "response": queued}));
    }
    shared.jobs.insert(id.clone(), Arc::clone(&job));
    shared.record_created(&id);
    let hold_queued = matches!(fault, Some(Fault::HoldQueued { .. }));
    let in_progress = snapshot(object, "in_progress");
    let task = tokio::spawn(run(
        Arc::clone(shared),
        Arc::clone(&job),
        in_progress,
        plan,
        hold_queued,
    ));
    *lock(&job.task) = Some(task.abort_handle());
    if !stream {
        return Json(queued).into_response();
    }
    let cut_after = match fault {
        Some(Fault::DropMidStream { after_events, .. }) => Some(*after_events),
        Some(Fault::DropAfterCreate { .. }) => Some(1),
        _ => None,
    };
    follow(job, 0, cut_after)
}

/// `GET /v1/responses/{id}?stream=true[&starting_after=N]`: the events after `N`
/// (all of them without it), then live ones up to the end.
pub(crate) fn stream(
    shared: &Shared,
    id: &str,
    starting_after: Option<&str>,
    fault: Option<&Fault>,
) -> Result<Response, Failure> {
    let from = match starting_after {
        None => 0,
        Some(n) => match n.parse::<u64>() {
            Ok(n) => usize::try_from(n).map_or(usize::MAX, |n| n.saturating_add(1)),
            Err(_) => {
                return Err(Failure::bad_request(
                    format!(
                        "Invalid 'starting_after': expected a non-negative integer, but got '{}' instead.",
                        crate::text::truncate(n, 64)
                    ),
                    Some("starting_after"),
                    Some("invalid_type"),
                ));
            }
        },
    };
    // A response that was not created in background cannot be streamed again:
    // the real API refuses it with a 400 naming `stream` (its message and code
    // as quoted in openai/openai-ruby issue #214); an unknown id is a 404.
    let Some(job) = shared.jobs.get(id) else {
        return Err(match shared.response(id) {
            Some(object) if object["background"] != json!(true) => Failure::bad_request(
                "This response cannot be streamed because it was not created with background=true.",
                Some("stream"),
                Some("invalid_request_error"),
            ),
            _ => not_found(id),
        });
    };
    let cut_after = match fault {
        Some(Fault::DropMidStream { after_events, .. }) => Some(*after_events),
        _ => None,
    };
    Ok(follow(job, from, cut_after))
}

/// `POST /v1/responses/{id}/cancel`.
pub(crate) async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Failure> {
    if let Some(job) = shared.jobs.get(&id) {
        return Ok(Json(job.cancel()));
    }
    match shared.response(&id) {
        // A finished background response whose events were forgotten.
        Some(object) if object["background"] == json!(true) => Ok(Json(object)),
        Some(_) => Err(Failure::bad_request(
            "Responses can only be cancelled if they were created with background=true.",
            None,
            None,
        )),
        None => Err(not_found(&id)),
    }
}

fn not_found(id: &str) -> Failure {
    Failure::not_found(format!("Response with id '{id}' not found."), None)
}

/// A copy of `object` in a running `status`: no output, usage or end time yet.
fn snapshot(object: &Value, status: &str) -> Value {
    let mut object = object.clone();
    object["status"] = json!(status);
    object["output"] = json!([]);
    object["usage"] = Value::Null;
    object["completed_at"] = Value::Null;
    object["incomplete_details"] = Value::Null;
    object
}

/// Runs a background response: its plan's events are recorded instead of sent.
/// The plan's own opening (`response.created`, `response.in_progress`) is
/// replaced by the background one.
///
/// The plan owns the response's [`Commit`](super::state::Commit) (and with it a
/// conversation's lock): a cancel aborts the task, which drops it unstored.
async fn run(shared: Arc<Shared>, job: Arc<Job>, in_progress: Value, plan: Vec<Step>, hold: bool) {
    if hold {
        shared.gate.pass().await;
    }
    job.push(
        "response.in_progress",
        json!({"type": "response.in_progress", "response": in_progress}),
    );
    for step in plan {
        match step {
            Step::Send(bytes) => {
                if let Some((name, data)) = parse_sse(&bytes)
                    && !matches!(name.as_str(), "response.created" | "response.in_progress")
                {
                    job.push(&name, data);
                }
            }
            Step::Sleep(d) | Step::Think(d) => pause(d).await,
            Step::Hold => shared.gate.pass().await,
            Step::Finish {
                mut commit, event, ..
            } => {
                commit.object["completed_at"] = json!(unix_now());
                let data = json!({"type": event, "response": commit.object});
                if job.push(event, data) {
                    shared.commit(*commit);
                }
            }
            Step::Release(commit) => drop(commit),
            // Background plans are never cut: faults cut the connections that follow them.
            Step::Abort => break,
        }
    }
}

async fn pause(d: Duration) {
    // A zero sleep would still wait for the next timer tick (about 1 ms).
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// Splits one SSE block (`event:` line, `data:` line) into its name and payload.
fn parse_sse(bytes: &[u8]) -> Option<(String, Value)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut name = None;
    let mut data = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("event: ") {
            name = Some(rest.to_owned());
        } else if let Some(rest) = line.strip_prefix("data: ") {
            data = serde_json::from_str::<Value>(rest).ok();
        }
    }
    let data = data?;
    let name = name.or_else(|| data.get("type")?.as_str().map(str::to_owned))?;
    Some((name, data))
}

/// A stream of a job's events from index `from`, live until the job finishes;
/// `cut_after` cuts the connection after that many events (the job goes on).
fn follow(job: Arc<Job>, from: usize, cut_after: Option<usize>) -> Response {
    let changed = job.changed.subscribe();
    let state = Follower {
        job,
        changed,
        next: from,
        sent: 0,
        cut_after,
    };
    let stream = futures_util::stream::unfold(state, |mut f| async move {
        let item = f.next().await?;
        Some((item, f))
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

struct Follower {
    job: Arc<Job>,
    changed: watch::Receiver<u64>,
    /// Index of the next event to send.
    next: usize,
    /// Events sent on this connection.
    sent: usize,
    cut_after: Option<usize>,
}

impl Follower {
    async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        loop {
            if self.cut_after == Some(self.sent) {
                self.cut_after = None;
                self.next = usize::MAX;
                // Pending for a moment first, so hyper flushes the events already
                // yielded; failing right away would discard its write buffer.
                tokio::time::sleep(Duration::from_millis(5)).await;
                return Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "injected fault: background stream connection dropped",
                )));
            }
            if self.next == usize::MAX {
                return None;
            }
            // Marked seen before reading, so a change made after the read wakes us.
            self.changed.borrow_and_update();
            let (event, finished) = {
                let state = lock(&self.job.state);
                (state.events.get(self.next).cloned(), state.finished)
            };
            if let Some(event) = event {
                self.next += 1;
                self.sent += 1;
                return Some(Ok(event));
            }
            if finished || self.changed.changed().await.is_err() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_blocks_parse_and_sequence_numbers_are_positions() {
        let (name, data) = parse_sse(b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"a\",\"sequence_number\":7}\n\n").unwrap();
        assert_eq!(name, "response.output_text.delta");
        let job = Job::new(json!({"status": "queued"}), Vec::new());
        assert!(job.push(&name, data));
        assert!(job.push(
            "response.completed",
            json!({"type": "response.completed", "response": {"status": "completed"}})
        ));
        let state = lock(&job.state);
        assert!(state.finished);
        assert!(String::from_utf8_lossy(&state.events[0]).contains("\"sequence_number\":0"));
        assert!(String::from_utf8_lossy(&state.events[1]).contains("\"sequence_number\":1"));
        assert_eq!(state.object["status"], "completed");
    }

    #[test]
    fn a_cancel_wins_over_later_events_and_a_finished_job_stays_as_it_is() {
        let job = Job::new(json!({"status": "in_progress", "usage": null}), Vec::new());
        assert_eq!(job.cancel()["status"], "cancelled");
        assert!(!job.push(
            "response.completed",
            json!({"type": "response.completed", "response": {"status": "completed"}})
        ));
        assert_eq!(job.object()["status"], "cancelled");

        let done = Job::new(json!({"status": "queued"}), Vec::new());
        done.push(
            "response.completed",
            json!({"type": "response.completed", "response": {"status": "completed"}}),
        );
        assert_eq!(done.cancel()["status"], "completed");
    }

    #[test]
    fn only_finished_jobs_are_forgotten() {
        let jobs = Jobs::default();
        let running = Arc::new(Job::new(json!({}), Vec::new()));
        jobs.insert("running".to_owned(), running);
        for i in 0..KEPT {
            let job = Arc::new(Job::new(json!({}), Vec::new()));
            job.push("response.completed", json!({"response": {}}));
            jobs.insert(format!("done{i}"), job);
        }
        assert!(jobs.get("running").is_some());
        assert!(jobs.get("done0").is_none());
        assert!(jobs.get(&format!("done{}", KEPT - 1)).is_some());
        assert!(jobs.remove("running"));
        assert!(!jobs.remove("running"));
    }
}
