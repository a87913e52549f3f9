//! Severity of an advisory: CVSS base scores and the buckets the metrics
//! count.
//!
//! Order of preference for one advisory (first that applies wins):
//!
//! 1. the highest CVSS v3.0/v3.1 **base** score in `severity[]` (OSV type
//!    `CVSS_V3`, on the advisory or on the matching `affected[]` entry),
//!    computed per the CVSS 3.1 specification by the `cvss` crate;
//! 2. the highest CVSS v4.0 score (`CVSS_V4`);
//! 3. `database_specific.severity` (`CRITICAL`, `HIGH`, `MODERATE` or
//!    `MEDIUM`, `LOW`), as GitHub's advisory database writes it;
//! 4. otherwise the severity is [`Severity::Unknown`].
//!
//! Buckets: critical ≥ 9.0, high ≥ 7.0, medium ≥ 4.0, low > 0; a score of
//! exactly 0 is [`Severity::None`].

use std::fmt;
use std::str::FromStr;

/// A severity bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// No severity information at all.
    Unknown,
    /// CVSS 0.0: no impact.
    None,
    /// 0.0 < score < 4.0.
    Low,
    /// 4.0 ≤ score < 7.0.
    Medium,
    /// 7.0 ≤ score < 9.0.
    High,
    /// score ≥ 9.0.
    Critical,
}

impl Severity {
    /// The bucket of a CVSS score.
    ///
    /// ```
    /// use sluice_plugin_scan::severity::Severity;
    /// assert_eq!(Severity::from_score(9.8), Severity::Critical);
    /// assert_eq!(Severity::from_score(7.0), Severity::High);
    /// assert_eq!(Severity::from_score(0.1), Severity::Low);
    /// ```
    pub fn from_score(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::None
        }
    }

    /// Parses a `database_specific.severity` label (case-insensitive;
    /// `MODERATE` is GitHub's word for medium).
    ///
    /// ```
    /// use sluice_plugin_scan::severity::Severity;
    /// assert_eq!(Severity::from_label("MODERATE"), Some(Severity::Medium));
    /// assert_eq!(Severity::from_label("bogus"), None);
    /// ```
    pub fn from_label(label: &str) -> Option<Severity> {
        match label.trim().to_ascii_lowercase().as_str() {
            "critical" => Some(Severity::Critical),
            "high" => Some(Severity::High),
            "moderate" | "medium" => Some(Severity::Medium),
            "low" => Some(Severity::Low),
            "none" => Some(Severity::None),
            _ => None,
        }
    }

    /// Lowercase name, as used in metrics (`vulns.<name>`) and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// SARIF result level: `error` for critical and high, `warning` for
    /// medium and unknown, `note` otherwise.
    pub fn sarif_level(self) -> &'static str {
        match self {
            Severity::Critical | Severity::High => "error",
            Severity::Medium | Severity::Unknown => "warning",
            Severity::Low | Severity::None => "note",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CVSS vector's version family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CvssVersion {
    /// CVSS v3.0 or v3.1.
    V3,
    /// CVSS v4.0.
    V4,
}

/// The base score of a CVSS v3.0, v3.1 or v4.0 vector string, with its
/// version family; `None` when the vector does not parse (CVSS v2 is not
/// scored: OSV feeds carry v3 or a label next to it).
///
/// ```
/// use sluice_plugin_scan::severity::base_score;
/// let (score, _) = base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").unwrap();
/// assert_eq!(score, 9.8);
/// ```
pub fn base_score(vector: &str) -> Option<(f64, CvssVersion)> {
    let v = vector.trim();
    if v.starts_with("CVSS:3.") {
        if !has_metrics(v, V3_BASE) {
            return None;
        }
        let parsed = cvss::v3::Vector::from_str(v).ok()?;
        Some((parsed.base_score().value(), CvssVersion::V3))
    } else if v.starts_with("CVSS:4.") {
        if !has_metrics(v, V4_BASE) {
            return None;
        }
        let parsed = cvss::v4::Vector::from_str(v).ok()?;
        Some((parsed.score().value(), CvssVersion::V4))
    } else {
        None
    }
}

/// The base metrics a CVSS v3 vector must name (the `cvss` crate accepts
/// vectors with some missing; the specification does not).
const V3_BASE: &[&str] = &["AV", "AC", "PR", "UI", "S", "C", "I", "A"];
/// The base metrics a CVSS v4 vector must name.
const V4_BASE: &[&str] = &[
    "AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA",
];

/// Whether every metric in `required` appears exactly once in `vector`.
fn has_metrics(vector: &str, required: &[&str]) -> bool {
    let names: Vec<&str> = vector
        .split('/')
        .skip(1)
        .filter_map(|part| part.split(':').next())
        .collect();
    required
        .iter()
        .all(|r| names.iter().filter(|n| *n == r).count() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(v: &str) -> f64 {
        base_score(v).unwrap_or_else(|| panic!("{v} parses")).0
    }

    #[test]
    fn known_v31_vectors_score_as_the_first_calculator() {
        // Scores from the FIRST CVSS 3.1 calculator.
        assert_eq!(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), 9.8);
        assert_eq!(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"), 10.0);
        assert_eq!(score("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"), 7.2);
        assert_eq!(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"), 5.3);
        assert_eq!(score("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H"), 5.9);
        assert_eq!(score("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:L"), 3.7);
        assert_eq!(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"), 6.1);
        assert_eq!(score("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"), 7.8);
        assert_eq!(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"), 0.0);
    }

    #[test]
    fn v30_vectors_score_too() {
        assert_eq!(score("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"), 7.5);
        assert_eq!(score("CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H"), 9.6);
    }

    #[test]
    fn v4_vectors_score() {
        assert_eq!(
            score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"),
            9.3
        );
    }

    #[test]
    fn bad_vectors_do_not_score() {
        for v in [
            "",
            "AV:N/AC:L/Au:N/C:P/I:P/A:P",
            "CVSS:3.1/AV:X/AC:L",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
            "CVSS:9.9/AV:N",
        ] {
            assert!(base_score(v).is_none(), "{v}");
        }
    }

    #[test]
    fn buckets_follow_the_documented_thresholds() {
        assert_eq!(Severity::from_score(10.0), Severity::Critical);
        assert_eq!(Severity::from_score(9.0), Severity::Critical);
        assert_eq!(Severity::from_score(8.9), Severity::High);
        assert_eq!(Severity::from_score(6.9), Severity::Medium);
        assert_eq!(Severity::from_score(4.0), Severity::Medium);
        assert_eq!(Severity::from_score(3.9), Severity::Low);
        assert_eq!(Severity::from_score(0.0), Severity::None);
    }
}
