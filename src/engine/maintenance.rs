//! Bringing server responses into the tree, and pruning branches out of it.

use super::Engine;
use crate::backend::RetrievedResponse;
use crate::error::{Error, Result};
use crate::ids::{NodeId, ResponseId};
use crate::node::{Node, Origin};

/// What [`Engine::adopt`] recorded.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct AdoptReport {
    /// The nodes recorded, oldest first.
    pub adopted: Vec<NodeId>,
    /// The node the adopted chain hangs under, if it was already in the tree.
    pub attached_to: Option<NodeId>,
    /// The ancestor the server no longer had: the chain was recorded from the
    /// response below it, as a new root.
    pub truncated_at: Option<ResponseId>,
}

/// What [`Engine::prune`] removed.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct PruneReport {
    /// The nodes removed from the tree and the store.
    pub removed: Vec<NodeId>,
    /// Responses deleted on the server.
    pub remote_deleted: Vec<ResponseId>,
    /// Server deletions that failed; the local removal stands.
    pub remote_errors: Vec<(ResponseId, Error)>,
}

impl Engine {
    /// Records an existing server response, and the ancestors it continues, in the
    /// tree: follows `previous_response_id` up until a node already in the tree (the
    /// chain is attached under it) or a root. If the server has forgotten an
    /// ancestor, the chain below it is recorded as a new root and the report says so.
    ///
    /// Cancel safety: the chain is committed in one atomic write at the end.
    pub async fn adopt(&self, id: &ResponseId) -> Result<AdoptReport> {
        let mut report = AdoptReport::default();
        let mut chain = Vec::new();
        let mut next = Some(id.clone());
        while let Some(current) = next.take() {
            let node_id = NodeId::from(&current);
            if self.tree().contains(&node_id) {
                report.attached_to = Some(node_id);
                break;
            }
            self.inner
                .requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match self.backend().retrieve(&current).await {
                Ok(fetched) => {
                    next.clone_from(&fetched.previous_response_id);
                    chain.push((current, fetched));
                }
                Err(err) if chain.is_empty() => return Err(err),
                Err(err) if err.status() == Some(404) => {
                    report.truncated_at = Some(current);
                    break;
                }
                Err(err) => return Err(err),
            }
        }
        let mut parent = report.attached_to.clone();
        let mut nodes = Vec::with_capacity(chain.len());
        for (response_id, fetched) in chain.into_iter().rev() {
            let node = self.node_from_server(response_id, parent.take(), fetched);
            parent = Some(node.id.clone());
            report.adopted.push(node.id.clone());
            nodes.push(node);
        }
        self.with_tree(move |tree| tree.insert_all(nodes, Vec::new()))
            .await?;
        Ok(report)
    }

    /// The node recording a response fetched back from the server, under `parent`.
    pub(super) fn node_from_server(
        &self,
        response_id: ResponseId,
        parent: Option<NodeId>,
        fetched: RetrievedResponse,
    ) -> Node {
        let reply = fetched.reply;
        let mut node = Node::new(NodeId::from(&response_id), parent);
        node.created_at = reply.created_at;
        node.input = fetched.input;
        node.output = reply.output;
        node.output_text = reply.output_text;
        node.model = reply.model;
        node.instructions = fetched.instructions;
        node.status = reply.status;
        node.usage = reply.usage;
        node.metadata = fetched.metadata;
        node.origin = Origin::backend(self.backend().name());
        node.origin.previous_response_id = fetched.previous_response_id;
        node.origin.stored = reply.stored;
        node.origin.response_id = Some(response_id);
        if node.origin.stored {
            node.origin.expires_at = Some(self.expiry_of(node.created_at));
        }
        node
    }

    /// Removes the subtree under `id` (inclusive) from the tree and the store, in
    /// one atomic write; with `remote`, also deletes each removed node's response on
    /// the server (best effort, after the local removal, concurrently within the
    /// engine's limit).
    pub async fn prune(&self, id: &NodeId, remote: bool) -> Result<PruneReport> {
        let target = id.clone();
        let (removed, response_ids) = self
            .with_tree(move |tree| {
                let ids = tree.descendants(&target)?;
                let mut response_ids = Vec::new();
                for id in &ids {
                    let node = tree.get(id)?;
                    if node.origin.stored {
                        response_ids.extend(node.origin.response_id);
                    }
                }
                let removed = tree.remove_subtree(&target)?;
                Ok((removed, response_ids))
            })
            .await?;
        let mut report = PruneReport {
            removed,
            ..PruneReport::default()
        };
        if remote {
            let deletions = response_ids.into_iter().map(|rid| async move {
                let _permit = self.permit().await?;
                self.inner
                    .requests
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let result = self.backend().delete(&rid).await;
                Ok::<_, Error>((rid, result))
            });
            for outcome in futures_util::future::join_all(deletions).await {
                let (rid, result) = outcome?;
                match result {
                    Ok(()) => report.remote_deleted.push(rid),
                    Err(err) => report.remote_errors.push((rid, err)),
                }
            }
        }
        Ok(report)
    }
}
