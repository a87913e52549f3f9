//! One attempt of one stage, as the run sees it: the scheduler's
//! [`Attempts`] implemented on top of the [executor port](crate::executor).
//!
//! For each attempt the [`Orchestrator`]
//! 1. expands the stage's `with:` templates (`${{ env.* }}` through the
//!    injected [`EnvSource`]) and checks the result against the plugin's
//!    config schema: a bad `with:` fails the attempt without running it;
//! 2. resolves the rest into a [`StageJob`] (plugin digest, grants by
//!    name, input artifacts by digest, upstream outputs and the runner's
//!    `sluice.*` facts about each upstream stage);
//! 3. hands the job to the [`Executor`];
//! 4. checks the names of the artifacts the stage published, evaluates its
//!    gates, and writes (and signs, with a key) the provenance of its
//!    artifacts;
//! 5. turns the outcome into the stage's record, with a failure's reason
//!    redacted and bounded ([`plugin_reason`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::executor::{
    ConfigOrigin, EnvSource, Executor, JobGrants, JobInput, JobPlugin, ProvenanceFailure,
    SecretSource, StageFailure, StageJob, StageReport, UpstreamOutput,
};
use crate::provenance;
use crate::redact::Redactor;
use crate::report::escape_controls;
use crate::scheduler::{AttemptFuture, AttemptOutcome, Attempts};
use sluice_pipeline::config_schema::ConfigSchema;
use sluice_pipeline::gates::{self, Verdict};
use sluice_pipeline::{self as pipeline, Pipeline};
use sluice_record::artifacts::{Cas, IngestLimits};
use sluice_record::workdir::WorkDirs;
use sluice_record::{PluginRecord, RunRecord, StageRecord, StageState};

/// Longest failure reason kept from a plugin (longer ones are cut).
pub const REASON_BYTES: usize = 4 * 1024;

/// Runs the attempts of one pipeline's stages through an [`Executor`].
pub struct Orchestrator {
    /// The pipeline.
    pub pipeline: Arc<Pipeline>,
    /// The plugin each stage runs (admitted and described), by stage name.
    pub plugins: HashMap<String, PluginRecord>,
    /// The config schema each stage's plugin publishes, by stage name.
    pub schemas: HashMap<String, ConfigSchema>,
    /// Runs the jobs.
    pub executor: Arc<dyn Executor>,
    /// Values for `${{ env.NAME }}` templates.
    pub env: Arc<dyn EnvSource>,
    /// Redacts every secret value the run knows (see [`run_redactor`]).
    pub redactor: Arc<Redactor>,
    /// The artifact store (provenance statements go there).
    pub cas: Arc<Cas>,
    /// The run's `work/` (provenance is written in `work/<stage>/provenance`).
    pub work: WorkDirs,
    /// Signs provenance when configured.
    pub provenance_key: Option<Arc<sluice_trust::PrivateKey>>,
    /// The source the run started from (read once, before any stage ran).
    pub source: Option<Arc<provenance::SourceState>>,
    /// `builder.id` of the provenance statements.
    pub builder_id: String,
    /// Set when an attempt failed with a trust refusal of an agent
    /// ([`StageFailure::is_refusal`]): such a run exits 3, not 1. Only
    /// remote executors refuse in the middle of a run; a local run's
    /// refusals happen at admission, before any stage.
    pub refused: Arc<AtomicBool>,
}

/// The run's redactor: every value of every secret a stage of `pipeline`
/// is granted, as `secrets` has it.
pub fn run_redactor(pipeline: &Pipeline, secrets: &dyn SecretSource) -> Redactor {
    Redactor::new(
        pipeline
            .stages
            .values()
            .flat_map(|s| s.grants.secrets.iter())
            .filter_map(|name| secrets.secret(name)),
    )
}

