//! The engine against the emulator: branching, replay, journaling, adopt, prune.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use resptree::backend::ResponsesBackend;
use resptree::client::{Client, CreateResponse, Input};
use resptree::emulator::{Emulator, Fault};
use resptree::engine::{EngineBuilder, MissingParent, RespondOptions, StreamUpdate, UsageScope};
use resptree::node::message_item;
use resptree::store::{Attempt, AttemptParams};
use resptree::{Engine, NodeId, ResponseId, ResponseTree};
use serde_json::{Value, json};

fn client(emu: &Emulator, retries: u32) -> Client {
    Client::builder()
        .base_url(emu.base_url())
        .api_key("sk-test-engine")
        .max_retries(retries)
        .retry_base_delay(Duration::from_millis(1))
        .build()
        .unwrap()
}

fn builder(emu: &Emulator, tree: ResponseTree) -> EngineBuilder {
    Engine::builder(tree, ResponsesBackend::new(client(emu, 2))).model("gpt-4o-mini")
}

async fn setup() -> (Emulator, Engine) {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory()).build().unwrap();
    (emu, engine)
}

/// The bodies of the `POST /v1/responses` requests the emulator saw, oldest first.
fn response_posts(emu: &Emulator) -> Vec<Value> {
    emu.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/responses")
        .filter_map(|r| r.body)
        .collect()
}

/// The `N` of the emulator's `[ctx N msgs]` reply prefix.
fn context_len(text: &str) -> usize {
    let rest = text.strip_prefix("[ctx ").expect("emulator reply format");
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn respond_records_a_root_and_its_child() {
    let (_emu, engine) = setup().await;
    let root = engine
        .respond(None, "Plan a weekend in Paris")
        .await
        .unwrap();
    assert!(root.id.as_str().starts_with("resp_"));
    assert_eq!(root.parent, None);
    assert_eq!(context_len(&root.output_text), 1);
    assert_eq!(
        root.origin.response_id.as_ref().map(ResponseId::as_str),
        Some(root.id.as_str())
    );

    let child = engine
        .respond(Some(&root.id), "More museums")
        .await
        .unwrap();
    assert_eq!(child.parent.as_ref(), Some(&root.id));
    assert_eq!(
        child
            .origin
            .previous_response_id
            .as_ref()
            .map(ResponseId::as_str),
        Some(root.id.as_str())
    );
    assert!(!child.origin.replayed);
    // root input + root output + new input
    assert_eq!(context_len(&child.output_text), 3);
    assert_eq!(engine.tree().get(&child.id).unwrap(), child);
    assert_eq!(engine.requests_made(), 2);
}

#[tokio::test]
async fn branch_of_fifty_children_all_persisted_under_the_parent() {
    let (emu, engine) = setup().await;
    let root = engine.respond(None, "root").await.unwrap();
    let texts: Vec<String> = (0..50).map(|i| format!("child {i}")).collect();
    let results = engine.branch(&root.id, &texts).await.unwrap();
    assert_eq!(results.len(), 50);
    let mut ids = HashSet::new();
    for (i, result) in results.into_iter().enumerate() {
        let node = result.unwrap();
        assert_eq!(node.parent.as_ref(), Some(&root.id));
        // Context purity: each child saw exactly its own ancestry plus its own input.
        assert!(
            node.output_text
                .contains(&format!("You said: \"child {i}\"")),
            "{}",
            node.output_text
        );
        assert_eq!(context_len(&node.output_text), 3);
        ids.insert(node.id.clone());
    }
    assert_eq!(ids.len(), 50);
    let children: HashSet<NodeId> = engine
        .tree()
        .children(&root.id)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(children, ids);
    // Every child request named the same previous_response_id.
    let posts = response_posts(&emu);
    assert_eq!(posts.len(), 51);
    assert!(
        posts[1..]
            .iter()
            .all(|b| b["previous_response_id"] == json!(root.id.as_str()))
    );
}

#[tokio::test]
async fn context_is_the_branch_own_ancestry_never_a_sibling() {
    let (_emu, engine) = setup().await;
    let root = engine.respond(None, "root question").await.unwrap();
    let results = engine.branch(&root.id, ["left", "right"]).await.unwrap();
    let left = results[0].as_ref().unwrap();
    let right = results[1].as_ref().unwrap();
    let deeper = engine.respond(Some(&left.id), "left again").await.unwrap();
    // root(2) + left(2) + new input(1); nothing of `right`.
    assert_eq!(context_len(&deeper.output_text), 5);
    let transcript = engine.tree().transcript(&deeper.id).unwrap();
    let texts: Vec<String> = transcript.iter().map(resptree::node::item_text).collect();
    assert!(texts.iter().any(|t| t == "left"));
    assert!(
        !texts
            .iter()
            .any(|t| t == "right" || t.contains(&right.output_text))
    );
}

#[tokio::test]
async fn partial_failure_keeps_the_children_that_succeeded() {
    let emu = Emulator::spawn().await.unwrap();
    // No client retries, so each injected 500 fails one child.
    let engine = Engine::builder(
        ResponseTree::in_memory(),
        ResponsesBackend::new(client(&emu, 0)),
    )
    .concurrency(1)
    .build()
    .unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    emu.inject(Fault::Status {
        status: 500,
        count: 3,
    });
    let results = engine
        .branch(&root.id, (0..8).map(|i| format!("c{i}")))
        .await
        .unwrap();
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|e| e.status() == Some(500)));
    assert_eq!(engine.tree().children(&root.id).unwrap().len(), 5);
    // Failed attempts leave the journal: the caller has the error.
    assert!(engine.tree().attempts().unwrap().is_empty());
}

