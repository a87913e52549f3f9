//! The local executor: runs a [`StageJob`] in a wasmtime sandbox in this
//! process. Lays out the attempt's work directories, stages its input
//! artifacts from the CAS (verifying their digests), builds the sandbox
//! from the grants (values of env and secrets from the injected sources),
//! runs the plugin, checks its report against [`limits`] and moves its
//! outputs into the CAS. Gates, provenance and the stage's record are the
//! orchestrator's ([`sluice_engine::orchestrator`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use crate::bindings::wit;
use crate::guest_api::ProgressFn;
use crate::logpipe::{LiveLine, Redactor, StageLog};
use crate::sandbox::{self, StageFailure, StageRequest, TrapKind};
use crate::Plugin;
use sluice_engine::executor::{
    EnvSource, Executor, LogReport, OutcomeFuture, SecretSource, StageJob, StageOutcome,
    StageReport, RESERVED_OUTPUT_PREFIX,
};
use sluice_engine::report::{Event, Reporter};
use sluice_engine::sarif::{self, FINDINGS_FILE, SARIF_MEDIA_TYPE};
use sluice_pipeline::gates::{PluginGate, Verdict};
use sluice_pipeline::WorkspaceAccess;
use sluice_record::artifacts::{ArtifactRecord, Cas, IngestLimits};
use sluice_record::workdir::WorkDirs;
use sluice_record::MetricRecord;
use sluice_types::{ArtifactRole, Finding, FindingLevel, FindingLocation};

/// Runs stage jobs in their sandboxes, in this process.
pub struct LocalExecutor {
    /// Loaded plugins by digest (`sha256:<hex>`).
    pub plugins: HashMap<String, Plugin>,
    /// The artifact store.
    pub cas: Arc<Cas>,
    /// `.sluice/runs/<id>`: jobs' log paths are relative to it.
    pub run_dir: PathBuf,
    /// The host directories behind `/artifacts` (`<run>/work`).
    pub work: WorkDirs,
    /// Redacts every secret value the run knows.
    pub redactor: Arc<Redactor>,
    /// Where log lines go live.
    pub reporter: Arc<dyn Reporter>,
    /// Values of granted `env`, and `PATH`/`HOME` for `exec`.
    pub env: Arc<dyn EnvSource>,
    /// Values of granted secrets.
    pub secrets: Arc<dyn SecretSource>,
    /// Most handles one stage may hold at once.
    pub max_handles: usize,
}

impl Executor for LocalExecutor {
    fn run(&self, job: StageJob, cancel: CancellationToken) -> OutcomeFuture<'_> {
        Box::pin(async move {
            let path = job.log.clone();
            let (result, stats) = self.run_job(&job, cancel).await;
            StageOutcome::local(
                result,
                LogReport {
                    path,
                    stats: stats.unwrap_or_default(),
                },
            )
        })
    }

    fn note(&self, stage: &str, log: &str, message: &str) {
        // A fresh writer on the same file: the note is the runner's last
        // word on the attempt, so it is written whatever the stage wrote.
        match self.open_log(stage, log, 0) {
            Ok(log) => {
                log.final_note(message);
                if let Some(e) = log.finish().io_error {
                    tracing::warn!(stage, error = %e, "writing the stage log failed");
                }
            }
            Err(e) => tracing::warn!(stage, error = %e, "could not add a note to the stage log"),
        }
    }
}

