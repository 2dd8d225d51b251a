//! A real language model as an engine (feature `local-model`): any llama-architecture GGUF
//! (SmolLM2-135M-Instruct is the one the project fetches), run with candle on the CPU.
//!
//! * Text is generated token by token as the client reads; dropping the stream or cancelling
//!   the operation stops it and frees the model.
//! * Temperature 0 is greedy and reproducible; other temperatures sample with a seed derived
//!   from the request, so the same request gets the same answer.
//! * `json_object`/`json_schema` answers and tool calls are generated under a JSON-schema
//!   constraint (llguidance), so they always parse and validate.
//! * One model serves `slots` generations at a time; up to `queue` more wait; beyond that the
//!   emulator answers RESOURCE_EXHAUSTED, as the cloud does over quota.
//! * Tokenization, usage counts and the context limit come from the model's own tokenizer.

mod chat;
mod constrain;
pub(crate) mod embedding;
mod generate;
mod gguf;
mod slots;
mod tokenizer;

use std::{
    path::Path,
    sync::{Arc, atomic::AtomicU64},
};

use serde_json::{Value, json};
use tonic::Status;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use self::{generate::Generator, slots::Slots, tokenizer::GgufTokenizer};
use super::{Engine, ModelRef, Reply, Tokenizer};

/// How many generations run at once and how many may wait.
#[derive(Debug, Clone, Copy)]
pub struct LocalOptions {
    /// Generations running at once on the model (each on its own copy of the KV cache).
    pub slots: usize,
    /// Requests that may wait for a slot; more are refused with RESOURCE_EXHAUSTED.
    pub queue: usize,
    /// Tokens an answer (text or function call) may take when the request sets no
    /// `max_tokens`: a small model can ramble on for minutes.
    pub max_tokens: usize,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions { slots: 1, queue: 8, max_tokens: DEFAULT_MAX_TOKENS }
    }
}

/// The default of [`LocalOptions::max_tokens`].
const DEFAULT_MAX_TOKENS: usize = 512;

/// What every generation shares: the loaded model, its tokenizer and the grammar factory.
pub(crate) struct Shared {
    pub template: candle_transformers::models::quantized_llama::ModelWeights,
    pub tokenizer: GgufTokenizer,
    pub constraints: constrain::Constraints,
    pub stop: Vec<u32>,
    pub context: usize,
    pub slots: Arc<Slots>,
    /// Tokens an answer may take when the request sets no `max_tokens`.
    pub max_tokens: usize,
    /// Tokens generated since start, for stats.
    pub generated: AtomicU64,
}

/// The local-model engine.
pub struct LocalEngine {
    shared: Arc<Shared>,
    version: String,
}

impl std::fmt::Debug for LocalEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEngine").field("model_version", &self.version).finish_non_exhaustive()
    }
}

/// The temperature the cloud uses when a request sets none.
const DEFAULT_TEMPERATURE: f64 = 0.3;

impl LocalEngine {
    /// Loads a GGUF model. Every failure (missing file, not GGUF, truncated, another
    /// architecture or tokenizer) is a message naming the file and the problem.
    pub fn load(path: impl AsRef<Path>, options: LocalOptions) -> Result<LocalEngine, String> {
        let loaded = gguf::load(path.as_ref())?;
        let tokenizer = GgufTokenizer::new(loaded.tokenizer, loaded.default_system, loaded.bos)?;
        let constraints = constrain::Constraints::new(&tokenizer, loaded.eos)?;
        let version = format!("{} (local GGUF)", loaded.name);
        Ok(LocalEngine {
            shared: Arc::new(Shared {
                template: loaded.weights,
                tokenizer,
                constraints,
                stop: loaded.stop,
                context: loaded.context,
                slots: Arc::new(Slots::new(options.slots.max(1), options.queue)),
                max_tokens: options.max_tokens.max(1),
                generated: AtomicU64::new(0),
            }),
            version,
        })
    }

    /// A generation of `prompt`'s continuation, optionally constrained to `schema`.
    fn generate(
        &self,
        prompt: &str,
        request: &pb::CompletionRequest,
        schema: Option<Value>,
    ) -> Result<Generator, Status> {
        let ids = self.shared.tokenizer.prompt_ids(prompt);
        let context = self.shared.context;
        if ids.len() >= context {
            return Err(Status::invalid_argument(format!(
                "the prompt has {} tokens, more than the local model's context window of {context} tokens \
                 (prompt and answer together)",
                ids.len()
            )));
        }
        let matcher = schema.map(|s| self.shared.constraints.matcher(s)).transpose()?;
        let options = request.completion_options.unwrap_or_default();
        let temperature = options.temperature.unwrap_or(DEFAULT_TEMPERATURE);
        let slot = self.shared.slots.acquire()?;
        Generator::new(self.shared.clone(), slot, &ids, temperature, seed(request), matcher)
    }

