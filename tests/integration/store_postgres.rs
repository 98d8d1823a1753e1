//! PostgreSQL-only store tests: database constraints, compare-and-swap under
//! contention, refresh, the recursive path/subtree queries, use from async code,
//! and several processes appending to one parent at once.
//!
//! They need `RESPTREE_TEST_POSTGRES_URL`; `bash scripts/test` provides it.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use resptree::store::{Batch, Op, Store, migrate, open_location};
use resptree::{Error, NodeId, RefName, ResponseTree, TreeViolation};

use crate::store::snapshot;
use crate::support::stores::Shared;
use crate::support::stores::{Backend, Postgres, Sled, postgres_url};
use crate::tree::{fill, id, node, sample_nodes};

fn put(nodes: Vec<resptree::Node>) -> Batch {
    nodes
        .into_iter()
        .map(|n| Op::PutNode(Box::new(n)))
        .collect()
}

/// The first error in `err`'s source chain, printed; for checking what the
/// database refused.
fn chain(err: &Error) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

#[test]
fn database_enforces_parent_existence() {
    let pg = Postgres::new();
    let store = pg.connect();
    store
        .apply(put(vec![node("resp_root", None, 1, "q", "a")]))
        .unwrap();
    // A batch whose node points at a missing parent is refused as a whole.
    let batch = put(vec![
        node("resp_ok", Some("resp_root"), 2, "q", "a"),
        node("resp_orphan", Some("resp_missing"), 3, "q", "a"),
    ]);
    let err = store.apply(batch).unwrap_err();
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
    assert!(chain(&err).contains("foreign key"), "{}", chain(&err));
    assert_eq!(store.load().unwrap().nodes.len(), 1);
    assert_eq!(store.node(&id("resp_ok")).unwrap(), None);

    // Removing a parent while its child stays is refused too.
    store
        .apply(put(vec![node(
            "resp_child",
            Some("resp_root"),
            2,
            "q",
            "a",
        )]))
        .unwrap();
    let err = store
        .apply(vec![Op::RemoveNode(id("resp_root"))].into())
        .unwrap_err();
    assert!(chain(&err).contains("foreign key"), "{}", chain(&err));
    // So is a ref to a node that does not exist.
    let err = store
        .apply(vec![Op::SetRef(RefName::new("r").unwrap(), id("resp_missing"))].into())
        .unwrap_err();
    assert!(chain(&err).contains("foreign key"), "{}", chain(&err));
    assert_eq!(store.load().unwrap().nodes.len(), 2);
    assert!(store.refs().unwrap().is_empty());

    // A whole subtree removed in one batch, children after parents, is fine.
    store
        .apply(
            vec![
                Op::RemoveNode(id("resp_root")),
                Op::RemoveNode(id("resp_child")),
            ]
            .into(),
        )
        .unwrap();
    assert!(store.load().unwrap().nodes.is_empty());
}

#[test]
fn text_with_nul_is_refused_not_mangled() {
    // JSONB cannot hold U+0000 (documented in docs/store-format.md).
    let store = Postgres::new().connect();
    let err = store
        .apply(put(vec![node("resp_nul", None, 1, "q", "a\u{0}b")]))
        .unwrap_err();
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
    assert!(store.load().unwrap().nodes.is_empty());
}

#[test]
fn database_refuses_a_node_that_is_its_own_parent() {
    let store = Postgres::new().connect();
    let err = store
        .apply(put(vec![node("resp_loop", Some("resp_loop"), 1, "q", "a")]))
        .unwrap_err();
    assert!(
        chain(&err).contains("nodes_not_own_parent"),
        "{}",
        chain(&err)
    );
    assert!(store.load().unwrap().nodes.is_empty());
}

#[test]
fn the_tree_still_refuses_what_the_database_would() {
    let pg = Postgres::new();
    let t = ResponseTree::with_store(pg.open()).unwrap();
    fill(&t);
    let err = t
        .insert(node("resp_x", Some("resp_nowhere"), 9, "q", "a"))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidTree(TreeViolation::DanglingParent { .. })
    ));
    assert_eq!(pg.connect().load().unwrap().nodes.len(), 7);
}

