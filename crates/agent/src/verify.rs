//! The agent's own admission of every job, before anything runs:
//!
//! 1. the plugin's bytes hash to the digest the job names (a mismatch is an
//!    integrity refusal);
//! 2. [`sluice_engine::admission::evaluate`] under the agent's **own**
//!    operator policy (`Policies::new(Some(operator), None)`; the
//!    pipeline's policy is the coordinator's business and never travels);
//! 3. the grant ceiling (`accept.max-grants`);
//! 4. every secret the job is granted is one the agent holds and can read.
//!
//! A refusal becomes [`StageFailure::Refused`] (the run exits 3), naming
//! the agent and each rule. The plugin reference is the coordinator's word,
//! so agent policies should key rules on signers and digests.
//!
//! Decisions of steps 1–3 are cached per (digest, bundle, attestations,
//! grants): the policy is loaded once per agent, and a warm agent should
//! not hash a plugin for every job. Step 4 runs every time (a secret file
//! may have gone).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use sluice_engine::admission::{self, PluginFile};
use sluice_engine::executor::{JobGrants, StageFailure, StageJob};
use sluice_trust::{operator::OperatorSource, Policies, Policy, PolicyError};

use crate::config::{AgentConfig, GrantCeiling};
use crate::sources::AgentSecrets;

/// Why the agent will not run a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A trust refusal: policy, integrity, ceiling or secrets (exit 3).
    #[error("refused by agent `{agent}`: {}", reasons.join("; "))]
    Refused {
        /// The agent.
        agent: String,
        /// One line per rule, grant or secret that refused.
        reasons: Vec<String>,
    },
    /// The plugin is not a usable component at all.
    #[error("plugin {reference}: {reason}")]
    Unusable {
        /// The plugin's reference.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl VerifyError {
    /// The failure the job answers with.
    pub fn into_failure(self) -> StageFailure {
        match self {
            VerifyError::Refused { agent, reasons } => StageFailure::Refused { agent, reasons },
            e @ VerifyError::Unusable { .. } => StageFailure::setup(e.to_string()),
        }
    }
}

/// What the agent decided about a plugin: who signed it, which rules
/// matched, and what it should warn about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// Who signed it, if a signature was verified.
    pub signer: Option<String>,
    /// Operator policy rules that matched.
    pub rules: Vec<String>,
    /// Warnings (`mode: warn`, `no-match: warn`, `allow-unsigned`).
    pub warnings: Vec<String>,
}

/// The cache key of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    digest: String,
    bundle: Option<String>,
    attestations: Option<String>,
    grants: String,
}

/// The agent's admission ([`Verifier::verify`]).
pub struct Verifier {
    agent: String,
    policies: Policies,
    allow_unsigned: bool,
    ceiling: Option<GrantCeiling>,
    secrets: Arc<AgentSecrets>,
    decided: Mutex<HashMap<Key, Result<Verified, VerifyError>>>,
}

impl Verifier {
    /// The verifier of `config`: its operator policy is loaded now (a bad
    /// policy file stops the agent at start, not at the first job).
    pub fn new(config: &AgentConfig, secrets: Arc<AgentSecrets>) -> Result<Verifier, PolicyError> {
        let operator = config
            .policy
            .as_deref()
            .map(Policy::load)
            .transpose()?
            .map(|p| (p, OperatorSource::Flag));
        Ok(Verifier {
            agent: config.name.clone(),
            policies: Policies::new(operator, None),
            allow_unsigned: config.allow_unsigned,
            ceiling: config.ceiling.clone(),
            secrets,
            decided: Mutex::new(HashMap::new()),
        })
    }

    /// The agent's name, as refusals give it.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// Whether the agent runs unverified plugins (no policy and
    /// `allow-unsigned: true`; said in heartbeats).
    pub fn unverified(&self) -> bool {
        self.policies.is_empty()
    }

