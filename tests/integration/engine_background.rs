//! The engine in background mode against the emulator: requests sent with
//! `background: true`, dropped streams resumed from the last sequence number
//! (no delta twice), responses stuck in `queued` cancelled and re-issued
//! exactly once, a dropped call left running for `recover()`, and the lease
//! heartbeat of a long request.

use std::time::Duration;

use futures_util::StreamExt;
use resptree::backend::{ChatBackend, ResponsesBackend};
use resptree::client::{Client, Polling};
use resptree::emulator::{Emulator, Fault, RequestRecord};
use resptree::engine::{EngineBuilder, RespondOptions, StreamUpdate};
use resptree::{Engine, Error, NodeId, ResponseTree, Timestamp};

fn client(emu: &Emulator) -> Client {
    Client::builder()
        .base_url(emu.base_url())
        .api_key("sk-test-background")
        .max_retries(2)
        .retry_base_delay(Duration::from_millis(1))
        .build()
        .unwrap()
}

fn builder(emu: &Emulator) -> EngineBuilder {
    Engine::builder(
        ResponseTree::in_memory(),
        ResponsesBackend::new(client(emu)),
    )
    .model("gpt-4o-mini")
    .settle_wait(Duration::from_secs(10))
}

fn background() -> RespondOptions {
    RespondOptions::default().background(true)
}

/// The creates the emulator saw whose user text is `text`.
fn creates_of(emu: &Emulator, text: &str) -> Vec<RequestRecord> {
    emu.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/responses")
        .filter(|r| {
            r.body
                .as_ref()
                .is_some_and(|b| b.to_string().contains(text))
        })
        .collect()
}

/// The stream resumes the emulator saw (`GET …?stream=true&starting_after=N`).
fn resumes(emu: &Emulator) -> Vec<RequestRecord> {
    emu.requests()
        .into_iter()
        .filter(|r| {
            r.method == "GET"
                && r.query
                    .as_deref()
                    .is_some_and(|q| q.contains("stream=true"))
        })
        .collect()
}

/// Collects a streamed call: the ids it announced, its deltas, and its node.
async fn collect(
    mut stream: resptree::engine::NodeStream,
) -> (Vec<String>, Vec<String>, resptree::Node) {
    let (mut started, mut deltas) = (Vec::new(), Vec::new());
    while let Some(update) = stream.next().await {
        match update.unwrap() {
            StreamUpdate::Started(id) => started.push(id.to_string()),
            StreamUpdate::Delta(text) => deltas.push(text),
            StreamUpdate::Committed(node) => return (started, deltas, *node),
            _ => {}
        }
    }
    panic!("the stream ended without committing a node");
}

#[tokio::test]
async fn background_calls_are_sent_in_background_and_recorded_on_completion() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu).background(true).build().unwrap();

    let root = engine
        .respond(None, "Think slowly about Paris")
        .await
        .unwrap();
    let children = engine
        .branch(&root.id, ["as a poet", "as a chemist"])
        .await
        .unwrap();
    let fanned = engine
        .fan_out(Some(&root.id), "once more", 2)
        .await
        .unwrap();
    // A call may opt out of the engine's background mode.
    let plain = engine
        .respond_with(
            Some(&root.id),
            vec![resptree::node::message_item("user", "quickly")],
            &RespondOptions::default().background(false),
        )
        .await
        .unwrap();

    let nodes: Vec<_> = children
        .into_iter()
        .chain(fanned)
        .map(Result::unwrap)
        .collect();
    assert_eq!(nodes.len(), 4);
    for text in [
        "Think slowly about Paris",
        "as a poet",
        "as a chemist",
        "once more",
    ] {
        for create in creates_of(&emu, text) {
            let body = create.body.unwrap();
            assert_eq!(body["background"], true, "{text}");
            assert_eq!(body["stream"], true, "{text}");
        }
    }
    let plain_body = creates_of(&emu, "quickly").pop().unwrap().body.unwrap();
    assert!(plain_body.get("background").is_none_or(|b| b == false));

    // Every node is the server's response, recorded once; nothing is left over.
    let api = client(&emu);
    for node in nodes.iter().chain([&root, &plain]) {
        let id = node.origin.response_id.as_ref().unwrap();
        assert_eq!(node.id.as_str(), id.as_str());
        let server = api.retrieve(id.as_str()).await.unwrap();
        assert_eq!(server.output_text(), node.output_text);
    }
    assert_eq!(emu.created_count(), 6);
    assert!(engine.tree().attempts().unwrap().is_empty());
    assert_eq!(engine.tree().len(), 6);
}

