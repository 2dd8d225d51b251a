//! Function calling: tool definitions, the tool-choice strategy, the calls a model asks for and
//! the results the caller sends back.
//!
//! The API has no call ids: a result is matched to its call by function name, and the
//! assistant message carrying the calls must be sent back unchanged (pass the previous
//! [`CompletionResult`](crate::completions::CompletionResult) as a message; the SDK echoes its calls exactly).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use crate::{
    error::{Error, Result},
    json,
};

/// A function the model may call, described by a JSON schema of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionTool {
    name: String,
    description: Option<String>,
    parameters: Value,
    strict: Option<bool>,
}

impl FunctionTool {
    /// A tool named `name` whose arguments follow the JSON schema `parameters` (an object).
    pub fn new(name: impl Into<String>, parameters: Value) -> FunctionTool {
        FunctionTool { name: name.into(), description: None, parameters, strict: None }
    }

    /// A tool whose arguments are the Rust type `T`: the schema comes from `schemars`, the name
    /// from the schema title (the type name) and the description from the type's doc comment.
    /// The schema has the portable shape the official SDK sends for a pydantic model (titles,
    /// no `$schema` or numeric `format`), title and description included.
    #[cfg(feature = "schemars")]
    #[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
    pub fn from_type<T: schemars::JsonSchema>() -> FunctionTool {
        let schema = json::schema_of::<T>();
        let name = schema.get("title").and_then(Value::as_str).unwrap_or_default().to_owned();
        let description = schema.get("description").and_then(Value::as_str).map(str::to_owned);
        FunctionTool { name, description, parameters: schema, strict: None }
    }

    /// Renames the tool.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// What the tool does, for the model.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Asks the model to follow the schema strictly. `false` is the default on the wire, so
    /// `with_strict(false)` and not calling this are the same request.
    pub fn with_strict(mut self, strict: bool) -> Self {
        self.strict = Some(strict);
        self
    }

    /// The function name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The JSON schema of the arguments.
    pub fn parameters(&self) -> &Value {
        &self.parameters
    }

    /// The strictness flag, if set.
    pub fn strict(&self) -> Option<bool> {
        self.strict
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_function_name(&self.name, "tool name")?;
        json::to_struct(&self.parameters, &format!("parameters of tool `{}`", self.name))?;
        Ok(())
    }

    pub(crate) fn to_proto(&self) -> Result<pb::Tool> {
        Ok(pb::Tool {
            tool_type: Some(pb::tool::ToolType::Function(pb::FunctionTool {
                name: self.name.clone(),
                description: self.description.clone().unwrap_or_default(),
                parameters: Some(json::to_struct(&self.parameters, &format!("parameters of tool `{}`", self.name))?),
                strict: self.strict.unwrap_or(false),
            })),
        })
    }
}

pub(crate) fn validate_function_name(name: &str, what: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid_input(format!(
            "{what} is empty: give the function a name (FunctionTool::new(\"name\", schema), or a `title` in the schema)"
        )));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid_input(format!("{what} `{name}` must not contain whitespace")));
    }
    Ok(())
}

/// The tool settings every model configuration has (`tools`, `tool`, `parallel_tool_calls`,
/// `tool_choice` and their getters), over its `tools`, `parallel_tool_calls` and `tool_choice`
/// fields.
macro_rules! tool_settings {
    () => {
        /// Replaces the tools the model may call.
        pub fn tools(mut self, tools: impl IntoIterator<Item = $crate::tools::FunctionTool>) -> Self {
            self.tools = tools.into_iter().collect();
            self
        }

        /// Adds one tool.
        pub fn tool(mut self, tool: $crate::tools::FunctionTool) -> Self {
            self.tools.push(tool);
            self
        }

        /// Whether the model may request several calls in one answer (cloud default: yes).
        pub fn parallel_tool_calls(mut self, parallel: impl Into<Option<bool>>) -> Self {
            self.parallel_tool_calls = parallel.into();
            self
        }

        /// Which tools the model may or must call.
        pub fn tool_choice(mut self, choice: impl Into<Option<$crate::tools::ToolChoice>>) -> Self {
            self.tool_choice = choice.into();
            self
        }

        /// The configured tools.
        pub fn get_tools(&self) -> &[$crate::tools::FunctionTool] {
            &self.tools
        }

        /// The configured parallel-tool-calls flag.
        pub fn get_parallel_tool_calls(&self) -> Option<bool> {
            self.parallel_tool_calls
        }

        /// The configured tool choice.
        pub fn get_tool_choice(&self) -> Option<&$crate::tools::ToolChoice> {
            self.tool_choice.as_ref()
        }
    };
}
pub(crate) use tool_settings;

