//! The executor port: one attempt of one stage, as data.
//!
//! The [orchestrator](crate::orchestrator) resolves everything an attempt
//! needs into a [`StageJob`] (plugin digest, expanded config, grants by
//! name, input artifacts by digest, upstream outputs, limits) and hands it
//! to an [`Executor`], which runs it and answers with a [`StageOutcome`]
//! (the plugin's report with its artifacts already in the CAS, the log's
//! statistics, or a typed [`StageFailure`]). Gates, provenance and the run
//! record stay with the orchestrator.
//!
//! A job and an outcome are plain data and go through serde unchanged, so
//! that an executor elsewhere can receive a job over the wire. Neither ever
//! carries the *value* of an environment variable or a secret: the job
//! names what is granted, and the executor resolves the values through the
//! [`EnvSource`] and [`SecretSource`] it was built with. Only the CLI
//! constructs [`ProcessEnv`], the source that reads the runner's own
//! environment.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use sluice_pipeline::gates::PluginGate;
use sluice_pipeline::WorkspaceAccess;
use sluice_record::artifacts::ArtifactRecord;
/// One lost execution of an attempt (see [`StageOutcome::lost`]): the
/// record's type, so the orchestrator copies it as it is.
pub use sluice_record::LostExecution;
use sluice_record::MetricRecord;
use sluice_types::NetPattern;

/// Output names starting with this are the runner's (`sluice.state`,
/// `sluice.reason` …, see the orchestrator); a plugin may not report them.
pub const RESERVED_OUTPUT_PREFIX: &str = "sluice.";

/// Everything one attempt of one stage needs, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageJob {
    /// The run's id.
    pub run_id: String,
    /// The pipeline's `name`.
    pub pipeline: String,
    /// The stage's key in `stages:`.
    pub stage: String,
    /// 1 on the first attempt, 2 on the first retry, and so on.
    pub attempt: u32,
    /// The stage's `environment:`.
    pub environment: Option<String>,
    /// The plugin to run.
    pub plugin: JobPlugin,
    /// `with:` with its templates expanded (and checked against the
    /// plugin's config schema, when it publishes one).
    pub config: serde_json::Value,
    /// The pipeline's workspace directory (mounted per
    /// [`JobGrants::workspace`]).
    pub workspace: PathBuf,
    /// What the stage may do.
    pub grants: JobGrants,
    /// Artifacts of the stages this one `needs`, in pipeline order.
    pub inputs: Vec<JobInput>,
    /// Outputs of the stages this one `needs`, with the runner's
    /// `sluice.*` facts about each.
    pub upstream: Vec<UpstreamOutput>,
    /// Wall-clock limit of the attempt.
    pub timeout: Duration,
    /// How long the attempt may run on once cancelled (or at its
    /// timeout) before it is dropped; see the WIT's `cancel` interface.
    #[serde(default)]
    pub grace_period: Duration,
    /// The stage's log, relative to the run directory (`logs/<stage>.log`).
    pub log: String,
}

/// The plugin a job runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPlugin {
    /// `uses:` as resolved.
    pub reference: String,
    /// `sha256:<hex>` of the component: what the executor runs.
    pub digest: String,
}

/// The effective grants of a stage. Names only: the executor looks the
/// values of `env` and `secrets` up itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobGrants {
    /// Access to the workspace.
    pub workspace: WorkspaceAccess,
    /// Environment variables the stage may read, by name.
    pub env: Vec<String>,
    /// `host:port` patterns the stage may connect to (serialised as their
    /// text, `api.example.com:443`).
    pub network: Vec<NetPattern>,
    /// Host programs the stage may run through `exec`.
    pub exec: Vec<String>,
    /// Secrets the stage may read, by name.
    pub secrets: Vec<String>,
    /// Extra TLS roots for the stage's HTTPS connections (`grants.tls-ca`),
    /// with the digest each file had at load time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_ca: Vec<sluice_pipeline::TlsCa>,
    /// Linear memory limit, in bytes.
    pub memory: u64,
    /// Cap on the stage's log output (and on each captured `exec` stream),
    /// in bytes.
    pub output: u64,
    /// Cap on the total size of the artifacts the attempt leaves, in bytes.
    pub artifacts: u64,
}

/// One input artifact: who produced it and where it is in the CAS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInput {
    /// The stage that produced it.
    pub stage: String,
    /// Its name, digest, size and media type.
    #[serde(flatten)]
    pub artifact: ArtifactRecord,
}

