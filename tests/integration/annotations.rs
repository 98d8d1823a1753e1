//! Annotations (scores, labels, bookmarks, notes) in every store: memory, sled
//! (flushed and buffered, with reopens) and PostgreSQL; their removal with
//! their node; the JSON export and import; migration between stores.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use resptree::store::{Batch, MemoryStore, Op, Store, migrate};
use resptree::{
    Annotation, AnnotationKey, AnnotationKind, Error, NodeId, RefName, ResponseTree, Score,
    ScoreMethod, Stamped, Timestamp, Usage,
};

use crate::support::stores::{Backend, Shared};
use crate::tree::{fill, id, node};

fn score(criterion: &str, value: f64) -> Annotation {
    Annotation::Score(Score::new(criterion, value, ScoreMethod::Function))
}

fn judged(criterion: &str, value: f64) -> Annotation {
    Annotation::Score(
        Score::new(
            criterion,
            value,
            ScoreMethod::Pairwise {
                wins: 2,
                losses: 1,
                ties: 1,
            },
        )
        .with_judge("gpt-4o-mini", Usage::new(300, 20)),
    )
}

/// The annotations of `node`, without their times.
fn of(t: &ResponseTree, node: &str) -> Vec<Annotation> {
    t.annotations(&id(node))
        .unwrap()
        .into_iter()
        .map(|s| s.annotation)
        .collect()
}

fn keys(listed: &[(NodeId, Stamped)]) -> Vec<(String, String)> {
    listed
        .iter()
        .map(|(n, s)| (n.to_string(), s.key().to_string()))
        .collect()
}

fn written_read_and_reopened(b: &dyn Backend) {
    let before = {
        let t = ResponseTree::with_store(b.open()).unwrap();
        fill(&t);
        t.annotate(&id("resp_a"), score("accuracy", 0.25)).unwrap();
        t.annotate(&id("resp_a"), judged("accuracy", 0.75)).unwrap();
        t.annotate(&id("resp_a"), Annotation::label("paris"))
            .unwrap();
        t.annotate(&id("resp_a"), Annotation::label("draft"))
            .unwrap();
        t.annotate(&id("resp_a"), Annotation::note("first"))
            .unwrap();
        t.annotate(&id("resp_a"), Annotation::note("second, on\ntwo lines"))
            .unwrap();
        t.annotate(&id("resp_b1"), Annotation::Bookmark).unwrap();
        t.annotate(&id("resp_a"), Annotation::Bookmark).unwrap();
        // A slot holds one annotation: the later score and note replaced the earlier.
        assert_eq!(
            of(&t, "resp_a"),
            vec![
                Annotation::Bookmark,
                Annotation::label("draft"),
                Annotation::label("paris"),
                Annotation::note("second, on\ntwo lines"),
                judged("accuracy", 0.75),
            ]
        );
        t.annotations(&id("resp_a")).unwrap()
    };
    let t = ResponseTree::with_store(b.open()).unwrap();
    assert!(t.load_problems().is_empty(), "{:?}", t.load_problems());
    assert_eq!(t.annotations(&id("resp_a")).unwrap(), before);
    assert!(t.annotations(&id("resp_root")).unwrap().is_empty());
    assert!(before.iter().all(|s| s.at > Timestamp(0)));
    assert_eq!(
        keys(&t.annotated(Some(AnnotationKind::Bookmark)).unwrap()),
        [("resp_a", "bookmark"), ("resp_b1", "bookmark")].map(|(n, k)| (n.into(), k.into()))
    );
    assert_eq!(
        keys(&t.annotated(Some(AnnotationKind::Score)).unwrap()),
        [("resp_a".to_owned(), "score/accuracy".to_owned())]
    );
    assert_eq!(t.annotated(None).unwrap().len(), 6);
    let key = AnnotationKey::score("accuracy");
    match t
        .annotation(&id("resp_a"), &key)
        .unwrap()
        .unwrap()
        .annotation
    {
        Annotation::Score(s) => {
            assert_eq!(s.judge_usage, Some(Usage::new(300, 20)));
            assert_eq!(s.judge_model.as_deref(), Some("gpt-4o-mini"));
        }
        other => panic!("{other:?}"),
    }
}

