//! A typed client for the OpenAI Responses API (and Chat Completions), on reqwest.
//!
//! - [`Client`] / [`ClientBuilder`]: configuration, `create`, `create_stream`,
//!   `retrieve`, `delete`, `cancel`, `input_items`, `chat`, `chat_stream`.
//! - Background mode ([`CreateResponse::background`](CreateResponse#structfield.background)):
//!   [`Client::wait_until_done`] polls with backoff ([`Polling`]),
//!   [`Client::retrieve_stream`] streams the events again after a sequence number,
//!   [`Client::cancel`] stops it.
//! - Wire types: [`CreateResponse`], [`Response`], [`OutputItem`], … (lossless output items).
//! - [`ResponseStream`] / [`StreamEvent`]: typed server-sent events.
//! - Retries like the official SDKs: connection errors, timeouts, 408, 409, 429 and
//!   5xx, honouring `retry-after-ms`/`retry-after`; a stream is never retried once
//!   its reply has arrived, and a create (`POST /responses`) never once it may
//!   have been processed ([`Error::may_have_reached_server`]).
//!
//! Every reply's `x-request-id` is exposed: [`Response::request_id`],
//! [`ResponseStream::request_id`], [`Error::request_id`](crate::Error::request_id).
//!
//! ```no_run
//! use resptree::client::{Client, CreateResponse, Input};
//! # async fn run() -> resptree::Result<()> {
//! let client = Client::from_env()?;
//! let first = client
//!     .create(&CreateResponse::new("gpt-4o-mini", Input::text("Plan a weekend in Paris")))
//!     .await?;
//! let child = client
//!     .create(
//!         &CreateResponse::new("gpt-4o-mini", Input::text("Make it cheaper"))
//!             .previous_response_id(&first.id),
//!     )
//!     .await?;
//! println!("{}", child.output_text());
//! # Ok(()) }
//! ```

mod background;
mod chat;
mod input_tokens;
mod retry;
pub(crate) mod sse;
mod stream;
mod trace;
mod transport;
pub(crate) mod wire;

pub use background::Polling;
pub use chat::{
    ChatChoice, ChatChunk, ChatChunkChoice, ChatCompletion, ChatDelta, ChatMessage, ChatRequest,
    ChatStream, ChatUsage,
};
pub use stream::{ResponseStream, StreamEvent};
pub use wire::{
    CreateResponse, Deleted, FunctionCallItem, Input, InputItemsPage, InputItemsQuery,
    InputTokensDetails, MessageItem, Order, OutputContent, OutputItem, OutputText,
    OutputTokensDetails, ReasoningItem, Refusal, Response, ResponseError, ResponseUsage,
};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, TryStreamExt as _};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, USER_AGENT};

use crate::text::truncate;
use crate::{Error, Result};
use retry::RetryPolicy;
use transport::Call;

/// The default base URL, used when neither the builder nor `OPENAI_BASE_URL` sets one.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// An API key. Its `Debug` and `Display` never show it, and it is sent only in the
/// `Authorization` header (marked sensitive, so reqwest never logs it either).
///
/// ```
/// use resptree::client::ApiKey;
/// let key = ApiKey::new("sk-secret");
/// assert_eq!(format!("{key:?} {key}"), "ApiKey(<redacted>) <redacted>");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Box<str>);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into().into_boxed_str())
    }

    /// The key itself; only for building the header.
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        Self::new(key)
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> Self {
        Self::new(key)
    }
}

