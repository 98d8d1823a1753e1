//! The emulator's streams (`stream: true`) and fault injection, over plain HTTP.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use resptree::emulator::{Emulator, Fault};
use serde_json::{Value, json};

use crate::emulator_support::*;

/// The fixture's events by type (the first of each type).
fn fixture_events(name: &str) -> HashMap<String, Value> {
    let mut by_type = HashMap::new();
    for block in sse_blocks(&fixture_text(name)) {
        let data: Value = serde_json::from_str(&block.data).unwrap();
        by_type
            .entry(data["type"].as_str().unwrap().to_owned())
            .or_insert(data);
    }
    by_type
}

/// Parses a Responses stream, checking framing, `event:` = `type` and sequence numbers.
fn parse_stream(body: &str) -> Vec<Value> {
    assert!(!body.contains("[DONE]"), "no [DONE] on /responses");
    let events: Vec<Value> = sse_blocks(body)
        .into_iter()
        .map(|b| {
            let data: Value = serde_json::from_str(&b.data).unwrap();
            assert_eq!(
                b.event.as_deref(),
                data["type"].as_str(),
                "event line = type"
            );
            data
        })
        .collect();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i as u64, "sequence numbers run 0..");
    }
    events
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn stream_body(input: &str) -> Value {
    json!({
        "model": "gpt-4o-mini-2024-07-18",
        "input": input,
        "stream": true,
        "prompt_cache_key": "paris-weekend-planner",
        "safety_identifier": "user_4f9c2a7e1b",
    })
}

