//! `yarn.lock`, both formats.
//!
//! **yarn 1** writes its own line format (not YAML: `version "1.2.3"` has
//! no colon), so it is read line by line: an unindented header lists the
//! specs that resolved to one entry (`"a@^1", a@~1.2:`), and its indented
//! `version "…"` line gives the installed version. The package name is
//! the spec up to its last `@` (a scope's leading `@` is part of the
//! name); an alias spec `alias@npm:real@^1` names the real package.
//! Entries resolved from git, a tarball URL, a file or a link are not
//! registry packages and are skipped.
//!
//! **yarn 2+ ("berry")** starts with a `__metadata:` entry and is YAML, so
//! it is parsed with `serde_yaml_ng`. The version is taken from each
//! entry's `resolution` (`"name@npm:1.2.3"`), which berry always quotes,
//! rather than from `version:`, which it writes unquoted (a YAML parser
//! could read `1.10` as a number). `workspace:`, `link:`, `portal:`,
//! `file:` and git resolutions are skipped; `patch:` resolutions of an npm
//! package (`resolve@patch:resolve@npm%3A1.22.1#…`) keep the underlying
//! npm version, since the patch does not change which advisories apply.

use std::collections::HashMap;

use serde_yaml_ng::Value;

use super::{Dependency, LockfileError, Parsed};
use crate::version::Ecosystem;

/// Reads a `yarn.lock` of either format.
pub fn parse(path: &str, text: &str) -> Result<Parsed, LockfileError> {
    if is_berry(text) {
        parse_berry(path, text)
    } else {
        parse_v1(path, text)
    }
}

/// Whether the file is a berry lockfile: an unindented `__metadata:` key.
fn is_berry(text: &str) -> bool {
    text.lines().any(|l| l.trim_end() == "__metadata:")
}

/// The yarn 1 entry being read.
struct Entry {
    name: String,
    line: usize,
    /// The spec's range is a registry one.
    registry: bool,
    version: Option<String>,
    /// `resolved` points at git, a file or a non-registry URL.
    resolved_elsewhere: bool,
}

impl Entry {
    /// Ends the entry: its dependency, or an error when it had no version.
    fn finish(self, path: &str, out: &mut Parsed) -> Result<(), LockfileError> {
        let Some(version) = self.version else {
            return Err(LockfileError::at(
                path,
                Some(self.line),
                format!("entry `{}` has no `version` line", self.name),
            ));
        };
        if self.registry && !self.resolved_elsewhere {
            out.dependencies.push(Dependency {
                ecosystem: Ecosystem::Npm,
                name: self.name,
                version,
                file: path.to_string(),
                line: Some(self.line),
            });
        }
        Ok(())
    }
}

/// Reads a yarn 1 lockfile.
pub fn parse_v1(path: &str, text: &str) -> Result<Parsed, LockfileError> {
    let mut parsed = Parsed::default();
    let mut current: Option<Entry> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end();
        if line.trim_start().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            if let Some(done) = current.take() {
                done.finish(path, &mut parsed)?;
            }
            let Some(header) = line.strip_suffix(':') else {
                return Err(LockfileError::at(
                    path,
                    Some(line_no),
                    "expected an entry header ending in `:` (`name@range:`)",
                ));
            };
            let first = split_specs(header).into_iter().next().unwrap_or_default();
            let Some((name, range)) = split_spec(&first) else {
                return Err(LockfileError::at(
                    path,
                    Some(line_no),
                    format!("`{first}` is not a `name@range` spec"),
                ));
            };
            // `alias@npm:real@^1` installs `real`.
            let (name, range) = match range.strip_prefix("npm:").and_then(split_spec) {
                Some(real) => real,
                None => (name, range),
            };
            current = Some(Entry {
                name,
                line: line_no,
                registry: is_registry_range(&range),
                version: None,
                resolved_elsewhere: false,
            });
            continue;
        }
        let Some(entry) = current.as_mut() else {
            return Err(LockfileError::at(
                path,
                Some(line_no),
                "indented line before any entry header",
            ));
        };
        // The entry's own fields are indented by exactly two spaces.
        if line.len() - line.trim_start().len() != 2 {
            continue;
        }
        let field = line.trim_start();
        if let Some(v) = field.strip_prefix("version ") {
            entry.version = Some(unquote(v.trim()).to_string());
        } else if let Some(r) = field.strip_prefix("resolved ") {
            // A registry range can still resolve elsewhere (`resolutions`);
            // only tarballs served over HTTP(S) by a registry count.
            let url = unquote(r.trim());
            entry.resolved_elsewhere = !(url.starts_with("https://") || url.starts_with("http://"))
                || url.contains("codeload.github.com");
        }
    }
    if let Some(done) = current.take() {
        done.finish(path, &mut parsed)?;
    }
    Ok(parsed)
}

