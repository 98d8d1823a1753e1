//! Deterministic instances of JSON schemas: the arguments of emulated function calls
//! and the text of structured output (`text.format` `json_schema`).
//!
//! The rules (also listed in the emulator's module docs):
//!
//! - an object gets every `required` property, plus each optional one the user
//!   named as `key=value`; keys come out sorted;
//! - `const` wins, then `enum`: the `key=value` hint when it is a member, else the
//!   first member;
//! - a string is the `key=value` hint for its property, else the first
//!   `"double-quoted"` text in the user's message, else the word `example`;
//! - an integer or number is the hint when it parses, else `minimum` (or
//!   `exclusiveMinimum + 1`), else `1`; a boolean is the hint when it is
//!   `true`/`false`, else `true`; `null` is `null`;
//! - an array holds `max(minItems, 1)` instances of `items` (capped at 8);
//! - a list of types takes its first non-`null` type; `anyOf`/`oneOf` take their
//!   first branch, `allOf` merges its branches' properties; local `$ref`s
//!   (`#/$defs/…`, `#/definitions/…`) are followed, 32 deep at most (a recursive
//!   schema then bottoms out in `null`).

use serde_json::{Map, Value, json};

/// The values a user's message suggests: `key=value` pairs and the first quoted text.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Hints {
    pairs: Vec<(String, String)>,
    quoted: Option<String>,
}

impl Hints {
    /// Reads `key=value` pairs (`value` runs to the next space, or is `"quoted"`;
    /// trailing `.,;:!?` is dropped) and the first `"quoted"` text from `text`.
    pub(crate) fn from_text(text: &str) -> Self {
        let mut hints = Self {
            quoted: first_quoted(text),
            ..Self::default()
        };
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] != '=' {
                i += 1;
                continue;
            }
            let mut start = i;
            while start > 0 && is_key_char(chars[start - 1]) {
                start -= 1;
            }
            let key: String = chars[start..i].iter().collect();
            let (value, end) = read_value(&chars, i + 1);
            if !key.is_empty() && !value.is_empty() {
                hints.pairs.push((key, value));
            }
            i = end.max(i + 1);
        }
        hints
    }

    /// The hint for property `key`.
    fn pair(&self, key: Option<&str>) -> Option<&str> {
        let key = key?;
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A deterministic instance of `schema` (see the module docs for the rules).
pub(crate) fn instance(schema: &Value, hints: &Hints) -> Value {
    Generator {
        root: schema,
        hints,
    }
    .value(schema, None, 0)
}

/// The greatest `$ref` depth followed before giving up with `null`.
const MAX_DEPTH: usize = 32;
/// The most array items generated whatever `minItems` asks.
const MAX_ITEMS: u64 = 8;

struct Generator<'a> {
    root: &'a Value,
    hints: &'a Hints,
}

impl Generator<'_> {
    fn value(&self, schema: &Value, key: Option<&str>, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        let Value::Object(obj) = schema else {
            // `true` or `{}`-like schemas accept anything: a string is as good as any.
            return self.string(key);
        };
        if let Some(Value::String(reference)) = obj.get("$ref") {
            return match self.resolve(reference) {
                Some(target) => self.value(target, key, depth + 1),
                None => Value::Null,
            };
        }
        if let Some(constant) = obj.get("const") {
            return constant.clone();
        }
        if let Some(Value::Array(members)) = obj.get("enum") {
            let hinted = self.hints.pair(key).and_then(|hint| {
                members.iter().find(|m| {
                    // A string member matches its text, any other member its JSON.
                    m.as_str() == Some(hint)
                        || serde_json::from_str::<Value>(hint).ok().as_ref() == Some(*m)
                })
            });
            if let Some(member) = hinted.or_else(|| members.first()) {
                return member.clone();
            }
        }
        for branches in ["anyOf", "oneOf"] {
            if let Some(Value::Array(list)) = obj.get(branches)
                && let Some(first) = list.first()
            {
                return self.value(first, key, depth + 1);
            }
        }
        if let Some(Value::Array(parts)) = obj.get("allOf") {
            let mut merged = Map::new();
            for part in parts {
                if let Value::Object(fields) = self.value(part, key, depth + 1) {
                    merged.extend(fields);
                }
            }
            return Value::Object(merged);
        }
        match type_of(obj) {
            "object" => self.object(obj, depth),
            "array" => self.array(obj, key, depth),
            "string" => self.string(key),
            "integer" => self.number(obj, key, true),
            "number" => self.number(obj, key, false),
            "boolean" => json!(self.hints.pair(key) != Some("false")),
            "null" => Value::Null,
            _ => self.string(key),
        }
    }

    fn object(&self, obj: &Map<String, Value>, depth: usize) -> Value {
        let mut out = Map::new();
        let required: Vec<&str> = match obj.get("required") {
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if let Some(Value::Object(props)) = obj.get("properties") {
            for (name, prop) in props {
                if required.contains(&name.as_str()) || self.hints.pair(Some(name)).is_some() {
                    out.insert(name.clone(), self.value(prop, Some(name), depth + 1));
                }
            }
        }
        Value::Object(out)
    }

    fn array(&self, obj: &Map<String, Value>, key: Option<&str>, depth: usize) -> Value {
        let n = obj
            .get("minItems")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .clamp(1, MAX_ITEMS);
        let items = obj.get("items").unwrap_or(&Value::Null);
        let one = match items {
            Value::Null => self.string(key),
            schema => self.value(schema, key, depth + 1),
        };
        Value::Array((0..n).map(|_| one.clone()).collect())
    }

    fn string(&self, key: Option<&str>) -> Value {
        let text = self
            .hints
            .pair(key)
            .or(self.hints.quoted.as_deref())
            .unwrap_or("example");
        json!(text)
    }

    fn number(&self, obj: &Map<String, Value>, key: Option<&str>, integer: bool) -> Value {
        if let Some(hint) = self.hints.pair(key) {
            if integer && let Ok(n) = hint.parse::<i64>() {
                return json!(n);
            }
            if !integer
                && let Ok(x) = hint.parse::<f64>()
                && x.is_finite()
            {
                return json!(x);
            }
        }
        let min = obj.get("minimum").and_then(Value::as_f64).or_else(|| {
            obj.get("exclusiveMinimum")
                .and_then(Value::as_f64)
                .map(|x| x + 1.0)
        });
        let x = min.unwrap_or(1.0);
        if integer {
            json!(x.ceil() as i64)
        } else {
            json!(x)
        }
    }

    /// A local reference (`#/…` JSON pointer into the root schema).
    fn resolve(&self, reference: &str) -> Option<&Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }
}

