//! `sluice artifacts list|get|export RUN [STAGE[/NAME]]`: what a run left,
//! out of the content-addressed store. Every byte that leaves the store is
//! hashed on the way out and checked against the digest the run recorded
//! ([`Cas::materialize`]); a blob that was changed or lost is an error, and
//! nothing half-copied is left under its name.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sluice_record::artifacts::{ArtifactError, ArtifactRecord, Cas};
use sluice_record::{RecordError, RunStore};

use crate::report::escape_controls as esc;

/// Why an `artifacts` command failed.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactsError {
    /// The run cannot be read.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The store refused: a blob is missing, or does not hash to its
    /// recorded digest.
    #[error(transparent)]
    Store(#[from] ArtifactError),
    /// The selector names no stage of the run.
    #[error("run {run_id} has no stage `{stage}`; its stages: {known}")]
    NoStage {
        /// The run.
        run_id: String,
        /// The stage asked for.
        stage: String,
        /// The run's stages, comma-separated.
        known: String,
    },
    /// The stage left no artifact of that name.
    #[error("stage `{stage}` of run {run_id} has no artifact `{name}`; {known}")]
    NoArtifact {
        /// The run.
        run_id: String,
        /// The stage.
        stage: String,
        /// The name asked for.
        name: String,
        /// What it has, in words.
        known: String,
    },
    /// `get` needs exactly one artifact.
    #[error(
        "`artifacts get` copies one artifact: `{selector}` selects {count}; give STAGE/NAME \
         (see `sluice artifacts list {run_id} {selector}`) or use `artifacts export`"
    )]
    NotOne {
        /// The run.
        run_id: String,
        /// What was given.
        selector: String,
        /// How many it selects.
        count: usize,
    },
    /// The copy could not be written where it was asked for.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// One selected artifact and the stage that left it.
struct Selected {
    stage: String,
    artifact: ArtifactRecord,
}

