//! Plugins from OCI registries, for `run`, `lock`, `validate` and
//! `plugin verify`: every `uses: oci://…` of a pipeline is resolved once
//! (tag → manifest digest, unless `uses:` or `sluice.lock` pins it), pulled
//! into the pull cache (or read from it, content verified), its signature
//! and attestation referrers fetched (from the registry when it answers,
//! else from the cache), and handed to admission as a [`PluginFile`]
//! matched by the reference's policy name.
//!
//! The registry is not trusted: the manifest digest pins what is pulled,
//! every layer is checked against its digest, and only the signature check
//! of admission decides whether the component may run.
//!
//! `sluice.lock` (the pipeline file's name with `.lock`, beside it) pins
//! each reference as written to a manifest and a component digest:
//!
//! ```yaml
//! version: 1
//! plugins:
//!   oci://ghcr.io/acme/lint:1.2.0:
//!     manifest: sha256:…
//!     component: sha256:…
//! ```
//!
//! `sluice lock` writes it; `run` reads it (a locked tag is not looked up)
//! and never writes it; `run --locked` refuses a reference the lock lacks
//! and a tag the registry now resolves to another manifest.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sluice_engine::admission::{self, PluginFile, PluginFileError};
use sluice_oci::{CachedPlugin, OciError, PullCache, Pulled, ReferrerKind, Registry};
use sluice_pipeline::{Pipeline, PluginRef};
use sluice_record::OciPluginRecord;
use sluice_types::OciReference;

/// The lock file format version this runner reads and writes.
pub const LOCK_VERSION: u32 = 1;

/// The most bytes read from a lock file.
const MAX_LOCK_BYTES: u64 = 1 << 20;

/// What the lock pins one reference to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    /// `sha256:<hex>` of the manifest.
    pub manifest: String,
    /// `sha256:<hex>` of the component (the `application/wasm` layer).
    pub component: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockDoc {
    version: u32,
    #[serde(default)]
    plugins: BTreeMap<String, LockEntry>,
}

/// A read (or to be written) `sluice.lock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockFile {
    /// Where it lives.
    pub path: PathBuf,
    /// Entries by reference as written in `uses:`.
    pub plugins: BTreeMap<String, LockEntry>,
}

/// Why a lock file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// It is not a lock file this runner can read.
    #[error("{}: {reason}; {fix}", path.display())]
    Invalid {
        /// The lock file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// How to fix it.
        fix: &'static str,
    },
    /// It cannot be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The lock file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// It cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The lock file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

const REGENERATE: &str = "delete it and run `sluice lock` to write it again";

/// The lock file of the pipeline at `pipeline_path`: beside it, its name
/// with `.lock` (`sluice.yaml` → `sluice.lock`).
pub fn lock_path(pipeline_path: &Path) -> PathBuf {
    pipeline_path.with_extension("lock")
}

impl LockFile {
    /// An empty lock for `path`.
    pub fn empty(path: PathBuf) -> LockFile {
        LockFile {
            path,
            plugins: BTreeMap::new(),
        }
    }

