//! Native output inside CI systems (docs/ci.md). Detected from the
//! environment (`GITHUB_ACTIONS=true`, `GITLAB_CI=true`) unless `--ci`
//! (`SLUICE_CI`) says otherwise:
//! - GitHub Actions: one log group per stage, annotations from SARIF
//!   findings and failed JUnit tests, a job summary, step outputs
//!   ([`github`]);
//! - GitLab CI: one collapsible section per stage, and Code Quality and
//!   JUnit reports written to a directory ([`gitlab`]).
//!
//! The console's own text is unchanged; [`CiReporter`] renders it into a
//! buffer and places each stage's lines inside that stage's group. Groups
//! cannot nest or interleave, so while one stage's group is open, the
//! lines of stages running beside it wait and follow as whole groups.

pub mod findings;
pub mod github;
pub mod gitlab;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::cli::CiFlag;
use crate::report::console::{Console, ConsoleOptions, Verbosity};
use crate::report::{Event, Reporter};
use sluice_files::fsutil::write_atomic;
use sluice_record::artifacts::Cas;
use sluice_record::RunRecord;

/// A CI system sluice has native output for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiSystem {
    /// GitHub Actions.
    Github,
    /// GitLab CI/CD.
    Gitlab,
}

/// The CI system in effect: `flag` (`--ci` / `SLUICE_CI`) when it names
/// one, else the environment's (`GITHUB_ACTIONS=true`, `GITLAB_CI=true`).
pub fn detect(flag: Option<CiFlag>, var: impl Fn(&str) -> Option<OsString>) -> Option<CiSystem> {
    match flag {
        Some(CiFlag::Github) => Some(CiSystem::Github),
        Some(CiFlag::Gitlab) => Some(CiSystem::Gitlab),
        Some(CiFlag::None) => None,
        Some(CiFlag::Auto) | None => {
            let on = |k: &str| var(k).is_some_and(|v| v == "true");
            if on("GITHUB_ACTIONS") {
                Some(CiSystem::Github)
            } else if on("GITLAB_CI") {
                Some(CiSystem::Gitlab)
            } else {
                None
            }
        }
    }
}

/// Where the CI output goes.
#[derive(Debug, Clone)]
pub struct CiOptions {
    /// The system.
    pub system: CiSystem,
    /// `--json`: stdout carries JSON lines only, so no workflow commands
    /// or sections are printed; the files are still written.
    pub json: bool,
    /// Stream stage log lines (not `--quiet`).
    pub show_logs: bool,
    /// `--verbose`: every log line and every finding.
    pub verbose: bool,
    /// The state directory (its `cas/` holds the reports).
    pub state_dir: PathBuf,
    /// The working directory: absolute finding paths under it are made
    /// relative, and a relative `reports_dir` is under it.
    pub cwd: PathBuf,
    /// GitLab: where the report files go (`--ci-reports`).
    pub reports_dir: PathBuf,
    /// GitHub: `$GITHUB_STEP_SUMMARY`.
    pub step_summary: Option<PathBuf>,
    /// GitHub: `$GITHUB_OUTPUT`.
    pub output: Option<PathBuf>,
}

