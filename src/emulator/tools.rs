//! Function calling: validating `tools`, `tool_choice` and `parallel_tool_calls`,
//! deciding which calls the fake model makes, and checking that a request answers
//! every call its context left open.
//!
//! The rules (also listed in the emulator's module docs):
//!
//! - `tool_choice: "none"` never calls; `{"type":"function","name":N}` always calls
//!   `N`; `"required"` calls the function tools the latest user message names, or
//!   the first function tool when it names none; `"auto"` (the default) calls the
//!   named ones, and nothing when none is named or when the request's last input
//!   item is a `function_call_output` (the model answers the tool result instead).
//! - A message *names* a tool when the tool's name appears in it as a whole word
//!   (not inside a longer `[A-Za-z0-9_-]` run). Named tools are called in the order
//!   of `tools`; `parallel_tool_calls: false` keeps only the first.
//! - Arguments are [`schema::instance`] of the tool's `parameters`, with hints from
//!   the latest user message, so they validate against the schema.
//! - Built-in tool types are accepted and never called.

use serde_json::{Map, Value, json};

use super::failure::Failure;
use super::ids;
use super::schema::{self, Hints};

/// The function tools and choice settings of one request.
#[derive(Debug, Default)]
pub(crate) struct Tools {
    functions: Vec<Function>,
    choice: Choice,
    parallel: bool,
}

#[derive(Debug)]
struct Function {
    name: String,
    parameters: Value,
}

#[derive(Debug, Default, PartialEq)]
enum Choice {
    None,
    #[default]
    Auto,
    Required,
    Forced(String),
}

/// Tool types the real API knows besides `function`: accepted, never called.
const BUILT_IN: [&str; 12] = [
    "file_search",
    "computer_use_preview",
    "computer",
    "web_search",
    "web_search_preview",
    "mcp",
    "code_interpreter",
    "image_generation",
    "local_shell",
    "custom",
    "shell",
    "apply_patch",
];

impl Tools {
    /// Validates the request's `tools`, `tool_choice` and `parallel_tool_calls`,
    /// with the real API's error params (`tools[0].name`, `tools[1].parameters`, …).
    pub(crate) fn parse(raw: &Map<String, Value>) -> Result<Self, Failure> {
        let list = match raw.get("tools") {
            None | Some(Value::Null) => &Vec::new(),
            Some(Value::Array(list)) => list,
            Some(other) => return Err(Failure::wrong_type("tools", "an array", other)),
        };
        let mut functions = Vec::new();
        for (i, tool) in list.iter().enumerate() {
            if let Some(function) = parse_tool(tool, &format!("tools[{i}]"))? {
                functions.push(function);
            }
        }
        let choice = parse_choice(raw.get("tool_choice"), &functions, !list.is_empty())?;
        let parallel = match raw.get("parallel_tool_calls") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(Failure::wrong_type(
                    "parallel_tool_calls",
                    "a boolean",
                    other,
                ));
            }
        };
        Ok(Self {
            functions,
            choice,
            parallel,
        })
    }

    /// The `function_call` output items the fake model makes (none: it writes a
    /// message). `latest_user` is the newest user text of the context, `input` the
    /// request's own input items.
    pub(crate) fn calls(&self, latest_user: Option<&str>, input: &[Value]) -> Vec<Value> {
        let text = latest_user.unwrap_or("");
        let named: Vec<&Function> = self
            .functions
            .iter()
            .filter(|f| names(text, &f.name))
            .collect();
        let after_output = input
            .last()
            .and_then(|item| item.get("type"))
            .and_then(Value::as_str)
            == Some("function_call_output");
        let mut chosen: Vec<&Function> = match &self.choice {
            Choice::None => Vec::new(),
            Choice::Forced(name) => self.functions.iter().filter(|f| &f.name == name).collect(),
            Choice::Required if named.is_empty() => self.functions.iter().take(1).collect(),
            Choice::Required => named,
            Choice::Auto if after_output => Vec::new(),
            Choice::Auto => named,
        };
        if !self.parallel {
            chosen.truncate(1);
        }
        let hints = Hints::from_text(text);
        chosen
            .into_iter()
            .map(|f| {
                let arguments = schema::instance(&f.parameters, &hints).to_string();
                call_item(&ids::function_call(), &ids::call(), &f.name, &arguments)
            })
            .collect()
    }
}