/// The artifacts of `run_id` that `selector` (`STAGE` or `STAGE/NAME`;
/// every stage when `None`) selects, in pipeline order. The name may
/// contain `/` (`build/dist/app.tar.gz` is stage `build`, name
/// `dist/app.tar.gz`).
fn select(
    store: &RunStore,
    run_id: &str,
    selector: Option<&str>,
) -> Result<Vec<Selected>, ArtifactsError> {
    let record = store.load(run_id)?;
    let (stage, name) = match selector {
        None => (None, None),
        Some(s) => match s.split_once('/') {
            Some((stage, name)) => (Some(stage), Some(name)),
            None => (Some(s), None),
        },
    };
    if let Some(stage) = stage {
        if !record.stages.contains_key(stage) {
            return Err(ArtifactsError::NoStage {
                run_id: run_id.to_string(),
                stage: stage.to_string(),
                known: record
                    .stages
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let mut out = Vec::new();
    for (s, rec) in &record.stages {
        if stage.is_some_and(|want| want != s) {
            continue;
        }
        for a in &rec.artifacts {
            if name.is_none_or(|want| want == a.name) {
                out.push(Selected {
                    stage: s.clone(),
                    artifact: a.clone(),
                });
            }
        }
        if let (Some(name), true) = (name, out.is_empty()) {
            let names: Vec<&str> = rec.artifacts.iter().map(|a| a.name.as_str()).collect();
            return Err(ArtifactsError::NoArtifact {
                run_id: run_id.to_string(),
                stage: s.clone(),
                name: name.to_string(),
                known: if names.is_empty() {
                    "it left none".to_string()
                } else {
                    format!("it has: {}", names.join(", "))
                },
            });
        }
    }
    Ok(out)
}

/// `artifacts list`: a table (or JSON) of the selected artifacts.
pub fn list(
    state_dir: &Path,
    run_id: &str,
    selector: Option<&str>,
    json: bool,
) -> Result<String, ArtifactsError> {
    let store = RunStore::new(state_dir);
    let selected = select(&store, run_id, selector)?;
    if json {
        let items: Vec<serde_json::Value> = selected
            .iter()
            .map(|s| {
                serde_json::json!({
                    "stage": s.stage, "name": s.artifact.name, "digest": s.artifact.digest,
                    "size": s.artifact.size, "media_type": s.artifact.media_type,
                })
            })
            .collect();
        return Ok(format!("{}\n", serde_json::Value::Array(items)));
    }
    if selected.is_empty() {
        return Ok(format!(
            "run {run_id}: no artifacts{}\n",
            selector.map(|s| format!(" in `{s}`")).unwrap_or_default()
        ));
    }
    let mut out = format!(
        "{:<14} {:<36} {:>10}  {:<19} MEDIA TYPE\n",
        "STAGE", "NAME", "SIZE", "DIGEST"
    );
    for s in &selected {
        out.push_str(&format!(
            "{:<14} {:<36} {:>10}  {:<19} {}\n",
            esc(&s.stage),
            esc(&s.artifact.name),
            s.artifact.size,
            short(&s.artifact.digest),
            esc(&s.artifact.media_type)
        ));
    }
    Ok(out)
}

/// `sha256:` and the first 12 hex digits.
fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// `artifacts get RUN STAGE/NAME [--output FILE]`: one artifact, verified,
/// to `output` or (without it, or with `-`) to standard output. The blob
/// is first copied out and checked in a temporary directory beside the
/// destination, so a blob that fails its digest writes nothing.
pub fn get(
    state_dir: &Path,
    run_id: &str,
    selector: &str,
    output: Option<&Path>,
) -> Result<String, ArtifactsError> {
    let store = RunStore::new(state_dir);
    let mut selected = select(&store, run_id, Some(selector))?;
    if selected.len() != 1 {
        return Err(ArtifactsError::NotOne {
            run_id: run_id.to_string(),
            selector: selector.to_string(),
            count: selected.len(),
        });
    }
    let one = selected.remove(0);
    let cas = Cas::open(&state_dir.join("cas"))?;
    let to_file = output.filter(|p| p.as_os_str() != "-");
    // A temporary directory on the destination's file system, so the
    // verified copy is renamed into place.
    let tmp_parent = match to_file {
        Some(p) => p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf(),
        None => state_dir.join("cas"),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".sluice-get-")
        .tempdir_in(&tmp_parent)
        .map_err(|source| ArtifactsError::Write {
            path: tmp_parent.clone(),
            source,
        })?;
    cas.materialize(std::slice::from_ref(&one.artifact), tmp.path())?;
    let copied = tmp.path().join(&one.artifact.name);
    match to_file {
        Some(path) => {
            std::fs::rename(&copied, path).map_err(|source| ArtifactsError::Write {
                path: path.to_path_buf(),
                source,
            })?;
            Ok(format!(
                "{}/{} ({} bytes, {}) written to {} (digest verified)\n",
                esc(&one.stage),
                esc(&one.artifact.name),
                one.artifact.size,
                one.artifact.digest,
                path.display()
            ))
        }
        None => {
            let mut file =
                std::fs::File::open(&copied).map_err(|source| ArtifactsError::Write {
                    path: copied.clone(),
                    source,
                })?;
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            let written = std::io::copy(&mut file, &mut lock).and_then(|_| lock.flush());
            match written {
                Ok(()) => Ok(String::new()),
                // A reader that stopped early (`| head`) is no error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(String::new()),
                Err(source) => Err(ArtifactsError::Write {
                    path: PathBuf::from("<stdout>"),
                    source,
                }),
            }
        }
    }
}

/// `artifacts export RUN [STAGE[/NAME]] --to DIR`: every selected artifact
/// to `DIR/<stage>/<name>`, verified.
pub fn export(
    state_dir: &Path,
    run_id: &str,
    selector: Option<&str>,
    to: &Path,
) -> Result<String, ArtifactsError> {
    let store = RunStore::new(state_dir);
    let selected = select(&store, run_id, selector)?;
    let cas = Cas::open(&state_dir.join("cas"))?;
    let mut out = String::new();
    let mut bytes = 0u64;
    // Stage by stage, so each goes to its own directory.
    let mut i = 0;
    while i < selected.len() {
        let stage = &selected[i].stage;
        let group: Vec<ArtifactRecord> = selected[i..]
            .iter()
            .take_while(|s| &s.stage == stage)
            .map(|s| s.artifact.clone())
            .collect();
        let dir = to.join(stage);
        cas.materialize(&group, &dir)?;
        for a in &group {
            bytes += a.size;
            out.push_str(&format!(
                "  {}/{} {} ({} bytes)\n",
                esc(stage),
                esc(&a.name),
                short(&a.digest),
                a.size
            ));
        }
        i += group.len();
    }
    Ok(format!(
        "exported {} artifact(s) of run {run_id} ({bytes} bytes) to {}, every digest verified\n{out}",
        selected.len(),
        to.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use sluice_record::{RunRecord, StageRecord};

    /// A run with stage `build` that left `dist/app.tgz` and `notes.txt`,
    /// stored for real in the CAS.
    fn run_with_artifacts(state: &Path) -> String {
        let cas = Cas::open(&state.join("cas")).expect("cas");
        let out = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(out.path().join("dist")).expect("mkdir");
        std::fs::write(out.path().join("dist/app.tgz"), b"app bytes").expect("write");
        std::fs::write(out.path().join("notes.txt"), b"notes").expect("write");
        let ingested = cas
            .ingest_dir(out.path(), &[], &Default::default())
            .expect("ingest");
        let mut build = StageRecord::pending("build");
        build.artifacts = ingested;
        let mut stages = IndexMap::new();
        stages.insert("build".to_string(), build);
        stages.insert("test".to_string(), StageRecord::pending("test"));
        let record = RunRecord::new("r1", "p", "/x/sluice.yaml", "sha256:00", stages);
        let store = RunStore::new(state);
        store.create(&record).expect("create");
        store.save(&record).expect("save");
        "r1".to_string()
    }

    #[test]
    fn list_get_and_export_verify_what_they_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let id = run_with_artifacts(&state);

        let table = list(&state, &id, None, false).expect("list");
        assert!(table.contains("dist/app.tgz"), "{table}");
        assert!(table.contains("notes.txt"), "{table}");

        let file = dir.path().join("app.tgz");
        get(&state, &id, "build/dist/app.tgz", Some(&file)).expect("get");
        assert_eq!(std::fs::read(&file).expect("read"), b"app bytes");

        let to = dir.path().join("out");
        let said = export(&state, &id, Some("build"), &to).expect("export");
        assert!(said.contains("exported 2 artifact(s)"), "{said}");
        assert_eq!(
            std::fs::read(to.join("build/notes.txt")).expect("read"),
            b"notes"
        );
    }

    #[test]
    fn a_tampered_blob_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let id = run_with_artifacts(&state);
        let store = RunStore::new(&state);
        let record = store.load(&id).expect("load");
        let a = record.stages["build"]
            .artifacts
            .iter()
            .find(|a| a.name == "notes.txt")
            .expect("notes")
            .clone();
        let cas = Cas::open(&state.join("cas")).expect("cas");
        let blob = cas.blob_path(&a.digest).expect("path");
        let mut perms = std::fs::metadata(&blob).expect("meta").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&blob, perms).expect("chmod");
        std::fs::write(&blob, b"NOTES").expect("tamper");

        let file = dir.path().join("notes.txt");
        let err = get(&state, &id, "build/notes.txt", Some(&file)).expect_err("tampered");
        assert!(
            matches!(
                err,
                ArtifactsError::Store(ArtifactError::DigestMismatch { .. })
            ),
            "{err}"
        );
        assert!(!file.exists(), "nothing written under its name");
    }

    #[test]
    fn selectors_name_what_exists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let id = run_with_artifacts(&state);
        let err = list(&state, &id, Some("deploy"), false).expect_err("no stage");
        assert_eq!(
            err.to_string(),
            "run r1 has no stage `deploy`; its stages: build, test"
        );
        let err = list(&state, &id, Some("build/app.tgz"), false).expect_err("no artifact");
        assert_eq!(
            err.to_string(),
            "stage `build` of run r1 has no artifact `app.tgz`; it has: dist/app.tgz, notes.txt"
        );
        let err = list(&state, &id, Some("test/x"), false).expect_err("none left");
        assert!(err.to_string().ends_with("it left none"), "{err}");
        let err = get(&state, &id, "build", None).expect_err("two");
        assert!(
            matches!(err, ArtifactsError::NotOne { count: 2, .. }),
            "{err}"
        );
        assert_eq!(
            list(&state, &id, Some("test"), false).expect("empty"),
            "run r1: no artifacts in `test`\n"
        );
    }
}
