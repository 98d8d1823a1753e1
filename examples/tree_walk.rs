//! Build a small branching conversation tree by hand, persist it, reopen it, walk
//! it and print it — all offline, no server involved.
//!
//! ```text
//! cargo run --example tree_walk
//! ```
//!
//! It shows the tree half of resptree: nodes are what the engine records for each
//! response; here we make them ourselves with `Node::new`. The store lives in a
//! temporary directory that is deleted at the end.

use resptree::render::{self, AsciiOptions, DiagramOptions};
use resptree::{Node, NodeId, RefName, ResponseTree, Timestamp, Usage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("paris.tree");

    // 1. Build: one question, two branches, a follow-up on each, and a merge
    //    that uses the cheap branch's answer as extra context.
    let ids = {
        let tree = ResponseTree::open(&path)?;
        let root = turn(
            "resp_root0001",
            None,
            1,
            "Plan a weekend in Paris",
            "Louvre on Saturday, Montmartre on Sunday.",
        )?;
        let cheap = turn(
            "resp_cheap001",
            Some(&root),
            2,
            "Make it cheaper",
            "Walk the Marais, picnic by the Seine.",
        )?;
        let fancy = turn(
            "resp_fancy001",
            Some(&root),
            3,
            "Make it fancier",
            "Dinner at Le Meurice.",
        )?;
        let rain = turn(
            "resp_rain0001",
            Some(&cheap),
            4,
            "What if it rains?",
            "Musée d'Orsay, then a covered passage.",
        )?;
        let mut merge = turn(
            "resp_merge001",
            Some(&fancy),
            5,
            "Combine both plans",
            "Picnic at noon, Le Meurice at eight.",
        )?;
        merge.extra_context.push(cheap.id.clone());
        let ids = [&root, &cheap, &fancy, &rain, &merge].map(|n| n.id.clone());
        for node in [root, cheap, fancy, rain, merge] {
            tree.insert(node)?;
        }
        tree.set_ref(RefName::new("rainy")?, &ids[3])?;
        tree.set_ref(RefName::new("best")?, &ids[4])?;
        println!("wrote {} nodes to {}", tree.len(), path.display());
        ids
    }; // Dropping the tree closes the store.

    // 2. Reopen: the graph is rebuilt from the stored topology; bodies stay on disk.
    let tree = ResponseTree::open(&path)?;
    let [root, cheap, fancy, rain, merge] = &ids;
    println!(
        "reopened: {} nodes, roots {:?}\n",
        tree.len(),
        shorts(&tree.roots())
    );

    // 3. Walk.
    let best = tree.resolve("best")?;
    println!("path to 'best':      {:?}", shorts(&tree.path(&best)?));
    println!("siblings of cheap:   {:?}", shorts(&tree.siblings(cheap)?));
    println!("children of root:    {:?}", shorts(&tree.children(root)?));
    println!("leaves:              {:?}", shorts(&tree.leaves(None)?));
    let diff = tree.diff(rain, merge)?;
    println!(
        "diff rain..merge:    common {:?}, left {:?}, right {:?}",
        diff.common.as_ref().map(NodeId::short),
        shorts(&diff.left),
        shorts(&diff.right)
    );
    println!(
        "context of merge:    {:?}",
        shorts(&tree.graph().context_of(merge)?)
    );
    let transcript = tree.transcript(fancy)?;
    println!(
        "transcript to fancy: {} items (user, assistant, user, assistant)\n",
        transcript.len()
    );

    // 4. Print.
    println!("{}", render::ascii(&tree, None, &AsciiOptions::default())?);
    println!(
        "{}",
        render::mermaid(&tree, None, &DiagramOptions::default())?
    );
    Ok(())
}

/// One hand-made turn: a user message and the assistant's answer.
fn turn(
    id: &str,
    parent: Option<&Node>,
    t: i64,
    user: &str,
    answer: &str,
) -> resptree::Result<Node> {
    let mut node = Node::new(NodeId::new(id)?, parent.map(|p| p.id.clone()))
        .with_created_at(Timestamp(1_767_225_600_000 + t * 60_000))
        .with_user_text(user)
        .with_output_text(answer);
    node.usage = Usage::new(40 * t.unsigned_abs(), 12);
    Ok(node)
}

fn shorts(ids: &[NodeId]) -> Vec<&str> {
    ids.iter().map(NodeId::short).collect()
}
