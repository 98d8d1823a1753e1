//! [`StagedInsert`]: many new nodes written in chunks and published at once,
//! so an import of any size is all or nothing without holding every node in
//! memory or in one store batch.

use crate::error::Result;
use crate::ids::{NodeId, RefName};
use crate::node::Node;
use crate::store::{StageId, Topology};

use super::ResponseTree;

/// How many nodes a chunk holds by default. At ≈ 1 KB per imported ChatGPT
/// node (≈ 5 KB in memory before encoding) a chunk costs ≈ 10 MB, and a
/// chunk's write is large enough that sled's per-transaction cost vanishes.
const CHUNK: usize = 2048;

/// New nodes added to a tree in chunks, then published in one atomic step
/// ([`StagedInsert::publish`]); dropped unpublished, nothing of it is left.
///
/// With a store that stages writes ([`Store::begin_stage`], the sled store)
/// every full chunk is written ahead, invisible, and only the nodes'
/// topology stays in memory (for the validation at publication); with any
/// other store the nodes are kept and written by one
/// [`ResponseTree::insert_all`] at publication.
///
/// The nodes are validated at publication, as [`ResponseTree::insert_all`]
/// validates them: given in any order, new ids, parents and context in the
/// tree or among the nodes.
///
/// [`Store::begin_stage`]: crate::store::Store::begin_stage
pub(crate) struct StagedInsert<'t> {
    tree: &'t ResponseTree,
    /// `None`: the store does not stage, `pending` collects every node.
    stage: Option<StageId>,
    /// Nodes not yet handed to the store.
    pending: Vec<Node>,
    /// The topology of every node handed to the store so far.
    staged: Vec<Topology>,
    chunk: usize,
    /// Set once published: nothing is left to abandon.
    published: bool,
}

impl ResponseTree {
    /// Starts a [`StagedInsert`] into this tree.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`](crate::Error::Storage) if the store cannot start a stage.
    pub(crate) fn staged_insert(&self) -> Result<StagedInsert<'_>> {
        Ok(StagedInsert {
            tree: self,
            stage: self.store.begin_stage()?,
            pending: Vec::new(),
            staged: Vec::new(),
            chunk: CHUNK,
            published: false,
        })
    }
}

impl StagedInsert<'_> {
    /// Sets how many nodes a chunk holds (tests use small chunks).
    #[cfg(test)]
    pub(crate) fn with_chunk(mut self, nodes: usize) -> Self {
        self.chunk = nodes.max(1);
        self
    }

    /// Adds `node`, writing a chunk ahead once enough are pending.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`](crate::Error::Storage) if a chunk cannot be written;
    /// drop the insert then (nothing of it becomes visible).
    pub(crate) fn add(&mut self, node: Node) -> Result<()> {
        self.pending.push(node);
        if self.stage.is_some() && self.pending.len() >= self.chunk {
            self.write_chunk()?;
        }
        Ok(())
    }

    /// How many nodes were added.
    pub(crate) fn len(&self) -> usize {
        self.staged.len() + self.pending.len()
    }

    /// Validates every node added and publishes them with `refs` (which may
    /// name them or nodes of the tree), atomically: afterwards the tree and
    /// its store hold all of them, or, on error, none.
    ///
    /// # Errors
    ///
    /// As [`ResponseTree::insert_all`].
    pub(crate) fn publish(mut self, refs: Vec<(RefName, NodeId)>) -> Result<()> {
        let Some(stage) = self.stage else {
            self.published = true;
            return self
                .tree
                .insert_all(std::mem::take(&mut self.pending), refs);
        };
        self.write_chunk()?;
        self.tree.publish_staged(stage, &self.staged, refs)?;
        self.published = true;
        Ok(())
    }

    fn write_chunk(&mut self) -> Result<()> {
        let Some(stage) = self.stage else {
            return Ok(());
        };
        if self.pending.is_empty() {
            return Ok(());
        }
        self.tree.store.stage_nodes(stage, &self.pending)?;
        self.staged
            .extend(self.pending.drain(..).map(|n| Topology::of(&n)));
        Ok(())
    }
}

impl Drop for StagedInsert<'_> {
    fn drop(&mut self) {
        if let (Some(stage), false) = (self.stage, self.published) {
            if let Err(error) = self.tree.store.abandon_stage(stage) {
                // Nothing is lost: the stage was never visible, and the next
                // open of the store deletes what is left of it.
                tracing::warn!(target: "resptree::tree", %error, "could not delete an abandoned import's staged nodes");
            }
        }
    }
}
