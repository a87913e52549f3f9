//! Python: `requirements*.txt`, `poetry.lock`, `Pipfile.lock` and `uv.lock`.
//!
//! requirements files: each requirement is checked only when it pins one
//! exact version (`name==1.2.3` or `name===1.2.3`, extras and environment
//! markers allowed, `--hash` options ignored, `\` continuations joined).
//! Anything else (`>=`, `~=`, `==1.*`, no specifier, several clauses) is
//! reported as a warning: its installed version is unknown. `-r file` /
//! `--requirement file` lines are returned as [`Include`]s for the caller
//! to follow (inside the workspace only, see
//! [`read_includes`](super::read_includes)); other option lines (`-c`,
//! `--index-url`), editable installs (`-e`) and direct references
//! (`name @ https://…`, paths, VCS URLs) are skipped silently or with a
//! warning, since they name no PyPI version.
//!
//! `Pipfile.lock` (JSON): the `default` and `develop` sections, each entry
//! pinned as `"version": "==1.2.3"`; git, path and editable entries have
//! no version and are skipped with a warning. `uv.lock` (TOML): the
//! `[[package]]` entries whose `source` is a `registry`; `editable`,
//! `virtual`, `path`, `directory`, `git` and `url` sources are the
//! project itself or not on PyPI.

use serde::Deserialize;
use serde_json::Value;

use super::{toml_package_lines, Dependency, Include, LockfileError, Parsed};
use crate::version::Ecosystem;

/// Reads a requirements file. It cannot fail: lines it does not
/// understand become warnings.
pub fn parse_requirements(path: &str, text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    for (line_no, logical) in logical_lines(text) {
        let line = strip_comment(&logical);
        let line = line.trim();
        if let Some(target) = include_target(line) {
            parsed.includes.push(Include {
                from: path.to_string(),
                line: line_no,
                target: target.to_string(),
            });
            continue;
        }
        if line.is_empty() || line.starts_with('-') {
            continue;
        }
        // Options after the requirement (`--hash=…`) and markers (`; …`).
        let req = line.split(" --").next().unwrap_or(line);
        let req = req.split(';').next().unwrap_or(req).trim();
        let name_end = req
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(req.len());
        let name = &req[..name_end];
        let mut rest = req[name_end..].trim_start();
        if rest.starts_with('[') {
            rest = rest.find(']').map_or("", |i| rest[i + 1..].trim_start());
        }
        if !name.is_empty() && rest.starts_with('@') {
            parsed.warnings.push(format!(
                "{path}:{line_no}: `{name}` is a direct reference; not checked"
            ));
            continue;
        }
        if name.is_empty() || req.contains("://") || req.starts_with('.') || req.starts_with('/') {
            parsed.warnings.push(format!(
                "{path}:{line_no}: `{req}` is not a PyPI requirement; not checked"
            ));
            continue;
        }
        match pinned_version(rest) {
            Some(version) => parsed.dependencies.push(Dependency {
                ecosystem: Ecosystem::PyPi,
                name: name.to_string(),
                version: version.to_string(),
                file: path.to_string(),
                line: Some(line_no),
            }),
            None => parsed.warnings.push(format!(
                "{path}:{line_no}: `{req}` is not pinned with `==`; its installed version is unknown and was not checked"
            )),
        }
    }
    parsed
}

/// The file of a `-r file`, `-rfile`, `--requirement file` or
/// `--requirement=file` line.
fn include_target(line: &str) -> Option<&str> {
    let rest = if let Some(r) = line.strip_prefix("--requirement") {
        r.strip_prefix('=').unwrap_or(r)
    } else {
        line.strip_prefix("-r")?
    };
    // `-rfile` is valid, but `-rx` must not swallow another option.
    let target = rest.trim();
    (!target.is_empty()).then_some(target)
}

/// `==1.2.3` / `=== 1.2.3` → the version; `None` for anything looser.
fn pinned_version(spec: &str) -> Option<&str> {
    let s = spec.trim();
    let v = s
        .strip_prefix("===")
        .or_else(|| s.strip_prefix("=="))?
        .trim();
    if v.is_empty() || v.contains([',', '*', ' ', '<', '>', '=', '!', '~']) {
        return None;
    }
    Some(v)
}

