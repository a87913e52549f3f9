//! Who owns the trust decision (issue #14): the operator policy is a floor
//! the pipeline's own policy can only add to; `uses:` paths are matched in
//! one canonical form; signatures are checked before any parse, so
//! `plugin verify` and `run` agree.

use std::path::{Path, PathBuf};

use sluice_tests::{plugin, Project};

const PASSWORD: &str = "test-password";

/// A trusted-only project with a key, a signed copy of the fixture at
/// `plugins/signed.wasm` and an unsigned one at `plugins/unsigned.wasm`.
fn project() -> Project {
    let p = Project::trusted_only();
    std::fs::create_dir_all(p.path().join("plugins")).expect("mkdir");
    std::fs::copy(plugin("fixture"), p.path().join("plugins/signed.wasm")).expect("copy");
    std::fs::copy(plugin("fixture"), p.path().join("plugins/unsigned.wasm")).expect("copy");
    let gen = p.sluice_env(
        &["key", "generate", "--out", "keys/release"],
        &[("SLUICE_KEY_PASSWORD", PASSWORD)],
    );
    assert_eq!(gen.code, 0, "{}", gen.all());
    let sign = p.sluice_env(
        &[
            "plugin",
            "sign",
            "plugins/signed.wasm",
            "--key",
            "keys/release.key",
        ],
        &[("SLUICE_KEY_PASSWORD", PASSWORD)],
    );
    assert_eq!(sign.code, 0, "{}", sign.all());
    p
}

/// The operator's policy, outside the project: everything signed by the
/// release key, at most `workspace: read` and no `exec`.
fn operator_policy(p: &Project) -> PathBuf {
    let key = p.path().join("keys/release.pub");
    p.write_outside(
        "operator/policy.yaml",
        format!(
            "mode: enforce\nno-match: deny\nrules:\n  - name: signed-and-capped\n    match: [\"**\"]\n    authorities:\n      - key: {}\n    max-grants: {{ workspace: read, exec: [] }}\n",
            key.display()
        )
        .as_bytes(),
    )
}

/// The pipeline's own policy: as lax as a policy gets.
fn lax_pipeline(p: &Project, uses: &str, grants: &str) {
    p.write("lax.yaml", "mode: warn\nno-match: allow\n");
    p.write(
        "sluice.yaml",
        &format!(
            "version: 1\nname: lax\npolicy: lax.yaml\nstages:\n  s:\n    uses: {uses}\n    with: {{ mode: pass }}\n{grants}"
        ),
    );
}

