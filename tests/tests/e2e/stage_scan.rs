//! The `scan` reference stage on the fixture tree `tests/fixtures/scan/`:
//! `workspace/` holds planted fake secrets, near-misses and lockfiles, and
//! `osv/` a small OSV advisory database modeled on real advisories. What
//! the stage must find there is listed exactly below.

use std::path::Path;

use serde_json::Value;
use sluice_tests::{copy_tree, plugin, repo_root, vuln_row, Project, Run};

/// Every secret finding in the fixture workspace: (rule, file, line, column).
/// Everything else there is a near-miss, suppressed, binary, too large or
/// excluded, and must not be reported.
const SECRETS: &[(&str, &str, u64, u64)] = &[
    ("gitlab-token", "ci/gitlab-ci.yml", 2, 17),
    ("aws-access-key-id", "config/app.env", 2, 19),
    ("aws-secret-access-key", "config/app.env", 3, 23),
    ("generic-secret", "config/app.env", 6, 16),
    ("url-credentials", "deploy/docker-compose.yml", 5, 36),
    ("private-key", "deploy/id_rsa", 2, 1),
    ("github-fine-grained-token", "scripts/release.sh", 3, 15),
    ("slack-token", "src/client.js", 3, 30),
    ("slack-webhook", "src/client.js", 4, 51),
    ("stripe-secret-key", "src/client.js", 5, 35),
    ("google-api-key", "src/client.js", 6, 18),
    ("github-token", "src/settings.py", 4, 17),
    ("generic-secret", "src/settings.py", 5, 22),
];

/// Secret values that are planted but must be suppressed or skipped:
/// (file, line, column) of each.
const SUPPRESSED: &[(&str, u64, u64)] = &[
    // allowlisted by fingerprint in the pipeline
    ("tests/test_auth.py", 3, 17),
    // `sluice:ignore-secret` on the line
    ("src/settings.py", 8, 27),
    ("docs/near-misses.md", 11, 29),
    // larger than max-file-size
    ("logs/big.log", 201, 47),
    // under .venv/, excluded by default
    (".venv/lib/python3.11/site-packages/vendored/conf.py", 1, 8),
];

/// Every vulnerable package version in the fixture lockfiles:
/// (package, version, advisory, severity, lockfile, line).
const VULNS: &[(&str, &str, &str, &str, &str, u64)] = &[
    (
        "smallvec",
        "1.6.0",
        "RUSTSEC-2021-0003",
        "critical",
        "Cargo.lock",
        22,
    ),
    (
        "pyyaml",
        "5.3.1",
        "GHSA-8q59-q68h-6hv4",
        "critical",
        "py/poetry.lock",
        21,
    ),
    (
        "minimist",
        "1.2.5",
        "GHSA-xvch-5gv4-984h",
        "critical",
        "web/package-lock.json",
        44,
    ),
    (
        "requests",
        "2.19.1",
        "GHSA-x84v-xcm2-53pg",
        "high",
        "py/requirements.txt",
        2,
    ),
    (
        "lodash",
        "4.17.15",
        "GHSA-35jh-r3h4-6jhm",
        "high",
        "web/package-lock.json",
        28,
    ),
    (
        "time",
        "0.1.43",
        "RUSTSEC-2020-0071",
        "medium",
        "Cargo.lock",
        28,
    ),
    (
        "urllib3",
        "1.24.1",
        "GHSA-mh33-7rrq-662w",
        "medium",
        "py/requirements.txt",
        3,
    ),
    (
        "lodash",
        "4.17.15",
        "GHSA-29mw-wpgm-hmr9",
        "medium",
        "web/package-lock.json",
        28,
    ),
    (
        "debug",
        "2.6.8",
        "GHSA-gxpj-cx7g-858c",
        "low",
        "web/package-lock.json",
        20,
    ),
];

/// Files of the fixture workspace the stage does not read (binary, over
/// `max-file-size`, excluded by default).
const NOT_READ: &[&str] = &[
    "assets/logo.bin",
    "logs/big.log",
    ".venv/lib/python3.11/site-packages/vendored/conf.py",
];

