//! Runs the stage DAG: `needs` ordering, bounded parallelism, `when:`,
//! approvals, retries and fail-fast cancellation. It knows nothing of
//! WebAssembly: an [`Attempts`] runs one attempt of one stage (in a run,
//! the [orchestrator](crate::orchestrator)), and the
//! scheduler records every state change in the [`RunRecord`] (one journal
//! line per change, a full snapshot at start and end) and reports it as an
//! [`Event`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::report::{Event, Reporter};
use sluice_pipeline::{Pipeline, When};
use sluice_record::journal::Journal;
use sluice_record::{now, RecordError, RunRecord, RunStatus, RunStore, StageRecord, StageState};

/// The result of one attempt, as [`Attempts`] saw it.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    /// `Passed`, `Warned`, `Blocked` or `Failed`.
    pub state: StageState,
    /// For `Failed`: whether another attempt may help.
    pub retryable: bool,
    /// The record fields to store (state, attempts and times are set by the
    /// scheduler).
    pub record: StageRecord,
}

/// A boxed attempt future.
pub type AttemptFuture = Pin<Box<dyn Future<Output = AttemptOutcome> + Send>>;

/// Runs one attempt of one stage. `record` is a snapshot of the run so far
/// (finished stages' outputs and artifacts).
pub trait Attempts: Send + Sync + 'static {
    /// Start attempt `attempt` (1-based) of `stage`. When `cancel` fires,
    /// the attempt should end within the stage's grace period (a stage
    /// told so may put things back first); the scheduler drops it a
    /// little after that ([`CANCEL_BACKSTOP`]) and ignores its outcome.
    fn attempt(
        self: Arc<Self>,
        stage: String,
        attempt: u32,
        record: Arc<RunRecord>,
        cancel: CancellationToken,
    ) -> AttemptFuture;
}

/// How long past the longest grace period of the cancelled stages the
/// scheduler waits before it drops attempts that did not end: the
/// executor ends them at their grace period, this only covers one that
/// does not.
pub const CANCEL_BACKSTOP: Duration = Duration::from_secs(5);

/// Scheduling options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stages running at once.
    pub jobs: usize,
    /// Cancel running stages and start no new `when: success` stage once a
    /// stage fails.
    pub fail_fast: bool,
    /// Pause between a failed attempt and the next one (multiplied by the
    /// attempt number).
    pub retry_backoff: Duration,
    /// Set to a reason (`interrupted by SIGINT …`) to stop the run: running
    /// stages are cancelled with that reason, nothing new starts, and the
    /// run ends `interrupted` (resumable).
    pub interrupt: Option<Interrupt>,
}

/// Receives the reason a run must stop; see [`Options::interrupt`].
pub type Interrupt = tokio::sync::watch::Receiver<Option<String>>;

/// The interrupt's reason, once it was sent.
fn interrupted(interrupt: &Option<Interrupt>) -> Option<String> {
    interrupt.as_ref().and_then(|rx| rx.borrow().clone())
}