/// A Responses API client. Cheap to clone: clones share one connection pool and
/// configuration.
///
/// ```
/// # #[cfg(feature = "emulator")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let emu = resptree::emulator::Emulator::spawn().await?;
/// use futures_util::StreamExt;
/// use resptree::client::{Client, CreateResponse, Input, StreamEvent};
///
/// let client = Client::builder().base_url(emu.base_url()).api_key("sk-local").build()?;
/// let root = client.create(&CreateResponse::new("gpt-4o-mini", Input::text("Plan a weekend in Paris"))).await?;
///
/// // Branch: two children of the same response, one streamed.
/// let child = CreateResponse::new("gpt-4o-mini", Input::text("Make it cheaper")).previous_response_id(&root.id);
/// let plain = client.create(&child).await?;
/// let mut stream = client.create_stream(&child).await?;
/// let mut text = String::new();
/// while let Some(event) = stream.next().await {
///     if let StreamEvent::OutputTextDelta { delta, .. } = event? {
///         text.push_str(&delta);
///     }
/// }
/// assert_eq!(plain.previous_response_id.as_deref(), Some(root.id.as_str()));
/// assert!(!text.is_empty());
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "emulator"))]
/// # fn main() {}
/// ```
///
/// Every `async` method is cancel-safe in the sense that dropping its future
/// leaves the client usable; a dropped `create` may still have produced a response
/// on the server, which is a property of HTTP, not of this client.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The base URL without a trailing `/`, e.g. `https://api.openai.com/v1`.
    base_url: String,
    /// Authorization, organisation, project and user-agent headers.
    headers: HeaderMap,
    timeout: Duration,
    connect_timeout: Duration,
    stream_idle_timeout: Duration,
    retry: RetryPolicy,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The headers hold the key, so they are summarised, not printed.
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field(
                "api_key",
                &self.inner.headers.get(AUTHORIZATION).map(|_| "<redacted>"),
            )
            .field("timeout", &self.inner.timeout)
            .field("stream_idle_timeout", &self.inner.stream_idle_timeout)
            .field("max_retries", &self.inner.retry.max_retries)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder with the defaults: base URL [`DEFAULT_BASE_URL`], no key, connect
    /// timeout 5 s, request timeout 600 s, stream idle timeout 600 s, 2 retries,
    /// backoff from 0.5 s doubling up to 8 s.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from the environment, like the official SDKs:
    /// `OPENAI_API_KEY` (required), `OPENAI_BASE_URL` (default
    /// [`DEFAULT_BASE_URL`], must include `/v1`), `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if `OPENAI_API_KEY` is unset or empty, or a value is invalid.
    pub fn from_env() -> Result<Self> {
        ClientBuilder::from_env().build()
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Creates a response (`POST /responses`), retrying per the policy.
    ///
    /// Exactly once: a create is retried only when the failure shows the server
    /// did not process it (it answered 408/409/429/5xx, or the connection could
    /// not be made). A timeout after sending, a connection lost after
    /// connecting, or a reply body that broke off is returned as is
    /// ([`Error::may_have_reached_server`]): the server may already have made,
    /// and billed, the response, so the caller must look for it (by id, which a
    /// stream reports first: see [`Client::create_stream`]) before sending again.
    ///
    /// # Errors
    ///
    /// [`Error::Api`] / [`Error::RateLimited`] for an error reply (after retries),
    /// [`Error::Timeout`], [`Error::Connection`], [`Error::Decode`] for a body that
    /// is not a Response.
    pub async fn create(&self, request: &CreateResponse) -> Result<Response> {
        let body = request_body(request, false)?;
        let reply = self
            .execute(&Call::new(Method::POST, "responses").json(&body).creates())
            .await?;
        reply.decode_response()
    }

    /// Creates a response and streams its events (`POST /responses`, `stream: true`).
    ///
    /// Failures before the reply's headers arrive are retried like [`Client::create`]
    /// (only those that show the server did not process the request); once a
    /// 2xx reply arrived nothing is retried, so events and responses are never
    /// duplicated. The first event, `response.created`, carries the new
    /// response's id: keep it to find the response if the stream breaks.
    /// The request timeout covers only the wait for the headers; after that each
    /// event must arrive within the stream idle timeout.
    ///
    /// # Errors
    ///
    /// As [`Client::create`], for the request itself; errors during the stream
    /// come from the [`ResponseStream`].
    pub async fn create_stream(&self, request: &CreateResponse) -> Result<ResponseStream> {
        let body = request_body(request, true)?;
        let call = Call::new(Method::POST, "responses")
            .json(&body)
            .streaming()
            .creates();
        let reply = self.execute_stream(&call).await?;
        Ok(ResponseStream::new(reply, self.inner.stream_idle_timeout))
    }

    /// Retrieves a stored response (`GET /responses/{id}`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] for an id with characters outside `[A-Za-z0-9_.-]`;
    /// otherwise as [`Client::create`] (a 404 for an unknown id is [`Error::Api`]).
    pub async fn retrieve(&self, id: &str) -> Result<Response> {
        let path = format!("responses/{}", path_id(id)?);
        self.execute(&Call::new(Method::GET, path))
            .await?
            .decode_response()
    }

    /// Deletes a stored response (`DELETE /responses/{id}`). The reply body is not
    /// relied on: any 2xx means deleted.
    ///
    /// # Errors
    ///
    /// As [`Client::retrieve`].
    pub async fn delete(&self, id: &str) -> Result<Deleted> {
        let path = format!("responses/{}", path_id(id)?);
        let reply = self.execute(&Call::new(Method::DELETE, path)).await?;
        Ok(Deleted {
            id: id.to_owned(),
            request_id: reply.request_id,
        })
    }

    /// Cancels a background response (`POST /responses/{id}/cancel`).
    ///
    /// # Errors
    ///
    /// As [`Client::retrieve`].
    pub async fn cancel(&self, id: &str) -> Result<Response> {
        let path = format!("responses/{}/cancel", path_id(id)?);
        self.execute(&Call::new(Method::POST, path))
            .await?
            .decode_response()
    }

    /// One page of a response's input items (`GET /responses/{id}/input_items`).
    ///
    /// # Errors
    ///
    /// As [`Client::retrieve`].
    pub async fn input_items_page(
        &self,
        id: &str,
        query: &InputItemsQuery,
    ) -> Result<InputItemsPage> {
        let path = format!("responses/{}/input_items", path_id(id)?);
        let reply = self
            .execute(&Call::new(Method::GET, path).query(query.to_pairs()))
            .await?;
        reply.decode("input items page")
    }

    /// All input items of a response, fetching page after page as the stream is
    /// polled (the `after` cursor is the previous page's `last_id`).
    ///
    /// The stream ends after the first error. A page that says `has_more` but gives
    /// no cursor ends it with [`Error::Stream`] rather than looping.
    pub fn input_items(
        &self,
        id: &str,
        query: InputItemsQuery,
    ) -> impl Stream<Item = Result<serde_json::Value>> + Send + 'static {
        let client = self.clone();
        let id = id.to_owned();
        futures_util::stream::try_unfold(Some(query), move |query| {
            let client = client.clone();
            let id = id.clone();
            async move {
                let Some(query) = query else {
                    return Ok(None);
                };
                let page = client.input_items_page(&id, &query).await?;
                let next = if page.has_more {
                    let cursor = page.last_id.clone().or_else(|| {
                        page.data
                            .last()
                            .and_then(|i| i.get("id")?.as_str().map(str::to_owned))
                    });
                    let Some(cursor) = cursor else {
                        return Err(Error::stream(
                            "input items page has more but no cursor",
                            None,
                        ));
                    };
                    Some(query.after(cursor))
                } else {
                    None
                };
                let items = futures_util::stream::iter(page.data.into_iter().map(Ok));
                Ok(Some((items, next)))
            }
        })
        .try_flatten()
    }
}

