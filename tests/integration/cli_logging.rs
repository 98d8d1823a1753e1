//! `resptree -v`/`--verbose` and `RUST_LOG`: logs go to stderr (stdout keeps only
//! results), warnings only by default, RUST_LOG wins when set; never the key, and
//! no prompt text below `-vvv`.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use resptree::emulator::Emulator;

use crate::cli_support::*;

const PROMPT: &str = "PROMPT-TEXT-platypus";
/// Recognisable, never a real key.
const KEY: &str = "sk-cli-log-SECRET-5b8a0f";

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Runs `args`, which must succeed; returns stdout and stderr.
fn run_ok(cli: &Cli, args: &[&str]) -> (String, String) {
    let out = cli.run(args);
    (check_ok(args, &out), stderr(&out))
}

#[test]
fn verbosity_chooses_what_reaches_stderr() {
    let cli = Cli::new();
    // Default: warnings only, and there are none.
    let (quiet, err) = run_ok(&cli, &["--emulator", "ask", PROMPT]);
    assert_eq!(err, "");
    assert!(quiet.starts_with("[ctx 1 msgs]"), "{quiet:?}");

    // -v: each request with its status, request id and attempt; loads; no text.
    let (out, err) = run_ok(&cli, &["--emulator", "-v", "ask", PROMPT]);
    assert!(
        out.starts_with("[ctx 1 msgs]"),
        "logs stay off stdout: {out:?}"
    );
    assert_eq!(out.lines().count(), 2, "{out:?}");
    assert!(
        err.lines().any(|l| l.contains(" INFO ")
            && l.contains("http_request")
            && l.contains("status=200")
            && l.contains("request_id=\"req_")
            && l.contains("attempt=1")),
        "{err}"
    );
    assert!(err.contains("store loaded"), "{err}");
    assert!(!err.contains(PROMPT), "prompt text at INFO: {err}");
    assert!(!err.contains("DEBUG"), "{err}");

    // --verbose twice: commits (DEBUG), still no text.
    let (_, err) = run_ok(
        &cli,
        &["--emulator", "--verbose", "--verbose", "ask", PROMPT],
    );
    assert!(
        err.lines()
            .any(|l| l.contains(" DEBUG ") && l.contains("commit") && l.contains("ops=")),
        "{err}"
    );
    assert!(!err.contains(PROMPT), "prompt text at DEBUG: {err}");
    assert!(!err.contains("TRACE"), "{err}");

    // -vvv: TRACE, where request bodies are, for resptree's targets only.
    let (_, err) = run_ok(&cli, &["--emulator", "-vvv", "ask", PROMPT]);
    assert!(err.contains(" TRACE ") && err.contains(PROMPT), "{err}");
    for line in err
        .lines()
        .filter(|l| l.contains(" TRACE ") || l.contains(" DEBUG "))
    {
        assert!(line.contains("resptree::"), "not one of ours: {line}");
    }
}

#[test]
fn rust_log_wins_over_verbose() {
    let off = Cli::new().with_env("RUST_LOG", "off");
    let (_, err) = run_ok(&off, &["--emulator", "-vvv", "ask", PROMPT]);
    assert_eq!(err, "");

    let store_only = Cli::new().with_env("RUST_LOG", "resptree::store=debug");
    let (_, err) = run_ok(&store_only, &["--emulator", "ask", PROMPT]);
    assert!(
        err.contains("store loaded") && err.contains("commit"),
        "{err}"
    );
    assert!(!err.contains("http_request"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_never_shows_even_with_every_target_at_trace() {
    let emu = Emulator::spawn().await.unwrap();
    let cli = Cli::new()
        .with_env("OPENAI_API_KEY", KEY)
        .with_env("OPENAI_BASE_URL", &emu.base_url())
        .with_env("RUST_LOG", "trace");
    let (out, err) = tokio::task::block_in_place(|| run_ok(&cli, &["ask", PROMPT]));
    // Tracing really was on, and the key really was used.
    assert!(err.contains(" TRACE ") && err.contains(PROMPT), "{err}");
    assert_eq!(emu.requests().len(), 1);
    for text in [&out, &err] {
        assert!(
            !text.contains(KEY) && !text.contains("SECRET-5b8a"),
            "the key leaks:\n{text}"
        );
    }
}
