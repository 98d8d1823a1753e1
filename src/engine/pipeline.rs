//! The one request pipeline: plan → journal → permit → send → settle → commit.
//!
//! Every engine call that creates nodes — respond, branch, fan-out and both
//! streams — is an adapter that builds [`Plan`]s, picks a [`Call`] (how a plan is
//! sent) and hands them to [`Engine::run`]. The steps, once each:
//!
//! 1. **plan** ([`Engine::plan`]): read the parent, decide model, instructions and
//!    context (the server's copy of the parent, or a replay of the path);
//! 2. **journal**: write every attempt of the call in one store write, before
//!    anything is sent, so a crash can lose a request but not forget it;
//! 3. **permit**: wait for a slot under the engine's concurrency limit;
//! 4. **send**: ask the backend; if the server forgot the parent, replay the path
//!    and send again (or fail, per [`MissingParent`](super::MissingParent));
//! 5. **settle**: on failure, take the attempt out of the journal (the caller
//!    gets the error) — unless the request may have created a response: then
//!    look it up by the journaled id and record it, or leave the attempt for
//!    `recover` (never re-send: that could make a duplicate);
//! 6. **commit**: on success, record the nodes and remove the attempt in one
//!    atomic write.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::Value;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::journal::{InFlight, Journaled, Lookup};
use super::{Engine, FanOutUpdate, Instructions, RespondOptions, StreamUpdate};
use crate::backend::{BackendEvent, BackendReply, BackendRequest, Context};
use crate::error::{Error, Result};
use crate::ids::{NodeId, ResponseId};
use crate::node::{Node, Origin, Timestamp, ToolCall};
use crate::settings::{INCLUDE_REASONING_ENCRYPTED, is_reasoning_model};
use crate::store::{Attempt, AttemptParams};
use crate::tree::ResponseTree;

/// A request the engine has decided on but not yet sent.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) parent: Option<NodeId>,
    pub(super) request: BackendRequest,
    pub(super) options: RespondOptions,
    /// The parent's function calls, which every input must answer.
    pub(super) pending_calls: Vec<ToolCall>,
}

/// How a planned request is sent: the one thing in which respond, fan-out and
/// the streams differ.
#[derive(Debug)]
pub(super) enum Call {
    /// One response.
    One,
    /// One response, streamed: updates go to the sender as they arrive.
    Stream(mpsc::UnboundedSender<Result<StreamUpdate>>),
    /// `n` alternatives from one request (native fan-out).
    Native(usize),
    /// `n` alternatives from one request, streamed, deltas tagged by choice.
    NativeStream(usize, mpsc::UnboundedSender<Result<FanOutUpdate>>),
}

impl Call {
    /// How many alternatives one request asks for, for a native fan-out.
    fn choices(&self) -> Option<usize> {
        match self {
            Self::One | Self::Stream(_) => None,
            Self::Native(n) | Self::NativeStream(n, _) => Some(*n),
        }
    }
}

impl Engine {
    /// Runs `jobs` through the pipeline: journals all their attempts in one
    /// write, then sends them concurrently (bounded by the engine's limit) and
    /// commits each job's nodes as that job completes.
    ///
    /// The result has one entry per job, in job order; one job failing loses
    /// none of the others.
    ///
    /// # Errors
    ///
    /// The outer error is the journal write, before anything was sent.
    pub(super) async fn run(&self, jobs: Vec<(Plan, Call)>) -> Result<Vec<Result<Vec<Node>>>> {
        let attempts: Vec<Attempt> = jobs
            .iter()
            .map(|(plan, call)| plan.attempt(call.choices(), self.owner()))
            .collect();
        // Registered before the journal write, so that no `recover` running
        // meanwhile takes these attempts for stale ones.
        let guards: Vec<InFlight> = attempts.iter().map(|a| InFlight::register(a.id)).collect();
        self.inner.tree.journal_async(&attempts).await?;
        tracing::debug!(attempts = attempts.len(), "journaled");
        let runs =
            jobs.into_iter()
                .zip(attempts)
                .zip(guards)
                .map(|(((plan, call), attempt), guard)| {
                    let span = tracing::info_span!(
                        "resptree.engine.request",
                        attempt = %attempt.id,
                        parent = plan.parent.as_ref().map(tracing::field::display),
                        model = %plan.request.model,
                        replay = matches!(plan.request.context, Context::Replay(_)),
                        n = call.choices(),
                    );
                    self.run_one(plan, call, attempt, guard).instrument(span)
                });
        Ok(futures_util::future::join_all(runs).await)
    }

