//! Selecting the files to check: walk the configured roots under the
//! workspace, skip excluded directories without entering them, keep files
//! that match `include` and not `exclude`.
//!
//! Symbolic links are never followed (a link to a directory could loop or
//! leave the workspace, and git tracks the link, not its target). Entries
//! are visited in name order so that findings come out the same every run.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use globset::GlobSet;

/// Compiled include / exclude globs, matched against `/`-separated paths
/// relative to the workspace root.
#[derive(Debug, Clone)]
pub struct Selection {
    include: GlobSet,
    exclude: GlobSet,
    prune: GlobSet,
}

impl Selection {
    /// `prune` matches directories that are skipped whole.
    pub fn new(include: GlobSet, exclude: GlobSet, prune: GlobSet) -> Self {
        Self {
            include,
            exclude,
            prune,
        }
    }

    /// Whether the file at `rel` is checked.
    pub fn wants_file(&self, rel: &str) -> bool {
        self.include.is_match(rel) && !self.exclude.is_match(rel)
    }

    /// Whether the directory at `rel` is entered.
    pub fn enters_dir(&self, rel: &str) -> bool {
        !self.prune.is_match(rel) && !self.exclude.is_match(rel)
    }
}

/// A file chosen for checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the workspace root, `/`-separated.
    pub rel: String,
    /// Full path (under the guest's `/workspace`).
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
}

/// What the walk found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Files to check, in path order, each once.
    pub files: Vec<Entry>,
    /// Paths that could not be read, with the reason (logged, not fatal).
    pub unreadable: Vec<(String, io::Error)>,
}

/// Walks each of `roots` (relative to `workspace`; `""` is the workspace
/// itself) and returns the selected files.
///
/// A root that does not exist is an error: a typo in `with.paths` must not
/// silently check nothing.
pub fn walk(workspace: &Path, roots: &[String], sel: &Selection) -> io::Result<Walk> {
    let mut out = Walk::default();
    for root in roots {
        let path = if root.is_empty() {
            workspace.to_path_buf()
        } else {
            workspace.join(root)
        };
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            visit_dir(&path, root, sel, &mut out);
        } else if meta.is_file() && sel.wants_file(root) {
            out.files.push(Entry {
                rel: root.clone(),
                path,
                size: meta.len(),
            });
        }
    }
    out.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.files.dedup_by(|a, b| a.rel == b.rel);
    Ok(out)
}

fn visit_dir(dir: &Path, rel: &str, sel: &Selection, out: &mut Walk) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.unreadable.push((display(rel), e));
            return;
        }
    };
    let mut children: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => children.push((e.file_name().to_string_lossy().into_owned(), e.path())),
            Err(e) => out.unreadable.push((display(rel), e)),
        }
    }
    children.sort();
    for (name, path) in children {
        let child_rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                out.unreadable.push((child_rel, e));
                continue;
            }
        };
        if meta.is_dir() {
            if sel.enters_dir(&child_rel) {
                visit_dir(&path, &child_rel, sel, out);
            }
        } else if meta.is_file() && sel.wants_file(&child_rel) {
            out.files.push(Entry {
                rel: child_rel,
                path,
                size: meta.len(),
            });
        }
    }
}

fn display(rel: &str) -> String {
    if rel.is_empty() {
        ".".to_string()
    } else {
        rel.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Settings};

    fn settings(json: &str) -> Settings {
        let ctx = sluice_sdk::Context::for_test("lint", json);
        let cfg: Config = ctx.config().expect("config");
        Settings::from_config(cfg).expect("settings")
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in [
            "a.yaml",
            "src/app.py",
            "src/deep/x.json",
            "target/debug/junk.txt",
            "web/node_modules/pkg/index.js",
            ".git/config",
            ".sluice/runs/x.json",
            "dist/app.js",
            "docs/dist/readme.md",
        ] {
            let p = dir.path().join(f);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent).expect("mkdir");
            }
            fs::write(&p, "x\n").expect("write");
        }
        dir
    }

    fn names(dir: &Path, json: &str) -> Vec<String> {
        let s = settings(json);
        walk(dir, &s.paths, &s.selection)
            .expect("walk")
            .files
            .into_iter()
            .map(|e| e.rel)
            .collect()
    }

    #[test]
    fn default_excludes_skip_build_and_vcs_dirs() {
        let t = tree();
        assert_eq!(
            names(t.path(), "{}"),
            [
                "a.yaml",
                "docs/dist/readme.md",
                "src/app.py",
                "src/deep/x.json"
            ]
        );
    }

    #[test]
    fn include_exclude_and_paths() {
        let t = tree();
        assert_eq!(
            names(t.path(), r#"{"include": ["**/*.json"]}"#),
            ["src/deep/x.json"]
        );
        assert_eq!(
            names(t.path(), r#"{"include": ["*.yaml", "src/*"]}"#),
            ["a.yaml", "src/app.py"]
        );
        assert_eq!(
            names(t.path(), r#"{"exclude": ["src/deep/**", "docs/**"]}"#),
            ["a.yaml", "src/app.py"]
        );
        assert_eq!(
            names(t.path(), r#"{"paths": ["src"]}"#),
            ["src/app.py", "src/deep/x.json"]
        );
        assert_eq!(names(t.path(), r#"{"paths": ["a.yaml", "."]}"#).len(), 4);
        let all = names(t.path(), r#"{"default-excludes": false}"#);
        assert!(
            all.contains(&"target/debug/junk.txt".to_string()),
            "{all:?}"
        );
        assert!(all.contains(&".git/config".to_string()), "{all:?}");
    }

    #[test]
    fn a_missing_root_is_an_error() {
        let t = tree();
        let s = settings(r#"{"paths": ["nope"]}"#);
        assert!(walk(t.path(), &s.paths, &s.selection).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_not_followed() {
        let t = tree();
        std::os::unix::fs::symlink(t.path().join("src"), t.path().join("loop")).expect("symlink");
        std::os::unix::fs::symlink(t.path().join("a.yaml"), t.path().join("b.yaml"))
            .expect("symlink");
        let n = names(t.path(), "{}");
        assert!(
            !n.iter().any(|p| p.starts_with("loop") || p == "b.yaml"),
            "{n:?}"
        );
    }
}
