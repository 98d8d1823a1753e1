//! The create surface of a request beyond its input: tools, tool choice,
//! reasoning, structured output, sampling, caching and routing hints
//! ([`RequestSettings`]).
//!
//! Pure data, like [`node`](crate::node): no IO, no async. The same value is
//! what a caller asks for (through
//! [`RespondOptions::settings`](crate::engine::RespondOptions)), what the engine
//! sends (turned into request fields by [`RequestSettings::to_body`]) and what a
//! node records ([`Node::settings`](crate::Node::settings)), so a branch can
//! re-send its parent's settings: the server never carries tools, text format or
//! reasoning settings over `previous_response_id`.
//!
//! ```
//! use resptree::settings::{FunctionTool, Reasoning, RequestSettings, TextFormat, ToolChoice};
//! use serde_json::json;
//!
//! let settings = RequestSettings::default()
//!     .tool(
//!         FunctionTool::new("get_weather")
//!             .description("Current weather in a city")
//!             .parameters(json!({
//!                 "type": "object",
//!                 "properties": {"city": {"type": "string"}},
//!                 "required": ["city"],
//!                 "additionalProperties": false
//!             }))
//!             .strict(true),
//!     )
//!     .tool_choice(ToolChoice::Auto)
//!     .reasoning(Reasoning::effort("low").with_summary("auto"))
//!     .text_format(TextFormat::json_schema("answer", json!({"type": "object"})));
//! let body = settings.to_body();
//! assert_eq!(body["tools"][0]["name"], "get_weather");
//! assert_eq!(body["reasoning"]["effort"], "low");
//! assert_eq!(body["text"]["format"]["type"], "json_schema");
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// Everything a Responses API create request can carry besides its model,
/// input, context, instructions, `store` and `metadata`.
///
/// Every field is optional: `None` means "not sent" (the server's default). Build
/// it with the methods, in the manner of async-openai's request builders; any
/// field this type does not know yet goes in [`extra`](Self::extra), sent as given.
///
/// Settings are per request on the server. The engine re-sends a parent's
/// settings to its children unless a call overrides them (field by field, see
/// [`RequestSettings::overlay`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RequestSettings {
    /// The tools the model may call (`tools`). `Some(vec![])` sends no tools and
    /// stops a child from inheriting its parent's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// Whether and which tool the model must call (`tool_choice`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools in one response (server default: true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// The most built-in tool calls one response may make.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tool_calls: Option<u32>,
    /// Reasoning effort and summary, for reasoning models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// Extra output to include, e.g. `reasoning.encrypted_content`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// The output format (`text.format`): plain text, JSON object or a JSON schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_format: Option<TextFormat>,
    /// What the server does with input over the context window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncation: Option<Truncation>,
    /// Routes requests sharing a prefix to the same prompt cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<String>,
    /// A stable (hashed) id of the end user, at most 64 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_identifier: Option<String>,
    /// The processing tier: `auto`, `default`, `flex`, `priority`, ….
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Upper bound on output plus reasoning tokens (the API's minimum is 16).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature, 0–2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling, 0–1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Any other body field, sent as given (flattened into the request body; a
    /// key here replaces a typed field of the same name).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// The `include` value that asks for reasoning items' encrypted content, which
/// a stateless replay must send back.
pub const INCLUDE_REASONING_ENCRYPTED: &str = "reasoning.encrypted_content";

impl RequestSettings {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Adds a tool (a [`FunctionTool`], or any [`Tool`]).
    #[must_use]
    pub fn tool(mut self, tool: impl Into<Tool>) -> Self {
        self.tools.get_or_insert_with(Vec::new).push(tool.into());
        self
    }

    /// Sets the whole tool list; an empty list sends none and inherits none.
    #[must_use]
    pub fn tools(mut self, tools: impl IntoIterator<Item = Tool>) -> Self {
        self.tools = Some(tools.into_iter().collect());
        self
    }

    /// Sets `tool_choice`.
    #[must_use]
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }

    /// Sets `parallel_tool_calls`.
    #[must_use]
    pub fn parallel_tool_calls(mut self, on: bool) -> Self {
        self.parallel_tool_calls = Some(on);
        self
    }

    /// Sets `max_tool_calls`.
    #[must_use]
    pub fn max_tool_calls(mut self, limit: u32) -> Self {
        self.max_tool_calls = Some(limit);
        self
    }

    /// Sets the reasoning settings.
    #[must_use]
    pub fn reasoning(mut self, reasoning: Reasoning) -> Self {
        self.reasoning = Some(reasoning);
        self
    }

    /// Adds an `include` value (once).
    #[must_use]
    pub fn include(mut self, what: impl Into<String>) -> Self {
        let what = what.into();
        let list = self.include.get_or_insert_with(Vec::new);
        if !list.contains(&what) {
            list.push(what);
        }
        self
    }

    /// Sets the output format (`text.format`).
    #[must_use]
    pub fn text_format(mut self, format: TextFormat) -> Self {
        self.text_format = Some(format);
        self
    }

    /// Sets `truncation`.
    #[must_use]
    pub fn truncation(mut self, truncation: Truncation) -> Self {
        self.truncation = Some(truncation);
        self
    }

    /// Sets `prompt_cache_key`.
    #[must_use]
    pub fn prompt_cache_key(mut self, key: impl Into<String>) -> Self {
        self.prompt_cache_key = Some(key.into());
        self
    }

    /// Sets `safety_identifier`.
    #[must_use]
    pub fn safety_identifier(mut self, id: impl Into<String>) -> Self {
        self.safety_identifier = Some(id.into());
        self
    }

    /// Sets `service_tier`.
    #[must_use]
    pub fn service_tier(mut self, tier: impl Into<String>) -> Self {
        self.service_tier = Some(tier.into());
        self
    }

    /// Sets `max_output_tokens`.
    #[must_use]
    pub fn max_output_tokens(mut self, limit: u32) -> Self {
        self.max_output_tokens = Some(limit);
        self
    }

    /// Sets the sampling temperature.
    #[must_use]
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Sets `top_p`.
    #[must_use]
    pub fn top_p(mut self, top_p: f64) -> Self {
        self.top_p = Some(top_p);
        self
    }

    /// Sets any other body field (the escape hatch for fields this type does not
    /// know yet).
    #[must_use]
    pub fn extra(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    /// These settings with every field `over` sets replacing ours (field by
    /// field; `extra` key by key). How a child's settings are made from its
    /// parent's and the call's.
    #[must_use]
    pub fn overlay(mut self, over: &Self) -> Self {
        macro_rules! take {
            ($($field:ident),*) => {$(
                if over.$field.is_some() {
                    self.$field.clone_from(&over.$field);
                }
            )*};
        }
        take!(
            tools,
            tool_choice,
            parallel_tool_calls,
            max_tool_calls,
            reasoning,
            include,
            text_format,
            truncation,
            prompt_cache_key,
            safety_identifier,
            service_tier,
            max_output_tokens,
            temperature,
            top_p
        );
        for (key, value) in &over.extra {
            self.extra.insert(key.clone(), value.clone());
        }
        self
    }

    /// The function tools among [`tools`](Self::tools).
    pub fn function_tools(&self) -> impl Iterator<Item = &FunctionTool> {
        self.tools.iter().flatten().filter_map(|tool| match tool {
            Tool::Function(f) => Some(f),
            Tool::Other(_) => None,
        })
    }

    /// Whether `include` asks for `what`.
    pub fn includes(&self, what: &str) -> bool {
        self.include.iter().flatten().any(|w| w == what)
    }

    /// Checks what the API would refuse, before anything is sent.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the field: a temperature outside 0–2, `top_p`
    /// outside 0–1, `max_output_tokens` below 16, a function or schema name that
    /// is empty, longer than 64 characters or not made of `a-z A-Z 0-9 _ -`, two
    /// function tools with the same name, a forced function choice naming no
    /// function tool, or an `extra` key the engine owns (`model`, `input`,
    /// `instructions`, `previous_response_id`, `conversation`, `store`,
    /// `stream`, `background`, `metadata`, `n`, `messages`, and the typed
    /// `tools`, `tool_choice`, `text`, `reasoning`, `include`): set through
    /// `extra`, they would silently override what the engine computed.
    pub fn validate(&self) -> Result<()> {
        if let Some(t) = self.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(Error::config(format!("temperature must be 0–2, not {t}")));
            }
        }
        if let Some(p) = self.top_p {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::config(format!("top_p must be 0–1, not {p}")));
            }
        }
        if let Some(max) = self.max_output_tokens {
            if max < 16 {
                return Err(Error::config(format!(
                    "max_output_tokens must be at least 16, not {max}"
                )));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for tool in self.function_tools() {
            check_name("function tool name", &tool.name)?;
            if !names.insert(tool.name.as_str()) {
                return Err(Error::config(format!(
                    "two function tools are named {:?}",
                    tool.name
                )));
            }
        }
        if let Some(ToolChoice::Function(name)) = &self.tool_choice {
            if !names.contains(name.as_str()) {
                return Err(Error::config(format!(
                    "tool_choice forces function {name:?}, which is not among the tools"
                )));
            }
        }
        if let Some(TextFormat::JsonSchema { name, .. }) = &self.text_format {
            check_name("text.format json_schema name", name)?;
        }
        if let Some(key) = self
            .extra
            .keys()
            .find(|k| RESERVED_EXTRA.contains(&k.as_str()))
        {
            return Err(Error::config(format!(
                "settings.extra may not set {key:?}: the engine sends it (use the typed setting or RespondOptions)"
            )));
        }
        Ok(())
    }

    /// The request body fields for these settings, as the Responses API names
    /// them (`text.format` nested under `text`), `extra` last.
    pub fn to_body(&self) -> Map<String, Value> {
        let mut body = Map::new();
        if let Some(tools) = &self.tools {
            body.insert(
                "tools".to_owned(),
                Value::Array(tools.iter().map(Tool::to_json).collect()),
            );
        }
        if let Some(choice) = &self.tool_choice {
            body.insert("tool_choice".to_owned(), choice.to_json());
        }
        if let Some(format) = &self.text_format {
            body.insert("text".to_owned(), json!({"format": format.to_json()}));
        }
        // The plain fields serialise under their wire names.
        if let Ok(Value::Object(plain)) = serde_json::to_value(PlainFields::from(self)) {
            body.extend(plain);
        }
        for (key, value) in &self.extra {
            body.insert(key.clone(), value.clone());
        }
        body
    }
}

