//! `resptree` end to end: every command against the embedded emulator
//! (`--emulator`) and a temporary store.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use resptree::emulator::Emulator;
use serde_json::{Value, json};

use crate::cli_support::*;

#[test]
fn ask_streams_an_answer_and_continues_by_replay_on_a_fresh_emulator() {
    let cli = Cli::new();
    let out = cli.ok(&["--emulator", "ask", "Plan a weekend in Paris"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(
        lines[0].starts_with("[ctx 1 msgs] You said: \"Plan a weekend in Paris\"."),
        "{out:?}"
    );
    let root = lines[1].to_owned();
    assert!(root.starts_with("resp_"), "{root:?}");

    // Each --emulator run has a fresh emulator that never saw `root`: the engine
    // falls back to replaying the path, so the server sees all three messages.
    let prefix = &root[..root.len() - 6];
    let out = cli.ok(&["--emulator", "ask", "--parent", prefix, "Make it cheaper"]);
    assert!(
        out.starts_with("[ctx 3 msgs] You said: \"Make it cheaper\"."),
        "{out:?}"
    );
    let child = last_line(&out);
    assert_eq!(
        ids(&cli.json(&["path", "--json", &child])),
        [root.clone(), child.clone()]
    );
    let node = &cli.json(&["show", "--json", &child])[0];
    assert_eq!(node["parent"], json!(root));
    assert_eq!(node["origin"]["replayed"], json!(true));
}

#[test]
fn ask_sends_instructions_and_the_model() {
    let cli = Cli::new().with_env("RESPTREE_MODEL", "gpt-test-env");
    let out = cli.ok(&["--emulator", "ask", "--instructions", "Be brief.", "Hi"]);
    let id = last_line(&out);
    let node = &cli.json(&["show", "--json", &id])[0];
    assert_eq!(node["instructions"], json!("Be brief."));
    assert_eq!(node["model"], json!("gpt-test-env"));
    let out = cli.ok(&[
        "--emulator",
        "--model",
        "gpt-flag",
        "ask",
        "--parent",
        &id,
        "Again",
    ]);
    let node = &cli.json(&["show", "--json", &last_line(&out)])[0];
    assert_eq!(
        node["model"],
        json!("gpt-flag"),
        "--model beats RESPTREE_MODEL"
    );
    assert_eq!(
        node["instructions"],
        json!("Be brief."),
        "inherited from the parent"
    );
}

#[test]
fn branch_and_fanout_make_children_of_one_parent() {
    let cli = Cli::new();
    let root = cli.ask(None, "Plan a weekend in Paris");
    let out = cli.ok(&[
        "--emulator",
        "branch",
        &root,
        "Reply formally.",
        "Reply funnily.",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(
        lines[0].contains("You said: \"Reply formally.\""),
        "{out:?}"
    );
    assert!(lines[1].contains("You said: \"Reply funnily.\""), "{out:?}");

    let out = cli.ok(&["--emulator", "fanout", &root, "Another idea?", "-n", "3"]);
    assert_eq!(out.lines().count(), 3, "{out:?}");
    assert!(
        out.lines()
            .all(|l| l.contains("You said: \"Another idea?\""))
    );

    let children: Vec<String> = cli
        .nodes()
        .iter()
        .filter(|n| n["parent"] == json!(root))
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    let printed: Vec<String> = out
        .lines()
        .chain(lines.iter().copied())
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert_eq!(children.len(), 5);
    assert!(
        printed.iter().all(|id| children.contains(id)),
        "{printed:?}"
    );

    let stats = cli.json(&["stats", "--json"]);
    assert_eq!(stats["nodes"], json!(6));
    assert_eq!(stats["roots"], json!(1));
    assert_eq!(stats["leaves"], json!(5));
    assert_eq!(stats["max_depth"], json!(1));
    assert_eq!(stats["branches"].as_array().unwrap().len(), 5);
}

#[test]
fn the_chat_backend_fans_out_in_one_request_and_mixes_with_responses() {
    let cli = Cli::new();
    let root = cli.ask(None, "Plan a weekend in Paris");
    let out = cli.ok(&[
        "--emulator",
        "--backend",
        "chat",
        "fanout",
        &root,
        "Another idea?",
        "-n",
        "3",
    ]);
    assert_eq!(out.lines().count(), 3, "{out:?}");
    // Chat replays the path: root input + root output + the new message.
    assert!(out.lines().all(|l| l.contains("[ctx 3 msgs]")), "{out:?}");
    let chat_nodes: Vec<Value> = cli
        .nodes()
        .into_iter()
        .filter(|n| n["origin"]["backend"] == json!("chat"))
        .collect();
    assert_eq!(chat_nodes.len(), 3);
    assert!(chat_nodes.iter().all(|n| n["parent"] == json!(root)));
    assert!(
        chat_nodes
            .iter()
            .all(|n| n["id"].as_str().unwrap().starts_with("node_"))
    );
    // The environment variable picks the backend too; bad values are usage errors.
    let cli = cli.with_env("RESPTREE_BACKEND", "nope");
    let err = cli.fails(&["--emulator", "stats"], 2);
    assert!(err.contains("nope"), "{err}");
}

/// `fanout` goes through `Engine::fan_out`: on the Chat backend one request asks
/// for all N choices (native `n`); on the Responses backend N requests go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_on_the_chat_backend_is_one_request_at_the_server() {
    let emu = Emulator::spawn().await.unwrap();
    let cli = Cli::new()
        .with_env("OPENAI_API_KEY", "sk-test")
        .with_env("OPENAI_BASE_URL", &emu.base_url());
    let args = ["ask", "Plan a weekend in Paris"];
    let root = last_line(&check_ok(&args, &run(cli.command(&args)).await));

    emu.clear_requests();
    let args = [
        "--backend",
        "chat",
        "fanout",
        &root,
        "Another idea?",
        "-n",
        "4",
    ];
    let out = check_ok(&args, &run(cli.command(&args)).await);
    assert_eq!(out.lines().count(), 4, "{out:?}");
    let requests = emu.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].body.as_ref().unwrap()["n"], json!(4));

    emu.clear_requests();
    let args = ["fanout", &root, "Another idea?", "-n", "3"];
    let out = check_ok(&args, &run(cli.command(&args)).await);
    assert_eq!(out.lines().count(), 3, "{out:?}");
    let paths: Vec<String> = emu.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v1/responses"; 3]);
    assert_eq!(cli.nodes().len(), 8);
}

#[test]
fn show_prints_every_format_and_honours_depth() {
    let cli = Cli::new();
    let root = cli.ask(None, "Plan a weekend in Paris");
    let child = cli.ask(Some(&root), "Make it cheaper");
    let grandchild = cli.ask(Some(&child), "Even cheaper");

    let ascii = cli.ok(&["show"]);
    let lines: Vec<&str> = ascii.lines().collect();
    assert_eq!(lines.len(), 3, "{ascii}");
    assert!(lines[0].contains("Plan a weekend in Paris →"), "{ascii}");
    assert!(lines[1].starts_with("└── ") && lines[1].contains("Make it cheaper →"));
    // A lone child is drawn in its parent's column, without a connector.
    assert!(lines[2].starts_with("    ") && lines[2].contains("Even cheaper →"));
    assert!(
        !lines[2].contains('└') && !lines[2].contains('├'),
        "{ascii}"
    );

    // The short id a line starts with resolves to its node.
    let short = lines[2].trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let short = short.split_whitespace().next().unwrap();
    assert_eq!(
        ids(&cli.json(&["path", "--json", short])).last(),
        Some(&grandchild)
    );

    let under = cli.ok(&["show", &child, "--depth", "0"]);
    assert_eq!(
        under.lines().count(),
        2,
        "the child, then a summary: {under}"
    );
    assert!(under.lines().next().unwrap().contains("Make it cheaper"));

    assert!(
        cli.ok(&["show", "--format", "dot"])
            .starts_with("digraph resptree {")
    );
    let mermaid = cli.ok(&["show", "--format", "mermaid"]);
    assert!(mermaid.starts_with("flowchart TD"), "{mermaid}");

    let all: Vec<Value> = cli.nodes();
    let order: Vec<&str> = all.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(order, [root.as_str(), child.as_str(), grandchild.as_str()]);
    let cut = cli.json(&["show", &child, "--format", "json", "--depth", "0"]);
    assert_eq!(cut.as_array().unwrap().len(), 1);
    assert_eq!(cut[0]["id"], json!(child));
}

#[test]
fn path_diff_and_log_walk_the_tree() {
    let cli = Cli::new();
    let root = cli.ask(None, "Plan a weekend in Paris");
    let a = cli.ask(Some(&root), "Museums");
    let b = cli.ask(Some(&root), "Food");
    let b2 = cli.ask(Some(&b), "Cheap food");

    let path = cli.ok(&["path", &b2]);
    let firsts: Vec<&str> = path
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(firsts, [root.as_str(), b.as_str(), b2.as_str()]);
    assert!(path.lines().nth(2).unwrap().contains("Cheap food → "));

    let diff = cli.json(&["diff", "--json", &a, &b2]);
    assert_eq!(diff, json!({"common": root, "left": [a], "right": [b, b2]}));
    let text = cli.ok(&["diff", &a, &b2]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("common: {root}"));
    assert!(lines[1].starts_with(&format!("< {a}  Museums → ")));
    assert!(lines[2].starts_with(&format!("> {b}  Food → ")));
    assert!(lines[3].starts_with(&format!("> {b2}  Cheap food → ")));

    let transcript = cli.json(&["log", "--json", &b2]);
    let roles: Vec<&str> = transcript
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "user",
            "assistant",
            "user",
            "assistant",
            "user",
            "assistant"
        ]
    );
    let log = cli.ok(&["log", &b2]);
    assert!(
        log.starts_with("## user\nPlan a weekend in Paris\n\n## assistant\n"),
        "{log}"
    );
    assert_eq!(log.matches("## user").count(), 3);
    assert!(log.contains("## user\nCheap food\n"), "{log}");
}

