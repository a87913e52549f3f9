//! Installing a release: `<root>/releases/<version>/` from an artifact
//! file. A `.tar.gz` / `.tgz` (or `.tar`) is unpacked with pure-Rust
//! flate2 + tar, refusing any entry that would land outside the release
//! directory; any other file is copied in under its own name. The release
//! is built in a temporary directory and renamed into place, and
//! `.release.json` records where it came from.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use sluice_sdk::{ResultExt, StageError};

use crate::fsutil;
use crate::state::{now_rfc3339, ReleaseInfo};

/// The artifact file a release is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    /// Where to read it (e.g. `ctx.input_path(artifact)`).
    pub path: PathBuf,
    /// Its name as recorded (`build/out/app.tgz`).
    pub name: String,
    /// `sha256:<hex>`; computed from the file when empty.
    pub digest: String,
    /// Size in bytes (0 = unknown).
    pub size: u64,
}

impl ArtifactFile {
    /// An input artifact of a stage.
    pub fn from_input(ctx: &sluice_sdk::Context, a: &sluice_sdk::Artifact) -> Self {
        Self {
            path: ctx.input_path(a),
            name: format!("{}/{}", a.stage, a.name),
            digest: a.digest.clone(),
            size: a.size,
        }
    }

    /// A plain file; digest and size are computed.
    pub fn from_path(path: impl Into<PathBuf>) -> Result<Self, StageError> {
        let path = path.into();
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            digest: sha256_digest(&bytes),
            size: bytes.len() as u64,
            path,
        })
    }

    /// The file name part of [`name`](Self::name).
    pub fn file_name(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// How an artifact is turned into a release directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// gzip-compressed tar.
    TarGz,
    /// plain tar.
    Tar,
    /// any other file: copied in.
    File,
}

/// Packing guessed from the file name.
pub fn packing(name: &str) -> Packing {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        Packing::TarGz
    } else if lower.ends_with(".tar") {
        Packing::Tar
    } else {
        Packing::File
    }
}

/// Installs `artifact` as `<releases>/<version>`. If that release already
/// exists with the same digest it is kept as it is (deploys are
/// re-runnable); with another digest it is replaced.
pub fn install(
    releases: &Path,
    version: &str,
    artifact: &ArtifactFile,
) -> Result<ReleaseInfo, StageError> {
    crate::check_name(version).map_err(|m| StageError::invalid_config(format!("version {m}")))?;
    let dest = releases.join(version);
    let meta_path = dest.join(".release.json");
    let bytes = std::fs::read(&artifact.path)
        .with_context(|| format!("reading the artifact {}", artifact.name))?;
    let digest = if artifact.digest.is_empty() {
        sha256_digest(&bytes)
    } else {
        artifact.digest.clone()
    };
    if let Some(existing) = fsutil::read_json::<ReleaseInfo>(&meta_path)? {
        if existing.digest == digest {
            return Ok(existing);
        }
    }
    std::fs::create_dir_all(releases)
        .with_context(|| format!("creating {}", releases.display()))?;
    let tmp = releases.join(format!(".{version}.installing-{}", fsutil::unique()));
    fsutil::remove_tree(&tmp)?;
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let result = match packing(&artifact.name) {
        Packing::TarGz => unpack(flate2::read::GzDecoder::new(&bytes[..]), &tmp),
        Packing::Tar => unpack(&bytes[..], &tmp),
        Packing::File => {
            let target = tmp.join(artifact.file_name());
            std::fs::write(&target, &bytes)
                .with_context(|| format!("copying the artifact to {}", target.display()))
        }
    };
    if let Err(e) = result {
        let _ = fsutil::remove_tree(&tmp);
        return Err(e.with_context(format!("installing {} as release {version}", artifact.name)));
    }
    let info = ReleaseInfo {
        version: version.to_string(),
        artifact: artifact.name.clone(),
        digest,
        deployed_at: now_rfc3339(),
    };
    fsutil::write_json(&tmp.join(".release.json"), &info)?;
    fsutil::remove_tree(&dest)?;
    std::fs::rename(&tmp, &dest)
        .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
    Ok(info)
}

/// Unpacks a tar stream into `dir`: directories and regular files only
/// (links and devices are skipped with a warning); an entry whose path is
/// absolute or contains `..` fails the install.
pub fn unpack(reader: impl Read, dir: &Path) -> Result<(), StageError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| StageError::failed(format!("reading the tar archive: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| StageError::failed(format!("reading the tar archive: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| StageError::failed(format!("a tar entry has a bad path: {e}")))?
            .into_owned();
        let rel = safe_relative(&raw)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dir.join(&rel);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&target)
                .with_context(|| format!("creating {}", target.display()))?;
        } else if kind.is_file() {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(|e| {
                StageError::failed(format!("reading {} from the tar: {e}", raw.display()))
            })?;
            std::fs::write(&target, bytes)
                .with_context(|| format!("writing {}", target.display()))?;
        } else if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            continue;
        } else {
            sluice_sdk::warn!(
                "skipping {} in the release archive: only files and directories are installed",
                raw.display()
            );
        }
    }
    Ok(())
}

/// `p` without `./`, refused when absolute or containing `..`.
fn safe_relative(p: &Path) -> Result<PathBuf, StageError> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => {
                return Err(StageError::failed(format!(
                    "the archive entry `{}` would be written outside the release directory; \
                     refusing to install it",
                    p.display()
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(enc);
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // set_path refuses `..`; write the raw name to test the check.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            h.set_cksum();
            b.append(&h, *data).expect("append");
        }
        b.into_inner().expect("tar").finish().expect("gz")
    }

    #[test]
    fn unpacks_tgz_and_records_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        let art = dir.path().join("app.tgz");
        std::fs::write(
            &art,
            tgz(&[("./app/main.py", b"print(1)\n"), ("VERSION", b"2\n")]),
        )
        .expect("write");
        let a = ArtifactFile::from_path(&art).expect("artifact");
        let releases = dir.path().join("releases");
        let info = install(&releases, "2.0.0", &a).expect("install");
        assert_eq!(info.digest, a.digest);
        assert_eq!(
            std::fs::read_to_string(releases.join("2.0.0/app/main.py")).expect("read"),
            "print(1)\n"
        );
        let meta: ReleaseInfo = fsutil::read_json(&releases.join("2.0.0/.release.json"))
            .expect("read")
            .expect("some");
        assert_eq!(meta.artifact, "app.tgz");
        // Idempotent.
        let again = install(&releases, "2.0.0", &a).expect("again");
        assert_eq!(again.deployed_at, info.deployed_at);
    }

    #[test]
    fn refuses_escaping_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let art = dir.path().join("evil.tar.gz");
        std::fs::write(&art, tgz(&[("../evil", b"x")])).expect("write");
        let a = ArtifactFile::from_path(&art).expect("artifact");
        let e = install(&dir.path().join("releases"), "1", &a).expect_err("escape");
        assert!(e.message().contains("outside the release directory"), "{e}");
        assert!(!dir.path().join("evil").exists());
        assert!(!dir.path().join("releases/1").exists());
    }

    #[test]
    fn copies_other_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let art = dir.path().join("app.pyz");
        std::fs::write(&art, b"zip").expect("write");
        let a = ArtifactFile::from_path(&art).expect("artifact");
        install(&dir.path().join("r"), "1.0", &a).expect("install");
        assert_eq!(
            std::fs::read(dir.path().join("r/1.0/app.pyz")).expect("read"),
            b"zip"
        );
        assert!(install(&dir.path().join("r"), "../x", &a).is_err());
    }
}
