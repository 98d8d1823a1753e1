//! `resptree emulate`: prints its base URL, serves, stops on Ctrl-C (SIGINT).

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::emulator_support::*;

#[tokio::test]
async fn emulate_prints_the_base_url_and_stops_on_sigint() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_resptree"))
        .args(["emulate", "--listen", "127.0.0.1:0", "--seed", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().to_owned();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/v1"),
        "{base:?}"
    );
    assert!(!base.ends_with(":0/v1"), "the real port is printed");

    let resp = create(&base, json!({"model": "m", "input": "hi"})).await;
    assert!(output_text(&resp).starts_with("[ctx 1 msgs]"));

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn emulate_rejects_a_bad_listen_address() {
    let out = Command::new(env!("CARGO_BIN_EXE_resptree"))
        .args(["emulate", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
}
