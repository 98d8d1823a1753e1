//! Nothing paid for is lost, exactly once: every request journals its response
//! id before the answer completes, an interrupted create is looked up rather
//! than re-sent, and `recover()` adopts what the server made while leaving
//! live attempts (this process's, or another process's on a shared store)
//! alone.

use std::future::Future;
use std::time::Duration;

use resptree::backend::ResponsesBackend;
use resptree::client::{Client, CreateResponse, Input};
use resptree::emulator::{Emulator, Fault};
use resptree::engine::EngineBuilder;
use resptree::node::message_item;
use resptree::store::{
    Attempt, AttemptOwner, AttemptParams, Batch, Changes, Loaded, MemoryStore, Store,
};
use resptree::{Engine, Error, Node, NodeId, RefName, ResponseId, ResponseTree, Timestamp};

fn client(emu: &Emulator) -> Client {
    Client::builder()
        .base_url(emu.base_url())
        .api_key("sk-test-recovery")
        .max_retries(2)
        .retry_base_delay(Duration::from_millis(1))
        .build()
        .unwrap()
}

fn builder(emu: &Emulator, tree: ResponseTree) -> EngineBuilder {
    Engine::builder(tree, ResponsesBackend::new(client(emu)))
        .model("gpt-4o-mini")
        .settle_wait(Duration::from_secs(10))
}

/// Polls `future` until `ready` holds, yielding between checks: no timer, so
/// the wait is as long as the work takes (bounded by a generous guard).
async fn poll_until<F: Future + Unpin>(future: &mut F, mut ready: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while !ready() {
            tokio::select! {
                biased;
                _ = &mut *future => panic!("the call finished before the condition held"),
                () = tokio::task::yield_now() => {}
            }
        }
    })
    .await
    .expect("the condition never held");
}

/// A response made directly on the server (as a crashed run would have made
/// it), and a journaled attempt naming it.
async fn orphan(emu: &Emulator, parent: &Node, text: &str) -> (ResponseId, Attempt) {
    let response = client(emu)
        .create(
            &CreateResponse::new("gpt-4o-mini", Input::text(text))
                .previous_response_id(parent.id.as_str()),
        )
        .await
        .unwrap();
    let mut attempt = Attempt::new(
        Some(parent.id.clone()),
        vec![message_item("user", text)],
        AttemptParams::default(),
    );
    let id = ResponseId::new(&response.id).unwrap();
    attempt.response_id = Some(id.clone());
    (id, attempt)
}

fn other_process(lease_until: Timestamp) -> AttemptOwner {
    let mut owner = AttemptOwner::this_process(lease_until);
    owner.host = "another-host".to_owned();
    owner.pid = owner.pid.wrapping_add(1);
    owner
}

fn in_an_hour() -> Timestamp {
    Timestamp(Timestamp::now().as_millis() + 3_600_000)
}

/// A plain (non-streamed) `respond` learns its response id from the stream
/// the engine opens under the hood, and journals it (with this process as the
/// owner) while the server is still working; the node then gets that id.
#[tokio::test]
async fn respond_journals_its_response_id_before_the_answer_completes() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory()).build().unwrap();
    emu.inject(Fault::Hold { count: 1 });
    let call = engine.clone();
    let mut respond = Box::pin(async move { call.respond(None, "slow").await });
    let tree = engine.tree();
    poll_until(&mut respond, || {
        tree.attempts()
            .unwrap()
            .first()
            .is_some_and(|a| a.response_id.is_some())
    })
    .await;
    let attempt = tree.attempts().unwrap().remove(0);
    let owner = attempt.owner.clone().expect("attempts carry their owner");
    assert!(owner.is_this_process());
    assert!(owner.is_live_at(Timestamp::now()));
    // While the request is in flight, recover() leaves it alone.
    let report = engine.recover().await.unwrap();
    assert_eq!(report.live, vec![attempt.id]);
    assert!(report.recovered.is_empty() && report.unresolved.is_empty());

    emu.release(1);
    let node = respond.await.unwrap();
    assert_eq!(
        Some(node.id.as_str()),
        attempt.response_id.as_ref().map(ResponseId::as_str)
    );
    assert!(tree.attempts().unwrap().is_empty());
    assert_eq!(emu.response_count(), 1);
}

