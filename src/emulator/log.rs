//! The request log tests inspect to count requests and bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Fault;

/// One request the emulator received, as seen from the server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RequestRecord {
    /// The HTTP method, e.g. `"POST"`.
    pub method: String,
    /// The request path without the query, e.g. `"/v1/responses"`.
    pub path: String,
    /// The query string, if any (without `?`).
    pub query: Option<String>,
    /// The HTTP status sent; `0` when the connection was dropped before any headers.
    pub status: u16,
    /// The `x-request-id` sent with the reply (`req_…`).
    pub request_id: String,
    /// Size of the request body in bytes.
    pub bytes_in: u64,
    /// Size of the response body in bytes sent so far (a stream grows until it ends).
    pub bytes_out: u64,
    /// The request body parsed as JSON; `None` when empty or not JSON.
    pub body: Option<serde_json::Value>,
    /// The fault this request suffered, if any.
    pub fault: Option<Fault>,
}

/// A log entry: the record plus a live counter for a body that is still streaming.
#[derive(Debug)]
pub(crate) struct LogEntry {
    pub(crate) record: RequestRecord,
    pub(crate) bytes_out: Arc<AtomicU64>,
}

impl LogEntry {
    pub(crate) fn snapshot(&self) -> RequestRecord {
        let mut record = self.record.clone();
        record.bytes_out = self.bytes_out.load(Ordering::Relaxed);
        record
    }
}
