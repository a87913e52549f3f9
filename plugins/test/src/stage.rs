//! One run of the stage: run the command (if any), read the reports,
//! write the artifacts and build the report.

use std::path::Path;

use sluice_sdk::exec::ExecOutput;
use sluice_sdk::{Capability, Context, Gate, Report, StageError};

use crate::command::CommandSpec;
use crate::config::Settings;
use crate::files::Snapshot;
use crate::reports::{self, CoverageReport, JunitFile, JunitFiles};
use crate::summary;

/// How many lines of the command's output an error quotes.
const TAIL_LINES: usize = 20;

/// Runs the stage.
pub fn run(ctx: &Context) -> Result<Report, StageError> {
    let settings = Settings::from_context(ctx)?;
    let root = ctx.workspace();
    require_workspace(&root)?;

    let coverage_rel = settings.coverage.as_ref().map(|(p, _)| p.as_str());
    let ran = match &settings.command {
        Some(cmd) => {
            let mut watched = settings.junit.clone();
            watched.extend(coverage_rel.map(str::to_string));
            let before = Snapshot::take(&root, &watched)?;
            let out = cmd.run()?;
            if out.timed_out {
                return Err(StageError::failed(format!(
                    "the test command `{}` was killed after its timeout (with.timeout or the \
                     stage's timeout){}",
                    cmd.display(),
                    quoted_tail(&out)
                )));
            }
            Some((cmd, out, before))
        }
        None => None,
    };
    let before = ran.as_ref().map(|(_, _, b)| b);

    let files = reports::junit_files(&root, &settings.junit, coverage_rel, before)?;
    if files.fresh.is_empty() {
        return Err(no_reports(
            &settings.junit,
            &files,
            ran.as_ref().map(|(c, o, _)| (*c, o)),
        ));
    }
    let (results, junit_files) = reports::read_junit(files.fresh)?;
    let coverage = match &settings.coverage {
        Some((rel, format)) => reports::read_coverage(&root, rel, *format, before)?,
        None => None,
    };

    write_artifacts(ctx, &results, &junit_files, coverage.as_ref())?;

    let mut report = Report::new(summary::short(&results, coverage.as_ref()))
        .metric("tests.passed", results.passed() as f64)
        .metric("tests.failed", results.failed() as f64)
        .metric("tests.skipped", results.skipped() as f64)
        .metric("tests.total", results.total() as f64)
        .metric_with_unit("tests.duration_s", results.duration_s, "s");
    if let Some(pct) = coverage.as_ref().and_then(|c| c.percent) {
        report = report.metric_with_unit("coverage.line", pct, "%");
    }
    if let Some((cmd, out, _)) = &ran {
        if let Some(gate) = command_gate(cmd, out, results.failed()) {
            report = report.gate(gate);
        }
    }
    sluice_sdk::info!("{}", summary::headline(&results, coverage.as_ref()));
    Ok(report)
}

/// The reports are read from the workspace, so the stage needs it.
fn require_workspace(root: &Path) -> Result<(), StageError> {
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        _ => {
            sluice_sdk::error(
                "the test stage reads its reports from the workspace (`workspace: write` when \
                 the test command writes the reports there)",
            );
            Err(StageError::denied(Capability::WorkspaceRead))
        }
    }
}

/// A command that exits non-zero while the reports show failures is
/// normal (the pipeline's gates decide). One that exits non-zero with no
/// failed test failed for another reason (a coverage threshold, a crash
/// after the report was written...): that must not pass silently.
fn command_gate(cmd: &CommandSpec, out: &ExecOutput, failed: usize) -> Option<Gate> {
    if out.success() {
        return None;
    }
    if failed > 0 {
        sluice_sdk::info!(
            "the test command {} with {failed} failed tests; the pipeline's gates decide",
            out.outcome()
        );
        return None;
    }
    let tail = out.tail(3).replace('\n', " | ");
    Some(
        Gate::fail(
            "test-command",
            format!(
                "`{}` {} although no test failed: {tail}",
                cmd.display(),
                out.outcome()
            ),
        )
        .observed(f64::from(out.status))
        .threshold(0.0),
    )
}

