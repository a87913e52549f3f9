//! Evaluating OSV `affected[]` entries against one version.
//!
//! Follows the OSV specification's algorithm: the events of a `SEMVER` or
//! `ECOSYSTEM` range are sorted by version (`introduced: "0"` first) and
//! walked in order; `introduced` opens an interval (inclusive), `fixed`
//! closes it (exclusive), `last_affected` closes it (inclusive), and a
//! `limit` caps the whole range (exclusive). `GIT` ranges are ignored
//! (a lockfile names versions, not commits). Versions listed in
//! `affected[].versions` match exactly.

use std::cmp::Ordering;

use super::model::{Affected, Event};
use crate::version::{Ecosystem, Scheme, Version};

/// How a version is affected by one `affected[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The lowest `fixed` version above the queried one, in the interval
    /// that contains it.
    pub fixed: Option<String>,
    /// The `last_affected` of that interval, if it had one.
    pub last_affected: Option<String>,
}

/// An event with its version parsed.
struct Parsed<'a> {
    event: &'a Event,
    /// `None` for `introduced: "0"`.
    version: Option<Version>,
}

impl Parsed<'_> {
    fn kind_rank(&self) -> u8 {
        // Ties at one version: open before close, so "introduced X, fixed X"
        // is an empty interval rather than an unbounded one.
        if self.event.introduced.is_some() {
            0
        } else if self.event.last_affected.is_some() {
            1
        } else if self.event.fixed.is_some() {
            2
        } else {
            3
        }
    }
}

/// Whether `version` (as written in the lockfile) of a package of
/// `ecosystem` is affected by `entry`; `Some` with the fix information when
/// it is. `unparsable` is set when the package version could not be parsed
/// under a range's scheme (then only `versions` can match).
pub fn affected(
    ecosystem: Ecosystem,
    version: &str,
    entry: &Affected,
    unparsable: &mut bool,
) -> Option<Verdict> {
    let mut listed = false;
    if entry
        .versions
        .iter()
        .any(|listed_version| same_version(ecosystem, version, listed_version))
    {
        listed = true;
    }
    let mut verdict: Option<Verdict> = None;
    for range in &entry.ranges {
        let scheme = match range.kind.as_str() {
            "SEMVER" => Scheme::Semver,
            "ECOSYSTEM" => ecosystem.scheme(),
            _ => continue,
        };
        let Some(v) = Version::parse(scheme, version) else {
            *unparsable = true;
            continue;
        };
        if let Some(found) = evaluate(scheme, &v, &range.events) {
            verdict = Some(merge(verdict, found, scheme));
        }
    }
    match verdict {
        Some(v) => Some(v),
        None if listed => Some(Verdict {
            fixed: None,
            last_affected: None,
        }),
        None => None,
    }
}

/// Keeps the lowest fix of two verdicts for the same version.
fn merge(current: Option<Verdict>, new: Verdict, scheme: Scheme) -> Verdict {
    let Some(cur) = current else { return new };
    let lower = match (&cur.fixed, &new.fixed) {
        (Some(a), Some(b)) => match (Version::parse(scheme, a), Version::parse(scheme, b)) {
            (Some(x), Some(y)) if x.compare(&y) == Some(Ordering::Greater) => new.fixed.clone(),
            _ => cur.fixed.clone(),
        },
        (None, f) | (f, None) => f.clone(),
    };
    Verdict {
        fixed: lower,
        last_affected: cur.last_affected.or(new.last_affected),
    }
}