impl Attempts for Orchestrator {
    fn attempt(
        self: Arc<Self>,
        stage: String,
        attempt: u32,
        record: Arc<RunRecord>,
        cancel: CancellationToken,
    ) -> AttemptFuture {
        Box::pin(async move {
            let started = Instant::now();
            let mut rec = StageRecord::pending(&stage);
            if let Some(p) = self.plugins.get(&stage) {
                rec.plugin = Some(p.clone());
            }
            let (state, retryable) = match self
                .run_attempt(&stage, attempt, &record, &mut rec, cancel)
                .await
            {
                Ok(state) => (state, false),
                Err(failure) => {
                    if failure.is_refusal() {
                        self.refused.store(true, Ordering::Relaxed);
                    }
                    // Failure messages carry plugin text: redact the
                    // run's secrets and bound it before it is stored.
                    rec.reason = Some(plugin_reason(&failure.to_string(), &self.redactor));
                    (StageState::Failed, failure.retryable())
                }
            };
            rec.duration_ms = Some(started.elapsed().as_millis() as u64);
            AttemptOutcome {
                state,
                retryable,
                record: rec,
            }
        })
    }
}

impl Orchestrator {
    async fn run_attempt(
        &self,
        stage_name: &str,
        attempt: u32,
        record: &RunRecord,
        rec: &mut StageRecord,
        cancel: CancellationToken,
    ) -> Result<StageState, StageFailure> {
        let stage = self
            .pipeline
            .stages
            .get(stage_name)
            .ok_or_else(|| StageFailure::setup(format!("unknown stage `{stage_name}`")))?;
        let plugin = self
            .plugins
            .get(stage_name)
            .ok_or_else(|| StageFailure::setup(format!("no plugin loaded for `{stage_name}`")))?;
        let started_on = sluice_record::now();
        let job = match self.job(stage_name, stage, plugin, attempt, record, &rec.log) {
            Ok(job) => job,
            Err(failure) => {
                // The executor never saw this attempt: the runner's notes
                // about it are written here.
                if attempt > 1 {
                    self.executor.note(
                        stage_name,
                        &rec.log,
                        &format!("attempt {attempt} of stage `{stage_name}`"),
                    );
                }
                self.executor
                    .note(stage_name, &rec.log, &failure.log_note());
                return Err(failure);
            }
        };
        // The executor says in the log why its part failed.
        let outcome = self.executor.run(job, cancel.clone()).await;
        // Which agent ran it, and which lost it on the way, is recorded
        // whatever the attempt came to.
        rec.agent = outcome.agent;
        rec.lost = outcome.lost;
        let report = outcome.result?;
        // A stage that returned a report after it was told to stop is
        // still cancelled: nothing it published is taken.
        if cancel.is_cancelled() {
            return Err(StageFailure::Cancelled { in_grace: true });
        }
        let result = self.accept(stage, report, rec).and_then(|state| {
            self.attest(stage_name, stage, record, &started_on, rec)?;
            Ok(state)
        });
        if let Err(failure) = &result {
            self.executor
                .note(stage_name, &rec.log, &failure.log_note());
        }
        result
    }

