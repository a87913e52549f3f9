//! The trust policy: which plugins may run, signed by whom, importing what,
//! with which grants at most. Security teams write it; pipelines cannot
//! loosen it.
//!
//! ```yaml
//! apiVersion: sluice.dev/v1          # optional
//! mode: enforce                      # enforce | warn          (default enforce)
//! no-match: deny                     # deny | warn | allow     (default deny)
//! trusted-root: trusted_root.json    # for keyless authorities, relative to this file
//! rules:
//!   - name: first-party
//!     match: ["plugins/*.wasm", "dist/plugins/**"]
//!     authorities:                   # any one may pass; omit to not require a signature
//!       - key: keys/release.pub      # or key: { pem: "-----BEGIN PUBLIC KEY-----..." }
//!       - keyless: { issuer: https://token.actions.githubusercontent.com,
//!                    subject-regexp: "^https://github.com/acme/.*" }   # or subject:
//!     digest: sha256:...             # optional pin
//!     allowed-imports: ["wasi:cli/*", "sluice:stage/*"]
//!     max-grants: { workspace: read, exec: [], secrets: [], network: ["*.acme.internal:443"], env: [CI] }
//! ```
//!
//! Semantics ([`Policy::evaluate`]):
//!
//! - `match` globs are matched against the plugin's canonical reference:
//!   its real path (`..` and symbolic links resolved) relative to the
//!   pipeline's resolved directory (see `sluice_engine::admission`), or an OCI
//!   reference; `*` stays within a path segment and `**` crosses segments.
//!   A glob that starts with `oci://` matches only OCI references, by their
//!   policy name `oci://registry/repository` (ClusterImagePolicy's `images:`
//!   globs, with the scheme: `oci://ghcr.io/acme/**`); any other glob matches
//!   only plugin files, so `**` never admits a plugin from a registry and a
//!   directory named like a registry never satisfies an OCI rule.
//!   With an operator policy, see [`crate::operator`].
//! - Every rule that matches must pass. A rule checks, in this order and
//!   stopping at its first failure: the digest pin, the bundle
//!   (`FILE.sigstore.json`) against the rule's authorities, the signer's
//!   identity, the component's imports, the grants.
//! - Within a rule, any one authority may pass. A `key` authority trusts
//!   signatures by that public key; a `keyless` authority trusts Fulcio
//!   certificates, verified against `trusted-root`, whose OIDC issuer is
//!   `issuer` and whose identity (SAN) is `subject` or matches
//!   `subject-regexp` (unanchored unless written with `^…$`).
//! - `allowed-imports` globs match import names without their version
//!   (`wasi:http/outgoing-handler@0.2.0` is checked as
//!   `wasi:http/outgoing-handler`); an empty list allows no imports.
//! - `max-grants` caps what a pipeline may grant: `workspace` is a maximum
//!   (`none` < `read` < `write`); `exec`, `secrets` and `env` are globs every
//!   granted name must match; `network` patterns must cover every granted
//!   `host:port` pattern ([`NetPattern::covers`]: the grammar and matching
//!   rules of the pipeline file and the host, names in any case, see
//!   `docs/values.md`). A grant kind that is not listed is not capped.
//! - No matching rule: `no-match: deny` refuses, `warn` admits with a
//!   warning, `allow` admits.
//! - `mode: warn` admits everything and turns each refusal into a warning.
//!
//! Further rule features (see [`crate::policy_rules`]):
//!
//! ```yaml
//!   - name: no-legacy
//!     match: "plugins/legacy/**"
//!     static: fail                   # or `pass`: no other check; refuses
//!     message: "legacy plugins are retired"   # everything it matches
//!   - name: release
//!     match: "plugins/*.wasm"
//!     mode: warn                     # this rule's failures are warnings
//!     threshold: 2                   # at least 2 distinct authorities
//!     authorities:
//!       - key: keys/a.pub
//!         require: [timestamp, tlog] # verified against `trusted-root`
//!       - key: keys/b.pub
//!       - keyless: { issuer-regexp: "^https://ci\\.acme\\.dev/.*$", subject: ci@acme.dev }
//!     attestations:                  # from FILE.intoto.sigstore.json
//!       - predicate-type: https://slsa.dev/provenance/v1
//!         authorities: [{ key: keys/builder.pub }]   # default: the rule's keys
//!         conditions: { builder-id: "https://ci.acme.dev/*", source-repository: "git+https://github.com/acme/*" }
//! ```
//!
//! - `FILE.sigstore.json` may hold one bundle or a JSON list of bundles;
//!   `threshold: N` needs N authorities each met by a different signature.
//! - `require` on a key authority fails closed: the bundle must carry that
//!   evidence and it must verify against the policy's trusted root.
//! - An attestation condition passes when one attestation about this exact
//!   plugin (subject digest), signed by one of its keys, has the predicate
//!   type and every field condition matches (`*` matches anything).

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use globset::GlobSet;
use serde::{Deserialize, Serialize};
use sluice_types::NetPattern;

