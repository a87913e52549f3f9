//! Collecting the declared outputs: every file the `with.outputs` globs
//! match in the workspace is copied to `/artifacts/out/<same relative
//! path>` while its sha256 is computed, so the digest the stage reports is
//! the digest of the bytes it published.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sluice_sdk::{ResultExt, StageError};

use crate::files::{find, Found, Snapshot};
use crate::media::MediaTypes;

/// Names the stage or the runner write themselves at the root of the
/// output directory.
pub const RESERVED: &[&str] = &["build.json", "provenance.intoto.json"];

/// One published output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Output {
    /// Path relative to the workspace, and to `/artifacts/out`.
    pub name: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Media type.
    pub media_type: String,
}

/// Finds every output (each pattern must match at least one file), in
/// pattern order, then path order; a file matched twice is published once.
pub fn find_all(root: &Path, patterns: &[String]) -> Result<Vec<Found>, StageError> {
    let mut all: Vec<Found> = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let found = find(root, pattern)?;
        if found.is_empty() {
            return Err(StageError::failed(format!(
                "with.outputs[{i}]: no file matches `{pattern}` in the workspace after the build; \
                 check that the build commands write it there (paths are relative to the \
                 workspace root)"
            )));
        }
        for f in found {
            if RESERVED.contains(&f.rel.as_str()) {
                return Err(StageError::failed(format!(
                    "with.outputs[{i}]: `{}` would replace the `{}` the stage or the runner \
                     writes; move the file into a directory (e.g. `dist/{}`) or narrow the pattern",
                    f.rel, f.rel, f.rel
                )));
            }
            if !all.iter().any(|g| g.rel == f.rel) {
                all.push(f);
            }
        }
    }
    Ok(all)
}

/// Warns about outputs the commands did not rewrite (an old `dist/*.tar.gz`
/// from an earlier build is easy to publish by mistake).
pub fn warn_stale(found: &[Found], before: &Snapshot) {
    for f in found.iter().filter(|f| !before.is_fresh(&f.path)) {
        sluice_sdk::warn!(
            "{} was not rewritten by the build commands (it predates them); it is published as it is",
            f.rel
        );
    }
}

/// Copies `found` into `out_dir` (same relative paths), hashing on the way.
pub fn publish(
    found: &[Found],
    out_dir: &Path,
    media: &MediaTypes,
) -> Result<Vec<Output>, StageError> {
    found
        .iter()
        .map(|f| {
            let (digest, size) = copy_hashed(&f.path, &out_dir.join(&f.rel))
                .with_context(|| format!("publishing {}", f.rel))?;
            Ok(Output {
                name: f.rel.clone(),
                digest,
                size,
                media_type: media.of(&f.rel),
            })
        })
        .collect()
}

/// Streams `from` to `to` (creating parents) and returns
/// (`sha256:<hex>`, size).
fn copy_hashed(from: &Path, to: &Path) -> std::io::Result<(String, u64)> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut src = File::open(from)?;
    let mut dst = File::create(to)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        dst.write_all(chunk)?;
        size += n as u64;
    }
    dst.flush()?;
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_copies_with_digests() -> Result<(), Box<dyn std::error::Error>> {
        let ws = tempfile::tempdir()?;
        let out = tempfile::tempdir()?;
        std::fs::create_dir_all(ws.path().join("dist/sub"))?;
        std::fs::write(ws.path().join("dist/app.tar.gz"), b"abc")?;
        std::fs::write(ws.path().join("dist/sub/notes.txt"), b"")?;
        let found = find_all(ws.path(), &["dist/*.tar.gz".into(), "dist/**/*".into()])?;
        let names: Vec<&str> = found.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(names, ["dist/app.tar.gz", "dist/sub/notes.txt"]);
        let published = publish(&found, out.path(), &MediaTypes::default())?;
        assert_eq!(
            published[0],
            Output {
                name: "dist/app.tar.gz".into(),
                // sha256("abc")
                digest: "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                    .into(),
                size: 3,
                media_type: "application/gzip".into(),
            }
        );
        assert_eq!(published[1].size, 0);
        assert_eq!(published[1].media_type, "text/plain");
        assert_eq!(std::fs::read(out.path().join("dist/app.tar.gz"))?, b"abc");
        Ok(())
    }

    #[test]
    fn every_pattern_must_match_and_reserved_names_are_refused(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let ws = tempfile::tempdir()?;
        std::fs::write(ws.path().join("build.json"), b"{}")?;
        std::fs::write(ws.path().join("a.bin"), b"x")?;
        let e = find_all(ws.path(), &["a.bin".into(), "dist/*.whl".into()]).map(|_| ());
        assert!(e.is_err_and(|e| e
            .message()
            .starts_with("with.outputs[1]: no file matches `dist/*.whl`")));
        let e = find_all(ws.path(), &["*.json".into()]).map(|_| ());
        assert!(e.is_err_and(|e| e.message().contains("would replace the `build.json`")));
        Ok(())
    }
}
