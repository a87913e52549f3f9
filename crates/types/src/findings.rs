//! What a check found, and what an artifact is for: the data of WIT 0.2's
//! `finding` and `artifact-role`, one definition for the host (which
//! checks them and writes SARIF), the console, the reports and the SDK.
//!
//! [`Finding::check`] and [`ArtifactRole::check`] are the rules the runner
//! enforces on a stage's report; the SDK applies the same ones before a
//! report leaves the guest, so an author sees the problem where it is made.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Most findings one report may carry.
pub const MAX_FINDINGS: usize = 100_000;
/// Longest rule id, message, path, fingerprint or help URI, in bytes.
pub const MAX_FINDING_TEXT: usize = 16 * 1024;
/// Most annotations on one artifact.
pub const MAX_ANNOTATIONS: usize = 64;
/// Most bytes of one artifact's annotations (keys and values).
pub const MAX_ANNOTATION_BYTES: usize = 16 * 1024;

/// How serious a finding is (SARIF's `level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingLevel {
    /// Worth knowing.
    Note,
    /// Should be fixed.
    Warning,
    /// Must be fixed.
    Error,
}

impl FindingLevel {
    /// `note`, `warning` or `error` (SARIF's words).
    pub fn as_str(self) -> &'static str {
        match self {
            FindingLevel::Note => "note",
            FindingLevel::Warning => "warning",
            FindingLevel::Error => "error",
        }
    }
}

impl fmt::Display for FindingLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a finding is: a workspace-relative path and a 1-based region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingLocation {
    /// `/`-separated, relative to the workspace root.
    pub path: String,
    /// First line; 0 for the whole file.
    pub start_line: u32,
    /// First column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_column: Option<u32>,
    /// Last line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u32>,
    /// Column after the last character.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_column: Option<u32>,
}

/// One result of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule, for example `E501`.
    pub rule_id: String,
    /// How serious.
    pub level: FindingLevel,
    /// One line a person can act on.
    pub message: String,
    /// Where; `None` for the project as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<FindingLocation>,
    /// Stable identity across runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Where the rule is documented (`http:` or `https:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help_uri: Option<String>,
}

/// A finding or an artifact description that breaks the report rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportRuleError {
    /// A finding without a rule id or message.
    #[error("finding {index}: `{field}` is empty")]
    Empty {
        /// Position in the report's findings.
        index: usize,
        /// `rule-id` or `message`.
        field: &'static str,
    },
    /// A text field over [`MAX_FINDING_TEXT`].
    #[error("finding {index}: `{field}` is {len} bytes, over the limit of {MAX_FINDING_TEXT}")]
    TooLong {
        /// Position in the report's findings.
        index: usize,
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A location path that is absolute, has `..`, a backslash or a NUL.
    #[error(
        "finding {index}: location path `{path}` must be relative to the workspace, `/`-separated, without `..`"
    )]
    BadPath {
        /// Position in the report's findings.
        index: usize,
        /// The path.
        path: String,
    },
    /// A help URI that is not `http(s)://…`.
    #[error("finding {index}: help-uri `{uri}` must be an absolute http: or https: URI")]
    BadHelpUri {
        /// Position in the report's findings.
        index: usize,
        /// The URI.
        uri: String,
    },
    /// More than [`MAX_FINDINGS`].
    #[error("the report has {count} findings, over the limit of {MAX_FINDINGS}; report the first ones and summarise the rest")]
    TooManyFindings {
        /// How many.
        count: usize,
    },
    /// An `other(…)` role that is not a lowercase dash-separated word.
    #[error("artifact role `{role}` must be lowercase letters, digits and dashes (at most 64)")]
    BadRole {
        /// The role.
        role: String,
    },
    /// Annotations over the limits or with a repeated or empty key.
    #[error("artifact `{artifact}`: {problem}")]
    BadAnnotations {
        /// The artifact's path.
        artifact: String,
        /// What is wrong.
        problem: String,
    },
}

fn bad_text(s: &str) -> bool {
    s.chars().any(|c| c == '\0')
}