/// Which tools the model may or must call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolChoice {
    /// Never call tools; answer in text.
    None,
    /// The model decides (the cloud's default).
    Auto,
    /// The model must call at least one tool.
    Required,
    /// The model must call this function.
    Function(String),
}

impl ToolChoice {
    pub(crate) fn to_proto(&self) -> pb::ToolChoice {
        use pb::tool_choice::{ToolChoice as C, ToolChoiceMode as M};
        let choice = match self {
            ToolChoice::None => C::Mode(M::None as i32),
            ToolChoice::Auto => C::Mode(M::Auto as i32),
            ToolChoice::Required => C::Mode(M::Required as i32),
            ToolChoice::Function(name) => C::FunctionName(name.clone()),
        };
        pb::ToolChoice { tool_choice: Some(choice) }
    }
}

impl FromStr for ToolChoice {
    type Err = Error;

    /// `none`, `auto` or `required` in any letter case.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(ToolChoice::None),
            "auto" => Ok(ToolChoice::Auto),
            "required" => Ok(ToolChoice::Required),
            _ => Err(Error::invalid_input(format!(
                "unknown tool choice `{s}`: use none, auto, required, or ToolChoice::Function(name)"
            ))),
        }
    }
}

impl From<&FunctionTool> for ToolChoice {
    fn from(tool: &FunctionTool) -> Self {
        ToolChoice::Function(tool.name.clone())
    }
}

/// A function call requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The function to run.
    pub name: String,
    /// Its arguments as JSON (an object).
    pub arguments: Value,
}

impl FunctionCall {
    /// Deserializes the arguments into `T`.
    pub fn arguments_as<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.arguments.clone()).map_err(|e| {
            Error::decode(format!(
                "arguments of the call to `{}` do not match the expected type: {e}; arguments were {}",
                self.name, self.arguments
            ))
        })
    }
}

/// One tool call of an assistant message. Today every call is a function call. A call
/// received from the server keeps its wire form, so sending it back in the history echoes it
/// byte for byte.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolCall {
    function: Option<FunctionCall>,
    #[serde(skip)]
    raw: Option<pb::ToolCall>,
}

impl PartialEq for ToolCall {
    fn eq(&self, other: &Self) -> bool {
        self.function == other.function
    }
}

impl ToolCall {
    /// A call of function `name` with JSON `arguments` (an object), e.g. to rebuild an assistant
    /// message of a stored conversation with
    /// [`Message::assistant_tool_calls`](crate::completions::Message::assistant_tool_calls).
    pub fn new(name: impl Into<String>, arguments: Value) -> ToolCall {
        ToolCall { function: Some(FunctionCall { name: name.into(), arguments }), raw: None }
    }

    pub(crate) fn from_proto(call: &pb::ToolCall) -> ToolCall {
        let function = call.tool_call_type.as_ref().map(|pb::tool_call::ToolCallType::FunctionCall(f)| FunctionCall {
            name: f.name.clone(),
            arguments: f.arguments.as_ref().map(json::from_struct).unwrap_or(Value::Object(Default::default())),
        });
        ToolCall { function, raw: Some(call.clone()) }
    }

