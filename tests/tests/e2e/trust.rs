//! Trust: keys, signatures, policies and provenance through the real
//! binary, including interop with the npm sigstore-js clients.

use std::path::PathBuf;

use sluice_tests::expect::Expect;
use sluice_tests::{node, plugin, sigstore_js, Project};

/// The password of the keys the trust and OCI tests generate.
pub(crate) const PASSWORD: &str = "test-password";

/// `p` with a copy of the fixture plugin at `plugins/fixture.wasm`.
pub(crate) fn with_fixture(p: Project) -> Project {
    std::fs::create_dir_all(p.path().join("plugins")).expect("mkdir");
    std::fs::copy(plugin("fixture"), p.path().join("plugins/fixture.wasm")).expect("copy");
    p
}

/// `sluice key generate --out OUT` in `p` (`OUT.key`, `OUT.pub`), with
/// [`PASSWORD`].
pub(crate) fn generate_key(p: &Project, out: &str) {
    p.sluice_env(
        &["key", "generate", "--out", out],
        &[("SLUICE_KEY_PASSWORD", PASSWORD)],
    )
    .expect_code(0);
}

/// A trusted-only project with its own key and a signed copy of the
/// fixture at `plugins/fixture.wasm`.
fn signed_project() -> Project {
    let p = with_fixture(Project::trusted_only());
    generate_key(&p, "keys/release");
    let sign = p.sluice_env(
        &[
            "plugin",
            "sign",
            "plugins/fixture.wasm",
            "--key",
            "keys/release.key",
        ],
        &[("SLUICE_KEY_PASSWORD", PASSWORD)],
    );
    assert_eq!(sign.code, 0, "{}", sign.all());
    assert!(p
        .path()
        .join("plugins/fixture.wasm.sigstore.json")
        .is_file());
    p
}

fn policy(p: &Project, rule_extra: &str, head: &str) {
    p.write(
        "policy.yaml",
        &format!(
            "{head}rules:\n  - name: first-party\n    match: [\"plugins/*.wasm\"]\n    authorities:\n      - key: keys/release.pub\n{rule_extra}"
        ),
    );
}

fn pipeline(p: &Project, grants: &str) {
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: trusted\npolicy: policy.yaml\nstages:\n  s:\n    uses: plugins/fixture.wasm\n    with: {{ mode: pass }}\n{grants}"
        ),
    );
}

#[test]
fn a_signed_plugin_runs_under_a_policy_and_the_record_names_the_signer() {
    let p = signed_project();
    policy(&p, "", "mode: enforce\nno-match: deny\n");
    pipeline(&p, "");
    let check = p.sluice(&["policy", "check", "policy.yaml"]);
    assert_eq!(check.code, 0, "{}", check.all());
    assert!(check.stdout.contains("first-party"), "{}", check.all());

    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    let plugin = &record["stages"]["s"]["plugin"];
    assert!(
        plugin["signer"]
            .as_str()
            .unwrap_or_default()
            .starts_with("key sha256:"),
        "{plugin}"
    );
    assert_eq!(plugin["policy_rules"][0], "first-party");
    assert!(record["policy"]
        .as_str()
        .unwrap_or_default()
        .ends_with("policy.yaml"));

    let verify = p.sluice(&[
        "plugin",
        "verify",
        "plugins/fixture.wasm",
        "--policy",
        "policy.yaml",
    ]);
    assert_eq!(verify.code, 0, "{}", verify.all());
    assert!(
        verify.stdout.contains("ADMITTED") && verify.stdout.contains("first-party"),
        "{}",
        verify.all()
    );
    let verify = p.sluice(&[
        "plugin",
        "verify",
        "plugins/fixture.wasm",
        "--key",
        "keys/release.pub",
    ]);
    assert_eq!(verify.code, 0, "{}", verify.all());
}

#[test]
fn refusals_exit_3_and_say_why() {
    // No policy and no --allow-unsigned.
    let p = Project::trusted_only();
    p.write(
        "sluice.yaml",
        "version: 1\nname: x\nstages:\n  s: { uses: \"{fixture}\", with: { mode: pass } }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(run.stderr.contains("--allow-unsigned"), "{}", run.all());

    // Unsigned plugin under a policy.
    let p = signed_project();
    std::fs::remove_file(p.path().join("plugins/fixture.wasm.sigstore.json")).expect("rm");
    policy(&p, "", "");
    pipeline(&p, "");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.stderr.contains("plugins/fixture.wasm") && run.stderr.contains("first-party"),
        "{}",
        run.all()
    );
    assert!(
        !p.state_dir().join("runs").exists(),
        "a refused run must not start"
    );

    // Tampered plugin: one byte flipped after signing.
    let p = signed_project();
    let path = p.path().join("plugins/fixture.wasm");
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, bytes).expect("write");
    policy(&p, "", "");
    pipeline(&p, "");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 3, "{}", run.all());
    let verify = p.sluice(&[
        "plugin",
        "verify",
        "plugins/fixture.wasm",
        "--key",
        "keys/release.pub",
    ]);
    assert_eq!(verify.code, 3, "{}", verify.all());

    // Signed by a key the policy does not trust.
    let p = signed_project();
    generate_key(&p, "keys/other");
    p.write("policy.yaml", "rules:\n  - name: first-party\n    match: [\"plugins/*.wasm\"]\n    authorities:\n      - key: keys/other.pub\n");
    pipeline(&p, "");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 3, "{}", run.all());

    // Digest pin mismatch.
    let p = signed_project();
    policy(&p, &format!("    digest: sha256:{}\n", "0".repeat(64)), "");
    pipeline(&p, "");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(run.stderr.contains("digest"), "{}", run.all());

    // Forbidden import: the fixture imports wasi:http.
    let p = signed_project();
    policy(&p, "    allowed-imports: [\"wasi:cli/*\", \"wasi:io/*\", \"wasi:clocks/*\", \"wasi:filesystem/*\", \"wasi:random/*\", \"sluice:stage/*\"]\n", "");
    pipeline(&p, "");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.stderr.contains("wasi:http/outgoing-handler"),
        "{}",
        run.all()
    );

    // A grant above the rule's maximum.
    let p = signed_project();
    policy(&p, "    max-grants: { exec: [] }\n", "");
    pipeline(&p, "    grants: { exec: [sh] }\n");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(run.stderr.contains("exec: [sh]"), "{}", run.all());
}

