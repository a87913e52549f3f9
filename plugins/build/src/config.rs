//! The stage's `with:` block: wire types (serde, unknown keys rejected) and
//! their validation into [`Settings`]. Every error names the key and the fix.

use std::collections::BTreeMap;

use serde::Deserialize;
use sluice_sdk::{Context, StageError};

use crate::commands::{BuildCommand, RunOptions};
use crate::files::check_pattern;
use crate::media::MediaTypes;
use crate::values::VersionFile;
use crate::version::VersionSource;
use sluice_sdk::values::ConfigDuration;

/// `with:` as written in the pipeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Commands, each `[program, args...]`, run in order.
    #[serde(default)]
    pub commands: Option<Vec<Vec<String>>>,
    /// Directory to run them in, relative to the workspace.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Timeout per command.
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
    /// Globs of the files to publish, relative to the workspace.
    #[serde(default)]
    pub outputs: Option<Vec<String>>,
    /// Extension → media type overrides.
    #[serde(default)]
    pub media_types: BTreeMap<String, String>,
    /// The version, literally.
    #[serde(default)]
    pub version: Option<String>,
    /// Where to read the version.
    #[serde(default)]
    pub version_file: Option<VersionFile>,
}

/// A validated configuration.
#[derive(Debug)]
pub struct Settings {
    /// Commands in order (possibly none).
    pub commands: Vec<BuildCommand>,
    /// Where and how long they run.
    pub run: RunOptions,
    /// Output patterns (checked).
    pub outputs: Vec<String>,
    /// Media types.
    pub media: MediaTypes,
    /// Where the version comes from.
    pub version: VersionSource,
}

impl Settings {
    /// Reads and validates the stage's `with:`.
    pub fn from_context(ctx: &Context) -> Result<Self, StageError> {
        Self::validate(ctx.config()?)
    }

    /// Checks what serde cannot.
    pub fn validate(c: Config) -> Result<Self, StageError> {
        let outputs =
            match c.outputs {
                None => return Err(StageError::invalid_config(
                    "with.outputs: missing; list the files the build produces, as paths or globs \
                     relative to the workspace, e.g. `outputs: [dist/*.tar.gz]`",
                )),
                Some(o) if o.is_empty() => return Err(StageError::invalid_config(
                    "with.outputs: empty; list at least one file or glob, e.g. `[dist/*.tar.gz]`",
                )),
                Some(o) => o,
            };
        for (i, p) in outputs.iter().enumerate() {
            check_pattern(&format!("with.outputs[{i}]"), p)?;
        }
        let commands = c
            .commands
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, argv)| command(i, argv))
            .collect::<Result<Vec<_>, _>>()?;
        if commands.is_empty() && (c.cwd.is_some() || c.timeout.is_some()) {
            let key = if c.cwd.is_some() { "cwd" } else { "timeout" };
            return Err(StageError::invalid_config(format!(
                "with.{key}: only applies to `with.commands`; add commands or remove `{key}`"
            )));
        }
        if let Some(dir) = &c.cwd {
            let p = std::path::Path::new(dir);
            if p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
                return Err(StageError::invalid_config(format!(
                    "with.cwd: `{dir}` must be a directory relative to the workspace, without `..`"
                )));
            }
        }
        if c.timeout.is_some_and(|t| t.0.is_zero()) {
            return Err(StageError::invalid_config(
                "with.timeout: must be longer than zero, e.g. \"10m\"",
            ));
        }
        Ok(Self {
            commands,
            run: RunOptions {
                cwd: c.cwd,
                timeout: c.timeout.map(|t| t.0),
            },
            outputs,
            media: MediaTypes::new(c.media_types)?,
            version: VersionSource::new(c.version, c.version_file)?,
        })
    }
}

fn command(i: usize, argv: Vec<String>) -> Result<BuildCommand, StageError> {
    let mut it = argv.into_iter();
    let Some(program) = it.next().filter(|p| !p.trim().is_empty()) else {
        return Err(StageError::invalid_config(format!(
            "with.commands[{i}]: empty; give the program and its arguments, e.g. \
             `[python3, -m, zipapp, src, -o, dist/app.pyz]`"
        )));
    };
    if program.contains('/') {
        return Err(StageError::invalid_config(format!(
            "with.commands[{i}][0]: `{program}` is a path; the program must be a bare name granted \
             in grants.exec (run a script through its interpreter, e.g. `[sh, {program}]`)"
        )));
    }
    Ok(BuildCommand {
        program,
        args: it.collect(),
    })
}

