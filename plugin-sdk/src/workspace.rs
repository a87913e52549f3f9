//! Finding files in the workspace by path or glob (`*` within a directory,
//! `**` across), and telling the files a command wrote from ones that were
//! there before it ran. Shared by stages that collect reports or outputs.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use crate::StageError;
use glob::{MatchOptions, Pattern};

/// A file in the workspace that a pattern matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Path relative to the workspace root, `/`-separated.
    pub rel: String,
    /// Full path (under the workspace root).
    pub path: PathBuf,
}

/// `*` and `?` never cross a `/`; `**` does.
const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// Checks that `pattern` (the value of config key `key`) is a valid glob
/// relative to the workspace that cannot leave it.
pub fn check_pattern(key: &str, pattern: &str) -> Result<(), StageError> {
    if pattern.trim().is_empty() {
        return Err(StageError::invalid_config(format!(
            "{key}: empty; give a path or glob relative to the workspace, e.g. `dist/app.tar.gz` or `reports/*.xml`"
        )));
    }
    let path = Path::new(pattern);
    if path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return Err(StageError::invalid_config(format!(
            "{key}: `{pattern}` must be relative to the workspace and must not contain `..`; \
             write it as seen from the workspace root, e.g. `dist/app.tar.gz` or `reports/*.xml`"
        )));
    }
    Pattern::new(pattern).map_err(|e| {
        StageError::invalid_config(format!(
            "{key}: `{pattern}` is not a valid glob ({}); escape `[`, `]`, `*` and `?` as `[[]`, `[]]`, `[*]`, `[?]`",
            e.msg
        ))
    })?;
    Ok(())
}

/// Regular files under `root` matching `pattern` (checked with
/// [`check_pattern`]), sorted by path.
pub fn find(root: &Path, pattern: &str) -> Result<Vec<Found>, StageError> {
    let full = format!(
        "{}/{}",
        Pattern::escape(&root.to_string_lossy()),
        pattern.trim_start_matches("./")
    );
    let paths = glob::glob_with(&full, OPTIONS)
        .map_err(|e| StageError::invalid_config(format!("`{pattern}`: {}", e.msg)))?;
    let mut found = Vec::new();
    for entry in paths {
        // Unreadable directories are skipped, as a shell glob would.
        let Ok(path) = entry else { continue };
        if !path.is_file() {
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let rel = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        found.push(Found { rel, path });
    }
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    found.dedup_by(|a, b| a.rel == b.rel);
    Ok(found)
}

/// What identifies one version of a file: modification time and size.
type Stamp = (Option<SystemTime>, u64);

/// The files some patterns matched at one moment, with their stamps.
#[derive(Debug, Default, Clone)]
pub struct Snapshot(BTreeMap<PathBuf, Stamp>);

impl Snapshot {
    /// Records every file under `root` that one of `patterns` matches.
    pub fn take(root: &Path, patterns: &[String]) -> Result<Self, StageError> {
        let mut map = BTreeMap::new();
        for p in patterns {
            for f in find(root, p)? {
                if let Some(stamp) = stamp(&f.path) {
                    map.insert(f.path, stamp);
                }
            }
        }
        Ok(Self(map))
    }

    /// True when `path` is new or changed since the snapshot was taken.
    pub fn is_fresh(&self, path: &Path) -> bool {
        match (self.0.get(path), stamp(path)) {
            (Some(before), Some(now)) => *before != now,
            _ => true,
        }
    }
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok(), meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_must_stay_in_the_workspace() {
        assert!(check_pattern("with.files", "reports/*.xml").is_ok());
        assert!(check_pattern("with.files", "**/junit.xml").is_ok());
        for bad in ["/etc/passwd", "../x.xml", "a/../../x", "", "a/[b.xml"] {
            let e = check_pattern("with.files", bad).expect_err(bad);
            assert!(matches!(e, StageError::InvalidConfig(_)), "{bad}: {e}");
            assert!(e.message().starts_with("with.files: "), "{e}");
        }
    }

    #[test]
    fn finds_files_sorted_and_tracks_freshness() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        std::fs::create_dir_all(root.join("reports/unit"))?;
        std::fs::create_dir_all(root.join("reports/dir.xml"))?;
        std::fs::write(root.join("reports/b.xml"), "b")?;
        std::fs::write(root.join("reports/a.xml"), "a")?;
        std::fs::write(root.join("reports/unit/c.xml"), "c")?;
        let rels = |p: &str| -> Result<Vec<String>, StageError> {
            Ok(find(root, p)?.into_iter().map(|f| f.rel).collect())
        };
        assert_eq!(rels("reports/*.xml")?, ["reports/a.xml", "reports/b.xml"]);
        assert_eq!(
            rels("reports/**/*.xml")?,
            ["reports/a.xml", "reports/b.xml", "reports/unit/c.xml"]
        );
        assert_eq!(rels("./reports/a.xml")?, ["reports/a.xml"]);
        assert!(rels("missing.xml")?.is_empty());

        let snap = Snapshot::take(root, &["reports/*.xml".to_string()])?;
        assert!(!snap.is_fresh(&root.join("reports/a.xml")));
        std::fs::write(root.join("reports/a.xml"), "changed")?;
        assert!(snap.is_fresh(&root.join("reports/a.xml")));
        assert!(snap.is_fresh(&root.join("reports/new.xml")));
        Ok(())
    }
}
