//! Renderers: an ASCII tree, Graphviz DOT, Mermaid, node records as JSON, the
//! lossless JSON export, and a node's one-line [`summary`]. Read-only over
//! [`ResponseTree`]: reading documents back is [`import`](crate::import)'s job.
//!
//! Every renderer walks the tree itself, depth first with children oldest first,
//! so output is deterministic and stable across versions of petgraph (whose own
//! `Dot` output "may change"). The line renderers (ASCII, DOT, Mermaid) read
//! each node's [`Preview`] in one pass over the store,
//! not its whole record.
//!
//! ```
//! use resptree::{Node, NodeId, ResponseTree, Timestamp, render};
//! let tree = ResponseTree::in_memory();
//! let root = NodeId::new("resp_aaaa1111")?;
//! tree.insert(Node::new(root.clone(), None)
//!     .with_created_at(Timestamp(1))
//!     .with_user_text("Plan a weekend in Paris")
//!     .with_output_text("Louvre on Saturday."))?;
//! tree.insert(Node::new(NodeId::new("resp_bbbb2222")?, Some(root))
//!     .with_created_at(Timestamp(2))
//!     .with_user_text("Make it cheaper")
//!     .with_output_text("Walk the Marais."))?;
//! let text = render::ascii(&tree, None, &render::AsciiOptions::default())?;
//! assert_eq!(text, "\
//! aaaa1111 Plan a weekend in Paris → Louvre on Saturday. (0/0 tok)
//! └── bbbb2222 Make it cheaper → Walk the Marais. (0/0 tok)
//! ");
//! # Ok::<(), resptree::Error>(())
//! ```

mod annotations;
mod diagram;
// Crate-visible for the importer, which reads the document this module writes.
pub(crate) mod json;
mod text;

pub use annotations::annotations_text;
pub use diagram::{DiagramOptions, dot, mermaid};
pub use json::{EXPORT_FORMAT, EXPORT_VERSION, export_json, nodes_json};
pub use text::{AsciiOptions, ascii};

use std::borrow::Cow;

use crate::error::Result;
use crate::ids::NodeId;
use crate::node::{Node, Preview, ToolCall};
use crate::tree::ResponseTree;

/// The nodes to draw: the subtree under `root`, or the whole forest, depth first
/// (pre-order, children oldest first), each with its depth below the start; at
/// most `max_depth` levels below the start (`None`: all).
fn walk(
    tree: &ResponseTree,
    root: Option<&NodeId>,
    max_depth: Option<usize>,
) -> Result<Vec<(NodeId, usize)>> {
    let mut nodes = tree.graph().preorder(root)?;
    if let Some(max) = max_depth {
        // In pre-order a subtree is contiguous, so dropping what lies deeper
        // than `max` keeps the walk of the levels above it.
        nodes.retain(|&(_, depth)| depth <= max);
    }
    Ok(nodes)
}

/// A node in one line, as the ASCII tree draws it: the first line of its user
/// message (or the type of an input item without text, such as a tool result),
/// ` → `, and the first line of its answer (or its status when it has none).
///
/// ```
/// use resptree::{Node, NodeId, render};
/// let node = Node::new(NodeId::new("resp_a")?, None)
///     .with_user_text("Plan a weekend\nin Paris")
///     .with_output_text("Louvre on Saturday.");
/// assert_eq!(render::summary(&node), "Plan a weekend → Louvre on Saturday.");
/// # Ok::<(), resptree::Error>(())
/// ```
pub fn summary(node: &Node) -> String {
    let preview = Preview::of(node);
    format!("{} → {}", user_line(&preview), output_line(&preview))
}

/// The first line of the node's last user message, or of its first input item;
/// for an item without text (a tool result), its type in parentheses.
fn user_line<'a>(preview: &'a Preview<'_>) -> Cow<'a, str> {
    let line = first_line(preview.user_text.as_deref().unwrap_or(""));
    if !line.is_empty() {
        return Cow::Borrowed(line);
    }
    preview
        .first_input_type
        .as_deref()
        .map_or(Cow::Borrowed(""), |kind| Cow::Owned(format!("({kind})")))
}

/// The first line of the node's output text, then its function calls
/// (`⚙ get_weather(city="Paris")`); its status when it has neither.
fn output_line<'a>(preview: &'a Preview<'_>) -> Cow<'a, str> {
    let calls = &preview.tool_calls;
    let text = first_line(&preview.output_text);
    if calls.is_empty() {
        return if text.is_empty() {
            Cow::Owned(format!("({:?})", preview.status).to_lowercase())
        } else {
            Cow::Borrowed(text)
        };
    }
    let calls: Vec<String> = calls
        .iter()
        .map(|call| format!("⚙ {}", call.display_compact()))
        .collect();
    Cow::Owned(if text.is_empty() {
        calls.join("; ")
    } else {
        format!("{text} {}", calls.join("; "))
    })
}

/// For a node that answers function calls: each answered call with its output,
/// `⚙ get_weather(city="Paris") → {"temp":18}`, the call looked up in `calls`,
/// the parent's function calls (just `⚙ call_id → output` when the parent does
/// not hold it). `None` when the node's input answers no call.
fn tool_outputs_line(preview: &Preview<'_>, calls: &[ToolCall]) -> Option<String> {
    let parts: Vec<String> = preview
        .tool_outputs
        .iter()
        .map(|answer| {
            let call = calls
                .iter()
                .find(|c| c.call_id == answer.call_id)
                .map_or_else(|| answer.call_id.clone(), |c| c.display_compact());
            format!("⚙ {call} → {}", first_line(&answer.output))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The first non-blank line of `text`, trimmed.
fn first_line(text: &str) -> &str {
    text.trim().lines().next().unwrap_or("").trim()
}