fn removed_and_reopened(b: &dyn Backend) {
    {
        let t = ResponseTree::with_store(b.open()).unwrap();
        fill(&t);
        t.annotate(&id("resp_a"), Annotation::label("x")).unwrap();
        let removed = t
            .remove_annotation(&id("resp_a"), &AnnotationKey::label("x"))
            .unwrap();
        assert_eq!(removed.map(|s| s.annotation), Some(Annotation::label("x")));
        // An empty slot: nothing to remove, not an error.
        assert_eq!(
            t.remove_annotation(&id("resp_a"), &AnnotationKey::note())
                .unwrap(),
            None
        );
        t.annotate(&id("resp_a"), Annotation::label("kept"))
            .unwrap();
    }
    let t = ResponseTree::with_store(b.open()).unwrap();
    assert_eq!(of(&t, "resp_a"), vec![Annotation::label("kept")]);
}

fn a_removed_subtree_takes_its_annotations(b: &dyn Backend) {
    {
        let t = ResponseTree::with_store(b.open()).unwrap();
        fill(&t);
        t.annotate(&id("resp_a"), Annotation::Bookmark).unwrap();
        t.annotate(&id("resp_a2"), score("q", 1.0)).unwrap();
        t.annotate(&id("resp_a2"), Annotation::note("deep"))
            .unwrap();
        t.annotate(&id("resp_b"), Annotation::Bookmark).unwrap();
        t.remove_subtree(&id("resp_a")).unwrap();
        assert_eq!(
            keys(&t.annotated(None).unwrap()),
            [("resp_b".to_owned(), "bookmark".to_owned())]
        );
    }
    let store = b.open();
    // The store itself holds nothing of the removed nodes, so a node that comes
    // back with the same id starts without annotations.
    assert_eq!(store.annotations(&id("resp_a2")).unwrap(), vec![]);
    assert_eq!(store.annotated(None).unwrap().len(), 1);
    let t = ResponseTree::with_store(store).unwrap();
    t.insert(node("resp_a", Some("resp_root"), 2, "q", "again"))
        .unwrap();
    assert!(t.annotations(&id("resp_a")).unwrap().is_empty());
}

fn unknown_nodes_and_bad_annotations_are_refused(b: &dyn Backend) {
    let t = ResponseTree::with_store(b.open()).unwrap();
    fill(&t);
    let err = t
        .annotate(&id("resp_nope"), Annotation::Bookmark)
        .unwrap_err();
    assert!(
        matches!(&err, Error::NodeNotFound(n) if n.as_str() == "resp_nope"),
        "{err:?}"
    );
    assert!(matches!(
        t.annotations(&id("resp_nope")),
        Err(Error::NodeNotFound(_))
    ));
    let err = t
        .annotate(&id("resp_a"), score("q", f64::INFINITY))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidAnnotation(_)), "{err:?}");
    let err = t
        .annotate(&id("resp_a"), Annotation::label("a\u{0}b"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidAnnotation(_)), "{err:?}");
    // One unknown node fails the whole group: nothing of it is stored.
    let err = t
        .annotate_all([
            (id("resp_a"), Annotation::Bookmark),
            (id("resp_gone"), Annotation::Bookmark),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::NodeNotFound(_)), "{err:?}");
    assert!(t.annotated(None).unwrap().is_empty());
    t.annotate_all([
        (id("resp_a"), score("q", 1.0)),
        (id("resp_b"), score("q", 2.0)),
    ])
    .unwrap();
    assert_eq!(t.annotated(Some(AnnotationKind::Score)).unwrap().len(), 2);
}

