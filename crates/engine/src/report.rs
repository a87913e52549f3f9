//! What happens during a run, as [`Event`]s a [`Reporter`] renders (the
//! CLI has a console reporter for people and a JSON-lines one for
//! machines).
//!
//! An event serialises ([`serde::Serialize`]) to the object that
//! `sluice run --json` prints, without its `ts` (the reporter adds the time
//! it writes the line): `"event"` names the kind in snake case, the other
//! fields are those documented in `docs/events.md` and checked against
//! `docs/events.schema.json`. Field names are part of that schema (v1):
//! fields may be added, never renamed or removed.

use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;
use sluice_record::{RunRecord, StageRecord};

/// Something that happened during a run.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
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
        /// `uses:` as resolved (JSON: `plugin`).
        #[serde(rename = "plugin")]
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
    /// An agent took a stage's job (remote executors only; again when the
    /// job moved to another agent after one was lost).
    StageAssigned {
        /// Stage.
        stage: &'a str,
        /// The agent's name.
        agent: &'a str,
    },
    /// A line of a stage's log (already redacted).
    StageLog {
        /// Stage.
        stage: &'a str,
        /// The line, without its newline.
        line: &'a str,
        /// The record's level, for lines written through WIT 0.2's `log`
        /// (absent for plain output and runner notes).
        #[serde(skip_serializing_if = "Option::is_none")]
        level: Option<LogLevel>,
        /// The record's structured fields (`log`'s `fields`), as an object;
        /// absent when there are none.
        #[serde(
            skip_serializing_if = "<[_]>::is_empty",
            serialize_with = "fields_as_object"
        )]
        fields: &'a [(String, String)],
    },
    /// A running stage said how far it has got (WIT 0.2's `progress`).
    StageProgress {
        /// Stage.
        stage: &'a str,
        /// Units done.
        done: u64,
        /// Units in all, when known.
        total: Option<u64>,
        /// What it is doing (redacted).
        message: &'a str,
    },
    /// An attempt failed and the stage will be tried again.
    StageRetrying {
        /// Stage.
        stage: &'a str,
        /// The attempt about to start.
        attempt: u32,
        /// Total attempts allowed (JSON: `attempts`).
        #[serde(rename = "attempts")]
        of: u32,
        /// Why the last one failed.
        reason: &'a str,
    },
    /// A stage finished (passed, warned, failed or blocked).
    StageFinished {
        /// Stage.
        stage: &'a str,
        /// Its record (JSON: some of its fields, beside `stage`).
        #[serde(flatten, serialize_with = "stage_finished_fields")]
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
        /// Final record (JSON: `run_id`, `status` and each stage's state).
        #[serde(flatten, serialize_with = "run_finished_fields")]
        record: &'a RunRecord,
    },
}

/// How important a log record is (WIT 0.2's `log.level`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Finest detail.
    Trace,
    /// Detail for whoever debugs the stage.
    Debug,
    /// What the stage is doing.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

impl LogLevel {
    /// `trace` … `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// `[(k, v), …]` as a JSON object (keys in the order given).
fn fields_as_object<S: Serializer>(
    fields: &&[(String, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(fields.iter().map(|(k, v)| (k, v)))
}

/// The fields of a `stage_finished` event taken from the stage's record.
/// `duration_ms`, `reason` and `verdict` are `null` when unset.
fn stage_finished_fields<S: Serializer>(
    record: &&StageRecord,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut s = serializer.serialize_struct("StageFinished", 11)?;
    s.serialize_field("state", &record.state)?;
    s.serialize_field("duration_ms", &record.duration_ms)?;
    s.serialize_field("reason", &record.reason)?;
    s.serialize_field("verdict", &record.verdict)?;
    s.serialize_field("gates", &record.gates)?;
    s.serialize_field("metrics", &record.metrics)?;
    s.serialize_field("outputs", &record.outputs)?;
    s.serialize_field("artifacts", &record.artifacts)?;
    s.serialize_field("attempts", &record.attempts)?;
    // Only runs on agents have these; a local run's events stay as they
    // were.
    match &record.agent {
        Some(agent) => s.serialize_field("agent", agent)?,
        None => s.skip_field("agent")?,
    }
    if record.lost.is_empty() {
        s.skip_field("lost")?;
    } else {
        s.serialize_field("lost", &record.lost)?;
    }
    s.end()
}

/// The fields of a `run_finished` event: `run_id`, `status`, and `stages`,
/// each stage's state by name (in pipeline order).
fn run_finished_fields<S: Serializer>(
    record: &&RunRecord,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    /// Stage name to state.
    struct States<'r>(&'r RunRecord);
    impl Serialize for States<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.0.stages.iter().map(|(name, r)| (name, r.state)))
        }
    }
    let mut s = serializer.serialize_struct("RunFinished", 3)?;
    s.serialize_field("run_id", &record.run_id)?;
    s.serialize_field("status", &record.status)?;
    s.serialize_field("stages", &States(record))?;
    s.end()
}

/// `text` with every character that could steer a terminal made visible:
/// C0 and C1 controls (ESC, CR, BEL, backspace, newline …) and DEL become
/// `\u{1b}`-style escapes, as do the bidirectional overrides that reorder
/// what a reader sees ("Trojan source"). Tabs are kept. Every string that
/// comes from a plugin or a stage's output goes through this before it is
/// printed for a person, so a stage cannot clear the screen, rewrite
/// earlier lines or forge a `✓ deploy passed` line.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        (c.is_control() && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
    }
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Receives events; implementations must be cheap and never fail the run.
pub trait Reporter: Send + Sync {
    /// Handle one event.
    fn event(&self, event: &Event<'_>);
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn controls_are_made_visible() {
        assert_eq!(escape_controls("plain\ttext ✓"), "plain\ttext ✓");
        assert_eq!(
            escape_controls("a\u{1b}[2Jb\rc\nd\u{7}e\u{9b}f\u{202e}g"),
            "a\\u{1b}[2Jb\\u{d}c\\u{a}d\\u{7}e\\u{9b}f\\u{202e}g"
        );
    }
}
