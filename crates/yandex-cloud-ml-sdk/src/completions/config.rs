//! Model configuration ([`GptModel::configure`](crate::completions::GptModel::configure)) and its
//! validation.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use crate::{
    error::{Error, Result},
    json,
    tools::{FunctionTool, ToolChoice},
};

/// Hidden reasoning before the answer (models that support it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ReasoningMode {
    /// No reasoning.
    Disabled,
    /// Reasoning on; only its token count is reported ([`Usage::reasoning_tokens`](crate::completions::Usage)).
    EnabledHidden,
}

impl ReasoningMode {
    fn to_proto(self) -> pb::reasoning_options::ReasoningMode {
        match self {
            ReasoningMode::Disabled => pb::reasoning_options::ReasoningMode::Disabled,
            ReasoningMode::EnabledHidden => pb::reasoning_options::ReasoningMode::EnabledHidden,
        }
    }
}

impl FromStr for ReasoningMode {
    type Err = Error;

    /// `disabled` or `enabled_hidden`, any letter case.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "disabled" => Ok(ReasoningMode::Disabled),
            "enabled_hidden" => Ok(ReasoningMode::EnabledHidden),
            _ => Err(Error::invalid_input(format!("unknown reasoning mode `{s}`: use disabled or enabled_hidden"))),
        }
    }
}

impl fmt::Display for ReasoningMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReasoningMode::Disabled => "disabled",
            ReasoningMode::EnabledHidden => "enabled_hidden",
        })
    }
}

/// Structured output: what shape the answer text must have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResponseFormat {
    /// Any valid JSON. The prompt should also ask for JSON (the API's advice).
    Json,
    /// JSON that validates against this schema (a JSON object).
    JsonSchema(Value),
}

impl ResponseFormat {
    /// JSON following the schema `schema`.
    pub fn json_schema(schema: Value) -> ResponseFormat {
        ResponseFormat::JsonSchema(schema)
    }

    /// JSON following the schema of the Rust type `T` (via `schemars`).
    #[cfg(feature = "schemars")]
    #[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
    pub fn from_type<T: schemars::JsonSchema>() -> ResponseFormat {
        ResponseFormat::JsonSchema(json::schema_of::<T>())
    }

    fn validate(&self) -> Result<()> {
        if let ResponseFormat::JsonSchema(schema) = self {
            json::to_struct(schema, "response_format JSON schema")?;
        }
        Ok(())
    }
}

/// Settings sent with every request of a model. Every field is optional; unset fields are not
/// sent and the cloud's defaults apply (temperature 0.3, parallel tool calls on, tool choice
/// auto). Setters take `impl Into<Option<_>>`, so `None` clears a field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GptModelConfig {
    temperature: Option<f64>,
    max_tokens: Option<u32>,
    reasoning_mode: Option<ReasoningMode>,
    response_format: Option<ResponseFormat>,
    tools: Vec<FunctionTool>,
    parallel_tool_calls: Option<bool>,
    tool_choice: Option<ToolChoice>,
}

impl GptModelConfig {
    crate::tools::tool_settings!();

    /// Sampling temperature in `[0, 1]`; higher is more random.
    pub fn temperature(mut self, temperature: impl Into<Option<f64>>) -> Self {
        self.temperature = temperature.into();
        self
    }

    /// Upper bound of generated tokens (at least 1).
    pub fn max_tokens(mut self, max_tokens: impl Into<Option<u32>>) -> Self {
        self.max_tokens = max_tokens.into();
        self
    }

    /// Hidden reasoning mode.
    pub fn reasoning_mode(mut self, mode: impl Into<Option<ReasoningMode>>) -> Self {
        self.reasoning_mode = mode.into();
        self
    }

    /// Structured output.
    pub fn response_format(mut self, format: impl Into<Option<ResponseFormat>>) -> Self {
        self.response_format = format.into();
        self
    }

    /// The configured temperature.
    pub fn get_temperature(&self) -> Option<f64> {
        self.temperature
    }

    /// The configured token limit.
    pub fn get_max_tokens(&self) -> Option<u32> {
        self.max_tokens
    }

    /// The configured reasoning mode.
    pub fn get_reasoning_mode(&self) -> Option<ReasoningMode> {
        self.reasoning_mode
    }

    /// The configured response format.
    pub fn get_response_format(&self) -> Option<&ResponseFormat> {
        self.response_format.as_ref()
    }

