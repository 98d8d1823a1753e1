//! The fault matrix: 1,000-branch runs against an emulator that fails requests,
//! each fault alone and all mixed at random. Every branch must end either
//! recorded exactly once or with a typed error; nothing is recorded twice; the
//! journal is empty afterwards; the tree's invariants hold.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use resptree::backend::ResponsesBackend;
use resptree::client::{Client, CreateResponse, Input};
use resptree::emulator::{Emulator, Fault};
use resptree::engine::{MissingParent, RespondOptions, StreamUpdate};
use resptree::{Engine, Error, NodeId, ResponseTree};
use serde_json::json;

use crate::reliability_support::{Rng, check_invariants};

/// Builds a fault hitting `count` requests.
type MakeFault = fn(usize) -> Fault;

/// Branches per round; half go through `branch`, half are streamed.
const ROUND: usize = 10;

/// The client's retry limit: a request is sent at most `1 + MAX_RETRIES` times.
const MAX_RETRIES: u32 = 3;

fn client(emu: &Emulator) -> Client {
    Client::builder()
        .base_url(emu.base_url())
        .api_key("sk-test-faults")
        .max_retries(MAX_RETRIES)
        .retry_base_delay(Duration::from_millis(1))
        .retry_max_delay(Duration::from_millis(4))
        // Short enough that a stalled stream times out quickly.
        .stream_idle_timeout(Duration::from_millis(150))
        .build()
        .unwrap()
}

fn engine(emu: &Emulator, tree: Arc<ResponseTree>, policy: MissingParent) -> Engine {
    Engine::builder(tree, ResponsesBackend::new(client(emu)))
        .concurrency(8)
        .missing_parent(policy)
        .build()
        .unwrap()
}

/// What a run ended with.
#[derive(Debug, Default)]
struct Outcome {
    recorded: usize,
    /// Branches that had failed with `OutcomeUnknown` and that `recover()`
    /// recorded afterwards.
    recovered: usize,
    /// Typed errors by variant.
    errors: BTreeMap<&'static str, usize>,
    requests: usize,
    /// Every branch's `POST /v1/responses` requests, oldest first: the fault each
    /// one suffered, if any; and whether the branch was recorded.
    branches: BTreeMap<String, (Vec<Option<Fault>>, bool)>,
}

/// The text of the new user message a `POST /v1/responses` body sends (its last
/// input item: a replay puts the transcript before it).
fn sent_text(body: &serde_json::Value) -> Option<String> {
    let last = body["input"].as_array()?.last()?;
    Some(resptree::node::item_text(last))
}

/// The variant of a typed error; panics on anything that is not an expected
/// consequence of a fault.
fn kind(err: &Error) -> &'static str {
    match err {
        Error::Api(_) => "api",
        Error::RateLimited(_) => "rate_limited",
        Error::Timeout { .. } => "timeout",
        Error::Connection { .. } => "connection",
        Error::Stream { .. } => "stream",
        Error::Decode { .. } => "decode",
        Error::OutcomeUnknown { .. } => "outcome_unknown",
        other => panic!("a fault ended in an unexpected error: {other:?}"),
    }
}