#[test]
fn refs_name_nodes_and_resolve_in_every_command() {
    let cli = Cli::new();
    let root = cli.ask(None, "Plan a weekend in Paris");
    let child = cli.ask(Some(&root), "Make it cheaper");
    assert_eq!(
        cli.ok(&["ref", "set", "trip", &root]),
        format!("trip -> {root}\n")
    );
    cli.ok(&["ref", "set", "cheap", &child]);
    assert_eq!(cli.ok(&["ref", "get", "trip"]), format!("{root}\n"));
    assert_eq!(
        cli.json(&["ref", "get", "trip", "--json"]),
        json!({"name": "trip", "target": root})
    );
    assert_eq!(
        cli.ok(&["ref", "list"]),
        format!("cheap\t{child}\ntrip\t{root}\n")
    );
    assert_eq!(
        cli.json(&["ref", "list", "--json"]),
        json!({"cheap": child, "trip": root})
    );
    // A ref works wherever an id does, including as a parent.
    assert_eq!(
        ids(&cli.json(&["path", "--json", "cheap"])),
        [root.clone(), child.clone()]
    );
    let grandchild = cli.ask(Some("cheap"), "Cheaper still");
    assert_eq!(
        cli.json(&["show", "--json", &grandchild])[0]["parent"],
        json!(child)
    );

    assert_eq!(
        cli.ok(&["ref", "delete", "trip"]),
        format!("deleted ref trip (was {root})\n")
    );
    assert_eq!(
        cli.fails(&["ref", "get", "trip"], 1),
        "resptree: ref trip not found\n"
    );
    assert_eq!(
        cli.json(&["ref", "list", "--json"]),
        json!({"cheap": child})
    );
}

