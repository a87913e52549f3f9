//! Signing keys: ECDSA P-256, the cosign default.
//!
//! Private keys are stored as cosign stores them: the PKCS#8 key, encrypted
//! with a key derived from the password by scrypt and sealed with NaCl
//! secretbox, in a PEM block labelled `ENCRYPTED SIGSTORE PRIVATE KEY`
//! (`ENCRYPTED COSIGN PRIVATE KEY`, written by older cosign releases, is read
//! too). The `sigstore` crate does the encryption. Public keys are PEM
//! `PUBLIC KEY` blocks (DER SubjectPublicKeyInfo), as cosign writes them.

use std::fmt;

use sigstore::crypto::signing_key::ecdsa::{ECDSAKeys, EllipticCurve};
use sigstore::crypto::signing_key::SigStoreSigner;
use sigstore::errors::SigstoreError;
use sigstore_verify::crypto::{KeyAlgorithm, SigningScheme, VerificationKey};
use sigstore_verify::types::DerPublicKey;

use crate::TrustError;

/// PEM labels of encrypted private keys that [`load_private`] reads.
const ENCRYPTED_LABELS: [&str; 2] = [
    "ENCRYPTED SIGSTORE PRIVATE KEY",
    "ENCRYPTED COSIGN PRIVATE KEY",
];

/// A freshly generated key pair, ready to be written to `NAME.key` and
/// `NAME.pub`.
#[derive(Clone)]
pub struct KeyPair {
    /// The private key, encrypted with the password (cosign format, PEM
    /// label `ENCRYPTED SIGSTORE PRIVATE KEY`).
    pub private_pem: String,
    /// The public key (PEM `PUBLIC KEY`).
    pub public_pem: String,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("private_pem", &"<encrypted>")
            .field("public_pem", &self.public_pem)
            .finish()
    }
}

/// An ECDSA P-256 public key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    /// DER SubjectPublicKeyInfo.
    spki: Vec<u8>,
}

impl PublicKey {
    /// The DER SubjectPublicKeyInfo.
    pub fn der(&self) -> &[u8] {
        &self.spki
    }

    /// The key as a PEM `PUBLIC KEY` block.
    pub fn to_pem(&self) -> String {
        DerPublicKey::new(self.spki.clone()).to_pem()
    }

    /// Lowercase hex sha256 of the DER SubjectPublicKeyInfo; see [`fingerprint`].
    pub fn fingerprint(&self) -> String {
        sigstore_verify::crypto::sha256(&self.spki).to_hex()
    }

    /// The key hint written into bundles: base64 of the sha256 of the DER
    /// SubjectPublicKeyInfo, as cosign writes it. Hints are not
    /// authenticated; verification never relies on them.
    pub fn hint(&self) -> String {
        sigstore_verify::crypto::sha256(&self.spki).to_base64()
    }

    pub(crate) fn to_der_public_key(&self) -> DerPublicKey {
        DerPublicKey::new(self.spki.clone())
    }

    /// Checks an ECDSA P-256 / SHA-256 signature (ASN.1 DER) over `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), String> {
        let key = VerificationKey::from_spki_with_scheme(
            &self.to_der_public_key(),
            SigningScheme::EcdsaP256Sha256,
        )
        .map_err(|e| e.to_string())?;
        key.verify(
            message,
            &sigstore_verify::types::SignatureBytes::from_bytes(signature),
        )
        .map_err(|e| e.to_string())
    }

    /// Checks an ECDSA P-256 / SHA-256 signature over the message whose
    /// sha256 is `digest`.
    pub(crate) fn verify_prehashed(&self, digest: &[u8], signature: &[u8]) -> Result<(), String> {
        let key = VerificationKey::from_spki_with_scheme(
            &self.to_der_public_key(),
            SigningScheme::EcdsaP256Sha256,
        )
        .map_err(|e| e.to_string())?;
        key.verify_prehashed(
            digest,
            &sigstore_verify::types::SignatureBytes::from_bytes(signature),
        )
        .map_err(|e| e.to_string())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(ECDSA P-256, sha256:{})", self.fingerprint())
    }
}

/// A decrypted ECDSA P-256 private key, able to sign.
pub struct PrivateKey {
    signer: SigStoreSigner,
    public: PublicKey,
}

impl PrivateKey {
    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// An ECDSA P-256 / SHA-256 signature (ASN.1 DER) over `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TrustError> {
        self.signer
            .sign(message)
            .map_err(|e| TrustError::Signing(e.to_string()))
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey(ECDSA P-256, public sha256:{})",
            self.public.fingerprint()
        )
    }
}

/// Generates an ECDSA P-256 key pair and encrypts the private key with
/// `password` (which may be empty, as with cosign).
pub fn generate(password: &[u8]) -> Result<KeyPair, TrustError> {
    let keys = ECDSAKeys::new(EllipticCurve::P256)
        .map_err(|e| TrustError::KeyGeneration(e.to_string()))?;
    let inner = keys.as_inner();
    let private_pem = inner
        .private_key_to_encrypted_pem(password)
        .map_err(|e| TrustError::KeyGeneration(e.to_string()))?;
    let public_pem = inner
        .public_key_to_pem()
        .map_err(|e| TrustError::KeyGeneration(e.to_string()))?;
    Ok(KeyPair {
        private_pem: private_pem.to_string(),
        public_pem,
    })
}