    /// Runs one job whose result is one node (respond, branch, a response stream).
    pub(super) async fn run_single(&self, plan: Plan, call: Call) -> Result<Node> {
        let mut results = self.run(vec![(plan, call)]).await?;
        let nodes = results
            .pop()
            .ok_or(Error::Internal("the pipeline returned no result for a job"))??;
        single(nodes)
    }

    /// Permit → send → settle → commit, for one journaled attempt.
    async fn run_one(
        &self,
        mut plan: Plan,
        call: Call,
        attempt: Attempt,
        _in_flight: InFlight,
    ) -> Result<Vec<Node>> {
        let _permit = self.permit().await?;
        // Until this request's last write, a group commit may wait a moment
        // for it to share a group with its siblings (see `group_commit`).
        let _writer = self.inner.tree.expect_writer();
        let group = call.choices().map(|_| NodeId::local());
        let seen = Journaled::new(&attempt);
        let sent = self.send(&mut plan, &call, &seen);
        match self.with_heartbeat(&seen, sent).await {
            Ok(replies) => {
                let nodes = self.nodes_from(&plan, replies, group.as_ref());
                let single = (nodes.len() == 1).then(|| nodes[0].id.clone());
                match self.commit(nodes, &attempt).await {
                    // Another process's `recover` adopted this response first
                    // (our lease had run out on a shared store): it is
                    // recorded once; settle and hand back that node.
                    Err(Error::InvalidTree(crate::TreeViolation::DuplicateNode(dup)))
                        if single.as_ref() == Some(&dup) =>
                    {
                        let id = attempt.id;
                        self.with_tree(move |tree| tree.settle(&[id])).await?;
                        Ok(vec![self.with_tree(move |tree| tree.get(&dup)).await?])
                    }
                    other => other,
                }
            }
            Err(mut err) => {
                // A short fan-out still records the choices that came back
                // (and settles the attempt with them); the caller gets the
                // error, which says how many were asked and received.
                let partial = err.take_partial_replies();
                if !partial.is_empty() {
                    let nodes = self.nodes_from(&plan, partial, group.as_ref());
                    self.commit(nodes, &attempt).await?;
                    return Err(err);
                }
                self.after_failure(&plan, &attempt, seen.response_id(), err)
                    .await
            }
        }
    }

    /// Decides what a failed request leaves. A failure that shows no response
    /// was made (an error status, a failed connection) settles the attempt. One
    /// after which the server may have made a response is never re-sent: with
    /// the response id in hand, the engine asks the server and records a
    /// finished answer as the node (the caller gets it as a success); without
    /// one, or while the server is still working or unreachable, the attempt
    /// stays journaled for [`Engine::recover`] and the caller gets
    /// [`Error::OutcomeUnknown`].
    async fn after_failure(
        &self,
        plan: &Plan,
        attempt: &Attempt,
        seen: Option<ResponseId>,
        err: Error,
    ) -> Result<Vec<Node>> {
        if !self.inner.backend.reports_id_early() || !err.may_have_reached_server() {
            self.settle(attempt, &err).await;
            return Err(err);
        }
        let unknown = |err: Error| Error::OutcomeUnknown {
            attempt: attempt.id,
            source: Box::new(err),
        };
        let Some(id) = seen else {
            tracing::warn!(error = %err, "the request may have created a response whose id never arrived");
            return Err(unknown(err));
        };
        tracing::info!(response = %id, error = %err, "request interrupted; looking the response up");
        match self.look_up(&id, self.inner.config.settle_wait).await {
            Lookup::Found(fetched) => {
                let node = self.node_from(plan, fetched.reply, None);
                let node_id = node.id.clone();
                if self.commit_once(node, attempt).await? {
                    tracing::info!(node = %node_id, "recorded the interrupted response");
                }
                let id = node_id.clone();
                Ok(vec![self.with_tree(move |tree| tree.get(&id)).await?])
            }
            Lookup::Gone(gone) => {
                self.settle(attempt, &gone).await;
                Err(err)
            }
            Lookup::Pending(_) => Err(unknown(err)),
        }
    }