use crate::bundle::{bundle_path, verify_blob, Signer, TrustedRoot, VerifyOptions};
use crate::keys::PublicKey;
use crate::policy_rules::{
    check_evidence, distinct_authorities, split_bundles, AttestationCondition, Evidence,
    IssuerMatch, StaticAction,
};
use crate::TrustError;

pub use crate::policy_file::PolicyError;

/// Whether refusals stop the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Refused plugins do not run.
    Enforce,
    /// Refused plugins run; refusals are reported as warnings.
    Warn,
}

/// What happens to a plugin that no rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoMatch {
    /// It is refused.
    Deny,
    /// It runs, with a warning.
    Warn,
    /// It runs.
    Allow,
}

/// A loaded, checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) file: PathBuf,
    pub(crate) api_version: Option<String>,
    pub(crate) mode: Mode,
    pub(crate) no_match: NoMatch,
    pub(crate) trusted_root: Option<TrustedRootRef>,
    pub(crate) rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub(crate) struct TrustedRootRef {
    pub(crate) written: String,
    pub(crate) root: TrustedRoot,
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) name: String,
    pub(crate) patterns: MatchPatterns,
    /// `None`: the rule does not require a signature.
    pub(crate) authorities: Option<Vec<Authority>>,
    /// Lowercase sha256 hex.
    pub(crate) digest: Option<String>,
    pub(crate) allowed_imports: Option<Patterns>,
    pub(crate) max_grants: Option<MaxGrants>,
    /// The rule's own `mode` (`None`: only the policy's applies).
    pub(crate) mode: Option<Mode>,
    /// `static: pass | fail`, and the `message` of a failing one.
    pub(crate) static_action: Option<(StaticAction, Option<String>)>,
    /// How many distinct authorities must pass (1 unless `threshold`).
    pub(crate) threshold: usize,
    /// Attestations the plugin must carry.
    pub(crate) attestations: Vec<AttestationCondition>,
}

/// A rule's `match` globs as written, compiled in two sets: globs that
/// start with `oci://` match only OCI references (by their policy name,
/// `oci://registry/repository`), all others only plugin files. Keeping them
/// apart means a directory named like a registry can never satisfy a rule
/// written for a registry, and a path glob such as `**` never admits a
/// plugin pulled from a registry.
#[derive(Debug, Clone)]
pub(crate) struct MatchPatterns {
    pub(crate) written: Vec<String>,
    pub(crate) files: GlobSet,
    pub(crate) oci: GlobSet,
}

impl MatchPatterns {
    fn matches(&self, reference: &str) -> bool {
        if reference.starts_with(sluice_types::oci::OCI_SCHEME) {
            self.oci.is_match(reference)
        } else {
            self.files.is_match(reference)
        }
    }
}

/// Globs as written, and compiled.
#[derive(Debug, Clone)]
pub(crate) struct Patterns {
    pub(crate) written: Vec<String>,
    pub(crate) set: GlobSet,
}

impl Patterns {
    fn matches(&self, name: &str) -> bool {
        self.set.is_match(name)
    }

    fn render(&self) -> String {
        format!("[{}]", self.written.join(", "))
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Authority {
    Key {
        /// The path as written in the policy, or "inline PEM".
        written: String,
        key: PublicKey,
        /// Time evidence the bundle must carry, verified.
        require: Vec<Evidence>,
    },
    Keyless {
        issuer: IssuerMatch,
        subject: SubjectMatch,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum SubjectMatch {
    Exact(String),
    Regexp(regex::Regex),
}

impl SubjectMatch {
    fn matches(&self, subject: &str) -> bool {
        match self {
            SubjectMatch::Exact(s) => s == subject,
            SubjectMatch::Regexp(r) => r.is_match(subject),
        }
    }
}

impl fmt::Display for SubjectMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectMatch::Exact(s) => write!(f, "subject `{s}`"),
            SubjectMatch::Regexp(r) => write!(f, "subject-regexp `{r}`"),
        }
    }
}

/// Access to the workspace, ordered from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WorkspaceLevel {
    None,
    Read,
    Write,
}

