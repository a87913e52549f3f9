//! The policy features beyond "signed by one authority": static rules,
//! required time evidence for key authorities, issuer regular expressions,
//! thresholds of several signers, and attestation conditions.
//!
//! [`crate::policy`] holds the model and the order of checks; this
//! module holds the pieces of those checks that need more than a line.

use std::fmt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;
use sigstore_verify::{PublicKeyVerificationPolicy, Verifier};

use crate::bundle::{parse_bundle, TrustedRoot};
use crate::keys::PublicKey;
use crate::provenance::verify_artifact;

/// Suffix of the attestations stored beside a plugin.
pub const ATTESTATION_SUFFIX: &str = ".intoto.sigstore.json";

/// Where the attestations of `file` live: `FILE.intoto.sigstore.json`.
pub fn attestation_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(ATTESTATION_SUFFIX);
    PathBuf::from(name)
}

/// `static:` on a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StaticAction {
    /// Every plugin the rule matches passes the rule, unchecked.
    Pass,
    /// Every plugin the rule matches is refused.
    Fail,
}

/// Time evidence a key authority may require (`require:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// An RFC 3161 timestamp from a timestamp authority of the trusted root.
    Timestamp,
    /// A transparency-log (Rekor) entry whose inclusion verifies against a
    /// log of the trusted root.
    Tlog,
}

impl Evidence {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Evidence::Timestamp => "an RFC 3161 timestamp",
            Evidence::Tlog => "a transparency-log entry",
        }
    }
}

/// How a keyless authority matches the certificate's OIDC issuer.
#[derive(Debug, Clone)]
pub(crate) enum IssuerMatch {
    Exact(String),
    Regexp(regex::Regex),
}

impl IssuerMatch {
    pub(crate) fn matches(&self, issuer: &str) -> bool {
        match self {
            IssuerMatch::Exact(s) => s == issuer,
            IssuerMatch::Regexp(r) => r.is_match(issuer),
        }
    }
}

impl fmt::Display for IssuerMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IssuerMatch::Exact(s) => f.write_str(s),
            IssuerMatch::Regexp(r) => write!(f, "issuer-regexp `{r}`"),
        }
    }
}

/// One field condition on an attestation's predicate: a glob in which `*`
/// matches any run of characters (`/` included); a value without glob
/// characters must be equal.
#[derive(Debug, Clone)]
pub(crate) struct FieldCondition {
    pub(crate) written: String,
    pub(crate) matcher: GlobMatcher,
}

impl FieldCondition {
    pub(crate) fn new(written: &str) -> Result<Self, String> {
        let glob = GlobBuilder::new(written)
            .literal_separator(false)
            .build()
            .map_err(|e| e.kind().to_string())?;
        Ok(FieldCondition {
            written: written.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }
}

/// The predicate fields a condition may constrain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    BuilderId,
    SourceRepository,
    BuildType,
}

impl Field {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Field::BuilderId => "builder-id",
            Field::SourceRepository => "source-repository",
            Field::BuildType => "build-type",
        }
    }

    pub(crate) fn words(self) -> &'static str {
        match self {
            Field::BuilderId => "builder id",
            Field::SourceRepository => "source repository",
            Field::BuildType => "build type",
        }
    }

    /// The field's value in an in-toto predicate (SLSA v1, with the SLSA
    /// v0.2 location as a fallback for builder id and build type).
    pub(crate) fn value(self, predicate: &serde_json::Value) -> Option<String> {
        let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        match self {
            Field::BuilderId => s(&predicate["runDetails"]["builder"]["id"])
                .or_else(|| s(&predicate["builder"]["id"])),
            Field::BuildType => {
                s(&predicate["buildDefinition"]["buildType"]).or_else(|| s(&predicate["buildType"]))
            }
            Field::SourceRepository => predicate["buildDefinition"]["resolvedDependencies"]
                .as_array()?
                .iter()
                .find(|d| d["digest"]["gitCommit"].is_string())
                .and_then(|d| s(&d["uri"])),
        }
    }
}

/// An `attestations:` item of a rule.
#[derive(Debug, Clone)]
pub(crate) struct AttestationCondition {
    pub(crate) predicate_type: String,
    /// Keys that may sign the attestation (any one), as written and loaded.
    pub(crate) keys: Vec<(String, PublicKey)>,
    pub(crate) conditions: Vec<(Field, FieldCondition)>,
}

