//! The emulator's background mode (`background: true`), cancel, stream replay with
//! `starting_after`, and the faults that cut a connection after the response was
//! created — over plain HTTP, independent of resptree's client.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::StreamExt;
use resptree::emulator::{Emulator, Fault};
use serde_json::{Value, json};

use crate::emulator_support::*;

fn background_body(input: &str) -> Value {
    json!({"model": "gpt-4o-mini", "input": input, "background": true})
}

/// The events of an SSE body, checking `event:` = `type`.
fn events(body: &str) -> Vec<Value> {
    sse_blocks(body)
        .into_iter()
        .map(|b| {
            let data: Value = serde_json::from_str(&b.data).unwrap();
            assert_eq!(b.event.as_deref(), data["type"].as_str());
            data
        })
        .collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn sequence_numbers(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["sequence_number"].as_u64().unwrap())
        .collect()
}

async fn stream_of(base: &str, id: &str, query: &str) -> Reply {
    get(base, &format!("/responses/{id}?stream=true{query}")).await
}

/// Reads SSE blocks from a streamed reply until `n` events arrived.
async fn read_events<B: AsRef<[u8]>>(
    body: &mut (impl futures_util::Stream<Item = reqwest::Result<B>> + Unpin),
    buffer: &mut String,
    n: usize,
) -> Vec<Value> {
    while buffer.matches("\n\n").count() < n {
        let chunk = body.next().await.expect("stream ended early").unwrap();
        buffer.push_str(std::str::from_utf8(chunk.as_ref()).unwrap());
    }
    let cut = buffer.match_indices("\n\n").nth(n - 1).unwrap().0 + 2;
    let head: String = buffer.drain(..cut).collect();
    events(&head)
}

#[tokio::test]
async fn a_background_response_is_queued_then_runs_then_completes() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject(Fault::Hold { count: 1 });

    let queued = create(&base, background_body("Plan a weekend in Paris")).await;
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["background"], true);
    assert_eq!(queued["output"], json!([]));
    assert!(queued["usage"].is_null());
    let id = queued["id"].as_str().unwrap();
    assert!(is_id(id, "resp_"), "{id}");
    // Counted as created from the moment it is queued.
    assert_eq!(emu.created_responses(), [id]);

    emu.wait_held(1).await;
    let running = get(&base, &format!("/responses/{id}")).await.json();
    assert_eq!(running["status"], "in_progress");

    emu.release(1);
    let body = stream_of(&base, id, "").await;
    assert_eq!(body.status, 200);
    assert!(
        body.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let all = events(&body.text);
    let kinds = types(&all);
    assert_eq!(
        kinds[..4],
        [
            "response.created",
            "response.queued",
            "response.in_progress",
            "response.output_item.added"
        ]
    );
    assert_eq!(kinds.last(), Some(&"response.completed"));
    assert_eq!(all[0]["response"]["status"], "queued");
    assert_eq!(all[2]["response"]["status"], "in_progress");
    assert_eq!(
        sequence_numbers(&all),
        (0..all.len() as u64).collect::<Vec<_>>()
    );

    let done = get(&base, &format!("/responses/{id}")).await.json();
    assert_eq!(done["status"], "completed");
    assert!(done["completed_at"].is_i64());
    assert!(done["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert!(output_text(&done).contains("Plan a weekend in Paris"));
    assert_eq!(all.last().unwrap()["response"], done);
    // A completed background response can be continued like any other.
    let child = create(
        &base,
        json!({"model": "gpt-4o-mini", "input": "Cheaper", "previous_response_id": id}),
    )
    .await;
    assert!(output_text(&child).starts_with("[ctx 3 msgs]"));
    assert_eq!(emu.created_count(), 2);
}

#[tokio::test]
async fn a_stream_resumes_after_any_sequence_number_and_follows_live_events() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject(Fault::Hold { count: 1 });

    // Streamed background create: the opening events arrive, then it waits at
    // the hold; the rest arrives live once it is released.
    let reply = reqwest::Client::new()
        .post(format!("{base}/responses"))
        .json(&json!({"model": "gpt-4o-mini", "input": "Plan", "background": true, "stream": true}))
        .send()
        .await
        .unwrap();
    let mut body = reply.bytes_stream();
    let mut buffer = String::new();
    let opening = read_events(&mut body, &mut buffer, 3).await;
    assert_eq!(
        types(&opening),
        [
            "response.created",
            "response.queued",
            "response.in_progress"
        ]
    );
    let id = opening[0]["response"]["id"].as_str().unwrap().to_owned();
    emu.wait_held(1).await;
    emu.release(1);
    let mut rest = String::new();
    while let Some(chunk) = body.next().await {
        rest.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    rest.insert_str(0, &buffer);
    let live: Vec<Value> = opening.into_iter().chain(events(&rest)).collect();
    assert_eq!(types(&live).last(), Some(&"response.completed"));

    // Replays: everything, then the events after 3, after the last one, and far beyond.
    let replay = events(&stream_of(&base, &id, "").await.text);
    assert_eq!(replay, live);
    let after3 = events(&stream_of(&base, &id, "&starting_after=3").await.text);
    assert_eq!(after3, live[4..]);
    let last = live.len() - 1;
    let nothing = stream_of(&base, &id, &format!("&starting_after={last}")).await;
    assert_eq!((nothing.status, nothing.text.as_str()), (200, ""));
    let beyond = stream_of(&base, &id, "&starting_after=100000").await;
    assert_eq!((beyond.status, beyond.text.as_str()), (200, ""));
}

#[tokio::test]
async fn cancel_stops_a_running_response_and_is_idempotent() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject(Fault::Hold { count: 1 });
    let id = create(&base, background_body("Long task")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.wait_held(1).await;

    let cancelled = post(&base, &format!("/responses/{id}/cancel"), &json!({})).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    let cancelled = cancelled.json();
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["usage"].is_null());
    let again = post(&base, &format!("/responses/{id}/cancel"), &json!({}))
        .await
        .json();
    assert_eq!(again, cancelled);
    assert_eq!(
        get(&base, &format!("/responses/{id}")).await.json()["status"],
        "cancelled"
    );
    // Its stream ends after the events it produced, with no terminal event.
    let replay = events(&stream_of(&base, &id, "").await.text);
    assert_eq!(types(&replay).last(), Some(&"response.in_progress"));
    // Nothing was stored: it cannot be continued.
    let child = post(
        &base,
        "/responses",
        &json!({"model": "m", "input": "x", "previous_response_id": id}),
    )
    .await;
    assert_eq!(child.status, 400);
    assert_eq!(child.error()["code"], "previous_response_not_found");
}

#[tokio::test]
async fn cancel_answers_like_the_real_api_for_other_responses() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();

    let plain = create(&base, json!({"model": "m", "input": "hi"})).await;
    let reply = post(
        &base,
        &format!("/responses/{}/cancel", plain["id"].as_str().unwrap()),
        &json!({}),
    )
    .await;
    assert_eq!(reply.status, 400);
    let error = reply.error();
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(
        error["message"],
        "Responses can only be cancelled if they were created with background=true."
    );

    let unknown = post(&base, "/responses/resp_nope/cancel", &json!({})).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.error()["message"],
        "Response with id 'resp_nope' not found."
    );

    // Already finished: 200, the object unchanged.
    let id = create(&base, background_body("quick")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let finished = events(&stream_of(&base, &id, "").await.text);
    let completed = finished.last().unwrap()["response"].clone();
    assert_eq!(completed["status"], "completed");
    let reply = post(&base, &format!("/responses/{id}/cancel"), &json!({})).await;
    assert_eq!((reply.status, reply.json()), (200, completed));
}

