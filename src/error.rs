//! The one error type of the library, and its `Result` alias.
//!
//! Variants are named for *what resptree was doing* when it failed. Each keeps the
//! context a caller needs to act (the HTTP status and server error object, the
//! store key of a corrupt record, the id that was not found) and chains its cause
//! through [`std::error::Error::source`]. No variant ever holds an API key, and
//! transport errors are stripped of their URL before they are wrapped.

use std::fmt;
use std::time::Duration;

use crate::backend::BackendReply;
use crate::ids::{NodeId, RefName, ResponseId};
use crate::store::AttemptId;

/// A boxed cause, so that no third-party error type becomes part of our public API.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result<T, resptree::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in resptree.
///
/// The enum is `#[non_exhaustive]`: match the variants you handle and keep a
/// wildcard arm. The `is_*` predicates answer the common questions without a match.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server reported an error (other than a rate limit): an error status,
    /// or an error inside a stream (then [`ApiError::status`] is `None`).
    #[error("{0}")]
    Api(Box<ApiError>),

    /// The server rate limited the request: `429 Too Many Requests` (except
    /// `insufficient_quota`, which waiting does not cure and which is an
    /// [`Error::Api`]), or a `rate_limit_exceeded` error inside a stream.
    /// [`ApiError::retry_after`] holds the server's hint.
    #[error("rate limited: {0}")]
    RateLimited(Box<ApiError>),

    /// A request, a connection attempt or a stream took longer than its configured limit.
    #[error("timed out {what} after {after:?}")]
    Timeout {
        /// What timed out: `"connecting"`, `"waiting for the response"`, `"waiting for the next stream event"`.
        what: &'static str,
        /// The limit that was exceeded.
        after: Duration,
    },

    /// The request never got an HTTP answer: connection refused, reset, DNS, TLS.
    #[error("error sending request")]
    Connection {
        /// The transport error, with any URL removed.
        #[source]
        source: BoxError,
    },

    /// A streamed reply broke the server-sent-events protocol: malformed framing, an
    /// error event, or a stream that ended without a terminal event.
    #[error("stream error: {reason}")]
    Stream {
        /// What was wrong with the stream.
        reason: String,
        /// The `x-request-id` of the reply, when the server sent one.
        request_id: Option<String>,
        /// The underlying error, when there is one (the transport error, with any
        /// URL removed, of a connection lost mid-stream).
        #[source]
        source: Option<BoxError>,
    },

    /// A body (from the server, a file or the store) was not the JSON we expected.
    #[error("error decoding {what}: {snippet:?}")]
    Decode {
        /// What was being decoded, e.g. `"response body"`.
        what: &'static str,
        /// The start of the offending text (at most 512 bytes), to show what was received.
        snippet: String,
        /// Why it did not decode: the JSON parser's error, or what a document that
        /// parsed says wrong. Boxed, so that no parser's type is part of our API.
        #[source]
        source: BoxError,
    },

    /// A configuration value is missing or invalid (base URL, timeouts, options),
    /// or a resource the configuration names cannot be used (an address to bind).
    #[error("invalid configuration: {what}")]
    Config {
        /// What is wrong, e.g. `"timeout must be greater than zero"`.
        what: String,
        /// The underlying error, when there is one (an OS error binding an address,
        /// a TLS back end that failed to start).
        #[source]
        source: Option<BoxError>,
    },

    /// A string is not a valid id or ref name.
    #[error("invalid {kind} {input:?}: {reason}")]
    InvalidId {
        /// Which kind of id: `"node id"`, `"response id"`, `"ref name"`.
        kind: &'static str,
        /// The rejected input (cut to 128 characters, ending in `…` when cut).
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// An annotation (or an annotation key or kind) that cannot be stored or
    /// parsed: an empty or overlong criterion or label, control characters, a
    /// score that is not a finite number. The message names the problem.
    #[error("invalid annotation: {0}")]
    InvalidAnnotation(String),

    /// A node that was asked for is not in the tree.
    #[error("node {0} not found")]
    NodeNotFound(NodeId),

    /// A named ref that was asked for does not exist.
    #[error("ref {0} not found")]
    RefNotFound(RefName),

    /// An operation would break the tree's invariants (cycle, second parent, dangling parent,
    /// duplicate node).
    #[error("invalid tree operation: {0}")]
    InvalidTree(TreeViolation),

    /// The store failed to read or write (I/O, the database reported an error).
    #[error("store error while {op}")]
    Storage {
        /// What the store was doing, e.g. `"opening the store"`, `"writing a node"`.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// Another process holds the store open. sled is single-process by design.
    #[error("store at {path} is in use by another process")]
    StoreInUse {
        /// The store's location.
        path: String,
    },

    /// A stored record could not be decoded (corrupt bytes, a foreign record, or a
    /// schema version newer than this build understands).
    #[error("corrupt record at key {key:?}: {reason}")]
    CorruptRecord {
        /// The record's key, printed readably.
        key: String,
        /// What was wrong with it.
        reason: String,
    },

    /// A compare-and-swap of a ref found it moved: another writer changed it since
    /// the caller read it ([`Op::SetRefIf`](crate::store::Op::SetRefIf)).
    #[error("ref {name} moved: expected {}, found {}", show(expected.as_ref()), show(actual.as_ref()))]
    Conflict {
        /// The ref.
        name: RefName,
        /// The target the caller expected (`None`: expected the ref not to exist).
        expected: Option<NodeId>,
        /// The target the store holds (`None`: the ref does not exist).
        actual: Option<NodeId>,
    },

    /// The operation is not supported by this backend or store, or not implemented yet.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),

    /// resptree broke one of its own invariants: a bug, never the caller's fault.
    /// Please report it with the message.
    #[error("internal error (a bug in resptree): {0}")]
    Internal(&'static str),

    /// A request would continue `node`, whose output holds function calls, without
    /// answering every one of them with a `function_call_output` item (the server
    /// would refuse it). Raised before anything is sent; answer them with
    /// [`Engine::submit_tool_outputs`](crate::Engine::submit_tool_outputs).
    #[error("node {node} has unanswered function calls: {}", call_ids.join(", "))]
    UnansweredToolCalls {
        /// The node whose calls are pending.
        node: NodeId,
        /// The `call_id`s left unanswered, in output order.
        call_ids: Vec<String>,
    },

    /// A `function_call_output` answers a call that the node being continued did
    /// not make (or answers one call twice). Raised before anything is sent.
    #[error("{call_id:?} is not a pending function call of {}", node.as_ref().map_or("a new root".to_owned(), ToString::to_string))]
    UnknownToolCall {
        /// The node being continued (`None`: a new root, which has no calls).
        node: Option<NodeId>,
        /// The `call_id` of the output.
        call_id: String,
    },

    /// A native fan-out (Chat Completions `n`) came back with fewer choices than
    /// were asked for: some compatible servers ignore `n`, or cap it.
    ///
    /// The choices that did arrive are kept, in index order, as complete replies
    /// ([`Error::partial_replies`], [`Error::take_partial_replies`]): whoever sent
    /// the request decides whether to record them. The engine records them as
    /// siblings and still reports this error, so a fan-out never silently yields
    /// fewer siblings than asked.
    #[error("fan-out asked for {asked} choices, the server returned {received}")]
    FanOutShort {
        /// How many choices were asked for (`n`).
        asked: usize,
        /// How many came back (less than `asked`).
        received: usize,
        /// The replies that came back, in index order. Empty once taken with
        /// [`Error::take_partial_replies`].
        replies: Vec<BackendReply>,
    },

    /// A create may have reached the server, but the request failed before a
    /// definite answer (a timeout after sending, a connection lost before or
    /// during the reply), and the response could not be confirmed: its id never
    /// arrived, or the server was still working on it (or unreachable) when the
    /// engine stopped waiting. resptree cannot tell whether the server made —
    /// and billed — a response, so it is deliberately not sent again: a second
    /// request could make a duplicate. The attempt stays in the journal;
    /// [`Engine::recover`](crate::Engine::recover) adopts the response if it
    /// has its id, and reports it otherwise.
    #[error(
        "request {attempt} may have created a response that could not be confirmed; \
         not sent again (left in the journal for recover)"
    )]
    OutcomeUnknown {
        /// The journaled attempt that was left for recovery.
        attempt: AttemptId,
        /// How the request failed.
        #[source]
        source: Box<Error>,
    },

    /// A search query could not be parsed: an unclosed `"` phrase, or a query
    /// longer than [`search::MAX_QUERY_BYTES`](crate::search::MAX_QUERY_BYTES)
    /// or with more than [`search::MAX_QUERY_TERMS`](crate::search::MAX_QUERY_TERMS)
    /// words. See [`ResponseTree::search`](crate::ResponseTree::search).
    #[error("invalid search query {query:?}: {reason}")]
    InvalidQuery {
        /// The query (cut to 128 characters, ending in `…` when cut).
        query: String,
        /// What is wrong with it, e.g. `"unclosed quote at byte 4"`.
        reason: String,
    },

    /// A response the engine looked up after its request was interrupted (or
    /// while recovering) ended without an answer to record: failed or cancelled
    /// on the server.
    #[error("response {response_id} ended {status} on the server; nothing to record")]
    ResponseEnded {
        /// The server's id of the response.
        response_id: ResponseId,
        /// How it ended: `"failed"` or `"cancelled"`.
        status: &'static str,
    },
}

