//! The operator policy: the floor every pipeline runs on.
//!
//! The pipeline author chooses `policy:` in `sluice.yaml`, so that policy
//! cannot be what protects the operator: a pull request could point it at a
//! file with `mode: warn` and `no-match: allow`. The operator policy is a
//! policy file the operator owns, found in this order (the first that is
//! given wins):
//!
//! 1. `--operator-policy FILE` (a global flag);
//! 2. the environment variable `SLUICE_POLICY` (when not empty);
//! 3. `/etc/sluice/policy.yaml`, if it exists (the directory can be moved
//!    with `SLUICE_OPERATOR_POLICY_DIR`, for tests and non-root installs).
//!
//! When there is one, the pipeline's policy (its `policy:` or `--policy`)
//! can only add requirements ([`Policies::evaluate`]):
//!
//! - both policies evaluate every plugin; a plugin runs only when both admit
//!   it, and each refusal names the policy that made it;
//! - the operator policy is evaluated exactly as written;
//! - the pipeline policy is evaluated with the stricter of the two `mode`s,
//!   and its own `no-match`: so the strictest `mode` and `no-match` win, and
//!   the pipeline can neither widen `max-grants` nor drop an authority;
//! - `--allow-unsigned` has no effect.
//!
//! Without an operator policy the pipeline's policy is in charge, as
//! before.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::policy::{Decision, Mode, NoMatch, PluginInput, Policy, PolicyError, Refusal};

/// The operator policy used when neither the flag nor `SLUICE_POLICY` names
/// one and the file exists.
pub const DEFAULT_OPERATOR_POLICY: &str = "/etc/sluice/policy.yaml";

/// Environment variable naming the operator policy file.
pub const OPERATOR_POLICY_ENV: &str = "SLUICE_POLICY";

/// Environment variable moving the directory of the default operator policy
/// (`policy.yaml` inside it).
pub const OPERATOR_POLICY_DIR_ENV: &str = "SLUICE_OPERATOR_POLICY_DIR";

/// Where the operator policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorSource {
    /// `--operator-policy FILE`.
    Flag,
    /// `SLUICE_POLICY`.
    Env,
    /// `/etc/sluice/policy.yaml` (or `$SLUICE_OPERATOR_POLICY_DIR/policy.yaml`).
    SystemFile,
}

impl OperatorSource {
    /// How the source is named in messages.
    pub fn describe(self) -> &'static str {
        match self {
            OperatorSource::Flag => "--operator-policy",
            OperatorSource::Env => "SLUICE_POLICY",
            OperatorSource::SystemFile => "the system policy file",
        }
    }
}

/// Finds the operator policy file: `flag`, else `SLUICE_POLICY`, else the
/// system file if it exists. `var` reads the environment.
pub fn locate_with(
    flag: Option<&Path>,
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<(PathBuf, OperatorSource)> {
    if let Some(flag) = flag.filter(|f| !f.as_os_str().is_empty()) {
        return Some((flag.to_path_buf(), OperatorSource::Flag));
    }
    if let Some(env) = var(OPERATOR_POLICY_ENV).filter(|v| !v.is_empty()) {
        return Some((PathBuf::from(env), OperatorSource::Env));
    }
    let system = match var(OPERATOR_POLICY_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("policy.yaml"),
        None => PathBuf::from(DEFAULT_OPERATOR_POLICY),
    };
    // A dangling link or unreadable file there still counts: failing closed
    // (the load error) beats silently running without the floor.
    std::fs::symlink_metadata(&system)
        .is_ok()
        .then_some((system, OperatorSource::SystemFile))
}

/// [`locate_with`] on the process environment.
pub fn locate(flag: Option<&Path>) -> Option<(PathBuf, OperatorSource)> {
    locate_with(flag, |k| std::env::var_os(k))
}

/// The lookup order, for messages.
pub fn lookup_order() -> String {
    let system = match std::env::var_os(OPERATOR_POLICY_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("policy.yaml"),
        None => PathBuf::from(DEFAULT_OPERATOR_POLICY),
    };
    format!(
        "--operator-policy, {OPERATOR_POLICY_ENV}, {}",
        system.display()
    )
}

/// The operator policy, if any, loaded.
pub fn load_operator(flag: Option<&Path>) -> Result<Option<(Policy, OperatorSource)>, PolicyError> {
    match locate(flag) {
        None => Ok(None),
        Some((path, source)) => Ok(Some((Policy::load(&path)?, source))),
    }
}

/// The policies a plugin is admitted under: the operator's floor and the
/// pipeline's own.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    operator: Option<Policy>,
    operator_source: Option<OperatorSource>,
    pipeline: Option<Policy>,
    /// The pipeline policy as evaluated: with the stricter `mode`.
    pipeline_effective: Option<Policy>,
}

