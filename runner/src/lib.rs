//! sluice: a CI/CD pipeline runner whose stages are signed WebAssembly
//! components, each run in a wasmtime sandbox that grants only what the
//! pipeline names.
//!
//! Module map (one concern each):
//! - [`cli`]: clap definitions only.
//! - [`pipeline`]: `sluice.yaml` wire types, the validated model, the DAG,
//!   `${{ }}` templates, and located errors.
//! - [`scheduler`]: runs the DAG (needs, when, approvals, retries,
//!   fail-fast); knows nothing of Wasm.
//! - [`stage_exec`]: one attempt of one stage: inputs in, sandbox, report
//!   checked, outputs into the CAS, gates.
//! - [`run`]: `sluice run` end to end (record, plugin loading, scheduler).
//! - [`host`]: the wasmtime embedding (engine, compile cache, sandbox,
//!   exec/secrets/HTTP host sides, the stage log).
//! - [`capabilities`]: declared capabilities vs grants.
//! - [`config_schema`]: `with:` checked against the plugin's JSON Schema.
//! - [`admission`]: read, hash, validate and admit plugins under the trust
//!   policy before anything is compiled.
//! - [`trust`]: keys, Sigstore bundles, the policy file, signed provenance.
//! - [`artifacts`]: the content-addressed store.
//! - [`workdir`]: the host directories behind a stage's `/artifacts`.
//! - [`gates`]: metric thresholds and plugin verdicts into one verdict.
//! - [`provenance`]: in-toto/SLSA statements for build artifacts.
//! - [`record`]: the crash-safe run record and its lock.
//! - [`fsutil`]: atomic file writes, bounded reads of input files (regular
//!   files only, size caps) and plain-word I/O errors.
//! - [`diagnostic`]: rustc-style rendering of errors in the pipeline and policy files.
//! - [`report`]: console and JSON-lines output.
//! - [`commands`]: `validate`, `plugin inspect`, `runs`, `approve`.

pub mod admission;
pub mod artifacts;
pub mod capabilities;
pub mod cli;
pub mod commands;
pub mod config_schema;
pub mod diagnostic;
pub mod fsutil;
pub mod gates;
pub mod host;
pub mod pipeline;
pub mod provenance;
pub mod record;
pub mod report;
pub mod run;
pub mod scheduler;
pub mod stage_exec;
pub mod trust;
pub mod workdir;

/// Exit codes, as documented in the README.
pub mod exit {
    /// The pipeline passed.
    pub const PASSED: i32 = 0;
    /// The pipeline failed or a gate blocked it.
    pub const FAILED: i32 = 1;
    /// Invalid input: pipeline, policy, arguments.
    pub const INVALID: i32 = 2;
    /// Refused by the trust policy.
    pub const REFUSED: i32 = 3;
    /// Paused, waiting for approval.
    pub const PAUSED: i32 = 4;
}
