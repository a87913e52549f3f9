//! `{{name}}`: a sluice stage that counts marker comments (`TODO`,
//! `FIXME`, …) in the workspace files its config selects. It reports a
//! metric per count, a gate a pipeline can also set on the metric, one
//! finding per marker (shown in the console, the HTML report and CI
//! annotations), an output and a JSON report artifact.
//!
//! ```yaml
//! stages:
//!   {{name}}:
//!     uses: ./{{name}}.wasm
//!     with: { include: ["src/**/*.py"], markers: [TODO, FIXME], max: 0 }
//!     grants: { workspace: read }
//! ```

use std::path::Path;

use sluice_sdk::prelude::*;
use sluice_sdk::{findings, workspace};

/// The stage's `with:` (also published as a JSON Schema in `describe`, so
/// the runner checks it before `run` and `sluice validate` names typos).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Globs of the files to look at, relative to the workspace.
    #[serde(default = "default_include")]
    pub include: Vec<String>,
    /// The words that count as markers.
    #[serde(default = "default_markers")]
    pub markers: Vec<String>,
    /// The most markers the stage's own gate lets through.
    #[serde(default)]
    pub max: u32,
}

fn default_include() -> Vec<String> {
    vec!["**/*".into()]
}

fn default_markers() -> Vec<String> {
    vec!["TODO".into(), "FIXME".into()]
}

const SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "include": { "type": "array", "items": { "type": "string" }, "description": "Globs of the files to look at, relative to the workspace (default [\"**/*\"])." },
    "markers": { "type": "array", "items": { "type": "string", "minLength": 1 }, "description": "The words that count as markers (default [\"TODO\", \"FIXME\"])." },
    "max": { "type": "integer", "minimum": 0, "description": "The most markers the stage's gate lets through (default 0)." }
  }
}"#;

/// One marker found.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Workspace-relative path.
    pub path: String,
    /// 1-based line.
    pub line: u32,
    /// Which marker.
    pub word: String,
    /// The line, trimmed.
    pub text: String,
}

/// What the scan found: the files looked at and the markers in them.
#[derive(Debug, Default)]
pub struct Scan {
    /// Files read.
    pub files: usize,
    /// Markers, in file and line order.
    pub markers: Vec<Marker>,
}

/// The stage's logic, on any directory: kept apart from `run` so that it
/// can be tested natively (`cargo test`).
pub fn scan(root: &Path, config: &Config) -> Result<Scan, StageError> {
    let mut found = Vec::new();
    for (i, pattern) in config.include.iter().enumerate() {
        workspace::check_pattern(&format!("with.include[{i}]"), pattern)?;
        found.extend(workspace::find(root, pattern)?);
    }
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    found.dedup_by(|a, b| a.rel == b.rel);
    let mut result = Scan::default();
    for (n, file) in found.iter().enumerate() {
        if sluice_sdk::cancel::is_cancelled() {
            return Err(StageError::failed("cancelled"));
        }
        sluice_sdk::progress(n as u64, Some(found.len() as u64), &file.rel);
        // Binary and unreadable files are not text to look at.
        let Ok(text) = std::fs::read_to_string(&file.path) else {
            continue;
        };
        result.files += 1;
        for (line_no, line) in text.lines().enumerate() {
            if let Some(word) = config.markers.iter().find(|m| line.contains(m.as_str())) {
                result.markers.push(Marker {
                    path: file.rel.clone(),
                    line: line_no as u32 + 1,
                    word: word.clone(),
                    text: line.trim().to_owned(),
                });
            }
        }
    }
    Ok(result)
}

/// The report for a scan.
pub fn report(scan: &Scan, config: &Config) -> Report {
    let count = scan.markers.len();
    let gate = if count as u64 <= u64::from(config.max) {
        Gate::pass("{{name}}", format!("{count} marker(s), at most {} allowed", config.max))
    } else {
        Gate::fail("{{name}}", format!("{count} marker(s), at most {} allowed", config.max))
    };
    let found = scan.markers.iter().map(|m| {
        findings::warning("{{name}}/marker", format!("{} left in the code: {}", m.word, m.text))
            .at(m.path.clone(), m.line)
            .fingerprint(format!("{}:{}", m.path, m.text))
            .build()
    });
    Report::new(format!("{count} marker(s) in {} file(s)", scan.files))
        .metric("{{name}}.files", scan.files as f64)
        .metric("{{name}}.markers", count as f64)
        .gate(gate.observed(count as f64).threshold(f64::from(config.max)))
        .output("markers", count.to_string())
        .findings(found)
}

struct Stage;

impl sluice_sdk::Stage for Stage {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "{{name}}",
            env!("CARGO_PKG_VERSION"),
            "lint",
            "Counts marker comments (TODO, FIXME) in the workspace",
        )
        .config_schema(SCHEMA)
        .capability(Capability::WorkspaceRead)
    }

    fn run(ctx: Context) -> Result<Report, StageError> {
        let config: Config = ctx.config()?;
        let root = ctx.workspace();
        if !root.exists() {
            // The runner tells the user which grant to add.
            return Err(StageError::denied(Capability::WorkspaceRead));
        }
        sluice_sdk::info!("looking for {} in {:?}", config.markers.join(", "), config.include);
        let scan = scan(&root, &config)?;
        for m in &scan.markers {
            sluice_sdk::log::log_with(
                sluice_sdk::log::Level::Info,
                format!("{} at {}:{}", m.word, m.path, m.line),
                &[("path", m.path.as_str())],
            );
        }
        let lines: Vec<String> = scan
            .markers
            .iter()
            .map(|m| format!("{}:{}: {}", m.path, m.line, m.text))
            .collect();
        ctx.write_artifact_as(
            ArtifactInfo::new("markers.txt")
                .media_type("text/plain")
                .role(ArtifactRole::Report),
            lines.join("\n") + "\n",
        )?;
        Ok(report(&scan, &config))
    }
}

sluice_sdk::export_stage!(Stage);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Config {
        Context::for_test("{{name}}", json)
            .config()
            .expect("a valid config")
    }

    #[test]
    fn counts_the_markers_of_the_test_workspace() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("test/workspace");
        let config = config(r#"{"include": ["src/**/*.py"]}"#);
        let scan = scan(&root, &config).expect("scan");
        assert_eq!(scan.files, 2);
        assert_eq!(scan.markers.len(), 2);
        assert_eq!(scan.markers[0].path, "src/app.py");
        assert_eq!(scan.markers[0].line, 2);
        let r = report(&scan, &config);
        assert_eq!(r.summary, "2 marker(s) in 2 file(s)");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Context::for_test("{{name}}", r#"{"incude": []}"#)
            .config::<Config>()
            .expect_err("a typo");
        assert!(err.message().contains("incude"), "{err}");
    }
}
