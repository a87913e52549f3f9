//! The orchestrator with a fake executor: what it resolves into a job,
//! what it decides without running anything, and what it writes after.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::*;
use crate::executor::{LogReport, LostExecution, OutcomeFuture, StageOutcome, TrapKind};
use sluice_record::artifacts::ArtifactRecord;
use tokio_util::sync::CancellationToken;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// What the fake answers for a job.
type Answer = Box<dyn Fn(&StageJob) -> Result<StageReport, StageFailure> + Send + Sync>;

/// Records every job and note; answers with `answer`.
struct FakeExecutor {
    jobs: Mutex<Vec<StageJob>>,
    notes: Mutex<Vec<(String, String, String)>>,
    answer: Answer,
    /// When set, answers as a remote executor: this agent ran the job,
    /// after these executions were lost.
    remote: Mutex<Option<(String, Vec<LostExecution>)>>,
}

impl FakeExecutor {
    fn new(answer: Answer) -> Arc<FakeExecutor> {
        Arc::new(FakeExecutor {
            jobs: Mutex::new(Vec::new()),
            notes: Mutex::new(Vec::new()),
            answer,
            remote: Mutex::new(None),
        })
    }

    fn jobs(&self) -> Vec<StageJob> {
        self.jobs.lock().map(|j| j.clone()).unwrap_or_default()
    }

    fn notes(&self) -> Vec<(String, String, String)> {
        self.notes.lock().map(|n| n.clone()).unwrap_or_default()
    }
}

impl Executor for FakeExecutor {
    fn run(
        &self,
        job: StageJob,
        _cancel: tokio_util::sync::CancellationToken,
    ) -> OutcomeFuture<'_> {
        Box::pin(async move {
            let result = (self.answer)(&job);
            let log = LogReport {
                path: job.log.clone(),
                ..LogReport::default()
            };
            if let Ok(mut jobs) = self.jobs.lock() {
                jobs.push(job);
            }
            let mut outcome = StageOutcome::local(result, log);
            if let Some((agent, lost)) = self.remote.lock().ok().and_then(|r| r.clone()) {
                outcome.agent = Some(agent);
                outcome.lost = lost;
            }
            outcome
        })
    }

    fn note(&self, stage: &str, log: &str, message: &str) {
        if let Ok(mut notes) = self.notes.lock() {
            notes.push((stage.into(), log.into(), message.into()));
        }
    }
}

fn report(artifacts: Vec<ArtifactRecord>) -> StageReport {
    StageReport {
        summary: "done".into(),
        metrics: Vec::new(),
        gates: Vec::new(),
        outputs: vec![("version".into(), "1.2.3".into())],
        artifacts,
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    pipeline: Arc<Pipeline>,
    cas: Arc<Cas>,
}

impl Fixture {
    fn new(stages: &str) -> Result<Fixture, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("p.wasm"), b"\0asm")?;
        let src = format!("version: 1\nname: orch\nstages:\n{stages}");
        let pipeline = sluice_pipeline::parse_str(&src, &dir.path().join("sluice.yaml"))?;
        let cas = Arc::new(Cas::open(&dir.path().join("state/cas"))?);
        Ok(Fixture {
            dir,
            pipeline: Arc::new(pipeline),
            cas,
        })
    }

    fn run_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("state/runs/r")
    }

    fn orchestrator(
        &self,
        executor: Arc<FakeExecutor>,
        env: BTreeMap<String, String>,
        secrets: BTreeMap<String, String>,
    ) -> Arc<Orchestrator> {
        let plugins = self
            .pipeline
            .stages
            .keys()
            .map(|name| {
                let record = PluginRecord {
                    reference: "./p.wasm".into(),
                    digest: format!("sha256:{}", "c".repeat(64)),
                    name: Some("fake".into()),
                    version: Some("1.0.0".into()),
                    kind: Some("custom".into()),
                    wit: None,
                    signer: None,
                    policy_rules: Vec::new(),
                    oci: None,
                };
                (name.clone(), record)
            })
            .collect();
        Arc::new(Orchestrator {
            pipeline: self.pipeline.clone(),
            plugins,
            schemas: HashMap::new(),
            executor,
            env: Arc::new(env),
            redactor: Arc::new(run_redactor(&self.pipeline, &secrets)),
            cas: self.cas.clone(),
            work: WorkDirs::new(&self.run_dir()),
            provenance_key: None,
            source: None,
            builder_id: "https://ci.example.org/runner".into(),
            refused: Arc::default(),
        })
    }

    /// A record in which every stage in `passed` passed with `artifacts`.
    fn record(&self, passed: &[(&str, Vec<ArtifactRecord>)]) -> Arc<RunRecord> {
        let stages = self
            .pipeline
            .stages
            .keys()
            .map(|name| {
                let mut r = StageRecord::pending(name);
                if let Some((_, artifacts)) = passed.iter().find(|(n, _)| n == name) {
                    r.state = StageState::Passed;
                    r.attempts = 1;
                    r.artifacts = artifacts.clone();
                    r.outputs.insert("version".into(), "1.2.3".into());
                }
                (name.clone(), r)
            })
            .collect();
        Arc::new(RunRecord::new(
            "r",
            self.pipeline.name.clone(),
            self.pipeline.path.clone(),
            self.pipeline.digest.clone(),
            stages,
        ))
    }

    /// Store `files` (name, content) in the CAS as a stage's outputs.
    fn stored(
        &self,
        files: &[(&str, &str)],
    ) -> Result<Vec<ArtifactRecord>, Box<dyn std::error::Error>> {
        let out = tempfile::tempdir()?;
        for (name, content) in files {
            std::fs::write(out.path().join(name), content)?;
        }
        Ok(self
            .cas
            .ingest_dir(out.path(), &[], &IngestLimits::default())?)
    }
}

