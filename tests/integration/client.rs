//! The Responses API client against a scripted raw-HTTP server: every call, error
//! mapping, retries, timeouts, malformed bodies and key redaction.

// Helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::TryStreamExt;
use resptree::Error;
use resptree::client::{
    ChatRequest, Client, CreateResponse, Input, InputItemsQuery, OutputItem, Response,
};
use serde_json::{Value, json};

use crate::support::fixture_text;
use crate::support::raw_http::{RawServer, Script, Step, reply};

const KEY: &str = "sk-test-SECRET-do-not-leak-0123456789";

fn client(server: &RawServer) -> Client {
    Client::builder()
        .base_url(server.base_url())
        .api_key(KEY)
        .organization("org-test")
        .project("proj-test")
        .retry_base_delay(Duration::from_millis(1))
        .build()
        .unwrap()
}

fn request() -> CreateResponse {
    CreateResponse::new("gpt-4o-mini", Input::text("Plan a weekend in Paris"))
}

fn error_body(message: &str, code: &str) -> String {
    json!({"error": {"message": message, "type": "server_error", "param": null, "code": code}})
        .to_string()
}

/// The key must not be in an error's Display, alternate Display, Debug or sources.
fn assert_no_key(err: &Error) {
    let mut texts = vec![format!("{err}"), format!("{err:#}"), format!("{err:?}")];
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        texts.push(format!("{s} {s:?}"));
        source = s.source();
    }
    for text in texts {
        assert!(!text.contains("SECRET"), "key leaked: {text}");
    }
}

#[tokio::test]
async fn create_sends_the_request_and_decodes_the_response() {
    let body = fixture_text("response-child.json");
    let server =
        RawServer::start(vec![reply(200, &[("x-request-id", "req_create1")], &body)]).await;
    let req = CreateResponse::new("gpt-4o-mini", Input::text("Which museums?"))
        .previous_response_id("resp_68a1f3c2e9b04d7a8c1e5f20b3d4a6c7")
        .instructions("You are a concise travel planner.")
        .max_output_tokens(300)
        .temperature(0.5)
        .store(true)
        .metadata([("trip".to_owned(), "paris".to_owned())].into())
        .param("include", json!(["reasoning.encrypted_content"]));
    let resp = client(&server).create(&req).await.unwrap();

    let sent = &server.requests()[0];
    assert_eq!(
        (sent.method.as_str(), sent.target.as_str()),
        ("POST", "/v1/responses")
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(sent.header("openai-organization"), Some("org-test"));
    assert_eq!(sent.header("openai-project"), Some("proj-test"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.json(),
        json!({"model": "gpt-4o-mini", "input": "Which museums?",
               "previous_response_id": "resp_68a1f3c2e9b04d7a8c1e5f20b3d4a6c7",
               "instructions": "You are a concise travel planner.", "max_output_tokens": 300,
               "temperature": 0.5, "store": true, "metadata": {"trip": "paris"},
               "include": ["reasoning.encrypted_content"]})
    );

    let raw: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(resp.id, raw["id"]);
    assert_eq!(resp.request_id(), Some("req_create1"));
    assert_eq!(
        resp.previous_response_id.as_deref(),
        raw["previous_response_id"].as_str()
    );
    assert_eq!(resp.output_text(), raw["output"][0]["content"][0]["text"]);
    let usage = resp.usage.as_ref().unwrap();
    assert_eq!(
        (usage.input_tokens, usage.output_tokens, usage.total_tokens),
        (1184, 41, 1225)
    );
    assert_eq!(
        usage.input_tokens_details.as_ref().unwrap().cached_tokens,
        1024
    );
    assert_eq!(resp.metadata.as_ref().unwrap()["trip"], "paris-weekend");
    assert_eq!(resp.extra["prompt_cache_key"], "paris-weekend-planner");
    // Output items are lossless, and the whole Response keeps every field.
    assert_eq!(Value::Array(resp.output_json()), raw["output"]);
    assert!(matches!(resp.output[0], OutputItem::Message(_)));
    assert_eq!(serde_json::to_value(&resp).unwrap(), raw);
}

#[tokio::test]
async fn input_items_sent_as_an_array() {
    let server =
        RawServer::start(vec![reply(200, &[], &fixture_text("response-basic.json"))]).await;
    let items = vec![json!({"role": "user", "content": [{"type": "input_text", "text": "hi"}]})];
    client(&server)
        .create(&CreateResponse::new("m", Input::items(items.clone())))
        .await
        .unwrap();
    assert_eq!(server.requests()[0].json()["input"], Value::Array(items));
}

#[tokio::test]
async fn retrieve_delete_cancel_use_their_paths() {
    let basic = fixture_text("response-basic.json");
    let id = serde_json::from_str::<Value>(&basic).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancelled = basic.replace("\"completed\"", "\"cancelled\"");
    let server = RawServer::start(vec![
        reply(200, &[("x-request-id", "req_get")], &basic),
        reply(
            200,
            &[("x-request-id", "req_del")],
            &fixture_text("deleted.json"),
        ),
        reply(200, &[], &cancelled),
    ])
    .await;
    let client = client(&server);

    let got = client.retrieve(&id).await.unwrap();
    assert_eq!(
        (got.id.as_str(), got.request_id()),
        (id.as_str(), Some("req_get"))
    );
    let deleted = client.delete(&id).await.unwrap();
    assert_eq!(
        (deleted.id.as_str(), deleted.request_id.as_deref()),
        (id.as_str(), Some("req_del"))
    );
    let cancelled = client.cancel(&id).await.unwrap();
    assert_eq!(cancelled.status.as_deref(), Some("cancelled"));

    let seen: Vec<(String, String)> = server
        .requests()
        .into_iter()
        .map(|r| (r.method, r.target))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("GET".to_owned(), format!("/v1/responses/{id}")),
            ("DELETE".to_owned(), format!("/v1/responses/{id}")),
            ("POST".to_owned(), format!("/v1/responses/{id}/cancel")),
        ]
    );
}