#[test]
fn warn_mode_runs_and_says_so() {
    let p = signed_project();
    std::fs::remove_file(p.path().join("plugins/fixture.wasm.sigstore.json")).expect("rm");
    policy(&p, "", "mode: warn\n");
    pipeline(&p, "");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("warning:"), "{}", run.all());
    let record = p.record(&run.run_id());
    assert!(
        !record["warnings"]
            .as_array()
            .map(|w| w.is_empty())
            .unwrap_or(true),
        "{record}"
    );
}

#[test]
fn malformed_policies_are_located() {
    let p = signed_project();
    p.write(
        "policy.yaml",
        "mode: enforce\nrules:\n  - name: x\n    match: [\"plugins/*.wasm\"]\n    authoritys: []\n",
    );
    let check = p.sluice(&["policy", "check", "policy.yaml"]);
    assert_eq!(check.code, 2, "{}", check.all());
    assert!(check.stderr.contains("policy.yaml:5:5"), "{}", check.all());
    pipeline(&p, "");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("policy.yaml:5:5"), "{}", run.all());
}

#[test]
fn allow_unsigned_is_marked_loudly() {
    let p = Project::trusted_only();
    p.write(
        "sluice.yaml",
        "version: 1\nname: x\nstages:\n  s: { uses: \"{fixture}\", with: { mode: pass } }\n",
    );
    let run = p.sluice(&["run", "--allow-unsigned"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("allowed unsigned plugins"),
        "{}",
        run.all()
    );
    assert_eq!(p.record(&run.run_id())["unsigned_plugins_allowed"], true);
}

#[test]
fn build_provenance_is_signed_and_verifiable() {
    let p = Project::new();
    generate_key(&p, "runner");
    p.write("src/main.txt", "source\n");
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: prov\nstages:\n  build:\n    uses: \"{}\"\n    grants: {{ workspace: write, exec: [sh] }}\n    with:\n      commands: [[sh, -c, \"mkdir -p out && cp src/main.txt out/app.bin\"]]\n      outputs: [out/app.bin]\n",
            plugin("build").display()
        ),
    );
    let run = p.sluice_env(
        &["run", "--provenance-key", "runner.key"],
        &[("SLUICE_KEY_PASSWORD", PASSWORD)],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    let artifacts = record["stages"]["build"]["artifacts"]
        .as_array()
        .expect("artifacts")
        .clone();
    let blob = |name: &str| -> PathBuf {
        let a = artifacts
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {artifacts:?}"));
        let hex = a["digest"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("sha256:")
            .to_string();
        p.state_dir()
            .join(format!("cas/sha256/{}/{}", &hex[..2], &hex[2..]))
    };
    let bundle = blob("provenance.sigstore.json");
    let ok = p.sluice(&[
        "verify-artifact",
        "out/app.bin",
        "--provenance",
        bundle.to_str().expect("utf8"),
        "--key",
        "runner.pub",
    ]);
    assert_eq!(ok.code, 0, "{}", ok.all());
    assert!(
        ok.stdout.contains("VERIFIED") && ok.stdout.contains("https://slsa.dev/provenance/v1"),
        "{}",
        ok.all()
    );
    p.write("out/app.bin", "something else\n");
    let bad = p.sluice(&[
        "verify-artifact",
        "out/app.bin",
        "--provenance",
        bundle.to_str().expect("utf8"),
        "--key",
        "runner.pub",
    ]);
    assert_eq!(bad.code, 3, "{}", bad.all());
}

#[test]
fn bundles_interoperate_with_sigstore_js() {
    let js = sigstore_js();
    let p = signed_project();
    let abs = |rel: &str| p.path().join(rel).display().to_string();
    // sluice signs, @sigstore/verify verifies.
    let (code, out) = node(
        &js,
        &[
            "verify.mjs",
            &abs("plugins/fixture.wasm"),
            &abs("plugins/fixture.wasm.sigstore.json"),
            &abs("keys/release.pub"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    // @sigstore/sign signs with a key, sluice verifies.
    let (code, out) = node(&js, &["keygen.mjs", &abs("js.pem"), &abs("js.pub")]);
    assert_eq!(code, 0, "{out}");
    std::fs::copy(plugin("hello"), p.path().join("plugins/hello.wasm")).expect("copy");
    let (code, out) = node(
        &js,
        &[
            "sign.mjs",
            &abs("plugins/hello.wasm"),
            &abs("js.pem"),
            &abs("plugins/hello.wasm.sigstore.json"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let verify = p.sluice(&["plugin", "verify", "plugins/hello.wasm", "--key", "js.pub"]);
    assert_eq!(verify.code, 0, "{}", verify.all());
    let wrong = p.sluice(&[
        "plugin",
        "verify",
        "plugins/hello.wasm",
        "--key",
        "keys/release.pub",
    ]);
    assert_eq!(wrong.code, 3, "{}", wrong.all());
}
