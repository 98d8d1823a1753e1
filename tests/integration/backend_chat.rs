//! The Chat Completions backend against the emulator: native `n` fan-out, path

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! replay, streaming demultiplexing, mixed-backend trees and error mapping.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use resptree::backend::{ChatBackend, ResponsesBackend};
use resptree::client::{ChatRequest, Client};
use resptree::emulator::{Emulator, Fault};
use resptree::engine::{FanOutUpdate, RespondOptions, StreamUpdate, UsageScope};
use resptree::node::item_text;
use resptree::{Engine, Error, Node, NodeStatus, ResponseTree};
use serde_json::{Value, json};

const MODEL: &str = "gpt-4o-mini";

fn client(emu: &Emulator, retries: u32) -> Client {
    Client::builder()
        .base_url(emu.base_url())
        .api_key("sk-test-chat")
        .max_retries(retries)
        .retry_base_delay(Duration::from_millis(1))
        .build()
        .unwrap()
}

fn chat_engine(emu: &Emulator, tree: impl Into<Arc<ResponseTree>>, retries: u32) -> Engine {
    Engine::builder(tree, ChatBackend::new(client(emu, retries)))
        .model(MODEL)
        .build()
        .unwrap()
}

fn responses_engine(emu: &Emulator, tree: impl Into<Arc<ResponseTree>>, retries: u32) -> Engine {
    Engine::builder(tree, ResponsesBackend::new(client(emu, retries)))
        .model(MODEL)
        .build()
        .unwrap()
}

/// The bodies of the POST requests to `path` the emulator saw, oldest first.
fn posts(emu: &Emulator, path: &str) -> Vec<Value> {
    emu.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .filter_map(|r| r.body)
        .collect()
}

fn chat_posts(emu: &Emulator) -> Vec<Value> {
    posts(emu, "/v1/chat/completions")
}

/// `(role, text)` of each chat message of a request body.
fn roles_and_texts(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `(role, text)` of transcript items as the chat backend should send them.
fn expected_messages(items: &[Value]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|item| (item["role"].as_str().unwrap().to_owned(), item_text(item)))
        .collect()
}

fn ok_nodes(results: Vec<resptree::Result<Node>>) -> Vec<Node> {
    results.into_iter().map(Result::unwrap).collect()
}

#[tokio::test]
async fn fan_out_is_one_request_and_n_sibling_nodes() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = chat_engine(&emu, ResponseTree::in_memory(), 0);
    let root = engine
        .respond(None, "One free evening in Paris")
        .await
        .unwrap();
    emu.clear_requests();
    // Scripted choices (in index order), so the test does not lean on the
    // emulator's own numbering of its takes.
    let plans = [
        "Jazz in the Marais.",
        "A Seine cruise.",
        "Montmartre at dusk.",
    ];
    emu.script_replies(plans);

    let nodes = ok_nodes(
        engine
            .fan_out(Some(&root.id), "Suggest a plan", 3)
            .await
            .unwrap(),
    );

    let bodies = chat_posts(&emu);
    assert_eq!(bodies.len(), 1, "one HTTP request for three choices");
    assert_eq!(emu.requests().len(), 1);
    assert_eq!(bodies[0]["n"], 3);
    assert_eq!(nodes.len(), 3);
    let mut children = engine.tree().children(&root.id).unwrap();
    children.sort();
    let mut ids: Vec<_> = nodes.iter().map(|n| n.id.clone()).collect();
    ids.sort();
    assert_eq!(children, ids);
    let group = nodes[0].usage.shared_input_group.clone();
    assert!(group.is_some());
    for (i, node) in nodes.iter().enumerate() {
        assert!(node.id.as_str().starts_with("node_"), "{}", node.id);
        assert_eq!(node.parent.as_ref(), Some(&root.id));
        assert_eq!(node.origin.backend, "chat");
        assert_eq!(node.origin.response_id, None);
        assert!(!node.origin.stored);
        assert!(node.origin.replayed);
        assert_eq!(node.origin.expires_at, None);
        assert_eq!(node.model.as_deref(), Some(MODEL));
        assert_eq!(node.status, NodeStatus::Completed);
        assert_eq!(node.usage.shared_input_group, group);
        assert_eq!(node.usage.input_tokens, nodes[0].usage.input_tokens);
        // Choice i became node i.
        assert_eq!(node.output_text, plans[i]);
        assert_eq!(engine.tree().get(&node.id).unwrap(), *node);
    }
    // The prompt is counted once for the group.
    let totals = engine.usage(&root.id, UsageScope::Subtree).await.unwrap();
    assert_eq!(totals.nodes, 4);
    assert_eq!(
        totals.input_tokens,
        root.usage.input_tokens + nodes[0].usage.input_tokens
    );
    assert_eq!(
        totals.output_tokens,
        root.usage.output_tokens + nodes.iter().map(|n| n.usage.output_tokens).sum::<u64>()
    );
}

