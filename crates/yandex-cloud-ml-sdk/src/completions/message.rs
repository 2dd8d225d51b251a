//! Input messages and their conversion to the wire `Message`.

use std::fmt;

use serde::Serialize;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use super::result::{Alternative, CompletionResult};
use crate::tools::ToolResult;

/// Who wrote a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The human (also the role of tool results, as in the Python SDK).
    User,
    /// The model.
    Assistant,
    /// Any other role string the server uses or accepts.
    Other(String),
}

impl Role {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Other(s) => s,
        }
    }

    pub(crate) fn parse(s: &str) -> Role {
        match s {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => Role::Other(other.to_owned()),
        }
    }
}

impl From<&str> for Role {
    fn from(s: &str) -> Self {
        Role::parse(s)
    }
}

impl From<Role> for String {
    fn from(r: Role) -> String {
        r.as_str().to_owned()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    role: Role,
    content: Content,
}

#[derive(Debug, Clone, PartialEq)]
enum Content {
    Text(String),
    /// Calls requested by the model, kept exactly as received so they can be echoed back.
    ToolCalls(pb::ToolCallList),
    ToolResults(Vec<ToolResult>),
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

    pub(crate) fn to_proto(&self) -> pb::Message {
        use pb::message::Content as C;
        let content = match &self.content {
            Content::Text(t) => C::Text(t.clone()),
            Content::ToolCalls(calls) => C::ToolCallList(calls.clone()),
            Content::ToolResults(results) => C::ToolResultList(pb::ToolResultList {
                tool_results: results.iter().map(ToolResult::to_proto).collect(),
            }),
        };
        pb::Message { role: self.role.as_str().to_owned(), content: Some(content) }
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
            Content::ToolCalls(c) if c.tool_calls.is_empty() => Some("has an empty list of tool calls".into()),
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
        let content = match a.raw_tool_calls() {
            Some(calls) => Content::ToolCalls(calls.clone()),
            None => Content::Text(a.text().to_owned()),
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
            m[0].to_proto(),
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
        let m = Message::from(ToolResult::function("sum", "10")).to_proto();
        assert_eq!(m.role, "user");
        let Some(pb::message::Content::ToolResultList(list)) = m.content else { panic!() };
        assert_eq!(list.tool_results.len(), 1);
    }

    #[test]
    fn bad_messages_are_described() {
        assert!(Message::tool_results([]).problem().unwrap().contains("empty list of tool results"));
        assert!(Message::new("", "x").problem().unwrap().contains("empty role"));
        assert!(Message::user("").problem().is_none());
    }
}