/// The error when no JUnit file was found (or only stale ones).
fn no_reports(
    patterns: &[String],
    files: &JunitFiles,
    ran: Option<(&CommandSpec, &ExecOutput)>,
) -> StageError {
    let wanted = patterns.join("`, `");
    let stale = if files.stale.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = files.stale.iter().map(|f| f.rel.as_str()).collect();
        format!(
            " ({} left from an earlier run and not rewritten: {})",
            if names.len() == 1 {
                "one file is"
            } else {
                "files are"
            },
            names.join(", ")
        )
    };
    match ran {
        Some((cmd, out)) if !out.success() => StageError::failed(format!(
            "the test command `{}` {} and wrote no JUnit report matching `{wanted}`{stale}{}",
            cmd.display(),
            out.outcome(),
            quoted_tail(out)
        )),
        Some((cmd, _)) => StageError::failed(format!(
            "the test command `{}` succeeded but wrote no JUnit report matching `{wanted}`{stale}; \
             make the command write one there (pytest: --junitxml=PATH) or fix with.junit",
            cmd.display()
        )),
        None => StageError::failed(format!(
            "no JUnit report matches `{wanted}` in the workspace; set with.junit to where the \
             tests write it, or add with.command to run them"
        )),
    }
}

fn quoted_tail(out: &ExecOutput) -> String {
    let tail = out.tail(TAIL_LINES);
    if tail.is_empty() {
        String::new()
    } else {
        format!(":\n{tail}")
    }
}

/// `junit.xml` (or `junit/<path>` for several), the coverage report, and
/// `test-summary.md`.
fn write_artifacts(
    ctx: &Context,
    results: &crate::junit::Results,
    junit: &[JunitFile],
    coverage: Option<&CoverageReport>,
) -> Result<(), StageError> {
    let single = junit.len() == 1;
    for f in junit {
        let name = if single {
            "junit.xml".to_string()
        } else {
            format!("junit/{}", f.found.rel)
        };
        ctx.write_artifact(&name, &f.bytes, "application/xml")?;
    }
    if let Some(c) = coverage {
        let (name, media_type) = c.format.artifact();
        ctx.write_artifact(name, &c.bytes, media_type)?;
    }
    let sources: Vec<String> = junit.iter().map(|f| f.found.rel.clone()).collect();
    ctx.write_artifact(
        "test-summary.md",
        summary::markdown(results, coverage, &sources),
        "text/markdown",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(status: i32, stderr: &str) -> ExecOutput {
        ExecOutput {
            status,
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
            truncated: false,
            timed_out: false,
        }
    }

    fn cmd() -> CommandSpec {
        CommandSpec {
            program: "python3".into(),
            args: vec!["-m".into(), "pytest".into()],
            cwd: None,
            timeout: None,
        }
    }

    #[test]
    fn nonzero_exit_without_failures_is_a_failed_gate() {
        assert!(command_gate(&cmd(), &out(0, ""), 0).is_none());
        assert!(command_gate(&cmd(), &out(1, ""), 2).is_none());
        let g = command_gate(
            &cmd(),
            &out(2, "FAIL Required test coverage of 90% not reached"),
            0,
        );
        let g = g.map(|g| (g.verdict, g.message));
        assert_eq!(
            g,
            Some((
                sluice_sdk::Verdict::Fail,
                "`python3 -m pytest` exited 2 although no test failed: FAIL Required test coverage of 90% not reached".into()
            ))
        );
    }

    #[test]
    fn missing_reports_quote_the_command() {
        let files = JunitFiles::default();
        let e = no_reports(
            &["junit.xml".into()],
            &files,
            Some((&cmd(), &out(4, "ERROR: file not found: tests/"))),
        );
        assert_eq!(
            e,
            StageError::failed(
                "the test command `python3 -m pytest` exited 4 and wrote no JUnit report matching `junit.xml`:\nERROR: file not found: tests/"
            )
        );
        let e = no_reports(&["junit.xml".into()], &files, None);
        assert!(e
            .message()
            .starts_with("no JUnit report matches `junit.xml`"));
    }
}