/// Chat Completions tools (`{"type":"function","function":{...}}`), `tool_choice`
/// (`{"type":"function","function":{"name":…}}` when forced) and
/// `parallel_tool_calls`, validated with the chat params (`tools[0].function.name`).
pub(crate) fn parse_chat(raw: &Map<String, Value>) -> Result<Tools, Failure> {
    let mut flat = Map::new();
    if let Some(Value::Array(list)) = raw.get("tools") {
        let tools: Vec<Value> = list
            .iter()
            .map(|tool| match tool.get("function") {
                Some(Value::Object(function)) => {
                    let mut merged = function.clone();
                    merged.insert("type".to_owned(), tool["type"].clone());
                    Value::Object(merged)
                }
                _ => tool.clone(),
            })
            .collect();
        flat.insert("tools".to_owned(), Value::Array(tools));
    } else if let Some(other) = raw.get("tools") {
        flat.insert("tools".to_owned(), other.clone());
    }
    if let Some(choice) = raw.get("tool_choice") {
        let choice = match choice.get("function").and_then(|f| f.get("name")) {
            Some(name) => json!({"type": "function", "name": name}),
            None => choice.clone(),
        };
        flat.insert("tool_choice".to_owned(), choice);
    }
    if let Some(parallel) = raw.get("parallel_tool_calls") {
        flat.insert("parallel_tool_calls".to_owned(), parallel.clone());
    }
    Tools::parse(&flat).map_err(|mut failure| {
        // `tools[0].name` is `tools[0].function.name` in a chat request.
        if let Some(param) = &failure.param
            && let Some((index, field)) = param.split_once("].")
            && param.starts_with("tools[")
            && field != "type"
        {
            failure.param = Some(format!("{index}].function.{field}"));
        }
        failure
    })
}

/// A completed `function_call` output item.
pub(crate) fn call_item(id: &str, call_id: &str, name: &str, arguments: &str) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": "completed",
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    })
}

