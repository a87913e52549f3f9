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
//! # `with:`
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `junit` | path or glob, or a list (**required**) | JUnit XML report(s), relative to the workspace. `*`/`?` stay within one directory, `**` crosses directories. |
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
//! `tests.skipped` (pytest's xfail too), `tests.total`, `tests.duration_s`
//! (unit `s`) and, when `coverage` is configured and the report measured
//! any line, `coverage.line` (percent 0–100, unit `%`; LCOV: ΣLH/ΣLF;
//! Cobertura: `lines-covered`/`lines-valid`, else `line-rate`). Gate on
//! `tests.total` (`min: 1`) to catch a run that found no test.
//!
//! Artifacts: `junit.xml` (`application/xml`; with several report files,
//! `junit/<path in the workspace>` each), `coverage.lcov` (`text/plain`)
//! or `coverage.xml` (`application/xml`), and `test-summary.md`
//! (`text/markdown`: counts, coverage, and every failed test as
//! `classname::name` with the first line of its message).
//!
//! # Outcomes
//!
//! | situation | result |
//! |---|---|
//! | tests failed (command exit status non-zero or not) | a report; the pipeline's gates (`tests.failed max 0`) decide |
//! | command exits non-zero, reports show no failed test | a report with the failing plugin gate `test-command` (coverage thresholds, crashes after the report was written) |
//! | command exits non-zero, no JUnit report written | `failed`, quoting the end of the command's stderr |
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
pub mod reports;
mod stage;
pub mod summary;

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
