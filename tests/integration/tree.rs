//! The walking API, refs and edit validation of `ResponseTree`.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use resptree::store::{Attempt, AttemptParams, MemoryStore, Op, Store};

use crate::support::stores::Shared;
use resptree::tree::{BranchDiff, EdgeKind};
use resptree::{Error, Node, NodeId, RefName, ResponseTree, Timestamp, TreeViolation};
use serde_json::json;

pub(crate) fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

pub(crate) fn node(name: &str, parent: Option<&str>, t: i64, user: &str, output: &str) -> Node {
    let mut n = Node::new(id(name), parent.map(id))
        .with_created_at(Timestamp(t))
        .with_user_text(user)
        .with_output_text(output);
    n.usage = resptree::Usage::new(10 * t as u64, t as u64);
    n
}

/// The hand-built tree the tests share (fixed ids and times):
///
/// ```text
/// resp_root      (t=1)
/// ├── resp_a     (t=2)
/// │   ├── resp_a1 (t=4)
/// │   └── resp_a2 (t=5)
/// └── resp_b     (t=3)
///     └── resp_b1 (t=6, extra context: resp_a2)
/// resp_other     (t=7)
/// ```
pub(crate) fn sample_nodes() -> Vec<Node> {
    let mut b1 = node(
        "resp_b1",
        Some("resp_b"),
        6,
        "Merge both plans",
        "Orsay, then Le Meurice.",
    );
    b1.extra_context = vec![id("resp_a2")];
    b1.labels.insert("merged".into());
    let mut a2 = node(
        "resp_a2",
        Some("resp_a"),
        5,
        "Kid friendly?",
        "Jardin d'Acclimatation.",
    );
    a2.metadata.insert("topic".into(), "kids".into());
    vec![
        node(
            "resp_root",
            None,
            1,
            "Plan a weekend in Paris\nTwo days, in May.",
            "Louvre on Saturday, Montmartre on Sunday.",
        ),
        node(
            "resp_a",
            Some("resp_root"),
            2,
            "Make it cheaper",
            "Walk the Marais, picnic by the Seine.",
        ),
        node(
            "resp_b",
            Some("resp_root"),
            3,
            "Make it fancier",
            "Dinner at Le Meurice.",
        ),
        node(
            "resp_a1",
            Some("resp_a"),
            4,
            "Add a rainy-day option",
            "Musée d'Orsay.",
        ),
        a2,
        b1,
        node(
            "resp_other",
            None,
            7,
            "Unrelated question",
            "Unrelated answer.",
        ),
    ]
}

pub(crate) fn fill(tree: &ResponseTree) {
    for n in sample_nodes() {
        tree.insert(n).unwrap();
    }
}

fn ids(names: &[&str]) -> Vec<NodeId> {
    names.iter().map(|n| id(n)).collect()
}

fn sample() -> ResponseTree {
    let tree = ResponseTree::in_memory();
    fill(&tree);
    tree
}

/// The sample tree over a memory store the test can also read directly (a tree
/// never lends its store out).
fn watched_sample() -> (ResponseTree, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let tree = ResponseTree::with_store(Shared(Arc::clone(&store))).unwrap();
    fill(&tree);
    (tree, store)
}

#[test]
fn tree_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<ResponseTree>();
    assert_send_sync::<Arc<dyn Store>>();
}

#[test]
fn parent_children_siblings() {
    let t = sample();
    assert_eq!(t.len(), 7);
    assert_eq!(t.parent(&id("resp_a1")).unwrap(), Some(id("resp_a")));
    assert_eq!(t.parent(&id("resp_root")).unwrap(), None);
    assert_eq!(
        t.children(&id("resp_root")).unwrap(),
        ids(&["resp_a", "resp_b"])
    );
    assert_eq!(
        t.children(&id("resp_a")).unwrap(),
        ids(&["resp_a1", "resp_a2"])
    );
    assert!(t.children(&id("resp_a1")).unwrap().is_empty());
    assert_eq!(t.siblings(&id("resp_a1")).unwrap(), ids(&["resp_a2"]));
    assert_eq!(t.siblings(&id("resp_b")).unwrap(), ids(&["resp_a"]));
    // A root's siblings are the other roots.
    assert_eq!(t.siblings(&id("resp_other")).unwrap(), ids(&["resp_root"]));
}

