//! The stage authors' kit (issue 22): `sluice stage test` on the fixture
//! plugin (what it prints, `--json`, `--expect`, `--input`, grants, and
//! every way it refuses), `sluice new stage` for each language from
//! template to a passing `sluice stage test --expect`, and `sluice new
//! pipeline` for the three project kinds, each accepted by `sluice
//! validate`.

use std::path::{Path, PathBuf};
use std::process::Command;

use insta::{assert_snapshot, Settings};
use serde_json::Value;
use sluice_tests::expect::Expect;
use sluice_tests::{plugin, repo_root, Project, Run};

/// Paths, run ids and digests blanked; the snapshots are in
/// `snapshots/authoring__*.snap`.
fn settings(p: &Project) -> Settings {
    let mut s = Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    let mut paths = vec![(p.root().to_path_buf(), "[tmp]"), (repo_root(), "[repo]")];
    for (path, name) in paths.clone() {
        if let Ok(c) = path.canonicalize() {
            paths.push((c, name));
        }
    }
    paths.sort_by_key(|(path, _)| std::cmp::Reverse(path.as_os_str().len()));
    for (path, name) in paths {
        s.add_filter(&regex::escape(&path.display().to_string()), name);
    }
    // Admission names a plugin relative to the generated pipeline's
    // temporary directory.
    s.add_filter(r"\.\./sluice-e2e-[A-Za-z0-9]+/", "../[tmp]/");
    s.add_filter(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b", "[run-id]");
    s.add_filter(r"sha256:[0-9a-f]{12,64}\b", "sha256:[digest]");
    s.add_filter(
        r"provenance\.intoto\.json \(\d+ B",
        "provenance.intoto.json ([size] B",
    );
    s
}

fn transcript(command: &str, run: &Run) -> String {
    format!(
        "$ {command}\nexit code: {}\n--- stdout\n{}--- stderr\n{}",
        run.code, run.stdout, run.stderr
    )
}

/// A project with the fixture plugin at `plugins/fixture.wasm` (signed: its
/// bundle is copied too) and a workspace `ws/` with one file.
fn project() -> Project {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("plugins")).expect("mkdir plugins");
    let fixture = plugin("fixture");
    std::fs::copy(&fixture, p.path().join("plugins/fixture.wasm")).expect("copy fixture");
    let bundle = fixture.with_file_name("fixture.wasm.sigstore.json");
    std::fs::copy(bundle, p.path().join("plugins/fixture.wasm.sigstore.json"))
        .expect("copy bundle");
    p.write("ws/notes.txt", "hello\n");
    p
}

/// `sluice stage test PLUGIN --with WITH EXTRA…` in `p`.
fn stage_test(p: &Project, plugin: &str, with: &str, extra: &[&str]) -> Run {
    p.sluice(&[&["stage", "test", plugin, "--with", with][..], extra].concat())
}

/// [`stage_test`] of the fixture plugin at `plugins/fixture.wasm`.
fn fixture_test(p: &Project, with: &str, extra: &[&str]) -> Run {
    stage_test(p, "plugins/fixture.wasm", with, extra)
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.all()))
}

const METRIC: &str = r#"{"mode": "metric", "metrics": {"demo.count": 3}, "gates": [{"name": "demo", "verdict": "pass", "message": "fine", "observed": 3, "threshold": 5}]}"#;

#[test]
fn stage_test_prints_the_report_gates_outputs_and_artifacts() {
    let p = project();
    p.write("config.json", METRIC);
    let run = fixture_test(&p, "config.json", &["--workspace", "ws"]);
    run.expect_code(0);
    // The log of the stage streams to stderr as it runs.
    run.expect_stderr("fixture mode `metric`");
    settings(&p).bind(|| {
        assert_snapshot!(
            "authoring__stage_test_passed",
            transcript(
                "sluice stage test plugins/fixture.wasm --with config.json --workspace ws",
                &run
            )
        )
    });
    // The record is a real run's, in the state directory.
    let id = run
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("log"))
        .and_then(|l| l.split("/runs/").nth(1))
        .and_then(|l| l.split('/').next())
        .expect("a log path with the run id")
        .to_owned();
    let record = p.record(&id);
    p.assert_stage(&record, &id, "fixture", "passed");
}

