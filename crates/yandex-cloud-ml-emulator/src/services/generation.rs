//! Runs an engine for one request. Validation, the prompt's tokenization and the engine's
//! decision happen on a blocking thread; text tokens are then pulled in chunks, each chunk on a
//! blocking thread, only when the consumer asks for the next response. So CPU-heavy work never
//! runs on the async reactor, memory holds only the cumulative answer, and generation stops as
//! soon as the consumer stops (client gone, deadline passed, operation cancelled): a pull
//! whose caller goes away mid-way stops at the next token, not at the end of the answer.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use serde_json::Value;
use tonic::Status;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use crate::{
    engine::{EndReason, Ending, Engine, Reply, TokenStream, tokenizer::message_text},
    state::State,
    validate,
};

use pb::alternative::AlternativeStatus as S;

/// What the answer turned out to be, once known.
enum Body {
    /// Text still being generated (`None` once the stream is exhausted or dropped).
    Text(Option<std::iter::Peekable<TokenStream>>),
    ToolCalls(Vec<(String, Value)>),
    ContentFilter(String),
    /// The engine refused to answer; reported when the answer is asked for.
    Failed(Status),
}

/// A generation under way.
pub(crate) struct Generation {
    model_version: String,
    input_tokens: i64,
    reasoning_tokens: i64,
    /// Largest number of completion tokens (`max_tokens`, or the model's limit when unset).
    limit: usize,
    produced: usize,
    /// Tokens already handed out in a response.
    emitted: usize,
    text: String,
    body: Body,
    status: S,
    /// Whether the final response was handed out.
    finished: bool,
    /// Whether token pulls are cheap enough to run on the reactor.
    inline: bool,
    /// Cleared when the caller of a pull goes away while it runs on a blocking thread.
    wanted: Arc<AtomicBool>,
    /// For a real model: the tokens so far (hashed), watched for an answer that loops.
    loop_guard: Option<LoopGuard>,
    /// How a relayed answer ended (the upstream engine's).
    ending: Option<Ending>,
}

/// Requests whose text is at most this size, for an engine whose work is cheap, are answered
/// on the reactor: their whole answer costs microseconds, less than a thread hop.
const INLINE_REQUEST_BYTES: usize = 16 * 1024;

impl Generation {
    /// Validates `request`, tokenizes the prompt and lets the engine decide, then generates
    /// the first `first_tokens` tokens, all off the reactor. Validation errors are returned
    /// here; the engine's refusals too, unless `defer_refusal` keeps them for
    /// [`finish`](Self::finish) (an operation fails with them instead of its call).
    pub(crate) async fn start(
        state: &Arc<State>,
        request: pb::CompletionRequest,
        first_tokens: usize,
        defer_refusal: bool,
    ) -> Result<Generation, Status> {
        let inline = state.engine.is_cheap() && request_bytes(&request) <= INLINE_REQUEST_BYTES;
        let state = state.clone();
        let wanted = Arc::new(AtomicBool::new(true));
        let flag = wanted.clone();
        run(inline, &wanted, move || {
            let engine = state.engine.clone();
            let checked = validate::completion(&state, &request, engine.tokenizer())?;
            // A structured answer is not watched for loops: cut, it would not parse.
            let free_text = request.response_format.is_none();
            let options = request.completion_options.unwrap_or_default();
            let reasoning_tokens = options
                .reasoning_options
                .filter(|r| r.mode == pb::reasoning_options::ReasoningMode::EnabledHidden as i32)
                .map_or(0, |_| 16 + checked.input_tokens as i64 / 4);
            let cap = engine.answer_cap();
            let limit = options
                .max_tokens
                .filter(|m| *m > 0)
                .unwrap_or_else(|| cap.map_or(state.config.max_tokens_limit, |c| i64::try_from(c).unwrap_or(i64::MAX)));
            let reply = match engine.reply(&checked.model, &request) {
                Ok(reply) => Ok(reply),
                Err(status) if defer_refusal => Err(status),
                Err(status) => return Err(status),
            };
            let mut ending = None;
            let (body, status, produced) = match reply {
                Err(status) => (Body::Failed(status), S::Final, 0),
                Ok(reply) => match reply {
                    Reply::Text(tokens) => (Body::Text(Some(tokens.peekable())), S::Partial, 0),
                    Reply::Relayed(pieces, end) => {
                        ending = Some(end);
                        (Body::Text(Some(pieces.peekable())), S::Partial, 0)
                    }
                    Reply::ToolCalls(calls) => {
                        let list = tool_call_list(&calls)?;
                        let message = pb::Message {
                            role: String::new(),
                            content: Some(pb::message::Content::ToolCallList(list)),
                        };
                        let spent = engine.tokenizer().tokenize(&message_text(&message)).len();
                        (Body::ToolCalls(calls), S::ToolCalls, spent)
                    }
                    Reply::ContentFilter(text) => {
                        let spent = engine.tokenizer().tokenize(&text).len();
                        (Body::ContentFilter(text), S::ContentFilter, spent)
                    }
                },
            };
            let mut generation = Generation {
                model_version: engine.model_version().to_owned(),
                input_tokens: checked.input_tokens as i64,
                reasoning_tokens,
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
                produced,
                emitted: 0,
                text: String::new(),
                body,
                status,
                finished: false,
                inline,
                wanted: flag,
                loop_guard: cap.filter(|_| free_text).map(|_| LoopGuard::default()),
                ending,
            };
            generation.generate(first_tokens)?;
            Ok(generation)
        })
        .await
    }

