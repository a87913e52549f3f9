//! Whole-module tests: real files on disk through `load`, one per error kind,
//! each asserting the line and column the error points at.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{
    load, parse_str, GateSpec, OnFail, Pipeline, PipelineError, PluginRef, When, WorkspaceAccess,
};

/// A temporary pipeline directory with the plugins, workspace and policy
/// that the fixtures refer to.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("plugins")).expect("mkdir plugins");
        std::fs::create_dir_all(root.join("app")).expect("mkdir app");
        for plugin in ["lint", "test", "build", "deploy", "remediate"] {
            std::fs::write(root.join(format!("plugins/{plugin}.wasm")), b"\0asm")
                .expect("write plugin");
        }
        std::fs::write(root.join("sluice-policy.yaml"), "mode: enforce\n").expect("write policy");
        Fixture { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn load(&self, src: &str) -> Result<Pipeline, PipelineError> {
        let file = self.root().join("sluice.yaml");
        std::fs::write(&file, src).expect("write pipeline");
        load(&file)
    }
}

/// Loads `src` and expects an error at `line:column` whose message and hint
/// contain the given texts.
#[track_caller]
fn assert_error(src: &str, line: usize, column: usize, message: &str, hint: &str) {
    let fixture = Fixture::new();
    let err = match fixture.load(src) {
        Ok(_) => panic!("expected an error for:\n{src}"),
        Err(err) => err,
    };
    let rendered = err.to_string();
    let PipelineError::Invalid {
        line: got_line,
        column: got_column,
        message: got_message,
        hint: got_hint,
        ..
    } = &err
    else {
        panic!("expected an invalid-file error, got {rendered}");
    };
    assert_eq!(
        (*got_line, *got_column),
        (line, column),
        "wrong location:\n{rendered}"
    );
    assert!(
        got_message.contains(message),
        "message should contain {message:?}:\n{rendered}"
    );
    let got_hint = got_hint.as_deref().unwrap_or_default();
    assert!(
        got_hint.contains(hint),
        "hint should contain {hint:?}:\n{rendered}"
    );
    assert!(
        rendered.contains(&format!("sluice.yaml:{line}:{column}")),
        "{rendered}"
    );
}

const HEAD: &str = "version: 1\nname: demo\nstages:\n";

fn with_head(stages: &str) -> String {
    format!("{HEAD}{stages}")
}

