//! The SDK glue: `describe`, and `run` = read config → lint → log each
//! finding → write `lint.sarif` → report.

use sluice_sdk::prelude::*;

use crate::config::{Config, Settings};
use crate::external::SdkExec;
use crate::finding::Level;
use crate::report::SARIF_ARTIFACT;
use crate::{lint, report, sarif, schema};

/// The `lint` stage.
pub struct Lint;

impl Stage for Lint {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "lint",
            env!("CARGO_PKG_VERSION"),
            "lint",
            "Checks YAML/JSON/TOML syntax, merge-conflict markers and whitespace in the workspace, \
             runs external linters (cargo clippy JSON, SARIF), and reports SARIF 2.1.0",
        )
        .config_schema(schema::schema().to_string())
        .capability(Capability::WorkspaceRead)
    }

    fn run(ctx: Context) -> Result<Report, StageError> {
        let config: Config = ctx.config()?;
        let settings = Settings::from_config(config)?;
        let result = lint::lint(&ctx.workspace(), &settings, &SdkExec)?;
        for note in &result.notes {
            sluice_sdk::warn(note);
        }
        // Every finding is in the SARIF, which the console summarises (by
        // level and rule, the first ten with locations): in the log they
        // are detail, shown with `--verbose` (10,000 findings must not
        // scroll past on the console).
        for f in result.findings() {
            sluice_sdk::log::debug_with(f, &[("level", level_word(f.level))]);
        }
        let json = sarif::to_json(&result.runs)
            .map_err(|e| StageError::failed(format!("writing {SARIF_ARTIFACT}: {e}")))?;
        ctx.write_artifact(SARIF_ARTIFACT, json, "application/sarif+json")?;
        let report = report::build(&result, settings.fail_on);
        if let Some(first) = report.summary.lines().next() {
            if result.builtin {
                sluice_sdk::info!("{first}; {} binary file(s) skipped", result.binary);
            } else {
                sluice_sdk::info!("{first}");
            }
        }
        Ok(report)
    }
}

/// SARIF's word for a level.
fn level_word(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Note => "note",
    }
}

sluice_sdk::export_stage!(Lint);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_declares_kind_schema_and_workspace_read() {
        let info = Lint::describe();
        assert_eq!((info.name.as_str(), info.kind.as_str()), ("lint", "lint"));
        assert_eq!(info.capabilities, [Capability::WorkspaceRead]);
        let schema: serde_json::Value =
            serde_json::from_str(info.config_schema.as_deref().unwrap_or("null")).expect("JSON");
        assert_eq!(schema["type"], "object");
    }

    #[test]
    fn bad_config_is_invalid_config() {
        let e = Lint::run(Context::for_test("lint", r#"{"rules": {"nope": "off"}}"#))
            .expect_err("unknown rule");
        assert!(matches!(e, StageError::InvalidConfig(_)), "{e:?}");
    }
}
