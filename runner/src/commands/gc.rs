//! `sluice gc`: remove what no run needs any more.
//!
//! - What every run already sweeps at its start ([`sluice_record::workdir::sweep_runs`]):
//!   temporary files older than [`STALE_TEMP_AGE`] in the CAS, the run
//!   directories, the compile cache and the pull cache's entries, and the
//!   `work/` directories of runs no runner holds.
//! - CAS blobs that no run record references. Records are the only thing
//!   that point into the CAS, so a blob none of them names is garbage: left
//!   by a run whose directory was deleted, or replaced by a producer that
//!   ran again. A blob younger than [`STALE_TEMP_AGE`] is kept whatever the
//!   records say, because a running stage stores its artifacts a moment
//!   before its record names them (storing refreshes the age of a blob that
//!   is re-used). If any record cannot be read, no blob is removed.
//!
//! `--dry-run` lists what would go and removes nothing.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sluice_record::artifacts::{ArtifactError, Cas};
use sluice_record::workdir::{self, Sweep, STALE_TEMP_AGE};
use sluice_record::{RecordError, RunStore};

/// Why `sluice gc` stopped.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The list of runs cannot be read.
    #[error(transparent)]
    Runs(#[from] RecordError),
    /// A run record cannot be read, so what it references is unknown.
    #[error(
        "{0}; no blob was removed, since what that run references is unknown. Repair it \
         (`sluice runs repair RUN_ID`) or delete its directory, then run `sluice gc` again"
    )]
    UnreadableRun(RecordError),
    /// The CAS cannot be listed.
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
}

/// What one collection found.
#[derive(Debug, Default)]
struct Collected {
    blobs: Vec<(PathBuf, u64)>,
    kept: usize,
    young: usize,
}

/// Remove stale temporary files from the cache directory: the compile
/// cache's, and those of each pull-cache entry (`oci/<manifest>/`), which
/// are written the same way (temp file, then rename). `run` sweeps at its
/// start with this too, so the cache has one set of lifetime rules.
pub fn sweep_cache_dir(cache_dir: &Path, sweep: &Sweep) -> workdir::Swept {
    let mut swept = workdir::remove_stale_temp_files(cache_dir, sweep);
    let entries = std::fs::read_dir(cache_dir.join("oci"))
        .into_iter()
        .flatten();
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            swept += workdir::remove_stale_temp_files(&entry.path(), sweep);
        }
    }
    swept
}

