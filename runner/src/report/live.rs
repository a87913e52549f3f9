//! The live area of the console on a terminal: one line per running stage
//! (spinner, name, elapsed time, its latest progress), drawn by indicatif
//! below the lines printed so far. Lines are printed above it.
//!
//! Only used when stdout is a terminal (see [`super::console`]); indicatif
//! also hides itself when its target is not one, and then lines are
//! written straight to the fallback writer, so nothing is ever lost and no
//! cursor movement reaches a pipe or a CI log.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::escape_controls as esc;

/// How often spinners turn and elapsed times advance.
const TICK: Duration = Duration::from_millis(120);

/// A stage line without a known total: spinner, name, elapsed, message.
const SPINNER: &str = "{spinner:.cyan} {prefix:.bold} {elapsed:>4} {wide_msg}";
/// A stage line with a total: the same with a bar and `done/total`.
const BAR: &str =
    "{spinner:.cyan} {prefix:.bold} {elapsed:>4} [{bar:24.cyan/blue}] {pos}/{len} {wide_msg}";

/// The running stages' lines.
pub struct LiveView {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    /// The longest stage name seen, so the columns after it line up.
    width: usize,
    /// Where lines go while the live area is hidden.
    fallback: Box<dyn Write + Send>,
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants that parse; should one not, a plain
    // spinner is still better than no line.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl LiveView {
    /// A live area drawn on `target`; `fallback` receives the lines when
    /// the target is hidden.
    pub fn new(target: ProgressDrawTarget, fallback: Box<dyn Write + Send>) -> LiveView {
        LiveView {
            multi: MultiProgress::with_draw_target(target),
            bars: HashMap::new(),
            width: 0,
            fallback,
        }
    }

    /// Prints `line` above the live area.
    pub fn println(&mut self, line: &str) {
        if self.multi.is_hidden() || self.multi.println(line).is_err() {
            let _ = writeln!(self.fallback, "{line}");
            let _ = self.fallback.flush();
        }
    }

    /// Adds the line of `stage` (again, for a new attempt: its clock
    /// restarts).
    pub fn start(&mut self, stage: &str) {
        if let Some(old) = self.bars.remove(stage) {
            old.finish_and_clear();
            self.multi.remove(&old);
        }
        let name = esc(stage).into_owned();
        let width = name.chars().count();
        if width > self.width {
            self.width = width;
            for (other, bar) in &self.bars {
                bar.set_prefix(self.padded(other));
            }
        }
        let bar = self.multi.add(
            ProgressBar::new_spinner()
                .with_style(style(SPINNER))
                .with_prefix(self.padded(stage)),
        );
        bar.enable_steady_tick(TICK);
        self.bars.insert(stage.to_string(), bar);
    }

    /// `stage`, escaped, padded to the longest name seen.
    fn padded(&self, stage: &str) -> String {
        let name = esc(stage);
        let fill = self.width.saturating_sub(name.chars().count());
        format!("{name}{}", " ".repeat(fill))
    }

    /// The latest progress of `stage`: a bar when `total` is known.
    pub fn progress(&mut self, stage: &str, done: u64, total: Option<u64>, message: &str) {
        if !self.bars.contains_key(stage) {
            self.start(stage);
        }
        let Some(bar) = self.bars.get(stage) else {
            return;
        };
        match total {
            Some(total) => {
                if bar.length() != Some(total) {
                    bar.set_style(style(BAR));
                    bar.set_length(total);
                }
            }
            None => {
                if bar.length().is_some() {
                    bar.set_style(style(SPINNER));
                    bar.unset_length();
                }
            }
        }
        bar.set_position(done);
        bar.set_message(esc(message).into_owned());
    }

    /// Removes the line of `stage` (it finished, was cancelled or waits).
    pub fn finish(&mut self, stage: &str) {
        if let Some(bar) = self.bars.remove(stage) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    /// Removes every line (the run ended).
    pub fn clear(&mut self) {
        for (_, bar) in self.bars.drain() {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        let _ = self.multi.clear();
    }

    /// The stages that have a line.
    pub fn running(&self) -> Vec<String> {
        let mut names: Vec<String> = self.bars.keys().cloned().collect();
        names.sort();
        names
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::report::SharedBuffer as Buffer;

    #[test]
    fn a_hidden_area_keeps_every_line_and_tracks_running_stages() {
        let out = Buffer::default();
        let mut live = LiveView::new(ProgressDrawTarget::hidden(), Box::new(out.clone()));
        live.start("build");
        live.start("lint");
        live.println("▶ build");
        live.progress("build", 3, Some(10), "compiling \u{1b}[2J");
        live.progress("lint", 7, None, "files");
        // Progress for a stage with no line yet gives it one.
        live.progress("scan", 1, Some(2), "");
        assert_eq!(live.running(), ["build", "lint", "scan"]);
        let bar = live.bars.get("build").expect("build bar");
        assert_eq!((bar.position(), bar.length()), (3, Some(10)));
        assert_eq!(bar.message(), "compiling \\u{1b}[2J");
        // Names are padded to the longest, so the columns line up.
        assert_eq!(bar.prefix(), "build");
        live.start("integration");
        assert_eq!(
            live.bars.get("build").map(|b| b.prefix()).as_deref(),
            Some("build      ")
        );
        live.finish("integration");
        live.progress("build", 4, None, "linking");
        assert_eq!(live.bars.get("build").and_then(|b| b.length()), None);
        live.finish("build");
        live.finish("nope");
        assert_eq!(live.running(), ["lint", "scan"]);
        live.println("✓ build passed");
        live.clear();
        assert!(live.running().is_empty());
        // Hidden: plain lines, no cursor movement.
        assert_eq!(out.text(), "▶ build\n✓ build passed\n");
    }
}