    /// Everything the attempt needs, resolved. Templates see the outputs of
    /// every stage in `record` (the loader has already checked that a stage
    /// only refers to its ancestors).
    // Sizes and durations go through `From` (and network patterns through
    // `Display`) so that this keeps compiling whether the pipeline model
    // holds plain numbers or `sluice-types` values.
    fn job(
        &self,
        stage_name: &str,
        stage: &pipeline::Stage,
        plugin: &PluginRecord,
        attempt: u32,
        record: &RunRecord,
        log: &str,
    ) -> Result<StageJob, StageFailure> {
        let config = {
            let outputs: HashMap<String, _> = record
                .stages
                .iter()
                .map(|(n, r)| (n.clone(), r.outputs.clone()))
                .collect();
            let env_lookup = |name: &str| self.env.var(name);
            let ctx = pipeline::TemplateContext {
                run_id: &record.run_id,
                env: &env_lookup,
                outputs: &outputs,
            };
            pipeline::expand(&stage.with, &ctx).map_err(|e| StageFailure::InvalidConfig {
                origin: ConfigOrigin::Template,
                message: e.to_string(),
            })?
        };
        if let Some(schema) = self.schemas.get(stage_name) {
            let violations = schema.violations(&config);
            if !violations.is_empty() {
                return Err(StageFailure::InvalidConfig {
                    origin: ConfigOrigin::Schema,
                    message: format!(
                        "`with:` does not match the plugin's config schema ({}); see `sluice plugin inspect --json` for the schema",
                        violations.join("; ")
                    ),
                });
            }
        }
        let mut inputs = Vec::new();
        let mut upstream = Vec::new();
        for need in &stage.needs {
            let Some(need_rec) = record.stages.get(need) else {
                continue;
            };
            inputs.extend(need_rec.artifacts.iter().map(|a| JobInput {
                stage: need.clone(),
                artifact: a.clone(),
            }));
            let output = |(name, value): (String, String)| UpstreamOutput {
                stage: need.clone(),
                name,
                value,
            };
            upstream.extend(need_rec.outputs.clone().into_iter().map(output));
            upstream.extend(
                status_outputs(need_rec)
                    .into_iter()
                    .map(|(name, value)| output((name.to_string(), value))),
            );
        }
        let grants = &stage.grants;
        Ok(StageJob {
            run_id: record.run_id.clone(),
            pipeline: self.pipeline.name.clone(),
            stage: stage_name.to_string(),
            attempt,
            environment: stage.environment.clone(),
            plugin: JobPlugin {
                reference: plugin.reference.clone(),
                digest: plugin.digest.clone(),
            },
            config,
            workspace: self.pipeline.workspace.clone(),
            grants: JobGrants {
                workspace: grants.workspace,
                env: grants.env.clone(),
                network: grants.network.clone(),
                exec: grants.exec.clone(),
                secrets: grants.secrets.clone(),
                tls_ca: grants.tls_ca.clone(),
                memory: grants.memory,
                output: grants.output,
                artifacts: grants.artifacts,
            },
            inputs,
            upstream,
            timeout: stage.timeout,
            grace_period: stage.grace_period,
            log: log.to_string(),
        })
    }

    /// Check the names of the published artifacts and evaluate the gates.
    fn accept(
        &self,
        stage: &pipeline::Stage,
        report: StageReport,
        rec: &mut StageRecord,
    ) -> Result<StageState, StageFailure> {
        let rejected = |message: String| Err(StageFailure::Rejected { message });
        for a in &report.artifacts {
            if provenance::is_reserved(&a.name) {
                return rejected(format!(
                    "the plugin wrote `{}` at the top of /artifacts/out; names starting with `{}` there are reserved for the provenance the runner writes (move it into a subdirectory or rename it)",
                    escape_controls(&self.redactor.redact_str(&a.name)),
                    provenance::RESERVED_PREFIX
                ));
            }
            if a.name.chars().any(char::is_control) {
                return rejected(format!(
                    "the plugin wrote an artifact whose name has a control character ({}); artifact names are shown on terminals and must be printable",
                    escape_controls(&a.name)
                ));
            }
            if self.redactor.redact_str(&a.name) != a.name {
                return rejected(format!(
                    "the plugin wrote an artifact named `{}`, which contains the value of a granted secret; artifact names are recorded and shown in clear",
                    self.redactor.redact_str(&a.name)
                ));
            }
        }
        let metrics: Vec<(String, f64)> = report
            .metrics
            .iter()
            .map(|m| (m.name.clone(), m.value))
            .collect();
        let (results, verdict) = gates::evaluate(&stage.gates, &metrics, &report.gates);
        let state = match verdict {
            Verdict::Pass => StageState::Passed,
            Verdict::Warn => StageState::Warned,
            Verdict::Inconclusive if stage.on_inconclusive == pipeline::OnInconclusive::Pause => {
                StageState::AwaitingApproval
            }
            Verdict::Fail | Verdict::Inconclusive => StageState::Blocked,
        };
        let first_blocking = || {
            results
                .iter()
                .find(|g| matches!(g.verdict, Verdict::Fail | Verdict::Inconclusive))
                .map(|g| g.message.clone())
                .unwrap_or_default()
        };
        if state == StageState::Blocked {
            rec.reason = Some(format!("blocked by gate: {}", first_blocking()));
        } else if state == StageState::AwaitingApproval {
            rec.reason = Some(format!(
                "paused: inconclusive gate: {}; approve to run the stage again",
                first_blocking()
            ));
        }
        rec.summary = Some(report.summary);
        rec.verdict = Some(verdict);
        rec.metrics = report.metrics;
        rec.gates = results;
        rec.outputs = report.outputs.into_iter().collect();
        rec.artifacts = report.artifacts;
        Ok(state)
    }