#[tokio::test]
async fn bad_background_requests_are_refused() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();

    let reply = post(
        &base,
        "/responses",
        &json!({"model": "m", "input": "hi", "background": true, "store": false}),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error()["param"], "background");
    assert_eq!(emu.created_count(), 0);

    // Only background responses can be streamed again: the real API's 400
    // (message, param and code as it sends them); an unknown id is a 404.
    let plain = create(&base, json!({"model": "m", "input": "hi"})).await;
    let plain_id = plain["id"].as_str().unwrap();
    let refused = stream_of(&base, plain_id, "").await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.error(),
        json!({
            "message": "This response cannot be streamed because it was not created with background=true.",
            "type": "invalid_request_error",
            "param": "stream",
            "code": "invalid_request_error",
        })
    );
    assert_eq!(stream_of(&base, "resp_nope", "").await.status, 404);

    let id = create(&base, background_body("hi")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bad = stream_of(&base, &id, "&starting_after=-1").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error()["param"], "starting_after");
}

#[tokio::test]
async fn hold_queued_keeps_a_background_response_queued() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject(Fault::HoldQueued { count: 1 });
    let id = create(&base, background_body("wait")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.wait_held(1).await;
    assert_eq!(
        get(&base, &format!("/responses/{id}")).await.json()["status"],
        "queued"
    );
    emu.release(1);
    let all = events(&stream_of(&base, &id, "").await.text);
    assert_eq!(types(&all).last(), Some(&"response.completed"));
}

