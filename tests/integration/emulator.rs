//! Black-box tests of the emulator's Responses endpoints over plain HTTP.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use resptree::emulator::Emulator;
use serde_json::{Value, json};

use crate::emulator_support::*;

/// The request that `response-basic.json` answers (cache key and safety id set, as the
/// fixture's README says).
fn basic_request(input: &str) -> Value {
    json!({
        "model": "gpt-4o-mini-2024-07-18",
        "input": input,
        "prompt_cache_key": "paris-weekend-planner",
        "safety_identifier": "user_4f9c2a7e1b",
    })
}

#[tokio::test]
async fn create_matches_the_basic_fixture() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let resp = create(&base, basic_request("Plan a weekend in Paris")).await;
    assert_same_shape(&resp, &fixture("response-basic.json"), "response");
    assert!(
        is_id(resp["id"].as_str().unwrap(), "resp_"),
        "{}",
        resp["id"]
    );
    assert!(is_id(resp["output"][0]["id"].as_str().unwrap(), "msg_"));
    assert_eq!(resp["status"], "completed");
    assert_eq!(resp["object"], "response");
    assert_eq!(resp["previous_response_id"], Value::Null);
    assert_eq!(resp["store"], true);
    let text = output_text(&resp);
    assert!(
        text.starts_with("[ctx 1 msgs] You said: \"Plan a weekend in Paris\". Take 1: "),
        "{text}"
    );
    let usage = &resp["usage"];
    assert_eq!(
        usage["input_tokens"],
        item_tokens("Plan a weekend in Paris")
    );
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(
        usage["output_tokens"],
        (text.chars().count() as u64).div_ceil(4)
    );
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );
    let got = get(
        &base,
        &format!("/responses/{}", resp["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), resp);
}

#[tokio::test]
async fn child_sees_the_chain_and_matches_the_child_fixture() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let root = create(&base, basic_request("Plan a weekend in Paris")).await;
    let root_text = output_text(&root);
    let mut body = basic_request("Which museums should we book?");
    body["previous_response_id"] = root["id"].clone();
    body["instructions"] = json!("You are a concise travel planner.");
    body["max_output_tokens"] = json!(300);
    // Sent as an integer, reported as a decimal (the shape check below insists).
    body["temperature"] = json!(0);
    body["metadata"] = json!({"trip": "paris-weekend", "node": "n2"});
    let child = create(&base, body).await;
    assert_same_shape(&child, &fixture("response-child.json"), "child");
    assert_eq!(child["previous_response_id"], root["id"]);
    assert_eq!(
        child["metadata"],
        json!({"trip": "paris-weekend", "node": "n2"})
    );
    assert_eq!(child["max_output_tokens"], 300);
    assert_eq!(child["temperature"].as_f64(), Some(0.0));
    let text = output_text(&child);
    assert!(
        text.starts_with("[ctx 3 msgs] You said: \"Which museums should we book?\"."),
        "{text}"
    );

    // Usage: the whole context is input; the inherited part is cached.
    let inherited = item_tokens("Plan a weekend in Paris") + item_tokens(&root_text);
    let instructions = item_tokens("You are a concise travel planner.");
    let usage = &child["usage"];
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], inherited);
    assert_eq!(
        usage["input_tokens"],
        inherited + instructions + item_tokens("Which museums should we book?")
    );

    // Instructions are not inherited by a grandchild.
    let grandchild = create(
        &base,
        json!({"model": "m", "input": "And on Sunday?", "previous_response_id": child["id"]}),
    )
    .await;
    assert_eq!(grandchild["instructions"], Value::Null);
    assert!(output_text(&grandchild).starts_with("[ctx 5 msgs] You said: \"And on Sunday?\"."));
    assert_eq!(
        grandchild["usage"]["input_tokens_details"]["cached_tokens"],
        inherited + item_tokens("Which museums should we book?") + item_tokens(&text)
    );
}

