//! One run of the stage: read the config, open the target, pick the
//! artifact, run the strategy, report.

use std::time::Instant;

use sluice_delivery::{ArtifactFile, Target, TargetKind};
use sluice_sdk::{Capability, Context, Report, StageError};

use crate::config::{Settings, Strategy};
use crate::{rolling, select, slots};

/// Runs the stage.
pub fn run(ctx: &Context) -> Result<Report, StageError> {
    let start = Instant::now();
    let s = Settings::validate(ctx.config()?)?;
    let environment = sluice_delivery::environment_name(ctx.environment(), &s.target);
    let workspace = ctx.workspace();
    if s.target.kind != TargetKind::Http && !workspace.is_dir() {
        sluice_sdk::error!(
            "the {} target writes under the workspace",
            s.target.kind.as_str()
        );
        return Err(StageError::denied(Capability::WorkspaceWrite));
    }
    let target = Target::from_context(ctx, &s.target)?;
    target.ensure_writable()?;
    let input = select::select(ctx.inputs(), s.artifact.as_deref())?;
    let artifact = ArtifactFile::from_input(ctx, input);
    sluice_sdk::info!(
        "deploying {} ({}) as {} to {} ({} target) with strategy {}",
        artifact.name,
        artifact.digest,
        s.version,
        environment,
        s.target.kind.as_str(),
        s.strategy.as_str()
    );
    let outcome = match s.strategy {
        Strategy::Recreate => slots::recreate(&target, &s, &artifact)?,
        Strategy::BlueGreen | Strategy::Canary | Strategy::FeatureFlag => {
            slots::idle(&target, &s, &artifact)?
        }
        Strategy::Rolling => rolling::rolling(&target, &s, &artifact)?,
    };
    sluice_sdk::info!("{}", outcome.summary);
    Ok(outcome.into_report(
        &environment,
        &s.version,
        s.strategy.as_str(),
        start.elapsed().as_secs_f64(),
    ))
}
