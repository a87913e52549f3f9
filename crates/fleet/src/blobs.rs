//! Content-addressed blob transfer: blobs are named `sha256:<hex>` and
//! every store re-hashes what it receives and what it hands out.
//!
//! - [`ObjectStoreBlobs`]: the NATS object store `<namespace>-cas`, objects
//!   named `sha256:<hex>`. On the way in the bytes are hashed while they
//!   are uploaded and the store's own digest (`SHA-256=<base64url>`) is
//!   compared with the name; on the way out the client re-checks the
//!   store's digest and the local CAS re-hashes against the name.
//! - [`SharedCas`]: the coordinator's own CAS, opened by a local agent on
//!   the same machine (the unix-socket transport): nothing is copied when
//!   both sides use the same directory.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_nats::jetstream::object_store::{GetErrorKind, InfoErrorKind, ObjectStore};
use base64::Engine as _;
use sha2::Digest as _;
use tokio::io::ReadBuf;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncSeekExt};
use tokio_util::io::SyncIoBridge;

use sluice_record::artifacts::Cas;

use crate::error::FleetError;
use crate::transport::BlobStore;

/// The 64 hex digits of a `sha256:<64 lowercase hex>` digest.
pub fn digest_hex(digest: &str) -> Result<&str, FleetError> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or_else(|| FleetError::BadDigest {
            digest: digest.to_owned(),
        })
}

/// Copy `reader` into `cas` as `digest`, re-hashing on a blocking thread
/// (the CAS is synchronous); `from` names the source in errors.
pub(crate) async fn ingest(
    cas: &Cas,
    digest: &str,
    reader: impl AsyncRead + Send + Unpin + 'static,
    from: PathBuf,
) -> Result<u64, FleetError> {
    digest_hex(digest)?;
    let (cas, digest) = (cas.clone(), digest.to_owned());
    // `SyncIoBridge` turns the async reader into a `Read` for the CAS; it
    // blocks, so it runs on the blocking pool.
    tokio::task::spawn_blocking(move || {
        let mut bridge = SyncIoBridge::new(reader);
        cas.ingest_verified(&mut bridge, &digest, &from)
    })
    .await
    .map_err(|e| FleetError::Closed {
        what: format!("the blob copy task ({e})"),
    })?
    .map_err(FleetError::from)
}

/// Copy a borrowed reader into a temporary file (so it can be handed to a
/// blocking thread), rewound.
pub(crate) async fn spool(
    mut reader: impl AsyncRead + Send + Unpin,
) -> Result<tokio::fs::File, FleetError> {
    let tmp = tempfile::tempfile().map_err(|source| FleetError::Io {
        action: "create a temporary file in",
        path: std::env::temp_dir(),
        source,
    })?;
    let mut file = tokio::fs::File::from_std(tmp);
    let io = |source| FleetError::Io {
        action: "write a temporary file in",
        path: std::env::temp_dir(),
        source,
    };
    tokio::io::copy(&mut reader, &mut file).await.map_err(io)?;
    file.seek(std::io::SeekFrom::Start(0)).await.map_err(io)?;
    Ok(file)
}

/// The coordinator's CAS, used by a local agent directly.
#[derive(Debug, Clone)]
pub struct SharedCas {
    cas: Cas,
}

impl SharedCas {
    /// The store at `cas`.
    pub fn new(cas: Cas) -> SharedCas {
        SharedCas { cas }
    }

    /// The CAS.
    pub fn cas(&self) -> &Cas {
        &self.cas
    }
}

impl BlobStore for SharedCas {
    fn put<'a>(
        &'a self,
        digest: &'a str,
        reader: Box<dyn AsyncRead + Send + Unpin + 'a>,
    ) -> BoxFuture<'a, Result<(), FleetError>> {
        Box::pin(async move {
            let file = spool(reader).await?;
            ingest(&self.cas, digest, file, PathBuf::from("a local agent")).await?;
            Ok(())
        })
    }

    fn put_file<'a>(
        &'a self,
        digest: &'a str,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<(), FleetError>> {
        Box::pin(async move {
            let file = open(path).await?;
            ingest(&self.cas, digest, file, path.to_owned()).await?;
            Ok(())
        })
    }

    fn get_into<'a>(
        &'a self,
        cas: &'a Cas,
        digest: &'a str,
    ) -> BoxFuture<'a, Result<u64, FleetError>> {
        Box::pin(async move {
            let src = self.cas.blob_path(digest)?;
            let file = match tokio::fs::File::open(&src).await {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(FleetError::BlobNotFound {
                        digest: digest.to_owned(),
                        store: format!("shared CAS {}", self.cas.root().display()),
                    })
                }
                Err(source) => {
                    return Err(FleetError::Io {
                        action: "open",
                        path: src,
                        source,
                    })
                }
            };
            // The same directory: the CAS re-hashes an existing blob when
            // ingesting it again, so this still checks the content.
            ingest(cas, digest, file, src).await
        })
    }

    fn exists<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<bool, FleetError>> {
        Box::pin(async move {
            let path = self.cas.blob_path(digest)?;
            Ok(tokio::fs::try_exists(&path).await.unwrap_or(false))
        })
    }
}

