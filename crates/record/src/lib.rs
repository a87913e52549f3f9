//! The run record on disk: `.sluice/runs/<run-id>/run.json` and
//! `logs/<stage>.log`.
//!
//! `run.json` is rewritten atomically (temp file, fsync, rename, fsync dir)
//! at every state change, so a runner killed at any moment leaves either the
//! previous or the next state and `sluice run --resume` continues from it.
//! A stage's artifacts are in the CAS before the record says the stage
//! finished, so a finished stage never points at a missing blob.
//!
//! This crate owns the durable state of runs: the run record and its
//! journal ([`journal`]), the content-addressed artifact store
//! ([`artifacts`]) and the work directories behind a stage's `/artifacts`
//! ([`workdir`]). It must not depend on wasmtime, tokio, the trust policy
//! or the scheduler: `sluice runs`, `approve` and `gc` read it alone.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub mod artifacts;
pub mod journal;
pub mod workdir;

use crate::artifacts::ArtifactRecord;
use sluice_pipeline::gates::{GateResult, Verdict};

/// Version of the `run.json` layout.
pub const SCHEMA: u32 = 1;

/// Errors reading or writing run records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Reading or writing a file failed. A full disk, a quota, a read-only
    /// file system or too many open files are said in plain words.
    #[error("{}: {}", path.display(), sluice_files::fsutil::io_reason(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `run.json` is not a run record this version understands.
    #[error("{}: not a valid run record ({message}); it may come from another sluice version", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No run has this id.
    #[error("no run `{id}` in {}; `sluice runs list` shows the runs there", dir.display())]
    NotFound {
        /// The id asked for.
        id: String,
        /// Where runs are kept.
        dir: PathBuf,
    },
    /// Another process holds the run.
    #[error("run `{0}` is being run by another sluice process right now")]
    Busy(String),
}

/// Overall state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// In progress (or interrupted: nobody holds its lock).
    Running,
    /// Every stage that ran passed (possibly with warnings).
    Passed,
    /// A stage failed or a blocking gate stopped the run.
    Failed,
    /// Waiting for `sluice approve`.
    Paused,
    /// Stopped by a signal to the runner (Ctrl-C, SIGTERM): the stages that
    /// were running are `cancelled` with the reason; `--resume` continues.
    Interrupted,
}

/// State of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageState {
    /// Not started yet.
    Pending,
    /// Running now (or interrupted, if the run's process died).
    Running,
    /// Waiting for `sluice approve <run> <stage>`.
    AwaitingApproval,
    /// Finished, every gate passed.
    Passed,
    /// Finished; a gate or the plugin warned.
    Warned,
    /// Error, trap, timeout, limit or denied call.
    Failed,
    /// Finished, but a blocking gate failed (or was inconclusive).
    Blocked,
    /// Not run: its `when:` did not hold or what it needs did not pass.
    Skipped,
    /// Stopped by fail-fast after another stage failed.
    Cancelled,
}

impl StageState {
    /// Whether the stage is finished for this run.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            StageState::Pending | StageState::Running | StageState::AwaitingApproval
        )
    }

    /// Whether stages that need this one may run.
    pub fn succeeded(self) -> bool {
        matches!(self, StageState::Passed | StageState::Warned)
    }

    /// Whether this counts as a failure of the run (and triggers
    /// `when: failure` stages).
    pub fn is_failure(self) -> bool {
        matches!(self, StageState::Failed | StageState::Blocked)
    }

    /// Lowercase name as shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            StageState::Pending => "pending",
            StageState::Running => "running",
            StageState::AwaitingApproval => "awaiting-approval",
            StageState::Passed => "passed",
            StageState::Warned => "warned",
            StageState::Failed => "failed",
            StageState::Blocked => "blocked",
            StageState::Skipped => "skipped",
            StageState::Cancelled => "cancelled",
        }
    }
}

