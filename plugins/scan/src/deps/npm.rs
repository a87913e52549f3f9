//! `package-lock.json` and `npm-shrinkwrap.json`.
//!
//! lockfileVersion 2 and 3 list every installed package in `packages`,
//! keyed by its path (`node_modules/a/node_modules/@scope/b`); the package
//! name is the part after the last `node_modules/` unless the entry names
//! itself (`name`, for aliases). The root (`""`), workspace folders (keys
//! outside `node_modules`) and symlinks (`link: true`) are not packages from
//! the registry and are skipped. lockfileVersion 1 files have only the
//! nested `dependencies` tree, which is read instead (an alias there has
//! the version `npm:real-name@1.2.3` and is read as `real-name`).

use std::collections::HashMap;

use serde_json::Value;

use super::{Dependency, Parsed};
use crate::version::Ecosystem;

/// Reads the installed packages of an npm lockfile.
pub fn parse(path: &str, text: &str) -> Result<Parsed, serde_json::Error> {
    let root: Value = serde_json::from_str(text)?;
    let lines = key_lines(text);
    let mut parsed = Parsed::default();
    if let Some(packages) = root.get("packages").and_then(Value::as_object) {
        for (key, entry) in packages {
            let Some(pos) = key.rfind("node_modules/") else {
                continue; // the root project or a workspace folder
            };
            if entry.get("link").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let name = entry
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(&key[pos + "node_modules/".len()..]);
            let Some(version) = entry.get("version").and_then(Value::as_str) else {
                continue;
            };
            parsed.dependencies.push(Dependency {
                ecosystem: Ecosystem::Npm,
                name: name.to_string(),
                version: version.to_string(),
                file: path.to_string(),
                line: lines.get(key.as_str()).copied(),
            });
        }
    } else if let Some(deps) = root.get("dependencies").and_then(Value::as_object) {
        walk_v1(path, deps, &lines, &mut parsed.dependencies);
    }
    // serde_json's map is sorted by key; report in file order instead.
    parsed
        .dependencies
        .sort_by_key(|d| d.line.unwrap_or(usize::MAX));
    Ok(parsed)
}

/// lockfileVersion 1: `dependencies: { name: { version, dependencies } }`.
fn walk_v1(
    path: &str,
    deps: &serde_json::Map<String, Value>,
    lines: &HashMap<&str, usize>,
    out: &mut Vec<Dependency>,
) {
    for (name, entry) in deps {
        if let Some(version) = entry.get("version").and_then(Value::as_str) {
            if let Some((real, version)) = v1_registry_version(name, version) {
                out.push(Dependency {
                    ecosystem: Ecosystem::Npm,
                    name: real.to_string(),
                    version: version.to_string(),
                    file: path.to_string(),
                    line: lines.get(name.as_str()).copied(),
                });
            }
        }
        if let Some(nested) = entry.get("dependencies").and_then(Value::as_object) {
            walk_v1(path, nested, lines, out);
        }
    }
}

/// The registry package and version of a version-1 entry `name`:
/// an alias (`"lp": { "version": "npm:left-pad@1.3.0" }`, which npm 6
/// writes for `npm:` dependencies) is the package it aliases; `file:`,
/// `git+…` and URL versions are not registry versions (`None`).
fn v1_registry_version<'a>(name: &'a str, version: &'a str) -> Option<(&'a str, &'a str)> {
    let Some(target) = version.strip_prefix("npm:") else {
        return (!version.contains(':')).then_some((name, version));
    };
    // `@scope/pkg@1.2.3`: the version follows the last `@` after the first character.
    let at = target.get(1..)?.rfind('@')? + 1;
    let (real, version) = (&target[..at], &target[at + 1..]);
    (!real.is_empty() && !version.is_empty() && !version.contains(':')).then_some((real, version))
}

/// Line of the first `"key": {` for every object key in the file. npm
/// writes one key per line, so this finds each package entry's line.
fn key_lines(text: &str) -> HashMap<&str, usize> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        let Some(rest) = t.strip_prefix('"') else {
            continue;
        };
        let Some(end) = rest.find('"') else { continue };
        if rest[end + 1..].trim_start().starts_with(": {") {
            out.entry(&rest[..end]).or_insert(i + 1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::tests_support::pins;

    const V3: &str = r#"{
  "name": "web",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {
      "name": "web",
      "version": "1.0.0",
      "dependencies": { "lodash": "^4.17.15" }
    },
    "node_modules/lodash": {
      "version": "4.17.15",
      "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.15.tgz"
    },
    "node_modules/@babel/core": {
      "version": "7.24.0",
      "dev": true
    },
    "node_modules/tool/node_modules/lodash": {
      "version": "4.17.21"
    },
    "node_modules/alias": {
      "name": "minimist",
      "version": "1.2.8"
    },
    "packages/shared": {
      "version": "0.0.1"
    },
    "node_modules/shared": {
      "resolved": "packages/shared",
      "link": true
    }
  }
}"#;

    #[test]
    fn reads_the_packages_map() {
        let p = parse("package-lock.json", V3).unwrap_or_default();
        let got = pins(&p);
        assert_eq!(
            got,
            vec![
                ("lodash", "4.17.15", Some(12)),
                ("@babel/core", "7.24.0", Some(16)),
                ("lodash", "4.17.21", Some(20)),
                ("minimist", "1.2.8", Some(23)),
            ]
        );
    }

    #[test]
    fn reads_version_1_trees() {
        let v1 = r#"{
  "lockfileVersion": 1,
  "dependencies": {
    "debug": {
      "version": "2.6.8",
      "dependencies": {
        "ms": { "version": "2.0.0" }
      }
    },
    "local": { "version": "file:../local" }
  }
}"#;
        let p = parse("package-lock.json", v1).unwrap_or_default();
        let got: Vec<(&str, &str)> = p
            .dependencies
            .iter()
            .map(|d| (d.name.as_str(), d.version.as_str()))
            .collect();
        assert_eq!(got, vec![("debug", "2.6.8"), ("ms", "2.0.0")]);
    }

    #[test]
    fn version_1_aliases_are_the_aliased_package() {
        // As npm 6 writes `"lp": "npm:left-pad@1.3.0"` dependencies.
        let v1 = r#"{
  "lockfileVersion": 1,
  "dependencies": {
    "lp": {
      "version": "npm:left-pad@1.3.0",
      "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz"
    },
    "types": { "version": "npm:@types/node@20.1.0" },
    "bad": { "version": "npm:@" },
    "noversion": { "version": "npm:left-pad@" },
    "gitalias": { "version": "npm:x@git+https://example.invalid/x.git" }
  }
}"#;
        let p = parse("package-lock.json", v1).unwrap_or_default();
        let got = pins(&p);
        assert_eq!(
            got,
            vec![
                ("left-pad", "1.3.0", Some(4)),
                ("@types/node", "20.1.0", Some(8)),
            ]
        );
    }

    #[test]
    fn invalid_json_is_an_error() {
        assert!(parse("package-lock.json", "{\"packages\": ").is_err());
    }
}