impl Finding {
    /// Check the report rules (index: its position, for the message).
    pub fn check(&self, index: usize) -> Result<(), ReportRuleError> {
        for (field, value) in [("rule-id", &self.rule_id), ("message", &self.message)] {
            if value.trim().is_empty() {
                return Err(ReportRuleError::Empty { index, field });
            }
        }
        let texts = [
            ("rule-id", Some(&self.rule_id)),
            ("message", Some(&self.message)),
            ("fingerprint", self.fingerprint.as_ref()),
            ("help-uri", self.help_uri.as_ref()),
            ("location.path", self.location.as_ref().map(|l| &l.path)),
        ];
        for (field, value) in texts {
            if let Some(v) = value {
                if v.len() > MAX_FINDING_TEXT {
                    return Err(ReportRuleError::TooLong {
                        index,
                        field,
                        len: v.len(),
                    });
                }
            }
        }
        if let Some(loc) = &self.location {
            let p = &loc.path;
            if p.is_empty()
                || p.starts_with('/')
                || p.contains('\\')
                || bad_text(p)
                || p.split('/').any(|c| c == "..")
            {
                return Err(ReportRuleError::BadPath {
                    index,
                    path: p.clone(),
                });
            }
        }
        if let Some(uri) = &self.help_uri {
            let lower = uri.to_ascii_lowercase();
            let ok = (lower.starts_with("https://") || lower.starts_with("http://"))
                && uri.len() > "https://".len()
                && !uri.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(ReportRuleError::BadHelpUri {
                    index,
                    uri: uri.clone(),
                });
            }
        }
        Ok(())
    }

    /// Check a whole list: the count, then each finding.
    pub fn check_all(findings: &[Finding]) -> Result<(), ReportRuleError> {
        if findings.len() > MAX_FINDINGS {
            return Err(ReportRuleError::TooManyFindings {
                count: findings.len(),
            });
        }
        findings
            .iter()
            .enumerate()
            .try_for_each(|(i, f)| f.check(i))
    }
}

/// What an artifact is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArtifactRole {
    /// A report (SARIF, HTML, Markdown …).
    Report,
    /// Test results (JUnit XML).
    TestResults,
    /// Coverage data.
    Coverage,
    /// Something to ship.
    Package,
    /// A bill of materials.
    Sbom,
    /// A provenance statement.
    Provenance,
    /// A log.
    Log,
    /// The producer's own word.
    Other(String),
}

impl ArtifactRole {
    /// The role's text: `report`, `test-results` …, or the `other` word.
    pub fn as_str(&self) -> &str {
        match self {
            ArtifactRole::Report => "report",
            ArtifactRole::TestResults => "test-results",
            ArtifactRole::Coverage => "coverage",
            ArtifactRole::Package => "package",
            ArtifactRole::Sbom => "sbom",
            ArtifactRole::Provenance => "provenance",
            ArtifactRole::Log => "log",
            ArtifactRole::Other(s) => s,
        }
    }

    /// Read a role's text; a word that is not one of the named roles is
    /// `Other`.
    pub fn from_text(s: &str) -> ArtifactRole {
        match s {
            "report" => ArtifactRole::Report,
            "test-results" => ArtifactRole::TestResults,
            "coverage" => ArtifactRole::Coverage,
            "package" => ArtifactRole::Package,
            "sbom" => ArtifactRole::Sbom,
            "provenance" => ArtifactRole::Provenance,
            "log" => ArtifactRole::Log,
            other => ArtifactRole::Other(other.to_string()),
        }
    }

    /// An `Other` word must be lowercase letters, digits and dashes, 1–64
    /// characters.
    pub fn check(&self) -> Result<(), ReportRuleError> {
        if let ArtifactRole::Other(s) = self {
            let ok = !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(ReportRuleError::BadRole { role: s.clone() });
            }
        }
        Ok(())
    }
}

impl fmt::Display for ArtifactRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ArtifactRole {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ArtifactRole {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(ArtifactRole::from_text(&s))
    }
}