#[tokio::test]
async fn split_output_tokens_add_up_to_the_servers_count() {
    let emu = Emulator::spawn().await.unwrap();
    let texts = [
        "Short.",
        "A much longer answer that goes on and on about the Seine at night.",
        "Medium length answer here.",
    ];
    // The same request made directly tells us what the server reports in total.
    emu.script_replies(texts);
    let direct = client(&emu, 0)
        .chat(&ChatRequest::new(MODEL, vec![json!({"role": "user", "content": "Plan"})]).n(3))
        .await
        .unwrap();
    let usage = direct.usage.unwrap();

    let engine = chat_engine(&emu, ResponseTree::in_memory(), 0);
    emu.script_replies(texts);
    let nodes = ok_nodes(engine.fan_out(None, "Plan", 3).await.unwrap());
    let outputs: Vec<u64> = nodes.iter().map(|n| n.usage.output_tokens).collect();
    assert_eq!(outputs.iter().sum::<u64>(), usage.completion_tokens);
    assert!(
        outputs[1] > outputs[2] && outputs[2] > outputs[0],
        "{outputs:?}"
    );
    for node in &nodes {
        assert_eq!(node.usage.input_tokens, usage.prompt_tokens);
        assert_eq!(
            node.usage.total_tokens,
            node.usage.input_tokens + node.usage.output_tokens
        );
    }
    let texts_back: Vec<&str> = nodes.iter().map(|n| n.output_text.as_str()).collect();
    assert_eq!(texts_back, texts);
}

#[tokio::test]
async fn replayed_messages_equal_the_transcript() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = chat_engine(&emu, ResponseTree::in_memory(), 0);
    let root = engine
        .respond_with(
            None,
            vec![json!({"role": "user", "content": [{"type": "input_text", "text": "Plan a weekend"}]})],
            &RespondOptions::default().instructions("You are a travel planner."),
        )
        .await
        .unwrap();
    let child = engine
        .respond(Some(&root.id), "More museums")
        .await
        .unwrap();
    let grandchild = engine.respond(Some(&child.id), "And food?").await.unwrap();

    let bodies = chat_posts(&emu);
    assert_eq!(bodies.len(), 3);
    let system = ("system".to_owned(), "You are a travel planner.".to_owned());
    for (body, node) in bodies.iter().zip([&root, &child, &grandchild]) {
        // What was sent: the instructions, the parent's transcript, the new input.
        let mut items = match &node.parent {
            Some(parent) => engine.tree().transcript(parent).unwrap(),
            None => Vec::new(),
        };
        items.extend(node.input.iter().cloned());
        let mut expected = vec![system.clone()];
        expected.extend(expected_messages(&items));
        assert_eq!(roles_and_texts(body), expected);
        assert_eq!(body["model"], MODEL);
        assert!(body.get("n").is_none());
        assert_eq!(
            node.instructions.as_deref(),
            Some("You are a travel planner.")
        );
    }
    // The grandchild's request saw 6 messages: system + 2 per ancestor + new input.
    assert_eq!(roles_and_texts(&bodies[2]).len(), 6);
    assert_eq!(roles_and_texts(&bodies[2])[2].1, root.output_text);
    assert_eq!(roles_and_texts(&bodies[2])[4].1, child.output_text);
}

