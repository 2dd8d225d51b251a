//! Loading a GGUF file: checks that say what is wrong with a bad file, the tokenizer rebuilt
//! from the file's metadata, and the weights dequantized to F32.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::Path,
};

use candle_core::{
    Device,
    quantized::{GgmlDType, QTensor, gguf_file},
};
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};
use tokenizers::{
    AddedToken, Tokenizer,
    models::bpe::BPE,
    pre_tokenizers::{byte_level::ByteLevel, digits::Digits, sequence::Sequence},
};

/// Token type of control tokens in `tokenizer.ggml.token_type`.
const CONTROL: i32 = 3;

/// What a GGUF file gives the engine.
pub(crate) struct Loaded {
    pub name: String,
    pub tokenizer: Tokenizer,
    /// Tokens that end an answer (`<|im_end|>`, `<|endoftext|>`, the file's EOS).
    pub stop: Vec<u32>,
    pub eos: u32,
    /// The BOS token, when the file says to put it before every text.
    pub bos: Option<u32>,
    /// The system prompt the chat template adds when a conversation has none.
    pub default_system: Option<String>,
    /// Prompt plus answer, in tokens.
    pub context: usize,
    pub weights: ModelWeights,
}

/// Reads and checks `path`; every error names the file and what is wrong with it.
pub(crate) fn load(path: &Path) -> Result<Loaded, String> {
    let shown = path.display();
    let mut file = File::open(path).map_err(|e| format!("cannot open the model file {shown}: {e}"))?;
    let size = file.metadata().map_err(|e| format!("cannot read {shown}: {e}"))?.len();
    let mut magic = [0u8; 4];
    if file.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
        return Err(format!(
            "{shown} is not a GGUF file (it does not start with `GGUF`); give the path of a .gguf model"
        ));
    }
    file.seek(SeekFrom::Start(0)).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let content = gguf_file::Content::read(&mut file)
        .map_err(|e| format!("{shown} is not a readable GGUF file (truncated or corrupt header): {e}"))?;
    let text = |key: &str| content.metadata.get(key).and_then(|v| v.to_string().ok()).cloned();
    let architecture = text("general.architecture").unwrap_or_default();
    if architecture != "llama" {
        return Err(format!(
            "{shown} holds a `{architecture}` model; the local engine runs llama-architecture models \
             (SmolLM2, Llama, TinyLlama, …)"
        ));
    }
    for (name, info) in &content.tensor_infos {
        let bytes = info.shape.elem_count() / info.ggml_dtype.block_size() * info.ggml_dtype.type_size();
        let end = content.tensor_data_offset + info.offset + bytes as u64;
        if end > size {
            return Err(format!(
                "{shown} is truncated: tensor `{name}` ends at byte {end} but the file has {size} bytes; \
                 download it again"
            ));
        }
    }
    let (tokenizer, eos, stop) = tokenizer(&content).map_err(|e| format!("{shown}: {e}"))?;
    let flag = |key: &str| content.metadata.get(key).and_then(|v| v.to_bool().ok()).unwrap_or(false);
    let bos = content.metadata.get("tokenizer.ggml.bos_token_id").and_then(|v| v.to_u32().ok());
    let bos = bos.filter(|_| flag("tokenizer.ggml.add_bos_token"));
    let template = text("tokenizer.chat_template").unwrap_or_default();
    if !template.contains("<|im_start|>") {
        return Err(format!(
            "{shown}: the chat template is not ChatML (`<|im_start|>role`), the one format rendered here"
        ));
    }
    let context = content
        .metadata
        .get("llama.context_length")
        .and_then(|v| v.to_u32().ok())
        .map_or(MAX_SEQ_LEN, |n| (n as usize).min(MAX_SEQ_LEN));
    let weights = dequantized(&content, &mut file).map_err(|e| format!("{shown}: cannot load the weights: {e}"))?;
    Ok(Loaded {
        name: text("general.name").unwrap_or_else(|| "local-model".into()),
        tokenizer,
        stop,
        eos,
        bos,
        default_system: default_system(&template),
        context,
        weights,
    })
}

