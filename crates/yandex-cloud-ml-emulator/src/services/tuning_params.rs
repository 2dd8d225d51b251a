//! The hyperparameters of a completion tuning, checked like the cloud checks them before a
//! task exists: every number finite and in its range, each error `INVALID_ARGUMENT` naming the
//! field. Zero stands for "unset" (proto3), so it always passes.

use tonic::Status;
use yandex_cloud_ml_proto::yandex::cloud::ai::tuning::v1::{
    TextToTextCompletionTuningParams as Params,
    text_to_text_completion_tuning_params::{TuningType, optimizer, scheduler},
};

fn bad(field: &str, rule: &str, got: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("tuning_params.{field}: {rule}, got {got}"))
}

/// A finite number in `low..=high`.
fn within(field: &str, value: f64, low: f64, high: f64) -> Result<(), Status> {
    if value.is_finite() && (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(bad(field, &format!("must be a number from {low} to {high}"), value))
    }
}

fn not_negative(field: &str, value: i64) -> Result<(), Status> {
    if value >= 0 { Ok(()) } else { Err(bad(field, "must not be negative", value)) }
}

pub(crate) fn check(p: &Params) -> Result<(), Status> {
    within("lr", p.lr, 0.0, 1.0)?;
    not_negative("n_samples", p.n_samples)?;
    if !p.additional_arguments.is_empty()
        && !serde_json::from_str::<serde_json::Value>(&p.additional_arguments).is_ok_and(|v| v.is_object())
    {
        return Err(bad("additional_arguments", "must be a JSON object", crate::text::shown(&p.additional_arguments)));
    }
    match &p.tuning_type {
        Some(TuningType::Lora(lora)) => {
            not_negative("lora.rank", lora.rank)?;
            within("lora.alpha", lora.alpha, 0.0, 1e6)?;
            if lora.alpha.fract() != 0.0 {
                return Err(bad("lora.alpha", "must be a whole number", lora.alpha));
            }
        }
        Some(TuningType::PromptTune(prompt)) => not_negative("prompt_tune.virtual_tokens", prompt.virtual_tokens)?,
        None => {}
    }
    if let Some(s) = &p.scheduler {
        within("scheduler.warmup_ratio", s.warmup_ratio, 0.0, 1.0)?;
        match &s.r#type {
            Some(scheduler::Type::Linear(l)) => within("scheduler.linear.min_lr", l.min_lr, 0.0, 1.0)?,
            Some(scheduler::Type::Cosine(c)) => within("scheduler.cosine.min_lr", c.min_lr, 0.0, 1.0)?,
            Some(scheduler::Type::Constant(_)) | None => {}
        }
    }
    if let Some(optimizer::Type::Adamw(a)) = p.optimizer.as_ref().and_then(|o| o.r#type.as_ref()) {
        // The betas are decay rates: 1 would never forget.
        within("optimizer.adamw.beta1", a.beta1, 0.0, 0.999_999)?;
        within("optimizer.adamw.beta2", a.beta2, 0.0, 0.999_999)?;
        within("optimizer.adamw.eps", a.eps, 0.0, 1.0)?;
        within("optimizer.adamw.weight_decay", a.weight_decay, 0.0, 1.0)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use yandex_cloud_ml_proto::yandex::cloud::ai::tuning::v1::{
        OptimizerAdamw, SchedulerLinear, TuningTypeLora, text_to_text_completion_tuning_params::Optimizer,
        text_to_text_completion_tuning_params::Scheduler,
    };

    use super::*;

    fn message(p: Params) -> String {
        check(&p).unwrap_err().message().to_owned()
    }

    #[test]
    fn out_of_range_hyperparameters_name_their_field() {
        assert!(check(&Params::default()).is_ok(), "unset is the default");
        let good = Params {
            lr: 1e-4,
            n_samples: 100,
            additional_arguments: "{}".into(),
            tuning_type: Some(TuningType::Lora(TuningTypeLora { rank: 8, alpha: 16.0, ..Default::default() })),
            scheduler: Some(Scheduler {
                r#type: Some(scheduler::Type::Linear(SchedulerLinear { min_lr: 1e-6 })),
                warmup_ratio: 0.1,
            }),
            optimizer: Some(Optimizer {
                r#type: Some(optimizer::Type::Adamw(OptimizerAdamw {
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                    weight_decay: 0.1,
                })),
            }),
            ..Default::default()
        };
        assert!(check(&good).is_ok());
        assert!(
            message(Params { lr: -1.0, ..good.clone() })
                .starts_with("tuning_params.lr: must be a number from 0 to 1, got -1")
        );
        assert!(message(Params { lr: f64::INFINITY, ..good.clone() }).contains("tuning_params.lr"));
        assert!(message(Params { n_samples: -5, ..good.clone() }).contains("n_samples: must not be negative, got -5"));
        let lora = |rank, alpha| Some(TuningType::Lora(TuningTypeLora { rank, alpha, ..Default::default() }));
        assert!(message(Params { tuning_type: lora(-3, 16.0), ..good.clone() }).contains("lora.rank"));
        assert!(message(Params { tuning_type: lora(8, f64::NAN), ..good.clone() }).contains("lora.alpha"));
        assert!(message(Params { tuning_type: lora(8, 1.5), ..good.clone() }).contains("whole number"));
        let warmup = Some(Scheduler { r#type: None, warmup_ratio: 7.0 });
        assert!(message(Params { scheduler: warmup, ..good.clone() }).contains("scheduler.warmup_ratio"));
        assert!(message(Params { additional_arguments: "[1]".into(), ..good }).contains("additional_arguments"));
    }
}