/// Joins `\`-continued lines; yields (first line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (start, mut buf) = current.take().unwrap_or((i + 1, String::new()));
        match raw.strip_suffix('\\') {
            Some(head) => {
                buf.push_str(head);
                buf.push(' ');
                current = Some((start, buf));
            }
            None => {
                buf.push_str(raw);
                out.push((start, buf));
            }
        }
    }
    if let Some(last) = current {
        out.push(last);
    }
    out
}

/// Drops a `#` comment (at line start or after whitespace, as pip does).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

#[derive(Deserialize)]
struct PoetryLock {
    #[serde(default)]
    package: Vec<PoetryPackage>,
}

#[derive(Deserialize)]
struct PoetryPackage {
    name: String,
    version: String,
    #[serde(default)]
    source: Option<PoetrySource>,
}

#[derive(Deserialize)]
struct PoetrySource {
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

/// Reads a `poetry.lock`. Packages from git, a local directory or file, or
/// a URL are skipped; `legacy` (private index) sources are kept, since they
/// serve PyPI names.
pub fn parse_poetry(path: &str, text: &str) -> Result<Parsed, toml::de::Error> {
    let lock: PoetryLock = toml::from_str(text)?;
    let lines = toml_package_lines(text);
    let dependencies = lock
        .package
        .into_iter()
        .filter(|p| {
            !p.source
                .as_ref()
                .and_then(|s| s.kind.as_deref())
                .is_some_and(|k| matches!(k, "git" | "directory" | "file" | "url"))
        })
        .map(|p| {
            let line = lines.get(&(p.name.clone(), p.version.clone())).copied();
            Dependency {
                ecosystem: Ecosystem::PyPi,
                name: p.name,
                version: p.version,
                file: path.to_string(),
                line,
            }
        })
        .collect();
    Ok(Parsed {
        dependencies,
        ..Parsed::default()
    })
}

/// Reads a `Pipfile.lock`: `default` then `develop` packages.
pub fn parse_pipfile(path: &str, text: &str) -> Result<Parsed, LockfileError> {
    let root: Value = serde_json::from_str(text).map_err(|e| LockfileError::json(path, &e))?;
    let Some(obj) = root.as_object() else {
        return Err(LockfileError::at(path, Some(1), "expected a JSON object"));
    };
    if !obj.contains_key("default") && !obj.contains_key("develop") {
        return Err(LockfileError::at(
            path,
            Some(1),
            "no `default` or `develop` section; not a Pipfile.lock",
        ));
    }
    let lines = section_key_lines(text);
    let mut parsed = Parsed::default();
    for section in ["default", "develop"] {
        let Some(packages) = obj.get(section).and_then(Value::as_object) else {
            continue;
        };
        for (name, entry) in packages {
            let line = lines.get(&(section, name.as_str())).copied();
            let version = entry.get("version").and_then(Value::as_str);
            match version.and_then(|v| v.trim().strip_prefix("==")) {
                Some(v) if !v.trim().is_empty() => parsed.dependencies.push(Dependency {
                    ecosystem: Ecosystem::PyPi,
                    name: name.clone(),
                    version: v.trim().to_string(),
                    file: path.to_string(),
                    line,
                }),
                _ => parsed.warnings.push(format!(
                    "{path}{}: `{name}` ({section}) has no `==` version (git, path or editable); not checked",
                    line.map(|l| format!(":{l}")).unwrap_or_default()
                )),
            }
        }
    }
    parsed
        .dependencies
        .sort_by_key(|d| d.line.unwrap_or(usize::MAX));
    Ok(parsed)
}

/// Lines of `"name": {` keys one level inside the `default` and `develop`
/// objects of a Pipfile.lock (pipenv writes one key per line, indented by
/// 4 spaces under 0-indented sections at 4 spaces' depth).
fn section_key_lines(text: &str) -> std::collections::HashMap<(&'static str, &str), usize> {
    let mut out = std::collections::HashMap::new();
    let mut section: Option<&'static str> = None;
    let mut section_indent = 0;
    for (i, raw) in text.lines().enumerate() {
        let indent = raw.len() - raw.trim_start().len();
        let t = raw.trim_start();
        let Some(rest) = t.strip_prefix('"') else {
            continue;
        };
        let Some(end) = rest.find('"') else { continue };
        let key = &rest[..end];
        if !rest[end + 1..].trim_start().starts_with(':') {
            continue;
        }
        match key {
            "default" | "develop" | "_meta" => {
                section = match key {
                    "default" => Some("default"),
                    "develop" => Some("develop"),
                    _ => None,
                };
                section_indent = indent;
            }
            _ => {
                if let Some(s) = section {
                    if indent > section_indent && indent <= section_indent + 4 {
                        out.entry((s, key)).or_insert(i + 1);
                    }
                }
            }
        }
    }
    out
}

#[derive(Deserialize)]
struct UvLock {
    #[serde(default)]
    package: Vec<UvPackage>,
}

#[derive(Deserialize)]
struct UvPackage {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    source: Option<toml::Table>,
}

/// Reads a `uv.lock`: `[[package]]` entries from a registry.
pub fn parse_uv(path: &str, text: &str) -> Result<Parsed, LockfileError> {
    let lock: UvLock = toml::from_str(text).map_err(|e| LockfileError::toml(path, text, &e))?;
    let lines = toml_package_lines(text);
    let mut parsed = Parsed::default();
    for p in lock.package {
        let from_registry = p
            .source
            .as_ref()
            .is_some_and(|s| s.contains_key("registry"));
        // The project itself (`editable`/`virtual`) is not a PyPI package
        // and carries no finding; git/path/url sources are worth a note.
        let Some(version) = p.version.filter(|_| from_registry) else {
            let kind = p
                .source
                .as_ref()
                .and_then(|s| s.keys().next().cloned())
                .unwrap_or_else(|| "no".to_string());
            if !matches!(kind.as_str(), "editable" | "virtual") {
                parsed.warnings.push(format!(
                    "{path}: `{}` comes from a {kind} source, not a registry; not checked",
                    p.name
                ));
            }
            continue;
        };
        let line = lines.get(&(p.name.clone(), version.clone())).copied();
        parsed.dependencies.push(Dependency {
            ecosystem: Ecosystem::PyPi,
            name: p.name,
            version,
            file: path.to_string(),
            line,
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::tests_support::pins;

    #[test]
    fn requirements_pins_and_warnings() {
        let text = "\
# web app
requests==2.19.1
Flask>=1.0
urllib3 == 1.24.1  # pinned for py2
pyjwt[crypto]==2.8.0 ; python_version >= \"3.8\"
-r base.txt
--index-url https://pypi.example/simple
-e ./libs/core
gunicorn
django==4.2.*
numpy===1.26.4
cryptography==42.0.5 \\
    --hash=sha256:0123456789abcdef
git+https://github.com/org/pkg.git#egg=pkg
mypkg @ https://files.example/mypkg-1.0.tar.gz
six>=1.0,<2
";
        let p = parse_requirements("requirements.txt", text);
        assert_eq!(
            pins(&p),
            vec![
                ("requests", "2.19.1", Some(2)),
                ("urllib3", "1.24.1", Some(4)),
                ("pyjwt", "2.8.0", Some(5)),
                ("numpy", "1.26.4", Some(11)),
                ("cryptography", "42.0.5", Some(12)),
            ]
        );
        let w = p.warnings.join("\n");
        for expected in [
            "requirements.txt:3: `Flask>=1.0` is not pinned",
            "requirements.txt:9: `gunicorn` is not pinned",
            "requirements.txt:10: `django==4.2.*` is not pinned",
            "requirements.txt:14: `git+https://github.com/org/pkg.git#egg=pkg` is not a PyPI requirement",
            "requirements.txt:15: `mypkg` is a direct reference",
            "requirements.txt:16: `six>=1.0,<2` is not pinned",
        ] {
            assert!(w.contains(expected), "missing {expected:?} in\n{w}");
        }
        assert_eq!(p.warnings.len(), 6, "{w}");
    }

    #[test]
    fn comments_need_whitespace_before_the_hash() {
        assert_eq!(strip_comment("a==1 # c"), "a==1 ");
        assert_eq!(strip_comment("#all"), "");
        assert_eq!(
            strip_comment("pkg@https://x/y#egg=pkg"),
            "pkg@https://x/y#egg=pkg"
        );
    }

    #[test]
    fn poetry_lock_packages() {
        let text = r#"# This file is automatically @generated by Poetry 1.8.2
[[package]]
name = "pyyaml"
version = "5.3.1"
description = "YAML parser and emitter for Python"
optional = false
python-versions = ">=2.7"

[[package]]
name = "jinja2"
version = "3.1.4"
description = "A very fast and expressive template engine."

[package.dependencies]
MarkupSafe = ">=2.0"

[[package]]
name = "internal-lib"
version = "0.1.0"

[package.source]
type = "git"
url = "https://github.com/org/internal-lib.git"
reference = "main"

[metadata]
lock-version = "2.0"
python-versions = "^3.10"
"#;
        let p = parse_poetry("poetry.lock", text).unwrap_or_default();
        assert_eq!(
            pins(&p),
            vec![("pyyaml", "5.3.1", Some(3)), ("jinja2", "3.1.4", Some(10))]
        );
    }

    const PIPFILE: &str =
        include_str!("../../../../tests/fixtures/scan/lockfiles/workspace/pipenv/Pipfile.lock");
    const UV: &str =
        include_str!("../../../../tests/fixtures/scan/lockfiles/workspace/uvproj/uv.lock");

    #[test]
    fn include_lines_are_collected() {
        let text = "-r base.txt\n-rcommon.txt\n--requirement=req/a.txt\n--requirement b.txt\n-c constraints.txt\nsix==1.16.0\n";
        let p = parse_requirements("requirements/dev.txt", text);
        let got: Vec<(&str, usize, &str)> = p
            .includes
            .iter()
            .map(|i| (i.from.as_str(), i.line, i.target.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("requirements/dev.txt", 1, "base.txt"),
                ("requirements/dev.txt", 2, "common.txt"),
                ("requirements/dev.txt", 3, "req/a.txt"),
                ("requirements/dev.txt", 4, "b.txt"),
            ]
        );
        assert_eq!(pins(&p), vec![("six", "1.16.0", Some(6))]);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn pipfile_lock_default_and_develop() {
        let p = parse_pipfile("Pipfile.lock", PIPFILE).unwrap_or_default();
        assert_eq!(
            pins(&p),
            vec![
                ("certifi", "2024.2.2", Some(19)),
                ("requests", "2.25.0", Some(27)),
                ("pytest", "7.4.4", Some(41)),
            ]
        );
        assert_eq!(
            p.warnings,
            vec!["Pipfile.lock:34: `internal-sdk` (default) has no `==` version (git, path or editable); not checked"]
        );
    }

    #[test]
    fn pipfile_lock_errors_name_the_line() {
        let e = parse_pipfile(
            "Pipfile.lock",
            "{\n  \"default\": {\n    \"a\": {\"version\": \"==1\"},\n  ]\n}",
        )
        .err();
        assert_eq!(e.as_ref().and_then(|e| e.line), Some(4), "{e:?}");
        assert!(e.is_some_and(|e| e
            .to_string()
            .starts_with("Pipfile.lock:4: cannot read this lockfile: ")));
        let e = parse_pipfile("Pipfile.lock", "{\"packages\": {}}").err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("Pipfile.lock:1: cannot read this lockfile: no `default` or `develop` section; not a Pipfile.lock")
        );
    }

    #[test]
    fn uv_lock_registry_packages() {
        let p = parse_uv("uv.lock", UV).unwrap_or_default();
        assert_eq!(
            pins(&p),
            vec![
                ("aiohttp", "3.8.4", Some(5)),
                ("multidict", "6.0.5", Some(14))
            ]
        );
        assert_eq!(
            p.warnings,
            vec!["uv.lock: `vendored-tool` comes from a git source, not a registry; not checked"]
        );
    }

    #[test]
    fn uv_lock_errors_name_the_line() {
        let e = parse_uv(
            "uv.lock",
            "version = 1\n\n[[package]]\nname = \"a\"\nversion = 1.0.0\n",
        )
        .err();
        assert_eq!(e.as_ref().and_then(|e| e.line), Some(5), "{e:?}");
        let e = parse_uv("uv.lock", "[[package]]\nversion = \"1.0\"\n").err();
        assert!(e.is_some_and(|e| e.message.contains("name")));
    }

    #[test]
    fn poetry_lock_must_be_toml() {
        assert!(parse_poetry("poetry.lock", "[[package]\n").is_err());
    }
}
