//! Runs the stage DAG: `needs` ordering, bounded parallelism, `when:`,
//! approvals, retries and fail-fast cancellation. It knows nothing of
//! WebAssembly: an [`Executor`] runs one attempt of one stage, and the
//! scheduler records every state change in the [`RunRecord`] (saved
//! atomically each time) and reports it as an [`Event`].

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::pipeline::{Pipeline, When};
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
    needs: Vec<String>,
    ancestors: BTreeSet<String>,
    when: When,
    approval: bool,
    retries: u32,
}

/// Drives one run to its end (or to a pause).
pub struct Scheduler<'a> {
    nodes: Vec<(String, Node)>,
    record: RunRecord,
    store: &'a RunStore,
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
        let nodes = pipeline
            .stages
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    Node {
                        needs: s.needs.clone(),
                        ancestors: pipeline.ancestors(name),
                        when: s.when,
                        approval: s.approval,
                        retries: s.retries,
                    },
                )
            })
            .collect();
        Scheduler {
            nodes,
            record,
            store,
            reporter,
            options,
        }
    }

    fn state(&self, stage: &str) -> StageState {
        self.record
            .stages
            .get(stage)
            .map(|r| r.state)
            .unwrap_or(StageState::Pending)
    }

    fn stage_mut(&mut self, stage: &str) -> &mut StageRecord {
        self.record
            .stages
            .entry(stage.to_string())
            .or_insert_with(|| StageRecord::pending(stage))
    }

    fn save(&mut self) -> Result<(), RecordError> {
        self.record.updated_at = now();
        self.store.save(&self.record)
    }

    fn failing(&self) -> Option<String> {
        self.record
            .stages
            .iter()
            .find(|(_, r)| r.state.is_failure())
            .map(|(n, _)| n.clone())
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
                    if let Some(failed) = self.failing() {
                        return Decision::Skip(format!(
                            "not started: `{failed}` failed and the run stops at the first failure (use --keep-going to run independent stages)"
                        ));
                    }
                }
                Decision::Run
            }
            When::Failure => {
                if node.ancestors.iter().any(|a| self.state(a).is_failure()) {
                    Decision::Run
                } else {
                    Decision::Skip("no upstream stage failed (`when: failure`)".into())
                }
            }
            When::Always => Decision::Run,
        }
    }

    /// Run until every stage is finished or waiting for approval.
    pub async fn run<E: Executor>(mut self, executor: Arc<E>) -> Result<RunRecord, RecordError> {
        let mut tasks: JoinSet<(String, AttemptOutcome)> = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
        self.record.status = RunStatus::Running;
        self.save()?;
        loop {
            let mut changed = false;
            for i in 0..self.nodes.len() {
                let name = self.nodes[i].0.clone();
                let node = &self.nodes[i].1;
                if self.state(&name) != StageState::Pending
                    || !node.needs.iter().all(|n| self.state(n).is_terminal())
                {
                    continue;
                }
                match self.decide(node) {
                    Decision::Skip(reason) => {
                        let r = self.stage_mut(&name);
                        r.state = StageState::Skipped;
                        r.reason = Some(reason.clone());
                        r.finished_at = Some(now());
                        self.reporter.event(&Event::StageSkipped {
                            stage: &name,
                            reason: &reason,
                        });
                        changed = true;
                    }
                    Decision::Run => {
                        let approval_missing = match self.record.stages.get(&name) {
                            Some(r) => {
                                (node.approval || r.approval_required) && r.approval.is_none()
                            }
                            None => node.approval,
                        };
                        if approval_missing {
                            self.stage_mut(&name).state = StageState::AwaitingApproval;
                            self.reporter.event(&Event::StageAwaitingApproval {
                                stage: &name,
                                run_id: &self.record.run_id,
                            });
                            changed = true;
                        } else if running.len() < self.options.jobs.max(1) {
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
                            let snapshot = Arc::new(self.record.clone());
                            let fut = executor.clone().attempt(name.clone(), attempt, snapshot);
                            let stage = name.clone();
                            let handle = tasks.spawn(async move { (stage, fut.await) });
                            running.insert(handle.id(), name.clone());
                            changed = true;
                        }
                    }
                }
            }
            if changed {
                self.save()?;
            }
            if running.is_empty() {
                if changed {
                    continue;
                }
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
            let node_retries = self
                .nodes
                .iter()
                .find(|(n, _)| *n == stage)
                .map(|(_, n)| n.retries)
                .unwrap_or(0);
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
                self.save()?;
                let backoff = self.options.retry_backoff * attempts;
                let snapshot = Arc::new(self.record.clone());
                let fut = executor.clone().attempt(stage.clone(), attempt, snapshot);
                let name = stage.clone();
                let handle = tasks.spawn(async move {
                    tokio::time::sleep(backoff).await;
                    (name, fut.await)
                });
                running.insert(handle.id(), stage);
                continue;
            }
            self.finish(&stage, outcome);
            self.save()?;
            if self.options.fail_fast && self.state(&stage).is_failure() {
                self.cancel_all(&mut tasks, &mut running, &stage).await;
                self.save()?;
            }
        }
        self.record.status = self.final_status();
        self.save()?;
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
