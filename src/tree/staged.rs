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
pub(crate) const CHUNK: usize = 2048;

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

#[cfg(test)]
#[cfg(feature = "sled")]
mod tests {
    use super::*;
    use crate::Error;
    use crate::search::SearchOptions;

    fn chain(parent: Option<&NodeId>, n: usize, word: &str) -> Vec<Node> {
        let mut out: Vec<Node> = Vec::new();
        for i in 0..n {
            let up = out.last().map(|p| p.id.clone()).or(parent.cloned());
            out.push(Node::new(NodeId::local(), up).with_user_text(format!("{word} {i}")));
        }
        out
    }

    fn found(tree: &ResponseTree, word: &str) -> usize {
        tree.search(word, &SearchOptions::new().with_limit(1_000))
            .unwrap()
            .len()
    }

    #[test]
    fn chunks_are_published_at_once_with_refs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        let nodes = chain(None, 55, "zebra");
        let last = nodes[54].id.clone();
        {
            let tree = ResponseTree::open(&path).unwrap();
            let mut insert = tree.staged_insert().unwrap().with_chunk(10);
            for node in nodes.iter().rev().cloned() {
                insert.add(node).unwrap();
            }
            // Five chunks are written, none is in the tree yet.
            assert_eq!(insert.len(), 55);
            assert!(tree.is_empty());
            assert_eq!(found(&tree, "zebra"), 0);
            let name = RefName::new("end").unwrap();
            insert.publish(vec![(name, last.clone())]).unwrap();
            assert_eq!(tree.len(), 55);
            assert_eq!(found(&tree, "zebra"), 55);
        }
        let tree = ResponseTree::open(&path).unwrap();
        assert_eq!(tree.len(), 55);
        assert_eq!(tree.resolve("end").unwrap(), last);
        assert_eq!(tree.path(&last).unwrap().len(), 55);
        assert_eq!(tree.get(&nodes[3].id).unwrap(), nodes[3]);
        assert_eq!(found(&tree, "zebra"), 55);
    }

    /// A node refused at publication (its parent is nowhere) fails the whole
    /// insert; the chunks written before are deleted, in this process and on
    /// disk.
    #[test]
    fn a_refused_publication_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        {
            let tree = ResponseTree::open(&path).unwrap();
            let mut insert = tree.staged_insert().unwrap().with_chunk(10);
            for node in chain(None, 30, "zebra") {
                insert.add(node).unwrap();
            }
            let orphan = NodeId::local();
            insert
                .add(Node::new(NodeId::local(), Some(orphan)).with_user_text("zebra orphan"))
                .unwrap();
            let err = insert.publish(Vec::new()).unwrap_err();
            assert!(matches!(err, Error::InvalidTree(_)), "{err:?}");
            assert!(tree.is_empty());
            assert_eq!(found(&tree, "zebra"), 0);
            // Dropped unpublished: the same.
            let mut dropped = tree.staged_insert().unwrap().with_chunk(10);
            for node in chain(None, 25, "zebra") {
                dropped.add(node).unwrap();
            }
        }
        let tree = ResponseTree::open(&path).unwrap();
        assert!(tree.is_empty());
        assert!(tree.load_problems().is_empty());
        assert_eq!(found(&tree, "zebra"), 0);
    }

    /// A store that does not stage (memory) gets one insert at publication.
    #[test]
    fn a_store_without_staging_gets_one_insert() {
        let tree = ResponseTree::in_memory();
        let mut insert = tree.staged_insert().unwrap().with_chunk(2);
        for node in chain(None, 7, "zebra") {
            insert.add(node).unwrap();
        }
        assert!(tree.is_empty());
        insert.publish(Vec::new()).unwrap();
        assert_eq!(tree.len(), 7);
        assert_eq!(found(&tree, "zebra"), 7);
    }
}
