//! One run of the stage: run the command (if any), read the reports,
//! write the artifacts and build the report.

use std::path::Path;

use sluice_sdk::exec::ExecOutput;
use sluice_sdk::{Capability, Context, Gate, Report, StageError};

use crate::command::CommandSpec;
use crate::config::{ResultFormat, Settings};
use crate::files::Snapshot;
use crate::junit::Results;
use crate::reports::{self, CoverageReport, JunitFile, JunitFiles};
use crate::runner::Runner;
use crate::{libtest, nextest, summary, writer};

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
    if let Some((_, out, _)) = &ran {
        if out.truncated {
            sluice_sdk::warn!(
                "the test command's output was cut off at the stage's output limit; results \
                 read from it may be incomplete"
            );
        }
    }

    let (results, sources) = match (&settings.format, &ran) {
        (ResultFormat::Cargo, Some((cmd, out, _))) => {
            let results = cargo_results(cmd, out)?;
            (results, Sources::Output(cmd.display()))
        }
        _ => {
            let files = reports::junit_files(&root, &settings.junit, coverage_rel, before)?;
            if files.fresh.is_empty() {
                return Err(no_reports(
                    &settings.junit,
                    &files,
                    ran.as_ref().map(|(c, o, _)| (*c, o)),
                ));
            }
            let (mut results, junit_files) = reports::read_junit(files.fresh)?;
            if let Some((cmd, out, _)) = &ran {
                add_nextest_counts(cmd, out, &mut results);
            }
            (results, Sources::Files(junit_files))
        }
    };
    if let Some(declared) = results.declared {
        sluice_sdk::info!(
            "the reports' tests= attributes add up to {declared}, the stage counts {} test \
             cases (pytest counts every subtest and teardown report there; a subtest is not a \
             test of its own here)",
            results.total()
        );
    }
    let coverage = match &settings.coverage {
        Some((rel, format)) => reports::read_coverage(&root, rel, *format, before)?,
        None => None,
    };

    write_artifacts(ctx, &results, &sources, coverage.as_ref())?;

    let mut report = Report::new(summary::short(&results, coverage.as_ref()))
        .metric("tests.passed", results.passed() as f64)
        .metric("tests.failed", results.failed() as f64)
        .metric("tests.skipped", results.skipped() as f64)
        .metric("tests.not_run", results.not_run() as f64)
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

/// Where the results were read from.
enum Sources {
    /// JUnit files.
    Files(Vec<JunitFile>),
    /// The output of this command line (`format: cargo`).
    Output(String),
}

/// `format: cargo`: the results in `cargo test`'s console output.
fn cargo_results(cmd: &CommandSpec, out: &ExecOutput) -> Result<Results, StageError> {
    let results = libtest::parse(&out.stdout_str(), &out.stderr_str()).map_err(|e| {
        if out.success() {
            StageError::failed(format!(
                "the test command `{}` succeeded but printed no test results: {e}; with \
                 `format: cargo` the command must be `cargo test` (its stdout is read)",
                cmd.display()
            ))
        } else {
            StageError::failed(format!(
                "the test command `{}` {} and printed no test results (did it build?){}",
                cmd.display(),
                out.outcome(),
                quoted_tail(out)
            ))
        }
    })?;
    if libtest::target_failed(&out.stderr_str()) && !cmd.args.iter().any(|a| a == "--no-fail-fast")
    {
        sluice_sdk::warn!(
            "cargo stops at the first test target that fails: the targets after it (and the \
             doc-tests) did not run and are not counted; add `--no-fail-fast` to run them all"
        );
    }
    Ok(results)
}

