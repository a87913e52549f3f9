//! Interop with sigstore-js (`tests/interop/sigstore-js`): bundles sluice
//! writes verify with `@sigstore/verify`, and bundles `@sigstore/sign` writes
//! with a key verify with sluice.
//!
//! Needs node and npm (it runs `npm ci` when `node_modules` is missing);
//! `scripts/test.sh` installs both, so these run with the rest of the suite.
//! The scripts directory is found above `CARGO_MANIFEST_DIR`, or given in
//! `SLUICE_INTEROP_JS_DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{
    generate, load_private, load_public, sign_blob, sign_statement, verify_artifact, verify_blob,
    Signer, TrustError, VerifyOptions,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn scripts_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SLUICE_INTEROP_JS_DIR") {
        return Some(PathBuf::from(dir));
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("tests/interop/sigstore-js"))
        .find(|d| d.join("package.json").is_file())
}

/// Runs `node SCRIPT ARGS…` in the scripts directory; returns the exit code
/// and what it printed.
fn node(dir: &Path, script: &str, args: &[&Path]) -> Result<(i32, String), std::io::Error> {
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code().unwrap_or(-1), text))
}

fn prepare() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let dir =
        scripts_dir().ok_or("tests/interop/sigstore-js not found; set SLUICE_INTEROP_JS_DIR")?;
    // @sigstore/mock came later: an older install lacks it.
    if !["verify", "mock"]
        .iter()
        .all(|m| dir.join("node_modules/@sigstore").join(m).is_dir())
    {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()?;
        if !status.success() {
            return Err(format!("npm ci failed in {}", dir.display()).into());
        }
    }
    Ok(dir)
}

#[test]
fn interop_sluice_bundles_verify_with_sigstore_js() -> TestResult {
    let dir = prepare()?;
    let tmp = tempfile::tempdir()?;
    let pair = generate(b"")?;
    let key = load_private(&pair.private_pem, b"")?;
    let file = tmp.path().join("plugin.wasm");
    let bundle = tmp.path().join("plugin.wasm.sigstore.json");
    let public = tmp.path().join("release.pub");
    std::fs::write(&file, b"\0asm\x01\0\0\0 interop")?;
    std::fs::write(&bundle, sign_blob(b"\0asm\x01\0\0\0 interop", &key)?)?;
    std::fs::write(&public, &pair.public_pem)?;

    let (code, text) = node(&dir, "verify.mjs", &[&file, &bundle, &public])?;
    assert_eq!(code, 0, "{text}");

    // A flipped byte fails there too.
    std::fs::write(&file, b"\0asm\x01\0\0\0 interoq")?;
    let (code, text) = node(&dir, "verify.mjs", &[&file, &bundle, &public])?;
    assert_eq!(code, 1, "{text}");

    // Another key fails.
    let other = tmp.path().join("other.pub");
    std::fs::write(&other, generate(b"")?.public_pem)?;
    std::fs::write(&file, b"\0asm\x01\0\0\0 interop")?;
    let (code, text) = node(&dir, "verify.mjs", &[&file, &bundle, &other])?;
    assert_eq!(code, 1, "{text}");

    // Provenance (DSSE).
    let artifact = tmp.path().join("app.tar.gz");
    std::fs::write(&artifact, b"artifact")?;
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": "app.tar.gz",
                      "digest": { "sha256": sigstore_verify::crypto::sha256(b"artifact").to_hex() } }],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {}
    });
    let provenance = tmp.path().join("app.provenance.sigstore.json");
    std::fs::write(
        &provenance,
        sign_statement(statement.to_string().as_bytes(), &key)?,
    )?;
    let (code, text) = node(&dir, "verify.mjs", &[&artifact, &provenance, &public])?;
    assert_eq!(code, 0, "{text}");
    Ok(())
}