#[tokio::test]
async fn ids_that_would_change_the_url_are_rejected_before_sending() {
    let server = RawServer::start(Vec::new()).await;
    let err = client(&server)
        .retrieve("resp_1/../../admin")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidId {
                kind: "response id",
                ..
            }
        ),
        "{err}"
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn input_items_follow_the_cursor_across_pages() {
    let page1 = json!({"object": "list", "data": [{"id": "msg_3", "type": "message"}, {"id": "msg_2", "type": "message"}],
                       "first_id": "msg_3", "last_id": "msg_2", "has_more": true});
    let page2 = fixture_text("input-items-page.json");
    let server = RawServer::start(vec![
        reply(200, &[], &page1.to_string()),
        reply(200, &[], &page2),
    ])
    .await;
    let items: Vec<Value> = client(&server)
        .input_items("resp_1", InputItemsQuery::default().limit(2))
        .try_collect()
        .await
        .unwrap();
    let page2: Value = serde_json::from_str(&page2).unwrap();
    let mut expected = page1["data"].as_array().unwrap().clone();
    expected.extend(page2["data"].as_array().unwrap().iter().cloned());
    assert_eq!(items, expected);
    let targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        vec![
            "/v1/responses/resp_1/input_items?limit=2",
            "/v1/responses/resp_1/input_items?limit=2&after=msg_2"
        ]
    );
}

#[tokio::test]
async fn api_errors_keep_status_code_param_and_request_id_and_are_not_retried() {
    let server = RawServer::start(vec![reply(
        400,
        &[("x-request-id", "req_bad")],
        &fixture_text("error-previous-not-found.json"),
    )])
    .await;
    let err = client(&server).create(&request()).await.unwrap_err();
    assert!(err.is_previous_response_not_found(), "{err:?}");
    let api = err.api_error().unwrap();
    assert_eq!(api.status, Some(400));
    assert_eq!(api.param.as_deref(), Some("previous_response_id"));
    assert_eq!(api.kind.as_deref(), Some("invalid_request_error"));
    assert_eq!(err.request_id(), Some("req_bad"));
    assert_eq!(server.requests().len(), 1);
    assert_no_key(&err);
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_retried() {
    let limit = fixture_text("error-rate-limit.json");
    let server = RawServer::start(vec![
        reply(429, &[("retry-after-ms", "20")], &limit),
        reply(429, &[("retry-after", "0.02")], &limit),
        reply(200, &[], &fixture_text("response-basic.json")),
    ])
    .await;
    let resp = client(&server).create(&request()).await.unwrap();
    assert!(resp.is_completed());
    let retries: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| r.header("x-stainless-retry-count").map(str::to_owned))
        .collect();
    assert_eq!(
        retries,
        [Some("0".into()), Some("1".into()), Some("2".into())]
    );
}

