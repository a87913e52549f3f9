//! The NATS transport against a real `nats-server -js` (2.9.10 from
//! Debian; `scripts/setup-nats.sh`): one server per test process, one
//! fleet namespace per test; tests that kill the server have their own.
//! Ack waits are 2 s so that redelivery costs little wall time.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::timeout;

use sluice_engine::executor::{
    JobGrants, JobPlugin, LogReport, StageFailure, StageJob, StageOutcome,
};
use sluice_fleet::nats::layout::{jobs_stream_config, Names};
use sluice_fleet::nats::{NatsConfig, NatsDispatch, NatsJobSource};
use sluice_fleet::proto::{
    AgentEvent, Heartbeat, JobEnvelope, JobId, OutcomeEnvelope, PluginBlobs, WorkspaceSource,
    PROTOCOL,
};
use sluice_fleet::transport::{Adopted, Cancelled, Dispatch, JobSource};
use sluice_fleet::FleetError;
use sluice_pipeline::WorkspaceAccess;
use sluice_record::artifacts::Cas;
use sluice_tests::nats::NatsServer;
use sluice_types::LabelSet;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Waits that must not time out: generous, they only bound a broken test.
const PATIENCE: Duration = Duration::from_secs(20);

fn config(url: &str, namespace: &str) -> Result<NatsConfig, FleetError> {
    let mut config = NatsConfig::parse(&format!("{url}?namespace={namespace}"))?;
    config.layout.ack_wait = Duration::from_secs(2);
    config.layout.heartbeat_ttl = Duration::from_secs(3);
    Ok(config)
}

/// A coordinator on namespace `ns` of the server at `url`, with the tests'
/// [`config`].
async fn connect_coordinator(url: &str, ns: &str) -> Result<NatsDispatch, FleetError> {
    Ok(NatsDispatch::new(config(url, ns)?.connect().await?))
}

/// Agent `name` with `labels` and `slots` on namespace `ns` of the server
/// at `url`, with the tests' [`config`].
async fn connect_agent(
    url: &str,
    ns: &str,
    name: &str,
    labels: LabelSet,
    slots: u32,
) -> Result<NatsJobSource, FleetError> {
    NatsJobSource::new(config(url, ns)?.connect().await?, name, labels, slots).await
}

fn labels(text: &str) -> LabelSet {
    match text.parse() {
        Ok(l) => l,
        Err(e) => panic!("{text}: {e}"),
    }
}

fn job(run_id: &str, stage: &str) -> StageJob {
    StageJob {
        run_id: run_id.into(),
        pipeline: "fleet.test".into(),
        stage: stage.into(),
        attempt: 1,
        environment: None,
        plugin: JobPlugin {
            reference: "plugins/noop.wasm".into(),
            digest: format!("sha256:{}", "0".repeat(64)),
        },
        config: serde_json::json!({}),
        workspace: "/nonexistent".into(),
        grants: JobGrants {
            workspace: WorkspaceAccess::None,
            env: vec![],
            network: vec![],
            exec: vec![],
            secrets: vec![],
            tls_ca: vec![],
            memory: 1 << 20,
            output: 1 << 20,
            artifacts: 1 << 20,
        },
        inputs: vec![],
        upstream: vec![],
        timeout: Duration::from_secs(60),
        grace_period: Duration::from_secs(1),
        log: format!("logs/{stage}.log"),
    }
}

fn envelope(
    run_id: &str,
    stage: &str,
    runs_on: &str,
) -> Result<JobEnvelope, Box<dyn std::error::Error + Send + Sync>> {
    let job = job(run_id, stage);
    Ok(JobEnvelope {
        protocol: PROTOCOL,
        id: JobId::of(&job, 1)?,
        plugin: PluginBlobs {
            digest: job.plugin.digest.clone(),
            bundle: None,
            attestations: None,
            path: None,
        },
        job,
        runs_on: labels(runs_on),
        workspace: WorkspaceSource::None,
        coordinator: "test:1".into(),
    })
}

