//! Reading the policy file: YAML → [`Policy`], with errors that point at
//! the file, line and column (rendered like rustc diagnostics, as pipeline
//! errors are).
//!
//! serde (`serde_yaml_ng`, `deny_unknown_fields`) reports syntax, type and
//! unknown-field errors with their position. Semantic checks (globs,
//! regular expressions, digest pins, key files, the trusted root) run after
//! deserialization; to point at the offending value they use the map of
//! node positions the pipeline file uses too ([`sluice_files::locate`]).
//!
//! Network patterns in `max-grants` are read with the grammar of the
//! pipeline file and the host ([`sluice_types::NetPattern`]), and `match`
//! with the shared [`OneOrMany`].

use std::fmt;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use sluice_files::locate::{Location, SourceMap, YamlPath};
use sluice_types::{NetPattern, OneOrMany};

use crate::keys::load_public;
use crate::policy::{
    Authority, MatchPatterns, MaxGrants, Mode, NoMatch, Patterns, Policy, Rule, SubjectMatch,
    TrustedRootRef, WorkspaceLevel,
};
use crate::policy_rules::{
    AttestationCondition, Evidence, Field, FieldCondition, IssuerMatch, StaticAction,
};
use crate::TrustedRoot;
use sluice_files::diagnostic;
use sluice_files::fsutil::{read_input_file, InputError, MAX_KEY_BYTES};
use sluice_files::yaml_limits;

/// The only `apiVersion` this sluice understands.
pub const API_VERSION: &str = "sluice.dev/v1";

/// Why a policy file could not be loaded.
///
/// `Display` renders the full diagnostic (message, `--> file:line:col`, the
/// source line with a caret, and a `help:` line), ready to print.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file was read but is not a valid policy.
    #[error("{}", diagnostic::render_located(file, *line, *column, message, hint.as_deref(), source_line.as_deref()))]
    Invalid {
        /// The policy file, as given.
        file: PathBuf,
        /// Line of the problem, 1-based.
        line: usize,
        /// Column of the problem (in characters), 1-based.
        column: usize,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
        /// The text of line `line`, shown under the message.
        source_line: Option<String>,
    },
    /// The file could not be read.
    #[error("{}", diagnostic::render_io("policy file", file, error, hint.as_deref()))]
    Io {
        /// The policy file.
        file: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
        /// How to fix it, when we can tell.
        hint: Option<String>,
    },
    /// The path is not a regular file, or the file is over the size cap.
    #[error("error: {problem}\n  = help: {hint}")]
    Input {
        /// What is wrong with the file, naming it.
        problem: InputError,
        /// How to fix it.
        hint: String,
    },
}

impl PolicyError {
    /// The policy file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            PolicyError::Invalid { file, .. } | PolicyError::Io { file, .. } => file,
            PolicyError::Input { problem, .. } => problem.path(),
        }
    }

    /// `(line, column)` of the problem, both 1-based (`None` if the file
    /// was not read).
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            PolicyError::Invalid { line, column, .. } => Some((*line, *column)),
            PolicyError::Io { .. } | PolicyError::Input { .. } => None,
        }
    }

    /// The one-line description, without location or hint.
    pub fn message(&self) -> String {
        match self {
            PolicyError::Invalid { message, .. } => message.clone(),
            PolicyError::Io { file, error, .. } => {
                format!("cannot read policy file `{}`: {error}", file.display())
            }
            PolicyError::Input { problem, .. } => problem.to_string(),
        }
    }

    /// How to fix the problem, if known.
    pub fn hint(&self) -> Option<&str> {
        match self {
            PolicyError::Invalid { hint, .. } | PolicyError::Io { hint, .. } => hint.as_deref(),
            PolicyError::Input { hint, .. } => Some(hint),
        }
    }

    /// The policy file could not be read: an OS error (with the hints of
    /// [`PolicyError::io`]), or not a regular file, or too large.
    pub(crate) fn input(problem: InputError) -> Self {
        match problem {
            InputError::Io { path, error, .. } => Self::io(&path, error),
            other => PolicyError::Input {
                hint: other.hint(),
                problem: other,
            },
        }
    }

    /// The policy file is not UTF-8; `valid` is the text before the first
    /// byte that is not.
    pub(crate) fn not_utf8(file: &Path, valid: &str) -> Self {
        PolicyError::Invalid {
            file: file.to_path_buf(),
            line: valid.matches('\n').count() + 1,
            column: valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
            message: "the policy file is not valid UTF-8".to_owned(),
            hint: Some("save the file as UTF-8".to_owned()),
            source_line: None,
        }
    }

    pub(crate) fn io(file: &Path, error: std::io::Error) -> Self {
        let hint = match error.kind() {
            std::io::ErrorKind::NotFound => Some(
                "check the path (relative paths start from the current directory), or create \
                 the policy file; `sluice policy check FILE` explains one"
                    .to_owned(),
            ),
            std::io::ErrorKind::PermissionDenied => {
                Some("make the file readable by the user running sluice".to_owned())
            }
            _ => None,
        };
        PolicyError::Io {
            file: file.to_path_buf(),
            error,
            hint,
        }
    }
}

