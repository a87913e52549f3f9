//! Tests of policy loading and evaluation.

use std::path::{Path, PathBuf};

use super::*;
use crate::trust::keys::{generate, load_private, PrivateKey};
use crate::trust::sign_blob;

const KEYLESS_BLOB: &[u8] = include_bytes!("../../../tests/fixtures/trust/keyless-blob.txt");
const KEYLESS_BUNDLE: &str =
    include_str!("../../../tests/fixtures/trust/keyless-blob.txt.sigstore.json");
const PUBLIC_GOOD_ROOT: &str =
    include_str!("../../../tests/fixtures/trust/public-good-trusted-root.json");
const KEYLESS_ISSUER: &str = "https://github.com/login/oauth";
const KEYLESS_SUBJECT: &str = "w.vollprecht@gmail.com";

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A directory with a release key (`keys/release.pub`), a stranger's key
/// and the public-good trusted root.
struct Setup {
    dir: tempfile::TempDir,
    release: PrivateKey,
    stranger: PrivateKey,
}

impl Setup {
    fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("keys"))?;
        let release = generate(b"")?;
        std::fs::write(dir.path().join("keys/release.pub"), &release.public_pem)?;
        std::fs::write(dir.path().join("trusted_root.json"), PUBLIC_GOOD_ROOT)?;
        Ok(Setup {
            release: load_private(&release.private_pem, b"")?,
            stranger: load_private(&generate(b"")?.private_pem, b"")?,
            dir,
        })
    }

    fn policy_path(&self) -> PathBuf {
        self.dir.path().join("policy.yaml")
    }

    fn policy(&self, yaml: &str) -> Result<Policy, PolicyError> {
        std::fs::write(self.policy_path(), yaml).map_err(|e| PolicyError::io(Path::new("x"), e))?;
        Policy::load(&self.policy_path())
    }
}

fn input<'a>(reference: &str, bytes: &'a [u8], bundle: Option<String>) -> PluginInput<'a> {
    PluginInput {
        reference: reference.to_owned(),
        digest: format!("sha256:{}", sigstore_verify::crypto::sha256(bytes).to_hex()),
        bytes,
        bundle,
        imports: vec![
            "wasi:cli/environment@0.2.0".to_owned(),
            "sluice:stage/host@0.1.0".to_owned(),
        ],
        grants: RequestedGrants {
            workspace: "read".to_owned(),
            ..RequestedGrants::default()
        },
    }
}

