//! `resptree` on bad input and in bad situations: the exact error line, the exit
//! code, and nothing half-done.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use resptree::ResponseTree;
use resptree::emulator::Emulator;
use serde_json::json;

use crate::cli_support::*;
use crate::emulator_support::create;

#[test]
fn unknown_id_and_ambiguous_prefix() {
    let cli = Cli::new();
    let root = cli.ask(None, "Plan a weekend in Paris");
    cli.ask(Some(&root), "Make it cheaper");
    assert_eq!(
        cli.fails(&["show", "resp_nothing_like_it"], 1),
        "resptree: node resp_nothing_like_it not found\n"
    );
    assert_eq!(
        cli.fails(&["path", "resp_"], 1),
        "resptree: invalid node id \"resp_\": matches more than one node id\n"
    );
    assert_eq!(
        cli.fails(&["--emulator", "ask", "--parent", "nope", "hi"], 1),
        "resptree: node nope not found\n"
    );
    assert_eq!(cli.nodes().len(), 2, "a failed ask adds nothing");
}

#[test]
fn malformed_import_files_name_the_problem() {
    let cli = Cli::new();
    let bad = cli.path("bad.json");
    write(&bad, "not json");
    let bad_arg = bad.to_str().unwrap();
    assert_eq!(
        cli.fails(&["import", bad_arg], 1),
        "resptree: error decoding tree export: \"not json\": expected ident at line 1 column 2\n"
    );
    write(&bad, r#"[{"title": "x"}]"#);
    assert_eq!(
        cli.fails(&["import-chatgpt", bad_arg], 1),
        "resptree: error decoding ChatGPT export: \"[{\\\"title\\\": \\\"x\\\"}]\": conversation 0: missing field `mapping` at line 1 column 15\n"
    );
    let dangling =
        json!([{"mapping": {"a": {"message": null, "parent": null, "children": ["b"]}}}]);
    write(&bad, &dangling.to_string());
    let err = cli.fails(&["import-chatgpt", bad_arg], 1);
    assert!(
        err.starts_with("resptree: error decoding ChatGPT export: ")
            && err.ends_with(
                ": conversation 0: message \"a\" lists child \"b\", which is not in the mapping\n"
            ),
        "{err}"
    );
    // A bad conversation after good ones: named by position and id, and the
    // good ones before it are not written either (one import, one insert).
    let good = |i: usize| {
        json!({"id": format!("c{i}"), "mapping": {
            "u": {"message": {"author": {"role": "user"}, "content": {"parts": ["q"]}}, "children": ["a"]},
            "a": {"message": {"author": {"role": "assistant"}, "content": {"parts": ["r"]}}, "parent": "u"}}})
    };
    let mut middle = good(1);
    middle["mapping"]["a"]["parent"] = json!("elsewhere");
    write(&bad, &json!([good(0), middle, good(2)]).to_string());
    let err = cli.fails(&["import-chatgpt", bad_arg], 1);
    assert!(
        err.ends_with(
            ": conversation 1 (\"c1\"): message \"a\" names parent \"elsewhere\", which is not in the mapping\n"
        ),
        "{err}"
    );
    let missing = cli.path("missing.json");
    assert_eq!(
        cli.fails(&["import", missing.to_str().unwrap()], 1),
        format!(
            "resptree: reading {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
    assert!(cli.nodes().is_empty());
}

#[test]
fn a_store_held_by_another_process_is_reported() {
    let cli = Cli::new();
    let held = ResponseTree::open(&cli.store).unwrap();
    assert_eq!(
        cli.fails(&["show"], 1),
        format!(
            "resptree: store at {} is in use by another process\n",
            cli.store.display()
        )
    );
    drop(held);
    assert_eq!(cli.ok(&["show"]), "");
}

#[test]
fn commands_that_need_a_server_say_so() {
    let cli = Cli::new();
    let expected = "resptree: this command needs a server: set OPENAI_API_KEY (and OPENAI_BASE_URL for another endpoint), or pass --emulator\n";
    assert_eq!(cli.fails(&["ask", "hi"], 1), expected);
    assert_eq!(cli.fails(&["adopt", "resp_123"], 1), expected);
    // Read commands work without one.
    assert_eq!(
        cli.ok(&["stats"]),
        "nodes 0, roots 0, leaves 0, max depth 0\ntokens 0 (input 0, output 0)\n"
    );
}

#[test]
fn usage_errors_exit_with_2() {
    let cli = Cli::new();
    assert!(
        cli.fails(&["bogus"], 2)
            .contains("unrecognized subcommand 'bogus'")
    );
    assert!(cli.fails(&["branch", "x"], 2).contains("<TEXT>..."));
    assert!(
        cli.fails(&["fanout", "x", "y", "-n", "0"], 2)
            .contains("-n <N>")
    );
    assert!(
        cli.fails(&["ref", "set", "bad name", "x"], 2)
            .contains("ref name")
    );
    assert!(
        cli.fails(&["show", "--json", "--format", "dot"], 2)
            .contains("cannot be used with")
    );
    assert_eq!(
        cli.fails(&["--emulator", "ask", "   "], 2),
        "resptree: the message TEXT must not be empty\n"
    );
    assert_eq!(
        cli.fails(&["show", "--format", "mermaid", "--depth", "1"], 2),
        "resptree: --depth applies to the ascii and json formats only\n"
    );
    assert!(cli.ok(&["--help"]).contains("import-chatgpt"));
    assert!(!cli.store.exists(), "usage errors touch nothing");
}

#[test]
fn store_location_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let from_env = dir.path().join("env-store");
    let out = bare_command()
        .env("RESPTREE_STORE", &from_env)
        .args(["--emulator", "ask", "hi"])
        .output()
        .unwrap();
    check_ok(&[], &out);
    assert!(from_env.is_dir());

    let data = dir.path().join("data");
    let out = bare_command()
        .env("XDG_DATA_HOME", &data)
        .args(["stats", "--json"])
        .output()
        .unwrap();
    check_ok(&[], &out);
    assert!(data.join("resptree/store").is_dir());

    let out = bare_command()
        .env_remove("HOME")
        .args(["stats"])
        .output()
        .unwrap();
    assert_eq!(
        check_fails(&[], &out, 2),
        "resptree: no store location: pass --store PATH, or set RESPTREE_STORE or HOME\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopt_and_remote_prune_against_a_configured_server_never_print_the_key() {
    const KEY: &str = "sk-test-secret-do-not-print";
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let first = create(
        &base,
        json!({"model": "m", "input": "Plan a weekend in Paris"}),
    )
    .await;
    let first_id = first["id"].as_str().unwrap().to_owned();
    let second = create(
        &base,
        json!({"model": "m", "input": "Make it cheaper", "previous_response_id": first_id}),
    )
    .await;
    let second_id = second["id"].as_str().unwrap().to_owned();
    let cli = Cli::new()
        .with_env("OPENAI_API_KEY", KEY)
        .with_env("OPENAI_BASE_URL", &base);

    let mut seen = Vec::new();
    let out = run(cli.command(&["adopt", &second_id])).await;
    let stdout = check_ok(&["adopt"], &out);
    seen.push(out);
    assert_eq!(
        stdout,
        format!("{first_id}\n{second_id}\nadopted 2 node(s)\n")
    );
    assert_eq!(
        ids(&cli.json(&["path", "--json", &second_id])),
        [first_id.clone(), second_id.clone()]
    );

    // Unknown on the server: the server's message and request id, on one line.
    let out = run(cli.command(&["adopt", "resp_unknown"])).await;
    let err = check_fails(&["adopt"], &out, 1);
    let (message, request_id) = err.trim_end().rsplit_once(" [request id ").unwrap();
    assert!(
        message.starts_with("resptree: server returned 404"),
        "{err}"
    );
    assert!(message.contains("resp_unknown"), "{err}");
    assert!(
        request_id.starts_with("req_") && request_id.ends_with(']'),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    seen.push(out);

    let out = run(cli.command(&["prune", "--remote", &first_id])).await;
    assert_eq!(
        check_ok(&["prune"], &out),
        "removed 2 node(s); deleted 2 response(s) on the server\n"
    );
    seen.push(out);
    assert_eq!(emu.response_count(), 0);
    assert!(cli.nodes().is_empty());
    for out in &seen {
        assert!(!String::from_utf8_lossy(&out.stdout).contains(KEY));
        assert!(!String::from_utf8_lossy(&out.stderr).contains(KEY));
    }
}

#[test]
fn a_store_that_lost_writes_warns_and_still_runs() {
    let cli = Cli::new();
    cli.ask(None, "Plan a weekend in Paris");
    // Claim more durable commits than the database holds, as after sled dropped
    // the end of its log at a damaged record.
    std::fs::write(cli.store.join("resptree-commit"), "999").unwrap();
    let out = cli.run(&["stats"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("resptree: warning: corrupt record at key \"meta/commit_seq\""),
        "{stderr}"
    );
    assert!(stderr.contains("later commits are lost"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("nodes 1,"));
}
