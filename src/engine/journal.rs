//! Recovery: settling the attempts a crash or a dropped future left in the
//! journal.
//!
//! Life of an attempt (see `pipeline.rs`): it is journaled before its request is
//! sent; a stream's first event adds the server's response id; the node and the
//! attempt's removal are committed in one atomic write. A request that fails
//! with an error removes its attempt (the caller has the error). Only a crash or
//! a dropped future leaves attempts behind; [`Engine::recover`] settles them.

use super::Engine;
use crate::error::{Error, Result};
use crate::ids::NodeId;
use crate::store::Attempt;

/// What [`Engine::recover`] found in the journal.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Nodes fetched from the server and recorded.
    pub recovered: Vec<NodeId>,
    /// Attempts that could not be settled, with the reason; they have been
    /// removed from the journal.
    pub unresolved: Vec<(Attempt, Error)>,
}

impl Engine {
    /// Settles the attempts left in the journal by a crash or a cancelled call.
    ///
    /// An attempt whose response id was journaled is fetched from the server and
    /// recorded as the node it would have been; one without an id (the crash came
    /// before the server answered) cannot be matched to a response and is
    /// reported as unresolved. Every attempt leaves the journal either way.
    ///
    /// Call it when no request of this engine is in flight (typically at start-up):
    /// an in-flight request's attempt would otherwise be settled twice.
    ///
    /// # Errors
    ///
    /// A store error reading the journal or settling an attempt; what was
    /// recovered before it stays recorded.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let attempts = self.with_tree(|tree| tree.attempts()).await?;
        let mut report = RecoveryReport::default();
        for attempt in attempts {
            match self.recover_one(&attempt).await {
                Ok(Some(id)) => {
                    tracing::info!(attempt = %attempt.id, node = %id, "recovered");
                    report.recovered.push(id);
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(attempt = %attempt.id, error = %err, "could not recover");
                    let id = attempt.id;
                    self.with_tree(move |tree| tree.settle(&[id])).await?;
                    report.unresolved.push((attempt, err));
                }
            }
        }
        Ok(report)
    }

    /// Recovers one attempt; `Ok(None)` when its node was already recorded.
    async fn recover_one(&self, attempt: &Attempt) -> Result<Option<NodeId>> {
        let Some(response_id) = attempt.response_id.clone() else {
            return Err(Error::Unsupported(
                "recovering an attempt whose response id was never received",
            ));
        };
        let id = NodeId::from(&response_id);
        if self.tree().contains(&id) {
            let attempt = attempt.id;
            self.with_tree(move |tree| tree.settle(&[attempt])).await?;
            return Ok(None);
        }
        if let Some(parent) = &attempt.parent {
            if !self.tree().contains(parent) {
                return Err(Error::NodeNotFound(parent.clone()));
            }
        }
        let fetched = self.backend().retrieve(&response_id).await?;
        let mut node = self.node_from_server(response_id, attempt.parent.clone(), fetched);
        // What this engine sent, without any replayed transcript the server saw.
        node.input = attempt.input.clone();
        node.origin.replayed = attempt.params.replay;
        node.extra_context = attempt.params.extra_context.clone();
        node.labels = attempt.params.labels.clone();
        node.settings = attempt.params.settings.clone();
        let node_id = node.id.clone();
        self.commit(vec![node], attempt).await?;
        Ok(Some(node_id))
    }
}
