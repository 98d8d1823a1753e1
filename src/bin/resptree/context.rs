//! What every command needs: the store, the backend, the output style.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use resptree::backend::{Backend, ChatBackend, ResponsesBackend};
use resptree::client::Client;
use resptree::emulator::Emulator;
use resptree::{Engine, NodeId, ResponseTree};

use crate::args::{BackendKind, Command, Options};
use crate::output::Style;

/// The settled global options.
#[derive(Debug)]
pub(crate) struct Context {
    store: PathBuf,
    emulator: bool,
    model: Option<String>,
    backend: BackendKind,
    /// How to write to stdout (colour or not).
    pub(crate) style: Style,
}

/// An engine, and the embedded emulator it talks to (kept alive with it).
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) engine: Engine,
    /// Held so the emulator keeps serving until the command ends.
    _emulator: Option<Emulator>,
}

impl Context {
    /// Splits the options into the shared part and the command to run.
    pub(crate) fn new(options: Options) -> (Self, Command) {
        let Options {
            store,
            emulator,
            model,
            backend,
            command,
            verbose: _,
        } = options;
        let ctx = Self {
            store,
            emulator,
            model,
            backend,
            style: Style::stdout(),
        };
        (ctx, command)
    }

    /// Opens the tree at `--store`: a sled store path (created if missing) or a
    /// `postgres://` URL, as [`resptree::store::open_location`] reads it.
    pub(crate) fn open_tree(&self) -> anyhow::Result<Arc<ResponseTree>> {
        let store = resptree::store::open_location(&self.store)?;
        let tree = ResponseTree::with_store(store)?;
        warn_about_problems(&tree);
        Ok(Arc::new(tree))
    }

    /// Resolves what the user typed (ref, id or unique prefix) to a node.
    pub(crate) fn resolve(tree: &ResponseTree, input: &str) -> anyhow::Result<NodeId> {
        Ok(tree.resolve(input)?)
    }

    /// An engine over `tree`, as [`Context::connect`], after settling what
    /// earlier runs left in the store's journal: every command that writes
    /// through the server first records the responses a crashed run paid for
    /// ([`Engine::recover`], which never touches another live process's
    /// attempts). What it did, and what it could not settle, goes to stderr.
    pub(crate) async fn session(&self, tree: Arc<ResponseTree>) -> anyhow::Result<Session> {
        let session = self.connect(tree).await?;
        let report = session
            .engine
            // One look per attempt: what the server is still working on is
            // left for `resptree recover` rather than holding this command up.
            .recover_within(std::time::Duration::ZERO)
            .await
            .context("settling attempts an earlier run left")?;
        for line in crate::commands::recover::summary(&report) {
            eprintln!("resptree: {line}");
        }
        Ok(session)
    }

    /// Whether a command can reach a model: `--emulator`, or an API key set.
    pub(crate) fn has_server(&self) -> bool {
        self.emulator || std::env::var("OPENAI_API_KEY").is_ok_and(|k| !k.trim().is_empty())
    }

    /// An engine over `tree`: the embedded emulator with `--emulator`, else the
    /// server named by `OPENAI_API_KEY` / `OPENAI_BASE_URL`.
    pub(crate) async fn connect(&self, tree: Arc<ResponseTree>) -> anyhow::Result<Session> {
        let (client, emulator) = if self.emulator {
            let emulator = Emulator::spawn()
                .await
                .context("starting the embedded emulator")?;
            let client = Client::builder()
                .base_url(emulator.base_url())
                .api_key("sk-emulator")
                .build()?;
            (client, Some(emulator))
        } else {
            let has_key = std::env::var("OPENAI_API_KEY").is_ok_and(|k| !k.trim().is_empty());
            if !has_key {
                anyhow::bail!(
                    "this command needs a server: set OPENAI_API_KEY (and OPENAI_BASE_URL for another endpoint), or pass --emulator"
                );
            }
            (Client::from_env()?, None)
        };
        let backend: Arc<dyn Backend> = match self.backend {
            BackendKind::Responses => Arc::new(ResponsesBackend::new(client)),
            BackendKind::Chat => Arc::new(ChatBackend::new(client)),
        };
        let mut builder = Engine::builder(tree, backend);
        if let Some(model) = &self.model {
            builder = builder.model(model.clone());
        }
        Ok(Session {
            engine: builder.build()?,
            _emulator: emulator,
        })
    }
}

/// Tells the user, on stderr, what the store could not load (corrupt records,
/// writes the store lost): the command still runs on what did load.
fn warn_about_problems(tree: &ResponseTree) {
    const SHOWN: usize = 5;
    let problems = tree.load_problems();
    for problem in problems.iter().take(SHOWN) {
        eprintln!("resptree: warning: {problem}");
    }
    if problems.len() > SHOWN {
        eprintln!(
            "resptree: warning: {} more problems while loading the store",
            problems.len() - SHOWN
        );
    }
}
