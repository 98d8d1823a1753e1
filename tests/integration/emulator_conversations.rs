//! The emulator's Conversations API and its one-active-request lock.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use resptree::emulator::{Emulator, Fault};
use serde_json::{Value, json};

use crate::emulator_support::*;

fn user_items(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": format!("item {i}")}]}))
        .collect()
}

async fn new_conversation(base: &str, items: Vec<Value>) -> String {
    let reply = post(
        base,
        "/conversations",
        &json!({"metadata": {"topic": "paris-weekend", "travellers": "2"}, "items": items}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let conv = reply.json();
    assert_same_shape(&conv, &fixture("conversation.json"), "conversation");
    conv["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn conversation_lifecycle_matches_the_fixtures() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let id = new_conversation(&base, user_items(2)).await;
    assert!(is_id(&id, "conv_"), "{id}");
    let got = get(&base, &format!("/conversations/{id}")).await.json();
    assert_eq!(
        got["metadata"],
        json!({"topic": "paris-weekend", "travellers": "2"})
    );

    let updated = post(
        &base,
        &format!("/conversations/{id}"),
        &json!({"metadata": {"a": "b"}}),
    )
    .await;
    assert_eq!(updated.json()["metadata"], json!({"a": "b"}));

    // A response on the conversation sees its items and appends input and output.
    let resp = create(
        &base,
        json!({"model": "m", "input": "What now?", "conversation": id}),
    )
    .await;
    assert_eq!(resp["conversation"], json!({"id": id}));
    assert!(output_text(&resp).starts_with("[ctx 3 msgs] You said: \"What now?\"."));
    let second = create(
        &base,
        json!({"model": "m", "input": "And then?", "conversation": {"id": id}}),
    )
    .await;
    assert!(output_text(&second).starts_with("[ctx 5 msgs] You said: \"And then?\"."));
    assert_eq!(
        second["usage"]["input_tokens_details"]["cached_tokens"],
        item_tokens("item 0")
            + item_tokens("item 1")
            + item_tokens("What now?")
            + item_tokens(&output_text(&resp))
    );

    let page = get(&base, &format!("/conversations/{id}/items?limit=2"))
        .await
        .json();
    assert_same_shape(
        &page,
        &fixture("conversation-items-page.json"),
        "items page",
    );
    assert_eq!(page["data"][0]["role"], "assistant");
    assert_eq!(
        page["data"][0]["content"][0]["text"],
        json!(output_text(&second))
    );
    assert_eq!(page["data"][1]["content"][0]["text"], "And then?");
    assert_eq!(page["has_more"], true);
    let all = get(
        &base,
        &format!("/conversations/{id}/items?order=asc&limit=100"),
    )
    .await
    .json();
    assert_eq!(all["data"].as_array().unwrap().len(), 6);
    assert_eq!(all["data"][0]["content"][0]["text"], "item 0");

    let deleted = delete(&base, &format!("/conversations/{id}")).await;
    assert_eq!(
        deleted.json(),
        json!({"id": id, "object": "conversation.deleted", "deleted": true})
    );
    assert_eq!(
        get(&base, &format!("/conversations/{id}")).await.status,
        404
    );
    assert_eq!(
        delete(&base, &format!("/conversations/{id}")).await.status,
        404
    );
    let reply = post(
        &base,
        "/responses",
        &json!({"model": "m", "input": "x", "conversation": id}),
    )
    .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.error()["param"], "conversation");
}

#[tokio::test]
async fn conversation_item_limits() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let too_many = post(&base, "/conversations", &json!({"items": user_items(21)})).await;
    assert_eq!(too_many.status, 400);
    assert_eq!(too_many.error()["param"], "items");
    let id = new_conversation(&base, user_items(20)).await;

    let path = format!("/conversations/{id}/items");
    let added = post(&base, &path, &json!({"items": user_items(20)})).await;
    assert_eq!(added.status, 200);
    let added = added.json();
    assert_eq!(added["object"], "list");
    assert_eq!(added["data"].as_array().unwrap().len(), 20);
    assert_eq!(added["first_id"], added["data"][0]["id"]);
    let rejected = post(&base, &path, &json!({"items": user_items(21)})).await;
    assert_eq!(rejected.status, 400);
    assert_eq!(rejected.error()["param"], "items");

    let page = get(&base, &format!("{path}?limit=100")).await.json();
    assert_eq!(page["data"].as_array().unwrap().len(), 40);
    assert_eq!(page["has_more"], false);
    let first = get(&base, &path).await.json();
    assert_eq!(first["data"].as_array().unwrap().len(), 20);
    assert_eq!(first["has_more"], true);
    let next = get(
        &base,
        &format!("{path}?after={}", first["last_id"].as_str().unwrap()),
    )
    .await
    .json();
    assert_eq!(next["data"].as_array().unwrap().len(), 20);
    assert_eq!(next["has_more"], false);
    assert_eq!(get(&base, &format!("{path}?limit=101")).await.status, 400);
    assert_eq!(
        get(&base, "/conversations/conv_nope/items").await.status,
        404
    );
}

/// The expected `conversation_locked` body.
fn assert_locked(reply: &Reply) {
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.json(), fixture("error-conversation-locked.json"));
}

