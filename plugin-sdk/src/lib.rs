//! The Rust SDK for writing [sluice] pipeline stages.
//!
//! A stage is a WebAssembly component (`wasm32-wasip2`) that implements the
//! `sluice:stage@0.2.0` world (it exports `sluice:stage/plugin@0.2.0`). This crate hides the generated bindings:
//! implement [`Stage`], export it with [`export_stage!`], and build the crate
//! as a `cdylib` with `cargo build --release --target wasm32-wasip2`.
//!
//! ```no_run
//! use sluice_sdk::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Config { greeting: String }
//!
//! struct Hello;
//!
//! impl Stage for Hello {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("hello", env!("CARGO_PKG_VERSION"), "custom", "Says hello")
//!             .capability(Capability::WorkspaceRead)
//!     }
//!
//!     fn run(ctx: Context) -> Result<Report, StageError> {
//!         let c: Config = ctx.config()?;
//!         sluice_sdk::info!("greeting from stage {}", ctx.stage());
//!         ctx.write_artifact("greeting.txt", format!("{}\n", c.greeting), "text/plain")?;
//!         Ok(Report::new(format!("{}!", c.greeting)).metric("hello.count", 1.0))
//!     }
//! }
//!
//! sluice_sdk::export_stage!(Hello);
//! # fn main() {}
//! ```
//!
//! What a stage can reach (each only as the pipeline grants it):
//!
//! | need | use |
//! |---|---|
//! | config, inputs, upstream outputs | [`Context`] |
//! | workspace and artifact files | `std::fs` on [`Context::workspace`], [`Context::input_path`], [`Context::write_artifact`] |
//! | environment variables | `std::env::var` |
//! | host programs (run to the end, or spawn and stream) | [`exec`] |
//! | secrets | [`secrets`] |
//! | HTTP | [`http`] |
//! | config values (durations, one-or-many) | [`values`] |
//! | logging | [`info`](fn@info), [`warn`](fn@warn), [`error`](fn@error), [`debug`](fn@debug), the macros of the same names, and [`log`] for fields |
//! | progress | [`progress`](fn@progress) |
//! | cancellation, deadline | [`cancel`], [`Context::deadline`], [`Context::grace_period`] |
//! | findings (SARIF) | [`findings`], [`Report::findings`] |
//! | artifact roles and annotations | [`ArtifactInfo`], [`Context::write_artifact_as`], [`Artifact::role`] |
//!
//! Errors: return [`StageError`] from `run`; `?` converts I/O, exec, secret
//! and HTTP errors, keeping "denied" (with the [`Capability`] that was
//! missing) distinct from "failed". A panic traps
//! the component, which also fails the stage, but returning `Err` gives the
//! user a better message and lets the runner decide on retries.
//!
//! The SDK compiles for the host too (so `cargo clippy --workspace` and unit
//! tests of a stage's pure logic work), but host calls — exec, secrets,
//! HTTP — only work inside the runner.
//!
//! [sluice]: https://example.invalid/sluice

#![deny(missing_docs)]

#[doc(hidden)]
pub mod bindings;
pub mod cancel;
mod context;
mod error;
pub mod exec;
#[doc(hidden)]
pub mod export;
pub mod findings;
pub mod http;
mod info;
pub mod log;
mod report;
pub mod secrets;
pub mod values;
pub mod workspace;

pub use context::{Artifact, Context, UpstreamOutput, INPUTS_DIR, OUTPUTS_DIR, WORKSPACE_DIR};
pub use error::{ResultExt, StageError};
pub use export::Stage;
pub use info::{Capability, PluginInfo, StageKind};
pub use log::{debug, error, info, progress, warn};
pub use report::{ArtifactInfo, Gate, Metric, Report, Verdict};
/// The value types shared with the runner (durations, sizes, network
/// patterns, names) and text helpers such as
/// [`types::text::closest`]; the ones a config usually needs are also in
/// [`values`].
pub use sluice_types as types;
pub use sluice_types::ArtifactRole;

/// Everything a stage usually needs: `use sluice_sdk::prelude::*;`.
///
/// ```
/// use sluice_sdk::prelude::*;
/// let r: Result<Report, StageError> = Ok(Report::new("ok").gate(Gate::pass("g", "fine")));
/// # assert!(r.is_ok());
/// ```
pub mod prelude {
    pub use crate::findings::{Finding, FindingLevel};
    pub use crate::{
        Artifact, ArtifactInfo, ArtifactRole, Capability, Context, Gate, PluginInfo, Report,
        ResultExt, Stage, StageError, StageKind, Verdict,
    };
}
