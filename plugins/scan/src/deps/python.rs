//! Python: `requirements*.txt` and `poetry.lock`.
//!
//! requirements files: each requirement is checked only when it pins one
//! exact version (`name==1.2.3` or `name===1.2.3`, extras and environment
//! markers allowed, `--hash` options ignored, `\` continuations joined).
//! Anything else (`>=`, `~=`, `==1.*`, no specifier, several clauses) is
//! reported as a warning: its installed version is unknown. Option lines
//! (`-r`, `-c`, `--index-url`), editable installs (`-e`) and direct
//! references (`name @ https://…`, paths, VCS URLs) are skipped silently
//! or with a warning, since they name no PyPI version.

use serde::Deserialize;

use super::{toml_package_lines, Dependency, Parsed};
use crate::version::Ecosystem;

/// Reads a requirements file. It cannot fail: lines it does not
/// understand become warnings.
pub fn parse_requirements(path: &str, text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    for (line_no, logical) in logical_lines(text) {
        let line = strip_comment(&logical);
        let line = line.trim();
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
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins(p: &Parsed) -> Vec<(&str, &str, Option<usize>)> {
        p.dependencies
            .iter()
            .map(|d| (d.name.as_str(), d.version.as_str(), d.line))
            .collect()
    }

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

    #[test]
    fn poetry_lock_must_be_toml() {
        assert!(parse_poetry("poetry.lock", "[[package]\n").is_err());
    }
}
