//! Reading the reports the tests wrote: JUnit files (merged) and the
//! coverage report, ignoring files that a command left untouched.

use std::path::Path;

use sluice_sdk::{ResultExt, StageError};

use crate::coverage::{self, Format};
use crate::files::{find, Found, Snapshot};
use crate::junit::{self, Results};

/// The JUnit files the patterns match, split into those written by this
/// run's command (or all of them, when there was no command) and stale
/// ones left from before it.
#[derive(Debug, Default)]
pub struct JunitFiles {
    /// Files to read.
    pub fresh: Vec<Found>,
    /// Files that matched but were not rewritten by the command.
    pub stale: Vec<Found>,
}

/// Finds the JUnit files. `exclude` (the coverage report) never counts,
/// so `reports/*.xml` does not pick up `reports/coverage.xml`.
pub fn junit_files(
    root: &Path,
    patterns: &[String],
    exclude: Option<&str>,
    before: Option<&Snapshot>,
) -> Result<JunitFiles, StageError> {
    let mut out = JunitFiles::default();
    for pattern in patterns {
        for f in find(root, pattern)? {
            if Some(f.rel.as_str()) == exclude
                || out.fresh.iter().chain(&out.stale).any(|g| g.rel == f.rel)
            {
                continue;
            }
            if before.is_none_or(|b| b.is_fresh(&f.path)) {
                out.fresh.push(f);
            } else {
                out.stale.push(f);
            }
        }
    }
    Ok(out)
}

/// A JUnit file read and parsed.
pub struct JunitFile {
    /// Where it was found.
    pub found: Found,
    /// Its bytes (copied into the stage's artifacts).
    pub bytes: Vec<u8>,
}

/// Reads and parses `files`, merging their tests.
pub fn read_junit(files: Vec<Found>) -> Result<(Results, Vec<JunitFile>), StageError> {
    let mut results = Results::default();
    let mut read = Vec::new();
    for found in files {
        let bytes = std::fs::read(&found.path).with_context(|| format!("reading {}", found.rel))?;
        let parsed = junit::parse(&String::from_utf8_lossy(&bytes)).map_err(|e| {
            StageError::failed(format!("{}: not a valid JUnit XML report: {e}", found.rel))
        })?;
        sluice_sdk::info!(
            "{}: {} tests, {} failed, {} skipped",
            found.rel,
            parsed.total(),
            parsed.failed(),
            parsed.skipped()
        );
        results.merge(parsed);
        read.push(JunitFile { found, bytes });
    }
    Ok((results, read))
}

/// A coverage report read and measured.
pub struct CoverageReport {
    /// Path relative to the workspace.
    pub rel: String,
    /// Its format.
    pub format: Format,
    /// Line coverage in percent; `None` when the report measured no lines.
    pub percent: Option<f64>,
    /// Its bytes (copied into the stage's artifacts).
    pub bytes: Vec<u8>,
}

/// Reads the coverage report. A missing or stale report is a warning, not
/// an error: the test results are still worth reporting, and a gate on
/// `coverage.line` then comes out inconclusive (never silently passed).
/// A report that exists but cannot be parsed fails the stage.
pub fn read_coverage(
    root: &Path,
    rel: &str,
    format: Format,
    before: Option<&Snapshot>,
) -> Result<Option<CoverageReport>, StageError> {
    let path = root.join(rel);
    if !path.is_file() {
        sluice_sdk::warn!("coverage report {rel} was not found; coverage.line is not reported");
        return Ok(None);
    }
    if before.is_some_and(|b| !b.is_fresh(&path)) {
        sluice_sdk::warn!(
            "coverage report {rel} was not rewritten by the test command (it is left from an \
             earlier run); coverage.line is not reported"
        );
        return Ok(None);
    }
    let bytes = std::fs::read(&path).with_context(|| format!("reading {rel}"))?;
    let coverage = coverage::parse(format, &String::from_utf8_lossy(&bytes)).map_err(|e| {
        StageError::failed(format!(
            "{rel}: not a valid {} coverage report: {e} (set with.coverage.format if the format is wrong)",
            format.name()
        ))
    })?;
    let percent = coverage.percent();
    if percent.is_none() {
        sluice_sdk::warn!(
            "coverage report {rel} measured no lines (check what the coverage tool was told to \
             measure); coverage.line is not reported"
        );
    }
    Ok(Some(CoverageReport {
        rel: rel.to_string(),
        format,
        percent,
        bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_files_and_the_coverage_report_are_left_out() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        std::fs::create_dir_all(root.join("reports"))?;
        std::fs::write(root.join("reports/old.xml"), "<testsuite/>")?;
        std::fs::write(root.join("reports/coverage.xml"), "<coverage/>")?;
        let patterns = vec!["reports/*.xml".to_string(), "reports/old.xml".to_string()];
        let before = Snapshot::take(root, &patterns)?;
        std::fs::write(root.join("reports/new.xml"), "<testsuite/>")?;
        let files = junit_files(root, &patterns, Some("reports/coverage.xml"), Some(&before))?;
        let rels = |v: &[Found]| v.iter().map(|f| f.rel.clone()).collect::<Vec<_>>();
        assert_eq!(rels(&files.fresh), ["reports/new.xml"]);
        assert_eq!(rels(&files.stale), ["reports/old.xml"]);
        // Without a command every file counts.
        let files = junit_files(root, &patterns, None, None)?;
        assert_eq!(files.fresh.len(), 3);
        Ok(())
    }

    #[test]
    fn coverage_missing_is_none_and_broken_is_an_error() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        assert!(read_coverage(root, "cov.lcov", Format::Lcov, None)?.is_none());
        std::fs::write(root.join("cov.lcov"), "SF:a\nLF:4\nLH:1\nend_of_record\n")?;
        let c = read_coverage(root, "cov.lcov", Format::Lcov, None)?.ok_or("report")?;
        assert_eq!(c.percent, Some(25.0));
        assert!(read_coverage(root, "cov.lcov", Format::Cobertura, None).is_err());
        Ok(())
    }
}