/// One output of an upstream stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamOutput {
    /// The stage that reported it.
    pub stage: String,
    /// The output's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageOutcome {
    /// The plugin's report (checked against the report limits and
    /// redacted), or why there is none.
    pub result: Result<StageReport, StageFailure>,
    /// The attempt's log.
    pub log: LogReport,
    /// The agent that ran the attempt, when a remote executor ran it
    /// (absent for a local run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Executions of this attempt that were lost on the way (an agent died
    /// or stopped answering and the job went to another agent); they do
    /// not count against `retries:`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<LostExecution>,
}

impl StageOutcome {
    /// An outcome of a local run: no agent, nothing lost.
    pub fn local(result: Result<StageReport, StageFailure>, log: LogReport) -> StageOutcome {
        StageOutcome {
            result,
            log,
            agent: None,
            lost: Vec::new(),
        }
    }
}

/// A plugin's report, as plain data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// Short markdown summary.
    pub summary: String,
    /// Measured values.
    pub metrics: Vec<MetricRecord>,
    /// The plugin's own gates.
    pub gates: Vec<PluginGate>,
    /// Named values for later stages, in the order reported.
    pub outputs: Vec<(String, String)>,
    /// What the stage left in `/artifacts/out`, already in the CAS.
    pub artifacts: Vec<ArtifactRecord>,
}

/// Where an attempt's log went and what happened to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogReport {
    /// The log, relative to the run directory (the job's `log`).
    pub path: String,
    /// What was written.
    pub stats: LogStats,
}

/// What happened to a stage's output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStats {
    /// Bytes the stage wrote to stdout and stderr, including dropped ones.
    pub bytes_seen: u64,
    /// Bytes that reached the log file: redacted output, runner notes and
    /// the truncation marker.
    pub bytes_written: u64,
    /// True if the output cap was reached and later output dropped.
    pub truncated: bool,
    /// The first error writing or syncing the log file, if any. After one,
    /// nothing more is written to the file (output is still counted).
    pub io_error: Option<String>,
}

/// A boxed future of an [`Executor`].
pub type OutcomeFuture<'a> = Pin<Box<dyn Future<Output = StageOutcome> + Send + 'a>>;

/// Runs stage jobs. The local executor (`sluice_host::stage_exec`) runs
/// them in a wasmtime sandbox in this process.
pub trait Executor: Send + Sync {
    /// Run one attempt: lay out its directories, materialize its inputs
    /// from the CAS (checking their digests), run the plugin, check its
    /// report and move its outputs into the CAS. Failures are in the
    /// outcome, never a panic. The executor writes the stage's output and
    /// its own notes to the job's log, including a last note saying why
    /// the attempt failed when it did.
    ///
    /// When `cancel` fires, the executor tells the stage (WIT 0.2's
    /// `cancel` interface), lets it run for the job's grace period at most,
    /// then drops it, and answers [`StageFailure::Cancelled`]. A stage
    /// that cannot be told (WIT 0.1) is dropped at once.
    fn run(&self, job: StageJob, cancel: CancellationToken) -> OutcomeFuture<'_>;

    /// Add a runner note (`[sluice] <message>`) to the log `log` (relative
    /// to the run directory) of `stage`, redacted and shown live like the
    /// stage's output: the orchestrator says this way why an attempt failed
    /// when the failure is its own (a `with:` that does not expand, a
    /// provenance statement that cannot be written).
    fn note(&self, stage: &str, log: &str, message: &str);
}

/// Where the values of granted secrets come from.
pub trait SecretSource: Send + Sync {
    /// The value of secret `name`, if the runner has one.
    fn secret(&self, name: &str) -> Option<String>;
}