#[test]
fn siblings_with_equal_times_order_by_id() {
    let t = ResponseTree::in_memory();
    t.insert(node("r", None, 1, "q", "a")).unwrap();
    for name in ["z", "m", "b"] {
        t.insert(node(name, Some("r"), 5, "q", "a")).unwrap();
    }
    t.insert(node("early", Some("r"), 2, "q", "a")).unwrap();
    assert_eq!(
        t.children(&id("r")).unwrap(),
        ids(&["early", "b", "m", "z"])
    );
}

#[test]
fn ancestors_path_depth() {
    let t = sample();
    assert_eq!(
        t.ancestors(&id("resp_b1")).unwrap(),
        ids(&["resp_b", "resp_root"])
    );
    assert!(t.ancestors(&id("resp_root")).unwrap().is_empty());
    assert_eq!(
        t.path(&id("resp_b1")).unwrap(),
        ids(&["resp_root", "resp_b", "resp_b1"])
    );
    assert_eq!(t.path(&id("resp_other")).unwrap(), ids(&["resp_other"]));
    assert_eq!(t.depth(&id("resp_root")).unwrap(), 0);
    assert_eq!(t.depth(&id("resp_a2")).unwrap(), 2);
    // The iterator form on the graph gives the same answer, nearest first.
    let g = t.graph();
    let up: Vec<NodeId> = g.ancestors(&id("resp_a1")).unwrap().collect();
    assert_eq!(up, ids(&["resp_a", "resp_root"]));
}

#[test]
fn roots_and_leaves() {
    let t = sample();
    assert_eq!(t.roots(), ids(&["resp_root", "resp_other"]));
    assert_eq!(
        t.leaves(None).unwrap(),
        ids(&["resp_a1", "resp_a2", "resp_b1", "resp_other"])
    );
    assert_eq!(
        t.leaves(Some(&id("resp_a"))).unwrap(),
        ids(&["resp_a1", "resp_a2"])
    );
    assert_eq!(t.leaves(Some(&id("resp_a1"))).unwrap(), ids(&["resp_a1"]));
}

#[test]
fn descendants_dfs_and_bfs() {
    let t = sample();
    let g = t.graph();
    let dfs: Vec<NodeId> = g.descendants_dfs(&id("resp_root")).unwrap().collect();
    assert_eq!(
        dfs,
        ids(&[
            "resp_root",
            "resp_a",
            "resp_a1",
            "resp_a2",
            "resp_b",
            "resp_b1"
        ])
    );
    let bfs: Vec<NodeId> = g.descendants_bfs(&id("resp_root")).unwrap().collect();
    assert_eq!(
        bfs,
        ids(&[
            "resp_root",
            "resp_a",
            "resp_b",
            "resp_a1",
            "resp_a2",
            "resp_b1"
        ])
    );
    let leaf: Vec<NodeId> = g.descendants_bfs(&id("resp_a1")).unwrap().collect();
    assert_eq!(leaf, ids(&["resp_a1"]));
    drop(g);
    assert_eq!(
        t.descendants(&id("resp_b")).unwrap(),
        ids(&["resp_b", "resp_b1"])
    );
}

