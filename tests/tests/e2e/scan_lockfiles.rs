//! The `scan` stage over every lockfile format it reads, on the fixture
//! tree `tests/fixtures/scan/lockfiles/`: `workspace/` holds small
//! lockfiles in the real formats (yarn 1 and berry, pnpm v5/v6/v9,
//! requirements folders with `-r` includes, Pipfile.lock, uv.lock, go.mod
//! and go.sum, plus Cargo.lock, package-lock.json and poetry.lock) and
//! lockfiles of tools the stage does not read; `osv/` the advisories. What
//! the stage must find there is listed exactly below.

use serde_json::Value;
use sluice_tests::{copy_tree, metric, plugin, repo_root, vuln_row, Project};

/// Every finding: (package, version, advisory, severity, lockfile, line).
/// Most severe first, then by file, package and advisory (the stage's order).
const VULNS: &[(&str, &str, &str, &str, &str, u64)] = &[
    (
        "@babel/traverse",
        "7.22.5",
        "GHSA-67hx-6x53-jw92",
        "critical",
        "pnpm-v5/pnpm-lock.yaml",
        19,
    ),
    (
        "pyyaml",
        "5.3.1",
        "GHSA-8q59-q68h-6hv4",
        "critical",
        "poetry/poetry.lock",
        4,
    ),
    (
        "smallvec",
        "1.6.0",
        "RUSTSEC-2021-0003",
        "critical",
        "rust/Cargo.lock",
        13,
    ),
    (
        "minimist",
        "1.2.5",
        "GHSA-xvch-5gv4-984h",
        "critical",
        "web-yarn1/yarn.lock",
        17,
    ),
    // jwt-go: no fixed version; `+incompatible` compares as 3.2.0.
    (
        "github.com/dgrijalva/jwt-go",
        "v3.2.0+incompatible",
        "GHSA-w73w-5m7g-f7qc",
        "high",
        "gosvc/go.mod",
        11,
    ),
    // A pseudo-version below a pseudo-version fix.
    (
        "golang.org/x/crypto",
        "v0.0.0-20210817164053-32db794688a5",
        "GHSA-8c26-wmh5-6g9v",
        "high",
        "gosvc/go.mod",
        12,
    ),
    (
        "github.com/dgrijalva/jwt-go",
        "v3.2.0+incompatible",
        "GHSA-w73w-5m7g-f7qc",
        "high",
        "gosvc/go.sum",
        1,
    ),
    (
        "golang.org/x/crypto",
        "v0.0.0-20210817164053-32db794688a5",
        "GHSA-8c26-wmh5-6g9v",
        "high",
        "gosvc/go.sum",
        9,
    ),
    (
        "lodash",
        "4.17.15",
        "GHSA-35jh-r3h4-6jhm",
        "high",
        "npm-v3/package-lock.json",
        14,
    ),
    (
        "ws",
        "8.13.0",
        "GHSA-3h5v-q93c-6h6q",
        "high",
        "pnpm-v9/pnpm-lock.yaml",
        30,
    ),
    (
        "aiohttp",
        "3.8.4",
        "GHSA-45c4-8wx5-qw6w",
        "high",
        "uvproj/uv.lock",
        5,
    ),
    (
        "lodash",
        "4.17.20",
        "GHSA-35jh-r3h4-6jhm",
        "high",
        "web-berry/yarn.lock",
        15,
    ),
    // Multi-spec header `ansi-regex@^5.0.0, ansi-regex@~5.0.0:`.
    (
        "ansi-regex",
        "5.0.0",
        "GHSA-93q8-gq69-wqmw",
        "high",
        "web-yarn1/yarn.lock",
        12,
    ),
    (
        "node-fetch",
        "2.6.0",
        "GHSA-r683-j2x4-v87g",
        "high",
        "web-yarn1/yarn.lock",
        22,
    ),
    (
        "github.com/gin-gonic/gin",
        "v1.7.0",
        "GHSA-h395-qcrw-5vmq",
        "medium",
        "gosvc/go.mod",
        6,
    ),
    (
        "github.com/gin-gonic/gin",
        "v1.7.0",
        "GHSA-h395-qcrw-5vmq",
        "medium",
        "gosvc/go.sum",
        4,
    ),
    (
        "lodash",
        "4.17.15",
        "GHSA-29mw-wpgm-hmr9",
        "medium",
        "npm-v3/package-lock.json",
        14,
    ),
    (
        "requests",
        "2.25.0",
        "GHSA-j8r2-6x86-q33q",
        "medium",
        "pipenv/Pipfile.lock",
        27,
    ),
    // `/postcss@8.4.30` (v6 key shape).
    (
        "postcss",
        "8.4.30",
        "GHSA-7fh5-64p2-3v2j",
        "medium",
        "pnpm-v6/pnpm-lock.yaml",
        31,
    ),
    // requirements/ folder convention.
    (
        "Django",
        "3.2.0",
        "GHSA-2hrw-hx67-34x6",
        "medium",
        "pyreqs/requirements/base.txt",
        2,
    ),
    // Only reachable through `-r ../shared/pins.txt`.
    (
        "jinja2",
        "2.11.2",
        "GHSA-g3rq-g295-4j3m",
        "medium",
        "pyreqs/shared/pins.txt",
        2,
    ),
    (
        "lodash",
        "4.17.20",
        "GHSA-29mw-wpgm-hmr9",
        "medium",
        "web-berry/yarn.lock",
        15,
    ),
    (
        "semver",
        "7.5.1",
        "GHSA-c2qf-rxjj-qqgw",
        "medium",
        "web-berry/yarn.lock",
        42,
    ),
];

