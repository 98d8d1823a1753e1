//! The ASCII tree renderer, in the style of the `tree` command.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::error::Result;
use crate::ids::NodeId;
use crate::tree::ResponseTree;

use super::{output_line, tool_outputs_line, user_line, walk};
use crate::node::{Preview, ToolCall};
use crate::text::truncate;

/// Options for [`ascii`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AsciiOptions {
    /// The widest a line may be, in characters (not terminal columns: wide
    /// characters count as one). The user and output texts are cut with `…` to
    /// fit; the tree drawing, id, refs and token counts are never cut. `None`
    /// disables truncation.
    pub width: Option<usize>,
    /// How many levels below the start to draw; deeper nodes are summarised as
    /// `… N more`. `None` draws everything.
    pub max_depth: Option<usize>,
    /// Whether to end each line with `(input/output tok)`.
    pub show_tokens: bool,
}

impl Default for AsciiOptions {
    /// Width 100, every level, with token counts.
    fn default() -> Self {
        Self {
            width: Some(100),
            max_depth: None,
            show_tokens: true,
        }
    }
}

impl AsciiOptions {
    /// Sets [`AsciiOptions::width`].
    #[must_use]
    pub fn with_width(mut self, width: Option<usize>) -> Self {
        self.width = width;
        self
    }

    /// Sets [`AsciiOptions::max_depth`].
    #[must_use]
    pub fn with_max_depth(mut self, max_depth: Option<usize>) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// Sets [`AsciiOptions::show_tokens`].
    #[must_use]
    pub fn with_tokens(mut self, show: bool) -> Self {
        self.show_tokens = show;
        self
    }
}

