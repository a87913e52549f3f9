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
//! - [`report`]: the events a run emits and the [`report::Reporter`] port;
//! - [`sarif`]: SARIF 2.1.0 from a stage's typed findings;
//! - [`executor`]: the executor port: a serialisable [`executor::StageJob`]
//!   in, a [`executor::StageOutcome`] (or a typed
//!   [`executor::StageFailure`]) out, values of env and secrets through
//!   injected sources;
//! - [`orchestrator`]: one attempt of one stage as the run sees it (the
//!   scheduler's [`scheduler::Attempts`]): templates, config schema, the
//!   job, then gates, provenance and the stage's record.
//!
//! Must not depend on wasmtime or on the host crate: executors plug in
//! through [`executor::Executor`], so the engine builds and tests without
//! a WebAssembly runtime. It must not parse the pipeline or policy files
//! itself either (that is `sluice-pipeline` and `sluice-trust`).

pub mod admission;
pub mod executor;
pub mod orchestrator;
pub mod provenance;
pub mod redact;
pub mod report;
pub mod sarif;
pub mod scheduler;