/// Evaluates one range's events for `v`.
fn evaluate(scheme: Scheme, v: &Version, events: &[Event]) -> Option<Verdict> {
    let mut parsed: Vec<Parsed<'_>> = Vec::with_capacity(events.len());
    for event in events {
        let text = event
            .introduced
            .as_deref()
            .or(event.fixed.as_deref())
            .or(event.last_affected.as_deref())
            .or(event.limit.as_deref());
        let Some(text) = text else { continue };
        let version = if event.introduced.as_deref() == Some("0") {
            None
        } else {
            match Version::parse(scheme, text) {
                Some(parsed_version) => Some(parsed_version),
                // An event we cannot read: skip it rather than guess.
                None => continue,
            }
        };
        parsed.push(Parsed { event, version });
    }
    parsed.sort_by(|a, b| {
        let by_version = match (&a.version, &b.version) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x.compare(y).unwrap_or(Ordering::Equal),
        };
        by_version.then(a.kind_rank().cmp(&b.kind_rank()))
    });

    let ge = |bound: &Option<Version>| {
        bound
            .as_ref()
            .is_none_or(|b| matches!(v.compare(b), Some(Ordering::Greater | Ordering::Equal)))
    };
    let gt = |bound: &Option<Version>| {
        bound
            .as_ref()
            .is_none_or(|b| v.compare(b) == Some(Ordering::Greater))
    };

    let mut is_affected = false;
    let mut open_at: Option<usize> = None;
    for (i, p) in parsed.iter().enumerate() {
        if p.event.introduced.is_some() {
            if ge(&p.version) {
                is_affected = true;
                open_at = Some(i);
            }
        } else if p.event.fixed.is_some() {
            if ge(&p.version) {
                is_affected = false;
            }
        } else if p.event.last_affected.is_some() {
            if gt(&p.version) {
                is_affected = false;
            }
        } else if p.event.limit.is_some() && ge(&p.version) {
            is_affected = false;
        }
    }
    if !is_affected {
        return None;
    }
    // The interval that holds `v` closes at the first close event after it.
    let start = open_at.unwrap_or(0);
    let close = parsed
        .iter()
        .skip(start + 1)
        .find(|p| p.event.fixed.is_some() || p.event.last_affected.is_some());
    Some(Verdict {
        fixed: close.and_then(|p| p.event.fixed.clone()),
        last_affected: close.and_then(|p| p.event.last_affected.clone()),
    })
}