/// Decrypts a private key written by [`generate`] or by
/// `cosign generate-key-pair`.
pub fn load_private(pem: &str, password: &[u8]) -> Result<PrivateKey, TrustError> {
    let label = pem_label(pem).ok_or_else(|| TrustError::MalformedPrivateKey {
        detail: "no `-----BEGIN ...-----` line".to_owned(),
    })?;
    if !ENCRYPTED_LABELS.contains(&label) {
        return Err(TrustError::MalformedPrivateKey {
            detail: format!(
                "the PEM block is `{label}`, expected `ENCRYPTED SIGSTORE PRIVATE KEY`"
            ),
        });
    }
    let keys = ECDSAKeys::from_encrypted_pem(pem.as_bytes(), password).map_err(|e| match e {
        // The secretbox failing to open is how a wrong password shows (the
        // sigstore crate reports it with its "encrypt" error variant).
        SigstoreError::PrivateKeyEncryptError(_) => TrustError::WrongPassword,
        other => TrustError::MalformedPrivateKey {
            detail: other.to_string(),
        },
    })?;
    let ECDSAKeys::P256(_) = &keys else {
        return Err(TrustError::UnsupportedKey {
            found: keys.to_string(),
        });
    };
    let public = PublicKey {
        spki: keys
            .as_inner()
            .public_key_to_der()
            .map_err(|e| TrustError::MalformedPrivateKey {
                detail: e.to_string(),
            })?,
    };
    let signer = keys
        .to_sigstore_signer()
        .map_err(|e| TrustError::MalformedPrivateKey {
            detail: e.to_string(),
        })?;
    Ok(PrivateKey { signer, public })
}

/// Reads an ECDSA P-256 public key from a PEM `PUBLIC KEY` block.
pub fn load_public(pem: &str) -> Result<PublicKey, TrustError> {
    let der = DerPublicKey::from_pem(pem).map_err(|e| TrustError::MalformedPublicKey {
        detail: e.to_string(),
    })?;
    public_from_der(der.as_bytes())
}

/// Checks that `spki` is a valid ECDSA P-256 SubjectPublicKeyInfo.
pub(crate) fn public_from_der(spki: &[u8]) -> Result<PublicKey, TrustError> {
    let der = DerPublicKey::new(spki.to_vec());
    let algorithm = KeyAlgorithm::from_spki(&der).map_err(|e| TrustError::MalformedPublicKey {
        detail: e.to_string(),
    })?;
    if algorithm != KeyAlgorithm::EcdsaP256 {
        return Err(TrustError::UnsupportedKey {
            found: format!("{algorithm:?}"),
        });
    }
    VerificationKey::from_spki_with_scheme(&der, SigningScheme::EcdsaP256Sha256).map_err(|e| {
        TrustError::MalformedPublicKey {
            detail: e.to_string(),
        }
    })?;
    Ok(PublicKey {
        spki: spki.to_vec(),
    })
}

/// The public key's fingerprint: lowercase hex sha256 of its DER
/// SubjectPublicKeyInfo (the value `openssl pkey -pubin -outform DER | sha256sum`
/// prints).
pub fn fingerprint(public: &PublicKey) -> String {
    public.fingerprint()
}

/// The label of the first PEM block in `pem`.
fn pem_label(pem: &str) -> Option<&str> {
    let start = pem.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &pem[start..];
    let end = rest.find("-----")?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_with_the_password() -> Result<(), TrustError> {
        let pair = generate(b"correct horse")?;
        assert!(pair
            .private_pem
            .starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let private = load_private(&pair.private_pem, b"correct horse")?;
        let public = load_public(&pair.public_pem)?;
        assert_eq!(private.public_key(), &public);
        assert_eq!(fingerprint(&public).len(), 64);
        assert_eq!(load_public(&public.to_pem())?, public);

        let signature = private.sign(b"message")?;
        assert!(public.verify(b"message", &signature).is_ok());
        assert!(public.verify(b"massage", &signature).is_err());
        Ok(())
    }

    #[test]
    fn a_wrong_password_is_reported_as_such() -> Result<(), TrustError> {
        let pair = generate(b"right")?;
        let err = load_private(&pair.private_pem, b"wrong").err();
        assert!(matches!(err, Some(TrustError::WrongPassword)), "{err:?}");
        Ok(())
    }

    #[test]
    fn malformed_keys_are_rejected() -> Result<(), TrustError> {
        let pair = generate(b"")?;
        assert!(matches!(
            load_private(&pair.public_pem, b""),
            Err(TrustError::MalformedPrivateKey { .. })
        ));
        assert!(matches!(
            load_public("not a key"),
            Err(TrustError::MalformedPublicKey { .. })
        ));
        assert!(matches!(
            load_public(&pair.private_pem),
            Err(TrustError::MalformedPublicKey { .. })
        ));
        // An empty password works, as with cosign.
        load_private(&pair.private_pem, b"")?;
        Ok(())
    }

    #[test]
    fn cosign_style_hint_is_base64_sha256_of_the_spki() -> Result<(), TrustError> {
        // Public key and hint of the managed-key bundle shipped with
        // sigstore-verify 0.15.1 (signed by cosign).
        let public = load_public(
            "-----BEGIN PUBLIC KEY-----\n\
             MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExRRST79+PsrRBnGAI4cMu6Omz2Jh\n\
             fwlMW+gIutNKVRaMyS4rQKvgngc5p8UbLj55pVHhIoAxi/SRgURZI0J3Xw==\n\
             -----END PUBLIC KEY-----\n",
        )?;
        assert_eq!(
            public.hint(),
            "TLMsSDfG3ajPsWge+z/vX5T/zluXnmvbkTkwLIV68Tk="
        );
        assert_eq!(
            public.fingerprint(),
            "4cb32c4837c6dda8cfb1681efb3fef5f94ffce5b979e6bdb9139302c857af139"
        );
        Ok(())
    }
}
