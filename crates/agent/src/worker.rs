//! The job loop: one code path for every [`JobSource`] (the unix socket of
//! a local agent, NATS JetStream).
//!
//! Per job: say `Started`, get the plugin (a shared path or the blob
//! store), admit it under the agent's own policy ([`crate::verify`]),
//! compile it or take it warm ([`crate::plugins`]), fetch the inputs, build
//! a `sluice_host::stage_exec::LocalExecutor` for this one job and run it,
//! forwarding its log lines and progress through the lease, upload what
//! the coordinator does not share, and finish the lease, which records the
//! outcome durably before the job is acknowledged.
//!
//! Jobs run in the agent's `concurrency` slots; a job is taken only when a
//! slot is free. On shutdown the agent stops taking jobs, cancels the
//! running ones (each answers `Cancelled` within its grace period) and
//! settles them before it returns.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use sluice_engine::admission::PluginFile;
use sluice_engine::executor::{Executor, LogReport, StageFailure, StageOutcome};
use sluice_engine::redact::Redactor;
use sluice_engine::report::{Event, Reporter};
use sluice_fleet::proto::{
    AgentEvent, BlobRef, Heartbeat, JobEnvelope, JobId, OutcomeEnvelope, PluginDescription,
    WorkspaceSource, PROTOCOL,
};
use sluice_fleet::snapshot;
use sluice_fleet::transport::{BlobStore, IncomingJob, JobLease, JobSource};
use sluice_fleet::uds::Describer;
use sluice_fleet::FleetError;
use sluice_host::stage_exec::LocalExecutor;
use sluice_record::artifacts::Cas;
use sluice_record::workdir::WorkDirs;

use sha2::Digest as _;

use crate::config::AgentConfig;
use crate::plugins::PluginCache;
use crate::sources::{AgentEnv, AgentSecrets};
use crate::verify::{self, Verifier};

