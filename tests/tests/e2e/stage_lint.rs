//! The `lint` reference stage on the fixture tree `tests/fixtures/lint/`,
//! whose findings are known exactly (see its README.md): 8 errors and 3
//! warnings from the stage's own checks, plus 1 error, 1 warning and 1 note
//! from the canned external linter output `lint-output.sarif`.

use serde_json::Value;
use sluice_tests::{copy_tree, metric, plugin, repo_root, Project};

/// Errors the stage's own checks find in the fixture tree.
const OWN_ERRORS: f64 = 8.0;
/// Warnings the stage's own checks find in the fixture tree.
const OWN_WARNINGS: f64 = 3.0;

/// A project holding the lint fixture tree and a pipeline whose stage
/// `lint` has the given `with:` / `grants:` / `gates:` lines (indented
/// four spaces, `{lint}` replaced by the plugin path).
fn project(stage_body: &str) -> Project {
    let p = Project::new();
    copy_tree(&repo_root().join("tests/fixtures/lint"), p.path());
    let pipeline =
        format!("version: 1\nname: lint-e2e\nstages:\n  lint:\n    uses: {{lint}}\n{stage_body}")
            .replace("{lint}", &plugin("lint").display().to_string());
    p.write("sluice.yaml", &pipeline);
    p
}

fn stage(p: &Project, run_id: &str) -> Value {
    p.record(run_id)["stages"]["lint"].clone()
}

