//! Observability: what the library tells a `tracing` subscriber, read through the
//! same formatter the CLI uses, one writer at INFO and one at TRACE. The API key
//! never appears at any level, prompt and reply text never at INFO (they are
//! there at TRACE, so the test can tell), and the fields a reader needs (status,
//! request id, attempt, retry reason and wait, stream end, store sizes) do.
//!
//! The subscriber is the test thread's default, so the tests run on a
//! current-thread runtime: the client, the emulator and the engine's tasks then
//! all run where it is installed.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resptree::backend::ResponsesBackend;
use resptree::client::{ChatRequest, Client, CreateResponse, Input};
use resptree::emulator::{Emulator, Fault};
use resptree::{Engine, RefName, ResponseTree};
use serde_json::json;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;

/// Recognisable, never a real key.
const KEY: &str = "sk-observe-SECRET-7d3e91c4";
const PROMPT: &str = "PROMPT-TEXT-quokka";
const REPLY: &str = "REPLY-TEXT-wombat";

/// What one formatter wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// The lines that contain every one of `parts`.
    fn lines_with(&self, parts: &[&str]) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| parts.iter().all(|p| line.contains(p)))
            .map(str::to_owned)
            .collect()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Keeps the capturing subscriber installed while it lives.
struct Installed {
    _default: tracing::subscriber::DefaultGuard,
    _other: tracing::Dispatch,
}

/// Installs, for this thread, a subscriber that writes what an INFO subscriber
/// would show into the first buffer and everything into the second.
fn capture() -> (Installed, Captured, Captured) {
    // tracing caches, per callsite, whether any subscriber wants its events,
    // when the callsite is first hit. While only one dispatcher exists it asks
    // just the default of the thread that hits it, so a callsite first hit
    // elsewhere (a store commit in `spawn_blocking`, another test's thread)
    // would be cached as unwanted here too. A second live dispatcher makes it
    // ask every dispatcher, this thread's included.
    let other = tracing::Dispatch::new(tracing_subscriber::registry());
    let (info, all) = (Captured::default(), Captured::default());
    let (to_info, to_all) = (info.clone(), all.clone());
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .without_time()
                .with_writer(move || to_info.clone())
                .with_filter(LevelFilter::INFO),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .without_time()
                .with_writer(move || to_all.clone())
                .with_filter(LevelFilter::TRACE),
        );
    let installed = Installed {
        _default: tracing::subscriber::set_default(subscriber),
        _other: other,
    };
    (installed, info, all)
}

fn assert_no_secret_or_text(info: &Captured, all: &Captured) {
    let (info, all) = (info.text(), all.text());
    assert!(
        !all.contains(KEY) && !all.contains("SECRET-7d3e"),
        "the key leaks:\n{all}"
    );
    assert!(
        !info.contains(PROMPT) && !info.contains(REPLY),
        "text at INFO:\n{info}"
    );
    // Not vacuous: the text is in the TRACE output.
    assert!(
        all.contains(PROMPT) && all.contains(REPLY),
        "no text at TRACE:\n{all}"
    );
}

#[tokio::test]
async fn requests_retries_and_streams_are_logged_without_key_or_text_at_info() {
    let (_guard, info, all) = capture();
    let emu = Emulator::spawn().await.unwrap();
    let client = Client::builder()
        .base_url(emu.base_url())
        .api_key(KEY)
        .retry_base_delay(Duration::from_millis(1))
        .build()
        .unwrap();
    emu.script_replies([REPLY, REPLY, REPLY]);

    // Retried once after a 503, then answered.
    emu.inject(Fault::Status {
        status: 503,
        count: 1,
    });
    let first = client
        .create(&CreateResponse::new("gpt-4o-mini", Input::text(PROMPT)))
        .await
        .unwrap();
    let request_id = first.request_id().unwrap().to_owned();
    // Streamed, on both APIs.
    client
        .create_stream(
            &CreateResponse::new("gpt-4o-mini", Input::text(PROMPT))
                .previous_response_id(&first.id),
        )
        .await
        .unwrap()
        .final_response()
        .await
        .unwrap();
    let messages = vec![json!({"role": "user", "content": PROMPT})];
    client
        .chat_stream(&ChatRequest::new("gpt-4o-mini", messages))
        .await
        .unwrap()
        .final_completion()
        .await
        .unwrap();
    // Failed, not retried.
    client.retrieve("resp_missing").await.unwrap_err();

    assert_no_secret_or_text(&info, &all);

    // Each attempt: its number, status, request id and latency, in the request's span.
    let failed = info.lines_with(&[
        "http_request",
        "method=POST",
        "path=responses",
        "status=503",
    ]);
    assert!(
        failed
            .iter()
            .any(|l| l.contains("attempt=1") && l.contains("latency_ms=")),
        "{}",
        info.text()
    );
    let retried = info.lines_with(&["retrying", "attempt=1", "reason=api error 503"]);
    assert_eq!(retried.len(), 1, "{}", info.text());
    assert!(retried[0].contains("wait_ms="), "{}", retried[0]);
    let answered = info.lines_with(&["response", "attempt=2", "status=200", &request_id]);
    assert_eq!(answered.len(), 1, "{}", info.text());
    let missing = info.lines_with(&["path=responses/resp_missing", "status=404", "attempt=1"]);
    assert_eq!(missing.len(), 1, "{}", info.text());
    assert!(info.lines_with(&["retrying", "404"]).is_empty());

    // Streams: how each ended, inside a span naming the API.
    let finished = |api: &str, terminal: &str| {
        info.lines_with(&[
            &format!("sse_stream{{api=\"{api}\""),
            "stream finished",
            terminal,
            "events=",
        ])
    };
    assert_eq!(
        finished("responses", "response.completed").len(),
        1,
        "{}",
        info.text()
    );
    assert_eq!(finished("chat", "[DONE]").len(), 1, "{}", info.text());
}

