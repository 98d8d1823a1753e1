//! `ResponseTree::search` over every store: words, phrases, snippets, filters,
//! the index kept current by every write (and nothing left by a failed one),
//! reopen, the sled index rebuilt for older stores, and hostile queries.

use std::sync::Arc;

use resptree::search::{Field, IndexQuery, SearchHit, SearchOptions};
use resptree::store::{MemoryStore, Op, SledStore, Store};
use resptree::{Error, Node, NodeId, ResponseTree, Timestamp};
use serde_json::json;

use crate::support::stores::{Backend, Shared};
use crate::tree::{id, node};

/// A small tree about travel:
///
/// ```text
/// resp_paris   (t=1, gpt-4o)   "Plan a weekend in Paris" / "See the Eiffel Tower ..."
/// ├── resp_food (t=2, gpt-4o)  "Where to eat in Paris?" / "Try a bistro near the tower"
/// └── resp_art  (t=3, o3)      "Museums?" / "The Louvre, then the Orsay. The Louvre is huge."
/// resp_rome    (t=4, gpt-4o)   "Plan a weekend in Rome" / "See the Colosseum; towers of Bologna are far"
/// ```
fn travel() -> Vec<Node> {
    let mut paris = node(
        "resp_paris",
        None,
        1,
        "Plan a weekend in Paris",
        "See the Eiffel Tower at night, then walk along the Seine.",
    );
    paris.model = Some("gpt-4o".to_owned());
    let mut food = node(
        "resp_food",
        Some("resp_paris"),
        2,
        "Where to eat in Paris?",
        "Try a bistro near the tower.",
    );
    food.model = Some("gpt-4o".to_owned());
    let mut art = node(
        "resp_art",
        Some("resp_paris"),
        3,
        "Museums?",
        "The Louvre, then the Orsay. The Louvre is huge.",
    );
    art.model = Some("o3".to_owned());
    let mut rome = node(
        "resp_rome",
        None,
        4,
        "Plan a weekend in Rome",
        "See the Colosseum; the towers of Bologna are far.",
    );
    rome.model = Some("gpt-4o".to_owned());
    vec![paris, food, art, rome]
}

fn ids(hits: &[SearchHit]) -> Vec<&str> {
    hits.iter().map(|h| h.id.as_str()).collect()
}

fn search(t: &ResponseTree, query: &str) -> Vec<String> {
    search_with(t, query, &SearchOptions::new())
}

fn search_with(t: &ResponseTree, query: &str, options: &SearchOptions) -> Vec<String> {
    ids(&t.search(query, options).unwrap())
        .into_iter()
        .map(str::to_owned)
        .collect()
}

fn filled(b: &dyn Backend) -> ResponseTree {
    let t = ResponseTree::with_store(b.open()).unwrap();
    t.insert_all(travel(), Vec::new()).unwrap();
    t.set_ref("art", &id("resp_art")).unwrap();
    t
}

