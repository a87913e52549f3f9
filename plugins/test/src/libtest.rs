//! `cargo test`'s console output (libtest's stable human format), read
//! into the same [`Results`] a JUnit report gives.
//!
//! Why the console and not a file: on stable Rust, libtest's machine
//! formats (`--format junit`, `--format json`) are refused unless
//! `-Z unstable-options` is allowed, which only nightly does (or the
//! `RUSTC_BOOTSTRAP=1` hack, which the stage does not rely on). The human
//! format is stable and carries everything needed:
//!
//! ```text
//! running 3 tests                                   <- one block per test binary / doc-tests
//! test tests::adds ... ok
//! test tests::rounds ... FAILED
//! test tests::db ... ignored, needs the staging database
//!
//! failures:
//!
//! ---- tests::rounds stdout ----                    <- captured output and panic message
//! thread 'tests::rounds' (18) panicked at src/lib.rs:20:9:
//! assertion `left == right` failed: totals must round up
//!
//! failures:
//!     tests::rounds
//!
//! test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s
//! ```
//!
//! The `test result:` line of each block is authoritative for the counts:
//! tests it counts that no `test NAME ... RESULT` line names (`cargo test
//! -q` prints dots; `--nocapture` output can split a result line) are
//! counted without a name, and failures are named from the `failures:`
//! list. `filtered out` tests are not tests of this run and are not
//! counted; `measured` (benchmarks) are not either. cargo prints
//! `Running <target> (<binary>)` / `Doc-tests <crate>` on stderr: when
//! there is one such line per block, it names the tests' class (the test
//! binary's target name, or `<crate> doc-tests`).

use crate::junit::{Outcome, Results, TestCase, Unnamed};

/// Parses `cargo test`'s stdout (the test binaries' output) with cargo's
/// stderr (which binary ran). An error when there is no libtest output.
pub fn parse(stdout: &str, stderr: &str) -> Result<Results, String> {
    let blocks = blocks(stdout);
    if blocks.is_empty() {
        return Err(
            "no libtest output (`running N tests` ... `test result:`) in the command's \
                    stdout"
                .to_string(),
        );
    }
    let labels = targets(stderr);
    let labelled = labels.len() == blocks.len();
    let mut results = Results::default();
    for (i, block) in blocks.into_iter().enumerate() {
        let class = if labelled {
            labels[i].clone()
        } else {
            String::new()
        };
        results.merge(block.into_results(&class));
    }
    Ok(results)
}

/// True when cargo reported a failed test target: without
/// `--no-fail-fast`, cargo does not run the targets after it.
pub fn target_failed(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("error: test failed, to rerun pass")
            || l.starts_with("error: doctest failed, to rerun pass")
    })
}

/// The class name of each block, from cargo's stderr, in order.
fn targets(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            if let Some(rest) = l.strip_prefix("Running ") {
                // `unittests src/lib.rs (target/debug/deps/name-0123abcd)`
                let binary = rest.rsplit_once(" (")?.1.trim_end_matches(')');
                let file = binary.rsplit(['/', '\\']).next()?;
                let file = file.strip_suffix(".exe").unwrap_or(file);
                Some(file.rsplit_once('-').map_or(file, |(n, _)| n).to_string())
            } else {
                l.strip_prefix("Doc-tests ")
                    .map(|c| format!("{} doc-tests", c.trim()))
            }
        })
        .collect()
}

/// One `running N tests` ... `test result:` block.
#[derive(Debug, Default)]
struct Block {
    /// `test NAME ... RESULT` lines, in order.
    tests: Vec<(String, Outcome)>,
    /// `---- NAME stdout ----` sections.
    sections: Vec<(String, String)>,
    /// The `failures:` list at the end.
    failure_list: Vec<String>,
    /// The `test result:` counts (passed, failed, ignored) and seconds.
    summary: Option<(usize, usize, usize, f64)>,
}

/// Where the parser is inside a block.
enum State {
    Tests,
    Section(String, Vec<String>),
    FailureList,
}