#[tokio::test]
async fn branch_sends_one_request_per_input() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = chat_engine(&emu, ResponseTree::in_memory(), 0);
    let root = engine.respond(None, "Plan a weekend").await.unwrap();
    emu.clear_requests();
    let styles = ["Reply formally.", "Reply as a buddy."];
    let nodes = ok_nodes(engine.branch(&root.id, styles).await.unwrap());
    let bodies = chat_posts(&emu);
    assert_eq!(bodies.len(), 2);
    let mut last_user: Vec<String> = bodies
        .iter()
        .map(|b| roles_and_texts(b).last().unwrap().1.clone())
        .collect();
    last_user.sort();
    let mut sorted = styles;
    sorted.sort_unstable();
    assert_eq!(last_user, sorted);
    for (node, style) in nodes.iter().zip(styles) {
        assert_eq!(node.user_text().as_deref(), Some(style));
        assert_eq!(node.usage.shared_input_group, None);
        assert_eq!(node.parent.as_ref(), Some(&root.id));
    }
}

#[tokio::test]
async fn one_tree_mixes_backends() {
    let emu = Emulator::spawn().await.unwrap();
    let tree = Arc::new(ResponseTree::in_memory());
    let responses = responses_engine(&emu, Arc::clone(&tree), 0);
    let chat = chat_engine(&emu, Arc::clone(&tree), 0);

    let root = responses
        .respond(None, "Plan a weekend in Paris")
        .await
        .unwrap();
    let on_chat = chat.respond(Some(&root.id), "Now in French").await.unwrap();
    let back = responses
        .respond(Some(&on_chat.id), "Shorter please")
        .await
        .unwrap();

    assert_eq!(root.origin.backend, "responses");
    assert!(root.id.as_str().starts_with("resp_"));
    assert_eq!(on_chat.origin.backend, "chat");
    assert!(on_chat.origin.replayed);
    assert_eq!(on_chat.parent.as_ref(), Some(&root.id));
    assert_eq!(back.origin.backend, "responses");
    assert_eq!(back.parent.as_ref(), Some(&on_chat.id));
    // The chat node has no server copy, so the Responses API gets the path replayed.
    assert!(back.origin.replayed);
    assert_eq!(back.origin.previous_response_id, None);
    for node in [&root, &on_chat, &back] {
        let stored = tree.get(&node.id).unwrap();
        assert_eq!(stored.model.as_deref(), Some(MODEL));
        assert_eq!(stored.origin.backend, node.origin.backend);
    }

    // The chat request replayed the Responses root; the last Responses request
    // replayed both, the chat node's output included.
    let chat_body = &chat_posts(&emu)[0];
    let mut items = tree.transcript(&root.id).unwrap();
    items.extend(on_chat.input.iter().cloned());
    assert_eq!(roles_and_texts(chat_body), expected_messages(&items));
    let last = posts(&emu, "/v1/responses").pop().unwrap();
    assert!(last.get("previous_response_id").is_none_or(Value::is_null));
    let input = last["input"].as_array().unwrap();
    let mut expected = tree.transcript(&on_chat.id).unwrap();
    expected.extend(back.input.iter().cloned());
    assert_eq!(input.len(), expected.len());
    assert_eq!(item_text(&input[3]), on_chat.output_text);
    assert_eq!(input[3]["role"], "assistant");
}

