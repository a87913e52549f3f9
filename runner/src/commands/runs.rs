//! `sluice runs list` and `sluice runs show`.

use std::path::Path;

use crate::report::escape_controls as esc;
use sluice_record::{RecordError, RunRecord, RunStatus, RunStore};

fn status_word(store: &RunStore, r: &RunRecord) -> &'static str {
    match r.status {
        RunStatus::Running if !store.is_locked(&r.run_id) => "interrupted",
        RunStatus::Running => "running",
        RunStatus::Passed => "passed",
        RunStatus::Failed => "failed",
        RunStatus::Paused => "paused",
        RunStatus::Interrupted => "interrupted",
    }
}

/// The table of runs (or JSON).
pub fn list(state_dir: &Path, json: bool) -> Result<String, RecordError> {
    let store = RunStore::new(state_dir);
    let runs = store.list()?;
    if json {
        let items: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| match r {
                Ok(r) => serde_json::json!({
                    "run_id": r.run_id, "pipeline": r.pipeline, "status": status_word(&store, r),
                    "created_at": r.created_at, "updated_at": r.updated_at,
                    "stages": r.stages.len(),
                    "passed": r.stages.values().filter(|s| s.state.succeeded()).count(),
                }),
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            })
            .collect();
        return Ok(format!("{}\n", serde_json::Value::Array(items)));
    }
    if runs.is_empty() {
        return Ok(format!("no runs in {}\n", state_dir.join("runs").display()));
    }
    let mut out = format!(
        "{:<24} {:<20} {:<12} {:<8} CREATED\n",
        "RUN", "PIPELINE", "STATUS", "PASSED"
    );
    for r in runs {
        match r {
            Ok(r) => out.push_str(&format!(
                "{:<24} {:<20} {:<12} {:<8} {}\n",
                r.run_id,
                r.pipeline,
                status_word(&store, &r),
                format!(
                    "{}/{}",
                    r.stages.values().filter(|s| s.state.succeeded()).count(),
                    r.stages.len()
                ),
                r.created_at
            )),
            Err(e) => out.push_str(&format!("error: {e}\n")),
        }
    }
    Ok(out)
}

/// One run in detail (or its record as JSON).
pub fn show(state_dir: &Path, run_id: &str, json: bool) -> Result<String, RecordError> {
    let store = RunStore::new(state_dir);
    let r = store.load(run_id)?;
    if json {
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        ));
    }
    let mut out = format!(
        "run {} · pipeline {} · {}\n  file: {}\n  created {} · updated {}\n",
        r.run_id,
        r.pipeline,
        status_word(&store, &r),
        r.pipeline_path.display(),
        r.created_at,
        r.updated_at
    );
    for (name, s) in &r.stages {
        let dur = s
            .duration_ms
            .map(|ms| format!(" {:.2}s", ms as f64 / 1000.0))
            .unwrap_or_default();
        let attempts = if s.attempts > 1 {
            format!(" ({} attempts)", s.attempts)
        } else {
            String::new()
        };
        out.push_str(&format!("  {name}: {}{dur}{attempts}\n", s.state.as_str()));
        if let Some(p) = &s.plugin {
            out.push_str(&format!("    plugin {} {}\n", esc(&p.reference), p.digest));
            let signer = p
                .signer
                .as_deref()
                .map(|who| format!("signed by {}", esc(who)))
                .unwrap_or_else(|| "no verified signature".to_string());
            let rules = if p.policy_rules.is_empty() {
                String::new()
            } else {
                format!(
                    " · policy rule {}",
                    p.policy_rules
                        .iter()
                        .map(|r| esc(r))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            out.push_str(&format!("      {signer}{rules}\n"));
        }
        for m in &s.metrics {
            out.push_str(&format!(
                "    metric {} = {}{}\n",
                esc(&m.name),
                m.value,
                m.unit
                    .as_deref()
                    .map(|u| format!(" {}", esc(u)))
                    .unwrap_or_default()
            ));
        }
        if let Some(reason) = &s.reason {
            out.push_str(&format!("    reason: {}\n", esc(reason)));
        }
        for g in &s.gates {
            out.push_str(&format!(
                "    gate {}: {}\n",
                g.verdict.as_str(),
                esc(&g.message)
            ));
        }
        for a in &s.artifacts {
            out.push_str(&format!(
                "    artifact {} {} ({} bytes, {})\n",
                esc(&a.name),
                a.digest,
                a.size,
                esc(&a.media_type)
            ));
        }
        for (k, v) in &s.outputs {
            out.push_str(&format!("    output {} = {}\n", esc(k), esc(v)));
        }
        if let Some(a) = &s.approval {
            out.push_str(&format!("    approved by {} at {}\n", esc(&a.by), a.at));
        }
        out.push_str(&format!(
            "    log: {}\n",
            store.run_dir(&r.run_id).join(&s.log).display()
        ));
    }
    Ok(out)
}

/// `sluice runs repair RUN`: keep the journal entries before its first bad
/// line, fold them into the snapshot, and move the journal aside, so that
/// `--resume` continues from what was recorded intact.
pub fn repair(state_dir: &Path, run_id: &str) -> Result<String, RecordError> {
    let store = RunStore::new(state_dir);
    let _lock = store.lock(run_id)?;
    let mut record = store.load_snapshot(run_id)?;
    let run_dir = store.run_dir(run_id);
    let journal = run_dir.join(sluice_record::journal::JOURNAL_FILE);
    let Some((line, what)) = sluice_record::journal::replay_until_bad(&run_dir, &mut record)?
    else {
        return Ok(format!(
            "run {run_id}: its journal reads back whole; nothing to repair\n"
        ));
    };
    let aside = run_dir.join(format!(
        "{}.damaged-{}",
        sluice_record::journal::JOURNAL_FILE,
        sluice_record::now().replace(':', "")
    ));
    std::fs::rename(&journal, &aside).map_err(|source| RecordError::Io {
        path: journal.clone(),
        source,
    })?;
    // Durable before anyone resumes: the snapshot now holds every entry
    // that was intact, and a new journal continues after it.
    store.save(&record)?;
    Ok(format!(
        "run {run_id}: kept the journal up to line {kept} (entry {seq}); line {line} was bad: {what}\n\
         the damaged journal is now {aside}\n\
         continue with `sluice run --resume {run_id}` (stages recorded after line {kept} run again)\n",
        kept = line - 1,
        seq = record.journal_seq,
        aside = aside.display(),
    ))
}
