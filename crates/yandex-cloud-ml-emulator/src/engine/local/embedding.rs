//! A real sentence-embedding model: a BERT encoder in the sentence-transformers layout (e.g.
//! all-MiniLM-L6-v2: `model.safetensors`, `config.json`, `tokenizer.json`,
//! `sentence_bert_config.json`) run with candle, mean pooling over the tokens and L2
//! normalization, as its pooling configuration says. It answers in its own size only, for
//! every embedding model name (documents and queries alike).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::Tokenizer;

use crate::engine::embedding::{Embedder, normalize};

/// A loaded sentence-embedding model.
pub struct SentenceEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
    max_tokens: usize,
    version: String,
}

impl std::fmt::Debug for SentenceEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEmbedder").field("dim", &self.dim).field("version", &self.version).finish()
    }
}

fn read(dir: &Path, name: &str) -> Result<String, String> {
    std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
}

impl SentenceEmbedder {
    /// Loads the model in `dir`; every problem names the file and what is wrong with it.
    pub fn load(dir: &Path) -> Result<SentenceEmbedder, String> {
        if !dir.is_dir() {
            return Err(format!(
                "{} is not a directory: give the directory of a sentence-transformers model \
                 (scripts/fetch-embedding-model.sh fetches all-MiniLM-L6-v2)",
                dir.display()
            ));
        }
        let config: Config = serde_json::from_str(&read(dir, "config.json")?)
            .map_err(|e| format!("{}: not a BERT configuration: {e}", dir.join("config.json").display()))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| format!("{}: {e}", dir.join("tokenizer.json").display()))?;
        // The file pads every text to a fixed length: pooling must see the text's tokens only.
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| format!("tokenizer: {e}"))?;
        let weights = dir.join("model.safetensors");
        // SAFETY: the file is memory-mapped read-only; the emulator does not change it while
        // it runs (as with any memory-mapped model file, another program must not either).
        let vb = unsafe {
            candle_nn::VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &Device::Cpu)
                .map_err(|e| format!("{}: {e}", weights.display()))?
        };
        let model =
            BertModel::load(vb, &config).map_err(|e| format!("{}: not a BERT model: {e}", weights.display()))?;
        // Mean pooling is what this embedder does: a model configured otherwise is refused.
        if let Ok(pooling) = read(dir, "1_Pooling/config.json") {
            let mean = serde_json::from_str::<serde_json::Value>(&pooling)
                .ok()
                .is_some_and(|v| v["pooling_mode_mean_tokens"] == true && v["pooling_mode_cls_token"] != true);
            if !mean {
                return Err(format!(
                    "{}: only mean pooling over the tokens is supported",
                    dir.join("1_Pooling/config.json").display()
                ));
            }
        }
        // sentence-transformers embeds at most `max_seq_length` tokens.
        let max_tokens = read(dir, "sentence_bert_config.json")
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["max_seq_length"].as_u64())
            .map_or(config.max_position_embeddings, |n| n as usize);
        let version = dir.file_name().map_or_else(|| "local".to_owned(), |n| n.to_string_lossy().into_owned());
        let embedder = SentenceEmbedder { model, tokenizer, dim: config.hidden_size, max_tokens, version };
        // A model that cannot embed a word is refused now, not at the first request.
        embedder.vector("ready").map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(embedder)
    }

    fn vector(&self, text: &str) -> Result<Vec<f64>, String> {
        let encoding = self.tokenizer.encode(text, true).map_err(|e| format!("tokenizing: {e}"))?;
        let ids = Tensor::new(encoding.get_ids(), &Device::Cpu).and_then(|t| t.unsqueeze(0));
        let run = ids.and_then(|ids| {
            let types = ids.zeros_like()?;
            let hidden = self.model.forward(&ids, &types, None)?;
            // Every position is a real token (no padding): the mean is over all of them.
            hidden.mean(1)?.squeeze(0)?.to_vec1::<f32>()
        });
        let mut v: Vec<f64> = run.map_err(|e| format!("running the model: {e}"))?.into_iter().map(f64::from).collect();
        normalize(&mut v);
        Ok(v)
    }
}

impl Embedder for SentenceEmbedder {
    fn embed(&self, _model: &str, text: &str, _dim: usize) -> Result<Vec<f64>, String> {
        self.vector(text)
    }

    fn default_dim(&self) -> usize {
        self.dim
    }

    fn accepts_dim(&self, dim: usize) -> bool {
        dim == self.dim
    }

    fn sizes(&self) -> String {
        format!("{} only", self.dim)
    }

    fn model_version(&self) -> &str {
        &self.version
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    fn count_tokens(&self, text: &str) -> Option<usize> {
        self.tokenizer.encode(text, true).ok().map(|e| e.len())
    }
}
