//! End-to-end tests: the real `sluice` binary on real plugins, asserting on
//! what a user sees (exit code, stage state, reason text, logs, records).

mod approval_resume;
mod artifacts_gates;
mod cli;
mod examples;
mod pipeline_errors;
mod sandbox;
mod scheduling;
mod stage_languages;
mod stage_lint;
mod stage_scan;
mod stage_test_build;
mod trust;
