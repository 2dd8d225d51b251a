//! Chat messages as the OpenAI-compatible API takes them: text or content parts (text and
//! images), the assistant's tool calls, and tool results with the id of their call.

use base64::Engine as _;
use serde::{Deserialize, Serialize, ser::SerializeMap};

use super::result::{ChatChoice, ChatResult, ChatToolCall};
use crate::completions::Role;

/// One message of a conversation. Build it with [`ChatMessage::user`], [`ChatMessage::system`],
/// …, or let a `&str` (a user message) or a previous [`ChatResult`] (the assistant's turn,
/// its tool calls echoed exactly) convert into it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChatMessage {
    role: Role,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default, deserialize_with = "super::result::null_as_empty")]
    tool_calls: Vec<ChatToolCall>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

/// The content of a message: text, or parts (text and images) in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Text and images, in order.
    Parts(Vec<ContentPart>),
}

/// A part of a multimodal message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContentPart {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image, by URL: the cloud takes `data:` URLs (see [`ContentPart::image`]).
    ImageUrl {
        /// `{"url": …}`.
        image_url: ImageUrl,
    },
}

/// Where an image is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// A `data:<media type>;base64,…` URL, or an `https` URL where a model accepts one.
    pub url: String,
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> ContentPart {
        ContentPart::Text { text: text.into() }
    }

    /// An image given as bytes, sent inline as a `data:` URL (what the cloud accepts), e.g.
    /// `ContentPart::image("image/png", std::fs::read("photo.png")?)`.
    pub fn image(media_type: &str, bytes: impl AsRef<[u8]>) -> ContentPart {
        let data = base64::engine::general_purpose::STANDARD.encode(bytes.as_ref());
        ContentPart::image_url(format!("data:{media_type};base64,{data}"))
    }

    /// An image by URL (a `data:` URL, or a web URL for models that fetch them).
    pub fn image_url(url: impl Into<String>) -> ContentPart {
        ContentPart::ImageUrl { image_url: ImageUrl { url: url.into() } }
    }
}

impl ChatMessage {
    /// A message with `role` and text.
    pub fn new(role: impl Into<Role>, text: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: Some(Content::Text(text.into())),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// Instructions for the model.
    pub fn system(text: impl Into<String>) -> ChatMessage {
        ChatMessage::new(Role::System, text)
    }

    /// Instructions in the `developer` role (what reasoning models such as gpt-oss take).
    pub fn developer(text: impl Into<String>) -> ChatMessage {
        ChatMessage::new("developer", text)
    }

    /// The human's text.
    pub fn user(text: impl Into<String>) -> ChatMessage {
        ChatMessage::new(Role::User, text)
    }

    /// A user message of parts, e.g. a question and an image.
    pub fn user_parts(parts: impl IntoIterator<Item = ContentPart>) -> ChatMessage {
        ChatMessage { content: Some(Content::Parts(parts.into_iter().collect())), ..ChatMessage::user("") }
    }

    /// An earlier answer of the model.
    pub fn assistant(text: impl Into<String>) -> ChatMessage {
        ChatMessage::new(Role::Assistant, text)
    }

    /// An earlier turn of the model that called tools (sent back before their results).
    pub fn assistant_tool_calls(calls: impl IntoIterator<Item = ChatToolCall>) -> ChatMessage {
        ChatMessage {
            role: Role::Assistant,
            content: None,
            tool_calls: calls.into_iter().collect(),
            tool_call_id: None,
        }
    }

    /// The result of the tool call with id `call_id` (see also [`ChatToolCall::result`]).
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage { tool_call_id: Some(call_id.into()), ..ChatMessage::new("tool", content) }
    }

    /// Who wrote it.
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// Its content, if any (an assistant turn of tool calls has none).
    pub fn content(&self) -> Option<&Content> {
        self.content.as_ref()
    }

    /// The tool calls of an assistant turn.
    pub fn tool_calls(&self) -> &[ChatToolCall] {
        &self.tool_calls
    }

    /// The call a tool result answers.
    pub fn tool_call_id(&self) -> Option<&str> {
        self.tool_call_id.as_deref()
    }

    /// Checks the message is one the API takes; the error names message `at`.
    pub(crate) fn validate(&self, at: usize) -> crate::Result<()> {
        let bad = |what: &str| Err(crate::Error::invalid_input(format!("messages[{at}] ({}): {what}", self.role)));
        if self.role.as_str().trim().is_empty() {
            return bad("the role is empty");
        }
        match &self.content {
            None if self.tool_calls.is_empty() => return bad("it has neither content nor tool calls"),
            Some(Content::Parts(parts)) if parts.is_empty() => return bad("it has an empty list of parts"),
            _ => {}
        }
        if self.tool_call_id.as_deref().is_some_and(|id| id.trim().is_empty()) {
            return bad("the tool result names no call (an empty tool_call_id)");
        }
        if self.role.as_str() == "tool" && self.tool_call_id.is_none() {
            return bad("a tool result must name its call (ChatMessage::tool_result(call_id, …))");
        }
        Ok(())
    }
}

