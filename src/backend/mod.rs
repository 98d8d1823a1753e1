//! Backends: the engine's one door to a model server.
//!
//! A [`Backend`] turns "this context plus this new input" into a completed reply.
//! It knows nothing about trees or storage: the engine decides the context (a
//! server-side parent via `previous_response_id`, or an explicit replay of the
//! path) and records what comes back. Implement the trait to drive another
//! server, or to script replies in tests.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::ids::ResponseId;
use crate::node::{NodeStatus, Timestamp, Usage};
use crate::settings::RequestSettings;

mod chat;
pub use chat::{ChatBackend, MAX_CHOICES, chat_messages};
mod responses;
pub use responses::ResponsesBackend;

/// A boxed, `Send` future: what [`Backend`] methods return, so the trait stays
/// object-safe (`Arc<dyn Backend>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A model server the engine can ask for responses.
///
/// Every method must be cancel-safe in the sense the engine relies on: dropping
/// the returned future abandons the request and has no other effect.
pub trait Backend: Send + Sync + fmt::Debug {
    /// A short name recorded in each node's [`Origin`](crate::Origin), e.g. `"responses"`.
    fn name(&self) -> &str;

    /// Whether the server keeps responses and accepts [`Context::Previous`].
    /// A stateless backend (Chat Completions) is always sent [`Context::Replay`].
    fn is_stateful(&self) -> bool;

    /// Creates one response.
    fn respond(&self, request: BackendRequest) -> BoxFuture<'_, Result<BackendReply>>;

