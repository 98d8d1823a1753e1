//! Importers: nodes for a [`ResponseTree`](crate::ResponseTree) from documents
//! written elsewhere — resptree's own lossless JSON export ([`import_json`]) and
//! ChatGPT data exports ([`import_chatgpt`]).
//!
//! Every import is all or nothing: a document is parsed and checked whole,
//! then either every node (and ref) is added or nothing is (large ChatGPT
//! imports are written ahead in chunks and published at once). ChatGPT exports can
//! also be streamed from a reader with a progress callback
//! ([`import_chatgpt_reader`]); the library draws no progress itself. Writing
//! documents is [`render`](crate::render)'s job.
//!
//! ```
//! use resptree::{Node, NodeId, ResponseTree, import, render};
//! let tree = ResponseTree::in_memory();
//! tree.insert(Node::new(NodeId::new("resp_a")?, None).with_user_text("Hi"))?;
//! let document = render::export_json(&tree)?;
//!
//! let copy = ResponseTree::in_memory();
//! let report = import::import_json(&copy, &document)?;
//! assert_eq!((report.nodes, report.refs), (1, 0));
//! assert_eq!(render::export_json(&copy)?, document);
//! # Ok::<(), resptree::Error>(())
//! ```

mod chatgpt;
mod json;

pub use chatgpt::{import_chatgpt, import_chatgpt_reader};
pub use json::import_json;

/// What an import added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// The number of nodes inserted.
    pub nodes: usize,
    /// The number of refs set.
    pub refs: usize,
}

/// How far a streamed import has come: what the progress callback of
/// [`import_chatgpt_reader`] is handed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportProgress {
    /// What the import is doing.
    pub phase: ImportPhase,
    /// Bytes of the document read so far (the parser reads ahead a little, so
    /// this can run a few kilobytes ahead of the conversations counted).
    pub bytes: u64,
    /// Conversations parsed and turned into nodes so far.
    pub conversations: usize,
    /// Nodes made so far (none is in the tree before the publication).
    pub nodes: usize,
}

/// The phases of an import, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportPhase {
    /// Reading and checking the document, making nodes in memory.
    Reading,
    /// The whole document was read and checked; its nodes are being published
    /// in one atomic write (written ahead in chunks while reading, where the
    /// store stages writes).
    Writing,
}
