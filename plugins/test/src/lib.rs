//! The `test` reference stage of [sluice]: runs a granted test command,
//! then reads the JUnit XML report (and optionally a coverage report) it
//! wrote, and reports counts and coverage as metrics the pipeline gates on.
//!
//! ```yaml
//! test:
//!   uses: ../../dist/plugins/test.wasm
//!   with:
//!     command: [python3, -m, pytest, --junitxml=reports/junit.xml,
//!               --cov=quickstart, --cov-report=lcov:reports/coverage.lcov]
//!     junit: reports/junit.xml
//!     coverage: { path: reports/coverage.lcov, format: lcov }
//!     timeout: 10m
//!   grants: { workspace: write, exec: [python3] }
//!   gates:
//!     - { metric: tests.failed, max: 0 }
//!     - { metric: coverage.line, min: 80, on-fail: warn }
//! ```
//!
//! Rust:
//!
//! ```yaml
//! test:
//!   uses: ../../dist/plugins/test.wasm
//!   with:
//!     command: [cargo, test, --no-fail-fast]   # format: cargo, detected
//!   grants: { workspace: write, exec: [cargo] }
//!   gates:
//!     - { metric: tests.failed, max: 0 }
//! ```
//!
//! # Rust: `cargo test` and nextest
//!
//! On stable Rust, libtest writes no JUnit and no JSON: `--format junit`
//! and `--format json` need `-Z unstable-options`, which stable refuses
//! (short of the `RUSTC_BOOTSTRAP=1` hack, which the stage does not ask
//! for). So with `format: cargo` (the default when the command is `cargo
//! test` and `junit` is left out) the stage reads libtest's stable human
//! output from the command's stdout, one `running N tests` … `test
//! result:` block per test binary and for the doc-tests, and cargo's
//! `Running`/`Doc-tests` lines from stderr to name them (see
//! [`libtest`]). Each failure's message is its panic message and location
//! (`assertion ... failed: totals must round up (at src/lib.rs:20:9)`),
//! and its captured output goes into the `junit.xml` the stage writes.
//! `filtered out` tests are not counted. Without `--no-fail-fast` cargo
//! stops at the first failing test binary; the stage warns that later
//! binaries did not run (it cannot know how many tests they hold).
//!
//! On nightly, libtest's own JUnit (`cargo test -- -Z unstable-options
//! --format junit > junit.xml`, one document per binary) is read with
//! `junit:` like any other. cargo-nextest writes JUnit when its profile
//! has `[profile.default.junit]` (`target/nextest/default/junit.xml`); it
//! lists only the tests that ran, so when the stage runs `cargo nextest`
//! itself it takes the skipped and not-run counts from nextest's
//! `Summary` line (see [`nextest`]).
//!
//! # `with:`
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `junit` | path or glob, or a list (required with `format: junit`) | JUnit XML report(s), relative to the workspace. `*`/`?` stay within one directory, `**` crosses directories. A file may hold several concatenated documents. |
//! | `format` | `junit` \| `cargo` | Where the results come from: the `junit` files, or the command's `cargo test` output (no `junit` then; needs `command`). Default: `cargo` when the command is `cargo test` (`cargo [+toolchain] [--flags] test ...`) and `junit` is left out, else `junit`. |
//! | `command` | list of strings | Program and arguments, run through the host's `exec`. The program is a bare name that must be in `grants.exec`. Without it, the stage only reads reports that already exist (tests run by an earlier step or another CI system). |
//! | `cwd` | string | Directory for the command, relative to the workspace (default: its root). Only with `command`. |
//! | `timeout` | `"90s"`, `"10m"`, `"1h30m"` (a unit is required) | Kill the command after this long (default, and cap: the time the stage has left). Only with `command`. |
//! | `coverage.path` | string | A coverage report, relative to the workspace. |
//! | `coverage.format` | `lcov` \| `cobertura` | Its format; guessed from the name when left out (`.xml`: cobertura; `.info`, `.lcov`: lcov). |
//!
//! Unknown keys are rejected. The same schema is published by `describe`
//! (`sluice plugin inspect --json dist/plugins/test.wasm`).
//!
//! # Grants
//!
//! - `workspace: read` at least: the reports are read from the workspace.
//!   Give `workspace: write` when the command writes its reports (and
//!   caches such as `.pytest_cache`) into the workspace, which is the usual
//!   case: say so in the pipeline even though the host program is not
//!   itself confined by the grant.
//! - `exec: [<program>]` for `with.command[0]`. The program runs with a
//!   cleared environment (`PATH`, `HOME` and the stage's granted `env`).
//!
//! # What it reports
//!
//! Metrics: `tests.passed`, `tests.failed` (failures + errors),
//! `tests.skipped` (pytest's xfail, Rust's `#[ignore]`d tests, nextest's
//! skipped tests), `tests.not_run` (selected but never started because
//! the runner stopped at a failure: nextest's fail-fast), `tests.total`
//! (the sum of the four), `tests.duration_s` (unit `s`; the tests' own
//! time, without compiling) and, when `coverage` is configured and the report measured
//! any line, `coverage.line` (percent 0–100, unit `%`; LCOV: ΣLH/ΣLF;
//! Cobertura: `lines-covered`/`lines-valid`, else `line-rate`). Gate on
//! `tests.total` (`min: 1`) to catch a run that found no test.
//!
//! What counts as a test: a `<testcase>` (or a `test NAME ... RESULT`
//! of libtest), not a report's `tests=` attribute. In particular **pytest
//! subtests are not counted as tests**: pytest-subtests reports each
//! subtest separately and pytest's `tests=` counts every report (so one
//! function with 30 subtests is `tests="31"`), but the JUnit file has one
//! `<testcase>` per test function, failed when any subtest failed. The
//! stage counts test functions, because that is what the report names
//! and what a failure points at, and because counting reports would also
//! count a failing teardown as a second test; the log states the
//! attribute's number when it differs. Tests a runner reports only by
//! number (libtest's JUnit omits ignored tests but counts them in
//! `skipped=`; `cargo test -q` prints dots) are counted without a name
//! (see [`junit`]).
//!
//! Artifacts: `junit.xml` (`application/xml`; with several report files,
//! `junit/<path in the workspace>` each; with `format: cargo`, written by
//! the stage from the results), `coverage.lcov` (`text/plain`)
//! or `coverage.xml` (`application/xml`), and `test-summary.md`
//! (`text/markdown`: counts, coverage, and every failed test as
//! `classname::name` with the first line of its message). The report's
//! summary is the headline (`1 passed, 1 failed, 1 skipped (3 tests in
//! 0.00s)`, with `, N not run` when any) and the first five failed tests
//! with their message.
//!
//! # Outcomes
//!
//! | situation | result |
//! |---|---|
//! | tests failed (command exit status non-zero or not) | a report; the pipeline's gates (`tests.failed max 0`) decide |
//! | command exits non-zero, reports show no failed test | a report with the failing plugin gate `test-command` (coverage thresholds, crashes after the report was written) |
//! | command exits non-zero, no JUnit report written | `failed`, quoting the end of the command's stderr |
//! | command succeeds, no JUnit report written | `failed`, with how this runner writes one (pytest `--junitxml`, cargo `format: cargo`, nextest `[profile.default.junit]`, jest `jest-junit`, go `gotestsum --junitfile`), told from the command's program |
//! | `format: cargo`, no libtest output (build failed) | `failed`, quoting the end of cargo's stderr |
//! | command killed by its timeout | `failed` (retried when the stage has `retries:`) |
//! | only reports from before the command ran | treated as no report: a stale file is never taken for this run's results |
//! | coverage report missing or stale | a warning; `coverage.line` is not reported, so a gate on it is inconclusive |
//! | a report that is not valid JUnit / LCOV / Cobertura | `failed`, naming the file and the parser's position |
//! | program not in `grants.exec` | `denied`, naming `grants.exec` |
//! | bad `with:` | `invalid config`, naming the key and the fix |
//!
//! [sluice]: https://example.invalid/sluice

pub mod command;
pub mod config;
pub mod coverage;
pub mod files;
pub mod junit;
pub mod libtest;
pub mod nextest;
pub mod reports;
pub mod runner;
mod stage;
pub mod summary;
pub mod writer;

use sluice_sdk::prelude::*;

/// The `test` stage.
pub struct TestStage;

impl Stage for TestStage {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "test",
            env!("CARGO_PKG_VERSION"),
            "test",
            "Runs a test command and reports its JUnit results and line coverage as metrics",
        )
        .config_schema(config::SCHEMA)
        .capability(Capability::WorkspaceRead)
    }

    fn run(ctx: Context) -> Result<Report, StageError> {
        stage::run(&ctx)
    }
}

sluice_sdk::export_stage!(TestStage);