/// Why an agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Its operator policy file is invalid.
    #[error(transparent)]
    Policy(#[from] sluice_trust::PolicyError),
    /// The wasmtime engine could not start.
    #[error(transparent)]
    Host(#[from] sluice_host::HostError),
    /// Its cache directory is unusable.
    #[error("cannot use the agent's cache directory {}: {source}", path.display())]
    CacheDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Its artifact store is unusable.
    #[error(transparent)]
    Cas(#[from] sluice_record::artifacts::ArtifactError),
}

/// Largest workspace manifest an agent reads (about a million entries).
const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// A running agent: its config, admission, warm engine and counters.
pub struct Agent {
    config: AgentConfig,
    verifier: Verifier,
    plugins: PluginCache,
    secrets: Arc<AgentSecrets>,
    env: Arc<AgentEnv>,
    /// The agent's own CAS (for transports that share none).
    cas: Cas,
    /// CAS handles of coordinators that share theirs, by directory.
    shared_cas: Mutex<HashMap<PathBuf, Arc<Cas>>>,
    running: Mutex<BTreeSet<JobId>>,
    /// Work trees by root: the free ones and how many there are.
    work_trees: Mutex<HashMap<PathBuf, (Vec<usize>, usize)>>,
    jobs_done: AtomicU64,
    executions: AtomicU64,
    max_handles: usize,
    started_at: SystemTime,
    /// Fires on shutdown: every running job is cancelled.
    stop_jobs: CancellationToken,
}

impl Agent {
    /// Start an agent: load its policy, start its engine, make its cache
    /// directory.
    pub fn start(config: AgentConfig) -> Result<Arc<Agent>, StartError> {
        std::fs::create_dir_all(&config.cache_dir).map_err(|source| StartError::CacheDir {
            path: config.cache_dir.clone(),
            source,
        })?;
        let secrets = Arc::new(AgentSecrets::new(&config));
        let verifier = Verifier::new(&config, secrets.clone())?;
        let plugins =
            PluginCache::start(&config.cache_dir, config.concurrency, config.plugin_cache)?;
        let cas = Cas::open(&config.cache_dir.join("cas"))?;
        let max_handles = sluice_host::engine::handles_per_stage(
            sluice_host::engine::raise_open_files_limit(),
            config.concurrency,
        );
        Ok(Arc::new(Agent {
            env: Arc::new(AgentEnv::new(&config)),
            secrets,
            verifier,
            plugins,
            cas,
            shared_cas: Mutex::new(HashMap::new()),
            running: Mutex::new(BTreeSet::new()),
            work_trees: Mutex::new(HashMap::new()),
            jobs_done: AtomicU64::new(0),
            executions: AtomicU64::new(0),
            max_handles,
            started_at: SystemTime::now(),
            stop_jobs: CancellationToken::new(),
            config,
        }))
    }

    /// Its config.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Jobs it has settled since it started.
    pub fn jobs_done(&self) -> u64 {
        self.jobs_done.load(Ordering::Relaxed)
    }

    /// Its warm plugin cache.
    pub fn plugins(&self) -> &PluginCache {
        &self.plugins
    }

    /// What it says about itself now.
    pub fn heartbeat(&self) -> Heartbeat {
        Heartbeat {
            name: self.config.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            labels: self.config.labels.clone(),
            slots: u32::try_from(self.config.concurrency).unwrap_or(u32::MAX),
            running: lock(&self.running).iter().cloned().collect(),
            secrets: self.secrets.names(),
            host: host_name(),
            started_at: humantime::format_rfc3339_seconds(self.started_at).to_string(),
            shared_workspace: self.config.shared_workspace,
            allow_unsigned: self.verifier.unverified(),
        }
    }

    /// Take jobs from `source` until `stop` fires or the source closes:
    /// one task per slot (`concurrency`), each asking for its next job only
    /// when it is free, so a transport that pulls (NATS) has one request
    /// open per free slot. On stop, the running jobs are cancelled and
    /// settled before this returns.
    pub async fn serve(
        self: &Arc<Self>,
        source: Arc<dyn JobSource>,
        stop: CancellationToken,
    ) -> Result<(), FleetError> {
        let fatal: Arc<Mutex<Option<FleetError>>> = Arc::default();
        let mut slots = tokio::task::JoinSet::new();
        for _ in 0..self.config.concurrency {
            let (agent, source, stop, fatal) =
                (self.clone(), source.clone(), stop.clone(), fatal.clone());
            slots.spawn(async move {
                loop {
                    let incoming = tokio::select! {
                        _ = stop.cancelled() => return,
                        next = source.next() => next,
                    };
                    match incoming {
                        Ok(job) => agent.run_incoming(job, source.blobs()).await,
                        Err(FleetError::Closed { .. }) => return,
                        Err(e @ FleetError::Connect { .. }) => {
                            *lock(&fatal) = Some(e);
                            stop.cancel();
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "taking a job failed; trying again");
                            tokio::select! {
                                _ = stop.cancelled() => return,
                                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                            }
                        }
                    }
                }
            });
        }
        // On stop: no more jobs, and the running ones are cancelled (each
        // answers `Cancelled` within its grace period and is settled).
        let stopping = {
            let (agent, source, stop) = (self.clone(), source.clone(), stop.clone());
            tokio::spawn(async move {
                stop.cancelled().await;
                source.shutdown();
                agent.stop_jobs.cancel();
            })
        };
        while slots.join_next().await.is_some() {}
        // Every slot ended (the source closed, or a fatal error): stop.
        stop.cancel();
        let _ = stopping.await;
        let fatal = lock(&fatal).take();
        match fatal {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Run one job and settle its lease.
    async fn run_incoming(&self, incoming: IncomingJob, blobs: &dyn BlobStore) {
        let IncomingJob {
            envelope,
            lease,
            delivery,
        } = incoming;
        let lease: Arc<dyn JobLease> = Arc::from(lease);
        let id = envelope.id.clone();
        let taken = std::time::Instant::now();
        let execution = self.execution_id();
        lock(&self.running).insert(id.clone());
        lease
            .event(AgentEvent::Started {
                id: id.clone(),
                agent: self.config.name.clone(),
                execution: execution.clone(),
                delivery,
            })
            .await;
        // The job's own cancel token fires on the coordinator's cancel or
        // the agent's shutdown.
        let cancel = lease.cancelled();
        let done = CancellationToken::new();
        {
            let (stop, cancel, done) = (self.stop_jobs.clone(), cancel.clone(), done.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => cancel.cancel(),
                    _ = done.cancelled() => {}
                }
            });
        }
        let mut workspace_delta = None;
        let (mut outcome, log) = self
            .run_job(
                &envelope,
                lease.clone(),
                blobs,
                cancel,
                &mut workspace_delta,
            )
            .await;
        done.cancel();
        outcome.agent = Some(self.config.name.clone());
        let failed = outcome.result.as_ref().err().map(ToString::to_string);
        let envelope = OutcomeEnvelope {
            protocol: PROTOCOL,
            id: id.clone(),
            agent: self.config.name.clone(),
            execution,
            outcome,
            log,
            workspace_delta,
        };
        let ran = taken.elapsed();
        let finished = lease.finish(envelope).await;
        // `--log sluice::timing=debug`: where a job's time goes on the agent.
        tracing::debug!(
            target: "sluice::timing",
            job = %id,
            run_us = ran.as_micros() as u64,
            settled_us = taken.elapsed().as_micros() as u64,
            "job settled"
        );
        match finished {
            Ok(()) => {
                self.jobs_done.fetch_add(1, Ordering::Relaxed);
                match failed {
                    None => tracing::info!(job = %id, "job passed"),
                    Some(why) => tracing::info!(job = %id, "job failed: {why}"),
                }
            }
            // Not acknowledged: the transport delivers the job again (NATS
            // after the ack wait); nothing else to do here.
            Err(e) => tracing::warn!(job = %id, error = %e, "could not record the outcome"),
        }
        lock(&self.running).remove(&id);
    }

    /// The job's outcome, and its log in the blob store when the
    /// coordinator does not share the run directory; what a `workspace:
    /// write` stage changed in a snapshot workspace goes to `delta`.
    async fn run_job(
        &self,
        envelope: &JobEnvelope,
        lease: Arc<dyn JobLease>,
        blobs: &dyn BlobStore,
        cancel: CancellationToken,
        delta: &mut Option<BlobRef>,
    ) -> (StageOutcome, Option<BlobRef>) {
        let job = &envelope.job;
        let fail = |failure: StageFailure| {
            StageOutcome::local(
                Err(failure),
                LogReport {
                    path: job.log.clone(),
                    stats: Default::default(),
                },
            )
        };
        if envelope.protocol != PROTOCOL {
            return (
                fail(StageFailure::setup(format!(
                    "agent `{}` speaks fleet protocol {PROTOCOL}, the job is {}: upgrade the older side",
                    self.config.name, envelope.protocol
                ))),
                None,
            );
        }
        // Routing sends a job only to agents with its labels; one that
        // arrives anyway (published by hand, a stale consumer) is not run
        // where its author said it must not.
        if !envelope.runs_on.is_subset_of(&self.config.labels) {
            return (
                fail(StageFailure::setup(format!(
                    "agent `{}` has the labels `{}`, and stage `{}` needs `{}` (`runs-on:`)",
                    self.config.name, self.config.labels, job.stage, envelope.runs_on
                ))),
                None,
            );
        }
        let shared = lease.shared_run();
        // Where the job's plugin, inputs, log and outputs live.
        let (cas, run_dir, work) = match &shared {
            Some(shared) => (
                match self.shared_cas(&shared.cas) {
                    Ok(cas) => cas,
                    Err(e) => {
                        return (
                            fail(StageFailure::setup(format!(
                                "the coordinator's artifact store: {e}"
                            ))),
                            None,
                        )
                    }
                },
                shared.run_dir.clone(),
                self.work_tree(&shared.run_dir.join("work/.agent")),
            ),
            None => {
                let work = self.work_tree(&self.config.cache_dir.join("jobs"));
                (Arc::new(self.cas.clone()), work.path.clone(), work)
            }
        };
        let began = std::time::Instant::now();
        let file = match self
            .plugin_file(envelope, shared.is_some(), &cas, blobs)
            .await
        {
            Ok(file) => file,
            Err(failure) => return (fail(failure), None),
        };
        if let Err(e) = self.verifier.verify(job, &file) {
            tracing::warn!(job = %envelope.id, "{e}");
            return (fail(e.into_failure()), None);
        }
        let plugin = match self.plugins.load(&file).await {
            Ok((plugin, _)) => plugin,
            Err(e) => {
                return (
                    fail(StageFailure::setup(format!(
                        "plugin {}: {e}",
                        file.reference
                    ))),
                    None,
                )
            }
        };
        // The workspace: the coordinator's own path, or a snapshot of it
        // written into this job's work tree.
        let mut job_run = job.clone();
        let snapshot = match &envelope.workspace {
            WorkspaceSource::Snapshot { manifest } => {
                let dir = work.path.join(".workspace");
                match self.materialise(manifest, &cas, blobs, &dir).await {
                    Ok(manifest) => {
                        job_run.workspace = dir.clone();
                        Some((manifest, dir))
                    }
                    Err(failure) => return (fail(failure), None),
                }
            }
            _ => {
                if let Err(failure) = self.workspace(envelope) {
                    return (fail(failure), None);
                }
                None
            }
        };
        if shared.is_none() {
            for input in &job.inputs {
                if let Err(e) = blobs.get_into(&cas, &input.artifact.digest).await {
                    return (
                        fail(StageFailure::Inputs {
                            stage: input.stage.clone(),
                            message: format!(
                                "artifact `{}` could not be fetched: {e}",
                                input.artifact.name
                            ),
                        }),
                        None,
                    );
                }
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let forward = tokio::spawn(forward_events(rx, lease.clone()));
        let executor = LocalExecutor {
            plugins: HashMap::from([(plugin.digest.clone(), plugin)]),
            cas: cas.clone(),
            run_dir: run_dir.clone(),
            work: WorkDirs::new(&work.path),
            redactor: Arc::new(Redactor::new(self.secrets.values())),
            reporter: Arc::new(Forwarder {
                id: envelope.id.clone(),
                tx,
            }),
            env: self.env.clone(),
            secrets: self.secrets.clone(),
            max_handles: self.max_handles,
        };
        let prepared = began.elapsed();
        let mut outcome = executor.run(job_run, cancel).await;
        let executed = began.elapsed();
        // Every live line reaches the lease before the outcome does.
        drop(executor);
        let _ = forward.await;
        if let Some((manifest, dir)) = snapshot {
            if job.grants.workspace == sluice_pipeline::WorkspaceAccess::Write {
                match self.send_changes(manifest, &dir, &cas, blobs).await {
                    Ok(sent) => *delta = sent,
                    Err(failure) => outcome.result = Err(failure),
                }
            }
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        }
        let log = match shared {
            Some(_) => None,
            None => {
                let log = self.upload(&outcome, &run_dir, &cas, blobs).await;
                // Uploaded: the work tree is reused by the next job.
                let _ = std::fs::remove_file(run_dir.join(&outcome.log.path));
                log
            }
        };
        drop(work);
        tracing::debug!(
            target: "sluice::timing",
            job = %envelope.id,
            prepared_us = prepared.as_micros() as u64,
            executed_us = executed.as_micros() as u64,
            cleaned_us = began.elapsed().as_micros() as u64,
            "job ran"
        );
        (outcome, log)
    }

    /// Writes the snapshot workspace whose manifest is blob `digest` into
    /// `dir` (emptied first), from blobs fetched into `cas` (each re-hashed
    /// on arrival). Returns the manifest.
    async fn materialise(
        &self,
        digest: &str,
        cas: &Arc<Cas>,
        blobs: &dyn BlobStore,
        dir: &Path,
    ) -> Result<snapshot::Manifest, StageFailure> {
        let setup = |e: &dyn std::fmt::Display| {
            StageFailure::setup(format!(
                "agent `{}` could not set up the workspace snapshot {digest}: {e}",
                self.config.name
            ))
        };
        let size = blobs.get_into(cas, digest).await.map_err(|e| setup(&e))?;
        if size > MAX_MANIFEST_BYTES {
            return Err(setup(&format!(
                "its manifest is {size} bytes, over {MAX_MANIFEST_BYTES}"
            )));
        }
        let path = cas.blob_path(digest).map_err(|e| setup(&e))?;
        let text = tokio::fs::read(&path).await.map_err(|e| setup(&e))?;
        let manifest: snapshot::Manifest = serde_json::from_slice(&text).map_err(|e| setup(&e))?;
        let mut fetched = BTreeSet::new();
        for (file, _) in snapshot::file_blobs(&manifest.entries, Path::new("")) {
            if fetched.insert(file.to_owned()) {
                blobs.get_into(cas, file).await.map_err(|e| setup(&e))?;
            }
        }
        let (cas, dir, listed) = (cas.clone(), dir.to_path_buf(), manifest.clone());
        tokio::task::spawn_blocking(move || {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.to_string()),
                _ => {}
            }
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            snapshot::materialise(&listed, &cas, &dir).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| setup(&e))?
        .map_err(|e| setup(&e))?;
        Ok(manifest)
    }

    /// What the stage changed in the snapshot workspace `dir` since
    /// `manifest`, sent to the blob store (the changed files, then the
    /// change list); `None` when it changed nothing.
    async fn send_changes(
        &self,
        manifest: snapshot::Manifest,
        dir: &Path,
        cas: &Arc<Cas>,
        blobs: &dyn BlobStore,
    ) -> Result<Option<BlobRef>, StageFailure> {
        let failed = |e: &dyn std::fmt::Display| {
            StageFailure::setup(format!(
                "agent `{}` could not send the stage's workspace changes: {e}",
                self.config.name
            ))
        };
        let root = dir.to_path_buf();
        let delta = tokio::task::spawn_blocking(move || snapshot::diff(&manifest, &root))
            .await
            .map_err(|e| failed(&e))?
            .map_err(|e| failed(&e))?;
        if delta.is_empty() {
            return Ok(None);
        }
        for (file, path) in snapshot::file_blobs(&delta.changed, dir) {
            blobs.put_file(file, &path).await.map_err(|e| failed(&e))?;
        }
        let body = serde_json::to_vec(&delta).map_err(|e| failed(&e))?;
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body)));
        cas.ingest_verified(
            &mut body.as_slice(),
            &digest,
            Path::new("workspace changes"),
        )
        .map_err(|e| failed(&e))?;
        let path = cas.blob_path(&digest).map_err(|e| failed(&e))?;
        blobs
            .put_file(&digest, &path)
            .await
            .map_err(|e| failed(&e))?;
        Ok(Some(BlobRef {
            digest,
            size: body.len() as u64,
        }))
    }

    /// The job's plugin: the file on the shared path (re-hashed only when
    /// it changed), else fetched by digest from the blob store into the
    /// agent's CAS. Its digest is computed here, never taken on trust.
    async fn plugin_file(
        &self,
        envelope: &JobEnvelope,
        shared: bool,
        cas: &Cas,
        blobs: &dyn BlobStore,
    ) -> Result<PluginFile, StageFailure> {
        let reference = &envelope.job.plugin.reference;
        let setup = |m: String| StageFailure::setup(format!("plugin {reference}: {m}"));
        if shared {
            let path = envelope.plugin.path.as_deref().ok_or_else(|| {
                setup("the job names no plugin file, and this agent reads plugins from the coordinator's path".to_owned())
            })?;
            let mut file = self
                .plugins
                .read_file(path, reference)
                .map_err(|e| setup(e.to_string()))?;
            // Sidecars the coordinator put into the shared CAS (an OCI
            // plugin's signatures come from its registry, not from beside
            // the file) are the ones that travel with the job.
            let from_cas = |digest: &String| {
                cas.blob_path(digest)
                    .map_err(|e| setup(e.to_string()))
                    .and_then(|p| {
                        std::fs::read_to_string(&p)
                            .map_err(|e| setup(format!("reading {}: {e}", p.display())))
                    })
            };
            if let Some(d) = &envelope.plugin.bundle {
                file.bundle = Some(from_cas(d)?);
            }
            if let Some(d) = &envelope.plugin.attestations {
                file.attestations = Some(from_cas(d)?);
            }
            return Ok(file);
        }
        let fetch = |digest: String| async move {
            blobs
                .get_into(cas, &digest)
                .await
                .map_err(|e| setup(e.to_string()))?;
            cas.blob_path(&digest).map_err(|e| setup(e.to_string()))
        };
        let path = fetch(envelope.plugin.digest.clone()).await?;
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| setup(format!("reading {}: {e}", path.display())))?;
        let sidecar = |digest: &Option<String>| {
            let digest = digest.clone();
            let fetch = &fetch;
            async move {
                match digest {
                    None => Ok(None),
                    Some(d) => {
                        let path = fetch(d).await?;
                        std::fs::read_to_string(&path)
                            .map(Some)
                            .map_err(|e| setup(format!("reading {}: {e}", path.display())))
                    }
                }
            }
        };
        let bundle = sidecar(&envelope.plugin.bundle).await?;
        let attestations = sidecar(&envelope.plugin.attestations).await?;
        Ok(verify::plugin_file(
            reference,
            path,
            Arc::new(bytes),
            bundle,
            attestations,
        ))
    }

    /// Check the job's workspace is one this agent can give it.
    fn workspace(&self, envelope: &JobEnvelope) -> Result<(), StageFailure> {
        match &envelope.workspace {
            WorkspaceSource::None => Ok(()),
            WorkspaceSource::SharedPath { path } if path.is_dir() => Ok(()),
            WorkspaceSource::SharedPath { path } => Err(StageFailure::setup(format!(
                "agent `{}` does not see the workspace {} (a shared workspace must be at the same path on the agent)",
                self.config.name,
                path.display()
            ))),
            // `run_job` materialises a snapshot instead of checking it here.
            WorkspaceSource::Snapshot { .. } => Ok(()),
        }
    }

    /// Upload what the coordinator needs from the agent's own CAS: every
    /// artifact of the report, and the log.
    async fn upload(
        &self,
        outcome: &StageOutcome,
        run_dir: &Path,
        cas: &Cas,
        blobs: &dyn BlobStore,
    ) -> Option<BlobRef> {
        if let Ok(report) = &outcome.result {
            for a in &report.artifacts {
                let uploaded = match cas.blob_path(&a.digest) {
                    Ok(path) => blobs.put_file(&a.digest, &path).await,
                    Err(e) => Err(FleetError::Cas(e)),
                };
                if let Err(e) = uploaded {
                    // The coordinator's download of it fails and names it.
                    tracing::warn!(artifact = %a.name, error = %e, "could not upload an artifact");
                }
            }
        }
        let log = run_dir.join(&outcome.log.path);
        let (digest, size) = match sluice_record::artifacts::hash_file(&log) {
            Ok(hashed) => hashed,
            Err(e) => {
                tracing::warn!(log = %log.display(), error = %e, "could not read the stage log");
                return None;
            }
        };
        match blobs.put_file(&digest, &log).await {
            Ok(()) => Some(BlobRef { digest, size }),
            Err(e) => {
                tracing::warn!(error = %e, "could not upload the stage log");
                None
            }
        }
    }

    /// A work tree under `root` that no other job uses now: `WorkDirs`
    /// numbers its output directories per instance, so two jobs at once
    /// must not share one; reused one job after another, so that a job
    /// neither creates nor removes directory trees (removing one per job
    /// cost 7–180 ms on a busy disk).
    fn work_tree(&self, root: &Path) -> WorkTree<'_> {
        let index = {
            let mut trees = lock(&self.work_trees);
            let (free, next) = trees.entry(root.to_path_buf()).or_default();
            free.pop().unwrap_or_else(|| {
                *next += 1;
                *next - 1
            })
        };
        WorkTree {
            agent: self,
            root: root.to_path_buf(),
            index,
            path: root.join(index.to_string()),
        }
    }

    /// The coordinator's CAS in `dir`, opened once per directory.
    fn shared_cas(&self, dir: &Path) -> Result<Arc<Cas>, sluice_record::artifacts::ArtifactError> {
        let mut all = lock(&self.shared_cas);
        if let Some(cas) = all.get(dir) {
            return Ok(cas.clone());
        }
        let cas = Arc::new(Cas::open(dir)?);
        all.insert(dir.to_path_buf(), cas.clone());
        Ok(cas)
    }

    /// A fresh id for one execution of a job.
    fn execution_id(&self) -> String {
        let n = self.executions.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!("{}-{nanos:x}-{n}", std::process::id())
    }

    /// Admit and describe the plugin at `path` for a coordinator (unix
    /// socket): the same admission as a job's, without grants.
    async fn describe_file(&self, digest: &str, path: &Path) -> Result<PluginDescription, String> {
        let reference = path.display().to_string();
        let file = self
            .plugins
            .read_file(path, &reference)
            .map_err(|e| e.to_string())?;
        if file.digest != digest {
            return Err(format!(
                "{} hashes to {}, not {digest}: it changed after the coordinator read it",
                path.display(),
                file.digest
            ));
        }
        self.verifier.admit(&file).map_err(|e| e.to_string())?;
        let (plugin, _) = self.plugins.load(&file).await.map_err(|e| e.to_string())?;
        let info = self
            .plugins
            .describe(&plugin)
            .await
            .map_err(|e| format!("`describe` failed: {e}"))?;
        Ok(description(&plugin, info))
    }
}