fn blocks(stdout: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut cur: Option<(Block, State)> = None;
    // `test NAME ... ` waiting for its result on a later line (single
    // threaded `--nocapture` prints the test's output in between).
    let mut pending: Option<String> = None;
    for raw in stdout.lines() {
        let line = raw.trim_end();
        if let Some(rest) = line.strip_prefix("running ") {
            if rest.ends_with(" test") || rest.ends_with(" tests") {
                if let Some((b, _)) = cur.take() {
                    out.push(b);
                }
                cur = Some((Block::default(), State::Tests));
                pending = None;
                continue;
            }
        }
        let Some((block, state)) = cur.as_mut() else {
            continue;
        };
        if let Some(rest) = line.strip_prefix("test result: ") {
            block.summary = summary(rest);
            if let State::Section(name, lines) = std::mem::replace(state, State::Tests) {
                block.sections.push((name, lines.join("\n")));
            }
            if let Some((b, _)) = cur.take() {
                out.push(b);
            }
            continue;
        }
        if let Some(name) = section_header(line) {
            if let State::Section(prev, lines) = std::mem::replace(state, State::Tests) {
                block.sections.push((prev, lines.join("\n")));
            }
            *state = State::Section(name.to_string(), Vec::new());
            continue;
        }
        if line == "failures:" {
            // The first `failures:` opens the sections, the second the
            // list of names (with nothing captured, both are lists).
            if let State::Section(prev, lines) = std::mem::replace(state, State::FailureList) {
                block.sections.push((prev, lines.join("\n")));
            }
            continue;
        }
        match state {
            State::Section(_, lines) => lines.push(raw.to_string()),
            State::FailureList => {
                if let Some(name) = raw.strip_prefix("    ") {
                    block.failure_list.push(name.trim().to_string());
                }
            }
            State::Tests => {
                if let Some((name, outcome)) = result_line(line) {
                    block.tests.push((name, outcome));
                    pending = None;
                } else if let Some(name) = line
                    .strip_prefix("test ")
                    .and_then(|r| r.strip_suffix(" ..."))
                {
                    pending = Some(name.to_string());
                } else if let (Some(name), Some(outcome)) = (&pending, outcome(line.trim())) {
                    block.tests.push((clean_name(name), outcome));
                    pending = None;
                }
            }
        }
    }
    if let Some((b, _)) = cur {
        out.push(b);
    }
    out
}

/// `---- NAME stdout ----`.
fn section_header(line: &str) -> Option<&str> {
    line.strip_prefix("---- ")?.strip_suffix(" stdout ----")
}

/// `test NAME ... ok|FAILED|ignored[, reason]`, or `-q`'s `NAME --- FAILED`.
fn result_line(line: &str) -> Option<(String, Outcome)> {
    if let Some(rest) = line.strip_prefix("test ") {
        let (name, result) = rest.rsplit_once(" ... ")?;
        return Some((clean_name(name), outcome(result)?));
    }
    let name = line.strip_suffix(" --- FAILED")?;
    Some((clean_name(name), Outcome::Failed))
}

fn outcome(result: &str) -> Option<Outcome> {
    match result {
        "ok" => Some(Outcome::Passed),
        "FAILED" => Some(Outcome::Failed),
        r if r == "ignored" || r.starts_with("ignored, ") => Some(Outcome::Skipped),
        _ => None,
    }
}

/// `api_should_panic - should panic` is the test `api_should_panic`.
fn clean_name(name: &str) -> String {
    name.strip_suffix(" - should panic")
        .unwrap_or(name)
        .to_string()
}

/// `ok. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.12s`.
fn summary(rest: &str) -> Option<(usize, usize, usize, f64)> {
    let (_, counts) = rest.split_once(". ")?;
    let (mut passed, mut failed, mut ignored, mut secs) = (None, None, None, 0.0);
    for part in counts.split(';').map(str::trim) {
        if let Some(t) = part.strip_prefix("finished in ") {
            secs = t
                .trim_end_matches('s')
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(0.0);
            continue;
        }
        let Some((n, what)) = part.split_once(' ') else {
            continue;
        };
        let Ok(n) = n.parse::<usize>() else { continue };
        match what {
            "passed" => passed = Some(n),
            "failed" => failed = Some(n),
            "ignored" => ignored = Some(n),
            _ => {}
        }
    }
    Some((passed?, failed?, ignored?, secs))
}