/// The fields of [`RequestSettings`] whose record form is their wire form.
#[derive(Serialize)]
struct PlainFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tool_calls: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<&'a Reasoning>,
    #[serde(skip_serializing_if = "Option::is_none")]
    include: Option<&'a Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncation: Option<Truncation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_cache_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_identifier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
}

impl<'a> From<&'a RequestSettings> for PlainFields<'a> {
    fn from(s: &'a RequestSettings) -> Self {
        Self {
            parallel_tool_calls: s.parallel_tool_calls,
            max_tool_calls: s.max_tool_calls,
            reasoning: s.reasoning.as_ref(),
            include: s.include.as_ref(),
            truncation: s.truncation,
            prompt_cache_key: s.prompt_cache_key.as_deref(),
            safety_identifier: s.safety_identifier.as_deref(),
            service_tier: s.service_tier.as_deref(),
            max_output_tokens: s.max_output_tokens,
            temperature: s.temperature,
            top_p: s.top_p,
        }
    }
}

/// The API's rule for function and schema names.
fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "{what} {name:?} must be 1–64 characters of a-z, A-Z, 0-9, _ or -"
        )))
    }
}

/// One entry of `tools`: a typed function tool, or any other tool type (web
/// search, file search, MCP, …) passed through as its JSON.
///
/// Serialises as the wire JSON (`{"type": "function", "name": …}`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Tool {
    /// A function the caller runs (`type: function`).
    Function(FunctionTool),
    /// Any other tool, as sent.
    Other(Value),
}

