//! Fine-tuned models. Tuning in the emulator memorizes the training rows: a tuned model
//! answers a prompt that matches a training request (the same words, or at least
//! [`MATCH_THRESHOLD`] of them in common) with that row's response, and anything else like its
//! base model. Matching is deterministic: an exact match first, then the highest word overlap,
//! the earlier row on a tie.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
};

use serde::{Deserialize, Serialize};
use tonic::Status;
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1 as pb;

use super::{Engine, ModelRef, Reply, Tokenizer, synthetic::last_user_text};

/// Up to this many training rows in all, matching a prompt takes microseconds.
const CHEAP_EXAMPLES: usize = 10_000;

/// Training rows given to a real model as examples.
const FEW_SHOT: usize = 3;

/// Share of words (Jaccard index) a prompt must have in common with a training request.
pub(crate) const MATCH_THRESHOLD: f64 = 0.6;

fn words(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| seen.insert(w.clone()))
        .collect()
}

fn normalized(text: &str) -> String {
    words(text).join(" ")
}

/// What a tuned model learned, as saved in the data directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Learned {
    pub folder: String,
    pub base: String,
    pub version: String,
    /// Training requests (their last user message) and responses, in training order; for an
    /// embeddings model, anchors and positives.
    pub examples: Vec<(String, String)>,
    /// Set for a tuned embeddings model.
    #[serde(default)]
    pub embedding: Option<EmbeddingTuning>,
}

/// What a tuned embeddings model keeps besides its pairs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct EmbeddingTuning {
    /// The sizes it answers in (the largest by default); empty: the base model's.
    pub dims: Vec<usize>,
    /// The negatives of triplet rows, one per example (empty for pairs).
    pub negatives: Vec<String>,
}

/// A tuned model, indexed for matching.
#[derive(Debug)]
pub(crate) struct TunedModel {
    pub learned: Learned,
    exact: HashMap<String, usize>,
    /// Word → rows that contain it.
    index: HashMap<String, Vec<usize>>,
    word_counts: Vec<usize>,
    /// Bytes of the training rows it keeps (what the tuned-model budget counts).
    bytes: u64,
}

impl TunedModel {
    pub(crate) fn new(learned: Learned) -> TunedModel {
        let mut exact = HashMap::new();
        let mut index: HashMap<String, Vec<usize>> = HashMap::new();
        let mut word_counts = Vec::with_capacity(learned.examples.len());
        for (i, (prompt, second)) in learned.examples.iter().enumerate() {
            exact.entry(normalized(prompt)).or_insert(i);
            let mut w = words(prompt);
            word_counts.push(w.len());
            // An embeddings model finds its rows by the words of either text of a pair.
            if learned.embedding.is_some() {
                w.extend(words(second).into_iter().filter(|x| !w.contains(x)).collect::<Vec<_>>());
            }
            for word in w {
                index.entry(word).or_default().push(i);
            }
        }
        let negatives = learned.embedding.as_ref().map_or(0, |e| e.negatives.iter().map(|n| n.len() as u64).sum());
        let bytes = learned.examples.iter().map(|(p, r)| (p.len() + r.len()) as u64).sum::<u64>() + negatives;
        TunedModel { learned, exact, index, word_counts, bytes }
    }

    /// Bytes of the training rows it keeps.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The trained response for a prompt that matches a training request.
    pub(crate) fn answer(&self, prompt: &str) -> Option<&str> {
        let response = |i: usize| self.learned.examples[i].1.as_str();
        if let Some(&i) = self.exact.get(&normalized(prompt)) {
            return Some(response(i));
        }
        let asked = words(prompt);
        if asked.is_empty() {
            return None;
        }
        let mut common: HashMap<usize, usize> = HashMap::new();
        for word in &asked {
            for &row in self.index.get(word).into_iter().flatten() {
                *common.entry(row).or_default() += 1;
            }
        }
        let jaccard = |(row, shared): (usize, usize)| {
            (shared as f64 / (asked.len() + self.word_counts[row] - shared) as f64, row)
        };
        common
            .into_iter()
            .map(jaccard)
            .filter(|(score, _)| *score >= MATCH_THRESHOLD)
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, row)| response(row))
    }

    /// Up to `n` training rows closest to `prompt` (most words in common first), for a real
    /// model to answer from as examples.
    pub(crate) fn closest(&self, prompt: &str, n: usize) -> Vec<&(String, String)> {
        self.closest_rows(prompt, n).into_iter().map(|row| &self.learned.examples[row]).collect()
    }

    /// The indices of up to `n` training rows that share words with `text`, most shared first.
    pub(crate) fn closest_rows(&self, text: &str, n: usize) -> Vec<usize> {
        let mut common: HashMap<usize, usize> = HashMap::new();
        for word in words(text) {
            for &row in self.index.get(&word).into_iter().flatten() {
                *common.entry(row).or_default() += 1;
            }
        }
        let mut rows: Vec<(usize, usize)> = common.into_iter().collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        rows.into_iter().take(n).map(|(row, _)| row).collect()
    }

    /// Whether `model` names this tuned model (same folder and base model).
    fn serves(&self, model: &ModelRef) -> bool {
        self.learned.folder == model.folder && self.learned.base == model.name && self.learned.version == model.version
    }
}

