//! The CLI's view of annotations and costs: `annotate`, `show` listing a
//! subtree's annotations, `stats --cost` and `show --cost`.

// Tests unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use resptree::{Annotation, NodeId, ResponseTree, Score, ScoreMethod};

use crate::cli_support::*;

/// Annotates nodes of the CLI's store through the library (the tree is
/// dropped, so its lock is released, before the next command runs).
fn annotate(cli: &Cli, annotations: &[(&str, Annotation)]) {
    let tree = ResponseTree::open(&cli.store).unwrap();
    for (id, annotation) in annotations {
        tree.annotate(&NodeId::new(id).unwrap(), annotation.clone())
            .unwrap();
    }
}

#[test]
fn show_lists_the_annotations_of_the_shown_subtree() {
    let cli = Cli::new();
    let root = cli.ask(None, "Plan a weekend in Paris");
    let child = cli.ask(Some(&root), "Make it cheaper");
    // Nothing annotated: no section.
    assert!(!cli.ok(&["show"]).contains("annotations:"));
    annotate(
        &cli,
        &[
            (
                &child,
                Annotation::Score(Score::new("thrift", 0.5, ScoreMethod::Rubric)),
            ),
            (&child, Annotation::note("good\nbut long")),
            (&root, Annotation::Bookmark),
        ],
    );
    let short = |id: &str| NodeId::new(id).unwrap().short().to_owned();
    let out = cli.ok(&["show"]);
    let (_, section) = out.split_once("\nannotations:\n").unwrap();
    assert_eq!(
        section,
        format!(
            "{r}  bookmark\n{c}  note: good⏎but long\n{c}  score thrift = 0.5 (rubric)\n",
            r = short(&root),
            c = short(&child)
        )
    );
    // Under the child: only the child's.
    let out = cli.ok(&["show", &child]);
    assert!(!out.contains("bookmark"), "{out}");
    assert!(out.contains("score thrift"), "{out}");
}

/// The exact cost of `tokens` (a `UsageTotals` as JSON) at per-million prices
/// in microdollars, as a decimal string of dollars: worked out here with
/// integers, independently of the ledger.
fn expected_cost(tokens: &serde_json::Value, input: u128, cached: u128, output: u128) -> String {
    let n = |k: &str| u128::from(tokens[k].as_u64().unwrap());
    let (i, c, w, o) = (
        n("input_tokens"),
        n("cached_tokens"),
        n("cache_write_tokens"),
        n("output_tokens"),
    );
    let pico = (i - c - w) * input + c * cached + w * input + o * output;
    let (whole, frac) = (pico / 1_000_000_000_000, pico % 1_000_000_000_000);
    let frac = format!("{frac:012}");
    let frac = frac.trim_end_matches('0');
    format!("{whole}.{frac:0<2}")
}

/// A CLI whose user configuration directory is its own temporary directory,
/// so no price file of the person running the tests leaks in.
fn cli() -> Cli {
    let cli = Cli::new();
    let config = cli.root.join("config");
    cli.with_env("XDG_CONFIG_HOME", config.to_str().unwrap())
}

#[test]
fn stats_cost_prices_the_tree_and_each_branch() {
    let cli = cli();
    let root = cli.ask(None, "Plan a weekend in Paris");
    cli.ask(Some(&root), "Make it cheaper");
    cli.ask(Some(&root), "Make it fancier");
    let stats = cli.json(&["stats", "--json", "--cost"]);
    // The emulator answers as gpt-4o-mini, the engine's default model:
    // $0.15 input, $0.075 cached input, $0.60 output per million tokens.
    let want = expected_cost(&stats["tokens"], 150_000, 75_000, 600_000);
    assert_eq!(stats["cost"]["total"]["total"], serde_json::json!(want));
    assert_eq!(stats["cost"]["total"]["unpriced"], 0);
    assert_eq!(stats["cost"]["total"]["priced"], 3);
    assert_eq!(stats["prices"]["as_of"], "2026-03-21");
    let branches = stats["cost"]["branches"].as_array().unwrap();
    assert_eq!(branches.len(), 2);
    for (branch, tokens) in branches.iter().zip(stats["branches"].as_array().unwrap()) {
        assert_eq!(branch["leaf"], tokens["leaf"]);
        let want = expected_cost(&tokens["tokens"], 150_000, 75_000, 600_000);
        assert_eq!(branch["cost"]["total"], serde_json::json!(want));
    }
    let text = cli.ok(&["stats", "--cost"]);
    assert!(text.contains("\ncost $0.0"), "{text}");
    assert!(
        text.contains("prices: the built-in price table (as of 2026-03-21)"),
        "{text}"
    );
    assert_eq!(
        text.matches("  $0.0").count(),
        2,
        "a cost per branch: {text}"
    );
    // Without --cost, no money.
    assert!(!cli.ok(&["stats"]).contains('$'));
    assert!(cli.json(&["stats", "--json"]).get("cost").is_none());
}

