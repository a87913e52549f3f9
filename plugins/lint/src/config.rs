//! The stage's `with:` block: wire types ([`Config`], strict serde) and
//! their validation into [`Settings`] (compiled globs, rule levels, checked
//! commands). Every error is a [`StageError::InvalidConfig`] that names the
//! key and says how to fix it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path};
use std::time::Duration;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use sluice_sdk::values::{ByteSize, ConfigDuration};
use sluice_sdk::StageError;

use crate::finding::Level;
use crate::rules::Rule;
use crate::walk::Selection;

/// Directories skipped unless `default-excludes: false`: version control,
/// build output, dependencies and the caches test and lint tools leave
/// behind (their files are not the project's, and a second run must not
/// find more than the first).
pub const DEFAULT_EXCLUDES: [&str; 12] = [
    "**/.git/**",
    "**/target/**",
    "**/node_modules/**",
    "**/.pytest_cache/**",
    "**/.hypothesis/**",
    "**/.ruff_cache/**",
    "**/.mypy_cache/**",
    "**/.tox/**",
    "**/.nox/**",
    "**/__pycache__/**",
    ".sluice/**",
    "dist/**",
];

/// JSON files that may contain comments and trailing commas, unless `jsonc`
/// names others.
pub const DEFAULT_JSONC: [&str; 6] = [
    "**/*.jsonc",
    "**/tsconfig*.json",
    "**/jsconfig*.json",
    "**/.vscode/*.json",
    "**/.devcontainer/*.json",
    "**/.devcontainer.json",
];

/// Default `max-file-size`: 1 MiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1024 * 1024;

/// The `with:` block as the pipeline writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Directories (or files) to check, relative to the workspace. Default `["."]`.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// Globs a file must match to be checked. Default `["**"]`.
    #[serde(default)]
    pub include: Option<Vec<String>>,
    /// Globs of files and directories to skip, added to [`DEFAULT_EXCLUDES`].
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Whether [`DEFAULT_EXCLUDES`] apply. Default `true`.
    #[serde(default = "yes")]
    pub default_excludes: bool,
    /// Whether `.gitignore`, `.ignore` and `.git/info/exclude` are
    /// respected. Default `true`.
    #[serde(default = "yes")]
    pub gitignore: bool,
    /// Globs of JSON files parsed as JSONC. Default [`DEFAULT_JSONC`].
    #[serde(default)]
    pub jsonc: Option<Vec<String>>,
    /// Files above this size get a `large-file` finding. Default 1 MiB.
    #[serde(default)]
    pub max_file_size: Option<ByteSize>,
    /// Which line endings are allowed. Default `any`.
    #[serde(default)]
    pub line_endings: LineEndings,
    /// Per-rule level: `off`, `note`, `warning` or `error`.
    #[serde(default)]
    pub rules: BTreeMap<String, Severity>,
    /// Whether to run the stage's own checks at all. Default `true`.
    #[serde(default = "yes")]
    pub builtin: bool,
    /// External linters to run through `exec`.
    #[serde(default)]
    pub external: Vec<ExternalConfig>,
    /// When the stage itself fails its `lint` gate. Default `never`.
    #[serde(default)]
    pub fail_on: FailOn,
}

fn yes() -> bool {
    true
}

/// One entry of `with.external`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExternalConfig {
    /// Program and arguments, e.g. `[cargo, clippy, --message-format=json]`.
    pub command: Vec<String>,
    /// How to read its output.
    pub format: ExternalFormat,
    /// Working directory relative to the workspace.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Read the report from this file (relative to the workspace) instead
    /// of stdout.
    #[serde(default)]
    pub output: Option<String>,
    /// Tool name in findings and SARIF.
    #[serde(default)]
    pub name: Option<String>,
    /// Kill the program after this long (`90s`, `10m`).
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
}

/// The output format of an external linter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExternalFormat {
    /// cargo's `--message-format=json` stream (clippy, check, build).
    ClippyJson,
    /// A SARIF 2.1.0 log.
    Sarif,
}

