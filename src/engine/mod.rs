//! The branching engine: the one place that asks a [`Backend`] for responses and
//! records them in a [`ResponseTree`].
//!
//! Every method that creates nodes commits each node to the store in one atomic
//! write *after* its response is complete, so dropping any future the engine
//! returns is safe: a cancelled request leaves no half-written node, only (at
//! worst) an entry in the attempt journal — with the server's response id, once
//! it was announced — that [`Engine::recover`] adopts (recording what the
//! server finished, once) or reports.
//!
//! All of them run through one request pipeline (`pipeline.rs`: plan → journal
//! → permit → send → settle → commit); the public methods only build the
//! requests and pick how they are sent.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::ids::{NodeId, ResponseId};
use crate::node::{Node, Timestamp, message_item};
use crate::settings::{Reasoning, RequestSettings, TextFormat, Tool, ToolChoice};
use crate::tree::ResponseTree;

mod accounting;
mod background;
mod count;
mod fan_out_stream;
mod journal;
mod maintenance;
mod pipeline;
mod replay;
mod stream;
mod task_stream;
mod tools;

use pipeline::Call;

pub use accounting::UsageTotals;
pub use background::MAX_REISSUES;
pub use fan_out_stream::{FanOutStream, FanOutUpdate};
pub use journal::RecoveryReport;
pub use maintenance::{AdoptReport, PruneReport};
pub use stream::{NodeStream, StreamUpdate};

/// How long the Responses API keeps stored responses by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The model used when neither the engine nor the call names one.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// The default bound on requests in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// Creates responses and records them as nodes: respond, branch, fan out,
/// stream, merge, adopt, prune, recover.
///
/// `Engine` is a cheap handle (`Clone` over an `Arc`): share one between tasks.
///
/// ```no_run
/// # async fn demo() -> resptree::Result<()> {
/// use resptree::{Engine, ResponseTree};
/// use resptree::backend::ResponsesBackend;
/// use resptree::client::Client;
///
/// let tree = ResponseTree::open("trip.db")?;
/// let engine = Engine::builder(tree, ResponsesBackend::new(Client::from_env()?)).build()?;
/// let root = engine.respond(None, "Plan a weekend in Paris").await?;
/// let results = engine
///     .branch(&root.id, ["Reply as a formal travel agent", "Reply as a funny travel buddy"])
///     .await?;
/// for child in results {
///     println!("{}", child?.output_text);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tree: Arc<ResponseTree>,
    backend: Arc<dyn Backend>,
    config: EngineConfig,
    limit: Arc<Semaphore>,
    requests: AtomicU64,
    /// Response ids the server has told us it no longer knows, so later children
    /// of the same parent go straight to replay.
    forgotten: Mutex<HashSet<ResponseId>>,
}

/// What the engine does when a parent has no usable server copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissingParent {
    /// Replay the parent's path from the local transcript as explicit input.
    #[default]
    Replay,
    /// Return the server's error.
    Error,
}

/// Engine-wide settings; see [`EngineBuilder`] for the defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// The model for calls that don't name one.
    pub model: String,
    /// How many requests may be in flight at once, across all calls.
    pub concurrency: usize,
    /// What to do when a parent has no usable server copy.
    pub missing_parent: MissingParent,
    /// Never store responses on the server; always replay the path.
    pub stateless: bool,
    /// How long the server keeps stored responses.
    pub retention: Duration,
    /// How long this process holds an attempt against other processes'
    /// recovery on a shared store ([`AttemptOwner`](crate::store::AttemptOwner));
    /// renewed when the response id is journaled and then every third of the
    /// lease while the request runs, so a request may outlive it; a process
    /// stalled for longer than two thirds of it may lose its attempts to
    /// another process's recovery (which still records each response once).
    pub attempt_lease: Duration,
    /// How long to wait, polling, for a response the server is still working
    /// on when its connection was lost (or when `recover` finds it), before
    /// leaving it in the journal for a later `recover`.
    pub settle_wait: Duration,
    /// Run every call in background mode unless the call says otherwise
    /// ([`RespondOptions::background`]). Default: off.
    pub background: bool,
    /// How long a background response may stay `queued` before it is
    /// cancelled and sent again (see [`EngineBuilder::queued_timeout`]).
    pub queued_timeout: Duration,
    /// How many times in a row a dropped background stream is resumed without
    /// bringing a new event, before the call gives up on following it (and
    /// looks the response up, or leaves it for `recover`).
    pub stream_resumes: u32,
}

