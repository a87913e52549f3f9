//! The pull cache: components pulled from registries, keyed by manifest
//! digest, beside the compile cache (`<cache-dir>/oci/`).
//!
//! Layout: `<dir>/oci/<hex of the manifest digest>/` holding
//! `component.wasm`, `signatures.json` and `attestations.json` (when the
//! registry had any) and `entry.json` (reference, manifest and component
//! digests). Every file is written atomically (temporary file, rename);
//! `entry.json` is written last, so an entry without it is incomplete and
//! ignored. A read checks the component's sha256 against the recorded
//! digest: a mismatch is an integrity error and the entry is removed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sluice_types::OciReference;

use crate::{bundle_file_text, sha256_digest, OciError, Pulled, MAX_COMPONENT_BYTES};

const COMPONENT_FILE: &str = "component.wasm";
const SIGNATURES_FILE: &str = "signatures.json";
const ATTESTATIONS_FILE: &str = "attestations.json";
const ENTRY_FILE: &str = "entry.json";

/// The pull cache under a cache directory.
#[derive(Debug, Clone)]
pub struct PullCache {
    root: PathBuf,
}

/// A cached, verified component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPlugin {
    /// The manifest digest (`sha256:…`).
    pub manifest_digest: String,
    /// The component's sha256 (`sha256:…`).
    pub component_digest: String,
    /// The component file (a plugin sluice can load).
    pub component_path: PathBuf,
    /// The signature bundles: one bundle, or a JSON list of bundles, as in
    /// `FILE.sigstore.json`.
    pub signatures: Option<String>,
    /// The attestation bundles, the same way.
    pub attestations: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    reference: String,
    manifest_digest: String,
    component_digest: String,
}

impl PullCache {
    /// The pull cache in `dir` (the runner's cache directory); creates
    /// `dir/oci`.
    pub fn open(dir: &Path) -> Result<PullCache, OciError> {
        let root = dir.join("oci");
        std::fs::create_dir_all(&root).map_err(|source| OciError::Cache {
            path: root.clone(),
            source,
        })?;
        Ok(PullCache { root })
    }

