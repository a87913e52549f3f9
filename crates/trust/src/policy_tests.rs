//! Tests of policy loading and evaluation.

use std::path::{Path, PathBuf};

use super::*;
use crate::keys::{generate, load_private, PrivateKey};
use crate::sign_blob;

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
        attestations: None,
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
        network: net(&["api.acme.internal:443"]),
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
    plugin.grants.network.extend(net(&["*:443"]));
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
        network: net(&["*.build.acme.internal:443"]),
        ..RequestedGrants::default()
    };
    let decision = policy.evaluate(&plugin);
    assert!(decision.admitted, "{}", reasons(&decision));
    Ok(())
}

/// Network patterns as a stage grants them.
fn net(patterns: &[&str]) -> Vec<NetPattern> {
    patterns
        .iter()
        .map(|p| p.parse().expect("a network pattern"))
        .collect()
}

/// Issue 16: the host matched network patterns case-insensitively, but
/// `max-grants` compared the text, so a cap written `*.Example.com:443`
/// refused a grant the host would have treated as within it.
#[test]
fn network_caps_compare_host_names_case_insensitively() -> TestResult {
    let s = Setup::new()?;
    let policy = s.policy(
        "rules:\n  - name: capped\n    match: \"plugins/**\"\n    max-grants: { network: [\"*.Example.com:443\", \"localhost:8000-8100\"] }\n",
    )?;
    let mut plugin = input("plugins/deploy.wasm", b"x", None);
    for admitted in [
        "api.example.com:443",
        "API.example.COM:443",
        "*.eu.example.com:443",
        "localhost:8080",
        "localhost:8010-8020",
    ] {
        plugin.grants.network = net(&[admitted]);
        let decision = policy.evaluate(&plugin);
        assert!(decision.admitted, "{admitted}: {}", reasons(&decision));
    }
    for refused in [
        "example.com:443",
        "api.example.com:80",
        "localhost:8000-8200",
    ] {
        plugin.grants.network = net(&[refused]);
        let decision = policy.evaluate(&plugin);
        assert!(!decision.admitted, "{refused} was admitted");
    }
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

// ---------------------------------------------------------------------------
// Policy features: static rules, per-rule mode, issuer-regexp, required
// time evidence, thresholds, attestations.

const MANAGED_ARTIFACT: &[u8] =
    include_bytes!("../../../tests/fixtures/trust/managed-key-artifact.txt");
const MANAGED_BUNDLE: &str =
    include_str!("../../../tests/fixtures/trust/managed-key-artifact.txt.sigstore.json");
const MANAGED_KEY: &str = include_str!("../../../tests/fixtures/trust/managed-key.pub");

#[test]
fn static_fail_refuses_with_its_message_and_static_pass_checks_nothing() -> TestResult {
    let s = Setup::new()?;
    let policy = s.policy(
        "rules:\n  - name: retired\n    match: \"plugins/legacy/*\"\n    static: fail\n    message: legacy plugins are retired, use plugins/v2\n  - name: open\n    match: \"plugins/free/*\"\n    static: pass\n",
    )?;
    let decision = policy.evaluate(&input("plugins/legacy/a.wasm", b"x", None));
    assert!(!decision.admitted);
    assert_eq!(decision.refusals[0].rule.as_deref(), Some("retired"));
    let reason = reasons(&decision);
    assert!(
        reason.contains("rule `retired` refuses every plugin it matches (static: fail): legacy plugins are retired, use plugins/v2"),
        "{reason}"
    );
    let decision = policy.evaluate(&input("plugins/free/a.wasm", b"x", None));
    assert!(decision.admitted, "{}", reasons(&decision));
    assert_eq!(decision.matched_rules, vec!["open"]);

    // A static rule checks nothing else; `message` belongs to `static: fail`.
    let (_, _, message) = error_of(
        &s,
        "rules:\n  - name: r\n    match: x\n    static: fail\n    authorities: [{ key: keys/release.pub }]\n",
    );
    assert!(
        message.contains("is static, so it checks nothing else"),
        "{message}"
    );
    let (_, _, message) = error_of(&s, "rules:\n  - name: r\n    match: x\n    message: hi\n");
    assert!(
        message.contains("`message` is only shown by `static: fail`"),
        "{message}"
    );
    let (_, _, message) = error_of(&s, "rules:\n  - name: r\n    match: x\n    static: maybe\n");
    assert!(message.contains("unknown variant"), "{message}");
    Ok(())
}

#[test]
fn a_warn_rule_admits_with_a_warning_and_an_enforced_rule_still_refuses() -> TestResult {
    let s = Setup::new()?;
    let policy = s.policy(
        "rules:\n  - name: soft\n    match: \"plugins/*\"\n    mode: warn\n    authorities: [{ key: keys/release.pub }]\n",
    )?;
    let decision = policy.evaluate(&input("plugins/a.wasm", b"x", None));
    assert!(decision.admitted, "{}", reasons(&decision));
    assert_eq!(decision.warnings.len(), 1);
    assert!(
        decision.warnings[0].contains("is not signed")
            && decision.warnings[0].contains("rule `soft` is in `mode: warn`"),
        "{:?}",
        decision.warnings
    );

    // Another, enforced rule that matches still refuses.
    let policy = s.policy(
        "rules:\n  - name: soft\n    match: \"plugins/*\"\n    mode: warn\n    authorities: [{ key: keys/release.pub }]\n  - name: hard\n    match: \"plugins/*\"\n    mode: enforce\n    authorities: [{ key: keys/release.pub }]\n",
    )?;
    let decision = policy.evaluate(&input("plugins/a.wasm", b"x", None));
    assert!(!decision.admitted);
    assert_eq!(decision.refusals.len(), 1);
    assert_eq!(decision.refusals[0].rule.as_deref(), Some("hard"));
    assert_eq!(decision.warnings.len(), 1);
    Ok(())
}

#[test]
fn issuer_regexp() -> TestResult {
    let s = Setup::new()?;
    let plugin = || {
        input(
            "keyless-blob.txt",
            KEYLESS_BLOB,
            Some(KEYLESS_BUNDLE.to_owned()),
        )
    };
    let matching = s.policy(&keyless_policy(&format!(
        "{{ issuer-regexp: \"^https://github\\\\.com/login/.*$\", subject: \"{KEYLESS_SUBJECT}\" }}"
    )))?;
    let decision = matching.evaluate(&plugin());
    assert!(decision.admitted, "{}", reasons(&decision));
    assert!(matching
        .explain()
        .contains("an issuer matching the regular expression `^https://github\\.com/login/.*$`"));

    let other = s.policy(&keyless_policy(&format!(
        "{{ issuer-regexp: \"^https://token\\\\.actions\\\\.githubusercontent\\\\.com$\", subject: \"{KEYLESS_SUBJECT}\" }}"
    )))?;
    let decision = other.evaluate(&plugin());
    assert!(!decision.admitted);
    let reason = reasons(&decision);
    assert!(reason.contains("issuer-regexp"), "{reason}");

    let (_, _, message) = error_of(
        &s,
        &keyless_policy("{ issuer: a, issuer-regexp: b, subject: c }"),
    );
    assert!(
        message.contains("exactly one of `issuer` and `issuer-regexp`"),
        "{message}"
    );
    let (_, _, message) = error_of(&s, &keyless_policy("{ subject: c }"));
    assert!(
        message.contains("exactly one of `issuer` and `issuer-regexp`"),
        "{message}"
    );
    let (_, _, message) = error_of(&s, &keyless_policy("{ issuer-regexp: \"(\", subject: c }"));
    assert!(message.contains("invalid issuer-regexp"), "{message}");
    Ok(())
}

fn evidence_policy(s: &Setup, require: &str) -> Result<Policy, PolicyError> {
    std::fs::write(s.dir.path().join("keys/managed.pub"), MANAGED_KEY)
        .map_err(|e| PolicyError::io(Path::new("x"), e))?;
    s.policy(&format!(
        "trusted-root: trusted_root.json\nrules:\n  - name: evidence\n    match: \"*.txt\"\n    authorities:\n      - key: keys/managed.pub\n        require: {require}\n      - key: keys/release.pub\n        require: {require}\n"
    ))
}

#[test]
fn required_time_evidence_that_verifies_admits() -> TestResult {
    let s = Setup::new()?;
    for require in ["[timestamp]", "[tlog]", "[timestamp, tlog]"] {
        let policy = evidence_policy(&s, require)?;
        let decision = policy.evaluate(&input(
            "artifact.txt",
            MANAGED_ARTIFACT,
            Some(MANAGED_BUNDLE.to_owned()),
        ));
        assert!(decision.admitted, "{require}: {}", reasons(&decision));
    }
    let explained = evidence_policy(&s, "[timestamp, tlog]")?.explain();
    assert!(
        explained.contains("the bundle must carry an RFC 3161 timestamp and a transparency-log entry, verified against the trusted root"),
        "{explained}"
    );
    Ok(())
}

#[test]
fn required_time_evidence_fails_closed() -> TestResult {
    let s = Setup::new()?;
    // A key-only bundle carries no evidence at all.
    let bundle = sign_blob(b"x", &s.release)?;
    for (require, expected) in [
        (
            "[timestamp]",
            "requires an RFC 3161 timestamp, but the bundle carries none",
        ),
        (
            "[tlog]",
            "requires a transparency-log entry, but the bundle carries none",
        ),
    ] {
        let decision =
            evidence_policy(&s, require)?.evaluate(&input("p.txt", b"x", Some(bundle.clone())));
        assert!(!decision.admitted, "{require}");
        assert!(
            reasons(&decision).contains(expected),
            "{}",
            reasons(&decision)
        );
    }

    // A bogus timestamp: another bundle's RFC 3161 token pasted in, and the
    // managed bundle's own token with a byte flipped.
    let managed: serde_json::Value = serde_json::from_str(MANAGED_BUNDLE)?;
    let token = managed["verificationMaterial"]["timestampVerificationData"].clone();
    let mut forged: serde_json::Value = serde_json::from_str(&bundle)?;
    forged["verificationMaterial"]["timestampVerificationData"] = token.clone();
    let decision = evidence_policy(&s, "[timestamp]")?.evaluate(&input(
        "p.txt",
        b"x",
        Some(forged.to_string()),
    ));
    assert!(!decision.admitted);
    assert!(
        reasons(&decision).contains("RFC 3161 timestamp does not verify"),
        "{}",
        reasons(&decision)
    );
    let mut damaged = managed.clone();
    let signed = token["rfc3161Timestamps"][0]["signedTimestamp"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let flipped: String = signed
        .char_indices()
        .map(|(i, c)| {
            if i == 200 {
                if c == 'A' {
                    'B'
                } else {
                    'A'
                }
            } else {
                c
            }
        })
        .collect();
    damaged["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]
        ["signedTimestamp"] = serde_json::json!(flipped);
    let decision = evidence_policy(&s, "[timestamp]")?.evaluate(&input(
        "artifact.txt",
        MANAGED_ARTIFACT,
        Some(damaged.to_string()),
    ));
    assert!(!decision.admitted, "a damaged timestamp must not pass");

    // Without a trusted root the requirement cannot be met: a load error.
    let (_, _, message) = error_of(
        &s,
        "rules:\n  - name: r\n    match: x\n    authorities:\n      - key: keys/release.pub\n        require: [timestamp]\n",
    );
    assert!(
        message.contains("no `trusted-root` to verify it against"),
        "{message}"
    );
    let (_, _, message) = error_of(
        &s,
        "trusted-root: trusted_root.json\nrules:\n  - name: r\n    match: x\n    authorities:\n      - keyless: { issuer: i, subject: s }\n        require: [tlog]\n",
    );
    assert!(
        message.contains("`require` applies to key authorities"),
        "{message}"
    );
    Ok(())
}

fn threshold_policy(s: &Setup, threshold: usize) -> Result<Policy, Box<dyn std::error::Error>> {
    std::fs::write(
        s.dir.path().join("keys/stranger.pub"),
        s.stranger.public_key().to_pem(),
    )?;
    Ok(s.policy(&format!(
        "rules:\n  - name: two-person\n    match: \"plugins/*\"\n    threshold: {threshold}\n    authorities:\n      - key: keys/release.pub\n      - key: keys/stranger.pub\n"
    ))?)
}

#[test]
fn threshold_counts_distinct_authorities() -> TestResult {
    let s = Setup::new()?;
    let policy = threshold_policy(&s, 2)?;
    let one = sign_blob(b"x", &s.release)?;
    let two = sign_blob(b"x", &s.stranger)?;

    // One signature, as a single bundle or a list of one.
    for bundle in [one.clone(), format!("[{one}]")] {
        let decision = policy.evaluate(&input("plugins/a.wasm", b"x", Some(bundle)));
        assert!(!decision.admitted);
        let reason = reasons(&decision);
        assert!(
            reason.contains(
                "requires signatures by 2 distinct authorities (threshold: 2), but 1 was met"
            ),
            "{reason}"
        );
    }
    // The same signature twice is still one authority.
    let decision = policy.evaluate(&input(
        "plugins/a.wasm",
        b"x",
        Some(format!("[{one},{one}]")),
    ));
    assert!(!decision.admitted);
    // Two signers.
    let decision = policy.evaluate(&input(
        "plugins/a.wasm",
        b"x",
        Some(format!("[{one},{two}]")),
    ));
    assert!(decision.admitted, "{}", reasons(&decision));
    // A bad signature in the list is named.
    let bad = sign_blob(b"other", &s.stranger)?;
    let decision = policy.evaluate(&input(
        "plugins/a.wasm",
        b"x",
        Some(format!("[{one},{bad}]")),
    ));
    assert!(!decision.admitted);
    assert!(
        reasons(&decision).contains("signature #2:"),
        "{}",
        reasons(&decision)
    );
    // Threshold 1 takes any one of a list.
    let decision = threshold_policy(&s, 1)?.evaluate(&input(
        "plugins/a.wasm",
        b"x",
        Some(format!("[{bad},{one}]")),
    ));
    assert!(decision.admitted, "{}", reasons(&decision));

    assert!(policy
        .explain()
        .contains("signed by at least 2 of these authorities"));
    for (threshold, expected) in [
        (0, "threshold 0 cannot be met"),
        (3, "threshold 3 cannot be met by its 2 authorities"),
    ] {
        let err = threshold_policy(&s, threshold).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains(expected)),
            "{err:?}"
        );
    }
    Ok(())
}

fn attest(
    key: &PrivateKey,
    bytes: &[u8],
    predicate_type: &str,
    builder: &str,
) -> Result<String, TrustError> {
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": "a.wasm", "digest": { "sha256": sigstore_verify::crypto::sha256(bytes).to_hex() } }],
        "predicateType": predicate_type,
        "predicate": {
            "buildDefinition": {
                "buildType": "https://sluice.dev/build/v1",
                "resolvedDependencies": [
                    { "uri": "git+https://github.com/acme/plugins", "digest": { "gitCommit": "0123abcd" } }
                ]
            },
            "runDetails": { "builder": { "id": builder } }
        }
    });
    crate::sign_statement(statement.to_string().as_bytes(), key)
}

