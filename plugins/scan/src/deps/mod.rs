//! Dependency lockfiles: finding them and reading the packages they pin.
//!
//! | file name | ecosystem | reader |
//! |---|---|---|
//! | `Cargo.lock` | crates.io | [`cargo`] — packages from the crates.io index only (path and git dependencies are not on crates.io) |
//! | `package-lock.json`, `npm-shrinkwrap.json` | npm | [`npm`] — the `packages` map of lockfileVersion 2 and 3 (and the nested `dependencies` of version 1) |
//! | `yarn.lock` | npm | [`yarn`] — yarn 1 (its own line format) and yarn 2+ "berry" (`__metadata`, YAML); registry packages only |
//! | `pnpm-lock.yaml` | npm | [`pnpm`] — `packages:`/`snapshots:` keys of lockfile versions 5 (`/name/1.2.3`), 6 (`/name@1.2.3`) and 9 (`name@1.2.3`), peer suffixes dropped |
//! | `requirements*.txt`, `*requirements.txt`, `requirements/*.txt` | PyPI | [`python`] — `name==version` lines, following `-r other.txt` includes inside the workspace; anything not pinned exactly is reported as a warning and not checked |
//! | `poetry.lock` | PyPI | [`python`] — `[[package]]` entries, except git, path and URL sources |
//! | `Pipfile.lock` | PyPI | [`python`] — `default` and `develop` packages pinned with `==` |
//! | `uv.lock` | PyPI | [`python`] — `[[package]]` entries from a registry source |
//! | `go.mod` | Go | [`go`] — `require` lines and blocks, with `replace` directives applied |
//! | `go.sum` | Go | [`go`] — one version per module (the highest: the one the build selects), `/go.mod` lines merged |
//!
//! A lockfile that does not parse produces a warning naming the file and
//! line ([`LockfileError`]), never a failed stage: one broken file must not
//! hide the findings of every other. A file that looks like a lockfile but
//! is none of these ([`looks_like_lockfile`]: `Gemfile.lock`,
//! `composer.lock`, `gradle.lockfile`, any `*.lock`, …) is listed in one
//! warning and in the summary, so an unsupported format is never silently
//! skipped.

pub mod cargo;
pub mod go;
pub mod npm;
pub mod pnpm;
pub mod python;
pub mod yarn;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use crate::version::Ecosystem;

/// The kinds of lockfile the scanner reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockfileKind {
    /// `Cargo.lock`.
    Cargo,
    /// `package-lock.json` / `npm-shrinkwrap.json`.
    Npm,
    /// `yarn.lock` (yarn 1 or berry).
    Yarn,
    /// `pnpm-lock.yaml`.
    Pnpm,
    /// `requirements*.txt` and `requirements/*.txt`.
    Requirements,
    /// `poetry.lock`.
    Poetry,
    /// `Pipfile.lock`.
    Pipfile,
    /// `uv.lock`.
    Uv,
    /// `go.mod`.
    GoMod,
    /// `go.sum`.
    GoSum,
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
            "yarn.lock" => Some(LockfileKind::Yarn),
            "pnpm-lock.yaml" => Some(LockfileKind::Pnpm),
            "poetry.lock" => Some(LockfileKind::Poetry),
            "Pipfile.lock" => Some(LockfileKind::Pipfile),
            "uv.lock" => Some(LockfileKind::Uv),
            "go.mod" => Some(LockfileKind::GoMod),
            "go.sum" => Some(LockfileKind::GoSum),
            n if n.ends_with(".txt")
                && (n.starts_with("requirements") || n.ends_with("-requirements.txt")) =>
            {
                Some(LockfileKind::Requirements)
            }
            _ => None,
        }
    }

    /// The kind of lockfile at `rel` (a `/`-separated path relative to the
    /// scanned root): [`detect`](Self::detect) on its name, plus the
    /// folder convention `requirements/*.txt`.
    ///
    /// ```
    /// use sluice_plugin_scan::deps::LockfileKind;
    /// assert_eq!(LockfileKind::detect_path("requirements/dev.txt"), Some(LockfileKind::Requirements));
    /// assert_eq!(LockfileKind::detect_path("docs/dev.txt"), None);
    /// ```
    pub fn detect_path(rel: &str) -> Option<LockfileKind> {
        let mut parts = rel.rsplit('/');
        let name = parts.next().unwrap_or(rel);
        if let Some(kind) = Self::detect(name) {
            return Some(kind);
        }
        let parent = parts.next();
        (name.ends_with(".txt") && parent == Some("requirements"))
            .then_some(LockfileKind::Requirements)
    }

    /// The ecosystem its packages belong to.
    pub fn ecosystem(self) -> Ecosystem {
        match self {
            LockfileKind::Cargo => Ecosystem::CratesIo,
            LockfileKind::Npm | LockfileKind::Yarn | LockfileKind::Pnpm => Ecosystem::Npm,
            LockfileKind::Requirements
            | LockfileKind::Poetry
            | LockfileKind::Pipfile
            | LockfileKind::Uv => Ecosystem::PyPi,
            LockfileKind::GoMod | LockfileKind::GoSum => Ecosystem::Go,
        }
    }
}

