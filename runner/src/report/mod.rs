//! What a user sees while a run goes: [`Event`]s rendered by the
//! [`console`] (people) or as JSON lines ([`json`], machines).

pub mod console;
pub mod json;

use crate::record::{RunRecord, StageRecord};

/// Something that happened during a run.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run starts (or resumes).
    RunStarted {
        /// Run id.
        run_id: &'a str,
        /// Pipeline name.
        pipeline: &'a str,
        /// Stage count.
        stages: usize,
        /// Parallelism.
        jobs: usize,
        /// Whether this continues an earlier run.
        resumed: bool,
    },
    /// A plugin was compiled or loaded from the compile cache.
    PluginLoaded {
        /// `uses:` as resolved.
        reference: &'a str,
        /// Component digest.
        digest: &'a str,
        /// `true` when it came from the cache.
        cached: bool,
        /// Milliseconds spent.
        millis: u64,
    },
    /// A warning about the run as a whole (not one stage).
    Warning {
        /// What to tell the user.
        message: &'a str,
    },
    /// A stage attempt starts.
    StageStarted {
        /// Stage.
        stage: &'a str,
        /// Attempt number.
        attempt: u32,
    },
    /// A line of a stage's log (already redacted).
    StageLog {
        /// Stage.
        stage: &'a str,
        /// The line, without its newline.
        line: &'a str,
    },
    /// An attempt failed and the stage will be tried again.
    StageRetrying {
        /// Stage.
        stage: &'a str,
        /// The attempt about to start.
        attempt: u32,
        /// Total attempts allowed.
        of: u32,
        /// Why the last one failed.
        reason: &'a str,
    },
    /// A stage finished (passed, warned, failed or blocked).
    StageFinished {
        /// Stage.
        stage: &'a str,
        /// Its record.
        record: &'a StageRecord,
    },
    /// A stage will not run.
    StageSkipped {
        /// Stage.
        stage: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// A running stage was stopped by fail-fast.
    StageCancelled {
        /// Stage.
        stage: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// A stage waits for `sluice approve`.
    StageAwaitingApproval {
        /// Stage.
        stage: &'a str,
        /// Run id (for the approve command).
        run_id: &'a str,
    },
    /// The run ended or paused.
    RunFinished {
        /// Final record.
        record: &'a RunRecord,
    },
}

/// Receives events; implementations must be cheap and never fail the run.
pub trait Reporter: Send + Sync {
    /// Handle one event.
    fn event(&self, event: &Event<'_>);
}
