//! The HTTP side: router, the front middleware (request ids, headers, body limit,
//! request faults, the request log) and a listener whose connections can be cut.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::{IncomingStream, Listener};
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::activity::InFlightGuard;
use super::failure::Failure;
use super::fault::Fault;
use super::log::{LogEntry, RequestRecord};
use super::responses::{self, PlayedFault};
use super::state::{Shared, lock};
use super::{background, chat, conversations, ids};

/// The emulator's router over `shared`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/responses", post(responses::create))
        .route(
            "/v1/responses/{id}",
            get(responses::retrieve).delete(responses::delete),
        )
        .route(
            "/v1/responses/{id}/input_items",
            get(responses::input_items),
        )
        .route("/v1/responses/{id}/cancel", post(background::cancel))
        .route("/v1/conversations", post(conversations::create))
        .route(
            "/v1/conversations/{id}",
            get(conversations::retrieve)
                .post(conversations::update)
                .delete(conversations::delete),
        )
        .route(
            "/v1/conversations/{id}/items",
            get(conversations::list_items).post(conversations::add_items),
        )
        .route("/v1/chat/completions", post(chat::create))
        .fallback(invalid_url)
        .method_not_allowed_fallback(invalid_url)
        // The front middleware enforces the configured limit with a real envelope.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), front))
        .with_state(shared)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(
        CuttableListener(listener),
        router.into_make_service_with_connect_info::<Conn>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// The real API's answer to an unknown path or method.
async fn invalid_url(method: Method, uri: Uri) -> Failure {
    Failure::not_found(format!("Invalid URL ({method} {})", uri.path()), None)
}

/// Runs around every request: assigns the request id, enforces the body limit, plays
/// request faults, records the request and adds the headers every real reply carries.
async fn front(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let in_flight = shared.activity.enter();
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let generating =
        parts.method == Method::POST && (path == "/v1/responses" || path == "/v1/chat/completions");
    let mut record = RequestRecord {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        status: 0,
        request_id: ids::request(),
        bytes_in: 0,
        bytes_out: 0,
        body: None,
        fault: None,
    };
    let limit = shared.config.max_body_bytes;
    let (response, fault) = match axum::body::to_bytes(body, limit).await {
        Err(_) => (Failure::too_large(limit).into_response(), None),
        Ok(bytes) => {
            record.bytes_in = bytes.len() as u64;
            record.body = serde_json::from_slice(&bytes).ok();
            let streamed = record
                .body
                .as_ref()
                .and_then(|b| b.get("stream"))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false)
                || is_stream_query(parts.uri.query());
            // A fault named by the request itself goes first and leaves the queue alone.
            let fault = match parts.headers.get(FAULT_HEADER) {
                // Like the real API, a body that is declared as something other
                // than JSON is refused before anything else looks at it.
                _ if !bytes.is_empty() && !is_json(&parts.headers) => Err(
                    Failure::unsupported_content_type(content_type(&parts.headers)),
                ),
                Some(value) => Fault::from_header(value).map(Some).ok_or_else(|| {
                    Failure::bad_request(
                        format!("Invalid '{FAULT_HEADER}' header."),
                        None,
                        Some("invalid_emulator_fault"),
                    )
                }),
                None => Ok(lock(&shared.faults).take(&path, streamed, generating)),
            };
            let response = match &fault {
                Err(failure) => failure.clone().into_response(),
                Ok(Some(f)) if f.is_played_by_handler() => {
                    parts.extensions.insert(PlayedFault(f.clone()));
                    let response = next
                        .run(Request::from_parts(parts, Body::from(bytes)))
                        .await;
                    if matches!(f, Fault::DropAfterCreate { .. })
                        && !streamed
                        && response.status().is_success()
                    {
                        // The response exists now; the client never hears of it.
                        conn.cut();
                    }
                    response
                }
                Ok(Some(f)) => request_fault(f, &conn),
                Ok(None) => {
                    next.run(Request::from_parts(parts, Body::from(bytes)))
                        .await
                }
            };
            (response, fault.ok().flatten())
        }
    };
    finish(&shared, record, response, fault, &conn, started, in_flight)
}

/// Whether a query string asks for a stream (`stream=true`, as on
/// `GET /v1/responses/{id}?stream=true`).
fn is_stream_query(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| pair == "stream=true"))
}