/// Whether a file that [`LockfileKind::detect_path`] does not read looks
/// like a lockfile of some other tool, so that the user is told it was not
/// checked: `*.lock`, `*.lockb`, `*.lockfile`, `*-lock.json`,
/// `*-lock.yaml`, `*.lock.json`, `packages.lock.json` and
/// `Package.resolved`.
///
/// ```
/// use sluice_plugin_scan::deps::looks_like_lockfile;
/// assert!(looks_like_lockfile("Gemfile.lock"));
/// assert!(looks_like_lockfile("gradle.lockfile"));
/// assert!(!looks_like_lockfile("lock.rs"));
/// ```
pub fn looks_like_lockfile(file_name: &str) -> bool {
    const SUFFIXES: [&str; 6] = [
        ".lock",
        ".lockb",
        ".lockfile",
        "-lock.json",
        "-lock.yaml",
        ".lock.json",
    ];
    let lower = file_name.to_ascii_lowercase();
    lower == "package.resolved"
        || SUFFIXES
            .iter()
            .any(|s| lower.len() > s.len() && lower.ends_with(s))
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

impl Dependency {
    /// The identity used to count packages: ecosystem, normalized name and
    /// version (the same package pinned in two lockfiles is one package).
    pub fn key(&self) -> (Ecosystem, String, String) {
        (
            self.ecosystem,
            self.ecosystem.normalize_name(&self.name),
            self.version.trim().to_string(),
        )
    }
}

fn ser_ecosystem<S: serde::Serializer>(e: &Ecosystem, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(e.osv_name())
}

/// A `-r other.txt` line of a requirements file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// The including file, relative to the scanned root.
    pub from: String,
    /// Its line.
    pub line: usize,
    /// The path as written (relative to the including file's folder).
    pub target: String,
}

/// What reading one lockfile produced.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The pinned packages.
    pub dependencies: Vec<Dependency>,
    /// Things the user should know (unpinned requirements, skipped lines).
    pub warnings: Vec<String>,
    /// Other requirements files this one includes (`-r`).
    pub includes: Vec<Include>,
}

/// A lockfile that could not be read, with the place it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: cannot read this lockfile: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct LockfileError {
    /// The lockfile, relative to the scanned root.
    pub file: String,
    /// 1-based line of the error, when the parser knows it.
    pub line: Option<usize>,
    /// What is wrong, on one line.
    pub message: String,
}

impl LockfileError {
    /// An error at `line` of `file`.
    pub fn at(file: &str, line: Option<usize>, message: impl Into<String>) -> Self {
        let message: String = message.into();
        LockfileError {
            file: file.to_string(),
            line,
            message: message.lines().next().unwrap_or("").trim().to_string(),
        }
    }

