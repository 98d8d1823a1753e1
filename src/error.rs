//! The one error type of the library, and its `Result` alias.
//!
//! Variants are named for *what resptree was doing* when it failed. Each keeps the
//! context a caller needs to act (the HTTP status and server error object, the
//! store key of a corrupt record, the id that was not found) and chains its cause
//! through [`std::error::Error::source`]. No variant ever holds an API key, and
//! transport errors are stripped of their URL before they are wrapped.

use std::fmt;
use std::time::Duration;

use crate::ids::{NodeId, RefName};

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
    /// The server answered with an error status (other than a rate limit).
    #[error("{0}")]
    Api(Box<ApiError>),

    /// The server answered `429 Too Many Requests`; [`ApiError::retry_after`] holds its hint.
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
    },

    /// A body (from the server, a file or the store) was not the JSON we expected.
    #[error("error decoding {what}: {snippet:?}")]
    Decode {
        /// What was being decoded, e.g. `"response body"`.
        what: &'static str,
        /// The start of the offending text (at most 512 bytes), to show what was received.
        snippet: String,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },

    /// A configuration value is missing or invalid (base URL, timeouts, options).
    #[error("invalid configuration: {0}")]
    Config(String),

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

/// An error reported by the server: its HTTP status and its `{"error": {...}}` object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status code.
    pub status: u16,
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
    /// An error with just a status and message; the other fields are `None`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind: None,
            code: None,
            param: None,
            request_id: None,
            retry_after: None,
        }
    }

    /// Whether the server said that the `previous_response_id` it was given is unknown
    /// (deleted, expired, never stored). Servers differ in status (400 or 404) and
    /// code, so this matches either the code or the param.
    pub fn is_previous_response_not_found(&self) -> bool {
        (self.status == 400 || self.status == 404)
            && (self.code.as_deref() == Some("previous_response_not_found")
                || self.param.as_deref() == Some("previous_response_id"))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "server returned {}", self.status)?;
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

impl Error {
    /// The server's error, for [`Error::Api`] and [`Error::RateLimited`].
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) | Self::RateLimited(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status of a server error.
    pub fn status(&self) -> Option<u16> {
        self.api_error().map(|e| e.status)
    }

    /// The `x-request-id` of the reply that failed, when there was one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api(e) | Self::RateLimited(e) => e.request_id.as_deref(),
            Self::Stream { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// Whether the server rate limited the request.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Self::RateLimited(_))
    }

    /// Whether something timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// Whether the server no longer knows the `previous_response_id` it was sent.
    pub fn is_previous_response_not_found(&self) -> bool {
        self.api_error()
            .is_some_and(ApiError::is_previous_response_not_found)
    }

    /// Whether a compare-and-swap lost to another writer ([`Error::Conflict`]).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// Whether this is a missing node or ref.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NodeNotFound(_) | Self::RefNotFound(_))
    }

    pub(crate) fn storage(op: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Storage {
            op,
            source: source.into(),
        }
    }

    pub(crate) fn decode(what: &'static str, body: &[u8], source: serde_json::Error) -> Self {
        Self::Decode {
            what,
            snippet: snippet(body),
            source,
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
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let mut out = text.into_owned();
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
        e.status = 500;
        assert!(!e.is_previous_response_not_found());
    }

    #[test]
    fn snippet_is_bounded() {
        let long = vec![b'a'; 2000];
        let s = snippet(&long);
        assert!(s.len() <= 512 + '…'.len_utf8());
        assert!(s.ends_with('…'));
        assert_eq!(snippet(b"{}"), "{}");
    }
}
