//! The remote executor: runs a stage attempt on an agent through any
//! [`Dispatch`] (NATS or the unix socket) and answers the engine exactly as
//! the local executor does, so the orchestrator, gates, provenance and the
//! run record do not know the difference.
//!
//! Per attempt: build the [`JobEnvelope`] (job id `<run>.<epoch>.<stage>.<attempt>`),
//! make sure the blob store holds the plugin and the inputs (unless the
//! agent shares the coordinator's CAS), follow the job's events, and turn
//! its outcome into a [`StageOutcome`]:
//!
//! - `Started` → [`Event::StageAssigned`]. A `Started` of *another*
//!   execution means the previous agent was lost (it died or stopped
//!   acknowledging, and the transport delivered the job again): the loss is
//!   recorded in [`StageOutcome::lost`], the attempt goes on, and nothing
//!   counts against `retries:`. More than `max_lost` losses, or the
//!   transport giving up, is [`StageFailure::Lost`].
//! - `Log`/`Progress` → the run's reporter, redacted again here.
//! - The first `Finished` wins; anything later is dropped (the transports
//!   drop duplicates too). Its artifacts are copied into the coordinator's
//!   CAS with their digests checked (a forged digest fails the stage), and
//!   the agent's complete log replaces the live copy.
//! - Cancellation is forwarded; a job no agent started is withdrawn and
//!   answered at once. No `Started` within the queue timeout is
//!   [`StageFailure::NoAgent`], naming the live agents.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use sluice_engine::executor::{
    Executor, LogReport, LostExecution, OutcomeFuture, StageFailure, StageJob, StageOutcome,
};
use sluice_engine::redact::Redactor;
use sluice_engine::report::{Event, Reporter};
use sluice_pipeline::WorkspaceAccess;
use sluice_record::artifacts::Cas;
use sluice_types::LabelSet;

use sha2::{Digest as _, Sha256};

use crate::error::FleetError;
use crate::proto::{
    AgentEvent, JobEnvelope, JobId, OutcomeEnvelope, PluginBlobs, WorkspaceSource, PROTOCOL,
};
use crate::snapshot::{self, Delta, DigestCache};
use crate::transport::{Adopted, Cancelled, Dispatch};

/// How long after its grace period a cancelled stage's agent may take to
/// answer before the attempt is given up as cancelled anyway.
const CANCEL_BACKSTOP: Duration = Duration::from_secs(5);

/// How a [`RemoteExecutor`] dispatches.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// The run's dispatch epoch (`RunRecord::fleet_epoch`): part of every
    /// job id.
    pub epoch: u64,
    /// `host:pid` of this coordinator, for the agents' logs.
    pub coordinator: String,
    /// Executions of one attempt that may be lost before the stage fails
    /// with [`StageFailure::Lost`] (`fleet.max-lost`, 3 by default).
    pub max_lost: u32,
    /// How long a job may wait for an agent to start it before the stage
    /// fails with [`StageFailure::NoAgent`] (`fleet.queue-timeout`).
    pub queue_timeout: Duration,
    /// The agents use this coordinator's CAS and run directory themselves
    /// (the unix-socket agent): nothing is uploaded or downloaded, and the
    /// agent writes the stage log in place.
    pub shared_cas: bool,
    /// The agents see the workspace at the coordinator's path (the
    /// unix-socket agent, or NATS agents configured `workspace: shared`).
    /// Without it (or `snapshot_workspace`), a stage with a workspace
    /// grant cannot run remotely.
    pub shared_workspace: bool,
    /// Without a shared workspace, send it as a snapshot through the blob
    /// store and apply what `workspace: write` stages changed
    /// ([`crate::snapshot`]; `--executor nats://…?workspace=snapshot`).
    pub snapshot_workspace: bool,
    /// Where the digests of the workspace's files are kept between
    /// snapshots and runs ([`snapshot::DigestCache`]): a file that looks as
    /// it did is not read again. `None`: within this run only.
    pub snapshot_digests: Option<PathBuf>,
    /// The plugins by component digest, as jobs name them.
    pub plugins: HashMap<String, PluginBlobs>,
    /// Files to upload for the digests in `plugins` (the component and its
    /// sidecars) when the CAS is not shared.
    pub plugin_files: HashMap<String, PathBuf>,
    /// Each stage's `runs-on:` labels (absent: any agent).
    pub runs_on: HashMap<String, LabelSet>,
    /// Stages a killed coordinator had dispatched (`--resume`), with the
    /// job id they had: their outcome is looked up before anything is sent
    /// again.
    pub adopt: HashMap<String, JobId>,
}