/// Draws the subtree under `root` (or the whole forest) as a text tree.
///
/// Each line is `short-id [refs] user text → output text (in/out tok)`, with
/// `├──`, `└──` and `│` connecting children to parents. Each line ends in `\n`.
///
/// A lone child (the only child of a node that is itself a child) is drawn
/// directly under its parent, in the same column and without a connector, as
/// `git log --graph` draws linear history: a conversation reads down the page
/// instead of drifting right, and a chain of any depth takes linear space. A
/// line without a connector is therefore always the child of the line above it.
///
/// ```
/// use resptree::{Node, NodeId, ResponseTree, Timestamp, render};
/// let tree = ResponseTree::in_memory();
/// let mut parent = None;
/// for (i, (id, text)) in [("aaaa", "Plan"), ("bbbb", "Cheaper"), ("cccc", "Cheaper still")]
///     .into_iter()
///     .enumerate()
/// {
///     let node = Node::new(NodeId::new(id)?, parent.take())
///         .with_created_at(Timestamp(i as i64))
///         .with_user_text(text)
///         .with_output_text("ok");
///     parent = Some(node.id.clone());
///     tree.insert(node)?;
/// }
/// let options = render::AsciiOptions::default().with_tokens(false);
/// assert_eq!(render::ascii(&tree, None, &options)?, "\
/// aaaa Plan → ok
/// └── bbbb Cheaper → ok
///     cccc Cheaper still → ok
/// ");
/// # Ok::<(), resptree::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::NodeNotFound`](crate::Error::NodeNotFound) if `root` is not in the
/// tree; store errors while reading bodies.
pub fn ascii(tree: &ResponseTree, root: Option<&NodeId>, options: &AsciiOptions) -> Result<String> {
    let nodes = walk(tree, root, None)?;
    let mut refs: BTreeMap<NodeId, Vec<String>> = BTreeMap::new();
    for (name, target) in tree.list_refs() {
        refs.entry(target).or_default().push(name.to_string());
    }
    let rows = rows(&nodes, options.max_depth);
    // The previews of the drawn nodes, read in one pass in drawing order (a
    // lookup per node was most of a deep chain's render time, and decoding
    // whole records most of what remained from sled).
    let drawn: Vec<NodeId> = rows
        .iter()
        .filter_map(|row| match row {
            Row::Node { at, .. } => Some(nodes[*at].0.clone()),
            Row::More(_) => None,
        })
        .collect();
    // A node answering function calls shows the calls its parent made. The
    // parent of a drawn node is drawn just before it in the walk, except for
    // the start of a subtree, whose parent is read here.
    let start_parent_calls = match root {
        Some(id) => match tree.parent(id)? {
            Some(parent) => tree.get(&parent)?.tool_calls(),
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    // `calls[d]`: the function calls of the drawn node at depth d on the
    // current path.
    let mut calls: Vec<Vec<ToolCall>> = Vec::new();
    let mut out = String::new();
    let mut tail = String::new();
    let mut pending = rows.iter();
    tree.for_each_preview(&drawn, &mut |id, preview| {
        // Summaries before this node's line.
        let (at, prefix) = loop {
            match pending.next() {
                Some(Row::More(text)) => out.push_str(text),
                Some(Row::Node { at, prefix }) => break (*at, prefix),
                // As many rows as ids: cannot happen.
                None => return Ok(()),
            }
        };
        let depth = nodes[at].1;
        calls.truncate(depth);
        let parent_calls = match depth.checked_sub(1) {
            Some(d) => calls.get(d).map_or(&[][..], Vec::as_slice),
            None => &start_parent_calls,
        };
        let drawing = Drawing {
            prefix,
            refs: refs.get(id),
            parent_calls,
        };
        line(&mut out, &mut tail, preview, id, &drawing, options);
        calls.push(preview.tool_calls.clone());
        Ok(())
    })?;
    for row in pending {
        if let Row::More(text) = row {
            out.push_str(text);
        }
    }
    Ok(out)
}

/// One row of the drawing, before any body is read.
#[derive(Debug)]
enum Row {
    /// The line of `nodes[at]`, drawn after `prefix` (tree drawing and
    /// connector).
    Node { at: usize, prefix: String },
    /// A finished `… N more` line, standing for nodes past `max_depth`.
    More(String),
}

/// The rows of a pre-order walk: where each node is drawn, and the summaries
/// of what lies deeper than `max_depth`.
fn rows(nodes: &[(NodeId, usize)], max_depth: Option<usize>) -> Vec<Row> {
    let places = places(nodes);
    let mut rows = Vec::with_capacity(nodes.len());
    // `open[c]` is true while the node drawn with its connector in column c still
    // has siblings below (so column c carries a `│`). Column 0 (roots) never does.
    let mut open: Vec<bool> = Vec::new();
    let mut i = 0;
    while i < nodes.len() {
        let (_, depth) = &nodes[i];
        let Place { column, lone, last } = places[i];
        // A lone child keeps its parent's column, so the parent's `│` (or blank)
        // continues through it; anyone else starts a new column.
        open.truncate(if lone { column + 1 } else { column });
        let mut prefix = String::new();
        for &more_below in open.iter().skip(1) {
            prefix.push_str(if more_below { "│   " } else { "    " });
        }
        let connector = match (lone || column == 0, last) {
            (true, _) => "",
            (false, true) => "└── ",
            (false, false) => "├── ",
        };
        if max_depth.is_some_and(|max| *depth > max) {
            // The summary stands for this node, its later siblings and everything
            // below them, so it is drawn as the last child.
            let hidden = nodes[i..].iter().take_while(|(_, d)| d >= depth).count();
            let connector = if connector.is_empty() {
                ""
            } else {
                "└── "
            };
            rows.push(Row::More(format!("{prefix}{connector}… {hidden} more\n")));
            i += hidden;
            continue;
        }
        prefix.push_str(connector);
        if !lone {
            open.push(!last);
        }
        rows.push(Row::Node { at: i, prefix });
        i += 1;
    }
    rows
}

/// What a node's line shows beside its preview: where it is drawn and what
/// points at it.
struct Drawing<'a> {
    /// The tree drawing and connector before the id.
    prefix: &'a str,
    /// The refs naming the node.
    refs: Option<&'a Vec<String>>,
    /// The function calls of the node's parent, which its input may answer.
    parent_calls: &'a [ToolCall],
}

/// Appends the line of the node `id`, whose preview is `preview`, to `out`;
/// `tail` is scratch space kept between lines.
fn line(
    out: &mut String,
    tail: &mut String,
    preview: &Preview<'_>,
    id: &NodeId,
    drawing: &Drawing<'_>,
    options: &AsciiOptions,
) {
    // The prefix, id and refs, written in place; their width counts against
    // the texts' budget.
    let start = out.len();
    out.push_str(drawing.prefix);
    out.push_str(id.short());
    if let Some(names) = drawing.refs {
        out.push_str(" [");
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(name);
        }
        out.push(']');
    }
    let head = out[start..].chars().count();
    tail.clear();
    if options.show_tokens {
        let _ = write!(
            tail,
            " ({}/{} tok)",
            preview.input_tokens, preview.output_tokens
        );
    }
    // A node answering function calls shows the calls it answers and how.
    let answers = if preview.tool_outputs.is_empty() {
        None
    } else {
        tool_outputs_line(preview, drawing.parent_calls)
    };
    let user = answers.map_or_else(|| user_line(preview), Cow::Owned);
    let output = output_line(preview);
    let fixed = head + " ".len() + " → ".chars().count() + tail.chars().count();
    let (user, output) = match options.width {
        None => (user, output),
        Some(width) => fit(user, output, width.saturating_sub(fixed)),
    };
    out.push(' ');
    out.push_str(&user);
    out.push_str(" → ");
    out.push_str(&output);
    out.push_str(tail);
    out.push('\n');
}