#[tokio::test]
async fn streamed_fan_out_demultiplexes_choices() {
    let emu = Emulator::builder()
        .token_delay(Duration::from_millis(1))
        .spawn()
        .await
        .unwrap();
    let engine = chat_engine(&emu, ResponseTree::in_memory(), 0);
    let texts = [
        "Louvre in the morning, then a long walk along the Seine to Notre-Dame.",
        "Musée d'Orsay, a crêpe, and a boat on the river at dusk.",
        "Montmartre at sunset and dinner in the Marais.",
    ];
    emu.script_replies(texts);
    let mut stream = engine.fan_out_stream(None, "Plan an evening", 3, &RespondOptions::default());
    let mut received: BTreeMap<usize, String> = BTreeMap::new();
    let mut deltas = 0;
    let mut committed = None;
    while let Some(update) = stream.next().await {
        match update.unwrap() {
            FanOutUpdate::Delta { index, text } => {
                assert!(committed.is_none(), "deltas come before the commit");
                deltas += 1;
                received.entry(index).or_default().push_str(&text);
            }
            FanOutUpdate::Committed(nodes) => committed = Some(nodes),
            other => panic!("unexpected update {other:?}"),
        }
    }
    let nodes = committed.unwrap();
    assert!(deltas > 3, "text arrived in pieces: {deltas}");
    assert_eq!(received.len(), 3);
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(node.output_text, texts[i]);
        assert_eq!(received[&i], texts[i]);
        assert_eq!(engine.tree().get(&node.id).unwrap(), *node);
        assert!(node.usage.shared_input_group.is_some());
        assert!(node.usage.output_tokens > 0);
    }
    let bodies = chat_posts(&emu);
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["n"], 3);
    assert_eq!(bodies[0]["stream"], true);
    assert_eq!(bodies[0]["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn streamed_single_response_on_chat() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = chat_engine(&emu, ResponseTree::in_memory(), 0);
    let mut stream = engine.respond_stream(None, "Hello", &RespondOptions::default());
    let mut text = String::new();
    let mut node = None;
    while let Some(update) = stream.next().await {
        match update.unwrap() {
            StreamUpdate::Delta(piece) => text.push_str(&piece),
            StreamUpdate::Committed(n) => node = Some(n),
            StreamUpdate::Started(id) => panic!("chat has no server ids, got {id}"),
            other => panic!("unexpected update {other:?}"),
        }
    }
    let node = node.unwrap();
    assert_eq!(node.output_text, text);
    assert!(node.usage.input_tokens > 0 && node.usage.output_tokens > 0);
    assert_eq!(node.origin.backend, "chat");
    assert_eq!(engine.tree().len(), 1);
}

#[tokio::test]
async fn a_stream_cut_mid_way_commits_nothing() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = chat_engine(&emu, ResponseTree::in_memory(), 0);
    emu.inject(Fault::DropMidStream {
        after_events: 4,
        count: 1,
    });
    let mut stream = engine.fan_out_stream(None, "Plan", 2, &RespondOptions::default());
    let mut error = None;
    while let Some(update) = stream.next().await {
        if let Err(e) = update {
            error = Some(e);
        }
    }
    assert!(error.is_some());
    assert!(engine.tree().is_empty());
}

#[tokio::test]
async fn http_errors_map_to_the_same_typed_errors_as_responses() {
    let emu = Emulator::spawn().await.unwrap();
    let chat = chat_engine(&emu, ResponseTree::in_memory(), 0);
    let responses = responses_engine(&emu, ResponseTree::in_memory(), 0);

    let faults = [
        Fault::Status {
            status: 500,
            count: 1,
        },
        Fault::Status {
            status: 400,
            count: 1,
        },
        Fault::RateLimit {
            retry_after: Some(Duration::from_millis(5)),
            use_ms_header: true,
            count: 1,
        },
    ];
    for fault in faults {
        emu.inject(fault.clone());
        let from_chat = chat.fan_out(None, "Plan", 2).await.unwrap_err();
        emu.inject(fault.clone());
        let from_responses = responses.respond(None, "Plan").await.unwrap_err();
        assert_eq!(
            std::mem::discriminant(&from_chat),
            std::mem::discriminant(&from_responses),
            "{fault:?}: {from_chat:?} vs {from_responses:?}"
        );
        assert_eq!(from_chat.status(), from_responses.status(), "{fault:?}");
        assert_eq!(
            from_chat.is_rate_limited(),
            from_responses.is_rate_limited()
        );
    }
    let rate_limited = {
        emu.inject(Fault::RateLimit {
            retry_after: None,
            use_ms_header: false,
            count: 1,
        });
        chat.respond(None, "Plan").await.unwrap_err()
    };
    assert!(matches!(rate_limited, Error::RateLimited(_)));
    assert!(chat.tree().is_empty(), "a failed request leaves no node");
}

