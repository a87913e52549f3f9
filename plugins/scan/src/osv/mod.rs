//! The offline advisory database: a directory of OSV JSON files.
//!
//! [`AdvisoryDb::load`] reads every `*.json` file under a directory (any
//! nesting; one advisory per file, or a JSON array of advisories), skips
//! withdrawn advisories and files that are not OSV (with a warning), and
//! indexes the rest by ecosystem and package name.
//! [`AdvisoryDb::matches`] returns the advisories that affect one package
//! version, with severity and fix information.

pub mod api;
pub mod cache;
pub mod http;
pub mod model;
pub mod range;
pub mod source;
pub mod zip;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::severity::{self, CvssVersion, Severity};
use crate::version::Ecosystem;
pub use model::Advisory;

/// Largest advisory file read (the biggest real OSV records are < 1 MiB).
pub const MAX_ADVISORY_BYTES: u64 = 8 * 1024 * 1024;

/// Why the database could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum OsvError {
    /// The directory does not exist or is not a directory.
    #[error("`{}` is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// Listing a directory failed.
    #[error("cannot list `{}`: {source}", path.display())]
    List {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// An advisory that affects a package version.
#[derive(Debug, Clone)]
pub struct Match<'a> {
    /// The advisory.
    pub advisory: &'a Advisory,
    /// Its severity bucket.
    pub severity: Severity,
    /// The CVSS base score it was bucketed by, if any.
    pub score: Option<f64>,
    /// The lowest fixed version above the package's version.
    pub fixed: Option<String>,
    /// The last affected version, when the advisory names one instead of a fix.
    pub last_affected: Option<String>,
}

/// The loaded database.
#[derive(Debug, Default)]
pub struct AdvisoryDb {
    advisories: Vec<Advisory>,
    /// (ecosystem, normalized name) → (advisory index, affected index).
    index: HashMap<(Ecosystem, String), Vec<(usize, usize)>>,
    /// Problems met while loading (unreadable or non-OSV files).
    pub warnings: Vec<String>,
    /// Number of `.json` files read.
    pub files: usize,
}

impl AdvisoryDb {
    /// Loads every `*.json` file under `dir`.
    pub fn load(dir: &Path) -> Result<AdvisoryDb, OsvError> {
        if !dir.is_dir() {
            return Err(OsvError::NotADirectory(dir.to_path_buf()));
        }
        let mut db = AdvisoryDb::default();
        let mut pending = vec![dir.to_path_buf()];
        let mut files = Vec::new();
        while let Some(d) = pending.pop() {
            let entries = std::fs::read_dir(&d).map_err(|source| OsvError::List {
                path: d.clone(),
                source,
            })?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    pending.push(path);
                } else if kind.is_file() && path.extension().is_some_and(|e| e == "json") {
                    files.push(path);
                }
            }
        }
        files.sort();
        for path in files {
            db.files += 1;
            let shown = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            match std::fs::metadata(&path) {
                Ok(m) if m.len() > MAX_ADVISORY_BYTES => {
                    db.warnings.push(format!(
                        "advisory file {shown} is larger than {MAX_ADVISORY_BYTES} bytes; skipped"
                    ));
                    continue;
                }
                Err(e) => {
                    db.warnings
                        .push(format!("cannot read advisory file {shown}: {e}"));
                    continue;
                }
                Ok(_) => {}
            }
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    db.warnings
                        .push(format!("cannot read advisory file {shown}: {e}"));
                    continue;
                }
            };
            if let Err(e) = db.add_json(&text) {
                db.warnings
                    .push(format!("advisory file {shown} is not OSV JSON: {e}"));
            }
        }
        Ok(db)
    }

    /// Adds the advisories of one OSV JSON text (an object or an array).
    pub fn add_json(&mut self, text: &str) -> Result<usize, serde_json::Error> {
        let list = parse_file(text)?;
        let n = list.len();
        for a in list {
            self.add(a);
        }
        Ok(n)
    }

    /// Moves every advisory and warning of `other` into `self`. An
    /// advisory whose id is already loaded is not added twice (the same
    /// record often comes from two sources, e.g. a dump and the API).
    pub fn merge(&mut self, other: AdvisoryDb) {
        let known: std::collections::HashSet<String> =
            self.advisories.iter().map(|a| a.id.clone()).collect();
        for a in other.advisories {
            if !known.contains(&a.id) {
                self.add(a);
            }
        }
        self.warnings.extend(other.warnings);
        self.files += other.files;
    }

    /// A database of the given advisories (for tests and embedding).
    pub fn from_advisories(list: impl IntoIterator<Item = Advisory>) -> AdvisoryDb {
        let mut db = AdvisoryDb::default();
        for a in list {
            db.add(a);
        }
        db
    }

    fn add(&mut self, advisory: Advisory) {
        if advisory.withdrawn.is_some() {
            return;
        }
        let i = self.advisories.len();
        for (j, affected) in advisory.affected.iter().enumerate() {
            let Some(pkg) = &affected.package else {
                continue;
            };
            let Some(eco) = Ecosystem::from_osv(&pkg.ecosystem) else {
                continue;
            };
            self.index
                .entry((eco, eco.normalize_name(&pkg.name)))
                .or_default()
                .push((i, j));
        }
        self.advisories.push(advisory);
    }

    /// Number of advisories loaded (withdrawn ones excluded).
    pub fn len(&self) -> usize {
        self.advisories.len()
    }

    /// Whether no advisory was loaded.
    pub fn is_empty(&self) -> bool {
        self.advisories.is_empty()
    }

    /// The advisories affecting `name` at `version` in `ecosystem`, one
    /// per advisory. `unparsable` is set when `version` could not be read
    /// under a range's scheme.
    pub fn matches(
        &self,
        ecosystem: Ecosystem,
        name: &str,
        version: &str,
        unparsable: &mut bool,
    ) -> Vec<Match<'_>> {
        let key = (ecosystem, ecosystem.normalize_name(name));
        let Some(entries) = self.index.get(&key) else {
            return Vec::new();
        };
        let mut out: Vec<Match<'_>> = Vec::new();
        for &(ai, aj) in entries {
            let (Some(advisory), Some(affected)) = (
                self.advisories.get(ai),
                self.advisories.get(ai).and_then(|a| a.affected.get(aj)),
            ) else {
                continue;
            };
            if out.iter().any(|m| std::ptr::eq(m.advisory, advisory)) {
                continue;
            }
            let Some(verdict) = range::affected(ecosystem, version, affected, unparsable) else {
                continue;
            };
            let (severity, score) = rate(advisory, affected);
            out.push(Match {
                advisory,
                severity,
                score,
                fixed: verdict.fixed,
                last_affected: verdict.last_affected,
            });
        }
        out
    }
}

