//! Signed provenance: an in-toto statement in a DSSE envelope, in a Sigstore
//! bundle v0.3 (`dsseEnvelope`), signed with the runner's key.
//!
//! The signature is ECDSA P-256 / SHA-256 over the DSSE pre-authentication
//! encoding ([`pae`]) of the payload type `application/vnd.in-toto+json` and
//! the statement bytes, exactly as the DSSE v1 specification defines it. As
//! with plugin signatures the bundle carries the key's hint and no
//! transparency-log entry. [`verify_artifact`] checks the DSSE signature with
//! a given public key and that the artifact's sha256 is one of the
//! statement's subjects.

use serde::Serialize;
use sigstore_verify::types::bundle::{
    PublicKeyIdentifier, VerificationMaterial, VerificationMaterialContent,
};
use sigstore_verify::types::{
    Bundle, DsseEnvelope, DsseSignature, KeyId, MediaType, PayloadBytes, SignatureBytes,
    SignatureContent,
};

use crate::bundle::{keyless_claims, parse_bundle, Signer};
use crate::keys::{PrivateKey, PublicKey};
use crate::TrustError;

/// DSSE payload type of in-toto statements.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// `_type` values of in-toto statements sluice accepts.
const STATEMENT_TYPES: [&str; 2] = [
    "https://in-toto.io/Statement/v1",
    "https://in-toto.io/Statement/v0.1",
];

/// The DSSE v1 pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
/// decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Signs an in-toto statement (JSON bytes) with `key` and returns the
/// Sigstore bundle v0.3 JSON holding the DSSE envelope.
///
/// The statement must be an in-toto statement with at least one subject, so
/// that nothing else is signed by mistake.
pub fn sign_statement(statement: &[u8], key: &PrivateKey) -> Result<String, TrustError> {
    parse_statement(statement)?;
    let signature = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, statement))?;
    let envelope = DsseEnvelope::new(
        IN_TOTO_PAYLOAD_TYPE,
        PayloadBytes::new(statement.to_vec()),
        DsseSignature::new(SignatureBytes::new(signature), KeyId::default()),
    );
    let material = VerificationMaterial::new(VerificationMaterialContent::PublicKey(
        PublicKeyIdentifier::new(key.public_key().hint()),
    ));
    let bundle = Bundle::new(
        MediaType::Bundle0_3,
        material,
        SignatureContent::DsseEnvelope(envelope),
    );
    let mut json = bundle
        .to_json_pretty()
        .map_err(|e| TrustError::Signing(e.to_string()))?;
    json.push('\n');
    Ok(json)
}

/// An artifact found among the subjects of a verified provenance statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementMatch {
    /// The artifact's digest, `sha256:<hex>`.
    pub digest: String,
    /// The `name` of the matching subject.
    pub subject: String,
    /// The statement's `predicateType` (e.g. `https://slsa.dev/provenance/v1`).
    pub predicate_type: String,
    /// Who signed the statement.
    pub signer: Signer,
    /// The whole statement.
    pub statement: serde_json::Value,
}

/// Verifies that `bundle_json` holds an in-toto statement signed by
/// `public_key` and that `file_bytes` is one of its subjects.
pub fn verify_artifact(
    file_bytes: &[u8],
    bundle_json: &str,
    public_key: &PublicKey,
) -> Result<StatementMatch, TrustError> {
    let bundle = parse_bundle(bundle_json)?;
    let envelope = match &bundle.content {
        SignatureContent::DsseEnvelope(envelope) => envelope,
        SignatureContent::MessageSignature(_) => {
            return Err(TrustError::MalformedBundle {
                detail: "it holds a signature over a file, not a DSSE provenance envelope; \
                         verify it with `sluice plugin verify`"
                    .to_owned(),
            })
        }
        _ => {
            return Err(TrustError::MalformedBundle {
                detail: "it holds neither a message signature nor a DSSE envelope".to_owned(),
            })
        }
    };
    let hint = match &bundle.verification_material.content {
        VerificationMaterialContent::PublicKey(identifier) => identifier.hint.clone(),
        VerificationMaterialContent::Certificate(_)
        | VerificationMaterialContent::X509CertificateChain { .. } => {
            let (subject, issuer) = keyless_claims(&bundle);
            return Err(TrustError::KeylessNotTrusted { subject, issuer });
        }
        _ => {
            return Err(TrustError::MalformedBundle {
                detail: "its verificationMaterial is neither a public key nor a certificate"
                    .to_owned(),
            })
        }
    };
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(TrustError::MalformedStatement {
            detail: format!("the DSSE payloadType is `{}`", envelope.payload_type),
        });
    }
    let payload = envelope.payload.as_bytes();
    if let Err(detail) = public_key.verify(
        &pae(&envelope.payload_type, payload),
        envelope.signature.sig.as_bytes(),
    ) {
        return Err(if hint.is_empty() || hint == public_key.hint() {
            TrustError::BadSignature {
                detail: format!(
                    "the DSSE signature does not verify with key sha256:{} ({detail})",
                    public_key.fingerprint()
                ),
            }
        } else {
            TrustError::UntrustedKey {
                hint: Some(hint),
                trusted: vec![format!("sha256:{}", public_key.fingerprint())],
            }
        });
    }

    let statement = parse_statement(payload)?;
    let digest = sigstore_verify::crypto::sha256(file_bytes).to_hex();
    let subjects = subjects(&statement);
    let Some((name, _)) = subjects
        .iter()
        .find(|(_, sha256)| sha256.eq_ignore_ascii_case(&digest))
    else {
        return Err(TrustError::NotASubject {
            actual: format!("sha256:{digest}"),
            subjects: subjects
                .iter()
                .map(|(name, sha256)| format!("{name} sha256:{sha256}"))
                .collect(),
        });
    };
    Ok(StatementMatch {
        digest: format!("sha256:{digest}"),
        subject: name.clone(),
        predicate_type: statement["predicateType"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        signer: Signer::Key {
            fingerprint: public_key.fingerprint(),
        },
        statement,
    })
}