impl AttestationCondition {
    /// Plain words for `sluice policy check`.
    pub(crate) fn explain(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|(w, k)| format!("{w} (sha256:{})", k.fingerprint()))
            .collect();
        let mut out = format!(
            "it must carry an attestation (in FILE{ATTESTATION_SUFFIX}) of predicate type `{}` \
             about this exact plugin (subject digest), signed by {}",
            self.predicate_type,
            if keys.len() == 1 {
                format!("the key {}", keys[0])
            } else {
                format!("one of the keys {}", keys.join(", "))
            }
        );
        if !self.conditions.is_empty() {
            let parts: Vec<String> = self
                .conditions
                .iter()
                .map(|(f, c)| format!("its {} matches `{}`", f.words(), c.written))
                .collect();
            out.push_str(&format!(", in which {}", parts.join(" and ")));
        }
        out
    }

    /// Whether one of the attestations satisfies the condition; if none
    /// does, why each failed.
    pub(crate) fn check(&self, plugin_bytes: &[u8], attestations: &[String]) -> Result<(), String> {
        let mut problems = Vec::new();
        for (n, bundle) in attestations.iter().enumerate() {
            let label = if attestations.len() == 1 {
                "the attestation".to_owned()
            } else {
                format!("attestation #{}", n + 1)
            };
            let mut last_error = None;
            let found = self.keys.iter().find_map(|(_, key)| {
                verify_artifact(plugin_bytes, bundle, key)
                    .map_err(|e| last_error = Some(e.to_string()))
                    .ok()
            });
            let Some(found) = found else {
                problems.push(format!(
                    "{label}: {}",
                    last_error.unwrap_or_else(|| "no key to check it with".to_owned())
                ));
                continue;
            };
            if found.predicate_type != self.predicate_type {
                // Another kind of attestation: not a failure of its own.
                continue;
            }
            let predicate = &found.statement["predicate"];
            let mismatches: Vec<String> = self
                .conditions
                .iter()
                .filter_map(|(field, cond)| match field.value(predicate) {
                    Some(v) if cond.matcher.is_match(&v) => None,
                    Some(v) => Some(format!(
                        "its {} is `{v}`, not `{}`",
                        field.words(),
                        cond.written
                    )),
                    None => Some(format!(
                        "it has no {} (the rule requires `{}`)",
                        field.words(),
                        cond.written
                    )),
                })
                .collect();
            if mismatches.is_empty() {
                return Ok(());
            }
            problems.push(format!("{label}: {}", mismatches.join(", ")));
        }
        if problems.is_empty() {
            problems.push(format!(
                "no attestation has predicate type `{}`",
                self.predicate_type
            ));
        }
        Err(problems.join("; "))
    }
}

/// A bundle file's contents as a list of bundles: a JSON list of bundles,
/// or one bundle (as `FILE.sigstore.json` has always held).
pub(crate) fn split_bundles(json: &str) -> Result<Vec<String>, String> {
    if !json.trim_start().starts_with('[') {
        return Ok(vec![json.to_owned()]);
    }
    let list: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("malformed list of bundles: {e}"))?;
    if list.is_empty() {
        return Err("the list of bundles is empty".to_owned());
    }
    Ok(list.iter().map(ToString::to_string).collect())
}

