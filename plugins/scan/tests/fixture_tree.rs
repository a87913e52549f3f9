//! The scanner, natively, on the shared fixture tree
//! `tests/fixtures/scan/` (the same tree the end-to-end test runs the
//! component on): exact findings, without building Wasm.

use std::path::PathBuf;

use sluice_plugin_scan::config::{ByteSize, Options, Roots, Settings};
use sluice_plugin_scan::osv::AdvisoryDb;
use sluice_plugin_scan::scan::{self, Outcome};
use sluice_plugin_scan::severity::Severity;
use sluice_plugin_scan::{report, sarif};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/scan")
}

fn run(allow: &[&str]) -> Outcome {
    let root = fixtures().join("workspace");
    let options = Options {
        max_file_size: Some(ByteSize(16 * 1024)),
        allow: allow.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    };
    let roots = Roots {
        workspace: root.clone(),
        inputs: root.clone(),
    };
    let settings = Settings::from_options(options, &roots).unwrap_or_else(|e| panic!("{e}"));
    let db = AdvisoryDb::load(&fixtures().join("osv")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(db.len(), 11, "withdrawn advisories are not loaded");
    assert!(db.warnings.is_empty(), "{:?}", db.warnings);
    scan::run(&root, &settings, Some(&db), &[]).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn finds_the_planted_secrets() {
    let o = run(&["tests/test_auth.py:generic-secret:3"]);
    let found: Vec<String> = o
        .secrets
        .iter()
        .map(|s| format!("{}:{}:{} {}", s.file, s.line, s.column, s.rule_id))
        .collect();
    assert_eq!(
        found,
        vec![
            "ci/gitlab-ci.yml:2:17 gitlab-token",
            "config/app.env:2:19 aws-access-key-id",
            "config/app.env:3:23 aws-secret-access-key",
            "config/app.env:6:16 generic-secret",
            "deploy/docker-compose.yml:5:36 url-credentials",
            "deploy/id_rsa:2:1 private-key",
            "scripts/release.sh:3:15 github-fine-grained-token",
            "src/client.js:3:30 slack-token",
            "src/client.js:4:51 slack-webhook",
            "src/client.js:5:35 stripe-secret-key",
            "src/client.js:6:18 google-api-key",
            "src/settings.py:4:17 github-token",
            "src/settings.py:5:22 generic-secret",
        ]
    );
    assert_eq!(o.ignored_inline, 2);
    assert_eq!(o.allowlisted, 1);
    // AWS's documentation pair in docs/near-misses.md and the placeholders.
    assert_eq!(o.placeholders, 11);
    assert_eq!(o.skipped_binary, 1);
    assert_eq!(o.skipped_large, 1);
    // 16 files in the tree: one binary, one too large, one under .venv/.
    assert_eq!(o.files, 13);
}

#[test]
fn finds_the_vulnerable_packages() {
    let o = run(&[]);
    assert_eq!(o.dependencies.len(), 18);
    assert_eq!(o.lockfiles.len(), 4);
    let found: Vec<String> = o.vulns.iter().map(report::vuln_line).collect();
    assert_eq!(
        found,
        vec![
            "smallvec 1.6.0 (crates.io) RUSTSEC-2021-0003 critical: fixed in 1.6.1 — Cargo.lock:22",
            "pyyaml 5.3.1 (PyPI) GHSA-8q59-q68h-6hv4 critical: fixed in 5.4 — py/poetry.lock:21",
            "minimist 1.2.5 (npm) GHSA-xvch-5gv4-984h critical: fixed in 1.2.6 — web/package-lock.json:44",
            "requests 2.19.1 (PyPI) GHSA-x84v-xcm2-53pg high: fixed in 2.20.0 — py/requirements.txt:2",
            "lodash 4.17.15 (npm) GHSA-35jh-r3h4-6jhm high: fixed in 4.17.21 — web/package-lock.json:28",
            "time 0.1.43 (crates.io) RUSTSEC-2020-0071 medium: fixed in 0.2.0 — Cargo.lock:28",
            "urllib3 1.24.1 (PyPI) GHSA-mh33-7rrq-662w medium: no fixed version (last affected 1.24.2) — py/requirements.txt:3",
            "lodash 4.17.15 (npm) GHSA-29mw-wpgm-hmr9 medium: fixed in 4.17.21 — web/package-lock.json:28",
            "debug 2.6.8 (npm) GHSA-gxpj-cx7g-858c low: fixed in 2.6.9 — web/package-lock.json:20",
        ]
    );
    assert_eq!(o.count(Severity::Critical), 3);
    // The CVSS score wins over the label when both exist.
    let requests = o.vulns.iter().find(|v| v.package == "requests");
    assert_eq!(requests.and_then(|v| v.score), Some(7.5));
    assert!(o
        .warnings
        .iter()
        .any(|w| w.contains("`Flask>=1.0` is not pinned")));
}

#[test]
fn advisories_can_be_allowlisted_by_id_or_alias() {
    let o = run(&["CVE-2021-25900", "GHSA-x84v-xcm2-53pg"]);
    assert!(o
        .vulns
        .iter()
        .all(|v| v.package != "smallvec" && v.package != "requests"));
    assert_eq!(o.vulns.len(), 7);
    assert_eq!(o.allowlisted, 2);
}

#[test]
fn sarif_and_json_hold_no_secret_values() {
    let o = run(&[]);
    let sarif = sarif::to_sarif(&o, "0").to_string();
    let json = report::json_report(&o, "0").to_string();
    let summary = report::summary(&o);
    // A few planted values, read back from the fixture files.
    let root = fixtures().join("workspace");
    let settings = std::fs::read_to_string(root.join("src/settings.py")).unwrap_or_default();
    let token_line = settings.lines().nth(3).unwrap_or_default();
    let token = token_line.split('"').nth(1).unwrap_or_default();
    assert!(token.starts_with("ghp_") && token.len() == 40, "{token}");
    for text in [&sarif, &json, &summary] {
        assert!(!text.contains(token));
        assert!(!text.contains("x7Kp2Qm9Lw4Rt8Vz"));
        assert!(!text.contains("AKIAIOSFODNN7EXAMPLE")); // sluice:ignore-secret
    }
}
