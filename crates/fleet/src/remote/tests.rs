//! The remote executor against an in-memory [`Dispatch`]: a transport
//! whose events each test scripts. Blobs go through a real
//! [`SharedCas`] (the "agent's" store), so digests are really checked.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use sluice_engine::executor::{
    Executor, LogReport, StageFailure, StageJob, StageOutcome, StageReport,
};
use sluice_engine::redact::Redactor;
use sluice_engine::report::{Event, Reporter};
use sluice_pipeline::WorkspaceAccess;
use sluice_record::artifacts::{ArtifactRecord, Cas};

use super::{RemoteExecutor, RemoteOptions};
use crate::blobs::SharedCas;
use crate::error::FleetError;
use crate::proto::{
    AgentEvent, BlobRef, Heartbeat, JobEnvelope, JobId, OutcomeEnvelope, PluginBlobs, PROTOCOL,
};
use crate::transport::{Adopted, BlobStore, Cancelled, Dispatch, Submitted};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A transport in memory: every job's events come from a channel the test
/// feeds; what the executor asked is recorded.
struct FakeDispatch {
    channels: Mutex<HashMap<JobId, Channel>>,
    submitted: Mutex<Vec<JobEnvelope>>,
    cancelled: Mutex<Vec<JobId>>,
    withdrawn: Mutex<Vec<JobId>>,
    /// What `cancel` answers; on `Signalled` the fake agent answers with a
    /// `Cancelled` outcome.
    cancel_answer: Cancelled,
    adopted: Mutex<HashMap<JobId, Adopted>>,
    blobs: SharedCas,
}

impl FakeDispatch {
    fn new(agent_cas: Cas) -> FakeDispatch {
        FakeDispatch {
            channels: Mutex::default(),
            submitted: Mutex::default(),
            cancelled: Mutex::default(),
            withdrawn: Mutex::default(),
            cancel_answer: Cancelled::Signalled,
            adopted: Mutex::default(),
            blobs: SharedCas::new(agent_cas),
        }
    }

    /// Queue `events` for job `id`.
    fn script(&self, id: &JobId, events: Vec<AgentEvent>) {
        let mut channels = self.channels.lock().expect("lock");
        let (tx, _) = channels.entry(id.clone()).or_insert_with(channel);
        for e in events {
            if let Some(tx) = tx {
                let _ = tx.send(e);
            }
        }
    }

    /// End job `id`'s events after those queued (the transport went away).
    fn hang_up(&self, id: &JobId) {
        let mut channels = self.channels.lock().expect("lock");
        channels.entry(id.clone()).or_insert_with(channel).0 = None;
    }
}

type Channel = (
    Option<mpsc::UnboundedSender<AgentEvent>>,
    Option<mpsc::UnboundedReceiver<AgentEvent>>,
);

fn channel() -> Channel {
    let (tx, rx) = mpsc::unbounded_channel();
    (Some(tx), Some(rx))
}

impl Dispatch for FakeDispatch {
    fn submit(&self, job: JobEnvelope) -> BoxFuture<'_, Result<Submitted, FleetError>> {
        Box::pin(async move {
            let id = job.id.clone();
            self.submitted.lock().expect("lock").push(job);
            Ok(Submitted {
                id,
                sequence: 1,
                duplicate: false,
            })
        })
    }

    fn adopt<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<Adopted, FleetError>> {
        Box::pin(async move {
            Ok(self
                .adopted
                .lock()
                .expect("lock")
                .remove(id)
                .unwrap_or(Adopted::Unknown))
        })
    }

    fn events(&self, id: &JobId) -> BoxStream<'static, AgentEvent> {
        let rx = self
            .channels
            .lock()
            .expect("lock")
            .entry(id.clone())
            .or_insert_with(channel)
            .1
            .take();
        match rx {
            Some(mut rx) => futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed(),
            None => futures::stream::empty().boxed(),
        }
    }

    fn cancel<'a>(
        &'a self,
        id: &'a JobId,
        _reason: &'a str,
    ) -> BoxFuture<'a, Result<Cancelled, FleetError>> {
        Box::pin(async move {
            self.cancelled.lock().expect("lock").push(id.clone());
            if self.cancel_answer == Cancelled::Signalled {
                let mut outcome = passed(id, "a1", vec![]);
                outcome.outcome.result = Err(StageFailure::Cancelled { in_grace: true });
                self.script(id, vec![AgentEvent::Finished(outcome)]);
            }
            Ok(self.cancel_answer)
        })
    }

    fn withdraw<'a>(&'a self, id: &'a JobId) -> BoxFuture<'a, Result<bool, FleetError>> {
        Box::pin(async move {
            self.withdrawn.lock().expect("lock").push(id.clone());
            Ok(true)
        })
    }

    fn agents(&self) -> BoxFuture<'_, Result<Vec<Heartbeat>, FleetError>> {
        Box::pin(async {
            Ok(vec![Heartbeat {
                name: "a9".into(),
                version: "0.1.0".into(),
                labels: "os=mac".parse().expect("labels"),
                slots: 1,
                running: vec![],
                secrets: vec![],
                host: "h".into(),
                started_at: "2026-12-07T10:00:00Z".into(),
                shared_workspace: false,
                allow_unsigned: false,
            }])
        })
    }

    fn blobs(&self) -> &dyn BlobStore {
        &self.blobs
    }
}