/// Relative paths of every file under `dir`.
fn files_under(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if entry.file_type().expect("file type").is_dir() {
            files_under(&entry.path(), &rel, out);
        } else {
            out.push(rel);
        }
    }
}

/// A project holding the fixture workspace at its root, the advisory
/// database under `osv/`, and a pipeline whose stage `scan` has the given
/// lines (indented four spaces).
fn project(stage_body: &str) -> Project {
    let p = Project::new();
    let fixtures = repo_root().join("tests/fixtures/scan");
    copy_tree(&fixtures.join("workspace"), p.path());
    copy_tree(&fixtures.join("osv"), &p.path().join("osv"));
    let pipeline = format!(
        "version: 1\nname: scan-e2e\nstages:\n  scan:\n    uses: {}\n{stage_body}",
        plugin("scan").display()
    );
    p.write("sluice.yaml", &pipeline);
    p
}

/// The `with:` used by most tests: the fixture database, a small size
/// limit (so `logs/big.log` is skipped) and one allowlisted fingerprint.
const WITH: &str = "    grants: { workspace: read }
    with:
      advisories: osv
      max-file-size: 16KiB
      allow: [\"tests/test_auth.py:generic-secret:3\"]
";

fn stage(p: &Project, run: &Run) -> Value {
    p.record(&run.run_id())["stages"]["scan"].clone()
}

/// The value of metric `name` in a stage record, if reported.
fn metric(stage: &Value, name: &str) -> Option<f64> {
    stage["metrics"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == name))
        .and_then(|m| m["value"].as_f64())
}

