//! `pnpm-lock.yaml` (YAML, parsed with `serde_yaml_ng`).
//!
//! The installed packages are the keys of `packages:` (and, from lockfile
//! version 9, of `snapshots:`), whose shape depends on the version:
//!
//! | lockfileVersion | key |
//! |---|---|
//! | 5.x | `/name/1.2.3`, `/@scope/name/1.2.3`, peers as `_react@18.2.0` |
//! | 6.x | `/name@1.2.3`, `/@scope/name@1.2.3`, peers as `(react@18.2.0)` |
//! | 9.x | `name@1.2.3`, `@scope/name@1.2.3(react@18.2.0)` |
//!
//! Peer suffixes are dropped (they select a copy, not a version) and the
//! same package from `packages:` and `snapshots:` is reported once, at its
//! `packages:` line. Keys that are not `name@version` with a numeric
//! version (git, tarball URLs, `file:` and `link:` entries) are not
//! registry packages and are skipped with a warning.

use std::collections::{HashMap, HashSet};

use serde_yaml_ng::Value;

use super::{Dependency, LockfileError, Parsed};
use crate::version::Ecosystem;

/// Reads a `pnpm-lock.yaml`.
pub fn parse(path: &str, text: &str) -> Result<Parsed, LockfileError> {
    let root: Value = serde_yaml_ng::from_str(text).map_err(|e| LockfileError::yaml(path, &e))?;
    let Some(version) = root.get("lockfileVersion") else {
        return Err(LockfileError::at(
            path,
            Some(1),
            "no `lockfileVersion`; not a pnpm lockfile",
        ));
    };
    let major = match version {
        Value::Number(n) => n.as_f64().map(|f| f as u64),
        Value::String(s) => s.split('.').next().and_then(|m| m.trim().parse().ok()),
        _ => None,
    };
    let Some(major) = major else {
        return Err(LockfileError::at(
            path,
            Some(1),
            "`lockfileVersion` is not a number",
        ));
    };
    let v5 = major < 6;
    let lines = section_key_lines(text);
    let mut parsed = Parsed::default();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for section in ["packages", "snapshots"] {
        let Some(entries) = root.get(section) else {
            continue;
        };
        let Some(entries) = entries.as_mapping() else {
            if entries.is_null() {
                continue;
            }
            return Err(LockfileError::at(
                path,
                lines.get(&(section, String::new())).copied(),
                format!("`{section}` is not a mapping"),
            ));
        };
        for key in entries.keys() {
            let Some(key) = key.as_str() else { continue };
            let line = lines.get(&(section, key.to_string())).copied();
            let Some((name, version)) = parse_key(key, v5) else {
                parsed.warnings.push(format!(
                    "{path}{}: `{key}` is not a registry package; not checked",
                    line.map(|l| format!(":{l}")).unwrap_or_default()
                ));
                continue;
            };
            if seen.insert((name.clone(), version.clone())) {
                parsed.dependencies.push(Dependency {
                    ecosystem: Ecosystem::Npm,
                    name,
                    version,
                    file: path.to_string(),
                    line,
                });
            }
        }
    }
    parsed
        .dependencies
        .sort_by_key(|d| d.line.unwrap_or(usize::MAX));
    Ok(parsed)
}

/// A `packages:` key → (name, version) without peer suffixes; `None` when
/// it does not name a registry version.
pub fn parse_key(key: &str, v5: bool) -> Option<(String, String)> {
    let (name, version) = if v5 {
        let k = key.strip_prefix('/')?;
        let mut parts = k.splitn(3, '/');
        let first = parts.next()?;
        let (name, rest) = if first.starts_with('@') {
            let second = parts.next()?;
            (format!("{first}/{second}"), parts.next()?)
        } else {
            let version = parts.next()?;
            // `/name/1.2.3/extra` is not a v5 registry key.
            if parts.next().is_some() {
                return None;
            }
            (first.to_string(), version)
        };
        let version = rest.split(['_', '(']).next().unwrap_or(rest);
        (name, version.to_string())
    } else {
        let k = key.strip_prefix('/').unwrap_or(key);
        let k = k.split('(').next().unwrap_or(k);
        let skip = usize::from(k.starts_with('@'));
        let at = k.get(skip..)?.find('@')? + skip;
        (k[..at].to_string(), k[at + 1..].to_string())
    };
    let numeric = version.bytes().next().is_some_and(|b| b.is_ascii_digit());
    if name.is_empty() || name == "@" || !numeric || version.contains(':') {
        return None;
    }
    Some((name, version))
}

