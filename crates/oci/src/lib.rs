//! Plugins in OCI registries.
//!
//! This crate owns everything between a plugin reference
//! (`oci://registry/repository:tag@sha256:…`, parsed by
//! [`sluice_types::OciReference`]) and the bytes of a component on disk:
//!
//! - the **registry client** ([`Registry`], on `oci-client`): resolving tags
//!   to manifest digests, pushing and pulling components, every digest
//!   checked (manifest bytes, layers, referrer layers) and sizes capped
//!   against a hostile registry;
//! - the **Wasm OCI artifact format** of the CNCF TAG Runtime, as `wkg oci
//!   push` writes it ([`mod@format`]): an OCI image manifest with config
//!   `application/vnd.wasm.config.v0+json` and one `application/wasm`
//!   layer;
//! - **referrers** ([`Registry::attach`], [`Registry::referrers`]): Sigstore
//!   bundles attached to a component manifest, through the OCI 1.1 referrers
//!   API when the registry has it, else the tag-schema fallback
//!   (`sha256-<hex>` image index, updated read-modify-write);
//! - **registry access** ([`Auth`], [`RegistryOptions`]): Docker config
//!   credentials and credential helpers, `SLUICE_REGISTRY_AUTH`, custom CA
//!   files, plain HTTP for loopback registries only;
//! - the **pull cache** ([`PullCache`]): pulled components keyed by manifest
//!   digest, written atomically and verified on every read.
//!
//! It must not depend on wasmtime, `sluice-host`, `sluice-engine`, the
//! pipeline model (`sluice-pipeline`), the trust crate or clap: callers hand
//! it references and bytes and decide what the bytes are allowed to do.
//! Signatures are carried, never judged here.

mod auth;
mod cache;
mod client;
mod error;
pub mod format;

pub use auth::Auth;
pub use cache::{CachedPlugin, PullCache};
pub use client::{Pulled, Pushed, ReferrerKind, Registry, RegistryOptions};
pub use error::OciError;
pub use sluice_types::OciReference;

/// The largest component sluice pulls from a registry (the runner's plugin
/// size cap).
pub const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// The largest manifest (or referrers index) sluice accepts.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// The largest referrer payload (one Sigstore bundle) sluice accepts.
pub const MAX_REFERRER_BYTES: u64 = 4 << 20;

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// The text of a `FILE.sigstore.json` for `bundles`: the one bundle as it
/// is, several as a JSON list (which `sluice-trust` reads as independent
/// signatures); `None` for none. Each bundle must be JSON.
pub fn bundle_file_text(bundles: &[Vec<u8>]) -> Result<Option<String>, OciError> {
    match bundles {
        [] => Ok(None),
        [one] => String::from_utf8(one.clone())
            .map(Some)
            .map_err(|_| OciError::InvalidBundle {
                reason: "a signature bundle is not UTF-8 text".to_owned(),
            }),
        many => {
            let values = many
                .iter()
                .map(|b| serde_json::from_slice::<serde_json::Value>(b))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| OciError::InvalidBundle {
                    reason: format!("a signature bundle is not JSON: {e}"),
                })?;
            serde_json::to_string_pretty(&values)
                .map(Some)
                .map_err(|e| OciError::InvalidBundle {
                    reason: format!("cannot write the bundle list: {e}"),
                })
        }
    }
}

/// The bundles in a `FILE.sigstore.json` text: a JSON list gives each
/// element, anything else is one bundle (as written). `file` names it in
/// errors.
pub fn split_bundle_file(text: &str, file: &str) -> Result<Vec<Vec<u8>>, OciError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| OciError::InvalidBundle {
            reason: format!("{file} is not JSON: {e}"),
        })?;
    match value {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| {
                serde_json::to_vec(item).map_err(|e| OciError::InvalidBundle {
                    reason: format!("{file}: {e}"),
                })
            })
            .collect(),
        _ => Ok(vec![text.as_bytes().to_vec()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_files_round_trip_one_or_a_list() {
        assert_eq!(bundle_file_text(&[]).expect("it must succeed"), None);
        let one = bundle_file_text(&[b"{\"a\": 1}".to_vec()]).expect("it must succeed");
        assert_eq!(
            one.as_deref(),
            Some("{\"a\": 1}"),
            "one bundle is kept as written"
        );
        let two = bundle_file_text(&[b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()])
            .expect("it must succeed")
            .expect("some text");
        let split = split_bundle_file(&two, "f").expect("it must succeed");
        assert_eq!(split.len(), 2);
        assert_eq!(
            split_bundle_file("{\"a\": 1}", "f").expect("it must succeed"),
            vec![b"{\"a\": 1}".to_vec()]
        );
        let err = split_bundle_file("{", "x.sigstore.json").expect_err("it must fail");
        assert!(err.to_string().contains("x.sigstore.json"), "{err}");
        assert!(bundle_file_text(&[b"{".to_vec(), b"{}".to_vec()]).is_err());
    }

    #[test]
    fn digests_are_sha256_prefixed_lowercase_hex() {
        assert_eq!(
            sha256_digest(b"{}"),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
