//! [`ChatModelConfig`]: what [`ChatModel::configure`](super::ChatModel::configure) sets, and
//! the request body it becomes (keys in the Python SDK's order).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize, ser::SerializeMap};
use serde_json::{Map, Value};

use crate::{
    error::{Error, Result},
    tools::{FunctionTool, ToolChoice},
};

/// How hard a reasoning model thinks before answering (`reasoning_effort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ReasoningEffort {
    /// Little reasoning, fast answers.
    Low,
    /// The middle.
    Medium,
    /// Most reasoning.
    High,
}

impl ReasoningEffort {
    fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
        }
    }
}

impl FromStr for ReasoningEffort {
    type Err = Error;

    /// `low`, `medium` or `high`, any letter case.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(ReasoningEffort::Low),
            "medium" => Ok(ReasoningEffort::Medium),
            "high" => Ok(ReasoningEffort::High),
            _ => Err(Error::invalid_input(format!("unknown reasoning effort `{s}`: use low, medium or high"))),
        }
    }
}

impl fmt::Display for ReasoningEffort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Structured output of the chat API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChatResponseFormat {
    /// Any JSON object (`{"type": "json_object"}`).
    Json,
    /// JSON following `schema` (`{"type": "json_schema", …}`). The API requires a `name`
    /// (letters, digits, `_` and `-`, at most 64); `strict` asks the model to follow the
    /// schema exactly.
    JsonSchema {
        /// The JSON schema (an object).
        schema: Value,
        /// Its name.
        name: String,
        /// Strict adherence, when set.
        strict: Option<bool>,
    },
}

impl ChatResponseFormat {
    /// JSON following `schema`, named `name`.
    pub fn json_schema(name: impl Into<String>, schema: Value) -> ChatResponseFormat {
        ChatResponseFormat::JsonSchema { schema, name: name.into(), strict: None }
    }

    /// JSON following the schema of the Rust type `T`, named after the type and strict (what
    /// the Python SDK sends for a pydantic model).
    #[cfg(feature = "schemars")]
    #[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
    pub fn from_type<T: schemars::JsonSchema>() -> ChatResponseFormat {
        let schema = crate::json::schema_of::<T>();
        let name = schema.get("title").and_then(Value::as_str).unwrap_or("response").to_owned();
        ChatResponseFormat::JsonSchema { schema, name, strict: Some(true) }
    }

    /// Sets `strict` of a JSON schema format (no effect on [`Json`](Self::Json)).
    pub fn strict(mut self, value: bool) -> Self {
        if let ChatResponseFormat::JsonSchema { strict, .. } = &mut self {
            *strict = Some(value);
        }
        self
    }

    fn validate(&self) -> Result<()> {
        if let ChatResponseFormat::JsonSchema { schema, name, .. } = self {
            if !schema.is_object() {
                return Err(Error::invalid_input("response_format: the JSON schema must be a JSON object"));
            }
            let valid = !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(Error::invalid_input(format!(
                    "response_format: the schema name `{name}` must be 1 to 64 letters, digits, `_` or `-`"
                )));
            }
        }
        Ok(())
    }

    fn to_wire(&self) -> Value {
        match self {
            ChatResponseFormat::Json => serde_json::json!({"type": "json_object"}),
            ChatResponseFormat::JsonSchema { schema, name, strict } => {
                let mut inner = Map::new();
                inner.insert("schema".into(), schema.clone());
                inner.insert("name".into(), Value::String(name.clone()));
                if let Some(strict) = strict {
                    inner.insert("strict".into(), Value::Bool(*strict));
                }
                serde_json::json!({"type": "json_schema", "json_schema": inner})
            }
        }
    }
}

/// Settings sent with every request of a [`ChatModel`](super::ChatModel). Unset fields are
/// not sent (the server's defaults apply); setters take `impl Into<Option<_>>`, so `None`
/// clears a field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatModelConfig {
    temperature: Option<f64>,
    max_tokens: Option<u32>,
    response_format: Option<ChatResponseFormat>,
    reasoning_effort: Option<ReasoningEffort>,
    tools: Vec<FunctionTool>,
    parallel_tool_calls: Option<bool>,
    tool_choice: Option<ToolChoice>,
    extra: Map<String, Value>,
}