    /// Reads `path`; `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<LockFile>, LockError> {
        use sluice_files::fsutil::InputError;
        let bytes = match sluice_files::fsutil::read_input_file(path, MAX_LOCK_BYTES, "lock file") {
            Ok(bytes) => bytes,
            Err(InputError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => {
                return Err(LockError::Read {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })
            }
        };
        let invalid = |reason: String| LockError::Invalid {
            path: path.to_path_buf(),
            reason,
            fix: REGENERATE,
        };
        let text = String::from_utf8(bytes).map_err(|_| invalid("it is not UTF-8 text".into()))?;
        let doc: LockDoc = serde_yaml_ng::from_str(&text)
            .map_err(|e| invalid(format!("it is not a sluice lock file: {e}")))?;
        if doc.version != LOCK_VERSION {
            return Err(LockError::Invalid {
                path: path.to_path_buf(),
                reason: format!(
                    "version {} is not one this sluice reads (it reads version {LOCK_VERSION})",
                    doc.version
                ),
                fix: "run `sluice lock` with this sluice to write it again",
            });
        }
        for (reference, entry) in &doc.plugins {
            let parsed: OciReference = reference
                .parse()
                .map_err(|e| invalid(format!("entry `{reference}`: {e}")))?;
            for (field, digest) in [
                ("manifest", &entry.manifest),
                ("component", &entry.component),
            ] {
                if !sluice_types::oci::is_sha256_digest(digest) {
                    return Err(invalid(format!(
                        "entry `{reference}`: {field} `{digest}` is not `sha256:` and 64 \
                         lowercase hex digits"
                    )));
                }
            }
            if parsed.digest().is_some_and(|d| d != entry.manifest) {
                return Err(invalid(format!(
                    "entry `{reference}` pins its own digest, but its manifest is {}",
                    entry.manifest
                )));
            }
        }
        Ok(Some(LockFile {
            path: path.to_path_buf(),
            plugins: doc.plugins,
        }))
    }

    /// The entry for `reference` as written in `uses:`.
    pub fn get(&self, reference: &OciReference) -> Option<&LockEntry> {
        self.plugins.get(&reference.to_string())
    }

    /// Writes it atomically, entries sorted.
    pub fn write(&self) -> Result<(), LockError> {
        let doc = LockDoc {
            version: LOCK_VERSION,
            plugins: self.plugins.clone(),
        };
        let yaml = serde_yaml_ng::to_string(&doc).map_err(|e| LockError::Write {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        let text = format!(
            "# Written by `sluice lock`: the manifest and component digest each OCI plugin\n\
             # reference of the pipeline resolved to. `sluice run` pins tags to these;\n\
             # `sluice run --locked` refuses a tag that moved. Commit it; do not edit it.\n{yaml}"
        );
        sluice_files::fsutil::write_atomic(&self.path, text.as_bytes()).map_err(|source| {
            LockError::Write {
                path: self.path.clone(),
                source,
            }
        })
    }
}

/// Why the OCI plugins of a pipeline cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum OciRunError {
    /// The registry or the pull cache failed for one reference.
    #[error("plugin {reference}: {source}")]
    Registry {
        /// The reference as written.
        reference: String,
        /// What failed.
        source: OciError,
    },
    /// The registry is unreachable and the pull cache cannot stand in.
    #[error("plugin {reference}: registry {registry} is unreachable ({reason}) and {why}; {fix}")]
    Offline {
        /// The reference as written.
        reference: String,
        /// `host[:port]`.
        registry: String,
        /// What the connection attempt said.
        reason: String,
        /// Why the cache cannot stand in.
        why: String,
        /// What to do.
        fix: &'static str,
    },
    /// `--locked` and the lock lacks the reference.
    #[error(
        "--locked: plugin {reference} is not pinned in {}; run `sluice lock` to pin it, \
         review the lock file's change and commit it",
        lock.display()
    )]
    NotLocked {
        /// The reference as written.
        reference: String,
        /// The lock file.
        lock: PathBuf,
    },
    /// `--locked` and the tag now points to another manifest.
    #[error(
        "--locked: the tag of plugin {reference} moved: {} pins manifest {locked}, but the \
         registry now resolves it to {current}; if the new content is intended, run \
         `sluice lock` to accept it (and review who pushed it)",
        lock.display()
    )]
    Moved {
        /// The reference as written.
        reference: String,
        /// The lock file.
        lock: PathBuf,
        /// The locked manifest digest.
        locked: String,
        /// What the registry says now.
        current: String,
    },
    /// The component of the locked manifest is not the locked component.
    #[error(
        "plugin {reference}: manifest {manifest} holds component {actual}, but {} pins \
         component {locked}; the registry or the pull cache serves other content under the \
         same manifest digest",
        lock.display()
    )]
    ComponentMismatch {
        /// The reference as written.
        reference: String,
        /// The lock file.
        lock: PathBuf,
        /// The manifest digest.
        manifest: String,
        /// The locked component digest.
        locked: String,
        /// The digest of what was pulled or cached.
        actual: String,
    },
    /// The cached component cannot be read back.
    #[error("plugin {reference}: {source}")]
    CachedFile {
        /// The reference as written.
        reference: String,
        /// What failed.
        source: PluginFileError,
    },
    /// The lock file cannot be read or written.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// `--registry-ca`, `--insecure-registry` or the credentials are unusable.
    #[error("registry options: {0}")]
    Options(OciError),
}