    /// For every stage that published artifacts, add a runner-written
    /// in-toto/SLSA provenance statement over them (signed when a key is
    /// configured). Its `with` is the pipeline's template, never the
    /// expanded config, and every string in it is redacted besides.
    fn attest(
        &self,
        stage_name: &str,
        stage: &pipeline::Stage,
        record: &RunRecord,
        started_on: &str,
        rec: &mut StageRecord,
    ) -> Result<(), StageFailure> {
        let Some(plugin) = self.plugins.get(stage_name) else {
            return Ok(());
        };
        if rec.artifacts.is_empty() {
            return Ok(());
        }
        let inputs: Vec<provenance::Input<'_>> = stage
            .needs
            .iter()
            .filter_map(|need| record.stages.get(need).map(|r| (need, r)))
            .flat_map(|(need, r)| {
                r.artifacts.iter().map(move |a| provenance::Input {
                    stage: need,
                    artifact: a,
                })
            })
            .collect();
        let facts = provenance::BuildFacts {
            run_id: &record.run_id,
            pipeline: &self.pipeline.name,
            pipeline_digest: &self.pipeline.digest,
            stage: stage_name,
            with_template: &stage.with,
            plugin,
            source: self.source.as_deref(),
            inputs: &inputs,
            builder_id: &self.builder_id,
            started_on,
            finished_on: &sluice_record::now(),
        };
        let statement = provenance::redacted(
            provenance::statement(&facts, &rec.artifacts),
            &self.redactor,
        );
        let work = self.work.stage_dir(stage_name);
        let mut stored = self
            .write_provenance(&statement, &work.join("provenance"))
            .map_err(StageFailure::Provenance)?;
        rec.artifacts.append(&mut stored);
        // The statement now lives in the CAS; the copy is not needed.
        let _ = std::fs::remove_dir_all(&work);
        Ok(())
    }

    /// Write `statement` (and its signature, with a key) into `dir` and
    /// store both in the CAS.
    fn write_provenance(
        &self,
        statement: &serde_json::Value,
        dir: &Path,
    ) -> Result<Vec<sluice_record::artifacts::ArtifactRecord>, ProvenanceFailure> {
        let write = |e: std::io::Error| ProvenanceFailure::Write(e.to_string());
        std::fs::create_dir_all(dir).map_err(write)?;
        let bytes = serde_json::to_vec_pretty(statement)
            .map_err(|e| ProvenanceFailure::Write(e.to_string()))?;
        if self.redactor.redact(&bytes) != bytes {
            // A secret whose JSON escaping differs from its raw bytes
            // cannot be matched string by string; refuse rather than sign.
            return Err(ProvenanceFailure::WouldLeakSecret);
        }
        let mut declared = vec![(
            provenance::PROVENANCE_NAME.to_string(),
            provenance::PROVENANCE_MEDIA_TYPE.to_string(),
        )];
        if let Some(key) = &self.provenance_key {
            let bundle = sluice_trust::sign_statement(&bytes, key)
                .map_err(|e| ProvenanceFailure::Sign(e.to_string()))?;
            std::fs::write(dir.join(provenance::SIGNED_PROVENANCE_NAME), bundle).map_err(write)?;
            declared.push((
                provenance::SIGNED_PROVENANCE_NAME.to_string(),
                sluice_trust::BUNDLE_MEDIA_TYPE.to_string(),
            ));
        }
        std::fs::write(dir.join(provenance::PROVENANCE_NAME), bytes).map_err(write)?;
        self.cas
            .ingest_dir(dir, &declared, &IngestLimits::default())
            .map_err(|e| ProvenanceFailure::Store(e.to_string()))
    }
}