/// Whether two version strings name the same version in `ecosystem`
/// (`1.0` and `1.0.0` are the same PyPI version); falls back to string
/// equality when either does not parse.
fn same_version(ecosystem: Ecosystem, a: &str, b: &str) -> bool {
    if a.trim() == b.trim() {
        return true;
    }
    match (
        Version::parse(ecosystem.scheme(), a),
        Version::parse(ecosystem.scheme(), b),
    ) {
        (Some(x), Some(y)) => x.compare(&y) == Some(Ordering::Equal),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv::model::Range;

    fn ev(kind: &str, v: &str) -> Event {
        let mut e = Event::default();
        let s = Some(v.to_string());
        match kind {
            "introduced" => e.introduced = s,
            "fixed" => e.fixed = s,
            "last_affected" => e.last_affected = s,
            _ => e.limit = s,
        }
        e
    }

    fn entry(kind: &str, events: &[(&str, &str)], versions: &[&str]) -> Affected {
        Affected {
            package: None,
            ranges: vec![Range {
                kind: kind.to_string(),
                events: events.iter().map(|(k, v)| ev(k, v)).collect(),
            }],
            versions: versions.iter().map(|s| s.to_string()).collect(),
            severity: Vec::new(),
            database_specific: None,
        }
    }

    fn check(eco: Ecosystem, version: &str, e: &Affected) -> Option<Verdict> {
        let mut unparsable = false;
        affected(eco, version, e, &mut unparsable)
    }

    fn fixed_in(eco: Ecosystem, version: &str, e: &Affected) -> Option<Option<String>> {
        check(eco, version, e).map(|v| v.fixed)
    }

    #[test]
    fn semver_intervals_with_several_branches() {
        // Modeled on RUSTSEC-2021-0003 (smallvec).
        let e = entry(
            "SEMVER",
            &[
                ("introduced", "0.6.3"),
                ("fixed", "0.6.14"),
                ("introduced", "1.0.0"),
                ("fixed", "1.6.1"),
            ],
            &[],
        );
        let c = Ecosystem::CratesIo;
        assert_eq!(fixed_in(c, "0.6.2", &e), None);
        assert_eq!(fixed_in(c, "0.6.3", &e), Some(Some("0.6.14".into())));
        assert_eq!(fixed_in(c, "0.6.14", &e), None);
        assert_eq!(fixed_in(c, "0.9.0", &e), None);
        assert_eq!(fixed_in(c, "1.6.0", &e), Some(Some("1.6.1".into())));
        assert_eq!(fixed_in(c, "1.6.1", &e), None);
        assert_eq!(fixed_in(c, "2.0.0", &e), None);
    }

    #[test]
    fn events_in_any_order_are_sorted() {
        let e = entry(
            "SEMVER",
            &[
                ("fixed", "1.6.1"),
                ("introduced", "1.0.0"),
                ("fixed", "0.6.14"),
                ("introduced", "0.6.3"),
            ],
            &[],
        );
        assert!(check(Ecosystem::CratesIo, "1.2.0", &e).is_some());
        assert!(check(Ecosystem::CratesIo, "0.7.0", &e).is_none());
    }

    #[test]
    fn prereleases_fall_before_the_fix() {
        let e = entry("SEMVER", &[("introduced", "0"), ("fixed", "1.0.0")], &[]);
        assert!(check(Ecosystem::Npm, "1.0.0-alpha", &e).is_some());
        assert!(check(Ecosystem::Npm, "1.0.0", &e).is_none());
        // introduced "0.0.0-0" (RustSec's "from the start") covers pre-releases too.
        let e = entry(
            "SEMVER",
            &[("introduced", "0.0.0-0"), ("fixed", "0.2.0")],
            &[],
        );
        assert!(check(Ecosystem::CratesIo, "0.1.0-beta.1", &e).is_some());
        assert!(check(Ecosystem::CratesIo, "0.2.0", &e).is_none());
    }

    #[test]
    fn last_affected_is_inclusive() {
        let e = entry(
            "ECOSYSTEM",
            &[("introduced", "0"), ("last_affected", "1.24.2")],
            &[],
        );
        let p = Ecosystem::PyPi;
        let v = check(p, "1.24.2", &e);
        assert_eq!(
            v,
            Some(Verdict {
                fixed: None,
                last_affected: Some("1.24.2".into())
            })
        );
        assert!(check(p, "1.24.2.post1", &e).is_none());
        assert!(check(p, "1.24.3", &e).is_none());
    }

    #[test]
    fn limit_caps_the_range() {
        let e = entry(
            "SEMVER",
            &[("introduced", "1.0.0"), ("limit", "2.0.0")],
            &[],
        );
        assert!(check(Ecosystem::Npm, "1.9.9", &e).is_some());
        assert!(check(Ecosystem::Npm, "2.0.0", &e).is_none());
    }

    #[test]
    fn open_ended_ranges_have_no_fix() {
        let e = entry("ECOSYSTEM", &[("introduced", "2.0")], &[]);
        assert_eq!(fixed_in(Ecosystem::PyPi, "3.1", &e), Some(None));
        assert_eq!(fixed_in(Ecosystem::PyPi, "1.9", &e), None);
    }

    #[test]
    fn pep440_ranges_use_pep440_ordering() {
        let e = entry("ECOSYSTEM", &[("introduced", "0"), ("fixed", "2.0.0")], &[]);
        let p = Ecosystem::PyPi;
        assert!(check(p, "2.0.0rc1", &e).is_some(), "rc1 < 2.0.0");
        assert!(check(p, "2.0.0.dev3", &e).is_some());
        assert!(check(p, "2.0", &e).is_none(), "2.0 == 2.0.0");
        assert!(check(p, "2.0.0.post1", &e).is_none());
        assert!(
            check(p, "1!1.0", &e).is_none(),
            "epoch 1 is above every epoch-0 version"
        );
        let e = entry(
            "ECOSYSTEM",
            &[("introduced", "1.0"), ("fixed", "1.0.post1")],
            &[],
        );
        assert!(check(p, "1.0", &e).is_some());
        assert!(check(p, "1.0.post1", &e).is_none());
    }

    #[test]
    fn listed_versions_match_exactly() {
        let e = entry("GIT", &[("introduced", "abc123")], &["2.19.1", "2.19.0"]);
        assert!(check(Ecosystem::PyPi, "2.19.1", &e).is_some());
        assert!(check(Ecosystem::PyPi, "2.19.1.0", &e).is_some());
        assert!(check(Ecosystem::PyPi, "2.19.2", &e).is_none());
    }

    #[test]
    fn unparsable_versions_are_reported() {
        let e = entry("ECOSYSTEM", &[("introduced", "0"), ("fixed", "1.0")], &[]);
        let mut unparsable = false;
        assert!(affected(Ecosystem::Npm, "latest", &e, &mut unparsable).is_none());
        assert!(unparsable);
    }
}