impl OciRunError {
    /// Content that is not what its digest (or the lock) says, and a tag
    /// that moved under `--locked`: refusals, like a bad signature (exit 3).
    pub fn is_refusal(&self) -> bool {
        match self {
            OciRunError::Registry { source, .. } => source.is_integrity(),
            OciRunError::Moved { .. } | OciRunError::ComponentMismatch { .. } => true,
            _ => false,
        }
    }

    /// The registry could not be reached (exit 1: nothing is wrong with the
    /// input, the service is down).
    pub fn is_unreachable(&self) -> bool {
        match self {
            OciRunError::Registry { source, .. } => source.is_unreachable(),
            OciRunError::Offline { .. } => true,
            _ => false,
        }
    }
}

/// How a command reaches registries: turned into
/// [`RegistryOptions`](sluice_oci::RegistryOptions) (reading credentials)
/// only when a pipeline uses a registry, so that unusable registry settings
/// never stop a run that needs none.
#[derive(Clone)]
pub struct RegistryAccess(
    Arc<dyn Fn() -> Result<sluice_oci::RegistryOptions, OciError> + Send + Sync>,
);

impl RegistryAccess {
    /// Options built by `build` when first needed.
    pub fn new(
        build: impl Fn() -> Result<sluice_oci::RegistryOptions, OciError> + Send + Sync + 'static,
    ) -> RegistryAccess {
        RegistryAccess(Arc::new(build))
    }

    /// The options.
    pub fn options(&self) -> Result<sluice_oci::RegistryOptions, OciError> {
        (self.0)()
    }
}

impl Default for RegistryAccess {
    /// TLS with the system's roots, credentials from the environment.
    fn default() -> RegistryAccess {
        RegistryAccess::new(|| {
            Ok(sluice_oci::RegistryOptions {
                auth: sluice_oci::Auth::from_environment()?,
                ..Default::default()
            })
        })
    }
}

impl std::fmt::Debug for RegistryAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistryAccess")
    }
}

/// How to get OCI plugins.
pub struct Settings {
    /// The registry client's options.
    pub registry: sluice_oci::RegistryOptions,
    /// The runner's cache directory (the pull cache is its `oci/`).
    pub cache_dir: PathBuf,
    /// `--locked`.
    pub locked: bool,
    /// Manifests to use before the lock's: a resumed run's own.
    pub pins: HashMap<String, String>,
}

/// One OCI plugin ready for admission.
#[derive(Debug, Clone)]
pub struct PulledPlugin {
    /// The component, its digest and its referrers.
    pub file: PluginFile,
    /// The reference as written and the manifest it resolved to.
    pub origin: OciPluginRecord,
    /// The component digest, for the lock.
    pub component: String,
}

/// The OCI plugins of a pipeline, and what the user should know (a
/// registry that did not answer, a cache used in its place).
#[derive(Debug, Default)]
pub struct OciPlugins {
    /// By reference as written.
    pub plugins: HashMap<OciReference, PulledPlugin>,
    /// Warnings, one per fact.
    pub warnings: Vec<String>,
}