#[test]
fn prune_removes_a_subtree_and_its_refs() {
    let cli = Cli::new();
    let root = cli.ask(None, "Plan a weekend in Paris");
    let keep = cli.ask(Some(&root), "Keep me");
    let drop = cli.ask(Some(&root), "Drop me");
    cli.ask(Some(&drop), "And me");
    cli.ok(&["ref", "set", "doomed", &drop]);
    assert_eq!(cli.ok(&["prune", "doomed"]), "removed 2 node(s)\n");
    let left: Vec<String> = cli
        .nodes()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, [root, keep]);
    assert_eq!(cli.json(&["ref", "list", "--json"]), json!({}));
}

#[test]
fn export_and_import_round_trip() {
    let cli = Cli::new();
    let root = cli.ask(None, "Plan a weekend in Paris");
    cli.ask(Some(&root), "Make it cheaper");
    cli.ok(&["ref", "set", "trip", &root]);
    let file = cli.path("tree.json");
    let file_arg = file.to_str().unwrap();
    assert_eq!(
        cli.ok(&["export", file_arg]),
        format!("exported 2 node(s) to {file_arg}\n")
    );
    assert_eq!(
        cli.ok(&["export", "-"]).trim_end(),
        std::fs::read_to_string(&file).unwrap().trim_end()
    );

    let other = Cli::new();
    assert_eq!(
        other.ok(&["import", file_arg]),
        "imported 2 node(s) and 1 ref(s)\n"
    );
    assert_eq!(other.ok(&["show"]), cli.ok(&["show"]));
    assert_eq!(other.ok(&["ref", "list"]), cli.ok(&["ref", "list"]));
    // Importing again would duplicate every node: refused, nothing changes.
    let err = other.fails(&["import", file_arg], 1);
    assert_eq!(
        err,
        format!("resptree: invalid tree operation: node {root} already exists\n")
    );
    assert_eq!(other.nodes().len(), 2);
}