impl Tool {
    /// Any tool as raw JSON, e.g. `{"type": "web_search"}`; a `function` tool
    /// that fits [`FunctionTool`] becomes one.
    pub fn raw(value: Value) -> Self {
        Self::from_json(value)
    }

    /// The wire JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Function(f) => f.to_json(),
            Self::Other(v) => v.clone(),
        }
    }

    /// Classifies wire JSON: a [`FunctionTool`] when it is a well-formed function
    /// tool, else [`Tool::Other`].
    pub fn from_json(value: Value) -> Self {
        FunctionTool::from_json(&value).map_or(Self::Other(value), Self::Function)
    }
}

impl From<FunctionTool> for Tool {
    fn from(tool: FunctionTool) -> Self {
        Self::Function(tool)
    }
}

impl Serialize for Tool {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Tool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from_json)
    }
}

/// A function tool: the model answers with a `function_call` item naming it,
/// and the caller answers that with a `function_call_output`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FunctionTool {
    /// The function's name (1–64 of `a-z A-Z 0-9 _ -`).
    pub name: String,
    /// What it does, for the model.
    pub description: Option<String>,
    /// A JSON schema of its arguments (`null` when unset).
    pub parameters: Option<Value>,
    /// Whether arguments must match the schema exactly (`null` when unset: the
    /// server's default).
    pub strict: Option<bool>,
}

