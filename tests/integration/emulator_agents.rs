//! The emulator as an agent's server: function calls, reasoning items, structured
//! output, token counting, the context window and input validation — over plain
//! HTTP, with wire shapes compared against the agent fixtures.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use resptree::emulator::Emulator;
use serde_json::{Value, json};

use crate::emulator_support::*;

fn weather_tool() -> Value {
    json!({
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
            },
            "required": ["city", "unit"],
            "additionalProperties": false
        },
        "strict": true
    })
}

fn time_tool() -> Value {
    json!({"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}})
}

/// A request body with the weather and time tools.
fn with_tools(input: Value) -> Value {
    let mut body = json!({"model": "gpt-4o-mini", "tools": [weather_tool(), time_tool()]});
    body["input"] = input;
    body
}

/// A request body with the weather tool only (the fixtures' tool).
fn with_weather(input: Value) -> Value {
    let mut body = json!({"model": "gpt-4o-mini", "tools": [weather_tool()],
        "prompt_cache_key": "paris-weekend-planner", "safety_identifier": "user_4f9c2a7e1b"});
    body["input"] = input;
    body
}

/// The function call items of a Response.
fn calls(response: &Value) -> Vec<Value> {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "function_call")
        .cloned()
        .collect()
}

/// The event types of a streamed body, checking `event:` = `type` and sequence numbers.
fn stream_events(body: &str) -> Vec<Value> {
    let events: Vec<Value> = sse_blocks(body)
        .into_iter()
        .map(|b| {
            let data: Value = serde_json::from_str(&b.data).unwrap();
            assert_eq!(b.event.as_deref(), data["type"].as_str());
            data
        })
        .collect();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i as u64, "sequence numbers run 0..");
    }
    events
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_named_tool_is_called_with_schema_valid_arguments_in_the_fixture_shape() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let resp = create(
        &base,
        with_weather(json!("What is get_weather for city=Paris unit=fahrenheit?")),
    )
    .await;
    let fixture = fixture("response-function-call.json");
    assert_same_shape(&resp, &fixture, "response");
    let made = calls(&resp);
    assert_eq!(made.len(), 1, "{resp}");
    let call = &made[0];
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["status"], "completed");
    assert!(is_id(call["id"].as_str().unwrap(), "fc_"), "{call}");
    assert!(call["call_id"].as_str().unwrap().starts_with("call_"));
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris", "unit": "fahrenheit"}));
    assert_eq!(resp["tools"][0]["name"], "get_weather", "tools are echoed");
    assert!(resp["usage"]["output_tokens"].as_u64().unwrap() > 0);

    // Without a named tool, `auto` writes a message.
    let plain = create(&base, with_tools(json!("Plan a weekend in Paris"))).await;
    assert!(calls(&plain).is_empty());
    assert_eq!(plain["output"][0]["type"], "message");
}

