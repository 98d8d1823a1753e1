//! Importers: nodes for a [`ResponseTree`](crate::ResponseTree) from documents
//! written elsewhere — resptree's own lossless JSON export ([`import_json`]) and
//! ChatGPT data exports ([`import_chatgpt`]).
//!
//! Every import is one atomic insert: a document is parsed and checked whole,
//! then either every node (and ref) is added or nothing is. Writing documents is
//! [`render`](crate::render)'s job.
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

pub use chatgpt::import_chatgpt;
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