/// Runs `rounds` rounds of `ROUND` branches, calling `before_round` first in each,
/// and checks every branch's fate. Parents are picked at random among the nodes
/// recorded so far.
async fn run(
    emu: &Emulator,
    engine: &Engine,
    rounds: usize,
    seed: u64,
    mut before_round: impl FnMut(&Emulator, usize, &[NodeId]),
) -> Outcome {
    let mut rng = Rng(seed);
    let root = engine.respond(None, "fault matrix root").await.unwrap();
    let mut known = vec![root.id.clone()];
    let mut fates: HashMap<String, Option<NodeId>> = HashMap::new();
    let mut outcome = Outcome::default();
    for round in 0..rounds {
        before_round(emu, round, &known);
        let parent = known[rng.range(0, known.len() as u64) as usize].clone();
        let texts: Vec<String> = (0..ROUND)
            .map(|i| format!("branch r{round} i{i}"))
            .collect();
        let (plain, streamed) = texts.split_at(ROUND / 2);
        let streams = streamed.iter().map(|text| {
            let engine = engine.clone();
            let parent = parent.clone();
            async move {
                let mut stream =
                    engine.respond_stream(Some(&parent), text, &RespondOptions::default());
                while let Some(update) = stream.next().await {
                    match update {
                        Ok(StreamUpdate::Committed(node)) => return Ok(*node),
                        Ok(_) => {}
                        Err(e) => return Err(e),
                    }
                }
                panic!("{text}: the stream ended without a node or an error");
            }
        });
        let (branched, streamed_results) = tokio::join!(
            engine.branch(&parent, plain),
            futures_util::future::join_all(streams)
        );
        let results = branched.unwrap().into_iter().chain(streamed_results);
        for (text, result) in texts.iter().zip(results) {
            match result {
                Ok(node) => {
                    assert_eq!(node.parent.as_ref(), Some(&parent));
                    outcome.recorded += 1;
                    known.push(node.id.clone());
                    fates.insert(text.clone(), Some(node.id));
                }
                Err(err) => {
                    *outcome.errors.entry(kind(&err)).or_default() += 1;
                    fates.insert(text.clone(), None);
                }
            }
        }
    }
    let requests = emu.requests();
    outcome.requests = requests.len();
    for request in requests {
        if request.method != "POST" || request.path != "/v1/responses" {
            continue;
        }
        let Some(text) = request.body.as_ref().and_then(sent_text) else {
            continue;
        };
        if let Some(fate) = fates.get(&text) {
            let entry = outcome
                .branches
                .entry(text)
                .or_insert_with(|| (Vec::new(), fate.is_some()));
            entry.0.push(request.fault);
        }
    }
    assert_eq!(outcome.branches.len(), fates.len(), "a branch sent nothing");
    for (text, (faults, _)) in &outcome.branches {
        // The client's limit, plus at most one replay when the parent was lost.
        assert!(
            faults.len() <= 2 * (1 + MAX_RETRIES as usize),
            "{text}: {faults:?}"
        );
    }
    // Nothing recorded twice, nothing recorded that failed, nothing lost.
    let tree = engine.tree();
    let mut seen: HashMap<String, NodeId> = HashMap::new();
    for id in tree.all_ids() {
        let node = tree.get(&id).unwrap();
        let text = resptree::node::item_text(&node.input[0]);
        if let Some(previous) = seen.insert(text.clone(), id.clone()) {
            panic!("{text:?} recorded twice: {previous} and {id}");
        }
    }
    for (text, fate) in &fates {
        assert_eq!(seen.get(text), fate.as_ref(), "{text}");
    }
    assert_eq!(tree.len(), 1 + outcome.recorded);
    // The journal keeps exactly the attempts whose outcome is unknown (a
    // create that may have reached the server, and no id to look it up by or
    // no answer from the server when it was looked up). With the faults off,
    // recover() settles each: it records a response the server finished (a
    // branch that had failed, never one already recorded), or reports it.
    let unknown = outcome.errors.get("outcome_unknown").copied().unwrap_or(0);
    let left = tree.attempts().unwrap();
    assert_eq!(left.len(), unknown, "failed attempts left in the journal");
    emu.set_random_faults(0.0, 0);
    let report = engine.recover().await.unwrap();
    assert!(report.deferred.is_empty(), "{report:?}");
    assert!(report.live.is_empty(), "{report:?}");
    assert_eq!(
        report.recovered.len() + report.unresolved.len(),
        unknown,
        "{report:?}"
    );
    // Unresolved: no id to look up, or the server never kept the response
    // (a stream cut mid-way, looked up while the faults were still on).
    for (attempt, err) in &report.unresolved {
        assert!(
            attempt.response_id.is_none() || err.is_not_found(),
            "{attempt:?}: {err:?}"
        );
    }
    for id in &report.recovered {
        let text = resptree::node::item_text(&tree.get(id).unwrap().input[0]);
        assert_eq!(
            fates.get(&text),
            Some(&None),
            "{text}: recovered, but it had been recorded"
        );
        if let Some(previous) = seen.insert(text.clone(), id.clone()) {
            panic!("{text:?} recorded twice: {previous} and {id}");
        }
    }
    outcome.recovered = report.recovered.len();
    assert!(tree.attempts().unwrap().is_empty());
    check_invariants(tree, None);
    outcome
}

