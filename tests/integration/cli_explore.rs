//! `resptree explore` end to end against the embedded emulator.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use crate::cli_support::*;

#[test]
fn explore_grows_a_scored_subtree_within_budget_and_names_the_best_leaf() {
    let cli = Cli::new();
    let root = cli.ask(None, "Plan a weekend in Paris");
    let args = [
        "--emulator",
        "explore",
        &root,
        "Suggest a first stop.",
        "--width",
        "3",
        "--keep",
        "1",
        "--depth",
        "2",
        "--follow-up",
        "Make it cheaper.",
        "--budget-tokens",
        "20000",
        "--max-output-tokens",
        "64",
        "--judge",
        "Which stop is better for a first visit?",
        "--ref",
        "winner",
        "--json",
    ];
    let out = cli.json(&args);
    let levels = out["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 2);
    assert_eq!(levels[0]["candidates"].as_array().unwrap().len(), 3);
    assert_eq!(levels[1]["candidates"].as_array().unwrap().len(), 3);
    // Pairwise: 3 × 2 ordered comparisons per level.
    assert_eq!(levels[0]["judge_usage"]["nodes"], json!(6));
    let spent = out["spent"]["total_tokens"].as_u64().unwrap();
    assert!(spent > 0 && spent <= 20_000, "{spent}");
    assert_eq!(out["stopped"], json!(null));
    let best = out["best"].as_str().unwrap().to_owned();
    assert_eq!(out["ref"], json!("winner"));
    // The winner is a level-2 leaf under the kept level-1 node.
    let kept = levels[0]["kept"][0].as_str().unwrap();
    assert_eq!(levels[1]["candidates"][0]["parent"], json!(kept));
    assert_eq!(levels[1]["candidates"][0]["id"], json!(best));
    let got = cli.ok(&["ref", "get", "winner"]);
    assert!(got.starts_with(&best), "{got}");
    // Scores are annotations `show` lists.
    let shown = cli.ok(&["show", &best]);
    assert!(shown.contains("score judge = "), "{shown}");

    // The same command again resumes: everything is found, nothing is made.
    let nodes = cli.nodes().len();
    let again = cli.json(&args);
    assert_eq!(cli.nodes().len(), nodes);
    assert_eq!(again["levels"][0]["resumed"], json!(3));
    assert_eq!(again["levels"][1]["resumed"], json!(3));
    assert_eq!(again["best"], json!(best));

    // The text report names the winner and the spend.
    let text = cli.ok(&args[..args.len() - 1]);
    assert!(
        text.contains(&format!("best: {best} (ref winner)")),
        "{text}"
    );
    assert!(text.contains("of a budget of 20000"), "{text}");
    assert!(
        text.contains("level 2: 3 candidates (3 from an earlier run)"),
        "{text}"
    );
}

#[test]
fn explore_stops_cleanly_when_the_budget_cannot_pay_for_a_level() {
    let cli = Cli::new();
    let root = cli.ask(None, "Plan a weekend in Paris");
    let args = [
        "--emulator",
        "explore",
        &root,
        "Suggest a first stop.",
        "--budget-tokens",
        "100",
        "--json",
    ];
    let out = cli.run(&args);
    assert!(out.status.success());
    let stdout: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stdout["levels"], json!([]));
    assert_eq!(stdout["best"], json!(null));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stopped before level 1"), "{stderr}");
    // Nothing was made, and no ref was set.
    assert_eq!(cli.nodes().len(), 1);
    cli.fails(&["ref", "get", "best"], 1);

    let err = cli.fails(
        &["--emulator", "explore", &root, "x", "--budget-usd", "1e12"],
        2,
    );
    assert!(err.contains("--budget-usd must be"), "{err}");
}

#[test]
fn explore_keeps_a_money_budget_at_the_price_tables_prices() {
    let cli = Cli::new().with_env("RESPTREE_MODEL", "gpt-4o-mini");
    let root = cli.ask(None, "Plan a weekend in Paris");
    let explore = |budget: &str| {
        cli.json(&[
            "--emulator",
            "explore",
            &root,
            "Suggest a first stop.",
            "--depth",
            "2",
            "--max-output-tokens",
            "64",
            "--budget-usd",
            budget,
            "--id",
            budget,
            "--json",
        ])
    };
    let roomy = explore("0.01");
    assert_eq!(roomy["levels"].as_array().unwrap().len(), 2);
    let spent: f64 = roomy["spent_usd"].as_str().unwrap().parse().unwrap();
    assert!(spent > 0.0 && spent <= 0.01, "{spent}");
    let tight = explore("0.00001");
    assert_eq!(tight["levels"], json!([]));
    assert!(
        tight["stopped"]
            .as_str()
            .unwrap()
            .contains("stopped before level 1")
    );
}
