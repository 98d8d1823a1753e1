//! What every handler shares: the tree (and engine, when writes are allowed),
//! the security settings, the change counter and the price table.

use std::sync::Arc;

use super::failure::Failure;
use super::live::Changes;
use super::security::Security;
use crate::cost::PriceTable;
use crate::engine::Engine;
use crate::error::Error;
use crate::tree::ResponseTree;

/// Where the tree comes from: with an engine the explorer can also write.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// Browse only.
    ReadOnly(Arc<ResponseTree>),
    /// Browse and grow the engine's tree.
    Engine(Engine),
}

impl Source {
    pub(crate) fn tree(&self) -> &ResponseTree {
        match self {
            Self::ReadOnly(tree) => tree,
            Self::Engine(engine) => engine.tree(),
        }
    }
}

/// The state behind every route (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct WebState {
    pub(crate) source: Source,
    pub(crate) security: Arc<Security>,
    pub(crate) changes: Arc<Changes>,
    /// What the page's money figures are priced at.
    pub(crate) prices: Arc<PriceTable>,
}

impl WebState {
    pub(crate) fn new(
        source: Source,
        security: Arc<Security>,
        changes: Arc<Changes>,
        prices: Arc<PriceTable>,
    ) -> Self {
        Self {
            source,
            security,
            changes,
            prices,
        }
    }

    /// The engine, or the `403` a read-only explorer answers to a write.
    pub(crate) fn engine(&self) -> Result<&Engine, Failure> {
        match &self.source {
            Source::Engine(engine) => Ok(engine),
            Source::ReadOnly(_) => Err(Failure::read_only()),
        }
    }

    /// Runs `work` on the tree on the blocking pool: the sled and PostgreSQL
    /// stores block, and a handler must not stall the runtime's workers.
    pub(crate) async fn blocking<T, F>(&self, work: F) -> Result<T, Failure>
    where
        T: Send + 'static,
        F: FnOnce(&ResponseTree) -> Result<T, Failure> + Send + 'static,
    {
        let source = self.source.clone();
        tokio::task::spawn_blocking(move || work(source.tree()))
            .await
            .map_err(|_| Failure::from(Error::Internal("a web request's store task panicked")))?
    }
}