/// A ChatGPT export with two conversations. The first is branched: the first
/// question was answered twice (regenerated) and also edited; the second is a
/// straight line with a tool call in the middle of an answer.
fn chatgpt_export() -> String {
    fn msg(id: &str, role: &str, text: &str, t: f64) -> Value {
        json!({"id": id, "author": {"role": role, "name": null, "metadata": {}},
               "create_time": t, "update_time": null,
               "content": {"content_type": "text", "parts": [text]},
               "status": "finished_successfully", "weight": 1.0,
               "metadata": {"model_slug": "gpt-4o"}, "recipient": "all"})
    }
    fn entry(id: &str, message: &Value, parent: Option<&str>, children: &[&str]) -> Value {
        json!({"id": id, "message": message, "parent": parent, "children": children})
    }
    let trip = json!({
        "title": "Paris trip", "create_time": 1_700_000_000.0, "update_time": 1_700_000_100.0,
        "conversation_id": "conv-trip", "current_node": "a3",
        "mapping": {
            "root": entry("root", &Value::Null, None, &["sys"]),
            "sys": entry("sys", &msg("sys", "system", "", 1_700_000_000.0), Some("root"), &["u1", "u1b"]),
            "u1": entry("u1", &msg("u1", "user", "Plan a weekend in Paris", 1_700_000_001.0), Some("sys"), &["a1", "a2"]),
            "a1": entry("a1", &msg("a1", "assistant", "Louvre on Saturday.", 1_700_000_002.0), Some("u1"), &["u2"]),
            "a2": entry("a2", &msg("a2", "assistant", "Orsay on Saturday.", 1_700_000_003.0), Some("u1"), &[]),
            "u2": entry("u2", &msg("u2", "user", "Make it cheaper", 1_700_000_004.0), Some("a1"), &["a3"]),
            "a3": entry("a3", &msg("a3", "assistant", "Walk the Marais.", 1_700_000_005.0), Some("u2"), &[]),
            "u1b": entry("u1b", &msg("u1b", "user", "Plan a weekend in Rome", 1_700_000_006.0), Some("sys"), &["a4"]),
            "a4": entry("a4", &msg("a4", "assistant", "Colosseum first.", 1_700_000_007.0), Some("u1b"), &[]),
        }
    });
    let recipe = json!({
        "title": "Recipe", "create_time": 1_700_001_000.0, "conversation_id": "conv-recipe",
        "mapping": {
            "r": entry("r", &Value::Null, None, &["q"]),
            "q": entry("q", &msg("q", "user", "Soup?", 1_700_001_001.0), Some("r"), &["c"]),
            "c": entry("c", &msg("c", "assistant", "Let me look.", 1_700_001_002.0), Some("q"), &["t"]),
            "t": entry("t", &msg("t", "tool", "search results", 1_700_001_003.0), Some("c"), &["d"]),
            "d": entry("d", &msg("d", "assistant", "Leek and potato.", 1_700_001_004.0), Some("t"), &[]),
        }
    });
    json!([trip, recipe]).to_string()
}