/// The text of artifact `name` of a stage, read from the CAS by its digest.
fn artifact(p: &Project, stage: &Value, name: &str, media_type: &str) -> String {
    let a = stage["artifacts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == name))
        .unwrap_or_else(|| panic!("{name} missing in {stage:#}"));
    assert_eq!(a["media_type"], media_type);
    let digest = a["digest"].as_str().unwrap_or_default();
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    assert_eq!(hex.len(), 64, "digest {digest}");
    p.state(&format!("cas/sha256/{}/{}", &hex[..2], &hex[2..]))
}

/// The secret value that starts at `line`:`column` of `file`: the run of
/// characters up to whitespace, a quote, `@` or `;`.
fn token_at(p: &Project, file: &str, line: u64, column: u64) -> String {
    let text = p.read(file);
    let l = text
        .lines()
        .nth(line as usize - 1)
        .unwrap_or_else(|| panic!("{file} has no line {line}"));
    let token: String = l
        .chars()
        .skip(column as usize - 1)
        .take_while(|c| !c.is_whitespace() && !"\"'@;".contains(*c))
        .collect();
    assert!(token.len() >= 12, "{file}:{line}:{column} holds `{token}`");
    token
}

#[test]
fn finds_exactly_the_planted_secrets_and_vulnerable_packages() {
    let p = project(WITH);
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run);
    assert_eq!(s["state"], "passed", "{s:#}");

    // Metrics.
    let expect = [
        ("secrets.found", 13.0),
        ("vulns.critical", 3.0),
        ("vulns.high", 2.0),
        ("vulns.medium", 3.0),
        ("vulns.low", 1.0),
        ("vulns.unknown", 0.0),
        ("vulns.total", 9.0),
        ("deps.packages", 18.0),
    ];
    for (name, value) in expect {
        assert_eq!(metric(&s, name), Some(value), "{name} in {s:#}");
    }
    // Every file of the workspace is read except the skipped ones and the
    // advisory database; sluice.yaml is part of the workspace too.
    let mut files = Vec::new();
    files_under(
        &repo_root().join("tests/fixtures/scan/workspace"),
        "",
        &mut files,
    );
    files.retain(|f| !NOT_READ.contains(&f.as_str()));
    files.push("sluice.yaml".into());
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(p.path().join(f)).expect("stat").len())
        .sum();
    assert_eq!(
        metric(&s, "scan.files"),
        Some(files.len() as f64),
        "{files:?}"
    );
    assert_eq!(metric(&s, "scan.bytes"), Some(bytes as f64));
    assert_eq!(s["outputs"]["secrets"], "13");
    assert_eq!(s["outputs"]["vulns"], "9");

    // scan.json lists exactly the expected findings.
    let report: Value =
        serde_json::from_str(&artifact(&p, &s, "scan.json", "application/json")).expect("JSON");
    let findings = report["findings"].as_array().expect("findings");
    let mut secrets: Vec<(String, String, u64, u64)> = findings
        .iter()
        .filter(|f| f["kind"] == "secret")
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_string(),
                f["file"].as_str().unwrap_or_default().to_string(),
                f["line"].as_u64().unwrap_or_default(),
                f["column"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    secrets.sort();
    let mut expected: Vec<(String, String, u64, u64)> = SECRETS
        .iter()
        .map(|(r, f, l, c)| (r.to_string(), f.to_string(), *l, *c))
        .collect();
    expected.sort();
    assert_eq!(secrets, expected);
    let vulns: Vec<(&str, &str, &str, &str, &str, u64)> = findings
        .iter()
        .filter(|f| f["kind"] == "vulnerability")
        .map(vuln_row)
        .collect();
    assert_eq!(vulns, VULNS.to_vec());
    // The PYSEC duplicate of the requests advisory was merged, not counted.
    let requests = findings
        .iter()
        .find(|f| f["package"] == "requests")
        .expect("requests finding");
    assert!(
        requests["aliases"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "PYSEC-2018-28")),
        "{requests:#}"
    );
    assert_eq!(requests["fixed"], "2.20.0");
    assert_eq!(report["suppressed"]["inline"], 2);
    assert_eq!(report["suppressed"]["allowlisted"], 1);
    // Documentation examples (AWS's pair in docs/near-misses.md) and
    // placeholders (`changeme`, `${…}`, `<your-secret-here>`, …).
    assert_eq!(report["suppressed"]["placeholders"], 11);
    assert!(
        report["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w
                .as_str()
                .unwrap_or_default()
                .contains("`Flask>=1.0` is not pinned"))),
        "{report:#}"
    );

    // The summary leads with the counts and lists findings as documented.
    let summary = s["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with(
            "13 secrets, 9 vulnerabilities (3 critical, 2 high, 3 medium, 1 low) in 8 of 18 packages"
        ),
        "{summary}"
    );
    assert!(
        summary.contains(
            "requests 2.19.1 (PyPI) GHSA-x84v-xcm2-53pg high: fixed in 2.20.0 — py/requirements.txt:2"
        ),
        "{summary}"
    );

    // SARIF 2.1.0: one run by sluice-scan, one result per finding, each
    // with a rule, a level and a located region.
    let sarif_text = artifact(&p, &s, "scan.sarif", "application/sarif+json");
    let sarif: Value = serde_json::from_str(&sarif_text).expect("scan.sarif is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let runs = sarif["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["tool"]["driver"]["name"], "sluice-scan");
    let rules: Vec<&str> = runs[0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    let results = runs[0]["results"].as_array().expect("results");
    assert_eq!(results.len(), SECRETS.len() + VULNS.len());
    for r in results {
        let rule = r["ruleId"].as_str().expect("ruleId");
        assert!(rules.contains(&rule), "rule {rule} not declared");
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap_or("")));
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(loc["artifactLocation"]["uri"].is_string(), "{r:#}");
        assert!(loc["region"]["startLine"].as_u64().is_some(), "{r:#}");
    }
    let requests = results
        .iter()
        .find(|r| r["ruleId"] == "GHSA-x84v-xcm2-53pg")
        .expect("requests result");
    assert_eq!(requests["level"], "error");
    let loc = &requests["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "py/requirements.txt");
    assert_eq!(loc["region"]["startLine"], 2);

    // No secret value, nor any 8 characters of it past the preview, is
    // printed, logged, or written to an artifact.
    let log = p.log(&run.run_id(), "scan");
    assert!(
        log.contains("secret github-token ghp_… — src/settings.py:4:17"),
        "{log}"
    );
    let json_text = artifact(&p, &s, "scan.json", "application/json");
    let mut values: Vec<String> = SECRETS
        .iter()
        .map(|(_, f, l, c)| token_at(&p, f, *l, *c))
        .collect();
    values.extend(SUPPRESSED.iter().map(|(f, l, c)| token_at(&p, f, *l, *c)));
    for v in &values {
        let inner: String = v.chars().skip(4).take(8).collect();
        for (what, text) in [
            ("stdout", &run.stdout),
            ("stderr", &run.stderr),
            ("log", &log),
            ("scan.sarif", &sarif_text),
            ("scan.json", &json_text),
        ] {
            assert!(!text.contains(v.as_str()), "{what} contains the secret {v}");
            assert!(
                !text.contains(&inner),
                "{what} contains `{inner}` of a secret"
            );
        }
    }
}

