//! Policy features through the real binary: static rules, per-rule mode,
//! thresholds of several signers, attestation conditions (with
//! `sluice plugin attest`) and keyless `issuer-regexp`.

use sluice_tests::{plugin, repo_root, Project};

const PASSWORD: &str = "test-password";
const SLSA: &str = "https://slsa.dev/provenance/v1";

fn sluice_ok(p: &Project, args: &[&str]) -> String {
    let run = p.sluice_env(args, &[("SLUICE_KEY_PASSWORD", PASSWORD)]);
    assert_eq!(run.code, 0, "{args:?}: {}", run.all());
    run.stdout
}

/// A trusted-only project with keys `keys/release` and `keys/second`, the
/// fixture at `plugins/fixture.wasm` (unsigned) and a pipeline running it
/// under `policy.yaml`.
fn project() -> Project {
    let p = Project::trusted_only();
    std::fs::create_dir_all(p.path().join("plugins")).expect("mkdir");
    std::fs::copy(plugin("fixture"), p.path().join("plugins/fixture.wasm")).expect("copy");
    for key in ["keys/release", "keys/second"] {
        sluice_ok(&p, &["key", "generate", "--out", key]);
    }
    p.write(
        "sluice.yaml",
        "version: 1\nname: features\npolicy: policy.yaml\nstages:\n  s:\n    uses: plugins/fixture.wasm\n    with: { mode: pass }\n",
    );
    p
}

fn sign(p: &Project, key: &str) -> String {
    sluice_ok(p, &["plugin", "sign", "plugins/fixture.wasm", "--key", key]);
    p.read("plugins/fixture.wasm.sigstore.json")
}

#[test]
fn a_static_fail_rule_refuses_with_its_message() {
    let p = project();
    sign(&p, "keys/release.key");
    p.write(
        "policy.yaml",
        "rules:\n  - name: signed\n    match: \"plugins/*.wasm\"\n    authorities: [{ key: keys/release.pub }]\n  - name: frozen\n    match: \"plugins/fixture.wasm\"\n    static: fail\n    message: deploys are frozen until Monday\n",
    );
    let check = p.sluice(&["policy", "check", "policy.yaml"]);
    assert_eq!(check.code, 0, "{}", check.all());
    assert!(
        check.stdout.contains("it is always refused (static: fail)"),
        "{}",
        check.all()
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.stderr.contains("rule `frozen`")
            && run.stderr.contains("deploys are frozen until Monday"),
        "{}",
        run.all()
    );
    let verify = p.sluice(&[
        "plugin",
        "verify",
        "plugins/fixture.wasm",
        "--policy",
        "policy.yaml",
    ]);
    assert_eq!(verify.code, 3, "{}", verify.all());
}

