//! Detached signatures as Sigstore bundles (`FILE.sigstore.json`).
//!
//! # Key-based bundles
//!
//! [`sign_blob`] writes a Sigstore bundle v0.3 with a `messageSignature`
//! (the SHA2_256 digest of the file and an ECDSA P-256 signature over the
//! file) and `verificationMaterial.publicKey.hint` (base64 sha256 of the
//! key, as cosign writes it). It carries **no transparency-log entry and no
//! timestamp**: that is what `cosign sign-blob --key … --tlog-upload=false`
//! and the sigstore-js signer with a key and no witnesses produce. Trust in
//! such a bundle is trust in whoever holds the key; there is no evidence of
//! when it was signed, and a revoked key's old signatures stay valid until
//! the key is removed from the policy.
//!
//! [`verify_blob`] checks a key-based bundle itself: the bundle's
//! `messageDigest` must be the file's sha256, and the signature must verify
//! with one of [`VerifyOptions::keys`] (the unauthenticated hint is only used
//! to word the error). Key-based bundles written by other clients that do
//! carry Rekor entries or RFC 3161 timestamps are accepted too; when a
//! [`TrustedRoot`] is given that evidence must verify against it as well
//! (through `sigstore-verify`), otherwise it is ignored.
//!
//! # Keyless bundles
//!
//! Bundles whose verification material is a Fulcio certificate are verified
//! offline by `sigstore-verify` 0.15.1 against [`VerifyOptions::trusted_root`].
//! What it checks (see `sigstore_verify::Verifier::verify`):
//!
//! - the signing time: the Rekor v1 integrated time authenticated by the
//!   entry's SET (inclusion promise), and/or RFC 3161 timestamps from a TSA in
//!   the trusted root; at least one is required;
//! - the certificate chains to a Fulcio CA of the trusted root that was valid
//!   at every verified signing time, has the code-signing EKU, and was itself
//!   valid (notBefore/notAfter) at those times;
//! - the certificate's embedded SCT, against the CT log keys of the root;
//! - the Rekor entry's inclusion proof and signed checkpoint, the SET, and
//!   that the integrated time falls inside the certificate's validity;
//! - the signature over the file with the certificate's key, and that the
//!   `messageDigest` and the log entry describe this file and this signature
//!   (CVE-2022-36056).
//!
//! What is **not** checked: certificate revocation (Fulcio certificates are
//! short-lived and Sigstore has no revocation), freshness of the trusted root
//! (it is used as given: no TUF update, so a root that should have been
//! rotated is still trusted), online log consistency (no Rekor or CT query;
//! the inclusion proof is checked against the checkpoint in the bundle, not
//! against the live log), and the identity itself: [`verify_blob`] reports
//! the certificate's issuer and SAN in [`Signer::Keyless`], and the policy
//! ([`crate::Policy`]) decides whether that identity is trusted.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sigstore_verify::crypto::parse_certificate_info;
use sigstore_verify::types::bundle::{
    MessageDigest, MessageSignature, PublicKeyIdentifier, VerificationMaterial,
    VerificationMaterialContent,
};
use sigstore_verify::types::{
    Bundle, DigestBytes, HashAlgorithm, MediaType, SignatureBytes, SignatureContent,
};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, Verifier};

use crate::keys::{PrivateKey, PublicKey};
use crate::TrustError;

/// Media type of the bundles [`sign_blob`] writes.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Suffix of a detached bundle next to the file it signs.
pub const BUNDLE_SUFFIX: &str = ".sigstore.json";

/// Where the detached bundle of `file` lives: `FILE.sigstore.json`, the name
/// cosign and the Python and JS clients use.
pub fn bundle_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(BUNDLE_SUFFIX);
    PathBuf::from(name)
}

/// A Sigstore trusted root (`trusted_root.json`): the Fulcio CAs, Rekor and
/// CT log keys and TSAs that keyless bundles are checked against.
#[derive(Clone)]
pub struct TrustedRoot {
    inner: sigstore_verify::trust_root::TrustedRoot,
}

