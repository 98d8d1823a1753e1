//! A scripted raw-HTTP server on loopback, for byte-exact and broken replies.
//!
//! Each accepted connection reads one request, records it, and then plays the next
//! [`Script`] of the list: write bytes, pause, hang, or close. Connections beyond
//! the list get a 500 saying the script ran out, so a test that retries more than
//! expected fails loudly. Replies carry `Connection: close`, so every request of
//! the client arrives on a new connection and maps to one script.

#![allow(dead_code)]
// Not every test module uses every helper.
// A test server may panic: clippy.toml allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One step of a connection's script.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Write these bytes and flush.
    Send(Vec<u8>),
    /// Wait this long.
    Pause(Duration),
    /// Keep the connection open and silent until the client gives up.
    Hang,
}

/// What one connection does after reading the request. The connection is closed
/// when the steps run out.
pub(crate) type Script = Vec<Step>;

/// A request as the server received it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    /// Path and query, e.g. `/v1/responses?limit=2`.
    pub(crate) target: String,
    /// Header names lower-cased.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// The running server; stops when dropped.
pub(crate) struct RawServer {
    base_url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawServer {
    /// Starts a server that plays `scripts` to successive connections.
    pub(crate) async fn start(scripts: Vec<Script>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            let mut scripts = scripts.into_iter();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let script = scripts.next().unwrap_or_else(|| {
                    vec![Step::Send(json_response(500, &[], r#"{"error":{"message":"script exhausted","type":"test","param":null,"code":null}}"#))]
                });
                let recorded = recorded.clone();
                tokio::spawn(serve(socket, script, recorded));
            }
        });
        Self {
            base_url: format!("http://{addr}/v1"),
            requests,
            task,
        }
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The requests received so far.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(mut socket: TcpStream, script: Script, recorded: Arc<Mutex<Vec<Recorded>>>) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    recorded.lock().unwrap().push(request);
    for step in script {
        match step {
            Step::Send(bytes) => {
                if socket.write_all(&bytes).await.is_err() || socket.flush().await.is_err() {
                    return;
                }
            }
            Step::Pause(d) => tokio::time::sleep(d).await,
            Step::Hang => {
                // Wait until the client closes its side.
                let mut buf = [0u8; 64];
                while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
                return;
            }
        }
    }
    let _ = socket.shutdown().await;
}

async fn read_request(socket: &mut TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Recorded {
        method,
        target,
        headers,
        body,
    })
}

/// A complete reply with a JSON body and extra headers.
pub(crate) fn json_response(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// The head of an SSE reply whose body runs until the connection closes.
pub(crate) fn sse_head(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut head =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n".to_owned();
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// A script answering with one JSON reply.
pub(crate) fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Script {
    vec![Step::Send(json_response(status, headers, body))]
}

/// A script streaming `body` after an SSE head, in pieces of `piece` bytes.
pub(crate) fn sse(headers: &[(&str, &str)], body: &[u8], piece: usize) -> Script {
    let mut script = vec![Step::Send(sse_head(headers))];
    script.extend(body.chunks(piece.max(1)).map(|c| Step::Send(c.to_vec())));
    script
}