impl Default for RemoteOptions {
    fn default() -> RemoteOptions {
        RemoteOptions {
            epoch: 0,
            coordinator: String::new(),
            max_lost: 3,
            queue_timeout: Duration::from_secs(600),
            shared_cas: false,
            shared_workspace: false,
            snapshot_workspace: false,
            snapshot_digests: None,
            plugins: HashMap::new(),
            plugin_files: HashMap::new(),
            runs_on: HashMap::new(),
            adopt: HashMap::new(),
        }
    }
}

/// Runs stage jobs on agents; see the module doc.
pub struct RemoteExecutor {
    dispatch: Arc<dyn Dispatch>,
    cas: Arc<Cas>,
    run_dir: PathBuf,
    reporter: Arc<dyn Reporter>,
    redactor: Arc<Redactor>,
    options: RemoteOptions,
    /// Digests known to be in the blob store (checked once per run).
    uploaded: Mutex<HashSet<String>>,
    /// Stages whose earlier job was already looked up: only a stage's
    /// first attempt in this process adopts; a retry is a new job.
    adopted: Mutex<HashSet<String>>,
    /// Label sets whose agents were looked up at dispatch (once per run).
    labels_checked: Mutex<HashSet<LabelSet>>,
    /// The digest of the workspace manifest sent last; made again after a
    /// stage's changes were applied.
    snapshot: tokio::sync::Mutex<Option<String>>,
    /// The digests of the workspace's files as of the last snapshot
    /// (`None` until the first one loads them).
    digests: Mutex<Option<DigestCache>>,
}

/// Largest change list of a `workspace: write` stage (the files travel as
/// blobs of their own).
const MAX_DELTA_BYTES: u64 = 64 << 20;

