//! Graphviz DOT and Mermaid flowchart renderers.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::error::Result;
use crate::ids::NodeId;
use crate::tree::{EdgeKind, ResponseTree};

use super::{output_line, user_line, walk};
use crate::text::truncate;

/// Options for [`dot`] and [`mermaid`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiagramOptions {
    /// The most characters of user and output text shown in a node's label
    /// (each); longer texts are cut with `…`.
    pub label_width: usize,
}

impl Default for DiagramOptions {
    /// Labels of at most 40 characters per text.
    fn default() -> Self {
        Self { label_width: 40 }
    }
}

impl DiagramOptions {
    /// Sets [`DiagramOptions::label_width`].
    #[must_use]
    pub fn with_label_width(mut self, width: usize) -> Self {
        self.label_width = width;
        self
    }
}

/// The subtree under `root` (or the whole forest) as a Graphviz `digraph`.
///
/// Nodes are named by their full id and labelled `short id`, the user text and
/// `→ output`; `Continues` edges are solid, extra-context edges dashed.
///
/// # Errors
///
/// [`Error::NodeNotFound`](crate::Error::NodeNotFound) if `root` is not in the
/// tree; store errors while reading bodies.
pub fn dot(tree: &ResponseTree, root: Option<&NodeId>, options: &DiagramOptions) -> Result<String> {
    let scene = Scene::collect(tree, root, options)?;
    let mut out = String::from("digraph resptree {\n  node [shape=box];\n");
    for n in &scene.nodes {
        let label = format!("{}\n{}\n→ {}", n.short, n.user, n.output);
        let _ = writeln!(
            out,
            "  {} [label={}];",
            dot_str(n.id.as_str()),
            dot_str(&label)
        );
    }
    for (from, to, kind) in &scene.edges {
        let style = match kind {
            EdgeKind::Continues => "",
            EdgeKind::Context => " [style=dashed]",
        };
        let _ = writeln!(
            out,
            "  {} -> {}{style};",
            dot_str(from.as_str()),
            dot_str(to.as_str())
        );
    }
    out.push_str("}\n");
    Ok(out)
}

/// The subtree under `root` (or the whole forest) as a Mermaid `flowchart TD`.
///
/// Nodes are named `n0`, `n1`, … in walk order (ids may hold characters Mermaid
/// does not accept in names) and labelled `short id: user → output`; quotes,
/// brackets and angle brackets in labels are written as Mermaid entities.
/// `Continues` edges are `-->`, extra-context edges dashed `-.->`.
///
/// # Errors
///
/// [`Error::NodeNotFound`](crate::Error::NodeNotFound) if `root` is not in the
/// tree; store errors while reading bodies.
pub fn mermaid(
    tree: &ResponseTree,
    root: Option<&NodeId>,
    options: &DiagramOptions,
) -> Result<String> {
    let scene = Scene::collect(tree, root, options)?;
    let names: HashMap<&NodeId, String> = scene
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (&n.id, format!("n{i}")))
        .collect();
    let mut out = String::from("flowchart TD\n");
    for n in &scene.nodes {
        let label = format!("{}: {} → {}", n.short, n.user, n.output);
        let _ = writeln!(out, "  {}[\"{}\"]", names[&n.id], mermaid_escape(&label));
    }
    for (from, to, kind) in &scene.edges {
        let arrow = match kind {
            EdgeKind::Continues => "-->",
            EdgeKind::Context => "-.->",
        };
        let _ = writeln!(out, "  {} {arrow} {}", names[from], names[to]);
    }
    Ok(out)
}

/// What both diagram renderers draw.
struct Scene {
    nodes: Vec<Label>,
    /// Edges whose both ends are drawn: `Continues` edges in walk order of their
    /// targets, then context edges.
    edges: Vec<(NodeId, NodeId, EdgeKind)>,
}

struct Label {
    id: NodeId,
    short: String,
    user: String,
    output: String,
}

impl Scene {
    fn collect(
        tree: &ResponseTree,
        root: Option<&NodeId>,
        options: &DiagramOptions,
    ) -> Result<Self> {
        let walked = walk(tree, root, None)?;
        let order: HashMap<&NodeId, usize> = walked
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (id, i))
            .collect();
        let mut edges: Vec<(NodeId, NodeId, EdgeKind)> = tree
            .graph()
            .edges()
            .into_iter()
            .filter(|(from, to, _)| order.contains_key(from) && order.contains_key(to))
            .collect();
        edges.sort_by_key(|(from, to, kind)| (*kind, order[to], order[from]));
        let mut nodes = Vec::with_capacity(walked.len());
        let ids: Vec<NodeId> = walked.iter().map(|(id, _)| id.clone()).collect();
        tree.for_each_preview(&ids, &mut |id, preview| {
            nodes.push(Label {
                short: id.short().to_owned(),
                user: truncate(&user_line(preview), options.label_width),
                output: truncate(&output_line(preview), options.label_width),
                id: id.clone(),
            });
            Ok(())
        })?;
        Ok(Self { nodes, edges })
    }
}

/// A DOT quoted string: backslashes and quotes escaped, newlines as `\n`.
fn dot_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Escapes characters that end or confuse a quoted Mermaid label.
fn mermaid_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '[' => out.push_str("#91;"),
            ']' => out.push_str("#93;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
