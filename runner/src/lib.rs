//! sluice: a CI/CD pipeline runner whose stages are signed WebAssembly
//! components, each run in a wasmtime sandbox that grants only what the
//! pipeline names.
//!
//! This crate is the command line: argument parsing, the commands, the
//! console and JSON reporters, and `sluice run` wiring the engine to the
//! local wasmtime executor. The work itself lives in the `sluice-*` crates
//! (see docs/architecture.md):
//! - `sluice-files`: bounded input reads, atomic writes, diagnostics;
//! - `sluice-pipeline`: the pipeline file to a resolved model, gates;
//! - `sluice-trust`: keys, bundles, policies, provenance signing;
//! - `sluice-record`: run records, journal, artifact store, work dirs;
//! - `sluice-engine`: scheduler, admission, provenance, events, the
//!   executor port;
//! - `sluice-host`: wasmtime (the only crate that links it) and the local
//!   executor.
//!
//! Modules here:
//! - [`cli`]: clap definitions only.
//! - [`commands`]: `validate`, `plugin inspect`, `runs`, `approve`, `gc`,
//!   `key`/`policy`/`plugin sign`.
//! - [`run`]: `sluice run` end to end (record, plugin loading, scheduler).
//! - [`oci_plugins`]: plugins from OCI registries (resolve, pull cache,
//!   referrers, `sluice.lock`).
//! - [`registry`]: the registry options (`--registry-ca`,
//!   `--insecure-registry`) of every command that talks to registries.
//! - [`report`]: console and JSON-lines output.
//! - [`ci`]: native output in GitHub Actions and GitLab CI.
//! - [`html_report`]: `sluice report`, one static HTML page about a run.
//! - [`error`]: every way a command fails, and the one mapping of those
//!   failures to [`exit`] codes and to what is printed.

pub mod ci;
pub mod cli;
pub mod commands;
pub mod error;
pub mod html_report;
pub mod oci_plugins;
pub mod registry;
pub mod report;
pub mod run;

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
    /// Interrupted by SIGINT (Ctrl-C), as a shell reports it (128 + 2).
    pub const SIGINT: i32 = 130;
    /// Interrupted by SIGTERM, as a shell reports it (128 + 15).
    pub const SIGTERM: i32 = 143;
}
