//! Parsing and validating request bodies, with the real API's error params.

use serde_json::{Map, Value};

use super::failure::Failure;
use super::items;
use super::state::OwnedStart;

/// A validated `POST /responses` body.
#[derive(Debug)]
pub(crate) struct CreateRequest {
    /// The whole body, for echoing optional settings back.
    pub(crate) raw: Map<String, Value>,
    pub(crate) model: String,
    pub(crate) input: Vec<Value>,
    pub(crate) instructions: Option<String>,
    pub(crate) start: OwnedStart,
    pub(crate) store: bool,
    pub(crate) stream: bool,
    /// `background: true`: answered at once with `queued`, run by the emulator.
    pub(crate) background: bool,
    pub(crate) metadata: Map<String, Value>,
    pub(crate) max_output_tokens: Option<u64>,
}

/// Parses a body as a JSON object.
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, Failure> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Failure::wrong_type("body", "an object", &other)),
        Err(_) => Err(Failure::malformed_json()),
    }
}

impl CreateRequest {
    pub(crate) fn parse(body: &[u8]) -> Result<Self, Failure> {
        let raw = json_object(body)?;
        let model = required_string(&raw, "model")?;
        let input = match raw.get("input") {
            None | Some(Value::Null) => return Err(Failure::missing("input")),
            Some(v) => items::normalize_input(v, "input")?,
        };
        let instructions = optional_string(&raw, "instructions")?;
        let previous = optional_string(&raw, "previous_response_id")?;
        let conversation = match raw.get("conversation") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(Value::Object(obj)) => match obj.get("id") {
                Some(Value::String(id)) => Some(id.clone()),
                Some(other) => {
                    return Err(Failure::wrong_type("conversation.id", "a string", other));
                }
                None => return Err(Failure::missing("conversation.id")),
            },
            Some(other) => {
                return Err(Failure::wrong_type(
                    "conversation",
                    "a string or an object",
                    other,
                ));
            }
        };
        let start = match (previous, conversation) {
            (Some(_), Some(_)) => {
                return Err(Failure::bad_request(
                    "Mutually exclusive parameters: Ensure you are only providing one of: 'previous_response_id' or 'conversation'.",
                    Some("conversation"),
                    Some("mutually_exclusive_parameters"),
                ));
            }
            (Some(p), None) => OwnedStart::Previous(p),
            (None, Some(c)) => OwnedStart::Conversation(c),
            (None, None) => OwnedStart::Root,
        };
        let store = optional_bool(&raw, "store")?.unwrap_or(true);
        let stream = optional_bool(&raw, "stream")?.unwrap_or(false);
        let background = optional_bool(&raw, "background")?.unwrap_or(false);
        if background && !store {
            // Background responses are polled, so they must be kept. The wording
            // is a compatible server's (vLLM); OpenAI's own is unverified.
            return Err(Failure::bad_request(
                "background can only be used when `store` is true",
                Some("background"),
                None,
            ));
        }
        let metadata = metadata(&raw)?;
        let max_output_tokens = match raw.get("max_output_tokens") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(n) if n >= 16 => Some(n as u64),
                Some(n) => return Err(Failure::out_of_range("max_output_tokens", n, 16, None)),
                None => return Err(Failure::wrong_type("max_output_tokens", "an integer", v)),
            },
        };
        number_in(&raw, "temperature", 0.0, 2.0)?;
        number_in(&raw, "top_p", 0.0, 1.0)?;
        Ok(Self {
            raw,
            model,
            input,
            instructions,
            start,
            store,
            stream,
            background,
            metadata,
            max_output_tokens,
        })
    }
}

/// A required string field.
pub(crate) fn required_string(raw: &Map<String, Value>, key: &str) -> Result<String, Failure> {
    match raw.get(key) {
        None | Some(Value::Null) => Err(Failure::missing(key)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(Failure::wrong_type(key, "a string", other)),
    }
}

/// An optional string field (`null` counts as absent).
pub(crate) fn optional_string(
    raw: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, Failure> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Failure::wrong_type(key, "a string", other)),
    }
}

/// An optional boolean field.
pub(crate) fn optional_bool(raw: &Map<String, Value>, key: &str) -> Result<Option<bool>, Failure> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(Failure::wrong_type(key, "a boolean", other)),
    }
}

/// Checks an optional number field against its range.
fn number_in(raw: &Map<String, Value>, key: &str, min: f64, max: f64) -> Result<(), Failure> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Number(n)) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if x < min {
                Err(Failure::invalid_value(
                    key,
                    format!(
                        "Invalid '{key}': decimal below minimum value. Expected a value >= {min}, but got {x} instead."
                    ),
                    "decimal_below_min_value",
                ))
            } else if x > max {
                Err(Failure::invalid_value(
                    key,
                    format!(
                        "Invalid '{key}': decimal above maximum value. Expected a value <= {max}, but got {x} instead."
                    ),
                    "decimal_above_max_value",
                ))
            } else {
                Ok(())
            }
        }
        Some(other) => Err(Failure::wrong_type(key, "a decimal", other)),
    }
}