/// Why an edit to the tree was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TreeViolation {
    /// A node with this id is already in the tree.
    DuplicateNode(NodeId),
    /// The parent (or extra-context node) named by `node` is not in the tree.
    DanglingParent {
        /// The node being inserted.
        node: NodeId,
        /// The missing node it points to.
        missing: NodeId,
    },
    /// `node` already has a parent; a node continues exactly one response.
    SecondParent {
        /// The node that would get a second parent.
        node: NodeId,
    },
    /// The edge `from → to` would close a cycle.
    Cycle {
        /// The edge's source.
        from: NodeId,
        /// The edge's target.
        to: NodeId,
    },
}

impl fmt::Display for TreeViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateNode(id) => write!(f, "node {id} already exists"),
            Self::DanglingParent { node, missing } => {
                write!(
                    f,
                    "node {node} points to {missing}, which is not in the tree"
                )
            }
            Self::SecondParent { node } => write!(f, "node {node} already has a parent"),
            Self::Cycle { from, to } => write!(f, "edge {from} -> {to} would create a cycle"),
        }
    }
}

/// An error reported by the server: its HTTP status (if it had one of its own) and
/// its `{"error": {...}}` object.
///
/// # Errors inside a stream
///
/// A streamed reply starts with `200 OK` before the server knows whether the
/// request will succeed; an error found later arrives *inside* the stream, as an
/// `error` event (or `{"error": ...}` chunk on Chat Completions) or as a
/// `response.failed` event. Such an error keeps its `code`, `param` and `message`
/// like any other, but has `status: None`: the server gave it no status of its
/// own, and reporting the stream's `200` would be a lie. No status is guessed
/// either (the same code can come with 400 from one server and 404 from
/// another). The predicates therefore decide by `code` (and `param`) whenever
/// `status` is `None`, so for example [`ApiError::is_previous_response_not_found`]
/// is true for a stream whose `error` event says `previous_response_not_found`.
///
/// ```
/// use resptree::ApiError;
///
/// let streamed = ApiError::in_stream("Previous response with id 'resp_1' not found.")
///     .with_code("previous_response_not_found")
///     .with_param("previous_response_id");
/// assert_eq!(streamed.status, None);
/// assert!(streamed.is_previous_response_not_found());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status of the error reply; `None` when the error arrived inside a
    /// stream whose reply was `200 OK` (see [above](ApiError#errors-inside-a-stream)).
    pub status: Option<u16>,
    /// The error's `message`.
    pub message: String,
    /// The error's `type`, e.g. `invalid_request_error`.
    pub kind: Option<String>,
    /// The error's `code`, e.g. `previous_response_not_found`.
    pub code: Option<String>,
    /// The error's `param`, e.g. `previous_response_id`.
    pub param: Option<String>,
    /// The reply's `x-request-id` header.
    pub request_id: Option<String>,
    /// The server's retry hint (`retry-after-ms` or `retry-after`), if it sent one.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An error reply with HTTP `status` and `message`; the other fields are `None`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self::with_status(Some(status), message.into())
    }

    /// An error that arrived inside a stream (`status: None`); the other fields
    /// are `None`.
    pub fn in_stream(message: impl Into<String>) -> Self {
        Self::with_status(None, message.into())
    }

    fn with_status(status: Option<u16>, message: String) -> Self {
        Self {
            status,
            message,
            kind: None,
            code: None,
            param: None,
            request_id: None,
            retry_after: None,
        }
    }

    /// Sets the error's `code`.
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the error's `param`.
    #[must_use]
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Whether the server said that the `previous_response_id` it was given is unknown
    /// (deleted, expired, never stored). Servers differ in status (400 or 404) and
    /// code, so this matches either the code or the param, on a 400, a 404 or an
    /// error inside a stream.
    ///
    /// ```
    /// use resptree::ApiError;
    ///
    /// let e = ApiError::new(400, "Previous response with id 'resp_1' not found.")
    ///     .with_param("previous_response_id");
    /// assert!(e.is_previous_response_not_found());
    /// // vLLM and others answer 404 with the code alone.
    /// assert!(ApiError::new(404, "gone").with_code("previous_response_not_found")
    ///     .is_previous_response_not_found());
    /// assert!(!ApiError::new(500, "oops").with_code("previous_response_not_found")
    ///     .is_previous_response_not_found());
    /// ```
    pub fn is_previous_response_not_found(&self) -> bool {
        matches!(self.status, None | Some(400 | 404))
            && (self.code_is("previous_response_not_found")
                || self.param.as_deref() == Some("previous_response_id"))
    }

    /// Whether the server answered `404 Not Found` (an unknown response id, a
    /// wrong path or model).
    ///
    /// ```
    /// use resptree::ApiError;
    ///
    /// assert!(ApiError::new(404, "Response with id 'resp_1' not found.").is_not_found());
    /// assert!(!ApiError::new(400, "bad").is_not_found());
    /// ```
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    /// Whether the input did not fit the model's context window
    /// (code `context_length_exceeded`, a 400 or an error inside a stream).
    ///
    /// ```
    /// use resptree::ApiError;
    ///
    /// let e = ApiError::new(400, "Your input exceeds the context window of this model.")
    ///     .with_code("context_length_exceeded")
    ///     .with_param("input");
    /// assert!(e.is_context_length_exceeded());
    /// assert!(ApiError::in_stream("too long").with_code("context_length_exceeded")
    ///     .is_context_length_exceeded());
    /// assert!(!ApiError::new(400, "bad").is_context_length_exceeded());
    /// ```
    pub fn is_context_length_exceeded(&self) -> bool {
        self.code_is("context_length_exceeded")
    }

    /// Whether the account is out of credit (code or type `insufficient_quota`,
    /// usually with status 429). Unlike a rate limit, waiting does not help.
    ///
    /// ```
    /// use resptree::ApiError;
    ///
    /// let e = ApiError::new(429, "You exceeded your current quota.")
    ///     .with_code("insufficient_quota");
    /// assert!(e.is_insufficient_quota());
    /// assert!(!ApiError::new(429, "slow down").with_code("rate_limit_exceeded")
    ///     .is_insufficient_quota());
    /// ```
    pub fn is_insufficient_quota(&self) -> bool {
        self.code_is("insufficient_quota") || self.kind.as_deref() == Some("insufficient_quota")
    }

    /// Whether the server refused the credentials: status 401, or code
    /// `invalid_api_key` (which some servers send with another status or inside
    /// a stream).
    ///
    /// ```
    /// use resptree::ApiError;
    ///
    /// assert!(ApiError::new(401, "Incorrect API key provided.").is_authentication());
    /// assert!(ApiError::new(400, "bad key").with_code("invalid_api_key").is_authentication());
    /// // 403 is a permission problem, not an authentication one.
    /// assert!(!ApiError::new(403, "not allowed").is_authentication());
    /// ```
    pub fn is_authentication(&self) -> bool {
        self.status == Some(401) || self.code_is("invalid_api_key")
    }

    /// Whether the server reported a rate limit: status 429 with any code other
    /// than `insufficient_quota`, or code `rate_limit_exceeded` inside a stream.
    fn is_rate_limit(&self) -> bool {
        match self.status {
            Some(status) => status == 429 && !self.is_insufficient_quota(),
            None => self.code_is("rate_limit_exceeded"),
        }
    }

    fn code_is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "server returned {status}")?,
            None => f.write_str("server reported an error in the stream")?,
        }
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

