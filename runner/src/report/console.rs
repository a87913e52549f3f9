//! Human output (docs/console.md). Two modes:
//! - **live**, on a terminal: stage lines, log lines and summaries are
//!   printed above a live area with one line per running stage (spinner,
//!   elapsed time, latest progress; see [`super::live`]);
//! - **plain** everywhere else (pipe, file, CI log, `CI` set, `TERM=dumb`):
//!   one line per event, nothing redrawn, every line flushed as written.
//!
//! Both print the same lines: a line per stage event, stage log lines
//! under a `│ <stage>:` prefix (with the record's level and fields), gate
//! results, artifacts and a findings summary under each finished stage,
//! and a table of stages before the final line. Colour only on a terminal
//! and never with `NO_COLOR`. Everything that comes from a stage is
//! escaped ([`escape_controls`](super::escape_controls)).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::live::LiveView;
use super::summary;
use super::{escape_controls as esc, Event, Reporter};
use sluice_engine::report::LogLevel;
use sluice_pipeline::gates::Verdict;
use sluice_record::artifacts::Cas;
use sluice_record::{RunStatus, StageState};

/// How much the console prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `--quiet`: no stage log lines, no progress, findings counted only.
    Quiet,
    /// The default: log lines except `debug`/`trace` records, the first
    /// [`ConsoleOptions::findings`] findings of a stage.
    Normal,
    /// `--verbose`: every log line and progress report, every finding.
    Verbose,
}

/// How the console renders.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// What to print.
    pub verbosity: Verbosity,
    /// ANSI colours.
    pub color: bool,
    /// The state directory: a finished stage's SARIF artifacts are read
    /// from its `cas/` for the findings summary (`None`: no summary).
    pub state_dir: Option<PathBuf>,
    /// Absolute finding paths under it are printed relative.
    pub cwd: PathBuf,
    /// How many findings of a stage are listed (not under `--verbose`).
    pub findings: usize,
}

/// The number of findings of a stage listed by default.
pub const DEFAULT_FINDINGS: usize = 10;

impl ConsoleOptions {
    /// `verbosity`, no colour, no findings summary.
    pub fn plain(verbosity: Verbosity) -> ConsoleOptions {
        ConsoleOptions {
            verbosity,
            color: false,
            state_dir: None,
            cwd: PathBuf::from("."),
            findings: DEFAULT_FINDINGS,
        }
    }
}

