//! Helpers shared by the reliability tests: tree invariants, a seeded PRNG, and
//! the path of the crash worker binary.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use resptree::{NodeId, ResponseTree};

/// Checks every structural invariant of `tree` through its public walkers, and,
/// when given, that the store's child index holds exactly the tree's edges.
/// Returns the number of nodes checked.
pub(crate) fn check_invariants(
    tree: &ResponseTree,
    child_index: Option<&[(NodeId, NodeId)]>,
) -> usize {
    let ids = tree.all_ids();
    assert_eq!(ids.len(), tree.len(), "all_ids and len disagree");
    let unique: HashSet<&NodeId> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an id is listed twice");
    let roots: BTreeSet<NodeId> = tree.roots().into_iter().collect();
    let mut edges = BTreeSet::new();
    let mut child_count = 0;
    for id in &ids {
        let parent = tree.parent(id).unwrap();
        assert_eq!(parent.is_none(), roots.contains(id), "{id}: root-ness");
        if let Some(p) = &parent {
            assert!(tree.contains(p), "{id}: parent {p} is missing");
            assert!(
                tree.children(p).unwrap().contains(id),
                "{id} is not a child of its parent {p}"
            );
            edges.insert((p.clone(), id.clone()));
        }
        let path = tree.path(id).unwrap();
        assert_eq!(path.last(), Some(id), "{id}: path does not end at the node");
        assert!(
            roots.contains(&path[0]),
            "{id}: path does not start at a root"
        );
        assert_eq!(tree.depth(id).unwrap() + 1, path.len(), "{id}: depth");
        let children = tree.children(id).unwrap();
        child_count += children.len();
        for c in &children {
            assert_eq!(
                tree.parent(c).unwrap().as_ref(),
                Some(id),
                "{c}: parent link"
            );
        }
        // The body is readable and is the node it is stored under.
        let node = tree.get(id).unwrap();
        assert_eq!(&node.id, id);
        assert_eq!(
            node.parent, parent,
            "{id}: body and topology disagree on the parent"
        );
    }
    assert_eq!(
        child_count,
        ids.len() - roots.len(),
        "every non-root is exactly one child"
    );
    if let Some(index) = child_index {
        let indexed: BTreeSet<(NodeId, NodeId)> = index.iter().cloned().collect();
        assert_eq!(indexed.len(), index.len(), "duplicate child index entries");
        assert_eq!(indexed, edges, "child index and topology disagree");
    }
    ids.len()
}

/// splitmix64: seeded choices without a `rand` dependency.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// The crash worker example, built once per test run. A `cargo run` could not be
/// killed for real: SIGKILL would reach cargo, not the worker.
pub(crate) fn crash_worker() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let output = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "--all-features",
                "--example",
                "crash_worker",
                "--message-format=json",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "building crash_worker failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "crash_worker")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reports the crash_worker executable")
    })
    .clone()
}
