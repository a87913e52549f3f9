//! The unix socket between two real ends in one process: framing limits,
//! hostile frames, protocol versions, peers that leave mid-job.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use tokio::net::UnixStream;
use tokio_util::codec::Framed;

use sluice_engine::executor::{
    JobGrants, JobPlugin, LogReport, StageFailure, StageJob, StageOutcome, StageReport,
};
use sluice_pipeline::WorkspaceAccess;
use sluice_record::artifacts::Cas;

use super::*;
use crate::proto::{
    AgentEvent, JobEnvelope, JobId, OutcomeEnvelope, PluginBlobs, PluginDescription,
    WorkspaceSource, PROTOCOL,
};
use crate::transport::{Dispatch, JobSource};
use crate::FleetError;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Describes every plugin as `fake`, except digests starting `sha256:bad`.
struct FakeDescriber;

impl Describer for FakeDescriber {
    fn describe<'a>(
        &'a self,
        digest: &'a str,
        _path: &'a Path,
    ) -> BoxFuture<'a, Result<PluginDescription, String>> {
        Box::pin(async move {
            if digest.starts_with("sha256:bad") {
                return Err("refused by the agent's policy".to_owned());
            }
            Ok(PluginDescription {
                name: "fake".into(),
                version: "1.0.0".into(),
                kind: "test".into(),
                wit: "0.2.0".into(),
                description: String::new(),
                config_schema: None,
                capabilities: vec![],
            })
        })
    }
}