/// A conversation's lock, held for certain: `Fault::Hold` keeps the first request
/// at its thinking time (lock taken, nothing stored) until the test releases it.
#[tokio::test]
async fn a_second_request_while_one_streams_is_locked_out() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let id = new_conversation(&base, Vec::new()).await;
    emu.inject(Fault::Hold { count: 1 });
    let mut first = reqwest::Client::new()
        .post(format!("{base}/responses"))
        .json(&json!({"model": "m", "input": "first", "conversation": id, "stream": true}))
        .send()
        .await
        .unwrap();
    let chunk = first.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&chunk).contains("response.created"));
    emu.wait_held(1).await;

    // The first request holds the lock until released.
    let second = post(
        &base,
        "/responses",
        &json!({"model": "m", "input": "second", "conversation": id}),
    )
    .await;
    assert_locked(&second);

    // Dropping the first stream cancels it and frees the conversation: once the
    // emulator has nothing in flight, the cancelled stream let its lock go.
    drop(first);
    tokio::time::timeout(Duration::from_secs(10), emu.wait_idle())
        .await
        .expect("the emulator never noticed the cancelled stream");
    let third = post(
        &base,
        "/responses",
        &json!({"model": "m", "input": "third", "conversation": id}),
    )
    .await;
    assert_eq!(third.status, 200, "{}", third.text);
    // The cancelled first request left nothing in the conversation.
    assert!(output_text(&third.json()).starts_with("[ctx 1 msgs] You said: \"third\"."));
    let items = get(&base, &format!("/conversations/{id}/items?limit=100"))
        .await
        .json();
    assert_eq!(items["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn concurrent_requests_on_one_conversation_lock_all_but_the_first() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let id = new_conversation(&base, Vec::new()).await;
    // The first request takes the lock and is held there.
    emu.inject(Fault::Hold { count: 1 });
    let first = tokio::spawn({
        let (base, id) = (base.clone(), id.clone());
        async move {
            post(
                &base,
                "/responses",
                &json!({"model": "m", "input": "c0", "conversation": id}),
            )
            .await
        }
    });
    emu.wait_held(1).await;
    let others: Vec<_> = (1..5)
        .map(|i| {
            let (base, id) = (base.clone(), id.clone());
            tokio::spawn(async move {
                post(
                    &base,
                    "/responses",
                    &json!({"model": "m", "input": format!("c{i}"), "conversation": id}),
                )
                .await
            })
        })
        .collect();
    for other in others {
        assert_locked(&other.await.unwrap());
    }
    emu.release(1);
    let first = first.await.unwrap();
    assert_eq!(first.status, 200, "{}", first.text);
    // Only the first request's input and output joined the conversation.
    let items = get(&base, &format!("/conversations/{id}/items?limit=100"))
        .await
        .json();
    assert_eq!(items["data"].as_array().unwrap().len(), 2);

    // Chains never lock: while one child of a parent is held, its siblings go through.
    let root = create(&base, json!({"model": "m", "input": "root"})).await;
    let child = |i: usize| {
        let base = base.clone();
        let parent = root["id"].clone();
        tokio::spawn(async move {
            post(
                &base,
                "/responses",
                &json!({"model": "m", "input": format!("b{i}"), "previous_response_id": parent}),
            )
            .await
        })
    };
    emu.inject(Fault::Hold { count: 1 });
    let held = child(0);
    emu.wait_held(1).await;
    for i in 1..5 {
        let reply = child(i).await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    emu.release(1);
    assert_eq!(held.await.unwrap().status, 200);
}