#[tokio::test]
async fn instructions_are_resent_to_children_unless_overridden() {
    let (emu, engine) = setup().await;
    let root = engine
        .respond_with(
            None,
            vec![message_item("user", "plan")],
            &RespondOptions::default().instructions("Be brief."),
        )
        .await
        .unwrap();
    let child = engine.respond(Some(&root.id), "more").await.unwrap();
    assert_eq!(child.instructions.as_deref(), Some("Be brief."));
    let other = engine
        .respond_with(
            Some(&root.id),
            vec![message_item("user", "formal")],
            &RespondOptions::default().instructions("Be formal."),
        )
        .await
        .unwrap();
    assert_eq!(other.instructions.as_deref(), Some("Be formal."));
    let posts = response_posts(&emu);
    assert_eq!(posts[1]["instructions"], json!("Be brief."));
    assert_eq!(posts[2]["instructions"], json!("Be formal."));
}

#[tokio::test]
async fn a_forgotten_parent_is_replayed_from_the_local_transcript() {
    for forget in ["delete", "expire"] {
        let (emu, engine) = setup().await;
        let root = engine.respond(None, "root").await.unwrap();
        let mid = engine.respond(Some(&root.id), "mid").await.unwrap();
        assert!(match forget {
            "delete" => emu.delete_response(mid.id.as_str()),
            _ => emu.expire_response(mid.id.as_str()),
        });
        emu.clear_requests();
        let child = engine.respond(Some(&mid.id), "after").await.unwrap();
        assert!(child.origin.replayed, "{forget}");
        assert_eq!(child.parent.as_ref(), Some(&mid.id));
        assert_eq!(child.input, vec![message_item("user", "after")]);
        // First the server said "not found", then the path was replayed.
        let posts = response_posts(&emu);
        assert_eq!(posts.len(), 2, "{forget}");
        assert_eq!(posts[0]["previous_response_id"], json!(mid.id.as_str()));
        assert!(
            posts[1]
                .get("previous_response_id")
                .is_none_or(Value::is_null)
        );
        // The transcript, without the item ids the server no longer knows.
        let mut expected = engine.tree().transcript(&mid.id).unwrap();
        for item in &mut expected {
            item.as_object_mut().unwrap().remove("id");
        }
        expected.push(message_item("user", "after"));
        assert_eq!(posts[1]["input"], Value::Array(expected));
        assert_eq!(context_len(&child.output_text), 5);

        // The engine remembers: the next child of `mid` goes straight to replay.
        emu.clear_requests();
        engine.respond(Some(&mid.id), "again").await.unwrap();
        assert_eq!(response_posts(&emu).len(), 1);
    }
}