fn with_operator(path: &Path) -> [(&'static str, &str); 1] {
    [("SLUICE_POLICY", path.to_str().expect("utf-8 path"))]
}

#[test]
fn the_operator_policy_is_a_floor_a_lax_pipeline_policy_cannot_lower() {
    let p = project();
    let op = operator_policy(&p);
    let env = with_operator(&op);

    // An unsigned plugin: refused, also with --allow-unsigned.
    lax_pipeline(&p, "plugins/unsigned.wasm", "");
    for extra in [&[][..], &[("SLUICE_ALLOW_UNSIGNED", "1")][..]] {
        let env: Vec<(&str, &str)> = env.iter().chain(extra).copied().collect();
        let run = p.sluice_env(&["run"], &env);
        assert_eq!(run.code, 3, "{}", run.all());
        assert!(
            run.stderr
                .contains(&format!("operator policy {}", op.display())),
            "the refusal names the operator policy: {}",
            run.all()
        );
        assert!(
            run.stderr.contains("plugins/unsigned.wasm"),
            "{}",
            run.all()
        );
    }

    // A signed plugin granted more than the operator allows: refused.
    lax_pipeline(
        &p,
        "plugins/signed.wasm",
        "    grants: { workspace: write, exec: [sh] }\n",
    );
    let run = p.sluice_env(&["run"], &env);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(
        run.stderr
            .contains(&format!("operator policy {}", op.display()))
            && run.stderr.contains("max-grants"),
        "{}",
        run.all()
    );
    // `plugin verify --pipeline` decides as `run` does.
    let verify = p.sluice_env(
        &[
            "plugin",
            "verify",
            "plugins/signed.wasm",
            "--pipeline",
            "sluice.yaml",
        ],
        &env,
    );
    assert_eq!(verify.code, 3, "{}", verify.all());
    assert!(verify.all().contains("max-grants"), "{}", verify.all());

    // Within the floor it runs, and the record names both policies.
    lax_pipeline(
        &p,
        "plugins/signed.wasm",
        "    grants: { workspace: read }\n",
    );
    let run = p.sluice_env(&["run"], &env);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    assert_eq!(
        record["operator_policy"].as_str(),
        Some(op.to_str().expect("utf-8")),
        "{record}"
    );
    assert!(record["policy"]
        .as_str()
        .unwrap_or_default()
        .ends_with("lax.yaml"));
    assert_eq!(
        record["stages"]["s"]["plugin"]["policy_rules"][0],
        "operator:signed-and-capped"
    );
}

#[test]
fn without_an_operator_policy_the_pipeline_policy_is_in_charge() {
    let p = project();
    lax_pipeline(
        &p,
        "plugins/unsigned.wasm",
        "    grants: { workspace: write, exec: [sh] }\n",
    );
    let mut cmd = p.command(&["run"]);
    cmd.env_remove("SLUICE_POLICY")
        .env("SLUICE_OPERATOR_POLICY_DIR", p.root().join("no-such-dir"));
    let run = cmd.output().expect("run sluice");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let mut cmd = p.command(&["policy", "check", "lax.yaml"]);
    cmd.env_remove("SLUICE_POLICY")
        .env("SLUICE_OPERATOR_POLICY_DIR", p.root().join("no-such-dir"));
    let check = cmd.output().expect("run sluice");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("No operator policy")
            && stdout.contains("the pipeline's policy is in charge"),
        "{stdout}"
    );
}

#[test]
fn policy_check_shows_the_policy_in_effect_and_where_each_rule_came_from() {
    let p = project();
    let op = operator_policy(&p);
    p.write(
        "extra.yaml",
        "mode: warn\nno-match: allow\nrules:\n  - name: pipeline-extra\n    match: [\"plugins/*.wasm\"]\n",
    );
    // Through the system file location as well as SLUICE_POLICY.
    for env in [
        vec![("SLUICE_POLICY", op.to_str().expect("utf-8"))],
        vec![(
            "SLUICE_OPERATOR_POLICY_DIR",
            op.parent().and_then(Path::to_str).expect("utf-8"),
        )],
    ] {
        let check = p.sluice_env(&["policy", "check", "extra.yaml"], &env);
        assert_eq!(check.code, 0, "{}", check.all());
        let out = &check.stdout;
        assert!(
            out.contains(&format!(
                "`signed-and-capped` (from the operator policy {})",
                op.display()
            )),
            "{out}"
        );
        assert!(
            out.contains("`pipeline-extra` (from the pipeline policy extra.yaml)"),
            "{out}"
        );
        assert!(out.contains("mode enforce, no-match deny"), "{out}");
    }
}