#[test]
fn a_user_price_file_overrides_the_defaults_per_model() {
    let cli = cli();
    cli.ask(None, "Plan a weekend in Paris");
    cli.ask(None, "Another root").to_string();
    // The file in the default place ($XDG_CONFIG_HOME/resptree/prices.json).
    let dir = cli.root.join("config").join("resptree");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("prices.json"),
        r#"{"models": {"gpt-4o-mini": {"input": 1, "output": 2}}}"#,
    )
    .unwrap();
    let stats = cli.json(&["stats", "--json", "--cost"]);
    let want = expected_cost(&stats["tokens"], 1_000_000, 1_000_000, 2_000_000);
    assert_eq!(stats["cost"]["total"]["total"], serde_json::json!(want));
    let sources = stats["prices"]["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2);
    assert!(sources[1].as_str().unwrap().ends_with("prices.json"));

    // $RESPTREE_PRICES wins over the default place.
    let named = cli.root.join("mine.json");
    std::fs::write(
        &named,
        r#"{"models": {"gpt-4o-mini": {"input": 3, "output": 4}}}"#,
    )
    .unwrap();
    let out = cli
        .command(&["stats", "--json", "--cost"])
        .env("RESPTREE_PRICES", &named)
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_str(&check_ok(&["stats"], &out)).unwrap();
    let want = expected_cost(&stats["tokens"], 3_000_000, 3_000_000, 4_000_000);
    assert_eq!(stats["cost"]["total"]["total"], serde_json::json!(want));
}

#[test]
fn a_bad_price_file_is_an_error_naming_it() {
    let cli = cli();
    cli.ask(None, "Plan a weekend in Paris");
    let bad = cli.root.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"models": {"gpt-4o-mini": {"input": "cheap", "output": 1}}}"#,
    )
    .unwrap();
    let out = cli
        .command(&["stats", "--cost"])
        .env("RESPTREE_PRICES", &bad)
        .output()
        .unwrap();
    let err = check_fails(&["stats", "--cost"], &out, 1);
    assert!(err.contains(bad.to_str().unwrap()), "{err}");
    assert!(err.contains("invalid type"), "{err}");
    let missing = cli.root.join("missing.json");
    let out = cli
        .command(&["stats", "--cost"])
        .env("RESPTREE_PRICES", &missing)
        .output()
        .unwrap();
    let err = check_fails(&["stats", "--cost"], &out, 1);
    assert!(
        err.contains("missing.json") && err.contains("no such file"),
        "{err}"
    );
    // Without --cost the prices are not read, so the bad file does not matter.
    let out = cli
        .command(&["stats"])
        .env("RESPTREE_PRICES", &bad)
        .output()
        .unwrap();
    check_ok(&["stats"], &out);
}

#[test]
fn an_unknown_model_costs_unknown_not_zero() {
    let cli = cli();
    let id = last_line(&cli.ok(&["--emulator", "--model", "homebrew-9", "ask", "hi"]));
    let stats = cli.json(&["stats", "--json", "--cost"]);
    assert_eq!(stats["cost"]["total"]["unpriced"], 1);
    assert_eq!(stats["cost"]["total"]["priced"], 0);
    assert_eq!(
        stats["cost"]["total"]["unknown_models"],
        serde_json::json!(["homebrew-9"])
    );
    let text = cli.ok(&["stats", "--cost"]);
    assert!(text.contains("cost unknown ("), "{text}");
    assert!(text.contains("unpriced: homebrew-9"), "{text}");
    let shown = cli.ok(&["show", &id, "--cost"]);
    assert!(shown.contains("cost: node unknown ("), "{shown}");
}