/// Resolves when the interrupt is sent (never, without one).
async fn interrupt_sent(interrupt: &mut Option<Interrupt>) {
    match interrupt {
        Some(rx) => {
            if rx.wait_for(Option::is_some).await.is_err() {
                // The sender is gone without interrupting: never.
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

struct Node {
    name: String,
    needs: Vec<String>,
    /// Indices of the stages that need this one.
    dependents: Vec<usize>,
    /// The stages an attempt reads: `needs` plus those its templates use.
    context: Vec<String>,
    /// Only for `when: failure` (the only decision that looks further back
    /// than `needs`); computing it for every stage is quadratic in a chain.
    ancestors: Option<BTreeSet<String>>,
    when: When,
    approval: bool,
    retries: u32,
    /// `grace-period:`: how long a cancelled attempt may take to end.
    grace: Duration,
}

/// Drives one run to its end (or to a pause).
///
/// Every decision costs O(1) in the size of the pipeline: stages become
/// ready when a counter of unfinished `needs` reaches zero, an attempt gets
/// a view of only the stages it reads, and each change is one appended
/// journal line rather than a rewrite of the whole record. That keeps a
/// 1000-stage pipeline linear.
pub struct Scheduler<'a> {
    nodes: Vec<Node>,
    /// Node index by stage name.
    index: HashMap<String, usize>,
    /// Per node: how many of its `needs` are not finished yet.
    unfinished_needs: Vec<usize>,
    /// Pending stages whose needs have all finished, in pipeline order.
    ready: VecDeque<usize>,
    record: RunRecord,
    store: &'a RunStore,
    journal: Option<Journal>,
    /// Stages changed since the last journal write.
    dirty: Vec<String>,
    /// The first stage that failed, for fail-fast.
    first_failure: Option<String>,
    reporter: &'a dyn Reporter,
    options: Options,
    /// The cancellation token of each running attempt, by stage.
    cancels: HashMap<String, CancellationToken>,
}

impl<'a> Scheduler<'a> {
    /// Prepare to run `pipeline`, continuing `record`.
    pub fn new(
        pipeline: &Pipeline,
        record: RunRecord,
        store: &'a RunStore,
        reporter: &'a dyn Reporter,
        options: Options,
    ) -> Scheduler<'a> {
        let index: HashMap<&str, usize> = pipeline
            .stages
            .keys()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut nodes: Vec<Node> = pipeline
            .stages
            .iter()
            .map(|(name, s)| {
                let mut context = s.needs.clone();
                for referenced in sluice_pipeline::referenced_stages(&s.with) {
                    if !context.contains(&referenced) {
                        context.push(referenced);
                    }
                }
                Node {
                    name: name.clone(),
                    needs: s.needs.clone(),
                    dependents: Vec::new(),
                    context,
                    ancestors: (s.when == When::Failure).then(|| pipeline.ancestors(name)),
                    when: s.when,
                    approval: s.approval,
                    retries: s.retries,
                    grace: s.grace_period,
                }
            })
            .collect();
        for i in 0..nodes.len() {
            for need in nodes[i].needs.clone() {
                if let Some(&j) = index.get(need.as_str()) {
                    nodes[j].dependents.push(i);
                }
            }
        }
        let index: HashMap<String, usize> =
            index.into_iter().map(|(n, i)| (n.to_string(), i)).collect();
        let mut scheduler = Scheduler {
            index,
            unfinished_needs: vec![0; nodes.len()],
            nodes,
            ready: VecDeque::new(),
            record,
            store,
            journal: None,
            dirty: Vec::new(),
            first_failure: None,
            reporter,
            options,
            cancels: HashMap::new(),
        };
        for i in 0..scheduler.nodes.len() {
            let unfinished = scheduler.nodes[i]
                .needs
                .iter()
                .filter(|n| !scheduler.state(n).is_terminal())
                .count();
            scheduler.unfinished_needs[i] = unfinished;
            if unfinished == 0 && scheduler.state(&scheduler.nodes[i].name) == StageState::Pending {
                scheduler.ready.push_back(i);
            }
        }
        scheduler.first_failure = scheduler
            .record
            .stages
            .iter()
            .find(|(_, r)| r.state.is_failure())
            .map(|(n, _)| n.clone());
        scheduler
    }

    fn state(&self, stage: &str) -> StageState {
        self.record
            .stages
            .get(stage)
            .map(|r| r.state)
            .unwrap_or(StageState::Pending)
    }

    fn stage_mut(&mut self, stage: &str) -> &mut StageRecord {
        if !self.dirty.iter().any(|d| d == stage) {
            self.dirty.push(stage.to_string());
        }
        self.record
            .stages
            .entry(stage.to_string())
            .or_insert_with(|| StageRecord::pending(stage))
    }

    /// Write the whole record (`run.json`). The first snapshot of a process
    /// opens the journal ([`RunStore::begin`]); later ones (pause, end) first
    /// wait for the journal to be synced, then replace `run.json` without
    /// syncing the directory: after a power cut, the old snapshot plus the
    /// journal still gives every stage's state.
    fn snapshot(&mut self) -> Result<(), RecordError> {
        self.record.updated_at = now();
        match &mut self.journal {
            Some(journal) => {
                journal.sync()?;
                self.record.journal_seq = journal.seq();
                self.store.save_snapshot(&self.record)?;
            }
            None => self.journal = Some(self.store.begin(&self.record)?),
        }
        self.dirty.clear();
        Ok(())
    }

    /// Append the stages changed since the last write to the journal.
    fn flush(&mut self) -> Result<(), RecordError> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let Some(journal) = self.journal.as_mut() else {
            return self.snapshot();
        };
        let at = now();
        let dirty = std::mem::take(&mut self.dirty);
        let entries: Vec<(&str, &StageRecord)> = dirty
            .iter()
            .filter_map(|n| self.record.stages.get(n).map(|r| (n.as_str(), r)))
            .collect();
        // Only finished stages must survive a power cut (see Journal::append).
        let durable = entries.iter().any(|(_, r)| r.state.is_terminal());
        journal.append(entries, &at, durable)?;
        self.record.updated_at = at;
        Ok(())
    }

    /// `stage` reached a final state: the stages that need it may be ready.
    fn finished(&mut self, stage: &str) {
        if self.first_failure.is_none() && self.state(stage).is_failure() {
            self.first_failure = Some(stage.to_string());
        }
        let Some(&i) = self.index.get(stage) else {
            return;
        };
        for d in self.nodes[i].dependents.clone() {
            self.unfinished_needs[d] = self.unfinished_needs[d].saturating_sub(1);
            if self.unfinished_needs[d] == 0
                && self.state(&self.nodes[d].name) == StageState::Pending
            {
                self.ready.push_back(d);
            }
        }
    }

    /// What to do with a pending stage whose needs are all finished.
    fn decide(&self, node: &Node) -> Decision {
        let failed_need = node
            .needs
            .iter()
            .find(|n| !self.state(n).succeeded())
            .cloned();
        match node.when {
            When::Success => {
                if let Some(need) = failed_need {
                    return Decision::Skip(format!(
                        "`{need}` did not pass ({})",
                        self.state(&need).as_str()
                    ));
                }
                if self.options.fail_fast {
                    if let Some(failed) = &self.first_failure {
                        return Decision::Skip(format!(
                            "not started: `{failed}` failed and the run stops at the first failure (use --keep-going to run independent stages)"
                        ));
                    }
                }
                Decision::Run
            }
            When::Failure => {
                let upstream_failed = node
                    .ancestors
                    .iter()
                    .flatten()
                    .any(|a| self.state(a).is_failure());
                if upstream_failed {
                    Decision::Run
                } else {
                    Decision::Skip("no upstream stage failed (`when: failure`)".into())
                }
            }
            When::Always => Decision::Run,
        }
    }

    fn spawn_attempt<E: Attempts>(
        &mut self,
        executor: &Arc<E>,
        tasks: &mut JoinSet<(String, AttemptOutcome)>,
        running: &mut HashMap<tokio::task::Id, String>,
        index: usize,
        attempt: u32,
        delay: Duration,
    ) {
        let node = &self.nodes[index];
        let view = Arc::new(self.record.view(&node.context));
        let cancel = CancellationToken::new();
        let fut = executor
            .clone()
            .attempt(node.name.clone(), attempt, view, cancel.clone());
        let name = node.name.clone();
        let waiting = cancel.clone();
        let handle = tasks.spawn(async move {
            if !delay.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    // Cancelled during the back-off: the attempt never
                    // starts (the scheduler records the cancellation).
                    () = waiting.cancelled() => {
                        let record = StageRecord::pending(&name);
                        return (name, AttemptOutcome { state: StageState::Cancelled, retryable: false, record });
                    }
                }
            }
            (name, fut.await)
        });
        running.insert(handle.id(), node.name.clone());
        self.cancels.insert(node.name.clone(), cancel);
    }

    /// Start or skip ready stages while there is room.
    fn start_ready<E: Attempts>(
        &mut self,
        executor: &Arc<E>,
        tasks: &mut JoinSet<(String, AttemptOutcome)>,
        running: &mut HashMap<tokio::task::Id, String>,
    ) {
        while let Some(&i) = self.ready.front() {
            let name = self.nodes[i].name.clone();
            if self.state(&name) != StageState::Pending {
                self.ready.pop_front();
                continue;
            }
            match self.decide(&self.nodes[i]) {
                Decision::Skip(reason) => {
                    self.ready.pop_front();
                    let r = self.stage_mut(&name);
                    r.state = StageState::Skipped;
                    r.reason = Some(reason.clone());
                    r.finished_at = Some(now());
                    self.reporter.event(&Event::StageSkipped {
                        stage: &name,
                        reason: &reason,
                    });
                    self.finished(&name);
                }
                Decision::Run => {
                    let approval_missing = match self.record.stages.get(&name) {
                        Some(r) => {
                            (self.nodes[i].approval || r.approval_required) && r.approval.is_none()
                        }
                        None => self.nodes[i].approval,
                    };
                    if approval_missing {
                        self.ready.pop_front();
                        self.stage_mut(&name).state = StageState::AwaitingApproval;
                        self.reporter.event(&Event::StageAwaitingApproval {
                            stage: &name,
                            run_id: &self.record.run_id,
                        });
                    } else if running.len() < self.options.jobs.max(1) {
                        self.ready.pop_front();
                        let attempt = {
                            let r = self.stage_mut(&name);
                            r.state = StageState::Running;
                            r.attempts += 1;
                            r.started_at = Some(now());
                            r.attempts
                        };
                        self.reporter.event(&Event::StageStarted {
                            stage: &name,
                            attempt,
                        });
                        self.spawn_attempt(executor, tasks, running, i, attempt, Duration::ZERO);
                    } else {
                        // No room: it stays first in line.
                        break;
                    }
                }
            }
        }
    }

    /// Run until every stage is finished or waiting for approval.
    pub async fn run<E: Attempts>(mut self, executor: Arc<E>) -> Result<RunRecord, RecordError> {
        let mut tasks: JoinSet<(String, AttemptOutcome)> = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
        self.record.status = RunStatus::Running;
        self.snapshot()?;
        let mut interrupt = self.options.interrupt.clone();
        loop {
            if let Some(reason) = interrupted(&interrupt) {
                return self.interrupt(&mut tasks, &mut running, &reason).await;
            }
            self.start_ready(&executor, &mut tasks, &mut running);
            self.flush()?;
            if running.is_empty() {
                break;
            }
            let joined = tokio::select! {
                joined = tasks.join_next_with_id() => joined,
                () = interrupt_sent(&mut interrupt) => continue,
            };
            let Some(joined) = joined else {
                break;
            };
            let (stage, outcome) = match joined {
                Ok((id, (stage, outcome))) => {
                    running.remove(&id);
                    (stage, outcome)
                }
                Err(e) => {
                    // A cancelled task was recorded when it was cancelled; a
                    // panicked one is a runner bug, reported on the stage.
                    let Some(stage) = running.remove(&e.id()) else {
                        continue;
                    };
                    if e.is_cancelled() {
                        continue;
                    }
                    let mut record = StageRecord::pending(&stage);
                    record.reason = Some(format!("internal error in the runner: {e}"));
                    (
                        stage,
                        AttemptOutcome {
                            state: StageState::Failed,
                            retryable: false,
                            record,
                        },
                    )
                }
            };
            self.cancels.remove(&stage);
            let Some(&index) = self.index.get(&stage) else {
                continue;
            };
            let node_retries = self.nodes[index].retries;
            let attempts = self.stage_mut(&stage).attempts;
            if outcome.state == StageState::Failed && outcome.retryable && attempts <= node_retries
            {
                let reason = outcome.record.reason.clone().unwrap_or_default();
                let attempt = attempts + 1;
                self.stage_mut(&stage).attempts = attempt;
                self.reporter.event(&Event::StageRetrying {
                    stage: &stage,
                    attempt,
                    of: node_retries + 1,
                    reason: &reason,
                });
                self.flush()?;
                let backoff = self.options.retry_backoff * attempts;
                self.spawn_attempt(&executor, &mut tasks, &mut running, index, attempt, backoff);
                continue;
            }
            self.finish(&stage, outcome);
            if self.state(&stage).is_terminal() {
                self.finished(&stage);
            }
            // The finish is written with the starts it unblocks (one append)
            // at the top of the loop; only a cancellation, which waits for
            // other stages, writes it first.
            if self.options.fail_fast && self.state(&stage).is_failure() {
                self.flush()?;
                let reason = format!("cancelled because `{stage}` failed (fail-fast)");
                self.cancel_all(&mut tasks, &mut running, &reason).await;
                self.flush()?;
            }
        }
        self.record.status = self.final_status();
        self.snapshot()?;
        self.reporter.event(&Event::RunFinished {
            record: &self.record,
        });
        Ok(self.record)
    }

    fn finish(&mut self, stage: &str, outcome: AttemptOutcome) {
        let r = self.stage_mut(stage);
        let attempts = r.attempts;
        let started_at = r.started_at.clone();
        let approval = r.approval.clone();
        let log = r.log.clone();
        *r = outcome.record;
        r.state = outcome.state;
        r.attempts = attempts;
        r.started_at = started_at;
        r.approval = approval;
        r.log = log;
        r.finished_at = Some(now());
        // A stage that paused itself needs a fresh approval each time.
        r.approval_required = r.state == StageState::AwaitingApproval;
        if r.approval_required {
            r.approval = None;
        }
        let r = r.clone();
        self.reporter
            .event(&Event::StageFinished { stage, record: &r });
        if r.state == StageState::AwaitingApproval {
            self.reporter.event(&Event::StageAwaitingApproval {
                stage,
                run_id: &self.record.run_id,
            });
        }
    }

    /// Stop the run for `reason`: cancel what runs, record it, end the run
    /// `interrupted` with a snapshot (durable: the runner exits next).
    async fn interrupt(
        mut self,
        tasks: &mut JoinSet<(String, AttemptOutcome)>,
        running: &mut HashMap<tokio::task::Id, String>,
        reason: &str,
    ) -> Result<RunRecord, RecordError> {
        self.flush()?;
        let reason = format!(
            "{reason}; `sluice run --resume {}` runs it again",
            self.record.run_id
        );
        self.cancel_all(tasks, running, &reason).await;
        self.flush()?;
        self.record.status = RunStatus::Interrupted;
        self.snapshot()?;
        self.reporter.event(&Event::RunFinished {
            record: &self.record,
        });
        Ok(self.record)
    }

    async fn cancel_all(
        &mut self,
        tasks: &mut JoinSet<(String, AttemptOutcome)>,
        running: &mut HashMap<tokio::task::Id, String>,
        reason: &str,
    ) {
        if running.is_empty() {
            return;
        }
        // Tell every running attempt to stop, give them their grace
        // periods to put things back (a canary restores its traffic), then
        // drop what is left. Wait until every task is gone, so no sandbox
        // outlives the decision.
        let mut grace = Duration::ZERO;
        for name in running.values() {
            if let Some(cancel) = self.cancels.get(name) {
                cancel.cancel();
            }
            if let Some(&i) = self.index.get(name) {
                grace = grace.max(self.nodes[i].grace);
            }
        }
        let drained = tokio::time::timeout(grace + CANCEL_BACKSTOP, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        self.cancels.clear();
        // In pipeline order, so the events and the journal are the same on
        // every run (the map's order is random).
        let mut names: Vec<String> = running.drain().map(|(_, n)| n).collect();
        names.sort_by_key(|n| self.index.get(n).copied());
        for name in names {
            let reason = reason.to_string();
            let r = self.stage_mut(&name);
            r.state = StageState::Cancelled;
            r.reason = Some(reason.clone());
            r.finished_at = Some(now());
            self.reporter.event(&Event::StageCancelled {
                stage: &name,
                reason: &reason,
            });
            self.finished(&name);
        }
    }

    fn final_status(&self) -> RunStatus {
        let states: Vec<StageState> = self.record.stages.values().map(|r| r.state).collect();
        if states.iter().any(|s| s.is_failure()) {
            RunStatus::Failed
        } else if states
            .iter()
            .any(|s| matches!(s, StageState::AwaitingApproval | StageState::Pending))
        {
            RunStatus::Paused
        } else if states.contains(&StageState::Cancelled) {
            RunStatus::Failed
        } else {
            RunStatus::Passed
        }
    }
}

