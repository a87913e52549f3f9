//! The host directories behind a stage's `/artifacts` mounts, under
//! `<run>/work/`.
//!
//! - `work/<stage>/`: what belongs to one stage (`in/<need>/` copies of its
//!   input artifacts, `scratch/` for programs it runs, `provenance/`), made
//!   only when used and removed when the stage ends.
//! - `work/.empty/`: the one read-only `/artifacts/in` of every stage
//!   without input artifacts.
//! - `work/.out-<n>/`: `/artifacts/out` directories. A stage's outputs are
//!   copied into the CAS when it ends; an output directory left empty goes
//!   back to a pool and the next stage reuses it, so a stage that writes
//!   nothing costs no `mkdir`/`rmdir` (on ext4 these allocate and free an
//!   inode and a block, more than the rest of a no-op stage together). One
//!   that is not empty is removed: no stage ever sees another's files.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The `work/` directory of one run.
pub struct WorkDirs {
    root: PathBuf,
    spare_outputs: Mutex<Vec<PathBuf>>,
    next_output: AtomicU64,
    empty: OnceLock<Result<(), (io::ErrorKind, String)>>,
}

impl WorkDirs {
    /// The work directories of the run in `run_dir` (nothing is created yet).
    pub fn new(run_dir: &Path) -> WorkDirs {
        WorkDirs {
            root: run_dir.join("work"),
            spare_outputs: Mutex::new(Vec::new()),
            next_output: AtomicU64::new(0),
            empty: OnceLock::new(),
        }
    }

    /// `work/<stage>`, for what only this stage uses (not created here).
    pub fn stage_dir(&self, stage: &str) -> PathBuf {
        self.root.join(stage)
    }

    /// The shared empty `/artifacts/in`, made on first use.
    pub fn empty_inputs(&self) -> io::Result<PathBuf> {
        let dir = self.root.join(".empty");
        match self
            .empty
            .get_or_init(|| std::fs::create_dir_all(&dir).map_err(|e| (e.kind(), e.to_string())))
        {
            Ok(()) => Ok(dir),
            Err((kind, message)) => Err(io::Error::new(
                *kind,
                format!("cannot create {}: {message}", dir.display()),
            )),
        }
    }

    /// An empty directory for a stage's `/artifacts/out`: a spare one, or a
    /// new one. It returns to the pool when dropped, if still empty.
    pub fn outputs(&self) -> io::Result<OutputsDir<'_>> {
        let spare = self
            .spare_outputs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let path = match spare {
            Some(path) => path,
            None => {
                let n = self.next_output.fetch_add(1, Ordering::Relaxed);
                let path = self.root.join(format!(".out-{n}"));
                fresh_dir(&path).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
                })?;
                path
            }
        };
        Ok(OutputsDir { path, dirs: self })
    }

    fn give_back(&self, path: PathBuf) {
        let empty = std::fs::read_dir(&path)
            .map(|mut entries| entries.next().is_none())
            .unwrap_or(false);
        if empty {
            self.spare_outputs
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(path);
        } else if let Err(e) = std::fs::remove_dir_all(&path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(dir = %path.display(), error = %e, "could not remove a stage's output directory");
            }
        }
    }
}

/// Make `path` an empty directory: a leftover of a runner that was killed
/// (a resumed run reuses its `work/`) is removed first.
fn fresh_dir(path: &Path) -> io::Result<()> {
    match std::fs::create_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::create_dir(path)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_dir_all(path)?;
            std::fs::create_dir(path)
        }
        other => other,
    }
}

/// A stage's `/artifacts/out` on the host, lent from [`WorkDirs`].
pub struct OutputsDir<'a> {
    path: PathBuf,
    dirs: &'a WorkDirs,
}

impl OutputsDir<'_> {
    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OutputsDir<'_> {
    fn drop(&mut self) {
        self.dirs.give_back(std::mem::take(&mut self.path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn an_empty_output_directory_is_reused_and_a_used_one_is_removed() -> TestResult {
        let run = tempfile::tempdir()?;
        let dirs = WorkDirs::new(run.path());
        let first = dirs.outputs()?.path().to_path_buf();
        assert!(first.is_dir(), "an output directory exists once lent");
        // Given back empty: the next stage gets the same one.
        let again = dirs.outputs()?;
        assert_eq!(again.path(), first);
        std::fs::create_dir(again.path().join("sub"))?;
        std::fs::write(again.path().join("sub/report.json"), b"{}")?;
        drop(again);
        assert!(!first.exists(), "a used output directory is removed");
        let fresh = dirs.outputs()?;
        assert_ne!(fresh.path(), first);
        assert_eq!(std::fs::read_dir(fresh.path())?.count(), 0);
        Ok(())
    }

    #[test]
    fn a_leftover_output_directory_of_a_killed_runner_is_emptied() -> TestResult {
        let run = tempfile::tempdir()?;
        let stale = run.path().join("work/.out-0");
        std::fs::create_dir_all(&stale)?;
        std::fs::write(stale.join("old.txt"), b"from before the crash")?;
        let dirs = WorkDirs::new(run.path());
        let out = dirs.outputs()?;
        assert_eq!(out.path(), stale);
        assert_eq!(std::fs::read_dir(out.path())?.count(), 0);
        Ok(())
    }

    #[test]
    fn concurrent_stages_get_different_output_directories() -> TestResult {
        let run = tempfile::tempdir()?;
        let dirs = WorkDirs::new(run.path());
        let a = dirs.outputs()?;
        let b = dirs.outputs()?;
        assert_ne!(a.path(), b.path());
        Ok(())
    }

    #[test]
    fn empty_inputs_is_made_once_and_stage_dirs_are_not_made() -> TestResult {
        let run = tempfile::tempdir()?;
        let dirs = WorkDirs::new(run.path());
        let empty = dirs.empty_inputs()?;
        assert!(empty.is_dir());
        assert_eq!(dirs.empty_inputs()?, empty);
        assert!(!dirs.stage_dir("build").exists());
        Ok(())
    }
}
