//! What the API and the HTML export send the page: node summaries for the
//! outline, full nodes for the transcript. Text stays text (JSON strings);
//! nothing here is HTML.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::annotation::{Annotation, AnnotationKind};
use crate::error::Result;
use crate::ids::NodeId;
use crate::node::{Node, NodeStatus};
use crate::tree::ResponseTree;

/// How many characters of a prompt or reply an outline row shows.
const PREVIEW_CHARS: usize = 160;

/// One outline row.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    pub(crate) id: NodeId,
    pub(crate) short: String,
    pub(crate) parent: Option<NodeId>,
    /// How many children (the outline shows a toggle when there are any).
    pub(crate) children: usize,
    /// Milliseconds since the Unix epoch.
    pub(crate) created_at: i64,
    pub(crate) model: Option<String>,
    pub(crate) status: NodeStatus,
    /// The user's message (or what the input was), cut for the outline.
    pub(crate) prompt: String,
    /// The answer, cut for the outline.
    pub(crate) reply: String,
    /// This node's total tokens.
    pub(crate) tokens: u64,
    pub(crate) refs: Vec<String>,
    /// The node's own labels, then the labels annotated since.
    pub(crate) labels: Vec<String>,
    pub(crate) bookmarked: bool,
}

/// One page of a list.
#[derive(Debug, Serialize)]
pub(crate) struct Page<T> {
    pub(crate) total: usize,
    pub(crate) offset: usize,
    pub(crate) items: Vec<T>,
}

/// What the outline marks on a row beside the node itself: the refs that
/// point at it, and its bookmark and labels (annotations). Read once per
/// request: refs are few, and the store lists annotations by kind.
#[derive(Debug, Default)]
pub(crate) struct RefIndex {
    refs: HashMap<NodeId, Vec<String>>,
    bookmarks: HashSet<NodeId>,
    labels: HashMap<NodeId, Vec<String>>,
}

impl RefIndex {
    pub(crate) fn of(tree: &ResponseTree) -> Result<Self> {
        let mut index = Self::default();
        for (name, target) in tree.list_refs() {
            index.refs.entry(target).or_default().push(name.to_string());
        }
        for (id, _) in tree.annotated(Some(AnnotationKind::Bookmark))? {
            index.bookmarks.insert(id);
        }
        for (id, stamped) in tree.annotated(Some(AnnotationKind::Label))? {
            if let Annotation::Label { text } = stamped.annotation {
                index.labels.entry(id).or_default().push(text);
            }
        }
        Ok(index)
    }

    fn names(&self, id: &NodeId) -> Vec<String> {
        self.refs.get(id).cloned().unwrap_or_default()
    }
}

/// The summary of a node already read.
pub(crate) fn summary_of(node: &Node, children: usize, refs: &RefIndex) -> Summary {
    Summary {
        id: node.id.clone(),
        short: node.id.short().to_owned(),
        parent: node.parent.clone(),
        children,
        created_at: node.created_at.as_millis(),
        model: node.model.clone(),
        status: node.status,
        prompt: crate::text::truncate(&prompt_of(node), PREVIEW_CHARS),
        reply: crate::text::truncate(&reply_of(node), PREVIEW_CHARS),
        tokens: node.usage.total_tokens,
        refs: refs.names(&node.id),
        labels: node
            .labels
            .iter()
            .chain(refs.labels.get(&node.id).into_iter().flatten())
            .cloned()
            .collect(),
        bookmarked: refs.bookmarks.contains(&node.id),
    }
}

/// The summary of node `id`, read from the store.
pub(crate) fn summary(tree: &ResponseTree, id: &NodeId, refs: &RefIndex) -> Result<Summary> {
    let node = tree.get(id)?;
    let children = tree.graph().children(id)?.len();
    Ok(summary_of(&node, children, refs))
}

/// Summaries of `ids[offset..offset + limit]`.
pub(crate) fn page(
    tree: &ResponseTree,
    ids: &[NodeId],
    offset: usize,
    limit: usize,
) -> Result<Page<Summary>> {
    let refs = RefIndex::of(tree)?;
    let items = ids
        .iter()
        .skip(offset)
        .take(limit)
        .map(|id| summary(tree, id, &refs))
        .collect::<Result<Vec<_>>>()?;
    Ok(Page {
        total: ids.len(),
        offset,
        items,
    })
}

/// What a node was asked: its user message, else what kind of input it had.
fn prompt_of(node: &Node) -> String {
    if let Some(text) = node.user_text() {
        return text;
    }
    let outputs = node
        .input
        .iter()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("function_call_output"))
        .count();
    match outputs {
        0 => String::new(),
        n => format!("({n} tool output(s))"),
    }
}

/// What a node answered: its text, else the tools it called.
fn reply_of(node: &Node) -> String {
    if !node.output_text.is_empty() {
        return node.output_text.clone();
    }
    let calls: Vec<String> = node
        .tool_calls()
        .into_iter()
        .map(|c| format!("{}(…)", c.name))
        .collect();
    if calls.is_empty() {
        String::new()
    } else {
        format!("→ {}", calls.join(", "))
    }
}
