//! What can go wrong talking to a registry or reading the pull cache.

use std::path::PathBuf;

/// An error of the registry client, the artifact format or the pull cache.
///
/// [`OciError::is_integrity`] errors (content that is not what its digest
/// says) are refusals like a bad signature; [`OciError::is_unreachable`]
/// errors are the ones an offline run may fall back from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// The registry could not be reached (connection refused, DNS, timeout).
    #[error("registry {registry} is unreachable: {reason}")]
    Unreachable {
        /// `host[:port]`.
        registry: String,
        /// What the connection attempt reported.
        reason: String,
    },
    /// The registry's TLS certificate is not trusted (or TLS failed).
    #[error(
        "TLS with registry {registry} failed: {reason} \
         (a registry with a private CA needs `--registry-ca FILE` or SLUICE_REGISTRY_CA)"
    )]
    TlsHandshake {
        /// `host[:port]`.
        registry: String,
        /// What the TLS layer reported.
        reason: String,
    },
    /// The registry refused the credentials (or asked for some).
    #[error(
        "registry {registry} refused access{detail}: check the credentials for it \
         (SLUICE_REGISTRY_AUTH, $DOCKER_CONFIG/config.json or ~/.docker/config.json)"
    )]
    Unauthorized {
        /// `host[:port]`.
        registry: String,
        /// ` to REPOSITORY` or empty.
        detail: String,
    },
    /// No such manifest, tag or repository.
    #[error("{reference} was not found in the registry")]
    NotFound {
        /// The reference (or the digest) asked for.
        reference: String,
    },
    /// The manifest is not a Wasm component artifact.
    #[error("{reference} is not a Wasm component artifact: {found}")]
    NotAComponent {
        /// The reference pulled.
        reference: String,
        /// What the manifest holds instead.
        found: String,
    },
    /// Content whose sha256 is not the digest that names it.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked (`manifest of oci://…`, `layer sha256:… of …`).
        what: String,
        /// The digest it is named by.
        expected: String,
        /// The sha256 of the bytes received or read.
        actual: String,
    },
    /// Content larger than sluice accepts from a registry.
    #[error("{what} is {size} bytes, more than the {limit} bytes sluice accepts from a registry")]
    TooLarge {
        /// What was refused.
        what: String,
        /// Its size (declared or received).
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// `--insecure-registry` named a registry that is not on loopback.
    #[error(
        "--insecure-registry {registry} refused: plain HTTP is only allowed for loopback registries \
         (localhost, 127.0.0.0/8, [::1]); give a remote registry's CA with --registry-ca instead"
    )]
    InsecureNotLoopback {
        /// What was given.
        registry: String,
    },
    /// A CA file that cannot be used.
    #[error("CA file {}: {reason}", file.display())]
    Tls {
        /// The file.
        file: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A registry credentials source that cannot be used.
    #[error("registry credentials from {file}: {reason}")]
    AuthConfig {
        /// The file, `SLUICE_REGISTRY_AUTH` or the credential helper.
        file: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The pull cache could not be read or written.
    #[error("pull cache {}: {source}", path.display())]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A pull cache entry whose content is not what its name says; it has
    /// been removed.
    #[error(
        "pull cache entry {} is corrupted ({reason}); it was removed, pull the plugin again",
        path.display()
    )]
    CacheCorrupted {
        /// The entry.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A reference that lacks what the operation needs (a digest, a tag).
    #[error("{reference}: {reason}")]
    Reference {
        /// The reference.
        reference: String,
        /// What it needs.
        reason: String,
    },
    /// A component that cannot be pushed (not a Wasm component).
    #[error("cannot push this file: {reason}")]
    InvalidComponent {
        /// Why.
        reason: String,
    },
    /// A signature bundle (or a bundle list) that is not what
    /// `FILE.sigstore.json` holds.
    #[error("signature bundle: {reason}")]
    InvalidBundle {
        /// What is wrong.
        reason: String,
    },
    /// Any other answer of the registry.
    #[error("registry {registry} answered{}: {message}", status.map(|s| format!(" {s}")).unwrap_or_default())]
    Registry {
        /// `host[:port]`.
        registry: String,
        /// The HTTP status, when known.
        status: Option<u16>,
        /// The registry's message.
        message: String,
    },
}

impl OciError {
    /// Digest mismatches and corrupted cache entries: content that is not
    /// what it claims to be (exit 3, like a refused signature).
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            OciError::DigestMismatch { .. } | OciError::CacheCorrupted { .. }
        )
    }

    /// The registry could not be reached at all: an offline run may use the
    /// pull cache instead.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, OciError::Unreachable { .. })
    }
}