/// Splits a yarn 1 header into its specs: `"a@^1", a@~1.2` → `a@^1`, `a@~1.2`.
fn split_specs(header: &str) -> Vec<String> {
    header
        .split(", ")
        .map(|s| unquote(s.trim()).to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `@scope/name@^1.0` → (`@scope/name`, `^1.0`): the name ends at the
/// first `@` after its first character (a scope's leading `@` belongs to
/// the name; npm names hold no other `@`, while a range may:
/// `npm:real@^1`).
fn split_spec(spec: &str) -> Option<(String, String)> {
    let skip = usize::from(spec.starts_with('@'));
    let at = spec[skip..].find('@')? + skip;
    let (name, range) = (&spec[..at], &spec[at + 1..]);
    if name.is_empty() || name == "@" {
        return None;
    }
    Some((name.to_string(), range.to_string()))
}

/// Whether a yarn 1 range is served by the registry (not git, a URL, a
/// file or a link).
fn is_registry_range(range: &str) -> bool {
    !(range.contains("://")
        || range.starts_with("git")
        || range.starts_with("github:")
        || range.starts_with("file:")
        || range.starts_with("link:")
        || range.starts_with("portal:")
        || range.contains(".git#")
        || (range.contains('/') && !range.starts_with("npm:")))
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s)
}

/// Reads a yarn berry lockfile.
pub fn parse_berry(path: &str, text: &str) -> Result<Parsed, LockfileError> {
    let root: Value = serde_yaml_ng::from_str(text).map_err(|e| LockfileError::yaml(path, &e))?;
    let Some(map) = root.as_mapping() else {
        return Err(LockfileError::at(path, Some(1), "expected a YAML mapping"));
    };
    let lines = top_level_key_lines(text);
    let mut parsed = Parsed::default();
    for (key, entry) in map {
        let Some(key) = key.as_str() else { continue };
        if key == "__metadata" {
            continue;
        }
        let line = lines.get(key).copied();
        let Some(resolution) = entry.get("resolution").and_then(Value::as_str) else {
            return Err(LockfileError::at(
                path,
                line,
                format!("entry `{key}` has no `resolution`"),
            ));
        };
        if let Some((name, version)) = berry_npm_resolution(resolution) {
            parsed.dependencies.push(Dependency {
                ecosystem: Ecosystem::Npm,
                name,
                version,
                file: path.to_string(),
                line,
            });
        }
    }
    parsed
        .dependencies
        .sort_by_key(|d| d.line.unwrap_or(usize::MAX));
    Ok(parsed)
}

/// `name@npm:1.2.3` → (name, 1.2.3); a `patch:` of an npm package →
/// the patched package; anything else (workspace, link, git…) → `None`.
fn berry_npm_resolution(resolution: &str) -> Option<(String, String)> {
    let (name, reference) = split_spec(resolution)?;
    if let Some(version) = reference.strip_prefix("npm:") {
        // `npm:` of an alias names the real package: `real@npm:1.0.0`
        // is written as the resolution's own name, so only a bare version
        // is expected here.
        return Some((name, version.to_string()));
    }
    let inner = reference.strip_prefix("patch:")?;
    let inner = inner.split('#').next().unwrap_or(inner);
    berry_npm_resolution(&percent_decode(inner))
}

/// Decodes `%XX` escapes (berry encodes `:` as `%3A` inside `patch:`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Line of every unindented `key:` (quoted or not) of a YAML file.
pub(crate) fn top_level_key_lines(text: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.starts_with([' ', '#', '\t']) {
            continue;
        }
        let Some(key) = raw.trim_end().strip_suffix(':') else {
            continue;
        };
        out.entry(unquote(key).to_string()).or_insert(i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::tests_support::pins;

    const V1: &str =
        include_str!("../../../../tests/fixtures/scan/lockfiles/workspace/web-yarn1/yarn.lock");
    const BERRY: &str =
        include_str!("../../../../tests/fixtures/scan/lockfiles/workspace/web-berry/yarn.lock");

    #[test]
    fn yarn1_real_file() {
        let p = parse("yarn.lock", V1).unwrap_or_default();
        assert_eq!(
            pins(&p),
            vec![
                ("@babel/code-frame", "7.12.13", Some(5)),
                ("ansi-regex", "5.0.0", Some(12)),
                ("minimist", "1.2.5", Some(17)),
                ("node-fetch", "2.6.0", Some(22)),
                ("string-width", "4.2.3", Some(27)),
            ]
        );
    }

    #[test]
    fn yarn1_headers_and_specs() {
        assert_eq!(
            split_specs("\"a@^1\", a@~1.2"),
            vec!["a@^1".to_string(), "a@~1.2".to_string()]
        );
        assert_eq!(
            split_spec("@babel/core@^7.0.0"),
            Some(("@babel/core".into(), "^7.0.0".into()))
        );
        assert_eq!(
            split_spec("alias@npm:real@^1"),
            Some(("alias".into(), "npm:real@^1".into()))
        );
        assert_eq!(split_spec("noversion"), None);
        assert!(!is_registry_range("https://github.com/a/b.git#abc"));
        assert!(!is_registry_range("user/repo#main"));
        assert!(!is_registry_range("file:../local"));
        assert!(is_registry_range("^1.2.3"));
    }

    #[test]
    fn yarn1_errors_name_the_line() {
        let text = "# yarn lockfile v1\n\n\nlodash@^4.17.0:\n  version \"4.17.15\"\nthis is not a header\n";
        let e = parse("yarn.lock", text).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("yarn.lock:6: cannot read this lockfile: expected an entry header ending in `:` (`name@range:`)")
        );
        let text = "lodash@^4.17.0:\n  resolved \"https://registry.yarnpkg.com/lodash/-/lodash-4.17.15.tgz\"\n\nms@2.0.0:\n  version \"2.0.0\"\n";
        let e = parse("yarn.lock", text).err();
        assert_eq!(e.and_then(|e| e.line), Some(1));
        let e = parse("yarn.lock", "  version \"1.0.0\"\n").err();
        assert_eq!(e.and_then(|e| e.line), Some(1));
    }

    #[test]
    fn berry_real_file() {
        let p = parse("yarn.lock", BERRY).unwrap_or_default();
        assert_eq!(
            pins(&p),
            vec![
                ("@babel/helper-validator-identifier", "7.22.20", Some(8)),
                ("lodash", "4.17.20", Some(15)),
                ("resolve", "1.22.1", Some(31)),
                ("semver", "7.5.1", Some(42)),
            ]
        );
    }

    #[test]
    fn berry_resolutions() {
        assert_eq!(
            berry_npm_resolution("lodash@npm:4.17.20"),
            Some(("lodash".into(), "4.17.20".into()))
        );
        assert_eq!(
            berry_npm_resolution(
                "resolve@patch:resolve@npm%3A1.22.1#~builtin<compat/resolve>::version=1.22.1&hash=c3c19d"
            ),
            Some(("resolve".into(), "1.22.1".into()))
        );
        assert_eq!(berry_npm_resolution("app@workspace:."), None);
        assert_eq!(
            berry_npm_resolution("pkg@https://github.com/a/b.git#commit=abc"),
            None
        );
        assert_eq!(percent_decode("a%3Ab%"), "a:b%");
        assert_eq!(percent_decode("%é%zz"), "%é%zz");
    }

    #[test]
    fn berry_errors_name_the_line() {
        let text = "__metadata:\n  version: 6\n\n\"a@npm:^1\":\n  version: 1.0.0\n  resolution: [unclosed\n";
        let e = parse("yarn.lock", text).err();
        assert!(
            e.as_ref()
                .is_some_and(|e| e.file == "yarn.lock" && e.line.is_some_and(|l| l >= 6)),
            "{e:?}"
        );
        let text = "__metadata:\n  version: 6\n\n\"a@npm:^1\":\n  version: 1.0.0\n";
        let e = parse("yarn.lock", text).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("yarn.lock:4: cannot read this lockfile: entry `a@npm:^1` has no `resolution`")
        );
    }
}