/// nextest leaves skipped and not-run tests out of its JUnit report: take
/// their numbers from its summary line when this run was nextest's.
fn add_nextest_counts(cmd: &CommandSpec, out: &ExecOutput, results: &mut Results) {
    if Runner::detect(&cmd.program, &cmd.args) != Runner::Nextest {
        return;
    }
    let Some(s) = nextest::summary(&out.stderr_str()) else {
        return;
    };
    results.unnamed.skipped += s.skipped.saturating_sub(results.skipped());
    results.unnamed.not_run += s.not_run.saturating_sub(results.not_run());
    if s.not_run > 0 {
        sluice_sdk::warn!(
            "nextest did not run {} tests (it stops at the first failure); add \
             `--no-fail-fast` to run them all",
            s.not_run
        );
    }
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
             make the command write one there ({}) or fix with.junit",
            cmd.display(),
            Runner::detect(&cmd.program, &cmd.args).junit_hint()
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

/// `junit.xml` (or `junit/<path>` for several; written from the results
/// for `format: cargo`), the coverage report, and `test-summary.md`.
fn write_artifacts(
    ctx: &Context,
    results: &Results,
    sources: &Sources,
    coverage: Option<&CoverageReport>,
) -> Result<(), StageError> {
    let sources = match sources {
        Sources::Files(junit) => {
            let single = junit.len() == 1;
            for f in junit {
                let name = if single {
                    "junit.xml".to_string()
                } else {
                    format!("junit/{}", f.found.rel)
                };
                ctx.write_artifact(&name, &f.bytes, "application/xml")?;
            }
            junit.iter().map(|f| f.found.rel.clone()).collect()
        }
        Sources::Output(line) => {
            ctx.write_artifact("junit.xml", writer::to_xml(results), "application/xml")?;
            vec![format!("the output of `{line}`")]
        }
    };
    if let Some(c) = coverage {
        let (name, media_type) = c.format.artifact();
        ctx.write_artifact(name, &c.bytes, media_type)?;
    }
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

    fn run_cmd(program: &str, args: &[&str]) -> CommandSpec {
        CommandSpec {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            cwd: None,
            timeout: None,
        }
    }

    fn output(status: i32, stdout: &str, stderr: &str) -> ExecOutput {
        ExecOutput {
            stdout: stdout.as_bytes().to_vec(),
            ..out(status, stderr)
        }
    }

    #[test]
    fn a_successful_command_without_a_report_gets_its_runners_hint() {
        let files = JunitFiles::default();
        let hint = |c: CommandSpec| {
            no_reports(&["junit.xml".into()], &files, Some((&c, &out(0, ""))))
                .message()
                .to_string()
        };
        let cargo = hint(run_cmd("cargo", &["test"]));
        assert!(
            cargo.starts_with("the test command `cargo test` succeeded but wrote no JUnit report")
                && cargo.contains("set `format: cargo`")
                && !cargo.contains("pytest"),
            "{cargo}"
        );
        assert!(hint(cmd()).contains("--junitxml=PATH"));
        assert!(hint(run_cmd("cargo", &["nextest", "run"])).contains("[profile.default.junit]"));
        assert!(hint(run_cmd("npx", &["jest"])).contains("jest-junit"));
        assert!(hint(run_cmd("go", &["test", "./..."])).contains("gotestsum --junitfile"));
        // An unknown runner gets the whole list.
        let other = hint(run_cmd("make", &["check"]));
        assert!(
            other.contains("pytest") && other.contains("format: cargo"),
            "{other}"
        );
    }

    #[test]
    fn cargo_output_results_and_errors() -> Result<(), StageError> {
        let stdout = include_str!("../../../tests/fixtures/test-stage/cargo-test.stdout");
        let stderr = include_str!("../../../tests/fixtures/test-stage/cargo-test.stderr");
        let c = run_cmd("cargo", &["test", "--no-fail-fast"]);
        let r = cargo_results(&c, &output(101, stdout, stderr))?;
        assert_eq!((r.passed(), r.failed(), r.skipped()), (4, 3, 2));
        // A build failure: no libtest output, the compiler's error quoted.
        let e = cargo_results(&c, &output(101, "", "error[E0308]: mismatched types"));
        let m = e.map(|_| ()).expect_err("no results").message().to_string();
        assert!(
            m.starts_with("the test command `cargo test --no-fail-fast` exited 101 and printed no test results")
                && m.ends_with("error[E0308]: mismatched types"),
            "{m}"
        );
        let e = cargo_results(&c, &output(0, "hello\n", ""));
        let m = e.map(|_| ()).expect_err("no results").message().to_string();
        assert!(m.contains("succeeded but printed no test results"), "{m}");
        Ok(())
    }

    #[test]
    fn nextest_summary_adds_skipped_and_not_run() -> Result<(), String> {
        let xml = include_str!("../../../tests/fixtures/test-stage/nextest-fail-fast.xml");
        let stderr = include_str!("../../../tests/fixtures/test-stage/nextest-fail-fast.stderr");
        let mut r = crate::junit::parse(xml)?;
        add_nextest_counts(
            &run_cmd("cargo", &["nextest", "run"]),
            &output(100, "", stderr),
            &mut r,
        );
        assert_eq!(
            (r.passed(), r.failed(), r.skipped(), r.not_run(), r.total()),
            (1, 1, 2, 3, 7)
        );
        // Only for nextest's own runs: another command's output is not read.
        let mut r = crate::junit::parse(xml)?;
        add_nextest_counts(&cmd(), &output(1, "", stderr), &mut r);
        assert_eq!((r.skipped(), r.not_run()), (0, 0));
        Ok(())
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