    /// The nodes recording `replies` to `plan`; siblings of one native fan-out
    /// share a `group`.
    fn nodes_from(
        &self,
        plan: &Plan,
        replies: Vec<BackendReply>,
        group: Option<&NodeId>,
    ) -> Vec<Node> {
        replies
            .into_iter()
            .map(|reply| self.node_from(plan, reply, group.cloned()))
            .collect()
    }

    /// Decides the request for a new child of `parent`: model, instructions and
    /// whether the server can continue the parent or the path must be replayed.
    pub(super) async fn plan(
        &self,
        parent: Option<&NodeId>,
        input: Vec<Value>,
        options: &RespondOptions,
    ) -> Result<Plan> {
        let config = &self.inner.config;
        let parent_node = match parent {
            Some(id) => {
                let id = id.clone();
                Some(self.with_tree(move |tree| tree.get(&id)).await?)
            }
            None => None,
        };
        let instructions = match &options.instructions {
            Instructions::Inherit => parent_node.as_ref().and_then(|p| p.instructions.clone()),
            Instructions::Set(text) => Some(text.clone()),
            Instructions::None => None,
        };
        let pending_calls = parent_node
            .as_ref()
            .map(Node::pending_tool_calls)
            .unwrap_or_default();
        super::tools::check_answers(parent, &pending_calls, &input)?;
        let mut request = BackendRequest::new(
            options
                .model
                .clone()
                .unwrap_or_else(|| config.model.clone()),
            input,
        );
        request.instructions = instructions;
        request.store = !config.stateless && options.store.unwrap_or(true);
        request.metadata = options.metadata.clone();
        request.settings = settings_for(
            parent_node.as_ref(),
            options,
            &request.model,
            request.store,
            !pending_calls.is_empty(),
        );
        request.settings.validate()?;
        request.background = self.background_for(options, request.store)?;
        request.max_output_tokens = request.settings.max_output_tokens;
        request.temperature = request.settings.temperature;
        request.context = match &parent_node {
            None => Context::None,
            Some(p) => match self.server_parent(p) {
                Some(id) => Context::Previous(id),
                None => Context::Replay(self.transcript(&p.id, &request.model).await?),
            },
        };
        Ok(Plan {
            parent: parent_node.map(|p| p.id),
            request,
            options: options.clone(),
            pending_calls,
        })
    }

    /// The parent's server id, if the server can be asked to continue it.
    fn server_parent(&self, parent: &Node) -> Option<ResponseId> {
        if self.inner.config.stateless || !self.inner.backend.is_stateful() {
            return None;
        }
        let id = parent.origin.response_id.as_ref()?;
        if !parent.origin.stored || parent.origin.backend != self.inner.backend.name() {
            return None;
        }
        let forgotten = self.inner.forgotten.lock().is_ok_and(|f| f.contains(id));
        (!forgotten).then(|| id.clone())
    }

    /// The path to `id`, made safe to replay to `model` (see `replay.rs`).
    pub(super) async fn transcript(&self, id: &NodeId, model: &str) -> Result<Vec<Value>> {
        let id = id.clone();
        let model = model.to_owned();
        self.with_tree(move |tree| {
            let nodes = tree
                .path(&id)?
                .iter()
                .map(|step| tree.get(step))
                .collect::<Result<Vec<_>>>()?;
            Ok(super::replay::replay_items(&nodes, &model))
        })
        .await
    }