impl WorkspaceLevel {
    fn as_str(self) -> &'static str {
        match self {
            WorkspaceLevel::None => "none",
            WorkspaceLevel::Read => "read",
            WorkspaceLevel::Write => "write",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct MaxGrants {
    pub(crate) workspace: Option<WorkspaceLevel>,
    pub(crate) exec: Option<Patterns>,
    pub(crate) secrets: Option<Patterns>,
    pub(crate) env: Option<Patterns>,
    pub(crate) network: Option<Vec<NetPattern>>,
}

/// What the pipeline grants a stage's plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestedGrants {
    /// `none`, `read` or `write` (empty means `none`; anything else is
    /// treated as `write`).
    pub workspace: String,
    /// Environment variables passed through.
    pub env: Vec<String>,
    /// `host:port` patterns (see [`sluice_types::net`]).
    pub network: Vec<NetPattern>,
    /// Programs the plugin may run.
    pub exec: Vec<String>,
    /// Secret names.
    pub secrets: Vec<String>,
}

/// A plugin about to be admitted, after it was read and hashed and before
/// it is compiled.
#[derive(Debug, Clone)]
pub struct PluginInput<'a> {
    /// The reference as the pipeline writes it (path relative to the
    /// pipeline directory, or OCI reference).
    pub reference: String,
    /// Its sha256 (`sha256:<hex>` or bare hex); must be that of `bytes`
    /// (checked).
    pub digest: String,
    /// The plugin's bytes.
    pub bytes: &'a [u8],
    /// Contents of `FILE.sigstore.json`, if present: one bundle or a JSON
    /// list of bundles.
    pub bundle: Option<String>,
    /// Contents of `FILE.intoto.sigstore.json`, if present: one DSSE
    /// attestation bundle or a JSON list of them.
    pub attestations: Option<String>,
    /// The component's imports (interface names, with or without version).
    pub imports: Vec<String>,
    /// What the pipeline grants it.
    pub grants: RequestedGrants,
}

/// One reason a plugin is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The rule that refused it (`None`: no rule matched, or the input was
    /// inconsistent).
    pub rule: Option<String>,
    /// What is wrong and how to fix it, naming the plugin and the rule.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The policy's verdict on one plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the plugin may run.
    pub admitted: bool,
    /// Problems that did not stop it (`mode: warn`, `no-match: warn`).
    pub warnings: Vec<String>,
    /// Why it may not run (empty when admitted).
    pub refusals: Vec<Refusal>,
    /// Names of the rules whose `match` covers the plugin.
    pub matched_rules: Vec<String>,
    /// Who signed it, if a bundle was verified.
    pub signer: Option<Signer>,
}

