//! The stage's `with:` block: wire type ([`Options`], serde with
//! `deny_unknown_fields`) and the validated model ([`Settings`]).
//!
//! Every problem becomes a [`ConfigError`] naming the key (`with.include[2]`)
//! and saying how to fix it; the stage turns it into
//! `StageError::InvalidConfig`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::allow::Allowlist;
use crate::osv::source::{AdvisoriesOption, CacheOption, CacheSettings, Source};
use crate::walk::PathFilter;

/// Default `max-file-size`: 1 MiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1024 * 1024;

/// Lockfiles are read up to this size whatever `max-file-size` says
/// (a large monorepo's `package-lock.json` is several MiB).
pub const MAX_LOCKFILE_SIZE: u64 = 64 * 1024 * 1024;

/// Default `exclude` globs; setting `exclude` replaces them.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    "**/node_modules/**",
    "**/target/**",
    "**/.venv/**",
    "**/venv/**",
    "**/__pycache__/**",
];

/// The `with:` block as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Options {
    /// Globs of files to scan (default `["**"]`).
    #[serde(default)]
    pub include: Option<Vec<String>>,
    /// Globs of files and directories to skip (default [`DEFAULT_EXCLUDES`]).
    #[serde(default)]
    pub exclude: Option<Vec<String>>,
    /// Files larger than this are not scanned for secrets: bytes, or a
    /// string with a unit (`512KiB`, `2MB`, `1MiB`).
    #[serde(default)]
    pub max_file_size: Option<ByteSize>,
    /// Scan for secrets (default true).
    #[serde(default)]
    pub secrets: Option<bool>,
    /// Read lockfiles and check them against the advisories (default true).
    #[serde(default)]
    pub dependencies: Option<bool>,
    /// Advisory sources: directories of OSV JSON, `.zip` dumps, dump URLs
    /// or `{api: <base URL>}`, one or a list (see [`crate::osv::source`]).
    #[serde(default)]
    pub advisories: Option<AdvisoriesOption>,
    /// Where OSV API answers and downloaded dumps are cached, relative to
    /// the workspace (default `.sluice-osv-cache`), or `false`.
    #[serde(default)]
    pub cache: Option<CacheOption>,
    /// How long a cached answer is used (default `1h`).
    #[serde(default)]
    pub cache_max_age: Option<sluice_sdk::values::ConfigDuration>,
    /// Accepted findings: fingerprints, advisory ids, or regexes on the
    /// secret value (see [`crate::allow`]).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Minimum Shannon entropy (bits per character) for `generic-secret`
    /// (default: scaled to each value's length and charset).
    #[serde(default)]
    pub entropy_threshold: Option<f64>,
}

/// A byte count written as a number or with a unit (`512KiB`, `2MB`,
/// `1.5MiB`): the size type shared with the runner.
pub use sluice_sdk::values::ByteSize;

/// A configuration problem: the key and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// Key path, e.g. `with.exclude[1]`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Where relative and absolute paths in the config are resolved.
#[derive(Debug, Clone)]
pub struct Roots {
    /// The scanned tree (`/workspace` in the sandbox).
    pub workspace: PathBuf,
    /// Where input artifacts are (`/artifacts/in` in the sandbox).
    pub inputs: PathBuf,
}

impl Roots {
    /// The sandbox's layout.
    pub fn sandbox() -> Roots {
        Roots {
            workspace: PathBuf::from("/workspace"),
            inputs: PathBuf::from("/artifacts/in"),
        }
    }
}

/// The validated configuration.
#[derive(Debug)]
pub struct Settings {
    /// Which files are read.
    pub filter: PathFilter,
    /// Secret-scan size limit in bytes.
    pub max_file_size: u64,
    /// Whether secrets are scanned.
    pub secrets: bool,
    /// Whether lockfiles are read.
    pub dependencies: bool,
    /// The advisory sources, resolved (paths checked to exist); empty
    /// when none was given.
    pub advisories: Vec<Source>,
    /// Where network answers are cached.
    pub cache: CacheSettings,
    /// The allowlist.
    pub allow: Allowlist,
    /// `generic-secret` entropy threshold; `None` scales it with each
    /// value's length and charset.
    pub entropy_threshold: Option<f64>,
}