/// The plugin a stage ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// `uses:` as written (resolved path or OCI reference).
    pub reference: String,
    /// `sha256:<hex>` of the component.
    pub digest: String,
    /// Name and version from `describe`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Plugin version from `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Stage kind from `describe` (`build`, `test`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The `sluice:stage` version it targets (`0.1.0`, `0.2.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wit: Option<String>,
    /// Who signed it (verified), when a signature was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// The trust-policy rules that admitted it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_rules: Vec<String>,
    /// Where it was pulled from, for a plugin from an OCI registry (absent
    /// for plugin files, and in records written before registries were
    /// supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciPluginRecord>,
}

/// The registry origin of a plugin pulled by reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciPluginRecord {
    /// `uses:` as written (`oci://registry/repository:tag`, maybe pinned).
    pub reference: String,
    /// `sha256:<hex>` of the manifest the run resolved it to: what the
    /// tag pointed at (the component's own digest is
    /// [`PluginRecord::digest`]).
    pub manifest: String,
}

impl OciPluginRecord {
    /// The reference pinned to the manifest that ran:
    /// `oci://registry/repository[:tag]@sha256:<manifest>`.
    pub fn pinned(&self) -> String {
        let unpinned = self
            .reference
            .split_once('@')
            .map_or(self.reference.as_str(), |(name, _)| name);
        format!("{unpinned}@{}", self.manifest)
    }
}

/// A recorded approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Who approved (`$USER`, or `--by`).
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
}

/// A reported metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    /// Metric name.
    pub name: String,
    /// Value.
    pub value: f64,
    /// Unit, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// Everything recorded about one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// Current state.
    pub state: StageState,
    /// Attempts made (including retries).
    #[serde(default)]
    pub attempts: u32,
    /// Start of the last attempt (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// End of the stage (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Duration of the last attempt in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Why it failed, was blocked, skipped or cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The stage's own summary line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Combined gate verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// The plugin it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginRecord>,
    /// Reported metrics.
    #[serde(default)]
    pub metrics: Vec<MetricRecord>,
    /// Gate results (pipeline gates, then plugin gates).
    #[serde(default)]
    pub gates: Vec<GateResult>,
    /// Reported outputs.
    #[serde(default)]
    pub outputs: IndexMap<String, String>,
    /// Artifacts in the CAS.
    #[serde(default)]
    pub artifacts: Vec<ArtifactRecord>,
    /// Approval, for stages with `approval: required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// The stage paused itself (inconclusive verdict with
    /// `on-inconclusive: pause`) and may not run again until approved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approval_required: bool,
    /// The agent that ran the last attempt (`None` for a local run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Executions of the last attempt lost on agents that died or went
    /// silent before answering; the attempt was delivered again and these
    /// do not count as retries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<LostExecution>,
    /// Log file, relative to the run directory.
    pub log: String,
}

/// One execution of a stage attempt that an agent took and never answered
/// (the agent died, or its lease ran out), so it was delivered again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostExecution {
    /// The agent that had it.
    pub agent: String,
    /// When the loss was noticed (RFC 3339).
    pub at: String,
}

impl StageRecord {
    /// A fresh pending record for `stage`.
    pub fn pending(stage: &str) -> StageRecord {
        StageRecord {
            state: StageState::Pending,
            attempts: 0,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            reason: None,
            summary: None,
            verdict: None,
            plugin: None,
            metrics: Vec::new(),
            gates: Vec::new(),
            outputs: IndexMap::new(),
            artifacts: Vec::new(),
            approval: None,
            approval_required: false,
            agent: None,
            lost: Vec::new(),
            log: format!("logs/{stage}.log"),
        }
    }

    /// Forget the results of a previous attempt (keeps approval and log).
    pub fn reset(&mut self) {
        let approval = self.approval.take();
        let approval_required = self.approval_required;
        let log = std::mem::take(&mut self.log);
        *self = StageRecord::pending("");
        self.approval = approval;
        self.approval_required = approval_required;
        self.log = log;
    }
}

