//! Runner-written provenance (issue #14): no secret in it, the dirty-tree
//! marker, `--require-clean`, reserved `provenance.*` names, provenance for
//! every stage that publishes artifacts with its upstream inputs, and the
//! statement checked against the SLSA v1 schema
//! (`tests/fixtures/slsa/provenance-v1.schema.json`) and, signed, with the
//! npm `@sigstore/verify`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sluice_tests::{plugin, repo_root, sigstore_js, Project};

const SECRET: &str = "dt_9f3Kq7ZpL2mXv8Rw";
const PASSWORD: &str = "test-password";

/// `git` with a fixed identity and no user or system configuration.
fn git(p: &Project, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.org",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(p.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .expect("git must be installed for the provenance tests");
    assert!(status.success(), "git {args:?}");
}

/// A committed checkout with `src/app.txt` and an origin remote whose URL
/// carries a credential.
fn checkout(p: &Project) {
    p.write("src/app.txt", "v1\n");
    git(p, &["init", "-q"]);
    git(
        p,
        &[
            "remote",
            "add",
            "origin",
            "https://ci-bot:ghp_REMOTEPASSWORD@git.example.org/team/app.git",
        ],
    );
    git(p, &["add", "-A"]);
    git(p, &["commit", "-q", "-m", "init"]);
}

fn stage<'a>(record: &'a Value, name: &str) -> &'a Value {
    &record["stages"][name]
}

/// The CAS path of an artifact of `stage`.
fn blob(p: &Project, stage: &Value, name: &str) -> PathBuf {
    let a = stage["artifacts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == name))
        .unwrap_or_else(|| panic!("artifact {name} missing in {stage:#}"));
    let hex = a["digest"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("sha256:");
    assert_eq!(hex.len(), 64, "{a}");
    p.state_dir()
        .join(format!("cas/sha256/{}/{}", &hex[..2], &hex[2..]))
}

fn statement_of(p: &Project, stage: &Value) -> (String, Value) {
    let text =
        std::fs::read_to_string(blob(p, stage, "provenance.intoto.json")).expect("provenance blob");
    let value = serde_json::from_str(&text).expect("provenance is JSON");
    (text, value)
}

/// Validates against the hand-written SLSA v1 schema.
fn assert_slsa_v1(statement: &Value) {
    let path = repo_root().join("tests/fixtures/slsa/provenance-v1.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("schema")).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(statement)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not SLSA v1: {errors:#?}\n{statement:#}");
    // The schema has teeth: a relative builder id or a subject without a
    // digest is refused.
    let mut bad = statement.clone();
    bad["predicate"]["runDetails"]["builder"]["id"] = "runner-1".into();
    assert!(!validator.is_valid(&bad));
    let mut bad = statement.clone();
    bad["subject"][0] = serde_json::json!({ "name": "x" });
    assert!(!validator.is_valid(&bad));
}

fn deps(statement: &Value) -> Vec<Value> {
    statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn git_dep(statement: &Value) -> Value {
    deps(statement)
        .into_iter()
        .find(|d| d["digest"]["gitCommit"].is_string())
        .unwrap_or_else(|| panic!("no git dependency in {statement:#}"))
}

fn node_verify(file: &Path, bundle: &Path, key: &Path) -> (i32, String) {
    sluice_tests::node(
        &sigstore_js(),
        &[Path::new("verify.mjs"), file, bundle, key],
    )
}

#[test]
fn provenance_holds_no_secret_marks_a_dirty_tree_and_is_slsa_v1() {
    let p = Project::new();
    checkout(&p);
    let gen = p.sluice_env(
        &["key", "generate", "--out", "runner"],
        &[("SLUICE_KEY_PASSWORD", PASSWORD)],
    );
    assert_eq!(gen.code, 0, "{}", gen.all());
    // The keys and the pipeline are untracked; a tracked file is changed.
    p.write("src/app.txt", "v2, not committed\n");
    p.write(
        "sluice.yaml",
        "version: 1\nname: prov\nstages:\n  build:\n    uses: {hostile}\n    grants: { secrets: [DEPLOY_TOKEN] }\n    with:\n      mode: forge-git-head\n      token: \"${{ env.DEPLOY_TOKEN }}\"\n      literal: \"dt_9f3Kq7ZpL2mXv8Rw\"\n",
    );
    let run = p.sluice_env(
        &["run", "--provenance-key", "runner.key"],
        &[
            ("SLUICE_KEY_PASSWORD", PASSWORD),
            ("DEPLOY_TOKEN", SECRET),
            ("SLUICE_BUILDER_ID", "https://ci.example.org/runners/7"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    // Nothing the runner printed or stored holds the secret: not the
    // statement, not the signed bundle (checked decoded below).
    p.assert_nothing_contains(&run, SECRET.as_bytes());
    let record = p.record(&run.run_id());
    let build = stage(&record, "build");
    let (text, statement) = statement_of(&p, build);
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains("REMOTEPASSWORD"), "{text}");

    // `with` is the template the pipeline asked for.
    let with = &statement["predicate"]["buildDefinition"]["externalParameters"]["with"];
    assert_eq!(with["token"], "${{ env.DEPLOY_TOKEN }}", "{statement:#}");
    assert_eq!(with["literal"], "***", "{statement:#}");

    // The dirty tree is marked, with the changed file and a digest.
    let dep = git_dep(&statement);
    let notes = &dep["annotations"];
    assert_eq!(notes["dirty"], true, "{dep:#}");
    assert_eq!(notes["changedFiles"][0]["path"], "src/app.txt", "{dep:#}");
    assert_eq!(notes["changedFilesCount"], 1, "{dep:#}");
    assert!(
        notes["changedFilesDigest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{dep:#}"
    );
    assert_eq!(dep["uri"], "git+https://git.example.org/team/app.git");

    // Absolute URIs, no local path, the operator's builder id.
    assert_eq!(
        statement["predicate"]["runDetails"]["builder"]["id"],
        "https://ci.example.org/runners/7"
    );
    let root = p.root().display().to_string();
    assert!(!text.contains(&root), "a local path in {text}");
    assert!(!text.contains("\"file:"), "a file: URI in {text}");
    let plugin_uri = deps(&statement)[0]["uri"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        plugin_uri.starts_with("sluice:plugin/hostile@sha256:"),
        "{plugin_uri}"
    );
    assert_slsa_v1(&statement);

    // The signed bundle: DSSE verified by @sigstore/verify, and its payload
    // is the same secret-free statement.
    let bundle = blob(&p, build, "provenance.sigstore.json");
    let app = blob(&p, build, "app.bin");
    let (code, out) = node_verify(&app, &bundle, &p.path().join("runner.pub"));
    assert_eq!(code, 0, "{out}");
    let bundle: Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle).expect("bundle")).expect("JSON");
    let payload = bundle["dsseEnvelope"]["payload"].as_str().expect("payload");
    let decoded = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(payload.as_bytes())?;
            child.wait_with_output()
        })
        .expect("base64 -d");
    let signed: Value = serde_json::from_slice(&decoded.stdout).expect("payload is JSON");
    assert_eq!(signed, statement);
}

#[test]
fn a_plugin_writing_provenance_names_fails_with_a_clear_error() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: forge\nstages:\n  build:\n    uses: \"{}\"\n    grants: {{ workspace: write, exec: [sh] }}\n    with:\n      commands: [[sh, -c, \"echo forged > provenance.sigstore.json\"]]\n      outputs: [provenance.sigstore.json]\n",
            plugin("build").display()
        ),
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let record = p.record(&run.run_id());
    let build = stage(&record, "build");
    assert_eq!(build["state"], "failed", "{build:#}");
    let reason = build["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("`provenance.sigstore.json`")
            && reason.contains("reserved for the provenance the runner writes"),
        "{reason}"
    );
}

