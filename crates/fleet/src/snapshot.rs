//! Workspace snapshots: how a stage with a workspace grant runs on an agent
//! that does not see the coordinator's file system.
//!
//! The coordinator lists its workspace as a [`Manifest`] (every directory,
//! regular file — by sha256 — and symlink, found without following a
//! link), puts each file into the blob store under its digest and the
//! manifest itself as one more blob; the job names the manifest's digest
//! ([`WorkspaceSource::Snapshot`](crate::proto::WorkspaceSource::Snapshot)).
//! The agent fetches the blobs into its own CAS (re-hashed there) and
//! [`materialise`]s them into an empty directory of its work tree. After a
//! `workspace: write` stage it [`diff`]s that directory against the
//! manifest and sends the [`Delta`] (changed entries by digest, deleted
//! paths) back with the outcome; the coordinator [`apply`]s it to its
//! workspace, as if the stage had written there.
//!
//! Everything on both sides goes through `cap-std` handles on the root
//! directory, so no path of a manifest or delta — which the other side
//! wrote — and no symlink in either tree reaches outside it; every path is
//! checked to be plain and relative first ([`check_path`]). FIFOs, sockets
//! and devices are never opened: they are left out of a snapshot.
//!
//! What need not (or must not) travel is listed in [`IGNORE_FILE`] at the
//! workspace root, in gitignore syntax: build output, dependencies, local
//! secrets. It decides what is *sent*; what a stage writes comes back
//! wherever it lands, as a stage's writes to a shared workspace stay.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use cap_std::fs::{Dir, MetadataExt as _, OpenOptionsExt};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use sluice_record::artifacts::Cas;

/// Most entries a snapshot holds.
pub const MAX_ENTRIES: usize = 200_000;
/// Most file bytes a snapshot holds.
pub const MAX_BYTES: u64 = 4 << 30;
/// Longest path in a snapshot.
const MAX_PATH: usize = 4096;
/// The file at the workspace root that lists, in gitignore syntax, what a
/// snapshot leaves out.
pub const IGNORE_FILE: &str = ".sluiceignore";
/// Longest [`IGNORE_FILE`] read.
const MAX_IGNORE_BYTES: u64 = 1 << 20;

/// One entry of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Node {
    /// A directory.
    Dir,
    /// A regular file, by content.
    File {
        /// `sha256:<hex>` of its bytes (its blob's name).
        digest: String,
        /// Its size.
        size: u64,
        /// Whether its owner may execute it.
        executable: bool,
    },
    /// A symbolic link, by its target text (never followed).
    Symlink {
        /// What it points to.
        target: String,
    },
}

/// Everything in a workspace, by relative path (`/`-separated, sorted, so
/// a directory comes before what it holds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The entries.
    pub entries: BTreeMap<String, Node>,
    /// Paths left out (FIFOs, sockets, devices, names that are not UTF-8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Paths [`IGNORE_FILE`] left out (a directory, not what it holds).
    /// Only for the coordinator's messages: never sent to an agent.
    #[serde(skip)]
    pub ignored: Vec<String>,
}

/// What a stage changed in a snapshot workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// New or changed entries (files by digest: their blobs travel with it).
    pub changed: BTreeMap<String, Node>,
    /// Entries that are gone, deepest first.
    pub deleted: Vec<String>,
}

impl Delta {
    /// Whether the stage changed nothing.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.deleted.is_empty()
    }
}

/// How a regular file looked when it was hashed: device, inode, size, mode
/// and both timestamps (nanoseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mode: u32,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(meta: &cap_std::fs::Metadata) -> Stamp {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mode: meta.mode(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A digest, with how the file looked and when it was read.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedDigest {
    stamp: Stamp,
    digest: String,
    hashed_at_ns: i128,
}

/// How long a file must have been unchanged when it was hashed for its
/// digest to be taken again on its looks alone. A write in the same
/// timestamp tick as the hashing leaves size and times as they were (git
/// calls such an entry "racily clean"); the kernel's file times lag the
/// clock by at most a tick, far less than this.
const SETTLED_NS: i128 = 2_000_000_000;

/// Digests of a workspace's files by how they looked when read, so a later
/// [`scan_cached`] reads only what changed, as git's index does. An entry
/// is taken only when device, inode, size, mode, mtime and ctime all match
/// and the file had been unchanged for two seconds when it was read
/// (ctime cannot be set back by a user, and any write moves it).
///
/// A cache, never a source of truth: a missing, unreadable or damaged file
/// is an empty cache, and one that cannot be written costs speed only.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DigestCache {
    entries: HashMap<String, CachedDigest>,
    /// Files read (not taken from the cache) by the last scan.
    #[serde(skip)]
    pub hashed: usize,
}

