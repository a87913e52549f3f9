//! The scan itself: walk the tree once, scan each text file for secrets,
//! read each lockfile, then match the pinned packages against the
//! advisory database. No SDK in here, so it runs natively as well as in
//! the sandbox.

use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::config::{Settings, MAX_LOCKFILE_SIZE};
use crate::deps::{self, Dependency, LockfileKind};
use crate::osv::AdvisoryDb;
use crate::secrets::{SecretFinding, SecretScanner};
use crate::severity::Severity;
use crate::version::Ecosystem;

/// How many leading bytes are checked for NUL to call a file binary (the
/// heuristic git and ripgrep use).
pub const BINARY_SNIFF_BYTES: usize = 8000;

/// A package version affected by an advisory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VulnFinding {
    /// Package name as the lockfile writes it.
    pub package: String,
    /// Installed version.
    pub version: String,
    /// Ecosystem (`crates.io`, `npm`, `PyPI`).
    #[serde(serialize_with = "ser_ecosystem")]
    pub ecosystem: Ecosystem,
    /// The lockfile.
    pub file: String,
    /// Line of the package's entry in the lockfile.
    pub line: Option<usize>,
    /// Advisory id (`GHSA-…`).
    pub id: String,
    /// Other ids of the same vulnerability, including those of duplicate
    /// advisories that were merged into this finding.
    pub aliases: Vec<String>,
    /// Advisory summary.
    pub summary: String,
    /// Severity bucket.
    #[serde(serialize_with = "ser_severity")]
    pub severity: Severity,
    /// CVSS base score, when the severity came from a vector.
    pub score: Option<f64>,
    /// Lowest fixed version above the installed one.
    pub fixed: Option<String>,
    /// Last affected version, when the advisory names no fix.
    pub last_affected: Option<String>,
    /// The advisory's link.
    pub url: Option<String>,
}

fn ser_ecosystem<S: serde::Serializer>(e: &Ecosystem, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(e.osv_name())
}

fn ser_severity<S: serde::Serializer>(v: &Severity, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_str())
}

impl VulnFinding {
    /// `fixed in 2.20.0`, `last affected 1.24.2`, or `no fix available`.
    pub fn remedy(&self) -> String {
        match (&self.fixed, &self.last_affected) {
            (Some(f), _) => format!("fixed in {f}"),
            (None, Some(l)) => format!("no fixed version (last affected {l})"),
            (None, None) => "no fix available".to_string(),
        }
    }
}

/// Everything a scan found and counted.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Secret findings, by file and position.
    pub secrets: Vec<SecretFinding>,
    /// Findings, most severe first: one per advisory and lockfile entry
    /// (counted per package version by [`Outcome::vuln_total`]).
    pub vulns: Vec<VulnFinding>,
    /// Packages read from lockfiles.
    pub dependencies: Vec<Dependency>,
    /// Lockfiles read.
    pub lockfiles: Vec<String>,
    /// Files that look like lockfiles of a format the scanner does not
    /// read ([`deps::looks_like_lockfile`]): not checked, and said so.
    pub unread_lockfiles: Vec<String>,
    /// Files read (for secrets, as lockfiles, or both).
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Files skipped as binary.
    pub skipped_binary: u64,
    /// Files skipped for exceeding `max-file-size`.
    pub skipped_large: u64,
    /// Secret matches suppressed by `sluice:ignore-secret`.
    pub ignored_inline: usize,
    /// Findings suppressed by `with.allow`.
    pub allowlisted: usize,
    /// Secret matches suppressed as documentation examples or placeholders.
    pub placeholders: usize,
    /// Things the user should know.
    pub warnings: Vec<String>,
    /// Whether secrets were scanned.
    pub secrets_scanned: bool,
    /// Whether dependencies were checked against advisories.
    pub vulns_checked: bool,
}

/// What counts as one vulnerability: one advisory (duplicates merged by
/// alias) affecting one package version, wherever it is pinned.
fn vuln_key(v: &VulnFinding) -> (Ecosystem, String, String, &str) {
    (
        v.ecosystem,
        v.ecosystem.normalize_name(&v.package),
        v.version.trim().to_string(),
        v.id.as_str(),
    )
}

impl Outcome {
    /// Number of vulnerabilities in `severity`: distinct (package version,
    /// advisory) pairs, so the same pin in two lockfiles counts once.
    pub fn count(&self, severity: Severity) -> usize {
        let keys: std::collections::HashSet<_> = self
            .vulns
            .iter()
            .filter(|v| v.severity == severity)
            .map(vuln_key)
            .collect();
        keys.len()
    }

