//! Native CI output (issue 18, point 5; docs/ci.md): the real binary run
//! with the environment GitHub Actions and GitLab CI give a job, on a
//! pipeline whose `lint` stage reports SARIF findings (more errors than
//! GitHub annotates, and a message that tries to inject workflow commands)
//! and whose `test` stage reads a JUnit report with failed tests. The exact
//! output, job summary, step outputs and report files are snapshots
//! (`snapshots/ci_output_*.snap`).

use insta::{assert_snapshot, Settings};
use serde_json::{json, Value};
use sluice_tests::{plugin, repo_root, Project, Run};

/// Errors in the canned linter output: more than GitHub's 10 per step.
const ERRORS: usize = 12;

/// A message written to break out of its annotation: a `%`, line breaks
/// and workflow commands of its own.
const HOSTILE: &str = "100% sure\n::error file=evil.py::injected\r\n::endgroup::\n::add-mask::x";

/// The SARIF an external linter "prints" (`cat findings.sarif`).
fn sarif() -> String {
    let mut results: Vec<Value> = (1..=ERRORS)
        .map(|i| {
            json!({
                "ruleId": "E1",
                "level": "error",
                "message": { "text": format!("error number {i}") },
                "locations": [{ "physicalLocation": {
                    "artifactLocation": { "uri": "src/app.py" },
                    "region": { "startLine": i, "startColumn": 2 }
                }}]
            })
        })
        .collect();
    results.push(json!({
        "ruleId": "W,1:x",
        "level": "warning",
        "message": { "text": HOSTILE },
        "locations": [{ "physicalLocation": {
            "artifactLocation": { "uri": "src/a,b.py" },
            "region": { "startLine": 3 }
        }}]
    }));
    results.push(json!({
        "ruleId": "N1",
        "level": "note",
        "message": { "text": "consider this" }
    }));
    serde_json::to_string_pretty(&json!({
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": { "name": "canned", "rules": [
                { "id": "E1" }, { "id": "W,1:x" }, { "id": "N1" }
            ]}},
            "results": results
        }]
    }))
    .unwrap_or_default()
}

