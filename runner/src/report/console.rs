//! Human output: one line per stage event, stage log lines indented under
//! it, gate results under each finished stage, a summary at the end.
//! Colour only on a terminal and never with `NO_COLOR`.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use super::{escape_controls as esc, Event, Reporter};
use sluice_pipeline::gates::Verdict;
use sluice_record::{RunStatus, StageState};

/// Prints events for people.
pub struct Console {
    out: Mutex<Box<dyn Write + Send>>,
    color: bool,
    show_logs: bool,
}

impl Console {
    /// Print to stdout; `show_logs` streams stage log lines too.
    pub fn stdout(show_logs: bool) -> Console {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Console {
            out: Mutex::new(Box::new(std::io::stdout())),
            color,
            show_logs,
        }
    }

    /// Print to `out` (the CI reporter renders into a buffer and places
    /// the text inside each stage's log group).
    pub fn to_writer(out: Box<dyn Write + Send>, color: bool, show_logs: bool) -> Console {
        Console {
            out: Mutex::new(out),
            color,
            show_logs,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn line(&self, text: String) {
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }
}

fn seconds(ms: Option<u64>) -> String {
    format!("{:.2}s", ms.unwrap_or(0) as f64 / 1000.0)
}

fn short_digest(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    &hex[..hex.len().min(12)]
}

impl Reporter for Console {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::RunStarted { run_id, pipeline, stages, jobs, resumed } => self.line(format!(
                "{} {run_id} · pipeline {pipeline} · {stages} stage{} · jobs {jobs}",
                self.paint("1", if *resumed { "sluice resume" } else { "sluice run" }),
                if *stages == 1 { "" } else { "s" }
            )),
            Event::PluginLoaded { reference, digest, cached, millis } => self.line(format!(
                "  plugin {} sha256:{} {}",
                esc(reference),
                short_digest(digest),
                if *cached {
                    format!("cached ({millis} ms)")
                } else {
                    format!("compiled in {:.2}s", *millis as f64 / 1000.0)
                }
            )),
            Event::Warning { message } => {
                self.line(format!("{} {}", self.paint("33;1", "warning:"), esc(message)))
            }
            Event::StageStarted { stage, attempt } => {
                let extra = if *attempt > 1 { format!(" (attempt {attempt})") } else { String::new() };
                self.line(format!("{} {stage}{extra}", self.paint("36", "▶")))
            }
            Event::StageLog { stage, line, .. } => {
                if self.show_logs {
                    self.line(format!("  {} {}", self.paint("2", &format!("│ {stage}:")), esc(line)))
                }
            }
            Event::StageProgress { .. } => {}
            Event::StageRetrying { stage, attempt, of, reason } => self.line(format!(
                "{} {stage} failed, retrying ({attempt}/{of}): {}",
                self.paint("33", "↻"),
                esc(reason)
            )),
            Event::StageFinished { stage, record } => {
                let (mark, color) = match record.state {
                    StageState::Passed => ("✓", "32"),
                    StageState::Warned => ("!", "33"),
                    _ => ("✗", "31"),
                };
                let mut text = format!(
                    "{} {stage} {} in {}",
                    self.paint(color, mark),
                    self.paint(color, record.state.as_str()),
                    seconds(record.duration_ms)
                );
                if let Some(summary) = record.summary.as_deref().filter(|s| !s.is_empty()) {
                    text.push_str(&format!(" — {}", esc(summary.lines().next().unwrap_or(""))));
                }
                self.line(text);
                if let Some(reason) = &record.reason {
                    self.line(format!("    {} {}", self.paint("31", "reason:"), esc(reason)));
                }
                for g in &record.gates {
                    let color = match g.verdict {
                        Verdict::Pass => "32",
                        Verdict::Warn => "33",
                        _ => "31",
                    };
                    self.line(format!(
                        "    gate {} {}",
                        self.paint(color, g.verdict.as_str()),
                        esc(&g.message)
                    ));
                }
                for a in &record.artifacts {
                    self.line(format!(
                        "    artifact {} sha256:{} ({} bytes)",
                        esc(&a.name),
                        short_digest(&a.digest),
                        a.size
                    ));
                }
                if record.state == StageState::Failed || record.state == StageState::Blocked {
                    self.line(format!("    log: {}", record.log));
                }
            }
            Event::StageSkipped { stage, reason } => {
                self.line(format!("{} {stage} skipped: {}", self.paint("2", "-"), esc(reason)))
            }
            Event::StageCancelled { stage, reason } => {
                self.line(format!("{} {stage} {}", self.paint("31", "✗"), esc(reason)))
            }
            Event::StageAwaitingApproval { stage, run_id } => self.line(format!(
                "{} {stage} awaits approval: run `sluice approve {run_id} {stage}`, then `sluice run --resume {run_id}`",
                self.paint("35", "⏸")
            )),
            Event::RunFinished { record } => {
                let mut counts: Vec<(StageState, usize)> = Vec::new();
                for r in record.stages.values() {
                    match counts.iter_mut().find(|(s, _)| *s == r.state) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((r.state, 1)),
                    }
                }
                let tally = counts
                    .iter()
                    .map(|(s, n)| format!("{n} {}", s.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ");
                let (word, color) = match record.status {
                    RunStatus::Passed => ("passed", "32;1"),
                    RunStatus::Failed => ("failed", "31;1"),
                    RunStatus::Paused => ("paused", "35;1"),
                    RunStatus::Running | RunStatus::Interrupted => ("interrupted", "31;1"),
                };
                self.line(format!(
                    "run {} {}: {tally}",
                    record.run_id,
                    self.paint(color, word)
                ));
                if record.unsigned_plugins_allowed {
                    self.line(self.paint(
                        "33;1",
                        "warning: this run allowed unsigned plugins (--allow-unsigned); nothing vouches for the code it ran",
                    ));
                }
            }
        }
    }
}