/// The default [`EngineConfig::queued_timeout`]: 10 minutes.
pub const DEFAULT_QUEUED_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The default [`EngineConfig::stream_resumes`]: 5.
pub const DEFAULT_STREAM_RESUMES: u32 = 5;

/// The default [`EngineConfig::attempt_lease`]: 30 minutes, above the client's
/// default 10-minute request timeout.
pub const DEFAULT_ATTEMPT_LEASE: Duration = Duration::from_secs(30 * 60);

/// The default [`EngineConfig::settle_wait`]: 2 minutes.
pub const DEFAULT_SETTLE_WAIT: Duration = Duration::from_secs(120);

/// Builds an [`Engine`].
#[derive(Debug)]
#[must_use]
pub struct EngineBuilder {
    tree: Arc<ResponseTree>,
    backend: Arc<dyn Backend>,
    config: EngineConfig,
}

impl Engine {
    /// Starts building an engine that records into `tree` and asks `backend`.
    ///
    /// `tree` may be a `ResponseTree` or an `Arc<ResponseTree>`: engines with
    /// different backends can share one tree (a branch started on one backend can
    /// be continued on another, by replay).
    pub fn builder(
        tree: impl Into<Arc<ResponseTree>>,
        backend: impl Backend + 'static,
    ) -> EngineBuilder {
        EngineBuilder {
            tree: tree.into(),
            backend: Arc::new(backend),
            config: EngineConfig {
                model: DEFAULT_MODEL.to_owned(),
                concurrency: DEFAULT_CONCURRENCY,
                missing_parent: MissingParent::Replay,
                stateless: false,
                retention: DEFAULT_RETENTION,
                attempt_lease: DEFAULT_ATTEMPT_LEASE,
                settle_wait: DEFAULT_SETTLE_WAIT,
                background: false,
                queued_timeout: DEFAULT_QUEUED_TIMEOUT,
                stream_resumes: DEFAULT_STREAM_RESUMES,
            },
        }
    }

    /// The tree the engine records into.
    pub fn tree(&self) -> &ResponseTree {
        &self.inner.tree
    }

