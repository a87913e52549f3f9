//! `sluice approve <run> <stage>`.

use std::path::Path;

use crate::record::{now, Approval, RunStore, StageState};

/// Record an approval. Errors are messages for the user.
pub fn approve(
    state_dir: &Path,
    run_id: &str,
    stage: &str,
    by: Option<String>,
) -> anyhow::Result<String> {
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
    let by = by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
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