impl Settings {
    /// Validates `options`, resolving paths against `roots`.
    pub fn from_options(options: Options, roots: &Roots) -> Result<Settings, ConfigError> {
        let include = options.include.unwrap_or_else(|| vec!["**".to_string()]);
        if include.is_empty() {
            return Err(ConfigError::new(
                "with.include",
                "must not be empty; remove it to scan every file, or list globs such as [\"src/**\", \"**/*.env\"]",
            ));
        }
        let exclude = options
            .exclude
            .unwrap_or_else(|| DEFAULT_EXCLUDES.iter().map(|s| s.to_string()).collect());
        let filter = PathFilter::new(&include, &exclude).map_err(|(is_exclude, e)| {
            let list = if is_exclude { "exclude" } else { "include" };
            ConfigError::new(
                format!("with.{list}[{}]", e.index),
                format!(
                    "`{}` is not a valid glob ({}); use globset syntax such as `src/**/*.rs` or `**/fixtures/**`",
                    e.pattern, e.source
                ),
            )
        })?;

        let max_file_size = options.max_file_size.map_or(DEFAULT_MAX_FILE_SIZE, |b| b.0);
        if max_file_size == 0 {
            return Err(ConfigError::new(
                "with.max-file-size",
                "must be greater than 0, e.g. 1MiB (the default)",
            ));
        }

        let secrets = options.secrets.unwrap_or(true);
        let dependencies = options.dependencies.unwrap_or(true);
        if !secrets && !dependencies {
            return Err(ConfigError::new(
                "with",
                "`secrets` and `dependencies` are both false, so there is nothing to scan; enable at least one",
            ));
        }

        let entropy_threshold = options.entropy_threshold;
        if let Some(t) = entropy_threshold {
            if !(t.is_finite() && t > 0.0 && t <= 8.0) {
                return Err(ConfigError::new(
                    "with.entropy-threshold",
                    format!(
                        "{t} is out of range; use bits per character between 0 and 8, or remove it to scale the threshold with each value's length and charset (the default)"
                    ),
                ));
            }
        }

        let allow = Allowlist::new(&options.allow).map_err(|e| {
            ConfigError::new(
                format!("with.allow[{}]", e.index),
                format!(
                    "`{}` is not a valid regular expression ({}); write a fingerprint `path:rule-id:line`, an advisory id, or a regex (escape `.`, `(`, `[` with `\\`)",
                    e.entry,
                    first_line(&e.source.to_string())
                ),
            )
        })?;

        let advisories = match &options.advisories {
            Some(a) => crate::osv::source::resolve(a, roots)?,
            None => Vec::new(),
        };
        let cache = CacheSettings::resolve(
            options.cache.as_ref(),
            options.cache_max_age.map(|d| d.get()),
            roots,
        )?;

        Ok(Settings {
            filter,
            max_file_size,
            secrets,
            dependencies,
            advisories,
            cache,
            allow,
            entropy_threshold,
        })
    }
}