/// Where the values of environment variables come from: granted `env`,
/// `${{ env.NAME }}` templates, and `PATH`/`HOME` of programs run through
/// `exec`.
pub trait EnvSource: Send + Sync {
    /// The value of variable `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The runner's own process environment: a secret `NPM_TOKEN` is the
/// variable `NPM_TOKEN`. Only the CLI constructs it; everything else gets
/// its values injected.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl SecretSource for ProcessEnv {
    fn secret(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Fixed values (tests, or values shipped with a remote job's executor).
impl SecretSource for BTreeMap<String, String> {
    fn secret(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl EnvSource for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Why an attempt produced no usable report. The messages are what users
/// read as the stage's reason (redacted and bounded by the orchestrator).
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageFailure {
    /// `with:` is wrong.
    #[error("invalid config: {message}")]
    InvalidConfig {
        /// Who found it wrong.
        origin: ConfigOrigin,
        /// What is wrong.
        message: String,
    },
    /// The stage lacked a capability (reported by the stage or the sandbox).
    #[error("denied: {message}{}", then_failed_suffix(.then_failed))]
    Denied {
        /// What was refused.
        message: String,
        /// When the sandbox refused a call and the stage then failed or
        /// trapped: what it then said.
        then_failed: Option<String>,
    },
    /// The stage reported failure (`stage-error::failed`).
    #[error("failed: {message}")]
    Failed {
        /// The plugin's message.
        message: String,
    },
    /// The guest called `exit` instead of returning from `run`.
    #[error("failed: {}", exit_reason(*.code))]
    Exit {
        /// The exit code.
        code: i32,
    },
    /// The runner refused what the plugin returned: a report over a limit
    /// or against the WIT's rules, or an artifact with a reserved or
    /// unprintable name.
    #[error("failed: {message}")]
    Rejected {
        /// Which rule, and how to comply.
        message: String,
    },
    /// An input artifact could not be handed to the stage (missing or
    /// damaged in the CAS).
    #[error("failed: input artifacts of `{stage}`: {message}")]
    Inputs {
        /// The producer.
        stage: String,
        /// What is wrong.
        message: String,
    },
    /// The stage's outputs could not be stored (over the cap, a declared
    /// file missing, a special file …).
    #[error("failed: collecting artifacts: {message}")]
    Outputs {
        /// What is wrong.
        message: String,
    },
    /// The guest trapped.
    #[error("trapped: {message}")]
    Trap {
        /// The trap, by wasmtime's trap code.
        kind: TrapKind,
        /// What to tell the user.
        message: String,
    },
    /// The attempt was cancelled (fail-fast, an interrupt) while it ran.
    #[error("cancelled{}", if *.in_grace { " (it ended within its grace period)" } else { " (dropped at the end of its grace period)" })]
    Cancelled {
        /// Whether the stage returned by itself within its grace period.
        in_grace: bool,
    },
    /// The attempt ran past its timeout.
    #[error(
        "timed out after {}; raise the stage's `timeout:` if it needs longer",
        humantime::format_duration(Duration::from_millis(.after.as_millis() as u64))
    )]
    Timeout {
        /// The timeout.
        after: Duration,
    },
    /// `describe` ran past its fixed limit.
    #[error(
        "`describe` did not answer within {}s (a fixed limit: `describe` must only return the plugin's metadata, without doing work)",
        .after.as_secs()
    )]
    DescribeTimeout {
        /// The limit.
        after: Duration,
    },
    /// The guest tried to use more memory than granted.
    #[error(
        "memory limit exceeded: the stage asked for {} but grants.memory is {}; raise grants.memory if it really needs more",
        bytesize::ByteSize(*.asked),
        bytesize::ByteSize(*.limit)
    )]
    MemoryLimit {
        /// The grant.
        limit: u64,
        /// What it asked for.
        asked: u64,
    },
    /// The guest held as many handles as it may (open files, streams …).
    #[error(
        "the stage held {limit} handles (open files, directories, streams) at once, the most a stage may; close what it no longer needs"
    )]
    TooManyHandles {
        /// The limit.
        limit: usize,
    },
    /// The engine's instance pool was exhausted.
    #[error(
        "sandbox setup failed: {message} (too many stages at once for the instance pool; lower --jobs)"
    )]
    InstancePool {
        /// wasmtime's message.
        message: String,
    },
    /// The runner could not set up the attempt.
    #[error("sandbox setup failed: {message}")]
    Setup {
        /// What failed.
        message: String,
    },
    /// The agent that received the job refused to run it: its own
    /// operator policy did not admit the plugin, a grant is over its
    /// ceiling, or it holds no value for a granted secret. A trust
    /// refusal: the run exits 3.
    #[error(
        "refused by agent `{agent}`: {}; the agent decides by its own operator policy and grant ceiling (its config's `policy:` and `accept:`): sign the plugin with a key that policy trusts, lower the stage's grants, or send the stage to another agent with `runs-on:`",
        .reasons.join("; ")
    )]
    Refused {
        /// The agent's name.
        agent: String,
        /// Why, one entry per rule or grant that refused.
        reasons: Vec<String>,
    },
    /// Every agent that took the job died or stopped answering before it
    /// reported (the job was delivered again each time), too often to
    /// keep trying.
    #[error(
        "lost: {executions} agents took the job and stopped answering before they reported (killed, out of memory, or cut off from NATS); look at those agents' logs — a stage that kills its agent every time is a bug to fix, not bad luck"
    )]
    Lost {
        /// How many executions were lost.
        executions: u32,
    },
    /// No agent that can serve the stage's `runs-on:` labels took the job
    /// within the queue timeout.
    #[error(
        "no agent with the labels `{labels}` took the job; live agents: {}; start an agent with these labels or change the stage's `runs-on:`",
        live_agents_text(.live_agents)
    )]
    NoAgent {
        /// The labels the stage requires (`runs-on:`; prints as
        /// `net=egress,os=linux`, or `any`).
        labels: sluice_types::LabelSet,
        /// The agents alive when it gave up, each as `name [labels]`.
        live_agents: Vec<String>,
    },
    /// The runner could not write the provenance of what the stage
    /// published. (The text keeps the words it had before provenance had a
    /// failure of its own.)
    #[error("sandbox setup failed: {0}")]
    Provenance(ProvenanceFailure),
}

