//! One attempt of one stage, end to end: expand templates, stage the input
//! artifacts (verifying their digests), build the sandbox from the grants,
//! run the plugin, check its report, move its outputs into the CAS and
//! evaluate the gates.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;

use crate::bindings::wit;
use crate::logpipe::{Redactor, StageLog};
use crate::sandbox::{self, StageFailure, StageRequest};
use crate::Plugin;
use sluice_engine::provenance;
use sluice_engine::report::{Event, Reporter};
use sluice_engine::scheduler::{AttemptFuture, AttemptOutcome, Executor};
use sluice_pipeline::config_schema::ConfigSchema;
use sluice_pipeline::gates::{self, PluginGate, Verdict};
use sluice_pipeline::{self as pipeline, Pipeline, WorkspaceAccess};
use sluice_record::artifacts::{Cas, IngestLimits};
use sluice_record::workdir::WorkDirs;
use sluice_record::{MetricRecord, PluginRecord, RunRecord, StageRecord, StageState};

/// Runs stages of one pipeline in their sandboxes.
pub struct WasmExecutor {
    /// The pipeline.
    pub pipeline: Arc<Pipeline>,
    /// Loaded plugins by stage name.
    pub plugins: HashMap<String, (Plugin, PluginRecord)>,
    /// The config schema each stage's plugin publishes, by stage name.
    pub schemas: HashMap<String, ConfigSchema>,
    /// The artifact store.
    pub cas: Arc<Cas>,
    /// `.sluice/runs/<id>`.
    pub run_dir: PathBuf,
    /// Redacts every secret value the run knows.
    pub redactor: Arc<Redactor>,
    /// Where events go.
    pub reporter: Arc<dyn Reporter>,
    /// Signs provenance when configured.
    pub provenance_key: Option<Arc<sluice_trust::PrivateKey>>,
    /// The source the run started from (read once, before any stage ran).
    pub source: Option<Arc<provenance::SourceState>>,
    /// `builder.id` of the provenance statements.
    pub builder_id: String,
    /// The host directories behind `/artifacts` (`<run>/work`).
    pub work: WorkDirs,
    /// Most handles one stage may hold at once.
    pub max_handles: usize,
}

