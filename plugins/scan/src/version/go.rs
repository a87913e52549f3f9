//! Go module versions, as OSV compares them.
//!
//! A Go module version is SemVer 2.0 with a `v` prefix (`v1.2.3`); OSV's
//! Go advisories write their `SEMVER` range events without it (`1.2.3`).
//! Both read the same through [`parse`]. Special forms:
//!
//! - `+incompatible` (a v2+ module without a `/v2` path) is build
//!   metadata: it has no precedence, so `v2.0.0+incompatible == 2.0.0`.
//! - Pseudo-versions (`v0.0.0-20220314234659-1baeb1ce4c0b`,
//!   `v1.2.4-0.2022…-abc…`, `v1.2.3-pre.0.2022…-abc…`) are SemVer
//!   pre-releases whose last identifier is a 14-digit UTC timestamp and a
//!   12-hex commit, so plain SemVer precedence orders them by time and
//!   before the release they precede — exactly what OSV's Go ranges
//!   (including `fixed` events that are pseudo-versions) expect.

use semver::{BuildMetadata, Version};

/// Parses a Go module version (`v` prefix optional, as OSV drops it);
/// `None` unless it is full SemVer (`v1.2` is not a module version).
///
/// ```
/// use sluice_plugin_scan::version::go::parse;
/// assert_eq!(parse("v2.0.0+incompatible"), parse("2.0.0"));
/// assert!(parse("v0.0.0-20220314234659-1baeb1ce4c0b") < parse("v0.0.1"));
/// assert!(parse("v1.2").is_none());
/// ```
pub fn parse(text: &str) -> Option<Version> {
    let t = text.trim();
    let t = t.strip_prefix('v').unwrap_or(t);
    let mut v = Version::parse(t).ok()?;
    v.build = BuildMetadata::EMPTY;
    Some(v)
}

/// Whether `text` is a module version as `go.mod` and `go.sum` write it:
/// `v` followed by full SemVer.
pub fn is_module_version(text: &str) -> bool {
    text.starts_with('v') && Version::parse(&text[1..]).is_ok()
}

/// Whether `text` is a pseudo-version: its pre-release ends with
/// `yyyymmddhhmmss-abcdefabcdef`.
///
/// ```
/// use sluice_plugin_scan::version::go::is_pseudo_version;
/// assert!(is_pseudo_version("v0.0.0-20220314234659-1baeb1ce4c0b"));
/// assert!(!is_pseudo_version("v1.0.0-rc.1"));
/// ```
pub fn is_pseudo_version(text: &str) -> bool {
    let Some(v) = parse(text) else { return false };
    let pre = v.pre.as_str();
    let Some((head, commit)) = pre.rsplit_once('-') else {
        return false;
    };
    let stamp = head.rsplit('.').next().unwrap_or(head);
    commit.len() == 12
        && commit.bytes().all(|b| b.is_ascii_hexdigit())
        && stamp.len() == 14
        && stamp.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    fn cmp(a: &str, b: &str) -> Ordering {
        match (parse(a), parse(b)) {
            (Some(x), Some(y)) => crate::version::semver::precedence(&x, &y),
            _ => panic!("{a} or {b} does not parse"),
        }
    }

    #[test]
    fn prefix_and_incompatible_are_insignificant() {
        assert_eq!(cmp("v1.2.3", "1.2.3"), Ordering::Equal);
        assert_eq!(cmp("v2.0.0+incompatible", "2.0.0"), Ordering::Equal);
        assert_eq!(cmp("v2.1.0+incompatible", "2.0.9"), Ordering::Greater);
    }

    #[test]
    fn pseudo_versions_order_by_time_and_before_their_base() {
        let older = "v0.0.0-20210817164053-32db794688a5";
        let newer = "v0.0.0-20220314234659-1baeb1ce4c0b";
        assert_eq!(cmp(older, newer), Ordering::Less);
        assert_eq!(cmp(newer, "v0.0.0"), Ordering::Less);
        // vX.Y.(Z+1)-0.timestamp-commit: after vX.Y.Z, before vX.Y.(Z+1).
        let after_tag = "v1.2.4-0.20220101000000-abcdefabcdef";
        assert_eq!(cmp(after_tag, "v1.2.3"), Ordering::Greater);
        assert_eq!(cmp(after_tag, "v1.2.4"), Ordering::Less);
        // vX.Y.Z-pre.0.timestamp-commit: after the pre-release it builds on.
        let after_pre = "v1.3.0-rc.1.0.20220101000000-abcdefabcdef";
        assert_eq!(cmp(after_pre, "v1.3.0-rc.1"), Ordering::Greater);
        assert_eq!(cmp(after_pre, "v1.3.0"), Ordering::Less);
        for p in [older, after_tag, after_pre] {
            assert!(is_pseudo_version(p), "{p}");
        }
    }

    #[test]
    fn module_versions_are_full_semver_with_v() {
        assert!(is_module_version("v1.2.3"));
        assert!(is_module_version("v2.0.0+incompatible"));
        for bad in ["1.2.3", "v1.2", "vX", "", "v1.2.3.4", "latest"] {
            assert!(!is_module_version(bad), "{bad}");
        }
        assert!(parse("v1.2").is_none());
    }
}