#[test]
fn gates_on_vulnerabilities_and_secrets_block_the_run() {
    let p = project(&format!(
        "{WITH}    gates:\n      - {{ metric: vulns.high, max: 0 }}\n      - {{ metric: secrets.found, max: 0 }}\n"
    ));
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let s = stage(&p, &run);
    assert_eq!(s["state"], "blocked");
    for expected in [
        "vulns.high = 2 is above the maximum 0",
        "secrets.found = 13 is above the maximum 0",
        // The findings are in the streamed log.
        "requests 2.19.1 (PyPI) GHSA-x84v-xcm2-53pg high: fixed in 2.20.0 — py/requirements.txt:2",
        "secret aws-access-key-id AKIA… — config/app.env:2:19",
    ] {
        assert!(
            run.stdout.contains(expected),
            "missing {expected:?} in\n{}",
            run.all()
        );
    }
}

#[test]
fn without_an_advisory_database_vulnerability_gates_cannot_pass() {
    let p = project(
        "    grants: { workspace: read }
    with: { secrets: false }
    gates:
      - { metric: vulns.critical, max: 0 }
",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let s = stage(&p, &run);
    assert_eq!(s["state"], "blocked", "{s:#}");
    assert_eq!(metric(&s, "vulns.critical"), None);
    assert_eq!(metric(&s, "secrets.found"), None);
    assert_eq!(metric(&s, "deps.packages"), Some(18.0));
    assert!(run.stdout.contains("no advisory database"), "{}", run.all());
}

#[test]
fn bad_configuration_names_the_key() {
    // The plugin's JSON Schema catches unknown keys before it runs.
    let p =
        project("    grants: { workspace: read }\n    with: { advisories: osv, exclued: [] }\n");
    let run = p.sluice(&["run"]);
    assert_ne!(run.code, 0, "{}", run.all());
    assert!(run.all().contains("exclued"), "{}", run.all());

    // The plugin itself checks what a schema cannot.
    for (with, expected) in [
        (
            "{ advisories: no-such-dir }",
            "with.advisories: directory `no-such-dir` not found",
        ),
        (
            "{ exclude: [\"src/[\"] }",
            "with.exclude[0]: `src/[` is not a valid glob",
        ),
        (
            "{ allow: [\"(unclosed\"] }",
            "with.allow[0]: `(unclosed` is not a valid regular expression",
        ),
        ("{ secrets: false, dependencies: false }", "nothing to scan"),
    ] {
        let p = project(&format!(
            "    grants: {{ workspace: read }}\n    with: {with}\n"
        ));
        let run = p.sluice(&["run"]);
        assert_eq!(run.code, 1, "{with}: {}", run.all());
        let s = stage(&p, &run);
        assert_eq!(s["state"], "failed", "{with}: {s:#}");
        let reason = s["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(expected), "{with}: reason {reason:?}");
    }
}

#[test]
fn reading_the_workspace_needs_the_grant() {
    let p = project("    with: { advisories: osv }\n");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let s = stage(&p, &run);
    assert_eq!(s["state"], "failed", "{s:#}");
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("workspace: read"), "{reason}");
}
