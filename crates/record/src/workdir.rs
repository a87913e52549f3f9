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
//!
//! A runner that is killed leaves these behind, and temporary files (`.tmp*`)
//! of writes it never finished; [`sweep_runs`] and
//! [`remove_stale_temp_files`] remove them at the start of a later run.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

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
/// (a resumed run reuses its `work/`) is removed first, unless it is an
/// empty directory already (a warm agent reuses its work tree job after
/// job, and removing and creating a directory costs ext4 an inode search).
fn fresh_dir(path: &Path) -> io::Result<()> {
    match std::fs::create_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::create_dir(path)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if is_empty_real_dir(path) {
                return Ok(());
            }
            std::fs::remove_dir_all(path)?;
            std::fs::create_dir(path)
        }
        other => other,
    }
}

/// Whether `path` is a directory (not a link to one) with nothing in it.
fn is_empty_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
        && std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
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

/// How old a temporary file must be before a sweep removes it. Writers
/// touch their temporary file as they write and rename it when done, so one
/// this old belongs to a runner that died; a younger one may be written by a
/// concurrent runner right now.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60 * 60);

/// How a sweep goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    /// Only temporary files last modified at least this long ago go.
    pub older_than: Duration,
    /// Only report what would be removed (`sluice gc --dry-run`).
    pub dry_run: bool,
}

impl Default for Sweep {
    /// What every run does at its start: remove, with [`STALE_TEMP_AGE`].
    fn default() -> Sweep {
        Sweep {
            older_than: STALE_TEMP_AGE,
            dry_run: false,
        }
    }
}

/// What a sweep removed (or, dry, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Temporary files.
    pub files: usize,
    /// Their size in bytes.
    pub bytes: u64,
    /// `work/` directories of runs no runner holds.
    pub work_dirs: usize,
    /// Every file and directory, in the order found.
    pub paths: Vec<PathBuf>,
}

impl std::ops::AddAssign for Swept {
    fn add_assign(&mut self, other: Swept) {
        self.files += other.files;
        self.bytes += other.bytes;
        self.work_dirs += other.work_dirs;
        self.paths.extend(other.paths);
    }
}

/// Removes the regular files named `.tmp*` directly in `dir` that were last
/// modified at least `sweep.older_than` ago (what `tempfile` names the files
/// the runner writes before renaming them into place). A missing `dir` is
/// not an error; a file that cannot be removed is logged and skipped.
pub fn remove_stale_temp_files(dir: &Path, sweep: &Sweep) -> Swept {
    let mut swept = Swept::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return swept;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        if !entry.file_name().as_encoded_bytes().starts_with(b".tmp") {
            continue;
        }
        // Not followed: a link named `.tmp*` is no temporary file of ours.
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let stale = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= sweep.older_than);
        if !meta.is_file() || !stale {
            continue;
        }
        let path = entry.path();
        let removed = if sweep.dry_run {
            true
        } else {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::debug!(file = %path.display(), "removed a stale temporary file");
                    true
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "could not remove a stale temporary file");
                    false
                }
            }
        };
        if removed {
            swept.files += 1;
            swept.bytes += meta.len();
            swept.paths.push(path);
        }
    }
    swept
}