impl Policy {
    /// Reads and checks a policy file. Relative paths inside it (keys,
    /// trusted root) start from the file's directory. The file must be a
    /// regular file of at most 1 MiB ([`sluice_files::fsutil::MAX_POLICY_BYTES`]);
    /// a leading UTF-8 byte order mark is ignored.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let bytes = sluice_files::fsutil::read_input_file(
            path,
            sluice_files::fsutil::MAX_POLICY_BYTES,
            "policy file",
        )
        .map_err(PolicyError::input)?;
        let src = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            PolicyError::not_utf8(path, &String::from_utf8_lossy(valid))
        })?;
        Self::parse(&src, path)
    }

    /// Checks the policy in `src`, as if read from `file`.
    pub fn parse(src: &str, file: &Path) -> Result<Policy, PolicyError> {
        crate::policy_file::parse(src, file)
    }

    /// The file the policy was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// `enforce` or `warn`.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// What happens to plugins no rule matches.
    pub fn no_match(&self) -> NoMatch {
        self.no_match
    }

    /// The rules' names, in file order.
    pub fn rule_names(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.name.as_str()).collect()
    }

    /// Decides whether a plugin may run. See the module documentation for
    /// the semantics.
    pub fn evaluate(&self, input: &PluginInput<'_>) -> Decision {
        let plugin = input.reference.as_str();
        let reference = normalize_reference(plugin);
        let digest = sigstore_verify::crypto::sha256(input.bytes).to_hex();
        let mut decision = Decision::default();
        let mut refusals = Vec::new();

        let given = input.digest.trim();
        if !given.is_empty() && given.strip_prefix("sha256:").unwrap_or(given) != digest {
            refusals.push(Refusal {
                rule: None,
                reason: format!(
                    "plugin {plugin}: the digest passed to the policy ({given}) is not the sha256 \
                     of the plugin's bytes (sha256:{digest}); hash the bytes that will be compiled"
                ),
            });
        }

        let matched: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.patterns.matches(reference))
            .collect();
        decision.matched_rules = matched.iter().map(|r| r.name.clone()).collect();

        if matched.is_empty() {
            let what = format!(
                "plugin {plugin}: no rule of the policy {} matches it",
                self.file.display()
            );
            match self.no_match {
                NoMatch::Deny => refusals.push(Refusal {
                    rule: None,
                    reason: format!(
                        "{what}; add a rule whose `match` covers `{reference}`, or set \
                         `no-match: warn` or `no-match: allow`"
                    ),
                }),
                NoMatch::Warn => decision
                    .warnings
                    .push(format!("{what}; admitted because of `no-match: warn`")),
                NoMatch::Allow => {}
            }
        }

        for rule in matched {
            let outcome = self.check_rule(rule, input, &digest);
            if decision.signer.is_none() {
                decision.signer = outcome.signer;
            }
            if rule.mode == Some(Mode::Warn) {
                decision
                    .warnings
                    .extend(outcome.refusals.into_iter().map(|reason| {
                        format!(
                            "{reason} (not enforced: rule `{}` is in `mode: warn`)",
                            rule.name
                        )
                    }));
                continue;
            }
            refusals.extend(outcome.refusals.into_iter().map(|reason| Refusal {
                rule: Some(rule.name.clone()),
                reason,
            }));
        }

        match self.mode {
            Mode::Enforce => decision.refusals = refusals,
            Mode::Warn => decision.warnings.extend(
                refusals
                    .into_iter()
                    .map(|r| format!("{} (not enforced: the policy is in `mode: warn`)", r.reason)),
            ),
        }
        decision.admitted = decision.refusals.is_empty();
        decision
    }

    /// Runs one rule's checks in order, stopping at the first that fails.
    fn check_rule(&self, rule: &Rule, input: &PluginInput<'_>, digest: &str) -> RuleOutcome {
        let plugin = input.reference.as_str();
        let prefix = format!("plugin {plugin}: rule `{}`", rule.name);
        let fail = |reasons: Vec<String>, signer: Option<Signer>| RuleOutcome {
            refusals: reasons,
            signer,
        };

        // 0. Static rules decide alone.
        match &rule.static_action {
            Some((StaticAction::Pass, _)) => {
                return RuleOutcome {
                    refusals: Vec::new(),
                    signer: None,
                }
            }
            Some((StaticAction::Fail, message)) => {
                return fail(
                    vec![format!(
                        "{prefix} refuses every plugin it matches (static: fail){}",
                        message
                            .as_deref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    )],
                    None,
                )
            }
            None => {}
        }

        // 1. Digest pin.
        if let Some(pin) = &rule.digest {
            if pin != digest {
                return fail(
                    vec![format!(
                        "{prefix}: the plugin's digest is sha256:{digest}, but the rule pins \
                         sha256:{pin}; use the pinned build, or update the pin if this build is \
                         intended"
                    )],
                    None,
                );
            }
        }

        // 2. Bundle verification and 3. identity.
        let mut signer = None;
        if let Some(authorities) = &rule.authorities {
            let Some(bundle) = &input.bundle else {
                if plugin.starts_with(sluice_types::oci::OCI_SCHEME) {
                    return fail(
                        vec![format!(
                            "{prefix}: `{plugin}` is not signed: the registry holds no Sigstore \
                             bundle referring to this manifest; sign it in the registry with \
                             `sluice plugin sign {plugin}:TAG --key KEY.key` (or push it with \
                             `sluice plugin push FILE {plugin}:TAG --sign KEY.key`) with a key \
                             the rule trusts"
                        )],
                        None,
                    );
                }
                let err = TrustError::Unsigned {
                    file: plugin.to_owned(),
                    bundle: bundle_path(Path::new(plugin)).display().to_string(),
                };
                return fail(
                    vec![format!("{prefix}: {err} with a key the rule trusts")],
                    None,
                );
            };
            match self.check_signatures(rule, authorities, input.bytes, bundle) {
                Ok(verified) => signer = verified,
                Err((reason, verified)) => {
                    return fail(vec![format!("{prefix}: {reason}")], verified)
                }
            }
        }

        // 3b. Attestations.
        if !rule.attestations.is_empty() {
            let file = crate::policy_rules::attestation_path(Path::new(plugin));
            let Some(attestations) = &input.attestations else {
                if plugin.starts_with(sluice_types::oci::OCI_SCHEME) {
                    return fail(
                        vec![format!(
                            "{prefix}: the rule requires attestations, but the registry holds \
                             none referring to this manifest; push the plugin with its \
                             `FILE.intoto.sigstore.json` beside it (`sluice plugin push`)"
                        )],
                        signer,
                    );
                }
                return fail(
                    vec![format!(
                        "{prefix}: the rule requires attestations, but there is none at {}; \
                         write one with `sluice plugin attest`",
                        file.display()
                    )],
                    signer,
                );
            };
            let list = match split_bundles(attestations) {
                Ok(list) => list,
                Err(e) => return fail(vec![format!("{prefix}: {}: {e}", file.display())], signer),
            };
            for condition in &rule.attestations {
                if let Err(why) = condition.check(input.bytes, &list) {
                    return fail(
                        vec![format!(
                            "{prefix}: no attestation in {} satisfies the condition on \
                             predicate type `{}`: {why}",
                            file.display(),
                            condition.predicate_type
                        )],
                        signer,
                    );
                }
            }
        }

        // 4. Allowed imports.
        if let Some(allowed) = &rule.allowed_imports {
            let forbidden: Vec<&str> = input
                .imports
                .iter()
                .map(|i| unversioned(i))
                .filter(|i| !allowed.matches(i))
                .collect();
            if !forbidden.is_empty() {
                return fail(
                    vec![format!(
                        "{prefix}: the component imports {}, which the rule's allowed-imports {} \
                         do not allow; rebuild the plugin without {} or add {} to \
                         allowed-imports",
                        quote_list(&forbidden),
                        allowed.render(),
                        if forbidden.len() == 1 { "it" } else { "them" },
                        if forbidden.len() == 1 { "it" } else { "them" },
                    )],
                    signer,
                );
            }
        }

        // 5. Grants.
        if let Some(caps) = &rule.max_grants {
            let excess = excess_grants(caps, &input.grants);
            if !excess.is_empty() {
                return fail(
                    excess
                        .into_iter()
                        .map(|(grant, cap)| {
                            format!(
                                "{prefix}: grant `{grant}` exceeds the rule's max-grants \
                                 ({cap}); remove it from the stage's grants or widen the policy"
                            )
                        })
                        .collect(),
                    signer,
                );
            }
        }

        RuleOutcome {
            refusals: Vec::new(),
            signer,
        }
    }

    /// Verifies every bundle of `FILE.sigstore.json` against the rule's
    /// authorities: at least `threshold` distinct authorities must be met,
    /// each by a different signature (and with the time evidence it
    /// requires). Returns the signer to report, or why the rule fails.
    fn check_signatures(
        &self,
        rule: &Rule,
        authorities: &[Authority],
        bytes: &[u8],
        bundle_json: &str,
    ) -> Result<Option<Signer>, (String, Option<Signer>)> {
        let bundles = split_bundles(bundle_json)
            .map_err(|detail| (TrustError::MalformedBundle { detail }.to_string(), None))?;
        let root = self.trusted_root.as_ref().map(|r| &r.root);
        let options = VerifyOptions {
            keys: authorities
                .iter()
                .filter_map(|a| match a {
                    Authority::Key { key, .. } => Some(key.clone()),
                    Authority::Keyless { .. } => None,
                })
                .collect(),
            trusted_root: authorities
                .iter()
                .any(|a| matches!(a, Authority::Keyless { .. }))
                .then(|| root.cloned())
                .flatten(),
        };
        let mut passed: Option<Signer> = None;
        let mut seen: Option<Signer> = None;
        let mut candidates = Vec::new();
        let mut problems = Vec::new();
        for (n, bundle) in bundles.iter().enumerate() {
            let label = if bundles.len() == 1 {
                String::new()
            } else {
                format!("signature #{}: ", n + 1)
            };
            let verified = match verify_blob(bytes, bundle, &options) {
                Ok(verified) => verified,
                Err(err) => {
                    problems.push(format!("{label}{err}"));
                    continue;
                }
            };
            let matching = matching_authorities(&verified.signer, authorities);
            if matching.is_empty() {
                if let Err(reason) = check_identity(&verified.signer, authorities) {
                    problems.push(format!("{label}{reason}"));
                }
                seen.get_or_insert(verified.signer);
                continue;
            }
            let mut met = Vec::new();
            for i in matching {
                if let Authority::Key { key, require, .. } = &authorities[i] {
                    if let Err(why) = check_evidence(bytes, bundle, key, root, require) {
                        problems.push(format!(
                            "{label}signed by key sha256:{}, but {why}",
                            key.fingerprint()
                        ));
                        continue;
                    }
                }
                met.push(i);
            }
            if met.is_empty() {
                seen.get_or_insert(verified.signer);
            } else {
                passed.get_or_insert(verified.signer);
            }
            candidates.push(met);
        }
        let met = distinct_authorities(&candidates);
        if met >= rule.threshold {
            return Ok(passed);
        }
        let shown = passed.or(seen);
        if rule.threshold == 1 {
            return Err((problems.join("; "), shown));
        }
        Err((
            format!(
                "the rule requires signatures by {} distinct authorities (threshold: {}), \
                 but {} {} met{}; add a bundle signed by another authority to the JSON list \
                 in the bundle file",
                rule.threshold,
                rule.threshold,
                met,
                if met == 1 { "was" } else { "were" },
                if problems.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", problems.join("; "))
                }
            ),
            shown,
        ))
    }

    /// The policy in plain words, for `sluice policy check`.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Policy {}{}",
            self.file.display(),
            self.api_version
                .as_deref()
                .map(|v| format!(" (apiVersion {v})"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "{}",
            match self.mode {
                Mode::Enforce => concat!(
                    "Mode enforce: a plugin the policy refuses is never compiled or run, ",
                    "and the run stops."
                ),
                Mode::Warn => concat!(
                    "Mode warn: plugins the policy would refuse still run; each refusal is ",
                    "reported and recorded as a warning."
                ),
            }
        );
        let _ = writeln!(
            out,
            "{}",
            match self.no_match {
                NoMatch::Deny => "A plugin that no rule matches is refused (no-match: deny).",
                NoMatch::Warn =>
                    "A plugin that no rule matches runs, with a warning (no-match: warn).",
                NoMatch::Allow => "A plugin that no rule matches runs (no-match: allow).",
            }
        );
        if let Some(root) = &self.trusted_root {
            let _ = writeln!(
                out,
                "Keyless signatures are checked offline against the trusted root `{}` ({}).",
                root.written,
                root.root.summary()
            );
        }
        let _ = writeln!(
            out,
            "{} rule{}; every rule that matches a plugin must pass.",
            self.rules.len(),
            if self.rules.len() == 1 { "" } else { "s" }
        );
        for rule in &self.rules {
            out.push('\n');
            explain_rule(&mut out, rule);
        }
        out
    }
}

