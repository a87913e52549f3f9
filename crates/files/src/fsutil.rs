//! File helpers: crash-safe writes, bounded reads of input files, and
//! I/O errors in plain words.
//!
//! **Writes.** Every file the runner keeps in its state directory (run
//! records, CAS blobs, cached state) is replaced atomically: the new content goes into a
//! temporary file in the *same directory*, is flushed to disk, renamed over
//! the destination, and then the directory itself is flushed so that the
//! rename survives a power loss. A runner killed at any point therefore
//! leaves either the complete old file or the complete new one, never a torn
//! mix; `sluice run --resume` relies on this.
//!
//! **Reads.** Every file a user names (pipeline, policy, Sigstore bundle,
//! key, trusted root, plugin) is read through [`read_input_file`]: only a
//! regular file, never more than a cap. A FIFO would block `validate` for
//! ever, `/dev/zero` would be read until memory runs out, and a directory
//! or socket cannot be read at all; each is refused with an error that
//! names the file and what it is.
//!
//! **Errors.** [`io_reason`] says what a full disk, an exceeded quota, a
//! read-only file system or a full descriptor table mean, instead of
//! `os error 28`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The most bytes read from a pipeline file. Real pipelines are a few KiB;
/// a generated 1000-stage DAG is about 150 KiB.
pub const MAX_PIPELINE_BYTES: u64 = 1 << 20;
/// The most bytes read from a trust policy file (a few KiB in practice).
pub const MAX_POLICY_BYTES: u64 = 1 << 20;
/// The most bytes read from a plugin's Sigstore bundle. A message-signature
/// bundle is one certificate or key hint, one signature and at most one
/// transparency-log entry: a few KiB.
pub const MAX_BUNDLE_BYTES: u64 = 1 << 20;
/// The most bytes read from a provenance bundle (`verify-artifact`). Its
/// statement lists every artifact of a build stage (up to 10 000, each a
/// name and a digest, base64-encoded in the DSSE envelope), so it may be far
/// larger than a plugin's bundle.
pub const MAX_PROVENANCE_BUNDLE_BYTES: u64 = 16 << 20;
/// The most bytes read from a key file (PEM; an ECDSA P-256 key, even
/// encrypted, is under 1 KiB).
pub const MAX_KEY_BYTES: u64 = 64 << 10;
/// The most bytes read from a `trusted_root.json` (the public-good instance's
/// is under 10 KiB, with room for many more CAs, logs and authorities).
pub const MAX_TRUSTED_ROOT_BYTES: u64 = 4 << 20;

/// What kind of file an input path turned out to be, when it is not a
/// regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A directory.
    Directory,
    /// A FIFO (named pipe): reading it blocks until a writer comes.
    Fifo,
    /// A character device such as `/dev/zero` or a terminal.
    CharDevice,
    /// A block device such as a disk.
    BlockDevice,
    /// A Unix domain socket.
    Socket,
    /// Anything else that is not a regular file.
    Other,
}

impl FileKind {
    fn of(file_type: std::fs::FileType) -> Option<FileKind> {
        if file_type.is_file() {
            return None;
        }
        if file_type.is_dir() {
            return Some(FileKind::Directory);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if file_type.is_fifo() {
                return Some(FileKind::Fifo);
            }
            if file_type.is_char_device() {
                return Some(FileKind::CharDevice);
            }
            if file_type.is_block_device() {
                return Some(FileKind::BlockDevice);
            }
            if file_type.is_socket() {
                return Some(FileKind::Socket);
            }
        }
        Some(FileKind::Other)
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a FIFO (named pipe)",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Socket => "a socket",
            FileKind::Other => "not a regular file",
        })
    }
}

