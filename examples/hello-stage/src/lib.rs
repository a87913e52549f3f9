//! A complete sluice stage: reads `with: { greeting: ... }`, writes an
//! artifact, reports a metric. Build with
//! `cargo build --release --target wasm32-wasip2 -p sluice-example-hello-stage`.
use sluice_sdk::prelude::*;

#[derive(serde::Deserialize)]
struct Config {
    greeting: String,
}

struct Hello;

impl Stage for Hello {
    fn describe() -> PluginInfo {
        PluginInfo::new("hello", env!("CARGO_PKG_VERSION"), "custom", "Says hello")
            .config_schema(r#"{"type":"object","required":["greeting"],"properties":{"greeting":{"type":"string"}}}"#)
    }

    fn run(ctx: Context) -> Result<Report, StageError> {
        let c: Config = ctx.config()?;
        sluice_sdk::info!("{} from stage {}", c.greeting, ctx.stage());
        ctx.write_artifact("greeting.txt", format!("{}\n", c.greeting), "text/plain")?;
        Ok(Report::new(format!("{}!", c.greeting)).metric("hello.count", 1.0))
    }
}

sluice_sdk::export_stage!(Hello);
