//! The client's background mode against the emulator: `background`, polling until
//! done (bounded), cancel, and resuming a dropped stream with `retrieve_stream`.

// Helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use resptree::Error;
use resptree::client::{Client, CreateResponse, Input, Polling, StreamEvent};
use resptree::emulator::{Emulator, Fault};

fn client(emu: &Emulator) -> Client {
    Client::builder()
        .base_url(emu.base_url())
        .api_key("sk-emu-SECRET")
        .retry_base_delay(Duration::from_millis(1))
        .build()
        .unwrap()
}

fn background(text: &str) -> CreateResponse {
    CreateResponse::new("gpt-4o-mini", Input::text(text)).background(true)
}

/// Polls fast: the emulator answers within milliseconds.
fn fast() -> Polling {
    Polling::default()
        .interval(Duration::from_millis(1))
        .max_interval(Duration::from_millis(20))
}

#[tokio::test]
async fn a_background_create_returns_at_once_and_polling_returns_the_final_response() {
    let emu = Emulator::spawn().await.unwrap();
    let client = client(&emu);
    emu.inject(Fault::Hold { count: 1 });

    let queued = client.create(&background("Plan a weekend")).await.unwrap();
    assert_eq!(queued.status.as_deref(), Some("queued"));
    assert!(queued.is_pending() && queued.is_background());
    let body = emu.requests().pop().unwrap().body.unwrap();
    assert_eq!(body["background"], true);

    emu.wait_held(1).await;
    emu.release(1);
    let done = client.wait_until_done(&queued.id, fast()).await.unwrap();
    assert!(done.is_completed() && !done.is_pending());
    assert!(done.output_text().contains("Plan a weekend"));
    assert!(done.usage.is_some());
}

#[tokio::test]
async fn polling_is_bounded_and_cancel_ends_the_wait() {
    let emu = Emulator::spawn().await.unwrap();
    let client = client(&emu);
    emu.inject(Fault::Hold { count: 1 });
    let queued = client.create(&background("Think hard")).await.unwrap();
    emu.wait_held(1).await;

    // Held for good: the wait gives up at its bound with a typed error.
    let err = client
        .wait_until_done(&queued.id, fast().timeout(Duration::from_millis(30)))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("background response"), "{err}");

    let cancelled = client.cancel(&queued.id).await.unwrap();
    assert_eq!(cancelled.status.as_deref(), Some("cancelled"));
    assert!(cancelled.usage.is_none());
    let done = client.wait_until_done(&queued.id, fast()).await.unwrap();
    assert_eq!(done.status.as_deref(), Some("cancelled"));

    // A response not created in background cannot be cancelled.
    let plain = client
        .create(&CreateResponse::new("m", Input::text("hi")))
        .await
        .unwrap();
    let err = client.cancel(&plain.id).await.unwrap_err();
    assert!(
        matches!(&err, Error::Api(api) if api.status == Some(400)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_dropped_background_stream_resumes_after_the_last_sequence_number() {
    let emu = Emulator::spawn().await.unwrap();
    let client = client(&emu);
    emu.inject(Fault::DropMidStream {
        after_events: 5,
        count: 1,
    });

    let mut stream = client
        .create_stream(&background("A long answer, please"))
        .await
        .unwrap();
    let mut first = Vec::new();
    let err = loop {
        match stream.next().await.unwrap() {
            Ok(event) => first.push(event),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::Stream { .. }), "{err:?}");
    assert_eq!(first.len(), 5);
    assert!(matches!(first[0], StreamEvent::Created(_)));
    assert!(matches!(&first[1], StreamEvent::Queued(r) if r.status.as_deref() == Some("queued")));
    assert!(matches!(first[2], StreamEvent::InProgress(_)));
    assert_eq!(stream.last_sequence_number(), Some(4));
    let id = stream.response_id().unwrap().to_owned();

    let resumed = client
        .retrieve_stream(&id, stream.last_sequence_number())
        .await
        .unwrap();
    let done = resumed.final_response().await.unwrap();
    assert!(done.is_completed());
    assert!(done.output_text().contains("A long answer, please"));
    // Only one response was ever created, and the replay from the start
    // reassembles the same text.
    assert_eq!(emu.created_count(), 1);
    let replayed = client
        .retrieve_stream(&id, None)
        .await
        .unwrap()
        .final_response()
        .await
        .unwrap();
    assert_eq!(replayed.output_text(), done.output_text());
}

#[tokio::test]
async fn retrieve_stream_of_a_plain_response_is_refused() {
    let emu = Emulator::spawn().await.unwrap();
    let client = client(&emu);
    let plain = client
        .create(&CreateResponse::new("m", Input::text("hi")))
        .await
        .unwrap();
    let err = client.retrieve_stream(&plain.id, None).await.unwrap_err();
    assert!(
        matches!(&err, Error::Api(api) if api.status == Some(400) && api.param.as_deref() == Some("stream")),
        "{err:?}"
    );
    assert!(matches!(
        client.retrieve_stream("bad/id", Some(1)).await,
        Err(Error::InvalidId { .. })
    ));
}

#[tokio::test]
async fn a_create_whose_connection_died_still_made_a_response() {
    let emu = Emulator::spawn().await.unwrap();
    let client = Client::builder()
        .base_url(emu.base_url())
        .max_retries(0)
        .build()
        .unwrap();
    emu.inject(Fault::DropAfterCreate { count: 1 });
    let err = client
        .create(&CreateResponse::new("m", Input::text("hi")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    let made = emu.created_responses();
    assert_eq!(made.len(), 1);
    assert!(client.retrieve(&made[0]).await.unwrap().is_completed());
}
