//! Reasoning models: which models reason, the `reasoning` item they put first, its
//! `encrypted_content`, and checking reasoning items replayed in `input`.
//!
//! The rules (also listed in the emulator's module docs):
//!
//! - Reasoning models are the o-series (`o1`, `o3`, `o4-mini`, … : `o` and a digit)
//!   and the gpt-5 family (`gpt-5`, `gpt-5.1`, `gpt-5-mini`, …). Other models reject
//!   `reasoning.effort` like the real API (`unsupported_parameter`).
//! - `reasoning.effort` (default `medium`) sets the reasoning tokens:
//!   `none` 0 (and no reasoning item), `minimal` 8, `low` 32, `medium` 64, `high` 128,
//!   `xhigh` 256, `max` 512. They count in `output_tokens` and in
//!   `output_tokens_details.reasoning_tokens`.
//! - The item (`rs_…`) has one `summary_text` part when `reasoning.summary` is set
//!   (`auto`, `concise`, `detailed`), else an empty `summary`.
//! - With `include: ["reasoning.encrypted_content"]` it carries `encrypted_content`:
//!   `gAAAAA` followed by hex of the model, the item id and a keyed 64-bit check
//!   over both. It is tamper-evident, not secret. Replayed reasoning items that
//!   carry `encrypted_content` must pass the check for the request's model, or the
//!   request fails with `invalid_encrypted_content` as on the real API.

use serde_json::{Map, Value, json};

use super::failure::Failure;
use super::fault::mix64;
use super::ids;

/// The reasoning settings of a request to a reasoning model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reasoning {
    /// The reasoning tokens the effort costs.
    pub(crate) tokens: u64,
    /// Whether the item gets a summary part.
    summary: bool,
    /// Whether the item carries `encrypted_content`.
    encrypted: bool,
}

/// Values `reasoning.effort` accepts, with their token cost.
const EFFORTS: [(&str, u64); 7] = [
    ("none", 0),
    ("minimal", 8),
    ("low", 32),
    ("medium", 64),
    ("high", 128),
    ("xhigh", 256),
    ("max", 512),
];

/// Values `include` accepts.
const INCLUDABLE: [&str; 8] = [
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
    "message.input_image.image_url",
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "code_interpreter_call.outputs",
    "computer_call_output.output.image_url",
];

/// The prefix of the emulator's `encrypted_content` (the real one is a Fernet
/// token, which starts the same way).
const SEALED_PREFIX: &str = "gAAAAA";
/// The key of the check; a fixed value, so content survives an emulator restart.
const SEAL_KEY: u64 = 0x5eed_a11e_7e11_c0de;

/// Whether `model` is a reasoning model (o-series or gpt-5 family).
pub(crate) fn is_reasoning_model(model: &str) -> bool {
    crate::settings::is_reasoning_model(model)
}

/// Validates `reasoning` and `include`; `None` when the model does not reason (or
/// the effort is `none`).
pub(crate) fn parse(raw: &Map<String, Value>, model: &str) -> Result<Option<Reasoning>, Failure> {
    let encrypted = includes_encrypted(raw)?;
    let settings = match raw.get("reasoning") {
        None | Some(Value::Null) => &Map::new(),
        Some(Value::Object(obj)) => obj,
        Some(other) => return Err(Failure::wrong_type("reasoning", "an object", other)),
    };
    let effort = match settings.get("effort") {
        None | Some(Value::Null) => None,
        Some(Value::String(effort)) => Some(effort.as_str()),
        Some(other) => return Err(Failure::wrong_type("reasoning.effort", "a string", other)),
    };
    let tokens = match effort {
        None => 64,
        Some(effort) => match EFFORTS.iter().find(|(name, _)| *name == effort) {
            Some((_, tokens)) => *tokens,
            None => {
                return Err(Failure::invalid_value(
                    "reasoning.effort",
                    format!(
                        "Invalid value: '{effort}'. Supported values are: {}.",
                        quoted_list(EFFORTS.iter().map(|(name, _)| *name))
                    ),
                    "invalid_value",
                ));
            }
        },
    };
    let summary = match settings.get("summary") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if matches!(s.as_str(), "auto" | "concise" | "detailed") => true,
        Some(Value::String(s)) => {
            return Err(Failure::invalid_value(
                "reasoning.summary",
                format!(
                    "Invalid value: '{s}'. Supported values are: 'auto', 'concise', and 'detailed'."
                ),
                "invalid_value",
            ));
        }
        Some(other) => return Err(Failure::wrong_type("reasoning.summary", "a string", other)),
    };
    if !is_reasoning_model(model) {
        // The real API refuses the include for models that do not reason, so a
        // client that asks for it unconditionally fails here as it would there.
        if encrypted {
            return Err(Failure::bad_request(
                "Encrypted content is not supported with this model.",
                Some("include"),
                Some("unsupported_parameter"),
            ));
        }
        if effort.is_some() {
            return Err(Failure::bad_request(
                "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
                Some("reasoning.effort"),
                Some("unsupported_parameter"),
            ));
        }
        return Ok(None);
    }
    if tokens == 0 {
        return Ok(None);
    }
    Ok(Some(Reasoning {
        tokens,
        summary,
        encrypted,
    }))
}

