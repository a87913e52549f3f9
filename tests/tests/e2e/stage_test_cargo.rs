//! The `test` stage on a real `cargo test` (issue 19): libtest's stable
//! console output read into the same results a JUnit report gives.

use sluice_tests::{copy_tree, metric, plugin, repo_root, Project};

/// A project holding the small crate fixture (no dependencies: it builds
/// offline) and a pipeline running `cargo test` on it.
fn cargo_project(with: &str) -> Project {
    let p = Project::new();
    copy_tree(
        &repo_root().join("tests/fixtures/test-stage/cargo-crate"),
        &p.path().join("crate"),
    );
    let pipeline = format!(
        r#"version: 1
name: rust
stages:
  test:
    uses: {test}
    with:
{with}
    timeout: 10m
    # cargo writes target/ and Cargo.lock into the crate. It finds the
    # toolchain through PATH and HOME, which exec passes.
    grants: {{ workspace: write, exec: [cargo] }}
    gates:
      - {{ metric: tests.failed, max: 0 }}
"#,
        test = plugin("test").display()
    );
    p.write("sluice.yaml", &pipeline);
    p
}

#[test]
fn cargo_test_counts_passed_failed_and_ignored() {
    let p = cargo_project("      command: [cargo, test]\n      cwd: crate");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let id = run.run_id();
    let record = p.record(&id);
    let test = p.assert_stage(&record, &id, "test", "blocked");
    // `cargo test` prints: 1 passed; 1 failed; 1 ignored.
    assert_eq!(metric(test, "tests.passed"), 1.0);
    assert_eq!(metric(test, "tests.failed"), 1.0);
    assert_eq!(metric(test, "tests.skipped"), 1.0);
    assert_eq!(metric(test, "tests.not_run"), 0.0);
    assert_eq!(metric(test, "tests.total"), 3.0);

    let summary = test["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("1 passed, 1 failed, 1 skipped (3 tests in "),
        "{test:#}"
    );
    assert!(
        summary.contains(
            "- `sluice_fixture_cargo::tests::rounds_totals`: assertion `left == right` failed: \
             totals must round up (at src/lib.rs:20:9)"
        ),
        "{summary}"
    );
    assert!(
        test["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("tests.failed = 1"),
        "{test:#}"
    );

    // The stage writes the JUnit file itself, for the HTML report and CI.
    let junit = p.artifact(test, "junit.xml");
    assert!(
        junit
            .contains(r#"<testsuites name="sluice" tests="3" failures="1" errors="0" skipped="1""#),
        "{junit}"
    );
    assert!(
        junit.contains(
            r#"<testcase classname="sluice_fixture_cargo" name="tests::talks_to_the_database"><skipped/></testcase>"#
        ),
        "{junit}"
    );
    assert!(
        junit.contains(
            r#"<failure message="assertion `left == right` failed: totals must round up (at src/lib.rs:20:9)">checking the rounding of 7 + 3&#10;"#
        ),
        "{junit}"
    );
    let md = p.artifact(test, "test-summary.md");
    assert!(md.contains("| 1 | 1 | 1 | 0 | 3 |"), "{md}");
    assert!(md.contains("Reports: the output of `cargo test`"), "{md}");
    // cargo stopped at the failing target: the stage says so.
    assert!(
        p.log(&id, "test").contains("add `--no-fail-fast`"),
        "{}",
        p.log(&id, "test")
    );
}

#[test]
fn cargo_test_with_a_junit_path_hints_at_format_cargo() {
    let p = cargo_project(
        "      command: [cargo, test, --, --skip, rounds_totals]\n      cwd: crate\n      junit: crate/junit.xml",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let id = run.run_id();
    let record = p.record(&id);
    let test = p.assert_stage(&record, &id, "test", "failed");
    let reason = test["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("succeeded but wrote no JUnit report matching `crate/junit.xml`")
            && reason.contains("set `format: cargo`")
            && !reason.contains("pytest"),
        "{reason}"
    );
}

/// True when `cargo nextest` is installed on this machine.
fn nextest_installed() -> bool {
    std::process::Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn nextest_junit_with_skipped_tests_from_its_summary() {
    if !nextest_installed() {
        eprintln!("cargo-nextest is not installed; its JUnit shape is covered by unit tests");
        return;
    }
    let p = cargo_project(
        "      command: [cargo, nextest, run, --no-fail-fast]\n      cwd: crate\n      junit: crate/target/nextest/default/junit.xml",
    );
    p.write(
        "crate/.config/nextest.toml",
        "[profile.default.junit]\npath = \"junit.xml\"\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let id = run.run_id();
    let record = p.record(&id);
    let test = p.assert_stage(&record, &id, "test", "blocked");
    // nextest's JUnit lists the 2 tests that ran; the ignored one comes
    // from its `Summary ... 2 tests run: 1 passed, 1 failed, 1 skipped`.
    assert_eq!(metric(test, "tests.passed"), 1.0);
    assert_eq!(metric(test, "tests.failed"), 1.0);
    assert_eq!(metric(test, "tests.skipped"), 1.0);
    assert_eq!(metric(test, "tests.not_run"), 0.0);
    assert_eq!(metric(test, "tests.total"), 3.0);
    let junit = p.artifact(test, "junit.xml");
    assert!(junit.contains("nextest-run"), "{junit}");
}

#[test]
fn libtest_junit_documents_are_read_together() {
    let p = Project::new();
    p.write(
        "reports/junit.xml",
        &std::fs::read_to_string(repo_root().join("tests/fixtures/test-stage/libtest-junit.xml"))
            .expect("read fixture"),
    );
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: reports\nstages:\n  test:\n    uses: {}\n    with: {{ junit: reports/junit.xml }}\n    grants: {{ workspace: read }}\n",
            plugin("test").display()
        ),
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let id = run.run_id();
    let record = p.record(&id);
    let test = p.assert_stage(&record, &id, "test", "passed");
    // Three documents (unit, integration, doc-tests); the two ignored
    // tests are only in the suites' skipped= counts.
    assert_eq!(metric(test, "tests.passed"), 4.0);
    assert_eq!(metric(test, "tests.failed"), 3.0);
    assert_eq!(metric(test, "tests.skipped"), 2.0);
    assert_eq!(metric(test, "tests.total"), 9.0);
}