fn explain_rule(out: &mut String, rule: &Rule) {
    let (oci, files): (Vec<&String>, Vec<&String>) = rule
        .patterns
        .written
        .iter()
        .partition(|g| g.starts_with(sluice_types::oci::OCI_SCHEME));
    let quoted = |globs: &[&String]| {
        globs
            .iter()
            .map(|g| format!("`{g}`"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let scope = match (files.is_empty(), oci.is_empty()) {
        (_, true) => format!("plugins matching {}", quoted(&files)),
        (true, false) => format!(
            "plugins from registries whose reference (without tag or digest) matches {}",
            quoted(&oci)
        ),
        (false, false) => format!(
            "plugin files matching {} and plugins from registries whose reference (without tag \
             or digest) matches {}",
            quoted(&files),
            quoted(&oci)
        ),
    };
    let _ = writeln!(out, "Rule `{}` applies to {scope}:", rule.name);
    if rule.mode == Some(Mode::Warn) {
        let _ = writeln!(
            out,
            "  - rule mode warn: when this rule fails, the plugin still runs and the failure \
             is recorded as a warning;"
        );
    }
    match &rule.static_action {
        Some((StaticAction::Fail, message)) => {
            let _ = writeln!(
                out,
                "  - it is always refused (static: fail){};",
                message
                    .as_deref()
                    .map(|m| format!(", with the message \"{m}\""))
                    .unwrap_or_default()
            );
            return;
        }
        Some((StaticAction::Pass, _)) => {
            let _ = writeln!(
                out,
                "  - it always passes this rule (static: pass): nothing is checked, not even a \
                 signature (other matching rules still apply)."
            );
            return;
        }
        None => {}
    }
    if let Some(pin) = &rule.digest {
        let _ = writeln!(out, "  - its digest must be sha256:{pin};");
    }
    match &rule.authorities {
        None => {
            let _ = writeln!(
                out,
                "  - it need not be signed (the rule has no authorities);"
            );
        }
        Some(authorities) => {
            if rule.threshold > 1 {
                let _ = writeln!(
                    out,
                    "  - it must be signed by at least {} of these authorities, each by its own \
                     signature (FILE.sigstore.json holding a JSON list of bundles):",
                    rule.threshold
                );
            } else {
                let _ = writeln!(out, "  - it must be signed by any one of:");
            }
            for authority in authorities {
                match authority {
                    Authority::Key {
                        written,
                        key,
                        require,
                    } => {
                        let evidence = if require.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ", and the bundle must carry {}, verified against the trusted \
                                 root (refused without it)",
                                require
                                    .iter()
                                    .map(|e| e.describe())
                                    .collect::<Vec<_>>()
                                    .join(" and ")
                            )
                        };
                        let _ = writeln!(
                            out,
                            "      the key {written} (ECDSA P-256, sha256:{}){evidence}",
                            key.fingerprint()
                        );
                    }
                    Authority::Keyless { issuer, subject } => {
                        let issuer = match issuer {
                            IssuerMatch::Exact(i) => format!("issuer `{i}`"),
                            IssuerMatch::Regexp(r) => format!(
                                "an issuer matching the regular expression `{r}`{}",
                                anchoring_note(r.as_str()).replace("identity", "issuer")
                            ),
                        };
                        let who = match subject {
                            SubjectMatch::Exact(s) => format!("the identity `{s}`"),
                            SubjectMatch::Regexp(r) => format!(
                                "an identity matching the regular expression `{r}`{}",
                                anchoring_note(r.as_str())
                            ),
                        };
                        let _ = writeln!(
                            out,
                            "      a keyless (Fulcio) certificate from {issuer} for {who}"
                        );
                    }
                }
            }
        }
    }
    for condition in &rule.attestations {
        let _ = writeln!(out, "  - {};", condition.explain());
    }
    if let Some(allowed) = &rule.allowed_imports {
        if allowed.written.is_empty() {
            let _ = writeln!(out, "  - it may not import anything;");
        } else {
            let _ = writeln!(
                out,
                "  - it may import only interfaces matching {};",
                quote_list(&allowed.written)
            );
        }
    }
    if let Some(caps) = &rule.max_grants {
        let mut parts = Vec::new();
        if let Some(w) = caps.workspace {
            parts.push(format!("workspace {}", w.as_str()));
        }
        let network: Option<Vec<String>> = caps
            .network
            .as_ref()
            .map(|list| list.iter().map(ToString::to_string).collect());
        for (kind, list) in [
            ("exec", caps.exec.as_ref().map(|p| &p.written)),
            ("secrets", caps.secrets.as_ref().map(|p| &p.written)),
            ("network", network.as_ref()),
            ("env", caps.env.as_ref().map(|p| &p.written)),
        ] {
            if let Some(list) = list {
                parts.push(if list.is_empty() {
                    format!("{kind} nothing")
                } else {
                    format!("{kind} {}", quote_list(list))
                });
            }
        }
        let _ = writeln!(
            out,
            "  - whatever the pipeline says, it may be granted at most: {} (grants not listed \
             are not capped).",
            parts.join("; ")
        );
    }
}

/// How much of the identity an unanchored `subject-regexp` constrains.
fn anchoring_note(pattern: &str) -> &'static str {
    if !pattern.starts_with('^') {
        " (it may match anywhere in the identity: anchor it with ^…$)"
    } else if !pattern.ends_with('$') && !pattern.ends_with(".*") {
        " (identities that merely start this way match too: end it with $)"
    } else {
        ""
    }
}