impl Policies {
    /// Combines the operator policy (if any) and the pipeline's (if any).
    pub fn new(operator: Option<(Policy, OperatorSource)>, pipeline: Option<Policy>) -> Policies {
        let (operator, operator_source) = match operator {
            Some((p, s)) => (Some(p), Some(s)),
            None => (None, None),
        };
        let pipeline_effective = pipeline.as_ref().map(|p| {
            let mut p = p.clone();
            if let Some(op) = &operator {
                p.mode = stricter_mode(op.mode, p.mode);
            }
            p
        });
        Policies {
            operator,
            operator_source,
            pipeline,
            pipeline_effective,
        }
    }

    /// The operator policy.
    pub fn operator(&self) -> Option<&Policy> {
        self.operator.as_ref()
    }

    /// Where the operator policy came from.
    pub fn operator_source(&self) -> Option<OperatorSource> {
        self.operator_source
    }

    /// The pipeline's policy, as written.
    pub fn pipeline(&self) -> Option<&Policy> {
        self.pipeline.as_ref()
    }

    /// No policy at all (only `--allow-unsigned` can then run plugins).
    pub fn is_empty(&self) -> bool {
        self.operator.is_none() && self.pipeline.is_none()
    }

    /// Whether some rule checks the component's imports (so evaluating
    /// needs them parsed).
    pub fn needs_imports(&self) -> bool {
        self.operator
            .iter()
            .chain(self.pipeline_effective.iter())
            .flat_map(|p| p.rules.iter())
            .any(|r| r.allowed_imports.is_some())
    }

    /// The `mode` in effect: the strictest of both.
    pub fn mode(&self) -> Option<Mode> {
        match (&self.operator, &self.pipeline) {
            (Some(o), Some(p)) => Some(stricter_mode(o.mode, p.mode)),
            (Some(o), None) => Some(o.mode),
            (None, Some(p)) => Some(p.mode),
            (None, None) => None,
        }
    }

    /// The `no-match` in effect: the strictest of both.
    pub fn no_match(&self) -> Option<NoMatch> {
        match (&self.operator, &self.pipeline) {
            (Some(o), Some(p)) => Some(stricter_no_match(o.no_match, p.no_match)),
            (Some(o), None) => Some(o.no_match),
            (None, Some(p)) => Some(p.no_match),
            (None, None) => None,
        }
    }

    /// Decides whether a plugin may run: without an operator policy, the
    /// pipeline's decision; with one, both must admit it (see the module
    /// documentation). With no policy at all, nothing admits it.
    pub fn evaluate(&self, input: &PluginInput<'_>) -> Decision {
        let Some(operator) = &self.operator else {
            return match &self.pipeline {
                Some(p) => p.evaluate(input),
                None => Decision {
                    admitted: false,
                    refusals: vec![Refusal {
                        rule: None,
                        reason: format!("plugin {}: there is no trust policy", input.reference),
                    }],
                    ..Decision::default()
                },
            };
        };
        let mut out = Decision::default();
        let parts = std::iter::once((operator, "operator"))
            .chain(self.pipeline_effective.iter().map(|p| (p, "pipeline")));
        for (policy, origin) in parts {
            let d = policy.evaluate(input);
            let tag = format!("{origin} policy {}", policy.file().display());
            out.warnings
                .extend(d.warnings.into_iter().map(|w| format!("{tag}: {w}")));
            out.refusals.extend(d.refusals.into_iter().map(|r| Refusal {
                rule: r.rule.map(|name| format!("{origin}:{name}")),
                reason: format!("{tag}: {}", r.reason),
            }));
            out.matched_rules.extend(
                d.matched_rules
                    .into_iter()
                    .map(|name| format!("{origin}:{name}")),
            );
            if out.signer.is_none() {
                out.signer = d.signer;
            }
        }
        out.admitted = out.refusals.is_empty();
        out
    }