impl FunctionTool {
    /// A function tool called `name`, with no description, schema or strictness.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: None,
            parameters: None,
            strict: None,
        }
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Sets the JSON schema of the arguments.
    #[must_use]
    pub fn parameters(mut self, schema: Value) -> Self {
        self.parameters = Some(schema);
        self
    }

    /// Sets `strict`.
    #[must_use]
    pub fn strict(mut self, on: bool) -> Self {
        self.strict = Some(on);
        self
    }

    /// The wire JSON. `parameters` and `strict` are always present (`null` when
    /// unset), as the spec requires them.
    pub fn to_json(&self) -> Value {
        let mut tool = Map::new();
        tool.insert("type".to_owned(), json!("function"));
        tool.insert("name".to_owned(), json!(self.name));
        if let Some(text) = &self.description {
            tool.insert("description".to_owned(), json!(text));
        }
        tool.insert(
            "parameters".to_owned(),
            self.parameters.clone().unwrap_or(Value::Null),
        );
        tool.insert("strict".to_owned(), json!(self.strict));
        Value::Object(tool)
    }

    /// A function tool from its wire JSON; `None` if `value` is not one, or has
    /// fields this type would drop.
    fn from_json(value: &Value) -> Option<Self> {
        let map = value.as_object()?;
        if map.get("type")?.as_str()? != "function" {
            return None;
        }
        let known = ["type", "name", "description", "parameters", "strict"];
        if map.keys().any(|k| !known.contains(&k.as_str())) {
            return None;
        }
        let description = match map.get("description") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_str()?.to_owned()),
        };
        let strict = match map.get("strict") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_bool()?),
        };
        Some(Self {
            name: map.get("name")?.as_str()?.to_owned(),
            description,
            parameters: map.get("parameters").filter(|v| !v.is_null()).cloned(),
            strict,
        })
    }
}

/// Keys of [`RequestSettings::extra`] that [`RequestSettings::validate`] refuses,
/// because the engine or a typed setting sends them.
const RESERVED_EXTRA: &[&str] = &[
    "model",
    "input",
    "instructions",
    "previous_response_id",
    "conversation",
    "store",
    "stream",
    "background",
    "metadata",
    "n",
    "messages",
    "tools",
    "tool_choice",
    "text",
    "reasoning",
    "include",
];

