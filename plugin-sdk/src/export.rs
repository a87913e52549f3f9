//! The [`Stage`] trait and [`export_stage!`](crate::export_stage): how a
//! plugin becomes a `sluice:stage@0.1.0` component.

use std::cell::RefCell;
use std::rc::Rc;

use crate::bindings::sluice::stage::types as wit;
use crate::context::Context;
use crate::error::StageError;
use crate::info::PluginInfo;
use crate::report::Report;

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

/// Calls `S::run` and lowers the result, adding the artifacts declared
/// through [`Context::write_artifact`]. Used by `export_stage!`.
#[doc(hidden)]
pub fn run<S: Stage>(ctx: wit::Context) -> Result<wit::Report, wit::StageError> {
    let declared = Rc::new(RefCell::new(Vec::new()));
    let result = S::run(Context::from_wit(ctx, Rc::clone(&declared)));
    match result {
        Ok(mut report) => {
            for (name, media_type) in declared.take() {
                if !report.artifacts.iter().any(|(n, _)| *n == name) {
                    report.artifacts.push((name, media_type));
                }
            }
            Ok(report.into_wit())
        }
        Err(StageError::InvalidConfig(m)) => Err(wit::StageError::InvalidConfig(m)),
        Err(StageError::Denied(m)) => Err(wit::StageError::Denied(m)),
        Err(StageError::Failed(m)) => Err(wit::StageError::Failed(m)),
    }
}

/// Exports a [`Stage`] implementation as the component's `describe` and
/// `run`. Use it exactly once per plugin crate (a `cdylib`), at the top
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
            struct __SluiceStageExport;

            impl $crate::bindings::Guest for __SluiceStageExport {
                fn describe() -> $crate::bindings::PluginInfo {
                    $crate::export::describe::<$stage>()
                }
                fn run(
                    ctx: $crate::bindings::Context,
                ) -> ::core::result::Result<$crate::bindings::Report, $crate::bindings::StageError>
                {
                    $crate::export::run::<$stage>(ctx)
                }
            }

            $crate::bindings::__export_stage_world!(
                __SluiceStageExport with_types_in $crate::bindings
            );
        };
    };
}