/// Checks that `input` answers every call left open by the context before it
/// (`pending`, oldest first) and every call it replays itself, and that each
/// `function_call_output` answers a call. The real API's wording, `param: "input"`.
pub(crate) fn check_answers(pending: &[String], input: &[Value]) -> Result<(), Failure> {
    let mut open: Vec<&str> = pending.iter().map(String::as_str).collect();
    for (i, item) in input.iter().enumerate() {
        match item.get("type").and_then(Value::as_str) {
            Some("function_call") => {
                open.push(call_id_of(item, i)?);
            }
            Some("function_call_output") => {
                let call_id = call_id_of(item, i)?;
                if item.get("output").is_none_or(Value::is_null) {
                    return Err(Failure::missing(&format!("input[{i}].output")));
                }
                match open.iter().position(|c| *c == call_id) {
                    Some(at) => {
                        open.remove(at);
                    }
                    None => {
                        return Err(Failure::bad_request(
                            format!(
                                "No tool call found for function call output with call_id {call_id}."
                            ),
                            Some("input"),
                            None,
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    match open.first() {
        Some(call_id) => Err(Failure::bad_request(
            format!("No tool output found for function call {call_id}."),
            Some("input"),
            None,
        )),
        None => Ok(()),
    }
}

fn call_id_of(item: &Value, i: usize) -> Result<&str, Failure> {
    match item.get("call_id") {
        Some(Value::String(id)) => Ok(id),
        None | Some(Value::Null) => Err(Failure::missing(&format!("input[{i}].call_id"))),
        Some(other) => Err(Failure::wrong_type(
            &format!("input[{i}].call_id"),
            "a string",
            other,
        )),
    }
}

/// One entry of `tools`: `Some` for a function tool, `None` for a built-in one.
fn parse_tool(tool: &Value, param: &str) -> Result<Option<Function>, Failure> {
    let Value::Object(obj) = tool else {
        return Err(Failure::wrong_type(param, "an object", tool));
    };
    let kind = match obj.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        None | Some(Value::Null) => return Err(Failure::missing(&format!("{param}.type"))),
        Some(other) => {
            return Err(Failure::wrong_type(
                &format!("{param}.type"),
                "a string",
                other,
            ));
        }
    };
    if kind != "function" {
        if BUILT_IN.contains(&kind) {
            return Ok(None);
        }
        let supported: Vec<String> = std::iter::once("function")
            .chain(BUILT_IN)
            .map(|k| format!("'{k}'"))
            .collect();
        return Err(Failure::invalid_value(
            &format!("{param}.type"),
            format!(
                "Invalid value: '{kind}'. Supported values are: {}.",
                supported.join(", ")
            ),
            "invalid_value",
        ));
    }
    let name = match obj.get("name") {
        Some(Value::String(name)) => name.clone(),
        None | Some(Value::Null) => return Err(Failure::missing(&format!("{param}.name"))),
        Some(other) => {
            return Err(Failure::wrong_type(
                &format!("{param}.name"),
                "a string",
                other,
            ));
        }
    };
    if name.is_empty()
        || name.chars().count() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Failure::invalid_value(
            &format!("{param}.name"),
            format!(
                "Invalid '{param}.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]{{1,64}}$'."
            ),
            "invalid_value",
        ));
    }
    if let Some(strict) = obj.get("strict")
        && !strict.is_null()
        && !strict.is_boolean()
    {
        return Err(Failure::wrong_type(
            &format!("{param}.strict"),
            "a boolean",
            strict,
        ));
    }
    let parameters = match obj.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(schema @ Value::Object(fields)) => {
            match fields.get("type") {
                Some(Value::String(t)) if t == "object" => {}
                got => {
                    let got = match got {
                        Some(Value::String(t)) => format!("\"{t}\""),
                        Some(other) => other.to_string(),
                        None => "None".to_owned(),
                    };
                    return Err(Failure::invalid_value(
                        &format!("{param}.parameters"),
                        format!(
                            "Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"', got 'type: {got}'."
                        ),
                        "invalid_function_parameters",
                    ));
                }
            }
            schema.clone()
        }
        Some(other) => {
            return Err(Failure::wrong_type(
                &format!("{param}.parameters"),
                "an object",
                other,
            ));
        }
    };
    Ok(Some(Function { name, parameters }))
}

fn parse_choice(
    choice: Option<&Value>,
    functions: &[Function],
    has_tools: bool,
) -> Result<Choice, Failure> {
    let choice = match choice {
        None | Some(Value::Null) => return Ok(Choice::Auto),
        Some(Value::String(mode)) => match mode.as_str() {
            "none" => Choice::None,
            "auto" => Choice::Auto,
            "required" => Choice::Required,
            other => {
                return Err(Failure::invalid_value(
                    "tool_choice",
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'none', 'auto', and 'required'."
                    ),
                    "invalid_value",
                ));
            }
        },
        Some(Value::Object(obj)) => match obj.get("type").and_then(Value::as_str) {
            Some("function") => match obj.get("name") {
                Some(Value::String(name)) => {
                    if !functions.iter().any(|f| &f.name == name) {
                        return Err(Failure::bad_request(
                            format!(
                                "Tool choice 'function' not found in 'tools' parameter: no function named '{name}'."
                            ),
                            Some("tool_choice"),
                            None,
                        ));
                    }
                    Choice::Forced(name.clone())
                }
                None | Some(Value::Null) => return Err(Failure::missing("tool_choice.name")),
                Some(other) => {
                    return Err(Failure::wrong_type("tool_choice.name", "a string", other));
                }
            },
            Some(_) => Choice::Auto,
            None => return Err(Failure::missing("tool_choice.type")),
        },
        Some(other) => {
            return Err(Failure::wrong_type(
                "tool_choice",
                "a string or an object",
                other,
            ));
        }
    };
    if choice == Choice::Required && !has_tools {
        return Err(Failure::bad_request(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            Some("tool_choice"),
            None,
        ));
    }
    Ok(choice)
}

/// Whether `text` contains `name` as a whole word.
fn names(text: &str, name: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools(body: Value) -> Result<Tools, Failure> {
        match body {
            Value::Object(map) => Tools::parse(&map),
            _ => unreachable!(),
        }
    }

    fn weather() -> Value {
        json!({"type": "function", "name": "get_weather", "strict": true,
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                              "required": ["city"], "additionalProperties": false}})
    }

    fn time() -> Value {
        json!({"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}})
    }

    #[test]
    fn auto_calls_the_named_tools_with_schema_valid_arguments() {
        let t = tools(json!({"tools": [weather(), time()]})).unwrap();
        let calls = t.calls(Some("get_time and get_weather city=Paris"), &[]);
        let names: Vec<&str> = calls.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["get_weather", "get_time"]);
        assert_eq!(calls[0]["arguments"], r#"{"city":"Paris"}"#);
        assert!(calls[0]["call_id"].as_str().unwrap().starts_with("call_"));
        assert!(calls[0]["id"].as_str().unwrap().starts_with("fc_"));
        assert!(t.calls(Some("what is the weather?"), &[]).is_empty());
        assert!(t.calls(Some("my_get_weather_x"), &[]).is_empty());
        let answered = [json!({"type": "function_call_output", "call_id": "c", "output": "1"})];
        assert!(t.calls(Some("get_weather"), &answered).is_empty());
    }

    #[test]
    fn choice_none_required_forced_and_parallel() {
        let none = tools(json!({"tools": [weather()], "tool_choice": "none"})).unwrap();
        assert!(none.calls(Some("get_weather"), &[]).is_empty());
        let required =
            tools(json!({"tools": [weather(), time()], "tool_choice": "required"})).unwrap();
        assert_eq!(required.calls(Some("hi"), &[])[0]["name"], "get_weather");
        assert_eq!(
            required.calls(Some("hi"), &[])[0]["arguments"],
            r#"{"city":"example"}"#
        );
        let forced = tools(json!({"tools": [weather(), time()],
            "tool_choice": {"type": "function", "name": "get_time"}}))
        .unwrap();
        let calls = forced.calls(Some("get_weather"), &[]);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0]["arguments"], "{}");
        let serial =
            tools(json!({"tools": [weather(), time()], "parallel_tool_calls": false})).unwrap();
        assert_eq!(serial.calls(Some("get_time get_weather"), &[]).len(), 1);
    }

    #[test]
    fn malformed_tools_name_the_param() {
        let param = |body: Value| tools(body).unwrap_err().param.unwrap();
        assert_eq!(
            param(json!({"tools": [{"type": "function"}]})),
            "tools[0].name"
        );
        assert_eq!(
            param(json!({"tools": [weather(), {"name": "x"}]})),
            "tools[1].type"
        );
        assert_eq!(
            param(json!({"tools": [{"type": "telepathy"}]})),
            "tools[0].type"
        );
        assert_eq!(
            param(json!({"tools": [{"type": "function", "name": "a b"}]})),
            "tools[0].name"
        );
        let err = tools(json!({"tools": [{"type": "function", "name": "f",
            "parameters": {"type": "string"}}]}))
        .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("tools[0].parameters"));
        assert_eq!(err.code, Some("invalid_function_parameters"));
        assert!(
            err.message.contains("'type: \"string\"'"),
            "{}",
            err.message
        );
        assert_eq!(param(json!({"tools": "x"})), "tools");
        assert_eq!(
            param(json!({"tools": [weather()], "tool_choice": "sometimes"})),
            "tool_choice"
        );
        assert_eq!(
            param(json!({"tools": [weather()],
            "tool_choice": {"type": "function", "name": "nope"}})),
            "tool_choice"
        );
        assert_eq!(param(json!({"tool_choice": "required"})), "tool_choice");
        assert!(
            tools(json!({"tools": [{"type": "web_search"}]}))
                .unwrap()
                .functions
                .is_empty()
        );
    }

    #[test]
    fn answers_must_match_open_calls() {
        let output =
            |id: &str| json!({"type": "function_call_output", "call_id": id, "output": "x"});
        let call = |id: &str| json!({"type": "function_call", "call_id": id, "name": "f", "arguments": "{}"});
        let pending = vec!["call_a".to_owned(), "call_b".to_owned()];
        assert!(check_answers(&pending, &[output("call_b"), output("call_a")]).is_ok());
        let err = check_answers(&pending, &[output("call_a")]).unwrap_err();
        assert_eq!(
            err.message,
            "No tool output found for function call call_b."
        );
        assert_eq!(err.param.as_deref(), Some("input"));
        let err = check_answers(&[], &[output("call_z")]).unwrap_err();
        assert_eq!(
            err.message,
            "No tool call found for function call output with call_id call_z."
        );
        assert!(check_answers(&[], &[call("c1"), output("c1")]).is_ok());
        assert!(check_answers(&[], &[call("c1")]).is_err());
        let err = check_answers(
            &[],
            &[json!({"type": "function_call_output", "output": "x"})],
        )
        .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input[0].call_id"));
    }
}
