//! Scheduler tests against a scripted fake executor (issue 16): fail-fast,
//! `when:`, retries, timeouts, approvals, `on-inconclusive: pause`,
//! interruption and DAG ordering. Each asserts the exact order of the
//! events, the attempts the executor saw and the final run record.
//!
//! Time is tokio's paused clock: delays, timeouts and retry back-offs cost
//! no wall time, and attempts with different delays end in a fixed order.
//! Events are compared as short lines (see [`short`]), so that fields added
//! to events do not touch these tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_pipeline::gates::Verdict;
use sluice_pipeline::{OnInconclusive, Pipeline};
use sluice_record::{now, Approval, RunRecord, RunStatus, RunStore, StageRecord, StageState};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{reset_for_resume, AttemptFuture, AttemptOutcome, Attempts, Options, Scheduler};
use crate::report::{Event, Reporter};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const RUN_ID: &str = "run-1";
const BACKOFF: Duration = Duration::from_millis(250);

// ---------------------------------------------------------------------------
// The fake executor.

/// What one scripted attempt does.
#[derive(Debug, Clone, Copy)]
enum Act {
    Pass,
    Warn,
    /// A blocking gate failed.
    Block,
    /// The plugin failed: `retryable` like a `failed` error or a trap, not
    /// like `invalid-config` or `denied`.
    Fail {
        retryable: bool,
    },
    /// Runs past the stage's `timeout:` and is reported as the host does.
    Timeout,
    /// A gate was inconclusive; the stage's `on-inconclusive:` decides.
    Inconclusive,
    /// Never ends by itself (until cancelled).
    Hang,
}

/// One attempt: `act` after `after` (paused) time.
#[derive(Debug, Clone, Copy)]
struct Step {
    act: Act,
    after: Duration,
}

fn step(act: Act, secs: u64) -> Step {
    Step {
        act,
        after: Duration::from_secs(secs),
    }
}
fn pass(secs: u64) -> Step {
    step(Act::Pass, secs)
}
fn warn(secs: u64) -> Step {
    step(Act::Warn, secs)
}
fn block(secs: u64) -> Step {
    step(Act::Block, secs)
}
/// A retryable failure.
fn fail(secs: u64) -> Step {
    step(Act::Fail { retryable: true }, secs)
}
/// A failure no retry helps (invalid config, denied capability).
fn fatal(secs: u64) -> Step {
    step(Act::Fail { retryable: false }, secs)
}
fn inconclusive(secs: u64) -> Step {
    step(Act::Inconclusive, secs)
}
fn timeout() -> Step {
    step(Act::Timeout, 0)
}
fn hang() -> Step {
    step(Act::Hang, 0)
}

/// Plays a script per stage and attempt: the n-th step of a stage is its
/// attempt n; attempts past the script (and unscripted stages) pass at once.
struct Fake {
    pipeline: Pipeline,
    script: HashMap<String, Vec<Step>>,
    t0: Instant,
    /// Attempts as they began (after any back-off), with the paused time.
    calls: watch::Sender<Vec<(String, Duration)>>,
    /// Attempts whose future was dropped before it ended (cancelled).
    dropped: Mutex<Vec<String>>,
}

impl Fake {
    fn new(pipeline: &Pipeline) -> Fake {
        Fake {
            pipeline: pipeline.clone(),
            script: HashMap::new(),
            t0: Instant::now(),
            calls: watch::channel(Vec::new()).0,
            dropped: Mutex::new(Vec::new()),
        }
    }

    fn on<const N: usize>(mut self, stage: &str, steps: [Step; N]) -> Fake {
        self.script.insert(stage.to_string(), steps.to_vec());
        self
    }

    fn arc(self) -> Arc<Fake> {
        Arc::new(self)
    }

    /// The attempts that began, in order, as `stage#attempt`.
    fn calls(&self) -> Vec<String> {
        self.calls.borrow().iter().map(|(c, _)| c.clone()).collect()
    }