impl TrustedRoot {
    /// Parses a `trusted_root.json` and checks that its keys and
    /// certificates can be used.
    pub fn from_json(json: &str) -> Result<Self, TrustError> {
        let inner = sigstore_verify::trust_root::TrustedRoot::from_json(json).map_err(|e| {
            TrustError::InvalidTrustedRoot {
                detail: e.to_string(),
            }
        })?;
        Verifier::new(&inner).map_err(|e| TrustError::InvalidTrustedRoot {
            detail: e.to_string(),
        })?;
        Ok(Self { inner })
    }

    /// Reads and parses a `trusted_root.json` file: a regular file of at
    /// most 4 MiB ([`sluice_files::fsutil::MAX_TRUSTED_ROOT_BYTES`]).
    pub fn load(path: &Path) -> Result<Self, TrustError> {
        let bytes = sluice_files::fsutil::read_input_file(
            path,
            sluice_files::fsutil::MAX_TRUSTED_ROOT_BYTES,
            "trusted root",
        )?;
        let json = String::from_utf8(bytes).map_err(|_| TrustError::InvalidTrustedRoot {
            detail: "the file is not UTF-8 text".to_owned(),
        })?;
        Self::from_json(&json)
    }

    /// What the root holds, in words: `2 Fulcio CAs, 2 Rekor logs, 2 CT
    /// logs, 1 timestamp authority`.
    pub fn summary(&self) -> String {
        let count =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        [
            count(
                self.inner.certificate_authorities.len(),
                "Fulcio CA",
                "Fulcio CAs",
            ),
            count(self.inner.tlogs.len(), "Rekor log", "Rekor logs"),
            count(self.inner.ctlogs.len(), "CT log", "CT logs"),
            count(
                self.inner.timestamp_authorities.len(),
                "timestamp authority",
                "timestamp authorities",
            ),
        ]
        .join(", ")
    }

    /// The parsed root, for checks outside this module (the policy's
    /// required time evidence).
    pub(crate) fn sigstore(&self) -> &sigstore_verify::trust_root::TrustedRoot {
        &self.inner
    }

    fn verifier(&self) -> Result<Verifier, TrustError> {
        Verifier::new(&self.inner).map_err(|e| TrustError::InvalidTrustedRoot {
            detail: e.to_string(),
        })
    }
}

impl fmt::Debug for TrustedRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedRoot")
            .field(
                "certificate_authorities",
                &self.inner.certificate_authorities.len(),
            )
            .field("tlogs", &self.inner.tlogs.len())
            .field("ctlogs", &self.inner.ctlogs.len())
            .field(
                "timestamp_authorities",
                &self.inner.timestamp_authorities.len(),
            )
            .finish()
    }
}

/// What a bundle may be signed by.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Public keys trusted for key-based bundles.
    pub keys: Vec<PublicKey>,
    /// Trusted root for keyless bundles; without it keyless bundles are
    /// refused.
    pub trusted_root: Option<TrustedRoot>,
}

/// Who signed a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Signer {
    /// A key-based signature by the key with this fingerprint (lowercase hex
    /// sha256 of its DER SubjectPublicKeyInfo).
    Key {
        /// See [`crate::fingerprint`].
        fingerprint: String,
    },
    /// A keyless signature: a Fulcio certificate for this identity.
    Keyless {
        /// The OIDC issuer (Fulcio extension 1.3.6.1.4.1.57264.1.8 or .1).
        issuer: String,
        /// The certificate's Subject Alternative Name (email or URI).
        subject: String,
    },
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signer::Key { fingerprint } => write!(f, "key sha256:{fingerprint}"),
            Signer::Keyless { issuer, subject } => {
                write!(f, "keyless identity {subject} (issuer {issuer})")
            }
        }
    }
}

/// A bundle that verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// The file's digest, `sha256:<hex>`.
    pub digest: String,
    /// Who signed it.
    pub signer: Signer,
    /// Whether transparency-log evidence was verified (for keyless bundles
    /// always, unless their only time evidence is RFC 3161 timestamps; for
    /// key-based bundles only when they carry it and a trusted root was
    /// given).
    pub tlog_verified: bool,
}