    /// Creates one response, sending [`BackendEvent`]s to `events` as they arrive.
    ///
    /// The default calls [`respond`](Backend::respond) and reports the whole text
    /// as one delta.
    fn respond_stream(
        &self,
        request: BackendRequest,
        events: mpsc::UnboundedSender<BackendEvent>,
    ) -> BoxFuture<'_, Result<BackendReply>> {
        Box::pin(async move {
            let reply = self.respond(request).await?;
            if let Some(id) = &reply.response_id {
                let _ = events.send(BackendEvent::Started {
                    response_id: id.clone(),
                });
            }
            let _ = events.send(BackendEvent::Delta(reply.output_text.clone()));
            Ok(reply)
        })
    }

    /// Whether [`respond_stream`](Backend::respond_stream) reports the server's
    /// response id ([`BackendEvent::Started`]) as soon as the server assigns
    /// it, before the response completes, and [`retrieve`](Backend::retrieve)
    /// can find that response afterwards.
    ///
    /// The engine then sends even non-streamed requests as streams, so that it
    /// can journal the id early: a crash or a lost connection leaves an id to
    /// look the response up by, instead of a request that may or may not have
    /// been made (and billed). The default, `false`, suits servers without
    /// stored responses (Chat Completions).
    fn reports_id_early(&self) -> bool {
        false
    }

    /// Whether the server runs responses in background mode
    /// ([`BackendRequest::background`]): it keeps working when the connection
    /// drops, a dropped stream can be resumed
    /// ([`resume_stream`](Backend::resume_stream)) and a response can be
    /// cancelled ([`cancel`](Backend::cancel)). The default, `false`, makes the
    /// engine refuse background calls with [`Error::Unsupported`].
    fn supports_background(&self) -> bool {
        false
    }

    /// Follows a background response's stream again, from the event after
    /// sequence number `starting_after` (from the start with `None`), sending
    /// [`BackendEvent`]s as [`respond_stream`](Backend::respond_stream) does
    /// (with [`BackendEvent::Sequence`] after each numbered event), up to the
    /// terminal event.
    ///
    /// The default returns [`Error::Unsupported`].
    fn resume_stream(
        &self,
        id: &ResponseId,
        starting_after: Option<u64>,
        events: mpsc::UnboundedSender<BackendEvent>,
    ) -> BoxFuture<'_, Result<BackendReply>> {
        let _ = (id, starting_after, events);
        Box::pin(async { Err(Error::Unsupported("resuming streams on this backend")) })
    }

    /// Cancels a background response and returns it as the server now has
    /// it: [`NodeStatus::Cancelled`], or its final status when it had already
    /// finished (cancelling a finished response changes nothing).
    ///
    /// The default returns [`Error::Unsupported`].
    fn cancel(&self, id: &ResponseId) -> BoxFuture<'_, Result<BackendReply>> {
        let _ = id;
        Box::pin(async { Err(Error::Unsupported("cancelling responses on this backend")) })
    }

    /// Whether [`respond_n`](Backend::respond_n) makes `n` alternatives in one request.
    fn has_native_fan_out(&self) -> bool {
        false
    }

    /// Creates `n` alternative responses to one request, natively (Chat Completions `n`).
    ///
    /// If the server returns fewer than `n` choices, an implementation returns
    /// [`Error::FanOutShort`] carrying the replies that did arrive, never fewer
    /// replies as if nothing were wrong. The default returns
    /// [`Error::Unsupported`]; the engine then sends `n` concurrent requests
    /// instead.
    fn respond_n(
        &self,
        request: BackendRequest,
        n: usize,
    ) -> BoxFuture<'_, Result<Vec<BackendReply>>> {
        let _ = (request, n);
        Box::pin(async { Err(Error::Unsupported("native fan-out on this backend")) })
    }

    /// Like [`respond_n`](Backend::respond_n), sending each choice's
    /// [`BackendEvent`]s to `events` tagged with the choice's index (0..n) as they
    /// arrive; choices interleave.
    ///
    /// The default calls [`respond_n`](Backend::respond_n) and reports each
    /// choice's whole text as one delta.
    fn respond_n_stream(
        &self,
        request: BackendRequest,
        n: usize,
        events: mpsc::UnboundedSender<(usize, BackendEvent)>,
    ) -> BoxFuture<'_, Result<Vec<BackendReply>>> {
        Box::pin(async move {
            let replies = self.respond_n(request, n).await?;
            for (index, reply) in replies.iter().enumerate() {
                let _ = events.send((index, BackendEvent::Delta(reply.output_text.clone())));
            }
            Ok(replies)
        })
    }

    /// Fetches a stored response and its own input items, to adopt it or to
    /// recover an interrupted request.
    fn retrieve(&self, id: &ResponseId) -> BoxFuture<'_, Result<RetrievedResponse>> {
        let _ = id;
        Box::pin(async { Err(Error::Unsupported("retrieving responses on this backend")) })
    }

    /// Deletes a stored response on the server. Deleting an id the server does not
    /// know is not an error.
    fn delete(&self, id: &ResponseId) -> BoxFuture<'_, Result<()>> {
        let _ = id;
        Box::pin(async { Err(Error::Unsupported("deleting responses on this backend")) })
    }

    /// How many input tokens `request` would be billed if it were sent (the
    /// server's count, `POST /responses/input_tokens`), without creating
    /// anything. The explorer prices a level with it before sending it.
    ///
    /// The default returns [`Error::Unsupported`]: Chat Completions has no
    /// such endpoint.
    fn count_input_tokens(&self, request: BackendRequest) -> BoxFuture<'_, Result<u64>> {
        let _ = request;
        Box::pin(async { Err(Error::Unsupported("counting input tokens on this backend")) })
    }
}