#[tokio::test]
async fn missing_parent_policy_error_returns_the_server_error() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory())
        .missing_parent(MissingParent::Error)
        .build()
        .unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    emu.delete_response(root.id.as_str());
    let err = engine.respond(Some(&root.id), "child").await.unwrap_err();
    assert!(err.is_previous_response_not_found(), "{err:?}");
    assert_eq!(engine.tree().len(), 1);
}

#[tokio::test]
async fn stateless_mode_never_stores_and_always_replays() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory())
        .stateless(true)
        .build()
        .unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    let child = engine.respond(Some(&root.id), "child").await.unwrap();
    assert!(!root.origin.stored && !child.origin.stored);
    assert!(child.origin.replayed);
    assert_eq!(context_len(&child.output_text), 3);
    let posts = response_posts(&emu);
    assert_eq!(posts.len(), 2);
    assert!(posts.iter().all(|b| b["store"] == json!(false)));
    assert!(
        posts
            .iter()
            .all(|b| b.get("previous_response_id").is_none_or(Value::is_null))
    );
    assert_eq!(emu.response_count(), 0);
}

#[tokio::test]
async fn local_nodes_are_continued_by_replay() {
    let (emu, engine) = setup().await;
    let imported = resptree::Node::new(NodeId::local(), None)
        .with_user_text("imported question")
        .with_output_text("imported answer");
    engine.tree().insert(imported.clone()).unwrap();
    let child = engine
        .respond(Some(&imported.id), "follow-up")
        .await
        .unwrap();
    assert!(child.origin.replayed);
    assert_eq!(context_len(&child.output_text), 3);
    assert_eq!(response_posts(&emu).len(), 1);
}