/// Signs `bytes` with `key` and returns the Sigstore bundle v0.3 JSON
/// (key-based, no transparency-log entry; see the module documentation).
pub fn sign_blob(bytes: &[u8], key: &PrivateKey) -> Result<String, TrustError> {
    let digest = sigstore_verify::crypto::sha256(bytes);
    let signature = key.sign(bytes)?;
    let content = SignatureContent::MessageSignature(
        MessageSignature::new(SignatureBytes::new(signature)).with_message_digest(
            MessageDigest::new(
                HashAlgorithm::Sha2256,
                DigestBytes::new(digest.as_slice().to_vec()),
            ),
        ),
    );
    let material = VerificationMaterial::new(VerificationMaterialContent::PublicKey(
        PublicKeyIdentifier::new(key.public_key().hint()),
    ));
    let bundle = Bundle::new(MediaType::Bundle0_3, material, content);
    let mut json = bundle
        .to_json_pretty()
        .map_err(|e| TrustError::Signing(e.to_string()))?;
    json.push('\n');
    Ok(json)
}

/// Verifies that `bundle_json` is a valid signature over `bytes` by a key in
/// `options.keys` or, for keyless bundles, by a Fulcio certificate that
/// `options.trusted_root` vouches for.
pub fn verify_blob(
    bytes: &[u8],
    bundle_json: &str,
    options: &VerifyOptions,
) -> Result<Verified, TrustError> {
    let bundle = parse_bundle(bundle_json)?;
    let digest = sigstore_verify::crypto::sha256(bytes);
    let actual = format!("sha256:{}", digest.to_hex());

    let message = match &bundle.content {
        SignatureContent::MessageSignature(message) => message,
        SignatureContent::DsseEnvelope(_) => {
            return Err(TrustError::MalformedBundle {
                detail: "it holds a DSSE envelope (an attestation such as provenance), not a \
                         signature over the file"
                    .to_owned(),
            })
        }
        _ => {
            return Err(TrustError::MalformedBundle {
                detail: "it holds neither a message signature nor a DSSE envelope".to_owned(),
            })
        }
    };
    if let Some(declared) = &message.message_digest {
        if declared.algorithm != HashAlgorithm::Sha2256 {
            return Err(TrustError::MalformedBundle {
                detail: format!(
                    "its messageDigest uses {}; sluice only accepts SHA2_256",
                    declared.algorithm
                ),
            });
        }
        if declared.digest.as_bytes() != digest.as_slice() {
            return Err(TrustError::DigestMismatch {
                signed: format!("sha256:{}", hex::encode(declared.digest.as_bytes())),
                actual,
            });
        }
    }

    match &bundle.verification_material.content {
        VerificationMaterialContent::PublicKey(identifier) => {
            let signer = verify_with_keys(
                digest.as_slice(),
                message.signature.as_bytes(),
                &identifier.hint,
                &options.keys,
            )?;
            let tlog_verified = verify_key_evidence(bytes, &bundle, signer, options)?;
            Ok(Verified {
                digest: actual,
                signer: Signer::Key {
                    fingerprint: signer.fingerprint(),
                },
                tlog_verified,
            })
        }
        VerificationMaterialContent::Certificate(_)
        | VerificationMaterialContent::X509CertificateChain { .. } => {
            let (signer, tlog_verified) = verify_keyless(bytes, &bundle, options)?;
            Ok(Verified {
                digest: actual,
                signer,
                tlog_verified,
            })
        }
        _ => Err(TrustError::MalformedBundle {
            detail: "its verificationMaterial is neither a public key nor a certificate".to_owned(),
        }),
    }
}

/// Parses bundle JSON, with errors that say what is wrong.
pub fn parse_bundle(json: &str) -> Result<Bundle, TrustError> {
    if json.trim().is_empty() {
        return Err(TrustError::MalformedBundle {
            detail: "the bundle file is empty".to_owned(),
        });
    }
    Bundle::from_json(json).map_err(|e| TrustError::MalformedBundle {
        detail: e.to_string(),
    })
}

