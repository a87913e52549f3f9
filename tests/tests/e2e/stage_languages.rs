//! Stages written in Python, JavaScript and C (`examples/stages/<lang>/`),
//! built from source with their real toolchains (each language's
//! `build.sh`, into `target/stage-languages/`) and run through the real
//! binary. A toolchain that is missing is installed once with
//! `scripts/setup-guest-toolchains.sh`; if it still cannot be had, the test
//! fails (it is never skipped).
//!
//! Each language has one test that runs its stage several times: the first
//! run compiles the component (seconds for the 15-20 MB Python and
//! JavaScript guests), later runs must load it from the shared compile
//! cache.
//!
//! The examples target WIT `sluice:stage@0.2.0`: they log through the `log`
//! import, report typed findings (which the runner writes as the stage's
//! `findings.sarif`), describe their artifacts with a role and annotations,
//! and return `denied(capability)`. The last test runs a 0.1 plugin
//! (`tests/plugins/legacy-v01`) next to the 0.2 C stage in one pipeline.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;
use sluice_tests::{gate, metric, repo_root, Project, Run};

/// A guest language: its directory under `examples/stages/`, the component
/// its `build.sh` writes, and the tools that must run (`TOOL --version`) or
/// files that must exist (names with a `/`) before building.
struct Lang {
    dir: &'static str,
    wasm: &'static str,
    tools: &'static [&'static str],
}

const PYTHON: Lang = Lang {
    dir: "python",
    wasm: "license-check.wasm",
    tools: &["componentize-py"],
};
const JAVASCRIPT: Lang = Lang {
    dir: "javascript",
    wasm: "package-policy.wasm",
    tools: &[
        "npm",
        "examples/stages/javascript/node_modules/.bin/componentize-js",
    ],
};
const C: Lang = Lang {
    dir: "c",
    wasm: "size-budget.wasm",
    tools: &["clang-19", "wit-bindgen", "/usr/lib/wasm32-wasi/libc.a"],
};

fn tool_present(tool: &str) -> bool {
    if tool.contains('/') {
        let p = Path::new(tool);
        return if p.is_absolute() {
            p.exists()
        } else {
            repo_root().join(p).exists()
        };
    }
    // `--version` rather than a PATH lookup: a pyenv shim is on PATH even
    // when the package behind it is not installed.
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs `scripts/setup-guest-toolchains.sh` at most once per test process.
fn setup_toolchains() {
    static SETUP: Mutex<Option<Result<(), String>>> = Mutex::new(None);
    let mut done = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    if done.is_none() {
        let out = Command::new("bash")
            .arg("scripts/setup-guest-toolchains.sh")
            .current_dir(repo_root())
            .output()
            .expect("run scripts/setup-guest-toolchains.sh");
        *done = Some(if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scripts/setup-guest-toolchains.sh failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        });
    }
    if let Some(Err(e)) = done.as_ref() {
        panic!("{e}");
    }
}

/// Builds the language's stage with its `build.sh` (installing the
/// toolchain first when a tool is missing) and returns the component.
fn build(lang: &Lang) -> PathBuf {
    if lang.tools.iter().any(|t| !tool_present(t)) {
        setup_toolchains();
        let missing: Vec<_> = lang.tools.iter().filter(|t| !tool_present(t)).collect();
        assert!(
            missing.is_empty(),
            "the {} toolchain is still missing {missing:?} after scripts/setup-guest-toolchains.sh",
            lang.dir
        );
    }
    // Built into target/ (`OUT=`), so the components next to the sources,
    // which `examples/stages/build-all.sh` signed, stay as they are.
    let out_dir = repo_root().join("target/stage-languages");
    std::fs::create_dir_all(&out_dir).expect("create target/stage-languages");
    let wasm = out_dir.join(lang.wasm);
    let _ = std::fs::remove_file(&wasm);
    let dir = repo_root().join("examples/stages").join(lang.dir);
    let out = Command::new("bash")
        .arg("build.sh")
        .env("OUT", &wasm)
        .current_dir(&dir)
        .output()
        .expect("run build.sh");
    assert!(
        out.status.success(),
        "examples/stages/{}/build.sh failed ({}):\n{}\n{}",
        lang.dir,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(wasm.is_file(), "build.sh did not write {}", wasm.display());
    wasm
}

fn python() -> &'static Path {
    static W: OnceLock<PathBuf> = OnceLock::new();
    W.get_or_init(|| build(&PYTHON))
}
fn javascript() -> &'static Path {
    static W: OnceLock<PathBuf> = OnceLock::new();
    W.get_or_init(|| build(&JAVASCRIPT))
}
fn c() -> &'static Path {
    static W: OnceLock<PathBuf> = OnceLock::new();
    W.get_or_init(|| build(&C))
}