    /// The policies in effect in plain words, with the origin of every
    /// rule, for `sluice policy check`.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let Some(operator) = &self.operator else {
            let _ = writeln!(
                out,
                "No operator policy (looked for {}): the pipeline's policy is in charge.",
                lookup_order()
            );
            if let Some(p) = &self.pipeline {
                out.push_str(&p.explain());
            }
            return out;
        };
        let source = self
            .operator_source
            .map(OperatorSource::describe)
            .unwrap_or("?");
        let _ = writeln!(
            out,
            "Operator policy {} (from {source}) is the floor: a pipeline's policy can only add \
             requirements to it.",
            operator.file().display()
        );
        if let (Some(mode), Some(no_match)) = (self.mode(), self.no_match()) {
            let _ = writeln!(
                out,
                "In effect: mode {}, no-match {} (the strictest of the policies); a plugin runs \
                 only if every policy admits it.",
                mode_name(mode),
                no_match_name(no_match)
            );
        }
        let _ = writeln!(out, "Rules in effect:");
        let mut list = |policy: &Policy, origin: &str| {
            for name in policy.rule_names() {
                let _ = writeln!(
                    out,
                    "  - `{name}` (from the {origin} policy {})",
                    policy.file().display()
                );
            }
        };
        list(operator, "operator");
        if let Some(p) = &self.pipeline {
            list(p, "pipeline");
        }
        let _ = writeln!(
            out,
            "\n== from the operator policy {} ==",
            operator.file().display()
        );
        out.push_str(&operator.explain());
        if let Some(p) = &self.pipeline {
            let _ = writeln!(
                out,
                "\n== from the pipeline policy {} ==",
                p.file().display()
            );
            out.push_str(&p.explain());
            if p.mode == Mode::Warn && operator.mode == Mode::Enforce {
                let _ = writeln!(
                    out,
                    "(its `mode: warn` does not apply: the operator policy enforces)"
                );
            }
        }
        out
    }
}

fn stricter_mode(a: Mode, b: Mode) -> Mode {
    if a == Mode::Enforce || b == Mode::Enforce {
        Mode::Enforce
    } else {
        Mode::Warn
    }
}

fn stricter_no_match(a: NoMatch, b: NoMatch) -> NoMatch {
    let rank = |n: NoMatch| match n {
        NoMatch::Deny => 2,
        NoMatch::Warn => 1,
        NoMatch::Allow => 0,
    };
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Enforce => "enforce",
        Mode::Warn => "warn",
    }
}

