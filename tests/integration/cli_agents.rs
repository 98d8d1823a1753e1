//! `resptree ask --tools/--json-schema` and `log` of a tool loop.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use resptree::{Node, NodeId, ResponseTree, Timestamp};
use serde_json::json;

use crate::cli_support::*;

#[test]
fn ask_sends_tools_and_a_json_schema_and_children_inherit_them() {
    let cli = Cli::new();
    let tools = cli.path("tools.json");
    write(
        &tools,
        &json!([{"type": "function", "name": "get_weather", "parameters":
            {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": false}])
        .to_string(),
    );
    let schema = cli.path("weather answer.json");
    write(
        &schema,
        &json!({"type": "object", "properties": {"temp": {"type": "number"}}}).to_string(),
    );
    let out = cli.ok(&[
        "--emulator",
        "ask",
        "--tools",
        tools.to_str().unwrap(),
        "--json-schema",
        schema.to_str().unwrap(),
        "Weather in Paris?",
    ]);
    let id = last_line(&out);
    let node = &cli.json(&["show", "--json", &id])[0];
    assert_eq!(node["settings"]["tools"][0]["name"], "get_weather");
    assert_eq!(node["settings"]["text_format"]["type"], "json_schema");
    assert_eq!(node["settings"]["text_format"]["name"], "weather_answer");
    assert_eq!(node["settings"]["text_format"]["strict"], true);
    let child = cli.ask(Some(&id), "And tomorrow?");
    let child = &cli.json(&["show", "--json", &child])[0];
    assert_eq!(child["settings"], node["settings"], "inherited");

    write(&tools, r#"[{"name": "no_type"}]"#);
    let err = cli.fails(
        &["--emulator", "ask", "--tools", tools.to_str().unwrap(), "x"],
        1,
    );
    assert!(
        err.contains("tool 0 in") && err.contains("no \"type\""),
        "{err}"
    );
    write(&tools, "nope");
    let err = cli.fails(
        &["--emulator", "ask", "--tools", tools.to_str().unwrap(), "x"],
        1,
    );
    assert!(err.contains("is not valid JSON"), "{err}");
}

#[test]
fn log_and_show_print_tool_calls_compactly() {
    let tree = ResponseTree::in_memory();
    let mut ask = Node::new(NodeId::new("resp_ask").unwrap(), None)
        .with_user_text("Weather in Paris?")
        .with_created_at(Timestamp(1));
    ask.output = vec![json!({"type": "function_call", "call_id": "call_1",
        "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})];
    tree.insert(ask).unwrap();
    let mut answer = Node::new(
        NodeId::new("resp_sun").unwrap(),
        Some(NodeId::new("resp_ask").unwrap()),
    )
    .with_output_text("Sunny, 18°C.")
    .with_created_at(Timestamp(2));
    answer.input = vec![
        json!({"type": "function_call_output", "call_id": "call_1", "output": "{\"temp\":18}"}),
    ];
    tree.insert(answer).unwrap();

    let cli = Cli::new();
    let file = cli.path("tree.json");
    write(&file, &resptree::render::export_json(&tree).unwrap());
    cli.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(
        cli.ok(&["log", "resp_sun"]),
        "\
## user
Weather in Paris?

## tool call call_1
⚙ get_weather(city=\"Paris\")

## tool output call_1
{\"temp\":18}

## assistant
Sunny, 18°C.
"
    );
    let shown = cli.ok(&["show"]);
    assert!(
        shown.contains("sun ⚙ get_weather(city=\"Paris\") → {\"temp\":18} → Sunny, 18°C."),
        "{shown}"
    );
}