impl DigestCache {
    /// The cache saved at `path`; empty when there is none or it cannot be
    /// read (with a warning when it exists but is damaged).
    pub fn load(path: &Path) -> DigestCache {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "the snapshot digest cache is damaged; every file is hashed again");
                DigestCache::default()
            }),
            Err(_) => DigestCache::default(),
        }
    }

    /// Writes the cache to `path` (a temporary file renamed into place, so
    /// a reader never sees half of it).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer(io::BufWriter::new(tmp.as_file_mut()), self)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    fn lookup(&self, path: &str, stamp: &Stamp) -> Option<&str> {
        let cached = self.entries.get(path)?;
        (cached.stamp == *stamp && cached.hashed_at_ns - stamp.ctime_ns >= SETTLED_NS)
            .then_some(cached.digest.as_str())
    }
}

/// Now, in nanoseconds since the epoch.
fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

/// Why a snapshot could not be made, materialised or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A file-system operation failed.
    #[error("could not {action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The relative path concerned (`.` for the root).
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A path of a manifest or delta that is not plain and relative.
    #[error("`{path}` is not a plain relative path (no `..`, `.`, empty or absolute components); refused")]
    BadPath {
        /// The path as sent.
        path: String,
    },
    /// Over [`MAX_ENTRIES`] or [`MAX_BYTES`].
    #[error("the workspace is too large to send to an agent ({what}); list what the stages do not need (build output, dependencies) in `.sluiceignore`, or run the stage on an agent with `workspace: shared`, or locally")]
    TooLarge {
        /// Which limit.
        what: String,
    },
    /// An entry that cannot be put where the manifest or delta says.
    #[error("`{path}`: {why}")]
    Conflict {
        /// The relative path.
        path: String,
        /// What is in the way.
        why: String,
    },
    /// A blob a file needs is not in the CAS.
    #[error(transparent)]
    Cas(#[from] sluice_record::artifacts::ArtifactError),
    /// A line of [`IGNORE_FILE`] that is not a pattern.
    #[error("`.sluiceignore` line {line}: `{pattern}` is not a pattern ({message}); fix it (gitignore syntax) or remove the line")]
    IgnorePattern {
        /// 1-based.
        line: usize,
        /// The line as written (trimmed).
        pattern: String,
        /// What the glob parser said.
        message: String,
    },
    /// An [`IGNORE_FILE`] that cannot be used.
    #[error("`.sluiceignore` {why}")]
    IgnoreFile {
        /// What is wrong with it, and the fix.
        why: String,
    },
}

fn io_err<'a>(action: &'static str, path: &'a str) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        action,
        path: if path.is_empty() {
            ".".to_owned()
        } else {
            path.to_owned()
        },
        source,
    }
}

/// `path` is a plain relative path: `/`-separated components that are not
/// empty, `.` or `..`, no NUL or backslash, at most 4096 bytes.
pub fn check_path(path: &str) -> Result<(), SnapshotError> {
    let plain = !path.is_empty()
        && path.len() <= MAX_PATH
        && !path.contains('\0')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if plain {
        Ok(())
    } else {
        Err(SnapshotError::BadPath {
            path: path.to_owned(),
        })
    }
}

fn open_root(root: &Path) -> Result<Dir, SnapshotError> {
    Dir::open_ambient_dir(root, cap_std::ambient_authority()).map_err(|source| SnapshotError::Io {
        action: "open",
        path: root.display().to_string(),
        source,
    })
}

/// Lists the workspace at `root` (blocking: it reads and hashes every
/// file), leaving out what its [`IGNORE_FILE`] lists. Symlinks are
/// recorded, never followed.
pub fn scan(root: &Path) -> Result<Manifest, SnapshotError> {
    scan_cached(root, &mut DigestCache::default())
}

/// [`scan`], taking the digest of each file that looks as it did from
/// `cache` instead of reading it, and leaving in `cache` the digests of
/// this scan's files only.
pub fn scan_cached(root: &Path, cache: &mut DigestCache) -> Result<Manifest, SnapshotError> {
    let dir = open_root(root)?;
    let rules = ignore_rules(&dir)?;
    Scan::walk(&dir, rules.as_ref(), cache)
}