/// `lint.sarif` of a stage, read from the CAS by its recorded digest.
fn sarif(p: &Project, stage: &Value) -> Value {
    let artifact = stage["artifacts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "lint.sarif"))
        .unwrap_or_else(|| panic!("lint.sarif missing in {stage:#}"));
    assert_eq!(artifact["media_type"], "application/sarif+json");
    let digest = artifact["digest"].as_str().unwrap_or_default();
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    assert_eq!(hex.len(), 64, "digest {digest}");
    let text = p.state(&format!("cas/sha256/{}/{}", &hex[..2], &hex[2..]));
    serde_json::from_str(&text).expect("lint.sarif is JSON")
}

/// Checks the SARIF 2.1.0 shape and returns the results of each run by tool.
fn sarif_results(log: &Value) -> Vec<(String, Vec<Value>)> {
    assert_eq!(log["version"], "2.1.0", "{log:#}");
    let runs = log["runs"].as_array().expect("runs");
    runs.iter()
        .map(|run| {
            let name = run["tool"]["driver"]["name"]
                .as_str()
                .expect("tool.driver.name")
                .to_string();
            let rules: Vec<&str> = run["tool"]["driver"]["rules"]
                .as_array()
                .expect("rules")
                .iter()
                .filter_map(|r| r["id"].as_str())
                .collect();
            let results = run["results"].as_array().expect("results").clone();
            for r in &results {
                let id = r["ruleId"].as_str().expect("ruleId");
                assert!(rules.contains(&id), "rule {id} not in {rules:?}");
                assert!(
                    ["error", "warning", "note"].contains(&r["level"].as_str().unwrap_or("")),
                    "{r:#}"
                );
                assert!(r["message"]["text"].is_string(), "{r:#}");
            }
            (name, results)
        })
        .collect()
}

#[test]
fn counts_are_exact_and_the_sarif_matches() {
    let p = project("    grants: { workspace: read }\n");
    // A broken file in an excluded directory is never looked at.
    p.write("target/debug/broken.json", "{");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let id = run.run_id();
    let s = stage(&p, &id);
    assert_eq!(s["state"], "passed", "{}", run.all());
    assert_eq!(metric(&s, "lint.errors"), OWN_ERRORS, "{}", run.all());
    assert_eq!(metric(&s, "lint.warnings"), OWN_WARNINGS, "{}", run.all());
    // The 16 fixture files and sluice.yaml, less the binary logo.png.
    assert_eq!(metric(&s, "lint.files"), 16.0, "{}", run.all());
    assert_eq!(s["outputs"]["errors"], "8");

    let log = p.log(&id, "lint");
    for line in [
        "src/app.py:2:1 error merge-conflict-marker",
        "src/app.py:4:1 error merge-conflict-marker",
        "broken/bad.json:4:3 error json-syntax invalid JSON:",
        "broken/bad.yaml:5:7 error yaml-syntax invalid YAML:",
        "broken/bad.toml:3:10 error toml-syntax invalid TOML:",
        "broken/tabs.yaml:2:1 error yaml-tab-indent",
        "notes/trailing.txt:2:19 warning trailing-whitespace",
        "notes/no-newline.txt:1:22 warning final-newline",
    ] {
        assert!(log.contains(line), "{line:?} missing from the log:\n{log}");
    }
    assert!(!log.contains("clean/"), "clean files have findings:\n{log}");
    assert!(!log.contains("target/"), "excluded dir was linted:\n{log}");

    let by_tool = sarif_results(&sarif(&p, &s));
    assert_eq!(by_tool.len(), 1);
    let (tool, results) = &by_tool[0];
    assert_eq!(tool, "sluice-lint");
    assert_eq!(results.len(), 11);
    let first = &results[0]["locations"][0]["physicalLocation"];
    assert_eq!(first["artifactLocation"]["uri"], "broken/bad.json");
    assert_eq!(first["region"]["startLine"], 4);
    assert_eq!(first["region"]["startColumn"], 3);
}

#[test]
fn a_lint_errors_gate_blocks_the_run() {
    let p = project(
        "    grants: { workspace: read }\n    gates:\n      - { metric: lint.errors, max: 0 }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("lint blocked"), "{}", run.all());
    assert!(
        run.stdout
            .contains("lint.errors = 8 is above the maximum 0"),
        "{}",
        run.all()
    );
    // The findings themselves are in the console's findings summary...
    assert!(
        run.stdout
            .contains("src/app.py:2: error merge-conflict-marker merge conflict marker"),
        "{}",
        run.all()
    );
    // ...and the summary line names the counts.
    assert!(
        run.stdout
            .contains("8 errors, 3 warnings in 16 files (sluice-lint)"),
        "{}",
        run.all()
    );
    let s = stage(&p, &run.run_id());
    assert_eq!(s["state"], "blocked");
}

#[test]
fn rules_can_be_switched_off_and_relevelled() {
    let p = project(
        "    grants: { workspace: read }\n    with:\n      paths: [notes, src]\n      rules: { trailing-whitespace: off, final-newline: error, merge-conflict-marker: warning }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let s = stage(&p, &run.run_id());
    assert_eq!(metric(&s, "lint.errors"), 1.0, "{}", run.all());
    assert_eq!(metric(&s, "lint.warnings"), 3.0, "{}", run.all());
    assert_eq!(metric(&s, "lint.files"), 4.0, "{}", run.all());
}

#[test]
fn an_external_linter_runs_through_exec_and_merges() {
    let p = project(
        "    grants: { workspace: read, exec: [cat] }\n    with:\n      external:\n        - { command: [cat, lint-output.sarif], format: sarif }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let id = run.run_id();
    let s = stage(&p, &id);
    assert_eq!(metric(&s, "lint.errors"), OWN_ERRORS + 1.0, "{}", run.all());
    assert_eq!(
        metric(&s, "lint.warnings"),
        OWN_WARNINGS + 1.0,
        "{}",
        run.all()
    );
    assert_eq!(metric(&s, "lint.notes"), 1.0, "{}", run.all());

    let log = p.log(&id, "lint");
    assert!(
        log.contains("src/util.py:1:8 error F401 `os` imported but unused [ruff]"),
        "{log}"
    );
    // The absolute host path in the SARIF maps back into the workspace.
    assert!(
        log.contains("src/app.py:5:89 warning E501 Line too long (104 > 88) [ruff]"),
        "{log}"
    );
    assert!(!log.contains("suppressed in source"), "{log}");

    let by_tool = sarif_results(&sarif(&p, &s));
    let names: Vec<&str> = by_tool.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["sluice-lint", "ruff"]);
    assert_eq!(by_tool[0].1.len(), 11);
    assert_eq!(by_tool[1].1.len(), 3);
    assert_eq!(
        by_tool[1].1[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "src/app.py"
    );
}

#[test]
fn an_exec_that_is_not_granted_is_denied_naming_the_grant() {
    let p = project(
        "    grants: { workspace: read }\n    with:\n      external:\n        - { command: [cat, lint-output.sarif], format: sarif }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let s = stage(&p, &run.run_id());
    assert_eq!(s["state"], "failed", "{}", run.all());
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("denied"), "{reason}");
    // The reason is the sandbox's (what is granted, what to add); the
    // stage logs which `with:` entry asked for the program.
    assert!(run.stdout.contains("with.external[0]"), "{}", run.all());
    assert!(reason.contains("grants.exec"), "{reason}");
    assert!(run.stdout.contains("grants.exec"), "{}", run.all());
}

#[test]
fn bad_config_names_the_key() {
    let p = project(
        "    grants: { workspace: read }\n    with:\n      rules: { trailing-whitespac: off }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let s = stage(&p, &run.run_id());
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("with.rules.trailing-whitespac: unknown rule")
            && reason.contains("did you mean `trailing-whitespace`?"),
        "{reason}"
    );
}