/// Whether the live view may be used: stdout is a terminal that can move
/// its cursor, and no CI system is detected (`CI` set to anything but
/// `false`/`0`: some CI runners give jobs a pseudo-terminal, and redrawn
/// lines would be garbage in their logs).
pub fn live_allowed(stdout_is_terminal: bool, var: impl Fn(&str) -> Option<String>) -> bool {
    let ci = var("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    let dumb = var("TERM").is_some_and(|t| t == "dumb");
    stdout_is_terminal && !ci && !dumb
}

/// When plain mode prints a stage's progress: a line at most this often
/// while it changes (10%, or a new message), and a heartbeat line this
/// often while it does not.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
const HEARTBEAT: Duration = Duration::from_secs(10);

/// The last progress line printed for a stage (plain mode).
struct ProgressPrinted {
    at: Instant,
    message: String,
    tenth: Option<u64>,
}

/// Turns events into lines; knows nothing of where they go.
pub struct Renderer {
    opts: ConsoleOptions,
    run_id: String,
    cas: Option<Result<Cas, String>>,
    progress: HashMap<String, ProgressPrinted>,
    /// The agent running each stage's current attempt (remote runs), so
    /// that a second assignment can say which agent was lost.
    agents: HashMap<String, String>,
}

fn seconds(ms: Option<u64>) -> String {
    format!("{:.2}s", ms.unwrap_or(0) as f64 / 1000.0)
}

fn short_digest(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    &hex[..hex.len().min(12)]
}

/// `key=value` pairs, a value quoted (Rust string syntax) when it holds
/// spaces, quotes or `=` or is empty, so the line still splits.
fn fields_text(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let plain =
                !v.is_empty() && !v.chars().any(|c| c.is_whitespace() || c == '"' || c == '=');
            if plain {
                format!("{}={}", esc(k), esc(v))
            } else {
                format!("{}={v:?}", esc(k))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `done/total message` (or `done message`) of a progress report.
pub fn progress_text(done: u64, total: Option<u64>, message: &str) -> String {
    let count = match total {
        Some(total) => format!("{done}/{total}"),
        None => done.to_string(),
    };
    if message.is_empty() {
        count
    } else {
        format!("{count} {}", esc(message))
    }
}

impl Renderer {
    /// A renderer with `opts`.
    pub fn new(opts: ConsoleOptions) -> Renderer {
        Renderer {
            opts,
            run_id: String::new(),
            cas: None,
            progress: HashMap::new(),
            agents: HashMap::new(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.opts.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Whether a log line of `level` is printed.
    fn shows(&self, level: Option<LogLevel>) -> bool {
        match self.opts.verbosity {
            Verbosity::Quiet => false,
            Verbosity::Verbose => true,
            Verbosity::Normal => !matches!(level, Some(LogLevel::Trace | LogLevel::Debug)),
        }
    }

    /// The line of a plain-mode progress report, when one is due at `now`
    /// (see `PROGRESS_EVERY` and `HEARTBEAT`; every report under
    /// `--verbose`).
    pub fn progress_line(
        &mut self,
        stage: &str,
        done: u64,
        total: Option<u64>,
        message: &str,
        now: Instant,
    ) -> Option<String> {
        if self.opts.verbosity == Verbosity::Quiet {
            return None;
        }
        let tenth = total
            .filter(|t| *t > 0)
            .map(|t| done.saturating_mul(10) / t);
        let due = match self.progress.get(stage) {
            None => true,
            Some(_) if self.opts.verbosity == Verbosity::Verbose => true,
            Some(last) => {
                let since = now.saturating_duration_since(last.at);
                let changed = last.message != message || last.tenth != tenth;
                let complete = total.is_some_and(|t| done >= t) && last.tenth != tenth;
                complete || (changed && since >= PROGRESS_EVERY) || since >= HEARTBEAT
            }
        };
        if !due {
            return None;
        }
        self.progress.insert(
            stage.to_string(),
            ProgressPrinted {
                at: now,
                message: message.to_string(),
                tenth,
            },
        );
        Some(format!(
            "  {} {}",
            self.paint("2", &format!("… {stage}:")),
            progress_text(done, total, message)
        ))
    }

    fn findings(&mut self, stage: &str, record: &sluice_record::StageRecord) -> Vec<String> {
        if !record.artifacts.iter().any(crate::ci::findings::is_sarif) {
            return Vec::new();
        }
        let Some(state_dir) = &self.opts.state_dir else {
            return Vec::new();
        };
        let cas = self
            .cas
            .get_or_insert_with(|| Cas::open(&state_dir.join("cas")).map_err(|e| e.to_string()));
        let files = match cas {
            Ok(cas) => summary::read_sarif(stage, record, cas, &self.opts.cwd),
            Err(why) => {
                return vec![format!(
                    "    findings: the artifact store cannot be read: {}",
                    esc(why)
                )]
            }
        };
        let limit = match self.opts.verbosity {
            Verbosity::Verbose => None,
            _ => Some(self.opts.findings),
        };
        let list = self.opts.verbosity != Verbosity::Quiet;
        summary::findings_summary(&self.run_id, stage, &files, limit, list)
            .into_iter()
            .map(|l| format!("    {l}"))
            .collect()
    }

    /// The lines `event` prints (a progress report: see
    /// [`Renderer::progress_line`]).
    pub fn lines(&mut self, event: &Event<'_>) -> Vec<String> {
        match event {
            Event::RunStarted {
                run_id,
                pipeline,
                stages,
                jobs,
                resumed,
            } => {
                self.run_id = run_id.to_string();
                vec![format!(
                    "{} {run_id} · pipeline {pipeline} · {stages} stage{} · jobs {jobs}",
                    self.paint("1", if *resumed { "sluice resume" } else { "sluice run" }),
                    if *stages == 1 { "" } else { "s" }
                )]
            }
            Event::PluginLoaded {
                reference,
                digest,
                cached,
                millis,
            } => vec![format!(
                "  plugin {} sha256:{} {}",
                esc(reference),
                short_digest(digest),
                if *cached {
                    format!("cached ({millis} ms)")
                } else {
                    format!("compiled in {:.2}s", *millis as f64 / 1000.0)
                }
            )],
            Event::Warning { message } => {
                vec![format!("{} {}", self.paint("33;1", "warning:"), esc(message))]
            }
            Event::StageStarted { stage, attempt } => {
                self.progress.remove(*stage);
                self.agents.remove(*stage);
                let extra = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                vec![format!("{} {stage}{extra}", self.paint("36", "▶"))]
            }
            Event::StageAssigned { stage, agent } => {
                // A second agent for the same attempt means the first one
                // stopped answering and the job was delivered again.
                match self.agents.insert(stage.to_string(), agent.to_string()) {
                    Some(lost) => vec![format!(
                        "{} {stage}: agent {} lost (no answer); retried on agent {}",
                        self.paint("33", "↻"),
                        esc(&lost),
                        esc(agent)
                    )],
                    None if self.opts.verbosity == Verbosity::Quiet => Vec::new(),
                    None => vec![format!(
                        "  {} {stage} on agent {}",
                        self.paint("2", "↳"),
                        esc(agent)
                    )],
                }
            }
            Event::StageLog {
                stage,
                line,
                level,
                fields,
            } => {
                if !self.shows(*level) {
                    return Vec::new();
                }
                let mut text = format!("  {} ", self.paint("2", &format!("│ {stage}:")));
                // `info` is what a stage says by default: no word, like
                // plain output (cargo and most CI logs do the same); the
                // other levels say what they are.
                if let Some(level) = level.filter(|l| *l != LogLevel::Info) {
                    let word = format!("{}:", level.as_str());
                    let painted = match level {
                        LogLevel::Error => self.paint("31;1", &word),
                        LogLevel::Warn => self.paint("33;1", &word),
                        LogLevel::Info | LogLevel::Debug | LogLevel::Trace => {
                            self.paint("2", &word)
                        }
                    };
                    text.push_str(&painted);
                    text.push(' ');
                }
                text.push_str(&esc(line));
                if !fields.is_empty() {
                    text.push(' ');
                    text.push_str(&self.paint("2", &fields_text(fields)));
                }
                vec![text]
            }
            // Rendered by the live area, or by `progress_line`.
            Event::StageProgress { .. } => Vec::new(),
            Event::StageRetrying {
                stage,
                attempt,
                of,
                reason,
            } => vec![format!(
                "{} {stage} failed, retrying ({attempt}/{of}): {}",
                self.paint("33", "↻"),
                esc(reason)
            )],
            Event::StageFinished { stage, record } => {
                self.progress.remove(*stage);
                let (mark, color) = summary::state_mark(record.state);
                let mut text = format!(
                    "{} {stage} {} in {}",
                    self.paint(color, mark),
                    self.paint(color, record.state.as_str()),
                    seconds(record.duration_ms)
                );
                if let Some(summary) = record.summary.as_deref().filter(|s| !s.is_empty()) {
                    text.push_str(&format!(" — {}", esc(summary.lines().next().unwrap_or(""))));
                }
                let mut lines = vec![text];
                if let Some(reason) = &record.reason {
                    lines.push(format!("    {} {}", self.paint("31", "reason:"), esc(reason)));
                }
                for g in &record.gates {
                    let color = match g.verdict {
                        Verdict::Pass => "32",
                        Verdict::Warn => "33",
                        _ => "31",
                    };
                    lines.push(format!(
                        "    gate {} {}",
                        self.paint(color, g.verdict.as_str()),
                        esc(&g.message)
                    ));
                }
                for a in &record.artifacts {
                    lines.push(format!(
                        "    artifact {} sha256:{} ({} bytes)",
                        esc(&a.name),
                        short_digest(&a.digest),
                        a.size
                    ));
                }
                lines.extend(self.findings(stage, record));
                if record.state == StageState::Failed || record.state == StageState::Blocked {
                    // A path the user can open, not one relative to a run
                    // directory they would have to find first.
                    let log = match &self.opts.state_dir {
                        Some(state) if !self.run_id.is_empty() => state
                            .join("runs")
                            .join(&self.run_id)
                            .join(&record.log)
                            .display()
                            .to_string(),
                        _ => record.log.clone(),
                    };
                    lines.push(format!("    log: {}", esc(&log)));
                }
                lines
            }
            Event::StageSkipped { stage, reason } => {
                vec![format!("{} {stage} skipped: {}", self.paint("2", "-"), esc(reason))]
            }
            Event::StageCancelled { stage, reason } => {
                self.progress.remove(*stage);
                vec![format!("{} {stage} {}", self.paint("31", "✗"), esc(reason))]
            }
            Event::StageAwaitingApproval { stage, run_id } => vec![format!(
                "{} {stage} awaits approval: run `sluice approve {run_id} {stage}`, then `sluice run --resume {run_id}`",
                self.paint("35", "⏸")
            )],
            Event::RunFinished { record } => {
                let mut lines = Vec::new();
                if !record.stages.is_empty() {
                    let paint = |code: &str, text: &str| self.paint(code, text);
                    lines.extend(summary::stage_table(record, &paint));
                }
                // Always in this order, whatever order the stages ended in,
                // so that two runs' lines compare at a glance.
                const ORDER: [StageState; 9] = [
                    StageState::Passed,
                    StageState::Warned,
                    StageState::Failed,
                    StageState::Blocked,
                    StageState::Cancelled,
                    StageState::Skipped,
                    StageState::AwaitingApproval,
                    StageState::Running,
                    StageState::Pending,
                ];
                let tally = ORDER
                    .iter()
                    .filter_map(|state| {
                        let n = record.stages.values().filter(|r| r.state == *state).count();
                        (n > 0).then(|| format!("{n} {}", state.as_str()))
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let (word, color) = match record.status {
                    RunStatus::Passed => ("passed", "32;1"),
                    RunStatus::Failed => ("failed", "31;1"),
                    RunStatus::Paused => ("paused", "35;1"),
                    RunStatus::Running | RunStatus::Interrupted => ("interrupted", "31;1"),
                };
                lines.push(format!(
                    "run {} {}: {tally}",
                    record.run_id,
                    self.paint(color, word)
                ));
                if record.unsigned_plugins_allowed {
                    lines.push(self.paint(
                        "33;1",
                        "warning: this run allowed unsigned plugins (--allow-unsigned); nothing vouches for the code it ran",
                    ));
                }
                lines
            }
        }
    }
}

/// Where the console's lines go.
enum Output {
    Plain(Box<dyn Write + Send>),
    Live(LiveView),
}

/// Prints events for people.
pub struct Console {
    inner: Mutex<(Renderer, Output)>,
}

impl Console {
    /// Print to stdout: the live view when `live` (see [`live_allowed`])
    /// and stdout is a terminal, plain lines otherwise. Colour on a
    /// terminal without `NO_COLOR`.
    pub fn stdout(mut opts: ConsoleOptions, live: bool) -> Console {
        let terminal = std::io::stdout().is_terminal();
        opts.color = terminal && std::env::var_os("NO_COLOR").is_none();
        let output = if live && terminal {
            Output::Live(LiveView::new(
                indicatif::ProgressDrawTarget::stdout(),
                Box::new(std::io::stdout()),
            ))
        } else {
            Output::Plain(Box::new(std::io::stdout()))
        };
        Console {
            inner: Mutex::new((Renderer::new(opts), output)),
        }
    }

    /// Plain lines to `out` (the CI reporter renders into a buffer and
    /// places the text inside each stage's log group).
    pub fn to_writer(out: Box<dyn Write + Send>, opts: ConsoleOptions) -> Console {
        Console {
            inner: Mutex::new((Renderer::new(opts), Output::Plain(out))),
        }
    }
}

impl Reporter for Console {
    fn event(&self, event: &Event<'_>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let (renderer, output) = &mut *inner;
        let lines = match event {
            Event::StageProgress {
                stage,
                done,
                total,
                message,
            } => match output {
                Output::Live(live) => {
                    if renderer.opts.verbosity != Verbosity::Quiet {
                        live.progress(stage, *done, *total, message);
                    }
                    Vec::new()
                }
                Output::Plain(_) => renderer
                    .progress_line(stage, *done, *total, message, Instant::now())
                    .into_iter()
                    .collect(),
            },
            _ => renderer.lines(event),
        };
        match output {
            Output::Plain(out) => {
                for line in &lines {
                    let _ = writeln!(out, "{line}");
                }
                // Per event, so each line is out before the next arrives.
                let _ = out.flush();
            }
            Output::Live(live) => {
                if let Event::RunFinished { .. } = event {
                    live.clear();
                }
                for line in &lines {
                    live.println(line);
                }
                match event {
                    Event::StageStarted { stage, .. } => live.start(stage),
                    Event::StageFinished { stage, .. }
                    | Event::StageCancelled { stage, .. }
                    | Event::StageAwaitingApproval { stage, .. } => live.finish(stage),
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use sluice_record::artifacts::ArtifactRecord;
    use sluice_record::{RunRecord, StageRecord};

    use crate::report::SharedBuffer as Buffer;

    fn console(verbosity: Verbosity) -> (Console, Buffer) {
        let out = Buffer::default();
        (
            Console::to_writer(Box::new(out.clone()), ConsoleOptions::plain(verbosity)),
            out,
        )
    }

    fn log<'a>(
        line: &'a str,
        level: Option<LogLevel>,
        fields: &'a [(String, String)],
    ) -> Event<'a> {
        Event::StageLog {
            stage: "build",
            line,
            level,
            fields,
        }
    }

    #[test]
    fn levels_are_shown_and_debug_hidden_unless_verbose() {
        let fields = [
            ("file".to_string(), "src/a b.rs".to_string()),
            ("n".to_string(), "3".to_string()),
        ];
        let events = [
            log("plain output", None, &[]),
            log("compiling", Some(LogLevel::Info), &fields),
            log("slow disk", Some(LogLevel::Warn), &[]),
            log("broke", Some(LogLevel::Error), &[]),
            log("cache key", Some(LogLevel::Debug), &[]),
            log("byte 3", Some(LogLevel::Trace), &[]),
        ];
        let (normal, out) = console(Verbosity::Normal);
        for e in &events {
            normal.event(e);
        }
        assert_eq!(
            out.text(),
            "  │ build: plain output\n\
             \x20 │ build: compiling file=\"src/a b.rs\" n=3\n\
             \x20 │ build: warn: slow disk\n\
             \x20 │ build: error: broke\n"
        );
        let (verbose, out) = console(Verbosity::Verbose);
        for e in &events {
            verbose.event(e);
        }
        assert!(out
            .text()
            .ends_with("  │ build: debug: cache key\n  │ build: trace: byte 3\n"));
        let (quiet, out) = console(Verbosity::Quiet);
        for e in &events {
            quiet.event(e);
        }
        assert_eq!(out.text(), "");
    }

    #[test]
    fn agents_are_named_and_a_lost_one_is_said_once_per_move() {
        let assigned = |agent| Event::StageAssigned {
            stage: "build",
            agent,
        };
        let (c, out) = console(Verbosity::Normal);
        c.event(&Event::StageStarted {
            stage: "build",
            attempt: 1,
        });
        c.event(&assigned("a1"));
        c.event(&assigned("a2\u{1b}[2J"));
        // A retry is a new job: its agent is no loss.
        c.event(&Event::StageStarted {
            stage: "build",
            attempt: 2,
        });
        c.event(&assigned("a3"));
        assert_eq!(
            out.text(),
            "▶ build\n\
             \x20 ↳ build on agent a1\n\
             ↻ build: agent a1 lost (no answer); retried on agent a2\\u{1b}[2J\n\
             ▶ build (attempt 2)\n\
             \x20 ↳ build on agent a3\n"
        );
        let (quiet, out) = console(Verbosity::Quiet);
        quiet.event(&assigned("a1"));
        quiet.event(&assigned("a2"));
        assert_eq!(
            out.text(),
            "↻ build: agent a1 lost (no answer); retried on agent a2\n"
        );
    }

    #[test]
    fn levels_are_coloured_on_a_terminal() {
        let mut opts = ConsoleOptions::plain(Verbosity::Normal);
        opts.color = true;
        let mut r = Renderer::new(opts);
        let lines = r.lines(&log("broke", Some(LogLevel::Error), &[]));
        assert_eq!(
            lines,
            ["  \x1b[2m│ build:\x1b[0m \x1b[31;1merror:\x1b[0m broke"]
        );
        let lines = r.lines(&log("slow", Some(LogLevel::Warn), &[]));
        assert!(
            lines[0].contains("\x1b[33;1mwarn:\x1b[0m slow"),
            "{lines:?}"
        );
    }

    #[test]
    fn control_characters_from_a_stage_are_escaped() {
        let fields = [
            ("k\u{1b}".to_string(), "v\u{7}".to_string()),
            ("q".to_string(), "a\u{1b}[2J b".to_string()),
        ];
        let (c, out) = console(Verbosity::Normal);
        c.event(&log(
            "\u{1b}[2J\r✓ deploy passed",
            Some(LogLevel::Info),
            &fields,
        ));
        c.event(&Event::StageProgress {
            stage: "build",
            done: 1,
            total: None,
            message: "\u{1b}]0;title\u{7}",
        });
        let text = out.text();
        assert_eq!(
            text,
            "  │ build: \\u{1b}[2J\\u{d}✓ deploy passed k\\u{1b}=v\\u{7} q=\"a\\u{1b}[2J b\"\n\
             \x20 … build: 1 \\u{1b}]0;title\\u{7}\n"
        );
        assert!(!text.contains('\u{1b}') && !text.contains('\r'));
    }

    #[test]
    fn plain_progress_is_throttled_but_never_silent() {
        let mut r = Renderer::new(ConsoleOptions::plain(Verbosity::Normal));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(
            r.progress_line("test", 0, Some(100), "collecting", at(0))
                .as_deref(),
            Some("  … test: 0/100 collecting")
        );
        // Same tenth and message, soon after: nothing.
        assert_eq!(
            r.progress_line("test", 5, Some(100), "collecting", at(100)),
            None
        );
        // A new tenth, but within a second: nothing yet.
        assert_eq!(
            r.progress_line("test", 12, Some(100), "running", at(500)),
            None
        );
        assert!(r
            .progress_line("test", 13, Some(100), "running", at(1200))
            .is_some());
        // Unchanged for long: a heartbeat.
        assert_eq!(
            r.progress_line("test", 14, Some(100), "running", at(5000)),
            None
        );
        assert!(r
            .progress_line("test", 14, Some(100), "running", at(11_300))
            .is_some());
        // Done: at once.
        assert_eq!(
            r.progress_line("test", 100, Some(100), "running", at(11_400))
                .as_deref(),
            Some("  … test: 100/100 running")
        );
        // Another stage has its own clock; no total: the count alone.
        assert_eq!(
            r.progress_line("lint", 7, None, "", at(11_400)).as_deref(),
            Some("  … lint: 7")
        );
        // Verbose prints every one; quiet none.
        let mut v = Renderer::new(ConsoleOptions::plain(Verbosity::Verbose));
        assert!(v.progress_line("t", 1, None, "", at(0)).is_some());
        assert!(v.progress_line("t", 1, None, "", at(1)).is_some());
        let mut q = Renderer::new(ConsoleOptions::plain(Verbosity::Quiet));
        assert_eq!(q.progress_line("t", 1, None, "", at(0)), None);
    }

    #[test]
    fn live_is_only_for_a_terminal_outside_ci() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(live_allowed(true, env(&[("TERM", "xterm-256color")])));
        assert!(!live_allowed(false, env(&[])));
        assert!(!live_allowed(true, env(&[("CI", "true")])));
        assert!(!live_allowed(true, env(&[("CI", "1")])));
        assert!(live_allowed(true, env(&[("CI", "false")])));
        assert!(!live_allowed(true, env(&[("TERM", "dumb")])));
    }

    fn finished_run() -> RunRecord {
        let mut build = StageRecord::pending("build");
        build.state = StageState::Passed;
        build.duration_ms = Some(500);
        let mut stages = IndexMap::new();
        stages.insert("build".to_owned(), build);
        RunRecord {
            status: RunStatus::Passed,
            ..RunRecord::new("r-1", "p", "/p/sluice.yaml", "sha256:00", stages)
        }
    }

    #[test]
    fn the_run_ends_with_the_table_then_the_final_line() {
        let (c, out) = console(Verbosity::Normal);
        let run = finished_run();
        c.event(&Event::RunFinished { record: &run });
        assert_eq!(
            out.text(),
            "  stage  state     gates  artifacts  time\n\
             \x20 build  ✓ passed  -              0  0.50s\n\
             run r-1 passed: 1 passed\n"
        );
    }

    /// A state directory whose CAS holds `text` as `lint.sarif`; the
    /// record of a `lint` stage with it.
    fn stage_with_sarif(state: &std::path::Path, text: &str) -> StageRecord {
        let cas = Cas::open(&state.join("cas")).expect("cas");
        let dir = state.join("out");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("lint.sarif"), text).expect("write");
        let declared = [(
            "lint.sarif".to_string(),
            "application/sarif+json".to_string(),
        )];
        let artifacts: Vec<ArtifactRecord> = cas
            .ingest_dir(&dir, &declared, &Default::default())
            .expect("ingest");
        let mut r = StageRecord::pending("lint");
        r.state = StageState::Failed;
        r.duration_ms = Some(10);
        r.artifacts = artifacts;
        r
    }

    fn sarif(n: usize) -> String {
        let results: Vec<serde_json::Value> = (1..=n)
            .map(|i| {
                serde_json::json!({
                    "ruleId": "trailing-whitespace", "level": "warning",
                    "message": { "text": "trailing whitespace" },
                    "locations": [{ "physicalLocation": {
                        "artifactLocation": { "uri": "src/a.py" }, "region": { "startLine": i } } }]
                })
            })
            .collect();
        serde_json::json!({ "version": "2.1.0", "runs": [{ "tool": { "driver": { "name": "t" } }, "results": results }] })
            .to_string()
    }

    fn findings_console(state: &std::path::Path, verbosity: Verbosity) -> (Console, Buffer) {
        let out = Buffer::default();
        let mut opts = ConsoleOptions::plain(verbosity);
        opts.state_dir = Some(state.to_path_buf());
        (Console::to_writer(Box::new(out.clone()), opts), out)
    }

    #[test]
    fn a_finished_stage_summarises_its_sarif_findings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let record = stage_with_sarif(dir.path(), &sarif(25));
        let (c, out) = findings_console(dir.path(), Verbosity::Normal);
        c.event(&Event::RunStarted {
            run_id: "r-1",
            pipeline: "p",
            stages: 1,
            jobs: 1,
            resumed: false,
        });
        c.event(&Event::StageFinished {
            stage: "lint",
            record: &record,
        });
        let text = out.text();
        assert!(
            text.contains(
                "    findings: 25 in lint.sarif (25 warnings)\n    by rule: trailing-whitespace 25\n    src/a.py:1: warning trailing-whitespace trailing whitespace\n"
            ),
            "{text}"
        );
        assert!(text.contains("    src/a.py:10: warning"), "{text}");
        assert!(!text.contains("    src/a.py:11: warning"), "{text}");
        assert!(
            text.contains(
                "    … and 15 more in lint.sarif (sluice artifacts get r-1 lint/lint.sarif)\n"
            ),
            "{text}"
        );
        let (c, out) = findings_console(dir.path(), Verbosity::Verbose);
        c.event(&Event::StageFinished {
            stage: "lint",
            record: &record,
        });
        let text = out.text();
        assert!(text.contains("    src/a.py:25: warning"), "{text}");
        assert!(!text.contains("more in"), "{text}");
    }

    #[test]
    fn sarif_that_does_not_parse_is_one_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let record = stage_with_sarif(dir.path(), "{ not json");
        let (c, out) = findings_console(dir.path(), Verbosity::Normal);
        c.event(&Event::StageFinished {
            stage: "lint",
            record: &record,
        });
        let text = out.text();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("findings")).collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(
            lines[0].starts_with("    findings: lint/lint.sarif is not SARIF: "),
            "{text}"
        );
        // A blob changed in the store is refused, also in one line.
        let cas = Cas::open(&dir.path().join("cas")).expect("cas");
        let blob = cas.blob_path(&record.artifacts[0].digest).expect("path");
        std::fs::write(&blob, sarif(1)).expect("tamper");
        let (c, out) = findings_console(dir.path(), Verbosity::Normal);
        c.event(&Event::StageFinished {
            stage: "lint",
            record: &record,
        });
        let text = out.text();
        assert!(
            text.contains("    findings: lint/lint.sarif could not be read: "),
            "{text}"
        );
        assert!(!text.contains("trailing-whitespace"), "{text}");
    }
}