/// Whether `model` is a reasoning model by its name: the o-series (`o1`, `o3`,
/// `o4-mini`, …) and the `gpt-5` family.
///
/// The engine asks for `reasoning.encrypted_content` only for these (other
/// models refuse that include) and does not pass an inherited `reasoning`
/// setting on to a child sent to another model that is not one. A model with
/// another name is still treated as reasoning when the call sets `reasoning`.
///
/// ```
/// use resptree::settings::is_reasoning_model;
/// assert!(is_reasoning_model("o4-mini"));
/// assert!(is_reasoning_model("gpt-5-mini"));
/// assert!(!is_reasoning_model("gpt-4o-mini"));
/// assert!(!is_reasoning_model("omni"));
/// ```
pub fn is_reasoning_model(model: &str) -> bool {
    let mut chars = model.chars();
    let o_series = chars.next() == Some('o') && chars.next().is_some_and(|c| c.is_ascii_digit());
    o_series || model.starts_with("gpt-5")
}

/// `tool_choice`: whether the model may, must or must not call tools.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ToolChoice {
    /// `"none"`: answer without calling tools.
    None,
    /// `"auto"`: the model decides (the server's default when tools are given).
    Auto,
    /// `"required"`: call at least one tool.
    Required,
    /// Call this function (`{"type": "function", "name": …}`).
    Function(String),
    /// Any other choice object, as sent.
    Other(Value),
}

impl ToolChoice {
    /// The wire JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Self::None => json!("none"),
            Self::Auto => json!("auto"),
            Self::Required => json!("required"),
            Self::Function(name) => json!({"type": "function", "name": name}),
            Self::Other(v) => v.clone(),
        }
    }

    /// From wire JSON.
    pub fn from_json(value: Value) -> Self {
        match value.as_str() {
            Some("none") => return Self::None,
            Some("auto") => return Self::Auto,
            Some("required") => return Self::Required,
            _ => {}
        }
        let function = value
            .as_object()
            .filter(|m| m.len() == 2 && m.get("type").and_then(Value::as_str) == Some("function"));
        match function.and_then(|m| m.get("name")).and_then(Value::as_str) {
            Some(name) => Self::Function(name.to_owned()),
            None => Self::Other(value),
        }
    }
}

impl Serialize for ToolChoice {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from_json)
    }
}

/// `reasoning`: how hard a reasoning model thinks, and whether it summarises.
///
/// Values are strings because the accepted set depends on the model and grows
/// (`effort`: `none`, `minimal`, `low`, `medium`, `high`, `xhigh`, …;
/// `summary`: `auto`, `concise`, `detailed`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Reasoning {
    /// `effort`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// `summary`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Any other reasoning field (e.g. `context`), sent as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Reasoning {
    /// Reasoning with this effort.
    pub fn effort(effort: impl Into<String>) -> Self {
        Self {
            effort: Some(effort.into()),
            ..Self::default()
        }
    }

    /// Also asks for a summary of this kind.
    #[must_use]
    pub fn with_summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }
}

/// `text.format`: the shape of the output text.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TextFormat {
    /// Plain text (the default).
    Text,
    /// Any JSON object (legacy JSON mode).
    JsonObject,
    /// JSON that validates against `schema` (structured output).
    JsonSchema {
        /// The format's name (1–64 of `a-z A-Z 0-9 _ -`).
        name: String,
        /// The JSON schema.
        schema: Value,
        /// What the format is for, for the model.
        description: Option<String>,
        /// Whether the output must match the schema exactly.
        strict: Option<bool>,
    },
    /// Any other format object, as sent.
    Other(Value),
}

impl TextFormat {
    /// A strict JSON schema format called `name`.
    pub fn json_schema(name: impl Into<String>, schema: Value) -> Self {
        Self::JsonSchema {
            name: name.into(),
            schema,
            description: None,
            strict: Some(true),
        }
    }