/// A project with a one-stage pipeline `check` using `wasm` with the given
/// `with:` (a YAML flow mapping) and a read-only workspace.
fn project(wasm: &Path, with: &str) -> Project {
    let p = Project::new();
    set_pipeline(&p, wasm, with);
    p
}

fn set_pipeline(p: &Project, wasm: &Path, with: &str) {
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: languages\nstages:\n  check:\n    uses: {}\n    with: {with}\n    grants: {{ workspace: read }}\n",
            wasm.display()
        ),
    );
}

/// Runs the pipeline with `--json`; returns the run and the stage record.
fn run(p: &Project) -> (Run, Value) {
    let run = p.sluice(&["run", "--json"]);
    let id = run.run_id();
    let stage = p.record(&id)["stages"]["check"].clone();
    (run, stage)
}

/// The record of artifact `name` of a stage.
fn artifact_entry<'a>(stage: &'a Value, name: &str) -> &'a Value {
    stage["artifacts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == name))
        .unwrap_or_else(|| panic!("artifact {name} missing in {stage:#}"))
}

/// The text of artifact `name` of a stage, read from the CAS by its digest.
fn artifact_text(p: &Project, stage: &Value, name: &str) -> String {
    let a = artifact_entry(stage, name);
    let digest = a["digest"].as_str().unwrap_or_default();
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    assert_eq!(hex.len(), 64, "digest {digest}");
    p.state(&format!("cas/sha256/{}/{}", &hex[..2], &hex[2..]))
}

/// The JSON report artifact `name` of a stage: declared by the stage with
/// its media type and the role `report` (WIT 0.2 `artifact-info`).
fn artifact(p: &Project, stage: &Value, name: &str) -> Value {
    let a = artifact_entry(stage, name);
    assert_eq!(a["media_type"], "application/json", "{a:#}");
    assert_eq!(a["role"], "report", "{a:#}");
    serde_json::from_str(&artifact_text(p, stage, name))
        .unwrap_or_else(|e| panic!("artifact {name} is not JSON: {e}"))
}

/// One result of a stage's runner-written `findings.sarif`.
#[derive(Debug, PartialEq)]
struct SarifResult {
    rule: String,
    level: String,
    /// The location's artifact URI.
    uri: String,
    /// The region's start line, when the finding has one.
    line: Option<u64>,
}

/// The results of the stage's `findings.sarif` (written by the runner from
/// the report's typed findings), in order.
fn sarif_results(p: &Project, stage: &Value) -> Vec<SarifResult> {
    let sarif: Value = serde_json::from_str(&artifact_text(p, stage, "findings.sarif"))
        .unwrap_or_else(|e| panic!("findings.sarif is not JSON: {e}"));
    assert_eq!(sarif["version"], "2.1.0", "{sarif:#}");
    let runs = sarif["runs"].as_array().expect("SARIF runs");
    assert_eq!(runs.len(), 1, "{sarif:#}");
    runs[0]["results"]
        .as_array()
        .expect("SARIF results")
        .iter()
        .map(|r| {
            let loc = &r["locations"][0]["physicalLocation"];
            SarifResult {
                rule: r["ruleId"].as_str().unwrap_or_default().to_string(),
                level: r["level"].as_str().unwrap_or_default().to_string(),
                uri: loc["artifactLocation"]["uri"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                line: loc["region"]["startLine"].as_u64(),
            }
        })
        .collect()
}

/// A finding about a whole file: SARIF has no region for it.
fn whole_file(rule: &str, level: &str, uri: &str) -> SarifResult {
    SarifResult {
        rule: rule.into(),
        level: level.into(),
        uri: uri.into(),
        line: None,
    }
}

/// The `plugin_loaded` event of a `--json` run: (cached, millis).
fn plugin_loaded(run: &Run) -> (bool, u64) {
    let e = run
        .events()
        .into_iter()
        .find(|e| e["event"] == "plugin_loaded")
        .unwrap_or_else(|| panic!("no plugin_loaded event:\n{}", run.all()));
    (
        e["cached"].as_bool().unwrap_or(false),
        e["millis"].as_u64().unwrap_or(0),
    )
}

/// Without a workspace grant the stage returns its own `denied` error with
/// the capability (`workspace-read`); the runner names the grant to add.
fn assert_denied_without_workspace(p: &Project, wasm: &Path, with: &str) {
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: languages\nstages:\n  check:\n    uses: {}\n    with: {with}\n",
            wasm.display()
        ),
    );
    let (r, s) = run(p);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(s["state"], "failed", "{}", r.all());
    let reason = s["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("denied: ") && reason.contains("workspace: read"),
        "{reason}\n{}",
        r.all()
    );
}