impl Block {
    fn into_results(self, class: &str) -> Results {
        let section = |name: &str| {
            self.sections
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.as_str())
        };
        let case = |name: &str, outcome: Outcome| {
            let text = if outcome == Outcome::Failed {
                section(name)
            } else {
                None
            };
            TestCase {
                classname: class.to_string(),
                name: name.to_string(),
                outcome,
                message: (outcome == Outcome::Failed).then(|| {
                    text.map_or_else(|| "(no output captured)".to_string(), failure_message)
                }),
                flaky: false,
                details: text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
            }
        };
        let mut cases: Vec<TestCase> = self.tests.iter().map(|(n, o)| case(n, *o)).collect();
        // Failures named only in the `failures:` list (`-q` on an older
        // libtest, or a result line split by the test's own output).
        for name in &self.failure_list {
            if !cases.iter().any(|c| &c.name == name) {
                cases.push(case(name, Outcome::Failed));
            }
        }
        let mut results = Results {
            cases,
            ..Results::default()
        };
        if let Some((passed, failed, ignored, secs)) = self.summary {
            results.duration_s = secs;
            results.unnamed = Unnamed {
                passed: passed.saturating_sub(results.passed()),
                failed: failed.saturating_sub(results.failed()),
                skipped: ignored.saturating_sub(results.skipped()),
                not_run: 0,
            };
        }
        results
    }
}

/// The panic message and where it happened, else the first line of the
/// section that says something.
fn failure_message(text: &str) -> String {
    if let Some(m) = panic_message(text) {
        return m;
    }
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .iter()
        .find(|l| l.starts_with("error"))
        .or_else(|| lines.iter().find(|l| !l.is_empty()))
        .map_or_else(|| "(no output captured)".to_string(), |l| l.to_string())
}

