//! Tuning parameters. Every field is optional and left unset on the wire unless given; with
//! none at all the request still carries an empty `text_to_text_completion` (as the official
//! SDK sends it).

use serde::{Deserialize, Serialize};
use yandex_cloud_ml_proto::yandex::cloud::ai::tuning::v1 as pb;

use crate::datasets::DatasetRef;

/// Hyperparameters of a completion-model tuning.
///
/// ```
/// use yandex_cloud_ml_sdk::tuning::{Optimizer, Scheduler, TuneParams, TuningType};
/// let params = TuneParams::default()
///     .seed(500)
///     .learning_rate(1e-4)
///     .tuning_type(TuningType::lora(8).alpha(16.0))
///     .scheduler(Scheduler::linear(0.1))
///     .optimizer(Optimizer::adamw().weight_decay(0.1));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TuneParams {
    seed: Option<i64>,
    lr: Option<f64>,
    n_samples: Option<i64>,
    additional_arguments: Option<String>,
    tuning_type: Option<TuningType>,
    scheduler: Option<Scheduler>,
    optimizer: Option<Optimizer>,
}

impl TuneParams {
    /// Random seed.
    pub fn seed(mut self, seed: i64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Learning rate.
    pub fn learning_rate(mut self, lr: f64) -> Self {
        self.lr = Some(lr);
        self
    }

    /// Training samples.
    pub fn n_samples(mut self, n: i64) -> Self {
        self.n_samples = Some(n);
        self
    }

    /// Extra arguments for the tuning service, as it documents them (JSON text).
    pub fn additional_arguments(mut self, arguments: impl Into<String>) -> Self {
        self.additional_arguments = Some(arguments.into());
        self
    }

    /// LoRA or prompt tuning.
    pub fn tuning_type(mut self, tuning_type: TuningType) -> Self {
        self.tuning_type = Some(tuning_type);
        self
    }

    /// Learning-rate schedule.
    pub fn scheduler(mut self, scheduler: Scheduler) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// Optimizer.
    pub fn optimizer(mut self, optimizer: Optimizer) -> Self {
        self.optimizer = Some(optimizer);
        self
    }

    pub(crate) fn to_proto(&self) -> pb::TextToTextCompletionTuningParams {
        use pb::text_to_text_completion_tuning_params::{
            Optimizer as O, Scheduler as S, TuningType as T, optimizer, scheduler,
        };
        pb::TextToTextCompletionTuningParams {
            seed: self.seed.unwrap_or_default(),
            lr: self.lr.unwrap_or_default(),
            n_samples: self.n_samples.unwrap_or_default(),
            additional_arguments: self.additional_arguments.clone().unwrap_or_default(),
            tuning_type: self.tuning_type.as_ref().map(|t| match t {
                TuningType::Lora { rank, alpha, initialization, kind } => T::Lora(pb::TuningTypeLora {
                    rank: rank.unwrap_or_default(),
                    alpha: alpha.unwrap_or_default(),
                    initialization: initialization.clone().unwrap_or_default(),
                    r#type: kind.clone().unwrap_or_default(),
                }),
                TuningType::PromptTune { virtual_tokens } => {
                    T::PromptTune(pb::TuningTypePromptTune { virtual_tokens: virtual_tokens.unwrap_or_default() })
                }
            }),
            scheduler: self.scheduler.as_ref().map(|s| {
                let (r#type, warmup_ratio) = match s {
                    Scheduler::Linear { warmup_ratio, min_lr } => (
                        scheduler::Type::Linear(pb::SchedulerLinear { min_lr: min_lr.unwrap_or_default() }),
                        *warmup_ratio,
                    ),
                    Scheduler::Cosine { warmup_ratio, min_lr } => (
                        scheduler::Type::Cosine(pb::SchedulerCosine { min_lr: min_lr.unwrap_or_default() }),
                        *warmup_ratio,
                    ),
                    Scheduler::Constant { warmup_ratio } => {
                        (scheduler::Type::Constant(pb::SchedulerConstant {}), *warmup_ratio)
                    }
                };
                S { r#type: Some(r#type), warmup_ratio: warmup_ratio.unwrap_or_default() }
            }),
            optimizer: self.optimizer.as_ref().map(|o| match o {
                Optimizer::AdamW { beta1, beta2, eps, weight_decay } => O {
                    r#type: Some(optimizer::Type::Adamw(pb::OptimizerAdamw {
                        beta1: beta1.unwrap_or_default(),
                        beta2: beta2.unwrap_or_default(),
                        eps: eps.unwrap_or_default(),
                        weight_decay: weight_decay.unwrap_or_default(),
                    })),
                },
            }),
        }
    }
}

