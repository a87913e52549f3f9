//! Selecting the files to check: walk the workspace, skip excluded
//! directories without entering them, keep files under the configured roots
//! that match `include` and not `exclude`, and (unless `gitignore: false`)
//! skip what the project's `.gitignore`, `.ignore` and `.git/info/exclude`
//! files ignore, with git's precedence (a deeper file wins, `!` re-includes).
//!
//! The walk is the `ignore` crate's sequential walker (its parallel one
//! needs threads, which `wasm32-wasip2` lacks). It always starts at the
//! workspace root, so a `.gitignore` there applies to `paths: [src]` too,
//! and never reads ignore files above the workspace (they are not the
//! project's). Ignore files are read whether or not `.git` exists: a CI
//! checkout may come without it. The user's global git excludes are not
//! read (they are on the host, not in the workspace).
//!
//! Symbolic links are never followed (a link to a directory could loop or
//! leave the workspace, and git tracks the link, not its target). Entries
//! are visited in name order so that findings come out the same every run.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use globset::GlobSet;
use ignore::WalkBuilder;

/// Compiled include / exclude globs, matched against `/`-separated paths
/// relative to the workspace root, and whether ignore files are respected.
#[derive(Debug, Clone)]
pub struct Selection {
    include: GlobSet,
    exclude: GlobSet,
    prune: GlobSet,
    ignore_files: bool,
}

impl Selection {
    /// `prune` matches directories that are skipped whole. Ignore files are
    /// respected unless [`Selection::respect_ignore_files`] says otherwise.
    pub fn new(include: GlobSet, exclude: GlobSet, prune: GlobSet) -> Self {
        Self {
            include,
            exclude,
            prune,
            ignore_files: true,
        }
    }

    /// Whether `.gitignore`, `.ignore` and `.git/info/exclude` apply.
    pub fn respect_ignore_files(mut self, yes: bool) -> Self {
        self.ignore_files = yes;
        self
    }

    /// Whether the file at `rel` is checked (ignore files aside).
    pub fn wants_file(&self, rel: &str) -> bool {
        self.include.is_match(rel) && !self.exclude.is_match(rel)
    }

    /// Whether the directory at `rel` is entered (ignore files aside).
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
    /// Paths that could not be read (or ignore files with bad lines), with
    /// the reason (logged, not fatal).
    pub unreadable: Vec<(String, String)>,
}

/// Walks each of `roots` (relative to `workspace`; `""` is the workspace
/// itself) and returns the selected files.
///
/// A root that does not exist is an error: a typo in `with.paths` must not
/// silently check nothing. A root naming a file is checked if it matches
/// `include`/`exclude`, even when an ignore file ignores it (it was asked
/// for by name); files under a root directory obey the ignore files.
pub fn walk(workspace: &Path, roots: &[String], sel: &Selection) -> io::Result<Walk> {
    let mut out = Walk::default();
    let mut dirs = Vec::new();
    for root in roots {
        let path = if root.is_empty() {
            workspace.to_path_buf()
        } else {
            workspace.join(root)
        };
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            dirs.push(root.clone());
        } else if meta.is_file() && sel.wants_file(root) {
            out.files.push(Entry {
                rel: root.clone(),
                path,
                size: meta.len(),
            });
        }
    }
    if !dirs.is_empty() {
        visit(workspace, dirs, sel, &mut out);
    }
    out.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.files.dedup_by(|a, b| a.rel == b.rel);
    Ok(out)
}

/// One walk from the workspace root, entering only directories on the way
/// to or inside one of `dirs`.
fn visit(workspace: &Path, dirs: Vec<String>, sel: &Selection, out: &mut Walk) {
    let ignore_files = sel.ignore_files;
    let filter_sel = sel.clone();
    let filter_root = workspace.to_path_buf();
    let filter_dirs = dirs.clone();
    let mut builder = WalkBuilder::new(workspace);
    builder
        .standard_filters(false)
        .hidden(false)
        .parents(false)
        .follow_links(false)
        .git_global(false)
        .ignore(ignore_files)
        .git_ignore(ignore_files)
        .git_exclude(ignore_files)
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |e| {
            if e.depth() == 0 || !e.file_type().is_some_and(|t| t.is_dir()) {
                return true;
            }
            let rel = relative(&filter_root, e.path());
            // Directories above a root are passed through; the excludes
            // apply inside the roots (a root named explicitly is entered).
            if filter_dirs.iter().any(|d| is_ancestor(&rel, d)) {
                return true;
            }
            filter_dirs.iter().any(|d| is_within(&rel, d)) && filter_sel.enters_dir(&rel)
        });
    for item in builder.build() {
        let entry = match item {
            Ok(e) => e,
            Err(e) => {
                let at = error_path(&e)
                    .map(|p| relative(workspace, p))
                    .unwrap_or_default();
                out.unreadable.push((display(&at), e.to_string()));
                continue;
            }
        };
        // A directory whose ignore file has a bad line carries the error;
        // the file's other lines still apply.
        if let Some(e) = entry.error() {
            let at = error_path(e)
                .map(|p| relative(workspace, p))
                .unwrap_or_else(|| relative(workspace, entry.path()));
            out.unreadable.push((display(&at), e.to_string()));
        }
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let rel = relative(workspace, entry.path());
        if !dirs.iter().any(|d| is_within(&rel, d)) || !sel.wants_file(&rel) {
            continue;
        }
        match entry.metadata() {
            Ok(meta) => out.files.push(Entry {
                rel,
                path: entry.into_path(),
                size: meta.len(),
            }),
            Err(e) => out.unreadable.push((rel, e.to_string())),
        }
    }
}

