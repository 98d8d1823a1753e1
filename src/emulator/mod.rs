//! A Responses-API-compatible server on loopback, for tests, benchmarks and offline
//! examples (feature `emulator`).
//!
//! It speaks the wire format of `POST/GET/DELETE /v1/responses`,
//! `GET /v1/responses/{id}/input_items`, the Conversations API and
//! `POST /v1/chat/completions` (with `n`), streamed or not, and can inject the
//! failures real clients must survive ([`Fault`]). Its JSON is built independently of
//! the crate's client types and checked against recorded real-API shapes.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use resptree::emulator::Emulator;
//!
//! let emu = Emulator::spawn().await?;
//! let reply: serde_json::Value = reqwest::Client::new()
//!     .post(format!("{}/responses", emu.base_url()))
//!     .json(&serde_json::json!({"model": "gpt-4o-mini", "input": "Plan a weekend in Paris"}))
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! let text = reply["output"][0]["content"][0]["text"].as_str().unwrap_or_default();
//! assert!(text.starts_with("[ctx 1 msgs] You said: \"Plan a weekend in Paris\"."));
//! emu.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # The fake model
//!
//! Unless a test scripted the reply ([`Emulator::script_replies`]), a reply reads
//!
//! ```text
//! [ctx N msgs] You said: "<latest user text>". Take K: <sentence>
//! ```
//!
//! - `N` is the number of items in the context the response saw: every input and
//!   output item of every ancestor on the `previous_response_id` chain (or the
//!   conversation's items), plus the new input. `instructions` are not items and are
//!   never inherited. For chat completions, `N` is the number of `messages`.
//! - `<latest user text>` is the text of the newest `user` message in that context,
//!   cut to 200 characters (then followed by `…`).
//! - `K` is the 1-based sibling ordinal: the K-th response created from the same
//!   `previous_response_id` (or the K-th root response, the K-th response of a
//!   conversation, the K-th chat choice). Siblings therefore always differ, even with
//!   identical input.
//! - `<sentence>` is picked from a small phrase bank by a hash of the seed
//!   ([`EmulatorConfig::seed`]), the context's roles and texts, and `K`: the same seed
//!   and context give the same reply.
//!
//! # Token estimate
//!
//! - A context item costs `4 + ceil(chars / 4)` tokens (`chars` counts the characters
//!   of its text parts; non-message items count their compact JSON).
//! - `instructions` cost `4 + ceil(chars / 4)`.
//! - Generated text costs `ceil(chars / 4)` (at least 1).
//! - `usage.input_tokens` is instructions + every context item; `cached_tokens` is the
//!   exact inherited part (ancestors' or the conversation's items), not rounded to a
//!   cache granularity; `total_tokens = input_tokens + output_tokens`. Chat usage counts
//!   the prompt once and the completion tokens of all choices.
//!
//! # Semantics worth knowing
//!
//! - Responses with `store: false`, deleted, expired ([`EmulatorConfig::response_ttl`],
//!   [`Emulator::expire_response`]) or unknown ids cannot be continued: HTTP 400
//!   `previous_response_not_found` naming the id; a gap anywhere on the chain breaks it.
//! - `input_items` lists the response's own input items only.
//! - A stream whose client disconnects before the end is cancelled and not stored.
//! - Failed streams ([`Fault::FailMidStream`]) and streams ended by an error event
//!   ([`Fault::ErrorEvent`]) are not stored.
//! - `POST /chat/completions` honours `n` unless [`EmulatorConfig::max_chat_choices`]
//!   caps it, as some compatible servers silently do.
//! - A conversation allows one request at a time; a concurrent one gets HTTP 400
//!   `conversation_locked`.
//! - Latency ([`EmulatorConfig::latency`], [`Emulator::set_latency`]) applies to
//!   generating endpoints only.
//! - A request's cost does not grow with the history behind it: stored responses and
//!   conversations share their items as immutable lists with a running summary of
//!   what the fake model reads, so a context is extended, never copied, and replies
//!   are generated outside every lock (`benches/emulator.rs`). Listing a
//!   conversation's items walks them.
//! - `max_output_tokens` cuts the reply to `4 × max` characters and marks the response
//!   `incomplete` (`incomplete_details.reason = "max_output_tokens"`).
//! - Chat stream chunks carry `usage` (null until the last chunk) only when
//!   `stream_options.include_usage` is set.
//! - Background mode (`background: true`, which needs `store`): the create is
//!   answered at once with status `queued`; the response then runs on its own
//!   (`in_progress`, then the usual latency and events) whether or not a client
//!   listens, and `GET /responses/{id}` shows where it is. Its events are kept
//!   (for the newest 1 024 background responses), so
//!   `GET /responses/{id}?stream=true&starting_after=N` replays those after `N`
//!   and follows live ones to the end; a background stream opens with
//!   `response.created` (status `queued`), `response.queued`,
//!   `response.in_progress`. `POST /responses/{id}/cancel` cancels a running one
//!   (status `cancelled`, `usage: null`, never stored; its streams end without a
//!   terminal event), returns a finished one unchanged, and answers 400 for a
//!   response not created in background. Streaming a response that was not
//!   created in background again is a 404, as users report of the real API.
//!   A background response running with no client listening is not a request in
//!   flight: [`Emulator::wait_idle`] does not wait for it (poll it, follow its
//!   stream, or hold it with [`Fault::Hold`] / [`Fault::HoldQueued`]).
//! - Not emulated: tools.
//!
//! # Faults and the request log
//!
//! [`Emulator::inject`] queues a [`Fault`] (FIFO; [`Emulator::inject_for`] limits it to a
//! path prefix); [`Emulator::set_random_faults`] mixes faults in at a seeded rate. A
//! client without the handle (another process, another language's SDK) can fault one
//! request with the `x-emulator-fault` header: `429`, `500`, `503` (any 4xx/5xx status),
//! `drop`, `malformed`, `drop-mid-stream:N`, `fail-mid-stream:N`,
//! `drop-after-create`, `hold` or `hold-queued`.
//! [`Fault::DropAfterCreate`] lets a response be created while its client never
//! hears of it; [`Emulator::created_responses`] lists what the server created, so
//! a test can show that no retry made a duplicate.
//! [`Fault::Hold`] holds a request at its thinking time until [`Emulator::release`];
//! with [`Emulator::wait_held`], [`Emulator::wait_idle`] and
//! [`Emulator::peak_in_flight`], tests wait for what the server is doing instead of
//! sleeping.
//! Every request lands in [`Emulator::requests`] (the newest
//! [`EmulatorConfig::request_log_capacity`] of them) with its status, `x-request-id`, body
//! sizes and the fault it suffered. Every reply carries `x-request-id: req_…`,
//! `openai-processing-ms`, `openai-version` and the `x-ratelimit-*` headers.
//!
//! # Standalone
//!
//! `resptree emulate --listen 127.0.0.1:PORT` (feature `cli`) prints the base URL and
//! serves until Ctrl-C; [`Emulator::serve`] is the library call behind such servers.