/// How the model is tuned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TuningType {
    /// Low-rank adaptation.
    Lora {
        /// Rank.
        rank: Option<i64>,
        /// Alpha.
        alpha: Option<f64>,
        /// Initialization, as the service names it.
        initialization: Option<String>,
        /// LoRA variant, as the service names it.
        kind: Option<String>,
    },
    /// Prompt tuning.
    PromptTune {
        /// Virtual tokens.
        virtual_tokens: Option<i64>,
    },
}

impl TuningType {
    /// LoRA of this rank.
    pub fn lora(rank: i64) -> TuningType {
        TuningType::Lora { rank: Some(rank), alpha: None, initialization: None, kind: None }
    }

    /// Prompt tuning with this many virtual tokens.
    pub fn prompt_tune(virtual_tokens: i64) -> TuningType {
        TuningType::PromptTune { virtual_tokens: Some(virtual_tokens) }
    }

    /// LoRA alpha (ignored for prompt tuning).
    pub fn alpha(mut self, value: f64) -> Self {
        if let TuningType::Lora { alpha, .. } = &mut self {
            *alpha = Some(value);
        }
        self
    }

    /// LoRA initialization (ignored for prompt tuning).
    pub fn initialization(mut self, value: impl Into<String>) -> Self {
        if let TuningType::Lora { initialization, .. } = &mut self {
            *initialization = Some(value.into());
        }
        self
    }

    /// LoRA variant (ignored for prompt tuning).
    pub fn kind(mut self, value: impl Into<String>) -> Self {
        if let TuningType::Lora { kind, .. } = &mut self {
            *kind = Some(value.into());
        }
        self
    }
}

/// Learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Scheduler {
    /// Linear decay.
    Linear {
        /// Share of steps spent warming up.
        warmup_ratio: Option<f64>,
        /// Lowest learning rate.
        min_lr: Option<f64>,
    },
    /// Cosine decay.
    Cosine {
        /// Share of steps spent warming up.
        warmup_ratio: Option<f64>,
        /// Lowest learning rate.
        min_lr: Option<f64>,
    },
    /// Constant rate.
    Constant {
        /// Share of steps spent warming up.
        warmup_ratio: Option<f64>,
    },
}

impl Scheduler {
    /// Linear decay after warming up for `warmup_ratio` of the steps.
    pub fn linear(warmup_ratio: f64) -> Scheduler {
        Scheduler::Linear { warmup_ratio: Some(warmup_ratio), min_lr: None }
    }

    /// Cosine decay after warming up for `warmup_ratio` of the steps.
    pub fn cosine(warmup_ratio: f64) -> Scheduler {
        Scheduler::Cosine { warmup_ratio: Some(warmup_ratio), min_lr: None }
    }

    /// A constant rate after warming up for `warmup_ratio` of the steps.
    pub fn constant(warmup_ratio: f64) -> Scheduler {
        Scheduler::Constant { warmup_ratio: Some(warmup_ratio) }
    }

    /// The lowest learning rate (linear and cosine).
    pub fn min_lr(mut self, value: f64) -> Self {
        if let Scheduler::Linear { min_lr, .. } | Scheduler::Cosine { min_lr, .. } = &mut self {
            *min_lr = Some(value);
        }
        self
    }
}

/// Optimizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Optimizer {
    /// AdamW.
    AdamW {
        /// β₁.
        beta1: Option<f64>,
        /// β₂.
        beta2: Option<f64>,
        /// ε.
        eps: Option<f64>,
        /// Weight decay.
        weight_decay: Option<f64>,
    },
}

impl Optimizer {
    /// AdamW with the service's defaults.
    pub fn adamw() -> Optimizer {
        Optimizer::AdamW { beta1: None, beta2: None, eps: None, weight_decay: None }
    }

    /// β₁ and β₂.
    pub fn betas(self, b1: f64, b2: f64) -> Self {
        let Optimizer::AdamW { eps, weight_decay, .. } = self;
        Optimizer::AdamW { beta1: Some(b1), beta2: Some(b2), eps, weight_decay }
    }

    /// ε.
    pub fn eps(self, value: f64) -> Self {
        let Optimizer::AdamW { beta1, beta2, weight_decay, .. } = self;
        Optimizer::AdamW { beta1, beta2, eps: Some(value), weight_decay }
    }

    /// Weight decay.
    pub fn weight_decay(self, value: f64) -> Self {
        let Optimizer::AdamW { beta1, beta2, eps, .. } = self;
        Optimizer::AdamW { beta1, beta2, eps, weight_decay: Some(value) }
    }
}

