//! Yandex streams restate the whole answer in every chunk; rig's writer wants fragments. The
//! decoder keeps what it has written and pushes only what is new.

use std::marker::PhantomData;

use rig_core::{
    ProviderError,
    completion::{FinishReason, Usage},
    message::{CallId, ToolName},
    operation::{Block, Completion, Finish},
    wire::{
        Decoder, Flow, Out, WireEvent,
        document::{Reassemble, Serves},
    },
};
use serde_json::Value;
use yandex_cloud_ml_sdk::completions::{AlternativeStatus, CompletionResult};

/// The wire index of the answer's text; calls take the indices after it.
const TEXT: usize = 0;

/// Decodes one reply: unary (one final result) or streamed (cumulative chunks).
#[derive(Debug, Default)]
pub struct YandexDecoder<'id> {
    /// The text written so far.
    text: String,
    text_open: bool,
    brand: PhantomData<fn(&'id ()) -> &'id ()>,
}

impl<'id> Decoder<'id, Completion, CompletionResult> for YandexDecoder<'id> {
    type Event = CompletionResult;

    fn classify(&self, frame: CompletionResult) -> WireEvent<CompletionResult> {
        WireEvent::Known(frame)
    }

    fn decode(&mut self, frame: CompletionResult, mut out: Out<'id, Completion>) -> Result<Flow, ProviderError> {
        // Like the Python adapter, only the first alternative is read.
        let Some(answer) = frame.alternative() else {
            return Err(ProviderError::Response("the reply has no alternatives".into()));
        };
        let status = answer.status();
        if status == AlternativeStatus::ContentFilter {
            self.filtered(&mut out, answer.text())?;
        } else {
            self.text(&mut out, answer.text())?;
        }
        let reason = match status {
            AlternativeStatus::Partial | AlternativeStatus::Unspecified => return Ok(Flow::More),
            AlternativeStatus::Final => FinishReason::Stop,
            AlternativeStatus::TruncatedFinal => FinishReason::Length,
            AlternativeStatus::ContentFilter => FinishReason::ContentFilter,
            AlternativeStatus::ToolCalls => FinishReason::ToolCalls,
            other => FinishReason::Other(format!("{other:?}")),
        };
        // The final chunk states every call; earlier chunks' calls are not trusted to be whole.
        for (i, call) in answer.tool_calls().iter().enumerate() {
            let name = ToolName::new(call.name())
                .map_err(|_| ProviderError::Response("the model called a tool without a name".into()))?;
            let arguments = call.function().map_or_else(|| "{}".to_owned(), |f| f.arguments.to_string());
            out.whole(TEXT + 1 + i, Block::Call { id: CallId::from_wire(""), name }, Value::Null, &arguments)?;
        }
        if self.text_open {
            out.finish(TEXT)?;
        }
        let model = Some(frame.model_version().to_owned()).filter(|v| !v.is_empty());
        Ok(out.end(Finish { usage: usage(&frame), reason: Some(reason), model, ..Finish::default() }))
    }
}

impl YandexDecoder<'_> {
    /// Writes what `text` adds to the text written so far. A chunk that repeats a prefix of it
    /// changes nothing (streamed text is never taken back); any other rewrite restates it.
    fn text(&mut self, out: &mut Out<'_, Completion>, text: &str) -> Result<(), ProviderError> {
        if self.text.starts_with(text) {
            return Ok(());
        }
        self.open(out)?;
        match text.strip_prefix(self.text.as_str()) {
            Some(suffix) => out.push(TEXT, suffix)?,
            None => out.restate(TEXT, text)?,
        }
        text.clone_into(&mut self.text);
        Ok(())
    }

    /// A content-filter chunk: its whole text is the delta, as the Python adapter passes it on,
    /// and the turn holds only that text.
    fn filtered(&mut self, out: &mut Out<'_, Completion>, text: &str) -> Result<(), ProviderError> {
        self.open(out)?;
        out.push(TEXT, text)?;
        out.restate(TEXT, text)
    }

    fn open(&mut self, out: &mut Out<'_, Completion>) -> Result<(), ProviderError> {
        if !self.text_open {
            out.open(TEXT, Block::Text, Value::Null)?;
            self.text_open = true;
        }
        Ok(())
    }
}

/// The usage of a reply; a reply without usage (all zeros) reports no counters.
fn usage(frame: &CompletionResult) -> Usage {
    let u = frame.usage();
    if u.total_tokens == 0 && u.input_text_tokens == 0 && u.completion_tokens == 0 {
        return Usage::new();
    }
    Usage::new()
        .input_tokens(u.input_text_tokens)
        .output_tokens(u.completion_tokens)
        .total_tokens(u.total_tokens)
        .reasoning_tokens(u.reasoning_tokens)
}

/// A streamed reply's document: the last (cumulative) chunk, the same JSON a unary reply
/// carries, so `raw` does not depend on the mode.
#[derive(Debug, Default)]
pub struct LastFrame(Option<CompletionResult>);

impl Serves<Completion> for LastFrame {}

impl Reassemble<CompletionResult> for LastFrame {
    fn absorb(&mut self, frame: &CompletionResult) {
        self.0 = Some(frame.clone());
    }

    fn finish(self) -> Value {
        self.0.and_then(|f| serde_json::to_value(f).ok()).unwrap_or(Value::Null)
    }
}