#[test]
fn a_non_build_stage_gets_provenance_listing_its_inputs() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: chain\nstages:\n  build:\n    uses: {hostile}\n    with: { mode: forge-git-head }\n  package:\n    uses: {fixture}\n    needs: [build]\n    with: { mode: pass }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    let package = stage(&record, "package");
    assert_ne!(package["plugin"]["kind"], "build", "{package:#}");
    let (_, statement) = statement_of(&p, package);
    assert_slsa_v1(&statement);
    let subjects: Vec<&str> = statement["subject"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(subjects.contains(&"greeting.txt"), "{statement:#}");
    let build = stage(&record, "build");
    let app = build["artifacts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "app.bin"))
        .expect("app.bin");
    let input = deps(&statement)
        .into_iter()
        .find(|d| d["name"] == "build/app.bin")
        .unwrap_or_else(|| panic!("build/app.bin not an input in {statement:#}"));
    assert_eq!(
        input["digest"]["sha256"],
        app["digest"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("sha256:")
    );
}

#[test]
fn require_clean_refuses_a_dirty_tree_before_any_stage() {
    let p = Project::new();
    p.write(
        "sluice.yaml",
        "version: 1\nname: clean\nstages:\n  build:\n    uses: {hostile}\n    with: { mode: forge-git-head }\n",
    );
    checkout(&p);
    // Clean: runs, and says so in the provenance.
    let run = p.sluice(&["run", "--require-clean"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    let (_, statement) = statement_of(&p, stage(&record, "build"));
    assert_eq!(git_dep(&statement)["annotations"]["dirty"], false);

    p.write("src/app.txt", "changed\n");
    let run = p.sluice(&["run", "--require-clean"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let all = run.all();
    assert!(
        all.contains("--require-clean") && all.contains("src/app.txt"),
        "{all}"
    );
    assert!(!all.contains("hostile mode"), "a stage ran: {all}");
    // Without the flag the same tree runs.
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
}