/// Whether the [`IGNORE_FILE`] of the workspace at `root` can be used
/// (reads it, lists nothing): a run checks it before its first stage.
pub fn check_ignore_file(root: &Path) -> Result<(), SnapshotError> {
    ignore_rules(&open_root(root)?).map(|_| ())
}

/// [`scan`] without [`IGNORE_FILE`]: everything there is (what a stage
/// wrote comes back wherever it wrote it).
fn scan_everything(root: &Path) -> Result<Manifest, SnapshotError> {
    Scan::walk(&open_root(root)?, None, &mut DigestCache::default())
}

/// One walk of a workspace.
struct Scan<'a> {
    rules: Option<&'a Gitignore>,
    /// Digests of the last scan.
    cache: &'a mut DigestCache,
    /// Digests of this one (the next scan's cache).
    fresh: HashMap<String, CachedDigest>,
    manifest: Manifest,
    bytes: u64,
    hashed: usize,
}

/// The rules of the workspace's [`IGNORE_FILE`], if it has one. It must be
/// a regular file (not a symlink, as git no longer follows one for
/// `.gitignore`), opened without blocking (a FIFO there cannot hang the
/// run), at most 1 MiB of UTF-8.
fn ignore_rules(dir: &Dir) -> Result<Option<Gitignore>, SnapshotError> {
    let bad = |why: &str| SnapshotError::IgnoreFile {
        why: why.to_owned(),
    };
    match dir.symlink_metadata(IGNORE_FILE) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("look at", IGNORE_FILE)(e)),
        Ok(meta) if !meta.is_file() => return Err(bad(
            "is not a regular file (a symlink, directory, FIFO or device); make it a plain file",
        )),
        Ok(_) => {}
    }
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.read(true);
    opts.custom_flags(libc_flags());
    let file = dir
        .open_with(IGNORE_FILE, &opts)
        .map_err(io_err("open", IGNORE_FILE))?;
    let meta = file.metadata().map_err(io_err("look at", IGNORE_FILE))?;
    if !meta.is_file() {
        return Err(bad(
            "changed into something other than a file while it was read",
        ));
    }
    if meta.len() > MAX_IGNORE_BYTES {
        return Err(bad(&format!(
            "is larger than {MAX_IGNORE_BYTES} bytes; list directories rather than every file"
        )));
    }
    let mut text = String::new();
    file.into_std()
        .take(MAX_IGNORE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => bad("is not UTF-8 text; save it as UTF-8"),
            _ => io_err("read", IGNORE_FILE)(e),
        })?;
    // Paths are matched relative to the workspace root.
    let mut builder = GitignoreBuilder::new("");
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    for (i, line) in text.lines().enumerate() {
        builder
            .add_line(None, line)
            .map_err(|e| SnapshotError::IgnorePattern {
                line: i + 1,
                pattern: line.trim().to_owned(),
                message: e.to_string(),
            })?;
    }
    let rules = builder.build().map_err(|e| bad(&e.to_string()))?;
    Ok((!rules.is_empty()).then_some(rules))
}

impl<'a> Scan<'a> {
    /// Lists `root` under `rules`, with digests from `cache`; on success
    /// `cache` holds this walk's digests (on failure, the old ones).
    fn walk(
        root: &Dir,
        rules: Option<&'a Gitignore>,
        cache: &'a mut DigestCache,
    ) -> Result<Manifest, SnapshotError> {
        let mut scan = Scan {
            rules,
            cache,
            fresh: HashMap::new(),
            manifest: Manifest::default(),
            bytes: 0,
            hashed: 0,
        };
        scan.dir(root, "")?;
        scan.cache.entries = scan.fresh;
        scan.cache.hashed = scan.hashed;
        Ok(scan.manifest)
    }