fn read_blob(cas: &Cas, a: &ArtifactRecord) -> Result<String, Box<dyn std::error::Error>> {
    Ok(std::fs::read_to_string(cas.blob_path(&a.digest)?)?)
}

#[tokio::test]
async fn a_config_that_breaks_the_schema_fails_without_running_the_stage() -> TestResult {
    let f = Fixture::new("  s: { uses: ./p.wasm, with: { level: 11 } }\n")?;
    let fake = FakeExecutor::new(Box::new(|_| Ok(report(Vec::new()))));
    let mut orchestrator = f.orchestrator(fake.clone(), BTreeMap::new(), BTreeMap::new());
    let schema =
        ConfigSchema::compile(r#"{"type":"object","properties":{"level":{"maximum":10}}}"#)?;
    Arc::get_mut(&mut orchestrator)
        .ok_or("shared")?
        .schemas
        .insert("s".into(), schema);
    let outcome = orchestrator
        .attempt("s".into(), 1, f.record(&[]), CancellationToken::new())
        .await;

    assert!(fake.jobs().is_empty(), "the executor was called");
    assert_eq!(outcome.state, StageState::Failed);
    assert!(!outcome.retryable, "a bad config never gets better");
    let reason = outcome.record.reason.unwrap_or_default();
    assert!(
        reason.starts_with("invalid config: `with:` does not match the plugin's config schema ("),
        "{reason}"
    );
    let notes = fake.notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, "s");
    assert_eq!(notes[0].1, "logs/s.log");
    assert_eq!(notes[0].2, format!("stage failed: {reason}"));
    Ok(())
}