/// Fan-out sends one request per sibling, each continuing the parent, and
/// records one node per reply. (Not "the texts differ": the emulator numbers its
/// takes, so that would hold even if the engine sent the wrong requests.)
#[tokio::test]
async fn fan_out_makes_distinct_siblings() {
    let (emu, engine) = setup().await;
    let root = engine.respond(None, "question").await.unwrap();
    emu.clear_requests();
    let nodes: Vec<_> = engine
        .fan_out(Some(&root.id), "answer it", 5)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let posts = response_posts(&emu);
    assert_eq!(posts.len(), 5, "one request per sibling");
    for body in &posts {
        assert_eq!(body["previous_response_id"], root.id.as_str(), "{body}");
        assert_eq!(
            body["input"],
            json!([message_item("user", "answer it")]),
            "{body}"
        );
    }
    let ids: HashSet<NodeId> = nodes.iter().map(|n| n.id.clone()).collect();
    assert_eq!(ids.len(), 5, "{ids:?}");
    let children: HashSet<NodeId> = engine
        .tree()
        .children(&root.id)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(children, ids);
    // Each node is a different server response, and the server has each one as
    // a child of the root.
    let responses: HashSet<&ResponseId> = nodes
        .iter()
        .map(|n| n.origin.response_id.as_ref().unwrap())
        .collect();
    assert_eq!(responses.len(), 5);
    let client = client(&emu, 0);
    for node in &nodes {
        let response = client.retrieve(node.id.as_str()).await.unwrap();
        assert_eq!(response.output_text(), node.output_text);
        assert_eq!(
            response.previous_response_id.as_deref(),
            Some(root.id.as_str())
        );
    }
    assert!(
        engine
            .fan_out(Some(&root.id), "x", 0)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn streaming_yields_deltas_then_the_committed_node() {
    let (_emu, engine) = setup().await;
    let root = engine.respond(None, "root").await.unwrap();
    let mut stream = engine.respond_stream(Some(&root.id), "stream me", &RespondOptions::default());
    let mut text = String::new();
    let mut started = None;
    let mut committed = None;
    while let Some(update) = stream.next().await {
        match update.unwrap() {
            StreamUpdate::Started(id) => started = Some(id),
            StreamUpdate::Delta(d) => text.push_str(&d),
            StreamUpdate::Committed(node) => committed = Some(*node),
            _ => {}
        }
    }
    let node = committed.expect("a committed node");
    assert_eq!(node.output_text, text);
    assert_eq!(started.map(NodeId::from), Some(node.id.clone()));
    assert_eq!(engine.tree().get(&node.id).unwrap(), node);
    assert!(engine.tree().attempts().unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_stream_leaves_no_node() {
    let (emu, engine) = setup().await;
    let root = engine.respond(None, "root").await.unwrap();
    emu.inject(Fault::FailMidStream {
        after_deltas: 2,
        count: 1,
    });
    let mut stream = engine.respond_stream(Some(&root.id), "doomed", &RespondOptions::default());
    let mut error = None;
    while let Some(update) = stream.next().await {
        if let Err(e) = update {
            error = Some(e);
        }
    }
    assert!(error.is_some());
    assert_eq!(engine.tree().len(), 1);
    assert!(engine.tree().attempts().unwrap().is_empty());
}

/// The journal's attempts.
fn journal(tree: &ResponseTree) -> Vec<Attempt> {
    tree.attempts().unwrap()
}

#[tokio::test]
async fn cancellation_leaves_nothing_half_written() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory()).build().unwrap();
    // The server holds the request, so it is certainly in flight when dropped.
    emu.inject(Fault::Hold { count: 1 });
    let mut respond = Box::pin(engine.respond(None, "slow"));
    tokio::select! {
        result = &mut respond => panic!("finished while held: {result:?}"),
        () = emu.wait_held(1) => {}
    }
    // Held after `response.created`: keep polling the call until it has
    // journaled the id (the engine streams under the hood to learn it).
    while journal(engine.tree())
        .first()
        .is_none_or(|a| a.response_id.is_none())
    {
        tokio::select! {
            biased;
            result = &mut respond => panic!("finished while held: {result:?}"),
            () = tokio::task::yield_now() => {}
        }
    }
    drop(respond);
    assert_eq!(engine.tree().len(), 0);
    // The journal remembers the attempt and its id; recover() settles it: the
    // server never stored the response the dropped request had announced.
    let attempts = journal(engine.tree());
    assert_eq!(attempts.len(), 1);
    let report = engine.recover().await.unwrap();
    assert!(report.recovered.is_empty());
    assert_eq!(report.unresolved.len(), 1, "{report:?}");
    assert!(report.unresolved[0].1.is_not_found(), "{report:?}");
    assert!(journal(engine.tree()).is_empty());
    assert_eq!(engine.tree().len(), 0);
}

/// Dropping a stream cancels it: the server sees the request go away without
/// storing a response, and the journal keeps the attempt (with the response id
/// the stream had announced) for `recover`, which settles it.
#[tokio::test]
async fn a_dropped_stream_leaves_its_attempt_for_recover_and_nothing_stored() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory()).build().unwrap();
    // Held after `response.created`: the response id is known, nothing is stored.
    emu.inject(Fault::Hold { count: 1 });
    let mut stream = engine.respond_stream(None, "slow stream", &RespondOptions::default());
    let started = match stream.next().await {
        Some(Ok(StreamUpdate::Started(id))) => id,
        other => panic!("expected the response id first, got {other:?}"),
    };
    emu.wait_held(1).await;
    let attempts = journal(engine.tree());
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].response_id.as_ref(), Some(&started));

    drop(stream);
    // The server: the request went away (nothing in flight), nothing was stored.
    tokio::time::timeout(Duration::from_secs(10), emu.wait_idle())
        .await
        .expect("the emulator never noticed the dropped stream");
    assert_eq!(emu.response_count(), 0);
    assert_eq!(response_posts(&emu).len(), 1);
    // The tree: nothing; the journal: the attempt, until recover() settles it
    // (the server never stored the response it had announced).
    assert_eq!(engine.tree().len(), 0);
    assert_eq!(journal(engine.tree()).len(), 1);
    let report = engine.recover().await.unwrap();
    assert!(report.recovered.is_empty());
    assert_eq!(report.unresolved.len(), 1);
    assert!(journal(engine.tree()).is_empty());
    assert_eq!(engine.tree().len(), 0);
}