#[tokio::test]
async fn tool_choice_none_required_forced_and_parallel_calls() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let mut body = with_tools(json!("get_weather and get_time please"));
    let both = create(&base, body.clone()).await;
    let names: Vec<String> = calls(&both)
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["get_weather", "get_time"]);
    let ids: std::collections::HashSet<String> = calls(&both)
        .iter()
        .map(|c| c["call_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "call ids differ");

    body["parallel_tool_calls"] = json!(false);
    assert_eq!(calls(&create(&base, body.clone()).await).len(), 1);

    body["tool_choice"] = json!("none");
    assert!(calls(&create(&base, body.clone()).await).is_empty());

    let mut required = with_tools(json!("hello"));
    required["tool_choice"] = json!("required");
    let resp = create(&base, required).await;
    let call = &calls(&resp)[0];
    assert_eq!(call["name"], "get_weather");
    // No hint: the fixed word for strings, the first enum member.
    assert_eq!(call["arguments"], r#"{"city":"example","unit":"celsius"}"#);

    let mut forced = with_tools(json!("get_weather"));
    forced["tool_choice"] = json!({"type": "function", "name": "get_time"});
    let resp = create(&base, forced).await;
    assert_eq!(calls(&resp).len(), 1);
    assert_eq!(calls(&resp)[0]["name"], "get_time");
    assert_eq!(
        resp["tool_choice"],
        json!({"type": "function", "name": "get_time"})
    );
}

#[tokio::test]
async fn a_continuation_must_answer_every_call_and_then_gets_a_message() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let first = create(&base, with_tools(json!("get_weather and get_time"))).await;
    let [a, b] = <[Value; 2]>::try_from(calls(&first)).unwrap();
    let output = |call: &Value, out: &str| json!({"type": "function_call_output", "call_id": call["call_id"], "output": out});
    let mut next = with_tools(json!([output(&a, "{\"temp\":18}")]));
    next["previous_response_id"] = first["id"].clone();

    // One of two calls answered.
    let reply = post(&base, "/responses", &next).await;
    assert_eq!(reply.status, 400);
    let error = reply.error();
    assert_same_shape(
        &error,
        &fixture("error-no-tool-output.json")["error"],
        "error",
    );
    assert_eq!(
        error["message"],
        format!(
            "No tool output found for function call {}.",
            b["call_id"].as_str().unwrap()
        )
    );
    assert_eq!(error["param"], "input");

    // A plain user message does not answer them either.
    let mut unanswered = with_tools(json!("thanks"));
    unanswered["previous_response_id"] = first["id"].clone();
    assert_eq!(post(&base, "/responses", &unanswered).await.status, 400);

    // An output for an unknown call.
    let mut stray = with_tools(
        json!([{"type": "function_call_output", "call_id": "call_nope", "output": "x"}]),
    );
    stray["previous_response_id"] = first["id"].clone();
    let error = post(&base, "/responses", &stray).await.error();
    assert_eq!(
        error["message"],
        "No tool call found for function call output with call_id call_nope."
    );

    // Both answered (in any order): the model answers the results with a message,
    // even though the conversation named the tools.
    next["input"] = json!([output(&b, "12:00"), output(&a, "{\"temp\":18}")]);
    let done = create(&base, next).await;
    assert!(calls(&done).is_empty(), "{done}");
    assert_eq!(done["output"][0]["type"], "message");
    // user, two calls, two outputs; the refused requests took no sibling ordinal.
    assert!(output_text(&done).starts_with("[ctx 5 msgs]"), "{done}");
    assert!(output_text(&done).contains("Take 1:"), "{done}");

    // Stateless replay: the call and its output sent back together are fine.
    let replay = json!({"model": "gpt-4o-mini", "store": false, "input": [
        {"role": "user", "content": "get_weather"},
        a.clone(),
        output(&a, "sunny"),
        {"role": "user", "content": "and tomorrow?"}
    ]});
    create(&base, replay).await;
}

#[tokio::test]
async fn streamed_function_call_events_come_in_the_real_order() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let mut body = with_weather(json!(
        "get_weather city=\"Saint-Denis de la Réunion\" unit=celsius"
    ));
    body["stream"] = json!(true);
    let reply = post(&base, "/responses", &body).await;
    assert_eq!(reply.status, 200);
    let events = stream_events(&reply.text);
    let fixture_events: Vec<Value> = sse_blocks(&fixture_text("stream-function-call.sse"))
        .into_iter()
        .map(|b| serde_json::from_str(&b.data).unwrap())
        .collect();
    let mut got = types(&events);
    got.dedup();
    let mut want = types(&fixture_events);
    want.dedup();
    assert_eq!(got, want);
    for event in &events {
        let kind = event["type"].as_str().unwrap();
        let model = fixture_events.iter().find(|e| e["type"] == kind).unwrap();
        assert_same_shape(event, model, kind);
    }
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let done = events
        .iter()
        .find(|e| e["type"] == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(deltas, done["arguments"].as_str().unwrap());
    let args: Value = serde_json::from_str(&deltas).unwrap();
    assert_eq!(args["city"], "Saint-Denis de la Réunion");
    let completed = events.last().unwrap();
    let item = &completed["response"]["output"][0];
    assert_eq!(item["arguments"], done["arguments"]);
    assert_eq!(item["id"], done["item_id"]);
    // The streamed response was stored with its call: it needs an answer.
    let mut next = with_weather(json!("thanks"));
    next["previous_response_id"] = completed["response"]["id"].clone();
    assert_eq!(post(&base, "/responses", &next).await.status, 400);
}

#[tokio::test]
async fn malformed_tools_get_the_real_validation_errors() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let cases = [
        (
            json!([{"type": "function"}]),
            "tools[0].name",
            "missing_required_parameter",
        ),
        (
            json!([weather_tool(), {"name": "f"}]),
            "tools[1].type",
            "missing_required_parameter",
        ),
        (
            json!([{"type": "telepathy"}]),
            "tools[0].type",
            "invalid_value",
        ),
        (
            json!([{"type": "function", "name": "f", "parameters": {"type": "array"}}]),
            "tools[0].parameters",
            "invalid_function_parameters",
        ),
        (
            json!([{"type": "function", "name": "f", "parameters": "x"}]),
            "tools[0].parameters",
            "invalid_type",
        ),
        (json!({"not": "a list"}), "tools", "invalid_type"),
    ];
    for (tools, param, code) in cases {
        let body = json!({"model": "gpt-4o-mini", "input": "hi", "tools": tools});
        let reply = post(&base, "/responses", &body).await;
        assert_eq!(reply.status, 400, "{tools}");
        let error = reply.error();
        assert_eq!(error["param"], param, "{error}");
        assert_eq!(error["code"], code, "{error}");
    }
    let body = json!({"model": "gpt-4o-mini", "input": "hi", "tools": [weather_tool()],
                      "tool_choice": {"type": "function", "name": "nope"}});
    assert_eq!(
        post(&base, "/responses", &body).await.error()["param"],
        "tool_choice"
    );
    assert_eq!(emu.response_count(), 0, "nothing invalid was stored");
}

