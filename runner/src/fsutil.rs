//! Crash-safe file writes.
//!
//! Every file the runner keeps under `.sluice/` (run records, CAS blobs,
//! cached state) is replaced atomically: the new content goes into a
//! temporary file in the *same directory*, is flushed to disk, renamed over
//! the destination, and then the directory itself is flushed so that the
//! rename survives a power loss. A runner killed at any point therefore
//! leaves either the complete old file or the complete new one, never a torn
//! mix; `sluice run --resume` relies on this.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

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
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
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
}
