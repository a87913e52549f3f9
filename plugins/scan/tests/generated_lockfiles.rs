//! The lockfile readers on files written by the real tools
//! (`tests/fixtures/scan/lockfiles-generated/`, see its README for the
//! tool versions and the manifests): each file must read without a
//! warning and give exactly the packages the tool itself listed when it
//! resolved them (`expected.txt` beside the lockfile, `name version` a
//! line, taken from `uv export`, `pipenv requirements`, `poetry show`,
//! `yarn list`/`yarn info`, `pnpm list`, `npm ls` and `cargo metadata`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use sluice_plugin_scan::deps::{self, LockfileKind};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/scan/lockfiles-generated")
}

fn read_text(rel: &str) -> String {
    let path = dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `name version` lines of `<tool>/expected.txt`.
fn expected(tool: &str) -> BTreeSet<(String, String)> {
    read_text(&format!("{tool}/expected.txt"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, version) = l
                .trim()
                .split_once(' ')
                .unwrap_or_else(|| panic!("{tool}/expected.txt: bad line {l:?}"));
            (name.to_string(), version.to_string())
        })
        .collect()
}

/// Reads `<tool>/<file>` with the reader its name selects and checks it
/// against `<tool>/expected.txt`.
fn check(tool: &str, file: &str) {
    let rel = format!("{tool}/{file}");
    let kind = LockfileKind::detect(file).unwrap_or_else(|| panic!("{file} is not a lockfile"));
    let parsed = deps::read(kind, &rel, &read_text(&rel)).unwrap_or_else(|e| panic!("{e}"));
    assert!(parsed.warnings.is_empty(), "{rel}: {:?}", parsed.warnings);
    assert!(parsed.includes.is_empty(), "{rel}: {:?}", parsed.includes);
    let mut got = BTreeSet::new();
    for d in &parsed.dependencies {
        assert_eq!(d.ecosystem, kind.ecosystem(), "{rel}: {d:?}");
        assert_eq!(d.file, rel, "{d:?}");
        // Every entry of a generated lockfile is found again in the text.
        assert!(d.line.is_some(), "{rel}: no line for {d:?}");
        got.insert((d.name.clone(), d.version.clone()));
    }
    assert_eq!(got, expected(tool), "{rel}");
}

#[test]
fn uv_lock_from_uv() {
    check("uv", "uv.lock");
}

/// Extras (`requests[socks]` → pysocks), a dependency group and a forked
/// resolution: markupsafe 2.1.5 below Python 3.10 and 3.0.2 from it, two
/// `[[package]]` entries of one name.
#[test]
fn uv_lock_with_a_fork_from_uv() {
    check("uv-edge", "uv.lock");
}

#[test]
fn pipfile_lock_from_pipenv() {
    check("pipenv", "Pipfile.lock");
}

#[test]
fn poetry_lock_from_poetry() {
    check("poetry", "poetry.lock");
}

#[test]
fn yarn_lock_from_yarn_1() {
    check("yarn-v1", "yarn.lock");
}

#[test]
fn yarn_lock_from_yarn_berry() {
    check("yarn-berry", "yarn.lock");
}

#[test]
fn pnpm_lock_v9_from_pnpm_9() {
    check("pnpm-v9", "pnpm-lock.yaml");
}

#[test]
fn pnpm_lock_v6_from_pnpm_8() {
    check("pnpm-v8", "pnpm-lock.yaml");
}

#[test]
fn pnpm_lock_v5_from_pnpm_7() {
    check("pnpm-v7", "pnpm-lock.yaml");
}

#[test]
fn package_lock_v3_from_npm_11() {
    check("npm-v11", "package-lock.json");
}

#[test]
fn package_lock_v1_from_npm_6() {
    check("npm-v6", "package-lock.json");
}

#[test]
fn cargo_lock_from_cargo() {
    check("cargo", "Cargo.lock");
}

// The "edge" manifest: an `npm:` alias (`lp` → left-pad, reported under
// the registry name), a peer dependency (pnpm's `(react@18.2.0)` and
// `_react@18.2.0` suffixes) and `resolve`, which yarn berry patches with
// its built-in compat patch (a `patch:` entry beside the `npm:` one).

#[test]
fn edge_yarn_lock_from_yarn_1() {
    check("yarn-v1-edge", "yarn.lock");
}

#[test]
fn edge_yarn_lock_from_yarn_berry() {
    check("yarn-berry-edge", "yarn.lock");
}

#[test]
fn edge_pnpm_lock_v9_from_pnpm_9() {
    check("pnpm-v9-edge", "pnpm-lock.yaml");
}

#[test]
fn edge_pnpm_lock_v6_from_pnpm_8() {
    check("pnpm-v8-edge", "pnpm-lock.yaml");
}

#[test]
fn edge_pnpm_lock_v5_from_pnpm_7() {
    check("pnpm-v7-edge", "pnpm-lock.yaml");
}

#[test]
fn edge_package_lock_v3_from_npm_11() {
    check("npm-v11-edge", "package-lock.json");
}

#[test]
fn edge_package_lock_v1_from_npm_6() {
    check("npm-v6-edge", "package-lock.json");
}

const NPM_WORLD: [&str; 7] = [
    "yarn-v1",
    "yarn-berry",
    "pnpm-v9",
    "pnpm-v8",
    "pnpm-v7",
    "npm-v11",
    "npm-v6",
];

/// The same package.json resolved by the seven npm-world tools: their
/// lists agree, so each reader above sees the same packages.
#[test]
fn npm_world_tools_agree() {
    for (suffix, count) in [("", 15), ("-edge", 11)] {
        let first = expected(&format!("{}{suffix}", NPM_WORLD[0]));
        assert_eq!(first.len(), count, "{suffix}");
        for tool in NPM_WORLD {
            assert_eq!(
                expected(&format!("{tool}{suffix}")),
                first,
                "{tool}{suffix}"
            );
        }
    }
}
