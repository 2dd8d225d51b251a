//! Input messages and their conversion to the wire `Message`.

use serde::{Deserialize, Serialize};
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use super::{
    result::{Alternative, CompletionResult},
    role::Role,
};
use crate::{
    error::Result,
    tools::{ToolCall, ToolResult},
};

/// One message of a conversation. Serializes as `{"role", "text"}`, `{"role", "tool_calls"}`
/// or `{"role", "tool_results"}`, so a conversation can be stored and replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "MessageRepr", try_from = "MessageRepr")]
pub struct Message {
    role: Role,
    content: Content,
}

#[derive(Debug, Clone, PartialEq)]
enum Content {
    Text(String),
    /// Calls requested by the model; received ones keep their wire form to be echoed back.
    ToolCalls(Vec<ToolCall>),
    ToolResults(Vec<ToolResult>),
}

/// The serialized shape of a [`Message`]: a role and exactly one kind of content.
#[derive(Serialize, Deserialize)]
struct MessageRepr {
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool_results: Option<Vec<ToolResult>>,
}

impl From<Message> for MessageRepr {
    fn from(m: Message) -> Self {
        let mut repr = MessageRepr { role: m.role, text: None, tool_calls: None, tool_results: None };
        match m.content {
            Content::Text(t) => repr.text = Some(t),
            Content::ToolCalls(c) => repr.tool_calls = Some(c),
            Content::ToolResults(r) => repr.tool_results = Some(r),
        }
        repr
    }
}

impl TryFrom<MessageRepr> for Message {
    type Error = String;

    fn try_from(r: MessageRepr) -> std::result::Result<Self, String> {
        let content = match (r.text, r.tool_calls, r.tool_results) {
            (Some(t), None, None) => Content::Text(t),
            (None, Some(c), None) => Content::ToolCalls(c),
            (None, None, Some(r)) => Content::ToolResults(r),
            _ => return Err("a message needs exactly one of `text`, `tool_calls`, `tool_results`".into()),
        };
        Ok(Message { role: r.role, content })
    }
}

impl Message {
    /// A text message with any role.
    pub fn new(role: impl Into<Role>, text: impl Into<String>) -> Message {
        Message { role: role.into(), content: Content::Text(text.into()) }
    }

