//! The two halves of a transport, as traits: [`Dispatch`] (the
//! coordinator's: submit a job, follow it, cancel it) and [`JobSource`] +
//! [`JobLease`] (the agent's: take a job, report on it, settle it), plus
//! the [`BlobStore`] both use for plugins, artifacts and logs.
//!
//! Two transports implement them: NATS JetStream
//! ([`crate::nats`]) and the unix socket of a local agent (`crate::uds`).
//! The `RemoteExecutor` and the agent's worker loop are written once
//! against these traits.

use std::path::Path;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::io::AsyncRead;
use tokio_util::sync::CancellationToken;

use sluice_record::artifacts::Cas;

use crate::error::FleetError;
use crate::proto::{AgentEvent, Heartbeat, JobEnvelope, JobId, OutcomeEnvelope};

/// A job the transport accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The job.
    pub id: JobId,
    /// Where it is in the job queue (NATS: the stream sequence; 0 for the
    /// unix socket).
    pub sequence: u64,
    /// True when the transport already had a job with this id (a retried
    /// publish, or a resume that submits again): nothing new was queued.
    pub duplicate: bool,
}

/// What the transport knows of a job submitted earlier (by a coordinator
/// that has since died): see `--resume`.
#[derive(Debug, Clone, PartialEq)]
pub enum Adopted {
    /// It finished: here is its outcome.
    Finished(Box<OutcomeEnvelope>),
    /// It is queued or running: follow it with [`Dispatch::events`].
    InFlight {
        /// Its place in the job queue.
        sequence: u64,
    },
    /// Neither: it never reached the queue, or it was removed. Submit it
    /// again (under a new id).
    Unknown,
}

/// What [`Dispatch::cancel`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// No agent had started the job (this dispatch saw no `Started`): it
    /// was removed from the queue and will never run. An agent that took it
    /// at that very moment still sees the cancel flag and answers
    /// `Cancelled`, which the caller drops.
    Withdrawn,
    /// The job is running (or its state is unknown): the agent was told and
    /// will answer with a `Cancelled` outcome within the grace period.
    Signalled,
}

/// The coordinator's side of a transport.
///
/// One per `sluice run`; shared by every stage through an `Arc`.
pub trait Dispatch: Send + Sync {
    /// Queue `job` for an agent whose labels cover `job.runs_on`, after
    /// making sure the blob store holds what the job names (the caller
    /// uploads; see [`Dispatch::blobs`]). Call [`Dispatch::events`] for
    /// the job's id first, or at any time after: events are kept per job.
    ///
    /// Retrying with the same id is harmless (the transport deduplicates).
    fn submit(&self, job: JobEnvelope) -> BoxFuture<'_, Result<Submitted, FleetError>>;

    /// Look up a job submitted by an earlier coordinator of this run
    /// (same id): finished, in flight or unknown.
    fn adopt<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Adopted, FleetError>>;

    /// Everything agents report about `id`, in order: `Started` (once per
    /// execution), live `Log`/`Progress`, at most one `Finished` (later
    /// duplicates are dropped by the transport), and `Exhausted` when the
    /// transport gives up. Events that arrived before the call are replayed.
    /// The stream ends after `Finished` or `Exhausted`, or when the
    /// dispatch is dropped.
    fn events(&self, id: &JobId) -> BoxStream<'static, AgentEvent>;

    /// Cancel `id`: raise its cancel flag first (so an agent taking it now
    /// sees it), then withdraw it from the queue when no agent started it.
    fn cancel<'a>(
        &'a self,
        id: &'a JobId,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<Cancelled, FleetError>>;

    /// Remove a queued or running job from the queue for good (the queue
    /// timeout, too many lost executions): no agent will receive it again.
    /// `Ok(false)` when it was no longer there.
    fn withdraw<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<bool, FleetError>>;

    /// The agents alive now (their last heartbeats), for the "no agent
    /// with labels …" message and `sluice agents list`.
    fn agents(&self) -> BoxFuture<'_, Result<Vec<Heartbeat>, FleetError>>;

    /// Where plugins, artifacts and logs travel.
    fn blobs(&self) -> &dyn BlobStore;
}

/// A job handed to an agent, with its lease.
pub struct IncomingJob {
    /// The job.
    pub envelope: JobEnvelope,
    /// How to report on it and settle it.
    pub lease: Box<dyn JobLease>,
    /// The transport's delivery count (informational: not reliable across
    /// a NATS crash, never an attempt number).
    pub delivery: u64,
}

