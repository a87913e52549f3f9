//! Content-addressed artifact store (the CAS, `cas/` in the state
//! directory).
//!
//! Stages exchange files: a stage writes into `/artifacts/out`, and after it
//! ends the runner [ingests](Cas::ingest_dir) every regular file there into
//! the store, addressed by its SHA-256 digest. A later stage that needs those
//! artifacts gets them [materialized](Cas::materialize) under
//! `/artifacts/in/<stage>/`, and every byte is re-hashed on the way out, so a
//! blob that was altered on disk is detected instead of being handed on.
//!
//! Layout: `<root>/sha256/<first 2 hex digits>/<remaining 62 hex digits>`,
//! plus `<root>/tmp/` for blobs being written. Blobs are immutable (mode
//! `0444`) and are written crash-safely: copy into a temporary file under
//! `<root>/tmp/`, `fsync`, rename into place, `fsync` the directory. A runner
//! killed mid-ingest leaves at worst a stray temporary file, never a torn
//! blob under its final name; [`Cas::sweep_temp`] removes old ones.
//!
//! The store heals instead of trusting what is on disk: storing a file whose
//! blob already exists re-hashes that blob and replaces it (atomically, with
//! a warning) when it no longer matches its name, and [`Cas::verify`] lets a
//! resumed run find producers whose blobs are gone or damaged and run them
//! again.
//!
//! The stage's output directory is untrusted: it is walked with `cap-std`
//! (only relative opens beneath the directory), symbolic links and special
//! files are refused, and the number of files and total size are bounded by
//! [`IngestLimits`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Media type given to files the stage did not declare in its report.
pub const DEFAULT_MEDIA_TYPE: &str = "application/octet-stream";

/// Where the stage sees its output directory; declared names may carry it.
const GUEST_OUT_DIR: &str = "/artifacts/out/";

/// Copy buffer size: big enough for few syscalls, small enough that memory
/// use does not depend on artifact size.
const BUF_SIZE: usize = 64 * 1024;

/// Prefix of every digest this store produces and accepts.
const SHA256_PREFIX: &str = "sha256:";

/// One immutable file a stage produced, as recorded in `run.json` and passed
/// to later stages (the WIT `artifact` record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// Path relative to the stage's output directory, `/`-separated
    /// (e.g. `dist/app.tar.gz`). Never absolute, never contains `..`.
    pub name: String,
    /// `sha256:` followed by 64 lowercase hex digits.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type declared by the stage, or [`DEFAULT_MEDIA_TYPE`].
    pub media_type: String,
    /// What it is for, when the producer said (WIT 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<sluice_types::ArtifactRole>,
    /// The producer's annotations (WIT 0.2), by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Bounds on what one stage may leave in its output directory.
///
/// They exist because the output directory is written by an untrusted
/// plugin: without them a stage could fill the runner's disk or make the
/// walk take forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestLimits {
    /// Maximum number of directory entries walked (regular files *and*
    /// directories count, so empty directories cannot make the walk
    /// unbounded). Default 10 000.
    pub max_files: usize,
    /// Maximum total size of all files, in bytes. Default 10 GiB.
    pub max_total_bytes: u64,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_files: 10_000,
            max_total_bytes: 10 * 1024 * 1024 * 1024,
        }
    }
}

/// Why ingesting or materializing artifacts failed. Every message names the
/// file or artifact concerned and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A file system operation failed. The reason is part of the message
    /// (a stage's failure reason shows only the message), in plain words
    /// for a full disk and the like.
    #[error("could not {action} {}: {}", path.display(), sluice_files::fsutil::io_reason(source))]
    Io {
        /// What was being done, e.g. "read".
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The stage left a symbolic link in its output directory.
    #[error(
        "`{name}` in the stage's output directory is a symbolic link ({}); artifacts must be \
         regular files, because a link could point at files on the host. Write a copy of the \
         file instead of a link",
        path.display()
    )]
    Symlink {
        /// Name relative to the output directory.
        name: String,
        /// Host path of the link.
        path: PathBuf,
    },
    /// The stage left a FIFO, socket or device in its output directory.
    #[error(
        "`{name}` in the stage's output directory is not a regular file or directory ({}); \
         only regular files can be artifacts",
        path.display()
    )]
    SpecialFile {
        /// Name relative to the output directory.
        name: String,
        /// Host path of the entry.
        path: PathBuf,
    },
    /// A file name in the output directory is not valid UTF-8.
    #[error(
        "the stage's output {} has a name that is not valid UTF-8; artifact names must be UTF-8",
        path.display()
    )]
    NonUtf8Name {
        /// Host path of the entry (non-UTF-8 bytes shown lossily).
        path: PathBuf,
    },
    /// An artifact name is unusable as a relative path.
    #[error("invalid artifact name `{name}`: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The stage's report declares an artifact that it did not write.
    #[error(
        "the stage declared artifact `{name}` in its report but did not write it: there is no \
         regular file `{name}` under /artifacts/out"
    )]
    DeclaredMissing {
        /// The declared name.
        name: String,
    },
    /// The output directory holds more entries than [`IngestLimits::max_files`].
    #[error(
        "the stage left more than {limit} files and directories in its output directory ({}); \
         pack them into an archive or raise the limit",
        out_dir.display()
    )]
    TooManyFiles {
        /// The limit that was exceeded.
        limit: usize,
        /// Host path of the output directory.
        out_dir: PathBuf,
    },
    /// The files in the output directory are larger than [`IngestLimits::max_total_bytes`].
    #[error(
        "the stage's outputs in {} are larger than the limit of {} in total; write less or \
         raise the stage's `grants.artifacts`",
        out_dir.display(),
        bytesize::ByteSize(*limit)
    )]
    TooLarge {
        /// The limit that was exceeded, in bytes.
        limit: u64,
        /// Host path of the output directory.
        out_dir: PathBuf,
    },
    /// A digest is not of the form `sha256:<64 lowercase hex digits>`.
    #[error(
        "invalid artifact digest `{digest}`: expected `sha256:` followed by 64 lowercase hex digits"
    )]
    InvalidDigest {
        /// The digest as given.
        digest: String,
    },
    /// The blob for an artifact is not in the store.
    #[error(
        "artifact `{name}` ({digest}) is missing from the artifact store ({}); re-run the \
         stage that produced it (`sluice run --resume` does so)",
        path.display()
    )]
    Missing {
        /// Artifact name.
        name: String,
        /// Its digest.
        digest: String,
        /// Where its blob should be.
        path: PathBuf,
    },
    /// A blob's content no longer matches its digest: the store was altered.
    #[error(
        "artifact `{name}` is corrupt or was tampered with in the artifact store ({}): \
         expected {expected}, found {actual}; re-run the stage that produced it \
         (`sluice run --resume` does so, and storing it again replaces the blob)",
        path.display()
    )]
    DigestMismatch {
        /// Artifact name.
        name: String,
        /// Digest recorded for it.
        expected: String,
        /// Digest of what the store actually holds.
        actual: String,
        /// The blob.
        path: PathBuf,
    },
    /// A blob received from elsewhere does not hash to the digest it was
    /// sent as: the sender's copy is damaged, or forged.
    #[error(
        "the blob received from {} as {expected} hashes to {actual}; it was refused (the \
         sender's copy is damaged or was tampered with: re-run the stage that produced it)",
        from.display()
    )]
    ReceivedMismatch {
        /// Where it came from.
        from: PathBuf,
        /// The digest it was sent as.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// A blob has the right digest but the record states another size.
    #[error(
        "artifact `{name}` is recorded as {expected} bytes but its blob has {actual} bytes; the \
         run record is inconsistent"
    )]
    SizeMismatch {
        /// Artifact name.
        name: String,
        /// Size in the record.
        expected: u64,
        /// Size of the blob.
        actual: u64,
    },
}

