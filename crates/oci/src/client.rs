//! The registry client: resolve, pull, push, referrers.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt as _;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use sluice_types::OciReference;
use tokio::sync::Mutex;

use crate::format::{self, Descriptor};
use crate::{
    sha256_digest, Auth, OciError, MAX_COMPONENT_BYTES, MAX_MANIFEST_BYTES, MAX_REFERRER_BYTES,
};

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// PEM files of extra CA certificates trusted for registry TLS.
    pub ca_files: Vec<PathBuf>,
    /// Registries (`host[:port]`) spoken to over plain HTTP; loopback only,
    /// else [`OciError::InsecureNotLoopback`].
    pub insecure: Vec<String>,
    /// Credentials.
    pub auth: Auth,
}

/// What a sluice referrer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrerKind {
    /// A Sigstore bundle with a message signature over the component bytes
    /// (what `FILE.sigstore.json` holds).
    Signature,
    /// A Sigstore bundle with a DSSE envelope (an in-toto attestation, what
    /// `FILE.intoto.sigstore.json` holds).
    Attestation,
}

impl ReferrerKind {
    /// The `dev.sigstore.bundle.content` annotation value.
    pub fn content(self) -> &'static str {
        match self {
            ReferrerKind::Signature => "message-signature",
            ReferrerKind::Attestation => "dsse-envelope",
        }
    }
}

/// A component pulled and checked.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The manifest's digest (`sha256:…`).
    pub manifest_digest: String,
    /// The component layer's digest, the sha256 of [`Pulled::component`].
    pub component_digest: String,
    /// The component bytes.
    pub component: Vec<u8>,
}

/// What a push wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's digest (`sha256:…`).
    pub manifest_digest: String,
    /// The component layer's digest.
    pub component_digest: String,
}

/// A client for OCI registries (one per command; it caches credentials
/// per registry).
pub struct Registry {
    client: Client,
    auth: Auth,
    credentials: Mutex<HashMap<String, RegistryAuth>>,
    /// `(registry, push)` pairs already authenticated.
    logged_in: Mutex<std::collections::HashSet<(String, bool)>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("auth", &self.auth)
            .finish()
    }
}

/// The most referrers of one component sluice examines (each costs a
/// manifest fetch; a registry listing more is not believed beyond this).
const MAX_REFERRERS: usize = 256;

/// The manifest media types asked for; Docker's are accepted so a refusal
/// can name them.
const ACCEPT_MANIFESTS: &[&str] = &[
    format::IMAGE_MANIFEST_MEDIA_TYPE,
    format::IMAGE_INDEX_MEDIA_TYPE,
    format::DOCKER_MANIFEST_MEDIA_TYPE,
    format::DOCKER_MANIFEST_LIST_MEDIA_TYPE,
];