/// A tuned model as the emulator holds it: in memory, or (after a restart) only on disk until
/// it is first used, so a restart does not read every model back.
#[derive(Debug)]
enum Held {
    Loaded(Arc<TunedModel>),
    OnDisk { path: std::path::PathBuf, bytes: u64 },
}

impl Held {
    fn bytes(&self) -> u64 {
        match self {
            Held::Loaded(m) => m.bytes,
            Held::OnDisk { bytes, .. } => *bytes,
        }
    }
}

/// Every tuned model, by URI suffix.
#[derive(Debug, Default)]
pub(crate) struct TunedModels(RwLock<HashMap<String, Held>>);

impl TunedModels {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Held>> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Held>> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    pub(crate) fn insert(&self, suffix: String, model: TunedModel) {
        self.write().insert(suffix, Held::Loaded(Arc::new(model)));
    }

    /// A model saved by an earlier run, read from `path` when it is first used; its file's
    /// size counts against the budget until then.
    pub(crate) fn insert_on_disk(&self, suffix: String, path: std::path::PathBuf, bytes: u64) {
        self.write().insert(suffix, Held::OnDisk { path, bytes });
    }

    /// Inserts `model` if every tuned model together stays within `budget` bytes; otherwise
    /// RESOURCE_EXHAUSTED naming the limit and what to do.
    pub(crate) fn insert_within(&self, suffix: String, model: TunedModel, budget: u64) -> Result<(), Status> {
        let mut models = self.write();
        let held: u64 = models.values().map(Held::bytes).sum();
        if held + model.bytes > budget {
            return Err(over_budget(held, model.bytes, budget));
        }
        models.insert(suffix, Held::Loaded(Arc::new(model)));
        Ok(())
    }

    /// Bytes every tuned model keeps together.
    pub(crate) fn bytes(&self) -> u64 {
        self.read().values().map(Held::bytes).sum()
    }

    /// Every tuned model's URI suffix and bytes, by suffix.
    pub(crate) fn sizes(&self) -> Vec<(String, u64)> {
        let mut sizes: Vec<_> = self.read().iter().map(|(s, m)| (s.clone(), m.bytes())).collect();
        sizes.sort();
        sizes
    }

    /// Forgets a model; false if there was none by that suffix.
    pub(crate) fn remove(&self, suffix: &str) -> bool {
        self.write().remove(suffix).is_some()
    }

    pub(crate) fn clear(&self) {
        self.write().clear();
    }

    /// Training rows over every model (matching cost grows with them); unknown while a model
    /// has not been read back yet.
    pub(crate) fn total_examples(&self) -> Option<usize> {
        self.read()
            .values()
            .map(|m| match m {
                Held::Loaded(m) => Some(m.learned.examples.len()),
                Held::OnDisk { .. } => None,
            })
            .sum()
    }

    /// The model `suffix`, read from disk on first use (blocking).
    fn get(&self, suffix: &str) -> Result<Option<Arc<TunedModel>>, Status> {
        let path = match self.read().get(suffix) {
            None => return Ok(None),
            Some(Held::Loaded(m)) => return Ok(Some(m.clone())),
            Some(Held::OnDisk { path, .. }) => path.clone(),
        };
        let learned = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Learned>(&b).map_err(|e| e.to_string()))
            .map_err(|e| {
                Status::internal(format!(
                    "the tuned model {} cannot be read back ({e}); delete it (DELETE /tuned-models/{{suffix}} on \
                     the control API) and tune again",
                    crate::text::shown(suffix)
                ))
            })?;
        let model = Arc::new(TunedModel::new(learned));
        let mut models = self.write();
        // Deleted meanwhile: it stays deleted.
        let Some(held) = models.get_mut(suffix) else { return Ok(None) };
        if let Held::Loaded(loaded) = held {
            return Ok(Some(loaded.clone()));
        }
        *held = Held::Loaded(model.clone());
        Ok(Some(model))
    }

    /// The tuned completion model a URI names, or NOT_FOUND as the cloud answers for an
    /// unknown one.
    pub(crate) fn find(&self, model: &ModelRef) -> Result<Option<Arc<TunedModel>>, Status> {
        self.find_kind(model, "gpt", false)
    }

    /// The tuned embeddings model an `emb://` URI names, or NOT_FOUND.
    pub(crate) fn find_embeddings(&self, model: &ModelRef) -> Result<Option<Arc<TunedModel>>, Status> {
        self.find_kind(model, "emb", true)
    }

    fn find_kind(&self, model: &ModelRef, scheme: &str, embeddings: bool) -> Result<Option<Arc<TunedModel>>, Status> {
        let Some(suffix) = &model.tuned else { return Ok(None) };
        match self.get(suffix)? {
            Some(m) if m.serves(model) && m.learned.embedding.is_some() == embeddings => Ok(Some(m)),
            _ => Err(Status::not_found(format!(
                "model {scheme}://{}/{}/{}@{} not found",
                model.folder,
                model.name,
                model.version,
                crate::text::shown(suffix)
            ))),
        }
    }
}