    fn dir(&mut self, dir: &Dir, prefix: &str) -> Result<(), SnapshotError> {
        let mut names = Vec::new();
        for entry in dir.entries().map_err(io_err("list", prefix))? {
            let entry = entry.map_err(io_err("list", prefix))?;
            names.push(entry.file_name());
        }
        names.sort();
        for name in names {
            let Some(name) = name.to_str().map(str::to_owned) else {
                self.manifest
                    .skipped
                    .push(format!("{prefix}{}", name.to_string_lossy()));
                continue;
            };
            let path = format!("{prefix}{name}");
            if self.manifest.entries.len() >= MAX_ENTRIES {
                return Err(SnapshotError::TooLarge {
                    what: format!("more than {MAX_ENTRIES} entries"),
                });
            }
            let meta = dir
                .symlink_metadata(&name)
                .map_err(io_err("look at", &path))?;
            let ft = meta.file_type();
            // Matched top down: an ignored directory is not even listed.
            if self
                .rules
                .is_some_and(|r| r.matched(&path, ft.is_dir()).is_ignore())
            {
                self.manifest.ignored.push(path);
                continue;
            }
            if ft.is_symlink() {
                let target = dir
                    .read_link_contents(&name)
                    .map_err(io_err("read", &path))?;
                match target.to_str() {
                    Some(target) => {
                        self.manifest.entries.insert(
                            path,
                            Node::Symlink {
                                target: target.to_owned(),
                            },
                        );
                    }
                    None => self.manifest.skipped.push(path),
                }
            } else if ft.is_dir() {
                self.manifest.entries.insert(path.clone(), Node::Dir);
                // Opened through `dir`: even a directory swapped for a symlink
                // since it was looked at cannot lead outside the root.
                let sub = dir.open_dir(&name).map_err(io_err("open", &path))?;
                self.dir(&sub, &format!("{path}/"))?;
            } else if ft.is_file() {
                let (digest, size, executable) = self.file(dir, &name, &path, &meta)?;
                self.bytes += size;
                if self.bytes > MAX_BYTES {
                    return Err(SnapshotError::TooLarge {
                        what: format!("more than {MAX_BYTES} bytes of files"),
                    });
                }
                self.manifest.entries.insert(
                    path,
                    Node::File {
                        digest,
                        size,
                        executable,
                    },
                );
            } else {
                // A FIFO, socket or device: never opened.
                self.manifest.skipped.push(path);
            }
        }
        Ok(())
    }

    /// The digest, size and executable bit of the regular file `name` in
    /// `dir`: from the cache when it looks as it did, else read.
    fn file(
        &mut self,
        dir: &Dir,
        name: &str,
        path: &str,
        meta: &cap_std::fs::Metadata,
    ) -> Result<(String, u64, bool), SnapshotError> {
        let executable = cap_std::fs::PermissionsExt::mode(&meta.permissions()) & 0o100 != 0;
        let stamp = Stamp::of(meta);
        if let Some(digest) = self.cache.lookup(path, &stamp) {
            let digest = digest.to_owned();
            if let Some(cached) = self.cache.entries.get(path) {
                self.fresh.insert(path.to_owned(), cached.clone());
            }
            return Ok((digest, stamp.size, executable));
        }
        let hashed_at_ns = now_ns();
        let (digest, size, executable, stamp) = hash_file(dir, name, path)?;
        self.hashed += 1;
        self.fresh.insert(
            path.to_owned(),
            CachedDigest {
                stamp,
                digest: digest.clone(),
                hashed_at_ns,
            },
        );
        Ok((digest, size, executable))
    }
}

/// Reads and hashes `name` in `dir`: digest, bytes read, executable bit,
/// and how the opened file looked before it was read.
fn hash_file(
    dir: &Dir,
    name: &str,
    path: &str,
) -> Result<(String, u64, bool, Stamp), SnapshotError> {
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.read(true);
    opts.custom_flags(libc_flags());
    let mut file = dir.open_with(name, &opts).map_err(io_err("open", path))?;
    let meta = file.metadata().map_err(io_err("look at", path))?;
    if !meta.is_file() {
        return Err(SnapshotError::Conflict {
            path: path.to_owned(),
            why: "changed into something other than a file while it was read".to_owned(),
        });
    }
    let executable = cap_std::fs::PermissionsExt::mode(&meta.permissions()) & 0o100 != 0;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((
        format!("sha256:{}", hex::encode(hasher.finalize())),
        size,
        executable,
        Stamp::of(&meta),
    ))
}

/// `O_NOFOLLOW | O_NONBLOCK`: a symlink swapped in is not followed and a
/// FIFO swapped in does not block.
fn libc_flags() -> i32 {
    libc::O_NONBLOCK | libc::O_NOFOLLOW
}

/// Writes `manifest`'s workspace into `dest`, which must be an empty
/// directory, from the blobs in `cas` (blocking). Symlinks are made last,
/// so nothing is ever written through one.
pub fn materialise(manifest: &Manifest, cas: &Cas, dest: &Path) -> Result<(), SnapshotError> {
    let dir = open_root(dest)?;
    for path in manifest.entries.keys() {
        check_path(path)?;
    }
    for (path, node) in &manifest.entries {
        match node {
            Node::Dir => dir.create_dir(path).map_err(io_err("create", path))?,
            Node::File {
                digest, executable, ..
            } => write_file(&dir, path, cas, digest, *executable)?,
            Node::Symlink { .. } => {}
        }
    }
    for (path, node) in &manifest.entries {
        if let Node::Symlink { target } = node {
            dir.symlink_contents(target, path)
                .map_err(io_err("create", path))?;
        }
    }
    Ok(())
}