/// A create that may have reached the server with no id seen (the connection
/// died before any reply byte) is not re-sent: the caller gets the typed
/// `OutcomeUnknown`, the attempt stays for recover(), which reports it.
#[tokio::test]
async fn a_create_cut_before_its_id_is_not_resent_but_left_for_recover() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory()).build().unwrap();
    emu.inject(Fault::DropBeforeHeaders { count: 1 });
    let err = engine.respond(None, "cut").await.unwrap_err();
    let Error::OutcomeUnknown { attempt, source } = &err else {
        panic!("expected OutcomeUnknown, got {err:?}");
    };
    assert!(source.may_have_reached_server(), "{source:?}");
    assert_eq!(emu.requests().len(), 1, "the create was sent again");
    let left = engine.tree().attempts().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, *attempt);
    assert_eq!(left[0].response_id, None);

    let report = engine.recover().await.unwrap();
    assert_eq!(report.unresolved.len(), 1);
    assert!(report.recovered.is_empty());
    assert!(engine.tree().attempts().unwrap().is_empty());
    assert_eq!(engine.tree().len(), 0);
}

/// A failure that shows nothing was made (an error status, after the
/// client's retries) settles the attempt at once, as before.
#[tokio::test]
async fn an_error_status_settles_the_attempt() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory()).build().unwrap();
    emu.inject(Fault::Status {
        status: 500,
        count: 3,
    });
    let err = engine.respond(None, "refused").await.unwrap_err();
    assert_eq!(err.status(), Some(500), "{err:?}");
    assert!(!err.may_have_reached_server());
    assert!(engine.tree().attempts().unwrap().is_empty());
}

/// recover() adopts a journaled response exactly once: the node is recorded,
/// and a second recover (or an attempt whose node already exists) only
/// settles.
#[tokio::test]
async fn recover_adopts_exactly_once() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory()).build().unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    let (id, attempt) = orphan(&emu, &root, "lost child").await;
    // Journaled twice (say, by two runs that both crashed after `response.created`).
    let mut again = attempt.clone();
    again.id = Attempt::new(None, Vec::new(), AttemptParams::default()).id;
    engine.tree().journal(&[attempt, again]).unwrap();

    let report = engine.recover().await.unwrap();
    assert_eq!(report.recovered, vec![NodeId::from(&id)]);
    assert_eq!(report.already_recorded, 1);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(engine.tree().len(), 2);
    let node = engine.tree().get(&NodeId::from(&id)).unwrap();
    assert_eq!(node.parent.as_ref(), Some(&root.id));
    assert!(engine.tree().attempts().unwrap().is_empty());
    let report = engine.recover().await.unwrap();
    assert!(report.recovered.is_empty() && report.already_recorded == 0);
}

/// A journaled id the server does not know (deleted, or never stored) is
/// reported with the server's 404 and leaves the journal.
#[tokio::test]
async fn recover_reports_an_unknown_response() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory()).build().unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    let (id, attempt) = orphan(&emu, &root, "deleted child").await;
    assert!(emu.delete_response(id.as_str()));
    engine.tree().journal(&[attempt]).unwrap();
    let report = engine.recover().await.unwrap();
    assert_eq!(report.unresolved.len(), 1);
    assert!(report.unresolved[0].1.is_not_found(), "{report:?}");
    assert!(engine.tree().attempts().unwrap().is_empty());
}

/// The server unreachable: recover() keeps the attempt for later instead of
/// dropping it.
#[tokio::test]
async fn recover_keeps_attempts_while_the_server_is_unreachable() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory()).build().unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    let (id, attempt) = orphan(&emu, &root, "child").await;
    engine.tree().journal(&[attempt]).unwrap();
    emu.inject(Fault::Status {
        status: 503,
        count: 3,
    });
    let report = engine.recover().await.unwrap();
    assert_eq!(report.deferred.len(), 1, "{report:?}");
    assert!(!report.is_clean());
    assert_eq!(engine.tree().attempts().unwrap().len(), 1);
    // Once the server answers again, the next recover adopts it.
    let report = engine.recover().await.unwrap();
    assert_eq!(report.recovered, vec![NodeId::from(&id)]);
    assert!(engine.tree().attempts().unwrap().is_empty());
}

/// An in-memory store that says it is shared between processes, as PostgreSQL
/// is: what recovery's lease rule depends on.
#[derive(Debug, Default)]
struct SharedMemory(MemoryStore);

