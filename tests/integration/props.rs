//! Property tests: random insert/remove/ref sequences keep the tree's invariants,
//! the graph rebuilt from sled equals the live one, and reopening through the
//! topology snapshot and log returns exactly what was written.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::Index;
use resptree::store::{Batch, Durability, Op, SledStore, Store, Topology};
use resptree::tree::{EdgeKind, Graph, MissingContext};
use resptree::{Node, NodeId, RefName, ResponseTree, Timestamp};

use crate::support::stores::Shared;

#[derive(Debug, Clone)]
enum Action {
    /// Insert a node under an existing one (or as a root), with up to two
    /// context nodes; times collide on purpose to exercise the id tiebreak.
    Insert {
        parent: Option<Index>,
        context: Vec<Index>,
        time: i64,
    },
    Remove(Index),
    SetRef(u8, Index),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (
            proptest::option::weighted(0.85, any::<Index>()),
            proptest::collection::vec(any::<Index>(), 0..=2),
            0_i64..6,
        )
            .prop_map(|(parent, context, time)| Action::Insert { parent, context, time }),
        1 => any::<Index>().prop_map(Action::Remove),
        1 => (0_u8..3, any::<Index>()).prop_map(|(r, i)| Action::SetRef(r, i)),
    ]
}

fn check_invariants(
    tree: &ResponseTree,
    store: &SledStore,
    model: &BTreeMap<NodeId, Option<NodeId>>,
) {
    let graph = tree.graph();
    // Same nodes and parents as the model.
    assert_eq!(graph.len(), model.len());
    for (id, parent) in model {
        assert_eq!(graph.parent(id).unwrap(), *parent, "parent of {id}");
    }
    // At most one parent each.
    let edges = graph.edges();
    let mut parents: HashMap<&NodeId, usize> = HashMap::new();
    for (_, to, kind) in &edges {
        if *kind == EdgeKind::Continues {
            *parents.entry(to).or_default() += 1;
        }
    }
    assert!(parents.values().all(|&n| n == 1));
    // No cycles, over both edge kinds (Kahn's algorithm consumes every node).
    let mut indegree: HashMap<&NodeId, usize> = model.keys().map(|k| (k, 0)).collect();
    for (_, to, _) in &edges {
        *indegree.get_mut(to).unwrap() += 1;
    }
    let mut ready: Vec<&NodeId> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut seen = 0;
    while let Some(n) = ready.pop() {
        seen += 1;
        for (_, to, _) in edges.iter().filter(|(from, _, _)| from == n) {
            let d = indegree.get_mut(to).unwrap();
            *d -= 1;
            if *d == 0 {
                ready.push(to);
            }
        }
    }
    assert_eq!(seen, model.len(), "the graph has a cycle");
    // path(n) starts at a root, ends at n, and follows parent links.
    let roots: BTreeSet<NodeId> = graph.roots().into_iter().collect();
    for id in model.keys() {
        let path = graph.path(id).unwrap();
        assert!(roots.contains(&path[0]));
        assert_eq!(path.last(), Some(id));
        for pair in path.windows(2) {
            assert_eq!(graph.parent(&pair[1]).unwrap().as_ref(), Some(&pair[0]));
        }
        assert_eq!(graph.depth(id).unwrap(), path.len() - 1);
        // Children are ordered by (created_at, id).
        let children = graph.children(id).unwrap();
        let keys: Vec<_> = children
            .iter()
            .map(|c| (graph.created_at(c).unwrap(), c.clone()))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }
    // Every child-index entry matches a node and its parent, and none is missing.
    let index = store.child_index().unwrap();
    for (parent, child) in &index {
        assert_eq!(
            model.get(child),
            Some(&Some(parent.clone())),
            "index entry {parent} -> {child}"
        );
    }
    assert_eq!(index.len(), model.values().filter(|p| p.is_some()).count());
    // Refs point at live nodes.
    for (_, target) in tree.list_refs() {
        assert!(model.contains_key(&target));
    }
}