fn outcome(id: &JobId, agent: &str, execution: &str, summary: &str) -> OutcomeEnvelope {
    OutcomeEnvelope {
        protocol: PROTOCOL,
        id: id.clone(),
        agent: agent.into(),
        execution: execution.into(),
        outcome: StageOutcome {
            result: Err(StageFailure::Setup {
                message: summary.into(),
            }),
            log: LogReport::default(),
            agent: Some(agent.into()),
            lost: vec![],
        },
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

async fn next_event(
    events: &mut futures::stream::BoxStream<'static, AgentEvent>,
) -> Result<AgentEvent, Box<dyn std::error::Error + Send + Sync>> {
    timeout(PATIENCE, events.next())
        .await?
        .ok_or_else(|| "the event stream ended".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layout_is_idempotent_repairs_the_ack_wait_and_refuses_a_foreign_stream() -> TestResult
{
    let server = NatsServer::shared();
    let ns = NatsServer::namespace();
    let first = config(&server.url(), &ns)?.connect().await?;
    let any = LabelSet::any();
    first.ensure_consumer(&any).await?;
    // Again, with another ack wait: the same streams, the consumer updated.
    let mut slower = config(&server.url(), &ns)?;
    slower.layout.ack_wait = Duration::from_secs(5);
    let second = slower.connect().await?;
    let consumer = second.ensure_consumer(&any).await?;
    assert_eq!(
        consumer.cached_info().config.ack_wait,
        Duration::from_secs(5)
    );
    let mut jobs = second.jobs.clone();
    assert_eq!(jobs.info().await?.config.name, format!("{ns}_JOBS"));

    // A stream of ours that someone made with another retention policy.
    let foreign = NatsServer::namespace();
    let names = Names::new(&foreign)?;
    let mut wrong = jobs_stream_config(&names, &Default::default());
    wrong.retention = async_nats::jetstream::stream::RetentionPolicy::Limits;
    first.js.create_stream(wrong).await?;
    let err = config(&server.url(), &foreign)?.connect().await.err();
    assert!(
        matches!(&err, Some(FleetError::IncompatibleStream { stream, .. }) if *stream == format!("{foreign}_JOBS")),
        "{err:?}"
    );
    let message = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("nats stream rm"), "{message}");

    // Nobody listening: a clear error naming the address and the fix.
    let port = sluice_tests::free_port();
    let down = NatsConfig::parse(&format!("nats://127.0.0.1:{port}"))?;
    let err = down.connect().await.err();
    assert!(matches!(err, Some(FleetError::Connect { .. })), "{err:?}");
    let message = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains(&format!("127.0.0.1:{port}")) && message.contains("setup-nats.sh"),
        "{message}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_travels_and_its_outcome_is_recorded_once() -> TestResult {
    let server = NatsServer::shared();
    let ns = NatsServer::namespace();
    let coordinator = connect_coordinator(&server.url(), &ns).await?;
    let agent = connect_agent(&server.url(), &ns, "a1", labels("os=linux"), 1).await?;

    let job = envelope("run-1", "build", "os=linux")?;
    let id = job.id.clone();
    assert_eq!(coordinator.adopt(&id).await?, Adopted::Unknown);
    let mut events = coordinator.events(&id);
    let submitted = coordinator.submit(job.clone()).await?;
    assert!(!submitted.duplicate);
    // Publishing the same job again (a retry) queues nothing new.
    let again = coordinator.submit(job.clone()).await?;
    assert!(again.duplicate);
    assert_eq!(again.sequence, submitted.sequence);
    assert_eq!(
        coordinator.adopt(&id).await?,
        Adopted::InFlight {
            sequence: submitted.sequence
        }
    );

    // A coordinator that knows nothing of it (a resumed run) finds it too.
    let resumed = connect_coordinator(&server.url(), &ns).await?;
    assert_eq!(
        resumed.adopt(&id).await?,
        Adopted::InFlight {
            sequence: submitted.sequence
        }
    );
    let taken = timeout(PATIENCE, agent.next()).await??;
    assert_eq!(taken.envelope, job);
    assert!(!taken.lease.cancelled().is_cancelled());
    taken.lease.event(started(&id, "a1", "e1")).await;
    taken
        .lease
        .event(AgentEvent::Log {
            id: id.clone(),
            line: "compiling".into(),
            level: None,
            fields: vec![],
        })
        .await;
    assert!(
        matches!(next_event(&mut events).await?, AgentEvent::Started { execution, .. } if execution == "e1")
    );
    assert!(
        matches!(next_event(&mut events).await?, AgentEvent::Log { line, .. } if line == "compiling")
    );

    // Heartbeats list the agent.
    let beat = Heartbeat {
        name: "a1".into(),
        version: "0.1.0".into(),
        labels: labels("os=linux"),
        slots: 1,
        running: vec![id.clone()],
        secrets: vec![],
        host: "h".into(),
        started_at: "2026-12-07T13:00:00Z".into(),
        shared_workspace: true,
        allow_unsigned: false,
    };
    agent.heartbeat(&beat).await?;
    assert_eq!(coordinator.agents().await?, vec![beat]);

    taken
        .lease
        .finish(outcome(&id, "a1", "e1", "first"))
        .await?;
    let AgentEvent::Finished(done) = next_event(&mut events).await? else {
        return Err("expected the outcome".into());
    };
    assert_eq!(done.execution, "e1");
    // The stream ends after the outcome.
    assert!(timeout(PATIENCE, events.next()).await?.is_none());

    // A second execution's outcome (say, after a redelivery) is dropped by
    // the server's deduplication; a late subscriber sees the first only.
    let layout = coordinator.layout();
    let ack = layout
        .js
        .send_publish(
            layout.names.outcome_subject(&id),
            async_nats::jetstream::message::PublishMessage::build()
                .payload(serde_json::to_vec(&outcome(&id, "a2", "e2", "second"))?.into())
                .message_id(id.to_string()),
        )
        .await?
        .await?;
    assert!(ack.duplicate);
    let replayed: Vec<AgentEvent> = timeout(PATIENCE, coordinator.events(&id).collect()).await?;
    let finished: Vec<_> = replayed
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Finished(o) => Some(o.execution.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(finished, ["e1"]);
    match coordinator.adopt(&id).await? {
        Adopted::Finished(o) => assert_eq!(o.execution, "e1"),
        other => return Err(format!("adopt after the outcome: {other:?}").into()),
    }
    // Acknowledged: the job left the queue.
    let mut jobs = layout.jobs.clone();
    assert_eq!(jobs.info().await?.state.messages, 0);

    // Cancelling a queued job withdraws it; a running one is signalled.
    let queued = envelope("run-1", "test", "os=linux")?;
    let (queued_id, _) = (queued.id.clone(), coordinator.submit(queued).await?);
    assert_eq!(
        coordinator.cancel(&queued_id, "fail-fast").await?,
        Cancelled::Withdrawn
    );
    assert_eq!(jobs.info().await?.state.messages, 0);
    let running = envelope("run-1", "lint", "os=linux")?;
    let running_id = running.id.clone();
    let mut running_events = coordinator.events(&running_id);
    coordinator.submit(running).await?;
    let taken = timeout(PATIENCE, agent.next()).await??;
    taken.lease.event(started(&running_id, "a1", "e3")).await;
    next_event(&mut running_events).await?;
    assert_eq!(
        coordinator.cancel(&running_id, "fail-fast").await?,
        Cancelled::Signalled
    );
    timeout(PATIENCE, taken.lease.cancelled().cancelled()).await?;
    taken
        .lease
        .finish(outcome(&running_id, "a1", "e3", "cancelled"))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_surplus_job_is_handed_back_at_once_and_reaches_another_agent() -> TestResult {
    let server = NatsServer::shared();
    let ns = NatsServer::namespace();
    // A long ack wait: a surplus job that was not handed back would not
    // come back within the test.
    let mut slow = config(&server.url(), &ns)?;
    slow.layout.ack_wait = Duration::from_secs(60);
    let coordinator = NatsDispatch::new(slow.connect().await?);
    let linux = envelope("run-2", "build", "os=linux")?;
    let any = envelope("run-2", "lint", "any")?;
    // Register both label sets before anyone pulls.
    let layout = coordinator.layout().clone();
    let consumers = [
        layout.ensure_consumer(&linux.runs_on).await?,
        layout.ensure_consumer(&any.runs_on).await?,
    ];

    let first = NatsJobSource::new(slow.connect().await?, "a1", labels("os=linux"), 1).await?;
    let pulling = tokio::spawn(async move {
        let job = first.next().await;
        (first, job)
    });
    // Wait until the agent's pull requests are waiting on both consumers,
    // so that both jobs are delivered to it.
    for mut consumer in consumers {
        timeout(PATIENCE, async {
            while consumer.info().await.map_or(0, |i| i.num_waiting) == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await?;
    }
    coordinator.submit(linux.clone()).await?;
    coordinator.submit(any.clone()).await?;
    let (first, kept) = timeout(PATIENCE, pulling).await??;
    let kept = kept?;

    let second = NatsJobSource::new(slow.connect().await?, "a2", labels("os=linux"), 1).await?;
    let other = timeout(PATIENCE, second.next()).await??;
    let mut ids = [kept.envelope.id.clone(), other.envelope.id.clone()];
    ids.sort();
    let mut want = [linux.id.clone(), any.id.clone()];
    want.sort();
    assert_eq!(ids, want);
    // It went through the first agent and was handed back.
    assert_eq!(other.delivery, 2);
    kept.lease
        .finish(outcome(&kept.envelope.id, "a1", "e1", "ok"))
        .await?;
    other
        .lease
        .finish(outcome(&other.envelope.id, "a2", "e2", "ok"))
        .await?;

    // A lease dropped without an outcome (an agent stopping) hands its job
    // back at once, long before the ack wait.
    let third = envelope("run-2", "test", "os=linux")?;
    coordinator.submit(third.clone()).await?;
    let dropped = timeout(PATIENCE, second.next()).await??;
    assert_eq!(dropped.envelope.id, third.id);
    drop(dropped);
    let again = timeout(PATIENCE, first.next()).await??;
    assert_eq!(again.envelope.id, third.id);
    again
        .lease
        .finish(outcome(&third.id, "a1", "e3", "ok"))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_takes_the_first_job_of_a_new_label_set_without_polling_for_it() -> TestResult {
    let server = NatsServer::shared();
    let ns = NatsServer::namespace();
    // Periodic re-reads of `N-labelsets` so rare that only the watch can
    // tell the agent about a label set registered after it started.
    let mut rare = config(&server.url(), &ns)?;
    rare.layout.labelsets_refresh = Duration::from_secs(3600);
    let agent =
        NatsJobSource::new(rare.connect().await?, "a1", labels("os=linux,role=gpu"), 1).await?;
    let coordinator = NatsDispatch::new(rare.connect().await?);
    // A job for a label set the agent already pulls from, then one for a
    // set nobody registered yet.
    let known = envelope("run-ls", "first", "os=linux")?;
    coordinator.layout().ensure_consumer(&known.runs_on).await?;
    let waiting = tokio::spawn(async move {
        let job = agent.next().await;
        (agent, job)
    });
    coordinator.submit(known.clone()).await?;
    let (agent, first) = timeout(PATIENCE, waiting).await??;
    let first = first?;
    assert_eq!(first.envelope.id, known.id);
    first
        .lease
        .finish(outcome(&known.id, "a1", "e1", "ok"))
        .await?;

    let new = envelope("run-ls", "second", "role=gpu")?;
    let waiting = tokio::spawn(async move { agent.next().await });
    coordinator.submit(new.clone()).await?;
    let second = timeout(PATIENCE, waiting).await???;
    assert_eq!(second.envelope.id, new.id);
    second
        .lease
        .finish(outcome(&new.id, "a1", "e2", "ok"))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_over_the_message_limit_travels_through_the_blob_store() -> TestResult {
    let server = NatsServer::shared();
    let ns = NatsServer::namespace();
    let coordinator = connect_coordinator(&server.url(), &ns).await?;
    let agent = connect_agent(&server.url(), &ns, "a1", LabelSet::any(), 1).await?;
    let mut big = envelope("run-6", "big", "any")?;
    // 2 MiB of `with:`: twice the server's message limit.
    big.job.config = serde_json::json!({ "blob": "x".repeat(2 << 20) });
    coordinator.submit(big.clone()).await?;
    let taken = timeout(PATIENCE, agent.next()).await??;
    assert_eq!(taken.envelope, big);
    taken
        .lease
        .finish(outcome(&big.id, "a1", "e1", "ok"))
        .await?;
    Ok(())
}

/// Not a test by itself: the agent process of
/// `killing_the_agent_holding_a_job_redelivers_it_after_the_ack_wait`,
/// which runs this test binary again with `SLUICE_FLEET_CHILD` set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_agent_that_takes_one_job_and_hangs() -> TestResult {
    let Ok(spec) = std::env::var("SLUICE_FLEET_CHILD") else {
        return Ok(());
    };
    let (url, ns) = spec
        .split_once(' ')
        .ok_or("SLUICE_FLEET_CHILD: URL NAMESPACE")?;
    // Configured with a longer ack wait than the coordinator gave the
    // consumer (2 s): the lease must follow the consumer's.
    let mut relaxed = config(url, ns)?;
    relaxed.layout.ack_wait = Duration::from_secs(15);
    let source = NatsJobSource::new(relaxed.connect().await?, "child", LabelSet::any(), 1).await?;
    let job = source.next().await?;
    job.lease
        .event(started(&job.envelope.id, "child", "doomed"))
        .await;
    println!("took {}", job.envelope.id);
    // Hold the job (its lease is extended) until killed.
    tokio::time::sleep(Duration::from_secs(600)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_agent_holding_a_job_redelivers_it_after_the_ack_wait() -> TestResult {
    let server = NatsServer::shared();
    let ns = NatsServer::namespace();
    let coordinator = connect_coordinator(&server.url(), &ns).await?;
    let job = envelope("run-3", "deploy", "any")?;
    let id = job.id.clone();
    let mut events = coordinator.events(&id);
    coordinator.submit(job).await?;

    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "child_agent_that_takes_one_job_and_hangs",
            "--nocapture",
        ])
        .env("SLUICE_FLEET_CHILD", format!("{} {ns}", server.url()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("child stdout")?;
    let took = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("took "))
    });
    let took = timeout(PATIENCE, took).await??;
    assert_eq!(took, Some(format!("took {id}")));
    assert!(
        matches!(next_event(&mut events).await?, AgentEvent::Started { execution, .. } if execution == "doomed")
    );

    // While the child lives, its lease is extended past the 2 s ack wait:
    // another agent gets nothing.
    let other = connect_agent(&server.url(), &ns, "a2", LabelSet::any(), 1).await?;
    assert!(timeout(Duration::from_secs(3), other.next()).await.is_err());

    let status = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()?;
    assert!(status.success());
    child.wait()?;
    let again = timeout(PATIENCE, other.next()).await??;
    assert_eq!(again.envelope.id, id);
    assert!(again.delivery >= 2, "delivery {}", again.delivery);
    again.lease.event(started(&id, "a2", "second")).await;
    assert!(
        matches!(next_event(&mut events).await?, AgentEvent::Started { execution, .. } if execution == "second")
    );
    again
        .lease
        .finish(outcome(&id, "a2", "second", "ok"))
        .await?;
    assert!(
        matches!(next_event(&mut events).await?, AgentEvent::Finished(o) if o.execution == "second")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_crash_loses_no_job_outcome_or_blob() -> TestResult {
    let server = NatsServer::private();
    let ns = NatsServer::namespace();
    let coordinator = connect_coordinator(&server.url(), &ns).await?;
    let agent = connect_agent(&server.url(), &ns, "a1", LabelSet::any(), 1).await?;
    let blob = b"survives a crash".to_vec();
    let digest = sluice_fleet::blobs::sha256_digest(&blob);
    coordinator
        .blobs()
        .put(&digest, Box::new(std::io::Cursor::new(blob.clone())))
        .await?;
    let (held, queued) = (
        envelope("run-4", "a", "any")?,
        envelope("run-4", "b", "any")?,
    );
    let mut held_events = coordinator.events(&held.id);
    let mut queued_events = coordinator.events(&queued.id);
    coordinator.submit(held.clone()).await?;
    let taken = timeout(PATIENCE, agent.next()).await??;
    assert_eq!(taken.envelope.id, held.id);
    coordinator.submit(queued.clone()).await?;

    server.kill9_and_restart();

    // The held job's outcome gets through once the client has reconnected.
    taken
        .lease
        .finish(outcome(&held.id, "a1", "e1", "held"))
        .await?;
    assert!(
        matches!(next_event(&mut held_events).await?, AgentEvent::Finished(o) if o.execution == "e1")
    );
    let next = timeout(PATIENCE, agent.next()).await??;
    assert_eq!(next.envelope.id, queued.id);
    next.lease
        .finish(outcome(&queued.id, "a1", "e2", "queued"))
        .await?;
    assert!(
        matches!(next_event(&mut queued_events).await?, AgentEvent::Finished(o) if o.execution == "e2")
    );

    // A clean restart (SIGTERM) with a job in flight: the agent still sees
    // the job's cancel flag, raised after the restart.
    let last = envelope("run-4", "c", "any")?;
    coordinator.submit(last.clone()).await?;
    let taken = timeout(PATIENCE, agent.next()).await??;
    assert_eq!(taken.envelope.id, last.id);
    server.restart();
    coordinator.cancel(&last.id, "fail-fast").await?;
    timeout(PATIENCE, taken.lease.cancelled().cancelled()).await?;
    taken
        .lease
        .finish(outcome(&last.id, "a1", "e3", "cancelled"))
        .await?;

    let cas_dir = tempfile::tempdir()?;
    let cas = Cas::open(cas_dir.path())?;
    let size = coordinator.blobs().get_into(&cas, &digest).await?;
    assert_eq!(size, blob.len() as u64);
    assert_eq!(std::fs::read(cas.blob_path(&digest)?)?, blob);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_that_times_out_while_nats_is_down_is_sent_again_and_stored_once() -> TestResult {
    let server = NatsServer::private();
    let ns = NatsServer::namespace();
    let mut quick = config(&server.url(), &ns)?;
    quick.request_timeout = Duration::from_millis(500);
    let coordinator = std::sync::Arc::new(NatsDispatch::new(quick.connect().await?));
    // The run is followed and its label set's consumer exists already.
    coordinator
        .submit(envelope("run-7", "first", "any")?)
        .await?;

    server.stop();
    let second = envelope("run-7", "second", "any")?;
    let submitting = {
        let (coordinator, second) = (coordinator.clone(), second.clone());
        tokio::spawn(async move { coordinator.submit(second).await })
    };
    // Longer than one acknowledgement timeout.
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.start();
    let submitted = timeout(PATIENCE, submitting).await???;
    assert_eq!(submitted.id, second.id);
    // Both copies reached the server; it kept one.
    let mut jobs = coordinator.layout().jobs.clone();
    assert_eq!(jobs.info().await?.state.messages, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_are_checked_against_their_names_both_ways() -> TestResult {
    let server = NatsServer::shared();
    let ns = NatsServer::namespace();
    let layout = config(&server.url(), &ns)?.connect().await?;
    let coordinator = NatsDispatch::new(layout.clone());
    let blobs = coordinator.blobs();
    let cas_dir = tempfile::tempdir()?;
    let cas = Cas::open(cas_dir.path())?;

    // Round trip.
    let digest = sluice_fleet::blobs::sha256_digest(b"plugin bytes");
    assert!(!blobs.exists(&digest).await?);
    blobs.put(&digest, Box::new(&b"plugin bytes"[..])).await?;
    assert!(blobs.exists(&digest).await?);
    assert_eq!(blobs.get_into(&cas, &digest).await?, 12);

    // Uploading bytes under another digest is refused and leaves nothing.
    let forged = sluice_fleet::blobs::sha256_digest(b"what the job names");
    let err = blobs.put(&forged, Box::new(&b"evil"[..])).await.err();
    assert!(
        matches!(&err, Some(FleetError::BlobDigestMismatch { digest, .. }) if *digest == forged),
        "{err:?}"
    );
    assert!(!blobs.exists(&forged).await?);

    // Someone with write access to the bucket stores other bytes under a
    // name: the download is refused and nothing lands in the CAS.
    layout.cas.put(forged.as_str(), &mut &b"evil"[..]).await?;
    let err = blobs.get_into(&cas, &forged).await.err();
    assert!(
        matches!(&err, Some(FleetError::BlobDigestMismatch { digest, .. }) if *digest == forged),
        "{err:?}"
    );
    assert!(!cas.blob_path(&forged)?.exists());

    // Missing, and not a digest at all.
    let missing = sluice_fleet::blobs::sha256_digest(b"never stored");
    let err = blobs.get_into(&cas, &missing).await.err();
    assert!(
        matches!(err, Some(FleetError::BlobNotFound { .. })),
        "{err:?}"
    );
    let err = blobs
        .put("sha256:../../etc", Box::new(&b"x"[..]))
        .await
        .err();
    assert!(matches!(err, Some(FleetError::BadDigest { .. })), "{err:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_nobody_can_finish_is_reported_exhausted_and_removed() -> TestResult {
    let server = NatsServer::shared();
    let ns = NatsServer::namespace();
    let mut twice = config(&server.url(), &ns)?;
    twice.layout.max_deliver = 2;
    let coordinator = NatsDispatch::new(twice.connect().await?);
    let job = envelope("run-5", "flaky", "any")?;
    let id = job.id.clone();
    let mut events = coordinator.events(&id);
    coordinator.submit(job).await?;
    let consumer = coordinator
        .layout()
        .ensure_consumer(&LabelSet::any())
        .await?;
    // Two deliveries handed back at once (as a crashing agent would leave them).
    for _ in 0..2 {
        let mut batch = consumer
            .batch()
            .max_messages(1)
            .expires(Duration::from_secs(5))
            .messages()
            .await?;
        let message = timeout(PATIENCE, batch.next())
            .await?
            .ok_or("no delivery")??;
        message
            .ack_with(async_nats::jetstream::AckKind::Nak(None))
            .await?;
        drop(batch);
    }
    // JetStream notices the limit when it would deliver the job again: an
    // agent pulling (here, one more request) triggers the advisory.
    let mut batch = consumer
        .batch()
        .max_messages(1)
        .expires(Duration::from_secs(1))
        .messages()
        .await?;
    assert!(timeout(PATIENCE, batch.next()).await?.is_none());
    assert!(matches!(
        next_event(&mut events).await?,
        AgentEvent::Exhausted { deliveries: 2, .. }
    ));
    // The dead job does not stay in the queue.
    let mut jobs = coordinator.layout().jobs.clone();
    timeout(PATIENCE, async {
        while jobs.info().await.map_or(1, |i| i.state.messages) != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await?;
    Ok(())
}
