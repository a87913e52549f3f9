//! The `lint` reference stage on projects as users have them: a
//! `.gitignore` and tool caches, reports left by an earlier run, a linter
//! that appends to its output file, and clippy findings inside macro
//! expansions (`tests/fixtures/lint-project/`). Real binary, real plugin;
//! the external "linters" are canned (`cat`, `sh`, `true`).

use serde_json::Value;
use sluice_tests::{copy_tree, metric, plugin, repo_root, Project};

/// A project with a pipeline whose stage `lint` has the given `grants:` /
/// `with:` lines (indented four spaces).
fn project(stage_body: &str) -> Project {
    let p = Project::new();
    let pipeline = format!(
        "version: 1\nname: lint-project\nstages:\n  lint:\n    uses: {}\n{stage_body}",
        plugin("lint").display()
    );
    p.write("sluice.yaml", &pipeline);
    p
}

fn stage(p: &Project, run_id: &str) -> Value {
    p.record(run_id)["stages"]["lint"].clone()
}

/// The canned SARIF log of an external linter: 1 error, 1 warning, 1 note.
fn canned_sarif() -> String {
    std::fs::read_to_string(repo_root().join("tests/fixtures/lint/lint-output.sarif"))
        .expect("tests/fixtures/lint/lint-output.sarif")
}

#[test]
fn gitignored_files_and_tool_caches_have_no_findings_on_any_run() {
    let p = project("    grants: { workspace: read }\n");
    p.write(".gitignore", "build/\n*.log\n!keep.log\n");
    p.write("sub/.gitignore", "scratch.json\n");
    p.write("ok.yaml", "a: 1\n");
    p.write("keep.log", "kept\n");
    // The one real finding.
    p.write("notes.txt", "trailing \n");
    // Each of these would be a finding if it were checked.
    for (file, text) in [
        ("build/out.json", "{"),
        ("debug.log", "x \n"),
        ("sub/scratch.json", "{"),
        (".pytest_cache/README.md", "x \n"),
        (".pytest_cache/v/cache/nodeids", "[\n"),
        (".hypothesis/examples/abc/def", "x \n"),
        (".ruff_cache/0.6.9/123", "x "),
        (".mypy_cache/3.12/app.data.json", "{"),
        (".tox/py312/log/1-commands.log", "x \n"),
        (".nox/tests/x.toml", "a = "),
        ("node_modules/pkg/package.json", "{"),
        ("target/debug/x.json", "{"),
    ] {
        p.write(file, text);
    }
    for round in 1..=2 {
        let run = p.sluice(&["run"]);
        assert_eq!(run.code, 0, "run {round}: {}", run.all());
        let id = run.run_id();
        let s = stage(&p, &id);
        assert_eq!(metric(&s, "lint.errors"), 0.0, "run {round}: {}", run.all());
        assert_eq!(
            metric(&s, "lint.warnings"),
            1.0,
            "run {round}: {}",
            run.all()
        );
        // .gitignore, sub/.gitignore, ok.yaml, keep.log, notes.txt, sluice.yaml
        assert_eq!(metric(&s, "lint.files"), 6.0, "run {round}: {}", run.all());
        let log = p.log(&id, "lint");
        assert!(
            log.contains("notes.txt:1:9 warning trailing-whitespace"),
            "{log}"
        );
        for ignored in [
            "build/",
            "debug.log",
            "scratch.json",
            "_cache",
            ".hypothesis",
            ".tox",
            ".nox",
            "node_modules",
            "target/",
        ] {
            assert!(!log.contains(ignored), "{ignored} was checked:\n{log}");
        }
        assert!(
            run.stdout.contains("— 1 warning in 6 files (sluice-lint)"),
            "{}",
            run.all()
        );
    }
}

