//! The ASCII tree renderer, in the style of the `tree` command.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::error::Result;
use crate::ids::NodeId;
use crate::tree::ResponseTree;

use super::{output_line, user_line, walk};
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
    // For each node, whether it is the last child of its parent; the drawing of a
    // line depends on that flag for the node and each of its ancestors.
    let last = last_flags(&nodes);
    let mut out = String::new();
    // `open[d]` is true while the ancestor at depth d still has siblings below.
    let mut open: Vec<bool> = Vec::new();
    let mut i = 0;
    while i < nodes.len() {
        let (id, depth) = &nodes[i];
        let depth = *depth;
        open.truncate(depth);
        let mut prefix = String::new();
        // The root's column holds no line: roots are drawn without connectors.
        for &more_below in open.iter().take(depth).skip(1) {
            prefix.push_str(if more_below { "│   " } else { "    " });
        }
        if options.max_depth.is_some_and(|max| depth > max) {
            // The summary stands for this node and all its later siblings, so it
            // is drawn as the last child.
            // Summarise this node and everything after it at this depth or deeper.
            let mut hidden = 0;
            while i < nodes.len() && nodes[i].1 >= depth {
                hidden += 1;
                i += 1;
            }
            let _ = writeln!(out, "{prefix}└── … {hidden} more");
            continue;
        }
        if depth > 0 {
            prefix.push_str(if last[i] { "└── " } else { "├── " });
        }
        open.push(!last[i]);
        let node = tree.get(id)?;
        let mut head = id.short().to_owned();
        if let Some(names) = refs.get(id) {
            let _ = write!(head, " [{}]", names.join(", "));
        }
        let tail = if options.show_tokens {
            format!(
                " ({}/{} tok)",
                node.usage.input_tokens, node.usage.output_tokens
            )
        } else {
            String::new()
        };
        let (user, output) = (user_line(&node), output_line(&node));
        let fixed = prefix.chars().count()
            + head.chars().count()
            + " ".len()
            + " → ".chars().count()
            + tail.chars().count();
        let (user, output) = match options.width {
            None => (user, output),
            Some(width) => fit(&user, &output, width.saturating_sub(fixed)),
        };
        let _ = writeln!(out, "{prefix}{head} {user} → {output}{tail}");
        i += 1;
    }
    Ok(out)
}

/// Cuts `user` and `output` to share `budget` characters: each gets half, and
/// what one does not need goes to the other.
fn fit(user: &str, output: &str, budget: usize) -> (String, String) {
    let (u, o) = (user.chars().count(), output.chars().count());
    if u + o <= budget {
        return (user.to_owned(), output.to_owned());
    }
    let half = budget / 2;
    let (u_max, o_max) = if u <= half {
        (u, budget - u)
    } else if o <= budget - half {
        (budget - o, o)
    } else {
        (half, budget - half)
    };
    (truncate(user, u_max), truncate(output, o_max))
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