/// A shared backend is a backend, so one can be chosen at run time
/// (`Arc<dyn Backend>`) and handed to [`Engine::builder`](crate::Engine::builder).
impl<B: Backend + ?Sized> Backend for std::sync::Arc<B> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn is_stateful(&self) -> bool {
        (**self).is_stateful()
    }

    fn respond(&self, request: BackendRequest) -> BoxFuture<'_, Result<BackendReply>> {
        (**self).respond(request)
    }

    fn respond_stream(
        &self,
        request: BackendRequest,
        events: mpsc::UnboundedSender<BackendEvent>,
    ) -> BoxFuture<'_, Result<BackendReply>> {
        (**self).respond_stream(request, events)
    }

    fn reports_id_early(&self) -> bool {
        (**self).reports_id_early()
    }

    fn has_native_fan_out(&self) -> bool {
        (**self).has_native_fan_out()
    }

    fn supports_background(&self) -> bool {
        (**self).supports_background()
    }

    fn resume_stream(
        &self,
        id: &ResponseId,
        starting_after: Option<u64>,
        events: mpsc::UnboundedSender<BackendEvent>,
    ) -> BoxFuture<'_, Result<BackendReply>> {
        (**self).resume_stream(id, starting_after, events)
    }

    fn cancel(&self, id: &ResponseId) -> BoxFuture<'_, Result<BackendReply>> {
        (**self).cancel(id)
    }

    fn respond_n(
        &self,
        request: BackendRequest,
        n: usize,
    ) -> BoxFuture<'_, Result<Vec<BackendReply>>> {
        (**self).respond_n(request, n)
    }

    fn respond_n_stream(
        &self,
        request: BackendRequest,
        n: usize,
        events: mpsc::UnboundedSender<(usize, BackendEvent)>,
    ) -> BoxFuture<'_, Result<Vec<BackendReply>>> {
        (**self).respond_n_stream(request, n, events)
    }

    fn retrieve(&self, id: &ResponseId) -> BoxFuture<'_, Result<RetrievedResponse>> {
        (**self).retrieve(id)
    }

    fn delete(&self, id: &ResponseId) -> BoxFuture<'_, Result<()>> {
        (**self).delete(id)
    }

    fn count_input_tokens(&self, request: BackendRequest) -> BoxFuture<'_, Result<u64>> {
        (**self).count_input_tokens(request)
    }
}

/// What the engine asks a backend for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BackendRequest {
    /// The model to use.
    pub model: String,
    /// What the response continues.
    pub context: Context,
    /// The new input items of this request.
    pub input: Vec<Value>,
    /// Instructions for this request (never inherited by the server).
    pub instructions: Option<String>,
    /// Whether the server should store the response (`store`).
    pub store: bool,
    /// Metadata sent with the request.
    pub metadata: BTreeMap<String, String>,
    /// Upper bound on output tokens.
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Everything else on the create surface: tools, tool choice, reasoning,
    /// `include`, text format, `top_p`, … ([`RequestSettings`]). Where it also
    /// sets `max_output_tokens` or `temperature`, the fields above win.
    pub settings: RequestSettings,
    /// Background mode: the server answers at once and keeps working on the
    /// response whatever happens to the connection; a backend that
    /// [`supports_background`](Backend::supports_background) sends it with
    /// `background: true` (and streams it, so the id arrives first).
    pub background: bool,
}

impl BackendRequest {
    /// A request for `model` with `input` and no context.
    pub fn new(model: impl Into<String>, input: Vec<Value>) -> Self {
        Self {
            model: model.into(),
            context: Context::None,
            input,
            instructions: None,
            store: true,
            metadata: BTreeMap::new(),
            max_output_tokens: None,
            temperature: None,
            settings: RequestSettings::default(),
            background: false,
        }
    }

    /// The items the server will see for this request: the replayed transcript (if
    /// any) followed by the new input.
    pub fn full_input(&self) -> Vec<Value> {
        match &self.context {
            Context::Replay(items) => items.iter().chain(&self.input).cloned().collect(),
            Context::None | Context::Previous(_) => self.input.clone(),
        }
    }
}

/// Logs what a backend is about to send (DEBUG, target `resptree::backend`):
/// how the context travels (`none`, `previous` with the parent's response id,
/// or `replay` with the number of replayed items), the model and the number of
/// choices. Never the items themselves: they are the conversation's text.
pub(crate) fn trace_request(backend: &'static str, request: &BackendRequest, n: usize) {
    let (context, previous, replayed) = match &request.context {
        Context::None => ("none", None, 0),
        Context::Previous(id) => ("previous", Some(id.as_str()), 0),
        Context::Replay(items) => ("replay", None, items.len()),
    };
    tracing::debug!(
        target: "resptree::backend",
        backend,
        model = %request.model,
        context,
        previous,
        replayed,
        input = request.input.len(),
        n,
        "request"
    );
}

