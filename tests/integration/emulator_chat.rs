//! The emulator's Chat Completions endpoint with `n` choices.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use resptree::emulator::Emulator;
use serde_json::{Value, json};

use crate::emulator_support::*;

fn chat_request(n: u64) -> Value {
    json!({
        "model": "gpt-4o-mini-2024-07-18",
        "n": n,
        "messages": [
            {"role": "system", "content": "You plan trips."},
            {"role": "user", "content": "Plan a weekend in Paris"}
        ]
    })
}

#[tokio::test]
async fn n_choices_match_the_fixture_and_count_the_prompt_once() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let reply = post(&base, "/chat/completions", &chat_request(3)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    assert_same_shape(&body, &fixture("chat-n3.json"), "chat");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let texts: Vec<&str> = body["choices"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            assert_eq!(c["index"], i);
            c["message"]["content"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        texts.iter().collect::<HashSet<_>>().len(),
        3,
        "choices differ"
    );
    for text in &texts {
        assert!(
            text.starts_with("[ctx 2 msgs] You said: \"Plan a weekend in Paris\"."),
            "{text}"
        );
    }
    let prompt = item_tokens("You plan trips.") + item_tokens("Plan a weekend in Paris");
    let completion: u64 = texts
        .iter()
        .map(|t| (t.chars().count() as u64).div_ceil(4))
        .sum();
    assert_eq!(body["usage"]["prompt_tokens"], prompt);
    assert_eq!(body["usage"]["completion_tokens"], completion);
    assert_eq!(body["usage"]["total_tokens"], prompt + completion);
    let one = post(&base, "/chat/completions", &chat_request(1))
        .await
        .json();
    assert_eq!(
        one["usage"]["prompt_tokens"], prompt,
        "the prompt counts once whatever n"
    );
}

#[tokio::test]
async fn invalid_chat_requests_name_the_param() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let mut cases = Vec::new();
    for n in [json!(0), json!(129), json!("3")] {
        let mut body = chat_request(1);
        body["n"] = n;
        cases.push((body, "n"));
    }
    cases.push((json!({"model": "m"}), "messages"));
    cases.push((
        json!({"messages": [{"role": "user", "content": "x"}]}),
        "model",
    ));
    cases.push((
        json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
        "messages[0].role",
    ));
    for (body, param) in cases {
        let reply = post(&base, "/chat/completions", &body).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.error()["param"], param, "{body}");
    }
    let mut max = chat_request(128);
    max["n"] = json!(128);
    let reply = post(&base, "/chat/completions", &max).await;
    assert_eq!(reply.json()["choices"].as_array().unwrap().len(), 128);
}

#[tokio::test]
async fn streamed_choices_interleave_and_end_with_usage_and_done() {
    let emu = Emulator::builder().seed(3).spawn().await.unwrap();
    let base = emu.base_url();
    let mut body = chat_request(3);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let reply = post(&base, "/chat/completions", &body).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let blocks = sse_blocks(&reply.text);
    assert!(blocks.iter().all(|b| b.event.is_none()), "data-only lines");
    assert_eq!(blocks.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = blocks[..blocks.len() - 1]
        .iter()
        .map(|b| serde_json::from_str(&b.data).unwrap())
        .collect();

    let fixture_chunks: Vec<Value> = sse_blocks(&fixture_text("chat-n3-stream.sse"))
        .iter()
        .filter(|b| b.data != "[DONE]")
        .map(|b| serde_json::from_str(&b.data).unwrap())
        .collect();
    let (role_fx, content_fx, finish_fx, usage_fx) = (
        &fixture_chunks[0],
        &fixture_chunks[3],
        &fixture_chunks[12],
        fixture_chunks.last().unwrap(),
    );

    // Role chunks for 0, 1, 2 first, then content, then finish chunks, then usage.
    for (i, chunk) in chunks[..3].iter().enumerate() {
        assert_same_shape(chunk, role_fx, "role chunk");
        assert_eq!(chunk["choices"][0]["index"], i);
    }
    let n = chunks.len();
    for (i, chunk) in chunks[n - 4..n - 1].iter().enumerate() {
        assert_same_shape(chunk, finish_fx, "finish chunk");
        assert_eq!(chunk["choices"][0]["index"], i);
        assert_eq!(chunk["choices"][0]["finish_reason"], "stop");
    }
    let usage = &chunks[n - 1];
    assert_same_shape(usage, usage_fx, "usage chunk");
    let mut texts = [String::new(), String::new(), String::new()];
    let mut order = Vec::new();
    for chunk in &chunks[3..n - 4] {
        assert_same_shape(chunk, content_fx, "content chunk");
        let i = chunk["choices"][0]["index"].as_u64().unwrap() as usize;
        order.push(i);
        texts[i].push_str(chunk["choices"][0]["delta"]["content"].as_str().unwrap());
    }
    assert_eq!(order[..3], [0, 1, 2], "choices interleave");
    assert!(chunks[..n - 1].iter().all(|c| c["usage"].is_null()));

    // Same seed, same request: the streamed texts equal the non-streamed ones.
    let plain = Emulator::builder().seed(3).spawn().await.unwrap();
    let plain_body = post(&plain.base_url(), "/chat/completions", &chat_request(3))
        .await
        .json();
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(plain_body["choices"][i]["message"]["content"], json!(text));
    }
    assert_eq!(usage["usage"], plain_body["usage"]);
}