/// The distinct OCI references `stages` use, in pipeline order.
pub fn references(pipeline: &Pipeline, stages: &[String]) -> Vec<OciReference> {
    let mut out: Vec<OciReference> = Vec::new();
    for name in stages {
        if let Some(PluginRef::Oci(r)) = pipeline.stages.get(name).map(|s| &s.uses) {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
    }
    out
}

/// Resolves, pulls (or reads from the cache) and gathers the referrers of
/// every reference in `references`, under `lock`.
pub async fn pull_all(
    references: &[OciReference],
    settings: &Settings,
    lock: Option<&LockFile>,
    lock_file: &Path,
) -> Result<OciPlugins, OciRunError> {
    let mut session = Session {
        registry: Registry::new(settings.registry.clone()).map_err(OciRunError::Options)?,
        cache: PullCache::open(&settings.cache_dir).map_err(|source| OciRunError::Registry {
            reference: references
                .first()
                .map(ToString::to_string)
                .unwrap_or_default(),
            source,
        })?,
        settings,
        lock,
        lock_file,
        unreachable: HashMap::new(),
        from_cache: BTreeMap::new(),
        unchecked_tags: Default::default(),
    };
    let mut plugins = HashMap::new();
    for reference in references {
        let plugin = session.fetch(reference).await?;
        plugins.insert(reference.clone(), plugin);
    }
    Ok(OciPlugins {
        plugins,
        warnings: session.warnings(),
    })
}

struct Session<'a> {
    registry: Registry,
    cache: PullCache,
    settings: &'a Settings,
    lock: Option<&'a LockFile>,
    lock_file: &'a Path,
    /// Registries that did not answer this run, with what they said: each
    /// is tried once.
    unreachable: HashMap<String, String>,
    /// Plugins run from the cache because their registry did not answer,
    /// by registry.
    from_cache: BTreeMap<String, Vec<String>>,
    /// Registries whose tags `--locked` could not check.
    unchecked_tags: std::collections::BTreeSet<String>,
}

impl Session<'_> {
    /// One warning per registry that did not answer: what ran from the
    /// cache instead, and what could not be checked.
    fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let registries: std::collections::BTreeSet<&String> = self
            .from_cache
            .keys()
            .chain(self.unchecked_tags.iter())
            .collect();
        for registry in registries {
            let reason = self
                .unreachable
                .get(registry)
                .map(String::as_str)
                .unwrap_or("no answer");
            let mut w = format!("registry {registry} is unreachable ({reason})");
            if let Some(plugins) = self.from_cache.get(registry) {
                w.push_str(&format!(
                    ": {} run{} from the pull cache, with the signatures cached when pulled",
                    plugins.join(", "),
                    if plugins.len() == 1 { "s" } else { "" }
                ));
            }
            if self.unchecked_tags.contains(registry) {
                w.push_str(
                    "; --locked could not check that its tags still point to the locked manifests",
                );
            }
            out.push(w);
        }
        out
    }
}