/// A training or validation dataset with its weight (default 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedDataset {
    /// Dataset id.
    pub id: String,
    /// Weight in the mix.
    pub weight: f64,
}

impl WeightedDataset {
    /// A dataset id with its weight.
    pub fn new(id: impl Into<String>, weight: f64) -> WeightedDataset {
        WeightedDataset { id: id.into(), weight }
    }

    pub(crate) fn to_proto(&self) -> pb::tuning_request::WeightedDataset {
        pb::tuning_request::WeightedDataset { dataset_id: self.id.clone(), weight: self.weight }
    }
}

/// Datasets given to tuning: anything that names a dataset ([`DatasetRef`]: an id, a
/// [`Dataset`](crate::datasets::Dataset)), `(that, weight)`, a map of ids to
/// weights, or a list or array of any of these; `()` for none.
pub trait TuningDatasets {
    /// The datasets with their weights.
    fn into_weighted(self) -> Vec<WeightedDataset>;
}

// One dataset is named the way every domain names one ([`DatasetRef`]), with weight 1 or the
// one paired with it.
impl<D: DatasetRef> From<D> for WeightedDataset {
    fn from(dataset: D) -> WeightedDataset {
        WeightedDataset { id: dataset.dataset_id(), weight: 1.0 }
    }
}

impl<D: DatasetRef> From<(D, f64)> for WeightedDataset {
    fn from((dataset, weight): (D, f64)) -> WeightedDataset {
        WeightedDataset { id: dataset.dataset_id(), weight }
    }
}

impl<D: DatasetRef> TuningDatasets for D {
    fn into_weighted(self) -> Vec<WeightedDataset> {
        vec![self.into()]
    }
}

impl<D: DatasetRef> TuningDatasets for (D, f64) {
    fn into_weighted(self) -> Vec<WeightedDataset> {
        vec![self.into()]
    }
}

impl TuningDatasets for WeightedDataset {
    fn into_weighted(self) -> Vec<WeightedDataset> {
        vec![self]
    }
}

impl<T: Into<WeightedDataset>> TuningDatasets for Vec<T> {
    fn into_weighted(self) -> Vec<WeightedDataset> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<T: Into<WeightedDataset>, const N: usize> TuningDatasets for [T; N] {
    fn into_weighted(self) -> Vec<WeightedDataset> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<K: Into<String>, S> TuningDatasets for std::collections::HashMap<K, f64, S> {
    fn into_weighted(self) -> Vec<WeightedDataset> {
        let mut v: Vec<WeightedDataset> =
            self.into_iter().map(|(k, w)| WeightedDataset { id: k.into(), weight: w }).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
}

impl<K: Into<String>> TuningDatasets for std::collections::BTreeMap<K, f64> {
    fn into_weighted(self) -> Vec<WeightedDataset> {
        self.into_iter().map(|(k, w)| WeightedDataset { id: k.into(), weight: w }).collect()
    }
}

impl TuningDatasets for () {
    fn into_weighted(self) -> Vec<WeightedDataset> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_leave_unset_fields_unset_and_match_the_recorded_shape() {
        assert_eq!(TuneParams::default().to_proto(), pb::TextToTextCompletionTuningParams::default());
        let p = TuneParams::default()
            .seed(500)
            .learning_rate(1e-4)
            .n_samples(100)
            .additional_arguments("{}")
            .tuning_type(TuningType::prompt_tune(20))
            .scheduler(Scheduler::linear(0.1))
            .optimizer(Optimizer::adamw().betas(0.9, 0.999).eps(1e-8).weight_decay(0.1))
            .to_proto();
        assert_eq!((p.seed, p.n_samples, p.additional_arguments.as_str()), (500, 100, "{}"));
        assert_eq!(p.scheduler.unwrap().warmup_ratio, 0.1);
    }

    #[test]
    fn datasets_come_in_every_shape() {
        assert_eq!("a".into_weighted(), vec![WeightedDataset { id: "a".into(), weight: 1.0 }]);
        assert_eq!(("a", 2.0).into_weighted()[0].weight, 2.0);
        assert_eq!(vec![("a", 1.0), ("b", 3.0)].into_weighted().len(), 2);
        assert_eq!(["a", "b"].into_weighted()[1].id, "b");
        assert!(().into_weighted().is_empty());
        let map: std::collections::HashMap<&str, f64> = [("z", 1.0), ("y", 0.5)].into();
        assert_eq!(map.into_weighted()[0].id, "y");
    }
}
