//! `sluice plugin push FILE oci://…`, `plugin pull oci://…` and `plugin
//! sign oci://…`: components and their Sigstore bundles in OCI registries
//! (docs/plugins.md).
//!
//! What is signed is always the component bytes, so a bundle in the
//! registry is exactly the `FILE.sigstore.json` that `plugin sign FILE`
//! writes, and a pulled plugin verifies like a local one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sluice_engine::admission::{read_plugin, validate_component};
use sluice_oci::format::BUNDLE_PREDICATE_TYPE_ANNOTATION;
use sluice_oci::{OciError, OciReference, ReferrerKind, Registry};
use sluice_trust as trust;

use crate::commands::trust::{load_signing_key, Failure};
use crate::registry::RegistryArgs;

/// Why `plugin push|pull|sign oci://…` failed; [`crate::error::CliError`]
/// maps it to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum OciCommandError {
    /// The reference does not parse, or lacks what the command needs.
    #[error("{0}; {hint}", hint = .0.hint())]
    Reference(#[from] sluice_types::oci::OciReferenceError),
    /// A reference of the wrong shape for the command.
    #[error("{0}")]
    Usage(String),
    /// The registry, its content or the registry options.
    #[error(transparent)]
    Registry(#[from] OciError),
    /// The file, the key or the signing.
    #[error(transparent)]
    Trust(#[from] Failure),
    /// An output file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn parse(reference: &str) -> Result<OciReference, OciCommandError> {
    Ok(reference.parse::<OciReference>()?)
}

fn registry(args: &RegistryArgs) -> Result<Registry, OciCommandError> {
    Ok(Registry::new(args.options()?)?)
}

/// `r` pinned: its own digest, or the one its tag resolves to now.
async fn pin(registry: &Registry, r: &OciReference) -> Result<OciReference, OciCommandError> {
    if r.digest().is_some() {
        return Ok(r.clone());
    }
    let digest = registry.resolve(r).await?;
    Ok(r.with_digest(&digest)?)
}

/// `sluice plugin push FILE oci://REGISTRY/REPO:TAG [--sign KEY]`: pushes
/// the component, attaches `FILE.sigstore.json` and
/// `FILE.intoto.sigstore.json` when they exist, and a new signature by KEY
/// when given. The last line printed is the pinned reference.
pub async fn push(
    file: &Path,
    reference: &str,
    sign: Option<&Path>,
    args: &RegistryArgs,
) -> Result<String, OciCommandError> {
    let r = parse(reference)?;
    if r.tag().is_none() || r.digest().is_some() {
        return Err(OciCommandError::Usage(format!(
            "push to a tag without a digest (`oci://{}/{}:TAG`), not `{r}`: the registry computes the digest",
            r.registry(),
            r.repository()
        )));
    }
    let (bytes, digest) = read_plugin(file).map_err(Failure::from)?;
    validate_component(&bytes).map_err(|reason| Failure::Component {
        file: file.to_path_buf(),
        reason,
    })?;
    // Everything local is checked before the first byte goes out.
    let key = sign.map(load_signing_key).transpose()?;
    let signatures = read_bundles(&trust::bundle_path(file))?;
    for bundle in &signatures {
        check_signed_digest(bundle, &digest, &trust::bundle_path(file))?;
    }
    let attestations = read_bundles(&trust::policy_rules::attestation_path(file))?;
    let registry = registry(args)?;
    let pushed = registry.push(&r, &bytes).await?;
    let pinned = r.with_digest(&pushed.manifest_digest)?;
    let mut out = format!(
        "pushed {} ({digest}) as manifest {}\n",
        file.display(),
        pushed.manifest_digest
    );
    for bundle in &signatures {
        let at = registry
            .attach(&pinned, ReferrerKind::Signature, bundle, BTreeMap::new())
            .await?;
        out.push_str(&format!(
            "attached signature from {} ({at})\n",
            trust::bundle_path(file).display()
        ));
    }
    if let Some(key) = &key {
        let bundle = trust::sign_blob(&bytes, key).map_err(Failure::from)?;
        let at = registry
            .attach(
                &pinned,
                ReferrerKind::Signature,
                bundle.as_bytes(),
                BTreeMap::new(),
            )
            .await?;
        out.push_str(&format!(
            "signed with key sha256:{} and attached the signature ({at})\n",
            key.public_key().fingerprint()
        ));
    }
    for bundle in &attestations {
        let mut annotations = BTreeMap::new();
        if let Some(t) = predicate_type(bundle) {
            annotations.insert(BUNDLE_PREDICATE_TYPE_ANNOTATION.to_owned(), t);
        }
        let at = registry
            .attach(&pinned, ReferrerKind::Attestation, bundle, annotations)
            .await?;
        out.push_str(&format!("attached attestation ({at})\n"));
    }
    out.push_str(&format!("{pinned}\n"));
    Ok(out)
}

/// `sluice plugin pull oci://… [-o FILE]`: writes the component to FILE
/// (default `NAME.wasm`, NAME the repository's last component) and its
/// referrers' bundles to `FILE.sigstore.json` and
/// `FILE.intoto.sigstore.json`, as `plugin sign`/`attest` would have.
pub async fn pull(
    reference: &str,
    output: Option<&Path>,
    args: &RegistryArgs,
) -> Result<String, OciCommandError> {
    let r = parse(reference)?;
    let registry = registry(args)?;
    let pinned = pin(&registry, &r).await?;
    let pulled = registry.pull(&pinned).await?;
    let signatures = registry.referrers(&pinned, ReferrerKind::Signature).await?;
    let attestations = registry
        .referrers(&pinned, ReferrerKind::Attestation)
        .await?;
    let file = match output {
        Some(path) => path.to_path_buf(),
        None => PathBuf::from(format!(
            "{}.wasm",
            r.repository().rsplit('/').next().unwrap_or(r.repository())
        )),
    };
    write(&file, &pulled.component)?;
    let mut out = format!(
        "pulled {pinned} (component {})\nwrote {}\n",
        pulled.component_digest,
        file.display()
    );
    for (path, bundles, what) in [
        (trust::bundle_path(&file), &signatures, "signature"),
        (
            trust::policy_rules::attestation_path(&file),
            &attestations,
            "attestation",
        ),
    ] {
        match sluice_oci::bundle_file_text(bundles)? {
            Some(text) => {
                write(&path, text.as_bytes())?;
                out.push_str(&format!(
                    "wrote {} ({} {what}{})\n",
                    path.display(),
                    bundles.len(),
                    if bundles.len() == 1 { "" } else { "s" }
                ));
            }
            // A bundle left from an earlier pull would no longer be the
            // registry's word about this component.
            None => remove_stale(&path)?,
        }
    }
    if signatures.is_empty() {
        out.push_str(&format!(
            "note: {pinned} has no signatures in the registry\n"
        ));
    }
    Ok(out)
}

/// `sluice plugin sign oci://… --key KEY`: pulls the component (digests
/// checked), signs its bytes and attaches the bundle as a referrer.
pub async fn sign(
    reference: &str,
    key: &Path,
    args: &RegistryArgs,
) -> Result<String, OciCommandError> {
    let r = parse(reference)?;
    let private = load_signing_key(key)?;
    let registry = registry(args)?;
    let pinned = pin(&registry, &r).await?;
    let pulled = registry.pull(&pinned).await?;
    let bundle = trust::sign_blob(&pulled.component, &private).map_err(Failure::from)?;
    let at = registry
        .attach(
            &pinned,
            ReferrerKind::Signature,
            bundle.as_bytes(),
            BTreeMap::new(),
        )
        .await?;
    Ok(format!(
        "signed {pinned} (component {}) with key sha256:{}\nattached the signature ({at})\n",
        pulled.component_digest,
        private.public_key().fingerprint()
    ))
}

/// The bundles of a `FILE.sigstore.json`-style file, none when it does not
/// exist.
fn read_bundles(path: &Path) -> Result<Vec<Vec<u8>>, OciCommandError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let bytes = sluice_files::fsutil::read_input_file(
        path,
        sluice_oci::MAX_REFERRER_BYTES,
        "signature bundle",
    )
    .map_err(Failure::from)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::Invalid(format!("{} is not UTF-8 text", path.display())))?;
    Ok(sluice_oci::split_bundle_file(
        &text,
        &path.display().to_string(),
    )?)
}