/// `metadata`: at most 16 pairs, keys up to 64 characters, string values up to 512.
pub(crate) fn metadata(raw: &Map<String, Value>) -> Result<Map<String, Value>, Failure> {
    let map = match raw.get("metadata") {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(Failure::wrong_type("metadata", "an object", other)),
    };
    if map.len() > 16 {
        return Err(Failure::invalid_value(
            "metadata",
            format!(
                "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got an object with {} properties instead.",
                map.len()
            ),
            "object_above_max_properties",
        ));
    }
    for (key, value) in map {
        let key_len = key.chars().count();
        if key_len > 64 {
            return Err(Failure::invalid_value(
                "metadata",
                format!(
                    "Invalid 'metadata': key too long. Expected a key with maximum length 64, but got a key with length {key_len} instead."
                ),
                "invalid_metadata",
            ));
        }
        let Value::String(text) = value else {
            return Err(Failure::wrong_type(
                &format!("metadata.{key}"),
                "a string",
                value,
            ));
        };
        let len = text.chars().count();
        if len > 512 {
            return Err(Failure::invalid_value(
                &format!("metadata.{key}"),
                format!(
                    "Invalid 'metadata.{key}': string too long. Expected a string with maximum length 512, but got a string with length {len} instead."
                ),
                "string_above_max_length",
            ));
        }
    }
    Ok(map.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<CreateRequest, Failure> {
        CreateRequest::parse(body.as_bytes())
    }

    fn param_of(body: &str) -> Option<String> {
        parse(body).unwrap_err().param
    }

    #[test]
    fn accepts_a_minimal_request_and_unknown_fields() {
        let req = parse(r#"{"model":"m","input":"hi","some_new_field":{"x":1}}"#).unwrap();
        assert_eq!(req.model, "m");
        assert!(req.store);
        assert!(!req.stream);
        assert!(matches!(req.start, OwnedStart::Root));
    }

    #[test]
    fn errors_name_the_right_param() {
        assert_eq!(param_of(r#"{"input":"hi"}"#).as_deref(), Some("model"));
        assert_eq!(param_of(r#"{"model":"m"}"#).as_deref(), Some("input"));
        assert_eq!(
            param_of(r#"{"model":7,"input":"hi"}"#).as_deref(),
            Some("model")
        );
        assert_eq!(
            param_of(r#"{"model":"m","input":"hi","store":"yes"}"#).as_deref(),
            Some("store")
        );
        assert_eq!(
            param_of(r#"{"model":"m","input":"hi","temperature":3}"#).as_deref(),
            Some("temperature")
        );
        assert_eq!(
            param_of(r#"{"model":"m","input":"hi","max_output_tokens":3}"#).as_deref(),
            Some("max_output_tokens")
        );
        assert_eq!(
            param_of(r#"{"model":"m","input":"hi","previous_response_id":"resp_1","conversation":"conv_1"}"#).as_deref(),
            Some("conversation")
        );
        assert_eq!(
            param_of(r#"{"model":"m","input":"hi","background":true,"store":false}"#).as_deref(),
            Some("background")
        );
        assert!(
            parse(r#"{"model":"m","input":"hi","background":true}"#)
                .unwrap()
                .background
        );
        assert_eq!(parse("{nope").unwrap_err().param, None);
    }

    #[test]
    fn metadata_limits() {
        let pairs: Vec<String> = (0..17).map(|i| format!("\"k{i}\":\"v\"")).collect();
        let body = format!(
            r#"{{"model":"m","input":"hi","metadata":{{{}}}}}"#,
            pairs.join(",")
        );
        assert_eq!(param_of(&body).as_deref(), Some("metadata"));
        let body = format!(
            r#"{{"model":"m","input":"hi","metadata":{{"{}":"v"}}}}"#,
            "k".repeat(65)
        );
        assert_eq!(param_of(&body).as_deref(), Some("metadata"));
        let body = format!(
            r#"{{"model":"m","input":"hi","metadata":{{"k":"{}"}}}}"#,
            "v".repeat(513)
        );
        assert_eq!(param_of(&body).as_deref(), Some("metadata.k"));
        let pairs: Vec<String> = (0..16).map(|i| format!("\"k{i}\":\"v\"")).collect();
        let body = format!(
            r#"{{"model":"m","input":"hi","metadata":{{{}}}}}"#,
            pairs.join(",")
        );
        assert_eq!(parse(&body).unwrap().metadata.len(), 16);
    }
}