#[tokio::test]
async fn retries_recover_a_transient_failure() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = chat_engine(&emu, ResponseTree::in_memory(), 2);
    emu.inject(Fault::Status {
        status: 503,
        count: 1,
    });
    let nodes = ok_nodes(engine.fan_out(None, "Plan", 2).await.unwrap());
    assert_eq!(nodes.len(), 2);
    assert_eq!(chat_posts(&emu).len(), 2, "the failed try and its retry");
}

#[tokio::test]
async fn bad_n_is_a_config_error_and_sends_nothing() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = chat_engine(&emu, ResponseTree::in_memory(), 0);
    let err = engine.fan_out(None, "Plan", 129).await.unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(emu.requests().is_empty());
    assert!(engine.tree().is_empty());
}

#[tokio::test]
async fn native_fan_out_bills_the_prompt_once() {
    // The comparison from the README: n choices in one chat request versus n
    // Responses requests under the same parent.
    let emu = Emulator::spawn().await.unwrap();
    let chat = chat_engine(&emu, ResponseTree::in_memory(), 0);
    let responses = responses_engine(&emu, ResponseTree::in_memory(), 0);
    let question = "We have one free evening in Paris. Suggest a plan.";
    let chat_nodes = ok_nodes(chat.fan_out(None, question, 5).await.unwrap());
    let resp_nodes = ok_nodes(responses.fan_out(None, question, 5).await.unwrap());
    let billed = |nodes: &[Node]| -> u64 {
        let mut groups = std::collections::HashSet::new();
        nodes
            .iter()
            .filter(|n| {
                n.usage
                    .shared_input_group
                    .as_ref()
                    .is_none_or(|g| groups.insert(g.clone()))
            })
            .map(|n| n.usage.input_tokens)
            .sum()
    };
    let one_prompt = chat_nodes[0].usage.input_tokens;
    assert_eq!(billed(&chat_nodes), one_prompt);
    assert_eq!(billed(&resp_nodes), 5 * resp_nodes[0].usage.input_tokens);
    assert!(billed(&chat_nodes) < billed(&resp_nodes));
    assert_eq!(chat.requests_made(), 1);
    assert_eq!(responses.requests_made(), 5);
}

/// Runs an example offline on the Chat backend and returns its stdout.
fn run_example_on_chat(name: &str) -> String {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--all-features", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env("RESPTREE_BACKEND", "chat")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} failed:\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("Chat Completions"), "{stderr}");
    stdout
}

#[test]
fn examples_run_on_the_chat_backend() {
    let paris = run_example_on_chat("paris");
    assert!(paris.contains("Reply as a funny travel buddy."), "{paris}");
    assert!(paris.contains("requests made: 3"), "{paris}");
    // Five alternatives in one request: question + fan-out + continuation.
    let fan_out = run_example_on_chat("fan_out");
    assert!(fan_out.contains("[best]"), "{fan_out}");
    assert!(fan_out.contains("requests made: 3"), "{fan_out}");
}

#[tokio::test]
async fn a_backend_chosen_at_run_time_drives_the_engine() {
    let emu = Emulator::spawn().await.unwrap();
    let backend: Arc<dyn resptree::backend::Backend> = Arc::new(ChatBackend::new(client(&emu, 0)));
    let engine = Engine::builder(ResponseTree::in_memory(), backend)
        .model(MODEL)
        .build()
        .unwrap();
    assert_eq!(engine.backend().name(), "chat");
    assert!(engine.backend().has_native_fan_out());
    let nodes = ok_nodes(engine.fan_out(None, "Plan", 2).await.unwrap());
    assert_eq!(nodes.len(), 2);
    assert_eq!(chat_posts(&emu).len(), 1);
}