/// Each fault alone, 100 branches per fault (1,000 in all). The fault hits
/// 1 to 4 consecutive requests each round, so it is sometimes retried away and
/// sometimes outlasts the client's three retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_alone() {
    let scenarios: Vec<(&str, MakeFault)> = vec![
        ("429 retry-after-ms", |count| Fault::RateLimit {
            retry_after: Some(Duration::from_millis(3)),
            use_ms_header: true,
            count,
        }),
        ("429 no hint", |count| Fault::RateLimit {
            retry_after: None,
            use_ms_header: false,
            count,
        }),
        ("500", |count| Fault::Status { status: 500, count }),
        ("503", |count| Fault::Status { status: 503, count }),
        ("drop before headers", |count| Fault::DropBeforeHeaders {
            count,
        }),
        ("malformed body", |count| Fault::MalformedBody { count }),
        ("drop mid-stream", |count| Fault::DropMidStream {
            after_events: 2,
            count,
        }),
        ("fail mid-stream", |count| Fault::FailMidStream {
            after_deltas: 1,
            count,
        }),
        ("idle stall", |count| Fault::StallMidStream {
            after_events: 2,
            stall: Duration::from_millis(400),
            count,
        }),
    ];
    let mut total = 0;
    for (name, fault) in scenarios {
        // Request faults on a fresh request are retried when the server
        // answered (429, 5xx); a dropped connection, a body that does not
        // decode, or a stream that failed after it began is not: the create
        // may have been processed.
        let retried = name.starts_with("429") || name.starts_with('5');
        let emu = Emulator::spawn().await.unwrap();
        let engine = engine(
            &emu,
            Arc::new(ResponseTree::in_memory()),
            MissingParent::Replay,
        );
        let outcome = run(&emu, &engine, 100 / ROUND, 7, |emu, round, _| {
            emu.inject(fault(1 + round % 4));
        })
        .await;
        check_requests(name, retried, &outcome);
        // Every fault was met: the round injected 1 + round % 4 of it.
        let injected: usize = (0..100 / ROUND).map(|round| 1 + round % 4).sum();
        let met: usize = outcome
            .branches
            .values()
            .map(|(faults, _)| faults.iter().flatten().count())
            .sum();
        assert_eq!(met, injected, "{name}: {outcome:?}");
        if !retried {
            // Not retried: each fault is a typed error (or, where the response
            // was made after all, a recorded node).
            assert!(!outcome.errors.is_empty(), "{name}: {outcome:?}");
        }
        eprintln!("reliability figures (fault {name}): {outcome:?}");
        total += outcome.recorded + outcome.errors.values().sum::<usize>();
    }
    assert!(total >= 900);
}

/// Each branch's requests against the client's retry limit, when only one kind
/// of fault is about: a request that went through ends the branch; a retried
/// fault is followed by another request until the limit, where the branch gives
/// up with an error; a fault that is not retried ends the branch at once (and
/// the branch is still recorded if the server finished the response anyway: the
/// engine looked it up by the id it had journaled).
fn check_requests(name: &str, retried: bool, outcome: &Outcome) {
    let limit = 1 + MAX_RETRIES as usize;
    for (text, (faults, recorded)) in &outcome.branches {
        let (last, before) = faults.split_last().unwrap();
        assert!(
            before.iter().all(Option::is_some),
            "{name}: {text} was sent again after a request went through: {faults:?}"
        );
        if last.is_none() || retried {
            assert_eq!(*recorded, last.is_none(), "{name}: {text}: {faults:?}");
        }
        if retried {
            assert!(faults.len() <= limit, "{name}: {text}: {faults:?}");
            if !recorded {
                assert_eq!(
                    faults.len(),
                    limit,
                    "{name}: {text} gave up early: {faults:?}"
                );
            }
        } else {
            assert_eq!(faults.len(), 1, "{name}: {text} was retried: {faults:?}");
        }
    }
}