#[tokio::test]
async fn siblings_differ_and_replies_are_deterministic_per_seed() {
    async fn run(seed: u64) -> Vec<String> {
        let emu = Emulator::builder().seed(seed).spawn().await.unwrap();
        let base = emu.base_url();
        let root = create(&base, json!({"model": "m", "input": "hello"})).await;
        let mut texts = vec![output_text(&root)];
        for _ in 0..3 {
            let body = json!({"model": "m", "input": "same", "previous_response_id": root["id"]});
            texts.push(output_text(&create(&base, body).await));
        }
        texts
    }
    let a = run(7).await;
    assert_eq!(a, run(7).await, "same seed, same requests, same replies");
    let distinct: HashSet<_> = a[1..].iter().collect();
    assert_eq!(distinct.len(), 3, "siblings must differ: {a:?}");
    for (k, text) in a[1..].iter().enumerate() {
        assert!(text.contains(&format!("Take {}: ", k + 1)), "{text}");
    }
    let other: Vec<String> = (0..6)
        .map(|s| s * 1000 + 1)
        .map(|s| s.to_string())
        .collect();
    let mut differs = false;
    for seed in [1, 2, 3, 4] {
        differs |= run(seed).await != a;
    }
    assert!(differs, "seeds must matter ({other:?})");
}

#[tokio::test]
async fn scripted_replies_override_the_model_in_order() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    emu.script_replies(["first exact", "second exact"]);
    let a = create(&base, json!({"model": "m", "input": "x"})).await;
    let b = create(&base, json!({"model": "m", "input": "y"})).await;
    let c = create(&base, json!({"model": "m", "input": "z"})).await;
    assert_eq!(output_text(&a), "first exact");
    assert_eq!(output_text(&b), "second exact");
    assert!(output_text(&c).starts_with("[ctx 1 msgs]"));
    assert_eq!(b["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn store_false_is_neither_retrievable_nor_chainable() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let mut body = basic_request("Do we need a museum pass?");
    body["store"] = json!(false);
    let resp = create(&base, body).await;
    assert_same_shape(&resp, &fixture("response-store-false.json"), "store-false");
    assert_eq!(resp["store"], false);
    let id = resp["id"].as_str().unwrap();
    assert_eq!(get(&base, &format!("/responses/{id}")).await.status, 404);
    assert_eq!(emu.response_count(), 0);
    assert_previous_not_found(&base, id).await;
}

/// Asserts that continuing `id` fails exactly like `error-previous-not-found.json`.
async fn assert_previous_not_found(base: &str, id: &str) {
    let reply = post(
        base,
        "/responses",
        &json!({"model": "m", "input": "more", "previous_response_id": id}),
    )
    .await;
    assert_eq!(reply.status, 400);
    let mut expected = fixture("error-previous-not-found.json");
    expected["error"]["message"] = json!(format!("Previous response with id '{id}' not found."));
    assert_eq!(reply.json(), expected);
}

#[tokio::test]
async fn unknown_deleted_and_expired_parents_are_not_found() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    assert_previous_not_found(&base, "resp_00000000000000000000000000000000").await;

    let a = create(&base, json!({"model": "m", "input": "a"})).await;
    let a_id = a["id"].as_str().unwrap();
    let deleted = delete(&base, &format!("/responses/{a_id}")).await;
    assert_eq!(deleted.status, 200);
    assert_same_shape(&deleted.json(), &fixture("deleted.json"), "deleted");
    assert_eq!(deleted.json()["id"], a_id);
    assert_eq!(deleted.json()["deleted"], true);
    assert_eq!(get(&base, &format!("/responses/{a_id}")).await.status, 404);
    assert_eq!(
        delete(&base, &format!("/responses/{a_id}")).await.status,
        404
    );
    assert_previous_not_found(&base, a_id).await;

    let b = create(&base, json!({"model": "m", "input": "b"})).await;
    let b_id = b["id"].as_str().unwrap();
    let c = create(
        &base,
        json!({"model": "m", "input": "c", "previous_response_id": b_id}),
    )
    .await;
    let c_id = c["id"].as_str().unwrap();
    assert_eq!(emu.response_count(), 2);
    assert!(emu.expire_response(b_id));
    assert!(!emu.expire_response(b_id));
    assert_eq!(emu.response_count(), 1);
    assert_previous_not_found(&base, b_id).await;
    // A gap in the middle of the chain breaks continuing its descendants too.
    assert_previous_not_found(&base, c_id).await;
    assert!(emu.delete_response(c_id));
    assert!(!emu.delete_response(c_id));
    assert_eq!(emu.response_count(), 0);
}