/// `<message> (at <file:line:col>)` from a Rust panic in captured output.
pub(crate) fn panic_message(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for (i, l) in lines.iter().enumerate() {
        let Some(at) = l
            .strip_prefix("thread '")
            .and_then(|r| r.split_once(" panicked at "))
            .map(|(_, at)| at)
        else {
            continue;
        };
        // Before Rust 1.73: `panicked at 'message', src/lib.rs:3:5`.
        if let Some(old) = at.strip_prefix('\'') {
            if let Some((msg, loc)) = old.rsplit_once("', ") {
                return Some(format!("{msg} (at {loc})"));
            }
        }
        let loc = at.trim_end_matches(':');
        return Some(match lines[i + 1..].iter().find(|l| !l.is_empty()) {
            Some(msg) if !msg.starts_with("note: ") => format!("{msg} (at {loc})"),
            _ => format!("panicked at {loc}"),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const STDOUT: &str = include_str!("../../../tests/fixtures/test-stage/cargo-test.stdout");
    const STDERR: &str = include_str!("../../../tests/fixtures/test-stage/cargo-test.stderr");
    const QUIET: &str = include_str!("../../../tests/fixtures/test-stage/cargo-test-quiet.stdout");

    #[test]
    fn unit_integration_and_doc_tests_with_failures() -> Result<(), String> {
        let r = parse(STDOUT, STDERR)?;
        // 1/1/1 (unit) + 2/1/1 (integration) + 1/1/0 (doc-tests).
        assert_eq!(r.counts(), (4, 3, 2, 9));
        assert_eq!(r.unnamed, Unnamed::default());
        assert!((r.duration_s - 0.18).abs() < 1e-9, "{}", r.duration_s);
        let failed = r.failed_with_messages();
        assert_eq!(
            failed,
            [
                (
                    "sluice_fixture_cargo::tests::rounds_totals".to_string(),
                    "assertion `left == right` failed: totals must round up (at src/lib.rs:28:9)"
                        .to_string()
                ),
                (
                    "api::api_fails".to_string(),
                    "called `Result::unwrap()` on an `Err` value: \"boom\" (at tests/api.rs:4:68)"
                        .to_string()
                ),
                (
                    "sluice_fixture_cargo doc-tests::src/lib.rs - add (line 9)".to_string(),
                    "assertion `left == right` failed (at src/lib.rs:5:1)".to_string()
                ),
            ]
        );
        // The captured stdout of the panicking test is kept for the JUnit file.
        let details = r.failures().next().and_then(|c| c.details.clone());
        assert!(details.is_some_and(|d| d.starts_with("checking the rounding of 7 + 3\n")));
        // `- should panic` is not part of the name; ignored with a reason.
        assert!(r.cases.iter().any(|c| c.name == "api_should_panic"));
        let db = r
            .cases
            .iter()
            .find(|c| c.name == "tests::talks_to_the_database");
        assert_eq!(db.map(|c| c.outcome), Some(Outcome::Skipped));
        Ok(())
    }

    #[test]
    fn quiet_output_counts_from_the_result_lines() -> Result<(), String> {
        let r = parse(QUIET, "")?;
        assert_eq!(r.counts(), (4, 3, 2, 9));
        // Only the failures have names; the rest are counted.
        assert_eq!(r.cases.len(), 3);
        assert_eq!(
            r.unnamed,
            Unnamed {
                passed: 4,
                failed: 0,
                skipped: 2,
                not_run: 0
            }
        );
        // Without cargo's stderr there are no class names.
        assert_eq!(
            r.failures().next().map(TestCase::id).as_deref(),
            Some("tests::rounds_totals")
        );
        Ok(())
    }

    #[test]
    fn filtered_out_tests_are_not_counted() -> Result<(), String> {
        let out = "\nrunning 1 test\ntest api_adds ... ok\n\ntest result: ok. 1 passed; 0 failed; \
                   0 ignored; 0 measured; 3 filtered out; finished in 0.00s\n";
        let r = parse(out, "")?;
        assert_eq!(r.counts(), (1, 0, 0, 1));
        Ok(())
    }

    #[test]
    fn nocapture_output_between_name_and_result() -> Result<(), String> {
        let out = "running 2 tests\ntest a ... hello from a\nok\ntest b ... \nprinted\nFAILED\n\n\
                   failures:\n\nfailures:\n    b\n\ntest result: FAILED. 1 passed; 1 failed; 0 \
                   ignored; 0 measured; 0 filtered out; finished in 0.01s\n";
        let r = parse(out, "")?;
        assert_eq!(r.counts(), (1, 1, 0, 2));
        assert_eq!(
            r.failures()
                .next()
                .and_then(|c| c.message.clone())
                .as_deref(),
            Some("(no output captured)")
        );
        Ok(())
    }

    #[test]
    fn old_panic_format_and_returned_errors() {
        assert_eq!(
            failure_message("thread 'x' panicked at 'boom', src/lib.rs:3:5\nnote: ..."),
            "boom (at src/lib.rs:3:5)"
        );
        assert_eq!(
            failure_message("Error: \"no config\"\nthread 'x' (7) panicked at library/test/src/lib.rs:1:1:\nnote: run with"),
            "panicked at library/test/src/lib.rs:1:1"
        );
        assert_eq!(
            failure_message("\nerror[E0425]: cannot find value `y`\n"),
            "error[E0425]: cannot find value `y`"
        );
        assert_eq!(failure_message(""), "(no output captured)");
    }

    #[test]
    fn no_libtest_output_is_an_error() {
        assert!(parse("", "error[E0308]: mismatched types").is_err());
        assert!(parse("Compiling foo\nrunning late\n", "").is_err());
    }

    #[test]
    fn truncated_output_counts_what_it_has() -> Result<(), String> {
        // Output cut off before `test result:`: the named tests still count.
        let r = parse("running 3 tests\ntest a ... ok\ntest b ... FAILED\n", "")?;
        assert_eq!(r.counts(), (1, 1, 0, 2));
        Ok(())
    }

    #[test]
    fn failed_targets_are_seen_in_cargo_stderr() {
        assert!(target_failed(STDERR));
        assert!(!target_failed("   Running unittests src/lib.rs (x)\n"));
    }

    #[test]
    fn mismatched_target_lines_leave_classes_empty() -> Result<(), String> {
        let r = parse(
            STDOUT,
            "     Running unittests src/lib.rs (target/debug/deps/x-1)\n",
        )?;
        assert!(r.cases.iter().all(|c| c.classname.is_empty()));
        Ok(())
    }
}