fn pick<'a>(ids: &'a [NodeId], i: &Index) -> Option<&'a NodeId> {
    (!ids.is_empty()).then(|| &ids[i.index(ids.len())])
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: crate::support::proptest_cases(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_edits_keep_invariants_and_survive_reopen(actions in proptest::collection::vec(action(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        let store = Arc::new(SledStore::open(&path).unwrap().with_durability(Durability::Buffered));
        let tree = ResponseTree::with_store(Shared(store.clone())).unwrap();
        let mut model: BTreeMap<NodeId, Option<NodeId>> = BTreeMap::new();
        let mut next = 0;
        for action in &actions {
            let ids: Vec<NodeId> = model.keys().cloned().collect();
            match action {
                Action::Insert { parent, context, time } => {
                    let parent = parent.as_ref().and_then(|p| pick(&ids, p)).cloned();
                    let id = NodeId::new(&format!("n{next:03}")).unwrap();
                    next += 1;
                    let mut node = Node::new(id.clone(), parent.clone())
                        .with_created_at(Timestamp(*time))
                        .with_user_text(format!("question {next}"));
                    node.extra_context = context.iter().filter_map(|c| pick(&ids, c)).cloned().collect();
                    node.extra_context.dedup();
                    tree.insert(node).unwrap();
                    model.insert(id, parent);
                }
                Action::Remove(i) => {
                    let Some(target) = pick(&ids, i) else { continue };
                    let removed = tree.remove_subtree(target).unwrap();
                    let expected: BTreeSet<NodeId> = model
                        .keys()
                        .filter(|n| {
                            let mut cur = Some((*n).clone());
                            while let Some(c) = cur {
                                if c == *target {
                                    return true;
                                }
                                cur = model[&c].clone();
                            }
                            false
                        })
                        .cloned()
                        .collect();
                    prop_assert_eq!(removed.iter().cloned().collect::<BTreeSet<_>>(), expected);
                    prop_assert_eq!(&removed[0], target);
                    for r in &removed {
                        model.remove(r);
                    }
                }
                Action::SetRef(r, i) => {
                    let Some(target) = pick(&ids, i) else { continue };
                    tree.set_ref(RefName::new(&format!("ref{r}")).unwrap(), target).unwrap();
                }
            }
            check_invariants(&tree, &store, &model);
        }
        store.flush().unwrap();
        let live = tree.graph().clone();
        let refs = tree.list_refs();
        drop(tree);
        drop(store);
        let reopened = ResponseTree::open(&path).unwrap();
        prop_assert!(reopened.load_problems().is_empty(), "{:?}", reopened.load_problems());
        prop_assert_eq!(&*reopened.graph(), &live);
        prop_assert_eq!(reopened.list_refs(), refs);
    }
}

/// One step of [`reopens_through_the_snapshot_and_log_lose_nothing`].
#[derive(Debug, Clone)]
enum StoreStep {
    /// Store node `id` (new or replacing) under `parent`, at `time`.
    Put {
        id: u8,
        parent: Option<u8>,
        context: Option<u8>,
        time: i64,
    },
    Remove(u8),
    /// Close the store and open it again.
    Reopen,
    /// Close the store; damage (0) or delete (1) its snapshot file, or have it
    /// forget its snapshot (2); open it again.
    LoseSnapshot {
        how: u8,
    },
}

fn store_step() -> impl Strategy<Value = StoreStep> {
    prop_oneof![
        6 => (0_u8..10, proptest::option::weighted(0.8, 0_u8..10), proptest::option::weighted(0.2, 0_u8..10), 0_i64..4)
            .prop_map(|(id, parent, context, time)| StoreStep::Put { id, parent, context, time }),
        2 => (0_u8..10).prop_map(StoreStep::Remove),
        2 => Just(StoreStep::Reopen),
        1 => (0_u8..3).prop_map(|how| StoreStep::LoseSnapshot { how }),
    ]
}

fn step_id(i: u8) -> NodeId {
    NodeId::new(&format!("resp_{i}")).unwrap()
}

/// The graph a set of records must give, built the slow, careful way.
fn expected_graph(model: &BTreeMap<NodeId, Topology>) -> Graph {
    let records: Vec<Topology> = model.values().cloned().collect();
    Graph::build(&records, MissingContext::Drop).0
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: crate::support::proptest_cases(48),
        ..ProptestConfig::default()
    })]

    /// Whatever mix of puts, replacements, removals and reopens (with the
    /// snapshot rewritten often, rarely or never, and sometimes lost), a load
    /// returns exactly the records written, and the tree built from it is the
    /// one those records give.
    #[test]
    fn reopens_through_the_snapshot_and_log_lose_nothing(
        steps in proptest::collection::vec(store_step(), 1..40),
        every in prop_oneof![Just(1_usize), Just(3), Just(usize::MAX)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        let open = || SledStore::open(&path).unwrap().with_snapshot_every(every);
        let mut store = open();
        let mut model: BTreeMap<NodeId, Topology> = BTreeMap::new();
        for step in &steps {
            match step {
                StoreStep::Put { id, parent, context, time } => {
                    let mut node = Node::new(step_id(*id), parent.map(step_id))
                        .with_created_at(Timestamp(*time))
                        .with_user_text("q");
                    node.extra_context = context.map(step_id).into_iter().collect();
                    model.insert(node.id.clone(), Topology::of(&node));
                    store.apply(Batch::from(vec![Op::PutNode(Box::new(node))])).unwrap();
                }
                StoreStep::Remove(id) => {
                    model.remove(&step_id(*id));
                    store.apply(Batch::from(vec![Op::RemoveNode(step_id(*id))])).unwrap();
                }
                StoreStep::Reopen | StoreStep::LoseSnapshot { .. } => {
                    drop(store);
                    if let StoreStep::LoseSnapshot { how } = step {
                        if *how == 2 {
                            open().forget_snapshot().unwrap();
                        }
                        for entry in std::fs::read_dir(&path).unwrap() {
                            let file = entry.unwrap().path();
                            if file.extension().is_some_and(|e| e == "snapshot") {
                                match how {
                                    0 => {
                                        let mut bytes = std::fs::read(&file).unwrap();
                                        let last = bytes.len() - 1;
                                        bytes[last] ^= 0x55;
                                        std::fs::write(&file, bytes).unwrap();
                                    }
                                    1 => std::fs::remove_file(&file).unwrap(),
                                    _ => {}
                                }
                            }
                        }
                    }
                    store = open();
                    let mut loaded: Vec<Topology> = store.load().unwrap().nodes;
                    loaded.sort_by(|a, b| a.id.cmp(&b.id));
                    let expected: Vec<Topology> = model.values().cloned().collect();
                    prop_assert_eq!(loaded, expected);
                }
            }
        }
        drop(store);
        let tree = ResponseTree::with_store(open()).unwrap();
        prop_assert_eq!(&*tree.graph(), &expected_graph(&model));
    }
}