struct RuleOutcome {
    refusals: Vec<String>,
    signer: Option<Signer>,
}

/// The indices of the authorities the verified signer is.
fn matching_authorities(signer: &Signer, authorities: &[Authority]) -> Vec<usize> {
    authorities
        .iter()
        .enumerate()
        .filter(|(_, a)| match (signer, a) {
            (Signer::Key { fingerprint }, Authority::Key { key, .. }) => {
                &key.fingerprint() == fingerprint
            }
            (
                Signer::Keyless { issuer, subject },
                Authority::Keyless {
                    issuer: want_issuer,
                    subject: want_subject,
                },
            ) => want_issuer.matches(issuer) && want_subject.matches(subject),
            _ => false,
        })
        .map(|(i, _)| i)
        .collect()
}

/// Whether the verified signer is one of the rule's authorities.
fn check_identity(signer: &Signer, authorities: &[Authority]) -> Result<(), String> {
    match signer {
        Signer::Key { fingerprint } => {
            let trusted = authorities.iter().any(
                |a| matches!(a, Authority::Key { key, .. } if &key.fingerprint() == fingerprint),
            );
            if trusted {
                Ok(())
            } else {
                Err(format!(
                    "signed by key sha256:{fingerprint}, which the rule does not trust; add the \
                     key to the rule's authorities if you trust it"
                ))
            }
        }
        Signer::Keyless { issuer, subject } => {
            let keyless: Vec<(&IssuerMatch, &SubjectMatch)> = authorities
                .iter()
                .filter_map(|a| match a {
                    Authority::Keyless { issuer, subject } => Some((issuer, subject)),
                    Authority::Key { .. } => None,
                })
                .collect();
            if keyless
                .iter()
                .any(|(i, s)| i.matches(issuer) && s.matches(subject))
            {
                return Ok(());
            }
            let same_issuer: Vec<String> = keyless
                .iter()
                .filter(|(i, _)| i.matches(issuer))
                .map(|(_, s)| s.to_string())
                .collect();
            if same_issuer.is_empty() {
                let issuers: Vec<String> = keyless.iter().map(|(i, _)| i.to_string()).collect();
                Err(format!(
                    "signed keyless by `{subject}` with issuer `{issuer}`, but the rule trusts \
                     only issuer {}; sign through a trusted identity provider or add a keyless \
                     authority for this issuer",
                    quote_list(&issuers)
                ))
            } else {
                Err(format!(
                    "signed keyless by `{subject}` (issuer `{issuer}`), an identity the rule does \
                     not trust (it expects {}); sign as a trusted identity or widen the rule's \
                     `subject`/`subject-regexp`",
                    same_issuer.join(" or ")
                ))
            }
        }
    }
}