impl Reasoning {
    /// The completed reasoning item for a reply to `latest_user` by `model`.
    pub(crate) fn item(&self, model: &str, latest_user: Option<&str>) -> Value {
        let id = ids::reasoning();
        let mut item = json!({"id": id, "type": "reasoning", "summary": []});
        if self.summary {
            let quote = crate::text::truncate(latest_user.unwrap_or(""), 80);
            item["summary"] = json!([{
                "type": "summary_text",
                "text": format!("**Reading the request**\n\nThe user wrote \"{quote}\"; I will answer it directly."),
            }]);
        }
        if self.encrypted {
            item["encrypted_content"] = json!(seal(model, &id));
        }
        item
    }
}

/// Checks every `reasoning` item of `input`: one that carries `encrypted_content`
/// must be the emulator's own, made for `model`; one without it refers to a stored
/// item, which `is_stored` must know (404 otherwise, as on the real API).
pub(crate) fn check_replayed(
    input: &[Value],
    model: &str,
    is_stored: impl Fn(&str) -> bool,
) -> Result<(), Failure> {
    for item in input {
        if item.get("type").and_then(Value::as_str) != Some("reasoning") {
            continue;
        }
        let id = item.get("id").and_then(Value::as_str);
        let Some(sealed) = item.get("encrypted_content").filter(|v| !v.is_null()) else {
            match id {
                Some(id) if !is_stored(id) => {
                    return Err(Failure::not_found(
                        format!(
                            "Item with id '{id}' not found. Items are not persisted when `store` is set to false. Try again with `store` set to true, or remove this item from your input."
                        ),
                        Some("input"),
                    ));
                }
                _ => continue,
            }
        };
        let valid = sealed
            .as_str()
            .and_then(unseal)
            .is_some_and(|(sealed_model, sealed_id)| {
                sealed_model == model && id.is_none_or(|id| id == sealed_id)
            });
        if !valid {
            let what = match id {
                Some(id) => format!("for item {id} "),
                None => String::new(),
            };
            return Err(Failure::bad_request(
                format!(
                    "The encrypted content {what}could not be verified. Reason: Encrypted content could not be decrypted or parsed."
                ),
                None,
                Some("invalid_encrypted_content"),
            ));
        }
    }
    Ok(())
}

/// Whether `include` asks for `reasoning.encrypted_content` (validating it).
fn includes_encrypted(raw: &Map<String, Value>) -> Result<bool, Failure> {
    let list = match raw.get("include") {
        None | Some(Value::Null) => return Ok(false),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(Failure::wrong_type("include", "an array", other)),
    };
    for (i, entry) in list.iter().enumerate() {
        match entry.as_str() {
            Some(value) if INCLUDABLE.contains(&value) => {}
            Some(value) => {
                return Err(Failure::invalid_value(
                    &format!("include[{i}]"),
                    format!(
                        "Invalid value: '{value}'. Supported values are: {}.",
                        quoted_list(INCLUDABLE.iter().copied())
                    ),
                    "invalid_value",
                ));
            }
            None => {
                return Err(Failure::wrong_type(
                    &format!("include[{i}]"),
                    "a string",
                    entry,
                ));
            }
        }
    }
    Ok(list
        .iter()
        .any(|v| v.as_str() == Some("reasoning.encrypted_content")))
}