impl Serialize for ChatMessage {
    /// The keys in the Python SDK's order; an assistant turn of tool calls has no `content`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("role", self.role.as_str())?;
        if let Some(content) = &self.content {
            map.serialize_entry("content", content)?;
        }
        if !self.tool_calls.is_empty() {
            map.serialize_entry("tool_calls", &self.tool_calls)?;
        }
        if let Some(id) = &self.tool_call_id {
            map.serialize_entry("tool_call_id", id)?;
        }
        map.end()
    }
}

impl From<&str> for ChatMessage {
    fn from(text: &str) -> Self {
        ChatMessage::user(text)
    }
}

impl From<String> for ChatMessage {
    fn from(text: String) -> Self {
        ChatMessage::user(text)
    }
}

impl From<&String> for ChatMessage {
    fn from(text: &String) -> Self {
        ChatMessage::user(text.as_str())
    }
}

impl From<&ChatMessage> for ChatMessage {
    /// A copy.
    fn from(m: &ChatMessage) -> Self {
        m.clone()
    }
}

impl From<&ChatChoice> for ChatMessage {
    /// The model's turn: its tool calls (echoed as received) if it made any, else its text.
    fn from(choice: &ChatChoice) -> Self {
        if choice.tool_calls().is_empty() {
            ChatMessage::new(choice.role().clone(), choice.text())
        } else {
            ChatMessage {
                role: choice.role().clone(),
                ..ChatMessage::assistant_tool_calls(choice.tool_calls().to_vec())
            }
        }
    }
}

impl From<&ChatResult> for ChatMessage {
    /// The first choice's turn (see `From<&ChatChoice>`).
    fn from(result: &ChatResult) -> Self {
        match result.choices().first() {
            Some(choice) => choice.into(),
            None => ChatMessage::assistant(""),
        }
    }
}

impl From<ChatResult> for ChatMessage {
    fn from(result: ChatResult) -> Self {
        (&result).into()
    }
}

/// Anything that can be sent as the conversation: one message (a `&str`, a [`ChatMessage`],
/// a [`ChatResult`]) or a sequence of them.
pub trait IntoChatMessages {
    /// The messages in order.
    fn into_chat_messages(self) -> Vec<ChatMessage>;
}

macro_rules! single_message {
    ($($t:ty),* $(,)?) => {$(
        impl IntoChatMessages for $t {
            fn into_chat_messages(self) -> Vec<ChatMessage> {
                vec![ChatMessage::from(self)]
            }
        }
    )*};
}

single_message!(&str, String, &String, ChatMessage, &ChatMessage, ChatResult, &ChatResult, &ChatChoice);

impl<M: Into<ChatMessage>> IntoChatMessages for Vec<M> {
    fn into_chat_messages(self) -> Vec<ChatMessage> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<M: Into<ChatMessage>, const N: usize> IntoChatMessages for [M; N] {
    fn into_chat_messages(self) -> Vec<ChatMessage> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<M> IntoChatMessages for &[M]
where
    for<'a> &'a M: Into<ChatMessage>,
{
    fn into_chat_messages(self) -> Vec<ChatMessage> {
        self.iter().map(Into::into).collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn messages_serialize_like_the_python_sdk_sends_them() {
        let v = |m: ChatMessage| serde_json::to_value(m).unwrap();
        assert_eq!(v("hello".into()), json!({"role": "user", "content": "hello"}));
        assert_eq!(
            v(ChatMessage::tool_result("c1", "-5")),
            json!({"role": "tool", "content": "-5", "tool_call_id": "c1"})
        );
        let parts =
            ChatMessage::user_parts([ContentPart::text("what is it"), ContentPart::image("image/png", [1, 2, 3])]);
        let back: ChatMessage = serde_json::from_value(v(ChatMessage::user("hi"))).unwrap();
        assert_eq!(back, ChatMessage::user("hi"));
        assert!(ChatMessage::assistant_tool_calls([]).validate(0).is_err());
        assert!(ChatMessage::tool_result("", "x").validate(0).is_err());
        assert!(ChatMessage::user_parts([]).validate(0).is_err());
        assert_eq!(
            v(parts),
            json!({"role": "user", "content": [
                {"type": "text", "text": "what is it"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AQID"}}
            ]})
        );
    }
}