    /// [`Fake::calls`] with the (paused) time each began, `stage#attempt@ms`.
    fn timed_calls(&self) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .map(|(c, t)| format!("{c}@{}ms", t.as_millis()))
            .collect()
    }

    fn dropped(&self) -> Vec<String> {
        self.dropped.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Resolves once attempt `call` (`stage#attempt`) has begun.
    async fn started(&self, call: &str) {
        let mut rx = self.calls.subscribe();
        let _ = rx
            .wait_for(|calls| calls.iter().any(|(c, _)| c == call))
            .await;
    }

    async fn play(self: Arc<Self>, stage: String, attempt: u32) -> AttemptOutcome {
        let call = format!("{stage}#{attempt}");
        let begun = self.t0.elapsed();
        self.calls.send_modify(|c| c.push((call.clone(), begun)));
        let mut in_flight = InFlight {
            fake: self.clone(),
            call: Some(call),
        };
        let step = self
            .script
            .get(&stage)
            .and_then(|s| s.get(attempt as usize - 1))
            .copied()
            .unwrap_or(pass(0));
        let spec = self.pipeline.stages.get(&stage);
        let mut record = StageRecord::pending(&stage);
        let (state, retryable) = match step.act {
            Act::Hang => std::future::pending().await,
            Act::Timeout => {
                // As the host: the attempt is stopped at `timeout:` and
                // fails with `StageFailure::Timeout`, which is retryable.
                let limit = spec.map_or(Duration::ZERO, |s| s.timeout);
                tokio::time::sleep(limit).await;
                record.reason = Some(format!(
                    "timed out after {}s; raise the stage's `timeout:` if it needs longer",
                    limit.as_secs()
                ));
                (StageState::Failed, true)
            }
            act => {
                tokio::time::sleep(step.after).await;
                match act {
                    Act::Pass => {
                        record.verdict = Some(Verdict::Pass);
                        (StageState::Passed, false)
                    }
                    Act::Warn => {
                        record.verdict = Some(Verdict::Warn);
                        (StageState::Warned, false)
                    }
                    Act::Block => {
                        record.verdict = Some(Verdict::Fail);
                        record.reason = Some("blocked by gate: tests.failed is 3".into());
                        (StageState::Blocked, false)
                    }
                    Act::Fail { retryable } => {
                        record.reason = Some(format!("failed: attempt {attempt} failed"));
                        (StageState::Failed, retryable)
                    }
                    Act::Inconclusive => {
                        // As the host maps an inconclusive verdict.
                        record.verdict = Some(Verdict::Inconclusive);
                        if spec.map(|s| s.on_inconclusive) == Some(OnInconclusive::Pause) {
                            record.reason = Some(
                                "paused: inconclusive gate: no data; approve to run the stage again"
                                    .into(),
                            );
                            (StageState::AwaitingApproval, false)
                        } else {
                            record.reason = Some("blocked by gate: no data".into());
                            (StageState::Blocked, false)
                        }
                    }
                    Act::Hang | Act::Timeout => unreachable!("handled above"),
                }
            }
        };
        record.duration_ms = Some((self.t0.elapsed() - begun).as_millis() as u64);
        record.summary = Some(format!("attempt {attempt}"));
        in_flight.call = None;
        AttemptOutcome {
            state,
            retryable,
            record,
        }
    }
}

/// The only place the fake meets the executor port.
impl Attempts for Fake {
    fn attempt(
        self: Arc<Self>,
        stage: String,
        attempt: u32,
        _record: Arc<RunRecord>,
        _cancel: tokio_util::sync::CancellationToken,
    ) -> AttemptFuture {
        Box::pin(self.play(stage, attempt))
    }
}

/// Notes an attempt dropped before it ended.
struct InFlight {
    fake: Arc<Fake>,
    call: Option<String>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let (Some(call), Ok(mut dropped)) = (self.call.take(), self.fake.dropped.lock()) {
            dropped.push(call);
        }
    }
}

// ---------------------------------------------------------------------------
// Events, records and runs.

/// Collects events as short lines.
#[derive(Default)]
struct Events(Mutex<Vec<String>>);

impl Reporter for Events {
    fn event(&self, event: &Event<'_>) {
        if let Ok(mut events) = self.0.lock() {
            events.push(short(event));
        }
    }
}

/// One event as a short line: its kind, stage and the one field that tells
/// it apart (attempt, state, status). Other fields are not compared.
fn short(event: &Event<'_>) -> String {
    match event {
        Event::StageStarted { stage, attempt, .. } => format!("stage-started {stage}#{attempt}"),
        Event::StageRetrying {
            stage, attempt, of, ..
        } => format!("stage-retrying {stage}#{attempt}/{of}"),
        Event::StageFinished { stage, record, .. } => {
            format!("stage-finished {stage} {}", record.state.as_str())
        }
        Event::StageSkipped { stage, .. } => format!("stage-skipped {stage}"),
        Event::StageCancelled { stage, .. } => format!("stage-cancelled {stage}"),
        Event::StageAwaitingApproval { stage, .. } => format!("stage-awaiting-approval {stage}"),
        Event::RunFinished { record, .. } => format!("run-finished {}", status(record.status)),
        other => format!("other {other:?}"),
    }
}

fn status(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Running => "running",
        RunStatus::Passed => "passed",
        RunStatus::Failed => "failed",
        RunStatus::Paused => "paused",
        RunStatus::Interrupted => "interrupted",
    }
}

/// Every stage as `name state xattempts`, in pipeline order.
fn stages(record: &RunRecord) -> Vec<String> {
    record
        .stages
        .iter()
        .map(|(n, r)| format!("{n} {} x{}", r.state.as_str(), r.attempts))
        .collect()
}

fn reason<'r>(record: &'r RunRecord, stage: &str) -> &'r str {
    record
        .stages
        .get(stage)
        .and_then(|r| r.reason.as_deref())
        .unwrap_or("")
}

fn options(jobs: usize, fail_fast: bool) -> Options {
    Options {
        jobs,
        fail_fast,
        retry_backoff: BACKOFF,
        interrupt: None,
    }
}

/// A pipeline (every stage runs `./p.wasm`), a run store and the events.
struct Harness {
    _dir: tempfile::TempDir,
    pipeline: Pipeline,
    store: RunStore,
    events: Events,
}