// ---------------------------------------------------------------------------
// The file as written.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PolicyDoc {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<String>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    no_match: Option<NoMatch>,
    #[serde(default)]
    trusted_root: Option<String>,
    #[serde(default)]
    rules: Vec<RuleDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RuleDoc {
    name: String,
    #[serde(rename = "match")]
    patterns: OneOrMany,
    #[serde(default)]
    authorities: Option<Vec<AuthorityDoc>>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    allowed_imports: Option<Vec<String>>,
    #[serde(default)]
    max_grants: Option<MaxGrantsDoc>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default, rename = "static")]
    static_action: Option<StaticAction>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    threshold: Option<usize>,
    #[serde(default)]
    attestations: Option<Vec<AttestationDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AttestationDoc {
    predicate_type: String,
    #[serde(default)]
    authorities: Option<Vec<AuthorityDoc>>,
    #[serde(default)]
    conditions: Option<ConditionsDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConditionsDoc {
    #[serde(default)]
    builder_id: Option<String>,
    #[serde(default)]
    source_repository: Option<String>,
    #[serde(default)]
    build_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorityDoc {
    #[serde(default)]
    key: Option<KeyDoc>,
    #[serde(default)]
    keyless: Option<KeylessDoc>,
    #[serde(default)]
    require: Option<Vec<Evidence>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct KeylessDoc {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    issuer_regexp: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    subject_regexp: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct MaxGrantsDoc {
    #[serde(default)]
    workspace: Option<WorkspaceLevel>,
    #[serde(default)]
    exec: Option<Vec<String>>,
    #[serde(default)]
    secrets: Option<Vec<String>>,
    #[serde(default)]
    network: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
}

/// `key:` is a path to a PEM file or `{ pem: "-----BEGIN PUBLIC KEY-----…" }`.
enum KeyDoc {
    Path(String),
    Pem(String),
}

impl<'de> Deserialize<'de> for KeyDoc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyDoc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the path of a PEM public key file, or `{ pem: \"-----BEGIN PUBLIC KEY-----...\" }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyDoc, E> {
                Ok(KeyDoc::Path(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyDoc, A::Error> {
                let mut pem = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "pem" {
                        pem = Some(map.next_value::<String>()?);
                    } else {
                        return Err(de::Error::unknown_field(&key, &["pem"]));
                    }
                }
                pem.map(KeyDoc::Pem)
                    .ok_or_else(|| de::Error::missing_field("pem"))
            }
        }
        deserializer.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------
// Positions of nodes, for semantic errors.

/// The [`YamlPath`] of a path written as `rules[0].max-grants.network[1]`.
///
/// The paths come from this file, built from the keys of the policy
/// schema (serde has refused any other key by the time they are used), so
/// no key contains `.` or `[`.
fn yaml_path(path: &str) -> YamlPath {
    let mut out = YamlPath::root();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indices) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        if !key.is_empty() {
            out = out.key(key);
        }
        for index in indices.split('[') {
            if let Some(index) = index.strip_suffix(']').and_then(|i| i.parse().ok()) {
                out = out.index(index);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// From the document to the policy.

/// Builds located errors for one policy file.
struct Reporter<'a> {
    file: &'a Path,
    src: &'a str,
    positions: SourceMap,
}

impl Reporter<'_> {
    fn at(
        &self,
        Location { line, column }: Location,
        message: impl fmt::Display,
        hint: impl Into<String>,
    ) -> PolicyError {
        let lines = self.src.lines().count().max(1);
        let (line, column) = match self.src.lines().last() {
            Some(last) if line > lines => (lines, last.chars().count() + 1),
            _ => (line.max(1), column.max(1)),
        };
        PolicyError::Invalid {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.to_string(),
            hint: Some(hint.into()),
            source_line: self.src.lines().nth(line - 1).map(str::to_owned),
        }
    }

    fn value(
        &self,
        path: &str,
        message: impl fmt::Display,
        hint: impl Into<String>,
    ) -> PolicyError {
        self.at(self.positions.value(&yaml_path(path)), message, hint)
    }

    fn key(&self, path: &str, message: impl fmt::Display, hint: impl Into<String>) -> PolicyError {
        self.at(self.positions.key(&yaml_path(path)), message, hint)
    }

    fn empty(&self) -> PolicyError {
        self.at(
            Location::START,
            "the policy file is empty",
            "start with `mode: enforce`, `no-match: deny` and a `rules:` list; \
             `sluice policy check FILE` explains a policy",
        )
    }

    fn serde(&self, error: &serde_yaml_ng::Error) -> PolicyError {
        if diagnostic::is_blank_yaml(self.src) {
            return self.empty();
        }
        let (line, column) = error.location().map_or((1, 1), |l| (l.line(), l.column()));
        let suffix = format!(" at line {line} column {column}");
        let message = error.to_string().replacen(&suffix, "", 1);
        let hint = if message.contains("unknown field") {
            "a policy has `apiVersion`, `mode`, `no-match`, `trusted-root` and `rules`; a rule \
             has `name`, `match`, `authorities`, `digest`, `allowed-imports` and `max-grants`"
        } else if message.contains("unknown variant") {
            "`mode` is `enforce` or `warn`; `no-match` is `deny`, `warn` or `allow`; \
             `workspace` is `none`, `read` or `write`"
        } else if message.contains("missing field") {
            "each rule needs a `name` and a `match` (a glob or a list of globs)"
        } else {
            "check the YAML syntax and the types of the values at this position"
        };
        self.at(Location { line, column }, message, hint)
    }
}

/// Parses the policy in `src`; relative paths in it start from the
/// directory of `file`.
pub(crate) fn parse(src: &str, file: &Path) -> Result<Policy, PolicyError> {
    let src = sluice_files::fsutil::strip_bom(src);
    // Before either YAML parser builds anything (see `yaml_limits`).
    if let Err(e) = yaml_limits::check(src) {
        let (line, column) = e.location();
        return Err(PolicyError::Invalid {
            file: file.to_path_buf(),
            line,
            column,
            message: e.to_string(),
            hint: Some(e.hint()),
            source_line: src
                .lines()
                .nth(line.saturating_sub(1))
                .and_then(|text| yaml_limits::excerpt(text, column)),
        });
    }
    let reporter = Reporter {
        file,
        src,
        positions: SourceMap::build(src),
    };
    if diagnostic::is_blank_yaml(src) {
        // serde would read an empty document as a policy with no rules.
        return Err(reporter.empty());
    }
    let doc: PolicyDoc = serde_yaml_ng::from_str(src).map_err(|e| reporter.serde(&e))?;
    let base = file.parent().unwrap_or_else(|| Path::new(""));

    if let Some(version) = &doc.api_version {
        if version != API_VERSION {
            return Err(reporter.value(
                "apiVersion",
                format!("unsupported apiVersion `{version}`"),
                format!("use `apiVersion: {API_VERSION}` or leave it out"),
            ));
        }
    }

    let trusted_root = match &doc.trusted_root {
        None => None,
        Some(written) => {
            let path = base.join(written);
            let root =
                TrustedRoot::load(&path).map_err(|e| {
                    reporter.value(
                    "trusted-root",
                    format!("cannot use trusted root `{written}` ({}): {e}", path.display()),
                    "give the path of a Sigstore trusted_root.json, relative to the policy file",
                )
                })?;
            Some(TrustedRootRef {
                written: written.clone(),
                root,
            })
        }
    };

    let mut rules: Vec<Rule> = Vec::new();
    for (i, rule) in doc.rules.iter().enumerate() {
        let at = format!("rules[{i}]");
        if rule.name.trim().is_empty() {
            return Err(reporter.value(
                &format!("{at}.name"),
                "a rule has an empty name",
                "name each rule; refusals and run records quote the name",
            ));
        }
        if rules.iter().any(|r| r.name == rule.name) {
            return Err(reporter.value(
                &format!("{at}.name"),
                format!("two rules are named `{}`", rule.name),
                "give each rule its own name",
            ));
        }
        let rule = build_rule(&reporter, base, &at, rule, trusted_root.is_some())?;
        rules.push(rule);
    }

    Ok(Policy {
        file: file.to_path_buf(),
        api_version: doc.api_version,
        mode: doc.mode.unwrap_or(Mode::Enforce),
        no_match: doc.no_match.unwrap_or(NoMatch::Deny),
        trusted_root,
        rules,
    })
}

fn build_rule(
    reporter: &Reporter<'_>,
    base: &Path,
    at: &str,
    rule: &RuleDoc,
    has_root: bool,
) -> Result<Rule, PolicyError> {
    let name = &rule.name;
    let patterns = rule.patterns.as_slice();
    if patterns.is_empty() {
        return Err(reporter.value(
            &format!("{at}.match"),
            format!("rule `{name}` matches nothing: `match` is empty"),
            "list globs of plugin references, e.g. `match: [\"plugins/*.wasm\"]`",
        ));
    }
    let item = |j: usize| {
        if rule.patterns.was_list() {
            format!("{at}.match[{j}]")
        } else {
            format!("{at}.match")
        }
    };
    // OCI globs and file globs are compiled apart (see `MatchPatterns`);
    // each keeps the index of the glob as written, for errors.
    let mut file_globs: Vec<(String, usize)> = Vec::new();
    let mut oci_globs: Vec<(String, usize)> = Vec::new();
    for (j, glob) in patterns.iter().enumerate() {
        match oci_glob(glob) {
            OciGlob::File => file_globs.push((glob.clone(), j)),
            OciGlob::Oci(normalized) => oci_globs.push((normalized, j)),
            OciGlob::Malformed { problem, hint } => {
                return Err(reporter.value(
                    &item(j),
                    format!("rule `{name}`: `{glob}` is not a glob of OCI references: {problem}"),
                    hint,
                ))
            }
        }
    }
    let compile = |globs: &[(String, usize)]| {
        let written: Vec<String> = globs.iter().map(|(g, _)| g.clone()).collect();
        glob_set(&written, true).map_err(|(k, e)| {
            let j = globs.get(k).map_or(0, |(_, j)| *j);
            reporter.value(
                &item(j),
                format!("rule `{name}`: invalid glob `{}`: {e}", patterns[j]),
                "`*` matches within one path segment, `**` across segments, `?` one character",
            )
        })
    };
    let files = compile(&file_globs)?;
    let oci = compile(&oci_globs)?;

    if let Some(action) = rule.static_action {
        let others = [
            ("authorities", rule.authorities.is_some()),
            ("digest", rule.digest.is_some()),
            ("allowed-imports", rule.allowed_imports.is_some()),
            ("max-grants", rule.max_grants.is_some()),
            ("threshold", rule.threshold.is_some()),
            ("attestations", rule.attestations.is_some()),
        ];
        if let Some((key, _)) = others.iter().find(|(_, present)| *present) {
            return Err(reporter.key(
                &format!("{at}.{key}"),
                format!("rule `{name}` is static, so it checks nothing else, but it has `{key}`"),
                "remove the other checks, or remove `static` and let the rule check them",
            ));
        }
        if action == StaticAction::Pass && rule.message.is_some() {
            return Err(reporter.key(
                &format!("{at}.message"),
                format!("rule `{name}`: `message` is only shown by `static: fail` rules"),
                "remove `message`, or make the rule `static: fail`",
            ));
        }
    } else if rule.message.is_some() {
        return Err(reporter.key(
            &format!("{at}.message"),
            format!("rule `{name}`: `message` is only shown by `static: fail` rules"),
            "remove `message`, or add `static: fail` to refuse what the rule matches",
        ));
    }

    let authorities = match &rule.authorities {
        None => None,
        Some(list) if list.is_empty() => {
            return Err(reporter.value(
                &format!("{at}.authorities"),
                format!("rule `{name}` has an empty `authorities` list"),
                "list at least one `key` or `keyless` authority, or remove `authorities` \
                 if the rule does not require a signature",
            ))
        }
        Some(list) => Some(
            list.iter()
                .enumerate()
                .map(|(j, a)| {
                    build_authority(
                        reporter,
                        base,
                        &format!("{at}.authorities[{j}]"),
                        name,
                        a,
                        has_root,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };

    let digest = match &rule.digest {
        None => None,
        Some(pin) => Some(parse_pin(pin).ok_or_else(|| {
            reporter.value(
                &format!("{at}.digest"),
                format!("rule `{name}`: `{pin}` is not a sha256 digest"),
                "write the pin as `sha256:` followed by 64 hex digits, as `sluice plugin verify` \
                 prints it",
            )
        })?),
    };

    let allowed_imports = match &rule.allowed_imports {
        None => None,
        Some(globs) => {
            if let Some(j) = globs.iter().position(|g| g.contains('@')) {
                return Err(reporter.value(
                    &format!("{at}.allowed-imports[{j}]"),
                    format!(
                        "rule `{name}`: allowed-imports pattern `{}` has a version",
                        globs[j]
                    ),
                    "allowed-imports match interface names without their version, e.g. \
                     `wasi:http/outgoing-handler` or `wasi:http/*`",
                ));
            }
            Some(patterns_of(
                reporter,
                globs,
                true,
                &format!("{at}.allowed-imports"),
                name,
            )?)
        }
    };

    let max_grants = match &rule.max_grants {
        None => None,
        Some(caps) => {
            let at = format!("{at}.max-grants");
            // The grammar of `grants.network` in the pipeline file, with
            // the same message and hint.
            let network = caps
                .network
                .as_ref()
                .map(|list| {
                    list.iter()
                        .enumerate()
                        .map(|(j, pattern)| {
                            pattern.parse::<NetPattern>().map_err(|e| {
                                reporter.value(
                                    &format!("{at}.network[{j}]"),
                                    format!("rule `{name}`: {e}"),
                                    e.hint,
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            let names = |list: &Option<Vec<String>>, key: &str| {
                list.as_ref()
                    .map(|l| patterns_of(reporter, l, false, &format!("{at}.{key}"), name))
                    .transpose()
            };
            Some(MaxGrants {
                workspace: caps.workspace,
                exec: names(&caps.exec, "exec")?,
                secrets: names(&caps.secrets, "secrets")?,
                env: names(&caps.env, "env")?,
                network,
            })
        }
    };

    let threshold = match rule.threshold {
        None => 1,
        Some(n) => {
            let count = authorities.as_ref().map_or(0, Vec::len);
            if n == 0 || n > count {
                return Err(reporter.value(
                    &format!("{at}.threshold"),
                    format!(
                        "rule `{name}`: threshold {n} cannot be met by its {count} \
                         authorit{}",
                        if count == 1 { "y" } else { "ies" }
                    ),
                    "the threshold counts distinct authorities of the rule that must each \
                     pass: give at least that many `authorities`, and a threshold of 1 or more",
                ));
            }
            n
        }
    };

    let mut attestations = Vec::new();
    for (j, doc) in rule.attestations.iter().flatten().enumerate() {
        let at = format!("{at}.attestations[{j}]");
        attestations.push(build_attestation(
            reporter,
            base,
            &at,
            name,
            doc,
            rule.authorities.as_deref(),
            has_root,
        )?);
    }

    Ok(Rule {
        name: name.clone(),
        patterns: MatchPatterns {
            written: patterns.to_vec(),
            files,
            oci,
        },
        authorities,
        digest,
        allowed_imports,
        max_grants,
        mode: rule.mode,
        static_action: rule.static_action.map(|a| (a, rule.message.clone())),
        threshold,
        attestations,
    })
}

fn build_attestation(
    reporter: &Reporter<'_>,
    base: &Path,
    at: &str,
    rule: &str,
    doc: &AttestationDoc,
    rule_authorities: Option<&[AuthorityDoc]>,
    has_root: bool,
) -> Result<AttestationCondition, PolicyError> {
    if doc.predicate_type.trim().is_empty() {
        return Err(reporter.value(
            &format!("{at}.predicate-type"),
            format!("rule `{rule}`: an attestation condition has an empty `predicate-type`"),
            "give the in-toto predicate type URI, e.g. https://slsa.dev/provenance/v1",
        ));
    }
    let (list, list_at) = match (&doc.authorities, rule_authorities) {
        (Some(list), _) => (list.as_slice(), format!("{at}.authorities")),
        (None, Some(list)) => (list, at.replace(".attestations", ".authorities[*]")),
        (None, None) => {
            return Err(reporter.key(
                at,
                format!(
                    "rule `{rule}`: the attestation condition on `{}` names no authorities, \
                     and the rule has none",
                    doc.predicate_type
                ),
                "add `authorities: [{ key: keys/builder.pub }]`: who must have signed the \
                 attestation",
            ))
        }
    };
    let mut keys = Vec::new();
    for (j, a) in list.iter().enumerate() {
        let item_at = if doc.authorities.is_some() {
            format!("{list_at}[{j}]")
        } else {
            at.to_owned()
        };
        match build_authority(reporter, base, &item_at, rule, a, has_root)? {
            Authority::Key { written, key, .. } => keys.push((written, key)),
            Authority::Keyless { .. } => {
                if doc.authorities.is_some() {
                    return Err(reporter.value(
                        &item_at,
                        format!(
                            "rule `{rule}`: attestations can only be checked against key \
                             authorities for now"
                        ),
                        "sign attestations with a key (`sluice plugin attest --key`) and list \
                         its `.pub` file",
                    ));
                }
            }
        }
    }
    if keys.is_empty() {
        return Err(reporter.key(
            at,
            format!(
                "rule `{rule}`: the attestation condition on `{}` has no key authority to \
                 check attestations with (keyless attestations are not supported yet)",
                doc.predicate_type
            ),
            "add `authorities: [{ key: keys/builder.pub }]` to the condition",
        ));
    }
    let mut conditions = Vec::new();
    if let Some(c) = &doc.conditions {
        for (field, value) in [
            (Field::BuilderId, &c.builder_id),
            (Field::SourceRepository, &c.source_repository),
            (Field::BuildType, &c.build_type),
        ] {
            if let Some(value) = value {
                let cond = FieldCondition::new(value).map_err(|e| {
                    reporter.value(
                        &format!("{at}.conditions.{}", field.name()),
                        format!("rule `{rule}`: invalid pattern `{value}`: {e}"),
                        "write the exact value, or a glob where `*` matches any run of \
                         characters",
                    )
                })?;
                conditions.push((field, cond));
            }
        }
    }
    Ok(AttestationCondition {
        predicate_type: doc.predicate_type.clone(),
        keys,
        conditions,
    })
}

fn build_authority(
    reporter: &Reporter<'_>,
    base: &Path,
    at: &str,
    rule: &str,
    authority: &AuthorityDoc,
    has_root: bool,
) -> Result<Authority, PolicyError> {
    let require = authority.require.clone().unwrap_or_default();
    if !require.is_empty() {
        if authority.key.is_none() {
            return Err(reporter.key(
                &format!("{at}.require"),
                format!(
                    "rule `{rule}`: `require` applies to key authorities; keyless signatures \
                     always need verified time evidence"
                ),
                "remove `require` from the keyless authority",
            ));
        }
        if !has_root {
            return Err(reporter.key(
                &format!("{at}.require"),
                format!(
                    "rule `{rule}`: a key authority requires time evidence, but the policy has \
                     no `trusted-root` to verify it against"
                ),
                "add `trusted-root: trusted_root.json` (the Sigstore trusted root whose \
                 timestamp authorities and Rekor logs vouch for the evidence)",
            ));
        }
    }
    match (&authority.key, &authority.keyless) {
        (Some(KeyDoc::Path(written)), None) => {
            let path = base.join(written);
            let bytes = read_input_file(&path, MAX_KEY_BYTES, "key file").map_err(|e| {
                let problem = match &e {
                    InputError::Io { error, .. } => format!(
                        "cannot read key file `{written}` ({}): {}",
                        path.display(),
                        sluice_files::fsutil::io_reason(error)
                    ),
                    other => other.to_string(),
                };
                reporter.value(
                    &format!("{at}.key"),
                    format!("rule `{rule}`: {problem}"),
                    "key paths are relative to the policy file; give the `.pub` file written \
                     by `sluice key generate`",
                )
            })?;
            // A PEM file is ASCII; anything else fails as a malformed key.
            let pem = String::from_utf8_lossy(&bytes);
            let key = load_public(&pem).map_err(|e| {
                reporter.value(
                    &format!("{at}.key"),
                    format!("rule `{rule}`: key file `{written}`: {e}"),
                    "give the `.pub` file (PEM `PUBLIC KEY`), not the private `.key` file",
                )
            })?;
            Ok(Authority::Key {
                written: written.clone(),
                key,
                require,
            })
        }
        (Some(KeyDoc::Pem(pem)), None) => {
            let key = load_public(pem).map_err(|e| {
                reporter.value(
                    &format!("{at}.key.pem"),
                    format!("rule `{rule}`: inline key: {e}"),
                    "paste the whole PEM block, `-----BEGIN PUBLIC KEY-----` to \
                     `-----END PUBLIC KEY-----`, as a YAML block scalar (`pem: |`)",
                )
            })?;
            Ok(Authority::Key {
                written: "inline PEM".to_owned(),
                key,
                require,
            })
        }
        (None, Some(keyless)) => {
            let at = format!("{at}.keyless");
            if !has_root {
                return Err(reporter.key(
                    &at,
                    format!("rule `{rule}` has a keyless authority, but the policy has no `trusted-root`"),
                    "add `trusted-root: trusted_root.json` (the Sigstore trusted root keyless \
                     signatures are checked against, relative to the policy file)",
                ));
            }
            let issuer = match (&keyless.issuer, &keyless.issuer_regexp) {
                (Some(issuer), None) => {
                    if issuer.trim().is_empty() {
                        return Err(reporter.value(
                            &format!("{at}.issuer"),
                            format!("rule `{rule}`: keyless `issuer` is empty"),
                            "give the OIDC issuer URL, e.g. \
                             https://token.actions.githubusercontent.com",
                        ));
                    }
                    IssuerMatch::Exact(issuer.clone())
                }
                (None, Some(pattern)) => {
                    IssuerMatch::Regexp(regex::Regex::new(pattern).map_err(|e| {
                        reporter.value(
                            &format!("{at}.issuer-regexp"),
                            format!("rule `{rule}`: invalid issuer-regexp: {e}"),
                            "use Rust `regex` syntax; anchor it with `^…$` to match the whole \
                             issuer URL",
                        )
                    })?)
                }
                (Some(_), Some(_)) | (None, None) => {
                    return Err(reporter.key(
                        &at,
                        format!(
                            "rule `{rule}`: a keyless authority needs exactly one of `issuer` \
                             and `issuer-regexp`"
                        ),
                        "`issuer` matches the certificate's OIDC issuer exactly, \
                         `issuer-regexp` with a regular expression",
                    ))
                }
            };
            let subject = match (&keyless.subject, &keyless.subject_regexp) {
                (Some(subject), None) => SubjectMatch::Exact(subject.clone()),
                (None, Some(pattern)) => {
                    SubjectMatch::Regexp(regex::Regex::new(pattern).map_err(|e| {
                        reporter.value(
                            &format!("{at}.subject-regexp"),
                            format!("rule `{rule}`: invalid subject-regexp: {e}"),
                            "use Rust `regex` syntax; anchor it with `^…$` to match the whole \
                             subject",
                        )
                    })?)
                }
                (Some(_), Some(_)) | (None, None) => {
                    return Err(reporter.key(
                        &at,
                        format!(
                            "rule `{rule}`: a keyless authority needs exactly one of `subject` \
                             and `subject-regexp`"
                        ),
                        "`subject` matches the certificate's identity (email or URI) exactly, \
                         `subject-regexp` with a regular expression",
                    ))
                }
            };
            Ok(Authority::Keyless { issuer, subject })
        }
        _ => Err(reporter.value(
            at,
            format!("rule `{rule}`: an authority needs exactly one of `key` and `keyless`"),
            "write `- key: keys/release.pub` or `- keyless: { issuer: ..., subject: ... }` \
             as separate list items",
        )),
    }
}

/// What a `match` glob is.
#[derive(Debug, PartialEq, Eq)]
enum OciGlob {
    /// A glob of plugin files (it does not start with `oci://`).
    File,
    /// A glob of OCI policy names, its registry part in lowercase (as
    /// [`sluice_types::OciReference::policy_name`] prints it).
    Oci(String),
    /// It starts like an OCI reference but cannot match one.
    Malformed { problem: String, hint: &'static str },
}

/// Sorts a `match` glob: OCI references are matched by their policy name,
/// `oci://registry/repository`, so a glob with a tag or digest, without a
/// repository, or with a repository in uppercase could never match and is
/// refused here rather than silently matching nothing.
fn oci_glob(glob: &str) -> OciGlob {
    const HINT: &str = "an OCI glob names `oci://registry/repository` without tag or digest \
                        (e.g. `oci://ghcr.io/acme/**` or `oci://127.0.0.1:*/team/*`); pin content \
                        with the rule's `digest:`";
    let malformed = |problem: String| OciGlob::Malformed {
        problem,
        hint: HINT,
    };
    let Some(rest) = glob.strip_prefix(sluice_types::oci::OCI_SCHEME) else {
        let lower = glob.to_ascii_lowercase();
        if lower.starts_with("oci:") {
            return malformed("the scheme is written `oci://`, in lowercase".into());
        }
        return OciGlob::File;
    };
    // Every reference, whatever the registry.
    if rest == "**" {
        return OciGlob::Oci(glob.to_owned());
    }
    let Some((registry, repository)) = rest
        .split_once('/')
        .filter(|(r, p)| !r.is_empty() && !p.is_empty())
    else {
        return malformed("it names no repository after the registry".into());
    };
    if rest.contains('@') {
        return malformed("it pins a digest; references are matched without tag or digest".into());
    }
    if repository.contains(':') {
        return malformed(
            "it names a tag; tags move, so references are matched without tag or digest".into(),
        );
    }
    if repository.chars().any(|c| c.is_ascii_uppercase()) {
        return malformed(format!(
            "repository `{repository}` has uppercase letters, which no OCI repository has"
        ));
    }
    OciGlob::Oci(format!(
        "{}{}/{repository}",
        sluice_types::oci::OCI_SCHEME,
        registry.to_ascii_lowercase()
    ))
}

/// Compiles globs; on failure returns the index of the bad one.
pub(crate) fn glob_set(
    globs: &[String],
    literal_separator: bool,
) -> Result<GlobSet, (usize, String)> {
    let mut builder = GlobSetBuilder::new();
    for (j, glob) in globs.iter().enumerate() {
        builder.add(compile_glob(glob, literal_separator).map_err(|e| (j, e))?);
    }
    builder.build().map_err(|e| (0, e.to_string()))
}

fn compile_glob(glob: &str, literal_separator: bool) -> Result<Glob, String> {
    GlobBuilder::new(glob)
        .literal_separator(literal_separator)
        .build()
        .map_err(|e| e.kind().to_string())
}

fn patterns_of(
    reporter: &Reporter<'_>,
    globs: &[String],
    literal_separator: bool,
    at: &str,
    rule: &str,
) -> Result<Patterns, PolicyError> {
    let set = glob_set(globs, literal_separator).map_err(|(j, e)| {
        reporter.value(
            &format!("{at}[{j}]"),
            format!("rule `{rule}`: invalid glob `{}`: {e}", globs[j]),
            "`*` matches any run of characters, `?` one character, `[abc]` a set",
        )
    })?;
    Ok(Patterns {
        written: globs.to_vec(),
        set,
    })
}

/// `sha256:<64 hex>` (or bare hex) → lowercase hex.
pub(crate) fn parse_pin(pin: &str) -> Option<String> {
    let hex = pin.strip_prefix("sha256:").unwrap_or(pin);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_values_keys_and_items() {
        let src = "\
mode: warn
rules:
  - name: a
    match: [\"x/*.wasm\", \"y\"]
    authorities:
      - key: k.pub
      - keyless: { issuer: i, subject: s }
";
        let p = SourceMap::build(src);
        let value = |path: &str| {
            let at = p.value(&yaml_path(path));
            (at.line, at.column)
        };
        assert_eq!(value("mode"), (1, 7));
        assert_eq!(value("rules[0].name"), (3, 11));
        assert_eq!(value("rules[0].match[1]"), (4, 25));
        assert_eq!(value("rules[0].authorities[0].key"), (6, 14));
        let key = p.key(&yaml_path("rules[0].authorities[1].keyless"));
        assert_eq!((key.line, key.column), (7, 9));
        assert_eq!(value("rules[0].authorities[1].keyless.subject"), (7, 40));
        // Unknown paths fall back to the nearest known parent.
        assert_eq!(value("rules[0].digest"), value("rules[0]"));
        assert_eq!(value("nothing.here"), (1, 1));
    }

    #[test]
    fn paths_as_written_here() {
        let path = YamlPath::root()
            .key("rules")
            .index(0)
            .key("max-grants")
            .key("network")
            .index(12);
        assert_eq!(yaml_path("rules[0].max-grants.network[12]"), path);
        assert_eq!(yaml_path("apiVersion"), YamlPath::root().key("apiVersion"));
        assert_eq!(yaml_path(""), YamlPath::root());
    }

    #[test]
    fn pins_and_network_patterns() {
        let hex = "a".repeat(64);
        assert_eq!(parse_pin(&format!("sha256:{hex}")), Some(hex.clone()));
        assert_eq!(parse_pin(&hex.to_uppercase()), Some(hex));
        assert_eq!(parse_pin("sha256:abc"), None);
        let problem = |pattern: &str| {
            let src = format!(
                "rules:\n  - name: a\n    match: x\n    max-grants: {{ network: [{pattern:?}] }}\n"
            );
            parse(&src, Path::new("policy.yaml"))
                .err()
                .map(|e| e.message())
        };
        assert_eq!(problem("*.acme.internal:443"), None);
        assert_eq!(problem("*:*"), None);
        assert_eq!(problem("api.example.com:443"), None);
        assert!(problem("api.example.com").is_some());
        assert!(problem("a*b:443").is_some());
        assert!(problem("x:http").is_some());
    }
}