#[test]
fn interop_sigstore_js_bundles_verify_with_sluice() -> TestResult {
    let dir = prepare()?;
    let tmp = tempfile::tempdir()?;
    let key_pem = tmp.path().join("js.key.pem");
    let pub_pem = tmp.path().join("js.pub.pem");
    let (code, text) = node(&dir, "keygen.mjs", &[&key_pem, &pub_pem])?;
    assert_eq!(code, 0, "{text}");
    let public = load_public(&std::fs::read_to_string(&pub_pem)?)?;

    let file = tmp.path().join("plugin.wasm");
    let bundle = tmp.path().join("plugin.wasm.sigstore.json");
    std::fs::write(&file, b"\0asm\x01\0\0\0 from js")?;
    let (code, text) = node(&dir, "sign.mjs", &[&file, &key_pem, &bundle])?;
    assert_eq!(code, 0, "{text}");
    let json = std::fs::read_to_string(&bundle)?;
    let options = VerifyOptions {
        keys: vec![public.clone()],
        trusted_root: None,
    };
    let verified = verify_blob(b"\0asm\x01\0\0\0 from js", &json, &options)?;
    assert_eq!(
        verified.signer,
        Signer::Key {
            fingerprint: public.fingerprint()
        }
    );
    assert!(matches!(
        verify_blob(b"\0asm\x01\0\0\0 from jS", &json, &options),
        Err(TrustError::DigestMismatch { .. })
    ));

    // DSSE provenance signed by @sigstore/sign.
    let statement = tmp.path().join("statement.json");
    std::fs::write(
        &statement,
        serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{ "name": "app", "digest": { "sha256": sigstore_verify::crypto::sha256(b"app").to_hex() } }],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {}
        })
        .to_string(),
    )?;
    let provenance = tmp.path().join("statement.sigstore.json");
    let dsse = Path::new("--dsse");
    let (code, text) = node(&dir, "sign.mjs", &[dsse, &statement, &key_pem, &provenance])?;
    assert_eq!(code, 0, "{text}");
    let found = verify_artifact(b"app", &std::fs::read_to_string(&provenance)?, &public)?;
    assert_eq!(found.subject, "app");
    Ok(())
}

/// `keyless.mjs`: a private Fulcio (with CT log), Rekor and TSA from
/// `@sigstore/mock`, signing through `@sigstore/sign`. Returns the bundle and
/// the trusted root that trusts only those services.
fn sign_keyless(
    dir: &Path,
    tmp: &Path,
    file: &Path,
    flags: &[&str],
) -> Result<(String, crate::TrustedRoot), Box<dyn std::error::Error>> {
    let bundle = tmp.join("keyless.sigstore.json");
    let root = tmp.join("trusted_root.json");
    let out = Command::new("node")
        .arg("keyless.mjs")
        .args(flags)
        .arg(file)
        .arg(&bundle)
        .arg(&root)
        .current_dir(dir)
        .output()?;
    assert!(
        out.status.success(),
        "keyless.mjs {flags:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((
        std::fs::read_to_string(bundle)?,
        crate::TrustedRoot::from_json(&std::fs::read_to_string(root)?)?,
    ))
}

/// A whole second some time ago, as RFC 3339.
fn seconds_ago(secs: u64) -> (std::time::SystemTime, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now - secs);
    (t, humantime::format_rfc3339_seconds(t).to_string())
}

fn keyless_options(root: crate::TrustedRoot) -> VerifyOptions {
    VerifyOptions {
        keys: Vec::new(),
        trusted_root: Some(root),
    }
}

const KEYLESS_ISSUER: &str = "https://issuer.sluice.test";
const KEYLESS_SUBJECT: &str =
    "https://github.com/acme/plugins/.github/workflows/release.yml@refs/heads/main";