#[test]
fn dot_dot_and_symlinks_in_uses_do_not_escape_a_rule() {
    let p = project();
    std::fs::create_dir_all(p.path().join("evil")).expect("mkdir");
    std::fs::copy(plugin("fixture"), p.path().join("evil/x.wasm")).expect("copy");
    std::os::unix::fs::symlink("../evil/x.wasm", p.path().join("plugins/link.wasm"))
        .expect("symlink");
    std::os::unix::fs::symlink("../evil", p.path().join("plugins/evil-dir")).expect("symlink");
    // Plugins under plugins/ are trusted by location; nothing else runs.
    p.write(
        "policy.yaml",
        "mode: enforce\nno-match: deny\nrules:\n  - name: in-tree\n    match: [\"plugins/**\"]\n",
    );
    let pipeline = |uses: &str| {
        p.write(
            "sluice.yaml",
            &format!(
                "version: 1\nname: paths\npolicy: policy.yaml\nstages:\n  s:\n    uses: {uses}\n    with: {{ mode: pass }}\n"
            ),
        );
    };
    for uses in [
        "evil/x.wasm",
        "plugins/../evil/x.wasm",
        "plugins/link.wasm",
        "plugins/evil-dir/x.wasm",
    ] {
        pipeline(uses);
        let run = p.sluice(&["run"]);
        assert_eq!(run.code, 3, "`uses: {uses}`: {}", run.all());
        assert!(
            run.stderr.contains("evil/x.wasm") && run.stderr.contains("no rule"),
            "`uses: {uses}` is matched as evil/x.wasm: {}",
            run.all()
        );
        // `plugin verify` agrees.
        let verify = p.sluice(&[
            "plugin",
            "verify",
            "evil/x.wasm",
            "--pipeline",
            "sluice.yaml",
        ]);
        assert_eq!(verify.code, 3, "{}", verify.all());
    }
    // Without a pipeline, references are relative to the policy file's
    // directory.
    let verify = p.sluice(&[
        "plugin",
        "verify",
        "plugins/link.wasm",
        "--policy",
        "policy.yaml",
    ]);
    assert_eq!(verify.code, 3, "{}", verify.all());

    // The record holds the canonical form.
    pipeline("plugins/./sub/../unsigned.wasm");
    std::fs::create_dir_all(p.path().join("plugins/sub")).expect("mkdir");
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let record = p.record(&run.run_id());
    assert_eq!(
        record["stages"]["s"]["plugin"]["reference"],
        "plugins/unsigned.wasm"
    );
}

/// Offset of the first function body's last byte (its `end`) in the first
/// core module of `component` that has a code section.
fn end_of_first_function(component: &[u8]) -> usize {
    fn leb(bytes: &[u8], at: &mut usize) -> usize {
        let (mut value, mut shift) = (0usize, 0);
        loop {
            let b = bytes[*at];
            *at += 1;
            value |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return value;
            }
            shift += 7;
        }
    }
    let magic = b"\0asm\x01\0\0\0";
    let mut from = 8;
    while let Some(found) = component[from..]
        .windows(magic.len())
        .position(|w| w == magic)
    {
        let start = from + found;
        let mut at = start + magic.len();
        // Walk the module's sections; stop at a malformed one.
        while at < component.len() {
            let id = component[at];
            at += 1;
            let size = leb(component, &mut at);
            if id == 10 {
                let mut body = at;
                let count = leb(component, &mut body);
                assert!(count > 0);
                let len = leb(component, &mut body);
                return body + len - 1;
            }
            if id > 12 {
                break;
            }
            at += size;
        }
        from = start + magic.len();
    }
    panic!("no core module with a code section");
}

#[test]
fn a_damaged_code_section_is_a_bad_signature_in_verify_and_run_alike() {
    let p = project();
    let path = p.path().join("plugins/signed.wasm");
    let mut bytes = std::fs::read(&path).expect("read");
    let end = end_of_first_function(&bytes);
    assert_eq!(bytes[end], 0x0b, "a function body ends with `end`");
    bytes[end] = 0x00; // now it has no `end`: not a valid component
    std::fs::write(&path, bytes).expect("write");
    let key = p.path().join("keys/release.pub");
    p.write(
        "policy.yaml",
        &format!(
            "rules:\n  - name: signed\n    match: [\"plugins/*.wasm\"]\n    authorities:\n      - key: {}\n",
            key.display()
        ),
    );
    p.write(
        "sluice.yaml",
        "version: 1\nname: x\npolicy: policy.yaml\nstages:\n  s:\n    uses: plugins/signed.wasm\n    with: { mode: pass }\n",
    );
    let run = p.sluice(&["run"]);
    assert_eq!(run.code, 3, "{}", run.all());
    for args in [
        &[
            "plugin",
            "verify",
            "plugins/signed.wasm",
            "--policy",
            "policy.yaml",
        ][..],
        &[
            "plugin",
            "verify",
            "plugins/signed.wasm",
            "--key",
            "keys/release.pub",
        ],
        &[
            "plugin",
            "verify",
            "plugins/signed.wasm",
            "--pipeline",
            "sluice.yaml",
        ],
        &[
            "plugin",
            "inspect",
            "plugins/signed.wasm",
            "--key",
            "keys/release.pub",
        ],
    ] {
        let verify = p.sluice(args);
        assert_eq!(verify.code, 3, "{args:?}: {}", verify.all());
        assert!(
            !verify.all().contains("not a valid"),
            "the signature is checked before the component is parsed: {}",
            verify.all()
        );
    }
    // Under the operator policy too.
    let op = operator_policy(&p);
    let env = with_operator(&op);
    let verify = p.sluice_env(&["plugin", "verify", "plugins/signed.wasm"], &env);
    assert_eq!(verify.code, 3, "{}", verify.all());
    let run = p.sluice_env(&["run"], &env);
    assert_eq!(run.code, 3, "{}", run.all());
}