#[tokio::test]
async fn a_dropped_background_stream_resumes_after_the_last_event_without_repeating_deltas() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu).build().unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    // The create's stream is cut after 6 events, the first resume after 3 more.
    emu.inject_for(
        "/v1/responses",
        Fault::DropMidStream {
            after_events: 6,
            count: 1,
        },
    );
    emu.inject_for(
        "/v1/responses/",
        Fault::DropMidStream {
            after_events: 3,
            count: 1,
        },
    );

    let text = "Tell me a long story about a lighthouse keeper";
    let stream = engine.respond_stream(Some(&root.id), text, &background());
    let (started, deltas, node) = collect(stream).await;

    assert_eq!(
        started,
        [node.id.to_string()],
        "one response, announced once"
    );
    assert_eq!(
        deltas.concat(),
        node.output_text,
        "every delta exactly once, in order"
    );
    assert!(deltas.len() > 3, "the answer spans the cuts: {deltas:?}");
    assert_eq!(creates_of(&emu, text).len(), 1, "never re-sent");
    let resumed: Vec<_> = resumes(&emu)
        .into_iter()
        .map(|r| r.query.unwrap())
        .collect();
    assert_eq!(
        resumed,
        [
            "stream=true&starting_after=5",
            "stream=true&starting_after=8"
        ],
        "each resume starts after the last event received"
    );
    assert_eq!(emu.created_count(), 2);
    assert!(engine.tree().attempts().unwrap().is_empty());
}

#[tokio::test]
async fn a_non_streamed_background_call_resumes_too_and_gives_up_after_its_bound() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu).stream_resumes(1).build().unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    emu.inject_for(
        "/v1/responses",
        Fault::DropMidStream {
            after_events: 4,
            count: 1,
        },
    );
    let node = engine
        .respond_with(
            Some(&root.id),
            vec![resptree::node::message_item("user", "resume me")],
            &background(),
        )
        .await
        .unwrap();
    assert_eq!(resumes(&emu).len(), 1);
    assert!(node.output_text.contains("resume me"));

    // A server that keeps refusing the resume: the call stops resuming after
    // its bound and looks the response up instead (here: finished, so
    // recorded as a success; nothing is sent twice).
    emu.clear_requests();
    emu.inject_for(
        "/v1/responses",
        Fault::DropMidStream {
            after_events: 3,
            count: 1,
        },
    );
    emu.inject_for(
        "/v1/responses/",
        Fault::DropMidStream {
            after_events: 0,
            count: 100,
        },
    );
    let node = engine
        .respond_with(
            Some(&root.id),
            vec![resptree::node::message_item("user", "cut again")],
            &background(),
        )
        .await
        .unwrap();
    assert!(node.output_text.contains("cut again"));
    assert_eq!(creates_of(&emu, "cut again").len(), 1);
    assert!(engine.tree().attempts().unwrap().is_empty());
}

#[tokio::test]
async fn a_response_stuck_in_the_queue_is_cancelled_and_reissued_exactly_once() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu)
        .queued_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    emu.inject(Fault::HoldQueued { count: 1 });

    let stream = engine.respond_stream(Some(&root.id), "stuck at first", &background());
    let (started, deltas, node) = collect(stream).await;

    // Two responses were made: the stuck one (cancelled) and the re-issue
    // (recorded). The caller saw both ids, the second one last.
    let created = emu.created_responses();
    assert_eq!(created.len(), 3);
    let (stuck, reissued) = (&created[1], &created[2]);
    assert_eq!(started, [stuck.clone(), reissued.clone()]);
    assert_eq!(node.id.as_str(), reissued);
    assert_eq!(deltas.concat(), node.output_text);
    let api = client(&emu);
    assert_eq!(
        api.retrieve(stuck).await.unwrap().status.as_deref(),
        Some("cancelled")
    );
    let cancels: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/cancel"))
        .map(|r| r.path)
        .collect();
    assert_eq!(cancels, [format!("/v1/responses/{stuck}/cancel")]);
    assert_eq!(creates_of(&emu, "stuck at first").len(), 2);
    assert!(!engine.tree().contains(&NodeId::new(stuck).unwrap()));
    assert!(engine.tree().attempts().unwrap().is_empty());
}

#[tokio::test]
async fn a_queue_that_never_moves_ends_in_a_timeout_after_the_reissues() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu)
        .queued_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    let reissues = usize::try_from(resptree::engine::MAX_REISSUES).unwrap();
    emu.inject(Fault::HoldQueued {
        count: reissues + 1,
    });
    let err = engine
        .respond_with(
            Some(&root.id),
            vec![resptree::node::message_item("user", "never served")],
            &background(),
        )
        .await
        .unwrap_err();
    // The last one was cancelled too: nothing can come of it, so the attempt
    // is settled (no node, nothing for recover) and the caller gets the reason.
    assert!(
        matches!(err, Error::Timeout { .. } | Error::ResponseEnded { .. }),
        "{err:?}"
    );
    assert_eq!(creates_of(&emu, "never served").len(), reissues + 1);
    let api = client(&emu);
    for id in &emu.created_responses()[1..] {
        assert_eq!(
            api.retrieve(id).await.unwrap().status.as_deref(),
            Some("cancelled")
        );
    }
    assert_eq!(engine.tree().len(), 1);
    let report = engine.recover().await.unwrap();
    assert!(report.recovered.is_empty());
    assert!(engine.tree().attempts().unwrap().is_empty());
}

