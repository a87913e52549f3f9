//! The stage's `with:` block: wire types (serde, unknown keys rejected) and
//! their validation into [`Settings`]. Every error names the key and the fix.

use serde::Deserialize;
use sluice_sdk::{Context, StageError};

use crate::command::CommandSpec;
use crate::coverage::Format;
use crate::files::check_pattern;
use crate::runner::Runner;
use sluice_sdk::values::{ConfigDuration, OneOrMany};

/// `with:` as written in the pipeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// `[program, args...]`; the program must be in `grants.exec`.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Directory to run the command in, relative to the workspace.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Kill the command after this long.
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
    /// JUnit XML report(s): path or glob, or a list, relative to the workspace.
    #[serde(default)]
    pub junit: Option<OneOrMany>,
    /// Where the results come from: JUnit files, or `cargo test`'s output.
    #[serde(default)]
    pub format: Option<ResultFormat>,
    /// Optional coverage report.
    #[serde(default)]
    pub coverage: Option<CoverageConfig>,
}

/// `with.coverage`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageConfig {
    /// Report file, relative to the workspace.
    pub path: String,
    /// `lcov` or `cobertura`; guessed from the file name when left out.
    #[serde(default)]
    pub format: Option<Format>,
}

/// `with.format`: where the test results come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResultFormat {
    /// The JUnit XML files named by `with.junit`.
    Junit,
    /// The command's console output, in libtest's stable human format
    /// (`cargo test`); see [`crate::libtest`].
    Cargo,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The command to run, if any.
    pub command: Option<CommandSpec>,
    /// Where the results come from.
    pub format: ResultFormat,
    /// JUnit patterns (checked: relative, inside the workspace, valid
    /// globs); empty with [`ResultFormat::Cargo`].
    pub junit: Vec<String>,
    /// Coverage report path and format.
    pub coverage: Option<(String, Format)>,
}

impl Settings {
    /// Reads and validates the stage's `with:`.
    pub fn from_context(ctx: &Context) -> Result<Self, StageError> {
        Self::validate(ctx.config()?)
    }

    /// Checks what serde cannot.
    pub fn validate(c: Config) -> Result<Self, StageError> {
        let command = match c.command {
            Some(argv) => Some(command(argv, c.cwd, c.timeout)?),
            None => {
                if c.cwd.is_some() || c.timeout.is_some() {
                    let key = if c.cwd.is_some() { "cwd" } else { "timeout" };
                    return Err(StageError::invalid_config(format!(
                        "with.{key}: only applies to `with.command`; add a command or remove `{key}`"
                    )));
                }
                None
            }
        };
        let runner = command
            .as_ref()
            .map_or(Runner::Other, |c| Runner::detect(&c.program, &c.args));
        let coverage = c.coverage.map(coverage).transpose()?;
        let format = match (c.format, &c.junit) {
            (Some(f), _) => f,
            // `cargo test` writes no JUnit on stable Rust: its console
            // output is the report.
            (None, None) if runner == Runner::CargoTest => ResultFormat::Cargo,
            (None, _) => ResultFormat::Junit,
        };
        if format == ResultFormat::Cargo {
            if command.is_none() {
                return Err(StageError::invalid_config(
                    "with.format: `cargo` reads the test command's output; add \
                     `command: [cargo, test]`, or use `format: junit` to read existing reports",
                ));
            }
            if c.junit.is_some() {
                return Err(StageError::invalid_config(
                    "with.junit: not read with `format: cargo` (the results come from the \
                     command's output, and the stage writes the junit.xml artifact itself); \
                     remove `junit`, or set `format: junit`",
                ));
            }
            return Ok(Self {
                command,
                format,
                junit: Vec::new(),
                coverage,
            });
        }
        let junit = match c.junit {
            None => {
                return Err(StageError::invalid_config(format!(
                    "with.junit: missing; set it to the JUnit XML file your tests write, relative \
                     to the workspace (a path or glob), e.g. `junit: reports/junit.xml` ({})",
                    runner.junit_hint()
                )))
            }
            Some(list) if list.is_empty() => {
                return Err(StageError::invalid_config(
                    "with.junit: empty list; name at least one JUnit XML file or glob",
                ))
            }
            Some(list) => list,
        };
        for (i, p) in junit.iter().enumerate() {
            let key = if junit.was_list() {
                format!("with.junit[{i}]")
            } else {
                "with.junit".to_string()
            };
            check_pattern(&key, p)?;
        }
        Ok(Self {
            command,
            format,
            junit: junit.into_vec(),
            coverage,
        })
    }
}