impl Registry {
    /// A client with these options: checks that every insecure registry is
    /// on loopback and that every CA file holds PEM certificates.
    pub fn new(options: RegistryOptions) -> Result<Registry, OciError> {
        for registry in &options.insecure {
            if !sluice_types::oci::is_loopback_registry(registry) {
                return Err(OciError::InsecureNotLoopback {
                    registry: registry.clone(),
                });
            }
        }
        let mut roots = Vec::new();
        for file in &options.ca_files {
            roots.extend(read_ca_file(file)?);
        }
        let mut insecure: Vec<String> = options
            .insecure
            .iter()
            .map(|r| r.to_ascii_lowercase())
            .collect();
        insecure.sort();
        insecure.dedup();
        let config = ClientConfig {
            protocol: if insecure.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(insecure)
            },
            extra_root_certificates: roots,
            // A registry push or pull is one request at a time here; a
            // stuck connection should fail, not hang the run.
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: concat!("sluice/", env!("CARGO_PKG_VERSION")),
            // Some registries (docker-registry 2.8 among them) handle the
            // single PUT upload path most reliably.
            use_monolithic_push: true,
            ..ClientConfig::default()
        };
        // `Client::new` silently falls back to defaults on a bad config;
        // `try_from` says what is wrong.
        let client = Client::try_from(config).map_err(|e| OciError::Tls {
            file: options.ca_files.first().cloned().unwrap_or_default(),
            reason: format!("the TLS client could not be set up: {e}"),
        })?;
        Ok(Registry {
            client,
            auth: options.auth,
            credentials: Mutex::new(HashMap::new()),
            logged_in: Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// The manifest digest `r` points to now: the tag's current digest, or
    /// for a pinned reference, its digest after checking it exists.
    pub async fn resolve(&self, r: &OciReference) -> Result<String, OciError> {
        let reference = to_client_reference(r);
        let auth = self.login(r, RegistryOperation::Pull).await?;
        let digest = self
            .client
            .fetch_manifest_digest(&reference, &auth)
            .await
            .map_err(|e| map_error(e, r, &r.to_string()))?;
        if !sluice_types::oci::is_sha256_digest(&digest) {
            return Err(OciError::Registry {
                registry: r.registry().to_owned(),
                status: None,
                message: format!("it answered digest `{digest}` for {r}, which is not sha256"),
            });
        }
        if let Some(pinned) = r.digest() {
            if pinned != digest {
                return Err(OciError::DigestMismatch {
                    what: format!("the manifest of {r}"),
                    expected: pinned.to_owned(),
                    actual: digest,
                });
            }
        }
        Ok(digest)
    }

    /// Pulls the component `r` (which must carry a digest): checks the
    /// manifest's digest, that it is a Wasm component artifact, and the
    /// layer's digest.
    pub async fn pull(&self, r: &OciReference) -> Result<Pulled, OciError> {
        let Some(pinned) = r.digest() else {
            return Err(OciError::Reference {
                reference: r.to_string(),
                reason: "a pull needs a pinned reference (`@sha256:…`); resolve the tag first"
                    .to_owned(),
            });
        };
        let (manifest, manifest_digest) = self.manifest(r, pinned).await?;
        let layer = format::component_layer(&manifest, &r.to_string())?;
        let component = self
            .blob(
                r,
                &layer.digest,
                layer.size as u64,
                MAX_COMPONENT_BYTES,
                &format!("the component layer of {r}"),
            )
            .await?;
        Ok(Pulled {
            manifest_digest,
            component_digest: layer.digest,
            component,
        })
    }

    /// Pushes `component` as a Wasm component artifact under `r`'s tag.
    pub async fn push(&self, r: &OciReference, component: &[u8]) -> Result<Pushed, OciError> {
        let Some(tag) = r.tag().filter(|_| r.digest().is_none()) else {
            return Err(OciError::Reference {
                reference: r.to_string(),
                reason: "a push needs a tag and no digest (`oci://registry/repository:tag`)"
                    .to_owned(),
            });
        };
        let name = r.repository().rsplit('/').next().unwrap_or(r.repository());
        let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let (config, manifest) =
            format::component_manifest(component, &format!("{name}.wasm"), &created)?;
        let component_digest = sha256_digest(component);
        let target = Reference::with_tag(
            r.registry().to_owned(),
            r.repository().to_owned(),
            tag.to_owned(),
        );
        self.login(r, RegistryOperation::Push).await?;
        self.push_blob(r, &target, component.to_vec(), &component_digest)
            .await?;
        self.push_blob(r, &target, config.clone(), &sha256_digest(&config))
            .await?;
        let manifest_digest = self
            .push_manifest(r, &target, manifest, format::IMAGE_MANIFEST_MEDIA_TYPE)
            .await?;
        tracing::info!(reference = %r, manifest = %manifest_digest, "pushed component");
        Ok(Pushed {
            manifest_digest,
            component_digest,
        })
    }

    /// Attaches `payload` (a Sigstore bundle) to the pinned `subject` as a
    /// referrer; returns the referrer manifest's digest. Registries without
    /// the referrers API get the tag-schema fallback index updated.
    pub async fn attach(
        &self,
        subject: &OciReference,
        kind: ReferrerKind,
        payload: &[u8],
        annotations: BTreeMap<String, String>,
    ) -> Result<String, OciError> {
        let subject_digest = pinned(subject, "attaching a signature")?;
        if payload.len() as u64 > MAX_REFERRER_BYTES {
            return Err(OciError::TooLarge {
                what: "the signature bundle".to_owned(),
                size: payload.len() as u64,
                limit: MAX_REFERRER_BYTES,
            });
        }
        self.login(subject, RegistryOperation::Push).await?;
        let (subject_manifest, _) = self.manifest(subject, subject_digest).await?;
        let subject_descriptor = Descriptor {
            media_type: manifest_media_type(&subject_manifest),
            digest: subject_digest.to_owned(),
            size: subject_manifest.len() as i64,
            artifact_type: None,
            annotations: None,
        };
        let mut annotations = annotations;
        annotations.insert(
            format::BUNDLE_CONTENT_ANNOTATION.to_owned(),
            kind.content().to_owned(),
        );
        annotations.insert(
            format::CREATED_ANNOTATION.to_owned(),
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        );
        let manifest = format::referrer_manifest(subject_descriptor, payload, annotations.clone());
        let manifest_digest = sha256_digest(&manifest);
        let repo_ref = |digest: &str| {
            Reference::with_digest(
                subject.registry().to_owned(),
                subject.repository().to_owned(),
                digest.to_owned(),
            )
        };
        let target = repo_ref(&manifest_digest);
        self.push_blob(subject, &target, payload.to_vec(), &sha256_digest(payload))
            .await?;
        self.push_blob(
            subject,
            &target,
            format::EMPTY_BLOB.to_vec(),
            &sha256_digest(format::EMPTY_BLOB),
        )
        .await?;
        let manifest_len = manifest.len();
        self.push_manifest(
            subject,
            &target,
            manifest,
            format::IMAGE_MANIFEST_MEDIA_TYPE,
        )
        .await?;
        // A registry with the referrers API lists the new manifest now;
        // otherwise (404 or an unsupported answer) keep the fallback index.
        let listed = match self.native_referrers(subject, subject_digest).await? {
            Some(index) => index.iter().any(|d| d.digest == manifest_digest),
            None => false,
        };
        if !listed {
            let entry = Descriptor {
                media_type: format::IMAGE_MANIFEST_MEDIA_TYPE.to_owned(),
                digest: manifest_digest.clone(),
                size: manifest_len as i64,
                artifact_type: Some(format::SIGSTORE_BUNDLE_MEDIA_TYPE.to_owned()),
                annotations: Some(annotations),
            };
            self.update_fallback_index(subject, subject_digest, entry)
                .await?;
        }
        tracing::info!(subject = %subject, referrer = %manifest_digest, fallback = !listed, "attached referrer");
        Ok(manifest_digest)
    }

    /// The payloads (Sigstore bundles) of `subject`'s referrers of `kind`,
    /// each referrer manifest and layer digest-checked, in the order the
    /// registry lists them, without duplicates.
    pub async fn referrers(
        &self,
        subject: &OciReference,
        kind: ReferrerKind,
    ) -> Result<Vec<Vec<u8>>, OciError> {
        let subject_digest = pinned(subject, "reading signatures")?;
        self.login(subject, RegistryOperation::Pull).await?;
        let entries = match self.native_referrers(subject, subject_digest).await? {
            Some(entries) => entries,
            None => self.fallback_entries(subject, subject_digest).await?,
        };
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for entry in entries.into_iter().take(MAX_REFERRERS) {
            // Some registries list the config media type (the empty
            // descriptor's) as the artifact type; the manifest decides.
            if entry.artifact_type.as_deref().is_some_and(|t| {
                t != format::SIGSTORE_BUNDLE_MEDIA_TYPE && t != format::EMPTY_MEDIA_TYPE
            }) || !sluice_types::oci::is_sha256_digest(&entry.digest)
                || !seen.insert(entry.digest.clone())
            {
                continue;
            }
            let at = subject
                .with_digest(&entry.digest)
                .map_err(|e| OciError::Registry {
                    registry: subject.registry().to_owned(),
                    status: None,
                    message: e.to_string(),
                })?;
            let (manifest, _) = self.manifest(&at, &entry.digest).await?;
            // The subject check matters for the fallback index, which anyone
            // with push access could fill with other manifests.
            let Some(layer) = format::bundle_layer(&manifest, subject_digest, kind.content())
            else {
                tracing::debug!(
                    referrer = %entry.digest,
                    subject = %subject,
                    kind = kind.content(),
                    "ignoring referrer: not a bundle of this kind whose subject is this manifest"
                );
                continue;
            };
            let payload = self
                .blob(
                    subject,
                    &layer.digest,
                    layer.size as u64,
                    MAX_REFERRER_BYTES,
                    &format!("the signature bundle {} of {subject}", entry.digest),
                )
                .await?;
            if !payloads.contains(&payload) {
                payloads.push(payload);
            }
        }
        Ok(payloads)
    }

    /// The credentials for `r`'s registry, logged in for `op`.
    async fn login(
        &self,
        r: &OciReference,
        op: RegistryOperation,
    ) -> Result<RegistryAuth, OciError> {
        let auth = {
            let mut cache = self.credentials.lock().await;
            match cache.get(r.registry()) {
                Some(auth) => auth.clone(),
                None => {
                    let auth = self.auth.credentials(r.registry()).await?;
                    cache.insert(r.registry().to_owned(), auth.clone());
                    auth
                }
            }
        };
        let key = (
            format!("{}/{}", r.registry(), r.repository()),
            matches!(op, RegistryOperation::Push),
        );
        if !self.logged_in.lock().await.contains(&key) {
            // Stores the credentials and fetches a bearer token when the
            // registry asks for one; Basic-auth registries use them directly.
            self.client
                .auth(&to_client_reference(r), &auth, op)
                .await
                .map_err(|e| map_error(e, r, &r.to_string()))?;
            self.logged_in.lock().await.insert(key);
        }
        Ok(auth)
    }

    /// The manifest `digest` in `r`'s repository, its size capped and its
    /// bytes checked against the digest.
    async fn manifest(
        &self,
        r: &OciReference,
        digest: &str,
    ) -> Result<(Vec<u8>, String), OciError> {
        let reference = Reference::with_digest(
            r.registry().to_owned(),
            r.repository().to_owned(),
            digest.to_owned(),
        );
        let auth = self.login(r, RegistryOperation::Pull).await?;
        let (body, _) = self
            .client
            .pull_manifest_raw(&reference, &auth, ACCEPT_MANIFESTS)
            .await
            .map_err(|e| map_error(e, r, &format!("{}@{digest}", r.without_digest())))?;
        check_manifest(&body, digest, &r.to_string())?;
        Ok((body.to_vec(), digest.to_owned()))
    }

    /// A blob of `r`'s repository, capped at `limit` and its declared size,
    /// its sha256 checked against `digest`.
    async fn blob(
        &self,
        r: &OciReference,
        digest: &str,
        declared: u64,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>, OciError> {
        if declared > limit {
            return Err(OciError::TooLarge {
                what: what.to_owned(),
                size: declared,
                limit,
            });
        }
        let reference = Reference::with_digest(
            r.registry().to_owned(),
            r.repository().to_owned(),
            digest.to_owned(),
        );
        // `&str` descriptors carry no foreign URLs: blobs come from the
        // registry named, nowhere else.
        let mut stream = self
            .client
            .pull_blob_stream(&reference, digest)
            .await
            .map_err(|e| map_error(e, r, &format!("blob {digest} of {r}")))?;
        if let Some(length) = stream.content_length.filter(|l| *l > declared) {
            return Err(OciError::TooLarge {
                what: format!(
                    "{what} (the registry sends {length} bytes, the manifest says {declared})"
                ),
                size: length,
                limit: declared,
            });
        }
        // Grown as bytes arrive: a descriptor may claim more than is sent.
        let mut bytes = Vec::with_capacity(declared.min(limit).min(16 << 20) as usize);
        while let Some(chunk) = stream.stream.next().await {
            let chunk = chunk.map_err(|e| stream_error(e, r, what))?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > declared {
                return Err(OciError::TooLarge {
                    what: format!("{what} (more bytes than the {declared} its descriptor says)"),
                    size: bytes.len() as u64,
                    limit: declared,
                });
            }
        }
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(OciError::DigestMismatch {
                what: what.to_owned(),
                expected: digest.to_owned(),
                actual,
            });
        }
        Ok(bytes)
    }

    async fn push_blob(
        &self,
        r: &OciReference,
        target: &Reference,
        data: Vec<u8>,
        digest: &str,
    ) -> Result<(), OciError> {
        let exists = self
            .client
            .blob_exists(target, digest)
            .await
            .map_err(|e| map_error(e, r, &r.to_string()))?;
        if !exists {
            self.client
                .push_blob(target, data, digest)
                .await
                .map_err(|e| map_error(e, r, &r.to_string()))?;
        }
        Ok(())
    }

    async fn push_manifest(
        &self,
        r: &OciReference,
        target: &Reference,
        manifest: Vec<u8>,
        media_type: &'static str,
    ) -> Result<String, OciError> {
        let digest = sha256_digest(&manifest);
        self.client
            .push_manifest_raw(target, manifest, http::HeaderValue::from_static(media_type))
            .await
            .map_err(|e| map_error(e, r, &r.to_string()))?;
        Ok(digest)
    }

    /// The referrers API's list for `digest`, or `None` when the registry
    /// has no referrers API (404 or an answer that is not an image index).
    async fn native_referrers(
        &self,
        subject: &OciReference,
        digest: &str,
    ) -> Result<Option<Vec<Descriptor>>, OciError> {
        // `pull_referrers` itself falls back to the tag schema on a 404 and
        // cannot say which it used; the fallback is read here instead, so a
        // plain GET of the endpoint decides.
        let reference = Reference::with_digest(
            subject.registry().to_owned(),
            subject.repository().to_owned(),
            digest.to_owned(),
        );
        match self.client.pull_referrers(&reference, None).await {
            Ok(index) => {
                // The fallback index (read by `pull_referrers` on a 404) has
                // the same shape; whichever answered, its entries are
                // checked one by one.
                Ok(Some(
                    index
                        .manifests
                        .into_iter()
                        .map(|m| Descriptor {
                            media_type: m.media_type,
                            digest: m.digest,
                            size: m.size,
                            artifact_type: m.artifact_type,
                            annotations: m.annotations,
                        })
                        .collect(),
                ))
            }
            Err(e) => match map_error(e, subject, &subject.to_string()) {
                // Unsupported: the registry answered, but not an index.
                OciError::Registry { .. } | OciError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The entries of the tag-schema fallback index (none when the tag does
    /// not exist).
    async fn fallback_entries(
        &self,
        subject: &OciReference,
        digest: &str,
    ) -> Result<Vec<Descriptor>, OciError> {
        Ok(match self.fallback_index(subject, digest).await? {
            Some(bytes) => serde_json::from_slice::<format::Index>(&bytes)
                .map(|i| i.manifests)
                .unwrap_or_default(),
            None => Vec::new(),
        })
    }

    /// The current fallback index of `digest`, `None` when the tag does not
    /// exist.
    async fn fallback_index(
        &self,
        subject: &OciReference,
        digest: &str,
    ) -> Result<Option<Vec<u8>>, OciError> {
        let tag = format::fallback_tag(digest);
        let reference = Reference::with_tag(
            subject.registry().to_owned(),
            subject.repository().to_owned(),
            tag.clone(),
        );
        let auth = self.login(subject, RegistryOperation::Pull).await?;
        match self
            .client
            .pull_manifest_raw(&reference, &auth, &[format::IMAGE_INDEX_MEDIA_TYPE])
            .await
        {
            Ok((body, _)) => {
                if body.len() as u64 > MAX_MANIFEST_BYTES {
                    return Err(OciError::TooLarge {
                        what: format!("the referrers index `{tag}` of {subject}"),
                        size: body.len() as u64,
                        limit: MAX_MANIFEST_BYTES,
                    });
                }
                Ok(Some(body.to_vec()))
            }
            Err(e) => match map_error(e, subject, &tag) {
                OciError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Adds `entry` to the fallback index of `digest` (read-modify-write;
    /// two concurrent writers can lose an entry, as with every registry
    /// without the referrers API).
    async fn update_fallback_index(
        &self,
        subject: &OciReference,
        digest: &str,
        entry: Descriptor,
    ) -> Result<(), OciError> {
        let tag = format::fallback_tag(digest);
        let existing = self.fallback_index(subject, digest).await?;
        let index =
            format::add_to_fallback_index(existing.as_deref(), entry, &tag).map_err(|message| {
                OciError::Registry {
                    registry: subject.registry().to_owned(),
                    status: None,
                    message,
                }
            })?;
        let target = Reference::with_tag(
            subject.registry().to_owned(),
            subject.repository().to_owned(),
            tag,
        );
        self.push_manifest(subject, &target, index, format::IMAGE_INDEX_MEDIA_TYPE)
            .await?;
        Ok(())
    }
}

/// `r` as an `oci-client` reference: the digest decides when there is one.
pub(crate) fn to_client_reference(r: &OciReference) -> Reference {
    match (r.digest(), r.tag()) {
        (Some(digest), _) => Reference::with_digest(
            r.registry().to_owned(),
            r.repository().to_owned(),
            digest.to_owned(),
        ),
        (None, Some(tag)) => Reference::with_tag(
            r.registry().to_owned(),
            r.repository().to_owned(),
            tag.to_owned(),
        ),
        // `OciReference` always has a tag or a digest; `latest` is never
        // assumed, so an empty tag would fail loudly at the registry.
        (None, None) => Reference::with_tag(
            r.registry().to_owned(),
            r.repository().to_owned(),
            String::new(),
        ),
    }
}

fn pinned<'a>(r: &'a OciReference, doing: &str) -> Result<&'a str, OciError> {
    r.digest().ok_or_else(|| OciError::Reference {
        reference: r.to_string(),
        reason: format!("{doing} needs a pinned reference (`@sha256:…`)"),
    })
}

/// The size cap and the digest of a pulled manifest.
pub(crate) fn check_manifest(body: &[u8], digest: &str, reference: &str) -> Result<(), OciError> {
    if body.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(OciError::TooLarge {
            what: format!("the manifest of {reference}"),
            size: body.len() as u64,
            limit: MAX_MANIFEST_BYTES,
        });
    }
    let actual = sha256_digest(body);
    if actual != digest {
        return Err(OciError::DigestMismatch {
            what: format!("the manifest of {reference}"),
            expected: digest.to_owned(),
            actual,
        });
    }
    Ok(())
}

fn manifest_media_type(manifest: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(manifest)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format::IMAGE_MANIFEST_MEDIA_TYPE.to_owned())
}

/// Reads PEM certificates for the TLS roots.
fn read_ca_file(file: &std::path::Path) -> Result<Vec<Certificate>, OciError> {
    let bytes = sluice_files::fsutil::read_input_file(file, 1 << 20, "CA certificate file")
        .map_err(|e| OciError::Tls {
            file: file.to_owned(),
            reason: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&bytes);
    // One `Certificate` per PEM block: reqwest reads the first block only.
    let blocks: Vec<Certificate> = text
        .split_inclusive("-----END CERTIFICATE-----")
        .filter_map(|chunk| {
            chunk
                .find("-----BEGIN CERTIFICATE-----")
                .map(|start| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: chunk.as_bytes()[start..].to_vec(),
                })
        })
        .collect();
    if blocks.is_empty() {
        return Err(OciError::Tls {
            file: file.to_owned(),
            reason: "it holds no PEM certificate (`-----BEGIN CERTIFICATE-----`); give the CA's certificate, not its key".to_owned(),
        });
    }
    for block in &blocks {
        reqwest_certificate(block).map_err(|reason| OciError::Tls {
            file: file.to_owned(),
            reason,
        })?;
    }
    Ok(blocks)
}

fn reqwest_certificate(cert: &Certificate) -> Result<(), String> {
    // The conversion oci-client does when it builds the client.
    let client = Client::try_from(ClientConfig {
        extra_root_certificates: vec![cert.clone()],
        ..ClientConfig::default()
    });
    client
        .map(|_| ())
        .map_err(|e| format!("a certificate in it cannot be read: {e}"))
}

/// A blob stream's error: a digest mismatch found by `oci-client`'s
/// verifying stream, or the connection.
fn stream_error(error: std::io::Error, r: &OciReference, what: &str) -> OciError {
    if let Some(oci_client::errors::DigestError::VerificationError { expected, actual }) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<oci_client::errors::DigestError>())
    {
        return OciError::DigestMismatch {
            what: what.to_owned(),
            expected: expected.clone(),
            actual: actual.clone(),
        };
    }
    OciError::Unreachable {
        registry: r.registry().to_owned(),
        reason: format!("the download of {what} broke off: {error}"),
    }
}

/// An `oci-client` error in sluice's terms; `what` names the thing asked for.
pub(crate) fn map_error(error: OciDistributionError, r: &OciReference, what: &str) -> OciError {
    let registry = r.registry().to_owned();
    let unauthorized = || OciError::Unauthorized {
        registry: registry.clone(),
        detail: format!(" to {}", r.repository()),
    };
    let not_found = || OciError::NotFound {
        reference: what.to_owned(),
    };
    match error {
        OciDistributionError::RequestError(e) => match e.status().map(|s| s.as_u16()) {
            // An HTTP answer reqwest turned into an error (`blob_exists`).
            Some(401 | 403) => unauthorized(),
            Some(404) => not_found(),
            Some(code) => OciError::Registry {
                registry,
                status: Some(code),
                message: e.to_string(),
            },
            None if e.is_decode() => OciError::Registry {
                registry,
                status: None,
                message: e.to_string(),
            },
            None => request_error(&e, &registry),
        },
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => unauthorized(),
        OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                unauthorized()
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) {
                not_found()
            } else {
                OciError::Registry {
                    registry,
                    status: None,
                    message: envelope
                        .errors
                        .iter()
                        .map(|e| format!("{:?}: {}", e.code, e.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                }
            }
        }
        OciDistributionError::ServerError { code, message, .. } => match code {
            401 | 403 => unauthorized(),
            404 => not_found(),
            _ => OciError::Registry {
                registry,
                status: Some(code),
                message,
            },
        },
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            actual,
        }) => OciError::DigestMismatch {
            what: what.to_owned(),
            expected,
            actual,
        },
        other => OciError::Registry {
            registry,
            status: None,
            message: other.to_string(),
        },
    }
}

/// A transport error: TLS trust problems (typed, from the error chain) are
/// not "unreachable", the rest of connect/timeout failures are.
fn request_error(error: &(dyn std::error::Error + 'static), registry: &str) -> OciError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return OciError::TlsHandshake {
                registry: registry.to_owned(),
                reason: tls.to_string(),
            };
        }
        // rustls reports through `io::Error`s wrapping each other and then
        // the `rustls::Error`; an `io::Error`'s `source()` skips the error
        // it wraps, so step into it instead.
        source = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    let mut reason = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        reason.push_str(": ");
        reason.push_str(&e.to_string());
        source = e.source();
    }
    OciError::Unreachable {
        registry: registry.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(insecure: &[&str]) -> RegistryOptions {
        RegistryOptions {
            insecure: insecure.iter().map(|s| s.to_string()).collect(),
            ..RegistryOptions::default()
        }
    }

    #[test]
    fn references_map_to_the_client_digest_first() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let tagged: OciReference = "oci://127.0.0.1:5000/team/lint:1.0"
            .parse()
            .expect("it must succeed");
        let c = to_client_reference(&tagged);
        assert_eq!(c.resolve_registry(), "127.0.0.1:5000");
        assert_eq!(c.repository(), "team/lint");
        assert_eq!(c.tag(), Some("1.0"));
        assert_eq!(c.digest(), None);
        let both = tagged.with_digest(&digest).expect("it must succeed");
        let c = to_client_reference(&both);
        assert_eq!(c.digest(), Some(digest.as_str()));
        assert_eq!(c.tag(), None, "the digest decides, the tag is not sent");
        let only: OciReference = format!("oci://reg.example/x@{digest}")
            .parse()
            .expect("it must succeed");
        assert_eq!(to_client_reference(&only).digest(), Some(digest.as_str()));
    }

    #[test]
    fn insecure_registries_must_be_loopback() {
        for ok in [
            "127.0.0.1:5000",
            "localhost:5000",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(Registry::new(opts(&[ok])).is_ok(), "{ok}");
        }
        for bad in [
            "registry.example:5000",
            "10.0.0.1:5000",
            "localhost.evil.example",
        ] {
            match Registry::new(opts(&["127.0.0.1", bad])) {
                Err(OciError::InsecureNotLoopback { registry }) => assert_eq!(registry, bad),
                other => panic!("{bad}: expected InsecureNotLoopback, got {other:?}"),
            }
        }
    }

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = tempfile::tempdir().expect("it must succeed");
        let key = dir.path().join("ca.key");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n",
        )
        .expect("it must succeed");
        let err = Registry::new(RegistryOptions {
            ca_files: vec![key.clone()],
            ..RegistryOptions::default()
        })
        .expect_err("it must fail");
        assert!(
            matches!(&err, OciError::Tls { file, .. } if *file == key),
            "{err}"
        );
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let missing = dir.path().join("absent.pem");
        let err = Registry::new(RegistryOptions {
            ca_files: vec![missing.clone()],
            ..RegistryOptions::default()
        })
        .expect_err("it must fail");
        assert!(err.to_string().contains("absent.pem"), "{err}");
    }

    #[test]
    fn manifests_are_capped_and_digest_checked() {
        let body = br#"{"schemaVersion":2}"#;
        assert!(check_manifest(body, &sha256_digest(body), "oci://r/x:1").is_ok());
        let err = check_manifest(body, &sha256_digest(b"other"), "oci://r/x:1")
            .expect_err("it must fail");
        assert!(err.is_integrity(), "{err}");
        let big = vec![b' '; MAX_MANIFEST_BYTES as usize + 1];
        let err =
            check_manifest(&big, &sha256_digest(&big), "oci://r/x:1").expect_err("it must fail");
        assert!(matches!(err, OciError::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_registry_that_is_down_is_unreachable() {
        // A port nobody listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("it must succeed")
            .local_addr()
            .expect("it must succeed")
            .port();
        let registry = format!("127.0.0.1:{port}");
        let client = Registry::new(opts(&[&registry])).expect("it must succeed");
        let r: OciReference = format!("oci://{registry}/x:1")
            .parse()
            .expect("it must succeed");
        let err = client.resolve(&r).await.expect_err("it must fail");
        assert!(err.is_unreachable(), "{err:?}");
        assert!(err.to_string().contains(&registry), "{err}");
    }
}
