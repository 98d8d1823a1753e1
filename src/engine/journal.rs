//! The attempt journal: every request is written down before it is sent, so a
//! crash can lose a request but never a response the engine was told about.
//!
//! Life of an attempt: [`Engine::journal_attempt`] writes it (parent, input,
//! parameters); a stream's first event adds the server's response id; the node
//! and the attempt's removal are committed in one atomic batch. A request that
//! fails with an error removes its attempt (the caller has the error). Only a
//! crash or a dropped future leaves attempts behind; [`Engine::recover`] settles
//! them.

use serde_json::json;

use super::{Engine, Plan};
use crate::backend::Context;
use crate::error::{Error, Result};
use crate::ids::{NodeId, ResponseId};
use crate::node::{Node, Timestamp};
use crate::store::{Attempt, AttemptId, Batch, Op};

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
    /// Writes `plan` to the journal before it is sent.
    pub(super) async fn journal_attempt(&self, plan: &Plan) -> Result<Attempt> {
        let attempt = Attempt {
            id: AttemptId::new(),
            parent: plan.parent.clone(),
            input: plan.request.input.clone(),
            params: json!({
                "model": plan.request.model,
                "instructions": plan.request.instructions,
                "store": plan.request.store,
                "replay": matches!(plan.request.context, Context::Replay(_)),
                "metadata": plan.request.metadata,
                "labels": plan.options.labels,
                "extra_context": plan.options.extra_context,
            }),
            response_id: None,
            started_at: Timestamp::now(),
        };
        let store = std::sync::Arc::clone(self.tree().store());
        let record = attempt.clone();
        self.blocking(move || store.apply(Batch::from(vec![Op::PutAttempt(Box::new(record))])))
            .await?;
        Ok(attempt)
    }

    /// Records the server's id for an attempt as soon as it is known.
    pub(super) async fn journal_response_id(
        &self,
        attempt: &Attempt,
        response_id: ResponseId,
    ) -> Result<()> {
        let mut record = attempt.clone();
        record.response_id = Some(response_id);
        let store = std::sync::Arc::clone(self.tree().store());
        self.blocking(move || store.apply(Batch::from(vec![Op::PutAttempt(Box::new(record))])))
            .await
    }

    /// On failure, removes the attempt (the caller gets the error); on success,
    /// passes the value on.
    pub(super) async fn settle<T>(&self, sent: Result<T>, attempt: &Attempt) -> Result<T> {
        match sent {
            Ok(value) => Ok(value),
            Err(err) => {
                // Best effort: if this write fails too, recover() reports the attempt later.
                let _ = self.forget_attempt(attempt.id).await;
                Err(err)
            }
        }
    }

    async fn forget_attempt(&self, id: AttemptId) -> Result<()> {
        let store = std::sync::Arc::clone(self.tree().store());
        self.blocking(move || store.apply(Batch::from(vec![Op::RemoveAttempt(id)])))
            .await
    }

    /// Commits `nodes` and removes `attempt`, in one atomic write.
    pub(super) async fn commit(&self, nodes: Vec<Node>, attempt: &Attempt) -> Result<Vec<Node>> {
        let tree = std::sync::Arc::clone(&self.inner.tree);
        let attempt = attempt.id;
        self.blocking(move || {
            tree.insert_group(nodes.clone(), vec![Op::RemoveAttempt(attempt)])?;
            Ok(nodes)
        })
        .await
    }

    /// Settles the attempts left in the journal by a crash or a cancelled call.
    ///
    /// An attempt whose response id was journaled is fetched from the server and
    /// recorded as the node it would have been; one without an id (the crash came
    /// before the server answered) cannot be matched to a response and is
    /// reported as unresolved. Every attempt leaves the journal either way.
    ///
    /// Call it when no request of this engine is in flight (typically at start-up):
    /// an in-flight request's attempt would otherwise be settled twice.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let store = std::sync::Arc::clone(self.tree().store());
        let attempts = self.blocking(move || store.attempts()).await?;
        let mut report = RecoveryReport::default();
        for attempt in attempts {
            match self.recover_one(&attempt).await {
                Ok(Some(id)) => report.recovered.push(id),
                Ok(None) => {}
                Err(err) => {
                    self.forget_attempt(attempt.id).await?;
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
            self.forget_attempt(attempt.id).await?;
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
        node.origin.replayed = attempt.params.get("replay").and_then(|v| v.as_bool()) == Some(true);
        if let Some(extra) = attempt.params.get("extra_context") {
            node.extra_context = serde_json::from_value(extra.clone()).unwrap_or_default();
        }
        if let Some(labels) = attempt.params.get("labels") {
            node.labels = serde_json::from_value(labels.clone()).unwrap_or_default();
        }
        let node_id = node.id.clone();
        self.commit(vec![node], attempt).await?;
        Ok(Some(node_id))
    }
}
