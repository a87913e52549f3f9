//! Runs a pipeline: decides what runs when, and what a run's outcome is.
//!
//! Owns:
//! - [`scheduler`]: the stage DAG (`needs`, `when:`, approvals, retries,
//!   fail-fast, cancellation), recorded in the run record as it goes;
//! - [`admission`]: reading plugins and admitting them under the trust
//!   policy before anything is compiled;
//! - [`provenance`]: the in-toto/SLSA statements for what a stage
//!   published;
//! - [`redact`]: secret values out of logs, reasons and statements;
//! - [`report`]: the events a run emits and the [`report::Reporter`] port.
//!
//! Must not depend on wasmtime or on the host crate: executors plug in
//! through [`scheduler::Executor`], so the engine builds and tests without
//! a WebAssembly runtime. It must not parse the pipeline or policy files
//! itself either (that is `sluice-pipeline` and `sluice-trust`).

pub mod admission;
pub mod provenance;
pub mod redact;
pub mod report;
pub mod scheduler;
