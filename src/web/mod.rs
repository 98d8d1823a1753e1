//! The local web explorer (`resptree serve`) and the single-file HTML export
//! (`resptree export --format html`).
//!
//! [`WebServer`] serves a JSON API over a [`ResponseTree`] and a hand-written
//! HTML/CSS/JavaScript app embedded in the binary (no build step, nothing loaded
//! from the network). With an [`Engine`] it also grows the tree: continue,
//! branch and fan out stream their answers into the page (server-sent events);
//! prune and refs are plain JSON calls. Without one it is read-only.
//!
//! [`export_html`] writes the same app as one self-contained, read-only file
//! with the tree embedded as JSON.
//!
//! Security model (see `docs/web.md`): loopback by default, and then every
//! request's `Host` must name the loopback address (against DNS rebinding); any
//! other address needs [`WebServerBuilder::allow_remote`] and an access token
//! on every request. Every write needs the per-session CSRF token in the
//! `X-CSRF-Token` header, and a cross-origin `Origin` is refused. The API
//! returns text as JSON strings only; the page inserts it as text or through
//! its own whitelisting Markdown renderer. The API key never leaves the engine.
//!
//! ```no_run
//! # async fn demo() -> resptree::Result<()> {
//! use std::sync::Arc;
//! use resptree::ResponseTree;
//! use resptree::web::WebServer;
//!
//! let tree = Arc::new(ResponseTree::open("./store")?);
//! let server = WebServer::read_only(tree).spawn().await?;
//! println!("{}", server.url());
//! # Ok(()) }
//! ```

mod actions;
mod api;
mod assets;
mod export;
mod failure;
mod live;
mod notes;
mod search;
mod security;
mod state;
mod view;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::cost::PriceTable;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::tree::ResponseTree;

pub use export::export_html;

use security::Security;
use state::{Source, WebState};

/// Builds a [`WebServer`]; see [`WebServer::read_only`] and
/// [`WebServer::with_engine`].
#[derive(Debug)]
#[must_use]
pub struct WebServerBuilder {
    source: Source,
    listen: SocketAddr,
    allow_remote: bool,
    poll_interval: Duration,
    prices: PriceTable,
}

/// A running web explorer. Dropping it stops the server.
#[derive(Debug)]
pub struct WebServer {
    addr: SocketAddr,
    security: Arc<Security>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    live: live::Poller,
}

impl WebServer {
    /// A read-only explorer over `tree`: browse, compare, search; the write
    /// endpoints answer `403` with a message saying no engine is attached.
    pub fn read_only(tree: Arc<ResponseTree>) -> WebServerBuilder {
        WebServerBuilder::new(Source::ReadOnly(tree))
    }

    /// An explorer that can also grow the tree through `engine` (its tree is
    /// the one shown).
    pub fn with_engine(engine: Engine) -> WebServerBuilder {
        WebServerBuilder::new(Source::Engine(engine))
    }

    /// The address the server listens on (the real port, when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to open: `http://ADDR/`, with `?token=…` when an access token is
    /// required (remote mode). The page moves the token into a cookie and
    /// drops it from the address bar.
    pub fn url(&self) -> String {
        match self.security.access_token() {
            Some(token) => format!("http://{}/?token={token}", self.addr),
            None => format!("http://{}/", self.addr),
        }
    }

    /// The access token every request must carry, when one is required
    /// ([`WebServerBuilder::allow_remote`]).
    pub fn access_token(&self) -> Option<&str> {
        self.security.access_token()
    }

    /// This session's CSRF token: write requests carry it in the
    /// `X-CSRF-Token` header. The page reads it from its own HTML, which a
    /// page of another origin cannot read.
    pub fn csrf_token(&self) -> &str {
        self.security.csrf_token()
    }

    /// Stops accepting connections, lets open requests finish (at most 5 s; a
    /// live stream is cut), and waits for the server task.
    pub async fn shutdown(mut self) {
        self.live.stop();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Serves until `signal` resolves, then shuts down as
    /// [`WebServer::shutdown`].
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.live.stop();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl WebServerBuilder {
    fn new(source: Source) -> Self {
        Self {
            source,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            allow_remote: false,
            poll_interval: live::DEFAULT_POLL,
            prices: PriceTable::builtin(),
        }
    }

    /// The address to listen on; default `127.0.0.1:0` (a free loopback
    /// port). A non-loopback address also needs
    /// [`WebServerBuilder::allow_remote`].
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Allows a non-loopback address. Every request must then carry the access
    /// token ([`WebServer::access_token`]; `?token=` on the first page load,
    /// then a cookie, or an `Authorization: Bearer` header), and the `Host`
    /// check is left to the token. Also turns the token on for a loopback
    /// address.
    pub fn allow_remote(mut self, allow: bool) -> Self {
        self.allow_remote = allow;
        self
    }

    /// How long the explorer of a shared store (PostgreSQL) waits for the
    /// store's change notification before it asks anyway what other
    /// processes wrote; default 30 s. Notifications arrive with each commit, so
    /// this only bounds how late a lost one is made up for; while the store's
    /// listener is disconnected the explorer asks every 2 s (or this, if
    /// shorter). Stores without a change feed are not asked.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// The prices the page's money figures use; default
    /// [`PriceTable::builtin`]. `resptree serve` passes [`PriceTable::load`]
    /// (the user's price file over the built-in one).
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// Binds the address and starts serving in a background task (and, over a
    /// shared store, the change-feed poller).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the address is not loopback and remote access was
    /// not allowed, or when it cannot be bound.
    pub async fn spawn(self) -> Result<WebServer> {
        if !self.listen.ip().is_loopback() && !self.allow_remote {
            return Err(Error::Config {
                what: format!(
                    "{} is not a loopback address; remote access needs allow_remote (resptree serve --allow-remote), and then a token",
                    self.listen
                ),
                source: None,
            });
        }
        let listener = TcpListener::bind(self.listen).await.map_err(|e| {
            Error::config_with(format!("cannot bind the web server to {}", self.listen), e)
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::config_with("cannot read the web server's address", e))?;
        let security = Arc::new(Security::new(addr, self.allow_remote));
        let live = Arc::new(live::Changes::default());
        let state = WebState::new(
            self.source,
            Arc::clone(&security),
            Arc::clone(&live),
            Arc::new(self.prices),
        );
        let poller = live::Poller::start(state.clone(), self.poll_interval);
        let router = api::router(state);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(WebServer {
            addr,
            security,
            stop: Some(stop),
            task: Some(task),
            live: poller,
        })
    }
}