    /// Decide whether `job` may run `file` (whose `digest` is the sha256 of
    /// its bytes, see [`plugin_file`]).
    pub fn verify(&self, job: &StageJob, file: &PluginFile) -> Result<Verified, VerifyError> {
        let key = Key {
            digest: file.digest.clone(),
            bundle: file.bundle.clone(),
            attestations: file.attestations.clone(),
            grants: serde_json::to_string(&job.grants).unwrap_or_default(),
        };
        let cached = self.decided.lock().ok().and_then(|d| d.get(&key).cloned());
        let decided = match cached {
            Some(decided) => decided,
            None => {
                let decided = self.decide(job, file);
                if let Ok(mut d) = self.decided.lock() {
                    d.insert(key, decided.clone());
                }
                decided
            }
        };
        let verified = decided?;
        self.check_secrets(&job.grants)?;
        Ok(verified)
    }

    /// Decide whether the plugin `file` may run at all (its signature and
    /// digest under the agent's policy, with no grants): what `describe`
    /// needs before the plugin is compiled. Jobs are decided by
    /// [`Verifier::verify`], with their grants.
    pub fn admit(&self, file: &PluginFile) -> Result<Verified, VerifyError> {
        let job_grants = JobGrants {
            workspace: sluice_pipeline::WorkspaceAccess::None,
            env: Vec::new(),
            network: Vec::new(),
            exec: Vec::new(),
            secrets: Vec::new(),
            tls_ca: Vec::new(),
            memory: 0,
            output: 0,
            artifacts: 0,
        };
        let key = Key {
            digest: file.digest.clone(),
            bundle: file.bundle.clone(),
            attestations: file.attestations.clone(),
            grants: String::new(),
        };
        let cached = self.decided.lock().ok().and_then(|d| d.get(&key).cloned());
        if let Some(decided) = cached {
            return decided;
        }
        let decided = self.decide_grants(&file.digest, &job_grants, file);
        if let Ok(mut d) = self.decided.lock() {
            d.insert(key, decided.clone());
        }
        decided
    }

    fn refused(&self, reasons: Vec<String>) -> VerifyError {
        VerifyError::Refused {
            agent: self.agent.clone(),
            reasons,
        }
    }

    /// Steps 1–3 (cached by the caller).
    fn decide(&self, job: &StageJob, file: &PluginFile) -> Result<Verified, VerifyError> {
        self.decide_grants(&job.plugin.digest, &job.grants, file)
    }

    fn decide_grants(
        &self,
        expected: &str,
        grants: &JobGrants,
        file: &PluginFile,
    ) -> Result<Verified, VerifyError> {
        if file.digest != expected {
            return Err(self.refused(vec![format!(
                "plugin {}: its bytes hash to {}, but the job names {expected}; the plugin changed or was tampered with on the way",
                file.reference, file.digest
            )]));
        }
        let unusable = |e: admission::ComponentError| VerifyError::Unusable {
            reference: file.reference.clone(),
            reason: e.to_string(),
        };
        let mut verified = if self.policies.is_empty() {
            if !self.allow_unsigned {
                return Err(self.refused(vec![
                    "the agent has no operator policy; set `policy:` in its config".to_owned(),
                ]));
            }
            file.imports().map_err(unusable)?;
            Verified {
                warnings: vec![format!(
                    "plugin {} runs unverified on agent `{}` (its config says allow-unsigned, and it has no policy)",
                    file.reference, self.agent
                )],
                ..Verified::default()
            }
        } else {
            let decision =
                admission::evaluate(&self.policies, file, admission::requested_from(grants))
                    .map_err(unusable)?;
            if !decision.admitted {
                return Err(self.refused(decision.refusals.into_iter().map(|r| r.reason).collect()));
            }
            Verified {
                signer: decision.signer.map(|s| s.to_string()),
                rules: decision.matched_rules,
                warnings: decision.warnings,
            }
        };
        if let Some(ceiling) = &self.ceiling {
            let excess = ceiling.excess(&file.reference, &admission::requested_from(grants));
            if !excess.is_empty() {
                return Err(self.refused(
                    excess
                        .into_iter()
                        .map(|e| format!("{e} (the agent's grant ceiling)"))
                        .collect(),
                ));
            }
        }
        verified.warnings.sort();
        Ok(verified)
    }

