//! The generic store suite: every test here runs against every backend
//! (memory, sled, sled with buffered writes, and PostgreSQL), through a
//! [`Backend`] factory that can reopen the same store.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use resptree::store::{Attempt, AttemptParams, Batch, MemoryStore, Op, Store, migrate};
use resptree::{Error, NodeId, RefName, ResponseTree};
use serde_json::json;

use crate::support::stores::{Backend, Shared};
use crate::tree::{fill, id, sample_nodes};

/// Everything observable about a tree, for before/after comparisons.
pub(crate) fn snapshot(t: &ResponseTree) -> (Vec<resptree::Node>, Vec<(RefName, NodeId)>) {
    let nodes = t.all_ids().iter().map(|i| t.get(i).unwrap()).collect();
    (nodes, t.list_refs())
}

fn round_trip_write_drop_reopen(b: &dyn Backend) {
    let (before, graph_before) = {
        let t = ResponseTree::with_store(b.open()).unwrap();
        fill(&t);
        t.set_ref(RefName::new("formal").unwrap(), &id("resp_b1"))
            .unwrap();
        (snapshot(&t), t.graph().clone())
    };
    let t = ResponseTree::with_store(b.open()).unwrap();
    assert!(t.load_problems().is_empty(), "{:?}", t.load_problems());
    assert_eq!(snapshot(&t), before);
    assert_eq!(*t.graph(), graph_before);
    assert_eq!(before.0, {
        let mut expected = sample_nodes();
        expected.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        expected
    });
    assert_eq!(
        t.graph().context_of(&id("resp_b1")).unwrap(),
        vec![id("resp_a2")]
    );
}

fn removal_persists(b: &dyn Backend) {
    {
        let t = ResponseTree::with_store(b.open()).unwrap();
        fill(&t);
        t.set_ref(RefName::new("kids").unwrap(), &id("resp_a2"))
            .unwrap();
        t.remove_subtree(&id("resp_a")).unwrap();
    }
    let t = ResponseTree::with_store(b.open()).unwrap();
    // resp_b1 used the removed resp_a2 as context: it still loads, without that edge.
    assert!(t.load_problems().is_empty(), "{:?}", t.load_problems());
    assert_eq!(t.len(), 4);
    assert!(!t.contains(&id("resp_a2")));
    assert!(t.graph().context_of(&id("resp_b1")).unwrap().is_empty());
    assert!(t.list_refs().is_empty());
}

/// The same scenario against every backend gives the same answers.
fn store_operations(b: &dyn Backend) {
    let store = b.open();
    let attempt = Attempt::new(
        Some(id("resp_root")),
        vec![json!({"role": "user", "content": "x"})],
        AttemptParams::default(),
    );
    let nodes = sample_nodes();
    let mut batch: Batch = nodes
        .iter()
        .cloned()
        .map(|n| Op::PutNode(Box::new(n)))
        .collect();
    batch.push(Op::SetRef(RefName::new("main").unwrap(), id("resp_b1")));
    batch.push(Op::SetRef(RefName::new("alt").unwrap(), id("resp_a")));
    batch.push(Op::PutAttempt(Box::new(attempt.clone())));
    store.apply(batch).unwrap();

    let loaded = store.load().unwrap();
    assert!(loaded.problems.is_empty());
    let mut got: Vec<_> = loaded.nodes.iter().map(|t| t.id.clone()).collect();
    got.sort();
    let mut want: Vec<_> = nodes.iter().map(|n| n.id.clone()).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        store.node(&id("resp_a2")).unwrap().as_ref(),
        nodes.iter().find(|n| n.id == id("resp_a2"))
    );
    assert_eq!(store.node(&id("nope")).unwrap(), None);
    assert_eq!(
        store.refs().unwrap(),
        vec![
            (RefName::new("alt").unwrap(), id("resp_a")),
            (RefName::new("main").unwrap(), id("resp_b1")),
        ]
    );
    assert_eq!(store.attempts().unwrap(), vec![attempt.clone()]);

    // Removing what is not there is not an error.
    store
        .apply(
            vec![
                Op::RemoveNode(id("resp_a1")),
                Op::RemoveNode(id("never_there")),
                Op::DeleteRef(RefName::new("alt").unwrap()),
                Op::DeleteRef(RefName::new("never").unwrap()),
                Op::RemoveAttempt(attempt.id),
            ]
            .into(),
        )
        .unwrap();
    assert_eq!(store.load().unwrap().nodes.len(), nodes.len() - 1);
    assert_eq!(store.node(&id("resp_a1")).unwrap(), None);
    assert_eq!(store.refs().unwrap().len(), 1);
    assert!(store.attempts().unwrap().is_empty());
    store.flush().unwrap();
}

