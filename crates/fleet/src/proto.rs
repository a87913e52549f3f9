//! The wire protocol between a coordinator (`sluice run`) and its agents,
//! the same over NATS and over the unix socket: serde JSON.
//!
//! Nothing here uses `deny_unknown_fields`: an older agent must read a newer
//! coordinator's job (and the other way round) as long as [`PROTOCOL`] is
//! the same. No message ever carries the *value* of a secret or an
//! environment variable: the [`StageJob`] names them and the agent looks
//! them up in its own configuration.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use sluice_engine::executor::{StageJob, StageOutcome};
use sluice_engine::report::LogLevel;
use sluice_types::{LabelSet, StageName};

/// The protocol version. A peer speaking another one is refused with a
/// message saying which side to upgrade.
pub const PROTOCOL: u32 = 1;

/// One attempt of one stage, as dispatched:
/// `<run_id>.<epoch>.<stage>.<attempt>`.
///
/// Used as the `Nats-Msg-Id` of the job and of its outcome (so JetStream's
/// duplicate window drops a second copy), as the key of its cancel flag,
/// as the tail of its subjects and as the multiplexing key on the unix
/// socket. Every part is a single NATS subject token (no `.`, `*`, `>` or
/// space) and a valid KV key.
///
/// ```
/// use sluice_fleet::proto::JobId;
///
/// let id = JobId::new("20261207-101943-5b3f59", 2, "build", 1).unwrap();
/// assert_eq!(id.to_string(), "20261207-101943-5b3f59.2.build.1");
/// assert_eq!(id.to_string().parse::<JobId>().unwrap(), id);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId {
    /// The run's id.
    pub run_id: String,
    /// The dispatch epoch of the run (incremented on each start or resume
    /// with a remote executor), so a resumed run never picks up an old
    /// attempt's outcome under a new attempt.
    pub epoch: u64,
    /// The stage's key in `stages:`.
    pub stage: String,
    /// The attempt, 1 first.
    pub attempt: u32,
}

/// A text that is not a [`JobId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a job id ({why}); a job id is `<run id>.<epoch>.<stage>.<attempt>`")]
pub struct JobIdError {
    /// The text.
    pub value: String,
    /// What is wrong.
    pub why: String,
}

/// `[A-Za-z0-9_-]+`: safe as a subject token and a KV key part.
fn is_run_id(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl JobId {
    /// A job id; fails when the run id or the stage would not be a single
    /// subject token.
    pub fn new(
        run_id: impl Into<String>,
        epoch: u64,
        stage: impl Into<String>,
        attempt: u32,
    ) -> Result<JobId, JobIdError> {
        let (run_id, stage) = (run_id.into(), stage.into());
        let value = || format!("{run_id}.{epoch}.{stage}.{attempt}");
        if !is_run_id(&run_id) {
            return Err(JobIdError {
                value: value(),
                why: format!("run id `{run_id}` may only hold letters, digits, `-` and `_`"),
            });
        }
        if let Err(e) = StageName::new(stage.as_str()) {
            return Err(JobIdError {
                value: value(),
                why: e.to_string(),
            });
        }
        Ok(JobId {
            run_id,
            epoch,
            stage,
            attempt,
        })
    }

    /// The id of `job` under dispatch epoch `epoch`.
    pub fn of(job: &StageJob, epoch: u64) -> Result<JobId, JobIdError> {
        JobId::new(job.run_id.clone(), epoch, job.stage.clone(), job.attempt)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.run_id, self.epoch, self.stage, self.attempt
        )
    }
}

impl FromStr for JobId {
    type Err = JobIdError;

    fn from_str(text: &str) -> Result<JobId, JobIdError> {
        let error = |why: &str| JobIdError {
            value: text.to_owned(),
            why: why.to_owned(),
        };
        let parts: Vec<&str> = text.split('.').collect();
        let [run_id, epoch, stage, attempt] = parts[..] else {
            return Err(error("it does not have four `.`-separated parts"));
        };
        let epoch = epoch
            .parse::<u64>()
            .map_err(|_| error("the epoch is not a number"))?;
        let attempt = attempt
            .parse::<u32>()
            .map_err(|_| error("the attempt is not a number"))?;
        JobId::new(run_id, epoch, stage, attempt)
    }
}

impl Serialize for JobId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<JobId, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A job on the wire. No secret or env *values*, ever (the [`StageJob`]
/// names them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEnvelope {
    /// [`PROTOCOL`] of the coordinator that sent it.
    pub protocol: u32,
    /// The job's id.
    pub id: JobId,
    /// The attempt, as the engine resolved it.
    pub job: StageJob,
    /// The labels an agent needs to take it (`runs-on:`).
    #[serde(default)]
    pub runs_on: LabelSet,
    /// The component and its sidecars, by digest in the blob store.
    pub plugin: PluginBlobs,
    /// Where the workspace comes from.
    #[serde(default)]
    pub workspace: WorkspaceSource,
    /// Who sent it (`host:pid` of the coordinator), for logs and
    /// `sluice agents list`.
    pub coordinator: String,
}