/// A new tuned model of `adding` bytes does not fit beside those holding `held`.
pub(crate) fn over_budget(held: u64, adding: u64, budget: u64) -> Status {
    Status::resource_exhausted(format!(
        "tuned models keep {held} bytes of training rows and this one {adding} more, over the emulator's \
         limit of {budget} bytes (max_tuned_model_bytes); delete tuned models (DELETE /tuned-models/{{suffix}} \
         on the control API) or raise the limit"
    ))
}

/// An engine that answers tuned URIs from what their tuning learned and everything else (and
/// prompts a tuned model did not learn) with the wrapped engine.
pub(crate) struct Tuned {
    inner: Arc<dyn Engine>,
    models: Arc<TunedModels>,
}

impl Tuned {
    pub(crate) fn new(inner: Arc<dyn Engine>, models: Arc<TunedModels>) -> Tuned {
        Tuned { inner, models }
    }
}

impl Engine for Tuned {
    fn model_version(&self) -> &str {
        self.inner.model_version()
    }

    fn tokenizer(&self) -> &dyn Tokenizer {
        self.inner.tokenizer()
    }

    fn is_cheap(&self) -> bool {
        // Matching looks the prompt's words up in an index; with many rows a common word
        // touches many of them, so then it is not cheap.
        self.inner.is_cheap() && self.models.total_examples().is_some_and(|n| n <= CHEAP_EXAMPLES)
    }

    fn context_window(&self) -> Option<usize> {
        self.inner.context_window()
    }

    fn generations_running(&self) -> usize {
        self.inner.generations_running()
    }

    fn answer_cap(&self) -> Option<usize> {
        self.inner.answer_cap()
    }

    fn streams_chunks(&self) -> bool {
        self.inner.streams_chunks()
    }

    fn check_format(&self, request: &pb::CompletionRequest) -> Result<(), Status> {
        self.inner.check_format(request)
    }

    fn tokens_generated(&self) -> u64 {
        self.inner.tokens_generated()
    }

    fn reply(&self, model: &ModelRef, request: &pb::CompletionRequest) -> Result<Reply, Status> {
        let Some(tuned) = self.models.find(model)? else { return self.inner.reply(model, request) };
        let prompt = last_user_text(request);
        let base = ModelRef { tuned: None, ..model.clone() };
        match tuned.answer(&prompt) {
            Some(text) => Ok(Reply::text(self.tokenizer(), text)),
            // A model that reads language answers from the closest training rows, given as
            // earlier turns of the conversation (few-shot).
            None if self.inner.context_window().is_some() => {
                let shots = tuned.closest(&prompt, FEW_SHOT);
                if shots.is_empty() {
                    return self.inner.reply(&base, request);
                }
                let text = |role: &str, t: &str| pb::Message {
                    role: role.into(),
                    content: Some(pb::message::Content::Text(t.to_owned())),
                };
                let mut shown = request.clone();
                let at = usize::from(shown.messages.first().is_some_and(|m| m.role == "system"));
                let turns = shots.iter().flat_map(|(q, a)| [text("user", q), text("assistant", a)]);
                shown.messages.splice(at..at, turns);
                self.inner.reply(&base, &shown)
            }
            None => self.inner.reply(&base, request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> TunedModel {
        TunedModel::new(Learned {
            folder: "f".into(),
            base: "yandexgpt".into(),
            version: "latest".into(),
            examples: vec![
                ("What is the capital of France?".into(), "Paris, of course.".into()),
                ("Name the largest planet".into(), "Jupiter.".into()),
                ("what is the capital of france".into(), "a later duplicate".into()),
            ],
            embedding: None,
        })
    }

    #[test]
    fn matching_prompts_get_the_trained_response_and_others_none() {
        let m = model();
        assert_eq!(m.answer("what is the capital of FRANCE"), Some("Paris, of course."));
        assert_eq!(m.answer("Please, what is the capital of France?"), Some("Paris, of course."));
        assert_eq!(m.answer("name the largest planet!"), Some("Jupiter."));
        assert_eq!(m.answer("tell me a joke"), None);
        assert_eq!(m.answer("France"), None, "one shared word is not a match");
        assert_eq!(m.answer(""), None);
    }

    #[test]
    fn unknown_or_foreign_tuned_uris_are_not_found() {
        let models = TunedModels::default();
        models.insert("tam1".into(), model());
        let uri = |folder: &str, suffix: &str| ModelRef {
            folder: folder.into(),
            name: "yandexgpt".into(),
            version: "latest".into(),
            tuned: Some(suffix.into()),
        };
        assert!(models.find(&uri("f", "tam1")).unwrap().is_some());
        assert_eq!(models.find(&uri("f", "tam2")).unwrap_err().code(), tonic::Code::NotFound);
        assert_eq!(models.find(&uri("other", "tam1")).unwrap_err().code(), tonic::Code::NotFound);
        assert!(models.find(&ModelRef { tuned: None, ..uri("f", "x") }).unwrap().is_none());
    }
}