/// Sweep the state directory and the caches, then remove the blobs no run
/// references (only list them with `dry_run`). Returns the report.
pub fn gc(state_dir: &Path, cache_dir: &Path, dry_run: bool) -> Result<String, GcError> {
    let sweep = Sweep {
        older_than: STALE_TEMP_AGE,
        dry_run,
    };
    let cas = Cas::open(&state_dir.join("cas"))?;
    // Records first: if one is unreadable, nothing at all is removed.
    let referenced = referenced_digests(state_dir)?;
    let mut swept = workdir::sweep_runs(state_dir, &sweep);
    swept += cas.sweep_temp(&sweep);
    swept += sweep_cache_dir(cache_dir, &sweep);
    let collected = collect_blobs(&cas, &referenced, dry_run)?;

    let verb = if dry_run { "would remove" } else { "removed" };
    let mut out = String::new();
    for path in &swept.paths {
        let _ = writeln!(out, "{verb} {}", path.display());
    }
    for (path, _) in &collected.blobs {
        let _ = writeln!(out, "{verb} {}", path.display());
    }
    let blob_bytes: u64 = collected.blobs.iter().map(|(_, size)| size).sum();
    let _ = writeln!(
        out,
        "{verb} {} temporary file{} ({}), {} work director{} of runs nobody holds, \
         {} blob{} no run references ({}); kept {} referenced and {} recent blob{}",
        swept.files,
        plural(swept.files, "", "s"),
        bytesize::ByteSize(swept.bytes),
        swept.work_dirs,
        plural(swept.work_dirs, "y", "ies"),
        collected.blobs.len(),
        plural(collected.blobs.len(), "", "s"),
        bytesize::ByteSize(blob_bytes),
        collected.kept,
        collected.young,
        plural(collected.kept + collected.young, "", "s"),
    );
    Ok(out)
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// Every artifact digest any run record names (snapshot plus journal).
fn referenced_digests(state_dir: &Path) -> Result<BTreeSet<String>, GcError> {
    let mut referenced = BTreeSet::new();
    for record in RunStore::new(state_dir).list()? {
        let record = record.map_err(GcError::UnreadableRun)?;
        for stage in record.stages.values() {
            referenced.extend(stage.artifacts.iter().map(|a| a.digest.clone()));
        }
    }
    Ok(referenced)
}

/// Removes (or, dry, lists) the blobs not in `referenced` and older than
/// [`STALE_TEMP_AGE`].
fn collect_blobs(
    cas: &Cas,
    referenced: &BTreeSet<String>,
    dry_run: bool,
) -> Result<Collected, GcError> {
    let now = SystemTime::now();
    let mut collected = Collected::default();
    let mut blobs = cas.blobs()?;
    blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    for blob in blobs {
        if referenced.contains(&blob.digest) {
            collected.kept += 1;
            continue;
        }
        // Looked at again just before it goes: a running stage may have
        // stored (or re-used) it since the listing.
        let young = std::fs::symlink_metadata(&blob.path)
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|m| now.duration_since(m).ok())
            .is_none_or(|age| age < STALE_TEMP_AGE);
        if young {
            collected.young += 1;
            continue;
        }
        if !dry_run {
            match std::fs::remove_file(&blob.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::warn!(blob = %blob.path.display(), error = %e, "could not remove an unreferenced blob");
                    continue;
                }
            }
        }
        collected.blobs.push((blob.path, blob.size));
    }
    Ok(collected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_record::artifacts::IngestLimits;
    use sluice_record::{RunRecord, RunStatus, StageRecord, StageState};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn age(path: &Path, hours: u64) -> TestResult {
        std::fs::File::open(path)?
            .set_modified(SystemTime::now() - std::time::Duration::from_secs(hours * 60 * 60))?;
        Ok(())
    }

    fn record(id: &str, artifacts: Vec<sluice_record::artifacts::ArtifactRecord>) -> RunRecord {
        let mut stage = StageRecord::pending("build");
        stage.state = StageState::Passed;
        stage.artifacts = artifacts;
        RunRecord {
            status: RunStatus::Passed,
            ..RunRecord::new(
                id,
                "p",
                PathBuf::from("/x/sluice.yaml"),
                "sha256:00",
                [("build".to_owned(), stage)].into_iter().collect(),
            )
        }
    }

    #[test]
    fn gc_removes_old_unreferenced_blobs_only() -> TestResult {
        let dir = tempfile::tempdir()?;
        let state = dir.path().join("state");
        let cache = dir.path().join("cache");
        let cas = Cas::open(&state.join("cas"))?;
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out)?;
        for (name, content) in [
            ("kept", "referenced"),
            ("old", "garbage"),
            ("new", "in flight"),
        ] {
            std::fs::write(out.join(name), content)?;
        }
        let stored = cas.ingest_dir(&out, &[], &IngestLimits::default())?;
        let by_name = |n: &str| stored.iter().find(|a| a.name == n).cloned();
        let kept = by_name("kept").ok_or("kept")?;
        let old = by_name("old").ok_or("old")?;
        let new = by_name("new").ok_or("new")?;
        for a in [&kept, &old] {
            age(&cas.blob_path(&a.digest)?, 3)?;
        }
        let store = RunStore::new(&state);
        let run = record("r1", vec![kept.clone()]);
        store.create(&run)?;
        store.save(&run)?;

        let dry = gc(&state, &cache, true)?;
        assert!(dry.contains("would remove"), "{dry}");
        assert!(
            dry.contains(&cas.blob_path(&old.digest)?.display().to_string()),
            "{dry}"
        );
        assert!(
            cas.blob_path(&old.digest)?.exists(),
            "a dry run removed a blob"
        );

        let report = gc(&state, &cache, false)?;
        assert!(report.contains("removed 0 temporary files"), "{report}");
        assert!(report.contains("1 blob no run references"), "{report}");
        assert!(!cas.blob_path(&old.digest)?.exists());
        assert!(cas.blob_path(&kept.digest)?.exists());
        assert!(
            cas.blob_path(&new.digest)?.exists(),
            "a recent blob was removed"
        );
        Ok(())
    }

    #[test]
    fn gc_sweeps_stale_temporary_files_of_the_pull_cache_too() -> TestResult {
        let dir = tempfile::tempdir()?;
        let state = dir.path().join("state");
        let cache = dir.path().join("cache");
        let entry = cache.join("oci").join("ab".repeat(32));
        std::fs::create_dir_all(&entry)?;
        // A pull killed mid-write, one written a moment ago by another
        // runner, and the entry's real files.
        let stale = entry.join(".tmpAbC123");
        let fresh = entry.join(".tmpXyZ789");
        let component = entry.join("component.wasm");
        for file in [&stale, &fresh, &component] {
            std::fs::write(file, "x")?;
        }
        age(&stale, 3)?;
        age(&component, 3)?;

        let report = gc(&state, &cache, false)?;
        assert!(report.contains(&stale.display().to_string()), "{report}");
        assert!(!stale.exists(), "a stale pull-cache temp file was kept");
        assert!(fresh.exists(), "a temp file being written was removed");
        assert!(component.exists(), "a cache entry's file was removed");
        Ok(())
    }

    #[test]
    fn an_unreadable_record_stops_blob_collection() -> TestResult {
        let dir = tempfile::tempdir()?;
        let state = dir.path().join("state");
        let cas = Cas::open(&state.join("cas"))?;
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out)?;
        std::fs::write(out.join("x"), "x")?;
        let stored = cas.ingest_dir(&out, &[], &IngestLimits::default())?;
        let blob = cas.blob_path(&stored[0].digest)?;
        age(&blob, 3)?;
        let store = RunStore::new(&state);
        store.create(&record("r1", Vec::new()))?;
        std::fs::write(store.run_dir("r1").join("run.json"), b"{")?;
        let err = gc(&state, &dir.path().join("cache"), false)
            .err()
            .ok_or("expected an error")?;
        assert!(err.to_string().contains("no blob was removed"), "{err}");
        assert!(blob.exists());
        Ok(())
    }
}