pub(crate) fn stage_job(stage: &str) -> StageJob {
    StageJob {
        run_id: "20261207-101943-5b3f59".into(),
        pipeline: "p".into(),
        stage: stage.into(),
        attempt: 1,
        environment: None,
        plugin: JobPlugin {
            reference: "plugins/x.wasm".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
        },
        config: serde_json::json!({}),
        workspace: "/w".into(),
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

fn envelope(stage: &str) -> JobEnvelope {
    let job = stage_job(stage);
    JobEnvelope {
        protocol: PROTOCOL,
        id: JobId::of(&job, 0).expect("job id"),
        plugin: PluginBlobs {
            digest: job.plugin.digest.clone(),
            bundle: None,
            attestations: None,
            path: Some("/plugins/x.wasm".into()),
        },
        job,
        runs_on: Default::default(),
        workspace: WorkspaceSource::None,
        coordinator: "test:1".into(),
    }
}

fn passed(id: &JobId, agent: &str) -> OutcomeEnvelope {
    OutcomeEnvelope {
        protocol: PROTOCOL,
        id: id.clone(),
        agent: agent.into(),
        execution: "e1".into(),
        outcome: StageOutcome::local(
            Ok(StageReport {
                summary: "ok".into(),
                metrics: vec![],
                gates: vec![],
                outputs: vec![],
                artifacts: vec![],
            }),
            LogReport::default(),
        ),
        log: None,
        workspace_delta: None,
    }
}

struct Ends {
    dir: tempfile::TempDir,
    source: UdsJobSource,
}

async fn agent() -> Result<Ends, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("sock/agent.sock");
    let source = UdsJobSource::bind(
        &socket,
        "a1",
        "0.1.0",
        "os=linux".parse()?,
        Arc::new(FakeDescriber),
    )
    .await?;
    Ok(Ends { dir, source })
}

async fn coordinator(ends: &Ends) -> Result<UdsDispatch, FleetError> {
    let cas = Cas::open(&ends.dir.path().join("cas"))?;
    UdsDispatch::connect(
        ends.source.socket(),
        "test:1",
        &cas,
        &ends.dir.path().join("run"),
    )
    .await
}

/// A raw connection that has said `Hello` and read `Welcome`.
async fn raw_after_hello(
    ends: &Ends,
) -> Result<Framed<UnixStream, tokio_util::codec::LengthDelimitedCodec>, Box<dyn std::error::Error>>
{
    let mut raw = Framed::new(UnixStream::connect(ends.source.socket()).await?, codec());
    raw.send(encode(&hello(PROTOCOL))?).await?;
    let welcome: Frame = serde_json::from_slice(&raw.next().await.ok_or("no answer")??)?;
    assert!(matches!(welcome, Frame::Welcome { .. }), "{welcome:?}");
    Ok(raw)
}

fn hello(protocol: u32) -> Frame {
    Frame::Hello {
        protocol,
        coordinator: "raw:1".into(),
        cas: "/tmp/cas".into(),
        run_dir: "/tmp/run".into(),
    }
}

/// The next frame, which must be `Refused`; its message. The connection
/// must then close.
async fn refused(
    raw: &mut Framed<UnixStream, tokio_util::codec::LengthDelimitedCodec>,
) -> Result<String, Box<dyn std::error::Error>> {
    let frame: Frame = serde_json::from_slice(&raw.next().await.ok_or("no answer")??)?;
    let Frame::Refused { message } = frame else {
        return Err(format!("expected Refused, got {frame:?}").into());
    };
    let end = tokio::time::timeout(Duration::from_secs(5), raw.next()).await?;
    assert!(end.is_none(), "the connection must close after Refused");
    Ok(message)
}

#[tokio::test]
async fn a_job_goes_out_and_its_events_come_back_in_order() -> TestResult {
    let ends = agent().await?;
    let dispatch = coordinator(&ends).await?;
    assert_eq!(dispatch.agent().name, "a1");
    assert_eq!(dispatch.agent().labels.to_string(), "os=linux");
    let mode = std::fs::metadata(ends.source.socket())?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is the agent user's only");

    let described = dispatch
        .describe(&format!("sha256:{}", "a".repeat(64)), Path::new("x.wasm"))
        .await?;
    assert_eq!(described.map(|d| d.name), Ok("fake".to_owned()));
    let refused = dispatch
        .describe(
            &format!("sha256:bad{}", "0".repeat(61)),
            Path::new("y.wasm"),
        )
        .await?;
    assert_eq!(refused, Err("refused by the agent's policy".to_owned()));

    let job = envelope("build");
    let id = job.id.clone();
    let mut events = dispatch.events(&id);
    let submitted = dispatch.submit(job.clone()).await?;
    assert!(!submitted.duplicate);
    assert!(dispatch.submit(job).await?.duplicate, "sent once");

    let incoming = ends.source.next().await?;
    assert_eq!(incoming.envelope.id, id);
    let shared = incoming.lease.shared_run().ok_or("shared run")?;
    assert_eq!(shared.cas, ends.dir.path().join("cas"));
    assert_eq!(shared.run_dir, ends.dir.path().join("run"));
    incoming
        .lease
        .event(AgentEvent::Started {
            id: id.clone(),
            agent: "a1".into(),
            execution: "e1".into(),
            delivery: 1,
        })
        .await;
    incoming
        .lease
        .event(AgentEvent::Log {
            id: id.clone(),
            line: "hello".into(),
            level: None,
            fields: vec![],
        })
        .await;
    incoming.lease.finish(passed(&id, "a1")).await?;
    // A second outcome of the same job is dropped by the dispatch.
    incoming.lease.finish(passed(&id, "a1")).await?;

    let kinds: Vec<&'static str> = events
        .by_ref()
        .map(|e| match e {
            AgentEvent::Started { .. } => "started",
            AgentEvent::Log { .. } => "log",
            AgentEvent::Finished(_) => "finished",
            _ => "other",
        })
        .collect()
        .await;
    assert_eq!(kinds, ["started", "log", "finished"]);
    Ok(())
}

#[tokio::test]
async fn cancel_reaches_the_agent_and_a_coordinator_leaving_cancels_its_jobs() -> TestResult {
    let ends = agent().await?;
    let dispatch = coordinator(&ends).await?;
    let (a, b) = (envelope("a"), envelope("b"));
    dispatch.submit(a.clone()).await?;
    dispatch.submit(b.clone()).await?;
    let first = ends.source.next().await?;
    let second = ends.source.next().await?;
    assert_eq!(first.envelope.id, a.id);
    dispatch.cancel(&a.id, "fail-fast").await?;
    tokio::time::timeout(Duration::from_secs(5), first.lease.cancelled().cancelled()).await?;
    assert!(!second.lease.cancelled().is_cancelled());

    drop(dispatch);
    tokio::time::timeout(Duration::from_secs(5), second.lease.cancelled().cancelled()).await?;
    let err = second
        .lease
        .finish(passed(&b.id, "a1"))
        .await
        .err()
        .ok_or("nobody is there to take the outcome")?;
    assert!(matches!(err, FleetError::Closed { .. }), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn an_agent_leaving_mid_job_ends_the_jobs_events_with_a_reason() -> TestResult {
    let ends = agent().await?;
    let dispatch = coordinator(&ends).await?;
    let job = envelope("build");
    let mut events = dispatch.events(&job.id);
    dispatch.submit(job).await?;
    let incoming = ends.source.next().await?;
    // A draining agent tells its running jobs first …
    ends.source.shutdown();
    tokio::time::timeout(
        Duration::from_secs(5),
        incoming.lease.cancelled().cancelled(),
    )
    .await?;
    // … and this one ends without an outcome (its task died).
    drop(incoming);
    let rest: Vec<AgentEvent> =
        tokio::time::timeout(Duration::from_secs(5), events.by_ref().collect()).await?;
    assert!(rest.is_empty(), "{rest:?}");
    let why = dispatch.closed_because().ok_or("a reason")?;
    assert!(why.contains("a1"), "{why}");
    let err = dispatch
        .submit(envelope("later"))
        .await
        .err()
        .ok_or("the connection is gone")?;
    assert!(err.to_string().contains("agent a1"), "{err}");
    let err = ends.source.next().await.err().ok_or("shut down")?;
    assert!(matches!(err, FleetError::Closed { .. }), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn an_over_size_frame_is_refused_and_the_connection_closed() -> TestResult {
    let ends = agent().await?;
    let mut raw = UnixStream::connect(ends.source.socket()).await?;
    // Only the length prefix of a 17 MiB frame: the agent must refuse it
    // from the header, without waiting for (or buffering) the body.
    use tokio::io::AsyncWriteExt;
    raw.write_all(&(17u32 << 20).to_be_bytes()).await?;
    let mut raw = Framed::new(raw, codec());
    let message = refused(&mut raw).await?;
    assert!(message.contains("over the 16 MiB limit"), "{message}");

    // The same after a good Hello.
    let mut raw = raw_after_hello(&ends).await?;
    raw.get_mut()
        .write_all(&(17u32 << 20).to_be_bytes())
        .await?;
    let message = refused(&mut raw).await?;
    assert!(message.contains("over the 16 MiB limit"), "{message}");
    Ok(())
}

#[tokio::test]
async fn a_frame_that_is_not_json_is_refused_and_the_connection_closed() -> TestResult {
    let ends = agent().await?;
    let mut raw = Framed::new(UnixStream::connect(ends.source.socket()).await?, codec());
    raw.send(Bytes::from_static(b"GET / HTTP/1.1")).await?;
    let message = refused(&mut raw).await?;
    assert!(message.contains("not a sluice frame"), "{message}");

    let mut raw = raw_after_hello(&ends).await?;
    raw.send(Bytes::from_static(b"{\"frame\":\"job\",\"id\":"))
        .await?;
    let message = refused(&mut raw).await?;
    assert!(message.contains("not a sluice frame"), "{message}");

    // A frame of the wrong direction.
    let mut raw = raw_after_hello(&ends).await?;
    raw.send(encode(&Frame::Refused {
        message: "x".into(),
    })?)
    .await?;
    let message = refused(&mut raw).await?;
    assert!(message.contains("may not send Refused"), "{message}");

    // The agent still serves others.
    let dispatch = coordinator(&ends).await?;
    assert_eq!(dispatch.agent().name, "a1");
    Ok(())
}

#[tokio::test]
async fn a_protocol_mismatch_is_answered_clearly_on_both_sides() -> TestResult {
    let ends = agent().await?;
    let mut raw = Framed::new(UnixStream::connect(ends.source.socket()).await?, codec());
    raw.send(encode(&hello(PROTOCOL + 1))?).await?;
    let message = refused(&mut raw).await?;
    assert!(
        message.contains(&format!("speaks fleet protocol {}", PROTOCOL + 1))
            && message.contains("upgrade this agent"),
        "{message}"
    );

    // An agent of another protocol, as the coordinator sees it.
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("old.sock");
    let listener = tokio::net::UnixListener::bind(&socket)?;
    tokio::spawn(async move {
        if let Ok((stream, _)) = listener.accept().await {
            let mut f = Framed::new(stream, codec());
            let _ = f.next().await;
            let welcome = Frame::Welcome {
                protocol: PROTOCOL + 1,
                agent: "future".into(),
                version: "9.0.0".into(),
                labels: Default::default(),
            };
            if let Ok(bytes) = encode(&welcome) {
                let _ = f.send(bytes).await;
            }
        }
    });
    let cas = Cas::open(&dir.path().join("cas"))?;
    let err = UdsDispatch::connect(&socket, "c:1", &cas, dir.path())
        .await
        .err()
        .ok_or("must refuse another protocol")?;
    assert!(matches!(err, FleetError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("upgrade this sluice"), "{err}");

    // The CAS and run directory must be absolute: the agent's working
    // directory is not the coordinator's.
    let mut raw = Framed::new(UnixStream::connect(ends.source.socket()).await?, codec());
    raw.send(encode(&Frame::Hello {
        protocol: PROTOCOL,
        coordinator: "raw:1".into(),
        cas: "state/cas".into(),
        run_dir: "/tmp/run".into(),
    })?)
    .await?;
    let message = refused(&mut raw).await?;
    assert!(message.contains("must be absolute paths"), "{message}");

    // A coordinator whose agent refuses says so.
    let err = {
        let mut other = Framed::new(UnixStream::connect(ends.source.socket()).await?, codec());
        other
            .send(encode(&Frame::Cancel {
                id: envelope("x").id,
                reason: "x".into(),
            })?)
            .await?;
        refused(&mut other).await?
    };
    assert!(
        err.contains("first frame must be Hello, not Cancel"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn the_socket_path_is_checked_before_listening() -> TestResult {
    let ends = agent().await?;
    // A live agent keeps its socket.
    let err = UdsJobSource::bind(
        ends.source.socket(),
        "a2",
        "0.1.0",
        Default::default(),
        Arc::new(FakeDescriber),
    )
    .await
    .err()
    .ok_or("a live socket must not be taken over")?;
    assert!(
        err.to_string().contains("another agent is listening"),
        "{err}"
    );

    // A stale socket (its agent died without cleaning up) is replaced.
    let dir = tempfile::tempdir()?;
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale)?);
    assert!(stale.exists());
    let source = UdsJobSource::bind(
        &stale,
        "a3",
        "0.1.0",
        Default::default(),
        Arc::new(FakeDescriber),
    )
    .await?;
    let cas = Cas::open(&dir.path().join("cas"))?;
    let dispatch = UdsDispatch::connect(&stale, "c:1", &cas, dir.path()).await?;
    assert_eq!(dispatch.agent().name, "a3");
    drop(source);
    assert!(
        !stale.exists(),
        "the agent removes its socket when it stops"
    );

    // Any other file is left alone.
    let file = dir.path().join("file");
    std::fs::write(&file, b"keep me")?;
    let err = UdsJobSource::bind(
        &file,
        "a4",
        "0.1.0",
        Default::default(),
        Arc::new(FakeDescriber),
    )
    .await
    .err()
    .ok_or("a regular file must not be replaced")?;
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&file)?, b"keep me");

    // Nobody listening: the coordinator's error says what to start.
    let err = UdsDispatch::connect(&dir.path().join("none.sock"), "c:1", &cas, dir.path())
        .await
        .err()
        .ok_or("nothing listens")?;
    assert!(err.to_string().contains("sluice agent --listen"), "{err}");
    Ok(())
}

#[test]
fn only_the_agents_own_user_may_connect() {
    // Connecting as another user needs root to switch users, so the check
    // is tested on its own; `serve` calls it with `SO_PEERCRED`'s uid.
    assert_eq!(server::peer_refusal(1000, Ok(1000)), None);
    let message = server::peer_refusal(1000, Ok(0)).unwrap_or_default();
    assert!(
        message.contains("uid 0 connected")
            && message.contains("(uid 1000) serves only its own user"),
        "{message}"
    );
    let message =
        server::peer_refusal(1000, Err(std::io::Error::other("EPERM"))).unwrap_or_default();
    assert!(message.contains("could not be read"), "{message}");
}

#[tokio::test]
async fn a_draining_agent_still_delivers_the_outcomes_of_its_running_jobs() -> TestResult {
    let ends = agent().await?;
    let dispatch = coordinator(&ends).await?;
    let job = envelope("build");
    let mut events = dispatch.events(&job.id);
    dispatch.submit(job.clone()).await?;
    let incoming = ends.source.next().await?;
    ends.source.shutdown();
    tokio::time::timeout(
        Duration::from_secs(5),
        incoming.lease.cancelled().cancelled(),
    )
    .await?;
    let mut cancelled = passed(&job.id, "a1");
    cancelled.outcome.result = Err(StageFailure::Cancelled { in_grace: true });
    incoming.lease.finish(cancelled).await?;
    drop(incoming);
    let got: Vec<AgentEvent> =
        tokio::time::timeout(Duration::from_secs(5), events.by_ref().collect()).await?;
    assert!(
        matches!(&got[..], [AgentEvent::Finished(o)] if o.outcome.result == Err(StageFailure::Cancelled { in_grace: true })),
        "{got:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_job_of_another_protocol_is_answered_with_a_setup_failure() -> TestResult {
    let ends = agent().await?;
    let dispatch = coordinator(&ends).await?;
    let mut job = envelope("build");
    job.protocol = PROTOCOL + 1;
    let mut events = dispatch.events(&job.id);
    dispatch.submit(job).await?;
    let Some(AgentEvent::Finished(outcome)) =
        tokio::time::timeout(Duration::from_secs(5), events.next()).await?
    else {
        return Err("expected an outcome".into());
    };
    let Err(StageFailure::Setup { message }) = &outcome.outcome.result else {
        return Err(format!("expected a setup failure, got {outcome:?}").into());
    };
    assert!(
        message.contains(&format!("the job is {}", PROTOCOL + 1)) && message.contains("upgrade"),
        "{message}"
    );
    Ok(())
}

/// A real peer of another user, when the tests run as root (they can start
/// a process as `nobody`); otherwise the check is covered by
/// `only_the_agents_own_user_may_connect` alone.
#[tokio::test]
async fn a_peer_of_another_user_is_refused() -> TestResult {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self")?.uid() != 0 {
        eprintln!(
            "not root: cannot start a peer as another user; the uid check is tested without one"
        );
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    // Reachable by everyone, so that the agent's own check is what refuses.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let socket = dir.path().join("agent.sock");
    let source = UdsJobSource::bind(
        &socket,
        "a1",
        "0.1.0",
        Default::default(),
        Arc::new(FakeDescriber),
    )
    .await?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
    let client = "import socket,sys\n\
        s=socket.socket(socket.AF_UNIX)\n\
        s.settimeout(10)\n\
        s.connect(sys.argv[1])\n\
        data=b''\n\
        while True:\n\
        \x20   chunk=s.recv(65536)\n\
        \x20   if not chunk: break\n\
        \x20   data+=chunk\n\
        print(data[4:].decode())\n";
    let out = tokio::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            client,
        ])
        .arg(&socket)
        .output()
        .await?;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frame: Frame = serde_json::from_str(said.trim())?;
    let Frame::Refused { message } = frame else {
        return Err(format!("expected Refused, got {frame:?}").into());
    };
    assert!(
        message.contains("uid 65534 connected") && message.contains("serves only its own user"),
        "{message}"
    );
    // Its own user is still served.
    let cas = Cas::open(&dir.path().join("cas"))?;
    let dispatch = UdsDispatch::connect(&socket, "c:1", &cas, dir.path()).await?;
    assert_eq!(dispatch.agent().name, "a1");
    drop(source);
    Ok(())
}