    /// The backend the engine asks.
    pub fn backend(&self) -> &dyn Backend {
        &*self.inner.backend
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// How many requests this engine has sent to its backend (retries inside the
    /// HTTP client count once; a replay after "previous response not found" counts
    /// twice).
    pub fn requests_made(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// One response continuing `parent` (or a new root when `None`) with a user
    /// message `text`. The node is committed to the store before this returns.
    ///
    /// Cancel safety: dropping the future abandons the request; no node is
    /// recorded, and the attempt stays in the journal (with the response id if
    /// the server had announced it) for [`Engine::recover`] to adopt.
    ///
    /// # Errors
    ///
    /// The backend's error; [`Error::OutcomeUnknown`] when the request may have
    /// created a response that could not be confirmed (it is not re-sent).
    pub async fn respond(&self, parent: Option<&NodeId>, text: &str) -> Result<Node> {
        self.respond_with(
            parent,
            vec![message_item("user", text)],
            &RespondOptions::default(),
        )
        .await
    }

    /// One response continuing `parent` with arbitrary input items and options.
    ///
    /// Cancel safety: as [`Engine::respond`].
    pub async fn respond_with(
        &self,
        parent: Option<&NodeId>,
        input: Vec<Value>,
        options: &RespondOptions,
    ) -> Result<Node> {
        let plan = self.plan(parent, input, options).await?;
        self.run_single(plan, Call::One).await
    }

    /// One child of `parent` per text, sent concurrently (bounded by the engine's
    /// concurrency limit), all reusing the same parent. Each child is committed as
    /// it completes; the result has one entry per input, in input order, so one
    /// failing child loses none of the others.
    ///
    /// Cancel safety: dropping the future cancels the requests still in flight;
    /// children already committed stay.
    pub async fn branch<I, S>(&self, parent: &NodeId, texts: I) -> Result<Vec<Result<Node>>>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let inputs = texts
            .into_iter()
            .map(|t| vec![message_item("user", t.as_ref())])
            .collect();
        self.branch_with(Some(parent), inputs, &RespondOptions::default())
            .await
    }

    /// Like [`Engine::branch`], with arbitrary input items and options.
    pub async fn branch_with(
        &self,
        parent: Option<&NodeId>,
        inputs: Vec<Vec<Value>>,
        options: &RespondOptions,
    ) -> Result<Vec<Result<Node>>> {
        let Some(base) = inputs.first() else {
            return Ok(Vec::new());
        };
        // One plan (one parent read, one transcript) serves every child.
        let base = self.plan(parent, base.clone(), options).await?;
        // Every input is checked before anything is sent.
        let mut jobs = Vec::with_capacity(inputs.len());
        for input in inputs {
            let mut plan = base.clone();
            plan.set_input(input)?;
            jobs.push((plan, Call::One));
        }
        let results = self.run(jobs).await?;
        Ok(results
            .into_iter()
            .map(|nodes| nodes.and_then(pipeline::single))
            .collect())
    }

    /// `n` alternative answers to the same input under `parent` ("regenerate").
    ///
    /// A backend with native fan-out (Chat Completions `n`) makes them in one
    /// request; otherwise `n` requests are sent concurrently.
    ///
    /// # Errors
    ///
    /// With native fan-out, [`Error::FanOutShort`] if the server returned fewer
    /// than `n` choices (some compatible servers ignore `n`): the choices that
    /// did come back are recorded as siblings all the same, and the error says
    /// how many were asked and received. Otherwise the errors of the plan (an
    /// unknown parent, a store error) and of the request.
    ///
    /// Cancel safety: as [`Engine::branch`].
    pub async fn fan_out(
        &self,
        parent: Option<&NodeId>,
        text: &str,
        n: usize,
    ) -> Result<Vec<Result<Node>>> {
        self.fan_out_with(
            parent,
            vec![message_item("user", text)],
            n,
            &RespondOptions::default(),
        )
        .await
    }

    /// Like [`Engine::fan_out`], with arbitrary input items and options.
    pub async fn fan_out_with(
        &self,
        parent: Option<&NodeId>,
        input: Vec<Value>,
        n: usize,
        options: &RespondOptions,
    ) -> Result<Vec<Result<Node>>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        if self.inner.backend.has_native_fan_out() {
            let plan = self.plan(parent, input, options).await?;
            let nodes = self
                .run(vec![(plan, Call::Native(n))])
                .await?
                .pop()
                .ok_or(Error::Internal("the pipeline returned no result for a job"))??;
            return Ok(nodes.into_iter().map(Ok).collect());
        }
        self.branch_with(parent, vec![input; n], options).await
    }

    /// Streams one response continuing `parent`: text deltas as they arrive, then
    /// the committed node. See [`NodeStream`].
    pub fn respond_stream(
        &self,
        parent: Option<&NodeId>,
        text: &str,
        options: &RespondOptions,
    ) -> NodeStream {
        stream::start(
            self.clone(),
            parent.cloned(),
            vec![message_item("user", text)],
            options.clone(),
        )
    }

    /// Streams `n` alternative answers to `text` under `parent` from one request
    /// (Chat Completions `n`): deltas tagged with their choice index as they
    /// arrive, then the `n` sibling nodes, committed together. See
    /// [`FanOutStream`].
    ///
    /// The stream yields [`Error::Unsupported`] on a backend without native
    /// fan-out ([`Engine::fan_out`] works there, as `n` requests), and
    /// [`Error::Config`] from the Chat backend if `n` is above 128, and
    /// [`Error::FanOutShort`] if fewer than `n` choices came back (those that did
    /// are recorded, as with [`Engine::fan_out`]). With `n == 0` it sends
    /// nothing and commits no node.
    ///
    /// Cancel safety: dropping the stream cancels the request; no node is
    /// recorded.
    pub fn fan_out_stream(
        &self,
        parent: Option<&NodeId>,
        text: &str,
        n: usize,
        options: &RespondOptions,
    ) -> FanOutStream {
        fan_out_stream::start(
            self.clone(),
            parent.cloned(),
            vec![message_item("user", text)],
            n,
            options.clone(),
        )
    }