/// Signs `file` keyless against the private Sigstore of the interop harness
/// (`tests/interop/sigstore-js/keyless.mjs`: @sigstore/mock's Fulcio, Rekor
/// and TSA) and writes the bundle beside it and `trusted_root.json` in the
/// project.
fn sign_keyless(p: &Project, file: &str, flags: &[&str]) {
    let mut args: Vec<std::ffi::OsString> = vec!["keyless.mjs".into()];
    args.extend(flags.iter().map(Into::into));
    args.push(p.path().join(file).into());
    args.push(p.path().join(format!("{file}.sigstore.json")).into());
    args.push(p.path().join("trusted_root.json").into());
    let (code, out) = sluice_tests::node(&sluice_tests::sigstore_js(), &args);
    assert_eq!(code, 0, "keyless.mjs {flags:?}: {out}");
}

/// `secs` seconds ago in UTC, with `.123` fractional seconds when `millis`.
fn utc_ago(secs: u32, millis: bool) -> String {
    let format = if millis {
        "+%Y-%m-%dT%H:%M:%S.123Z"
    } else {
        "+%Y-%m-%dT%H:%M:%SZ"
    };
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("-{secs} sec"), format])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Point 8 through the real binary: a keyless bundle whose only time
/// evidence is an RFC 3161 timestamp verifies, and so does one whose
/// timestamp has fractional seconds; `run` admits both under a keyless
/// rule with a private trusted root.
#[test]
fn keyless_bundles_with_a_timestamp_only_or_fractional_seconds_verify() {
    for (what, flags) in [
        ("timestamp only", vec!["--tsa".to_string()]),
        (
            "fractional seconds, with a log entry",
            vec![
                "--tsa".to_string(),
                "--rekor".to_string(),
                // The certificate is issued a minute ago, the timestamp
                // half a minute later, at .123 of a second.
                "--cert-time".to_string(),
                utc_ago(60, false),
                "--tsa-time".to_string(),
                utc_ago(30, true),
            ],
        ),
    ] {
        let p = Project::trusted_only();
        std::fs::create_dir_all(p.path().join("plugins")).expect("mkdir");
        std::fs::copy(plugin("fixture"), p.path().join("plugins/ci.wasm")).expect("copy");
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        sign_keyless(&p, "plugins/ci.wasm", &flags);
        p.write(
            "policy.yaml",
            r#"mode: enforce
no-match: deny
trusted-root: trusted_root.json
rules:
  - name: ci-keyless
    match: ["plugins/**"]
    authorities:
      - keyless:
          issuer: https://issuer.sluice.test
          subject: https://github.com/acme/plugins/.github/workflows/release.yml@refs/heads/main
"#,
        );
        p.write(
            "sluice.yaml",
            "version: 1\nname: keyless\npolicy: policy.yaml\nstages:\n  s:\n    uses: plugins/ci.wasm\n    with: { mode: pass }\n",
        );
        let verify = p.sluice(&[
            "plugin",
            "verify",
            "plugins/ci.wasm",
            "--policy",
            "policy.yaml",
        ]);
        assert_eq!(verify.code, 0, "{what}: {}", verify.all());
        assert!(
            verify.stdout.contains("issuer.sluice.test"),
            "{what}: {}",
            verify.all()
        );
        let run = p.sluice(&["run"]);
        assert_eq!(run.code, 0, "{what}: {}", run.all());
    }
}