mod activity;
mod background;
mod chat;
mod config;
mod context;
mod conversations;
mod failure;
mod fault;
mod ids;
mod items;
mod log;
mod model;
mod page;
mod request;
mod responses;
mod server;
mod state;
mod stream;

pub use config::EmulatorConfig;
pub use fault::Fault;
pub use log::RequestRecord;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use state::{Shared, lock};

/// A running emulator: a handle to inspect and steer it. Shuts the server down on drop.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Configures and spawns an [`Emulator`]; see [`Emulator::builder`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct EmulatorBuilder {
    config: EmulatorConfig,
}

impl EmulatorBuilder {
    /// Uses `config` as the starting point.
    pub fn config(mut self, config: EmulatorConfig) -> Self {
        self.config = config;
        self
    }

    /// Seed of the fake model.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Fixed "thinking time" before each generated reply.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.config.latency = latency;
        self
    }

    /// Delay between streamed deltas.
    pub fn token_delay(mut self, delay: Duration) -> Self {
        self.config.token_delay = delay;
        self
    }

    /// How long stored responses live (`None`: forever).
    pub fn response_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.config.response_ttl = ttl;
        self
    }

    /// The largest accepted request body.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.config.max_body_bytes = bytes;
        self
    }

    /// How many requests the log keeps ([`EmulatorConfig::request_log_capacity`]).
    pub fn request_log_capacity(mut self, capacity: usize) -> Self {
        self.config.request_log_capacity = capacity;
        self
    }

    /// The address to bind (default `127.0.0.1:0`).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self
    }

    /// Returns at most `max` chat choices whatever `n` asks, like a compatible
    /// server that ignores `n` (see [`EmulatorConfig::max_chat_choices`]).
    pub fn max_chat_choices(mut self, max: u64) -> Self {
        self.config.max_chat_choices = Some(max);
        self
    }

    /// Binds the address and starts serving in a background task.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the address cannot be bound (in use, not local).
    pub async fn spawn(self) -> Result<Emulator> {
        let listen = self.config.listen;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| Error::config_with(format!("cannot bind emulator to {listen}"), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::config_with("cannot read emulator address", e))?;
        let shared = Arc::new(Shared::new(self.config));
        let (stop, stopped) = oneshot::channel::<()>();
        let router = server::router(Arc::clone(&shared));
        let task = tokio::spawn(server::run(listener, router, async {
            let _ = stopped.await;
        }));
        Ok(Emulator {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

impl Emulator {
    /// Spawns an emulator on `127.0.0.1:0` with the default configuration.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when no loopback port can be bound.
    pub async fn spawn() -> Result<Self> {
        Self::builder().spawn().await
    }

    /// A builder for a configured emulator.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// Serves the emulator on an already bound `listener` until `shutdown` resolves.
    /// This is what a standalone server (`resptree emulate`) runs.
    /// [`EmulatorConfig::listen`] is ignored.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the server fails (the listener is broken).
    pub async fn serve(
        config: EmulatorConfig,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let shared = Arc::new(Shared::new(config));
        server::run(listener, server::router(shared), shutdown)
            .await
            .map_err(|e| Error::config_with("emulator server failed", e))
    }

    /// The base URL clients use, ending in `/v1`: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        base_url(self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a fault for the next matching requests (FIFO, any path).
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(None, fault);
    }

    /// Queues a fault for requests whose path starts with `path_prefix`
    /// (e.g. `"/v1/chat"`).
    pub fn inject_for(&self, path_prefix: impl Into<String>, fault: Fault) {
        lock(&self.shared.faults).push(Some(path_prefix.into()), fault);
    }

    /// Faults a share `rate` (0.0..=1.0) of requests at random, choosing among 500,
    /// 503, 429 (with a short `retry-after-ms`), dropped connections, malformed bodies
    /// and (for streams) mid-stream drops, from a PRNG seeded with `seed`. `0.0` turns
    /// the random mode off. Queued faults go first.
    pub fn set_random_faults(&self, rate: f64, seed: u64) {
        lock(&self.shared.faults).set_random(rate, seed);
    }

    /// Makes the next replies (responses, then chat choices in index order) use these
    /// exact texts, first in first out.
    pub fn script_replies<I, S>(&self, replies: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.shared.script(replies.into_iter().map(Into::into));
    }

    /// The requests received so far, oldest first: at most
    /// [`EmulatorConfig::request_log_capacity`] of them, the newest.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log)
            .iter()
            .map(log::LogEntry::snapshot)
            .collect()
    }

    /// Forgets the request log, and restarts [`Emulator::peak_in_flight`] from
    /// the requests in flight now.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
        self.shared.activity.reset_peak();
    }

    /// How many requests the emulator is serving right now: from their arrival
    /// until their reply is handed to the connection, or, for a stream, until it
    /// ended or the client went away.
    pub fn in_flight(&self) -> usize {
        self.shared.activity.in_flight().now
    }

    /// The most requests that were in flight at once since the emulator started
    /// (or since [`Emulator::clear_requests`]). A client's concurrency limit can
    /// be checked against it.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.activity.in_flight().peak
    }

    /// Waits until no request is in flight: every reply was handed over, and
    /// every stream finished or was cancelled (with what it held released: a
    /// cancelled stream's conversation lock is free once this returns).
    pub async fn wait_idle(&self) {
        self.shared.activity.idle().await;
    }

    /// Waits until at least `n` requests are held by [`Fault::Hold`].
    pub async fn wait_held(&self, n: usize) {
        self.shared.gate.held(n).await;
    }

    /// Lets `n` requests held by [`Fault::Hold`] go on, oldest first. A release
    /// beyond the requests held now lets the next ones pass without stopping.
    pub fn release(&self, n: usize) {
        self.shared.gate.release(n);
    }

    /// Deletes a stored response, as `DELETE /responses/{id}` does. `false` when there
    /// was no live response with that id.
    pub fn delete_response(&self, id: &str) -> bool {
        self.shared.delete_response(id)
    }

    /// Expires a stored response, as if its TTL had passed. `false` when there was no
    /// live response with that id.
    pub fn expire_response(&self, id: &str) -> bool {
        self.shared.expire_response(id)
    }

    /// Changes the "thinking time" ([`EmulatorConfig::latency`]) for requests that
    /// start from now on; requests already waiting keep theirs. Lets a test or bench
    /// build a long history quickly and then measure with latency.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.set_latency(latency);
    }

    /// How many stored responses are live (retrievable and chainable).
    pub fn response_count(&self) -> usize {
        self.shared.response_count()
    }

    /// The ids of the responses the emulator created, oldest first (the newest
    /// [`EmulatorConfig::request_log_capacity`] of them). A response counts as
    /// created when it completes or ends `incomplete` (stored or not, streamed or
    /// not, whether or not its client was still there to hear of it:
    /// [`Fault::DropAfterCreate`]), and a background response as soon as it is
    /// queued. Responses that fail, and streams cancelled because their client
    /// went away, do not count. Tests compare it with what a client recorded to
    /// prove that no retry made a duplicate.
    pub fn created_responses(&self) -> Vec<String> {
        self.shared.created_ids()
    }

    /// How many responses the emulator created (as [`Emulator::created_responses`]
    /// counts them), all of them.
    pub fn created_count(&self) -> u64 {
        self.shared.created_count()
    }

    /// Waits until the emulator has created at least `n` responses, e.g. one whose
    /// connection died ([`Fault::DropAfterCreate`]) and that completes unheard.
    pub async fn wait_created(&self, n: u64) {
        self.shared.wait_created(n).await;
    }

    /// Stops accepting connections, lets in-flight requests finish (at most 5 s), and
    /// waits for the server task. Background responses still running are stopped.
    pub async fn shutdown(mut self) {
        self.shared.jobs.abort_all();
        // Held requests would hold up the graceful shutdown: let them finish.
        self.shared.gate.open();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shared.jobs.abort_all();
        self.shared.gate.open();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The base URL for a server bound to `addr`.
pub fn base_url(addr: SocketAddr) -> String {
    format!("http://{addr}/v1")
}