#[test]
fn common_ancestor_and_diff() {
    let t = sample();
    assert_eq!(
        t.common_ancestor(&id("resp_a1"), &id("resp_b1")).unwrap(),
        Some(id("resp_root"))
    );
    assert_eq!(
        t.common_ancestor(&id("resp_a1"), &id("resp_a2")).unwrap(),
        Some(id("resp_a"))
    );
    // A node is its own ancestor here.
    assert_eq!(
        t.common_ancestor(&id("resp_a"), &id("resp_a2")).unwrap(),
        Some(id("resp_a"))
    );
    assert_eq!(
        t.common_ancestor(&id("resp_a"), &id("resp_other")).unwrap(),
        None
    );

    assert_eq!(
        t.diff(&id("resp_a2"), &id("resp_b1")).unwrap(),
        BranchDiff {
            common: Some(id("resp_root")),
            left: ids(&["resp_a", "resp_a2"]),
            right: ids(&["resp_b", "resp_b1"]),
        }
    );
    assert_eq!(
        t.diff(&id("resp_a"), &id("resp_a1")).unwrap(),
        BranchDiff {
            common: Some(id("resp_a")),
            left: Vec::new(),
            right: ids(&["resp_a1"]),
        }
    );
    let apart = t.diff(&id("resp_a"), &id("resp_other")).unwrap();
    assert_eq!(apart.common, None);
    assert_eq!(apart.left, ids(&["resp_root", "resp_a"]));
    assert_eq!(apart.right, ids(&["resp_other"]));
}

#[test]
fn context_edges() {
    let t = sample();
    let g = t.graph();
    assert_eq!(g.context_of(&id("resp_b1")).unwrap(), ids(&["resp_a2"]));
    assert!(g.context_of(&id("resp_a2")).unwrap().is_empty());
    // Context edges do not make a second parent and are not walked as children.
    assert_eq!(g.parent(&id("resp_b1")).unwrap(), Some(id("resp_b")));
    assert!(g.children(&id("resp_a2")).unwrap().is_empty());
    let context: Vec<_> = g
        .edges()
        .into_iter()
        .filter(|(_, _, k)| *k == EdgeKind::Context)
        .collect();
    assert_eq!(
        context,
        vec![(id("resp_a2"), id("resp_b1"), EdgeKind::Context)]
    );
}

#[test]
fn get_and_transcript() {
    let t = sample();
    let a = t.get(&id("resp_a")).unwrap();
    assert_eq!(a.output_text, "Walk the Marais, picnic by the Seine.");
    let transcript = t.transcript(&id("resp_a1")).unwrap();
    let texts: Vec<String> = transcript.iter().map(resptree::node::item_text).collect();
    assert_eq!(
        texts,
        vec![
            "Plan a weekend in Paris\nTwo days, in May.",
            "Louvre on Saturday, Montmartre on Sunday.",
            "Make it cheaper",
            "Walk the Marais, picnic by the Seine.",
            "Add a rainy-day option",
            "Musée d'Orsay.",
        ]
    );
    assert_eq!(transcript[0]["role"], "user");
    assert_eq!(transcript[1]["type"], "message");
}

#[test]
fn find_by_text_label_and_metadata() {
    let t = sample();
    assert_eq!(
        t.find(|n| n.output_text.contains("Meurice")).unwrap(),
        ids(&["resp_b", "resp_b1"])
    );
    assert_eq!(
        t.find(|n| n.labels.contains("merged")).unwrap(),
        ids(&["resp_b1"])
    );
    assert_eq!(
        t.find(|n| n.metadata.get("topic").map(String::as_str) == Some("kids"))
            .unwrap(),
        ids(&["resp_a2"])
    );
    assert!(t.find(|_| false).unwrap().is_empty());
}

