//! [`Shared`]: one store behind several handles, for tests and benches.
//!
//! Included by the integration tests and (with `#[path]`) by the benches, so
//! the delegation is written once.

use std::sync::Arc;

use resptree::store::{Attempt, Batch, Changes, Loaded, Store};
use resptree::{Node, NodeId, RefName};

/// One store behind several handles: what a test needs to look at a store that
/// a tree owns (a tree never lends its store out). Only for tests: writing
/// through another handle is exactly what a tree cannot see.
#[derive(Debug)]
pub(crate) struct Shared<S: ?Sized>(pub(crate) Arc<S>);

impl<S: Store + ?Sized> Store for Shared<S> {
    fn load(&self) -> resptree::Result<Loaded> {
        self.0.load()
    }
    fn node(&self, id: &NodeId) -> resptree::Result<Option<Node>> {
        self.0.node(id)
    }
    fn apply(&self, batch: Batch) -> resptree::Result<()> {
        self.0.apply(batch)
    }
    fn apply_deferred(&self, batch: Batch) -> resptree::Result<()> {
        self.0.apply_deferred(batch)
    }
    fn sync(&self) -> resptree::Result<()> {
        self.0.sync()
    }
    fn attempts(&self) -> resptree::Result<Vec<Attempt>> {
        self.0.attempts()
    }
    fn refs(&self) -> resptree::Result<Vec<(RefName, NodeId)>> {
        self.0.refs()
    }
    fn flush(&self) -> resptree::Result<()> {
        self.0.flush()
    }
    fn changes_since(&self, cursor: u64) -> resptree::Result<Changes> {
        self.0.changes_since(cursor)
    }
    fn change_signal(&self) -> resptree::Result<Option<resptree::store::ChangeSignal>> {
        self.0.change_signal()
    }
    fn annotations(&self, node: &NodeId) -> resptree::Result<Vec<resptree::Stamped>> {
        self.0.annotations(node)
    }
    fn annotated(
        &self,
        kind: Option<resptree::AnnotationKind>,
    ) -> resptree::Result<Vec<(NodeId, resptree::Stamped)>> {
        self.0.annotated(kind)
    }
    fn is_blocking(&self) -> bool {
        self.0.is_blocking()
    }
    fn is_shared(&self) -> bool {
        self.0.is_shared()
    }
    fn search(
        &self,
        query: &resptree::search::IndexQuery,
    ) -> resptree::Result<Option<Vec<resptree::search::Candidate>>> {
        self.0.search(query)
    }

    fn search_ranked<'a>(
        &'a self,
        query: &resptree::search::IndexQuery,
    ) -> resptree::Result<Option<resptree::search::RankedCandidates<'a>>> {
        self.0.search_ranked(query)
    }
}