impl Harness {
    /// `stages` are the lines under `stages:`.
    fn new(stages: &str) -> Result<Harness, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("p.wasm"), b"\0asm")?;
        let src = format!("version: 1\nname: sched\nstages:\n{stages}");
        let pipeline = sluice_pipeline::parse_str(&src, &dir.path().join("sluice.yaml"))?;
        let store = RunStore::new(&dir.path().join("state"));
        Ok(Harness {
            _dir: dir,
            pipeline,
            store,
            events: Events::default(),
        })
    }

    fn fake(&self) -> Fake {
        Fake::new(&self.pipeline)
    }

    /// A new run's record, as the runner makes it.
    fn new_record(&self) -> Result<RunRecord, Box<dyn std::error::Error>> {
        let record = RunRecord::new(
            RUN_ID,
            self.pipeline.name.clone(),
            self.pipeline.path.clone(),
            self.pipeline.digest.clone(),
            self.pipeline
                .stages
                .keys()
                .map(|k| (k.clone(), StageRecord::pending(k)))
                .collect(),
        );
        self.store.create(&record)?;
        Ok(record)
    }

    /// The stored run, as `sluice run --resume` prepares it.
    fn resumed_record(&self) -> Result<RunRecord, Box<dyn std::error::Error>> {
        let mut record = self.store.load(RUN_ID)?;
        reset_for_resume(&mut record);
        Ok(record)
    }

    /// What `sluice approve RUN STAGE --by alice` does to the stored run.
    fn approve(&self, stage: &str) -> TestResult {
        let mut record = self.store.load(RUN_ID)?;
        let r = record.stages.get_mut(stage).ok_or("no such stage")?;
        assert_eq!(r.state, StageState::AwaitingApproval, "{stage}");
        r.approval = Some(Approval {
            by: "alice".into(),
            at: now(),
        });
        r.state = StageState::Pending;
        self.store.save(&record)?;
        Ok(())
    }

    /// Run the scheduler to its end; the stored record must be the one
    /// returned.
    async fn run(
        &self,
        record: RunRecord,
        fake: &Arc<Fake>,
        options: Options,
    ) -> Result<RunRecord, Box<dyn std::error::Error>> {
        let scheduler = Scheduler::new(&self.pipeline, record, &self.store, &self.events, options);
        let record = scheduler.run(fake.clone()).await?;
        assert_eq!(
            self.store.load(RUN_ID)?,
            record,
            "the stored record is the one returned"
        );
        Ok(record)
    }

    /// The events since the last call.
    fn events(&self) -> Vec<String> {
        self.events
            .0
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------
// 1. Fail-fast.

const FAIL_FAST: &str = "  build: { uses: ./p.wasm }
  lint: { uses: ./p.wasm }
  docs: { uses: ./p.wasm }
  test: { uses: ./p.wasm, needs: [build] }
  package: { uses: ./p.wasm, needs: [lint] }
  report: { uses: ./p.wasm, needs: [build], when: failure }
  cleanup: { uses: ./p.wasm, needs: [build, lint], when: always }
";

#[tokio::test(start_paused = true)]
async fn fail_fast_cancels_the_running_stage_and_starts_no_new_success_stage() -> TestResult {
    let h = Harness::new(FAIL_FAST)?;
    let fake = h
        .fake()
        .on("build", [fail(1)])
        // Longer than its grace period (10 s) and the backstop: dropped.
        .on("lint", [pass(100)])
        .on("report", [pass(1)])
        .on("cleanup", [pass(2)])
        .arc();
    let record = h.run(h.new_record()?, &fake, options(2, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started build#1",
            "stage-started lint#1",
            "stage-finished build failed",
            "stage-cancelled lint",
            // Waiting for a slot when `build` failed: not started.
            "stage-skipped docs",
            "stage-skipped test",
            // `when: failure` and `when: always` still run.
            "stage-started report#1",
            "stage-skipped package",
            "stage-started cleanup#1",
            "stage-finished report passed",
            "stage-finished cleanup passed",
            "run-finished failed",
        ]
    );
    assert_eq!(fake.calls(), ["build#1", "lint#1", "report#1", "cleanup#1"]);
    assert_eq!(
        fake.dropped(),
        ["lint#1"],
        "the cancelled attempt is stopped"
    );
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(
        stages(&record),
        [
            "build failed x1",
            "lint cancelled x1",
            "docs skipped x0",
            "test skipped x0",
            "package skipped x0",
            "report passed x1",
            "cleanup passed x1",
        ]
    );
    assert_eq!(reason(&record, "build"), "failed: attempt 1 failed");
    assert_eq!(
        reason(&record, "lint"),
        "cancelled because `build` failed (fail-fast)"
    );
    assert!(
        reason(&record, "docs").starts_with("not started: `build` failed"),
        "{}",
        reason(&record, "docs")
    );
    assert_eq!(reason(&record, "test"), "`build` did not pass (failed)");
    assert_eq!(
        reason(&record, "package"),
        "`lint` did not pass (cancelled)"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn keep_going_runs_independent_stages_after_a_failure() -> TestResult {
    let h = Harness::new(FAIL_FAST)?;
    let fake = h
        .fake()
        .on("build", [fail(1)])
        .on("lint", [pass(10)])
        .on("package", [pass(1)])
        .on("cleanup", [pass(2)])
        .arc();
    let record = h.run(h.new_record()?, &fake, options(2, false)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started build#1",
            "stage-started lint#1",
            "stage-finished build failed",
            "stage-started docs#1",
            "stage-skipped test",
            "stage-finished docs passed",
            "stage-started report#1",
            "stage-finished report passed",
            "stage-finished lint passed",
            "stage-started package#1",
            "stage-started cleanup#1",
            "stage-finished package passed",
            "stage-finished cleanup passed",
            "run-finished failed",
        ]
    );
    assert!(fake.dropped().is_empty());
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(
        stages(&record),
        [
            "build failed x1",
            "lint passed x1",
            "docs passed x1",
            "test skipped x0",
            "package passed x1",
            "report passed x1",
            "cleanup passed x1",
        ]
    );
    Ok(())
}

/// Several stages cancelled at once should be reported in a fixed
/// (pipeline) order, as everything else the scheduler reports is.
#[tokio::test(start_paused = true)]
async fn fail_fast_reports_cancelled_stages_in_pipeline_order() -> TestResult {
    // Each HashMap has its own random keys: a few runs see both orders.
    for _ in 0..16 {
        let h = Harness::new(
            "  a: { uses: ./p.wasm }
  b: { uses: ./p.wasm }
  c: { uses: ./p.wasm }
",
        )?;
        let fake = h
            .fake()
            .on("a", [fail(1)])
            .on("b", [hang()])
            .on("c", [hang()])
            .arc();
        let record = h.run(h.new_record()?, &fake, options(3, true)).await?;
        assert_eq!(
            h.events(),
            [
                "stage-started a#1",
                "stage-started b#1",
                "stage-started c#1",
                "stage-finished a failed",
                "stage-cancelled b",
                "stage-cancelled c",
                "run-finished failed",
            ]
        );
        assert_eq!(
            stages(&record),
            ["a failed x1", "b cancelled x1", "c cancelled x1"]
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 2. `when:`.

const WHEN: &str = "  build: { uses: ./p.wasm }
  test: { uses: ./p.wasm, needs: [build] }
  deploy: { uses: ./p.wasm, needs: [test] }
  rollback: { uses: ./p.wasm, needs: [deploy], when: failure }
  notify: { uses: ./p.wasm, needs: [deploy], when: always }
";

#[tokio::test(start_paused = true)]
async fn when_failure_is_skipped_and_when_always_runs_after_success() -> TestResult {
    let h = Harness::new(WHEN)?;
    let fake = h.fake().arc();
    let record = h.run(h.new_record()?, &fake, options(1, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started build#1",
            "stage-finished build passed",
            "stage-started test#1",
            "stage-finished test passed",
            "stage-started deploy#1",
            "stage-finished deploy passed",
            "stage-skipped rollback",
            "stage-started notify#1",
            "stage-finished notify passed",
            "run-finished passed",
        ]
    );
    assert_eq!(fake.calls(), ["build#1", "test#1", "deploy#1", "notify#1"]);
    assert_eq!(record.status, RunStatus::Passed);
    assert_eq!(
        stages(&record),
        [
            "build passed x1",
            "test passed x1",
            "deploy passed x1",
            "rollback skipped x0",
            "notify passed x1",
        ]
    );
    assert_eq!(
        reason(&record, "rollback"),
        "no upstream stage failed (`when: failure`)"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn when_failure_and_always_run_after_an_upstream_failure_and_success_is_skipped() -> TestResult
{
    let h = Harness::new(WHEN)?;
    let fake = h.fake().on("test", [fatal(1)]).arc();
    let record = h.run(h.new_record()?, &fake, options(1, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started build#1",
            "stage-finished build passed",
            "stage-started test#1",
            "stage-finished test failed",
            "stage-skipped deploy",
            // `test` is upstream of `rollback` through `deploy`.
            "stage-started rollback#1",
            "stage-finished rollback passed",
            "stage-started notify#1",
            "stage-finished notify passed",
            "run-finished failed",
        ]
    );
    assert_eq!(
        fake.calls(),
        ["build#1", "test#1", "rollback#1", "notify#1"]
    );
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(
        stages(&record),
        [
            "build passed x1",
            "test failed x1",
            "deploy skipped x0",
            "rollback passed x1",
            "notify passed x1",
        ]
    );
    assert_eq!(reason(&record, "deploy"), "`test` did not pass (failed)");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_blocked_gate_counts_as_a_failure_for_when_failure_and_a_warning_as_success() -> TestResult
{
    let h = Harness::new(WHEN)?;
    let fake = h
        .fake()
        .on("test", [warn(1)])
        .on("deploy", [block(1)])
        .arc();
    let record = h.run(h.new_record()?, &fake, options(1, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started build#1",
            "stage-finished build passed",
            "stage-started test#1",
            "stage-finished test warned",
            "stage-started deploy#1",
            "stage-finished deploy blocked",
            "stage-started rollback#1",
            "stage-finished rollback passed",
            "stage-started notify#1",
            "stage-finished notify passed",
            "run-finished failed",
        ]
    );
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(
        stages(&record),
        [
            "build passed x1",
            "test warned x1",
            "deploy blocked x1",
            "rollback passed x1",
            "notify passed x1",
        ]
    );
    assert_eq!(
        reason(&record, "deploy"),
        "blocked by gate: tests.failed is 3"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 3. Retries.

#[tokio::test(start_paused = true)]
async fn a_retryable_failure_is_retried_with_backoff_until_it_passes() -> TestResult {
    let h = Harness::new(
        "  flaky: { uses: ./p.wasm, retries: 2 }
  publish: { uses: ./p.wasm, needs: [flaky] }
",
    )?;
    let fake = h.fake().on("flaky", [fail(0), fail(0), pass(0)]).arc();
    let record = h.run(h.new_record()?, &fake, options(2, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started flaky#1",
            "stage-retrying flaky#2/3",
            "stage-retrying flaky#3/3",
            "stage-finished flaky passed",
            "stage-started publish#1",
            "stage-finished publish passed",
            "run-finished passed",
        ]
    );
    // The back-off grows with the attempt: 250 ms, then 500 ms.
    assert_eq!(
        fake.timed_calls(),
        [
            "flaky#1@0ms",
            "flaky#2@250ms",
            "flaky#3@750ms",
            "publish#1@750ms"
        ]
    );
    assert_eq!(record.status, RunStatus::Passed);
    assert_eq!(stages(&record), ["flaky passed x3", "publish passed x1"]);
    assert_eq!(
        reason(&record, "flaky"),
        "",
        "the earlier failures are gone"
    );
    let flaky = record.stages.get("flaky").ok_or("flaky")?;
    assert_eq!(flaky.summary.as_deref(), Some("attempt 3"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn non_retryable_failures_and_blocking_gates_are_not_retried() -> TestResult {
    let h = Harness::new(
        "  config: { uses: ./p.wasm, retries: 2 }
  gated: { uses: ./p.wasm, retries: 2 }
",
    )?;
    let fake = h
        .fake()
        .on("config", [fatal(1)])
        .on("gated", [block(1)])
        .arc();
    let record = h.run(h.new_record()?, &fake, options(1, false)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started config#1",
            "stage-finished config failed",
            "stage-started gated#1",
            "stage-finished gated blocked",
            "run-finished failed",
        ]
    );
    assert_eq!(fake.calls(), ["config#1", "gated#1"]);
    assert_eq!(stages(&record), ["config failed x1", "gated blocked x1"]);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_stage_that_exhausts_its_retries_fails_with_the_last_reason() -> TestResult {
    let h = Harness::new(
        "  flaky: { uses: ./p.wasm, retries: 1 }
  publish: { uses: ./p.wasm, needs: [flaky] }
",
    )?;
    let fake = h.fake().on("flaky", [fail(1), fail(1), pass(0)]).arc();
    let record = h.run(h.new_record()?, &fake, options(1, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started flaky#1",
            "stage-retrying flaky#2/2",
            "stage-finished flaky failed",
            "stage-skipped publish",
            "run-finished failed",
        ]
    );
    assert_eq!(fake.timed_calls(), ["flaky#1@0ms", "flaky#2@1250ms"]);
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(stages(&record), ["flaky failed x2", "publish skipped x0"]);
    assert_eq!(reason(&record, "flaky"), "failed: attempt 2 failed");
    Ok(())
}

// ---------------------------------------------------------------------------
// 4. Timeouts (reported by the executor as a retryable failure).

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_is_retried() -> TestResult {
    let h = Harness::new("  deploy: { uses: ./p.wasm, timeout: 30s, retries: 1 }\n")?;
    let fake = h.fake().on("deploy", [timeout(), pass(1)]).arc();
    let record = h.run(h.new_record()?, &fake, options(1, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started deploy#1",
            "stage-retrying deploy#2/2",
            "stage-finished deploy passed",
            "run-finished passed",
        ]
    );
    assert_eq!(fake.timed_calls(), ["deploy#1@0ms", "deploy#2@30250ms"]);
    assert_eq!(stages(&record), ["deploy passed x2"]);
    let deploy = record.stages.get("deploy").ok_or("deploy")?;
    assert_eq!(deploy.duration_ms, Some(1000), "the last attempt's");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_stage_that_keeps_timing_out_fails_and_the_record_says_why() -> TestResult {
    let h = Harness::new(
        "  deploy: { uses: ./p.wasm, timeout: 30s, retries: 1 }
  smoke: { uses: ./p.wasm, needs: [deploy] }
",
    )?;
    let fake = h.fake().on("deploy", [timeout(), timeout()]).arc();
    let record = h.run(h.new_record()?, &fake, options(1, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started deploy#1",
            "stage-retrying deploy#2/2",
            "stage-finished deploy failed",
            "stage-skipped smoke",
            "run-finished failed",
        ]
    );
    assert_eq!(fake.timed_calls(), ["deploy#1@0ms", "deploy#2@30250ms"]);
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(stages(&record), ["deploy failed x2", "smoke skipped x0"]);
    assert_eq!(
        reason(&record, "deploy"),
        "timed out after 30s; raise the stage's `timeout:` if it needs longer"
    );
    assert_eq!(
        record.stages.get("deploy").and_then(|r| r.duration_ms),
        Some(30_000)
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 5. Approvals.

#[tokio::test(start_paused = true)]
async fn an_approval_pauses_the_run_and_resume_after_approve_continues() -> TestResult {
    let h = Harness::new(
        "  build: { uses: ./p.wasm }
  deploy: { uses: ./p.wasm, needs: [build], approval: required }
  smoke: { uses: ./p.wasm, needs: [deploy] }
  lint: { uses: ./p.wasm, needs: [build] }
",
    )?;
    let fake = h.fake().arc();
    let record = h.run(h.new_record()?, &fake, options(1, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started build#1",
            "stage-finished build passed",
            "stage-awaiting-approval deploy",
            // What does not wait for `deploy` still runs.
            "stage-started lint#1",
            "stage-finished lint passed",
            "run-finished paused",
        ]
    );
    assert_eq!(fake.calls(), ["build#1", "lint#1"]);
    assert_eq!(record.status, RunStatus::Paused);
    assert_eq!(
        stages(&record),
        [
            "build passed x1",
            "deploy awaiting-approval x0",
            "smoke pending x0",
            "lint passed x1",
        ]
    );

    // Resumed without an approval: it pauses again, running nothing.
    let fake = h.fake().arc();
    let record = h.run(h.resumed_record()?, &fake, options(1, true)).await?;
    assert_eq!(
        h.events(),
        ["stage-awaiting-approval deploy", "run-finished paused"]
    );
    assert!(fake.calls().is_empty());
    assert_eq!(record.status, RunStatus::Paused);

    h.approve("deploy")?;
    let fake = h.fake().arc();
    let record = h.run(h.resumed_record()?, &fake, options(1, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started deploy#1",
            "stage-finished deploy passed",
            "stage-started smoke#1",
            "stage-finished smoke passed",
            "run-finished passed",
        ]
    );
    assert_eq!(fake.calls(), ["deploy#1", "smoke#1"], "nothing runs twice");
    assert_eq!(record.status, RunStatus::Passed);
    assert_eq!(
        stages(&record),
        [
            "build passed x1",
            "deploy passed x1",
            "smoke passed x1",
            "lint passed x1",
        ]
    );
    let deploy = record.stages.get("deploy").ok_or("deploy")?;
    assert_eq!(
        deploy.approval.as_ref().map(|a| a.by.as_str()),
        Some("alice")
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 6. `on-inconclusive: pause`.

const CANARY: &str = "  deploy: { uses: ./p.wasm }
  canary: { uses: ./p.wasm, needs: [deploy], on-inconclusive: pause }
  promote: { uses: ./p.wasm, needs: [canary] }
";

#[tokio::test(start_paused = true)]
async fn an_inconclusive_verdict_pauses_the_run_until_approved_each_time() -> TestResult {
    let h = Harness::new(CANARY)?;
    let fake = h.fake().on("canary", [inconclusive(5)]).arc();
    let record = h.run(h.new_record()?, &fake, options(2, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started deploy#1",
            "stage-finished deploy passed",
            "stage-started canary#1",
            "stage-finished canary awaiting-approval",
            "stage-awaiting-approval canary",
            "run-finished paused",
        ]
    );
    assert_eq!(record.status, RunStatus::Paused);
    assert_eq!(
        stages(&record),
        [
            "deploy passed x1",
            "canary awaiting-approval x1",
            "promote pending x0",
        ]
    );
    let canary = record.stages.get("canary").ok_or("canary")?;
    assert!(canary.approval_required);
    assert_eq!(canary.verdict, Some(Verdict::Inconclusive));
    assert_eq!(
        reason(&record, "canary"),
        "paused: inconclusive gate: no data; approve to run the stage again"
    );

    // Resumed without an approval: still paused; the stage does not run.
    let fake = h.fake().arc();
    let record = h.run(h.resumed_record()?, &fake, options(2, true)).await?;
    assert_eq!(
        h.events(),
        ["stage-awaiting-approval canary", "run-finished paused"]
    );
    assert!(fake.calls().is_empty());
    assert_eq!(record.status, RunStatus::Paused);

    // Approved, it runs again; inconclusive again, it needs a new approval.
    h.approve("canary")?;
    let fake = h.fake().on("canary", [inconclusive(5)]).arc();
    let record = h.run(h.resumed_record()?, &fake, options(2, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started canary#1",
            "stage-finished canary awaiting-approval",
            "stage-awaiting-approval canary",
            "run-finished paused",
        ]
    );
    assert_eq!(fake.calls(), ["canary#1"]);
    let canary = record.stages.get("canary").ok_or("canary")?;
    assert!(
        canary.approval.is_none(),
        "each pause needs its own approval"
    );
    assert!(canary.approval_required);

    h.approve("canary")?;
    let fake = h.fake().arc();
    let record = h.run(h.resumed_record()?, &fake, options(2, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started canary#1",
            "stage-finished canary passed",
            "stage-started promote#1",
            "stage-finished promote passed",
            "run-finished passed",
        ]
    );
    assert_eq!(fake.calls(), ["canary#1", "promote#1"]);
    assert_eq!(record.status, RunStatus::Passed);
    assert_eq!(
        stages(&record),
        ["deploy passed x1", "canary passed x1", "promote passed x1"]
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_inconclusive_verdict_blocks_without_on_inconclusive_pause() -> TestResult {
    let h = Harness::new(&CANARY.replace(", on-inconclusive: pause", ""))?;
    let fake = h.fake().on("canary", [inconclusive(5)]).arc();
    let record = h.run(h.new_record()?, &fake, options(2, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started deploy#1",
            "stage-finished deploy passed",
            "stage-started canary#1",
            "stage-finished canary blocked",
            "stage-skipped promote",
            "run-finished failed",
        ]
    );
    assert_eq!(
        stages(&record),
        [
            "deploy passed x1",
            "canary blocked x1",
            "promote skipped x0"
        ]
    );
    assert!(
        !record
            .stages
            .get("canary")
            .is_some_and(|c| c.approval_required),
        "a blocked stage waits for no approval"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 7. Interruption (`Options::interrupt`).

const SIGINT: &str = "interrupted by SIGINT (Ctrl-C)";

#[tokio::test(start_paused = true)]
async fn an_interrupt_cancels_the_running_stage_starts_nothing_and_resume_continues() -> TestResult
{
    let h = Harness::new(
        "  build: { uses: ./p.wasm }
  test: { uses: ./p.wasm, needs: [build] }
  lint: { uses: ./p.wasm, needs: [build] }
  package: { uses: ./p.wasm, needs: [test] }
",
    )?;
    let fake = h.fake().on("test", [hang()]).arc();
    let (tx, rx) = watch::channel(None);
    let mut opts = options(1, true);
    opts.interrupt = Some(rx);
    let (record, ()) = tokio::join!(h.run(h.new_record()?, &fake, opts), async {
        fake.started("test#1").await;
        tx.send_replace(Some(SIGINT.to_string()));
    });
    let record = record?;
    assert_eq!(
        h.events(),
        [
            "stage-started build#1",
            "stage-finished build passed",
            "stage-started test#1",
            "stage-cancelled test",
            "run-finished interrupted",
        ]
    );
    assert_eq!(fake.calls(), ["build#1", "test#1"]);
    assert_eq!(fake.dropped(), ["test#1"], "the running attempt is stopped");
    assert_eq!(record.status, RunStatus::Interrupted);
    assert_eq!(
        stages(&record),
        [
            "build passed x1",
            "test cancelled x1",
            "lint pending x0",
            "package pending x0",
        ]
    );
    assert_eq!(
        reason(&record, "test"),
        "interrupted by SIGINT (Ctrl-C); `sluice run --resume run-1` runs it again"
    );

    let fake = h.fake().arc();
    let record = h.run(h.resumed_record()?, &fake, options(1, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started test#1",
            "stage-finished test passed",
            "stage-started lint#1",
            "stage-finished lint passed",
            "stage-started package#1",
            "stage-finished package passed",
            "run-finished passed",
        ]
    );
    assert_eq!(fake.calls(), ["test#1", "lint#1", "package#1"]);
    assert_eq!(
        stages(&record),
        [
            "build passed x1",
            "test passed x1",
            "lint passed x1",
            "package passed x1",
        ]
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_during_a_retry_backoff_cancels_the_stage() -> TestResult {
    let h = Harness::new("  flaky: { uses: ./p.wasm, retries: 1 }\n")?;
    let fake = h.fake().on("flaky", [fail(0)]).arc();
    let (tx, rx) = watch::channel(None);
    let mut opts = options(1, true);
    opts.interrupt = Some(rx);
    let (record, ()) = tokio::join!(h.run(h.new_record()?, &fake, opts), async {
        // Within the 250 ms back-off.
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send_replace(Some(SIGINT.to_string()));
    });
    let record = record?;
    assert_eq!(
        h.events(),
        [
            "stage-started flaky#1",
            "stage-retrying flaky#2/2",
            "stage-cancelled flaky",
            "run-finished interrupted",
        ]
    );
    assert_eq!(fake.calls(), ["flaky#1"], "attempt 2 never began");
    assert_eq!(record.status, RunStatus::Interrupted);
    assert_eq!(stages(&record), ["flaky cancelled x2"]);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_sent_before_the_run_starts_runs_nothing() -> TestResult {
    let h = Harness::new("  build: { uses: ./p.wasm }\n")?;
    let fake = h.fake().arc();
    let (_tx, rx) = watch::channel(Some(SIGINT.to_string()));
    let mut opts = options(1, true);
    opts.interrupt = Some(rx);
    let record = h.run(h.new_record()?, &fake, opts).await?;
    assert_eq!(h.events(), ["run-finished interrupted"]);
    assert!(fake.calls().is_empty());
    assert_eq!(record.status, RunStatus::Interrupted);
    assert_eq!(stages(&record), ["build pending x0"]);
    Ok(())
}

// ---------------------------------------------------------------------------
// 8. DAG order and bounded parallelism.

const DIAMOND: &str = "  a: { uses: ./p.wasm }
  b: { uses: ./p.wasm }
  c: { uses: ./p.wasm, needs: [a] }
  d: { uses: ./p.wasm, needs: [b] }
  e: { uses: ./p.wasm, needs: [c, d] }
";

fn diamond_fake(h: &Harness) -> Arc<Fake> {
    h.fake()
        .on("a", [pass(3)])
        .on("b", [pass(1)])
        .on("c", [pass(1)])
        .on("d", [pass(1)])
        .arc()
}

#[tokio::test(start_paused = true)]
async fn with_one_job_stages_run_one_at_a_time_in_ready_order() -> TestResult {
    let h = Harness::new(DIAMOND)?;
    let fake = diamond_fake(&h);
    let record = h.run(h.new_record()?, &fake, options(1, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started a#1",
            "stage-finished a passed",
            "stage-started b#1",
            "stage-finished b passed",
            "stage-started c#1",
            "stage-finished c passed",
            "stage-started d#1",
            "stage-finished d passed",
            "stage-started e#1",
            "stage-finished e passed",
            "run-finished passed",
        ]
    );
    assert_eq!(
        fake.timed_calls(),
        [
            "a#1@0ms",
            "b#1@3000ms",
            "c#1@4000ms",
            "d#1@5000ms",
            "e#1@6000ms"
        ]
    );
    assert_eq!(record.status, RunStatus::Passed);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn with_two_jobs_a_stage_starts_as_soon_as_its_needs_finish() -> TestResult {
    let h = Harness::new(DIAMOND)?;
    let fake = diamond_fake(&h);
    let record = h.run(h.new_record()?, &fake, options(2, true)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started a#1",
            "stage-started b#1",
            "stage-finished b passed",
            "stage-started d#1",
            "stage-finished d passed",
            "stage-finished a passed",
            "stage-started c#1",
            "stage-finished c passed",
            "stage-started e#1",
            "stage-finished e passed",
            "run-finished passed",
        ]
    );
    assert_eq!(
        fake.timed_calls(),
        [
            "a#1@0ms",
            "b#1@0ms",
            "d#1@1000ms",
            "c#1@3000ms",
            "e#1@4000ms"
        ]
    );
    assert_eq!(
        stages(&record),
        [
            "a passed x1",
            "b passed x1",
            "c passed x1",
            "d passed x1",
            "e passed x1",
        ]
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_dependents_of_a_blocked_stage_are_skipped() -> TestResult {
    let h = Harness::new(
        "  scan: { uses: ./p.wasm }
  lint: { uses: ./p.wasm }
  publish: { uses: ./p.wasm, needs: [scan] }
  announce: { uses: ./p.wasm, needs: [publish] }
",
    )?;
    let fake = h.fake().on("scan", [block(1)]).arc();
    let record = h.run(h.new_record()?, &fake, options(1, false)).await?;
    assert_eq!(
        h.events(),
        [
            "stage-started scan#1",
            "stage-finished scan blocked",
            "stage-started lint#1",
            "stage-skipped publish",
            "stage-skipped announce",
            "stage-finished lint passed",
            "run-finished failed",
        ]
    );
    assert_eq!(fake.calls(), ["scan#1", "lint#1"]);
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(
        stages(&record),
        [
            "scan blocked x1",
            "lint passed x1",
            "publish skipped x0",
            "announce skipped x0",
        ]
    );
    assert_eq!(reason(&record, "publish"), "`scan` did not pass (blocked)");
    assert_eq!(
        reason(&record, "announce"),
        "`publish` did not pass (skipped)"
    );
    Ok(())
}

const GRACE: &str = "  build: { uses: ./p.wasm }
  canary: { uses: ./p.wasm, grace-period: 30s }
  docs: { uses: ./p.wasm, grace-period: 0s }
";

/// A cancelled attempt that ends within its stage's grace period is waited
/// for (a canary putting traffic back), not dropped; one that does not is
/// dropped once the longest grace period (and the backstop) has passed.
#[tokio::test(start_paused = true)]
async fn cancelled_attempts_get_their_grace_period_before_they_are_dropped() -> TestResult {
    let h = Harness::new(GRACE)?;
    let fake = h
        .fake()
        .on("build", [fail(1)])
        .on("canary", [pass(20)])
        .on("docs", [pass(100)])
        .arc();
    let started = tokio::time::Instant::now();
    let record = h.run(h.new_record()?, &fake, options(3, true)).await?;
    assert_eq!(
        fake.dropped(),
        ["docs#1"],
        "only the stage past its grace is dropped"
    );
    assert_eq!(
        stages(&record),
        [
            "build failed x1",
            "canary cancelled x1",
            "docs cancelled x1"
        ]
    );
    // 1 s until build failed, then 30 s of grace and the 5 s backstop.
    assert_eq!(started.elapsed(), Duration::from_secs(36));
    Ok(())
}