/// The schema's type: its `type` (the first non-`null` of a list), or `object`
/// when it has `properties`, or `""`.
fn type_of(obj: &Map<String, Value>) -> &str {
    match obj.get("type") {
        Some(Value::String(t)) => t,
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .or_else(|| types.first().and_then(Value::as_str))
            .unwrap_or(""),
        _ if obj.contains_key("properties") => "object",
        _ => "",
    }
}

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// The value starting at `start`: a `"quoted"` run, or up to the next whitespace
/// with trailing punctuation dropped. Returns it and the index after it.
fn read_value(chars: &[char], start: usize) -> (String, usize) {
    if chars.get(start) == Some(&'"') {
        let mut end = start + 1;
        while end < chars.len() && chars[end] != '"' {
            end += 1;
        }
        let value = chars[start + 1..end.min(chars.len())].iter().collect();
        return (value, end + 1);
    }
    let mut end = start;
    while end < chars.len() && !chars[end].is_whitespace() {
        end += 1;
    }
    let value: String = chars[start..end].iter().collect();
    let trimmed = value.trim_end_matches(['.', ',', ';', ':', '!', '?']);
    (trimmed.to_owned(), end)
}

/// The first non-empty text between double quotes (straight or curly).
fn first_quoted(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(open) = rest.find(['"', '“']) {
        let after = &rest[open..];
        let quote_len = after.chars().next().map_or(1, char::len_utf8);
        let body = &after[quote_len..];
        let close = body.find(['"', '”'])?;
        let inner = &body[..close];
        // A `key="value"` pair is a hint for its key, not the general quote.
        let is_pair_value = rest[..open].ends_with('=');
        if !inner.is_empty() && !is_pair_value {
            return Some(inner.to_owned());
        }
        let close_len = body[close..].chars().next().map_or(1, char::len_utf8);
        rest = &body[close + close_len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(text: &str) -> Hints {
        Hints::from_text(text)
    }

    #[test]
    fn hints_read_pairs_and_the_first_free_quote() {
        let h = hints(r#"Use get_weather city=Paris, unit="deg C" for "the trip"."#);
        assert_eq!(h.pair(Some("city")), Some("Paris"));
        assert_eq!(h.pair(Some("unit")), Some("deg C"));
        assert_eq!(h.quoted.as_deref(), Some("the trip"));
        assert_eq!(hints("no hints here"), Hints::default());
    }

    #[test]
    fn objects_get_required_and_hinted_properties_with_valid_values() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 2},
                "detail": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                "note": {"type": ["string", "null"]}
            },
            "required": ["city", "unit", "days", "tags"],
            "additionalProperties": false
        });
        let got = instance(&schema, &hints("weather city=Paris unit=fahrenheit"));
        assert_eq!(
            got,
            json!({"city": "Paris", "unit": "fahrenheit", "days": 2, "tags": ["example", "example"]})
        );
        let got = instance(&schema, &hints("unit=kelvin note=hi detail=false"));
        assert_eq!(got["unit"], "celsius", "a hint outside the enum is ignored");
        assert_eq!(got["note"], "hi");
        assert_eq!(got["detail"], false);
    }

    #[test]
    fn refs_any_of_and_const_are_followed() {
        // The shape pydantic emits for nested models and optional fields.
        let schema = json!({
            "$defs": {"Step": {"type": "object", "properties": {
                "n": {"type": "number"}, "kind": {"const": "step"}},
                "required": ["n", "kind"]}},
            "type": "object",
            "properties": {
                "steps": {"type": "array", "items": {"$ref": "#/$defs/Step"}},
                "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]}
            },
            "required": ["steps", "maybe"]
        });
        let got = instance(&schema, &Hints::default());
        assert_eq!(
            got,
            json!({"steps": [{"n": 1.0, "kind": "step"}], "maybe": 1})
        );
        let recursive = json!({"$ref": "#"});
        assert_eq!(instance(&recursive, &Hints::default()), Value::Null);
    }
}
