//! Streaming through the client against a scripted raw-HTTP server: typed events,
//! reassembly, odd framing, truncation, stalls, error events, and no retries once
//! a stream has started.

// Helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use resptree::Error;
use resptree::client::{ChatChunk, ChatRequest, Client, CreateResponse, Input, StreamEvent};
use serde_json::{Value, json};

use crate::support::fixture_text;
use crate::support::raw_http::{RawServer, Step, reply, sse, sse_head};

fn client(server: &RawServer) -> Client {
    Client::builder()
        .base_url(server.base_url())
        .api_key("sk-stream-SECRET")
        .retry_base_delay(Duration::from_millis(1))
        .build()
        .unwrap()
}

fn request() -> CreateResponse {
    CreateResponse::new("gpt-4o-mini", Input::text("Plan a weekend in Paris"))
}

/// The first `n` events (blank-line separated blocks) of a fixture.
fn first_events(name: &str, n: usize) -> String {
    let text = fixture_text(name);
    let blocks: Vec<&str> = text.split("\n\n").take(n).collect();
    format!("{}\n\n", blocks.join("\n\n"))
}

#[tokio::test]
async fn typed_events_and_deltas_reassemble_to_the_final_text() {
    let body = fixture_text("stream-basic.sse");
    let server = RawServer::start(vec![sse(
        &[("x-request-id", "req_s1")],
        body.as_bytes(),
        97,
    )])
    .await;
    let mut stream = client(&server).create_stream(&request()).await.unwrap();
    assert_eq!(stream.request_id(), Some("req_s1"));
    assert_eq!(stream.response_id(), None);

    let sent = &server.requests()[0];
    assert_eq!(sent.json()["stream"], true);
    assert_eq!(sent.header("accept"), Some("text/event-stream"));

    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.unwrap());
    }
    assert!(matches!(events[0], StreamEvent::Created(_)));
    assert!(matches!(events[1], StreamEvent::InProgress(_)));
    let created_id = match &events[0] {
        StreamEvent::Created(r) => r.id.clone(),
        _ => unreachable!(),
    };
    assert_eq!(stream.response_id(), Some(created_id.as_str()));
    let deltas: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::OutputTextDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    let Some(StreamEvent::Completed(done)) = events.last() else {
        panic!("last event is not completed: {:?}", events.last());
    };
    assert_eq!(deltas, done.output_text());
    assert!(!deltas.is_empty());
    assert_eq!(done.request_id(), Some("req_s1"));
    // Every event of the fixture arrives, in order, and the stream ends after the terminal one.
    assert_eq!(events.len(), body.matches("\nevent: ").count() + 1);
    let done_item = events.iter().find_map(|e| match e {
        StreamEvent::OutputItemDone { item, .. } => Some(item.clone()),
        _ => None,
    });
    assert_eq!(
        done_item.map(|i| serde_json::to_value(i).unwrap()),
        Some(done.output_json()[0].clone())
    );
}

#[tokio::test]
async fn final_response_matches_the_completed_event() {
    let body = fixture_text("stream-basic.sse");
    let server = RawServer::start(vec![sse(&[], body.as_bytes(), 4096)]).await;
    let resp = client(&server)
        .create_stream(&request())
        .await
        .unwrap()
        .final_response()
        .await
        .unwrap();
    let last = body.trim_end().rsplit("data: ").next().unwrap();
    let raw: Value = serde_json::from_str(last).unwrap();
    assert_eq!(serde_json::to_value(&resp).unwrap(), raw["response"]);
    assert!(resp.is_completed());
}

#[tokio::test]
async fn final_response_fills_a_sparse_terminal_output_from_item_events() {
    let body = fixture_text("stream-basic.sse");
    let last_block_start = body.trim_end().rfind("event: response.completed").unwrap();
    let (head, last) = body.split_at(last_block_start);
    let data: Value =
        serde_json::from_str(last.trim_end().rsplit("data: ").next().unwrap()).unwrap();
    let mut sparse = data.clone();
    sparse["response"]["output"] = json!([]);
    let body = format!("{head}event: response.completed\ndata: {sparse}\n\n");
    let server = RawServer::start(vec![sse(&[], body.as_bytes(), 4096)]).await;
    let resp = client(&server)
        .create_stream(&request())
        .await
        .unwrap()
        .final_response()
        .await
        .unwrap();
    assert_eq!(Value::Array(resp.output_json()), data["response"]["output"]);
}