    /// A new node that continues branch `a` and is given, as explicit input, what
    /// branch `b` said since the two diverged, followed by `instruction`. The node
    /// records `b` as extra context, so both histories stay visible.
    pub async fn merge(&self, a: &NodeId, b: &NodeId, instruction: &str) -> Result<Node> {
        let (a2, b2) = (a.clone(), b.clone());
        let other = self
            .with_tree(move |tree| {
                let diff = tree.diff(&a2, &b2)?;
                let mut parts = Vec::new();
                for id in &diff.right {
                    let node = tree.get(id)?;
                    if let Some(user) = node.user_text() {
                        parts.push(format!("User: {user}"));
                    }
                    parts.push(format!("Assistant: {}", node.output_text));
                }
                Ok(parts.join("\n\n"))
            })
            .await?;
        let text = format!(
            "Here is another branch of this conversation, from where it diverged:\n\n{other}\n\n{instruction}"
        );
        let options = RespondOptions {
            extra_context: vec![b.clone()],
            ..RespondOptions::default()
        };
        self.respond_with(Some(a), vec![message_item("user", &text)], &options)
            .await
    }

    /// Token totals of one node, of the path from its root to it, or of the
    /// subtree under it. See [`UsageTotals`].
    pub async fn usage(&self, id: &NodeId, scope: UsageScope) -> Result<UsageTotals> {
        let id = id.clone();
        self.with_tree(move |tree| accounting::totals(tree, &id, scope))
            .await
    }

    /// What one node, the path from its root to it, or the subtree under it
    /// cost at `prices` (judges' usage recorded in score annotations
    /// included). See [`ResponseTree::cost`]; no request is sent.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the tree; store errors while
    /// reading bodies or annotations.
    pub async fn cost(
        &self,
        id: &NodeId,
        scope: UsageScope,
        prices: &crate::cost::PriceTable,
    ) -> Result<crate::cost::Cost> {
        let (id, prices) = (id.clone(), prices.clone());
        self.with_tree(move |tree| accounting::cost(tree, &id, scope, &prices))
            .await
    }

    /// Nodes whose server copy expires within `within` from now (stored responses
    /// are kept for [`EngineConfig::retention`]), soonest first.
    pub async fn expiring(&self, within: Duration) -> Result<Vec<(NodeId, Timestamp)>> {
        let horizon = Timestamp::now()
            .as_millis()
            .saturating_add(i64::try_from(within.as_millis()).unwrap_or(i64::MAX));
        self.with_tree(move |tree| {
            let ids: Vec<NodeId> = tree.graph().ids().cloned().collect();
            let mut out = Vec::new();
            for id in ids {
                let node = tree.get(&id)?;
                if let Some(at) = node.origin.expires_at {
                    if node.origin.stored && at.as_millis() <= horizon {
                        out.push((id, at));
                    }
                }
            }
            out.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            Ok(out)
        })
        .await
    }
}

