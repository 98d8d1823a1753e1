//! Conversation items: normalising request `input` into stored message items, and
//! reading their text.

use serde_json::{Map, Value, json};

use super::failure::Failure;
use super::ids;

/// Normalises a request's `input` (a string or a list of items) into stored items,
/// each with an id. Message items get the real stored shape; other item types are kept
/// as sent (with an id added when missing).
///
/// `param` names the field in error messages (`"input"`, `"items"`, `"messages"`).
pub(crate) fn normalize_input(input: &Value, param: &str) -> Result<Vec<Value>, Failure> {
    match input {
        Value::String(text) => Ok(vec![message("user", text)]),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, item)| normalize_item(item, &format!("{param}[{i}]")))
            .collect(),
        other => Err(Failure::wrong_type(param, "a string or an array", other)),
    }
}

/// A stored message item with one text part.
pub(crate) fn message(role: &str, text: &str) -> Value {
    json!({
        "id": ids::message(),
        "type": "message",
        "role": role,
        "status": "completed",
        "content": [text_part(role, text)],
    })
}

/// The concatenated text of an item's text parts (`""` for items without text).
pub(crate) fn text_of(item: &Value) -> String {
    match item.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

fn normalize_item(item: &Value, param: &str) -> Result<Value, Failure> {
    let Value::Object(obj) = item else {
        return Err(Failure::wrong_type(param, "an object", item));
    };
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("message");
    if kind != "message" {
        let mut kept = obj.clone();
        kept.entry("id")
            .or_insert_with(|| Value::String(ids::item()));
        return Ok(Value::Object(kept));
    }
    let role = match obj.get("role") {
        Some(Value::String(role)) => role.as_str(),
        Some(other) => {
            return Err(Failure::wrong_type(
                &format!("{param}.role"),
                "a string",
                other,
            ));
        }
        None => return Err(Failure::missing(&format!("{param}.role"))),
    };
    if !matches!(role, "user" | "assistant" | "system" | "developer") {
        return Err(Failure::invalid_value(
            &format!("{param}.role"),
            format!(
                "Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', and 'developer'."
            ),
            "invalid_value",
        ));
    }
    let content = match obj.get("content") {
        Some(Value::String(text)) => vec![text_part(role, text)],
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| normalize_part(part, &format!("{param}.content[{j}]")))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(Failure::wrong_type(
                &format!("{param}.content"),
                "a string or an array",
                other,
            ));
        }
        None => return Err(Failure::missing(&format!("{param}.content"))),
    };
    let id = match obj.get("id") {
        Some(Value::String(id)) => id.clone(),
        _ => ids::message(),
    };
    Ok(json!({
        "id": id,
        "type": "message",
        "role": role,
        "status": "completed",
        "content": content,
    }))
}

fn normalize_part(part: &Value, param: &str) -> Result<Value, Failure> {
    let Value::Object(obj) = part else {
        return Err(Failure::wrong_type(param, "an object", part));
    };
    let mut kept: Map<String, Value> = obj.clone();
    match kept.get("type").and_then(Value::as_str) {
        Some("input_text") => {
            kept.entry("prompt_cache_breakpoint").or_insert(Value::Null);
        }
        Some("output_text") => {
            kept.entry("annotations").or_insert_with(|| json!([]));
            kept.entry("logprobs").or_insert_with(|| json!([]));
        }
        Some(_) => {}
        None => return Err(Failure::missing(&format!("{param}.type"))),
    }
    if let Some(text) = kept.get("text")
        && !text.is_string()
    {
        return Err(Failure::wrong_type(
            &format!("{param}.text"),
            "a string",
            text,
        ));
    }
    Ok(Value::Object(kept))
}

fn text_part(role: &str, text: &str) -> Value {
    if role == "assistant" {
        json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
    } else {
        json!({"type": "input_text", "prompt_cache_breakpoint": null, "text": text})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_input_becomes_one_user_message() {
        let items = normalize_input(&json!("hello"), "input").unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["role"], "user");
        assert_eq!(items[0]["content"][0]["type"], "input_text");
        assert!(items[0]["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(text_of(&items[0]), "hello");
    }

    #[test]
    fn easy_messages_and_typed_items_are_accepted() {
        let input = json!([
            {"role": "developer", "content": "be brief"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
            {"type": "function_call_output", "call_id": "c1", "output": "42"}
        ]);
        let items = normalize_input(&input, "input").unwrap();
        assert_eq!(items[0]["content"][0]["text"], "be brief");
        assert_eq!(items[1]["content"][0]["annotations"], json!([]));
        assert_eq!(items[2]["type"], "function_call_output");
        assert!(items[2]["id"].is_string());
    }

    #[test]
    fn bad_items_name_the_param() {
        let err = normalize_input(&json!(5), "input").unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input"));
        let err =
            normalize_input(&json!([{"role": "wizard", "content": "x"}]), "input").unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input[0].role"));
        let err = normalize_input(&json!([{"role": "user"}]), "input").unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input[0].content"));
    }
}