/// Keeps `total` held requests moving through the emulator one at a time:
/// waits until as many as the engine may have in flight are held, then lets
/// the oldest go. Returns once every request was released.
async fn release_one_by_one(emu: &Emulator, total: usize, limit: usize) {
    for released in 0..total {
        emu.wait_held(limit.min(total - released)).await;
        assert!(emu.in_flight() <= limit, "{} in flight", emu.in_flight());
        emu.release(1);
    }
}

/// `concurrency(k)` bounds what the server sees: with every request held at the
/// emulator until the test lets it go, exactly `k` are ever in flight at once
/// (the gate guarantees `k` are reached; without the engine's semaphore all of
/// them pile up at the gate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_bounds_requests_in_flight() {
    const LIMIT: usize = 2;
    const N: usize = 8;
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory())
        .concurrency(LIMIT)
        .build()
        .unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    let texts: Vec<String> = (0..N).map(|i| format!("branch {i}")).collect();

    emu.clear_requests();
    emu.inject(Fault::Hold { count: N });
    let (branched, ()) = tokio::join!(
        engine.branch(&root.id, &texts),
        release_one_by_one(&emu, N, LIMIT)
    );
    assert!(branched.unwrap().iter().all(Result::is_ok));
    assert_eq!(emu.peak_in_flight(), LIMIT);

    // Fan-out on the Responses backend is N requests under the same limit.
    emu.clear_requests();
    emu.inject(Fault::Hold { count: N });
    let (fanned, ()) = tokio::join!(
        engine.fan_out(Some(&root.id), "again", N),
        release_one_by_one(&emu, N, LIMIT)
    );
    assert!(fanned.unwrap().iter().all(Result::is_ok));
    assert_eq!(emu.peak_in_flight(), LIMIT);
    assert_eq!(response_posts(&emu).len(), N);
}

#[tokio::test]
async fn recover_records_an_attempt_whose_response_id_was_journaled() {
    let (emu, engine) = setup().await;
    let root = engine.respond(None, "root").await.unwrap();
    // Simulate a crash after the server answered: the response exists, the
    // journal knows its id, the node was never committed.
    let client = client(&emu, 0);
    let response = client
        .create(
            &CreateResponse::new("gpt-4o-mini", Input::text("lost child"))
                .previous_response_id(root.id.as_str()),
        )
        .await
        .unwrap();
    let mut attempt = Attempt::new(
        Some(root.id.clone()),
        vec![message_item("user", "lost child")],
        AttemptParams::default(),
    );
    attempt.response_id = Some(ResponseId::new(&response.id).unwrap());
    engine.tree().journal(&[attempt]).unwrap();

    let report = engine.recover().await.unwrap();
    assert_eq!(report.recovered, vec![NodeId::new(&response.id).unwrap()]);
    assert!(report.unresolved.is_empty());
    let node = engine.tree().get(&report.recovered[0]).unwrap();
    assert_eq!(node.parent.as_ref(), Some(&root.id));
    assert_eq!(node.output_text, response.output_text());
    assert!(engine.tree().attempts().unwrap().is_empty());
}

#[tokio::test]
async fn adopt_brings_in_a_server_chain() {
    let (emu, engine) = setup().await;
    let client = client(&emu, 0);
    let mut previous: Option<String> = None;
    let mut ids = Vec::new();
    for turn in ["one", "two", "three"] {
        let mut request =
            CreateResponse::new("gpt-4o-mini", Input::text(turn)).instructions("Be kind.");
        if let Some(p) = &previous {
            request = request.previous_response_id(p.clone());
        }
        let response = client.create(&request).await.unwrap();
        previous = Some(response.id.clone());
        ids.push(NodeId::new(&response.id).unwrap());
    }
    let report = engine
        .adopt(&ResponseId::new(ids[2].as_str()).unwrap())
        .await
        .unwrap();
    assert_eq!(report.adopted, ids);
    assert_eq!(engine.tree().path(&ids[2]).unwrap(), ids);
    let last = engine.tree().get(&ids[2]).unwrap();
    assert_eq!(last.user_text().as_deref(), Some("three"));
    assert_eq!(last.instructions.as_deref(), Some("Be kind."));
    // Adopting again is a no-op attach; a child continues it on the server.
    let child = engine.respond(Some(&ids[2]), "four").await.unwrap();
    assert!(!child.origin.replayed);
    assert_eq!(context_len(&child.output_text), 7);
}