/// Renders stage groups and, when the run ends, the CI system's reports.
pub struct CiReporter {
    opts: CiOptions,
    /// The console (rendering into `captured`) or the JSON reporter.
    inner: Arc<dyn Reporter>,
    captured: Option<Arc<Mutex<Vec<u8>>>>,
    groups: Mutex<Groups>,
    out: Mutex<Box<dyn Write + Send>>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl CiReporter {
    /// Writes to stdout; `json` is the JSON-lines reporter to pass events
    /// to under `--json`.
    pub fn new(opts: CiOptions, json: Option<Arc<dyn Reporter>>) -> CiReporter {
        let (inner, captured) = match json.filter(|_| opts.json) {
            Some(json) => (json, None),
            None => {
                let buffer = Arc::new(Mutex::new(Vec::new()));
                let verbosity = match (opts.show_logs, opts.verbose) {
                    (false, _) => Verbosity::Quiet,
                    (true, false) => Verbosity::Normal,
                    (true, true) => Verbosity::Verbose,
                };
                let console: Arc<dyn Reporter> = Arc::new(Console::to_writer(
                    Box::new(crate::report::SharedBuffer(buffer.clone())),
                    ConsoleOptions {
                        state_dir: Some(opts.state_dir.clone()),
                        cwd: opts.cwd.clone(),
                        ..ConsoleOptions::plain(verbosity)
                    },
                ));
                (console, Some(buffer))
            }
        };
        CiReporter {
            groups: Mutex::new(Groups::new(opts.system, unix_now)),
            opts,
            inner,
            captured,
            out: Mutex::new(Box::new(std::io::stdout())),
        }
    }

    fn print(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }

    /// Annotations / summary / outputs (GitHub) or report files (GitLab);
    /// returns what to print.
    fn finish(&self, record: &RunRecord) -> String {
        let reports = match Cas::open(&self.opts.state_dir.join("cas")) {
            Ok(cas) => findings::collect(record, &cas, &self.opts.cwd),
            Err(e) => findings::Reports {
                problems: vec![format!("the artifact store cannot be read: {e}")],
                ..Default::default()
            },
        };
        let mut text = String::new();
        match self.opts.system {
            CiSystem::Github => {
                for line in
                    github::annotations(&reports, github::ANNOTATIONS_PER_KIND, &record.run_id)
                {
                    text.push_str(&line);
                    text.push('\n');
                }
                if let Some(path) = &self.opts.step_summary {
                    append(
                        path,
                        "GITHUB_STEP_SUMMARY",
                        &github::summary(record, &reports),
                    );
                }
                if let Some(path) = &self.opts.output {
                    append(path, "GITHUB_OUTPUT", &github::outputs(record));
                }
            }
            CiSystem::Gitlab => {
                let dir = self.opts.cwd.join(&self.opts.reports_dir);
                let pipeline = record
                    .pipeline_path
                    .strip_prefix(&self.opts.cwd)
                    .unwrap_or(&record.pipeline_path)
                    .to_string_lossy()
                    .into_owned();
                let files = [
                    (
                        gitlab::CODE_QUALITY_FILE,
                        gitlab::code_quality(&reports, &pipeline),
                    ),
                    (gitlab::JUNIT_FILE, gitlab::merged_junit(&reports)),
                ];
                let written = std::fs::create_dir_all(&dir).and_then(|()| {
                    files
                        .iter()
                        .try_for_each(|(name, body)| write_atomic(&dir.join(name), body.as_bytes()))
                });
                match written {
                    Ok(()) => text.push_str(&format!(
                        "sluice: GitLab reports: {} ({} issues), {} ({} failed tests)\n",
                        self.opts
                            .reports_dir
                            .join(gitlab::CODE_QUALITY_FILE)
                            .display(),
                        reports.findings.len(),
                        self.opts.reports_dir.join(gitlab::JUNIT_FILE).display(),
                        reports.failed_tests.len(),
                    )),
                    Err(e) => eprintln!(
                        "sluice: warning: the GitLab reports could not be written to {}: {e}",
                        dir.display()
                    ),
                }
            }
        }
        for p in &reports.problems {
            text.push_str(&format!(
                "sluice: warning: {}\n",
                crate::report::escape_controls(p)
            ));
        }
        text
    }
}

/// Appends `text` to the file GitHub named in `$var`; a failure is a
/// warning, never a failed run.
fn append(path: &Path, var: &str, text: &str) {
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "sluice: warning: cannot append to ${var} ({}): {e}",
            path.display()
        );
    }
}

impl Reporter for CiReporter {
    fn event(&self, event: &Event<'_>) {
        let Some(captured) = &self.captured else {
            // `--json`: the stream stays pure; only the files are written.
            self.inner.event(event);
            if let Event::RunFinished { record } = event {
                // Not on stdout: it carries JSON lines only.
                eprint!("{}", self.finish(record));
            }
            return;
        };
        // One event at a time, so the text taken is this event's.
        let Ok(mut groups) = self.groups.lock() else {
            return;
        };
        self.inner.event(event);
        let text = captured
            .lock()
            .map(|mut b| String::from_utf8_lossy(&std::mem::take(&mut *b)).into_owned())
            .unwrap_or_default();
        match event {
            Event::StageStarted { stage, .. }
            | Event::StageLog { stage, .. }
            | Event::StageProgress { stage, .. }
            | Event::StageRetrying { stage, .. } => groups.stage(stage, &text, false),
            Event::StageFinished { stage, .. } | Event::StageCancelled { stage, .. }
                if groups.knows(stage) =>
            {
                groups.stage(stage, &text, true)
            }
            Event::RunFinished { record } => {
                groups.close_all();
                groups.loose(&text);
                let after = self.finish(record);
                groups.loose(&after);
            }
            _ => groups.loose(&text),
        }
        let out = std::mem::take(&mut groups.out);
        self.print(&out);
    }
}

/// A stage whose lines wait for the open group to close.
struct Waiting {
    stage: String,
    text: String,
    done: bool,
}

/// Which stage's group is open, and what waits.
struct Groups {
    system: CiSystem,
    now: fn() -> u64,
    open: Option<String>,
    waiting: Vec<Waiting>,
    /// Lines of no stage, held while a group is open.
    loose: String,
    /// Ready to print.
    out: String,
}

impl Groups {
    fn new(system: CiSystem, now: fn() -> u64) -> Groups {
        Groups {
            system,
            now,
            open: None,
            waiting: Vec::new(),
            loose: String::new(),
            out: String::new(),
        }
    }

