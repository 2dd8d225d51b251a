//! Completion results: alternatives, statuses, usage, tokens.

use serde::{Deserialize, Serialize};
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use super::role::Role;
use crate::tools::ToolCall;

/// Why an alternative ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum AlternativeStatus {
    /// Not set by the server.
    Unspecified,
    /// A streamed chunk; more follow.
    Partial,
    /// Stopped at the token limit (`max_tokens`).
    TruncatedFinal,
    /// Finished normally.
    Final,
    /// Withheld or replaced by content moderation.
    ContentFilter,
    /// The model asks the caller to run tools (see [`Alternative::tool_calls`]).
    ToolCalls,
    /// A status this SDK version does not know (its wire number).
    Unknown(i32),
}

impl AlternativeStatus {
    pub(crate) fn from_proto(v: i32) -> AlternativeStatus {
        use pb::alternative::AlternativeStatus as S;
        match S::try_from(v) {
            Ok(S::Unspecified) => AlternativeStatus::Unspecified,
            Ok(S::Partial) => AlternativeStatus::Partial,
            Ok(S::TruncatedFinal) => AlternativeStatus::TruncatedFinal,
            Ok(S::Final) => AlternativeStatus::Final,
            Ok(S::ContentFilter) => AlternativeStatus::ContentFilter,
            Ok(S::ToolCalls) => AlternativeStatus::ToolCalls,
            Err(_) => AlternativeStatus::Unknown(v),
        }
    }

    /// True for every status that ends an alternative (anything but `Partial`/`Unspecified`).
    pub fn is_final(self) -> bool {
        !matches!(self, AlternativeStatus::Partial | AlternativeStatus::Unspecified)
    }
}

/// Token counts of a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Tokens of the prompt (chat template included).
    pub input_text_tokens: u64,
    /// Tokens generated (reasoning included).
    pub completion_tokens: u64,
    /// Input plus completion.
    pub total_tokens: u64,
    /// Tokens spent on hidden reasoning (0 when reasoning is off or not reported).
    pub reasoning_tokens: u64,
}

impl Usage {
    pub(crate) fn from_proto(u: Option<&pb::ContentUsage>) -> Usage {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        u.map(|u| Usage {
            input_text_tokens: n(u.input_text_tokens),
            completion_tokens: n(u.completion_tokens),
            total_tokens: n(u.total_tokens),
            reasoning_tokens: u.completion_tokens_details.as_ref().map_or(0, |d| n(d.reasoning_tokens)),
        })
        .unwrap_or_default()
    }
}

/// One generated answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    role: Role,
    text: String,
    status: AlternativeStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall>,
}

impl Alternative {
    pub(crate) fn from_proto(a: pb::Alternative) -> Alternative {
        use pb::message::Content;
        let status = AlternativeStatus::from_proto(a.status);
        let (role, content) = match a.message {
            Some(m) => (Role::parse(&m.role), m.content),
            None => (Role::Assistant, None),
        };
        let (text, tool_calls) = match content {
            Some(Content::Text(t)) => (t, Vec::new()),
            Some(Content::ToolCallList(list)) => {
                (String::new(), list.tool_calls.iter().map(ToolCall::from_proto).collect())
            }
            _ => (String::new(), Vec::new()),
        };
        Alternative { role, tool_calls, text, status }
    }

    /// The author, normally `assistant`.
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// The text (empty when the model asked for tool calls).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The status.
    pub fn status(&self) -> AlternativeStatus {
        self.status
    }

    /// Tool calls the model asks for (empty unless the status is `ToolCalls`).
    pub fn tool_calls(&self) -> &[ToolCall] {
        &self.tool_calls
    }
}

/// The result of a completion: alternatives (the API returns one), usage and model version.
/// The shortcut accessors read alternative 0. Serializable, e.g. to cache answers or keep a
/// conversation; a deserialized result sent back as history echoes its tool calls as well.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionResult {
    alternatives: Vec<Alternative>,
    usage: Usage,
    model_version: String,
}

impl CompletionResult {
    pub(crate) fn from_proto(r: pb::CompletionResponse) -> CompletionResult {
        CompletionResult {
            usage: Usage::from_proto(r.usage.as_ref()),
            alternatives: r.alternatives.into_iter().map(Alternative::from_proto).collect(),
            model_version: r.model_version,
        }
    }

    /// All alternatives.
    pub fn alternatives(&self) -> &[Alternative] {
        &self.alternatives
    }

    /// Alternative 0, if the server sent any.
    pub fn alternative(&self) -> Option<&Alternative> {
        self.alternatives.first()
    }

    /// Text of alternative 0 (empty if there is none or it holds tool calls).
    pub fn text(&self) -> &str {
        self.alternative().map_or("", Alternative::text)
    }

    /// Role of alternative 0.
    pub fn role(&self) -> Option<&Role> {
        self.alternative().map(Alternative::role)
    }

    /// Status of alternative 0 (`Unspecified` if there is none).
    pub fn status(&self) -> AlternativeStatus {
        self.alternative().map_or(AlternativeStatus::Unspecified, Alternative::status)
    }

    /// Tool calls of alternative 0.
    pub fn tool_calls(&self) -> &[ToolCall] {
        self.alternative().map_or(&[], Alternative::tool_calls)
    }

    /// Token usage.
    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    /// Model version that produced the answer, e.g. `07.03.2024`.
    pub fn model_version(&self) -> &str {
        &self.model_version
    }
}

/// One token of [`GptModel::tokenize`](crate::completions::GptModel::tokenize).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Token {
    /// Vocabulary id.
    pub id: i64,
    /// Token text (`▁` marks a leading space in SentencePiece vocabularies).
    pub text: String,
    /// Control token of the chat template (`<s>`, `[SEP]`, …).
    pub special: bool,
}

impl Token {
    pub(crate) fn from_proto(t: &pb::Token) -> Token {
        Token { id: t.id, text: t.text.clone(), special: t.special }
    }
}
