//! `<root>/canary.json`: where a paused canary stopped, so that the stage,
//! re-run in the same run after approval (`sluice approve` then
//! `sluice run --resume`), continues with the step after the pause instead
//! of starting over. Written atomically; removed when the canary ends
//! (promoted, aborted or completed).
//!
//! ```json
//! {"run_id": "…", "stage": "canary", "candidate": "2.0.0",
//!  "next_step": 4, "weight": 20, "reason": "pause until approved"}
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
    /// The candidate's weight when it paused.
    pub weight: u32,
    /// Why it paused.
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

/// The step to start at: `next_step` of a matching progress, else 0.
pub fn start_step(p: Option<&Progress>, run_id: &str, stage: &str, candidate: &str) -> usize {
    match p {
        Some(p) if p.run_id == run_id && p.stage == stage && p.candidate == candidate => {
            p.next_step
        }
        _ => 0,
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
        clear(&path).expect("clear");
        clear(&path).expect("clear twice");
        assert_eq!(load(&path), None);
        std::fs::write(&path, "{oops").expect("write");
        assert_eq!(load(&path), None);
    }
}
