//! Package ecosystems and their version orderings.
//!
//! OSV ranges are evaluated with each ecosystem's own rules:
//!
//! | ecosystem | OSV name | ordering | names compared |
//! |---|---|---|---|
//! | [`Ecosystem::CratesIo`] | `crates.io` | SemVer 2.0 ([`semver`](mod@self::semver)) | exactly |
//! | [`Ecosystem::Npm`] | `npm` | SemVer 2.0 | exactly |
//! | [`Ecosystem::PyPi`] | `PyPI` | PEP 440 ([`pep440`]) | PEP 503-normalized |
//! | [`Ecosystem::Go`] | `Go` | SemVer 2.0 with a `v` prefix; pseudo-versions compare as SemVer pre-releases ([`go`]) | exactly |
//!
//! npm pre-releases (`1.0.0-beta.2`) sort before their release, as OSV's
//! npm ranges expect; SemVer ranges from OSV's `SEMVER` type are
//! evaluated the same way for every ecosystem.

pub mod go;
pub mod pep440;
pub mod semver;

use std::cmp::Ordering;
use std::fmt;

/// A package ecosystem the scanner understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ecosystem {
    /// Rust crates (`Cargo.lock`).
    CratesIo,
    /// npm packages (`package-lock.json`).
    Npm,
    /// Python packages (`requirements.txt`, `poetry.lock`, `Pipfile.lock`, `uv.lock`).
    PyPi,
    /// Go modules (`go.mod`, `go.sum`).
    Go,
}

impl Ecosystem {
    /// The ecosystem's name as OSV spells it.
    ///
    /// ```
    /// use sluice_plugin_scan::version::Ecosystem;
    /// assert_eq!(Ecosystem::PyPi.osv_name(), "PyPI");
    /// ```
    pub fn osv_name(self) -> &'static str {
        match self {
            Self::CratesIo => "crates.io",
            Self::Npm => "npm",
            Self::PyPi => "PyPI",
            Self::Go => "Go",
        }
    }

    /// Parses an OSV `affected[].package.ecosystem` value. A `:suffix`
    /// (OSV's ecosystem variants) is ignored; unknown ecosystems give `None`.
    ///
    /// ```
    /// use sluice_plugin_scan::version::Ecosystem;
    /// assert_eq!(Ecosystem::from_osv("crates.io"), Some(Ecosystem::CratesIo));
    /// assert_eq!(Ecosystem::from_osv("Debian:12"), None);
    /// ```
    pub fn from_osv(name: &str) -> Option<Self> {
        let base = name.split(':').next().unwrap_or(name).trim();
        match base {
            "crates.io" => Some(Self::CratesIo),
            "npm" => Some(Self::Npm),
            "PyPI" | "pypi" => Some(Self::PyPi),
            "Go" => Some(Self::Go),
            _ => None,
        }
    }

    /// The package name in the form used to compare names: PEP 503
    /// normalization for PyPI (`Foo_Bar.baz` → `foo-bar-baz`), unchanged
    /// otherwise.
    ///
    /// ```
    /// use sluice_plugin_scan::version::Ecosystem;
    /// assert_eq!(Ecosystem::PyPi.normalize_name("PyYAML"), "pyyaml");
    /// assert_eq!(Ecosystem::PyPi.normalize_name("zope.interface"), "zope-interface");
    /// ```
    pub fn normalize_name(self, name: &str) -> String {
        match self {
            Self::PyPi => pep440::normalize_name(name),
            Self::CratesIo | Self::Npm | Self::Go => name.trim().to_string(),
        }
    }

    /// The version scheme OSV `ECOSYSTEM` ranges of this ecosystem use.
    pub fn scheme(self) -> Scheme {
        match self {
            // Go versions are SemVer; `parse_lenient` drops the `v` and
            // `+incompatible` as `go::parse` does.
            Self::CratesIo | Self::Npm | Self::Go => Scheme::Semver,
            Self::PyPi => Scheme::Pep440,
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.osv_name())
    }
}

/// A way of ordering versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// SemVer 2.0 precedence (build metadata ignored).
    Semver,
    /// PEP 440 ordering (epochs, pre-, post-, dev- and local releases).
    Pep440,
}

/// A parsed version of either scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// A SemVer version (build metadata already stripped).
    Semver(::semver::Version),
    /// A PEP 440 version.
    Pep440(pep440_rs::Version),
}

impl Version {
    /// Parses `text` under `scheme`; `None` when it is not a valid version
    /// of that scheme.
    ///
    /// ```
    /// use sluice_plugin_scan::version::{Scheme, Version};
    /// let a = Version::parse(Scheme::Pep440, "2.0.0rc1").unwrap();
    /// let b = Version::parse(Scheme::Pep440, "2.0.0").unwrap();
    /// assert_eq!(a.compare(&b), Some(std::cmp::Ordering::Less));
    /// ```
    pub fn parse(scheme: Scheme, text: &str) -> Option<Version> {
        match scheme {
            Scheme::Semver => semver::parse_lenient(text).map(Version::Semver),
            Scheme::Pep440 => pep440::parse(text).map(Version::Pep440),
        }
    }

    /// Compares two versions of the same scheme; `None` across schemes.
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        match (self, other) {
            (Version::Semver(a), Version::Semver(b)) => Some(semver::precedence(a, b)),
            (Version::Pep440(a), Version::Pep440(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystems_round_trip_their_osv_names() {
        for e in [
            Ecosystem::CratesIo,
            Ecosystem::Npm,
            Ecosystem::PyPi,
            Ecosystem::Go,
        ] {
            assert_eq!(Ecosystem::from_osv(e.osv_name()), Some(e));
        }
        assert_eq!(Ecosystem::from_osv("Maven"), None);
    }

    #[test]
    fn go_versions_parse_like_go() {
        // Whatever Version::parse does with a Go version must agree with go::parse.
        for text in [
            "v1.2.3",
            "v2.0.0+incompatible",
            "v0.0.0-20220314234659-1baeb1ce4c0b",
            "v1.3.0-rc.1.0.20220101000000-abcdefabcdef",
        ] {
            let ours = match Version::parse(Ecosystem::Go.scheme(), text) {
                Some(Version::Semver(v)) => Some(v),
                _ => None,
            };
            assert_eq!(ours, go::parse(text), "{text}");
        }
    }

    #[test]
    fn npm_prereleases_compare_as_semver() {
        let v = |s: &str| Version::parse(Ecosystem::Npm.scheme(), s);
        let (Some(beta), Some(rc), Some(rel)) = (v("4.0.0-beta.3"), v("4.0.0-rc.0"), v("4.0.0"))
        else {
            panic!("npm versions parse");
        };
        assert_eq!(beta.compare(&rc), Some(Ordering::Less));
        assert_eq!(rc.compare(&rel), Some(Ordering::Less));
    }

    #[test]
    fn versions_of_different_schemes_do_not_compare() {
        let a = Version::parse(Scheme::Semver, "1.0.0");
        let b = Version::parse(Scheme::Pep440, "1.0.0");
        match (a, b) {
            (Some(a), Some(b)) => assert_eq!(a.compare(&b), None),
            other => panic!("both parse: {other:?}"),
        }
    }
}