#[tokio::test]
async fn a_template_that_does_not_expand_is_invalid_config() -> TestResult {
    let f = Fixture::new("  s: { uses: ./p.wasm, with: { home: \"${{ env.NOPE }}\" } }\n")?;
    let fake = FakeExecutor::new(Box::new(|_| Ok(report(Vec::new()))));
    let orchestrator = f.orchestrator(fake.clone(), BTreeMap::new(), BTreeMap::new());
    let outcome = orchestrator
        .attempt("s".into(), 2, f.record(&[]), CancellationToken::new())
        .await;
    assert!(fake.jobs().is_empty());
    assert_eq!(outcome.state, StageState::Failed);
    let notes: Vec<String> = fake.notes().into_iter().map(|n| n.2).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0], "attempt 2 of stage `s`");
    assert!(
        notes[1].starts_with("stage failed: invalid config: "),
        "{notes:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_job_names_secrets_and_never_carries_their_values() -> TestResult {
    let f = Fixture::new(
        "  build: { uses: ./p.wasm }
  s:
    uses: ./p.wasm
    needs: [build]
    timeout: 90s
    grants: { env: [CI], secrets: [NPM_TOKEN], network: [\"registry.example.org:443\"], memory: 64MiB }
    with: { who: \"${{ env.WHO }}\", version: \"${{ stages.build.outputs.version }}\" }
",
    )?;
    let secret = "s3cr3t-value-42";
    let answer_secret = secret.to_owned();
    let fake = FakeExecutor::new(Box::new(move |_| {
        Err(StageFailure::Failed {
            message: format!("could not log in with {answer_secret}"),
        })
    }));
    let env = BTreeMap::from([
        ("WHO".to_owned(), "alice".to_owned()),
        ("CI".to_owned(), "ci-env-value-7".to_owned()),
    ]);
    let secrets = BTreeMap::from([("NPM_TOKEN".to_owned(), secret.to_owned())]);
    let orchestrator = f.orchestrator(fake.clone(), env, secrets);
    let built = f.stored(&[("app.bin", "binary")])?;
    let outcome = orchestrator
        .attempt(
            "s".into(),
            1,
            f.record(&[("build", built.clone())]),
            CancellationToken::new(),
        )
        .await;

    let jobs = fake.jobs();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(
        job.config["who"], "alice",
        "templates read the injected env"
    );
    assert_eq!(job.config["version"], "1.2.3");
    assert_eq!(job.grants.secrets, ["NPM_TOKEN"]);
    assert_eq!(job.grants.env, ["CI"]);
    let network: Vec<String> = job.grants.network.iter().map(ToString::to_string).collect();
    assert_eq!(network, ["registry.example.org:443"]);
    assert_eq!(job.grants.memory, 64 << 20);
    assert_eq!(job.timeout, std::time::Duration::from_secs(90));
    assert_eq!(job.plugin.digest, format!("sha256:{}", "c".repeat(64)));
    assert_eq!(job.inputs.len(), 1);
    assert_eq!(job.inputs[0].stage, "build");
    assert_eq!(job.inputs[0].artifact, built[0]);
    let upstream: Vec<(&str, &str)> = job
        .upstream
        .iter()
        .map(|o| (o.name.as_str(), o.value.as_str()))
        .collect();
    assert!(upstream.contains(&("version", "1.2.3")), "{upstream:?}");
    assert!(
        upstream.contains(&("sluice.state", "passed")),
        "{upstream:?}"
    );
    let wire = serde_json::to_string(job)?;
    assert!(!wire.contains(secret), "the job carries a secret: {wire}");
    assert!(!wire.contains("ci-env-value-7"), "nor an env value: {wire}");

    // The executor's failure is the reason, redacted with the injected
    // secrets, and may be retried.
    assert_eq!(outcome.state, StageState::Failed);
    assert!(outcome.retryable);
    assert_eq!(
        outcome.record.reason.as_deref(),
        Some("failed: could not log in with ***")
    );
    assert!(
        fake.notes().is_empty(),
        "the executor notes its own failures"
    );
    Ok(())
}

#[tokio::test]
async fn the_orchestrator_writes_provenance_for_published_artifacts() -> TestResult {
    let f = Fixture::new(
        "  build: { uses: ./p.wasm, with: { target: \"${{ env.TARGET }}\" } }
  check: { uses: ./p.wasm }
",
    )?;
    let published = f.stored(&[("app.bin", "binary")])?;
    let answer = published.clone();
    let fake = FakeExecutor::new(Box::new(move |job| {
        Ok(report(if job.stage == "build" {
            answer.clone()
        } else {
            Vec::new()
        }))
    }));
    let env = BTreeMap::from([("TARGET".to_owned(), "x86_64".to_owned())]);
    let orchestrator = f.orchestrator(fake.clone(), env, BTreeMap::new());

    let outcome = orchestrator
        .clone()
        .attempt("build".into(), 1, f.record(&[]), CancellationToken::new())
        .await;
    assert_eq!(
        outcome.state,
        StageState::Passed,
        "{:?}",
        outcome.record.reason
    );
    let names: Vec<&str> = outcome
        .record
        .artifacts
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["app.bin", provenance::PROVENANCE_NAME]);
    assert_eq!(outcome.record.summary.as_deref(), Some("done"));
    assert_eq!(
        outcome.record.outputs.get("version").map(String::as_str),
        Some("1.2.3")
    );
    let statement: serde_json::Value =
        serde_json::from_str(&read_blob(&f.cas, &outcome.record.artifacts[1])?)?;
    let subject = &statement["subject"][0];
    assert_eq!(subject["name"], "app.bin");
    assert_eq!(
        format!(
            "sha256:{}",
            subject["digest"]["sha256"].as_str().unwrap_or("")
        ),
        published[0].digest
    );
    let text = statement.to_string();
    assert!(
        text.contains("${{ env.TARGET }}"),
        "the template, as written"
    );
    assert!(!text.contains("x86_64"), "never the expanded value");
    assert!(
        !f.run_dir().join("work/build").exists(),
        "the provenance copy is removed"
    );

    // Nothing published: nothing to attest.
    let outcome = orchestrator
        .attempt("check".into(), 1, f.record(&[]), CancellationToken::new())
        .await;
    assert_eq!(outcome.state, StageState::Passed);
    assert!(outcome.record.artifacts.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_reserved_artifact_name_fails_the_stage_and_says_so_in_the_log() -> TestResult {
    let f = Fixture::new("  s: { uses: ./p.wasm }\n")?;
    let forged = f.stored(&[(provenance::PROVENANCE_NAME, "{}")])?;
    let fake = FakeExecutor::new(Box::new(move |_| Ok(report(forged.clone()))));
    let orchestrator = f.orchestrator(fake.clone(), BTreeMap::new(), BTreeMap::new());
    let outcome = orchestrator
        .attempt("s".into(), 1, f.record(&[]), CancellationToken::new())
        .await;
    assert_eq!(outcome.state, StageState::Failed);
    let reason = outcome.record.reason.unwrap_or_default();
    assert!(
        reason.starts_with(
            "failed: the plugin wrote `provenance.intoto.json` at the top of /artifacts/out"
        ),
        "{reason}"
    );
    let notes = fake.notes();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].2, format!("stage {reason}"));
    Ok(())
}

#[tokio::test]
async fn gates_are_evaluated_on_the_report() -> TestResult {
    let f = Fixture::new(
        "  s:\n    uses: ./p.wasm\n    gates:\n      - { metric: tests.failed, max: 0 }\n",
    )?;
    let fake = FakeExecutor::new(Box::new(|_| {
        let mut r = report(Vec::new());
        r.metrics.push(sluice_record::MetricRecord {
            name: "tests.failed".into(),
            value: 2.0,
            unit: None,
        });
        Ok(r)
    }));
    let orchestrator = f.orchestrator(fake, BTreeMap::new(), BTreeMap::new());
    let outcome = orchestrator
        .attempt("s".into(), 1, f.record(&[]), CancellationToken::new())
        .await;
    assert_eq!(outcome.state, StageState::Blocked);
    assert_eq!(outcome.record.verdict, Some(Verdict::Fail));
    let reason = outcome.record.reason.unwrap_or_default();
    assert!(reason.starts_with("blocked by gate: "), "{reason}");
    Ok(())
}

#[tokio::test]
async fn a_trap_from_the_executor_is_kept_as_is() -> TestResult {
    let f = Fixture::new("  s: { uses: ./p.wasm }\n")?;
    let fake = FakeExecutor::new(Box::new(|_| {
        Err(StageFailure::Trap {
            kind: TrapKind::StackOverflow,
            message: "stack overflow".into(),
        })
    }));
    let orchestrator = f.orchestrator(fake, BTreeMap::new(), BTreeMap::new());
    let outcome = orchestrator
        .attempt("s".into(), 1, f.record(&[]), CancellationToken::new())
        .await;
    assert_eq!(outcome.state, StageState::Failed);
    assert!(outcome.retryable);
    assert_eq!(
        outcome.record.reason.as_deref(),
        Some("trapped: stack overflow")
    );
    Ok(())
}

#[test]
fn long_reasons_are_cut_and_redacted() {
    let redactor = Redactor::new(["hunter2".to_owned()]);
    assert_eq!(plugin_reason("pw hunter2", &redactor), "pw ***");
    let long = "é".repeat(REASON_BYTES);
    let cut = plugin_reason(&long, &redactor);
    assert!(
        cut.ends_with(&format!("… ({} bytes, cut)", long.len())),
        "{cut}"
    );
    assert!(cut.len() < long.len());
}

#[test]
fn a_missing_key_file_is_named_without_a_stage() {
    let missing = Path::new("/nonexistent/runner.key");
    let Err(e) = load_signing_key(missing, b"pw") else {
        panic!("a missing key loaded");
    };
    let text = e.to_string();
    assert!(text.contains("/nonexistent/runner.key"), "{text}");
    assert!(!text.contains("(provenance)"), "{text}");
    assert!(matches!(e, SigningKeyError::Read(_)));
}

#[tokio::test]
async fn the_agent_and_lost_executions_are_recorded_whatever_the_outcome() -> TestResult {
    let f = Fixture::new("  s: { uses: ./p.wasm }\n")?;
    let lost = vec![LostExecution {
        agent: "a1".into(),
        at: "2026-12-07T13:00:00Z".into(),
    }];
    let passing = FakeExecutor::new(Box::new(|_| Ok(report(Vec::new()))));
    *passing.remote.lock().map_err(|_| "poisoned")? = Some(("a2".into(), lost.clone()));
    let orchestrator = f.orchestrator(passing, BTreeMap::new(), BTreeMap::new());
    let outcome = orchestrator
        .clone()
        .attempt("s".into(), 1, f.record(&[]), CancellationToken::new())
        .await;
    assert_eq!(outcome.state, StageState::Passed);
    assert_eq!(outcome.record.agent.as_deref(), Some("a2"));
    assert_eq!(outcome.record.lost, lost);
    assert!(!orchestrator.refused.load(Ordering::Relaxed));

    let failing = FakeExecutor::new(Box::new(|_| {
        Err(StageFailure::Failed {
            message: "3 tests failed".into(),
        })
    }));
    *failing.remote.lock().map_err(|_| "poisoned")? = Some(("a3".into(), Vec::new()));
    let orchestrator = f.orchestrator(failing, BTreeMap::new(), BTreeMap::new());
    let outcome = orchestrator
        .clone()
        .attempt("s".into(), 1, f.record(&[]), CancellationToken::new())
        .await;
    assert_eq!(outcome.state, StageState::Failed);
    assert!(outcome.retryable);
    assert_eq!(outcome.record.agent.as_deref(), Some("a3"));
    assert!(outcome.record.lost.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_agent_refusal_fails_the_stage_for_good_and_marks_the_run_refused() -> TestResult {
    let f = Fixture::new("  s: { uses: ./p.wasm }\n")?;
    let refusing = FakeExecutor::new(Box::new(|_| {
        Err(StageFailure::Refused {
            agent: "a1".into(),
            reasons: vec!["no rule of the agent's policy matches the plugin".into()],
        })
    }));
    *refusing.remote.lock().map_err(|_| "poisoned")? = Some(("a1".into(), Vec::new()));
    let orchestrator = f.orchestrator(refusing, BTreeMap::new(), BTreeMap::new());
    let outcome = orchestrator
        .clone()
        .attempt("s".into(), 1, f.record(&[]), CancellationToken::new())
        .await;
    assert_eq!(outcome.state, StageState::Failed);
    assert!(!outcome.retryable, "a refusal does not change by retrying");
    let reason = outcome.record.reason.unwrap_or_default();
    assert!(
        reason.starts_with(
            "refused by agent `a1`: no rule of the agent's policy matches the plugin; "
        ),
        "{reason}"
    );
    assert!(orchestrator.refused.load(Ordering::Relaxed));
    // A plain failure does not mark the run.
    let lost = FakeExecutor::new(Box::new(|_| Err(StageFailure::Lost { executions: 4 })));
    let orchestrator = f.orchestrator(lost, BTreeMap::new(), BTreeMap::new());
    let outcome = orchestrator
        .clone()
        .attempt("s".into(), 1, f.record(&[]), CancellationToken::new())
        .await;
    assert!(!outcome.retryable);
    assert!(!orchestrator.refused.load(Ordering::Relaxed));
    Ok(())
}