/// Shorthand for building [`ArtifactError::Io`] in `map_err`.
fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> ArtifactError {
    let path = path.into();
    move |source| ArtifactError::Io {
        action,
        path,
        source,
    }
}

/// The 64 hex digits of a well-formed `sha256:` digest.
fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix(SHA256_PREFIX)?;
    let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some(hex)
}

/// Checks that `name` is a safe relative, `/`-separated path: not empty,
/// not absolute, no empty, `.` or `..` components, no backslash or NUL.
fn validate_name(name: &str) -> Result<(), ArtifactError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.starts_with('/') {
        Some("it is absolute; names are relative to the output directory")
    } else if name.contains('\\') {
        Some("it contains a backslash; use `/` to separate directories")
    } else if name.contains('\0') {
        Some("it contains a NUL byte")
    } else if name.split('/').any(|c| c == "..") {
        Some("it contains `..`")
    } else if name.split('/').any(|c| c.is_empty() || c == ".") {
        Some("it contains an empty or `.` component")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ArtifactError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Normalizes a name from a stage's report: the stage may write
/// `/artifacts/out/x`, `./x` or `x`; all mean `x`.
/// A declared artifact name as the walk finds it: without `./` or
/// `/artifacts/out/` in front.
pub fn normalize_declared(name: &str) -> &str {
    let name = name.strip_prefix(GUEST_OUT_DIR).unwrap_or(name);
    let mut name = name;
    while let Some(rest) = name.strip_prefix("./") {
        name = rest;
    }
    name
}

/// Why [`copy_hashing`] stopped.
enum CopyError {
    Read(io::Error),
    Write(io::Error),
    OverBudget,
}

/// Streams `src` into `dst` (64 KiB at a time), hashing what passes.
/// Returns the hex SHA-256 and the byte count. Fails with
/// [`CopyError::OverBudget`] as soon as more than `budget` bytes are read.
fn copy_hashing(
    src: &mut impl Read,
    dst: &mut impl Write,
    budget: u64,
) -> Result<(String, u64), CopyError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut total: u64 = 0;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        total = total.saturating_add(n as u64);
        if total > budget {
            return Err(CopyError::OverBudget);
        }
        let chunk = &buf[..n];
        hasher.update(chunk);
        dst.write_all(chunk).map_err(CopyError::Write)?;
    }
    dst.flush().map_err(CopyError::Write)?;
    Ok((hex::encode(hasher.finalize()), total))
}

/// Hashes a file by streaming it (64 KiB at a time; any size).
///
/// Returns the digest in the same form as [`ArtifactRecord::digest`]
/// (`sha256:<64 lowercase hex>`) and the size in bytes. Errors name the path.
pub fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let named = |e: io::Error, what: &str| {
        io::Error::new(
            e.kind(),
            format!("could not {what} {}: {e}", path.display()),
        )
    };
    let mut file = File::open(path).map_err(|e| named(e, "open"))?;
    hash_open(&mut file).map_err(|e| named(e, "read"))
}

/// Handle on the content-addressed store rooted at `<state dir>/cas`.
#[derive(Debug, Clone)]
pub struct Cas {
    root: PathBuf,
    tmp: PathBuf,
}

impl Cas {
    /// Opens the store at `root`; its `sha256/` and `tmp/` subdirectories
    /// are created when the first blob is stored.
    pub fn open(root: &Path) -> Result<Cas, ArtifactError> {
        // The directories are made by the first store: most runs of no-op
        // or gate-only stages never write a blob.
        let tmp = root.join("tmp");
        Ok(Cas {
            root: root.to_path_buf(),
            tmp,
        })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob for `digest` lives (it may not exist).
    ///
    /// Fails with [`ArtifactError::InvalidDigest`] unless `digest` is
    /// `sha256:` followed by exactly 64 lowercase hex digits, so a digest
    /// read from a tampered record can never name a path outside the store.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, ArtifactError> {
        let hex = digest_hex(digest).ok_or_else(|| ArtifactError::InvalidDigest {
            digest: digest.to_owned(),
        })?;
        Ok(self.root.join("sha256").join(&hex[..2]).join(&hex[2..]))
    }

