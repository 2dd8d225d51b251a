//! Progress bars on stderr for long work (uploads, validation, tuning), drawn from the SDK's
//! progress reports. Hidden when stderr is not a terminal, so scripts and logs stay clean.

use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use yandex_cloud_ml_sdk::operations::{Progress, ProgressUnit};

/// One bar that follows the stages of a piece of work.
pub struct Bar {
    bar: ProgressBar,
    /// The stage shown: its name, unit, and whether its total is known.
    stage: Mutex<Option<(String, ProgressUnit, bool)>>,
}

impl Bar {
    pub fn new() -> Arc<Bar> {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        Arc::new(Bar { bar, stage: Mutex::new(None) })
    }

    fn style(unit: ProgressUnit, known_total: bool) -> ProgressStyle {
        let template = match (unit, known_total) {
            (ProgressUnit::Bytes, true) => {
                "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}"
            }
            (_, true) => "{msg:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
            (ProgressUnit::Bytes, false) => "{spinner} {msg} {bytes} {binary_bytes_per_sec}",
            (_, false) => "{spinner} {msg} {pos} {elapsed}",
        };
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ")
    }

    /// Shows a report: a new stage restarts the bar in that stage's unit.
    pub fn report(&self, p: &Progress) {
        let mut stage = self.stage.lock().unwrap_or_else(|e| e.into_inner());
        // A new stage, or a total that became known, restyles the bar.
        let key = (p.stage.clone(), p.unit, p.total.is_some());
        if stage.as_ref() != Some(&key) {
            if stage.as_ref().is_none_or(|(name, unit, _)| (name, unit) != (&key.0, &key.1)) {
                self.bar.reset();
            }
            self.bar.set_style(Self::style(p.unit, p.total.is_some()));
            self.bar.set_message(p.stage.clone());
            *stage = Some(key);
        }
        if let Some(total) = p.total {
            self.bar.set_length(total);
        }
        self.bar.set_position(p.done);
    }

    /// A reporting function for the SDK's `on_progress`.
    pub fn callback(self: &Arc<Self>) -> impl Fn(&Progress) + Send + Sync + 'static {
        let bar = self.clone();
        move |p| bar.report(p)
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