impl Describer for Agent {
    fn describe<'a>(
        &'a self,
        digest: &'a str,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<PluginDescription, String>> {
        Box::pin(self.describe_file(digest, path))
    }
}

/// `describe`'s answer as data. Capabilities are written
/// `workspace-read`, `workspace-write`, `env:NAME`, `network:PATTERN`,
/// `exec:PROGRAM` and `secret:NAME`.
pub fn description(
    plugin: &sluice_host::Plugin,
    info: sluice_host::bindings::wit::PluginInfo,
) -> PluginDescription {
    use sluice_host::bindings::wit::Capability as C;
    PluginDescription {
        name: info.name,
        version: info.version,
        kind: sluice_host::sandbox::kind_name(&info.kind).to_owned(),
        wit: plugin.wit.to_string(),
        description: info.description,
        config_schema: info.config_schema,
        capabilities: info
            .capabilities
            .into_iter()
            .map(|c| match c {
                C::WorkspaceRead => "workspace-read".to_owned(),
                C::WorkspaceWrite => "workspace-write".to_owned(),
                C::Env(n) => format!("env:{n}"),
                C::Network(n) => format!("network:{n}"),
                C::Exec(n) => format!("exec:{n}"),
                C::Secret(n) => format!("secret:{n}"),
            })
            .collect(),
    }
}

