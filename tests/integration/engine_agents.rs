//! Agents through the engine: request settings on the wire and on the node,
//! inheritance, tool loops as trees (answering, branching at a call, refusing
//! unanswered calls), stateless replay of tool turns, and a tool-using branch
//! continued on the Chat backend.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use resptree::backend::{ChatBackend, ResponsesBackend};
use resptree::client::Client;
use resptree::emulator::Emulator;
use resptree::engine::RespondOptions;
use resptree::settings::{
    FunctionTool, Reasoning, RequestSettings, TextFormat, Tool, ToolChoice, Truncation,
};
use resptree::{Engine, Error, Node, NodeId, Origin, ResponseTree, ToolOutput};
use serde_json::{Value, json};

fn client(emu: &Emulator) -> Client {
    Client::builder()
        .base_url(emu.base_url())
        .api_key("sk-test-agents")
        .max_retries(0)
        .retry_base_delay(Duration::from_millis(1))
        .build()
        .unwrap()
}

fn responses(emu: &Emulator, tree: impl Into<Arc<ResponseTree>>) -> Engine {
    Engine::builder(tree, ResponsesBackend::new(client(emu)))
        .model("gpt-4o-mini")
        .build()
        .unwrap()
}

/// Bodies of the requests to `path` the emulator saw, oldest first.
fn posts(emu: &Emulator, path: &str) -> Vec<Value> {
    emu.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .filter_map(|r| r.body)
        .collect()
}

fn weather_tool() -> FunctionTool {
    FunctionTool::new("get_weather")
        .description("Current weather in a city")
        .parameters(json!({
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": false
        }))
        .strict(true)
}

/// A node, as a tool-calling model would have made it, asking for the weather
/// in each of `cities` (call ids `call_<city>`), recorded with the weather tool.
fn calling_node(tree: &ResponseTree, cities: &[&str]) -> Node {
    let mut node = Node::new(NodeId::local(), None).with_user_text("What's the weather?");
    node.output = vec![json!({"id": "rs_1", "type": "reasoning", "summary": []})];
    for city in cities {
        node.output.push(json!({
            "id": format!("fc_{city}"), "type": "function_call", "call_id": format!("call_{city}"),
            "name": "get_weather", "arguments": json!({"city": city}).to_string(), "status": "completed"
        }));
    }
    node.model = Some("gpt-4o-mini".to_owned());
    node.settings = RequestSettings::default()
        .tool(weather_tool())
        .tool_choice(ToolChoice::Auto);
    node.origin = Origin::backend("responses");
    tree.insert(node.clone()).unwrap();
    node
}

#[tokio::test]
async fn settings_reach_the_wire_are_recorded_and_inherited() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = responses(&emu, ResponseTree::in_memory());
    let settings = RequestSettings::default()
        .tool(weather_tool())
        .tool(Tool::raw(json!({"type": "web_search"})))
        .tool_choice(ToolChoice::Auto)
        .parallel_tool_calls(false)
        .text_format(TextFormat::json_schema(
            "answer",
            json!({"type": "object", "properties": {"a": {"type": "string"}},
                   "required": ["a"], "additionalProperties": false}),
        ))
        .truncation(Truncation::Auto)
        .prompt_cache_key("trip-42")
        .top_p(0.5)
        .extra("future_field", json!({"x": 1}));
    let options = RespondOptions::default().settings(settings.clone());
    let root = engine
        .respond_with(
            None,
            vec![json!({"role": "user", "content": "hi"})],
            &options,
        )
        .await
        .unwrap();
    assert_eq!(root.settings, settings);
    let child = engine.respond(Some(&root.id), "more").await.unwrap();
    let over = engine
        .respond_with(
            Some(&root.id),
            vec![json!({"role": "user", "content": "plain"})],
            &RespondOptions::default()
                .tool_choice(ToolChoice::None)
                .temperature(0.3),
        )
        .await
        .unwrap();
    let fresh = engine
        .respond_with(
            Some(&root.id),
            vec![json!({"role": "user", "content": "fresh"})],
            &RespondOptions::default().fresh_settings(),
        )
        .await
        .unwrap();

    let bodies = posts(&emu, "/v1/responses");
    assert_eq!(bodies.len(), 4);
    for body in &bodies[..2] {
        assert_eq!(body["tools"][0]["name"], "get_weather");
        assert_eq!(body["tools"][0]["strict"], true);
        assert_eq!(body["tools"][1], json!({"type": "web_search"}));
        assert_eq!(body["tool_choice"], "auto");
        assert_eq!(body["parallel_tool_calls"], false);
        assert_eq!(body["text"]["format"]["type"], "json_schema");
        assert_eq!(body["text"]["format"]["name"], "answer");
        assert_eq!(body["truncation"], "auto");
        assert_eq!(body["prompt_cache_key"], "trip-42");
        assert_eq!(body["top_p"], 0.5);
        assert_eq!(body["future_field"], json!({"x": 1}));
    }
    // The child re-sent its parent's settings over previous_response_id.
    assert_eq!(bodies[1]["previous_response_id"], root.id.as_str());
    assert_eq!(child.settings, settings);
    // An override changes one field and keeps the rest.
    assert_eq!(bodies[2]["tool_choice"], "none");
    assert_eq!(bodies[2]["temperature"], 0.3);
    assert_eq!(bodies[2]["tools"], bodies[0]["tools"]);
    assert_eq!(over.settings.temperature, Some(0.3));
    // A fresh call sends none of them.
    assert!(bodies[3].get("tools").is_none() && bodies[3].get("text").is_none());
    assert!(fresh.settings.is_empty());
}