#[tokio::test]
async fn streamed_fan_out_needs_native_fan_out() {
    let emu = Emulator::spawn().await.unwrap();
    let responses = responses_engine(&emu, ResponseTree::in_memory(), 0);
    let updates: Vec<_> = responses
        .fan_out_stream(None, "Plan", 2, &RespondOptions::default())
        .collect()
        .await;
    assert_eq!(updates.len(), 1);
    assert!(
        matches!(updates[0], Err(Error::Unsupported(_))),
        "{updates:?}"
    );
    assert!(emu.requests().is_empty());

    let chat = chat_engine(&emu, ResponseTree::in_memory(), 0);
    let updates: Vec<_> = chat
        .fan_out_stream(None, "Plan", 0, &RespondOptions::default())
        .collect()
        .await;
    assert!(
        matches!(&updates[..], [Ok(FanOutUpdate::Committed(nodes))] if nodes.is_empty()),
        "{updates:?}"
    );
    assert!(emu.requests().is_empty());
}

/// An emulator that answers at most one choice, like a local server that ignores `n`.
async fn one_choice_emulator() -> Emulator {
    Emulator::builder()
        .max_chat_choices(1)
        .spawn()
        .await
        .unwrap()
}

fn short_parts(err: &Error) -> (usize, usize, usize) {
    match err {
        Error::FanOutShort {
            asked,
            received,
            replies,
        } => (*asked, *received, replies.len()),
        other => panic!("expected FanOutShort, got {other:?}"),
    }
}

#[tokio::test]
async fn fewer_choices_than_n_is_an_error_that_keeps_what_arrived() {
    use resptree::backend::{Backend, BackendRequest};

    let emu = one_choice_emulator().await;
    let backend = ChatBackend::new(client(&emu, 0));
    let request = BackendRequest::new(
        MODEL,
        vec![json!({"role": "user", "content": "Suggest a plan"})],
    );

    let mut err = backend.respond_n(request.clone(), 3).await.unwrap_err();
    assert!(err.is_fan_out_short());
    assert_eq!(short_parts(&err), (3, 1, 1));
    assert_eq!(
        err.to_string(),
        "fan-out asked for 3 choices, the server returned 1"
    );
    let kept = err.take_partial_replies();
    assert_eq!(kept.len(), 1);
    assert!(!kept[0].output_text.is_empty());
    assert_eq!(
        short_parts(&err),
        (3, 1, 0),
        "the counts stay for the report"
    );

    // Streamed: the same error, after the arrived choice's deltas were sent.
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let err = backend
        .respond_n_stream(request.clone(), 3, events)
        .await
        .unwrap_err();
    assert_eq!(short_parts(&err), (3, 1, 1));
    let mut indices = Vec::new();
    while let Some((index, _)) = received.recv().await {
        indices.push(index);
    }
    assert!(!indices.is_empty() && indices.iter().all(|&i| i == 0));

    // One choice asked, one received: nothing is wrong.
    assert!(backend.respond(request).await.is_ok());
    assert_eq!(chat_posts(&emu).len(), 3, "one request each, no retries");
}

#[tokio::test]
async fn engine_fan_out_never_silently_returns_fewer_siblings() {
    let emu = one_choice_emulator().await;
    let engine = chat_engine(&emu, ResponseTree::in_memory(), 0);

    let err = engine.fan_out(None, "Plan", 4).await.unwrap_err();
    let (asked, received, _) = short_parts(&err);
    assert_eq!((asked, received), (4, 1));
    // The one choice that came back is recorded, and its attempt settled.
    assert_eq!(engine.tree().roots().len(), 1);
    assert!(engine.tree().attempts().unwrap().is_empty());

    let updates: Vec<_> = engine
        .fan_out_stream(None, "Plan", 4, &RespondOptions::default())
        .collect()
        .await;
    let last = updates.last().unwrap().as_ref().unwrap_err();
    let (asked, received, _) = short_parts(last);
    assert_eq!((asked, received), (4, 1));
    assert!(
        !updates
            .iter()
            .any(|u| matches!(u, Ok(FanOutUpdate::Committed(_)))),
        "a short fan-out never reports success"
    );
    assert_eq!(
        engine.tree().roots().len(),
        2,
        "the streamed choice is kept too"
    );
    assert!(engine.tree().attempts().unwrap().is_empty());
    assert_eq!(chat_posts(&emu).len(), 2);
}
