//! The examples run offline (embedded emulator, temporary store) and print a tree.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// Runs `cargo run --example name` without an API key and returns its stdout.
fn run_example(name: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--all-features", "--example", name, "--"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("RESPTREE_BACKEND")
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "example {name} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

fn tree_lines(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.contains("├── ") || l.contains("└── "))
        .count()
}

#[test]
fn paris_prints_two_parallel_branches_and_three_requests() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("paris.db");
    let stdout = run_example("paris", &[store.to_str().unwrap()]);
    assert!(
        stdout.contains("Reply as a very formal travel agent."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Reply as a funny travel buddy."),
        "{stdout}"
    );
    assert_eq!(tree_lines(&stdout), 2, "{stdout}");
    assert!(stdout.contains("requests made: 3"), "{stdout}");
    // The tree was really persisted where we asked.
    let tree = resptree::ResponseTree::open(&store).unwrap();
    assert_eq!(tree.len(), 3);
    assert_eq!(tree.roots().len(), 1);
    assert_eq!(tree.children(&tree.roots()[0]).unwrap().len(), 2);
}

#[test]
fn agent_branch_answers_one_tool_call_two_ways() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("agent.db");
    let stdout = run_example("agent_branch", &[store.to_str().unwrap()]);
    assert!(stdout.contains("The model called get_weather("), "{stdout}");
    // The emulator takes the quoted city from the question (its documented rule).
    assert!(stdout.contains(r#"get_weather(city="Paris")"#), "{stdout}");
    // The call's two answers are siblings, each drawn with the call and output.
    let answers: Vec<&str> = stdout
        .lines()
        .filter(|l| (l.contains("├── ") || l.contains("└── ")) && l.contains("⚙ get_weather("))
        .collect();
    assert_eq!(answers.len(), 2, "{stdout}");
    assert!(stdout.contains("requests made: 5"), "{stdout}");
    let tree = resptree::ResponseTree::open(&store).unwrap();
    assert_eq!(tree.len(), 5);
    let root = tree.roots()[0].clone();
    let question = tree.get(&root).unwrap();
    assert_eq!(question.pending_tool_calls().len(), 1);
    for child in tree.children(&root).unwrap() {
        let child = tree.get(&child).unwrap();
        assert_eq!(child.input[0]["type"], "function_call_output");
        // The tools were sent once, at the root, and inherited all the way down.
        assert_eq!(child.settings.tools, question.settings.tools);
    }
}

#[test]
fn fan_out_keeps_the_best_and_names_it() {
    let stdout = run_example("fan_out", &[]);
    assert!(stdout.contains("picked "), "{stdout}");
    // Five alternatives under the question; the continuation of the chosen one
    // is its lone child, drawn in its column without a connector.
    assert_eq!(tree_lines(&stdout), 5, "{stdout}");
    let best = stdout.lines().find(|l| l.contains("[best]")).unwrap();
    assert!(
        (best.starts_with("│   ") || best.starts_with("    ")) && tree_lines(best) == 0,
        "{stdout}"
    );
    assert!(stdout.contains("tokens per branch"), "{stdout}");
    assert!(stdout.contains("requests made: 7"), "{stdout}");
}

#[test]
fn conversation_lock_shows_the_lock_and_the_costs() {
    let stdout = run_example("conversation_lock", &[]);
    assert!(
        stdout.contains("Another process is currently operating on this conversation"),
        "{stdout}"
    );
    // resptree's cost per branch does not grow with history: 2 requests for 2 branches each time.
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.contains(" | ") && l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    for row in &rows {
        assert_eq!(row[5], "2", "{stdout}");
    }
    let clone_requests: Vec<u64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
    assert!(clone_requests.windows(2).all(|w| w[0] < w[1]), "{stdout}");
}

#[test]
fn tree_walk_runs_offline() {
    let stdout = run_example("tree_walk", &[]);
    assert!(tree_lines(&stdout) > 0, "{stdout}");
    assert!(stdout.contains("flowchart"), "{stdout}");
}

#[test]
fn explore_runs_a_judged_beam_search_and_resumes_for_free() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("explore.db");
    let stdout = run_example("explore", &[store.to_str().unwrap()]);
    assert!(
        stdout.contains("level 1: 3 candidates (0 resumed)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("level 2: 6 candidates (0 resumed)"),
        "{stdout}"
    );
    assert!(stdout.contains("best: resp_"), "{stdout}");
    let nodes = resptree::ResponseTree::open(&store).unwrap().len();
    // Run again on the same store: the same exploration, all of it found.
    let again = run_example("explore", &[store.to_str().unwrap()]);
    assert!(
        again.contains("level 2: 6 candidates (6 resumed)"),
        "{again}"
    );
    assert_eq!(resptree::ResponseTree::open(&store).unwrap().len(), nodes);
}
