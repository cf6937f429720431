//! Output helpers: JSON or text, and progress (a bar on a terminal, plain lines
//! otherwise).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

/// Print a JSON value on one line.
pub fn print_json(v: &Value) {
    println!("{v}");
}

/// A string field of a JSON object, or `-`.
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("-")
}

/// Progress of long work: done / failed / rate / ETA.
///
/// On a terminal (stderr) it draws an indicatif bar; otherwise it prints a plain line
/// to stderr whenever the counts change. With `--json` it stays silent.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    last: (u64, u64, u64),
    label: String,
}

impl Progress {
    /// Start progress for `label` (e.g. "tickets").
    pub fn new(label: &str, json: bool) -> Self {
        let terminal = std::io::stderr().is_terminal() && !json;
        let bar = terminal.then(|| {
            // Drawn from the first update on, when the total is known.
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} done, {msg} {rate} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1}/s", state.per_sec());
                },
            )
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            bar.set_message("0 failed,");
            bar
        });
        Progress {
            bar,
            plain: !terminal && !json,
            last: (u64::MAX, u64::MAX, u64::MAX),
            label: label.to_string(),
        }
    }

    /// Report `done` of `total` items handled, `failed` of them failed.
    pub fn update(&mut self, done: u64, failed: u64, total: u64) {
        if self.last == (done, failed, total) {
            return;
        }
        self.last = (done, failed, total);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(format!("{failed} failed,"));
            if bar.is_hidden() {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar.enable_steady_tick(Duration::from_millis(200));
            }
        } else if self.plain {
            eprintln!("{}: {done}/{total} done, {failed} failed", self.label);
        }
    }

    /// Stop drawing (the bar stays on screen).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            if !bar.is_hidden() {
                bar.finish();
                // Leave the bar's line, so a summary starts on its own.
                eprintln!();
            }
        }
    }
}
