//! Annotations on the tree's nodes: the typed writes and the reads.
//!
//! Annotations are not part of the graph: they are read from the store each
//! time (a shared store may have annotations from other processes), and
//! written through the same edit lock as every other write, after checking
//! that the node is in the tree.

use crate::annotation::{Annotation, AnnotationKey, AnnotationKind, Stamped};
use crate::error::{Error, Result};
use crate::ids::NodeId;
use crate::store::{Batch, Op};

use super::ResponseTree;

impl ResponseTree {
    /// Writes `annotation` on node `id`, stamped with the current time, into
    /// its slot ([`Annotation::key`]): it replaces a score of the same
    /// criterion, the same label, the bookmark or the note. Returns what was
    /// stored.
    ///
    /// ```
    /// use resptree::{Annotation, Node, NodeId, ResponseTree};
    /// let tree = ResponseTree::in_memory();
    /// let id = NodeId::local();
    /// tree.insert(Node::new(id.clone(), None))?;
    /// tree.annotate(&id, Annotation::note("first"))?;
    /// tree.annotate(&id, Annotation::note("second"))?;
    /// let notes = tree.annotations(&id)?;
    /// assert_eq!(notes.len(), 1);
    /// assert_eq!(notes[0].annotation, Annotation::note("second"));
    /// # Ok::<(), resptree::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAnnotation`] if the annotation cannot be stored (see
    /// [`Annotation::validate`]); [`Error::NodeNotFound`] if `id` is not in
    /// the tree; [`Error::Storage`] if the store write fails.
    pub fn annotate(&self, id: &NodeId, annotation: Annotation) -> Result<Stamped> {
        annotation.validate()?;
        let stamped = Stamped::now(annotation);
        let _edit = self.lock_edits();
        if !self.read().contains(id) {
            return Err(Error::NodeNotFound(id.clone()));
        }
        self.store.apply(Batch::from(vec![Op::PutAnnotation {
            node: id.clone(),
            annotation: Box::new(stamped.clone()),
        }]))?;
        Ok(stamped)
    }

    /// Writes several annotations, on any nodes of the tree, in one atomic
    /// store batch, all stamped with the same time: either all are stored or
    /// none is. What scoring a whole level at once needs.
    ///
    /// # Errors
    ///
    /// As [`ResponseTree::annotate`], for the first annotation that fails; then
    /// nothing is stored.
    pub fn annotate_all(
        &self,
        annotations: impl IntoIterator<Item = (NodeId, Annotation)>,
    ) -> Result<()> {
        let now = crate::node::Timestamp::now();
        let mut batch = Batch::new();
        let annotations: Vec<(NodeId, Annotation)> = annotations.into_iter().collect();
        for (_, annotation) in &annotations {
            annotation.validate()?;
        }
        let _edit = self.lock_edits();
        {
            let graph = self.read();
            if let Some((missing, _)) = annotations.iter().find(|(id, _)| !graph.contains(id)) {
                return Err(Error::NodeNotFound(missing.clone()));
            }
        }
        for (node, annotation) in annotations {
            batch.push(Op::PutAnnotation {
                node,
                annotation: Box::new(Stamped::new(annotation, now)),
            });
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.store.apply(batch)
    }

    /// The annotations of node `id`, ordered by key.
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the tree; [`Error::Storage`]
    /// or [`Error::CorruptRecord`] if the store cannot read them.
    pub fn annotations(&self, id: &NodeId) -> Result<Vec<Stamped>> {
        if !self.read().contains(id) {
            return Err(Error::NodeNotFound(id.clone()));
        }
        self.store.annotations(id)
    }

    /// The annotation in slot `key` of node `id`, if there is one.
    ///
    /// # Errors
    ///
    /// As [`ResponseTree::annotations`].
    pub fn annotation(&self, id: &NodeId, key: &AnnotationKey) -> Result<Option<Stamped>> {
        Ok(self
            .annotations(id)?
            .into_iter()
            .find(|stamped| stamped.key() == *key))
    }

    /// Removes the annotation in slot `key` of node `id`; returns it, or
    /// `None` if the slot was empty (then nothing is written).
    ///
    /// ```
    /// use resptree::{Annotation, AnnotationKey, Node, NodeId, ResponseTree};
    /// let tree = ResponseTree::in_memory();
    /// let id = NodeId::local();
    /// tree.insert(Node::new(id.clone(), None))?;
    /// tree.annotate(&id, Annotation::Bookmark)?;
    /// assert!(tree.remove_annotation(&id, &AnnotationKey::bookmark())?.is_some());
    /// assert!(tree.remove_annotation(&id, &AnnotationKey::bookmark())?.is_none());
    /// # Ok::<(), resptree::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NodeNotFound`] if `id` is not in the tree; [`Error::Storage`]
    /// if the store cannot be read or written.
    pub fn remove_annotation(&self, id: &NodeId, key: &AnnotationKey) -> Result<Option<Stamped>> {
        let _edit = self.lock_edits();
        let Some(old) = self.annotation(id, key)? else {
            return Ok(None);
        };
        self.store.apply(Batch::from(vec![Op::RemoveAnnotation {
            node: id.clone(),
            key: key.clone(),
        }]))?;
        Ok(Some(old))
    }

    /// Every annotation of `kind` (or of every kind, for `None`) on the
    /// tree's nodes, ordered by node id, then key: every bookmarked node, every
    /// score.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] or [`Error::CorruptRecord`] if the store cannot read
    /// them.
    pub fn annotated(&self, kind: Option<AnnotationKind>) -> Result<Vec<(NodeId, Stamped)>> {
        let mut all = self.store.annotated(kind)?;
        // A shared store may hold annotations of nodes another process added
        // since the last refresh: list only what the tree can show.
        let graph = self.read();
        all.retain(|(id, _)| graph.contains(id));
        Ok(all)
    }
}