impl Store for SharedMemory {
    fn load(&self) -> resptree::Result<Loaded> {
        self.0.load()
    }
    fn node(&self, id: &NodeId) -> resptree::Result<Option<Node>> {
        self.0.node(id)
    }
    fn apply(&self, batch: Batch) -> resptree::Result<()> {
        self.0.apply(batch)
    }
    fn attempts(&self) -> resptree::Result<Vec<Attempt>> {
        self.0.attempts()
    }
    fn refs(&self) -> resptree::Result<Vec<(RefName, NodeId)>> {
        self.0.refs()
    }
    fn flush(&self) -> resptree::Result<()> {
        self.0.flush()
    }
    fn changes_since(&self, cursor: u64) -> resptree::Result<Changes> {
        self.0.changes_since(cursor)
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
    fn is_blocking(&self) -> bool {
        false
    }
    fn is_shared(&self) -> bool {
        true
    }
    fn search(
        &self,
        query: &resptree::search::IndexQuery,
    ) -> resptree::Result<Option<Vec<resptree::search::Candidate>>> {
        self.0.search(query)
    }
}

/// On a shared store, another process's attempt is left alone while its lease
/// runs, and adopted once it has expired; attempts with no owner (journals
/// from older builds) are stale.
#[tokio::test]
async fn on_a_shared_store_recover_leaves_live_processes_alone() {
    let emu = Emulator::spawn().await.unwrap();
    let tree = ResponseTree::with_store(SharedMemory::default()).unwrap();
    let engine = builder(&emu, tree).build().unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    let (live_id, mut live) = orphan(&emu, &root, "live elsewhere").await;
    live.owner = Some(other_process(in_an_hour()));
    let (expired_id, mut expired) = orphan(&emu, &root, "expired elsewhere").await;
    expired.owner = Some(other_process(Timestamp(Timestamp::now().as_millis() - 1)));
    let (old_id, old) = orphan(&emu, &root, "no owner").await;
    assert!(old.owner.is_none());
    engine
        .tree()
        .journal(&[live.clone(), expired, old])
        .unwrap();

    let report = engine.recover().await.unwrap();
    assert_eq!(report.live, vec![live.id]);
    let mut recovered = report.recovered.clone();
    recovered.sort();
    let mut expected = vec![NodeId::from(&expired_id), NodeId::from(&old_id)];
    expected.sort();
    assert_eq!(recovered, expected);
    assert!(!engine.tree().contains(&NodeId::from(&live_id)));
    assert_eq!(engine.tree().attempts().unwrap(), vec![live]);
}

/// On a single-process store (sled, memory) an attempt that no request of this
/// process is working on is stale, whatever owner it names: the store cannot be
/// open elsewhere.
#[tokio::test]
async fn on_a_single_process_store_every_foreign_attempt_is_stale() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory()).build().unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    let (id, mut attempt) = orphan(&emu, &root, "left by a dead process").await;
    attempt.owner = Some(other_process(in_an_hour()));
    engine.tree().journal(&[attempt]).unwrap();
    let report = engine.recover().await.unwrap();
    assert!(report.live.is_empty());
    assert_eq!(report.recovered, vec![NodeId::from(&id)]);
}

/// A sled store reopened after a run left an attempt: the attempt (written
/// with an owner) survives the reopen and is adopted.
#[tokio::test]
async fn an_attempt_with_an_owner_survives_a_sled_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let emu = Emulator::spawn().await.unwrap();
    let (root, id) = {
        let engine = builder(&emu, ResponseTree::open(&path).unwrap())
            .build()
            .unwrap();
        let root = engine.respond(None, "root").await.unwrap();
        let (id, mut attempt) = orphan(&emu, &root, "child").await;
        attempt.owner = Some(AttemptOwner::this_process(in_an_hour()));
        engine.tree().journal(&[attempt]).unwrap();
        (root, id)
    };
    let engine = builder(&emu, ResponseTree::open(&path).unwrap())
        .build()
        .unwrap();
    let left = engine.tree().attempts().unwrap();
    assert_eq!(left.len(), 1);
    assert!(
        left[0]
            .owner
            .as_ref()
            .is_some_and(AttemptOwner::is_this_process)
    );
    let report = engine.recover().await.unwrap();
    assert_eq!(report.recovered, vec![NodeId::from(&id)]);
    let node = engine.tree().get(&NodeId::from(&id)).unwrap();
    assert_eq!(node.parent, Some(root.id));
}

/// The ids of every node in the tree, sorted.
fn node_ids(tree: &ResponseTree) -> Vec<String> {
    let mut ids: Vec<String> = tree.all_ids().iter().map(|id| id.to_string()).collect();
    ids.sort();
    ids
}