    /// The wire JSON (the value of `text.format`).
    pub fn to_json(&self) -> Value {
        match self {
            Self::Text => json!({"type": "text"}),
            Self::JsonObject => json!({"type": "json_object"}),
            Self::JsonSchema {
                name,
                schema,
                description,
                strict,
            } => {
                let mut format = Map::new();
                format.insert("type".to_owned(), json!("json_schema"));
                format.insert("name".to_owned(), json!(name));
                format.insert("schema".to_owned(), schema.clone());
                if let Some(text) = description {
                    format.insert("description".to_owned(), json!(text));
                }
                if let Some(strict) = strict {
                    format.insert("strict".to_owned(), json!(strict));
                }
                Value::Object(format)
            }
            Self::Other(v) => v.clone(),
        }
    }

    /// From wire JSON (the value of `text.format`).
    pub fn from_json(value: Value) -> Self {
        let Some(map) = value.as_object() else {
            return Self::Other(value);
        };
        match map.get("type").and_then(Value::as_str) {
            Some("text") if map.len() == 1 => Self::Text,
            Some("json_object") if map.len() == 1 => Self::JsonObject,
            Some("json_schema") => {
                let known = ["type", "name", "schema", "description", "strict"];
                let name = map.get("name").and_then(Value::as_str);
                let description = match map.get("description") {
                    None => Some(None),
                    Some(v) => v.as_str().map(|s| Some(s.to_owned())),
                };
                let strict = match map.get("strict") {
                    None => Some(None),
                    Some(v) => v.as_bool().map(Some),
                };
                match (name, map.get("schema"), description, strict) {
                    (Some(name), Some(schema), Some(description), Some(strict))
                        if map.keys().all(|k| known.contains(&k.as_str())) =>
                    {
                        Self::JsonSchema {
                            name: name.to_owned(),
                            schema: schema.clone(),
                            description,
                            strict,
                        }
                    }
                    _ => Self::Other(value),
                }
            }
            _ => Self::Other(value),
        }
    }
}

impl Serialize for TextFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TextFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from_json)
    }
}