/// The request's `Content-Type`, as text (empty when absent or not ASCII).
fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Whether a body may be read as JSON: declared `application/json` (any
/// parameters, any case), or not declared at all (lenient, as clients that
/// omit the header still send JSON).
fn is_json(headers: &HeaderMap) -> bool {
    if headers.get(header::CONTENT_TYPE).is_none() {
        return true;
    }
    let essence = content_type(headers).split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Records the request and adds the headers every real reply carries. The
/// request stays in flight until `in_flight` is dropped: here for a body of known
/// size (before a byte of it is sent, so a client never sees a reply while the
/// request still counts), or when a streamed body ends or is dropped.
fn finish(
    shared: &Shared,
    mut record: RequestRecord,
    response: Response,
    fault: Option<Fault>,
    conn: &Conn,
    started: Instant,
    in_flight: InFlightGuard,
) -> Response {
    record.fault = fault;
    record.status = if conn.is_cut() {
        0
    } else {
        response.status().as_u16()
    };
    let (mut parts, body) = response.into_parts();
    add_headers(&mut parts.headers, &record.request_id, started.elapsed());
    let bytes_out = Arc::new(AtomicU64::new(0));
    let body = match body.size_hint().exact() {
        Some(n) => {
            bytes_out.store(n, Ordering::Relaxed);
            body
        }
        None => {
            let counter = Arc::clone(&bytes_out);
            let counted = body.into_data_stream().inspect_ok(move |chunk: &Bytes| {
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            });
            Body::from_stream(Tracked {
                inner: counted,
                _in_flight: in_flight,
            })
        }
    };
    lock(&shared.log).push(LogEntry { record, bytes_out });
    Response::from_parts(parts, body)
}

/// A streamed body that keeps its request counted in flight.
///
/// Fields drop in declaration order: the stream (and what it holds, such as a
/// conversation lock or an unstored response) goes first, so once a request is
/// no longer in flight, everything it held has been let go.
struct Tracked<S> {
    inner: S,
    _in_flight: InFlightGuard,
}

impl<S: futures_util::Stream + Unpin> futures_util::Stream for Tracked<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// The request header that asks for a fault on this one request (see [`Fault::from_header`]).
pub(crate) const FAULT_HEADER: &str = "x-emulator-fault";

/// The reply for a request fault.
fn request_fault(fault: &Fault, conn: &Conn) -> Response {
    match fault {
        Fault::Status { status, .. } => Failure::for_status(*status).into_response(),
        Fault::RateLimit {
            retry_after,
            use_ms_header,
            ..
        } => {
            let ms = retry_after.map_or(1000, |d| d.as_millis());
            let mut response = Failure::rate_limited(ms).into_response();
            let headers = response.headers_mut();
            if let Some(after) = retry_after {
                let (name, value) = if *use_ms_header {
                    ("retry-after-ms", after.as_millis().to_string())
                } else {
                    ("retry-after", after.as_secs_f64().ceil().to_string())
                };
                insert(headers, name, &value);
            }
            insert(headers, "x-ratelimit-remaining-tokens", "0");
            response
        }
        Fault::DropBeforeHeaders { .. } => {
            // The connection fails its next write, so these headers are never sent.
            conn.cut();
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Fault::MalformedBody { .. } => (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"id": "resp_0000", "object": "response", "output": [{"#,
        )
            .into_response(),
        // Stream faults never reach here; answer normally-shaped if one does.
        _ => Failure::for_status(500).into_response(),
    }
}

/// The headers every real reply carries.
fn add_headers(headers: &mut HeaderMap, request_id: &str, elapsed: Duration) {
    insert(headers, "x-request-id", request_id);
    insert(
        headers,
        "openai-processing-ms",
        &elapsed.as_millis().to_string(),
    );
    insert(headers, "openai-version", "2020-10-01");
    for (name, value) in [
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-limit-tokens", "200000"),
        ("x-ratelimit-remaining-requests", "9999"),
        ("x-ratelimit-remaining-tokens", "199000"),
        ("x-ratelimit-reset-requests", "6ms"),
        ("x-ratelimit-reset-tokens", "300ms"),
    ] {
        if !headers.contains_key(name) {
            insert(headers, name, value);
        }
    }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// Per-connection information handed to the middleware: a switch that cuts the
/// connection (its next write fails, so hyper closes it without a reply).
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    cut: Arc<AtomicBool>,
}

impl Conn {
    fn cut(&self) {
        self.cut.store(true, Ordering::Release);
    }

    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Acquire)
    }
}

impl Connected<IncomingStream<'_, CuttableListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP listener whose connections carry a [`Conn`] switch.
#[derive(Debug)]
struct CuttableListener(TcpListener);

impl Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = Conn;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, _)) => {
                    // Small SSE blocks must not wait for Nagle's algorithm.
                    let _ = stream.set_nodelay(true);
                    let cut = Arc::new(AtomicBool::new(false));
                    let conn = Conn {
                        cut: Arc::clone(&cut),
                    };
                    return (CuttableStream { stream, cut }, conn);
                }
                // Accept errors (e.g. too many open files) are transient: wait and retry,
                // as axum's own TcpListener impl does.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        let _: SocketAddr = self.0.local_addr()?;
        Ok(Conn {
            cut: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// A TCP stream that refuses writes once its connection was cut.
#[derive(Debug)]
struct CuttableStream {
    stream: TcpStream,
    cut: Arc<AtomicBool>,
}

impl CuttableStream {
    fn check(&self) -> io::Result<()> {
        if self.cut.load(Ordering::Acquire) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "injected fault: connection dropped before headers",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