#[tokio::test]
async fn invalid_settings_are_refused_before_sending() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = responses(&emu, ResponseTree::in_memory());
    let options = RespondOptions::default().tool_choice(ToolChoice::Function("nope".to_owned()));
    let err = engine
        .respond_with(
            None,
            vec![json!({"role": "user", "content": "x"})],
            &options,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(posts(&emu, "/v1/responses").is_empty());
    assert_eq!(engine.tree().len(), 0);
}

#[tokio::test]
async fn stateless_requests_ask_for_encrypted_reasoning() {
    let emu = Emulator::spawn().await.unwrap();
    let stateless = Engine::builder(
        ResponseTree::in_memory(),
        ResponsesBackend::new(client(&emu)),
    )
    .stateless(true)
    .build()
    .unwrap();
    let root = stateless.respond(None, "hi").await.unwrap();
    let stored = responses(&emu, ResponseTree::in_memory());
    let plain = stored.respond(None, "hi").await.unwrap();
    let thinking = stored
        .respond_with(
            None,
            vec![json!({"role": "user", "content": "think"})],
            &RespondOptions::default()
                .model("o4-mini")
                .reasoning(Reasoning::effort("low")),
        )
        .await
        .unwrap();
    // Stateless on a reasoning model: its reasoning must come back encrypted.
    let stateless_thinking = stateless
        .respond_with(
            None,
            vec![json!({"role": "user", "content": "think"})],
            &RespondOptions::default().model("o4-mini"),
        )
        .await
        .unwrap();
    let bodies = posts(&emu, "/v1/responses");
    // Stateless on a model that does not reason: the include is never added
    // (the real API refuses it for such models, and so does the emulator).
    assert_eq!(bodies[0]["store"], false);
    assert!(bodies[0].get("include").is_none(), "{}", bodies[0]);
    assert!(bodies[1].get("include").is_none());
    assert_eq!(bodies[2]["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(bodies[2]["reasoning"], json!({"effort": "low"}));
    assert_eq!(bodies[3]["store"], false);
    assert_eq!(bodies[3]["include"], json!(["reasoning.encrypted_content"]));
    assert!(!root.settings.includes("reasoning.encrypted_content"));
    assert!(
        stateless_thinking
            .settings
            .includes("reasoning.encrypted_content")
    );
    assert!(plain.settings.is_empty());
    assert!(thinking.settings.reasoning.is_some());
}

#[tokio::test]
async fn a_forced_tool_choice_and_reasoning_are_not_inherited_where_they_would_be_wrong() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = responses(&emu, ResponseTree::in_memory());
    // A reasoning model forced to call the tool.
    let calling = engine
        .respond_with(
            None,
            vec![json!({"role": "user", "content": "weather city=Paris"})],
            &RespondOptions::default()
                .model("o4-mini")
                .tool(weather_tool())
                .tool_choice(ToolChoice::Required)
                .reasoning(Reasoning::effort("low")),
        )
        .await
        .unwrap();
    let call = calling.pending_tool_calls().remove(0);
    // Answering the call: `required` would force another call on every turn,
    // so the child falls back to the server's default and gets a message.
    let answered = engine
        .submit_tool_outputs_with(
            &calling.id,
            [ToolOutput::new(call.call_id, "sunny")],
            &RespondOptions::default().model("o4-mini"),
        )
        .await
        .unwrap();
    assert!(
        answered.pending_tool_calls().is_empty(),
        "{:?}",
        answered.output
    );
    assert_eq!(answered.settings.tool_choice, None);
    assert!(
        answered.settings.reasoning.is_some(),
        "same model: inherited"
    );
    // A child on a model that does not reason drops the inherited reasoning
    // (and its include) instead of being refused by the server.
    let plain = engine
        .respond_with(
            Some(&answered.id),
            vec![json!({"role": "user", "content": "thanks"})],
            &RespondOptions::default().model("gpt-4o-mini"),
        )
        .await
        .unwrap();
    assert_eq!(plain.settings.reasoning, None);
    let last = posts(&emu, "/v1/responses").pop().unwrap();
    assert!(last.get("reasoning").is_none(), "{last}");
    assert!(last.get("include").is_none(), "{last}");
    // The tools themselves are still inherited.
    assert_eq!(last["tools"][0]["name"], "get_weather");
}

#[tokio::test]
async fn tool_outputs_make_children_and_branch_at_the_call() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = responses(&emu, ResponseTree::in_memory());
    let parent = calling_node(engine.tree(), &["Paris", "Oslo"]);
    let pending: Vec<String> = parent
        .pending_tool_calls()
        .into_iter()
        .map(|c| c.call_id)
        .collect();
    assert_eq!(pending, ["call_Paris", "call_Oslo"]);

    // Plain input, or answering only one of two parallel calls: refused, nothing sent.
    let err = engine
        .respond(Some(&parent.id), "hello?")
        .await
        .unwrap_err();
    match &err {
        Error::UnansweredToolCalls { node, call_ids } => {
            assert_eq!(node, &parent.id);
            assert_eq!(call_ids, &["call_Paris", "call_Oslo"]);
        }
        other => panic!("{other:?}"),
    }
    let err = engine
        .submit_tool_outputs(&parent.id, [ToolOutput::new("call_Paris", "sunny")])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnansweredToolCalls { call_ids, .. } if call_ids == &["call_Oslo"])
    );
    let err = engine
        .branch_tool_outputs(
            &parent.id,
            [
                vec![
                    ToolOutput::new("call_Paris", "a"),
                    ToolOutput::new("call_Oslo", "b"),
                ],
                vec![ToolOutput::new("call_Lima", "c")],
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::UnknownToolCall { call_id, .. } if call_id == "call_Lima"));
    assert!(posts(&emu, "/v1/responses").is_empty());
    assert_eq!(engine.tree().len(), 1);

    // Both calls answered together; then two concurrent answers to the same calls.
    let answered = engine
        .submit_tool_outputs(
            &parent.id,
            [
                ToolOutput::json("call_Paris", &json!({"temp": 18})),
                ToolOutput::json("call_Oslo", &json!({"temp": 4})),
            ],
        )
        .await
        .unwrap();
    assert_eq!(answered.parent.as_ref(), Some(&parent.id));
    assert!(answered.pending_tool_calls().is_empty());
    let branches = engine
        .branch_tool_outputs(
            &parent.id,
            ["sunny", "rain"].map(|sky| {
                vec![
                    ToolOutput::new("call_Paris", sky),
                    ToolOutput::new("call_Oslo", sky),
                ]
            }),
        )
        .await
        .unwrap();
    let branches: Vec<Node> = branches.into_iter().map(Result::unwrap).collect();
    assert_eq!(engine.tree().children(&parent.id).unwrap().len(), 3);
    assert_eq!(branches[0].input[0]["output"], "sunny");
    assert_eq!(branches[1].input[0]["output"], "rain");

    let bodies = posts(&emu, "/v1/responses");
    assert_eq!(bodies.len(), 3);
    for body in &bodies {
        // The parent has no server copy: its path is replayed, calls with their
        // outputs, without item ids, and the tools are re-sent.
        assert!(body.get("previous_response_id").is_none_or(Value::is_null));
        assert_eq!(body["tools"][0]["name"], "get_weather");
        let input = body["input"].as_array().unwrap();
        let kinds: Vec<&str> = input
            .iter()
            .map(|i| i["type"].as_str().unwrap_or("message"))
            .collect();
        // The reasoning item had no encrypted content: not replayed.
        assert_eq!(
            kinds,
            [
                "message",
                "function_call",
                "function_call",
                "function_call_output",
                "function_call_output"
            ]
        );
        assert!(input.iter().all(|i| i.get("id").is_none()), "{input:?}");
    }
}

