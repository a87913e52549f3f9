//! One run of the stage: run the commands, publish the outputs, write
//! `build.json`, report.

use std::path::Path;

use sluice_sdk::{Capability, Context, Report, StageError};

use crate::commands;
use crate::config::Settings;
use crate::files::Snapshot;
use crate::manifest::{self, Manifest};
use crate::outputs;

/// Runs the stage.
pub fn run(ctx: &Context) -> Result<Report, StageError> {
    let settings = Settings::from_context(ctx)?;
    let root = ctx.workspace();
    require_workspace(&root)?;

    let before = Snapshot::take(&root, &settings.outputs)?;
    let records = commands::run_all(&settings.commands, &settings.run)?;
    let found = outputs::find_all(&root, &settings.outputs)?;
    if !settings.commands.is_empty() {
        outputs::warn_stale(&found, &before);
    }
    let version = settings.version.resolve(&root)?;
    let published = outputs::publish(&found, &ctx.outputs_dir(), &settings.media)?;
    let Some(main) = published.first() else {
        return Err(StageError::failed("with.outputs matched no file"));
    };

    let manifest = Manifest {
        schema: 1,
        version: version.as_deref(),
        digest: &main.digest,
        artifacts: &published,
        commands: &records,
    };
    ctx.write_artifact(manifest::NAME, manifest.to_bytes(), manifest::MEDIA_TYPE)?;

    let bytes: u64 = published.iter().map(|o| o.size).sum();
    let duration: f64 = records.iter().map(|r| r.duration_s).sum();
    for o in &published {
        sluice_sdk::info!(
            "published {} {} ({} bytes, {})",
            o.name,
            o.digest,
            o.size,
            o.media_type
        );
    }
    let mut report = Report::new(manifest::summary(&published, version.as_deref()))
        .metric("build.artifacts", published.len() as f64)
        .metric_with_unit("build.bytes", bytes as f64, "bytes")
        .metric_with_unit("build.duration_s", duration, "s")
        .output("digest", main.digest.clone())
        .output("artifact", main.name.clone());
    if let Some(v) = version {
        report = report.output("version", v);
    }
    for o in &published {
        report = report.artifact(o.name.clone(), o.media_type.clone());
    }
    Ok(report)
}

/// The outputs are read from the workspace, so the stage needs it.
fn require_workspace(root: &Path) -> Result<(), StageError> {
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        _ => {
            sluice_sdk::error(
                "the build stage collects its outputs from the workspace (`workspace: read` is \
                 enough when it only publishes files that exist)",
            );
            Err(StageError::denied(Capability::WorkspaceWrite))
        }
    }
}