    /// True once the last response was handed out (or the generation failed).
    pub(crate) fn is_done(&self) -> bool {
        self.finished
    }

    /// Pulls up to `n` more tokens on this thread (a blocking one). Looks one token ahead, so
    /// the chunk that ends the answer is known to be the last; except for a relayed answer,
    /// whose next piece may be far off: its chunk goes out at once, and its end shows as a
    /// final chunk of its own.
    fn generate(&mut self, n: usize) -> Result<(), Status> {
        let Body::Text(Some(tokens)) = &mut self.body else { return Ok(()) };
        let mut taken = 0;
        let mut exhausted = false;
        while taken < n && self.produced < self.limit {
            if !self.wanted.load(Ordering::Relaxed) {
                return Err(Status::cancelled("nobody waits for this answer any more"));
            }
            match tokens.next() {
                Some(piece) => {
                    let piece = piece?;
                    self.text.push_str(&piece);
                    self.produced += 1;
                    taken += 1;
                    if self.loop_guard.as_mut().is_some_and(|g| g.looping_after(&piece)) {
                        // The model repeats itself and would until the cap: cut it here.
                        self.status = S::TruncatedFinal;
                        self.body = Body::Text(None);
                        return Ok(());
                    }
                }
                None => {
                    exhausted = true;
                    break;
                }
            }
        }
        if !exhausted && taken > 0 && self.ending.is_some() && self.produced < self.limit {
            return Ok(());
        }
        let more = !exhausted && tokens.peek().is_some();
        if !more || self.produced >= self.limit {
            // At the limit the answer was cut if the model had more to say; a relayed answer
            // says itself how it ended.
            self.status = match (more, self.ending.as_ref().and_then(Ending::get)) {
                (true, _) | (false, Some(EndReason::Length)) => S::TruncatedFinal,
                (false, Some(EndReason::ContentFilter)) => S::ContentFilter,
                (false, None) => S::Final,
            };
            self.body = Body::Text(None);
        }
        Ok(())
    }

    /// Pulls up to `n` more tokens off the reactor.
    async fn pull(mut self, n: usize) -> Result<Generation, Status> {
        if !matches!(self.body, Body::Text(Some(_))) {
            return Ok(self);
        }
        let wanted = self.wanted.clone();
        // A relaying engine blocks for its next piece; when nobody waits, it is told to stop.
        let ending = self.ending.clone();
        let abandoned = super::Disarm::new(move || ending.iter().for_each(Ending::abandon));
        let pulled = run(self.inline, &wanted, move || {
            self.generate(n)?;
            Ok(self)
        })
        .await;
        abandoned.disarm();
        pulled
    }

    /// The next response of a stream: a cumulative `PARTIAL` chunk of `chunk_tokens` more
    /// tokens, then the final response; `None` after that.
    pub(crate) async fn next_chunk(
        self,
        chunk_tokens: usize,
    ) -> Option<(Result<pb::CompletionResponse, Status>, Generation)> {
        if self.finished {
            return None;
        }
        let mut this = self;
        if this.status == S::Partial && this.produced == this.emitted {
            this = match this.pull(chunk_tokens.max(1)).await {
                Ok(g) => g,
                Err(status) => return Some((Err(status), Generation::failed())),
            };
            if this.status == S::Partial && this.produced == this.emitted {
                // Generation made no progress without ending: end it rather than loop.
                this.status = S::Final;
            }
        }
        this.emitted = this.produced;
        let response = this.response();
        this.finished = this.status != S::Partial;
        Some((Ok(response), this))
    }

    /// Generates to the end and returns the final response.
    pub(crate) async fn finish(self) -> Result<pb::CompletionResponse, Status> {
        let mut this = self.pull(usize::MAX).await?;
        if let Body::Failed(status) = this.body {
            return Err(status);
        }
        if this.status == S::Partial {
            this.status = S::Final;
        }
        this.finished = true;
        Ok(this.response())
    }

    fn failed() -> Generation {
        Generation {
            model_version: String::new(),
            input_tokens: 0,
            reasoning_tokens: 0,
            limit: 0,
            produced: 0,
            emitted: 0,
            text: String::new(),
            body: Body::Text(None),
            status: S::Final,
            finished: true,
            ending: None,
            inline: true,
            wanted: Arc::new(AtomicBool::new(false)),
            loop_guard: None,
        }
    }

