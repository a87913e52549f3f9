//! Dependency lockfiles: finding them and reading the packages they pin.
//!
//! | file name | ecosystem | reader |
//! |---|---|---|
//! | `Cargo.lock` | crates.io | [`cargo`] — packages from the crates.io index only (path and git dependencies are not on crates.io) |
//! | `package-lock.json`, `npm-shrinkwrap.json` | npm | [`npm`] — the `packages` map of lockfileVersion 2 and 3 (and the nested `dependencies` of version 1) |
//! | `requirements*.txt` | PyPI | [`python`] — `name==version` lines; anything not pinned exactly is reported as a warning and not checked |
//! | `poetry.lock` | PyPI | [`python`] — `[[package]]` entries, except git, path and URL sources |
//!
//! A lockfile that does not parse produces a warning, never a failed stage:
//! one broken file must not hide the findings of every other.

pub mod cargo;
pub mod npm;
pub mod python;

use std::collections::HashMap;

use serde::Serialize;

use crate::version::Ecosystem;

/// The kinds of lockfile the scanner reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockfileKind {
    /// `Cargo.lock`.
    Cargo,
    /// `package-lock.json` / `npm-shrinkwrap.json`.
    Npm,
    /// `requirements*.txt`.
    Requirements,
    /// `poetry.lock`.
    Poetry,
}

impl LockfileKind {
    /// The kind of lockfile a file name denotes, if any.
    ///
    /// ```
    /// use sluice_plugin_scan::deps::LockfileKind;
    /// assert_eq!(LockfileKind::detect("requirements-dev.txt"), Some(LockfileKind::Requirements));
    /// assert_eq!(LockfileKind::detect("package.json"), None);
    /// ```
    pub fn detect(file_name: &str) -> Option<LockfileKind> {
        match file_name {
            "Cargo.lock" => Some(LockfileKind::Cargo),
            "package-lock.json" | "npm-shrinkwrap.json" => Some(LockfileKind::Npm),
            "poetry.lock" => Some(LockfileKind::Poetry),
            n if n.starts_with("requirements") && n.ends_with(".txt") => {
                Some(LockfileKind::Requirements)
            }
            _ => None,
        }
    }

    /// The ecosystem its packages belong to.
    pub fn ecosystem(self) -> Ecosystem {
        match self {
            LockfileKind::Cargo => Ecosystem::CratesIo,
            LockfileKind::Npm => Ecosystem::Npm,
            LockfileKind::Requirements | LockfileKind::Poetry => Ecosystem::PyPi,
        }
    }
}

/// One pinned package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    /// Its ecosystem.
    #[serde(serialize_with = "ser_ecosystem")]
    pub ecosystem: Ecosystem,
    /// Name as written in the lockfile.
    pub name: String,
    /// Exact version as written in the lockfile.
    pub version: String,
    /// The lockfile, relative to the scanned root.
    pub file: String,
    /// 1-based line of the package's entry, when it could be found.
    pub line: Option<usize>,
}

fn ser_ecosystem<S: serde::Serializer>(e: &Ecosystem, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(e.osv_name())
}

/// What reading one lockfile produced.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The pinned packages.
    pub dependencies: Vec<Dependency>,
    /// Things the user should know (unpinned requirements, skipped lines).
    pub warnings: Vec<String>,
}

/// Reads the lockfile `path` (relative, for messages) of `kind`.
///
/// A file that cannot be parsed yields no packages and one warning.
pub fn parse(kind: LockfileKind, path: &str, text: &str) -> Parsed {
    let result: Result<Parsed, String> = match kind {
        LockfileKind::Cargo => cargo::parse(path, text).map_err(|e| e.to_string()),
        LockfileKind::Npm => npm::parse(path, text).map_err(|e| e.to_string()),
        LockfileKind::Requirements => Ok(python::parse_requirements(path, text)),
        LockfileKind::Poetry => python::parse_poetry(path, text).map_err(|e| e.to_string()),
    };
    result.unwrap_or_else(|e| Parsed {
        dependencies: Vec::new(),
        warnings: vec![format!(
            "{path}: cannot read this lockfile: {}",
            e.lines().next().unwrap_or("").trim()
        )],
    })
}

/// Line numbers of `[[package]]` entries in a TOML lockfile (Cargo.lock,
/// poetry.lock): (name, version) → line of the entry's `name = …`.
///
/// Both formats write one key per line with double-quoted strings, so a
/// line scan is exact for them and avoids a span-tracking TOML parser.
pub(crate) fn toml_package_lines(text: &str) -> HashMap<(String, String), usize> {
    let mut out = HashMap::new();
    let mut in_package = false;
    let mut name: Option<(String, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            in_package = line == "[[package]]";
            name = None;
            continue;
        }
        if !in_package {
            continue;
        }
        if let Some(v) = toml_string_value(line, "name") {
            name = Some((v, i + 1));
        } else if let Some(v) = toml_string_value(line, "version") {
            if let Some((n, at)) = name.take() {
                out.entry((n, v)).or_insert(at);
            }
        }
    }
    out
}

/// `key = "value"` → `value`.
fn toml_string_value(line: &str, key: &str) -> Option<String> {
    let rest = line
        .strip_prefix(key)?
        .trim_start()
        .strip_prefix('=')?
        .trim();
    let inner = rest.strip_prefix('"')?.strip_suffix('"')?;
    Some(inner.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockfiles_are_detected_by_name() {
        assert_eq!(
            LockfileKind::detect("Cargo.lock"),
            Some(LockfileKind::Cargo)
        );
        assert_eq!(
            LockfileKind::detect("package-lock.json"),
            Some(LockfileKind::Npm)
        );
        assert_eq!(
            LockfileKind::detect("npm-shrinkwrap.json"),
            Some(LockfileKind::Npm)
        );
        assert_eq!(
            LockfileKind::detect("poetry.lock"),
            Some(LockfileKind::Poetry)
        );
        assert_eq!(
            LockfileKind::detect("requirements.txt"),
            Some(LockfileKind::Requirements)
        );
        assert_eq!(LockfileKind::detect("yarn.lock"), None);
        assert_eq!(LockfileKind::detect("requirements.in"), None);
    }

    #[test]
    fn toml_lines_pair_names_with_versions() {
        let text = "version = 3\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n\n[metadata]\nname = \"x\"\nversion = \"9\"\n[[package]]\nname = \"b\"\nversion = \"2.0.0\"\n";
        let lines = toml_package_lines(text);
        assert_eq!(lines.get(&("a".into(), "1.0.0".into())), Some(&4));
        assert_eq!(lines.get(&("b".into(), "2.0.0".into())), Some(&11));
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn broken_lockfiles_become_warnings() {
        let p = parse(LockfileKind::Npm, "web/package-lock.json", "{ not json");
        assert!(p.dependencies.is_empty());
        assert_eq!(p.warnings.len(), 1);
        assert!(
            p.warnings[0].starts_with("web/package-lock.json: cannot read"),
            "{:?}",
            p.warnings
        );
    }
}