#[tokio::test]
async fn responses_expire_after_the_ttl() {
    let emu = Emulator::builder()
        .response_ttl(Some(std::time::Duration::ZERO))
        .spawn()
        .await
        .unwrap();
    let base = emu.base_url();
    let a = create(&base, json!({"model": "m", "input": "a"})).await;
    let id = a["id"].as_str().unwrap();
    assert_eq!(get(&base, &format!("/responses/{id}")).await.status, 404);
    assert_previous_not_found(&base, id).await;
}

#[tokio::test]
async fn get_and_delete_unknown_give_404_envelopes() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    for reply in [
        get(&base, "/responses/resp_nope").await,
        delete(&base, "/responses/resp_nope").await,
        get(&base, "/responses/resp_nope/input_items").await,
        get(&base, "/no/such/path").await,
    ] {
        assert_eq!(reply.status, 404, "{}", reply.text);
        assert_eq!(reply.error()["type"], "invalid_request_error");
    }
}

#[tokio::test]
async fn bad_requests_name_the_param() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();

    let reply = post(&base, "/responses", &json!({"input": "hi"})).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        fixture("error-bad-request-missing-model.json")
    );

    let reply = post_raw(&base, "/responses", "{not json").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error()["param"], Value::Null);

    let cases = [
        (json!({"model": "m"}), "input"),
        (json!({"model": 5, "input": "hi"}), "model"),
        (json!({"model": "m", "input": 5}), "input"),
        (
            json!({"model": "m", "input": [{"role": "user"}]}),
            "input[0].content",
        ),
        (
            json!({"model": "m", "input": "hi", "stream": "yes"}),
            "stream",
        ),
        (
            json!({"model": "m", "input": "hi", "instructions": 1}),
            "instructions",
        ),
        (
            json!({"model": "m", "input": "hi", "metadata": {"k": 1}}),
            "metadata.k",
        ),
        (
            json!({"model": "m", "input": "hi", "previous_response_id": "resp_a", "conversation": "conv_b"}),
            "conversation",
        ),
    ];
    for (body, param) in cases {
        let reply = post(&base, "/responses", &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert_eq!(reply.error()["param"], param, "{body}");
    }
    let missing_input = post(&base, "/responses", &json!({"model": "m"})).await;
    assert_eq!(missing_input.error()["code"], "missing_required_parameter");

    // Metadata limits: 16 pairs, keys of 64, values of 512 characters.
    let many: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let sixteen: serde_json::Map<String, Value> =
        (0..16).map(|i| (format!("k{i}"), json!("v"))).collect();
    for (metadata, ok) in [
        (Value::Object(many), false),
        (json!({"k".repeat(65): "v"}), false),
        (json!({"k": "v".repeat(513)}), false),
        (Value::Object(sixteen), true),
        (json!({"k".repeat(64): "v".repeat(512)}), true),
    ] {
        let reply = post(
            &base,
            "/responses",
            &json!({"model": "m", "input": "hi", "metadata": metadata}),
        )
        .await;
        assert_eq!(reply.status == 200, ok, "{}", reply.text);
        if !ok {
            assert!(
                reply.error()["param"]
                    .as_str()
                    .unwrap()
                    .starts_with("metadata")
            );
        }
    }

    // Unknown but well-formed fields are accepted.
    let reply = post(
        &base,
        "/responses",
        &json!({"model": "m", "input": "hi", "a_future_field": {"x": [1, 2]}, "tools": []}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn oversized_bodies_get_413_with_an_envelope() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let big = format!(
        r#"{{"model":"m","input":"{}"}}"#,
        "a".repeat(4 * 1024 * 1024)
    );
    let reply = post_raw(&base, "/responses", big).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.error()["code"], "request_too_large");
    // Just under the limit is fine (for a model whose context window holds ~1M tokens).
    let fits = format!(
        r#"{{"model":"m-ctx2000000","input":"{}"}}"#,
        "a".repeat(4 * 1024 * 1024 - 64)
    );
    assert_eq!(post_raw(&base, "/responses", fits).await.status, 200);
}

#[tokio::test]
async fn every_reply_carries_request_id_and_rate_limit_headers() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let replies = [
        post(&base, "/responses", &json!({"model": "m", "input": "hi"})).await,
        post(&base, "/responses", &json!({"input": "hi"})).await,
        get(&base, "/responses/resp_nope").await,
        get(&base, "/nowhere").await,
    ];
    let mut ids = HashSet::new();
    for reply in &replies {
        let id = reply.header("x-request-id").expect("x-request-id");
        assert!(is_id(id, "req_"), "{id}");
        ids.insert(id.to_owned());
        assert!(
            reply
                .header("openai-processing-ms")
                .unwrap()
                .parse::<u64>()
                .is_ok()
        );
        for name in [
            "x-ratelimit-limit-requests",
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-requests",
            "x-ratelimit-reset-tokens",
        ] {
            assert!(reply.header(name).is_some(), "{name} missing");
        }
    }
    assert_eq!(ids.len(), replies.len(), "request ids must be unique");
}

