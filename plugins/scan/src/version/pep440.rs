//! PEP 440 versions for PyPI, on top of the `pep440_rs` crate (which builds
//! for `wasm32-wasip2`).
//!
//! Ordering per PEP 440: epoch first (`1!0.1 > 2.0`), then the release
//! numbers with trailing zeros insignificant (`1.0 == 1.0.0`), then
//! `.devN` < pre-releases (`aN` < `bN` < `rcN`) < the release < `.postN`;
//! a local label (`+ubuntu1`) sorts after the same public version.

/// Parses a PEP 440 version (normalizing spellings such as `1.0-RC1`,
/// `v1.0`, `1.0.post-1`). `None` when it is not a valid version.
///
/// ```
/// use sluice_plugin_scan::version::pep440::parse;
/// assert!(parse("1.0.post1").unwrap() > parse("1.0").unwrap());
/// assert!(parse("not a version").is_none());
/// ```
pub fn parse(text: &str) -> Option<pep440_rs::Version> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    t.parse().ok()
}

/// PEP 503 name normalization: lowercase, runs of `-`, `_` and `.` become
/// one `-`.
///
/// ```
/// use sluice_plugin_scan::version::pep440::normalize_name;
/// assert_eq!(normalize_name("Django_REST--framework"), "django-rest-framework");
/// ```
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
            }
            in_sep = true;
        } else {
            out.extend(c.to_lowercase());
            in_sep = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    fn cmp(a: &str, b: &str) -> Ordering {
        match (parse(a), parse(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => panic!("{a} or {b} does not parse"),
        }
    }

    #[test]
    fn pre_releases_sort_before_the_release() {
        assert_eq!(cmp("2.0.0rc1", "2.0.0"), Ordering::Less);
        assert_eq!(cmp("2.0.0a1", "2.0.0b1"), Ordering::Less);
        assert_eq!(cmp("2.0.0b2", "2.0.0rc1"), Ordering::Less);
        assert_eq!(cmp("2.0.0rc1", "1.9.9"), Ordering::Greater);
    }

    #[test]
    fn post_releases_sort_after_the_release() {
        assert_eq!(cmp("1.0.post1", "1.0"), Ordering::Greater);
        assert_eq!(cmp("1.0.post1", "1.0.1"), Ordering::Less);
        assert_eq!(cmp("1.0-1", "1.0.post1"), Ordering::Equal);
    }

    #[test]
    fn dev_releases_sort_first() {
        assert_eq!(cmp("1.0.dev1", "1.0a1"), Ordering::Less);
        assert_eq!(cmp("1.0a1.dev1", "1.0a1"), Ordering::Less);
        assert_eq!(cmp("1.0.post1.dev1", "1.0.post1"), Ordering::Less);
        assert_eq!(cmp("1.0.post1.dev1", "1.0"), Ordering::Greater);
    }

    #[test]
    fn epochs_dominate() {
        assert_eq!(cmp("1!0.1", "2.0"), Ordering::Greater);
        assert_eq!(cmp("0!2.0", "2.0"), Ordering::Equal);
        assert_eq!(cmp("1!1.0", "2!0.1"), Ordering::Less);
    }

    #[test]
    fn trailing_zeros_and_spellings_are_insignificant() {
        assert_eq!(cmp("1.0", "1.0.0"), Ordering::Equal);
        assert_eq!(cmp("1.0-RC1", "1.0rc1"), Ordering::Equal);
        assert_eq!(cmp("v1.2", "1.2"), Ordering::Equal);
        assert_eq!(cmp("1.10", "1.9"), Ordering::Greater);
    }

    #[test]
    fn local_versions_sort_after_the_public_one() {
        assert_eq!(cmp("1.0+ubuntu1", "1.0"), Ordering::Greater);
        assert_eq!(cmp("1.0+ubuntu1", "1.0.post1"), Ordering::Less);
    }

    #[test]
    fn invalid_versions_are_rejected() {
        for s in ["", "1.0.0-beta.2+x!y", "one", "1.0 2.0"] {
            assert!(parse(s).is_none(), "{s}");
        }
    }

    #[test]
    fn names_normalize() {
        assert_eq!(normalize_name("requests"), "requests");
        assert_eq!(normalize_name("Jinja2"), "jinja2");
        assert_eq!(normalize_name("a._-b"), "a-b");
    }
}