/// A message-signature bundle must sign these bytes: a stale
/// `FILE.sigstore.json` (made for an earlier build) would only put a
/// signature into the registry that can never verify.
fn check_signed_digest(bundle: &[u8], digest: &str, file: &Path) -> Result<(), OciCommandError> {
    use base64::Engine as _;
    let signed = serde_json::from_slice::<serde_json::Value>(bundle)
        .ok()
        .and_then(|v| {
            let d = v.get("messageSignature")?.get("messageDigest")?;
            (d.get("algorithm")?.as_str()? == "SHA2_256")
                .then(|| d.get("digest")?.as_str().map(str::to_owned))
                .flatten()
        })
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .map(|raw| format!("sha256:{}", hex::encode(raw)));
    match signed {
        Some(signed) if signed != digest => Err(OciCommandError::Usage(format!(
            "{} signs other bytes ({signed}) than the file ({digest}); sign it again with \
             `sluice plugin sign` or remove the stale bundle",
            file.display()
        ))),
        _ => Ok(()),
    }
}

/// The in-toto predicate type of a DSSE bundle, for the referrer's
/// annotation (best effort: the annotation is a hint, the bundle decides).
fn predicate_type(bundle: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let value: serde_json::Value = serde_json::from_slice(bundle).ok()?;
    let payload = value.get("dsseEnvelope")?.get("payload")?.as_str()?;
    let statement = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .ok()?;
    let statement: serde_json::Value = serde_json::from_slice(&statement).ok()?;
    statement.get("predicateType")?.as_str().map(str::to_owned)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), OciCommandError> {
    let fail = |source| OciCommandError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    sluice_files::fsutil::write_atomic(path, bytes).map_err(fail)
}