/// Why an input file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The operating system could not open or read it.
    // The OS error is part of the message rather than a `#[source]`, so that
    // printing the error chain does not repeat it.
    #[error("cannot read {what} `{}`: {}", path.display(), io_reason(error))]
    Io {
        /// What the file is for (`pipeline file`, `policy file`, ...).
        what: &'static str,
        /// The file, as given.
        path: PathBuf,
        /// What the operating system said.
        error: io::Error,
    },
    /// It is a directory, FIFO, device or socket.
    #[error("{what} `{}` is {kind}, not a regular file", path.display())]
    NotRegular {
        /// What the file is for.
        what: &'static str,
        /// The file, as given.
        path: PathBuf,
        /// What it is instead.
        kind: FileKind,
    },
    /// It is larger than the cap for its kind.
    #[error(
        "{what} `{}` is {}, more than the {} sluice reads for a {what}",
        path.display(),
        size.map_or_else(|| "larger".to_owned(), |s| format!("{} bytes", s)),
        human_size(*limit)
    )]
    TooLarge {
        /// What the file is for.
        what: &'static str,
        /// The file, as given.
        path: PathBuf,
        /// Its size, when known.
        size: Option<u64>,
        /// The cap, in bytes.
        limit: u64,
    },
}

impl InputError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            InputError::Io { path, .. }
            | InputError::NotRegular { path, .. }
            | InputError::TooLarge { path, .. } => path,
        }
    }

    /// How to fix it, in one sentence.
    pub fn hint(&self) -> String {
        match self {
            InputError::Io { error, .. } => match error.kind() {
                io::ErrorKind::NotFound => "check the path".to_owned(),
                io::ErrorKind::PermissionDenied => {
                    "make the file readable by the user running sluice".to_owned()
                }
                _ => "check that the file can be read".to_owned(),
            },
            InputError::NotRegular {
                kind: FileKind::Directory,
                ..
            } => "give the path of the file itself, not of its directory".to_owned(),
            InputError::NotRegular { .. } => {
                "give the path of a regular file: sluice reads input files whole, and a pipe, \
                 device or socket could block it or never end"
                    .to_owned()
            }
            InputError::TooLarge { what, limit, .. } => format!(
                "a {what} this large is almost certainly not the file you meant; check the \
                 path (the {} cap keeps a stray file from exhausting memory)",
                human_size(*limit)
            ),
        }
    }
}

/// Reads the whole of the regular file at `path`, at most `limit` bytes.
///
/// `what` names the kind of file in errors (`"pipeline file"`). Symbolic
/// links are followed. The file is checked twice: by path before it is
/// opened, so that a device is never even opened (opening one can have side
/// effects), and by the open descriptor (`fstat`), which is what is really
/// read. It is opened with `O_NONBLOCK`, so that a FIFO swapped in between
/// the two checks cannot block the open. At most `limit + 1` bytes are read,
/// so a file that grows while it is read is still refused, without reading
/// it all.
pub fn read_input_file(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, InputError> {
    let io_error = |error| InputError::Io {
        what,
        path: path.to_path_buf(),
        error,
    };
    let not_regular = |kind| InputError::NotRegular {
        what,
        path: path.to_path_buf(),
        kind,
    };
    let too_large = |size| InputError::TooLarge {
        what,
        path: path.to_path_buf(),
        size,
        limit,
    };
    let meta = std::fs::metadata(path).map_err(io_error)?;
    if let Some(kind) = FileKind::of(meta.file_type()) {
        return Err(not_regular(kind));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NOCTTY: should a terminal be swapped in, it must not become
        // the runner's controlling terminal.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path).map_err(io_error)?;
    let meta = file.metadata().map_err(io_error)?;
    if let Some(kind) = FileKind::of(meta.file_type()) {
        return Err(not_regular(kind));
    }
    if meta.len() > limit {
        return Err(too_large(Some(meta.len())));
    }
    // O_NONBLOCK has no effect on a regular file; reads block as usual.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(None));
    }
    Ok(bytes)
}

/// `text` without a leading UTF-8 byte order mark, which some Windows
/// editors write and which YAML allows at the start of a stream, but which
/// would otherwise become part of the first key.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// What an I/O error means, in plain words, for the conditions an operator
/// must act on: a full disk (`ENOSPC`), an exceeded quota (`EDQUOT`), a
/// read-only file system (`EROFS`), too many open files (`EMFILE`,
/// `ENFILE`). Other errors are shown as the operating system words them.
///
/// An error that already carries its own message (one that names a path,
/// made by `with_path` and the like) keeps it, with the plain words added
/// when they are not in it yet.
pub fn io_reason(error: &io::Error) -> String {
    let plain = plain_words(error);
    match (error.get_ref(), plain) {
        (Some(_), Some(plain)) => {
            let message = error.to_string();
            if message.contains(plain) {
                message
            } else {
                format!("{message} ({plain})")
            }
        }
        (None, Some(plain)) => plain.to_owned(),
        (_, None) => error.to_string(),
    }
}

fn plain_words(error: &io::Error) -> Option<&'static str> {
    #[cfg(unix)]
    {
        let words = match error.raw_os_error() {
            Some(libc::ENOSPC) => Some("the disk is full (ENOSPC)"),
            Some(libc::EDQUOT) => Some("the disk quota is exceeded (EDQUOT)"),
            Some(libc::EROFS) => Some("the file system is read-only (EROFS)"),
            Some(libc::EMFILE) => Some(
                "too many open files (EMFILE): the runner reached its limit of open file \
                 descriptors; raise it with `ulimit -n`",
            ),
            Some(libc::ENFILE) => {
                Some("the system has too many open files (ENFILE): its file table is full")
            }
            _ => None,
        };
        if words.is_some() {
            return words;
        }
    }
    match error.kind() {
        io::ErrorKind::StorageFull => Some("the disk is full (ENOSPC)"),
        io::ErrorKind::QuotaExceeded => Some("the disk quota is exceeded (EDQUOT)"),
        io::ErrorKind::ReadOnlyFilesystem => Some("the file system is read-only (EROFS)"),
        _ => None,
    }
}