impl EngineBuilder {
    /// The model for calls that don't name one. Default: [`DEFAULT_MODEL`].
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.config.model = model.into();
        self
    }

    /// How many requests may be in flight at once. Default: [`DEFAULT_CONCURRENCY`].
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.config.concurrency = limit;
        self
    }

    /// What to do when a parent has no usable server copy. Default: replay.
    pub fn missing_parent(mut self, policy: MissingParent) -> Self {
        self.config.missing_parent = policy;
        self
    }

    /// Stateless mode: `store: false` on every request and the path always
    /// replayed, for users who cannot keep data on the server. Default: off.
    pub fn stateless(mut self, on: bool) -> Self {
        self.config.stateless = on;
        self
    }

    /// How long the server keeps stored responses. Default: [`DEFAULT_RETENTION`].
    pub fn retention(mut self, retention: Duration) -> Self {
        self.config.retention = retention;
        self
    }

    /// How long this process holds its attempts against other processes'
    /// recovery on a shared store. Default: [`DEFAULT_ATTEMPT_LEASE`].
    pub fn attempt_lease(mut self, lease: Duration) -> Self {
        self.config.attempt_lease = lease;
        self
    }

    /// How long to poll a response the server is still working on after its
    /// connection was lost, or when `recover` finds it. Default:
    /// [`DEFAULT_SETTLE_WAIT`].
    pub fn settle_wait(mut self, wait: Duration) -> Self {
        self.config.settle_wait = wait;
        self
    }

    /// Runs every call in background mode (`background: true`) unless the
    /// call's [`RespondOptions::background`] says otherwise: the server keeps
    /// working when the connection drops, the engine resumes dropped streams
    /// and re-issues responses stuck in the queue, and a dropped call's
    /// response is left for [`Engine::recover`]. For slow reasoning models.
    /// Needs a backend that
    /// [`supports_background`](crate::backend::Backend::supports_background)
    /// (the Responses one) and stored responses. Default: off.
    pub fn background(mut self, on: bool) -> Self {
        self.config.background = on;
        self
    }

    /// How long a background response may stay `queued` before the engine
    /// cancels it and, once the server confirms the cancel, sends the request
    /// again (at most [`MAX_REISSUES`] times). Default:
    /// [`DEFAULT_QUEUED_TIMEOUT`].
    pub fn queued_timeout(mut self, timeout: Duration) -> Self {
        self.config.queued_timeout = timeout;
        self
    }

    /// How many times in a row a dropped background stream is resumed without
    /// bringing a new event. Pauses between resumes start at 100 ms and double
    /// up to 5 s; a resume that brings events starts the count again. Default:
    /// [`DEFAULT_STREAM_RESUMES`].
    pub fn stream_resumes(mut self, resumes: u32) -> Self {
        self.config.stream_resumes = resumes;
        self
    }

    /// Builds the engine.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the concurrency limit is 0 or the model is empty.
    pub fn build(self) -> Result<Engine> {
        if self.config.concurrency == 0 {
            return Err(Error::config("concurrency must be at least 1"));
        }
        if self.config.model.trim().is_empty() {
            return Err(Error::config("model must not be empty"));
        }
        Ok(Engine {
            inner: Arc::new(Inner {
                limit: Arc::new(Semaphore::new(self.config.concurrency)),
                tree: self.tree,
                backend: self.backend,
                config: self.config,
                requests: AtomicU64::new(0),
                forgotten: Mutex::new(HashSet::new()),
            }),
        })
    }
}

/// Per-call options for [`Engine::respond_with`] and friends.
///
/// Build them with the methods; every field has one.
///
/// ```
/// use resptree::engine::RespondOptions;
/// let options = RespondOptions::default()
///     .model("gpt-4o-mini")
///     .instructions("Answer in one sentence.")
///     .max_output_tokens(200)
///     .temperature(0.2)
///     .label("draft")
///     .metadata("experiment", "7");
/// assert_eq!(options.max_output_tokens, Some(200));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RespondOptions {
    /// The model; default: the engine's.
    pub model: Option<String>,
    /// Which instructions to send; default: the parent's.
    pub instructions: Instructions,
    /// Metadata to send and record.
    pub metadata: BTreeMap<String, String>,
    /// Labels to record on the new node.
    pub labels: BTreeSet<String>,
    /// Upper bound on output tokens.
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Whether the server stores the response; default: yes (never in stateless mode).
    pub store: Option<bool>,
    /// Nodes whose content this request includes as explicit input (recorded as
    /// extra-context edges).
    pub extra_context: Vec<NodeId>,
    /// Request settings (tools, tool choice, reasoning, text format, …) for this
    /// call, laid over the inherited ones field by field
    /// ([`RequestSettings::overlay`]). `max_output_tokens` and `temperature`
    /// above, when set, win over the same fields here.
    pub settings: RequestSettings,
    /// Start from no settings instead of the parent's. Default: inherit, since
    /// the server never carries settings over `previous_response_id`.
    pub fresh_settings: bool,
    /// Background mode for this call ([`EngineBuilder::background`]); default:
    /// the engine's setting.
    pub background: Option<bool>,
}