fn no_match_name(n: NoMatch) -> &'static str {
    match n {
        NoMatch::Deny => "deny",
        NoMatch::Warn => "warn",
        NoMatch::Allow => "allow",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::RequestedGrants;
    use std::ffi::OsString;

    fn policy(src: &str, name: &str) -> Policy {
        Policy::parse(src, Path::new(name)).expect("policy")
    }

    fn input(reference: &str, grants: RequestedGrants) -> PluginInput<'static> {
        PluginInput {
            reference: reference.to_owned(),
            digest: String::new(),
            bytes: b"not a component",
            bundle: None,
            attestations: None,
            imports: Vec::new(),
            grants,
        }
    }

    const LAX: &str = "mode: warn\nno-match: allow\n";
    const FLOOR: &str = "mode: enforce\nno-match: deny\nrules:\n  - name: any\n    match: [\"**\"]\n    max-grants: { workspace: read, exec: [] }\n";

    #[test]
    fn lookup_order_is_flag_env_then_system_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let env = |pairs: Vec<(&'static str, OsString)>| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        };
        let sys = dir.path().as_os_str().to_owned();
        // No system file yet.
        assert_eq!(
            locate_with(None, env(vec![(OPERATOR_POLICY_DIR_ENV, sys.clone())])),
            None
        );
        std::fs::write(dir.path().join("policy.yaml"), FLOOR).expect("write");
        assert_eq!(
            locate_with(None, env(vec![(OPERATOR_POLICY_DIR_ENV, sys.clone())])),
            Some((dir.path().join("policy.yaml"), OperatorSource::SystemFile))
        );
        assert_eq!(
            locate_with(
                None,
                env(vec![
                    (OPERATOR_POLICY_DIR_ENV, sys.clone()),
                    (OPERATOR_POLICY_ENV, "/e.yaml".into())
                ])
            ),
            Some((PathBuf::from("/e.yaml"), OperatorSource::Env))
        );
        assert_eq!(
            locate_with(
                Some(Path::new("/f.yaml")),
                env(vec![(OPERATOR_POLICY_ENV, "/e.yaml".into())])
            ),
            Some((PathBuf::from("/f.yaml"), OperatorSource::Flag))
        );
        // An empty SLUICE_POLICY is unset.
        assert_eq!(
            locate_with(
                None,
                env(vec![
                    (OPERATOR_POLICY_DIR_ENV, "/nonexistent-dir".into()),
                    (OPERATOR_POLICY_ENV, "".into())
                ])
            ),
            None
        );
    }

    #[test]
    fn a_lax_pipeline_policy_cannot_loosen_the_operator_floor() {
        let both = Policies::new(
            Some((
                policy(FLOOR, "/etc/sluice/policy.yaml"),
                OperatorSource::Env,
            )),
            Some(policy(LAX, "lax.yaml")),
        );
        assert_eq!(both.mode(), Some(Mode::Enforce));
        assert_eq!(both.no_match(), Some(NoMatch::Deny));
        let over = RequestedGrants {
            workspace: "write".into(),
            exec: vec!["sh".into()],
            ..RequestedGrants::default()
        };
        let d = both.evaluate(&input("plugins/x.wasm", over.clone()));
        assert!(!d.admitted, "{d:?}");
        assert!(
            d.refusals.iter().all(|r| r
                .reason
                .starts_with("operator policy /etc/sluice/policy.yaml: ")),
            "{d:?}"
        );
        // The lax policy alone admits it (today's behaviour).
        let alone = Policies::new(None, Some(policy(LAX, "lax.yaml")));
        assert!(alone.evaluate(&input("plugins/x.wasm", over)).admitted);
        // Within the floor, it runs.
        let d = both.evaluate(&input("plugins/x.wasm", RequestedGrants::default()));
        assert!(d.admitted, "{d:?}");
        assert_eq!(d.matched_rules, ["operator:any"]);
    }

    #[test]
    fn the_pipeline_policy_adds_requirements_and_the_strictest_mode_wins() {
        let operator = "mode: warn\nno-match: allow\n";
        let pipeline = "mode: warn\nno-match: deny\nrules:\n  - name: no-exec\n    match: [\"plugins/**\"]\n    max-grants: { exec: [] }\n";
        let both = Policies::new(
            Some((policy(operator, "/op.yaml"), OperatorSource::Flag)),
            Some(policy(pipeline, "p.yaml")),
        );
        // Both in warn: warnings only.
        assert_eq!(both.mode(), Some(Mode::Warn));
        let d = both.evaluate(&input("evil/x.wasm", RequestedGrants::default()));
        assert!(d.admitted);
        assert!(d
            .warnings
            .iter()
            .any(|w| w.starts_with("pipeline policy p.yaml: ")));

        let strict_op = "mode: enforce\nno-match: allow\n";
        let both = Policies::new(
            Some((policy(strict_op, "/op.yaml"), OperatorSource::Flag)),
            Some(policy(pipeline, "p.yaml")),
        );
        // The pipeline's `no-match: deny` and its rule are enforced.
        let d = both.evaluate(&input("evil/x.wasm", RequestedGrants::default()));
        assert!(!d.admitted);
        assert!(d.refusals[0].reason.starts_with("pipeline policy p.yaml: "));
        let exec = RequestedGrants {
            exec: vec!["sh".into()],
            ..RequestedGrants::default()
        };
        let d = both.evaluate(&input("plugins/x.wasm", exec));
        assert!(!d.admitted);
        assert_eq!(d.refusals[0].rule.as_deref(), Some("pipeline:no-exec"));
    }

    #[test]
    fn explain_names_the_origin_of_each_rule() {
        let pipeline = "rules:\n  - name: extra\n    match: [\"plugins/**\"]\n";
        let both = Policies::new(
            Some((
                policy(FLOOR, "/etc/sluice/policy.yaml"),
                OperatorSource::SystemFile,
            )),
            Some(policy(pipeline, "p.yaml")),
        );
        let text = both.explain();
        assert!(
            text.contains("`any` (from the operator policy /etc/sluice/policy.yaml)"),
            "{text}"
        );
        assert!(
            text.contains("`extra` (from the pipeline policy p.yaml)"),
            "{text}"
        );
        let alone = Policies::new(None, Some(policy(pipeline, "p.yaml")));
        assert!(alone
            .explain()
            .contains("the pipeline's policy is in charge"));
    }
}