    /// A function call generated under the tools' schema.
    fn call(
        &self,
        prompt: &str,
        request: &pb::CompletionRequest,
        tools: &[(String, String, Value)],
    ) -> Result<Reply, Status> {
        let schema = constrain::call_schema(tools);
        // A call is answered whole, so it is generated here, within the request's token limit.
        let limit = request
            .completion_options
            .as_ref()
            .and_then(|o| o.max_tokens)
            .filter(|n| *n > 0)
            .unwrap_or(self.shared.max_tokens as i64);
        let generator =
            self.generate(prompt, request, Some(schema))?.limit(usize::try_from(limit).unwrap_or(usize::MAX));
        let text: String = generator.collect::<Result<_, _>>()?;
        let call: Value = serde_json::from_str(&text).map_err(|_| {
            Status::resource_exhausted(format!(
                "the local model's function call did not end within {limit} tokens (the request's max_tokens or \
                 the context window); allow more tokens or shorten the conversation (it began: {})",
                text.chars().take(120).collect::<String>()
            ))
        })?;
        let name = call["name"].as_str().unwrap_or_default().to_owned();
        let arguments = match call.get("arguments") {
            Some(Value::Object(o)) => Value::Object(o.clone()),
            _ => json!({}),
        };
        Ok(Reply::ToolCalls(vec![(name, arguments)]))
    }
}

/// A seed from the request's content: the same request samples the same answer.
fn seed(request: &pb::CompletionRequest) -> u64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
    };
    for m in &request.messages {
        eat(m.role.as_bytes());
        eat(super::tokenizer::message_text(m).as_bytes());
    }
    hash
}

/// What `tool_choice` asks for.
enum Choice {
    None,
    Auto,
    Required,
    Function(String),
}

fn choice(request: &pb::CompletionRequest) -> Choice {
    use pb::tool_choice::{ToolChoice as C, ToolChoiceMode as M};
    match request.tool_choice.as_ref().and_then(|c| c.tool_choice.as_ref()) {
        Some(C::Mode(m)) if *m == M::None as i32 => Choice::None,
        Some(C::Mode(m)) if *m == M::Required as i32 => Choice::Required,
        Some(C::FunctionName(name)) => Choice::Function(name.clone()),
        _ => Choice::Auto,
    }
}

impl Engine for LocalEngine {
    fn model_version(&self) -> &str {
        &self.version
    }

    fn tokenizer(&self) -> &dyn Tokenizer {
        &self.shared.tokenizer
    }

    fn context_window(&self) -> Option<usize> {
        Some(self.shared.context)
    }

    fn generations_running(&self) -> usize {
        self.shared.slots.busy()
    }

    fn answer_cap(&self) -> Option<usize> {
        Some(self.shared.max_tokens)
    }

    fn check_format(&self, request: &pb::CompletionRequest) -> Result<(), Status> {
        match &request.response_format {
            Some(pb::completion_request::ResponseFormat::JsonSchema(s)) => {
                let schema = s.schema.as_ref().and_then(|s| yandex_cloud_ml_proto::json::struct_to_value(s).ok());
                self.shared.constraints.matcher(schema.unwrap_or_else(|| json!({}))).map(drop)
            }
            _ => Ok(()),
        }
    }

    fn tokens_generated(&self) -> u64 {
        self.shared.generated.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn reply(&self, _model: &ModelRef, request: &pb::CompletionRequest) -> Result<Reply, Status> {
        let mut tools = chat::tools(request);
        // After tool results the model answers in words; `none` offers no tools at all.
        let answered = matches!(
            request.messages.last().and_then(|m| m.content.as_ref()),
            Some(pb::message::Content::ToolResultList(_))
        );
        let choice = choice(request);
        if answered || matches!(choice, Choice::None) {
            tools.clear();
        }
        if let Choice::Function(name) = &choice {
            tools.retain(|(n, _, _)| n == name);
        }
        let system = self.shared.tokenizer.default_system();
        let prompt = chat::render(&request.messages, system, &tools, true);
        if !tools.is_empty() && matches!(choice, Choice::Required | Choice::Function(_)) {
            return self.call(&prompt, request, &tools);
        }
        use pb::completion_request::ResponseFormat as F;
        let schema = match &request.response_format {
            Some(F::JsonObject(true)) => Some(json!({"type": "object"})),
            Some(F::JsonSchema(s)) => Some(
                s.schema
                    .as_ref()
                    .and_then(|s| yandex_cloud_ml_proto::json::struct_to_value(s).ok())
                    .unwrap_or_else(|| json!({})),
            ),
            _ => None,
        };
        let mut generator = self.generate(&prompt, request, schema.clone())?;
        if tools.is_empty() || schema.is_some() {
            return Ok(Reply::Text(Box::new(generator)));
        }
        // Auto: the model chooses. An answer that opens like a call becomes a constrained call.
        let first = match generator.next() {
            Some(piece) => piece?,
            None => return Ok(Reply::Text(Box::new(std::iter::empty()))),
        };
        let opening = first.trim_start();
        if opening.starts_with('{') || opening.starts_with("<tool") {
            drop(generator);
            return self.call(&prompt, request, &tools);
        }
        Ok(Reply::Text(Box::new(std::iter::once(Ok(first)).chain(generator))))
    }
}
