//! `resptree serve` and `resptree export --format html` as a user runs them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::cli_support::Cli;

#[tokio::test]
async fn serve_prints_its_url_first_and_serves_the_store() {
    let cli = Cli::new();
    let id = cli.ask(None, "Plan a weekend in Paris");
    let mut child = cli
        .command(&["--emulator", "serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/') && !url.contains(":0/"),
        "{url:?}"
    );
    let info: Value = reqwest::get(format!("{url}api/info"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["nodes"], 1);
    assert_eq!(info["writable"], true, "--emulator gives it an engine");
    let view: Value = reqwest::get(format!("{url}api/nodes/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["summary"]["prompt"], "Plan a weekend in Paris");

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

#[test]
fn serve_refuses_a_remote_address_without_the_flag() {
    let cli = Cli::new();
    let err = cli.fails(&["serve", "--listen", "0.0.0.0:0"], 2);
    assert!(err.contains("--allow-remote"), "{err}");
}

#[test]
fn export_writes_one_self_contained_html_file_and_json_stays_the_default() {
    let cli = Cli::new();
    let id = cli.ask(None, "</script><script>alert(1)</script>");
    let html = cli.path("tree.html");
    let out = cli.ok(&["export", "--format", "html", html.to_str().unwrap()]);
    assert!(out.contains("exported 1 node(s)"), "{out}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("<script type=\"application/json\" id=\"resptree-data\">"));
    assert!(page.contains("default-src 'none'"), "no network loads");
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));
    assert!(page.contains(&id));
    // The hostile prompt is in the data, escaped; it never closes a script.
    assert_eq!(
        page.matches("</script>").count(),
        3,
        "data, markdown.js, app.js"
    );
    assert!(page.contains("\\u003c/script\\u003e\\u003cscript\\u003ealert(1)"));

    let json = cli.path("tree.json");
    cli.ok(&["export", json.to_str().unwrap()]);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["nodes"].as_array().unwrap().len(), 1);
}