/// The byte-level BPE tokenizer the file describes (GPT-2 style, digits split one by one, the
/// control tokens special). candle's own GGUF tokenizer reads the `smollm` pre-tokenizer wrongly.
fn tokenizer(content: &gguf_file::Content) -> Result<(Tokenizer, u32, Vec<u32>), String> {
    let md = |key: &str| content.metadata.get(key).ok_or_else(|| format!("the tokenizer metadata `{key}` is missing"));
    let bad = |key: &str, e: &dyn std::fmt::Display| format!("the tokenizer metadata `{key}` is malformed: {e}");
    let model = md("tokenizer.ggml.model")?.to_string().map_err(|e| bad("tokenizer.ggml.model", &e))?;
    if model != "gpt2" {
        return Err(format!("tokenizer `{model}` is not supported; the local engine reads byte-level BPE (`gpt2`)"));
    }
    let tokens: Vec<String> = md("tokenizer.ggml.tokens")?
        .to_vec()
        .and_then(|v| v.iter().map(|t| t.to_string().cloned()).collect())
        .map_err(|e| bad("tokenizer.ggml.tokens", &e))?;
    let types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => {
            v.to_vec().and_then(|v| v.iter().map(|t| t.to_i32()).collect()).map_err(|e| bad("token_type", &e))?
        }
        None => vec![1; tokens.len()],
    };
    let merges: Vec<(String, String)> = md("tokenizer.ggml.merges")?
        .to_vec()
        .map_err(|e| bad("tokenizer.ggml.merges", &e))?
        .iter()
        .map(|m| {
            let m = m.to_string().map_err(|e| bad("tokenizer.ggml.merges", &e))?;
            m.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())).ok_or_else(|| bad("merges", &m))
        })
        .collect::<Result<_, _>>()?;
    let vocab: ahash::AHashMap<String, u32> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().map_err(|e| bad("tokenizer", &e))?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ])));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, t)| **t == CONTROL)
        .map(|(token, _)| AddedToken::from(token.clone(), true))
        .collect();
    tokenizer.add_special_tokens(specials).map_err(|e| bad("special tokens", &e))?;
    let eos = md("tokenizer.ggml.eos_token_id")?.to_u32().map_err(|e| bad("eos_token_id", &e))?;
    let mut stop = vec![eos];
    for end in ["<|im_end|>", "<|endoftext|>"] {
        if let Some(id) = tokenizer.token_to_id(end).filter(|id| !stop.contains(id)) {
            stop.push(id);
        }
    }
    Ok((tokenizer, eos, stop))
}

/// The system prompt a ChatML template inserts when the first message is not a system one.
fn default_system(template: &str) -> Option<String> {
    let start = "<|im_start|>system";
    let rest = &template[template.find(start)? + start.len()..];
    // The newline is written `\n` inside the template's string literal (or as a newline).
    let rest = rest.strip_prefix("\\n").or_else(|| rest.strip_prefix('\n'))?;
    let end = rest.find("<|im_end|>")?;
    Some(rest[..end].replace("\\n", "\n"))
}

/// The model with every weight dequantized to F32, chosen by measurement on the 2-core test
/// machine: the shipped Q4_1 weights run on candle's scalar kernels (prompts ~13 times slower,
/// and SmolLM2 then gets the capital of France wrong), and Q8_0 converted at load did not
/// finish a short answer in 3 minutes there, while F32 answers in about a second. The cost is
/// memory: 4 bytes a parameter (~1.3 GB peak for the 135M model).
fn dequantized(content: &gguf_file::Content, file: &mut File) -> candle_core::Result<ModelWeights> {
    let device = Device::Cpu;
    let mut tensors = Vec::with_capacity(content.tensor_infos.len());
    let mut bytes = 0;
    for name in content.tensor_infos.keys() {
        let tensor = content.tensor(file, name, &device)?;
        let tensor = if tensor.dtype() == GgmlDType::F32 {
            tensor
        } else {
            QTensor::quantize(&tensor.dequantize(&device)?, GgmlDType::F32)?
        };
        bytes += tensor.storage_size_in_bytes();
        tensors.push((name.clone(), tensor));
    }
    // candle turns F32 tensors into plain matrix products; a GGUF written back in memory with
    // them is read by the stock llama model. The writer aligns to 32 bytes, so the source's
    // alignment key is left out.
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .filter(|(k, _)| *k != "general.alignment" && !k.starts_with("tokenizer."))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut buffer = std::io::Cursor::new(Vec::with_capacity(bytes + (1 << 20)));
    gguf_file::write(&mut buffer, &metadata, &refs)?;
    drop(refs);
    drop(tensors);
    buffer.set_position(0);
    let f32_content = gguf_file::Content::read(&mut buffer)?;
    ModelWeights::from_gguf(f32_content, &mut buffer, &device)
}