    fn knows(&self, stage: &str) -> bool {
        self.open.as_deref() == Some(stage) || self.waiting.iter().any(|w| w.stage == stage)
    }

    fn start(&mut self, stage: &str) {
        let line = match self.system {
            CiSystem::Github => github::group_start(stage),
            CiSystem::Gitlab => {
                gitlab::section_start(stage, &format!("stage {stage}"), (self.now)())
            }
        };
        self.out.push_str(&line);
        self.out.push('\n');
    }

    fn end(&mut self, stage: &str) {
        let line = match self.system {
            CiSystem::Github => github::GROUP_END.to_string(),
            CiSystem::Gitlab => gitlab::section_end(stage, (self.now)()),
        };
        self.out.push_str(&line);
        self.out.push('\n');
    }

    /// `text` of `stage`; `done` when the stage ended with it.
    fn stage(&mut self, stage: &str, text: &str, done: bool) {
        if self.open.as_deref() == Some(stage) {
            self.out.push_str(text);
        } else if let Some(w) = self.waiting.iter_mut().find(|w| w.stage == stage) {
            w.text.push_str(text);
            w.done |= done;
            return;
        } else if self.open.is_none() {
            self.start(stage);
            self.out.push_str(text);
            self.open = Some(stage.to_string());
        } else {
            self.waiting.push(Waiting {
                stage: stage.to_string(),
                text: text.to_string(),
                done,
            });
            return;
        }
        if done {
            self.end(stage);
            self.open = None;
            self.next();
        }
    }

    /// After a group closed: held loose lines, then the waiting stages in
    /// the order they started, until one that still runs stays open.
    fn next(&mut self) {
        let loose = std::mem::take(&mut self.loose);
        self.out.push_str(&loose);
        while self.open.is_none() && !self.waiting.is_empty() {
            let w = self.waiting.remove(0);
            self.start(&w.stage);
            self.out.push_str(&w.text);
            if w.done {
                self.end(&w.stage);
            } else {
                self.open = Some(w.stage);
            }
        }
    }

    fn loose(&mut self, text: &str) {
        if self.open.is_some() {
            self.loose.push_str(text);
        } else {
            self.out.push_str(text);
        }
    }

    /// The run ended: close every group, whatever its state.
    fn close_all(&mut self) {
        if let Some(open) = self.open.take() {
            self.end(&open);
        }
        for w in &mut self.waiting {
            w.done = true;
        }
        self.next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn detection_prefers_the_flag_then_the_environment() {
        assert_eq!(
            detect(None, env(&[("GITHUB_ACTIONS", "true")])),
            Some(CiSystem::Github)
        );
        assert_eq!(
            detect(None, env(&[("GITLAB_CI", "true")])),
            Some(CiSystem::Gitlab)
        );
        assert_eq!(detect(None, env(&[("GITHUB_ACTIONS", "1")])), None);
        assert_eq!(detect(None, env(&[])), None);
        assert_eq!(
            detect(Some(CiFlag::None), env(&[("GITHUB_ACTIONS", "true")])),
            None
        );
        assert_eq!(
            detect(Some(CiFlag::Gitlab), env(&[("GITHUB_ACTIONS", "true")])),
            Some(CiSystem::Gitlab)
        );
        assert_eq!(
            detect(Some(CiFlag::Auto), env(&[("GITLAB_CI", "true")])),
            Some(CiSystem::Gitlab)
        );
    }

    #[test]
    fn parallel_stages_never_interleave_inside_a_group() {
        let mut g = Groups::new(CiSystem::Github, || 0);
        g.loose("header\n");
        g.stage("a", "▶ a\n", false);
        g.stage("b", "▶ b\n", false);
        g.stage("a", "a1\n", false);
        g.stage("b", "b1\n", false);
        g.loose("warning\n");
        g.stage("b", "✓ b\n", true);
        g.stage("c", "▶ c\n", false);
        g.stage("a", "✓ a\n", true);
        g.stage("c", "c1\n", false);
        g.close_all();
        assert_eq!(
            g.out,
            "header\n::group::a\n▶ a\na1\n✓ a\n::endgroup::\nwarning\n\
             ::group::b\n▶ b\nb1\n✓ b\n::endgroup::\n::group::c\n▶ c\nc1\n::endgroup::\n"
        );
    }

    #[test]
    fn gitlab_sections_carry_the_time() {
        let mut g = Groups::new(CiSystem::Gitlab, || 42);
        g.stage("lint", "x\n", true);
        assert_eq!(
            g.out,
            "\x1b[0Ksection_start:42:sluice_lint\r\x1b[0Kstage lint\nx\n\x1b[0Ksection_end:42:sluice_lint\r\x1b[0K\n"
        );
    }
}
