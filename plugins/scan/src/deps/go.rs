//! Go modules: `go.mod` and `go.sum`.
//!
//! **go.mod**: every `require` (single lines and `require ( … )` blocks;
//! `// indirect` is a comment) names a module version the build uses,
//! since Go 1.17 including the indirect ones. `replace` directives are
//! applied, as `go build` does: a module replaced by another module
//! version is checked as the replacement, one replaced by a local
//! directory (`=> ../fork`) is not from the module proxy and is skipped;
//! both are noted in a warning. `module`, `go`, `toolchain`, `exclude`,
//! `retract`, `godebug` and `tool` name no dependency.
//!
//! **go.sum**: lines `module version hash`, where `version/go.mod` hashes
//! only the module's go.mod. A module version is reported once whether it
//! has one or both lines, and for each module path only its highest
//! version: go.sum also keeps the go.mod hashes of older versions that
//! minimal version selection consulted, but a build uses one version per
//! module path (the highest required), so reporting the older ones would
//! flag code that is never built.

use std::collections::HashMap;

use super::{Dependency, LockfileError, Parsed};
use crate::version::{go as gover, Ecosystem};

/// Reads a `go.sum`.
pub fn parse_go_sum(path: &str, text: &str) -> Result<Parsed, LockfileError> {
    // module → (version, line of its first line), highest version kept.
    let mut best: HashMap<&str, (&str, usize)> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [module, version, hash] = fields[..] else {
            return Err(LockfileError::at(
                path,
                Some(i + 1),
                format!(
                    "expected `module version hash`, found {} fields",
                    fields.len()
                ),
            ));
        };
        if !hash.contains(':') {
            return Err(LockfileError::at(
                path,
                Some(i + 1),
                format!("`{hash}` is not a go.sum hash (`h1:…`)"),
            ));
        }
        let version = version.strip_suffix("/go.mod").unwrap_or(version);
        if !gover::is_module_version(version) {
            return Err(LockfileError::at(
                path,
                Some(i + 1),
                format!("`{version}` of {module} is not a module version (`v1.2.3`)"),
            ));
        }
        match best.get(module) {
            None => {
                order.push(module);
                best.insert(module, (version, i + 1));
            }
            Some((current, _)) => {
                if gover::parse(version) > gover::parse(current) {
                    best.insert(module, (version, i + 1));
                }
            }
        }
    }
    let mut parsed = Parsed::default();
    for module in order {
        if let Some((version, line)) = best.get(module) {
            parsed.dependencies.push(Dependency {
                ecosystem: Ecosystem::Go,
                name: module.to_string(),
                version: version.to_string(),
                file: path.to_string(),
                line: Some(*line),
            });
        }
    }
    Ok(parsed)
}

/// One `require` of a go.mod.
struct Require<'a> {
    module: &'a str,
    version: &'a str,
    line: usize,
}

/// One `replace` of a go.mod: `old [version] => new [version]`.
struct Replace<'a> {
    old: &'a str,
    old_version: Option<&'a str>,
    new: &'a str,
    new_version: Option<&'a str>,
}

/// Reads a `go.mod`.
pub fn parse_go_mod(path: &str, text: &str) -> Result<Parsed, LockfileError> {
    let mut requires: Vec<Require<'_>> = Vec::new();
    let mut replaces: Vec<Replace<'_>> = Vec::new();
    let mut block: Option<(&str, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.split("//").next().unwrap_or(raw).trim();
        if line.is_empty() {
            continue;
        }
        let (verb, args) = match block {
            Some(_) if line == ")" => {
                block = None;
                continue;
            }
            Some((verb, _)) => (verb, line),
            None => {
                let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                let rest = rest.trim();
                if rest == "(" {
                    block = Some((verb, line_no));
                    continue;
                }
                (verb, rest)
            }
        };
        match verb {
            "require" => {
                let fields: Vec<&str> = args.split_whitespace().collect();
                let [module, version] = fields[..] else {
                    return Err(LockfileError::at(
                        path,
                        Some(line_no),
                        "expected `require module version`",
                    ));
                };
                let version = unquote(version);
                if !gover::is_module_version(version) {
                    return Err(LockfileError::at(
                        path,
                        Some(line_no),
                        format!("`{version}` is not a module version (`v1.2.3`)"),
                    ));
                }
                requires.push(Require {
                    module: unquote(module),
                    version,
                    line: line_no,
                });
            }
            "replace" => {
                let Some((old, new)) = args.split_once("=>") else {
                    return Err(LockfileError::at(
                        path,
                        Some(line_no),
                        "expected `replace old [version] => new [version]`",
                    ));
                };
                let old: Vec<&str> = old.split_whitespace().map(unquote).collect();
                let new: Vec<&str> = new.split_whitespace().map(unquote).collect();
                let (Some(&old_module), Some(&new_module)) = (old.first(), new.first()) else {
                    return Err(LockfileError::at(
                        path,
                        Some(line_no),
                        "`replace` needs a module on both sides of `=>`",
                    ));
                };
                if old.len() > 2 || new.len() > 2 {
                    return Err(LockfileError::at(
                        path,
                        Some(line_no),
                        "too many fields in `replace`",
                    ));
                }
                replaces.push(Replace {
                    old: old_module,
                    old_version: old.get(1).copied(),
                    new: new_module,
                    new_version: new.get(1).copied(),
                });
            }
            "module" | "go" | "toolchain" | "exclude" | "retract" | "godebug" | "tool" => {}
            other => {
                return Err(LockfileError::at(
                    path,
                    Some(line_no),
                    format!("unknown go.mod directive `{other}`"),
                ));
            }
        }
    }
    if let Some((verb, at)) = block {
        return Err(LockfileError::at(
            path,
            Some(at),
            format!("`{verb} (` block is never closed"),
        ));
    }

    let mut parsed = Parsed::default();
    for r in requires {
        // A versioned replace wins over an unversioned one, as in `go`.
        let rep = replaces
            .iter()
            .find(|p| p.old == r.module && p.old_version == Some(r.version))
            .or_else(|| {
                replaces
                    .iter()
                    .find(|p| p.old == r.module && p.old_version.is_none())
            });
        let (module, version) = match rep {
            None => (r.module, r.version),
            Some(Replace {
                new,
                new_version: Some(v),
                ..
            }) => {
                parsed.warnings.push(format!(
                    "{path}:{}: {} {} is replaced by {new} {v}; checked as the replacement",
                    r.line, r.module, r.version
                ));
                (*new, *v)
            }
            Some(Replace { new, .. }) => {
                parsed.warnings.push(format!(
                    "{path}:{}: {} {} is replaced by the local directory {new}; not checked",
                    r.line, r.module, r.version
                ));
                continue;
            }
        };
        parsed.dependencies.push(Dependency {
            ecosystem: Ecosystem::Go,
            name: module.to_string(),
            version: version.to_string(),
            file: path.to_string(),
            line: Some(r.line),
        });
    }
    Ok(parsed)
}