const ATTESTED: &str = "\
rules:
  - name: built-by-ci
    match: \"plugins/*\"
    attestations:
      - predicate-type: https://slsa.dev/provenance/v1
        authorities: [{ key: keys/release.pub }]
        conditions:
          builder-id: \"https://ci.acme.dev/*\"
          source-repository: git+https://github.com/acme/plugins
";

#[test]
fn attestation_conditions() -> TestResult {
    let s = Setup::new()?;
    let policy = s.policy(ATTESTED)?;
    let slsa = "https://slsa.dev/provenance/v1";
    let with = |attestations: Option<String>| PluginInput {
        attestations,
        ..input("plugins/a.wasm", b"x", None)
    };

    let good = attest(&s.release, b"x", slsa, "https://ci.acme.dev/builder@v1")?;
    let decision = policy.evaluate(&with(Some(good.clone())));
    assert!(decision.admitted, "{}", reasons(&decision));

    // Missing.
    let decision = policy.evaluate(&with(None));
    assert!(!decision.admitted);
    assert!(
        reasons(&decision).contains("there is none at plugins/a.wasm.intoto.sigstore.json"),
        "{}",
        reasons(&decision)
    );
    // Wrong builder.
    let wrong = attest(&s.release, b"x", slsa, "https://evil.example/builder")?;
    let decision = policy.evaluate(&with(Some(wrong.clone())));
    assert!(!decision.admitted);
    assert!(
        reasons(&decision).contains(
            "its builder id is `https://evil.example/builder`, not `https://ci.acme.dev/*`"
        ),
        "{}",
        reasons(&decision)
    );
    // Signed by a key the condition does not trust.
    let stranger = attest(&s.stranger, b"x", slsa, "https://ci.acme.dev/builder")?;
    assert!(!policy.evaluate(&with(Some(stranger))).admitted);
    // About another plugin.
    let other = attest(&s.release, b"other", slsa, "https://ci.acme.dev/builder")?;
    let decision = policy.evaluate(&with(Some(other)));
    assert!(!decision.admitted);
    assert!(
        reasons(&decision).contains("not a subject") || reasons(&decision).contains("subject"),
        "{}",
        reasons(&decision)
    );
    // Another predicate type only.
    let vsa = attest(
        &s.release,
        b"x",
        "https://slsa.dev/verification_summary/v1",
        "https://ci.acme.dev/b",
    )?;
    let decision = policy.evaluate(&with(Some(vsa.clone())));
    assert!(!decision.admitted);
    assert!(
        reasons(&decision)
            .contains("no attestation has predicate type `https://slsa.dev/provenance/v1`"),
        "{}",
        reasons(&decision)
    );
    // A list where one satisfies it.
    let decision = policy.evaluate(&with(Some(format!("[{vsa},{wrong},{good}]"))));
    assert!(decision.admitted, "{}", reasons(&decision));

    let explained = policy.explain();
    assert!(
        explained.contains("it must carry an attestation (in FILE.intoto.sigstore.json) of predicate type `https://slsa.dev/provenance/v1`")
            && explained.contains("its builder id matches `https://ci.acme.dev/*`"),
        "{explained}"
    );

    // Without authorities anywhere, or with a keyless one: load errors.
    let (_, _, message) = error_of(
        &s,
        "rules:\n  - name: r\n    match: x\n    attestations:\n      - predicate-type: t\n",
    );
    assert!(
        message.contains("names no authorities, and the rule has none"),
        "{message}"
    );
    let (_, _, message) = error_of(
        &s,
        "rules:\n  - name: r\n    match: x\n    attestations:\n      - predicate-type: t\n        authorities: [{ key: keys/release.pub }]\n        conditions: { builder: x }\n",
    );
    assert!(message.contains("unknown field `builder`"), "{message}");
    Ok(())
}

