//! `sluice key generate`, `plugin sign`, `plugin verify`, `policy check`
//! and `verify-artifact`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::admission::{component_imports, read_bundle, read_plugin, validate_component};
use crate::exit;
use crate::fsutil::{read_input_file, MAX_KEY_BYTES, MAX_PROVENANCE_BUNDLE_BYTES};
use crate::trust::{self, PluginInput, Policy, RequestedGrants, VerifyOptions};

/// A failed command: what to print and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: i32,
    /// Message (without the `error:` prefix).
    pub message: String,
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        code: exit::INVALID,
        message: message.into(),
    }
}

fn refused(message: impl Into<String>) -> Failure {
    Failure {
        code: exit::REFUSED,
        message: message.into(),
    }
}

/// The key password: `SLUICE_KEY_PASSWORD`, else a prompt on the terminal.
fn password(confirm: bool) -> Result<String, Failure> {
    if let Ok(p) = std::env::var("SLUICE_KEY_PASSWORD") {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(invalid(
            "no key password: set SLUICE_KEY_PASSWORD (stdin is not a terminal, so sluice cannot prompt)",
        ));
    }
    let first = rpassword::prompt_password("Key password: ")
        .map_err(|e| invalid(format!("reading the password: {e}")))?;
    if confirm {
        let again = rpassword::prompt_password("Repeat password: ")
            .map_err(|e| invalid(format!("reading the password: {e}")))?;
        if again != first {
            return Err(invalid("the passwords do not match"));
        }
    }
    Ok(first)
}

/// A text input file: a regular file of at most `limit` bytes, UTF-8.
fn read_text(path: &Path, what: &'static str, limit: u64) -> Result<String, Failure> {
    let bytes = read_input_file(path, limit, what).map_err(|e| invalid(e.to_string()))?;
    String::from_utf8(bytes)
        .map_err(|_| invalid(format!("{what} `{}` is not UTF-8 text", path.display())))
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `sluice key generate --out NAME`.
pub fn key_generate(out: &Path, force: bool) -> Result<String, Failure> {
    let private = with_suffix(out, ".key");
    let public = with_suffix(out, ".pub");
    for p in [&private, &public] {
        if p.exists() && !force {
            return Err(invalid(format!(
                "{} exists; pass --force to overwrite it",
                p.display()
            )));
        }
    }
    let password = password(true)?;
    let pair = trust::generate(password.as_bytes()).map_err(|e| invalid(e.to_string()))?;
    if let Some(parent) = private.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| invalid(format!("{}: {e}", parent.display())))?;
    }
    crate::fsutil::write_atomic(&private, pair.private_pem.as_bytes())
        .map_err(|e| invalid(format!("{}: {e}", private.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600));
    }
    crate::fsutil::write_atomic(&public, pair.public_pem.as_bytes())
        .map_err(|e| invalid(format!("{}: {e}", public.display())))?;
    let fp = trust::load_public(&pair.public_pem)
        .map(|k| k.fingerprint())
        .unwrap_or_default();
    Ok(format!(
        "wrote {} (encrypted private key) and {} (public key, fingerprint sha256:{fp})\n",
        private.display(),
        public.display()
    ))
}

/// `sluice plugin sign FILE --key NAME.key`.
pub fn plugin_sign(file: &Path, key: &Path) -> Result<String, Failure> {
    let (bytes, digest) = read_plugin(file).map_err(invalid)?;
    validate_component(&bytes).map_err(|e| invalid(format!("{}: {e}", file.display())))?;
    let pem = read_text(key, "private key", MAX_KEY_BYTES)?;
    let password = password(false)?;
    let private =
        trust::load_private(&pem, password.as_bytes()).map_err(|e| invalid(e.to_string()))?;
    let bundle = trust::sign_blob(&bytes, &private).map_err(|e| invalid(e.to_string()))?;
    let out = trust::bundle_path(file);
    crate::fsutil::write_atomic(&out, bundle.as_bytes())
        .map_err(|e| invalid(format!("{}: {e}", out.display())))?;
    Ok(format!(
        "signed {} ({digest}) with key sha256:{}\nwrote {}\n",
        file.display(),
        private.public_key().fingerprint(),
        out.display()
    ))
}