fn coverage(c: CoverageConfig) -> Result<(String, Format), StageError> {
    check_pattern("with.coverage.path", &c.path)?;
    if c.path.contains(['*', '?', '[']) {
        return Err(StageError::invalid_config(format!(
            "with.coverage.path: `{}` is a glob; give the one report file, e.g. `reports/coverage.lcov`",
            c.path
        )));
    }
    let format = c
        .format
        .or_else(|| Format::from_path(&c.path))
        .ok_or_else(|| {
            StageError::invalid_config(format!(
                "with.coverage.format: cannot tell the format of `{}` from its name; add \
             `format: lcov` or `format: cobertura`",
                c.path
            ))
        })?;
    Ok((c.path, format))
}

fn command(
    argv: Vec<String>,
    cwd: Option<String>,
    timeout: Option<ConfigDuration>,
) -> Result<CommandSpec, StageError> {
    let mut it = argv.into_iter();
    let Some(program) = it.next().filter(|p| !p.trim().is_empty()) else {
        return Err(StageError::invalid_config(
            "with.command: empty; give the program and its arguments, e.g. \
             `[python3, -m, pytest, --junitxml=reports/junit.xml]`, or leave `command` out \
             to read reports that already exist",
        ));
    };
    if program.contains('/') {
        return Err(StageError::invalid_config(format!(
            "with.command[0]: `{program}` is a path; the program must be a bare name granted in \
             grants.exec (run a script through its interpreter, e.g. `[sh, {program}]`)"
        )));
    }
    if let Some(dir) = &cwd {
        let p = std::path::Path::new(dir);
        if p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
            return Err(StageError::invalid_config(format!(
                "with.cwd: `{dir}` must be a directory relative to the workspace, without `..`"
            )));
        }
    }
    if timeout.is_some_and(|t| t.0.is_zero()) {
        return Err(StageError::invalid_config(
            "with.timeout: must be longer than zero, e.g. \"10m\"",
        ));
    }
    Ok(CommandSpec {
        program,
        args: it.collect(),
        cwd,
        timeout: timeout.map(|t| t.0),
    })
}