/// N creates that the server made and stored, and whose connection then died
/// ("created and stored, then the connection died", `Fault::DropAfterCreate`),
/// across `branch`, `fan_out` and `respond_stream`: not one is sent twice, so the
/// server holds no duplicate, and every branch is recorded exactly once, as a
/// success (the engine had journaled the id from `response.created` and looked
/// the response up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_then_cut_creates_are_recorded_once_and_never_duplicated() {
    use futures_util::StreamExt;
    use resptree::engine::{RespondOptions, StreamUpdate};

    const N: usize = 12;
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory()).build().unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    emu.inject(Fault::DropAfterCreate { count: N });

    let texts: Vec<String> = (0..N / 3).map(|i| format!("branch {i}")).collect();
    let branched = engine.branch(&root.id, &texts).await.unwrap();
    let fanned = engine
        .fan_out(Some(&root.id), "fan out", N / 3)
        .await
        .unwrap();
    let mut streamed = Vec::new();
    for i in 0..N / 3 {
        let mut stream = engine.respond_stream(
            Some(&root.id),
            &format!("stream {i}"),
            &RespondOptions::default(),
        );
        let mut node = None;
        while let Some(update) = stream.next().await {
            if let StreamUpdate::Committed(n) = update.unwrap() {
                node = Some(*n);
            }
        }
        streamed.push(node.expect("the stream ended without its node"));
    }
    let nodes: Vec<Node> = branched
        .into_iter()
        .chain(fanned)
        .map(|r| r.expect("a cut-off branch the server finished is a success"))
        .chain(streamed)
        .collect();
    assert_eq!(nodes.len(), N);
    // Every fault was met.
    let faulted = emu.requests().iter().filter(|r| r.fault.is_some()).count();
    assert_eq!(faulted, N);
    // The server made exactly one response per request the engine meant to
    // make (plus the root): no duplicates.
    assert_eq!(emu.created_count(), 1 + N as u64);
    let posts = emu
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/responses")
        .count();
    assert_eq!(posts, 1 + N, "a create was sent twice");
    // The tree holds exactly what the server made, once each.
    let mut created = emu.created_responses();
    created.sort();
    assert_eq!(node_ids(engine.tree()), created);
    for node in &nodes {
        assert_eq!(node.parent.as_ref(), Some(&root.id));
        assert!(!node.output_text.is_empty());
    }
    assert!(engine.tree().attempts().unwrap().is_empty());
}

/// The client alone: a non-streamed create cut after the server made it is
/// not retried (the server holds one response, not two).
#[tokio::test]
async fn the_client_never_retries_a_create_the_server_made() {
    let emu = Emulator::spawn().await.unwrap();
    emu.inject(Fault::DropAfterCreate { count: 1 });
    let err = client(&emu)
        .create(&CreateResponse::new("gpt-4o-mini", Input::text("once")))
        .await
        .unwrap_err();
    assert!(err.may_have_reached_server(), "{err:?}");
    emu.wait_created(1).await;
    assert_eq!(emu.created_count(), 1);
    assert_eq!(emu.requests().len(), 1);
}

/// A run killed after `response.created` (here: the call dropped once its id
/// was journaled, while the server goes on): recover() records the response
/// the server finished, exactly once.
#[tokio::test]
async fn recover_adopts_what_the_server_finished_after_the_call_was_dropped() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory()).build().unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    emu.inject(Fault::DropAfterCreate { count: 1 });
    // No hold needed: the fault cuts the connection after `response.created`,
    // and the call then looks the response up. Drop the call as soon as the
    // id is journaled, before it can.
    let call = engine.clone();
    let parent = root.id.clone();
    let mut respond = Box::pin(async move { call.respond(Some(&parent), "dropped").await });
    let tree = engine.tree();
    poll_until(&mut respond, || {
        tree.attempts()
            .unwrap()
            .first()
            .is_some_and(|a| a.response_id.is_some())
    })
    .await;
    drop(respond);
    let attempt = tree.attempts().unwrap().remove(0);
    emu.wait_created(2).await;
    let report = engine.recover().await.unwrap();
    let id = attempt.response_id.unwrap();
    assert_eq!(report.recovered, vec![NodeId::from(&id)]);
    assert!(report.is_clean());
    assert_eq!(emu.created_count(), 2);
    assert_eq!(node_ids(tree).len(), 2);
    let node = tree.get(&NodeId::from(&id)).unwrap();
    assert_eq!(node.parent, Some(root.id));
    assert_eq!(resptree::node::item_text(&node.input[0]), "dropped");
}
