//! The [`Stage`] trait and [`export_stage!`](crate::export_stage): how a
//! plugin becomes a `sluice:stage@0.2.0` component (exporting the
//! interface `sluice:stage/plugin@0.2.0`).

use std::cell::RefCell;
use std::rc::Rc;

use crate::bindings::sluice::stage::types as wit;
use crate::context::Context;
use crate::error::StageError;
use crate::info::PluginInfo;
use crate::report::{ArtifactInfo, Report};

/// A pipeline stage. Implement it on a unit struct and export it with
/// [`export_stage!`](crate::export_stage).
///
/// ```no_run
/// use sluice_sdk::prelude::*;
///
/// struct Hello;
///
/// impl Stage for Hello {
///     fn describe() -> PluginInfo {
///         PluginInfo::new("hello", "0.1.0", "custom", "Says hello")
///     }
///     fn run(ctx: Context) -> Result<Report, StageError> {
///         Ok(Report::new(format!("hello from {}", ctx.stage())))
///     }
/// }
///
/// sluice_sdk::export_stage!(Hello);
/// # fn main() {}
/// ```
pub trait Stage {
    /// Describes the plugin. Called by `sluice plugin inspect` and before a
    /// stage runs; must be fast, side-effect free, and depend on nothing but
    /// the plugin itself.
    fn describe() -> PluginInfo;

    /// Runs the stage once.
    ///
    /// Return `Err` for every failure you can foresee: the variant tells the
    /// runner whether to retry, and the message reaches the user as written.
    /// A panic (or any other trap) also fails the stage — the runner
    /// reports the trap — but with a less helpful message, and the panic
    /// message printed to stderr is all the user sees.
    fn run(ctx: Context) -> Result<Report, StageError>;
}

/// Calls `S::describe` and lowers the result. Used by `export_stage!`.
#[doc(hidden)]
pub fn describe<S: Stage>() -> wit::PluginInfo {
    S::describe().into_wit()
}

/// Calls `S::run` and lowers the result. Used by `export_stage!`.
#[doc(hidden)]
pub fn run<S: Stage>(ctx: wit::Context) -> Result<wit::Report, wit::StageError> {
    let declared = Rc::new(RefCell::new(Vec::new()));
    let result = S::run(Context::from_wit(ctx, Rc::clone(&declared)));
    match finish(result, declared.take()) {
        Ok(report) => Ok(report.into_wit()),
        Err(StageError::InvalidConfig(m)) => Err(wit::StageError::InvalidConfig(m)),
        Err(StageError::Denied(c)) => Err(wit::StageError::Denied(c.into_wit())),
        Err(StageError::Failed(m)) => Err(wit::StageError::Failed(m)),
    }
}

/// Adds the artifacts declared through [`Context::write_artifact`] (a
/// description in the report itself wins) and checks findings and artifact
/// descriptions with the runner's rules, so that a mistake fails the stage
/// with a message the author sees in the guest.
fn finish(
    result: Result<Report, StageError>,
    declared: Vec<ArtifactInfo>,
) -> Result<Report, StageError> {
    let mut report = result?;
    for info in declared {
        if !report.artifacts.iter().any(|a| a.path == info.path) {
            report.artifacts.push(info);
        }
    }
    if report.skip_sdk_checks {
        return Ok(report);
    }
    if let Some(findings) = &report.findings {
        crate::findings::check(findings).map_err(StageError::failed)?;
    }
    for a in &report.artifacts {
        a.check().map_err(StageError::failed)?;
    }
    Ok(report)
}

/// Exports a [`Stage`] implementation as the component's
/// `sluice:stage/plugin@0.2.0` interface (`describe` and `run`). Use it exactly once per plugin crate (a `cdylib`), at the top
/// level.
///
/// ```no_run
/// use sluice_sdk::prelude::*;
///
/// struct Noop;
/// impl Stage for Noop {
///     fn describe() -> PluginInfo { PluginInfo::new("noop", "0.1.0", "custom", "Does nothing") }
///     fn run(_: Context) -> Result<Report, StageError> { Ok(Report::new("nothing to do")) }
/// }
/// sluice_sdk::export_stage!(Noop);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_stage {
    ($stage:ty) => {
        const _: () = {
            // Constructed only by the generated export glue, which exists
            // only in a WebAssembly build.
            #[allow(dead_code)]
            struct __SluiceStageExport;

            impl $crate::bindings::exports::sluice::stage::plugin::Guest for __SluiceStageExport {
                fn describe() -> $crate::bindings::sluice::stage::types::PluginInfo {
                    $crate::export::describe::<$stage>()
                }
                fn run(
                    ctx: $crate::bindings::sluice::stage::types::Context,
                ) -> ::core::result::Result<
                    $crate::bindings::sluice::stage::types::Report,
                    $crate::bindings::sluice::stage::types::StageError,
                > {
                    $crate::export::run::<$stage>(ctx)
                }
            }

            // 0.2's export names (`sluice:stage/plugin@0.2.0#run`) are not
            // valid symbol names for a native linker, so a plugin's `cdylib`
            // built for the host (its unit tests) exports nothing.
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::__export_stage_world!(
                __SluiceStageExport with_types_in $crate::bindings
            );
            // On the host, name the entry points so that the stage's code
            // still counts as used (no dead-code warnings in its tests).
            #[cfg(not(target_arch = "wasm32"))]
            const _: () = {
                let _describe = $crate::export::describe::<$stage>;
                let _run = $crate::export::run::<$stage>;
            };
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings;
    use crate::Capability;
    use sluice_types::ArtifactRole;

    #[test]
    fn declared_artifacts_are_added_unless_the_report_describes_them() {
        let report = Report::new("ok").artifact("a.txt", "text/markdown");
        let declared = vec![
            ArtifactInfo::new("a.txt").media_type("text/plain"),
            ArtifactInfo::new("b.txt").role(ArtifactRole::Log),
        ];
        let r = finish(Ok(report), declared).expect("valid report");
        assert_eq!(r.artifacts.len(), 2);
        assert_eq!(r.artifacts[0].media_type.as_deref(), Some("text/markdown"));
        assert_eq!(r.artifacts[1].role, Some(ArtifactRole::Log));
    }

    #[test]
    fn bad_findings_and_roles_fail_the_stage_by_name() {
        let report = Report::new("x").findings([
            findings::warning("E1", "ok").at("src/a.py", 1),
            findings::warning("E2", "bad").at("/etc/passwd", 1),
        ]);
        let e = finish(Ok(report), vec![]).expect_err("bad path");
        assert!(matches!(e, StageError::Failed(_)));
        assert!(
            e.message().contains("finding 1") && e.message().contains("`E2`"),
            "{e}"
        );

        let report = Report::new("x")
            .artifact_info(ArtifactInfo::new("i").role(ArtifactRole::Other("UPPER".into())));
        assert!(finish(Ok(report.clone()), vec![]).is_err());
        assert!(finish(Ok(report.skip_sdk_checks()), vec![]).is_ok());
    }

    #[test]
    fn errors_pass_through() {
        let e = finish(Err(StageError::denied(Capability::WorkspaceRead)), vec![]);
        assert_eq!(e, Err(StageError::Denied(Capability::WorkspaceRead)));
    }
}
