//! Fault injection: rules that make calls fail, slow down, cut or stall streams, fail or delay
//! operations, or expire tokens. Each rule matches methods, fires with a probability and/or
//! for the first N matching calls, and draws from one seeded generator, so the same sequence
//! of calls meets the same faults again (reproducible failures).

use serde::{Deserialize, Serialize};

/// What happens when a rule fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultAction {
    /// The call fails with this gRPC status code (14 UNAVAILABLE, 8 RESOURCE_EXHAUSTED, …).
    Fail {
        /// Numeric gRPC code.
        code: i32,
        /// Status message.
        #[serde(default = "default_message")]
        message: String,
    },
    /// The call is processed (e.g. the operation is created) but the client gets this error
    /// instead of the answer, as when a connection breaks after the server did its work.
    LoseResponse {
        /// Numeric gRPC code (default UNAVAILABLE).
        #[serde(default = "unavailable")]
        code: i32,
    },
    /// The answer is delayed.
    Delay {
        /// Added latency in milliseconds.
        ms: u64,
    },
    /// A server stream ends with an error after this many chunks (streams with fewer chunks
    /// are not affected).
    CutStream {
        /// Chunks delivered before the cut.
        after_chunks: u32,
        /// Numeric gRPC code of the error (default UNAVAILABLE).
        #[serde(default = "unavailable")]
        code: i32,
    },
    /// A server stream stops sending after this many chunks and hangs until the client gives
    /// up (or its deadline passes).
    StallStream {
        /// Chunks delivered before the stall.
        after_chunks: u32,
    },
    /// A new operation finishes with this error instead of its result.
    FailOperation {
        /// Numeric gRPC code.
        code: i32,
        /// Status message.
        #[serde(default = "default_message")]
        message: String,
    },
    /// A new operation finishes only on this many-th poll.
    SlowOperation {
        /// Polls until done.
        polls: u32,
    },
    /// Every IAM token issued so far expires now.
    ExpireTokens,
}

fn default_message() -> String {
    "injected fault".into()
}

fn unavailable() -> i32 {
    tonic::Code::Unavailable as i32
}

fn always() -> f64 {
    1.0
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Substring of the full method name (`yandex.cloud.ai.foundation_models.v1.TextGenerationService/Completion`);
    /// empty matches every call.
    #[serde(default)]
    pub method: String,
    /// What to do.
    pub action: FaultAction,
    /// Chance in [0, 1] that a matching call is hit (default 1).
    #[serde(default = "always")]
    pub probability: f64,
    /// Only the first N matching calls can be hit (default: no limit).
    #[serde(default)]
    pub first_calls: Option<u32>,
}

impl FaultRule {
    /// A rule that hits every matching call.
    pub fn new(method: impl Into<String>, action: FaultAction) -> FaultRule {
        FaultRule { method: method.into(), action, probability: 1.0, first_calls: None }
    }

    /// Hit a matching call with this probability.
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p;
        self
    }

    /// Hit only the first `n` matching calls.
    pub fn first_calls(mut self, n: u32) -> Self {
        self.first_calls = Some(n);
        self
    }
}

/// Rejects a status code that is not a gRPC error (1 CANCELLED … 16 UNAUTHENTICATED): code 0
/// would be an "OK" error, or a stream that ends cleanly but short.
pub(crate) fn check_error_code(code: i32) -> Result<(), String> {
    if (1..=16).contains(&code) {
        Ok(())
    } else {
        Err(format!("status code {code} is not a gRPC error code: use 1 (CANCELLED) to 16 (UNAUTHENTICATED)"))
    }
}

impl FaultRule {
    /// Rejects rules that could not act as written.
    pub(crate) fn check(&self) -> Result<(), String> {
        match &self.action {
            FaultAction::Fail { code, .. }
            | FaultAction::LoseResponse { code }
            | FaultAction::CutStream { code, .. }
            | FaultAction::FailOperation { code, .. } => check_error_code(*code)?,
            FaultAction::Delay { .. }
            | FaultAction::StallStream { .. }
            | FaultAction::SlowOperation { .. }
            | FaultAction::ExpireTokens => {}
        }
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(format!("probability {} is outside [0, 1]", self.probability));
        }
        Ok(())
    }
}

/// At most this many fault rules are active at once.
pub const MAX_FAULT_RULES: usize = 1_000;

/// The active rules and the seeded generator.
pub(crate) struct Faults {
    rules: Vec<(FaultRule, u32)>,
    rng: fastrand::Rng,
}

impl Faults {
    pub(crate) fn new(seed: u64, rules: Vec<FaultRule>) -> Faults {
        Faults { rules: rules.into_iter().map(|r| (r, 0)).collect(), rng: fastrand::Rng::with_seed(seed) }
    }

    /// Adds a rule, within [`MAX_FAULT_RULES`].
    pub(crate) fn add(&mut self, rule: FaultRule) -> Result<(), String> {
        if self.rules.len() >= MAX_FAULT_RULES {
            return Err(format!(
                "{MAX_FAULT_RULES} fault rules are active, the most the emulator keeps; clear the faults first \
                 (one rule can match many methods and calls)"
            ));
        }
        self.rules.push((rule, 0));
        Ok(())
    }

    pub(crate) fn rules(&self) -> Vec<FaultRule> {
        self.rules.iter().map(|(r, _)| r.clone()).collect()
    }

    /// Decides which actions hit this call of `method`.
    pub(crate) fn decide(&mut self, method: &str) -> Vec<FaultAction> {
        let mut hits = Vec::new();
        for (rule, seen) in &mut self.rules {
            if !method.contains(&rule.method) {
                continue;
            }
            *seen += 1;
            if rule.first_calls.is_some_and(|n| *seen > n) {
                continue;
            }
            if rule.probability >= 1.0 || self.rng.f64() < rule.probability {
                hits.push(rule.action.clone());
            }
        }
        hits
    }
}

/// What a stream producer must do, decided when the call arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamFault {
    Cut { after: usize, code: i32 },
    Stall { after: usize },
}

/// How a new operation must behave.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OperationFault {
    Fail { code: i32, message: String },
    Slow { polls: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail() -> FaultAction {
        FaultAction::Fail { code: 14, message: "x".into() }
    }

    #[test]
    fn first_calls_and_method_matching() {
        let mut f = Faults::new(1, vec![FaultRule::new("Completion", fail()).first_calls(2)]);
        assert_eq!(f.decide("x.OperationService/Get"), vec![]);
        assert_eq!(f.decide("x.TextGenerationService/Completion").len(), 1);
        assert_eq!(f.decide("x.TextGenerationService/Completion").len(), 1);
        assert_eq!(f.decide("x.TextGenerationService/Completion").len(), 0);
    }

    #[test]
    fn probabilities_are_reproducible_with_the_same_seed() {
        let run = |seed| {
            let mut f = Faults::new(seed, vec![FaultRule::new("", fail()).probability(0.2)]);
            (0..1000).map(|_| f.decide("m").len()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let hits: usize = run(7).iter().sum();
        assert!((150..250).contains(&hits), "{hits}");
    }

    #[test]
    fn rules_parse_from_json() {
        let rules: Vec<FaultRule> = serde_json::from_str(
            r#"[{"method": "Completion", "action": {"kind": "cut_stream", "after_chunks": 2}, "probability": 0.1},
                {"action": {"kind": "expire_tokens"}, "first_calls": 1}]"#,
        )
        .unwrap();
        assert_eq!(rules[0].action, FaultAction::CutStream { after_chunks: 2, code: 14 });
        assert_eq!(rules[1].probability, 1.0);
    }
}