#[test]
fn a_warn_rule_admits_with_a_warning() {
    let p = project();
    // Unsigned, under a rule in `mode: warn` and a policy in `mode: enforce`.
    p.write(
        "policy.yaml",
        "mode: enforce\nrules:\n  - name: soft\n    match: \"plugins/*.wasm\"\n    mode: warn\n    authorities: [{ key: keys/release.pub }]\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.all().contains("rule `soft` is in `mode: warn`"),
        "{}",
        run.all()
    );
    let record = p.record(&run.run_id());
    assert!(
        record["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w.to_string().contains("mode: warn"))),
        "{record}"
    );
}

#[test]
fn a_threshold_of_two_needs_two_signers() {
    let p = project();
    p.write(
        "policy.yaml",
        "rules:\n  - name: two-person\n    match: \"plugins/*.wasm\"\n    threshold: 2\n    authorities:\n      - key: keys/release.pub\n      - key: keys/second.pub\n",
    );
    let check = p.sluice(&["policy", "check", "policy.yaml"]);
    assert!(
        check
            .stdout
            .contains("signed by at least 2 of these authorities"),
        "{}",
        check.all()
    );
    let first = sign(&p, "keys/release.key");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.stderr.contains("threshold: 2") && run.stderr.contains("but 1 was met"),
        "{}",
        run.all()
    );

    let second = sign(&p, "keys/second.key");
    p.write(
        "plugins/fixture.wasm.sigstore.json",
        &format!("[{first},{second}]"),
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
}

fn attest(p: &Project, builder: &str) {
    p.write(
        "predicate.json",
        &serde_json::json!({
            "buildDefinition": {
                "buildType": "https://sluice.dev/build/v1",
                "resolvedDependencies": [
                    { "uri": "git+https://github.com/acme/plugins", "digest": { "gitCommit": "0123abcd" } }
                ]
            },
            "runDetails": { "builder": { "id": builder } }
        })
        .to_string(),
    );
    let out = sluice_ok(
        p,
        &[
            "plugin",
            "attest",
            "plugins/fixture.wasm",
            "--key",
            "keys/second.key",
            "--predicate-type",
            SLSA,
            "--predicate",
            "predicate.json",
        ],
    );
    assert!(out.contains("fixture.wasm.intoto.sigstore.json"), "{out}");
}

#[test]
fn an_attestation_condition_on_the_builder_id() {
    let p = project();
    sign(&p, "keys/release.key");
    p.write(
        "policy.yaml",
        &format!(
            "rules:\n  - name: built-by-ci\n    match: \"plugins/*.wasm\"\n    authorities: [{{ key: keys/release.pub }}]\n    attestations:\n      - predicate-type: {SLSA}\n        authorities: [{{ key: keys/second.pub }}]\n        conditions:\n          builder-id: \"https://ci.acme.dev/*\"\n          source-repository: \"git+https://github.com/acme/*\"\n"
        ),
    );
    let check = p.sluice(&["policy", "check", "policy.yaml"]);
    assert_eq!(check.code, 0, "{}", check.all());
    assert!(
        check
            .stdout
            .contains("its builder id matches `https://ci.acme.dev/*`"),
        "{}",
        check.all()
    );

    // Missing.
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.stderr.contains("fixture.wasm.intoto.sigstore.json")
            && run.stderr.contains("sluice plugin attest"),
        "{}",
        run.all()
    );

    // Wrong builder.
    attest(&p, "https://evil.example/builder");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.stderr
            .contains("its builder id is `https://evil.example/builder`"),
        "{}",
        run.all()
    );

    // Matching: replaces the earlier attestation of this type by this key.
    attest(&p, "https://ci.acme.dev/builder@v2");
    let stored: serde_json::Value =
        serde_json::from_str(&p.read("plugins/fixture.wasm.intoto.sigstore.json")).expect("json");
    assert!(stored.is_object(), "one attestation, not a list: {stored}");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let verify = p.sluice(&[
        "plugin",
        "verify",
        "plugins/fixture.wasm",
        "--policy",
        "policy.yaml",
    ]);
    assert_eq!(verify.code, 0, "{}", verify.all());
}

#[test]
fn issuer_regexp_parses_and_is_explained() {
    let p = project();
    std::fs::copy(
        repo_root().join("tests/fixtures/trust/public-good-trusted-root.json"),
        p.path().join("trusted_root.json"),
    )
    .expect("copy root");
    p.write(
        "policy.yaml",
        "trusted-root: trusted_root.json\nrules:\n  - name: ci\n    match: \"plugins/*.wasm\"\n    authorities:\n      - keyless: { issuer-regexp: \"^https://token\\\\.actions\\\\.githubusercontent\\\\.com$\", subject-regexp: \"^https://github\\\\.com/acme/.*$\" }\n",
    );
    let check = p.sluice(&["policy", "check", "policy.yaml"]);
    assert_eq!(check.code, 0, "{}", check.all());
    assert!(
        check.stdout.contains(
            "an issuer matching the regular expression `^https://token\\.actions\\.githubusercontent\\.com$`"
        ),
        "{}",
        check.all()
    );

    p.write(
        "policy.yaml",
        "trusted-root: trusted_root.json\nrules:\n  - name: ci\n    match: \"plugins/*.wasm\"\n    authorities:\n      - keyless: { issuer: a, issuer-regexp: b, subject: c }\n",
    );
    let check = p.sluice(&["policy", "check", "policy.yaml"]);
    assert_eq!(check.code, 2, "{}", check.all());
    assert!(
        check
            .stderr
            .contains("exactly one of `issuer` and `issuer-regexp`"),
        "{}",
        check.all()
    );
}