#[test]
fn loads_a_full_pipeline() {
    let fixture = Fixture::new();
    let pipeline = fixture
        .load(include_str!("testdata/full.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let root = fixture.root();
    assert_eq!(pipeline.name, "shop-api");
    assert_eq!(pipeline.path, root.join("sluice.yaml"));
    assert_eq!(pipeline.dir, root);
    assert_eq!(pipeline.workspace, root.join("app"));
    assert_eq!(pipeline.policy, Some(root.join("sluice-policy.yaml")));
    assert!(pipeline.digest.starts_with("sha256:") && pipeline.digest.len() == 7 + 64);

    let names: Vec<&str> = pipeline.stages.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["lint", "test", "build", "deploy", "remediate"],
        "file order kept"
    );
    assert_eq!(
        pipeline.topo_order(),
        ["lint", "test", "build", "deploy", "remediate"]
    );
    let ancestors: Vec<String> = pipeline.ancestors("remediate").into_iter().collect();
    assert_eq!(ancestors, ["build", "deploy", "lint", "test"]);

    let lint = &pipeline.stages["lint"];
    assert_eq!(lint.uses, PluginRef::Path(root.join("plugins/lint.wasm")));
    assert_eq!(lint.with, serde_json::json!({ "paths": ["src", "tests"] }));
    assert_eq!(lint.grants.workspace, WorkspaceAccess::Read);
    // Defaults apply where the stage is silent.
    assert_eq!(lint.timeout, Duration::from_secs(20 * 60));
    assert_eq!(lint.grants.memory, 128 << 20);
    assert_eq!(lint.grants.output, 2 << 20);
    assert_eq!(lint.retries, 1);
    assert_eq!((lint.location.line, lint.location.column), (8, 3));

    let test = &pipeline.stages["test"];
    assert_eq!(
        test.uses,
        PluginRef::Path(root.join("plugins/test.wasm")),
        "`./` dropped"
    );
    assert_eq!(test.needs, ["lint"], "a single need may be a string");
    assert_eq!(test.grants.memory, 1 << 30);
    assert_eq!(test.grants.exec, ["cargo"]);
    assert_eq!(test.grants.env, ["HOME", "CARGO_HOME"]);
    assert_eq!(test.timeout, Duration::from_secs(5 * 60));
    assert_eq!(test.retries, 2);
    assert_eq!(
        test.gates,
        [
            GateSpec {
                metric: "tests.failed".into(),
                min: None,
                max: Some(0.0),
                equals: None,
                on_fail: OnFail::Block
            },
            GateSpec {
                metric: "coverage.line".into(),
                min: Some(80.0),
                max: None,
                equals: None,
                on_fail: OnFail::Warn
            },
            GateSpec {
                metric: "flaky".into(),
                min: None,
                max: None,
                equals: Some(0.0),
                on_fail: OnFail::Block
            },
        ]
    );

    let build = &pipeline.stages["build"];
    assert_eq!(
        build.grants.workspace,
        WorkspaceAccess::None,
        "deny by default"
    );
    assert_eq!(build.grants.network.len(), 3);
    assert_eq!(build.grants.secrets, ["NPM_TOKEN"]);
    assert_eq!(build.grants.output, 4 << 20);
    assert_eq!(build.with, serde_json::json!({}));

    let deploy = &pipeline.stages["deploy"];
    assert!(
        matches!(&deploy.uses, PluginRef::Oci(r) if r.to_string().starts_with("oci://ghcr.io/acme/deploy:1.2.0@sha256:"))
    );
    assert_eq!(
        deploy.uses.to_string(),
        format!("oci://ghcr.io/acme/deploy:1.2.0@sha256:{}", "a".repeat(64))
    );
    assert_eq!(deploy.environment.as_deref(), Some("production"));
    assert!(deploy.approval);
    assert_eq!(deploy.when, When::Success);

    let remediate = &pipeline.stages["remediate"];
    assert_eq!(remediate.when, When::Failure);
    assert!(!remediate.approval);
}

#[test]
fn the_artifact_cap_is_a_grant_with_a_default() {
    let fixture = Fixture::new();
    let src = "version: 1\nname: demo\ndefaults: { artifacts: 1GiB }\nstages:\n  a: { uses: plugins/lint.wasm }\n  b: { uses: plugins/lint.wasm, grants: { artifacts: 5MiB } }\n";
    let pipeline =
        parse_str(src, &fixture.root().join("sluice.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pipeline.stages["a"].grants.artifacts, 1 << 30);
    assert_eq!(pipeline.stages["b"].grants.artifacts, 5 << 20);
}

#[test]
fn built_in_defaults_and_relative_file_path() {
    let fixture = Fixture::new();
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n");
    let pipeline =
        parse_str(&src, &fixture.root().join("sluice.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let lint = &pipeline.stages["lint"];
    assert_eq!(lint.timeout, Duration::from_secs(600));
    assert_eq!(lint.grants.memory, 256 << 20);
    assert_eq!(lint.grants.output, 1 << 20);
    assert_eq!(lint.grants.artifacts, 10 << 30);
    assert_eq!(lint.retries, 0);
    assert_eq!(pipeline.workspace, fixture.root());
    assert_eq!(pipeline.policy, None);

    // A relative pipeline path resolves against the current directory.
    let relative = parse_str(
        "version: 1\nname: x\nstages:\n  a: { uses: oci://r.io/a:1 }\n",
        Path::new("sub/p.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(relative.path, PathBuf::from("sub/p.yaml"));
    assert_eq!(relative.dir, cwd.join("sub"));
}

#[test]
fn digest_is_sha256_of_the_bytes() {
    let fixture = Fixture::new();
    let src = with_head("  a: { uses: oci://r.io/a:1 }\n");
    let pipeline = fixture.load(&src).unwrap_or_else(|e| panic!("{e}"));
    use sha2::Digest as _;
    let expected = hex::encode(sha2::Sha256::digest(src.as_bytes()));
    assert_eq!(pipeline.digest, format!("sha256:{expected}"));
}

#[test]
fn unknown_key_at_top_level() {
    let src = "version: 1\nname: demo\nstage:\n  a: { uses: x }\n";
    assert_error(
        src,
        3,
        1,
        "unknown field `stage`, expected one of",
        "did you mean `stages`?",
    );
}

#[test]
fn unknown_key_in_a_stage() {
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    need: [x]\n");
    assert_error(
        &src,
        6,
        5,
        "stages.lint: unknown field `need`",
        "did you mean `needs`?",
    );
}

#[test]
fn unknown_key_in_grants() {
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    grants:\n      timeout: 5m\n");
    assert_error(
        &src,
        7,
        7,
        "stages.lint.grants: unknown field `timeout`",
        "set on the stage itself",
    );
    let src = with_head(
        "  lint:\n    uses: plugins/lint.wasm\n    grants: { workspace: read, netwrk: [] }\n",
    );
    assert_error(
        &src,
        6,
        32,
        "unknown field `netwrk`",
        "did you mean `network`?",
    );
}

#[test]
fn unknown_key_in_a_gate() {
    let src = with_head(
        "  lint:\n    uses: plugins/lint.wasm\n    gates:\n      - { metric: x, maximum: 1 }\n",
    );
    assert_error(
        &src,
        7,
        22,
        "stages.lint.gates[0]: unknown field `maximum`",
        "",
    );
}

#[test]
fn unknown_need_suggests_the_closest_stage() {
    let src = with_head(
        "  lint: { uses: plugins/lint.wasm }\n  build: { uses: plugins/build.wasm }\n  deploy:\n    uses: plugins/deploy.wasm\n    needs: [lint, biuld]\n",
    );
    assert_error(
        &src,
        8,
        19,
        "stage `deploy` needs `biuld`, which is not a stage in this pipeline",
        "did you mean `build`? Stages are: lint, build, deploy",
    );
    // A single-string `needs` points at the string.
    let src = with_head("  lint: { uses: plugins/lint.wasm }\n  deploy:\n    uses: plugins/deploy.wasm\n    needs: package\n");
    assert_error(&src, 7, 12, "needs `package`", "stages are: lint, deploy");
}

#[test]
fn renders_an_unknown_need_like_rustc() {
    let fixture = Fixture::new();
    let src = with_head("  build: { uses: plugins/build.wasm }\n  deploy:\n    uses: plugins/deploy.wasm\n    needs: [biuld]\n");
    let file = fixture.root().join("sluice.yaml");
    std::fs::write(&file, &src).expect("write");
    let err = load(&file).err().map(|e| e.to_string()).unwrap_or_default();
    let expected = format!(
        "error: stage `deploy` needs `biuld`, which is not a stage in this pipeline
 --> {}:7:13
  |
7 |     needs: [biuld]
  |             ^
  = help: did you mean `build`? Stages are: build, deploy",
        file.display()
    );
    assert_eq!(err, expected);
}

#[test]
fn cycle_is_named_in_full() {
    let src = with_head(
        "  a: { uses: plugins/lint.wasm, needs: [c] }\n  b: { uses: plugins/lint.wasm, needs: [a] }\n  c:\n    uses: plugins/lint.wasm\n    needs: [b]\n",
    );
    assert_error(
        &src,
        5,
        41,
        "`needs` form a cycle: a -> c -> b -> a",
        "remove one of these",
    );
}

#[test]
fn self_need() {
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    needs: [lint]\n");
    assert_error(&src, 6, 13, "stage `lint` needs itself", "remove `lint`");
}

#[test]
fn bad_duration() {
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    timeout: 10 minutez\n");
    assert_error(
        &src,
        6,
        14,
        "`10 minutez` is not a duration: unknown unit `minutez`",
        "`10m`",
    );
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    timeout: 600\n");
    assert_error(&src, 6, 14, "`600` has no unit", "`600s`");
    let src = "version: 1\nname: demo\ndefaults:\n  timeout: 0s\nstages:\n  a: { uses: plugins/lint.wasm }\n";
    assert_error(src, 4, 12, "a timeout of zero", "positive duration");
}

/// Issue 16: humantime panicked (`overflow in Duration::new`) on a sum of
/// durations beyond `u64::MAX` seconds, so `sluice validate` crashed
/// instead of pointing at the value.
#[test]
fn duration_overflow_is_a_located_error() {
    for (text, column) in [
        ("18446744073709551615s 500ms 500ms", 14),
        ("99999999999999999999h", 14),
    ] {
        let src = with_head(&format!(
            "  lint:\n    uses: plugins/lint.wasm\n    timeout: {text}\n"
        ));
        assert_error(
            &src,
            6,
            column,
            &format!("`{text}` is not a duration: the number is too large"),
            "`10m`",
        );
    }
    let src = "version: 1\nname: demo\ndefaults: { timeout: 213503982334602d }\nstages:\n  a: { uses: plugins/lint.wasm }\n";
    assert_error(src, 3, 22, "the number is too large", "`90s`");
}

#[test]
fn bad_size() {
    let src = "version: 1\nname: demo\ndefaults: { memory: 256 MegaBytes }\nstages:\n  a: { uses: plugins/lint.wasm }\n";
    assert_error(
        src,
        3,
        21,
        "`256 MegaBytes` is not a size: unknown unit `MegaBytes`",
        "`256MiB`",
    );
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    grants:\n      output: 0\n");
    assert_error(&src, 7, 15, "`0` is zero", "positive size");
}

#[test]
fn memory_above_four_gib() {
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    grants:\n      memory: 5GiB\n");
    assert_error(
        &src,
        7,
        15,
        "memory limit `5GiB` is more than the 4GiB a stage may use",
        "at most `4GiB`",
    );
}

#[test]
fn missing_plugin_file() {
    let src = with_head("  lint:\n    uses: plugins/lnit.wasm\n");
    assert_error(
        &src,
        5,
        11,
        "plugin `plugins/lnit.wasm` does not exist (looked for `",
        "relative to the pipeline file's directory",
    );
    let src = with_head("  lint:\n    uses: plugins\n");
    assert_error(&src, 5, 11, "plugin `plugins` is not a file", "");
    let src = with_head("  lint:\n    uses: https://example.com/lint.wasm\n");
    assert_error(
        &src,
        5,
        11,
        "neither a plugin path nor an `oci://` reference",
        "oci://",
    );
    let src = with_head("  lint:\n    uses: oci://ghcr.io/acme/lint\n");
    assert_error(&src, 5, 11, "neither a tag nor a digest", "@sha256:");
}

#[test]
fn bad_stage_name() {
    let src = with_head(
        "  lint: { uses: plugins/lint.wasm }\n  Deploy_Prod:\n    uses: plugins/deploy.wasm\n",
    );
    assert_error(
        &src,
        5,
        3,
        "`Deploy_Prod` is not a valid stage name",
        "lowercase letters",
    );
}

#[test]
fn bad_pipeline_header() {
    assert_error(
        "version: 2\nname: demo\nstages: {}\n",
        1,
        10,
        "unsupported pipeline file version `2`",
        "`version: 1`",
    );
    assert_error(
        "version: 1\nname: Demo App\nstages: {}\n",
        2,
        7,
        "`Demo App` is not a valid pipeline name",
        "lowercase",
    );
    assert_error(
        "version: 1\nname: demo\nstages: {}\n",
        3,
        9,
        "the pipeline has no stages",
        "add at least one stage",
    );
    assert_error(
        "name: demo\nstages: {}\n",
        1,
        1,
        "missing field `version`",
        "add `version: 1`",
    );
    assert_error(
        "# nothing yet\n",
        1,
        1,
        "the pipeline file is empty",
        "start with `version: 1`",
    );
    let src =
        "version: 1\nname: demo\nworkspace: missing\nstages:\n  a: { uses: plugins/lint.wasm }\n";
    assert_error(
        src,
        3,
        12,
        "workspace `missing` is not a directory",
        "create the directory",
    );
    let src =
        "version: 1\nname: demo\npolicy: nope.yaml\nstages:\n  a: { uses: plugins/lint.wasm }\n";
    assert_error(
        src,
        3,
        9,
        "policy file `nope.yaml` not found",
        "fix the path",
    );
}

#[test]
fn bad_network_pattern() {
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    grants:\n      network: [\"api.example.com:443\", api.example.com]\n");
    assert_error(
        &src,
        7,
        40,
        "`api.example.com` is not a valid network pattern: it has no port",
        "host:port",
    );
}

#[test]
fn exec_with_a_slash() {
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    grants:\n      exec:\n        - cargo\n        - /usr/bin/npm\n");
    assert_error(
        &src,
        9,
        11,
        "`/usr/bin/npm` must be a bare program name",
        "write `npm`",
    );
}

#[test]
fn bad_env_and_secret_names() {
    let src = with_head(
        "  lint:\n    uses: plugins/lint.wasm\n    grants: { env: [HOME], secrets: [npm-token] }\n",
    );
    assert_error(
        &src,
        6,
        38,
        "`npm-token` is not a valid secret name",
        "[A-Za-z_]",
    );
}

#[test]
fn gate_without_bounds() {
    let src = with_head("  test:\n    uses: plugins/test.wasm\n    gates:\n      - { metric: a, max: 1 }\n      - metric: tests.failed\n        on-fail: warn\n");
    assert_error(
        &src,
        8,
        9,
        "gate `tests.failed` has no threshold",
        "at least one of `min`, `max` or `equals`",
    );
    let src = with_head(
        "  test:\n    uses: plugins/test.wasm\n    gates: [{ metric: cov, min: 90, max: 80 }]\n",
    );
    assert_error(&src, 6, 33, "`min` (90) is greater than `max` (80)", "swap");
}

#[test]
fn template_referencing_a_non_ancestor() {
    let src = with_head(
        "  build: { uses: plugins/build.wasm }\n  test: { uses: plugins/test.wasm }\n  deploy:\n    uses: plugins/deploy.wasm\n    needs: [build]\n    with:\n      image: \"shop:${{ stages.build.outputs.tag }}-${{ stages.test.outputs.id }}\"\n",
    );
    assert_error(
        &src,
        10,
        52,
        "stage `deploy` does not need `test`",
        "add `test` to `needs` of stage `deploy`",
    );
    // Transitive ancestors are fine.
    let fixture = Fixture::new();
    let ok = with_head(
        "  lint: { uses: plugins/lint.wasm }\n  build: { uses: plugins/build.wasm, needs: lint }\n  deploy:\n    uses: plugins/deploy.wasm\n    needs: [build]\n    with: { v: \"${{ stages.lint.outputs.v }}\" }\n",
    );
    assert!(fixture.load(&ok).is_ok());
}

#[test]
fn template_syntax_error() {
    let src = with_head("  deploy:\n    uses: plugins/deploy.wasm\n    with:\n      args: [\"--id\", \"${{ run.id }\"]\n");
    assert_error(
        &src,
        7,
        23,
        "`${{ run.id }` is not closed",
        "end the expression with `}}`",
    );
    let src = with_head("  deploy:\n    uses: plugins/deploy.wasm\n    with:\n      token: ${{ secrets.NPM_TOKEN }}\n");
    assert_error(&src, 7, 14, "secrets cannot be templated", "grants.secrets");
}

#[test]
fn failure_handler_without_needs() {
    let src = with_head("  lint: { uses: plugins/lint.wasm }\n  remediate:\n    uses: plugins/remediate.wasm\n    when: failure\n");
    assert_error(
        &src,
        7,
        11,
        "runs `when: failure` but needs no stage",
        "a failure handler must name the stages it watches in `needs`",
    );
}

#[test]
fn other_stage_errors() {
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    with: [a, b]\n");
    assert_error(
        &src,
        6,
        11,
        "`with` of stage `lint` must be a mapping",
        "with: {",
    );
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    retries: 11\n");
    assert_error(
        &src,
        6,
        14,
        "`retries: 11` is more than the 10 allowed",
        "from 0 to 10",
    );
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    grants: { workspace: rw }\n");
    assert_error(
        &src,
        6,
        26,
        "unknown variant `rw`, expected one of `none`, `read`, `write`",
        "listed above",
    );
    let src = with_head("  lint:\n    with: {}\n");
    assert_error(
        &src,
        5,
        5,
        "stages.lint: missing field `uses`",
        "add `uses:`",
    );
    let src =
        with_head("  lint: { uses: plugins/lint.wasm }\n  lint: { uses: plugins/build.wasm }\n");
    assert_error(
        &src,
        5,
        3,
        "`lint` appears twice in `stages`",
        "first one is at line 4",
    );
    let src = with_head(
        "  a: { uses: plugins/lint.wasm }\n  b: { uses: plugins/lint.wasm, needs: [a, a] }\n",
    );
    assert_error(
        &src,
        5,
        44,
        "stage `b` needs `a` twice",
        "remove the repeated entry",
    );
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    needs: [\n");
    assert_error(
        &src,
        6,
        13,
        "did not find expected node content",
        "fix the YAML",
    );
    let src = format!("{HEAD}\tlint: {{ uses: plugins/lint.wasm }}\n");
    assert_error(&src, 4, 1, "cannot start any token", "indent with spaces");
}

#[test]
fn unreadable_files() {
    let fixture = Fixture::new();
    let missing = fixture.root().join("nope.yaml");
    let err = load(&missing).err();
    assert!(matches!(&err, Some(PipelineError::Io { file, .. }) if file == &missing));
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("nope.yaml"), "{text}");
    assert!(text.contains("os error"), "{text}");
    assert!(text.contains("help: check the path"), "{text}");

    let latin1 = fixture.root().join("latin1.yaml");
    std::fs::write(&latin1, b"version: 1\nname: caf\xe9\n").expect("write");
    let err = load(&latin1).err();
    assert_eq!(
        err.as_ref().and_then(PipelineError::location),
        Some(crate::Location {
            line: 2,
            column: 10
        })
    );
    assert!(err.is_some_and(|e| e.to_string().contains("not valid UTF-8")));
}

#[test]
fn timeouts_are_at_most_seven_days() {
    let fixture = Fixture::new();
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    timeout: 7d\n");
    let pipeline = fixture.load(&src).expect("7d is allowed");
    assert_eq!(pipeline.stages["lint"].timeout, crate::MAX_TIMEOUT);
    // Used to pass validation and then panic adding it to the clock.
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    timeout: 200000000000000d\n");
    assert_error(
        &src,
        6,
        14,
        "timeout `200000000000000d` is longer than the 7 days",
        "use at most `7d`",
    );
    let src = "version: 1\nname: demo\ndefaults: { timeout: 169h }\nstages:\n  a: { uses: plugins/lint.wasm }\n";
    assert_error(src, 3, 22, "timeout `169h` is longer", "at most `7d`");
}

#[test]
fn a_byte_order_mark_is_ignored_but_kept_in_the_digest() {
    use sha2::{Digest, Sha256};
    let fixture = Fixture::new();
    let src = with_head("  lint: { uses: plugins/lint.wasm }\n");
    let file = fixture.root().join("sluice.yaml");
    let bytes = [b"\xef\xbb\xbf".as_slice(), src.as_bytes()].concat();
    std::fs::write(&file, &bytes).expect("write");
    let pipeline = load(&file).expect("a BOM is accepted");
    assert_eq!(pipeline.name, "demo");
    assert_eq!(
        pipeline.digest,
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
    );
    // Errors still point at the right line and column.
    let bad = format!("\u{feff}{HEAD}  lint: {{ uses: plugins/lint.wasm, needs: [x] }}\n");
    assert_error(&bad, 4, 44, "needs `x`", "stages are: lint");
}

#[test]
fn special_and_oversized_files_are_refused_by_name() {
    let fixture = Fixture::new();
    let fifo = fixture.root().join("fifo.yaml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let zero = fixture.root().join("zero.yaml");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
    let big = fixture.root().join("big.yaml");
    std::fs::write(&big, vec![b'#'; (1 << 20) + 1]).expect("write");
    for (path, says) in [
        (&fifo, "is a FIFO (named pipe), not a regular file"),
        (&zero, "is a character device, not a regular file"),
        (&big, "more than the 1 MiB sluice reads for a pipeline file"),
    ] {
        let err = load(path).err();
        assert!(matches!(err, Some(PipelineError::Input { .. })), "{err:?}");
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("error: pipeline file `"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains(says), "{text}");
        assert!(text.contains("= help: "), "{text}");
    }
    let err = load(fixture.root()).err().map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("is a directory") && e.contains("sluice.yaml")),
        "{err:?}"
    );
}

#[test]
fn deep_nesting_and_alias_bombs_are_refused_before_parsing() {
    let deep = format!(
        "{HEAD}  lint:\n    uses: plugins/lint.wasm\n    with: {{ x: {}{} }}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let started = std::time::Instant::now();
    // Levels: the file, `stages`, `lint`, `with`, then bracket 61 (column
    // 76) is the 65th.
    assert_error(
        &deep,
        6,
        76,
        "more than 64 levels deep",
        "flatten the structure",
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // The error shows the start of the line, not all 200 000 brackets.
    let err = Fixture::new().load(&deep).err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.len() < 1000));

    let items = vec!["1"; 1000].join(", ");
    let aliases = vec!["*a"; 1000].join(", ");
    let bomb = format!(
        "{HEAD}  lint:\n    uses: plugins/lint.wasm\n    with:\n      a: &a [{items}]\n      b: [{aliases}]\n"
    );
    // 1 001 nodes per alias (the list and its items): the 100th crosses
    // the limit.
    assert_error(
        &bomb,
        8,
        11 + 4 * 99,
        "aliases would expand the YAML by more than 100000 nodes",
        "write the values out",
    );
}

#[test]
fn tls_ca_grant_is_read_at_load_time() {
    let src = with_head("  deploy:\n    uses: plugins/lint.wasm\n    grants:\n      tls-ca: [certs/missing-ca.pem]\n");
    assert_error(
        &src,
        7,
        16,
        "stage `deploy`: grants.tls-ca `certs/missing-ca.pem`: cannot read TLS CA file",
        "relative to the pipeline file's directory",
    );
    let fixture = Fixture::new();
    std::fs::create_dir_all(fixture.root().join("certs")).expect("mkdir");
    std::fs::write(
        fixture.root().join("certs/notes.pem"),
        "not a certificate\n",
    )
    .expect("write");
    let err = fixture
        .load(&with_head(
            "  deploy:\n    uses: plugins/lint.wasm\n    grants:\n      tls-ca: [certs/notes.pem]\n",
        ))
        .expect_err("not PEM");
    assert!(
        err.to_string()
            .contains("stage `deploy`: grants.tls-ca `certs/notes.pem`: `certs/notes.pem` holds no `-----BEGIN CERTIFICATE-----`"),
        "{err}"
    );
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=test-ca", "-days", "2"])
        .arg("-keyout")
        .arg(fixture.root().join("certs/ca.key"))
        .arg("-out")
        .arg(fixture.root().join("certs/ca.pem"))
        .output();
    if !out.is_ok_and(|o| o.status.success()) {
        eprintln!("openssl is not available; skipping the happy path");
        return;
    }
    let pipeline = fixture
        .load(&with_head(
            "  deploy:\n    uses: plugins/lint.wasm\n    grants:\n      tls-ca: [certs/ca.pem]\n",
        ))
        .expect("loads");
    let ca = &pipeline.stages["deploy"].grants.tls_ca[0];
    assert_eq!(ca.file, "certs/ca.pem");
    assert_eq!(ca.path, fixture.root().join("certs/ca.pem"));
    assert!(ca.digest.starts_with("sha256:") && ca.digest.len() == 71);
    assert_eq!(ca.certificates, 1);
}

#[test]
fn grace_periods_default_to_ten_seconds_allow_zero_and_stop_at_ten_minutes() {
    let fixture = Fixture::new();
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n");
    let pipeline = fixture.load(&src).expect("no grace period");
    assert_eq!(
        pipeline.stages["lint"].grace_period,
        crate::DEFAULT_GRACE_PERIOD
    );
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    grace-period: 0s\n");
    let pipeline = fixture.load(&src).expect("zero is allowed");
    assert_eq!(pipeline.stages["lint"].grace_period, Duration::ZERO);
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    grace-period: 11m\n");
    assert_error(
        &src,
        6,
        19,
        "grace period `11m` is longer than the 10 minutes",
        "use at most `10m`",
    );
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    grace-period: soon\n");
    let err = fixture
        .load(&src)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("grace-period"), "{err}");
}

#[test]
fn runs_on_takes_one_label_a_list_a_set_or_any() {
    let fixture = Fixture::new();
    let labels = |runs_on: &str| {
        let src = with_head(&format!("  lint:\n    uses: plugins/lint.wasm\n{runs_on}"));
        let pipeline = fixture.load(&src).unwrap_or_else(|e| panic!("{e}"));
        pipeline.stages["lint"].runs_on.to_string()
    };
    assert_eq!(labels(""), "any");
    assert_eq!(labels("    runs-on: os=linux\n"), "os=linux");
    assert_eq!(
        labels("    runs-on: [os=linux, net=egress]\n"),
        "net=egress,os=linux"
    );
    assert_eq!(
        labels("    runs-on: net=egress,os=linux\n"),
        "net=egress,os=linux"
    );
    assert_eq!(labels("    runs-on: [os=linux, os=linux]\n"), "os=linux");
    assert_eq!(labels("    runs-on: any\n"), "any");
}

#[test]
fn a_bad_runs_on_label_is_located_with_the_fix() {
    // A bad label in a list points at that label.
    let src =
        with_head("  lint:\n    uses: plugins/lint.wasm\n    runs-on: [os=linux, net.egress]\n");
    assert_error(
        &src,
        6,
        25,
        "`net.egress` is not a valid label",
        "write a label as `key=value`",
    );
    // A single string points at the string.
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    runs-on: OS=linux\n");
    assert_error(
        &src,
        6,
        14,
        "`OS=linux` is not a valid label set: its key `OS` starts with `O`",
        "`key=value` separated by `,`",
    );
    // Two values for one key can never be served: the list is refused.
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    runs-on: [os=linux, os=mac]\n");
    assert_error(
        &src,
        6,
        14,
        "`runs-on`: `os=linux,os=mac` is not a valid label set: it gives key `os` two values",
        "one value per key",
    );
    let nine: Vec<String> = (0..9).map(|i| format!("k{i}=v")).collect();
    let src = with_head(&format!(
        "  lint:\n    uses: plugins/lint.wasm\n    runs-on: [{}]\n",
        nine.join(", ")
    ));
    assert_error(&src, 6, 14, "it has 9 labels, more than 8", "at most 8");
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    runs-on: []\n");
    assert_error(
        &src,
        6,
        14,
        "`runs-on` is an empty list",
        "remove `runs-on:`",
    );
    let src = with_head("  lint:\n    uses: plugins/lint.wasm\n    runs-on: { os: linux }\n");
    let err = Fixture::new()
        .load(&src)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("runs-on"), "{err}");
}