/// `line-endings`: which line endings text files may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineEndings {
    /// Only `\n`.
    Lf,
    /// Only `\r\n`.
    Crlf,
    /// Anything (the `line-endings` rule never fires).
    #[default]
    Any,
}

/// `fail-on`: when the stage reports a failing `lint` gate of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailOn {
    /// Any error finding fails the gate.
    Error,
    /// Any error or warning finding fails the gate.
    Warning,
    /// The stage reports only; the pipeline decides with gates on
    /// `lint.errors` / `lint.warnings`.
    #[default]
    Never,
}

/// A rule's level in `with.rules`: `off`, `note`, `warning` (or `warn`),
/// `error`; `false` means `off` and `true` the rule's default level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The rule does not run.
    Off,
    /// The rule's default level.
    Default,
    /// This level.
    Level(Level),
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Severity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one of `off`, `note`, `warning`, `error` (or true/false)")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Severity, E> {
                Ok(if v { Severity::Default } else { Severity::Off })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Severity, E> {
                match v {
                    "off" => Ok(Severity::Off),
                    "note" => Ok(Severity::Level(Level::Note)),
                    "warning" | "warn" => Ok(Severity::Level(Level::Warning)),
                    "error" => Ok(Severity::Level(Level::Error)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A validated external linter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// Position in `with.external`, for messages.
    pub index: usize,
    /// A bare program name from `grants.exec`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// How to read its output.
    pub format: ExternalFormat,
    /// Working directory relative to the workspace (`None`: the root).
    pub cwd: Option<String>,
    /// Report file relative to the workspace (`None`: stdout).
    pub output: Option<String>,
    /// Tool name override.
    pub name: Option<String>,
    /// Timeout (`None`: the time the stage has left).
    pub timeout: Option<Duration>,
}

impl External {
    /// `with.external[0] (`cargo clippy --message-format=json`)`, for messages.
    pub fn label(&self) -> String {
        let mut cmd = self.program.clone();
        for a in &self.args {
            cmd.push(' ');
            cmd.push_str(a);
        }
        format!("with.external[{}] (`{cmd}`)", self.index)
    }
}

/// The validated configuration the stage runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Normalized roots to walk, relative to the workspace (`""` is the root).
    pub paths: Vec<String>,
    /// Which files are checked.
    pub selection: Selection,
    /// Which JSON files are JSONC.
    pub jsonc: GlobSet,
    /// `large-file` threshold in bytes.
    pub max_file_size: u64,
    /// Allowed line endings.
    pub line_endings: LineEndings,
    /// Whether the stage's own checks run.
    pub builtin: bool,
    /// External linters, in order.
    pub external: Vec<External>,
    /// When the stage fails its own gate.
    pub fail_on: FailOn,
    levels: BTreeMap<Rule, Option<Level>>,
}

impl Settings {
    /// Validates `config`.
    pub fn from_config(config: Config) -> Result<Settings, StageError> {
        let paths = match &config.paths {
            None => vec![String::new()],
            Some(p) if p.is_empty() => {
                return Err(StageError::invalid_config(
                    "with.paths: must name at least one directory; leave it out to check the whole workspace",
                ))
            }
            Some(p) => p
                .iter()
                .enumerate()
                .map(|(i, s)| relative_path(&format!("with.paths[{i}]"), s))
                .collect::<Result<_, _>>()?,
        };
        let include_patterns = config.include.unwrap_or_else(|| vec!["**".to_string()]);
        let include = glob_set("with.include", &include_patterns)?;
        let mut exclude_patterns: Vec<String> = Vec::new();
        if config.default_excludes {
            exclude_patterns.extend(DEFAULT_EXCLUDES.iter().map(|s| s.to_string()));
        }
        glob_set("with.exclude", &config.exclude)?;
        exclude_patterns.extend(config.exclude.iter().cloned());
        let external: Vec<External> = config
            .external
            .into_iter()
            .enumerate()
            .map(|(i, e)| external(i, e))
            .collect::<Result<_, _>>()?;
        // The reports external linters write are this stage's own output:
        // checking them would add findings on every second run.
        exclude_patterns.extend(
            external
                .iter()
                .filter_map(|e| e.output.as_deref())
                .map(globset::escape),
        );
        let exclude = glob_set("with.exclude", &exclude_patterns)?;
        // A directory is skipped whole when `dir/**` is excluded.
        let prune_patterns: Vec<String> = exclude_patterns
            .iter()
            .filter_map(|p| p.strip_suffix("/**").map(str::to_string))
            .filter(|p| !p.is_empty())
            .collect();
        let prune = glob_set("with.exclude", &prune_patterns)?;
        let jsonc = match &config.jsonc {
            Some(j) => glob_set("with.jsonc", j)?,
            None => glob_set("with.jsonc", &DEFAULT_JSONC.map(str::to_string))?,
        };
        let mut levels = BTreeMap::new();
        for (name, severity) in &config.rules {
            let Some(rule) = Rule::from_name(name) else {
                let hint = Rule::closest(name)
                    .map(|r| format!("did you mean `{}`? ", r.name()))
                    .unwrap_or_default();
                return Err(StageError::invalid_config(format!(
                    "with.rules.{name}: unknown rule `{name}`; {hint}rules are: {}",
                    Rule::names()
                )));
            };
            let level = match severity {
                Severity::Off => None,
                Severity::Default => Some(rule.default_level()),
                Severity::Level(l) => Some(*l),
            };
            levels.insert(rule, level);
        }
        Ok(Settings {
            paths,
            selection: Selection::new(include, exclude, prune)
                .respect_ignore_files(config.gitignore),
            jsonc,
            max_file_size: config
                .max_file_size
                .map(|b| b.0)
                .unwrap_or(DEFAULT_MAX_FILE_SIZE),
            line_endings: config.line_endings,
            builtin: config.builtin,
            external,
            fail_on: config.fail_on,
            levels,
        })
    }

    /// The level findings of `rule` get, or `None` when the rule is off.
    /// `line-endings` is off while `line-endings: any`.
    pub fn level(&self, rule: Rule) -> Option<Level> {
        if rule == Rule::LineEndings && self.line_endings == LineEndings::Any {
            return None;
        }
        match self.levels.get(&rule) {
            Some(l) => *l,
            None => Some(rule.default_level()),
        }
    }
}

/// Validates one `with.external` entry.
fn external(index: usize, e: ExternalConfig) -> Result<External, StageError> {
    let key = format!("with.external[{index}]");
    let mut command = e.command.into_iter();
    let Some(program) = command.next().filter(|p| !p.trim().is_empty()) else {
        return Err(StageError::invalid_config(format!(
            "{key}.command: must name a program and its arguments, e.g. [cargo, clippy, --message-format=json]"
        )));
    };
    if program.contains('/') || program.contains('\\') {
        return Err(StageError::invalid_config(format!(
            "{key}.command: `{program}` must be a bare program name that is in the stage's grants.exec, not a path"
        )));
    }
    let cwd = e
        .cwd
        .map(|c| relative_path(&format!("{key}.cwd"), &c))
        .transpose()?
        .filter(|c| !c.is_empty());
    let output = e
        .output
        .map(|o| relative_path(&format!("{key}.output"), &o))
        .transpose()?;
    if output.as_deref() == Some("") {
        return Err(StageError::invalid_config(format!(
            "{key}.output: must name a file relative to the workspace"
        )));
    }
    let timeout = e.timeout.map(ConfigDuration::get);
    Ok(External {
        index,
        program,
        args: command.collect(),
        format: e.format,
        cwd,
        output,
        name: e.name.filter(|n| !n.trim().is_empty()),
        timeout,
    })
}

/// Normalizes a workspace-relative path (`./src/` → `src`, `.` → ``),
/// refusing absolute paths and `..`.
pub fn relative_path(key: &str, raw: &str) -> Result<String, StageError> {
    let trimmed = raw.strip_prefix("/workspace").unwrap_or(raw);
    let trimmed = if trimmed.len() < raw.len() {
        trimmed.trim_start_matches('/')
    } else {
        trimmed
    };
    let mut parts = Vec::new();
    for c in Path::new(trimmed).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(StageError::invalid_config(format!(
                    "{key}: `{raw}` must be a path relative to the workspace, without `..`"
                )))
            }
        }
    }
    Ok(parts.join("/"))
}