/// A batch is atomic with its annotations: a failed compare-and-swap stores
/// none of them, and a node removed in the batch that annotated it keeps none.
fn batches_are_atomic_with_annotations(b: &dyn Backend) {
    let store = b.open();
    let put = |n: &str, a: Annotation| Op::PutAnnotation {
        node: id(n),
        annotation: Box::new(Stamped::new(a, Timestamp(5))),
    };
    store
        .apply(Batch::from(vec![
            Op::PutNode(Box::new(node("resp_r", None, 1, "q", "a"))),
            put("resp_r", Annotation::Bookmark),
        ]))
        .unwrap();
    let err = store
        .apply(Batch::from(vec![
            put("resp_r", Annotation::label("lost")),
            Op::SetRefIf {
                name: RefName::new("main").unwrap(),
                expected: Some(id("resp_r")),
                new: id("resp_r"),
            },
        ]))
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert_eq!(
        store.annotations(&id("resp_r")).unwrap(),
        vec![Stamped::new(Annotation::Bookmark, Timestamp(5))]
    );
    store
        .apply(Batch::from(vec![
            Op::PutNode(Box::new(node("resp_c", Some("resp_r"), 2, "q", "a"))),
            put("resp_c", Annotation::note("short-lived")),
            Op::RemoveNode(id("resp_c")),
        ]))
        .unwrap();
    assert!(store.annotations(&id("resp_c")).unwrap().is_empty());
    store
        .apply(Batch::from(vec![Op::RemoveAnnotation {
            node: id("resp_r"),
            key: AnnotationKey::bookmark(),
        }]))
        .unwrap();
    assert!(store.annotated(None).unwrap().is_empty());
}

/// The JSON export carries annotations, an import reads them back, and
/// migration copies them from a store into the backend under test.
fn exported_imported_and_migrated(b: &dyn Backend) {
    let source = ResponseTree::in_memory();
    fill(&source);
    source
        .annotate(&id("resp_b1"), judged("quality", 0.5))
        .unwrap();
    source
        .annotate(&id("resp_a"), Annotation::Bookmark)
        .unwrap();
    let expected = source.annotated(None).unwrap();
    let exported = resptree::render::export_json(&source).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(doc["annotations"].as_array().map(Vec::len), Some(2));

    let from = std::sync::Arc::new(MemoryStore::new());
    let imported = ResponseTree::with_store(Shared(from.clone())).unwrap();
    resptree::import::import_json(&imported, &exported).unwrap();
    assert_eq!(imported.annotated(None).unwrap(), expected);

    let to = b.open();
    let report = migrate(from.as_ref(), to.as_ref()).unwrap();
    assert_eq!(report.annotations, 2);
    let t = ResponseTree::with_store(to).unwrap();
    assert_eq!(t.annotated(None).unwrap(), expected);
}

/// Instantiates every test above for one backend.
macro_rules! annotation_suite {
    ($module:ident, $backend:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use crate::support::stores::*;

            #[test]
            fn written_read_and_reopened() {
                super::written_read_and_reopened(&$backend);
            }

            #[test]
            fn removed_and_reopened() {
                super::removed_and_reopened(&$backend);
            }

            #[test]
            fn a_removed_subtree_takes_its_annotations() {
                super::a_removed_subtree_takes_its_annotations(&$backend);
            }

            #[test]
            fn unknown_nodes_and_bad_annotations_are_refused() {
                super::unknown_nodes_and_bad_annotations_are_refused(&$backend);
            }

            #[test]
            fn batches_are_atomic_with_annotations() {
                super::batches_are_atomic_with_annotations(&$backend);
            }

            #[test]
            fn exported_imported_and_migrated() {
                super::exported_imported_and_migrated(&$backend);
            }
        }
    };
}

annotation_suite!(memory, Memory::default());
annotation_suite!(sled, Sled::new(resptree::store::Durability::Flush));
annotation_suite!(
    sled_buffered,
    Sled::new(resptree::store::Durability::Buffered)
);
#[cfg(feature = "postgres")]
annotation_suite!(postgres, Postgres::new());

/// An export written before annotations existed (no `annotations` field)
/// still imports; one with an annotation of a node it does not hold is
/// refused as a whole.
#[test]
fn exports_without_annotations_import_and_dangling_ones_are_refused() {
    let source = ResponseTree::in_memory();
    fill(&source);
    let plain = resptree::render::export_json(&source).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(doc.get("annotations"), None);
    let t = ResponseTree::in_memory();
    resptree::import::import_json(&t, &plain).unwrap();
    assert!(t.annotated(None).unwrap().is_empty());

    doc["annotations"] = serde_json::json!([
        {"node": "resp_a", "kind": "label", "text": "ok", "at": 1},
        {"node": "resp_elsewhere", "kind": "bookmark", "at": 1}
    ]);
    let t = ResponseTree::in_memory();
    let err = resptree::import::import_json(&t, &doc.to_string()).unwrap_err();
    assert!(
        matches!(&err, Error::NodeNotFound(n) if n.as_str() == "resp_elsewhere"),
        "{err:?}"
    );
    assert!(t.is_empty());
}