#[tokio::test]
async fn stream_follows_the_real_event_order_and_shapes() {
    let emu = Emulator::builder()
        .token_delay(Duration::from_millis(1))
        .spawn()
        .await
        .unwrap();
    let base = emu.base_url();
    let reply = post(&base, "/responses", &stream_body("Plan a weekend in Paris")).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(reply.header("x-request-id").unwrap().starts_with("req_"));
    let events = parse_stream(&reply.text);
    let t = types(&events);
    let n = t.len();
    assert_eq!(
        t[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    assert!(n > 9, "several deltas expected: {t:?}");
    assert!(
        t[4..n - 4]
            .iter()
            .all(|t| *t == "response.output_text.delta")
    );
    assert_eq!(
        t[n - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let fixture = fixture_events("stream-basic.sse");
    for event in &events {
        let expected = &fixture[event["type"].as_str().unwrap()];
        assert_same_shape(event, expected, event["type"].as_str().unwrap());
    }
    let deltas: String = events[4..n - 4]
        .iter()
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let done_text = events[n - 4]["text"].as_str().unwrap();
    assert_eq!(deltas, done_text);
    assert!(done_text.starts_with("[ctx 1 msgs] You said: \"Plan a weekend in Paris\"."));
    let completed = &events[n - 1]["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(output_text(completed), done_text);
    assert_eq!(events[0]["response"]["id"], completed["id"]);
    assert_eq!(events[0]["response"]["status"], "in_progress");
    assert_eq!(events[0]["response"]["usage"], Value::Null);

    // The streamed response is stored and chainable.
    let id = completed["id"].as_str().unwrap();
    let got = get(&base, &format!("/responses/{id}")).await.json();
    assert_eq!(&got, completed);
    let child = create(
        &base,
        json!({"model": "m", "input": "next", "previous_response_id": id}),
    )
    .await;
    assert!(output_text(&child).starts_with("[ctx 3 msgs]"));
    // The log counts the streamed bytes once the stream has ended.
    let log = emu.requests();
    assert_eq!(log[0].bytes_out, reply.text.len() as u64);
}

#[tokio::test]
async fn streamed_errors_before_the_stream_are_plain_json() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let mut body = stream_body("x");
    body["previous_response_id"] = json!("resp_unknown");
    let reply = post(&base, "/responses", &body).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(reply.error()["code"], "previous_response_not_found");
}

#[tokio::test]
async fn fail_mid_stream_ends_with_response_failed() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject(Fault::FailMidStream {
        after_deltas: 2,
        count: 1,
    });
    let reply = post(&base, "/responses", &stream_body("Plan a weekend")).await;
    assert_eq!(reply.status, 200);
    let events = parse_stream(&reply.text);
    let fixture = fixture_events("stream-failed.sse");
    // The fixture's own order of event types.
    let expected_types: Vec<String> = sse_blocks(&fixture_text("stream-failed.sse"))
        .iter()
        .map(|b| {
            let v: Value = serde_json::from_str(&b.data).unwrap();
            v["type"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(types(&events), expected_types);
    for event in &events {
        assert_same_shape(
            event,
            &fixture[event["type"].as_str().unwrap()],
            "failed stream",
        );
    }
    let failed = &events.last().unwrap()["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "server_error");
    assert_eq!(failed["output"][0]["status"], "incomplete");
    // Nothing was stored, and the next stream is healthy.
    let id = failed["id"].as_str().unwrap();
    assert_eq!(get(&base, &format!("/responses/{id}")).await.status, 404);
    assert_eq!(emu.response_count(), 0);
    let next = parse_stream(&post(&base, "/responses", &stream_body("again")).await.text);
    assert_eq!(types(&next).last(), Some(&"response.completed"));
}

#[tokio::test]
async fn drop_mid_stream_cuts_the_connection_without_a_terminal_event() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    // A non-streamed request passes the stream fault by.
    create(&base, json!({"model": "m", "input": "plain"})).await;
    emu.inject(Fault::DropMidStream {
        after_events: 3,
        count: 1,
    });
    let resp = reqwest::Client::new()
        .post(format!("{base}/responses"))
        .json(&stream_body("cut me"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut received = Vec::new();
    let mut stream = resp;
    let outcome = loop {
        match stream.chunk().await {
            Ok(Some(chunk)) => received.extend_from_slice(&chunk),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(outcome.is_err(), "the body must fail, not end cleanly");
    let text = String::from_utf8(received).unwrap();
    let events = parse_stream(&text);
    assert_eq!(events.len(), 3);
    assert_eq!(emu.response_count(), 1, "the cut response is not stored");
    let log = emu.requests();
    assert_eq!(
        log[1].fault,
        Some(Fault::DropMidStream {
            after_events: 3,
            count: 1
        })
    );
}

#[tokio::test]
async fn stall_mid_stream_pauses_then_completes() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject(Fault::StallMidStream {
        after_events: 2,
        stall: Duration::from_millis(50),
        count: 1,
    });
    let events = parse_stream(&post(&base, "/responses", &stream_body("slow")).await.text);
    assert_eq!(types(&events).last(), Some(&"response.completed"));
    assert!(emu.requests()[0].fault.is_some());
}

#[tokio::test]
async fn status_faults_use_the_real_envelopes() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject(Fault::Status {
        status: 500,
        count: 2,
    });
    emu.inject(Fault::Status {
        status: 503,
        count: 1,
    });
    let body = json!({"model": "m", "input": "hi"});
    for expected in [500, 500, 503, 200] {
        let reply = post(&base, "/responses", &body).await;
        assert_eq!(reply.status, expected);
        assert!(reply.header("x-request-id").is_some());
        if expected != 200 {
            assert_eq!(reply.error()["type"], "server_error");
        }
    }
    // Faults hit before processing: only the last request stored anything.
    assert_eq!(emu.response_count(), 1);
}

#[tokio::test]
async fn rate_limits_send_retry_hints() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject(Fault::RateLimit {
        retry_after: Some(Duration::from_millis(1500)),
        use_ms_header: false,
        count: 1,
    });
    emu.inject(Fault::RateLimit {
        retry_after: Some(Duration::from_millis(250)),
        use_ms_header: true,
        count: 1,
    });
    emu.inject(Fault::RateLimit {
        retry_after: None,
        use_ms_header: false,
        count: 1,
    });
    let body = json!({"model": "m", "input": "hi"});
    let seconds = post(&base, "/responses", &body).await;
    assert_eq!(seconds.status, 429);
    assert_same_shape(&seconds.json(), &fixture("error-rate-limit.json"), "429");
    assert_eq!(seconds.error()["code"], "rate_limit_exceeded");
    assert_eq!(seconds.header("retry-after"), Some("2"));
    assert_eq!(seconds.header("retry-after-ms"), None);
    assert!(seconds.header("x-ratelimit-limit-tokens").is_some());
    let millis = post(&base, "/responses", &body).await;
    assert_eq!(millis.status, 429);
    assert_eq!(millis.header("retry-after-ms"), Some("250"));
    assert_eq!(millis.header("retry-after"), None);
    let bare = post(&base, "/responses", &body).await;
    assert_eq!(bare.status, 429);
    assert_eq!(bare.header("retry-after"), None);
    assert_eq!(bare.header("retry-after-ms"), None);
    assert_eq!(post(&base, "/responses", &body).await.status, 200);
}

#[tokio::test]
async fn drop_before_headers_and_malformed_bodies() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject(Fault::DropBeforeHeaders { count: 1 });
    emu.inject(Fault::MalformedBody { count: 1 });
    let client = reqwest::Client::new();
    let body = json!({"model": "m", "input": "hi"});
    let dropped = client
        .post(format!("{base}/responses"))
        .json(&body)
        .send()
        .await;
    assert!(dropped.is_err(), "no response expected: {dropped:?}");
    let malformed = post(&base, "/responses", &body).await;
    assert_eq!(malformed.status, 200);
    assert!(serde_json::from_str::<Value>(&malformed.text).is_err());
    assert_eq!(post(&base, "/responses", &body).await.status, 200);
    let log = emu.requests();
    assert_eq!(log[0].status, 0, "dropped before headers");
    assert_eq!(log[0].fault, Some(Fault::DropBeforeHeaders { count: 1 }));
    assert_eq!(log[1].fault, Some(Fault::MalformedBody { count: 1 }));
    assert_eq!(log[2].fault, None);
    assert_eq!(emu.response_count(), 1);
}

#[tokio::test]
async fn faults_can_target_a_path_prefix() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject_for(
        "/v1/chat",
        Fault::Status {
            status: 503,
            count: 1,
        },
    );
    let resp = post(&base, "/responses", &json!({"model": "m", "input": "hi"})).await;
    assert_eq!(resp.status, 200);
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(post(&base, "/chat/completions", &chat).await.status, 503);
    assert_eq!(post(&base, "/chat/completions", &chat).await.status, 200);
}

#[tokio::test]
async fn random_faults_are_seeded_and_can_be_turned_off() {
    async fn run(rate: f64, seed: u64) -> Vec<Option<Fault>> {
        let emu = Emulator::spawn().await.unwrap();
        let base = emu.base_url();
        emu.set_random_faults(rate, seed);
        let client = reqwest::Client::new();
        for i in 0..40 {
            // Errors (dropped connections, cut streams) are the point; ignore them.
            let _ = async {
                client
                    .post(format!("{base}/responses"))
                    .json(&json!({"model": "m", "input": format!("r{i}"), "stream": i % 2 == 0}))
                    .send()
                    .await?
                    .bytes()
                    .await
            }
            .await;
        }
        emu.requests().into_iter().map(|r| r.fault).collect()
    }
    let a = run(0.5, 11).await;
    assert_eq!(a.len(), 40);
    assert_eq!(a, run(0.5, 11).await, "same seed, same faults");
    let faulted = a.iter().filter(|f| f.is_some()).count();
    assert!((5..=35).contains(&faulted), "{faulted} of 40 faulted");
    assert!(run(0.0, 11).await.iter().all(Option::is_none));
    assert!(run(1.0, 11).await.iter().all(Option::is_some));
}

#[tokio::test]
async fn a_request_can_ask_for_its_own_fault_by_header() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject(Fault::Status {
        status: 500,
        count: 1,
    });
    let client = reqwest::Client::new();
    let body = json!({"model": "m", "input": "hi"});
    let with = |value: &'static str| {
        client
            .post(format!("{base}/responses"))
            .header("x-emulator-fault", value)
            .json(&body)
    };
    let limited = send(with("429")).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after-ms"), Some("10"));
    assert_eq!(send(with("503")).await.status, 503);
    assert!(with("drop").send().await.is_err());
    let bad = send(with("teapot")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error()["code"], "invalid_emulator_fault");
    let mut stream = body.clone();
    stream["stream"] = json!(true);
    let failed = send(
        client
            .post(format!("{base}/responses"))
            .header("x-emulator-fault", "fail-mid-stream:1")
            .json(&stream),
    )
    .await;
    assert!(failed.text.contains("event: response.failed"));
    // The queued fault was left for the next request without the header.
    assert_eq!(post(&base, "/responses", &body).await.status, 500);
    assert_eq!(post(&base, "/responses", &body).await.status, 200);
    let log = emu.requests();
    assert_eq!(
        log[0].fault,
        Some(Fault::RateLimit {
            retry_after: Some(Duration::from_millis(10)),
            use_ms_header: true,
            count: 1
        })
    );
    assert_eq!(log[2].status, 0);
}

#[tokio::test]
async fn hold_keeps_requests_in_flight_until_released() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    // Reads are never held: the fault waits for requests that generate a reply.
    emu.inject(Fault::Hold { count: 3 });
    assert_eq!(get(&base, "/responses/resp_nope").await.status, 404);
    let plain = |input: &'static str| {
        let base = base.clone();
        tokio::spawn(async move { create(&base, json!({"model": "m", "input": input})).await })
    };
    let (a, b) = (plain("a"), plain("b"));
    let mut streamed = reqwest::Client::new()
        .post(format!("{base}/responses"))
        .json(&stream_body("c"))
        .send()
        .await
        .unwrap();
    emu.wait_held(3).await;
    assert_eq!(emu.in_flight(), 3);
    assert_eq!(emu.peak_in_flight(), 3);
    // Held at the thinking time: nothing generated or stored yet; the stream
    // has sent its opening events only.
    assert_eq!(emu.response_count(), 0);
    let mut opening = String::new();
    while !opening.contains("response.in_progress") {
        opening.push_str(&String::from_utf8_lossy(
            &streamed.chunk().await.unwrap().unwrap(),
        ));
    }
    assert!(!opening.contains("output_item"), "{opening}");

    emu.release(3);
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert!(output_text(&a).contains("\"a\""), "{a}");
    assert!(output_text(&b).contains("\"b\""), "{b}");
    let mut rest = String::new();
    while let Some(chunk) = streamed.chunk().await.unwrap() {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events = parse_stream(&format!("{opening}{rest}"));
    assert_eq!(
        types(&events).last().copied(),
        Some("response.completed"),
        "{events:?}"
    );
    emu.wait_idle().await;
    assert_eq!(emu.in_flight(), 0);
    assert_eq!(emu.response_count(), 3);
    let held = emu
        .requests()
        .iter()
        .filter(|r| r.fault == Some(Fault::Hold { count: 1 }))
        .count();
    assert_eq!(held, 3);
    // The high-water mark restarts with the log.
    emu.clear_requests();
    assert_eq!(emu.peak_in_flight(), 0);
}

#[tokio::test]
async fn a_release_before_the_request_lets_it_through() {
    let emu = Emulator::spawn().await.unwrap();
    emu.inject(Fault::Hold { count: 1 });
    emu.release(1);
    let reply = create(&emu.base_url(), json!({"model": "m", "input": "x"})).await;
    assert_eq!(reply["status"], "completed");
}

#[tokio::test]
async fn chat_requests_are_held_too() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.inject(Fault::Hold { count: 1 });
    let chat = tokio::spawn({
        let base = base.clone();
        async move {
            post(
                &base,
                "/chat/completions",
                &json!({"model": "m", "n": 2, "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await
        }
    });
    emu.wait_held(1).await;
    assert_eq!(emu.in_flight(), 1);
    emu.release(1);
    let reply = chat.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["choices"].as_array().unwrap().len(), 2);
}