#[test]
fn show_cost_prices_the_node_its_path_and_its_subtree() {
    let cli = cli();
    let root = cli.ask(None, "Plan a weekend in Paris");
    let child = cli.ask(Some(&root), "Make it cheaper");
    let out = cli.ok(&["show", &root, "--cost"]);
    let (_, costs) = out.split_once("\ncost: node $").unwrap();
    assert!(costs.contains("\n      path $"), "{out}");
    assert!(costs.contains("\n      subtree $"), "{out}");
    // The subtree of the root is the whole tree: the same total as stats.
    let stats = cli.ok(&["stats", "--cost"]);
    let total = stats
        .split_once("\ncost ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap();
    assert!(
        costs.contains(&format!("subtree {total}\n")),
        "{out} vs {stats}"
    );
    // The child's path is the whole tree too; its subtree is itself.
    let out = cli.ok(&["show", &child, "--cost"]);
    assert!(out.contains(&format!("path {total}\n")), "{out} vs {stats}");
}

#[test]
fn annotate_writes_removes_and_lists() {
    let cli = cli();
    let id = cli.ask(None, "Plan a weekend in Paris");
    let out = cli.ok(&[
        "annotate",
        &id,
        "--bookmark",
        "--label",
        "paris",
        "--label",
        "draft",
        "--note",
        "check prices",
        "--score",
        "taste=7.5",
    ]);
    assert_eq!(
        out,
        "bookmark\nlabel draft\nlabel paris\nnote: check prices\nscore taste = 7.5 (manual)\n"
    );
    let out = cli.ok(&[
        "annotate",
        &id,
        "--remove",
        "label/draft",
        "--remove",
        "note",
    ]);
    assert_eq!(out, "bookmark\nlabel paris\nscore taste = 7.5 (manual)\n");
    let listed = cli.json(&["annotate", &id, "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(listed[2]["kind"], "score");
    assert_eq!(listed[2]["method"]["type"], "manual");
    // A bad argument changes nothing.
    let err = cli.fails(&["annotate", &id, "--label", "new", "--score", "taste"], 1);
    assert!(err.contains("CRITERION=VALUE"), "{err}");
    let err = cli.fails(&["annotate", &id, "--remove", "stars/5"], 1);
    assert!(err.contains("not an annotation key"), "{err}");
    let err = cli.fails(&["annotate", &id, "--score", "taste=NaN"], 1);
    assert!(err.contains("not a finite number"), "{err}");
    assert_eq!(cli.json(&["annotate", &id, "--json"]), listed);
    let err = cli.fails(&["annotate", "resp_nowhere", "--bookmark"], 1);
    assert!(err.contains("resp_nowhere"), "{err}");
    // `show` lists what the command wrote.
    assert!(cli.ok(&["show"]).contains("label paris"));
}

#[test]
fn stats_shows_the_scores_on_each_branch_leaf() {
    let cli = cli();
    let root = cli.ask(None, "Plan a weekend in Paris");
    let cheap = cli.ask(Some(&root), "Make it cheaper");
    let long = cli.ask(Some(&root), "Make it longer");
    // Nothing scored: no scores line, an empty JSON map.
    assert!(!cli.ok(&["stats"]).contains("scored nodes"));
    assert_eq!(
        cli.json(&["stats", "--json"])["scores"],
        serde_json::json!({})
    );
    cli.ok(&["annotate", &cheap, "--score", "thrift=0.75"]);
    let out = cli.ok(&["stats"]);
    assert!(out.contains("scored nodes 1\n"), "{out}");
    let line = |id: &str| {
        let short = NodeId::new(id).unwrap().short().to_owned();
        out.lines()
            .find(|l| l.contains(&short))
            .unwrap_or_else(|| panic!("no branch line for {id} in {out}"))
            .to_owned()
    };
    assert!(line(&cheap).ends_with("thrift 0.75"), "{out}");
    assert!(!line(&long).contains("thrift"), "{out}");
    let json = cli.json(&["stats", "--json"]);
    assert_eq!(json["scores"][cheap.as_str()][0]["criterion"], "thrift");
    assert_eq!(json["scores"][cheap.as_str()][0]["value"], 0.75);
    assert!(json["scores"].get(long.as_str()).is_none());
}
