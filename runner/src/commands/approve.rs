//! `sluice approve <run> <stage>`.

use std::path::Path;

use sluice_record::{now, Approval, RecordError, RunStore, StageState};

/// The longest approver name accepted, in characters.
pub const MAX_APPROVER_CHARS: usize = 256;

/// Why `sluice approve` refused.
#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    /// The run cannot be read, locked or saved.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The run has no such stage.
    #[error("run `{run_id}` has no stage `{stage}`; its stages are: {}", stages.join(", "))]
    NoSuchStage {
        /// Run id.
        run_id: String,
        /// The stage asked for.
        stage: String,
        /// The run's stages.
        stages: Vec<String>,
    },
    /// The stage does not wait for an approval.
    #[error("stage `{stage}` of run `{run_id}` is {}, not awaiting approval", state.as_str())]
    NotAwaitingApproval {
        /// Run id.
        run_id: String,
        /// Stage.
        stage: String,
        /// Its state.
        state: StageState,
    },
    /// The approver name is empty.
    #[error("the approver name from {origin} is empty; give a name with --by NAME")]
    EmptyApprover {
        /// `--by` or `$USER`.
        origin: &'static str,
    },
    /// The approver name is too long.
    #[error(
        "the approver name from {origin} is {chars} characters long; at most {MAX_APPROVER_CHARS} are accepted"
    )]
    ApproverTooLong {
        /// `--by` or `$USER`.
        origin: &'static str,
        /// Its length in characters.
        chars: usize,
    },
    /// The approver name holds a control character or bidirectional
    /// override.
    #[error(
        "the approver name from {origin} contains the control character {}; names are shown \
         in `sluice runs show` and may hold no line breaks, escape sequences or other \
         control characters",
        found.escape_unicode()
    )]
    ApproverControl {
        /// `--by` or `$USER`.
        origin: &'static str,
        /// The first such character.
        found: char,
    },
}

/// Record an approval.
pub fn approve(
    state_dir: &Path,
    run_id: &str,
    stage: &str,
    by: Option<String>,
) -> Result<String, ApproveError> {
    // Checked first: a bad name is refused whatever the run's state.
    let (by, source) = match by {
        Some(by) => (by, "--by"),
        None => (
            std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
            "$USER",
        ),
    };
    check_approver(&by, source)?;
    let store = RunStore::new(state_dir);
    let mut record = store.load(run_id)?;
    let _lock = store.lock(run_id)?;
    let names: Vec<String> = record.stages.keys().cloned().collect();
    let Some(rec) = record.stages.get_mut(stage) else {
        return Err(ApproveError::NoSuchStage {
            run_id: run_id.to_owned(),
            stage: stage.to_owned(),
            stages: names,
        });
    };
    if rec.state != StageState::AwaitingApproval {
        return Err(ApproveError::NotAwaitingApproval {
            run_id: run_id.to_owned(),
            stage: stage.to_owned(),
            state: rec.state,
        });
    }
    rec.approval = Some(Approval {
        by: by.clone(),
        at: now(),
    });
    rec.state = StageState::Pending;
    record.updated_at = now();
    store.save(&record)?;
    Ok(format!(
        "approved stage `{stage}` of run `{run_id}` as {by}; continue with `sluice run --resume {run_id}`\n"
    ))
}

/// Refuses an approver name that is empty, too long, or holds a control
/// character (a newline, an escape sequence) or a bidirectional override:
/// the name is stored in the record and shown by `runs show`, where a
/// newline would let it forge lines such as `✓ deploy passed`. `source`
/// says where the name came from (`--by` or `$USER`).
fn check_approver(by: &str, source: &'static str) -> Result<(), ApproveError> {
    if by.trim().is_empty() {
        return Err(ApproveError::EmptyApprover { origin: source });
    }
    let chars = by.chars().count();
    if chars > MAX_APPROVER_CHARS {
        return Err(ApproveError::ApproverTooLong {
            origin: source,
            chars,
        });
    }
    let is_bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if let Some(found) = by.chars().find(|&c| c.is_control() || is_bidi(c)) {
        return Err(ApproveError::ApproverControl {
            origin: source,
            found,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approver_names() {
        assert!(check_approver("alice", "--by").is_ok());
        assert!(check_approver("Zoë Ünal <zoe@example.com>", "--by").is_ok());
        for bad in [
            "x\nforged",
            "x\r",
            "\u{1b}[31mred",
            "a\u{202e}b",
            "",
            "  ",
            &"a".repeat(257),
        ] {
            let err = check_approver(bad, "--by").err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains("--by")),
                "{bad:?}: {err:?}"
            );
        }
        let err = check_approver("x\nforged", "--by")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("\\u{a}")),
            "{err:?}"
        );
    }
}
