//! Where an agent finds a job's workspace when it comes by path.
//!
//! The **shared path**: the unix-socket agent runs on the coordinator's
//! machine as its user, and NATS agents configured `workspace: shared` see
//! the coordinator's file system (NFS, or the same machine), so the job's
//! workspace is used in place and a `workspace: write` stage changes the
//! user's checkout exactly as a local run does. The other way, a snapshot
//! through the blob store, is [`crate::snapshot`]'s; [`resolve`] answers
//! [`WorkspaceError::SnapshotUnsupported`] for it, and the agent's job
//! loop materialises it instead.

use std::path::{Path, PathBuf};

use sluice_pipeline::WorkspaceAccess;

use crate::proto::{JobEnvelope, WorkspaceSource};

/// Why an agent cannot give a job its workspace. The agent answers the job
/// with a setup failure carrying this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceError {
    /// The job has a workspace grant but names no workspace.
    #[error(
        "the job grants workspace access but names no workspace: the coordinator and this \
         agent disagree on the protocol; upgrade the older side"
    )]
    Missing,
    /// The shared path and the job's workspace differ.
    #[error(
        "the job's workspace is {} but it was sent as {}; refused (a workspace is used only \
         where the job says it is)",
        job.display(),
        sent.display()
    )]
    Mismatch {
        /// `job.workspace`.
        job: PathBuf,
        /// The shared path sent.
        sent: PathBuf,
    },
    /// The path is not an absolute directory on this machine.
    #[error(
        "the workspace {} is not a directory on this agent ({why}); agents that run stages \
         with a workspace grant must see the coordinator's workspace at the same path \
         (`workspace: shared`: the same machine or a shared file system)",
        path.display()
    )]
    NotShared {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The job's workspace is a snapshot, not a path.
    #[error(
        "the job's workspace is a snapshot: it is written into the job's work tree from the \
         blob store (`sluice_fleet::snapshot`), not found at a path"
    )]
    SnapshotUnsupported,
}

/// The workspace directory the agent gives `envelope`'s stage, or `None`
/// when the stage has no workspace grant. A shared path must be the job's
/// own workspace, absolute, and a directory here.
pub fn resolve(envelope: &JobEnvelope) -> Result<Option<PathBuf>, WorkspaceError> {
    let granted = envelope.job.grants.workspace != WorkspaceAccess::None;
    match &envelope.workspace {
        WorkspaceSource::None if granted => Err(WorkspaceError::Missing),
        WorkspaceSource::None => Ok(None),
        WorkspaceSource::Snapshot { .. } => Err(WorkspaceError::SnapshotUnsupported),
        WorkspaceSource::SharedPath { path } => {
            if path != &envelope.job.workspace {
                return Err(WorkspaceError::Mismatch {
                    job: envelope.job.workspace.clone(),
                    sent: path.clone(),
                });
            }
            check_dir(path)?;
            Ok(granted.then(|| path.clone()))
        }
    }
}

fn check_dir(path: &Path) -> Result<(), WorkspaceError> {
    let not_shared = |why: String| WorkspaceError::NotShared {
        path: path.to_owned(),
        why,
    };
    if !path.is_absolute() {
        return Err(not_shared("it is not an absolute path".to_owned()));
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(not_shared("it is not a directory".to_owned())),
        Err(e) => Err(not_shared(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{JobId, PluginBlobs, PROTOCOL};

    fn envelope(access: WorkspaceAccess, workspace: &Path, sent: WorkspaceSource) -> JobEnvelope {
        let mut job = crate::uds::tests::stage_job("lint");
        job.grants.workspace = access;
        job.workspace = workspace.to_owned();
        JobEnvelope {
            protocol: PROTOCOL,
            id: JobId::of(&job, 0).expect("id"),
            plugin: PluginBlobs {
                digest: job.plugin.digest.clone(),
                bundle: None,
                attestations: None,
                path: None,
            },
            job,
            runs_on: Default::default(),
            workspace: sent,
            coordinator: "c:1".into(),
        }
    }

    #[test]
    fn a_shared_workspace_is_used_only_where_the_job_says() {
        let dir = tempfile::tempdir().expect("tempdir");
        let here = dir.path().to_path_buf();
        let shared = |p: &Path| WorkspaceSource::SharedPath { path: p.to_owned() };
        assert_eq!(
            resolve(&envelope(WorkspaceAccess::Read, &here, shared(&here))),
            Ok(Some(here.clone()))
        );
        assert_eq!(
            resolve(&envelope(
                WorkspaceAccess::None,
                &here,
                WorkspaceSource::None
            )),
            Ok(None)
        );
        assert_eq!(
            resolve(&envelope(
                WorkspaceAccess::Write,
                &here,
                WorkspaceSource::None
            )),
            Err(WorkspaceError::Missing)
        );
        let elsewhere = dir.path().join("other");
        assert!(matches!(
            resolve(&envelope(WorkspaceAccess::Read, &here, shared(&elsewhere))),
            Err(WorkspaceError::Mismatch { .. })
        ));
        let gone = dir.path().join("gone");
        let err = resolve(&envelope(WorkspaceAccess::Read, &gone, shared(&gone)))
            .expect_err("not a directory here");
        assert!(err.to_string().contains("workspace: shared"), "{err}");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        assert!(matches!(
            resolve(&envelope(WorkspaceAccess::Read, &file, shared(&file))),
            Err(WorkspaceError::NotShared { .. })
        ));
        let relative = Path::new("relative");
        assert!(matches!(
            resolve(&envelope(WorkspaceAccess::Read, relative, shared(relative))),
            Err(WorkspaceError::NotShared { .. })
        ));
        assert_eq!(
            resolve(&envelope(
                WorkspaceAccess::Read,
                &here,
                WorkspaceSource::Snapshot {
                    manifest: "sha256:00".into()
                }
            )),
            Err(WorkspaceError::SnapshotUnsupported)
        );
    }
}