/// The agent's side of a transport: where jobs come from.
pub trait JobSource: Send + Sync {
    /// The next job for this agent. Waits; a transport that pulls (NATS)
    /// asks for a job only when the agent has a free slot (a job is taken
    /// by one call and its slot is free again when its lease is finished
    /// or dropped). Jobs whose outcome is already recorded (an earlier
    /// execution finished but its acknowledgement was lost) are settled
    /// here and never returned.
    ///
    /// Fails with [`FleetError::Closed`] when the source is shut down.
    fn next(&self) -> BoxFuture<'_, Result<IncomingJob, FleetError>>;

    /// Publish this agent's heartbeat (a no-op where nobody reads them).
    fn heartbeat<'a>(&'a self, beat: &'a Heartbeat) -> BoxFuture<'a, Result<(), FleetError>>;

    /// Where the job's plugin, inputs and outputs travel.
    fn blobs(&self) -> &dyn BlobStore;

    /// Stop taking jobs: pending and later [`JobSource::next`] calls fail
    /// with [`FleetError::Closed`]; leases already handed out stay valid.
    fn shutdown(&self);
}

/// One delivered job, until it is settled.
///
/// Dropping a lease without [`JobLease::finish`] hands the job back: NATS
/// delivers it again at once (to this or another agent; the coordinator
/// sees a second `Started` if the first execution had started). An agent
/// that dies instead holds it until the ack wait runs out.
pub trait JobLease: Send + Sync {
    /// Tell the transport the job is still being worked on. The NATS lease
    /// also does this on its own (every third of the ack wait) until it is
    /// finished; call it after a long pause of the agent's own.
    fn progress(&self) -> BoxFuture<'_, ()>;

    /// Report `event` to the coordinator (`Started` durably; `Log` and
    /// `Progress` at most once). Failures are logged, not returned: a lost
    /// live line must not fail a stage.
    fn event(&self, event: AgentEvent) -> BoxFuture<'_, ()>;

    /// Record the outcome durably (NATS: publish with the job id as message
    /// id and wait for the server's acknowledgement), then settle the job
    /// (acknowledge it so it is never delivered again). An outcome that is
    /// already recorded by another execution is not an error.
    fn finish(&self, outcome: OutcomeEnvelope) -> BoxFuture<'_, Result<(), FleetError>>;

    /// Fires when the coordinator cancels the job (NATS: its cancel flag
    /// appears; already fired when the flag was raised before delivery).
    fn cancelled(&self) -> CancellationToken;

    /// The coordinator's CAS and run directory, when the agent works in
    /// them directly (the unix-socket agent on the same machine: inputs
    /// are read from and outputs stored into that CAS, and the log is
    /// written to `run_dir/<job.log>`, so nothing is copied). `None` for
    /// transports whose agents keep their own (NATS).
    fn shared_run(&self) -> Option<SharedRun> {
        None
    }
}

/// Where a local agent works for its coordinator: see
/// [`JobLease::shared_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedRun {
    /// The coordinator's CAS directory.
    pub cas: std::path::PathBuf,
    /// The run's directory.
    pub run_dir: std::path::PathBuf,
}

/// Content-addressed blobs (`sha256:<hex>`) shared by the coordinator and
/// the agents: plugins and their sidecars, artifacts, logs, workspace
/// snapshots. Every implementation checks digests on the way in and on the
/// way out; a name is never trusted.
pub trait BlobStore: Send + Sync {
    /// Store the bytes of `reader` under `digest`. Fails with
    /// [`FleetError::BlobDigestMismatch`] (and stores nothing usable) when
    /// they hash to something else. Storing a digest that is already there
    /// is cheap (checked first).
    fn put<'a>(
        &'a self,
        digest: &'a str,
        reader: Box<dyn AsyncRead + Send + Unpin + 'a>,
    ) -> BoxFuture<'a, Result<(), FleetError>>;

    /// Store the file `path` under `digest` (as [`BlobStore::put`]).
    fn put_file<'a>(
        &'a self,
        digest: &'a str,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<(), FleetError>>;

    /// Copy blob `digest` into `cas` (re-hashed there: a blob that does not
    /// match its name is refused), unless `cas` already has it. Returns its
    /// size. [`FleetError::BlobNotFound`] when the store does not hold it.
    fn get_into<'a>(
        &'a self,
        cas: &'a Cas,
        digest: &'a str,
    ) -> BoxFuture<'a, Result<u64, FleetError>>;

    /// Whether the store holds `digest`.
    fn exists<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<bool, FleetError>>;
}