/// Body keys the SDK writes itself, which [`ChatModelConfig::extra`] may not set.
const MODELLED: [&str; 10] = [
    "model",
    "messages",
    "stream",
    "temperature",
    "max_tokens",
    "response_format",
    "reasoning_effort",
    "tools",
    "parallel_tool_calls",
    "tool_choice",
];

impl ChatModelConfig {
    crate::tools::tool_settings!();

    /// Sampling temperature (the docs give 0–1; some models take up to 2).
    pub fn temperature(mut self, temperature: impl Into<Option<f64>>) -> Self {
        self.temperature = temperature.into();
        self
    }

    /// The most tokens to generate (`max_tokens`).
    pub fn max_tokens(mut self, max_tokens: impl Into<Option<u32>>) -> Self {
        self.max_tokens = max_tokens.into();
        self
    }

    /// `reasoning_effort` (models that reason, e.g. gpt-oss).
    pub fn reasoning_effort(mut self, effort: impl Into<Option<ReasoningEffort>>) -> Self {
        self.reasoning_effort = effort.into();
        self
    }

    /// Structured output.
    pub fn response_format(mut self, format: impl Into<Option<ChatResponseFormat>>) -> Self {
        self.response_format = format.into();
        self
    }

    /// A body parameter the SDK does not model (e.g. `top_p`, `seed`, `n`), added at the top
    /// level of every request; `Value::Null` removes it. Parameters the SDK models must be set
    /// with their own setter (`configure` says which).
    pub fn extra(mut self, key: impl Into<String>, value: Value) -> Self {
        let key = key.into();
        if value.is_null() {
            self.extra.remove(&key);
        } else {
            self.extra.insert(key, value);
        }
        self
    }

    /// The temperature, if set.
    pub fn get_temperature(&self) -> Option<f64> {
        self.temperature
    }

    /// `max_tokens`, if set.
    pub fn get_max_tokens(&self) -> Option<u32> {
        self.max_tokens
    }

    /// The reasoning effort, if set.
    pub fn get_reasoning_effort(&self) -> Option<ReasoningEffort> {
        self.reasoning_effort
    }

    /// The response format, if set.
    pub fn get_response_format(&self) -> Option<&ChatResponseFormat> {
        self.response_format.as_ref()
    }

    /// The extra body parameters.
    pub fn get_extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(t) = self.temperature
            && !(t.is_finite() && (0.0..=2.0).contains(&t))
        {
            return Err(Error::invalid_input(format!("temperature {t} is out of range: use 0 to 2")));
        }
        if self.max_tokens == Some(0) {
            return Err(Error::invalid_input("max_tokens is 0: use at least 1, or None for the model's limit"));
        }
        if let Some(format) = &self.response_format {
            format.validate()?;
        }
        for tool in &self.tools {
            tool.validate()?;
        }
        if let Some(ToolChoice::Function(name)) = &self.tool_choice
            && !self.tools.iter().any(|t| t.name() == name)
        {
            return Err(Error::invalid_input(format!("tool_choice names `{name}`, which is not among the tools")));
        }
        if let Some(key) = self.extra.keys().find(|k| MODELLED.contains(&k.as_str())) {
            return Err(Error::invalid_input(format!(
                "extra parameter `{key}` is one the SDK sets itself: use its own setter of ChatModelConfig instead"
            )));
        }
        Ok(())
    }
}

/// The body of a `chat/completions` request: the Python SDK's keys in its order, then extras.
pub(crate) struct RequestBody<'a> {
    pub model: &'a str,
    pub messages: &'a [super::ChatMessage],
    pub stream: bool,
    pub config: &'a ChatModelConfig,
}