    /// The wire form: as received, or built from the function and its arguments.
    pub(crate) fn to_proto(&self) -> Result<pb::ToolCall> {
        if let Some(raw) = &self.raw {
            return Ok(raw.clone());
        }
        let Some(f) = &self.function else {
            return Err(Error::invalid_input("a tool call without a function cannot be sent"));
        };
        validate_function_name(&f.name, "tool call name")?;
        Ok(pb::ToolCall {
            tool_call_type: Some(pb::tool_call::ToolCallType::FunctionCall(pb::FunctionCall {
                name: f.name.clone(),
                arguments: Some(json::to_struct(&f.arguments, &format!("arguments of the call to `{}`", f.name))?),
            })),
        })
    }

    /// The function call, if this is one (a newer server could send other kinds).
    pub fn function(&self) -> Option<&FunctionCall> {
        self.function.as_ref()
    }

    /// The called function's name (empty for non-function calls).
    pub fn name(&self) -> &str {
        self.function.as_ref().map_or("", |f| f.name.as_str())
    }
}

/// The outcome of a function call, sent back to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The function that was called.
    pub name: String,
    /// What it returned, as text (often JSON).
    pub content: String,
}

impl ToolResult {
    /// The result of calling function `name`.
    pub fn function(name: impl Into<String>, content: impl Into<String>) -> ToolResult {
        ToolResult { name: name.into(), content: content.into() }
    }

    /// The result of `call`, with `content` serialized as JSON unless it already is a string.
    pub fn for_call(call: &ToolCall, content: impl Serialize) -> Result<ToolResult> {
        let content = match serde_json::to_value(content) {
            Ok(Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(e) => return Err(Error::invalid_input(format!("tool result is not serializable: {e}"))),
        };
        Ok(ToolResult::function(call.name(), content))
    }

    pub(crate) fn to_proto(&self) -> pb::ToolResult {
        pb::ToolResult {
            tool_result_type: Some(pb::tool_result::ToolResultType::FunctionResult(pb::FunctionResult {
                name: self.name.clone(),
                content_type: Some(pb::function_result::ContentType::Content(self.content.clone())),
            })),
        }
    }
}

impl fmt::Display for ToolChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolChoice::None => f.write_str("none"),
            ToolChoice::Auto => f.write_str("auto"),
            ToolChoice::Required => f.write_str("required"),
            ToolChoice::Function(n) => write!(f, "function `{n}`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tool_choice_parses_any_case_and_rejects_unknown() {
        assert_eq!("REQUIRED".parse::<ToolChoice>().unwrap(), ToolChoice::Required);
        assert_eq!("Auto".parse::<ToolChoice>().unwrap(), ToolChoice::Auto);
        let e = "foo".parse::<ToolChoice>().unwrap_err();
        assert!(e.to_string().contains("none, auto, required"));
    }

    #[test]
    fn tool_validation_names_the_problem() {
        let e = FunctionTool::new("", json!({})).validate().unwrap_err();
        assert!(e.to_string().contains("tool name is empty"));
        let e = FunctionTool::new("a b", json!({})).validate().unwrap_err();
        assert!(e.to_string().contains("whitespace"));
        let e = FunctionTool::new("f", json!("string")).validate().unwrap_err();
        assert!(e.to_string().contains("parameters of tool `f` must be a JSON object"));
    }

    #[test]
    fn proto_sends_empty_description_and_default_strict() {
        let tool = FunctionTool::new("f", json!({"type": "object"})).to_proto().unwrap();
        let Some(pb::tool::ToolType::Function(f)) = tool.tool_type else { panic!() };
        assert_eq!((f.name.as_str(), f.description.as_str(), f.strict), ("f", "", false));
    }

    #[cfg(feature = "schemars")]
    #[test]
    fn from_type_takes_name_and_description_from_the_type() {
        /// Adds numbers.
        #[derive(schemars::JsonSchema)]
        #[allow(dead_code)]
        struct Numbers {
            numbers: Vec<i64>,
        }
        let tool = FunctionTool::from_type::<Numbers>();
        assert_eq!(tool.name(), "Numbers");
        assert_eq!(tool.description(), Some("Adds numbers."));
        assert_eq!(tool.parameters()["properties"]["numbers"]["type"], "array");
    }
}