/// Finds the trusted key that made `signature` over the message whose
/// sha256 is `digest`.
fn verify_with_keys<'k>(
    digest: &[u8],
    signature: &[u8],
    hint: &str,
    keys: &'k [PublicKey],
) -> Result<&'k PublicKey, TrustError> {
    if let Some(key) = keys
        .iter()
        .find(|key| key.verify_prehashed(digest, signature).is_ok())
    {
        return Ok(key);
    }
    let hint = (!hint.is_empty()).then(|| hint.to_owned());
    // The hint is not authenticated, but when it names a trusted key the
    // likeliest story is a damaged signature rather than a stranger's key.
    if let Some(named) = keys.iter().find(|key| {
        hint.as_deref()
            .is_some_and(|h| h == key.hint() || h == key.fingerprint())
    }) {
        let detail = named
            .verify_prehashed(digest, signature)
            .err()
            .unwrap_or_default();
        return Err(TrustError::BadSignature {
            detail: format!(
                "the signature does not verify with the trusted key sha256:{} that the \
                 bundle names ({detail})",
                named.fingerprint()
            ),
        });
    }
    Err(TrustError::UntrustedKey {
        hint,
        trusted: keys
            .iter()
            .map(|key| format!("sha256:{}", key.fingerprint()))
            .collect(),
    })
}

/// For a key-based bundle that carries transparency-log entries or RFC 3161
/// timestamps, verifies them when a trusted root is available.
fn verify_key_evidence(
    bytes: &[u8],
    bundle: &Bundle,
    signer: &PublicKey,
    options: &VerifyOptions,
) -> Result<bool, TrustError> {
    let material = &bundle.verification_material;
    let has_evidence = !material.tlog_entries.is_empty()
        || !material
            .timestamp_verification_data
            .rfc3161_timestamps
            .is_empty();
    let Some(root) = options.trusted_root.as_ref().filter(|_| has_evidence) else {
        return Ok(false);
    };
    let mut policy = PublicKeyVerificationPolicy::new(signer.to_der_public_key());
    if material.tlog_entries.is_empty() {
        // Only RFC 3161 timestamps: there is no log entry to prove inclusion of.
        policy = policy.skip_tlog_unsafe();
    }
    let result = root
        .verifier()?
        .verify(bytes, bundle, &policy)
        .map_err(map_verify_error)?;
    Ok(result.tlog_verified())
}

/// Verifies a keyless bundle against the trusted root and returns the
/// certificate's identity and whether a transparency-log entry was verified.
///
/// A bundle whose only time evidence is RFC 3161 timestamps (no Rekor entry,
/// as the bundle spec and sigstore-js allow) is verified with
/// `skip_tlog_unsafe`: sigstore-verify's default policy demands an inclusion
/// proof and refuses such a bundle before looking at it. What still holds
/// then: each timestamp must verify against a TSA of the trusted root (and
/// that TSA's validity window), the certificate must chain to a Fulcio CA and
/// be within its own validity at every verified time, the SCT must verify,
/// and so must the signature. When the bundle has log entries, they are
/// always verified in full.
fn verify_keyless(
    bytes: &[u8],
    bundle: &Bundle,
    options: &VerifyOptions,
) -> Result<(Signer, bool), TrustError> {
    let Some(root) = &options.trusted_root else {
        let (subject, issuer) = keyless_claims(bundle);
        return Err(TrustError::KeylessNotTrusted { subject, issuer });
    };
    let material = &bundle.verification_material;
    let timestamps_only = material.tlog_entries.is_empty()
        && !material
            .timestamp_verification_data
            .rfc3161_timestamps
            .is_empty();
    let policy = if timestamps_only {
        VerificationPolicy::any_identity().skip_tlog_unsafe()
    } else {
        VerificationPolicy::any_identity()
    };
    let result = root
        .verifier()?
        .verify(bytes, bundle, &policy)
        .map_err(map_verify_error)?;
    let time_verified = if timestamps_only {
        !result.verified_timestamps().is_empty()
    } else {
        result.tlog_verified()
    };
    if !result.certificate_verified() || !result.sct_verified() || !time_verified {
        return Err(TrustError::UntrustedCertificate {
            detail: "sigstore-verify did not check the certificate chain, SCT and the log \
                     entry or timestamp"
                .to_owned(),
        });
    }
    let issuer = result
        .issuer()
        .ok_or_else(|| TrustError::UntrustedCertificate {
            detail: "the certificate has no OIDC issuer extension".to_owned(),
        })?;
    let subject = result
        .identity()
        .ok_or_else(|| TrustError::UntrustedCertificate {
            detail: "the certificate has no email or URI Subject Alternative Name".to_owned(),
        })?;
    let signer = Signer::Keyless {
        issuer: issuer.to_owned(),
        subject: subject.as_str().to_owned(),
    };
    Ok((signer, !timestamps_only))
}