#[test]
fn interop_keyless_tsa_only_bundle_verifies() -> TestResult {
    let dir = prepare()?;
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("plugin.wasm");
    std::fs::write(&file, b"\0asm\x01\0\0\0 keyless tsa")?;
    // --check: @sigstore/verify accepts it too (tlog threshold 0).
    let (json, root) = sign_keyless(&dir, tmp.path(), &file, &["--tsa", "--check"])?;
    let value: serde_json::Value = serde_json::from_str(&json)?;
    // No Rekor entry (sigstore-js leaves the empty list out).
    assert!(value["verificationMaterial"]["tlogEntries"]
        .as_array()
        .is_none_or(Vec::is_empty));
    let verified = verify_blob(
        b"\0asm\x01\0\0\0 keyless tsa",
        &json,
        &keyless_options(root.clone()),
    )?;
    assert_eq!(
        verified.signer,
        Signer::Keyless {
            issuer: KEYLESS_ISSUER.to_owned(),
            subject: KEYLESS_SUBJECT.to_owned(),
        }
    );
    assert!(!verified.tlog_verified);

    // Another file: refused.
    let err = verify_blob(
        b"\0asm\x01\0\0\0 keyless tsA",
        &json,
        &keyless_options(root),
    )
    .err();
    assert!(
        matches!(err, Some(TrustError::DigestMismatch { .. })),
        "{err:?}"
    );

    // A root without the TSA: the timestamp vouches for nothing.
    let mut stripped: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        tmp.path().join("trusted_root.json"),
    )?)?;
    stripped["timestampAuthorities"] = serde_json::json!([]);
    let root = crate::TrustedRoot::from_json(&stripped.to_string())?;
    let err = verify_blob(
        b"\0asm\x01\0\0\0 keyless tsa",
        &json,
        &keyless_options(root),
    )
    .err();
    assert!(
        matches!(
            err,
            Some(TrustError::TransparencyLog { .. } | TrustError::UntrustedCertificate { .. })
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn interop_keyless_fractional_second_timestamp_verifies() -> TestResult {
    let dir = prepare()?;
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("plugin.wasm");
    let bytes = b"\0asm\x01\0\0\0 keyless fractional";
    std::fs::write(&file, bytes)?;
    let (_, cert_time) = seconds_ago(60);
    let tsa_time = cert_time.replace('Z', ".12Z");
    for flags in [
        &[
            "--tsa",
            "--rekor",
            "--cert-time",
            &cert_time,
            "--tsa-time",
            &tsa_time,
        ][..],
        &["--tsa", "--cert-time", &cert_time, "--tsa-time", &tsa_time][..],
    ] {
        let (json, root) = sign_keyless(&dir, tmp.path(), &file, flags)?;
        // The token's genTime really has a fraction: ….12Z.
        let bundle = crate::bundle::parse_bundle(&json)?;
        let token = bundle
            .verification_material
            .timestamp_verification_data
            .rfc3161_timestamps
            .first()
            .ok_or("no timestamp")?
            .signed_timestamp
            .as_bytes()
            .to_vec();
        assert!(
            token.windows(4).any(|w| w == b".12Z"),
            "{flags:?}: no fractional genTime in the token"
        );
        let verified = verify_blob(bytes, &json, &keyless_options(root))?;
        assert_eq!(
            verified.signer,
            Signer::Keyless {
                issuer: KEYLESS_ISSUER.to_owned(),
                subject: KEYLESS_SUBJECT.to_owned(),
            },
            "{flags:?}"
        );
        assert_eq!(
            verified.tlog_verified,
            flags.contains(&"--rekor"),
            "{flags:?}"
        );
    }
    Ok(())
}

#[test]
fn interop_keyless_tsa_only_outside_certificate_validity_is_refused() -> TestResult {
    let dir = prepare()?;
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("plugin.wasm");
    let bytes = b"\0asm\x01\0\0\0 keyless late";
    std::fs::write(&file, bytes)?;
    // The certificate is valid for 10 minutes from two hours ago; the TSA
    // says the signature existed one hour ago (or 3 hours ago: before it).
    let (_, cert_time) = seconds_ago(2 * 3600);
    for (_, tsa_time) in [seconds_ago(3600), seconds_ago(3 * 3600)] {
        let flags = ["--tsa", "--cert-time", &cert_time, "--tsa-time", &tsa_time];
        let (json, root) = sign_keyless(&dir, tmp.path(), &file, &flags)?;
        let err = verify_blob(bytes, &json, &keyless_options(root)).err();
        assert!(
            matches!(err, Some(TrustError::UntrustedCertificate { .. })),
            "{flags:?}: {err:?}"
        );
    }
    // Control: a TSA time inside the validity verifies.
    let (_, inside) = seconds_ago(2 * 3600 - 60);
    let flags = ["--tsa", "--cert-time", &cert_time, "--tsa-time", &inside];
    let (json, root) = sign_keyless(&dir, tmp.path(), &file, &flags)?;
    verify_blob(bytes, &json, &keyless_options(root))?;
    Ok(())
}