/// Parses one file: an advisory object or an array of them.
fn parse_file(text: &str) -> Result<Vec<Advisory>, serde_json::Error> {
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
    } else {
        serde_json::from_str(text).map(|a| vec![a])
    }
}

/// Severity of `advisory` for the `affected` entry that matched, in the
/// order documented in [`crate::severity`].
pub fn rate(advisory: &Advisory, affected: &model::Affected) -> (Severity, Option<f64>) {
    let scores = affected.severity.iter().chain(advisory.severity.iter());
    let mut best: [Option<f64>; 2] = [None, None];
    for s in scores {
        if !s.kind.starts_with("CVSS_V") {
            continue;
        }
        if let Some((score, version)) = severity::base_score(&s.score) {
            let slot = match version {
                CvssVersion::V3 => 0,
                CvssVersion::V4 => 1,
            };
            best[slot] = Some(best[slot].map_or(score, |b: f64| b.max(score)));
        }
    }
    if let Some(score) = best[0].or(best[1]) {
        return (Severity::from_score(score), Some(score));
    }
    let label = [&affected.database_specific, &advisory.database_specific]
        .into_iter()
        .flatten()
        .find_map(|v| v.get("severity").and_then(|s| s.as_str()))
        .and_then(Severity::from_label);
    (label.unwrap_or(Severity::Unknown), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advisory(json: &str) -> Advisory {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"))
    }

    const LODASH: &str = r#"{
        "id": "GHSA-35jh-r3h4-6jhm",
        "aliases": ["CVE-2021-23337"],
        "summary": "Command Injection in lodash",
        "affected": [{
            "package": {"ecosystem": "npm", "name": "lodash"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]
        }],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"}],
        "database_specific": {"severity": "HIGH"}
    }"#;

    #[test]
    fn matches_by_ecosystem_name_and_range() {
        let db = AdvisoryDb::from_advisories([advisory(LODASH)]);
        let mut u = false;
        let m = db.matches(Ecosystem::Npm, "lodash", "4.17.15", &mut u);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].severity, Severity::High);
        assert_eq!(m[0].score, Some(7.2));
        assert_eq!(m[0].fixed.as_deref(), Some("4.17.21"));
        assert!(db
            .matches(Ecosystem::Npm, "lodash", "4.17.21", &mut u)
            .is_empty());
        assert!(db
            .matches(Ecosystem::PyPi, "lodash", "4.17.15", &mut u)
            .is_empty());
        assert!(db
            .matches(Ecosystem::Npm, "lodash-es", "4.17.15", &mut u)
            .is_empty());
    }

    #[test]
    fn pypi_names_are_normalized() {
        let db = AdvisoryDb::from_advisories([advisory(
            r#"{"id": "X-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "PyYAML"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.4"}]}]}],
                "database_specific": {"severity": "CRITICAL"}}"#,
        )]);
        let mut u = false;
        let m = db.matches(Ecosystem::PyPi, "pyyaml", "5.3.1", &mut u);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].severity, m[0].score), (Severity::Critical, None));
    }

    #[test]
    fn severity_prefers_cvss_v3_then_v4_then_label() {
        let a = advisory(
            r#"{"id": "X", "severity": [
                {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"},
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}],
                "database_specific": {"severity": "CRITICAL"}}"#,
        );
        let none = model::Affected {
            package: None,
            ranges: vec![],
            versions: vec![],
            severity: vec![],
            database_specific: None,
        };
        assert_eq!(rate(&a, &none), (Severity::Medium, Some(5.3)));
        let b = advisory(r#"{"id": "Y", "database_specific": {"severity": "MODERATE"}}"#);
        assert_eq!(rate(&b, &none), (Severity::Medium, None));
        let c = advisory(
            r#"{"id": "Z", "severity": [{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"}]}"#,
        );
        assert_eq!(rate(&c, &none), (Severity::Unknown, None));
    }

    #[test]
    fn withdrawn_advisories_never_match() {
        let mut a = advisory(LODASH);
        a.withdrawn = Some("2024-01-01T00:00:00Z".into());
        let db = AdvisoryDb::from_advisories([a]);
        assert!(db.is_empty());
    }

    #[test]
    fn nulls_read_as_absent() {
        let a = advisory(r#"{"id": "N", "aliases": null, "affected": null, "severity": null}"#);
        assert!(a.aliases.is_empty() && a.affected.is_empty());
    }

    #[test]
    fn arrays_of_advisories_load() {
        let list = parse_file(&format!("[{LODASH}, {LODASH}]")).unwrap_or_default();
        assert_eq!(list.len(), 2);
    }
}