#[test]
fn unknown_ids_are_not_found() {
    let t = sample();
    let ghost = id("resp_ghost");
    for result in [
        t.parent(&ghost).map(|_| ()),
        t.children(&ghost).map(|_| ()),
        t.siblings(&ghost).map(|_| ()),
        t.ancestors(&ghost).map(|_| ()),
        t.path(&ghost).map(|_| ()),
        t.depth(&ghost).map(|_| ()),
        t.leaves(Some(&ghost)).map(|_| ()),
        t.descendants(&ghost).map(|_| ()),
        t.common_ancestor(&ghost, &id("resp_a")).map(|_| ()),
        t.diff(&id("resp_a"), &ghost).map(|_| ()),
        t.get(&ghost).map(|_| ()),
        t.transcript(&ghost).map(|_| ()),
        t.remove_subtree(&ghost).map(|_| ()),
        t.set_ref(RefName::new("x").unwrap(), &ghost),
    ] {
        match result {
            Err(Error::NodeNotFound(missing)) => assert_eq!(missing, ghost),
            other => panic!("expected NodeNotFound, got {other:?}"),
        }
    }
}

#[test]
fn insert_rejects_duplicates_dangling_and_self_loops() {
    let (t, store) = watched_sample();
    let dup = t.insert(node("resp_a", Some("resp_root"), 9, "q", "a"));
    assert!(matches!(
        dup,
        Err(Error::InvalidTree(TreeViolation::DuplicateNode(ref n))) if *n == id("resp_a")
    ));
    let dangling = t.insert(node("new", Some("resp_missing"), 9, "q", "a"));
    assert!(matches!(
        dangling,
        Err(Error::InvalidTree(TreeViolation::DanglingParent { ref node, ref missing }))
            if *node == id("new") && *missing == id("resp_missing")
    ));
    let mut bad_context = node("new", Some("resp_a"), 9, "q", "a");
    bad_context.extra_context = vec![id("resp_nowhere")];
    assert!(matches!(
        t.insert(bad_context),
        Err(Error::InvalidTree(TreeViolation::DanglingParent { .. }))
    ));
    let self_loop = t.insert(node("loop", Some("loop"), 9, "q", "a"));
    assert!(matches!(
        self_loop,
        Err(Error::InvalidTree(TreeViolation::Cycle { .. }))
    ));
    // Nothing of the refused inserts reached the graph or the store.
    assert_eq!(t.len(), 7);
    assert!(store.node(&id("new")).unwrap().is_none());
    assert!(store.node(&id("loop")).unwrap().is_none());
}

#[test]
fn insert_all_accepts_any_order_and_refuses_cycles_atomically() {
    let t = ResponseTree::in_memory();
    let nodes: Vec<Node> = sample_nodes().into_iter().rev().collect();
    t.insert_all(nodes, vec![(RefName::new("main").unwrap(), id("resp_b1"))])
        .unwrap();
    assert_eq!(t.len(), 7);
    assert_eq!(t.get_ref("main").unwrap(), id("resp_b1"));

    let store = Arc::new(MemoryStore::new());
    let t = ResponseTree::with_store(Shared(Arc::clone(&store))).unwrap();
    let cyclic = vec![
        node("x", Some("y"), 1, "q", "a"),
        node("y", Some("x"), 2, "q", "a"),
        node("fine", None, 3, "q", "a"),
    ];
    assert!(matches!(
        t.insert_all(cyclic, Vec::new()),
        Err(Error::InvalidTree(TreeViolation::Cycle { .. }))
    ));
    assert!(t.is_empty(), "a refused batch must add nothing");
    assert!(store.node(&id("fine")).unwrap().is_none());

    // A context cycle (x uses y as context, y continues x) is refused too.
    let mut x = node("x", None, 1, "q", "a");
    x.extra_context = vec![id("y")];
    let y = node("y", Some("x"), 2, "q", "a");
    assert!(matches!(
        t.insert_all(vec![x, y], Vec::new()),
        Err(Error::InvalidTree(TreeViolation::Cycle { .. }))
    ));
}