/// 1,000 branches with 20% of all requests faulted at random, while parents'
/// server copies are deleted or expired under the engine's feet (it replays).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_branches_with_random_faults() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = engine(
        &emu,
        Arc::new(ResponseTree::in_memory()),
        MissingParent::Replay,
    );
    let mut rng = Rng(99);
    let mut gone = 0;
    let outcome = run(&emu, &engine, 1000 / ROUND, 11, |emu, round, known| {
        if round == 1 {
            emu.set_random_faults(0.2, 2024);
        }
        // Lose one server copy per round: deleted on even rounds, expired on odd ones.
        let victim = &known[rng.range(0, known.len() as u64) as usize];
        let lost = if round % 2 == 0 {
            emu.delete_response(victim.as_str())
        } else {
            emu.expire_response(victim.as_str())
        };
        gone += usize::from(lost);
    })
    .await;
    let replayed = engine.tree().find(|n| n.origin.replayed).unwrap().len();
    eprintln!(
        "reliability figures (random 20%): {outcome:?}, server copies lost {gone}, replayed {replayed}"
    );
    assert!(outcome.recorded > 500, "{outcome:?}");
    assert!(!outcome.errors.is_empty(), "{outcome:?}");
    assert!(replayed > 0, "no branch needed a replay");
}

/// Deleted and expired parents: with `Replay` every branch is recorded from the
/// local transcript; with `Error` every branch fails with the server's typed
/// "previous response not found" and nothing is recorded.
#[tokio::test]
async fn deleted_and_expired_parents() {
    let emu = Emulator::spawn().await.unwrap();
    let tree = Arc::new(ResponseTree::in_memory());
    let replay = engine(&emu, Arc::clone(&tree), MissingParent::Replay);
    let strict = engine(&emu, Arc::clone(&tree), MissingParent::Error);
    let mut parents = Vec::new();
    for i in 0..10 {
        let p = replay.respond(None, &format!("parent {i}")).await.unwrap();
        if i % 2 == 0 {
            assert!(emu.delete_response(p.id.as_str()));
        } else {
            assert!(emu.expire_response(p.id.as_str()));
        }
        parents.push(p.id);
    }
    for p in &parents {
        let err = strict.respond(Some(p), "strict child").await.unwrap_err();
        assert!(err.is_previous_response_not_found(), "{err:?}");
    }
    assert_eq!(tree.len(), 10, "a failed branch was recorded");
    for p in &parents {
        let child = replay.respond(Some(p), "replayed child").await.unwrap();
        assert!(child.origin.replayed);
        assert_eq!(child.parent.as_ref(), Some(p));
    }
    assert_eq!(tree.len(), 20);
    assert!(tree.attempts().unwrap().is_empty());
    check_invariants(&tree, None);
}

/// The conversation lock: concurrent requests on one Conversation get the
/// server's typed `conversation_locked` error (not retried, never recorded
/// twice), while resptree's own branches of one parent all go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_lock_is_a_typed_error_and_branches_avoid_it() {
    let emu = Emulator::spawn().await.unwrap();
    let http = reqwest::Client::new();
    let conv: serde_json::Value = http
        .post(format!("{}/conversations", emu.base_url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conv = conv["id"].as_str().unwrap().to_owned();
    let client = client(&emu);
    let send = |i: usize| {
        let request = CreateResponse::new("gpt-4o-mini", Input::text(format!("c{i}")))
            .param("conversation", json!(conv));
        let client = client.clone();
        async move { client.create(&request).await }
    };
    // The first request holds the conversation's lock until released.
    emu.inject(Fault::Hold { count: 1 });
    let first = tokio::spawn(send(0));
    emu.wait_held(1).await;
    let locked = futures_util::future::join_all((1..4).map(send)).await;
    for result in &locked {
        let code = result
            .as_ref()
            .err()
            .and_then(Error::api_error)
            .and_then(|e| e.code.clone());
        assert_eq!(code.as_deref(), Some("conversation_locked"), "{result:?}");
    }
    emu.release(1);
    first.await.unwrap().unwrap();
    // Each locked request was sent once: 400 is not retried.
    let posts = emu
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/responses")
        .count();
    assert_eq!(posts, 4);

    // Branches of one parent do not lock each other: all four are in flight at
    // once (held together at the emulator) and all go through.
    let engine = engine(
        &emu,
        Arc::new(ResponseTree::in_memory()),
        MissingParent::Replay,
    );
    let root = engine.respond(None, "root").await.unwrap();
    emu.inject(Fault::Hold { count: 4 });
    let (children, ()) = tokio::join!(engine.branch(&root.id, ["a", "b", "c", "d"]), async {
        emu.wait_held(4).await;
        emu.release(4);
    });
    assert!(children.unwrap().iter().all(Result::is_ok));
}