/// The input of a background response is known from its creation on: recovery
/// reads `input_items` of a response that is still queued or running (the
/// real API answers it then too), and a 404 there would drop what the server
/// is still making.
#[tokio::test]
async fn input_items_of_a_queued_background_response_are_its_input() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject(Fault::HoldQueued { count: 1 });
    let id = create(&base, background_body("still queued")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.wait_held(1).await;
    let items = get(&base, &format!("/responses/{id}/input_items")).await;
    assert_eq!(items.status, 200);
    let data = items.json()["data"].clone();
    assert_eq!(data.as_array().unwrap().len(), 1, "{data}");
    assert!(data.to_string().contains("still queued"), "{data}");
    // The same items once it is stored.
    emu.release(1);
    let all = events(&stream_of(&base, &id, "").await.text);
    assert_eq!(types(&all).last(), Some(&"response.completed"));
    let stored = get(&base, &format!("/responses/{id}/input_items")).await;
    assert_eq!(stored.json()["data"], data);
    // An unknown id is still a 404.
    assert_eq!(
        get(&base, "/responses/resp_nowhere/input_items")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn drop_after_create_leaves_a_completed_response_the_client_never_saw() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();

    // Not streamed: no reply at all, yet the response exists.
    emu.inject(Fault::DropAfterCreate { count: 1 });
    let sent = reqwest::Client::new()
        .post(format!("{base}/responses"))
        .json(&json!({"model": "m", "input": "lost reply"}))
        .send()
        .await;
    assert!(sent.is_err(), "the connection must die before any reply");
    let created = emu.created_responses();
    assert_eq!(created.len(), 1);
    let stored = get(&base, &format!("/responses/{}", created[0])).await;
    assert_eq!(stored.status, 200);
    assert_eq!(stored.json()["status"], "completed");
    let record = emu.requests().remove(0);
    assert_eq!(record.status, 0);
    assert_eq!(record.fault, Some(Fault::DropAfterCreate { count: 1 }));

    // Streamed: `response.created`, then the cut; it completes on the server.
    emu.inject(Fault::DropAfterCreate { count: 1 });
    let reply = reqwest::Client::new()
        .post(format!("{base}/responses"))
        .json(&json!({"model": "m", "input": "lost stream", "stream": true}))
        .send()
        .await
        .unwrap();
    let mut body = reply.bytes_stream();
    let mut text = String::new();
    let mut cut = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => text.push_str(std::str::from_utf8(&chunk).unwrap()),
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    assert!(cut, "the stream must be cut, not ended: {text}");
    let seen = events(&text);
    assert_eq!(types(&seen), ["response.created"]);
    let id = seen[0]["response"]["id"].as_str().unwrap();
    emu.wait_created(2).await;
    assert_eq!(emu.created_responses()[1], id);
    let stored = get(&base, &format!("/responses/{id}")).await.json();
    assert_eq!(stored["status"], "completed");
    assert!(output_text(&stored).contains("lost stream"));

    // By header, for clients without the handle (e.g. the Python SDK).
    let sent = reqwest::Client::new()
        .post(format!("{base}/responses"))
        .header("x-emulator-fault", "drop-after-create")
        .json(&json!({"model": "m", "input": "by header", "background": true}))
        .send()
        .await;
    assert!(sent.is_err());
    assert_eq!(emu.created_count(), 3);
}

#[tokio::test]
async fn a_dropped_background_stream_leaves_the_response_running() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject(Fault::DropMidStream {
        after_events: 4,
        count: 1,
    });
    let reply = reqwest::Client::new()
        .post(format!("{base}/responses"))
        .json(&json!({"model": "m", "input": "cut me", "background": true, "stream": true}))
        .send()
        .await
        .unwrap();
    let mut body = reply.bytes_stream();
    let mut text = String::new();
    let mut cut = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => text.push_str(std::str::from_utf8(&chunk).unwrap()),
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    assert!(cut);
    let seen = events(&text);
    assert_eq!(sequence_numbers(&seen), [0, 1, 2, 3]);
    let id = seen[0]["response"]["id"].as_str().unwrap();
    let rest = events(&stream_of(&base, id, "&starting_after=3").await.text);
    assert_eq!(rest[0]["sequence_number"], 4);
    assert_eq!(types(&rest).last(), Some(&"response.completed"));
    assert_eq!(emu.created_count(), 1);
}

#[tokio::test]
async fn deleting_a_running_background_response_stops_it() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject(Fault::Hold { count: 1 });
    let id = create(&base, background_body("x")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.wait_held(1).await;
    // A client following its stream, caught up with the events so far.
    let reply = reqwest::Client::new()
        .get(format!("{base}/responses/{id}?stream=true"))
        .send()
        .await
        .unwrap();
    let mut body = reply.bytes_stream();
    let mut buffer = String::new();
    read_events(&mut body, &mut buffer, 3).await;

    assert_eq!(delete(&base, &format!("/responses/{id}")).await.status, 200);
    assert_eq!(get(&base, &format!("/responses/{id}")).await.status, 404);
    assert_eq!(emu.response_count(), 0);
    // The follower's stream ends (cleanly, with nothing more) instead of waiting forever.
    while let Some(chunk) = body.next().await {
        buffer.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    assert_eq!(buffer, "");
}
