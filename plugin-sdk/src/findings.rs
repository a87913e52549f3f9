//! Findings: what a check found (a lint message, a vulnerable dependency, a
//! leaked secret). Return them with [`Report::findings`](crate::Report::findings);
//! the runner writes every stage's findings as SARIF 2.1.0 and shows them in
//! the console, the HTML report and CI annotations.
//!
//! The types are [`sluice_types`]' ([`Finding`], [`FindingLevel`],
//! [`FindingLocation`]), shared with the runner; build one with
//! [`finding`] (or [`error`], [`warning`], [`note`]):
//!
//! ```
//! use sluice_sdk::findings;
//! use sluice_sdk::prelude::*;
//!
//! let f = findings::warning("E501", "line too long (92 > 88)")
//!     .at("src/app.py", 3)
//!     .columns(89, 93)
//!     .help_uri("https://docs.astral.sh/ruff/rules/line-too-long/")
//!     .build();
//! let report = Report::new("1 finding").findings(vec![f]);
//! assert_eq!(report.findings.as_ref().map(Vec::len), Some(1));
//! ```
//!
//! Before the report leaves the stage the SDK checks the findings with the
//! runner's rules ([`Finding::check_all`]: non-empty rule id and message,
//! workspace-relative paths without `..`, `http(s)` help URIs, at most
//! 100,000) and fails the stage with a message naming the bad finding.

pub use sluice_types::findings::{
    Finding, FindingLevel, FindingLocation, ReportRuleError, MAX_FINDINGS,
};

/// Builds a [`Finding`] step by step; [`build`](Self::build) or `into()`
/// gives the finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingBuilder {
    finding: Finding,
}

/// A finding of rule `rule_id` at `level` with a one-line `message`.
///
/// ```
/// use sluice_sdk::findings::{finding, FindingLevel};
/// let f = finding("GHSA-xxxx", FindingLevel::Error, "vulnerable dependency").build();
/// assert!(f.location.is_none());
/// ```
pub fn finding(
    rule_id: impl Into<String>,
    level: FindingLevel,
    message: impl Into<String>,
) -> FindingBuilder {
    FindingBuilder {
        finding: Finding {
            rule_id: rule_id.into(),
            level,
            message: message.into(),
            location: None,
            fingerprint: None,
            help_uri: None,
        },
    }
}

/// A finding at [`FindingLevel::Error`].
///
/// ```
/// let f = sluice_sdk::findings::error("S101", "hard-coded password").build();
/// # assert_eq!(f.level, sluice_sdk::findings::FindingLevel::Error);
/// ```
pub fn error(rule_id: impl Into<String>, message: impl Into<String>) -> FindingBuilder {
    finding(rule_id, FindingLevel::Error, message)
}

/// A finding at [`FindingLevel::Warning`].
///
/// ```
/// let f = sluice_sdk::findings::warning("E501", "line too long").build();
/// # assert_eq!(f.level, sluice_sdk::findings::FindingLevel::Warning);
/// ```
pub fn warning(rule_id: impl Into<String>, message: impl Into<String>) -> FindingBuilder {
    finding(rule_id, FindingLevel::Warning, message)
}

/// A finding at [`FindingLevel::Note`].
///
/// ```
/// let f = sluice_sdk::findings::note("TODO", "left a TODO").build();
/// # assert_eq!(f.level, sluice_sdk::findings::FindingLevel::Note);
/// ```
pub fn note(rule_id: impl Into<String>, message: impl Into<String>) -> FindingBuilder {
    finding(rule_id, FindingLevel::Note, message)
}

impl FindingBuilder {
    /// Where it is: `path` relative to the workspace root (`/`-separated)
    /// and its first line (1-based; 0 for the whole file).
    ///
    /// ```
    /// let f = sluice_sdk::findings::warning("W1", "x").at("src/lib.rs", 10).build();
    /// assert_eq!(f.location.map(|l| l.start_line), Some(10));
    /// ```
    pub fn at(mut self, path: impl Into<String>, line: u32) -> Self {
        self.finding.location = Some(FindingLocation {
            path: path.into(),
            start_line: line,
            start_column: None,
            end_line: None,
            end_column: None,
        });
        self
    }