/// Lock a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RemoteExecutor {
    /// An executor dispatching through `dispatch`, storing artifacts in
    /// `cas` and logs under `run_dir`, reporting live to `reporter` with
    /// everything redacted by `redactor`.
    pub fn new(
        dispatch: Arc<dyn Dispatch>,
        cas: Arc<Cas>,
        run_dir: PathBuf,
        reporter: Arc<dyn Reporter>,
        redactor: Arc<Redactor>,
        options: RemoteOptions,
    ) -> RemoteExecutor {
        RemoteExecutor {
            dispatch,
            cas,
            run_dir,
            reporter,
            redactor,
            options,
            uploaded: Mutex::new(HashSet::new()),
            adopted: Mutex::new(HashSet::new()),
            labels_checked: Mutex::new(HashSet::new()),
            snapshot: tokio::sync::Mutex::new(None),
            digests: Mutex::new(None),
        }
    }

    /// The job envelope of `job` under `id`; `snapshot` is the digest of
    /// the workspace's manifest when it travels as a snapshot.
    fn envelope(
        &self,
        job: &StageJob,
        id: JobId,
        snapshot: Option<String>,
    ) -> Result<JobEnvelope, StageFailure> {
        let mut plugin = self
            .options
            .plugins
            .get(&job.plugin.digest)
            .cloned()
            .ok_or_else(|| {
                StageFailure::setup(format!(
                    "no plugin {} ({}) was prepared for agents",
                    job.plugin.reference, job.plugin.digest
                ))
            })?;
        if !self.options.shared_cas {
            // A file path means something only on this machine.
            plugin.path = None;
        }
        let workspace = match (job.grants.workspace, snapshot) {
            (WorkspaceAccess::None, _) => WorkspaceSource::None,
            _ if self.options.shared_workspace => WorkspaceSource::SharedPath {
                path: job.workspace.clone(),
            },
            (_, Some(manifest)) => WorkspaceSource::Snapshot { manifest },
            (_, None) => {
                return Err(StageFailure::setup(format!(
                    "stage `{}` has a workspace grant, but its agents do not see the workspace \
                     at {}: configure them `workspace: shared` (a shared file system), send it \
                     as a snapshot (`--executor nats://…?workspace=snapshot`), or run the stage \
                     locally",
                    job.stage,
                    job.workspace.display()
                )))
            }
        };
        Ok(JobEnvelope {
            protocol: PROTOCOL,
            id,
            runs_on: self
                .options
                .runs_on
                .get(&job.stage)
                .cloned()
                .unwrap_or_default(),
            plugin,
            workspace,
            coordinator: self.options.coordinator.clone(),
            job: job.clone(),
        })
    }

    /// Make sure the blob store holds what `envelope` names: the plugin,
    /// its sidecars and every input artifact (each digest checked once per
    /// run).
    async fn upload(&self, envelope: &JobEnvelope) -> Result<(), FleetError> {
        if self.options.shared_cas {
            return Ok(());
        }
        let plugin = &envelope.plugin;
        let mut wanted: Vec<(String, PathBuf)> = Vec::new();
        for digest in std::iter::once(&plugin.digest)
            .chain(plugin.bundle.iter())
            .chain(plugin.attestations.iter())
        {
            let path = self.options.plugin_files.get(digest).cloned();
            match path {
                Some(path) => wanted.push((digest.clone(), path)),
                None => wanted.push((digest.clone(), self.cas.blob_path(digest)?)),
            }
        }
        for input in &envelope.job.inputs {
            let digest = &input.artifact.digest;
            wanted.push((digest.clone(), self.cas.blob_path(digest)?));
        }
        let blobs = self.dispatch.blobs();
        for (digest, path) in wanted {
            if lock(&self.uploaded).contains(&digest) {
                continue;
            }
            if !blobs.exists(&digest).await? {
                blobs.put_file(&digest, &path).await?;
            }
            lock(&self.uploaded).insert(digest);
        }
        Ok(())
    }

    /// Whether `job`'s workspace travels as a snapshot.
    fn wants_snapshot(&self, job: &StageJob) -> bool {
        job.grants.workspace != WorkspaceAccess::None
            && !self.options.shared_workspace
            && self.options.snapshot_workspace
    }

    /// The digest of the workspace's manifest, with the manifest and every
    /// file in it in the blob store (made once, and again after a stage's
    /// changes were applied).
    async fn workspace_snapshot(&self, job: &StageJob) -> Result<String, StageFailure> {
        let setup = |e: &dyn std::fmt::Display| {
            StageFailure::setup(format!(
                "sending the workspace {} to the agents: {e}",
                job.workspace.display()
            ))
        };
        let mut current = self.snapshot.lock().await;
        if let Some(digest) = current.as_ref() {
            return Ok(digest.clone());
        }
        let root = job.workspace.clone();
        let saved_at = self.options.snapshot_digests.clone();
        let cache = lock(&self.digests).take();
        let (scanned, cache) = tokio::task::spawn_blocking(move || {
            let mut cache = cache.unwrap_or_else(|| {
                saved_at
                    .as_deref()
                    .map(DigestCache::load)
                    .unwrap_or_default()
            });
            let scanned = snapshot::scan_cached(&root, &mut cache);
            if let (Ok(_), Some(path)) = (&scanned, &saved_at) {
                // Only speed depends on it.
                if let Err(e) = cache.save(path) {
                    tracing::warn!(path = %path.display(), error = %e, "could not save the snapshot digest cache");
                }
            }
            (scanned, cache)
        })
        .await
        .map_err(|e| setup(&e))?;
        tracing::debug!(
            workspace = %job.workspace.display(),
            hashed = cache.hashed,
            "workspace listed for a snapshot"
        );
        *lock(&self.digests) = Some(cache);
        let manifest = scanned.map_err(|e| setup(&e))?;
        if !manifest.skipped.is_empty() {
            self.warn(&format!(
                "the workspace snapshot leaves out {} entries that are not files, directories or symlinks (FIFOs, sockets, devices) or not UTF-8: {}",
                manifest.skipped.len(),
                manifest.skipped.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if !manifest.ignored.is_empty() {
            tracing::info!(
                workspace = %job.workspace.display(),
                ignored = manifest.ignored.len(),
                first = %manifest.ignored.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                "the workspace snapshot leaves out what .sluiceignore lists"
            );
        }
        let body = serde_json::to_vec(&manifest).map_err(|e| setup(&e))?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        self.cas
            .ingest_verified(
                &mut body.as_slice(),
                &digest,
                Path::new("workspace manifest"),
            )
            .map_err(|e| setup(&e))?;
        let blobs = self.dispatch.blobs();
        let mut files: Vec<(String, PathBuf)> =
            snapshot::file_blobs(&manifest.entries, &job.workspace)
                .map(|(d, p)| (d.to_owned(), p))
                .collect();
        files.push((
            digest.clone(),
            self.cas.blob_path(&digest).map_err(|e| setup(&e))?,
        ));
        for (file_digest, path) in files {
            if lock(&self.uploaded).contains(&file_digest) {
                continue;
            }
            // The file is hashed again while it is sent: one that changed
            // since it was listed is refused, not sent under a wrong name.
            if !blobs.exists(&file_digest).await.map_err(|e| setup(&e))? {
                blobs
                    .put_file(&file_digest, &path)
                    .await
                    .map_err(|e| setup(&e))?;
            }
            lock(&self.uploaded).insert(file_digest);
        }
        *current = Some(digest.clone());
        Ok(digest)
    }

    /// Apply what the stage of `job` changed in its snapshot workspace
    /// (delta blob `digest`, from `agent`) to the workspace.
    async fn apply_delta(
        &self,
        job: &StageJob,
        agent: &str,
        digest: &str,
    ) -> Result<(), StageFailure> {
        let failed = |e: &dyn std::fmt::Display| {
            StageFailure::setup(format!(
                "the workspace changes of stage `{}` from agent {agent} were not applied: {e}",
                job.stage
            ))
        };
        if !self.wants_snapshot(job) || job.grants.workspace != WorkspaceAccess::Write {
            return Err(failed(
                &"the stage may not write the workspace, or it was not sent as a snapshot",
            ));
        }
        let blobs = self.dispatch.blobs();
        let size = blobs
            .get_into(&self.cas, digest)
            .await
            .map_err(|e| failed(&e))?;
        if size > MAX_DELTA_BYTES {
            return Err(failed(&format!(
                "the change list is {size} bytes, over {MAX_DELTA_BYTES}"
            )));
        }
        let path = self.cas.blob_path(digest).map_err(|e| failed(&e))?;
        let text = std::fs::read(&path).map_err(|e| failed(&e))?;
        let delta: Delta = serde_json::from_slice(&text).map_err(|e| failed(&e))?;
        for (file_digest, _) in snapshot::file_blobs(&delta.changed, Path::new("")) {
            blobs
                .get_into(&self.cas, file_digest)
                .await
                .map_err(|e| failed(&e))?;
        }
        // The snapshot of the next stage is made after this change.
        let mut current = self.snapshot.lock().await;
        *current = None;
        let (cas, root) = (self.cas.clone(), job.workspace.clone());
        tokio::task::spawn_blocking(move || snapshot::apply(&delta, &cas, &root))
            .await
            .map_err(|e| failed(&e))?
            .map_err(|e| failed(&e))
    }

    async fn run_remote(&self, job: StageJob, cancel: CancellationToken) -> StageOutcome {
        let failed = |failure: StageFailure, lost: Vec<LostExecution>| StageOutcome {
            result: Err(failure),
            log: LogReport {
                path: job.log.clone(),
                stats: Default::default(),
            },
            agent: None,
            lost,
        };
        let fresh = match JobId::of(&job, self.options.epoch) {
            Ok(id) => id,
            Err(e) => return failed(StageFailure::setup(e.to_string()), vec![]),
        };
        // A stage the previous coordinator had dispatched: its outcome may
        // be recorded, or the job still queued or running.
        let mut follow = None;
        let adopt = self
            .options
            .adopt
            .get(&job.stage)
            .filter(|_| lock(&self.adopted).insert(job.stage.clone()));
        if let Some(old) = adopt {
            match self.dispatch.adopt(old).await {
                Ok(Adopted::Finished(outcome)) => {
                    return self.settle(&job, *outcome, Vec::new()).await;
                }
                Ok(Adopted::InFlight { .. }) => follow = Some(old.clone()),
                Ok(Adopted::Unknown) => {}
                Err(e) => {
                    tracing::warn!(stage = job.stage, job = %old, error = %e, "could not look up the job of the previous coordinator; dispatching again");
                }
            }
        }
        let id = follow.clone().unwrap_or(fresh);
        let snapshot = match (&follow, self.wants_snapshot(&job)) {
            (None, true) => match self.workspace_snapshot(&job).await {
                Ok(digest) => Some(digest),
                Err(failure) => return failed(failure, vec![]),
            },
            _ => None,
        };
        let envelope = match follow {
            Some(_) => None,
            None => match self.envelope(&job, id.clone(), snapshot) {
                Ok(envelope) => Some(envelope),
                Err(failure) => return failed(failure, vec![]),
            },
        };
        // Follow first, so nothing the agent says is missed.
        let mut events = self.dispatch.events(&id);
        if let Some(envelope) = envelope {
            if let Err(e) = self.upload(&envelope).await {
                return failed(
                    StageFailure::setup(format!("sending the stage's plugin and inputs: {e}")),
                    vec![],
                );
            }
            let labels = envelope.runs_on.clone();
            if let Err(e) = self.dispatch.submit(envelope).await {
                return failed(
                    StageFailure::setup(format!("dispatching the job: {e}")),
                    vec![],
                );
            }
            self.check_labels(&job.stage, labels).await;
        }

        let mut running: Option<(String, String)> = None; // (agent, execution)
        let mut lost: Vec<LostExecution> = Vec::new();
        let mut cancel_deadline: Option<tokio::time::Instant> = None;
        let queue_deadline = tokio::time::Instant::now() + self.options.queue_timeout;
        loop {
            let deadline = match (cancel_deadline, &running) {
                (Some(d), _) => Some(d),
                (None, None) => Some(queue_deadline),
                (None, Some(_)) => None,
            };
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = events.next() => match event {
                    None => {
                        let failure = match &running {
                            Some((agent, _)) => {
                                lost.push(LostExecution { agent: agent.clone(), at: sluice_record::now() });
                                self.warn(&format!(
                                    "stage `{}`: agent {agent} went away before the stage reported",
                                    job.stage
                                ));
                                StageFailure::Lost { executions: lost.len() as u32 }
                            }
                            None => StageFailure::setup(format!(
                                "the connection to the agents ended before any agent took job {id}"
                            )),
                        };
                        return on(failed(failure, lost), &running);
                    }
                    Some(AgentEvent::Started { agent, execution, .. }) => {
                        if running.as_ref().is_some_and(|(_, e)| *e == execution) {
                            continue;
                        }
                        if let Some((previous, _)) = running.take() {
                            lost.push(LostExecution { agent: previous.clone(), at: sluice_record::now() });
                            self.warn(&format!(
                                "stage `{}`: agent {previous} lost the job (it stopped answering); retried on agent {agent}",
                                job.stage
                            ));
                            if lost.len() as u32 > self.options.max_lost {
                                self.give_up(&id).await;
                                return on(failed(StageFailure::Lost { executions: lost.len() as u32 }, lost), &running);
                            }
                        }
                        self.reporter.event(&Event::StageAssigned { stage: &job.stage, agent: &agent });
                        running = Some((agent, execution));
                    }
                    Some(AgentEvent::Log { line, level, fields, .. }) => {
                        let line = self.redactor.redact_str(&line);
                        let fields: Vec<(String, String)> = fields
                            .iter()
                            .map(|(k, v)| (self.redactor.redact_str(k), self.redactor.redact_str(v)))
                            .collect();
                        self.reporter.event(&Event::StageLog { stage: &job.stage, line: &line, level, fields: &fields });
                    }
                    Some(AgentEvent::Progress { done, total, message, .. }) => {
                        let message = self.redactor.redact_str(&message);
                        self.reporter.event(&Event::StageProgress { stage: &job.stage, done, total, message: &message });
                    }
                    Some(AgentEvent::Finished(outcome)) => {
                        if outcome.id != id {
                            tracing::debug!(job = %id, other = %outcome.id, "an outcome of another job; dropped");
                            continue;
                        }
                        return self.settle(&job, outcome, lost).await;
                    }
                    Some(AgentEvent::Exhausted { deliveries, .. }) => {
                        self.give_up(&id).await;
                        let executions = (lost.len() as u32 + 1).max(deliveries.min(u64::from(u32::MAX)) as u32);
                        return on(failed(StageFailure::Lost { executions }, lost), &running);
                    }
                },
                _ = cancel.cancelled(), if cancel_deadline.is_none() => {
                    match self.dispatch.cancel(&id, "the run cancelled the stage").await {
                        Ok(Cancelled::Withdrawn) if running.is_none() => {
                            return on(failed(StageFailure::Cancelled { in_grace: true }, lost), &running);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(job = %id, error = %e, "could not tell the agent to cancel"),
                    }
                    cancel_deadline = Some(tokio::time::Instant::now() + job.grace_period + CANCEL_BACKSTOP);
                }
                _ = timer => {
                    if cancel_deadline.is_some() {
                        return on(failed(StageFailure::Cancelled { in_grace: false }, lost), &running);
                    }
                    self.give_up(&id).await;
                    let live_agents = match self.dispatch.agents().await {
                        Ok(agents) => agents
                            .iter()
                            .map(|a| format!("{} [{}]", a.name, a.labels))
                            .collect(),
                        Err(e) => vec![format!("(unknown: {e})")],
                    };
                    let labels = self.options.runs_on.get(&job.stage).cloned().unwrap_or_default();
                    return on(failed(StageFailure::NoAgent { labels, live_agents }, lost), &running);
                }
            }
        }
    }

    /// Warn at once when no live agent can take jobs needing `labels`
    /// (the job stays queued: an agent may come before the queue
    /// timeout). Asked once per label set and run.
    async fn check_labels(&self, stage: &str, labels: LabelSet) {
        if !lock(&self.labels_checked).insert(labels.clone()) {
            return;
        }
        let agents = match self.dispatch.agents().await {
            Ok(agents) => agents,
            Err(e) => {
                tracing::debug!(error = %e, "could not list the live agents");
                return;
            }
        };
        if agents.iter().any(|a| labels.is_subset_of(&a.labels)) {
            return;
        }
        let live: Vec<String> = agents
            .iter()
            .map(|a| format!("{} [{}]", a.name, a.labels))
            .collect();
        self.warn(&format!(
            "stage `{stage}` needs an agent with the labels `{labels}`, and no live agent has them \
             (live: {}); the job waits up to {}s for one",
            if live.is_empty() { "none".to_owned() } else { live.join(", ") },
            self.options.queue_timeout.as_secs()
        ));
    }

    /// Remove the job from the queue for good (best effort: a failure
    /// only means an agent may still run it, and its outcome is dropped).
    async fn give_up(&self, id: &JobId) {
        if let Err(e) = self.dispatch.withdraw(id).await {
            tracing::warn!(job = %id, error = %e, "could not withdraw the job");
        }
    }

    fn warn(&self, message: &str) {
        tracing::warn!("{message}");
        self.reporter.event(&Event::Warning { message });
    }

    /// The engine's outcome from the agent's: artifacts into the CAS
    /// (digests checked), the agent's log in place of the live copy.
    async fn settle(
        &self,
        job: &StageJob,
        envelope: OutcomeEnvelope,
        lost: Vec<LostExecution>,
    ) -> StageOutcome {
        let OutcomeEnvelope {
            agent,
            outcome,
            log,
            workspace_delta,
            ..
        } = envelope;
        let StageOutcome {
            mut result,
            log: log_report,
            ..
        } = outcome;
        // The log is where this coordinator says, whatever the agent says.
        let log_report = LogReport {
            path: job.log.clone(),
            stats: log_report.stats,
        };
        if let Some(blob) = &log {
            if !self.options.shared_cas {
                if let Err(e) = self.replace_log(&job.log, &blob.digest).await {
                    self.warn(&format!(
                        "stage `{}`: the log of agent {agent} could not be fetched ({e}); the log holds only what was shown live",
                        job.stage
                    ));
                }
            }
        }
        // What a `workspace: write` stage changed lands in this workspace
        // whatever the outcome, as a local stage's writes would.
        if let Some(delta) = &workspace_delta {
            if let Err(failure) = self.apply_delta(job, &agent, &delta.digest).await {
                result = Err(failure);
            }
        }
        let fetched = match &result {
            Ok(report) => self.fetch_artifacts(&agent, report).await,
            Err(_) => Ok(()),
        };
        match (&mut result, fetched) {
            (_, Err(failure)) => result = Err(failure),
            (Ok(report), Ok(())) => report_redacted(report, &self.redactor),
            (Err(_), Ok(())) => {}
        }
        if let Err(failure) = &result {
            if !self.options.shared_cas && log.is_none() {
                self.note(&job.stage, &job.log, &failure.log_note());
            }
        }
        StageOutcome {
            result,
            log: log_report,
            agent: Some(agent),
            lost,
        }
    }

    /// Copy the report's artifacts into the coordinator's CAS, each
    /// re-hashed against its digest and checked against its size.
    async fn fetch_artifacts(
        &self,
        agent: &str,
        report: &sluice_engine::executor::StageReport,
    ) -> Result<(), StageFailure> {
        for artifact in &report.artifacts {
            let bad = |why: String| StageFailure::Outputs {
                message: format!(
                    "artifact `{}` ({}) reported by agent {agent}: {why}",
                    artifact.name, artifact.digest
                ),
            };
            let path = self
                .cas
                .blob_path(&artifact.digest)
                .map_err(|e| bad(e.to_string()))?;
            if self.options.shared_cas {
                // The agent stored it in this very CAS, as this user.
                let meta =
                    std::fs::metadata(&path).map_err(|e| bad(format!("not in the CAS ({e})")))?;
                if meta.len() != artifact.size {
                    return Err(bad(format!(
                        "the CAS holds {} bytes, the report says {}",
                        meta.len(),
                        artifact.size
                    )));
                }
                continue;
            }
            let size = self
                .dispatch
                .blobs()
                .get_into(&self.cas, &artifact.digest)
                .await
                .map_err(|e| bad(e.to_string()))?;
            if size != artifact.size {
                return Err(bad(format!(
                    "it has {size} bytes, the report says {}",
                    artifact.size
                )));
            }
        }
        Ok(())
    }

    /// Fetch the agent's log blob and write it over `run_dir/<log>`.
    async fn replace_log(&self, log: &str, digest: &str) -> Result<(), String> {
        let dest = self.log_path(log)?;
        self.dispatch
            .blobs()
            .get_into(&self.cas, digest)
            .await
            .map_err(|e| e.to_string())?;
        let blob = self.cas.blob_path(digest).map_err(|e| e.to_string())?;
        // A copy of the bytes, not of the read-only blob file's mode: the
        // runner's notes are appended to the log afterwards.
        let copy = || -> std::io::Result<()> {
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut src = std::fs::File::open(&blob)?;
            let mut dst = std::fs::File::create(&dest)?;
            std::io::copy(&mut src, &mut dst)?;
            Ok(())
        };
        copy().map_err(|e| format!("{}: {e}", dest.display()))
    }

    /// `run_dir/<log>`, refusing a path that leaves the run directory.
    fn log_path(&self, log: &str) -> Result<PathBuf, String> {
        let relative = Path::new(log);
        if relative.as_os_str().is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(format!(
                "the log `{log}` is not a path inside the run directory"
            ));
        }
        Ok(self.run_dir.join(relative))
    }
}

/// `outcome` with the agent that had the job, when one had it.
fn on(mut outcome: StageOutcome, running: &Option<(String, String)>) -> StageOutcome {
    outcome.agent = running.as_ref().map(|(agent, _)| agent.clone());
    outcome
}

/// Report strings from an agent, redacted with the coordinator's own
/// secrets too (the agent redacted with its own).
fn report_redacted(report: &mut sluice_engine::executor::StageReport, redactor: &Redactor) {
    if redactor.is_empty() {
        return;
    }
    report.summary = redactor.redact_str(&report.summary);
    for (_, value) in &mut report.outputs {
        *value = redactor.redact_str(value);
    }
}

impl Executor for RemoteExecutor {
    fn run(&self, job: StageJob, cancel: CancellationToken) -> OutcomeFuture<'_> {
        Box::pin(self.run_remote(job, cancel))
    }

    fn note(&self, stage: &str, log: &str, message: &str) {
        let path = match self.log_path(log) {
            Ok(path) => path,
            Err(e) => {
                tracing::warn!(stage, "could not add a note to the stage log: {e}");
                return;
            }
        };
        let redacted = self.redactor.redact_str(message);
        let mut text = String::new();
        for line in redacted.lines() {
            text.push_str("[sluice] ");
            text.push_str(line);
            text.push('\n');
            self.reporter.event(&Event::StageLog {
                stage,
                line: &format!("[sluice] {line}"),
                level: None,
                fields: &[],
            });
        }
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?
                .write_all(text.as_bytes())
        };
        if let Err(e) = write() {
            tracing::warn!(stage, error = %e, path = %path.display(), "could not add a note to the stage log");
        }
    }
}

#[cfg(test)]
mod tests;