    pub(super) async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.inner.limit)
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("the engine's request limiter was closed"))
    }

    /// Sends `plan`; if the server no longer knows the parent and the policy
    /// allows, sends it again with the path replayed.
    async fn send(
        &self,
        plan: &mut Plan,
        call: &Call,
        seen: &Journaled,
    ) -> Result<Vec<BackendReply>> {
        match self.send_once(plan.request.clone(), call, seen).await {
            Ok(replies) => Ok(replies),
            Err(err) if err.is_previous_response_not_found() => {
                let Context::Previous(id) = &plan.request.context else {
                    return Err(err);
                };
                if self.inner.config.missing_parent == super::MissingParent::Error {
                    return Err(err);
                }
                let Some(parent) = plan.parent.clone() else {
                    return Err(err);
                };
                if let Ok(mut forgotten) = self.inner.forgotten.lock() {
                    forgotten.insert(id.clone());
                }
                let items = self.transcript(&parent, &plan.request.model).await?;
                tracing::info!(
                    forgotten = %id,
                    items = items.len(),
                    "the server forgot the parent; replaying the path"
                );
                plan.request.context = Context::Replay(items);
                // The first request's id (if the refusal came after
                // `response.created`) names a failed response: forget it, in
                // memory and in the journal, so that a cut in the replayed
                // request looks up the replayed response, not that one.
                if seen.response_id().is_some() {
                    let forget = |record: &mut Attempt| {
                        record.params.replay = true;
                        record.response_id = None;
                    };
                    if let Err(err) = seen.update(self, forget).await {
                        tracing::warn!(error = %err, "could not clear a refused response id");
                    }
                }
                self.send_once(plan.request.clone(), call, seen).await
            }
            Err(err) => Err(err),
        }
    }

    /// One request to the backend, the way `call` says. The server's response
    /// id, once reported, is journaled and kept in `seen`.
    async fn send_once(
        &self,
        request: BackendRequest,
        call: &Call,
        seen: &Journaled,
    ) -> Result<Vec<BackendReply>> {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let backend = &*self.inner.backend;
        if request.background {
            return self.send_background(request, call, seen).await;
        }
        match call {
            // Streamed under the hood, only to learn (and journal) the
            // response id before the answer completes.
            Call::One if backend.reports_id_early() => {
                let (events, mut received) = mpsc::unbounded_channel();
                let forward = async {
                    while let Some(event) = received.recv().await {
                        if let BackendEvent::Started { response_id } = event {
                            self.note_response_id(seen, response_id).await;
                        }
                    }
                };
                let (reply, ()) = tokio::join!(backend.respond_stream(request, events), forward);
                Ok(vec![reply?])
            }
            Call::One => Ok(vec![backend.respond(request).await?]),
            Call::Native(n) => backend.respond_n(request, *n).await,
            Call::Stream(updates) => {
                let (events, mut received) = mpsc::unbounded_channel();
                // Forward events as they arrive; the forwarding future is polled
                // together with the request so deltas reach the caller live.
                let forward = async {
                    while let Some(event) = received.recv().await {
                        match event {
                            BackendEvent::Started { response_id } => {
                                self.note_response_id(seen, response_id.clone()).await;
                                let _ = updates.send(Ok(StreamUpdate::Started(response_id)));
                            }
                            BackendEvent::Delta(text) => {
                                let _ = updates.send(Ok(StreamUpdate::Delta(text)));
                            }
                            _ => {}
                        }
                    }
                };
                let (reply, ()) = tokio::join!(backend.respond_stream(request, events), forward);
                Ok(vec![reply?])
            }
            Call::NativeStream(n, updates) => {
                let (events, mut received) = mpsc::unbounded_channel();
                let forward = async {
                    while let Some((index, event)) = received.recv().await {
                        // A native fan-out has no per-choice server id to report.
                        if let BackendEvent::Delta(text) = event {
                            let _ = updates.send(Ok(FanOutUpdate::Delta { index, text }));
                        }
                    }
                };
                let (replies, ()) =
                    tokio::join!(backend.respond_n_stream(request, *n, events), forward);
                replies
            }
        }
    }

    /// Records the server's id for an attempt as soon as it is known: in
    /// `seen`, for this request to look the response up if it is cut off, and
    /// durably in the journal (renewing the lease), for `recover` after a
    /// crash. The stream keeps flowing meanwhile (events queue in an unbounded
    /// channel); the commit waits for this write, so it can never put back an
    /// attempt the commit removed.
    pub(super) async fn note_response_id(&self, seen: &Journaled, response_id: ResponseId) {
        let logged = response_id.clone();
        // Not fatal if it fails: the node is still committed on completion,
        // and a cut-off request still has the id in `seen`; only a crash
        // before then would miss it.
        match seen
            .update(self, |record| record.response_id = Some(response_id))
            .await
        {
            Ok(()) => tracing::debug!(response = %logged, "journaled the response id"),
            Err(err) => tracing::warn!(error = %err, "could not journal a response id"),
        }
    }

    /// Removes the attempt of a request that failed with `err` (the caller
    /// gets the error).
    async fn settle(&self, attempt: &Attempt, err: &Error) {
        tracing::info!(error = %err, "request failed");
        let id = attempt.id;
        // Best effort: if this write fails too, recover() reports the attempt
        // later.
        if let Err(settle) = self.with_tree(move |tree| tree.settle(&[id])).await {
            tracing::warn!(error = %settle, "could not settle a failed attempt");
        }
    }

    /// Commits `nodes` and removes `attempt`, in one atomic write.
    pub(super) async fn commit(&self, nodes: Vec<Node>, attempt: &Attempt) -> Result<Vec<Node>> {
        // Not through `with_tree`: a fan-out's children wait for their group
        // commit without each holding a blocking-pool thread.
        self.inner
            .tree
            .commit_async(nodes.clone(), &[attempt.id])
            .await?;
        let committed = nodes;
        for node in &committed {
            tracing::info!(
                node = %node.id,
                input_tokens = node.usage.input_tokens,
                output_tokens = node.usage.output_tokens,
                "committed"
            );
        }
        Ok(committed)
    }

    /// The node recording `reply` to `plan`.
    fn node_from(&self, plan: &Plan, reply: BackendReply, group: Option<NodeId>) -> Node {
        let id = reply
            .response_id
            .as_ref()
            .map_or_else(NodeId::local, NodeId::from);
        let mut node = Node::new(id, plan.parent.clone());
        node.extra_context = plan.options.extra_context.clone();
        node.input = plan.request.input.clone();
        node.output = reply.output;
        node.output_text = reply.output_text;
        node.model = reply.model;
        node.instructions = plan.request.instructions.clone();
        node.status = reply.status;
        node.usage = reply.usage;
        node.usage.shared_input_group = group;
        node.metadata = plan.request.metadata.clone();
        node.settings = plan.request.settings.clone();
        node.labels = plan.options.labels.clone();
        node.origin = Origin::backend(self.inner.backend.name());
        node.origin.response_id = reply.response_id;
        node.origin.previous_response_id = match &plan.request.context {
            Context::Previous(id) => Some(id.clone()),
            _ => None,
        };
        node.origin.replayed = matches!(plan.request.context, Context::Replay(_));
        node.origin.stored = reply.stored && node.origin.response_id.is_some();
        if node.origin.stored {
            node.origin.expires_at = Some(self.expiry_of(reply.created_at));
        }
        node
    }

    /// When the server's copy of a response created at `created_at` expires.
    pub(super) fn expiry_of(&self, created_at: Timestamp) -> Timestamp {
        let retention = i64::try_from(self.inner.config.retention.as_millis()).unwrap_or(i64::MAX);
        Timestamp(created_at.as_millis().saturating_add(retention))
    }

    /// Runs `f` against the tree on the blocking pool, so store IO never runs on
    /// async workers; in place if the store never blocks (the in-memory one).
    pub(crate) async fn with_tree<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ResponseTree) -> Result<T> + Send + 'static,
    {
        if !self.inner.tree.is_blocking() {
            return f(&self.inner.tree);
        }
        let tree = Arc::clone(&self.inner.tree);
        tokio::task::spawn_blocking(move || f(&tree))
            .await
            .map_err(|e| Error::storage("running a store task", e))?
    }
}