fn words_phrases_and_snippets(b: &dyn Backend) {
    let t = filled(b);
    assert_eq!(search(&t, "paris"), ["resp_food", "resp_paris"]);
    assert_eq!(search(&t, "PARIS tower"), ["resp_food", "resp_paris"]);
    assert_eq!(search(&t, "weekend"), ["resp_rome", "resp_paris"]);
    assert!(search(&t, "berlin").is_empty());
    assert!(search(&t, "tow").is_empty(), "words match whole");
    // A phrase needs its words next to each other, in order.
    assert_eq!(search(&t, r#""eiffel tower""#), ["resp_paris"]);
    assert!(search(&t, r#""tower eiffel""#).is_empty());
    // More occurrences rank first.
    assert_eq!(
        search(&t, "the"),
        ["resp_art", "resp_rome", "resp_paris", "resp_food"]
    );

    let hits = t
        .search(r#"louvre "the orsay""#, &SearchOptions::new())
        .unwrap();
    assert_eq!(ids(&hits), ["resp_art"]);
    let hit = &hits[0];
    assert_eq!(hit.model.as_deref(), Some("o3"));
    assert_eq!(hit.created_at, Timestamp(3));
    let snippet = &hit.snippets[0];
    assert_eq!(snippet.field, Field::Output);
    assert_eq!(snippet.item, 0);
    let marked: Vec<&str> = snippet
        .matches
        .iter()
        .map(|r| &snippet.text[r.clone()])
        .collect();
    assert_eq!(marked, ["Louvre", "the Orsay", "Louvre"]);
    // The input is searched too, and snippets say where they come from.
    let hits = t.search("museums", &SearchOptions::new()).unwrap();
    assert_eq!(hits[0].snippets[0].field, Field::Input);
    assert_eq!(hits[0].snippets[0].text, "Museums?");
}

fn filters(b: &dyn Backend) {
    let t = filled(b);
    let under = |root: &str| SearchOptions::new().with_under(id(root));
    assert_eq!(
        search_with(&t, "the", &under("resp_paris")),
        ["resp_art", "resp_paris", "resp_food"]
    );
    assert_eq!(search_with(&t, "the", &under("resp_food")), ["resp_food"]);
    assert_eq!(
        search_with(&t, "the", &SearchOptions::new().with_ref("art")),
        ["resp_art"]
    );
    assert_eq!(
        search_with(&t, "the", &SearchOptions::new().with_model("gpt-4o")),
        ["resp_rome", "resp_paris", "resp_food"]
    );
    assert!(search_with(&t, "the", &SearchOptions::new().with_model("gpt-4")).is_empty());
    let window = SearchOptions::new()
        .with_created_after(Timestamp(1))
        .with_created_before(Timestamp(4));
    assert_eq!(search_with(&t, "the", &window), ["resp_art", "resp_food"]);
    assert_eq!(
        search_with(&t, "the", &SearchOptions::new().with_limit(2)),
        ["resp_art", "resp_rome"]
    );
    assert!(search_with(&t, "the", &SearchOptions::new().with_limit(0)).is_empty());
    // Filters combine.
    let both = under("resp_paris")
        .with_model("gpt-4o")
        .with_created_after(Timestamp(1));
    assert_eq!(search_with(&t, "paris", &both), ["resp_food"]);
    // Bad scopes are errors, not empty results.
    assert!(matches!(
        t.search("the", &under("resp_nowhere")),
        Err(Error::NodeNotFound(_))
    ));
    assert!(matches!(
        t.search("the", &SearchOptions::new().with_ref("nope")),
        Err(Error::RefNotFound(_))
    ));
    assert!(matches!(
        t.search("the", &SearchOptions::new().with_ref("bad name!")),
        Err(Error::InvalidId { .. })
    ));
}

/// The candidates the store's own index returns for `terms`.
fn indexed(store: &dyn Store, terms: &[&str]) -> Option<Vec<String>> {
    let query = IndexQuery::new(terms.iter().map(|t| (*t).to_owned()).collect(), None);
    store.search(&query).unwrap().map(|found| {
        let mut ids: Vec<String> = found.into_iter().map(|c| c.id.to_string()).collect();
        ids.sort();
        ids
    })
}

fn writes_keep_the_index_current(b: &dyn Backend) {
    let store: Arc<dyn Store> = Arc::from(b.open());
    let t = ResponseTree::with_store(Shared(store.clone())).unwrap();
    t.insert_all(travel(), Vec::new()).unwrap();
    assert_eq!(search(&t, "bistro"), ["resp_food"]);
    // A node put again with new text is found by the new text only.
    let mut food = t.get(&id("resp_food")).unwrap();
    food.input = vec![json!({"role": "user", "content": "Any crêpes?"})];
    food.output.clear();
    food.output_text = "Crêpes at the market.".to_owned();
    store
        .apply(vec![Op::PutNode(Box::new(food))].into())
        .unwrap();
    assert!(search(&t, "bistro").is_empty());
    assert_eq!(search(&t, "CRÊPES market"), ["resp_food"]);
    // Removing a subtree removes its postings.
    t.remove_subtree(&id("resp_paris")).unwrap();
    assert!(search(&t, "paris").is_empty());
    assert_eq!(search(&t, "weekend"), ["resp_rome"]);
    if let Some(left) = indexed(store.as_ref(), &["paris"]) {
        assert!(left.is_empty(), "postings left behind: {left:?}");
        assert!(indexed(store.as_ref(), &["louvre"]).unwrap().is_empty());
        assert!(indexed(store.as_ref(), &["crêpes"]).unwrap().is_empty());
    }
}

fn a_failed_batch_leaves_no_postings(b: &dyn Backend) {
    let store: Arc<dyn Store> = Arc::from(b.open());
    let t = ResponseTree::with_store(Shared(store.clone())).unwrap();
    t.insert(node("resp_base", None, 1, "base", "base"))
        .unwrap();
    t.set_ref("main", &id("resp_base")).unwrap();
    // The ref swap fails, so the whole batch, node and postings, must not be there.
    let batch = vec![
        Op::PutNode(Box::new(node(
            "resp_ghost",
            None,
            2,
            "zanzibar",
            "zanzibar",
        ))),
        Op::SetRefIf {
            name: resptree::RefName::new("main").unwrap(),
            expected: Some(id("resp_elsewhere")),
            new: id("resp_ghost"),
        },
    ];
    assert!(matches!(
        store.apply(batch.into()),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(store.node(&id("resp_ghost")).unwrap(), None);
    if let Some(found) = indexed(store.as_ref(), &["zanzibar"]) {
        assert!(found.is_empty(), "a failed batch left postings: {found:?}");
    }
    assert!(search(&t, "zanzibar").is_empty());
}

fn search_survives_reopen(b: &dyn Backend) {
    {
        let t = filled(b);
        assert_eq!(search(&t, "louvre"), ["resp_art"]);
    }
    let t = ResponseTree::with_store(b.open()).unwrap();
    assert_eq!(search(&t, "louvre"), ["resp_art"]);
    assert_eq!(
        search_with(&t, "the", &SearchOptions::new().with_ref("art")),
        ["resp_art"]
    );
    t.insert(node(
        "resp_more",
        Some("resp_art"),
        9,
        "and the Louvre again?",
        "yes",
    ))
    .unwrap();
    assert_eq!(search(&t, "louvre again"), ["resp_more"]);
}

fn hostile_queries(b: &dyn Backend) {
    let t = filled(b);
    for nothing in ["", "   ", "?!.,;-", "\"\"", "\"!!\"", "\0\u{1}"] {
        assert!(search(&t, nothing).is_empty(), "{nothing:?}");
    }
    for bad in ["\"eiffel tower", "paris \"", "\"a\" \"b"] {
        assert!(
            matches!(
                t.search(bad, &SearchOptions::new()),
                Err(Error::InvalidQuery { .. })
            ),
            "{bad:?}"
        );
    }
    let huge = "paris ".repeat(10_000);
    assert!(matches!(
        t.search(&huge, &SearchOptions::new()),
        Err(Error::InvalidQuery { .. })
    ));
    let many: String = (0..100).map(|i| format!("w{i} ")).collect();
    assert!(matches!(
        t.search(&many, &SearchOptions::new()),
        Err(Error::InvalidQuery { .. })
    ));
    // Text that looks like markup or index internals is just text. (No NUL:
    // PostgreSQL refuses it in JSON, see `text_with_nul_is_refused_not_mangled`.)
    t.insert(node(
        "resp_odd",
        None,
        8,
        "<script>alert(1)</script> a\u{7f}b \u{1}gpt",
        "x",
    ))
    .unwrap();
    assert_eq!(search(&t, "<script>"), ["resp_odd"]);
    assert!(search_with(&t, "gpt", &SearchOptions::new().with_model("\u{1}gpt")).is_empty());
    let long_word = "x".repeat(500);
    t.insert(node("resp_long", None, 9, &long_word, "y"))
        .unwrap();
    assert_eq!(search(&t, &long_word), ["resp_long"]);
    assert!(
        search(&t, &"x".repeat(499)).is_empty(),
        "a prefix of a long word is not the word"
    );
}

/// Instantiates every search test for one backend.
macro_rules! search_suite {
    ($module:ident, $backend:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use crate::support::stores::*;

            #[test]
            fn words_phrases_and_snippets() {
                super::words_phrases_and_snippets(&$backend);
            }

            #[test]
            fn filters() {
                super::filters(&$backend);
            }

            #[test]
            fn writes_keep_the_index_current() {
                super::writes_keep_the_index_current(&$backend);
            }

            #[test]
            fn a_failed_batch_leaves_no_postings() {
                super::a_failed_batch_leaves_no_postings(&$backend);
            }

            #[test]
            fn search_survives_reopen() {
                super::search_survives_reopen(&$backend);
            }

            #[test]
            fn hostile_queries() {
                super::hostile_queries(&$backend);
            }
        }
    };
}

search_suite!(memory, Memory::default());
search_suite!(sled, Sled::new(resptree::store::Durability::Flush));
search_suite!(
    sled_buffered,
    Sled::new(resptree::store::Durability::Buffered)
);
#[cfg(feature = "postgres")]
search_suite!(postgres, Postgres::new());

/// A store without `Store::search` (the trait's default) is searched by
/// reading every node, with the same results.
#[test]
fn a_store_without_an_index_is_scanned() {
    #[derive(Debug, Default)]
    struct NoIndex(MemoryStore);
    impl Store for NoIndex {
        fn load(&self) -> resptree::Result<resptree::store::Loaded> {
            self.0.load()
        }
        fn node(&self, id: &NodeId) -> resptree::Result<Option<Node>> {
            self.0.node(id)
        }
        fn apply(&self, batch: resptree::store::Batch) -> resptree::Result<()> {
            self.0.apply(batch)
        }
        fn attempts(&self) -> resptree::Result<Vec<resptree::store::Attempt>> {
            self.0.attempts()
        }
        fn refs(&self) -> resptree::Result<Vec<(resptree::RefName, NodeId)>> {
            self.0.refs()
        }
        fn flush(&self) -> resptree::Result<()> {
            Ok(())
        }
    }
    let t = ResponseTree::with_store(NoIndex::default()).unwrap();
    t.insert_all(travel(), Vec::new()).unwrap();
    assert_eq!(
        search(&t, "the"),
        ["resp_art", "resp_rome", "resp_paris", "resp_food"]
    );
    assert_eq!(
        search_with(&t, "the", &SearchOptions::new().with_limit(1)),
        ["resp_art"]
    );
    assert_eq!(search(&t, r#""eiffel tower""#), ["resp_paris"]);
}

/// A sled store written before the index existed (no index trees, no
/// `search_seq`) is indexed when it is opened; so is one that a build without
/// the index wrote to after it was indexed (`search_seq` behind `commit_seq`).
#[test]
fn sled_indexes_an_older_store_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    {
        let t = ResponseTree::open(&path).unwrap();
        t.insert_all(travel(), Vec::new()).unwrap();
    }
    // Make it look like a store from before the index.
    {
        let db = crate::support::open_raw(&path);
        db.drop_tree("search_lists").unwrap();
        db.drop_tree("search_docs").unwrap();
        let meta = db.open_tree("meta").unwrap();
        meta.remove("search_index_seq").unwrap();
        meta.remove("search_format").unwrap();
        db.flush().unwrap();
    }
    {
        let store = SledStore::open(&path).unwrap();
        assert_eq!(indexed(&store, &["louvre"]).unwrap(), ["resp_art"]);
        let t = ResponseTree::with_store(store).unwrap();
        assert_eq!(search(&t, "paris tower"), ["resp_food", "resp_paris"]);
    }
    // A writer that did not keep the index replaced a body (in its segment,
    // where schema 4 keeps it) and counted a commit.
    {
        let db = crate::support::open_raw(&path);
        let meta = db.open_tree("meta").unwrap();
        let mut art = node(
            "resp_art",
            Some("resp_paris"),
            3,
            "Sculpture?",
            "Rodin's museum.",
        );
        art.model = Some("o3".to_owned());
        let mut body = vec![1_u8];
        serde_json::to_writer(&mut body, &art).unwrap();
        crate::support::edit_segment_entry(&db, "resp_art", |entry| entry.body = body);
        let seq = u64::from_le_bytes(
            meta.get("commit_seq")
                .unwrap()
                .unwrap()
                .as_ref()
                .try_into()
                .unwrap(),
        );
        meta.insert("commit_seq", &(seq + 1).to_le_bytes()).unwrap();
        db.flush().unwrap();
    }
    let store = SledStore::open(&path).unwrap();
    assert!(indexed(&store, &["louvre"]).unwrap().is_empty());
    assert_eq!(indexed(&store, &["rodin"]).unwrap(), ["resp_art"]);
}

fn meta_u64(db: &::sled::Db, key: &str) -> Option<u64> {
    let value = db.open_tree("meta").unwrap().get(key).unwrap()?;
    Some(u64::from_le_bytes(value.as_ref().try_into().unwrap()))
}

/// The postings lists of `term` in the raw index: (key, value) per group.
fn raw_lists(db: &::sled::Db, term: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut prefix = term.as_bytes().to_vec();
    prefix.push(0);
    db.open_tree("search_lists")
        .unwrap()
        .scan_prefix(prefix)
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// A node of a bulk batch: a word it shares with every other (`common`),
/// one of its own (`word<i>`), and `even` in every other node.
fn numbered(i: usize) -> Node {
    let even = if i % 2 == 0 { " even" } else { "" };
    node(
        &format!("resp_n{i:03}"),
        None,
        i as i64,
        &format!("common word{i}{even}"),
        "ok",
    )
}

/// The index groups a batch's postings (one list per term), and replacing or
/// removing a node of a group, alone or together with new nodes, deletes
/// exactly its postings from the group's lists: the others are still found,
/// the node's old words find nothing, and a list left empty is removed.
#[test]
fn sled_replacing_and_removing_inside_a_group_deletes_exactly_their_postings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let n = 120; // more than one segment's 64 nodes
    {
        let store = SledStore::open(&path).unwrap();
        let batch: Vec<Op> = (0..n).map(|i| Op::PutNode(Box::new(numbered(i)))).collect();
        store.apply(batch.into()).unwrap();
        let all = indexed(&store, &["common"]).unwrap();
        assert_eq!(all.len(), n);
        assert_eq!(indexed(&store, &["common", "even"]).unwrap().len(), n / 2);

        // Replace node 3 (new words) and remove node 5 in one batch.
        let mut three = numbered(3);
        three.input = vec![json!({"role": "user", "content": "fresh"})];
        store
            .apply(
                vec![
                    Op::PutNode(Box::new(three)),
                    Op::RemoveNode(id("resp_n005")),
                ]
                .into(),
            )
            .unwrap();
        // Replace node 100 (second segment) and remove node 8, with new nodes.
        let mut hundred = numbered(100);
        hundred.input = vec![json!({"role": "user", "content": "common later"})];
        let batch = vec![
            Op::PutNode(Box::new(numbered(n))),
            Op::PutNode(Box::new(hundred)),
            Op::RemoveNode(id("resp_n008")),
            Op::PutNode(Box::new(numbered(n + 1))),
        ];
        store.apply(batch.into()).unwrap();

        let common = indexed(&store, &["common"]).unwrap();
        assert_eq!(common.len(), n + 2 - 3, "all but 3, 5 and 8");
        for gone in ["resp_n003", "resp_n005", "resp_n008"] {
            assert!(!common.contains(&gone.to_owned()), "{gone} still indexed");
        }
        assert!(common.contains(&"resp_n100".to_owned()));
        assert!(indexed(&store, &["word3"]).unwrap().is_empty());
        assert!(indexed(&store, &["word5"]).unwrap().is_empty());
        assert!(indexed(&store, &["word100"]).unwrap().is_empty());
        assert_eq!(indexed(&store, &["fresh"]).unwrap(), ["resp_n003"]);
        assert_eq!(indexed(&store, &["later"]).unwrap(), ["resp_n100"]);
        assert_eq!(indexed(&store, &["word7"]).unwrap(), ["resp_n007"]);
        assert_eq!(indexed(&store, &["even", "word6"]).unwrap(), ["resp_n006"]);
        // 8 and 100 left, 120 came.
        assert_eq!(
            indexed(&store, &["common", "even"]).unwrap().len(),
            n / 2 - 1
        );
        let t = ResponseTree::with_store(store).unwrap();
        assert_eq!(search(&t, "word101"), ["resp_n101"]);
        assert!(search(&t, "word5").is_empty());
    }
    let db = crate::support::open_raw(&path);
    // The postings are gone, not only hidden: lists of removed words are
    // removed, and the first group's `common` list lost exactly three nodes.
    for word in ["word3", "word5", "word8", "word100"] {
        assert!(raw_lists(&db, word).is_empty(), "{word} left a list");
    }
    let common = raw_lists(&db, "common");
    assert_eq!(common.len(), 2, "one list per batch that wrote `common`");
    // Format 2, then the count of postings (a one-byte varint here).
    assert_eq!(common[0].1[..2], [2, (n - 4) as u8]);
    // One list per term and batch: far fewer records than nodes × terms.
    assert!(db.open_tree("search_lists").unwrap().len() < n + 20);
}

/// An index of another format (format 1: a record per term and node, in
/// trees of its own, or a format this build does not know) is rebuilt when
/// the store is opened, and format 1's trees and marker are dropped.
#[test]
fn sled_rebuilds_an_index_of_another_format_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    {
        let t = ResponseTree::open(&path).unwrap();
        t.insert_all(travel(), Vec::new()).unwrap();
    }
    // What a build with format 1 left: its trees and `search_seq`, no format.
    {
        let db = crate::support::open_raw(&path);
        db.drop_tree("search_lists").unwrap();
        db.drop_tree("search_docs").unwrap();
        let meta = db.open_tree("meta").unwrap();
        let commit = meta.get("commit_seq").unwrap().unwrap();
        meta.insert("search_seq", commit.clone()).unwrap();
        meta.insert("search_index_seq", commit).unwrap();
        meta.remove("search_format").unwrap();
        let old = db.open_tree("search_postings").unwrap();
        old.insert(b"rome\0resp_art", &1_u32.to_le_bytes()).unwrap();
        db.open_tree("search_terms")
            .unwrap()
            .insert("resp_art", b"\x01rome".as_slice())
            .unwrap();
        db.flush().unwrap();
    }
    {
        let t = ResponseTree::open(&path).unwrap();
        assert_eq!(search(&t, "paris tower"), ["resp_food", "resp_paris"]);
        assert_eq!(search(&t, "louvre"), ["resp_art"]);
        assert_eq!(search(&t, "rome"), ["resp_rome"]);
    }
    {
        let db = crate::support::open_raw(&path);
        let names: Vec<String> = db
            .tree_names()
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        assert!(!names.contains(&"search_postings".to_owned()), "{names:?}");
        assert!(!names.contains(&"search_terms".to_owned()), "{names:?}");
        let meta = db.open_tree("meta").unwrap();
        assert!(meta.get("search_seq").unwrap().is_none());
        assert_eq!(
            meta.get("search_format").unwrap().unwrap().as_ref(),
            4_u32.to_le_bytes()
        );
        // A format this build does not know (say, a newer one) is rebuilt too.
        meta.insert("search_format", &99_u32.to_le_bytes()).unwrap();
        db.open_tree("search_lists").unwrap().clear().unwrap();
        db.flush().unwrap();
    }
    let t = ResponseTree::open(&path).unwrap();
    assert_eq!(search(&t, "louvre"), ["resp_art"]);
}

/// A postings list or a document chunk that does not decode never panics a
/// search or a write and never makes a wrong hit: its nodes are skipped, the
/// index is marked damaged, and the next open rebuilds it. A chunk that
/// decodes but names the wrong nodes only costs body checks.
#[test]
fn sled_corrupt_index_records_are_skipped_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    {
        let t = ResponseTree::open(&path).unwrap();
        t.insert_all(travel(), Vec::new()).unwrap();
        assert_eq!(search(&t, "tower"), ["resp_food", "resp_paris"]);
    }
    {
        let db = crate::support::open_raw(&path);
        let lists = db.open_tree("search_lists").unwrap();
        for (key, _) in raw_lists(&db, "tower") {
            lists.insert(key, &[2, 0xff, 0xff][..]).unwrap();
        }
        // Every chunk now names the same node in every slot.
        let docs = db.open_tree("search_docs").unwrap();
        for record in docs.iter() {
            let (key, value) = record.unwrap();
            // Version 3: group, layout, slot count (one byte each here).
            let count = usize::from(value[3]);
            let mut lie = vec![3, value[1], value[2], value[3]];
            for _ in 0..count {
                lie.push(9);
                lie.extend_from_slice(b"resp_rome");
                // The same time as the slot before.
                lie.push(0);
            }
            docs.insert(key, lie).unwrap();
        }
        assert!(meta_u64(&db, "search_damaged").is_none());
        db.flush().unwrap();
    }
    {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&path).unwrap());
        let t = ResponseTree::with_store(Shared(store.clone())).unwrap();
        // The damaged list: nothing found, no error, no panic.
        assert!(search(&t, "tower").is_empty());
        // Every candidate is named resp_rome now: only a real match is a hit.
        assert!(search(&t, "louvre").is_empty());
        assert_eq!(search(&t, "colosseum"), ["resp_rome"]);
        // A write whose old copy sits in damaged records still commits.
        let mut food = t.get(&id("resp_food")).unwrap();
        food.output_text = "Crêpes.".to_owned();
        food.output.clear();
        store
            .apply(vec![Op::PutNode(Box::new(food))].into())
            .unwrap();
    }
    {
        let db = crate::support::open_raw(&path);
        assert!(
            db.open_tree("meta")
                .unwrap()
                .get("search_damaged")
                .unwrap()
                .is_some(),
            "the search marked the index damaged"
        );
    }
    let t = ResponseTree::open(&path).unwrap();
    assert_eq!(search(&t, "tower"), ["resp_paris"]);
    assert_eq!(search(&t, "louvre"), ["resp_art"]);
    assert_eq!(search(&t, "crêpes"), ["resp_food"]);
}

/// A group's time bounds (format 4, key `0x03 group`) only make a search
/// read fewer chunks: without them, or with a damaged one, every answer is
/// the same, in the same order, and a damaged one marks the index for a
/// rebuild.
#[test]
fn sled_missing_or_damaged_time_bounds_change_no_answer() {
    let nodes: Vec<Node> = (0..300).map(numbered).collect();
    let queries = ["common", "even", "common even", "ok"];
    let options = SearchOptions::new().with_limit(7);
    for damage in [None, Some(&[1_u8, 0xff][..])] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree");
        let expected: Vec<Vec<String>> = {
            let t = ResponseTree::open(&path).unwrap();
            // A bucketed group, then small groups of single commits.
            t.insert_all(nodes[..200].to_vec(), Vec::new()).unwrap();
            for node in &nodes[200..] {
                t.insert(node.clone()).unwrap();
            }
            queries
                .iter()
                .map(|q| search_with(&t, q, &options))
                .collect()
        };
        assert!(expected.iter().all(|hits| hits.len() == 7), "{expected:?}");
        // Newest first: the single commits came last.
        assert_eq!(expected[0][0], "resp_n299");
        {
            let db = crate::support::open_raw(&path);
            let lists = db.open_tree("search_lists").unwrap();
            let bounds: Vec<_> = lists.scan_prefix([0x03]).map(|r| r.unwrap().0).collect();
            assert!(bounds.len() > 100, "a bounds record per group");
            for key in bounds {
                match damage {
                    None => lists.remove(key).unwrap(),
                    Some(bytes) => lists.insert(key, bytes).unwrap(),
                };
            }
            db.flush().unwrap();
        }
        {
            let store: Arc<dyn Store> = Arc::new(SledStore::open(&path).unwrap());
            let t = ResponseTree::with_store(Shared(store)).unwrap();
            for (query, hits) in queries.iter().zip(&expected) {
                let got = search_with(&t, query, &options);
                assert_eq!(&got, hits, "{query}, damage {damage:?}");
            }
        }
        let db = crate::support::open_raw(&path);
        let damaged = db
            .open_tree("meta")
            .unwrap()
            .get("search_damaged")
            .unwrap()
            .is_some();
        assert_eq!(damaged, damage.is_some(), "damage {damage:?}");
    }
}

/// The raw index records of the bucket layout (keys that start with `0x02`).
fn raw_buckets(db: &::sled::Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.open_tree("search_lists")
        .unwrap()
        .scan_prefix([2_u8])
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// Whether some bucket still names `term` in its directory (a term is stored
/// after its one-byte length).
fn bucket_names(db: &::sled::Db, term: &str) -> bool {
    let mut needle = vec![u8::try_from(term.len()).unwrap()];
    needle.extend_from_slice(term.as_bytes());
    raw_buckets(db)
        .iter()
        .any(|(_, v)| v.windows(needle.len()).any(|w| w == needle.as_slice()))
}

/// A batch with many distinct words (a bulk insert) packs its postings into a
/// few bucket records instead of a record per word, and everything a
/// per-word group does still holds: each word finds its nodes, conjunctions
/// intersect, and replacing or removing a node deletes exactly its postings
/// (a word only it had leaves no bucket naming it).
#[test]
fn sled_a_large_batch_packs_its_lists_into_buckets_and_edits_them_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let n = 600; // 600 own words + a few shared: several buckets
    {
        let store = SledStore::open(&path).unwrap();
        let batch: Vec<Op> = (0..n).map(|i| Op::PutNode(Box::new(numbered(i)))).collect();
        store.apply(batch.into()).unwrap();
        // A small commit after it keeps a record per word.
        store
            .apply(vec![Op::PutNode(Box::new(numbered(n)))].into())
            .unwrap();
        assert_eq!(indexed(&store, &["common"]).unwrap().len(), n + 1);
        assert_eq!(indexed(&store, &["word123"]).unwrap(), ["resp_n123"]);
        assert_eq!(indexed(&store, &["word600"]).unwrap(), ["resp_n600"]);
        assert_eq!(
            indexed(&store, &["even", "word124"]).unwrap(),
            ["resp_n124"]
        );
        assert!(indexed(&store, &["even", "word125"]).unwrap().is_empty());
        assert_eq!(
            indexed(&store, &["common", "even"]).unwrap().len(),
            n / 2 + 1
        );
        assert!(indexed(&store, &["nowhere"]).unwrap().is_empty());

        let mut three = numbered(3);
        three.input = vec![json!({"role": "user", "content": "fresh common"})];
        store
            .apply(
                vec![
                    Op::PutNode(Box::new(three)),
                    Op::RemoveNode(id("resp_n005")),
                    Op::PutNode(Box::new(numbered(n + 1))),
                ]
                .into(),
            )
            .unwrap();
        assert!(indexed(&store, &["word3"]).unwrap().is_empty());
        assert!(indexed(&store, &["word5"]).unwrap().is_empty());
        assert_eq!(indexed(&store, &["fresh"]).unwrap(), ["resp_n003"]);
        assert_eq!(indexed(&store, &["word4"]).unwrap(), ["resp_n004"]);
        let common = indexed(&store, &["common"]).unwrap();
        assert_eq!(common.len(), n + 1, "601 + 1 new − 1 removed");
        assert!(!common.contains(&"resp_n005".to_owned()));
        assert!(common.contains(&"resp_n003".to_owned()));
        let t = ResponseTree::with_store(store).unwrap();
        assert_eq!(search(&t, "word599"), ["resp_n599"]);
    }
    let db = crate::support::open_raw(&path);
    let buckets = raw_buckets(&db);
    assert!(
        (2..=16).contains(&buckets.len()),
        "{} buckets for ~600 words",
        buckets.len()
    );
    // Far fewer list records than words.
    assert!(db.open_tree("search_lists").unwrap().len() < 60);
    // The words of the bulk batch are in buckets, not records of their own.
    assert!(raw_lists(&db, "word7").is_empty());
    assert!(bucket_names(&db, "word7"));
    // The postings of the replaced and removed nodes are gone, not hidden.
    assert!(!bucket_names(&db, "word3"));
    assert!(!bucket_names(&db, "word5"));
    assert_eq!(
        db.open_tree("meta")
            .unwrap()
            .get("search_format")
            .unwrap()
            .unwrap()
            .as_ref(),
        4_u32.to_le_bytes()
    );
}

/// An index of format 2 (a record per term and group, even for large
/// groups) is rebuilt in format 3 when the store is opened: what it held and
/// nothing else is found.
#[test]
fn sled_rebuilds_a_format_2_index_in_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let n = 300;
    {
        let store = SledStore::open(&path).unwrap();
        let batch: Vec<Op> = (0..n).map(|i| Op::PutNode(Box::new(numbered(i)))).collect();
        store.apply(batch.into()).unwrap();
    }
    // What a format 2 build left: per-term lists only (here a stray one that
    // names a slot of group 0), documents without a layout byte.
    {
        let db = crate::support::open_raw(&path);
        let lists = db.open_tree("search_lists").unwrap();
        lists.clear().unwrap();
        let mut key = b"ghost\0".to_vec();
        key.extend_from_slice(&0_u64.to_be_bytes());
        lists.insert(key, &[2, 1, 0, 0, 1][..]).unwrap();
        let docs = db.open_tree("search_docs").unwrap();
        docs.clear().unwrap();
        docs.insert(
            0_u64.to_be_bytes(),
            &[
                1, 0, 1, 9, b'r', b'e', b's', b'p', b'_', b'n', b'0', b'0', b'0',
            ][..],
        )
        .unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("search_format", &2_u32.to_le_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    {
        let store = SledStore::open(&path).unwrap();
        assert!(indexed(&store, &["ghost"]).unwrap().is_empty());
        assert_eq!(indexed(&store, &["common"]).unwrap().len(), n);
        assert_eq!(
            indexed(&store, &["word250", "even"]).unwrap(),
            ["resp_n250"]
        );
    }
    let db = crate::support::open_raw(&path);
    assert!(!raw_buckets(&db).is_empty(), "rebuilt in buckets");
    assert!(raw_lists(&db, "ghost").is_empty());
    assert_eq!(
        db.open_tree("meta")
            .unwrap()
            .get("search_format")
            .unwrap()
            .unwrap()
            .as_ref(),
        4_u32.to_le_bytes()
    );
}

/// A bucket that does not decode never panics a search or a write and never
/// makes a wrong hit: the group's nodes are not found through it, a write
/// that would rewrite it still commits, the index is marked damaged, and the
/// next open rebuilds it.
#[test]
fn sled_a_corrupt_bucket_is_skipped_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let n = 300;
    {
        let store = SledStore::open(&path).unwrap();
        let batch: Vec<Op> = (0..n).map(|i| Op::PutNode(Box::new(numbered(i)))).collect();
        store.apply(batch.into()).unwrap();
        assert_eq!(indexed(&store, &["common"]).unwrap().len(), n);
    }
    {
        let db = crate::support::open_raw(&path);
        let lists = db.open_tree("search_lists").unwrap();
        let buckets = raw_buckets(&db);
        assert!(!buckets.is_empty());
        for (i, (key, value)) in buckets.into_iter().enumerate() {
            // Truncated, garbage, and a list length past the end.
            let bad = match i % 3 {
                0 => value[..value.len() / 2].to_vec(),
                1 => vec![3, 0xff, 0xff, 0xff],
                _ => vec![3, 1, 1, b'x', 0x7f],
            };
            lists.insert(key, bad).unwrap();
        }
        db.flush().unwrap();
    }
    {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&path).unwrap());
        assert!(indexed(store.as_ref(), &["common"]).unwrap().is_empty());
        assert!(indexed(store.as_ref(), &["word42"]).unwrap().is_empty());
        let t = ResponseTree::with_store(Shared(store.clone())).unwrap();
        assert!(search(&t, "word42").is_empty());
        // Replacing and removing nodes whose postings sit in damaged buckets.
        let mut seven = numbered(7);
        seven.input = vec![json!({"role": "user", "content": "renewed"})];
        store
            .apply(
                vec![
                    Op::PutNode(Box::new(seven)),
                    Op::RemoveNode(id("resp_n009")),
                ]
                .into(),
            )
            .unwrap();
        assert_eq!(
            indexed(store.as_ref(), &["renewed"]).unwrap(),
            ["resp_n007"]
        );
    }
    {
        let db = crate::support::open_raw(&path);
        assert!(
            db.open_tree("meta")
                .unwrap()
                .get("search_damaged")
                .unwrap()
                .is_some(),
            "the index is marked damaged"
        );
    }
    let store = SledStore::open(&path).unwrap();
    // All but 7 (replaced without the word) and 9 (removed).
    assert_eq!(indexed(&store, &["common"]).unwrap().len(), n - 2);
    assert_eq!(indexed(&store, &["word42"]).unwrap(), ["resp_n042"]);
    assert!(indexed(&store, &["word7"]).unwrap().is_empty());
    assert!(indexed(&store, &["word9"]).unwrap().is_empty());
    assert_eq!(indexed(&store, &["renewed"]).unwrap(), ["resp_n007"]);
}

