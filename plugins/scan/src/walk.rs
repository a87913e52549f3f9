//! Walking the workspace: which files the scan reads.
//!
//! Paths are matched relative to the scanned root with `/` separators.
//! Globs use `globset` syntax with `*` not crossing `/` (use `**` for
//! any depth): `src/**/*.rs`, `**/*.env`, `docs/**`. A directory whose path
//! matches an `exclude` glob (or the glob minus a trailing `/**`) is not
//! entered at all. `.git`, `.hg`, `.svn` and `.sluice` directories are never
//! entered, and symbolic links are never followed. A directory's files are
//! visited before its subdirectories, each in name order, so results are
//! deterministic.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// Directory names that are never scanned (VCS metadata, sluice's state).
pub const ALWAYS_SKIPPED_DIRS: &[&str] = &[".git", ".hg", ".svn", ".sluice"];

/// A glob that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("entry {index} (`{pattern}`) is not a valid glob: {source}")]
pub struct GlobError {
    /// Position in its list.
    pub index: usize,
    /// The pattern as written.
    pub pattern: String,
    /// The parse error.
    #[source]
    pub source: globset::Error,
}

/// Compiled `include` / `exclude` globs.
#[derive(Debug, Clone)]
pub struct PathFilter {
    include: GlobSet,
    exclude: GlobSet,
}

impl PathFilter {
    /// Compiles the globs. `Err((is_exclude, error))` names the list and
    /// entry that did not compile.
    ///
    /// ```
    /// use sluice_plugin_scan::walk::PathFilter;
    /// let f = PathFilter::new(&["**".into()], &["**/node_modules/**".into()]).unwrap();
    /// assert!(f.includes_file("src/main.rs"));
    /// assert!(!f.includes_file("web/node_modules/x/index.js"));
    /// assert!(f.prunes_dir("web/node_modules"));
    /// ```
    pub fn new(include: &[String], exclude: &[String]) -> Result<PathFilter, (bool, GlobError)> {
        let include = build(include, false).map_err(|e| (false, e))?;
        let exclude = build(exclude, true).map_err(|e| (true, e))?;
        Ok(PathFilter { include, exclude })
    }

    /// Whether the file at `rel` is scanned.
    pub fn includes_file(&self, rel: &str) -> bool {
        self.include.is_match(rel) && !self.exclude.is_match(rel)
    }

    /// Whether the directory at `rel` is skipped with everything under it.
    pub fn prunes_dir(&self, rel: &str) -> bool {
        self.exclude.is_match(rel)
    }
}

fn build(patterns: &[String], exclude: bool) -> Result<GlobSet, GlobError> {
    let mut set = GlobSetBuilder::new();
    for (index, raw) in patterns.iter().enumerate() {
        let p = normalize(raw);
        let compile = |p: &str| -> Result<Glob, GlobError> {
            GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|source| GlobError {
                    index,
                    pattern: raw.clone(),
                    source,
                })
        };
        set.add(compile(&p)?);
        if exclude {
            // `dir/**` also names the directory itself, so it can be pruned.
            if let Some(dir) = p.strip_suffix("/**").filter(|d| !d.is_empty()) {
                set.add(compile(dir)?);
            }
        }
    }
    set.build().map_err(|source| GlobError {
        index: 0,
        pattern: patterns.join(", "),
        source,
    })
}

/// `./a/b/` → `a/b`.
fn normalize(pattern: &str) -> String {
    let p = pattern.trim();
    let p = p.strip_prefix("./").unwrap_or(p);
    let p = p.trim_start_matches('/');
    let p = if p.len() > 1 {
        p.trim_end_matches('/')
    } else {
        p
    };
    p.to_string()
}

/// A file the walk found.
#[derive(Debug, Clone)]
pub struct FileEntry {
    /// Full path.
    pub path: PathBuf,
    /// Path relative to the root, `/`-separated.
    pub rel: String,
}