/// Compiles `patterns` into one set; `*` and `?` do not cross `/`, `**` does.
pub fn glob_set(key: &str, patterns: &[String]) -> Result<GlobSet, StageError> {
    let mut set = GlobSetBuilder::new();
    for (i, p) in patterns.iter().enumerate() {
        let glob = GlobBuilder::new(p.trim_start_matches("./"))
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| {
                StageError::invalid_config(format!(
                    "{key}[{i}]: invalid glob `{p}`: {}; globs use `*` (within a directory), `**` (any depth), `?`, `[abc]` and `{{a,b}}`",
                    e.kind()
                ))
            })?;
        set.add(glob);
    }
    set.build()
        .map_err(|e| StageError::invalid_config(format!("{key}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Result<Settings, StageError> {
        let ctx = sluice_sdk::Context::for_test("lint", json);
        Settings::from_config(ctx.config::<Config>()?)
    }

    fn err(json: &str) -> String {
        match settings(json) {
            Ok(_) => panic!("{json} should be rejected"),
            Err(e) => {
                assert!(matches!(e, StageError::InvalidConfig(_)), "{e}");
                e.message().to_string()
            }
        }
    }

    #[test]
    fn defaults() {
        let s = settings("{}").expect("empty config is valid");
        assert_eq!(s.paths, vec![String::new()]);
        assert_eq!(s.max_file_size, 1024 * 1024);
        assert_eq!(s.level(Rule::TrailingWhitespace), Some(Level::Warning));
        assert_eq!(s.level(Rule::YamlSyntax), Some(Level::Error));
        assert_eq!(s.level(Rule::LineEndings), None, "line-endings: any");
        assert_eq!(s.fail_on, FailOn::Never);
        assert!(s.builtin && s.external.is_empty());
        assert!(s.jsonc.is_match("web/tsconfig.json"));
        assert!(!s.jsonc.is_match("package.json"));
    }

    #[test]
    fn rules_relevel_and_switch_off() {
        let s = settings(
            r#"{"rules": {"trailing-whitespace": "off", "final-newline": "error",
                "yaml-syntax": "warn", "large-file": false, "toml-syntax": true},
                "line-endings": "lf"}"#,
        )
        .expect("valid");
        assert_eq!(s.level(Rule::TrailingWhitespace), None);
        assert_eq!(s.level(Rule::FinalNewline), Some(Level::Error));
        assert_eq!(s.level(Rule::YamlSyntax), Some(Level::Warning));
        assert_eq!(s.level(Rule::LargeFile), None);
        assert_eq!(s.level(Rule::TomlSyntax), Some(Level::Error));
        assert_eq!(s.level(Rule::LineEndings), Some(Level::Warning));
    }

    #[test]
    fn sizes_take_units() {
        let s = settings(r#"{"max-file-size": "512KiB"}"#).expect("valid");
        assert_eq!(s.max_file_size, 512 * 1024);
        let s = settings(r#"{"max-file-size": 100}"#).expect("valid");
        assert_eq!(s.max_file_size, 100);
        let s = settings(r#"{"max-file-size": "2 mb"}"#).expect("valid");
        assert_eq!(s.max_file_size, 2_000_000);
        let e = err(r#"{"max-file-size": "lots"}"#);
        assert!(
            e.starts_with("with.max-file-size: `lots` is not a size: it must start with a number"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_rules_and_formats_are_named() {
        let e = err(r#"{"inclde": ["**"]}"#);
        assert!(
            e.contains("unknown field `inclde`") && e.contains("`include`"),
            "{e}"
        );
        let e = err(r#"{"rules": {"trailing-whitespac": "off"}}"#);
        assert!(
            e.starts_with("with.rules.trailing-whitespac: unknown rule")
                && e.contains("did you mean `trailing-whitespace`?")
                && e.contains("final-newline"),
            "{e}"
        );
        let e = err(r#"{"rules": {"final-newline": "loud"}}"#);
        assert!(
            e.starts_with("with.rules.final-newline: invalid value"),
            "{e}"
        );
        let e = err(r#"{"external": [{"command": ["x"], "format": "xml"}]}"#);
        assert!(
            e.starts_with("with.external[0].format: unknown variant `xml`")
                && e.contains("clippy-json"),
            "{e}"
        );
        let e = err(r#"{"external": [{"command": ["x"], "format": "sarif", "shell": true}]}"#);
        assert!(e.contains("unknown field `shell`"), "{e}");
        let e = err(r#"{"line-endings": "mac"}"#);
        assert!(
            e.starts_with("with.line-endings: unknown variant `mac`"),
            "{e}"
        );
    }

    #[test]
    fn bad_globs_and_paths_are_named() {
        let e = err(r#"{"include": ["**/*.py", "src/[a"]}"#);
        assert!(
            e.starts_with("with.include[1]: invalid glob `src/[a`"),
            "{e}"
        );
        let e = err(r#"{"exclude": ["{a,b"]}"#);
        assert!(e.starts_with("with.exclude[0]: invalid glob"), "{e}");
        let e = err(r#"{"paths": ["../etc"]}"#);
        assert!(
            e.starts_with("with.paths[0]: `../etc` must be a path relative"),
            "{e}"
        );
        let e = err(r#"{"paths": []}"#);
        assert!(e.starts_with("with.paths: must name"), "{e}");
    }

    #[test]
    fn externals_are_checked() {
        let s = settings(
            r#"{"external": [{"command": ["cargo", "clippy", "--message-format=json"],
                "format": "clippy-json", "cwd": "./svc/", "timeout": "10m"}]}"#,
        )
        .expect("valid");
        let x = &s.external[0];
        assert_eq!(x.program, "cargo");
        assert_eq!(x.args, ["clippy", "--message-format=json"]);
        assert_eq!(x.cwd.as_deref(), Some("svc"));
        assert_eq!(x.timeout, Some(Duration::from_secs(600)));
        assert_eq!(
            x.label(),
            "with.external[0] (`cargo clippy --message-format=json`)"
        );
        let e = err(r#"{"external": [{"command": [], "format": "sarif"}]}"#);
        assert!(
            e.starts_with("with.external[0].command: must name a program"),
            "{e}"
        );
        let e = err(r#"{"external": [{"command": ["/bin/cat"], "format": "sarif"}]}"#);
        assert!(
            e.contains("bare program name") && e.contains("grants.exec"),
            "{e}"
        );
        let e =
            err(r#"{"external": [{"command": ["cat"], "format": "sarif", "output": "/etc/x"}]}"#);
        assert!(e.starts_with("with.external[0].output:"), "{e}");
        let e =
            err(r#"{"external": [{"command": ["cat"], "format": "sarif", "timeout": "soon"}]}"#);
        assert!(e.starts_with("with.external[0].timeout: `soon`"), "{e}");
    }

    #[test]
    fn relative_paths_normalize() {
        assert_eq!(relative_path("k", ".").ok().as_deref(), Some(""));
        assert_eq!(relative_path("k", "./src/").ok().as_deref(), Some("src"));
        assert_eq!(
            relative_path("k", "/workspace/src").ok().as_deref(),
            Some("src")
        );
        assert!(relative_path("k", "/etc").is_err());
        assert!(relative_path("k", "a/../../b").is_err());
    }
}