/// `truncation`: what the server does with input over the context window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Truncation {
    /// Drop the oldest items to fit.
    Auto,
    /// Refuse (400 `context_length_exceeded`); the server's default.
    Disabled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_may_not_override_what_the_engine_sends() {
        for key in ["store", "previous_response_id", "model", "tools"] {
            let mut settings = RequestSettings::default();
            settings.extra.insert(key.to_owned(), Value::Bool(false));
            let err = settings.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("{key:?}")), "{key}: {err}");
        }
        let mut settings = RequestSettings::default();
        settings
            .extra
            .insert("verbosity".to_owned(), Value::from("low"));
        settings.validate().unwrap();
    }

    #[test]
    fn reasoning_models_are_known_by_name() {
        for model in ["o1", "o3-mini", "o4-mini-2025-04-16", "gpt-5", "gpt-5-nano"] {
            assert!(is_reasoning_model(model), "{model}");
        }
        for model in ["gpt-4o-mini", "gpt-4.1", "omni", "o", ""] {
            assert!(!is_reasoning_model(model), "{model}");
        }
    }

    fn weather() -> FunctionTool {
        FunctionTool::new("get_weather")
            .description("Weather")
            .parameters(json!({"type": "object", "properties": {"city": {"type": "string"}}}))
            .strict(true)
    }

    #[test]
    fn body_uses_wire_names_and_extra_wins() {
        let settings = RequestSettings::default()
            .tool(weather())
            .tool(Tool::raw(json!({"type": "web_search"})))
            .tool_choice(ToolChoice::Function("get_weather".to_owned()))
            .parallel_tool_calls(false)
            .max_tool_calls(3)
            .reasoning(Reasoning::effort("high").with_summary("auto"))
            .include(INCLUDE_REASONING_ENCRYPTED)
            .include(INCLUDE_REASONING_ENCRYPTED)
            .text_format(TextFormat::JsonObject)
            .truncation(Truncation::Auto)
            .prompt_cache_key("k")
            .safety_identifier("u1")
            .service_tier("flex")
            .max_output_tokens(64)
            .temperature(0.5)
            .top_p(0.9)
            .extra("verbosity_hint", json!(1))
            .extra("top_p", json!(0.8));
        let body = Value::Object(settings.to_body());
        assert_eq!(
            body,
            json!({
                "tools": [
                    {"type": "function", "name": "get_weather", "description": "Weather",
                     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                     "strict": true},
                    {"type": "web_search"}
                ],
                "tool_choice": {"type": "function", "name": "get_weather"},
                "parallel_tool_calls": false,
                "max_tool_calls": 3,
                "reasoning": {"effort": "high", "summary": "auto"},
                "include": ["reasoning.encrypted_content"],
                "text": {"format": {"type": "json_object"}},
                "truncation": "auto",
                "prompt_cache_key": "k",
                "safety_identifier": "u1",
                "service_tier": "flex",
                "max_output_tokens": 64,
                "temperature": 0.5,
                "top_p": 0.8,
                "verbosity_hint": 1
            })
        );
        settings.validate().unwrap();
    }

    #[test]
    fn settings_round_trip_through_their_record_form() {
        let settings = RequestSettings::default()
            .tool(weather())
            .tool(FunctionTool::new("bare"))
            .tool(Tool::raw(
                json!({"type": "function", "name": "odd", "x": 1}),
            ))
            .tool_choice(ToolChoice::Required)
            .reasoning(Reasoning::effort("low").with_summary("auto"))
            .text_format(TextFormat::json_schema("a", json!({"type": "object"})))
            .truncation(Truncation::Disabled);
        let text = serde_json::to_string(&settings).unwrap();
        let back: RequestSettings = serde_json::from_str(&text).unwrap();
        assert_eq!(back, settings);
        assert!(matches!(&back.tools.as_ref().unwrap()[2], Tool::Other(_)));
        // Old records without settings load as empty settings.
        let empty: RequestSettings = serde_json::from_str("{}").unwrap();
        assert!(empty.is_empty());
        for choice in [
            json!("none"),
            json!("auto"),
            json!({"type": "function", "name": "f"}),
            json!({"type": "file_search"}),
        ] {
            assert_eq!(ToolChoice::from_json(choice.clone()).to_json(), choice);
        }
        for format in [
            json!({"type": "text"}),
            json!({"type": "json_schema", "name": "n", "schema": {}, "strict": false}),
            json!({"type": "json_schema", "name": "n"}),
        ] {
            assert_eq!(TextFormat::from_json(format.clone()).to_json(), format);
        }
    }

    #[test]
    fn overlay_replaces_only_what_is_set() {
        let parent = RequestSettings::default()
            .tool(weather())
            .temperature(0.2)
            .extra("a", json!(1))
            .extra("b", json!(1));
        let call = RequestSettings::default()
            .temperature(1.0)
            .extra("b", json!(2));
        let child = parent.clone().overlay(&call);
        assert_eq!(child.tools, parent.tools);
        assert_eq!(child.temperature, Some(1.0));
        assert_eq!(child.extra["a"], 1);
        assert_eq!(child.extra["b"], 2);
        // An empty tool list clears the inherited tools.
        let cleared = parent.overlay(&RequestSettings::default().tools([]));
        assert_eq!(cleared.tools, Some(Vec::new()));
        assert_eq!(Value::Object(cleared.to_body())["tools"], json!([]));
    }

    #[test]
    fn validation_names_the_bad_field() {
        let bad = [
            RequestSettings::default().temperature(2.5),
            RequestSettings::default().top_p(-0.1),
            RequestSettings::default().max_output_tokens(8),
            RequestSettings::default().tool(FunctionTool::new("has space")),
            RequestSettings::default()
                .tool(FunctionTool::new("f"))
                .tool(FunctionTool::new("f")),
            RequestSettings::default().tool_choice(ToolChoice::Function("missing".to_owned())),
            RequestSettings::default().text_format(TextFormat::json_schema("", json!({}))),
        ];
        for (settings, field) in bad.iter().zip([
            "temperature",
            "top_p",
            "max_output_tokens",
            "has space",
            "two function tools",
            "missing",
            "json_schema name",
        ]) {
            let err = settings.validate().unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{err:?}");
            assert!(err.to_string().contains(field), "{err} lacks {field}");
        }
    }
}