enum Decision {
    Run,
    Skip(String),
}

/// Prepare a record for `--resume`: finished successful stages stay; every
/// other stage is pending again (an interrupted `running` stage starts over
/// from a fresh output directory).
pub fn reset_for_resume(record: &mut RunRecord) {
    for r in record.stages.values_mut() {
        if !r.state.succeeded() {
            r.reset();
        }
    }
    record.status = RunStatus::Running;
}

/// A stage that had passed but runs again on resume, because artifacts it
/// produced, which a stage that runs now needs, are gone or damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostArtifacts {
    /// The producer.
    pub stage: String,
    /// What the check found wrong (the first bad artifact).
    pub reason: String,
    /// Stages downstream of it that had passed and run again with it (their
    /// results came from the artifacts that are gone), in pipeline order.
    pub downstream: Vec<String>,
}

/// After [`reset_for_resume`]: a stage that already succeeded is only kept
/// if what it left in the CAS is still there. For every stage that will run
/// now (pending, approved if it needs approval, and not waiting behind a
/// stage that is not), each of its `needs` that succeeded and produced
/// artifacts is checked once with `check` (given the producer and its
/// artifacts). A producer that fails the check is reset to pending, and so
/// is every stage downstream of it that had succeeded. Stages reset this way
/// will run too, so their own producers are checked in turn, until nothing
/// changes. Without this, a lost blob failed every resume ("re-run the
/// stage that produced it") while resume never re-ran a passed stage.
///
/// Returns one entry per producer reset, in the order found.
pub fn reset_lost_producers(
    pipeline: &Pipeline,
    record: &mut RunRecord,
    mut check: impl FnMut(&str, &[sluice_record::artifacts::ArtifactRecord]) -> Result<(), String>,
) -> Vec<LostArtifacts> {
    let order: Vec<String> = pipeline
        .topo_order()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, stage) in &pipeline.stages {
        for need in &stage.needs {
            dependents
                .entry(need.as_str())
                .or_default()
                .push(name.as_str());
        }
    }
    let succeeded = |record: &RunRecord, stage: &str| {
        record
            .stages
            .get(stage)
            .is_some_and(|r| r.state.succeeded())
    };
    let mut checked: BTreeSet<String> = BTreeSet::new();
    let mut lost = Vec::new();
    loop {
        // Pending stages that cannot start now: they wait for an approval,
        // or behind a stage that does. Their inputs are checked when they
        // can run (a resume without the approval must not rebuild).
        let mut waiting: BTreeSet<&str> = BTreeSet::new();
        for name in &order {
            let (Some(stage), Some(r)) = (pipeline.stages.get(name), record.stages.get(name))
            else {
                continue;
            };
            if r.state.succeeded() {
                continue;
            }
            let approval_missing = (stage.approval || r.approval_required) && r.approval.is_none();
            if approval_missing || stage.needs.iter().any(|n| waiting.contains(n.as_str())) {
                waiting.insert(name);
            }
        }
        let mut found: Vec<(String, String)> = Vec::new();
        for name in &order {
            if succeeded(record, name) || waiting.contains(name.as_str()) {
                continue;
            }
            let Some(stage) = pipeline.stages.get(name) else {
                continue;
            };
            for need in &stage.needs {
                if !succeeded(record, need) || !checked.insert(need.clone()) {
                    continue;
                }
                let Some(produced) = record.stages.get(need) else {
                    continue;
                };
                if produced.artifacts.is_empty() {
                    continue;
                }
                if let Err(reason) = check(need, &produced.artifacts) {
                    found.push((need.clone(), reason));
                }
            }
        }
        if found.is_empty() {
            return lost;
        }
        for (producer, reason) in found {
            let mut downstream_set: BTreeSet<&str> = BTreeSet::new();
            let mut queue: Vec<&str> = dependents
                .get(producer.as_str())
                .cloned()
                .unwrap_or_default();
            while let Some(d) = queue.pop() {
                if downstream_set.insert(d) {
                    queue.extend(dependents.get(d).into_iter().flatten());
                }
            }
            let downstream: Vec<String> = order
                .iter()
                .filter(|n| downstream_set.contains(n.as_str()) && succeeded(record, n))
                .cloned()
                .collect();
            for stage in downstream.iter().chain(std::iter::once(&producer)) {
                if let Some(r) = record.stages.get_mut(stage) {
                    if r.state.succeeded() {
                        r.reset();
                    }
                }
            }
            lost.push(LostArtifacts {
                stage: producer,
                reason,
                downstream,
            });
        }
    }
}