/// `sha256:<hex>` of `bytes`.
fn sha256(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
    )
}

/// Events the run's reporter received, as text.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Reporter for Recorder {
    fn event(&self, event: &Event<'_>) {
        let text = match event {
            Event::StageAssigned { stage, agent } => format!("assigned {stage} {agent}"),
            Event::StageLog { stage, line, .. } => format!("log {stage} {line}"),
            Event::StageProgress { stage, done, .. } => format!("progress {stage} {done}"),
            Event::Warning { message } => format!("warning {message}"),
            _ => return,
        };
        self.0.lock().expect("lock").push(text);
    }
}

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.0.lock().expect("lock").clone()
    }
}

fn passed(id: &JobId, agent: &str, artifacts: Vec<ArtifactRecord>) -> OutcomeEnvelope {
    OutcomeEnvelope {
        protocol: PROTOCOL,
        id: id.clone(),
        agent: agent.into(),
        execution: "e1".into(),
        outcome: StageOutcome::local(
            Ok(StageReport {
                summary: "built with hunter2".into(),
                metrics: vec![],
                gates: vec![],
                outputs: vec![("token".into(), "hunter2".into())],
                artifacts,
            }),
            LogReport {
                path: "../../elsewhere.log".into(),
                stats: Default::default(),
            },
        ),
        log: None,
        workspace_delta: None,
    }
}

fn started(id: &JobId, agent: &str, execution: &str) -> AgentEvent {
    AgentEvent::Started {
        id: id.clone(),
        agent: agent.into(),
        execution: execution.into(),
        delivery: 1,
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    run_dir: PathBuf,
    cas: Arc<Cas>,
    agent_cas: Cas,
    dispatch: Arc<FakeDispatch>,
    reporter: Arc<Recorder>,
    job: StageJob,
    id: JobId,
    plugin_file: PathBuf,
}

fn setup() -> Result<Setup, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let run_dir = dir.path().join("run");
    let cas = Arc::new(Cas::open(&dir.path().join("cas"))?);
    let agent_cas = Cas::open(&dir.path().join("agent-cas"))?;
    let mut job = crate::uds::tests::stage_job("build");
    // A plugin file the executor uploads to the agents' store.
    let plugin_file = dir.path().join("x.wasm");
    std::fs::write(&plugin_file, b"\0asm fake component")?;
    job.plugin.digest = sha256(b"\0asm fake component");
    let id = JobId::of(&job, 4)?;
    Ok(Setup {
        run_dir,
        cas,
        dispatch: Arc::new(FakeDispatch::new(agent_cas.clone())),
        agent_cas,
        reporter: Arc::default(),
        job,
        id,
        plugin_file,
        _dir: dir,
    })
}

impl Setup {
    fn executor(&self, tune: impl FnOnce(&mut RemoteOptions)) -> RemoteExecutor {
        self.executor_on(self.dispatch.clone(), tune)
    }

    /// [`Setup::executor`] over another dispatch.
    fn executor_on(
        &self,
        dispatch: Arc<FakeDispatch>,
        tune: impl FnOnce(&mut RemoteOptions),
    ) -> RemoteExecutor {
        let digest = self.job.plugin.digest.clone();
        let mut options = RemoteOptions {
            epoch: 4,
            coordinator: "test:1".into(),
            queue_timeout: Duration::from_secs(30),
            ..RemoteOptions::default()
        };
        options.plugins.insert(
            digest.clone(),
            PluginBlobs {
                digest,
                bundle: None,
                attestations: None,
                path: Some("/plugins/x.wasm".into()),
            },
        );
        options
            .plugin_files
            .insert(self.job.plugin.digest.clone(), self.plugin_file.clone());
        tune(&mut options);
        RemoteExecutor::new(
            dispatch,
            self.cas.clone(),
            self.run_dir.clone(),
            self.reporter.clone(),
            Arc::new(Redactor::new(["hunter2".to_owned()])),
            options,
        )
    }