    /// The directory of the entries.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The entry directories (`<dir>/oci/<hex>/`), where a writer killed
    /// mid-write can leave `.tmp*` files: `sluice gc` sweeps them like the
    /// compile cache's.
    pub fn entry_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        dirs.sort();
        dirs
    }

    fn entry_dir(&self, manifest_digest: &str) -> Result<PathBuf, OciError> {
        // Only a well-formed digest names a directory: no path tricks.
        match manifest_digest.strip_prefix("sha256:") {
            Some(hex) if sluice_types::oci::is_sha256_digest(manifest_digest) => {
                Ok(self.root.join(hex))
            }
            _ => Err(OciError::Reference {
                reference: manifest_digest.to_owned(),
                reason: "a pull cache key must be `sha256:` and 64 lowercase hex digits".to_owned(),
            }),
        }
    }

    /// The cached component of `manifest_digest`, verified; `None` when it
    /// is not cached. A corrupted entry is removed and reported as
    /// [`OciError::CacheCorrupted`].
    pub fn get(&self, manifest_digest: &str) -> Result<Option<CachedPlugin>, OciError> {
        let dir = self.entry_dir(manifest_digest)?;
        let entry_path = dir.join(ENTRY_FILE);
        let entry_bytes = match std::fs::read(&entry_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(OciError::Cache {
                    path: entry_path,
                    source,
                })
            }
        };
        let corrupted = |reason: String| {
            remove_entry(&dir);
            OciError::CacheCorrupted {
                path: dir.clone(),
                reason,
            }
        };
        let entry: Entry = serde_json::from_slice(&entry_bytes)
            .map_err(|e| corrupted(format!("{ENTRY_FILE} is not readable: {e}")))?;
        if entry.manifest_digest != manifest_digest
            || !sluice_types::oci::is_sha256_digest(&entry.component_digest)
        {
            return Err(corrupted(format!(
                "{ENTRY_FILE} records manifest {} and component {}",
                entry.manifest_digest, entry.component_digest
            )));
        }
        let component_path = dir.join(COMPONENT_FILE);
        let component = match sluice_files::fsutil::read_input_file(
            &component_path,
            MAX_COMPONENT_BYTES,
            "cached component",
        ) {
            Ok(bytes) => bytes,
            Err(e) => return Err(corrupted(e.to_string())),
        };
        let actual = sha256_digest(&component);
        if actual != entry.component_digest {
            return Err(corrupted(format!(
                "the component's sha256 is {actual}, its recorded digest {}",
                entry.component_digest
            )));
        }
        let signatures = read_optional(&dir.join(SIGNATURES_FILE)).map_err(&corrupted)?;
        let attestations = read_optional(&dir.join(ATTESTATIONS_FILE)).map_err(&corrupted)?;
        Ok(Some(CachedPlugin {
            manifest_digest: entry.manifest_digest,
            component_digest: entry.component_digest,
            component_path,
            signatures,
            attestations,
        }))
    }

    /// Stores a pulled component with its referrers' bundles (replacing the
    /// bundles of an existing entry: the registry may have more now).
    pub fn put(
        &self,
        reference: &OciReference,
        pulled: &Pulled,
        signatures: &[Vec<u8>],
        attestations: &[Vec<u8>],
    ) -> Result<CachedPlugin, OciError> {
        let actual = sha256_digest(&pulled.component);
        if actual != pulled.component_digest {
            return Err(OciError::DigestMismatch {
                what: format!("the component of {reference} (before caching it)"),
                expected: pulled.component_digest.clone(),
                actual,
            });
        }
        let dir = self.entry_dir(&pulled.manifest_digest)?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| OciError::Cache { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let component_path = dir.join(COMPONENT_FILE);
        sluice_files::fsutil::write_atomic(&component_path, &pulled.component)
            .map_err(io(&component_path))?;
        let signatures = bundle_file_text(signatures)?;
        let attestations = bundle_file_text(attestations)?;
        for (name, text) in [
            (SIGNATURES_FILE, &signatures),
            (ATTESTATIONS_FILE, &attestations),
        ] {
            let path = dir.join(name);
            match text {
                Some(text) => {
                    sluice_files::fsutil::write_atomic(&path, text.as_bytes()).map_err(io(&path))?
                }
                None => match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(OciError::Cache { path, source }),
                },
            }
        }
        let entry = Entry {
            reference: reference.to_string(),
            manifest_digest: pulled.manifest_digest.clone(),
            component_digest: pulled.component_digest.clone(),
        };
        let entry_path = dir.join(ENTRY_FILE);
        let entry_json = serde_json::to_vec_pretty(&entry).unwrap_or_default();
        sluice_files::fsutil::write_atomic(&entry_path, &entry_json).map_err(io(&entry_path))?;
        Ok(CachedPlugin {
            manifest_digest: pulled.manifest_digest.clone(),
            component_digest: pulled.component_digest.clone(),
            component_path,
            signatures,
            attestations,
        })
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| format!("{} is not UTF-8", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn remove_entry(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove a corrupted pull cache entry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pulled(bytes: &[u8]) -> Pulled {
        Pulled {
            manifest_digest: sha256_digest(b"manifest"),
            component_digest: sha256_digest(bytes),
            component: bytes.to_vec(),
        }
    }

    fn reference() -> OciReference {
        "oci://127.0.0.1:5000/team/lint:1"
            .parse()
            .expect("it must succeed")
    }

    #[test]
    fn put_then_get_round_trips_with_bundles() {
        let dir = tempfile::tempdir().expect("it must succeed");
        let cache = PullCache::open(dir.path()).expect("it must succeed");
        let p = pulled(b"\0asm component");
        assert_eq!(
            cache.get(&p.manifest_digest).expect("it must succeed"),
            None
        );
        let put = cache
            .put(
                &reference(),
                &p,
                &[b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()],
                &[],
            )
            .expect("it must succeed");
        let got = cache
            .get(&p.manifest_digest)
            .expect("it must succeed")
            .expect("it must succeed");
        assert_eq!(put, got);
        assert!(got.component_path.starts_with(dir.path().join("oci")));
        assert_eq!(
            std::fs::read(&got.component_path).expect("it must succeed"),
            b"\0asm component"
        );
        let list: serde_json::Value =
            serde_json::from_str(got.signatures.as_deref().expect("it must succeed"))
                .expect("it must succeed");
        assert_eq!(list, serde_json::json!([{"a": 1}, {"b": 2}]));
        assert_eq!(got.attestations, None);
        // A later put with one bundle writes it as it is.
        cache
            .put(&reference(), &p, &[b"{\"a\":1}".to_vec()], &[])
            .expect("it must succeed");
        let got = cache
            .get(&p.manifest_digest)
            .expect("it must succeed")
            .expect("it must succeed");
        assert_eq!(got.signatures.as_deref(), Some("{\"a\":1}"));
    }

    #[test]
    fn a_corrupted_component_is_an_integrity_error_and_is_removed() {
        let dir = tempfile::tempdir().expect("it must succeed");
        let cache = PullCache::open(dir.path()).expect("it must succeed");
        let p = pulled(b"\0asm component");
        let put = cache
            .put(&reference(), &p, &[], &[])
            .expect("it must succeed");
        std::fs::write(&put.component_path, b"\0asm tampered").expect("it must succeed");
        let err = cache.get(&p.manifest_digest).expect_err("it must fail");
        assert!(err.is_integrity(), "{err:?}");
        assert!(err.to_string().contains(&p.component_digest), "{err}");
        assert!(!put.component_path.exists(), "the entry is removed");
        assert_eq!(
            cache.get(&p.manifest_digest).expect("it must succeed"),
            None
        );
    }

    #[test]
    fn a_broken_entry_file_or_missing_component_is_corruption() {
        let dir = tempfile::tempdir().expect("it must succeed");
        let cache = PullCache::open(dir.path()).expect("it must succeed");
        let p = pulled(b"\0asm component");
        let put = cache
            .put(&reference(), &p, &[], &[])
            .expect("it must succeed");
        let entry = put.component_path.with_file_name(ENTRY_FILE);
        std::fs::write(&entry, b"{").expect("it must succeed");
        assert!(cache
            .get(&p.manifest_digest)
            .expect_err("it must fail")
            .is_integrity());
        let put = cache
            .put(&reference(), &p, &[], &[])
            .expect("it must succeed");
        std::fs::remove_file(&put.component_path).expect("it must succeed");
        assert!(cache
            .get(&p.manifest_digest)
            .expect_err("it must fail")
            .is_integrity());
    }

    #[test]
    fn entry_dirs_lists_the_entries_for_gc() {
        let dir = tempfile::tempdir().expect("it must succeed");
        let cache = PullCache::open(dir.path()).expect("it must succeed");
        assert!(cache.entry_dirs().is_empty());
        let put = cache
            .put(&reference(), &pulled(b"\0asm component"), &[], &[])
            .expect("it must succeed");
        assert_eq!(
            cache.entry_dirs(),
            vec![put.component_path.parent().expect("a dir").to_path_buf()]
        );
    }

    #[test]
    fn keys_must_be_digests_and_pulls_must_match_their_digest() {
        let dir = tempfile::tempdir().expect("it must succeed");
        let cache = PullCache::open(dir.path()).expect("it must succeed");
        assert!(cache.get("sha256:../../etc").is_err());
        let mut p = pulled(b"\0asm component");
        p.component = b"\0asm other".to_vec();
        assert!(cache
            .put(&reference(), &p, &[], &[])
            .expect_err("it must fail")
            .is_integrity());
    }
}