fn remove_stale(path: &Path) -> Result<(), OciCommandError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(OciCommandError::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_over_other_bytes_is_not_pushed() {
        use base64::Engine as _;
        let digest_of = |bytes: &[u8]| {
            use sha2::Digest as _;
            sha2::Sha256::digest(bytes).to_vec()
        };
        let bundle = |bytes: &[u8]| {
            serde_json::json!({"messageSignature": {"messageDigest": {
                "algorithm": "SHA2_256",
                "digest": base64::engine::general_purpose::STANDARD.encode(digest_of(bytes)),
            }}})
            .to_string()
        };
        let file = Path::new("p.wasm.sigstore.json");
        let ours = format!("sha256:{}", hex::encode(digest_of(b"component")));
        assert!(check_signed_digest(bundle(b"component").as_bytes(), &ours, file).is_ok());
        let err = check_signed_digest(bundle(b"older build").as_bytes(), &ours, file)
            .expect_err("a stale bundle is refused");
        assert!(err.to_string().contains("p.wasm.sigstore.json"), "{err}");
        // Bundles without a message digest (DSSE) are not judged here.
        assert!(check_signed_digest(b"{}", &ours, file).is_ok());
    }

    #[test]
    fn predicate_types_are_read_from_dsse_bundles_only() {
        use base64::Engine as _;
        let statement = br#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1"}"#;
        let payload = base64::engine::general_purpose::STANDARD.encode(statement);
        let bundle = serde_json::json!({"dsseEnvelope": {"payload": payload}}).to_string();
        assert_eq!(
            predicate_type(bundle.as_bytes()).as_deref(),
            Some("https://slsa.dev/provenance/v1")
        );
        assert_eq!(predicate_type(br#"{"messageSignature":{}}"#), None);
        assert_eq!(predicate_type(b"not json"), None);
    }
}
