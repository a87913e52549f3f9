//! Interop with sigstore-js (`tests/interop/sigstore-js`): bundles sluice
//! writes verify with `@sigstore/verify`, and bundles `@sigstore/sign` writes
//! with a key verify with sluice.
//!
//! Needs node and npm (it runs `npm ci` when `node_modules` is missing), so
//! it is ignored by default: `cargo test -- --ignored interop`. The scripts
//! directory is found above `CARGO_MANIFEST_DIR`, or given in
//! `SLUICE_INTEROP_JS_DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::trust::{
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
    if !dir.join("node_modules/@sigstore/verify").is_dir() {
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
#[ignore = "needs node and npm; run with `cargo test -- --ignored interop`"]
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
#[ignore = "needs node and npm; run with `cargo test -- --ignored interop`"]
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