impl RespondOptions {
    /// Sends `text` as instructions instead of the parent's.
    #[must_use]
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.instructions = Instructions::Set(text.into());
        self
    }

    /// Uses `model` for this call.
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Adds a label to the new node.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.labels.insert(label.into());
        self
    }

    /// Sends no instructions, even if the parent had some.
    #[must_use]
    pub fn without_instructions(mut self) -> Self {
        self.instructions = Instructions::None;
        self
    }

    /// Sends the parent's instructions (the default).
    #[must_use]
    pub fn inherit_instructions(mut self) -> Self {
        self.instructions = Instructions::Inherit;
        self
    }

    /// Adds a metadata pair.
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Bounds the response's output tokens.
    #[must_use]
    pub fn max_output_tokens(mut self, limit: u32) -> Self {
        self.max_output_tokens = Some(limit);
        self
    }

    /// Sets the sampling temperature.
    #[must_use]
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Whether the server stores the response (ignored in stateless mode, which
    /// never stores). A response stored with `false` can only be continued by
    /// replay.
    #[must_use]
    pub fn store(mut self, store: bool) -> Self {
        self.store = Some(store);
        self
    }

    /// Sets this call's request settings (replacing any set before), laid over
    /// the inherited ones.
    #[must_use]
    pub fn settings(mut self, settings: RequestSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Adds a tool for this call (the parent's tools are inherited unless this
    /// call sets a tool list: then this list replaces them).
    #[must_use]
    pub fn tool(mut self, tool: impl Into<Tool>) -> Self {
        self.settings = self.settings.tool(tool);
        self
    }

    /// Sets `tool_choice` for this call.
    #[must_use]
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.settings = self.settings.tool_choice(choice);
        self
    }

    /// Sets the reasoning settings for this call.
    #[must_use]
    pub fn reasoning(mut self, reasoning: Reasoning) -> Self {
        self.settings = self.settings.reasoning(reasoning);
        self
    }

    /// Sets the output format (`text.format`) for this call.
    #[must_use]
    pub fn text_format(mut self, format: TextFormat) -> Self {
        self.settings = self.settings.text_format(format);
        self
    }

    /// Runs this call in background mode, or not, whatever the engine's
    /// setting ([`EngineBuilder::background`]).
    ///
    /// ```
    /// use resptree::engine::RespondOptions;
    /// let options = RespondOptions::default().background(true);
    /// assert_eq!(options.background, Some(true));
    /// ```
    #[must_use]
    pub fn background(mut self, on: bool) -> Self {
        self.background = Some(on);
        self
    }

    /// Starts from no settings instead of inheriting the parent's.
    #[must_use]
    pub fn fresh_settings(mut self) -> Self {
        self.fresh_settings = true;
        self
    }

    /// Gives the request `node`'s content as extra context, recorded as an
    /// extra-context edge (what [`Engine::merge`] does).
    #[must_use]
    pub fn extra_context(mut self, node: NodeId) -> Self {
        self.extra_context.push(node);
        self
    }
}

/// Which instructions a new node is sent with.
///
/// The server never carries instructions over from `previous_response_id`, so the
/// engine re-sends the branch's instructions itself unless told otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Instructions {
    /// The parent's instructions (none for a root).
    #[default]
    Inherit,
    /// These instructions.
    Set(String),
    /// No instructions.
    None,
}

/// Which nodes [`Engine::usage`] adds up (and [`Engine::cost`] prices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageScope {
    /// The node alone.
    Node,
    /// The path from its root to the node.
    Path,
    /// The node and everything under it.
    Subtree,
}