/// A blob in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    /// `sha256:<64 lowercase hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// The plugin a job runs and its sidecars, by digest in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginBlobs {
    /// `sha256:<hex>` of the component (the same as `job.plugin.digest`).
    pub digest: String,
    /// Its Sigstore bundle (`.sigstore.json`), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// Its attestations sidecar, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestations: Option<String>,
    /// The component's path on the coordinator's machine. Set only over
    /// the unix socket, where the agent reads the file itself (and still
    /// checks its digest); NATS agents fetch it by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// Where the stage's workspace comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum WorkspaceSource {
    /// The stage has no workspace grant.
    #[default]
    None,
    /// The workspace is at this path on the agent's machine too (the unix
    /// socket's agent, or agents configured `workspace: shared`).
    SharedPath {
        /// The workspace directory.
        path: PathBuf,
    },
    /// A manifest of the workspace's files in the blob store.
    Snapshot {
        /// Digest of the manifest blob.
        manifest: String,
    },
}

/// What an agent tells the coordinator about a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
// `Finished` is big, but there is one per job against many log lines that
// are moved once each: boxing it would cost every user a `Box::new` for
// nothing measurable.
#[allow(clippy::large_enum_variant)]
pub enum AgentEvent {
    /// An execution of the job began on an agent. A second `Started` with
    /// another `execution` means the first execution was lost (its agent
    /// died or stalled past the ack wait) and the job was redelivered.
    Started {
        /// The job.
        id: JobId,
        /// The agent's name.
        agent: String,
        /// A fresh id per execution (a NUID).
        execution: String,
        /// How often the transport has delivered the job, as it says (not
        /// reliable across a NATS crash: never an attempt number).
        delivery: u64,
    },
    /// A line of the stage's log (live; at most once over NATS).
    Log {
        /// The job.
        id: JobId,
        /// The line, redacted by the agent.
        line: String,
        /// Its level, when the stage logged through WIT 0.2's `log`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        level: Option<LogLevel>,
        /// Structured fields of the record.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<(String, String)>,
    },
    /// The stage's progress.
    Progress {
        /// The job.
        id: JobId,
        /// Units done.
        done: u64,
        /// Units in all, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
        /// What it is doing.
        message: String,
    },
    /// The job's outcome (durable before the job is acknowledged).
    Finished(OutcomeEnvelope),
    /// The transport gave up delivering the job (NATS: the consumer's
    /// `max_deliver` was reached). Never sent by an agent: the NATS
    /// dispatch synthesises it from JetStream's `MAX_DELIVERIES` advisory.
    Exhausted {
        /// The job.
        id: JobId,
        /// Deliveries made.
        deliveries: u64,
    },
}

impl AgentEvent {
    /// The job the event is about.
    pub fn id(&self) -> &JobId {
        match self {
            AgentEvent::Started { id, .. }
            | AgentEvent::Log { id, .. }
            | AgentEvent::Progress { id, .. }
            | AgentEvent::Exhausted { id, .. } => id,
            AgentEvent::Finished(outcome) => &outcome.id,
        }
    }
}

/// The one outcome of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeEnvelope {
    /// [`PROTOCOL`] of the agent.
    pub protocol: u32,
    /// The job.
    pub id: JobId,
    /// The agent that ran it.
    pub agent: String,
    /// The execution that produced it (its `Started`'s `execution`).
    pub execution: String,
    /// What the attempt came to; artifacts by digest.
    pub outcome: StageOutcome,
    /// The agent's complete, redacted stage log, in the blob store (none
    /// over the unix socket, where the agent writes the coordinator's log
    /// file directly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<BlobRef>,
    /// What a `workspace: write` stage changed, for snapshot workspaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_delta: Option<BlobRef>,
}

/// What an agent publishes about itself every few seconds (NATS KV
/// `<namespace>-agents`, key = its name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The agent's name.
    pub name: String,
    /// The sluice version it runs.
    pub version: String,
    /// Its labels.
    pub labels: LabelSet,
    /// How many jobs it runs at once.
    pub slots: u32,
    /// The jobs it runs now.
    #[serde(default)]
    pub running: Vec<JobId>,
    /// The secrets it holds, by name only.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Its host name.
    pub host: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Whether it sees workspaces at the coordinator's path
    /// (`workspace: shared`).
    #[serde(default)]
    pub shared_workspace: bool,
    /// Whether it runs unsigned plugins (development only; shown as a
    /// warning).
    #[serde(default)]
    pub allow_unsigned: bool,
}

