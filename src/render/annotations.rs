//! The annotations of a subtree as text: what `resptree show` prints under
//! the tree.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::error::Result;
use crate::ids::NodeId;
use crate::text::truncate;
use crate::tree::ResponseTree;

use super::walk;

/// The longest a note is printed, in characters; the export keeps it whole.
const NOTE_WIDTH: usize = 80;

/// The annotations of the nodes in the subtree under `root` (or the whole
/// forest), one per line: the node's short id and the annotation
/// (`Annotation`'s `Display`), in the order the tree is drawn, each node's
/// by key. A note's line breaks are shown as `⏎` and it is cut to 80
/// characters. Empty when no node there has any.
///
/// ```
/// use resptree::{Annotation, Node, NodeId, ResponseTree, render};
/// let tree = ResponseTree::in_memory();
/// let id = NodeId::new("resp_aaaa1111")?;
/// tree.insert(Node::new(id.clone(), None))?;
/// tree.annotate(&id, Annotation::label("keep"))?;
/// tree.annotate(&id, Annotation::Bookmark)?;
/// assert_eq!(render::annotations_text(&tree, None)?, "aaaa1111  bookmark\naaaa1111  label keep\n");
/// # Ok::<(), resptree::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::NodeNotFound`](crate::Error::NodeNotFound) if `root` is not in the
/// tree; store errors while reading annotations.
pub fn annotations_text(tree: &ResponseTree, root: Option<&NodeId>) -> Result<String> {
    let order = walk(tree, root, None)?;
    let mut out = String::new();
    // One read of every annotation beats one store read per node when few
    // nodes are annotated, the usual case.
    let annotated = tree.annotated(None)?;
    let mut by_node: HashMap<&NodeId, Vec<&crate::annotation::Stamped>> = HashMap::new();
    for (id, stamped) in &annotated {
        by_node.entry(id).or_default().push(stamped);
    }
    for (id, _) in &order {
        for stamped in by_node.get(id).into_iter().flatten() {
            let line = stamped.annotation.to_string().replace('\n', "⏎");
            let _ = writeln!(out, "{}  {}", id.short(), truncate(&line, NOTE_WIDTH));
        }
    }
    Ok(out)
}
