//! `with.allow`: findings a team has reviewed and accepted.
//!
//! Each entry is either
//!
//! - an exact **fingerprint** of a secret finding, `path:rule-id:line`
//!   (printed in the log, `scan.json` and SARIF `partialFingerprints`), or
//! - an exact **advisory id or alias** (`GHSA-…`, `RUSTSEC-…`, `CVE-…`,
//!   `PYSEC-…`), which ignores that vulnerability everywhere, or
//! - a **regular expression** (`regex` crate syntax) tested against the
//!   secret value itself, e.g. `^AKIA[0-9A-Z]{9}EXAMPLE$` to accept keys shaped
//!   like AWS's documentation key (4 + 9 + 7 = 20 characters; that exact
//!   key and its secret are suppressed by default already). The value never leaves the stage.
//!
//! Every entry is compiled as a regex up front, so a malformed one is a
//! configuration error even when it was meant as a fingerprint.

use std::collections::BTreeSet;

use regex::Regex;

/// The compiled allowlist.
#[derive(Debug, Default, Clone)]
pub struct Allowlist {
    exact: BTreeSet<String>,
    patterns: Vec<Regex>,
}

/// An entry that is not a valid regex.
#[derive(Debug, thiserror::Error)]
#[error("entry {index} (`{entry}`) is not a valid regular expression: {source}")]
pub struct AllowError {
    /// Position in `with.allow`.
    pub index: usize,
    /// The entry as written.
    pub entry: String,
    /// Why it did not compile.
    #[source]
    pub source: regex::Error,
}

impl Allowlist {
    /// Compiles the entries.
    ///
    /// ```
    /// use sluice_plugin_scan::allow::Allowlist;
    /// let a = Allowlist::new(&["src/a.py:github-token:3".into(), "EXAMPLE$".into()]).unwrap();
    /// assert!(a.allows_secret("src/a.py:github-token:3", "anything"));
    /// assert!(a.allows_secret("x:y:1", "AKIAIOSFODNN7EXAMPLE")); // sluice:ignore-secret
    /// assert!(Allowlist::new(&["(".into()]).is_err());
    /// ```
    pub fn new(entries: &[String]) -> Result<Allowlist, AllowError> {
        let mut list = Allowlist::default();
        for (index, entry) in entries.iter().enumerate() {
            let re = Regex::new(entry).map_err(|source| AllowError {
                index,
                entry: entry.clone(),
                source,
            })?;
            list.exact.insert(entry.clone());
            list.patterns.push(re);
        }
        Ok(list)
    }

    /// Whether a secret finding is accepted: its fingerprint is listed, or
    /// a pattern matches the secret value.
    pub fn allows_secret(&self, fingerprint: &str, secret: &str) -> bool {
        self.exact.contains(fingerprint) || self.patterns.iter().any(|re| re.is_match(secret))
    }

    /// Whether an advisory is accepted: one of its ids (id or aliases) is
    /// listed exactly.
    pub fn allows_advisory<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> bool {
        ids.into_iter().any(|id| self.exact.contains(id))
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Allowlist {
        let owned: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        Allowlist::new(&owned).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn fingerprints_match_exactly() {
        let a = list(&["config/app.env:aws-access-key-id:3"]);
        assert!(a.allows_secret("config/app.env:aws-access-key-id:3", "AKIA"));
        assert!(!a.allows_secret("config/app.env:aws-access-key-id:4", "AKIA"));
    }

    #[test]
    fn advisories_match_ids_and_aliases_exactly() {
        let a = list(&["GHSA-x84v-xcm2-53pg"]);
        assert!(a.allows_advisory(["PYSEC-2018-28", "GHSA-x84v-xcm2-53pg"]));
        assert!(!a.allows_advisory(["GHSA-x84v-xcm2-53p"]));
    }

    #[test]
    fn the_documented_aws_example_regex_matches_the_example_key() {
        // The module docs suggest this entry; it must match AWS's key
        // (4 + 9 + 7 characters) and not a key of another length.
        let a = list(&["^AKIA[0-9A-Z]{9}EXAMPLE$"]);
        let key = ["AKIA", "IOSFODNN7", "EXAMPLE"].concat();
        assert!(a.allows_secret("x:y:1", &key));
        assert!(!a.allows_secret("x:y:1", &["AKIA", "IOSFODNN7AB", "EXAMPLE"].concat()));
    }

    #[test]
    fn bad_regex_names_the_entry() {
        let e = Allowlist::new(&["ok".into(), "[".into()]).err();
        assert_eq!(e.map(|e| e.index), Some(1));
    }
}