#[tokio::test]
async fn prune_removes_locally_and_on_the_server() {
    let (emu, engine) = setup().await;
    let root = engine.respond(None, "root").await.unwrap();
    let a = engine.respond(Some(&root.id), "a").await.unwrap();
    let a1 = engine.respond(Some(&a.id), "a1").await.unwrap();
    let b = engine.respond(Some(&root.id), "b").await.unwrap();
    assert_eq!(emu.response_count(), 4);
    let report = engine.prune(&a.id, true).await.unwrap();
    let removed: HashSet<_> = report.removed.into_iter().collect();
    assert_eq!(removed, HashSet::from([a.id.clone(), a1.id.clone()]));
    assert_eq!(report.remote_deleted.len(), 2);
    assert!(report.remote_errors.is_empty());
    assert_eq!(emu.response_count(), 2);
    assert_eq!(
        engine.tree().children(&root.id).unwrap(),
        vec![b.id.clone()]
    );
    assert!(engine.tree().get(&a1.id).unwrap_err().is_not_found());
}

#[tokio::test]
async fn merge_records_the_other_branch_as_extra_context() {
    let (emu, engine) = setup().await;
    let root = engine.respond(None, "root").await.unwrap();
    let results = engine.branch(&root.id, ["formal", "funny"]).await.unwrap();
    let a = results[0].as_ref().unwrap();
    let b = results[1].as_ref().unwrap();
    emu.clear_requests();
    let merged = engine
        .merge(&a.id, &b.id, "Combine the best of both.")
        .await
        .unwrap();
    assert_eq!(merged.parent.as_ref(), Some(&a.id));
    assert_eq!(merged.extra_context, vec![b.id.clone()]);
    assert_eq!(
        engine.tree().graph().context_of(&merged.id).unwrap(),
        vec![b.id.clone()]
    );
    let posts = response_posts(&emu);
    assert_eq!(posts[0]["previous_response_id"], json!(a.id.as_str()));
    let sent = posts[0]["input"].to_string();
    assert!(sent.contains(&b.output_text.replace('"', "\\\"")), "{sent}");
    assert!(sent.contains("Combine the best of both."));
}

#[tokio::test]
async fn usage_adds_up_per_node_path_and_subtree() {
    let (_emu, engine) = setup().await;
    let root = engine.respond(None, "root").await.unwrap();
    let kids: Vec<_> = engine
        .branch(&root.id, ["a", "b"])
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let node = engine.usage(&kids[0].id, UsageScope::Node).await.unwrap();
    assert_eq!(node.nodes, 1);
    assert_eq!(node.total_tokens, kids[0].usage.total_tokens);
    let path = engine.usage(&kids[0].id, UsageScope::Path).await.unwrap();
    assert_eq!(
        path.total_tokens,
        root.usage.total_tokens + kids[0].usage.total_tokens
    );
    let subtree = engine.usage(&root.id, UsageScope::Subtree).await.unwrap();
    assert_eq!(subtree.nodes, 3);
    assert_eq!(
        subtree.output_tokens,
        root.usage.output_tokens + kids[0].usage.output_tokens + kids[1].usage.output_tokens
    );
    assert!(
        kids[0].usage.cached_tokens > 0,
        "the inherited context is cached"
    );
}

#[tokio::test]
async fn expiring_lists_nodes_about_to_lose_their_server_copy() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu, ResponseTree::in_memory())
        .retention(Duration::from_secs(3600))
        .build()
        .unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    assert!(
        engine
            .expiring(Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    let soon = engine
        .expiring(Duration::from_secs(2 * 3600))
        .await
        .unwrap();
    assert_eq!(soon.len(), 1);
    assert_eq!(soon[0].0, root.id);
}

#[tokio::test]
async fn reopening_after_a_run_gives_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree.db");
    let emu = Emulator::spawn().await.unwrap();
    let before = {
        let engine = builder(&emu, ResponseTree::open(&path).unwrap())
            .build()
            .unwrap();
        let root = engine.respond(None, "root").await.unwrap();
        for r in engine.branch(&root.id, ["x", "y", "z"]).await.unwrap() {
            r.unwrap();
        }
        resptree::render::export_json(engine.tree()).unwrap()
    };
    let reopened = ResponseTree::open(&path).unwrap();
    assert_eq!(reopened.len(), 4);
    assert_eq!(resptree::render::export_json(&reopened).unwrap(), before);
}