/// A job's work tree, given back when the job is done.
struct WorkTree<'a> {
    agent: &'a Agent,
    root: PathBuf,
    index: usize,
    path: PathBuf,
}

impl Drop for WorkTree<'_> {
    fn drop(&mut self) {
        if let Some((free, _)) = lock(&self.agent.work_trees).get_mut(&self.root) {
            free.push(self.index);
        }
    }
}

/// Turns the local executor's live events into the lease's.
struct Forwarder {
    id: JobId,
    tx: mpsc::UnboundedSender<AgentEvent>,
}

impl Reporter for Forwarder {
    fn event(&self, event: &Event<'_>) {
        let forwarded = match event {
            Event::StageLog {
                line,
                level,
                fields,
                ..
            } => AgentEvent::Log {
                id: self.id.clone(),
                line: (*line).to_owned(),
                level: *level,
                fields: fields.to_vec(),
            },
            Event::StageProgress {
                done,
                total,
                message,
                ..
            } => AgentEvent::Progress {
                id: self.id.clone(),
                done: *done,
                total: *total,
                message: (*message).to_owned(),
            },
            _ => return,
        };
        // The receiver lives until the job's outcome is sent.
        let _ = self.tx.send(forwarded);
    }
}

async fn forward_events(mut rx: mpsc::UnboundedReceiver<AgentEvent>, lease: Arc<dyn JobLease>) {
    while let Some(event) = rx.recv().await {
        lease.event(event).await;
    }
}

/// The machine's name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