/// `1 MiB`, `64 KiB`, `300 bytes`: for the caps above in messages.
pub fn human_size(bytes: u64) -> String {
    for (unit, factor) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{} {unit}", bytes / factor);
        }
    }
    format!("{bytes} bytes")
}

/// Replaces `path` with `bytes` atomically and durably.
///
/// Steps: create a temporary file next to `path` (same directory, so the
/// final rename never crosses a file system), write `bytes`, `fsync` it,
/// rename it over `path`, then `fsync` the parent directory so the new
/// directory entry is on disk too.
///
/// A process killed at any step leaves either the old file or the new one.
/// A kill before the rename can leave a stray temporary file (named
/// `.tmp*`) in the directory; it is never mistaken for the real file.
///
/// The parent directory must already exist. Errors name the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_file(path, bytes, true)?;
    fsync_dir(parent_dir(path))
}

/// Replaces `path` with `bytes` atomically (temporary file, rename) without
/// syncing the directory; with `sync_data`, the content is synced before the
/// rename, so after a power cut the path holds the complete old file or the
/// complete new one (the rename reaches the disk with the file system's next
/// metadata commit). For files whose older version is still correct once
/// combined with something durable elsewhere, such as a run snapshot and its
/// journal; it saves the directory sync of [`write_atomic`]. Without
/// `sync_data`, the caller makes it durable later (see [`sync_path`]).
pub fn replace_file(path: &Path, bytes: &[u8], sync_data: bool) -> io::Result<()> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| with_path(e, "could not create a temporary file in", dir))?;
    tmp.write_all(bytes)
        .and_then(|()| {
            if sync_data {
                tmp.as_file().sync_data()
            } else {
                Ok(())
            }
        })
        .map_err(|e| with_path(e, "could not write", tmp.path()))?;
    tmp.persist(path)
        .map_err(|e| with_path(e.error, "could not rename a temporary file to", path))?;
    Ok(())
}

/// Flushes a file's content, or a directory's entries, to disk.
pub fn sync_path(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        fsync_dir(path)
    } else {
        File::open(path)
            .and_then(|f| f.sync_data())
            .map_err(|e| with_path(e, "could not sync", path))
    }
}