/// The SAN and issuer a keyless bundle's certificate claims, unverified,
/// for error messages.
pub(crate) fn keyless_claims(bundle: &Bundle) -> (String, String) {
    let claims = bundle
        .signing_certificate()
        .and_then(|cert| parse_certificate_info(cert).ok());
    let subject = claims
        .as_ref()
        .and_then(|c| c.identity.as_ref())
        .map_or_else(|| "an unknown identity".to_owned(), ToString::to_string);
    let issuer = claims
        .and_then(|c| c.issuer)
        .unwrap_or_else(|| "unknown".to_owned());
    (subject, issuer)
}

/// Sorts a `sigstore-verify` failure into sluice's error kinds.
fn map_verify_error(error: sigstore_verify::Error) -> TrustError {
    use sigstore_verify::Error as E;
    let detail = error.to_string();
    match error {
        E::SignatureInvalid(_) | E::ArtifactMismatch(_) | E::Crypto(_) => {
            TrustError::BadSignature { detail }
        }
        E::Certificate(_) | E::IdentityMismatch { .. } | E::IssuerMismatch { .. } => {
            TrustError::UntrustedCertificate { detail }
        }
        E::TransparencyLog(_) | E::Timestamp(_) => TrustError::TransparencyLog { detail },
        E::InvalidTrustRoot(_) | E::TrustRoot(_) | E::TrustedCertificate(_) => {
            TrustError::InvalidTrustedRoot { detail }
        }
        E::InvalidBundle(_)
        | E::UnsupportedBundle(_)
        | E::UnsupportedArtifact(_)
        | E::Types(_)
        | E::Bundle(_)
        | E::ArtifactRead(_) => TrustError::MalformedBundle { detail },
        _ => TrustError::BadSignature { detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate, load_private, load_public};

    const KEYLESS_BLOB: &[u8] = include_bytes!("../../../tests/fixtures/trust/keyless-blob.txt");
    const KEYLESS_BUNDLE: &str =
        include_str!("../../../tests/fixtures/trust/keyless-blob.txt.sigstore.json");
    const PUBLIC_GOOD_ROOT: &str =
        include_str!("../../../tests/fixtures/trust/public-good-trusted-root.json");
    const SCAFFOLDING_ROOT: &str =
        include_str!("../../../tests/fixtures/trust/scaffolding-trusted-root.json");
    const MANAGED_ARTIFACT: &[u8] =
        include_bytes!("../../../tests/fixtures/trust/managed-key-artifact.txt");
    const MANAGED_BUNDLE: &str =
        include_str!("../../../tests/fixtures/trust/managed-key-artifact.txt.sigstore.json");
    const MANAGED_KEY: &str = include_str!("../../../tests/fixtures/trust/managed-key.pub");

    fn key() -> Result<(PrivateKey, PublicKey), TrustError> {
        let pair = generate(b"pw")?;
        Ok((
            load_private(&pair.private_pem, b"pw")?,
            load_public(&pair.public_pem)?,
        ))
    }

    fn trusting(keys: Vec<PublicKey>) -> VerifyOptions {
        VerifyOptions {
            keys,
            trusted_root: None,
        }
    }

    fn public_good() -> Result<VerifyOptions, TrustError> {
        Ok(VerifyOptions {
            keys: Vec::new(),
            trusted_root: Some(TrustedRoot::from_json(PUBLIC_GOOD_ROOT)?),
        })
    }

    #[test]
    fn bundle_path_appends_the_suffix() {
        assert_eq!(
            bundle_path(Path::new("plugins/a.wasm")),
            PathBuf::from("plugins/a.wasm.sigstore.json")
        );
    }

    #[test]
    fn signed_bundles_have_the_v03_shape() -> Result<(), Box<dyn std::error::Error>> {
        let (private, public) = key()?;
        let json = sign_blob(b"plugin bytes", &private)?;
        let value: serde_json::Value = serde_json::from_str(&json)?;
        assert_eq!(value["mediaType"], BUNDLE_MEDIA_TYPE);
        assert_eq!(
            value["messageSignature"]["messageDigest"]["algorithm"],
            "SHA2_256"
        );
        assert!(value["messageSignature"]["signature"].is_string());
        assert_eq!(
            value["verificationMaterial"]["publicKey"]["hint"],
            public.hint()
        );
        assert_eq!(
            value["verificationMaterial"]["tlogEntries"],
            serde_json::json!([])
        );
        Ok(())
    }

    #[test]
    fn round_trip() -> Result<(), TrustError> {
        let (private, public) = key()?;
        let (_, other) = key()?;
        let json = sign_blob(b"plugin bytes", &private)?;
        let verified = verify_blob(
            b"plugin bytes",
            &json,
            &trusting(vec![other, public.clone()]),
        )?;
        assert_eq!(
            verified.signer,
            Signer::Key {
                fingerprint: public.fingerprint()
            }
        );
        assert_eq!(
            verified.digest,
            format!(
                "sha256:{}",
                sigstore_verify::crypto::sha256(b"plugin bytes").to_hex()
            )
        );
        assert!(!verified.tlog_verified);
        Ok(())
    }

    #[test]
    fn untrusted_key() -> Result<(), TrustError> {
        let (private, _) = key()?;
        let (_, stranger) = key()?;
        let json = sign_blob(b"plugin", &private)?;
        let err = verify_blob(b"plugin", &json, &trusting(vec![stranger])).err();
        assert!(
            matches!(&err, Some(TrustError::UntrustedKey { hint: Some(_), trusted }) if trusted.len() == 1),
            "{err:?}"
        );
        let err = verify_blob(b"plugin", &json, &trusting(Vec::new())).err();
        assert!(
            matches!(&err, Some(TrustError::UntrustedKey { trusted, .. }) if trusted.is_empty()),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn tampered_file_is_a_digest_mismatch() -> Result<(), TrustError> {
        let (private, public) = key()?;
        let mut plugin = b"\0asm plugin bytes".to_vec();
        let json = sign_blob(&plugin, &private)?;
        plugin[5] ^= 1;
        let err = verify_blob(&plugin, &json, &trusting(vec![public])).err();
        assert!(
            matches!(err, Some(TrustError::DigestMismatch { .. })),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn bundle_for_a_different_file() -> Result<(), TrustError> {
        let (private, public) = key()?;
        let json = sign_blob(b"other plugin", &private)?;
        let err = verify_blob(b"this plugin", &json, &trusting(vec![public])).err();
        let Some(TrustError::DigestMismatch { signed, actual }) = err else {
            panic!("expected a digest mismatch, got {err:?}");
        };
        assert_ne!(signed, actual);
        Ok(())
    }

    #[test]
    fn tampered_file_with_a_rewritten_digest_is_a_bad_signature(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let (private, public) = key()?;
        let json = sign_blob(b"original", &private)?;
        let mut value: serde_json::Value = serde_json::from_str(&json)?;
        value["messageSignature"]["messageDigest"]["digest"] =
            serde_json::json!(sigstore_verify::crypto::sha256(b"tampered").to_base64());
        let err = verify_blob(b"tampered", &value.to_string(), &trusting(vec![public])).err();
        assert!(
            matches!(err, Some(TrustError::BadSignature { .. })),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn malformed_bundles() -> Result<(), TrustError> {
        let (_, public) = key()?;
        for json in [
            "",
            "{",
            "[]",
            r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#,
            r#"{"mediaType":"text/plain","verificationMaterial":{"publicKey":{"hint":""}},"messageSignature":{"signature":"AA=="}}"#,
        ] {
            let err = verify_blob(b"x", json, &trusting(vec![public.clone()])).err();
            assert!(
                matches!(err, Some(TrustError::MalformedBundle { .. })),
                "{json}: {err:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_cosign_key_bundle_with_a_log_entry_verifies() -> Result<(), TrustError> {
        let public = load_public(MANAGED_KEY)?;
        // Without a trusted root: the signature alone.
        let verified = verify_blob(
            MANAGED_ARTIFACT,
            MANAGED_BUNDLE,
            &trusting(vec![public.clone()]),
        )?;
        assert!(!verified.tlog_verified);
        // With the public-good root: the Rekor entry and timestamp too.
        let options = VerifyOptions {
            keys: vec![public],
            trusted_root: Some(TrustedRoot::from_json(PUBLIC_GOOD_ROOT)?),
        };
        let verified = verify_blob(MANAGED_ARTIFACT, MANAGED_BUNDLE, &options)?;
        assert!(verified.tlog_verified);
        Ok(())
    }

    #[test]
    fn keyless_bundle_verifies_against_the_public_good_root() -> Result<(), TrustError> {
        let verified = verify_blob(KEYLESS_BLOB, KEYLESS_BUNDLE, &public_good()?)?;
        let Signer::Keyless { issuer, subject } = &verified.signer else {
            panic!("expected a keyless signer, got {:?}", verified.signer);
        };
        assert_eq!(issuer, "https://github.com/login/oauth");
        assert!(!subject.is_empty());
        assert!(verified.tlog_verified);
        Ok(())
    }

    #[test]
    fn keyless_bundle_for_a_tampered_file() -> Result<(), TrustError> {
        let mut blob = KEYLESS_BLOB.to_vec();
        blob[0] ^= 1;
        let err = verify_blob(&blob, KEYLESS_BUNDLE, &public_good()?).err();
        assert!(
            matches!(err, Some(TrustError::DigestMismatch { .. })),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn keyless_bundle_without_a_trusted_root() {
        let err = verify_blob(KEYLESS_BLOB, KEYLESS_BUNDLE, &VerifyOptions::default()).err();
        assert!(
            matches!(&err, Some(TrustError::KeylessNotTrusted { issuer, .. }) if issuer == "https://github.com/login/oauth"),
            "{err:?}"
        );
    }

    #[test]
    fn keyless_bundle_under_another_root_is_untrusted() -> Result<(), TrustError> {
        let options = VerifyOptions {
            keys: Vec::new(),
            trusted_root: Some(TrustedRoot::from_json(SCAFFOLDING_ROOT)?),
        };
        let err = verify_blob(KEYLESS_BLOB, KEYLESS_BUNDLE, &options).err();
        assert!(
            matches!(
                err,
                Some(TrustError::UntrustedCertificate { .. } | TrustError::TransparencyLog { .. })
            ),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn keyless_bundle_under_an_expired_root_is_untrusted() -> Result<(), Box<dyn std::error::Error>>
    {
        // The same root, but its Fulcio CAs stopped being valid in 2023,
        // before the fixture was signed.
        let mut root: serde_json::Value = serde_json::from_str(PUBLIC_GOOD_ROOT)?;
        if let Some(cas) = root["certificateAuthorities"].as_array_mut() {
            for ca in cas {
                ca["validFor"] = serde_json::json!({
                    "start": "2021-03-07T03:20:29Z",
                    "end": "2023-01-01T00:00:00Z"
                });
            }
        }
        let options = VerifyOptions {
            keys: Vec::new(),
            trusted_root: Some(TrustedRoot::from_json(&root.to_string())?),
        };
        let err = verify_blob(KEYLESS_BLOB, KEYLESS_BUNDLE, &options).err();
        assert!(
            matches!(err, Some(TrustError::UntrustedCertificate { .. })),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn invalid_trusted_root() {
        assert!(matches!(
            TrustedRoot::from_json("{}"),
            Err(TrustError::InvalidTrustedRoot { .. })
        ));
    }
}
