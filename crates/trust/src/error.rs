//! What can go wrong with keys, signatures and bundles.
//!
//! Every message says what is wrong and what to do about it, so that the CLI
//! can print it as is. Policy files have their own error type
//! ([`crate::PolicyError`]), which points at a line and column.

/// Why a key could not be made or read, or a signature could not be made or
/// verified.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The system could not generate or encrypt a key.
    #[error("cannot generate a signing key: {0}")]
    KeyGeneration(String),

    /// A private key PEM could not be read.
    #[error(
        "cannot read the private key: {detail}; give the `.key` file written by \
         `sluice key generate` (or `cosign generate-key-pair`)"
    )]
    MalformedPrivateKey {
        /// What the parser said.
        detail: String,
    },

    /// The password does not open the encrypted private key.
    #[error(
        "wrong password for the private key: it could not be decrypted; set \
         SLUICE_KEY_PASSWORD to the password the key was generated with"
    )]
    WrongPassword,

    /// A public key PEM could not be read.
    #[error(
        "cannot read the public key: {detail}; give a PEM file starting with \
         `-----BEGIN PUBLIC KEY-----` (the `.pub` file written by `sluice key generate`)"
    )]
    MalformedPublicKey {
        /// What the parser said.
        detail: String,
    },

    /// The key is not ECDSA P-256.
    #[error(
        "unsupported key type {found}: sluice signs and verifies with ECDSA P-256 keys; \
         generate one with `sluice key generate`"
    )]
    UnsupportedKey {
        /// The key type found.
        found: String,
    },

    /// Signing failed in the crypto backend.
    #[error("cannot sign: {0}")]
    Signing(String),

    /// The file has no signature bundle.
    #[error(
        "`{file}` is not signed: no Sigstore bundle `{bundle}` was found; sign it with \
         `sluice plugin sign {file} --key KEY.key`"
    )]
    Unsigned {
        /// The file that should have been signed.
        file: String,
        /// Where its bundle was looked for.
        bundle: String,
    },

    /// The bundle is not a Sigstore bundle sluice can read.
    #[error(
        "malformed Sigstore bundle: {detail}; re-create it with `sluice plugin sign` \
         (or any Sigstore client writing bundle v0.3 JSON)"
    )]
    MalformedBundle {
        /// What is wrong with it.
        detail: String,
    },

    /// The bundle signs a file with another digest.
    #[error(
        "the bundle was made for a different file: it signs {signed}, but this file is \
         {actual}; the file was changed after it was signed, or the bundle belongs to \
         another file; re-sign the file or use its own bundle"
    )]
    DigestMismatch {
        /// The digest the bundle signs (`sha256:<hex>`).
        signed: String,
        /// The digest of the file given (`sha256:<hex>`).
        actual: String,
    },

    /// The signature does not verify.
    #[error(
        "bad signature: {detail}; the bundle or the file was altered after signing; \
         re-sign the file"
    )]
    BadSignature {
        /// Which check failed.
        detail: String,
    },

    /// The bundle was signed with a key that is not trusted.
    #[error(
        "signed by an untrusted key{}: {}; add the signer's public key to the policy \
         (or pass it with --key) if you trust it",
        hint.as_deref().map(|h| format!(" (key hint {h})")).unwrap_or_default(),
        describe_trusted(trusted)
    )]
    UntrustedKey {
        /// The bundle's unauthenticated key hint, if any.
        hint: Option<String>,
        /// Fingerprints of the keys that were tried.
        trusted: Vec<String>,
    },

    /// A keyless bundle was given but no trusted root to check it against.
    #[error(
        "the bundle is signed keyless (Fulcio certificate for {subject}, issuer {issuer}) but \
         no keyless authority is trusted here; add a `keyless` authority and a \
         `trusted-root` to the policy, or sign with a key"
    )]
    KeylessNotTrusted {
        /// The certificate's SAN, as claimed (not verified).
        subject: String,
        /// The certificate's OIDC issuer, as claimed (not verified).
        issuer: String,
    },

    /// The signing certificate does not chain to the trusted root at the
    /// signing time, has expired, or lacks an SCT.
    #[error(
        "untrusted signing certificate: {detail}; check that `trusted-root` is the \
         trusted_root.json of the Sigstore instance that issued it and that it is not expired"
    )]
    UntrustedCertificate {
        /// What sigstore-verify reported.
        detail: String,
    },

    /// The transparency-log evidence (inclusion proof, checkpoint, SET) or an
    /// RFC 3161 timestamp does not verify.
    #[error(
        "transparency log or timestamp check failed: {detail}; the bundle's log entry or \
         timestamp does not verify against the trusted root: it comes from another Sigstore \
         instance than `trusted-root` describes, or the bundle was altered"
    )]
    TransparencyLog {
        /// What sigstore-verify reported.
        detail: String,
    },

    /// The trusted root JSON cannot be used.
    #[error(
        "invalid trusted root: {detail}; use a `trusted_root.json` from the Sigstore \
         instance (e.g. `sigstore-python trust-instance` or the TUF repository)"
    )]
    InvalidTrustedRoot {
        /// What is wrong with it.
        detail: String,
    },

    /// A DSSE payload is not an in-toto statement.
    #[error(
        "malformed provenance: {detail}; the bundle must hold a DSSE envelope with an \
         in-toto statement (payloadType application/vnd.in-toto+json)"
    )]
    MalformedStatement {
        /// What is wrong with it.
        detail: String,
    },

    /// The artifact is not a subject of the provenance statement.
    #[error(
        "the provenance does not cover this artifact: its sha256 {actual} is not among the \
         statement's subjects ({}); use the provenance written for this artifact",
        subjects.join(", ")
    )]
    NotASubject {
        /// The artifact's digest (`sha256:<hex>`).
        actual: String,
        /// The statement's subjects, as `name sha256:<hex>`.
        subjects: Vec<String>,
    },

    /// A file could not be read.
    #[error("cannot read `{path}`: {error}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system said.
        error: std::io::Error,
    },

    /// An input file (trusted root, key, bundle) is not a regular file, is
    /// too large, or could not be read.
    #[error(transparent)]
    Input(#[from] sluice_files::fsutil::InputError),
}

fn describe_trusted(trusted: &[String]) -> String {
    match trusted {
        [] => "no public key is trusted for it".to_owned(),
        [one] => format!("the signature does not verify with the trusted key {one}"),
        many => format!(
            "the signature verifies with none of the {} trusted keys ({})",
            many.len(),
            many.join(", ")
        ),
    }
}