#[tokio::test]
async fn a_tool_using_branch_continues_on_a_chat_server() {
    let emu = Emulator::spawn().await.unwrap();
    let tree = Arc::new(ResponseTree::in_memory());
    let parent = calling_node(&tree, &["Paris"]);
    let chat = Engine::builder(Arc::clone(&tree), ChatBackend::new(client(&emu)))
        .model("gpt-4o-mini")
        .build()
        .unwrap();
    let child = chat
        .submit_tool_outputs(&parent.id, [ToolOutput::new("call_Paris", "{\"temp\":18}")])
        .await
        .unwrap();
    assert_eq!(child.origin.backend, "chat");
    assert_eq!(child.settings.tools, parent.settings.tools);
    let bodies = posts(&emu, "/v1/chat/completions");
    assert_eq!(bodies.len(), 1);
    let body = &bodies[0];
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(body["tool_choice"], "auto");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["tool_calls"][0]["id"], "call_Paris");
    assert_eq!(
        messages[1]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": "call_Paris", "content": "{\"temp\":18}"})
    );
    // And back: the chat node continues on the Responses backend by replay.
    let responses = responses(&emu, Arc::clone(&tree));
    let next = responses.respond(Some(&child.id), "thanks").await.unwrap();
    assert!(next.origin.replayed);
}

