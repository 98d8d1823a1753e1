//! `resptree search` end to end: plain lines with short ids, `--json`, the
//! filters, and usage errors.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use crate::cli_support::*;

/// The ids of `--json` hits.
fn hit_ids(hits: &serde_json::Value) -> Vec<String> {
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn search_prints_one_line_per_hit_with_its_short_id_and_a_snippet() {
    let cli = Cli::new();
    let paris = cli.ask(None, "Plan a weekend in Paris");
    let food = cli.ask(Some(&paris), "Where to eat near the Louvre?");
    let rome = cli.ask(None, "Plan a weekend in Rome");

    let out = cli.ok(&["search", "louvre"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    let short = &food[food.len() - 8..];
    assert!(lines[0].starts_with(&format!("{short}  ")), "{out:?}");
    assert!(lines[0].contains("Louvre"), "{out:?}");
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );

    // Best first: the two "weekend" roots, and nothing else.
    let out = cli.ok(&["search", "weekend"]);
    assert_eq!(out.lines().count(), 2, "{out:?}");
    assert!(cli.ok(&["search", "berlin"]).is_empty());

    // --json: full ids, snippets with byte ranges.
    let hits = cli.json(&["search", "--json", "\"weekend in Rome\""]);
    assert_eq!(hits.as_array().unwrap().len(), 1);
    assert_eq!(hits[0]["id"], json!(rome));
    let snippet = &hits[0]["snippets"][0];
    let text = snippet["text"].as_str().unwrap();
    let (start, end) = (
        snippet["matches"][0]["start"].as_u64().unwrap() as usize,
        snippet["matches"][0]["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&text[start..end], "weekend in Rome");

    // --under takes an id, a prefix or a ref; --ref a ref; --limit caps.
    let under = cli.json(&["search", "--json", "--under", &paris, "weekend"]);
    assert_eq!(hit_ids(&under), [paris.as_str()]);
    cli.ok(&["ref", "set", "food", &food]);
    assert_eq!(
        hit_ids(&cli.json(&["search", "--json", "--ref", "food", "the"])),
        [food.as_str()]
    );
    assert_eq!(
        cli.json(&["search", "--json", "--limit", "1", "weekend"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let model = cli.json(&["show", "--json", &rome])[0]["model"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        cli.json(&["search", "--json", "--answered-by", &model, "rome"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        cli.json(&["search", "--json", "--answered-by", "no-such-model", "rome"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_malformed_query_or_scope_is_an_error_not_a_panic() {
    let cli = Cli::new();
    cli.ask(None, "hello");
    let err = cli.fails(&["search", "\"unclosed"], 1);
    assert!(
        err.contains("invalid search query") && err.contains("unclosed quote"),
        "{err}"
    );
    let err = cli.fails(&["search", "--under", "nope", "hello"], 1);
    assert!(err.contains("nope"), "{err}");
    let err = cli.fails(&["search", "--ref", "nope", "hello"], 1);
    assert!(err.contains("nope"), "{err}");
    // Only punctuation: no words, so no hits and no error.
    assert!(cli.ok(&["search", "?!"]).is_empty());
}

#[test]
fn after_and_before_filter_by_creation_time_in_utc() {
    let cli = Cli::new();
    let node = cli.ask(None, "Plan a weekend in Lisbon");
    let hits = cli.json(&["search", "--json", "lisbon"]);
    assert_eq!(hit_ids(&hits), [node.as_str()]);
    let created_secs = hits[0]["created_at"].as_i64().unwrap() / 1000;

    let found = |flags: &[&str]| {
        let mut args = vec!["search", "--json"];
        args.extend_from_slice(flags);
        args.push("lisbon");
        hit_ids(&cli.json(&args))
    };
    let second_before = (created_secs - 1).to_string();
    let second_after = (created_secs + 1).to_string();
    assert_eq!(found(&["--after", &second_before]), [node.as_str()]);
    assert!(found(&["--after", &second_after]).is_empty());
    assert_eq!(found(&["--before", &second_after]), [node.as_str()]);
    assert!(found(&["--before", &second_before]).is_empty());
    assert_eq!(
        found(&["--after", "2000-01-01", "--before", "2999-12-31T23:59:59Z"]),
        [node.as_str()]
    );
    assert!(found(&["--before", "1999-12-31"]).is_empty());

    // A time the flag cannot read is a usage error that names it.
    let err = cli.fails(&["search", "--after", "2026-02-30", "lisbon"], 2);
    assert!(
        err.contains("2026-02-30") && err.contains("--after"),
        "{err}"
    );
}