/// A staged chunk with many distinct words is one bucketed group: an
/// abandoned stage deletes every bucket and document chunk of it, a
/// published one is found like any batch, and a stage left behind by a dead
/// process is deleted at the next open.
#[test]
fn sled_bucketed_staged_chunks_are_abandoned_published_and_cleaned_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let nodes: Vec<Node> = (0..600).map(numbered).collect();
    {
        let store = SledStore::open(&path).unwrap();
        let stage = store.begin_stage().unwrap().unwrap();
        store.stage_nodes(stage, &nodes[..200]).unwrap();
        store.stage_nodes(stage, &nodes[200..300]).unwrap();
        assert_eq!(indexed(&store, &["common"]).unwrap().len(), 300);
        store.abandon_stage(stage).unwrap();
        assert!(indexed(&store, &["common"]).unwrap().is_empty());
        assert!(indexed(&store, &["word150"]).unwrap().is_empty());

        let stage = store.begin_stage().unwrap().unwrap();
        store.stage_nodes(stage, &nodes[..200]).unwrap();
        store.publish_stage(stage, &[]).unwrap();
        assert_eq!(indexed(&store, &["word150"]).unwrap(), ["resp_n150"]);
        assert_eq!(indexed(&store, &["common", "even"]).unwrap().len(), 100);

        // Staged and never published: the process "dies".
        let stage = store.begin_stage().unwrap().unwrap();
        store.stage_nodes(stage, &nodes[300..]).unwrap();
        store.flush().unwrap();
    }
    {
        let db = crate::support::open_raw(&path);
        // Only the published group's records: one chunk per segment, and
        // the buckets of one group (keys end with the group number).
        let groups: std::collections::BTreeSet<Vec<u8>> = raw_buckets(&db)
            .into_iter()
            .map(|(k, _)| k[4..].to_vec())
            .collect();
        assert_eq!(groups.len(), 2, "the published group and the dead stage's");
    }
    let store = SledStore::open(&path).unwrap();
    assert_eq!(indexed(&store, &["common"]).unwrap().len(), 200);
    assert!(indexed(&store, &["word450"]).unwrap().is_empty());
    drop(store);
    let db = crate::support::open_raw(&path);
    let groups: std::collections::BTreeSet<Vec<u8>> = raw_buckets(&db)
        .into_iter()
        .map(|(k, _)| k[4..].to_vec())
        .collect();
    assert_eq!(groups.len(), 1, "the dead stage's buckets are deleted");
}