/// Serialises a request body and sets its `stream` flag.
fn request_body<T: serde::Serialize>(request: &T, stream: bool) -> Result<serde_json::Value> {
    let mut body = serde_json::to_value(request)
        .map_err(|e| Error::config_with("request cannot be serialised", e))?;
    if let serde_json::Value::Object(map) = &mut body {
        if stream {
            map.insert("stream".to_owned(), serde_json::Value::Bool(true));
        } else {
            map.remove("stream");
        }
    }
    Ok(body)
}

/// Checks that an id can be put into a URL path as it is.
fn path_id(id: &str) -> Result<&str> {
    let reason = if id.is_empty() {
        Some("is empty")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        || id == "."
        || id == ".."
    {
        Some("has characters other than letters, digits, '_', '-' and '.'")
    } else {
        None
    };
    match reason {
        None => Ok(id),
        Some(reason) => Err(Error::InvalidId {
            kind: "response id",
            input: crate::text::truncate(id, 128),
            reason,
        }),
    }
}

/// Configures a [`Client`]. Setters never fail; [`ClientBuilder::build`] checks
/// everything and reports the first invalid value.
#[must_use]
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    api_key: Option<ApiKey>,
    organization: Option<String>,
    project: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    stream_idle_timeout: Duration,
    retry: RetryPolicy,
    http: Option<reqwest::Client>,
    /// Set by `from_env`: like the SDKs, an environment-configured client needs a key.
    require_key: bool,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientBuilder {
    /// A builder with the defaults listed at [`Client::builder`].
    pub fn new() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: None,
            organization: None,
            project: None,
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(5),
            stream_idle_timeout: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            http: None,
            require_key: false,
        }
    }

    /// A builder filled from `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_ORG_ID` and
    /// `OPENAI_PROJECT_ID`; later setters override them. A missing key is reported
    /// by [`ClientBuilder::build`].
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let mut builder = Self::new();
        builder.require_key = true;
        if let Some(key) = get("OPENAI_API_KEY") {
            builder = builder.api_key(key);
        }
        if let Some(url) = get("OPENAI_BASE_URL") {
            builder = builder.base_url(url);
        }
        if let Some(org) = get("OPENAI_ORG_ID") {
            builder = builder.organization(org);
        }
        if let Some(project) = get("OPENAI_PROJECT_ID") {
            builder = builder.project(project);
        }
        builder
    }

    /// The base URL, including `/v1`, e.g. an emulator's `http://127.0.0.1:PORT/v1`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The API key, sent as `Authorization: Bearer …`. Without one no
    /// `Authorization` header is sent (fine for local servers).
    pub fn api_key(mut self, key: impl Into<ApiKey>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The `OpenAI-Organization` header.
    pub fn organization(mut self, org: impl Into<String>) -> Self {
        self.organization = Some(org.into());
        self
    }

    /// The `OpenAI-Project` header.
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// The limit on establishing a connection (default 5 s). Ignored when a
    /// caller-supplied client is used: configure it on that client.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The limit on one attempt of a request, from sending to the whole body read
    /// (default 600 s). For streams it covers only the wait for the headers.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest wait between two chunks of a stream (default 600 s, like the
    /// SDKs' read timeout).
    pub fn stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.stream_idle_timeout = timeout;
        self
    }

    /// Retries after a failed first attempt (default 2; 0 disables retries).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.retry.max_retries = retries;
        self
    }

    /// The first backoff delay, doubled on each retry (default 0.5 s). Used when
    /// the server gives no usable retry hint.
    pub fn retry_base_delay(mut self, delay: Duration) -> Self {
        self.retry.base_delay = delay;
        self
    }

    /// The cap on the backoff delay (default 8 s).
    pub fn retry_max_delay(mut self, delay: Duration) -> Self {
        self.retry.max_delay = delay;
        self
    }

    /// Uses a caller-supplied reqwest client (shared pool, proxies, TLS settings).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first invalid setting: a base URL that is not an
    /// `http`/`https` URL, a key or header value with characters HTTP forbids, a
    /// zero timeout, a missing `OPENAI_API_KEY` (for [`ClientBuilder::from_env`]),
    /// or a reqwest client that fails to build.
    pub fn build(self) -> Result<Client> {
        if self.require_key && self.api_key.is_none() {
            return Err(Error::config("OPENAI_API_KEY is not set"));
        }
        let base_url = self.base_url.trim_end_matches('/').to_owned();
        match reqwest::Url::parse(&base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            _ => {
                return Err(Error::config(format!(
                    "base URL {:?} is not an http(s) URL",
                    truncate(&self.base_url, 128)
                )));
            }
        }
        for (name, value) in [
            ("timeout", self.timeout),
            ("connect timeout", self.connect_timeout),
            ("stream idle timeout", self.stream_idle_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::config(format!("{name} must be greater than zero")));
            }
        }

        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("resptree/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(key) = &self.api_key {
            // The error must not echo the key, so it names only what was wrong.
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                .ok()
                .filter(|_| !key.expose().trim().is_empty())
                .ok_or_else(|| {
                    Error::config("API key is empty or has characters not allowed in a header")
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in [
            ("openai-organization", &self.organization),
            ("openai-project", &self.project),
        ] {
            if let Some(value) = value {
                let value = HeaderValue::from_str(value).map_err(|_| {
                    Error::config(format!(
                        "{name} {:?} is not a valid header value",
                        truncate(value, 128)
                    ))
                })?;
                headers.insert(HeaderName::from_static(name), value);
            }
        }

        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .build()
                .map_err(|e| Error::config_with("HTTP client cannot be built", e.without_url()))?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                headers,
                timeout: self.timeout,
                connect_timeout: self.connect_timeout,
                stream_idle_timeout: self.stream_idle_timeout,
                retry: self.retry,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn from_env_reads_all_variables() {
        let client = ClientBuilder::from_lookup(env(&[
            ("OPENAI_API_KEY", "sk-env-secret"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/"),
            ("OPENAI_ORG_ID", "org-1"),
            ("OPENAI_PROJECT_ID", "proj-1"),
        ]))
        .build()
        .unwrap();
        assert_eq!(client.base_url(), "http://127.0.0.1:9/v1");
        let h = &client.inner.headers;
        assert_eq!(h["openai-organization"], "org-1");
        assert_eq!(h["openai-project"], "proj-1");
        assert_eq!(h[AUTHORIZATION], "Bearer sk-env-secret");
        assert!(h[AUTHORIZATION].is_sensitive());
    }

    #[test]
    fn from_env_defaults_base_url_and_requires_key() {
        let client = ClientBuilder::from_lookup(env(&[("OPENAI_API_KEY", "sk-x")]))
            .build()
            .unwrap();
        assert_eq!(client.base_url(), DEFAULT_BASE_URL);
        let err = ClientBuilder::from_lookup(env(&[("OPENAI_API_KEY", " ")]))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("OPENAI_API_KEY"), "{err}");
        // An explicit key fixes the missing variable.
        ClientBuilder::from_lookup(env(&[]))
            .api_key("sk-y")
            .build()
            .unwrap();
    }

    #[test]
    fn build_rejects_bad_settings_without_echoing_the_key() {
        let err = Client::builder().base_url("not a url").build().unwrap_err();
        assert!(
            matches!(err, Error::Config { ref what, .. } if what.contains("not a url")),
            "{err}"
        );
        let err = Client::builder()
            .base_url("ftp://x/v1")
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        let err = Client::builder()
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("timeout"), "{err}");
        let err = Client::builder()
            .api_key("sk-bad\nsecret")
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        assert!(!format!("{err} {err:?}").contains("secret"));
        let err = Client::builder()
            .organization("a\u{7f}b")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("openai-organization"), "{err}");
    }

    #[test]
    fn debug_redacts_the_key() {
        let client = Client::builder().api_key("sk-topsecret").build().unwrap();
        let builder = Client::builder().api_key("sk-topsecret");
        for text in [
            format!("{client:?}"),
            format!("{client:#?}"),
            format!("{builder:?}"),
        ] {
            assert!(!text.contains("topsecret"), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
    }

    #[test]
    fn path_ids_are_checked() {
        assert_eq!(path_id("resp_abc-1.2").unwrap(), "resp_abc-1.2");
        for bad in ["", "a/b", "a?b", "..", "a b", "é"] {
            assert!(
                matches!(path_id(bad), Err(Error::InvalidId { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn stream_flag_is_set_or_removed() {
        let req = CreateResponse::new("m", Input::text("hi")).param("stream", true.into());
        assert_eq!(request_body(&req, false).unwrap().get("stream"), None);
        assert_eq!(request_body(&req, true).unwrap()["stream"], true);
    }

    #[test]
    fn client_is_send_sync() {
        fn assert_bounds<T: Send + Sync + Clone + 'static>() {}
        assert_bounds::<Client>();
        assert_bounds::<ApiKey>();
    }

    #[test]
    fn futures_and_streams_can_be_spawned() {
        // The engine runs requests on tokio tasks, so every future must be Send.
        fn assert_send<T: Send>(_: &T) {}
        fn assert_send_static<T: Send + 'static>(_: &T) {}
        let client = Client::builder().build().unwrap();
        let req = CreateResponse::new("m", Input::text("hi"));
        let chat = ChatRequest::new("m", Vec::new());
        assert_send(&client.create(&req));
        assert_send(&client.create_stream(&req));
        assert_send(&client.retrieve("resp_1"));
        assert_send(&client.delete("resp_1"));
        assert_send(&client.cancel("resp_1"));
        assert_send(&client.wait_until_done("resp_1", Polling::default()));
        assert_send(&client.retrieve_stream("resp_1", Some(3)));
        assert_send(&client.chat(&chat));
        assert_send(&client.chat_stream(&chat));
        assert_send_static(&client.input_items("resp_1", InputItemsQuery::default()));
        fn assert_stream_send<T: Send + Unpin + 'static>() {}
        assert_stream_send::<ResponseStream>();
        assert_stream_send::<ChatStream>();
    }
}