/// Cuts `user` and `output` to share `budget` characters: each gets half, and
/// what one does not need goes to the other.
fn fit<'a>(
    user: Cow<'a, str>,
    output: Cow<'a, str>,
    budget: usize,
) -> (Cow<'a, str>, Cow<'a, str>) {
    let (u, o) = (user.chars().count(), output.chars().count());
    if u + o <= budget {
        return (user, output);
    }
    let half = budget / 2;
    let (u_max, o_max) = if u <= half {
        (u, budget - u)
    } else if o <= budget - half {
        (budget - o, o)
    } else {
        (half, budget - half)
    };
    (
        Cow::Owned(truncate(&user, u_max)),
        Cow::Owned(truncate(&output, o_max)),
    )
}

/// Where a node of a pre-order walk is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    /// The node's drawing column: one per ancestor that was not a lone child.
    column: usize,
    /// The only child of a parent that is not a start of the walk: drawn in the
    /// parent's column, without a connector.
    lone: bool,
    /// The last child of its parent (or a start).
    last: bool,
}

/// The [`Place`] of each node of a pre-order walk, in two linear passes.
fn places(nodes: &[(NodeId, usize)]) -> Vec<Place> {
    let last = last_flags(nodes);
    // `columns[d]`: the column of the node at depth d on the current path.
    let mut columns: Vec<usize> = Vec::new();
    let mut out = Vec::with_capacity(nodes.len());
    for (i, (_, depth)) in nodes.iter().enumerate() {
        let depth = *depth;
        columns.truncate(depth);
        // In a pre-order walk a first child comes right after its parent; a first
        // child that is also the last is an only child.
        let first = i > 0 && nodes[i - 1].1 + 1 == depth;
        let lone = depth >= 2 && first && last[i];
        let column = match columns.last() {
            None => 0,
            Some(&parent) if lone => parent,
            Some(&parent) => parent + 1,
        };
        columns.push(column);
        out.push(Place {
            column,
            lone,
            last: last[i],
        });
    }
    out
}

/// For each node of a pre-order walk, whether it is the last child of its parent
/// (no later node at the same depth before a shallower one). One backward pass.
fn last_flags(nodes: &[(NodeId, usize)]) -> Vec<bool> {
    let mut flags = vec![true; nodes.len()];
    // `seen[d]`: a node at depth d follows, with no shallower node in between.
    let mut seen: Vec<bool> = Vec::new();
    for (i, (_, depth)) in nodes.iter().enumerate().rev() {
        let d = *depth;
        flags[i] = !seen.get(d).copied().unwrap_or(false);
        seen.resize(d + 1, false);
        seen[d] = true;
    }
    flags
}