/// For `skip_serializing_if`: a zero counter is left out of the JSON.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Layout version ([`SCHEMA`]).
    pub schema: u32,
    /// Run identifier.
    pub run_id: String,
    /// The pipeline's `name`.
    pub pipeline: String,
    /// Path of the pipeline file (absolute).
    pub pipeline_path: PathBuf,
    /// `sha256:` of the pipeline file when the run started; resume refuses a
    /// changed file.
    pub pipeline_digest: String,
    /// Overall state.
    pub status: RunStatus,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last write (RFC 3339).
    pub updated_at: String,
    /// Set when the run was started with `--allow-unsigned` and no policy.
    #[serde(default)]
    pub unsigned_plugins_allowed: bool,
    /// The trust policy the run was admitted under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PathBuf>,
    /// The operator policy the run was admitted under (the floor `policy`
    /// could only add to; see `sluice_trust::operator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_policy: Option<PathBuf>,
    /// Warnings about the run as a whole (trust policy in warn mode,
    /// unverified plugins).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The last journal entry this snapshot holds (see [`journal`]).
    #[serde(default)]
    pub journal_seq: u64,
    /// The dispatch epoch of a run on agents: raised each time the run
    /// starts or resumes with a remote executor, and part of every job id,
    /// so a resumed run never takes an outcome of an earlier dispatch for
    /// a new attempt. 0 for runs that never used agents.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fleet_epoch: u64,
    /// Stages in pipeline order.
    pub stages: IndexMap<String, StageRecord>,
}

impl RunRecord {
    /// A new run's record: `running`, created now, no policy, warnings or
    /// journal lines yet. The one place the record's defaults are set (the
    /// runner and every test start from it).
    pub fn new(
        run_id: impl Into<String>,
        pipeline: impl Into<String>,
        pipeline_path: impl Into<PathBuf>,
        pipeline_digest: impl Into<String>,
        stages: IndexMap<String, StageRecord>,
    ) -> RunRecord {
        let created = now();
        RunRecord {
            schema: SCHEMA,
            run_id: run_id.into(),
            pipeline: pipeline.into(),
            pipeline_path: pipeline_path.into(),
            pipeline_digest: pipeline_digest.into(),
            status: RunStatus::Running,
            created_at: created.clone(),
            updated_at: created,
            unsigned_plugins_allowed: false,
            policy: None,
            operator_policy: None,
            warnings: Vec::new(),
            journal_seq: 0,
            fleet_epoch: 0,
            stages,
        }
    }

    /// A copy with only the named stages (what one stage attempt reads:
    /// the stages it needs and those its templates refer to), so starting a
    /// stage costs the same in a pipeline of 10 stages or 10,000.
    pub fn view<'a>(&self, stages: impl IntoIterator<Item = &'a String>) -> RunRecord {
        RunRecord {
            schema: self.schema,
            run_id: self.run_id.clone(),
            pipeline: self.pipeline.clone(),
            pipeline_path: self.pipeline_path.clone(),
            pipeline_digest: self.pipeline_digest.clone(),
            status: self.status,
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            unsigned_plugins_allowed: self.unsigned_plugins_allowed,
            policy: self.policy.clone(),
            operator_policy: self.operator_policy.clone(),
            warnings: Vec::new(),
            journal_seq: self.journal_seq,
            fleet_epoch: self.fleet_epoch,
            stages: stages
                .into_iter()
                .filter_map(|n| self.stages.get(n).map(|r| (n.clone(), r.clone())))
                .collect(),
        }
    }
}

/// Current time as RFC 3339 (UTC, milliseconds).
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Where the runs of a working directory live (`.sluice/runs`).
#[derive(Debug, Clone)]
pub struct RunStore {
    dir: PathBuf,
}