    /// First column and the column after the last character (1-based), on
    /// the location set with [`at`](Self::at); ignored without one.
    ///
    /// ```
    /// let f = sluice_sdk::findings::warning("W1", "x").at("a.py", 1).columns(5, 9).build();
    /// assert_eq!(f.location.and_then(|l| l.end_column), Some(9));
    /// ```
    pub fn columns(mut self, start: u32, end: u32) -> Self {
        if let Some(l) = self.finding.location.as_mut() {
            l.start_column = Some(start);
            l.end_column = Some(end);
        }
        self
    }

    /// The last line, when the region spans several; ignored without a
    /// location.
    ///
    /// ```
    /// let f = sluice_sdk::findings::note("N", "x").at("a.py", 3).end_line(7).build();
    /// assert_eq!(f.location.and_then(|l| l.end_line), Some(7));
    /// ```
    pub fn end_line(mut self, line: u32) -> Self {
        if let Some(l) = self.finding.location.as_mut() {
            l.end_line = Some(line);
        }
        self
    }

    /// A stable identity across runs, so tools can tell new findings from
    /// old ones.
    ///
    /// ```
    /// let f = sluice_sdk::findings::note("N", "x").fingerprint("a1b2").build();
    /// # assert_eq!(f.fingerprint.as_deref(), Some("a1b2"));
    /// ```
    pub fn fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.finding.fingerprint = Some(fingerprint.into());
        self
    }

    /// Where the rule is documented (an absolute `https:` or `http:` URI).
    ///
    /// ```
    /// let f = sluice_sdk::findings::note("N", "x").help_uri("https://example.com/N").build();
    /// # assert!(f.help_uri.is_some());
    /// ```
    pub fn help_uri(mut self, uri: impl Into<String>) -> Self {
        self.finding.help_uri = Some(uri.into());
        self
    }

    /// The finding.
    pub fn build(self) -> Finding {
        self.finding
    }
}

impl From<FindingBuilder> for Finding {
    fn from(b: FindingBuilder) -> Self {
        b.finding
    }
}

/// Checks `findings` with the runner's rules; the error names the bad
/// finding by position and rule id.
pub(crate) fn check(findings: &[Finding]) -> Result<(), String> {
    Finding::check_all(findings).map_err(|e| {
        let index = match &e {
            ReportRuleError::Empty { index, .. }
            | ReportRuleError::TooLong { index, .. }
            | ReportRuleError::BadPath { index, .. }
            | ReportRuleError::BadHelpUri { index, .. } => Some(*index),
            _ => None,
        };
        match index.and_then(|i| findings.get(i)) {
            Some(f) if !f.rule_id.trim().is_empty() => {
                format!(
                    "the report's findings break the runner's rules: {e} (rule `{}`)",
                    f.rule_id
                )
            }
            _ => format!("the report's findings break the runner's rules: {e}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_finding_is_named_by_position_and_rule() {
        let good = warning("E501", "long").at("src/a.py", 1).build();
        let bad = error("S1", "leak").at("../etc/passwd", 1).build();
        assert_eq!(check(std::slice::from_ref(&good)), Ok(()));
        let e = check(&[good, bad]).err().unwrap_or_default();
        assert!(e.contains("finding 1") && e.contains("rule `S1`"), "{e}");
        let empty = finding(" ", FindingLevel::Note, "m").build();
        let e = check(&[empty]).err().unwrap_or_default();
        assert!(e.contains("`rule-id` is empty"), "{e}");
        assert!(check(&[]).is_ok());
    }

    #[test]
    fn columns_need_a_location() {
        let f = note("N", "x").columns(1, 2).end_line(3).build();
        assert!(f.location.is_none());
    }
}