#[tokio::test]
async fn a_stream_cut_mid_way_is_logged_as_failed() {
    let (_guard, info, _all) = capture();
    let emu = Emulator::spawn().await.unwrap();
    let client = Client::builder()
        .base_url(emu.base_url())
        .api_key(KEY)
        .build()
        .unwrap();
    emu.inject(Fault::DropMidStream {
        after_events: 2,
        count: 1,
    });
    client
        .create_stream(&CreateResponse::new("gpt-4o-mini", Input::text(PROMPT)))
        .await
        .unwrap()
        .final_response()
        .await
        .unwrap_err();
    let failed = info.lines_with(&["sse_stream", "stream failed", "reason=stream error"]);
    assert_eq!(failed.len(), 1, "{}", info.text());
    assert!(info.lines_with(&["stream finished"]).is_empty());
}

#[tokio::test]
async fn stores_log_commits_and_loads() {
    let (_guard, info, all) = capture();
    let emu = Emulator::spawn().await.unwrap();
    emu.script_replies([REPLY]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let client = Client::builder()
        .base_url(emu.base_url())
        .api_key(KEY)
        .build()
        .unwrap();
    {
        let tree = ResponseTree::open(&path).unwrap();
        let engine = Engine::builder(tree, ResponsesBackend::new(client))
            .build()
            .unwrap();
        let node = engine.respond(None, PROMPT).await.unwrap();
        // Called on this thread, so its commit is seen here.
        engine
            .tree()
            .set_ref(RefName::new("best").unwrap(), &node.id)
            .unwrap();
    }
    let empty = info.lines_with(&["store loaded", "store=\"sled\"", "nodes=0", "refs=0"]);
    assert_eq!(empty.len(), 1, "{}", info.text());
    let commits = all.lines_with(&["DEBUG", "commit", "store=\"sled\"", "ops=1", "seq="]);
    assert!(!commits.is_empty(), "{}", all.text());
    // Flushes are logged on their own: one may serve a group of commits.
    let flushes = all.lines_with(&["DEBUG", "flush", "store=\"sled\"", "seq=", "duration_us="]);
    assert!(!flushes.is_empty(), "{}", all.text());
    let requests = all.lines_with(&["DEBUG", "backend=\"responses\"", "context=\"none\""]);
    assert_eq!(requests.len(), 1, "{}", all.text());

    let reopened = ResponseTree::open(&path).unwrap();
    assert_eq!(reopened.len(), 1);
    let loaded = info.lines_with(&[
        "store loaded",
        "nodes=1",
        "refs=1",
        "problems=0",
        "duration_ms=",
    ]);
    assert_eq!(loaded.len(), 1, "{}", info.text());
    // A store read through its snapshot says nothing above DEBUG...
    let unusable = [
        "WARN",
        "the topology snapshot is unusable",
        "store=\"sled\"",
    ];
    assert!(info.lines_with(&unusable).is_empty(), "{}", info.text());
    // ...but one whose snapshot went missing is slow to open: a warning says
    // why. (A load that replays at least one change writes a snapshot file.)
    drop(reopened);
    let store = resptree::store::SledStore::open(&path)
        .unwrap()
        .with_snapshot_every(1);
    drop(ResponseTree::with_store(store).unwrap());
    let snapshots: Vec<_> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("topology-")
        })
        .collect();
    assert!(!snapshots.is_empty(), "the load wrote a snapshot");
    for snapshot in snapshots {
        std::fs::remove_file(snapshot).unwrap();
    }
    assert_eq!(ResponseTree::open(&path).unwrap().len(), 1);
    assert_eq!(info.lines_with(&unusable).len(), 1, "{}", info.text());
    assert_no_secret_or_text(&info, &all);
}