    /// From a JSON parse error (which knows its line).
    pub fn json(file: &str, e: &serde_json::Error) -> Self {
        let line = (e.line() > 0).then_some(e.line());
        // serde_json appends " at line L column C"; the line is in `line`.
        let text = e.to_string();
        let message = text
            .rfind(" at line ")
            .map_or(text.as_str(), |i| &text[..i])
            .to_string();
        Self::at(file, line, message)
    }

    /// From a TOML parse error (which knows its byte span in `text`).
    pub fn toml(file: &str, text: &str, e: &toml::de::Error) -> Self {
        let line = e.span().map(|s| line_of_offset(text, s.start));
        Self::at(file, line, e.message())
    }

    /// From a YAML parse error (which knows its line).
    pub fn yaml(file: &str, e: &serde_yaml_ng::Error) -> Self {
        let line = e.location().map(|l| l.line());
        // serde_yaml_ng appends " at line L column C"; the line is in `line`.
        let text = e.to_string();
        let message = text
            .find(" at line ")
            .map_or(text.as_str(), |i| &text[..i])
            .to_string();
        Self::at(file, line, message)
    }
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Reads the lockfile `path` (relative, for messages) of `kind`.
pub fn read(kind: LockfileKind, path: &str, text: &str) -> Result<Parsed, LockfileError> {
    match kind {
        LockfileKind::Cargo => {
            cargo::parse(path, text).map_err(|e| LockfileError::toml(path, text, &e))
        }
        LockfileKind::Npm => npm::parse(path, text).map_err(|e| LockfileError::json(path, &e)),
        LockfileKind::Yarn => yarn::parse(path, text),
        LockfileKind::Pnpm => pnpm::parse(path, text),
        LockfileKind::Requirements => Ok(python::parse_requirements(path, text)),
        LockfileKind::Poetry => {
            python::parse_poetry(path, text).map_err(|e| LockfileError::toml(path, text, &e))
        }
        LockfileKind::Pipfile => python::parse_pipfile(path, text),
        LockfileKind::Uv => python::parse_uv(path, text),
        LockfileKind::GoMod => go::parse_go_mod(path, text),
        LockfileKind::GoSum => go::parse_go_sum(path, text),
    }
}

/// Reads the lockfile `path` (relative, for messages) of `kind`.
///
/// A file that cannot be parsed yields no packages and one warning, the
/// [`LockfileError`] naming the file and line.
pub fn parse(kind: LockfileKind, path: &str, text: &str) -> Parsed {
    read(kind, path, text).unwrap_or_else(|e| Parsed {
        warnings: vec![e.to_string()],
        ..Parsed::default()
    })
}

/// Follows `-r` includes of requirements files, reading each file once.
///
/// `already` holds the files read so far (relative paths); included files
/// already in it are not read again, and those read here are added to it.
/// An include is only followed to a regular file inside `root`: absolute
/// paths, paths that climb out of the root, URLs and symlinks are
/// refused with a warning, since the stage reads the workspace only.
pub fn read_includes(
    root: &Path,
    already: &mut HashSet<String>,
    mut pending: Vec<Include>,
    max_size: u64,
) -> (Vec<String>, Parsed) {
    let mut files = Vec::new();
    let mut out = Parsed::default();
    while let Some(inc) = pending.pop() {
        let Some(rel) = join_inside(&inc.from, &inc.target) else {
            out.warnings.push(format!(
                "{}:{}: `-r {}` points outside the workspace; not read",
                inc.from, inc.line, inc.target
            ));
            continue;
        };
        if already.contains(&rel) {
            continue;
        }
        already.insert(rel.clone());
        let text = match read_confined(root, &rel, max_size) {
            Ok(t) => t,
            Err(why) => {
                out.warnings.push(format!(
                    "{}:{}: `-r {}`: {why}; not read",
                    inc.from, inc.line, inc.target
                ));
                continue;
            }
        };
        let parsed = python::parse_requirements(&rel, &text);
        files.push(rel);
        out.dependencies.extend(parsed.dependencies);
        out.warnings.extend(parsed.warnings);
        pending.extend(parsed.includes);
    }
    (files, out)
}

/// Resolves `target` against the folder of `from` (both `/`-separated and
/// relative to the root) without touching the file system; `None` when
/// it is absolute, a URL, or climbs above the root.
pub fn join_inside(from: &str, target: &str) -> Option<String> {
    let target = target.trim();
    if target.is_empty()
        || target.starts_with('/')
        || target.starts_with('\\')
        || target.contains("://")
        || target.as_bytes().get(1) == Some(&b':')
    {
        return None;
    }
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop(); // the including file's own name
    for part in target.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Reads `rel` under `root`, refusing symlinks on the way (a link could
/// point out of the workspace) and files over `max_size`.
fn read_confined(root: &Path, rel: &str, max_size: u64) -> Result<String, String> {
    let mut path = root.to_path_buf();
    for part in rel.split('/') {
        path.push(part);
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| format!("cannot read {rel}: {e}"))?;
        if meta.file_type().is_symlink() {
            return Err(format!("{rel} goes through a symlink"));
        }
    }
    let meta = std::fs::metadata(&path).map_err(|e| format!("cannot read {rel}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{rel} is not a file"));
    }
    if meta.len() > max_size {
        return Err(format!("{rel} is larger than {max_size} bytes"));
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {rel}: {e}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
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
        assert_eq!(LockfileKind::detect("yarn.lock"), Some(LockfileKind::Yarn));
        assert_eq!(
            LockfileKind::detect("pnpm-lock.yaml"),
            Some(LockfileKind::Pnpm)
        );
        assert_eq!(
            LockfileKind::detect("Pipfile.lock"),
            Some(LockfileKind::Pipfile)
        );
        assert_eq!(LockfileKind::detect("uv.lock"), Some(LockfileKind::Uv));
        assert_eq!(LockfileKind::detect("go.mod"), Some(LockfileKind::GoMod));
        assert_eq!(LockfileKind::detect("go.sum"), Some(LockfileKind::GoSum));
        assert_eq!(
            LockfileKind::detect("dev-requirements.txt"),
            Some(LockfileKind::Requirements)
        );
        assert_eq!(LockfileKind::detect("requirements.in"), None);
        assert_eq!(LockfileKind::detect("Pipfile"), None);
    }

    #[test]
    fn the_requirements_folder_convention_is_detected() {
        assert_eq!(
            LockfileKind::detect_path("requirements/base.txt"),
            Some(LockfileKind::Requirements)
        );
        assert_eq!(
            LockfileKind::detect_path("svc/requirements/prod.txt"),
            Some(LockfileKind::Requirements)
        );
        assert_eq!(
            LockfileKind::detect_path("requirements-test.txt"),
            Some(LockfileKind::Requirements)
        );
        assert_eq!(LockfileKind::detect_path("requirements/README.md"), None);
        assert_eq!(LockfileKind::detect_path("notes/base.txt"), None);
        assert_eq!(
            LockfileKind::detect_path("web/yarn.lock"),
            Some(LockfileKind::Yarn)
        );
    }

    #[test]
    fn other_tools_lockfiles_are_recognized() {
        for name in [
            "Gemfile.lock",
            "composer.lock",
            "Podfile.lock",
            "packages.lock.json",
            "gradle.lockfile",
            "pubspec.lock",
            "mix.lock",
            "flake.lock",
            "bun.lockb",
            "deno.lock",
            "pdm.lock",
            "Package.resolved",
            "shrinkwrap-lock.yaml",
        ] {
            assert!(looks_like_lockfile(name), "{name}");
        }
        for name in [".lock", "lock", "locksmith.rs", "block.json", "clock.txt"] {
            assert!(!looks_like_lockfile(name), "{name}");
        }
    }

    #[test]
    fn includes_stay_inside_the_root() {
        assert_eq!(
            join_inside("requirements/dev.txt", "base.txt").as_deref(),
            Some("requirements/base.txt")
        );
        assert_eq!(
            join_inside("requirements/dev.txt", "../requirements.txt").as_deref(),
            Some("requirements.txt")
        );
        assert_eq!(
            join_inside("requirements.txt", "./req/a.txt").as_deref(),
            Some("req/a.txt")
        );
        assert_eq!(join_inside("requirements.txt", "../outside.txt"), None);
        assert_eq!(join_inside("a/requirements.txt", "../../x.txt"), None);
        assert_eq!(join_inside("requirements.txt", "/etc/passwd"), None);
        assert_eq!(join_inside("requirements.txt", "C:\\x.txt"), None);
        assert_eq!(
            join_inside("requirements.txt", "https://example.com/r.txt"),
            None
        );
        assert_eq!(join_inside("requirements.txt", ""), None);
    }

    #[test]
    fn includes_are_read_once_and_confined() {
        let dir = std::env::temp_dir().join(format!("sluice-scan-inc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let req = dir.join("requirements");
        assert!(std::fs::create_dir_all(&req).is_ok());
        let write = |rel: &str, text: &str| {
            assert!(std::fs::write(dir.join(rel), text).is_ok(), "write {rel}");
        };
        write(
            "requirements/dev.txt",
            "-r base.txt\n-r common.txt\npytest==7.0.0\n",
        );
        write("requirements/base.txt", "-r common.txt\nrequests==2.19.1\n");
        write("requirements/common.txt", "-r dev.txt\nsix==1.16.0\n");
        let parsed = parse(
            LockfileKind::Requirements,
            "requirements/dev.txt",
            "-r base.txt\n-r ../../up.txt\n-r missing.txt\npytest==7.0.0\n",
        );
        let mut seen: HashSet<String> = ["requirements/dev.txt".to_string()].into_iter().collect();
        let (files, got) = read_includes(&dir, &mut seen, parsed.includes, 1 << 20);
        let _ = std::fs::remove_dir_all(&dir);
        let mut files = files;
        files.sort();
        assert_eq!(
            files,
            vec!["requirements/base.txt", "requirements/common.txt"]
        );
        let mut pins: Vec<(&str, &str, Option<usize>)> = got
            .dependencies
            .iter()
            .map(|d| (d.name.as_str(), d.file.as_str(), d.line))
            .collect();
        pins.sort();
        assert_eq!(
            pins,
            vec![
                ("requests", "requirements/base.txt", Some(2)),
                ("six", "requirements/common.txt", Some(2)),
            ]
        );
        let w = got.warnings.join("\n");
        assert!(
            w.contains("requirements/dev.txt:2: `-r ../../up.txt` points outside the workspace"),
            "{w}"
        );
        assert!(
            w.contains(
                "requirements/dev.txt:3: `-r missing.txt`: cannot read requirements/missing.txt"
            ),
            "{w}"
        );
        assert_eq!(got.warnings.len(), 2, "{w}");
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
            p.warnings[0]
                == "web/package-lock.json:1: cannot read this lockfile: key must be a string",
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn lockfile_errors_name_the_file_and_line() {
        let toml_err = read(
            LockfileKind::Cargo,
            "Cargo.lock",
            "version = 3\n\n[[package]\nname = \"a\"\n",
        );
        match toml_err {
            Err(e) => {
                assert_eq!(e.line, Some(3), "{e}");
                assert!(
                    e.to_string()
                        .starts_with("Cargo.lock:3: cannot read this lockfile: "),
                    "{e}"
                );
            }
            Ok(_) => panic!("broken Cargo.lock parsed"),
        }
        let json_err = read(
            LockfileKind::Npm,
            "package-lock.json",
            "{\n  \"packages\": {\n    \"a\": 1,\n  }\n}",
        );
        assert_eq!(json_err.err().and_then(|e| e.line), Some(4));
    }
}

/// What the readers' tests compare: (name, version, line) of each pin.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::Parsed;

    /// The pins of `p`, in the order read.
    pub(crate) fn pins(p: &Parsed) -> Vec<(&str, &str, Option<usize>)> {
        p.dependencies
            .iter()
            .map(|d| (d.name.as_str(), d.version.as_str(), d.line))
            .collect()
    }
}