#[test]
fn explain_mode_and_static_rules() -> TestResult {
    let s = Setup::new()?;
    let text = s
        .policy("rules:\n  - name: soft\n    match: x\n    mode: warn\n    static: fail\n    message: no\n  - name: open\n    match: y\n    static: pass\n")?
        .explain();
    assert!(
        text.contains("rule mode warn: when this rule fails, the plugin still runs"),
        "{text}"
    );
    assert!(
        text.contains("it is always refused (static: fail), with the message \"no\""),
        "{text}"
    );
    assert!(
        text.contains("it always passes this rule (static: pass)"),
        "{text}"
    );
    Ok(())
}

const REGISTRY_POLICY: &str = "\
mode: enforce
no-match: deny
rules:
  - name: team
    match: [\"oci://Reg.Example/team/**\", \"oci://127.0.0.1:*/sluice/*\"]
    authorities:
      - key: keys/release.pub
  - name: files
    match: [\"**\"]
";

#[test]
fn oci_globs_match_references_and_path_globs_match_files_only() -> TestResult {
    let s = Setup::new()?;
    let policy = s.policy(REGISTRY_POLICY)?;
    let bytes = b"\0asm lint";
    let bundle = Some(sign_blob(bytes, &s.release)?);
    let decide = |reference: &str| policy.evaluate(&input(reference, bytes, bundle.clone()));

    // The registry host is matched in lowercase; `**` crosses segments.
    for reference in [
        "oci://reg.example/team/lint",
        "oci://reg.example/team/sub/lint",
        "oci://127.0.0.1:5000/sluice/lint",
    ] {
        let d = decide(reference);
        assert!(d.admitted, "{reference}: {}", reasons(&d));
        assert_eq!(d.matched_rules, ["team"], "{reference}");
    }
    // A directory named like the registry is a file: only `files` matches.
    let d = decide("reg.example/team/lint");
    assert_eq!(d.matched_rules, ["files"]);
    // `oci://**` and `oci://*/**` cover every reference, and no file.
    for glob in ["oci://**", "oci://*/**"] {
        let any = s.policy(&format!("rules:\n  - name: any\n    match: \"{glob}\"\n"))?;
        let eval = |reference: &str| any.evaluate(&input(reference, bytes, None));
        assert_eq!(eval("oci://ghcr.io/a/b/c").matched_rules, ["any"], "{glob}");
        assert_eq!(
            eval("oci://127.0.0.1:5000/x").matched_rules,
            ["any"],
            "{glob}"
        );
        assert!(eval("plugins/x.wasm").matched_rules.is_empty(), "{glob}");
    }
    // `*` stays in its segment; other registries and repositories are not
    // covered, and the file glob `**` never matches a reference.
    for reference in [
        "oci://127.0.0.1:5000/sluice/team/lint",
        "oci://reg.example.evil/team/lint",
        "oci://reg.example/teams/lint",
        "oci://other.example/team/lint",
    ] {
        let d = decide(reference);
        assert!(
            d.matched_rules.is_empty(),
            "{reference}: {:?}",
            d.matched_rules
        );
        assert!(!d.admitted, "{reference}");
        assert!(
            reasons(&d).contains(&format!("add a rule whose `match` covers `{reference}`")),
            "{}",
            reasons(&d)
        );
    }
    Ok(())
}

#[test]
fn an_oci_rule_checks_signatures_and_says_how_to_sign_in_the_registry() -> TestResult {
    let s = Setup::new()?;
    let policy = s.policy(REGISTRY_POLICY)?;
    let bytes = b"\0asm lint";
    let unsigned = policy.evaluate(&input("oci://reg.example/team/lint", bytes, None));
    assert!(!unsigned.admitted);
    let reason = reasons(&unsigned);
    assert!(
        reason.contains(
            "`oci://reg.example/team/lint` is not signed: the registry holds no Sigstore bundle"
        ),
        "{reason}"
    );
    assert!(
        reason.contains("sluice plugin sign oci://reg.example/team/lint:TAG --key KEY.key"),
        "{reason}"
    );
    // A signature over other bytes (a consistent but modified component
    // under the old signature) is refused.
    let other = sign_blob(b"\0asm original", &s.release)?;
    let forged = policy.evaluate(&input("oci://reg.example/team/lint", bytes, Some(other)));
    assert!(!forged.admitted, "{:?}", forged);
    // Signed by a key the rule does not trust.
    let stranger = sign_blob(bytes, &s.stranger)?;
    let d = policy.evaluate(&input("oci://reg.example/team/lint", bytes, Some(stranger)));
    assert!(!d.admitted);
    Ok(())
}

#[test]
fn malformed_oci_globs_name_the_place_and_the_fix() -> TestResult {
    let s = Setup::new()?;
    let rule = |glob: &str| format!("rules:\n  - name: a\n    match: [\"x\", \"{glob}\"]\n");
    let cases = [
        ("oci://ghcr.io/acme/lint:1.0", "it names a tag"),
        ("oci://ghcr.io/acme/lint@sha256:abab", "it pins a digest"),
        ("oci://ghcr.io", "it names no repository"),
        ("oci://ghcr.io/", "it names no repository"),
        ("oci:/ghcr.io/acme/**", "the scheme is written `oci://`"),
        ("OCI://ghcr.io/acme/**", "the scheme is written `oci://`"),
        ("oci://ghcr.io/Acme/**", "has uppercase letters"),
        ("oci://ghcr.io/acme/[lint", "invalid glob"),
    ];
    for (glob, problem) in cases {
        let (line, column, message) = error_of(&s, &rule(glob));
        assert_eq!((line, column), (3, 18), "{glob}: {message}");
        assert!(message.contains(problem), "{glob}: {message}");
        if problem != "invalid glob" {
            assert!(
                message.contains(&format!("`{glob}` is not a glob of OCI references")),
                "{message}"
            );
        }
    }
    let err = s
        .policy(&rule("oci://ghcr.io/acme/lint:1"))
        .err()
        .ok_or("accepted")?;
    assert!(
        err.hint()
            .is_some_and(|h| h.contains("pin content with the rule's `digest:`")),
        "{err}"
    );
    Ok(())
}

#[test]
fn explain_tells_file_globs_and_oci_globs_apart() -> TestResult {
    let s = Setup::new()?;
    let yaml = "rules:\n  - name: both\n    match: [\"plugins/*.wasm\", \"oci://ghcr.io/acme/**\"]\n  - name: registry\n    match: \"oci://127.0.0.1:*/sluice/**\"\n";
    let text = s.policy(yaml)?.explain();
    for expected in [
        "Rule `both` applies to plugin files matching `plugins/*.wasm` and plugins from registries whose reference (without tag or digest) matches `oci://ghcr.io/acme/**`:",
        "Rule `registry` applies to plugins from registries whose reference (without tag or digest) matches `oci://127.0.0.1:*/sluice/**`:",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    Ok(())
}