/// The last line of a multi-line regex error (the one that says what is
/// wrong).
fn first_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Roots {
        Roots {
            workspace: std::env::temp_dir(),
            inputs: PathBuf::from("/artifacts/in"),
        }
    }

    fn settings(json: &str) -> Result<Settings, String> {
        let options: Options = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Settings::from_options(options, &roots()).map_err(|e| e.to_string())
    }

    fn err(json: &str) -> String {
        match settings(json) {
            Ok(_) => panic!("{json} should be rejected"),
            Err(e) => e,
        }
    }

    #[test]
    fn defaults() {
        let s = settings("{}").unwrap_or_else(|e| panic!("{e}"));
        assert!(s.secrets && s.dependencies);
        assert_eq!(s.max_file_size, DEFAULT_MAX_FILE_SIZE);
        assert_eq!(s.entropy_threshold, None);
        assert!(s.advisories.is_empty());
        assert!(!s.filter.includes_file("web/node_modules/a/index.js"));
        assert!(s.filter.includes_file("src/main.rs"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(err(r#"{"exclued": []}"#).contains("unknown field `exclued`"));
    }

    #[test]
    fn sizes_take_units() {
        let s = settings(r#"{"max-file-size": "64KiB"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.max_file_size, 65536);
        let s = settings(r#"{"max-file-size": 1000}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.max_file_size, 1000);
        assert!(err(r#"{"max-file-size": "big"}"#).contains("`big` is not a size"));
        assert!(err(r#"{"max-file-size": 0}"#)
            .starts_with("with.max-file-size: must be greater than 0"));
    }

    #[test]
    fn invalid_globs_and_regexes_name_the_entry() {
        let e = err(r#"{"exclude": ["ok/**", "a[b"]}"#);
        assert!(
            e.starts_with("with.exclude[1]: `a[b` is not a valid glob"),
            "{e}"
        );
        let e = err(r#"{"include": []}"#);
        assert!(e.starts_with("with.include: must not be empty"), "{e}");
        let e = err(r#"{"allow": ["fine", "(unclosed"]}"#);
        assert!(
            e.starts_with("with.allow[1]: `(unclosed` is not a valid regular expression"),
            "{e}"
        );
    }

    #[test]
    fn thresholds_are_range_checked() {
        assert!(err(r#"{"entropy-threshold": 0}"#)
            .starts_with("with.entropy-threshold: 0 is out of range"));
        assert!(err(r#"{"entropy-threshold": 9.5}"#).contains("out of range"));
        assert!(settings(r#"{"entropy-threshold": 4.2}"#).is_ok());
    }

    #[test]
    fn nothing_to_do_is_an_error() {
        let e = err(r#"{"secrets": false, "dependencies": false}"#);
        assert!(e.contains("nothing to scan"), "{e}");
    }

    #[test]
    fn advisory_directories_are_resolved_and_checked() {
        let e = err(r#"{"advisories": "no-such-osv-dir-here"}"#);
        assert!(
            e.starts_with("with.advisories: directory `no-such-osv-dir-here` not found"),
            "{e}"
        );
        let e = err(r#"{"advisories": "../etc"}"#);
        assert!(e.contains("must not contain `..`"), "{e}");
        let e = err(r#"{"advisories": "/etc"}"#);
        assert!(e.contains("outside the workspace"), "{e}");
        let dir = std::env::temp_dir().join(format!("sluice-scan-osv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let s = settings(&format!(r#"{{"advisories": "{name}"}}"#));
        let _ = std::fs::remove_dir(&dir);
        assert_eq!(s.map(|s| s.advisories).ok(), Some(vec![Source::Dir(dir)]));
    }

    #[test]
    fn advisories_may_come_from_an_upstream_artifact() {
        let inputs = std::env::temp_dir().join(format!("sluice-scan-in-{}", std::process::id()));
        let db = inputs.join("fetch/osv");
        std::fs::create_dir_all(&db).unwrap_or_else(|e| panic!("{e}"));
        let roots = Roots {
            workspace: PathBuf::from("/nonexistent-workspace"),
            inputs: inputs.clone(),
        };
        let options = Options {
            advisories: Some(db.display().to_string().into()),
            ..Options::default()
        };
        let resolved = Settings::from_options(options, &roots).map(|s| s.advisories);
        let escape = Options {
            advisories: Some(format!("{}/../../etc", db.display()).into()),
            ..Options::default()
        };
        let escaped = Settings::from_options(escape, &roots).map(|s| s.advisories);
        let _ = std::fs::remove_dir_all(&inputs);
        assert_eq!(resolved.ok(), Some(vec![Source::Dir(db)]));
        assert!(escaped.is_err());
    }
}