/// Who found a stage's `with:` wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigOrigin {
    /// A `${{ }}` template could not be expanded.
    Template,
    /// The plugin's config schema refused it.
    Schema,
    /// The plugin refused it (`stage-error::invalid-config`).
    Plugin,
}

/// A wasm trap, by its code (wasmtime's `Trap`), not its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrapKind {
    /// `unreachable` executed, with no panic message seen.
    Unreachable,
    /// The guest panicked (`unreachable` after a panic message on its
    /// output; the message is the reason).
    Panic,
    /// The wasm stack was exhausted.
    StackOverflow,
    /// A load or store outside linear memory.
    MemoryOutOfBounds,
    /// An access outside a table.
    TableOutOfBounds,
    /// An indirect call to a null table entry.
    IndirectCallToNull,
    /// An indirect call with the wrong signature.
    BadSignature,
    /// Integer overflow.
    IntegerOverflow,
    /// Integer division by zero.
    IntegerDivisionByZero,
    /// A float that does not convert to an integer.
    BadConversionToInteger,
    /// Another trap code.
    Other,
    /// Not a trap: a call failed with a host error.
    Host,
}

/// Why the provenance of a stage's artifacts was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProvenanceFailure {
    /// Writing the statement (or the bundle) to disk failed.
    #[error("writing provenance: {0}")]
    Write(String),
    /// Signing the statement failed.
    #[error("signing provenance: {0}")]
    Sign(String),
    /// Storing the statement in the CAS failed.
    #[error("storing provenance: {0}")]
    Store(String),
    /// The statement would carry a secret's value (one whose JSON escaping
    /// differs from its raw bytes).
    #[error("the provenance statement would contain the value of a secret; it was not written")]
    WouldLeakSecret,
}

/// The end of [`StageFailure::Denied`]'s message.
fn then_failed_suffix(then_failed: &Option<String>) -> String {
    then_failed
        .as_deref()
        .map(|m| format!(" (the stage then failed: {m})"))
        .unwrap_or_default()
}

/// The live agents in [`StageFailure::NoAgent`]'s message.
fn live_agents_text(agents: &[String]) -> String {
    if agents.is_empty() {
        "none".to_string()
    } else {
        agents.join(", ")
    }
}

/// What [`StageFailure::Exit`] says.
pub fn exit_reason(code: i32) -> String {
    format!(
        "the plugin called exit({code}) instead of returning from `run`; a stage must return a report or an error"
    )
}

impl StageFailure {
    /// Whether `retries:` applies (config, permission and setup problems
    /// never change by trying again).
    pub fn retryable(&self) -> bool {
        !matches!(
            self,
            StageFailure::InvalidConfig { .. }
                | StageFailure::Denied { .. }
                | StageFailure::Setup { .. }
                | StageFailure::InstancePool { .. }
                | StageFailure::Provenance(_)
                | StageFailure::Cancelled { .. }
                | StageFailure::Refused { .. }
                | StageFailure::Lost { .. }
                | StageFailure::NoAgent { .. }
        )
    }

    /// Whether this is a trust refusal (the run exits 3 for it).
    pub fn is_refusal(&self) -> bool {
        matches!(self, StageFailure::Refused { .. })
    }