/// An [`ApiError`] becomes [`Error::RateLimited`] for a rate limit (a `429`
/// other than `insufficient_quota`, or `rate_limit_exceeded` inside a stream),
/// else [`Error::Api`].
///
/// ```
/// use resptree::{ApiError, Error};
///
/// assert!(Error::from(ApiError::new(429, "slow down")).is_rate_limited());
/// let broke = ApiError::new(429, "You exceeded your current quota.")
///     .with_code("insufficient_quota");
/// assert!(matches!(Error::from(broke), Error::Api(_)));
/// assert!(matches!(Error::from(ApiError::new(400, "bad")), Error::Api(_)));
/// ```
impl From<ApiError> for Error {
    fn from(api: ApiError) -> Self {
        if api.is_rate_limit() {
            Self::RateLimited(Box::new(api))
        } else {
            Self::Api(Box::new(api))
        }
    }
}

impl Error {
    /// The server's error, for [`Error::Api`] and [`Error::RateLimited`].
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) | Self::RateLimited(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status of a server error; `None` for other errors and for a
    /// server error reported inside a stream.
    ///
    /// ```
    /// use resptree::{ApiError, Error};
    ///
    /// assert_eq!(Error::from(ApiError::new(503, "overloaded")).status(), Some(503));
    /// assert_eq!(Error::from(ApiError::in_stream("failed")).status(), None);
    /// ```
    pub fn status(&self) -> Option<u16> {
        self.api_error().and_then(|e| e.status)
    }

    /// The `x-request-id` of the reply that failed, when there was one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api(e) | Self::RateLimited(e) => e.request_id.as_deref(),
            Self::Stream { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// Whether the server rate limited the request ([`Error::RateLimited`]).
    ///
    /// ```
    /// use resptree::{ApiError, Error};
    ///
    /// assert!(Error::from(ApiError::new(429, "Rate limit reached")).is_rate_limited());
    /// let in_stream = ApiError::in_stream("Rate limit reached").with_code("rate_limit_exceeded");
    /// assert!(Error::from(in_stream).is_rate_limited());
    /// // Out of credit is not a rate limit: waiting does not help.
    /// let broke = ApiError::new(429, "quota").with_code("insufficient_quota");
    /// assert!(!Error::from(broke).is_rate_limited());
    /// ```
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Self::RateLimited(_))
    }

    /// Whether something timed out ([`Error::Timeout`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use resptree::Error;
    ///
    /// let e = Error::Timeout { what: "connecting", after: Duration::from_secs(10) };
    /// assert!(e.is_timeout());
    /// assert!(!Error::Internal("x").is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// Whether a failed request may nonetheless have been processed by the
    /// server: it was sent, and the failure came before a definite answer (a
    /// timeout waiting for the reply, a connection lost after connecting, a
    /// stream cut or garbled, a `2xx` body that did not decode, a gateway's
    /// `502`/`504` in front of the server). `false` when the server itself
    /// answered with an error, or the request never left (connecting failed or
    /// timed out, bad configuration).
    ///
    /// A create that failed this way must not be sent again blindly: the first
    /// one may have made a response. The client does not retry
    /// `POST /responses` after such a failure, and the engine looks the
    /// response up by its journaled id instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// use resptree::{ApiError, Error};
    ///
    /// let waited = Error::Timeout { what: "waiting for the response", after: Duration::from_secs(600) };
    /// assert!(waited.may_have_reached_server());
    /// let connecting = Error::Timeout { what: "connecting", after: Duration::from_secs(10) };
    /// assert!(!connecting.may_have_reached_server());
    /// assert!(!Error::from(ApiError::new(500, "oops")).may_have_reached_server());
    /// assert!(Error::from(ApiError::new(504, "Gateway Timeout")).may_have_reached_server());
    /// ```
    pub fn may_have_reached_server(&self) -> bool {
        match self {
            Self::Timeout { what, .. } => *what != "connecting",
            Self::Connection { source } => !source
                .downcast_ref::<reqwest::Error>()
                .is_some_and(reqwest::Error::is_connect),
            Self::Stream { .. } | Self::Decode { .. } | Self::OutcomeUnknown { .. } => true,
            // A gateway that timed out on, or lost, the origin's reply: the
            // origin very likely got the request.
            Self::Api(api) => matches!(api.status, Some(502 | 504)),
            _ => false,
        }
    }

    /// Whether the server no longer knows the `previous_response_id` it was sent,
    /// whether it said so with an error status or inside a stream
    /// (see [`ApiError::is_previous_response_not_found`]).
    ///
    /// ```
    /// use resptree::{ApiError, Error};
    ///
    /// let reply = ApiError::new(400, "Previous response with id 'resp_1' not found.")
    ///     .with_code("previous_response_not_found")
    ///     .with_param("previous_response_id");
    /// assert!(Error::from(reply).is_previous_response_not_found());
    /// let in_stream = ApiError::in_stream("Previous response with id 'resp_1' not found.")
    ///     .with_code("previous_response_not_found");
    /// assert!(Error::from(in_stream).is_previous_response_not_found());
    /// assert!(!Error::from(ApiError::new(400, "bad")).is_previous_response_not_found());
    /// ```
    pub fn is_previous_response_not_found(&self) -> bool {
        self.api_error()
            .is_some_and(ApiError::is_previous_response_not_found)
    }

    /// Whether the input did not fit the model's context window, whether the
    /// server said so with an error status or inside a stream
    /// (see [`ApiError::is_context_length_exceeded`]).
    ///
    /// ```
    /// use resptree::{ApiError, Error};
    ///
    /// let e = ApiError::new(400, "Your input exceeds the context window of this model.")
    ///     .with_code("context_length_exceeded");
    /// assert!(Error::from(e).is_context_length_exceeded());
    /// assert!(!Error::from(ApiError::new(400, "bad")).is_context_length_exceeded());
    /// ```
    pub fn is_context_length_exceeded(&self) -> bool {
        self.api_error()
            .is_some_and(ApiError::is_context_length_exceeded)
    }

    /// Whether the account is out of credit (`insufficient_quota`; see
    /// [`ApiError::is_insufficient_quota`]). Such errors are not retried.
    ///
    /// ```
    /// use resptree::{ApiError, Error};
    ///
    /// let e = ApiError::new(429, "You exceeded your current quota.")
    ///     .with_code("insufficient_quota");
    /// assert!(Error::from(e).is_insufficient_quota());
    /// assert!(!Error::from(ApiError::new(429, "slow down")).is_insufficient_quota());
    /// ```
    pub fn is_insufficient_quota(&self) -> bool {
        self.api_error()
            .is_some_and(ApiError::is_insufficient_quota)
    }

    /// Whether the server refused the credentials (status 401, or code
    /// `invalid_api_key`; see [`ApiError::is_authentication`]).
    ///
    /// ```
    /// use resptree::{ApiError, Error};
    ///
    /// assert!(Error::from(ApiError::new(401, "Incorrect API key provided.")).is_authentication());
    /// assert!(!Error::from(ApiError::new(403, "not allowed")).is_authentication());
    /// ```
    pub fn is_authentication(&self) -> bool {
        self.api_error().is_some_and(ApiError::is_authentication)
    }

    /// Whether a compare-and-swap lost to another writer ([`Error::Conflict`]).
    ///
    /// ```
    /// use resptree::{Error, RefName};
    ///
    /// let name: RefName = "best".parse()?;
    /// let e = Error::Conflict { name, expected: None, actual: None };
    /// assert!(e.is_conflict());
    /// assert!(!Error::Internal("x").is_conflict());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// Whether something asked for was not there: a node or ref missing from the
    /// tree ([`Error::NodeNotFound`], [`Error::RefNotFound`]) or a `404` from the
    /// server (see [`ApiError::is_not_found`]).
    ///
    /// ```
    /// use resptree::{ApiError, Error, NodeId, RefName};
    ///
    /// assert!(Error::NodeNotFound(NodeId::new("resp_1")?).is_not_found());
    /// assert!(Error::RefNotFound("best".parse::<RefName>()?).is_not_found());
    /// let gone = ApiError::new(404, "Response with id 'resp_1' not found.");
    /// assert!(Error::from(gone).is_not_found());
    /// assert!(!Error::from(ApiError::new(400, "bad")).is_not_found());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::NodeNotFound(_) | Self::RefNotFound(_) => true,
            _ => self.api_error().is_some_and(ApiError::is_not_found),
        }
    }

    /// Whether a native fan-out came back with fewer choices than asked
    /// ([`Error::FanOutShort`]).
    ///
    /// ```
    /// use resptree::Error;
    ///
    /// let e = Error::FanOutShort { asked: 5, received: 1, replies: Vec::new() };
    /// assert!(e.is_fan_out_short());
    /// assert_eq!(e.to_string(), "fan-out asked for 5 choices, the server returned 1");
    /// ```
    pub fn is_fan_out_short(&self) -> bool {
        matches!(self, Self::FanOutShort { .. })
    }

    /// The replies that did arrive, for [`Error::FanOutShort`]; `None` for any
    /// other error.
    pub fn partial_replies(&self) -> Option<&[BackendReply]> {
        match self {
            Self::FanOutShort { replies, .. } => Some(replies),
            _ => None,
        }
    }

    /// Takes the replies that did arrive out of an [`Error::FanOutShort`],
    /// leaving the error (with its `asked` and `received` counts) to be
    /// reported. Empty for any other error, and on a second call.
    ///
    /// This is how a caller records the partial result of a fan-out and still
    /// reports that it was short:
    ///
    /// ```
    /// use resptree::Error;
    ///
    /// fn record(mut err: Error) -> Error {
    ///     for reply in err.take_partial_replies() {
    ///         // ... commit `reply` as a sibling ...
    ///         # let _ = reply;
    ///     }
    ///     err
    /// }
    /// let err = record(Error::FanOutShort { asked: 3, received: 0, replies: Vec::new() });
    /// assert!(err.is_fan_out_short());
    /// ```
    pub fn take_partial_replies(&mut self) -> Vec<BackendReply> {
        match self {
            Self::FanOutShort { replies, .. } => std::mem::take(replies),
            _ => Vec::new(),
        }
    }

    /// An [`Error::Stream`] without an underlying cause.
    pub(crate) fn stream(reason: impl Into<String>, request_id: Option<String>) -> Self {
        Self::Stream {
            reason: reason.into(),
            request_id,
            source: None,
        }
    }

    /// An [`Error::Config`] without an underlying cause.
    pub(crate) fn config(what: impl Into<String>) -> Self {
        Self::Config {
            what: what.into(),
            source: None,
        }
    }

    /// An [`Error::Config`] caused by `source`.
    pub(crate) fn config_with(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Config {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    pub(crate) fn storage(op: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Storage {
            op,
            source: source.into(),
        }
    }

    /// An [`Error::Decode`] of `body`; `source` is the parser's error, or (as a
    /// string) what a body that parsed says wrong.
    pub(crate) fn decode(what: &'static str, body: &[u8], source: impl Into<BoxError>) -> Self {
        Self::Decode {
            what,
            snippet: snippet(body),
            source: source.into(),
        }
    }

    pub(crate) fn corrupt(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::CorruptRecord {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// How a possibly missing ref target reads in a message.
fn show(id: Option<&NodeId>) -> String {
    id.map_or_else(|| "no ref".to_owned(), ToString::to_string)
}

/// The start of `body` as text: at most 512 bytes, cut on a character boundary.
pub(crate) fn snippet(body: &[u8]) -> String {
    const MAX: usize = 512;
    let mut head = &body[..body.len().min(MAX)];
    // Cut before a character the limit split in two, so the snippet does not end
    // in a replacement character that was never in the body.
    if body.len() > MAX {
        if let Err(e) = std::str::from_utf8(head) {
            if e.error_len().is_none() {
                head = &head[..e.valid_up_to()];
            }
        }
    }
    let mut out = String::from_utf8_lossy(head).into_owned();
    if body.len() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_static() {
        fn assert_bounds<T: std::error::Error + Send + Sync + 'static>() {}
        assert_bounds::<Error>();
    }

    #[test]
    fn previous_not_found_matches_code_or_param() {
        let mut e = ApiError::new(400, "Previous response with id 'resp_x' not found.");
        assert!(!e.is_previous_response_not_found());
        e.param = Some("previous_response_id".into());
        assert!(e.is_previous_response_not_found());
        let mut e = ApiError::new(404, "gone");
        e.code = Some("previous_response_not_found".into());
        assert!(e.is_previous_response_not_found());
        e.status = Some(500);
        assert!(!e.is_previous_response_not_found());
        e.status = None;
        assert!(
            e.is_previous_response_not_found(),
            "an error inside a stream"
        );
    }

    #[test]
    fn snippet_is_bounded() {
        let long = vec![b'a'; 2000];
        let s = snippet(&long);
        assert!(s.len() <= 512 + '…'.len_utf8());
        assert!(s.ends_with('…'));
        assert_eq!(snippet(b"{}"), "{}");
    }

    #[test]
    fn snippet_never_splits_a_character() {
        // 511 ASCII bytes, then a 3-byte character across the 512-byte limit.
        let mut body = vec![b'a'; 511];
        body.extend_from_slice("€uro".as_bytes());
        let s = snippet(&body);
        assert!(!s.contains('\u{fffd}'), "{s:?}");
        assert_eq!(s, format!("{}…", "a".repeat(511)));
        // Invalid bytes inside the body are still shown as replacement characters.
        assert_eq!(snippet(b"a\xffb"), "a\u{fffd}b");
    }
}