#[test]
fn stage_test_json_is_one_document_and_expect_checks_a_subset() {
    let p = project();
    let with = METRIC;
    let run = fixture_test(&p, with, &["--json"]);
    run.expect_code(0);
    let doc = json(&run);
    assert_eq!(doc["state"], "passed");
    assert_eq!(doc["metrics"]["demo.count"], 3.0);
    assert_eq!(doc["gates"]["demo"]["verdict"], "pass");
    assert_eq!(doc["plugin"]["name"], "fixture");
    assert!(
        Path::new(doc["log"].as_str().unwrap_or_default()).is_file(),
        "{doc:#}"
    );

    // --update writes a new expectation; it then holds.
    let run = fixture_test(&p, with, &["--expect", "expected.json", "--update"]);
    run.expect_code(0);
    let written: Value = serde_json::from_str(&p.read("expected.json")).expect("JSON");
    assert_eq!(written["metrics"]["demo.count"], 3.0, "{written:#}");
    assert!(written.get("run_id").is_none(), "{written:#}");
    let run = fixture_test(&p, with, &["--expect", "expected.json"]);
    run.expect_code(0).expect_stdout("checks hold");

    // A mismatch: exit 1, the differences by path.
    p.write(
        "expected.json",
        r#"{"metrics": {"demo.count": 2, "demo.other": 1}, "gates": {"demo": {"verdict": "pass"}}, "state": "passed"}"#,
    );
    let run = fixture_test(&p, with, &["--expect", "expected.json"]);
    run.expect_code(1);
    let expect_part: String = run
        .stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("expect"))
        .map(|l| format!("{l}\n"))
        .collect();
    settings(&p).bind(|| assert_snapshot!("authoring__stage_test_expect_mismatch", expect_part));
    let run = fixture_test(&p, with, &["--expect", "expected.json", "--json"]);
    run.expect_code(1);
    let doc = json(&run);
    assert_eq!(doc["expect"]["matched"], false);
    assert_eq!(
        doc["expect"]["mismatches"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn stage_test_inputs_are_upstream_artifacts() {
    let p = project();
    p.write_outside("data/report.json", b"{\"from\": \"upstream\"}\n");
    let input = format!(
        "build/dist/report.json={}",
        p.root().join("data/report.json").display()
    );
    let run = fixture_test(&p, r#"{"mode": "read"}"#, &["--input", &input, "--json"]);
    run.expect_code(0);
    let doc = json(&run);
    assert_eq!(doc["metrics"]["fixture.inputs"], 1.0, "{doc:#}");
    assert_eq!(
        doc["outputs"]["first"], "{\"from\": \"upstream\"}",
        "{doc:#}"
    );
    let log = std::fs::read_to_string(doc["log"].as_str().unwrap_or_default()).expect("log");
    assert!(log.contains("build/dist/report.json"), "{log}");

    // Malformed inputs are refused before anything runs.
    for (bad, says) in [
        ("build/report.json", "no `=FILE`"),
        ("build=x", "no `/NAME`"),
        ("Build/x=config.json", "not a valid stage name"),
        ("build/../x=config.json", "not a relative artifact name"),
        ("build/x=missing.json", "cannot read missing.json"),
        ("fixture/x=ws/notes.txt", "is the stage under test"),
    ] {
        let run = fixture_test(&p, r#"{"mode": "read"}"#, &["--input", bad]);
        assert_eq!(run.code, 2, "{bad}: {}", run.all());
        assert!(run.stderr.contains(says), "{bad}: {}", run.all());
        run.expect_stderr("--input");
    }
}

#[test]
fn stage_test_grants_use_the_pipeline_grammar() {
    let p = project();
    let exec = r#"{"mode": "exec", "program": "echo", "args": ["hi"]}"#;
    // Without the grant the call is denied: the stage fails (exit 1) and
    // the reason names the grant to add.
    let run = fixture_test(&p, exec, &[]);
    run.expect_code(1)
        .expect_stdout("stage `fixture` failed")
        .expect_stdout("grants.exec");
    let run = fixture_test(&p, exec, &["--grant", "exec=echo"]);
    run.expect_code(0).expect_stderr("hi");

    // A value the pipeline's grammar refuses is reported against the flag.
    for (flag, value) in [("--grant", "network=no-port"), ("--timeout", "600")] {
        let run = fixture_test(&p, exec, &[flag, value]);
        run.expect_code(2);
        assert!(
            run.stderr.starts_with(&format!("error: {flag} {value}: ")),
            "{}",
            run.all()
        );
    }
    let run = fixture_test(&p, exec, &["--grant", "sockets=all"]);
    run.expect_code(2).expect_stderr("`sockets` is not a grant");
}

#[test]
fn stage_test_a_failing_stage_exits_1() {
    let p = project();
    let run = fixture_test(
        &p,
        r#"{"mode": "fail", "message": "the database is down"}"#,
        &[],
    );
    run.expect_code(1);
    assert!(
        run.stdout.starts_with("stage `fixture` failed: ")
            && run.stdout.contains("the database is down"),
        "{}",
        run.all()
    );
}

#[test]
fn stage_test_refuses_bad_input_with_exit_2() {
    let p = project();
    // A missing plugin.
    let run = p.sluice(&["stage", "test", "plugins/missing.wasm"]);
    run.expect_code(2).expect_stderr("plugins/missing.wasm");
    // A file that is not a component.
    p.write("plugins/text.wasm", "not wasm at all\n");
    let run = p.sluice(&["stage", "test", "plugins/text.wasm", "--with", "{}"]);
    run.expect_code(2)
        .expect_stderr("text.wasm: the file is not a WebAssembly binary");

    // Config that is not JSON: the file, line and column.
    p.write(
        "bad.json",
        "{\n  \"mode\": \"pass\",\n  \"text\": oops\n}\n",
    );
    let bad_json = fixture_test(&p, "bad.json", &[]);
    bad_json.expect_code(2);
    // Config that breaks the plugin's schema: every problem, located.
    p.write(
        "schema.json",
        "{\n  \"mode\": \"nope\",\n  \"lines\": true\n}\n",
    );
    let schema = fixture_test(&p, "schema.json", &[]);
    schema.expect_code(2);
    let not_object = fixture_test(&p, "[1]", &[]);
    not_object.expect_code(2);
    settings(&p).bind(|| {
        assert_snapshot!(
            "authoring__stage_test_bad_config",
            [
                transcript(
                    "sluice stage test plugins/fixture.wasm --with bad.json",
                    &bad_json
                ),
                transcript(
                    "sluice stage test plugins/fixture.wasm --with schema.json",
                    &schema
                ),
                transcript(
                    "sluice stage test plugins/fixture.wasm --with '[1]'",
                    &not_object
                ),
            ]
            .join("\n")
        )
    });
    // --update needs --expect.
    let run = p.sluice(&["stage", "test", "plugins/fixture.wasm", "--update"]);
    run.expect_code(2);
}

#[test]
fn stage_test_an_operator_policy_refuses_an_unsigned_plugin() {
    let p = project();
    // The same component without its signature.
    std::fs::create_dir_all(p.path().join("unsigned")).expect("mkdir");
    std::fs::copy(plugin("fixture"), p.path().join("unsigned/fixture.wasm")).expect("copy");
    let policy = p.write_outside(
        "operator/policy.yaml",
        format!(
            "mode: enforce\nno-match: deny\nrules:\n  - name: demo-signed\n    match: [\"**/*.wasm\"]\n    authorities:\n      - key: {}\n",
            repo_root().join("dist/keys/demo.pub").display()
        )
        .as_bytes(),
    );
    let policy = policy.display().to_string();
    let with = r#"{"mode": "pass"}"#;
    let under_operator_policy = |file: &str| {
        p.sluice(&[
            "--operator-policy",
            &policy,
            "stage",
            "test",
            file,
            "--with",
            with,
        ])
    };
    under_operator_policy("unsigned/fixture.wasm")
        .expect_code(3)
        .expect_stderr("refused by the trust policy");
    // Signed by the demo key: admitted, and the output says by whom.
    under_operator_policy("plugins/fixture.wasm")
        .expect_code(0)
        .expect_stdout("signed by");
    // A policy given with --policy refuses it the same way.
    let run = stage_test(&p, "unsigned/fixture.wasm", with, &["--policy", &policy]);
    run.expect_code(3);
    // Without any policy, an unsigned build runs, with a note.
    let run = stage_test(&p, "unsigned/fixture.wasm", with, &[]);
    run.expect_code(0).expect_stdout("note: ");
}

// ---- sluice new stage ----

/// Runs a program in `dir`, panicking with its output if it fails.
fn sh(dir: &Path, program: &str, args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{program}: {e} (is it installed? scripts/setup-guest-toolchains.sh)")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{program} {} in {}:\n{text}",
        args.join(" "),
        dir.display()
    );
    text
}

/// `sluice new stage demo --lang LANG`, then its build.sh (with `env`),
/// then `sluice stage test … --expect test/expected.json`; returns the
/// project and the stage's directory.
fn new_built_stage(lang: &str, env: &[(&str, &Path)]) -> (Project, PathBuf) {
    let p = Project::new();
    let run = p.sluice(&["new", "stage", "demo", "--lang", lang]);
    run.expect_code(0).expect_stdout("next steps");
    let dir = p.path().join("demo");
    for file in [
        "build.sh",
        "README.md",
        "test/config.json",
        "test/expected.json",
        "wit/stage.wit",
        "wit/deps/io/io.wit",
    ] {
        assert!(dir.join(file).is_file(), "{lang}: no {file}");
    }
    sh(&dir, "./build.sh", &[], env);
    assert!(
        dir.join("demo.wasm").is_file(),
        "{lang}: build.sh wrote no demo.wasm"
    );
    let run = stage_test(
        &p,
        "demo/demo.wasm",
        "demo/test/config.json",
        &[
            "--workspace",
            "demo/test/workspace",
            "--expect",
            "demo/test/expected.json",
        ],
    );
    assert_eq!(run.code, 0, "{lang}: {}", run.all());
    assert!(run.stdout.contains("checks hold"), "{lang}: {}", run.all());
    (p, dir)
}

#[test]
fn new_stage_rust_builds_tests_and_passes_stage_test() {
    // The workspace's target directory: sluice-sdk and its dependencies
    // are compiled for wasm32-wasip2 once for the whole suite.
    let target = repo_root().join("target");
    let (_p, dir) = new_built_stage("rust", &[("CARGO_TARGET_DIR", &target)]);
    let out = sh(
        &dir,
        "cargo",
        &["test", "--quiet"],
        &[("CARGO_TARGET_DIR", &target)],
    );
    assert!(out.contains("test result: ok. 2 passed"), "{out}");
}

#[test]
fn new_stage_c_builds_tests_and_passes_stage_test() {
    let (p, dir) = new_built_stage("c", &[]);
    let out = sh(&dir, "./test.sh", &[], &[]);
    assert!(out.contains("logic tests passed"), "{out}");
    assert!(dir.join("sluice_stage.h").is_file());
    // Without --workspace the stage gets none: it says it was denied, and
    // the runner names the grant to add.
    let run = stage_test(&p, "demo/demo.wasm", "demo/test/config.json", &[]);
    run.expect_code(1).expect_stdout("workspace: read");
    // The expectation file is the stage's CI: a change shows as a diff.
    let run = stage_test(
        &p,
        "demo/demo.wasm",
        r#"{"suffix": ".md"}"#,
        &[
            "--workspace",
            "demo/test/workspace",
            "--expect",
            "demo/test/expected.json",
        ],
    );
    run.expect_code(1)
        .expect_stdout(r#"metrics."demo.files": expected 2, got 1"#);
}

#[test]
fn new_stage_python_builds_tests_and_passes_stage_test() {
    let (_p, dir) = new_built_stage("python", &[]);
    sh(&dir, "python3", &["-m", "pytest", "-q"], &[]);
}

#[test]
fn new_stage_js_builds_tests_and_passes_stage_test() {
    let toolchain = repo_root().join("examples/stages/javascript");
    let (_p, dir) = new_built_stage("js", &[("SLUICE_JS_TOOLCHAIN", &toolchain)]);
    sh(&dir, "node", &["--test"], &[]);
}

#[test]
fn new_stage_refuses_what_it_cannot_do() {
    let p = Project::new();
    let run = p.sluice(&["new", "stage", "Demo_Stage", "--lang", "c"]);
    run.expect_code(2).expect_stderr("uppercase");
    p.write("taken/file.txt", "x");
    let run = p.sluice(&["new", "stage", "demo", "--lang", "c", "--dir", "taken"]);
    run.expect_code(2)
        .expect_stderr("already exists and is not empty");
    assert_eq!(p.read("taken/file.txt"), "x");
    // An empty directory is fine.
    std::fs::create_dir(p.path().join("empty")).expect("mkdir");
    let run = p.sluice(&["new", "stage", "demo", "--lang", "c", "--dir", "empty"]);
    run.expect_code(0);
    assert!(p.path().join("empty/demo.c").is_file());
    // Rust needs the SDK by path: a directory that is not it is refused.
    let run = p.sluice(&[
        "new",
        "stage",
        "demo",
        "--lang",
        "rust",
        "--dir",
        "r",
        "--sdk-path",
        "taken",
    ]);
    run.expect_code(2).expect_stderr("--sdk-path");
    assert!(!p.path().join("r").exists());
    // By default, the SDK of the repository the binary was built from.
    let run = p.sluice(&["new", "stage", "demo", "--lang", "rust", "--dir", "r"]);
    run.expect_code(0);
    let manifest = p.read("r/Cargo.toml");
    let sdk = repo_root().join("plugin-sdk").canonicalize().expect("sdk");
    assert!(
        manifest.contains(&format!("path = \"{}\"", sdk.display())),
        "{manifest}"
    );
}

// ---- sluice new pipeline ----

fn new_pipeline_validates(files: &[(&str, &str)], kind: &str, expect_in_yaml: &[&str]) {
    let p = Project::new();
    for (rel, text) in files {
        p.write(rel, text);
    }
    let run = p.sluice(&["new", "pipeline"]);
    assert_eq!(run.code, 0, "{kind}: {}", run.all());
    run.expect_stdout(kind);
    let yaml = p.read("sluice.yaml");
    for needle in expect_in_yaml {
        assert!(yaml.contains(needle), "{kind}: no {needle} in\n{yaml}");
    }
    let run = p.sluice(&["validate"]);
    assert_eq!(run.code, 0, "{kind}: {}\n{yaml}", run.all());
    run.expect_stdout("is valid: 4 stages");
    // Never overwritten.
    let run = p.sluice(&["new", "pipeline"]);
    run.expect_code(2).expect_stderr("already exists");
}

#[test]
fn new_pipeline_for_python_with_pytest() {
    new_pipeline_validates(
        &[
            ("pyproject.toml", "[project]\nname = \"app\"\nversion = \"0.1.0\"\n\n[project.optional-dependencies]\ntest = [\"pytest\"]\n"),
            ("app/__init__.py", ""),
            ("tests/test_app.py", "def test_ok():\n    assert True\n"),
        ],
        "Python (pytest)",
        &["pytest", "junit: reports/junit.xml", "exec: [python3]"],
    );
}

#[test]
fn new_pipeline_for_rust_with_cargo() {
    new_pipeline_validates(
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"my-tool\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            ("src/main.rs", "fn main() {}\n"),
        ],
        "Rust (cargo)",
        &["format: cargo", "target/release/my-tool", "exec: [cargo]"],
    );
}

#[test]
fn new_pipeline_for_node_with_npm() {
    new_pipeline_validates(
        &[(
            "package.json",
            r#"{"name": "app", "version": "1.0.0", "scripts": {"test": "node --test"}}"#,
        )],
        "Node (npm)",
        &["--test-reporter=junit", "npm, pack", "exec: [npm]"],
    );
}

#[test]
fn new_pipeline_refuses_an_unknown_project_and_missing_plugins() {
    let p = Project::new();
    p.write("README.md", "nothing to build\n");
    let run = p.sluice(&["new", "pipeline"]);
    run.expect_code(2).expect_stderr("Cargo.toml");
    p.write("Cargo.toml", "[package]\nname = \"x\"\n");
    let run = p.sluice(&["new", "pipeline", "--plugins", "nowhere"]);
    run.expect_code(2).expect_stderr("--plugins");
    assert!(!p.path().join("sluice.yaml").exists());
    // --dir writes into another directory, plugins from --plugins.
    p.write("sub/package.json", r#"{"scripts": {"test": "jest"}}"#);
    let plugins = repo_root().join("dist/plugins");
    let run = p.sluice(&[
        "new",
        "pipeline",
        "--dir",
        "sub",
        "--plugins",
        &plugins.display().to_string(),
    ]);
    run.expect_code(0);
    assert!(p.read("sub/sluice.yaml").contains("command: [npm, test]"));
    let run = p.sluice(&["validate", "sub/sluice.yaml"]);
    run.expect_code(0);
}