/// The settings a new child of `parent` is sent with: the parent's (unless the
/// call starts fresh), overlaid with the call's, with `include` completed.
///
/// Two inherited settings are not passed on as they are, because the API would
/// make them wrong for the child:
/// - a `tool_choice` that forced a call (`required`, or one function) is not
///   inherited by the turn that answers those calls (`answers_calls`): it would
///   force the call again on every turn, a tool loop without end. The server's
///   default (`auto`) applies instead, unless the call sets a choice itself;
/// - `reasoning`, and the `reasoning.encrypted_content` include, are not
///   inherited by a child sent to another model that is not a reasoning model
///   by name ([`is_reasoning_model`]): such models refuse both.
///
/// The `include` rule: `reasoning.encrypted_content` is asked for whenever a
/// reasoning model's node may have to be replayed with its reasoning: when the
/// server will not store it (`store: false`, stateless mode), or when the
/// request sets `reasoning` (its stored copy may still be forgotten or
/// expire). Models that do not reason refuse that include, so it is never
/// added for them. Without it, a replay would have to drop the reasoning items.
fn settings_for(
    parent: Option<&Node>,
    options: &RespondOptions,
    model: &str,
    store: bool,
    answers_calls: bool,
) -> crate::settings::RequestSettings {
    use crate::settings::{RequestSettings, ToolChoice};
    let mut inherited = match parent {
        Some(p) if !options.fresh_settings => p.settings.clone(),
        _ => RequestSettings::default(),
    };
    if answers_calls
        && matches!(
            inherited.tool_choice,
            Some(ToolChoice::Required | ToolChoice::Function(_))
        )
    {
        inherited.tool_choice = None;
    }
    let parent_model = parent.and_then(|p| p.model.as_deref());
    if parent_model != Some(model) && !is_reasoning_model(model) {
        inherited.reasoning = None;
        // The include came with the reasoning model; this one would refuse it.
        if let Some(include) = &mut inherited.include {
            include.retain(|i| i != INCLUDE_REASONING_ENCRYPTED);
            if include.is_empty() {
                inherited.include = None;
            }
        }
    }
    let mut settings = inherited.overlay(&options.settings);
    if options.max_output_tokens.is_some() {
        settings.max_output_tokens = options.max_output_tokens;
    }
    if options.temperature.is_some() {
        settings.temperature = options.temperature;
    }
    if settings.reasoning.is_some() || (!store && is_reasoning_model(model)) {
        settings = settings.include(INCLUDE_REASONING_ENCRYPTED);
    }
    settings
}