impl Executor for WasmExecutor {
    fn attempt(
        self: Arc<Self>,
        stage: String,
        attempt: u32,
        record: Arc<RunRecord>,
    ) -> AttemptFuture {
        Box::pin(async move {
            let started = Instant::now();
            let mut rec = StageRecord::pending(&stage);
            if let Some((_, p)) = self.plugins.get(&stage) {
                rec.plugin = Some(p.clone());
            }
            let (state, retryable) =
                match self.run_attempt(&stage, attempt, &record, &mut rec).await {
                    Ok(state) => (state, false),
                    Err(failure) => {
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

impl WasmExecutor {
    fn open_log(
        &self,
        stage: &str,
        attempt: u32,
        output_cap: u64,
    ) -> Result<StageLog, StageFailure> {
        let reporter = self.reporter.clone();
        let name = stage.to_string();
        let live: Arc<dyn Fn(&str) + Send + Sync> =
            Arc::new(move |line: &str| reporter.event(&Event::StageLog { stage: &name, line }));
        let path = self.run_dir.join("logs").join(format!("{stage}.log"));
        let log = StageLog::create(&path, self.redactor.clone(), output_cap, Some(live))
            .map_err(|e| StageFailure::Setup(format!("cannot open log {}: {e}", path.display())))?;
        if attempt > 1 {
            log.note(&format!("attempt {attempt} of stage `{stage}`"));
        }
        Ok(log)
    }

    async fn run_attempt(
        &self,
        stage_name: &str,
        attempt: u32,
        record: &RunRecord,
        rec: &mut StageRecord,
    ) -> Result<StageState, StageFailure> {
        let stage = self
            .pipeline
            .stages
            .get(stage_name)
            .ok_or_else(|| StageFailure::Setup(format!("unknown stage `{stage_name}`")))?;
        let (plugin, _) = self
            .plugins
            .get(stage_name)
            .ok_or_else(|| StageFailure::Setup(format!("no plugin loaded for `{stage_name}`")))?;
        let log = self.open_log(stage_name, attempt, stage.grants.output)?;
        let result = self
            .sandboxed(stage_name, stage, plugin, attempt, record, rec, &log)
            .await;
        if let Err(failure) = &result {
            log.final_note(&format!("stage failed: {failure}"));
        }
        let stats = log.finish();
        if let Some(e) = stats.io_error {
            tracing::warn!(stage = stage_name, error = %e, "writing the stage log failed");
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn sandboxed(
        &self,
        stage_name: &str,
        stage: &pipeline::Stage,
        plugin: &Plugin,
        attempt: u32,
        record: &RunRecord,
        rec: &mut StageRecord,
        log: &StageLog,
    ) -> Result<StageState, StageFailure> {
        // Templates see the outputs of every finished stage; the loader has
        // already checked that a stage only refers to its ancestors.
        let started_on = sluice_record::now();
        let config = {
            let outputs: HashMap<String, IndexMap<String, String>> = record
                .stages
                .iter()
                .map(|(n, r)| (n.clone(), r.outputs.clone()))
                .collect();
            let env_lookup = |name: &str| std::env::var(name).ok();
            let ctx = pipeline::TemplateContext {
                run_id: &record.run_id,
                env: &env_lookup,
                outputs: &outputs,
            };
            pipeline::expand(&stage.with, &ctx)
                .map_err(|e| StageFailure::InvalidConfig(e.to_string()))?
        };
        if let Some(schema) = self.schemas.get(stage_name) {
            let violations = schema.violations(&config);
            if !violations.is_empty() {
                return Err(StageFailure::InvalidConfig(format!(
                    "`with:` does not match the plugin's config schema ({}); see `sluice plugin inspect --json` for the schema",
                    violations.join("; ")
                )));
            }
        }

        // Only what the stage uses is made (see `workdir`): `in/<need>/`
        // for each need that produced artifacts (else `/artifacts/in` is
        // one shared empty directory), `scratch/` when a program first runs
        // there; `/artifacts/out` is a pooled empty directory. A no-op stage
        // then creates no directory at all.
        let work = self.work.stage_dir(stage_name);
        let scratch_dir = work.join("scratch");
        let has_inputs = stage.needs.iter().any(|n| {
            record
                .stages
                .get(n)
                .is_some_and(|r| !r.artifacts.is_empty())
        });
        let inputs_dir = if has_inputs {
            work.join("in")
        } else {
            self.work
                .empty_inputs()
                .map_err(|e| StageFailure::Setup(e.to_string()))?
        };
        match std::fs::remove_dir_all(&work) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StageFailure::Setup(format!(
                    "cannot clear {}: {e}",
                    work.display()
                )))
            }
            _ => {}
        }
        let outputs = self
            .work
            .outputs()
            .map_err(|e| StageFailure::Setup(e.to_string()))?;
        let outputs_dir = outputs.path();

        let mut inputs = Vec::new();
        let mut upstream = Vec::new();
        for need in &stage.needs {
            let Some(need_rec) = record.stages.get(need) else {
                continue;
            };
            if !need_rec.artifacts.is_empty() {
                self.cas
                    .materialize(&need_rec.artifacts, &inputs_dir.join(need))
                    .map_err(|e| {
                        StageFailure::Failed(format!("input artifacts of `{need}`: {e}"))
                    })?;
            }
            for a in &need_rec.artifacts {
                inputs.push(wit::Artifact {
                    stage: need.clone(),
                    name: a.name.clone(),
                    digest: a.digest.clone(),
                    size: a.size,
                    media_type: a.media_type.clone(),
                });
            }
            for (k, v) in &need_rec.outputs {
                upstream.push(wit::OutputValue {
                    stage: need.clone(),
                    name: k.clone(),
                    value: v.clone(),
                });
            }
            for (name, value) in status_outputs(need_rec) {
                upstream.push(wit::OutputValue {
                    stage: need.clone(),
                    name: name.into(),
                    value,
                });
            }
        }

        let granted_env: Vec<(String, String)> = stage
            .grants
            .env
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.clone(), v)))
            .collect();
        let mut exec_env: Vec<(String, String)> = Vec::new();
        for k in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(k) {
                exec_env.push((k.to_string(), v));
            }
        }
        exec_env.extend(granted_env.iter().cloned());
        let secrets: BTreeMap<String, String> = stage
            .grants
            .secrets
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.clone(), v)))
            .collect();
        let workspace = match stage.grants.workspace {
            WorkspaceAccess::None => None,
            WorkspaceAccess::Read => Some((self.pipeline.workspace.clone(), false)),
            WorkspaceAccess::Write => Some((self.pipeline.workspace.clone(), true)),
        };
        let request = StageRequest {
            context: wit::Context {
                run_id: record.run_id.clone(),
                pipeline: self.pipeline.name.clone(),
                stage: stage_name.to_string(),
                environment: stage.environment.clone(),
                config: config.to_string(),
                inputs,
                outputs_dir: "/artifacts/out".into(),
                upstream,
                attempt,
            },
            workspace,
            inputs_dir: Some(inputs_dir),
            outputs_dir: Some(outputs_dir.to_path_buf()),
            scratch_dir,
            env: granted_env,
            exec_programs: stage.grants.exec.clone(),
            exec_env,
            network: stage.grants.network.clone(),
            secret_grants: stage.grants.secrets.clone(),
            secrets,
            memory: stage.grants.memory,
            output_cap: stage.grants.output,
            timeout: stage.timeout,
            max_handles: self.max_handles,
            log: log.clone(),
        };
        let report = match sandbox::run_stage(plugin, request).await {
            Ok(report) => report,
            Err(failure) => {
                if let StageFailure::Trap(_) = failure {
                    if let Some(panic) = panic_line(&self.run_dir.join(&rec.log)) {
                        return Err(StageFailure::Trap(format!("panicked: {panic}")));
                    }
                }
                return Err(failure);
            }
        };
        let state = self.accept_report(stage, report, outputs_dir, rec)?;
        self.attest(stage_name, stage, record, &started_on, &work, rec)?;
        // Inputs and outputs now live in the CAS; the copies are not needed.
        let _ = std::fs::remove_dir_all(&work);
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
        work: &Path,
        rec: &mut StageRecord,
    ) -> Result<(), StageFailure> {
        let Some((_, plugin)) = self.plugins.get(stage_name) else {
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
        let dir = work.join("provenance");
        let setup = |e: std::io::Error| StageFailure::Setup(format!("writing provenance: {e}"));
        std::fs::create_dir_all(&dir).map_err(setup)?;
        let bytes = serde_json::to_vec_pretty(&statement)
            .map_err(|e| StageFailure::Setup(format!("writing provenance: {e}")))?;
        if self.redactor.redact(&bytes) != bytes {
            // A secret whose JSON escaping differs from its raw bytes
            // cannot be matched string by string; refuse rather than sign.
            return Err(StageFailure::Setup(
                "the provenance statement would contain the value of a secret; it was not written"
                    .into(),
            ));
        }
        let mut declared = vec![(
            provenance::PROVENANCE_NAME.to_string(),
            provenance::PROVENANCE_MEDIA_TYPE.to_string(),
        )];
        if let Some(key) = &self.provenance_key {
            let bundle = sluice_trust::sign_statement(&bytes, key)
                .map_err(|e| StageFailure::Setup(format!("signing provenance: {e}")))?;
            std::fs::write(dir.join(provenance::SIGNED_PROVENANCE_NAME), bundle).map_err(setup)?;
            declared.push((
                provenance::SIGNED_PROVENANCE_NAME.to_string(),
                sluice_trust::BUNDLE_MEDIA_TYPE.to_string(),
            ));
        }
        std::fs::write(dir.join(provenance::PROVENANCE_NAME), bytes).map_err(setup)?;
        let mut stored = self
            .cas
            .ingest_dir(&dir, &declared, &IngestLimits::default())
            .map_err(|e| StageFailure::Setup(format!("storing provenance: {e}")))?;
        rec.artifacts.append(&mut stored);
        Ok(())
    }

    /// Check the report, store artifacts and evaluate gates.
    fn accept_report(
        &self,
        stage: &pipeline::Stage,
        report: wit::Report,
        outputs_dir: &Path,
        rec: &mut StageRecord,
    ) -> Result<StageState, StageFailure> {
        let report = checked_report(report, &self.redactor)?;
        let metrics: Vec<(String, f64)> = report
            .metrics
            .iter()
            .map(|m| (m.name.clone(), m.value))
            .collect();
        let artifacts = self
            .cas
            .ingest_dir(
                outputs_dir,
                &report.artifacts,
                &IngestLimits {
                    max_total_bytes: stage.grants.artifacts,
                    ..IngestLimits::default()
                },
            )
            .map_err(|e| StageFailure::Failed(format!("collecting artifacts: {e}")))?;
        for a in &artifacts {
            if provenance::is_reserved(&a.name) {
                return Err(StageFailure::Failed(format!(
                    "the plugin wrote `{}` at the top of /artifacts/out; names starting with `{}` there are reserved for the provenance the runner writes (move it into a subdirectory or rename it)",
                    sluice_engine::report::escape_controls(&self.redactor.redact_str(&a.name)),
                    provenance::RESERVED_PREFIX
                )));
            }
            if a.name.chars().any(char::is_control) {
                return Err(StageFailure::Failed(format!(
                    "the plugin wrote an artifact whose name has a control character ({}); artifact names are shown on terminals and must be printable",
                    sluice_engine::report::escape_controls(&a.name)
                )));
            }
            if self.redactor.redact_str(&a.name) != a.name {
                return Err(StageFailure::Failed(format!(
                    "the plugin wrote an artifact named `{}`, which contains the value of a granted secret; artifact names are recorded and shown in clear",
                    self.redactor.redact_str(&a.name)
                )));
            }
        }
        let plugin_gates: Vec<PluginGate> = report
            .gates
            .iter()
            .map(|g| PluginGate {
                name: g.name.clone(),
                verdict: match g.verdict {
                    wit::Verdict::Pass => Verdict::Pass,
                    wit::Verdict::Warn => Verdict::Warn,
                    wit::Verdict::Fail => Verdict::Fail,
                    wit::Verdict::Inconclusive => Verdict::Inconclusive,
                },
                observed: g.observed,
                threshold: g.threshold,
                message: g.message.clone(),
            })
            .collect();
        let (results, verdict) = gates::evaluate(&stage.gates, &metrics, &plugin_gates);
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
        rec.summary = Some(report.summary.clone());
        rec.verdict = Some(verdict);
        rec.metrics = report
            .metrics
            .iter()
            .map(|m| MetricRecord {
                name: m.name.clone(),
                value: m.value,
                unit: m.unit.clone(),
            })
            .collect();
        rec.gates = results;
        rec.outputs = report.outputs.into_iter().collect();
        rec.artifacts = artifacts;
        Ok(state)
    }
}

