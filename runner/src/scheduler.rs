//! Runs the stage DAG: `needs` ordering, bounded parallelism, `when:`,
//! approvals, retries and fail-fast cancellation. It knows nothing of
//! WebAssembly: an [`Executor`] runs one attempt of one stage, and the
//! scheduler records every state change in the [`RunRecord`] (one journal
//! line per change, a full snapshot at start and end) and reports it as an
//! [`Event`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::pipeline::{Pipeline, When};
use crate::record::journal::Journal;
use crate::record::{now, RecordError, RunRecord, RunStatus, RunStore, StageRecord, StageState};
use crate::report::{Event, Reporter};

/// The result of one attempt, as the executor saw it.
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
pub trait Executor: Send + Sync + 'static {
    /// Start attempt `attempt` (1-based) of `stage`.
    fn attempt(
        self: Arc<Self>,
        stage: String,
        attempt: u32,
        record: Arc<RunRecord>,
    ) -> AttemptFuture;
}

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
                for referenced in crate::pipeline::referenced_stages(&s.with) {
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

    fn spawn_attempt<E: Executor>(
        &self,
        executor: &Arc<E>,
        tasks: &mut JoinSet<(String, AttemptOutcome)>,
        running: &mut HashMap<tokio::task::Id, String>,
        index: usize,
        attempt: u32,
        delay: Duration,
    ) {
        let node = &self.nodes[index];
        let view = Arc::new(self.record.view(&node.context));
        let fut = executor.clone().attempt(node.name.clone(), attempt, view);
        let name = node.name.clone();
        let handle = tasks.spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            (name, fut.await)
        });
        running.insert(handle.id(), node.name.clone());
    }

    /// Start or skip ready stages while there is room.
    fn start_ready<E: Executor>(
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
    pub async fn run<E: Executor>(mut self, executor: Arc<E>) -> Result<RunRecord, RecordError> {
        let mut tasks: JoinSet<(String, AttemptOutcome)> = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
        self.record.status = RunStatus::Running;
        self.snapshot()?;
        loop {
            self.start_ready(&executor, &mut tasks, &mut running);
            self.flush()?;
            if running.is_empty() {
                break;
            }
            let Some(joined) = tasks.join_next_with_id().await else {
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
                self.cancel_all(&mut tasks, &mut running, &stage).await;
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

    async fn cancel_all(
        &mut self,
        tasks: &mut JoinSet<(String, AttemptOutcome)>,
        running: &mut HashMap<tokio::task::Id, String>,
        because: &str,
    ) {
        if running.is_empty() {
            return;
        }
        tasks.abort_all();
        // Wait until every task is gone, so no sandbox outlives the decision.
        while tasks.join_next().await.is_some() {}
        let names: Vec<String> = running.drain().map(|(_, n)| n).collect();
        for name in names {
            let reason = format!("cancelled because `{because}` failed (fail-fast)");
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
