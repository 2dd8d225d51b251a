//! Progress bars on stderr for long work (uploads, validation, tuning, batch runs), drawn from
//! the SDK's progress reports. Each stage gets its own bar, named in words and counted in its
//! unit; a bar ends (and stays on screen, complete) when its stage ends. Nothing is drawn
//! before the first report, nor when stderr is not a terminal, so scripts and logs stay clean.

use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use yandex_cloud_ml_sdk::operations::{Progress, ProgressUnit};

/// The bars of one piece of work.
pub struct Bar {
    current: Mutex<Option<Stage>>,
}

/// The stage shown: its bar, and what it was made for.
struct Stage {
    bar: ProgressBar,
    name: String,
    unit: ProgressUnit,
    known_total: bool,
}

/// A stage as words: `IN_PROGRESS` → `in progress`.
fn words(stage: &str) -> String {
    stage.to_lowercase().replace('_', " ")
}

fn unit_name(unit: ProgressUnit) -> &'static str {
    match unit {
        ProgressUnit::Rows => "rows",
        ProgressUnit::Batches => "batches",
        ProgressUnit::Steps => "steps",
        _ => "",
    }
}

fn style(unit: ProgressUnit, known_total: bool) -> ProgressStyle {
    let template = match (unit, known_total) {
        (ProgressUnit::Bytes, true) => "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {byte_rate} eta {eta}",
        (ProgressUnit::None, _) => "{spinner} {msg} {elapsed}",
        (_, true) => "{msg:>12} [{bar:30}] {pos}/{len} {unit} {rate} eta {eta}",
        (ProgressUnit::Bytes, false) => "{spinner} {msg} {bytes} {byte_rate}",
        (_, false) => "{spinner} {msg} {pos} {unit} {elapsed}",
    };
    let unit = unit_name(unit);
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("unit", move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(unit);
        })
        // One decimal is all a rate of rows or steps needs.
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.1}/s", s.per_sec());
        })
        .with_key("byte_rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&byte_rate(s.per_sec()));
        })
        .progress_chars("=> ")
}

/// Bytes per second in binary units, one decimal: `812.0 B/s`, `1.5 MiB/s`.
fn byte_rate(per_sec: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = if per_sec.is_finite() { per_sec.max(0.0) } else { 0.0 };
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}/s", units[unit])
}

impl Bar {
    pub fn new() -> Arc<Bar> {
        Arc::new(Bar { current: Mutex::new(None) })
    }

    /// Shows a report: a new stage ends the bar of the one before and starts its own.
    pub fn report(&self, p: &Progress) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let total = p.total.filter(|t| *t > 0);
        let same_stage = current.as_ref().is_some_and(|s| s.name == p.stage && s.unit == p.unit);
        if !same_stage {
            if let Some(done) = current.take() {
                done.bar.finish();
            }
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            bar.set_style(style(p.unit, total.is_some()));
            bar.set_message(words(&p.stage));
            if p.unit == ProgressUnit::None || total.is_none() {
                bar.enable_steady_tick(std::time::Duration::from_millis(200));
            }
            *current = Some(Stage { bar, name: p.stage.clone(), unit: p.unit, known_total: total.is_some() });
        }
        let Some(stage) = current.as_mut() else { return };
        if let Some(total) = total {
            if !stage.known_total {
                stage.bar.set_style(style(p.unit, true));
                stage.bar.disable_steady_tick();
                stage.known_total = true;
            }
            stage.bar.set_length(total);
        }
        stage.bar.set_position(p.done);
    }

    /// A reporting function for the SDK's `on_progress`.
    pub fn callback(self: &Arc<Self>) -> impl Fn(&Progress) + Send + Sync + 'static {
        let bar = self.clone();
        move |p| bar.report(p)
    }

    /// Ends the last bar: left on screen, complete, when the work succeeded; cleared when it
    /// did not (the error says why).
    pub fn finish(&self, succeeded: bool) {
        if let Some(stage) = self.current.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if succeeded {
                stage.bar.finish();
            } else {
                stage.bar.finish_and_clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_rates_have_one_decimal() {
        assert_eq!(super::byte_rate(812.0), "812.0 B/s");
        assert_eq!(super::byte_rate(1536.0 * 1024.0), "1.5 MiB/s");
        assert_eq!(super::byte_rate(f64::NAN), "0.0 B/s");
    }

    #[test]
    fn stages_read_as_words() {
        assert_eq!(super::words("IN_PROGRESS"), "in progress");
        assert_eq!(super::words("validating"), "validating");
    }
}