/// Copies blob `digest` from `cas` to `path` under `dir` (a new file; an
/// existing file or symlink there is replaced, never written through).
fn write_file(
    dir: &Dir,
    path: &str,
    cas: &Cas,
    digest: &str,
    executable: bool,
) -> Result<(), SnapshotError> {
    let blob = cas.blob_path(digest)?;
    let mut from = std::fs::File::open(&blob).map_err(|source| SnapshotError::Io {
        action: "read the blob of",
        path: path.to_owned(),
        source,
    })?;
    match dir.symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(SnapshotError::Conflict {
                path: path.to_owned(),
                why: "a directory is where a file should be".to_owned(),
            })
        }
        Ok(_) => dir.remove_file(path).map_err(io_err("replace", path))?,
        Err(_) => {}
    }
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    opts.custom_flags(libc_flags());
    let to = dir.open_with(path, &opts).map_err(io_err("create", path))?;
    let mut to = to.into_std();
    io::copy(&mut from, &mut to).map_err(io_err("write", path))?;
    let mode = if executable { 0o755 } else { 0o644 };
    to.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(io_err("set the mode of", path))?;
    Ok(())
}

/// What changed in `dir` (blocking) since it was materialised from
/// `before`: everything the stage wrote, [`IGNORE_FILE`] or not.
pub fn diff(before: &Manifest, dir: &Path) -> Result<Delta, SnapshotError> {
    let after = scan_everything(dir)?;
    let mut delta = Delta::default();
    for (path, node) in &after.entries {
        if before.entries.get(path) != Some(node) {
            delta.changed.insert(path.clone(), node.clone());
        }
    }
    let mut deleted: Vec<String> = before
        .entries
        .keys()
        .filter(|p| !after.entries.contains_key(*p))
        .cloned()
        .collect();
    // Deepest first: a directory after what it held.
    deleted.sort_by(|a, b| b.cmp(a));
    delta.deleted = deleted;
    Ok(delta)
}

/// Applies `delta` to the workspace at `root` (blocking), with file bytes
/// from the blobs in `cas`. Deleted directories are removed only when
/// empty (the workspace may have gained files of its own meanwhile);
/// symlinks a delta adds may not point to absolute paths, as a stage's own
/// could not.
pub fn apply(delta: &Delta, cas: &Cas, root: &Path) -> Result<(), SnapshotError> {
    let dir = open_root(root)?;
    for path in delta.deleted.iter().chain(delta.changed.keys()) {
        check_path(path)?;
    }
    for path in &delta.deleted {
        match dir.symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => match dir.remove_dir(path) {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(path, error = %e, "a directory the stage removed is not empty here; kept")
                }
            },
            Ok(_) => dir.remove_file(path).map_err(io_err("remove", path))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("look at", path)(e)),
        }
    }
    for (path, node) in &delta.changed {
        match node {
            Node::Dir => match dir.symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    dir.remove_file(path).map_err(io_err("replace", path))?;
                    dir.create_dir(path).map_err(io_err("create", path))?;
                }
                Err(_) => dir.create_dir_all(path).map_err(io_err("create", path))?,
            },
            Node::File {
                digest, executable, ..
            } => write_file(&dir, path, cas, digest, *executable)?,
            Node::Symlink { .. } => {}
        }
    }
    for (path, node) in &delta.changed {
        if let Node::Symlink { target } = node {
            if let Ok(meta) = dir.symlink_metadata(path) {
                if meta.is_dir() {
                    return Err(SnapshotError::Conflict {
                        path: path.clone(),
                        why: "a directory is where the stage made a symlink".to_owned(),
                    });
                }
                dir.remove_file(path).map_err(io_err("replace", path))?;
            }
            dir.symlink(target, path).map_err(io_err("create", path))?;
        }
    }
    Ok(())
}

/// The file blobs `manifest` or a delta's `changed` names, with where they
/// are under `root` (to upload them).
pub fn file_blobs<'a>(
    entries: &'a BTreeMap<String, Node>,
    root: &'a Path,
) -> impl Iterator<Item = (&'a str, std::path::PathBuf)> + 'a {
    entries.iter().filter_map(move |(path, node)| match node {
        Node::File { digest, .. } => Some((digest.as_str(), root.join(path))),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