    /// Put `bytes` in the agent's store; its record as `name`.
    fn agent_blob(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<ArtifactRecord, Box<dyn std::error::Error>> {
        let digest = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
        );
        self.agent_cas
            .ingest_verified(&mut &bytes[..], &digest, std::path::Path::new("test"))?;
        Ok(ArtifactRecord {
            name: name.into(),
            digest,
            size: bytes.len() as u64,
            media_type: "application/octet-stream".into(),
            role: None,
            annotations: Default::default(),
        })
    }
}

#[tokio::test]
async fn a_remote_stage_reports_live_and_brings_its_artifacts_and_log_home() -> TestResult {
    let s = setup()?;
    let artifact = s.agent_blob("app.tar", b"the build")?;
    let log = s.agent_blob("log", b"the agent's complete log\n")?;
    let mut outcome = passed(&s.id, "a1", vec![artifact.clone()]);
    outcome.log = Some(BlobRef {
        digest: log.digest.clone(),
        size: log.size,
    });
    s.dispatch.script(
        &s.id,
        vec![
            started(&s.id, "a1", "e1"),
            AgentEvent::Log {
                id: s.id.clone(),
                line: "compiling with hunter2".into(),
                level: None,
                fields: vec![],
            },
            AgentEvent::Progress {
                id: s.id.clone(),
                done: 3,
                total: Some(9),
                message: "m".into(),
            },
            AgentEvent::Finished(outcome),
        ],
    );
    // The live copy that the agent's log replaces.
    std::fs::create_dir_all(s.run_dir.join("logs"))?;
    std::fs::write(s.run_dir.join("logs/build.log"), b"partial")?;

    let executor = s.executor(|_| {});
    let out = executor.run(s.job.clone(), CancellationToken::new()).await;
    let report = out.result.as_ref().map_err(|f| f.to_string())?;
    assert_eq!(out.agent.as_deref(), Some("a1"));
    assert!(out.lost.is_empty());
    assert_eq!(
        out.log.path, "logs/build.log",
        "the coordinator's path, not the agent's"
    );
    assert_eq!(report.summary, "built with ***");
    assert_eq!(report.outputs[0].1, "***");
    s.cas.verify(&artifact)?;
    assert_eq!(
        std::fs::read(s.run_dir.join("logs/build.log"))?,
        b"the agent's complete log\n"
    );
    assert_eq!(
        s.reporter.lines(),
        [
            "assigned build a1",
            "log build compiling with ***",
            "progress build 3",
        ]
    );
    // The job as sent: this run's epoch in its id, no local path over a
    // transport that does not share the machine.
    let sent = s.dispatch.submitted.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].id.to_string(), "20261207-101943-5b3f59.4.build.1");
    assert_eq!(sent[0].plugin.path, None);
    assert_eq!(sent[0].coordinator, "test:1");

    // The runner's note goes after the agent's log, which stays writable.
    executor.note("build", "logs/build.log", "gate failed: hunter2");
    assert_eq!(
        std::fs::read_to_string(s.run_dir.join("logs/build.log"))?,
        "the agent's complete log\n[sluice] gate failed: ***\n"
    );
    Ok(())
}

#[tokio::test]
async fn a_second_start_by_another_execution_is_a_lost_agent_not_a_failure() -> TestResult {
    let s = setup()?;
    s.dispatch.script(
        &s.id,
        vec![
            started(&s.id, "a1", "e1"),
            started(&s.id, "a1", "e1"), // the same execution again: nothing new
            started(&s.id, "a2", "e2"),
            AgentEvent::Finished(passed(&s.id, "a2", vec![])),
            // A late outcome of the lost execution: dropped.
            AgentEvent::Finished(passed(&s.id, "a1", vec![])),
        ],
    );
    let out = s
        .executor(|_| {})
        .run(s.job.clone(), CancellationToken::new())
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(out.agent.as_deref(), Some("a2"), "the first outcome wins");
    assert_eq!(out.lost.len(), 1);
    assert_eq!(out.lost[0].agent, "a1");
    let lines = s.reporter.lines();
    assert_eq!(lines[0], "assigned build a1");
    assert!(
        lines[1].contains("agent a1 lost the job") && lines[1].contains("retried on agent a2"),
        "{lines:?}"
    );
    assert_eq!(lines[2], "assigned build a2");
    assert!(s.dispatch.withdrawn.lock().expect("lock").is_empty());
    Ok(())
}