    /// Ingests every regular file under `out_dir` (recursively) into the
    /// store and returns one record per file, sorted by name.
    ///
    /// - `out_dir` is opened once with `cap-std` and walked with relative
    ///   opens only, so no name in it can reach outside it.
    /// - Symbolic links are refused ([`ArtifactError::Symlink`]): a stage
    ///   could otherwise point one at a host file and have the runner copy
    ///   it. FIFOs, sockets and devices are refused too
    ///   ([`ArtifactError::SpecialFile`]). Names must be UTF-8 and usable as
    ///   relative paths on every platform (no backslash).
    /// - `declared` maps names from the stage's report to media types.
    ///   Names may be given as `x`, `./x` or `/artifacts/out/x`. A declared
    ///   name with no regular file behind it fails with
    ///   [`ArtifactError::DeclaredMissing`]; files not declared get
    ///   [`DEFAULT_MEDIA_TYPE`]. If a name is declared twice, the last
    ///   media type wins.
    /// - `limits` bound the number of entries and the total size; both are
    ///   checked before copying (from metadata) and the size again while
    ///   copying.
    ///
    /// Each file is hashed while it is copied (streaming, 64 KiB buffer)
    /// into `<root>/tmp/`, synced, and renamed to its digest path; if a blob
    /// with that digest is already there and still hashes to it, it is kept
    /// and the copy dropped (a damaged one is replaced).
    /// The walk assumes the stage has finished (nothing changes the
    /// directory meanwhile); even if something did, `cap-std` keeps every
    /// open inside `out_dir`.
    pub fn ingest_dir(
        &self,
        out_dir: &Path,
        declared: &[(String, String)],
        limits: &IngestLimits,
    ) -> Result<Vec<ArtifactRecord>, ArtifactError> {
        let root = Dir::open_ambient_dir(out_dir, ambient_authority())
            .map_err(io_err("open the stage's output directory", out_dir))?;

        let mut declared_types: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
        for (name, media_type) in declared {
            declared_types.insert(
                normalize_declared(name),
                (name.as_str(), media_type.as_str()),
            );
        }

        let found = walk(&root, out_dir, limits)?;

        let names: BTreeSet<&str> = found.iter().map(String::as_str).collect();
        for (normalized, (original, _)) in &declared_types {
            if !names.contains(normalized) {
                return Err(ArtifactError::DeclaredMissing {
                    name: (*original).to_owned(),
                });
            }
        }

        let mut records = Vec::with_capacity(found.len());
        let mut used: u64 = 0;
        for name in found {
            let host_path = out_dir.join(&name);
            let mut file = root
                .open(&name)
                .map_err(io_err("open the stage's output", &host_path))?;
            let meta = file
                .metadata()
                .map_err(io_err("read metadata of", &host_path))?;
            if !meta.is_file() {
                return Err(ArtifactError::SpecialFile {
                    name,
                    path: host_path,
                });
            }
            let budget = limits.max_total_bytes.saturating_sub(used);
            let (digest, size) = self.store(&mut file, &host_path, None, budget, || {
                ArtifactError::TooLarge {
                    limit: limits.max_total_bytes,
                    out_dir: out_dir.to_path_buf(),
                }
            })?;
            used = used.saturating_add(size);
            let media_type = declared_types
                .get(name.as_str())
                .map_or(DEFAULT_MEDIA_TYPE, |(_, t)| t);
            records.push(ArtifactRecord {
                name,
                digest,
                size,
                media_type: media_type.to_owned(),
                role: None,
                annotations: Default::default(),
            });
        }
        Ok(records)
    }