#[cfg(test)]
mod lost_producer_tests {
    use super::*;
    use sluice_record::artifacts::ArtifactRecord;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn pipeline(
        dir: &std::path::Path,
        stages: &str,
    ) -> Result<Pipeline, Box<dyn std::error::Error>> {
        std::fs::write(dir.join("p.wasm"), b"\0asm")?;
        let src = format!("version: 1\nname: heal\nstages:\n{stages}");
        Ok(sluice_pipeline::parse_str(&src, &dir.join("sluice.yaml"))?)
    }

    fn artifact(name: &str) -> ArtifactRecord {
        ArtifactRecord {
            name: name.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 1,
            media_type: sluice_record::artifacts::DEFAULT_MEDIA_TYPE.into(),
            role: None,
            annotations: Default::default(),
        }
    }

    /// A record in which `passed` succeeded (each with one artifact named
    /// after it) and every other stage is as `reset_for_resume` leaves it.
    fn record(pipeline: &Pipeline, passed: &[&str]) -> RunRecord {
        let stages = pipeline
            .stages
            .keys()
            .map(|name| {
                let mut r = StageRecord::pending(name);
                if passed.contains(&name.as_str()) {
                    r.state = StageState::Passed;
                    r.attempts = 1;
                    r.artifacts = vec![artifact(name)];
                }
                (name.clone(), r)
            })
            .collect();
        RunRecord::new(
            "r",
            pipeline.name.clone(),
            pipeline.path.clone(),
            pipeline.digest.clone(),
            stages,
        )
    }

