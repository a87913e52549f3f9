//! `sluice approve <run> <stage>`.

use std::path::Path;

use sluice_record::{now, Approval, RunStore, StageState};

/// The longest approver name accepted, in characters.
pub const MAX_APPROVER_CHARS: usize = 256;

/// Record an approval. Errors are messages for the user.
pub fn approve(
    state_dir: &Path,
    run_id: &str,
    stage: &str,
    by: Option<String>,
) -> anyhow::Result<String> {
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
        anyhow::bail!(
            "run `{run_id}` has no stage `{stage}`; its stages are: {}",
            names.join(", ")
        );
    };
    if rec.state != StageState::AwaitingApproval {
        anyhow::bail!(
            "stage `{stage}` of run `{run_id}` is {}, not awaiting approval",
            rec.state.as_str()
        );
    }
    rec.approval = Some(Approval {
        by: by.clone(),
        at: now(),
    });
    rec.state = StageState::Pending;
    record.updated_at = now();
    store.save(&record)?;
    Ok(format!(
        "approved stage `{stage}` of run `{run_id}` as {by}; continue with `sluice run --resume {run_id}`"
    ))
}

/// Refuses an approver name that is empty, too long, or holds a control
/// character (a newline, an escape sequence) or a bidirectional override:
/// the name is stored in the record and shown by `runs show`, where a
/// newline would let it forge lines such as `✓ deploy passed`. `source`
/// says where the name came from (`--by` or `$USER`).
fn check_approver(by: &str, source: &str) -> anyhow::Result<()> {
    if by.trim().is_empty() {
        anyhow::bail!("the approver name from {source} is empty; give a name with --by NAME");
    }
    if by.chars().count() > MAX_APPROVER_CHARS {
        anyhow::bail!(
            "the approver name from {source} is {} characters long; at most {MAX_APPROVER_CHARS} are accepted",
            by.chars().count()
        );
    }
    let is_bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if let Some(c) = by.chars().find(|&c| c.is_control() || is_bidi(c)) {
        anyhow::bail!(
            "the approver name from {source} contains the control character {}; names are shown \
             in `sluice runs show` and may hold no line breaks, escape sequences or other \
             control characters",
            c.escape_unicode()
        );
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