/// Check one artifact's annotations: at most [`MAX_ANNOTATIONS`] pairs and
/// [`MAX_ANNOTATION_BYTES`] bytes, keys non-empty and unique.
pub fn check_annotations(
    artifact: &str,
    annotations: &[(String, String)],
) -> Result<(), ReportRuleError> {
    let bad = |problem: String| ReportRuleError::BadAnnotations {
        artifact: artifact.to_string(),
        problem,
    };
    if annotations.len() > MAX_ANNOTATIONS {
        return Err(bad(format!(
            "{} annotations, over the limit of {MAX_ANNOTATIONS}",
            annotations.len()
        )));
    }
    let bytes: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_ANNOTATION_BYTES {
        return Err(bad(format!(
            "annotations take {bytes} bytes, over the limit of {MAX_ANNOTATION_BYTES}"
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (k, v) in annotations {
        if k.is_empty() {
            return Err(bad("an annotation key is empty".into()));
        }
        if bad_text(k) || bad_text(v) {
            return Err(bad(format!("annotation `{k}` contains a NUL character")));
        }
        if !seen.insert(k.as_str()) {
            return Err(bad(format!("annotation key `{k}` is repeated")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding() -> Finding {
        Finding {
            rule_id: "E501".into(),
            level: FindingLevel::Warning,
            message: "line too long".into(),
            location: Some(FindingLocation {
                path: "src/app.py".into(),
                start_line: 3,
                start_column: Some(80),
                end_line: None,
                end_column: None,
            }),
            fingerprint: None,
            help_uri: Some("https://docs.astral.sh/ruff/rules/E501".into()),
        }
    }

    #[test]
    fn good_findings_pass_and_bad_ones_say_what_is_wrong() {
        assert_eq!(finding().check(0), Ok(()));
        let mut f = finding();
        f.rule_id = " ".into();
        assert_eq!(
            f.check(4).map_err(|e| e.to_string()),
            Err("finding 4: `rule-id` is empty".into())
        );
        for path in ["/etc/passwd", "../x", "a/../../b", "a\\b", ""] {
            let mut f = finding();
            if let Some(l) = f.location.as_mut() {
                l.path = path.into();
            }
            assert!(
                matches!(f.check(0), Err(ReportRuleError::BadPath { .. })),
                "{path}"
            );
        }
        for uri in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://",
            "https://a b",
        ] {
            let mut f = finding();
            f.help_uri = Some(uri.into());
            assert!(
                matches!(f.check(0), Err(ReportRuleError::BadHelpUri { .. })),
                "{uri}"
            );
        }
        let mut f = finding();
        f.message = "x".repeat(MAX_FINDING_TEXT + 1);
        assert!(matches!(
            f.check(0),
            Err(ReportRuleError::TooLong {
                field: "message",
                ..
            })
        ));
    }

    #[test]
    fn roles_round_trip_and_other_words_are_checked() -> Result<(), serde_json::Error> {
        for role in [
            ArtifactRole::Report,
            ArtifactRole::TestResults,
            ArtifactRole::Sbom,
            ArtifactRole::Other("container-image".into()),
        ] {
            let text = serde_json::to_string(&role)?;
            assert_eq!(serde_json::from_str::<ArtifactRole>(&text)?, role);
            assert_eq!(role.check(), Ok(()));
        }
        assert!(ArtifactRole::Other("Bad Role".into()).check().is_err());
        assert!(ArtifactRole::Other(String::new()).check().is_err());
        Ok(())
    }

    #[test]
    fn annotations_are_bounded_and_keys_unique() {
        let pair = |k: &str| (k.to_string(), "v".to_string());
        assert!(check_annotations("a", &[pair("x"), pair("y")]).is_ok());
        assert!(check_annotations("a", &[pair("x"), pair("x")]).is_err());
        assert!(check_annotations("a", &[pair("")]).is_err());
        let many: Vec<_> = (0..65).map(|i| pair(&format!("k{i}"))).collect();
        assert!(check_annotations("a", &many).is_err());
    }
}