#[test]
fn compare_and_swap_has_one_winner_under_contention() {
    let pg = Postgres::new();
    let store = pg.connect();
    let writers = 6;
    let mut nodes = vec![node("resp_root", None, 0, "q", "a")];
    for w in 0..writers {
        nodes.push(node(&format!("resp_w{w}"), Some("resp_root"), 1, "q", "a"));
    }
    let main = RefName::new("main").unwrap();
    let mut batch = put(nodes);
    batch.push(Op::SetRef(main.clone(), id("resp_root")));
    store.apply(batch).unwrap();

    // Every writer, on its own connection, tries to move `main` away from the
    // root at the same moment: exactly one may win.
    let barrier = Arc::new(Barrier::new(writers));
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let store = pg.connect();
            let barrier = Arc::clone(&barrier);
            let main = main.clone();
            std::thread::spawn(move || {
                barrier.wait();
                store.apply(
                    vec![Op::SetRefIf {
                        name: main,
                        expected: Some(id("resp_root")),
                        new: id(&format!("resp_w{w}")),
                    }]
                    .into(),
                )
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners: Vec<usize> = (0..writers).filter(|&w| results[w].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = id(&format!("resp_w{}", winners[0]));
    for r in results.iter().filter(|r| r.is_err()) {
        match r {
            Err(Error::Conflict { actual, .. }) => assert_eq!(actual.as_ref(), Some(&winner)),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(store.refs().unwrap(), vec![(main, winner)]);
}

#[test]
fn refresh_sees_what_other_processes_wrote() {
    let pg = Postgres::new();
    let ours = ResponseTree::with_store(pg.open()).unwrap();
    let theirs = ResponseTree::with_store(pg.open()).unwrap();
    fill(&theirs);
    theirs
        .set_ref(RefName::new("main").unwrap(), &id("resp_b1"))
        .unwrap();
    assert!(ours.is_empty());

    let news = ours.refresh().unwrap();
    assert!(news.problems.is_empty(), "{:?}", news.problems);
    assert_eq!(news.added.len(), 7);
    assert_eq!(snapshot(&ours), snapshot(&theirs));
    assert_eq!(*ours.graph(), *theirs.graph());

    // Nothing new: nothing to do.
    let news = ours.refresh().unwrap();
    assert!(news.added.is_empty() && news.removed.is_empty());

    // Removals and new nodes both come through; our own writes are not doubled.
    theirs.remove_subtree(&id("resp_a")).unwrap();
    theirs
        .insert(node("resp_c", Some("resp_b1"), 8, "q", "a"))
        .unwrap();
    ours.insert(node("resp_d", Some("resp_other"), 9, "q", "a"))
        .unwrap();
    let news = ours.refresh().unwrap();
    assert_eq!(news.added, vec![id("resp_c")]);
    let removed: BTreeSet<NodeId> = news.removed.into_iter().collect();
    assert_eq!(
        removed,
        ["resp_a", "resp_a1", "resp_a2"]
            .into_iter()
            .map(id)
            .collect()
    );
    theirs.refresh().unwrap();
    assert_eq!(snapshot(&ours), snapshot(&theirs));
    assert_eq!(ours.len(), 6);
}

/// Waits for `watch`'s listener to connect (the first wake-up says so).
async fn until_listening(watch: &mut resptree::tree::Watch<'_>) {
    while !watch.is_notified() {
        watch.changed().await;
    }
}

/// Long enough never to fire in a test: only a notification can wake a watch
/// whose listener is connected.
const NEVER: Duration = Duration::from_secs(3600);

/// A guard against a hang, not a speed target: a notification takes
/// milliseconds, and without one the test fails instead of waiting an hour.
const GIVE_UP: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_sees_what_another_tree_commits_without_a_refresh_call() {
    let pg = Postgres::new();
    let ours = ResponseTree::with_store(pg.open()).unwrap();
    let theirs = ResponseTree::with_store(pg.open()).unwrap();
    let mut watch = ours.watch().unwrap().with_fallback(NEVER);
    tokio::time::timeout(GIVE_UP, until_listening(&mut watch))
        .await
        .expect("the listener connects");

    theirs.insert(node("resp_n1", None, 1, "q", "a")).unwrap();
    let news = tokio::time::timeout(GIVE_UP, watch.next())
        .await
        .expect("woken by the commit's notification")
        .unwrap();
    assert_eq!(news.added, vec![id("resp_n1")]);
    assert!(ours.contains(&id("resp_n1")));

    // A ref moved by the other tree wakes it too, and arrives with the refresh.
    theirs.set_ref("main", &id("resp_n1")).unwrap();
    let news = tokio::time::timeout(GIVE_UP, watch.next())
        .await
        .expect("woken by the ref's notification")
        .unwrap();
    assert!(news.added.is_empty());
    assert_eq!(ours.get_ref("main").unwrap(), id("resp_n1"));
}

#[test]
fn watching_needs_a_change_feed() {
    let t = ResponseTree::in_memory();
    assert!(matches!(t.watch(), Err(Error::Unsupported(_))));
}

/// The explorer over PostgreSQL: a commit by another tree (a node, then an
/// annotation, which moves no node or ref) reaches the page's
/// change long poll, and the node is then served.
#[cfg(feature = "web")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_sees_another_trees_commit_through_its_change_poll() {
    let pg = Postgres::new();
    let ours = Arc::new(ResponseTree::with_store(pg.open()).unwrap());
    let theirs = ResponseTree::with_store(pg.open()).unwrap();
    let server = resptree::web::WebServer::read_only(Arc::clone(&ours))
        .poll_interval(NEVER)
        .spawn()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{}{}", server.url().trim_end_matches('/'), path);
        async move {
            let resp = http.get(url).send().await.unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    // The version the change long poll answers once it differs from `since`.
    let version_after = |since: Option<u64>, what: &'static str| {
        let path = since.map_or("/api/changes".to_owned(), |v| {
            format!("/api/changes?since={v}")
        });
        let answer = tokio::time::timeout(GIVE_UP, get(path));
        async move {
            let (status, body) = answer.await.expect(what);
            assert_eq!(status, reqwest::StatusCode::OK, "{body}");
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["version"]
                .as_u64()
                .unwrap()
        }
    };
    let before = version_after(None, "the change poll answers").await;

    theirs.insert(node("resp_w1", None, 1, "q", "a")).unwrap();
    // The long poll answers once the explorer's tree has the node.
    let after = version_after(Some(before), "the change poll answers the node").await;
    assert!(after > before, "{after} > {before}");
    let (status, body) = get("/api/nodes/resp_w1".to_owned()).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert!(ours.contains(&id("resp_w1")));

    // An annotation moves no node or ref, yet the page must learn of it.
    theirs
        .annotate(&id("resp_w1"), resptree::annotation::Annotation::Bookmark)
        .unwrap();
    let again = version_after(Some(after), "the change poll answers the annotation").await;
    assert!(again > after, "{again} > {after}");
    server.shutdown().await;
}

#[test]
fn refresh_needs_a_change_feed() {
    let t = ResponseTree::in_memory();
    assert!(matches!(t.refresh(), Err(Error::Unsupported(_))));
    let sled = Sled::new(resptree::store::Durability::Flush);
    let t = ResponseTree::with_store(sled.open()).unwrap();
    assert!(matches!(t.refresh(), Err(Error::Unsupported(_))));
}

#[test]
fn path_and_subtree_queries() {
    let pg = Postgres::new();
    let store = pg.connect();
    store.apply(put(sample_nodes())).unwrap();

    let path = store.path_to_root(&id("resp_b1")).unwrap();
    let ids: Vec<&str> = path.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["resp_root", "resp_b", "resp_b1"]);
    assert_eq!(path[2].extra_context, vec![id("resp_a2")]);
    assert_eq!(path[0].parent, None);
    assert_eq!(path[1].parent, Some(id("resp_root")));

    let sub = store.subtree(&id("resp_a")).unwrap();
    let ids: Vec<&str> = sub.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["resp_a", "resp_a1", "resp_a2"]);
    let whole = store.subtree(&id("resp_root")).unwrap();
    assert_eq!(whole.len(), 6);
    assert_eq!(whole[0].id, id("resp_root"));

    // The path down to a node plus the subtree below it make a graph of one
    // branch, without the rest of the forest.
    let mut branch = store.path_to_root(&id("resp_a")).unwrap();
    branch.extend(sub.into_iter().skip(1));
    let (graph, problems) =
        resptree::tree::Graph::build(&branch, resptree::tree::MissingContext::Drop);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(graph.len(), 4);
    assert_eq!(graph.roots(), vec![id("resp_root")]);
    assert_eq!(graph.children(&id("resp_a")).unwrap().len(), 2);
    assert!(!graph.contains(&id("resp_b")));

    // A loop of parent links (only possible by replacing nodes through raw
    // store ops) is reported, not walked forever.
    let looped = put(vec![
        node("resp_x", Some("resp_y"), 10, "q", "a"),
        node("resp_y", Some("resp_x"), 11, "q", "a"),
    ]);
    store.apply(looped).unwrap();
    for result in [
        store.path_to_root(&id("resp_x")),
        store.subtree(&id("resp_x")),
    ] {
        assert!(
            matches!(result, Err(Error::InvalidTree(TreeViolation::Cycle { .. }))),
            "{result:?}"
        );
    }

    for result in [
        store.path_to_root(&id("resp_nope")),
        store.subtree(&id("resp_nope")),
    ] {
        assert!(matches!(result, Err(Error::NodeNotFound(n)) if n == id("resp_nope")));
    }
}

/// The store blocks its caller for a round trip, but never panics inside a
/// runtime: it runs its driver on a thread of its own.
#[tokio::test(flavor = "current_thread")]
async fn usable_from_async_code_on_a_current_thread_runtime() {
    let pg = Postgres::new();
    let t = ResponseTree::with_store(pg.open()).unwrap();
    fill(&t);
    assert_eq!(t.get(&id("resp_b1")).unwrap().id, id("resp_b1"));
    t.set_ref(RefName::new("x").unwrap(), &id("resp_a"))
        .unwrap();
    drop(t);
    assert_eq!(pg.connect().load().unwrap().nodes.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usable_from_async_code_on_a_multi_thread_runtime() {
    let pg = Postgres::new();
    let t = Arc::new(ResponseTree::with_store(pg.open()).unwrap());
    t.insert(node("resp_r", None, 0, "q", "a")).unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|w| {
            let t = Arc::clone(&t);
            tokio::spawn(async move {
                for i in 0..10 {
                    t.insert(node(&format!("resp_{w}_{i}"), Some("resp_r"), i, "q", "a"))
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(t.children(&id("resp_r")).unwrap().len(), 40);
}

#[test]
fn migrate_between_sled_and_postgres() {
    let sled = Sled::new(resptree::store::Durability::Flush);
    let expected = {
        let t = ResponseTree::with_store(sled.open()).unwrap();
        fill(&t);
        t.set_ref(RefName::new("main").unwrap(), &id("resp_b1"))
            .unwrap();
        snapshot(&t)
    };
    let pg = Postgres::new();
    {
        let from = sled.open();
        let to = pg.open();
        let report = migrate(&*from, &*to).unwrap();
        assert_eq!((report.nodes, report.refs), (7, 1));
    }
    let t = ResponseTree::with_store(pg.open()).unwrap();
    assert_eq!(snapshot(&t), expected);
    let back = Sled::new(resptree::store::Durability::Flush);
    migrate(&*pg.open(), &*back.open()).unwrap();
    let t = ResponseTree::with_store(back.open()).unwrap();
    assert_eq!(snapshot(&t), expected);
}

#[test]
fn open_location_connects_to_a_url() {
    // The default schema (`public`) is shared by every test that uses a bare
    // URL, so this test only reads and checks the schema version.
    let store = open_location(postgres_url()).unwrap();
    store.load().unwrap();
    let pg = resptree::store::PostgresStore::connect(&postgres_url()).unwrap();
    assert_eq!(pg.schema_version().unwrap(), 3);
}

#[test]
fn a_newer_schema_is_refused() {
    let pg = Postgres::new();
    let store = pg.connect();
    store.load().unwrap();
    drop(store);
    bump_schema_version(&pg);
    match resptree::store::PostgresStore::connect_with(
        &postgres_url(),
        resptree::store::PostgresOptions::default().with_schema(pg.schema()),
    ) {
        Err(Error::CorruptRecord { key, reason }) => {
            assert_eq!(key, "schema_migrations");
            assert!(reason.contains("99"), "{reason}");
        }
        other => panic!("expected CorruptRecord, got {other:?}"),
    }
}

/// Records a (future) schema version 99 behind the store's back, with psql-free
/// plain SQL over tokio-postgres.
fn bump_schema_version(pg: &Postgres) {
    pg.execute(r#"INSERT INTO "{schema}".schema_migrations (version, name) VALUES (99, 'future')"#);
}

/// The environment of a child process of `several_processes_append_to_one_parent`.
const CHILD_SCHEMA: &str = "RESPTREE_TEST_CHILD_SCHEMA";
const CHILD_INDEX: &str = "RESPTREE_TEST_CHILD_INDEX";
const PROCESSES: usize = 4;
const CHILDREN_EACH: usize = 250;

#[test]
fn several_processes_append_to_one_parent() {
    let pg = Postgres::new();
    {
        let t = ResponseTree::with_store(pg.open()).unwrap();
        t.insert(node("resp_parent", None, 0, "q", "a")).unwrap();
    }
    // Each child is this test binary again, running only `child_appender`.
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            std::process::Command::new(&exe)
                .args([
                    "store_postgres::child_appender",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_SCHEMA, pg.schema())
                .env(CHILD_INDEX, i.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "child failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // libtest prints "running 0 tests" if the filter matched nothing.
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    let t = ResponseTree::with_store(pg.open()).unwrap();
    assert!(t.load_problems().is_empty(), "{:?}", t.load_problems());
    let loaded = pg.connect().load().unwrap();
    assert_eq!(loaded.nodes.len(), 1 + PROCESSES * CHILDREN_EACH);
    let distinct: BTreeSet<&NodeId> = loaded.nodes.iter().map(|n| &n.id).collect();
    assert_eq!(distinct.len(), loaded.nodes.len(), "a node is stored twice");
    let children: BTreeSet<NodeId> = t
        .children(&id("resp_parent"))
        .unwrap()
        .into_iter()
        .collect();
    let expected: BTreeSet<NodeId> = (0..PROCESSES)
        .flat_map(|p| (0..CHILDREN_EACH).map(move |i| id(&format!("resp_p{p}_{i}"))))
        .collect();
    assert_eq!(children, expected);
    // Invariants: one root, every other node a child of it, bodies intact.
    assert_eq!(t.roots(), vec![id("resp_parent")]);
    for child in &expected {
        assert_eq!(t.parent(child).unwrap(), Some(id("resp_parent")));
    }
    let sample = t.get(&id("resp_p3_249")).unwrap();
    assert_eq!(sample.output_text, "answer 249 from 3");
    // Every child's last CAS move of the `tip` ref landed exactly once.
    let tip = t.get_ref("tip").unwrap();
    assert!(expected.contains(&tip), "{tip}");
}

/// Not a test by itself: the body of one child process of
/// `several_processes_append_to_one_parent`.
#[test]
#[ignore = "run as a child process by several_processes_append_to_one_parent"]
fn child_appender() {
    let schema = std::env::var(CHILD_SCHEMA).expect("run by the multi-process test");
    let index: usize = std::env::var(CHILD_INDEX).unwrap().parse().unwrap();
    let store = resptree::store::PostgresStore::connect_with(
        &postgres_url(),
        resptree::store::PostgresOptions::default().with_schema(schema),
    )
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let t = ResponseTree::with_store(Shared(Arc::clone(&store))).unwrap();
    assert!(t.contains(&id("resp_parent")));
    let tip = RefName::new("tip").unwrap();
    for i in 0..CHILDREN_EACH {
        let name = format!("resp_p{index}_{i}");
        t.insert(
            node(&name, Some("resp_parent"), i as i64 + 1, "q", "a")
                .with_output_text(format!("answer {i} from {index}")),
        )
        .unwrap();
        // Move the shared `tip` ref to our newest node with compare-and-swap,
        // retrying on conflicts with the other processes.
        loop {
            let current = store
                .refs()
                .unwrap()
                .into_iter()
                .find(|(n, _)| *n == tip)
                .map(|(_, target)| target);
            let swap = Op::SetRefIf {
                name: tip.clone(),
                expected: current,
                new: id(&name),
            };
            match store.apply(vec![swap].into()) {
                Ok(()) => break,
                Err(e) if e.is_conflict() => continue,
                Err(e) => panic!("{e:?}"),
            }
        }
    }
    // This process sees at least its own nodes after a refresh.
    t.refresh().unwrap();
    assert!(t.children(&id("resp_parent")).unwrap().len() >= CHILDREN_EACH);
}

/// Recovery on a store many processes share: another process's attempt is left
/// alone while its lease runs and adopted once it has expired; the journal on
/// PostgreSQL keeps the owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_leaves_a_live_process_alone_on_a_shared_store() {
    use resptree::backend::ResponsesBackend;
    use resptree::client::{Client, CreateResponse, Input};
    use resptree::emulator::Emulator;
    use resptree::store::{Attempt, AttemptOwner, AttemptParams};
    use resptree::{Engine, Timestamp};

    let emu = Emulator::spawn().await.unwrap();
    let client = Client::builder()
        .base_url(emu.base_url())
        .api_key("sk-test-pg")
        .build()
        .unwrap();
    let pg = Postgres::new();
    let tree = ResponseTree::with_store(pg.connect()).unwrap();
    let engine = Engine::builder(tree, ResponsesBackend::new(client.clone()))
        .build()
        .unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    let mut journaled = Vec::new();
    for (text, lease_ms) in [("live", 3_600_000), ("expired", -1)] {
        let response = client
            .create(
                &CreateResponse::new("gpt-4o-mini", Input::text(text))
                    .previous_response_id(root.id.as_str()),
            )
            .await
            .unwrap();
        let mut attempt = Attempt::new(Some(root.id.clone()), Vec::new(), AttemptParams::default());
        attempt.response_id = Some(resptree::ResponseId::new(&response.id).unwrap());
        let mut owner =
            AttemptOwner::this_process(Timestamp(Timestamp::now().as_millis() + lease_ms));
        owner.host = "another-host".to_owned();
        attempt.owner = Some(owner);
        journaled.push((attempt, response.id));
    }
    // Written by "the other process", through its own connection.
    let other = ResponseTree::with_store(pg.connect()).unwrap();
    other
        .journal(&[journaled[0].0.clone(), journaled[1].0.clone()])
        .unwrap();

    let report = engine.recover().await.unwrap();
    assert_eq!(report.live, vec![journaled[0].0.id]);
    assert_eq!(
        report.recovered,
        vec![NodeId::new(journaled[1].1.as_str()).unwrap()]
    );
    let left = engine.tree().attempts().unwrap();
    assert_eq!(
        left,
        vec![journaled[0].0.clone()],
        "the owner survives the round trip"
    );
}