#[test]
fn refs_set_get_list_delete() {
    let (t, store) = watched_sample();
    let formal = RefName::new("formal").unwrap();
    let cheap = RefName::new("ideas/cheap").unwrap();
    t.set_ref(formal.clone(), &id("resp_b1")).unwrap();
    t.set_ref(cheap.clone(), &id("resp_a")).unwrap();
    assert_eq!(t.get_ref(&formal).unwrap(), id("resp_b1"));
    // Moving a ref.
    t.set_ref(cheap.clone(), &id("resp_a2")).unwrap();
    assert_eq!(
        t.list_refs(),
        vec![
            (formal.clone(), id("resp_b1")),
            (cheap.clone(), id("resp_a2"))
        ]
    );
    assert_eq!(store.refs().unwrap(), t.list_refs());
    assert_eq!(t.delete_ref(&formal).unwrap(), id("resp_b1"));
    assert!(matches!(t.get_ref(&formal), Err(Error::RefNotFound(ref n)) if *n == formal));
    assert!(matches!(t.delete_ref(&formal), Err(Error::RefNotFound(_))));
    assert_eq!(t.list_refs(), vec![(cheap, id("resp_a2"))]);
}

#[test]
fn resolve_refs_ids_and_prefixes() {
    let t = sample();
    t.set_ref(RefName::new("formal").unwrap(), &id("resp_b1"))
        .unwrap();
    assert_eq!(t.resolve("formal").unwrap(), id("resp_b1"));
    assert_eq!(t.resolve("resp_a2").unwrap(), id("resp_a2"));
    // A unique prefix, with or without the `resp_` part.
    assert_eq!(t.resolve("resp_ro").unwrap(), id("resp_root"));
    assert_eq!(t.resolve("oth").unwrap(), id("resp_other"));
    match t.resolve("resp_a") {
        // `resp_a` is itself a node, so it is not ambiguous.
        Ok(found) => assert_eq!(found, id("resp_a")),
        Err(e) => panic!("{e}"),
    }
    assert!(matches!(
        t.resolve("resp_b"),
        Ok(ref found) if *found == id("resp_b")
    ));
    let ambiguous = t.resolve("a").unwrap_err();
    assert!(
        matches!(ambiguous, Error::InvalidId { .. }),
        "{ambiguous:?}"
    );
    assert!(ambiguous.to_string().contains("more than one"));
    assert!(matches!(t.resolve("zzz"), Err(Error::NodeNotFound(_))));
    // A unique suffix of at least 4 characters: what `NodeId::short` prints.
    assert_eq!(t.resolve("ther").unwrap(), id("resp_other"));
    assert_eq!(
        t.resolve(id("resp_other").short()).unwrap(),
        id("resp_other")
    );
    assert!(matches!(t.resolve("her"), Err(Error::NodeNotFound(_))));
    assert!(matches!(
        t.resolve("has space"),
        Err(Error::InvalidId { .. })
    ));
}

#[test]
fn remove_subtree_removes_nodes_and_refs() {
    let (t, store) = watched_sample();
    t.set_ref(RefName::new("kids").unwrap(), &id("resp_a2"))
        .unwrap();
    t.set_ref(RefName::new("top").unwrap(), &id("resp_root"))
        .unwrap();
    let removed = t.remove_subtree(&id("resp_a")).unwrap();
    assert_eq!(removed, ids(&["resp_a", "resp_a1", "resp_a2"]));
    assert_eq!(t.len(), 4);
    for gone in &removed {
        assert!(!t.contains(gone));
        assert!(store.node(gone).unwrap().is_none());
    }
    assert_eq!(t.children(&id("resp_root")).unwrap(), ids(&["resp_b"]));
    assert_eq!(
        t.list_refs(),
        vec![(RefName::new("top").unwrap(), id("resp_root"))]
    );
    assert_eq!(store.refs().unwrap(), t.list_refs());
    // The context edge from the removed resp_a2 went with it.
    assert!(t.graph().context_of(&id("resp_b1")).unwrap().is_empty());
}