impl Session<'_> {
    async fn fetch(&mut self, r: &OciReference) -> Result<PulledPlugin, OciRunError> {
        let written = r.to_string();
        let locked = self.lock.and_then(|l| l.get(r)).cloned();
        let manifest = self.manifest(r, locked.as_ref()).await?;
        let pinned = r.with_digest(&manifest).map_err(|e| {
            self.error(
                r,
                OciError::Reference {
                    reference: written.clone(),
                    reason: e.to_string(),
                },
            )
        })?;
        let (cached, fresh) = match self.cache.get(&manifest).map_err(|e| self.error(r, e))? {
            Some(cached) => (cached, false),
            None => (self.pull(r, &pinned).await?, true),
        };
        if let Some(entry) = &locked {
            if entry.manifest == manifest && entry.component != cached.component_digest {
                return Err(OciRunError::ComponentMismatch {
                    reference: written,
                    lock: self.lock_file.to_path_buf(),
                    manifest,
                    locked: entry.component.clone(),
                    actual: cached.component_digest,
                });
            }
        }
        // Signatures may have been added (or a key rotated) since the
        // plugin was cached: ask the registry, fall back to the cache.
        let cached = if fresh {
            cached
        } else {
            self.refresh_referrers(r, &pinned, cached).await?
        };
        let file = admission::pulled_plugin_file(
            r,
            &cached.component_path,
            cached.signatures.clone(),
            cached.attestations.clone(),
        )
        .map_err(|source| OciRunError::CachedFile {
            reference: written.clone(),
            source,
        })?;
        // The cache checked the file on `get`; it may still change before
        // it is read here. What admission sees must be what was verified.
        if file.digest != cached.component_digest {
            return Err(self.error(
                r,
                OciError::DigestMismatch {
                    what: format!("cached component of {pinned}"),
                    expected: cached.component_digest.clone(),
                    actual: file.digest.clone(),
                },
            ));
        }
        Ok(PulledPlugin {
            file,
            origin: OciPluginRecord {
                reference: written,
                manifest,
            },
            component: cached.component_digest,
        })
    }

    /// The manifest digest `r` runs as: the one `uses:` names, the one the
    /// resumed run used, the locked one, or what the registry resolves the
    /// tag to now.
    async fn manifest(
        &mut self,
        r: &OciReference,
        locked: Option<&LockEntry>,
    ) -> Result<String, OciRunError> {
        if self.settings.locked && locked.is_none() {
            return Err(OciRunError::NotLocked {
                reference: r.to_string(),
                lock: self.lock_file.to_path_buf(),
            });
        }
        if let Some(digest) = r.digest() {
            return Ok(digest.to_owned());
        }
        if let Some(m) = self.settings.pins.get(&r.to_string()) {
            return Ok(m.clone());
        }
        match (locked, self.settings.locked) {
            // `--locked`: the tag must still point where the lock says.
            (Some(entry), true) => match self.resolve(r).await {
                Ok(current) if current != entry.manifest => Err(OciRunError::Moved {
                    reference: r.to_string(),
                    lock: self.lock_file.to_path_buf(),
                    locked: entry.manifest.clone(),
                    current,
                }),
                Ok(_) => Ok(entry.manifest.clone()),
                Err(e) if e.is_unreachable() => {
                    self.unchecked_tags.insert(r.registry().to_owned());
                    Ok(entry.manifest.clone())
                }
                Err(e) => Err(self.error(r, e)),
            },
            (Some(entry), false) => Ok(entry.manifest.clone()),
            (None, _) => match self.resolve(r).await {
                Ok(m) => Ok(m),
                Err(e) if e.is_unreachable() => Err(OciRunError::Offline {
                    reference: r.to_string(),
                    registry: r.registry().to_owned(),
                    reason: unreachable_reason(&e),
                    why: format!(
                        "the tag `{}` is pinned neither in `uses:` nor in {}",
                        r.tag().unwrap_or_default(),
                        self.lock_file.display()
                    ),
                    fix: "run `sluice lock` while the registry is reachable (it pins every tag \
                          and fills the pull cache), or pin the reference with `@sha256:…`",
                }),
                Err(e) => Err(self.error(r, e)),
            },
        }
    }

    /// Resolves the tag of `r`, at most one failed attempt per registry.
    async fn resolve(&mut self, r: &OciReference) -> Result<String, OciError> {
        if let Some(reason) = self.unreachable.get(r.registry()) {
            return Err(OciError::Unreachable {
                registry: r.registry().to_owned(),
                reason: reason.clone(),
            });
        }
        let result = self.registry.resolve(&r.without_digest()).await;
        self.note(r, result)
    }

    fn note<T>(&mut self, r: &OciReference, result: Result<T, OciError>) -> Result<T, OciError> {
        if let Err(e) = &result {
            if e.is_unreachable() {
                self.unreachable
                    .insert(r.registry().to_owned(), unreachable_reason(e));
            }
        }
        result
    }

    /// Pulls `pinned` and its referrers into the cache.
    async fn pull(
        &mut self,
        r: &OciReference,
        pinned: &OciReference,
    ) -> Result<CachedPlugin, OciRunError> {
        let offline = |reason: String, registry: &str| OciRunError::Offline {
            reference: r.to_string(),
            registry: registry.to_owned(),
            reason,
            why: format!(
                "manifest {} is not in the pull cache",
                pinned.digest().unwrap_or_default()
            ),
            fix: "run it once while the registry is reachable, or `sluice lock`, which pulls \
                  every reference of the pipeline into the cache",
        };
        if let Some(reason) = self.unreachable.get(r.registry()) {
            return Err(offline(reason.clone(), r.registry()));
        }
        let pulled = self.registry.pull(pinned).await;
        let pulled = match self.note(r, pulled) {
            Ok(p) => p,
            Err(e) if e.is_unreachable() => {
                return Err(offline(unreachable_reason(&e), r.registry()))
            }
            Err(e) => return Err(self.error(r, e)),
        };
        let (signatures, attestations) = self.referrers(r, pinned).await?;
        tracing::debug!(reference = %pinned, "pulled into the pull cache");
        self.cache
            .put(pinned, &pulled, &signatures, &attestations)
            .map_err(|e| self.error(r, e))
    }

    async fn referrers(
        &mut self,
        r: &OciReference,
        pinned: &OciReference,
    ) -> Result<(Vec<Vec<u8>>, Vec<Vec<u8>>), OciRunError> {
        let signatures = self
            .registry
            .referrers(pinned, ReferrerKind::Signature)
            .await;
        let signatures = self.note(r, signatures).map_err(|e| self.error(r, e))?;
        let attestations = self
            .registry
            .referrers(pinned, ReferrerKind::Attestation)
            .await;
        let attestations = self.note(r, attestations).map_err(|e| self.error(r, e))?;
        Ok((signatures, attestations))
    }

    /// The registry's current referrers of a cached plugin, stored in the
    /// cache; the cached ones when the registry does not answer.
    async fn refresh_referrers(
        &mut self,
        r: &OciReference,
        pinned: &OciReference,
        cached: CachedPlugin,
    ) -> Result<CachedPlugin, OciRunError> {
        let from_cache = |session: &mut Self| {
            session
                .from_cache
                .entry(r.registry().to_owned())
                .or_default()
                .push(r.to_string());
        };
        if self.unreachable.contains_key(r.registry()) {
            from_cache(self);
            return Ok(cached);
        }
        let (signatures, attestations) = match self.referrers(r, pinned).await {
            Ok(found) => found,
            Err(e) if e.is_unreachable() => {
                from_cache(self);
                return Ok(cached);
            }
            Err(e) => return Err(e),
        };
        let text = |bundles: &[Vec<u8>]| {
            sluice_oci::bundle_file_text(bundles).map_err(|e| self.error(r, e))
        };
        if text(&signatures)? == cached.signatures && text(&attestations)? == cached.attestations {
            return Ok(cached);
        }
        // Store what the registry holds now, so that an offline run later
        // sees the same signatures.
        let component = std::fs::read(&cached.component_path).map_err(|source| {
            self.error(
                r,
                OciError::Cache {
                    path: cached.component_path.clone(),
                    source,
                },
            )
        })?;
        let pulled = Pulled {
            manifest_digest: cached.manifest_digest.clone(),
            component_digest: cached.component_digest.clone(),
            component,
        };
        self.cache
            .put(pinned, &pulled, &signatures, &attestations)
            .map_err(|e| self.error(r, e))
    }

    fn error(&self, r: &OciReference, source: OciError) -> OciRunError {
        OciRunError::Registry {
            reference: r.to_string(),
            source,
        }
    }
}

