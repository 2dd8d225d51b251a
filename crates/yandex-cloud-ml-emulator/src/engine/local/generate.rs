//! The decode loop: prompt in, one token per `next`. The model runs only when the consumer asks
//! for the next token, so a client that goes away stops it.

use std::sync::{Arc, atomic::Ordering};

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use llguidance::Matcher;
use tonic::Status;

use super::{
    Shared,
    slots::Slot,
    tokenizer::{SPECIAL, Utf8Pieces},
};

/// Prompt tokens the model takes in at once. Attention over a whole prompt at once needs
/// memory that grows with the square of its length (a 3,800-token prompt took the emulator
/// from 1.3 to 2.5 GB); in chunks it grows linearly, with the KV cache.
const PREFILL_CHUNK: usize = 512;

/// Tokens looked back on for the repetition penalty of sampled answers.
const PENALTY_WINDOW: usize = 64;
const PENALTY: f32 = 1.1;

fn failed(e: impl std::fmt::Display) -> Status {
    Status::internal(format!("the local model failed: {e}"))
}

enum Sampler {
    Greedy,
    Random(Box<LogitsProcessor>),
}

/// One generation: the model's KV cache for this conversation and where it stands.
pub(crate) struct Generator {
    shared: Arc<Shared>,
    model: candle_transformers::models::quantized_llama::ModelWeights,
    _slot: Slot,
    /// Logits of the next token, when computed.
    logits: Option<Vec<f32>>,
    /// The last token given out, not yet fed to the model.
    pending: Option<u32>,
    position: usize,
    recent: Vec<u32>,
    sampler: Sampler,
    matcher: Option<Matcher>,
    utf8: Utf8Pieces,
    /// Tokens that still fit in the context window.
    left: usize,
    done: bool,
}

impl Generator {
    /// Runs the prompt through the model (the prefill), ready for the first token.
    pub(crate) fn new(
        shared: Arc<Shared>,
        slot: Slot,
        prompt: &[u32],
        temperature: f64,
        seed: u64,
        matcher: Option<Matcher>,
    ) -> Result<Generator, Status> {
        let mut model = shared.template.clone();
        let mut logits = Vec::new();
        for (i, chunk) in prompt.chunks(PREFILL_CHUNK).enumerate() {
            let input = Tensor::new(chunk, &Device::Cpu).and_then(|t| t.unsqueeze(0)).map_err(failed)?;
            let last = model.forward(&input, i * PREFILL_CHUNK).and_then(|l| l.squeeze(0));
            logits = last.and_then(|l| l.to_vec1()).map_err(failed)?;
        }
        if logits.is_empty() {
            return Err(Status::invalid_argument("the prompt is empty"));
        }
        let sampler = if temperature <= 0.0 {
            Sampler::Greedy
        } else {
            Sampler::Random(Box::new(LogitsProcessor::from_sampling(
                seed,
                Sampling::TopKThenTopP { k: 40, p: 0.95, temperature },
            )))
        };
        let left = shared.context.saturating_sub(prompt.len());
        Ok(Generator {
            shared,
            model,
            _slot: slot,
            logits: Some(logits),
            pending: None,
            position: prompt.len(),
            recent: Vec::new(),
            sampler,
            matcher,
            utf8: Utf8Pieces::default(),
            left,
            done: false,
        })
    }

    /// Stops after at most `n` more tokens.
    pub(crate) fn limit(mut self, n: usize) -> Generator {
        self.left = self.left.min(n);
        self
    }

    /// The next token, or `None` at the end of the answer.
    fn step(&mut self) -> Result<Option<u32>, Status> {
        if self.done || self.left == 0 {
            return Ok(None);
        }
        if let Some(token) = self.pending.take() {
            let input = Tensor::new(&[token], &Device::Cpu).and_then(|t| t.unsqueeze(0)).map_err(failed)?;
            let logits = self.model.forward(&input, self.position).and_then(|l| l.squeeze(0));
            self.logits = Some(logits.and_then(|l| l.to_vec1()).map_err(failed)?);
            self.position += 1;
        }
        let Some(mut logits) = self.logits.take() else { return Ok(None) };
        if let Some(matcher) = &mut self.matcher {
            let mask = matcher.compute_mask().map_err(super::constrain::refused)?;
            let mut masked = vec![f32::NEG_INFINITY; logits.len()];
            mask.iter_set_entries(|i| {
                if let Some(l) = logits.get(i) {
                    masked[i] = *l;
                }
            });
            logits = masked;
        }
        let token = match &mut self.sampler {
            Sampler::Greedy => logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i as u32),
            Sampler::Random(processor) => {
                let start = self.recent.len().saturating_sub(PENALTY_WINDOW);
                for &t in &self.recent[start..] {
                    if let Some(l) = logits.get_mut(t as usize) {
                        *l = if *l >= 0.0 { *l / PENALTY } else { *l * PENALTY };
                    }
                }
                let n = logits.len();
                let tensor = Tensor::from_vec(logits, n, &Device::Cpu).map_err(failed)?;
                processor.sample(&tensor).map_err(failed)?
            }
        };
        let special = self.shared.tokenizer.bytes.get(token as usize).and_then(|b| b.first()) == Some(&SPECIAL);
        if special || self.shared.stop.contains(&token) {
            self.done = true;
            return Ok(None);
        }
        if let Some(matcher) = &mut self.matcher {
            matcher.consume_token(token).map_err(super::constrain::refused)?;
            // A complete value ends the answer: nothing else may follow it.
            self.done = matcher.is_stopped();
        }
        self.pending = Some(token);
        self.recent.push(token);
        self.left -= 1;
        self.shared.generated.fetch_add(1, Ordering::Relaxed);
        Ok(Some(token))
    }
}

impl Iterator for Generator {
    type Item = Result<String, Status>;

    fn next(&mut self) -> Option<Result<String, Status>> {
        match self.step() {
            Ok(Some(token)) => {
                let bytes = self.shared.tokenizer.bytes.get(token as usize).map_or(&[][..], |b| b.as_slice());
                Some(Ok(self.utf8.push(bytes)))
            }
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