#[tokio::test]
async fn more_losses_than_max_lost_fail_the_stage_and_withdraw_the_job() -> TestResult {
    let s = setup()?;
    s.dispatch.script(
        &s.id,
        (1..=3)
            .map(|n| started(&s.id, &format!("a{n}"), &format!("e{n}")))
            .collect(),
    );
    let out = s
        .executor(|o| o.max_lost = 1)
        .run(s.job.clone(), CancellationToken::new())
        .await;
    assert_eq!(out.result, Err(StageFailure::Lost { executions: 2 }));
    assert_eq!(out.lost.len(), 2);
    assert_eq!(
        *s.dispatch.withdrawn.lock().expect("lock"),
        vec![s.id.clone()]
    );

    // The transport giving up (NATS: max_deliver) is a loss too.
    let s = setup()?;
    s.dispatch.script(
        &s.id,
        vec![
            started(&s.id, "a1", "e1"),
            AgentEvent::Exhausted {
                id: s.id.clone(),
                deliveries: 20,
            },
        ],
    );
    let out = s
        .executor(|_| {})
        .run(s.job.clone(), CancellationToken::new())
        .await;
    assert_eq!(out.result, Err(StageFailure::Lost { executions: 20 }));

    // And the agent going away with nobody to redeliver to.
    let s = setup()?;
    s.dispatch.script(&s.id, vec![started(&s.id, "a1", "e1")]);
    s.dispatch.hang_up(&s.id);
    let out = s
        .executor(|_| {})
        .run(s.job.clone(), CancellationToken::new())
        .await;
    assert_eq!(out.result, Err(StageFailure::Lost { executions: 1 }));
    assert!(
        s.reporter
            .lines()
            .iter()
            .any(|l| l.contains("agent a1 went away")),
        "{:?}",
        s.reporter.lines()
    );
    Ok(())
}

#[tokio::test]
async fn a_forged_artifact_digest_fails_the_stage() -> TestResult {
    let s = setup()?;
    let real = s.agent_blob("app.tar", b"the build")?;
    // The agent claims a digest whose blob holds other bytes: write them
    // into its store under that name by hand.
    let claimed = format!("sha256:{}", "ab".repeat(32));
    let path = s.agent_cas.blob_path(&claimed)?;
    std::fs::create_dir_all(path.parent().ok_or("shard")?)?;
    std::fs::write(&path, b"the build")?;
    let forged = ArtifactRecord {
        digest: claimed.clone(),
        ..real.clone()
    };
    s.dispatch.script(
        &s.id,
        vec![
            started(&s.id, "a1", "e1"),
            AgentEvent::Finished(passed(&s.id, "a1", vec![real, forged])),
        ],
    );
    let out = s
        .executor(|_| {})
        .run(s.job.clone(), CancellationToken::new())
        .await;
    let Err(StageFailure::Outputs { message }) = &out.result else {
        return Err(format!("expected an Outputs failure, got {:?}", out.result).into());
    };
    assert!(
        message.contains("`app.tar`") && message.contains(&claimed) && message.contains("agent a1"),
        "{message}"
    );
    assert!(
        !s.cas.blob_path(&claimed)?.exists(),
        "nothing forged reaches the CAS"
    );
    assert_eq!(out.agent.as_deref(), Some("a1"));

    // A size that differs from the report's fails too.
    let s = setup()?;
    let mut wrong_size = s.agent_blob("app.tar", b"the build")?;
    wrong_size.size += 1;
    s.dispatch.script(
        &s.id,
        vec![AgentEvent::Finished(passed(&s.id, "a1", vec![wrong_size]))],
    );
    let out = s
        .executor(|_| {})
        .run(s.job.clone(), CancellationToken::new())
        .await;
    assert!(
        matches!(&out.result, Err(StageFailure::Outputs { message }) if message.contains("the report says 10")),
        "{:?}",
        out.result
    );
    Ok(())
}