/// `'a', 'b', and 'c'`, as the real API lists supported values.
fn quoted_list<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = values.map(|v| format!("'{v}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{}, and {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// The emulator's `encrypted_content` for item `id` made by `model`.
fn seal(model: &str, id: &str) -> String {
    let payload = format!("{model}\n{id}");
    format!(
        "{SEALED_PREFIX}{}{:016x}",
        hex(payload.as_bytes()),
        check(payload.as_bytes())
    )
}

/// The model and item id sealed in `content`, if the check holds.
fn unseal(content: &str) -> Option<(String, String)> {
    let body = content.strip_prefix(SEALED_PREFIX)?;
    let split = body.len().checked_sub(16)?;
    let (payload_hex, check_hex) = (body.get(..split)?, body.get(split..)?);
    let payload = unhex(payload_hex)?;
    if u64::from_str_radix(check_hex, 16).ok()? != check(&payload) {
        return None;
    }
    let payload = String::from_utf8(payload).ok()?;
    let (model, id) = payload.split_once('\n')?;
    Some((model.to_owned(), id.to_owned()))
}

fn check(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(mix64(SEAL_KEY), |h, b| mix64(h ^ u64::from(*b)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_body(body: Value, model: &str) -> Result<Option<Reasoning>, Failure> {
        match body {
            Value::Object(map) => parse(&map, model),
            _ => unreachable!(),
        }
    }

    #[test]
    fn reasoning_models_by_name() {
        for model in ["o1", "o3", "o4-mini", "gpt-5", "gpt-5.1", "gpt-5-mini"] {
            assert!(is_reasoning_model(model), "{model}");
        }
        for model in ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "omni", "o"] {
            assert!(!is_reasoning_model(model), "{model}");
        }
    }

    #[test]
    fn settings_are_validated_and_priced() {
        let r = parse_body(json!({}), "o3").unwrap().unwrap();
        assert_eq!(r.tokens, 64);
        assert!(!r.summary && !r.encrypted);
        let r = parse_body(
            json!({"reasoning": {"effort": "high", "summary": "auto"},
                   "include": ["reasoning.encrypted_content"]}),
            "gpt-5",
        )
        .unwrap()
        .unwrap();
        assert_eq!((r.tokens, r.summary, r.encrypted), (128, true, true));
        assert_eq!(
            parse_body(json!({"reasoning": {"effort": "none"}}), "gpt-5.1").unwrap(),
            None
        );
        assert_eq!(parse_body(json!({}), "gpt-4o").unwrap(), None);
        let param = |body: Value, model: &str| parse_body(body, model).unwrap_err().param.unwrap();
        assert_eq!(
            param(json!({"reasoning": {"effort": "huge"}}), "o3"),
            "reasoning.effort"
        );
        assert_eq!(
            param(json!({"reasoning": {"effort": "low"}}), "gpt-4o"),
            "reasoning.effort"
        );
        assert_eq!(
            param(json!({"reasoning": {"summary": "long"}}), "o3"),
            "reasoning.summary"
        );
        assert_eq!(
            param(json!({"include": ["everything"]}), "o3"),
            "include[0]"
        );
    }

    #[test]
    fn sealed_content_round_trips_and_rejects_tampering_and_other_models() {
        let r = parse_body(json!({"include": ["reasoning.encrypted_content"]}), "o3")
            .unwrap()
            .unwrap();
        let item = r.item("o3", Some("hi"));
        assert!(item["id"].as_str().unwrap().starts_with("rs_"));
        assert_eq!(item["summary"], json!([]));
        let sealed = item["encrypted_content"].as_str().unwrap();
        assert!(sealed.starts_with("gAAAAA"));
        let stored = |_: &str| false;
        assert!(check_replayed(std::slice::from_ref(&item), "o3", stored).is_ok());
        let err = check_replayed(std::slice::from_ref(&item), "o4-mini", stored).unwrap_err();
        assert_eq!(err.code, Some("invalid_encrypted_content"));
        assert!(err.message.contains(item["id"].as_str().unwrap()));
        let mut garbled = item.clone();
        let mut text = sealed.to_owned();
        text.replace_range(10..11, if &text[10..11] == "0" { "1" } else { "0" });
        garbled["encrypted_content"] = json!(text);
        assert!(check_replayed(&[garbled], "o3", stored).is_err());
        let foreign = json!({"type": "reasoning", "id": "rs_x", "summary": [], "encrypted_content": "gAAAAABoXyz=="});
        assert!(check_replayed(&[foreign], "o3", stored).is_err());
        let mut moved = item.clone();
        moved["id"] = json!("rs_other");
        assert!(check_replayed(&[moved], "o3", stored).is_err());
        // Without encrypted content, the item must be stored on the server.
        let by_id = json!({"type": "reasoning", "id": "rs_1", "summary": []});
        let err = check_replayed(std::slice::from_ref(&by_id), "o3", stored).unwrap_err();
        assert_eq!(err.status.as_u16(), 404);
        assert!(err.message.starts_with("Item with id 'rs_1' not found."));
        assert!(check_replayed(&[by_id], "o3", |id| id == "rs_1").is_ok());
    }
}
