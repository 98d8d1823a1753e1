//! The request log tests inspect to count requests and bytes.

use std::collections::VecDeque;
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

/// The newest requests, at most `capacity` of them: a long-running emulator (a
/// benchmark, `resptree emulate`) must not grow without bound.
#[derive(Debug)]
pub(crate) struct RequestLog {
    entries: VecDeque<LogEntry>,
    capacity: usize,
}

impl RequestLog {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            capacity,
        }
    }

    /// Records a request, dropping the oldest one when the log is full.
    pub(crate) fn push(&mut self, entry: LogEntry) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// The entries, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &LogEntry> {
        self.entries.iter()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> LogEntry {
        LogEntry {
            record: RequestRecord {
                method: "GET".to_owned(),
                path: format!("/v1/responses/{n}"),
                query: None,
                status: 200,
                request_id: format!("req_{n}"),
                bytes_in: n,
                bytes_out: 0,
                body: None,
                fault: None,
            },
            bytes_out: Arc::new(AtomicU64::new(0)),
        }
    }

    fn kept(log: &RequestLog) -> Vec<u64> {
        log.iter().map(|e| e.record.bytes_in).collect()
    }

    #[test]
    fn a_full_log_drops_the_oldest_entries() {
        let mut log = RequestLog::new(3);
        for n in 0..5 {
            log.push(entry(n));
        }
        assert_eq!(kept(&log), [2, 3, 4]);
        log.clear();
        assert!(kept(&log).is_empty());
        log.push(entry(9));
        assert_eq!(kept(&log), [9]);
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let mut log = RequestLog::new(0);
        log.push(entry(1));
        assert!(kept(&log).is_empty());
    }
}