/// Checks that a key-signed bundle (already verified with `key`) carries
/// verified time evidence of every kind in `require`. Fails closed: no
/// trusted root, no evidence of a kind, or evidence that does not verify
/// is a failure with the reason.
pub(crate) fn check_evidence(
    bytes: &[u8],
    bundle_json: &str,
    key: &PublicKey,
    root: Option<&TrustedRoot>,
    require: &[Evidence],
) -> Result<(), String> {
    if require.is_empty() {
        return Ok(());
    }
    let wanted = || {
        require
            .iter()
            .map(|e| e.describe())
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let Some(root) = root else {
        return Err(format!(
            "the authority requires {}, which cannot be verified without the policy's \
             `trusted-root`",
            wanted()
        ));
    };
    let bundle = parse_bundle(bundle_json).map_err(|e| e.to_string())?;
    let verifier = Verifier::new(root.sigstore()).map_err(|e| e.to_string())?;
    let material = &bundle.verification_material;
    for kind in require {
        match kind {
            Evidence::Timestamp => {
                if material
                    .timestamp_verification_data
                    .rfc3161_timestamps
                    .is_empty()
                {
                    return Err(
                        "the authority requires an RFC 3161 timestamp, but the bundle carries \
                         none; sign with a timestamp authority (e.g. `cosign sign-blob \
                         --timestamp-server-url …`)"
                            .to_owned(),
                    );
                }
                let policy =
                    PublicKeyVerificationPolicy::new(key.to_der_public_key()).skip_tlog_unsafe();
                let result = verifier.verify(bytes, &bundle, &policy).map_err(|e| {
                    format!(
                        "the bundle's RFC 3161 timestamp does not verify against the trusted \
                         root: {e}"
                    )
                })?;
                if result.verified_timestamps().is_empty() {
                    return Err(
                        "the bundle's RFC 3161 timestamp was not verified against the trusted \
                         root"
                            .to_owned(),
                    );
                }
            }
            Evidence::Tlog => {
                if material.tlog_entries.is_empty() {
                    return Err(
                        "the authority requires a transparency-log entry, but the bundle \
                         carries none; sign with upload to Rekor (e.g. `cosign sign-blob` \
                         without `--tlog-upload=false`)"
                            .to_owned(),
                    );
                }
                let policy = PublicKeyVerificationPolicy::new(key.to_der_public_key());
                let result = verifier.verify(bytes, &bundle, &policy).map_err(|e| {
                    format!(
                        "the bundle's transparency-log entry does not verify against the \
                         trusted root: {e}"
                    )
                })?;
                if !result.tlog_verified() {
                    return Err("the bundle's transparency-log entry was not verified".to_owned());
                }
            }
        }
    }
    Ok(())
}

/// The size of a maximum matching between signatures and authorities:
/// `candidates[s]` lists the authorities signature `s` satisfies. Each
/// signature counts for at most one authority and each authority at most
/// once, so one signature can never meet a threshold of two.
pub(crate) fn distinct_authorities(candidates: &[Vec<usize>]) -> usize {
    fn augment(
        s: usize,
        candidates: &[Vec<usize>],
        seen: &mut Vec<bool>,
        owner: &mut Vec<Option<usize>>,
    ) -> bool {
        for &a in &candidates[s] {
            if a >= seen.len() || seen[a] {
                continue;
            }
            seen[a] = true;
            if owner[a].is_none_or(|o| augment(o, candidates, seen, owner)) {
                owner[a] = Some(s);
                return true;
            }
        }
        false
    }
    let authorities = candidates
        .iter()
        .flatten()
        .copied()
        .max()
        .map_or(0, |m| m + 1);
    let mut owner = vec![None; authorities];
    let mut count = 0;
    for s in 0..candidates.len() {
        let mut seen = vec![false; authorities];
        if augment(s, candidates, &mut seen, &mut owner) {
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_counts_each_signature_once() {
        assert_eq!(distinct_authorities(&[]), 0);
        assert_eq!(distinct_authorities(&[vec![0, 1]]), 1);
        assert_eq!(distinct_authorities(&[vec![0, 1], vec![0]]), 2);
        assert_eq!(distinct_authorities(&[vec![0], vec![0]]), 1);
        assert_eq!(distinct_authorities(&[vec![], vec![1]]), 1);
    }

    #[test]
    fn bundle_lists() {
        assert_eq!(split_bundles("{}").ok(), Some(vec!["{}".to_owned()]));
        assert_eq!(split_bundles(" [{\"a\":1},{}]").map(|v| v.len()), Ok(2));
        assert!(split_bundles("[]").is_err());
        assert!(split_bundles("[").is_err());
    }

    #[test]
    fn predicate_fields() {
        let predicate = serde_json::json!({
            "buildDefinition": {
                "buildType": "https://sluice.dev/build/v1",
                "resolvedDependencies": [
                    { "uri": "pkg:cargo/serde", "digest": { "sha256": "00" } },
                    { "uri": "git+https://github.com/acme/app", "digest": { "gitCommit": "abc" } }
                ]
            },
            "runDetails": { "builder": { "id": "https://ci.acme.dev/builder" } }
        });
        assert_eq!(
            Field::BuilderId.value(&predicate).as_deref(),
            Some("https://ci.acme.dev/builder")
        );
        assert_eq!(
            Field::SourceRepository.value(&predicate).as_deref(),
            Some("git+https://github.com/acme/app")
        );
        assert_eq!(
            Field::BuildType.value(&predicate).as_deref(),
            Some("https://sluice.dev/build/v1")
        );
        let cond = FieldCondition::new("git+https://github.com/acme/*").expect("glob");
        assert!(cond.matcher.is_match("git+https://github.com/acme/app"));
        assert!(!cond.matcher.is_match("git+https://github.com/evil/app"));
    }
}