/// Lockfiles of other tools in the workspace: never read, always named.
const UNREAD: &str = "dotnet/packages.lock.json, ios/Podfile.lock, java/gradle.lockfile, \
                      php/composer.lock, ruby/Gemfile.lock";

/// A project holding the lockfile workspace and its advisories under `osv/`.
fn project() -> Project {
    let p = Project::new();
    let fixtures = repo_root().join("tests/fixtures/scan/lockfiles");
    copy_tree(&fixtures.join("workspace"), p.path());
    copy_tree(&fixtures.join("osv"), &p.path().join("osv"));
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: scan-lockfiles\nstages:\n  scan:\n    uses: {}\n    grants: {{ workspace: read }}\n    with:\n      advisories: osv\n      secrets: false\n",
            plugin("scan").display()
        ),
    );
    p
}

#[test]
fn every_lockfile_format_is_read_and_matched() {
    let p = project();
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let id = run.run_id();
    let record = p.record(&id);
    let s = p.assert_stage(&record, &id, "scan", "passed");

    // Counts: 23 findings are 20 vulnerabilities (go.mod and go.sum pin the
    // same three Go module versions) in 18 vulnerable package versions out
    // of 38 read.
    for (name, value) in [
        ("vulns.critical", 4.0),
        ("vulns.high", 8.0),
        ("vulns.medium", 8.0),
        ("vulns.low", 0.0),
        ("vulns.unknown", 0.0),
        ("vulns.total", 20.0),
        ("vulns.packages", 18.0),
        ("deps.packages", 38.0),
    ] {
        assert_eq!(metric(s, name), value, "{name}");
    }
    assert_eq!(s["outputs"]["vulns"], "20");
    let summary = s["summary"].as_str().unwrap_or_default();
    assert!(
        summary
            .starts_with("20 vulnerabilities (4 critical, 8 high, 8 medium) in 18 of 38 packages"),
        "{summary}"
    );
    assert!(
        summary.ends_with(&format!(
            "Not read (lockfile format not supported, so not checked): {UNREAD}"
        )),
        "{summary}"
    );

    // scan.json: exactly the expected findings, in order.
    let report: Value = serde_json::from_str(&p.artifact(s, "scan.json")).expect("scan.json");
    let findings = report["findings"].as_array().expect("findings");
    let got: Vec<(&str, &str, &str, &str, &str, u64)> = findings.iter().map(vuln_row).collect();
    assert_eq!(got, VULNS.to_vec());
    let jwt = &findings[4];
    assert_eq!(jwt["ecosystem"], "Go");
    assert_eq!(jwt["fixed"], Value::Null);
    assert_eq!(
        findings[5]["fixed"], "0.0.0-20220314234659-1baeb1ce4c0b",
        "{:#}",
        findings[5]
    );

    // Every lockfile was read, the included file too; the outside include
    // was refused.
    let mut lockfiles: Vec<&str> = report["lockfiles"]
        .as_array()
        .expect("lockfiles")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    lockfiles.sort_unstable();
    assert_eq!(
        lockfiles,
        vec![
            "gosvc/go.mod",
            "gosvc/go.sum",
            "npm-v3/package-lock.json",
            "pipenv/Pipfile.lock",
            "pnpm-v5/pnpm-lock.yaml",
            "pnpm-v6/pnpm-lock.yaml",
            "pnpm-v9/pnpm-lock.yaml",
            "poetry/poetry.lock",
            "pyreqs/requirements-test.txt",
            "pyreqs/requirements/base.txt",
            "pyreqs/requirements/dev.txt",
            "pyreqs/shared/pins.txt",
            "rust/Cargo.lock",
            "uvproj/uv.lock",
            "web-berry/yarn.lock",
            "web-yarn1/yarn.lock",
        ]
    );
    let unread: Vec<&str> = report["unread_lockfiles"]
        .as_array()
        .expect("unread_lockfiles")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(unread.join(", "), UNREAD);

    // The warnings: the unread lockfiles, at warn level in the stage log,
    // and the notes on what was skipped.
    let log = p.log(&id, "scan");
    let unread_line = log
        .lines()
        .find(|l| l.contains("5 lockfiles not read (format not supported)"))
        .unwrap_or_else(|| panic!("no unread-lockfile warning in\n{log}"));
    assert!(unread_line.contains("warn"), "{unread_line}");
    assert!(unread_line.ends_with(UNREAD), "{unread_line}");
    for expected in [
        "gosvc/go.mod:13: golang.org/x/net v0.0.0-20210226172049-e18ecbb05110 is replaced by golang.org/x/net v0.7.0; checked as the replacement",
        "gosvc/go.mod:15: example.com/internal/auth v1.0.0 is replaced by the local directory ../auth; not checked",
        "pipenv/Pipfile.lock:34: `internal-sdk` (default) has no `==` version",
        "pnpm-v5/pnpm-lock.yaml:44: `github.com/example/tiny-lib/2d1e7c5a0f4b3c9e8d7a6b5c4d3e2f1a0b9c8d7e` is not a registry package",
        "uvproj/uv.lock: `vendored-tool` comes from a git source",
        "pyreqs/requirements-test.txt:2: `-r ../../outside.txt` points outside the workspace; not read",
        "pyreqs/requirements/dev.txt:3: `pytest-django>=4.5` is not pinned",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in\n{log}");
    }
}

#[test]
fn a_broken_lockfile_is_a_warning_naming_its_line() {
    let p = project();
    p.write(
        "web-yarn1/yarn.lock",
        "# yarn lockfile v1\n\n\nlodash@^4.17.0:\n  version \"4.17.15\"\nnot a header\n",
    );
    p.write("gosvc/go.sum", "golang.org/x/net v0.7.0\n");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let id = run.run_id();
    let record = p.record(&id);
    let s = p.assert_stage(&record, &id, "scan", "passed");
    let log = p.log(&id, "scan");
    for expected in [
        "web-yarn1/yarn.lock:6: cannot read this lockfile: expected an entry header ending in `:`",
        "gosvc/go.sum:1: cannot read this lockfile: expected `module version hash`, found 2 fields",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in\n{log}");
    }
    // The other lockfiles still count: go.mod still pins the Go findings.
    assert_eq!(metric(s, "vulns.total"), 17.0);
}
