//! SemVer 2.0 versions for crates.io and npm, on top of the `semver` crate.
//!
//! Lockfiles and advisories sometimes write versions loosely (`v1.2.3`,
//! `=1.2.3`, `1.2`); [`parse_lenient`] accepts those and pads missing
//! components with zeros. Comparison follows SemVer precedence: build
//! metadata is ignored and a pre-release sorts before its release
//! (`1.0.0-alpha < 1.0.0`).

use std::cmp::Ordering;

use semver::{BuildMetadata, Version};

/// Parses a SemVer version, tolerating a leading `v` or `=`, surrounding
/// whitespace and a missing minor or patch component. Build metadata is
/// dropped (it has no precedence). `None` when it is not a version.
///
/// ```
/// use sluice_plugin_scan::version::semver::parse_lenient;
/// assert_eq!(parse_lenient("v1.2").map(|v| v.to_string()).as_deref(), Some("1.2.0"));
/// assert!(parse_lenient("latest").is_none());
/// ```
pub fn parse_lenient(text: &str) -> Option<Version> {
    let t = text.trim().trim_start_matches('=').trim();
    let t = t.strip_prefix('v').unwrap_or(t);
    if t.is_empty() {
        return None;
    }
    let mut v = match Version::parse(t) {
        Ok(v) => v,
        Err(_) => Version::parse(&pad(t)?).ok()?,
    };
    v.build = BuildMetadata::EMPTY;
    Some(v)
}

/// `1` → `1.0.0`, `1.2-rc.1` → `1.2.0-rc.1`; `None` when the core is not
/// one to three dot-separated numbers.
fn pad(t: &str) -> Option<String> {
    let split = t.find(['-', '+']).unwrap_or(t.len());
    let (core, rest) = t.split_at(split);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut padded = parts.join(".");
    for _ in parts.len()..3 {
        padded.push_str(".0");
    }
    padded.push_str(rest);
    Some(padded)
}

/// SemVer precedence: major, minor, patch, then pre-release (a version
/// without one is greater); build metadata is ignored.
pub fn precedence(a: &Version, b: &Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| match (a.pre.is_empty(), b.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => a.pre.cmp(&b.pre),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        parse_lenient(s).unwrap_or_else(|| panic!("{s} parses"))
    }

    #[test]
    fn prereleases_sort_before_their_release() {
        assert_eq!(precedence(&v("1.0.0-alpha"), &v("1.0.0")), Ordering::Less);
        assert_eq!(
            precedence(&v("1.0.0-alpha"), &v("1.0.0-alpha.1")),
            Ordering::Less
        );
        assert_eq!(
            precedence(&v("1.0.0-alpha.beta"), &v("1.0.0-beta")),
            Ordering::Less
        );
        assert_eq!(
            precedence(&v("1.0.0-beta.2"), &v("1.0.0-beta.11")),
            Ordering::Less
        );
        assert_eq!(precedence(&v("1.0.0-rc.1"), &v("0.9.9")), Ordering::Greater);
    }

    #[test]
    fn numeric_components_compare_as_numbers() {
        assert_eq!(precedence(&v("1.10.0"), &v("1.9.0")), Ordering::Greater);
        assert_eq!(precedence(&v("0.2.23"), &v("0.2.7")), Ordering::Greater);
    }

    #[test]
    fn build_metadata_is_ignored() {
        assert_eq!(
            precedence(&v("1.0.0+build.5"), &v("1.0.0+other")),
            Ordering::Equal
        );
    }

    #[test]
    fn loose_forms_are_accepted() {
        assert_eq!(v("v2.1.3"), v("2.1.3"));
        assert_eq!(v("=0.3"), v("0.3.0"));
        assert_eq!(v("4"), v("4.0.0"));
        assert_eq!(v("1.2-rc.1"), v("1.2.0-rc.1"));
        assert_eq!(v("0.0.0-0").pre.as_str(), "0");
    }

    #[test]
    fn non_versions_are_rejected() {
        for s in ["", "latest", "1.2.3.4", "1..2", "a.b.c", "^1.2"] {
            assert!(parse_lenient(s).is_none(), "{s}");
        }
    }
}