/// Why the provenance signing key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    /// The key file cannot be read (missing, not a regular file, too
    /// large …); the message names the file.
    #[error(transparent)]
    Read(#[from] sluice_files::fsutil::InputError),
    /// The file is not a private key this password opens.
    #[error("provenance key {}: {reason} (the password comes from SLUICE_KEY_PASSWORD)", path.display())]
    Key {
        /// The key file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: sluice_trust::TrustError,
    },
}

/// The key that signs provenance, read from `path` (at most
/// [`MAX_KEY_BYTES`](sluice_files::fsutil::MAX_KEY_BYTES)) and opened with
/// `password` (the CLI takes it from `SLUICE_KEY_PASSWORD`; a run never
/// prompts).
pub fn load_signing_key(
    path: &Path,
    password: &[u8],
) -> Result<sluice_trust::PrivateKey, SigningKeyError> {
    let bytes = sluice_files::fsutil::read_input_file(
        path,
        sluice_files::fsutil::MAX_KEY_BYTES,
        "provenance key",
    )?;
    // A PEM file is ASCII; anything else fails below as a malformed key.
    let pem = String::from_utf8_lossy(&bytes);
    sluice_trust::load_private(&pem, password).map_err(|reason| SigningKeyError::Key {
        path: path.to_path_buf(),
        reason,
    })
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn clip(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A plugin's own failure message: redacted and cut to [`REASON_BYTES`].
pub fn plugin_reason(message: &str, redactor: &Redactor) -> String {
    let redacted = redactor.redact_str(message);
    if redacted.len() <= REASON_BYTES {
        return redacted;
    }
    format!(
        "{}… ({} bytes, cut)",
        clip(&redacted, REASON_BYTES),
        redacted.len()
    )
}

/// The runner's own facts about a finished upstream stage, passed as
/// reserved `sluice.*` upstream outputs (see
/// [`RESERVED_OUTPUT_PREFIX`](crate::executor::RESERVED_OUTPUT_PREFIX)) so
/// that a `when: failure` stage (remediate, notify) can say which stage and
/// gate failed, and when.
fn status_outputs(rec: &StageRecord) -> Vec<(&'static str, String)> {
    let mut out = vec![("sluice.state", rec.state.as_str().to_string())];
    if let Some(reason) = &rec.reason {
        out.push(("sluice.reason", reason.clone()));
    }
    if let Some(verdict) = rec.verdict {
        out.push(("sluice.verdict", verdict.as_str().to_string()));
    }
    if let Ok(gates) = serde_json::to_string(&rec.gates) {
        out.push(("sluice.gates", gates));
    }
    if let Some(t) = &rec.started_at {
        out.push(("sluice.started_at", t.clone()));
    }
    if let Some(t) = &rec.finished_at {
        out.push(("sluice.finished_at", t.clone()));
    }
    if let Some(ms) = rec.duration_ms {
        out.push(("sluice.duration_ms", ms.to_string()));
    }
    out
}

#[cfg(test)]
#[path = "orchestrator_tests.rs"]
mod tests;