/// Bounds on what a plugin may report, checked (in linear time) before
/// anything is stored: every string in a report reaches run.json, the
/// journal, the console and `--json`, and the checks run after the stage's
/// timeout no longer applies.
pub mod limits {
    /// Largest `summary`, in bytes.
    pub const SUMMARY_BYTES: usize = 8 * 1024;
    /// Most metrics in one report.
    pub const METRICS: usize = 10_000;
    /// Most gates in one report.
    pub const GATES: usize = 1_000;
    /// Most outputs in one report.
    pub const OUTPUTS: usize = 1_000;
    /// Largest total size of a report's outputs (names and values).
    pub const OUTPUTS_BYTES: usize = 64 * 1024;
    /// Longest metric, gate or output name, in bytes.
    pub const NAME_BYTES: usize = 256;
    /// Longest metric unit, in bytes.
    pub const UNIT_BYTES: usize = 32;
    /// Longest gate message, in bytes.
    pub const MESSAGE_BYTES: usize = 4 * 1024;
    /// Most artifacts a report may declare.
    pub const DECLARED_ARTIFACTS: usize = 10_000;
    /// Longest failure reason kept from a plugin (longer ones are cut).
    pub const REASON_BYTES: usize = 4 * 1024;
}

/// Check a report against [`limits`] and the WIT's rules (finite metric
/// values, unique metric and gate names, no reserved output names), and
/// redact every granted secret value in every string it carries.
fn checked_report(
    mut report: wit::Report,
    redactor: &Redactor,
) -> Result<wit::Report, StageFailure> {
    use std::collections::HashSet;
    let fail = |m: String| Err(StageFailure::Failed(redactor.redact_str(&m)));
    let too_long = |what: &str, value: &str, limit: usize| {
        fail(format!(
            "the plugin reported {what} `{}…` of {} bytes; the limit is {limit}",
            clip(value, 40),
            value.len()
        ))
    };
    if report.summary.len() > limits::SUMMARY_BYTES {
        return fail(format!(
            "the plugin reported a summary of {} bytes; the limit is {} — put long text in an artifact",
            report.summary.len(),
            limits::SUMMARY_BYTES
        ));
    }
    if report.metrics.len() > limits::METRICS {
        return fail(format!(
            "the plugin reported {} metrics; the limit is {}",
            report.metrics.len(),
            limits::METRICS
        ));
    }
    if report.gates.len() > limits::GATES {
        return fail(format!(
            "the plugin reported {} gates; the limit is {}",
            report.gates.len(),
            limits::GATES
        ));
    }
    if report.outputs.len() > limits::OUTPUTS {
        return fail(format!(
            "the plugin reported {} outputs; the limit is {}",
            report.outputs.len(),
            limits::OUTPUTS
        ));
    }
    if report.artifacts.len() > limits::DECLARED_ARTIFACTS {
        return fail(format!(
            "the plugin declared {} artifacts; the limit is {}",
            report.artifacts.len(),
            limits::DECLARED_ARTIFACTS
        ));
    }
    let mut seen: HashSet<&str> = HashSet::with_capacity(report.metrics.len());
    for m in &report.metrics {
        if m.name.len() > limits::NAME_BYTES {
            return too_long("metric name", &m.name, limits::NAME_BYTES);
        }
        if let Some(unit) = m.unit.as_deref().filter(|u| u.len() > limits::UNIT_BYTES) {
            return too_long("metric unit", unit, limits::UNIT_BYTES);
        }
        if !m.value.is_finite() {
            return fail(format!(
                "the plugin reported metric `{}` = {}, which is not a finite number",
                m.name, m.value
            ));
        }
        if !seen.insert(&m.name) {
            return fail(format!("the plugin reported metric `{}` twice", m.name));
        }
    }
    let mut seen: HashSet<&str> = HashSet::with_capacity(report.gates.len());
    for g in &report.gates {
        if g.name.len() > limits::NAME_BYTES {
            return too_long("gate name", &g.name, limits::NAME_BYTES);
        }
        if g.message.len() > limits::MESSAGE_BYTES {
            return too_long("gate message", &g.message, limits::MESSAGE_BYTES);
        }
        if !seen.insert(&g.name) {
            return fail(format!(
                "the plugin reported gate `{}` twice; gate names must be unique within a report",
                g.name
            ));
        }
    }
    let mut seen: HashSet<&str> = HashSet::with_capacity(report.outputs.len());
    for (k, _) in &report.outputs {
        if k.len() > limits::NAME_BYTES {
            return too_long("output name", k, limits::NAME_BYTES);
        }
        if k.starts_with(RESERVED_OUTPUT_PREFIX) {
            return fail(format!(
                "the plugin reported output `{k}`; names starting with `{RESERVED_OUTPUT_PREFIX}` are reserved for the runner"
            ));
        }
        if !seen.insert(k) {
            return fail(format!("the plugin reported output `{k}` twice"));
        }
    }
    let outputs_size: usize = report.outputs.iter().map(|(k, v)| k.len() + v.len()).sum();
    if outputs_size > limits::OUTPUTS_BYTES {
        return fail(format!(
            "the plugin reported {outputs_size} bytes of outputs; the limit is {} — write large values to /artifacts/out instead",
            limits::OUTPUTS_BYTES
        ));
    }
    if !redactor.is_empty() {
        report.summary = redactor.redact_str(&report.summary);
        for m in &mut report.metrics {
            m.name = redactor.redact_str(&m.name);
            m.unit = m.unit.as_deref().map(|u| redactor.redact_str(u));
        }
        for g in &mut report.gates {
            g.name = redactor.redact_str(&g.name);
            g.message = redactor.redact_str(&g.message);
        }
        for (k, v) in &mut report.outputs {
            *k = redactor.redact_str(k);
            *v = redactor.redact_str(v);
        }
    }
    Ok(report)
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn clip(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A plugin's own failure message: redacted and cut to
/// [`limits::REASON_BYTES`].
pub fn plugin_reason(message: &str, redactor: &Redactor) -> String {
    let redacted = redactor.redact_str(message);
    if redacted.len() <= limits::REASON_BYTES {
        return redacted;
    }
    format!(
        "{}… ({} bytes, cut)",
        clip(&redacted, limits::REASON_BYTES),
        redacted.len()
    )
}

/// The panic message a Rust guest printed before trapping, if any.
fn panic_line(log: &Path) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let tail = &text[text.len().saturating_sub(16 * 1024)..];
    let tail = String::from_utf8_lossy(tail);
    let lines: Vec<&str> = tail.lines().collect();
    let at = lines.iter().rposition(|l| l.contains("panicked at"))?;
    let mut msg = lines[at].trim().to_string();
    if let Some(next) = lines.get(at + 1) {
        if !next.starts_with("[sluice]") && !next.starts_with("note:") {
            msg.push(' ');
            msg.push_str(next.trim());
        }
    }
    Some(msg)
}

/// The runner's own facts about a finished upstream stage, passed as
/// reserved `sluice.*` upstream outputs so that a `when: failure` stage
/// (remediate, notify) can say which stage and gate failed, and when.
/// Plugins cannot report outputs under `sluice.`.
const RESERVED_OUTPUT_PREFIX: &str = "sluice.";

fn status_outputs(rec: &sluice_record::StageRecord) -> Vec<(&'static str, String)> {
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