/// The whole loop against the emulator's fake reasoning model: it reasons, calls
/// the tool, and the stateless engine replays the reasoning (encrypted) with the
/// call and both alternative outputs, which the emulator verifies.
#[tokio::test]
async fn a_reasoning_agent_loop_branches_and_replays_statelessly() {
    let emu = Emulator::spawn().await.unwrap();
    for stateless in [true, false] {
        emu.clear_requests();
        let engine = Engine::builder(
            ResponseTree::in_memory(),
            ResponsesBackend::new(client(&emu)),
        )
        .model("o4-mini")
        .stateless(stateless)
        .build()
        .unwrap();
        let options = RespondOptions::default()
            .tool(weather_tool())
            .reasoning(Reasoning::effort("low").with_summary("auto"));
        let question = engine
            .respond_with(
                None,
                vec![json!({"role": "user", "content": "Call get_weather for Paris."})],
                &options,
            )
            .await
            .unwrap();
        assert_eq!(question.output[0]["type"], "reasoning");
        assert!(question.output[0]["encrypted_content"].is_string());
        assert!(question.usage.reasoning_tokens > 0);
        let calls = question.pending_tool_calls();
        assert_eq!(calls.len(), 1, "{:?}", question.output);
        assert_eq!(calls[0].name, "get_weather");

        let err = engine
            .respond(Some(&question.id), "never mind")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UnansweredToolCalls { .. }), "{err:?}");

        let branches = engine
            .branch_tool_outputs(
                &question.id,
                ["sunny", "rain"].map(|sky| vec![ToolOutput::new(calls[0].call_id.clone(), sky)]),
            )
            .await
            .unwrap();
        for branch in branches {
            let branch = branch.unwrap();
            assert!(branch.pending_tool_calls().is_empty(), "{stateless}");
            assert_eq!(branch.origin.replayed, stateless);
            let next = engine.respond(Some(&branch.id), "thanks").await.unwrap();
            let path = engine
                .usage(&next.id, resptree::engine::UsageScope::Path)
                .await
                .unwrap();
            assert_eq!(
                path.reasoning_tokens,
                question.usage.reasoning_tokens
                    + branch.usage.reasoning_tokens
                    + next.usage.reasoning_tokens
            );
        }
        let bodies = posts(&emu, "/v1/responses");
        assert_eq!(bodies.len(), 5, "the refused request was never sent");
        if stateless {
            // The replays carry the reasoning item with its encrypted content.
            let replay = bodies[1]["input"].as_array().unwrap();
            assert_eq!(replay[1]["type"], "reasoning");
            assert!(replay[1]["encrypted_content"].is_string());
            assert_eq!(bodies[1]["include"], json!(["reasoning.encrypted_content"]));
        } else {
            assert_eq!(bodies[1]["previous_response_id"], question.id.as_str());
        }
        for body in &bodies {
            assert_eq!(
                body["tools"][0]["name"], "get_weather",
                "re-sent every time"
            );
        }
    }
}