#[test]
fn import_chatgpt_keeps_the_branches_of_each_conversation() {
    let cli = Cli::new();
    let file = cli.path("conversations.json");
    write(&file, &chatgpt_export());
    let file_arg = file.to_str().unwrap();
    assert_eq!(
        cli.ok(&["import-chatgpt", file_arg]),
        format!("imported 5 node(s) from {file_arg}\n")
    );
    let stats = cli.json(&["stats", "--json"]);
    assert_eq!(
        (
            &stats["nodes"],
            &stats["roots"],
            &stats["leaves"],
            &stats["max_depth"]
        ),
        (&json!(5), &json!(4), &json!(4), &json!(1))
    );
    let show = cli.ok(&["show"]);
    let texts: Vec<String> = show
        .lines()
        .map(|l| {
            // Drop the tree drawing and the short id; keep the texts.
            let start = l.find(|c: char| c.is_ascii_alphanumeric()).unwrap();
            let body = l[start..].split_once(' ').unwrap().1;
            body.trim_end_matches(" (0/0 tok)").to_owned()
        })
        .collect();
    assert_eq!(
        texts,
        [
            "Plan a weekend in Paris → Louvre on Saturday.",
            "Make it cheaper → Walk the Marais.",
            "Plan a weekend in Paris → Orsay on Saturday.",
            "Plan a weekend in Rome → Colosseum first.",
            "Soup? → Let me look.",
        ],
        "{show}"
    );
    let nodes = cli.nodes();
    let soup = nodes
        .iter()
        .find(|n| n["metadata"]["chatgpt.title"] == json!("Recipe"))
        .unwrap();
    assert_eq!(
        soup["output_text"],
        json!("Let me look.\n\nLeek and potato.")
    );
    assert_eq!(soup["model"], json!("gpt-4o"));

    // An imported branch can be continued: it has no server copy, so it is replayed.
    let marais = nodes
        .iter()
        .find(|n| n["output_text"] == json!("Walk the Marais."))
        .unwrap();
    let out = cli.ok(&[
        "--emulator",
        "ask",
        "--parent",
        marais["id"].as_str().unwrap(),
        "And Sunday?",
    ]);
    assert!(
        out.starts_with("[ctx 5 msgs] You said: \"And Sunday?\""),
        "{out}"
    );
}