impl LocalExecutor {
    /// The attempt's log: `run_dir/<log>`, which must stay inside the run
    /// directory.
    fn open_log(&self, stage: &str, log: &str, output_cap: u64) -> Result<StageLog, StageFailure> {
        let relative = Path::new(log);
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(StageFailure::setup(format!(
                "the log `{log}` is not a path inside the run directory"
            )));
        }
        let reporter = self.reporter.clone();
        let name = stage.to_string();
        let live: crate::logpipe::LiveFn = Arc::new(move |line: LiveLine<'_>| {
            reporter.event(&Event::StageLog {
                stage: &name,
                line: line.text,
                level: line.level,
                fields: line.fields,
            })
        });
        let path = self.run_dir.join(relative);
        StageLog::create(&path, self.redactor.clone(), output_cap, Some(live))
            .map_err(|e| StageFailure::setup(format!("cannot open log {}: {e}", path.display())))
    }

    async fn run_job(
        &self,
        job: &StageJob,
        cancel: CancellationToken,
    ) -> (
        Result<StageReport, StageFailure>,
        Option<sluice_engine::executor::LogStats>,
    ) {
        let Some(plugin) = self.plugins.get(&job.plugin.digest) else {
            let failure = StageFailure::setup(format!("no plugin loaded for `{}`", job.stage));
            return (Err(failure), None);
        };
        let log = match self.open_log(&job.stage, &job.log, job.grants.output) {
            Ok(log) => log,
            Err(failure) => return (Err(failure), None),
        };
        if job.attempt > 1 {
            log.note(&format!("attempt {} of stage `{}`", job.attempt, job.stage));
        }
        let result = self.sandboxed(job, plugin, &log, cancel).await;
        if let Err(failure) = &result {
            log.final_note(&failure.log_note());
        }
        let stats = log.finish();
        if let Some(e) = &stats.io_error {
            tracing::warn!(stage = job.stage, error = %e, "writing the stage log failed");
        }
        (result, Some(stats))
    }

    async fn sandboxed(
        &self,
        job: &StageJob,
        plugin: &Plugin,
        log: &StageLog,
        cancel: CancellationToken,
    ) -> Result<StageReport, StageFailure> {
        // Only what the stage uses is made (see `workdir`): `in/<need>/`
        // for each need that produced artifacts (else `/artifacts/in` is
        // one shared empty directory), `scratch/` when a program first runs
        // there; `/artifacts/out` is a pooled empty directory. A no-op stage
        // then creates no directory at all.
        let work = self.work.stage_dir(&job.stage);
        let scratch_dir = work.join("scratch");
        let inputs_dir = if job.inputs.is_empty() {
            self.work
                .empty_inputs()
                .map_err(|e| StageFailure::setup(e.to_string()))?
        } else {
            work.join("in")
        };
        match std::fs::remove_dir_all(&work) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StageFailure::setup(format!(
                    "cannot clear {}: {e}",
                    work.display()
                )))
            }
            _ => {}
        }
        let outputs = self
            .work
            .outputs()
            .map_err(|e| StageFailure::setup(e.to_string()))?;
        let outputs_dir = outputs.path();

        // Each producer's artifacts go to `in/<producer>/` in one go.
        let mut by_stage: Vec<(&str, Vec<ArtifactRecord>)> = Vec::new();
        for input in &job.inputs {
            match by_stage.last_mut() {
                Some((stage, artifacts)) if *stage == input.stage => {
                    artifacts.push(input.artifact.clone())
                }
                _ => by_stage.push((&input.stage, vec![input.artifact.clone()])),
            }
        }
        for (stage, artifacts) in &by_stage {
            self.cas
                .materialize(artifacts, &inputs_dir.join(stage))
                .map_err(|e| StageFailure::Inputs {
                    stage: stage.to_string(),
                    message: e.to_string(),
                })?;
        }
        let inputs = job
            .inputs
            .iter()
            .map(|i| wit::Artifact {
                stage: i.stage.clone(),
                name: i.artifact.name.clone(),
                digest: i.artifact.digest.clone(),
                size: i.artifact.size,
                media_type: i.artifact.media_type.clone(),
                role: i.artifact.role.as_ref().map(role_to_wit),
                annotations: i
                    .artifact
                    .annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
            .collect();
        let upstream = job
            .upstream
            .iter()
            .map(|o| wit::OutputValue {
                stage: o.stage.clone(),
                name: o.name.clone(),
                value: o.value.clone(),
            })
            .collect();

        let granted_env: Vec<(String, String)> = job
            .grants
            .env
            .iter()
            .filter_map(|k| self.env.var(k).map(|v| (k.clone(), v)))
            .collect();
        let mut exec_env: Vec<(String, String)> = Vec::new();
        for k in ["PATH", "HOME"] {
            if let Some(v) = self.env.var(k) {
                exec_env.push((k.to_string(), v));
            }
        }
        exec_env.extend(granted_env.iter().cloned());
        let secrets: BTreeMap<String, String> = job
            .grants
            .secrets
            .iter()
            .filter_map(|k| self.secrets.secret(k).map(|v| (k.clone(), v)))
            .collect();
        let tls_roots = tls_roots(&job.grants.tls_ca)?;
        for ca in &job.grants.tls_ca {
            log.note(&format!(
                "trusting the TLS roots of {} ({}) besides the public ones",
                ca.file, ca.digest
            ));
        }
        let workspace = match job.grants.workspace {
            WorkspaceAccess::None => None,
            WorkspaceAccess::Read => Some((job.workspace.clone(), false)),
            WorkspaceAccess::Write => Some((job.workspace.clone(), true)),
        };
        let request = StageRequest {
            context: wit::Context {
                run_id: job.run_id.clone(),
                pipeline: job.pipeline.clone(),
                stage: job.stage.clone(),
                environment: job.environment.clone(),
                config: job.config.to_string(),
                inputs,
                outputs_dir: "/artifacts/out".into(),
                upstream,
                attempt: job.attempt,
                deadline: datetime(SystemTime::now() + job.timeout),
                grace_period: u64::try_from(job.grace_period.as_nanos()).unwrap_or(u64::MAX),
            },
            workspace,
            inputs_dir: Some(inputs_dir),
            outputs_dir: Some(outputs_dir.to_path_buf()),
            scratch_dir,
            env: granted_env,
            exec_programs: job.grants.exec.clone(),
            exec_env,
            network: job.grants.network.clone(),
            tls_roots,
            secret_grants: job.grants.secrets.clone(),
            secrets,
            memory: job.grants.memory,
            output_cap: job.grants.output,
            timeout: job.timeout,
            max_handles: self.max_handles,
            log: log.clone(),
            cancel,
            grace_period: job.grace_period,
            progress: Some(self.progress_sink(&job.stage)),
        };
        let report = sandbox::run_stage(plugin, request)
            .await
            .map_err(|failure| with_panic_message(failure, log))?;
        let report = checked_report(report, &self.redactor)?;
        let findings = findings_of(&report, &self.redactor)?;
        let mut declared: Vec<(String, String)> = report
            .artifacts
            .iter()
            .map(|a| {
                let media = a
                    .media_type
                    .clone()
                    .unwrap_or_else(|| sluice_record::artifacts::DEFAULT_MEDIA_TYPE.to_owned());
                (a.path.clone(), media)
            })
            .collect();
        if let Some(findings) = &findings {
            write_findings(job, outputs_dir, findings)?;
            declared.push((FINDINGS_FILE.to_owned(), SARIF_MEDIA_TYPE.to_owned()));
            let count = |level| findings.iter().filter(|f| f.level == level).count();
            log.note(&format!(
                "{} findings ({} errors, {} warnings, {} notes) written to {FINDINGS_FILE}",
                findings.len(),
                count(FindingLevel::Error),
                count(FindingLevel::Warning),
                count(FindingLevel::Note),
            ));
        }
        let mut artifacts = self
            .cas
            .ingest_dir(
                outputs_dir,
                &declared,
                &IngestLimits {
                    max_total_bytes: job.grants.artifacts,
                    ..IngestLimits::default()
                },
            )
            .map_err(|e| StageFailure::Outputs {
                message: e.to_string(),
            })?;
        describe_artifacts(
            &mut artifacts,
            &report.artifacts,
            findings.is_some(),
            &self.redactor,
        );
        drop(outputs);
        // Inputs and outputs now live in the CAS; the copies are not needed.
        let _ = std::fs::remove_dir_all(&work);
        Ok(StageReport {
            summary: report.summary,
            metrics: report
                .metrics
                .into_iter()
                .map(|m| MetricRecord {
                    name: m.name,
                    value: m.value,
                    unit: m.unit,
                })
                .collect(),
            gates: report
                .gates
                .into_iter()
                .map(|g| PluginGate {
                    name: g.name,
                    verdict: match g.verdict {
                        wit::Verdict::Pass => Verdict::Pass,
                        wit::Verdict::Warn => Verdict::Warn,
                        wit::Verdict::Fail => Verdict::Fail,
                        wit::Verdict::Inconclusive => Verdict::Inconclusive,
                    },
                    observed: g.observed,
                    threshold: g.threshold,
                    message: g.message,
                })
                .collect(),
            outputs: report.outputs,
            artifacts,
        })
    }
}