#[tokio::test]
async fn cancelling_withdraws_a_job_nobody_started_and_waits_for_a_running_one() -> TestResult {
    // Not started: withdrawn, answered at once.
    let s = setup()?;
    let mut dispatch = FakeDispatch::new(s.agent_cas.clone());
    dispatch.cancel_answer = Cancelled::Withdrawn;
    let dispatch = Arc::new(dispatch);
    let executor = s.executor_on(dispatch.clone(), |_| {});
    let cancel = CancellationToken::new();
    cancel.cancel();
    let out = executor.run(s.job.clone(), cancel).await;
    assert_eq!(out.result, Err(StageFailure::Cancelled { in_grace: true }));
    assert_eq!(
        *dispatch.cancelled.lock().expect("lock"),
        vec![s.id.clone()]
    );

    // Running: the agent is told and its answer is the outcome.
    let s = setup()?;
    s.dispatch.script(&s.id, vec![started(&s.id, "a1", "e1")]);
    let cancel = CancellationToken::new();
    let executor = s.executor(|_| {});
    let run = executor.run(s.job.clone(), cancel.clone());
    let trigger = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        cancel.cancel();
    };
    let (out, ()) = tokio::join!(run, trigger);
    assert_eq!(out.result, Err(StageFailure::Cancelled { in_grace: true }));
    assert_eq!(out.agent.as_deref(), Some("a1"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_silent_agent_is_given_up_after_grace_and_no_agent_after_the_queue_timeout() -> TestResult
{
    // The agent never answers the cancel: the grace period plus a backstop.
    let s = setup()?;
    let mut dispatch = FakeDispatch::new(s.agent_cas.clone());
    dispatch.cancel_answer = Cancelled::Withdrawn; // but the job was started
    let dispatch = Arc::new(dispatch);
    dispatch.script(&s.id, vec![started(&s.id, "a1", "e1")]);
    let executor = s.executor_on(dispatch.clone(), |_| {});
    let cancel = CancellationToken::new();
    let run = executor.run(s.job.clone(), cancel.clone());
    let trigger = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        cancel.cancel();
    };
    let (out, ()) = tokio::join!(run, trigger);
    assert_eq!(out.result, Err(StageFailure::Cancelled { in_grace: false }));
    assert_eq!(out.agent.as_deref(), Some("a1"), "the agent that had it");

    // Nobody takes the job.
    let s = setup()?;
    let out = s
        .executor(|o| {
            o.runs_on
                .insert("build".into(), "os=linux".parse().expect("labels"));
        })
        .run(s.job.clone(), CancellationToken::new())
        .await;
    let Err(failure @ StageFailure::NoAgent { .. }) = &out.result else {
        return Err(format!("expected NoAgent, got {:?}", out.result).into());
    };
    let text = failure.to_string();
    assert!(
        text.contains("`os=linux`") && text.contains("a9 [os=mac]"),
        "{text}"
    );
    // The console was told at dispatch, not only at the timeout.
    let lines = s.reporter.lines();
    assert!(
        lines.iter().any(|l| l.starts_with(
            "warning stage `build` needs an agent with the labels `os=linux`, and no live agent has them (live: a9 [os=mac]); the job waits up to 30s"
        )),
        "{lines:?}"
    );
    assert_eq!(
        *s.dispatch.withdrawn.lock().expect("lock"),
        vec![s.id.clone()]
    );
    Ok(())
}

#[tokio::test]
async fn an_adopted_stage_takes_the_recorded_outcome_without_dispatching_again() -> TestResult {
    let s = setup()?;
    let old = JobId::new(s.id.run_id.clone(), 3, "build", 1)?;
    s.dispatch.adopted.lock().expect("lock").insert(
        old.clone(),
        Adopted::Finished(Box::new(passed(&old, "a7", vec![]))),
    );
    let out = s
        .executor(|o| {
            o.adopt.insert("build".into(), old.clone());
        })
        .run(s.job.clone(), CancellationToken::new())
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(out.agent.as_deref(), Some("a7"));
    assert!(s.dispatch.submitted.lock().expect("lock").is_empty());

    // A failed adopted outcome is retried as a new job, never adopted twice.
    let s = setup()?;
    let mut failed = passed(&old, "a7", vec![]);
    failed.outcome.result = Err(StageFailure::Failed {
        message: "flaky".into(),
    });
    s.dispatch
        .adopted
        .lock()
        .expect("lock")
        .insert(old.clone(), Adopted::Finished(Box::new(failed.clone())));
    let executor = s.executor(|o| {
        o.adopt.insert("build".into(), old.clone());
    });
    let first = executor.run(s.job.clone(), CancellationToken::new()).await;
    assert_eq!(
        first.result,
        Err(StageFailure::Failed {
            message: "flaky".into()
        })
    );
    let mut retry = s.job.clone();
    retry.attempt = 2;
    let retry_id = JobId::of(&retry, 4)?;
    s.dispatch
        .adopted
        .lock()
        .expect("lock")
        .insert(old.clone(), Adopted::Finished(Box::new(failed)));
    s.dispatch.script(
        &retry_id,
        vec![AgentEvent::Finished(passed(&retry_id, "a1", vec![]))],
    );
    let second = executor.run(retry, CancellationToken::new()).await;
    assert!(second.result.is_ok(), "{:?}", second.result);
    let sent = s.dispatch.submitted.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].id, retry_id);

    // In flight: followed under its old id, not sent again.
    let s = setup()?;
    s.dispatch
        .adopted
        .lock()
        .expect("lock")
        .insert(old.clone(), Adopted::InFlight { sequence: 9 });
    s.dispatch.script(
        &old,
        vec![
            started(&old, "a7", "e1"),
            AgentEvent::Finished(passed(&old, "a7", vec![])),
        ],
    );
    let out = s
        .executor(|o| {
            o.adopt.insert("build".into(), old.clone());
        })
        .run(s.job.clone(), CancellationToken::new())
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert!(s.dispatch.submitted.lock().expect("lock").is_empty());
    Ok(())
}

