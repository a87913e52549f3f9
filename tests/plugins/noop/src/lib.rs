//! The no-op stage: `run` returns an empty passing report without reading its
//! config, the workspace or any artifact. Everything a pipeline of these
//! stages costs is the runner's own per-stage overhead (admission, cache load,
//! instantiation, the call, the record write), which is what `bench/` measures.
use sluice_sdk::prelude::*;

struct Noop;

impl Stage for Noop {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "noop",
            env!("CARGO_PKG_VERSION"),
            "custom",
            "Does nothing (benchmarks)",
        )
    }

    fn run(_ctx: Context) -> Result<Report, StageError> {
        Ok(Report::new("noop"))
    }
}

sluice_sdk::export_stage!(Noop);