/// Each granted item the caps do not allow, as `(grant, cap)` texts.
fn excess_grants(caps: &MaxGrants, grants: &RequestedGrants) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(max) = caps.workspace {
        let requested = match grants.workspace.trim() {
            "" | "none" => WorkspaceLevel::None,
            "read" => WorkspaceLevel::Read,
            // Anything unexpected is treated as the most access.
            _ => WorkspaceLevel::Write,
        };
        if requested > max {
            out.push((
                format!("workspace: {}", grants.workspace.trim()),
                format!("workspace: {}", max.as_str()),
            ));
        }
    }
    for (kind, cap, requested) in [
        ("exec", &caps.exec, &grants.exec),
        ("secrets", &caps.secrets, &grants.secrets),
        ("env", &caps.env, &grants.env),
    ] {
        if let Some(cap) = cap {
            let excess: Vec<&str> = requested
                .iter()
                .map(String::as_str)
                .filter(|name| !cap.matches(name))
                .collect();
            if !excess.is_empty() {
                out.push((
                    format!("{kind}: [{}]", excess.join(", ")),
                    format!("{kind}: {}", cap.render()),
                ));
            }
        }
    }
    if let Some(cap) = &caps.network {
        // The host's own rule for what a pattern allows (`covers` agrees
        // with the matching of requests), host names in any case.
        let excess: Vec<String> = grants
            .network
            .iter()
            .filter(|wanted| !cap.iter().any(|c| c.covers(wanted)))
            .map(ToString::to_string)
            .collect();
        if !excess.is_empty() {
            let cap: Vec<String> = cap.iter().map(ToString::to_string).collect();
            out.push((
                format!("network: [{}]", excess.join(", ")),
                format!("network: [{}]", cap.join(", ")),
            ));
        }
    }
    out
}

/// An import name without its `@version`.
fn unversioned(import: &str) -> &str {
    import.split_once('@').map_or(import, |(name, _)| name)
}

/// A plugin reference as matched: without a leading `./`.
fn normalize_reference(reference: &str) -> &str {
    let mut r = reference;
    while let Some(rest) = r.strip_prefix("./") {
        r = rest;
    }
    r
}

fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