/// `sluice plugin verify FILE [--policy P | --key PUB]`.
pub fn plugin_verify(
    file: &Path,
    policy: Option<&Path>,
    key: Option<&Path>,
) -> Result<String, Failure> {
    let (bytes, digest) = read_plugin(file).map_err(invalid)?;
    let imports = validate_component(&bytes)
        .and_then(|()| component_imports(&bytes))
        .map_err(|e| invalid(format!("{}: {e}", file.display())))?;
    let bundle_file = trust::bundle_path(file);
    let bundle = read_bundle(&bundle_file).map_err(invalid)?;
    let mut out = format!("plugin {}\n  digest: {digest}\n", file.display());
    match (policy, key) {
        (Some(policy), _) => {
            let policy = Policy::load(policy).map_err(|e| invalid(e.to_string()))?;
            let reference = file.to_string_lossy().trim_start_matches("./").to_string();
            let decision = policy.evaluate(&PluginInput {
                reference,
                digest: digest.clone(),
                bytes: &bytes,
                bundle,
                imports,
                grants: RequestedGrants::default(),
            });
            if let Some(signer) = &decision.signer {
                out.push_str(&format!("  signed by: {signer}\n"));
            } else {
                out.push_str("  signed by: (no verified signature)\n");
            }
            out.push_str(&format!(
                "  policy: {} ({:?} mode)\n  matching rules: {}\n",
                policy.file().display(),
                policy.mode(),
                if decision.matched_rules.is_empty() {
                    "none".to_string()
                } else {
                    decision.matched_rules.join(", ")
                }
            ));
            for w in &decision.warnings {
                out.push_str(&format!("  warning: {w}\n"));
            }
            if decision.admitted {
                out.push_str("  result: ADMITTED\n");
                Ok(out)
            } else {
                for r in &decision.refusals {
                    out.push_str(&format!("  refused: {}\n", r.reason));
                }
                out.push_str("  result: REFUSED\n");
                Err(refused(out))
            }
        }
        (None, Some(key)) => {
            let public = trust::load_public(&read_text(key, "public key", MAX_KEY_BYTES)?)
                .map_err(|e| invalid(e.to_string()))?;
            let Some(bundle) = bundle else {
                return Err(refused(format!(
                    "{}: unsigned: no bundle at {}; sign it with `sluice plugin sign`",
                    file.display(),
                    bundle_file.display()
                )));
            };
            let opts = VerifyOptions {
                keys: vec![public],
                trusted_root: None,
            };
            match trust::verify_blob(&bytes, &bundle, &opts) {
                Ok(v) => {
                    out.push_str(&format!("  signed by: {}\n  result: VERIFIED\n", v.signer));
                    Ok(out)
                }
                Err(e) => Err(refused(format!("{}: {e}", file.display()))),
            }
        }
        (None, None) => Err(invalid("give --policy P or --key PUB to verify against")),
    }
}

/// `sluice policy check P`.
pub fn policy_check(path: &Path) -> Result<String, Failure> {
    let policy = Policy::load(path).map_err(|e| Failure {
        code: exit::INVALID,
        message: e.to_string(),
    })?;
    Ok(format!("{}: valid\n{}", path.display(), policy.explain()))
}

/// `sluice verify-artifact FILE --provenance BUNDLE --key PUB`.
pub fn verify_artifact(file: &Path, provenance: &Path, key: &Path) -> Result<String, Failure> {
    // An artifact may be as large as a stage's artifact grant allows, so it
    // has no cap of its own here; it must still be a regular file, so that
    // a FIFO cannot block the command.
    let bytes = read_input_file(file, u64::MAX, "artifact").map_err(|e| invalid(e.to_string()))?;
    let bundle = read_text(provenance, "provenance bundle", MAX_PROVENANCE_BUNDLE_BYTES)?;
    let public = trust::load_public(&read_text(key, "public key", MAX_KEY_BYTES)?)
        .map_err(|e| invalid(e.to_string()))?;
    match trust::verify_artifact(&bytes, &bundle, &public) {
        Ok(m) => Ok(format!(
            "{}: VERIFIED\n  digest: {}\n  subject: {}\n  predicate: {}\n  signed by: {}\n",
            file.display(),
            m.digest,
            m.subject,
            m.predicate_type,
            m.signer
        )),
        Err(e) => Err(refused(format!("{}: {e}", file.display()))),
    }
}