/// What a plugin says about itself (`describe`), as data: the unix-socket
/// agent describes plugins for its coordinator, which then needs no
/// wasmtime at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginDescription {
    /// Short name, for example `lint`.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// The stage kind, as the record writes it.
    pub kind: String,
    /// The WIT version it targets (`0.2.0`).
    pub wit: String,
    /// One sentence on what it does.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of its `with:`, if it publishes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_schema: Option<String>,
    /// Capabilities it declares, kebab-case (`workspace-read`, `network` …).
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// One frame on the unix socket between `sluice run --agent unix:PATH` and
/// `sluice agent --listen unix:PATH` (length-delimited, u32 big-endian
/// length, at most [`MAX_FRAME`] bytes, one JSON `Frame` each). One
/// connection per run; jobs are multiplexed by [`JobId`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "frame")]
pub enum Frame {
    /// Coordinator → agent, first frame.
    Hello {
        /// The coordinator's [`PROTOCOL`].
        protocol: u32,
        /// `host:pid` of the coordinator.
        coordinator: String,
        /// The coordinator's CAS directory (shared with the agent).
        cas: PathBuf,
        /// The run's directory (logs are written there directly).
        run_dir: PathBuf,
    },
    /// Agent → coordinator, the answer to `Hello`.
    Welcome {
        /// The agent's [`PROTOCOL`].
        protocol: u32,
        /// The agent's name.
        agent: String,
        /// The sluice version it runs.
        version: String,
        /// Its labels.
        labels: LabelSet,
    },
    /// Agent → coordinator, instead of `Welcome` or at any time: the
    /// connection is refused (another uid, another protocol) and closed.
    Refused {
        /// Why, in words for the user.
        message: String,
    },
    /// Coordinator → agent: describe this plugin.
    Describe {
        /// `sha256:<hex>` the coordinator computed.
        digest: String,
        /// The component file.
        path: PathBuf,
    },
    /// Agent → coordinator, the answer to `Describe`.
    Described {
        /// The plugin asked about.
        digest: String,
        /// Its description, or why there is none (refused by the agent's
        /// policy, not a component, digest mismatch …).
        result: Result<PluginDescription, String>,
    },
    /// Coordinator → agent: run a job.
    Job(Box<JobEnvelope>),
    /// Coordinator → agent: cancel a job.
    Cancel {
        /// The job.
        id: JobId,
        /// Why (shown in the stage's log).
        reason: String,
    },
    /// Agent → coordinator: something about a job.
    Event(Box<AgentEvent>),
}

/// The largest unix-socket frame.
pub const MAX_FRAME: usize = 16 << 20;

/// A job message over NATS: the envelope inline, or (over
/// [`MAX_INLINE_JOB`]) a reference to it in the blob store, because the
/// server refuses messages over its max payload (1 MiB by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "body")]
pub enum JobBody {
    /// The job itself.
    Inline(Box<JobEnvelope>),
    /// The job's JSON is this blob.
    Blob(BlobRef),
}