#[test]
fn commit_records_nodes_and_settles_attempts_in_one_batch() {
    let store = Arc::new(MemoryStore::new());
    let t = ResponseTree::with_store(Shared(Arc::clone(&store))).unwrap();
    let attempt = Attempt::new(
        None,
        vec![json!({"role": "user", "content": "hi"})],
        AttemptParams::default(),
    );
    let other = Attempt::new(None, Vec::new(), AttemptParams::default());
    t.journal(&[attempt.clone(), other.clone()]).unwrap();
    assert_eq!(t.attempts().unwrap(), vec![attempt.clone(), other.clone()]);
    t.commit(vec![node("resp_1", None, 1, "hi", "hello")], &[attempt.id])
        .unwrap();
    assert_eq!(t.attempts().unwrap(), vec![other.clone()]);
    assert!(t.contains(&id("resp_1")));
    assert!(store.node(&id("resp_1")).unwrap().is_some());
    // A refused node keeps its attempt journaled: nothing of the batch lands.
    let err = t
        .commit(vec![node("resp_1", None, 2, "q", "a")], &[other.id])
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidTree(TreeViolation::DuplicateNode(_))
    ));
    assert_eq!(store.attempts().unwrap(), vec![other.clone()]);
    // Settling without a node removes the attempt only.
    t.settle(&[other.id]).unwrap();
    assert!(t.attempts().unwrap().is_empty());
    assert_eq!(t.len(), 1);
}

/// A store whose writes always fail, to check that a failed write leaves the
/// graph unchanged.
#[derive(Debug, Default)]
struct FailingStore(MemoryStore);

impl Store for FailingStore {
    fn load(&self) -> resptree::Result<resptree::store::Loaded> {
        self.0.load()
    }
    fn node(&self, id: &NodeId) -> resptree::Result<Option<Node>> {
        self.0.node(id)
    }
    fn apply(&self, _batch: resptree::store::Batch) -> resptree::Result<()> {
        Err(Error::Unsupported("this store refuses writes"))
    }
    fn attempts(&self) -> resptree::Result<Vec<Attempt>> {
        self.0.attempts()
    }
    fn refs(&self) -> resptree::Result<Vec<(RefName, NodeId)>> {
        self.0.refs()
    }
    fn annotations(&self, node: &NodeId) -> resptree::Result<Vec<resptree::Stamped>> {
        self.0.annotations(node)
    }
    fn annotated(
        &self,
        kind: Option<resptree::AnnotationKind>,
    ) -> resptree::Result<Vec<(NodeId, resptree::Stamped)>> {
        self.0.annotated(kind)
    }
    fn flush(&self) -> resptree::Result<()> {
        Ok(())
    }
    fn search(
        &self,
        query: &resptree::search::IndexQuery,
    ) -> resptree::Result<Option<Vec<resptree::search::Candidate>>> {
        self.0.search(query)
    }
}

#[test]
fn failed_store_write_leaves_tree_unchanged() {
    let seed = MemoryStore::new();
    seed.apply(vec![Op::PutNode(Box::new(node("resp_r", None, 1, "q", "a")))].into())
        .unwrap();
    let t = ResponseTree::with_store(FailingStore(seed)).unwrap();
    assert_eq!(t.len(), 1);
    assert!(
        t.insert(node("resp_c", Some("resp_r"), 2, "q", "a"))
            .is_err()
    );
    assert!(
        t.set_ref(RefName::new("x").unwrap(), &id("resp_r"))
            .is_err()
    );
    assert!(t.remove_subtree(&id("resp_r")).is_err());
    assert_eq!(t.len(), 1);
    assert!(t.children(&id("resp_r")).unwrap().is_empty());
    assert!(t.list_refs().is_empty());
}

#[test]
fn concurrent_inserts_from_threads() {
    let t = Arc::new(ResponseTree::in_memory());
    t.insert(node("resp_r", None, 0, "q", "a")).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|w| {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                for i in 0..25 {
                    let name = format!("w{w}_{i}");
                    t.insert(node(&name, Some("resp_r"), i, "q", "a")).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(t.children(&id("resp_r")).unwrap().len(), 100);
}
