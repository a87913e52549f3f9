//! The subset of the [OSV schema](https://ossf.github.io/osv-schema/) the
//! scanner reads. Unknown fields are ignored (feeds add their own) and
//! `null` is read as "absent" wherever a list or object is expected.

use serde::{Deserialize, Deserializer};

/// One advisory (one `.json` file of the database).
#[derive(Debug, Clone, Deserialize)]
pub struct Advisory {
    /// `GHSA-…`, `RUSTSEC-…`, `PYSEC-…`, ….
    pub id: String,
    /// Other ids of the same vulnerability (`CVE-…`, `GHSA-…`).
    #[serde(default, deserialize_with = "null_default")]
    pub aliases: Vec<String>,
    /// One-line summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Longer description (markdown).
    #[serde(default)]
    pub details: Option<String>,
    /// Set when the advisory was withdrawn; such advisories never match.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// Affected packages.
    #[serde(default, deserialize_with = "null_default")]
    pub affected: Vec<Affected>,
    /// Severity scores of the vulnerability.
    #[serde(default, deserialize_with = "null_default")]
    pub severity: Vec<SeverityScore>,
    /// Feed-specific data; `severity` is read from it.
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
    /// Links (the first `ADVISORY` or `WEB` one is shown in SARIF).
    #[serde(default, deserialize_with = "null_default")]
    pub references: Vec<Reference>,
}

/// One `affected[]` entry: a package and the versions of it affected.
#[derive(Debug, Clone, Deserialize)]
pub struct Affected {
    /// The package; entries without one are skipped.
    #[serde(default)]
    pub package: Option<Package>,
    /// Version ranges.
    #[serde(default, deserialize_with = "null_default")]
    pub ranges: Vec<Range>,
    /// Explicitly listed affected versions.
    #[serde(default, deserialize_with = "null_default")]
    pub versions: Vec<String>,
    /// Per-package severity (OSV 1.5+).
    #[serde(default, deserialize_with = "null_default")]
    pub severity: Vec<SeverityScore>,
    /// Feed-specific data.
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

/// `affected[].package`.
#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    /// `crates.io`, `npm`, `PyPI`, ….
    pub ecosystem: String,
    /// The package name as the ecosystem spells it.
    pub name: String,
}

/// `affected[].ranges[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Range {
    /// `SEMVER`, `ECOSYSTEM` or `GIT` (ignored).
    #[serde(rename = "type")]
    pub kind: String,
    /// The events, in any order.
    #[serde(default, deserialize_with = "null_default")]
    pub events: Vec<Event>,
}

/// One range event; exactly one field is set.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Event {
    /// The range starts (inclusive) at this version; `"0"` means "from the
    /// first version".
    #[serde(default)]
    pub introduced: Option<String>,
    /// The range ends (exclusive) at this version.
    #[serde(default)]
    pub fixed: Option<String>,
    /// The range ends (inclusive) at this version.
    #[serde(default)]
    pub last_affected: Option<String>,
    /// Upper limit (exclusive) of the whole range.
    #[serde(default)]
    pub limit: Option<String>,
}

/// `severity[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct SeverityScore {
    /// `CVSS_V3`, `CVSS_V4`, `CVSS_V2`, `Ubuntu`, ….
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector string (for CVSS types).
    pub score: String,
}

/// `references[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    /// `ADVISORY`, `WEB`, `FIX`, `PACKAGE`, ….
    #[serde(rename = "type")]
    pub kind: String,
    /// The link.
    pub url: String,
}

impl Advisory {
    /// The id and every alias.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// The advisory's own link, if it lists one.
    pub fn link(&self) -> Option<&str> {
        self.references
            .iter()
            .find(|r| r.kind == "ADVISORY")
            .or_else(|| self.references.iter().find(|r| r.kind == "WEB"))
            .map(|r| r.url.as_str())
    }
}

/// Reads `null` as `T::default()`.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
