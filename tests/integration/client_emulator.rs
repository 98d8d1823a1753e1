//! The client against the in-process emulator: every call end to end, streaming
//! reassembly, retries and faults.

// Helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use resptree::Error;
use resptree::client::{
    ChatRequest, Client, CreateResponse, Input, InputItemsQuery, Order, StreamEvent,
};
use resptree::emulator::{Emulator, Fault};
use serde_json::{Value, json};

fn client(emu: &Emulator) -> Client {
    Client::builder()
        .base_url(emu.base_url())
        .api_key("sk-emu-SECRET")
        .retry_base_delay(Duration::from_millis(1))
        .build()
        .unwrap()
}

fn ask(text: &str) -> CreateResponse {
    CreateResponse::new("gpt-4o-mini", Input::text(text))
}

#[tokio::test]
async fn every_call_round_trips() {
    let emu = Emulator::spawn().await.unwrap();
    let client = client(&emu);

    let root = client
        .create(&ask("Plan a weekend in Paris").store(true))
        .await
        .unwrap();
    assert!(root.is_completed());
    assert!(root.request_id().is_some());
    assert!(
        root.output_text().contains("Plan a weekend in Paris"),
        "{}",
        root.output_text()
    );

    let items = vec![
        json!({"role": "user", "content": [{"type": "input_text", "text": "Cheaper, please"}]}),
        json!({"role": "user", "content": "And shorter"}),
    ];
    let child = client
        .create(
            &CreateResponse::new("gpt-4o-mini", Input::items(items.clone()))
                .previous_response_id(&root.id)
                .instructions("Be brief."),
        )
        .await
        .unwrap();
    assert_eq!(
        child.previous_response_id.as_deref(),
        Some(root.id.as_str())
    );
    assert!(child.usage.as_ref().unwrap().input_tokens > root.usage.as_ref().unwrap().input_tokens);

    // What the server stored is what create returned.
    let got = client.retrieve(&child.id).await.unwrap();
    assert_eq!(got.id, child.id);
    assert_eq!(got.output_json(), child.output_json());
    assert_eq!(got.output_text(), child.output_text());

    // Paging one item at a time still yields every input item, oldest first.
    let listed: Vec<Value> = client
        .input_items(
            &child.id,
            InputItemsQuery::default().limit(1).order(Order::Asc),
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["content"][0]["text"], "And shorter");
    let pages = emu
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/input_items"))
        .count();
    assert!(pages >= 2, "expected pagination, saw {pages} page requests");

    let deleted = client.delete(&root.id).await.unwrap();
    assert_eq!(deleted.id, root.id);
    let err = client.retrieve(&root.id).await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err:?}");
    assert!(err.is_not_found(), "an API 404 is not found: {err:?}");
    let err = client
        .create(&ask("again").previous_response_id(&root.id))
        .await
        .unwrap_err();
    assert!(err.is_previous_response_not_found(), "{err:?}");
    assert!(err.request_id().is_some());
}

#[tokio::test]
async fn streamed_deltas_match_the_non_streamed_text() {
    // Two emulators with the same seed give the same first reply to the same input.
    let plain = Emulator::spawn().await.unwrap();
    let streamed = Emulator::spawn().await.unwrap();
    let expected = client(&plain)
        .create(&ask("Tell me about Montmartre"))
        .await
        .unwrap();

    let mut stream = client(&streamed)
        .create_stream(&ask("Tell me about Montmartre"))
        .await
        .unwrap();
    let mut deltas = String::new();
    let mut completed = None;
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            StreamEvent::OutputTextDelta { delta, .. } => deltas.push_str(&delta),
            StreamEvent::Completed(r) => completed = Some(r),
            _ => {}
        }
    }
    let completed = completed.unwrap();
    assert_eq!(deltas, expected.output_text());
    assert_eq!(completed.output_text(), expected.output_text());
    assert_eq!(stream.response_id(), Some(completed.id.as_str()));
    // The streamed response was stored like a plain one.
    let stored = client(&streamed).retrieve(&completed.id).await.unwrap();
    assert_eq!(stored.output_json(), completed.output_json());

    let again = client(&plain)
        .create_stream(&ask("A second root"))
        .await
        .unwrap()
        .final_response()
        .await
        .unwrap();
    assert!(again.is_completed());
    assert!(!again.output_text().is_empty());
}

#[tokio::test]
async fn retries_rate_limits_server_errors_and_dropped_connections() {
    let emu = Emulator::spawn().await.unwrap();
    let client = client(&emu);
    emu.inject(Fault::RateLimit {
        retry_after: Some(Duration::from_millis(10)),
        use_ms_header: true,
        count: 1,
    });
    emu.inject(Fault::Status {
        status: 503,
        count: 1,
    });
    let resp = client.create(&ask("hi")).await.unwrap();
    assert!(resp.is_completed());
    assert_eq!(emu.requests().len(), 3);

    // A connection dropped after the request went out is retried for a read,
    // but not for a create: the server may have made the response before the
    // connection died, and a second request could make a duplicate.
    emu.clear_requests();
    emu.inject(Fault::DropBeforeHeaders { count: 1 });
    client.retrieve(&resp.id).await.unwrap();
    assert_eq!(emu.requests().len(), 2);
    emu.clear_requests();
    emu.inject(Fault::DropBeforeHeaders { count: 1 });
    let err = client.create(&ask("hi")).await.unwrap_err();
    assert!(err.may_have_reached_server(), "{err:?}");
    assert_eq!(emu.requests().len(), 1);
}