#[tokio::test]
async fn rate_limit_error_carries_the_retry_hint() {
    let server = RawServer::start(vec![reply(
        429,
        &[("retry-after", "7"), ("x-request-id", "req_429")],
        &fixture_text("error-rate-limit.json"),
    )])
    .await;
    let client = Client::builder()
        .base_url(server.base_url())
        .max_retries(0)
        .build()
        .unwrap();
    let err = client.create(&request()).await.unwrap_err();
    assert!(err.is_rate_limited(), "{err:?}");
    let api = err.api_error().unwrap();
    assert_eq!(api.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(api.code.as_deref(), Some("rate_limit_exceeded"));
    assert_eq!(err.request_id(), Some("req_429"));
}

#[tokio::test]
async fn insufficient_quota_is_not_a_rate_limit_and_is_not_retried() {
    let quota = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    let server = RawServer::start(vec![
        reply(429, &[("retry-after-ms", "1")], quota),
        reply(200, &[], &fixture_text("response-basic.json")),
    ])
    .await;
    let err = client(&server).create(&request()).await.unwrap_err();
    assert!(err.is_insufficient_quota(), "{err:?}");
    assert!(!err.is_rate_limited(), "{err:?}");
    assert!(matches!(err, Error::Api(_)), "{err:?}");
    assert_eq!(err.status(), Some(429));
    assert_eq!(
        server.requests().len(),
        1,
        "waiting does not refill an account"
    );

    // The server's explicit verdict still wins.
    let server = RawServer::start(vec![
        reply(429, &[("x-should-retry", "true")], quota),
        reply(200, &[], &fixture_text("response-basic.json")),
    ])
    .await;
    client(&server).create(&request()).await.unwrap();
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn server_error_then_success() {
    let server = RawServer::start(vec![
        reply(503, &[], &error_body("overloaded", "server_error")),
        reply(200, &[], &fixture_text("response-basic.json")),
    ])
    .await;
    let resp = client(&server).create(&request()).await.unwrap();
    assert!(resp.is_completed());
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn gives_up_after_max_retries_with_the_last_error() {
    let server = RawServer::start(vec![
        reply(
            500,
            &[("x-request-id", "req_1")],
            &error_body("first", "server_error"),
        ),
        reply(
            503,
            &[("x-request-id", "req_2")],
            &error_body("second", "server_error"),
        ),
        reply(
            503,
            &[("x-request-id", "req_3")],
            &error_body("third", "server_error"),
        ),
        reply(200, &[], &fixture_text("response-basic.json")),
    ])
    .await;
    let err = client(&server).create(&request()).await.unwrap_err();
    let api = err.api_error().unwrap();
    assert_eq!((api.status, api.message.as_str()), (Some(503), "third"));
    assert_eq!(err.request_id(), Some("req_3"));
    assert_eq!(server.requests().len(), 3, "max_retries 2 means 3 attempts");
}

#[tokio::test]
async fn a_create_behind_a_gateway_error_is_not_sent_again() {
    // A 502/504 from a gateway: the origin may have made the response, so a
    // second create could make a duplicate. A GET is still retried.
    for status in [502, 504] {
        let server = RawServer::start(vec![
            reply(status, &[], &error_body("gateway", "server_error")),
            reply(200, &[], &fixture_text("response-basic.json")),
        ])
        .await;
        let err = client(&server).create(&request()).await.unwrap_err();
        assert_eq!(err.api_error().unwrap().status, Some(status));
        assert!(err.may_have_reached_server());
        assert_eq!(server.requests().len(), 1, "{status}");
        let server = RawServer::start(vec![
            reply(status, &[], &error_body("gateway", "server_error")),
            reply(200, &[], &fixture_text("response-basic.json")),
        ])
        .await;
        client(&server).retrieve("resp_1").await.unwrap();
        assert_eq!(server.requests().len(), 2, "{status}");
    }
}

#[tokio::test]
async fn x_should_retry_overrides_the_status() {
    let server = RawServer::start(vec![
        reply(
            503,
            &[("x-should-retry", "false")],
            &error_body("no", "server_error"),
        ),
        reply(200, &[], &fixture_text("response-basic.json")),
    ])
    .await;
    let err = client(&server).create(&request()).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(server.requests().len(), 1);

    let server = RawServer::start(vec![
        reply(400, &[("x-should-retry", "true")], &error_body("yes", "x")),
        reply(200, &[], &fixture_text("response-basic.json")),
    ])
    .await;
    client(&server).create(&request()).await.unwrap();
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn dropped_connections_are_retried_then_reported_as_connection_errors() {
    // A connection closed before any reply byte: a read is retried like the
    // SDKs do.
    let drop_it: Script = Vec::new();
    let server = RawServer::start(vec![
        drop_it.clone(),
        reply(200, &[], &fixture_text("response-basic.json")),
    ])
    .await;
    client(&server).retrieve("resp_1").await.unwrap();
    assert_eq!(server.requests().len(), 2);

    let server = RawServer::start(vec![drop_it.clone(), drop_it.clone(), drop_it.clone()]).await;
    let err = client(&server).retrieve("resp_1").await.unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 3);

    // A create is not: the server had the request and may have made the
    // response before the connection died, so a second one could duplicate it.
    let server = RawServer::start(vec![
        drop_it,
        reply(200, &[], &fixture_text("response-basic.json")),
    ])
    .await;
    let err = client(&server).create(&request()).await.unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(err.may_have_reached_server());
    assert_eq!(server.requests().len(), 1);
    assert!(
        !format!("{err:?}").contains(server.base_url()),
        "URL not stripped: {err:?}"
    );
    assert_no_key(&err);
}

#[tokio::test]
async fn connection_refused_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = Client::builder()
        .base_url(format!("http://{addr}/v1"))
        .api_key(KEY)
        .max_retries(1)
        .retry_base_delay(Duration::from_millis(1))
        .build()
        .unwrap();
    let err = client.create(&request()).await.unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert_eq!(err.to_string(), "error sending request");
    assert_no_key(&err);
}

#[tokio::test]
async fn a_silent_server_times_out_and_each_attempt_is_retried() {
    let server = RawServer::start(vec![vec![Step::Hang], vec![Step::Hang], vec![Step::Hang]]).await;
    let client = Client::builder()
        .base_url(server.base_url())
        .timeout(Duration::from_millis(200))
        .max_retries(1)
        .retry_base_delay(Duration::from_millis(1))
        .build()
        .unwrap();
    let err = client.retrieve("resp_1").await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout { what: "waiting for the response", after } if after == Duration::from_millis(200)),
        "{err:?}"
    );
    assert!(err.is_timeout());
    assert_eq!(server.requests().len(), 2);
    // A create that timed out after sending is not retried: the server may
    // still make the response.
    let err = client.create(&request()).await.unwrap_err();
    assert!(err.is_timeout() && err.may_have_reached_server(), "{err:?}");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn malformed_bodies_are_decode_errors_with_a_snippet() {
    let server = RawServer::start(vec![
        reply(200, &[], "{\"id\": \"resp_1\", \"output\": [tru"),
        reply(200, &[], "<html>proxy says hi</html>"),
    ])
    .await;
    let client = client(&server);
    for expected in [
        "{\"id\": \"resp_1\", \"output\": [tru",
        "<html>proxy says hi</html>",
    ] {
        let err = client.create(&request()).await.unwrap_err();
        match &err {
            Error::Decode { what, snippet, .. } => {
                assert_eq!((*what, snippet.as_str()), ("response body", expected));
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
    }
    // Decode errors are not retried: the server answered.
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn non_json_error_bodies_keep_status_and_text() {
    let server = RawServer::start(vec![reply(
        502,
        &[("x-request-id", "req_gw")],
        "Bad Gateway",
    )])
    .await;
    let client = Client::builder()
        .base_url(server.base_url())
        .max_retries(0)
        .build()
        .unwrap();
    let err = client.retrieve("resp_1").await.unwrap_err();
    let api = err.api_error().unwrap();
    assert_eq!(
        (api.status, api.message.as_str()),
        (Some(502), "Bad Gateway")
    );
    assert_eq!(
        err.to_string(),
        "server returned 502: Bad Gateway [request id req_gw]"
    );
}

#[tokio::test]
async fn the_key_never_appears_in_debug_or_errors() {
    let server = RawServer::start(vec![reply(
        401,
        &[],
        &error_body("Incorrect API key provided", "invalid_api_key"),
    )])
    .await;
    let client = client(&server);
    let shown = format!("{client:?} {client:#?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    let err = client.create(&request()).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(err.is_authentication(), "{err:?}");
    assert_no_key(&err);
}

#[tokio::test]
async fn chat_completion_with_n_choices() {
    let body = fixture_text("chat-n3.json");
    let server = RawServer::start(vec![reply(200, &[("x-request-id", "req_chat")], &body)]).await;
    let req = ChatRequest::new(
        "gpt-4o-mini",
        vec![json!({"role": "user", "content": "Plan a weekend in Paris"})],
    )
    .n(3);
    let completion = client(&server).chat(&req).await.unwrap();

    let sent = &server.requests()[0];
    assert_eq!(sent.target, "/v1/chat/completions");
    assert_eq!(sent.json()["n"], 3);
    assert_eq!(sent.json().get("stream"), None);

    let raw: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(completion.request_id(), Some("req_chat"));
    assert_eq!(completion.choices.len(), 3);
    for (i, choice) in completion.choices.iter().enumerate() {
        assert_eq!(choice.index as usize, i);
        assert_eq!(
            choice.message.content.as_deref(),
            raw["choices"][i]["message"]["content"].as_str()
        );
        assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
    }
    let usage = completion.usage.as_ref().unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (24, 118, 142)
    );
}

#[tokio::test]
async fn responses_survive_unknown_fields_and_item_types() {
    let mut raw: Value = serde_json::from_str(&fixture_text("response-basic.json")).unwrap();
    raw["brand_new_field"] = json!({"nested": [1, 2]});
    raw["output"].as_array_mut().unwrap().insert(
        0,
        json!({"type": "hologram_call", "id": "hg_1", "status": "completed", "frames": 3}),
    );
    let server = RawServer::start(vec![reply(200, &[], &raw.to_string())]).await;
    let resp: Response = client(&server).create(&request()).await.unwrap();
    assert_eq!(resp.output[0].kind(), "hologram_call");
    assert!(matches!(resp.output[0], OutputItem::Other(_)));
    assert!(!resp.output_text().is_empty());
    assert_eq!(serde_json::to_value(&resp).unwrap(), raw);
}

#[tokio::test]
async fn a_body_cut_short_is_a_connection_error_and_retried() {
    let cut = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5000\r\nconnection: close\r\n\r\n{\"id\":\"resp_1\"".to_vec();
    let server = RawServer::start(vec![
        vec![Step::Send(cut.clone())],
        reply(200, &[], &fixture_text("response-basic.json")),
        vec![Step::Send(cut.clone())],
        vec![Step::Send(cut)],
    ])
    .await;
    let client = client(&server);
    client.retrieve("resp_1").await.unwrap();
    assert_eq!(server.requests().len(), 2);
    // A create whose success reply broke off is not retried: the response
    // exists on the server.
    let err = client.create(&request()).await.unwrap_err();
    assert!(
        matches!(err, Error::Connection { .. }) && err.may_have_reached_server(),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 3);

    let no_retry = Client::builder()
        .base_url(server.base_url())
        .max_retries(0)
        .build()
        .unwrap();
    let err = no_retry.create(&request()).await.unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
}