#[test]
fn import_chatgpt_streams_standard_input_and_draws_no_progress_on_a_pipe() {
    use std::io::Write as _;
    use std::process::Stdio;
    let cli = Cli::new();
    let mut child = cli
        .command(&["import-chatgpt", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let export = chatgpt_export();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(export.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = check_ok(&["import-chatgpt", "-"], &out);
    assert_eq!(stdout, "imported 5 node(s) from -\n");
    // stderr is a pipe here: the progress bar stays hidden.
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(cli.nodes().len(), 5);
}

#[test]
fn migrate_copies_a_tree_between_stores_and_refuses_a_full_destination() {
    let cli = Cli::new();
    let root = cli.ask(None, "Plan a weekend in Paris");
    cli.ok(&["--emulator", "branch", &root, "Formal.", "Funny."]);
    cli.ok(&["ref", "set", "trip", &root]);
    let copy = cli.root.join("copy");
    let (from, to) = (cli.store.to_str().unwrap(), copy.to_str().unwrap());
    let out = cli.ok(&["migrate", "--from", from, "--to", to]);
    assert_eq!(
        out.trim(),
        "copied 3 nodes, 1 refs, 0 attempts; counts verified"
    );
    let show_copy = || {
        let args = ["--store", to, "show", "--format", "json"];
        check_ok(&args, &bare_command().args(args).output().unwrap())
    };
    let original = cli.ok(&["show", "--format", "json"]);
    assert_eq!(show_copy(), original);
    // A second copy into the same destination is refused, and the copy is intact.
    let err = cli.fails(&["migrate", "--from", from, "--to", to], 1);
    assert!(err.starts_with("resptree: "), "{err}");
    assert_eq!(show_copy(), original);
    let err = cli.fails(&["migrate", "--from", from, "--to", from], 2);
    assert!(err.contains("same store"), "{err}");
}

/// Journals, in the CLI's store, an attempt whose response the server made but
/// no run recorded (as a run killed after `response.created` leaves it).
async fn leave_an_attempt(cli: &Cli, emu: &Emulator, parent: &str, text: &str) -> String {
    use resptree::client::{Client, CreateResponse, Input};
    use resptree::store::{Attempt, AttemptParams};
    let response = Client::builder()
        .base_url(emu.base_url())
        .api_key("sk-test")
        .build()
        .unwrap()
        .create(&CreateResponse::new("gpt-4o-mini", Input::text(text)).previous_response_id(parent))
        .await
        .unwrap();
    let tree = resptree::ResponseTree::open(&cli.store).unwrap();
    let mut attempt = Attempt::new(
        Some(resptree::NodeId::new(parent).unwrap()),
        vec![resptree::node::message_item("user", text)],
        AttemptParams::default(),
    );
    attempt.response_id = Some(resptree::ResponseId::new(&response.id).unwrap());
    tree.journal(&[attempt]).unwrap();
    response.id
}

/// `resptree recover` records what a killed run's server finished and says
/// so; a command that writes settles such attempts before its own work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_and_writing_commands_settle_what_a_killed_run_left() {
    let emu = Emulator::spawn().await.unwrap();
    let cli = Cli::new()
        .with_env("OPENAI_API_KEY", "sk-test")
        .with_env("OPENAI_BASE_URL", &emu.base_url());
    let args = ["ask", "Plan a weekend in Paris"];
    let root = last_line(&check_ok(&args, &run(cli.command(&args)).await));

    let lost = leave_an_attempt(&cli, &emu, &root, "lost child").await;
    let args = ["recover"];
    let out = check_ok(&args, &run(cli.command(&args)).await);
    assert!(out.contains(&format!("{lost}  recovered")), "{out}");
    assert!(
        out.contains("recovered 1, already recorded 0, unresolved 0"),
        "{out}"
    );
    let out = check_ok(&args, &run(cli.command(&args)).await);
    assert!(out.contains("recovered 0,"), "{out}");
    assert_eq!(cli.nodes().len(), 2);

    // A writing command settles first (and says so on stderr).
    let lost = leave_an_attempt(&cli, &emu, &root, "another lost child").await;
    let args = ["branch", &root, "a"];
    let out = run(cli.command(&args)).await;
    check_ok(&args, &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("recorded 1 response(s)") && stderr.contains(&lost),
        "{stderr}"
    );
    assert_eq!(cli.nodes().len(), 4);

    // An attempt the server never made is reported, and `recover` fails.
    let tree = resptree::ResponseTree::open(&cli.store).unwrap();
    let attempt =
        resptree::store::Attempt::new(None, Vec::new(), resptree::store::AttemptParams::default());
    tree.journal(&[attempt]).unwrap();
    drop(tree);
    let args = ["recover"];
    let stderr = check_fails(&args, &run(cli.command(&args)).await, 1);
    assert!(stderr.contains("could not be recovered"), "{stderr}");
}