/// Sweeps the runs under `state_dir`: stale temporary files (see
/// [`remove_stale_temp_files`]) in every run's directory, and the whole
/// `work/` directory of every run that no runner holds. A stage's work
/// directories are removed when it ends and its output directory is emptied
/// into the CAS, so whatever a run nobody holds left in `work/` (non-empty
/// `.out-N`, `<stage>/in` copies of artifacts) is from a runner that was
/// killed, and a resumed run recreates what it needs.
///
/// The run's lock is taken while its `work/` is removed, so a runner that
/// resumes it meanwhile is refused as busy rather than losing a directory
/// it just made; runs without `work/` are never locked, so a run being
/// created right now (whose directory exists before its lock) is not either.
pub fn sweep_runs(state_dir: &Path, sweep: &Sweep) -> Swept {
    let store = crate::RunStore::new(state_dir);
    let runs = state_dir.join("runs");
    let mut swept = Swept::default();
    let Ok(entries) = std::fs::read_dir(&runs) else {
        return swept;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let run_dir = entry.path();
        swept += remove_stale_temp_files(&run_dir, sweep);
        let work = run_dir.join("work");
        if !work.is_dir() {
            continue;
        }
        let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        // Held by a runner (possibly this one): its `work/` is in use.
        let Ok(_lock) = store.lock(&id) else {
            continue;
        };
        let removed = if sweep.dry_run {
            true
        } else {
            match std::fs::remove_dir_all(&work) {
                Ok(()) => {
                    tracing::debug!(dir = %work.display(), "removed the work directory of a run nobody holds");
                    true
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => {
                    tracing::warn!(dir = %work.display(), error = %e, "could not remove the work directory of a run nobody holds");
                    false
                }
            }
        };
        if removed {
            swept.work_dirs += 1;
            swept.paths.push(work);
        }
    }
    swept
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
    fn a_leftover_empty_output_directory_is_kept_and_a_link_replaced() -> TestResult {
        let run = tempfile::tempdir()?;
        let out = run.path().join("work/.out-0");
        std::fs::create_dir_all(&out)?;
        let inode =
            |p: &Path| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        let before = inode(&out)?;
        // A new WorkDirs over the same tree (a warm agent's next job): the
        // empty directory is used as it is.
        let dirs = WorkDirs::new(run.path());
        let lent = dirs.outputs()?;
        assert_eq!(lent.path(), out);
        assert_eq!(
            inode(lent.path())?,
            before,
            "an empty leftover is not recreated"
        );
        drop(lent);
        drop(dirs);
        // A symlink in its place is never followed into: it is replaced.
        std::fs::remove_dir(&out)?;
        let elsewhere = run.path().join("elsewhere");
        std::fs::create_dir(&elsewhere)?;
        std::os::unix::fs::symlink(&elsewhere, &out)?;
        let dirs = WorkDirs::new(run.path());
        let lent = dirs.outputs()?;
        assert!(std::fs::symlink_metadata(lent.path())?.is_dir());
        assert!(elsewhere.is_dir());
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

    /// Writes `path` and dates it `age` back.
    fn file_aged(path: &Path, age: Duration) -> TestResult {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, b"partial")?;
        let file = std::fs::File::options().write(true).open(path)?;
        file.set_modified(SystemTime::now() - age)?;
        Ok(())
    }

    const OLD: Duration = Duration::from_secs(2 * 60 * 60);
    const YOUNG: Duration = Duration::from_secs(60);

    #[test]
    fn the_sweep_removes_only_old_temporary_files() -> TestResult {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        file_aged(&d.join(".tmpOLD123"), OLD)?;
        file_aged(&d.join(".tmpNEW456"), YOUNG)?;
        file_aged(&d.join("run.json"), OLD)?;
        std::fs::create_dir(d.join(".tmpdir"))?;
        #[cfg(unix)]
        std::os::unix::fs::symlink(d.join("run.json"), d.join(".tmplink"))?;
        let dry = remove_stale_temp_files(
            d,
            &Sweep {
                dry_run: true,
                ..Sweep::default()
            },
        );
        assert_eq!(dry.paths, [d.join(".tmpOLD123")]);
        assert!(d.join(".tmpOLD123").exists(), "a dry run removes nothing");
        let swept = remove_stale_temp_files(d, &Sweep::default());
        assert_eq!(swept.files, 1);
        assert_eq!(swept.bytes, 7);
        assert!(!d.join(".tmpOLD123").exists());
        for kept in [".tmpNEW456", "run.json", ".tmpdir"] {
            assert!(d.join(kept).exists(), "{kept} was removed");
        }
        #[cfg(unix)]
        assert!(std::fs::symlink_metadata(d.join(".tmplink")).is_ok());
        // A missing directory is nothing to sweep.
        assert_eq!(
            remove_stale_temp_files(&d.join("nope"), &Sweep::default()),
            Swept::default()
        );
        Ok(())
    }

    #[test]
    fn the_sweep_removes_work_dirs_only_of_runs_nobody_holds() -> TestResult {
        let state = tempfile::tempdir()?;
        let store = crate::RunStore::new(state.path());
        let idle = store.run_dir("idle");
        let held = store.run_dir("held");
        let fresh = store.run_dir("fresh");
        for run in [&idle, &held] {
            file_aged(&run.join("work/.out-0/report.json"), YOUNG)?;
            std::fs::create_dir_all(run.join("work/build/in/lint"))?;
            file_aged(&run.join(".tmpOLDabc"), OLD)?;
            file_aged(&run.join(".tmpNEWdef"), YOUNG)?;
        }
        // A run being created: its directory exists, not its lock.
        std::fs::create_dir_all(fresh.join("logs"))?;
        let lock = store.lock("held")?;
        let swept = sweep_runs(state.path(), &Sweep::default());
        assert_eq!(swept.work_dirs, 1);
        assert_eq!(
            swept.files, 2,
            "old temporary files go whoever holds the run"
        );
        assert!(!idle.join("work").exists());
        assert!(held.join("work/.out-0/report.json").exists());
        assert!(held.join("work/build/in/lint").exists());
        for run in [&idle, &held] {
            assert!(!run.join(".tmpOLDabc").exists());
            assert!(run.join(".tmpNEWdef").exists());
        }
        assert!(
            !fresh.join(".lock").exists(),
            "a run without work/ is not locked by the sweep"
        );
        // The sweep released the idle run's lock.
        assert!(!store.is_locked("idle"));
        drop(lock);
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
