//! Line coverage from the two report formats nearly every tool can write:
//! LCOV ([`lcov`]) and Cobertura XML ([`cobertura`]).

pub mod cobertura;
pub mod lcov;

use serde::Deserialize;

/// A coverage report format (`with.coverage.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// LCOV tracefile (`coverage.py lcov`, `pytest --cov-report=lcov`,
    /// `cargo llvm-cov --lcov`, `c8`, `lcov`).
    Lcov,
    /// Cobertura XML (`coverage.py xml`, `pytest --cov-report=xml`,
    /// `cargo llvm-cov --cobertura`, `gocover-cobertura`, JaCoCo converters).
    Cobertura,
}

impl Format {
    /// Guesses the format from a file name: `.xml` is Cobertura; `.info`,
    /// `.lcov` and `lcov*` names are LCOV.
    pub fn from_path(path: &str) -> Option<Self> {
        let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
        if name.ends_with(".xml") {
            Some(Self::Cobertura)
        } else if name.ends_with(".info") || name.ends_with(".lcov") || name.starts_with("lcov") {
            Some(Self::Lcov)
        } else {
            None
        }
    }

    /// The format's name as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lcov => "lcov",
            Self::Cobertura => "cobertura",
        }
    }

    /// Artifact name and media type for a copy of the report.
    pub fn artifact(self) -> (&'static str, &'static str) {
        match self {
            Self::Lcov => ("coverage.lcov", "text/plain"),
            Self::Cobertura => ("coverage.xml", "application/xml"),
        }
    }
}

/// Lines measured and lines covered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lines {
    /// Instrumented lines.
    pub valid: u64,
    /// Lines executed at least once.
    pub covered: u64,
}

/// Line coverage of a report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LineCoverage {
    /// Exact line counts.
    Counts(Lines),
    /// Only a rate (0-1) was given (Cobertura without `lines-*`).
    Rate(f64),
}

impl LineCoverage {
    /// Percent (0-100), or `None` when the report measured no lines at all
    /// (usually a misconfigured `--cov` target: better inconclusive than
    /// a silent 0 or 100).
    pub fn percent(self) -> Option<f64> {
        match self {
            Self::Counts(l) if l.valid == 0 => None,
            Self::Counts(l) => Some(l.covered.min(l.valid) as f64 * 100.0 / l.valid as f64),
            // Rates are written with a few decimals (0.6125); keep the
            // percent free of binary noise (61.25, not 61.250000000000014).
            Self::Rate(r) => Some((r * 1e6).round() / 1e4),
        }
    }
}

/// Parses `text` as `format`.
pub fn parse(format: Format, text: &str) -> Result<LineCoverage, String> {
    match format {
        Format::Lcov => lcov::parse(text).map(LineCoverage::Counts),
        Format::Cobertura => cobertura::parse(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_guessed_from_names() {
        assert_eq!(
            Format::from_path("reports/coverage.xml"),
            Some(Format::Cobertura)
        );
        assert_eq!(Format::from_path("coverage/lcov.info"), Some(Format::Lcov));
        assert_eq!(
            Format::from_path("reports/coverage.lcov"),
            Some(Format::Lcov)
        );
        assert_eq!(Format::from_path("coverage.json"), None);
    }

    #[test]
    fn percent_of_counts_and_rates() {
        let c = LineCoverage::Counts(Lines {
            valid: 64,
            covered: 48,
        });
        assert_eq!(c.percent(), Some(75.0));
        assert_eq!(LineCoverage::Counts(Lines::default()).percent(), None);
        assert_eq!(LineCoverage::Rate(0.5).percent(), Some(50.0));
    }
}
