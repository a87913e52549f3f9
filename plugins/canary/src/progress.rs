//! `<root>/canary.json`: where a canary got to. Written atomically after
//! every completed step (reason `step <i> completed`) and when it pauses
//! (reason: why), so that the stage, re-run in the same run — after
//! approval (`sluice approve` then `sluice run --resume`) or after the
//! runner was killed (`sluice run --resume`) — continues with the next
//! step at the weight it had instead of starting over at step 0. Removed
//! when the canary ends (promoted, aborted or passed).
//!
//! ```json
//! {"run_id": "…", "stage": "canary", "candidate": "2.0.0",
//!  "next_step": 4, "weight": 20, "reason": "pause at step 3 until approved"}
//! ```
//!
//! The file is only followed when run id, stage and candidate version all
//! match; anything else (a new run, a new candidate) starts at step 0.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sluice_delivery::fsutil;
use sluice_sdk::StageError;

/// What `canary.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The run that paused.
    pub run_id: String,
    /// The stage that paused.
    pub stage: String,
    /// The candidate version being analysed.
    pub candidate: String,
    /// The step to continue with.
    pub next_step: usize,
    /// The candidate's weight when it was saved.
    pub weight: u32,
    /// Why it was saved: `step <i> completed`, or why it paused.
    pub reason: String,
}

/// Reads the file (none when it does not exist or does not parse: a
/// corrupt file must not block a new canary; it is overwritten).
pub fn load(path: &Path) -> Option<Progress> {
    match fsutil::read_json::<Progress>(path) {
        Ok(p) => p,
        Err(e) => {
            sluice_sdk::warn!("ignoring {}: {e}", path.display());
            None
        }
    }
}

/// Writes the file atomically.
pub fn save(path: &Path, p: &Progress) -> Result<(), StageError> {
    fsutil::write_json(path, p)
}

/// Removes the file if it exists.
pub fn clear(path: &Path) -> Result<(), StageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StageError::failed(format!(
            "removing {}: {e}",
            path.display()
        ))),
    }
}

/// Where a stage starts, given what `canary.json` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// No saved progress: step 0.
    Fresh,
    /// Progress of this run, stage and candidate: continue at `next_step`
    /// with the candidate at `weight`.
    Resume {
        /// Step to continue with.
        next_step: usize,
        /// The candidate's weight then.
        weight: u32,
    },
    /// Progress of another run, stage or candidate: step 0, and this says
    /// why the file was not followed (for the log).
    Ignored(String),
}

/// Decides where to start from a saved progress.
pub fn start(p: Option<&Progress>, run_id: &str, stage: &str, candidate: &str) -> Start {
    let Some(p) = p else {
        return Start::Fresh;
    };
    let mut differs = Vec::new();
    if p.run_id != run_id {
        differs.push(format!("run {} (this is run {run_id})", p.run_id));
    }
    if p.stage != stage {
        differs.push(format!("stage `{}` (this is `{stage}`)", p.stage));
    }
    if p.candidate != candidate {
        differs.push(format!(
            "candidate {} (this is candidate {candidate})",
            p.candidate
        ));
    }
    if differs.is_empty() {
        Start::Resume {
            next_step: p.next_step,
            weight: p.weight,
        }
    } else {
        Start::Ignored(format!(
            "it belongs to {}; starting at step 0",
            differs.join(", ")
        ))
    }
}

/// The step to start at: `next_step` of a matching progress, else 0.
pub fn start_step(p: Option<&Progress>, run_id: &str, stage: &str, candidate: &str) -> usize {
    match start(p, run_id, stage, candidate) {
        Start::Resume { next_step, .. } => next_step,
        Start::Fresh | Start::Ignored(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_matching() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("canary.json");
        assert_eq!(load(&path), None);
        let p = Progress {
            run_id: "r1".into(),
            stage: "canary".into(),
            candidate: "2.0.0".into(),
            next_step: 3,
            weight: 20,
            reason: "pause".into(),
        };
        save(&path, &p).expect("save");
        let back = load(&path);
        assert_eq!(back.as_ref(), Some(&p));
        assert_eq!(start_step(back.as_ref(), "r1", "canary", "2.0.0"), 3);
        assert_eq!(start_step(back.as_ref(), "r2", "canary", "2.0.0"), 0);
        assert_eq!(start_step(back.as_ref(), "r1", "canary", "3.0.0"), 0);
        assert_eq!(
            start(back.as_ref(), "r1", "canary", "2.0.0"),
            Start::Resume {
                next_step: 3,
                weight: 20
            }
        );
        assert_eq!(start(None, "r1", "canary", "2.0.0"), Start::Fresh);
        match start(back.as_ref(), "r2", "canary", "3.0.0") {
            Start::Ignored(why) => assert_eq!(
                why,
                "it belongs to run r1 (this is run r2), candidate 2.0.0 \
                 (this is candidate 3.0.0); starting at step 0"
            ),
            other => panic!("{other:?}"),
        }
        clear(&path).expect("clear");
        clear(&path).expect("clear twice");
        assert_eq!(load(&path), None);
        std::fs::write(&path, "{oops").expect("write");
        assert_eq!(load(&path), None);
    }
}