/// Exclusive hold on one run, released on drop (also when the process dies,
/// which is how an interrupted run is told from a running one).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunStore {
    /// The store under `sluice_dir` (`.sluice`).
    pub fn new(sluice_dir: &Path) -> RunStore {
        RunStore {
            dir: sluice_dir.join("runs"),
        }
    }

    /// Directory of one run.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("run.json")
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
        move |source| RecordError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Create the directories of a new run (its first snapshot is written
    /// when the scheduler starts, see [`RunStore::begin`]).
    pub fn create(&self, record: &RunRecord) -> Result<(), RecordError> {
        let logs = self.run_dir(&record.run_id).join("logs");
        std::fs::create_dir_all(&logs).map_err(Self::io(&logs))?;
        self.ignore_in_git()
    }

    /// Writes `.gitignore` (`*`) at the top of the state directory unless
    /// one is there: when it lies inside a repository (`.sluice/` in the
    /// project, for one), runs, logs and artifacts never show up in
    /// `git status`, a package or a commit. A file the user wrote is kept.
    fn ignore_in_git(&self) -> Result<(), RecordError> {
        let Some(top) = self.dir.parent() else {
            return Ok(());
        };
        let path = top.join(".gitignore");
        match File::options().write(true).create_new(true).open(&path) {
            Ok(mut f) => f
                .write_all(
                    b"# written by sluice: nothing in its state directory belongs in git\n*\n",
                )
                .map_err(Self::io(&path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(Self::io(&path)(e)),
        }
    }

    /// Take the run's lock; fails with [`RecordError::Busy`] when another
    /// process holds it.
    pub fn lock(&self, id: &str) -> Result<RunLock, RecordError> {
        let path = self.run_dir(id).join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Self::io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(RecordError::Busy(id.to_string())),
            Err(std::fs::TryLockError::Error(e)) => Err(RecordError::Io { path, source: e }),
        }
    }

    /// Whether a process holds the run right now.
    pub fn is_locked(&self, id: &str) -> bool {
        match self.lock(id) {
            Ok(_lock) => false,
            Err(RecordError::Busy(_)) => true,
            Err(_) => false,
        }
    }

    /// Write this process's first snapshot of `record` and open the run's
    /// journal after what it holds. A resumed run's snapshot replaces the
    /// old one durably before anything else; a new run's is written without
    /// waiting for the disk, and the journal's sync thread makes it, and the
    /// directories that name it, durable before its first sync (see
    /// [`journal`]).
    pub fn begin(&self, record: &RunRecord) -> Result<journal::Journal, RecordError> {
        let (path, bytes) = self.snapshot_bytes(record)?;
        let run_dir = self.run_dir(&record.run_id);
        if path.exists() {
            // Opened before the durable save, so that the directory sync
            // covers the journal's entry too.
            let journal = journal::Journal::open(&run_dir, record.journal_seq)?;
            sluice_files::fsutil::write_atomic(&path, &bytes).map_err(Self::io(&path))?;
            Ok(journal)
        } else {
            sluice_files::fsutil::replace_file(&path, &bytes, false).map_err(Self::io(&path))?;
            journal::Journal::open_syncing_first(
                &run_dir,
                record.journal_seq,
                vec![path, run_dir.clone(), self.dir.clone()],
            )
        }
    }

    /// Write `run.json` atomically and durably (file and directory synced).
    pub fn save(&self, record: &RunRecord) -> Result<(), RecordError> {
        let (path, bytes) = self.snapshot_bytes(record)?;
        sluice_files::fsutil::write_atomic(&path, &bytes).map_err(Self::io(&path))
    }

    /// Write `run.json` atomically, syncing its content but not the rename:
    /// for a snapshot over an earlier durable one whose journal is synced
    /// (after a power cut, either snapshot plus the journal gives the same
    /// stages).
    pub fn save_snapshot(&self, record: &RunRecord) -> Result<(), RecordError> {
        let (path, bytes) = self.snapshot_bytes(record)?;
        sluice_files::fsutil::replace_file(&path, &bytes, true).map_err(Self::io(&path))
    }

    fn snapshot_bytes(&self, record: &RunRecord) -> Result<(PathBuf, Vec<u8>), RecordError> {
        let path = self.record_path(&record.run_id);
        let mut bytes = serde_json::to_vec_pretty(record).map_err(|e| RecordError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        bytes.push(b'\n');
        Ok((path, bytes))
    }

    /// Read one run: its snapshot plus its journal.
    pub fn load(&self, id: &str) -> Result<RunRecord, RecordError> {
        let mut record = self.load_snapshot(id)?;
        journal::replay(&self.run_dir(id), &mut record)?;
        Ok(record)
    }

    /// Read one run's snapshot (`run.json`) alone, without its journal.
    pub fn load_snapshot(&self, id: &str) -> Result<RunRecord, RecordError> {
        if id.is_empty() || id.contains(['/', '\\']) || id.starts_with('.') {
            return Err(RecordError::NotFound {
                id: id.to_string(),
                dir: self.dir.clone(),
            });
        }
        let path = self.record_path(id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RecordError::NotFound {
                    id: id.to_string(),
                    dir: self.dir.clone(),
                })
            }
            Err(e) => return Err(RecordError::Io { path, source: e }),
        };
        let record: RunRecord =
            serde_json::from_slice(&bytes).map_err(|e| RecordError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let record = record;
        if record.schema != SCHEMA {
            return Err(RecordError::Corrupt {
                path,
                message: format!("schema {} (this sluice reads {SCHEMA})", record.schema),
            });
        }
        Ok(record)
    }

    /// Every run, newest first. Unreadable records are listed as errors
    /// rather than hidden.
    pub fn list(&self) -> Result<Vec<Result<RunRecord, RecordError>>, RecordError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(RecordError::Io {
                    path: self.dir.clone(),
                    source: e,
                })
            }
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("run.json").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        // Run ids start with a UTC timestamp, so name order is time order.
        ids.sort();
        ids.reverse();
        Ok(ids.iter().map(|id| self.load(id)).collect())
    }
}