    /// Number of vulnerabilities of any severity (see [`count`](Self::count)).
    pub fn vuln_total(&self) -> usize {
        let keys: std::collections::HashSet<_> = self.vulns.iter().map(vuln_key).collect();
        keys.len()
    }

    /// Number of distinct package versions with at least one vulnerability.
    pub fn vulnerable_packages(&self) -> usize {
        let keys: std::collections::HashSet<_> = self
            .vulns
            .iter()
            .map(|v| {
                let (e, n, ver, _) = vuln_key(v);
                (e, n, ver)
            })
            .collect();
        keys.len()
    }

    /// Number of distinct package versions read from lockfiles
    /// ([`Dependency::key`]).
    pub fn package_count(&self) -> usize {
        let keys: std::collections::HashSet<_> =
            self.dependencies.iter().map(Dependency::key).collect();
        keys.len()
    }
}

/// Why a scan could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The root could not be listed (in the sandbox: no workspace grant).
    #[error("cannot read {}: {source}", root.display())]
    Root {
        /// The root.
        root: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A built-in secret rule failed to compile (a bug).
    #[error("internal error compiling the secret rules: {0}")]
    Rules(#[from] crate::secrets::RuleError),
}

/// Scans `root` with `settings`, matching packages against `db` when given.
/// `skip` lists directories not to scan (the advisory database).
pub fn run(
    root: &Path,
    settings: &Settings,
    db: Option<&AdvisoryDb>,
    skip: &[std::path::PathBuf],
) -> Result<Outcome, ScanError> {
    let scanner = if settings.secrets {
        Some(SecretScanner::new(
            settings.allow.clone(),
            settings.entropy_threshold,
        )?)
    } else {
        None
    };
    let mut out = Outcome {
        secrets_scanned: settings.secrets,
        vulns_checked: settings.dependencies && db.is_some(),
        ..Outcome::default()
    };

    let mut includes = Vec::new();
    let walk_warnings = crate::walk::walk(root, &settings.filter, skip, |entry| {
        let name = entry.rel.rsplit('/').next().unwrap_or(&entry.rel);
        let lockfile = if settings.dependencies {
            LockfileKind::detect_path(&entry.rel)
        } else {
            None
        };
        if settings.dependencies && lockfile.is_none() && deps::looks_like_lockfile(name) {
            out.unread_lockfiles.push(entry.rel.clone());
        }
        if scanner.is_none() && lockfile.is_none() {
            return;
        }
        let mut file = match std::fs::File::open(&entry.path) {
            Ok(f) => f,
            Err(e) => {
                out.warnings.push(format!("cannot read {}: {e}", entry.rel));
                return;
            }
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let for_secrets = scanner.is_some() && size <= settings.max_file_size;
        if !for_secrets && lockfile.is_none() {
            out.skipped_large += 1;
            return;
        }
        if lockfile.is_some() && size > MAX_LOCKFILE_SIZE {
            out.warnings.push(format!(
                "{}: lockfile larger than {MAX_LOCKFILE_SIZE} bytes; not read",
                entry.rel
            ));
            return;
        }
        // Bounded even if the file grows after the size was taken.
        let cap = if lockfile.is_some() {
            MAX_LOCKFILE_SIZE.max(settings.max_file_size)
        } else {
            settings.max_file_size
        };
        let mut bytes = Vec::with_capacity(usize::try_from(size.min(cap)).unwrap_or(0));
        if let Err(e) = (&mut file).take(cap).read_to_end(&mut bytes) {
            out.warnings.push(format!("cannot read {}: {e}", entry.rel));
            return;
        }
        let sniff = &bytes[..bytes.len().min(BINARY_SNIFF_BYTES)];
        if sniff.contains(&0) {
            out.skipped_binary += 1;
            return;
        }
        out.files += 1;
        out.bytes += bytes.len() as u64;
        let text = String::from_utf8_lossy(&bytes);
        if let (Some(s), true) = (&scanner, for_secrets) {
            let r = s.scan(&entry.rel, &text);
            out.ignored_inline += r.ignored_inline;
            out.allowlisted += r.allowlisted;
            out.placeholders += r.placeholders;
            out.secrets.extend(r.findings);
        }
        if let Some(kind) = lockfile {
            let parsed = deps::parse(kind, &entry.rel, &text);
            out.lockfiles.push(entry.rel.clone());
            out.dependencies.extend(parsed.dependencies);
            out.warnings.extend(parsed.warnings);
            includes.extend(parsed.includes);
        }
    })
    .map_err(|source| ScanError::Root {
        root: root.to_path_buf(),
        source,
    })?;
    out.warnings.extend(walk_warnings);
    if !includes.is_empty() {
        let mut seen: std::collections::HashSet<String> = out.lockfiles.iter().cloned().collect();
        let (files, parsed) = deps::read_includes(root, &mut seen, includes, MAX_LOCKFILE_SIZE);
        out.lockfiles.extend(files);
        out.dependencies.extend(parsed.dependencies);
        out.warnings.extend(parsed.warnings);
    }
    if !out.unread_lockfiles.is_empty() {
        out.unread_lockfiles.sort();
        out.warnings.push(format!(
            "{} not read (format not supported), so not checked for vulnerabilities: {}",
            if out.unread_lockfiles.len() == 1 {
                "1 lockfile".to_string()
            } else {
                format!("{} lockfiles", out.unread_lockfiles.len())
            },
            out.unread_lockfiles.join(", ")
        ));
    }

    if let Some(db) = db.filter(|_| settings.dependencies) {
        match_vulns(&mut out, db, settings);
    }
    out.secrets
        .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    Ok(out)
}

/// Matches the dependencies already read into `out` against `db`: for
/// advisories that can only be fetched once the packages are known (the
/// OSV API), after a [`run`] without a database.
pub fn check_dependencies(out: &mut Outcome, db: &AdvisoryDb, settings: &Settings) {
    out.vulns_checked = true;
    match_vulns(out, db, settings);
}

/// Matches every dependency against `db`, merging advisories that are
/// aliases of each other, and drops allowlisted ones.
fn match_vulns(out: &mut Outcome, db: &AdvisoryDb, settings: &Settings) {
    let mut vulns = Vec::new();
    let mut unparsable = Vec::new();
    for dep in &out.dependencies {
        let mut bad_version = false;
        let mut matches = db.matches(dep.ecosystem, &dep.name, &dep.version, &mut bad_version);
        if bad_version {
            unparsable.push(format!(
                "{}: version `{}` of {} is not a valid {} version; only advisories that list it exactly were checked",
                dep.file, dep.version, dep.name, dep.ecosystem
            ));
        }
        // Most severe (then scored, then by id) first, so that it is the one kept.
        matches.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(b.score.is_some().cmp(&a.score.is_some()))
                .then(a.advisory.id.cmp(&b.advisory.id))
        });
        let mut kept: Vec<VulnFinding> = Vec::new();
        for m in matches {
            let ids: Vec<&str> = m.advisory.ids().collect();
            if let Some(k) = kept.iter_mut().find(|k| {
                ids.iter()
                    .any(|id| *id == k.id || k.aliases.iter().any(|a| a == id))
            }) {
                for id in ids {
                    if id != k.id && !k.aliases.iter().any(|a| a == id) {
                        k.aliases.push(id.to_string());
                    }
                }
                continue;
            }
            kept.push(VulnFinding {
                package: dep.name.clone(),
                version: dep.version.clone(),
                ecosystem: dep.ecosystem,
                file: dep.file.clone(),
                line: dep.line,
                id: m.advisory.id.clone(),
                aliases: m.advisory.aliases.clone(),
                summary: m
                    .advisory
                    .summary
                    .clone()
                    .or_else(|| m.advisory.details.as_ref().map(|d| first_sentence(d)))
                    .unwrap_or_default(),
                severity: m.severity,
                score: m.score,
                fixed: m.fixed,
                last_affected: m.last_affected,
                url: m.advisory.link().map(str::to_string),
            });
        }
        // Allowlisting applies to the merged finding, so an id of any of
        // the duplicate advisories suppresses it once.
        let before = kept.len();
        kept.retain(|k| {
            !settings.allow.allows_advisory(
                std::iter::once(k.id.as_str()).chain(k.aliases.iter().map(String::as_str)),
            )
        });
        out.allowlisted += before - kept.len();
        vulns.extend(kept);
    }
    vulns.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.file.cmp(&b.file))
            .then_with(|| a.package.cmp(&b.package))
            .then_with(|| a.id.cmp(&b.id))
    });
    out.vulns = vulns;
    out.warnings.extend(unparsable);
}

/// The first line of a description, at most 200 characters.
fn first_sentence(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    line.chars().take(200).collect()
}
