//! The sluice agent, minus its command line: a long-lived process that
//! takes stage jobs from a transport (a unix socket or NATS JetStream),
//! admits every plugin under its **own** operator policy, runs the stage
//! with `sluice-host`'s local executor on a wasmtime engine it keeps warm,
//! and answers with the outcome.
//!
//! - [`config`]: the operator's agent config file.
//! - [`verify`]: the agent's own admission (policy, integrity, grant
//!   ceiling, secrets it holds); refusals make the run exit 3.
//! - [`sources`]: secret and env values from the config.
//! - [`plugins`]: the warm engine and compiled plugins (LRU by digest).
//! - [`worker`]: the job loop over any `sluice_fleet` job source.
//! - [`heartbeat`]: what the agent publishes about itself.
//!
//! Must not depend on clap (the CLI is the runner's).

pub mod config;
pub mod heartbeat;
pub mod plugins;
pub mod sources;
pub mod verify;
pub mod worker;

pub use config::{AgentConfig, ConfigError};
pub use worker::{Agent, StartError};