/// A new run id: UTC time plus random hex, sortable by time.
pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now();
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    let compact: String = stamp
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect::<String>()
        .replace('T', "-");
    let mut random = [0u8; 3];
    let nanos = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mixed = nanos ^ std::process::id().rotate_left(16);
    random.copy_from_slice(&mixed.to_le_bytes()[..3]);
    format!("{compact}-{}", hex::encode(random))
}

#[cfg(test)]
mod tests {
    #[test]
    fn record_and_artifact_errors_say_when_the_disk_is_full() {
        let record = crate::RecordError::Io {
            path: "/state/runs/x/run.json".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        };
        assert_eq!(
            record.to_string(),
            "/state/runs/x/run.json: the disk is full (ENOSPC)"
        );
        let artifact = crate::artifacts::ArtifactError::Io {
            action: "write",
            path: "/state/cas/tmp/.tmp1".into(),
            source: std::io::Error::from_raw_os_error(libc::EDQUOT),
        };
        assert_eq!(
            artifact.to_string(),
            "could not write /state/cas/tmp/.tmp1: the disk quota is exceeded (EDQUOT)"
        );
    }

    use super::*;

    fn record(id: &str) -> RunRecord {
        let mut stages = IndexMap::new();
        stages.insert("a".to_string(), StageRecord::pending("a"));
        RunRecord::new(
            id,
            "p",
            PathBuf::from("/x/sluice.yaml"),
            "sha256:00",
            stages,
        )
    }