#[tokio::test]
async fn encrypted_reasoning_is_refused_for_a_model_that_does_not_reason() {
    let emu = Emulator::spawn().await.unwrap();
    let body = json!({"model": "gpt-4o-mini", "input": "hi", "store": false,
                      "include": ["reasoning.encrypted_content"]});
    let resp = reqwest::Client::new()
        .post(format!("{}/responses", emu.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["param"], "include", "{err}");
    assert_eq!(err["error"]["code"], "unsupported_parameter", "{err}");
}

#[tokio::test]
async fn reasoning_models_put_a_reasoning_item_first_and_count_its_tokens() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let body = json!({"model": "o4-mini", "input": "Plan a weekend in Paris",
                      "prompt_cache_key": "paris-weekend-planner", "safety_identifier": "user_4f9c2a7e1b",
                      "reasoning": {"effort": "high", "summary": "auto"},
                      "include": ["reasoning.encrypted_content"]});
    let resp = create(&base, body).await;
    assert_same_shape(&resp, &fixture("response-reasoning.json"), "response");
    let item = &resp["output"][0];
    assert_eq!(item["type"], "reasoning");
    assert!(is_id(item["id"].as_str().unwrap(), "rs_"));
    assert_eq!(item["summary"][0]["type"], "summary_text");
    assert!(
        item["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("gAAAAA")
    );
    assert_eq!(resp["output"][1]["type"], "message");
    let usage = &resp["usage"];
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 128);
    let text_tokens = (output_text_of(&resp).chars().count() as u64).div_ceil(4);
    assert_eq!(usage["output_tokens"], 128 + text_tokens);
    assert_eq!(resp["reasoning"]["effort"], "high");
    assert_eq!(resp["reasoning"]["summary"], "auto");

    // Default effort (medium), no summary, nothing included.
    let plain = create(&base, json!({"model": "gpt-5", "input": "hi"})).await;
    assert_eq!(plain["output"][0]["summary"], json!([]));
    assert!(plain["output"][0].get("encrypted_content").is_none());
    assert_eq!(
        plain["usage"]["output_tokens_details"]["reasoning_tokens"],
        64
    );
    // Not a reasoning model: no item, and `effort` is refused.
    let chat = create(&base, json!({"model": "gpt-4o", "input": "hi"})).await;
    assert_eq!(chat["output"].as_array().unwrap().len(), 1);
    let reply = post(
        &base,
        "/responses",
        &json!({"model": "gpt-4o", "input": "hi",
        "reasoning": {"effort": "low"}}),
    )
    .await;
    assert_eq!(reply.error()["code"], "unsupported_parameter");
}

