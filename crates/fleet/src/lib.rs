//! Runs stages on agents: the fleet.
//!
//! A coordinator (`sluice run --executor nats://…` or `--agent unix:…`)
//! turns each stage attempt into a job; agents (`sluice agent`) take jobs,
//! verify and run them with the local executor, and answer with the
//! outcome. This crate is everything between the two that needs no
//! wasmtime:
//!
//! | module | owns |
//! | --- | --- |
//! | [`proto`] | the wire protocol: [`proto::JobId`], [`proto::JobEnvelope`], [`proto::AgentEvent`], [`proto::OutcomeEnvelope`], [`proto::Heartbeat`], the unix-socket [`proto::Frame`]s |
//! | [`transport`] | the two halves of a transport as traits: [`transport::Dispatch`] (coordinator), [`transport::JobSource`] + [`transport::JobLease`] (agent), [`transport::BlobStore`] |
//! | [`nats`] | the NATS JetStream transport: names and configs of streams, consumers and buckets ([`nats::layout`]), the coordinator half ([`nats::NatsDispatch`]) and the agent half ([`nats::NatsJobSource`]) |
//! | [`blobs`] | content-addressed blob transfer: the NATS object store by `sha256:<hex>` and a local CAS shared with the agent |
//! | [`error`] | [`FleetError`] |
//!
//! It depends on the engine (job and outcome types), record (the CAS),
//! trust, pipeline and types. It must **not** depend on wasmtime,
//! `sluice-host` or clap: the coordinator links it without a sandbox
//! (`cargo tree -p sluice-fleet | grep wasmtime` prints nothing). The agent
//! process itself (configuration, verification, the warm plugin cache, the
//! worker loop) is `sluice-agent`.

pub mod blobs;
pub mod error;
pub mod nats;
pub mod proto;
pub mod remote;
pub mod snapshot;
pub mod transport;
pub mod uds;
pub mod workspace;

pub use error::FleetError;