    /// Copies `src` into the store; returns its digest and size.
    ///
    /// A blob is immutable once written, so an existing blob with the new
    /// copy's digest should be that copy byte for byte; but it may have been
    /// damaged since (a disk error, a stray edit), and keeping it would fail
    /// every later consumer until someone deleted it by hand. So whenever
    /// the blob exists it is re-hashed: if it matches, the new copy is
    /// dropped (without ever being synced); if not (other size, other
    /// content, unreadable), the new copy replaces it atomically, with a
    /// warning naming the blob. Re-hashing costs a read of a file that is
    /// usually still in the page cache, about what the sync it saves costs.
    ///
    /// With `expected`, a copy whose digest differs is refused
    /// ([`ArtifactError::ReceivedMismatch`]) before it can become a blob.
    fn store(
        &self,
        src: &mut impl Read,
        src_path: &Path,
        expected: Option<&str>,
        budget: u64,
        too_large: impl FnOnce() -> ArtifactError,
    ) -> Result<(String, u64), ArtifactError> {
        std::fs::create_dir_all(&self.tmp).map_err(io_err("create directory", &self.tmp))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.tmp)
            .map_err(io_err("create a temporary file in", &self.tmp))?;
        let (hex, size) = match copy_hashing(src, tmp.as_file_mut(), budget) {
            Ok(v) => v,
            Err(CopyError::Read(e)) => return Err(io_err("read", src_path)(e)),
            Err(CopyError::Write(e)) => return Err(io_err("write", tmp.path())(e)),
            Err(CopyError::OverBudget) => return Err(too_large()),
        };
        let digest = format!("{SHA256_PREFIX}{hex}");
        if let Some(expected) = expected {
            if expected != digest {
                return Err(ArtifactError::ReceivedMismatch {
                    from: src_path.to_path_buf(),
                    expected: expected.to_owned(),
                    actual: digest,
                });
            }
        }
        let blob = self.blob_path(&digest)?;
        let shard = blob.parent().unwrap_or(&self.root).to_path_buf();
        if !shard.is_dir() {
            std::fs::create_dir_all(&shard).map_err(io_err("create directory", &shard))?;
            let sha_dir = shard.parent().unwrap_or(&self.root);
            sluice_files::fsutil::fsync_dir(sha_dir).map_err(io_err("sync", sha_dir))?;
        }
        match existing_blob(&blob, &digest, size) {
            Existing::Intact => {
                // Its modification time now says when it was last stored:
                // `sluice gc` spares young blobs, so one that a running stage
                // re-uses is not collected before the record names it. Best
                // effort; the temporary file is removed on drop.
                let _ = File::open(&blob)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                return Ok((digest, size));
            }
            Existing::Absent => {}
            Existing::Damaged(why) => tracing::warn!(
                "artifact blob {} is damaged ({why}); replacing it with the new copy of the same content",
                blob.display()
            ),
        }
        tmp.as_file()
            .sync_all()
            .map_err(io_err("sync", tmp.path()))?;
        make_read_only(tmp.as_file()).map_err(io_err("make read-only", tmp.path()))?;
        tmp.persist(&blob)
            .map_err(|e| io_err("move a new blob to", &blob)(e.error))?;
        sluice_files::fsutil::fsync_dir(&shard).map_err(io_err("sync", &shard))?;
        Ok((digest, size))
    }

    /// Stores a blob received from elsewhere (an agent, a blob store) as
    /// `digest`, checking while it is copied that the bytes hash to it: a
    /// sender's name for a blob is never trusted. Returns the size. A copy
    /// that hashes to anything else is dropped and refused with
    /// [`ArtifactError::ReceivedMismatch`]; an invalid `digest` is refused
    /// before anything is read. `from` names the source in errors (a URL or
    /// a path).
    pub fn ingest_verified(
        &self,
        src: &mut impl Read,
        digest: &str,
        from: &Path,
    ) -> Result<u64, ArtifactError> {
        self.blob_path(digest)?;
        let (_, size) = self.store(src, from, Some(digest), u64::MAX, || {
            // Unreachable with an unlimited budget; a plain I/O error keeps
            // this total without a panic.
            io_err("read", from)(io::Error::other("blob larger than 2^64 bytes"))
        })?;
        Ok(size)
    }

    /// The blob of `artifact` and its path, opened for reading; a blob that
    /// is not there is [`ArtifactError::Missing`], naming the artifact.
    fn open_blob(&self, artifact: &ArtifactRecord) -> Result<(PathBuf, File), ArtifactError> {
        let blob = self.blob_path(&artifact.digest)?;
        match File::open(&blob) {
            Ok(file) => Ok((blob, file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ArtifactError::Missing {
                name: artifact.name.clone(),
                digest: artifact.digest.clone(),
                path: blob,
            }),
            Err(e) => Err(io_err("open blob", &blob)(e)),
        }
    }

    /// Checks that the blob of `artifact` exists and hashes to its digest
    /// and size (reads the whole blob). Errors:
    /// [`ArtifactError::Missing`], [`ArtifactError::DigestMismatch`],
    /// [`ArtifactError::SizeMismatch`], [`ArtifactError::InvalidDigest`],
    /// or [`ArtifactError::Io`] when it cannot be read.
    pub fn verify(&self, artifact: &ArtifactRecord) -> Result<(), ArtifactError> {
        let (blob, mut file) = self.open_blob(artifact)?;
        let (actual, size) = hash_open(&mut file).map_err(io_err("read blob", &blob))?;
        if actual != artifact.digest {
            return Err(ArtifactError::DigestMismatch {
                name: artifact.name.clone(),
                expected: artifact.digest.clone(),
                actual,
                path: blob,
            });
        }
        if size != artifact.size {
            return Err(ArtifactError::SizeMismatch {
                name: artifact.name.clone(),
                expected: artifact.size,
                actual: size,
            });
        }
        Ok(())
    }

    /// Removes temporary files under `<root>/tmp/` last modified at least
    /// `sweep.older_than` ago: leftovers of runners killed mid-ingest.
    /// Younger ones may be written by a runner right now and are left alone.
    pub fn sweep_temp(&self, sweep: &crate::workdir::Sweep) -> crate::workdir::Swept {
        crate::workdir::remove_stale_temp_files(&self.tmp, sweep)
    }

    /// Every blob in the store, as its digest, path and metadata, in no
    /// particular order. Entries whose names are not a digest are skipped.
    pub fn blobs(&self) -> Result<Vec<StoredBlob>, ArtifactError> {
        let sha_dir = self.root.join("sha256");
        let shards = match std::fs::read_dir(&sha_dir) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list directory", &sha_dir)(e)),
        };
        let mut blobs = Vec::new();
        for shard in shards {
            let shard = shard.map_err(io_err("list directory", &sha_dir))?;
            let shard_path = shard.path();
            let Some(prefix) = shard.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !shard.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let entries =
                std::fs::read_dir(&shard_path).map_err(io_err("list directory", &shard_path))?;
            for entry in entries {
                let entry = entry.map_err(io_err("list directory", &shard_path))?;
                let Some(rest) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let digest = format!("{SHA256_PREFIX}{prefix}{rest}");
                if digest_hex(&digest).is_none() {
                    continue;
                }
                let path = entry.path();
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                blobs.push(StoredBlob {
                    digest,
                    path,
                    size: meta.len(),
                    modified: meta.modified().ok(),
                });
            }
        }
        Ok(blobs)
    }

    /// Writes each artifact to `dest/<name>` (creating `dest` and parent
    /// directories), re-hashing every byte copied out of the store.
    ///
    /// - Names must be relative with no `..`, `.` or empty components
    ///   ([`ArtifactError::InvalidName`]); `dest` is opened with `cap-std`,
    ///   so even a name that got past that check cannot leave it.
    /// - A blob whose content does not hash to the recorded digest fails
    ///   with [`ArtifactError::DigestMismatch`] and the partial file is
    ///   removed: this is how tampering with the store is caught.
    /// - A blob that is gone fails with [`ArtifactError::Missing`].
    ///
    /// Existing files at the destination are overwritten. On error, files
    /// already materialized for earlier artifacts are left in place.
    pub fn materialize(
        &self,
        artifacts: &[ArtifactRecord],
        dest: &Path,
    ) -> Result<(), ArtifactError> {
        std::fs::create_dir_all(dest).map_err(io_err("create directory", dest))?;
        let dest_dir = Dir::open_ambient_dir(dest, ambient_authority())
            .map_err(io_err("open directory", dest))?;
        for a in artifacts {
            validate_name(&a.name)?;
            let (blob, mut src) = self.open_blob(a)?;
            let out_path = dest.join(&a.name);
            if let Some(parent) = Path::new(&a.name).parent() {
                if !parent.as_os_str().is_empty() {
                    dest_dir
                        .create_dir_all(parent)
                        .map_err(io_err("create directory", dest.join(parent)))?;
                }
            }
            let mut out = dest_dir
                .create(&a.name)
                .map_err(io_err("create", &out_path))?;
            let copied = copy_hashing(&mut src, &mut out, u64::MAX);
            drop(out);
            let failure = match copied {
                Ok((hex, size)) => {
                    let actual = format!("{SHA256_PREFIX}{hex}");
                    if actual != a.digest {
                        Some(ArtifactError::DigestMismatch {
                            name: a.name.clone(),
                            expected: a.digest.clone(),
                            actual,
                            path: blob.clone(),
                        })
                    } else if size != a.size {
                        Some(ArtifactError::SizeMismatch {
                            name: a.name.clone(),
                            expected: a.size,
                            actual: size,
                        })
                    } else {
                        None
                    }
                }
                Err(CopyError::Read(e)) => Some(io_err("read blob", &blob)(e)),
                Err(CopyError::Write(e)) => Some(io_err("write", &out_path)(e)),
                Err(CopyError::OverBudget) => Some(io_err("copy", &blob)(io::Error::other(
                    "blob larger than the address space",
                ))),
            };
            if let Some(err) = failure {
                // Best effort: the error being reported matters more than a
                // failure to clean up.
                let _ = dest_dir.remove_file(&a.name);
                return Err(err);
            }
        }
        Ok(())
    }
}