/// Flushes a directory's entries (creations, renames, removals) to disk.
///
/// A rename is only durable once the directory that holds it has been
/// synced. On platforms where a directory cannot be opened for syncing
/// (Windows), this is a no-op: there the file system orders metadata itself.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| with_path(e, "could not sync directory", dir))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The directory that holds `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Wraps an IO error so its message names the file, keeping its kind.
fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("{what} {}: {}", path.display(), io_reason(&e)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_files() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("run.json");
        write_atomic(&path, b"old")?;
        write_atomic(&path, b"new content")?;
        assert_eq!(std::fs::read(&path)?, b"new content");
        let names: Vec<_> = std::fs::read_dir(dir.path())?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        assert_eq!(names, vec![std::ffi::OsString::from("run.json")]);
        Ok(())
    }

    #[test]
    fn missing_parent_is_an_error_naming_the_dir() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let path = dir.path().join("nope").join("x.json");
        let err = match write_atomic(&path, b"x") {
            Ok(()) => panic!("expected an error"),
            Err(e) => e,
        };
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn fsync_dir_works_on_a_directory() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        fsync_dir(dir.path())
    }

    #[test]
    fn reads_regular_files_up_to_the_cap() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, b"0123456789")?;
        assert_eq!(read_input_file(&path, 10, "pipeline file")?, b"0123456789");
        // Through a symbolic link too.
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&path, &link)?;
        assert_eq!(read_input_file(&link, 10, "pipeline file")?.len(), 10);
        let err = read_input_file(&path, 9, "pipeline file").err();
        assert!(
            matches!(
                err,
                Some(InputError::TooLarge {
                    size: Some(10),
                    limit: 9,
                    ..
                })
            ),
            "{err:?}"
        );
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("pipeline file `"), "{text}");
        assert!(
            text.contains("is 10 bytes, more than the 9 bytes"),
            "{text}"
        );
        Ok(())
    }

    #[test]
    fn refuses_fifos_devices_sockets_and_directories_without_blocking(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let fifo = dir.path().join("fifo.yaml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
        assert!(made.success(), "mkfifo failed");
        let socket = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket)?;
        let zero = dir.path().join("zero.yaml");
        std::os::unix::fs::symlink("/dev/zero", &zero)?;
        for (path, kind) in [
            (&fifo, FileKind::Fifo),
            (&zero, FileKind::CharDevice),
            (&socket, FileKind::Socket),
            (&dir.path().to_path_buf(), FileKind::Directory),
        ] {
            let err = read_input_file(path, 1 << 20, "policy file").err();
            let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
            assert!(
                matches!(&err, Some(InputError::NotRegular { kind: k, .. }) if *k == kind),
                "{}: {err:?}",
                path.display()
            );
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains(&kind.to_string()), "{text}");
        }
        let missing = read_input_file(&dir.path().join("nope"), 1, "key file").err();
        assert!(
            matches!(&missing, Some(InputError::Io { error, .. }) if error.kind() == io::ErrorKind::NotFound),
            "{missing:?}"
        );
        Ok(())
    }

    #[test]
    fn io_errors_in_plain_words() {
        let raw = |errno| io::Error::from_raw_os_error(errno);
        assert_eq!(io_reason(&raw(libc::ENOSPC)), "the disk is full (ENOSPC)");
        assert_eq!(
            io_reason(&raw(libc::EDQUOT)),
            "the disk quota is exceeded (EDQUOT)"
        );
        assert_eq!(
            io_reason(&raw(libc::EROFS)),
            "the file system is read-only (EROFS)"
        );
        assert!(io_reason(&raw(libc::EMFILE)).starts_with("too many open files (EMFILE)"));
        assert!(io_reason(&raw(libc::ENFILE)).contains("(ENFILE)"));
        assert_eq!(
            io_reason(&io::Error::from(io::ErrorKind::StorageFull)),
            "the disk is full (ENOSPC)"
        );
        // Anything else as the OS says it.
        assert!(io_reason(&raw(libc::ENOENT)).contains("os error 2"));
        // A wrapped error keeps its message, which names the file.
        let wrapped = with_path(raw(libc::ENOSPC), "could not write", Path::new("/s/x"));
        assert_eq!(
            io_reason(&wrapped),
            "could not write /s/x: the disk is full (ENOSPC)"
        );
        let foreign = io::Error::new(io::ErrorKind::StorageFull, "cannot create /s/y: no space");
        assert_eq!(
            io_reason(&foreign),
            "cannot create /s/y: no space (the disk is full (ENOSPC))"
        );
    }

    #[test]
    fn sizes_for_messages() {
        assert_eq!(human_size(1 << 20), "1 MiB");
        assert_eq!(human_size(64 << 10), "64 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }

    #[test]
    fn byte_order_marks() {
        assert_eq!(strip_bom("\u{feff}version: 1"), "version: 1");
        assert_eq!(strip_bom("version: 1"), "version: 1");
    }
}
