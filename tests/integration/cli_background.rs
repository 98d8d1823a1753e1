//! `resptree ask|branch|fanout --background` against an emulator in the test
//! process: the creates go out in background mode, a dropped stream is
//! resumed without printing anything twice, and the Chat backend refuses.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use resptree::emulator::{Emulator, Fault};

use crate::cli_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_branch_and_fanout_run_in_background_and_resume_a_dropped_stream() {
    let emu = Emulator::spawn().await.unwrap();
    let cli = Cli::new()
        .with_env("OPENAI_API_KEY", "sk-test")
        .with_env("OPENAI_BASE_URL", &emu.base_url());
    // The create's stream is cut after 6 events; the server answers on.
    emu.inject_for(
        "/v1/responses",
        Fault::DropMidStream {
            after_events: 6,
            count: 1,
        },
    );
    let args = ["ask", "--background", "Plan a long weekend in Lisbon"];
    let out = check_ok(&args, &run(cli.command(&args)).await);
    let id = last_line(&out);
    let printed = out.trim_end().strip_suffix(id.as_str()).unwrap().trim_end();
    let node = cli
        .nodes()
        .into_iter()
        .find(|n| n["id"] == id.as_str())
        .unwrap();
    assert_eq!(printed, node["output_text"].as_str().unwrap().trim_end());
    let requests = emu.requests();
    let creates: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/responses")
        .collect();
    assert_eq!(creates.len(), 1, "never re-sent");
    assert_eq!(creates[0].body.as_ref().unwrap()["background"], true);
    let resumed: Vec<_> = requests.iter().filter_map(|r| r.query.clone()).collect();
    assert_eq!(resumed, ["stream=true&starting_after=5"]);

    emu.clear_requests();
    let args = ["branch", "--background", &id, "cheaper", "slower"];
    let out = check_ok(&args, &run(cli.command(&args)).await);
    assert_eq!(out.lines().count(), 2, "{out:?}");
    let args = ["fanout", "--background", &id, "Another idea?", "-n", "2"];
    let out = check_ok(&args, &run(cli.command(&args)).await);
    assert_eq!(out.lines().count(), 2, "{out:?}");
    let creates: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/responses")
        .collect();
    assert_eq!(creates.len(), 4);
    assert!(
        creates
            .iter()
            .all(|r| r.body.as_ref().unwrap()["background"] == true)
    );
    assert_eq!(cli.nodes().len(), 5);
    assert_eq!(emu.created_count(), 5);

    let args = ["--backend", "chat", "ask", "--background", "hi"];
    let err = check_fails(&args, &run(cli.command(&args)).await, 1);
    assert!(err.contains("background"), "{err}");
}