#[test]
fn a_report_left_from_an_earlier_run_is_refused() {
    // `true` writes nothing: the report in the workspace is an old one.
    let p = project(
        "    grants: { workspace: read, exec: [\"true\"] }\n    with:\n      external:\n        - { command: [\"true\"], format: sarif, output: reports/ruff.sarif }\n",
    );
    p.write("reports/ruff.sarif", &canned_sarif());
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let s = stage(&p, &run.run_id());
    assert_eq!(s["state"], "failed", "{}", run.all());
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("its report `reports/ruff.sarif` is left from an earlier run"),
        "{reason}"
    );
    assert!(reason.contains("grant `workspace: write`"), "{reason}");
    // With write access the stage removes the old report first, so a tool
    // that writes nothing is told apart from one that found nothing.
    let p = project(
        "    grants: { workspace: write, exec: [\"true\"] }\n    with:\n      external:\n        - { command: [\"true\"], format: sarif, output: reports/ruff.sarif }\n",
    );
    p.write("reports/ruff.sarif", &canned_sarif());
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let s = stage(&p, &run.run_id());
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("did not write its report `reports/ruff.sarif`"),
        "{reason}"
    );
}

/// A stage running a "linter" that appends its SARIF log to
/// `reports/out.sarif`, as flake8 does with `--output-file`.
fn appending(workspace: &str) -> Project {
    let p = project(&format!(
        "    grants: {{ workspace: {workspace}, exec: [sh] }}\n    with:\n      external:\n        - {{ command: [sh, -c, \"mkdir -p reports && cat canned.sarif >> reports/out.sarif\"], format: sarif, output: reports/out.sarif }}\n"
    ));
    p.write("canned.sarif", &canned_sarif());
    p
}

#[test]
fn a_second_run_is_not_broken_by_a_linter_that_appends() {
    let p = appending("write");
    for round in 1..=2 {
        let run = p.sluice(&["run"]);
        assert_eq!(run.code, 0, "run {round}: {}", run.all());
        let s = stage(&p, &run.run_id());
        assert_eq!(metric(&s, "lint.errors"), 1.0, "run {round}: {}", run.all());
        assert_eq!(
            metric(&s, "lint.warnings"),
            1.0,
            "run {round}: {}",
            run.all()
        );
        assert_eq!(metric(&s, "lint.notes"), 1.0, "run {round}: {}", run.all());
        // The report is not itself linted (it is the stage's own output).
        assert!(
            !p.log(&run.run_id(), "lint").contains("reports/out.sarif:"),
            "run {round}"
        );
    }
    assert_eq!(
        p.read("reports/out.sarif"),
        canned_sarif(),
        "one log, not two"
    );

    // Read-only, the stage cannot remove the old report: the second run
    // fails, and says why and what to grant.
    let p = appending("read");
    let first = p.sluice(&["run"]);
    assert_eq!(first.code, 0, "{}", first.all());
    let second = p.sluice(&["run"]);
    assert_eq!(second.code, 1, "{}", second.all());
    let s = stage(&p, &second.run_id());
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not a SARIF 2.1.0 log"), "{reason}");
    assert!(
        reason.contains("could not be removed before the tool ran")
            && reason.contains("grant `workspace: write`"),
        "{reason}"
    );
}

#[test]
fn clippy_findings_in_macro_expansions_land_on_the_users_lines() {
    let p = project(
        "    grants: { workspace: read, exec: [cat] }\n    with:\n      builtin: false\n      external:\n        - { command: [cat, clippy.jsonl], format: clippy-json, cwd: macros, name: clippy }\n",
    );
    copy_tree(
        &repo_root().join("tests/fixtures/lint-project/macros"),
        &p.path().join("macros"),
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let id = run.run_id();
    let s = stage(&p, &id);
    assert_eq!(metric(&s, "lint.warnings"), 3.0, "{}", run.all());
    assert_eq!(metric(&s, "lint.files"), 1.0, "{}", run.all());
    let log = p.log(&id, "lint");
    for line in [20, 21, 22] {
        let want = format!(
            "macros/src/lib.rs:{line}:9 warning clippy::float_cmp strict comparison of `f32` or `f64` [clippy]"
        );
        assert!(log.contains(&want), "{want:?} missing:\n{log}");
    }
    assert!(!log.contains("/rustc/"), "{log}");
    assert!(!log.contains("macros/mod.rs"), "{log}");
    assert!(
        run.stdout
            .contains("3 warnings from clippy (external); built-in checks off"),
        "{}",
        run.all()
    );
}