#[tokio::test]
async fn crlf_framing_comments_and_tiny_chunks_give_the_same_events() {
    let body = fixture_text("stream-basic.sse");
    let expected: Vec<StreamEvent> = {
        let server = RawServer::start(vec![sse(&[], body.as_bytes(), 4096)]).await;
        client(&server)
            .create_stream(&request())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    let odd = format!(": keep-alive\r\n\r\n{}", body.replace('\n', "\r\n"));
    let mut script = vec![Step::Send(sse_head(&[]))];
    for piece in odd.as_bytes().chunks(13) {
        script.push(Step::Send(piece.to_vec()));
        script.push(Step::Pause(Duration::from_micros(50)));
    }
    let server = RawServer::start(vec![script]).await;
    let got: Vec<StreamEvent> = client(&server)
        .create_stream(&request())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn failed_stream_yields_the_event_and_final_response_is_an_api_error() {
    let body = fixture_text("stream-failed.sse");
    let server = RawServer::start(vec![
        sse(&[("x-request-id", "req_f")], body.as_bytes(), 4096),
        sse(&[("x-request-id", "req_f2")], body.as_bytes(), 4096),
    ])
    .await;
    let client = client(&server);
    let events: Vec<StreamEvent> = client
        .create_stream(&request())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let Some(StreamEvent::Failed(failed)) = events.last() else {
        panic!("expected response.failed last: {:?}", events.last());
    };
    assert_eq!(
        failed.error.as_ref().unwrap().code.as_deref(),
        Some("server_error")
    );
    assert_eq!(failed.output_text(), "Saturday: start at the Eiffel Tower");

    let err = client
        .create_stream(&request())
        .await
        .unwrap()
        .final_response()
        .await
        .unwrap_err();
    let api = err
        .api_error()
        .unwrap_or_else(|| panic!("not an api error: {err:?}"));
    assert_eq!(api.code.as_deref(), Some("server_error"));
    assert!(
        api.message.contains("server had an error"),
        "{}",
        api.message
    );
    assert_eq!(err.request_id(), Some("req_f2"));
    // A failed stream is not retried.
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn truncated_stream_is_a_stream_error_and_is_never_retried() {
    // Three events, then the server closes the connection without a terminal event.
    let partial = first_events("stream-basic.sse", 3);
    let full = fixture_text("stream-basic.sse");
    let server = RawServer::start(vec![
        sse(&[("x-request-id", "req_t")], partial.as_bytes(), 4096),
        sse(&[], full.as_bytes(), 4096),
    ])
    .await;
    let mut stream = client(&server).create_stream(&request()).await.unwrap();
    let mut ok = 0;
    let err = loop {
        match stream.next().await {
            Some(Ok(_)) => ok += 1,
            Some(Err(e)) => break e,
            None => panic!("stream ended without an error"),
        }
    };
    assert_eq!(ok, 3);
    assert!(
        matches!(&err, Error::Stream { reason, .. } if reason.contains("terminal")),
        "{err:?}"
    );
    assert_eq!(err.request_id(), Some("req_t"));
    assert!(
        stream.response_id().is_some(),
        "the id is known from response.created"
    );
    assert!(
        stream.next().await.is_none(),
        "the stream ends after its error"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "a started stream must not be retried"
    );
}

#[tokio::test]
async fn connection_reset_mid_stream_is_a_stream_error() {
    // A chunked body cut off in the middle of a chunk: the transport reports an error.
    let head =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    let event = first_events("stream-basic.sse", 1);
    let chunk = format!("{:x}\r\n{event}\r\n", event.len());
    let script = vec![
        Step::Send(head),
        Step::Send(chunk.into_bytes()),
        Step::Send(b"400\r\ndata: {\"type\":\"response.in_pro".to_vec()),
    ];
    let server = RawServer::start(vec![script]).await;
    let results: Vec<_> = client(&server)
        .create_stream(&request())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(matches!(results[0], Ok(StreamEvent::Created(_))));
    assert!(
        matches!(&results[1], Err(Error::Stream { .. })),
        "{:?}",
        results[1]
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_stalled_stream_hits_the_idle_timeout() {
    let partial = first_events("stream-basic.sse", 2);
    let script = vec![
        Step::Send(sse_head(&[])),
        Step::Send(partial.into_bytes()),
        Step::Hang,
    ];
    let server = RawServer::start(vec![script]).await;
    let client = Client::builder()
        .base_url(server.base_url())
        .stream_idle_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let results: Vec<_> = client
        .create_stream(&request())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(results.len(), 3, "{results:?}");
    assert!(
        matches!(
            results[2],
            Err(Error::Timeout {
                what: "waiting for the next stream event",
                ..
            })
        ),
        "{:?}",
        results[2]
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn error_events_become_api_errors_flat_or_nested() {
    let created = first_events("stream-basic.sse", 1);
    let flat = format!(
        "{created}event: error\ndata: {{\"type\":\"error\",\"code\":\"server_error\",\"message\":\"boom\",\"param\":null,\"sequence_number\":1}}\n\n"
    );
    let nested = format!(
        "{created}data: {{\"type\":\"error\",\"error\":{{\"code\":\"rate_limit_exceeded\",\"message\":\"slow down\",\"type\":\"tokens\"}}}}\n\n"
    );
    let server = RawServer::start(vec![
        sse(&[("x-request-id", "req_e")], flat.as_bytes(), 4096),
        sse(&[], nested.as_bytes(), 4096),
    ])
    .await;
    let client = client(&server);
    for (code, message) in [
        ("server_error", "boom"),
        ("rate_limit_exceeded", "slow down"),
    ] {
        let results: Vec<_> = client
            .create_stream(&request())
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(results.len(), 2, "{results:?}");
        let err = results[1].as_ref().unwrap_err();
        let api = err.api_error().unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(
            (api.code.as_deref(), api.message.as_str()),
            (Some(code), message)
        );
        assert_eq!(
            api.status, None,
            "the stream's 200 is not the error's status"
        );
        assert_eq!(err.is_rate_limited(), code == "rate_limit_exceeded");
        // Only the nested form carries the error's own type.
        let kind = (code == "rate_limit_exceeded").then_some("tokens");
        assert_eq!(api.kind.as_deref(), kind);
    }
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn invalid_json_in_an_event_is_a_decode_error() {
    let body = format!(
        "{}event: response.in_progress\ndata: {{\"type\": oops}}\n\n",
        first_events("stream-basic.sse", 1)
    );
    let server = RawServer::start(vec![sse(&[], body.as_bytes(), 4096)]).await;
    let results: Vec<_> = client(&server)
        .create_stream(&request())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(results.len(), 2);
    match &results[1] {
        Err(Error::Decode { what, snippet, .. }) => {
            assert_eq!(
                (*what, snippet.as_str()),
                ("stream event", "{\"type\": oops}")
            );
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[tokio::test]
async fn done_before_a_terminal_event_is_a_stream_error() {
    let body = format!("{}data: [DONE]\n\n", first_events("stream-basic.sse", 2));
    let server = RawServer::start(vec![sse(&[], body.as_bytes(), 4096)]).await;
    let err = client(&server)
        .create_stream(&request())
        .await
        .unwrap()
        .final_response()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Stream { reason, .. } if reason.contains("[DONE]")),
        "{err:?}"
    );
}

#[tokio::test]
async fn unknown_events_pass_through_as_other() {
    let extra = "event: response.reasoning_summary_text.delta\ndata: {\"type\":\"response.reasoning_summary_text.delta\",\"delta\":\"hm\",\"sequence_number\":2}\n\n";
    let body = fixture_text("stream-basic.sse").replacen("\n\n", &format!("\n\n{extra}"), 1);
    let server = RawServer::start(vec![sse(&[], body.as_bytes(), 4096)]).await;
    let events: Vec<StreamEvent> = client(&server)
        .create_stream(&request())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let other = events
        .iter()
        .find_map(|e| match e {
            StreamEvent::Other { kind, data } => Some((kind.clone(), data["delta"].clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        other,
        (
            "response.reasoning_summary_text.delta".to_owned(),
            json!("hm")
        )
    );
    assert!(events.last().unwrap().is_terminal());
}

#[tokio::test]
async fn errors_before_the_stream_starts_are_retried() {
    let server = RawServer::start(vec![
        reply(
            503,
            &[],
            r#"{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}"#,
        ),
        sse(&[], fixture_text("stream-basic.sse").as_bytes(), 4096),
    ])
    .await;
    let resp = client(&server)
        .create_stream(&request())
        .await
        .unwrap()
        .final_response()
        .await
        .unwrap();
    assert!(resp.is_completed());
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn chat_stream_interleaves_choices_and_ends_at_done() {
    let body = fixture_text("chat-n3-stream.sse");
    let server = RawServer::start(vec![sse(
        &[("x-request-id", "req_cs")],
        body.as_bytes(),
        211,
    )])
    .await;
    let req = ChatRequest::new(
        "gpt-4o-mini",
        vec![json!({"role": "user", "content": "Paris?"})],
    )
    .n(3)
    .param("stream_options", json!({"include_usage": true}));
    let stream = client(&server).chat_stream(&req).await.unwrap();
    assert_eq!(stream.request_id(), Some("req_cs"));
    assert_eq!(server.requests()[0].json()["stream"], true);
    let chunks: Vec<ChatChunk> = stream.try_collect().await.unwrap();

    let mut texts = [String::new(), String::new(), String::new()];
    let mut finished = 0;
    for chunk in &chunks {
        for choice in &chunk.choices {
            texts[choice.index as usize].push_str(choice.delta.content.as_deref().unwrap_or(""));
            finished += usize::from(choice.finish_reason.is_some());
        }
    }
    // The expected texts, computed independently from the fixture's raw JSON.
    let mut expected = [String::new(), String::new(), String::new()];
    for line in body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
    {
        let v: Value = serde_json::from_str(line).unwrap();
        for c in v["choices"].as_array().unwrap() {
            let i = c["index"].as_u64().unwrap() as usize;
            expected[i].push_str(c["delta"]["content"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(texts, expected);
    assert!(texts.iter().all(|t| !t.is_empty()));
    assert_eq!(finished, 3);
    let usage = chunks.last().unwrap().usage.as_ref().unwrap();
    assert!(usage.completion_tokens > 0);

    // The same bytes reassembled by final_completion equal the non-streamed fixture.
    let server = RawServer::start(vec![sse(&[], body.as_bytes(), 211)]).await;
    let rebuilt = client(&server)
        .chat_stream(&req)
        .await
        .unwrap()
        .final_completion()
        .await
        .unwrap();
    assert_eq!(
        rebuilt
            .choices
            .iter()
            .map(|c| c.message.content.clone().unwrap())
            .collect::<Vec<_>>(),
        expected.to_vec()
    );
    assert!(
        rebuilt
            .choices
            .iter()
            .all(|c| c.message.role == "assistant" && c.finish_reason.as_deref() == Some("stop"))
    );
    assert_eq!(rebuilt.usage.as_ref(), Some(usage));
}

#[tokio::test]
async fn chat_stream_without_done_is_a_stream_error() {
    let body = fixture_text("chat-n3-stream.sse").replace("data: [DONE]", "");
    let server = RawServer::start(vec![sse(&[], body.as_bytes(), 4096)]).await;
    let req = ChatRequest::new(
        "gpt-4o-mini",
        vec![json!({"role": "user", "content": "Paris?"})],
    );
    let results: Vec<_> = client(&server)
        .chat_stream(&req)
        .await
        .unwrap()
        .collect()
        .await;
    assert!(results[..results.len() - 1].iter().all(Result::is_ok));
    assert!(
        matches!(results.last(), Some(Err(Error::Stream { .. }))),
        "{:?}",
        results.last()
    );
}

// Errors inside a stream, against the emulator: the reply is `200 OK`, the error
// comes later as an `error` event (or chunk), and must keep its code.

mod in_stream {
    use futures_util::StreamExt;
    use resptree::Error;
    use resptree::client::{ChatRequest, Client, CreateResponse, Input, StreamEvent};
    use resptree::emulator::{Emulator, Fault};
    use serde_json::json;

    fn client(emu: &Emulator) -> Client {
        Client::builder()
            .base_url(emu.base_url())
            .api_key("sk-stream-SECRET")
            .build()
            .unwrap()
    }

    fn error_event(after_events: usize, code: &str) -> Fault {
        Fault::ErrorEvent {
            after_events,
            code: code.to_owned(),
            count: 1,
        }
    }

    /// Streams `request` to its end: the events before the error, and the error.
    async fn events_then_error(
        client: &Client,
        request: &CreateResponse,
    ) -> (Vec<StreamEvent>, Error) {
        let mut stream = client.create_stream(request).await.unwrap();
        let mut events = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => events.push(event),
                Err(err) => {
                    assert!(
                        stream.next().await.is_none(),
                        "the stream ends at the error"
                    );
                    return (events, err);
                }
            }
        }
        panic!("the stream ended without an error after {events:?}");
    }

    #[tokio::test]
    async fn previous_response_not_found_in_a_stream_is_recognised() {
        let emu = Emulator::spawn().await.unwrap();
        let client = client(&emu);
        let parent = client
            .create(&CreateResponse::new("gpt-4o-mini", Input::text("Paris")).store(true))
            .await
            .unwrap();
        emu.inject(error_event(2, "previous_response_not_found"));
        let child = CreateResponse::new("gpt-4o-mini", Input::text("And Lyon?"))
            .previous_response_id(&parent.id);
        let (events, err) = events_then_error(&client, &child).await;

        assert_eq!(events.len(), 2, "created and in_progress came first");
        assert!(matches!(err, Error::Api(_)), "{err:?}");
        assert!(err.is_previous_response_not_found(), "{err:?}");
        let api = err.api_error().unwrap();
        assert_eq!(api.status, None, "a 200 stream gives the error no status");
        assert_eq!(err.status(), None);
        assert_eq!(api.param.as_deref(), Some("previous_response_id"));
        assert_eq!(api.kind, None, "the flat event's type is the event's own");
        assert!(api.message.contains(&parent.id), "{}", api.message);
        assert!(err.request_id().is_some_and(|id| id.starts_with("req_")));
        assert!(!err.is_not_found(), "no 404 was sent");
        // The failed child was not stored, and nothing was retried.
        assert_eq!(emu.response_count(), 1);
        assert_eq!(emu.requests().len(), 2);
    }

    #[tokio::test]
    async fn other_codes_keep_their_meaning_in_a_stream() {
        let emu = Emulator::spawn().await.unwrap();
        let client = client(&emu);
        let ask = CreateResponse::new("gpt-4o-mini", Input::text("A very long question"));

        emu.inject(error_event(0, "context_length_exceeded"));
        let (events, err) = events_then_error(&client, &ask).await;
        assert!(events.is_empty());
        assert!(err.is_context_length_exceeded(), "{err:?}");
        assert_eq!(err.api_error().unwrap().param.as_deref(), Some("input"));

        emu.inject(error_event(1, "rate_limit_exceeded"));
        let (_, err) = events_then_error(&client, &ask).await;
        assert!(err.is_rate_limited(), "{err:?}");
        assert_eq!(err.status(), None);

        emu.inject(error_event(1, "insufficient_quota"));
        let (_, err) = events_then_error(&client, &ask).await;
        assert!(err.is_insufficient_quota(), "{err:?}");
        assert!(
            !err.is_rate_limited(),
            "waiting does not cure an empty account"
        );

        emu.inject(error_event(1, "invalid_api_key"));
        let (_, err) = events_then_error(&client, &ask).await;
        assert!(err.is_authentication(), "{err:?}");

        emu.inject(error_event(3, "server_error"));
        let (events, err) = events_then_error(&client, &ask).await;
        assert_eq!(events.len(), 3);
        let api = err.api_error().unwrap();
        assert_eq!(
            (api.status, api.code.as_deref()),
            (None, Some("server_error"))
        );
        assert!(!err.is_previous_response_not_found() && !err.is_context_length_exceeded());
        assert_eq!(emu.response_count(), 0, "no failed stream was stored");
    }

    #[tokio::test]
    async fn a_failed_response_keeps_its_code_without_a_status() {
        let emu = Emulator::spawn().await.unwrap();
        emu.inject(Fault::FailMidStream {
            after_deltas: 1,
            count: 1,
        });
        let err = client(&emu)
            .create_stream(&CreateResponse::new("gpt-4o-mini", Input::text("hi")))
            .await
            .unwrap()
            .final_response()
            .await
            .unwrap_err();
        let api = err.api_error().unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(api.status, None);
        assert_eq!(api.code.as_deref(), Some("server_error"));
        assert!(err.to_string().contains("in the stream"), "{err}");
        assert!(err.request_id().is_some());
    }

    #[tokio::test]
    async fn an_error_chunk_in_a_chat_stream_keeps_its_code() {
        let emu = Emulator::spawn().await.unwrap();
        emu.inject(error_event(2, "context_length_exceeded"));
        let request = ChatRequest::new(
            "gpt-4o-mini",
            vec![json!({"role": "user", "content": "A very long question"})],
        );
        let mut stream = client(&emu).chat_stream(&request).await.unwrap();
        let mut chunks = 0;
        let err = loop {
            match stream.next().await {
                Some(Ok(_)) => chunks += 1,
                Some(Err(err)) => break err,
                None => panic!("the chat stream ended without an error"),
            }
        };
        assert_eq!(chunks, 2);
        assert!(err.is_context_length_exceeded(), "{err:?}");
        assert_eq!(err.status(), None);
        assert!(stream.next().await.is_none());
    }
}