impl Serialize for RequestBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let c = self.config;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("model", self.model)?;
        map.serialize_entry("messages", self.messages)?;
        map.serialize_entry("stream", &self.stream)?;
        if let Some(t) = c.temperature {
            map.serialize_entry("temperature", &t)?;
        }
        if let Some(n) = c.max_tokens {
            map.serialize_entry("max_tokens", &n)?;
        }
        if let Some(format) = &c.response_format {
            map.serialize_entry("response_format", &format.to_wire())?;
        }
        if let Some(effort) = c.reasoning_effort {
            map.serialize_entry("reasoning_effort", effort.as_str())?;
        }
        if !c.tools.is_empty() {
            let tools: Vec<Value> = c.tools.iter().map(tool_to_wire).collect();
            map.serialize_entry("tools", &tools)?;
        }
        if let Some(parallel) = c.parallel_tool_calls {
            map.serialize_entry("parallel_tool_calls", &parallel)?;
        }
        if let Some(choice) = &c.tool_choice {
            map.serialize_entry("tool_choice", &tool_choice_to_wire(choice))?;
        }
        for (key, value) in &c.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// `{"function": {name, description, parameters, strict}, "type": "function"}`, with
/// `description` and `strict` present even when null, as the Python SDK sends them.
fn tool_to_wire(tool: &FunctionTool) -> Value {
    serde_json::json!({
        "function": {
            "name": tool.name(),
            "description": tool.description(),
            "parameters": tool.parameters(),
            "strict": tool.strict(),
        },
        "type": "function",
    })
}

fn tool_choice_to_wire(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Function(name) => serde_json::json!({"type": "function", "function": {"name": name}}),
        other => Value::String(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn body_has_the_python_sdk_keys_in_order_and_extras_last() {
        let config = ChatModelConfig::default()
            .temperature(0.0)
            .max_tokens(10)
            .response_format(ChatResponseFormat::json_schema("Numbers", json!({"type": "object"})).strict(true))
            .reasoning_effort(ReasoningEffort::Low)
            .tool(FunctionTool::new("f", json!({"type": "object"})))
            .parallel_tool_calls(false)
            .tool_choice(ToolChoice::Function("f".into()))
            .extra("top_k", json!(3));
        config.validate().unwrap();
        let body = RequestBody { model: "gpt://f/m/latest", messages: &["hi".into()], stream: false, config: &config };
        let text = serde_json::to_string(&body).unwrap();
        let keys: Vec<&str> = [
            "\"model\"",
            "\"messages\"",
            "\"stream\"",
            "\"temperature\"",
            "\"max_tokens\"",
            "\"response_format\"",
            "\"reasoning_effort\"",
            "\"tools\"",
            "\"parallel_tool_calls\"",
            "\"tool_choice\"",
            "\"top_k\"",
        ]
        .into_iter()
        .collect();
        let positions: Vec<usize> = keys.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["tools"][0],
            json!({"function": {"name": "f", "description": null, "parameters": {"type": "object"}, "strict": null}, "type": "function"})
        );
        assert_eq!(v["tool_choice"], json!({"type": "function", "function": {"name": "f"}}));
        assert_eq!(
            v["response_format"],
            json!({"type": "json_schema", "json_schema": {"schema": {"type": "object"}, "name": "Numbers", "strict": true}})
        );
    }

    #[test]
    fn bad_settings_name_the_field() {
        let check = |c: ChatModelConfig| c.validate().unwrap_err().to_string();
        assert!(check(ChatModelConfig::default().temperature(3.0)).contains("temperature"));
        assert!(check(ChatModelConfig::default().max_tokens(0)).contains("max_tokens"));
        assert!(check(ChatModelConfig::default().extra("stream", json!(true))).contains("`stream`"));
        assert!(check(ChatModelConfig::default().tool_choice(ToolChoice::Function("g".into()))).contains("`g`"));
        let bad_name = ChatResponseFormat::json_schema("has space", json!({}));
        assert!(check(ChatModelConfig::default().response_format(bad_name)).contains("has space"));
        assert!("LOW".parse::<ReasoningEffort>().is_ok());
        assert!("enabled_hidden".parse::<ReasoningEffort>().unwrap_err().to_string().contains("low, medium or high"));
    }
}