#[tokio::test]
async fn request_log_counts_requests_and_bytes() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let body = json!({"model": "m", "input": "count me"});
    let reply = post(&base, "/responses", &body).await;
    let missing = get(&base, "/responses/resp_nope?x=1").await;
    let log = emu.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].path, "/v1/responses");
    assert_eq!(log[0].status, 200);
    assert_eq!(
        log[0].bytes_in,
        serde_json::to_vec(&body).unwrap().len() as u64
    );
    assert_eq!(log[0].bytes_out, reply.text.len() as u64);
    assert_eq!(log[0].body.as_ref(), Some(&body));
    assert_eq!(
        Some(log[0].request_id.as_str()),
        reply.header("x-request-id")
    );
    assert_eq!(log[1].status, 404);
    assert_eq!(log[1].query.as_deref(), Some("x=1"));
    assert_eq!(log[1].bytes_out, missing.text.len() as u64);
    assert_eq!(log[1].body, None);
    emu.clear_requests();
    assert!(emu.requests().is_empty());
}

#[tokio::test]
async fn input_items_page_like_the_fixture() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let root = create(&base, json!({"model": "m", "input": "root"})).await;
    let input: Vec<Value> = (0..5)
        .map(|i| json!({"role": "user", "content": format!("message {i}")}))
        .collect();
    let child = create(
        &base,
        json!({"model": "m", "input": input, "previous_response_id": root["id"]}),
    )
    .await;
    let id = child["id"].as_str().unwrap();
    let path = format!("/responses/{id}/input_items");

    let page = get(&base, &path).await.json();
    assert_same_shape(&page, &fixture("input-items-page.json"), "input items");
    let texts: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["content"][0]["text"].as_str().unwrap())
        .collect();
    // Default order is newest first; only the response's own input is listed.
    assert_eq!(
        texts,
        [
            "message 4",
            "message 3",
            "message 2",
            "message 1",
            "message 0"
        ]
    );
    assert_eq!(page["has_more"], false);
    let ids: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.iter().all(|i| is_id(i, "msg_")));
    assert_eq!(page["first_id"], ids[0].as_str());
    assert_eq!(page["last_id"], ids[4].as_str());

    let asc = get(&base, &format!("{path}?order=asc&limit=2"))
        .await
        .json();
    assert_eq!(asc["data"][0]["content"][0]["text"], "message 0");
    assert_eq!(asc["has_more"], true);
    let last_id = asc["last_id"].as_str().unwrap();
    let next = get(&base, &format!("{path}?order=asc&limit=2&after={last_id}"))
        .await
        .json();
    assert_eq!(next["data"][0]["content"][0]["text"], "message 2");
    assert_eq!(next["data"][1]["content"][0]["text"], "message 3");
    let rest = get(
        &base,
        &format!(
            "{path}?order=asc&limit=2&after={}",
            next["last_id"].as_str().unwrap()
        ),
    )
    .await
    .json();
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["has_more"], false);
    let before = get(&base, &format!("{path}?before={}", ids[2]))
        .await
        .json();
    assert_eq!(before["data"].as_array().unwrap().len(), 2);
    assert_eq!(before["first_id"], ids[0].as_str());

    for bad in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "order=sideways",
        "after=msg_nope",
    ] {
        let reply = get(&base, &format!("{path}?{bad}")).await;
        assert_eq!(reply.status, 400, "{bad}");
        assert_eq!(reply.error()["param"], bad.split('=').next().unwrap());
    }
    let hundred = get(&base, &format!("{path}?limit=100")).await;
    assert_eq!(hundred.status, 200);
}