/// A blob found in the store by [`Cas::blobs`].
#[derive(Debug, Clone)]
pub struct StoredBlob {
    /// `sha256:<hex>`, from its path.
    pub digest: String,
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its last modification (when it was stored), if known.
    pub modified: Option<std::time::SystemTime>,
}

/// What [`Cas::store`] found at a blob's path.
enum Existing {
    /// No blob yet.
    Absent,
    /// A regular file that hashes to its name.
    Intact,
    /// Something else: why it cannot be kept.
    Damaged(String),
}

fn existing_blob(blob: &Path, digest: &str, size: u64) -> Existing {
    let meta = match std::fs::symlink_metadata(blob) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Existing::Absent,
        Err(e) => return Existing::Damaged(format!("cannot read its metadata: {e}")),
    };
    if !meta.is_file() {
        return Existing::Damaged("it is not a regular file".into());
    }
    if meta.len() != size {
        return Existing::Damaged(format!("it has {} bytes instead of {size}", meta.len()));
    }
    match hash_blob(blob) {
        Ok((actual, _)) if actual == digest => Existing::Intact,
        Ok((actual, _)) => Existing::Damaged(format!("its content hashes to {actual}")),
        Err(e) => Existing::Damaged(format!("it cannot be read: {e}")),
    }
}

/// The digest and size of a blob, with the raw IO error (its kind tells a
/// missing blob from an unreadable one).
fn hash_blob(path: &Path) -> io::Result<(String, u64)> {
    hash_open(&mut File::open(path)?)
}

/// `sha256:<hex>` and size of what is left to read in `file` (raw IO
/// errors; callers name the file).
fn hash_open(file: &mut File) -> io::Result<(String, u64)> {
    match copy_hashing(file, &mut io::sink(), u64::MAX) {
        Ok((hex, size)) => Ok((format!("{SHA256_PREFIX}{hex}"), size)),
        Err(CopyError::Read(e) | CopyError::Write(e)) => Err(e),
        Err(CopyError::OverBudget) => Err(io::Error::other("too large to hash")),
    }
}

/// Makes a finished blob read-only for everyone (`0444` on Unix).
fn make_read_only(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o444))
    }
    #[cfg(not(unix))]
    {
        let mut perms = file.metadata()?.permissions();
        perms.set_readonly(true);
        file.set_permissions(perms)
    }
}

