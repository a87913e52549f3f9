//! A real agent (engine, policy, warm cache, job loop) behind a real unix
//! socket, driven by the real coordinator half (`UdsDispatch`) in one
//! process: jobs pass with their artifacts in the coordinator's CAS,
//! concurrent jobs of one run keep their outputs apart, plugins stay warm,
//! and the agent's own policy, ceiling and secrets refuse what they must.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use sluice_agent::{Agent, AgentConfig};
use sluice_engine::executor::{JobGrants, JobPlugin, StageFailure, StageJob};
use sluice_fleet::proto::{AgentEvent, JobEnvelope, JobId, OutcomeEnvelope, PluginBlobs, PROTOCOL};
use sluice_fleet::transport::{Dispatch, JobSource};
use sluice_fleet::uds::{Describer, UdsDispatch, UdsJobSource};
use sluice_pipeline::WorkspaceAccess;
use sluice_record::artifacts::Cas;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dist(name: &str) -> PathBuf {
    root().join("dist/plugins").join(name)
}

fn digest_of(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).expect("plugin");
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// An agent serving a socket in `dir`, and a coordinator connected to it.
struct Setup {
    agent: Arc<Agent>,
    coordinator: UdsDispatch,
    run_dir: PathBuf,
    cas: Cas,
    stop: CancellationToken,
    served: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// `policy` is the agent's operator policy (`None`: `allow-unsigned`).
async fn setup(policy: Option<&str>, extra: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tmp");
    let mut config = format!(
        "name: a1\nconcurrency: 2\ncache-dir: {}\n{extra}",
        dir.path().join("agent").display()
    );
    match policy {
        Some(text) => {
            std::fs::write(dir.path().join("policy.yaml"), text).expect("policy");
            config.push_str("policy: policy.yaml\n");
        }
        None => config.push_str("allow-unsigned: true\n"),
    }
    let config = AgentConfig::parse(&config, &dir.path().join("agent.yaml")).expect("config");
    let agent = Agent::start(config).expect("agent");
    let socket = dir.path().join("s/agent.sock");
    let describer: Arc<dyn Describer> = agent.clone();
    let source: Arc<dyn JobSource> = Arc::new(
        UdsJobSource::bind(&socket, "a1", "0.1.0", Default::default(), describer)
            .await
            .expect("bind"),
    );
    let stop = CancellationToken::new();
    let served = {
        let (agent, stop) = (agent.clone(), stop.clone());
        tokio::spawn(async move {
            agent.serve(source, stop).await.expect("serve");
        })
    };
    let run_dir = dir.path().join("state/runs/r1");
    std::fs::create_dir_all(&run_dir).expect("run dir");
    let cas = Cas::open(&dir.path().join("state/cas")).expect("cas");
    let coordinator = UdsDispatch::connect(&socket, "test:1", &cas, &run_dir)
        .await
        .expect("connect");
    Setup {
        agent,
        coordinator,
        run_dir,
        cas,
        stop,
        served,
        _dir: dir,
    }
}

fn job(stage: &str, plugin: &Path, config: serde_json::Value) -> JobEnvelope {
    let digest = digest_of(plugin);
    let job = StageJob {
        run_id: "20261207-101943-5b3f59".into(),
        pipeline: "p".into(),
        stage: stage.into(),
        attempt: 1,
        environment: None,
        plugin: JobPlugin {
            reference: "plugins/fixture.wasm".into(),
            digest: digest.clone(),
        },
        config,
        workspace: PathBuf::from("/nonexistent"),
        grants: JobGrants {
            workspace: WorkspaceAccess::None,
            env: vec![],
            network: vec![],
            exec: vec![],
            secrets: vec![],
            tls_ca: vec![],
            memory: 256 << 20,
            output: 1 << 20,
            artifacts: 16 << 20,
        },
        inputs: vec![],
        upstream: vec![],
        timeout: Duration::from_secs(60),
        grace_period: Duration::from_secs(1),
        log: format!("logs/{stage}.log"),
    };
    JobEnvelope {
        protocol: PROTOCOL,
        id: JobId::of(&job, 0).expect("id"),
        plugin: PluginBlobs {
            digest,
            bundle: None,
            attestations: None,
            path: Some(plugin.to_path_buf()),
        },
        job,
        runs_on: Default::default(),
        workspace: Default::default(),
        coordinator: "test:1".into(),
    }
}

/// Submit `job` and wait for its outcome; also returns the events before
/// it.
async fn run(s: &Setup, job: JobEnvelope) -> (OutcomeEnvelope, Vec<AgentEvent>) {
    let mut events = s.coordinator.events(&job.id);
    s.coordinator.submit(job).await.expect("submit");
    let mut seen = Vec::new();
    let wait = async {
        while let Some(e) = events.next().await {
            match e {
                AgentEvent::Finished(outcome) => return outcome,
                other => seen.push(other),
            }
        }
        panic!("the events ended without an outcome");
    };
    let outcome = tokio::time::timeout(Duration::from_secs(120), wait)
        .await
        .expect("an outcome in time");
    (outcome, seen)
}

async fn stop(s: Setup) {
    s.stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), s.served)
        .await
        .expect("the agent stops")
        .expect("serve task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_pass_stay_warm_and_keep_their_outputs_apart() {
    let s = setup(None, "").await;
    let fixture = dist("fixture.wasm");
    let described = s
        .coordinator
        .describe(&digest_of(&fixture), &fixture)
        .await
        .expect("connection")
        .expect("described");
    assert_eq!(described.name, "fixture");
    assert_eq!(described.wit, "0.2.0");
    assert!(
        s.agent.plugins().contains(&digest_of(&fixture)),
        "warm after describe"
    );

    let (outcome, events) = run(
        &s,
        job(
            "one",
            &fixture,
            serde_json::json!({"mode": "pass", "text": "one"}),
        ),
    )
    .await;
    assert_eq!(outcome.agent, "a1");
    assert!(matches!(events.first(), Some(AgentEvent::Started { agent, .. }) if agent == "a1"));
    assert!(
        events.iter().any(
            |e| matches!(e, AgentEvent::Log { line, .. } if line.contains("wrote greeting.txt"))
        ),
        "live log lines are forwarded: {events:?}"
    );
    let report = outcome.outcome.result.expect("passed");
    assert_eq!(outcome.outcome.agent.as_deref(), Some("a1"));
    let greeting = report
        .artifacts
        .iter()
        .find(|a| a.name == "greeting.txt")
        .expect("greeting.txt");
    s.cas
        .verify(greeting)
        .expect("the artifact is in the coordinator's CAS");
    let log = std::fs::read_to_string(s.run_dir.join("logs/one.log")).expect("log");
    assert!(log.contains("wrote greeting.txt"), "{log}");

    // Two jobs of one run at once: each keeps its own outputs.
    let (a, b) = tokio::join!(
        run(
            &s,
            job(
                "two",
                &fixture,
                serde_json::json!({"mode": "pass", "text": "two"})
            )
        ),
        run(
            &s,
            job(
                "three",
                &fixture,
                serde_json::json!({"mode": "pass", "text": "three"})
            )
        ),
    );
    for (outcome, text) in [(a.0, "two"), (b.0, "three")] {
        let report = outcome.outcome.result.expect("passed");
        let greeting = report
            .artifacts
            .iter()
            .find(|x| x.name == "greeting.txt")
            .expect("greeting");
        let path = s.cas.blob_path(&greeting.digest).expect("path");
        assert_eq!(std::fs::read_to_string(path).expect("blob"), text);
    }
    assert_eq!(s.agent.plugins().len(), 1, "one plugin, compiled once");
    // Counted once the lease is settled, a moment after the coordinator
    // has the outcome.
    for _ in 0..100 {
        if s.agent.jobs_done() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.agent.jobs_done(), 3);
    // Jobs reuse their work trees: one per job running at once (two),
    // however many jobs ran.
    let trees = std::fs::read_dir(s.run_dir.join("work/.agent"))
        .expect("work trees")
        .count();
    assert!(trees <= 2, "{trees} work trees for 3 jobs on 2 slots");
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_policy_ceiling_and_secrets_refuse() {
    let other = sluice_trust::generate(b"pw").expect("key");
    let dir = tempfile::tempdir().expect("tmp");
    let other_key = dir.path().join("other.pub");
    std::fs::write(&other_key, &other.public_pem).expect("key");
    let demo = root().join("dist/keys/demo.pub");
    let policy = |key: &Path| {
        format!(
            "mode: enforce\nno-match: deny\nrules:\n  - name: ops-signed\n    match: [\"**\"]\n    authorities:\n      - key: {}\n",
            key.display()
        )
    };
    let fixture = dist("fixture.wasm");
    let refused = |outcome: OutcomeEnvelope| match outcome.outcome.result {
        Err(StageFailure::Refused { agent, reasons }) => (agent, reasons),
        other => panic!("not refused: {other:?}"),
    };

    // Signed, but by a key the agent does not trust.
    let s = setup(Some(&policy(&other_key)), "").await;
    let described = s
        .coordinator
        .describe(&digest_of(&fixture), &fixture)
        .await
        .expect("connection");
    assert!(described.is_err(), "{described:?}");
    let (outcome, _) = run(&s, job("s", &fixture, serde_json::json!({"mode": "pass"}))).await;
    let (agent, reasons) = refused(outcome);
    assert_eq!(agent, "a1");
    assert!(
        reasons[0].contains("operator policy") && reasons[0].contains("ops-signed"),
        "{reasons:?}"
    );
    assert!(
        !s.agent.plugins().contains(&digest_of(&fixture)),
        "never compiled"
    );
    stop(s).await;

    // Trusted, but over the ceiling, or naming a secret it does not hold.
    let s = setup(
        Some(&policy(&demo)),
        "accept: { max-grants: { exec: [sleep] } }\nsecrets: { HELD: { env: PATH } }\n",
    )
    .await;
    let mut over = job("exec", &fixture, serde_json::json!({"mode": "pass"}));
    over.job.grants.exec = vec!["sleep".into(), "curl".into()];
    let (_, reasons) = refused(run(&s, over).await.0);
    assert!(
        reasons[0].contains("accept.max-grants") && reasons[0].contains("curl"),
        "{reasons:?}"
    );
    let mut secret = job("secret", &fixture, serde_json::json!({"mode": "pass"}));
    secret.job.grants.secrets = vec!["HELD".into(), "NPM_TOKEN".into()];
    let (_, reasons) = refused(run(&s, secret).await.0);
    assert!(
        reasons[0].contains("holds no secret `NPM_TOKEN`"),
        "{reasons:?}"
    );
    // A file that is not what the job's digest says.
    let mut tampered = job("tampered", &fixture, serde_json::json!({"mode": "pass"}));
    tampered.plugin.path = Some(dist("noop.wasm"));
    let (_, reasons) = refused(run(&s, tampered).await.0);
    assert!(reasons[0].contains("tampered"), "{reasons:?}");
    // And the same agent runs what it accepts.
    let (ok, _) = run(&s, job("ok", &fixture, serde_json::json!({"mode": "pass"}))).await;
    assert!(ok.outcome.result.is_ok(), "{:?}", ok.outcome.result);
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_agent_cancels_its_running_job_and_settles_it() {
    let s = setup(None, "").await;
    let fixture = dist("fixture.wasm");
    let long = job(
        "long",
        &fixture,
        serde_json::json!({"mode": "sleep", "seconds": 30}),
    );
    let mut events = s.coordinator.events(&long.id);
    s.coordinator.submit(long).await.expect("submit");
    // Wait until it runs, then stop the agent (what SIGTERM does).
    loop {
        match tokio::time::timeout(Duration::from_secs(60), events.next()).await {
            Ok(Some(AgentEvent::Started { .. })) => break,
            Ok(Some(_)) => {}
            other => panic!("no Started: {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = std::time::Instant::now();
    s.stop.cancel();
    let outcome = loop {
        match tokio::time::timeout(Duration::from_secs(20), events.next()).await {
            Ok(Some(AgentEvent::Finished(outcome))) => break outcome,
            Ok(Some(_)) => {}
            other => panic!("no outcome after the stop: {other:?}"),
        }
    };
    assert!(
        matches!(outcome.outcome.result, Err(StageFailure::Cancelled { .. })),
        "{:?}",
        outcome.outcome.result
    );
    // Within the job's grace period (1 s) and a margin, not its 30 s.
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopped.elapsed()
    );
    tokio::time::timeout(Duration::from_secs(10), s.served)
        .await
        .expect("the agent stops")
        .expect("serve task");
}