/// Rows written before the `search` column existed (`search IS NULL`) are
/// indexed when a store connects.
#[cfg(feature = "postgres")]
#[test]
fn postgres_indexes_older_rows_on_connect() {
    use crate::support::stores::Postgres;
    let pg = Postgres::new();
    {
        let t = ResponseTree::with_store(pg.open()).unwrap();
        t.insert_all(travel(), Vec::new()).unwrap();
    }
    // Make the rows look as a build before migration 3 left them.
    pg.execute(r#"UPDATE "{schema}".nodes SET search = NULL"#);
    let store = pg.connect();
    assert_eq!(indexed(&store, &["louvre"]).unwrap(), ["resp_art"]);
    let t = ResponseTree::with_store(store).unwrap();
    assert_eq!(search(&t, "paris tower"), ["resp_food", "resp_paris"]);
}

/// Random corpora (fixed seeds) against a brute-force reference: the hits,
/// their order, scores and times must be what reading every node and ranking
/// them all gives, for words from rare (0.5 % of the nodes) to common (50 %),
/// pairs, phrases, filters, ties on score and time, and limits of 1, 20 and
/// more than there are hits. The sled store gets one large batch (its lists
/// in buckets), then single commits (a list per term), then a removal (empty
/// slots).
mod ranking {
    use std::collections::{HashMap, HashSet};

    use resptree::search::SearchOptions;
    use resptree::{Node, NodeId, ResponseTree, Timestamp};

    use crate::support::stores::{Backend, Memory, Sled};

    /// The marker words and the share of nodes each is in.
    const WORDS: [(&str, u64); 6] = [
        ("wa", 500),
        ("wb", 250),
        ("wc", 100),
        ("wd", 30),
        ("we", 10),
        ("wf", 5),
    ];
    const MODELS: [&str; 3] = ["gpt-4o", "o3", "gpt-4.1"];

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// One item's words: fillers (a vocabulary large enough to make a
    /// batch's group use buckets) and the markers drawn for the node.
    fn text(rng: &mut Rng, markers: &[&str]) -> String {
        let mut words: Vec<String> = (0..4).map(|_| format!("f{}", rng.below(400))).collect();
        for marker in markers {
            let at = rng.below(words.len() as u64 + 1) as usize;
            words.insert(at, (*marker).to_owned());
        }
        words.join(" ")
    }

    fn corpus(seed: u64, n: usize) -> Vec<Node> {
        let mut rng = Rng(seed);
        let mut nodes: Vec<Node> = Vec::new();
        for i in 0..n {
            let (mut user, mut output) = (Vec::new(), Vec::new());
            for (word, per_mille) in WORDS {
                if rng.below(1000) < per_mille {
                    // One to three occurrences, in either item.
                    for _ in 0..=rng.below(3) {
                        if rng.below(2) == 0 {
                            user.push(word);
                        } else {
                            output.push(word);
                        }
                    }
                }
            }
            let parent = (i > 0 && rng.below(10) != 0)
                .then(|| nodes[rng.below(i as u64) as usize].id.clone());
            let id = NodeId::new(&format!("resp_{:016x}", rng.next())).unwrap();
            // Few distinct times: many ties after the score.
            let mut node = Node::new(id, parent)
                .with_created_at(Timestamp(rng.below(40) as i64))
                .with_user_text(text(&mut rng, &user))
                .with_output_text(text(&mut rng, &output));
            node.model = Some(MODELS[rng.below(3) as usize].to_owned());
            nodes.push(node);
        }
        nodes
    }

    /// A query: its clauses, each a run of words (a phrase if more than one).
    fn parse(query: &str) -> Vec<Vec<&str>> {
        let mut clauses = Vec::new();
        for (i, part) in query.split('"').enumerate() {
            if i % 2 == 1 {
                clauses.push(part.split_whitespace().collect());
            } else {
                clauses.extend(part.split_whitespace().map(|w| vec![w]));
            }
        }
        clauses
    }

    /// Occurrences of `clause` in the node, within one item each.
    fn count(node: &Node, clause: &[&str]) -> usize {
        let items = [user_text(node), node.output_text.clone()];
        items
            .iter()
            .map(|item| {
                let words: Vec<&str> = item.split_whitespace().collect();
                words.windows(clause.len()).filter(|w| *w == clause).count()
            })
            .sum()
    }

    fn user_text(node: &Node) -> String {
        node.input[0]["content"].as_str().unwrap().to_owned()
    }

    fn score(counts: impl Iterator<Item = usize>) -> f32 {
        counts.map(|n| (1.0 + n as f32).ln()).sum()
    }

    /// What a search must return: every node read and checked; ordered by
    /// the words' score (what the index knows), newer first, smaller id
    /// first; the best `limit`; then ordered by their score over the
    /// clauses (phrases count as phrases).
    fn reference(
        nodes: &[Node],
        under: &HashSet<NodeId>,
        query: &str,
        options: &SearchOptions,
    ) -> Vec<(String, f32, i64)> {
        let clauses = parse(query);
        let mut words: Vec<&str> = Vec::new();
        for &w in clauses.iter().flatten() {
            if !words.contains(&w) {
                words.push(w);
            }
        }
        let mut found: Vec<(f32, f32, i64, String)> = nodes
            .iter()
            .filter(|n| options.model.is_none() || n.model == options.model)
            .filter(|n| options.under.is_none() || under.contains(&n.id))
            .filter(|n| options.created_after.is_none_or(|t| n.created_at > t))
            .filter(|n| options.created_before.is_none_or(|t| n.created_at < t))
            .filter(|n| clauses.iter().all(|c| count(n, c) > 0))
            .map(|n| {
                let by_index = score(words.iter().map(|&w| count(n, &[w])));
                let by_clauses = score(clauses.iter().map(|c| count(n, c)));
                (by_index, by_clauses, n.created_at.0, n.id.to_string())
            })
            .collect();
        let best = |a: &(f32, i64, &String), b: &(f32, i64, &String)| {
            b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2))
        };
        found.sort_by(|a, b| best(&(a.0, a.2, &a.3), &(b.0, b.2, &b.3)));
        found.truncate(options.limit);
        found.sort_by(|a, b| best(&(a.1, a.2, &a.3), &(b.1, b.2, &b.3)));
        found
            .into_iter()
            .map(|(_, score, at, id)| (id, score, at))
            .collect()
    }

    fn below(nodes: &[Node], root: &NodeId) -> HashSet<NodeId> {
        let parents: HashMap<&NodeId, &NodeId> = nodes
            .iter()
            .filter_map(|n| Some((&n.id, n.parent.as_ref()?)))
            .collect();
        nodes
            .iter()
            .filter(|n| {
                let mut at = Some(&n.id);
                while let Some(id) = at {
                    if id == root {
                        return true;
                    }
                    at = parents.get(id).copied();
                }
                false
            })
            .map(|n| n.id.clone())
            .collect()
    }

    fn check(b: &dyn Backend, seed: u64) {
        check_corpus(b, seed, corpus(seed, 700));
    }

    fn check_corpus(b: &dyn Backend, seed: u64, mut nodes: Vec<Node>) {
        let t = ResponseTree::with_store(b.open()).unwrap();
        // One large batch, then single commits.
        let singles = nodes.split_off(500);
        t.insert_all(nodes.clone(), Vec::new()).unwrap();
        for node in singles {
            t.insert(node.clone()).unwrap();
            nodes.push(node);
        }
        // A removal leaves empty slots behind in the index.
        let leaf = nodes
            .iter()
            .rev()
            .find(|n| !nodes.iter().any(|c| c.parent.as_ref() == Some(&n.id)))
            .unwrap()
            .id
            .clone();
        t.remove_subtree(&leaf).unwrap();
        nodes.retain(|n| n.id != leaf);

        let root = nodes[3].id.clone();
        let under = below(&nodes, &root);
        let queries = [
            "wa",
            "wb",
            "wc",
            "wd",
            "we",
            "wf",
            "wa wb",
            "wb wa",
            "wc wa",
            "we wa",
            "wa wb wc",
            "\"wa wb\"",
            "\"wb wa\"",
            "wc \"wa wb\"",
            "wf wd",
            "nothing",
            "wa nothing",
        ];
        let filters = [
            SearchOptions::new(),
            SearchOptions::new().with_model("o3"),
            SearchOptions::new().with_under(root.clone()),
            SearchOptions::new()
                .with_created_after(Timestamp(10))
                .with_created_before(Timestamp(30)),
        ];
        let mut compared = 0;
        for query in queries {
            for filter in &filters {
                for limit in [1, 20, 10_000] {
                    let options = filter.clone().with_limit(limit);
                    let expected = reference(&nodes, &under, query, &options);
                    let got: Vec<(String, f32, i64)> = t
                        .search(query, &options)
                        .unwrap()
                        .into_iter()
                        .map(|h| (h.id.to_string(), h.score, h.created_at.0))
                        .collect();
                    assert_eq!(got, expected, "seed {seed}, {query:?}, {options:?}");
                    compared += expected.len();
                }
            }
        }
        // The corpus is not degenerate: the comparisons saw many hits.
        assert!(compared > 1_000, "only {compared} hits compared");
    }

    #[test]
    fn memory_matches_a_brute_force_reference() {
        for seed in [1, 2] {
            check(&Memory::default(), seed);
        }
    }

    #[test]
    fn sled_matches_a_brute_force_reference() {
        for seed in [1, 2] {
            check(&Sled::new(resptree::store::Durability::Buffered), seed);
        }
    }

    /// The sled index ranks by time from its chunks' time bounds: times that
    /// fall as nodes are written (the large batch holds the newest, the
    /// single commits the oldest), runs of equal times that straddle chunks
    /// and groups, and times that jump back and forth inside a chunk must
    /// all come out as the reference orders them.
    #[test]
    fn sled_ranks_ties_across_chunks_and_groups_by_time_then_id() {
        for (seed, time) in [
            (3, (|i| 1_000 - (i as i64) / 50) as fn(usize) -> i64),
            (4, |i| if i % 2 == 0 { 5 } else { 1_000 - i as i64 }),
            (5, |i| [7, 7, 3][i % 3]),
        ] {
            let mut nodes = corpus(seed, 700);
            for (i, node) in nodes.iter_mut().enumerate() {
                node.created_at = Timestamp(time(i));
            }
            check_corpus(
                &Sled::new(resptree::store::Durability::Buffered),
                seed,
                nodes,
            );
            let mut memory = corpus(seed, 700);
            for (i, node) in memory.iter_mut().enumerate() {
                node.created_at = Timestamp(time(i));
            }
            check_corpus(&Memory::default(), seed, memory);
        }
    }
}
