//! What happens during a run, as [`Event`]s a [`Reporter`] renders (the
//! CLI has a console reporter for people and a JSON-lines one for
//! machines).

use sluice_record::{RunRecord, StageRecord};

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