/// The project: `lint` (clean own checks, the canned SARIF merged in) and
/// `test` (the pytest fixture: 1 failure, 2 errors; a gate blocks on them).
fn project() -> Project {
    let p = Project::new();
    // Copied in, so no path of this machine is in the output.
    std::fs::create_dir_all(p.path().join("plugins")).expect("mkdir plugins");
    for name in ["lint", "test"] {
        std::fs::copy(plugin(name), p.path().join(format!("plugins/{name}.wasm")))
            .expect("copy plugin");
    }
    p.write("src/app.py", "print('hi')\n");
    p.write("findings.sarif", &sarif());
    let junit = std::fs::read_to_string(repo_root().join("tests/fixtures/test-stage/pytest.xml"))
        .expect("pytest fixture");
    p.write("reports/junit.xml", &junit);
    let pipeline = r#"version: 1
name: ci-output
stages:
  lint:
    uses: plugins/lint.wasm
    grants: { workspace: read, exec: [cat] }
    with:
      paths: [src]
      external:
        - { command: [cat, findings.sarif], format: sarif }
  test:
    uses: plugins/test.wasm
    needs: [lint]
    grants: { workspace: read }
    with:
      junit: reports/*.xml
    gates:
      - { metric: tests.failed, max: 0 }
"#;
    p.write("sluice.yaml", pipeline);
    p
}

/// What changes from machine to machine and run to run.
fn settings(p: &Project) -> Settings {
    let mut s = Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    for (path, name) in [(p.root().to_path_buf(), "[tmp]"), (repo_root(), "[repo]")] {
        for path in [path.clone(), path.canonicalize().unwrap_or(path)] {
            s.add_filter(&regex::escape(&path.display().to_string()), name);
        }
    }
    s.add_filter(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b", "[run-id]");
    s.add_filter(r"sha256:[0-9a-f]{12,64}\b", "sha256:[digest]");
    s.add_filter(
        r"(cached \(\d+ ms\)|compiled in \d+(\.\d+)?m?s)",
        "[cached or compiled]",
    );
    s.add_filter(r"\b\d+\.\d+s\b", "[duration]");
    s.add_filter(r"\b\d+(\.\d+)? (B|KiB|MiB|kB|KB|MB)\b", "[size]");
    s.add_filter(r"\(\d+ bytes\)", "([size] bytes)");
    s.add_filter(r"section_(start|end):\d+:", "section_$1:[unix-time]:");
    s.add_filter(r"ghadelimiter_[0-9a-f]+", "ghadelimiter_[hash]");
    // Where `cat` is and the cgroup of the stage's programs depend on the
    // machine.
    s.add_filter(r"(?m)^.*\[sluice\] exec: .*\n", "");
    s
}

/// Control characters made visible, so the snapshot shows them.
fn visible(text: &str) -> String {
    text.replace('\x1b', "␛").replace('\r', "␍")
}

fn run_in(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["run", "--jobs", "1"];
    all.extend_from_slice(args);
    p.sluice_env(&all, env)
}

/// Every line a GitHub runner would take as a workflow command (it trims
/// leading white space first).
fn commands(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("::"))
        .collect()
}

#[test]
fn github_actions_groups_annotations_summary_and_outputs() {
    let p = project();
    let summary = p.root().join("step-summary.md");
    let output = p.root().join("github-output");
    // Earlier steps' content must be kept: both files are appended to.
    std::fs::write(&summary, "earlier step\n").expect("write summary");
    let run = run_in(
        &p,
        &[],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", &summary.display().to_string()),
            ("GITHUB_OUTPUT", &output.display().to_string()),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    let stdout = &run.stdout;

    // The hostile message stays inside its one annotation line.
    let cmds = commands(stdout);
    for c in &cmds {
        let name = c.split([' ', ':']).nth(2).unwrap_or_default();
        assert!(
            ["group", "endgroup", "error", "warning", "notice"].contains(&name),
            "unexpected command {c:?} in\n{stdout}"
        );
    }
    assert!(
        stdout.contains(
            "::100%25 sure%0A::error file=evil.py::injected%0D%0A::endgroup::%0A::add-mask::x\n"
        ),
        "{stdout}"
    );
    assert!(
        !cmds.iter().any(|c| c.starts_with("::error file=evil.py")),
        "{stdout}"
    );
    assert!(
        !cmds.iter().any(|c| c.starts_with("::add-mask")),
        "{stdout}"
    );
    // GitHub's cap: 10 errors shown, the rest counted in one line.
    assert_eq!(cmds.iter().filter(|c| c.starts_with("::error")).count(), 10);
    assert!(
        stdout.contains("sluice: 5 findings were not annotated (5 errors)"),
        "{stdout}"
    );
    // Groups open and close in pairs, one per stage.
    assert_eq!(
        cmds.iter().filter(|c| c.starts_with("::group::")).count(),
        2
    );
    assert_eq!(cmds.iter().filter(|c| **c == "::endgroup::").count(), 2);

    let summary_text = std::fs::read_to_string(&summary).expect("summary written");
    assert!(summary_text.starts_with("earlier step\n"), "{summary_text}");
    let outputs = std::fs::read_to_string(&output).expect("outputs written");
    assert!(outputs.contains("\nstatus=failed\n"), "{outputs}");

    let s = settings(&p);
    s.bind(|| {
        assert_snapshot!("ci_output_github_stdout", stdout);
        assert_snapshot!("ci_output_github_step_summary", summary_text);
        assert_snapshot!("ci_output_github_output", outputs);
    });
}

#[test]
fn gitlab_ci_sections_and_report_files() {
    let p = project();
    let run = run_in(&p, &[], &[("GITLAB_CI", "true")]);
    assert_eq!(run.code, 1, "{}", run.all());
    let quality = p.read("sluice-reports/gl-code-quality-report.json");
    let junit = p.read("sluice-reports/junit.xml");
    let issues: Value = serde_json::from_str(&quality).expect("code quality is JSON");
    let issues = issues.as_array().expect("an array of issues");
    assert_eq!(issues.len(), ERRORS + 2, "{quality}");
    for i in issues {
        for key in ["description", "check_name", "fingerprint", "severity"] {
            assert!(i[key].is_string(), "{key} in {i:#}");
        }
        assert!(i["location"]["path"].is_string(), "{i:#}");
        assert!(i["location"]["lines"]["begin"].is_u64(), "{i:#}");
    }
    assert!(issues.iter().any(|i| i["description"] == HOSTILE));
    assert_eq!(junit.matches("<testcase ").count(), 9, "{junit}");

    // Another directory, by flag.
    let other = run_in(&p, &["--ci", "gitlab", "--ci-reports", "out/ci"], &[]);
    assert_eq!(other.code, 1, "{}", other.all());
    assert_eq!(p.read("out/ci/gl-code-quality-report.json"), quality);

    let s = settings(&p);
    s.bind(|| {
        assert_snapshot!("ci_output_gitlab_stdout", visible(&run.stdout));
        assert_snapshot!("ci_output_gitlab_code_quality", quality);
        assert_snapshot!("ci_output_gitlab_junit", junit);
    });
}

#[test]
fn plain_output_without_ci_or_with_ci_none() {
    let p = project();
    let plain = run_in(&p, &[], &[]);
    let forced_off = run_in(&p, &["--ci", "none"], &[("GITHUB_ACTIONS", "true")]);
    let by_env = run_in(
        &p,
        &[],
        &[("GITHUB_ACTIONS", "true"), ("SLUICE_CI", "none")],
    );
    for run in [&plain, &forced_off, &by_env] {
        assert_eq!(run.code, 1, "{}", run.all());
        assert!(commands(&run.stdout).is_empty(), "{}", run.all());
        assert!(!run.stdout.contains("section_start"), "{}", run.all());
    }
    assert!(!p.path().join("sluice-reports").exists());
    // The same text as a plain terminal sees, bar run ids and times.
    assert_eq!(filtered(&forced_off.stdout), filtered(&plain.stdout));
    assert_eq!(filtered(&by_env.stdout), filtered(&plain.stdout));
}

/// `text` with the run id and times blanked.
fn filtered(text: &str) -> String {
    let id = regex::Regex::new(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b").expect("regex");
    let dur = regex::Regex::new(r"\b\d+\.\d+s\b").expect("regex");
    let cached =
        regex::Regex::new(r"(cached \(\d+ ms\)|compiled in \d+(\.\d+)?m?s)").expect("regex");
    // Provenance holds times; the cgroup path holds the runner's pid.
    let digest = regex::Regex::new(r"sha256:[0-9a-f]+").expect("regex");
    let cgroup = regex::Regex::new(r"sluice-\d+-\d+").expect("regex");
    let t = id.replace_all(text, "[run-id]");
    let t = dur.replace_all(&t, "[d]");
    let t = digest.replace_all(&t, "[digest]");
    let t = cgroup.replace_all(&t, "[cgroup]");
    cached.replace_all(&t, "[c]").into_owned()
}

#[test]
fn json_stream_stays_pure_and_files_are_still_written() {
    let p = project();
    let output = p.root().join("github-output");
    let run = run_in(
        &p,
        &["--json"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_OUTPUT", &output.display().to_string()),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    for line in run.stdout.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not JSON: {line:?}"
        );
    }
    let outputs = std::fs::read_to_string(&output).expect("outputs written");
    assert!(
        outputs.contains(&format!("run_id={}\n", run.run_id())),
        "{outputs}"
    );
}