    fn state(record: &RunRecord, stage: &str) -> StageState {
        record
            .stages
            .get(stage)
            .map_or(StageState::Pending, |r| r.state)
    }

    const CHAIN: &str = "  build: { uses: ./p.wasm }
  test: { uses: ./p.wasm, needs: [build] }
  package: { uses: ./p.wasm, needs: [test] }
  report: { uses: ./p.wasm, needs: [build] }
  deploy: { uses: ./p.wasm, needs: [package, report] }
";

    #[test]
    fn a_producer_with_lost_artifacts_runs_again_with_what_consumed_them() -> TestResult {
        let dir = tempfile::tempdir()?;
        let p = pipeline(dir.path(), CHAIN)?;
        let mut r = record(&p, &["build", "test", "package", "report"]);
        let mut asked = Vec::new();
        let lost = reset_lost_producers(&p, &mut r, |stage, artifacts| {
            asked.push(stage.to_owned());
            assert_eq!(artifacts[0].name, stage);
            if stage == "build" {
                Err("artifact `build` is missing".into())
            } else {
                Ok(())
            }
        });
        // `deploy` runs: its needs are checked; both pass. Nothing else is
        // asked, since nothing else runs.
        assert_eq!(asked, ["package", "report"]);
        assert!(lost.is_empty());
        for s in ["build", "test", "package", "report"] {
            assert_eq!(state(&r, s), StageState::Passed, "{s}");
        }

        let mut r = record(&p, &["build", "test", "package", "report"]);
        let lost = reset_lost_producers(&p, &mut r, |stage, _| {
            if stage == "package" {
                Err("artifact `package` is corrupt".into())
            } else {
                Ok(())
            }
        });
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].stage, "package");
        assert_eq!(lost[0].reason, "artifact `package` is corrupt");
        assert!(lost[0].downstream.is_empty(), "deploy had not passed");
        assert_eq!(state(&r, "package"), StageState::Pending);
        assert_eq!(state(&r, "test"), StageState::Passed);
        Ok(())
    }

    #[test]
    fn stages_that_run_again_get_their_own_producers_checked() -> TestResult {
        let dir = tempfile::tempdir()?;
        let p = pipeline(dir.path(), CHAIN)?;
        let mut r = record(&p, &["build", "test", "package", "report"]);
        let mut asked = Vec::new();
        let lost = reset_lost_producers(&p, &mut r, |stage, _| {
            asked.push(stage.to_owned());
            match stage {
                "report" => Err("artifact `report` is missing".into()),
                "build" => Err("artifact `build` is corrupt".into()),
                _ => Ok(()),
            }
        });
        // `report` is lost, so it runs, so `build` (its need) is checked and
        // lost too, which takes `test` and `package` downstream with it.
        let names: Vec<_> = lost.iter().map(|l| l.stage.as_str()).collect();
        assert_eq!(names, ["report", "build"]);
        assert_eq!(lost[1].downstream, ["test", "package"]);
        for s in ["build", "test", "package", "report", "deploy"] {
            assert_eq!(state(&r, s), StageState::Pending, "{s}");
        }
        let mut sorted = asked.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            asked.len(),
            "each producer is checked once: {asked:?}"
        );
        Ok(())
    }

    #[test]
    fn a_stage_still_waiting_for_approval_rebuilds_nothing() -> TestResult {
        let dir = tempfile::tempdir()?;
        let p = pipeline(
            dir.path(),
            "  build: { uses: ./p.wasm }
  deploy: { uses: ./p.wasm, needs: [build], approval: required }
  notify: { uses: ./p.wasm, needs: [deploy] }
",
        )?;
        let mut r = record(&p, &["build"]);
        let lost = reset_lost_producers(&p, &mut r, |_, _| Err("missing".into()));
        assert!(lost.is_empty());
        assert_eq!(state(&r, "build"), StageState::Passed);

        if let Some(deploy) = r.stages.get_mut("deploy") {
            deploy.approval = Some(sluice_record::Approval {
                by: "alice".into(),
                at: now(),
            });
        }
        let lost = reset_lost_producers(&p, &mut r, |_, _| Err("missing".into()));
        assert_eq!(lost.len(), 1);
        assert_eq!(state(&r, "build"), StageState::Pending);
        assert!(
            r.stages.get("deploy").is_some_and(|d| d.approval.is_some()),
            "the approval is kept"
        );
        Ok(())
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