fn attempts_survive_reopen(b: &dyn Backend) {
    let attempt = Attempt::new(
        None,
        vec![json!({"role": "user", "content": "hi"})],
        AttemptParams::default(),
    );
    let later = Attempt::new(
        Some(id("resp_x")),
        Vec::new(),
        resptree::store::AttemptParams::default(),
    );
    {
        let store = b.open();
        store
            .apply(
                vec![
                    Op::PutAttempt(Box::new(later.clone())),
                    Op::PutAttempt(Box::new(attempt.clone())),
                ]
                .into(),
            )
            .unwrap();
    }
    // Oldest first (by id: UUID v7), whatever the order they were written in.
    let mut want = vec![attempt, later];
    want.sort_by_key(|a| a.id);
    let store = b.open();
    assert_eq!(store.attempts().unwrap(), want);
}

/// Refs move with compare-and-swap: a stale expectation is a typed conflict, and
/// a batch holding a failed swap changes nothing.
fn ref_compare_and_swap(b: &dyn Backend) {
    let store = b.open();
    let main = RefName::new("main").unwrap();
    let swap = |expected: Option<&str>, new: &str| -> Batch {
        vec![Op::SetRefIf {
            name: main.clone(),
            expected: expected.map(id),
            new: id(new),
        }]
        .into()
    };
    let mut batch: Batch = sample_nodes()
        .into_iter()
        .map(|n| Op::PutNode(Box::new(n)))
        .collect();
    batch.push(Op::SetRefIf {
        name: main.clone(),
        expected: None,
        new: id("resp_root"),
    });
    store.apply(batch).unwrap();
    assert_eq!(store.refs().unwrap(), vec![(main.clone(), id("resp_root"))]);

    // Creating a ref that exists conflicts, naming what is there.
    match store.apply(swap(None, "resp_a")) {
        Err(Error::Conflict {
            name,
            expected,
            actual,
        }) => {
            assert_eq!(name, main);
            assert_eq!(expected, None);
            assert_eq!(actual, Some(id("resp_root")));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A stale expectation conflicts too.
    let err = store.apply(swap(Some("resp_b"), "resp_a")).unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert!(err.to_string().contains("resp_root"), "{err}");
    // The right expectation moves it.
    store.apply(swap(Some("resp_root"), "resp_a")).unwrap();
    assert_eq!(store.refs().unwrap(), vec![(main.clone(), id("resp_a"))]);

    // A failed swap undoes the whole batch, including ops before it.
    let other = RefName::new("other").unwrap();
    let batch: Batch = vec![
        Op::SetRef(other.clone(), id("resp_b")),
        Op::RemoveAttempt(resptree::store::AttemptId::new()),
        Op::SetRefIf {
            name: main.clone(),
            expected: Some(id("resp_root")),
            new: id("resp_b1"),
        },
    ]
    .into();
    assert!(store.apply(batch).unwrap_err().is_conflict());
    assert_eq!(store.refs().unwrap(), vec![(main.clone(), id("resp_a"))]);

    // Swaps see earlier ops of their own batch; a deleted ref can be recreated.
    let batch: Batch = vec![
        Op::SetRef(other.clone(), id("resp_b")),
        Op::SetRefIf {
            name: other.clone(),
            expected: Some(id("resp_b")),
            new: id("resp_b1"),
        },
        Op::DeleteRef(main.clone()),
        Op::SetRefIf {
            name: main.clone(),
            expected: None,
            new: id("resp_other"),
        },
    ]
    .into();
    store.apply(batch).unwrap();
    assert_eq!(
        store.refs().unwrap(),
        vec![(main, id("resp_other")), (other, id("resp_b1"))]
    );
}

/// `ResponseTree::set_ref_if` moves a ref only from the expected target, and
/// learns the current target when it loses.
fn tree_ref_compare_and_swap(b: &dyn Backend) {
    // A second handle on the tree's store plays the other writer.
    let store = std::sync::Arc::new(b.open());
    let t = ResponseTree::with_store(Shared(store.clone())).unwrap();
    fill(&t);
    let main = RefName::new("main").unwrap();
    t.set_ref_if(main.clone(), None, &id("resp_a")).unwrap();
    assert_eq!(t.get_ref(&main).unwrap(), id("resp_a"));
    // Another writer moves it behind this tree's back.
    store
        .apply(vec![Op::SetRef(main.clone(), id("resp_b"))].into())
        .unwrap();
    let err = t
        .set_ref_if(main.clone(), Some(&id("resp_a")), &id("resp_a1"))
        .unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(t.get_ref(&main).unwrap(), id("resp_b"));
    // Retrying from what it learned succeeds.
    t.set_ref_if(main.clone(), Some(&id("resp_b")), &id("resp_a1"))
        .unwrap();
    assert_eq!(t.get_ref(&main).unwrap(), id("resp_a1"));
    assert_eq!(store.refs().unwrap(), vec![(main.clone(), id("resp_a1"))]);
    // A target outside the tree is refused before the store is asked.
    assert!(matches!(
        t.set_ref_if(main, Some(&id("resp_a1")), &id("resp_nope")),
        Err(Error::NodeNotFound(_))
    ));
}

/// `migrate` copies a tree into the store and back out, losslessly.
fn migrate_in_and_out(b: &dyn Backend) {
    let source = MemoryStore::new();
    let t = ResponseTree::with_store(MemoryStore::new()).unwrap();
    fill(&t);
    t.set_ref(RefName::new("main").unwrap(), &id("resp_b1"))
        .unwrap();
    // Copy the tree's store by hand into `source`, with an attempt too.
    let mut batch: Batch = sample_nodes()
        .into_iter()
        .map(|n| Op::PutNode(Box::new(n)))
        .collect();
    batch.push(Op::SetRef(RefName::new("main").unwrap(), id("resp_b1")));
    let attempt = Attempt::new(
        Some(id("resp_a")),
        Vec::new(),
        resptree::store::AttemptParams::default(),
    );
    batch.push(Op::PutAttempt(Box::new(attempt.clone())));
    source.apply(batch).unwrap();

    let store = b.open();
    let report = migrate(&source, &*store).unwrap();
    assert_eq!((report.nodes, report.refs, report.attempts), (7, 1, 1));
    // Into a store that is not empty: refused, nothing copied twice.
    assert!(matches!(
        migrate(&source, &*store),
        Err(Error::Config { .. })
    ));

    let back = MemoryStore::new();
    let report = migrate(&*store, &back).unwrap();
    assert_eq!((report.nodes, report.refs, report.attempts), (7, 1, 1));
    for n in sample_nodes() {
        assert_eq!(back.node(&n.id).unwrap().as_ref(), Some(&n), "{}", n.id);
    }
    assert_eq!(back.refs().unwrap(), source.refs().unwrap());
    assert_eq!(back.attempts().unwrap(), vec![attempt]);
    let reopened = ResponseTree::with_store(back).unwrap();
    assert_eq!(snapshot(&reopened), snapshot(&t));
}

/// Instantiates every generic test for one backend.
macro_rules! store_suite {
    ($module:ident, $backend:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use crate::support::stores::*;

            #[test]
            fn round_trip_write_drop_reopen() {
                super::round_trip_write_drop_reopen(&$backend);
            }

            #[test]
            fn removal_persists() {
                super::removal_persists(&$backend);
            }

            #[test]
            fn store_operations() {
                super::store_operations(&$backend);
            }

            #[test]
            fn attempts_survive_reopen() {
                super::attempts_survive_reopen(&$backend);
            }

            #[test]
            fn ref_compare_and_swap() {
                super::ref_compare_and_swap(&$backend);
            }

            #[test]
            fn tree_ref_compare_and_swap() {
                super::tree_ref_compare_and_swap(&$backend);
            }

            #[test]
            fn migrate_in_and_out() {
                super::migrate_in_and_out(&$backend);
            }
        }
    };
}

store_suite!(memory, Memory::default());
store_suite!(sled, Sled::new(resptree::store::Durability::Flush));
store_suite!(
    sled_buffered,
    Sled::new(resptree::store::Durability::Buffered)
);
#[cfg(feature = "postgres")]
store_suite!(postgres, Postgres::new());