/// `/`-separated path of `path` relative to `root` (`""` for the root).
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// `rel` is `dir` or inside it (`""` is the workspace root).
fn is_within(rel: &str, dir: &str) -> bool {
    dir.is_empty()
        || rel == dir
        || rel
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `rel` is a directory strictly above `dir`.
fn is_ancestor(rel: &str, dir: &str) -> bool {
    dir.strip_prefix(rel)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// The path an `ignore` error is about, when it names one.
fn error_path(e: &ignore::Error) -> Option<&Path> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Partial(errs) => errs.iter().find_map(error_path),
        _ => None,
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

    fn write_all(dir: &Path, files: &[(&str, &str)]) {
        for (f, text) in files {
            let p = dir.join(f);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent).expect("mkdir");
            }
            fs::write(&p, text).expect("write");
        }
    }

    /// A project with ignore files at several levels and the caches Python
    /// tools leave behind.
    fn ignored_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        write_all(
            dir.path(),
            &[
                (".gitignore", "build/\n*.log\n!keep.log\n/generated.json\n"),
                (".ignore", "scratch/\n"),
                (".git/info/exclude", "local-notes.txt\n"),
                ("app.py", "x\n"),
                ("keep.log", "x\n"),
                ("debug.log", "x \n"),
                ("generated.json", "{"),
                ("local-notes.txt", "x \n"),
                ("build/out.json", "{"),
                ("scratch/try.yaml", "a: ["),
                ("sub/.gitignore", "local.txt\n"),
                ("sub/local.txt", "x \n"),
                ("sub/kept.txt", "x\n"),
                ("sub/generated.json", "{}\n"),
                ("sub/deeper/run.log", "x\n"),
                (".pytest_cache/v/cache/nodeids", "[\n"),
                (".pytest_cache/README.md", "x \n"),
                (".hypothesis/examples/a", "x \n"),
                (".ruff_cache/0.1/x", "x \n"),
                (".mypy_cache/3.12/x.json", "{"),
                ("pkg/__pycache__/m.txt", "x \n"),
                (".tox/py312/log.txt", "x \n"),
                (".nox/s/x.txt", "x \n"),
            ],
        );
        dir
    }

    #[test]
    fn ignore_files_and_tool_caches_are_respected() {
        let t = ignored_tree();
        assert_eq!(
            names(t.path(), "{}"),
            [
                ".gitignore",
                ".ignore",
                "app.py",
                "keep.log",
                "sub/.gitignore",
                "sub/generated.json",
                "sub/kept.txt",
            ],
            "`/generated.json` is anchored to the root; `!keep.log` re-includes"
        );
        // A root below the workspace still obeys the root's .gitignore.
        assert_eq!(
            names(t.path(), r#"{"paths": ["sub"]}"#),
            ["sub/.gitignore", "sub/generated.json", "sub/kept.txt"]
        );
        // A file asked for by name is checked even when it is ignored.
        assert_eq!(
            names(t.path(), r#"{"paths": ["debug.log"]}"#),
            ["debug.log"]
        );
    }

    #[test]
    fn gitignore_false_checks_ignored_files_but_keeps_default_excludes() {
        let t = ignored_tree();
        let all = names(t.path(), r#"{"gitignore": false}"#);
        for f in [
            "build/out.json",
            "debug.log",
            "generated.json",
            "local-notes.txt",
            "scratch/try.yaml",
            "sub/local.txt",
            "sub/deeper/run.log",
        ] {
            assert!(all.contains(&f.to_string()), "{f} missing from {all:?}");
        }
        assert!(
            !all.iter().any(|f| f.contains("cache")
                || f.starts_with(".") && !f.starts_with(".git") && !f.starts_with(".ignore")),
            "{all:?}"
        );
        let everything = names(
            t.path(),
            r#"{"gitignore": false, "default-excludes": false}"#,
        );
        assert!(
            everything.contains(&".pytest_cache/README.md".to_string()),
            "{everything:?}"
        );
    }

    #[test]
    fn external_reports_are_not_checked() {
        let t = ignored_tree();
        write_all(
            t.path(),
            &[("reports/flake8.json", "{}\n{}\n"), ("ruff.sarif", "{}")],
        );
        let n = names(
            t.path(),
            r#"{"external": [
                {"command": ["flake8"], "format": "sarif", "output": "reports/flake8.json"},
                {"command": ["ruff"], "format": "sarif", "output": "./ruff.sarif"}]}"#,
        );
        assert!(
            !n.iter()
                .any(|f| f == "reports/flake8.json" || f == "ruff.sarif"),
            "{n:?}"
        );
    }

    #[test]
    fn a_bad_ignore_line_is_reported_not_fatal() {
        let t = ignored_tree();
        write_all(t.path(), &[("sub/.gitignore", "local.txt\n[z-a]\n")]);
        let s = settings("{}");
        let w = walk(t.path(), &s.paths, &s.selection).expect("walk");
        assert!(
            w.unreadable.iter().any(|(_, e)| e.contains("[z-a]")),
            "{:?}",
            w.unreadable
        );
        let files: Vec<&str> = w.files.iter().map(|e| e.rel.as_str()).collect();
        assert!(
            !files.contains(&"sub/local.txt"),
            "the valid line still applies: {files:?}"
        );
    }
}