/// What an unreachable registry said, without the error's own preamble.
fn unreachable_reason(e: &OciError) -> String {
    match e {
        OciError::Unreachable { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn lock_files_round_trip_and_sit_beside_the_pipeline() {
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(
            lock_path(&dir.path().join("sluice.yaml")),
            dir.path().join("sluice.lock")
        );
        assert_eq!(
            lock_path(Path::new("ci/release.yaml")),
            Path::new("ci/release.lock")
        );
        let path = dir.path().join("sluice.lock");
        assert_eq!(LockFile::read(&path).expect("absent"), None);
        let mut lock = LockFile::empty(path.clone());
        lock.plugins.insert(
            "oci://127.0.0.1:5000/sluice/lint:1.0".into(),
            LockEntry {
                manifest: digest('a'),
                component: digest('b'),
            },
        );
        lock.write().expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("# Written by `sluice lock`"), "{text}");
        assert!(text.contains("version: 1"), "{text}");
        let back = LockFile::read(&path).expect("read").expect("present");
        assert_eq!(back, lock);
        let r: OciReference = "oci://127.0.0.1:5000/sluice/lint:1.0".parse().expect("ref");
        assert_eq!(back.get(&r).map(|e| e.manifest.clone()), Some(digest('a')));
    }

    #[test]
    fn broken_lock_files_name_the_file_and_the_fix() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("sluice.lock");
        let cases = [
            ("version: 2\nplugins: {}\n", "version 2 is not one this sluice reads"),
            ("version: 1\nplugns: {}\n", "unknown field `plugns`"),
            (
                "version: 1\nplugins:\n  lint:1.0: { manifest: sha256:aa, component: sha256:bb }\n",
                "entry `lint:1.0`",
            ),
            (
                &format!(
                    "version: 1\nplugins:\n  oci://r.example/x:1: {{ manifest: sha256:aa, component: {} }}\n",
                    digest('b')
                ),
                "manifest `sha256:aa` is not `sha256:`",
            ),
            (
                &format!(
                    "version: 1\nplugins:\n  oci://r.example/x:1@{}: {{ manifest: {}, component: {} }}\n",
                    digest('a'),
                    digest('c'),
                    digest('b')
                ),
                "pins its own digest",
            ),
            ("[1, 2]\n", "it is not a sluice lock file"),
        ];
        for (text, expected) in cases {
            std::fs::write(&path, text).expect("write");
            let err = LockFile::read(&path).expect_err(text).to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.starts_with(&path.display().to_string()), "{err}");
            assert!(err.contains("sluice lock"), "{err}");
        }
    }

    #[test]
    fn refusals_and_outages_are_told_apart() {
        let moved = OciRunError::Moved {
            reference: "oci://r.example/x:1".into(),
            lock: "sluice.lock".into(),
            locked: digest('a'),
            current: digest('b'),
        };
        assert!(moved.is_refusal());
        let text = moved.to_string();
        assert!(
            text.contains(&format!("pins manifest {}", digest('a'))),
            "{text}"
        );
        assert!(
            text.contains(&format!("resolves it to {}", digest('b'))),
            "{text}"
        );
        assert!(text.contains("run `sluice lock` to accept it"), "{text}");
        let tampered = OciRunError::Registry {
            reference: "oci://r.example/x:1".into(),
            source: OciError::DigestMismatch {
                what: "layer".into(),
                expected: digest('a'),
                actual: digest('b'),
            },
        };
        assert!(tampered.is_refusal());
        let down = OciRunError::Registry {
            reference: "oci://r.example/x:1".into(),
            source: OciError::Unreachable {
                registry: "r.example".into(),
                reason: "connection refused".into(),
            },
        };
        assert!(!down.is_refusal());
        assert!(down.is_unreachable());
        let missing = OciRunError::NotLocked {
            reference: "oci://r.example/x:1".into(),
            lock: "sluice.lock".into(),
        };
        assert!(!missing.is_refusal() && !missing.is_unreachable());
    }
}