    /// A system (instruction) message.
    pub fn system(text: impl Into<String>) -> Message {
        Message::new(Role::System, text)
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> Message {
        Message::new(Role::User, text)
    }

    /// An assistant message (e.g. an earlier answer in a chat history).
    pub fn assistant(text: impl Into<String>) -> Message {
        Message::new(Role::Assistant, text)
    }

    /// An assistant message asking for tool calls, e.g. to rebuild a stored conversation (a
    /// previous [`CompletionResult`] converts into one directly, keeping the calls' wire form).
    pub fn assistant_tool_calls(calls: impl IntoIterator<Item = ToolCall>) -> Message {
        Message { role: Role::Assistant, content: Content::ToolCalls(calls.into_iter().collect()) }
    }

    /// Results of tool calls, sent with role `user` like the Python SDK does.
    pub fn tool_results(results: impl IntoIterator<Item = ToolResult>) -> Message {
        Message { role: Role::User, content: Content::ToolResults(results.into_iter().collect()) }
    }

    /// The role.
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// The text, if this is a text message.
    pub fn text(&self) -> Option<&str> {
        match &self.content {
            Content::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The tool calls, if this message asks for some.
    pub fn tool_calls(&self) -> &[ToolCall] {
        match &self.content {
            Content::ToolCalls(c) => c,
            _ => &[],
        }
    }

    /// The tool results, if this message carries some.
    pub fn tool_results_list(&self) -> &[ToolResult] {
        match &self.content {
            Content::ToolResults(r) => r,
            _ => &[],
        }
    }

    pub(crate) fn into_proto(self) -> Result<pb::Message> {
        use pb::message::Content as C;
        let content = match self.content {
            Content::Text(t) => C::Text(t),
            Content::ToolCalls(calls) => C::ToolCallList(pb::ToolCallList {
                tool_calls: calls.iter().map(ToolCall::to_proto).collect::<Result<_>>()?,
            }),
            Content::ToolResults(results) => C::ToolResultList(pb::ToolResultList {
                tool_results: results.iter().map(ToolResult::to_proto).collect(),
            }),
        };
        Ok(pb::Message { role: self.role.as_str().to_owned(), content: Some(content) })
    }

    /// Describes what is wrong with this message for the API, if anything.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.role.as_str().trim().is_empty() {
            return Some("has an empty role".into());
        }
        match &self.content {
            Content::ToolResults(r) if r.is_empty() => Some("has an empty list of tool results".into()),
            Content::ToolResults(r) => {
                r.iter().find(|r| r.name.trim().is_empty()).map(|_| "has a tool result without a function name".into())
            }
            Content::ToolCalls(c) if c.is_empty() => Some("has an empty list of tool calls".into()),
            _ => None,
        }
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::user(text)
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::user(text)
    }
}

impl From<&String> for Message {
    fn from(text: &String) -> Self {
        Message::user(text.as_str())
    }
}

impl From<&Message> for Message {
    fn from(m: &Message) -> Self {
        m.clone()
    }
}

impl From<&Alternative> for Message {
    /// The model's answer as history: its text, or its tool calls echoed exactly.
    fn from(a: &Alternative) -> Self {
        let content = match a.tool_calls() {
            [] => Content::Text(a.text().to_owned()),
            calls => Content::ToolCalls(calls.to_vec()),
        };
        Message { role: a.role().clone(), content }
    }
}

impl From<Alternative> for Message {
    fn from(a: Alternative) -> Self {
        Message::from(&a)
    }
}

impl From<&CompletionResult> for Message {
    /// Alternative 0 of a result (an empty assistant message if there is none).
    fn from(r: &CompletionResult) -> Self {
        match r.alternative() {
            Some(a) => Message::from(a),
            None => Message::assistant(""),
        }
    }
}

impl From<CompletionResult> for Message {
    fn from(r: CompletionResult) -> Self {
        Message::from(&r)
    }
}

impl From<ToolResult> for Message {
    fn from(r: ToolResult) -> Self {
        Message::tool_results([r])
    }
}

impl From<Vec<ToolResult>> for Message {
    fn from(r: Vec<ToolResult>) -> Self {
        Message::tool_results(r)
    }
}

/// Anything that can be sent as the conversation: one message-like value (`&str`, `String`,
/// [`Message`], a previous [`CompletionResult`], a [`ToolResult`]) or a `Vec`, array or slice
/// of them. Collect other iterators into a `Vec<Message>`.
pub trait IntoMessages {
    /// Converts into the list of messages to send.
    fn into_messages(self) -> Vec<Message>;
}

macro_rules! single_message {
    ($($t:ty),* $(,)?) => {$(
        impl IntoMessages for $t {
            fn into_messages(self) -> Vec<Message> {
                vec![Message::from(self)]
            }
        }
    )*};
}

single_message!(
    &str,
    String,
    &String,
    Message,
    &Message,
    Alternative,
    &Alternative,
    CompletionResult,
    &CompletionResult,
    ToolResult,
);

impl<M: Into<Message>> IntoMessages for Vec<M> {
    fn into_messages(self) -> Vec<Message> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<M: Into<Message>, const N: usize> IntoMessages for [M; N] {
    fn into_messages(self) -> Vec<Message> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<M> IntoMessages for &[M]
where
    for<'a> &'a M: Into<Message>,
{
    fn into_messages(self) -> Vec<Message> {
        self.iter().map(Into::into).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_become_user_messages() {
        let m = "hi".into_messages();
        assert_eq!(
            m[0].clone().into_proto().unwrap(),
            pb::Message { role: "user".into(), content: Some(pb::message::Content::Text("hi".into())) }
        );
    }

    #[test]
    fn lists_keep_order_and_roles() {
        let history = vec![Message::system("be brief"), Message::user("q"), Message::assistant("a"), "next".into()];
        let roles: Vec<String> = history.as_slice().into_messages().iter().map(|m| m.role().to_string()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert_eq!(["a", "b"].into_messages().len(), 2);
    }

    #[test]
    fn tool_results_default_to_user_role() {
        let m = Message::from(ToolResult::function("sum", "10")).into_proto().unwrap();
        assert_eq!(m.role, "user");
        let Some(pb::message::Content::ToolResultList(list)) = m.content else { panic!() };
        assert_eq!(list.tool_results.len(), 1);
    }

    #[test]
    fn messages_round_trip_through_json_and_rebuilt_tool_calls_reach_the_wire() {
        let history = vec![
            Message::system("be brief"),
            Message::assistant_tool_calls([ToolCall::new("sum", serde_json::json!({"a": 1, "b": [2.5]}))]),
            Message::tool_results([ToolResult::function("sum", "3.5")]),
        ];
        let text = serde_json::to_string(&history).unwrap();
        assert_eq!(
            text,
            r#"[{"role":"system","text":"be brief"},{"role":"assistant","tool_calls":[{"function":{"name":"sum","arguments":{"a":1,"b":[2.5]}}}]},{"role":"user","tool_results":[{"name":"sum","content":"3.5"}]}]"#
        );
        let back: Vec<Message> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, history);
        let wire = back[1].clone().into_proto().unwrap();
        let Some(pb::message::Content::ToolCallList(list)) = wire.content else { panic!() };
        let Some(pb::tool_call::ToolCallType::FunctionCall(f)) = &list.tool_calls[0].tool_call_type else { panic!() };
        assert_eq!(f.name, "sum");
        assert!(serde_json::from_str::<Message>(r#"{"role":"user"}"#).unwrap_err().to_string().contains("exactly one"));
    }

    #[test]
    fn bad_messages_are_described() {
        assert!(Message::tool_results([]).problem().unwrap().contains("empty list of tool results"));
        assert!(Message::new("", "x").problem().unwrap().contains("empty role"));
        assert!(Message::user("").problem().is_none());
    }
}