#[tokio::test]
async fn a_dropped_background_call_leaves_its_response_running_for_recover() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = builder(&emu).build().unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    emu.inject(Fault::Hold { count: 1 });

    let mut stream = engine.respond_stream(Some(&root.id), "outlive me", &background());
    let id = loop {
        if let StreamUpdate::Started(id) = stream.next().await.unwrap().unwrap() {
            break id;
        }
    };
    emu.wait_held(1).await;
    drop(stream);
    emu.release(1);

    // Not cancelled: the server finishes it.
    let done = client(&emu)
        .wait_until_done(
            id.as_str(),
            Polling::default().interval(Duration::from_millis(5)),
        )
        .await
        .unwrap();
    assert_eq!(done.status.as_deref(), Some("completed"));
    let attempts = engine.tree().attempts().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].response_id.as_ref(), Some(&id));

    // The dropped call's task ends on its own schedule; until it has, its
    // attempt is live and `recover` leaves it alone.
    let report = loop {
        let report = engine.recover().await.unwrap();
        if report.live.is_empty() {
            break report;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(report.recovered, [NodeId::from(&id)]);
    assert!(report.is_clean());
    let node = engine.tree().get(&NodeId::from(&id)).unwrap();
    assert_eq!(node.output_text, done.output_text());
    assert_eq!(node.parent.as_ref(), Some(&root.id));
    assert_eq!(emu.created_count(), 2);
    assert!(engine.tree().attempts().unwrap().is_empty());
}

#[tokio::test]
async fn background_mode_is_refused_where_it_cannot_work() {
    let emu = Emulator::spawn().await.unwrap();
    let chat = Engine::builder(ResponseTree::in_memory(), ChatBackend::new(client(&emu)))
        .background(true)
        .build()
        .unwrap();
    let err = chat.respond(None, "hi").await.unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");

    let engine = builder(&emu).build().unwrap();
    let err = engine
        .respond_with(
            None,
            vec![resptree::node::message_item("user", "hi")],
            &background().store(false),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("background"), "{err}");
    assert_eq!(emu.requests().len(), 0, "refused before anything was sent");
    assert!(engine.tree().attempts().unwrap().is_empty());
}

#[tokio::test]
async fn a_long_request_renews_its_lease_until_it_completes() {
    let emu = Emulator::spawn().await.unwrap();
    let lease = Duration::from_millis(1500);
    let engine = builder(&emu).attempt_lease(lease).build().unwrap();
    let root = engine.respond(None, "root").await.unwrap();
    emu.inject(Fault::Hold { count: 1 });

    let call = {
        let engine = engine.clone();
        let root = root.id.clone();
        tokio::spawn(async move {
            engine
                .respond_with(
                    Some(&root),
                    vec![resptree::node::message_item("user", "a long answer")],
                    &background(),
                )
                .await
        })
    };
    emu.wait_held(1).await;
    let lease_of = || {
        let attempts = engine.tree().attempts().unwrap();
        assert_eq!(attempts.len(), 1);
        attempts[0].owner.clone().unwrap().lease_until
    };
    // Wait (on the clock, not a sleep of a guessed length) until the lease the
    // attempt was first journaled with has run out...
    let first = lease_of();
    let mut renewals = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while Timestamp::now() <= first || renewals.len() < 3 {
            let now = lease_of();
            if renewals.last().is_none_or(|last| now > *last) && now > first {
                renewals.push(now);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the lease was never renewed");
    // ...while the request still runs: the journal shows a lease that runs,
    // so another process's recover on a shared store would leave it alone
    // (`reliability_recovery` checks that it does for a running lease).
    let owner = engine.tree().attempts().unwrap()[0].owner.clone().unwrap();
    assert!(owner.is_this_process());
    assert!(owner.is_live_at(Timestamp::now()), "{owner:?}");
    assert!(renewals.windows(2).all(|w| w[0] < w[1]));

    emu.release(1);
    let node = call.await.unwrap().unwrap();
    assert!(node.output_text.contains("a long answer"));
    // The heartbeat stopped before the commit: nothing was put back.
    assert!(engine.tree().attempts().unwrap().is_empty());
}