    #[test]
    fn save_load_list_roundtrip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RunStore::new(dir.path());
        for id in ["20260101-000000-aaaaaa", "20260102-000000-bbbbbb"] {
            store.create(&record(id)).expect("create");
            store.save(&record(id)).expect("save");
        }
        // A run whose first snapshot was never written is not listed.
        store
            .create(&record("20260103-000000-cccccc"))
            .expect("create");
        let loaded = store.load("20260101-000000-aaaaaa").expect("load");
        assert_eq!(
            loaded,
            record("20260101-000000-aaaaaa").clone_with_times(&loaded)
        );
        let list = store.list().expect("list");
        assert_eq!(list.len(), 2);
        assert_eq!(
            list[0].as_ref().expect("ok").run_id,
            "20260102-000000-bbbbbb"
        );
        assert!(matches!(
            store.load("nope"),
            Err(RecordError::NotFound { .. })
        ));
        assert!(matches!(
            store.load("../x"),
            Err(RecordError::NotFound { .. })
        ));
    }

    #[test]
    fn the_state_directory_ignores_itself_in_git() {
        let dir = tempfile::tempdir().expect("tempdir");
        let top = dir.path().join(".sluice");
        let store = RunStore::new(&top);
        store.create(&record("r1")).expect("create");
        let ignore = std::fs::read_to_string(top.join(".gitignore")).expect(".gitignore");
        assert!(ignore.lines().any(|l| l == "*"), "{ignore}");
        // A file the user wrote is kept as it is.
        std::fs::write(top.join(".gitignore"), "runs/\n").expect("write");
        store.create(&record("r2")).expect("create");
        assert_eq!(
            std::fs::read_to_string(top.join(".gitignore")).expect("read"),
            "runs/\n"
        );
    }

    #[test]
    fn lock_is_exclusive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RunStore::new(dir.path());
        store.create(&record("r1")).expect("create");
        let lock = store.lock("r1").expect("lock");
        assert!(matches!(store.lock("r1"), Err(RecordError::Busy(_))));
        assert!(store.is_locked("r1"));
        drop(lock);
        assert!(!store.is_locked("r1"));
    }

    #[test]
    fn corrupt_record_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RunStore::new(dir.path());
        store.create(&record("r1")).expect("create");
        std::fs::write(store.run_dir("r1").join("run.json"), b"{").expect("write");
        let err = store.load("r1").expect_err("corrupt");
        assert!(err.to_string().contains("not a valid run record"), "{err}");
    }

    #[test]
    fn records_from_before_the_fleet_still_load_and_local_runs_write_no_fleet_fields() {
        let mut rec = record("r-old");
        let json = serde_json::to_value(&rec).expect("json");
        // A record written before agents existed has none of these keys.
        assert!(json.get("fleet_epoch").is_none(), "{json}");
        let stage = &json["stages"]["a"];
        assert!(
            stage.get("agent").is_none() && stage.get("lost").is_none(),
            "{stage}"
        );
        let back: RunRecord = serde_json::from_value(json).expect("old record loads");
        assert_eq!(back.fleet_epoch, 0);
        assert_eq!(back.stages["a"].agent, None);
        assert!(back.stages["a"].lost.is_empty());

        rec.fleet_epoch = 2;
        let a = rec.stages.get_mut("a").expect("stage");
        a.agent = Some("a2".into());
        a.lost.push(LostExecution {
            agent: "a1".into(),
            at: "2026-12-07T10:00:00Z".into(),
        });
        let back: RunRecord =
            serde_json::from_str(&serde_json::to_string(&rec).expect("json")).expect("load");
        assert_eq!(back, rec);
        assert_eq!(back.view([&"a".to_owned()]).fleet_epoch, 2);
    }

    #[test]
    fn plugin_records_without_a_registry_origin_still_load() {
        // A record written before plugins came from registries.
        let old = r#"{"reference":"plugins/a.wasm","digest":"sha256:00","policy_rules":["r"]}"#;
        let plugin: PluginRecord = serde_json::from_str(old).expect("old record");
        assert_eq!(plugin.oci, None);
        assert!(!serde_json::to_string(&plugin)
            .expect("json")
            .contains("oci"));
        let mut pulled = plugin.clone();
        pulled.oci = Some(OciPluginRecord {
            reference: "oci://127.0.0.1:5000/sluice/lint:1.0".into(),
            manifest: format!("sha256:{}", "ab".repeat(32)),
        });
        let json = serde_json::to_string(&pulled).expect("json");
        let back: PluginRecord = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, pulled);
        assert_eq!(
            back.oci.map(|o| o.pinned()),
            Some(format!(
                "oci://127.0.0.1:5000/sluice/lint:1.0@sha256:{}",
                "ab".repeat(32)
            ))
        );
        let already = OciPluginRecord {
            reference: format!("oci://r/x:1@sha256:{}", "cd".repeat(32)),
            manifest: format!("sha256:{}", "cd".repeat(32)),
        };
        assert_eq!(already.pinned(), already.reference);
    }

    #[test]
    fn run_ids_sort_by_time() {
        let id = new_run_id();
        assert_eq!(id.len(), "20261122-003012-abcdef".len(), "{id}");
    }

    impl RunRecord {
        fn clone_with_times(&self, other: &RunRecord) -> RunRecord {
            let mut r = self.clone();
            r.created_at = other.created_at.clone();
            r.updated_at = other.updated_at.clone();
            r
        }
    }
}