    /// The response for the answer so far.
    fn response(&self) -> pb::CompletionResponse {
        let content = match &self.body {
            // Validated when the generation started.
            Body::ToolCalls(calls) => pb::message::Content::ToolCallList(tool_call_list(calls).unwrap_or_default()),
            Body::ContentFilter(text) => pb::message::Content::Text(text.clone()),
            Body::Text(_) | Body::Failed(_) => pb::message::Content::Text(self.text.clone()),
        };
        let completion = self.produced as i64 + self.reasoning_tokens;
        pb::CompletionResponse {
            alternatives: vec![pb::Alternative {
                message: Some(pb::Message { role: "assistant".into(), content: Some(content) }),
                status: self.status as i32,
            }],
            usage: Some(pb::ContentUsage {
                input_text_tokens: self.input_tokens,
                completion_tokens: completion,
                total_tokens: self.input_tokens + completion,
                completion_tokens_details: Some(pb::content_usage::CompletionTokensDetails {
                    reasoning_tokens: self.reasoning_tokens,
                }),
            }),
            model_version: self.model_version.clone(),
        }
    }
}

/// Watches a real model's answer for a loop: the same run of tokens over and over (greedy
/// decoding of a small model falls into such loops and would repeat them up to the cap). A loop
/// is a period of 1 to 64 tokens repeated at least 3 times and over at least 48 tokens, so
/// ordinary repetition (a list's dashes, a refrain) is left alone.
#[derive(Default)]
struct LoopGuard {
    tokens: Vec<u64>,
}

impl LoopGuard {
    const LONGEST_PERIOD: usize = 64;
    const SHORTEST_LOOP: usize = 48;

    /// Records one more token; true when the answer now ends in a loop.
    fn looping_after(&mut self, piece: &str) -> bool {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        self.tokens.push(BuildHasherDefault::<DefaultHasher>::default().hash_one(piece));
        let t = &self.tokens;
        (1..=Self::LONGEST_PERIOD).any(|period| {
            let repeats = Self::SHORTEST_LOOP.div_ceil(period).max(3);
            let span = repeats * period;
            span <= t.len() && (t.len() - span + period..t.len()).all(|i| t[i] == t[i - period])
        })
    }
}

/// Runs `work` here when it is cheap, otherwise on a blocking thread. A blocking thread cannot
/// be stopped from outside, so if this future is dropped (the client cancelled, its deadline
/// passed, the operation was cancelled) `wanted` is cleared and the work stops at its next token.
async fn run<T: Send + 'static>(
    inline: bool,
    wanted: &Arc<AtomicBool>,
    work: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    if inline {
        return work();
    }
    let abandoned = super::Disarm::new(|| wanted.store(false, Ordering::Relaxed));
    let done = tokio::task::spawn_blocking(work).await;
    abandoned.disarm();
    done.unwrap_or_else(|e| Err(Status::internal(format!("generation failed: {e}"))))
}

/// Bytes of the request as encoded: a cheap bound on the work it asks for.
fn request_bytes(request: &pb::CompletionRequest) -> usize {
    prost::Message::encoded_len(request)
}

/// Tool calls on the wire; arguments nested too deeply for the API are an error.
fn tool_call_list(calls: &[(String, Value)]) -> Result<pb::ToolCallList, Status> {
    let tool_calls = calls
        .iter()
        .map(|(name, arguments)| {
            let arguments = match arguments {
                Value::Object(o) => Some(
                    yandex_cloud_ml_proto::json::object_to_struct(o)
                        .map_err(|e| Status::internal(format!("the arguments of the call to `{name}` are {e}")))?,
                ),
                _ => None,
            };
            Ok(pb::ToolCall {
                tool_call_type: Some(pb::tool_call::ToolCallType::FunctionCall(pb::FunctionCall {
                    name: name.clone(),
                    arguments,
                })),
            })
        })
        .collect::<Result<_, Status>>()?;
    Ok(pb::ToolCallList { tool_calls })
}

#[cfg(test)]
mod tests {
    use super::LoopGuard;

    /// The token at which the guard first sees a loop, if it does.
    fn loop_found(tokens: &[&str]) -> Option<usize> {
        let mut guard = LoopGuard::default();
        tokens.iter().position(|t| guard.looping_after(t))
    }

    #[test]
    fn loops_are_found_and_ordinary_repetition_is_not() {
        let phrase =
            ["Rome", ",", " a", " city", " of", " luxury", ",", " where", " the", " luxury", " of", " the", " past"];
        let looping: Vec<&str> = phrase.iter().copied().cycle().take(phrase.len() * 6).collect();
        // Three times 13 tokens are 39, under 48: the fourth repetition completes the loop.
        assert_eq!(loop_found(&looping), Some(4 * phrase.len() - 1));
        assert_eq!(loop_found(&["-"; 47]), None, "a rule of 47 dashes is not a loop");
        assert_eq!(loop_found(&["-"; 48]), Some(47));
        let counting: Vec<String> = (0..500).map(|i| format!(" {i}")).collect();
        assert_eq!(loop_found(&counting.iter().map(String::as_str).collect::<Vec<_>>()), None);
        let refrain = ["la", " la", " la", "!", " And", " then"];
        assert_eq!(loop_found(&refrain.repeat(2)), None, "a refrain twice");
    }
}