/// go.mod allows module paths and versions in double quotes.
fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::tests_support::pins;

    const GO_MOD: &str =
        include_str!("../../../../tests/fixtures/scan/lockfiles/workspace/gosvc/go.mod");
    const GO_SUM: &str =
        include_str!("../../../../tests/fixtures/scan/lockfiles/workspace/gosvc/go.sum");

    #[test]
    fn go_mod_real_file() {
        let p = parse_go_mod("go.mod", GO_MOD).unwrap_or_default();
        assert_eq!(
            pins(&p),
            vec![
                ("github.com/gin-gonic/gin", "v1.7.0", Some(6)),
                ("github.com/google/uuid", "v1.3.0", Some(7)),
                (
                    "github.com/dgrijalva/jwt-go",
                    "v3.2.0+incompatible",
                    Some(11)
                ),
                (
                    "golang.org/x/crypto",
                    "v0.0.0-20210817164053-32db794688a5",
                    Some(12)
                ),
                ("golang.org/x/net", "v0.7.0", Some(13)),
                ("gopkg.in/yaml.v2", "v2.2.8", Some(14)),
            ]
        );
        let w = p.warnings.join("\n");
        assert!(
            w.contains("go.mod:13: golang.org/x/net v0.0.0-20210226172049-e18ecbb05110 is replaced by golang.org/x/net v0.7.0"),
            "{w}"
        );
        assert!(
            w.contains("go.mod:15: example.com/internal/auth v1.0.0 is replaced by the local directory ../auth; not checked"),
            "{w}"
        );
        assert_eq!(p.warnings.len(), 2, "{w}");
    }

    #[test]
    fn go_sum_real_file() {
        let p = parse_go_sum("go.sum", GO_SUM).unwrap_or_default();
        assert_eq!(
            pins(&p),
            vec![
                (
                    "github.com/dgrijalva/jwt-go",
                    "v3.2.0+incompatible",
                    Some(1)
                ),
                ("github.com/gin-gonic/gin", "v1.7.0", Some(4)),
                ("github.com/google/uuid", "v1.3.0", Some(6)),
                (
                    "golang.org/x/crypto",
                    "v0.0.0-20210817164053-32db794688a5",
                    Some(9)
                ),
                ("golang.org/x/net", "v0.7.0", Some(12)),
                ("gopkg.in/yaml.v2", "v2.2.8", Some(15)),
            ]
        );
    }

    #[test]
    fn malformed_go_files_name_the_line() {
        let e = parse_go_sum("go.sum", "a v1.0.0 h1:x=\nb v1.0.0\n").err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("go.sum:2: cannot read this lockfile: expected `module version hash`, found 2 fields")
        );
        let e = parse_go_sum("go.sum", "a 1.0.0 h1:x=\n").err();
        assert_eq!(e.and_then(|e| e.line), Some(1));
        let e = parse_go_mod("go.mod", "module x\n\nrequire (\n\tgithub.com/a/b v1.0.0\n").err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("go.mod:3: cannot read this lockfile: `require (` block is never closed")
        );
        let e = parse_go_mod("go.mod", "module x\nrequire github.com/a/b\n").err();
        assert_eq!(e.and_then(|e| e.line), Some(2));
        let e = parse_go_mod("go.mod", "module x\nrequire github.com/a/b latest\n").err();
        assert_eq!(e.and_then(|e| e.line), Some(2));
        let e = parse_go_mod("go.mod", "module x\nrequires github.com/a/b v1.0.0\n").err();
        assert_eq!(e.and_then(|e| e.line), Some(2));
    }

    #[test]
    fn versioned_replaces_apply_to_their_version_only() {
        let text = "module x\nrequire a.com/m v1.0.0\nrequire b.com/m v1.0.0\nreplace a.com/m v0.9.0 => c.com/m v2.0.0\nreplace \"b.com/m\" v1.0.0 => d.com/m v1.1.0\n";
        let p = parse_go_mod("go.mod", text).unwrap_or_default();
        assert_eq!(
            pins(&p),
            vec![
                ("a.com/m", "v1.0.0", Some(2)),
                ("d.com/m", "v1.1.0", Some(3))
            ]
        );
    }
}