/// Walks `root`, calling `visit` for every regular file the filter
/// includes, except under the directories in `skip` (absolute paths, e.g.
/// the advisory database). Returns warnings for directories it could not
/// read.
pub fn walk(
    root: &Path,
    filter: &PathFilter,
    skip: &[PathBuf],
    mut visit: impl FnMut(FileEntry),
) -> Result<Vec<String>, std::io::Error> {
    let mut warnings = Vec::new();
    // Fail loudly if the root itself is unreadable (e.g. no workspace grant).
    let first = std::fs::read_dir(root)?;
    let mut stack: Vec<(PathBuf, String, Option<std::fs::ReadDir>)> =
        vec![(root.to_path_buf(), String::new(), Some(first))];
    while let Some((dir, rel_dir, opened)) = stack.pop() {
        let reader = match opened {
            Some(r) => r,
            None => match std::fs::read_dir(&dir) {
                Ok(r) => r,
                Err(e) => {
                    warnings.push(format!("cannot list {rel_dir}/: {e}"));
                    continue;
                }
            },
        };
        let mut entries: Vec<_> = reader.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if rel_dir.is_empty() {
                name.clone()
            } else {
                format!("{rel_dir}/{name}")
            };
            let Ok(kind) = entry.file_type() else {
                warnings.push(format!("cannot stat {rel}"));
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                if ALWAYS_SKIPPED_DIRS.contains(&name.as_str())
                    || filter.prunes_dir(&rel)
                    || skip.iter().any(|s| same_path(s, &path))
                {
                    continue;
                }
                subdirs.push((path, rel, None));
            } else if kind.is_file() && filter.includes_file(&rel) {
                // No stat here: the reader takes the size from the open
                // handle, which saves a path lookup per file (costly in a
                // sandbox, where every lookup is a host call).
                visit(FileEntry { path, rel });
            }
        }
        // Depth-first in name order: push in reverse so the first pops first.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(warnings)
}

/// Path equality ignoring `.` components and trailing separators.
fn same_path(a: &Path, b: &Path) -> bool {
    a.components().eq(b.components())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> PathFilter {
        let inc: Vec<String> = include.iter().map(|s| s.to_string()).collect();
        let exc: Vec<String> = exclude.iter().map(|s| s.to_string()).collect();
        PathFilter::new(&inc, &exc).unwrap_or_else(|(_, e)| panic!("{e}"))
    }

    #[test]
    fn star_does_not_cross_directories() {
        let f = filter(&["*.env"], &[]);
        assert!(f.includes_file("app.env"));
        assert!(!f.includes_file("config/app.env"));
        let f = filter(&["**/*.env"], &[]);
        assert!(f.includes_file("config/app.env"));
        assert!(f.includes_file("app.env"));
    }

    #[test]
    fn excludes_prune_directories() {
        let f = filter(
            &["**"],
            &["**/node_modules/**", "tests/fixtures", "./build/"],
        );
        assert!(f.prunes_dir("node_modules"));
        assert!(f.prunes_dir("web/node_modules"));
        assert!(f.prunes_dir("tests/fixtures"));
        assert!(f.prunes_dir("build"));
        assert!(!f.prunes_dir("tests"));
        assert!(!f.includes_file("web/node_modules/a.js"));
        assert!(f.includes_file("web/src/a.js"));
    }

    #[test]
    fn bad_globs_name_their_list_and_entry() {
        let r = PathFilter::new(&["**".into()], &["ok/**".into(), "a[".into()]);
        match r {
            Err((true, e)) => assert_eq!((e.index, e.pattern.as_str()), (1, "a[")),
            other => panic!("expected an exclude error, got {other:?}"),
        }
    }

    #[test]
    fn walks_in_order_and_skips_vcs_and_excluded_dirs() {
        let dir = std::env::temp_dir().join(format!("sluice-scan-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for f in [
            "b.txt",
            "a/z.txt",
            "a/b/c.txt",
            ".git/config",
            "skip/x.txt",
            "db/adv.json",
        ] {
            let p = dir.join(f);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(&p, "x").unwrap_or_else(|e| panic!("{e}"));
        }
        let mut seen = Vec::new();
        let warnings = walk(
            &dir,
            &filter(&["**"], &["skip/**"]),
            &[dir.join("db")],
            |e| seen.push(e.rel),
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert!(warnings.map(|w| w.is_empty()).unwrap_or(false));
        // A directory's files first, then its subdirectories, each in name order.
        assert_eq!(seen, vec!["b.txt", "a/z.txt", "a/b/c.txt"]);
    }

    #[test]
    fn an_unreadable_root_is_an_error() {
        let f = filter(&["**"], &[]);
        assert!(walk(Path::new("/definitely/not/here"), &f, &[], |_| {}).is_err());
    }
}
