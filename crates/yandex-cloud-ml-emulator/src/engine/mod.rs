//! Answer generation. An [`Engine`] decides *what* to answer; this module turns the answer
//! into wire responses exactly like the cloud shapes them: token usage from one tokenizer,
//! `max_tokens` truncation, cumulative streaming chunks, reasoning token counts.

pub(crate) mod schema;
pub(crate) mod synthetic;
pub(crate) mod tokenizer;

use serde_json::Value;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

/// What a model answers, before it is tokenized and shaped into responses.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A text answer.
    Text(String),
    /// Function calls: name and JSON arguments (an object).
    ToolCalls(Vec<(String, Value)>),
    /// The answer was withheld by moderation; the text replaces it.
    ContentFilter(String),
}

/// A model behind the emulator. Implementations must be deterministic for a given request so
/// tests can assert exact answers; the request is already validated.
pub trait Engine: Send + Sync + 'static {
    /// Reported as `model_version` in every response.
    fn model_version(&self) -> &str;
    /// Decides the answer to a completion request.
    fn reply(&self, request: &pb::CompletionRequest) -> Reply;
}

/// How replies are cut into streamed chunks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub chunk_tokens: usize,
}

/// Turns a reply into the responses of one call: cumulative `PARTIAL` chunks when streaming,
/// then the final response (always exactly one response without streaming).
pub(crate) fn render(
    reply: Reply,
    request: &pb::CompletionRequest,
    model_version: &str,
    shape: Shape,
) -> Vec<pb::CompletionResponse> {
    let options = request.completion_options.unwrap_or_default();
    let input_tokens = tokenizer::tokenize_chat(&request.messages).len() as i64;
    let reasoning = options
        .reasoning_options
        .filter(|r| r.mode == pb::reasoning_options::ReasoningMode::EnabledHidden as i32)
        .map_or(0, |_| 16 + input_tokens / 4);
    let response = |message: pb::message::Content, status: pb::alternative::AlternativeStatus, completion: i64| {
        pb::CompletionResponse {
            alternatives: vec![pb::Alternative {
                message: Some(pb::Message { role: "assistant".into(), content: Some(message) }),
                status: status as i32,
            }],
            usage: Some(pb::ContentUsage {
                input_text_tokens: input_tokens,
                completion_tokens: completion + reasoning,
                total_tokens: input_tokens + completion + reasoning,
                completion_tokens_details: Some(pb::content_usage::CompletionTokensDetails {
                    reasoning_tokens: reasoning,
                }),
            }),
            model_version: model_version.to_owned(),
        }
    };
    use pb::alternative::AlternativeStatus as S;
    match reply {
        Reply::ToolCalls(calls) => {
            let list = pb::ToolCallList {
                tool_calls: calls
                    .into_iter()
                    .map(|(name, arguments)| pb::ToolCall {
                        tool_call_type: Some(pb::tool_call::ToolCallType::FunctionCall(pb::FunctionCall {
                            name,
                            arguments: arguments.as_object().map(yandex_cloud_ml_proto::json::object_to_struct),
                        })),
                    })
                    .collect(),
            };
            let spent = tokenizer::tokenize(&tokenizer::message_text(&pb::Message {
                role: String::new(),
                content: Some(pb::message::Content::ToolCallList(list.clone())),
            }))
            .len() as i64;
            vec![response(pb::message::Content::ToolCallList(list), S::ToolCalls, spent)]
        }
        Reply::ContentFilter(text) => {
            let spent = tokenizer::tokenize(&text).len() as i64;
            vec![response(pb::message::Content::Text(text), S::ContentFilter, spent)]
        }
        Reply::Text(text) => {
            let mut tokens = tokenizer::tokenize(&text);
            let mut status = S::Final;
            if let Some(max) = options.max_tokens.filter(|m| *m > 0)
                && tokens.len() as i64 > max
            {
                tokens.truncate(max as usize);
                status = S::TruncatedFinal;
            }
            let mut out = Vec::new();
            if options.stream {
                let step = shape.chunk_tokens.max(1);
                let mut end = step;
                while end < tokens.len() {
                    let text = tokenizer::detokenize(&tokens[..end]);
                    out.push(response(pb::message::Content::Text(text), S::Partial, end as i64));
                    end += step;
                }
            }
            out.push(response(pb::message::Content::Text(tokenizer::detokenize(&tokens)), status, tokens.len() as i64));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(stream: bool, max_tokens: Option<i64>) -> pb::CompletionRequest {
        pb::CompletionRequest {
            model_uri: "gpt://f/yandexgpt/latest".into(),
            completion_options: Some(pb::CompletionOptions { stream, max_tokens, ..Default::default() }),
            messages: vec![pb::Message { role: "user".into(), content: Some(pb::message::Content::Text("hi".into())) }],
            ..Default::default()
        }
    }

    fn text(r: &pb::CompletionResponse) -> &str {
        match &r.alternatives[0].message.as_ref().unwrap().content {
            Some(pb::message::Content::Text(t)) => t,
            _ => panic!(),
        }
    }

    #[test]
    fn streams_cumulative_chunks_with_growing_usage_then_final() {
        let reply = Reply::Text("one two three four five six seven".into());
        let chunks = render(reply, &request(true, None), "v", Shape { chunk_tokens: 2 });
        assert_eq!(chunks.len(), 4);
        for pair in chunks.windows(2) {
            assert!(text(&pair[1]).starts_with(text(&pair[0])));
            assert!(pair[1].usage.unwrap().completion_tokens > pair[0].usage.unwrap().completion_tokens);
        }
        assert!(chunks[..3].iter().all(|c| c.alternatives[0].status == 1));
        assert_eq!(chunks[3].alternatives[0].status, 3);
        assert_eq!(text(&chunks[3]), "one two three four five six seven");
    }

    #[test]
    fn max_tokens_truncates() {
        let chunks =
            render(Reply::Text("one two three four".into()), &request(false, Some(2)), "v", Shape { chunk_tokens: 2 });
        assert_eq!(chunks.len(), 1);
        assert_eq!(text(&chunks[0]), "one two");
        assert_eq!(chunks[0].alternatives[0].status, 2);
        let u = chunks[0].usage.unwrap();
        assert_eq!((u.completion_tokens, u.total_tokens - u.input_text_tokens), (2, 2));
    }
}