/// An `AsyncRead` that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: AsyncRead + Unpin> AsyncRead for Hashing<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let fresh = &buf.filled()[before..];
            self.hasher.update(fresh);
        }
        polled
    }
}

/// `SHA-256=<base64url>` (the object store's digest) as `sha256:<hex>`.
fn object_digest(nats_digest: &str) -> Option<String> {
    let b64 = nats_digest.strip_prefix("SHA-256=")?;
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(b64)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64))
        .ok()?;
    Some(format!("sha256:{}", hex::encode(bytes)))
}

/// Blobs in a NATS object store, named by digest.
#[derive(Clone)]
pub struct ObjectStoreBlobs {
    store: ObjectStore,
    bucket: String,
}

impl ObjectStoreBlobs {
    /// The store `store` (bucket `bucket`, for messages).
    pub fn new(store: ObjectStore, bucket: impl Into<String>) -> ObjectStoreBlobs {
        ObjectStoreBlobs {
            store,
            bucket: bucket.into(),
        }
    }

    fn where_(&self) -> String {
        format!("NATS object store {}", self.bucket)
    }

    async fn upload(
        &self,
        digest: &str,
        reader: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(), FleetError> {
        digest_hex(digest)?;
        if self.exists(digest).await? {
            return Ok(());
        }
        let mut hashing = Hashing {
            inner: reader,
            hasher: sha2::Sha256::new(),
        };
        let info = self
            .store
            .put(digest, &mut hashing)
            .await
            .map_err(crate::error::nats("upload blob", digest))?;
        let actual = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
        let stored = info.digest.as_deref().and_then(object_digest);
        let wrong = if actual != digest {
            Some(actual)
        } else if stored.as_deref() != Some(digest) {
            Some(stored.unwrap_or_else(|| "no digest".to_owned()))
        } else {
            None
        };
        if let Some(actual) = wrong {
            // Never leave bytes under a name they do not hash to.
            if let Err(e) = self.store.delete(digest).await {
                tracing::warn!(digest, error = %e, "could not delete a mismatched blob");
            }
            return Err(FleetError::BlobDigestMismatch {
                digest: digest.to_owned(),
                actual,
                store: self.where_(),
            });
        }
        Ok(())
    }
}

impl BlobStore for ObjectStoreBlobs {
    fn put<'a>(
        &'a self,
        digest: &'a str,
        mut reader: Box<dyn AsyncRead + Send + Unpin + 'a>,
    ) -> BoxFuture<'a, Result<(), FleetError>> {
        Box::pin(async move { self.upload(digest, &mut reader).await })
    }

    fn put_file<'a>(
        &'a self,
        digest: &'a str,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<(), FleetError>> {
        Box::pin(async move {
            let mut file = open(path).await?;
            self.upload(digest, &mut file).await
        })
    }

    fn get_into<'a>(
        &'a self,
        cas: &'a Cas,
        digest: &'a str,
    ) -> BoxFuture<'a, Result<u64, FleetError>> {
        Box::pin(async move {
            let local = cas.blob_path(digest)?;
            if let Ok(meta) = tokio::fs::metadata(&local).await {
                return Ok(meta.len());
            }
            let object = match self.store.get(digest).await {
                Ok(object) => object,
                Err(e) if e.kind() == GetErrorKind::NotFound => {
                    return Err(FleetError::BlobNotFound {
                        digest: digest.to_owned(),
                        store: self.where_(),
                    })
                }
                Err(e) => return Err(crate::error::nats("download blob", digest)(e)),
            };
            let from = PathBuf::from(format!("{}/{digest}", self.where_()));
            match ingest(cas, digest, object, from).await {
                Err(FleetError::Cas(
                    sluice_record::artifacts::ArtifactError::ReceivedMismatch { actual, .. },
                )) => Err(FleetError::BlobDigestMismatch {
                    digest: digest.to_owned(),
                    actual,
                    store: self.where_(),
                }),
                other => other,
            }
        })
    }

    fn exists<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<bool, FleetError>> {
        Box::pin(async move {
            match self.store.info(digest).await {
                Ok(info) => Ok(!info.deleted),
                Err(e) if e.kind() == InfoErrorKind::NotFound => Ok(false),
                Err(e) => Err(crate::error::nats("look up blob", digest)(e)),
            }
        })
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Opens a file to send it as a blob.
async fn open(path: &Path) -> Result<tokio::fs::File, FleetError> {
    tokio::fs::File::open(path)
        .await
        .map_err(|source| FleetError::Io {
            action: "open",
            path: path.to_owned(),
            source,
        })
}