    /// Step 4: every granted secret is held and readable.
    fn check_secrets(&self, grants: &JobGrants) -> Result<(), VerifyError> {
        let problems: Vec<String> = grants
            .secrets
            .iter()
            .filter_map(|name| self.secrets.value(name).err())
            .map(|p| {
                format!(
                    "agent `{}` {p}; add it to the agent's `secrets:` or send the stage to an agent that holds it (`runs-on:`)",
                    self.agent
                )
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(self.refused(problems))
        }
    }
}

/// A plugin as the agent received it: `reference` is the coordinator's
/// word, the digest is computed here from `bytes`.
pub fn plugin_file(
    reference: &str,
    path: std::path::PathBuf,
    bytes: Arc<Vec<u8>>,
    bundle: Option<String>,
    attestations: Option<String>,
) -> PluginFile {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes.as_slice())));
    PluginFile {
        path,
        reference: reference.to_owned(),
        bytes,
        digest,
        imports: std::sync::OnceLock::new(),
        bundle,
        attestations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_engine::executor::JobPlugin;
    use sluice_pipeline::WorkspaceAccess;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn noop() -> PluginFile {
        let path = root().join("dist/plugins/noop.wasm");
        let bytes = std::fs::read(&path).expect("noop.wasm");
        let bundle = std::fs::read_to_string(root().join("dist/plugins/noop.wasm.sigstore.json"))
            .expect("bundle");
        plugin_file(
            "plugins/noop.wasm",
            path,
            Arc::new(bytes),
            Some(bundle),
            None,
        )
    }

    fn job(file: &PluginFile) -> StageJob {
        StageJob {
            run_id: "20261207-101943-5b3f59".into(),
            pipeline: "p".into(),
            stage: "s".into(),
            attempt: 1,
            environment: None,
            plugin: JobPlugin {
                reference: file.reference.clone(),
                digest: file.digest.clone(),
            },
            config: serde_json::json!({}),
            workspace: PathBuf::from("/tmp"),
            grants: JobGrants {
                workspace: WorkspaceAccess::None,
                env: Vec::new(),
                network: Vec::new(),
                exec: Vec::new(),
                secrets: Vec::new(),
                tls_ca: Vec::new(),
                memory: 64 << 20,
                output: 1 << 20,
                artifacts: 1 << 20,
            },
            inputs: Vec::new(),
            upstream: Vec::new(),
            timeout: Duration::from_secs(60),
            grace_period: Duration::ZERO,
            log: "logs/s.log".into(),
        }
    }

    /// An agent config in `dir` whose policy trusts `key` (a PEM file).
    fn verifier(dir: &Path, key: &Path, extra: &str) -> Verifier {
        let policy = dir.join("policy.yaml");
        std::fs::write(
            &policy,
            format!(
                "mode: enforce\nno-match: deny\nrules:\n  - name: signed-by-ops\n    match: [\"**\"]\n    authorities:\n      - key: {}\n",
                key.display()
            ),
        )
        .expect("policy");
        let file = dir.join("agent.yaml");
        let src = format!("name: a1\npolicy: policy.yaml\n{extra}");
        let config = AgentConfig::parse(&src, &file).expect("config");
        let secrets = Arc::new(AgentSecrets::new(&config));
        Verifier::new(&config, secrets).expect("verifier")
    }

    fn refusal(e: VerifyError) -> (String, Vec<String>) {
        match e {
            VerifyError::Refused { agent, reasons } => (agent, reasons),
            other => panic!("not a refusal: {other}"),
        }
    }

    #[test]
    fn a_plugin_signed_by_a_trusted_key_is_admitted() {
        let dir = tempfile::tempdir().expect("tmp");
        let v = verifier(dir.path(), &root().join("dist/keys/demo.pub"), "");
        let file = noop();
        let verified = v.verify(&job(&file), &file).expect("admitted");
        assert_eq!(verified.rules, ["operator:signed-by-ops"]);
        // Decided once, then cached.
        assert_eq!(v.verify(&job(&file), &file), Ok(verified));
        assert_eq!(v.decided.lock().expect("lock").len(), 1);
    }

    #[test]
    fn the_agent_policy_refuses_what_another_key_signed() {
        let dir = tempfile::tempdir().expect("tmp");
        let pair = sluice_trust::generate(b"pw").expect("key");
        let key = dir.path().join("other.pub");
        std::fs::write(&key, &pair.public_pem).expect("write");
        let v = verifier(dir.path(), &key, "");
        let file = noop();
        let (agent, reasons) = refusal(v.verify(&job(&file), &file).expect_err("refused"));
        assert_eq!(agent, "a1");
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("operator policy"), "{reasons:?}");
        assert!(reasons[0].contains("signed-by-ops"), "{reasons:?}");
        let failure = VerifyError::Refused { agent, reasons }.into_failure();
        assert!(matches!(failure, StageFailure::Refused { .. }));
    }

    #[test]
    fn bytes_that_do_not_hash_to_the_job_digest_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let v = verifier(dir.path(), &root().join("dist/keys/demo.pub"), "");
        let file = noop();
        let mut j = job(&file);
        j.plugin.digest = format!("sha256:{}", "0".repeat(64));
        let (_, reasons) = refusal(v.verify(&j, &file).expect_err("refused"));
        assert!(reasons[0].contains("tampered"), "{reasons:?}");
    }

    #[test]
    fn grants_over_the_ceiling_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let v = verifier(
            dir.path(),
            &root().join("dist/keys/demo.pub"),
            "accept: { max-grants: { exec: [sleep], workspace: read } }\n",
        );
        let file = noop();
        let mut j = job(&file);
        j.grants.exec = vec!["sleep".into()];
        v.verify(&j, &file).expect("within the ceiling");
        j.grants.exec = vec!["sleep".into(), "curl".into()];
        j.grants.workspace = WorkspaceAccess::Write;
        let (_, reasons) = refusal(v.verify(&j, &file).expect_err("refused"));
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(
            reasons.iter().all(|r| r.contains("accept.max-grants")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("exec: [curl]")),
            "{reasons:?}"
        );
    }

    #[test]
    fn a_secret_the_agent_does_not_hold_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let v = verifier(
            dir.path(),
            &root().join("dist/keys/demo.pub"),
            "secrets: { HELD: { env: PATH } }\n",
        );
        let file = noop();
        let mut j = job(&file);
        j.grants.secrets = vec!["HELD".into()];
        v.verify(&j, &file).expect("held");
        j.grants.secrets = vec!["HELD".into(), "NPM_TOKEN".into()];
        let (_, reasons) = refusal(v.verify(&j, &file).expect_err("refused"));
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(
            reasons[0].starts_with("agent `a1` holds no secret `NPM_TOKEN`"),
            "{reasons:?}"
        );
    }

    #[test]
    fn without_a_policy_only_allow_unsigned_runs_plugins() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = AgentConfig::parse(
            "name: dev\nallow-unsigned: true\n",
            &dir.path().join("a.yaml"),
        )
        .expect("config");
        let v = Verifier::new(&config, Arc::new(AgentSecrets::new(&config))).expect("verifier");
        assert!(v.unverified());
        let file = noop();
        let verified = v.verify(&job(&file), &file).expect("admitted");
        assert!(verified.warnings[0].contains("unverified"), "{verified:?}");
        // Not a component: unusable, not admitted.
        let junk = plugin_file(
            "x.wasm",
            PathBuf::from("x.wasm"),
            Arc::new(b"hello".to_vec()),
            None,
            None,
        );
        assert!(matches!(
            v.verify(&job(&junk), &junk),
            Err(VerifyError::Unusable { .. })
        ));
    }
}