    /// Checks the whole configuration; errors name the field and the fix.
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(t) = self.temperature
            && (!t.is_finite() || !(0.0..=1.0).contains(&t))
        {
            return Err(Error::invalid_input(format!("temperature must be between 0 and 1 inclusive, got {t}")));
        }
        if self.max_tokens == Some(0) {
            return Err(Error::invalid_input("max_tokens must be at least 1, got 0"));
        }
        if let Some(f) = &self.response_format {
            f.validate()?;
        }
        let mut names = std::collections::HashSet::new();
        for tool in &self.tools {
            tool.validate()?;
            if !names.insert(tool.name()) {
                return Err(Error::invalid_input(format!(
                    "two tools are named `{}`: tool names must be unique",
                    tool.name()
                )));
            }
        }
        match &self.tool_choice {
            Some(ToolChoice::Function(name)) if !names.contains(name.as_str()) => {
                return Err(Error::invalid_input(format!(
                    "tool_choice names function `{name}`, which is not among the configured tools ({})",
                    if names.is_empty() { "none configured".to_owned() } else { sorted(&names) }
                )));
            }
            Some(ToolChoice::Required) if self.tools.is_empty() => {
                return Err(Error::invalid_input(
                    "tool_choice is `required` but no tools are configured: add tools or drop tool_choice",
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether tools, a tool choice or parallel tool calls are configured.
    pub(crate) fn has_tools(&self) -> bool {
        !self.tools.is_empty() || self.tool_choice.is_some() || self.parallel_tool_calls.is_some()
    }

    /// Fills the request fields owned by the configuration.
    pub(crate) fn apply(&self, request: &mut pb::CompletionRequest) -> Result<()> {
        let options = request.completion_options.get_or_insert_with(Default::default);
        options.temperature = self.temperature;
        options.max_tokens = self.max_tokens.map(i64::from);
        options.reasoning_options = self.reasoning_mode.map(|m| pb::ReasoningOptions { mode: m.to_proto() as i32 });
        request.tools = self.tools.iter().map(FunctionTool::to_proto).collect::<Result<_>>()?;
        request.response_format = match &self.response_format {
            None => None,
            Some(ResponseFormat::Json) => Some(pb::completion_request::ResponseFormat::JsonObject(true)),
            Some(ResponseFormat::JsonSchema(schema)) => {
                Some(pb::completion_request::ResponseFormat::JsonSchema(pb::JsonSchema {
                    schema: Some(json::to_struct(schema, "response_format JSON schema")?),
                }))
            }
        };
        request.parallel_tool_calls = self.parallel_tool_calls;
        request.tool_choice = self.tool_choice.as_ref().map(ToolChoice::to_proto);
        Ok(())
    }
}

fn sorted(names: &std::collections::HashSet<&str>) -> String {
    let mut v: Vec<&str> = names.iter().copied().collect();
    v.sort_unstable();
    v.join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn temperature_and_max_tokens_are_checked() {
        let e = GptModelConfig::default().temperature(1.5).validate().unwrap_err();
        assert_eq!(e.to_string(), "invalid input: temperature must be between 0 and 1 inclusive, got 1.5");
        assert!(GptModelConfig::default().temperature(f64::NAN).validate().is_err());
        assert!(GptModelConfig::default().temperature(0.0).validate().is_ok());
        assert!(GptModelConfig::default().temperature(1.0).validate().is_ok());
        assert!(GptModelConfig::default().max_tokens(0).validate().unwrap_err().to_string().contains("max_tokens"));
    }

    #[test]
    fn tool_choice_must_name_a_configured_tool() {
        let tool = FunctionTool::new("sum", json!({"type": "object"}));
        let cfg = GptModelConfig::default().tool(tool.clone()).tool_choice(ToolChoice::Function("mul".into()));
        assert!(
            cfg.validate().unwrap_err().to_string().contains("`mul`, which is not among the configured tools (sum)")
        );
        assert!(GptModelConfig::default().tool(tool.clone()).tool_choice(ToolChoice::from(&tool)).validate().is_ok());
        assert!(GptModelConfig::default().tool_choice(ToolChoice::Required).validate().is_err());
        let dup = GptModelConfig::default().tools([tool.clone(), tool]);
        assert!(dup.validate().unwrap_err().to_string().contains("unique"));
    }

    #[test]
    fn apply_sets_wire_fields_including_explicit_zero_and_false() {
        let cfg = GptModelConfig::default()
            .temperature(0.0)
            .max_tokens(100)
            .reasoning_mode(ReasoningMode::EnabledHidden)
            .parallel_tool_calls(false)
            .response_format(ResponseFormat::Json);
        let mut req = pb::CompletionRequest::default();
        cfg.apply(&mut req).unwrap();
        let o = req.completion_options.unwrap();
        assert_eq!(o.temperature, Some(0.0));
        assert_eq!(o.max_tokens, Some(100));
        assert_eq!(o.reasoning_options.unwrap().mode, 2);
        assert_eq!(req.parallel_tool_calls, Some(false));
        assert_eq!(req.response_format, Some(pb::completion_request::ResponseFormat::JsonObject(true)));
    }

    #[test]
    fn reasoning_mode_parses_case_insensitively() {
        assert_eq!("ENABLED_HIDDEN".parse::<ReasoningMode>().unwrap(), ReasoningMode::EnabledHidden);
        assert!("bad".parse::<ReasoningMode>().unwrap_err().to_string().contains("enabled_hidden"));
    }
}