    /// The runner's last note in the stage log: `stage failed: 3 tests
    /// failed`, `stage timed out after 10m …`, `stage denied: …` — the
    /// failure's own text after `stage`, without a doubled `failed:`.
    pub fn log_note(&self) -> String {
        match self {
            StageFailure::Failed { message } | StageFailure::Rejected { message } => {
                format!("stage failed: {message}")
            }
            StageFailure::InvalidConfig { .. } | StageFailure::Setup { .. } => {
                format!("stage failed: {self}")
            }
            other => format!("stage {other}"),
        }
    }

    /// [`StageFailure::Setup`] with `message`.
    pub fn setup(message: impl Into<String>) -> StageFailure {
        StageFailure::Setup {
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn job() -> StageJob {
        StageJob {
            run_id: "20240101-000000-abcd".into(),
            pipeline: "shop".into(),
            stage: "test".into(),
            attempt: 2,
            environment: Some("staging".into()),
            plugin: JobPlugin {
                reference: "/p/plugins/test.wasm".into(),
                digest: format!("sha256:{}", "b".repeat(64)),
            },
            config: serde_json::json!({ "suite": "unit", "shards": [1, 2], "fast": true }),
            workspace: PathBuf::from("/p"),
            grants: JobGrants {
                workspace: WorkspaceAccess::Read,
                env: vec!["CI".into()],
                network: vec!["*.internal:443".parse().expect("pattern")],
                exec: vec!["cargo".into()],
                secrets: vec!["NPM_TOKEN".into()],
                tls_ca: vec![],
                memory: 256 << 20,
                output: 1 << 20,
                artifacts: 10 << 30,
            },
            inputs: vec![JobInput {
                stage: "build".into(),
                artifact: ArtifactRecord {
                    name: "dist/app.tar.gz".into(),
                    digest: format!("sha256:{}", "a".repeat(64)),
                    size: 1234,
                    media_type: "application/gzip".into(),
                    role: None,
                    annotations: Default::default(),
                },
            }],
            upstream: vec![UpstreamOutput {
                stage: "build".into(),
                name: "version".into(),
                value: "1.2.3".into(),
            }],
            timeout: Duration::from_millis(90_500),
            grace_period: Duration::from_secs(10),
            log: "logs/test.log".into(),
        }
    }

    #[test]
    fn a_job_round_trips_through_json() -> TestResult {
        let job = job();
        let wire = serde_json::to_string(&job)?;
        let back: StageJob = serde_json::from_str(&wire)?;
        assert_eq!(back, job);
        Ok(())
    }

    #[test]
    fn outcomes_round_trip_through_json() -> TestResult {
        let report = StageReport {
            summary: "12 passed".into(),
            metrics: vec![MetricRecord {
                name: "tests.failed".into(),
                value: 0.0,
                unit: None,
            }],
            gates: vec![PluginGate {
                name: "flaky".into(),
                verdict: sluice_pipeline::gates::Verdict::Warn,
                observed: Some(2.0),
                threshold: Some(0.0),
                message: "2 flaky tests".into(),
            }],
            outputs: vec![("coverage".into(), "81.5".into())],
            artifacts: job().inputs.into_iter().map(|i| i.artifact).collect(),
        };
        let log = LogReport {
            path: "logs/test.log".into(),
            stats: LogStats {
                bytes_seen: 10,
                bytes_written: 12,
                truncated: false,
                io_error: None,
            },
        };
        let failures = [
            StageFailure::InvalidConfig {
                origin: ConfigOrigin::Schema,
                message: "m".into(),
            },
            StageFailure::Denied {
                message: "d".into(),
                then_failed: Some("f".into()),
            },
            StageFailure::Exit { code: 3 },
            StageFailure::Trap {
                kind: TrapKind::StackOverflow,
                message: "s".into(),
            },
            StageFailure::Timeout {
                after: Duration::from_secs(5),
            },
            StageFailure::MemoryLimit {
                limit: 1 << 20,
                asked: 2 << 20,
            },
            StageFailure::Provenance(ProvenanceFailure::WouldLeakSecret),
            StageFailure::setup("no room"),
            StageFailure::Lost { executions: 3 },
            StageFailure::NoAgent {
                labels: "net=egress".parse().expect("labels"),
                live_agents: vec!["a1 [os=linux]".into()],
            },
        ];
        let outcomes = std::iter::once(Ok(report))
            .chain(failures.into_iter().map(Err))
            .map(|result| StageOutcome::local(result, log.clone()))
            .chain(std::iter::once(StageOutcome {
                result: Err(StageFailure::Refused {
                    agent: "a1".into(),
                    reasons: vec!["no rule matches".into()],
                }),
                log: log.clone(),
                agent: Some("a1".into()),
                lost: vec![LostExecution {
                    agent: "a2".into(),
                    at: "2026-12-07T13:00:00Z".into(),
                }],
            }));
        for outcome in outcomes {
            let wire = serde_json::to_string(&outcome)?;
            let back: StageOutcome = serde_json::from_str(&wire)?;
            assert_eq!(back, outcome, "{wire}");
        }
        Ok(())
    }

    #[test]
    fn an_outcome_without_agent_fields_still_reads_and_local_ones_do_not_write_them() -> TestResult
    {
        let local = StageOutcome::local(Err(StageFailure::Exit { code: 1 }), LogReport::default());
        let wire = serde_json::to_value(&local)?;
        assert!(wire.get("agent").is_none(), "{wire}");
        assert!(wire.get("lost").is_none(), "{wire}");
        let old = r#"{"result":{"Err":{"exit":{"code":1}}},"log":{"path":"","stats":{"bytes_seen":0,"bytes_written":0,"truncated":false,"io_error":null}}}"#;
        let back: StageOutcome = serde_json::from_str(old)?;
        assert_eq!(back, local);
        Ok(())
    }

    #[test]
    fn fleet_failures_say_the_fix_and_are_not_retried() {
        let refused = StageFailure::Refused {
            agent: "a1".into(),
            reasons: vec![
                "no policy rule matches `lint.wasm`".into(),
                "exec `curl` is over the agent's ceiling".into(),
            ],
        };
        let text = refused.to_string();
        assert!(
            text.starts_with("refused by agent `a1`: no policy rule matches `lint.wasm`; exec `curl` is over the agent's ceiling; "),
            "{text}"
        );
        assert!(text.contains("runs-on:"), "{text}");
        assert!(refused.is_refusal());
        let no_agent = |live: Vec<String>| {
            StageFailure::NoAgent {
                labels: "net=egress".parse().expect("labels"),
                live_agents: live,
            }
            .to_string()
        };
        assert!(no_agent(vec![]).contains("live agents: none;"));
        let text = no_agent(vec!["a1 [os=linux]".into(), "a2 [any]".into()]);
        assert!(
            text.starts_with("no agent with the labels `net=egress` took the job; live agents: a1 [os=linux], a2 [any]; start an agent"),
            "{text}"
        );
        let lost = StageFailure::Lost { executions: 3 };
        assert!(lost.to_string().starts_with("lost: 3 agents took the job"));
        for f in [
            refused,
            lost,
            StageFailure::NoAgent {
                labels: sluice_types::LabelSet::any(),
                live_agents: vec![],
            },
        ] {
            assert!(!f.retryable(), "{f}");
        }
        assert!(!StageFailure::Lost { executions: 1 }.is_refusal());
    }

    #[test]
    fn failure_texts_are_what_users_read() {
        let said = |f: StageFailure| f.to_string();
        assert_eq!(
            said(StageFailure::Denied {
                message: "network `x:443` is not granted".into(),
                then_failed: Some("boom".into()),
            }),
            "denied: network `x:443` is not granted (the stage then failed: boom)"
        );
        assert_eq!(
            said(StageFailure::Exit { code: 0 }),
            "failed: the plugin called exit(0) instead of returning from `run`; a stage must return a report or an error"
        );
        assert_eq!(
            said(StageFailure::Timeout {
                after: Duration::from_millis(1500)
            }),
            "timed out after 1s 500ms; raise the stage's `timeout:` if it needs longer"
        );
        assert_eq!(
            said(StageFailure::Provenance(ProvenanceFailure::Sign(
                "bad key".into()
            ))),
            "sandbox setup failed: signing provenance: bad key"
        );
        assert_eq!(
            said(StageFailure::Inputs {
                stage: "build".into(),
                message: "gone".into()
            }),
            "failed: input artifacts of `build`: gone"
        );
        assert!(!StageFailure::setup("x").retryable());
        assert_eq!(
            StageFailure::Failed {
                message: "3 tests failed".into()
            }
            .log_note(),
            "stage failed: 3 tests failed"
        );
        assert_eq!(
            StageFailure::Timeout {
                after: Duration::from_secs(2)
            }
            .log_note(),
            "stage timed out after 2s; raise the stage's `timeout:` if it needs longer"
        );
        assert_eq!(
            StageFailure::Cancelled { in_grace: true }.log_note(),
            "stage cancelled (it ended within its grace period)"
        );
        assert!(StageFailure::Exit { code: 1 }.retryable());
    }
}