/// The largest job JSON sent inline over NATS.
pub const MAX_INLINE_JOB: usize = 900 << 10;

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_engine::executor::{JobGrants, JobPlugin, LogReport, StageFailure};
    use sluice_pipeline::WorkspaceAccess;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn job() -> StageJob {
        StageJob {
            run_id: "20261207-101943-5b3f59".into(),
            pipeline: "shop.api".into(),
            stage: "build".into(),
            attempt: 2,
            environment: None,
            plugin: JobPlugin {
                reference: "plugins/build.wasm".into(),
                digest: format!("sha256:{}", "a".repeat(64)),
            },
            config: serde_json::json!({ "x": 1 }),
            workspace: "/w".into(),
            grants: JobGrants {
                workspace: WorkspaceAccess::Read,
                env: vec!["CI".into()],
                network: vec![],
                exec: vec![],
                secrets: vec!["NPM_TOKEN".into()],
                tls_ca: vec![],
                memory: 1 << 20,
                output: 1 << 20,
                artifacts: 1 << 20,
            },
            inputs: vec![],
            upstream: vec![],
            timeout: std::time::Duration::from_secs(60),
            grace_period: std::time::Duration::from_secs(5),
            log: "logs/build.log".into(),
        }
    }

    fn envelope() -> Result<JobEnvelope, Box<dyn std::error::Error>> {
        let job = job();
        Ok(JobEnvelope {
            protocol: PROTOCOL,
            id: JobId::of(&job, 3)?,
            plugin: PluginBlobs {
                digest: job.plugin.digest.clone(),
                bundle: None,
                attestations: None,
                path: None,
            },
            job,
            runs_on: "os=linux".parse()?,
            workspace: WorkspaceSource::SharedPath { path: "/w".into() },
            coordinator: "host:1".into(),
        })
    }

    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug>(
        v: &T,
    ) -> TestResult {
        let json = serde_json::to_string(v)?;
        let back: T = serde_json::from_str(&json)?;
        assert_eq!(&back, v, "{json}");
        Ok(())
    }

    #[test]
    fn messages_round_trip() -> TestResult {
        let env = envelope()?;
        round_trip(&env)?;
        round_trip(&JobBody::Inline(Box::new(env.clone())))?;
        round_trip(&JobBody::Blob(BlobRef {
            digest: format!("sha256:{}", "b".repeat(64)),
            size: 3,
        }))?;
        let outcome = OutcomeEnvelope {
            protocol: PROTOCOL,
            id: env.id.clone(),
            agent: "a1".into(),
            execution: "nuid".into(),
            outcome: StageOutcome {
                result: Err(StageFailure::Cancelled { in_grace: true }),
                log: LogReport::default(),
                agent: Some("a1".into()),
                lost: vec![],
            },
            log: None,
            workspace_delta: None,
        };
        for e in [
            AgentEvent::Started {
                id: env.id.clone(),
                agent: "a1".into(),
                execution: "x".into(),
                delivery: 1,
            },
            AgentEvent::Log {
                id: env.id.clone(),
                line: "hi".into(),
                level: Some(LogLevel::Warn),
                fields: vec![("k".into(), "v".into())],
            },
            AgentEvent::Progress {
                id: env.id.clone(),
                done: 1,
                total: None,
                message: "m".into(),
            },
            AgentEvent::Finished(outcome.clone()),
            AgentEvent::Exhausted {
                id: env.id.clone(),
                deliveries: 20,
            },
        ] {
            assert_eq!(e.id(), &env.id);
            round_trip(&e)?;
            round_trip(&Frame::Event(Box::new(e)))?;
        }
        for f in [
            Frame::Hello {
                protocol: 1,
                coordinator: "h:1".into(),
                cas: "/c".into(),
                run_dir: "/r".into(),
            },
            Frame::Welcome {
                protocol: 1,
                agent: "a".into(),
                version: "0.1.0".into(),
                labels: LabelSet::any(),
            },
            Frame::Refused {
                message: "no".into(),
            },
            Frame::Describe {
                digest: "sha256:x".into(),
                path: "/p".into(),
            },
            Frame::Described {
                digest: "sha256:x".into(),
                result: Err("refused".into()),
            },
            Frame::Job(Box::new(env.clone())),
            Frame::Cancel {
                id: env.id.clone(),
                reason: "fail-fast".into(),
            },
        ] {
            round_trip(&f)?;
        }
        round_trip(&Heartbeat {
            name: "a1".into(),
            version: "0.1.0".into(),
            labels: "os=linux".parse()?,
            slots: 2,
            running: vec![env.id.clone()],
            secrets: vec!["NPM_TOKEN".into()],
            host: "h".into(),
            started_at: "2026-12-07T10:00:00Z".into(),
            shared_workspace: true,
            allow_unsigned: false,
        })?;
        Ok(())
    }

    #[test]
    fn unknown_fields_are_tolerated_and_defaults_filled() -> TestResult {
        let mut v = serde_json::to_value(envelope()?)?;
        v["from_the_future"] = serde_json::json!(true);
        if let Some(fields) = v.as_object_mut() {
            fields.remove("runs_on");
            fields.remove("workspace");
        }
        let back: JobEnvelope = serde_json::from_value(v)?;
        assert_eq!(back.runs_on, LabelSet::any());
        assert_eq!(back.workspace, WorkspaceSource::None);
        Ok(())
    }

    #[test]
    fn job_ids_refuse_subject_characters() {
        assert!(JobId::new("run.1", 0, "build", 1).is_err());
        assert!(JobId::new("run*", 0, "build", 1).is_err());
        assert!(JobId::new("run", 0, "Build", 1).is_err());
        assert!(JobId::new("", 0, "build", 1).is_err());
        for bad in ["a.1.b", "a.x.b.1", "a.1.b.x", "a.1.b.1.2", "a.1.B.1"] {
            let e = bad.parse::<JobId>().err();
            assert!(e.as_ref().is_some_and(|e| e.value == bad), "{bad}");
            assert!(
                e.is_some_and(|e| e.to_string().contains("<run id>.<epoch>")),
                "{bad}"
            );
        }
        let e = serde_json::from_str::<JobId>("\"a.b\"").err();
        assert!(e.is_some_and(|e| e.to_string().contains("not a job id")));
    }
}
