//! Black-box tests of the emulator's Responses endpoints over plain HTTP.

use resptree::emulator::Emulator;
use serde_json::{Value, json};

use crate::emulator_support::*;

/// The request that `response-basic.json` answers (cache key and safety id set, as the
/// fixture's README says).
fn basic_request(input: &str) -> Value {
    json!({
        "model": "gpt-4o-mini-2024-07-18",
        "input": input,
        "prompt_cache_key": "paris-weekend-planner",
        "safety_identifier": "user_4f9c2a7e1b",
    })
}

#[tokio::test]
async fn create_matches_the_basic_fixture() {
    let emu = Emulator::spawn().await.unwrap();
    let base = emu.base_url();
    let resp = create(&base, basic_request("Plan a weekend in Paris")).await;
    assert_same_shape(&resp, &fixture("response-basic.json"), "response");
    assert!(
        is_id(resp["id"].as_str().unwrap(), "resp_"),
        "{}",
        resp["id"]
    );
    assert!(is_id(resp["output"][0]["id"].as_str().unwrap(), "msg_"));
    assert_eq!(resp["status"], "completed");
    assert_eq!(resp["object"], "response");
    assert_eq!(resp["previous_response_id"], Value::Null);
    assert_eq!(resp["store"], true);
    let text = output_text(&resp);
    assert!(
        text.starts_with("[ctx 1 msgs] You said: \"Plan a weekend in Paris\". Take 1: "),
        "{text}"
    );
    let usage = &resp["usage"];
    assert_eq!(
        usage["input_tokens"],
        item_tokens("Plan a weekend in Paris")
    );
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(
        usage["output_tokens"],
        (text.chars().count() as u64).div_ceil(4)
    );
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );
    let got = get(
        &base,
        &format!("/responses/{}", resp["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), resp);
}