/// What a new response continues.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Context {
    /// Nothing: a new root.
    None,
    /// A response the server still holds (`previous_response_id`).
    Previous(ResponseId),
    /// The path's transcript, sent as explicit input before the new input.
    Replay(Vec<Value>),
}

/// A completed reply from a backend.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BackendReply {
    /// The server's id for the response, if the server has one.
    pub response_id: Option<ResponseId>,
    /// The output items, as raw JSON.
    pub output: Vec<Value>,
    /// The joined output text.
    pub output_text: String,
    /// The model that answered.
    pub model: Option<String>,
    /// How the response ended.
    pub status: NodeStatus,
    /// Token usage.
    pub usage: Usage,
    /// When the server created the response.
    pub created_at: Timestamp,
    /// Whether the server stored it.
    pub stored: bool,
}

/// A stored response fetched back from the server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetrievedResponse {
    /// The response itself.
    pub reply: BackendReply,
    /// The response it continued, if any.
    pub previous_response_id: Option<ResponseId>,
    /// The instructions it was created with.
    pub instructions: Option<String>,
    /// Its own input items (not the inherited context), oldest first.
    pub input: Vec<Value>,
    /// Its metadata.
    pub metadata: BTreeMap<String, String>,
    /// Whether the server is still working on it (`queued` or `in_progress`):
    /// `reply` is then not final (its status reads as failed).
    pub pending: bool,
}

/// Progress of a streamed response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendEvent {
    /// The server assigned the response its id.
    Started {
        /// The new response's id.
        response_id: ResponseId,
    },
    /// More output text.
    Delta(String),
    /// The server started working on the response (`response.in_progress`):
    /// it is no longer queued. Sent for background requests.
    Running,
    /// The `sequence_number` of the event just handled, sent after that
    /// event's other [`BackendEvent`]s: a dropped background stream resumes
    /// after the last one received
    /// ([`resume_stream`](Backend::resume_stream)), so nothing is reported
    /// twice. Sent for background requests.
    Sequence(u64),
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Replies "choice i" for choice i, natively.
    #[derive(Debug)]
    struct Numbered;

    fn reply(text: String) -> BackendReply {
        BackendReply {
            response_id: None,
            output: Vec::new(),
            output_text: text,
            model: Some("m".to_owned()),
            status: NodeStatus::Completed,
            usage: Usage::default(),
            created_at: Timestamp(0),
            stored: false,
        }
    }

    impl Backend for Numbered {
        fn name(&self) -> &str {
            "numbered"
        }

        fn is_stateful(&self) -> bool {
            false
        }

        fn respond(&self, _request: BackendRequest) -> BoxFuture<'_, Result<BackendReply>> {
            Box::pin(async { Ok(reply("choice 0".to_owned())) })
        }

        fn has_native_fan_out(&self) -> bool {
            true
        }

        fn respond_n(
            &self,
            _request: BackendRequest,
            n: usize,
        ) -> BoxFuture<'_, Result<Vec<BackendReply>>> {
            Box::pin(async move { Ok((0..n).map(|i| reply(format!("choice {i}"))).collect()) })
        }
    }

    #[tokio::test]
    async fn default_n_stream_reports_each_choice_once_by_index() {
        // Through `Arc<dyn Backend>`, which must delegate to the inner backend.
        let backend: Arc<dyn Backend> = Arc::new(Numbered);
        assert_eq!(backend.name(), "numbered");
        assert!(backend.has_native_fan_out());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let replies = backend
            .respond_n_stream(BackendRequest::new("m", Vec::new()), 3, tx)
            .await
            .unwrap();
        assert_eq!(replies.len(), 3);
        let mut events = Vec::new();
        while let Some(event) = rx.recv().await {
            events.push(event);
        }
        let expected: Vec<_> = (0..3)
            .map(|i| (i, BackendEvent::Delta(format!("choice {i}"))))
            .collect();
        assert_eq!(events, expected);
    }
}
