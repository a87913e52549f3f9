//! File primitives of the `local` and `nginx` targets: atomic JSON writes
//! (temp file in the same directory, then rename), JSON reads, and atomic
//! symlink replacement (new link beside the old one, then rename over it).
//!
//! Inside the component (`wasm32-wasip2`) Rust's std cannot create
//! symlinks (its WASI symlink is unstable), so [`symlink`] calls
//! `symlink-at` on the preopened directory that contains the link, found
//! through `wasi:filesystem/preopens`. On the host it is
//! `std::os::unix::fs::symlink`.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sluice_sdk::{ResultExt, StageError};

/// A temporary sibling of `path` (same directory, so rename is atomic).
fn temp_sibling(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    path.with_file_name(format!(".{name}.{what}-{}", unique()))
}

/// A token unique within this process and unlikely to clash across
/// processes (nanoseconds of the wall clock and a counter; `getpid` does
/// not exist in WASI).
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, renamed over `path`. Creates the parent directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StageError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let tmp = temp_sibling(path, "tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("renaming {} over {}", tmp.display(), path.display())
    })
}

/// Serializes `value` as pretty JSON (with a final newline) and writes it
/// with [`write_atomic`].
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StageError> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| StageError::failed(format!("encoding {}: {e}", path.display())))?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads a JSON file; `None` when it does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StageError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StageError::failed(format!("{} is not valid: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StageError::from(e).with_context(format!("reading {}", path.display()))),
    }
}

/// Appends one line to `path` (creating it and its directory).
pub fn append_line(path: &Path, line: &str) -> Result<(), StageError> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(format!("{line}\n").as_bytes())
        .with_context(|| format!("appending to {}", path.display()))
}

/// Points the symlink `link` at `target` atomically: a new link is created
/// beside it and renamed over it, so readers see the old or the new target,
/// never a missing link.
pub fn replace_symlink(link: &Path, target: &str) -> Result<(), StageError> {
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let tmp = temp_sibling(link, "link");
    if std::fs::symlink_metadata(&tmp).is_ok() {
        std::fs::remove_file(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    symlink(target, &tmp)?;
    std::fs::rename(&tmp, link).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("renaming {} over {}", tmp.display(), link.display())
    })
}

/// The target of symlink `link`; `None` when it does not exist.
pub fn read_link(link: &Path) -> Result<Option<String>, StageError> {
    match std::fs::read_link(link) {
        Ok(t) => Ok(Some(t.to_string_lossy().into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StageError::from(e).with_context(format!("reading link {}", link.display()))),
    }
}

/// Creates the symlink `link` pointing at `target` (host build).
#[cfg(not(all(target_arch = "wasm32", target_os = "wasi")))]
pub fn symlink(target: &str, link: &Path) -> Result<(), StageError> {
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("creating the link {} -> {target}", link.display()))
}

/// Creates the symlink `link` pointing at `target` (inside the component):
/// `symlink-at` on the preopen whose guest path is the longest prefix of
/// `link` (e.g. `/workspace`).
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
pub fn symlink(target: &str, link: &Path) -> Result<(), StageError> {
    let dirs = wasip2::filesystem::preopens::get_directories();
    let mut best: Option<(&wasip2::filesystem::types::Descriptor, PathBuf)> = None;
    let mut best_len = 0;
    for (desc, name) in &dirs {
        if let Ok(rest) = link.strip_prefix(name) {
            if best.is_none() || name.len() > best_len {
                best_len = name.len();
                best = Some((desc, rest.to_path_buf()));
            }
        }
    }
    let Some((desc, rel)) = best else {
        return Err(StageError::failed(format!(
            "cannot create the link {}: it is not under a preopened directory (grant \
             `workspace: write`)",
            link.display()
        )));
    };
    let rel = rel.to_string_lossy().into_owned();
    desc.symlink_at(target, &rel).map_err(|e| {
        let msg = format!("creating the link {} -> {target}: {e:?}", link.display());
        if matches!(
            e,
            wasip2::filesystem::types::ErrorCode::Access
                | wasip2::filesystem::types::ErrorCode::NotPermitted
                | wasip2::filesystem::types::ErrorCode::ReadOnly
        ) {
            sluice_sdk::error(&msg);
            StageError::denied(sluice_sdk::Capability::WorkspaceWrite)
        } else {
            StageError::failed(msg)
        }
    })
}

/// Removes a file, link or directory tree; nothing when it does not exist.
pub fn remove_tree(path: &Path) -> Result<(), StageError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))
        }
        Ok(_) => std::fs::remove_file(path).with_context(|| format!("removing {}", path.display())),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_symlink_switches_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("slots/blue");
        replace_symlink(&link, "../releases/1").expect("first");
        assert_eq!(
            read_link(&link).expect("read").as_deref(),
            Some("../releases/1")
        );
        replace_symlink(&link, "../releases/2").expect("second");
        assert_eq!(
            read_link(&link).expect("read").as_deref(),
            Some("../releases/2")
        );
        let names: Vec<_> = std::fs::read_dir(dir.path().join("slots"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn json_roundtrip_and_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a/b.json");
        assert_eq!(read_json::<serde_json::Value>(&p).expect("missing"), None);
        write_json(&p, &serde_json::json!({"x": 1})).expect("write");
        let v: serde_json::Value = read_json(&p).expect("read").expect("some");
        assert_eq!(v["x"], 1);
    }
}