#[tokio::test]
async fn engine_handles_are_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Engine>();
    let (_emu, engine) = setup().await;
    let clone = engine.clone();
    clone.respond(None, "via clone").await.unwrap();
    assert_eq!(engine.tree().len(), 1);
}

#[tokio::test]
async fn builder_rejects_bad_settings() {
    let emu = Emulator::spawn().await.unwrap();
    let err = builder(&emu, ResponseTree::in_memory())
        .concurrency(0)
        .build()
        .unwrap_err();
    assert!(matches!(err, resptree::Error::Config { .. }));
    let err = builder(&emu, ResponseTree::in_memory())
        .model(" ")
        .build()
        .unwrap_err();
    assert!(matches!(err, resptree::Error::Config { .. }));
}

#[tokio::test]
async fn unknown_parent_is_a_typed_error() {
    let (emu, engine) = setup().await;
    let ghost = NodeId::new("resp_ghost").unwrap();
    let err = engine.respond(Some(&ghost), "hi").await.unwrap_err();
    assert!(
        matches!(err, resptree::Error::NodeNotFound(ref id) if *id == ghost),
        "{err:?}"
    );
    assert!(emu.requests().is_empty());
}

/// Every `RespondOptions` field, set through its builder method, reaches the
/// server or the node (and the defaults send none of them).
#[tokio::test]
async fn every_respond_option_reaches_the_request_and_the_node() {
    let (emu, engine) = setup().await;
    let root = engine
        .respond_with(
            None,
            vec![message_item("user", "root")],
            &RespondOptions::default().instructions("Be brief."),
        )
        .await
        .unwrap();
    let options = RespondOptions::default()
        .model("gpt-4.1-mini")
        .instructions("Answer in French.")
        .metadata("experiment", "7")
        .label("draft")
        .max_output_tokens(123)
        .temperature(0.25)
        .store(false)
        .extra_context(root.id.clone());
    let child = engine
        .respond_with(Some(&root.id), vec![message_item("user", "hi")], &options)
        .await
        .unwrap();

    let sent = response_posts(&emu).pop().unwrap();
    assert_eq!(sent["model"], "gpt-4.1-mini");
    assert_eq!(sent["instructions"], "Answer in French.");
    assert_eq!(sent["metadata"], json!({"experiment": "7"}));
    assert_eq!(sent["max_output_tokens"], 123);
    assert_eq!(sent["temperature"], 0.25);
    assert_eq!(sent["store"], false);
    assert_eq!(child.labels, ["draft".to_owned()].into_iter().collect());
    assert_eq!(child.extra_context, vec![root.id.clone()]);
    assert_eq!(child.instructions.as_deref(), Some("Answer in French."));
    assert!(!child.origin.stored, "store(false) must be recorded");

    // Inherit (the default) re-sends the parent's; without_instructions sends none.
    engine.respond(Some(&root.id), "again").await.unwrap();
    assert_eq!(
        response_posts(&emu).pop().unwrap()["instructions"],
        "Be brief."
    );
    let none = RespondOptions::default()
        .instructions("x")
        .without_instructions();
    engine
        .respond_with(Some(&root.id), vec![message_item("user", "bare")], &none)
        .await
        .unwrap();
    let bare = response_posts(&emu).pop().unwrap();
    assert!(
        bare.get("instructions").is_none_or(Value::is_null),
        "{bare}"
    );
    assert!(bare.get("temperature").is_none_or(Value::is_null), "{bare}");
    assert!(
        bare.get("max_output_tokens").is_none_or(Value::is_null),
        "{bare}"
    );
    let back = RespondOptions::default()
        .without_instructions()
        .inherit_instructions();
    assert_eq!(back, RespondOptions::default());
}