#[tokio::test]
async fn two_hundred_concurrent_branches_from_one_parent() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let root = create(&base, json!({"model": "m", "input": "root"})).await;
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let client = client.clone();
            let url = format!("{base}/responses");
            let body = json!({"model": "m", "input": format!("branch {i}"), "previous_response_id": root["id"]});
            tokio::spawn(async move {
                let resp = client.post(url).json(&body).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                (i, resp.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut texts = HashSet::new();
    for task in tasks {
        let (i, resp) = task.await.unwrap();
        let text = output_text(&resp);
        assert!(
            text.starts_with(&format!("[ctx 3 msgs] You said: \"branch {i}\".")),
            "{text}"
        );
        assert_eq!(resp["previous_response_id"], root["id"]);
        ids.insert(resp["id"].as_str().unwrap().to_owned());
        texts.insert(text);
    }
    assert_eq!(ids.len(), 200);
    assert_eq!(texts.len(), 200);
    assert_eq!(emu.response_count(), 201);
}

#[tokio::test]
async fn max_output_tokens_cuts_the_reply_as_incomplete() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let long = "word ".repeat(100);
    emu.script_replies([long.clone(), long.clone()]);
    let resp = create(
        &base,
        json!({"model": "m", "input": "hi", "max_output_tokens": 16}),
    )
    .await;
    assert_eq!(resp["status"], "incomplete");
    assert_eq!(
        resp["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(resp["usage"]["output_tokens"], 16);
    assert_eq!(output_text(&resp), long[..64]);
    assert_eq!(resp["output"][0]["status"], "incomplete");

    let reply = post(
        &base,
        "/responses",
        &json!({"model": "m", "input": "hi", "max_output_tokens": 16, "stream": true}),
    )
    .await;
    let last = sse_blocks(&reply.text).pop().unwrap();
    assert_eq!(last.event.as_deref(), Some("response.incomplete"));
    let data: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(data["response"]["status"], "incomplete");
}

#[tokio::test]
async fn serve_runs_on_a_given_listener_until_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = resptree::emulator::base_url(listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(Emulator::serve(
        resptree::EmulatorConfig::default(),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let resp = create(&base, json!({"model": "m", "input": "served"})).await;
    assert!(output_text(&resp).contains("\"served\""));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(reqwest::get(format!("{base}/responses/x")).await.is_err());
}

#[tokio::test]
async fn spawn_fails_with_a_config_error_when_the_port_is_taken() {
    let emu = Emulator::spawn().await.unwrap();
    let err = Emulator::builder()
        .listen(emu.addr())
        .spawn()
        .await
        .unwrap_err();
    assert!(matches!(err, resptree::Error::Config { .. }), "{err:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn set_latency_applies_to_requests_that_start_after_it() {
    let emu = Emulator::builder()
        .latency(std::time::Duration::from_secs(60))
        .spawn()
        .await
        .unwrap();
    let base = emu.base_url();
    emu.set_latency(std::time::Duration::ZERO);
    // Had the configured minute still applied, this would time out.
    let resp = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        create(&base, json!({"model": "m", "input": "quick"})),
    )
    .await
    .expect("the configured latency still applied");
    assert_eq!(resp["status"], "completed");

    let latency = std::time::Duration::from_millis(300);
    emu.set_latency(latency);
    let started = std::time::Instant::now();
    create(&base, json!({"model": "m", "input": "slow"})).await;
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());
    emu.shutdown().await;
}

/// The text of a reply continuing `id`, or the HTTP status when it was refused.
async fn continue_from(base: &str, id: &str) -> Result<String, u16> {
    let reply = post(
        base,
        "/responses",
        &json!({"model": "m", "input": "more", "previous_response_id": id}),
    )
    .await;
    if reply.status == 200 {
        Ok(output_text(&reply.json()))
    } else {
        Err(reply.status)
    }
}

#[tokio::test]
async fn chains_are_checked_again_after_any_response_dies() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let mut chain: Vec<String> = Vec::new();
    for turn in 0..4 {
        let mut body = json!({"model": "m", "input": format!("turn {turn}")});
        if let Some(previous) = chain.last() {
            body["previous_response_id"] = json!(previous);
        }
        chain.push(create(&base, body).await["id"].as_str().unwrap().to_owned());
    }
    let [a, b, c, d] = <[String; 4]>::try_from(chain).unwrap();
    // Four turns of input and output, plus the new input.
    assert!(
        continue_from(&base, &d)
            .await
            .unwrap()
            .starts_with("[ctx 9 msgs]")
    );

    // An unrelated death: every chain is walked again, and still live.
    let x = create(&base, json!({"model": "m", "input": "x"})).await;
    assert!(emu.delete_response(x["id"].as_str().unwrap()));
    assert!(continue_from(&base, &d).await.is_ok());
    // A child stored after the death, from a parent checked after it.
    let e = create(
        &base,
        json!({"model": "m", "input": "e", "previous_response_id": d}),
    )
    .await;
    let e = e["id"].as_str().unwrap();

    // A gap in the middle breaks everything below it, however it was checked before.
    assert!(emu.expire_response(&b));
    for below in [&b, &c, &d, &e.to_owned()] {
        assert_eq!(continue_from(&base, below).await, Err(400), "{below}");
    }
    assert!(
        continue_from(&base, &a)
            .await
            .unwrap()
            .starts_with("[ctx 3 msgs]")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn the_request_log_keeps_the_newest_requests_up_to_its_capacity() {
    let emu = Emulator::builder()
        .request_log_capacity(3)
        .spawn()
        .await
        .unwrap();
    let base = emu.base_url();
    for i in 0..5 {
        create(&base, json!({"model": "m", "input": format!("r{i}")})).await;
    }
    let inputs: Vec<String> = emu
        .requests()
        .iter()
        .map(|r| {
            r.body.as_ref().unwrap()["input"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(inputs, ["r2", "r3", "r4"]);
    assert_eq!(
        resptree::EmulatorConfig::default().request_log_capacity,
        10_000
    );
    emu.shutdown().await;
}
