//! The `test` and `build` reference stages on real commands, and the
//! quickstart example end to end.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sluice_tests::{metric, plugin, repo_root, Project};

/// A file of `tests/fixtures/test-stage/`.
fn fixture(name: &str) -> String {
    let path = repo_root().join("tests/fixtures/test-stage").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `p.write` with `{test}` and `{build}` replaced by the plugin paths.
fn write(p: &Project, rel: &str, text: &str) {
    let text = text
        .replace("{test}", &plugin("test").display().to_string())
        .replace("{build}", &plugin("build").display().to_string());
    p.write(rel, &text);
}

/// sha256 of a file, by the system's `sha256sum`.
fn sha256sum(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The artifact record `name` of a stage.
fn artifact<'a>(stage: &'a Value, name: &str) -> &'a Value {
    stage["artifacts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == name))
        .unwrap_or_else(|| panic!("artifact {name} missing in {stage:#}"))
}

/// The bytes of an artifact, read from the project's CAS by digest.
fn cas_text(p: &Project, artifact: &Value) -> String {
    let digest = artifact["digest"].as_str().unwrap_or_default();
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    assert_eq!(hex.len(), 64, "digest {digest}");
    p.state(&format!("cas/sha256/{}/{}", &hex[..2], &hex[2..]))
}

fn reason(stage: &Value) -> String {
    stage["reason"].as_str().unwrap_or_default().to_string()
}

#[test]
fn test_stage_reads_existing_reports() {
    let p = Project::new();
    p.write("reports/junit.xml", &fixture("pytest.xml"));
    p.write("reports/coverage.lcov", &fixture("coverage.lcov"));
    write(
        &p,
        "sluice.yaml",
        r#"version: 1
name: reports
stages:
  test:
    uses: {test}
    with:
      junit: reports/*.xml
      coverage: { path: reports/coverage.lcov }
    grants: { workspace: read }
    gates:
      - { metric: coverage.line, min: 70 }
"#,
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    let test = &record["stages"]["test"];
    assert_eq!(test["state"], "passed", "{test:#}");
    assert_eq!(metric(test, "tests.passed"), 4.0);
    assert_eq!(metric(test, "tests.failed"), 3.0);
    assert_eq!(metric(test, "tests.skipped"), 2.0);
    assert_eq!(metric(test, "tests.total"), 9.0);
    assert!((metric(test, "tests.duration_s") - 0.412).abs() < 1e-9);
    // 48 of 64 lines (see the fixture).
    assert_eq!(metric(test, "coverage.line"), 75.0);

    let junit = artifact(test, "junit.xml");
    assert_eq!(junit["media_type"], "application/xml");
    assert_eq!(cas_text(&p, junit), fixture("pytest.xml"));
    assert_eq!(artifact(test, "coverage.lcov")["media_type"], "text/plain");
    let summary = cas_text(&p, artifact(test, "test-summary.md"));
    assert!(
        summary.contains(
            "- `tests.test_pricing::test_bulk_discount_rounds_half_up`: AssertionError: assert Decimal('17.99') == Decimal('18.00')"
        ),
        "{summary}"
    );
    assert!(
        summary.contains("- `tests.test_broken` (error): collection failure"),
        "{summary}"
    );
    assert!(
        run.stdout.contains("4 passed, 3 failed, 2 skipped"),
        "{}",
        run.all()
    );
}

#[test]
fn test_stage_runs_the_command_and_a_gate_blocks_on_failures() {
    let p = Project::new();
    p.write("expected.xml", &fixture("pytest.xml"));
    // A stale report from an "earlier run" that the command replaces.
    p.write("reports/junit.xml", "<testsuite/>");
    write(
        &p,
        "sluice.yaml",
        r#"version: 1
name: tests
stages:
  test:
    uses: {test}
    with:
      command: [sh, -c, "echo running tests; cp expected.xml reports/junit.xml; exit 1"]
      junit: reports/junit.xml
      timeout: 30s
    grants: { workspace: write, exec: [sh] }
    gates:
      - { metric: tests.failed, max: 0 }
  deploy:
    uses: {fixture}
    needs: [test]
    with: { mode: pass }
"#,
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let id = run.run_id();
    let record = p.record(&id);
    let test = &record["stages"]["test"];
    assert_eq!(test["state"], "blocked", "{test:#}");
    assert_eq!(metric(test, "tests.failed"), 3.0);
    assert_eq!(metric(test, "tests.total"), 9.0);
    assert_eq!(record["stages"]["deploy"]["state"], "skipped");
    assert!(
        run.stdout
            .contains("tests.failed = 3 is above the maximum 0"),
        "{}",
        run.all()
    );
    // The exec really ran: its output is in the stage log.
    let log = p.log(&id, "test");
    assert!(log.contains("running tests"), "{log}");
    let summary = cas_text(&p, artifact(test, "test-summary.md"));
    assert!(
        summary.contains("tests.test_inventory::test_restock_writes_log` (error)"),
        "{summary}"
    );
}

#[test]
fn test_stage_failures_are_explained() {
    let p = Project::new();
    p.write("reports/junit.xml", &fixture("pytest.xml"));
    write(
        &p,
        "sluice.yaml",
        r#"version: 1
name: broken
stages:
  crash:
    uses: {test}
    with:
      command: [sh, -c, "echo 'ERROR: file or directory not found: tests/' >&2; exit 4"]
      junit: reports/junit.xml
    grants: { workspace: write, exec: [sh] }
  nogrant:
    uses: {test}
    with: { command: [python3, -m, pytest], junit: reports/junit.xml }
    grants: { workspace: write }
  typo:
    uses: {test}
    with: { junit: reports/junit.xml, coverage: { path: c.json } }
    grants: { workspace: read }
"#,
    );
    let run = p.sluice(&["run", "--keep-going"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());
    let crash = &record["stages"]["crash"];
    assert_eq!(crash["state"], "failed", "{crash:#}");
    let r = reason(crash);
    assert!(r.contains("exited 4 and wrote no JUnit report"), "{r}");
    assert!(r.contains("left from an earlier run"), "{r}");
    assert!(
        r.contains("ERROR: file or directory not found: tests/"),
        "{r}"
    );

    let nogrant = &record["stages"]["nogrant"];
    assert_eq!(nogrant["state"], "failed", "{nogrant:#}");
    let r = reason(nogrant);
    assert!(r.starts_with("denied: "), "{r}");
    assert!(r.contains("grants.exec"), "{r}");

    let r = reason(&record["stages"]["typo"]);
    assert!(
        r.starts_with("invalid config: with.coverage.format: "),
        "{r}"
    );
}

#[test]
fn build_stage_publishes_digests_outputs_and_provenance() {
    let p = Project::new();
    p.write("src/app.py", "print('hello')\n");
    p.write("app.toml", "[app]\nname = \"demo\"\nversion = \"2.4.1\"\n");
    write(
        &p,
        "sluice.yaml",
        r#"version: 1
name: builds
stages:
  build:
    uses: {build}
    with:
      commands:
        - [sh, -c, "mkdir -p out && tar czf out/app.tgz src"]
        - [sh, -c, "echo built > out/NOTES.txt"]
      outputs: [out/app.tgz, "out/*.txt"]
      version-file: { path: app.toml, regex: '^version = "(.+)"' }
    grants: { workspace: write, exec: [sh] }
  release:
    uses: {fixture}
    needs: [build]
    with:
      mode: pass
      text: "release ${{ stages.build.outputs.version }} ${{ stages.build.outputs.digest }}"
"#,
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    let build = &record["stages"]["build"];
    assert_eq!(build["state"], "passed", "{build:#}");

    let built = p.path().join("out/app.tgz");
    let digest = format!("sha256:{}", sha256sum(&built));
    let tgz = artifact(build, "out/app.tgz");
    assert_eq!(tgz["digest"], digest.as_str());
    assert_eq!(tgz["media_type"], "application/gzip");
    let size = std::fs::metadata(&built).expect("out/app.tgz").len();
    assert_eq!(tgz["size"], size);
    assert_eq!(artifact(build, "out/NOTES.txt")["media_type"], "text/plain");

    assert_eq!(build["outputs"]["version"], "2.4.1");
    assert_eq!(build["outputs"]["digest"], digest.as_str());
    assert_eq!(build["outputs"]["artifact"], "out/app.tgz");
    assert_eq!(metric(build, "build.artifacts"), 2.0);
    assert_eq!(metric(build, "build.bytes"), (size + 6) as f64);

    let manifest: Value =
        serde_json::from_str(&cas_text(&p, artifact(build, "build.json"))).expect("build.json");
    assert_eq!(manifest["version"], "2.4.1");
    assert_eq!(manifest["artifacts"][0]["digest"], digest.as_str());
    assert_eq!(manifest["commands"][1]["status"], 0);

    // The runner attests the build; its subjects carry the same digests.
    let provenance = artifact(build, "provenance.intoto.json");
    let statement: Value =
        serde_json::from_str(&cas_text(&p, provenance)).expect("provenance is JSON");
    let subject = statement["subject"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "out/app.tgz"))
        .unwrap_or_else(|| panic!("no subject out/app.tgz in {statement:#}"));
    assert_eq!(
        subject["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );

    // The outputs flowed into the later stage's config.
    let release = &record["stages"]["release"];
    assert_eq!(release["outputs"]["upstream.build.version"], "2.4.1");
    let greeting = cas_text(&p, artifact(release, "greeting.txt"));
    assert_eq!(greeting, format!("release 2.4.1 {digest}"));
}

#[test]
fn build_stage_stops_at_the_first_failing_command() {
    let p = Project::new();
    write(
        &p,
        "sluice.yaml",
        r#"version: 1
name: broken-build
stages:
  build:
    uses: {build}
    with:
      commands:
        - [sh, -c, "echo compiling; echo 'make: *** No rule to make target all' >&2; exit 2"]
        - [sh, -c, "touch second-ran"]
      outputs: [dist/*]
    grants: { workspace: write, exec: [sh] }
  nothing:
    uses: {build}
    with: { commands: [[sh, -c, "true"]], outputs: [dist/*.whl] }
    grants: { workspace: write, exec: [sh] }
"#,
    );
    let run = p.sluice(&["run", "--keep-going"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());
    let r = reason(&record["stages"]["build"]);
    assert!(r.starts_with("failed: build command 1 of 2 `sh -c"), "{r}");
    assert!(
        r.contains("exited 2:\nmake: *** No rule to make target all"),
        "{r}"
    );
    assert!(
        !p.path().join("second-ran").exists(),
        "the second command ran"
    );
    let r = reason(&record["stages"]["nothing"]);
    assert!(
        r.contains("with.outputs[0]: no file matches `dist/*.whl`"),
        "{r}"
    );
}

/// Copies `examples/quickstart` without what earlier runs generated.
pub(crate) fn copy_example(from: &Path, to: &Path) {
    const GENERATED: [&str; 6] = [
        ".sluice",
        ".pytest_cache",
        "__pycache__",
        "reports",
        "dist",
        ".coverage",
    ];
    for entry in std::fs::read_dir(from).expect("read example dir").flatten() {
        let name = entry.file_name();
        if GENERATED.iter().any(|g| name == *g) {
            continue;
        }
        let target: PathBuf = to.join(&name);
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_example(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Needs `python3` with pytest and pytest-cov
/// (`examples/quickstart/requirements-dev.txt`), and the lint and scan
/// plugins.
#[test]
fn quickstart_example_runs_end_to_end() {
    let p = Project::new();
    copy_example(&repo_root().join("examples/quickstart"), p.path());
    let dist = repo_root().join("dist/plugins");
    let pipeline = p
        .read("sluice.yaml")
        .replace("../../dist/plugins", &dist.display().to_string());
    p.write("sluice.yaml", &pipeline);
    // The example's policy trusts only the demo key the plugin build
    // generated; point it at that key from the copy.
    let keys = repo_root().join("dist/keys");
    let policy = p
        .read("sluice-policy.yaml")
        .replace("../../dist/keys", &keys.display().to_string());
    p.write("sluice-policy.yaml", &policy);

    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    for stage in ["lint", "test", "scan", "build"] {
        let state = &record["stages"][stage]["state"];
        assert!(
            state == "passed" || state == "warned",
            "{stage}: {state}\n{}",
            run.all()
        );
    }
    let test = &record["stages"]["test"];
    assert_eq!(metric(test, "tests.failed"), 0.0);
    assert!(metric(test, "tests.passed") >= 10.0);
    assert!(metric(test, "coverage.line") >= 80.0, "{test:#}");

    let build = &record["stages"]["build"];
    assert_eq!(build["outputs"]["version"], "0.3.0");
    let pyz = p.path().join("dist/quickstart.pyz");
    let digest = format!("sha256:{}", sha256sum(&pyz));
    assert_eq!(build["outputs"]["digest"], digest.as_str());
    assert_eq!(
        artifact(build, "dist/quickstart.pyz")["digest"],
        digest.as_str()
    );

    // The packaged application works.
    let out = std::process::Command::new("python3")
        .arg(&pyz)
        .args(["value", "data/inventory.csv"])
        .current_dir(p.path())
        .output()
        .expect("run the zipapp");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "4 items worth 1,105.80 EUR\n"
    );
}