#[test]
fn python_license_check() {
    let wasm = python();
    let p = project(
        wasm,
        r#"{ header: "SPDX-License-Identifier: MIT", include: ["*.py", ".rs"], exclude: ["vendor/*"], required: true }"#,
    );
    p.write("src/ok.py", "# SPDX-License-Identifier: MIT\nprint('ok')\n")
        .write(
            "src/lib.rs",
            "// Copyright\n// SPDX-License-Identifier: MIT\nfn f() {}\n",
        )
        .write("src/bad.py", "print('no header')\n")
        .write("vendor/third.py", "print('vendored')\n")
        .write("README.md", "not a source file\n");

    // A missing header with `required: true`: the stage's gate fails.
    let (r, s) = run(&p);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(s["state"], "blocked", "{}", r.all());
    assert_eq!(metric(&s, "license.missing"), 1.0, "{s:#}");
    assert_eq!(metric(&s, "license.checked"), 3.0, "{s:#}");
    let g = gate(&s, "license-header");
    assert_eq!(g["verdict"], "fail", "{g:#}");
    assert!(
        g["message"].as_str().unwrap_or("").contains("src/bad.py"),
        "{g:#}"
    );
    let report = artifact(&p, &s, "license-report.json");
    assert_eq!(
        report["missing"],
        serde_json::json!(["src/bad.py"]),
        "{report:#}"
    );
    assert_eq!(
        artifact_entry(&s, "license-report.json")["annotations"]["license.header"],
        "SPDX-License-Identifier: MIT",
        "{s:#}"
    );
    // One finding per file without the header, an error when required.
    assert_eq!(
        sarif_results(&p, &s),
        [whole_file("license-header", "error", "src/bad.py")],
        "{s:#}"
    );
    // Logged through `log` with a level, and progress per file.
    assert!(p
        .log(&r.run_id(), "check")
        .contains("missing header: src/bad.py"));
    assert!(
        r.events().iter().any(|e| e["event"] == "stage_progress"),
        "no stage_progress event:\n{}",
        r.all()
    );

    // Not required: the same finding only warns and the run passes; the
    // component now comes from the compile cache.
    set_pipeline(
        &p,
        wasm,
        r#"{ header: "SPDX-License-Identifier: MIT", include: ["*.py"] }"#,
    );
    let (r, s) = run(&p);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(gate(&s, "license-header")["verdict"], "warn", "{s:#}");
    assert_eq!(metric(&s, "license.missing"), 2.0, "{s:#}");
    assert_eq!(
        sarif_results(&p, &s),
        [
            whole_file("license-header", "warning", "src/bad.py"),
            whole_file("license-header", "warning", "vendor/third.py"),
        ],
        "{s:#}"
    );
    assert!(
        plugin_loaded(&r).0,
        "second run compiled again:\n{}",
        r.all()
    );

    // Fixed: everything passes.
    p.write("src/bad.py", "# SPDX-License-Identifier: MIT\n")
        .write("vendor/third.py", "# SPDX-License-Identifier: MIT\n");
    let (r, s) = run(&p);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(s["state"], "passed", "{}", r.all());
    assert_eq!(metric(&s, "license.missing"), 0.0, "{s:#}");
    assert_eq!(gate(&s, "license-header")["verdict"], "pass", "{s:#}");
    // It looked and found nothing: an empty SARIF run.
    assert_eq!(sarif_results(&p, &s), [], "{s:#}");

    assert_denied_without_workspace(&p, wasm, r#"{ header: "MIT" }"#);

    // A bad `with:` is refused against the plugin's config schema.
    set_pipeline(&p, wasm, "{ include: [\"*.py\"] }");
    let r = p.sluice(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("header"), "{}", r.all());
}

#[test]
fn javascript_package_policy() {
    let wasm = javascript();
    let p = project(
        wasm,
        r#"{ forbidden-dependencies: ["left-pad", "evil-*"], pin-versions: true, allowed-licenses: [MIT, Apache-2.0] }"#,
    );
    p.write(
        "package.json",
        r#"{ "name": "app", "version": "1.0.0", "license": "MIT",
             "dependencies": { "left-pad": "^1.3.0", "express": "4.19.2" },
             "devDependencies": { "evil-scripts": "1.0.0" } }"#,
    )
    .write(
        "web/package.json",
        r#"{ "name": "web", "version": "0.1.0", "license": "GPL-3.0" }"#,
    )
    .write("node_modules/x/package.json", "not even JSON");

    let (r, s) = run(&p);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(s["state"], "blocked", "{}", r.all());
    // left-pad forbidden + unpinned, evil-scripts forbidden, GPL license.
    assert_eq!(metric(&s, "policy.violations"), 4.0, "{s:#}");
    assert_eq!(metric(&s, "policy.files"), 2.0, "{s:#}");
    assert_eq!(gate(&s, "package-policy")["verdict"], "fail", "{s:#}");
    let report = artifact(&p, &s, "policy-report.json");
    let rules: Vec<&str> = report["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter_map(|v| v["rule"].as_str())
        .collect();
    assert_eq!(
        rules,
        [
            "forbidden-dependency",
            "unpinned",
            "forbidden-dependency",
            "license"
        ],
        "{report:#}"
    );
    assert!(p
        .log(&r.run_id(), "check")
        .contains("left-pad is forbidden"));
    // The same violations as findings, at the line of the dependency (or
    // of `license`).
    let at = |rule: &str, uri: &str, line: u64| SarifResult {
        rule: rule.into(),
        level: "error".into(),
        uri: uri.into(),
        line: Some(line),
    };
    assert_eq!(
        sarif_results(&p, &s),
        [
            at("forbidden-dependency", "package.json", 2),
            at("unpinned", "package.json", 2),
            at("forbidden-dependency", "package.json", 3),
            at("license", "web/package.json", 1),
        ],
        "{s:#}"
    );

    // Fixed: the policy holds, from the compile cache.
    p.write(
        "package.json",
        r#"{ "name": "app", "version": "1.0.0", "license": "MIT", "dependencies": { "express": "4.19.2" } }"#,
    )
    .write("web/package.json", r#"{ "name": "web", "version": "0.1.0", "license": "Apache-2.0" }"#);
    let (r, s) = run(&p);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(s["state"], "passed", "{}", r.all());
    assert_eq!(metric(&s, "policy.violations"), 0.0, "{s:#}");
    assert_eq!(gate(&s, "package-policy")["verdict"], "pass", "{s:#}");
    assert_eq!(sarif_results(&p, &s), [], "{s:#}");
    assert!(
        plugin_loaded(&r).0,
        "second run compiled again:\n{}",
        r.all()
    );

    // Errors thrown from JavaScript reach the runner as `stage-error`s.
    assert_denied_without_workspace(&p, wasm, "{}");

    // Unknown keys in `with:` are refused against the plugin's config schema.
    set_pipeline(&p, wasm, "{ pin-version: true }");
    let r = p.sluice(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("pin-version"), "{}", r.all());
}

#[test]
fn c_size_budget() {
    let wasm = c();
    let p = project(
        wasm,
        r#"{ budgets: [ { path: "dist/*.js", max-bytes: 6000 }, { path: "*.png", max-bytes: "1KiB" } ] }"#,
    );
    p.write("dist/app.js", &"a".repeat(5000))
        .write("dist/vendor/lib.js", &"v".repeat(3000))
        .write("assets/logo.png", &"p".repeat(100))
        .write("node_modules/big.js", &"n".repeat(9000));

    // dist/ holds 8000 bytes of JavaScript against a 6000-byte budget.
    let (r, s) = run(&p);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(s["state"], "blocked", "{}", r.all());
    assert_eq!(metric(&s, "size.total"), 8100.0, "{s:#}");
    assert_eq!(metric(&s, "size.over_budget"), 1.0, "{s:#}");
    let g = gate(&s, "size-budget");
    assert_eq!(g["verdict"], "fail", "{g:#}");
    assert!(
        g["message"]
            .as_str()
            .unwrap_or("")
            .contains("dist/*.js is 8000 bytes"),
        "{g:#}"
    );
    assert_eq!(s["outputs"]["size.0"], "8000", "{s:#}");
    assert_eq!(s["outputs"]["size.1"], "100", "{s:#}");
    let report = artifact(&p, &s, "size-report.json");
    assert_eq!(report["total-bytes"], 8100, "{report:#}");
    assert_eq!(report["budgets"][0]["over"], true, "{report:#}");
    assert_eq!(report["budgets"][1]["over"], false, "{report:#}");
    assert!(p
        .log(&r.run_id(), "check")
        .contains("OVER dist/*.js: 8000 of 6000 bytes"));
    // One finding for the exceeded budget, at its largest file.
    assert_eq!(
        sarif_results(&p, &s),
        [whole_file("size-budget", "error", "dist/app.js")],
        "{s:#}"
    );

    // Not enforced: it only warns, and the component comes from the cache.
    set_pipeline(
        &p,
        wasm,
        r#"{ budgets: [ { path: "dist/*", max-bytes: "4K" } ], enforce: false }"#,
    );
    let (r, s) = run(&p);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(gate(&s, "size-budget")["verdict"], "warn", "{s:#}");
    assert_eq!(metric(&s, "size.total"), 8000.0, "{s:#}");
    assert_eq!(
        sarif_results(&p, &s),
        [whole_file("size-budget", "warning", "dist/app.js")],
        "{s:#}"
    );
    assert!(
        plugin_loaded(&r).0,
        "second run compiled again:\n{}",
        r.all()
    );

    // Within budget: passes.
    set_pipeline(
        &p,
        wasm,
        r#"{ budgets: [ { path: "dist/*", max-bytes: 8000 } ] }"#,
    );
    let (r, s) = run(&p);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(s["state"], "passed", "{}", r.all());
    assert_eq!(metric(&s, "size.over_budget"), 0.0, "{s:#}");
    assert_eq!(sarif_results(&p, &s), [], "{s:#}");

    assert_denied_without_workspace(&p, wasm, r#"{ budgets: [ { path: "*", max-bytes: 1 } ] }"#);

    // A size the stage cannot read is its own invalid-config error.
    set_pipeline(
        &p,
        wasm,
        r#"{ budgets: [ { path: "dist/*", max-bytes: "lots" } ] }"#,
    );
    let r = p.sluice(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("with.budgets[0].max-bytes"), "{}", r.all());
}

/// A plugin built against WIT 0.1 (`tests/plugins/legacy-v01`, top-level
/// `describe`/`run`) and the 0.2 C stage (`plugin` interface) in one
/// pipeline: the runner serves both, the 0.2 stage reads the 0.1 stage's
/// artifact, and 0.1's `denied(string)` still reaches the record.
#[test]
fn wit_v01_plugin_next_to_v02_stage() {
    let wasm = c();
    let legacy = sluice_tests::plugin("legacy-v01");
    let p = Project::new();
    let pipeline = |legacy_with: &str| {
        format!(
            "version: 1\nname: languages\nstages:\n  old:\n    uses: {}\n    with: {legacy_with}\n    grants: {{ workspace: read }}\n  check:\n    uses: {}\n    needs: [old]\n    with: {{ budgets: [ {{ path: \"dist/*\", max-bytes: 100 }} ] }}\n    grants: {{ workspace: read }}\n",
            legacy.display(),
            wasm.display()
        )
    };
    p.write("sluice.yaml", &pipeline("{}"))
        .write("dist/app.js", &"a".repeat(50));

    let run = p.sluice(&["run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let id = run.run_id();
    let record = p.record(&id);
    let old = p.assert_stage(&record, &id, "old", "passed");
    assert_eq!(metric(old, "legacy.ok"), 1.0, "{old:#}");
    assert_eq!(old["outputs"]["wit"], "0.1.0", "{old:#}");
    let a = artifact_entry(old, "legacy.txt");
    assert_eq!(a["media_type"], "text/plain", "{a:#}");
    // 0.1 has no roles or annotations.
    assert!(a.get("role").is_none(), "{a:#}");
    assert_eq!(
        artifact_text(&p, old, "legacy.txt"),
        "built against sluice:stage@0.1.0\n"
    );
    assert!(
        p.log(&id, "old").contains("legacy-v01: stage old"),
        "{}",
        p.log(&id, "old")
    );
    // A 0.1 report has no findings: no SARIF is written for it.
    assert!(
        old["artifacts"]
            .as_array()
            .is_some_and(|a| a.iter().all(|a| a["name"] != "findings.sarif")),
        "{old:#}"
    );

    let check = p.assert_stage(&record, &id, "check", "passed");
    assert_eq!(metric(check, "size.total"), 50.0, "{check:#}");
    assert_eq!(sarif_results(&p, check), [], "{check:#}");

    // 0.1's `denied(string)`: the stage's own words.
    p.write("sluice.yaml", &pipeline("{ fail: true }"));
    let run = p.sluice(&["run", "--json"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let id = run.run_id();
    let record = p.record(&id);
    let old = p.assert_stage(&record, &id, "old", "failed");
    assert_eq!(
        old["reason"], "denied: network example.com:443 is not granted",
        "{old:#}"
    );
}