/// Walks `root` with an explicit stack rather than recursion (a deep tree
/// cannot overflow ours, and only one directory is open at a time) and
/// returns the names of its regular files, sorted.
fn walk(root: &Dir, out_dir: &Path, limits: &IngestLimits) -> Result<Vec<String>, ArtifactError> {
    let mut found = Vec::new();
    let mut pending: Vec<String> = vec![String::new()];
    let mut entries: usize = 0;
    let mut total: u64 = 0;
    while let Some(prefix) = pending.pop() {
        let host_dir = out_dir.join(&prefix);
        let read = if prefix.is_empty() {
            root.entries()
        } else {
            root.read_dir(&prefix)
        }
        .map_err(io_err("list directory", &host_dir))?;
        for entry in read {
            let entry = entry.map_err(io_err("list directory", &host_dir))?;
            let os_name = entry.file_name();
            let Ok(component) = os_name.into_string() else {
                return Err(ArtifactError::NonUtf8Name {
                    path: host_dir.join(entry.file_name()),
                });
            };
            let name = if prefix.is_empty() {
                component
            } else {
                format!("{prefix}/{component}")
            };
            let host_path = out_dir.join(&name);
            entries = entries.saturating_add(1);
            if entries > limits.max_files {
                return Err(ArtifactError::TooManyFiles {
                    limit: limits.max_files,
                    out_dir: out_dir.to_path_buf(),
                });
            }
            validate_name(&name)?;
            let file_type = entry
                .file_type()
                .map_err(io_err("read the type of", &host_path))?;
            if file_type.is_symlink() {
                return Err(ArtifactError::Symlink {
                    name,
                    path: host_path,
                });
            } else if file_type.is_dir() {
                pending.push(name);
            } else if file_type.is_file() {
                let meta = entry
                    .metadata()
                    .map_err(io_err("read metadata of", &host_path))?;
                total = total.saturating_add(meta.len());
                if total > limits.max_total_bytes {
                    return Err(ArtifactError::TooLarge {
                        limit: limits.max_total_bytes,
                        out_dir: out_dir.to_path_buf(),
                    });
                }
                found.push(name);
            } else {
                return Err(ArtifactError::SpecialFile {
                    name,
                    path: host_path,
                });
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    type TestResult = Result<(), Box<dyn Error>>;

    const ABC_SHA256: &str =
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    struct Fixture {
        _tmp: tempfile::TempDir,
        cas: Cas,
        out: PathBuf,
        dest: PathBuf,
    }

    fn fixture() -> Result<Fixture, Box<dyn Error>> {
        let tmp = tempfile::tempdir()?;
        let cas = Cas::open(&tmp.path().join("state/cas"))?;
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&out)?;
        let dest = tmp.path().join("in");
        Ok(Fixture {
            _tmp: tmp,
            cas,
            out,
            dest,
        })
    }

    fn decl(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn a_received_blob_is_stored_only_under_its_own_digest() -> TestResult {
        let f = fixture()?;
        let from = Path::new("agent a1");
        let size = f.cas.ingest_verified(&mut &b"abc"[..], ABC_SHA256, from)?;
        assert_eq!(size, 3);
        let blob = f.cas.blob_path(ABC_SHA256)?;
        assert_eq!(std::fs::read(&blob)?, b"abc");

        // Forged: other bytes under the name of "abc".
        let forged = format!("sha256:{}", "ab".repeat(32));
        let err = f
            .cas
            .ingest_verified(&mut &b"evil"[..], &forged, from)
            .err()
            .ok_or("a forged blob must be refused")?;
        assert!(
            matches!(&err, ArtifactError::ReceivedMismatch { expected, .. } if *expected == forged),
            "{err:?}"
        );
        assert!(err.to_string().contains("agent a1"), "{err}");
        assert!(!f.cas.blob_path(&forged)?.exists());
        assert_eq!(
            std::fs::read_dir(f.cas.root().join("tmp"))?.count(),
            0,
            "the refused copy is not left behind"
        );

        // A digest that is not one is refused before reading.
        let err = f
            .cas
            .ingest_verified(&mut &b"abc"[..], "sha256:../../etc", from)
            .err()
            .ok_or("an invalid digest must be refused")?;
        assert!(
            matches!(err, ArtifactError::InvalidDigest { .. }),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn hash_file_known_vector() -> TestResult {
        let f = fixture()?;
        let p = f.out.join("abc");
        std::fs::write(&p, b"abc")?;
        assert_eq!(hash_file(&p)?, (ABC_SHA256.to_owned(), 3));
        let err = hash_file(&f.out.join("nope"))
            .err()
            .ok_or("expected error")?;
        assert!(err.to_string().contains("nope"), "{err}");
        Ok(())
    }

    #[test]
    fn blob_path_layout_and_validation() -> TestResult {
        let f = fixture()?;
        let p = f.cas.blob_path(ABC_SHA256)?;
        assert!(
            p.ends_with("sha256/ba/7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        for bad in [
            "",
            "sha256:",
            "sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
            "sha256:../../../../etc/passwd",
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
        ] {
            assert!(
                matches!(
                    f.cas.blob_path(bad),
                    Err(ArtifactError::InvalidDigest { .. })
                ),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn ingest_and_materialize_round_trip() -> TestResult {
        let f = fixture()?;
        std::fs::create_dir_all(f.out.join("dist/deep"))?;
        std::fs::create_dir_all(f.out.join("empty"))?;
        std::fs::write(f.out.join("abc"), b"abc")?;
        std::fs::write(f.out.join("dist/app.tar.gz"), vec![7u8; 200_000])?;
        std::fs::write(f.out.join("dist/deep/copy"), b"abc")?;
        std::fs::write(f.out.join("zero"), b"")?;
        let records = f.cas.ingest_dir(
            &f.out,
            &decl(&[
                ("/artifacts/out/dist/app.tar.gz", "application/gzip"),
                ("./abc", "text/plain"),
            ]),
            &IngestLimits::default(),
        )?;
        let names: Vec<_> = records.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["abc", "dist/app.tar.gz", "dist/deep/copy", "zero"]);
        assert_eq!(records[0].digest, ABC_SHA256);
        assert_eq!(records[0].media_type, "text/plain");
        assert_eq!(records[1].media_type, "application/gzip");
        assert_eq!(records[1].size, 200_000);
        assert_eq!(records[2].media_type, DEFAULT_MEDIA_TYPE);
        assert_eq!(records[2].digest, records[0].digest);
        assert_eq!(records[3].size, 0);
        for r in &records {
            let blob = f.cas.blob_path(&r.digest)?;
            assert_eq!(hash_file(&blob)?, (r.digest.clone(), r.size));
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(
                    std::fs::metadata(&blob)?.permissions().mode() & 0o777,
                    0o444
                );
            }
        }
        // Nothing left behind in tmp/.
        assert_eq!(std::fs::read_dir(f.cas.root().join("tmp"))?.count(), 0);

        // Ingesting again is idempotent (existing blobs are kept).
        let again = f.cas.ingest_dir(
            &f.out,
            &decl(&[
                ("dist/app.tar.gz", "application/gzip"),
                ("abc", "text/plain"),
            ]),
            &IngestLimits::default(),
        )?;
        assert_eq!(again, records);

        f.cas.materialize(&records, &f.dest)?;
        assert_eq!(std::fs::read(f.dest.join("abc"))?, b"abc");
        assert_eq!(std::fs::read(f.dest.join("dist/deep/copy"))?, b"abc");
        assert_eq!(
            std::fs::read(f.dest.join("dist/app.tar.gz"))?.len(),
            200_000
        );
        assert_eq!(std::fs::read(f.dest.join("zero"))?.len(), 0);
        Ok(())
    }

    #[test]
    fn record_serde_shape() -> TestResult {
        let r = ArtifactRecord {
            name: "a/b".into(),
            digest: ABC_SHA256.into(),
            size: 3,
            media_type: "text/plain".into(),
            role: None,
            annotations: Default::default(),
        };
        let json = serde_json::to_value(&r)?;
        assert_eq!(json["media_type"], "text/plain");
        let back: ArtifactRecord = serde_json::from_value(json)?;
        assert_eq!(back, r);
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_rejected_by_name() -> TestResult {
        let f = fixture()?;
        std::fs::create_dir_all(f.out.join("sub"))?;
        std::os::unix::fs::symlink("/etc/passwd", f.out.join("sub/passwd"))?;
        let err = f
            .cas
            .ingest_dir(&f.out, &[], &IngestLimits::default())
            .err()
            .ok_or("expected error")?;
        assert!(
            matches!(&err, ArtifactError::Symlink { name, .. } if name == "sub/passwd"),
            "{err}"
        );
        assert!(err.to_string().contains("sub/passwd"), "{err}");

        // A link to a directory (even one inside) is refused as well.
        let f = fixture()?;
        std::fs::create_dir_all(f.out.join("real"))?;
        std::os::unix::fs::symlink("real", f.out.join("alias"))?;
        let err = f
            .cas
            .ingest_dir(&f.out, &[], &IngestLimits::default())
            .err()
            .ok_or("expected error")?;
        assert!(matches!(err, ArtifactError::Symlink { .. }), "{err}");
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_rejected() -> TestResult {
        let f = fixture()?;
        let _listener = std::os::unix::net::UnixListener::bind(f.out.join("sock"))?;
        let err = f
            .cas
            .ingest_dir(&f.out, &[], &IngestLimits::default())
            .err()
            .ok_or("expected error")?;
        assert!(
            matches!(&err, ArtifactError::SpecialFile { name, .. } if name == "sock"),
            "{err}"
        );
        Ok(())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn non_utf8_names_are_rejected() -> TestResult {
        use std::os::unix::ffi::OsStrExt;
        let f = fixture()?;
        std::fs::write(f.out.join(std::ffi::OsStr::from_bytes(b"bad\xff")), b"x")?;
        let err = f
            .cas
            .ingest_dir(&f.out, &[], &IngestLimits::default())
            .err()
            .ok_or("expected error")?;
        assert!(matches!(err, ArtifactError::NonUtf8Name { .. }), "{err}");
        Ok(())
    }

    #[test]
    fn declared_but_missing() -> TestResult {
        let f = fixture()?;
        std::fs::write(f.out.join("present"), b"x")?;
        std::fs::create_dir_all(f.out.join("adir"))?;
        for missing in ["report.sarif", "adir"] {
            let err = f
                .cas
                .ingest_dir(
                    &f.out,
                    &decl(&[("present", "text/plain"), (missing, "application/json")]),
                    &IngestLimits::default(),
                )
                .err()
                .ok_or("expected error")?;
            assert!(
                matches!(&err, ArtifactError::DeclaredMissing { name } if name == missing),
                "{err}"
            );
        }
        Ok(())
    }

    #[test]
    fn limits_are_enforced() -> TestResult {
        let f = fixture()?;
        for i in 0..5 {
            std::fs::write(f.out.join(format!("f{i}")), vec![0u8; 100])?;
        }
        let err = f
            .cas
            .ingest_dir(
                &f.out,
                &[],
                &IngestLimits {
                    max_files: 4,
                    ..IngestLimits::default()
                },
            )
            .err()
            .ok_or("expected error")?;
        assert!(
            matches!(err, ArtifactError::TooManyFiles { limit: 4, .. }),
            "{err}"
        );

        let err = f
            .cas
            .ingest_dir(
                &f.out,
                &[],
                &IngestLimits {
                    max_total_bytes: 499,
                    ..IngestLimits::default()
                },
            )
            .err()
            .ok_or("expected error")?;
        assert!(
            matches!(err, ArtifactError::TooLarge { limit: 499, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("499 B"), "{err}");

        let ok = f.cas.ingest_dir(
            &f.out,
            &[],
            &IngestLimits {
                max_files: 5,
                max_total_bytes: 500,
            },
        )?;
        assert_eq!(ok.len(), 5);
        Ok(())
    }

    #[test]
    fn tampered_blob_is_detected_and_partial_file_removed() -> TestResult {
        let f = fixture()?;
        std::fs::write(f.out.join("app"), vec![1u8; 100_000])?;
        let records = f.cas.ingest_dir(&f.out, &[], &IngestLimits::default())?;
        let blob = f.cas.blob_path(&records[0].digest)?;
        let mut perms = std::fs::metadata(&blob)?.permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&blob, perms)?;
        let mut bytes = std::fs::read(&blob)?;
        bytes[99_999] = 2;
        std::fs::write(&blob, &bytes)?;

        let err = f
            .cas
            .materialize(&records, &f.dest)
            .err()
            .ok_or("expected error")?;
        match &err {
            ArtifactError::DigestMismatch {
                name,
                expected,
                actual,
                path,
            } => {
                assert_eq!(path, &blob);
                assert_eq!(name, "app");
                assert_eq!(expected, &records[0].digest);
                assert_ne!(actual, expected);
            }
            other => return Err(format!("unexpected {other}").into()),
        }
        assert!(err.to_string().contains("tampered"), "{err}");
        assert!(!f.dest.join("app").exists());
        Ok(())
    }

    #[test]
    fn missing_blob() -> TestResult {
        let f = fixture()?;
        let records = [ArtifactRecord {
            name: "x".into(),
            digest: ABC_SHA256.into(),
            size: 3,
            media_type: DEFAULT_MEDIA_TYPE.into(),
            role: None,
            annotations: Default::default(),
        }];
        let err = f
            .cas
            .materialize(&records, &f.dest)
            .err()
            .ok_or("expected error")?;
        assert!(
            matches!(&err, ArtifactError::Missing { name, .. } if name == "x"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn hostile_names_are_refused_by_materialize() -> TestResult {
        let f = fixture()?;
        std::fs::write(f.out.join("abc"), b"abc")?;
        let good = f.cas.ingest_dir(&f.out, &[], &IngestLimits::default())?;
        for bad in [
            "../escape",
            "/etc/x",
            "a//b",
            "a/./b",
            "",
            "a/",
            "a\\..\\b",
            "x/../../y",
        ] {
            let mut r = good.clone();
            r[0].name = bad.to_owned();
            let err = f
                .cas
                .materialize(&r, &f.dest)
                .err()
                .ok_or("expected error")?;
            assert!(
                matches!(err, ArtifactError::InvalidName { .. }),
                "{bad}: {err}"
            );
        }
        let mut r = good.clone();
        r[0].digest = "sha256:../../x".into();
        let err = f
            .cas
            .materialize(&r, &f.dest)
            .err()
            .ok_or("expected error")?;
        assert!(matches!(err, ArtifactError::InvalidDigest { .. }), "{err}");
        Ok(())
    }

    /// Overwrites a (read-only) blob in place, as a disk error or a stray
    /// edit would.
    fn overwrite_blob(blob: &Path, content: &[u8]) -> TestResult {
        let mut perms = std::fs::metadata(blob)?.permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(blob, perms)?;
        std::fs::write(blob, content)?;
        Ok(())
    }

    #[test]
    fn storing_again_replaces_a_corrupt_blob_of_the_same_size() -> TestResult {
        let f = fixture()?;
        std::fs::write(f.out.join("app"), vec![1u8; 100_000])?;
        let records = f.cas.ingest_dir(&f.out, &[], &IngestLimits::default())?;
        let blob = f.cas.blob_path(&records[0].digest)?;
        let mut bytes = std::fs::read(&blob)?;
        bytes[50_000] = 2;
        overwrite_blob(&blob, &bytes)?;
        assert!(matches!(
            f.cas.verify(&records[0]),
            Err(ArtifactError::DigestMismatch { .. })
        ));

        let again = f.cas.ingest_dir(&f.out, &[], &IngestLimits::default())?;
        assert_eq!(again, records);
        assert_eq!(hash_file(&blob)?, (records[0].digest.clone(), 100_000));
        f.cas.verify(&records[0])?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&blob)?.permissions().mode() & 0o777,
                0o444
            );
        }
        assert_eq!(std::fs::read_dir(f.cas.root().join("tmp"))?.count(), 0);
        f.cas.materialize(&records, &f.dest)?;
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn storing_again_keeps_an_intact_blob() -> TestResult {
        use std::os::unix::fs::MetadataExt;
        let f = fixture()?;
        std::fs::write(f.out.join("abc"), b"abc")?;
        f.cas.ingest_dir(&f.out, &[], &IngestLimits::default())?;
        let blob = f.cas.blob_path(ABC_SHA256)?;
        let inode = std::fs::metadata(&blob)?.ino();
        f.cas.ingest_dir(&f.out, &[], &IngestLimits::default())?;
        assert_eq!(
            std::fs::metadata(&blob)?.ino(),
            inode,
            "the blob was rewritten"
        );
        assert_eq!(std::fs::read_dir(f.cas.root().join("tmp"))?.count(), 0);
        Ok(())
    }

    #[test]
    fn verify_names_the_blob_that_is_missing_or_wrong() -> TestResult {
        let f = fixture()?;
        std::fs::write(f.out.join("abc"), b"abc")?;
        let records = f.cas.ingest_dir(&f.out, &[], &IngestLimits::default())?;
        f.cas.verify(&records[0])?;
        let blob = f.cas.blob_path(ABC_SHA256)?;

        let mut wrong_size = records[0].clone();
        wrong_size.size = 4;
        assert!(matches!(
            f.cas.verify(&wrong_size),
            Err(ArtifactError::SizeMismatch { .. })
        ));

        overwrite_blob(&blob, b"abd")?;
        let err = f.cas.verify(&records[0]).err().ok_or("expected error")?;
        assert!(
            matches!(&err, ArtifactError::DigestMismatch { path, .. } if *path == blob),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains(&blob.display().to_string()), "{text}");

        std::fs::remove_file(&blob)?;
        let err = f.cas.verify(&records[0]).err().ok_or("expected error")?;
        assert!(matches!(&err, ArtifactError::Missing { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&blob.display().to_string()), "{text}");
        assert!(!text.contains(".sluice"), "{text}");
        let err = f
            .cas
            .materialize(&records, &f.dest)
            .err()
            .ok_or("expected error")?;
        assert!(
            err.to_string().contains(&blob.display().to_string()),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn sweep_temp_removes_only_old_temporary_files() -> TestResult {
        let f = fixture()?;
        std::fs::write(f.out.join("abc"), b"abc")?;
        f.cas.ingest_dir(&f.out, &[], &IngestLimits::default())?;
        let tmp = f.cas.root().join("tmp");
        let old = tmp.join(".tmpKILLED");
        let young = tmp.join(".tmpWRITING");
        std::fs::write(&old, b"partial blob")?;
        std::fs::write(&young, b"partial blob")?;
        std::fs::File::options()
            .write(true)
            .open(&old)?
            .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200))?;
        let swept = f.cas.sweep_temp(&crate::workdir::Sweep::default());
        assert_eq!(swept.files, 1);
        assert!(!old.exists());
        assert!(young.exists());
        assert!(f.cas.blob_path(ABC_SHA256)?.exists(), "blobs are not swept");
        Ok(())
    }

    #[test]
    fn blobs_lists_what_the_store_holds() -> TestResult {
        let f = fixture()?;
        assert!(f.cas.blobs()?.is_empty());
        std::fs::write(f.out.join("abc"), b"abc")?;
        std::fs::write(f.out.join("zero"), b"")?;
        let records = f.cas.ingest_dir(&f.out, &[], &IngestLimits::default())?;
        std::fs::write(f.cas.root().join("sha256/ba/not-a-digest"), b"x")?;
        let mut listed: Vec<_> = f.cas.blobs()?.into_iter().map(|b| b.digest).collect();
        listed.sort();
        let mut expected: Vec<_> = records.iter().map(|r| r.digest.clone()).collect();
        expected.sort();
        assert_eq!(listed, expected);
        Ok(())
    }

    #[test]
    fn damaged_existing_blob_of_wrong_size_is_replaced() -> TestResult {
        let f = fixture()?;
        std::fs::write(f.out.join("abc"), b"abc")?;
        let blob = f.cas.blob_path(ABC_SHA256)?;
        std::fs::create_dir_all(blob.parent().ok_or("parent")?)?;
        std::fs::write(&blob, b"ab")?;
        let records = f.cas.ingest_dir(&f.out, &[], &IngestLimits::default())?;
        assert_eq!(std::fs::read(&blob)?, b"abc");
        f.cas.materialize(&records, &f.dest)?;
        Ok(())
    }
}