/// A trap after the guest printed a panic message is that panic: the
/// message (as the stage log saw it stream by, redacted) is the reason.
/// The certificates of the stage's `grants.tls-ca` files, read again now:
/// a file that changed since the pipeline was loaded (its digest is what
/// the job carries) is refused rather than trusted unseen.
fn tls_roots(
    cas: &[sluice_pipeline::TlsCa],
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, StageFailure> {
    let mut roots = Vec::new();
    for ca in cas {
        let loaded = sluice_pipeline::tls_ca::load_tls_ca(&ca.path, &ca.file)
            .map_err(|e| StageFailure::setup(format!("grants.tls-ca `{}`: {e}", ca.file)))?;
        if loaded.digest != ca.digest {
            return Err(StageFailure::setup(format!(
                "grants.tls-ca `{}` changed after the pipeline was loaded (it was {}, now {}); run the pipeline again to use the new file",
                ca.file, ca.digest, loaded.digest
            )));
        }
        roots.extend(loaded.certificates);
    }
    Ok(roots)
}

fn with_panic_message(failure: StageFailure, log: &StageLog) -> StageFailure {
    match failure {
        StageFailure::Trap { .. } => match log.panic_message() {
            Some(panic) => StageFailure::Trap {
                kind: TrapKind::Panic,
                message: format!("panicked: {panic}"),
            },
            None => failure,
        },
        other => other,
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
    /// Longest failure reason kept from a plugin (longer ones are cut, by
    /// the orchestrator).
    pub const REASON_BYTES: usize = sluice_engine::orchestrator::REASON_BYTES;
}

/// Check a report against [`limits`] and the WIT's rules (finite metric
/// values, unique metric and gate names, no reserved output names), and
/// redact every granted secret value in every string it carries.
fn checked_report(
    mut report: wit::Report,
    redactor: &Redactor,
) -> Result<wit::Report, StageFailure> {
    use std::collections::HashSet;
    let fail = |m: String| {
        Err(StageFailure::Rejected {
            message: redactor.redact_str(&m),
        })
    };
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
    for a in &report.artifacts {
        if let Some(role) = &a.role {
            if let Err(e) = role_from_wit(role).check() {
                return fail(format!("the plugin declared artifact `{}`: {e}", a.path));
            }
        }
        if let Err(e) = sluice_types::check_annotations(&a.path, &a.annotations) {
            return fail(format!("the plugin declared {e}"));
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

/// A role as the WIT has it.
fn role_to_wit(role: &ArtifactRole) -> wit::ArtifactRole {
    match role {
        ArtifactRole::Report => wit::ArtifactRole::Report,
        ArtifactRole::TestResults => wit::ArtifactRole::TestResults,
        ArtifactRole::Coverage => wit::ArtifactRole::Coverage,
        ArtifactRole::Package => wit::ArtifactRole::Package,
        ArtifactRole::Sbom => wit::ArtifactRole::Sbom,
        ArtifactRole::Provenance => wit::ArtifactRole::Provenance,
        ArtifactRole::Log => wit::ArtifactRole::Log,
        ArtifactRole::Other(s) => wit::ArtifactRole::Other(s.clone()),
    }
}

/// A role the plugin reported.
fn role_from_wit(role: &wit::ArtifactRole) -> ArtifactRole {
    match role {
        wit::ArtifactRole::Report => ArtifactRole::Report,
        wit::ArtifactRole::TestResults => ArtifactRole::TestResults,
        wit::ArtifactRole::Coverage => ArtifactRole::Coverage,
        wit::ArtifactRole::Package => ArtifactRole::Package,
        wit::ArtifactRole::Sbom => ArtifactRole::Sbom,
        wit::ArtifactRole::Provenance => ArtifactRole::Provenance,
        wit::ArtifactRole::Log => ArtifactRole::Log,
        wit::ArtifactRole::Other(s) => ArtifactRole::Other(s.clone()),
    }
}

/// A wall-clock time as `wasi:clocks/wall-clock.datetime`.
fn datetime(at: SystemTime) -> wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime {
        seconds: since.as_secs(),
        nanoseconds: since.subsec_nanos(),
    }
}

impl LocalExecutor {
    /// `log.progress` of `stage` as `stage_progress` events.
    fn progress_sink(&self, stage: &str) -> ProgressFn {
        let reporter = self.reporter.clone();
        let stage = stage.to_owned();
        Arc::new(move |done, total, message: &str| {
            reporter.event(&Event::StageProgress {
                stage: &stage,
                done,
                total,
                message,
            })
        })
    }
}

/// The report's findings as the runner's type, checked (count, empty
/// fields, paths, help URIs) and redacted; `None` when the stage does not
/// report findings.
fn findings_of(
    report: &wit::Report,
    redactor: &Redactor,
) -> Result<Option<Vec<Finding>>, StageFailure> {
    let Some(list) = &report.findings else {
        return Ok(None);
    };
    let redact = |s: &str| redactor.redact_str(s);
    let findings: Vec<Finding> = list
        .iter()
        .map(|f| Finding {
            rule_id: redact(&f.rule_id),
            level: match f.level {
                wit::FindingLevel::Note => FindingLevel::Note,
                wit::FindingLevel::Warning => FindingLevel::Warning,
                wit::FindingLevel::Error => FindingLevel::Error,
            },
            message: redact(&f.message),
            location: f.location.as_ref().map(|l| FindingLocation {
                path: redact(&l.path),
                start_line: l.start_line,
                start_column: l.start_column,
                end_line: l.end_line,
                end_column: l.end_column,
            }),
            fingerprint: f.fingerprint.as_deref().map(redact),
            help_uri: f.help_uri.as_deref().map(redact),
        })
        .collect();
    Finding::check_all(&findings).map_err(|e| StageFailure::Rejected {
        message: format!("the plugin reported a bad finding: {e}"),
    })?;
    Ok(Some(findings))
}

/// Write the findings as SARIF to `<outputs>/findings.sarif`. The name is
/// the runner's: a stage that left a file of that name itself (a file, a
/// link, anything) fails instead of being overwritten or followed.
fn write_findings(
    job: &StageJob,
    outputs_dir: &Path,
    findings: &[Finding],
) -> Result<(), StageFailure> {
    use std::io::Write;
    let name = Path::new(&job.plugin.reference)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(&job.stage);
    let doc = sarif::document(
        &sarif::Tool {
            name,
            version: None,
            stage: &job.stage,
            digest: &job.plugin.digest,
        },
        findings,
    );
    let path = outputs_dir.join(FINDINGS_FILE);
    let outputs = |message: String| StageFailure::Outputs { message };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                outputs(format!(
                    "the stage reported findings and also left a `{FINDINGS_FILE}` of its own in /artifacts/out; the runner writes that file from the findings: name the stage's own file differently"
                ))
            } else {
                outputs(format!("cannot write {}: {e}", path.display()))
            }
        })?;
    let bytes =
        serde_json::to_vec(&doc).map_err(|e| outputs(format!("cannot encode SARIF: {e}")))?;
    file.write_all(&bytes)
        .map_err(|e| outputs(format!("cannot write {}: {e}", path.display())))
}

/// Put the roles and annotations the report gave onto the stored
/// artifacts (by name, as the store normalised it), redacted; the
/// runner's SARIF is a `report`.
fn describe_artifacts(
    artifacts: &mut [ArtifactRecord],
    infos: &[wit::ArtifactInfo],
    runner_sarif: bool,
    redactor: &Redactor,
) {
    let by_name: HashMap<&str, &wit::ArtifactInfo> = infos
        .iter()
        .map(|i| (sluice_record::artifacts::normalize_declared(&i.path), i))
        .collect();
    for a in artifacts.iter_mut() {
        if runner_sarif && a.name == FINDINGS_FILE {
            a.role = Some(ArtifactRole::Report);
            continue;
        }
        if let Some(info) = by_name.get(a.name.as_str()) {
            a.role = info.role.as_ref().map(role_from_wit);
            a.annotations = info
                .annotations
                .iter()
                .map(|(k, v)| (redactor.redact_str(k), redactor.redact_str(v)))
                .collect();
        }
    }
}