#[tokio::test]
async fn gives_up_after_max_retries() {
    let emu = Emulator::spawn().await.unwrap();
    emu.inject(Fault::Status {
        status: 500,
        count: 5,
    });
    let err = client(&emu).create(&ask("hi")).await.unwrap_err();
    assert_eq!(err.status(), Some(500), "{err:?}");
    assert_eq!(emu.requests().len(), 3);
}

#[tokio::test]
async fn rate_limit_without_retries_reports_the_hint() {
    let emu = Emulator::spawn().await.unwrap();
    emu.inject(Fault::RateLimit {
        retry_after: Some(Duration::from_secs(2)),
        use_ms_header: false,
        count: 1,
    });
    let client = Client::builder()
        .base_url(emu.base_url())
        .max_retries(0)
        .build()
        .unwrap();
    let err = client.create(&ask("hi")).await.unwrap_err();
    assert!(err.is_rate_limited(), "{err:?}");
    assert_eq!(
        err.api_error().unwrap().retry_after,
        Some(Duration::from_secs(2))
    );
}

#[tokio::test]
async fn a_stream_dropped_after_events_is_an_error_and_not_retried() {
    let emu = Emulator::spawn().await.unwrap();
    emu.inject(Fault::DropMidStream {
        after_events: 3,
        count: 1,
    });
    let results: Vec<_> = client(&emu)
        .create_stream(&ask("hi"))
        .await
        .unwrap()
        .collect()
        .await;
    let (last, events) = results.split_last().unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events.iter().all(Result::is_ok));
    assert!(matches!(last, Err(Error::Stream { .. })), "{last:?}");
    // The transport's error is kept as the cause, not flattened into the message,
    // and without the URL.
    let err = last.as_ref().unwrap_err();
    let cause = std::error::Error::source(err).unwrap_or_else(|| panic!("no cause: {err:?}"));
    assert!(!err.to_string().contains(&cause.to_string()), "{err}");
    assert!(
        !format!("{cause} {cause:?}").contains("127.0.0.1"),
        "{cause:?}"
    );
    assert_eq!(emu.requests().len(), 1);
}

#[tokio::test]
async fn a_failed_stream_is_an_api_error_from_final_response() {
    let emu = Emulator::spawn().await.unwrap();
    emu.inject(Fault::FailMidStream {
        after_deltas: 2,
        count: 1,
    });
    let err = client(&emu)
        .create_stream(&ask("hi"))
        .await
        .unwrap()
        .final_response()
        .await
        .unwrap_err();
    assert_eq!(
        err.api_error().and_then(|e| e.code.as_deref()),
        Some("server_error"),
        "{err:?}"
    );
    assert_eq!(emu.requests().len(), 1);
}

#[tokio::test]
async fn a_stalled_stream_times_out() {
    let emu = Emulator::spawn().await.unwrap();
    emu.inject(Fault::StallMidStream {
        after_events: 2,
        stall: Duration::from_secs(5),
        count: 1,
    });
    let client = Client::builder()
        .base_url(emu.base_url())
        .stream_idle_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let results: Vec<_> = client
        .create_stream(&ask("hi"))
        .await
        .unwrap()
        .collect()
        .await;
    assert!(
        matches!(
            results.last(),
            Some(Err(Error::Timeout {
                what: "waiting for the next stream event",
                ..
            }))
        ),
        "{:?}",
        results.last()
    );
}

#[tokio::test]
async fn a_malformed_body_is_a_decode_error() {
    let emu = Emulator::spawn().await.unwrap();
    emu.inject(Fault::MalformedBody { count: 1 });
    let err = client(&emu).create(&ask("hi")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decode {
                what: "response body",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn chat_n_streamed_and_not_agree() {
    let emu = Emulator::spawn().await.unwrap();
    let client = client(&emu);
    let req = ChatRequest::new(
        "gpt-4o-mini",
        vec![json!({"role": "user", "content": "Paris in 2 days?"})],
    )
    .n(3);
    let completion = client.chat(&req).await.unwrap();
    assert_eq!(completion.choices.len(), 3);
    assert!(completion.usage.as_ref().unwrap().completion_tokens > 0);

    let chunks: Vec<_> = client
        .chat_stream(&req)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut texts = vec![String::new(); 3];
    for chunk in &chunks {
        for choice in &chunk.choices {
            texts[choice.index as usize].push_str(choice.delta.content.as_deref().unwrap_or(""));
        }
    }
    let expected: Vec<String> = completion
        .choices
        .iter()
        .map(|c| c.message.content.clone().unwrap_or_default())
        .collect();
    assert_eq!(texts, expected);

    let rebuilt = client
        .chat_stream(&req)
        .await
        .unwrap()
        .final_completion()
        .await
        .unwrap();
    assert_eq!(rebuilt.choices.len(), 3);
    for (got, want) in rebuilt.choices.iter().zip(&completion.choices) {
        assert_eq!(
            (got.index, &got.message.content),
            (want.index, &want.message.content)
        );
        assert_eq!(got.message.role, "assistant");
        assert_eq!(got.finish_reason, want.finish_reason);
    }
}