/// JSON Schema (draft 2020-12) of `with:`, returned by `describe`.
pub const SCHEMA: &str = include_str!("schema.json");

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(json: &str) -> Result<Settings, StageError> {
        Settings::from_context(&Context::for_test("build", json))
    }

    fn config_error(json: &str) -> String {
        match settings(json) {
            Err(StageError::InvalidConfig(m)) => m,
            other => panic!("expected invalid config for {json}, got {other:?}"),
        }
    }

    #[test]
    fn full_config() -> Result<(), StageError> {
        let s = settings(
            r#"{"commands": [["python3", "-c", "import os"], ["python3", "-m", "zipapp", "src"]],
                "cwd": "app", "timeout": "2m", "outputs": ["dist/*.pyz"],
                "media-types": {"pyz": "application/vnd.python.zipapp"},
                "version-file": {"path": "pyproject.toml", "regex": "^version = \"(.+)\""}}"#,
        )?;
        assert_eq!(s.commands.len(), 2);
        assert_eq!(s.commands[1].display(), "python3 -m zipapp src");
        assert_eq!(s.run.cwd.as_deref(), Some("app"));
        assert_eq!(s.run.timeout, Some(Duration::from_secs(120)));
        assert_eq!(s.outputs, ["dist/*.pyz"]);
        assert_eq!(s.media.of("dist/q.pyz"), "application/vnd.python.zipapp");
        assert!(matches!(s.version, VersionSource::File { .. }));
        Ok(())
    }

    #[test]
    fn outputs_only() -> Result<(), StageError> {
        let s = settings(r#"{"outputs": ["out/app.tgz"], "version": "1.0.0"}"#)?;
        assert!(s.commands.is_empty());
        assert!(matches!(s.version, VersionSource::Literal(ref v) if v == "1.0.0"));
        Ok(())
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        assert!(config_error("{}").starts_with("with.outputs: missing"));
        assert!(config_error(r#"{"outputs": []}"#).starts_with("with.outputs: empty"));
        assert!(config_error(r#"{"outputs": ["a", "/etc/x"]}"#).starts_with("with.outputs[1]: "));
        assert!(
            config_error(r#"{"outputs": ["a"], "commands": [["sh"], []]}"#)
                .starts_with("with.commands[1]: empty")
        );
        assert!(
            config_error(r#"{"outputs": ["a"], "commands": [["./build.sh"]]}"#)
                .starts_with("with.commands[0][0]: `./build.sh` is a path")
        );
        assert!(config_error(r#"{"outputs": ["a"], "commands": ["make"]}"#)
            .starts_with("with.commands[0]: invalid type"));
        assert!(config_error(r#"{"outputs": ["a"], "command": [["make"]]}"#)
            .starts_with("with.command: unknown field `command`"));
        assert!(
            config_error(r#"{"outputs": ["a"], "cwd": "x"}"#).starts_with("with.cwd: only applies")
        );
        assert!(
            config_error(r#"{"outputs": ["a"], "commands": [["make"]], "cwd": "/x"}"#)
                .starts_with("with.cwd: ")
        );
        assert!(
            config_error(r#"{"outputs": ["a"], "commands": [["make"]], "timeout": "0s"}"#)
                .starts_with("with.timeout: ")
        );
        assert!(
            config_error(r#"{"outputs": ["a"], "media-types": {"pyz": "zip"}}"#)
                .starts_with("with.media-types.pyz: ")
        );
        assert!(
            config_error(r#"{"outputs": ["a"], "version": "1", "version-file": "V"}"#)
                .starts_with("with.version-file: conflicts")
        );
        assert!(
            config_error(r#"{"outputs": ["a"], "version-file": {"path": "V", "regex": "("}}"#)
                .starts_with("with.version-file.regex: ")
        );
    }

    #[test]
    fn schema_is_json() -> Result<(), serde_json::Error> {
        let v: serde_json::Value = serde_json::from_str(SCHEMA)?;
        assert_eq!(v["additionalProperties"], false);
        assert_eq!(v["required"][0], "outputs");
        Ok(())
    }
}