/// Parses and checks an in-toto statement.
fn parse_statement(bytes: &[u8]) -> Result<serde_json::Value, TrustError> {
    let statement: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| TrustError::MalformedStatement {
            detail: format!("the payload is not JSON: {e}"),
        })?;
    let kind = statement["_type"].as_str().unwrap_or_default();
    if !STATEMENT_TYPES.contains(&kind) {
        return Err(TrustError::MalformedStatement {
            detail: format!("`_type` is `{kind}`, not https://in-toto.io/Statement/v1"),
        });
    }
    if subjects(&statement).is_empty() {
        return Err(TrustError::MalformedStatement {
            detail: "the statement has no subject with a sha256 digest".to_owned(),
        });
    }
    Ok(statement)
}

/// `(name, sha256 hex)` of each subject that has a sha256 digest.
fn subjects(statement: &serde_json::Value) -> Vec<(String, String)> {
    statement["subject"]
        .as_array()
        .map(|subjects| {
            subjects
                .iter()
                .filter_map(|s| {
                    let sha256 = s["digest"]["sha256"].as_str()?;
                    let name = s["name"].as_str().unwrap_or_default();
                    Some((name.to_owned(), sha256.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate, load_private, load_public};

    fn key() -> Result<(PrivateKey, PublicKey), TrustError> {
        let pair = generate(b"")?;
        Ok((
            load_private(&pair.private_pem, b"")?,
            load_public(&pair.public_pem)?,
        ))
    }

    fn statement_for(artifacts: &[(&str, &[u8])]) -> Vec<u8> {
        let subject: Vec<serde_json::Value> = artifacts
            .iter()
            .map(|(name, bytes)| {
                serde_json::json!({
                    "name": name,
                    "digest": { "sha256": sigstore_verify::crypto::sha256(bytes).to_hex() }
                })
            })
            .collect();
        serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": subject,
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": { "buildDefinition": {}, "runDetails": {} }
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn pae_matches_the_dsse_spec() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(
            pae(IN_TOTO_PAYLOAD_TYPE, b"{}"),
            sigstore_verify::types::pae(IN_TOTO_PAYLOAD_TYPE, b"{}")
        );
    }

    #[test]
    fn dsse_round_trip() -> Result<(), Box<dyn std::error::Error>> {
        let (private, public) = key()?;
        let statement = statement_for(&[("app.tar.gz", b"app"), ("lib.so", b"lib")]);
        let json = sign_statement(&statement, &private)?;
        let value: serde_json::Value = serde_json::from_str(&json)?;
        assert_eq!(value["mediaType"], crate::BUNDLE_MEDIA_TYPE);
        assert_eq!(value["dsseEnvelope"]["payloadType"], IN_TOTO_PAYLOAD_TYPE);

        let found = verify_artifact(b"lib", &json, &public)?;
        assert_eq!(found.subject, "lib.so");
        assert_eq!(found.predicate_type, "https://slsa.dev/provenance/v1");
        assert_eq!(
            found.signer,
            Signer::Key {
                fingerprint: public.fingerprint()
            }
        );
        Ok(())
    }

    #[test]
    fn artifact_not_among_the_subjects() -> Result<(), TrustError> {
        let (private, public) = key()?;
        let json = sign_statement(&statement_for(&[("app", b"app")]), &private)?;
        let err = verify_artifact(b"something else", &json, &public).err();
        assert!(
            matches!(err, Some(TrustError::NotASubject { .. })),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn wrong_key_and_tampered_payload() -> Result<(), Box<dyn std::error::Error>> {
        let (private, public) = key()?;
        let (_, stranger) = key()?;
        let json = sign_statement(&statement_for(&[("app", b"app")]), &private)?;
        let err = verify_artifact(b"app", &json, &stranger).err();
        assert!(
            matches!(err, Some(TrustError::UntrustedKey { .. })),
            "{err:?}"
        );

        // Swap in a statement for another artifact, keeping the signature.
        let mut value: serde_json::Value = serde_json::from_str(&json)?;
        let forged = PayloadBytes::new(statement_for(&[("evil", b"evil")])).to_base64();
        value["dsseEnvelope"]["payload"] = serde_json::json!(forged);
        let err = verify_artifact(b"evil", &value.to_string(), &public).err();
        assert!(
            matches!(err, Some(TrustError::BadSignature { .. })),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn only_statements_are_signed_and_accepted() -> Result<(), TrustError> {
        let (private, public) = key()?;
        assert!(matches!(
            sign_statement(b"{\"not\":\"a statement\"}", &private),
            Err(TrustError::MalformedStatement { .. })
        ));
        let plugin_bundle = crate::sign_blob(b"app", &private)?;
        assert!(matches!(
            verify_artifact(b"app", &plugin_bundle, &public),
            Err(TrustError::MalformedBundle { .. })
        ));
        Ok(())
    }
}