/// The text of the message item, wherever it is in `output`.
fn output_text_of(resp: &Value) -> String {
    resp["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "message")
        .map(|m| m["content"][0]["text"].as_str().unwrap().to_owned())
        .unwrap()
}

#[tokio::test]
async fn encrypted_reasoning_round_trips_statelessly_and_foreign_content_is_refused() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let first = create(
        &base,
        json!({"model": "o3", "input": "Plan a weekend", "store": false,
        "include": ["reasoning.encrypted_content"]}),
    )
    .await;
    let reasoning = first["output"][0].clone();
    let message = first["output"][1].clone();
    let replay = |item: Value, model: &str| {
        json!({"model": model, "store": false, "include": ["reasoning.encrypted_content"], "input": [
            {"role": "user", "content": "Plan a weekend"}, item, message,
            {"role": "user", "content": "Make it cheaper"}]})
    };
    let ok = create(&base, replay(reasoning.clone(), "o3")).await;
    assert_eq!(ok["output"][0]["type"], "reasoning");
    assert!(output_text_of(&ok).starts_with("[ctx 4 msgs]"));

    let mut garbled = reasoning.clone();
    let mut sealed = garbled["encrypted_content"].as_str().unwrap().to_owned();
    let flipped = if &sealed[10..11] == "0" { "1" } else { "0" };
    sealed.replace_range(10..11, flipped);
    garbled["encrypted_content"] = json!(sealed);
    for (item, model) in [(garbled, "o3"), (reasoning.clone(), "o4-mini")] {
        let reply = post(&base, "/responses", &replay(item, model)).await;
        assert_eq!(reply.status, 400);
        let error = reply.error();
        assert_same_shape(
            &error,
            &fixture("error-invalid-encrypted-content.json")["error"],
            "error",
        );
        assert_eq!(error["code"], "invalid_encrypted_content");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains(reasoning["id"].as_str().unwrap())
        );
    }
}

#[tokio::test]
async fn reasoning_items_by_id_need_a_stored_response() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let by_id = |resp: &Value| {
        let item = &resp["output"][0];
        json!({"model": "o3", "input": [
            {"role": "user", "content": "hi"},
            {"type": "reasoning", "id": item["id"], "summary": []},
            resp["output"][1],
            {"role": "user", "content": "and then?"}]})
    };
    let stored = create(&base, json!({"model": "o3", "input": "hi"})).await;
    create(&base, by_id(&stored)).await;

    let unstored = create(&base, json!({"model": "o3", "input": "hi", "store": false})).await;
    let reply = post(&base, "/responses", &by_id(&unstored)).await;
    assert_eq!(reply.status, 404);
    let error = reply.error();
    let id = unstored["output"][0]["id"].as_str().unwrap();
    assert!(
        error["message"].as_str().unwrap().starts_with(&format!(
            "Item with id '{id}' not found. Items are not persisted when `store` is set to false."
        )),
        "{error}"
    );
    assert_eq!(error["param"], "input");
}

#[tokio::test]
async fn streamed_reasoning_summary_events_precede_the_message() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let body =
        json!({"model": "o3", "input": "hi", "stream": true, "reasoning": {"summary": "detailed"}});
    let reply = post(&base, "/responses", &body).await;
    let events = stream_events(&reply.text);
    let mut got = types(&events);
    got.dedup();
    assert_eq!(
        got[..9],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
        ]
    );
    let message_added = events
        .iter()
        .filter(|e| e["type"] == "response.output_item.added")
        .nth(1)
        .unwrap();
    assert_eq!(message_added["output_index"], 1);
    assert!(
        events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .all(|e| e["output_index"] == 1)
    );
    let final_response = &events.last().unwrap()["response"];
    let done_text = events
        .iter()
        .find(|e| e["type"] == "response.reasoning_summary_text.done")
        .unwrap();
    assert_eq!(
        final_response["output"][0]["summary"][0]["text"],
        done_text["text"]
    );
}

#[tokio::test]
async fn structured_output_validates_against_the_schema() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let schema = json!({
        "$defs": {"Stop": {"type": "object", "properties": {
            "place": {"type": "string"}, "hours": {"type": "number"}},
            "required": ["place", "hours"], "additionalProperties": false}},
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "pace": {"type": "string", "enum": ["slow", "fast"]},
            "days": {"type": "integer", "minimum": 2},
            "stops": {"type": "array", "items": {"$ref": "#/$defs/Stop"}}
        },
        "required": ["title", "pace", "days", "stops"],
        "additionalProperties": false
    });
    let body = json!({"model": "gpt-4o-mini", "input": "Plan \"A Paris weekend\" pace=fast",
        "text": {"format": {"type": "json_schema", "name": "plan", "schema": schema, "strict": true}}});
    let resp = create(&base, body).await;
    let parsed: Value = serde_json::from_str(&output_text(&resp)).unwrap();
    assert_eq!(
        parsed,
        json!({"title": "A Paris weekend", "pace": "fast", "days": 2,
               "stops": [{"place": "A Paris weekend", "hours": 1.0}]})
    );
    assert_eq!(
        resp["text"]["format"]["name"], "plan",
        "the format is echoed"
    );

    let object = json!({"model": "gpt-4o-mini", "input": "Answer in JSON",
        "text": {"format": {"type": "json_object"}}});
    let resp = create(&base, object.clone()).await;
    let parsed: Value = serde_json::from_str(&output_text(&resp)).unwrap();
    assert!(parsed.is_object());
    let mut no_json = object;
    no_json["input"] = json!("Answer please");
    assert_eq!(
        post(&base, "/responses", &no_json).await.error()["param"],
        "input"
    );
    let missing = json!({"model": "gpt-4o-mini", "input": "x",
        "text": {"format": {"type": "json_schema", "schema": {"type": "object"}}}});
    assert_eq!(
        post(&base, "/responses", &missing).await.error()["param"],
        "text.format.name"
    );
}