impl Plan {
    /// Replaces the plan's new input (a branch's other children), checking that
    /// it answers the parent's function calls.
    pub(super) fn set_input(&mut self, input: Vec<Value>) -> Result<()> {
        super::tools::check_answers(self.parent.as_ref(), &self.pending_calls, &input)?;
        self.request.input = input;
        Ok(())
    }

    /// The journal entry for this plan, before it is sent.
    fn attempt(&self, n: Option<usize>, owner: crate::store::AttemptOwner) -> Attempt {
        let params = AttemptParams {
            model: self.request.model.clone(),
            instructions: self.request.instructions.clone(),
            store: self.request.store,
            replay: matches!(self.request.context, Context::Replay(_)),
            metadata: self.request.metadata.clone(),
            labels: self.options.labels.clone(),
            extra_context: self.options.extra_context.clone(),
            n,
            settings: self.request.settings.clone(),
        };
        let mut attempt = Attempt::new(self.parent.clone(), self.request.input.clone(), params);
        attempt.owner = Some(owner);
        attempt
    }
}

/// The one node of a job that makes one.
pub(super) fn single(mut nodes: Vec<Node>) -> Result<Node> {
    match (nodes.pop(), nodes.is_empty()) {
        (Some(node), true) => Ok(node),
        _ => Err(Error::Internal(
            "a single-response job committed other than one node",
        )),
    }
}