/// Lines of the keys directly under the top-level `packages:` and
/// `snapshots:` sections (indented by two spaces, quoted or not); the
/// section's own line is stored under an empty key.
fn section_key_lines(text: &str) -> HashMap<(&'static str, String), usize> {
    let mut out = HashMap::new();
    let mut section: Option<&'static str> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if !line.starts_with(' ') && !line.is_empty() && !line.starts_with('#') {
            // `packages:` (or `packages: {}` / a malformed inline value).
            section = match line.split(':').next() {
                Some("packages") => Some("packages"),
                Some("snapshots") => Some("snapshots"),
                _ => None,
            };
            if let Some(s) = section {
                out.insert((s, String::new()), i + 1);
            }
            continue;
        }
        let Some(s) = section else { continue };
        let Some(key) = line.strip_prefix("  ") else {
            continue;
        };
        if key.starts_with(' ') {
            continue;
        }
        let Some(key) = key.strip_suffix(':') else {
            continue;
        };
        let key = key
            .strip_prefix('\'')
            .and_then(|k| k.strip_suffix('\''))
            .or_else(|| key.strip_prefix('"').and_then(|k| k.strip_suffix('"')))
            .unwrap_or(key);
        out.entry((s, key.to_string())).or_insert(i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::tests_support::pins;

    const V5: &str =
        include_str!("../../../../tests/fixtures/scan/lockfiles/workspace/pnpm-v5/pnpm-lock.yaml");
    const V6: &str =
        include_str!("../../../../tests/fixtures/scan/lockfiles/workspace/pnpm-v6/pnpm-lock.yaml");
    const V9: &str =
        include_str!("../../../../tests/fixtures/scan/lockfiles/workspace/pnpm-v9/pnpm-lock.yaml");

    #[test]
    fn keys_of_every_version() {
        let v = |k: &str, v5: bool| parse_key(k, v5);
        let p = |n: &str, ver: &str| Some((n.to_string(), ver.to_string()));
        assert_eq!(v("/lodash/4.17.20", true), p("lodash", "4.17.20"));
        assert_eq!(v("/@babel/core/7.0.0", true), p("@babel/core", "7.0.0"));
        assert_eq!(
            v("/styled-jsx/5.0.7_react@18.2.0", true),
            p("styled-jsx", "5.0.7")
        );
        assert_eq!(
            v("/@emotion/react/11.10.0_@types+react@18.0.0", true),
            p("@emotion/react", "11.10.0")
        );
        assert_eq!(v("/lodash@4.17.20", false), p("lodash", "4.17.20"));
        assert_eq!(
            v("/@tanstack/react-query@4.29.5(react@18.2.0)", false),
            p("@tanstack/react-query", "4.29.5")
        );
        assert_eq!(
            v(
                "next@13.4.1(react-dom@18.2.0(react@18.2.0))(react@18.2.0)",
                false
            ),
            p("next", "13.4.1")
        );
        assert_eq!(v("@types/node@20.1.0", false), p("@types/node", "20.1.0"));
        assert_eq!(v("github.com/user/repo/abc1234", false), None);
        assert_eq!(v("pkg@https://example.com/pkg.tgz", false), None);
        assert_eq!(v("local@file:packages/local", false), None);
        assert_eq!(v("github.com/user/repo/abc1234", true), None);
        assert_eq!(v("noversion", false), None);
        assert_eq!(v("@", false), None);
    }

    #[test]
    fn v5_real_file() {
        let p = parse("pnpm-lock.yaml", V5).unwrap_or_default();
        assert_eq!(
            pins(&p),
            vec![
                ("@babel/traverse", "7.22.5", Some(19)),
                ("react", "18.2.0", Some(29)),
                ("styled-jsx", "5.0.7", Some(35)),
            ]
        );
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    }

    #[test]
    fn v6_real_file() {
        let p = parse("pnpm-lock.yaml", V6).unwrap_or_default();
        assert_eq!(
            pins(&p),
            vec![
                ("js-tokens", "4.0.0", Some(20)),
                ("loose-envify", "1.4.0", Some(24)),
                ("postcss", "8.4.30", Some(31)),
                ("react", "18.2.0", Some(40)),
                ("use-sync-external-store", "1.2.0", Some(47)),
            ]
        );
    }

    #[test]
    fn v9_real_file() {
        let p = parse("pnpm-lock.yaml", V9).unwrap_or_default();
        assert_eq!(
            pins(&p),
            vec![
                ("@tanstack/query-core", "4.29.5", Some(20)),
                ("js-tokens", "4.0.0", Some(23)),
                ("react", "18.2.0", Some(26)),
                ("ws", "8.13.0", Some(30)),
            ]
        );
    }

    #[test]
    fn alias_bombs_are_refused_not_expanded() {
        // "Billion laughs": 9^8 nodes if expanded; serde_yaml_ng refuses.
        let mut text =
            String::from("lockfileVersion: '9.0'\na0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                [prev.as_str(); 9].join(", ")
            ));
        }
        text.push_str("packages:\n  /a@1.0.0: {}\n");
        let e = parse("pnpm-lock.yaml", &text).err();
        assert!(
            e.as_ref().is_some_and(|e| e.file == "pnpm-lock.yaml"),
            "{e:?}"
        );
    }

    #[test]
    fn malformed_files_name_the_line() {
        let text = "lockfileVersion: '9.0'\n\npackages:\n\n  react@18.2.0:\n    resolution: {integrity: sha512-x\n";
        let e = parse("pnpm-lock.yaml", text).err();
        assert!(
            e.as_ref()
                .is_some_and(|e| e.file == "pnpm-lock.yaml" && e.line.is_some()),
            "{e:?}"
        );
        let e = parse("pnpm-lock.yaml", "packages:\n  /a@1.0.0: {}\n").err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("pnpm-lock.yaml:1: cannot read this lockfile: no `lockfileVersion`; not a pnpm lockfile")
        );
        let e = parse("pnpm-lock.yaml", "lockfileVersion: 5.4\npackages: [1]\n").err();
        assert_eq!(e.and_then(|e| e.line), Some(2));
    }
}