#[tokio::test]
async fn input_tokens_counts_what_a_create_would_see() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let root = create(&base, with_tools(json!("Plan a weekend in Paris"))).await;
    let body = json!({"model": "gpt-4o-mini", "input": "Which museums?", "instructions": "Be brief.",
        "tools": [weather_tool(), time_tool()], "previous_response_id": root["id"]});
    let counted = post(&base, "/responses/input_tokens", &body).await;
    assert_eq!(counted.status, 200, "{}", counted.text);
    let counted = counted.json();
    assert_same_shape(&counted, &fixture("input-tokens.json"), "input_tokens");
    let children_before = emu.response_count();
    let child = create(&base, body).await;
    assert_eq!(counted["input_tokens"], child["usage"]["input_tokens"]);
    assert_eq!(emu.response_count(), children_before + 1);
    // Counting reserved no sibling ordinal: the child is the parent's first.
    assert!(output_text(&child).contains("Take 1:"), "{child}");

    // Without `input`: the inherited context alone, as a create with empty input.
    let only = json!({"model": "gpt-4o-mini", "previous_response_id": child["id"]});
    let counted = post(&base, "/responses/input_tokens", &only).await.json();
    let mut empty = only.clone();
    empty["input"] = json!([]);
    let grandchild = create(&base, empty).await;
    assert_eq!(counted["input_tokens"], grandchild["usage"]["input_tokens"]);
    let gone = post(
        &base,
        "/responses/input_tokens",
        &json!({"model": "gpt-4o-mini", "input": "x", "previous_response_id": "resp_unknown"}),
    )
    .await;
    assert_eq!(gone.error()["code"], "previous_response_not_found");
}

#[tokio::test]
async fn the_context_window_refuses_or_truncates() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    // `-ctx60`: a 60-token window. Each message below costs 4 + 10 = 14 tokens.
    let model = "gpt-4o-mini-ctx60";
    let message =
        |i: usize| json!({"role": "user", "content": format!("message {i:02} {}", "x".repeat(29))});
    let five: Vec<Value> = (0..5).map(message).collect();
    let body = json!({"model": model, "input": five});
    let reply = post(&base, "/responses", &body).await;
    assert_eq!(reply.status, 400);
    let error = reply.error();
    assert_same_shape(
        &error,
        &fixture("error-context-length-exceeded.json")["error"],
        "error",
    );
    assert_eq!(error["code"], "context_length_exceeded");
    assert_eq!(error["param"], "input");
    assert_eq!(
        post(&base, "/responses/input_tokens", &body).await.error()["code"],
        "context_length_exceeded"
    );

    let mut auto = body.clone();
    auto["truncation"] = json!("auto");
    let resp = create(&base, auto.clone()).await;
    // 4 messages (56 tokens) fit; the oldest was dropped.
    assert!(
        output_text(&resp).starts_with("[ctx 4 msgs] You said: \"message 04"),
        "{resp}"
    );
    assert_eq!(resp["usage"]["input_tokens"], 56);
    assert_eq!(resp["truncation"], "auto");
    let counted = post(&base, "/responses/input_tokens", &auto).await.json();
    assert_eq!(counted["input_tokens"], 56);
    // The stored chain keeps every item: a child over the window truncates again.
    let child = create(
        &base,
        json!({"model": model, "input": "more", "truncation": "auto",
        "previous_response_id": resp["id"]}),
    )
    .await;
    assert_eq!(child["usage"]["input_tokens_details"]["cached_tokens"], 0);
    assert!(child["usage"]["input_tokens"].as_u64().unwrap() <= 60);
}