const FIRST_PARTY: &str = "\
apiVersion: sluice.dev/v1
mode: enforce
no-match: deny
rules:
  - name: first-party
    match: [\"plugins/*.wasm\"]
    authorities:
      - key: keys/release.pub
    allowed-imports: [\"wasi:cli/*\", \"wasi:filesystem/*\", \"sluice:stage/*\"]
    max-grants: { workspace: read, exec: [], secrets: [], network: [\"*.acme.internal:443\"], env: [CI] }
";

fn reasons(decision: &Decision) -> String {
    decision
        .refusals
        .iter()
        .map(|r| r.reason.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn signed_plugin_is_admitted() -> TestResult {
    let s = Setup::new()?;
    let policy = s.policy(FIRST_PARTY)?;
    let bytes = b"\0asm deploy";
    let bundle = sign_blob(bytes, &s.release)?;
    let decision = policy.evaluate(&input("./plugins/deploy.wasm", bytes, Some(bundle)));
    assert!(decision.admitted, "{}", reasons(&decision));
    assert_eq!(decision.matched_rules, vec!["first-party"]);
    assert_eq!(
        decision.signer,
        Some(Signer::Key {
            fingerprint: s.release.public_key().fingerprint()
        })
    );
    assert!(decision.warnings.is_empty());
    Ok(())
}

#[test]
fn unsigned_plugin_is_refused() -> TestResult {
    let s = Setup::new()?;
    let decision = s
        .policy(FIRST_PARTY)?
        .evaluate(&input("plugins/deploy.wasm", b"x", None));
    assert!(!decision.admitted);
    assert_eq!(decision.refusals.len(), 1);
    assert_eq!(decision.refusals[0].rule.as_deref(), Some("first-party"));
    let reason = &decision.refusals[0].reason;
    assert!(
        reason.starts_with("plugin plugins/deploy.wasm: rule `first-party`: "),
        "{reason}"
    );
    assert!(reason.contains("is not signed"), "{reason}");
    assert!(
        reason.contains("plugins/deploy.wasm.sigstore.json"),
        "{reason}"
    );
    assert!(reason.contains("sluice plugin sign"), "{reason}");
    Ok(())
}

#[test]
fn plugin_signed_by_an_untrusted_key_is_refused() -> TestResult {
    let s = Setup::new()?;
    let bundle = sign_blob(b"x", &s.stranger)?;
    let decision =
        s.policy(FIRST_PARTY)?
            .evaluate(&input("plugins/deploy.wasm", b"x", Some(bundle)));
    assert!(!decision.admitted);
    assert!(
        reasons(&decision).contains("untrusted key"),
        "{}",
        reasons(&decision)
    );
    Ok(())
}

#[test]
fn tampered_plugin_is_refused() -> TestResult {
    let s = Setup::new()?;
    let mut bytes = b"\0asm deploy".to_vec();
    let bundle = sign_blob(&bytes, &s.release)?;
    bytes[4] ^= 0x01;
    let decision =
        s.policy(FIRST_PARTY)?
            .evaluate(&input("plugins/deploy.wasm", &bytes, Some(bundle)));
    assert!(!decision.admitted);
    assert!(
        reasons(&decision).contains("the bundle was made for a different file"),
        "{}",
        reasons(&decision)
    );
    Ok(())
}

#[test]
fn malformed_bundle_is_refused() -> TestResult {
    let s = Setup::new()?;
    let decision = s.policy(FIRST_PARTY)?.evaluate(&input(
        "plugins/deploy.wasm",
        b"x",
        Some("{\"mediaType\": 3".to_owned()),
    ));
    assert!(!decision.admitted);
    assert!(
        reasons(&decision).contains("malformed Sigstore bundle"),
        "{}",
        reasons(&decision)
    );
    Ok(())
}

#[test]
fn digest_pin_mismatch_is_refused_before_the_signature_is_checked() -> TestResult {
    let s = Setup::new()?;
    let pinned = sigstore_verify::crypto::sha256(b"the pinned build").to_hex();
    let policy = s.policy(&format!(
        "rules:\n  - name: pinned\n    match: plugins/deploy.wasm\n    digest: sha256:{pinned}\n    authorities:\n      - key: keys/release.pub\n"
    ))?;
    // Unsigned, but the pin is checked first.
    let decision = policy.evaluate(&input("plugins/deploy.wasm", b"another build", None));
    assert!(!decision.admitted);
    let reason = reasons(&decision);
    assert!(
        reason.contains(&format!("but the rule pins sha256:{pinned}")),
        "{reason}"
    );
    assert!(!reason.contains("not signed"), "{reason}");

    let ok = policy.evaluate(&input(
        "plugins/deploy.wasm",
        b"the pinned build",
        Some(sign_blob(b"the pinned build", &s.release)?),
    ));
    assert!(ok.admitted, "{}", reasons(&ok));
    Ok(())
}

#[test]
fn forbidden_import_is_refused() -> TestResult {
    let s = Setup::new()?;
    let bundle = sign_blob(b"x", &s.release)?;
    let mut plugin = input("plugins/deploy.wasm", b"x", Some(bundle));
    plugin.imports.push("wasi:sockets/tcp@0.2.0".to_owned());
    let decision = s.policy(FIRST_PARTY)?.evaluate(&plugin);
    assert!(!decision.admitted);
    let reason = reasons(&decision);
    assert!(reason.contains("imports `wasi:sockets/tcp`"), "{reason}");
    assert!(reason.contains("allowed-imports"), "{reason}");
    // The signature was fine: the signer is still reported.
    assert!(decision.signer.is_some());
    Ok(())
}

#[test]
fn grant_above_the_maximum_is_refused() -> TestResult {
    let s = Setup::new()?;
    let policy = s.policy(
        "rules:\n  - name: third-party\n    match: \"plugins/**\"\n    max-grants: { workspace: read, exec: [], secrets: [], network: [\"*.acme.internal:443\"], env: [CI] }\n",
    )?;
    let mut plugin = input("plugins/deploy.wasm", b"x", None);
    plugin.grants = RequestedGrants {
        workspace: "read".to_owned(),
        env: vec!["CI".to_owned()],
        network: vec!["api.acme.internal:443".to_owned()],
        exec: vec!["sh".to_owned()],
        secrets: Vec::new(),
    };
    let decision = policy.evaluate(&plugin);
    assert!(!decision.admitted);
    assert_eq!(
        reasons(&decision),
        "plugin plugins/deploy.wasm: rule `third-party`: grant `exec: [sh]` exceeds the rule's \
         max-grants (exec: []); remove it from the stage's grants or widen the policy"
    );

    plugin.grants.exec.clear();
    plugin.grants.workspace = "write".to_owned();
    plugin.grants.network.push("*:443".to_owned());
    plugin.grants.secrets.push("DEPLOY_TOKEN".to_owned());
    let decision = policy.evaluate(&plugin);
    let reason = reasons(&decision);
    assert_eq!(decision.refusals.len(), 3, "{reason}");
    assert!(
        reason.contains("grant `workspace: write` exceeds the rule's max-grants (workspace: read)"),
        "{reason}"
    );
    assert!(
        reason.contains("grant `secrets: [DEPLOY_TOKEN]`"),
        "{reason}"
    );
    assert!(reason.contains("grant `network: [*:443]`"), "{reason}");

    // Within the caps, and no signature required by this rule.
    plugin.grants = RequestedGrants {
        workspace: "none".to_owned(),
        env: vec!["CI".to_owned()],
        network: vec!["*.build.acme.internal:443".to_owned()],
        ..RequestedGrants::default()
    };
    let decision = policy.evaluate(&plugin);
    assert!(decision.admitted, "{}", reasons(&decision));
    Ok(())
}

#[test]
fn every_matching_rule_must_pass() -> TestResult {
    let s = Setup::new()?;
    let policy = s.policy(&format!(
        "{FIRST_PARTY}  - name: no-exec\n    match: \"plugins/**\"\n    max-grants: {{ exec: [] }}\n"
    ))?;
    let bundle = sign_blob(b"x", &s.release)?;
    let mut plugin = input("plugins/deploy.wasm", b"x", Some(bundle));
    plugin.grants.exec.push("git".to_owned());
    let decision = policy.evaluate(&plugin);
    assert_eq!(decision.matched_rules, vec!["first-party", "no-exec"]);
    assert!(!decision.admitted);
    // first-party caps exec too: both rules refuse.
    assert_eq!(decision.refusals.len(), 2, "{}", reasons(&decision));
    Ok(())
}

#[test]
fn no_match_setting() -> TestResult {
    let s = Setup::new()?;
    let deny = s
        .policy(FIRST_PARTY)?
        .evaluate(&input("vendor/x.wasm", b"x", None));
    assert!(!deny.admitted);
    assert_eq!(deny.refusals[0].rule, None);
    assert!(deny.refusals[0].reason.contains("no rule of the policy"));
    assert!(deny.refusals[0].reason.contains("`no-match: warn`"));

    let warn = s
        .policy(&FIRST_PARTY.replace("no-match: deny", "no-match: warn"))?
        .evaluate(&input("vendor/x.wasm", b"x", None));
    assert!(warn.admitted);
    assert_eq!(warn.warnings.len(), 1);

    let allow = s
        .policy(&FIRST_PARTY.replace("no-match: deny", "no-match: allow"))?
        .evaluate(&input("vendor/x.wasm", b"x", None));
    assert!(allow.admitted);
    assert!(allow.warnings.is_empty());
    Ok(())
}

#[test]
fn warn_mode_admits_and_warns() -> TestResult {
    let s = Setup::new()?;
    let policy = s.policy(&FIRST_PARTY.replace("mode: enforce", "mode: warn"))?;
    assert_eq!(policy.mode(), Mode::Warn);
    let decision = policy.evaluate(&input("plugins/deploy.wasm", b"x", None));
    assert!(decision.admitted);
    assert!(decision.refusals.is_empty());
    assert_eq!(decision.warnings.len(), 1);
    assert!(decision.warnings[0].contains("is not signed"));
    assert!(decision.warnings[0].contains("mode: warn"));
    Ok(())
}

#[test]
fn inconsistent_digest_input_is_refused() -> TestResult {
    let s = Setup::new()?;
    let bundle = sign_blob(b"x", &s.release)?;
    let mut plugin = input("plugins/deploy.wasm", b"x", Some(bundle));
    plugin.digest = format!("sha256:{}", "0".repeat(64));
    let decision = s.policy(FIRST_PARTY)?.evaluate(&plugin);
    assert!(!decision.admitted);
    assert!(reasons(&decision).contains("is not the sha256 of the plugin's bytes"));
    Ok(())
}

fn keyless_policy(authority: &str) -> String {
    format!(
        "trusted-root: trusted_root.json\nrules:\n  - name: ci\n    match: \"*.txt\"\n    authorities:\n      - key: keys/release.pub\n      - keyless: {authority}\n"
    )
}

#[test]
fn keyless_identity() -> TestResult {
    let s = Setup::new()?;
    let plugin = || {
        input(
            "keyless-blob.txt",
            KEYLESS_BLOB,
            Some(KEYLESS_BUNDLE.to_owned()),
        )
    };

    let exact = s.policy(&keyless_policy(&format!(
        "{{ issuer: \"{KEYLESS_ISSUER}\", subject: \"{KEYLESS_SUBJECT}\" }}"
    )))?;
    let decision = exact.evaluate(&plugin());
    assert!(decision.admitted, "{}", reasons(&decision));
    assert_eq!(
        decision.signer,
        Some(Signer::Keyless {
            issuer: KEYLESS_ISSUER.to_owned(),
            subject: KEYLESS_SUBJECT.to_owned(),
        })
    );

    let regexp = s.policy(&keyless_policy(&format!(
        "{{ issuer: \"{KEYLESS_ISSUER}\", subject-regexp: \"^w\\\\.vollprecht@\" }}"
    )))?;
    assert!(regexp.evaluate(&plugin()).admitted);

    let wrong_identity = s.policy(&keyless_policy(&format!(
        "{{ issuer: \"{KEYLESS_ISSUER}\", subject: \"release-bot@acme.example\" }}"
    )))?;
    let decision = wrong_identity.evaluate(&plugin());
    assert!(!decision.admitted);
    let reason = reasons(&decision);
    assert!(
        reason.contains("an identity the rule does not trust"),
        "{reason}"
    );
    assert!(reason.contains("release-bot@acme.example"), "{reason}");

    let wrong_issuer = s.policy(&keyless_policy(&format!(
        "{{ issuer: \"https://token.actions.githubusercontent.com\", subject: \"{KEYLESS_SUBJECT}\" }}"
    )))?;
    let decision = wrong_issuer.evaluate(&plugin());
    assert!(!decision.admitted);
    let reason = reasons(&decision);
    assert!(
        reason
            .contains("the rule trusts only issuer `https://token.actions.githubusercontent.com`"),
        "{reason}"
    );
    Ok(())
}

#[test]
fn keyless_bundle_under_a_key_only_rule_is_refused() -> TestResult {
    let s = Setup::new()?;
    let policy = s.policy("rules:\n  - name: keys\n    match: \"*.txt\"\n    authorities:\n      - key: keys/release.pub\n")?;
    let decision = policy.evaluate(&input(
        "keyless-blob.txt",
        KEYLESS_BLOB,
        Some(KEYLESS_BUNDLE.to_owned()),
    ));
    assert!(!decision.admitted);
    assert!(
        reasons(&decision).contains("signed keyless"),
        "{}",
        reasons(&decision)
    );
    Ok(())
}

#[test]
fn explain_in_plain_words() -> TestResult {
    let s = Setup::new()?;
    let yaml = format!(
        "apiVersion: sluice.dev/v1\nmode: enforce\nno-match: deny\ntrusted-root: trusted_root.json\nrules:\n  - name: first-party\n    match: [\"plugins/*.wasm\", \"dist/plugins/**\"]\n    authorities:\n      - key: keys/release.pub\n      - keyless: {{ issuer: \"{KEYLESS_ISSUER}\", subject-regexp: \"https://github.com/acme/\" }}\n    digest: sha256:{}\n    allowed-imports: [\"wasi:cli/*\"]\n    max-grants: {{ workspace: read, exec: [], network: [\"*.acme.internal:443\"] }}\n  - name: third-party\n    match: \"vendor/**\"\n",
        "ab".repeat(32)
    );
    let text = s.policy(&yaml)?.explain();
    for expected in [
        "Mode enforce",
        "no-match: deny",
        "trusted root `trusted_root.json`",
        "2 rules; every rule that matches a plugin must pass.",
        "Rule `first-party` applies to plugins matching `plugins/*.wasm` or `dist/plugins/**`:",
        "the key keys/release.pub (ECDSA P-256, sha256:",
        "issuer `https://github.com/login/oauth`",
        "(it may match anywhere in the identity: anchor it with ^…$)",
        "(2 Fulcio CAs, 2 Rekor logs, 2 CT logs, 1 timestamp authority)",
        "its digest must be sha256:abab",
        "it may import only interfaces matching `wasi:cli/*`",
        "workspace read; exec nothing; network `*.acme.internal:443`",
        "Rule `third-party` applies to plugins matching `vendor/**`:",
        "it need not be signed",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    Ok(())
}

/// Loads `yaml` and returns `(line, column, message)` of the error.
fn error_of(s: &Setup, yaml: &str) -> (usize, usize, String) {
    match s.policy(yaml) {
        Ok(_) => panic!("policy was accepted:\n{yaml}"),
        Err(e) => {
            let (line, column) = e.location().unwrap_or((0, 0));
            let rendered = e.to_string();
            assert!(
                rendered.contains(&format!("policy.yaml:{line}:{column}")),
                "{rendered}"
            );
            assert!(e.hint().is_some(), "{rendered}");
            (line, column, e.message())
        }
    }
}

#[test]
fn malformed_policies_point_at_the_problem() -> TestResult {
    let s = Setup::new()?;
    let cases: &[(&str, usize, usize, &str)] = &[
        ("mode: enforce\nrules:\n  - name: a\n    match: x\n    colour: red\n", 5, 5, "unknown field `colour`"),
        ("mode: strict\n", 1, 7, "unknown variant `strict`"),
        ("rules:\n  - match: x\n", 2, 5, "missing field `name`"),
        ("rules:\n  - name: a\n    match: [\"plugins/[.wasm\"]\n", 3, 13, "invalid glob"),
        ("rules:\n  - name: a\n    match: x\n    digest: sha256:1234\n", 4, 13, "is not a sha256 digest"),
        ("rules:\n  - name: a\n    match: x\n    authorities:\n      - key: keys/missing.pub\n", 5, 14, "cannot read key file `keys/missing.pub`"),
        ("rules:\n  - name: a\n    match: x\n    authorities:\n      - key: { pem: \"nope\" }\n", 5, 21, "inline key"),
        ("rules:\n  - name: a\n    match: x\n    authorities:\n      - keyless: { issuer: i, subject: s }\n", 5, 9, "no `trusted-root`"),
        ("trusted-root: trusted_root.json\nrules:\n  - name: a\n    match: x\n    authorities:\n      - keyless: { issuer: i, subject-regexp: \"(\" }\n", 6, 47, "invalid subject-regexp"),
        ("trusted-root: nowhere.json\n", 1, 15, "cannot use trusted root `nowhere.json`"),
        ("rules:\n  - name: a\n    match: x\n  - name: a\n    match: y\n", 4, 11, "two rules are named `a`"),
        ("rules:\n  - name: a\n    match: x\n    max-grants: { network: [\"example.com\"] }\n", 4, 29, "has no port"),
        ("rules:\n  - name: a\n    match: x\n    allowed-imports: [\"wasi:cli/run@0.2.0\"]\n", 4, 23, "has a version"),
        ("rules:\n  - name: a\n    match: x\n    authorities: []\n", 4, 18, "empty `authorities` list"),
        ("rules:\n  - name: a\n    match: [x\n", 3, 14, "did not find expected"),
        ("apiVersion: sluice.dev/v9\n", 1, 13, "unsupported apiVersion"),
        ("", 1, 1, "the policy file is empty"),
        ("# nothing but a comment\n", 1, 1, "the policy file is empty"),
    ];
    for (yaml, line, column, message) in cases {
        let (l, c, m) = error_of(&s, yaml);
        assert!(
            m.contains(message),
            "{yaml}: message {m:?} lacks {message:?}"
        );
        assert_eq!((l, c), (*line, *column), "{yaml}: {m}");
    }
    Ok(())
}

#[test]
fn missing_policy_file() {
    let err = Policy::load(Path::new("/nonexistent/policy.yaml")).err();
    assert!(matches!(err, Some(PolicyError::Io { .. })), "{err:?}");
}

#[test]
fn policy_files_with_a_byte_order_mark_load() -> TestResult {
    let setup = Setup::new()?;
    let policy = setup.policy("\u{feff}mode: warn\nno-match: allow\n")?;
    assert_eq!(policy.mode(), Mode::Warn);
    Ok(())
}

#[test]
fn special_oversized_and_deep_policy_files_are_refused() -> TestResult {
    let setup = Setup::new()?;
    let fifo = setup.dir.path().join("fifo.yaml");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()?
        .success());
    let err = Policy::load(&fifo).err().map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("is a FIFO (named pipe)")),
        "{err:?}"
    );
    let big = setup.dir.path().join("big.yaml");
    std::fs::write(&big, vec![b'#'; (1 << 20) + 1])?;
    let err = Policy::load(&big).err().map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("more than the 1 MiB")),
        "{err:?}"
    );
    let deep = format!("rules: {}\n", "[".repeat(100_000));
    let err = setup.policy(&deep).err();
    assert_eq!(err.as_ref().and_then(PolicyError::location), Some((1, 71)));
    assert!(
        err.is_some_and(|e| e.to_string().contains("more than 64 levels deep")),
        "deep"
    );
    // A key file that is a FIFO is refused, not waited for.
    let key_fifo = setup.dir.path().join("keys/fifo.pub");
    assert!(std::process::Command::new("mkfifo")
        .arg(&key_fifo)
        .status()?
        .success());
    let err = setup
        .policy("rules:\n  - name: a\n    match: x\n    authorities:\n      - key: keys/fifo.pub\n")
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("rule `a`: key file") && e.contains("FIFO")),
        "{err:?}"
    );
    Ok(())
}