/// JSON Schema (draft 2020-12) of `with:`, returned by `describe`.
pub const SCHEMA: &str = include_str!("schema.json");

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(json: &str) -> Result<Settings, StageError> {
        Settings::from_context(&Context::for_test("test", json))
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
            r#"{"command": ["python3", "-m", "pytest", "--junitxml=reports/junit.xml"],
                "cwd": "app", "timeout": "5m", "junit": "reports/junit.xml",
                "coverage": {"path": "reports/coverage.lcov"}}"#,
        )?;
        let cmd = s.command.ok_or(StageError::failed("command"))?;
        assert_eq!(cmd.program, "python3");
        assert_eq!(cmd.args, ["-m", "pytest", "--junitxml=reports/junit.xml"]);
        assert_eq!(cmd.cwd.as_deref(), Some("app"));
        assert_eq!(cmd.timeout, Some(Duration::from_secs(300)));
        assert_eq!(s.junit, ["reports/junit.xml"]);
        assert_eq!(
            s.coverage,
            Some(("reports/coverage.lcov".into(), Format::Lcov))
        );
        Ok(())
    }

    #[test]
    fn reports_only() -> Result<(), StageError> {
        let s = settings(
            r#"{"junit": ["a.xml", "b/*.xml"], "coverage": {"path": "c.txt", "format": "cobertura"}}"#,
        )?;
        assert!(s.command.is_none());
        assert_eq!(s.junit.len(), 2);
        assert_eq!(s.coverage, Some(("c.txt".into(), Format::Cobertura)));
        Ok(())
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        assert!(config_error("{}").starts_with("with.junit: missing"));
        assert!(config_error(r#"{"junit": []}"#).starts_with("with.junit: empty"));
        assert!(config_error(r#"{"junit": "../x.xml"}"#).starts_with("with.junit: "));
        assert!(config_error(r#"{"junit": ["a.xml", "/b.xml"]}"#).starts_with("with.junit[1]: "));
        assert!(config_error(r#"{"junit": ["/b.xml"]}"#).starts_with("with.junit[0]: "));
        assert!(config_error(r#"{"junit": 3}"#).starts_with("with.junit: invalid type"));
        let typo = config_error(r#"{"junit": "a", "comand": []}"#);
        assert!(
            typo.starts_with("with.comand: unknown field `comand`, expected one of"),
            "{typo}"
        );
        assert!(config_error(r#"{"junit": "a", "command": []}"#).starts_with("with.command: empty"));
        assert!(config_error(r#"{"junit": "a", "command": ["./run.sh"]}"#)
            .starts_with("with.command[0]: `./run.sh` is a path"));
        assert!(config_error(r#"{"junit": "a", "cwd": "x"}"#).starts_with("with.cwd: only applies"));
        assert!(
            config_error(r#"{"junit": "a", "command": ["sh"], "cwd": "../x"}"#)
                .starts_with("with.cwd: ")
        );
        assert!(
            config_error(r#"{"junit": "a", "command": ["sh"], "timeout": "soon"}"#)
                .starts_with("with.timeout: ")
        );
        assert!(
            config_error(r#"{"junit": "a", "coverage": {"path": "c.json"}}"#)
                .starts_with("with.coverage.format: ")
        );
        assert!(
            config_error(r#"{"junit": "a", "coverage": {"path": "c.xml", "format": "xml"}}"#)
                .starts_with("with.coverage.format: unknown variant `xml`")
        );
        assert!(
            config_error(r#"{"junit": "a", "coverage": {"path": "*.xml"}}"#)
                .starts_with("with.coverage.path: ")
        );
    }

    #[test]
    fn cargo_test_reads_its_output() -> Result<(), StageError> {
        // Detected from the command when `junit` is left out.
        let s = settings(r#"{"command": ["cargo", "test", "--no-fail-fast"]}"#)?;
        assert_eq!(s.format, ResultFormat::Cargo);
        assert!(s.junit.is_empty());
        // Asked for explicitly, with any program.
        let s = settings(r#"{"command": ["sh", "-c", "cargo test"], "format": "cargo"}"#)?;
        assert_eq!(s.format, ResultFormat::Cargo);
        // `cargo test` with `junit` keeps reading JUnit (nightly libtest).
        let s = settings(r#"{"command": ["cargo", "test"], "junit": "j.xml"}"#)?;
        assert_eq!(s.format, ResultFormat::Junit);
        Ok(())
    }

    #[test]
    fn cargo_format_errors() {
        assert!(config_error(r#"{"format": "cargo"}"#).starts_with("with.format: `cargo` reads"));
        assert!(config_error(
            r#"{"format": "cargo", "command": ["cargo", "test"], "junit": "a.xml"}"#
        )
        .starts_with("with.junit: not read with `format: cargo`"));
        assert!(config_error(r#"{"format": "json", "junit": "a"}"#)
            .starts_with("with.format: unknown variant `json`"));
        assert!(
            config_error(r#"{"format": "junit", "command": ["cargo", "test"]}"#)
                .starts_with("with.junit: missing")
        );
    }

    #[test]
    fn missing_junit_hints_at_the_runner() {
        let e = config_error(r#"{"command": ["cargo", "nextest", "run"]}"#);
        assert!(e.contains("[profile.default.junit]"), "{e}");
        let e = config_error(r#"{"command": ["go", "test", "./..."]}"#);
        assert!(e.contains("gotestsum --junitfile"), "{e}");
        let e = config_error(r#"{"command": ["npx", "jest"]}"#);
        assert!(e.contains("jest-junit"), "{e}");
    }

    #[test]
    fn schema_is_json() -> Result<(), serde_json::Error> {
        let v: serde_json::Value = serde_json::from_str(SCHEMA)?;
        assert_eq!(v["additionalProperties"], false);
        // `junit` is optional in the schema: `format: cargo` needs none.
        assert!(v.get("required").is_none());
        assert_eq!(v["properties"]["format"]["enum"][1], "cargo");
        Ok(())
    }
}