#[tokio::test]
async fn a_workspace_stage_needs_agents_that_share_the_workspace() -> TestResult {
    let s = setup()?;
    let mut job = s.job.clone();
    job.grants.workspace = WorkspaceAccess::Read;
    let out = s
        .executor(|_| {})
        .run(job.clone(), CancellationToken::new())
        .await;
    let Err(StageFailure::Setup { message }) = &out.result else {
        return Err(format!("expected a setup failure, got {:?}", out.result).into());
    };
    assert!(message.contains("workspace: shared"), "{message}");
    assert!(s.dispatch.submitted.lock().expect("lock").is_empty());

    s.dispatch.script(
        &s.id,
        vec![AgentEvent::Finished(passed(&s.id, "a1", vec![]))],
    );
    let out = s
        .executor(|o| o.shared_workspace = true)
        .run(job, CancellationToken::new())
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    let sent = s.dispatch.submitted.lock().expect("lock").clone();
    assert_eq!(
        sent[0].workspace,
        crate::proto::WorkspaceSource::SharedPath { path: "/w".into() }
    );
    Ok(())
}

#[tokio::test]
async fn inputs_and_the_plugin_are_uploaded_once_when_the_cas_is_not_shared() -> TestResult {
    let s = setup()?;
    // The input is in the coordinator's CAS only.
    let bytes = b"input bytes";
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
    );
    s.cas
        .ingest_verified(&mut &bytes[..], &digest, std::path::Path::new("test"))?;
    let plugin_file = s.run_dir.with_file_name("x.wasm");
    std::fs::write(&plugin_file, b"\0asm fake")?;
    let plugin_digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"\0asm fake"))
    );
    let mut job = s.job.clone();
    job.plugin.digest = plugin_digest.clone();
    job.inputs.push(sluice_engine::executor::JobInput {
        stage: "prep".into(),
        artifact: ArtifactRecord {
            name: "in.txt".into(),
            digest: digest.clone(),
            size: bytes.len() as u64,
            media_type: "text/plain".into(),
            role: None,
            annotations: Default::default(),
        },
    });
    s.dispatch.script(
        &s.id,
        vec![AgentEvent::Finished(passed(&s.id, "a1", vec![]))],
    );
    let out = s
        .executor(|o| {
            o.plugins.insert(
                plugin_digest.clone(),
                PluginBlobs {
                    digest: plugin_digest.clone(),
                    bundle: None,
                    attestations: None,
                    path: None,
                },
            );
            o.plugin_files
                .insert(plugin_digest.clone(), plugin_file.clone());
        })
        .run(job, CancellationToken::new())
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert!(s.agent_cas.blob_path(&digest)?.exists());
    assert!(s.agent_cas.blob_path(&plugin_digest)?.exists());
    Ok(())
}
