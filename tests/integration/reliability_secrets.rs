//! Secrets: a recognisable fake API key never shows up in any output, log line,
//! error (Display, Debug or source chain) or `Debug` string — in process, in
//! every example, and in every CLI command.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use resptree::backend::{ChatBackend, ResponsesBackend};
use resptree::client::{Client, CreateResponse, Input};
use resptree::emulator::{Emulator, Fault};
use resptree::engine::RespondOptions;
use resptree::{Engine, ResponseTree};

use crate::support::raw_http::{RawServer, reply};

/// Recognisable, and never a real key.
const FAKE_KEY: &str = "sk-resptree-FAKE-KEY-4f1c2b7e9d0a";
/// A fragment long enough to catch a partly masked key as well.
const FAKE_FRAGMENT: &str = "FAKE-KEY-4f1c";

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(FAKE_KEY) && !text.contains(FAKE_FRAGMENT),
        "{what} leaks the API key:\n{text}"
    );
}

/// Display, alternate Display, Debug, pretty Debug, and the same for every source.
fn assert_error_clean(what: &str, err: &(dyn std::error::Error + 'static)) {
    let mut current = Some(err);
    while let Some(e) = current {
        for text in [
            format!("{e}"),
            format!("{e:#}"),
            format!("{e:?}"),
            format!("{e:#?}"),
        ] {
            assert_clean(what, &text);
        }
        current = e.source();
    }
}

fn client(base: &str) -> Client {
    Client::builder()
        .base_url(base)
        .api_key(FAKE_KEY)
        .max_retries(1)
        .retry_base_delay(Duration::from_millis(1))
        .stream_idle_timeout(Duration::from_millis(100))
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_key_is_sent_but_never_shown_in_process() {
    // It really is sent (so its absence elsewhere means something).
    let raw = RawServer::start(vec![reply(
        401,
        &[("x-request-id", "req_1")],
        r#"{"error":{"message":"Incorrect API key provided: sk-resp***********9d0a. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
    )])
    .await;
    let err = client(raw.base_url())
        .create(&CreateResponse::new("m", Input::text("hi")))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_error_clean("a 401 error", &err);
    let sent = raw.requests();
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {FAKE_KEY}").as_str())
    );

    // Debug strings of everything that holds the key.
    let emu = Emulator::spawn().await.unwrap();
    let builder = Client::builder().base_url(emu.base_url()).api_key(FAKE_KEY);
    assert_clean("ClientBuilder Debug", &format!("{builder:?} {builder:#?}"));
    let c = client(&emu.base_url());
    assert_clean("Client Debug", &format!("{c:?} {c:#?}"));
    let engine = Engine::builder(ResponseTree::in_memory(), ResponsesBackend::new(c.clone()))
        .build()
        .unwrap();
    assert_clean("Engine Debug", &format!("{engine:?} {engine:#?}"));
    let chat = ChatBackend::new(c.clone());
    assert_clean("ChatBackend Debug", &format!("{chat:?}"));
    let node = engine.respond(None, "hello").await.unwrap();
    assert_clean("Node Debug", &format!("{node:#?}"));
    let stream = c
        .create_stream(&CreateResponse::new("m", Input::text("hi")))
        .await
        .unwrap();
    assert_clean("ResponseStream Debug", &format!("{stream:?}"));
    drop(stream);

    // Every kind of failure.
    let faults = [
        Fault::Status {
            status: 500,
            count: 2,
        },
        Fault::Status {
            status: 400,
            count: 1,
        },
        Fault::RateLimit {
            retry_after: Some(Duration::from_millis(1)),
            use_ms_header: true,
            count: 2,
        },
        Fault::DropBeforeHeaders { count: 2 },
        Fault::MalformedBody { count: 1 },
    ];
    for fault in faults {
        emu.inject(fault.clone());
        let err = c
            .create(&CreateResponse::new("m", Input::text("hi")))
            .await
            .unwrap_err();
        assert_error_clean(&format!("{fault:?}"), &err);
        emu.clear_requests();
    }
    let stream_faults = [
        Fault::DropMidStream {
            after_events: 1,
            count: 1,
        },
        Fault::FailMidStream {
            after_deltas: 1,
            count: 1,
        },
        Fault::StallMidStream {
            after_events: 1,
            stall: Duration::from_millis(400),
            count: 1,
        },
    ];
    for fault in stream_faults {
        emu.inject(fault.clone());
        let mut stream = engine.respond_stream(None, "hi", &RespondOptions::default());
        let mut failed = false;
        while let Some(update) = stream.next().await {
            if let Err(err) = update {
                assert_error_clean(&format!("{fault:?}"), &err);
                failed = true;
            }
        }
        assert!(failed, "{fault:?} did not fail the stream");
    }
    // Nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = client(&format!("http://{closed}/v1"))
        .create(&CreateResponse::new("m", Input::text("hi")))
        .await
        .unwrap_err();
    assert_error_clean("connection refused", &err);
    // The emulator's request log keeps bodies, never headers.
    assert_clean(
        "emulator request log",
        &format!("{:?} {emu:?}", emu.requests()),
    );
}

/// Runs a command with the fake key in its environment; returns everything it printed.
fn output_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every `[[example]]` in Cargo.toml: a new example is covered without editing this test.
fn examples() -> Vec<String> {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let mut names = Vec::new();
    let mut in_example = false;
    for line in manifest.lines() {
        if line.starts_with('[') {
            in_example = line.trim() == "[[example]]";
        } else if in_example {
            if let Some(name) = line.strip_prefix("name = ") {
                names.push(name.trim_matches('"').to_owned());
            }
        }
    }
    names
}

/// Arguments per example; examples not named here get none.
fn example_args(name: &str, dir: &std::path::Path) -> Vec<String> {
    match name {
        // Opens a store and exits at once (its stdin is empty).
        "crash_worker" => vec![
            "hold".into(),
            dir.join("held").to_string_lossy().into_owned(),
        ],
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_never_print_the_key() {
    let emu = Emulator::spawn().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let names = examples();
    assert!(names.len() >= 5, "{names:?}");
    // With the key set the examples take the "real API" path, pointed at the emulator.
    for name in &names {
        for backend in ["responses", "chat"] {
            let before = emu.requests().len();
            let out = tokio::task::block_in_place(|| {
                Command::new(env!("CARGO"))
                    .args(["run", "--quiet", "--all-features", "--example", name, "--"])
                    .args(example_args(name, dir.path()))
                    .current_dir(env!("CARGO_MANIFEST_DIR"))
                    .env("OPENAI_API_KEY", FAKE_KEY)
                    .env("OPENAI_BASE_URL", emu.base_url())
                    .env("RESPTREE_BACKEND", backend)
                    .env("RUST_BACKTRACE", "1")
                    .env("RUST_LOG", "trace")
                    .stdin(Stdio::null())
                    .output()
                    .unwrap()
            });
            let text = output_of(&out);
            assert!(out.status.success(), "{name} ({backend}) failed:\n{text}");
            assert_clean(&format!("example {name} ({backend})"), &text);
            // Examples that take their backend from the environment must have used the key.
            let source = std::fs::read_to_string(format!(
                "{}/examples/{name}.rs",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            if source.contains("common::backend()") {
                assert!(
                    emu.requests().len() > before,
                    "{name} ({backend}) never used the key"
                );
            }
        }
    }
    // The error path: every request fails.
    emu.set_random_faults(1.0, 1);
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO"))
            .args(["run", "--quiet", "--all-features", "--example", "paris"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("OPENAI_API_KEY", FAKE_KEY)
            .env("OPENAI_BASE_URL", emu.base_url())
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap()
    });
    assert!(
        !out.status.success(),
        "paris succeeded although every request failed"
    );
    assert_clean("example paris (failing)", &output_of(&out));
}

/// One CLI command and how to drive it. Adding a command to the suite is one
/// line in [`CLI_COMMANDS`]; `{base}` and `{store}` are replaced by the
/// emulator's URL and a fresh store path.
#[cfg(feature = "cli")]
struct Cli {
    args: &'static [&'static str],
    /// Serves until interrupted: the test reads its URL, talks to it with the key, then sends SIGINT.
    serves: bool,
}

#[cfg(feature = "cli")]
const CLI_COMMANDS: &[Cli] = &[
    Cli {
        args: &["emulate", "--listen", "127.0.0.1:0"],
        serves: true,
    },
    Cli {
        args: &["--help"],
        serves: false,
    },
    Cli {
        args: &["--store", "{store}", "ask", "Plan a weekend in Paris"],
        serves: false,
    },
    Cli {
        args: &["--store", "{store}", "ask", "--parent", "nope", "hi"],
        serves: false,
    },
    Cli {
        args: &["--store", "{store}", "branch", "nope", "a", "b"],
        serves: false,
    },
    Cli {
        args: &["--store", "{store}", "fanout", "nope", "a", "-n", "2"],
        serves: false,
    },
    Cli {
        args: &["--store", "{store}", "--backend", "chat", "ask", "hi"],
        serves: false,
    },
    Cli {
        args: &["--store", "{store}", "adopt", "resp_missing"],
        serves: false,
    },
    Cli {
        args: &["--store", "{store}", "prune", "nope", "--remote"],
        serves: false,
    },
    Cli {
        args: &["--store", "{store}", "recover"],
        serves: false,
    },
    Cli {
        args: &["--store", "{store}", "show"],
        serves: false,
    },
    Cli {
        args: &["--store", "{store}", "stats", "--json"],
        serves: false,
    },
    Cli {
        args: &["--store", "{store}", "log", "nope"],
        serves: false,
    },
    Cli {
        args: &["--store", "{store}", "ref", "list"],
        serves: false,
    },
    Cli {
        args: &["--store", "{store}", "export", "{store}.json"],
        serves: false,
    },
    Cli {
        args: &["--store", "{store}", "import", "{store}.missing.json"],
        serves: false,
    },
    Cli {
        args: &["migrate", "--from", "{store}", "--to", "{store}.copy"],
        serves: false,
    },
];

#[cfg(feature = "cli")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_never_print_the_key() {
    let emu = Emulator::spawn().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (i, cli) in CLI_COMMANDS.iter().enumerate() {
        let store = dir.path().join(format!("store-{i}"));
        let args: Vec<String> = cli
            .args
            .iter()
            .map(|a| {
                a.replace("{base}", &emu.base_url())
                    .replace("{store}", &store.to_string_lossy())
            })
            .collect();
        let mut command = Command::new(env!("CARGO_BIN_EXE_resptree"));
        command
            .args(&args)
            .env("OPENAI_API_KEY", FAKE_KEY)
            .env("OPENAI_BASE_URL", emu.base_url())
            .env("RUST_BACKTRACE", "1")
            // Every log line of every crate, the requests' included.
            .env("RUST_LOG", "trace")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let text = if cli.serves {
            let mut child = command.spawn().unwrap();
            let mut stdout = BufReader::new(child.stdout.take().unwrap());
            let mut url = String::new();
            stdout.read_line(&mut url).unwrap();
            // Talk to it with the key, including a failing request.
            let c = client(url.trim());
            c.create(&CreateResponse::new("m", Input::text("hi")))
                .await
                .unwrap();
            let err = c.retrieve("resp_missing").await.unwrap_err();
            assert_error_clean("error from the CLI's server", &err);
            let status = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            let out = child.wait_with_output().unwrap();
            format!("{url}{}", output_of(&out))
        } else {
            output_of(&tokio::task::block_in_place(|| command.output().unwrap()))
        };
        assert_clean(&format!("resptree {}", args.join(" ")), &text);
    }
}