#[tokio::test]
async fn duplicate_item_ids_are_refused() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let item = json!({"id": "msg_same", "type": "message", "role": "user", "content": "hi"});
    let reply = post(
        &base,
        "/responses",
        &json!({"model": "gpt-4o-mini", "input": [item, item]}),
    )
    .await;
    assert_eq!(reply.status, 400);
    let error = reply.error();
    assert_same_shape(
        &error,
        &fixture("error-duplicate-item.json")["error"],
        "error",
    );
    assert_eq!(
        error["message"],
        "Duplicate item found with id msg_same. Remove duplicate items from your input and try again."
    );
    assert_eq!(error["param"], "input");
    let distinct = json!([item, {"id": "msg_other", "role": "user", "content": "again"}]);
    create(&base, json!({"model": "gpt-4o-mini", "input": distinct})).await;
}

/// The weather tool in the Chat Completions shape.
fn chat_weather_tool() -> Value {
    let mut function = weather_tool();
    let object = function.as_object_mut().unwrap();
    object.remove("type");
    json!({"type": "function", "function": function})
}

#[tokio::test]
async fn chat_completions_call_tools_and_take_their_results() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let user = json!({"role": "user", "content": "get_weather city=Paris"});
    let body =
        json!({"model": "gpt-4o-mini", "n": 2, "messages": [user], "tools": [chat_weather_tool()]});
    let reply = post(&base, "/chat/completions", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let completion = reply.json();
    let mut call_ids = Vec::new();
    for choice in completion["choices"].as_array().unwrap() {
        assert_eq!(choice["finish_reason"], "tool_calls");
        let message = &choice["message"];
        assert!(message["content"].is_null());
        let call = &message["tool_calls"][0];
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], "get_weather");
        assert_eq!(
            call["function"]["arguments"],
            r#"{"city":"Paris","unit":"celsius"}"#
        );
        call_ids.push(call["id"].as_str().unwrap().to_owned());
    }
    assert_ne!(call_ids[0], call_ids[1], "each choice has its own call ids");

    let assistant = completion["choices"][0]["message"].clone();
    let tool = json!({"role": "tool", "tool_call_id": call_ids[0], "content": "{\"temp\":18}"});
    let answered = json!({"model": "gpt-4o-mini", "messages": [user, assistant, tool],
                          "tools": [chat_weather_tool()]});
    let done = post(&base, "/chat/completions", &answered).await.json();
    assert_eq!(done["choices"][0]["finish_reason"], "stop");
    assert!(
        done["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("[ctx 3 msgs]")
    );

    let unanswered = json!({"model": "gpt-4o-mini", "messages": [user, assistant, {"role": "user", "content": "?"}]});
    let error = post(&base, "/chat/completions", &unanswered).await.error();
    assert_eq!(error["param"], "messages.[1].role");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .ends_with(call_ids[0].as_str()),
        "{error}"
    );
    let stray = json!({"model": "gpt-4o-mini", "messages": [user, tool]});
    let error = post(&base, "/chat/completions", &stray).await.error();
    assert_eq!(error["param"], "messages.[1].role");
    let bad = json!({"model": "gpt-4o-mini", "messages": [user],
                     "tools": [{"type": "function", "function": {"parameters": {}}}]});
    assert_eq!(
        post(&base, "/chat/completions", &bad).await.error()["param"],
        "tools[0].function.name"
    );
}

#[tokio::test]
async fn streamed_chat_tool_calls_reassemble() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let body = json!({"model": "gpt-4o-mini", "stream": true, "tools": [chat_weather_tool()],
        "messages": [{"role": "user", "content": "get_weather city=\"Le Puy-en-Velay\" unit=fahrenheit"}]});
    let reply = post(&base, "/chat/completions", &body).await;
    assert_eq!(reply.status, 200);
    let mut id = None;
    let mut arguments = String::new();
    let mut finish = None;
    for block in sse_blocks(&reply.text) {
        if block.data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(&block.data).unwrap();
        for choice in chunk["choices"].as_array().unwrap() {
            if let Some(calls) = choice["delta"]["tool_calls"].as_array() {
                let call = &calls[0];
                assert_eq!(call["index"], 0);
                if let Some(call_id) = call["id"].as_str() {
                    assert!(
                        id.replace(call_id.to_owned()).is_none(),
                        "the id comes once"
                    );
                    assert_eq!(call["function"]["name"], "get_weather");
                }
                arguments.push_str(call["function"]["arguments"].as_str().unwrap());
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                finish = Some(reason.to_owned());
            }
        }
    }
    assert!(id.unwrap().starts_with("call_"));
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    let args: Value = serde_json::from_str(&arguments).unwrap();
    assert_eq!(
        args,
        json!({"city": "Le Puy-en-Velay", "unit": "fahrenheit"})
    );
}
